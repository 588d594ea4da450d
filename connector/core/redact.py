"""Keeping secrets out of everything the connector prints, logs, raises or stores.

Secrets are the API key (however it was given), passwords in URLs (`user:password@host`),
webhook header values and webhook paths (a hook URL is itself a credential). Code that builds a
message from something that may hold one goes through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

#: Shorter "secrets" are not replaced: swapping every "ab" in a message for *** would mangle
#: it, and a key that short is refused by the upstream anyway.
MIN_SECRET = 4
MASK = "***"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret of MIN_SECRET or more characters replaced by ***."""
    for secret in sorted((s for s in secrets if s and len(s) >= MIN_SECRET), key=len,
                         reverse=True):
        text = text.replace(secret, MASK)
    return text


def one_line(text: str, limit: int = 1000) -> str:
    """`text` on one line (a server's message may carry newlines, which would let it forge log
    lines), at most `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that are secret: the password in `user:password@`, and the user."""
    try:
        parts = urlsplit(url)
        return [s for s in (parts.password, parts.username) if s]
    except ValueError:
        return []


def display_url(url: str, *, path: bool = True) -> str:
    """A URL as it may be shown: without `user:password@`, and without its path and query
    when `path` is False (webhook paths are credentials)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    if not path:
        return f"{parts.scheme}://{netloc}/…" if parts.path not in ("", "/") or parts.query \
            else f"{parts.scheme}://{netloc}"
    return f"{parts.scheme}://{netloc}{parts.path}"
