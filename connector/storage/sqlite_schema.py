"""The tables of a SQLite state file, version by version: the script of each migration, and
so the columns each table has at each version (how `sqlite.SQLiteDatabase` tells a file of
ours, of any release, from one that is not)."""

from __future__ import annotations

import functools
import sqlite3
from contextlib import closing

#: Each migration takes the file from the version before it to its own number, in one
#: transaction. 1 is the schema of the first release, as it made it (so an empty file and a
#: file of that release end up the same).
MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trigger_state (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    event_id TEXT PRIMARY KEY,
    handle TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    parked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (parked, next_attempt_at);
""",
    # 2: states versioned (saves compare and set) and split (one row per `known` segment);
    # poll leases; outbox claims.
    2: """
ALTER TABLE trigger_state ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE trigger_state ADD COLUMN parts INTEGER;
CREATE TABLE state_part (
    key TEXT NOT NULL,
    n INTEGER NOT NULL,
    digest BLOB NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (key, n)
);
CREATE TABLE poll_lease (
    key TEXT PRIMARY KEY,
    owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    polled_at REAL NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0
);
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until REAL NOT NULL DEFAULT 0;
CREATE INDEX outbox_handle ON outbox (handle, created_at);
CREATE INDEX outbox_claimed ON outbox (claimed_until);
""",
    # 3: a part may be kept as bytes in the `text` column (SQLite keeps a BLOB as it is,
    # whatever the column's type): no table changes, but a release before it cannot read
    # such rows, and so refuses the file.
    3: "",
    # 4: budgets (a bucket per budget, and what each worker holds of it); next to each poll
    # lease, what the schedule keeps of the handle (its activity and health, as JSON) and its
    # credits this period.
    4: """
ALTER TABLE poll_lease ADD COLUMN activity TEXT;
ALTER TABLE poll_lease ADD COLUMN health TEXT;
ALTER TABLE poll_lease ADD COLUMN credits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE poll_lease ADD COLUMN credits_since REAL NOT NULL DEFAULT 0;
CREATE TABLE budgets (
    name TEXT PRIMARY KEY,
    credits INTEGER NOT NULL,
    period TEXT NOT NULL,
    level REAL NOT NULL,
    held REAL NOT NULL DEFAULT 0,
    as_of REAL NOT NULL
);
CREATE TABLE budget_holds (
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    credits INTEGER NOT NULL,
    PRIMARY KEY (name, owner)
);
""",
    # 5: a hold row per reservation (`hold` names it), not one sum per worker, so that a
    # worker's settle of a hold abandoned meanwhile is told from one of a newer hold. A hold
    # of an earlier release is kept, as the hold 0 of its worker.
    5: """
CREATE TABLE budget_holds_5 (
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    credits INTEGER NOT NULL,
    hold INTEGER NOT NULL,
    PRIMARY KEY (name, owner, hold)
);
INSERT INTO budget_holds_5 (name, owner, credits, hold)
    SELECT name, owner, credits, 0 FROM budget_holds;
DROP TABLE budget_holds;
ALTER TABLE budget_holds_5 RENAME TO budget_holds;
""",
}
SCHEMA_VERSION = max(MIGRATIONS)


@functools.cache
def columns(version: int) -> dict[str, list[str]]:
    """The columns of each table at `version` (1 or later), as its migrations make them: a
    file whose tables differ is not ours, and is refused before anything in it is changed."""
    with closing(sqlite3.connect(":memory:")) as db:
        db.executescript("".join(MIGRATIONS[n] for n in range(1, version + 1)))
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in tables}
