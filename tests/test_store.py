"""Polling without a runner: the store (SQLite and PostgreSQL), `tiktok-following poll`, and
state via invoke."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

import connector
from connector.standin import Fault
from connector.storage import STATE_DB_ENV, default_path
from connector.store import state_key
from tests.support import API_KEY, TRIGGER, load_state, raw_sql, request, run_cli, run_invoke

HANDLE = "alice"


def cli(standin, *args, stdin=None):
    return run_cli("--base-url", standin.url, *args, stdin=stdin)


@pytest.fixture
def db(any_db):
    return any_db


def test_poll_prints_new_follows_as_json_lines_and_a_summary(standin, db):
    standin.add_account(HANDLE, 30)
    first = cli(standin, "poll", HANDLE, "--state-db", db)
    assert first.code == 0, first.stderr
    assert first.stdout == "" and "baseline taken" in first.stderr
    new = standin.follow_many(HANDLE, 4)
    second = cli(standin, "poll", "@Alice", "--state-db", db)
    assert [i["id"] for i in second.lines] == [u["id"] for u in new]
    assert "4 new follows, 1 request, 10 credits" in second.stderr
    assert cli(standin, "poll", HANDLE, "--state-db", db).stdout == ""


def test_a_crash_between_fetching_and_committing_returns_the_same_items(standin, creds, db):
    standin.add_account(HANDLE, 30)
    store = connector.open_store(db)
    store.poll(HANDLE, credentials=creds).commit()
    new = standin.follow_many(HANDLE, 3)
    with store.poll(HANDLE, credentials=creds) as batch:
        assert len(batch.items) == 3
        # the process "dies" here: no commit
    again = store.poll(HANDLE, credentials=creds)
    assert [i["id"] for i in again.items] == [u["id"] for u in new]
    again.commit()
    assert store.poll(HANDLE, credentials=creds).items == []


def test_errors_mid_poll_leave_the_stored_state_untouched(standin, creds, db):
    standin.add_account(HANDLE, 30)
    store = connector.open_store(db)
    store.poll(HANDLE, credentials=creds).commit()
    before = load_state(store.database, state_key(HANDLE))
    new = standin.follow_many(HANDLE, 12)
    standin.inject(*[Fault(status=502)] * 10)
    with pytest.raises(connector.UpstreamError):
        store.poll(HANDLE, credentials=creds, retry=connector.RetryPolicy.no_wait(1))
    assert load_state(store.database, state_key(HANDLE)) == before
    standin.clear_faults()
    assert [i["id"] for i in store.poll(HANDLE, credentials=creds).items] == [u["id"] for u in new]


def test_two_polls_at_once_on_one_handle_never_emit_the_same_follow(standin, db):
    standin.add_account(HANDLE, 30)
    assert cli(standin, "poll", HANDLE, "--state-db", db).code == 0
    new = standin.follow_many(HANDLE, 7)
    standin.inject(Fault(delay=0.8), handle=HANDLE)  # the first poll holds its lock a while
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: cli(standin, "poll", HANDLE, "--state-db", db), [0, 1]))
    assert all(r.code == 0 for r in runs), [r.stderr for r in runs]
    emitted = [i["id"] for r in runs for i in r.lines]
    assert sorted(emitted) == sorted(u["id"] for u in new)


def test_two_polls_at_once_in_threads_never_emit_the_same_follow(standin, creds, db):
    standin.add_account(HANDLE, 30)
    connector.open_store(db).poll(HANDLE, credentials=creds).commit()
    new = standin.follow_many(HANDLE, 5)
    standin.inject(Fault(delay=0.3), handle=HANDLE)

    def poll(_):
        with connector.open_store(db) as store, store.poll(HANDLE, credentials=creds) as b:
            b.commit()
            return [i["id"] for i in b.items]

    with ThreadPoolExecutor(2) as pool:
        emitted = [x for got in pool.map(poll, [0, 1]) for x in got]
    assert sorted(emitted) == sorted(u["id"] for u in new)


def test_damaged_stored_state_is_an_error_and_is_left_as_is(standin, creds, db):
    standin.add_account(HANDLE, 5)
    store = connector.open_store(db)
    raw_sql(db, "INSERT INTO trigger_state (key, state, updated_at) VALUES "
                "('new_account_followed:alice', '{oops', 0)")
    with pytest.raises(connector.StateError, match="left as is"):
        store.poll(HANDLE, credentials=creds)
    assert standin.count_requests() == 0
    assert raw_sql(db, "SELECT state FROM trigger_state") == [("{oops",)]
    store.close()


def test_the_default_database_path_comes_from_platformdirs_or_the_environment(
    monkeypatch, tmp_path
):
    monkeypatch.delenv(STATE_DB_ENV, raising=False)
    assert default_path().name == "state.db" and "tiktok-following" in str(default_path())
    monkeypatch.setenv(STATE_DB_ENV, str(tmp_path / "x.db"))
    assert default_path() == tmp_path / "x.db"


def test_state_round_trips_through_invoke(standin):
    standin.add_account(HANDLE, 20)
    req = request(TRIGGER, {"handle": HANDLE}, {"apiKey": API_KEY, "baseUrl": standin.url},
                  platform="n8n")
    first = run_invoke(req)
    assert first.code == 0, first.stderr
    state = first.json["state"]
    assert state["v"] == 3
    new = standin.follow_many(HANDLE, 2)
    second = run_invoke({**req, "state": state})
    body = second.json
    assert [i["id"] for i in body["items"]] == [u["id"] for u in new]
    assert body["meta"]["requests"] == 1 and body["meta"]["creditsUsed"] == 10
    assert standin.requests[-1].body["requestSource"] == "N8N"
    assert API_KEY not in json.dumps(body["state"])


def test_corrupt_state_through_invoke_exits_2_without_a_request(standin):
    standin.add_account(HANDLE, 20)
    req = request(TRIGGER, {"handle": HANDLE}, {"apiKey": API_KEY, "baseUrl": standin.url},
                  state={"v": 7, "handle": HANDLE})
    run = run_invoke(req)
    assert run.code == 2
    assert run.error["type"] == "state_error"
    assert standin.count_requests() == 0


def test_a_quiet_unfollow_poll_writes_the_one_block_it_changed(standin, creds, db):
    # The unfollow state's roster blocks are parts of their own: its newest page seen again
    # changes the newest block, and a commit writes that row alone, not the whole roster.
    standin.add_account(HANDLE, 600)
    key = state_key(HANDLE, "account_unfollowed")

    def part_rows() -> list[tuple[int, bytes]]:
        return [(n, bytes(d)) for n, d in raw_sql(
            db, "SELECT n, digest FROM state_part WHERE key=? ORDER BY n", (key,))]

    with connector.open_store(db) as store:
        for _ in range(2):
            with store.poll(HANDLE, inputs={"count": 50, "maxPages": 20}, credentials=creds,
                            operation="account_unfollowed") as batch:
                assert batch.items == []
                batch.commit()
            if _ == 0:
                before = part_rows()
    after = part_rows()
    assert len(before) == len(after) == 3  # 600 accounts: blocks of 250, 250 and 100
    assert before[:2] == after[:2] and before[2] != after[2]  # numbered oldest first
