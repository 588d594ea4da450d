"""PostgreSQL as the state database: one database shared by many `watch` workers, on one
machine or many (`--state-db postgresql://user:password@host/db`).

Needs the `postgres` extra (`pip install '.[postgres]'` in a clone: psycopg 3 and its pool);
nothing here is imported unless a postgresql:// target is used. The tables live in their own
schema, `tiktok_following`, created and migrated by the connector under an advisory
lock, so workers starting together do it once. Lease and claim times are the server's clock,
so workers whose clocks differ still agree on when a lease ends.

Behaves as SQLiteDatabase does (the same tests run against both); where SQLite has one writer
at a time, PostgreSQL has row locks: claims use `FOR UPDATE SKIP LOCKED`, so workers claiming
at once never wait for each other and never claim the same row.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..core.config import install_extra
from ..core.errors import ConfigurationError, ConnectorError, StateError
from ..core.redact import display_url, one_line, redact
from ..core.secrets import Secrets
from .database import (
    Claim,
    Database,
    DatabaseUnavailable,
    EventClaim,
    Lease,
    NewEvent,
    Saved,
    Snapshot,
    StateConflict,
    assemble_state,
    pack_part,
    plan_parts,
    sort_claim,
    split_state,
    unpack_part,
)
from .outbox import Backlog, OutboxEvent, event_from_row

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg_pool import ConnectionPool
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    psycopg = None  # type: ignore[assignment]

SCHEMA = "tiktok_following"
#: The first key of the advisory locks that mark workers alive (any fixed 31-bit number).
WORKER_LOCK = 0x746B66  # "tkf"
#: How often the session holding a worker's mark is asked whether it is still there when
#: nothing arrived on it: a server that vanished without closing it (a host gone, a network
#: cut) says nothing, unlike a terminated backend or a restart.
MARK_PING = 10.0
#: How long a statement waits for a pooled connection while all are busy.
POOL_WAIT = 10.0
#: Each migration takes the schema from the version before it to its own number, in one
#: transaction, under MIGRATION_LOCK.
MIGRATIONS: dict[int, str] = {
    1: f"""
CREATE TABLE {SCHEMA}.meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE {SCHEMA}.trigger_state (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    parts INTEGER
);
CREATE TABLE {SCHEMA}.state_part (
    key TEXT NOT NULL,
    n INTEGER NOT NULL,
    digest BYTEA NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (key, n)
);
CREATE TABLE {SCHEMA}.poll_lease (
    key TEXT PRIMARY KEY,
    owner TEXT,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    polled_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    next_at DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE {SCHEMA}.outbox (
    event_id TEXT PRIMARY KEY,
    handle TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    last_error TEXT,
    parked BOOLEAN NOT NULL DEFAULT FALSE,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    claimed_by TEXT,
    claimed_until DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON {SCHEMA}.outbox (parked, next_attempt_at);
CREATE INDEX outbox_handle ON {SCHEMA}.outbox (handle, created_at);
CREATE TABLE {SCHEMA}.worker (
    owner TEXT PRIMARY KEY,
    lock_key INTEGER NOT NULL,
    started_at DOUBLE PRECISION NOT NULL
);
-- A worker marked alive holds the advisory lock (WORKER_LOCK, lock_key) on a session of its
-- own; the server drops it when that session ends. Gone: marked, and the lock is free.
CREATE FUNCTION {SCHEMA}.gone(who TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM {SCHEMA}.worker w WHERE w.owner = who AND NOT EXISTS (
            SELECT 1 FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
              AND l.classid = {WORKER_LOCK}::oid AND l.objid = w.lock_key::oid
              AND l.database = (SELECT oid FROM pg_database
                                WHERE datname = current_database())))
$$;
""",
    # 2: a part is kept as the bytes its base85 encodes (database.pack_part), a fifth smaller,
    # in `data`; any other item stays in `text`. Rows written before keep their text.
    2: f"""
ALTER TABLE {SCHEMA}.state_part ALTER COLUMN text DROP NOT NULL;
ALTER TABLE {SCHEMA}.state_part ADD COLUMN data BYTEA;
-- Deflated already: TOAST need not try to compress it.
ALTER TABLE {SCHEMA}.state_part ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE {SCHEMA}.state_part ADD CONSTRAINT state_part_one_form
    CHECK ((text IS NULL) <> (data IS NULL));
""",
}
SCHEMA_VERSION = max(MIGRATIONS)
#: The advisory lock key that serialises migrations (any fixed 64-bit number).
MIGRATION_LOCK = 0x746B66_6D6967  # "tkf" "mig"
#: The server's clock, in seconds since the epoch, like time.time().
NOW = "extract(epoch from clock_timestamp())::float8"
_OUTBOX_COLUMNS = ("event_id, handle, payload, created_at, attempts, next_attempt_at, "
                   "last_error, parked")
_T = SCHEMA  # short, for the queries


class PostgresDatabase(Database):
    """A PostgreSQL database through a small connection pool; safe to share between threads."""

    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout: float = 10.0) -> None:
        if psycopg is None:
            raise ConfigurationError("a postgresql:// state database needs the postgres extra: "
                                     + install_extra("postgres", "'psycopg[binary]' psycopg-pool"),
                                     field="stateDb")
        self.location = display_url(url)
        self._secrets = Secrets().database(url).values
        self._url = url
        self._pool_size = max(2, pool_size)
        self._connect_timeout = max(1, int(connect_timeout))
        #: Set when a pooled session was found cut: statements then fail at once, rather than
        #: wait for a pool that cannot connect, until the server answers again (`_heal`).
        self._broken = False
        self._healing = threading.Lock()
        self._next_heal = 0.0
        #: The liveness marks of this process's workers (`worker`), by owner.
        self._marks: dict[str, _Mark] = {}
        try:
            with psycopg.connect(url, autocommit=True,
                                 connect_timeout=self._connect_timeout) as conn:
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
                              timeout=POOL_WAIT, name="tiktok-following",
                              kwargs={"autocommit": True,
                                      "connect_timeout": self._connect_timeout})

    def _connect(self) -> Any:
        """A session of its own, outside the pool; DatabaseUnavailable if there is none."""
        try:
            return psycopg.connect(self._url, autocommit=True,
                                   connect_timeout=self._connect_timeout)
        except psycopg.Error as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        return DatabaseUnavailable(f"the state database {self.location} is unreachable: "
                                   f"{self._say(exc)}")

    def _say(self, exc: BaseException) -> str:
        """An exception's text on one line, with no secret of the URL in it."""
        return one_line(redact(str(exc).strip() or type(exc).__name__, self._secrets), 300)

    # Schema

    def _prepare(self, conn: Any) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            if conn.execute("SELECT to_regnamespace(%s)", (SCHEMA,)).fetchone()[0] is None:
                conn.execute(f"CREATE SCHEMA {SCHEMA}")
            version = 0
            if conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.meta",)).fetchone()[0]:
                row = conn.execute(f"SELECT value FROM {_T}.meta WHERE name='schema'").fetchone()
                text = row[0] if row else "0"
                if not (text.isdigit() and len(text) < 6):
                    raise StateError(f"the state database {self.location} has a damaged schema "
                                     f"version {text[:20]!r} in {SCHEMA}.meta; restore it, or "
                                     "use another database")
                version = int(text)
            if version > SCHEMA_VERSION:
                raise StateError(f"the state database {self.location} was written by a newer "
                                 f"version of tiktok-following-connector (schema {version}; "
                                 f"this one knows up to {SCHEMA_VERSION}); upgrade it, or use "
                                 "another database")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                conn.execute(MIGRATIONS[target])
                conn.execute(f"INSERT INTO {_T}.meta VALUES ('schema', %s) ON CONFLICT (name) "
                             "DO UPDATE SET value = excluded.value", (str(target),))

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()

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
                raise self._unavailable(exc) from None
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
                self._connect().close()
                probed = True
        return pool.getconn()

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._conn() as conn, conn.transaction():
            yield conn

    # Trigger states

    def read_state(self, key: str) -> Snapshot:
        with self._conn() as conn:
            # One statement, one snapshot: the row and its parts are of the same save.
            row = conn.execute(
                f"SELECT s.state, s.version, s.parts, p.texts, p.datas FROM {_T}.trigger_state s "
                f"LEFT JOIN LATERAL (SELECT array_agg(text ORDER BY n DESC) AS texts, "
                f"array_agg(data ORDER BY n DESC) AS datas FROM {_T}.state_part "
                f"WHERE key = s.key) p ON true WHERE s.key = %s",
                (key,)).fetchone()
        if row is None:
            return Snapshot(None, 0)
        text, version, count, texts, datas = row
        parts = [unpack_part(t if d is None else d)
                 for t, d in zip(texts or [], datas or [], strict=True)]
        return Snapshot(assemble_state(key, self.location, text, count, parts), version)

    def save(self, key: str, state: dict[str, Any], events: Iterable[NewEvent] = (), *,
             expect: int | None = None, lease: Lease | None = None,
             claim: EventClaim | None = None) -> Saved:
        now = time.time()
        events = list(events)
        small, parts = split_state(state)
        text = json.dumps(small, separators=(",", ":"))
        count = None if parts is None else len(parts)
        conflict = StateConflict(f"the state of {key} was saved by another poll meanwhile; "
                                 "this poll's result was dropped (the other one stands)")
        with self._tx() as conn:
            row = conn.execute(f"SELECT version FROM {_T}.trigger_state WHERE key = %s "
                               "FOR UPDATE", (key,)).fetchone()
            if row is None:
                if expect not in (None, 0):
                    raise conflict
                inserted = conn.execute(
                    f"INSERT INTO {_T}.trigger_state (key, state, updated_at, version, parts) "
                    "VALUES (%s, %s, %s, 1, %s) ON CONFLICT (key) DO NOTHING",
                    (key, text, now, count)).rowcount
                if not inserted:  # another save inserted it just now
                    raise conflict if expect is not None else StateConflict(
                        f"the state of {key} was first saved by two polls at once; this "
                        "one's result was dropped (the other one stands)")
            else:
                if expect is not None and row[0] != expect:
                    raise conflict
                conn.execute(f"UPDATE {_T}.trigger_state SET state = %s, updated_at = %s, "
                             "version = version + 1, parts = %s WHERE key = %s",
                             (text, now, count, key))
            stored = {bytes(d): n for n, d in conn.execute(
                f"SELECT n, digest FROM {_T}.state_part WHERE key = %s", (key,))}
            plan = plan_parts(parts or [], stored)
            with conn.cursor() as cur:
                if plan.delete:
                    cur.execute(f"DELETE FROM {_T}.state_part WHERE key = %s AND n = ANY(%s)",
                                (key, plan.delete))
                if plan.insert:
                    packed = [(n, d, pack_part(t)) for n, d, t in plan.insert]
                    cur.executemany(
                        f"INSERT INTO {_T}.state_part (key, n, digest, text, data) "
                        "VALUES (%s, %s, %s, %s, %s)",
                        [(key, n, d, p if isinstance(p, str) else None,
                          None if isinstance(p, str) else p) for n, d, p in packed])
            holder, seconds = None, 0.0
            if claim is not None and events:
                where, args = _only({handle for _, handle, _ in events})
                if conn.execute(f"SELECT 1 FROM {_T}.outbox WHERE true{where} LIMIT 1",
                                args).fetchone() is None:
                    holder, seconds = claim.owner, claim.seconds
            added = 0
            for event_id, handle, payload in events:
                added += conn.execute(
                    f"INSERT INTO {_T}.outbox (event_id, handle, payload, created_at, "
                    "next_attempt_at, claimed_by, claimed_until) VALUES (%s, %s, %s, %s, %s, "
                    f"%s, CASE WHEN %s::text IS NULL THEN 0 ELSE {NOW} + %s END) "
                    "ON CONFLICT DO NOTHING",
                    (event_id, handle, json.dumps(payload, separators=(",", ":")), now, now,
                     holder, holder, seconds)).rowcount
            if holder is not None and added != len(events):  # an id given twice is queued once
                conn.execute(f"UPDATE {_T}.outbox SET claimed_by = NULL, claimed_until = 0 "
                             f"WHERE claimed_by = %s{where}", (holder, *args))
                holder = None
            if lease is not None:
                _release(conn, key, lease.owner, lease.polled, lease.next_in)
        return Saved(added, holder is not None)

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

    # Workers, poll leases and event claims

    @contextmanager
    def worker(self, owner: str) -> Iterator[None]:
        mark = _Mark(self, owner)
        try:
            mark.take()
        except BaseException:
            mark.close()
            raise
        self._marks[owner] = mark
        try:
            yield
        finally:
            del self._marks[owner]
            mark.close()

    def holds_mark(self, owner: str) -> bool:
        mark = self._marks.get(owner)
        return mark is None or not mark.lost.is_set()

    def recover(self, owner: str | None = None) -> None:
        if self._broken:
            self._heal(now=True)
        else:
            self._connect().close()
        marks = [m for o, m in list(self._marks.items()) if owner in (None, o)]
        for mark in marks:
            if mark.lost.is_set():
                mark.take()
        if marks:
            # Nothing they claimed is in flight any more: those claims end now, rather than
            # hold their handles' events back (from them too) until they run out.
            with self._conn() as conn:
                conn.execute(f"UPDATE {_T}.outbox SET claimed_by = NULL, claimed_until = 0 "
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
            self._connect().close()
            old, self._pool = self._pool, self._new_pool()
            self._broken = False
        finally:
            self._healing.release()
        old.close()

    def claim_polls(self, keys: Iterable[str], owner: str, *, lease_for: float,
                    polled_within: float | None = None) -> Claim:
        wanted = sorted(set(keys))  # one order for everyone: inserts never deadlock
        claim = Claim()
        if not wanted:
            return claim
        with self._tx() as conn:
            now = conn.execute(f"SELECT {NOW}").fetchone()[0]
            conn.execute(f"INSERT INTO {_T}.poll_lease (key) SELECT unnest(%s::text[]) "
                         "ON CONFLICT DO NOTHING", (wanted,))
            due = "polled_at < %(since)s" if polled_within is not None else "next_at <= %(now)s"
            got = {r[0] for r in conn.execute(
                f"UPDATE {_T}.poll_lease p SET owner = %(owner)s, lease_until = %(until)s "
                f"FROM (SELECT key FROM {_T}.poll_lease WHERE key = ANY(%(keys)s) AND "
                f"(lease_until <= %(now)s OR owner = %(owner)s OR {_T}.gone(owner)) AND {due} "
                "ORDER BY key "
                "FOR UPDATE SKIP LOCKED) c WHERE p.key = c.key RETURNING p.key",
                {"owner": owner, "until": now + lease_for, "keys": wanted, "now": now,
                 "since": now - (polled_within or 0.0)})}
            others = conn.execute(
                f"SELECT key, owner, lease_until, polled_at, next_at, {_T}.gone(owner) FROM "
                f"{_T}.poll_lease WHERE key = ANY(%s)",
                ([k for k in wanted if k not in got],)).fetchall()
        claim.granted = [k for k in wanted if k in got]
        for key, holder, until, polled_at, next_at, gone in others:
            polled = (polled_at >= now - polled_within if polled_within is not None
                      else next_at > now)
            held_for = until - now if holder != owner and not gone else 0.0
            if held_for <= 0 and not polled:
                held_for = 1.0  # being claimed by another worker this very moment
            sort_claim(claim, key, held_for=held_for, due_in=next_at - now, polled=polled)
        return claim

    def release_poll(self, key: str, owner: str, *, polled: bool = False,
                     next_in: float | None = None) -> None:
        with self._tx() as conn:
            _release(conn, key, owner, polled, next_in)

    # Outbox

    def due(self, now: float, *, handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        where, args = _only(handles)
        with self._conn() as conn:
            rows = conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM {_T}.outbox o WHERE NOT parked AND "
                f"next_attempt_at <= %s{where} AND NOT EXISTS (SELECT 1 FROM {_T}.outbox c "
                f"WHERE c.handle = o.handle AND c.claimed_until > {NOW} AND NOT "
                f"{_T}.gone(c.claimed_by)) ORDER BY created_at, seq", (now, *args)).fetchall()
        return [event_from_row(r) for r in rows]

    def claim_events(self, event_ids: list[str], owner: str, *, claim_for: float) -> list[str]:
        if not event_ids:
            return []
        with self._tx() as conn:
            got = {r[0] for r in conn.execute(
                f"UPDATE {_T}.outbox o SET claimed_by = %(owner)s, claimed_until = {NOW} + "
                f"%(for)s FROM (SELECT event_id FROM {_T}.outbox WHERE event_id = ANY(%(ids)s) "
                f"AND NOT parked AND next_attempt_at <= %(now)s AND (claimed_until <= {NOW} OR "
                f"{_T}.gone(claimed_by)) FOR UPDATE SKIP LOCKED) c "
                "WHERE o.event_id = c.event_id RETURNING o.event_id",
                {"owner": owner, "for": claim_for, "ids": event_ids, "now": time.time()})}
        return [e for e in event_ids if e in got]

    def release_events(self, event_ids: list[str], owner: str) -> None:
        if event_ids:
            with self._conn() as conn:
                conn.execute(f"UPDATE {_T}.outbox SET claimed_by = NULL, claimed_until = 0 "
                             "WHERE event_id = ANY(%s) AND claimed_by = %s", (event_ids, owner))

    def events(self, *, parked: bool | None = None,
               handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        where, args = _only(handles)
        if parked is not None:
            where += " AND parked = %s"
            args += (parked,)
        with self._conn() as conn:
            rows = conn.execute(f"SELECT {_OUTBOX_COLUMNS} FROM {_T}.outbox WHERE true{where} "
                                "ORDER BY created_at, seq", args).fetchall()
        return [event_from_row(r) for r in rows]

    def delivered(self, event_id: str) -> None:
        with self._conn() as conn:
            conn.execute(f"DELETE FROM {_T}.outbox WHERE event_id = %s", (event_id,))

    def failed(self, event_id: str, error: str, *, retry_at: float, park: bool) -> None:
        with self._conn() as conn:
            conn.execute(f"UPDATE {_T}.outbox SET attempts = attempts + 1, last_error = %s, "
                         "next_attempt_at = %s, parked = %s, claimed_by = NULL, "
                         "claimed_until = 0 WHERE event_id = %s",
                         (error[:500], retry_at, park, event_id))

    def requeue(self, event_ids: list[str] | None = None, *,
                include_pending: bool = False) -> int:
        which = "" if include_pending else " AND parked"
        ids = "" if event_ids is None else " AND event_id = ANY(%(ids)s)"
        with self._conn() as conn:
            return conn.execute(
                f"UPDATE {_T}.outbox SET parked = false, attempts = CASE WHEN parked THEN 0 "
                f"ELSE attempts END, next_attempt_at = %(now)s WHERE true{which}{ids}",
                {"now": time.time(), "ids": list(dict.fromkeys(event_ids or []))}).rowcount

    def discard(self, event_ids: list[str] | None = None) -> int:
        ids = "" if event_ids is None else " AND event_id = ANY(%s)"
        args = () if event_ids is None else (list(dict.fromkeys(event_ids)),)
        with self._conn() as conn:
            return conn.execute(f"DELETE FROM {_T}.outbox WHERE parked{ids}", args).rowcount

    def backlog(self, handles: Iterable[str] | None = None) -> Backlog:
        where, args = _only(handles)
        with self._conn() as conn:
            pending, parked, next_due = conn.execute(
                f"SELECT count(*) FILTER (WHERE NOT parked), count(*) FILTER (WHERE parked), "
                f"min(next_attempt_at) FILTER (WHERE NOT parked) FROM {_T}.outbox WHERE true"
                + where, args).fetchone()
        return Backlog(int(pending), int(parked), next_due)


class _Mark:
    """One worker's liveness mark: an advisory lock (WORKER_LOCK, a random key) held by a
    session of its own, outside the pool (the lock lives as long as the session does), and
    named in the worker table. A thread waits on that session's socket, so a cut (a
    terminated backend, a restart: the server says so there) is noticed at once: `lost` is
    set, and the worker must not act on its leases and claims, which other workers may now
    take, until `take()` has marked it again."""

    def __init__(self, database: PostgresDatabase, owner: str) -> None:
        self.database = database
        self.owner = owner
        self.lost = threading.Event()
        self._conn: Any = None
        self._thread: threading.Thread | None = None
        self._wake = socket.socketpair()
        self._closing = False

    def take(self) -> None:
        """A new session, a free lock key on it, and the key in the worker table."""
        conn = self.database._connect()
        try:
            while True:
                key = secrets.randbelow(2**31 - 1) + 1
                if conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                (WORKER_LOCK, key)).fetchone()[0]:
                    break
            conn.execute(f"INSERT INTO {_T}.worker VALUES (%s, %s, {NOW}) ON CONFLICT (owner) "
                         "DO UPDATE SET lock_key = excluded.lock_key", (self.owner, key))
        except psycopg.Error as exc:
            conn.close()
            raise self.database._unavailable(exc) from None
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
                conn.execute(f"DELETE FROM {_T}.worker WHERE owner = %s", (self.owner,))
        except psycopg.Error:
            pass  # cut meanwhile: the row stays, its lock free, as a dead worker's does
        finally:
            if conn is not None:
                conn.close()
            for end in self._wake:
                end.close()


def _release(conn: Any, key: str, owner: str, polled: bool, next_in: float | None) -> None:
    if not polled:
        conn.execute(f"UPDATE {_T}.poll_lease SET owner = NULL, lease_until = 0 WHERE key = %s "
                     "AND owner = %s", (key, owner))
        return
    # Polled now, whoever holds the lease; only the holder's lease ends.
    conn.execute(
        f"INSERT INTO {_T}.poll_lease AS p (key, polled_at, next_at) VALUES (%(key)s, {NOW}, "
        f"{NOW} + coalesce(%(next)s, 0)) ON CONFLICT (key) DO UPDATE SET polled_at = "
        f"excluded.polled_at, next_at = coalesce({NOW} + %(next)s, p.next_at), "
        "owner = CASE WHEN p.owner = %(owner)s THEN NULL ELSE p.owner END, "
        "lease_until = CASE WHEN p.owner = %(owner)s THEN 0 ELSE p.lease_until END",
        {"key": key, "next": next_in, "owner": owner})


def _only(handles: Iterable[str] | None) -> tuple[str, tuple]:
    if handles is None:
        return "", ()
    return " AND handle = ANY(%s)", (sorted(handles),)
