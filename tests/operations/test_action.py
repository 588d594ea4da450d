"""The action "Get TikTok User Following" through `connector.run`, as a runner calls it.

Tests marked `vcr` replay a cassette of the stand-in, scripted the same way as when it was
recorded; the others run against the live stand-in on loopback.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import connector
from connector.core.errors import (
    ConfigurationError,
    InputError,
    NotFoundError,
    ServerError,
    TransportError,
)
from connector.operations import prepare
from connector.standin import EMPTY_PAGE, OK, RESET, STALL, Fault, StandIn
from tests.support import ITEM_FIELDS

ACTION = "get_tiktok_user_following"
T0 = 1_700_000_000  # the stand-in's first follow time


def sent_bodies(cassette: Any) -> list[dict[str, Any]]:
    """The JSON bodies of the requests in the cassette, in order (recorded or replayed)."""
    return [json.loads(r.body) for r in cassette.requests]


def answered(cassette: Any) -> list[dict[str, Any]]:
    return [json.loads(r["body"]["string"]) for r in cassette.responses]


def handles_of(items: list[dict[str, Any]]) -> list[str]:
    return [item["uniqueId"] for item in items]


# --------------------------------------------------------------------------- on cassettes


@pytest.mark.vcr
def test_one_page_gives_flat_items_newest_first(standin, creds, vcr, assert_valid_items) -> None:
    standin.add_account("alice", 5)
    result = connector.run(ACTION, {"handle": "alice"}, credentials=creds)

    assert handles_of(result.items) == ["user5", "user4", "user3", "user2", "user1"]
    assert_valid_items(result.items)
    first = result.items[0]
    assert list(first) == ITEM_FIELDS
    assert first["id"] == standin.following("alice")[0]["id"]
    assert isinstance(first["id"], str) and int(first["id"]) > 2**53
    assert first["profileUrl"] == "https://www.tiktok.com/@user5"
    assert isinstance(first["followerCount"], int)
    assert result.meta == {
        "handle": "alice",
        "requests": 1,
        "creditsUsed": 10,
        "pages": 1,
        "hasMore": False,
        "nextCursor": None,
        "stopReason": "end",
        "total": 5,
        "rateLimitLimit": 6000,
        "rateLimitRemaining": 5999,
        "warnings": [],
    }
    assert result.state is None
    assert sent_bodies(vcr) == [{"handle": "alice", "requestSource": "API"}]


@pytest.mark.vcr
def test_several_pages_follow_min_cursor_as_min_time(
    standin, creds, vcr, assert_valid_items
) -> None:
    standin.add_account("alice", 75)
    result = connector.run(
        ACTION, {"handle": "alice", "count": 30, "maxPages": 5}, credentials=creds
    )

    assert [i["id"] for i in result.items] == [u["id"] for u in standin.following("alice")]
    assert len(set(i["id"] for i in result.items)) == 75
    assert_valid_items(result.items)
    bodies, pages = sent_bodies(vcr), answered(vcr)
    assert [len(p["followingList"]) for p in pages] == [30, 30, 15]
    # CONTRACT 1: page n+1 is asked for with page n's minCursor as minTime.
    assert "minTime" not in bodies[0]
    assert bodies[1]["minTime"] == pages[0]["minCursor"] == T0 + 45
    assert bodies[2]["minTime"] == pages[1]["minCursor"] == T0 + 15
    assert all(b["count"] == 30 for b in bodies)
    meta = result.meta
    assert (meta["pages"], meta["requests"], meta["creditsUsed"]) == (3, 3, 30)
    assert (meta["hasMore"], meta["nextCursor"], meta["stopReason"]) == (False, None, "end")


@pytest.mark.vcr
def test_a_cursor_handed_back_again_stops_the_walk(standin, creds, vcr) -> None:
    standin.add_account("alice", 60)
    standin.inject(OK, STALL)  # page 2 answers hasMore true with the minTime it was sent
    result = connector.run(
        ACTION, {"handle": "alice", "count": 10, "maxPages": 10}, credentials=creds
    )

    assert len(result.items) == 20
    assert result.meta["stopReason"] == "bad_cursor"
    assert result.meta["hasMore"] is False
    assert (result.meta["pages"], result.meta["creditsUsed"]) == (2, 20)
    bodies, pages = sent_bodies(vcr), answered(vcr)
    assert pages[1]["hasMore"] is True
    assert pages[1]["minCursor"] == bodies[1]["minTime"]
    assert len(bodies) == 2  # no third request for the same cursor


@pytest.mark.vcr
def test_an_empty_page_with_has_more_true_stops_the_walk(standin, creds, vcr) -> None:
    standin.add_account("alice", 60)
    standin.inject(OK, EMPTY_PAGE)
    result = connector.run(
        ACTION, {"handle": "alice", "count": 10, "maxPages": 10}, credentials=creds
    )

    assert handles_of(result.items) == [f"user{n}" for n in range(60, 50, -1)]
    assert result.meta["stopReason"] == "empty_page"
    assert result.meta["hasMore"] is False
    assert (result.meta["pages"], result.meta["creditsUsed"]) == (2, 20)
    pages = answered(vcr)
    assert pages[1]["followingList"] == [] and pages[1]["hasMore"] is True
    assert len(pages) == 2


@pytest.mark.vcr
def test_every_handle_form_asks_for_the_same_account(standin, creds, vcr) -> None:
    standin.add_account("alice.b", 3)
    forms = [
        "alice.b",
        "@alice.b",
        "  @Alice.B ",
        "https://www.tiktok.com/@alice.b?lang=en",
        "www.tiktok.com/@alice.b/",
    ]
    results = [connector.run(ACTION, {"handle": f}, credentials=creds) for f in forms]

    assert [b["handle"] for b in sent_bodies(vcr)] == ["alice.b"] * len(forms)
    assert all(r.meta["handle"] == "alice.b" for r in results)
    assert all(r.items == results[0].items for r in results)
    assert len(results[0].items) == 3


@pytest.mark.vcr
def test_accounts_repeated_at_a_page_boundary_are_emitted_once(standin, creds, vcr) -> None:
    standin.add_account("alice", 25, boundary_repeats=True)
    result = connector.run(
        ACTION, {"handle": "alice", "count": 10, "maxPages": 5}, credentials=creds
    )

    pages = answered(vcr)
    ids = [i["id"] for i in result.items]
    # Each page after the first starts with the previous page's last account.
    assert pages[1]["followingList"][0] == pages[0]["followingList"][-1]
    assert len(ids) == len(set(ids)) == 25
    assert ids == [u["id"] for u in standin.following("alice")]


@pytest.mark.vcr
def test_a_missing_following_list_is_not_found_with_the_server_message(standin, creds, vcr) -> None:
    with pytest.raises(NotFoundError) as caught:
        connector.run(ACTION, {"handle": "@ghost"}, credentials=creds)
    assert caught.value.server_message == "Following list not found for user: ghost"
    assert caught.value.partial.items == [] and caught.value.partial.pages == 0
    assert len(vcr.requests) == 1


# --------------------------------------------------------------------------- invalid input


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ({}, "handle", "handle is required"),
        ({"handle": "bad handle!"}, "handle", "is not a TikTok handle"),
        ({"handle": ""}, "handle", "handle is required"),
        ({"handle": 42}, "handle", "handle is required"),
        ({"handle": "alice", "count": 0}, "count", "at least 1"),
        ({"handle": "alice", "count": 101}, "count", "at most 100"),
        ({"handle": "alice", "count": "abc"}, "count", "must be an integer"),
        ({"handle": "alice", "count": 2.5}, "count", "must be an integer"),
        ({"handle": "alice", "requestSource": "FOO"}, "requestSource", "must be one of"),
        ({"handle": "alice", "requestSource": "zapier"}, "requestSource", "must be one of"),
        ({"handle": "alice", "pageSize": 10}, "pageSize", "unknown input 'pageSize'"),
        ({"handle": "alice", "maxPages": 0}, "maxPages", "at least 1"),
        ({"handle": "alice", "maxItems": "0"}, "maxItems", "at least 1"),
        ({"handle": "alice", "minTime": "yesterday"}, "minTime", "must be a number"),
        ({"handle": "alice", "minTime": "nan"}, "minTime", "must be a number"),
        ({"handle": "alice", "minTime": float("inf")}, "minTime", "finite"),
        ({"handle": "alice", "minTime": True}, "minTime", "must be a number"),
    ],
)
def test_invalid_input_is_refused_before_any_request(
    standin, creds, inputs: dict[str, Any], field: str, words: str
) -> None:
    standin.add_account("alice", 3)
    with pytest.raises(InputError) as caught:
        connector.run(ACTION, inputs, credentials=creds)
    assert caught.value.field == field
    assert field in caught.value.message
    assert words in caught.value.message
    assert caught.value.sent_nothing
    assert standin.count_requests() == 0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"platform": "ifttt"}, "platform"),
        ({"platform": ["zapier"]}, "platform"),
        ({"mode": "dry-run"}, "mode"),
    ],
)
def test_an_unknown_platform_or_mode_is_refused_before_any_request(
    standin, creds, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InputError) as caught:
        connector.run(ACTION, {"handle": "alice"}, credentials=creds, **options)
    assert caught.value.field == field
    assert standin.count_requests() == 0


@pytest.mark.parametrize("inputs", [["handle", "alice"], "alice", 5])
def test_inputs_that_are_not_an_object_are_refused_as_inputs(standin, creds, inputs: Any) -> None:
    with pytest.raises(InputError) as caught:
        connector.run(ACTION, inputs, credentials=creds)
    assert caught.value.field == "inputs"
    assert standin.count_requests() == 0


def test_an_unknown_operation_is_refused_and_the_known_ones_listed(standin, creds) -> None:
    with pytest.raises(InputError) as caught:
        connector.run("get_followers", {"handle": "alice"}, credentials=creds)
    assert caught.value.field == "operation"
    assert "get_tiktok_user_following" in caught.value.message
    assert standin.count_requests() == 0


def test_missing_credentials_are_refused_before_any_request(standin, monkeypatch) -> None:
    monkeypatch.delenv("DUMPLINGAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError) as caught:
        connector.run(ACTION, {"handle": "alice"}, credentials={"baseUrl": standin.url})
    assert caught.value.to_dict()["field"] == "apiKey"
    assert standin.count_requests() == 0


# --------------------------------------------------------------------------- form values


def test_form_strings_are_coerced_and_blanks_mean_unset(standin, creds) -> None:
    standin.add_account("alice", 50)
    inputs = {"handle": "alice", "count": " 20 ", "maxPages": "2", "maxItems": "", "minTime": ""}
    result = connector.run(ACTION, inputs, credentials=creds)
    bodies = [r.body for r in standin.requests]
    assert bodies[0] == {"handle": "alice", "count": 20, "requestSource": "API"}
    assert len(bodies) == 2 and len(result.items) == 40


def test_a_start_cursor_typed_as_text_is_sent_as_the_number(standin, creds) -> None:
    standin.add_account("alice", 10)
    result = connector.run(ACTION, {"handle": "alice", "minTime": str(T0 + 5)}, credentials=creds)
    (request,) = standin.requests
    assert request.body["minTime"] == T0 + 5
    assert isinstance(request.body["minTime"], int)
    assert handles_of(result.items) == ["user5", "user4", "user3", "user2", "user1"]


def test_defaults_come_from_the_manifest() -> None:
    values, source = prepare(ACTION, {"handle": "@Alice"})
    assert values == {"handle": "alice", "maxPages": 1}
    assert source == "API"


# --------------------------------------------------------------------------- requestSource


@pytest.mark.parametrize(
    ("platform", "source"),
    [("zapier", "ZAPIER"), ("n8n", "N8N"), ("make", "MAKE_DOT_COM"), (None, "API"), ("api", "API")],
)
def test_request_source_follows_the_platform(standin, creds, platform, source) -> None:
    standin.add_account("alice", 1)
    connector.run(ACTION, {"handle": "alice"}, credentials=creds, platform=platform)
    assert [r.body["requestSource"] for r in standin.requests] == [source]


def test_an_explicit_request_source_is_sent_on_every_page(standin, creds) -> None:
    standin.add_account("alice", 5)
    inputs = {"handle": "alice", "count": 2, "maxPages": 3, "requestSource": "MAKE_DOT_COM"}
    connector.run(ACTION, inputs, credentials=creds, platform="zapier")
    assert [r.body["requestSource"] for r in standin.requests] == ["MAKE_DOT_COM"] * 3


def test_a_request_source_users_do_not_choose_is_refused_by_name_before_sending(
        standin, creds) -> None:
    # The endpoint knows sources of DumplingAI's own (STUDIO, PLAYGROUND...): not a choice for
    # a runner's user, so the form does not offer them and the connector refuses them.
    with pytest.raises(connector.InputError) as caught:
        connector.run(ACTION, {"handle": "alice", "requestSource": "STUDIO"}, credentials=creds)
    assert caught.value.field == "requestSource"
    assert "must be one of API, N8N, ZAPIER, MAKE_DOT_COM" in caught.value.message
    assert standin.requests == []


def test_an_unknown_platform_is_refused_even_when_a_request_source_is_chosen(
        standin, creds) -> None:
    # The chosen requestSource wins over the platform's, but never hides a platform typo.
    with pytest.raises(connector.InputError) as caught:
        connector.run(ACTION, {"handle": "alice", "requestSource": "API"}, credentials=creds,
                      platform="ifttt")
    assert caught.value.field == "platform"
    assert standin.requests == []


# --------------------------------------------------------------------------- caps


def test_max_pages_caps_the_requests_and_hands_out_the_cursor_to_continue(standin, creds) -> None:
    standin.add_account("alice", 100)
    result = connector.run(
        ACTION, {"handle": "alice", "count": 10, "maxPages": 3}, credentials=creds
    )
    assert len(result.items) == 30 and standin.count_requests() == 3
    meta = result.meta
    assert (meta["stopReason"], meta["hasMore"], meta["nextCursor"]) == ("max_pages", True, T0 + 70)
    rest = connector.run(
        ACTION,
        {"handle": "alice", "count": 10, "minTime": meta["nextCursor"]},
        credentials=creds,
    )
    assert handles_of(rest.items) == [f"user{n}" for n in range(70, 60, -1)]


def test_max_items_stops_once_enough_accounts_are_collected(
    standin, creds, assert_valid_items
) -> None:
    standin.add_account("alice", 100)
    result = connector.run(
        ACTION, {"handle": "alice", "count": 10, "maxPages": 50, "maxItems": 25}, credentials=creds
    )
    assert handles_of(result.items) == [f"user{n}" for n in range(100, 75, -1)]
    assert_valid_items(result.items)
    assert standin.count_requests() == 3
    meta = result.meta
    assert (meta["stopReason"], meta["hasMore"], meta["creditsUsed"]) == ("max_items", True, 30)
    # The third page was cut short; resuming reads it again so nothing is skipped.
    assert meta["nextCursor"] == standin.requests[2].body["minTime"]


def test_max_items_at_the_end_of_the_list_says_there_is_no_more(standin, creds) -> None:
    standin.add_account("alice", 20)
    result = connector.run(
        ACTION, {"handle": "alice", "count": 10, "maxPages": 5, "maxItems": 20}, credentials=creds
    )
    assert len(result.items) == 20
    assert (result.meta["hasMore"], result.meta["nextCursor"]) == (False, None)


def test_the_depth_cap_ends_the_walk(creds) -> None:
    with StandIn(api_keys=(creds["apiKey"],), depth_cap=25) as server:
        server.add_account("alice", 40)
        result = connector.run(
            ACTION,
            {"handle": "alice", "count": 10, "maxPages": 10},
            credentials={**creds, "baseUrl": server.url},
        )
    assert len(result.items) == 25
    assert server.requests[-1].body["minTime"] > 0  # never -1, the cap's own cursor
    assert (result.meta["hasMore"], result.meta["nextCursor"]) == (False, None)
    assert result.meta["total"] == 40  # the following count, not what can be fetched


def test_test_mode_reads_one_page_and_at_most_three_items(
    standin, creds, assert_valid_items
) -> None:
    standin.add_account("alice", 50)
    state = {"kept": ["as", "is"]}
    result = connector.run(
        ACTION, {"handle": "alice", "maxPages": 5}, credentials=creds, mode="test", state=state
    )
    assert handles_of(result.items) == ["user50", "user49", "user48"]
    assert_valid_items(result.items)
    assert standin.count_requests() == 1
    assert result.state == state


def test_the_action_keeps_no_state_and_hands_back_what_it_got(standin, creds) -> None:
    standin.add_account("alice", 1)
    state = {"cursor": 5}
    result = connector.run(ACTION, {"handle": "alice"}, credentials=creds, state=state)
    assert result.state is state


# --------------------------------------------------------------------------- errors mid-way


def test_an_error_mid_way_keeps_the_items_and_resumes_without_starting_over(
    standin, creds, fast_retry, assert_valid_items
) -> None:
    standin.add_account("alice", 50)
    standin.inject(OK, OK, *[Fault(status=500)] * 4)  # page 3 fails on every attempt
    inputs = {"handle": "alice", "count": 10, "maxPages": 10}
    with pytest.raises(ServerError) as caught:
        connector.run(ACTION, inputs, credentials=creds, retry=fast_retry)

    partial = caught.value.partial
    assert handles_of(partial.items) == [f"user{n}" for n in range(50, 30, -1)]
    assert partial.pages == 2
    assert partial.next_cursor == T0 + 30  # the cursor of the page that failed
    assert partial.to_dict()["creditsUsed"] == 20

    standin.reset_log()
    rest = connector.run(
        ACTION, {**inputs, "minTime": partial.next_cursor}, credentials=creds, retry=fast_retry
    )
    assert standin.requests[0].body["minTime"] == partial.next_cursor
    everything = partial.items + rest.items
    assert_valid_items(everything)
    assert [i["id"] for i in everything] == [u["id"] for u in standin.following("alice")]


def test_a_transport_error_mid_way_keeps_the_items_too(standin, creds, fast_retry) -> None:
    standin.add_account("alice", 30)
    standin.inject(OK, *[RESET] * 4)
    with pytest.raises(TransportError) as caught:
        connector.run(
            ACTION,
            {"handle": "alice", "count": 10, "maxPages": 3},
            credentials=creds,
            retry=fast_retry,
        )
    assert len(caught.value.partial.items) == 10
    assert caught.value.partial.next_cursor == T0 + 20


# --------------------------------------------------------------------------- item shape


def test_ids_beyond_2_to_the_53_stay_exact_strings(standin, creds, assert_valid_items) -> None:
    big = 7_234_567_890_123_456_789
    standin.add_account(
        "alice",
        [
            {"id": big, "uniqueId": "numeric_id"},  # a JSON number, not a string
            {"id": str(big + 1), "uniqueId": "string_id"},
        ],
    )
    result = connector.run(ACTION, {"handle": "alice"}, credentials=creds)
    assert [i["id"] for i in result.items] == [str(big + 1), str(big)]
    assert_valid_items(result.items)


def test_missing_fields_come_out_as_null_and_an_account_without_id_keeps_its_sec_uid(
    standin, creds, assert_valid_items
) -> None:
    standin.add_account("alice", [{"secUid": "MS4wLjABAAAAnoid"}])
    (item,) = connector.run(ACTION, {"handle": "alice"}, credentials=creds).items
    assert item["id"] is None and item["secUid"] == "MS4wLjABAAAAnoid"
    assert item["uniqueId"] is None and item["profileUrl"] is None
    assert item["followerCount"] is None
    assert_valid_items([item])
