"""Shared fixtures: a scripted stand-in on loopback, credentials for it, and cassette settings.

The cassettes were recorded from the stand-in, not from the real API (there is no key here).
A cassette test scripts the stand-in's world exactly as when it was recorded (that world also
gives the test its expected values, and `--record-mode=rewrite` records from it again); on
replay (`--record-mode=none`, the default) vcrpy answers every request, so no server is
started and the credentials point at a closed port: a request the cassette does not hold
fails, it is never served.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.core.config import RetryPolicy
from connector.standin import StandIn
from tests.receiver import Receiver
from tests.support import API_KEY, REPLAY_URL, ROOT, replaying


@pytest.fixture
def standin(request):
    """A fresh stand-in with no accounts; tests add what they need. Serving, except for a
    cassette test on replay (module docstring)."""
    server = StandIn(api_keys=(API_KEY,))
    if replaying(request):
        yield server
        return
    with server:
        yield server


@pytest.fixture
def creds(request, standin):
    return {"apiKey": API_KEY, "baseUrl": REPLAY_URL if replaying(request) else standin.url}


@pytest.fixture
def fast_retry():
    """Retries without sleeping, so replayed 429/503s do not wait out Retry-After."""
    return RetryPolicy.no_wait(total=3)


@pytest.fixture(scope="session")
def vcr_config():
    # record_mode stays out of here: it would override --record-mode on the command line.
    return {
        "match_on": ["method", "path", "body"],
        "filter_headers": [("authorization", "REDACTED")],
        "decode_compressed_response": True,
        # --block-network still lets tests reach the stand-in on loopback.
        "allowed_hosts": ["127.0.0.1", "localhost", "::1"],
    }


@pytest.fixture
def vcr_cassette_dir(request):
    return str(ROOT / "cassettes" / request.module.__name__.split(".")[-1])


@pytest.fixture(scope="session")
def assert_valid_items():
    """A check that emitted items match the action manifest's `output` schema (one item each);
    an empty list fails, since it would check nothing."""
    from jsonschema import Draft202012Validator

    from connector.core import manifests

    validator = Draft202012Validator(manifests.load("get_tiktok_user_following")["output"])

    def check(items):
        assert items, "no items to check: the test must produce some"
        for item in items:
            problems = [e.message for e in validator.iter_errors(item)]
            assert not problems, f"item {item.get('id')!r} does not match the output: {problems}"

    return check


# --------------------------------------------------------------------------- state databases

#: The storage backends every storage, polling, outbox and watch test runs against.
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the whole session (tests/pgserver.py), or a skip saying why
    there is none. Under CI (CI=true) a missing PostgreSQL fails instead: CI must run these."""
    import os

    from tests import pgserver

    reason = pgserver.unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests, but: {reason}")
        pytest.skip(f"no PostgreSQL here: {reason}")
    with pgserver.TempPostgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty PostgreSQL database for one test."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(params=BACKENDS)
def any_db(request, tmp_path) -> str:
    """A state database target: a SQLite file path, or a postgresql:// URL of a fresh database."""
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback (tests/receiver.py), for any test that POSTs events."""
    with Receiver() as r:
        yield r
