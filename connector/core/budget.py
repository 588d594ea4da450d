"""The credit budget: a hard cap on what polls spend, kept as a token bucket.

`--budget N/period` promises that over any stretch of time t at most N * t / period + N / 10
credits are spent, baselines and gap reads included. The bucket behind it holds at most N / 10
credits and refills at N per period. A poll reserves, before it starts, the credits its page
budget could spend (10 a request) and, when it is done, gives back what it did not spend; a
poll that cannot get its minimum waits.

Credits held by polls in flight do not refill: level + held never exceeds N / 10. That is what
makes the cap hold for the requests themselves, not only for the reservations. Let
Φ = level + held ≤ N / 10: Φ grows only by refill, at most N / period a second, and falls by
what each poll spent when it settles. The credits spent in [a, b] are at most those of the
polls that settled in [a, b] plus those still held at b, so at most
Φ(a) - Φ(b) + N (b - a) / period + held(b) ≤ N / 10 + N (b - a) / period. (A plain bucket that
refilled while polls held credits would let a slow poll and a fresh one spend the same credits
twice.)

The arithmetic is pure: methods of the stored (level, held, at) and `now`. One database row
shared by many workers holds a budget (storage/budgets.py updates it in a transaction, with
the database's clock as `now`), and tests and benchmarks run it on a virtual clock.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .config import CREDITS_PER_REQUEST
from .errors import InputError

#: Seconds in each period a budget may be given per. A month is 365.25 / 12 days (30.44),
#: systemd's month: twelve of them make a year, so a year's spend is twelve allowances.
PERIODS = {"hour": 3600.0, "day": 86400.0, "month": 2_629_800.0}
_UNITS = {"hour": "hour", "hours": "hour", "h": "hour", "day": "day", "days": "day", "d": "day",
          "month": "month", "months": "month", "mo": "month"}
#: A poll's smallest page budget (the triggers' `maxPages` minimum): N / 10 must hold it.
MIN_POLL_PAGES = 2
#: More than this is a typo (a trillion credits is ten billion requests).
MAX_CREDITS = 10**12
#: Float rounding of the refill is forgiven up to this many credits, so a bucket that holds
#: 19.9999999999 credits by arithmetic still grants 20.
EPSILON = 1e-6
_TEXT = re.compile(r"(\d{1,3}(?:[,_]\d{3})+|\d+)(?:credits?)?/([a-z]+)")


@dataclass(frozen=True)
class Budget:
    """N credits per hour, day or month: at most N * t / period + N / 10 over any t seconds."""

    credits: int
    period: str

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise InputError(f"budget period {self.period!r}: give hour, day or month",
                             field="budget")
        least = MIN_POLL_PAGES * CREDITS_PER_REQUEST * 10
        if type(self.credits) is not int or not least <= self.credits <= MAX_CREDITS:
            raise InputError(
                f"budget {self.credits!r}/{self.period}: give a whole number of credits from "
                f"{least} (a tenth of it, the most spent at "
                f"once, must pay a poll's {MIN_POLL_PAGES} requests) to {MAX_CREDITS:,}",
                field="budget")

    @property
    def seconds(self) -> float:
        return PERIODS[self.period]

    @property
    def rate(self) -> float:
        """Credits per second the bucket refills at."""
        return self.credits / self.seconds

    @property
    def capacity(self) -> float:
        """The most the bucket holds: N / 10, what may be spent at once."""
        return self.credits / 10

    def cap(self, seconds: float) -> float:
        """The most that may be spent over a stretch of `seconds`."""
        return self.rate * max(0.0, seconds) + self.capacity

    def __str__(self) -> str:
        return f"{self.credits}/{self.period}"


def period_start(now: float, seconds: float) -> float:
    """When the budget period of `seconds` that holds the time `now` began (epoch seconds):
    what a handle's credits are counted by. `now` is the database's clock (Database.clock),
    as where they are written (storage/leases.py does this sum in SQL, in the statement that
    writes them), so that workers whose clocks differ agree on it."""
    return math.floor(now / seconds) * seconds


def parse_budget(text: str) -> Budget:
    """'100000/month', '5,000/day', '2000 credits/hour' -> Budget."""
    value = re.sub(r"\s+", "", str(text).lower())
    match = _TEXT.fullmatch(value)
    if match is None or match.group(2) not in _UNITS:
        hint = (" ('m' could be minutes or months: write month)"
                if match is not None and match.group(2) == "m" else "")
        raise InputError(f"budget {text!r}: give credits per hour, day or month, like "
                         f"100000/month or 5000/day{hint}", field="budget")
    credits = int(match.group(1).replace(",", "").replace("_", ""))
    return Budget(credits, _UNITS[match.group(2)])


@dataclass(frozen=True)
class Bucket:
    """A budget's stored state: `level`, the credits that may be reserved (negative: owed, if
    a poll ever spent more than it held), `held` by polls in flight, both as of `at` (seconds
    on the budget's clock)."""

    level: float
    held: float
    at: float

    @classmethod
    def full(cls, budget: Budget, now: float) -> Bucket:
        """A new budget's bucket: full, so the first polls (the baselines) need not wait."""
        return cls(budget.capacity, 0.0, now)

    def refill(self, budget: Budget, now: float) -> Bucket:
        """The bucket at `now`: refilled at N / period, up to N / 10 less what is held (a
        budget lowered since is obeyed at once). A clock that steps back refills nothing, and
        `at` stays, so nothing is refilled twice."""
        elapsed = max(0.0, now - self.at)
        level = min(budget.capacity - self.held, self.level + elapsed * budget.rate)
        return Bucket(level, self.held, max(self.at, now))

    def reserve(self, budget: Budget, now: float, want: int,
                least: int = CREDITS_PER_REQUEST) -> tuple[Bucket, int]:
        """Hold up to `want` credits, in whole requests, for a poll; none unless at least
        `least` can be. Returns the bucket after, and the credits held (0: wait)."""
        if want < least:
            raise ValueError(f"a reservation of {want} credits is below its minimum {least}")
        bucket = self.refill(budget, now)
        whole = math.floor((bucket.level + EPSILON) / CREDITS_PER_REQUEST)
        granted = min(want // CREDITS_PER_REQUEST, whole) * CREDITS_PER_REQUEST
        if granted < max(least, CREDITS_PER_REQUEST):
            return bucket, 0
        return Bucket(bucket.level - granted, bucket.held + granted, bucket.at), granted

    def settle(self, budget: Budget, now: float, reserved: int, spent: int) -> Bucket:
        """A poll that held `reserved` is done and spent `spent`: the rest comes back (and more
        is owed, should it have spent more than it held)."""
        bucket = self.refill(budget, now)
        held = max(0.0, bucket.held - reserved)
        level = min(budget.capacity - held, bucket.level + reserved - spent)
        return Bucket(level, held, bucket.at)

    def abandon(self, budget: Budget, now: float, reserved: int) -> Bucket:
        """A poll that held `reserved` will never settle (its worker died): all of it is taken
        as spent."""
        return self.settle(budget, now, reserved, reserved)

    def ready_in(self, budget: Budget, now: float, credits: int) -> float:
        """Seconds until `credits` can be reserved, if nothing else is (inf: only polls that
        settle can free them)."""
        bucket = self.refill(budget, now)
        if bucket.level + EPSILON >= credits:
            return 0.0
        if credits > budget.capacity - bucket.held + EPSILON:
            return math.inf
        return (credits - bucket.level) / budget.rate


@dataclass(frozen=True)
class Hold:
    """Credits reserved for one poll, until it settles: `credits` (0: none, the poll waits),
    and `ref`, which of its store's holds they are. A store that counts a hold as spent
    meanwhile (its worker seemed dead) knows its settle by it, and changes nothing then."""

    credits: int
    ref: int = 0


class CreditBucket(Protocol):
    """Where a budget's bucket lives: in memory here, a database row in storage. Each call is
    one atomic step of the Bucket arithmetic at the store's own `now`."""

    budget: Budget

    def reserve(self, want: int, least: int = CREDITS_PER_REQUEST) -> Hold: ...

    def settle(self, hold: Hold, spent: int) -> None: ...

    def ready_in(self, credits: int) -> float: ...

    def view(self) -> Bucket: ...


class MemoryBucket:
    """A budget's bucket in this process, shared by its threads; the clock is injectable."""

    def __init__(self, budget: Budget, *, clock: Callable[[], float] = time.time) -> None:
        self.budget = budget
        self.clock = clock
        self._bucket = Bucket.full(budget, clock())
        self._lock = threading.Lock()
        #: Credits spent through this bucket, all told.
        self.spent = 0

    def reserve(self, want: int, least: int = CREDITS_PER_REQUEST) -> Hold:
        with self._lock:
            self._bucket, granted = self._bucket.reserve(self.budget, self.clock(), want, least)
            return Hold(granted)

    def settle(self, hold: Hold, spent: int) -> None:
        with self._lock:
            self._bucket = self._bucket.settle(self.budget, self.clock(), hold.credits, spent)
            self.spent += spent

    def ready_in(self, credits: int) -> float:
        with self._lock:
            return self._bucket.ready_in(self.budget, self.clock(), credits)

    def view(self) -> Bucket:
        """The bucket as of now."""
        with self._lock:
            return self._bucket.refill(self.budget, self.clock())

    def __repr__(self) -> str:
        bucket = self.view()
        return (f"MemoryBucket({self.budget}, level={bucket.level:.1f}, "
                f"held={bucket.held:g})")
