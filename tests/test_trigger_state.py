"""The triggers' state: the memory's loss bound, its size, its migrations, and refusing what
this connector never wrote (issue 18, defects 8 and 11).

A remembered account is kept as a fingerprint; a new follow whose fingerprint equals one of
theirs is taken for one already seen and is never emitted. The bound on that is computed here
from the fingerprints' range and the memory's size, not sampled.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random

import pytest

import connector
from connector.core import b85
from connector.operations import state as trigger_state
from connector.operations.state import KNOWN_LIMIT, Memory, TriggerState
from connector.operations.unfollow import UnfollowState
from tests.support import API_KEY

HANDLE = "alice"


# The bound


def test_a_new_follow_is_lost_to_a_fingerprint_at_most_once_in_a_billion_at_5000():
    # A fingerprint is a 64-bit hash modulo PRINTS: each value has a chance of at most
    # 1 / PRINTS + 2**-64; a new account is lost if its value is one of the n remembered.
    prints = trigger_state.PRINTS
    rate = KNOWN_LIMIT * (1 / prints + 2.0**-64)
    assert rate <= 1e-9
    assert trigger_state.false_positive_rate(KNOWN_LIMIT) == pytest.approx(rate)
    memory = Memory().remember(str(7_000_000_000_000_000_000 + i) for i in range(6000))
    assert len(memory) <= KNOWN_LIMIT and memory.false_positive_rate() <= 1e-9
    # The fingerprints do range over [0, PRINTS): a narrower hash would make the bound a lie.
    values = [trigger_state.fingerprint(str(i)) for i in range(20_000)]
    assert max(values) < prints and max(values) > prints * 0.999 and min(values) >= 0


def test_two_accounts_that_shared_a_32_bit_fingerprint_are_told_apart():
    # Two ids whose version-2 fingerprints are equal: remembering one made the other look
    # seen, and a follow of it was never emitted (about once in 860,000 follows at 5,000).
    first, second = _legacy_collision()
    memory = Memory().remember([first])
    assert first in memory and second not in memory


def _legacy_collision() -> tuple[str, str]:
    seen: dict[int, str] = {}
    i = 0
    while True:
        key = str(7_100_000_000_000_000_000 + i)
        value = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big")
        if value in seen:
            return seen[value], key
        seen[value] = key
        i += 1


# Size and speed (the figures: python benchmarks/run.py --only state)


def test_5000_remembered_accounts_take_at_most_26_kb_of_json_and_20_kb_of_bytes():
    memory = Memory().remember(str(7_000_000_000_000_000_000 + 7919 * i) for i in range(5000))
    state = TriggerState(HANDLE, watermark=1_700_000_000_000, base=1_699_999_999_000,
                         known=memory).to_json()
    assert len(json.dumps(state, separators=(",", ":"))) <= 26 * 1024
    assert sum(len(b85.decode(part)) for part in state["known"]) <= 20 * 1024


def test_the_memory_round_trips_exactly():
    rng = random.Random(5)
    memory = Memory()
    for _ in range(120):  # polls remembering a few or many, past the bound
        memory = memory.remember(str(rng.getrandbits(63)) for _ in range(rng.choice((1, 7, 90))))
        again = TriggerState.from_json(TriggerState(HANDLE, known=memory).to_json()).known
        assert again._all == memory._all and again.to_json() == memory.to_json()


def test_the_newest_remembered_and_those_just_seen_stay_past_the_bound():
    keys = [f"old-{i}" for i in range(KNOWN_LIMIT)]
    seen = keys[:300]  # accounts on the pages a poll has just read
    memory = Memory().remember(keys, keep=seen)
    for poll in range(40):
        new = [f"new-{poll}-{i}" for i in range(25)]
        memory = memory.remember(new, keep=seen)
        assert all(k in memory for k in new) and all(k in memory for k in seen)
        assert len(memory) <= KNOWN_LIMIT


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 63, 64, 65, 255, 4096, 20_001])
def test_base85_is_the_standard_librarys(size):
    data = random.Random(size).randbytes(size)
    text = base64.b85encode(data).decode()
    assert b85.encode(data) == text and b85.decode(text) == data


@pytest.mark.parametrize("bad", ["ab\"cd", "~~~~~", "|NsC1", "~", "|~~~~", "|Ns"])
def test_base85_refuses_what_the_standard_library_refuses(bad):
    with pytest.raises(ValueError):
        base64.b85decode(bad)
    with pytest.raises(ValueError):
        b85.decode(bad)


# Migrations: every state this connector wrote still loads


def _v2_state() -> dict:
    """A version-2 state as the previous release wrote it: 32-bit fingerprints of these ids
    in segments of 1,250, newest first."""
    ids = [str(7_000_000_000_000_000_000 + i) for i in range(2600)]
    segments = [_v2_segment(ids[at:at + 1250]) for at in range(0, len(ids), 1250)]
    return {"v": 2, "handle": HANDLE, "watermark": 1_700_000_000, "known": segments[::-1],
            "gaps": [{"from": 1_700_000_500, "to": 1_700_000_000, "tries": 2, "wait": 1}]}


def test_a_version_2_state_keeps_its_32_bit_fingerprints_until_they_age_out():
    old = _v2_state()
    state = TriggerState.from_json(old)
    memory = state.known
    assert "7000000000000000000" in memory and "7000000000000000042" in memory
    assert memory.legacy == 2600 and len(memory) == 2600
    # Meanwhile the bound is the old one for them: 2,600 in 2**32.
    assert memory.false_positive_rate() == pytest.approx(2600 / 2**32)
    saved = state.to_json()
    assert saved["v"] == 3 and TriggerState.from_json(saved).known.legacy == 2600
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
    segment = _v2_segment(top)
    old = {"v": 2, "handle": HANDLE, "watermark": first.state["watermark"], "known": [segment],
           "gaps": []}
    new = standin.follow_many(HANDLE, 3)
    result = connector.run("new_account_followed", {"handle": HANDLE, "count": 5},
                           credentials=creds, state=old)
    assert [i["id"] for i in result.items] == [u["id"] for u in new]
    assert result.state["v"] == 3


def _v2_segment(ids: list[str]) -> str:
    """Version 2's segment of these ids: the deltas of their sorted 32-bit fingerprints in four
    byte planes, deflated, in base85."""
    import sys
    import zlib
    from array import array

    prints = sorted({int.from_bytes(hashlib.blake2b(k.encode(), digest_size=4).digest(), "big")
                     for k in ids})
    deltas = array("I", [b - a for a, b in zip([0, *prints], prints, strict=False)])
    if sys.byteorder == "little":
        deltas.byteswap()
    raw = deltas.tobytes()
    return base64.b85encode(zlib.compress(b"".join(raw[i::4] for i in range(4)), 9)).decode()


def test_a_version_1_state_migrates_to_wide_fingerprints_of_the_same_ids():
    ids = [str(7_000_000_000_000_000_000 + i) for i in range(300)]
    state = TriggerState.from_json({"v": 1, "handle": HANDLE, "watermark": 5, "known": ids,
                                    "gaps": [{"from": 9, "to": 5, "tries": 0}]})
    assert all(i in state.known for i in ids) and state.known.legacy == 0


def test_a_damaged_part_is_refused_not_decoded_into_other_fingerprints():
    memory = Memory().remember(map(str, range(500)))
    state = TriggerState(HANDLE, watermark=5, known=memory).to_json()
    part = state["known"][-1]
    state["known"][-1] = part[:40] + ("0" if part[40] != "0" else "1") + part[41:]
    with pytest.raises(connector.StateError, match="does not decode"):
        TriggerState.from_json(state)


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
    {"v": 1, "handle": HANDLE, "watermark": 5, "known": ["1", "2"],
     "gaps": [{"from": 9, "to": 5, "tries": 0}]},
    {"v": 2, "handle": HANDLE, "watermark": 5, "known": [],
     "gaps": [{"from": 9, "to": 5, "tries": 3, "wait": 2, "check": True}]},
    {**FOLLOW, "gaps": [{"from": 9, "to": 5, "tries": 0, "base": 4}]},
])
def test_every_follow_state_this_connector_wrote_still_loads(state):
    assert TriggerState.from_json(state).handle == HANDLE


def test_every_unfollow_state_this_connector_wrote_still_loads():
    v1 = {k: v for k, v in UNFOLLOW.items() if k != "base"}
    v1.update(v=1, scan={"from": 5, "mode": "short", "began": 1, "polls": 2, "tries": 0,
                         "wait": 0})
    assert UnfollowState.from_json(v1).scan.mode == "short"
    v2 = dict(UNFOLLOW, base=4, watermark=5, scan={"from": None, "mode": "full", "began": 1,
                                                    "recheck": True})
    assert UnfollowState.from_json(v2).scan.recheck is True
