"""`watch --processes N`: the handles split over N child processes sharing one database and
one webhook, which to the user is still one watch: one summary per cycle, one exit code, one
stop. Every follow delivered, none twice when nothing fails; a child killed mid-cycle loses
nothing; bad input is refused before anything is sent; the key stays out of every log line."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from connector.core.errors import InputError
from connector.core.http import RateLimit
from connector.core.items import identity
from connector.operations.events import event_id
from connector.standin import StandIn
from connector.watch import CycleSummary, DeliveryPass, WatcherGroup
from connector.watch.delivery import Backoff
from connector.watch.processes import Intervals, auto_processes, shards
from tests.receiver import Receiver
from tests.support import API_KEY, run_cli, start_cli

HANDLES = [f"p{i:03d}" for i in range(24)]


@pytest.fixture
def standin():
    with StandIn(api_keys=(API_KEY,), rate_limit=10**9) as server:
        for handle in HANDLES:
            server.add_account(handle, 3)
        yield server


def group(standin: StandIn, receiver: Receiver, db: str, **options) -> WatcherGroup:
    options.setdefault("processes", 2)
    options.setdefault("concurrency", 4)
    return WatcherGroup(HANDLES, receiver.url, store=db, backoff=Backoff.immediate(),
                        credentials={"apiKey": API_KEY, "baseUrl": standin.url}, **options)


def new_follows(standin: StandIn) -> list[str]:
    """One new follow for every handle; the event ids that must arrive."""
    return [event_id(h, identity(u)) for h in HANDLES for u in standin.follow_many(h, 1)]


def cli_watch(standin: StandIn, receiver: Receiver, db: str, *args: str):
    handles = Path(db).with_suffix(".txt") if "://" not in db else None
    if handles is None:
        return run_cli("--base-url", standin.url, "watch", *HANDLES, "--webhook", receiver.url,
                       "--state-db", db, *args, timeout=120)
    handles.write_text("\n".join(HANDLES) + "\n")
    return run_cli("--base-url", standin.url, "watch", "--handles-file", str(handles),
                   "--webhook", receiver.url, "--state-db", db, *args, timeout=120)


# The parts


def test_auto_is_one_process_per_eight_in_flight_at_most_one_per_core_and_100_handles():
    assert auto_processes(4, 1000, cpus=2) == 1
    assert auto_processes(15, 1000, cpus=2) == 1
    assert auto_processes(16, 1000, cpus=2) == 2
    assert auto_processes(64, 1000, cpus=2) == 2
    assert auto_processes(64, 1000, cpus=8) == 8
    assert auto_processes(64, 250, cpus=8) == 2
    assert auto_processes(16, 199, cpus=2) == 1
    assert auto_processes(16, 3, cpus=8) == 1
    assert auto_processes(16, 1000, cpus=1) == 1


def test_shards_are_disjoint_cover_every_handle_and_split_the_concurrency():
    handles = tuple(f"h{i}" for i in range(11))
    parts = shards(handles, 3, 16)
    assert [share for _, share in parts] == [6, 5, 5]
    assert sorted(h for shard, _ in parts for h in shard) == sorted(handles)
    assert [len(shard) for shard, _ in parts] == [4, 4, 3]


def test_summaries_of_shards_add_up_to_one():
    a, b = CycleSummary(3), CycleSummary(2)
    a.polled, b.polled = {"x", "y"}, {"z"}
    b.failed = {"w": "404 not_found"}
    a.new_follows, b.new_follows = 2, 5
    a.requests, b.requests = 3, 2
    a.credits, b.credits = 30, 20
    a.delivery, b.delivery = DeliveryPass(delivered=2), DeliveryPass(delivered=4, failed=1,
                                                                     last_error="HTTP 500")
    a.rate_limit, b.rate_limit = RateLimit(100, 80), RateLimit(100, 60)
    b.pending = 1
    merged = CycleSummary.merged([a, b], handles=5)
    assert merged.line() == (
        # The fifth handle (shard a's third) was neither polled nor failed: not due.
        "watch: 3/5 handles polled, 1 not due, 7 new follows, 5 requests, 50 credits, rate "
        "limit 60/100 "
        "left; delivered 6, pending 1, parked 0; 1 failed delivery (HTTP 500); failed: "
        "@w (404 not_found)")
    assert not merged.ok
    assert CycleSummary.merged([a], handles=3).unfollows is None


def interval(polled: set[str], new: int, *, stopped: bool = False) -> CycleSummary:
    summary = CycleSummary(len(polled), polled=set(polled), new_follows=new, stopped=stopped)
    return summary


def test_an_interval_is_reported_once_every_running_process_has_reported_it():
    intervals = Intervals([1, 2], handles=4)
    intervals.add(1, interval({"a", "b"}, 1))
    assert intervals.complete() == []  # process 2 has not reported it yet
    intervals.add(1, interval({"a", "b"}, 2))
    intervals.add(2, interval({"c", "d"}, 3))
    [first] = intervals.complete()
    assert (first.polled, first.new_follows, first.handles) == ({"a", "b", "c", "d"}, 4, 4)
    # Stopping: process 1 got one more interval in before its last summary; neither is paired
    # with process 2's last one, and the end is one summary, not two.
    intervals.queued[1][0].pending = 9  # process 1's outbox after that interval...
    intervals.add(1, interval({"a"}, 5, stopped=True))
    intervals.queued[1][1].pending = 4  # ...and as it stopped: 4 left, not 9 + 4
    intervals.add(2, interval({"c"}, 0, stopped=True))
    intervals.queued[2][0].pending = 1
    intervals.end(1)
    intervals.end(2)
    assert intervals.complete() == []
    last = intervals.last()
    assert last.stopped and last.new_follows == 7 and last.polled == {"a", "b", "c"}
    assert last.pending == 5


def test_the_intervals_of_the_others_go_on_when_a_process_dies():
    intervals = Intervals([1, 2], handles=4)
    intervals.add(2, interval({"c"}, 1))
    intervals.end(1)  # died before reporting
    [only] = intervals.complete()
    assert only.polled == {"c"} and only.handles == 4
    assert intervals.last().new_follows == 0


# The Python API


def test_a_group_runs_its_shards_in_child_processes_and_reports_one_cycle(
        standin, receiver, tmp_path):
    db = str(tmp_path / "w.db")
    with group(standin, receiver, db) as g:
        pids = g.pids
        assert len(set(pids)) == 2 and os.getpid() not in pids
        assert g.location == db
        first = g.run_cycle()
        assert (first.handles, len(first.polled), first.baselined) == (24, 24, 24)
        expected = new_follows(standin)
        standin.reset_log()
        second = g.run_cycle()
    assert second.ok and second.new_follows == 24 and second.delivery.delivered == 24
    assert sorted(receiver.event_ids()) == sorted(expected)
    # Each handle polled once: the shards never overlap.
    assert standin.count_requests() == 24
    assert all(standin.count_requests(h) == 1 for h in HANDLES)
    for pid in pids:  # closed: the children are gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_group_shares_the_database_with_a_single_watcher(standin, receiver, any_db):
    """State written by two processes is the one state: a later single-process watch sees
    every handle baselined and finds only what is new."""
    from connector.watch import Watcher

    with group(standin, receiver, any_db) as g:
        g.run_cycle()
    expected = new_follows(standin)
    with Watcher(HANDLES, receiver.url, store=any_db, backoff=Backoff.immediate(),
                 credentials={"apiKey": API_KEY, "baseUrl": standin.url}) as single:
        summary = single.run_cycle()
    assert summary.ok and summary.baselined == 0 and summary.new_follows == 24
    assert sorted(receiver.event_ids()) == sorted(expected)


def test_a_group_watching_unfollows_too_adds_up_both_kinds(standin, receiver, tmp_path):
    db = str(tmp_path / "w.db")
    with group(standin, receiver, db, events=("followed", "unfollowed")) as g:
        g.run_cycle()
        gone = {h: standin.following(h)[0]["id"] for h in HANDLES[:2]}  # one in each shard
        for handle, user_id in gone.items():
            standin.unfollow(handle, user_id)
        standin.follow_many(HANDLES[2], 1)
        summary = g.run_cycle()
    assert summary.ok and (summary.unfollows, summary.new_follows) == (2, 1)
    assert "2 unfollows" in summary.line()
    kinds = sorted(r.body.get("event", "followed") for r in receiver)
    assert kinds == ["followed", "unfollowed", "unfollowed"]


def test_bad_input_is_refused_before_any_request(standin, receiver, tmp_path):
    with pytest.raises(InputError) as err:
        group(standin, receiver, str(tmp_path / "w.db"), count=0)
    assert err.value.field == "count"
    with pytest.raises(InputError) as err:
        group(standin, receiver, str(tmp_path / "w.db"), processes=3, concurrency=2)
    assert err.value.field == "processes" and "--concurrency" in err.value.message
    assert standin.count_requests() == 0


def test_a_child_killed_mid_cycle_loses_nothing(standin, receiver, tmp_path):
    db = str(tmp_path / "w.db")
    with group(standin, receiver, db) as g:
        g.run_cycle()
        expected = new_follows(standin)
        standin.latency = 0.15  # 12 handles a child, 2 at a time: about a second a shard
        victim = g.pids[1]
        killer = threading.Timer(0.4, os.kill, (victim, signal.SIGKILL))
        killer.start()
        summary = g.run_cycle()
        killer.join()
        assert not summary.ok
        lost = [h for h, why in summary.failed.items() if "killed by signal 9" in why]
        assert lost and set(lost) <= set(HANDLES[1::2])  # the second shard's handles
        # The survivor keeps going; the dead one's handles are reported, not dropped.
        standin.latency = 0.0
        again = g.run_cycle()
        assert set(again.failed) == set(HANDLES[1::2])
    with group(standin, receiver, db) as g:
        assert g.run_cycle().ok
    # Every follow arrived; a POST cut off by the kill may arrive twice (at-least-once).
    assert set(receiver.event_ids()) == set(expected)


def test_run_reports_one_summary_per_interval_and_stops_on_request(standin, receiver, tmp_path):
    summaries: list[CycleSummary] = []
    with group(standin, receiver, str(tmp_path / "w.db"), interval=0.5, jitter=0.0) as g:
        def on_summary(summary: CycleSummary) -> None:
            summaries.append(summary)
            if len(summaries) == 2:
                g.stop()
        finished = threading.Event()
        thread = threading.Thread(target=lambda: (g.run(on_summary), finished.set()))
        thread.start()
        assert finished.wait(30), "the group did not stop"
        thread.join()
    assert len(summaries) == 3 and summaries[-1].stopped and not summaries[0].stopped
    assert all(s.handles == 24 for s in summaries)
    # The first interval baselined every handle, once, across both processes.
    assert sum(s.baselined for s in summaries) == 24


# The command line


@pytest.mark.parametrize(("concurrency", "handles", "expected"), [
    ("16", 200, 2), ("16", 199, 1), ("8", 1000, 1)])
def test_watch_runs_as_many_processes_as_auto_says(monkeypatch, concurrency, handles,
                                                   expected):
    """The default `--processes auto` reaches the watch: a group from 16 in flight and 200
    handles up (on 2 cores), one Watcher below."""
    from connector.cli import watch as cli_watch_module
    from connector.watch import processes, watcher

    made: list[tuple[str, int]] = []

    class Fake:
        def __init__(self, handles, webhook, processes=1, **options):
            made.append((type(self).__name__, processes))
            raise InputError("stop here", field="handle")

    monkeypatch.setattr(processes, "usable_cpus", lambda: 2)
    monkeypatch.setattr(processes, "WatcherGroup", type("WatcherGroup", (Fake,), {}))
    monkeypatch.setattr(watcher, "Watcher", type("Watcher", (Fake,), {}))
    args = cli_watch_module.argparse.Namespace(
        processes="auto", concurrency=int(concurrency), verbose=0,
        secrets=type("S", (), {"values": []})())
    with pytest.raises(InputError):
        cli_watch_module._watcher(args, [f"h{i}" for i in range(handles)], None, {}, {})
    assert made == [("WatcherGroup" if expected > 1 else "Watcher", expected)]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_watch_processes_delivers_every_follow_once(standin, receiver, tmp_path, backend,
                                                    request):
    db = (str(tmp_path / "w.db") if backend == "sqlite"
          else request.getfixturevalue("postgres_url"))
    first = cli_watch(standin, receiver, db, "--once", "--processes", "2")
    assert first.code == 0, first.stderr
    assert "24/24 handles polled (24 baselined)" in first.stderr
    expected = new_follows(standin)
    standin.reset_log()
    second = cli_watch(standin, receiver, db, "--once", "--processes", "2", "--concurrency", "4")
    assert second.code == 0, second.stderr
    assert second.stderr.strip().splitlines()[-1].startswith(
        "watch: 24/24 handles polled, 24 new follows, 24 requests, 240 credits")
    assert sorted(receiver.event_ids()) == sorted(expected)  # each once
    assert all(standin.count_requests(h) == 1 for h in HANDLES)


def test_watch_processes_keeps_secrets_out_of_its_childrens_logs(standin, receiver, tmp_path):
    hook = receiver.url + "/s3cr3t-path"
    run = run_cli("--base-url", standin.url, "-vv", "watch", *HANDLES[:4], "--webhook", hook,
                  "--header", "X-Token: hunter2-token", "--state-db", str(tmp_path / "w.db"),
                  "--once", "--processes", "2", "--concurrency", "2")
    assert run.code == 0, run.stderr
    assert "@p001" in run.stderr and "@p000" in run.stderr  # both children logged their polls
    for secret in (API_KEY, "s3cr3t-path", "hunter2-token"):
        assert secret not in run.stderr and secret not in run.stdout


def test_watch_processes_refuses_more_processes_than_concurrency(standin, receiver, tmp_path):
    run = cli_watch(standin, receiver, str(tmp_path / "w.db"), "--once", "--processes", "3",
                    "--concurrency", "2")
    assert run.code == 2
    assert "concurrency (2) must be at least the number of processes (3)" in run.stderr
    assert "raise --concurrency or lower --processes" in run.stderr
    assert standin.count_requests() == 0


def test_sigterm_stops_every_process_and_exits_zero(standin, receiver, tmp_path):
    proc = start_cli("--base-url", standin.url, "watch", *HANDLES, "--webhook", receiver.url,
                     "--state-db", str(tmp_path / "w.db"), "--interval", "1s",
                     "--processes", "2")
    lines: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("watch: 24/24 handles polled"):
            break
    children = [pid for pid in Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
                .read_text().split() if "resource_tracker" not in
                Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(children) == 2, [Path(f"/proc/{pid}/cmdline").read_text() for pid in children]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    lines += proc.stderr.read().splitlines()
    assert lines[-1].rstrip().endswith("[stopped]")
    time.sleep(0.2)
    for pid in map(int, children):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("spending", [
    {"budget": "300/day", "events": ("followed", "unfollowed")},  # too small for both
    {"min_interval": 10.0},  # bounds of a fixed schedule
    {"schedule": "adaptive", "min_interval": 600.0, "max_interval": 60.0},
    {"budget": "lots"},
])
def test_a_group_refuses_what_a_watcher_refuses_of_spending_before_starting_a_process(
    spending, monkeypatch, tmp_path
):
    """One rule for Watcher and WatcherGroup (arguments.check_spending), checked by the
    group's own constructor: no process is started for options that cannot run."""
    from connector.watch import Watcher, processes

    def no_process(*args: object) -> None:
        raise AssertionError("a process was started for options that cannot run")

    monkeypatch.setattr(processes.multiprocessing, "get_context", no_process)
    common = {"store": str(tmp_path / "w.db"), "credentials": {"apiKey": "k"}, **spending}
    with pytest.raises(InputError) as alone:
        Watcher(["alice", "bob"], "http://127.0.0.1:9/x", **common)
    with pytest.raises(InputError) as grouped:
        WatcherGroup(["alice", "bob"], "http://127.0.0.1:9/x", processes=2, **common)
    assert (str(grouped.value), grouped.value.field) == (str(alone.value), alone.value.field)
