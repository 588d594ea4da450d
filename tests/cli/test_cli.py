"""The `tiktok-following` commands for people: `manifest` and `list` (`invoke` has its own file)."""

from __future__ import annotations

import csv
import io
import json

import pytest

import connector
from connector import cli
from connector.cli import commands as cli_commands
from connector.core import manifests
from connector.standin import Fault
from tests.support import ACTION, API_KEY, ITEM_FIELDS, request, run_cli, run_invoke


@pytest.fixture
def api_key(creds, monkeypatch) -> str:
    monkeypatch.setenv("DUMPLINGAI_API_KEY", creds["apiKey"])
    monkeypatch.delenv("DUMPLINGAI_BASE_URL", raising=False)
    return creds["apiKey"]


def list_(standin, *args: str) -> list[str]:
    return ["--base-url", standin.url, "list", *args]


# --------------------------------------------------------------------------- manifest


def test_manifest_prints_every_manifest(capsys) -> None:
    assert cli.main(["manifest"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == manifests.load_all()
    assert set(printed) == {"connector", "get_tiktok_user_following", "new_account_followed",
                            "account_unfollowed"}


@pytest.mark.parametrize("key", ["connector", "get_tiktok_user_following", "new_account_followed"])
def test_manifest_with_a_key_prints_that_one(capsys, key: str) -> None:
    assert cli.main(["manifest", key]) == 0
    assert json.loads(capsys.readouterr().out) == manifests.load(key)


def test_manifest_with_an_unknown_key_exits_2_naming_the_known_ones(capsys) -> None:
    assert cli.main(["manifest", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tiktok-following: unknown manifest 'nope'")
    assert "get_tiktok_user_following" in err


def test_manifest_runs_as_a_module_without_credentials() -> None:
    run = run_cli("manifest", "connector", key=None)
    assert run.code == 0, run.stderr
    assert run.json["operations"] == manifests.operation_keys()


# --------------------------------------------------------------------------- list


def test_list_prints_jsonl_by_default_and_a_summary_on_stderr(
    standin, api_key, capsys, assert_valid_items
) -> None:
    standin.add_account("alice", 5)
    assert cli.main(list_(standin, "@alice")) == 0
    out, err = capsys.readouterr()
    items = [json.loads(line) for line in out.splitlines()]
    assert [i["uniqueId"] for i in items] == [f"user{n}" for n in range(5, 0, -1)]
    assert_valid_items(items)
    assert err == "@alice: 5 accounts, 1 page, 10 credits, rate limit 5999/6000 left\n"


def test_list_json_prints_one_array_equal_to_the_python_call(standin, api_key, capsys) -> None:
    standin.add_account("alice", 12)
    assert cli.main(list_(standin, "alice", "--format", "json", "--count", "5")) == 0
    printed = json.loads(capsys.readouterr().out)
    same = connector.run(
        "get_tiktok_user_following",
        {"handle": "alice", "count": 5},
        credentials={"apiKey": api_key, "baseUrl": standin.url},
    )
    assert printed == same.items
    assert len(printed) == 5


def test_list_csv_has_a_header_of_the_item_fields_and_a_row_per_account(
    standin, api_key, capsys
) -> None:
    standin.add_account("alice", 3)
    assert cli.main(list_(standin, "alice", "--format", "csv")) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0].split(",") == ITEM_FIELDS
    assert [r["uniqueId"] for r in rows] == ["user3", "user2", "user1"]
    assert rows[0]["profileUrl"] == "https://www.tiktok.com/@user3"
    assert rows[0]["id"] == standin.following("alice")[0]["id"]


def test_list_over_several_pages_sums_pages_and_credits_and_says_where_to_continue(
    standin, api_key, capsys
) -> None:
    standin.add_account("alice", 40)
    assert cli.main(list_(standin, "alice", "--count", "10", "--max-pages", "3")) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 30
    cursor = standin.requests[-1].body["minTime"] - 10
    assert err == (
        f"@alice: 30 accounts, 3 pages, 30 credits, rate limit 5997/6000 left, "
        f"more from --min-time {cursor}\n"
    )
    assert "\r" not in err  # no progress indicator when stderr is not a terminal

    # Continuing from there reads the rest and nothing twice.
    assert cli.main(list_(standin, "alice", "--count", "10", "--min-time", str(cursor))) == 0
    rest = [json.loads(line)["uniqueId"] for line in capsys.readouterr().out.splitlines()]
    assert rest == [f"user{n}" for n in range(10, 0, -1)]
    sent = standin.requests[-1].body["minTime"]
    assert sent == cursor and isinstance(sent, int)  # untouched, not 1700000010.0


def test_list_cut_short_on_the_first_page_suggests_more_items(standin, api_key, capsys) -> None:
    standin.add_account("alice", 10)
    assert cli.main(list_(standin, "alice", "--max-items", "4")) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 4
    assert err.endswith(", more with a higher --max-items\n")
    assert "None" not in err


def test_list_with_a_bad_handle_exits_2_and_sends_nothing(standin, api_key, capsys) -> None:
    assert cli.main(list_(standin, "bad handle!")) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("tiktok-following: handle: 'bad handle!' is not a TikTok handle")
    assert standin.count_requests() == 0


def test_list_of_a_missing_list_exits_1_with_the_server_message(standin, api_key, capsys) -> None:
    assert cli.main(list_(standin, "ghost")) == 1
    assert "Following list not found for user: ghost" in capsys.readouterr().err


def test_list_without_a_key_exits_2(standin, monkeypatch, capsys) -> None:
    monkeypatch.delenv("DUMPLINGAI_API_KEY", raising=False)
    assert cli.main(list_(standin, "alice")) == 2
    assert "DUMPLINGAI_API_KEY" in capsys.readouterr().err
    assert standin.count_requests() == 0


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_indicator_shows_on_a_terminal_for_several_pages_then_clears() -> None:
    screen = Terminal()
    progress = cli_commands._Progress(screen, max_pages=3)
    progress.update(1, 30)
    progress.update(2, 60)
    progress.done()
    assert screen.getvalue() == (
        "\rfetching: page 1, 30 accounts\rfetching: page 2, 60 accounts\r\033[K"
    )


@pytest.mark.parametrize(("out", "max_pages"), [(io.StringIO(), 3), (Terminal(), 1)])
def test_the_progress_indicator_stays_silent_off_a_terminal_or_for_one_page(
    out: io.StringIO, max_pages: int
) -> None:
    progress = cli_commands._Progress(out, max_pages=max_pages)
    progress.update(1, 30)
    progress.done()
    assert out.getvalue() == ""


def test_a_server_message_with_line_breaks_is_printed_on_one_line(standin) -> None:
    """A server's error text must not be able to forge log lines (issue 8 item 11)."""
    forged = "bad handle\nINFO connector.watch: @alice: delivered\r\nok"
    for _ in range(2):
        standin.inject(Fault(status=400, body=json.dumps({"error": forged})))
    expected = ("tiktok-following: bad handle INFO connector.watch: @alice: delivered ok "
                "(400: check the handle and inputs)\n")
    cli = run_cli("--base-url", standin.url, "list", "alice")
    answer = run_invoke(request(ACTION, {"handle": "alice"},
                                {"apiKey": API_KEY, "baseUrl": standin.url}))
    assert (cli.code, cli.stdout, cli.stderr) == (1, "", expected)
    assert (answer.code, answer.stderr) == (1, expected)
    assert answer.stdout.count("\n") == 1 and "\\n" not in answer.stdout
    assert answer.error["message"] == expected.removeprefix("tiktok-following: ").rstrip("\n")
