"""The stand-in's fault language: scripted misbehaviour, one fault per matching request.

    standin.inject(*script("502*2, reset, ok, 429"))

Also the endpoint's documented error messages, which faults and real answers share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.client import responses

ENDPOINT = "/api/v1/get-tiktok-user-following"

MSG_INVALID_JSON = "Invalid JSON in request body"
MSG_HANDLE_REQUIRED = "'handle' parameter is required and must be a non-empty string."
MSG_BAD_KEY = "API key is invalid or missing."
MSG_NO_CREDITS = "Insufficient credits. Please top up your account."
MSG_NOT_FOUND = "Following list not found for user: {handle}"
MSG_RATE_LIMITED = "Rate limit exceeded. Please try again later."
MSG_SERVER_ERROR = (
    "An unexpected server error occurred while fetching the TikTok user following: injected"
)
MSG_UNAVAILABLE = "The following service is currently unavailable."


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, applied to the next matching request. Fields combine freely."""

    status: int | None = None  # answer with this status and its documented body
    body: bytes | str | None = None  # raw body to send instead
    headers: dict[str, str] = field(default_factory=dict)  # extra or overriding headers
    retry_after: float | None = None  # adds Retry-After (rounded up to whole seconds)
    delay: float = 0  # seconds to sleep before answering
    html: bool = False  # an HTML error page (the status, or 502)
    truncate: bool = False  # Content-Length larger than the body sent, then close
    reset: bool = False  # close with an RST and no response at all
    hang: bool = False  # no response at all until the client hangs up (its read timeout)
    stall_cursor: bool = False  # minCursor = the minTime sent, hasMore true
    empty_page: bool = False  # 200, no items, hasMore true, cursors echo the request
    advance_cursor: bool = False  # with empty_page: minCursor moves on past the page withheld
    repeat_boundary: int = 0  # prepend the N items just before the page start
    far_cursor: bool = False  # maxCursor a year ahead of the page's newest follow
    slow_body: float = 0  # dribble the body out over this many seconds
    malformed: bool = False  # 200 whose JSON lacks followingList
    wrong_shape: bool = False  # 200 whose followingList holds no {user, stats} objects

    @property
    def replaces_response(self) -> bool:
        """True when the fault answers by itself instead of serving the real page."""
        return (self.reset or self.hang or self.html or self.body is not None
                or self.status not in (None, 200))


OK = Fault()  # passes the request through untouched: a placeholder in a script
RESET = Fault(reset=True)
HANG = Fault(hang=True)
TRUNCATE = Fault(truncate=True)
HTML_502 = Fault(html=True)
ERROR_500 = Fault(status=500)
ERROR_502 = Fault(status=502)
ERROR_503 = Fault(status=503)
RATE_LIMITED = Fault(status=429, retry_after=1)
STALL = Fault(stall_cursor=True)
EMPTY_PAGE = Fault(empty_page=True)
EMPTY_ADVANCING = Fault(empty_page=True, advance_cursor=True)
MALFORMED = Fault(malformed=True)
WRONG_SHAPE = Fault(wrong_shape=True)
FAR_CURSOR = Fault(far_cursor=True)
REPEAT_BOUNDARY = Fault(repeat_boundary=2)

NAMED_FAULTS: dict[str, Fault] = {
    "ok": OK,
    "reset": RESET,
    "hang": HANG,
    "truncate": TRUNCATE,
    "html": HTML_502,
    "stall": STALL,
    "empty": EMPTY_PAGE,
    "empty_advancing": EMPTY_ADVANCING,
    "malformed": MALFORMED,
    "wrong_shape": WRONG_SHAPE,
    "far_cursor": FAR_CURSOR,
    "repeat": REPEAT_BOUNDARY,
    "429": RATE_LIMITED,
}


def script(spec: str) -> list[Fault]:
    """Faults from a short text, for tests: `"502*2, reset, ok, 429"`.

    Tokens are names from NAMED_FAULTS or a status code; `*N` repeats a token.
    """
    faults: list[Fault] = []
    for token in filter(None, (t.strip().lower() for t in spec.split(","))):
        name, _, times = token.partition("*")
        name = name.strip()
        fault = NAMED_FAULTS.get(name) or (Fault(status=int(name)) if name.isdigit() else None)
        if fault is None:
            raise ValueError(f"unknown fault {name!r} in {spec!r}")
        faults.extend([fault] * (int(times) if times else 1))
    return faults


def error_message(status: int, handle: str) -> str:
    """The documented message for an injected status."""
    messages = {
        400: MSG_HANDLE_REQUIRED,
        401: MSG_BAD_KEY,
        403: MSG_NO_CREDITS,
        404: MSG_NOT_FOUND.format(handle=handle),
        405: "Method not allowed",
        429: MSG_RATE_LIMITED,
        500: MSG_SERVER_ERROR,
        502: MSG_UNAVAILABLE,
        503: MSG_RATE_LIMITED,
    }
    return messages.get(status) or responses.get(status, f"HTTP {status}")


def html_page(status: int) -> bytes:
    """The kind of page a proxy in front of the API shows when it fails."""
    title = f"{status} {responses[status]}" if status in responses else str(status)
    return (
        f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center>"
        "<hr><center>nginx</center></body></html>"
    ).encode()

