"""The follow trigger's memory: the loss bound of its fingerprints, its size, and what it keeps
past 5,000 (state/prints.py, parts.py, memory.py; issue 18, defect 8).

A remembered account is kept as a fingerprint; a new follow whose fingerprint equals one of
theirs is taken for one already seen and is never emitted. The bound on that is computed here
from the fingerprints' range and the memory's size, not sampled.
"""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from connector.state import prints
from connector.state.followed import FollowState
from connector.state.memory import Memory
from connector.state.prints import KNOWN_LIMIT

HANDLE = "alice"


def test_a_new_follow_is_lost_to_a_fingerprint_at_most_once_in_a_billion_at_5000():
    # A fingerprint is a 64-bit hash modulo PRINTS: each value has a chance of at most
    # 1 / PRINTS + 2**-64; a new account is lost if its value is one of the n remembered.
    rate = KNOWN_LIMIT * (1 / prints.PRINTS + 2.0**-64)
    assert rate <= 1e-9
    assert prints.false_positive_rate(KNOWN_LIMIT) == pytest.approx(rate)
    memory = Memory().remember(str(7_000_000_000_000_000_000 + i) for i in range(6000))
    assert len(memory) <= KNOWN_LIMIT and memory.false_positive_rate() <= 1e-9
    # The fingerprints do range over [0, PRINTS): a narrower hash would make the bound a lie.
    values = [prints.fingerprint(str(i)) for i in range(20_000)]
    assert max(values) < prints.PRINTS and max(values) > prints.PRINTS * 0.999
    assert min(values) >= 0


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


# Size (the figures: python benchmarks/run.py --only state)


def test_5000_remembered_accounts_take_at_most_26_kb_of_json_and_20_kb_of_bytes():
    memory = Memory().remember(str(7_000_000_000_000_000_000 + 7919 * i) for i in range(5000))
    state = FollowState(HANDLE, watermark=1_700_000_000_000, base=1_699_999_999_000,
                        known=memory)
    assert len(json.dumps(state.to_json(), separators=(",", ":"))) <= 26 * 1024
    row, parts = state.to_stored()
    assert sum(map(len, parts)) <= 20 * 1024 and len(json.dumps(row)) <= 512


def test_with_20_pending_ranges_the_state_still_takes_at_most_26_kb_of_json_and_21_kb_stored():
    from connector.state.gaps import GAP_LIMIT, Gap
    from connector.state.prints import PRINTS

    memory = Memory().remember(str(7_000_000_000_000_000_000 + 7919 * i) for i in range(5000))
    now = 1_796_000_000_000
    gaps = [Gap(now - i * 10**7, now - i * 10**7 - 5 * 10**6, base=now - i * 10**7 - 6 * 10**6,
                stop_account=PRINTS - 1 - i) for i in range(GAP_LIMIT)]
    state = FollowState(HANDLE, watermark=now, base=now - 1000, known=memory, gaps=gaps,
                        watermark_account=PRINTS - 1)
    assert len(json.dumps(state.to_json(), separators=(",", ":"))) <= 26 * 1024
    row, parts = state.to_stored()
    assert sum(map(len, parts)) + len(json.dumps(row, separators=(",", ":"))) <= 21 * 1024


def test_the_memory_round_trips_exactly_in_both_forms():
    rng = random.Random(5)
    memory = Memory()
    for _ in range(120):  # polls remembering a few or many, past the bound
        memory = memory.remember(str(rng.getrandbits(63)) for _ in range(rng.choice((1, 7, 90))))
        state = FollowState(HANDLE, known=memory)
        for again in (FollowState.from_json(state.to_json()).known,
                      FollowState.from_stored(*state.to_stored()).known):
            assert again._all == memory._all and again.legacy == memory.legacy
            assert again.known_bytes() == memory.known_bytes()
            assert again.recent_texts() == memory.recent_texts()


def test_the_newest_remembered_and_those_just_seen_stay_past_the_bound():
    keys = [f"old-{i}" for i in range(KNOWN_LIMIT)]
    seen = keys[:300]  # accounts on the pages a poll has just read
    memory = Memory().remember(keys, keep=seen)
    for poll in range(40):
        new = [f"new-{poll}-{i}" for i in range(25)]
        memory = memory.remember(new, keep=seen)
        assert all(k in memory for k in new) and all(k in memory for k in seen)
        assert len(memory) <= KNOWN_LIMIT


def test_past_the_bound_follows_of_a_range_read_to_its_end_are_not_taken_in():
    # A poll whose budget went to a pending range reads no newest page: the accounts on it
    # are not among those it has just seen, and the memory used to forget any held account
    # as likely as the next, those among them: the next poll's top walk, which stops on that
    # page, then took one for new (issue 22's scheduling benchmark: 1 follow of 991,463
    # delivered twice under its tightest budget). What such a range found is now forgotten
    # first, or rather not taken in: no later read needs it.
    memory = Memory().remember(f"old-{i}" for i in range(KNOWN_LIMIT))
    older = [f"old-{i}" for i in range(KNOWN_LIMIT) if f"old-{i}" in memory]
    assert memory.forgets and len(older) > KNOWN_LIMIT - 40
    for poll in range(8):
        closed = [f"range-{poll}-{i}" for i in range(30)]  # a range read to its end
        memory = memory.remember(closed, keep=closed, spare=closed)
        assert len(memory) <= KNOWN_LIMIT
    assert all(k in memory for k in older)
    without = Memory().remember(f"old-{i}" for i in range(KNOWN_LIMIT))
    for poll in range(8):
        closed = [f"range-{poll}-{i}" for i in range(30)]
        without = without.remember(closed, keep=closed)
    assert sum(k not in without for k in older) >= 200  # what it forgot before
