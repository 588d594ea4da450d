"""The embedded store polls on from every form a release stored a trigger state in, in SQLite
and in PostgreSQL, and loses nothing: each file or database below is made as that release's
storage made it (its schema, its rows), from a real baseline of the stand-in's list, and is
then polled by today's store.

- SQLite schema 1 (the first release): the whole state JSON in its row (version 1: the ids).
- SQLite schema 2: a small row, and the memory's parts as base85 text (version 2 segments).
- SQLite schema 3, PostgreSQL schema 2 (the release before the state package): version-3
  parts as the bytes their base85 encodes; the unfollow state whole in its row.
- PostgreSQL schema 1: parts as base85 text (version 2 and version 3 states).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

import connector
from connector.core import b85
from connector.store import open_store, state_key
from tests.state.formats import v2_segment
from tests.support import raw_sql

HANDLE = "alice"
FOLLOWS = "new_account_followed"
UNFOLLOWS = "account_unfollowed"
COUNT = 50


def old_database(target: str, schema: int) -> None:
    """An empty database of that schema, as its release made it."""
    if target.startswith("postgresql://"):
        from connector.storage import postgres_schema

        raw_sql(target, f"CREATE SCHEMA {postgres_schema.SCHEMA}")
        for version in range(1, schema + 1):
            raw_sql(target, postgres_schema.MIGRATIONS[version])
    else:
        import sqlite3

        from connector.storage import sqlite_schema as lite

        db = sqlite3.connect(target, isolation_level=None)
        db.executescript("".join(lite.MIGRATIONS[v] for v in range(1, schema + 1)))
        db.close()
    raw_sql(target, "INSERT INTO meta VALUES ('schema', ?)", (str(schema),))


def store_old(target: str, schema: int, key: str, state: dict[str, Any], form: str) -> None:
    """`state` as that release's storage kept it: whole in its row, or its `known` parts as
    rows, as base85 text or as the bytes that text encodes."""
    if form == "whole":
        columns = "key, state, updated_at" + (", version" if schema > 1 or "postgres" in target
                                              else "")
        values = (key, json.dumps(state), 0) + ((1,) if "version" in columns else ())
        raw_sql(target, f"INSERT INTO trigger_state ({columns}) VALUES "
                        f"({', '.join('?' * len(values))})", values)
        return
    row = {k: v for k, v in state.items() if k != "known"}
    parts = state["known"]
    raw_sql(target, "INSERT INTO trigger_state (key, state, updated_at, version, parts) VALUES "
                    "(?, ?, 0, 1, ?)", (key, json.dumps(row), len(parts)))
    for n, text in enumerate(reversed(parts), 1):  # numbered oldest first
        digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
        kept: str | bytes = text if form == "text" else b85.decode(text)
        if target.startswith("postgresql://"):
            column = "text" if form == "text" else "data"
            raw_sql(target, f"INSERT INTO state_part (key, n, digest, {column}) VALUES "
                            "(?, ?, ?, ?)", (key, n, digest, kept))
        else:
            raw_sql(target, "INSERT INTO state_part VALUES (?, ?, ?, ?)",
                    (key, n, digest, kept))


def follow_state(standin, creds, version: int) -> dict[str, Any]:
    """The follow trigger's state after a baseline of the stand-in's list, as version
    `version` wrote it."""
    state = connector.run(FOLLOWS, {"handle": HANDLE, "count": COUNT}, credentials=creds).state
    ids = [u["id"] for u in standin.following(HANDLE)[:COUNT]]  # newest first
    if version == 1:
        return {"v": 1, "handle": HANDLE, "watermark": state["watermark"], "known": ids,
                "gaps": []}
    if version == 2:
        return {"v": 2, "handle": HANDLE, "watermark": state["watermark"],
                "known": [v2_segment(ids)], "gaps": []}
    assert state["known"], "a held set, to be stored as a part"
    return state


FOLLOW_FORMATS = [("sqlite", 1, "whole", 1), ("sqlite", 2, "text", 2),
                  ("sqlite", 3, "bytes", 3), ("postgres", 1, "text", 2),
                  ("postgres", 1, "text", 3), ("postgres", 2, "bytes", 3)]


def target_for(backend: str, request, tmp_path) -> str:
    if backend == "sqlite":
        return str(tmp_path / "old.db")
    return request.getfixturevalue("postgres_url")


@pytest.mark.parametrize(("backend", "schema", "form", "version"), FOLLOW_FORMATS,
                         ids=[f"{b}{s}-{f}-v{v}" for b, s, f, v in FOLLOW_FORMATS])
def test_the_store_polls_on_exactly_from_a_follow_state_of_every_stored_form(
    standin, creds, request, tmp_path, backend, schema, form, version
):
    target = target_for(backend, request, tmp_path)
    standin.add_account(HANDLE, 80)
    old_database(target, schema)
    store_old(target, schema, state_key(HANDLE), follow_state(standin, creds, version), form)
    new = standin.follow_many(HANDLE, 3)
    with open_store(target) as store:
        with store.poll(HANDLE, inputs={"count": COUNT}, credentials=creds) as batch:
            assert [i["id"] for i in batch.items] == [u["id"] for u in new]
            assert batch.meta["requests"] == 1 and batch.meta["baseline"] is False
            batch.commit()
        for _ in range(2):  # and from what it saved: nothing new, one request
            with store.poll(HANDLE, inputs={"count": COUNT}, credentials=creds) as batch:
                assert batch.items == [] and batch.meta["requests"] == 1
                assert batch.state["v"] == 3
                batch.commit()


UNFOLLOW_FORMATS = [("sqlite", 3), ("postgres", 2)]


@pytest.mark.parametrize(("backend", "schema"), UNFOLLOW_FORMATS,
                         ids=[f"{b}{s}-whole" for b, s in UNFOLLOW_FORMATS])
def test_the_store_polls_on_from_an_unfollow_state_kept_whole_in_its_row(
    standin, creds, request, tmp_path, backend, schema
):
    target = target_for(backend, request, tmp_path)
    standin.add_account(HANDLE, 600)  # three blocks
    old_database(target, schema)
    inputs = {"handle": HANDLE, "count": COUNT, "maxPages": 20}
    state = connector.run(UNFOLLOWS, inputs, credentials=creds).state
    assert len(state["accounts"]) == 3
    store_old(target, schema, state_key(HANDLE, UNFOLLOWS), state, "whole")
    gone = standin.following(HANDLE)[420]
    standin.unfollow(HANDLE, gone["id"])
    with open_store(target) as store:
        with store.poll(HANDLE, inputs=inputs, credentials=creds, operation=UNFOLLOWS) as batch:
            assert [i["id"] for i in batch.items] == [gone["id"]]
            batch.commit()
        for _ in range(2):  # and from what it saved, its blocks as parts
            with store.poll(HANDLE, inputs=inputs, credentials=creds,
                            operation=UNFOLLOWS) as batch:
                assert batch.items == [] and batch.meta["requests"] == 1
                assert batch.meta["tracked"] == 599
                batch.commit()
