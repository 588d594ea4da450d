"""A handle's activity as its polls see it: the rate estimate the adaptive schedule plans by
(adaptive.py), and what `status` shows as follows a day.

The estimate. l_i is the events polls found over the time they covered, both discounted with a
time constant of a week (MEMORY), plus a prior worth a day at one event a day (a new handle
starts at the default interval until its first poll after the baseline). A burst (more events in
one poll than the estimate makes likely, at 1 %) sets the rate to that poll's own at once, until
a poll finds the rate ordinary again. k_i is the requests a poll spent beyond reading its new
follows, a moving average. A poll that could not read every new follow (its page budget ran out)
is followed by one at the minimum interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

DAY = 86400.0
#: The estimate forgets with this time constant: a handle's last week weighs most.
MEMORY = 7 * DAY
#: What a handle is taken to do before anything is known: one event a day...
PRIOR_RATE = 1 / DAY
#: ...worth this much observation.
PRIOR_WEIGHT = DAY
#: A poll that finds this many events or more, when the estimate gave them less than BURST_P
#: chance, starts a burst.
BURST_MIN = 3
BURST_P = 0.01
#: Weight of the newest poll in the moving average of what a poll costs.
COST_WEIGHT = 0.3
#: The page size the upstream serves (about 30 a page).
PAGE_SIZE = 30


@dataclass(frozen=True)
class Observation:
    """What one poll of a handle saw: the events it delivered (follows, plus unfollows when
    watched), the successful requests it made, the new follows it read (None: as many as
    `events`), whether it was a baseline, and whether it left new follows unread."""

    events: int
    pages: int
    follows: int | None = None
    baseline: bool = False
    catching_up: bool = False

    @classmethod
    def from_meta(cls, metas: Iterable[dict[str, Any]]) -> Observation:
        """From the `meta` of a poll's trigger results (one per watched trigger)."""
        events = pages = follows = 0
        baseline = catching_up = False
        for meta in metas:
            events += int(meta.get("newFollows", 0)) + int(meta.get("unfollows", 0))
            follows += int(meta.get("newFollows", meta.get("followsSeen", 0)))
            pages += int(meta.get("pages", 0))
            baseline = baseline or bool(meta.get("baseline"))
            catching_up = catching_up or bool(meta.get("catchingUp"))
        return cls(events, pages, follows, baseline, catching_up)


@dataclass(frozen=True)
class Activity:
    """A handle's activity as its polls have seen it: discounted `events` over discounted
    `exposure` seconds, the time of its last successful poll, a burst's rate (events a second,
    0 when none), the requests a poll costs beyond reading new follows, and the polls seen
    since its baseline."""

    events: float = 0.0
    exposure: float = 0.0
    last: float | None = None
    burst: float = 0.0
    cost: float = 1.0
    polls: int = 0

    def long_rate(self) -> float:
        """Events a second over the last weeks (the prior's weight keeps it above zero)."""
        return (PRIOR_RATE * PRIOR_WEIGHT + self.events) / (PRIOR_WEIGHT + self.exposure)

    def rate(self) -> float:
        """Events a second the schedule plans for: the burst's rate while there is one."""
        return max(self.long_rate(), self.burst)

    @property
    def per_day(self) -> float:
        return self.rate() * DAY

    def observe(self, now: float, seen: Observation) -> Activity:
        """The activity after a successful poll at `now`."""
        if self.last is None or seen.baseline:
            return replace(self, last=now if self.last is None else max(self.last, now))
        span = max(0.0, now - self.last)
        keep = math.exp(-span / MEMORY)
        surprising = (seen.events >= BURST_MIN and span > 0
                      and poisson_tail(seen.events, self.long_rate() * span) < BURST_P)
        follows = seen.events if seen.follows is None else seen.follows
        cost = max(1.0, seen.pages - follows // PAGE_SIZE)
        return Activity(
            events=self.events * keep + seen.events,
            exposure=self.exposure * keep + span,
            last=now,
            burst=seen.events / span if surprising else 0.0,
            cost=self.cost + COST_WEIGHT * (cost - self.cost) if seen.pages else self.cost,
            polls=self.polls + 1,
        )

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "exposure": self.exposure, "last": self.last,
                "burst": self.burst, "cost": self.cost, "polls": self.polls}

    @classmethod
    def from_json(cls, raw: Any) -> Activity:
        """Parse a stored activity; ValueError when it is damaged (start afresh then: a
        schedule's estimate is advice, not state anything depends on)."""
        if not isinstance(raw, dict):
            raise ValueError("an activity must be an object")
        events, exposure, last, burst, cost, polls = map(
            raw.get, ("events", "exposure", "last", "burst", "cost", "polls"))
        if not (_finite(events, exposure, burst, cost) and min(events, exposure, burst) >= 0
                and cost >= 1 and (last is None or _finite(last)) and type(polls) is int
                and polls >= 0):
            raise ValueError("an activity's figures must be finite, non-negative numbers")
        return cls(float(events), float(exposure), None if last is None else float(last),
                   float(burst), float(cost), polls)


def poisson_tail(n: int, mean: float) -> float:
    """P(N >= n) for N Poisson with this mean."""
    if n <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if n <= mean:
        return 1.0 - sum(math.exp(j * math.log(mean) - mean - math.lgamma(j + 1))
                         for j in range(n))
    term = math.exp(n * math.log(mean) - mean - math.lgamma(n + 1))
    total, j = 0.0, n
    while term > 1e-300 and term > total * 1e-12:
        total += term
        j += 1
        term *= mean / j
    return min(1.0, total)


def _finite(*values: Any) -> bool:
    """Whether each of `values` is a finite number (a bool is not)."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               for v in values)
