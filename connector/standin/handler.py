"""The stand-in's HTTP plumbing: its server and the keep-alive handler that writes a reply
(endpoint.py), or misbehaves as its fault says (a reset, a truncated or slow body, silence)."""

from __future__ import annotations

import contextlib
import math
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .endpoint import Reply

if TYPE_CHECKING:
    from .server import StandIn


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that is quiet and can drop its open connections on stop."""

    daemon_threads = True
    # The listen backlog of a real server: socketserver's 5 overflows when clients open their
    # connection pools at once (watch --processes), and the kernel then drops or resets some.
    request_queue_size = 128
    standin: StandIn

    def __init__(self, address: tuple[str, int], handler: type[Handler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

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


class Handler(BaseHTTPRequestHandler):
    """Reads the request, asks the StandIn for a reply, writes it (or misbehaves as told)."""

    protocol_version = "HTTP/1.1"  # keep-alive, so clients can pool connections
    # Headers and body go out in two writes: without TCP_NODELAY each response would wait
    # ~40 ms on loopback for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "DumplingStandIn/1.0"
    timeout = 30  # idle keep-alive connections do not hold a thread forever
    server: Server

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

    def _write(self, reply: Reply, *, head_only: bool = False) -> None:
        fault = reply.fault
        if fault.reset:
            # Linger 0 makes close() send an RST instead of a FIN: a connection reset by peer.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if fault.hang:
            self._hang()
            return
        body = sent = reply.body
        declared = len(body)
        if fault.truncate:
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
        if fault.slow_body > 0 and sent:
            chunk = max(1, math.ceil(len(sent) / 10))
            pieces = [sent[i : i + chunk] for i in range(0, len(sent), chunk)]
            for piece in pieces:
                self.wfile.write(piece)
                time.sleep(fault.slow_body / len(pieces))
        else:
            self.wfile.write(sent)
        if fault.truncate:
            self.close_connection = True

    def _hang(self) -> None:
        """Answer nothing until the client hangs up (its read timeout, however long that
        takes), the stand-in stops, or the handler's own timeout passes; then close."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            while self.connection.recv(4096):
                pass
