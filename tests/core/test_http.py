"""The HTTP core: typed errors with the server's message, retries, timeouts, rate limits,
base URL rules, and an API key that never leaks.

Tests marked `vcr` replay a cassette of the stand-in (scripted the same way when recorded);
the others talk to the live stand-in on loopback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

import connector
from connector.core.config import (
    PRODUCTION_URL,
    Credentials,
    RetryPolicy,
    Timeouts,
    check_base_url,
    resolve_credentials,
)
from connector.core.deadline import WATCHDOG
from connector.core.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    TransportError,
    UpstreamError,
    error_for_status,
)
from connector.core.http import Client, RateLimit, parse_page
from connector.core.retries import build_retry
from connector.core.transport import HTTPTransport, PostFailed, Reply
from connector.standin import ERROR_503, MALFORMED, RESET, Fault, StandIn
from connector.watch.webhook import Webhook
from tests.receiver import Receiver
from tests.slowpeer import PARTS, TricklingServer, elapsed
from tests.support import ACTION, ROOT, request, run_cli, run_invoke

CASSETTES = ROOT / "cassettes"

# The messages the endpoint documents (seed page), as the stand-in sends them.
MSG_400 = "'handle' parameter is required and must be a non-empty string."
MSG_401 = "API key is invalid or missing."
MSG_403 = "Insufficient credits. Please top up your account."
MSG_404 = "Following list not found for user: ghost"
MSG_500 = "An unexpected server error occurred while fetching the TikTok user following: injected"
MSG_502 = "The following service is currently unavailable."
MSG_503 = "Rate limit exceeded. Please try again later."


@pytest.fixture
def client(creds: dict[str, str], fast_retry: RetryPolicy):
    with Client(Credentials(creds["apiKey"], creds["baseUrl"]), retry=fast_retry) as c:
        yield c


def cassette_statuses(cassette: Any) -> list[int]:
    return [r["status"]["code"] for r in cassette.responses]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- documented errors


def _handle_empty(standin: StandIn) -> str:
    return ""  # only the action's validation keeps this from being sent; the client sends it


def _unknown_key(standin: StandIn) -> str:
    standin.add_account("alice", 3)
    standin.api_keys = ["another-key"]  # the test's key is no longer valid
    return "alice"


def _no_credits(standin: StandIn) -> str:
    standin.add_account("alice", 3)
    standin.meter.credits = {standin.api_key: 0}
    return "alice"


def _unknown_handle(standin: StandIn) -> str:
    return "ghost"


def _injected(status: int):
    def setup(standin: StandIn) -> str:
        standin.add_account("alice", 3)
        standin.inject(*[Fault(status=status)] * 4)  # every attempt of fast_retry (1 + 3)
        return "alice"

    return setup


ERROR_STATUSES = [
    # status, how the stand-in is made to answer it, error class, type, message, attempts
    (400, _handle_empty, BadRequestError, "bad_request", MSG_400, 1),
    (401, _unknown_key, AuthenticationError, "authentication_error", MSG_401, 1),
    (403, _no_credits, InsufficientCreditsError, "insufficient_credits", MSG_403, 1),
    (404, _unknown_handle, NotFoundError, "not_found", MSG_404, 1),
    (500, _injected(500), ServerError, "server_error", MSG_500, 4),
    (502, _injected(502), UpstreamError, "upstream_error", MSG_502, 4),
    (503, _injected(503), RateLimitError, "rate_limited", MSG_503, 4),
]


@pytest.mark.vcr
@pytest.mark.parametrize(
    ("status", "setup", "cls", "type_", "server_message", "attempts"),
    ERROR_STATUSES,
    ids=[str(row[0]) for row in ERROR_STATUSES],
)
def test_each_documented_error_status_raises_its_error_with_the_server_message(
    standin, client, vcr, status, setup, cls, type_, server_message, attempts
) -> None:
    handle = setup(standin)
    with pytest.raises(cls) as caught:
        client.fetch_page(handle)
    err = caught.value
    assert isinstance(err, ApiError)
    assert err.status == status
    assert err.server_message == server_message
    assert err.message.startswith(server_message)  # kept word for word, advice after it
    assert err.to_dict()["type"] == type_
    assert err.to_dict()["status"] == status
    assert not err.sent_nothing
    # 4xx are answers and are not retried; 5xx are retried until the policy gives up.
    assert err.details["attempts"] == attempts
    assert cassette_statuses(vcr) == [status] * attempts


def test_each_error_says_what_to_do_after_the_server_message() -> None:
    advice = {
        400: "check the handle",
        401: "check the API key",
        403: "top up",
        404: "private, hidden, or the handle does not exist",
        429: "rate limited",
        500: "try again later",
        502: "upstream TikTok service",
        503: "rate limited",
    }
    for status, words in advice.items():
        err = error_for_status(status, "the server said so")
        assert err.message.startswith("the server said so")
        assert words in err.message, status


@pytest.mark.parametrize(
    ("status", "cls"), [(429, RateLimitError), (504, ServerError), (418, ApiError)]
)
def test_undocumented_statuses_still_map_into_the_tree(status: int, cls: type) -> None:
    err = error_for_status(status, None)
    assert type(err) is cls
    assert err.message.startswith(f"HTTP {status}")


# --------------------------------------------------------------------------- retries


@pytest.mark.vcr
def test_a_503_is_retried_and_only_the_successful_request_costs_credits(
    standin, creds, fast_retry, vcr, assert_valid_items
) -> None:
    standin.add_account("alice", 5)
    standin.inject(ERROR_503)
    result = connector.run(ACTION, {"handle": "alice"}, credentials=creds, retry=fast_retry)
    assert len(result.items) == 5
    assert_valid_items(result.items)
    assert result.meta["requests"] == 2  # the 503 and the retry
    assert result.meta["pages"] == 1
    assert result.meta["creditsUsed"] == 10  # failed requests cost nothing
    assert cassette_statuses(vcr) == [503, 200]


@pytest.mark.vcr
def test_a_429_with_retry_after_is_retried(standin, creds, fast_retry, vcr) -> None:
    standin.add_account("alice", 2)
    standin.inject(Fault(status=429, retry_after=1), Fault(status=429, retry_after=1))
    result = connector.run(ACTION, {"handle": "alice"}, credentials=creds, retry=fast_retry)
    assert [i["uniqueId"] for i in result.items] == ["user2", "user1"]
    assert result.meta["requests"] == 3
    assert result.meta["creditsUsed"] == 10
    assert cassette_statuses(vcr) == [429, 429, 200]


def test_a_long_retry_after_is_capped_instead_of_slept(standin, creds) -> None:
    standin.add_account("alice", 1)
    standin.inject(Fault(status=503, retry_after=3600))
    policy = RetryPolicy(retry_after_max=0, backoff_factor=0, backoff_jitter=0)
    started = time.monotonic()
    result = connector.run(ACTION, {"handle": "alice"}, credentials=creds, retry=policy)
    assert time.monotonic() - started < 2  # not an hour
    assert result.meta["requests"] == 2
    assert standin.count_requests() == 2


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    retry = build_retry(RetryPolicy(retry_after_max=5))
    assert retry.parse_retry_after("2") == 2
    assert retry.parse_retry_after("3600") == 5
    # urllib3 makes a new Retry per attempt: the cap must survive it.
    assert retry.new(total=1).parse_retry_after("3600") == 5


def test_retries_cover_post_and_the_transient_statuses_only() -> None:
    retry = build_retry(RetryPolicy())
    assert "POST" in retry.allowed_methods
    assert set(retry.status_forcelist) == {429, 500, 502, 503, 504}
    for status in (400, 401, 403, 404):
        assert not retry.is_retry("POST", status)
    assert retry.is_retry("POST", 502)


def test_no_wait_retries_without_sleeping() -> None:
    policy = RetryPolicy.no_wait(total=2)
    retry = build_retry(policy)
    assert retry.total == 2
    assert retry.get_backoff_time() == 0
    assert retry.parse_retry_after("60") == 0


def test_rate_limited_after_retries_reports_retry_after_and_headers(standin, client) -> None:
    standin.add_account("alice", 1)
    standin.inject(*[Fault(status=429, retry_after=7)] * 4)
    with pytest.raises(RateLimitError) as caught:
        client.fetch_page("alice")
    err = caught.value
    assert err.status == 429 and err.retry_after == 7.0
    assert err.headers["X-RateLimit-Remaining"] == "0"
    assert standin.count_requests() == 4


# --------------------------------------------------------------------------- bad 200s


@pytest.mark.vcr
def test_a_200_without_following_list_is_a_response_format_error(standin, client, vcr) -> None:
    standin.add_account("alice", 3)
    standin.inject(MALFORMED)
    with pytest.raises(ResponseFormatError) as caught:
        client.fetch_page("alice")
    assert "without a followingList" in caught.value.message
    assert caught.value.to_dict()["type"] == "bad_response"
    assert cassette_statuses(vcr) == [200]  # a bad 200 is not retried


@pytest.mark.vcr
def test_a_200_whose_body_is_not_json_is_a_response_format_error(standin, client, vcr) -> None:
    standin.add_account("alice", 3)
    standin.inject(Fault(body="<html>maintenance</html>"))
    with pytest.raises(ResponseFormatError) as caught:
        client.fetch_page("alice")
    assert "not JSON" in caught.value.message
    assert "<html>maintenance" in caught.value.message  # a snippet, to report it
    assert cassette_statuses(vcr) == [200]


def test_an_html_error_page_keeps_its_status_without_a_server_message(standin, client) -> None:
    standin.inject(*[Fault(html=True)] * 4)
    with pytest.raises(UpstreamError) as caught:
        client.fetch_page("alice")
    assert caught.value.status == 502 and caught.value.server_message is None
    assert caught.value.message.startswith("HTTP 502")


GOOD = {"followingList": [], "minCursor": 1, "maxCursor": 2, "hasMore": False, "total": 0}


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ([], "not an object"),
        ({"data": []}, "without a followingList"),
        ({**GOOD, "followingList": {"user": {}}}, "not {user, stats}"),
        ({**GOOD, "followingList": [{"stats": {}}]}, "not {user, stats}"),
        ({**GOOD, "followingList": ["6123"]}, "not {user, stats}"),
        ({**GOOD, "hasMore": "yes"}, "hasMore"),
        ({**GOOD, "minCursor": "soon"}, "minCursor"),
        ({**GOOD, "maxCursor": True}, "maxCursor"),
        ({**GOOD, "minCursor": float("nan")}, "minCursor"),
        ({**GOOD, "minCursor": float("inf")}, "minCursor"),
    ],
)
def test_a_200_that_lacks_the_documented_shape_is_refused(payload: Any, words: str) -> None:
    with pytest.raises(ResponseFormatError) as caught:
        parse_page(payload, json.dumps(payload).encode())
    assert words in caught.value.message


def test_the_documented_200_parses_with_cursors_passed_through_untouched() -> None:
    payload = {
        "followingList": [{"user": {"id": "6123456789012345678"}, "stats": {}}],
        "maxCursor": 1234567890,
        "minCursor": "1234567800",
        "hasMore": None,
        "total": 234,
    }
    page = parse_page(payload)
    assert (page.min_cursor, page.max_cursor, page.has_more, page.total) == (
        "1234567800",
        1234567890,
        None,
        234,
    )
    assert page.entries == payload["followingList"]


def test_a_null_following_list_is_an_empty_page() -> None:
    page = parse_page({"followingList": None, "hasMore": False})
    assert page.entries == [] and page.total is None


# --------------------------------------------------------------------------- transport


def test_a_closed_port_is_a_transport_error(creds, fast_retry) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    client = Client(Credentials(creds["apiKey"], url), retry=fast_retry)
    with client, pytest.raises(TransportError) as caught:
        client.fetch_page("alice")
    assert "refused" in caught.value.message
    assert url in caught.value.message
    assert not caught.value.sent_nothing


def test_a_connection_reset_on_every_attempt_is_a_transport_error(standin, client) -> None:
    standin.add_account("alice", 1)
    standin.inject(*[RESET] * 4)
    with pytest.raises(TransportError) as caught:
        client.fetch_page("alice")
    assert "reset" in caught.value.message
    assert standin.count_requests() == 4  # connection errors are retried too


def test_a_reset_then_an_answer_succeeds(standin, client) -> None:
    standin.add_account("alice", 1)
    standin.inject(RESET)
    page = client.fetch_page("alice")
    assert len(page.entries) == 1 and page.attempts == 2


def test_a_server_slower_than_the_read_timeout_is_a_transport_error(standin, creds) -> None:
    standin.add_account("alice", 1)
    standin.inject(Fault(delay=0.6), Fault(delay=0.6))
    credentials = Credentials(creds["apiKey"], creds["baseUrl"])
    timeouts = Timeouts(connect=1, read=0.1)
    started = time.monotonic()
    client = Client(credentials, retry=RetryPolicy.no_wait(total=1), timeouts=timeouts)
    with client, pytest.raises(TransportError) as caught:
        client.fetch_page("alice")
    assert time.monotonic() - started < 1.1  # two 0.1 s timeouts, not the 1.2 s of delays
    assert "did not answer in time" in caught.value.message
    assert standin.count_requests() == 2


@pytest.mark.parametrize("part", list(PARTS))
def test_an_upstream_trickling_its_answer_ends_at_the_deadline(creds, part: str) -> None:
    """Each byte comes well within the read timeout, so only the deadline can end it; the
    whole answer would take over two minutes."""
    with TricklingServer(start=PARTS[part], every=0.5) as slow:
        client = Client(Credentials(creds["apiKey"], slow.url),
                        retry=RetryPolicy.no_wait(total=2),
                        timeouts=Timeouts(connect=1, read=5, total=2))
        started = time.monotonic()
        with client, pytest.raises(TransportError) as caught:
            client.fetch_page("alice")
    assert elapsed(started) < 15  # 2 s and slack; without the deadline: minutes
    assert "within the 2 s deadline" in caught.value.message
    assert slow.url in caught.value.message
    assert slow.requests == 1  # no try starts after the deadline


def test_a_retry_whose_wait_would_outlast_the_deadline_is_not_waited_for(standin, creds
                                                                          ) -> None:
    """A 503 asking for 20 s with 3 s left: the 503 is the answer, at once."""
    standin.add_account("alice", 1)
    standin.inject(Fault(status=503, retry_after=20), Fault(status=503, retry_after=20))
    client = Client(Credentials(creds["apiKey"], creds["baseUrl"]),
                    retry=RetryPolicy(total=1, retry_after_max=30),
                    timeouts=Timeouts(connect=1, read=5, total=3))
    started = time.monotonic()
    with client, pytest.raises(RateLimitError) as caught:
        client.fetch_page("alice")
    assert elapsed(started) < 15  # the 20 s wait was not slept
    assert caught.value.status == 503 and standin.count_requests() == 1


def test_exchanges_that_end_leave_nothing_for_the_watchdog(standin, client) -> None:
    standin.add_account("alice", 3)
    standin.inject(RESET)
    before = WATCHDOG.in_flight()
    for _ in range(5):
        client.fetch_page("alice")
    with pytest.raises(NotFoundError):
        client.fetch_page("ghost")
    assert WATCHDOG.in_flight() == before


FORKED_CHILD = """
import os, socket, sys
from connector.core.deadline import WATCHDOG
held = WATCHDOG.arm(600)  # in flight in the parent when it forks: starts the thread
pid = os.fork()
if pid == 0:
    mine = WATCHDOG.in_flight()
    a, b = socket.socketpair()
    a.settimeout(60)  # only if no watchdog thread shuts it down
    exchange = WATCHDOG.arm(0.2)
    exchange.attach(a)
    try:
        cut = a.recv(1) == b""
    except OSError:
        cut = False
    os._exit(0 if (mine, cut, exchange.end()) == (0, True, True) else 1)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), WATCHDOG.in_flight())
"""


def test_a_forked_child_has_a_watchdog_of_its_own() -> None:
    """A child forked while an exchange is in flight starts with none of the parent's (their
    sockets are not its to shut) and a thread of its own, which cuts its exchanges at their
    deadline (a lock or thread inherited from the parent would never do it)."""
    done = subprocess.run([sys.executable, "-c", FORKED_CHILD], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.stdout.split() == ["0", "1"], done.stderr


# --------------------------------------------------------------------------- the transport


class ScriptedTransport:
    """A Transport that records each POST and answers it from a script (a Reply, or a
    PostFailed to raise)."""

    def __init__(self, *script: Reply | PostFailed) -> None:
        self.script = list(script)
        self.sent: list[tuple[str, Any, dict[str, str], Timeouts]] = []
        self.closed = False

    def post(self, url: str, body: bytes, headers: Any, timeouts: Timeouts) -> Reply:
        self.sent.append((url, json.loads(body), dict(headers), timeouts))
        answer = self.script.pop(0)
        if isinstance(answer, PostFailed):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


def test_a_transport_given_to_the_client_carries_its_requests_and_its_answers_are_parsed(
) -> None:
    payload = {"followingList": [{"user": {"id": "61", "uniqueId": "bob"}, "stats": {}}],
               "minCursor": 1700000000, "maxCursor": 1700000500, "hasMore": True, "total": 40}
    transport = ScriptedTransport(
        Reply.of(200, json.dumps(payload).encode(),
                 {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59"}),
        Reply.of(404, json.dumps({"error": MSG_404}).encode()),
        PostFailed("connection reset"),
    )
    timeouts = Timeouts(connect=1, read=2, total=3)
    with Client(Credentials("sk-seam", "https://api.example"), timeouts=timeouts,
                transport=transport) as client:
        page = client.fetch_page("alice", min_time=1700000900, count=5, request_source="N8N")
        with pytest.raises(NotFoundError) as missing:
            client.fetch_page("ghost")
        with pytest.raises(TransportError) as unreachable:
            client.fetch_page("carol")
    url, body, headers, sent_timeouts = transport.sent[0]
    assert url == "https://api.example/api/v1/get-tiktok-user-following"
    assert body == {"handle": "alice", "requestSource": "N8N", "minTime": 1700000900,
                    "count": 5}
    assert (headers["Authorization"], headers["Content-Type"], headers["Accept"]) == (
        "Bearer sk-seam", "application/json", "application/json")
    assert headers["User-Agent"].startswith("tiktok-following-connector/")
    assert sent_timeouts == timeouts
    assert (page.entries, page.min_cursor, page.max_cursor, page.has_more, page.total) == (
        payload["followingList"], 1700000000, 1700000500, True, 40)
    assert (page.rate_limit, page.attempts) == (RateLimit(60, 59), 1)
    assert missing.value.status == 404 and missing.value.server_message == MSG_404
    assert unreachable.value.message == ("could not reach https://api.example (connection "
                                         "reset); check the network and baseUrl")
    assert [sent[1]["handle"] for sent in transport.sent] == ["alice", "ghost", "carol"]
    assert not transport.closed  # a transport given is the caller's to close


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


@pytest.fixture
def clean_proxy_env(monkeypatch) -> Any:
    """No proxy, NO_PROXY or CA bundle from the machine's environment; `set_proxy(url)` sets
    HTTP(S)_PROXY, both spellings."""
    for name in (*PROXY_VARIABLES, "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy",
                 "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)

    def set_proxy(url: str) -> None:
        for name in PROXY_VARIABLES:
            monkeypatch.setenv(name, url)
    return set_proxy


def test_a_remote_webhook_goes_through_the_environments_proxy_and_loopback_never(
    clean_proxy_env
) -> None:
    with Receiver() as proxy, Receiver() as local:
        clean_proxy_env(proxy.url.removesuffix("/hook"))  # a forward proxy that answers 200
        with Webhook("http://hooks.example.invalid/catch/1", allow_http=True) as remote:
            far = remote.post({"eventId": "far"})
        with Webhook(local.url) as near:
            close = near.post({"eventId": "near"})
        with Client(Credentials("sk-test", local.url.removesuffix("/hook")),
                    retry=RetryPolicy.no_wait(0)) as client, \
                pytest.raises(ResponseFormatError):  # the receiver's {"ok": true}
            client.fetch_page("alice")
    assert far.ok and close.ok
    (proxied,) = proxy.requests
    assert (proxied.path, proxied.body["eventId"]) == ("http://hooks.example.invalid/catch/1",
                                                       "far")
    assert proxied.headers["idempotency-key"] == "far"
    assert [(r.path, r.event_id) for r in local.requests] == [
        ("/hook", "near"), ("/api/v1/get-tiktok-user-following", None)]


def test_no_proxy_sends_a_host_past_the_environments_proxy(clean_proxy_env, monkeypatch
                                                           ) -> None:
    timeouts = Timeouts(connect=1, read=5, total=10)
    with Receiver() as proxy, Receiver() as receiver:
        clean_proxy_env(proxy.url.removesuffix("/hook"))
        with HTTPTransport(trust_env=True) as transport:
            transport.post(receiver.url, b'{"n": 1}', {}, timeouts).close()
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.setenv(name, "example.com,127.0.0.1")
        with HTTPTransport(trust_env=True) as transport:
            transport.post(receiver.url, b'{"n": 2}', {}, timeouts).close()
    assert [(r.path, r.body) for r in proxy.requests] == [(receiver.url, {"n": 1})]
    assert [(r.path, r.body) for r in receiver.requests] == [("/hook", {"n": 2})]


def test_a_webhook_through_a_proxy_trickling_its_answer_ends_at_the_deadline(
    clean_proxy_env
) -> None:
    with TricklingServer(start=PARTS["headers"], every=0.5) as slow:
        clean_proxy_env(slow.url)
        with Webhook("http://hooks.example.invalid/catch/1", allow_http=True,
                     timeouts=Timeouts(connect=1, read=5, total=2)) as hook:
            started = time.monotonic()
            reply = hook.post({"eventId": "e1"})
    assert elapsed(started) < 15  # 2 s and slack; without the deadline: minutes
    assert (reply.ok, reply.error) == (False, "no complete answer within the 2 s deadline")
    assert slow.requests == 1


def test_a_webhook_urls_user_and_password_go_as_basic_auth_not_in_the_request_line() -> None:
    with Receiver() as receiver:
        url = receiver.url.replace("http://", "http://hook%40team:pa%3Ass@")
        with Webhook(url) as hook:
            assert hook.post({"eventId": "e1"}).ok
        with Webhook(url, headers={"Authorization": "Token given"}) as hook:
            assert hook.post({"eventId": "e2"}).ok
    first, second = receiver.requests
    assert first.path == "/hook"
    assert first.headers["authorization"] == (
        "Basic " + base64.b64encode(b"hook@team:pa:ss").decode())
    assert second.headers["authorization"] == "Token given"  # a header given wins


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Any:
    """An https receiver on 127.0.0.1 answering 204, its certificate signed by no CA anyone
    trusts: (its URL, the certificate's file)."""
    if shutil.which("openssl") is None:
        pytest.skip("making a certificate needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # A handshake the client refuses fails in accept(), which serve_forever shrugs off.
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/hook", cert
    finally:
        server.shutdown()
        server.server_close()


def test_an_https_peer_whose_certificate_no_trusted_ca_signed_is_refused(
    tls_receiver, clean_proxy_env, monkeypatch
) -> None:
    url, cert = tls_receiver
    timeouts = Timeouts(connect=5, read=5, total=10)
    with Webhook(url) as hook:
        refused = hook.post({"eventId": "e1"})
    with HTTPTransport(trust_env=True) as transport, pytest.raises(PostFailed) as caught:
        transport.post(url, b"{}", {}, timeouts)
    # A CA bundle in the environment is trusted where the environment applies (a remote
    # webhook), never for loopback or the API.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with Webhook(url) as hook:
        still_refused = hook.post({"eventId": "e2"})
    with HTTPTransport(trust_env=True) as transport:
        answer = transport.post(url, b"{}", {}, timeouts)
        answer.close()
    for failed in (refused, still_refused):
        assert (failed.ok, failed.no_connection, failed.error) == (
            False, True, "TLS certificate rejected")
    assert (caught.value.why, caught.value.no_connection) == ("TLS certificate rejected", True)
    assert answer.status == 204


# --------------------------------------------------------------------------- rate limits


def test_rate_limit_headers_are_exposed_on_every_result(creds) -> None:
    with StandIn(api_keys=(creds["apiKey"],), rate_limit=100) as server:
        server.add_account("alice", 2)
        credentials = {**creds, "baseUrl": server.url}
        first = connector.run(ACTION, {"handle": "alice"}, credentials=credentials)
        second = connector.run(ACTION, {"handle": "alice"}, credentials=credentials)
    assert (first.meta["rateLimitLimit"], first.meta["rateLimitRemaining"]) == (100, 99)
    assert (second.meta["rateLimitLimit"], second.meta["rateLimitRemaining"]) == (100, 98)


def test_each_page_keeps_its_own_rate_limit_headers(standin, client) -> None:
    standin.add_account("alice", 1)
    page = client.fetch_page("alice")
    assert page.rate_limit == RateLimit(limit=6000, remaining=5999)
    assert RateLimit.from_headers({"X-RateLimit-Limit": "lots"}) == RateLimit()


def test_an_error_keeps_the_rate_limit_headers(standin, client) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.fetch_page("ghost")
    assert caught.value.headers["X-RateLimit-Limit"] == "6000"


# --------------------------------------------------------------------------- base URL


def test_base_url_comes_from_credentials_then_environment_then_production() -> None:
    env = {"DUMPLINGAI_API_KEY": "env-key", "DUMPLINGAI_BASE_URL": "https://env.example"}
    given = {"apiKey": "k", "baseUrl": "https://given.example/"}
    assert resolve_credentials(given, env).base_url == "https://given.example"
    assert resolve_credentials({"apiKey": "k"}, env).base_url == "https://env.example"
    assert resolve_credentials({"apiKey": "k", "baseUrl": ""}, env).base_url == (
        "https://env.example"
    )
    assert resolve_credentials({"apiKey": "k"}, {}).base_url == PRODUCTION_URL
    assert PRODUCTION_URL == "https://app.dumplingai.com"


def test_the_api_key_comes_from_credentials_else_the_environment() -> None:
    env = {"DUMPLINGAI_API_KEY": " env-key "}
    assert resolve_credentials({"apiKey": "given"}, env).api_key == "given"
    assert resolve_credentials(None, env).api_key == "env-key"
    with pytest.raises(ConfigurationError) as caught:
        resolve_credentials({}, {})
    assert caught.value.to_dict()["field"] == "apiKey"
    assert "DUMPLINGAI_API_KEY" in caught.value.message
    assert caught.value.sent_nothing


def test_run_reaches_the_base_url_from_the_environment(standin, creds, monkeypatch) -> None:
    standin.add_account("alice", 1)
    monkeypatch.setenv("DUMPLINGAI_API_KEY", creds["apiKey"])
    monkeypatch.setenv("DUMPLINGAI_BASE_URL", standin.url)
    result = connector.run(ACTION, {"handle": "alice"})
    assert len(result.items) == 1 and standin.count_requests() == 1


def test_credentials_base_url_wins_over_the_environment(standin, creds, monkeypatch) -> None:
    standin.add_account("alice", 1)
    monkeypatch.setenv("DUMPLINGAI_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    result = connector.run(ACTION, {"handle": "alice"}, credentials=creds)
    assert len(result.items) == 1 and standin.count_requests() == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://app.dumplingai.com",
        "http://10.0.0.5:8787",
        "http://localhost.example.com",
        "http://127.0.0.1@evil.example",
        "ftp://app.dumplingai.com",
        "app.dumplingai.com",
    ],
)
def test_a_base_url_that_would_send_the_key_in_the_clear_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_credentials({"apiKey": "k", "baseUrl": url}, {})
    assert caught.value.message.startswith("baseUrl")
    assert caught.value.to_dict()["field"] == "baseUrl"


def test_an_unsafe_base_url_from_the_environment_names_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("DUMPLINGAI_API_KEY", "k")
    monkeypatch.setenv("DUMPLINGAI_BASE_URL", "http://api.example.com")
    with pytest.raises(ConfigurationError) as caught:
        connector.run(ACTION, {"handle": "alice"})
    assert caught.value.message.startswith(
        "DUMPLINGAI_BASE_URL http://api.example.com uses plain http")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8787", "http://localhost:1", "http://[::1]:8080", "https://x.example"]
)
def test_https_anywhere_and_plain_http_on_loopback_are_accepted(url: str) -> None:
    assert check_base_url(url + "/") == url


def test_the_request_goes_to_the_endpoint_path_with_json_and_bearer(standin, client) -> None:
    standin.add_account("alice", 1)
    client.fetch_page("alice", min_time=1700000000, count=5, request_source="N8N")
    (request,) = standin.requests
    assert request.path == "/api/v1/get-tiktok-user-following"
    assert request.method == "POST"
    assert request.headers["authorization"] == f"Bearer {standin.api_key}"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {
        "handle": "alice",
        "minTime": 1700000000,
        "count": 5,
        "requestSource": "N8N",
    }


# --------------------------------------------------------------------------- the key stays secret


def test_the_api_key_is_not_in_reprs(creds) -> None:
    key = creds["apiKey"]
    credentials = Credentials(key, creds["baseUrl"])
    with Client(credentials) as c:
        shown = [repr(credentials), str(credentials), repr(c), str(c)]
    assert all(key not in text for text in shown)
    assert "***" in repr(credentials)


def test_the_api_key_is_not_in_errors_or_debug_logs(standin, creds, fast_retry, caplog) -> None:
    key = creds["apiKey"]
    standin.add_account("alice", 2)
    caplog.set_level(logging.DEBUG)
    errors: list[Exception] = []
    connector.run(ACTION, {"handle": "alice"}, credentials=creds, retry=fast_retry)
    for fault in (Fault(status=401), *[Fault(status=500)] * 4):
        standin.inject(fault)
    for _ in range(2):
        with pytest.raises(ApiError) as caught:
            connector.run(ACTION, {"handle": "alice"}, credentials=creds, retry=fast_retry)
        errors.append(caught.value)
    closed = {**creds, "baseUrl": f"http://127.0.0.1:{closed_port()}"}
    with pytest.raises(TransportError) as caught:
        connector.run(ACTION, {"handle": "alice"}, credentials=closed, retry=fast_retry)
    errors.append(caught.value)
    assert [type(e) for e in errors] == [AuthenticationError, ServerError, TransportError]
    for err in errors:
        assert key not in f"{err} {err!r} {err.to_dict()} {err.__cause__!r}"
    assert "connector.http" in caplog.text  # the debug log ran, and it is clean
    assert key not in caplog.text
    assert "Bearer" not in caplog.text


# --------------------------------------------------------------------------- cassettes


def test_no_cassette_contains_the_api_key(creds) -> None:
    key = creds["apiKey"]
    files = sorted(CASSETTES.rglob("*.yaml"))
    assert len(files) >= 10, "the cassettes are missing: record them (see README)"
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert key not in text, path
        assert not re.search(r"Bearer (?!REDACTED)", text), path
        for interaction in yaml.safe_load(text)["interactions"]:
            headers = {k.lower(): v for k, v in interaction["request"]["headers"].items()}
            assert headers.get("authorization") == ["REDACTED"], path


# --------------------------------------------------------------------------- response size


OVERSIZED = 21 * 1024 * 1024  # over the 20 MB a page may be


def test_a_response_declaring_more_than_20_mb_is_refused_unread(standin, client) -> None:
    standin.add_account("alice", 1)
    standin.inject(Fault(status=200, body=b" " * OVERSIZED))
    started = time.monotonic()
    with pytest.raises(ResponseFormatError) as caught:
        client.fetch_page("alice")
    assert caught.value.message == (f"the server answered with {OVERSIZED} bytes, more than the "
                                    "20 MB a page can be; refused unread")
    assert time.monotonic() - started < 5
    assert standin.count_requests() == 1  # not retried: it would only come back as large


def test_a_response_streaming_past_20_mb_without_a_length_is_refused(creds) -> None:
    """No Content-Length: the body is read up to the cap and one byte, then refused."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                # The whole request first: closing with unread bytes would send a reset.
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\n\r\n")
                with contextlib.suppress(OSError):  # the client hangs up once it has enough
                    for _ in range(OVERSIZED // 2**20):
                        conn.sendall(b" " * 2**20)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        credentials = Credentials(creds["apiKey"], f"http://127.0.0.1:{port}")
        with Client(credentials, retry=RetryPolicy.no_wait(0)) as own, \
                pytest.raises(ResponseFormatError) as caught:
            own.fetch_page("alice")
        thread.join(10)
    assert caught.value.message == ("the server's answer is larger than the 20 MB a page can "
                                    "be; refused")


def test_the_cli_and_invoke_report_an_oversized_response_in_one_line(standin, creds) -> None:
    standin.add_account("alice", 1)
    standin.inject(Fault(status=200, body=b" " * OVERSIZED))
    cli = run_cli("--base-url", standin.url, "list", "alice")
    standin.inject(Fault(status=200, body=b" " * OVERSIZED))
    answer = run_invoke(request(ACTION, {"handle": "alice"}, creds))
    assert (cli.code, cli.stdout) == (1, "")
    assert cli.stderr == ("tiktok-following: the server answered with 22020096 bytes, more than "
                          "the 20 MB a page can be; refused unread\n")
    assert (answer.code, answer.error["type"]) == (1, "bad_response")
    assert "refused unread" in answer.error["message"]


@pytest.mark.parametrize("url", ["https://user:secret-pass@app.dumplingai.com",
                                 "http://u:p4ss-word@127.0.0.1:9"])
def test_a_base_url_with_a_password_is_refused_without_showing_it(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_base_url(url)
    assert "user name or password" in caught.value.message
    assert "secret-pass" not in caught.value.message and "p4ss-word" not in caught.value.message
