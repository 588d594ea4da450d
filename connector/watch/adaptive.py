"""The adaptive schedule: each handle polled as often as its activity is worth, so that for the
credits available the delay from a follow to its delivery is as small as it can be.

The rule. Handle i has events (follows, and unfollows when those are watched) arriving at a
rate l_i. Polled every T_i, an event waits T_i / 2 for its poll on average. Besides the
requests that read its new events (ceil((n + 1) / p) requests read n new follows: about n / p
of them are paid per follow, whenever it is read), a poll costs k_i requests: one, for the
follow trigger. With R requests a second to spend on polls, the mean delay over all events

    D = sum(l_i T_i) / (2 sum(l_i))    under    sum(k_i / T_i) = R

is least (Lagrange: l_i / 2 = mu k_i / T_i^2) at

    T_i = sqrt(c k_i / l_i),    c = (sum(sqrt(l_i k_i)) / R)^2,

each handle polled at a rate proportional to the square root of its activity over its cost.
One interval for all, at the same R, is worse by sum(l) sum(k) / sum(sqrt(l k))^2 >= 1
(Cauchy-Schwarz: equal only when all handles are alike); with k = 1 and log-normal rates of
spread sigma, by exp(sigma^2 / 4): 1.9x at sigma = 1.6. The `--min-interval` and
`--max-interval` bounds clamp T_i, and `scale` finds c with them in place.

The estimate. l_i is the events polls found over the time they covered, both discounted with a
time constant of a week (MEMORY), plus a prior worth a day at one event a day (a new handle
starts at the default interval until its first poll after the baseline). A burst (more events in
one poll than the estimate makes likely, at 1 %) sets the rate to that poll's own at once, until
a poll finds the rate ordinary again. k_i is the requests a poll spent beyond reading its new
follows, a moving average. A poll that could not read every new follow (its page budget ran out)
is followed by one at the minimum interval.

With a budget, R is what the budget refills less what reading the follows costs, nudged up when
the bucket is fuller than half and down when it is emptier, so the schedule spends the budget
and the bucket only catches what the estimates get wrong. Without one, R is what the fixed
schedule would spend at the default interval: the same credits, spent where the follows are.

Everything here is pure or clock-injected. `Activity` and `Health` are plain values that a
database can keep per handle (`to_json`); `AdaptiveSchedule` keeps them in memory.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..core.budget import CreditBucket
from ..core.config import CREDITS_PER_REQUEST
from ..core.errors import InputError
from .backoff import Health, Verdict
from .schedule import FIRST_SPREAD, format_interval

DAY = 86400.0
DEFAULT_MIN_INTERVAL = 60.0
DEFAULT_MAX_INTERVAL = DAY
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
#: How often the shared scale c is worked out again (each handle's own interval follows its
#: estimate at every poll).
REPLAN = 1800.0
#: How strongly the bucket's level nudges the spending rate (1: +-50 % from full to empty).
FEEDBACK = 1.0


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

    def long_rate(self, prior: float = PRIOR_RATE, weight: float = PRIOR_WEIGHT) -> float:
        """Events a second over the last weeks (the prior's weight keeps it above zero)."""
        return (prior * weight + self.events) / (weight + self.exposure)

    def rate(self, prior: float = PRIOR_RATE, weight: float = PRIOR_WEIGHT) -> float:
        """Events a second the schedule plans for: the burst's rate while there is one."""
        return max(self.long_rate(prior, weight), self.burst)

    @property
    def per_day(self) -> float:
        return self.rate() * DAY

    def observe(self, now: float, seen: Observation, *, page_size: int = PAGE_SIZE,
                memory: float = MEMORY) -> Activity:
        """The activity after a successful poll at `now`."""
        if self.last is None or seen.baseline:
            return replace(self, last=now if self.last is None else max(self.last, now))
        span = max(0.0, now - self.last)
        keep = math.exp(-span / memory)
        expected = self.long_rate() * span
        surprising = (seen.events >= BURST_MIN and span > 0
                      and poisson_tail(seen.events, expected) < BURST_P)
        follows = seen.events if seen.follows is None else seen.follows
        cost = max(1.0, seen.pages - follows // page_size)
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
        numbers = [raw.get(k) for k in ("events", "exposure", "burst", "cost")]
        last, polls = raw.get("last"), raw.get("polls")
        if not all(_finite(n) and n >= 0 for n in numbers) or numbers[3] < 1 or not (
            last is None or _finite(last)) or type(polls) is not int or polls < 0:
            raise ValueError("an activity's figures must be finite, non-negative numbers")
        events, exposure, burst, cost = (float(n) for n in numbers)
        return cls(events, exposure, None if last is None else float(last), burst, cost, polls)


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


def scale(demands: Sequence[tuple[float, float]], requests: float, lo: float, hi: float
          ) -> float:
    """c such that the handles, each (rate l, cost k) polled every clamp(sqrt(c k / l), lo,
    hi) seconds, spend `requests` requests a second on their polls. 0 when polling them all
    every `lo` spends less; inf when polling them all every `hi` spends more (the budget is
    short of what the bounds ask)."""
    if not demands or requests >= sum(k for _, k in demands) / lo:
        return 0.0
    if requests <= sum(k for _, k in demands) / hi:
        return math.inf
    # With s = sqrt(c), handle i costs k/lo until s reaches lo/a (a = sqrt(k/l)), then
    # sqrt(l k)/s until s reaches hi/a, then k/hi: a continuous, falling sum. Sweep the
    # breakpoints to the segment where it meets `requests`, and solve there.
    points = []
    for rate, cost in demands:
        a = math.sqrt(cost / rate)
        w = math.sqrt(rate * cost)
        points.append((lo / a, 0, cost, w))
        points.append((hi / a, 1, cost, w))
    points.sort(key=lambda p: (p[0], p[1]))
    # Kept as sums of costs (not of cost / lo): a tiny `lo` must not swamp them in rounding.
    low = sum(k for _, k in demands)
    high = weight = 0.0
    before = 0.0
    for s, kind, cost, w in points:
        if low / lo + high / hi + weight / s <= requests:
            break  # it meets `requests` on (before, s], where it is fixed + weight / s
        if kind == 0:
            low -= cost
            weight += w
        else:
            weight -= w
            high += cost
        before = s
    else:
        return math.inf  # only rounding gets here: the sum at `hi` was checked above
    root = before
    for _ in range(3):
        # Solve on the segment, then again with the clamps worked out afresh at the root, so
        # that rounding in the running sums does not stay in the answer.
        fixed = low / lo + high / hi
        if weight <= 0 or requests <= fixed:
            return root * root
        root = weight / (requests - fixed)
        low = high = weight = 0.0
        for rate, cost in demands:
            t = math.sqrt(cost / rate) * root
            if t <= lo:
                low += cost
            elif t >= hi:
                high += cost
            else:
                weight += math.sqrt(rate * cost)
    return root * root


def interval_for(rate: float, cost: float, c: float, lo: float, hi: float) -> float:
    """A handle's interval under the plan's scale c, within the bounds."""
    if c == math.inf:
        return hi
    return min(hi, max(lo, math.sqrt(c * cost / rate)))


class AdaptiveSchedule:
    """The next poll time of each handle, from its activity, within a shared budget.

    Works as `Schedule` does for a watch loop: `due(now)` lists the handles to poll (the most
    worth it first), `polled` and `failed` take each outcome and schedule the next poll, `set`
    takes a time another watcher decided, `next_at` says when to look again. Without a
    `bucket`, it spends what the fixed schedule would at `interval`; with one, what the budget
    refills.
    """

    def __init__(
        self,
        handles: Iterable[str],
        interval: float,
        *,
        now: float,
        bucket: CreditBucket | None = None,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        max_interval: float = DEFAULT_MAX_INTERVAL,
        page_size: int = PAGE_SIZE,
        jitter: float = 0.1,
        first_spread: float = FIRST_SPREAD,
        replan: float = REPLAN,
        draw: Callable[[], float] = random.random,
    ) -> None:
        check_bounds(interval, min_interval, max_interval)
        self.interval = interval
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.bucket = bucket
        self.page_size = page_size
        self.jitter = jitter
        self.replan = replan
        self.draw = draw
        handles = list(dict.fromkeys(handles))
        self._activity = {h: Activity() for h in handles}
        self._health = {h: Health() for h in handles}
        #: Handles whose next poll is pinned (baseline, backing off): not planned by rate.
        self._pinned: set[str] = set(handles)
        self._catching_up: set[str] = set()
        #: The interval a failing handle backs off in multiples of.
        self._unit: dict[str, float] = {}
        self._next: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._due: set[str] = set()
        self._scale = 0.0
        #: The interval at which the budget could poll every handle alike.
        self._share = 0.0
        self._planned_at = -math.inf
        self._stale = True
        #: Why the budget cannot pay for what the bounds ask, once; None when it can.
        self.short: str | None = None
        self._said_short = False
        spread = min(interval, first_spread, float(len(handles)))
        for h in handles:
            self._put(h, now + draw() * spread)

    # What a watch loop calls

    def due(self, now: float) -> list[str]:
        """Handles whose time has come, the most worth polling first: baselines, then handles
        with follows left unread, then by expected events waiting per request."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, h = heapq.heappop(heap)
            if self._next.get(h) == at:
                self._due.add(h)
        return sorted(self._due, key=lambda h: self._priority(h, now), reverse=True)

    def polled(self, handle: str, now: float, seen: Observation) -> Verdict:
        """Take a successful poll's outcome. The verdict's `delay` is the seconds until the
        handle's next poll (already scheduled); its `report`, if any, is for the log (a
        handle that answers again)."""
        self._activity[handle] = activity = self._activity[handle].observe(
            now, seen, page_size=self.page_size)
        recovered = self._health[handle].succeeded()
        self._health[handle] = recovered.health
        if seen.catching_up:
            self._catching_up.add(handle)
        else:
            self._catching_up.discard(handle)
        if activity.polls == 0:
            # A baseline: the default interval until the handle is observed (or longer, when
            # the budget could not poll every handle that often).
            self._pin(handle, True)
            self._plan(now)
            wait = min(self.max_interval, max(self.interval, self._share))
        else:
            self._pin(handle, False)
            wait = self.min_interval if seen.catching_up else self.interval_of(handle, now)
        wait = self._schedule(handle, now, self._jittered(wait))
        return Verdict(recovered.health, wait, recovered.report)

    def failed(self, handle: str, now: float, error: BaseException) -> Verdict:
        """Take a failed poll: the handle backs off (backoff.py). The verdict's `report`, if
        any, is for the log; its `delay` is already scheduled."""
        # The handle's own interval (the default, before it has been observed), as it was at
        # the first failure: its waits go 1, 2, 4 ... of the same unit while it backs off.
        unit = self._unit.get(handle) if self._health[handle].failures else None
        if unit is None:
            unit = self._unit[handle] = (self.interval if self._activity[handle].polls == 0
                                         else self.interval_of(handle, now))
        verdict = self._health[handle].failed(error, unit)
        self._health[handle] = verdict.health
        if verdict.health.failures and verdict.delay is not None:
            self._pin(handle, True)  # backing off: out of the plan until it answers
        delay = verdict.delay if verdict.delay is not None else unit
        self._schedule(handle, now, delay)
        return verdict

    def restore(self, handle: str, activity: Activity, health: Health | None = None) -> None:
        """Take a handle's activity (and health) as stored, say by the database another
        watcher shares: its next interval is planned from it."""
        self._activity[handle] = activity
        self._health[handle] = health if health is not None else Health()
        self._pin(handle, activity.polls == 0 or bool(self._health[handle].failures))
        self._stale = True

    def set(self, handle: str, at: float) -> None:
        """Poll `handle` next at `at` (another watcher sharing the database decided it)."""
        self._due.discard(handle)
        self._put(handle, at)

    def next_at(self) -> float:
        """When a handle is next due (now-ish when some are due and waiting)."""
        heap = self._heap
        while heap and self._next.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        soonest = heap[0][0] if heap else math.inf
        if self._due:
            soonest = min(soonest, min(self._next[h] for h in self._due))
        return soonest

    # What a status view reads

    def activity(self, handle: str) -> Activity:
        return self._activity[handle]

    def health(self, handle: str) -> Health:
        return self._health[handle]

    def interval_of(self, handle: str, now: float) -> float:
        """The handle's planned interval (before jitter) at `now`."""
        self._plan(now)
        activity = self._activity[handle]
        return interval_for(activity.rate(), activity.cost, self._scale, self.min_interval,
                            self.max_interval)

    # Planning

    def _pin(self, handle: str, pinned: bool) -> None:
        """Take a handle out of the plan (its next poll is set otherwise), or into it."""
        if pinned != (handle in self._pinned):
            self._stale = True  # the handles planned changed: the scale with them
            (self._pinned.add if pinned else self._pinned.discard)(handle)

    def _plan(self, now: float) -> None:
        """Work the shared scale out again, every `replan` seconds, and when the handles it
        plans for changed."""
        if not self._stale and now - self._planned_at < self.replan:
            return
        self._planned_at = now
        self._stale = False
        free = [(a.rate(), a.cost) for h, a in self._activity.items() if h not in self._pinned]
        pinned = sum(self._activity[h].cost / self.interval for h in self._pinned
                     if not self._health[h].failures)
        if self.bucket is None:
            requests = sum(k for _, k in free) / self.interval
        else:
            budget = self.bucket.budget
            fill = max(0.0, self.bucket.view().level) / budget.capacity
            nudge = min(1.5, max(0.5, 1 + FEEDBACK * (fill - 0.5)))
            reading = sum(a.rate() for a in self._activity.values()) / self.page_size
            requests = budget.rate / CREDITS_PER_REQUEST * nudge - reading - pinned
            everyone = (requests + pinned) / len(self._activity)
            self._share = math.inf if everyone <= 0 else 1 / everyone
        self._scale = scale(free, max(requests, 0.0), self.min_interval, self.max_interval)
        if self._scale == math.inf and free:
            self.short = (f"the budget pays for fewer polls than {len(free)} handles at "
                          f"--max-interval {format_interval(self.max_interval)} need: polls "
                          f"wait for credits, the most active handles first")
        else:
            self.short, self._said_short = None, False

    def take_short(self) -> str | None:
        """The budget-short message, the first time only (until the budget suffices again)."""
        if self.short is None or self._said_short:
            return None
        self._said_short = True
        return self.short

    def _priority(self, handle: str, now: float) -> tuple[int, float]:
        activity = self._activity[handle]
        if activity.last is None:
            return (2, 0.0)
        if handle in self._catching_up:
            return (1, 0.0)
        return (0, activity.rate() * (now - activity.last) / activity.cost)

    def _jittered(self, wait: float) -> float:
        """`wait` +- `jitter` of it (handles polled together drift apart), within the bounds."""
        return min(self.max_interval, max(self.min_interval,
                                          wait * (1 + self.jitter * (2 * self.draw() - 1))))

    def _schedule(self, handle: str, now: float, wait: float) -> float:
        self._due.discard(handle)
        self._put(handle, now + wait)
        return wait

    def _put(self, handle: str, at: float) -> None:
        self._next[handle] = at
        heapq.heappush(self._heap, (at, handle))


def check_bounds(interval: float, min_interval: float, max_interval: float) -> None:
    """The default interval within positive bounds, or an InputError naming the option."""
    if not min_interval > 0:
        raise InputError("min interval must be longer than zero", field="minInterval")
    if not max_interval >= min_interval:
        raise InputError(f"max interval ({format_interval(max_interval)}) must be at least "
                         f"the min interval ({format_interval(min_interval)})",
                         field="maxInterval")
    if not min_interval <= interval <= max_interval:
        raise InputError(f"interval ({format_interval(interval)}) must lie between the min "
                         f"interval ({format_interval(min_interval)}) and the max interval "
                         f"({format_interval(max_interval)})", field="interval")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)
