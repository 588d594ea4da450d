"""The credit budget (core/budget.py): the parser, the bucket's arithmetic, and the cap it keeps
over any stretch of time, whatever polls reserve, spend and give back."""

from __future__ import annotations

import math
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.budget import PERIODS, Bucket, Budget, Hold, MemoryBucket, parse_budget
from connector.core.config import CREDITS_PER_REQUEST
from connector.core.errors import InputError
from connector.operations import CREDITS_PER_REQUEST as OPERATIONS_CREDITS

DAY = 86400.0


# The parser


@pytest.mark.parametrize(("text", "credits", "period"), [
    ("100000/month", 100_000, "month"),
    ("100,000/month", 100_000, "month"),
    ("1_000_000 / months", 1_000_000, "month"),
    ("5000/day", 5000, "day"),
    ("2000 credits/hour", 2000, "hour"),
    ("  300/h ", 300, "hour"),
    ("300/D", 300, "day"),
    ("300/mo", 300, "month"),
])
def test_a_budget_is_read_as_credits_per_hour_day_or_month(text, credits, period):
    assert parse_budget(text) == Budget(credits, period)


@pytest.mark.parametrize(("text", "says"), [
    ("100000", "give credits per hour, day or month, like 100000/month"),
    ("100000/week", "give credits per hour, day or month"),
    ("1000/m", "'m' could be minutes or months: write month"),
    ("-5/day", "give credits per hour, day or month"),
    ("1.5/day", "give credits per hour, day or month"),
    ("1,00/day", "give credits per hour, day or month"),
    ("199/day", "from 200 (a tenth of it, the most spent at once, must pay a poll's 2 "
                "requests)"),
    ("10000000000000/day", "to 1,000,000,000,000"),
])
def test_a_bad_budget_is_refused_with_what_to_write_naming_the_budget(text, says):
    with pytest.raises(InputError) as caught:
        parse_budget(text)
    assert caught.value.field == "budget"
    assert says in caught.value.message
    assert caught.value.message.startswith("budget ")


def test_a_month_is_a_twelfth_of_a_year_of_365_and_a_quarter_days():
    assert PERIODS["month"] * 12 == 365.25 * DAY
    budget = parse_budget("1200000/month")
    assert budget.capacity == 120_000
    assert budget.cap(365.25 * DAY) == pytest.approx(12 * 1_200_000 + 120_000)
    assert str(budget) == "1200000/month"


def test_credits_per_request_has_one_home():
    assert CREDITS_PER_REQUEST == OPERATIONS_CREDITS == 10


# The bucket's arithmetic

BUDGET = Budget(8640, "day")  # 0.1 credit a second; holds 864


def test_a_new_bucket_is_full_and_grants_whole_requests():
    bucket = Bucket.full(BUDGET, now=0.0)
    assert bucket == Bucket(864.0, 0.0, 0.0)
    after, granted = bucket.reserve(BUDGET, 0.0, want=100, least=20)
    assert granted == 100
    assert after == Bucket(764.0, 100.0, 0.0)
    _, granted = Bucket(55.0, 0.0, 0.0).reserve(BUDGET, 0.0, want=100, least=20)
    assert granted == 50  # cut to what it holds, in whole requests


def test_a_reservation_below_its_minimum_gets_nothing_and_takes_nothing():
    bucket = Bucket(19.0, 0.0, 0.0)
    after, granted = bucket.reserve(BUDGET, 0.0, want=100, least=20)
    assert granted == 0
    assert after.level == 19.0 and after.held == 0.0
    # ...until the refill brings it there: 1 credit at 0.1 a second is 10 seconds.
    assert bucket.ready_in(BUDGET, 0.0, 20) == pytest.approx(10.0)
    assert bucket.reserve(BUDGET, 10.0, want=100, least=20)[1] == 20


def test_the_bucket_refills_at_n_per_period_up_to_a_tenth_of_n():
    bucket = Bucket(0.0, 0.0, 0.0)
    assert bucket.refill(BUDGET, 100.0).level == pytest.approx(10.0)
    assert bucket.refill(BUDGET, 10 * DAY).level == 864.0


def test_credits_held_by_a_poll_in_flight_do_not_refill():
    # A slow poll holds all 864 credits; a day later a second poll must still find nothing,
    # or both could spend the same credits in the same second.
    bucket, granted = Bucket.full(BUDGET, 0.0).reserve(BUDGET, 0.0, want=860, least=20)
    assert granted == 860
    later = bucket.refill(BUDGET, DAY)
    assert later.level == pytest.approx(4.0)
    assert later.reserve(BUDGET, DAY, want=100, least=20)[1] == 0
    assert later.ready_in(BUDGET, DAY, 20) == math.inf  # only the slow poll settling helps
    # It settles having spent 10: the 850 it did not spend come back at once.
    settled = later.settle(BUDGET, DAY, reserved=860, spent=10)
    assert settled.held == 0.0
    assert settled.level == pytest.approx(854.0)


def test_a_clock_that_steps_back_refills_nothing_and_nothing_twice():
    bucket = Bucket(0.0, 0.0, 1000.0)
    assert bucket.refill(BUDGET, 900.0) == Bucket(0.0, 0.0, 1000.0)
    assert bucket.refill(BUDGET, 1100.0).level == pytest.approx(10.0)


def test_a_poll_that_never_settles_is_taken_as_spent_in_full():
    bucket, _ = Bucket.full(BUDGET, 0.0).reserve(BUDGET, 0.0, want=100, least=20)
    dropped = bucket.abandon(BUDGET, 0.0, 100)
    assert dropped == Bucket(764.0, 0.0, 0.0)


def test_a_lowered_budget_is_obeyed_at_once():
    smaller = Budget(1000, "day")  # holds 100
    assert Bucket(864.0, 0.0, 0.0).refill(smaller, 0.0).level == 100.0


def test_spending_more_than_was_held_is_owed():
    bucket, _ = Bucket.full(BUDGET, 0.0).reserve(BUDGET, 0.0, want=860, least=20)
    owed = bucket.settle(BUDGET, 0.0, reserved=860, spent=880)
    assert owed.level == pytest.approx(-16.0)
    assert owed.ready_in(BUDGET, 0.0, 20) == pytest.approx(360.0)


# The cap, whatever happens


def _worst_stretch(spends: list[tuple[float, int]], budget: Budget) -> float:
    """max over [a, b] of (spent in [a, b]) - the cap for b - a (<= 0: the cap held)."""
    worst = -math.inf
    for i, (start, _) in enumerate(spends):
        total = 0
        for end, credits in spends[i:]:
            total += credits
            worst = max(worst, total - budget.cap(end - start))
    return worst


polls = st.lists(st.tuples(
    st.floats(0, 600),  # seconds until the poll starts
    st.integers(2, 50),  # its page budget
    st.integers(0, 50),  # the pages it would read, if it may
    st.floats(0, 3000),  # seconds its requests are spread over (a slow poll)
), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(polls=polls, concurrent=st.booleans())
def test_no_stretch_of_time_spends_more_than_the_cap(polls, concurrent):
    """Polls reserve before they start, spend their requests over a while (overlapping when
    `concurrent`), and settle after; the requests themselves never break the cap."""
    budget = Budget(3000, "hour")  # 300 at once, 0.83 a second
    bucket = Bucket.full(budget, 0.0)
    now = 0.0
    events: list[tuple[float, str, int, int]] = []  # (time, "spend"/"settle", reserved, pages)
    spends: list[tuple[float, int]] = []
    for gap, want, reads, slow in polls:
        now += gap
        # Settle whatever has finished by now, in time order.
        for at, kind, reserved, pages in sorted(e for e in events if e[0] <= now):
            if kind == "settle":
                bucket = bucket.settle(budget, at, reserved, pages * CREDITS_PER_REQUEST)
        events = [e for e in events if e[0] > now]
        bucket, granted = bucket.reserve(budget, now, want * CREDITS_PER_REQUEST,
                                         2 * CREDITS_PER_REQUEST)
        if not granted:
            continue
        pages = min(reads, granted // CREDITS_PER_REQUEST)
        for k in range(pages):
            spends.append((now + slow * (k + 1) / (pages + 1), CREDITS_PER_REQUEST))
        end = now + slow
        events.append((end, "settle", granted, pages))
        if not concurrent:
            bucket = bucket.settle(budget, end, granted, pages * CREDITS_PER_REQUEST)
            events.pop()
            now = end
    spends.sort()
    assert _worst_stretch(spends, budget) <= 1e-6


def test_threads_sharing_a_memory_bucket_never_hold_more_than_it_has():
    clock = [0.0]
    bucket = MemoryBucket(BUDGET, clock=lambda: clock[0])
    holds: list[Hold] = []

    def take() -> None:
        for _ in range(200):
            got = bucket.reserve(30, 20)
            if got.credits:
                holds.append(got)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grants = [h.credits for h in holds]
    assert sum(grants) <= 864
    assert sum(grants) >= 864 - 30  # and it gave out what it had
    assert bucket.view().held == sum(grants)
    for n, hold in enumerate(holds):
        bucket.settle(hold, 10 if n == 0 else 0)
    assert bucket.spent == 10
    assert bucket.view().level == pytest.approx(854.0)
