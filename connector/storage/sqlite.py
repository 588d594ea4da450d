"""SQLite (WAL) as the state database: the embedded default, one file on this machine.

A per-key file lock (released by the OS if the process dies) serialises polls of one handle
across processes, so two `poll` commands at once cannot both emit the same follow.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.errors import ConfigurationError, ConnectorError, StateError
from .database import STATE_DB_ENV, Database, NewEvent
from .outbox import Backlog, OutboxEvent

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trigger_state (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    event_id TEXT PRIMARY KEY,
    handle TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    parked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (parked, next_attempt_at);
"""
#: The columns each table must have: a file whose tables differ is not ours.
_COLUMNS = {
    "meta": ["name", "value"],
    "trigger_state": ["key", "state", "updated_at"],
    "outbox": ["event_id", "handle", "payload", "created_at", "attempts", "next_attempt_at",
               "last_error", "parked"],
}
_OUTBOX_COLUMNS = ", ".join(_COLUMNS["outbox"])


class SQLiteDatabase(Database):
    """One SQLite file; safe to share between threads (one connection, one lock)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                       check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open the state database {self.path}: {exc}; "
                                     f"pass --state-db PATH or set {STATE_DB_ENV}",
                                     field="stateDb") from None
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            for table, columns in _COLUMNS.items():
                found = [r[1] for r in self._db.execute(f"PRAGMA table_info({table})")]
                if found != columns:
                    raise StateError(f"{self.path} is not a tiktok-following state database "
                                     f"(its table {table} has other columns); pass another "
                                     "--state-db PATH")
            row = self._db.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{self.path} is not a usable SQLite database ({exc}); pass "
                             "another --state-db PATH") from None
        if row is None:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                             (str(SCHEMA_VERSION),))
            return
        version = row[0]
        if not (isinstance(version, str) and version.isdigit() and len(version) < 6):
            raise StateError(f"{self.path} has a damaged schema version {str(version)[:20]!r}; "
                             "restore the file, or pass another --state-db PATH")
        if int(version) > SCHEMA_VERSION:
            raise StateError(f"{self.path} was written by a newer version (schema {version}); "
                             "upgrade tiktok-following-connector")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # Trigger states

    def load_state(self, key: str) -> dict[str, Any] | None:
        rows = self._query("SELECT state FROM trigger_state WHERE key=?", (key,))
        if not rows:
            return None
        try:
            return json.loads(rows[0][0])
        except (ValueError, TypeError, RecursionError):
            raise StateError(f"the stored state for {key} in {self.path} is not valid JSON; it "
                             "was left as is (delete that row to start a new baseline)") from None

    def save(self, key: str, state: dict[str, Any], events: Iterable[NewEvent] = ()) -> int:
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT INTO trigger_state VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE "
                       "SET state=excluded.state, updated_at=excluded.updated_at",
                       (key, json.dumps(state, separators=(",", ":")), now))
            added = 0
            for event_id, handle, payload in events:
                cur = db.execute(
                    "INSERT OR IGNORE INTO outbox (event_id, handle, payload, created_at, "
                    "next_attempt_at) VALUES (?, ?, ?, ?, ?)",
                    (event_id, handle, json.dumps(payload, separators=(",", ":")), now, now))
                added += cur.rowcount
        return added

    @contextmanager
    def lock(self, key: str, timeout: float) -> Iterator[None]:
        from filelock import FileLock, Timeout

        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        path = self.path.with_name(self.path.name + "-locks") / f"{digest}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the lock folder {path.parent}: "
                                     f"{exc.strerror}", field="stateDb") from None
        lock = FileLock(str(path))
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise ConnectorError(f"another poll of {key} holds {path} for over {timeout:.0f}s; "
                                 "try again when it is done") from None
        try:
            yield
        finally:
            lock.release()

    # Outbox

    def due(self, now: float, *, handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        where, args = _only(handles)
        rows = self._query(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE parked=0 AND "
                           f"next_attempt_at<=?{where} ORDER BY created_at, rowid", (now, *args))
        return [_event(r) for r in rows]

    def events(self, *, parked: bool | None = None,
               handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        where, args = _only(handles)
        if parked is not None:
            where += " AND parked=?"
            args += (int(parked),)
        rows = self._query(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE 1=1{where} "
                           "ORDER BY created_at, rowid", args)
        return [_event(r) for r in rows]

    def delivered(self, event_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM outbox WHERE event_id=?", (event_id,))

    def failed(self, event_id: str, error: str, *, retry_at: float, park: bool) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET attempts=attempts+1, last_error=?, next_attempt_at=?, "
                       "parked=? WHERE event_id=?", (error[:500], retry_at, int(park), event_id))

    def requeue(self, event_ids: list[str] | None = None, *,
                include_pending: bool = False) -> int:
        now = time.time()
        which = "" if include_pending else " AND parked=1"
        with self._tx() as db:
            if event_ids is None:
                return db.execute("UPDATE outbox SET parked=0, attempts=CASE WHEN parked=1 "
                                  "THEN 0 ELSE attempts END, next_attempt_at=? WHERE 1=1"
                                  + which, (now,)).rowcount
            return sum(db.execute("UPDATE outbox SET parked=0, attempts=CASE WHEN parked=1 "
                                  "THEN 0 ELSE attempts END, next_attempt_at=? WHERE "
                                  "event_id=?" + which, (now, e)).rowcount for e in event_ids)

    def discard(self, event_ids: list[str] | None = None) -> int:
        with self._tx() as db:
            if event_ids is None:
                return db.execute("DELETE FROM outbox WHERE parked=1").rowcount
            return sum(db.execute("DELETE FROM outbox WHERE parked=1 AND event_id=?",
                                  (e,)).rowcount for e in event_ids)

    def backlog(self, handles: Iterable[str] | None = None) -> Backlog:
        where, args = _only(handles)
        ((pending, parked, next_due),) = self._query(
            "SELECT COALESCE(SUM(parked=0),0), COALESCE(SUM(parked=1),0), "
            "MIN(CASE WHEN parked=0 THEN next_attempt_at END) FROM outbox WHERE 1=1"
            + where, args)
        return Backlog(int(pending), int(parked), next_due)


def _only(handles: Iterable[str] | None) -> tuple[str, tuple]:
    """A WHERE clause for some handles; one JSON parameter, so no limit on their number."""
    if handles is None:
        return "", ()
    return " AND handle IN (SELECT value FROM json_each(?))", (json.dumps(sorted(handles)),)


def _event(row: tuple) -> OutboxEvent:
    event_id, handle, payload, _created, attempts, next_at, error, parked = row
    try:
        body = json.loads(payload)
    except (ValueError, TypeError, RecursionError):
        body = None
    if not isinstance(body, dict):
        body = None
    return OutboxEvent(event_id, handle, body, attempts, next_at, error, bool(parked))
