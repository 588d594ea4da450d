"""The stand-in server: DumplingAI's `POST /api/v1/get-tiktok-user-following` on loopback.

It serves the world (world.py) with the documented pagination, errors and rate-limit headers
(limits.py), and misbehaves when told to (faults.py), so the connector's retry and paging
guards can be tested without the network. This module is the StandIn itself: its lifecycle,
its world's verbs, the requests it saw and the faults queued; what a request gets is in
endpoint.py, the sockets in handler.py. Standard library and the connector's core only.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from ..core.config import is_loopback
from .endpoint import Reply, answer
from .faults import ENDPOINT, Fault
from .handler import Handler, Server, Server6
from .limits import Meter
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
        self._server: Server | None = None
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
        server_cls = Server6 if ":" in self.host else Server
        self._server = server_cls((self.host, self.port), Handler)
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

    def _dispatch(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
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
            reply = answer(self.world, self.meter, self.api_keys, method, path, headers, body,
                           record.handle, fault)
            if fault is not None:
                reply.apply(fault)
            record.status = reply.status
        return reply



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
