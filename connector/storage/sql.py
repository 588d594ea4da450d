"""The words in which each database says what both backends do.

`database.Database` writes every statement once, over `Sessions`, with `:name` parameters
and a few words that differ between SQLite and PostgreSQL; each backend gives its Dialect,
and a Session runs statements on one of its connections in that dialect.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any


class Dialect:
    """What differs between the databases in the statements both backends run."""

    #: What table (and function) names are prefixed with: PostgreSQL keeps them in a schema
    #: of their own.
    prefix: str
    #: The clock of leases and claims, in SQL, in seconds since the epoch. SQLite's is this
    #: process's (bound as :clock; SQLite's own counts whole milliseconds, too coarse for a
    #: `--once` cycle that began just after a poll); PostgreSQL's is the server's, so that
    #: workers whose clocks differ still agree.
    clock: str
    #: The column that orders outbox rows created in the same instant (oldest first).
    order: str
    #: What a save's read of its state's version adds, to hold the row until the save is
    #: done (SQLite: nothing; its transaction holds the file's write lock already).
    lock_row: str
    #: What a claim's read of the rows it takes adds, so that workers claiming at once skip
    #: each other's rows rather than wait for them (SQLite: nothing, one writer at a time).
    skip_locked: str
    #: Whether an UPDATE can say which rows it changed (RETURNING): a claim is then one
    #: statement, not a read and an update (SQLite has it only from 3.35).
    returning: bool
    #: What, put before a column, keeps SQLite's planner from using an index on it: a few
    #: handles' (or ids') due events are looked up by handle (or id), not found by a scan of
    #: every due event (which cost `watch` a walk over the whole backlog per handle).
    no_index: str
    #: The column of state_part that a part's bytes are written to.
    part_column: str
    #: An aggregate of state_part rows: a JSON array of [n, whether bytes, their hex or the
    #: text] for each.
    parts_json: str

    def among(self, column: str, name: str) -> str:
        """`column` is one of the list parameter `name` (given as `listed` makes it)."""
        raise NotImplementedError

    def floor(self, value: str) -> str:
        """The greatest whole number not above `value` (SQL of a positive number), as a
        float: what math.floor gives, so that both sides agree to the bit."""
        raise NotImplementedError

    def each(self, name: str) -> str:
        """A SELECT of the values of the list parameter `name`, one row each."""
        raise NotImplementedError

    def listed(self, values: Iterable[Any]) -> Any:
        """A list as a parameter of `among` or `each`."""
        raise NotImplementedError

    def statement(self, sql: str) -> str:
        """A statement written with `:name` parameters, as this database's driver takes it."""
        return sql

    def now(self, s: Session) -> float:
        """What `clock` reads now (in `s`, a session of the database)."""
        return float(s.one(f"SELECT {self.clock}")[0])

    def bind(self, args: dict[str, Any]) -> dict[str, Any]:
        """A statement's parameters: `args` (a dict made for this statement), with those the
        dialect adds (SQLite's :clock) put in it."""
        return args


class Session:
    """One connection (in a transaction or not), running statements in its dialect."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect
        self._statement = dialect.statement
        self._bind = dialect.bind

    def run(self, sql: str, **args: Any) -> Any:
        """Execute `sql` with `args` as its :named parameters; the driver's cursor."""
        return self.conn.execute(self._statement(sql), self._bind(args))

    def one(self, sql: str, **args: Any) -> Any:
        """The first row of `sql`, or None."""
        return self.conn.execute(self._statement(sql), self._bind(args)).fetchone()

    def all(self, sql: str, **args: Any) -> list[Any]:
        return self.conn.execute(self._statement(sql), self._bind(args)).fetchall()

    def many(self, sql: str, rows: list[dict[str, Any]]) -> None:
        """Execute `sql` once per row of parameters."""
        if rows:
            self.conn.cursor().executemany(self._statement(sql),
                                           [self._bind(dict(r)) for r in rows])


class Sessions(ABC):
    """What the operations of a Database (database.py, and its parts leases.py and budgets.py)
    are written over: each backend's sessions, in its dialect."""

    dialect: Dialect

    @abstractmethod
    def _tx(self) -> AbstractContextManager[Session]:
        """A transaction: what it writes is committed together when the block ends, or not
        at all."""

    @abstractmethod
    def _session(self) -> AbstractContextManager[Session]:
        """A connection for one statement, which is its own transaction."""

    def _claim(self, s: Session, table: str, key: str, where: str, take: str,
               also: str = "", **args: object) -> dict[str, tuple]:
        """Take the rows of `table` that `where` picks (`take`: the SET clause); their keys,
        each with its columns `also` (", a, b": as they were). Workers claiming at once never
        take the same row (SQLite: one writer at a time; PostgreSQL: each skips the rows the
        other is taking, rather than wait for them)."""
        d = self.dialect
        rows = f"FROM {table} WHERE {where} ORDER BY {key}{d.skip_locked}"
        if d.returning:  # one statement takes them and says which
            # (through a read that skips the rows others are taking, where a claim can)
            which = f"{key} IN (SELECT {key} {rows})" if d.skip_locked else where
            taken = s.all(f"UPDATE {table} SET {take} WHERE {which} RETURNING {key}{also}",
                          **args)
            return {r[0]: tuple(r[1:]) for r in taken}
        got = {r[0]: tuple(r[1:]) for r in s.all(f"SELECT {key}{also} {rows}", **args)}
        if got:
            s.run(f"UPDATE {table} SET {take} WHERE {d.among(key, 'got')}",
                  got=d.listed(got), **args)
        return got
