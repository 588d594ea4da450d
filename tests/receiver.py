"""A webhook receiver on loopback for the `watch` tests: it records every request, and can be
told to answer an error, to be slow, to be down (its port closed) and up again, to keep its
connections alive, and to drop requests without answering."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as it arrived (recorded before any delay, so a test sees it in flight)."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None

    @property
    def event_id(self) -> str | None:
        return self.body.get("eventId") if isinstance(self.body, dict) else None


class Receiver:
    """Use as a context manager; `url` is the hook URL. Answers 200 unless told otherwise."""

    def __init__(self, *, keep_alive: bool = False) -> None:
        #: HTTP/1.1 with connections kept alive between requests (else one request each).
        self.keep_alive = keep_alive
        #: Requests still to drop: read, recorded, and the connection closed without an answer.
        #: With `reused_only`, only requests on a connection that already served one.
        self.drop = 0
        self.reused_only = False
        self.requests: list[Received] = []
        #: Status for requests with nothing queued by `answer()`.
        self.status = 200
        #: Seconds to wait before answering.
        self.delay = 0.0
        self._queued: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if self.keep_alive else "HTTP/1.0"
            served = 0

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                status = receiver._record(Received(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.served += 1
                if receiver._dropping(reused=self.served > 1):
                    self.close_connection = True  # closed unanswered, as a crash would
                    return
                if receiver.delay:
                    time.sleep(receiver.delay)
                payload = json.dumps({"ok": 200 <= status < 300}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # socketserver's 5 overflows under many senders at once
            allow_reuse_address = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a watch killed mid-request leaves a broken pipe behind: expected here

        # The same port on every start, so "down, then up" is the same URL.
        self._server = Server(("127.0.0.1", self._port), Handler)
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the port: deliveries now fail with connection refused."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in order."""
        with self._lock:
            self._queued.extend(statuses)

    def _dropping(self, *, reused: bool) -> bool:
        with self._lock:
            if self.drop > 0 and (reused or not self.reused_only):
                self.drop -= 1
                return True
            return False

    def _record(self, received: Received) -> int:
        with self._lock:
            self.requests.append(received)
            return self._queued.pop(0) if self._queued else self.status

    def event_ids(self) -> list[str]:
        with self._lock:
            return [r.event_id for r in self.requests if r.event_id]

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until at least `n` requests have arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= n:
                return True
            time.sleep(0.01)
        return False

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[Received]:
        return iter(list(self.requests))
