"""The storage contract, the same for SQLite and PostgreSQL: versioned saves, states kept as a
small JSON row plus binary parts (a save writing only the parts that changed), poll leases,
outbox claims, workers that die, and schema migrations. How a trigger's state is split into a
row and parts is the state's own (tests/state/)."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from connector.core.errors import ConfigurationError, StateError
from connector.state.followed import FollowState as TriggerState
from connector.state.memory import Memory
from connector.storage import (
    Backlog,
    EventClaim,
    Lease,
    Saved,
    Snapshot,
    StateConflict,
    open_database,
)
from connector.storage.parts import digest, plan_parts
from connector.storage.sqlite import SQLiteDialect
from tests.support import ROOT, load_state, raw_sql, run_cli

KEY = "new_account_followed:alice"
ROW = {"handle": "alice", "watermark": 5}


@pytest.fixture
def db(any_db):
    return any_db


@pytest.fixture
def store(db):
    with open_database(db) as database:
        yield database


def state_with(ids: range) -> dict:
    """The trigger's own state for alice, remembering these ids."""
    return TriggerState("alice", watermark=1_700_000_000, known=Memory().remember(
        map(str, ids))).to_json()


def save_state(database, state: dict, **kwargs) -> None:
    """Save a trigger state as a poll's commit does."""
    database.save(KEY, *TriggerState.from_json(state).to_stored(), **kwargs)


def part_numbers(db: str) -> list[int]:
    return [r[0] for r in raw_sql(db, "SELECT n FROM state_part WHERE key=? ORDER BY n",
                                  (KEY,))]


def stored_parts(db: str) -> list[str | bytes]:
    """The part rows of KEY as the database holds them, newest first."""
    # SQLite keeps text or bytes in one column; PostgreSQL in two, one of them NULL.
    columns = "text, data" if db.startswith("postgresql://") else "text, NULL"
    rows = raw_sql(db, f"SELECT {columns} FROM state_part WHERE key=? ORDER BY n DESC", (KEY,))
    return [t if d is None else bytes(d) for t, d in rows]


# --------------------------------------------------------------------------- states


def test_a_state_comes_back_as_saved_with_its_version(store):
    assert store.read_state(KEY) == Snapshot(None, [], 0)
    parts = [b"\x00newest" * 300, b"", b"oldest\xff"]
    store.save(KEY, ROW, parts, expect=0)
    assert store.read_state(KEY) == Snapshot(ROW, parts, 1)
    store.save(KEY, {"n": 2}, expect=1)
    assert store.read_state(KEY) == Snapshot({"n": 2}, [], 2)


def test_parts_are_kept_as_bytes_and_come_back_as_bytes(store, db):
    parts = [bytes(range(256)) * 80, b"\x00"]
    store.save(KEY, ROW, parts)
    assert stored_parts(db) == parts
    back = store.read_state(KEY).parts
    assert back == parts and all(type(p) is bytes for p in back)


def test_a_part_is_bytes_not_text(store):
    with pytest.raises(TypeError, match="parts are bytes, not str"):
        store.save(KEY, ROW, ["AAAA"])
    assert store.read_state(KEY).version == 0


def test_a_save_writes_only_the_parts_that_changed(store, db):
    old, mid = b"old" * 1000, b"mid" * 1000
    store.save(KEY, ROW, [mid, old])
    first = part_numbers(db)
    assert len(first) == 2
    # A new newest part: written alone, the others kept as they are.
    store.save(KEY, ROW, [b"new", mid, old])
    assert part_numbers(db) == [*first, first[-1] + 1]
    # The same parts again: nothing written.
    store.save(KEY, {"n": 3}, [b"new", mid, old])
    assert part_numbers(db) == [*first, first[-1] + 1]
    # One gone, one changed: the gone one deleted, the changed one written.
    store.save(KEY, ROW, [b"newer", mid])
    assert part_numbers(db) == [first[1], first[-1] + 2]
    assert store.read_state(KEY).parts == [b"newer", mid]
    store.save(KEY, ROW)
    assert part_numbers(db) == [] and store.read_state(KEY).parts == []


def test_the_plan_keeps_stored_parts_in_order_and_replaces_the_rest():
    stored = {digest(b"old"): 1, digest(b"mid"): 2, digest(b"top"): 3}
    plan = plan_parts([b"new", b"top2", b"mid", b"old"], stored)
    assert [(n, p) for n, _, p in plan.insert] == [(4, b"top2"), (5, b"new")]
    assert plan.delete == [3]
    # An order that contradicts the stored numbers is rewritten rather than trusted.
    plan = plan_parts([b"old", b"mid"], stored)
    assert plan.delete == [1, 3] and [p for _, _, p in plan.insert] == [b"old"]


def test_parts_written_as_text_by_earlier_releases_come_back_as_text(store, db):
    store.save(KEY, ROW, [b"new"], expect=0)
    # An older part, as releases before kept them: base85 text.
    raw_sql(db, "INSERT INTO state_part (key, n, digest, text) VALUES (?, 0, ?, ?)",
            (KEY, digest(b"x"), "VPRom"))
    raw_sql(db, "UPDATE trigger_state SET parts = 2")
    assert store.read_state(KEY) == Snapshot(ROW, [b"new", "VPRom"], 1)


def test_a_save_over_a_stale_version_is_refused_and_changes_nothing(store):
    store.save(KEY, ROW, [b"a"], expect=0)
    stale = store.read_state(KEY)
    store.save(KEY, {"n": 2}, [b"b", b"a"], expect=stale.version)
    event = ("e1", "alice", {"eventId": "e1"})
    with pytest.raises(StateConflict):
        store.save(KEY, {"n": 3}, [b"c"], [event], expect=stale.version)
    with pytest.raises(StateConflict):
        store.save(KEY, {"n": 3}, [b"c"], [event], expect=0)
    assert store.read_state(KEY) == Snapshot({"n": 2}, [b"b", b"a"], 2)
    assert store.events() == []


def test_two_polls_saving_the_same_version_at_once_commit_exactly_one(db):
    with open_database(db) as first:
        first.save(KEY, ROW, [b"0"])
        version = first.read_state(KEY).version

    def save(i):
        with open_database(db) as database:
            try:
                database.save(KEY, {"n": i}, [str(i).encode(), b"0"],
                              [(f"e{i}", "alice", {})], expect=version)
                return True
            except StateConflict:
                return False

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(save, range(6)))
    assert results.count(True) == 1
    with open_database(db) as database:
        assert len(database.events()) == 1
        (winner,) = [i for i, won in enumerate(results) if won]
        assert database.read_state(KEY).parts == [str(winner).encode(), b"0"]


def test_two_first_saves_at_once_commit_exactly_one(db):
    def save(i):
        with open_database(db) as database:
            try:
                database.save(KEY, {"n": i}, [str(i).encode()], [(f"e{i}", "alice", {})])
                return True
            except StateConflict:
                return False

    open_database(db).close()
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(save, range(6)))
    with open_database(db) as database:
        # Without `expect` each save may stand in turn; none is lost half-way.
        state = database.read_state(KEY)
        assert state.version == results.count(True) >= 1
        assert state.parts == [str(state.row["n"]).encode()]
        assert len(database.events()) == results.count(True)


def test_a_state_row_saved_whole_comes_back_whole(store, db):
    # How the first release stored states: the whole JSON in one row, no parts.
    legacy = {"v": 1, "handle": "alice", "watermark": 5, "known": ["111", "222"], "gaps": []}
    raw_sql(db, "INSERT INTO trigger_state (key, state, updated_at) VALUES (?, ?, 0)",
            (KEY, json.dumps(legacy)))
    assert store.read_state(KEY) == Snapshot(legacy, [], 1)
    save_state(store, state_with(range(100)), expect=1)
    assert len(part_numbers(db)) == 1
    assert "known" not in json.loads(raw_sql(db, "SELECT state FROM trigger_state")[0][0])


def test_a_state_missing_some_of_its_rows_is_an_error_not_a_smaller_state(store, db):
    store.save(KEY, ROW, [b"new", b"old"])
    raw_sql(db, "DELETE FROM state_part WHERE n=(SELECT min(n) FROM state_part)")
    with pytest.raises(StateError, match="damaged"):
        store.read_state(KEY)


def test_a_state_row_that_is_not_json_is_an_error(store, db):
    store.save(KEY, ROW)
    raw_sql(db, "UPDATE trigger_state SET state = '{\"handle\": '")
    with pytest.raises(StateError, match=f"stored state for {KEY} .* is damaged"):
        store.read_state(KEY)


# --------------------------------------------------------------------------- the trigger's state


def test_the_trigger_state_comes_back_as_it_was(store):
    state = state_with(range(3000))
    save_state(store, state, expect=0)
    got = store.read_state(KEY)
    assert load_state(store, KEY) == state and got.version == 1
    assert len(TriggerState.from_json(load_state(store, KEY)).known) == 3000


def test_a_poll_that_remembers_a_few_writes_no_part_row(store, db):
    from connector.state.memory import RECENT

    memory = Memory().remember(map(str, range(5000)))  # full: a held set and a recent part

    def state(m):
        return TriggerState("alice", watermark=1, known=m).to_json()

    save_state(store, state(memory))
    before = part_numbers(db)
    assert len(before) == 1
    # A poll that remembers a few changes only the recent parts, kept in the state's own row:
    # no part row is written.
    for new in (["new-1"], ["new-2", "new-3"]):
        memory = memory.remember(new)
        save_state(store, state(memory))
        assert part_numbers(db) == before
    # Once in RECENT remembered, the oldest recent part goes into the held set: rewritten.
    memory = memory.remember(f"more-{i}" for i in range(RECENT))
    save_state(store, state(memory))
    after = part_numbers(db)
    assert len(after) == 1 and after[0] > before[0]
    assert load_state(store, KEY) == state(memory)


# --------------------------------------------------------------------------- poll leases


def test_a_handle_is_leased_to_one_worker_until_it_is_polled_and_then_not_due(store):
    first = store.claim_polls([KEY, "k2"], "w1", lease_for=60)
    assert sorted(first.granted) == sorted([KEY, "k2"])
    second = store.claim_polls([KEY, "k2"], "w2", lease_for=60)
    assert second.granted == [] and 55 < second.busy[KEY] <= 60
    save_state(store, state_with(range(3)), lease=Lease("w1", next_in=100))
    store.release_poll("k2", Lease("w1", polled=False))  # abandoned: due again at once
    third = store.claim_polls([KEY, "k2"], "w2", lease_for=60)
    assert third.granted == ["k2"] and 95 < third.later[KEY] <= 100


def test_a_once_cycle_counts_handles_polled_since_it_began_as_done(store):
    store.claim_polls([KEY], "w1", lease_for=60)
    save_state(store, state_with(range(3)), lease=Lease("w1", next_in=None))
    # A cycle that began before that poll: done. One that began only now: due again.
    assert KEY in store.claim_polls([KEY], "w2", lease_for=60, polled_within=30).later
    time.sleep(0.05)
    assert store.claim_polls([KEY], "w2", lease_for=60, polled_within=0.01).granted == [KEY]


def test_a_once_cycle_that_began_just_after_a_poll_polls_it_again(store):
    """Lease times are kept to the microsecond: a `--once` cycle that began a moment after a
    poll (within the same millisecond) must not count that poll as its own."""
    for _ in range(20):
        store.claim_polls([KEY], "w1", lease_for=60)
        save_state(store, state_with(range(3)), lease=Lease("w1", next_in=None))
        began = time.time()
        claim = store.claim_polls([KEY], "w2", lease_for=60, polled_within=time.time() - began)
        assert claim.granted == [KEY], claim
        store.release_poll(KEY, Lease("w2", polled=False))


def test_a_lease_that_runs_out_is_taken_over(store):
    assert store.claim_polls([KEY], "w1", lease_for=0.2).granted == [KEY]
    assert store.claim_polls([KEY], "w2", lease_for=60).granted == []
    time.sleep(0.3)
    assert store.claim_polls([KEY], "w2", lease_for=60).granted == [KEY]


CHILD = """
import sys, time
from connector.storage import open_database
db = open_database(sys.argv[1])
with db.worker("doomed"):
    db.claim_polls(["h1"], "doomed", lease_for=600)
    db.save("k", {}, events=[("e1", "alice", {"eventId": "e1"})])
    assert db.claim_events(["e1"], "doomed", claim_for=600) == ["e1"]
    print("ready", flush=True)
    time.sleep(60)
"""


@pytest.mark.slow
def test_the_leases_and_claims_of_a_killed_worker_end_at_once(store, db):
    child = subprocess.Popen([sys.executable, "-c", CHILD, db], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        # Alive: its lease and its claim hold.
        assert store.claim_polls(["h1"], "w2", lease_for=60).granted == []
        assert store.due(time.time()) == []
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        deadline = time.monotonic() + 5
        while not store.claim_polls(["h1"], "w2", lease_for=60).granted:
            assert time.monotonic() < deadline, "the dead worker's lease was not taken over"
            time.sleep(0.05)
        assert [e.event_id for e in store.due(time.time())] == ["e1"]
        assert store.claim_events(["e1"], "w2", claim_for=60) == ["e1"]
    finally:
        child.kill()
        child.wait()


# --------------------------------------------------------------------------- outbox claims


def query_plan(tmp_path, call, statement: str) -> str:
    """SQLite's plan for the statement containing `statement` that `call(database)` runs,
    over a backlog of 300 events of as many handles."""
    with open_database(tmp_path / "s.db") as database:
        database.save(KEY, {}, events=[(f"e{i}", f"h{i}", {"eventId": f"e{i}"})
                                       for i in range(300)])
        statements: list[str] = []
        database._db.set_trace_callback(statements.append)
        try:
            call(database)
        finally:
            database._db.set_trace_callback(None)
        query = next(s for s in statements if statement in s)
        return " | ".join(r[3] for r in database._db.execute("EXPLAIN QUERY PLAN " + query))


def test_one_handles_due_events_are_found_by_its_index_not_a_scan_of_the_backlog(tmp_path):
    """`watch` asks for one handle's due events after each poll: with a backlog of thousands
    that must stay a lookup, not a walk over every due event."""
    def due(database):
        assert [e.event_id for e in database.due(time.time(), handles=["h7"])] == ["e7"]

    plan = query_plan(tmp_path, due, "SELECT event_id, handle")
    assert plan.startswith("SEARCH o USING INDEX outbox_handle"), plan


def test_events_claimed_by_id_are_looked_up_by_id_not_found_in_a_scan_of_the_backlog(tmp_path):
    def claim(database):
        assert database.claim_events(["e7", "e8"], "d1", claim_for=60) == ["e7", "e8"]

    # The statement that picks them: an UPDATE ... RETURNING, or (SQLite before 3.35) a read.
    plan = query_plan(tmp_path, claim, "next_attempt_at <=")
    assert plan.startswith("SEARCH outbox USING INDEX sqlite_autoindex_outbox_1"), plan


def test_an_event_is_claimed_by_one_deliverer_at_a_time(store):
    events = [(f"e{i}", "alice", {"eventId": f"e{i}"}) for i in range(3)]
    store.save(KEY, {}, events=[*events, ("b1", "bob", {"eventId": "b1"})])
    now = time.time() + 1
    assert store.claim_events(["e0", "e1"], "d1", claim_for=60) == ["e0", "e1"]
    assert store.claim_events(["e0", "e1", "e2"], "d2", claim_for=60) == ["e2"]
    # A handle with claimed events is that deliverer's: no one else is shown its events.
    assert [e.event_id for e in store.due(now)] == ["b1"]
    store.release_events(["e2"], "d2")
    store.delivered("e0")
    store.failed("e1", "HTTP 500", retry_at=0, park=False)
    assert [e.event_id for e in store.due(now)] == ["e1", "e2", "b1"]
    assert store.claim_events(["e1"], "d2", claim_for=60) == ["e1"]
    assert store.backlog().pending == 3


def test_a_save_claims_the_events_it_queues_when_they_are_their_handles_only_ones(store):
    first = [(f"e{i}", "alice", {"eventId": f"e{i}"}) for i in range(2)]
    assert store.save(KEY, {}, events=first, claim=EventClaim("w1", 60)) == Saved(2, True)
    now = time.time() + 1
    # The saver's: no other deliverer gets them, and no one is shown them.
    assert store.claim_events(["e0", "e1"], "d2", claim_for=60) == []
    assert store.due(now) == []
    # Behind events still in the outbox, new ones are queued unclaimed, for the usual pass.
    assert store.save(KEY, {}, events=[("e2", "alice", {"eventId": "e2"})],
                      claim=EventClaim("w1", 60)) == Saved(1, False)
    store.release_events(["e0", "e1"], "w1")
    assert [e.event_id for e in store.due(now)] == ["e0", "e1", "e2"]
    assert store.claim_events(["e0", "e1", "e2"], "d2", claim_for=60) == ["e0", "e1", "e2"]


def test_a_save_that_queues_fewer_events_than_it_was_given_claims_none_of_them(store):
    # An id given twice is queued once: the claim is all or nothing, so none is left
    # claimed for a delivery that would not know of it.
    twice = [("c0", "carol", {"eventId": "c0"}), ("c0", "carol", {"eventId": "c0"})]
    assert store.save(KEY, {}, events=twice, claim=EventClaim("w1", 60)) == Saved(1, False)
    assert [e.event_id for e in store.due(time.time() + 1)] == ["c0"]
    assert store.claim_events(["c0"], "d2", claim_for=60) == ["c0"]


def test_a_claim_that_runs_out_lets_another_deliverer_in(store):
    store.save(KEY, {}, events=[("e1", "alice", {"eventId": "e1"})])
    assert store.claim_events(["e1"], "d1", claim_for=0.2) == ["e1"]
    assert store.claim_events(["e1"], "d2", claim_for=60) == []
    time.sleep(0.3)
    assert store.claim_events(["e1"], "d2", claim_for=60) == ["e1"]


@pytest.mark.parametrize("scenario", [
    test_a_handle_is_leased_to_one_worker_until_it_is_polled_and_then_not_due,
    test_a_lease_that_runs_out_is_taken_over,
    test_an_event_is_claimed_by_one_deliverer_at_a_time,
    test_a_save_claims_the_events_it_queues_when_they_are_their_handles_only_ones,
    test_a_claim_that_runs_out_lets_another_deliverer_in,
], ids=lambda scenario: scenario.__name__[5:])
def test_claims_are_the_same_with_a_sqlite_older_than_returning(scenario, tmp_path,
                                                                 monkeypatch):
    """Where SQLite has no RETURNING (before 3.35), a claim reads the rows, then takes them."""
    monkeypatch.setattr(SQLiteDialect, "returning", False)
    statements: list[str] = []
    with open_database(tmp_path / "old.db") as database:
        database._db.set_trace_callback(statements.append)
        scenario(database)
    assert statements and not any("RETURNING" in s for s in statements)


def test_the_outbox_counts_lists_requeues_and_discards_by_handle_and_by_id(store):
    events = [(f"a{i}", "alice", {"eventId": f"a{i}"}) for i in range(3)]
    store.save(KEY, {}, events=[*events, ("b0", "bob", {"eventId": "b0"})])
    later = time.time() + 3600
    store.failed("a0", "HTTP 500 " + "x" * 600, retry_at=later, park=True)
    store.failed("a1", "HTTP 500", retry_at=later, park=False)
    assert store.backlog() == Backlog(3, 1, store.events(parked=False)[1].next_attempt_at)
    assert store.backlog(["bob"]).pending == 1 and store.backlog(["nobody"]) == Backlog(0, 0, None)
    parked = store.events(parked=True)
    assert [e.event_id for e in parked] == ["a0"] and parked[0].attempts == 1
    assert parked[0].last_error == ("HTTP 500 " + "x" * 600)[:500]
    assert [e.event_id for e in store.events(handles=["alice"])] == ["a0", "a1", "a2"]
    assert [e.event_id for e in store.events(parked=False, handles=["alice", "bob"])] == [
        "a1", "a2", "b0"]
    # An id given twice counts once; pending events are neither requeued (without
    # include_pending) nor ever discarded.
    assert store.requeue(["a0", "a0", "a1", "nope"]) == 1
    assert store.discard(["a0", "a1"]) == 0
    assert store.requeue(["a1", "a1"], include_pending=True) == 1
    assert [e.event_id for e in store.due(time.time() + 1)] == ["a0", "a1", "a2", "b0"]
    assert store.events(handles=["alice"])[0].attempts == 0  # requeued from parked: reset
    store.failed("a2", "HTTP 410", retry_at=0, park=True)
    store.failed("b0", "HTTP 410", retry_at=0, park=True)
    assert store.discard(["b0", "b0"]) == 1 and store.discard() == 1
    assert [e.event_id for e in store.events()] == ["a0", "a1"]
    store.delivered("a0")
    assert store.requeue(include_pending=True) == 1 and store.backlog().pending == 1


def test_workers_claiming_at_once_never_get_the_same_handle_or_event(db):
    keys = [f"k{i}" for i in range(40)]
    with open_database(db) as first:
        first.save(KEY, {}, events=[(f"e{i}", "alice", {"eventId": f"e{i}"}) for i in range(40)])

    def claim(n):
        with open_database(db) as database:
            polls = database.claim_polls(keys, f"w{n}", lease_for=60).granted
            events = database.claim_events([f"e{i}" for i in range(40)], f"w{n}", claim_for=60)
            return polls, events

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(claim, range(6)))
    polls = [k for granted, _ in results for k in granted]
    events = [e for _, got in results for e in got]
    assert sorted(polls) == sorted(keys) and sorted(events) == sorted(f"e{i}" for i in range(40))


def test_claimed_polls_are_granted_in_the_order_asked(store):
    keys = ["k3", "k1", "k2", "k1"]
    assert store.claim_polls(keys, "w1", lease_for=60).granted == ["k3", "k1", "k2"]
    store.release_poll("k1", Lease("w1", next_in=100))
    store.release_poll("k2", Lease("w1", polled=False))
    claim = store.claim_polls(keys, "w2", lease_for=60)
    assert claim.granted == ["k2"] and list(claim.busy) == ["k3"]
    assert 95 < claim.later["k1"] <= 100


# --------------------------------------------------------------------------- schema


def test_a_database_from_a_newer_version_is_refused_by_name(db):
    open_database(db).close()
    raw_sql(db, "UPDATE meta SET value='99' WHERE name='schema'")
    with pytest.raises(StateError, match=r"newer version .*schema 99"):
        open_database(db)


@pytest.mark.parametrize("junk", ["banana", "1" * 9])
def test_a_database_with_a_junk_schema_version_is_refused_by_name_and_left_alone(db, junk):
    open_database(db).close()
    raw_sql(db, "UPDATE meta SET value=? WHERE name='schema'", (junk,))
    with pytest.raises(StateError, match=r"damaged schema version .*pass another --state-db"):
        open_database(db)
    assert raw_sql(db, "SELECT value FROM meta") == [(junk,)]


def test_workers_starting_at_once_create_the_schema_once(db):
    def start(_):
        with open_database(db) as database:
            return database.read_state(KEY).version

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(start, range(8))) == [0] * 8
    assert raw_sql(db, "SELECT value FROM meta WHERE name='schema'") == [
        (str(schema_version(db)),)]


def test_processes_opening_a_new_sqlite_file_at_once_all_get_it(tmp_path):
    """Switching a new file to WAL while another process is creating its tables, SQLite
    answers "locked" at once instead of waiting: each process waits its turn instead
    (`watch --processes` starts its processes together, on a file that may not exist yet)."""
    code = ("import sys, time; from connector.storage import open_database; "
            "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
            "open_database(sys.argv[1]).close(); print('ok')")
    for attempt in range(6):
        path = str(tmp_path / f"new{attempt}.db")
        at = time.time() + 1.0  # after every interpreter has started
        # A millisecond apart: each comes while the one before is creating the tables.
        procs = [subprocess.Popen([sys.executable, "-c", code, path, str(at + n / 1000)],
                                  cwd=ROOT, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
                 for n in range(6)]
        results = [p.communicate(timeout=60) for p in procs]
        assert [out.strip() for out, _ in results] == ["ok"] * 6, [e for _, e in results]
        assert raw_sql(path, "SELECT value FROM meta WHERE name='schema'") == [
            (str(schema_version(path)),)]


def old_digest(text: str) -> bytes:
    """How releases before this one recognised a stored part: by its base85 text."""
    import hashlib

    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def test_a_sqlite_file_of_the_first_release_migrates_and_keeps_everything(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    from connector.storage.sqlite_schema import MIGRATIONS

    old.executescript(MIGRATIONS[1])
    old.execute("INSERT INTO meta VALUES ('schema', '1')")
    v1 = {"v": 1, "handle": "alice", "watermark": 9, "known": [str(i) for i in range(5000)],
          "gaps": []}
    old.execute("INSERT INTO trigger_state VALUES (?, ?, 0)", (KEY, json.dumps(v1)))
    old.execute("INSERT INTO outbox (event_id, handle, payload, created_at, next_attempt_at) "
                "VALUES ('e1', 'alice', '{\"eventId\": \"e1\"}', 0, 0)")
    old.close()

    with open_database(path) as database:
        assert database.read_state(KEY) == Snapshot(v1, [], 1)
        state = TriggerState.from_json(load_state(database, KEY))
        # The newest first (the list is newest first); at capacity a few of the oldest go.
        assert 4900 <= len(state.known) <= 5000 and "0" in state.known
        assert [e.event_id for e in database.due(time.time())] == ["e1"]
        save_state(database, state.to_json(), expect=1)
    assert raw_sql(str(path), "SELECT value FROM meta") == [(str(schema_version(path)),)]
    assert len(part_numbers(str(path))) == 1


def sqlite_file(path, schema: int, state: dict, stored: list[str | bytes]) -> None:
    """A SQLite file as the release of `schema` left it: `state` split into its row and
    `stored` (its `known` parts as that release kept them, newest first)."""
    from connector.storage.sqlite_schema import MIGRATIONS

    old = sqlite3.connect(path, isolation_level=None)
    old.executescript("".join(MIGRATIONS[n] for n in range(1, schema + 1)))
    old.execute("INSERT INTO meta VALUES ('schema', ?)", (str(schema),))
    small = {k: v for k, v in state.items() if k != "known"}
    old.execute("INSERT INTO trigger_state (key, state, updated_at, version, parts) VALUES "
                "(?, ?, 0, 1, ?)", (KEY, json.dumps(small), len(stored)))
    for n, (text, kept) in enumerate(zip(reversed(state["known"]), reversed(stored),
                                         strict=True), 1):
        old.execute("INSERT INTO state_part VALUES (?, ?, ?, ?)",
                    (KEY, n, old_digest(text), kept))
    old.close()


def test_a_sqlite_file_of_schema_2_keeps_its_text_parts_and_stores_bytes(tmp_path):
    """Schema 2 kept a state's segments as text; schema 3 (no table change) may keep a part as
    bytes, which a release before it could not read: it refuses the file by its version."""
    from tests.state.formats import v2_state as _v2_state

    path = tmp_path / "v2.db"
    v2 = _v2_state()
    sqlite_file(path, 2, v2, v2["known"])
    with open_database(path) as database:
        assert database.read_state(KEY).parts == v2["known"]  # as stored: text
        assert load_state(database, KEY) == TriggerState.from_json(v2).to_json()
        state = TriggerState.from_json(load_state(database, KEY))
        state.known = state.known.remember(f"new-{i}" for i in range(100))
        save_state(database, state.to_json(), expect=1)
        assert load_state(database, KEY) == state.to_json()
    assert raw_sql(str(path), "SELECT value FROM meta") == [(str(schema_version(path)),)]
    kinds = [r[0] for r in raw_sql(str(path), "SELECT typeof(text) FROM state_part")]
    assert kinds and set(kinds) == {"blob"}


@pytest.mark.parametrize("as_text", [False, True], ids=["bytes", "text"])
def test_a_sqlite_file_of_schema_3_keeps_its_bytes_and_text_parts(tmp_path, as_text):
    """Schema 3, as the release before this one wrote it: parts as bytes in the text column,
    any that were not canonical base85 as text, each recognised by its text's digest."""
    path = tmp_path / "v3.db"
    state = state_with(range(3000))
    [segment] = state["known"]
    kept = segment if as_text else base64.b85decode(segment)
    sqlite_file(path, 3, state, [kept])
    with open_database(path) as database:
        assert database.read_state(KEY) == Snapshot(
            {k: v for k, v in state.items() if k != "known"}, [kept], 1)
        assert load_state(database, KEY) == state
        saved = state_with(range(3100))
        save_state(database, saved, expect=1)
        assert load_state(database, KEY) == saved
    assert [type(p) for p in stored_parts(str(path))] == [bytes]
    assert raw_sql(str(path), "SELECT value FROM meta") == [(str(schema_version(path)),)]


def schema_version(db: object) -> int:
    from connector.storage import postgres_schema, sqlite_schema

    return (postgres_schema if str(db).startswith("postgresql://")
            else sqlite_schema).SCHEMA_VERSION


def postgres_database(db: str, schema: int, state: dict, stored: list[str | bytes]) -> None:
    """A PostgreSQL database as the release of `schema` left it (see sqlite_file)."""
    from connector.storage.postgres_schema import MIGRATIONS, SCHEMA

    raw_sql(db, f"CREATE SCHEMA {SCHEMA}")
    for n in range(1, schema + 1):
        raw_sql(db, MIGRATIONS[n])
    raw_sql(db, "INSERT INTO meta VALUES ('schema', ?)", (str(schema),))
    small = {k: v for k, v in state.items() if k != "known"}
    raw_sql(db, "INSERT INTO trigger_state (key, state, updated_at, version, parts) "
            "VALUES (?, ?, 0, 1, ?)", (KEY, json.dumps(small), len(stored)))
    for n, (text, kept) in enumerate(zip(reversed(state["known"]), reversed(stored),
                                         strict=True), 1):
        column = "text" if isinstance(kept, str) else "data"
        raw_sql(db, f"INSERT INTO state_part (key, n, digest, {column}) VALUES (?, ?, ?, ?)",
                (KEY, n, old_digest(text), kept))


def test_segments_stored_as_text_by_postgres_schema_1_still_load(postgres_url):
    """Schema 1 kept segments as base85 text; those rows are read as they are, and the next
    save writes its parts as bytes."""
    db = postgres_url
    state = state_with(range(2500))
    postgres_database(db, 1, state, state["known"])
    with open_database(db) as database:
        assert database.read_state(KEY).parts == state["known"]
        assert load_state(database, KEY) == state
        grown = TriggerState.from_json(state)
        grown.known = grown.known.remember(["new-1"])
        save_state(database, grown.to_json(), expect=1)
        assert load_state(database, KEY) == grown.to_json()
        # Recognised by the digest of their bytes now: the held set is written once more.
        assert [type(p) for p in stored_parts(db)] == [bytes]
        numbers = part_numbers(db)
        grown.known = grown.known.remember(["new-2"])
        save_state(database, grown.to_json(), expect=2)
        assert load_state(database, KEY) == grown.to_json()
        assert part_numbers(db) == numbers
    assert raw_sql(db, "SELECT value FROM meta WHERE name='schema'") == [
        (str(schema_version(db)),)]


def test_a_postgres_database_of_schema_2_keeps_its_bytes_and_text_parts(postgres_url):
    db = postgres_url
    state = state_with(range(3000))
    segment = state["known"][0]
    state["known"] = [segment, "u:büsy"]
    postgres_database(db, 2, state, [base64.b85decode(segment), "u:büsy"])
    with open_database(db) as database:
        # Storage gives each part back as it is stored; what they mean is the state's.
        assert database.read_state(KEY).parts == [base64.b85decode(segment), "u:büsy"]
        saved = state_with(range(3100))
        save_state(database, saved, expect=1)
        assert load_state(database, KEY) == saved
    assert [type(p) for p in stored_parts(db)] == [bytes]


def test_a_file_that_is_not_ours_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE outbox (id INTEGER, body TEXT)")
    other.close()
    with pytest.raises(StateError, match="not a tiktok-following state database"):
        open_database(path)
    assert raw_sql(str(path), "SELECT name FROM sqlite_master WHERE type='table'") == [
        ("outbox",)]



def test_a_file_of_our_schema_that_lost_a_table_is_refused_untouched(tmp_path):
    path = tmp_path / "state.db"
    open_database(path).close()
    raw_sql(str(path), "DROP TABLE budgets")
    with pytest.raises(StateError, match="its table budgets has other columns"):
        open_database(path)
    assert "budgets" not in {name for (name,) in raw_sql(
        str(path), "SELECT name FROM sqlite_master WHERE type='table'")}


def test_a_file_that_is_not_sqlite_is_refused_by_name_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is a text file, not a database\n" * 100)
    with pytest.raises(StateError) as refused:
        open_database(path)
    assert str(refused.value) == (f"{path} is not a usable SQLite database (file is not a "
                                  "database); pass another --state-db PATH")
    assert path.read_bytes() == b"this is a text file, not a database\n" * 100


# --------------------------------------------------------------------------- PostgreSQL


def test_a_postgresql_password_appears_in_no_message(postgres_server):
    secret = "hunter2-not-shown"
    url = f"postgresql://postgres:{secret}@127.0.0.1:1/nowhere"
    with pytest.raises(ConfigurationError) as err:
        open_database(url)
    assert secret not in err.value.message and "127.0.0.1:1/nowhere" in err.value.message
    run = run_cli("poll", "alice", "--state-db", url)
    assert run.code == 2 and secret not in run.stderr + run.stdout
    assert "cannot use the state database" in run.stderr
    env_run = run_cli("outbox", env={"TIKTOK_FOLLOWING_STATE_DB": url})
    assert env_run.code == 2 and secret not in env_run.stderr


def test_a_postgresql_url_shows_without_its_password(postgres_url):
    secret = "pw-kept-out"
    with_password = postgres_url.replace("postgres@", f"postgres:{secret}@")
    with open_database(with_password) as database:
        assert secret not in database.location and "postgres@" not in database.location
        assert database.location.startswith("postgresql://127.0.0.1:")


def test_postgresql_without_the_extra_says_how_to_install_it(monkeypatch):
    from connector.storage import postgres

    monkeypatch.setattr(postgres, "psycopg", None)
    # From a clone (the package is not on the package index yet), or the packages by name.
    with pytest.raises(ConfigurationError, match=r"pip install '\.\[postgres\]' in the "
                                                 r"connector's clone, or pip install"):
        open_database("postgresql://localhost/x")


def test_importing_the_storage_does_not_import_psycopg():
    script = ("import sys, connector.storage, connector.store; "
              "print('psycopg' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ}, timeout=30)
    assert out.stdout.strip() == "False", out.stderr


def test_the_storage_modules_import_one_way():
    """Records, the shared steps, each backend and open_database point one way: no module of
    storage imports, through others, itself (lazy imports count)."""
    from tests.test_layering import package_imports

    imports = package_imports()
    modules = {m for m in imports if m.startswith("connector.storage.")}
    graph = {m: imports[m] & modules - {m} for m in modules}

    def reached(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for module in graph[todo.pop()] - seen:
                seen.add(module)
                todo.append(module)
        return seen

    assert {"connector.storage.database", "connector.storage.sqlite",
            "connector.storage.postgres"} <= modules
    assert sorted(m for m in modules if m in reached(m)) == []
    # Nothing of storage imports the package itself (its __init__ imports them).
    assert [m for m in modules if "connector.storage" in imports[m]] == []
