"""Scheduling: the adaptive schedule against the fixed one, at equal credits, on a virtual clock.

1,000 handles whose follow rates are log-normal (median one follow a day, spread sigma = 1.6:
taken at the 1,000 quantiles (i + 1/2) / 1,000, so the busiest follows about 190 a day and the
mean is 3.6 a day), each following accounts as a Poisson process for 30 simulated days. Every
poll runs the real trigger (`connector.operations.followed.run`) against a model of each
handle's following list (below, written from the endpoint's contract, apart from the code under
test: newest first, 30 a page, follow times in whole seconds as cursors, `minTime` inclusive).
The schedules are the real ones: `watch.schedule.Schedule` (fixed, today's) and
`watch.adaptive.AdaptiveSchedule`; the budget is the real `core.budget` bucket, reserved and
settled through `watch.spend.Spender` as `watch` will. The loop in `simulate` is what a
watcher does, with polls that take no time.

For each run: credits spent over the 30 days, and the delay from each follow to the poll that
delivered it (median, p90, mean). Fixed runs at several intervals and adaptive runs at several
budgets give two curves of delay against credits; the targets compare them at the fixed
schedule's spend (median delay at most 0.5x) and at its median delay (credits at most 0.4x).
Every run also checks that the budget held over every simulated day and over every stretch of
time, and, after a final drain, that every follow was delivered exactly once.

    python benchmarks/run.py --only scheduling            # the section
    python -m benchmarks.scheduling --plot docs/scheduling.png   # the table, and the plot
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.core.budget import Budget, MemoryBucket
from connector.core.config import CREDITS_PER_REQUEST
from connector.core.http import Page
from connector.operations import followed as trigger
from connector.watch.adaptive import AdaptiveSchedule, Observation
from connector.watch.schedule import Schedule, format_interval
from connector.watch.spend import Spender

from .report import Section, Target, percentile

DAY = 86400.0
HOUR = 3600.0
HANDLES = 1000
DAYS = 30
MEDIAN_PER_DAY = 1.0
SIGMA = 1.6
PAGE = 30
#: Follows each list holds before the run (older than any follow in it).
EXISTING = 100
#: The follow trigger's default page budget (maxPages).
MAX_PAGES = 10
EPOCH = 1_700_000_000
#: watch's default interval: where an adaptive schedule starts each new handle.
DEFAULT_INTERVAL = 900.0
#: After the measured days the run goes on this long, so that follows of the last day are
#: delivered by the schedule (the max interval and its jitter), not by the drain.
TAIL = 1.25 * DAY
SEED = 2026

#: One quiet poll in this many runs the trigger (see World.poll).
QUIET_CHECK = 16
QUIET_META = {"pages": 1, "newFollows": 0, "baseline": False, "catchingUp": False,
              "pendingGaps": 0}
#: Fixed intervals, and adaptive budgets as fractions of the spend of the first fixed one.
FIXED = (2 * HOUR, 6 * HOUR, 24 * HOUR)
ADAPTIVE = (0.08, 0.12, 0.2, 0.35, 0.6, 1.0)
QUICK = {"handles": 60, "days": 3, "fixed": (2 * HOUR, 8 * HOUR), "adaptive": (0.15, 0.4, 1.0)}


def rates_per_day(n: int, sigma: float = SIGMA, median: float = MEDIAN_PER_DAY) -> list[float]:
    """n follow rates (a day) at the quantiles (i + 1/2) / n of a log-normal distribution."""
    normal = statistics.NormalDist()
    return [median * math.exp(sigma * normal.inv_cdf((i + 0.5) / n)) for i in range(n)]


# --------------------------------------------------------------------------- the model


class FollowingList:
    """One handle's following list as the upstream serves it, apart from the code under test:
    accounts newest first, each with its follow time (whole seconds) as the cursor; a page of
    30 from the newest, or from the newest at or before `minTime`; `hasMore` while older ones
    remain. Follows arrive as a Poisson process at `rate` a second."""

    def __init__(self, handle: str, rate: float, rng: random.Random, ids: Callable[[], int],
                 ledger: Ledger) -> None:
        self.handle = handle
        self.rate = rate
        self.rng = rng
        self.ids = ids
        self.ledger = ledger
        self.times: list[int] = []
        self.entries: list[dict[str, Any]] = []
        for k in range(EXISTING):
            self._add(EPOCH - 10 * DAY + k * 600, None)
        self.next_follow = rng.expovariate(rate)

    def _add(self, cursor: int, arrived: float | None) -> None:
        n = self.ids()
        account = str(7_000_000_000_000_000_000 + n)
        self.times.append(int(cursor))
        self.entries.append({"user": {"id": account, "uniqueId": f"acct{n}",
                                      "nickname": f"Account {n}"}, "stats": {}})
        if arrived is not None:
            self.ledger.followed(account, self.handle, arrived)

    def advance(self, now: float) -> None:
        """Every follow up to `now` is on the list."""
        while self.next_follow <= now:
            self._add(EPOCH + math.floor(self.next_follow), self.next_follow)
            self.next_follow += self.rng.expovariate(self.rate)

    def burst(self, n: int, now: float) -> None:
        """`n` follows over the minute before `now` (a tests' extra: a session of follows)."""
        self.advance(now - 60)
        for k in range(n):
            at = now - 60 + 60 * (k + 1) / (n + 1)
            self._add(EPOCH + math.floor(at), at)
        self.advance(now)

    def page(self, min_time: Any) -> Page:
        times = self.times
        top = len(times) if min_time is None else bisect.bisect_right(times, int(min_time))
        low = max(0, top - PAGE)
        if top == 0:
            return Page([], 0, 0, False, len(times))
        return Page(self.entries[top - 1:low - 1 if low else None:-1], times[low],
                    times[top - 1], low > 0, len(times))


class ModelSource:
    """The PageSource the trigger reads: each handle's FollowingList, requests counted."""

    def __init__(self, lists: dict[str, FollowingList]) -> None:
        self.lists = lists
        self.pages = 0

    def fetch_page(self, handle: str, *, min_time: Any = None, count: int | None = None,
                   request_source: str = "API") -> Page:
        self.pages += 1
        return self.lists[handle].page(min_time)


@dataclass
class Ledger:
    """Every follow (when it happened, how often it was delivered, with what delay) and every
    credit spent (when)."""

    arrived: dict[str, tuple[str, float]] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=dict)
    delays: list[float] = field(default_factory=list)
    spends: list[tuple[float, int]] = field(default_factory=list)
    baselined: dict[str, float] = field(default_factory=dict)

    def followed(self, account: str, handle: str, at: float) -> None:
        self.arrived[account] = (handle, at)

    def deliver(self, account: str, now: float, measure_until: float | None) -> None:
        self.delivered[account] = self.delivered.get(account, 0) + 1
        arrived = self.arrived.get(account)
        if arrived is not None and measure_until is not None and arrived[1] < measure_until:
            self.delays.append(now - arrived[1])


# --------------------------------------------------------------------------- a run


@dataclass
class Run:
    """One schedule's run: what it spent and how late its follows were."""

    label: str
    kind: str
    budget: Budget | None
    credits: int = 0
    polls: int = 0
    waited: int = 0
    cut: int = 0
    follows: int = 0
    median: float = math.nan
    p90: float = math.nan
    mean: float = math.nan
    worst_day: float = 0.0  # the most spent in a simulated day, over what the cap allows
    worst_stretch: float = 0.0  # the same over any stretch of time
    once: int = 0
    twice: int = 0
    missed: int = 0
    seconds: float = 0.0

    @property
    def budget_held(self) -> bool:
        return self.worst_day <= 1e-6 and self.worst_stretch <= 1e-6


class World:
    """The handles, their lists, the trigger state of each, and the ledger."""

    def __init__(self, handles: int, seed: int) -> None:
        self.ledger = Ledger()
        counter = iter(range(1, 10**9))
        ids = counter.__next__
        rng = random.Random(seed)
        self.lists = {}
        for i, per_day in enumerate(rates_per_day(handles)):
            handle = f"h{i:04d}"
            self.lists[handle] = FollowingList(handle, per_day / DAY,
                                               random.Random(rng.getrandbits(64)), ids,
                                               self.ledger)
        self.source = ModelSource(self.lists)
        self.states: dict[str, Any] = {}
        #: The list's length when the handle's last poll left nothing unread.
        self.quiet: dict[str, int | None] = {}
        self.quiet_polls = 0

    @property
    def handles(self) -> list[str]:
        return list(self.lists)

    def poll(self, handle: str, pages: int, now: float, measure_until: float | None
             ) -> dict[str, Any]:
        """One poll through the real trigger; returns its meta.

        A poll of a list that has not changed since the handle's last poll, which left nothing
        unread, can only read the first page, find the watermark on it and change nothing: it
        is charged that one request without running the trigger, except every QUIET_CHECK-th,
        which runs it and must come out so (most polls of quiet handles are such; they spent
        half the run time decoding state)."""
        listing = self.lists[handle]
        listing.advance(now)
        length = len(listing.times)
        quiet = self.quiet.get(handle) == length
        if quiet:
            self.quiet_polls += 1
            if self.quiet_polls % QUIET_CHECK:
                self.ledger.spends.append((now, CREDITS_PER_REQUEST))
                self.source.pages += 1
                return QUIET_META
        before = self.source.pages
        state = self.states.get(handle)
        result = trigger.run(self.source, {"handle": handle, "maxPages": pages}, state=state)
        if quiet and (result.items or result.state != state or result.meta["pages"] != 1
                      or result.meta["catchingUp"]):
            raise AssertionError(f"@{handle}: a poll of an unchanged list did more than read "
                                 f"one page: {result.meta}")
        self.states[handle] = result.state
        caught_up = not result.meta["catchingUp"] and not result.meta["pendingGaps"]
        self.quiet[handle] = length if caught_up else None
        if result.meta["baseline"]:
            self.ledger.baselined.setdefault(handle, now)
        for item in result.items:
            self.ledger.deliver(item["id"], now, measure_until)
        spent = (self.source.pages - before) * CREDITS_PER_REQUEST
        if spent:
            self.ledger.spends.append((now, spent))
        return result.meta

    def drain(self, now: float) -> None:
        """Poll every handle until nothing is left unread (outside the measurement)."""
        for handle in self.lists:
            for _ in range(1000):
                meta = self.poll(handle, 200, now, None)
                if not meta["catchingUp"]:
                    break


def simulate(world: World, schedule: Any, spender: Spender, clock: list[float], *,
             adaptive: bool, until: float, measure_until: float) -> int:
    """A watcher's loop on the virtual clock `clock[0]`: poll what is due, as the budget
    allows, until `until`. Returns the number of polls."""
    polls = 0
    while clock[0] < until:
        now = clock[0]
        blocked = False
        for handle in schedule.due(now):
            grant = spender.start([MAX_PAGES])
            if grant is None:
                blocked = True
                break
            meta = world.poll(handle, grant.pages[0], now, measure_until)
            spender.finish(grant, meta["pages"])
            polls += 1
            if adaptive:
                schedule.polled(handle, now, Observation(
                    meta["newFollows"], meta["pages"], baseline=meta["baseline"],
                    catching_up=meta["catchingUp"]))
            else:
                schedule.set(handle, now + schedule.next_in())
        wake = schedule.next_at()
        if blocked:
            wake = now + max(1.0, spender.ready_in([MAX_PAGES]))
        clock[0] = max(wake, now)
    return polls


def run_one(kind: str, *, handles: int, days: int, interval: float = DEFAULT_INTERVAL,
            budget: Budget | None = None, seed: int = SEED) -> Run:
    """One schedule over `days` (and the tail), then the checks."""
    started = time.perf_counter()
    world = World(handles, seed)
    clock = [0.0]
    draw = random.Random(seed + 1).random
    bucket = MemoryBucket(budget, clock=lambda: clock[0]) if budget is not None else None
    if kind == "fixed":
        schedule: Any = Schedule(world.handles, interval, now=0.0, draw=draw)
        label = f"fixed every {format_interval(interval)}"
    else:
        schedule = AdaptiveSchedule(world.handles, interval, now=0.0, bucket=bucket, draw=draw)
        label = f"adaptive, budget {budget}" if budget else "adaptive"
    spender = Spender(bucket)
    measured = days * DAY
    polls = simulate(world, schedule, spender, clock, adaptive=kind == "adaptive",
                     until=measured + TAIL, measure_until=measured)
    run = Run(label, kind, budget, polls=polls, waited=spender.waited, cut=spender.cut)
    ledger = world.ledger
    run.credits = sum(c for t, c in ledger.spends if t < measured)
    delays = ledger.delays
    run.follows = len(delays)
    if delays:
        run.median = statistics.median(delays)
        run.p90 = percentile(delays, 90)
        run.mean = statistics.fmean(delays)
    if budget is not None:
        run.worst_day, run.worst_stretch = overspend(ledger.spends, budget, clock[0])
    world.drain(clock[0])
    for account, (handle, at) in ledger.arrived.items():
        n = ledger.delivered.get(account, 0)
        if at <= ledger.baselined.get(handle, math.inf):
            run.twice += n  # in the list at the baseline: never an event
            continue
        run.once += n == 1
        run.twice += n > 1
        run.missed += n == 0
    run.seconds = time.perf_counter() - started
    return run


def overspend(spends: list[tuple[float, int]], budget: Budget, end: float
              ) -> tuple[float, float]:
    """How far spending went over the cap (<= 0: it held): in the worst simulated day, and in
    the worst stretch of time (any [a, b]: spent - N (b - a) / period - N / 10)."""
    by_day: dict[int, int] = {}
    for at, credits in spends:
        by_day[int(at // DAY)] = by_day.get(int(at // DAY), 0) + credits
    worst_day = max((c - budget.cap(DAY) for c in by_day.values()), default=-budget.capacity)
    # Spent in [t_i, t_j] = S_j - S_(i-1); the worst stretch ends at a spend and starts at one.
    worst = -budget.capacity
    lowest = math.inf  # min over i <= j of S_(i-1) - rate * t_i
    total = 0.0
    for at, credits in spends:
        lowest = min(lowest, total - budget.rate * at)
        total += credits
        worst = max(worst, total - budget.rate * at - lowest - budget.capacity)
    return worst_day, worst


# --------------------------------------------------------------------------- the section


def interpolate(points: list[tuple[float, float]], x: float) -> float:
    """y at x on the log-log line through (x, y) points (extrapolated at the ends)."""
    pts = sorted(points)
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if x <= x1 or (x1, y1) == pts[-1]:
            t = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return math.exp(math.log(y0) + t * (math.log(y1) - math.log(y0)))
    return pts[0][1]


def sweep(*, quick: bool = False, workers: int = 1) -> list[Run]:
    handles = QUICK["handles"] if quick else HANDLES
    days = QUICK["days"] if quick else DAYS
    fixed = QUICK["fixed"] if quick else FIXED
    fractions = QUICK["adaptive"] if quick else ADAPTIVE
    runs = [run_one("fixed", handles=handles, days=days, interval=fixed[0])]
    jobs: list[dict[str, Any]] = [dict(kind="fixed", handles=handles, days=days, interval=t)
                                  for t in fixed[1:]]
    per_day = runs[0].credits / days
    for f in fractions:
        jobs.append(dict(kind="adaptive", handles=handles, days=days,
                         budget=Budget(max(200, round(per_day * f)), "day")))
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            runs += list(pool.map(_run_job, jobs))
    else:
        runs += [_run_job(job) for job in jobs]
    return runs


def _run_job(job: dict[str, Any]) -> Run:
    return run_one(**job)


def _minutes(seconds: float) -> str:
    return format_interval(seconds) if math.isfinite(seconds) else "-"


def run(quick: bool = False) -> Section:
    runs = sweep(quick=quick, workers=2)
    return section(runs, quick=quick)


def section(runs: list[Run], *, quick: bool) -> Section:
    days = QUICK["days"] if quick else DAYS
    handles = QUICK["handles"] if quick else HANDLES
    fixed = [r for r in runs if r.kind == "fixed"]
    adaptive = [r for r in runs if r.kind == "adaptive"]
    rows = []
    for r in runs:
        rows.append([r.label, f"{r.credits:,}", f"{r.polls:,}", _minutes(r.median),
                     _minutes(r.p90), _minutes(r.mean),
                     "-" if r.budget is None else ("yes" if r.budget_held else "NO"),
                     f"{r.once:,}/{r.once + r.twice + r.missed:,}", f"{r.seconds:.0f} s"])
    sec = Section(
        name="scheduling",
        title="Scheduling: adaptive against fixed, at equal credits",
        method=(f"{handles:,} handles with log-normal follow rates (median {MEDIAN_PER_DAY:g} "
                f"a day, sigma {SIGMA}, at the quantiles (i + 1/2)/n: the busiest "
                f"{max(rates_per_day(handles)):.0f} a day, mean "
                f"{statistics.fmean(rates_per_day(handles)):.1f}), {days} simulated days on a "
                f"virtual clock. Every poll runs the real trigger against a model of each "
                f"list (30 a page, newest first); the schedules, the budget bucket and the "
                f"spender are the real ones. Delay: from a follow to the poll that delivered "
                f"it. Adaptive runs have a budget per day, a fraction of the first fixed run's "
                f"spend; min interval 1m, max 1d, new handles at the 15m default."),
        headers=["schedule", f"credits ({days} d)", "polls", "median delay", "p90 delay",
                 "mean delay", "budget held", "delivered once", "run time"],
        rows=rows,
    )
    curve = [(r.credits, r.median) for r in adaptive if r.follows]
    for ref in fixed:
        if len(curve) < 2 or not ref.follows:
            continue
        at_equal = interpolate(curve, ref.credits)
        # Credits for the same median: the adaptive curve read the other way.
        needed = interpolate([(m, c) for c, m in curve], ref.median)
        sec.notes.append(
            f"At the spend of {ref.label} ({ref.credits:,} credits), the adaptive median delay "
            f"is {_minutes(at_equal)} against {_minutes(ref.median)}: "
            f"{at_equal / ref.median:.2f}x; its median delay takes {needed:,.0f} credits "
            f"adaptively: {needed / ref.credits:.2f}x.")
    if fixed and len(curve) >= 2:
        ref = fixed[0] if quick else next((r for r in fixed if r.label.endswith("6h")),
                                          fixed[0])
        at_equal = interpolate(curve, ref.credits)
        needed = interpolate([(m, c) for c, m in curve], ref.median)
        ratio, credits = at_equal / ref.median, needed / ref.credits
        sec.targets.append(Target(
            f"at equal credits, median delay at most 0.5x the fixed schedule's "
            f"(or its median for at most 0.4x the credits), at {ref.label}",
            f"{ratio:.2f}x the median; {credits:.2f}x the credits",
            ratio <= 0.5 or credits <= 0.4))
    budgeted = [r for r in runs if r.budget is not None]
    sec.targets.append(Target(
        "the budget never exceeded: on any simulated day, nor over any stretch of time",
        f"{sum(r.budget_held for r in budgeted)} of {len(budgeted)} budgeted runs held; worst "
        f"day {max((r.worst_day for r in budgeted), default=0):+,.0f} credits against its cap",
        all(r.budget_held for r in budgeted)))
    total = sum(r.once + r.twice + r.missed for r in runs)
    sec.targets.append(Target(
        "every follow delivered exactly once",
        f"{sum(r.once for r in runs):,} of {total:,} follows once; "
        f"{sum(r.twice for r in runs)} twice, {sum(r.missed for r in runs)} never",
        all(r.twice == 0 and r.missed == 0 for r in runs)))
    sec.notes.append(
        "A month is 365.25/12 days; a budget caps any stretch t at N t / period + N / 10, "
        "checked here on every day and on every stretch between two spends.")
    return sec


def plot(runs: list[Run], path: Path) -> None:
    """Median and p90 delay against credits, both schedules (needs the `benchmark` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for kind, colour in (("fixed", "tab:grey"), ("adaptive", "tab:blue")):
        pts = sorted((r.credits, r.median / HOUR, r.p90 / HOUR) for r in runs
                     if r.kind == kind and r.follows)
        xs = [p[0] / 1e6 for p in pts]
        ax.plot(xs, [p[1] for p in pts], "o-", color=colour, label=f"{kind}: median")
        ax.plot(xs, [p[2] for p in pts], "o--", color=colour, alpha=0.6, label=f"{kind}: p90")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"credits over {DAYS} days (millions), {HANDLES:,} handles")
    ax.set_ylabel("delay from follow to delivery (hours)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--plot", type=Path, help="write the delay/credits plot here (PNG)")
    args = parser.parse_args(argv)
    from .report import render_text

    runs = sweep(quick=args.quick, workers=args.workers)
    print(render_text([section(runs, quick=args.quick)]))
    if args.plot:
        plot(runs, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
