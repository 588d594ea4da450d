"""Whether a request carries an API key: one rule (`given_api_key`) on every surface, so the
service's own key never travels to a host a caller names (issue 18, defects 1 and 11).

A key given but blank (empty, or only whitespace, Unicode spaces included) is an input error
that names where it was given: 400 on `serve`, exit 2 on `invoke` and the command line,
InputError in Python. It is never "no key", which would let the service's own
DUMPLINGAI_API_KEY stand in for it. The hostile caller's host here is a receiver that records
every request it gets: what it received is the proof, not only the status.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

import connector
from connector.core import manifests
from connector.core.config import CREDENTIAL_FIELDS, env_api_key, given_api_key
from connector.core.errors import ConfigurationError, InputError
from connector.standin import StandIn
from tests.receiver import Receiver
from tests.support import ACTION, TRIGGER, request, run_cli, run_invoke, run_main

#: The service's own key: it must reach no host but the service's own base URL.
SERVICE_KEY = "sk_SERVICE_3b9e71c0d4a2f6"
#: Blank keys as a JSON body can carry them.
BLANKS = ["", " ", "\t\n", "\u3000", "\u00a0", "\u2003", "\u2028", " \u3000\t\r\n "]
BLANK_IDS = ["empty", "space", "tab-newline", "ideographic", "nbsp", "em-space",
             "line-separator", "mixed"]
#: Blank keys as an Authorization header can carry them (no line breaks; raw bytes, as a
#: client that sends UTF-8 puts them on the wire).
BLANK_HEADERS = [b"", b"Bearer", b"Bearer ", b"Bearer \t", b"Bearer \xa0",
                 "Bearer \u3000".encode(), "Bearer \u2003 ".encode()]


@pytest.fixture
def hostile() -> Iterator[Receiver]:
    """The caller's own host: records every request (and its Authorization header)."""
    with Receiver() as receiver:
        yield receiver


def hostile_base(receiver: Receiver) -> str:
    return receiver.url.removesuffix("/hook")


def received_keys(receiver: Receiver) -> list[str]:
    return [r.headers.get("authorization", "") for r in receiver.requests]


# --------------------------------------------------------------------------- serve


@pytest.fixture
def service(monkeypatch, standin: StandIn) -> Iterator[str]:
    """`serve` on loopback with a key and a base URL of its own (the stand-in)."""
    pytest.importorskip("waitress")
    from connector.core.config import RetryPolicy
    from connector.serve.server import create_server

    monkeypatch.delenv("TIKTOK_FOLLOWING_SERVE_TOKEN", raising=False)
    monkeypatch.setenv("DUMPLINGAI_API_KEY", SERVICE_KEY)
    monkeypatch.setenv("DUMPLINGAI_BASE_URL", standin.url)
    server = create_server(host="127.0.0.1", port=0, retry=RetryPolicy.no_wait(total=1),
                           poll_interval=0.05)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.stop()
        thread.join(5)


def post(url: str, path: str, body: Any, authorization: bytes | None = None
         ) -> tuple[int, dict[str, Any]]:
    """POST with http.client, so a header can carry any bytes a client could send."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        data = json.dumps(body).encode()
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(data)))
        if authorization is not None:
            conn.putheader("Authorization", authorization)
        conn.endheaders(data)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def run_body(base: str, **credentials: Any) -> dict[str, Any]:
    return request(TRIGGER, {"handle": "alice"}, {"baseUrl": base, **credentials})


def auth_body(base: str, **credentials: Any) -> dict[str, Any]:
    return {"credentials": {"baseUrl": base, **credentials}}


ROUTES = [("/v1/run", run_body), ("/v1/auth/test", auth_body)]


@pytest.mark.parametrize(("path", "body"), ROUTES, ids=["run", "auth-test"])
@pytest.mark.parametrize("blank", BLANKS, ids=BLANK_IDS)
def test_a_blank_body_key_never_sends_the_services_key_to_the_callers_host(
    service, standin, hostile, path, body, blank
) -> None:
    status, answer = post(service, path, body(hostile_base(hostile), apiKey=blank))
    assert hostile.requests == []
    assert (status, answer["error"]["type"], answer["error"]["field"]) == (
        400, "input_error", "apiKey")
    assert "credentials.apiKey is blank" in answer["error"]["message"]
    assert standin.count_requests() == 0


@pytest.mark.parametrize(("path", "body"), ROUTES, ids=["run", "auth-test"])
@pytest.mark.parametrize("header", BLANK_HEADERS, ids=repr)
def test_a_blank_authorization_header_never_sends_the_services_key_to_the_callers_host(
    service, standin, hostile, path, body, header
) -> None:
    status, answer = post(service, path, body(hostile_base(hostile)), authorization=header)
    assert hostile.requests == []
    assert (status, answer["error"]["type"], answer["error"]["field"]) == (
        400, "input_error", "Authorization")
    assert standin.count_requests() == 0


@pytest.mark.parametrize(("path", "body"), ROUTES, ids=["run", "auth-test"])
def test_a_blank_body_key_is_refused_even_beside_a_bearer_key(
    service, hostile, path, body
) -> None:
    status, answer = post(service, path, body(hostile_base(hostile), apiKey=" "),
                          authorization=b"Bearer caller-own-key-1234")
    assert (status, answer["error"]["field"]) == (400, "apiKey")
    assert hostile.requests == []


@pytest.mark.parametrize(("path", "body"), ROUTES, ids=["run", "auth-test"])
def test_the_hostile_host_sees_only_the_callers_own_key(service, hostile, path, body) -> None:
    """The other side of the rule, and proof that the receiver sees what reaches it: a caller
    with a key of its own may send it where it likes, and only that key goes there."""
    post(service, path, body(hostile_base(hostile)), authorization=b"Bearer caller-own-key-1234")
    post(service, path, body(hostile_base(hostile), apiKey="caller-body-key-5678"))
    assert received_keys(hostile) == ["Bearer caller-own-key-1234", "Bearer caller-body-key-5678"]


@pytest.mark.parametrize(("path", "body"), ROUTES, ids=["run", "auth-test"])
def test_a_request_without_a_key_still_may_not_pick_the_host(service, hostile, path,
                                                             body) -> None:
    status, answer = post(service, path, body(hostile_base(hostile)))
    assert (status, answer["error"]["field"]) == (400, "baseUrl")
    assert hostile.requests == []


@pytest.mark.parametrize(("path", "body"), ROUTES, ids=["run", "auth-test"])
def test_serve_refuses_an_unknown_credentials_field_by_name(service, standin, hostile, path,
                                                            body) -> None:
    creds = body(standin.url)
    creds["credentials"]["baseURL"] = hostile_base(hostile)
    status, answer = post(service, path, creds, authorization=b"Bearer caller-own-key-1234")
    assert (status, answer["error"]["field"]) == (400, "baseURL")
    assert "the fields are: apiKey, baseUrl" in answer["error"]["message"]
    assert hostile.requests == [] and standin.count_requests() == 0


def test_serve_refuses_to_start_with_a_blank_key_of_its_own() -> None:
    done = run_cli("serve", "--port", "0", key=" \t", timeout=30)
    assert done.code == 2
    assert done.stderr == ("tiktok-following: DUMPLINGAI_API_KEY holds only whitespace; set "
                           "it to the API key, or unset it\n")


# --------------------------------------------------------------------------- invoke, Python


@pytest.mark.parametrize("blank", BLANKS, ids=BLANK_IDS)
def test_invoke_refuses_a_blank_key_and_sends_the_environments_nowhere(hostile, blank) -> None:
    req = request(ACTION, {"handle": "alice"},
                  {"apiKey": blank, "baseUrl": hostile_base(hostile)})
    run = run_invoke(req, key=SERVICE_KEY)
    assert (run.code, run.error["type"], run.error["field"]) == (2, "input_error", "apiKey")
    assert run.stderr.count("\n") == 1 and "credentials.apiKey is blank" in run.stderr
    assert hostile.requests == []


@pytest.mark.parametrize("blank", BLANKS, ids=BLANK_IDS)
def test_connector_run_refuses_a_blank_key(hostile, monkeypatch, blank) -> None:
    monkeypatch.setenv("DUMPLINGAI_API_KEY", SERVICE_KEY)
    for call in (
        lambda creds: connector.run(ACTION, {"handle": "alice"}, credentials=creds),
        lambda creds: connector.check_credentials(creds),
    ):
        with pytest.raises(InputError) as caught:
            call({"apiKey": blank, "baseUrl": hostile_base(hostile)})
        assert caught.value.field == "apiKey" and caught.value.sent_nothing
    assert hostile.requests == []


def test_an_unknown_credentials_field_is_refused_by_name_everywhere(standin, hostile) -> None:
    """A mistyped `baseURL` must not send the call to the default host."""
    creds = {"apiKey": "caller-own-key-1234", "baseURL": hostile_base(hostile)}
    run = run_invoke(request(ACTION, {"handle": "alice"}, creds),
                     env={"DUMPLINGAI_BASE_URL": standin.url})
    assert (run.code, run.error["field"]) == (2, "baseURL")
    assert run.error["message"] == ("unknown credentials field 'baseURL'; the fields are: "
                                    "apiKey, baseUrl")
    with pytest.raises(InputError) as caught:
        connector.run(ACTION, {"handle": "alice"}, credentials=creds)
    assert caught.value.field == "baseURL"
    assert hostile.requests == [] and standin.count_requests() == 0


def test_the_credentials_fields_are_the_connector_manifests() -> None:
    auth = manifests.load("connector")["auth"]
    assert tuple(auth["properties"]) == CREDENTIAL_FIELDS
    assert auth["additionalProperties"] is False


@pytest.mark.parametrize(("given", "expected"), [(None, None), ("  sk_abc  ", "sk_abc")])
def test_given_api_key_returns_the_key_or_none_when_not_given(given, expected) -> None:
    assert given_api_key(given) == expected


@pytest.mark.parametrize("blank", BLANKS, ids=BLANK_IDS)
def test_given_api_key_refuses_a_blank_key_naming_the_field(blank) -> None:
    with pytest.raises(InputError) as caught:
        given_api_key(blank, field="Authorization")
    assert caught.value.field == "Authorization"
    assert caught.value.message.startswith("Authorization is blank")


# --------------------------------------------------------------------------- the environment


def test_an_empty_environment_key_is_not_set_and_a_whitespace_one_is_an_error() -> None:
    assert env_api_key({"DUMPLINGAI_API_KEY": ""}) is None
    assert env_api_key({}) is None
    assert env_api_key({"DUMPLINGAI_API_KEY": " sk_abc\n"}) == "sk_abc"
    for blank in BLANKS[1:]:
        with pytest.raises(ConfigurationError) as caught:
            env_api_key({"DUMPLINGAI_API_KEY": blank})
        assert caught.value.details["field"] == "DUMPLINGAI_API_KEY"


@pytest.mark.parametrize("blank", BLANKS[1:], ids=BLANK_IDS[1:])
def test_the_cli_names_a_whitespace_environment_key(standin, blank) -> None:
    run = run_main("--base-url", standin.url, "list", "alice", key=blank)
    assert (run.code, run.stderr) == (2, "tiktok-following: DUMPLINGAI_API_KEY holds only "
                                         "whitespace; set it to the API key, or unset it\n")
    assert standin.count_requests() == 0


def test_the_cli_takes_an_empty_environment_key_for_no_key(standin) -> None:
    run = run_main("--base-url", standin.url, "list", "alice", key="")
    assert (run.code, run.stderr) == (
        2, "tiktok-following: no API key: set DUMPLINGAI_API_KEY, or add --sandbox to try it "
           "against the built-in stand-in (demo accounts, no key needed)\n")
    assert standin.count_requests() == 0
