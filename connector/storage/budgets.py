"""Credit budgets kept in the database: one row per budget (its bucket: level, held, as of
when) and the credits each worker holds for its polls in flight, so that every worker sharing
the database spends from one bucket, and a restart does not find it full again.

Each step (reserve, settle) is one transaction: the row is read and locked, the Bucket
arithmetic (core/budget.py) runs at the database's own clock (`Database.clock`), and the row
is written back.
Holds of a worker that died (its liveness mark, `Database.worker`) are abandoned there too:
counted as spent, since its requests may have been made."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.budget import Bucket, Budget, Hold
from ..core.config import CREDITS_PER_REQUEST
from .sql import Session, Sessions


class Budgets(Sessions):
    """The budget operations of a Database."""

    def bucket(self, name: str, budget: Budget, owner: str) -> StoredBucket:
        """The bucket of budget `name` (made full the first time), spent by `owner`: a
        `core.budget.CreditBucket`. A budget given anew (another N or period) replaces the
        stored one at its next step; the level stays, within the new capacity."""
        return StoredBucket(self, name, budget, owner)

    def budget_view(self, name: str) -> tuple[Budget, Bucket] | None:
        """Budget `name` as stored, and its bucket as of now; None when no worker has
        spent from it yet (nor given it)."""
        return _view(self, name, None)


class StoredBucket:
    """A budget's bucket in a database row, shared by every worker of the database."""

    def __init__(self, database: Budgets, name: str, budget: Budget, owner: str) -> None:
        self.database = database
        self.name = name
        self.budget = budget
        self.owner = owner

    def reserve(self, want: int, least: int = CREDITS_PER_REQUEST) -> Hold:
        hold = Hold(0)
        with self._step() as (s, now, bucket):
            bucket, granted = bucket.reserve(self.budget, now, want, least)
            if granted:
                # A random name: unique among the owner's holds without asking the database.
                hold = Hold(granted, secrets.randbits(62))
                s.run(f"INSERT INTO {s.dialect.prefix}budget_holds (name, owner, credits, "
                      "hold) VALUES (:name, :owner, :credits, :hold)", name=self.name,
                      owner=self.owner, credits=granted, hold=hold.ref)
            _write(s, self.name, self.budget, bucket)
        return hold

    def settle(self, hold: Hold, spent: int) -> None:
        """The poll that held `hold` is done and spent `spent`: the rest comes back, unless
        the hold was abandoned meanwhile (counted as spent in full: nothing changes)."""
        with self._step() as (s, now, bucket):
            # Its row holds hold.credits (rows are never changed, only deleted).
            if hold.credits and s.run(
                    f"DELETE FROM {s.dialect.prefix}budget_holds WHERE name = :name AND "
                    "owner = :owner AND hold = :hold", name=self.name, owner=self.owner,
                    hold=hold.ref).rowcount:
                bucket = bucket.settle(self.budget, now, hold.credits, spent)
            _write(s, self.name, self.budget, bucket)

    def ready_in(self, credits: int) -> float:
        bucket = self.view()
        return bucket.ready_in(self.budget, bucket.at, credits)

    def view(self) -> Bucket:
        """The bucket as of now (as this worker's next step will find it)."""
        found = _view(self.database, self.name, self.budget)
        assert found is not None
        return found[1]

    @contextmanager
    def _step(self) -> Iterator[tuple[Session, float, Bucket]]:
        """One transaction on the budget's row: yields (session, now, bucket), the bucket
        refilled to now less what dead workers held; the caller writes it back. An error
        anywhere in it ends the transaction (a lock released, a broken session reported)."""
        d, t = self.database.dialect, self.database.dialect.prefix
        with self.database._tx() as s:
            now = d.now(s)
            found = _read(s, self.name, lock=d.lock_row)
            if found is None:
                s.run(f"INSERT INTO {t}budgets (name, credits, period, level, held, as_of) "
                      "VALUES (:name, :credits, :period, :level, 0, :now) ON CONFLICT (name) "
                      "DO NOTHING", name=self.name, credits=self.budget.credits,
                      period=self.budget.period, level=self.budget.capacity, now=now)
                found = _read(s, self.name, lock=d.lock_row)
                assert found is not None
            bucket = found[1]
            for owner, hold, credits in s.all(
                    f"SELECT owner, hold, credits FROM {t}budget_holds WHERE name = :name AND "
                    f"{t}gone(owner)", name=self.name):
                bucket = bucket.abandon(self.budget, now, int(credits))
                s.run(f"DELETE FROM {t}budget_holds WHERE name = :name AND owner = :owner "
                      "AND hold = :hold", name=self.name, owner=owner, hold=hold)
            yield s, now, bucket

    def __repr__(self) -> str:
        return f"StoredBucket({self.name!r}, {self.budget})"


def _view(database: Budgets, name: str, budget: Budget | None) -> tuple[Budget, Bucket] | None:
    """Budget `name` and its bucket as of the database's now, refilled by `budget` (the one a
    worker spends by, which its next step stores) or, without one, by the stored one. A
    budget never stepped is full; None only when none is stored and none given."""
    with database._session() as s:
        now = database.dialect.now(s)
        found = _read(s, name, lock="")
    if found is None:
        return None if budget is None else (budget, Bucket.full(budget, now))
    stored, bucket = found
    by = budget or stored
    return by, bucket.refill(by, now)


def _read(s: Session, name: str, *, lock: str) -> tuple[Budget, Bucket] | None:
    t = s.dialect.prefix
    row = s.one(f"SELECT credits, period, level, held, as_of FROM {t}budgets WHERE "
                f"name = :name{lock}", name=name)
    if row is None:
        return None
    credits, period, level, held, at = row
    return Budget(int(credits), str(period)), Bucket(float(level), float(held), float(at))


def _write(s: Session, name: str, budget: Budget, bucket: Bucket) -> None:
    s.run(f"UPDATE {s.dialect.prefix}budgets SET credits = :credits, period = :period, "
          "level = :level, held = :held, as_of = :at WHERE name = :name", name=name,
          credits=budget.credits, period=budget.period, level=bucket.level, held=bucket.held,
          at=bucket.at)

