"""Spending a budget (watch/spend.py): a poll reserves its page budget's credits before it
starts and gives back what it did not spend; a cut page budget only delays follows."""

from __future__ import annotations

import math
import random

import pytest

from benchmarks.scheduling import DAY, World
from connector.core.budget import Budget, MemoryBucket
from connector.watch.spend import Spender

BUDGET = Budget(3000, "day")  # holds 300: thirty requests


def _spender(level_at: float = 0.0):
    clock = [level_at]
    bucket = MemoryBucket(BUDGET, clock=lambda: clock[0])
    return Spender(bucket), bucket, clock


def test_without_a_budget_every_poll_gets_what_it_asks():
    spender = Spender(None)
    assert spender.start([10, 50]).pages == (10, 50)
    assert spender.start([1]).pages == (2,)  # never below a trigger's minimum
    assert spender.ready_in([10]) == 0.0 and spender.take_short() is None


def test_a_poll_reserves_its_page_budget_and_gives_back_what_it_did_not_spend():
    spender, bucket, _ = _spender()
    grant = spender.start([10])
    assert grant.pages == (10,) and grant.credits == 100
    assert bucket.view().level == 200 and bucket.view().held == 100
    spender.finish(grant, 1)
    assert bucket.view().level == 290 and bucket.view().held == 0
    assert bucket.spent == 10


def test_a_short_bucket_cuts_the_page_budget_never_below_the_minimum_then_makes_it_wait():
    spender, _, clock = _spender()
    first = spender.start([25])
    assert first.pages == (25,)
    assert spender.start([10]).pages == (5,)  # 50 credits left: five pages
    assert spender.cut == 1
    assert spender.start([10]) is None  # nothing left for the minimum of two
    assert spender.waited == 1
    assert spender.ready_in([10]) == math.inf  # all of it held: only a poll settling helps
    spender.finish(first, 25)  # it spent all it held
    assert spender.ready_in([10]) == pytest.approx(20 / BUDGET.rate)
    clock[0] = 20 / BUDGET.rate
    assert spender.start([10]).pages == (2,)


def test_with_both_triggers_each_gets_its_minimum_and_the_follow_trigger_the_rest_first():
    spender, _, _ = _spender()
    spender.start([20])  # 100 credits left
    assert spender.start([10, 50]).pages == (8, 2)
    assert spender.start([10, 50]) is None


def test_a_short_budget_is_said_once_until_the_bucket_has_been_full_again():
    spender, _, _ = _spender()
    assert spender.take_short() is None
    held = spender.start([30])
    assert spender.start([10]) is None
    said = spender.take_short()
    assert said.startswith("the budget of 3000/day credits is spent for now: polls wait")
    assert spender.start([10]) is None
    assert spender.take_short() is None  # said once
    spender.finish(held, 0)  # all of it back: full again
    assert spender.take_short() is None
    spender.start([30])
    assert spender.start([10]) is None
    assert spender.take_short() is not None  # a new shortage


def test_a_page_budget_cut_to_any_size_only_delays_follows_never_loses_or_repeats_one():
    """Polls with page budgets from 2 to 10, drawn at random as a short budget would cut them,
    over lists that take bursts of up to 400 follows: after a drain, every follow made after
    the baseline was delivered exactly once."""
    world = World(12, seed=5)
    rng = random.Random(9)
    now = 0.0
    for handle in world.handles:
        world.poll(handle, 10, now, None)
    for _ in range(150):
        now += rng.uniform(60, 6 * 3600)
        handle = rng.choice(world.handles)
        listing = world.lists[handle]
        if rng.random() < 0.2:  # a session of follows, more than a poll can read
            listing.burst(rng.randint(20, 400), now)
        world.poll(handle, rng.randint(2, 10), now, DAY * 1e6)
    world.drain(now + 1)
    ledger = world.ledger
    after = [a for a, (h, t) in ledger.arrived.items() if t > ledger.baselined[h]]
    assert len(after) > 300
    assert sorted({ledger.delivered.get(a, 0) for a in after}) == [1]
    assert not any(ledger.delivered.get(a) for a, (h, t) in ledger.arrived.items()
                   if t <= ledger.baselined[h])
