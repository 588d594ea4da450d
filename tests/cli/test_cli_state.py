"""No state created by mistake (issue 21): a --state-db whose folder does not exist, a sqlite://
URL, an outbox of a file that is not there, and a --sandbox run are refused or kept apart before
anything is written or sent."""

from __future__ import annotations

from pathlib import Path

import pytest

import connector
from connector.core.errors import ConfigurationError
from connector.storage import Outbox
from tests.support import CLI, run, run_main


@pytest.fixture
def data_home(tmp_path: Path) -> Path:
    """The user data dir of the runs below (platformdirs reads XDG_DATA_HOME), not yet made."""
    return tmp_path / "data"


def poll(standin, creds, *args: str, env: dict[str, str] | None = None):
    return run_main("--base-url", standin.url, "poll", "alice", *args, key=creds["apiKey"],
                    env=env)


def test_a_state_db_in_a_folder_that_does_not_exist_is_refused_and_not_made(
        standin, creds, tmp_path: Path) -> None:
    standin.add_account("alice", 3)
    target = tmp_path / "nonexistent" / "dir" / "x.db"
    result = poll(standin, creds, "--state-db", str(target))
    assert result.code == 2 and result.stdout == ""
    assert result.stderr == (
        f"tiktok-following: --state-db: the folder {target.parent} does not exist; create it "
        f"first or give another path (only the default location's folders are made)\n")
    assert not (tmp_path / "nonexistent").exists()
    assert standin.count_requests() == 0  # no baseline taken, no credit spent


def test_the_environment_variables_folder_is_not_made_either(standin, creds,
                                                              tmp_path: Path) -> None:
    target = tmp_path / "nope" / "x.db"
    result = poll(standin, creds, env={"TIKTOK_FOLLOWING_STATE_DB": str(target)})
    assert result.code == 2
    assert result.stderr.startswith(
        f"tiktok-following: TIKTOK_FOLLOWING_STATE_DB: the folder {target.parent} does not "
        f"exist")
    assert not target.parent.exists()


def test_the_default_locations_folders_are_made(standin, creds, data_home: Path) -> None:
    standin.add_account("alice", 3)
    result = poll(standin, creds, env={"XDG_DATA_HOME": str(data_home)})
    assert result.code == 0, result.stderr
    assert (data_home / "tiktok-following" / "state.db").is_file()


@pytest.mark.parametrize(("url", "path"), [("sqlite:///x.db", "x.db"),
                                           ("sqlite:///{tmp}/x.db", "{tmp}/x.db"),
                                           ("file://{tmp}/x.db", "{tmp}/x.db")])
def test_a_sqlite_url_is_refused_by_name_with_the_path_to_give(
        standin, tmp_path: Path, url: str, path: str) -> None:
    # (SQLite itself reads a file: name as a URI: the code this replaced made {tmp}/x.db.)
    url, path = url.format(tmp=tmp_path), path.format(tmp=tmp_path)
    result = run([*CLI, "--base-url", standin.url, "poll", "alice", "--state-db", url],
                 cwd=tmp_path)
    assert result.code == 2
    scheme = url.split(":")[0]
    assert result.stderr == (f"tiktok-following: --state-db takes a SQLite file's path, not a "
                             f"{scheme}: URL; give the path itself: {path}\n")
    assert list(tmp_path.iterdir()) == []  # no folder named `sqlite:`


def test_another_database_url_is_refused_without_showing_it(standin, tmp_path: Path) -> None:
    result = run([*CLI, "--base-url", standin.url, "poll", "alice", "--state-db",
                  "mysql://user:hunter2@db.example/x"], cwd=tmp_path)
    assert result.code == 2
    assert "mysql:// is not supported" in result.stderr and "hunter2" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_outbox_of_a_file_that_does_not_exist_says_so_and_creates_nothing(
        tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    for action in (["list"], ["retry", "--all"], ["discard", "--all"]):
        result = run_main("outbox", *action, "--state-db", str(typo))
        assert result.code == 2, action
        assert result.stderr == (f"tiktok-following: --state-db: there is no state database "
                                 f"at {typo} (nothing was ever stored there); check the path\n")
        assert "0 parked" not in result.output
    assert not typo.exists()
    with pytest.raises(ConfigurationError):
        Outbox(typo)  # the Python side too
    assert not typo.exists()


def test_the_python_store_refuses_a_missing_folder_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        connector.open_store(tmp_path / "missing" / "x.db")
    assert caught.value.details["field"] == "stateDb"
    assert not (tmp_path / "missing").exists()


def test_a_sandbox_poll_keeps_its_state_apart_from_the_real_one(
        data_home: Path, tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    env = {"XDG_DATA_HOME": str(data_home), "TIKTOK_FOLLOWING_STATE_DB": str(real)}
    sandbox = data_home / "tiktok-following" / "sandbox.db"
    first = run_main("--sandbox", "poll", "busy_demo", env=env, key=None)
    assert first.code == 0, first.stderr
    assert first.stderr.startswith(f"sandbox: state in {sandbox}\n")
    assert "baseline taken" in first.stderr
    again = run_main("poll", "busy_demo", "--sandbox", env=env, key=None)
    assert again.code == 0, again.stderr
    assert "baseline taken" not in again.stderr  # the sandbox state was kept
    assert sandbox.is_file()
    assert not real.exists() and not (data_home / "tiktok-following" / "state.db").exists()
    # An explicit --state-db is still the user's choice.
    mine = tmp_path / "mine.db"
    assert run_main("--sandbox", "poll", "busy_demo", "--state-db", str(mine), env=env,
                    key=None).code == 0
    assert mine.is_file()
