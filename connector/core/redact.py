"""Keeping secrets out of everything the connector prints, logs, raises or stores: how one is
masked (what counts as one is decided in `core/secrets.py`), and how a message, a URL or a
value the user gave is shown. Code that builds a message from something that may hold one goes
through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

#: Shorter "secrets" are not replaced: swapping every "ab" in a message for *** would mangle
#: it, and a key that short is refused by the upstream anyway.
MIN_SECRET = 4
#: Any run of this many characters of a secret is masked, wherever it appears, and not only the
#: whole secret: a server that quotes `key[2:]` or `key[:-2]` back must not show 24 of its 26
#: characters. Secrets shorter than this are masked whole.
FRAGMENT = 8
MASK = "***"
#: What the text is cut into to find windows (4 characters at a time): a window of FRAGMENT
#: characters always holds a whole gram that starts at a multiple of _GRAM.
_GRAM = 4
assert FRAGMENT >= 2 * _GRAM - 1 and memoryview(b"1234").cast("I").itemsize == _GRAM


class Whole(str):
    """A secret masked only whole, never by its pieces: a webhook's path is words its owner
    chose (`/webhook/tiktok-follows`), and masking any 8 of its characters would mask the
    program's own name in every line. Equal only to another Whole, so `redact` never takes a
    set of secrets with it for the same set without."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return type(other) is Whole and str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((Whole, str(self)))


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret of MIN_SECRET or more characters replaced by ***, and every run
    of FRAGMENT or more characters of a longer secret too (but of a `Whole` one)."""
    if not text:
        return text
    masker = _redactor(tuple(secrets))
    return masker(text) if masker.windows or masker.short else text


class Redactor:
    """Masks one set of secrets in any text; built once per set (`redact` keeps the last few).

    Every FRAGMENT-character piece of a secret (a "window") found in the text is masked, and
    overlapping windows are masked as one, so a run of any length from FRAGMENT up goes whole.
    Finding them costs one set lookup per 4 bytes of text, in C: a window found in the text
    holds, at a position that is a multiple of 4, one of the secret's 4-character pieces (a
    "gram"), and only where one sits are the 4 windows that can hold it looked up. A log line
    costs a few microseconds (benchmarks/redact.py).
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        unique = {s for s in secrets if s and len(s) >= MIN_SECRET}
        self.windows = frozenset(s[i:i + FRAGMENT] for s in unique
                                 if len(s) >= FRAGMENT and type(s) is not Whole
                                 for i in range(len(s) - FRAGMENT + 1))
        # Tuples of characters: text is cut into them by zip(), without a Python-level loop.
        self.grams = frozenset(tuple(w[i:i + _GRAM]) for w in self.windows
                               for i in range(FRAGMENT - _GRAM + 1))
        # The first look is cheaper still, in the text's UTF-8 bytes read as 4-byte integers:
        # a window's encoding is 8 bytes or more, so it holds one of these at a multiple of 4.
        encoded = [w.encode("utf-8", "surrogatepass") for w in self.windows]
        self.blocks = frozenset(memoryview(e[i:i + _GRAM]).cast("I")[0] for e in encoded
                                for i in range(len(e) - _GRAM + 1))
        #: Secrets too short for windows, or Whole: replaced whole, the longest first.
        self.short = sorted((str(s) for s in unique if len(s) < FRAGMENT or type(s) is Whole),
                            key=len, reverse=True)

    def __call__(self, text: str) -> str:
        if self.windows and len(text) >= FRAGMENT:
            data = text.encode("utf-8", "surrogatepass")
            if not self.blocks.isdisjoint(memoryview(data)[: len(data) & ~3].cast("I")):
                # The text's characters 4 at a time, from position 0 on (a last piece of
                # fewer than 4, which no gram fits in, is left out).
                chars = iter(text)
                found = self.grams.intersection(zip(chars, chars, chars, chars, strict=False))
                if found:
                    text = self._mask_windows(text, found)
        for secret in self.short:
            text = text.replace(secret, MASK)
        return text

    def _mask_windows(self, text: str, found: set[tuple[str, ...]]) -> str:
        """`text` with the windows masked, given the grams found in it (usually one, and often
        one that only looks like a piece of a secret: "atch" of a path's "/catch/")."""
        windows, last = self.windows, len(text) - FRAGMENT
        starts = []
        for gram in found:
            piece = "".join(gram)
            at = text.find(piece)
            while at != -1:
                if not at % _GRAM:
                    # The windows that can hold this gram start at most a gram before it.
                    for start in range(max(0, at - _GRAM + 1), min(at, last) + 1):
                        if text[start:start + FRAGMENT] in windows:
                            starts.append(start)
                at = text.find(piece, at + 1)
        if not starts:
            return text
        out, done = [], 0
        for start in sorted(set(starts)):
            if start > done or not out:
                out += (text[done:start], MASK)
            done = start + FRAGMENT
        out.append(text[done:])
        return "".join(out)


_redactor = lru_cache(maxsize=64)(Redactor)


def one_line(text: str, limit: int = 1000) -> str:
    """`text` on one line (a server's message may carry newlines, which would let it forge log
    lines), at most `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def shown(value: Any, limit: int = 60) -> str:
    """A value the user gave, as an error message quotes it: its repr, at most `limit`
    characters; a number too long to print, or a value whose repr fails, by what it is."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"(a number of {value.bit_length()} bits)"
    try:
        text = repr(value)
    except Exception:  # a repr that fails must not turn an input error into a traceback
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
