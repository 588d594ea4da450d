"""Workers: 1, 2 and 4 `watch --once` processes sharing one PostgreSQL over many handles.

The stand-in adds 50 ms to every request (a latency-bound cycle); every handle has one new
follow, so a cycle is one request per handle. Ideal wall time = requests x latency /
(workers x concurrency): what the workers would take if they shared the handles perfectly and
cost nothing else. Then the promise over the same handles: two workers, one killed with SIGKILL
a quarter of the way through its cycle; the other must deliver every follow.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from connector.standin import StandIn as BenchStandIn

from .report import Section, Target, ratio
from .scale import ROOT, Receiver

KEY = "bench-key"
LATENCY = 0.05
CONCURRENCY = 4
FOLLOWS = 5


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "connector.cli", *argv], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run(quick: bool = False) -> Section:
    handles = 60 if quick else 1000
    section = Section(
        name="workers",
        title=f"Workers: 1, 2 and 4 watch processes on one PostgreSQL, {handles:,} handles",
        method=(f"{handles:,} handles on the stand-in, {LATENCY * 1000:.0f} ms added to every "
                "request, one new follow per handle before each cycle; a local webhook "
                f"receiver. N `watch --once --concurrency {CONCURRENCY} --state-db "
                "postgresql://...` processes started together (PostgreSQL 15, default "
                "durability, on this machine). Wall: from the start of the first to the exit "
                f"of the last. Ideal = requests x latency / (N x {CONCURRENCY}). Requests above "
                "the handle count are handles polled twice: a worker that starts later re-polls "
                "what another polled before it began (harmless, nothing is sent twice)."),
        headers=["workers", "requests", "delivered", "delivered twice", "wall", "ideal",
                 "wall / ideal", "exits"],
    )
    try:
        from tests.pgserver import TempPostgres, unavailable
    except ImportError:
        section.skipped = "tests/pgserver.py is not here (run from a source checkout)"
        return section
    reason = unavailable()
    if reason:
        section.skipped = f"no PostgreSQL: {reason}"
        return section
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    try:
        with TempPostgres(durable=True) as server, \
                BenchStandIn(api_keys=(KEY,), latency=LATENCY, rate_limit=10**9) as sb, \
                Receiver() as receiver:
            url = server.new_database()
            names = [f"worker{i:04d}" for i in range(handles)]
            for name in names:
                sb.add_account(name, FOLLOWS)
            handles_file = tmp / "handles.txt"
            handles_file.write_text("\n".join(names) + "\n")
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("TIKTOK_FOLLOWING_", "DUMPLINGAI_"))}
            env["DUMPLINGAI_API_KEY"] = KEY
            argv = ["--base-url", sb.url, "watch", "--handles-file", str(handles_file),
                    "--webhook", receiver.url, "--once", "--state-db", url,
                    "--concurrency", str(CONCURRENCY)]
            baseline = _start(argv, env)
            if baseline.wait(600) != 0:
                raise RuntimeError(f"baseline cycle failed: {baseline.communicate()[1][-500:]}")
            for workers in (1, 2, 4):
                for name in names:
                    sb.follow(name)
                sb.reset_log()
                posts, seen = receiver.posts, len(receiver.event_ids)
                started = time.perf_counter()
                procs = [_start(argv, env) for _ in range(workers)]
                codes = [p.wait(900) for p in procs]
                wall = time.perf_counter() - started
                requests = sb.count_requests()
                delivered = len(receiver.event_ids) - seen
                twice = (receiver.posts - posts) - delivered
                ideal = requests * LATENCY / (workers * CONCURRENCY)
                section.rows.append([str(workers), f"{requests:,}", f"{delivered:,}",
                                     str(twice), f"{wall:.2f} s", f"{ideal:.2f} s",
                                     ratio(wall / ideal), " ".join(map(str, codes))])
                section.targets.append(Target(
                    f"{workers} worker(s): every follow delivered, none twice",
                    f"{delivered:,} of {handles:,}, {twice} twice, exits "
                    f"{' '.join(map(str, codes))}",
                    delivered == handles and twice == 0 and set(codes) == {0}))
            # The promise under a kill: two workers, one killed a quarter of the way through.
            for name in names:
                sb.follow(name)
            sb.reset_log()
            posts, seen = receiver.posts, len(receiver.event_ids)
            doomed, survivor = _start(argv, env), _start(argv, env)
            deadline = time.monotonic() + 300
            while sb.count_requests() < handles // 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(30)
            code = survivor.wait(900)
            delivered = len(receiver.event_ids) - seen
            twice = (receiver.posts - posts) - delivered
            section.rows.append(["2, one killed (SIGKILL) at 25%", f"{sb.count_requests():,}",
                                 f"{delivered:,}", str(twice), "-", "-", "-",
                                 f"killed {code}"])
            section.targets.append(Target(
                "a worker killed mid-cycle loses nothing (its handles polled by the other)",
                f"{delivered:,} of {handles:,} delivered, {twice} twice, survivor exit {code}",
                delivered == handles and code == 0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    section.notes.append(
        "The machine has 2 cores shared by the stand-in, the receiver, PostgreSQL and every "
        "worker: with more workers the CPU each poll costs (interpreter, JSON, TLS-free HTTP, "
        "commits) is what keeps the wall time from falling with the ideal.")
    section.notes.append(
        "A killed worker's leases end when its process does (its session's advisory lock goes "
        "with it), so the other worker takes its handles over at once; the lease time "
        "(`--lease`, 5 minutes) only matters when a machine vanishes without closing its "
        "connections.")
    return section
