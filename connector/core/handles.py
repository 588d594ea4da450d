"""TikTok handles as people paste them: `name`, `@name`, a profile URL, with stray spaces.

One regular expression says what is accepted; the manifests carry the same text as the
`pattern` of their `handle` field, so a form rejects exactly what the connector would.
"""

from __future__ import annotations

import re

from .errors import InputError

#: Letters, digits, '_' and '.', at most 24 characters: TikTok's own rule for a handle.
NAME = "[A-Za-z0-9_.]{1,24}"
_HOST = "(?:[A-Za-z0-9-]+\\.)*[Tt][Ii][Kk][Tt][Oo][Kk]\\.[Cc][Oo][Mm]"
_URL = f"(?:[Hh][Tt][Tt][Pp][Ss]?://)?{_HOST}/@{{name}}(?:[/?#][^ \\t]*)?"
_FORMS = f"(?:@?[ \\t]*{{name}}|{_URL})"
#: The accepted forms as a JSON Schema (ECMA-262) pattern: a bare handle, @handle, or a
#: profile URL on a tiktok.com host (http or https, or no scheme), with spaces around. It ends
#: with "nothing follows" rather than `$`, which in Python (jsonschema's `re.search`) also
#: matches before a final newline: the pattern must mean the same in every engine.
PATTERN = f"^[ \\t]*{_FORMS.format(name=NAME)}[ \\t]*(?![\\s\\S])"
_ACCEPTED = re.compile(f"[ \\t]*(?:@?[ \\t]*(?P<bare>{NAME})|"
                       f"{_URL.format(name=f'(?P<url>{NAME})')})[ \\t]*")
ACCEPTED_FORMS = "'name', '@name' or 'https://www.tiktok.com/@name'"
#: Longer input is refused before any parsing: a handle, even as a URL, is never this long.
MAX_INPUT = 500


def normalize_handle(value: object, *, field: str = "handle") -> str:
    """Return the bare lower-case handle, or raise InputError showing the accepted forms."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{field} is required: give a TikTok handle as {ACCEPTED_FORMS}",
                         field=field)
    match = _ACCEPTED.fullmatch(value) if len(value) <= MAX_INPUT else None
    if match is None:
        raise InputError(f"{field}: {_shown(value)} {_why(value)}; give {ACCEPTED_FORMS}",
                         field=field)
    return (match.group("bare") or match.group("url")).lower()


def _why(value: str) -> str:
    """What is wrong with a value that is not accepted, in the user's terms."""
    text = value.strip()
    if len(value) > MAX_INPUT:
        return f"is over {MAX_INPUT} characters"
    if "/" not in text and ":" not in text:
        return ("is not a TikTok handle (letters, digits, '_' and '.', at most 24 "
                "characters)")
    host = re.match(r"(?:[A-Za-z][A-Za-z0-9+.-]*://)?([^/?#@:]*)", text)
    name = host.group(1).lower() if host else ""
    if not re.fullmatch(_HOST, name) or not re.match(r"(?:https?://)?[^/]*/", text, re.I):
        return "is not a TikTok profile URL (https on a tiktok.com host)"
    if not re.search(f"/@{NAME}(?:[/?#]|$)", text):
        return "is a URL without an @handle in it"
    return "is not a TikTok profile URL (https on a tiktok.com host)"


def _shown(value: str) -> str:
    text = value if "\n" not in value and len(value) <= 60 else " ".join(value.split())
    return repr(text if len(text) <= 60 else text[:57] + "...")
