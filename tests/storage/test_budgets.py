"""Budgets kept in the database, and what a poll keeps next to its lease: one bucket shared by
every worker of a database, surviving restarts, a dead worker's holds counted as spent; the
activity, health and credits of each handle written with its poll and read back with its
claim. Against SQLite and PostgreSQL alike; an old file migrates."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from connector.core.budget import Budget, Hold, period_start
from connector.storage import Lease, open_database
from connector.watch.spend import Spender
from tests.support import ROOT, raw_sql

BUDGET = Budget(2000, "day")  # holds 200 credits: 20 requests


@pytest.fixture
def store(any_db):
    with open_database(any_db) as database:
        yield database


def test_every_worker_spends_from_one_bucket_and_gets_back_what_it_did_not_spend(store):
    one, two = store.bucket("b", BUDGET, "w1"), store.bucket("b", BUDGET, "w2")

    first = one.reserve(150, 20)
    assert first.credits == 150
    assert two.reserve(100, 20).credits == 50  # what is left, in whole requests
    assert two.reserve(20, 20) == Hold(0)  # nothing: it waits
    assert two.ready_in(20) > 0
    one.settle(first, 30)  # spent 3 requests: 120 credits back
    assert two.reserve(100, 20).credits == 100
    view = one.view()
    assert view.held == pytest.approx(150) and view.level == pytest.approx(20, abs=0.1)


def test_a_budget_is_not_full_again_after_a_restart(any_db):
    with open_database(any_db) as database:
        bucket = database.bucket("b", BUDGET, "w1")
        bucket.settle(bucket.reserve(200, 20), 200)
    with open_database(any_db) as database:
        # A restart used to mean a full bucket: another N / 10 spent at once.
        assert database.bucket("b", BUDGET, "w2").reserve(200, 20).credits == 0
        budget, bucket = database.budget_view("b")
    assert budget == BUDGET and bucket.level < 20 and bucket.held == 0


def test_a_budget_given_anew_replaces_the_stored_one_within_its_capacity(store):
    store.bucket("b", BUDGET, "w1").reserve(20, 20)  # 180 left
    smaller = store.bucket("b", Budget(1000, "day"), "w1")  # holds at most 100
    assert smaller.reserve(200, 20).credits == 80  # 100 less the 20 still held
    assert store.budget_view("b")[0] == Budget(1000, "day")


CHILD = """
import sys, time
from connector.core.budget import Budget, Hold, period_start
from connector.storage import open_database
db = open_database(sys.argv[1])
with db.worker("doomed"):
    assert db.bucket("b", Budget(2000, "day"), "doomed").reserve(150, 20).credits == 150
    print("ready", flush=True)
    time.sleep(60)
"""


@pytest.mark.slow
def test_what_a_dead_worker_held_is_counted_as_spent_not_held_forever(store, any_db):
    child = subprocess.Popen([sys.executable, "-c", CHILD, any_db], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert store.budget_view("b")[1].held == pytest.approx(150)
        child.kill()
        child.wait(10)
        bucket = store.bucket("b", BUDGET, "w2")
        deadline = time.monotonic() + 10
        # Each step on the row drops the holds of workers that are gone (on PostgreSQL, once
        # the server has seen its session end); settling nothing changes nothing else.
        while bucket.view().held != pytest.approx(0):
            assert time.monotonic() < deadline, "the dead worker's hold was kept"
            time.sleep(0.05)
            bucket.settle(Hold(0), 0)
        assert bucket.reserve(20, 20).credits == 20 and bucket.view().held == pytest.approx(20)
        # Spent, not given back: its requests may have been made.
        assert bucket.view().level == pytest.approx(30, abs=0.5)
    finally:
        child.kill()
        child.wait()


@contextmanager
def seems_gone(target: str, owner: str) -> Iterator[None]:
    """In the block, `owner` (a worker never marked alive here) looks dead to a database
    opened then: marked, and its mark free, as a worker's looks while a long pause or a cut
    session keeps it from its mark. After the block it is alive again."""
    if target.startswith("postgresql://"):
        # A lock key no session holds: its owner is gone.
        raw_sql(target, "INSERT INTO worker VALUES (?, 2147483000, 0)", (owner,))
        yield
        raw_sql(target, "DELETE FROM worker WHERE owner = ?", (owner,))
        return
    with open_database(target) as database:
        path = database._lock_path(f"worker:{owner}")
    path.touch()  # a lock file nobody holds
    yield
    path.unlink()


def holds(target: str) -> int:
    """The credits of every hold row, summed: what the budget's `held` must equal."""
    return raw_sql(target, "SELECT coalesce(sum(credits), 0) FROM budget_holds")[0][0]


def test_a_hold_counted_as_spent_while_its_worker_seemed_gone_is_not_settled_again(any_db):
    with open_database(any_db) as slow_db, open_database(any_db) as other_db:
        slow = Spender(slow_db.bucket("b", BUDGET, "slow"))
        old = slow.start([15])
        assert old is not None and old.credits == 150  # 50 left
        with seems_gone(any_db, "slow"), open_database(any_db) as judge:
            # Another worker's step finds `slow` gone: its 150 are counted as spent.
            judging = Spender(judge.bucket("b", BUDGET, "judge"))
            judging.finish(judging.start([2]), 0)
        view = other_db.budget_view("b")[1]
        assert view.held == 0 and view.level == pytest.approx(50, abs=0.5)
        # `slow` was only slow: it comes back, starts a new poll, then settles the old one.
        new = slow.start([2])
        assert new is not None and new.credits == 20  # 30 left
        slow.finish(old, 3)
        # The old hold was accounted already: its settle changes nothing (it used to take
        # 150 off `held` again, and give back 120 credits that were counted as spent).
        view = other_db.budget_view("b")[1]
        assert view.held == 20 == holds(any_db)
        assert view.level == pytest.approx(30, abs=0.5)
        slow.finish(new, 1)  # the new hold is settled as any other
        view = other_db.budget_view("b")[1]
        assert view.held == 0 == holds(any_db)
        assert view.level == pytest.approx(40, abs=0.5)


def test_what_a_poll_keeps_comes_back_with_its_next_claim_and_its_credits_add_up(store,
                                                                                any_db):
    long = 1e9  # periods of 31 years
    store.claim_polls(["k1", "k2"], "w1", lease_for=60)
    store.release_poll("k1", Lease("w1", next_in=0, activity='{"a":1}',
                                    health='{"status":"hidden","failures":1}', credits=20,
                                    period=long))
    store.release_poll("k2", Lease("w1", polled=False))

    claim = store.claim_polls(["k1", "k2"], "w2", lease_for=60)
    assert claim.granted == ["k1", "k2"]
    assert claim.stored == {"k1": ('{"a":1}', '{"status":"hidden","failures":1}')}
    store.release_poll("k1", Lease("w2", credits=30, period=long))
    store.release_poll("k2", Lease("w2", next_in=50, polled=False))  # put off (the budget)
    rows = {r.key: r for r in store.poll_rows()}
    # Counted in the period of the database's clock, as status reads it.
    assert (rows["k1"].credits, rows["k1"].period) == (50, period_start(store.clock(), long))
    assert rows["k1"].activity == '{"a":1}'  # kept: the release gave none
    assert rows["k2"].polled_at == 0 and rows["k2"].next_at > time.time() + 40
    # A new period starts its counter again.
    raw_sql(any_db, "UPDATE poll_lease SET credits_since = 0 WHERE key = 'k1'")
    store.claim_polls(["k1"], "w3", lease_for=60)
    store.release_poll("k1", Lease("w3", credits=10, period=long))
    assert store.poll_rows(["k1"])[0].credits == 10


def test_a_sqlite_file_of_schema_3_migrates_keeping_its_leases(tmp_path):
    from connector.storage.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "v3.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript("".join(MIGRATIONS[n] for n in range(1, 4)))
    old.execute("INSERT INTO meta VALUES ('schema', '3')")
    old.execute("INSERT INTO poll_lease (key, polled_at, next_at) VALUES ('k1', 5, 900)")
    old.close()
    with open_database(path) as database:
        [row] = database.poll_rows()
        assert (row.key, row.polled_at, row.next_at, row.credits) == ("k1", 5, 900, 0)
        assert database.bucket("b", BUDGET, "w1").reserve(20, 20).credits == 20
    assert raw_sql(str(path), "SELECT value FROM meta") == [(str(SCHEMA_VERSION),)]


def test_a_postgres_database_of_schema_2_migrates_keeping_its_leases(postgres_url):
    from connector.storage.postgres_schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION

    raw_sql(postgres_url, f"CREATE SCHEMA {SCHEMA}")
    for n in (1, 2):
        raw_sql(postgres_url, MIGRATIONS[n])
    raw_sql(postgres_url, "INSERT INTO meta VALUES ('schema', '2')")
    raw_sql(postgres_url, "INSERT INTO poll_lease (key, polled_at, next_at) VALUES "
                          "('k1', 5, 900)")
    with open_database(postgres_url) as database:
        [row] = database.poll_rows()
        assert (row.key, row.polled_at, row.next_at, row.credits) == ("k1", 5, 900, 0)
        assert database.bucket("b", BUDGET, "w1").reserve(20, 20).credits == 20
    assert raw_sql(postgres_url, "SELECT value FROM meta") == [(str(SCHEMA_VERSION),)]


def test_a_postgres_statement_reads_one_clock_however_often_it_names_it(postgres_url):
    """A lease's release checks the budget period and sets it in one statement: with a clock
    read at each use, a poll's credits could be counted in a period that had just ended."""
    from connector.storage.postgres import PostgresDialect

    clock = PostgresDialect.clock
    [(first, _, last)] = raw_sql(postgres_url, f"SELECT {clock}, pg_sleep(0.05), {clock}")
    assert first == last


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_database_with_holds_summed_per_worker_migrates_keeping_its_budget(backend, tmp_path,
                                                                              request):
    """Schema 4 (SQLite; PostgreSQL's 3) kept one hold sum per worker: upgraded, the budget's
    level and held stay, the sum is kept as one hold of its worker, abandoned as any other
    once that worker is gone."""
    if backend == "sqlite":
        from connector.storage.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

        target = str(tmp_path / "v4.db")
        old = sqlite3.connect(target, isolation_level=None)
        old.executescript("".join(MIGRATIONS[n] for n in range(1, 5)))
        old.close()
        raw_sql(target, "INSERT INTO meta VALUES ('schema', '4')")
    else:
        from connector.storage.postgres_schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION

        target = request.getfixturevalue("postgres_url")
        raw_sql(target, f"CREATE SCHEMA {SCHEMA}")
        for n in (1, 2, 3):
            raw_sql(target, MIGRATIONS[n])
        raw_sql(target, "INSERT INTO meta VALUES ('schema', '3')")
    raw_sql(target, "INSERT INTO budgets VALUES ('b', 2000, 'day', 70.5, 30, ?)",
            (time.time() + 3600,))  # as of later: nothing refills while the test runs
    raw_sql(target, "INSERT INTO budget_holds VALUES ('b', 'old-worker', 30)")
    with open_database(target) as database:
        budget, bucket = database.budget_view("b")
        assert budget == BUDGET and (bucket.level, bucket.held) == (70.5, 30)
        assert raw_sql(target, "SELECT name, owner, credits, hold FROM budget_holds") == [
            ("b", "old-worker", 30, 0)]
        hold = database.bucket("b", BUDGET, "w1").reserve(20, 20)
        assert hold.credits == 20 and holds(target) == 50
    assert raw_sql(target, "SELECT value FROM meta") == [(str(SCHEMA_VERSION),)]


def test_a_budget_never_spent_from_is_full_now_whichever_way_it_is_read(store):
    bucket = store.bucket("b", BUDGET, "w1")
    view = bucket.view()
    # It was an empty Bucket(capacity, 0, 0) as of 1970 here, full in ready_in, and None in
    # budget_view: one read now, full.
    assert (view.level, view.held) == (200, 0) and view.at > time.time() - 60
    assert bucket.ready_in(200) == 0
    assert store.budget_view("b") is None  # no budget stored or given: nothing to show
