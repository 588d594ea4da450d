"""A PostgreSQL worker's liveness mark: the lock that tells other workers it is alive, on a
session of its own, and the thread that notices when that session is cut."""

from __future__ import annotations

import secrets
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

try:
    import psycopg
except ImportError:  # pragma: no cover - postgres.py says what to install
    psycopg = None  # type: ignore[assignment]

from .sql import Dialect

#: The first key of the advisory locks that mark workers alive (any fixed 31-bit number).
WORKER_LOCK = 0x746B66  # "tkf"
#: How often the session holding a worker's mark is asked whether it is still there when
#: nothing arrived on it: a server that vanished without closing it (a host gone, a network
#: cut) says nothing, unlike a terminated backend or a restart.
MARK_PING = 10.0


class Mark:
    """One worker's liveness mark: an advisory lock (WORKER_LOCK, a random key) held by a
    session of its own, outside the pool (the lock lives as long as the session does), and
    named in the worker table. A thread waits on that session's socket, so a cut (a
    terminated backend, a restart: the server says so there) is noticed at once: `lost` is
    set, and the worker must not act on its leases and claims, which other workers may now
    take, until `take()` has marked it again."""

    def __init__(self, owner: str, connect: Callable[[], Any],
                 unavailable: Callable[[BaseException], Exception], dialect: Dialect) -> None:
        """`connect`: a session of its own (DatabaseUnavailable if there is none);
        `unavailable`: the error a failed statement on it is reported as."""
        self.owner = owner
        self._connect = connect
        self._unavailable = unavailable
        self._dialect = dialect
        self.lost = threading.Event()
        self._conn: Any = None
        self._thread: threading.Thread | None = None
        self._wake = socket.socketpair()
        self._closing = False

    def take(self) -> None:
        """A new session, a free lock key on it, and the key in the worker table."""
        conn = self._connect()
        try:
            while True:
                key = secrets.randbelow(2**31 - 1) + 1
                if conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                (WORKER_LOCK, key)).fetchone()[0]:
                    break
            dialect = self._dialect
            conn.execute(f"INSERT INTO {dialect.prefix}worker VALUES (%s, %s, {dialect.clock}) "
                         "ON CONFLICT (owner) DO UPDATE SET lock_key = excluded.lock_key",
                         (self.owner, key))
        except psycopg.Error as exc:
            conn.close()
            raise self._unavailable(exc) from None
        self._conn = conn
        self.lost.clear()
        self._thread = threading.Thread(target=self._watch, args=(conn,), daemon=True,
                                        name="tiktok-following-mark")
        self._thread.start()

    def _watch(self, conn: Any) -> None:
        wake = self._wake[0]
        while True:
            ready = select.select([conn, wake], [], [], MARK_PING)[0]
            if self._closing or wake in ready:
                return
            try:
                conn.execute("")  # what arrived (the server's goodbye), or a ping
            except (psycopg.Error, OSError, ValueError):
                self.lost.set()
                conn.close()
                return

    def close(self) -> None:
        """End the mark: the lock goes with its session, the worker's row is deleted."""
        self._closing = True
        self._wake[1].send(b"x")
        if self._thread is not None:
            self._thread.join(MARK_PING)
            if self._thread.is_alive():  # stuck on a session whose server vanished
                return
        conn = self._conn
        try:
            if conn is not None and not self.lost.is_set():
                conn.execute(f"DELETE FROM {self._dialect.prefix}worker WHERE "
                             "owner = %s", (self.owner,))
        except psycopg.Error:
            pass  # cut meanwhile: the row stays, its lock free, as a dead worker's does
        finally:
            if conn is not None:
                conn.close()
            for end in self._wake:
                end.close()
