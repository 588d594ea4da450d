"""Each surface says what to do in its own words (issue 21): the command line names the
variable and `--sandbox`, `invoke` the environment, `serve` the Authorization header, Python
the `credentials` argument; and no hint shows a key inside a request, against the README's
advice. The error type, status and exit code stay the table's (core/errors.py)."""

from __future__ import annotations

import json

import pytest

import connector
from connector import invoke
from connector.core.errors import ERRORS
from tests.support import ACTION, request, run_invoke, run_main

CLI_NO_KEY = ("tiktok-following: no API key: set DUMPLINGAI_API_KEY, or add --sandbox to try "
              "it against the built-in stand-in (demo accounts, no key needed)\n")


@pytest.mark.parametrize("argv", [
    ["list", "alice"],
    ["poll", "alice", "--state-db", "{tmp}/state.db"],
    ["auth", "test"],
    ["watch", "alice", "--webhook", "http://127.0.0.1:9/hook", "--once",
     "--state-db", "{tmp}/state.db"],
])
def test_the_command_line_without_a_key_names_the_variable_and_sandbox(
    standin, tmp_path, argv
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    run = run_main("--base-url", standin.url, *args, key=None)
    assert (run.code, run.stderr) == (2, CLI_NO_KEY)
    assert "credentials" not in run.stderr
    assert standin.count_requests() == 0


def test_the_command_line_without_a_key_says_what_sandbox_then_does() -> None:
    run = run_main("--sandbox", "list", "busy_demo", "--max-items", "1", key=None)
    assert run.code == 0, run.stderr
    assert len(run.stdout.splitlines()) == 1


def test_invoke_without_a_key_names_the_environment_first(standin) -> None:
    run = run_invoke(request(ACTION, {"handle": "alice"}, {"baseUrl": standin.url}))
    assert run.code == 2
    assert run.error["message"] == (
        "no API key: set DUMPLINGAI_API_KEY in invoke's environment (credentials.apiKey in "
        "the request works too, but a runner that logs the command would log the key)")
    assert (run.error["type"], run.error["field"]) == ("configuration_error", "apiKey")
    assert run.stderr == f"tiktok-following: {run.error['message']}\n"
    assert standin.count_requests() == 0


@pytest.mark.parametrize("raw", [b"{not json", b"", "\u00e9t\u00e9".encode("latin-1")])
def test_invokes_not_json_hint_shows_a_request_without_a_key(raw: bytes) -> None:
    code, response = invoke.answer(raw)
    message = response["error"]["message"]
    assert code == 2
    assert message.startswith("stdin is not a JSON request (")
    hint = message.partition("send one object like ")[2]
    example = hint[:hint.rindex("}") + 1]
    assert json.loads(example) == {"operation": "get_tiktok_user_following",
                                   "inputs": {"handle": "name"}}
    assert hint.endswith("with the API key in the environment (DUMPLINGAI_API_KEY), "
                         "not in the request")


def test_python_without_a_key_names_the_argument_and_the_variable(standin, monkeypatch) -> None:
    monkeypatch.delenv("DUMPLINGAI_API_KEY", raising=False)
    with pytest.raises(connector.ConfigurationError) as caught:
        connector.run(ACTION, {"handle": "alice"}, credentials={"baseUrl": standin.url})
    assert caught.value.message == ('no API key: pass credentials={"apiKey": ...} or set '
                                    "DUMPLINGAI_API_KEY")
    assert caught.value.to_dict()["field"] == "apiKey"


def test_the_tables_advice_names_no_one_surfaces_way_to_give_a_key() -> None:
    """Every surface sends the same `advice` for a type, so it cannot say where a key goes:
    the message does, in the surface's words."""
    for code in ("configuration_error", "authentication_error"):
        advice = ERRORS[code].advice
        assert "credentials" not in advice and "DUMPLINGAI_API_KEY" not in advice, code
