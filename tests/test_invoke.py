"""`tiktok-following invoke` (CONTRACT 2): a JSON request on stdin, a JSON response on stdout,
exit 0 / 1 / 2, and never a traceback, run as the separate process a runner starts."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from connector import invoke
from connector.standin import OK, Fault
from tests.support import ACTION, request, run_invoke


def assert_one_line_without_traceback(stderr: str) -> None:
    assert stderr.startswith("tiktok-following: ")
    assert stderr.count("\n") == 1 and stderr.endswith("\n")
    assert "Traceback" not in stderr


def test_success_prints_items_state_and_meta_and_exits_0(
    standin, creds, assert_valid_items
) -> None:
    standin.add_account("alice", 5)
    answer = run_invoke(request(ACTION, {"handle": "@alice"}, creds))
    assert answer.code == 0, answer.stderr
    assert set(answer.json) == {"items", "state", "meta"}
    items = answer.json["items"]
    assert [i["uniqueId"] for i in items] == [f"user{n}" for n in range(5, 0, -1)]
    assert_valid_items(items)
    assert answer.json["state"] is None
    meta = answer.json["meta"]
    assert (meta["requests"], meta["creditsUsed"], meta["pages"]) == (1, 10, 1)
    assert answer.stderr == ""
    assert answer.stdout.count("\n") == 1  # one JSON document, one line


def test_the_platform_sets_request_source_and_state_comes_back(standin, creds) -> None:
    standin.add_account("alice", 1)
    state = {"opaque": [1, 2]}
    answer = run_invoke(request(ACTION, {"handle": "alice"}, creds, platform="n8n", state=state))
    assert answer.code == 0
    assert answer.json["state"] == state
    assert [r.body["requestSource"] for r in standin.requests] == ["N8N"]


def test_test_mode_returns_at_most_three_items(standin, creds) -> None:
    standin.add_account("alice", 10)
    answer = run_invoke(request(ACTION, {"handle": "alice"}, creds, mode="test"))
    assert answer.code == 0
    assert len(answer.json["items"]) == 3
    assert standin.count_requests() == 1


def test_null_optional_fields_mean_not_given(standin, creds) -> None:
    standin.add_account("alice", 5)
    req = request(ACTION, {"handle": "alice"}, creds, platform=None, state=None, mode=None)
    code, response = invoke.answer(json.dumps(req))
    assert code == 0, response
    assert len(response["items"]) == 5  # live mode, not test mode's three
    assert [r.body["requestSource"] for r in standin.requests] == ["API"]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"inputs": {}}, "handle"),
        ({"inputs": {"handle": "bad handle!"}}, "handle"),
        ({"inputs": {"handle": "alice", "count": 0}}, "count"),
        ({"inputs": {"handle": "alice", "requestSource": "FOO"}}, "requestSource"),
        ({"inputs": {"handle": "alice", "since": 5}}, "since"),
        ({"inputs": {"handle": "alice"}, "operation": "get_followers"}, "operation"),
        ({"inputs": {"handle": "alice"}, "platform": "ifttt"}, "platform"),
        ({"inputs": {"handle": "alice"}, "platform": ["n8n"]}, "platform"),
        ({"inputs": {"handle": "alice"}, "mode": "dry-run"}, "mode"),
        ({"inputs": {"handle": "alice"}, "credentials": "no key"}, "apiKey"),
        ({"inputs": ["alice"]}, "inputs"),
        ({"inputs": {"handle": "alice"}, "verbose": True}, "verbose"),
        ("{not json", "request"),
        ("", "request"),
        ("[1, 2]", "request"),
    ],
    ids=[
        "no-handle",
        "bad-handle",
        "count-0",
        "request-source-FOO",
        "unknown-input",
        "unknown-operation",
        "unknown-platform",
        "platform-not-a-string",
        "unknown-mode",
        "no-api-key",
        "inputs-not-an-object",
        "unknown-request-field",
        "non-json",
        "empty-stdin",
        "not-an-object",
    ],
)
def test_bad_input_exits_2_naming_the_field_and_sends_nothing(
    standin, creds, request_: Any, field: str
) -> None:
    standin.add_account("alice", 3)
    if isinstance(request_, dict):
        request_ = {**request(ACTION, credentials=creds), **request_}
        if request_["credentials"] == "no key":
            request_["credentials"] = {"baseUrl": creds["baseUrl"]}
    answer = run_invoke(request_)
    assert answer.code == 2
    assert answer.error["field"] == field
    assert answer.error["type"] in ("input_error", "configuration_error")
    assert field in answer.error["message"]
    assert_one_line_without_traceback(answer.stderr)
    assert answer.error["message"] in answer.stderr
    assert standin.count_requests() == 0


def test_a_plain_http_base_url_exits_2_naming_base_url(standin, creds) -> None:
    answer = run_invoke(
        request(ACTION, {"handle": "alice"}, {**creds, "baseUrl": "http://api.example.com"})
    )
    assert (answer.code, answer.error["type"], answer.error["field"]) == (
        2,
        "configuration_error",
        "baseUrl",
    )


def test_a_404_exits_1_with_not_found_and_the_server_message(standin, creds) -> None:
    answer = run_invoke(request(ACTION, {"handle": "ghost"}, creds))
    assert answer.code == 1
    assert answer.error["type"] == "not_found"
    assert answer.error["status"] == 404
    assert "Following list not found for user: ghost" in answer.error["message"]
    assert_one_line_without_traceback(answer.stderr)
    assert standin.count_requests() == 1


def test_an_error_after_some_pages_returns_what_was_fetched_and_where_to_resume(
    standin, creds
) -> None:
    standin.add_account("alice", 30)
    standin.inject(OK, Fault(status=404))
    answer = run_invoke(request(ACTION, {"handle": "alice", "count": 10, "maxPages": 3}, creds))
    assert answer.code == 1
    partial = answer.error["partial"]
    assert len(partial["items"]) == 10
    assert partial["nextCursor"] == standin.requests[1].body["minTime"]
    assert (partial["pages"], partial["creditsUsed"]) == (1, 10)


def test_the_api_key_is_never_printed(standin, creds) -> None:
    standin.add_account("alice", 1)
    good = run_invoke(request(ACTION, {"handle": "alice"}, creds))
    wrong_key = "sk_wrong_0123456789abcdef"
    bad = run_invoke(request(ACTION, {"handle": "alice"}, {**creds, "apiKey": wrong_key}))
    assert bad.code == 1 and bad.error["type"] == "authentication_error"
    assert creds["apiKey"] not in good.stdout + good.stderr
    assert wrong_key not in bad.stdout + bad.stderr


# In-process, for what a subprocess cannot easily provoke.


def test_a_multi_line_server_message_is_one_line_on_stderr(standin, creds) -> None:
    standin.inject(Fault(status=400, body=json.dumps({"error": "first line\nsecond line"})))
    stdin = io.StringIO(json.dumps(request(ACTION, {"handle": "alice"}, creds)))
    stdout, stderr = io.StringIO(), io.StringIO()
    code = invoke.main(stdin, stdout, stderr)
    assert code == 1
    assert json.loads(stdout.getvalue())["error"]["type"] == "bad_request"
    assert stderr.getvalue() == (
        "tiktok-following: first line second line (400: check the handle and inputs)\n"
    )


def test_an_unexpected_exception_is_still_a_json_error(monkeypatch, creds) -> None:
    import connector.api

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"bug near {creds['apiKey']}")

    monkeypatch.setattr(connector.api, "run", broken)
    code, response = invoke.answer(json.dumps(request(ACTION, {"handle": "alice"}, creds)))
    assert code == 1
    assert response["error"]["type"] == "internal_error"
    assert "RuntimeError" in response["error"]["message"]
    assert creds["apiKey"] not in response["error"]["message"]  # redacted


def test_an_oversized_request_is_refused_unread() -> None:
    code, response = invoke.answer(b" " * (invoke.MAX_REQUEST_BYTES + 1))
    assert code == 2 and response["error"]["field"] == "request"
