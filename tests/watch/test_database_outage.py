"""`watch` on PostgreSQL outlives its database: sessions terminated by an administrator, or a
restart of the server, cost a pause and one line on stderr, never the process, an event, or a
second delivery of one; and a worker whose liveness mark was cut POSTs none of the events it
had claimed (another worker may hold them by then).

Against a PostgreSQL server of this module's own (tests/pgserver.py), so that stopping and
starting it disturbs no other test; the command line runs as a child process, as in service.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from connector.core.items import identity
from connector.operations.events import event_id, new_event
from connector.standin import StandIn
from connector.storage import DatabaseUnavailable, EventClaim, open_database
from connector.storage.outbox import iso
from connector.storage.postgres_mark import WORKER_LOCK
from connector.watch import DeliveryPass, Reconnect, Watcher
from connector.watch.delivery import Backoff, Deliverer
from connector.watch.webhook import Webhook
from tests import pgserver
from tests.receiver import Receiver
from tests.support import API_KEY, start_cli

HANDLES = [f"o{i}" for i in range(6)]
KEY = "new_account_followed:alice"
#: Long enough for anything here to happen, short enough that a hang fails the test.
PATIENCE = 30.0


@pytest.fixture(scope="module")
def server() -> Iterator[pgserver.TempPostgres]:
    reason = pgserver.unavailable()
    if reason:
        pytest.skip(f"no PostgreSQL here: {reason}")
    with pgserver.TempPostgres() as pg:
        yield pg


@pytest.fixture
def url(server) -> Iterator[str]:
    url = server.new_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def restartable(server) -> pgserver.TempPostgres:
    if not server.restartable:
        pytest.skip("the server at $TIKTOK_FOLLOWING_TEST_PG is not ours to restart")
    return server


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn(api_keys=(API_KEY,), rate_limit=10**9) as upstream:
        for handle in HANDLES:
            upstream.add_account(handle, 3)
        yield upstream


def terminate(url: str, where: str = "true") -> int:
    """pg_terminate_backend on the sessions of `url`'s database (those `where` picks), from a
    session of its own; how many it cut."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a WHERE "
            f"a.datname = current_database() AND a.pid <> pg_backend_pid() AND {where}"
        ).fetchone()[0]


def terminate_mark(url: str, owner: str) -> int:
    """Cut the session that holds `owner`'s liveness lock, and only that one."""
    return terminate(url, f"a.pid IN (SELECT l.pid FROM pg_locks l JOIN tiktok_following.worker "
                          f"w ON l.objid = w.lock_key::oid WHERE l.locktype = 'advisory' AND "
                          f"l.classid = {WORKER_LOCK}::oid AND w.owner = '{owner}')")


def until(condition: Callable[[], bool], timeout: float = PATIENCE) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def follow_all(standin: StandIn, n: int = 1) -> set[str]:
    """`n` new follows for every handle; their event ids."""
    return {event_id(h, identity(u)) for h in HANDLES for u in standin.follow_many(h, n)}


# --------------------------------------------------------------------------- the storage


def test_a_statement_whose_session_is_cut_fails_as_unavailable_and_saves_nothing(url):
    import psycopg

    with open_database(url) as db:
        db.save(KEY, {"n": 1})
        # Another session holds the row, so the save waits on the server: then its session
        # is cut under it.
        with psycopg.connect(url) as other:
            other.execute("SELECT 1 FROM tiktok_following.trigger_state FOR UPDATE")
            failed: list[BaseException] = []

            def save() -> None:
                try:
                    db.save(KEY, {"n": 2}, expect=1)
                except BaseException as exc:
                    failed.append(exc)

            saver = threading.Thread(target=save)
            saver.start()
            assert until(lambda: terminate(url, "a.wait_event_type = 'Lock'") == 1)
            saver.join(PATIENCE)
        assert len(failed) == 1 and isinstance(failed[0], DatabaseUnavailable), failed
        assert "unreachable" in failed[0].message and url.split("/")[-1] in failed[0].message
        # The server is there: the next call reconnects, and finds the save undone.
        assert db.read_state(KEY).row == {"n": 1}


def test_sessions_cut_while_they_sat_in_the_pool_are_replaced_without_an_error(url):
    with open_database(url) as db:
        db.save(KEY, {"n": 1})
        assert terminate(url) >= 1
        assert until(lambda: terminate(url) == 0)
        assert db.read_state(KEY).row == {"n": 1}
        db.save(KEY, {"n": 2})
        assert db.read_state(KEY).row == {"n": 2}


def test_a_cut_mark_is_noticed_at_once_others_take_over_and_recover_marks_it_again(url):
    with open_database(url) as db, open_database(url) as other, \
            db.worker("a"), other.worker("b"):
        assert db.claim_polls(["k1"], "a", lease_for=600).granted == ["k1"]
        assert "k1" in other.claim_polls(["k1"], "b", lease_for=600).busy
        assert db.holds_mark("a")

        assert terminate_mark(url, "a") == 1
        assert until(lambda: not db.holds_mark("a"))
        # Its lease is another worker's to take now, as a dead worker's is.
        assert other.claim_polls(["k1"], "b", lease_for=600).granted == ["k1"]

        db.recover("a")
        assert db.holds_mark("a")
        # Marked again: what it claims now is its own.
        assert db.claim_polls(["k2"], "a", lease_for=600).granted == ["k2"]
        assert "k2" in other.claim_polls(["k2"], "b", lease_for=600).busy


def test_a_poll_that_outlived_its_cut_mark_settles_without_undoing_what_was_counted(url):
    """Its hold was counted as spent while its mark was cut (another worker took it for
    dead); the poll's settle, once the worker is back, must not take it off again."""
    from connector.core.budget import Budget
    from connector.watch.spend import Spender

    budget = Budget(2000, "day")  # holds 200
    with open_database(url) as db, open_database(url) as other, \
            db.worker("a"), other.worker("b"):
        mine, theirs = Spender(db.bucket("b", budget, "a")), Spender(other.bucket("b", budget, "b"))
        old = mine.start([15])  # 150, in flight while the mark is cut
        assert terminate_mark(url, "a") == 1
        assert until(lambda: not db.holds_mark("a"))
        theirs.finish(theirs.start([2]), 2)  # its step counts a's 150 as spent
        db.recover("a")
        new = mine.start([2])  # back: a new poll
        mine.finish(old, 15)  # the old poll ends
        _, bucket = other.budget_view("b")
        assert bucket.held == pytest.approx(new.credits) == 20
        assert bucket.level == pytest.approx(200 - 150 - 20 - 20, abs=0.5)


def test_recover_ends_the_event_claims_a_failed_call_left_behind(url):
    eid, payload = new_event("alice", {"id": "1", "uniqueId": "x"}, detected_at=iso(time.time()))
    with open_database(url) as db, db.worker("a"):
        assert db.save(KEY, {}, events=[(eid, "alice", payload)],
                       claim=EventClaim("a", 600)).claimed
        assert db.due(time.time() + 1) == []  # claimed: held back from every deliverer
        db.recover("a")
        assert [e.event_id for e in db.due(time.time() + 1)] == [eid]


def test_a_deliverer_whose_mark_was_cut_posts_none_of_the_events_it_claimed(url, receiver):
    events = [new_event("alice", {"id": str(i), "uniqueId": f"u{i}"}, detected_at=iso(time.time()))
              for i in range(3)]
    reported: list[DatabaseUnavailable] = []
    with open_database(url) as db, db.worker("a"), Webhook(receiver.url) as hook:
        db.save(KEY, {}, events=[(eid, "alice", p) for eid, p in events],
                claim=EventClaim("a", 600))
        claimed = db.events()
        assert terminate_mark(url, "a") == 1
        assert until(lambda: not db.holds_mark("a"))

        deliverer = Deliverer(db, hook, owner="a", on_database_error=reported.append)
        deliverer.deliver_claimed(claimed, DeliveryPass())
        assert receiver.requests == []
        assert reported and "marks this watcher alive" in reported[0].message
        assert len(db.events()) == 3

        db.recover("a")
        done = deliverer.run_pass()
        assert done.delivered == 3 and sorted(receiver.event_ids()) == sorted(
            eid for eid, _ in events)
        assert db.events() == []


def test_after_a_restart_recover_fails_until_the_server_is_back_then_all_works(
    url, restartable
):
    with open_database(url) as db, db.worker("a"):
        db.save(KEY, {"n": 1})
        restartable.stop_server()
        try:
            assert until(lambda: not db.holds_mark("a"))
            with pytest.raises(DatabaseUnavailable):
                db.read_state(KEY)
            with pytest.raises(DatabaseUnavailable):
                db.recover("a")
        finally:
            restartable.start_server()
        db.recover("a")
        assert db.holds_mark("a")
        assert db.read_state(KEY).row == {"n": 1}
        db.save(KEY, {"n": 2})
        assert db.read_state(KEY).row == {"n": 2}


# --------------------------------------------------------------------------- the watcher


def test_a_once_cycle_gives_up_on_a_database_that_stays_away_after_its_patience(
    url, restartable, standin, receiver, caplog
):
    caplog.set_level(logging.WARNING, logger="connector.watch")
    with Watcher(HANDLES, receiver.url, store=url, backoff=Backoff.immediate(),
                 credentials={"apiKey": API_KEY, "baseUrl": standin.url},
                 reconnect=Reconnect(first=0.05, cap=0.2, patience=1.0)) as watcher:
        restartable.stop_server()
        try:
            summary = watcher.run_cycle()
        finally:
            restartable.start_server()
    assert not summary.ok and summary.database_away
    assert set(summary.failed) == set(HANDLES)
    assert set(summary.failed.values()) == {"database_unavailable"}
    assert "the state database is unreachable" in summary.line()
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno >= logging.WARNING and r.name.startswith("connector")]
    assert len(warnings) == 1 and "polls and deliveries wait" in warnings[0], warnings


# --------------------------------------------------------------------------- the command line


class Watch:
    """`tiktok-following watch` running as a child process, its stderr read as it comes."""

    def __init__(self, standin: StandIn, receiver: Receiver, url: str, *args: str) -> None:
        self.proc = start_cli("--base-url", standin.url, "watch", *HANDLES, "--webhook",
                              receiver.url, "--state-db", url, "--concurrency", "2", *args)
        self.lines: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(pipe,), daemon=True)
                         for pipe in (self.proc.stdout, self.proc.stderr)]
        for reader in self._readers:
            reader.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            self.lines.append(line)

    def stop(self, *, signal_it: bool = True) -> int:
        """SIGTERM, as systemd stops a service (or, without `signal_it`, the end of a `--once`
        run); the exit code."""
        if signal_it and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(PATIENCE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        for reader in self._readers:
            reader.join(5)
        return code

    def warnings(self) -> list[str]:
        return [line for line in self.lines if line.startswith("WARNING")]

    def check_clean(self) -> None:
        """No traceback, no internal error, no psycopg line: what a user reads in the log."""
        text = "".join(self.lines)
        assert "Traceback" not in text and "internal error" not in text, text
        assert "psycopg" not in text, text


def delivered_once(receiver: Receiver, expected: set[str]) -> bool:
    return until(lambda: set(receiver.event_ids()) >= expected)


def baseline(standin: StandIn, receiver: Receiver, url: str) -> None:
    """Every handle's first poll, which remembers what it follows and emits nothing."""
    first = Watch(standin, receiver, url, "--once")
    assert first.stop(signal_it=False) == 0, first.lines


@pytest.mark.slow
def test_watch_goes_on_when_an_administrator_terminates_its_sessions(
    url, standin, receiver
):
    baseline(standin, receiver, url)
    # Polls of 0.1 s: a cut finds some in flight, and finds the watch idle between them.
    standin.latency = 0.1
    watch = Watch(standin, receiver, url, "--interval", "1s")
    try:
        expected = set()
        for _ in range(2):
            expected |= follow_all(standin)
            assert delivered_once(receiver, expected), watch.lines[-5:]
            assert terminate(url) >= 2  # its pooled sessions and its liveness mark
        expected |= follow_all(standin)
        assert delivered_once(receiver, expected), watch.lines[-5:]
    finally:
        code = watch.stop()
    assert code == 0, watch.lines[-5:]
    watch.check_clean()
    # Every follow, once each (one worker: nothing for another to take over).
    assert sorted(receiver.event_ids()) == sorted(expected)
    # One line per outage, not one per failed statement or handle.
    warnings = watch.warnings()
    assert len(warnings) == 2, warnings
    assert all("polls and deliveries wait until it is back" in w for w in warnings), warnings


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "options"), [
    (1, []),
    (2, []),  # two workers sharing the handles
    (1, ["--processes", "2", "--concurrency", "4"]),  # one watch, two processes
], ids=["one worker", "two workers", "two processes"])
def test_watch_goes_on_through_a_postgresql_restart(
    url, restartable, standin, receiver, workers, options
):
    baseline(standin, receiver, url)
    standin.latency = 0.1
    watches = [Watch(standin, receiver, url, "--interval", "1s", *options)
               for _ in range(workers)]
    try:
        expected = follow_all(standin)
        assert delivered_once(receiver, expected), [w.lines[-5:] for w in watches]
        expected |= follow_all(standin)  # being polled as the server goes down
        restartable.restart(down_for=1.0)
        expected |= follow_all(standin)
        assert delivered_once(receiver, expected), [w.lines[-5:] for w in watches]
    finally:
        codes = [w.stop() for w in watches]
    assert codes == [0] * workers, [w.lines[-5:] for w in watches]
    for watch in watches:
        watch.check_clean()
        warnings = watch.warnings()
        processes = 2 if "--processes" in options else 1  # each says it, once
        assert len(warnings) == processes, warnings
        assert all("wait until it is back" in w for w in warnings), warnings
    got = receiver.event_ids()
    assert set(got) == expected
    if workers == 1:
        assert len(got) == len(expected)
    else:
        # At least once: a POST in flight when its worker's mark was cut may be sent again by
        # the other worker, at most one per delivery it had under way (--concurrency 2).
        assert len(got) - len(expected) <= 2 * workers


@pytest.mark.slow
def test_watch_once_finishes_its_cycle_when_its_sessions_are_cut_mid_cycle(
    url, standin, receiver
):
    baseline(standin, receiver, url)
    expected = follow_all(standin)
    standin.latency = 0.2  # a cycle of 6 handles, 2 at a time: about 0.6 s
    standin.reset_log()
    watch = Watch(standin, receiver, url, "--once")
    assert until(lambda: standin.count_requests() >= 2)  # its first polls are in flight
    assert terminate(url) >= 2
    code = watch.stop(signal_it=False)
    assert code == 0, watch.lines
    watch.check_clean()
    assert sorted(receiver.event_ids()) == sorted(expected)
    summary = [line for line in watch.lines if line.startswith("watch: ")][-1]
    assert "6/6 handles polled" in summary and "delivered 6, pending 0" in summary, summary


@pytest.mark.slow
def test_watch_stops_cleanly_on_sigterm_while_the_database_is_away(
    url, restartable, standin, receiver
):
    baseline(standin, receiver, url)
    watch = Watch(standin, receiver, url, "--interval", "1s")
    try:
        assert until(lambda: any(line.startswith("watch: 6 handles") for line in watch.lines))
        restartable.stop_server()
        assert until(lambda: len(watch.warnings()) == 1)
        code = watch.stop()
    finally:
        restartable.start_server()
    assert code == 0, watch.lines
    watch.check_clean()
    assert "[stopped]" in watch.lines[-1], watch.lines
