"""A local stand-in for DumplingAI's `POST /api/v1/get-tiktok-user-following`.

It keeps a small in-memory world (accounts and who they follow), serves it over loopback with the
documented pagination, errors and rate-limit headers, and can inject faults so the connector's
retry and paging guards can be tested without the network. Standard library only, on purpose:
it must run before (and independently of) the rest of the package.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import socket
import struct
import sys
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import urlsplit

from .core.config import is_loopback
from .core.items import identity

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

#: Credits one successful page costs; a key below this gets 403.
CREDITS_PER_CALL = 10
#: Follow times of scripted accounts start here (demo accounts use epoch milliseconds).
SCRIPTED_EPOCH = 1_700_000_000

# Demo accounts: handle -> (past follows, seconds between new follows at speed 1 or None, private).
DEMO_ACCOUNTS: dict[str, tuple[int, float | None, bool]] = {
    "dumpling_demo": (120, 5.0, False),
    "busy_demo": (300, 1.0, False),
    "quiet_demo": (40, None, False),
    "private_demo": (25, None, True),
    "big_demo": (6000, None, False),
}
_DEMO_PAST_STEP_MS = 60_000  # past demo follows are one a minute, ending at start-up


def normalize_handle(value: str) -> str:
    """The handle as the server compares it: trimmed, one leading '@' dropped, lowercased."""
    value = value.strip()
    if value.startswith("@"):
        value = value[1:]
    return value.strip().lower()


# --------------------------------------------------------------------------- faults


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
    stall_cursor: bool = False  # minCursor = the minTime sent, hasMore true
    empty_page: bool = False  # 200, no items, hasMore true, cursors echo the request
    advance_cursor: bool = False  # with empty_page: minCursor moves on past the page withheld
    repeat_boundary: int = 0  # prepend the N items just before the page start
    slow_body: float = 0  # dribble the body out over this many seconds
    malformed: bool = False  # 200 whose JSON lacks followingList
    wrong_shape: bool = False  # 200 whose followingList holds no {user, stats} objects

    @property
    def replaces_response(self) -> bool:
        """True when the fault answers by itself instead of serving the real page."""
        overrides_status = self.status not in (None, 200)
        return self.reset or self.html or self.body is not None or overrides_status

    @property
    def spoils_page(self) -> bool:
        """True when the client gets no usable page: such requests cost no credits."""
        return self.replaces_response or self.truncate or self.malformed or self.wrong_shape


OK = Fault()  # passes the request through untouched: a placeholder in a script
RESET = Fault(reset=True)
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

NAMED_FAULTS: dict[str, Fault] = {
    "ok": OK,
    "reset": RESET,
    "truncate": TRUNCATE,
    "html": HTML_502,
    "stall": STALL,
    "empty": EMPTY_PAGE,
    "empty_advancing": EMPTY_ADVANCING,
    "malformed": MALFORMED,
    "wrong_shape": WRONG_SHAPE,
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


def _error_message(status: int, handle: str) -> str:
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
    if status in messages:
        return messages[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _html_page(status: int) -> bytes:
    """The kind of page a proxy in front of the API shows when it fails."""
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    return (
        f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center>"
        "<hr><center>nginx</center></body></html>"
    ).encode()


# --------------------------------------------------------------------------- the world


@dataclass
class RecordedRequest:
    """One request that reached the handler, as the server saw it."""

    path: str
    headers: dict[str, str]  # lowercase names
    body: Any  # parsed JSON, or None when the body was not JSON
    raw: bytes
    status: int = 0  # 0 until answered, and for a reset connection
    method: str = "POST"

    @property
    def handle(self) -> str | None:
        """The normalised handle from the body, if it had one."""
        handle = self.body.get("handle") if isinstance(self.body, dict) else None
        return normalize_handle(handle) if isinstance(handle, str) else None


@dataclass
class _Entry:
    time: int
    seq: int  # insertion order: breaks ties in time, later first
    user: dict[str, Any]
    stats: dict[str, Any]

    @property
    def key(self) -> str:
        """What identifies the user: the connector's one identity rule (id, secUid, handle,
        else a digest of the profile)."""
        return identity(self.user)


@dataclass
class _Account:
    private: bool = False
    boundary_repeats: bool | None = None
    entries: dict[str, _Entry] = field(default_factory=dict)  # by user key
    last_time: int | None = None  # newest time ever given; the next default is this + 1
    # Demo accounts gain follows lazily from the clock: first due at feed_start + interval.
    feed_interval: float | None = None
    feed_start: float = 0.0
    feed_done: int = 0
    feed_base: int = 0
    cache: list[_Entry] | None = field(default=None, repr=False)  # ordered(), until a change

    def ordered(self) -> list[_Entry]:
        """Newest follow first; ties by insertion, later first."""
        if self.cache is None:
            self.cache = sorted(self.entries.values(), key=lambda e: (e.time, e.seq), reverse=True)
        return self.cache


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False
    slow_body: float = 0.0
    reset: bool = False


def _json_reply(status: int, payload: Any, headers: dict[str, str]) -> _Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return _Reply(status, body, {"Content-Type": "application/json", **headers})


def _number(value: Any) -> float | None:
    """A JSON number or numeric string, else None (bool is not a number here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return value
    return None


class StandIn:
    """The stand-in server plus its world. Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Iterable[str] = ("sandbox-key",),
        credits: dict[str, int] | None = None,
        depth_cap: int = 5000,
        default_count: int = 30,
        max_count: int = 100,
        rate_limit: int = 6000,
        rate_window: float = 60.0,
        boundary_repeats: bool = False,
        demo: bool = False,
        demo_speed: float = 1.0,
        demo_epoch: float | None = None,
        latency: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"the stand-in only listens on loopback, not {host!r}")
        if demo_speed <= 0:
            raise ValueError("demo_speed must be positive")
        self.host = host
        self.port = port
        self.api_keys = list(api_keys)
        if not self.api_keys:
            raise ValueError("at least one API key is needed")
        # None = unlimited; keys missing from the dict are unlimited too.
        self.credits = dict(credits) if credits is not None else None
        self.depth_cap = depth_cap
        self.default_count = default_count
        self.max_count = max_count
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.boundary_repeats = boundary_repeats
        self.demo_speed = demo_speed
        # A fixed epoch gives separate processes the same demo world (the CLI's --sandbox).
        self.demo_epoch = demo_epoch
        #: Seconds added to every endpoint request, like a distant upstream (benchmarks).
        self.latency = latency
        #: The most requests ever in flight at once: what a client's concurrency really was.
        self.peak_in_flight = 0
        self._in_flight = 0
        self.clock = clock
        self.requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._accounts: dict[str, _Account] = {}
        self._faults: list[tuple[str | None, Fault]] = []
        self._windows: dict[str, tuple[int, int]] = {}  # key -> (window index, used)
        self._seq = 0
        self._next_user = 1
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._serving_here = False  # serve_forever() runs in the caller's thread
        if demo:
            self._add_demo_accounts()

    # ----------------------------------------------------------------- lifecycle

    @property
    def api_key(self) -> str:
        """The first API key: the one a test or the demo uses."""
        return self.api_keys[0]

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:PORT (valid after start)."""
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        host, port = self._server.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def endpoint(self) -> str:
        """Full URL of the endpoint."""
        return self.url + ENDPOINT

    def _bind(self) -> None:
        server_cls = _Server6 if ":" in self.host else _Server
        self._server = server_cls((self.host, self.port), _Handler)
        self._server.standin = self

    def start(self) -> StandIn:
        """Serve in a daemon thread; returns self."""
        if self._thread is not None:
            return self
        if self._server is None:
            self._bind()
        assert self._server is not None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # stop() waits up to one poll
            name="dumpling-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections, so pooled clients see it gone."""
        server, self._server = self._server, None
        if server is None:
            return
        if self._thread is not None or self._serving_here:
            server.shutdown()  # waits for the serve loop to exit; it never returns if none runs
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        server.close_connections()
        server.server_close()

    def serve_forever(self) -> None:
        """Serve in the calling thread until Ctrl-C (for the CLI)."""
        if self._server is None:
            self._bind()
        assert self._server is not None
        try:
            if self._thread is None:
                self._serving_here = True
                try:
                    self._server.serve_forever(poll_interval=0.2)
                finally:
                    self._serving_here = False
            else:
                while self._thread.is_alive():
                    self._thread.join(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- the world

    def make_user(self, n: int) -> dict[str, Any]:
        """A deterministic generated user; its "stats" key becomes the item's stats."""
        rng = random.Random(n)
        return {
            "id": f"7{n % 10**18:018d}",
            "uniqueId": f"user{n}",
            "nickname": f"User {n}",
            "avatarThumb": f"https://p16-sign.tiktokcdn.example/avatar/user{n}.jpeg",
            "signature": f"bio of user {n}",
            "verified": n % 50 == 0,
            "secUid": f"MS4wLjABAAAA{n:012d}",
            "privateAccount": n % 23 == 0,
            "stats": {
                "followerCount": rng.randrange(0, 2_000_000),
                "followingCount": rng.randrange(0, 5_000),
                "heartCount": rng.randrange(0, 50_000_000),
                "videoCount": rng.randrange(0, 2_000),
                "diggCount": rng.randrange(0, 100_000),
            },
        }

    def add_account(
        self,
        handle: str,
        follows: int | Iterable[dict[str, Any]] = 0,
        *,
        private: bool = False,
        boundary_repeats: bool | None = None,
    ) -> None:
        """Create an account; `follows` is a count of generated users or dicts, oldest first."""
        key = normalize_handle(handle)
        with self._lock:
            if key in self._accounts:
                raise ValueError(f"account {key!r} already exists")
            self._accounts[key] = _Account(private=private, boundary_repeats=boundary_repeats)
            if isinstance(follows, int):
                self.follow_many(key, follows)
            else:
                for user in follows:
                    self.follow(key, user)

    def follow(
        self, handle: str, user: dict[str, Any] | None = None, *, at: int | None = None
    ) -> dict[str, Any]:
        """`handle` follows `user` (generated when None) at time `at` (default: newest + 1).

        `user` is a user dict (an optional "stats" key is taken as the stats) or a whole item
        {"user": ..., "stats": ...}. Following someone already followed moves them to the top.
        Unknown handles are created as public accounts. Returns a copy of the user dict.
        """
        with self._lock:
            account = self._accounts.setdefault(normalize_handle(handle), _Account())
            if user is None:
                user = self.make_user(self._next_user)
                self._next_user += 1
            return self._add_entry(account, user, at)

    def follow_many(self, handle: str, n: int) -> list[dict[str, Any]]:
        """`handle` follows `n` generated users, one time step apart."""
        with self._lock:
            return [self.follow(handle) for _ in range(n)]

    def unfollow(self, handle: str, user_id: str) -> None:
        """Remove a followed user by id, secUid, handle or identity key."""
        with self._lock:
            account = self._account(handle)
            keys = [k for k, e in account.entries.items()
                    if user_id in (k, e.user.get("id"), e.user.get("secUid"),
                                   e.user.get("uniqueId"))]
            if not keys:
                raise KeyError(f"{handle!r} does not follow {user_id!r}")
            for key in keys:
                del account.entries[key]
            account.cache = None

    def following(self, handle: str) -> list[dict[str, Any]]:
        """The current list of followed users, newest first (copies)."""
        with self._lock:
            account = self._account(handle)
            self._materialize(account)
            return [copy.deepcopy(e.user) for e in account.ordered()]

    def _account(self, handle: str) -> _Account:
        try:
            return self._accounts[normalize_handle(handle)]
        except KeyError:
            raise KeyError(f"no account {handle!r}") from None

    def _add_entry(self, account: _Account, user: dict[str, Any], at: int | None) -> dict[str, Any]:
        if isinstance(user.get("user"), dict):
            user, stats = copy.deepcopy(user["user"]), copy.deepcopy(user.get("stats") or {})
        else:
            user = copy.deepcopy(user)
            stats = user.pop("stats", None) or {}
        if at is None:
            at = SCRIPTED_EPOCH if account.last_time is None else account.last_time + 1
        entry = _Entry(at, self._seq, user, stats)
        self._seq += 1
        account.last_time = at if account.last_time is None else max(account.last_time, at)
        # A user appears once in a following list: a re-follow moves them to the top.
        account.entries.pop(entry.key, None)
        account.entries[entry.key] = entry
        account.cache = None
        return copy.deepcopy(user)

    def _add_demo_accounts(self) -> None:
        start = self.demo_epoch if self.demo_epoch is not None else self.clock()
        start_ms = int(start * 1000)
        for index, (handle, (past, interval, private)) in enumerate(DEMO_ACCOUNTS.items()):
            account = _Account(private=private)
            account.feed_base = (index + 1) * 1_000_000
            for i in range(past):
                user = self.make_user(account.feed_base + i)
                self._add_entry(account, user, start_ms - (past - i) * _DEMO_PAST_STEP_MS)
            if interval is not None:
                account.feed_interval = interval / self.demo_speed
                account.feed_start = start
                account.feed_base += past
            self._accounts[handle] = account

    def _materialize(self, account: _Account) -> None:
        """Add the demo follows that the clock says are due by now."""
        if account.feed_interval is None:
            return
        due = int((self.clock() - account.feed_start) / account.feed_interval)
        while account.feed_done < due:
            account.feed_done += 1
            at = account.feed_start + account.feed_done * account.feed_interval
            user = self.make_user(account.feed_base + account.feed_done)
            self._add_entry(account, user, int(at * 1000))

    # ----------------------------------------------------------------- observing and faults

    def reset_log(self) -> None:
        """Forget recorded requests."""
        with self._lock:
            self.requests.clear()

    def count_requests(self, handle: str | None = None) -> int:
        """Requests that reached the handler (any status), optionally only for one handle."""
        with self._lock:
            if handle is None:
                return len(self.requests)
            key = normalize_handle(handle)
            return sum(1 for r in self.requests if r.handle == key)

    def inject(self, *faults: Fault, handle: str | None = None) -> None:
        """Queue faults; each is used by one matching request (any handle when None), FIFO."""
        key = normalize_handle(handle) if handle is not None else None
        with self._lock:
            self._faults.extend((key, f) for f in faults)

    def clear_faults(self) -> None:
        """Drop queued faults."""
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        """Faults not used yet."""
        with self._lock:
            return len(self._faults)

    def _take_fault(self, handle: str | None) -> Fault | None:
        for i, (key, fault) in enumerate(self._faults):
            if key is None or key == handle:
                del self._faults[i]
                return fault
        return None

    # ----------------------------------------------------------------- request handling

    def _dispatch(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> _Reply:
        """Answer one request: record it, apply a fault if one matches, else serve the page."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RecordedRequest(path, headers, body, raw, method=method)
        fault = None
        with self._lock:
            self.requests.append(record)
            if path == ENDPOINT and method == "POST":
                fault = self._take_fault(record.handle)
        # Sleep outside the lock so other requests keep flowing, and before computing the page
        # so a demo account is read as of when the answer leaves.
        with self._lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            delay = self.latency + (fault.delay if fault is not None else 0.0)
            if delay > 0:
                time.sleep(delay)
        finally:
            with self._lock:
                self._in_flight -= 1
        with self._lock:
            reply = self._answer(method, path, headers, body, record.handle, fault)
            if fault is not None:
                reply.headers.update(fault.headers)
                if fault.retry_after is not None:
                    reply.headers["Retry-After"] = str(math.ceil(fault.retry_after))
                reply.truncate = fault.truncate
                reply.slow_body = fault.slow_body
            record.status = 0 if reply.reset else reply.status
        return reply

    def _rate_headers(self, key: str, remaining: int | None = None) -> dict[str, str]:
        if remaining is None:
            window, used = self._windows.get(key, (-1, 0))
            remaining = (
                self.rate_limit - used if window == self._window_index() else self.rate_limit
            )
        return {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Remaining": str(remaining)}

    def _window_index(self) -> int:
        return int(self.clock() // self.rate_window)

    def _answer(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Any,
        handle: str | None,
        fault: Fault | None,
    ) -> _Reply:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
        rate = self._rate_headers(key)

        def error(status: int, message: str, extra: dict[str, str] | None = None) -> _Reply:
            return _json_reply(status, {"error": message}, {**rate, **(extra or {})})

        if path != ENDPOINT:
            return error(404, "Not found")
        if method != "POST":
            return error(405, "Method not allowed", {"Allow": "POST"})
        if fault is not None and fault.replaces_response:
            return self._fault_reply(fault, handle or "", rate)
        if key not in self.api_keys:
            return error(401, MSG_BAD_KEY)
        window = self._window_index()
        start, used = self._windows.get(key, (window, 0))
        if start != window:
            used = 0
        if used >= self.rate_limit:
            wait = max(1, math.ceil((window + 1) * self.rate_window - self.clock()))
            rate = self._rate_headers(key, 0)
            return error(429, MSG_RATE_LIMITED, {"Retry-After": str(wait)})
        self._windows[key] = (window, used + 1)
        rate = self._rate_headers(key, self.rate_limit - used - 1)
        if not isinstance(body, dict):
            return error(400, MSG_INVALID_JSON)
        if not handle:
            return error(400, MSG_HANDLE_REQUIRED)
        balance = None if self.credits is None else self.credits.get(key)
        if balance is not None and balance < CREDITS_PER_CALL:
            return error(403, MSG_NO_CREDITS)
        account = self._accounts.get(handle)
        if account is None or account.private:
            return error(404, MSG_NOT_FOUND.format(handle=handle))
        self._materialize(account)
        if fault is not None and fault.malformed:
            return _json_reply(200, {"data": None}, rate)
        if fault is not None and fault.wrong_shape:
            listed = [e.user.get("uniqueId") for e in account.ordered()[:3]]
            return _json_reply(200, {"followingList": listed, "hasMore": "yes"}, rate)
        page = self._page(account, body, fault)
        if balance is not None and not (fault is not None and fault.spoils_page):
            self.credits[key] = balance - CREDITS_PER_CALL  # type: ignore[index]
        return _json_reply(200, page, rate)

    def _fault_reply(self, fault: Fault, handle: str, rate: dict[str, str]) -> _Reply:
        if fault.reset:
            return _Reply(0, reset=True)
        status = fault.status if fault.status is not None else (502 if fault.html else 200)
        if fault.html:
            return _Reply(status, _html_page(status), {"Content-Type": "text/html", **rate})
        if fault.body is not None:
            raw = fault.body.encode() if isinstance(fault.body, str) else fault.body
            return _Reply(status, raw, {"Content-Type": "application/json", **rate})
        extra = {}
        if status == 429:
            rate = {**rate, "X-RateLimit-Remaining": "0"}
            extra["Retry-After"] = "1"
        return _json_reply(status, {"error": _error_message(status, handle)}, {**rate, **extra})

    def _page(self, account: _Account, body: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        """One page of the account's list for this request's minTime and count."""
        count = _number(body.get("count"))
        size = self.default_count if count is None or count < 1 else int(count)
        size = min(size, self.max_count)
        min_time = _number(body.get("minTime"))
        repeats = account.boundary_repeats
        if repeats is None:
            repeats = self.boundary_repeats
        reachable = account.ordered()[: self.depth_cap]
        total = len(account.entries)
        # The list is newest first; on negated times it is ascending, so bisect finds the start.
        negated = [-e.time for e in reachable]
        if min_time is None:
            start = 0
        elif repeats:
            start = bisect_left(negated, -min_time)  # time <= minTime
        else:
            start = bisect_right(negated, -min_time)  # time < minTime
        end = min(start + size, len(reachable))
        page = reachable[start:end]
        if fault is not None and fault.repeat_boundary > 0:
            page = reachable[max(0, start - fault.repeat_boundary) : start] + page

        # The position the client asked from, for faults whose cursor must not move.
        if min_time is not None:
            asked: float = int(min_time) if min_time == int(min_time) else min_time
        elif reachable:
            asked = reachable[0].time + (0 if repeats else 1)
        else:
            asked = 0
        if fault is not None and fault.empty_page:
            # The page's accounts withheld; with advance_cursor the cursor still moves past them.
            moved = page[-1].time if fault.advance_cursor and page else asked
            return {
                "followingList": [],
                "maxCursor": asked,
                "minCursor": moved,
                "hasMore": True,
                "total": total,
            }
        if not page:
            empty = {"followingList": [], "maxCursor": 0, "minCursor": 0, "hasMore": False}
            return {**empty, "total": total}
        min_cursor: float = page[-1].time
        has_more = end < len(reachable)
        if end >= self.depth_cap:
            # The upstream stops here whatever lies beyond, and says so with -1.
            min_cursor, has_more = -1, False
        if fault is not None and fault.stall_cursor:
            min_cursor, has_more = asked, True
        return {
            "followingList": [
                {"user": copy.deepcopy(e.user), "stats": copy.deepcopy(e.stats)} for e in page
            ],
            "maxCursor": page[0].time,
            "minCursor": min_cursor,
            "hasMore": has_more,
            "total": total,
        }


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that is quiet and can drop its open connections on stop."""

    daemon_threads = True
    standin: StandIn

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def track(self, conn: socket.socket, open_: bool) -> None:
        with self._conns_lock:
            if open_:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response are part of the game here; real bugs still print.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    """Reads the request, asks the StandIn for a reply, writes it (or misbehaves as told)."""

    protocol_version = "HTTP/1.1"  # keep-alive, so clients can pool connections
    # Headers and body go out in two writes: without TCP_NODELAY each response would wait
    # ~40 ms on loopback for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "DumplingStandIn/1.0"
    timeout = 30  # idle keep-alive connections do not hold a thread forever
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and the demo CLI should not be drowned in access logs

    def _handle(self) -> None:
        method = self.command
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length, self.close_connection = 0, True
        if self.headers.get("Transfer-Encoding"):
            # Chunked request bodies are not read; closing keeps them from poisoning the stream.
            self.close_connection = True
        raw = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.standin._dispatch(method, urlsplit(self.path).path, headers, raw)
        try:
            self._write(reply, head_only=method == "HEAD")
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle

    def _write(self, reply: _Reply, *, head_only: bool = False) -> None:
        if reply.reset:
            # Linger 0 makes close() send an RST instead of a FIN: a connection reset by peer.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        body = sent = reply.body
        declared = len(body)
        if reply.truncate:
            # Promise the whole body, send half of it: the client sees an incomplete read.
            sent = body[: len(body) // 2]
            declared = max(declared, len(sent) + 1)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        if head_only:
            return
        if reply.slow_body > 0 and sent:
            chunk = max(1, math.ceil(len(sent) / 10))
            pieces = [sent[i : i + chunk] for i in range(0, len(sent), chunk)]
            for piece in pieces:
                self.wfile.write(piece)
                time.sleep(reply.slow_body / len(pieces))
        else:
            self.wfile.write(sent)
        if reply.truncate:
            self.close_connection = True


# --------------------------------------------------------------------------- CLI entry


def serve(
    port: int = 8787, host: str = "127.0.0.1", *, demo: bool = True, out: TextIO = sys.stderr
) -> None:
    """Run a demo stand-in in the foreground until Ctrl-C (for `tiktok-following sandbox`)."""
    if not is_loopback(host):
        raise ValueError(f"the stand-in only listens on loopback, not {host!r}")
    standin = StandIn(host=host, port=port, demo=demo)
    standin._bind()
    handles = ", ".join(DEMO_ACCOUNTS) if demo else "(none)"
    print(f"DumplingAI stand-in listening on {standin.url}", file=out)
    print(f"  endpoint: POST {standin.endpoint}", file=out)
    print(f"  API key:  {standin.api_key}", file=out)
    print(f"  handles:  {handles}", file=out)
    print("Press Ctrl-C to stop.", file=out, flush=True)
    standin.serve_forever()
