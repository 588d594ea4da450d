"""Against an earlier release: the CPU a `watch --once` command spends per handle, this code
side by side with an earlier checkout, and the earlier code run twice more beside them, so
that what this shared machine's noise does to the figure is measured in the same way and the
same hour (an A/A pair beside the A/B one).

    python benchmarks/run.py --only against --against ../old-checkout \
        [--against-python ../old-venv/bin/python] --output /tmp/against.md

The earlier checkout runs on its own interpreter (its own dependencies); this one on the
interpreter running the benchmark.
"""

from __future__ import annotations

import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from connector.standin import StandIn

from .report import Section, Target
from .scale import FOLLOWS, KEY, ROOT, Receiver

HANDLES = 1000
RUNS = 9
CONCURRENCY = 4

#: The earlier checkout and its interpreter (run.py's --against, --against-python).
EARLIER: tuple[Path, str] | None = None


@dataclass
class Arm:
    """One side of the comparison: a checkout, the interpreter it runs on, and what it cost."""

    label: str
    code: Path
    python: str
    cpu: list[float] = field(default_factory=list)  # per handle, in seconds, one per run
    delivered: list[int] = field(default_factory=list)
    exits: set[int] = field(default_factory=set)


def configure(earlier: Path | None, python: str | None) -> None:
    global EARLIER
    EARLIER = None if earlier is None else (earlier.resolve(), python or sys.executable)


def run(quick: bool = False) -> Section:
    handles = 30 if quick else HANDLES
    runs = 1 if quick else RUNS
    section = Section(
        name="against",
        title="Against an earlier release: command CPU per handle, with the noise beside it",
        method=(f"One `watch --once` command over {handles:,} handles ({FOLLOWS} follows each "
                "on the stand-in, no added latency, concurrency "
                f"{CONCURRENCY}, SQLite), each run after one new follow per handle: the CPU "
                "time of the whole command (user + system, from its exit status), divided by "
                "the handles. Three arms, each with its own stand-in, receiver and state file, "
                "after a first poll of its own: this code, the earlier code, and the earlier "
                f"code again. {runs} rounds, one run of each arm per round, in an order that "
                "turns each round. *Noise* is what two runs of the same code differ by when "
                "measured this way (earlier, again - earlier, paired by round); *change* is "
                "this code - the earlier code (the mean of its two runs in the round). Both "
                "checkouts run from compiled bytecode."),
        headers=["code", "CPU per handle (median)", "range", "runs", "delivered per run",
                 "exits"],
    )
    if EARLIER is None:
        section.skipped = ("no earlier checkout: give `--against DIR` (and `--against-python "
                           "PY`, an interpreter with its dependencies)")
        return section
    earlier, python = EARLIER
    for code in (earlier, ROOT):
        compileall.compile_dir(str(code / "connector"), quiet=1)
    arms = [Arm("this", ROOT, sys.executable), Arm("earlier", earlier, python),
            Arm("earlier, again", earlier, python)]
    names = [f"watched{i:04d}" for i in range(handles)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-against-"))
    try:
        handles_file = tmp / "handles.txt"
        handles_file.write_text("\n".join(names) + "\n")
        with _Worlds(len(arms), names) as worlds:
            for i, arm in enumerate(arms):  # the first poll: baselines, nothing delivered
                _command(arm, worlds[i], handles_file, tmp / f"{i}.db")
            for r in range(runs):
                for i in [(r + k) % len(arms) for k in range(len(arms))]:
                    standin, receiver = worlds[i]
                    for name in names:
                        standin.follow(name)
                    before = receiver.posts
                    cpu, code = _command(arms[i], worlds[i], handles_file, tmp / f"{i}.db")
                    arms[i].cpu.append(cpu / handles)
                    arms[i].delivered.append(receiver.posts - before)
                    arms[i].exits.add(code)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    this, first, again = arms
    for arm in arms:
        section.rows.append([
            f"{arm.label} ({_name(arm.code)})", _ms(statistics.median(arm.cpu)),
            f"{_ms(min(arm.cpu))} - {_ms(max(arm.cpu))}", str(len(arm.cpu)),
            f"{min(arm.delivered):,} - {max(arm.delivered):,}",
            " ".join(str(c) for c in sorted(arm.exits))])
    noise = [abs(b - a) for a, b in zip(first.cpu, again.cpu, strict=True)]
    change = [t - (a + b) / 2 for t, a, b in zip(this.cpu, first.cpu, again.cpu, strict=True)]
    section.notes.append(
        "Paired by round: noise (|earlier, again - earlier|) median "
        f"{_ms(statistics.median(noise))}, range {_ms(min(noise))} - {_ms(max(noise))}; "
        f"change (this - earlier) median {_signed(statistics.median(change))}, range "
        f"{_signed(min(change))} - {_signed(max(change))}.")
    section.targets.append(Target(
        "command CPU per handle no worse than the earlier release by more than the noise "
        "measured side by side (median change at most the median noise)",
        f"change {_signed(statistics.median(change))} against noise "
        f"{_ms(statistics.median(noise))}",
        statistics.median(change) <= statistics.median(noise)))
    lost = min(min(arm.delivered) for arm in arms)
    clean = all(arm.exits == {0} for arm in arms)
    section.targets.append(Target(
        "every run delivers every new follow and exits 0 (each arm)",
        f"at least {lost:,} of {handles:,} delivered in every run, exits "
        f"{' '.join(str(c) for c in sorted(set().union(*(a.exits for a in arms))))}",
        lost >= handles and clean))
    return section


class _Worlds:
    """A stand-in and a receiver for each arm, each account with its follows."""

    def __init__(self, count: int, names: list[str]) -> None:
        self.count, self.names = count, names
        self.worlds: list[tuple[StandIn, Receiver]] = []

    def __enter__(self) -> list[tuple[StandIn, Receiver]]:
        try:
            for _ in range(self.count):
                standin = StandIn(api_keys=(KEY,), latency=0.0, rate_limit=10**9).start()
                receiver = Receiver().start()
                self.worlds.append((standin, receiver))
                for name in self.names:
                    standin.add_account(name, FOLLOWS)
        except BaseException:
            self.__exit__()
            raise
        return self.worlds

    def __exit__(self, *exc: object) -> None:
        for standin, receiver in self.worlds:
            receiver.close()
            standin.stop()


def _command(arm: Arm, world: tuple[StandIn, Receiver], handles_file: Path,
             state: Path) -> tuple[float, int]:
    """Run `watch --once` as the user runs it, from `arm`'s checkout: its CPU time (user +
    system) and exit code."""
    standin, receiver = world
    env = {**os.environ, "DUMPLINGAI_API_KEY": KEY, "PYTHONPATH": str(arm.code)}
    env.pop("DUMPLINGAI_BASE_URL", None)
    argv = [arm.python, "-m", "connector.cli", "--base-url", standin.url, "watch",
            "--handles-file", str(handles_file), "--webhook", receiver.url, "--once",
            "--state-db", str(state), "--concurrency", str(CONCURRENCY)]
    proc = subprocess.Popen(argv, cwd=arm.code, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


def _name(code: Path) -> str:
    """A checkout as its git commit, else its folder."""
    found = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True)
    if found.returncode == 0:
        toplevel = subprocess.run(["git", "-C", str(code), "rev-parse", "--show-toplevel"],
                                  capture_output=True, text=True).stdout.strip()
        if toplevel and Path(toplevel).resolve() == code.resolve():
            return f"git {found.stdout.strip()}"
    return str(code)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _signed(seconds: float) -> str:
    return f"{seconds * 1000:+.2f} ms"
