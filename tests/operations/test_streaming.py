"""`list` and `connector.stream`: the action a page at a time, each page handed on as it
arrives, so memory holds one page however many are read (issue 11)."""

from __future__ import annotations

import json

import pytest

import connector
from connector import cli
from connector.standin import Fault
from connector.standin.faults import OK

ACTION = "get_tiktok_user_following"


@pytest.fixture
def api_key(creds, monkeypatch) -> str:
    monkeypatch.setenv("DUMPLINGAI_API_KEY", creds["apiKey"])
    monkeypatch.delenv("DUMPLINGAI_BASE_URL", raising=False)
    return creds["apiKey"]


def test_stream_requests_each_page_only_when_the_previous_one_was_taken(standin, creds):
    standin.add_account("alice", 25)
    inputs = {"handle": "@alice", "count": 10, "maxPages": 5}
    with connector.stream(inputs, credentials=creds) as listing:
        assert standin.count_requests() == 0  # nothing sent before the first page is asked for
        seen = []
        for page in listing.pages():
            seen.append(len(page))
            assert standin.count_requests() == len(seen)
    assert seen == [10, 10, 5]
    same = connector.run(ACTION, inputs, credentials=creds)
    differs = {"rateLimitRemaining"}  # the second read spent more of the limit
    assert {k: v for k, v in listing.meta.items() if k not in differs} == {
        k: v for k, v in same.meta.items() if k not in differs}
    assert listing.items == len(same.items) == 25


def test_stream_items_are_those_of_run_in_the_same_order(standin, creds):
    standin.add_account("alice", 23)
    inputs = {"handle": "alice", "count": 10, "maxPages": 3}
    with connector.stream(inputs, credentials=creds) as listing:
        items = list(listing)
    assert items == connector.run(ACTION, inputs, credentials=creds).items


def test_stream_checks_inputs_before_sending_anything(standin, creds):
    with pytest.raises(connector.InputError, match="maxPages"), connector.stream(
        {"handle": "alice", "maxPages": 0}, credentials=creds
    ):
        pass
    assert standin.count_requests() == 0


def test_an_error_part_way_through_a_stream_says_where_to_resume(standin, creds):
    standin.add_account("alice", 50)
    standin.inject(OK, OK, Fault(status=404))
    pages = []
    with pytest.raises(connector.NotFoundError) as caught, connector.stream(
        {"handle": "alice", "count": 10, "maxPages": 5}, credentials=creds
    ) as listing:
        for page in listing.pages():
            pages.append(page)
    assert len(pages) == 2 and listing.items == 20
    partial = caught.value.partial
    assert partial.items == [] and partial.pages == 2
    assert partial.next_cursor == standin.requests[-1].body["minTime"]


def test_list_json_over_several_pages_is_one_array_equal_to_the_python_call(
    standin, api_key, creds, capsys
):
    standin.add_account("alice", 23)
    argv = ["--base-url", standin.url, "list", "alice", "--count", "10", "--max-pages", "3",
            "--format", "json"]
    assert cli.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    same = connector.run(ACTION, {"handle": "alice", "count": 10, "maxPages": 3},
                         credentials=creds)
    assert printed == same.items and len(printed) == 23


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_list_keeps_the_pages_printed_before_an_error_and_says_where_to_continue(
    standin, api_key, capsys, fmt
):
    standin.add_account("alice", 50)
    standin.inject(OK, OK, Fault(status=404))
    argv = ["--base-url", standin.url, "list", "alice", "--count", "10", "--max-pages", "5",
            "--format", fmt]
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    cursor = standin.requests[-1].body["minTime"]
    if fmt == "json":
        assert len(json.loads(out)) == 20  # the array is closed: valid JSON of what was read
    else:
        assert len(out.splitlines()) == 20 + (fmt == "csv")
    assert f"@alice: 20 accounts printed before the error; continue with --min-time {cursor}" \
        in err
    assert err.strip().splitlines()[-1].startswith("tiktok-following: ")
