"""State: what a handle's trigger state costs to keep and to commit, SQLite and PostgreSQL,
before (the first release: version-1 state, the whole JSON in one row) and after (version-3
state, a small row plus one row per part of the memory, as bytes, a save writing only what
changed); and the unfollow trigger's state, kept whole in its row before, and as a row plus
one row per block of its roster after (a quiet poll writing the one block it changed).

Per case: bytes per handle (SQLite: file growth; PostgreSQL: the tables' total relation size,
TOAST and indexes included), the median poll commit (load, parse, remember one new follow,
serialise, save, as a poll does), and the bytes one commit writes (SQLite: WAL growth;
PostgreSQL: WAL position moved). Then 10,000 handles at 5,000 remembered ids in one database.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connector.core.items import flatten, identity
from connector.state.envelope import SplitState
from connector.state.followed import FollowState
from connector.state.memory import Memory
from connector.state.prints import KNOWN_LIMIT
from connector.state.roster import Roster
from connector.state.unfollowed import UnfollowState
from connector.storage import open_database
from connector.store import state_key

from .report import Section, Target, ms, size

ID_BASE = 7_000_000_000_000_000_000  # TikTok ids are 19 digits
WATERMARK = 1_700_000_000_000
#: Issue 18: per handle at 5,000 remembered, in a database and as runner-owned JSON.
TARGET_BYTES = 21 * 1024
TARGET_JSON = 26 * 1024
#: Commits whose written bytes are measured (SQLite's WAL holds about 4 MB between checkpoints).
WRITES = 20
#: The same for the unfollow state (each commit is measured alone).
UNFOLLOW_WRITES = 12
#: The accounts a quiet unfollow poll sees again: its one page.
UNFOLLOW_PAGE = 30


def handle_name(i: int) -> str:
    return f"user{i:05d}"


def ids_for(i: int, known: int) -> list[str]:
    """Handle i's `known` most recent follows, oldest first."""
    start = ID_BASE + i * 1_000_003 * known
    return [str(n) for n in range(start, start + known)]


def current_state(i: int, known: int) -> FollowState:
    """The trigger's state (this release's version), remembered in steps."""
    ids = ids_for(i, known)
    memory = Memory()
    for at in range(0, len(ids), 1250):
        memory = memory.remember(ids[at:at + 1250])
    return FollowState(handle=handle_name(i), watermark=WATERMARK + i, known=memory)


def v1_state(i: int, known: int) -> dict[str, Any]:
    """The first release's state: the identity keys themselves, newest first."""
    return {"v": 1, "handle": handle_name(i), "watermark": WATERMARK + i,
            "known": list(reversed(ids_for(i, known))), "gaps": []}


def v1_round_trip(stored: str, new_id: str) -> str:
    """The first release's poll commit, reduced to its state work: parse and check, remember
    one more id (newest first, at most 5,000), serialise."""
    data = json.loads(stored)
    known = data["known"]
    if not all(isinstance(k, str) and 0 < len(k) <= 300 for k in known):
        raise ValueError("damaged")
    data["known"] = [new_id, *known][:KNOWN_LIMIT]
    data["watermark"] = int(time.time() * 1000)
    return json.dumps(data, separators=(",", ":"))


def unfollow_state(i: int, accounts: int) -> UnfollowState:
    """Handle i's unfollow state, following `accounts` accounts with TikTok's field lengths."""
    from .unfollows import realistic_entry

    rng = random.Random(i)
    entries = [realistic_entry(rng) for _ in range(accounts)]
    seen = 1_790_000_000_000
    # Oldest first: each page's accounts share its oldest follow time as their bound.
    roster = Roster.of((identity(e), flatten(e), WATERMARK + n // UNFOLLOW_PAGE, seen)
                       for n, e in enumerate(entries))
    return UnfollowState(handle=handle_name(i), watermark=WATERMARK + accounts, roster=roster,
                         clock=seen)


# --------------------------------------------------------------------------- the stores


class Before:
    """The first release's storage: one row per handle, the whole state JSON in it."""

    def __init__(self, target: str) -> None:
        self.pg = target.startswith("postgresql://")
        if self.pg:
            import psycopg

            self.db = psycopg.connect(target, autocommit=True)
            self.db.execute("CREATE TABLE IF NOT EXISTS v1_state (key TEXT PRIMARY KEY, "
                            "state TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL)")
        else:
            from connector.storage.sqlite import MIGRATIONS

            self.db = sqlite3.connect(target, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(MIGRATIONS[1])

    def save(self, key: str, text: str) -> None:
        if self.pg:
            self.db.execute("INSERT INTO v1_state VALUES (%s, %s, %s) ON CONFLICT (key) DO "
                            "UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                            (key, text, time.time()))
        else:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO trigger_state VALUES (?, ?, ?) ON CONFLICT(key) DO "
                            "UPDATE SET state=excluded.state, updated_at=excluded.updated_at",
                            (key, text, time.time()))
            self.db.execute("COMMIT")

    def load(self, key: str) -> str:
        sql = ("SELECT state FROM v1_state WHERE key = %s" if self.pg
               else "SELECT state FROM trigger_state WHERE key=?")
        return self.db.execute(sql, (key,)).fetchone()[0]

    def commit(self, key: str, new_id: str) -> None:
        self.save(key, v1_round_trip(self.load(key), new_id))

    def close(self) -> None:
        self.db.close()


class After:
    """This release's storage, through the Database every command uses, as the embedded store
    uses it: a state's row and parts, straight from the state object and back."""

    def __init__(self, target: str) -> None:
        self.database = open_database(target)

    def save_state(self, key: str, state: SplitState) -> None:
        self.database.save(key, *state.to_stored())

    def commit(self, key: str, new_id: str) -> None:
        stored = self.database.read_state(key)
        state = FollowState.from_stored(stored.row, stored.parts)
        state.known = state.known.remember([new_id])
        state.watermark = int(time.time() * 1000)
        self.database.save(key, *state.to_stored(), expect=stored.version)

    def close(self) -> None:
        self.database.close()


class UnfollowBefore(Before):
    """The unfollow state as the release before this one kept it: its whole runner JSON in the
    state's row, rewritten by every commit."""

    def commit(self, key: str, new_id: str) -> None:
        state = UnfollowState.from_json(self.load(key))
        _see_newest_page(state)
        self.save(key, json.dumps(state.to_json(), separators=(",", ":")))


class UnfollowAfter(After):
    """This release: a row, and a row per block of the roster."""

    def commit(self, key: str, new_id: str) -> None:
        stored = self.database.read_state(key)
        state = UnfollowState.from_stored(stored.row, stored.parts)
        _see_newest_page(state)
        self.database.save(key, *state.to_stored(), expect=stored.version)


def _see_newest_page(state: UnfollowState) -> None:
    """A quiet poll's change: the newest page's accounts seen again, now."""
    newest = sorted(state.roster, key=lambda kv: kv[1].bound or 0)[-UNFOLLOW_PAGE:]
    now = int(time.time() * 1000)
    for key, account in newest:
        state.roster.see(key, account.item, account.bound, now)
    state.clock = now


# --------------------------------------------------------------------------- measuring


def _sqlite_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def _pg_bytes(url: str, tables: list[str]) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return sum(conn.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0]
                   for t in tables)


def _pg_wal(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0])


def _checkpoint(target: str) -> None:
    """Fold the WAL into the file, so growth measures what the next commits write."""
    if target.startswith("postgresql://"):
        return
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def measure(target: str, scheme: str, known: int, handles: int, samples: int, *,
            trigger: str = "followed") -> dict[str, Any]:
    """Fill `handles` handles at `known` ids (or followed accounts, for the unfollow trigger)
    with one scheme, then time `samples` commits."""
    pg = target.startswith("postgresql://")
    kinds = {("followed", "before"): Before, ("followed", "after"): After,
             ("unfollowed", "before"): UnfollowBefore, ("unfollowed", "after"): UnfollowAfter}
    store = kinds[(trigger, scheme)](target)
    empty = (_pg_bytes(target, _tables(scheme)) if pg else _sqlite_bytes(Path(target)))
    started = time.perf_counter()
    for i in range(handles):
        key = state_key(handle_name(i))
        if trigger == "unfollowed":
            state = unfollow_state(i, known)
            if isinstance(store, Before):
                store.save(key, json.dumps(state.to_json(), separators=(",", ":")))
            else:
                store.save_state(key, state)
        elif isinstance(store, Before):
            store.save(key, json.dumps(v1_state(i, known), separators=(",", ":")))
        else:
            store.save_state(key, current_state(i, known))
    built = time.perf_counter() - started
    _checkpoint(target)
    full = _pg_bytes(target, _tables(scheme)) if pg else _sqlite_bytes(Path(target))
    rng = random.Random(7)
    times = []
    for n in range(samples):
        key = state_key(handle_name(rng.randrange(handles)))
        t0 = time.perf_counter()
        store.commit(key, str(ID_BASE - n - 1))
        times.append(time.perf_counter() - t0)
    # Bytes written: each commit measured alone, after a checkpoint, so SQLite's WAL never
    # checkpoints (and starts over) by itself in the middle of one.
    written = []
    for n in range(WRITES if trigger == "followed" else UNFOLLOW_WRITES):
        _checkpoint(target)
        wal_before = _pg_wal(target) if pg else _sqlite_bytes(Path(target))
        store.commit(state_key(handle_name(rng.randrange(handles))), str(ID_BASE - 10**6 - n))
        written.append((_pg_wal(target) if pg else _sqlite_bytes(Path(target))) - wal_before)
    store.close()
    return {"per_handle": (full - empty) / handles, "commit": statistics.median(times),
            "written": statistics.mean(written), "written_range": (min(written), max(written)),
            "built": built}


def _spread(figures: dict[str, Any]) -> str:
    """A mean written per commit, and the range of the commits it came from."""
    low, high = figures["written_range"]
    return f"{size(figures['written'])}, {size(low)} to {size(high)} a commit"


def _tables(scheme: str) -> list[str]:
    if scheme == "before":
        return ["v1_state"]
    return [f"tiktok_following.{t}" for t in ("trigger_state", "state_part")]


def run(quick: bool = False) -> Section:
    handles = 40 if quick else 400
    samples = 30 if quick else 300
    big = 300 if quick else 10_000
    section = Section(
        name="state",
        title="State: bytes per handle and poll commits, SQLite and PostgreSQL, before and after",
        method=(f"{handles} handles per case, each with the trigger state of a handle that "
                "remembers 30 or 5,000 followed accounts (19-digit ids). *Before* is the first "
                "release: version-1 state (the ids themselves) as one JSON row per handle, "
                "rewritten whole by every commit. *After* is this release: version-3 state "
                "(fingerprints below 5.1e12, Golomb-Rice coded: a held set, and a part of the "
                "newest 32 in the state's own row) saved through the connector's Database, a "
                "small row plus a row for the held set, as bytes, a commit writing only the "
                "rows that changed. "
                f"Then {samples} poll commits on random handles: load, parse, "
                "remember one new follow, serialise, save (median). Bytes per handle: SQLite "
                "file growth (WAL checkpointed), PostgreSQL `pg_total_relation_size` of the "
                "tables (TOAST and indexes included). Written per commit: SQLite WAL growth, "
                "PostgreSQL WAL bytes (`pg_current_wal_lsn`). PostgreSQL runs with its default "
                "durability (fsync on), SQLite in WAL mode with synchronous=NORMAL, as the "
                "connector opens it."),
        headers=["backend", "state", "remembered ids", "bytes per handle",
                 "written per commit", "poll commit (median)"],
    )
    pg_reason = _pg_unavailable()
    tmp = Path(tempfile.mkdtemp(prefix="bench-state-"))
    server = None
    try:
        backends: list[tuple[str, Callable[[], str]]] = [
            ("SQLite", lambda: str(tmp / f"s{time.monotonic_ns()}.db"))]
        if pg_reason is None:
            from tests.pgserver import TempPostgres

            server = TempPostgres(durable=True).start()
            backends.append(("PostgreSQL", server.new_database))
        else:
            section.notes.append(f"PostgreSQL not measured: {pg_reason}.")
        results: dict[tuple[str, str, int], dict[str, Any]] = {}
        for name, make in backends:
            for known in (30, KNOWN_LIMIT):
                for scheme in ("before", "after"):
                    got = measure(make(), scheme, known, handles, samples)
                    results[(name, scheme, known)] = got
                    section.rows.append([
                        name, scheme, f"{known:,}", size(got["per_handle"]),
                        size(got["written"]), ms(got["commit"])])
        for name, _ in backends:
            after = results[(name, "after", KNOWN_LIMIT)]
            before = results[(name, "before", KNOWN_LIMIT)]
            section.targets.append(Target(
                f"at most 21 KB per handle at 5,000 ids ({name})",
                f"{size(after['per_handle'])} (before: {size(before['per_handle'])})",
                after["per_handle"] <= TARGET_BYTES))
            small = results[(name, "after", 30)]["written"]
            section.notes.append(
                f"{name}: a commit at 5,000 ids writes {size(after['written'])} against "
                f"{size(before['written'])} before; at 30 ids {size(small)}. Commit time at "
                f"5,000 ids: {ms(after['commit'])} against {ms(before['commit'])} before.")
        unfollow_handles = 2 if quick else 8
        unfollow_samples = 5 if quick else 40
        for name, make in backends:
            for accounts in ((300,) if quick else (1000, KNOWN_LIMIT)):
                got = {scheme: measure(make(), scheme, accounts, unfollow_handles,
                                       unfollow_samples, trigger="unfollowed")
                       for scheme in ("before", "after")}
                for scheme, figures in got.items():
                    section.rows.append([
                        name, f"unfollow, {scheme}", f"{accounts:,} followed",
                        size(figures["per_handle"]), size(figures["written"]),
                        ms(figures["commit"])])
                if accounts == max((300,) if quick else (1000, KNOWN_LIMIT)):
                    after = got["after"]
                    section.targets.append(Target(
                        f"a quiet unfollow commit at {accounts:,} followed writes the block it "
                        f"changed, not the whole roster ({name})",
                        f"{size(after['written'])} of {size(after['per_handle'])} kept "
                        f"(before: {_spread(got['before'])})",
                        after["written"] * 4 < after["per_handle"]))
        section.notes.append(
            f"Unfollow rows: {unfollow_handles} handles per case, each following that many "
            "accounts with TikTok's field lengths (benchmarks/unfollows.py), "
            f"{unfollow_samples} quiet poll commits (load, see the newest page's "
            f"{UNFOLLOW_PAGE} accounts again, save; median), written bytes over "
            f"{UNFOLLOW_WRITES} commits (mean; each measured alone). *Before*: the whole "
            "runner JSON in the state's row, as the release before this one kept it; *after*: "
            "a row, and a row per block of 250 accounts as deflated bytes, a commit writing "
            "the blocks that changed. SQLite's *before* swings from commit to commit: when a "
            "row is rewritten at the same size, SQLite overwrites it in place and writes only "
            "the pages whose bytes changed; when the size changes (a timestamp or count one "
            "digit longer), it writes the whole row again: hence the range the targets give "
            "for *before*.")
        runner = len(json.dumps(current_state(0, KNOWN_LIMIT).to_json(), separators=(",", ":")))
        runner_v1 = len(json.dumps(v1_state(0, KNOWN_LIMIT), separators=(",", ":")))
        section.rows.append(["runner-owned JSON (invoke, connector.run)", "before / after",
                             f"{KNOWN_LIMIT:,}", f"{size(runner_v1)} / {size(runner)}", "-",
                             "-"])
        section.targets.append(Target("at most 26 KB per handle at 5,000 ids (runner JSON)",
                                      size(runner), runner <= TARGET_JSON))
        full = current_state(0, KNOWN_LIMIT).to_json()
        rate = FollowState.from_json(full).known.false_positive_rate()
        section.notes.append(
            f"A quiet poll decodes the whole memory: `FollowState.from_json` of the state at "
            f"5,000 remembered takes {ms(_parse_time(full))} (median of 200). The chance that "
            f"a new follow is taken for a remembered account is at most {rate:.2g} (version "
            f"2's 32-bit fingerprints: 1 in 860,000).")
        for name, make in backends:
            target = make()
            got = measure(target, "after", KNOWN_LIMIT, big, samples)
            section.notes.append(
                f"{big:,} handles x {KNOWN_LIMIT:,} ids in one {name} database: "
                f"{size(got['per_handle'] * big)} ({size(got['per_handle'])} per handle), "
                f"built in {got['built']:.0f} s; poll commit median {ms(got['commit'])}, "
                f"{size(got['written'])} written per commit.")
        section.notes.append(
            "Both keep a part as the bytes its base85 text encodes (a fifth smaller): "
            "PostgreSQL out of line (TOAST) in 2 KB chunks, SQLite in overflow pages, the "
            "held set as one row (19 KB at 5,000: split in four it would cost 2 bits an "
            "account more, and more per-row overhead). The first release's JSON of digits "
            "compressed well in TOAST (pglz), hence its size close to ours; what changed "
            "most there is what a commit writes.")
        section.notes.append(
            "At 30 ids the whole memory is the part of the newest, in the state's own row: a "
            "commit writes that row's 4 KB page to SQLite's WAL, as the first release did.")
        section.notes.append(
            "A commit's CPU at 5,000 ids is mostly decoding the memory (`FollowState."
            "from_stored`: Rice codes through string and number operations; no base85, the "
            "parts come and go as the bytes the database keeps), not the rows written, which "
            "do not grow with what the handle remembers; once in 32 remembered the held set "
            "is coded again and written whole.")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return section


def _parse_time(state: dict[str, Any]) -> float:
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        FollowState.from_json(state)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _pg_unavailable() -> str | None:
    try:
        from tests.pgserver import unavailable
    except ImportError:
        return "tests/pgserver.py is not here (run from a source checkout)"
    return unavailable()
