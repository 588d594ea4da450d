"""Unfollows through every surface: the SQLite store and `poll --unfollows`, `invoke` with
runner-owned state, and `watch --events followed,unfollowed` to one webhook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import connector
from connector.cli import main
from connector.core.config import RetryPolicy
from connector.core.errors import InputError
from connector.core.items import identity
from connector.operations.events import event_id
from connector.storage.sqlite import SQLiteDatabase
from connector.store import state_key
from connector.watch import Backoff, Watcher
from tests.receiver import Receiver
from tests.support import API_KEY, load_state, request, run_cli, run_invoke

HANDLE = "alice"
OPERATION = "account_unfollowed"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def cli_env(monkeypatch, standin) -> list[str]:
    monkeypatch.setenv("DUMPLINGAI_API_KEY", API_KEY)
    monkeypatch.delenv("TIKTOK_FOLLOWING_WEBHOOK", raising=False)
    return ["--base-url", standin.url]


# The embedded store


def test_the_store_polls_unfollows_with_a_state_of_their_own(standin, creds, db):
    standin.add_account(HANDLE, 25)
    with connector.open_store(db) as store:
        for operation in ("new_account_followed", OPERATION):
            with store.poll(HANDLE, credentials=creds, operation=operation) as batch:
                assert batch.items == [] and batch.meta["baseline"] is True
                batch.commit()
        gone = standin.following(HANDLE)[4]
        standin.unfollow(HANDLE, gone["id"])
        with store.poll(HANDLE, credentials=creds, operation=OPERATION) as batch:
            assert [i["id"] for i in batch.items] == [gone["id"]]
            # not committed: the next poll finds it again (at least once, never lost)
        with store.poll(HANDLE, credentials=creds, operation=OPERATION) as batch:
            assert [i["id"] for i in batch.items] == [gone["id"]]
            batch.commit()
        with store.poll(HANDLE, credentials=creds, operation=OPERATION) as batch:
            assert batch.items == []
        with store.poll(HANDLE, credentials=creds) as batch:  # follows: untouched by that
            assert batch.items == []
    with SQLiteDatabase(db) as database:
        assert load_state(database, state_key(HANDLE, OPERATION))["trigger"] == OPERATION
        assert "trigger" not in load_state(database, state_key(HANDLE))


def test_the_store_refuses_an_operation_that_is_not_a_trigger(creds, db):
    with connector.open_store(db) as store, pytest.raises(InputError, match="trigger"):
        store.poll(HANDLE, credentials=creds, operation="get_tiktok_user_following")


def test_poll_unfollows_prints_each_unfollow_once_and_a_summary(standin, db):
    standin.add_account(HANDLE, 25)
    base = ["--base-url", standin.url, "poll", HANDLE, "--unfollows", "--state-db", str(db),
            "--count", "10"]
    first = run_cli(*base)
    assert first.code == 0, first.stderr
    assert first.stdout == "" and "learning the list, 0 unfollows, 3 requests" in first.stderr
    gone = standin.following(HANDLE)[12]
    standin.unfollow(HANDLE, gone["id"])
    second = run_cli(*base)
    assert [line["id"] for line in second.lines] == [gone["id"]]
    assert "1 unfollow," in second.stderr and "count 24 short by 1" in second.stderr
    third = run_cli(*base)
    assert third.stdout == "" and "0 unfollows, 1 request" in third.stderr
    assert "count 24 agreed" in third.stderr


@pytest.mark.parametrize("args, field", [
    (["--unfollows", "--first-run", "emitRecent"], "--first-run"),
    (["--reconcile-every", "3"], "--reconcile-every"),
])
def test_poll_options_for_the_other_trigger_are_refused_before_any_request(
    standin, db, args, field
):
    run = run_cli("--base-url", standin.url, "poll", HANDLE, "--state-db", str(db), *args)
    assert run.code == 2 and field in run.stderr and "Traceback" not in run.stderr
    assert standin.count_requests() == 0


# invoke, state kept by the runner


def test_invoke_keeps_unfollow_state_with_the_runner(standin, creds):
    standin.add_account(HANDLE, 12)
    req = request(OPERATION, {"handle": HANDLE, "count": 5}, creds, platform="n8n",
                  state=None)
    first = run_invoke(req)
    assert first.code == 0, first.stderr
    body = first.json
    assert body["items"] == [] and body["meta"]["baseline"] is True
    assert body["meta"]["requests"] == 3 and body["state"]["trigger"] == OPERATION
    gone = standin.following(HANDLE)[0]
    standin.unfollow(HANDLE, gone["id"])
    second = run_invoke({**req, "state": body["state"]}).json
    assert [i["uniqueId"] for i in second["items"]] == [gone["uniqueId"]]
    assert second["meta"]["requests"] == 1 and second["meta"]["unfollows"] == 1
    assert {r.body["requestSource"] for r in standin.requests} == {"N8N"}


def test_invoke_test_mode_maps_fields_and_hands_state_back_unchanged(standin, creds):
    standin.add_account(HANDLE, 12)
    state = connector.run(OPERATION, {"handle": HANDLE}, credentials=creds).state
    reply = run_invoke(request(OPERATION, {"handle": HANDLE}, creds, state=state,
                               mode="test")).json
    assert len(reply["items"]) == 3 and reply["state"] == state
    assert {"lastSeenAt", "detectedAt", "profileUrl"} <= set(reply["items"][0])


def test_invoke_refuses_the_follow_triggers_state_with_exit_2(standin, creds):
    standin.add_account(HANDLE, 12)
    follow_state = connector.run("new_account_followed", {"handle": HANDLE},
                                 credentials=creds).state
    before = standin.count_requests()
    run = run_invoke(request(OPERATION, {"handle": HANDLE}, creds, state=follow_state))
    assert run.code == 2 and run.error["type"] == "state_error"
    assert "Account Unfollowed" in run.error["message"]
    assert standin.count_requests() == before


def test_invoke_refuses_a_negative_reconcile_interval_by_name(standin, creds):
    run = run_invoke(request(OPERATION, {"handle": HANDLE, "reconcileEvery": -1}, creds))
    assert run.code == 2 and run.error["field"] == "reconcileEvery"
    assert standin.count_requests() == 0


# watch: both kinds to one webhook


def make_watcher(creds: dict, receiver: Receiver, db: Path, **kwargs: Any) -> Watcher:
    return Watcher([HANDLE], receiver.url, store=db, credentials=creds,
                   retry=RetryPolicy.no_wait(total=3), backoff=Backoff.immediate(), **kwargs)


def test_watch_delivers_follows_and_unfollows_to_one_webhook(standin, creds, receiver, db):
    standin.add_account(HANDLE, 15)
    with make_watcher(creds, receiver, db, events=("followed", "unfollowed")) as watcher:
        base = watcher.run_cycle()
        assert base.ok and base.baselined == 1 and base.requests == 2  # 15 fit one page
        gone = standin.following(HANDLE)[3]
        standin.unfollow(HANDLE, gone["id"])
        [new] = standin.follow_many(HANDLE, 1)
        summary = watcher.run_cycle()
        assert summary.ok and summary.new_follows == 1 and summary.unfollows == 1
        assert "1 new follow, 1 unfollow" in summary.line()
        followed, unfollowed = receiver.requests
        assert followed.body["item"]["id"] == new["id"] and "event" not in followed.body
        assert set(followed.body) == {"eventId", "handle", "detectedAt", "item"}  # as today
        assert unfollowed.body["event"] == "unfollowed"
        assert unfollowed.body["item"]["id"] == gone["id"]
        assert unfollowed.body["eventId"] == event_id(
            HANDLE, identity(gone), "unfollowed", unfollowed.body["item"]["lastSeenAt"])
        assert unfollowed.headers["idempotency-key"] == unfollowed.body["eventId"]
        quiet = watcher.run_cycle()
        assert quiet.ok and quiet.requests == 2 and len(receiver.requests) == 2


def test_watch_delivers_a_second_unfollow_after_a_refollow(standin, creds, receiver, db):
    standin.add_account(HANDLE, 15)
    with make_watcher(creds, receiver, db, events=("unfollowed",)) as watcher:
        watcher.run_cycle()
        user = standin.following(HANDLE)[6]
        standin.unfollow(HANDLE, user["id"])
        watcher.run_cycle()
        standin.follow(HANDLE, user)
        watcher.run_cycle()
        standin.unfollow(HANDLE, user["id"])
        last = watcher.run_cycle()
    assert last.ok and last.unfollows == 1
    assert [r.body["item"]["id"] for r in receiver] == [user["id"]] * 2
    assert len(set(receiver.event_ids())) == 2


def test_watch_defaults_to_follows_only(standin, creds, receiver, db):
    standin.add_account(HANDLE, 15)
    with make_watcher(creds, receiver, db) as watcher:
        watcher.run_cycle()
        standin.unfollow(HANDLE, standin.following(HANDLE)[0]["id"])
        summary = watcher.run_cycle()
    assert summary.ok and summary.unfollows is None and summary.requests == 1
    assert receiver.requests == []


@pytest.mark.parametrize("kwargs, field", [
    ({"events": ("followed", "renamed")}, "events"),
    ({"events": ()}, "events"),
    ({"events": ("unfollowed",), "first_run": "emitRecent"}, "firstRun"),
    ({"reconcile_every": 3}, "reconcileEvery"),
])
def test_watch_refuses_events_and_options_that_do_not_fit(creds, receiver, db, kwargs, field):
    with pytest.raises(InputError) as caught:
        make_watcher(creds, receiver, db, **kwargs)
    assert caught.value.field == field


def test_watch_once_on_the_command_line_takes_events(standin, receiver, db, cli_env, capsys):
    standin.add_account(HANDLE, 15)
    args = [*cli_env, "watch", HANDLE, "--webhook", receiver.url, "--once", "--state-db",
            str(db), "--events", "followed,unfollowed"]
    assert main(args) == 0
    standin.unfollow(HANDLE, standin.following(HANDLE)[2]["id"])
    capsys.readouterr()
    assert main(args) == 0
    assert "0 new follows, 1 unfollow" in capsys.readouterr().err
    assert [r.body["event"] for r in receiver] == ["unfollowed"]


def test_watch_send_sample_posts_one_sample_per_event_kind(receiver, cli_env, capsys):
    args = [*cli_env, "watch", "--webhook", receiver.url, "--send-sample",
            "--events", "followed,unfollowed"]
    assert main(args) == 0
    followed, unfollowed = receiver.requests
    assert "event" not in followed.body and unfollowed.body["event"] == "unfollowed"
    assert {"lastSeenAt", "detectedAt"} <= set(unfollowed.body["item"])


def test_watch_refuses_an_unknown_event_kind_on_the_command_line(cli_env, receiver, capsys):
    with pytest.raises(SystemExit) as caught:  # argparse's usage error, on one line
        main([*cli_env, "watch", HANDLE, "--webhook", receiver.url, "--once",
              "--events", "followed,blocked"])
    assert caught.value.code == 2
    assert "--events" in capsys.readouterr().err
