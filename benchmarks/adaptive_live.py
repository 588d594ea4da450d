"""The real `watch`, in real time, with a budget: the adaptive schedule against the fixed one.

Three `watch` processes side by side, each on its own stand-in and webhook receiver, with the
same budget and the same accounts: a few busy ones (a follow every second or so, Poisson) and many
quiet ones (a follow every few minutes). One runs `--schedule adaptive`, two `--schedule fixed`
(at the adaptive one's default interval, and faster); the same follows are made on every
stand-in at the same moments. Where their polls and
credits went, and how long each follow took from being made to reaching the webhook.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from connector.core.budget import parse_budget
from connector.core.items import identity
from connector.operations.events import event_id
from connector.standin import StandIn

from .report import Section, Target, median, percentile, ratio
from .scale import ROOT, Receiver

KEY = "bench-adaptive-live-key"
BUSY, QUIET = 4, 20
#: Follows a second of each busy account, and of each quiet one.
BUSY_RATE, QUIET_RATE = 1.0, 1 / 300
#: What the fixed schedule spends polling the 24 accounts every 10 s: 2.4 requests a second.
BUDGET = "86400/hour"
INTERVAL, MIN_INTERVAL, MAX_INTERVAL = "10s", "2s", "5m"
#: A fixed interval that spends more than the adaptive schedule does over the run.
FASTER = "6s"


def run(quick: bool = False) -> Section:
    seconds = 40.0 if quick else 120.0
    budget = parse_budget(BUDGET)
    section = Section(
        name="adaptive-live",
        title=f"The real watch with --budget {BUDGET}: adaptive against fixed, {seconds:.0f} s",
        method=(f"{BUSY} busy accounts (a follow every {1 / BUSY_RATE:.0f} s each, Poisson) and "
                f"{QUIET} quiet ones (every {1 / QUIET_RATE / 60:.0f} min each) on the stand-in, "
                "no added latency. Three `watch` processes side by side, each with its own "
                f"stand-in, SQLite file and receiver: `--budget {BUDGET} --interval {INTERVAL} "
                f"--schedule adaptive --min-interval {MIN_INTERVAL} --max-interval "
                f"{MAX_INTERVAL}`, and `--budget {BUDGET} --schedule fixed` with `--interval "
                f"{INTERVAL}`, and with `--interval {FASTER}` (more credits than the adaptive "
                "one spends: a comparison at no fewer credits). The same follows are made on "
                f"all three at the same moments, from the baselines on, for {seconds:.0f} s; a "
                "follow's delay is from its making to its arrival at the webhook (follows not "
                "delivered by the end count as delayed to the end). Credits: 10 for each page a "
                "stand-in served, baselines included."),
        headers=["schedule", "credits", "budget cap", "polls busy", "polls quiet",
                 "delivered", "median delay", "p90 delay", "median busy", "median quiet"],
    )
    rng = random.Random(22)
    busy = [f"busy{i}" for i in range(BUSY)]
    quiet = [f"quiet{i:02d}" for i in range(QUIET)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-adaptive-"))
    runs = {"adaptive": ["--interval", INTERVAL, "--schedule", "adaptive", "--min-interval",
                         MIN_INTERVAL, "--max-interval", MAX_INTERVAL],
            "fixed": ["--interval", INTERVAL, "--schedule", "fixed"],
            # More credits than the adaptive schedule spends, for a comparison at equal credits.
            f"fixed {FASTER}": ["--interval", FASTER, "--schedule", "fixed"]}
    stands = {name: StandIn(api_keys=(KEY,), rate_limit=10**9).start() for name in runs}
    receivers = {name: Receiver().start() for name in runs}
    procs: dict[str, subprocess.Popen] = {}
    made: dict[str, dict[str, tuple[float, str]]] = {name: {} for name in runs}
    try:
        for stand in stands.values():
            for handle in busy + quiet:
                stand.add_account(handle, 5)
        handles_file = tmp / "handles.txt"
        handles_file.write_text("\n".join(busy + quiet) + "\n")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TIKTOK_FOLLOWING_", "DUMPLINGAI_"))}
        env["DUMPLINGAI_API_KEY"] = KEY
        started = time.time()
        for name, extra in runs.items():
            argv = [sys.executable, "-m", "connector.cli", "--base-url", stands[name].url,
                    "watch", "--handles-file", str(handles_file), "--webhook",
                    receivers[name].url, "--state-db", str(tmp / f"{name}.db"), "--budget",
                    BUDGET, *extra]
            procs[name] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
        # Give the baselines a moment (taken in the first seconds), then follow.
        time.sleep(3.0)
        events = sorted([(rng.expovariate(rate) + 3.0, h) for h, rate in
                         [(h, BUSY_RATE) for h in busy] + [(h, QUIET_RATE) for h in quiet]
                         for _ in range(1)])
        # Each account's next follow after its last, until the run ends.
        rates = {**dict.fromkeys(busy, BUSY_RATE), **dict.fromkeys(quiet, QUIET_RATE)}
        while events:
            at, handle = events.pop(0)
            if at >= seconds:
                continue
            wait = started + at - time.time()
            if wait > 0:
                time.sleep(wait)
            for name, stand in stands.items():
                [user] = stand.follow_many(handle, 1)
                made[name][event_id(handle, identity(user))] = (time.time(), handle)
            events.append((at + rng.expovariate(rates[handle]), handle))
            events.sort()
        time.sleep(max(0.0, started + seconds - time.time()))
        ended = time.time()
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait(30)
        figures = {}
        for name in runs:
            stand, arrived = stands[name], receivers[name].arrived
            served = [r for r in stand.requests if r.status == 200]
            credits = 10 * len(served)
            polls = {h: sum(1 for r in served if r.handle == h) for h in busy + quiet}
            delays = {h: [] for h in ("busy", "quiet")}
            for eid, (at, handle) in made[name].items():
                kind = "busy" if handle in busy else "quiet"
                delays[kind].append(min(arrived.get(eid, ended), ended) - at)
            every = delays["busy"] + delays["quiet"]
            delivered = sum(1 for eid in made[name] if eid in arrived)
            figures[name] = (credits, every)
            section.rows.append([
                name, f"{credits:,}", f"{budget.cap(ended - started):,.0f}",
                str(sum(polls[h] for h in busy)), str(sum(polls[h] for h in quiet)),
                f"{delivered}/{len(made[name])}", f"{median(every):.1f} s",
                f"{percentile(every, 90):.1f} s", f"{median(delays['busy']):.1f} s",
                f"{median(delays['quiet']):.1f} s" if delays["quiet"] else "-"])
        cap = budget.cap(ended - started)
        adaptive, fixed = figures["adaptive"], figures[f"fixed {FASTER}"]
        section.targets.append(Target(
            "the budget is never exceeded (credits at most N t / period + N / 10)",
            ", ".join(f"{name} {credits:,}" for name, (credits, _) in figures.items())
            + f"; cap {cap:,.0f}", all(credits <= cap for credits, _ in figures.values())))
        section.targets.append(Target(
            f"the adaptive schedule's median delay is below that of the fixed one every "
            f"{FASTER}, for fewer credits",
            f"{ratio(median(adaptive[1]) / max(median(fixed[1]), 1e-9))} (credits "
            f"{ratio(adaptive[0] / max(fixed[0], 1))})",
            median(adaptive[1]) < median(fixed[1]) and fixed[0] >= adaptive[0]))
        section.notes.append(
            f"The budget is what the fixed schedule spends (every account every {INTERVAL}), so "
            "it never waits for credits. The adaptive one spends the budget's refill, up to "
            "1.5x while the bucket is fuller than half (it starts full): a little more than the "
            "fixed one over a short run, the same over a long one. It learns within a poll that "
            "the busy accounts burst (more follows than a day's prior makes likely) and polls "
            f"them down to --min-interval {MIN_INTERVAL}, the quiet ones less often.")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for stand in stands.values():
            stand.stop()
        for receiver in receivers.values():
            receiver.close()
    return section
