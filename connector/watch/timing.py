"""When a watcher polls each handle next: on the fixed schedule (every interval, jittered:
schedule.py) or the adaptive one (adaptive.py), and under either the back-off of a handle
whose list is hidden or that keeps failing (backoff.py). A handle that answers is polled
exactly as the schedule has it: the back-off changes nothing for it.

What is known of each handle (its `Activity` and `Health`) goes to the database with its
poll's commit, and comes back from it when a watcher claims the handle (`restore`), so that
workers sharing a database plan alike and a restart keeps what was learnt. A damaged stored
value starts that handle afresh: it is advice, not state anything depends on.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.budget import CreditBucket
from ..core.errors import InputError
from ..storage import compact_json
from .activity import Activity, Observation
from .adaptive import AdaptiveSchedule, Tracked, check_bounds
from .backoff import Health, Verdict
from .schedule import Schedule

FIXED = "fixed"
ADAPTIVE = "adaptive"
SCHEDULES = (FIXED, ADAPTIVE)


@dataclass(frozen=True)
class Next:
    """What a poll's outcome means for its handle: the seconds until its next poll, a line
    for the log (once, when its health changes), and what is kept of it."""

    delay: float
    report: str | None
    activity: Activity
    health: Health

    def kept(self, facts: dict[str, Any] | None = None) -> tuple[str, str]:
        """The activity and health (with `facts` of the list, for `status`) as JSON text, for
        the database."""
        return (compact_json(self.activity.to_json()),
                compact_json({**self.health.to_json(), **(facts or {})}))


def schedule_kind(schedule: str | None, budget: object) -> str:
    """The schedule asked for, or the default: adaptive with a budget, fixed without."""
    if schedule is None:
        return ADAPTIVE if budget is not None else FIXED
    if schedule not in SCHEDULES:
        raise InputError(f"schedule {schedule!r}: give fixed or adaptive", field="schedule")
    return schedule


class Fixed(Tracked, Schedule):
    """The fixed schedule, knowing each handle as the adaptive one does. Its times are the
    monotonic clock's, so a verdict leaves the next poll to the watch loop (`Timing.set`)."""

    def __init__(self, handles: Sequence[str], interval: float, *, now: float,
                 jitter: float) -> None:
        Schedule.__init__(self, handles, interval, now=now, jitter=jitter)
        Tracked.__init__(self, handles)

    def polled(self, handle: str, now: float, seen: Observation) -> Verdict:
        verdict = self._succeeded(handle, now, seen)
        return Verdict(verdict.health, self.next_in(), verdict.report)

    def failed(self, handle: str, now: float, error: BaseException) -> Verdict:
        verdict = self._failed(handle, error, self.interval)
        # 1, 2, 4 ... intervals, each jittered as the interval is (the first, as today).
        return Verdict(verdict.health, verdict.delay * (self.next_in() / self.interval),
                       verdict.report)


class Timing:
    """The next poll time of each handle, and what is known of it; safe between threads."""

    def __init__(self, handles: Sequence[str], interval: float, *, schedule: str = FIXED,
                 bucket: CreditBucket | None = None, share: float = 1.0,
                 min_interval: float | None = None, max_interval: float | None = None,
                 jitter: float = 0.1) -> None:
        self.interval = interval
        lo, hi = check_bounds(interval, min_interval, max_interval)
        self._lock = threading.Lock()
        self._written: dict[str, tuple[str, str]] = {}
        self.adaptive: AdaptiveSchedule | None = None
        if schedule == ADAPTIVE:
            # Its times are stored (activity), so they are the wall clock's.
            self.clock = time.time
            self.adaptive = AdaptiveSchedule(handles, interval, now=self.clock(), bucket=bucket,
                                             min_interval=lo, max_interval=hi, jitter=jitter,
                                             portion=share)
            self.schedule: Fixed | AdaptiveSchedule = self.adaptive
        else:
            self.clock = time.monotonic
            self.schedule = Fixed(handles, interval, now=self.clock(), jitter=jitter)

    # What the watch loop asks

    def due(self) -> list[str]:
        with self._lock:
            return self.schedule.due(self.clock())

    def set(self, handle: str, delay: float) -> None:
        """Poll `handle` next in `delay` seconds (the database, or a poll, decided it)."""
        with self._lock:
            self.schedule.set(handle, self.clock() + delay)

    def wake_in(self) -> float:
        """Seconds until a handle is next due."""
        with self._lock:
            return self.schedule.next_at() - self.clock()

    def fallback(self) -> float:
        """The seconds until the next poll of a handle whose poll did not say (stopped, or
        dropped for another watcher's)."""
        if self.adaptive is None:
            return self.schedule.next_in()
        return self.interval

    # What each poll tells

    def wrote(self, handle: str, activity: str, health: str) -> None:
        """What this watcher's poll of `handle` stored (a claim that finds it unchanged need
        not parse it again)."""
        self._written[handle] = (activity, health)

    def restore(self, handle: str, activity: str | None, health: str | None) -> None:
        """Take what the database keeps of `handle` (another watcher may have polled it)."""
        if (activity is None and health is None) or self._written.get(handle) == (activity,
                                                                                  health):
            return
        with self._lock:
            old = self.schedule.activity(handle), self.schedule.health(handle)
            new = parse_kept(Activity, activity, old[0]), parse_kept(Health, health, old[1])
            if new != old:
                self.schedule.restore(handle, *new)

    def polled(self, handle: str, metas: Iterable[dict[str, Any]]) -> Next:
        """A poll of `handle` succeeded with these trigger metas: when it is polled next."""
        seen = Observation.from_meta(metas)
        with self._lock:
            return self._next(handle, self.schedule.polled(handle, time.time(), seen))

    def failed(self, handle: str, error: BaseException) -> Next:
        """A poll of `handle` failed: when it is asked again (backed off, if its list is
        hidden or it keeps failing)."""
        with self._lock:
            return self._next(handle, self.schedule.failed(handle, time.time(), error))

    def _next(self, handle: str, verdict: Verdict) -> Next:
        return Next(verdict.delay, verdict.report, self.schedule.activity(handle),
                    verdict.health)

    def take_short(self) -> str | None:
        """That the budget cannot pay for what the bounds ask, once."""
        if self.adaptive is None:
            return None
        with self._lock:
            return self.adaptive.take_short()


def parse_kept(kind: Any, text: str | None, otherwise: Any) -> Any:
    """A stored Activity or Health; `otherwise` when there is none, a fresh one when it is
    damaged."""
    if text is None:
        return otherwise
    try:
        return kind.from_json(json.loads(text))
    except (ValueError, TypeError, RecursionError):
        return kind()
