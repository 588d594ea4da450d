"""TikTok handles as people paste them: `name`, `@name`, a profile URL, with stray spaces.

One regular expression says what is accepted; the manifests carry the same text as the
`pattern` of their `handle` field, so a form rejects exactly what the connector would.
"""

from __future__ import annotations

import re

from .errors import InputError

#: Letters, digits, '_' and '.', at most 24 characters, not ending with a period (so never only
#: periods): TikTok's own rule for a handle.
NAME = "[A-Za-z0-9_.]{0,23}[A-Za-z0-9_]"
#: What pasting leaves around a handle, as one character class the same in every engine
#: (Python's and JavaScript's `\\s` differ): ASCII and Unicode spaces and line breaks
#: (no-break, narrow, ideographic, ...), zero-width characters (space, joiners, word joiner,
#: byte order mark) and direction marks. Accepted around a handle, never inside one.
_INVISIBLE = ("\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u180e\\u2000-\\u200f\\u2028-\\u202f"
              "\\u205f-\\u2064\\u2066-\\u2069\\u3000\\ufeff")
_SPACE = f"[{_INVISIBLE}]"
_HOST = "(?:[A-Za-z0-9-]+\\.)*[Tt][Ii][Kk][Tt][Oo][Kk]\\.[Cc][Oo][Mm]"
_URL = f"(?:[Hh][Tt][Tt][Pp][Ss]?://)?{_HOST}/@{{name}}(?:[/?#][^{_INVISIBLE}]*)?"
_FORMS = f"(?:@?{_SPACE}*{{name}}|{_URL})"
#: The accepted forms as a JSON Schema (ECMA-262) pattern: a bare handle, @handle, or a
#: profile URL on a tiktok.com host (http or https, or no scheme), with what pasting leaves
#: around it. It ends with "nothing follows" rather than `$`, which in Python (jsonschema's
#: `re.search`) also matches before a final newline: the pattern must mean the same in every
#: engine.
PATTERN = f"^{_SPACE}*{_FORMS.format(name=NAME)}{_SPACE}*(?![\\s\\S])"
_ACCEPTED = re.compile(f"{_SPACE}*(?:@?{_SPACE}*(?P<bare>{NAME})|"
                       f"{_URL.format(name=f'(?P<url>{NAME})')}){_SPACE}*")
_AROUND = re.compile(f"^{_SPACE}+|{_SPACE}+$")
ACCEPTED_FORMS = "'name', '@name' or 'https://www.tiktok.com/@name'"
#: Longer input is refused before any parsing: a handle, even as a URL, is never this long.
MAX_INPUT = 500


def normalize_handle(value: object, *, field: str = "handle") -> str:
    """Return the bare lower-case handle, or raise InputError showing the accepted forms."""
    if not isinstance(value, str) or not _AROUND.sub("", value):
        raise InputError(f"{field} is required: give a TikTok handle as {ACCEPTED_FORMS}",
                         field=field)
    match = _ACCEPTED.fullmatch(value) if len(value) <= MAX_INPUT else None
    if match is None:
        raise InputError(f"{field}: {_shown(value)} {_why(value)}; give {ACCEPTED_FORMS}",
                         field=field)
    return (match.group("bare") or match.group("url")).lower()


def _why(value: str) -> str:
    """What is wrong with a value that is not accepted, in the user's terms."""
    text = _AROUND.sub("", value)
    if len(value) > MAX_INPUT:
        return f"is over {MAX_INPUT} characters"
    if "/" not in text and ":" not in text:
        if re.fullmatch(f"@?{_SPACE}*[A-Za-z0-9_.]{{1,24}}", text) and text.endswith("."):
            return "is not a TikTok handle (a handle does not end with a period)"
        if re.search(_SPACE, text):
            return "is not a TikTok handle (it has a space or an invisible character inside)"
        return ("is not a TikTok handle (letters, digits, '_' and '.', at most 24 "
                "characters)")
    host = re.match(r"(?:[A-Za-z][A-Za-z0-9+.-]*://)?([^/?#@:]*)", text)
    name = host.group(1).lower() if host else ""
    if (re.fullmatch(_HOST, name) and re.match(r"(?:https?://)?[^/]*/", text, re.I)
            and not re.search(f"/@{NAME}(?:[/?#]|$)", text)):
        return "is a URL without an @handle in it"
    return "is not a TikTok profile URL (https on a tiktok.com host)"


def _shown(value: str) -> str:
    """The value as it was given, invisible characters made visible (`'name\\xa0'`)."""
    return repr(value if len(value) <= 60 else value[:57] + "...")
