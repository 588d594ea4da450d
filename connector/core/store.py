"""Embedded state for people without a runner: SQLite (WAL), one row of trigger state per
handle, and the outbox that `watch` delivers from, written in the same transaction.

A per-handle file lock (released by the OS if the process dies) serialises polls of one handle
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigurationError, StateError

STATE_DB_ENV = "TIKTOK_FOLLOWING_STATE_DB"
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


def default_path() -> Path:
    """DB path: $TIKTOK_FOLLOWING_STATE_DB, else the user data dir from platformdirs."""
    env = os.environ.get(STATE_DB_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("tiktok-following", appauthor=False)) / "state.db"


@dataclass(frozen=True)
class OutboxEvent:
    event_id: str
    handle: str
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: float
    last_error: str | None
    parked: bool


class StateStore:
    """One SQLite database; safe to share between threads (one connection, one lock)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open the state database {self.path}: {exc}; "
                                     "pass --state-db PATH or set "
                                     f"{STATE_DB_ENV}", field="stateDb") from exc
        if row is None:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                             (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise StateError(f"{self.path} was written by a newer version (schema {row[0]}); "
                             "upgrade tiktok-following-connector")
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    # Trigger state

    def load(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM trigger_state WHERE key=?",
                                   (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError as exc:
            raise StateError(f"the stored state for {key} in {self.path} is not valid JSON; "
                             "it was left as is") from exc

    def save(self, key: str, state: dict[str, Any],
             events: Iterable[tuple[str, str, dict[str, Any]]] = ()) -> int:
        """Commit state and new outbox events together; returns how many events were new."""
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

    def lock_path(self, key: str) -> Path:
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        return self.path.with_name(self.path.name + "-locks") / f"{digest}.lock"

    # Outbox

    def due(self, now: float, *, handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        """Events to try now, oldest first (only those of `handles`, when given)."""
        where, args = _only(handles)
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE parked=0 AND next_attempt_at<=?" + where +
                " ORDER BY created_at, rowid", (now, *args)).fetchall()
        return [_event(r) for r in rows]

    def events(self, *, parked: bool | None = None,
               handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        where, args = _only(handles)
        if parked is not None:
            where += " AND parked=?"
            args += (int(parked),)
        with self._lock:
            rows = self._db.execute("SELECT * FROM outbox WHERE 1=1" + where +
                                    " ORDER BY created_at, rowid", args).fetchall()
        return [_event(r) for r in rows]

    def delivered(self, event_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM outbox WHERE event_id=?", (event_id,))

    def failed(self, event_id: str, error: str, *, retry_at: float, park: bool) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET attempts=attempts+1, last_error=?, next_attempt_at=?, "
                       "parked=? WHERE event_id=?", (error[:500], retry_at, int(park), event_id))

    def unpark(self, event_ids: Iterable[str] | None = None) -> int:
        """Put parked events back in the queue (all of them when no ids are given)."""
        now = time.time()
        with self._tx() as db:
            if event_ids is None:
                cur = db.execute("UPDATE outbox SET parked=0, attempts=0, next_attempt_at=? "
                                 "WHERE parked=1", (now,))
                return cur.rowcount
            return sum(db.execute("UPDATE outbox SET parked=0, attempts=0, next_attempt_at=? "
                                  "WHERE parked=1 AND event_id=?", (now, e)).rowcount
                       for e in event_ids)

    def discard(self, event_ids: Iterable[str] | None = None) -> int:
        """Delete parked events (all of them when no ids are given)."""
        with self._tx() as db:
            if event_ids is None:
                return db.execute("DELETE FROM outbox WHERE parked=1").rowcount
            return sum(db.execute("DELETE FROM outbox WHERE parked=1 AND event_id=?",
                                  (e,)).rowcount for e in event_ids)

    def counts(self, handles: Iterable[str] | None = None) -> dict[str, int]:
        return {k: v for k, v in self.backlog(handles).items() if k != "next_due"}

    def backlog(self, handles: Iterable[str] | None = None) -> dict[str, Any]:
        """Pending and parked events, and when the next pending one is due."""
        where, args = _only(handles)
        with self._lock:
            pending, parked, next_due = self._db.execute(
                "SELECT COALESCE(SUM(parked=0),0), COALESCE(SUM(parked=1),0), "
                "MIN(CASE WHEN parked=0 THEN next_attempt_at END) FROM outbox WHERE 1=1"
                + where, args).fetchone()
        return {"pending": int(pending), "parked": int(parked), "next_due": next_due}


def _only(handles: Iterable[str] | None) -> tuple[str, tuple]:
    """A WHERE clause for some handles; one JSON parameter, so no limit on their number."""
    if handles is None:
        return "", ()
    return " AND handle IN (SELECT value FROM json_each(?))", (json.dumps(sorted(handles)),)


def _event(row: tuple) -> OutboxEvent:
    event_id, handle, payload, _created, attempts, next_at, error, parked = row
    return OutboxEvent(event_id, handle, json.loads(payload), attempts, next_at, error,
                       bool(parked))
