"""A state as a database keeps it (`to_stored`, `from_stored`): a small JSON row and its parts
as bytes, newest first, made and read without the runner JSON's text; and every way earlier
releases stored one (parts as text, states kept whole in the row) still reads."""

from __future__ import annotations

import base64

import pytest

import connector
from connector.core import b85
from connector.core.items import flatten
from connector.state.followed import FollowState
from connector.state.memory import RECENT, Memory
from connector.state.roster import Roster
from connector.state.unfollowed import UnfollowState
from tests.state.formats import HANDLE, previous_release, v1_state, v2_state


def test_the_row_is_the_runner_json_without_its_parts_and_the_parts_are_its_bytes():
    old = previous_release()
    follow = FollowState.from_json(old["followed"])
    row, parts = follow.to_stored()
    assert row == {k: v for k, v in old["followed"].items() if k != "known"}
    assert parts == [b85.decode(t) for t in old["followed"]["known"]]
    unfollow = UnfollowState.from_json(old["unfollowed"])
    row, parts = unfollow.to_stored()
    assert row == {k: v for k, v in old["unfollowed"].items() if k != "accounts"}
    assert parts == [base64.b64decode(t) for t in old["unfollowed"]["accounts"]]


class _Watch:
    """base85 calls, by the length of what they were given."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        for name in ("encode", "decode"):
            real = getattr(b85, name)

            def spy(value, real=real):
                self.sizes.append(len(value))
                return real(value)

            monkeypatch.setattr(b85, name, spy)


def test_a_poll_through_a_database_never_codes_the_memory_in_base85(monkeypatch):
    memory = Memory().remember(str(7_000_000_000_000_000_000 + i) for i in range(5000))
    row, parts = FollowState(HANDLE, watermark=5, known=memory).to_stored()
    watch = _Watch(monkeypatch)
    state = FollowState.from_stored(row, parts)
    state.known = state.known.remember(["new-1", "new-2"])
    again = state.to_stored()
    # Only the part of the newest (in the row, at most RECENT fingerprints) is base85 text.
    assert watch.sizes and max(watch.sizes) <= 5 * (RECENT * 6 + 16) // 4
    assert again[1] == parts  # the held set is handed back as the very bytes it came as


def test_a_quiet_unfollow_poll_changes_one_block():
    entries = [{"user": {"id": str(6_800_000_000_000_000_000 + i), "uniqueId": f"user{i}"},
                "stats": {}} for i in range(1000)]
    roster = Roster.of((flatten(e)["id"], flatten(e), 1_700_000_000 + i, 1) for i, e in
                       enumerate(entries))
    state = UnfollowState(HANDLE, watermark=1_700_001_000, roster=roster)
    row, before = state.to_stored()
    assert len(before) == 4
    again = UnfollowState.from_stored(row, before)
    for entry in entries[-10:]:  # the newest page, seen again
        again.roster.see(flatten(entry)["id"], flatten(entry), None, 2)
    _, after = again.to_stored()
    assert [a == b for a, b in zip(after, before, strict=True)] == [False, True, True, True]


@pytest.mark.parametrize("form", ["bytes", "text"])
def test_parts_stored_as_text_by_earlier_releases_read_as_their_bytes(form):
    # SQLite schema 2 kept a part as its base85 text; later schemas as the bytes it encodes.
    for old in (v2_state(), previous_release()["followed"]):
        row = {k: v for k, v in old.items() if k != "known"}
        parts = [b85.decode(t) if form == "bytes" else t for t in old["known"]]
        assert FollowState.from_stored(row, parts).to_json() == FollowState.from_json(
            old).to_json()


def test_version_1_ids_stored_as_rows_read_back_as_the_same_ids():
    ids = ["7000000000000000000", "7234567890123456789", "s:MS4wLjABAAAA", "u:busy"]
    # As storage keeps them: an id that is canonical base85 text as its bytes, others as text.
    stored = [b85.decode(ids[0]), *ids[1:]]
    state = FollowState.from_stored({k: v for k, v in v1_state(ids).items() if k != "known"},
                                    stored)
    assert all(i in state.known for i in ids)


@pytest.mark.parametrize("name", ["followed", "unfollowed"])
def test_a_state_kept_whole_in_its_row_loads(name):
    old = previous_release()[name]
    cls = FollowState if name == "followed" else UnfollowState
    assert cls.from_stored(old, []).to_json() == old
    with pytest.raises(connector.StateError, match="parts besides"):
        cls.from_stored(old, [b"x"])


def test_damaged_parts_are_a_state_error():
    old = previous_release()
    row, parts = FollowState.from_json(old["followed"]).to_stored()
    with pytest.raises(connector.StateError, match="does not decode"):
        FollowState.from_stored(row, [parts[0][:-1] + b"\0", *parts[1:]])
    row, parts = UnfollowState.from_json(old["unfollowed"]).to_stored()
    with pytest.raises(connector.StateError, match="'accounts' does not decode"):
        UnfollowState.from_stored(row, [parts[0][:20], *parts[1:]])
    with pytest.raises(connector.StateError, match="'known' must be"):
        FollowState.from_stored({"v": 3, "handle": HANDLE}, [1])


def test_a_roster_learnt_from_the_newest_down_keeps_the_newest_in_its_first_block():
    # A baseline reads the list newest first: its first page must still end up in the newest
    # block, the one every quiet poll changes, or each poll's save would rewrite every block.
    roster = Roster()
    for i in range(600):  # newest first
        user = {"id": str(6_800_000_000_000_000_000 + i), "uniqueId": f"user{i}"}
        roster.see(user["id"], user, 1_700_000_600 - i, 1, older=True)
    roster.see("new", {"id": "new", "uniqueId": "new"}, 1_700_000_601, 2)  # followed since
    blocks = [Roster.load([b], limit=1000) for b in roster.blocks()]
    assert [len(b) for b in blocks] == [1, 250, 250, 100] and "new" in blocks[0]
    assert "6800000000000000000" in blocks[1] and "6800000000000000599" in blocks[3]


def test_the_account_a_stop_came_from_is_kept_by_both_databases(standin, creds, any_db):
    # The re-follow history of tests/operations/test_followed.py, each poll through a store:
    # only the account of the watermark, and of a pending range's stop, kept in the
    # database's row (a JSON object; the parts are the memory alone) lets the last poll read
    # past the re-follow that ends its page in the watermark's second.
    from connector.storage.location import open_database
    from connector.store import state_key

    standin.add_account(HANDLE, 20, boundary_repeats=True)
    watermark = 1_700_000_100
    standin.follow(HANDLE, at=watermark)
    inputs = {"count": 10}

    def poll(**more) -> list[str]:
        with connector.open_store(any_db) as store, store.poll(
                HANDLE, inputs={**inputs, **more}, credentials=creds) as batch:
            batch.commit()
            return [i["id"] for i in batch.items]

    poll()
    new = standin.follow(HANDLE, at=watermark)
    again = standin.following(HANDLE)[6]
    standin.unfollow(HANDLE, again["id"])
    standin.follow(HANDLE, again, at=watermark)
    burst = standin.follow_many(HANDLE, 27)
    emitted = poll(maxPages=2)
    with open_database(any_db) as database:
        row = database.read_state(state_key(HANDLE)).row
    assert row["gaps"][0]["to"] == watermark and row["gaps"][0]["account"] > 0
    assert row["watermarkAccount"] > 0
    emitted += poll(maxPages=5)
    assert sorted(emitted) == sorted(u["id"] for u in [new, *burst])
