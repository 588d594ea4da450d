"""Reliability: `invoke` under hostile input, and a canary API key through every error path."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connector
from connector import invoke
from connector.core.config import RetryPolicy, Timeouts
from connector.standin import Fault, StandIn
from tests.support import request, run_invoke

CANARY = "sk_CANARY_7f3a9c1e5b2d"
OPS = ["get_tiktok_user_following", "new_account_followed"]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
bad_handles = st.one_of(
    st.integers(),
    st.lists(st.text(), max_size=2),
    st.just(""),
    st.just("bad handle!"),
    st.just("x" * 25),
    st.just("@@x"),
    st.text(alphabet="!#$%^&*() ", min_size=1, max_size=10),
)
bad_numbers = st.one_of(
    st.just(0),
    st.integers(max_value=0),
    st.just("abc"),
    st.just(1.5),
    st.just(10**6),
    st.just(True),
    st.lists(st.integers(), max_size=2),
)


def _requests(url: str):
    creds = {"apiKey": "k", "baseUrl": url}
    base = st.fixed_dictionaries({"operation": st.sampled_from(OPS), "credentials": st.just(creds)})
    return st.one_of(
        # not JSON at all
        st.binary(max_size=50).filter(lambda b: not _parses(b)),
        # JSON, but not a request object
        json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v)),
        # unknown operation
        st.text(max_size=30)
        .filter(lambda s: s not in OPS)
        .map(
            lambda op: json.dumps(
                {"operation": op, "inputs": {"handle": "ok"}, "credentials": creds}
            )
        ),
        # a bad handle, or a bad number in an otherwise good request
        base.flatmap(lambda r: bad_handles.map(lambda h: {**r, "inputs": {"handle": h}})).map(
            json.dumps
        ),
        base.flatmap(
            lambda r: (
                st.tuples(st.sampled_from(["count", "maxPages", "maxItems"]), bad_numbers)
                .filter(lambda kv: kv != ("maxItems", 10**6))
                .map(lambda kv: {**r, "inputs": {"handle": "ok", kv[0]: kv[1]}})
            )
        ).map(json.dumps),
        # wrong types at the top level
        base.flatmap(
            lambda r: st.sampled_from(["inputs", "credentials", "state"]).flatmap(
                lambda k: st.one_of(
                    st.integers(), st.text(max_size=5), st.lists(st.integers())
                ).map(lambda v: {**r, "inputs": {"handle": "ok"}, k: v})
            )
        ).map(json.dumps),
        # unknown request or input fields, a bad mode or platform
        base.map(lambda r: json.dumps({**r, "inputs": {"handle": "ok", "handel": "x"}})),
        base.map(lambda r: json.dumps({**r, "inputs": {"handle": "ok"}, "mode": "dry"})),
        base.map(lambda r: json.dumps({**r, "inputs": {"handle": "ok"}, "platform": "ifttt"})),
        base.map(lambda r: json.dumps({**r, "inputs": {"handle": "ok"}, "extra": 1})),
    )


def _parses(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def quiet_standin():
    with StandIn(api_keys=("k",)) as server:
        server.add_account("ok", 5)
        yield server


def test_invoke_answers_every_bad_request_with_a_structured_error_and_sends_nothing(quiet_standin):
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(raw=_requests(quiet_standin.url))
    def check(raw):
        code, body = invoke.answer(raw)
        assert code == 2, body
        assert set(body) == {"error"}
        assert body["error"]["type"] in ("input_error", "configuration_error", "state_error")
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        json.dumps(body)  # serialisable as the protocol promises

    check()
    assert quiet_standin.count_requests() == 0


def test_invoke_refuses_a_huge_request_before_parsing_it(quiet_standin):
    raw = json.dumps({"operation": OPS[0], "inputs": {"handle": "a" * (9 * 1024 * 1024)}})
    code, body = invoke.answer(raw)
    assert code == 2 and body["error"]["field"] == "request"
    code, body = invoke.answer(
        json.dumps(
            {"operation": OPS[0], "inputs": {"handle": "a" * 5000}, "credentials": {"apiKey": "k"}}
        )
    )
    assert code == 2 and body["error"]["field"] == "handle"
    assert quiet_standin.count_requests() == 0


def test_invoke_never_prints_a_traceback_even_on_internal_errors(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("unexpected")

    monkeypatch.setattr("connector.api.run", boom)
    code, body = invoke.answer(json.dumps({"operation": OPS[0], "inputs": {"handle": "x"}}))
    assert code == 1 and body["error"]["type"] == "internal_error"


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
    ("timeout", [Fault(delay=0.5)] * 3),
]


@pytest.mark.parametrize("name, faults", ERROR_PATHS, ids=[n for n, _ in ERROR_PATHS])
def test_a_canary_key_never_leaks_through_an_error_path(name, faults, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    with StandIn(api_keys=(CANARY,)) as server:
        server.add_account("alice", 30)
        creds = {"apiKey": CANARY, "baseUrl": server.url}
        store = connector.open_store(tmp_path / "s.db")
        store.poll("alice", credentials=creds).commit()
        server.follow_many("alice", 3)
        server.inject(*faults)
        options = {"retry": RetryPolicy.no_wait(2), "timeouts": Timeouts(connect=1, read=0.2)}
        with pytest.raises(connector.ConnectorError) as caught:
            connector.run(OPS[0], {"handle": "alice", "maxPages": 3}, credentials=creds, **options)
        server.inject(*faults)
        code, body = invoke.answer(
            json.dumps({"operation": OPS[1], "inputs": {"handle": "alice"}, "credentials": creds}),
            **options,
        )
        server.inject(*faults)
        with pytest.raises(connector.ConnectorError) as polled:
            store.poll("alice", credentials=creds, **options)
        store.close()
    assert code == 1
    seen = [
        str(caught.value),
        repr(caught.value),
        json.dumps(caught.value.to_dict()),
        str(polled.value),
        json.dumps(body),
        caplog.text,
    ]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            seen.append(path.read_bytes().decode("latin-1"))
    for text in seen:
        assert CANARY not in text


def test_a_canary_key_never_leaks_on_input_config_and_transport_errors(caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    dead = f"http://127.0.0.1:{_closed_port()}"
    cases = [
        ({"handle": "bad handle!"}, {"apiKey": CANARY, "baseUrl": dead}),
        ({"handle": "ok"}, {"apiKey": CANARY, "baseUrl": "http://example.com"}),
        ({"handle": "ok"}, {"apiKey": CANARY, "baseUrl": dead}),
    ]
    texts = [caplog.text]
    for inputs, creds in cases:
        with pytest.raises(connector.ConnectorError) as caught:
            connector.run(OPS[0], inputs, credentials=creds, retry=RetryPolicy.no_wait(1))
        texts += [str(caught.value), repr(caught.value), json.dumps(caught.value.to_dict())]
        code, body = invoke.answer(
            json.dumps({"operation": OPS[0], "inputs": inputs, "credentials": creds}),
            retry=RetryPolicy.no_wait(1),
        )
        assert code in (1, 2) and "error" in body
        texts.append(json.dumps(body))
    cli = run_invoke(request(OPS[0], {"handle": "ok"}, {"apiKey": CANARY, "baseUrl": dead}))
    assert cli.code == 1 and "Traceback" not in cli.stderr
    texts += [cli.stdout, cli.stderr, caplog.text]
    assert all(CANARY not in t for t in texts)
