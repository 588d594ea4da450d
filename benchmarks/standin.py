"""The stand-in in a child process of its own, so that the client being measured has a core
and a GIL to itself. In-process, the sections use `connector.standin.StandIn` directly:
`StandIn(latency=...)` adds a fixed delay to every request, like a distant upstream, and
`peak_in_flight` tells how many requests really overlapped. (The stand-in sets TCP_NODELAY
itself; no wrapper is needed for that any more.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from connector.standin import StandIn


@contextmanager
def in_child_process(accounts: dict[str, int], *, key: str) -> Iterator[str]:
    """A StandIn in its own Python process, so that the client being measured has a core
    and a GIL to itself; yields its base URL."""
    spec = json.dumps({"accounts": accounts, "key": key})
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.standin", spec], cwd=root,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the stand-in child process did not start")
        yield url
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the child serves until its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _child(spec: dict[str, Any]) -> None:
    standin = StandIn(api_keys=(spec["key"],), rate_limit=10**9).start()
    for handle, n in spec["accounts"].items():
        standin.add_account(handle, n)
    print(standin.url, flush=True)
    sys.stdin.read()
    standin.stop()


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
