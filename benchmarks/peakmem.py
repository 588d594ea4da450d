"""Run a module as `python -m` would, then write the process's peak resident memory to a file.

    python -m benchmarks.peakmem OUT.json connector.cli --help

Why not `wait4`'s ru_maxrss: on Linux a child's ru_maxrss starts from its parent's resident
size at fork time, so a child of a large benchmark process looks large. VmHWM in
/proc/self/status is the high-water mark of the child's own address space.
"""

from __future__ import annotations

import atexit
import json
import runpy
import sys
from pathlib import Path


def peak_rss_bytes() -> int | None:
    """This process's peak resident set size (VmHWM), or None where /proc has no such line."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _main() -> None:
    out, module, *args = sys.argv[1:]
    atexit.register(lambda: Path(out).write_text(json.dumps({"peak_rss": peak_rss_bytes()})))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _main()
