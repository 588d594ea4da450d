"""The DumplingAI stand-in: pagination, errors, limits, faults and the demo world, over loopback."""

from __future__ import annotations

import http.client
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connector.standin import (
    ENDPOINT,
    ERROR_502,
    RESET,
    Fault,
    RecordedRequest,
    StandIn,
    script,
    serve,
)
from tests.support import start

T0 = 1_700_000_000  # first follow time of a scripted account
INJECTED_500 = (
    "An unexpected server error occurred while fetching the TikTok user following: injected"
)


class FakeClock:
    """A clock the test moves by hand, so rate windows and demo feeds need no sleeping."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sb(clock: FakeClock) -> Iterator[StandIn]:
    with StandIn(clock=clock) as standin:
        yield standin


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def post(
    sb: StandIn,
    body: Any = None,
    *,
    session: requests.Session | None = None,
    key: str | None = None,
    raw: bytes | None = None,
    **kwargs: Any,
) -> requests.Response:
    """POST to the endpoint with the stand-in's key (or `key`), a JSON body or raw bytes."""
    headers = {"Authorization": f"Bearer {key or sb.api_key}"}
    send = session.post if session is not None else requests.post
    if raw is not None:
        return send(sb.endpoint, data=raw, headers=headers, timeout=5, **kwargs)
    return send(sb.endpoint, json=body, headers=headers, timeout=5, **kwargs)


def ids(page: dict[str, Any]) -> list[str]:
    return [item["user"]["id"] for item in page["followingList"]]


# --------------------------------------------------------------------------- paging


def test_75_follows_page_as_30_30_15_without_repeats(
    sb: StandIn, session: requests.Session
) -> None:
    sb.add_account("alice", 75)
    pages, min_time = [], None
    for _ in range(4):
        body = {"handle": "alice", "count": 30}
        if min_time is not None:
            body["minTime"] = min_time
        page = post(sb, body, session=session).json()
        pages.append(page)
        if not page["hasMore"]:
            break
        min_time = page["minCursor"]

    assert [len(p["followingList"]) for p in pages] == [30, 30, 15]
    assert [p["hasMore"] for p in pages] == [True, True, False]
    # Times are T0..T0+74, newest first; cursors are the first and last item of each page.
    assert [(p["maxCursor"], p["minCursor"]) for p in pages] == [
        (T0 + 74, T0 + 45),
        (T0 + 44, T0 + 15),
        (T0 + 14, T0),
    ]
    assert all(p["total"] == 75 for p in pages)
    seen = [i for p in pages for i in ids(p)]
    assert len(set(seen)) == 75
    assert seen == [u["id"] for u in sb.following("alice")]


def test_page_items_have_documented_shape(sb: StandIn) -> None:
    sb.add_account("alice", 1)
    item = post(sb, {"handle": "alice"}).json()["followingList"][0]
    assert set(item) == {"user", "stats"}
    assert set(item["user"]) >= {"id", "uniqueId", "nickname", "avatarThumb", "secUid"}
    assert set(item["stats"]) == {
        "followerCount",
        "followingCount",
        "heartCount",
        "videoCount",
        "diggCount",
    }
    assert len(item["user"]["id"]) == 19 and int(item["user"]["id"]) > 2**53


@pytest.mark.parametrize("where", ["server", "account"])
def test_boundary_repeats_repeats_the_boundary_item(clock: FakeClock, where: str) -> None:
    with StandIn(clock=clock, boundary_repeats=where == "server") as sb:
        sb.add_account("alice", 10, boundary_repeats=True if where == "account" else None)
        first = post(sb, {"handle": "alice", "count": 4}).json()
        second = post(sb, {"handle": "alice", "count": 4, "minTime": first["minCursor"]}).json()
    assert ids(second)[0] == ids(first)[-1]
    assert second["maxCursor"] == first["minCursor"]


def test_an_account_can_opt_out_of_server_boundary_repeats(clock: FakeClock) -> None:
    with StandIn(clock=clock, boundary_repeats=True) as sb:
        sb.add_account("alice", 10, boundary_repeats=False)
        first = post(sb, {"handle": "alice", "count": 4}).json()
        second = post(sb, {"handle": "alice", "count": 4, "minTime": first["minCursor"]}).json()
    assert not set(ids(first)) & set(ids(second))


def test_count_defaults_and_clamps(clock: FakeClock) -> None:
    with StandIn(clock=clock, default_count=7, max_count=20) as sb:
        sb.add_account("alice", 50)
        sizes = [
            len(post(sb, {"handle": "alice", **extra}).json()["followingList"])
            for extra in ({}, {"count": 0}, {"count": -3}, {"count": 12}, {"count": 1000})
        ]
    assert sizes == [7, 7, 7, 12, 20]


def test_count_and_min_time_are_numbers_or_numeric_text_never_bools_or_infinities(
    clock: FakeClock,
) -> None:
    with StandIn(clock=clock, default_count=7) as sb:
        sb.add_account("alice", 50)
        sizes = [
            len(post(sb, {"handle": "alice", "count": count}).json()["followingList"])
            for count in ("12", 12.0, "x", True, "inf", None)
        ]
        infinite = post(sb, raw=b'{"handle": "alice", "count": Infinity}').json()
        newest = [
            post(sb, {"handle": "alice", "minTime": min_time}).json()["maxCursor"]
            for min_time in (str(T0 + 10), T0 + 10.0, True, "nan", "later")
        ]
    assert sizes == [12, 12, 7, 7, 7, 7] and len(infinite["followingList"]) == 7
    assert newest == [T0 + 9, T0 + 9, T0 + 49, T0 + 49, T0 + 49]


def test_handle_is_trimmed_unprefixed_and_case_insensitive(sb: StandIn) -> None:
    sb.add_account("Alice", 3)
    assert post(sb, {"handle": "  @ALICE "}).status_code == 200


def test_min_time_past_the_end_gives_the_empty_page(sb: StandIn) -> None:
    sb.add_account("alice", 5)
    page = post(sb, {"handle": "alice", "minTime": T0}).json()
    assert page == {
        "followingList": [],
        "maxCursor": 0,
        "minCursor": 0,
        "hasMore": False,
        "total": 5,
    }


def test_depth_cap_ends_with_minus_one(clock: FakeClock) -> None:
    with StandIn(clock=clock, depth_cap=50) as sb:
        sb.add_account("alice", 120)
        first = post(sb, {"handle": "alice", "count": 30}).json()
        second = post(sb, {"handle": "alice", "count": 30, "minTime": first["minCursor"]}).json()
    assert first["hasMore"] is True
    assert len(second["followingList"]) == 20
    assert second["hasMore"] is False and second["minCursor"] == -1
    assert second["total"] == 120


# --------------------------------------------------------------------------- errors


def error_of(response: requests.Response) -> str:
    assert response.headers["Content-Type"] == "application/json"
    assert "X-RateLimit-Limit" in response.headers and "X-RateLimit-Remaining" in response.headers
    body = response.json()
    assert list(body) == ["error"]
    return body["error"]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"", b'"alice"'])
def test_400_invalid_json(sb: StandIn, raw: bytes) -> None:
    response = post(sb, raw=raw)
    assert response.status_code == 400
    assert error_of(response) == "Invalid JSON in request body"


@pytest.mark.parametrize("body", [{}, {"handle": ""}, {"handle": " @ "}, {"handle": 42}])
def test_400_handle_required(sb: StandIn, body: dict[str, Any]) -> None:
    response = post(sb, body)
    assert response.status_code == 400
    assert error_of(response) == "'handle' parameter is required and must be a non-empty string."


@pytest.mark.parametrize("auth", [None, "sandbox-key", "Basic sandbox-key", "Bearer nope"])
def test_401_bad_or_missing_key(sb: StandIn, auth: str | None) -> None:
    sb.add_account("alice", 1)
    headers = {"Authorization": auth} if auth else {}
    response = requests.post(sb.endpoint, json={"handle": "alice"}, headers=headers, timeout=5)
    assert response.status_code == 401
    assert error_of(response) == "API key is invalid or missing."


def test_404_unknown_and_private_handles(sb: StandIn) -> None:
    sb.add_account("secret", 3, private=True)
    for handle in ("nobody", "@Secret"):
        response = post(sb, {"handle": handle})
        assert response.status_code == 404
        expected = f"Following list not found for user: {handle.lstrip('@').lower()}"
        assert error_of(response) == expected


def test_other_paths_404_other_methods_405(sb: StandIn) -> None:
    response = requests.post(sb.url + "/api/v1/other", json={}, timeout=5)
    assert response.status_code == 404 and error_of(response) == "Not found"
    response = requests.get(sb.endpoint, timeout=5)
    assert response.status_code == 405 and "error" in response.json()


def test_credits_are_spent_per_page_and_run_out(clock: FakeClock) -> None:
    with StandIn(clock=clock, api_keys=["k"], credits={"k": 25}) as sb:
        sb.add_account("alice", 5)
        assert post(sb, {"handle": "nobody"}).status_code == 404  # failures are free
        assert post(sb, {"handle": "alice"}).status_code == 200
        sb.inject(ERROR_502)
        assert post(sb, {"handle": "alice"}).status_code == 502  # injected failures too
        assert post(sb, {"handle": "alice"}).status_code == 200
        response = post(sb, {"handle": "alice"})
        assert sb.credits == {"k": 5}
    assert response.status_code == 403
    assert error_of(response) == "Insufficient credits. Please top up your account."


def test_rate_limit_per_key_with_retry_after(clock: FakeClock) -> None:
    clock.now = 1_000.0  # window [960, 1020)
    with StandIn(clock=clock, api_keys=["a", "b"], rate_limit=2, rate_window=60) as sb:
        sb.add_account("alice", 1)
        remaining = [post(sb, {"handle": "alice"}, key="a").headers["X-RateLimit-Remaining"]]
        remaining.append(post(sb, {"handle": "alice"}, key="a").headers["X-RateLimit-Remaining"])
        limited = post(sb, {"handle": "alice"}, key="a")
        other_key = post(sb, {"handle": "alice"}, key="b")
        clock.advance(20)  # next window
        after = post(sb, {"handle": "alice"}, key="a")
    assert remaining == ["1", "0"]
    assert limited.status_code == 429
    assert error_of(limited) == "Rate limit exceeded. Please try again later."
    assert limited.headers["Retry-After"] == "20"
    assert limited.headers["X-RateLimit-Limit"] == "2"
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert other_key.status_code == 200
    assert after.status_code == 200


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (500, INJECTED_500),
        (502, "The following service is currently unavailable."),
        (503, "Rate limit exceeded. Please try again later."),
        (429, "Rate limit exceeded. Please try again later."),
    ],
)
def test_fault_status_uses_documented_body(sb: StandIn, status: int, message: str) -> None:
    sb.add_account("alice", 3)
    sb.inject(Fault(status=status))
    response = post(sb, {"handle": "alice"})
    assert response.status_code == status and error_of(response) == message
    if status == 429:
        assert response.headers["Retry-After"] == "1"
        assert response.headers["X-RateLimit-Remaining"] == "0"
    assert post(sb, {"handle": "alice"}).status_code == 200  # consumed


def test_fault_raw_body_headers_and_retry_after(sb: StandIn) -> None:
    sb.add_account("alice", 3)
    sb.inject(Fault(status=503, body="oops", headers={"X-Extra": "1"}, retry_after=2.5))
    response = post(sb, {"handle": "alice"})
    assert response.status_code == 503
    assert response.content == b"oops"
    assert response.headers["X-Extra"] == "1"
    assert response.headers["Retry-After"] == "3"  # whole seconds, as urllib3 expects


def test_fault_html_page(sb: StandIn) -> None:
    sb.add_account("alice", 3)
    sb.inject(Fault(html=True), Fault(html=True, status=504))
    first, second = post(sb, {"handle": "alice"}), post(sb, {"handle": "alice"})
    assert (first.status_code, second.status_code) == (502, 504)
    assert first.headers["Content-Type"] == "text/html"
    assert first.text.startswith("<html>")


def test_fault_truncate_gives_incomplete_body(sb: StandIn, session: requests.Session) -> None:
    sb.add_account("alice", 3)
    sb.inject(Fault(truncate=True))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        post(sb, {"handle": "alice"}, session=session)
    assert post(sb, {"handle": "alice"}, session=session).status_code == 200


def test_fault_reset_is_a_connection_error(sb: StandIn, session: requests.Session) -> None:
    sb.add_account("alice", 3)
    assert post(sb, {"handle": "alice"}, session=session).ok  # a pooled connection to reset
    sb.inject(RESET)
    with pytest.raises(requests.exceptions.ConnectionError):
        post(sb, {"handle": "alice"}, session=session)
    assert sb.requests[-1].status == 0
    assert post(sb, {"handle": "alice"}, session=session).status_code == 200


def test_fault_delay_and_slow_body(sb: StandIn) -> None:
    sb.add_account("alice", 3)
    sb.inject(Fault(delay=0.3))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            sb.endpoint,
            json={"handle": "alice"},
            headers={"Authorization": f"Bearer {sb.api_key}"},
            timeout=0.05,
        )
    sb.inject(Fault(slow_body=0.2))
    started = time.monotonic()
    response = post(sb, {"handle": "alice"})
    assert time.monotonic() - started >= 0.15
    assert len(response.json()["followingList"]) == 3


def test_fault_hang_answers_nothing_until_the_client_gives_up(sb: StandIn) -> None:
    """A read timeout whatever the machine's speed: there is no answer to read late."""
    sb.add_account("alice", 3)
    sb.inject(Fault(hang=True))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(sb.endpoint, json={"handle": "alice"},
                      headers={"Authorization": f"Bearer {sb.api_key}"}, timeout=0.2)
    assert [r.status for r in sb.requests] == [0] and sb.pending_faults() == 0
    assert len(post(sb, {"handle": "alice"}).json()["followingList"]) == 3


def test_fault_stall_cursor(sb: StandIn) -> None:
    sb.add_account("alice", 75)
    first = post(sb, {"handle": "alice", "count": 30}).json()
    sb.inject(Fault(stall_cursor=True))
    body = {"handle": "alice", "count": 30, "minTime": first["minCursor"]}
    stalled = post(sb, body).json()
    assert len(stalled["followingList"]) == 30
    assert stalled["minCursor"] == first["minCursor"] and stalled["hasMore"] is True
    # Without minTime the cursor points back at the top: the same first page again.
    sb.inject(Fault(stall_cursor=True))
    top = post(sb, {"handle": "alice", "count": 30}).json()
    assert ids(post(sb, {"handle": "alice", "count": 30, "minTime": top["minCursor"]}).json()) == (
        ids(first)
    )


def test_fault_empty_page(sb: StandIn) -> None:
    sb.add_account("alice", 75)
    sb.inject(Fault(empty_page=True))
    page = post(sb, {"handle": "alice", "minTime": T0 + 50}).json()
    assert page["followingList"] == [] and page["hasMore"] is True
    assert page["minCursor"] == page["maxCursor"] == T0 + 50


def test_fault_repeat_boundary(sb: StandIn) -> None:
    sb.add_account("alice", 20)
    first = post(sb, {"handle": "alice", "count": 5}).json()
    sb.inject(Fault(repeat_boundary=2))
    second = post(sb, {"handle": "alice", "count": 5, "minTime": first["minCursor"]}).json()
    assert len(second["followingList"]) == 7
    assert ids(second)[:2] == ids(first)[-2:]
    assert (second["maxCursor"], second["minCursor"]) == (T0 + 16, T0 + 10)


def test_fault_malformed_is_free(clock: FakeClock) -> None:
    with StandIn(clock=clock, credits={"sandbox-key": 100}) as sb:
        sb.add_account("alice", 3)
        sb.inject(Fault(malformed=True))
        response = post(sb, {"handle": "alice"})
        assert response.status_code == 200 and response.json() == {"data": None}
        assert sb.credits == {"sandbox-key": 100}


@pytest.mark.parametrize(("fault", "cost"), [
    ("malformed", 0), ("wrong_shape", 0), ("truncate", 0), ("502", 0), ("html", 0),
    ("stall", 10), ("empty", 10), ("far_cursor", 10), ("repeat", 10), ("ok", 10),
])
def test_only_a_usable_page_costs_credits(clock: FakeClock, fault: str, cost: int) -> None:
    with StandIn(clock=clock, credits={"sandbox-key": 100}) as sb:
        sb.add_account("alice", 3)
        sb.inject(*script(fault))
        try:
            post(sb, {"handle": "alice"})
        except requests.RequestException:
            assert fault == "truncate"  # the client sees an incomplete read
        assert sb.credits == {"sandbox-key": 100 - cost}


def test_faults_are_fifo_and_can_target_a_handle(sb: StandIn) -> None:
    sb.add_account("alice", 3)
    sb.add_account("bob", 3)
    sb.inject(*script("502*2, ok, 500"), handle="@Bob")
    statuses = [post(sb, {"handle": h}).status_code for h in ("alice", "bob", "bob", "alice")]
    statuses += [post(sb, {"handle": "bob"}).status_code for _ in range(3)]
    assert statuses == [200, 502, 502, 200, 200, 500, 200]


def test_clear_faults(sb: StandIn) -> None:
    sb.add_account("alice", 3)
    sb.inject(*script("reset, truncate, html, stall, empty, malformed, 429, 503"))
    sb.clear_faults()
    assert post(sb, {"handle": "alice"}).status_code == 200


def test_script_rejects_unknown_names() -> None:
    with pytest.raises(ValueError):
        script("explode")


# --------------------------------------------------------------------------- the world


def test_follow_and_unfollow_change_the_list(sb: StandIn) -> None:
    sb.add_account("alice", 2)
    new = sb.follow("alice")
    assert sb.following("alice")[0]["id"] == new["id"]
    sb.unfollow("alice", new["id"])
    assert new["id"] not in ids(post(sb, {"handle": "alice"}).json())
    # A user without an id is identified by its secUid.
    sb.follow("alice", {"secUid": "MS4wLjABAAAAnoid", "uniqueId": "noid"})
    assert sb.following("alice")[0] == {"secUid": "MS4wLjABAAAAnoid", "uniqueId": "noid"}
    sb.unfollow("alice", "MS4wLjABAAAAnoid")
    assert len(sb.following("alice")) == 2
    with pytest.raises(KeyError):
        sb.unfollow("alice", "missing")


def test_follow_with_explicit_times_and_ties(sb: StandIn) -> None:
    sb.add_account("alice")
    a = sb.follow("alice", sb.make_user(1), at=500)
    b = sb.follow("alice", sb.make_user(2), at=500)  # a tie: later-inserted comes first
    c = sb.follow("alice", sb.make_user(3), at=100)  # back in time: lands last
    d = sb.follow("alice", sb.make_user(4))  # default: newest + 1
    assert [u["uniqueId"] for u in sb.following("alice")] == [
        d["uniqueId"],
        b["uniqueId"],
        a["uniqueId"],
        c["uniqueId"],
    ]
    page = post(sb, {"handle": "alice"}).json()
    assert page["maxCursor"] == 501 and page["minCursor"] == 100
    assert page["followingList"][0]["stats"] == sb.make_user(4)["stats"]


def test_make_user_is_deterministic(sb: StandIn) -> None:
    user = sb.make_user(42)
    assert user == sb.make_user(42)
    assert user["id"] == "7000000000000000042" and user["uniqueId"] == "user42"
    assert user["secUid"] == "MS4wLjABAAAA000000000042"
    assert "followerCount" in user["stats"]


def test_follow_many_and_item_dicts(sb: StandIn) -> None:
    item = {"user": {"id": "7" * 19, "uniqueId": "x"}, "stats": {"followerCount": 1}}
    sb.add_account("alice", [item])
    added = sb.follow_many("alice", 3)
    assert len(added) == 3
    page = post(sb, {"handle": "alice"}).json()
    assert page["followingList"][-1] == item and page["total"] == 4


def test_requests_are_recorded(sb: StandIn) -> None:
    sb.add_account("alice", 1)
    post(sb, {"handle": "@Alice"})
    post(sb, raw=b"junk")
    assert sb.count_requests() == 2 and sb.count_requests("alice") == 1
    first = sb.requests[0]
    assert isinstance(first, RecordedRequest)
    assert first.path == ENDPOINT and first.status == 200
    assert first.body == {"handle": "@Alice"} and json.loads(first.raw) == first.body
    assert first.headers["authorization"] == f"Bearer {sb.api_key}"
    assert sb.requests[1].body is None and sb.requests[1].status == 400
    sb.reset_log()
    assert sb.count_requests() == 0


# --------------------------------------------------------------------------- demo


def test_demo_accounts_grow_with_the_clock(clock: FakeClock) -> None:
    with StandIn(clock=clock, demo=True) as sb:
        before = post(sb, {"handle": "dumpling_demo"}).json()
        busy_before = post(sb, {"handle": "busy_demo"}).json()["total"]
        clock.advance(12)
        after = post(sb, {"handle": "dumpling_demo"}).json()
        busy_after = post(sb, {"handle": "busy_demo"}).json()["total"]
        quiet = post(sb, {"handle": "quiet_demo"}).json()
        private = post(sb, {"handle": "private_demo"})
    assert before["total"] == 120 and after["total"] == 122
    assert (busy_before, busy_after) == (300, 312)
    # Demo cursors are epoch milliseconds.
    assert after["maxCursor"] == int((clock.now - 2) * 1000)
    assert ids(after)[2:] == ids(before)[:28]
    assert quiet["total"] == 40
    assert private.status_code == 404


def test_demo_speed_and_big_demo_depth_cap(clock: FakeClock) -> None:
    with StandIn(clock=clock, demo=True, demo_speed=5) as sb:
        clock.advance(5)
        assert len(sb.following("dumpling_demo")) == 125
        page = post(sb, {"handle": "big_demo", "count": 100}).json()
        while page["hasMore"]:
            page = post(sb, {"handle": "big_demo", "count": 100, "minTime": page["minCursor"]})
            page = page.json()
    assert page["minCursor"] == -1 and page["total"] == 6000


# --------------------------------------------------------------------------- server


def test_keep_alive(sb: StandIn) -> None:
    sb.add_account("alice", 1)
    host, port = sb.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        for _ in range(2):
            conn.request(
                "POST",
                ENDPOINT,
                body=json.dumps({"handle": "alice"}),
                headers={"Authorization": f"Bearer {sb.api_key}"},
            )
            response = conn.getresponse()
            assert response.status == 200 and response.version == 11
            assert not response.will_close
            json.loads(response.read())
        assert conn.sock is not None  # still the same socket
    finally:
        conn.close()


def test_stop_drops_pooled_connections(clock: FakeClock, session: requests.Session) -> None:
    sb = StandIn(clock=clock).start()
    sb.add_account("alice", 1)
    assert post(sb, {"handle": "alice"}, session=session).ok
    endpoint = sb.endpoint
    sb.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(endpoint, json={"handle": "alice"}, timeout=2)


def test_concurrent_requests_are_all_recorded(sb: StandIn) -> None:
    sb.add_account("alice", 40)
    errors: list[BaseException] = []

    def worker() -> None:
        with requests.Session() as session:
            for _ in range(10):
                try:
                    assert post(sb, {"handle": "alice"}, session=session).status_code == 200
                except BaseException as exc:  # collected: asserts in threads are not reported
                    errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sb.count_requests("alice") == 80


def test_only_loopback_hosts() -> None:
    with pytest.raises(ValueError, match=r"only listens on loopback, not '0\.0\.0\.0'"):
        StandIn(host="0.0.0.0")
    with pytest.raises(ValueError, match=r"only listens on loopback, not '192\.0\.2\.1'"):
        serve(host="192.0.2.1")


def test_it_listens_on_the_ipv6_loopback_too() -> None:
    try:
        standin = StandIn(host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with standin:
        standin.add_account("alice", 3)
        assert standin.url.startswith("http://[::1]:")
        assert len(post(standin, {"handle": "alice"}).json()["followingList"]) == 3


@pytest.mark.slow
def test_serve_prints_and_stops_on_ctrl_c() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler in children: restore it, as a terminal would have it.
    code = (
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from connector.standin import serve; serve(port=0)"
    )
    proc = start([sys.executable, "-c", code], key=None)
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(5)]
        url = lines[0].split()[-1]
        assert "sandbox-key" in lines[2] and "dumpling_demo" in lines[3]
        response = requests.post(
            url + ENDPOINT,
            json={"handle": "quiet_demo"},
            headers={"Authorization": "Bearer sandbox-key"},
            timeout=5,
        )
        assert response.json()["total"] == 40
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()


def test_the_churn_demo_account_also_unfollows_with_the_clock(clock: FakeClock) -> None:
    from connector.standin.world import World

    start = clock()
    worlds = [World(demo=True, clock=clock, demo_epoch=start) for _ in range(2)]
    clock.advance(61)  # 15 follows (every 4 s) and 10 unfollows (every 6 s)
    for world in worlds:
        world.materialize(world.accounts["churn_demo"])
    first, second = (w.following("churn_demo") for w in worlds)
    assert len(first) == 150 + 15 - 10
    assert first == second  # the same clock gives every process the same list
