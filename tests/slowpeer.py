"""Slow peers on loopback, for the deadline and slow-client tests: a server that trickles its
answer a byte at a time, and clients that trickle their requests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

BODY = (b'{"followingList": [], "hasMore": false, "minCursor": 1, "maxCursor": 2, '
        b'"total": 0, "padding": "' + b"x" * 200 + b'"}')
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
          % len(BODY) + BODY)
#: Where in ANSWER each part of it starts.
PARTS = {"status line": 0, "headers": ANSWER.index(b"\r\n") + 2,
         "body": ANSWER.index(b"\r\n\r\n") + 4}


class TricklingServer:
    """Answers every request with ANSWER: the bytes before `start` at once, then one byte
    every `every` seconds (the whole answer would take minutes). `url` is its base URL.
    Closing it breaks every connection, so no client stays blocked on it."""

    def __init__(self, *, start: int = 0, every: float = 0.5) -> None:
        self.start, self.every = start, every
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._conns: list[socket.socket] = []
        self._closed = threading.Event()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.recv(65536)
            self.requests += 1
            conn.sendall(ANSWER[:self.start])
            for byte in ANSWER[self.start:]:
                if self._closed.wait(self.every):
                    return
                conn.sendall(bytes([byte]))

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):  # wakes the accept() blocked on it (Linux)
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def __enter__(self) -> TricklingServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def trickling_clients(host: str, port: int, n: int, *, every: float = 0.3
                      ) -> Iterator[list[socket.socket]]:
    """`n` connections that each send a request one byte every `every` seconds and never
    finish it (a slowloris), until the block ends or the server closes them."""
    request = (b"POST /v1/run HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
               + b"X-a: b\r\n" * 999)
    conns = [socket.create_connection((host, port)) for _ in range(n)]
    stop = threading.Event()

    def dribble() -> None:
        alive = list(conns)
        for byte in request:
            for conn in list(alive):
                try:
                    conn.send(bytes([byte]))
                except OSError:  # cut off by the server
                    alive.remove(conn)
            if stop.wait(every) or not alive:
                return

    thread = threading.Thread(target=dribble, daemon=True)
    thread.start()
    try:
        yield conns
    finally:
        stop.set()
        thread.join(5)
        for conn in conns:
            conn.close()


def elapsed(since: float) -> float:
    return time.monotonic() - since
