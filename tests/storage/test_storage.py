"""The storage contract, the same for SQLite and PostgreSQL: versioned saves, states kept as a
small row plus one row per part of the trigger's memory (as bytes), poll leases, outbox
claims, workers that die, and schema migrations."""

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
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.errors import ConfigurationError, StateError
from connector.state.followed import FollowState as TriggerState
from connector.state.memory import Memory
from connector.storage import EventClaim, Lease, Saved, StateConflict, open_database
from connector.storage.database import digest, pack_part, plan_parts, unpack_part
from tests.support import ROOT, raw_sql, run_cli

KEY = "new_account_followed:alice"


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


def part_numbers(db: str) -> list[int]:
    return [r[0] for r in raw_sql(db, "SELECT n FROM state_part WHERE key=? ORDER BY n",
                                  (KEY,))]


# --------------------------------------------------------------------------- states


def test_a_state_comes_back_as_saved_with_its_version(store):
    assert store.read_state(KEY).version == 0 and store.load_state(KEY) is None
    state = state_with(range(3000))
    store.save(KEY, state, expect=0)
    got = store.read_state(KEY)
    assert got.state == state and got.version == 1
    assert TriggerState.from_json(got.state).known.__len__() == 3000


def test_a_save_writes_only_the_parts_that_changed(store, db):
    from connector.state.memory import RECENT

    memory = Memory().remember(map(str, range(5000)))  # full: a held set and a recent part

    def state(m):
        return TriggerState("alice", watermark=1, known=m).to_json()

    store.save(KEY, state(memory))
    before = part_numbers(db)
    assert len(before) == 1
    # A poll that remembers a few changes only the recent parts, kept in the state's own row:
    # no part row is written.
    for new in (["new-1"], ["new-2", "new-3"]):
        memory = memory.remember(new)
        store.save(KEY, state(memory))
        assert part_numbers(db) == before
    # Once in RECENT remembered, the oldest recent part goes into the held set: rewritten.
    memory = memory.remember(f"more-{i}" for i in range(RECENT))
    store.save(KEY, state(memory))
    after = part_numbers(db)
    assert len(after) == 1 and after[0] > before[0]
    assert store.load_state(KEY) == state(memory)


def stored_parts(db: str) -> list[str | bytes]:
    """The `known` rows of KEY as the database holds them, newest first."""
    # SQLite keeps text or bytes in one column; PostgreSQL in two, one of them NULL.
    columns = "text, data" if db.startswith("postgresql://") else "text, NULL"
    rows = raw_sql(db, f"SELECT {columns} FROM state_part WHERE key=? ORDER BY n DESC", (KEY,))
    return [t if d is None else bytes(d) for t, d in rows]


def test_both_keep_the_memory_as_the_bytes_its_base85_encodes(store, db):
    state = state_with(range(5000))
    store.save(KEY, state)
    stored = stored_parts(db)
    assert [type(p) for p in stored] == [bytes]
    assert [base64.b85encode(p).decode() for p in stored] == state["known"]
    assert sum(map(len, stored)) == 0.8 * sum(map(len, state["known"]))
    assert store.load_state(KEY) == state


ODD_ITEMS = ["s:MS4wLjABAAAA", "u:büsy", "7234567890123456789", "~~~~~", "0", "abcd", "",
             "d:" + "f" * 64, "x" * 4000]


def test_items_that_are_not_canonical_base85_are_kept_as_text(store, db):
    state = {"v": 1, "handle": "alice", "watermark": 5, "known": ODD_ITEMS, "gaps": []}
    store.save(KEY, state)
    assert store.load_state(KEY) == state
    for item, kept in zip(ODD_ITEMS, stored_parts(db), strict=True):
        assert kept == item or base64.b85encode(kept).decode() == item


B85 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~"


@settings(max_examples=3000, deadline=None)
@given(st.text(B85, max_size=23) | st.text(max_size=12))
def test_any_item_comes_back_exactly_as_it_was_packed(item):
    packed = pack_part(item)
    assert unpack_part(packed) == item
    if isinstance(packed, bytes):
        assert len(packed) < len(item) or item == ""


def test_the_plan_keeps_stored_segments_in_order_and_replaces_the_rest():
    stored = {digest("old"): 1, digest("mid"): 2, digest("top"): 3}
    plan = plan_parts(["new", "top2", "mid", "old"], stored)
    assert [(n, t) for n, _, t in plan.insert] == [(4, "top2"), (5, "new")]
    assert plan.delete == [3]
    # An order that contradicts the stored numbers is rewritten rather than trusted.
    plan = plan_parts(["old", "mid"], stored)
    assert plan.delete == [1, 3] and [t for _, _, t in plan.insert] == ["old"]


def test_a_save_over_a_stale_version_is_refused_and_changes_nothing(store):
    store.save(KEY, state_with(range(10)), expect=0)
    stale = store.read_state(KEY)
    store.save(KEY, state_with(range(20)), expect=stale.version)
    event = ("e1", "alice", {"eventId": "e1"})
    with pytest.raises(StateConflict):
        store.save(KEY, state_with(range(30)), [event], expect=stale.version)
    with pytest.raises(StateConflict):
        store.save(KEY, state_with(range(30)), [event], expect=0)
    assert store.read_state(KEY).state == state_with(range(20))
    assert store.events() == []


def test_two_polls_saving_the_same_version_at_once_commit_exactly_one(db):
    with open_database(db) as first:
        first.save(KEY, state_with(range(5)))
        version = first.read_state(KEY).version

    def save(i):
        with open_database(db) as database:
            try:
                database.save(KEY, state_with(range(6 + i)), [(f"e{i}", "alice", {})],
                              expect=version)
                return True
            except StateConflict:
                return False

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(save, range(6)))
    assert results.count(True) == 1
    with open_database(db) as database:
        assert len(database.events()) == 1


def test_a_state_row_with_its_known_list_inline_still_loads(store, db):
    # How the first release stored states: the whole JSON in one row.
    legacy = {"v": 1, "handle": "alice", "watermark": 5, "known": ["111", "222"], "gaps": []}
    raw_sql(db, "INSERT INTO trigger_state (key, state, updated_at) VALUES (?, ?, 0)",
            (KEY, json.dumps(legacy)))
    got = store.read_state(KEY)
    assert got.state == legacy and got.version == 1
    store.save(KEY, state_with(range(100)), expect=1)
    assert len(part_numbers(db)) == 1
    assert "known" not in json.loads(raw_sql(db, "SELECT state FROM trigger_state")[0][0])


def test_a_state_missing_some_of_its_rows_is_an_error_not_a_smaller_memory(store, db):
    store.save(KEY, state_with(range(2000)))
    raw_sql(db, "DELETE FROM state_part WHERE n=(SELECT min(n) FROM state_part)")
    with pytest.raises(StateError, match="damaged"):
        store.load_state(KEY)


# --------------------------------------------------------------------------- poll leases


def test_a_handle_is_leased_to_one_worker_until_it_is_polled_and_then_not_due(store):
    first = store.claim_polls([KEY, "k2"], "w1", lease_for=60)
    assert sorted(first.granted) == sorted([KEY, "k2"])
    second = store.claim_polls([KEY, "k2"], "w2", lease_for=60)
    assert second.granted == [] and 55 < second.busy[KEY] <= 60
    store.save(KEY, state_with(range(3)), lease=Lease("w1", next_in=100))
    store.release_poll("k2", "w1")  # abandoned: due again at once
    third = store.claim_polls([KEY, "k2"], "w2", lease_for=60)
    assert third.granted == ["k2"] and 95 < third.later[KEY] <= 100


def test_a_once_cycle_counts_handles_polled_since_it_began_as_done(store):
    store.claim_polls([KEY], "w1", lease_for=60)
    store.save(KEY, state_with(range(3)), lease=Lease("w1", next_in=None))
    # A cycle that began before that poll: done. One that began only now: due again.
    assert KEY in store.claim_polls([KEY], "w2", lease_for=60, polled_within=30).later
    time.sleep(0.05)
    assert store.claim_polls([KEY], "w2", lease_for=60, polled_within=0.01).granted == [KEY]


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
    db.save("k", {}, [("e1", "alice", {"eventId": "e1"})])
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


def test_one_handles_due_events_are_found_by_its_index_not_a_scan_of_the_backlog(tmp_path):
    """`watch` asks for one handle's due events after each poll: with a backlog of thousands
    that must stay a lookup, not a walk over every due event."""
    with open_database(tmp_path / "s.db") as database:
        database.save(KEY, {}, [(f"e{i}", f"h{i}", {"eventId": f"e{i}"}) for i in range(300)])
        statements: list[str] = []
        database._db.set_trace_callback(statements.append)
        try:
            assert [e.event_id for e in database.due(time.time(), handles=["h7"])] == ["e7"]
        finally:
            database._db.set_trace_callback(None)
        query = next(s for s in statements if s.lstrip().startswith("SELECT") and "o WHERE" in s)
        plan = " | ".join(r[3] for r in database._db.execute("EXPLAIN QUERY PLAN " + query))
    assert plan.startswith("SEARCH o USING INDEX outbox_handle"), plan


def test_an_event_is_claimed_by_one_deliverer_at_a_time(store):
    events = [(f"e{i}", "alice", {"eventId": f"e{i}"}) for i in range(3)]
    store.save(KEY, {}, [*events, ("b1", "bob", {"eventId": "b1"})])
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
    assert store.save(KEY, {}, first, claim=EventClaim("w1", 60)) == Saved(2, True)
    now = time.time() + 1
    # The saver's: no other deliverer gets them, and no one is shown them.
    assert store.claim_events(["e0", "e1"], "d2", claim_for=60) == []
    assert store.due(now) == []
    # Behind events still in the outbox, new ones are queued unclaimed, for the usual pass.
    assert store.save(KEY, {}, [("e2", "alice", {"eventId": "e2"})],
                      claim=EventClaim("w1", 60)) == Saved(1, False)
    store.release_events(["e0", "e1"], "w1")
    assert [e.event_id for e in store.due(now)] == ["e0", "e1", "e2"]
    assert store.claim_events(["e0", "e1", "e2"], "d2", claim_for=60) == ["e0", "e1", "e2"]


def test_a_save_that_queues_fewer_events_than_it_was_given_claims_none_of_them(store):
    # An id given twice is queued once: the claim is all or nothing, so none is left
    # claimed for a delivery that would not know of it.
    twice = [("c0", "carol", {"eventId": "c0"}), ("c0", "carol", {"eventId": "c0"})]
    assert store.save(KEY, {}, twice, claim=EventClaim("w1", 60)) == Saved(1, False)
    assert [e.event_id for e in store.due(time.time() + 1)] == ["c0"]
    assert store.claim_events(["c0"], "d2", claim_for=60) == ["c0"]


def test_a_claim_that_runs_out_lets_another_deliverer_in(store):
    store.save(KEY, {}, [("e1", "alice", {"eventId": "e1"})])
    assert store.claim_events(["e1"], "d1", claim_for=0.2) == ["e1"]
    assert store.claim_events(["e1"], "d2", claim_for=60) == []
    time.sleep(0.3)
    assert store.claim_events(["e1"], "d2", claim_for=60) == ["e1"]


# --------------------------------------------------------------------------- schema


def test_a_database_from_a_newer_version_is_refused_by_name(db):
    open_database(db).close()
    raw_sql(db, "UPDATE meta SET value='99' WHERE name='schema'")
    with pytest.raises(StateError, match=r"newer version .*schema 99"):
        open_database(db)


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


def test_a_sqlite_file_of_the_first_release_migrates_and_keeps_everything(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    from connector.storage.sqlite import MIGRATIONS

    old.executescript(MIGRATIONS[1])
    old.execute("INSERT INTO meta VALUES ('schema', '1')")
    v1 = {"v": 1, "handle": "alice", "watermark": 9, "known": [str(i) for i in range(5000)],
          "gaps": []}
    old.execute("INSERT INTO trigger_state VALUES (?, ?, 0)", (KEY, json.dumps(v1)))
    old.execute("INSERT INTO outbox (event_id, handle, payload, created_at, next_attempt_at) "
                "VALUES ('e1', 'alice', '{\"eventId\": \"e1\"}', 0, 0)")
    old.close()

    with open_database(path) as database:
        assert database.load_state(KEY) == v1
        state = TriggerState.from_json(database.load_state(KEY))
        # The newest first (the list is newest first); at capacity a few of the oldest go.
        assert 4900 <= len(state.known) <= 5000 and "0" in state.known
        assert [e.event_id for e in database.due(time.time())] == ["e1"]
        database.save(KEY, state.to_json(), expect=1)
    assert raw_sql(str(path), "SELECT value FROM meta") == [(str(schema_version(path)),)]
    assert len(part_numbers(str(path))) == 1


def test_a_sqlite_file_of_the_previous_release_keeps_its_text_parts_and_stores_bytes(tmp_path):
    """Schema 2 kept a state's segments as text; schema 3 (no table change) may keep a part as
    bytes, which a release before it could not read: it refuses the file by its version."""
    from tests.state.formats import v2_state as _v2_state

    path = tmp_path / "v2.db"
    old = sqlite3.connect(path, isolation_level=None)
    from connector.storage.sqlite import MIGRATIONS

    old.executescript(MIGRATIONS[1] + MIGRATIONS[2])
    old.execute("INSERT INTO meta VALUES ('schema', '2')")
    v2 = _v2_state()
    small = {k: v for k, v in v2.items() if k != "known"}
    old.execute("INSERT INTO trigger_state (key, state, updated_at, version, parts) VALUES "
                "(?, ?, 0, 1, ?)", (KEY, json.dumps(small), len(v2["known"])))
    for n, text in enumerate(reversed(v2["known"]), 1):
        old.execute("INSERT INTO state_part VALUES (?, ?, ?, ?)", (KEY, n, digest(text), text))
    old.close()

    with open_database(path) as database:
        assert database.load_state(KEY) == v2
        state = TriggerState.from_json(database.load_state(KEY))
        state.known = state.known.remember(f"new-{i}" for i in range(100))
        database.save(KEY, state.to_json(), expect=1)
        assert database.load_state(KEY) == state.to_json()
    assert raw_sql(str(path), "SELECT value FROM meta") == [("3",)]
    kinds = [r[0] for r in raw_sql(str(path), "SELECT typeof(text) FROM state_part")]
    assert "blob" in kinds


def schema_version(db: object) -> int:
    from connector.storage import postgres, sqlite

    return (postgres if str(db).startswith("postgresql://") else sqlite).SCHEMA_VERSION


def test_segments_stored_as_text_by_postgres_schema_1_still_load(postgres_url):
    """Schema 1 kept segments as base85 text; those rows are read as they are, and the next
    save writes only its changed part, as bytes."""
    from connector.storage.postgres import MIGRATIONS, SCHEMA

    db = postgres_url
    state = state_with(range(2500))
    raw_sql(db, f"CREATE SCHEMA {SCHEMA}")
    raw_sql(db, MIGRATIONS[1])
    raw_sql(db, "INSERT INTO meta VALUES ('schema', '1')")
    small = {k: v for k, v in state.items() if k != "known"}
    raw_sql(db, "INSERT INTO trigger_state (key, state, updated_at, version, parts) "
            "VALUES (?, ?, 0, 1, ?)", (KEY, json.dumps(small), len(state["known"])))
    for n, text in enumerate(reversed(state["known"]), 1):
        raw_sql(db, "INSERT INTO state_part (key, n, digest, text) VALUES (?, ?, ?, ?)",
                (KEY, n, digest(text), text))

    with open_database(db) as database:
        assert database.load_state(KEY) == state
        grown = TriggerState.from_json(state)
        grown.known = grown.known.remember(["new-1"])
        database.save(KEY, grown.to_json(), expect=1)
        assert database.load_state(KEY) == grown.to_json()
        assert [type(p) for p in stored_parts(db)] == [str]  # the held set, untouched
        grown.known = grown.known.remember(f"new-{i}" for i in range(2, 100))
        database.save(KEY, grown.to_json(), expect=2)
        assert database.load_state(KEY) == grown.to_json()
    assert [type(p) for p in stored_parts(db)] == [bytes]
    assert raw_sql(db, "SELECT value FROM meta WHERE name='schema'") == [
        (str(schema_version(db)),)]


def test_a_file_that_is_not_ours_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE outbox (id INTEGER, body TEXT)")
    other.close()
    with pytest.raises(StateError, match="not a tiktok-following state database"):
        open_database(path)
    assert raw_sql(str(path), "SELECT name FROM sqlite_master WHERE type='table'") == [
        ("outbox",)]


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
