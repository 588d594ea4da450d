"""Deadlines for HTTP exchanges: an exchange ends when its deadline passes, however slowly the
server trickles its status line, headers or body.

A socket timeout bounds each read, not an exchange: a server that sends a byte now and then
never trips it. Here one watchdog thread per process, not one per request, keeps the
exchanges in flight; when one outlives its deadline it shuts the exchange's socket down, which
ends the read blocked on it at once, and the exchange's own thread raises `DeadlinePassed`.

The watchdog learns the socket through the connection class `watch_pool` gives each urllib3
pool the transport (core/transport.py) opens, direct or through a proxy: its `getresponse`,
called once the request is sent and before the status line is read, hands the socket to the
exchange running in its thread. The steps before that are bounded already:
connecting by the connect timeout, and sending and a TLS handshake by the socket timeout,
which since Python 3.5 bounds a whole `sendall` and a whole handshake.

On the hot path an exchange costs two short lock holds and a thread-local write: the
watchdog sleeps until the earliest deadline it knows, and exchanges that end before it are
simply forgotten.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import weakref
from typing import Any


class DeadlinePassed(Exception):
    """An exchange outlived its deadline. Deliberately not an OSError or a urllib3 error, so
    urllib3 does not take it for a network failure and retry."""


class Exchange:
    """One exchange in flight: its deadline (time.monotonic), and the socket it reads from."""

    __slots__ = ("deadline", "expired", "sock", "watchdog")

    def __init__(self, watchdog: Watchdog, deadline: float) -> None:
        self.watchdog = watchdog
        self.deadline = deadline
        #: Set by the watchdog when the deadline passed while the exchange was in flight.
        self.expired = False
        self.sock: Any = None

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it passed)."""
        return self.deadline - time.monotonic()

    def attach(self, sock: Any) -> None:
        """The socket this exchange now reads from: the one the watchdog shuts down."""
        self.sock = sock
        # Set after the socket, read after it in `_fire`: one of the two sees the other.
        if self.expired or self.deadline <= time.monotonic():
            raise DeadlinePassed

    def end(self) -> bool:
        """The exchange is over (answered, failed or abandoned); its socket is no longer the
        watchdog's to shut. Returns whether the deadline passed while it was in flight."""
        with self.watchdog._lock:
            self.watchdog._armed.pop(self, None)
            self.sock = None
        return self.expired


class Watchdog:
    """Shuts down the sockets of exchanges that outlive their deadline, from one daemon
    thread started on first use."""

    def __init__(self) -> None:
        self._reset()
        ref = weakref.ref(self)
        # A forked child has the lock in whatever state the fork found it, and no thread.
        os.register_at_fork(after_in_child=lambda: (w := ref()) is not None and w._reset())

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # the thread's sleep, on the same lock
        self._armed: dict[Exchange, None] = {}
        #: When the thread wakes next: an exchange armed for earlier has to wake it.
        self._next = float("inf")
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> Exchange:
        """A new exchange that may last `seconds`."""
        exchange = Exchange(self, time.monotonic() + seconds)
        with self._lock:
            self._armed[exchange] = None
            if exchange.deadline < self._next:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="http-deadlines",
                                                    daemon=True)
                    self._thread.start()
                self._next = exchange.deadline
                self._cond.notify()
        return exchange

    def in_flight(self) -> int:
        """Exchanges armed and not yet ended (for tests)."""
        with self._lock:
            return len(self._armed)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                soonest = float("inf")
                for exchange in list(self._armed):
                    if exchange.deadline <= now:
                        del self._armed[exchange]
                        _fire(exchange)
                    elif exchange.deadline < soonest:
                        soonest = exchange.deadline
                self._next = soonest
                self._cond.wait(None if soonest == float("inf") else soonest - now)


def _fire(exchange: Exchange) -> None:
    exchange.expired = True
    sock = exchange.sock
    if isinstance(sock, socket.socket):
        # socket.socket's own shutdown, also for a TLS socket: it ends the TCP stream under
        # the reader without touching the TLS state the reader's thread is using. Never
        # close() from here: the descriptor could be reused under the reader. An OSError:
        # already closed, the reader has its answer.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Current(threading.local):
    #: The exchange this thread is making, if any: the transport sets it for its POST.
    exchange: Exchange | None = None


#: The process's watchdog, shared by every client and webhook.
WATCHDOG = Watchdog()
#: This thread's exchange in progress, as `CURRENT.exchange`.
CURRENT = _Current()


class _Reporting:
    """Mixed into a urllib3 connection class: hands the socket to this thread's exchange just
    before the answer is read."""

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        exchange = CURRENT.exchange
        if exchange is not None:
            # `sock`: the connection's socket, a public attribute of http.client's and
            # urllib3's HTTPConnection (a TLS socket is a socket.socket too).
            exchange.attach(getattr(self, "sock", None))
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


_REPORTING: dict[type, type] = {}


def watch_pool(pool: Any) -> None:
    """Make the connections `pool` opens from now on report their sockets to the exchange in
    progress. Only urllib3's own connection classes are extended: a test library's stand-in
    (vcrpy's cassette connections) has no socket to cut, and is left as it is."""
    base = type(pool).ConnectionCls
    if not base.__module__.startswith("urllib3."):
        return
    cls = _REPORTING.get(base) or _REPORTING.setdefault(
        base, type(base.__name__, (_Reporting, base), {"__module__": __name__}))
    # `ConnectionCls`: the connection class urllib3 documents on its pools (the class a pool
    # opens its connections with), set on this pool alone.
    pool.ConnectionCls = cls
