"""The connection test: prove an API key with the cheapest request the endpoint allows.

The endpoint has no "who am I" route, and every successful request costs 10 credits; failed
requests cost nothing. So the default probe sends a request the endpoint must refuse, one with
an empty handle: a key it does not know gets 401, a key it knows gets 400 ("'handle' parameter
is required"), and neither costs a credit. That the key is checked before the body is an
inference (the endpoint's own list of errors, and every API gateway, work that way); a probe
with a real handle (`handle=...`, one account, 10 credits) proves it beyond doubt.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import BadRequestError
from ..core.handles import normalize_handle
from ..core.http import PageSource, RateLimit
from .results import CREDITS_PER_REQUEST


def check_credentials(client: PageSource, *, handle: str | None = None,
                      source: str = "API") -> dict[str, Any]:
    """Prove the client's key: a dict with `ok: true` and what it cost, or the typed error
    the endpoint answered with (AuthenticationError for a refused key)."""
    if handle is not None:
        name = normalize_handle(handle)
        page = client.fetch_page(name, count=1, request_source=source)
        return _ok(f"the API key works: @{name}'s following list was read (1 account)",
                   status=200, credits=CREDITS_PER_REQUEST, requests=page.attempts,
                   rate=page.rate_limit, probe="handle")
    try:
        page = client.fetch_page("", request_source=source)
    except BadRequestError as err:
        return _ok("the API key was accepted (the endpoint refused only the empty test "
                   "handle, at no cost)", status=400, credits=0,
                   requests=int(err.details.get("attempts") or 1),
                   rate=RateLimit.from_headers(err.headers), probe="empty-handle")
    # An endpoint that answers an empty handle with a page has charged for it.
    return _ok("the API key works (the endpoint answered the empty test handle with a page)",
               status=200, credits=CREDITS_PER_REQUEST, requests=page.attempts,
               rate=page.rate_limit, probe="empty-handle")


def _ok(message: str, *, status: int, credits: int, requests: int, rate: RateLimit,
        probe: str) -> dict[str, Any]:
    return {"ok": True, "message": message, "probe": probe, "status": status,
            "requests": requests, "creditsUsed": credits, "rateLimitLimit": rate.limit,
            "rateLimitRemaining": rate.remaining}
