"""The stand-in server: DumplingAI's `POST /api/v1/get-tiktok-user-following` on loopback.

It serves the world (world.py) with the documented pagination, errors and rate-limit headers
(limits.py), and misbehaves when told to (faults.py), so the connector's retry and paging
guards can be tested without the network. This module is the StandIn itself: its lifecycle,
the requests it saw and the faults queued (its world's verbs are World's); what a request
gets is in endpoint.py, the sockets in handler.py. Standard library and the connector's core only.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from ..core.config import host_port, is_loopback
from .endpoint import Reply, answer
from .faults import ENDPOINT, OK, Fault
from .handler import Handler, Server
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


class StandIn(World):
    """The stand-in server: its world (world.py: add_account, follow, follow_many, unfollow,
    following, set_total, make_user) served on loopback. Use as a context manager, or
    start()/stop()."""

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
        super().__init__(depth_cap=depth_cap, default_count=default_count, max_count=max_count,
                         boundary_repeats=boundary_repeats, demo=demo, demo_speed=demo_speed,
                         demo_epoch=demo_epoch, clock=clock)
        self.meter = Meter(rate_limit=rate_limit, rate_window=rate_window, credits=credits,
                           clock=clock)
        #: Seconds added to every endpoint request, like a distant upstream (benchmarks).
        self.latency = latency
        #: The most requests ever in flight at once: what a client's concurrency really was.
        self.peak_in_flight = 0
        self._in_flight = 0
        self.requests: list[RecordedRequest] = []
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
        return f"http://{host_port(*self._server.server_address[:2])}"

    @property
    def credentials(self) -> dict[str, str]:
        """The `credentials` that reach it (valid after start): its first key, its URL."""
        return {"apiKey": self.api_key, "baseUrl": self.url}

    @property
    def endpoint(self) -> str:
        """Full URL of the endpoint."""
        return self.url + ENDPOINT

    def _bound(self) -> Server:
        """The listening server, bound on first use."""
        if self._server is None:
            self._server = Server((self.host, self.port), Handler)
            self._server.standin = self
        return self._server

    def start(self) -> StandIn:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._bound().serve_forever,
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
        """Serve in the calling thread, not started in its own, until Ctrl-C (for the CLI)."""
        server = self._bound()
        try:
            self._serving_here = True
            try:
                server.serve_forever(poll_interval=0.2)
            finally:
                self._serving_here = False
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- observing and faults

    def reset_log(self) -> None:
        """Forget recorded requests."""
        with self.lock:
            self.requests.clear()

    def count_requests(self, handle: str | None = None) -> int:
        """Requests that reached the handler (any status), optionally only for one handle."""
        with self.lock:
            if handle is None:
                return len(self.requests)
            key = server_handle(handle)
            return sum(1 for r in self.requests if r.handle == key)

    def inject(self, *faults: Fault, handle: str | None = None) -> None:
        """Queue faults; each is used by one matching request (any handle when None), FIFO."""
        key = server_handle(handle) if handle is not None else None
        with self.lock:
            self._faults.extend((key, f) for f in faults)

    def clear_faults(self) -> None:
        """Drop queued faults."""
        with self.lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        """Faults not used yet."""
        with self.lock:
            return len(self._faults)

    def _take_fault(self, handle: str | None) -> Fault:
        """The first queued fault for `handle` (OK, which changes nothing, when none is)."""
        for i, (key, fault) in enumerate(self._faults):
            if key is None or key == handle:
                del self._faults[i]
                return fault
        return OK

    # ----------------------------------------------------------------- request handling

    def _dispatch(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Answer one request: record it, apply a fault if one matches, else serve the page."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RecordedRequest(path, headers, body, raw, method=method)
        with self.lock:
            self.requests.append(record)
            fault = (self._take_fault(record.handle) if path == ENDPOINT and method == "POST"
                     else OK)
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        # Sleep outside the lock so other requests keep flowing, and before computing the page
        # so a demo account is read as of when the answer leaves.
        try:
            delay = self.latency + fault.delay
            if delay > 0:
                time.sleep(delay)
        finally:
            with self.lock:
                self._in_flight -= 1
        with self.lock:
            reply = answer(self, record, fault)
            reply.apply(fault)
            record.status = reply.status
        return reply


def serve(
    port: int = 8787, host: str = "127.0.0.1", *, demo: bool = True, out: TextIO = sys.stderr
) -> None:
    """Run a demo stand-in in the foreground until Ctrl-C (for `tiktok-following sandbox`)."""
    standin = StandIn(host=host, port=port, demo=demo)
    standin._bound()
    handles = ", ".join(DEMO_ACCOUNTS) if demo else "(none)"
    print(f"DumplingAI stand-in listening on {standin.url}", file=out)
    print(f"  endpoint: POST {standin.endpoint}", file=out)
    print(f"  API key:  {standin.api_key}", file=out)
    print(f"  handles:  {handles}", file=out)
    print("Press Ctrl-C to stop.", file=out, flush=True)
    standin.serve_forever()
