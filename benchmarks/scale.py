"""Scale: `tiktok-following watch --once` over many handles, with latency on every request.

The stand-in (a StandIn adding `latency` to each request) and a webhook receiver run in
this process; `watch` runs as the user runs it, in a child process of its own, which reports
the time of its cycle, its CPU time and its peak memory (`python -m benchmarks.scale --child`).
Ideal wall time for a cycle = requests x latency / concurrency: what a client that keeps
`concurrency` requests in flight at all times and costs nothing else would take.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from connector.standin import StandIn

from .report import Section, Target, ratio, size

KEY = "bench-key"
LATENCY = 0.05
FOLLOWS = 20  # existing follows per handle
TARGET = 1.3
HIGH_CONCURRENCY = 16
#: Past what one process's CPU keeps up with on a small machine: where --processes pays.
CPU_BOUND_CONCURRENCY = 32
#: Cycles measured at each concurrency (the median is the figure): the machine is shared.
REPEATS = 5


class Receiver:
    """A webhook receiver on loopback that answers 204 and counts the events it got (and
    notes when each first arrived)."""

    def __init__(self) -> None:
        self.posts = 0
        self.event_ids: set[str] = set()
        self.arrived: dict[str, float] = {}
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
                        receiver.arrived.setdefault(key, time.time())
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            # A real receiver's listen backlog: socketserver's 5 overflows when watch's
            # processes open their webhook connections at once, and the kernel resets some.
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def _cycle(argv: list[str], env: dict[str, str], tmp: Path) -> dict[str, Any]:
    """Run one `watch --once` in a child process: its wall time, the time of the cycle itself
    (from the first poll to the last delivery), its CPU time, peak RSS, exit code, stderr."""
    report = tmp / "cycle.json"
    report.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "benchmarks.scale", "--child", str(report), *argv]
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        err.seek(0)
        stderr = err.read()
    child = json.loads(report.read_text()) if report.exists() else {}
    return {"wall": wall, "cycle": child.get("cycle") or wall,
            "processes": child.get("processes") or 1,
            "cpu": usage.ru_utime + usage.ru_stime, "rss": child.get("peak_rss") or 0,
            "code": os.waitstatus_to_exitcode(status), "stderr": stderr}


def _child(out: str, args: list[str]) -> int:
    """`python -m benchmarks.scale --child OUT CLI-ARGS...`: the CLI as the user runs it, with
    the duration of `Watcher.run_cycle` and the peak memory written to OUT at exit."""
    from benchmarks.peakmem import peak_rss_bytes
    from connector.cli import main
    from connector.watch.processes import WatcherGroup
    from connector.watch.watcher import Watcher

    timed: list[float] = []
    processes: list[int] = []
    #: Peak memory of a WatcherGroup's processes, read while they are still there.
    children_rss: list[int] = []

    def timing(cls: Any) -> None:
        # A WatcherGroup's cycle runs in its processes, started and ready before it begins.
        run_cycle = cls.run_cycle

        def timed_cycle(self: Any) -> Any:
            processes.append(getattr(self, "processes", 1))
            started = time.perf_counter()
            try:
                return run_cycle(self)
            finally:
                timed.append(time.perf_counter() - started)
                children_rss.extend(peak_rss_bytes(pid) or 0 for pid in
                                    getattr(self, "pids", ()))

        cls.run_cycle = timed_cycle

    timing(Watcher)
    timing(WatcherGroup)
    try:
        return main(args)
    finally:
        Path(out).write_text(json.dumps({"cycle": timed[0] if timed else None,
                                         "processes": processes[0] if processes else None,
                                         "peak_rss": (peak_rss_bytes() or 0)
                                         + sum(children_rss)}))


def run(quick: bool = False) -> Section:
    handles = 50 if quick else 1000
    repeats = 1 if quick else REPEATS
    section = Section(
        name="scale",
        title=f"Scale: one watch --once cycle over {handles:,} handles",
        method=(f"{handles:,} handles with {FOLLOWS} follows each on the stand-in, "
                f"{LATENCY * 1000:.0f} ms added to every request; a local webhook receiver "
                "answering 204. `tiktok-following --base-url STAND-IN watch --handles-file F "
                "--webhook RECEIVER --once --state-db DB [--concurrency N]` in a child process. "
                "Ideal = requests x latency / concurrency. *Cycle* is the time of the cycle "
                "itself, from its first poll to its last delivery (`Watcher.run_cycle`, or "
                "`WatcherGroup.run_cycle` once its processes are up: what each interval of a "
                "running `watch` costs); *command* is the whole process, interpreter start-up "
                "and imports included (what `--once` from cron costs). *Processes*: "
                "`--processes auto` (the default: one per 8 requests in flight, at most one "
                "per core and per 100 handles) or as given. CPU is the command's user + "
                "system time, its child processes included; peak RSS adds up the peaks of the "
                "command's processes. In-flight peak is the most requests the stand-in saw at "
                "once. Cycles: the first poll of every handle (a baseline, nothing delivered); "
                f"then, each after one new follow per handle, {repeats} at each of: the "
                f"default concurrency, {HIGH_CONCURRENCY}, "
                f"{HIGH_CONCURRENCY} with `--processes 1`, {CPU_BOUND_CONCURRENCY} and "
                f"{CPU_BOUND_CONCURRENCY} with `--processes 1` (past what one process's CPU "
                "keeps up with here: what a slow hour of this shared machine does to 16), "
                "interleaved (the rows show the median by cycle time and the range); then one "
                "without the added latency (the work latency cannot hide)."),
        headers=["cycle", "concurrency", "processes", "requests", "deliveries", "cycle time",
                 "ideal", "cycle / ideal", "command", "command / ideal", "command CPU per handle",
                 "in-flight peak", "peak RSS", "exits"],
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
        with StandIn(api_keys=(KEY,), latency=LATENCY, rate_limit=10**9) as sb, \
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

            def cycle(n: int, add: bool, latency: float,
                      processes: int | None = None) -> dict[str, Any]:
                if add:
                    for name in names:
                        sb.follow(name)
                sb.latency = latency
                sb.reset_log()
                sb.peak_in_flight = 0
                posts_before = receiver.posts
                argv = base if n == concurrency else [*base, "--concurrency", str(n)]
                if processes is not None:
                    argv = [*argv, "--processes", str(processes)]
                out = _cycle(argv, env, tmp)
                out.update(n=n, latency=latency, forced=processes is not None,
                           requests=sb.count_requests(), peak=sb.peak_in_flight,
                           delivered=receiver.posts - posts_before)
                out["ideal"] = out["requests"] * latency / n
                summary = [line for line in out["stderr"].splitlines() if line.strip()]
                out["summary"] = summary[-1].strip() if summary else ""
                return out

            runs: list[tuple[str, list[dict[str, Any]]]] = [
                ("baseline (first poll)", [cycle(concurrency, False, LATENCY)])]
            # The command as users run it (processes: auto), and at 16 and 32 one process side
            # by side: what --processes auto buys, near and past one process's CPU.
            configs = [(concurrency, None), (HIGH_CONCURRENCY, None), (HIGH_CONCURRENCY, 1),
                       (CPU_BOUND_CONCURRENCY, None), (CPU_BOUND_CONCURRENCY, 1)]
            repeated: dict[tuple[int, int | None], list[dict[str, Any]]] = {
                c: [] for c in configs}
            for _ in range(repeats):
                for n, processes in configs:
                    repeated[n, processes].append(cycle(n, True, LATENCY, processes))
            runs += [("1 new follow per handle" if processes is None else
                      "1 new follow per handle, --processes 1", repeated[n, processes])
                     for n, processes in configs]
            runs.append(("1 new follow per handle, no added latency",
                         [cycle(concurrency, True, 0.0)]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    for label, outs in runs:
        ordered = sorted(outs, key=lambda o: o["cycle"])
        out = ordered[len(ordered) // 2]
        n, ideal = out["n"], out["ideal"]
        spread = ""
        if len(outs) > 1:
            spread = f" ({ordered[0]['cycle']:.2f}-{ordered[-1]['cycle']:.2f})"
        section.rows.append([
            label, f"{n}{' (default)' if n == concurrency else ''}",
            f"{out['processes']}{'' if out['forced'] else ' (auto)'}", f"{out['requests']:,}",
            f"{out['delivered']:,}", f"{out['cycle']:.2f} s{spread}",
            f"{ideal:.2f} s" if ideal else "-",
            ratio(out["cycle"] / ideal) if ideal else "-", f"{out['wall']:.2f} s",
            ratio(out["wall"] / ideal) if ideal else "-",
            f"{statistics.median(o['cpu'] for o in outs) / handles * 1000:.2f} ms",
            str(out["peak"]), size(out["rss"]),
            " ".join(str(code) for code in sorted({o["code"] for o in outs}))])
        for o in outs:  # a cycle that did not end clean, whether or not it is the median
            if o["code"] != 0 and o is not out:
                section.notes.append(f"{label}, concurrency {n}, a cycle that exited "
                                     f"{o['code']}: `{o['summary']}`")
        if out["summary"]:
            section.notes.append(f"{label}, concurrency {n}: `{out['summary']}`")
        if (label.startswith("1 new follow") and ideal and not out["forced"]
                and n in (concurrency, HIGH_CONCURRENCY)):
            ratios = [o["cycle"] / ideal for o in outs]
            worst_code = max(o["code"] for o in outs)
            fewest = min(o["delivered"] for o in outs)
            section.targets.append(Target(
                f"{handles:,}-handle cycle within {TARGET}x the ideal (concurrency {n}, "
                f"median of {len(outs)})",
                f"{ratio(out['cycle'] / ideal)} ({out['cycle']:.2f} s against {ideal:.2f} s; "
                f"all {len(outs)}: {', '.join(ratio(r) for r in ratios)}; whole command "
                f"{ratio(out['wall'] / ideal)})",
                out["cycle"] / ideal <= TARGET))
            section.targets.append(Target(
                f"zero follows lost (one new follow per handle, each delivered; concurrency "
                f"{n})", f"at least {fewest:,} of {handles:,} delivered in every cycle, exit "
                f"{worst_code}", fewest >= handles and worst_code == 0))
        if not out["latency"]:
            section.notes.append(
                f"Without added latency a cycle of {handles:,} handles takes "
                f"{out['cycle']:.2f} s ({out['wall']:.2f} s with start-up): about "
                f"{out['cycle'] / handles * 1000:.1f} ms per handle of work that latency "
                "cannot hide (each poll's request, state and outbox commit, the webhook POST "
                "and its outbox update), shared by 2 cores with the stand-in and the receiver. "
                "It is what keeps higher concurrencies further from their ideal.")
    section.notes.append(
        "Each handle's new follows are handed to a delivery thread as soon as its poll "
        "commits, so the webhook POSTs overlap the polls. The stand-in and "
        "the receiver share this benchmark's process (and its GIL), and both cores with "
        "`watch`: their own time per request is in the cycle time, not in the ideal.")
    return section


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(_child(sys.argv[2], sys.argv[3:]))
    raise SystemExit("usage: python -m benchmarks.scale --child OUT CLI-ARGS... "
                     "(run the section with python benchmarks/run.py --only scale)")
