"""The tables of the PostgreSQL state database, in a schema of their own, version by
version: the script of each migration (`postgres.PostgresDatabase` runs those a database
lacks, under an advisory lock)."""

from __future__ import annotations

from .postgres_mark import WORKER_LOCK

#: The schema the connector's tables (and its function `gone`) live in.
SCHEMA = "tiktok_following"
#: Each migration takes the schema from the version before it to its own number, in one
#: transaction, under `postgres.MIGRATION_LOCK`.
MIGRATIONS: dict[int, str] = {
    1: f"""
CREATE TABLE {SCHEMA}.meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE {SCHEMA}.trigger_state (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    parts INTEGER
);
CREATE TABLE {SCHEMA}.state_part (
    key TEXT NOT NULL,
    n INTEGER NOT NULL,
    digest BYTEA NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (key, n)
);
CREATE TABLE {SCHEMA}.poll_lease (
    key TEXT PRIMARY KEY,
    owner TEXT,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    polled_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    next_at DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE {SCHEMA}.outbox (
    event_id TEXT PRIMARY KEY,
    handle TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    last_error TEXT,
    parked BOOLEAN NOT NULL DEFAULT FALSE,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    claimed_by TEXT,
    claimed_until DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON {SCHEMA}.outbox (parked, next_attempt_at);
CREATE INDEX outbox_handle ON {SCHEMA}.outbox (handle, created_at);
CREATE TABLE {SCHEMA}.worker (
    owner TEXT PRIMARY KEY,
    lock_key INTEGER NOT NULL,
    started_at DOUBLE PRECISION NOT NULL
);
-- A worker marked alive holds the advisory lock (WORKER_LOCK, lock_key) on a session of its
-- own; the server drops it when that session ends. Gone: marked, and the lock is free.
CREATE FUNCTION {SCHEMA}.gone(who TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM {SCHEMA}.worker w WHERE w.owner = who AND NOT EXISTS (
            SELECT 1 FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
              AND l.classid = {WORKER_LOCK}::oid AND l.objid = w.lock_key::oid
              AND l.database = (SELECT oid FROM pg_database
                                WHERE datname = current_database())))
$$;
""",
    # 2: a part is kept as bytes, in `data`; rows written before as text keep their text.
    2: f"""
ALTER TABLE {SCHEMA}.state_part ALTER COLUMN text DROP NOT NULL;
ALTER TABLE {SCHEMA}.state_part ADD COLUMN data BYTEA;
-- Deflated already: TOAST need not try to compress it.
ALTER TABLE {SCHEMA}.state_part ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE {SCHEMA}.state_part ADD CONSTRAINT state_part_one_form
    CHECK ((text IS NULL) <> (data IS NULL));
""",
    # 3: budgets (a bucket per budget, shared by every worker, and each worker's holds); next
    # to each poll lease, the handle's activity, health (JSON) and credits this period.
    3: f"""
ALTER TABLE {SCHEMA}.poll_lease ADD COLUMN activity TEXT;
ALTER TABLE {SCHEMA}.poll_lease ADD COLUMN health TEXT;
ALTER TABLE {SCHEMA}.poll_lease ADD COLUMN credits BIGINT NOT NULL DEFAULT 0;
ALTER TABLE {SCHEMA}.poll_lease ADD COLUMN credits_since DOUBLE PRECISION NOT NULL DEFAULT 0;
CREATE TABLE {SCHEMA}.budgets (
    name TEXT PRIMARY KEY,
    credits BIGINT NOT NULL,
    period TEXT NOT NULL,
    level DOUBLE PRECISION NOT NULL,
    held DOUBLE PRECISION NOT NULL DEFAULT 0,
    as_of DOUBLE PRECISION NOT NULL
);
CREATE TABLE {SCHEMA}.budget_holds (
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    credits BIGINT NOT NULL,
    PRIMARY KEY (name, owner)
);
""",
    # 4: a hold row per reservation, as SQLite's schema 5 (a hold of an earlier release is
    # kept, as the hold 0 of its worker).
    4: f"""
ALTER TABLE {SCHEMA}.budget_holds ADD COLUMN hold BIGINT NOT NULL DEFAULT 0;
ALTER TABLE {SCHEMA}.budget_holds ALTER COLUMN hold DROP DEFAULT;
ALTER TABLE {SCHEMA}.budget_holds DROP CONSTRAINT budget_holds_pkey;
ALTER TABLE {SCHEMA}.budget_holds ADD PRIMARY KEY (name, owner, hold);
""",
}
SCHEMA_VERSION = max(MIGRATIONS)
