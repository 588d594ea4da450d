"""The endpoint's answers: what one request to the stand-in gets, from the world (world.py),
the keys and the meter (limits.py), or from the fault it drew (faults.py). No sockets here:
handler.py writes the reply."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .faults import (
    ENDPOINT,
    MSG_BAD_KEY,
    MSG_HANDLE_REQUIRED,
    MSG_INVALID_JSON,
    MSG_NO_CREDITS,
    MSG_NOT_FOUND,
    MSG_RATE_LIMITED,
    OK,
    Fault,
    error_message,
    html_page,
)
from .limits import CREDITS_PER_CALL

if TYPE_CHECKING:
    from .server import RecordedRequest, StandIn


@dataclass
class Reply:
    """What the handler writes back, and the fault that says how (truncated, slowly) or
    whether (a reset, a hang) it is sent."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    fault: Fault = OK

    def apply(self, fault: Fault) -> None:
        """The fault's touches on the reply: its headers, and how it is sent."""
        self.headers.update(fault.headers)
        if fault.retry_after is not None:
            self.headers["Retry-After"] = str(math.ceil(fault.retry_after))
        self.fault = fault


def json_reply(status: int, payload: Any, headers: dict[str, str]) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Reply(status, body, {"Content-Type": "application/json", **headers})


def answer(standin: StandIn, request: RecordedRequest, fault: Fault) -> Reply:
    """The endpoint's answer, checked in the order the real one checks: route, method, key,
    rate, body, handle, credits, account; then the page. Call with the world's lock held;
    `fault` is OK when the request drew none."""
    meter, handle = standin.meter, request.handle
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    key = token.strip() if scheme.lower() == "bearer" else ""
    rate = meter.headers(key)

    def error(status: int, message: str, extra: dict[str, str] | None = None) -> Reply:
        return json_reply(status, {"error": message}, {**rate, **(extra or {})})

    if request.path != ENDPOINT:
        return error(404, "Not found")
    if request.method != "POST":
        return error(405, "Method not allowed", {"Allow": "POST"})
    if fault.replaces_response:
        return fault_reply(fault, handle or "", rate)
    if key not in standin.api_keys:
        return error(401, MSG_BAD_KEY)
    wait, rate = meter.take(key)
    if wait is not None:
        return error(429, MSG_RATE_LIMITED, {"Retry-After": str(wait)})
    if not isinstance(request.body, dict):
        return error(400, MSG_INVALID_JSON)
    if not handle:
        return error(400, MSG_HANDLE_REQUIRED)
    balance = meter.balance(key)
    if balance is not None and balance < CREDITS_PER_CALL:
        return error(403, MSG_NO_CREDITS)
    account = standin.accounts.get(handle)
    if account is None or account.private:
        return error(404, MSG_NOT_FOUND.format(handle=handle))
    standin.materialize(account)
    # Only a usable page costs credits: a fault's own answer (above), a malformed or
    # wrong-shaped one (here) and a truncated page are free.
    if fault.malformed:
        return json_reply(200, {"data": None}, rate)
    if fault.wrong_shape:
        listed = [e.user.get("uniqueId") for e in account.ordered()[:3]]
        return json_reply(200, {"followingList": listed, "hasMore": "yes"}, rate)
    page = standin.page(account, request.body, fault)
    if not fault.truncate:
        meter.spend(key)
    return json_reply(200, page, rate)


def fault_reply(fault: Fault, handle: str, rate: dict[str, str]) -> Reply:
    """The answer of a fault that replaces the endpoint's own (Fault.replaces_response)."""
    if fault.reset or fault.hang:
        return Reply(0)  # nothing is written: the handler resets or hangs (Reply.fault)
    status = fault.status if fault.status is not None else (502 if fault.html else 200)
    if fault.html:
        return Reply(status, html_page(status), {"Content-Type": "text/html", **rate})
    if fault.body is not None:
        raw = fault.body.encode() if isinstance(fault.body, str) else fault.body
        return Reply(status, raw, {"Content-Type": "application/json", **rate})
    if status == 429:
        rate = {**rate, "X-RateLimit-Remaining": "0", "Retry-After": "1"}
    return json_reply(status, {"error": error_message(status, handle)}, rate)
