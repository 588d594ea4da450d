"""Cold start: fresh interpreters running `import connector`, the CLI's `--help`, and
`import requests` for comparison, interleaved in shuffled order; medians of wall and CPU time."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .report import Section, Target, median, ms, ratio

TARGET = 1.5


def commands() -> list[tuple[str, list[str]]]:
    py = sys.executable
    script = Path(py).with_name("tiktok-following")
    cli = [str(script)] if script.exists() else [py, "-m", "connector.cli"]
    cli_name = "tiktok-following --help" if script.exists() else "python -m connector.cli --help"
    return [
        ("python -c pass", [py, "-c", "pass"]),
        ("import requests", [py, "-c", "import requests"]),
        ("import connector", [py, "-c", "import connector"]),
        (cli_name, [*cli, "--help"]),
        ("import connector; connector.run", [py, "-c", "import connector; connector.run"]),
    ]


def _spawn(argv: list[str], cwd: str) -> tuple[float, float]:
    """Wall and CPU (user + system) time of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def run(quick: bool = False) -> Section:
    reps = 8 if quick else 100
    cmds = commands()
    section = Section(
        name="coldstart",
        title="Cold start",
        method=(f"Each command in a fresh interpreter, {reps} rounds, the commands shuffled in "
                "every round, from an empty temporary directory; medians of wall time and of "
                "the child's CPU time (user + system, from `wait4`). `python -c pass` is the "
                "interpreter alone; `connector.run` is the first use of the package's main "
                "call, which imports what `import connector` defers."),
        headers=["command", "wall", "CPU", "wall vs import requests", "wall above bare python"],
    )
    walls: dict[str, list[float]] = {name: [] for name, _ in cmds}
    cpus: dict[str, list[float]] = {name: [] for name, _ in cmds}
    tmp = tempfile.mkdtemp(prefix="bench-cold-")
    try:
        for _, argv in cmds:  # warm the OS caches, and fail early if a command fails
            _spawn(argv, tmp)
        rng = random.Random(5)
        for _ in range(reps):
            order = list(cmds)
            rng.shuffle(order)
            for name, argv in order:
                wall, cpu = _spawn(argv, tmp)
                walls[name].append(wall)
                cpus[name].append(cpu)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wall = {name: median(v) for name, v in walls.items()}
    cpu = {name: median(v) for name, v in cpus.items()}
    base, bare = wall["import requests"], wall["python -c pass"]
    for name, _ in cmds:
        section.rows.append([name, ms(wall[name]), ms(cpu[name]), ratio(wall[name] / base),
                             ms(wall[name] - bare)])
    imp = wall["import connector"] / base
    imp_cpu = cpu["import connector"] / cpu["import requests"]
    section.targets.append(Target(f"import connector at most {TARGET}x import requests",
                                  f"{ratio(imp)} wall ({ratio(imp_cpu)} CPU)", imp <= TARGET))
    cli_name = cmds[3][0]
    section.notes.append(f"`{cli_name}` is {ratio(wall[cli_name] / base)} `import requests`; "
                         f"the first `connector.run` brings the package to "
                         f"{ms(wall['import connector; connector.run'] - bare)} above a bare "
                         "interpreter.")
    return section
