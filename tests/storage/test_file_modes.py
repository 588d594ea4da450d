"""A SQLite state file holds the watched handles' follows and the outbox's payloads: made new,
it is its user's alone (0600), and so are its -wal and -shm files, its lock folder (0700) and
its lock files, under the usual umask 022. A file that exists keeps the mode it has (its
owner's choice), and what the connector makes beside it takes that mode, so a file shared with
a group on purpose stays usable by the group; so does a new file made in a folder shared with
a group on purpose (setgid, group-writable)."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.operations.events import new_event
from connector.storage import open_database
from connector.storage.outbox import iso

KEY = "new_account_followed:alice"

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX's")


@pytest.fixture
def umask() -> Iterator[callable]:
    """Umask 022 (the usual one) for the test, or what the test sets; put back afterwards."""
    old = os.umask(0o022)

    def set_to(mask: int) -> None:
        os.umask(mask)

    yield set_to
    os.umask(old)


def mode(path: Path) -> int:
    """The permission bits (a folder made in a setgid folder inherits that bit: not ours)."""
    return stat.S_IMODE(path.stat().st_mode) & 0o777


def use(path: Path) -> dict[str, int]:
    """Open the state file at `path` and do what `poll` and `watch` do to it (a save with an
    outbox event, a poll lock, a worker mark); the modes of everything there meanwhile."""
    eid, payload = new_event("alice", {"id": "1", "uniqueId": "bob"}, detected_at=iso(time.time()))
    with open_database(path) as db, db.worker("me"), db.lock(KEY, 5):
        db.save(KEY, {"watermark": 1}, events=[(eid, "alice", payload)])
        locks = path.with_name(path.name + "-locks")
        found = {p.name: mode(p) for p in [path, *path.parent.glob(path.name + "-*")]}
        found.update({f"lock {p.name}": mode(p) for p in locks.glob("*.lock")})
    return found


def expect(file: int, folder: int, path: Path, found: dict[str, int]) -> None:
    name = path.name
    assert found[name] == file
    assert found[f"{name}-wal"] == file and found[f"{name}-shm"] == file
    assert found[f"{name}-locks"] == folder
    lock_files = [m for n, m in found.items() if n.startswith("lock ")]
    assert len(lock_files) == 2 and set(lock_files) == {file}  # the poll's and the worker's


def test_a_new_state_file_and_all_beside_it_are_private_under_umask_022(tmp_path, umask):
    path = tmp_path / "state.db"
    found = use(path)
    expect(0o600, 0o700, path, found)


def test_the_default_state_file_is_private(tmp_path, umask, monkeypatch):
    monkeypatch.delenv("TIKTOK_FOLLOWING_STATE_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with open_database() as db:
        db.save(KEY, {"watermark": 1})
        path = Path(db.location)
    assert path == tmp_path / "data" / "tiktok-following" / "state.db"
    # The default location's folder is the only one the connector makes (a --state-db folder
    # must exist): it is made private too.
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_poll_on_the_command_line_makes_its_state_private(tmp_path, umask, standin):
    from tests.support import run_cli

    standin.add_account("alice", 3)
    path = tmp_path / "cli.db"
    run = run_cli("--base-url", standin.url, "poll", "alice", "--state-db", str(path))
    assert run.code == 0, run.stderr
    assert mode(path) == 0o600
    locks = path.with_name("cli.db-locks")
    assert mode(locks) == 0o700
    assert [mode(p) for p in locks.glob("*.lock")] == [0o600]


@pytest.mark.parametrize("existing", [0o644, 0o660, 0o640], ids=["644", "660", "640"])
def test_a_state_file_that_exists_keeps_its_mode_and_what_is_made_beside_it_follows(
    tmp_path, umask, existing
):
    path = tmp_path / "state.db"
    sqlite3.connect(path).close()  # as the first release made it, or its owner did
    path.chmod(existing)
    found = use(path)
    # 0644: readable by all already (its owner may `chmod 600` it); 0660: shared with a
    # group, whose members can still take its locks, whatever this user's umask.
    expect(existing, existing | (existing & 0o444) >> 2, path, found)


def test_a_new_file_in_a_folder_shared_with_a_group_is_the_groups_too(tmp_path, umask):
    umask(0o002)  # the umask of people who share files with their group
    shared = tmp_path / "team"
    shared.mkdir()
    shared.chmod(0o2770)  # setgid: new files take the folder's group
    path = shared / "state.db"
    expect(0o660, 0o770, path, use(path))


def test_a_new_file_in_a_folder_anyone_may_write_to_is_private(tmp_path, umask):
    umask(0o002)
    public = tmp_path / "tmp"
    public.mkdir()
    public.chmod(0o3777)  # like /tmp, and setgid too: still not a group's on purpose
    path = public / "state.db"
    expect(0o600, 0o700, path, use(path))
