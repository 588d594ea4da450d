"""`list` output that stays valid when cut short (issue 21): an interrupt ends the JSON array
and says where to resume; an error before any account prints nothing on stdout (never `[]` or
a bare CSV header, which read as "0 accounts"); a reader that leaves (`| head`) stops the read
quietly with the status of SIGPIPE."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time

import pytest

import connector
from connector.standin import Fault
from tests.support import CLI, ROOT, child_env, run_main

ACTION = "get_tiktok_user_following"


def list_(standin, creds, *args: str):
    return run_main("--base-url", standin.url, "list", *args, key=creds["apiKey"])


@pytest.mark.parametrize("fmt", ["json", "csv", "jsonl"])
def test_a_private_list_prints_nothing_on_stdout(standin, creds, fmt: str) -> None:
    run = list_(standin, creds, "nobody_here", "--format", fmt)
    assert run.code == 1
    assert run.stdout == ""
    assert "404" in run.stderr


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_an_input_error_prints_nothing_on_stdout(standin, creds, fmt: str) -> None:
    run = list_(standin, creds, "bad handle!", "--format", fmt)
    assert run.code == 2
    assert run.stdout == ""
    assert standin.count_requests() == 0


def test_an_empty_list_that_was_read_is_an_empty_document(standin, creds) -> None:
    standin.add_account("loner", 0)
    assert list_(standin, creds, "loner", "--format", "json").json == []
    header = list_(standin, creds, "loner", "--format", "csv").stdout
    assert header.splitlines() == [",".join(next(csv.reader(io.StringIO(header))))]
    assert header.startswith("id,uniqueId,")


def test_an_error_after_some_pages_ends_the_array_and_says_where_to_resume(
        standin, creds) -> None:
    standin.add_account("alice", 30)
    standin.inject(Fault(), Fault(status=404))
    run = list_(standin, creds, "alice", "--count", "10", "--max-pages", "3", "--format",
                "json")
    assert run.code == 1
    assert [i["uniqueId"] for i in run.json] == [f"user{n}" for n in range(30, 20, -1)]
    first = connector.run(ACTION, {"handle": "alice", "count": 10}, credentials=creds)
    assert (f"@alice: 10 accounts printed before the error; continue with --min-time "
            f"{first.meta['nextCursor']}") in run.stderr


@pytest.mark.slow
def test_ctrl_c_ends_the_json_array_and_prints_where_to_resume(standin, creds) -> None:
    standin.add_account("alice", 30)
    standin.inject(Fault(), Fault(delay=60))  # the second page never comes in time
    # As a terminal starts it: SIGINT raises KeyboardInterrupt (a shell's background jobs
    # would inherit it ignored).
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from connector.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--base-url", standin.url, "list", "alice", "--count",
         "10", "--max-pages", "3", "--format", "json"],
        cwd=ROOT, env=child_env(creds["apiKey"]), text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while standin.count_requests() < 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # the first page is printed before the second is asked for
        assert standin.count_requests() == 2
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130
    assert [i["uniqueId"] for i in json.loads(out)] == [f"user{n}" for n in range(30, 20, -1)]
    standin.clear_faults()
    first = connector.run(ACTION, {"handle": "alice", "count": 10}, credentials=creds)
    assert err == (f"tiktok-following: interrupted; @alice: 10 accounts printed, continue "
                   f"with --min-time {first.meta['nextCursor']}\n")


@pytest.mark.slow
def test_a_reader_that_leaves_stops_the_read_quietly_with_sigpipes_status(
        standin, creds) -> None:
    standin.add_account("alice", 600)  # far more than a pipe holds
    proc = subprocess.Popen(
        [*CLI, "--base-url", standin.url, "list", "alice", "--count", "100", "--max-pages",
         "6"], cwd=ROOT, env=child_env(creds["apiKey"]), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["uniqueId"] == "user600"  # `head -1`
        proc.stdout.close()
        assert proc.wait(timeout=30) == 141  # 128 + SIGPIPE, as a shell shows it
        assert proc.stderr.read() == b""
    finally:
        proc.kill()
        proc.wait()
    assert standin.count_requests() < 6  # no more pages (credits) once nobody reads
