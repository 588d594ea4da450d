"""Every trigger state this connector ever wrote still loads, and runner JSON stays exactly what
runners hold; anything this connector never wrote is refused by name (issue 18, defect 11)."""

from __future__ import annotations

import json

import pytest

import connector
from connector.state.followed import FollowState
from connector.state.prints import KNOWN_LIMIT
from connector.state.unfollowed import UnfollowState
from tests.state.formats import HANDLE, previous_release, v1_state, v2_segment, v2_state
from tests.support import API_KEY


@pytest.mark.parametrize(("name", "state"), [("followed", FollowState),
                                             ("unfollowed", UnfollowState)])
def test_the_previous_releases_runner_json_loads_and_is_written_back_byte_for_byte(name, state):
    old = previous_release()[name]
    parsed = state.from_json(old)
    again = parsed.to_json()
    assert json.dumps(again, separators=(",", ":")) == json.dumps(old, separators=(",", ":"))
    # And through a database's form, the same state.
    assert state.from_stored(*parsed.to_stored()).to_json() == old


def test_the_previous_releases_states_hold_what_they_held():
    old = previous_release()
    follow = FollowState.from_json(old["followed"])
    assert "7000000000000000000" in follow.known and follow.known.legacy > 0
    assert str(7_100_000_000_000_000_000 + 7919 * 1409) in follow.known
    assert follow.gaps[0].check is True and follow.gaps[0].base == 1_700_000_290
    unfollow = UnfollowState.from_json(old["unfollowed"])
    assert len(unfollow.roster) == 600 and unfollow.scan.recheck is True
    account = unfollow.roster.get("6800000000000000007")
    assert account.item["uniqueId"] == "user7" and account.item["verified"] is True


def test_a_version_2_state_keeps_its_32_bit_fingerprints_until_they_age_out():
    old = v2_state()
    state = FollowState.from_json(old)
    memory = state.known
    assert "7000000000000000000" in memory and "7000000000000000042" in memory
    assert memory.legacy == 2600 and len(memory) == 2600
    # Meanwhile the bound is the old one for them: 2,600 in 2**32.
    assert memory.false_positive_rate() == pytest.approx(2600 / 2**32)
    saved = state.to_json()
    assert saved["v"] == 3 and FollowState.from_json(saved).known.legacy == 2600
    # New accounts go into wide fingerprints; the oldest legacy segments go first, whole.
    memory = memory.remember(f"new-{i}" for i in range(2500))
    assert memory.legacy == 100 + 1250 and len(memory) <= KNOWN_LIMIT
    memory = memory.remember(f"newer-{i}" for i in range(2450))
    assert memory.legacy == 0 and memory.false_positive_rate() <= 1e-9


def test_a_version_2_state_polls_on_exactly(standin, creds):
    standin.add_account(HANDLE, 20)
    first = connector.run("new_account_followed", {"handle": HANDLE, "count": 5},
                          credentials=creds)
    top = [u["id"] for u in standin.following(HANDLE)[:5]]
    old = {"v": 2, "handle": HANDLE, "watermark": first.state["watermark"],
           "known": [v2_segment(top)], "gaps": []}
    new = standin.follow_many(HANDLE, 3)
    result = connector.run("new_account_followed", {"handle": HANDLE, "count": 5},
                           credentials=creds, state=old)
    assert [i["id"] for i in result.items] == [u["id"] for u in new]
    assert result.state["v"] == 3


def test_a_version_1_state_migrates_to_wide_fingerprints_of_the_same_ids():
    ids = [str(7_000_000_000_000_000_000 + i) for i in range(300)]
    state = FollowState.from_json({**v1_state(ids, 5),
                                   "gaps": [{"from": 9, "to": 5, "tries": 0}]})
    assert all(i in state.known for i in ids) and state.known.legacy == 0


def test_a_damaged_part_is_refused_not_decoded_into_other_fingerprints():
    from connector.state.memory import Memory

    memory = Memory().remember(map(str, range(500)))
    state = FollowState(HANDLE, watermark=5, known=memory).to_json()
    part = state["known"][-1]
    state["known"][-1] = part[:40] + ("0" if part[40] != "0" else "1") + part[41:]
    with pytest.raises(connector.StateError, match="does not decode"):
        FollowState.from_json(state)


# Fields this connector never wrote (defect 11)


FOLLOW = {"v": 3, "handle": HANDLE, "watermark": 1_700_000_000, "base": None, "known": [],
          "gaps": []}
UNFOLLOW = {"v": 2, "trigger": "account_unfollowed", "handle": HANDLE, "watermark": None,
            "base": None, "gaps": [], "offset": 0, "sinceFull": 0, "shortScans": 0,
            "capped": False, "clock": 0, "scan": None, "accounts": []}


@pytest.mark.parametrize(("operation", "state", "field"), [
    ("new_account_followed", {**FOLLOW, "watermarks": 5}, "watermarks"),
    ("new_account_followed", {**FOLLOW, "v": 2, "base": 5}, "base"),  # base is version 3's
    ("new_account_followed", {**FOLLOW, "gaps": [{"from": 9, "to": 5, "retries": 1}]},
     "retries"),
    ("account_unfollowed", {**UNFOLLOW, "Offset": 3}, "Offset"),
    ("account_unfollowed", {**UNFOLLOW, "v": 1, "base": None}, "base"),
    ("account_unfollowed", {**UNFOLLOW, "scan": {"from": None, "mode": "full", "began": 1,
                                                  "fast": True}}, "fast"),
    ("account_unfollowed", {**UNFOLLOW, "gaps": [{"from": 9, "to": 5, "next": 1}]}, "next"),
    # The account a stop came from: only the follow trigger's version 3 keeps it.
    ("new_account_followed", {**{k: v for k, v in FOLLOW.items() if k != "base"}, "v": 2,
                              "watermarkAccount": 5}, "watermarkAccount"),
    ("account_unfollowed", {**UNFOLLOW, "watermarkAccount": 5}, "watermarkAccount"),
    ("account_unfollowed", {**UNFOLLOW, "gaps": [{"from": 9, "to": 5, "account": 1}]},
     "account"),
])
def test_a_state_field_this_connector_never_wrote_is_refused_by_name(standin, creds, operation,
                                                                     state, field):
    from connector import invoke

    standin.add_account(HANDLE, 5)
    with pytest.raises(connector.StateError) as caught:
        connector.run(operation, {"handle": HANDLE}, credentials=creds, state=state)
    assert repr(field) in caught.value.message and caught.value.sent_nothing
    code, body = invoke.answer(json.dumps({"operation": operation,
                                           "inputs": {"handle": HANDLE},
                                           "credentials": {"apiKey": API_KEY,
                                                           "baseUrl": standin.url},
                                           "state": state}))
    assert (code, body["error"]["type"]) == (2, "state_error")
    assert repr(field) in body["error"]["message"]
    assert standin.count_requests() == 0


@pytest.mark.parametrize("state", [
    {**v1_state(["1", "2"], 5), "gaps": [{"from": 9, "to": 5, "tries": 0}]},
    {"v": 2, "handle": HANDLE, "watermark": 5, "known": [],
     "gaps": [{"from": 9, "to": 5, "tries": 3, "wait": 2, "check": True}]},
    {**FOLLOW, "gaps": [{"from": 9, "to": 5, "tries": 0, "base": 4}]},
    {**FOLLOW, "watermarkAccount": 0,
     "gaps": [{"from": 9, "to": 5, "tries": 0, "base": 4, "account": 5_099_999_999_999}]},
])
def test_every_follow_state_this_connector_wrote_still_loads(state):
    assert FollowState.from_json(state).handle == HANDLE


def test_every_unfollow_state_this_connector_wrote_still_loads():
    v1 = {k: v for k, v in UNFOLLOW.items() if k != "base"}
    v1.update(v=1, scan={"from": 5, "mode": "short", "began": 1, "polls": 2, "tries": 0,
                         "wait": 0})
    assert UnfollowState.from_json(v1).scan.mode == "short"
    v2 = dict(UNFOLLOW, base=4, watermark=5, scan={"from": None, "mode": "full", "began": 1,
                                                    "recheck": True})
    assert UnfollowState.from_json(v2).scan.recheck is True


@pytest.mark.parametrize("state_class", [FollowState, UnfollowState])
def test_a_version_too_large_to_print_is_refused_as_newer_state_not_a_crash(state_class):
    # Python refuses to print a whole number of more than 4,300 digits.
    state = {"v": 10**5000, "trigger": "account_unfollowed", "handle": HANDLE}
    with pytest.raises(connector.StateError, match=r"version \(a number of 16610 bits\), newer"):
        state_class.from_json(state)


@pytest.mark.parametrize("value", [-1, 5_100_000_000_000, 1.5, "12", True, [1]])
@pytest.mark.parametrize("where", ["state", "gap"])
def test_an_account_that_is_no_fingerprint_is_refused(value, where):
    state = {**FOLLOW, "watermarkAccount": value} if where == "state" else {
        **FOLLOW, "gaps": [{"from": 9, "to": 5, "tries": 0, "account": value}]}
    with pytest.raises(connector.StateError,
                       match=r"(?i)account.* is not an account's fingerprint"):
        FollowState.from_json(state)


def test_the_accounts_of_the_stops_round_trip_in_both_forms():
    from connector.state.gaps import Gap
    from connector.state.memory import Memory
    from connector.state.prints import fingerprint

    state = FollowState(HANDLE, watermark=1_700_000_100, base=1_700_000_011,
                        known=Memory().remember(map(str, range(300))),
                        gaps=[Gap(1_700_000_090, 1_700_000_050, 2, 1, True, 1_700_000_040,
                                  fingerprint("7")), Gap(1_700_000_030, None)],
                        watermark_account=fingerprint("299"))
    runner = json.loads(json.dumps(state.to_json()))
    assert runner["watermarkAccount"] == fingerprint("299")
    assert runner["gaps"][0]["account"] == fingerprint("7")
    assert "account" not in runner["gaps"][1]
    for again in (FollowState.from_json(runner), FollowState.from_stored(*state.to_stored())):
        assert again.watermark_account == state.watermark_account
        assert again.gaps == state.gaps and again.to_json() == runner
    # A gap that fails again keeps it too.
    assert state.gaps[0].failed().stop_account == fingerprint("7")
