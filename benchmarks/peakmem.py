"""Run a module as `python -m` would (or a script, given a path ending in .py), then write the
process's peak resident memory to a file.

    python -m benchmarks.peakmem OUT.json connector.cli --help
    python -m benchmarks.peakmem OUT.json /tmp/bare.py ARG

Why not `wait4`'s ru_maxrss: on Linux a child's ru_maxrss starts from its parent's resident
size at fork time, so a child of a large benchmark process looks large. VmHWM in
/proc/self/status is the high-water mark of the child's own address space. The wrapper imports
nothing beyond what the interpreter has loaded at start-up, so it adds next to nothing to the
CPU time of what it runs.
"""

from __future__ import annotations

import atexit
import runpy
import sys


def peak_rss_bytes(pid: int | str = "self") -> int | None:
    """A process's peak resident set size (VmHWM; this one's by default), or None where /proc
    has no such line."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _write(out: str) -> None:
    peak = peak_rss_bytes()
    with open(out, "w", encoding="ascii") as f:
        f.write('{"peak_rss": %s}' % ("null" if peak is None else peak))


def _main() -> None:
    out, target, *args = sys.argv[1:]
    atexit.register(_write, out)
    sys.argv = [target, *args]
    if target.endswith(".py"):
        sys.path[0] = target.rpartition("/")[0] or "."
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _main()
