"""Scale: `tiktok-following watch --once` over many handles, with latency on every request.

The stand-in (a BenchStandIn adding `latency` to each request) and a webhook receiver run in
this process; `watch` runs as the user runs it, in a child process of its own, which reports
its peak memory (benchmarks/peakmem.py). Ideal wall time for a cycle = requests x latency /
concurrency: what a client that keeps `concurrency` requests in flight at all times and costs
nothing else would take.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .report import Section, Target, ratio, size
from .standin import BenchStandIn

KEY = "bench-key"
LATENCY = 0.05
FOLLOWS = 20  # existing follows per handle
TARGET = 1.3
HIGH_CONCURRENCY = 16


class Receiver:
    """A webhook receiver on loopback that answers 204 and counts the events it got."""

    def __init__(self) -> None:
        self.posts = 0
        self.event_ids: set[str] = set()
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key")
                if key is None:
                    try:
                        key = json.loads(body).get("eventId")
                    except (ValueError, AttributeError):
                        key = None
                with lock:
                    receiver.posts += 1
                    if key:
                        receiver.event_ids.add(key)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


ROOT = Path(__file__).resolve().parent.parent


def default_concurrency() -> tuple[int | None, str | None]:
    """`watch`'s default concurrency from its --help, or why `watch` cannot be benchmarked."""
    proc = subprocess.run([sys.executable, "-m", "connector.cli", "watch", "--help"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"`tiktok-following watch --help` exits {proc.returncode} ({tail})"
    if "--once" not in proc.stdout or "--handles-file" not in proc.stdout:
        return None, "`tiktok-following watch` has no --once or --handles-file option yet"
    # One block per option: from a line starting with "-" to the next one.
    for block in re.split(r"\n(?=\s*-)", proc.stdout):
        if block.strip().startswith("--concurrency"):
            match = re.search(r"default:?\s*(\d+)", " ".join(block.split()))
            return (int(match.group(1)) if match else None), None
    return None, None


def _cycle(argv: list[str], env: dict[str, str], tmp: Path) -> tuple[float, int, int, str]:
    """Run one `watch --once`; returns wall seconds, exit code, peak RSS in bytes, stderr."""
    report = tmp / "peak.json"
    report.unlink(missing_ok=True)
    # peakmem wraps the CLI to read its own memory high-water mark (see benchmarks/peakmem.py).
    argv = [sys.executable, "-m", "benchmarks.peakmem", str(report), "connector.cli", *argv]
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        wall = time.perf_counter() - started
        err.seek(0)
        stderr = err.read()
    peak = json.loads(report.read_text())["peak_rss"] if report.exists() else None
    return wall, proc.returncode, peak or 0, stderr


def run(quick: bool = False) -> Section:
    handles = 50 if quick else 1000
    section = Section(
        name="scale",
        title=f"Scale: one watch --once cycle over {handles:,} handles",
        method=(f"{handles:,} handles with {FOLLOWS} follows each on the stand-in, "
                f"{LATENCY * 1000:.0f} ms added to every request; a local webhook receiver "
                "answering 204. `tiktok-following --base-url STAND-IN watch --handles-file F "
                "--webhook RECEIVER --once --state-db DB [--concurrency N]` in a child process. "
                "Ideal = requests x latency / concurrency; wall is the whole command, "
                "interpreter start-up and webhook deliveries included. In-flight peak is the "
                "most requests the stand-in saw at once. Cycles: the first poll of every handle "
                "(a baseline, nothing delivered); then, each after one new follow per handle, "
                f"one at the default concurrency, one at {HIGH_CONCURRENCY}, and one without the "
                "added latency (the work latency cannot hide)."),
        headers=["cycle", "concurrency", "requests", "deliveries", "wall", "ideal",
                 "wall / ideal", "in-flight peak", "peak RSS", "exit"],
    )
    concurrency, missing = default_concurrency()
    if missing:
        section.skipped = (f"{missing}. Rerun `python benchmarks/run.py --only scale` once "
                           "`watch` has landed.")
        section.targets.append(Target(f"{handles:,}-handle cycle within {TARGET}x the ideal",
                                      "watch not available", None))
        return section
    if concurrency is None:
        concurrency = 4
        section.notes.append("watch --help states no default concurrency; 4 was passed.")
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        with BenchStandIn(api_keys=(KEY,), latency=LATENCY, rate_limit=10**9) as sb, \
                Receiver() as receiver:
            names = [f"watched{i:04d}" for i in range(handles)]
            for name in names:
                sb.add_account(name, FOLLOWS)
            handles_file = tmp / "handles.txt"
            handles_file.write_text("\n".join(names) + "\n")
            env = {**os.environ, "DUMPLINGAI_API_KEY": KEY}
            env.pop("DUMPLINGAI_BASE_URL", None)
            base = ["--base-url", sb.url, "watch", "--handles-file", str(handles_file),
                    "--webhook", receiver.url, "--once", "--state-db", str(tmp / "watch.db")]
            plan = [("baseline (first poll)", concurrency, False, LATENCY),
                    ("1 new follow per handle", concurrency, True, LATENCY),
                    ("1 new follow per handle", HIGH_CONCURRENCY, True, LATENCY),
                    ("1 new follow per handle, no added latency", concurrency, True, 0.0)]
            for label, n, add, latency in plan:
                if add:
                    for name in names:
                        sb.follow(name)
                sb.latency = latency
                sb.reset_log()
                sb.peak_in_flight = 0
                posts_before = receiver.posts
                argv = base if n == concurrency else [*base, "--concurrency", str(n)]
                wall, code, rss, stderr = _cycle(argv, env, tmp)
                requests = sb.count_requests()
                ideal = requests * latency / n
                delivered = receiver.posts - posts_before
                section.rows.append([
                    label, f"{n}{' (default)' if n == concurrency else ''}", f"{requests:,}",
                    f"{delivered:,}", f"{wall:.2f} s", f"{ideal:.2f} s" if ideal else "-",
                    ratio(wall / ideal) if ideal else "-", str(sb.peak_in_flight), size(rss),
                    str(code)])
                summary = [line for line in stderr.splitlines() if line.strip()]
                if summary:
                    section.notes.append(f"{label}, concurrency {n}: `{summary[-1].strip()}`")
                if not latency:
                    section.notes.append(
                        f"Without added latency a cycle of {handles:,} handles takes "
                        f"{wall:.2f} s: about {wall / handles * 1000:.1f} ms per handle of "
                        "work that latency cannot hide (interpreter start-up, each poll's state "
                        "and outbox commit, the webhook POST), shared by 2 cores with the "
                        "stand-in. It is what keeps higher concurrencies further from their "
                        "ideal.")
                if add and n == concurrency and latency:
                    section.targets.append(Target(
                        f"{handles:,}-handle cycle within {TARGET}x the ideal "
                        f"(concurrency {n})",
                        f"{ratio(wall / ideal)} ({wall:.2f} s against {ideal:.2f} s)",
                        wall / ideal <= TARGET))
                    lost = handles - delivered
                    section.targets.append(Target(
                        "zero follows lost (one new follow per handle, each delivered)",
                        f"{delivered:,} of {handles:,} delivered, exit {code}",
                        lost <= 0 and code == 0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return section
