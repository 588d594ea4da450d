"""The stand-in server: DumplingAI's `POST /api/v1/get-tiktok-user-following` on loopback.

It serves the world (world.py) with the documented pagination, errors and rate-limit headers
(limits.py), and misbehaves when told to (faults.py), so the connector's retry and paging
guards can be tested without the network. Standard library and the connector's core only.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import urlsplit

from ..core.config import is_loopback
from .faults import (
    ENDPOINT,
    MSG_BAD_KEY,
    MSG_HANDLE_REQUIRED,
    MSG_INVALID_JSON,
    MSG_NO_CREDITS,
    MSG_NOT_FOUND,
    MSG_RATE_LIMITED,
    Fault,
    error_message,
    html_page,
)
from .limits import CREDITS_PER_CALL, Meter
from .world import DEMO_ACCOUNTS, World, server_handle


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
        return server_handle(handle) if isinstance(handle, str) else None


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
        self.host = host
        self.port = port
        self.api_keys = list(api_keys)
        if not self.api_keys:
            raise ValueError("at least one API key is needed")
        self.world = World(depth_cap=depth_cap, default_count=default_count,
                           max_count=max_count, boundary_repeats=boundary_repeats, demo=demo,
                           demo_speed=demo_speed, demo_epoch=demo_epoch, clock=clock)
        self.meter = Meter(rate_limit=rate_limit, rate_window=rate_window, credits=credits,
                           clock=clock)
        #: Seconds added to every endpoint request, like a distant upstream (benchmarks).
        self.latency = latency
        #: The most requests ever in flight at once: what a client's concurrency really was.
        self.peak_in_flight = 0
        self._in_flight = 0
        self.clock = clock
        self.requests: list[RecordedRequest] = []
        self._lock = self.world.lock
        self._faults: list[tuple[str | None, Fault]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._serving_here = False  # serve_forever() runs in the caller's thread

    @property
    def credits(self) -> dict[str, int] | None:
        """Credit balances by API key (None: unlimited)."""
        return self.meter.credits


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
        return self.world.make_user(n)

    def add_account(self, handle: str, follows: int | Iterable[dict[str, Any]] = 0, *,
                    private: bool = False, boundary_repeats: bool | None = None) -> None:
        """Create an account; `follows` is a count of generated users or dicts, oldest first."""
        self.world.add_account(handle, follows, private=private,
                               boundary_repeats=boundary_repeats)

    def follow(self, handle: str, user: dict[str, Any] | None = None, *,
               at: int | None = None) -> dict[str, Any]:
        """`handle` follows `user` (generated when None) at time `at` (default: newest + 1);
        a re-follow moves the user to the top. Returns a copy of the user dict."""
        return self.world.follow(handle, user, at=at)

    def follow_many(self, handle: str, n: int) -> list[dict[str, Any]]:
        """`handle` follows `n` generated users, one time step apart."""
        return self.world.follow_many(handle, n)

    def unfollow(self, handle: str, user_id: str) -> None:
        """Remove a followed user by id, secUid, handle or identity key."""
        self.world.unfollow(handle, user_id)

    def following(self, handle: str) -> list[dict[str, Any]]:
        """The current list of followed users, newest first (copies)."""
        return self.world.following(handle)

    def set_total(self, handle: str, total: int | str | None) -> None:
        """What `total` says from now on: None, the true count (the default); "missing", no
        `total` at all; a number, that number whatever the list holds (a stale count)."""
        self.world.set_total(handle, total)

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
            key = server_handle(handle)
            return sum(1 for r in self.requests if r.handle == key)

    def inject(self, *faults: Fault, handle: str | None = None) -> None:
        """Queue faults; each is used by one matching request (any handle when None), FIFO."""
        key = server_handle(handle) if handle is not None else None
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
        rate = self.meter.headers(key)

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
        wait, rate = self.meter.take(key)
        if wait is not None:
            return error(429, MSG_RATE_LIMITED, {"Retry-After": str(wait)})
        if not isinstance(body, dict):
            return error(400, MSG_INVALID_JSON)
        if not handle:
            return error(400, MSG_HANDLE_REQUIRED)
        balance = self.meter.balance(key)
        if balance is not None and balance < CREDITS_PER_CALL:
            return error(403, MSG_NO_CREDITS)
        account = self.world.accounts.get(handle)
        if account is None or account.private:
            return error(404, MSG_NOT_FOUND.format(handle=handle))
        self.world.materialize(account)
        if fault is not None and fault.malformed:
            return _json_reply(200, {"data": None}, rate)
        if fault is not None and fault.wrong_shape:
            listed = [e.user.get("uniqueId") for e in account.ordered()[:3]]
            return _json_reply(200, {"followingList": listed, "hasMore": "yes"}, rate)
        page = self.world.page(account, body, fault)
        if not (fault is not None and fault.spoils_page):
            self.meter.spend(key)
        return _json_reply(200, page, rate)

    def _fault_reply(self, fault: Fault, handle: str, rate: dict[str, str]) -> _Reply:
        if fault.reset:
            return _Reply(0, reset=True)
        status = fault.status if fault.status is not None else (502 if fault.html else 200)
        if fault.html:
            return _Reply(status, html_page(status), {"Content-Type": "text/html", **rate})
        if fault.body is not None:
            raw = fault.body.encode() if isinstance(fault.body, str) else fault.body
            return _Reply(status, raw, {"Content-Type": "application/json", **rate})
        extra = {}
        if status == 429:
            rate = {**rate, "X-RateLimit-Remaining": "0"}
            extra["Retry-After"] = "1"
        return _json_reply(status, {"error": error_message(status, handle)}, {**rate, **extra})





# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that is quiet and can drop its open connections on stop."""

    daemon_threads = True
    # The listen backlog of a real server: socketserver's 5 overflows when clients open their
    # connection pools at once (watch --processes), and the kernel then drops or resets some.
    request_queue_size = 128
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
