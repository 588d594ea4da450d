"""Every bad input issue 8 found, through the real command line: one line on stderr that names
the field and the fix, exit 2, nothing sent upstream or to the webhook, and no traceback on any
channel at any verbosity (stdout, stderr, -v and -vv logs)."""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.storage.sqlite import SQLiteDatabase
from tests.support import ACTION, API_KEY, Run, request, run_cli, run_invoke, run_main


def at_every_verbosity(*args: str, **kwargs: Any) -> list[Run]:
    """The same command at default verbosity in a child process, as a user runs it, then with
    -v and -vv in this process (the same code and channels, a fraction of the start-up cost)."""
    return [run_cli(*args, timeout=30, **kwargs),
            run_main("-v", *args, **kwargs), run_main("-vv", *args, **kwargs)]


def assert_no_traceback(run: Run) -> None:
    for text in (run.stdout, run.stderr):
        assert "Traceback" not in text and 'File "' not in text, text


def assert_refused(runs: list[Run], *words: str) -> str:
    """Every run exited 2 without a traceback; the quiet one printed one line on stderr, and
    nothing on stdout, holding each of `words`. Returns that line."""
    for run in runs:
        assert run.code == 2, run.output
        assert_no_traceback(run)
    quiet = runs[0]
    assert quiet.stdout == ""
    assert quiet.stderr.startswith("tiktok-following") and quiet.stderr.count("\n") == 1, (
        quiet.stderr)
    for word in words:
        assert word in quiet.stderr
    for run in runs[1:]:
        assert quiet.stderr.strip() in run.stderr  # the same message, with logs around it
    return quiet.stderr


@contextlib.contextmanager
def busy_port() -> Iterator[int]:
    """A loopback port something is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


# (id, argv after the global options, environment, words the line must hold: the field, then
# the fix). {base} is the stand-in's URL, {hook} the receiver's, {tmp} a temporary folder.
CLI_CASES = [
    ("handle URL with a broken IPv6 host", ["list", "https://[::1/@alice"], {},
     ["handle", "give 'name', '@name' or 'https://www.tiktok.com/@name'"]),
    ("handle URL with javascript:", ["list", "javascript:alert(1)//www.tiktok.com/@alice"], {},
     ["handle", "give 'name'"]),
    ("handle URL with ftp:", ["list", "ftp://www.tiktok.com/@alice"], {},
     ["handle", "https on a tiktok.com host"]),
    ("--base-url with a broken IPv6 host", ["--base-url", "http://[::1", "list", "alice"], {},
     ["--base-url", "give an http(s) URL like"]),
    ("--base-url with port 99999", ["--base-url", "http://127.0.0.1:99999", "list", "alice"],
     {}, ["--base-url", "port outside 1-65535"]),
    ("DUMPLINGAI_BASE_URL with port 99999", ["list", "alice"],
     {"DUMPLINGAI_BASE_URL": "http://127.0.0.1:99999"},
     ["DUMPLINGAI_BASE_URL", "port outside 1-65535"]),
    ("--webhook with a broken IPv6 host",
     ["watch", "alice", "--once", "--webhook", "http://[::1/h"], {},
     ["webhook", "give an http(s) URL like"]),
    ("--webhook with port 99999",
     ["watch", "alice", "--once", "--webhook", "https://hooks.example:99999/h"], {},
     ["webhook", "port outside 1-65535"]),
    ("a 5,000-digit --min-time", ["list", "alice", "--min-time", "9" * 5000], {},
     ["--min-time", "expected an earlier nextCursor"]),
    ("a 5,000-digit --count", ["list", "alice", "--count", "9" * 5000], {},
     ["--count", "expected a whole number from 1 to 100"]),
    ("a 5,000-digit poll --count", ["poll", "alice", "--count", "9" * 5000], {},
     ["--count", "expected a whole number from 1 to 100"]),
    ("--webhook-timeout inf",
     ["watch", "alice", "--once", "--webhook", "{hook}", "--webhook-timeout", "inf"], {},
     ["--webhook-timeout", "expected seconds"]),
    ("sandbox --port 99999", ["sandbox", "--port", "99999"], {},
     ["--port", "expected a whole number from 0 to 65535"]),
    ("a binary --handles-file",
     ["watch", "--once", "--webhook", "{hook}", "--handles-file", "{tmp}/binary"], {},
     ["--handles-file", "not a UTF-8 text file"]),
    ("a --state-db with a line break", ["poll", "alice", "--state-db", "{tmp}/a\nb.db"], {},
     ["--state-db", "holds a line break", "give a plain path"]),
    ("a --handles-file with a carriage return",
     ["watch", "--once", "--webhook", "{hook}", "--handles-file", "{tmp}/h\rx"], {},
     ["--handles-file", "holds a line break", "give a plain path"]),
    ("TIKTOK_FOLLOWING_STATE_DB with a line separator", ["outbox"],
     {"TIKTOK_FOLLOWING_STATE_DB": "state\u2028.db"},
     ["TIKTOK_FOLLOWING_STATE_DB", "U+2028", "or unset it"]),
    ("a negative --min-time", ["list", "alice", "--min-time", "-5"], {},
     ["--min-time", "a number from 0"]),
    ("an API key with a line break", ["list", "alice"], {"DUMPLINGAI_API_KEY": "sk_abc\ndef"},
     ["DUMPLINGAI_API_KEY", "paste it again on one line"]),
    ("an API key outside Latin-1", ["list", "alice"], {"DUMPLINGAI_API_KEY": "sk_ключ"},
     ["DUMPLINGAI_API_KEY", "paste the key exactly"]),
    ("an API key outside Latin-1, at watch start-up",
     ["watch", "alice", "--webhook", "{hook}", "--interval", "1s"],
     {"DUMPLINGAI_API_KEY": "sk_€uro"}, ["DUMPLINGAI_API_KEY", "paste the key exactly"]),
    ("a --header value outside Latin-1, at watch start-up",
     ["watch", "alice", "--webhook", "{hook}", "--interval", "1s", "--header", "X-Token: €uro"],
     {}, ["--header X-Token", "encode it, e.g. as base64"]),
    ("a --header value with a line break",
     ["watch", "alice", "--once", "--webhook", "{hook}", "--header", "X-Token: a\nb"], {},
     ["--header X-Token", "line break"]),
]


@pytest.mark.parametrize(("argv", "env", "words"), [c[1:] for c in CLI_CASES],
                         ids=[c[0] for c in CLI_CASES])
def test_a_bad_option_is_one_line_exit_2_and_nothing_sent(
    standin, receiver, tmp_path, argv, env, words
) -> None:
    standin.add_account("alice", 3)
    (tmp_path / "binary").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 50)
    args = [a.format(base=standin.url, hook=receiver.url, tmp=tmp_path) for a in argv]
    if args[0] not in ("--base-url", "sandbox") and "DUMPLINGAI_BASE_URL" not in env:
        args = ["--base-url", standin.url, *args]
    if "watch" in args or "poll" in args:
        args += ["--state-db", str(tmp_path / "state.db")]
    env = {"TIKTOK_FOLLOWING_WEBHOOK": "", **env}

    runs = at_every_verbosity(*args, env=env)

    assert_refused(runs, *words)
    assert standin.count_requests() == 0
    assert receiver.requests == []


def test_sandbox_on_a_port_in_use_is_one_line_exit_2() -> None:
    with busy_port() as port:
        runs = at_every_verbosity("sandbox", "--port", str(port))
        assert_refused(runs, f"127.0.0.1:{port}", "pick another --port")


@pytest.mark.parametrize("argv", [
    ["poll", "alice", "--state-db", "sub\ndir/state.db"],
    ["watch", "alice", "--once", "--webhook", "{hook}", "--state-db", "state\x1b.db"],
    ["watch", "--once", "--webhook", "{hook}", "--handles-file", "handles\n.txt"],
    ["poll", "alice"],
], ids=["poll --state-db", "watch --state-db", "--handles-file", "the environment"])
def test_a_path_with_a_control_character_creates_nothing(standin, receiver, tmp_path,
                                                         argv) -> None:
    standin.add_account("alice", 3)
    args = [a.format(hook=receiver.url) for a in argv]
    done = run_in(["--base-url", standin.url, *args], tmp_path,
               env={"TIKTOK_FOLLOWING_STATE_DB": "state\u0085.db", "TIKTOK_FOLLOWING_WEBHOOK": ""})
    assert done.code == 2 and done.stderr.count("\n") == 1, done.stderr
    assert list(tmp_path.iterdir()) == []
    assert standin.count_requests() == 0 and receiver.requests == []


def run_in(args: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """The command line in a child process, in `cwd` (where a relative path would be made)."""
    from tests.support import CLI
    from tests.support import run as run_argv

    return run_argv([*CLI, *args], cwd=cwd, env=env, timeout=30)


# invoke: the same promise, with the error as JSON on stdout too.

INVOKE_CASES = [
    ("JSON nested 50,000 levels", "[" * 50_000 + "]" * 50_000, "request", "one flat object"),
    ("an apiKey with a line break", {"apiKey": "sk_abc\ndef"}, "apiKey",
     "paste it again on one line"),
    ("an apiKey outside Latin-1", {"apiKey": "sk_ключ"}, "apiKey", "paste the key exactly"),
    ("a baseUrl with port 99999", {"baseUrl": "http://127.0.0.1:99999"}, "baseUrl",
     "port outside 1-65535"),
    ("an unknown credentials field", {"baseURL": "http://127.0.0.1:9"}, "baseURL",
     "the fields are: apiKey, baseUrl"),
    ("a blank apiKey", {"apiKey": "\u3000"}, "apiKey", "leave credentials.apiKey out"),
    ("a negative minTime", {"inputs": {"minTime": -1}}, "minTime", "must be at least 0"),
    ("a negative minTime as text", {"inputs": {"minTime": "-1700000000"}}, "minTime",
     "must be at least 0"),
    ("a handle URL with javascript:", {"handle": "javascript:alert(1)//tiktok.com/@alice"},
     "handle", "give 'name'"),
    ("a handle URL with ftp:", {"handle": "ftp://www.tiktok.com/@alice"}, "handle",
     "give 'name'"),
]


@pytest.mark.parametrize(("change", "field", "fix"), [c[1:] for c in INVOKE_CASES],
                         ids=[c[0] for c in INVOKE_CASES])
def test_invoke_answers_bad_input_with_one_json_error_exit_2_and_sends_nothing(
    standin, creds, change, field, fix
) -> None:
    standin.add_account("alice", 3)
    if isinstance(change, str):
        stdin = change
    else:
        inputs = {"handle": change.pop("handle", "alice"), **change.pop("inputs", {})}
        stdin = json.dumps(request(ACTION, inputs, {**creds, **change}))

    runs = at_every_verbosity("invoke", stdin=stdin, key=None)

    for run in runs:
        assert run.code == 2
        assert_no_traceback(run)
        assert run.stdout.count("\n") == 1  # one JSON object, on one line
        error = run.error
        assert error["field"] == field and error["type"] in ("input_error",
                                                               "configuration_error")
        assert fix in error["message"]
        assert f"tiktok-following: {error['message']}\n" in run.stderr
    assert runs[0].stderr.count("\n") == 1
    assert standin.count_requests() == 0


def test_invoke_names_the_environment_variable_a_bad_key_came_from(standin) -> None:
    run = run_invoke(request(ACTION, {"handle": "alice"}, {"baseUrl": standin.url}),
                     env={"DUMPLINGAI_API_KEY": "sk_abc\r\ndef"})
    assert (run.code, run.error["field"]) == (2, "apiKey")
    assert "DUMPLINGAI_API_KEY" in run.error["message"]
    assert standin.count_requests() == 0


# State databases that are not ours, or damaged.


def sql(path: Path, statement: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(statement)


def snapshot(path: Path) -> Any:
    """What a file holds: its SQL dump when it is a database (WAL mode moves bytes around
    without changing a thing), else its bytes."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return list(db.iterdump())
    except sqlite3.DatabaseError:
        return path.read_bytes()


def wrong_columns(path: Path) -> None:
    sql(path, "CREATE TABLE outbox (id INTEGER PRIMARY KEY, body BLOB)")


def junk_schema_version(path: Path) -> None:
    SQLiteDatabase(path).close()
    sql(path, "UPDATE meta SET value='banana' WHERE name='schema'")


def not_sqlite(path: Path) -> None:
    path.write_bytes(b"this is a text file, not a database\n" * 100)


DAMAGED_DATABASES = [wrong_columns, junk_schema_version, not_sqlite]
STATE_COMMANDS = [
    ["poll", "alice"],
    ["watch", "alice", "--once", "--webhook", "{hook}"],
    ["outbox", "list"],
    ["outbox", "retry", "--all"],
]


@pytest.mark.parametrize("damage", DAMAGED_DATABASES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("command", STATE_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_state_database_that_is_not_ours_is_named_exit_2_and_left_alone(
    standin, receiver, tmp_path, damage, command
) -> None:
    standin.add_account("alice", 3)
    path = tmp_path / "state.db"
    damage(path)
    before = snapshot(path)
    args = [a.format(hook=receiver.url) for a in command]

    runs = at_every_verbosity("--base-url", standin.url, *args, "--state-db", str(path))

    line = assert_refused(runs, str(path), "--state-db PATH")
    assert "tiktok-following state database" in line or "SQLite" in line \
        or "schema version" in line
    assert standin.count_requests() == 0 and receiver.requests == []
    if damage is not wrong_columns:  # (that one gains the tables it lacked: nothing is lost)
        assert snapshot(path) == before


def test_a_damaged_outbox_payload_is_parked_and_shown_never_a_traceback(
    standin, receiver, tmp_path
) -> None:
    standin.add_account("alice", 3)
    template = tmp_path / "template.db"
    SQLiteDatabase(template).close()
    sql(template, "INSERT INTO outbox (event_id, handle, payload, created_at, next_attempt_at) "
                  "VALUES ('e-damaged', 'alice', '{\"eventId\": oops', 0, 0)")
    copies = itertools.count()

    def run_on_copy(*args: str) -> list[Run]:
        """The command at every verbosity, each on its own copy of the database."""
        runs = []
        for verbosity in ("", "-v", "-vv"):
            path = tmp_path / f"copy-{next(copies)}.db"
            shutil.copy(template, path)
            argv = ["--base-url", standin.url, *args, "--state-db", str(path)]
            runs.append(run_main(verbosity, *argv) if verbosity else run_cli(*argv))
        return runs

    # poll does not read the outbox: the damaged event is no reason to stop it.
    for run in run_on_copy("poll", "alice"):
        assert run.code == 0 and "baseline taken" in run.stderr
        assert_no_traceback(run)

    # watch parks it, says which and what to do, exits 1 (an event is left parked), posts
    # nothing: a payload that cannot be read cannot be sent.
    for run in run_on_copy("watch", "alice", "--once", "--webhook", receiver.url):
        assert run.code == 1
        assert_no_traceback(run)
        assert "e-damaged" in run.stderr and "outbox discard" in run.stderr
        assert "parked 1" in run.stderr
    assert receiver.requests == []

    # outbox list shows it, with what went wrong once it was tried.
    for run in run_on_copy("outbox", "list", "--all"):
        assert run.code == 0
        assert_no_traceback(run)
        assert "e-damaged" in run.stdout and "pending" in run.stdout
        assert "0 parked, 1 pending" in run.stderr
    listed = run_main("outbox", "list", "--all", "--format", "jsonl", "--state-db",
                      str(template))
    assert listed.lines[0]["eventId"] == "e-damaged" and listed.lines[0]["event"] is None


def test_a_key_or_header_refused_at_start_up_never_enters_a_retry_loop(
    standin, receiver, tmp_path
) -> None:
    """A running watch (no --once) with a header HTTP cannot carry exits at once, with one
    line, instead of failing every 50 ms for ever."""
    standin.add_account("alice", 3)
    common = ["--base-url", standin.url, "watch", "alice", "--webhook", receiver.url,
              "--interval", "1s", "--state-db", str(tmp_path / "s.db")]
    header = run_cli(*common, "--header", "Authorization: Bearer ключ", timeout=20)
    key = run_cli(*common, key="ключ", timeout=20)
    for run in (header, key):
        assert run.code == 2 and run.stderr.count("\n") == 1
        assert_no_traceback(run)
    assert standin.count_requests() == 0 and receiver.requests == []
    assert API_KEY not in header.output
