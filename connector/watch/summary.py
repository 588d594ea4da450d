"""What a cycle of `watch` did: the numbers on its summary line, and what `--once` exits with."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..core.config import plural
from ..core.errors import ApiError, ConnectorError
from ..core.http import RateLimit
from ..operations import CREDITS_PER_REQUEST
from ..storage import Backlog

#: Failed handles named on the summary line; `-v` logs every one of them.
SHOWN_FAILURES = 5


@dataclass
class DeliveryPass:
    """What one delivery pass did."""

    delivered: int = 0
    #: POSTs that failed; each of those events is pending again, or parked.
    failed: int = 0
    #: Events parked by this pass (a subset of `failed`).
    parked: int = 0
    #: Due events not tried: the receiver looked down, or watch is stopping.
    held: int = 0
    last_error: str | None = None
    #: Seconds from each delivered event's detection (its detectedAt) to its 2xx.
    delays: list[float] = field(default_factory=list, repr=False, compare=False)
    #: POSTs in a row, as they ended, that got no answer at all.
    silent: int = field(default=0, repr=False, compare=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    #: Events this pass POSTed (delivered or not): a pass tries each event once.
    tried: set[str] = field(default_factory=set, repr=False, compare=False)
    #: Set once the receiver looks down: the rest of the pass is held back.
    down: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def __reduce__(self) -> tuple[Any, ...]:
        # The counts cross to another process (a WatcherGroup's summaries), not the lock and
        # event that only mean something inside this one.
        return (DeliveryPass, (self.delivered, self.failed, self.parked, self.held,
                               self.last_error, self.delays))

    def add(self, other: DeliveryPass) -> None:
        for name in ("delivered", "failed", "parked", "held"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.last_error = other.last_error or self.last_error
        self.delays += other.delays


@dataclass
class HandlePoll:
    """One handle's poll: its trigger meta, or the error that stopped it."""

    handle: str
    meta: dict[str, Any] | None = None
    error: BaseException | None = None
    #: Outbox events this poll added (new follows not already queued).
    queued: int = 0
    requests: int = 0
    pages: int = 0
    #: Not polled: watch was stopping.
    skipped: bool = False
    #: Not polled here: another watcher sharing the database polled it (or holds it).
    elsewhere: bool = False
    #: Not polled yet: the budget could not pay for it (it is due again when it can).
    waiting: bool = False
    #: The handle's health after this poll (backoff.py: ok, hidden, failing), when it was
    #: polled here.
    health: str | None = None

    @property
    def reason(self) -> str:
        """A short cause for the summary line: `404 not_found`, `transport_error`, ..."""
        err = self.error
        if isinstance(err, ApiError):
            return f"{err.status} {err.code}"
        return err.code if isinstance(err, ConnectorError) else type(err).__name__

    @property
    def result(self) -> str | None:
        """What the poll came to, for the metrics: `ok`, `failed`, `dropped` (polled, but
        another watcher saved first); None when it was not polled here (stopping, put off
        for credits, or polled by another watcher)."""
        if self.skipped or self.waiting or (self.elsewhere and not self.requests):
            return None
        if self.elsewhere:
            return "dropped"
        return "failed" if self.error is not None else "ok"


@dataclass(frozen=True)
class BudgetLevel:
    """The budget's bucket as a watcher read it at the end of a cycle: the credits in hand,
    those held by polls in flight, the most it holds, and when (the database's clock). What
    the budget gauges show, for a WatcherGroup too (its processes share the bucket)."""

    level: float
    held: float
    capacity: float
    at: float


@dataclass
class CycleSummary:
    """One cycle: every handle polled once (`--once`), or one interval of a running watch."""

    handles: int
    #: Handles whose last poll in the cycle succeeded.
    polled: set[str] = field(default_factory=set)
    #: Handles whose last poll in the cycle failed, with a short reason.
    failed: dict[str, str] = field(default_factory=dict)
    #: Each polled handle's health after its last poll in the cycle (backoff.py: ok, hidden,
    #: failing), where the poll said it: what the metrics show of a WatcherGroup's handles.
    health: dict[str, str] = field(default_factory=dict)
    skipped: int = 0
    #: Handles another watcher sharing the database polled in this cycle.
    elsewhere: int = 0
    #: Handles whose last poll in the cycle was put off: the budget could not pay for it.
    waiting: set[str] = field(default_factory=set)
    #: The budget and what it holds at the end of the cycle, as the summary says it (None:
    #: no budget).
    budget: str | None = None
    #: ... and in figures (None: no budget, or the database was away).
    bucket: BudgetLevel | None = None
    #: Things said once on a summary line (the budget is short).
    notes: list[str] = field(default_factory=list)
    baselined: int = 0
    new_follows: int = 0
    #: Unfollows detected, once a handle's unfollows were polled (None: not watched).
    unfollows: int | None = None
    requests: int = 0
    credits: int = 0
    #: Polls made, by result (HandlePoll.result).
    polls: dict[str, int] = field(default_factory=dict)
    delivery: DeliveryPass = field(default_factory=DeliveryPass)
    #: The outbox (this watch's handles) at the end of the cycle.
    pending: int = 0
    parked: int = 0
    rate_limit: RateLimit | None = None
    stopped: bool = False
    #: The state database was away when the cycle ended: polls and deliveries were waiting
    #: for it (and the outbox counts are as last seen).
    database_away: bool = False

    @property
    def ok(self) -> bool:
        """Every handle polled and every due event delivered (events that failed earlier and
        are not due again yet do not count): `watch --once` exits 0."""
        d = self.delivery
        return (not self.failed and not self.skipped and not self.waiting and d.failed == 0
                and d.held == 0)

    @classmethod
    def merged(cls, parts: list[CycleSummary], *, handles: int) -> CycleSummary:
        """The summaries of watchers over disjoint shards of `handles` handles (a
        WatcherGroup's processes), as one: counts added up, the lowest rate limit left, the
        budget's bucket as last read (they share it)."""
        out = cls(handles)
        for part in parts:
            out.polled |= part.polled
            out.failed.update(part.failed)
            out.health.update(part.health)
            out.waiting |= part.waiting
            for name in ("skipped", "elsewhere", "baselined", "new_follows", "requests",
                         "credits", "pending", "parked"):
                setattr(out, name, getattr(out, name) + getattr(part, name))
            if part.unfollows is not None:
                out.unfollows = (out.unfollows or 0) + part.unfollows
            for result, count in part.polls.items():
                out.polls[result] = out.polls.get(result, 0) + count
            out.delivery.add(part.delivery)
            if part.bucket is not None and (out.bucket is None
                                            or part.bucket.at >= out.bucket.at):
                out.bucket, out.budget = part.bucket, part.budget
            out.budget = out.budget or part.budget
            out.notes += [n for n in part.notes if n not in out.notes]
            out.stopped = out.stopped or part.stopped
            out.database_away = out.database_away or part.database_away
        rates = [p.rate_limit for p in parts
                 if p.rate_limit is not None and p.rate_limit.remaining is not None]
        out.rate_limit = min(rates, key=lambda rate: rate.remaining, default=None)
        return out

    def record_poll(self, outcome: HandlePoll) -> None:
        self.requests += outcome.requests
        self.credits += outcome.pages * CREDITS_PER_REQUEST
        if outcome.result is not None:
            self.polls[outcome.result] = self.polls.get(outcome.result, 0) + 1
        if outcome.waiting:
            if outcome.handle not in self.polled:
                self.waiting.add(outcome.handle)
            return
        self.waiting.discard(outcome.handle)
        if outcome.health is not None:
            self.health[outcome.handle] = outcome.health
        if outcome.skipped:
            self.skipped += 1
        elif outcome.elsewhere:
            self.elsewhere += 1
        elif outcome.error is not None:
            self.polled.discard(outcome.handle)
            self.failed[outcome.handle] = outcome.reason
        else:
            assert outcome.meta is not None
            self.failed.pop(outcome.handle, None)
            self.polled.add(outcome.handle)
            self.new_follows += outcome.meta.get("newFollows", 0)
            if "unfollows" in outcome.meta:
                self.unfollows = (self.unfollows or 0) + outcome.meta["unfollows"]
            self.baselined += int(bool(outcome.meta["baseline"]))

    def record_delivery(self, result: DeliveryPass) -> None:
        self.delivery.add(result)

    def record_backlog(self, backlog: Backlog) -> None:
        self.pending, self.parked = backlog.pending, backlog.parked

    def line(self) -> str:
        """The one-line summary printed on stderr after each cycle."""
        d = self.delivery
        base = f" ({self.baselined} baselined)" if self.baselined else ""
        rate = ""
        if self.rate_limit is not None and self.rate_limit.remaining is not None:
            rate = f", rate limit {self.rate_limit.remaining}/{self.rate_limit.limit} left"
        others = f", {self.elsewhere} by other watchers" if self.elsewhere else ""
        # The rest were not due in this cycle (a running watch polls each once an interval,
        # give or take 10%): said, so that 3/4 with nothing failed does not read as a failure.
        rest = self.handles - len(self.polled) - len(self.failed) - self.skipped - self.elsewhere
        if self.waiting:
            others += f", {len(self.waiting)} waiting for credits"
            rest -= len(self.waiting)
        if rest > 0:
            others += f", {rest} not due"
        budget = f" ({self.budget})" if self.budget else ""
        unfollows = "" if self.unfollows is None else f"{plural(self.unfollows, 'unfollow')}, "
        text = (f"watch: {len(self.polled)}/{plural(self.handles, 'handle')} polled{base}{others}, "
                f"{plural(self.new_follows, 'new follow')}, {unfollows}"
                f"{plural(self.requests, 'request')}, "
                f"{self.credits} credits{budget}{rate}; delivered {d.delivered}, "
                f"pending {self.pending}, parked {self.parked}")
        if d.failed:
            text += f"; {plural(d.failed, 'failed delivery', 'failed deliveries')} ({d.last_error})"
        if d.held:
            text += f"; {d.held} held back (receiver down or stopping)"
        if self.failed:
            names = [f"@{h} ({why})" for h, why in sorted(self.failed.items())]
            more = len(names) - SHOWN_FAILURES
            text += "; failed: " + ", ".join(names[:SHOWN_FAILURES])
            if more > 0:
                text += f" and {more} more (-v lists them)"
        if self.skipped:
            text += f"; {self.skipped} not polled (stopping)"
        for note in self.notes:
            text += f"; {note}"
        if self.database_away:
            text += "; the state database is unreachable: polls and deliveries wait for it"
        if self.stopped:
            text += " [stopped]"
        return text
