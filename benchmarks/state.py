"""State: the SQLite store holding 10,000 handles that each know 5,000 accounts.

The database is built directly through `StateStore.save` (one transaction per handle, as a
poll commits) with state shaped as the trigger writes it: `TriggerState(...).to_json()` with
5,000 19-digit ids. A fresh child process then times poll commits over a random sample of
handles (load, parse, advance by one follow, serialise, save), and reports its own memory.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from connector.operations.state import KNOWN_LIMIT, Memory, TriggerState
from connector.polling import state_key
from connector.storage.sqlite import SQLiteDatabase as StateStore

from .peakmem import peak_rss_bytes
from .report import Section, median, ms, percentile, size

ID_BASE = 7_000_000_000_000_000_000  # TikTok ids are 19 digits
WATERMARK = 1_700_000_000_000


def handle_name(i: int) -> str:
    return f"user{i:05d}"


def state_for(i: int, known: int) -> dict[str, Any]:
    """The trigger's state for handle i: its `known` most recent follows, newest first."""
    start = ID_BASE + i * 1_000_003 * known
    ids = list(map(str, range(start + known - 1, start - 1, -1)))
    return TriggerState(handle=handle_name(i), watermark=WATERMARK + i,
                        known=Memory().remember(reversed(ids))).to_json()


def build(path: Path, handles: int, known: int) -> float:
    """Fill a new store; returns the seconds it took."""
    started = time.perf_counter()
    with StateStore(path) as store:
        for i in range(handles):
            store.save(state_key(handle_name(i)), state_for(i, known))
    return time.perf_counter() - started


def poll_commit(store: StateStore, key: str, new_id: str) -> tuple[float, float]:
    """One poll's state round trip: load and parse, one new follow, serialise and save."""
    started = time.perf_counter()
    state = TriggerState.from_json(store.load_state(key))
    loaded = time.perf_counter()
    state.known = state.known.remember([new_id])
    state.watermark = int(time.time() * 1000)
    store.save(key, state.to_json())
    return loaded - started, time.perf_counter() - loaded


def _child(path: str, handles: int, samples: int) -> dict[str, Any]:
    rng = random.Random(3)
    picks = [rng.randrange(handles) for _ in range(samples)]
    loads, saves = [], []
    with StateStore(path) as store:
        for n, i in enumerate(picks):
            load, save = poll_commit(store, state_key(handle_name(i)), str(ID_BASE - n - 1))
            loads.append(load)
            saves.append(save)
        tracemalloc.start()
        poll_commit(store, state_key(handle_name(picks[0])), str(ID_BASE - samples - 1))
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {"loads": loads, "saves": saves, "traced_peak": traced_peak,
            "peak_rss": peak_rss_bytes()}


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def run(quick: bool = False) -> Section:
    handles = 300 if quick else 10_000
    known = KNOWN_LIMIT
    samples = 100 if quick else 500
    section = Section(
        name="state",
        title="State: the SQLite store",
        method=(f"{handles:,} handles, each with the trigger's state at its bound: {known:,} "
                "known ids (the JSON a poll writes, `TriggerState(...).to_json()`), written "
                "through `StateStore.save`, one transaction per handle, in a temporary "
                f"directory (deleted afterwards). Then a fresh process times {samples} poll "
                "commits on randomly chosen handles: `load` + `TriggerState.from_json` (load), "
                "then one new id, `to_json` + `save` (save). The database was just written, so "
                "it is in the OS page cache: a cold disk adds its read time to `load`."),
        headers=["figure", "value"],
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-state-"))
    try:
        path = tmp / "state.db"
        built = build(path, handles, known)
        db_bytes = _db_bytes(path)
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.state", str(path), str(handles), str(samples)],
            cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
            check=True)
        child = json.loads(proc.stdout)
        after_bytes = _db_bytes(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    totals = [a + b for a, b in zip(child["loads"], child["saves"], strict=True)]
    row_bytes = len(json.dumps(state_for(0, known), separators=(",", ":")))
    section.rows += [
        ["handles x known ids", f"{handles:,} x {known:,}"],
        ["state JSON per handle", size(row_bytes)],
        ["build time", f"{built:.1f} s ({ms(built / handles)} per handle)"],
        ["database size", f"{size(db_bytes)} ({size(db_bytes / handles)} per handle)"],
        ["database size after the sample's commits (WAL included)", size(after_bytes)],
        ["poll commit, median", ms(median(totals))],
        ["poll commit, 95th percentile", ms(percentile(totals, 95))],
        ["  of which load + parse, median", ms(median(child["loads"]))],
        ["  of which serialise + save, median", ms(median(child["saves"]))],
        ["peak RSS of the polling process", size(child["peak_rss"] or 0)],
        ["Python memory peak of one poll commit (tracemalloc)", size(child["traced_peak"])],
    ]
    section.notes.append("A poll commit rewrites the handle's whole state row: its cost grows "
                         "with the known ids of that handle, not with the number of handles.")
    return section


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
