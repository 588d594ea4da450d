"""What both triggers promise alike, each scenario run against each trigger: the baseline, a
quiet poll's one request, new follows for the fewest requests, items as the manifest says,
errors and test mode that change nothing, state refused before any request, and state that
round-trips in both its forms (runner JSON, and a database's row and parts).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import connector
from connector.operations.events import new_event
from connector.operations.registry import OPERATIONS
from connector.standin import Fault, StandIn
from connector.state.followed import FollowState
from connector.state.unfollowed import UnfollowState
from tests.operations.poller import (
    FOLLOWS,
    HANDLE,
    UNFOLLOWS,
    P,
    Poller,
    bound,
    by_id,
    by_name,
    pages,
)


@dataclass(frozen=True)
class Trigger:
    operation: str
    key: Callable[[dict], str]
    state: type
    #: Requests the baseline of a list of n accounts takes.
    baseline: Callable[[int], int]
    #: The meta field that counts the new follows a poll saw.
    seen: str
    #: The smallest state of this trigger, to damage in the tests.
    minimal: dict[str, Any]

    def three_events(self, standin: StandIn) -> list[str]:
        """Make three of this trigger's events happen; their keys, oldest first."""
        if self.operation == FOLLOWS:
            return [self.key(u) for u in standin.follow_many(HANDLE, 3)]
        listed = standin.following(HANDLE)
        gone = [listed[i] for i in (5, 25, 45)]  # on three pages: their order is known
        for user in gone:
            standin.unfollow(HANDLE, user["id"])
        return [self.key(u) for u in reversed(gone)]

    def __repr__(self) -> str:
        return self.operation


TRIGGERS = [
    Trigger(FOLLOWS, by_id, FollowState, lambda n: 1, "newFollows",
            {"v": 3, "handle": HANDLE}),
    Trigger(UNFOLLOWS, by_name, UnfollowState, pages, "followsSeen",
            {"v": 2, "trigger": UNFOLLOWS, "handle": HANDLE}),
]


@pytest.fixture(params=TRIGGERS, ids=repr)
def trigger(request) -> Trigger:
    return request.param


@pytest.fixture
def world(standin, creds, trigger) -> Poller:
    standin.add_account(HANDLE, 57)
    return Poller(standin, creds, trigger.operation, key=trigger.key)


def test_every_trigger_of_the_registry_is_tested_here():
    assert sorted(t.operation for t in TRIGGERS) == sorted(
        op.key for op in OPERATIONS.values() if op.event)


def test_the_first_poll_takes_a_baseline_and_emits_nothing(trigger, world):
    result = world.poll()
    assert result.items == [] and result.meta["baseline"] is True
    assert world.requests == [trigger.baseline(57)]


def test_a_poll_with_nothing_new_costs_one_request(world):
    world.poll()
    for _ in range(3):
        result = world.poll()
        assert result.items == [] and result.meta["baseline"] is False
    assert world.requests[1:] == [1, 1, 1]
    assert result.meta["creditsUsed"] == 10


@pytest.mark.parametrize("n", [1, 3, P - 1, P, P + 1, 2 * P, 3 * P + 4, 5 * P + 3])
def test_new_follows_cost_the_fewest_requests(trigger, world, n):
    world.poll()
    new = world.standin.follow_many(HANDLE, n)
    result = world.poll()
    # The follow trigger emits them, oldest first; the unfollow trigger only keeps up.
    expected = [trigger.key(u) for u in new] if trigger.operation == FOLLOWS else []
    assert [trigger.key(i) for i in result.items] == expected
    assert world.requests[-1] == bound(n) and result.meta[trigger.seen] == n
    assert world.poll().items == [] and world.requests[-1] == 1


def test_items_match_the_manifest_output(trigger, world):
    world.poll()
    happened = trigger.three_events(world.standin)
    items = world.poll().items
    assert [trigger.key(i) for i in items] == happened and len(items) == 3
    schema = connector.CONNECTOR.operations[trigger.operation]["output"]
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for item in items:
        validator.validate(item)


@pytest.mark.parametrize("fault", [Fault(status=404), Fault(status=401), Fault(status=403),
                                   Fault(status=500), Fault(malformed=True)])
def test_an_error_mid_poll_leaves_state_untouched(trigger, world, fault):
    world.poll()
    happened = trigger.three_events(world.standin)
    frozen = copy.deepcopy(world.state)
    world.standin.inject(*[fault] * 5)  # outlasts the retries
    with pytest.raises(connector.ConnectorError):
        world.poll()
    assert world.state == frozen
    world.standin.clear_faults()
    assert [trigger.key(i) for i in world.poll().items] == happened


def test_a_poll_repeated_from_the_same_state_emits_the_same_events(trigger, world):
    world.poll()
    saved = copy.deepcopy(world.state)
    trigger.three_events(world.standin)
    first = world.poll().items
    world.state = saved  # the runner crashed before keeping the new state
    again = world.poll().items
    kind = OPERATIONS[trigger.operation].event
    ids = [[new_event(HANDLE, i, detected_at="x", kind=kind)[0] for i in items]
           for items in (first, again)]
    assert len(first) == 3 and ids[0] == ids[1]  # at least once, under the same event ids


def test_test_mode_returns_recent_follows_and_leaves_state_identical(trigger, world):
    world.poll()
    happened = trigger.three_events(world.standin)
    frozen = copy.deepcopy(world.state)
    result = connector.run(trigger.operation, {"handle": HANDLE}, mode="test",
                           credentials=world.creds, state=world.state)
    newest = world.standin.following(HANDLE)[:3]
    assert [trigger.key(i) for i in result.items] == [trigger.key(u) for u in reversed(newest)]
    assert result.state == frozen and world.state == frozen
    assert result.meta["mode"] == "test" and result.meta["sampleItems"] == 3
    assert result.meta["baseline"] is False and result.meta[trigger.seen] == 0
    assert [trigger.key(i) for i in world.poll().items] == happened  # it consumed nothing


def test_test_mode_without_state_needs_no_baseline(trigger, standin, creds):
    standin.add_account(HANDLE, 2)
    result = connector.run(trigger.operation, {"handle": HANDLE}, mode="test",
                           credentials=creds)
    assert len(result.items) == 2 and result.state is None


def test_a_changed_handle_starts_a_new_baseline_and_says_so(world, standin):
    world.poll()
    standin.add_account("bob", 20)
    result = world.poll(handle="bob")
    assert result.items == [] and result.meta["baseline"] is True
    assert "new baseline" in result.meta["warnings"][0]


def test_a_private_list_is_a_clear_error_that_changes_nothing(trigger, standin, creds):
    standin.add_account("hidden", 5, private=True)
    with pytest.raises(connector.NotFoundError, match="Following list not found"):
        connector.run(trigger.operation, {"handle": "hidden"}, credentials=creds)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda s: "{not json", "not valid JSON"),
    (lambda s: [1, 2], "JSON object"),
    (lambda s: {**s, "v": -1}, "version -1"),
    (lambda s: {**s, "v": 99}, "newer than this connector"),
    (lambda s: {**s, "v": True}, "version True"),
    (lambda s: {**s, "v": 0}, "version 0"),
    (lambda s: {**s, "handle": "not a handle!"}, "not a TikTok handle"),
    (lambda s: {**s, "watermark": "abc"}, "watermark 'abc'"),
    (lambda s: {**s, "watermark": float("inf")}, "watermark"),  # JSON's 1e400
    # Damage that once spent credits, then failed as an internal error.
    (lambda s: {**s, "watermark": {}}, "watermark"),
    (lambda s: {**s, "watermark": []}, "watermark"),
    (lambda s: {**s, "watermark": 10**5000}, "watermark"),
    (lambda s: {**s, "gaps": [{"from": "abc", "to": 1}]}, "gap 'from'"),
    (lambda s: {**s, "gaps": [{"from": 9, "to": 1}] * 1000}, "1000 gaps"),
    (lambda s: {**s, "gaps": [{"from": 9, "to": 1, "tries": -1}]}, "tries"),
    (lambda s: {**s, "Watermark": 5}, "'Watermark'"),
])
def test_bad_state_is_an_error_before_any_request(trigger, standin, creds, damage, message):
    from connector import invoke

    standin.add_account(HANDLE, 5)
    bad = damage(trigger.minimal)
    with pytest.raises(connector.StateError) as caught:
        connector.run(trigger.operation, {"handle": HANDLE}, credentials=creds, state=bad)
    assert message in caught.value.message and caught.value.sent_nothing
    assert "\n" not in caught.value.message and len(caught.value.message) < 300
    if isinstance(bad, dict) and message != "watermark":  # through invoke: exit 2
        code, body = invoke.answer(json.dumps({"operation": trigger.operation,
                                               "inputs": {"handle": HANDLE},
                                               "credentials": creds, "state": bad}))
        assert (code, body["error"]["type"]) == (2, "state_error")
        assert message in body["error"]["message"]
    assert standin.count_requests() == 0


def test_state_round_trips_as_runner_json_and_as_a_database_keeps_it(trigger, world):
    world.poll()
    trigger.three_events(world.standin)
    world.standin.follow_many(HANDLE, 40)  # the follow trigger's newest 32 are in the row
    world.poll()
    state = world.state
    assert state["v"] == trigger.minimal["v"]
    parsed = trigger.state.from_json(json.dumps(state))
    assert parsed.to_json() == state
    row, parts = parsed.to_stored()
    assert parts and all(type(p) is bytes for p in parts)
    assert trigger.state.PARTS not in row and json.loads(json.dumps(row)) == row
    assert trigger.state.from_stored(row, parts).to_json() == state
