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
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.config import STATE_DB_ENV
from ..core.errors import ConfigurationError, ConnectorError, StateError
from .database import Database
from .records import compact_json
from .schema import migrate, schema_version
from .sql import Dialect, Session
from .sqlite_schema import MIGRATIONS, SCHEMA_VERSION, columns

#: How long opening a file waits for another process that is preparing it (as for any lock).
PREPARE_WAIT = 30.0


class SQLiteDialect(Dialect):
    prefix = ""
    clock = ":clock"
    order = "rowid"
    lock_row = ""
    skip_locked = ""
    returning = sqlite3.sqlite_version_info >= (3, 35)  # RETURNING came in 3.35
    no_index = "+"
    part_column = "text"
    parts_json = ("json_group_array(json_array(n, typeof(text) = 'blob', CASE WHEN typeof(text) "
                  "= 'blob' THEN hex(text) ELSE text END))")

    def among(self, column: str, name: str) -> str:
        # One JSON parameter: no limit on the number of values.
        return f"{column} IN (SELECT value FROM json_each(:{name}))"

    def floor(self, value: str) -> str:
        # SQLite's floor() needs its math functions built in; a positive number's cast does.
        return f"CAST(CAST({value} AS INTEGER) AS REAL)"

    def each(self, name: str) -> str:
        # WHERE: so that an ON CONFLICT after it is not read as the SELECT's join.
        return f"SELECT value FROM json_each(:{name}) WHERE true"

    def listed(self, values: Iterable[Any]) -> str:
        return compact_json(list(values))

    def now(self, s: Session) -> float:
        return time.time()  # what bind() gives :clock, without a statement to ask it

    def bind(self, args: dict[str, Any]) -> dict[str, Any]:
        args["clock"] = time.time()
        return args


DIALECT = SQLiteDialect()


class SQLiteDatabase(Database):
    """One SQLite file; safe to share between threads (one connection, one lock)."""

    dialect = DIALECT

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self._lock = threading.RLock()
        #: Workers known to have died (names are never reused, so they stay dead).
        self._dead: set[str] = set()
        #: Workers this process marked alive (`worker`): never asked after through their file.
        self._mine: set[str] = set()
        #: What `gone` answered in the statement under way, by owner: each is asked once.
        self._verdicts: dict[str | None, bool] = {}
        self._lock_folder_made = False
        try:
            _create(self.path)
            self._mode = stat.S_IMODE(self.path.stat().st_mode) & 0o666
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                       check_same_thread=False)
            self._db.create_function("gone", 1, self._gone_in_sql)
            self._in_tx, self._in_session = _Use(self, "BEGIN IMMEDIATE"), _Use(self, None)
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
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                # BEGIN IMMEDIATE: two processes opening a new file at once take turns; the
                # second finds the schema made and changes nothing.
                with self._tx() as s:
                    version = self._version(s.conn)
                    migrate(s, version,
                            {n: [st for st in script.split(";") if st.strip()]
                             for n, script in MIGRATIONS.items()})
                return
            except sqlite3.DatabaseError as exc:
                if not (isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
                        and time.monotonic() <= deadline):
                    raise StateError(f"{self.path} is not a usable SQLite database ({exc}); "
                                     "pass another --state-db PATH") from None
                time.sleep(0.02)

    def _version(self, db: sqlite3.Connection) -> int:
        """The file's schema version (0 for an empty file), once its tables are found to be
        ours."""
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        row = db.execute("SELECT value FROM meta WHERE name='schema'").fetchone() \
            if "meta" in tables else None
        version = schema_version(None if row is None else row[0], self.location, SCHEMA_VERSION)
        for table, names in columns(max(version, 1)).items():
            found = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            if (found and found != names) or (version and not found):
                raise StateError(f"{self.path} is not a tiktok-following state database "
                                 f"(its table {table} has other columns); pass another "
                                 "--state-db PATH")
        return version

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self) -> _Use:
        return self._in_tx

    def _session(self) -> _Use:
        return self._in_session

    def _lock_path(self, name: str, *, make: bool = True) -> Path:
        """The lock file of `name`, its folder made if need be (`make`)."""
        digest = hashlib.sha1(name.encode()).hexdigest()[:16]
        path = self.path.with_name(self.path.name + "-locks") / f"{digest}.lock"
        folder = path.parent
        if make and not self._lock_folder_made:  # once: this runs per handle, and per claimer
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
        return path

    @contextmanager
    def lock(self, key: str, timeout: float) -> Iterator[None]:
        from filelock import FileLock, Timeout

        path = self._lock_path(key)
        try:
            held = FileLock(str(path), mode=self._mode).acquire(timeout=timeout)
        except Timeout:
            raise ConnectorError(f"another poll of {key} holds {path} for over {timeout:.0f}s; "
                                 "try again when it is done") from None
        with held:
            yield

    # Workers

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

        path = self._lock_path(f"worker:{owner}", make=False)
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

    def _gone_in_sql(self, owner: str | None) -> bool:
        """`gone(owner)` in this connection's statements: `_gone`, asked once per owner in a
        statement (it may cost a few system calls)."""
        verdict = self._verdicts.get(owner)
        if verdict is None:
            try:
                verdict = self._verdicts[owner] = self._gone(owner)
            except Exception:  # its leases then end by time alone
                verdict = False
        return verdict


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


class _Use:
    """`with` it: the file's one connection as a Session, under the database's lock, in a
    transaction when `begin` starts one (committed when the block ends, rolled back if it
    raises). Made once per database: a statement costs no new objects."""

    def __init__(self, db: SQLiteDatabase, begin: str | None) -> None:
        self.db, self.begin = db, begin
        self.session = Session(db._db, DIALECT)

    def __enter__(self) -> Session:
        db = self.db
        db._lock.acquire()
        try:
            db._verdicts.clear()
            if self.begin is not None:
                db._db.execute(self.begin)
        except BaseException:
            db._lock.release()
            raise
        return self.session

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            if self.begin is not None:
                self.db._db.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self.db._lock.release()
