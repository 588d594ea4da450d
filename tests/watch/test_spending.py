"""`watch` spending credits where follows happen (issue 22): a budget that is a hard cap, polls
scheduled by each handle's activity, hidden lists backed off and said once, and `status`.
Against the stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

import connector
from connector.core.budget import Budget
from connector.core.config import RetryPolicy
from connector.store import state_key
from tests.support import raw_sql, run_main


@pytest.fixture
def make_watcher(make_watcher) -> Any:
    """conftest.py's, retrying a failed request once."""
    return functools.partial(make_watcher, retry=RetryPolicy.no_wait(total=1))


def paid(standin) -> int:
    """Credits the stand-in charged: 10 for each page it served."""
    return 10 * sum(1 for r in standin.requests if r.status == 200)


# --------------------------------------------------------------------------- the budget


def test_a_poll_the_budget_cannot_pay_for_waits_and_nothing_more_is_spent(
    standin, make_watcher
):
    for handle in ("alice", "bob", "carol"):
        standin.add_account(handle, 5)
    # 200 a day: at most 20 credits at once, two requests; nothing refills within the test.
    watcher = make_watcher(["alice", "bob", "carol"], budget="200/day", concurrency=1)

    summary = watcher.run_cycle()

    assert len(summary.polled) == 1 and len(summary.waiting) == 2
    assert not summary.ok  # `--once` exits 1: not every handle was polled
    assert summary.credits == paid(standin) == 10
    assert "waiting for credits" in summary.line()
    assert "budget 200/day" in summary.line()
    # The one request's worth left is less than a poll's minimum (two): nothing more.
    again = watcher.run_cycle()
    assert again.polled == set() and len(again.waiting) == 3 and paid(standin) == 10


def test_a_running_watch_never_spends_more_than_its_budget_allows(standin, make_watcher):
    handles = [f"h{i}" for i in range(6)]
    for handle in handles:
        standin.add_account(handle, 40)  # two pages each
    budget = Budget(1200, "hour")  # 120 at once, then a third of a credit a second
    watcher = make_watcher(handles, budget=budget, schedule="fixed", interval=0.2,
                           concurrency=3)
    started = time.monotonic()
    stopper = threading.Timer(2.0, watcher.stop)
    stopper.start()
    try:
        watcher.run()
    finally:
        stopper.cancel()
    elapsed = time.monotonic() - started
    # Six baselines of two pages want 120; polls every 0.2 s would want far more.
    assert paid(standin) <= budget.cap(elapsed)
    assert paid(standin) >= 20  # and it did spend


def test_a_budget_is_shared_by_every_watcher_of_the_database(standin, make_watcher):
    for handle in ("alice", "bob"):
        standin.add_account(handle, 5)
    first = make_watcher(["alice"], budget="200/day")
    second = make_watcher(["bob"], budget="200/day")
    first.run_cycle()  # spends 10 of the 20 at once: 10 left, less than a poll's minimum
    # A bucket of its own would be full; the shared one makes it wait.
    assert second.run_cycle().waiting == {"bob"}
    assert paid(standin) == 10


def test_a_budget_too_small_for_a_poll_is_refused_before_anything_is_sent(standin, cli_env,
                                                                          tmp_path):
    standin.add_account("alice", 5)
    db = str(tmp_path / "w.db")
    run = run_main(*cli_env, "watch", "alice", "--webhook", "http://127.0.0.1:9/x", "--once",
                   "--state-db", db, "--events", "followed,unfollowed", "--budget", "300/day")
    assert run.code == 2 and "budget 300/day" in run.stderr and "at least 400/day" in run.stderr
    bad = run_main(*cli_env, "watch", "alice", "--webhook", "http://127.0.0.1:9/x", "--once",
                   "--state-db", db, "--schedule", "adaptive", "--min-interval", "10m",
                   "--max-interval", "1m")
    assert bad.code == 2 and "max interval" in bad.stderr
    fixed = run_main(*cli_env, "watch", "alice", "--webhook", "http://127.0.0.1:9/x", "--once",
                     "--state-db", db, "--min-interval", "10s")
    assert fixed.code == 2 and "--min-interval" in fixed.stderr and "adaptive" in fixed.stderr
    assert standin.requests == []


@pytest.fixture
def cli_env(monkeypatch, standin) -> list[str]:
    monkeypatch.delenv("TIKTOK_FOLLOWING_WEBHOOK", raising=False)
    return ["--base-url", standin.url]


# --------------------------------------------------------------------------- back-off


def force_due(db: str, handle: str) -> None:
    """Make a handle due now, behind the watcher's back (as if its back-off had passed)."""
    raw_sql(db, "UPDATE poll_lease SET next_at = 0 WHERE key = ?", (state_key(handle),))


def waits(db: str, handle: str) -> float:
    [(polled, due)] = raw_sql(db, "SELECT polled_at, next_at FROM poll_lease WHERE key = ?",
                              (state_key(handle),))
    return due - polled


def test_a_hidden_list_is_asked_1_2_4_intervals_apart_and_reported_once(
    standin, make_watcher, any_db, caplog
):
    standin.add_account("alice", 5)
    watcher = make_watcher(["alice", "ghost"], interval=100, jitter=0)
    caplog.set_level(logging.INFO, logger="connector.watch")
    gaps = {"alice": [], "ghost": []}
    for _ in range(4):
        outcomes = watcher.poll(["alice", "ghost"])
        assert {o.handle for o in outcomes} == {"alice", "ghost"}
        for handle in gaps:
            gaps[handle].append(round(waits(any_db, handle)))
            force_due(any_db, handle)

    assert gaps["ghost"] == [100, 200, 400, 800]
    assert gaps["alice"] == [100, 100, 100, 100]  # a handle that answers: as before
    said = [r for r in caplog.records if "private, hidden or missing" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    # And the status says so.
    report = run_main("status", "--state-db", any_db, "--format", "json")
    rows = {h["handle"]: h for h in json.loads(report.stdout)["handles"]}
    assert rows["ghost"]["status"] == "hidden" and rows["ghost"]["failures"] == 4
    assert rows["alice"]["status"] == "ok"


def test_a_hidden_list_that_answers_again_is_polled_every_interval_again(
    standin, make_watcher, any_db
):
    watcher = make_watcher(["ghost"], interval=100, jitter=0)
    for _ in range(3):
        watcher.poll(["ghost"])
        force_due(any_db, "ghost")
    standin.add_account("ghost", 5)
    watcher.poll(["ghost"])
    assert round(waits(any_db, "ghost")) == 100


def test_the_back_off_is_kept_in_the_database_for_the_next_watcher(
    standin, make_watcher, any_db
):
    first = make_watcher(["ghost"], interval=100, jitter=0)
    first.poll(["ghost"])
    force_due(any_db, "ghost")
    first.poll(["ghost"])
    first.close()
    force_due(any_db, "ghost")
    # A restart (or another worker) goes on where the back-off was: 4 intervals, not 1.
    make_watcher(["ghost"], interval=100, jitter=0).poll(["ghost"])
    assert round(waits(any_db, "ghost")) == 400


# --------------------------------------------------------------------------- adaptive


def test_adaptive_polls_go_to_the_busy_handles(standin, make_watcher, any_db):
    standin.add_account("busy", 5)
    standin.add_account("quiet", 5)
    watcher = make_watcher(["busy", "quiet"], schedule="adaptive", interval=600,
                           min_interval=60, max_interval=86400, jitter=0)
    watcher.run_cycle()  # baselines
    for _ in range(4):
        time.sleep(0.05)  # some time for the follows to have happened in
        standin.follow_many("busy", 5)
        force_due(any_db, "busy")
        force_due(any_db, "quiet")
        watcher.poll(["busy", "quiet"])

    busy, quiet = waits(any_db, "busy"), waits(any_db, "quiet")
    # The credits of two polls every 10 minutes, spent where the follows are: the busy
    # handle more often than that, the quiet one far less often.
    assert busy < 600 and quiet > 10 * 600
    report = json.loads(run_main("status", "--state-db", any_db, "--format", "json").stdout)
    rows = {h["handle"]: h for h in report["handles"]}
    assert rows["busy"]["followsPerDay"] > 100 * rows["quiet"]["followsPerDay"]


# --------------------------------------------------------------------------- status


def test_a_poll_by_both_triggers_adds_up_their_counts_and_keeps_the_first_ones_list_figures():
    from connector.watch.poller import _facts, _outcome_meta

    followed = {"newFollows": 2, "baseline": False, "warnings": ["w1"], "total": 7,
                "tracked": 5, "catchingUp": False}
    unfollowed = {"unfollows": 1, "baseline": True, "warnings": ["w2"], "total": 9,
                  "tracked": 8, "atDepthCap": True}
    assert _outcome_meta([followed]) is followed
    assert _outcome_meta([followed, unfollowed]) == {
        "newFollows": 2, "unfollows": 1, "baseline": True, "warnings": ["w1", "w2"]}
    assert _facts([followed, unfollowed], 100, 3) == {
        "catchingUp": False, "atDepthCap": True, "total": 7, "seen": 5}
    # A trigger without a figure leaves it to the next one, then to the poll's own.
    assert _facts([{"total": None}, {"tracked": 4, "catchingUp": 1}], 100, 3) == {
        "catchingUp": True, "atDepthCap": False, "total": 100, "seen": 4}


def test_status_shows_each_handle_and_the_budget(standin, cli_env, receiver, any_db):
    standin.add_account("alice", 5)
    standin.add_account("bob", 45)
    args = [*cli_env, "watch", "alice", "bob", "ghost", "--webhook", receiver.url, "--once",
            "--state-db", any_db, "--budget", "100000/month"]
    assert run_main(*args).code == 1  # ghost: 404
    standin.follow_many("alice", 2)
    run_main(*args)

    run = run_main("status", "--state-db", any_db, "--format", "json")
    assert run.code == 0, run.stderr
    report = json.loads(run.stdout)
    rows = {h["handle"]: h for h in report["handles"]}
    assert set(rows) == {"alice", "bob", "ghost"}
    assert set(rows["alice"]) >= {"handle", "lastPollAt", "nextPollAt", "followsPerDay",
                                  "creditsSpent", "status", "total", "seen", "pending",
                                  "parked"}
    assert (rows["alice"]["status"], rows["alice"]["total"], rows["alice"]["seen"]) == (
        "ok", 7, 7)
    assert rows["bob"]["creditsSpent"] == 20  # a baseline, then a poll: a page each
    assert rows["ghost"]["status"] == "hidden" and rows["ghost"]["creditsSpent"] == 0
    budget = report["budget"]
    assert (budget["credits"], budget["period"]) == (100000, "month")
    assert budget["spent"] == paid(standin) == sum(h["creditsSpent"] for h in rows.values())
    assert budget["projected"] >= budget["spent"]

    in_python = connector.watch_status(any_db)  # the same, from Python
    assert in_python["handles"] == report["handles"]
    assert in_python["budget"]["spent"] == budget["spent"]

    table = run_main("status", "--state-db", any_db)
    assert table.code == 0 and "@ghost" in table.stdout and "hidden" in table.stdout
    assert "of a budget of 100000/month" in table.stdout


def test_workers_whose_clocks_differ_count_a_handles_credits_in_one_period(
    standin, make_watcher, any_db, monkeypatch
):
    """The period a handle's credits are counted in is the database's, as the bucket's clock
    is: a worker whose clock runs an hour ahead (a budget per hour) adds to the period the
    others count in, and neither resets the other's count; `status` reads it the same way,
    whatever its own clock says."""
    from connector.watch import poller, status

    standin.add_account("alice", 5)
    ahead = make_watcher(["alice"], budget="2000/hour", schedule="fixed")
    right = make_watcher(["alice"], budget="2000/hour", schedule="fixed")
    skewed = SimpleNamespace(time=lambda: time.time() + 3600, monotonic=time.monotonic,
                             sleep=time.sleep)
    # Where the worker and status read their own clock before (a period began at
    # time.time() of the worker): they read none now, so each skew below changes nothing
    # (raising=False), unless a local clock read comes back there.
    with monkeypatch.context() as clock:
        clock.setattr(poller, "time", skewed, raising=False)
        [outcome] = ahead.poll(["alice"])
    assert outcome.pages == 1
    force_due(any_db, "alice")
    [outcome] = right.poll(["alice"])
    assert outcome.pages == 1
    with monkeypatch.context() as clock:
        clock.setattr(status, "time", skewed, raising=False)
        skewed_report = connector.watch_status(any_db)
    report = connector.watch_status(any_db)
    for seen in (report, skewed_report):
        [alice] = seen["handles"]
        assert alice["creditsSpent"] == 20 == paid(standin)
        assert seen["budget"]["spent"] == 20


def test_status_of_a_database_that_does_not_exist_is_an_error_and_creates_nothing(tmp_path):
    path = tmp_path / "missing.db"
    run = run_main("status", "--state-db", str(path))
    assert run.code != 0 and "missing.db" in run.stderr
    assert not path.exists()
