"""The adaptive schedule (watch/adaptive.py): the square-root plan, the activity estimate, and
the schedule a watch loop drives, all on an injected clock."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.budget import Budget, MemoryBucket
from connector.core.errors import InputError, NotFoundError
from connector.watch.adaptive import (
    DAY,
    Activity,
    AdaptiveSchedule,
    Observation,
    interval_for,
    poisson_tail,
    scale,
)

HOUR = 3600.0
MID = lambda: 0.5  # noqa: E731  (no jitter: the draw that lands in the middle)


def _spend(demands, c, lo, hi):
    return sum(k / interval_for(r, k, c, lo, hi) for r, k in demands)


def _mean_delay(demands, intervals):
    return sum(r * t / 2 for (r, _), t in zip(demands, intervals, strict=True)) / sum(
        r for r, _ in demands)


# The plan


def test_without_bounds_each_handle_is_polled_at_the_square_root_of_its_activity():
    demands = [(1 / DAY, 1.0), (4 / DAY, 1.0), (100 / DAY, 1.0)]
    requests = 30 / DAY  # thirty polls a day between them
    c = scale(demands, requests, 1e-9, 1e12)
    intervals = [interval_for(r, k, c, 1e-9, 1e12) for r, k in demands]
    # Closed form: c = (sum sqrt(r k) / R)^2.
    assert c == pytest.approx((sum(math.sqrt(r * k) for r, k in demands) / requests) ** 2)
    assert intervals[0] / intervals[1] == pytest.approx(2.0)
    assert intervals[0] / intervals[2] == pytest.approx(10.0)
    assert _spend(demands, c, 1e-9, 1e12) == pytest.approx(requests)


def test_a_poll_that_costs_more_is_made_less_often_by_the_square_root_of_its_cost():
    demands = [(10 / DAY, 1.0), (10 / DAY, 4.0)]
    c = scale(demands, 20 / DAY, 1.0, 1e9)
    assert interval_for(*demands[1], c, 1.0, 1e9) == pytest.approx(
        2 * interval_for(*demands[0], c, 1.0, 1e9))


@settings(max_examples=200, deadline=None)
@given(rates=st.lists(st.floats(0.001, 500), min_size=1, max_size=40),
       costs=st.data(), polls_a_day=st.floats(0.5, 20_000))
def test_the_plan_spends_what_it_is_given_within_the_bounds(rates, costs, polls_a_day):
    demands = [(r / DAY, costs.draw(st.floats(1, 5))) for r in rates]
    lo, hi = 60.0, DAY
    requests = polls_a_day / DAY
    c = scale(demands, requests, lo, hi)
    spent = _spend(demands, c, lo, hi)
    everyone_lo = sum(k for _, k in demands) / lo
    everyone_hi = sum(k for _, k in demands) / hi
    if requests >= everyone_lo:
        assert c == 0.0 and spent == pytest.approx(everyone_lo)
    elif requests <= everyone_hi:
        assert c == math.inf and spent == pytest.approx(everyone_hi)
    else:
        assert spent == pytest.approx(requests, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(rates=st.lists(st.floats(0.01, 200), min_size=2, max_size=12), seed=st.integers(0, 99))
def test_no_other_intervals_of_the_same_cost_deliver_sooner_on_average(rates, seed):
    """The rule's claim: for the requests spent, the square-root plan's mean delay is least."""
    demands = [(r / DAY, 1.0) for r in rates]
    requests = 5 * len(rates) / DAY
    c = scale(demands, requests, 1e-9, 1e12)
    best = _mean_delay(demands, [interval_for(r, k, c, 1e-9, 1e12) for r, k in demands])
    rng = random.Random(seed)
    for _ in range(20):
        # Any other intervals, scaled to spend the same.
        other = [rng.uniform(0.1, 10) for _ in demands]
        factor = sum(1 / t for t in other) / requests
        other = [t * factor for t in other]
        assert _mean_delay(demands, other) >= best * (1 - 1e-9)
    fixed = len(demands) / requests
    assert _mean_delay(demands, [fixed] * len(demands)) >= best * (1 - 1e-9)


# The estimate


def test_a_steady_handle_s_estimate_converges_on_its_rate():
    activity = Activity().observe(0.0, Observation(0, 1, baseline=True))
    rng = random.Random(7)
    now, rate = 0.0, 20 / DAY
    for _ in range(400):
        span = 3 * HOUR
        now += span
        found = sum(1 for _ in range(1000) if rng.random() < rate * span / 1000)
        activity = activity.observe(now, Observation(found, 1))
    assert activity.per_day == pytest.approx(20, rel=0.3)
    assert activity.polls == 400


def test_a_new_handle_is_taken_to_follow_about_one_account_a_day():
    assert Activity().per_day == pytest.approx(1.0)
    assert Activity().observe(5.0, Observation(0, 1, baseline=True)).last == 5.0


def test_a_burst_raises_the_rate_at_once_and_a_quiet_poll_ends_it():
    quiet = Activity(events=7, exposure=7 * DAY, last=0.0, polls=50)  # one a day
    burst = quiet.observe(HOUR, Observation(12, 1))
    assert burst.per_day == pytest.approx(12 * 24)
    assert burst.long_rate() * DAY < 3  # the week's estimate moves only a little
    after = burst.observe(2 * HOUR, Observation(0, 1))
    assert after.burst == 0.0
    assert after.per_day == pytest.approx(after.long_rate() * DAY)
    # Two follows in an hour for a handle of one a day are not a burst: too few to tell.
    assert quiet.observe(HOUR, Observation(2, 1)).burst == 0.0


def test_the_cost_of_a_poll_leaves_out_the_pages_that_read_new_follows():
    activity = Activity(last=0.0)
    # 65 new follows: 3 pages, all of them reading follows.
    assert activity.observe(60.0, Observation(65, 3)).cost == 1.0
    # An unfollow trigger's read of the list: 12 pages for 1 unfollow and no new follow.
    costly = activity.observe(60.0, Observation(1, 13, follows=0))
    assert costly.cost == pytest.approx(1 + 0.3 * 12)


def test_unfollows_count_as_events_when_both_triggers_are_watched():
    seen = Observation.from_meta([
        {"newFollows": 3, "pages": 1, "baseline": False, "catchingUp": False},
        {"unfollows": 2, "followsSeen": 3, "pages": 4, "baseline": False, "catchingUp": True},
    ])
    assert seen == Observation(events=5, pages=5, follows=6, baseline=False, catching_up=True)


def test_an_activity_survives_a_round_trip_and_damage_is_refused():
    activity = Activity(3.5, 86400.0, 1.7e9, 0.01, 1.3, 12)
    assert Activity.from_json(activity.to_json()) == activity
    for bad in (None, [], {**activity.to_json(), "events": -1},
                {**activity.to_json(), "cost": 0.5}, {**activity.to_json(), "polls": 1.5},
                {**activity.to_json(), "last": "yesterday"},
                {**activity.to_json(), "burst": math.nan}):
        with pytest.raises(ValueError):
            Activity.from_json(bad)


def test_poisson_tail():
    assert poisson_tail(0, 3.0) == 1.0
    assert poisson_tail(1, 2.0) == pytest.approx(1 - math.exp(-2))
    assert poisson_tail(3, 0.25) == pytest.approx(
        1 - math.exp(-0.25) * (1 + 0.25 + 0.25**2 / 2))
    assert poisson_tail(5, 0.0) == 0.0


# The schedule


def _baselined(schedule, handles, now=0.0):
    for h in handles:
        schedule.polled(h, now, Observation(0, 1, baseline=True))


def test_a_new_handle_starts_at_the_default_interval():
    schedule = AdaptiveSchedule(["a", "b"], 900.0, now=0.0, draw=MID)
    assert schedule.due(0.0) == []
    assert sorted(schedule.due(2.0)) == ["a", "b"]  # the first polls spread over 2 s
    verdict = schedule.polled("a", 2.0, Observation(0, 1, baseline=True))
    assert verdict.delay == 900.0
    assert schedule.next_at() == 1.0  # b is due, not polled yet


def test_busy_handles_are_polled_more_often_for_the_same_polls_as_the_fixed_interval():
    handles = ["quiet", "busy"]
    schedule = AdaptiveSchedule(handles, HOUR, now=0.0, draw=MID, max_interval=10 * DAY)
    # A week of observation: one a day against a hundred a day.
    schedule.restore("quiet", Activity(7, 7 * DAY, 0.0, polls=100))
    schedule.restore("busy", Activity(700, 7 * DAY, 0.0, polls=100))
    quiet = schedule.polled("quiet", 10.0, Observation(0, 1)).delay
    busy = schedule.polled("busy", 10.0, Observation(0, 1)).delay
    # About 1 and 88 a day, with the prior's day at one a day: sqrt(88) between them.
    rates = schedule.activity("quiet").rate(), schedule.activity("busy").rate()
    assert quiet / busy == pytest.approx(math.sqrt(rates[1] / rates[0]), rel=0.01)
    assert quiet / busy > 9
    # Between them, as many polls as the fixed schedule's every hour.
    assert 1 / quiet + 1 / busy == pytest.approx(2 / HOUR, rel=0.05)


def test_a_burst_shortens_the_next_interval_at_once():
    handles = [f"h{i}" for i in range(20)]
    schedule = AdaptiveSchedule(handles, HOUR, now=0.0, draw=MID)
    for h in handles:
        schedule.restore(h, Activity(7, 7 * DAY, 0.0, polls=50))  # one a day each
    ordinary = schedule.polled("h0", HOUR, Observation(0, 1)).delay
    burst = schedule.polled("h0", 2 * HOUR, Observation(25, 1)).delay
    assert burst < ordinary / 5
    # And the next quiet poll takes it back.
    calm = schedule.polled("h0", 2 * HOUR + burst, Observation(0, 1)).delay
    assert calm > 4 * burst


def test_a_poll_that_left_follows_unread_is_followed_at_the_minimum_interval():
    schedule = AdaptiveSchedule(["a"], HOUR, now=0.0, draw=MID, min_interval=1.0)
    _baselined(schedule, ["a"])
    assert schedule.polled("a", HOUR, Observation(300, 10, catching_up=True)).delay == 1.0
    assert schedule.due(HOUR + 1.0) == ["a"]


def test_due_handles_come_baseline_first_then_catching_up_then_by_expected_follows():
    handles = ["new", "behind", "busy", "quiet"]
    schedule = AdaptiveSchedule(handles, HOUR, now=0.0, draw=MID)
    _baselined(schedule, ["behind"])
    schedule.polled("behind", 10.0, Observation(300, 10, catching_up=True))
    schedule.restore("busy", Activity(70, 7 * DAY, 0.0, polls=9))
    schedule.restore("quiet", Activity(1, 7 * DAY, 0.0, polls=9))
    assert schedule.due(10 * DAY) == ["new", "behind", "busy", "quiet"]


def test_a_list_that_answers_404_backs_off_and_is_reported_once():
    schedule = AdaptiveSchedule(["gone"], HOUR, now=0.0, draw=MID)
    _baselined(schedule, ["gone"])
    missing = NotFoundError("Following list not found for user: gone", status=404)
    waits, reports = [], []
    now = 0.0
    for _ in range(8):
        verdict = schedule.failed("gone", now, missing)
        waits.append(verdict.delay)
        reports.append(verdict.report)
        now += verdict.delay
    assert waits == [HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 16 * HOUR, DAY, DAY, DAY]
    assert sum(r is not None for r in reports) == 1
    assert "private, hidden or missing (404)" in reports[0]
    back = schedule.polled("gone", now, Observation(0, 1))
    assert back.report == "answering again after 8 failed polls"
    assert schedule.health("gone").status == "ok"


def test_the_bounds_must_hold_the_default_interval_and_a_minimum_of_one_second_is_allowed():
    AdaptiveSchedule(["a"], 1.0, now=0.0, min_interval=1.0)
    for kwargs, field in (({"min_interval": 0.0}, "minInterval"),
                          ({"min_interval": 60.0, "max_interval": 30.0}, "maxInterval"),
                          ({"min_interval": 2 * HOUR}, "interval"),
                          ({"max_interval": 60.0}, "interval")):
        with pytest.raises(InputError) as caught:
            AdaptiveSchedule(["a"], HOUR, now=0.0, **kwargs)
        assert caught.value.field == field


def test_with_a_budget_the_plan_spends_about_the_budget_and_says_when_it_is_short():
    clock = [0.0]
    budget = Budget(24_000, "day")  # 2,400 requests a day
    bucket = MemoryBucket(budget, clock=lambda: clock[0])
    handles = [f"h{i}" for i in range(100)]
    schedule = AdaptiveSchedule(handles, HOUR, now=0.0, bucket=bucket, draw=MID)
    _baselined(schedule, handles)
    for i, h in enumerate(handles):
        schedule.restore(h, Activity(7 * (i + 1), 7 * DAY, 0.0, polls=9))
    polls_a_day = sum(DAY / schedule.interval_of(h, 0.0) for h in handles)
    reading = sum(7 * (i + 1) / (7 * DAY + DAY) for i in range(100)) * DAY / 30
    # Half full (after the baselines it holds ~85%): nudged up by at most half.
    assert 2400 - reading <= polls_a_day <= 1.5 * 2400
    assert schedule.take_short() is None
    tight = AdaptiveSchedule(handles, HOUR, now=0.0, draw=MID, replan=0.0,
                             bucket=MemoryBucket(Budget(500, "day"), clock=lambda: 0.0))
    _baselined(tight, handles)
    tight.polled("h1", 1.0, Observation(0, 1))
    assert tight.interval_of("h1", 1.0) == DAY
    said = tight.take_short()
    assert said is not None and "--max-interval 1d" in said
    assert tight.take_short() is None  # once


def test_a_busy_handle_that_keeps_failing_backs_off_from_its_own_interval():
    handles = [f"h{i}" for i in range(10)]
    schedule = AdaptiveSchedule(handles, HOUR, now=0.0, draw=MID)
    for i, h in enumerate(handles):
        schedule.restore(h, Activity(7 * (1 + 99 * (i == 0)), 7 * DAY, 0.0, polls=9))
    own = schedule.interval_of("h0", 0.0)
    assert own < HOUR / 2
    down = NotFoundError("gone", status=404)
    waits = [schedule.failed("h0", 0.0, down).delay for _ in range(3)]
    assert waits == pytest.approx([own, 2 * own, 4 * own], rel=0.05)
