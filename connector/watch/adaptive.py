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

The estimate of l_i and k_i (a handle's `Activity`) is activity.py's.

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

from ..core.budget import CreditBucket
from ..core.config import CREDITS_PER_REQUEST
from ..core.errors import InputError
from .activity import DAY, PAGE_SIZE, Activity, Observation, poisson_tail  # noqa: F401
from .backoff import Health, Verdict
from .schedule import first_polls, format_interval

DEFAULT_MIN_INTERVAL = 60.0
DEFAULT_MAX_INTERVAL = DAY
#: How often the shared scale c is worked out again (each handle's own interval follows its
#: estimate at every poll).
REPLAN = 1800.0
#: How strongly the bucket's level nudges the spending rate (1: +-50 % from full to empty).
FEEDBACK = 1.0


def scale(demands: Sequence[tuple[float, float]], requests: float, lo: float, hi: float
          ) -> float:
    """c such that the handles, each (rate l, cost k) polled every clamp(sqrt(c k / l), lo,
    hi) seconds, spend `requests` requests a second on their polls. 0 when polling them all
    every `lo` spends less; inf when polling them all every `hi` spends more (the budget is
    short of what the bounds ask)."""
    # Kept as sums of costs (not of cost / lo): a tiny `lo` must not swamp them in rounding.
    low = sum(k for _, k in demands)
    if not demands or requests >= low / lo:
        return 0.0
    if requests <= low / hi:
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
    """A handle's interval under the plan's scale c, within the bounds (`hi` when c is inf)."""
    return min(hi, max(lo, math.sqrt(c * cost / rate)))


class Tracked:
    """What a schedule tracks of each handle: its `Activity` and `Health`, each poll's outcome
    taken in, and what the database keeps put back (`restore`)."""

    def __init__(self, handles: Iterable[str]) -> None:
        self._activity = {h: Activity() for h in handles}
        self._health = {h: Health() for h in handles}

    def activity(self, handle: str) -> Activity:
        return self._activity[handle]

    def health(self, handle: str) -> Health:
        return self._health[handle]

    def restore(self, handle: str, activity: Activity, health: Health | None = None) -> None:
        """Take a handle's activity (and health) as stored, say by the database another
        watcher shares."""
        self._activity[handle] = activity
        self._health[handle] = health if health is not None else Health()

    def _succeeded(self, handle: str, now: float, seen: Observation) -> Verdict:
        """A good poll at `now` (the wall clock's) saw `seen`: its health recovered."""
        self._activity[handle] = self._activity[handle].observe(now, seen)
        verdict = self._health[handle].succeeded()
        self._health[handle] = verdict.health
        return verdict

    def _failed(self, handle: str, error: BaseException, unit: float) -> Verdict:
        """A poll failed: backed off in multiples of `unit` (backoff.py)."""
        verdict = self._health[handle].failed(error, unit)
        self._health[handle] = verdict.health
        return verdict


class AdaptiveSchedule(Tracked):
    """The next poll time of each handle, from its activity, within a shared budget; a watch
    loop drives it as it does `Schedule`. Without a `bucket`, it spends what the fixed schedule
    would at `interval`; with one, what the budget refills (its `portion` of it, when other
    handles share the bucket under other plans: a shard's, in a WatcherGroup)."""

    def __init__(
        self,
        handles: Iterable[str],
        interval: float,
        *,
        now: float,
        bucket: CreditBucket | None = None,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        max_interval: float = DEFAULT_MAX_INTERVAL,
        jitter: float = 0.1,
        replan: float = REPLAN,
        draw: Callable[[], float] = random.random,
        portion: float = 1.0,
    ) -> None:
        check_bounds(interval, min_interval, max_interval)
        self.portion = portion
        self.interval = interval
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.bucket = bucket
        self.jitter = jitter
        self.replan = replan
        self.draw = draw
        handles = list(dict.fromkeys(handles))
        super().__init__(handles)
        #: Handles whose next poll is pinned (baseline, backing off): not planned by rate.
        self._pinned: set[str] = set(handles)
        self._catching_up: dict[str, bool] = {}
        #: The interval a failing handle backs off in multiples of.
        self._unit: dict[str, float] = {}
        self._next = first_polls(handles, interval, now, draw)
        self._heap = sorted((at, h) for h, at in self._next.items())  # sorted: a heap
        self._due: set[str] = set()
        self._scale = 0.0
        #: The interval at which the budget could poll every handle alike.
        self._share = 0.0
        self._planned_at = -math.inf
        self._stale = True
        #: Why the budget cannot pay for what the bounds ask, once; None when it can.
        self.short: str | None = None
        self._said_short = False

    # What a watch loop calls

    def due(self, now: float) -> list[str]:
        """Handles whose time has come, the most worth polling first: baselines, then handles
        with follows left unread, then by expected events waiting per request."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, h = heapq.heappop(heap)
            if self._next.get(h) == at:
                self._due.add(h)
        # Ties in the order of the handles' names, not of a set's hashing: the same inputs
        # plan the same polls in every process.
        return sorted(sorted(self._due), key=lambda h: self._priority(h, now), reverse=True)

    def polled(self, handle: str, now: float, seen: Observation) -> Verdict:
        """Take a successful poll's outcome: the verdict's `delay` (already scheduled) is the
        seconds to the handle's next poll, its `report` (answering again) a line for the log."""
        recovered = self._succeeded(handle, now, seen)
        activity = self._activity[handle]
        self._catching_up[handle] = seen.catching_up
        self._pin(handle, activity.polls == 0)
        if activity.polls == 0:
            # A baseline: the default interval until the handle is observed (or longer, when
            # the budget could not poll every handle that often).
            self._plan(now)
            wait = min(self.max_interval, max(self.interval, self._share))
        else:
            wait = self.min_interval if seen.catching_up else self.interval_of(handle, now)
        # +- `jitter` of it (handles polled together drift apart), within the bounds.
        wait = min(self.max_interval, max(self.min_interval,
                                          wait * (1 + self.jitter * (2 * self.draw() - 1))))
        self.set(handle, now + wait)
        return Verdict(recovered.health, wait, recovered.report)

    def failed(self, handle: str, now: float, error: BaseException) -> Verdict:
        """Take a failed poll: the handle backs off (backoff.py), its next poll scheduled."""
        # The handle's own interval (the default, before it has been observed), as it was at
        # the first failure: its waits go 1, 2, 4 ... of the same unit while it backs off.
        unit = self._unit.get(handle) if self._health[handle].failures else None
        if unit is None:
            unit = self._unit[handle] = (self.interval if self._activity[handle].polls == 0
                                         else self.interval_of(handle, now))
        verdict = self._failed(handle, error, unit)
        if verdict.health.failures:
            self._pin(handle, True)  # backing off: out of the plan until it answers
        self.set(handle, now + verdict.delay)
        return verdict

    def restore(self, handle: str, activity: Activity, health: Health | None = None) -> None:
        """As Tracked.restore: its next interval is planned from it."""
        super().restore(handle, activity, health)
        self._pin(handle, activity.polls == 0 or bool(self._health[handle].failures))
        self._stale = True

    def set(self, handle: str, at: float) -> None:
        """Poll `handle` next at `at` (as its poll, or a watcher sharing the database, decided)."""
        self._due.discard(handle)
        self._next[handle] = at
        heapq.heappush(self._heap, (at, handle))

    def next_at(self) -> float:
        """When a handle is next due (now-ish when some are due and waiting)."""
        heap = self._heap
        while heap and self._next.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return min([heap[0][0] if heap else math.inf, *(self._next[h] for h in self._due)])

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
        """Work the shared scale out again: every `replan` seconds, or once the handles changed."""
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
            reading = sum(a.rate() for a in self._activity.values()) / PAGE_SIZE
            requests = (budget.rate * self.portion / CREDITS_PER_REQUEST * nudge - reading
                        - pinned)
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
        if self._catching_up.get(handle):
            return (1, 0.0)
        return (0, activity.rate() * (now - activity.last) / activity.cost)


def check_bounds(interval: float, min_interval: float | None = None,
                 max_interval: float | None = None) -> tuple[float, float]:
    """The adaptive schedule's bounds: those given, else the defaults, which give way to an
    interval outside them (bounds given do not); the default interval within them, and they
    positive, or an InputError naming the option."""
    lo = min(DEFAULT_MIN_INTERVAL, interval) if min_interval is None else min_interval
    hi = max(DEFAULT_MAX_INTERVAL, interval) if max_interval is None else max_interval
    if not lo > 0:
        raise InputError("min interval must be longer than zero", field="minInterval")
    if not hi >= lo:
        raise InputError(f"max interval ({format_interval(hi)}) must be at least the min "
                         f"interval ({format_interval(lo)})", field="maxInterval")
    if not lo <= interval <= hi:
        raise InputError(f"interval ({format_interval(interval)}) must lie between the min "
                         f"interval ({format_interval(lo)}) and the max interval "
                         f"({format_interval(hi)})", field="interval")
    return lo, hi
