"""What counts as a secret: the one collector every surface asks (`redact` then masks them),
a method a kind of secret. A user or database name is a name, not a secret: masking `tiktok`
wherever it appears would mangle every message.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from .config import API_KEY_ENV, BASE_URL_ENV, SERVE_TOKEN_ENV, STATE_DB_ENV
from .redact import Whole, redact


class Secrets:
    """The secrets a run, a request or a connection knows of; `scrub` masks them in a text.
    Each method adds one kind of secret (nothing when given nothing) and returns the
    collector, so they chain: `Secrets().environment().credentials(creds)`."""

    def __init__(self, *values: str | None) -> None:
        self.values: list[str] = []
        self.add(*values)

    def add(self, *values: str | None) -> Secrets:
        """Values that are secrets whole: a token, a header value."""
        self.values.extend(v.strip() if type(v) is str else v for v in values
                           if isinstance(v, str) and v.strip())
        return self

    def api_key(self, key: Any) -> Secrets:
        """An API key, however it was given (it travels stripped)."""
        return self.add(key)  # anything but a string is no key, and adds nothing

    def url(self, url: Any) -> Secrets:
        """A URL's password. Its user is a name (`postgres`), shown like a host."""
        return self.add(*_userinfo(url, user=False))

    def webhook(self, url: Any, header_values: Iterable[str] = ()) -> Secrets:
        """A webhook: its userinfo (`https://TOKEN@host/` is a credential whole), its path and
        query (masked only whole), and the values of the headers sent to it."""
        self.add(*_userinfo(url, user=True), *header_values)
        parts = _split(url)
        path = (parts.path + (f"?{parts.query}" if parts.query else "")) if parts else ""
        if len(path) > 1:
            self.values.append(Whole(path))
        return self

    def database(self, target: Any) -> Secrets:
        """A state database: a URL's password, in its userinfo or its query (`?password=`,
        `?sslpassword=`). A file path has none."""
        if not (isinstance(target, str) and "://" in target):
            return self
        self.url(target)
        parts = _split(target)
        query = parse_qs(parts.query) if parts else {}
        return self.add(*(v for k in ("password", "sslpassword") for v in query.get(k, [])))

    def credentials(self, credentials: Any) -> Secrets:
        """A `credentials` object of a request: its apiKey and baseUrl."""
        if isinstance(credentials, Mapping):
            self.api_key(credentials.get("apiKey")).url(credentials.get("baseUrl"))
        return self

    def authorization(self, header: Any) -> Secrets:
        """The credential of an `Authorization` header (`Bearer KEY`)."""
        if isinstance(header, str):
            self.add(header.strip().partition(" ")[2])
        return self

    def environment(self, environ: Mapping[str, str] = os.environ) -> Secrets:
        """What the process's environment holds: the API key, the base URL's password, the
        state database's, `serve`'s token."""
        return (self.api_key(environ.get(API_KEY_ENV)).url(environ.get(BASE_URL_ENV))
                .database(environ.get(STATE_DB_ENV)).add(environ.get(SERVE_TOKEN_ENV)))

    def scrub(self, text: str) -> str:
        """`text` with every secret masked."""
        return redact(text, self.values)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __repr__(self) -> str:
        return f"Secrets({len(self.values)} values)"


def _split(url: Any) -> SplitResult | None:
    """`url`'s parts; None when it is no URL."""
    try:
        return urlsplit(url.strip()) if isinstance(url, str) else None
    except ValueError:
        return None


def _userinfo(url: Any, *, user: bool) -> list[str]:
    """A URL's password (and its user, when `user`), as written (percent-encoded) and as a
    server would quote it back (decoded)."""
    parts = _split(url)
    found = [parts.password, parts.username if user else None] if parts else []
    return [v for s in found if s for v in dict.fromkeys((s, unquote(s)))]
