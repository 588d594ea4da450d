"""`serve` (CONTRACT 6): the invoke protocol over HTTP, on waitress, on loopback. The same
answers as `invoke`, HTTP statuses that fit, a shared token beyond loopback, bounded requests,
and the key in no response or log line."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from connector import invoke
from connector.core import manifests
from connector.core.config import RetryPolicy
from connector.core.errors import ConfigurationError
from connector.serve.app import make_app
from connector.serve.limits import UpstreamSlots
from connector.serve.server import create_server
from connector.standin import Fault, StandIn
from tests.slowpeer import TricklingServer, elapsed, trickling_clients
from tests.support import ACTION, API_KEY, ROOT, TRIGGER

pytest.importorskip("waitress")

TOKEN = "shared-token-0123456789abcdef"
CANARY = "canary-key-9f8e7d6c5b4a"


class Service:
    """A running `serve` on loopback and a session to call it."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("retry", RetryPolicy.no_wait(total=2))
        options.setdefault("poll_interval", 0.05)
        self.server = create_server(host="127.0.0.1", port=0, **options)
        self.url = self.server.url
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.http = requests.Session()
        self.http.trust_env = False

    def call(self, method: str, path: str, body: Any = None, *, key: str | None = None,
             token: str | None = None, raw: bytes | None = None) -> requests.Response:
        headers = {}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if token is not None:
            headers["X-Connector-Token"] = token
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        return self.http.request(method, self.url + path, data=data, headers=headers,
                                 timeout=30)

    def run(self, request: dict[str, Any], **kw: Any) -> requests.Response:
        return self.call("POST", "/v1/run", request, **kw)


@pytest.fixture
def service(monkeypatch) -> Iterator[Service]:
    with running(monkeypatch) as svc:
        yield svc


@contextmanager
def running(monkeypatch, **options: Any) -> Iterator[Service]:
    for name in ("DUMPLINGAI_API_KEY", "DUMPLINGAI_BASE_URL", "TIKTOK_FOLLOWING_SERVE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    svc = Service(**options)
    svc.thread.start()
    try:
        yield svc
    finally:
        svc.http.close()
        svc.server.stop()
        svc.thread.join(5)
        assert not svc.thread.is_alive()


def trigger(standin: StandIn, handle: str = "alice", **extra: Any) -> dict[str, Any]:
    return {"operation": TRIGGER, "inputs": {"handle": handle},
            "credentials": {"baseUrl": standin.url}, "platform": "n8n", **extra}


# ---------------------------------------------------------------- routes


def test_healthz_answers_without_a_token(monkeypatch) -> None:
    with running(monkeypatch, token=TOKEN) as svc:
        answer = svc.call("GET", "/healthz")
        assert answer.status_code == 200
        assert answer.json() == {"ok": True, "version": manifests.load("connector")["version"]}


def test_manifests_are_the_packaged_manifests(service: Service) -> None:
    assert service.call("GET", "/v1/manifests").json() == manifests.load_all()
    one = service.call("GET", f"/v1/manifests/{TRIGGER}")
    assert one.status_code == 200 and one.json() == manifests.load(TRIGGER)
    missing = service.call("GET", "/v1/manifests/nope")
    # A manifest the service does not have is a wrong path, not the endpoint's private list.
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "unknown_route"
    assert "private" not in missing.text and "'nope'" in missing.json()["error"]["message"]


def test_unknown_routes_and_methods_are_named_in_json(service: Service) -> None:
    wrong_method = service.call("GET", "/v1/run")
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
    assert wrong_method.json()["error"]["type"] == "method_not_allowed"
    other = service.call("POST", "/v2/run", {})
    assert (other.status_code, other.json()["error"]["type"]) == (404, "unknown_route")
    assert "POST /v1/run" in other.json()["error"]["message"]


def test_an_unknown_route_is_not_the_endpoints_private_list(service: Service) -> None:
    # A client whose service URL has a path in it (http://host:8790/api) reaches no route;
    # it must be able to tell that from the endpoint's 404 for a private list (not_found).
    answer = service.call("POST", "/api/v1/run", {})
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "unknown_route"
    # The routes the message lists are the service's own; the advice (the error table's,
    # which the n8n node shows) must list the same.
    error = answer.json()["error"]
    routes = error["message"].split("the routes are ")[1]
    assert len(routes.split(", ")) == 4 and error["advice"].endswith(f"the routes are {routes}")


# ---------------------------------------------------------------- the same answers as invoke


def test_run_answers_exactly_what_invoke_answers(service: Service, standin: StandIn) -> None:
    standin.add_account("alice", 7)
    request = {"operation": ACTION, "inputs": {"handle": "@alice", "count": 5},
               "credentials": {"apiKey": API_KEY, "baseUrl": standin.url}}
    over_http = service.run(request)
    code, direct = invoke.answer(json.dumps(request))
    assert over_http.status_code == 200 and code == 0
    # The same answer, but for the rate limit left, which the second call used up by one.
    direct["meta"].pop("rateLimitRemaining")
    served = over_http.json()
    served["meta"].pop("rateLimitRemaining")
    assert served == direct
    assert [i["uniqueId"] for i in direct["items"]] == [
        i["uniqueId"] for i in standin.following("alice")[:5]]


def test_the_trigger_runs_over_http_with_the_state_sent_back(
    service: Service, standin: StandIn
) -> None:
    standin.add_account("alice", 40)
    first = service.run(trigger(standin), key=API_KEY).json()
    assert first["items"] == [] and first["meta"]["baseline"] is True
    followed = standin.follow_many("alice", 3)
    second = service.run(trigger(standin, state=first["state"]), key=API_KEY).json()
    assert [i["id"] for i in second["items"]] == [str(u["id"]) for u in followed]
    third = service.run(trigger(standin, state=second["state"]), key=API_KEY).json()
    assert third["items"] == [] and third["meta"]["creditsUsed"] == 10


def test_test_mode_over_http_returns_recent_follows_and_the_state_unchanged(
    service: Service, standin: StandIn
) -> None:
    standin.add_account("alice", 10)
    state = service.run(trigger(standin), key=API_KEY).json()["state"]
    sample = service.run(trigger(standin, state=state, mode="test"), key=API_KEY).json()
    assert len(sample["items"]) == 3 and sample["state"] == state


def test_the_bearer_key_takes_the_place_of_a_key_in_the_body(
    service: Service, standin: StandIn
) -> None:
    standin.add_account("alice", 2)
    request = trigger(standin)
    request["credentials"]["apiKey"] = "some-other-key"
    assert service.run(request, key=API_KEY).status_code == 200


def test_without_a_bearer_key_the_service_uses_its_own(
    service: Service, standin: StandIn, monkeypatch
) -> None:
    standin.add_account("alice", 2)
    monkeypatch.setenv("DUMPLINGAI_API_KEY", API_KEY)
    monkeypatch.setenv("DUMPLINGAI_BASE_URL", standin.url)
    request = {"operation": ACTION, "inputs": {"handle": "alice"}}
    assert service.run(request).status_code == 200


def test_a_request_cannot_send_the_services_own_key_to_a_host_it_picks(
    service: Service, standin: StandIn, monkeypatch
) -> None:
    standin.add_account("alice", 2)
    monkeypatch.setenv("DUMPLINGAI_API_KEY", API_KEY)
    answer = service.run(trigger(standin))  # no Bearer key, a baseUrl of its own
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "configuration_error"
    assert answer.json()["error"]["field"] == "baseUrl"
    assert standin.count_requests() == 0


# ---------------------------------------------------------------- statuses


@pytest.mark.parametrize(
    ("fault", "status", "kind"),
    [
        (Fault(status=401), 401, "authentication_error"),
        (Fault(status=403), 402, "insufficient_credits"),
        (Fault(status=400), 400, "bad_request"),
        (Fault(status=429), 429, "rate_limited"),
        (Fault(status=500), 502, "server_error"),
        (Fault(status=502), 502, "upstream_error"),
        (Fault(malformed=True), 502, "bad_response"),
    ],
)
def test_endpoint_errors_keep_their_meaning_in_the_http_status(
    service: Service, standin: StandIn, fault: Fault, status: int, kind: str
) -> None:
    standin.add_account("alice", 2)
    standin.inject(*[fault] * 3)
    answer = service.run(trigger(standin), key=API_KEY)
    assert (answer.status_code, answer.json()["error"]["type"]) == (status, kind)


def test_a_private_list_is_404_and_bad_input_is_400_naming_the_field(
    service: Service, standin: StandIn
) -> None:
    standin.add_account("secret", 2, private=True)
    private = service.run(trigger(standin, "secret"), key=API_KEY)
    assert private.status_code == 404 and private.json()["error"]["status"] == 404
    assert private.json()["error"]["type"] == "not_found"
    bad = service.run(trigger(standin, "stool presidente"), key=API_KEY)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "handle"
    assert bad.json()["error"]["type"] == "input_error"
    assert "'name', '@name'" in bad.json()["error"]["message"]
    assert standin.count_requests() == 1  # the bad handle sent nothing


def test_no_key_anywhere_is_401_before_anything_is_sent(
    service: Service, standin: StandIn
) -> None:
    answer = service.run(trigger(standin))
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error == {"type": "configuration_error", "field": "apiKey",
                     "message": "no API key: send Authorization: Bearer <DumplingAI API key>, "
                                "or start the service with DUMPLINGAI_API_KEY set to use its "
                                "own",
                     "advice": error["advice"]}
    # The connection test says it in the same words (the n8n credential's Test button).
    test = service.call("POST", "/v1/auth/test", {"credentials": {"baseUrl": standin.url}})
    assert (test.status_code, test.json()["error"]["message"]) == (401, error["message"])
    assert standin.count_requests() == 0


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Token xyz"])
def test_an_authorization_header_that_is_not_bearer_is_refused_by_name(
    service: Service, header: str
) -> None:
    answer = service.http.post(service.url + "/v1/run", data="{}",
                               headers={"Authorization": header}, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "Authorization"
    assert answer.json()["error"]["type"] == "input_error"


def test_a_body_that_is_not_json_is_400_naming_the_body(service: Service) -> None:
    answer = service.call("POST", "/v1/run", raw=b"{not json", key=API_KEY)
    assert (answer.status_code, answer.json()["error"]["type"]) == (400, "input_error")
    message = answer.json()["error"]["message"]
    assert message.startswith("the request body is not a JSON")
    # The example carries no key: it goes in the header, as the README advises.
    assert message.endswith('send one object like {"operation": "get_tiktok_user_following", '
                            '"inputs": {"handle": "name"}}, with the API key in an '
                            "Authorization: Bearer <key> header, not in the body")


def test_a_body_over_the_limit_is_refused_unread_with_413(monkeypatch) -> None:
    with running(monkeypatch, max_body=1000) as svc:
        # waitress refuses it before the app sees it, in its own words (the next test has
        # the app's JSON answer)
        assert svc.call("POST", "/v1/run", raw=b" " * 5000, key=API_KEY).status_code == 413
        under = svc.call("POST", "/v1/run", raw=b" " * 900, key=API_KEY)
        assert (under.status_code, under.json()["error"]["type"]) == (400, "input_error")


def test_the_app_itself_refuses_a_body_over_the_limit_in_json() -> None:
    import io

    from connector.serve import make_app

    seen: list[str] = []
    app = make_app(max_body=10)
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/run", "CONTENT_LENGTH": "11",
               "wsgi.input": io.BytesIO(b"x" * 11)}
    body = json.loads(b"".join(app(environ, lambda status, headers: seen.append(status))))
    assert seen == ["413 Content Too Large"] and body["error"]["type"] == "too_large"


# ---------------------------------------------------------------- token, bounds, secrets


def test_with_a_token_every_v1_route_wants_it(monkeypatch, standin: StandIn) -> None:
    standin.add_account("alice", 2)
    with running(monkeypatch, token=TOKEN) as svc:
        for token in (None, "wrong-token-0123456789"):
            answer = svc.call("GET", "/v1/manifests", token=token)
            assert answer.status_code == 401
            assert answer.json()["error"]["type"] == "unauthorized"
            assert answer.json()["error"]["field"] == "X-Connector-Token"
            assert TOKEN not in answer.text
        assert svc.call("GET", "/v1/manifests", token=TOKEN).status_code == 200
        assert svc.run(trigger(standin), key=API_KEY, token=TOKEN).status_code == 200


def test_listening_beyond_loopback_needs_a_long_token(monkeypatch) -> None:
    monkeypatch.delenv("TIKTOK_FOLLOWING_SERVE_TOKEN", raising=False)
    with pytest.raises(ConfigurationError) as caught:
        create_server(host="0.0.0.0", port=0)
    assert "TIKTOK_FOLLOWING_SERVE_TOKEN" in caught.value.message
    with pytest.raises(ConfigurationError) as caught:
        create_server(host="0.0.0.0", port=0, token="short")
    assert "16 characters" in caught.value.message


@pytest.mark.parametrize(("soft", "hard", "raises", "fit", "asked"), [
    (10_000, 10_000, False, 1000, None),  # room enough: the limit is left alone
    (256, 4096, False, 1000, (1072, 4096)),  # raised as far as needed
    (256, 600, False, 528, (600, 600)),  # raised to the hard limit, and still short
    (256, 4096, True, 184, (1072, 4096)),  # the raise refused: as many as fit
    (64, 64, True, 1, (64, 64)),  # not even the threads' sockets fit: one connection
])
def test_connections_fit_the_files_the_process_may_open(monkeypatch, caplog, soft, hard,
                                                        raises, fit, asked) -> None:
    """A connection limit past the open-files limit (ulimit -n), less the threads' upstream
    sockets and 64 of the process's own, raises the soft limit as far as the hard one allows,
    else serves fewer connections and says so."""
    import resource

    from connector.serve.server import _connections_that_fit

    set_to = []

    def setrlimit(which: int, limits: tuple[int, int]) -> None:
        set_to.append(limits)
        if raises:
            raise ValueError("not permitted")

    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft, hard))
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    with caplog.at_level(logging.WARNING, logger="connector.serve"):
        assert _connections_that_fit(1000, threads=4) == fit
    assert set_to == ([asked] if asked else [])
    warned = [r.getMessage() for r in caplog.records]
    assert warned == ([] if fit == 1000 else [
        f"serving at most {fit} connections, not 1000: the process may open "
        f"{asked[0] if not raises else soft} files (ulimit -n)"])


def test_no_more_runs_than_threads_reach_the_endpoint_at_once(monkeypatch) -> None:
    """Requests to the service's own upstream beyond the threads wait their turn."""
    with StandIn(api_keys=(API_KEY,), latency=0.15) as slow:
        slow.add_account("alice", 5)
        with running(monkeypatch, threads=2) as svc:
            monkeypatch.setenv("DUMPLINGAI_BASE_URL", slow.url)
            request = {"operation": ACTION, "inputs": {"handle": "alice"},
                       "credentials": {"baseUrl": slow.url}}
            def call(_: int, svc: Service = svc) -> int:
                return svc.run(request, key=API_KEY).status_code

            with ThreadPoolExecutor(6) as pool:
                codes = list(pool.map(call, range(6)))
        assert codes == [200] * 6
        assert slow.peak_in_flight == 2


def test_connections_trickling_their_requests_are_cut_off_and_healthz_still_answers(
    monkeypatch,
) -> None:
    """Nine clients that never finish their request, a byte every 0.3 s, against room for three
    connections: each is closed when its request has taken 1.5 s, and /healthz gets in."""
    with running(monkeypatch, connection_limit=5, request_timeout=1.5) as svc:
        host, port = svc.url.removeprefix("http://").split(":")
        with trickling_clients(host, int(port), 9):
            started = time.monotonic()
            answer = svc.call("GET", "/healthz")
        assert answer.status_code == 200 and answer.json()["ok"] is True
        assert elapsed(started) < 25  # a few cut-offs; without them, never


def test_a_slow_upstream_a_caller_names_cannot_starve_healthz_or_another_caller(
    monkeypatch, standin: StandIn
) -> None:
    """Six requests with the caller's own key to a host that trickles its answers (minutes
    each): one gets a slot, five are refused at once, and /healthz and a caller of the
    service's own upstream are answered meanwhile."""
    standin.add_account("alice", 2)
    with running(monkeypatch, threads=2) as svc, TricklingServer(every=0.5) as slow:
        monkeypatch.setenv("DUMPLINGAI_BASE_URL", standin.url)
        hostile = {"operation": ACTION, "inputs": {"handle": "alice"},
                   "credentials": {"baseUrl": slow.url}}

        def attack(_: int) -> int | None:
            try:
                answer = svc.http.post(svc.url + "/v1/run", json=hostile, timeout=5,
                                       headers={"Authorization": "Bearer attacker-key"})
            except requests.RequestException:
                return None  # still held by the slow host
            return answer.status_code if answer.headers.get("Retry-After") else -1

        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(attack, range(6)))
            health = svc.call("GET", "/healthz")
            other = svc.run({"operation": ACTION, "inputs": {"handle": "alice"}}, key=API_KEY)
        assert sorted(codes, key=str) == [503] * 5 + [None]
        assert slow.requests == 1
        assert health.status_code == 200
        assert other.status_code == 200 and len(other.json()["items"]) == 2


def test_upstream_slots_named_hosts_get_half_and_never_wait_own_requests_wait_in_a_room(
) -> None:
    slots = UpstreamSlots(4, waiting=1, wait_s=60)
    assert slots.acquire(own=False) and slots.acquire(own=False)
    assert not slots.acquire(own=False)  # half of the slots, every named host together
    assert slots.acquire(own=True) and slots.acquire(own=True)  # all four taken
    slots.release(own=False)
    assert slots.acquire(own=True)  # the slot a named host freed
    assert not slots.acquire(own=False)  # every slot taken: refused at once, never waits
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(slots.acquire(own=True)))
    waiter.start()
    while slots._waiters == 0:  # the waiting room's one seat taken
        time.sleep(0.001)
    assert not slots.acquire(own=True)  # no seat left: refused at once
    slots.release(own=True)
    waiter.join(10)
    assert got == [True]
    impatient = UpstreamSlots(1, waiting=1, wait_s=0.01)
    assert impatient.acquire(own=True) and not impatient.acquire(own=True)  # waited, in vain


def test_a_request_refused_for_want_of_a_slot_says_so_in_json() -> None:
    slots = UpstreamSlots(1, waiting=0, wait_s=0)
    app = make_app(slots=slots)
    assert slots.acquire(own=True)  # the only slot, taken
    seen: list[Any] = []
    body = json.dumps({"operation": ACTION, "inputs": {"handle": "alice"}}).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/run",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
               "HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
    answer = json.loads(b"".join(app(environ, lambda status, headers: seen.append(
        (status, dict(headers))))))
    assert seen[0][0].startswith("503") and seen[0][1]["Retry-After"] == "5"
    assert answer["error"]["type"] == "busy" and "try again" in answer["error"]["message"]


def test_a_request_refused_for_its_shape_is_400_even_when_every_slot_is_taken() -> None:
    # The body is parsed once, before a slot is taken: bad input is bad input, busy or not.
    slots = UpstreamSlots(1, waiting=0, wait_s=0)
    app = make_app(slots=slots)
    assert slots.acquire(own=True)  # the only slot, taken
    seen: list[str] = []
    body = b'{"operation": "get_tiktok_user_following", "input": {}}'
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/run",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
               "HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
    answer = json.loads(b"".join(app(environ, lambda status, headers: seen.append(status))))
    assert seen == ["400 Bad Request"]
    assert answer["error"]["type"] == "input_error" and answer["error"]["field"] == "input"
    assert answer["error"]["message"].startswith("unknown request field 'input'")


def test_the_key_appears_in_no_answer_and_no_log_line(
    service: Service, standin: StandIn, caplog
) -> None:
    standin.add_account("alice", 2)
    caplog.set_level(logging.DEBUG, logger="connector")
    answers = [
        service.run(trigger(standin), key=CANARY),  # refused by the endpoint
        service.run({**trigger(standin), "state": {"v": 99}}, key=CANARY),
        service.call("POST", "/v1/auth/test", {"credentials": {"baseUrl": standin.url}},
                     key=CANARY),
        service.run({"operation": ACTION, "inputs": {"handle": CANARY}}, key=CANARY),
    ]
    assert [a.status_code for a in answers] == [401, 400, 401, 400]
    for answer in answers:
        assert CANARY not in answer.text
    assert caplog.records and CANARY not in caplog.text
    assert "POST /v1/run 401 authentication_error" in caplog.text


# ---------------------------------------------------------------- the connection test


def test_auth_test_proves_a_key_for_no_credits(service: Service) -> None:
    with StandIn(api_keys=(API_KEY,), credits={API_KEY: 100}) as metered:
        body = {"credentials": {"baseUrl": metered.url}}
        ok = service.call("POST", "/v1/auth/test", body, key=API_KEY)
        assert ok.status_code == 200
        assert ok.json()["ok"] is True and ok.json()["creditsUsed"] == 0
        assert metered.credits == {API_KEY: 100}
        refused = service.call("POST", "/v1/auth/test", body, key="not-a-key-0000")
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "authentication_error"


def test_auth_test_with_a_handle_reads_one_account_for_10_credits(service: Service) -> None:
    with StandIn(api_keys=(API_KEY,), credits={API_KEY: 100}) as metered:
        metered.add_account("alice", 5)
        body = {"credentials": {"baseUrl": metered.url}, "handle": "@alice"}
        ok = service.call("POST", "/v1/auth/test", body, key=API_KEY).json()
        assert ok["creditsUsed"] == 10 and ok["probe"] == "handle"
        assert metered.credits == {API_KEY: 90}


# ---------------------------------------------------------------- the commands


@pytest.mark.slow
def test_the_serve_command_logs_requests_but_never_the_key(standin: StandIn) -> None:
    standin.add_account("alice", 3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUMPLINGAI_")}
    env["DUMPLINGAI_API_KEY"] = CANARY
    proc = subprocess.Popen([sys.executable, "-m", "connector.cli", "serve", "--port", "0"],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stderr is not None
        line = ""
        while "ready:" not in line:
            line = proc.stderr.readline()
            assert line, "serve exited before it was ready"
        url = line.split("ready: ")[1].split()[0]
        http = requests.Session()
        http.trust_env = False
        ok = http.post(url + "/v1/run", json=trigger(standin), timeout=10,
                       headers={"Authorization": f"Bearer {API_KEY}"})
        # No Bearer key: the service's own key, which a request may not send elsewhere.
        refused = http.post(url + "/v1/run", json=trigger(standin), timeout=10)
        assert ok.status_code == 200
        assert refused.status_code == 400  # the service's own key may not pick a host
    finally:
        proc.terminate()
        _, rest = proc.communicate(timeout=10)
    log = line + rest
    assert "POST /v1/run 200" in log and "POST /v1/run 400 configuration_error" in log
    assert CANARY not in log and API_KEY not in log


@pytest.mark.slow
def test_auth_test_command_says_ok_and_costs_nothing(standin: StandIn) -> None:
    from tests.support import run_cli

    good = run_cli("--base-url", standin.url, "auth", "test")
    assert good.code == 0, good.stderr
    assert good.json["creditsUsed"] == 0 and "ok:" in good.stderr
    bad = run_cli("--base-url", standin.url, "auth", "test", key=CANARY)
    assert bad.code == 1
    assert bad.stderr.count("\n") == 1 and "API key is invalid" in bad.stderr
    assert CANARY not in bad.stderr + bad.stdout


@pytest.mark.parametrize("option", [["--base-url", "http://127.0.0.1:9"], ["--sandbox"]])
def test_serve_refuses_a_global_credentials_option_it_would_ignore(option: list[str]) -> None:
    from tests.support import run_cli

    done = run_cli(*option, "serve", "--port", "0", timeout=30)
    assert done.code == 2
    assert "serve does not take" in done.stderr and "DUMPLINGAI_BASE_URL" in done.stderr


def test_an_internal_error_logs_its_traceback_without_the_callers_key(caplog) -> None:
    from connector.protocol import failure

    caller_key = "caller-secret-key-0123456789"
    try:
        raise RuntimeError(f"bug while holding {caller_key}")
    except RuntimeError as exc:
        with caplog.at_level(logging.DEBUG, logger="connector"):
            _, body = failure(exc, [caller_key])
    assert body["error"]["type"] == "internal_error" and caller_key not in json.dumps(body)
    logged = caplog.text  # formatted as a handler would: exc_info included
    assert "Traceback" in logged and "RuntimeError" in logged and caller_key not in logged
