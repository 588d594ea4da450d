"""Many `watch` workers on one database, as separate processes: each handle polled by one
worker per interval, every follow delivered, none twice when nothing fails, and a worker
killed with SIGKILL mid-cycle loses nothing. (The benchmark runs this over 1,000 handles.)"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.core.items import identity
from connector.operations.events import event_id
from connector.standin import StandIn
from tests.receiver import Receiver
from tests.support import API_KEY, ROOT

HANDLES = [f"w{i:03d}" for i in range(30)]
INTERVAL = 3.0
JITTER = 0.1


class TimedStandIn(StandIn):
    """The stand-in, also noting when each handle was asked for (monotonic seconds)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(api_keys=(API_KEY,), rate_limit=10**9, **kwargs)
        self.asked: list[tuple[float, str]] = []

    def _dispatch(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Any:
        import json

        try:
            handle = json.loads(raw).get("handle")
        except (ValueError, AttributeError):
            handle = None
        with self.lock:
            self.asked.append((time.monotonic(), handle))
        return super()._dispatch(method, path, headers, raw)


@pytest.fixture
def standin() -> Iterator[TimedStandIn]:
    with TimedStandIn() as server:
        for handle in HANDLES:
            server.add_account(handle, 3)
        yield server


def worker(standin: StandIn, db: str, receiver: Receiver, handles_file: Path,
           *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIKTOK_FOLLOWING_")}
    env["DUMPLINGAI_API_KEY"] = API_KEY
    return subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "--base-url", standin.url, "-v", "watch",
         "--handles-file", str(handles_file), "--webhook", receiver.url, "--state-db", db,
         *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)


def collect(proc: subprocess.Popen, into: list[str]) -> threading.Thread:
    """Read a worker's stderr as it goes (a full pipe would block it)."""
    def read() -> None:
        assert proc.stderr is not None
        into.extend(proc.stderr)
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def setup(standin, receiver, tmp_path, request):
    """The database (a SQLite file or PostgreSQL), the handles file, and a baseline taken by
    one `watch --once`; then one new follow per handle. Returns what the workers need and the
    event ids that must arrive."""
    backend = request.param
    db = (str(tmp_path / "w.db") if backend == "sqlite"
          else request.getfixturevalue("postgres_url"))
    handles_file = tmp_path / "handles.txt"
    handles_file.write_text("\n".join(HANDLES) + "\n")
    first = worker(standin, db, receiver, handles_file, "--once", "--concurrency", "8")
    assert first.wait(60) == 0, first.communicate()[1]
    expected = [event_id(h, identity(u)) for h in HANDLES for u in standin.follow_many(h, 1)]
    standin.asked.clear()
    return db, handles_file, expected


@pytest.mark.slow
@pytest.mark.parametrize(("setup", "workers"), [("sqlite", 2), ("postgres", 2),
                                                ("postgres", 4)], indirect=["setup"])
def test_workers_share_the_handles_poll_each_once_per_interval_and_deliver_each_follow_once(
    standin, receiver, setup, workers
):
    db, handles_file, expected = setup
    standin.latency = 0.02
    logs: list[list[str]] = [[] for _ in range(workers)]
    procs = [worker(standin, db, receiver, handles_file, "--interval", f"{INTERVAL}s",
                    "--concurrency", "2", "--lease", "20s") for _ in range(workers)]
    readers = [collect(p, log) for p, log in zip(procs, logs, strict=True)]
    try:
        assert receiver.wait_for(len(expected), timeout=45), [log[-3:] for log in logs]
        time.sleep(INTERVAL)  # a second round of polls: nothing new, nothing sent twice
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(30) for proc in procs]
        for reader in readers:
            reader.join(5)
    assert codes == [0] * workers, [log[-3:] for log in logs]

    # Every follow delivered, none twice.
    assert sorted(receiver.event_ids()) == sorted(expected)
    # Each handle polled by one worker per interval: never twice within an interval.
    times: dict[str, list[float]] = {}
    for at, handle in standin.asked:
        times.setdefault(handle, []).append(at)
    assert set(times) == set(HANDLES)
    closest = min(b - a for ts in times.values() for a, b in itertools.pairwise(ts))
    assert closest >= INTERVAL * (1 - JITTER) - 0.05
    # And the work was shared: every worker polled some handles.
    polled = [sum("new follows" in line and "queued" in line for line in log) for log in logs]
    assert all(polled), polled


@pytest.mark.slow
@pytest.mark.parametrize("setup", ["sqlite", "postgres"], indirect=True)
def test_a_worker_killed_mid_cycle_loses_nothing_and_its_handles_are_taken_over(
    standin, receiver, setup
):
    db, handles_file, expected = setup
    standin.latency = 0.25  # a cycle of 30 handles, 3 at a time: about 2.5 s
    doomed = worker(standin, db, receiver, handles_file, "--once", "--concurrency", "3",
                    "--lease", "10m")
    deadline = time.monotonic() + 20
    while len(standin.asked) < 9:  # polls in flight, some committed, most not yet claimed
        assert time.monotonic() < deadline and doomed.poll() is None
        time.sleep(0.01)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    polled_before = {h for _, h in standin.asked}
    assert len(polled_before) < len(HANDLES)

    # A second worker at once: the dead one's leases (10 minutes) end with its process.
    started = time.monotonic()
    survivor = worker(standin, db, receiver, handles_file, "--once", "--concurrency", "8")
    _, err = survivor.communicate(timeout=60)
    assert survivor.returncode == 0, err
    assert time.monotonic() - started < 30
    # Every follow delivered. A POST the killed worker had in flight may come again (its
    # answer was lost with the process: the documented duplicate, same Idempotency-Key), at
    # most one per delivery it had under way.
    got = receiver.event_ids()
    assert set(got) == set(expected)
    assert len(got) - len(set(got)) <= 3


@pytest.mark.slow
@pytest.mark.parametrize("setup", ["sqlite", "postgres"], indirect=True)
def test_a_running_worker_takes_over_a_killed_workers_handles_soon_not_a_lease_later(
    standin, receiver, setup
):
    """Two running workers, a 10-minute lease: one is killed with polls in flight. The other
    had found some of its handles held (asked again after at most TAKEOVER_RECHECK, 5 s, not
    when the lease ends), so it polls them within seconds and delivers their new follows."""
    db, handles_file, expected = setup
    standin.latency = 0.1
    logs: list[list[str]] = [[], []]
    args = ("--interval", f"{INTERVAL}s", "--concurrency", "3", "--lease", "10m")
    doomed = worker(standin, db, receiver, handles_file, *args)
    survivor = worker(standin, db, receiver, handles_file, *args)
    readers = [collect(p, log) for p, log in zip((doomed, survivor), logs, strict=True)]
    try:
        assert receiver.wait_for(len(expected), timeout=45), [log[-3:] for log in logs]
        # Both at work, each finding some of the other's handles held: kill one mid-poll.
        deadline = time.monotonic() + 20
        start = len(standin.asked)
        while len(standin.asked) < start + 40:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        more = [event_id(h, identity(u)) for h in HANDLES for u in standin.follow_many(h, 1)]
        # Every handle's new follow within seconds, not after the dead worker's 10 minutes.
        assert receiver.wait_for(len(expected) + len(more), timeout=25), logs[1][-5:]
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.wait(30)
        for reader in readers:
            reader.join(5)
    assert set(receiver.event_ids()) == set(expected) | set(more)
