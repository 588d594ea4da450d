"""Canary secrets: an API key, URL passwords, a webhook path and a header value that must never
show up anywhere the connector writes.

Each secret is given the way a user gives it (DUMPLINGAI_API_KEY, credentials.apiKey,
`user:password@` in --base-url / DUMPLINGAI_BASE_URL / --webhook, a --header value) and run
through every error path the stand-in can produce and through bad input; stdout, stderr, -v and
-vv logs, exceptions' str and repr, the state database's bytes and the outbox payloads are
searched for it. The server echoing the key in its error text must be redacted too, and
redaction must not mangle a message when the key is short or blank.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import connector
from connector import invoke
from connector.core.config import Credentials, RetryPolicy, Timeouts
from connector.core.http import Client
from connector.standin import Fault, StandIn
from connector.storage import Outbox
from connector.watch import Webhook
from tests.receiver import Receiver
from tests.support import ACTION, TRIGGER, request, run_cli, run_invoke, run_main

KEY = "sk_CANARY_7f3a9c1e5b2d"
BASE_PASSWORD = "pwCANARYbase91d0"
HOOK_PASSWORD = "pwCANARYhook4b2e"
HOOK_PATH = "hookCANARYpatha81c"
HEADER = "hdrCANARY5c7e9d"

#: Every way a request can fail, with enough faults to outlast two retries.
ERROR_PATHS = [
    ("401", [Fault(status=401)]),
    ("403", [Fault(status=403)]),
    ("404", [Fault(status=404)]),
    ("500", [Fault(status=500)] * 3),
    ("502", [Fault(status=502)] * 3),
    ("503", [Fault(status=503)] * 3),
    ("429", [Fault(status=429)] * 3),
    ("html", [Fault(html=True)] * 3),
    ("malformed", [Fault(malformed=True)]),
    ("truncated", [Fault(truncate=True)]),
    ("reset", [Fault(reset=True)] * 3),
    # The stand-in answers nothing until the client gives up: a read timeout however slow
    # the machine (a delay would race the client's timeout).
    ("timeout", [Fault(hang=True)] * 3),
    # The server quoting the key back, in its error text and in a broken 200.
    ("echo 401", [Fault(status=401, body=json.dumps({"error": f"key {KEY} is revoked"}))]),
    ("echo 400", [Fault(status=400, body=json.dumps(
        {"error": f"bad request\nAuthorization: Bearer {KEY}\n"}))]),
    ("echo 500", [Fault(status=500, body=json.dumps({"error": "x" * 488 + KEY}))] * 3),
    ("echo 200", [Fault(status=200, body=f"<html>upstream saw Bearer {KEY}</html>")]),
    ("echo hasMore", [Fault(status=200, body=json.dumps(
        {"followingList": [], "hasMore": KEY, "minCursor": 1, "maxCursor": 2}))]),
    ("echo cursor", [Fault(status=200, body=json.dumps(
        {"followingList": [], "hasMore": True, "minCursor": KEY, "maxCursor": 2}))]),
]
FAST = {"retry": RetryPolicy.no_wait(2), "timeouts": Timeouts(connect=1, read=0.3)}


def fast(name: str) -> dict[str, Any]:
    """Retries at once; the short read timeout only on the path under test that is a timeout.
    Elsewhere a busy machine can take longer than that to answer the faulty request: the
    client would retry past the one fault injected, succeed, and the path go untested."""
    if name == "timeout":
        return FAST
    return {**FAST, "timeouts": Timeouts(connect=1, read=30)}


def assert_clean(*texts: str) -> None:
    """No canary in any text, not even a piece of one cut short ("CANARY" is in each)."""
    for text in texts:
        assert "CANARY" not in text, f"a canary leaked: ...{_around(text)}..."


def _around(text: str) -> str:
    at = text.index("CANARY")
    return text[max(0, at - 80): at + 60]


def files_under(folder: Path) -> list[str]:
    """Every file's bytes (the database, its WAL, the lock files), as text to search."""
    return [p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file()]


def outbox_payloads(path: Path) -> list[str]:
    with Outbox(path) as box:
        return [json.dumps(e.payload) for e in box.list(include_pending=True)]


@pytest.fixture
def upstream() -> Iterator[StandIn]:
    with StandIn(api_keys=(KEY,)) as server:
        server.add_account("alice", 30)
        yield server


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def secret_hook(receiver: Receiver) -> str:
    """The receiver's URL with a password and a secret path, as hook URLs have."""
    return receiver.url.replace("http://", f"http://hook:{HOOK_PASSWORD}@").replace(
        "/hook", f"/{HOOK_PATH}")


@contextlib.contextmanager
def instant_clients(monkeypatch, name: str = "timeout") -> Iterator[None]:
    """The CLI's clients without waiting: retries at once, a short read timeout where the path
    under test is a timeout (see `fast`). Only around the requests meant to fail: on a busy
    machine a good answer can take longer than that."""
    chosen = fast(name)
    with monkeypatch.context() as patch:
        patch.setattr("connector.core.http.RetryPolicy", lambda: chosen["retry"])
        patch.setattr("connector.core.http.Timeouts", lambda: chosen["timeouts"])
        yield


@pytest.fixture
def instant_client(monkeypatch) -> Iterator[None]:
    with instant_clients(monkeypatch):
        yield


# --------------------------------------------------------------------------- Python and invoke


@pytest.mark.parametrize(("name", "faults"), ERROR_PATHS, ids=[n for n, _ in ERROR_PATHS])
def test_credentials_api_key_never_leaks_through_an_error_path(
    upstream, name, faults, caplog, tmp_path
):
    caplog.set_level(logging.DEBUG)
    creds = {"apiKey": KEY, "baseUrl": upstream.url}
    store = connector.open_store(tmp_path / "s.db")
    store.poll("alice", credentials=creds).commit()
    upstream.follow_many("alice", 3)

    upstream.inject(*faults)
    with pytest.raises(connector.ConnectorError) as caught:
        connector.run(ACTION, {"handle": "alice", "maxPages": 3}, credentials=creds,
                      **fast(name))
    upstream.inject(*faults)
    code, body = invoke.answer(json.dumps(request(TRIGGER, {"handle": "alice"}, creds)),
                               **fast(name))
    upstream.inject(*faults)
    with pytest.raises(connector.ConnectorError) as polled:
        store.poll("alice", credentials=creds, **fast(name))
    store.close()

    assert code == 1
    if name == "timeout":  # the path under test, not some other error
        assert "timed out" in caught.value.message and "timed out" in polled.value.message
        assert body["error"]["type"] == "transport_error" and "timed out" in body["error"][
            "message"]
    assert_clean(str(caught.value), repr(caught.value), json.dumps(caught.value.to_dict()),
                 str(polled.value), repr(polled.value), json.dumps(body), caplog.text,
                 *files_under(tmp_path))


def test_credentials_api_key_never_leaks_on_bad_input_or_an_unreachable_host(caplog,
                                                                           instant_client):
    caplog.set_level(logging.DEBUG)
    dead = f"http://127.0.0.1:{closed_port()}"
    cases = [
        ({"handle": "bad handle!"}, {"apiKey": KEY, "baseUrl": dead}),
        ({"handle": "ok"}, {"apiKey": KEY, "baseUrl": "http://example.com"}),
        ({"handle": "ok"}, {"apiKey": KEY, "baseUrl": f"http://u:{BASE_PASSWORD}@[::1"}),
        ({"handle": "ok"}, {"apiKey": KEY, "baseUrl": f"http://u:{BASE_PASSWORD}@example.com"}),
        ({"handle": "ok"}, {"apiKey": KEY, "baseUrl": dead.replace("//", f"//u:{BASE_PASSWORD}@")}),
        ({"handle": "ok"}, {"apiKey": KEY, "baseUrl": dead}),
    ]
    texts = []
    for inputs, creds in cases:
        with pytest.raises(connector.ConnectorError) as caught:
            connector.run(ACTION, inputs, credentials=creds, retry=RetryPolicy.no_wait(1))
        texts += [str(caught.value), repr(caught.value), json.dumps(caught.value.to_dict())]
        code, body = invoke.answer(json.dumps(request(ACTION, inputs, creds)),
                                   retry=RetryPolicy.no_wait(1))
        assert code in (1, 2) and "error" in body
        texts.append(json.dumps(body))
    run = run_main("-vv", "invoke", stdin=json.dumps(request(ACTION, {"handle": "ok"},
                                                             {"apiKey": KEY, "baseUrl": dead})))
    assert run.code == 1 and "Traceback" not in run.stderr
    assert_clean(*texts, run.output, caplog.text)


def test_the_objects_that_hold_secrets_never_show_them():
    credentials = Credentials(api_key=KEY, base_url=f"https://u:{BASE_PASSWORD}@api.example")
    hook = Webhook(f"https://h:{HOOK_PASSWORD}@hooks.example/{HOOK_PATH}?t={HOOK_PATH}",
                   headers={"X-Token": HEADER})
    with Client(credentials) as client, hook:
        assert_clean(repr(credentials), str(credentials), repr(client), repr(hook),
                     hook.redacted)
        assert "X-Token" in repr(hook) and "hooks.example" in hook.redacted


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize(("name", "faults"), ERROR_PATHS, ids=[n for n, _ in ERROR_PATHS])
def test_the_environment_key_and_webhook_secrets_never_leak_from_the_cli(
    upstream, hook, name, faults, tmp_path, monkeypatch
):
    """DUMPLINGAI_API_KEY, a --webhook with a password and a secret path, and a --header
    value, through list, poll and watch --once, at default verbosity and -vv."""
    db = tmp_path / "state.db"
    env = {"DUMPLINGAI_API_KEY": KEY}
    watch = ["watch", "--once", "alice", "--webhook", secret_hook(hook), "--header",
             f"X-Token: {HEADER}", "--state-db", str(db)]
    base = ["--base-url", upstream.url]
    # A baseline and one delivered follow, so the database and the outbox have content.
    assert run_main(*base, *watch, env=env).code == 0
    upstream.follow_many("alice", 2)
    hook.answer(500)  # the first delivery fails and stays in the outbox
    runs = [run_main(*base, *watch, env=env)]
    assert hook.requests and hook.requests[-1].headers["x-token"] == HEADER
    upstream.follow_many("alice", 1)

    for verbosity in ([], ["-vv"]):
        for command in (["list", "alice", "--max-pages", "3"], ["poll", "alice", "--state-db",
                                                               str(db)], watch):
            upstream.inject(*faults)
            with instant_clients(monkeypatch, name):
                run = run_main(*verbosity, *base, *command, env=env)
            assert run.code == 1 or (command is watch and run.code == 0), run.output
            assert "Traceback" not in run.output
            if name == "timeout":  # watch's summary names the error's type
                assert "timed out" in run.stderr or "(transport_error)" in run.stderr, run.output
            runs.append(run)
            upstream.clear_faults()

    assert_clean(*(r.output for r in runs), *files_under(tmp_path), *outbox_payloads(db))


@pytest.mark.parametrize("where", ["--base-url", "DUMPLINGAI_BASE_URL"])
def test_a_base_url_password_never_leaks_from_the_cli(upstream, where, tmp_path,
                                                       instant_client):
    """A base URL with user:password@ (requests then sends it as Basic auth, which the stand-in
    refuses: a 401), a bad one, and one where nothing listens."""
    urls = [upstream.url.replace("//", f"//user:{BASE_PASSWORD}@"),
            f"http://user:{BASE_PASSWORD}@[::1",
            f"http://user:{BASE_PASSWORD}@127.0.0.1:{closed_port()}",
            f"http://user:{BASE_PASSWORD}@127.0.0.1:99999"]
    runs = []
    for url in urls:
        for verbosity in ([], ["-v"], ["-vv"]):
            args = ["--base-url", url] if where == "--base-url" else []
            env = {"DUMPLINGAI_API_KEY": KEY} | ({where: url} if where != "--base-url" else {})
            for command in (["list", "alice"], ["poll", "alice", "--state-db",
                                                str(tmp_path / "s.db")]):
                run = run_main(*verbosity, *args, *command, env=env)
                assert run.code in (1, 2) and "Traceback" not in run.output
                runs.append(run)
    assert_clean(*(r.output for r in runs), *files_under(tmp_path))


def test_secrets_in_bad_input_never_leak_from_the_cli(upstream, hook, tmp_path):
    hooked = secret_hook(hook)
    userinfo = f"http://hook:{HOOK_PASSWORD}@"
    db = ["--state-db", str(tmp_path / "s.db")]
    bad = [
        # A --header that is not 'Name: value', or whose value HTTP cannot carry.
        ["watch", "--once", "alice", "--webhook", hooked, "--header", f"X-Token {HEADER}", *db],
        ["watch", "--once", "alice", "--webhook", hooked, "--header", f"X-T: {HEADER}\u20ac",
         *db],
        ["watch", "--once", "alice", "--webhook", hooked, "--header", f"Bad Name: {HEADER}",
         *db],
        # A webhook URL that is wrong in some way, with secrets in it.
        ["watch", "--once", "alice", "--webhook", f"{userinfo}[::1/{HOOK_PATH}", *db],
        ["watch", "--once", "alice", "--webhook", f"{userinfo}127.0.0.1:99999/{HOOK_PATH}", *db],
        ["watch", "--once", "alice", "--webhook", f"{userinfo}hooks.example/{HOOK_PATH}", *db],
        ["outbox", "retry", "--all", "--webhook", "ftp" + hooked[4:], *db],
        # A key the header cannot carry.
        ["list", "bad handle!"],
    ]
    runs = []
    for argv in bad:
        for verbosity in ([], ["-vv"]):
            run = run_main(*verbosity, "--base-url", upstream.url, *argv,
                           env={"DUMPLINGAI_API_KEY": KEY})
            assert run.code == 2 and "Traceback" not in run.output, run.output
            runs.append(run)
    key_with_break = run_main("--base-url", upstream.url, "list", "alice",
                              env={"DUMPLINGAI_API_KEY": f"{KEY}\n{KEY}"})
    assert key_with_break.code == 2
    assert_clean(*(r.output for r in [*runs, key_with_break]), *files_under(tmp_path))
    assert upstream.count_requests() == 0 and hook.requests == []


@pytest.mark.slow
def test_a_real_process_never_prints_the_canaries(upstream, hook, tmp_path):
    """The same promise without any test plumbing: child processes at -vv, the key in the
    environment, the server echoing it, a secret webhook and header."""
    db = ["--state-db", str(tmp_path / "s.db")]
    base = ["-vv", "--base-url", upstream.url]
    watch = [*base, "watch", "--once", "alice", "--webhook", secret_hook(hook), "--header",
             f"X-Token: {HEADER}", *db]
    runs = [run_cli(*watch, key=KEY)]
    upstream.follow_many("alice", 2)
    runs.append(run_cli(*watch, key=KEY))
    assert len(hook.requests) == 2 and hook.requests[0].path == f"/{HOOK_PATH}"
    upstream.inject(Fault(status=400, body=json.dumps({"error": f"bad key\n{KEY}"})))
    runs.append(run_cli(*base, "list", "alice", key=KEY))
    upstream.inject(Fault(status=401, body=json.dumps({"error": f"key {KEY} revoked"})))
    runs.append(run_invoke(request(ACTION, {"handle": "alice"},
                                   {"apiKey": KEY, "baseUrl": upstream.url})))
    assert [r.code for r in runs] == [0, 0, 1, 1]
    assert runs[2].stderr.endswith("tiktok-following: bad key *** (400: check the handle and "
                                   "inputs)\n")
    assert_clean(*(r.output for r in runs), *files_under(tmp_path))


# --------------------------------------------------------------------------- short keys


@pytest.mark.parametrize("key", ["a", "e", "ok", "API"])
def test_a_short_key_is_not_redacted_out_of_every_message(key):
    """A key of a few characters is refused by the upstream anyway; replacing every 'a' or
    'API' in a message with *** would make the message unreadable."""
    with StandIn(api_keys=("the-real-key",)) as server:
        server.add_account("alice", 1)
        creds = {"apiKey": key, "baseUrl": server.url}
        run = run_invoke(request(ACTION, {"handle": "alice"}, creds))
        cli = run_main("--base-url", server.url, "list", "alice", env={"DUMPLINGAI_API_KEY": key})
    message = "API key is invalid or missing. (401: check the API key, and the base URL it " \
              "was sent to)"
    assert (run.code, run.error["message"]) == (1, message)
    assert (cli.code, cli.stderr) == (1, f"tiktok-following: {message}\n")


@pytest.mark.parametrize("blank", ["", " ", "\t \t"])
def test_a_blank_key_is_refused_by_name_and_no_message_is_mangled(upstream, blank):
    """Given but blank is an error naming the field (an empty variable is "not set"), and
    redaction leaves the message whole."""
    run = run_invoke(request(ACTION, {"handle": "alice"}, {"apiKey": blank,
                                                          "baseUrl": upstream.url}))
    cli = run_main("--base-url", upstream.url, "list", "alice",
                   env={"DUMPLINGAI_API_KEY": blank})
    assert (run.code, run.error["field"]) == (2, "apiKey")
    assert run.error["message"].startswith("credentials.apiKey is blank")
    expected = ("DUMPLINGAI_API_KEY holds only whitespace; set it to the API key, or unset it"
                if blank else "no API key: set DUMPLINGAI_API_KEY, or add --sandbox to try it "
                "against the built-in stand-in (demo accounts, no key needed)")
    assert (cli.code, cli.stderr) == (2, f"tiktok-following: {expected}\n")
    assert "***" not in run.output + cli.output
    assert upstream.count_requests() == 0


def closed_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
