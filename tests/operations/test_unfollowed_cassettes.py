"""Unfollow histories on cassettes (recorded from the stand-in): issue 10's scenarios.

Each test scripts the stand-in's world exactly as when it was recorded; on replay vcrpy
answers, in order, and no server runs (tests/conftest.py). Re-record with
`pytest --record-mode=rewrite tests/operations/test_unfollowed_cassettes.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import connector
from connector.core.config import RetryPolicy
from connector.standin import StandIn
from tests.support import API_KEY, REPLAY_URL, replaying

HANDLE = "alice"


def poll(creds, state, **inputs):
    return connector.run("account_unfollowed", {"handle": HANDLE, "count": 10, **inputs},
                         credentials=creds, state=state, retry=RetryPolicy.no_wait())


def names(result) -> list[str]:
    return [i["uniqueId"] for i in result.items]


@pytest.mark.vcr
def test_no_change_costs_one_request(standin, creds):
    standin.add_account(HANDLE, 25)
    baseline = poll(creds, None)
    assert baseline.items == [] and baseline.meta["requests"] == 3
    quiet = poll(creds, baseline.state)
    assert quiet.items == [] and quiet.meta["requests"] == 1
    assert quiet.meta["check"] == "agreed"


@pytest.mark.vcr
def test_only_follows_cost_what_the_follow_trigger_costs(standin, creds):
    standin.add_account(HANDLE, 25)
    state = poll(creds, None).state
    standin.follow_many(HANDLE, 12)
    result = poll(creds, state)
    assert result.items == [] and result.meta["requests"] == 2  # ceil((12 + 1) / 10)
    assert result.meta["followsSeen"] == 12 and result.meta["check"] == "agreed"


@pytest.mark.vcr
def test_only_unfollows_are_each_emitted_once(standin, creds):
    standin.add_account(HANDLE, 25)
    state = poll(creds, None).state
    standin.unfollow(HANDLE, "user3")
    standin.unfollow(HANDLE, "user20")
    result = poll(creds, state)
    assert names(result) == ["user3", "user20"]  # oldest follow first
    assert result.meta["requests"] == 3 and result.meta["check"] == "short"
    after = poll(creds, result.state)
    assert after.items == [] and after.meta["requests"] == 1


@pytest.mark.vcr
def test_follows_and_unfollows_in_one_interval(standin, creds):
    standin.add_account(HANDLE, 25)
    state = poll(creds, None).state
    standin.unfollow(HANDLE, "user10")
    standin.follow_many(HANDLE, 1)  # the count stays 25
    result = poll(creds, state)
    assert names(result) == ["user10"]
    assert (result.meta["total"], result.meta["expectedTotal"]) == (25, 26)


@pytest.mark.vcr
def test_unfollow_then_refollow_then_unfollow_is_two_events(standin, creds):
    standin.add_account(HANDLE, 25)
    state = poll(creds, None).state
    user = standin.following(HANDLE)[8]
    standin.unfollow(HANDLE, user["id"])
    first = poll(creds, state)
    standin.follow(HANDLE, user)
    between = poll(creds, first.state)
    standin.unfollow(HANDLE, user["id"])
    second = poll(creds, between.state)
    assert names(first) == names(second) == [user["uniqueId"]]
    assert between.items == [] and between.meta["requests"] == 1
    assert first.items[0]["lastSeenAt"] != second.items[0]["lastSeenAt"]


@pytest.mark.vcr
def test_a_stale_count_higher_then_lower_emits_only_the_real_unfollow(standin, creds):
    standin.add_account(HANDLE, 25)
    state = poll(creds, None).state
    standin.set_total(HANDLE, 28)
    higher = poll(creds, state)
    assert higher.items == [] and higher.meta["check"] == "higher"
    assert higher.meta["requests"] == 1
    standin.unfollow(HANDLE, "user12")
    standin.set_total(HANDLE, None)
    lower = poll(creds, higher.state)
    assert names(lower) == ["user12"] and lower.meta["fullRead"] is True
    settled = poll(creds, lower.state)
    assert settled.items == [] and settled.meta["requests"] == 1


@pytest.mark.vcr
def test_a_missing_count_falls_back_to_the_periodic_full_read(standin, creds):
    standin.add_account(HANDLE, 25)
    state = poll(creds, None, reconcileEvery=2).state
    standin.set_total(HANDLE, "missing")
    standin.unfollow(HANDLE, "user7")
    first = poll(creds, state, reconcileEvery=2)
    assert first.items == [] and first.meta["check"] == "noTotal"
    assert first.meta["requests"] == 1
    second = poll(creds, first.state, reconcileEvery=2)
    assert names(second) == ["user7"] and second.meta["requests"] == 3


@pytest.fixture
def capped(request) -> Iterator[StandIn]:
    server = StandIn(api_keys=(API_KEY,), depth_cap=30)
    if replaying(request):
        yield server
        return
    with server:
        yield server


@pytest.mark.vcr
def test_beyond_the_depth_cap_unfollows_are_counted_not_seen(capped, request):
    creds = {"apiKey": API_KEY, "baseUrl": REPLAY_URL if replaying(request) else capped.url}
    capped.add_account(HANDLE, 40)
    baseline = poll(creds, None)
    assert baseline.meta["tracked"] == 30 and baseline.meta["unlisted"] == 10
    assert any("depth cap" in w for w in baseline.meta["warnings"])
    capped.unfollow(HANDLE, "user2")  # below the cap
    capped.unfollow(HANDLE, "user35")  # above it
    result = poll(creds, baseline.state)
    assert names(result) == ["user35"] and result.meta["unfoundUnfollows"] == 1
