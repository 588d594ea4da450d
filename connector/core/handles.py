"""TikTok handles as people paste them: `name`, `@name`, a profile URL, with stray spaces."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import InputError

_VALID = re.compile(r"[A-Za-z0-9_.]{1,24}")
ACCEPTED_FORMS = "'name', '@name' or 'https://www.tiktok.com/@name'"


def normalize_handle(value: object, *, field: str = "handle") -> str:
    """Return the bare lower-case handle, or raise InputError showing the accepted forms."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{field} is required: give a TikTok handle as {ACCEPTED_FORMS}",
                         field=field)
    text = value.strip()
    # A URL has a scheme or a path; "tiktok.com" alone could be a handle (dots are allowed).
    if "/" in text or "://" in text:
        url = text if "://" in text else "https://" + text
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host != "tiktok.com" and not host.endswith(".tiktok.com"):
            # Taking "@bob" out of some other site's URL would read the wrong account.
            raise InputError(f"{field}: {value!r} is not a TikTok profile URL; "
                             f"give {ACCEPTED_FORMS}", field=field)
        path = parts.path
        match = re.search(r"/@([^/?#]+)", path)
        if not match:
            raise InputError(f"{field}: {value!r} is a URL without an @handle in it; "
                             f"give {ACCEPTED_FORMS}", field=field)
        text = match.group(1)
    text = text.removeprefix("@").strip()
    if not _VALID.fullmatch(text):
        raise InputError(
            f"{field}: {value!r} is not a TikTok handle (letters, digits, '_' and '.', "
            f"at most 24 characters); give {ACCEPTED_FORMS}",
            field=field,
        )
    return text.lower()
