"""PostgreSQL as the state database: one database shared by many `watch` workers, on one
machine or many (`--state-db postgresql://user:password@host/db`).

Needs the `postgres` extra (`pip install '.[postgres]'` in a clone: psycopg 3 and its pool);
nothing here is imported unless a postgresql:// target is used. The tables live in their own
schema, `tiktok_following`, created and migrated by the connector under an advisory lock, so
workers starting together do it once. Where SQLite has one writer at a time, PostgreSQL has
row locks: claims skip the rows others are taking (`FOR UPDATE SKIP LOCKED`).
"""

from __future__ import annotations

import functools
import hashlib
import re
import select
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..core.config import install_extra
from ..core.errors import ConfigurationError, ConnectorError, DatabaseUnavailable
from ..core.redact import display_url, one_line, redact
from ..core.secrets import Secrets
from .database import Database
from .postgres_mark import Mark
from .postgres_schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION
from .schema import migrate, schema_version
from .sql import Dialect, Session

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg_pool import ConnectionPool
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    psycopg = None  # type: ignore[assignment]

#: How long a statement waits for a pooled connection while all are busy.
POOL_WAIT = 10.0
#: The advisory lock key that serialises migrations (any fixed 64-bit number).
MIGRATION_LOCK = 0x746B66_6D6967  # "tkf" "mig"


class PostgresDialect(Dialect):
    prefix = f"{SCHEMA}."
    # Like time.time(), read once per statement: a statement that names it twice (a lease's
    # period, checked and then set) must not straddle a turn of the period between the two.
    clock = "extract(epoch from statement_timestamp())::float8"
    order = "seq"
    lock_row = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    returning = True
    no_index = ""
    part_column = "data"
    parts_json = ("json_agg(json_build_array(n, data IS NOT NULL, "
                  "coalesce(encode(data, 'hex'), text)))")

    def among(self, column: str, name: str) -> str:
        return f"{column} = ANY(:{name})"

    def floor(self, value: str) -> str:
        return f"floor({value})"

    def each(self, name: str) -> str:
        return f"SELECT unnest(CAST(:{name} AS text[]))"

    def listed(self, values: Iterable[Any]) -> list[Any]:
        return list(values)

    def statement(self, sql: str) -> str:
        return _named(sql)


@functools.lru_cache(maxsize=512)
def _named(sql: str) -> str:
    """`sql` with its :name parameters as psycopg's %(name)s (a `::type` cast is no
    parameter)."""
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql.replace("%", "%%"))


DIALECT = PostgresDialect()


class PostgresDatabase(Database):
    """A PostgreSQL database through a small connection pool; safe to share between threads."""

    dialect = DIALECT

    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout: float = 10.0) -> None:
        if psycopg is None:
            raise ConfigurationError("a postgresql:// state database needs the postgres extra: "
                                     + install_extra("postgres", "'psycopg[binary]' psycopg-pool"),
                                     field="stateDb")
        self.location = display_url(url)
        self._secrets = Secrets().database(url).values
        self._url = url
        self._pool_size = max(2, pool_size)
        #: How every session is opened: each statement its own transaction, unless in one.
        self._options = {"autocommit": True, "connect_timeout": max(1, int(connect_timeout))}
        #: Set when a pooled session was found cut: statements then fail at once, rather than
        #: wait for a pool that cannot connect, until the server answers again (`_heal`).
        self._broken = False
        self._healing = threading.Lock()
        self._next_heal = 0.0
        #: The liveness marks of this process's workers (`worker`), by owner.
        self._marks: dict[str, Mark] = {}
        try:
            with psycopg.connect(url, **self._options) as conn:
                self._prepare(conn)
        except psycopg.Error as exc:
            raise ConfigurationError(f"cannot use the state database {self.location}: "
                                     f"{self._say(exc)}; check --state-db or "
                                     "TIKTOK_FOLLOWING_STATE_DB", field="stateDb") from None
        except (ValueError, TypeError) as exc:  # a URL libpq cannot parse
            raise ConfigurationError(f"--state-db is not a usable PostgreSQL URL "
                                     f"({self._say(exc)}); give postgresql://user:password@host"
                                     "/database", field="stateDb") from None
        self._pool = self._new_pool()

    def _new_pool(self) -> Any:
        return ConnectionPool(self._url, min_size=1, max_size=self._pool_size, open=True,
                              timeout=POOL_WAIT, name="tiktok-following", kwargs=self._options)

    def connect(self) -> Any:
        """A session of its own, outside the pool; DatabaseUnavailable if there is none."""
        try:
            return psycopg.connect(self._url, **self._options)
        except psycopg.Error as exc:
            raise self.unavailable(exc) from None

    def unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        return DatabaseUnavailable(f"the state database {self.location} is unreachable: "
                                   f"{self._say(exc)}")

    def _say(self, exc: BaseException) -> str:
        """An exception's text on one line, with no secret of the URL in it."""
        return one_line(redact(str(exc).strip() or type(exc).__name__, self._secrets), 300)

    # Schema

    def _prepare(self, conn: Any) -> None:
        s = Session(conn, DIALECT)
        with conn.transaction():
            s.run("SELECT pg_advisory_xact_lock(:lock)", lock=MIGRATION_LOCK)
            if s.one("SELECT to_regnamespace(:schema)", schema=SCHEMA)[0] is None:
                s.run(f"CREATE SCHEMA {SCHEMA}")
            row = s.one(f"SELECT value FROM {SCHEMA}.meta WHERE name = 'schema'") if s.one(
                "SELECT to_regclass(:meta)", meta=f"{SCHEMA}.meta")[0] else None
            version = schema_version(row and row[0], self.location, SCHEMA_VERSION)
            migrate(s, version, {n: [script] for n, script in MIGRATIONS.items()})

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        """A pooled connection (what `pool.connection()` gives, checked as `_checkout` says).
        A session cut, or none to be had, is DatabaseUnavailable; other failures of the
        server are a ConnectorError that names the database."""
        if self._broken:
            self._heal()
        pool = self._pool
        conn = None
        try:
            conn = self._checkout(pool)
            try:
                with conn:  # commit or roll back, as the pool's own context manager does
                    yield conn
            finally:
                pool.putconn(conn)  # a closed one is dropped and replaced
        except DatabaseUnavailable:
            self._broken = self._broken or pool is self._pool  # not a pool healed since
            raise
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if conn is None or conn.closed:
                self._broken = self._broken or pool is self._pool
                raise self.unavailable(exc) from None
            err = ConnectorError(f"the state database {self.location} failed: {self._say(exc)}")
            err.transient = True
            raise err from None

    def _checkout(self, pool: Any) -> Any:
        """A connection from the pool, not one the server closed while it sat there (a
        terminated backend, an idle timeout). The server says so on the socket, so only a
        connection with something to read pays a round trip to find out; a dead one goes back
        to the pool, which drops it and opens another. (The pool's own `check` would pay that
        round trip on every checkout, and sleeps a growing backoff between two failed checks:
        seconds when several idle sessions were cut at once.) A cut one may mean the server is
        gone: a session of its own then says so at once (refused), where the pool would wait
        POOL_WAIT for a connection it cannot make."""
        probed = False
        for _ in range(self._pool_size):
            conn = pool.getconn()
            try:
                if select.select([conn], [], [], 0)[0]:
                    conn.execute("")
                return conn
            except (psycopg.Error, OSError, ValueError):
                pool.putconn(conn)
            if not probed:
                self.connect().close()
                probed = True
        return pool.getconn()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._conn() as conn, conn.transaction():
            yield Session(conn, DIALECT)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._conn() as conn:
            yield Session(conn, DIALECT)

    @contextmanager
    def lock(self, key: str, timeout: float) -> Iterator[None]:
        # A session-level advisory lock: held by this connection, released by the server if
        # the process dies and its connection drops.
        number = int.from_bytes(hashlib.blake2b(f"tiktok-following:{key}".encode(),
                                                digest_size=8).digest(), "big", signed=True)
        with self._conn() as conn:
            try:
                if timeout > 0:
                    conn.execute("SELECT set_config('lock_timeout', %s, false)",
                                 (f"{max(1, int(timeout * 1000))}ms",))
                    conn.execute("SELECT pg_advisory_lock(%s)", (number,))
                elif not conn.execute("SELECT pg_try_advisory_lock(%s)", (number,)).fetchone()[0]:
                    raise pg_errors.LockNotAvailable()
            except pg_errors.LockNotAvailable:
                raise ConnectorError(f"another poll of {key} holds its lock in "
                                     f"{self.location} for over {timeout:g}s; try again "
                                     "when it is done") from None
            finally:
                conn.execute("RESET lock_timeout")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (number,))

    # Workers

    @contextmanager
    def worker(self, owner: str) -> Iterator[None]:
        mark = Mark(owner, self.connect, self.unavailable, DIALECT)
        try:
            mark.take()
            self._marks[owner] = mark
            yield
        finally:
            self._marks.pop(owner, None)
            mark.close()

    def holds_mark(self, owner: str) -> bool:
        mark = self._marks.get(owner)
        return mark is None or not mark.lost.is_set()

    def recover(self, owner: str | None = None) -> None:
        if self._broken:
            self._heal(now=True)
        else:
            self.connect().close()
        marks = [m for o, m in list(self._marks.items()) if owner in (None, o)]
        for mark in marks:
            if mark.lost.is_set():
                mark.take()
        if marks:
            # Nothing they claimed is in flight any more: those claims end now, rather than
            # hold their handles' events back (from them too) until they run out.
            with self._conn() as conn:
                conn.execute(f"UPDATE {SCHEMA}.outbox SET claimed_by = NULL, claimed_until = 0 "
                             "WHERE claimed_by = ANY(%s)", ([m.owner for m in marks],))

    def _heal(self, *, now: bool = False) -> None:
        """After a pooled session was found cut: once the server answers a session of its own
        (refused at once while it is away, where the pool would wait for its own attempts), a
        fresh pool, rather than the old one's reconnect attempts, which back off to minutes
        apart. Without `now`, tried at most once a second (by one thread at a time); the
        statements in between fail at once."""
        unavailable = DatabaseUnavailable(f"the state database {self.location} is "
                                          "unreachable (its sessions were cut; reconnecting)")
        if not self._healing.acquire(blocking=now):
            raise unavailable
        try:
            if not self._broken:
                return
            if not now and time.monotonic() < self._next_heal:
                raise unavailable
            self._next_heal = time.monotonic() + 1.0
            self.connect().close()
            old, self._pool = self._pool, self._new_pool()
            self._broken = False
        finally:
            self._healing.release()
        old.close()
