"""SQLite (WAL) as the state database: the embedded default, one file on this machine.

A per-key file lock (released by the OS if the process dies) serialises `poll`s of one handle
across processes, so two `poll` commands at once cannot both emit the same follow. `watch`
workers use the poll leases instead (rows, under SQLite's own write lock), so several `watch`
processes on this machine can share one file.

The file holds the watched handles' follows and the outbox's payloads: a new one is made
readable by its user alone (`file_mode`), and SQLite gives its -wal and -shm files the same
mode, as the lock folder and its lock files get here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.errors import ConfigurationError, ConnectorError, StateError
from .database import (
    STATE_DB_ENV,
    Claim,
    Database,
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

#: Each migration takes the file from the version before it to its own number, in one
#: transaction. 1 is the schema of the first release, as it made it (so an empty file and a
#: file of that release end up the same).
MIGRATIONS: dict[int, str] = {
    1: """
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
""",
    # 2: states versioned (saves compare and set) and split (one row per `known` segment);
    # poll leases; outbox claims.
    2: """
ALTER TABLE trigger_state ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE trigger_state ADD COLUMN parts INTEGER;
CREATE TABLE state_part (
    key TEXT NOT NULL,
    n INTEGER NOT NULL,
    digest BLOB NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (key, n)
);
CREATE TABLE poll_lease (
    key TEXT PRIMARY KEY,
    owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    polled_at REAL NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0
);
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until REAL NOT NULL DEFAULT 0;
CREATE INDEX outbox_handle ON outbox (handle, created_at);
CREATE INDEX outbox_claimed ON outbox (claimed_until);
""",
    # 3: a `known` part may be kept as the bytes its base85 encodes (database.pack_part) in
    # the `text` column (SQLite keeps a BLOB as it is, whatever the column's type): no table
    # changes, but a release before it cannot read such rows, and so refuses the file.
    3: "",
}
SCHEMA_VERSION = max(MIGRATIONS)
#: How long opening a file waits for another process that is preparing it (as for any lock).
PREPARE_WAIT = 30.0

#: The columns of each table at each version: a file whose tables differ is not ours, and is
#: refused before anything in it is changed.
_V1 = {
    "meta": ["name", "value"],
    "trigger_state": ["key", "state", "updated_at"],
    "outbox": ["event_id", "handle", "payload", "created_at", "attempts", "next_attempt_at",
               "last_error", "parked"],
}
COLUMNS: dict[int, dict[str, list[str]]] = {
    1: _V1,
    2: {
        "meta": _V1["meta"],
        "trigger_state": [*_V1["trigger_state"], "version", "parts"],
        "state_part": ["key", "n", "digest", "text"],
        "poll_lease": ["key", "owner", "lease_until", "polled_at", "next_at"],
        "outbox": [*_V1["outbox"], "claimed_by", "claimed_until"],
    },
}
COLUMNS[3] = COLUMNS[2]
_OUTBOX_COLUMNS = ", ".join(_V1["outbox"])


class SQLiteDatabase(Database):
    """One SQLite file; safe to share between threads (one connection, one lock)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self._lock = threading.RLock()
        #: Workers known to have died (names are never reused, so they stay dead).
        self._dead: set[str] = set()
        #: Workers this process marked alive (`worker`): never asked after through their file.
        self._mine: set[str] = set()
        self._lock_folder_made = False
        try:
            _create(self.path)
            self._mode = stat.S_IMODE(self.path.stat().st_mode) & 0o666
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

    # Schema

    def _prepare(self) -> None:
        # Switching a new file to WAL needs to write it: while another process holds the
        # write lock (creating the tables), SQLite answers "locked" at once rather than wait,
        # since waiting could deadlock (`watch --processes`, workers started together). Wait
        # for that one here, then look again: the file is then ready, and nothing changes.
        deadline = time.monotonic() + PREPARE_WAIT
        while True:
            try:
                return self._prepare_once()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise StateError(f"{self.path} is not a usable SQLite database ({exc}); "
                                     "pass another --state-db PATH") from None
                time.sleep(0.02)

    def _prepare_once(self) -> None:
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            # BEGIN IMMEDIATE: two processes opening a new file at once take turns; the second
            # finds the schema made and changes nothing.
            with self._tx() as db:
                version = self._version(db)
                self._check_columns(db, version)
                for target in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[target].split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT INTO meta VALUES ('schema', ?) ON CONFLICT(name) DO "
                               "UPDATE SET value=excluded.value", (str(target),))
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{self.path} is not a usable SQLite database ({exc}); pass "
                             "another --state-db PATH") from None

    def _version(self, db: sqlite3.Connection) -> int:
        """The file's schema version: 0 for an empty file."""
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            return 0
        row = db.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
        if row is None:
            return 0
        version = row[0]
        if not (isinstance(version, str) and version.isdigit() and len(version) < 6):
            raise StateError(f"{self.path} has a damaged schema version {str(version)[:20]!r}; "
                             "restore the file, or pass another --state-db PATH")
        if int(version) > SCHEMA_VERSION:
            raise StateError(f"{self.path} was written by a newer version of "
                             f"tiktok-following-connector (schema {version}; this one knows "
                             f"up to {SCHEMA_VERSION}); upgrade it, or pass another "
                             "--state-db PATH")
        return int(version)

    def _check_columns(self, db: sqlite3.Connection, version: int) -> None:
        for table, columns in COLUMNS[max(version, 1)].items():
            found = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            if (found and found != columns) or (version and not found):
                raise StateError(f"{self.path} is not a tiktok-following state database "
                                 f"(its table {table} has other columns); pass another "
                                 "--state-db PATH")

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

    def read_state(self, key: str) -> Snapshot:
        # One statement, so the row and its parts are of the same save (and a poll pays for
        # one round through SQLite, not four). The parts come as [n, bytes?, text or hex]
        # (JSON holds no bytes): an aggregate's order is SQLite's to choose.
        with self._lock:
            row = self._db.execute(
                "SELECT state, version, parts, CASE WHEN parts IS NULL THEN NULL ELSE "
                "(SELECT json_group_array(json_array(n, typeof(text) = 'blob', "
                "CASE WHEN typeof(text) = 'blob' THEN hex(text) ELSE text END)) "
                "FROM state_part WHERE key=?1) END FROM trigger_state WHERE key=?1",
                (key,)).fetchone()
        if row is None:
            return Snapshot(None, 0)
        parts = [] if row[3] is None else [
            unpack_part(bytes.fromhex(t)) if packed else t
            for _, packed, t in sorted(json.loads(row[3]), reverse=True)]
        return Snapshot(assemble_state(key, self.path, row[0], row[2], parts), row[1])

    def save(self, key: str, state: dict[str, Any], events: Iterable[NewEvent] = (), *,
             expect: int | None = None, lease: Lease | None = None,
             claim: EventClaim | None = None) -> Saved:
        now = time.time()
        events = list(events)
        small, parts = split_state(state)
        text = json.dumps(small, separators=(",", ":"))
        with self._tx() as db:
            row = db.execute("SELECT version FROM trigger_state WHERE key=?", (key,)).fetchone()
            current = 0 if row is None else row[0]
            if expect is not None and current != expect:
                raise StateConflict(f"the state of {key} was saved by another poll meanwhile; "
                                    "this poll's result was dropped (the other one stands)")
            stored = {d: n for n, d in db.execute(
                "SELECT n, digest FROM state_part WHERE key=?", (key,))}
            plan = plan_parts(parts or [], stored)
            db.executemany("DELETE FROM state_part WHERE key=? AND n=?",
                           [(key, n) for n in plan.delete])
            db.executemany("INSERT INTO state_part VALUES (?, ?, ?, ?)",
                           [(key, n, d, pack_part(t)) for n, d, t in plan.insert])
            count = None if parts is None else len(parts)
            if row is None:
                db.execute("INSERT INTO trigger_state (key, state, updated_at, version, parts) "
                           "VALUES (?, ?, ?, 1, ?)", (key, text, now, count))
            else:
                db.execute("UPDATE trigger_state SET state=?, updated_at=?, version=?, parts=? "
                           "WHERE key=?", (text, now, current + 1, count, key))
            holder, until = None, 0.0
            if claim is not None and events:
                where, args = _only({handle for _, handle, _ in events})
                if db.execute(f"SELECT 1 FROM outbox WHERE 1=1{where} LIMIT 1",
                              args).fetchone() is None:
                    holder, until = claim.owner, now + claim.seconds
            added = 0
            for event_id, handle, payload in events:
                cur = db.execute(
                    "INSERT OR IGNORE INTO outbox (event_id, handle, payload, created_at, "
                    "next_attempt_at, claimed_by, claimed_until) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (event_id, handle, json.dumps(payload, separators=(",", ":")), now, now,
                     holder, until))
                added += cur.rowcount
            if holder is not None and added != len(events):  # an id given twice is queued once
                db.execute(f"UPDATE outbox SET claimed_by=NULL, claimed_until=0 WHERE "
                           f"claimed_by=?{where}", (holder, *args))
                holder = None
            if lease is not None:
                _release(db, key, lease.owner, lease.polled, lease.next_in, now)
        return Saved(added, holder is not None)

    def _lock_path(self, name: str) -> Path:
        digest = hashlib.sha1(name.encode()).hexdigest()[:16]
        folder = self.path.with_name(self.path.name + "-locks")
        if not self._lock_folder_made:  # once: this runs per handle, and per claimer
            # Whoever may use the file may use its locks: the file's mode, its read bits made
            # search bits too (the umask had its say when the file was made).
            mode = self._mode | (self._mode & 0o444) >> 2
            try:
                if not folder.is_dir():  # one that exists keeps its mode
                    folder.mkdir(mode=mode)
                    folder.chmod(mode)
            except FileExistsError:  # made by another process just now, or not a folder
                if not folder.is_dir():
                    raise ConfigurationError(f"cannot create the lock folder {folder}: a file "
                                             "is in the way", field="stateDb") from None
            except OSError as exc:
                raise ConfigurationError(f"cannot create the lock folder {folder}: "
                                         f"{exc.strerror}", field="stateDb") from None
            self._lock_folder_made = True
        return folder / f"{digest}.lock"

    @contextmanager
    def lock(self, key: str, timeout: float) -> Iterator[None]:
        from filelock import FileLock, Timeout

        path = self._lock_path(key)
        lock = FileLock(str(path), mode=self._mode)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise ConnectorError(f"another poll of {key} holds {path} for over {timeout:.0f}s; "
                                 "try again when it is done") from None
        try:
            yield
        finally:
            lock.release()

    # Workers, poll leases and event claims

    @contextmanager
    def worker(self, owner: str) -> Iterator[None]:
        from filelock import FileLock

        path = self._lock_path(f"worker:{owner}")
        lock = FileLock(str(path), mode=self._mode)
        lock.acquire(timeout=5)
        self._mine.add(owner)
        try:
            yield
        finally:
            self._mine.discard(owner)
            lock.release()
            path.unlink(missing_ok=True)

    def _gone(self, owner: str | None) -> bool:
        """Whether `owner` was marked alive (`worker`) and its process has died since: its lock
        file is there and nobody holds it."""
        if owner is None:
            return True
        if owner in self._mine:  # alive: this process marked it so (and no lock file says
            return False         # more about an owner of our own; asking costs a syscall)
        if owner in self._dead:
            return True
        from filelock import FileLock, Timeout

        path = self._lock_path(f"worker:{owner}")
        if not path.exists():
            return False
        lock = FileLock(str(path), mode=self._mode)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        # The file stays: other processes must be able to tell too.
        lock.release()
        self._dead.add(owner)
        return True

    def _dead_claimers(self, db: sqlite3.Connection, now: float) -> str:
        """The owners of live-looking outbox claims whose process is gone, as a JSON list."""
        owners = [r[0] for r in db.execute("SELECT DISTINCT claimed_by FROM outbox WHERE "
                                           "claimed_until>?", (now,))]
        return json.dumps([o for o in owners if o is not None and self._gone(o)])

    def claim_polls(self, keys: Iterable[str], owner: str, *, lease_for: float,
                    polled_within: float | None = None) -> Claim:
        wanted = json.dumps(list(dict.fromkeys(keys)))
        claim = Claim()
        with self._tx() as db:
            now = time.time()
            db.execute("INSERT OR IGNORE INTO poll_lease (key) SELECT value FROM json_each(?)",
                       (wanted,))
            rows = db.execute("SELECT key, owner, lease_until, polled_at, next_at FROM "
                              "poll_lease WHERE key IN (SELECT value FROM json_each(?))",
                              (wanted,)).fetchall()
            for key, holder, until, polled_at, next_at in rows:
                held = holder != owner and until > now and not self._gone(holder)
                sort_claim(claim, key, held_for=until - now if held else 0.0,
                           due_in=next_at - now,
                           polled=(polled_at >= now - polled_within if polled_within is not None
                                   else next_at > now))
            db.executemany("UPDATE poll_lease SET owner=?, lease_until=? WHERE key=?",
                           [(owner, now + lease_for, k) for k in claim.granted])
        return claim

    def release_poll(self, key: str, owner: str, *, polled: bool = False,
                     next_in: float | None = None) -> None:
        with self._tx() as db:
            _release(db, key, owner, polled, next_in, time.time())

    # Outbox

    def due(self, now: float, *, handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        where, args = _only(handles)
        # For some handles, their index (outbox_handle) finds their few events; the unary
        # pluses keep SQLite from scanning every due event by outbox_due instead, which cost
        # watch a scan of the whole backlog per handle delivered.
        due = "parked=0 AND next_attempt_at<=?" if handles is None else \
            "+parked=0 AND +next_attempt_at<=?"
        with self._lock:
            clock = time.time()
            dead = self._dead_claimers(self._db, clock)
            rows = self._query(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox o WHERE {due}"
                f"{where} AND NOT EXISTS (SELECT 1 FROM outbox c WHERE c.handle=o.handle AND "
                "c.claimed_until>? AND c.claimed_by NOT IN (SELECT value FROM json_each(?))) "
                "ORDER BY created_at, rowid", (now, *args, clock, dead))
        return [event_from_row(r) for r in rows]

    def claim_events(self, event_ids: list[str], owner: str, *, claim_for: float) -> list[str]:
        granted = []
        with self._tx() as db:
            now = time.time()
            dead = self._dead_claimers(db, now)
            for event_id in event_ids:
                cur = db.execute("UPDATE outbox SET claimed_by=?, claimed_until=? WHERE "
                                 "event_id=? AND parked=0 AND next_attempt_at<=? AND "
                                 "(claimed_until<=? OR claimed_by IN (SELECT value FROM "
                                 "json_each(?)))", (owner, now + claim_for, event_id, now, now,
                                                    dead))
                if cur.rowcount:
                    granted.append(event_id)
        return granted

    def release_events(self, event_ids: list[str], owner: str) -> None:
        with self._tx() as db:
            db.executemany("UPDATE outbox SET claimed_by=NULL, claimed_until=0 WHERE "
                           "event_id=? AND claimed_by=?", [(e, owner) for e in event_ids])

    def events(self, *, parked: bool | None = None,
               handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        where, args = _only(handles)
        if parked is not None:
            where += " AND parked=?"
            args += (int(parked),)
        rows = self._query(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE 1=1{where} "
                           "ORDER BY created_at, rowid", args)
        return [event_from_row(r) for r in rows]

    def delivered(self, event_id: str) -> None:
        # One statement: its own transaction.
        self._query("DELETE FROM outbox WHERE event_id=?", (event_id,))

    def failed(self, event_id: str, error: str, *, retry_at: float, park: bool) -> None:
        self._query("UPDATE outbox SET attempts=attempts+1, last_error=?, next_attempt_at=?, "
                    "parked=?, claimed_by=NULL, claimed_until=0 WHERE event_id=?",
                    (error[:500], retry_at, int(park), event_id))

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


#: The mode of a new state file (and of its -wal, -shm and lock files): its user's alone.
PRIVATE = 0o600
#: ... unless it is made in a folder shared with a group on purpose: one with the setgid bit
#: (new files take its group) that its group may write to. The umask applies to both.
SHARED = 0o660


def file_mode(folder: Path) -> int:
    """The mode a new state file gets in `folder` (before the umask)."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return PRIVATE
    shared = mode & stat.S_ISGID and mode & stat.S_IWGRP and not mode & stat.S_IWOTH
    return SHARED if shared else PRIVATE


def _create(path: Path) -> None:
    """Make the state file, empty (SQLite makes an empty file a database), with `file_mode`,
    and its folder (this user's alone) if it is missing. A file that exists keeps its mode:
    it is its owner's choice, a group's shared file among them."""
    if path.exists():
        return
    # Only the last folder gets the mode: the ones above it are not the connector's.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another process made it just now
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode(path.parent)))


def _release(db: sqlite3.Connection, key: str, owner: str, polled: bool,
             next_in: float | None, now: float) -> None:
    if not polled:
        db.execute("UPDATE poll_lease SET owner=NULL, lease_until=0 WHERE key=? AND owner=?",
                   (key, owner))
        return
    # Polled now, whoever holds the lease; only the holder's lease ends.
    db.execute("INSERT INTO poll_lease (key, polled_at, next_at) VALUES (?, ?, ?) "
               "ON CONFLICT(key) DO UPDATE SET polled_at=excluded.polled_at, "
               "next_at=COALESCE(?, next_at), "
               "owner=CASE WHEN owner=? THEN NULL ELSE owner END, "
               "lease_until=CASE WHEN owner=? THEN 0 ELSE lease_until END",
               (key, now, now + (next_in or 0.0), None if next_in is None else now + next_in,
                owner, owner))


def _only(handles: Iterable[str] | None) -> tuple[str, tuple]:
    """A WHERE clause for some handles; one JSON parameter, so no limit on their number."""
    if handles is None:
        return "", ()
    return " AND handle IN (SELECT value FROM json_each(?))", (json.dumps(sorted(handles)),)
