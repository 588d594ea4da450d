"""`watch`: new follows of many handles delivered to a webhook through the outbox, none lost.

Against the stand-in and a local receiver (tests/receiver.py); retries and backoffs are
injected short so nothing here sleeps for long.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from connector.cli import main
from connector.core.config import Timeouts
from connector.core.errors import InputError, RateLimitError
from connector.core.http import RateLimit
from connector.core.items import identity
from connector.operations.events import event_id
from connector.standin import Fault
from connector.storage import Lease, open_database
from connector.store import state_key
from connector.watch import Backoff, Deliverer, Outbox, Pacer, Webhook
from connector.watch.pacing import Stopped
from connector.watch.schedule import Schedule, parse_interval
from connector.watch.webhook import check_webhook_url, parse_header
from tests.receiver import Receiver
from tests.slowpeer import PARTS, TricklingServer, elapsed
from tests.support import API_KEY, start_cli

SECRET = "s3cret-token-value"


def ids_for(handle: str, users: list[dict[str, Any]]) -> list[str]:
    return [event_id(handle, identity(user)) for user in users]


@pytest.fixture
def cli_env(monkeypatch, standin) -> list[str]:
    """What `main()` needs to reach the stand-in: the key in the environment, --base-url."""
    monkeypatch.setenv("DUMPLINGAI_API_KEY", API_KEY)
    monkeypatch.delenv("TIKTOK_FOLLOWING_WEBHOOK", raising=False)
    return ["--base-url", standin.url]


# --------------------------------------------------------------------------- delivery


def test_the_first_cycle_takes_a_baseline_and_delivers_nothing(standin, make_watcher, receiver):
    standin.add_account("alice", 5)
    summary = make_watcher(["alice"]).run_cycle()

    assert summary.ok
    assert (summary.baselined, summary.new_follows, summary.requests, summary.credits) == (
        1, 0, 1, 10)
    assert (summary.delivery.delivered, summary.pending, summary.parked) == (0, 0, 0)
    assert receiver.requests == []


def test_new_follows_are_delivered_once_each_with_their_idempotency_key(
    standin, make_watcher, receiver
):
    standin.add_account("alice", 5)
    watcher = make_watcher(["@Alice"])
    watcher.run_cycle()
    users = standin.follow_many("alice", 3)

    summary = watcher.run_cycle()

    assert summary.ok and summary.new_follows == 3 and summary.delivery.delivered == 3
    # Oldest follow first, each one POST with the event id as its idempotency key.
    assert [r.body["item"]["id"] for r in receiver] == [u["id"] for u in users]
    assert receiver.event_ids() == ids_for("alice", users)
    for r in receiver:
        assert r.headers["idempotency-key"] == r.body["eventId"]
        assert r.headers["content-type"] == "application/json"
        assert set(r.body) == {"eventId", "handle", "detectedAt", "item"}
        assert r.body["handle"] == "alice"
    assert watcher.run_cycle().delivery.delivered == 0
    assert len(receiver.requests) == 3
    assert summary.pending == summary.parked == 0


def test_receiver_down_then_up_delivers_on_a_later_cycle(standin, make_watcher, receiver):
    standin.add_account("alice", 5)
    watcher = make_watcher(["alice"])
    watcher.run_cycle()
    users = standin.follow_many("alice", 4)
    receiver.stop()

    down = watcher.run_cycle()
    assert not down.ok
    assert down.new_follows == 4 and down.delivery.delivered == 0 and down.pending == 4
    # One refused connection is enough: the other events wait instead of hammering it.
    assert down.delivery.failed == 1 and down.delivery.held == 3

    receiver.start()
    up = watcher.run_cycle()
    assert up.ok and up.delivery.delivered == 4 and up.pending == 0
    assert receiver.event_ids() == ids_for("alice", users)


def test_a_receiver_answering_500_is_retried_then_parked_then_retried_by_command(
    standin, make_watcher, receiver, db, cli_env, capsys
):
    standin.add_account("alice", 5)
    watcher = make_watcher(["alice"], max_attempts=3)
    watcher.run_cycle()
    [user] = standin.follow_many("alice", 1)
    [eid] = ids_for("alice", [user])
    receiver.status = 500

    cycles = [watcher.run_cycle() for _ in range(4)]

    assert [(c.delivery.failed, c.pending, c.parked) for c in cycles] == [
        (1, 1, 0), (1, 1, 0), (1, 0, 1), (0, 0, 1)]
    assert not cycles[2].ok and "1 failed delivery (HTTP 500)" in cycles[2].line()
    assert receiver.event_ids() == [eid] * 3  # parked: no fourth attempt

    capsys.readouterr()
    assert main(["outbox", "list", "--state-db", str(db)]) == 0
    listed = capsys.readouterr()
    assert eid in listed.out and "parked" in listed.out and "HTTP 500" in listed.out
    assert "1 parked, 0 pending" in listed.err

    receiver.status = 200
    assert main(["outbox", "retry", eid, "--state-db", str(db)]) == 0
    assert watcher.run_cycle().delivery.delivered == 1
    assert receiver.event_ids() == [eid] * 4
    with Outbox(db) as box:
        assert box.list(include_pending=True) == []


def test_outbox_retry_with_a_webhook_delivers_at_once_and_discard_drops(
    standin, make_watcher, receiver, db, cli_env, capsys
):
    standin.add_account("alice", 5)
    watcher = make_watcher(["alice"], max_attempts=1)
    watcher.run_cycle()
    users = standin.follow_many("alice", 2)
    receiver.status = 500
    assert watcher.run_cycle().parked == 2
    first, second = ids_for("alice", users)

    receiver.status = 200
    assert main(["outbox", "retry", first, "--state-db", str(db),
                 "--webhook", receiver.url]) == 0
    assert receiver.event_ids()[-1] == first
    assert "delivered 1 of 1" in capsys.readouterr().err

    assert main(["outbox", "retry", "no-such-event", "--state-db", str(db)]) == 1
    assert main(["outbox", "discard", "--state-db", str(db)]) == 2  # ids or --all
    assert main(["outbox", "discard", "--all", "--state-db", str(db)]) == 0
    with Outbox(db) as box:
        assert box.counts() == {"pending": 0, "parked": 0}
    assert second not in receiver.event_ids()[2:]


def test_outbox_retry_all_with_a_webhook_delivers_the_parked_and_the_pending_at_once(
    standin, make_watcher, receiver, db, cli_env, capsys
):
    standin.add_account("alice", 5)
    watcher = make_watcher(["alice"], max_attempts=2)
    watcher.run_cycle()
    receiver.status = 500
    [parked] = ids_for("alice", standin.follow_many("alice", 1))
    assert [watcher.run_cycle().parked for _ in range(2)] == [0, 1]
    [pending] = ids_for("alice", standin.follow_many("alice", 1))
    assert watcher.run_cycle().pending == 1

    receiver.status = 200
    capsys.readouterr()
    assert main(["outbox", "retry", "--all", "--state-db", str(db),
                 "--webhook", receiver.url]) == 0
    err = capsys.readouterr().err
    assert "1 parked event back in the queue, 1 pending event due now" in err
    assert "delivered 2 of 2" in err
    assert sorted(receiver.event_ids()[-2:]) == sorted([parked, pending])
    with Outbox(db) as box:
        assert box.counts() == {"pending": 0, "parked": 0}


def test_a_running_watch_polls_on_its_interval_and_delivers_until_stopped(
    standin, make_watcher, receiver
):
    standin.add_account("alice", 5)
    watcher = make_watcher(["alice"], interval=0.3)
    summaries: list[Any] = []
    thread = threading.Thread(target=watcher.run, kwargs={"on_summary": summaries.append})
    thread.start()
    try:
        deadline = time.monotonic() + 5
        database = watcher.store.database
        while database.read_state(state_key("alice")).row is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the baseline is taken
        users = standin.follow_many("alice", 2)
        assert receiver.wait_for(2, timeout=5)
    finally:
        watcher.stop()
        thread.join(5)
    assert not thread.is_alive()
    assert receiver.event_ids() == ids_for("alice", users)
    assert summaries and summaries[-1].stopped
    assert sum(s.delivery.delivered for s in summaries) == 2


def test_watchers_sharing_a_database_deliver_only_their_own_handles(
    standin, make_watcher, receiver, db
):
    standin.add_account("alice", 3)
    standin.add_account("bob", 3)
    for handles in (["alice"], ["bob"]):
        make_watcher(handles).run_cycle()
    # bob's watcher commits bob's follows, but its webhook is down.
    with Receiver() as gone:
        pass
    bob = make_watcher(["bob"], webhook=gone.url)
    standin.follow_many("bob", 2)
    assert bob.run_cycle().pending == 2

    alice = make_watcher(["alice"])
    users = standin.follow_many("alice", 1)
    summary = alice.run_cycle()
    assert summary.delivery.delivered == 1 and summary.pending == 0
    assert receiver.event_ids() == ids_for("alice", users)


def test_a_once_cycle_looks_again_soon_for_a_handle_another_watcher_is_polling(
    standin, make_watcher, db
):
    """A handle held by another watcher is usually a poll in flight there: the cycle looks
    again after 50 ms, then twice as long each time up to a second, and counts it as done by
    the other watcher once that one has polled it."""
    standin.add_account("alice", 3)
    watcher = make_watcher(["alice"])
    key = state_key("alice")
    with open_database(db) as other:
        assert other.claim_polls([key], "other-worker", lease_for=300).granted == [key]
        waits: list[float] = []

        class Recording(threading.Event):
            def wait(self, timeout: float | None = None) -> bool:
                waits.append(round(timeout or 0, 3))
                if len(waits) == 6:  # the other watcher is done with it
                    other.release_poll(key, Lease("other-worker"))
                return False

        watcher._stop = Recording()
        summary = watcher.run_cycle()
    assert waits == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]
    assert summary.elsewhere == 1 and summary.ok and standin.count_requests() == 0


def test_accounts_without_id_or_sec_uid_get_their_own_event_ids_and_are_all_delivered(
    standin, make_watcher, receiver
):
    """Issue 8 defect 4: two accounts with only a uniqueId got the same eventId (built from
    the literal None) and the outbox kept one. Profile-only accounts must not collide either."""
    standin.add_account("alice", 3)
    watcher = make_watcher(["alice"])
    watcher.run_cycle()
    users = [
        {"uniqueId": "handle_only_one", "nickname": "One"},
        {"uniqueId": "handle_only_two", "nickname": "Two"},
        {"nickname": "Profile Only", "signature": "no id, no secUid, no handle"},
        {"nickname": "Another Profile", "signature": "still nothing to go by"},
    ]
    for user in users:
        standin.follow("alice", user)

    summary = watcher.run_cycle()

    expected = ids_for("alice", users)
    assert len(set(expected)) == 4
    assert (summary.new_follows, summary.delivery.delivered) == (4, 4)
    assert receiver.event_ids() == expected
    assert [r.body["item"]["nickname"] for r in receiver] == [u["nickname"] for u in users]
    assert watcher.run_cycle().delivery.delivered == 0  # and never twice
    assert len(receiver.requests) == 4


def test_outbox_retry_all_makes_pending_events_due_now_and_the_table_shows_next_try(
    standin, make_watcher, receiver, db, cli_env, capsys
):
    """Issue 8 item 10: after the receiver is fixed, nothing waits out its backoff."""
    standin.add_account("alice", 3)
    watcher = make_watcher(["alice"], max_attempts=2, backoff=Backoff(base=3600, jitter=0))
    watcher.run_cycle()
    users = standin.follow_many("alice", 2)
    receiver.status = 500
    first = watcher.run_cycle()  # both POSTs fail: both wait an hour for their next try
    assert (first.delivery.failed, first.pending, first.parked) == (2, 2, 0)
    with Outbox(db) as box:  # and the second one has run out of attempts since
        box.database.failed(ids_for("alice", users)[1], "HTTP 500", retry_at=time.time(),
                            park=True)
    capsys.readouterr()

    assert main(["outbox", "list", "--all", "--state-db", str(db)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:5] == ["EVENT_ID", "STATUS", "TRIES", "NEXT", "TRY"]
    pending = next(line for line in table if "pending" in line)
    parked = next(line for line in table if "parked" in line)
    next_try = datetime.fromisoformat(pending.split()[3])
    assert 3500 < (next_try - datetime.now(timezone.utc)).total_seconds() <= 3600
    assert parked.split()[3] == "-"  # parked: not tried until someone says so

    # A bad --webhook changes nothing.
    assert main(["outbox", "retry", "--all", "--state-db", str(db),
                 "--webhook", "http://[::1/h"]) == 2
    assert "webhook is not a valid URL" in capsys.readouterr().err
    with Outbox(db) as box:
        assert box.counts() == {"pending": 1, "parked": 1}
        [waiting] = [e for e in box.list(include_pending=True) if not e.parked]
        assert waiting.next_attempt_at > time.time() + 3000

    receiver.status = 200
    assert main(["outbox", "retry", "--all", "--state-db", str(db)]) == 0
    assert capsys.readouterr().err == ("outbox: 1 parked event back in the queue, "
                                       "1 pending event due now\n")
    with Outbox(db) as box:
        assert all(e.next_attempt_at <= time.time() and not e.parked
                   for e in box.list(include_pending=True))
    summary = watcher.run_cycle()
    assert (summary.delivery.delivered, summary.pending, summary.parked) == (2, 0, 0)
    assert sorted(receiver.event_ids()[-2:]) == sorted(ids_for("alice", users))


# --------------------------------------------------------------------------- many handles


def test_100_handles_in_one_cycle_with_one_404_deliver_the_other_99(
    standin, make_watcher, receiver
):
    handles = [f"h{i:03d}" for i in range(99)]
    for handle in handles:
        standin.add_account(handle, 3)
    watcher = make_watcher([*handles[:50], "ghost", *handles[50:]], concurrency=8)

    first = watcher.run_cycle()
    assert first.failed == {"ghost": "404 not_found"} and len(first.polled) == 99
    assert not first.ok

    expected = [eid for h in handles for eid in ids_for(h, standin.follow_many(h, 2))]
    summary = watcher.run_cycle()

    assert summary.failed == {"ghost": "404 not_found"}
    assert "failed: @ghost (404 not_found)" in summary.line()
    assert summary.new_follows == 198 and summary.delivery.delivered == 198
    assert sorted(receiver.event_ids()) == sorted(expected)
    assert summary.pending == summary.parked == 0


def test_a_rate_limited_handle_is_reported_and_holds_back_every_poll(
    standin, make_watcher, receiver
):
    standin.add_account("alice", 3)
    standin.add_account("bob", 3)
    # The 429s also say X-RateLimit-Remaining: 0; a short max spacing keeps the test quick.
    pacer = Pacer(backoff_base=0.3, backoff_cap=0.3, max_spacing=0.05)
    watcher = make_watcher(["alice", "bob"], pacer=pacer, concurrency=1)
    # Four 429s: the first answer and the HTTP core's three retries.
    standin.inject(*[Fault(status=429)] * 4, handle="bob")

    summary = watcher.run_cycle()
    assert summary.failed == {"bob": "429 rate_limited"} and summary.polled == {"alice"}
    assert 0 < pacer.hold_remaining() <= 0.3

    hold, started = pacer.hold_remaining(), time.monotonic()
    assert watcher.run_cycle().ok  # bob's baseline now; both waited for the hold
    assert time.monotonic() - started >= hold - 0.01


# --------------------------------------------------------------------------- the command


@pytest.mark.parametrize(("args", "message"), [
    (["alice", "--webhook", "http://hooks.example.com/x"], "--allow-http"),
    (["alice", "--webhook", "ftp://hooks.example.com/x"], "http(s) URL"),
    (["alice", "--webhook", "https://h.example/x", "--header", f"Authorization Bearer {SECRET}"],
     "'Name: value'"),
    (["alice", "--webhook", "https://h.example/x", "--header", "Idempotency-Key: x"],
     "sets this header itself"),
    (["--webhook", "https://h.example/x"], "no handles"),
    (["alice"], "--webhook URL is required"),
    (["not a handle!", "--webhook", "https://h.example/x"], "not a TikTok handle"),
])
def test_bad_arguments_exit_2_before_anything_is_sent(args, message, cli_env, db, standin,
                                                      capsys):
    assert main([*cli_env, "watch", *args, "--once", "--state-db", str(db)]) == 2
    err = capsys.readouterr().err
    assert message in err and SECRET not in err
    assert standin.count_requests() == 0


def test_a_bad_interval_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["watch", "alice", "--webhook", "https://h.example/x", "--interval", "5 parsecs"])
    assert exit_.value.code == 2


def test_once_exits_1_when_a_handle_fails_and_0_when_all_is_well(
    standin, cli_env, db, receiver, capsys
):
    standin.add_account("alice", 3)
    options = ["--webhook", receiver.url, "--once", "--state-db", str(db)]
    assert main([*cli_env, "watch", "alice", "ghost", *options]) == 1
    assert "failed: @ghost (404 not_found)" in capsys.readouterr().err
    standin.follow_many("alice", 1)
    assert main([*cli_env, "watch", "alice", *options]) == 0
    err = capsys.readouterr().err
    assert "watch: 1/1 handle polled, 1 new follow" in err and "delivered 1" in err


def test_send_sample_posts_one_event_shaped_like_the_real_ones(cli_env, receiver):
    assert main(["watch", "--webhook", receiver.url, "--send-sample"]) == 0
    [got] = receiver.requests
    assert set(got.body) == {"eventId", "handle", "detectedAt", "item"}
    assert got.body["item"]["profileUrl"].startswith("https://www.tiktok.com/@")


def test_handles_file_adds_handles_and_skips_comments(standin, cli_env, db, receiver, tmp_path):
    standin.add_account("alice", 1)
    standin.add_account("bob", 1)
    listing = tmp_path / "handles.txt"
    listing.write_text("# people\n@Alice\n\nbob   # a comment\n", encoding="utf-8")
    assert main([*cli_env, "watch", "--handles-file", str(listing), "--webhook", receiver.url,
                 "--once", "--state-db", str(db)]) == 0
    assert standin.count_requests("alice") == standin.count_requests("bob") == 1


# --------------------------------------------------------------------------- processes


def watch_process(standin, db: str | Path, receiver: Receiver, *args: str,
                  verbose: bool = False) -> subprocess.Popen:
    """`tiktok-following watch ARGS` in a child process, on the stand-in and the receiver."""
    return start_cli("--base-url", standin.url, *(["-v"] if verbose else []), "watch", *args,
                     "--webhook", receiver.url, "--state-db", str(db))


@pytest.mark.slow
def test_a_watch_killed_mid_delivery_and_restarted_delivers_every_follow(
    standin, receiver, db
):
    standin.add_account("alice", 5)
    standin.add_account("bob", 5)
    first = watch_process(standin, db, receiver, "alice", "bob", "--once")
    assert first.wait(20) == 0, first.communicate()[1]
    expected = ids_for("alice", standin.follow_many("alice", 6))
    expected += ids_for("bob", standin.follow_many("bob", 6))

    receiver.delay = 0.3
    doomed = watch_process(standin, db, receiver, "alice", "bob", "--once")
    try:
        assert receiver.wait_for(3, timeout=20), doomed.communicate()[1]
        doomed.send_signal(signal.SIGKILL)  # while the third POST is in flight
    finally:
        doomed.wait(10)
    doomed.communicate()
    assert len(receiver.requests) < len(expected)

    receiver.delay = 0
    again = watch_process(standin, db, receiver, "alice", "bob", "--once",
                          "--header", f"X-Token: {SECRET}", verbose=True)
    _, err = again.communicate(timeout=20)
    assert again.returncode == 0, err
    assert set(expected) <= set(receiver.event_ids())  # every follow, at least once
    assert "pending 0, parked 0" in err
    # Header values are secrets: the header's name may be logged, its value never.
    assert "X-Token" in err and SECRET not in err
    assert receiver.requests[-1].headers["x-token"] == SECRET


@pytest.mark.slow
def test_sigterm_lets_the_delivery_in_flight_finish_and_exits_0(standin, receiver, db):
    standin.add_account("alice", 5)
    first = watch_process(standin, db, receiver, "alice", "--once")
    assert first.wait(20) == 0, first.communicate()[1]
    standin.follow_many("alice", 5)

    receiver.delay = 0.5
    proc = watch_process(standin, db, receiver, "alice", "--interval", "1h")
    try:
        assert receiver.wait_for(1, timeout=20), proc.communicate()[1]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "[stopped]" in err and "delivered 1, pending 4" in err
    with Outbox(db) as box:
        assert box.counts() == {"pending": 4, "parked": 0}


# --------------------------------------------------------------------------- the parts


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeStop:
    """Stands in for the stop Event: waiting moves the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []
        self.set_ = False

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 3))
        self.clock.now += seconds
        return self.set_

    def is_set(self) -> bool:
        return self.set_


def test_pacer_spaces_requests_more_the_lower_the_rate_limit_gets():
    clock = FakeClock()
    stop = FakeStop(clock)
    pacer = Pacer(clock=clock, stop=stop, max_spacing=4.0)  # type: ignore[arg-type]
    pacer.observe(RateLimit(limit=100, remaining=50))
    pacer.wait_turn()
    pacer.wait_turn()
    assert stop.waits == []
    pacer.observe(RateLimit(limit=100, remaining=5))  # half of the low mark (10) left
    pacer.wait_turn()
    pacer.wait_turn()
    pacer.observe(RateLimit(limit=100, remaining=0))
    pacer.wait_turn()
    assert stop.waits == [2.0, 2.0, 4.0]  # waits between request starts


def test_pacer_holds_everyone_back_after_a_429_and_stops_when_asked():
    clock = FakeClock()
    stop = FakeStop(clock)
    pacer = Pacer(clock=clock, stop=stop, backoff_base=10, backoff_cap=60)  # type: ignore[arg-type]
    err = RateLimitError("limited", status=429, headers={"Retry-After": "3"})
    assert pacer.rate_limited(err) == 10
    pacer.wait_turn()
    assert stop.waits == [10]
    assert pacer.rate_limited(err) == 20  # a second strike doubles the hold
    pacer.succeeded()
    assert pacer.rate_limited(RateLimitError("x", status=429, headers={"Retry-After": "45"})) == 45
    stop.set_ = True
    with pytest.raises(Stopped):
        pacer.wait_turn()


def test_backoff_doubles_up_to_its_cap_and_jitter_only_shortens():
    backoff = Backoff(base=30, cap=3600, jitter=0.25)
    assert [backoff.delay(n) for n in (1, 2, 3, 8, 100)] == [30, 60, 120, 3600, 3600]
    assert backoff.delay(2, draw=1.0) == 45


def test_schedule_spreads_first_polls_and_jitters_the_next_ones():
    draws = iter([0.0, 0.5, 1.0, 0.0, 1.0])
    schedule = Schedule(["a", "b", "c"], 900, now=0, draw=lambda: next(draws))
    assert schedule.due(0) == ["a"]
    assert schedule.due(3) == ["a", "b", "c"]  # spread over a second per handle
    for h in ("a", "b"):  # as the watch loop sets a polled handle's next poll
        schedule.set(h, 10 + schedule.next_in())
    assert schedule.due(10 + 809) == ["c"]
    assert schedule.due(10 + 991) == ["c", "a", "b"]


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("90", 90), ("0.5s", 0.5)])
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "1h30", "5 parsecs", "-1m"])
def test_bad_intervals(text):
    with pytest.raises(InputError):
        parse_interval(text)


def test_headers_and_urls():
    assert parse_header(f"Authorization:  Bearer {SECRET} ") == ("Authorization",
                                                                 f"Bearer {SECRET}")
    with pytest.raises(InputError) as bad:
        parse_header(f"Bad Name: {SECRET}")
    assert SECRET not in bad.value.message
    assert check_webhook_url("http://localhost:5678/webhook/x")
    assert check_webhook_url("http://10.0.0.2/x", allow_http=True)
    hook = Webhook("https://hooks.zapier.com/hooks/catch/123/abc/", headers={"X-Token": SECRET})
    assert SECRET not in repr(hook) and "abc" not in repr(hook) and "X-Token" in repr(hook)
    hook.close()


def test_delivery_parks_after_max_attempts_and_never_drops(db, receiver):
    store = open_database(db)
    event = {"eventId": "e1", "handle": "alice", "detectedAt": "now", "item": {"id": "1"}}
    store.save("k", {}, events=[("e1", "alice", event)])
    receiver.status = 503
    with Webhook(receiver.url) as hook:
        deliverer = Deliverer(store, hook, max_attempts=2, backoff=Backoff.immediate())
        first = deliverer.run_pass()
        second = deliverer.run_pass()
    assert (first.failed, first.parked, second.parked) == (1, 0, 1)
    [parked] = store.events(parked=True)
    assert parked.attempts == 2 and parked.last_error == "HTTP 503"
    store.close()


def _queue(store: Any, handles: int, each: int) -> list[str]:
    """`each` outbox events for each of `handles` handles; their ids."""
    ids = []
    for h in range(handles):
        handle = f"h{h}"
        events = [(f"{handle}-{i}", handle, {"eventId": f"{handle}-{i}", "handle": handle,
                                             "detectedAt": "now", "item": {"id": str(i)}})
                  for i in range(each)]
        store.save(f"k{h}", {}, events=events)
        ids += [e[0] for e in events]
    return ids


def test_events_of_a_handle_after_one_another_deliverer_holds_are_left_for_it_to_send_in_order(
        db, receiver, monkeypatch):
    store = open_database(db)
    ids = _queue(store, handles=1, each=3)
    found = store.due

    def due_then_one_claimed_elsewhere(now: float, **kwargs: Any) -> list[Any]:
        events = found(now, **kwargs)
        assert store.claim_events([ids[1]], "other", claim_for=600) == [ids[1]]  # meanwhile
        return events

    monkeypatch.setattr(store, "due", due_then_one_claimed_elsewhere)
    with Webhook(receiver.url) as hook:
        result = Deliverer(store, hook, backoff=Backoff.immediate()).run_pass()
    assert receiver.event_ids() == [ids[0]]  # not the third before the second
    assert (result.delivered, result.failed, result.held) == (1, 0, 0)
    # The third, claimed with the first but not sent, was given back at once.
    assert store.claim_events([ids[2]], "third", claim_for=600) == [ids[2]]
    assert store.backlog().pending == 2
    store.close()


def test_a_kept_alive_connection_dropped_once_holds_nothing_back(db):
    """The receiver closes one reused connection after reading a POST, without answering: that
    POST goes again at once on another connection, and the whole pass is delivered."""
    store = open_database(db)
    ids = _queue(store, handles=4, each=15)
    with Receiver(keep_alive=True) as receiver, Webhook(receiver.url) as hook:
        receiver.drop, receiver.reused_only = 1, True
        deliverer = Deliverer(store, hook, concurrency=4, backoff=Backoff.immediate())
        result = deliverer.run_pass()
        sent = receiver.event_ids()
    assert receiver.drop == 0  # the drop did happen
    assert (result.delivered, result.failed, result.held) == (60, 0, 0)
    assert store.backlog().pending == 0
    # The dropped POST arrived (and was read) before its retry: one duplicate, same key.
    assert sorted(set(sent)) == sorted(ids) and len(sent) == 61
    store.close()


def test_a_receiver_that_drops_every_post_is_held_back_after_three_in_a_row(db):
    """Each POST and its one retry get no answer: three events fail in a row, then the rest
    of the pass waits for the backoff."""
    store = open_database(db)
    _queue(store, handles=1, each=8)
    with Receiver(keep_alive=True) as receiver, Webhook(receiver.url) as hook:
        receiver.drop = 10**6
        result = Deliverer(store, hook, backoff=Backoff.immediate()).run_pass()
        posts = len(receiver.requests)
    assert (result.delivered, result.failed, result.held) == (0, 3, 5)
    assert posts == 6  # each of the three tried twice: once, and once more at once
    store.close()


def test_a_webhook_trickling_its_answer_ends_at_the_deadline():
    with TricklingServer(start=PARTS["headers"], every=0.5) as slow, \
            Webhook(slow.url + "/hook", timeouts=Timeouts(connect=1, read=5, total=2)) as hook:
        started = time.monotonic()
        reply = hook.post({"eventId": "e1"})
    assert elapsed(started) < 15  # 2 s and slack; without the deadline: minutes
    assert (reply.ok, reply.unreachable, reply.no_connection) == (False, True, False)
    assert reply.error == "no complete answer within the 2 s deadline"
    assert slow.requests == 1  # a slow receiver is not asked twice


def test_a_refused_connection_says_the_receiver_is_down_at_once(receiver):
    url = receiver.url
    receiver.stop()
    with Webhook(url) as hook:
        reply = hook.post({"eventId": "e1"})
    assert (reply.ok, reply.no_connection, reply.receiver_down) == (False, True, True)
