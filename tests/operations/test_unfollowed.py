"""The "Account Unfollowed" trigger: multi-poll histories against the stand-in.

Every scenario checks the promises of issue 10: each unfollow of an account the trigger has
seen is emitted once (a second unfollow after a re-follow is a second event), nothing on the
baseline, and a poll with nothing unfollowed costs what the follow trigger's costs:
ceil((n + 1) / p) requests for n new follows, one when nothing changed.
"""

from __future__ import annotations

import copy
import json

import pytest

import connector
from connector.operations.events import new_event
from connector.standin import StandIn, script
from tests.operations.poller import HANDLE, UNFOLLOWS, P, Poller, by_name, names, pages
from tests.support import API_KEY, ITEM_FIELDS

OPERATION = UNFOLLOWS


def unfollows(standin: StandIn, creds: dict, **inputs) -> Poller:
    return Poller(standin, creds, UNFOLLOWS, key=by_name, **inputs)


@pytest.fixture
def world(standin, creds) -> Poller:
    standin.add_account(HANDLE, 57)
    return unfollows(standin, creds)


# The baseline and the steady state


def test_the_first_poll_reads_the_whole_list_once_and_emits_nothing(world):
    result = world.poll()
    assert result.items == [] and result.meta["baseline"] is True
    assert world.requests == [pages(57)]
    assert result.meta["tracked"] == 57 and result.meta["fullRead"] is True
    assert result.meta["unfollows"] == 0 and result.meta["readingList"] is False


def test_test_mode_meta_reports_one_page_read_and_nothing_tracked(standin, creds):
    standin.add_account(HANDLE, 57)
    result = connector.run(OPERATION, {"handle": HANDLE}, mode="test", credentials=creds)
    meta = {k: v for k, v in result.meta.items() if not k.startswith("rateLimit")}
    assert meta == {
        "handle": HANDLE, "requests": 1, "pages": 1, "creditsUsed": 10, "unfollows": 0,
        "followsSeen": 0, "baseline": False, "check": None, "total": None,
        "expectedTotal": None, "fullRead": False, "readingList": False, "tracked": 0,
        "unlisted": 0, "atDepthCap": False, "unfoundUnfollows": 0, "droppedAtCap": 0,
        "catchingUp": False, "pendingGaps": 0, "warnings": [], "mode": "test",
        "sampleItems": 3}
    assert list(result.meta)[-2:] == ["mode", "sampleItems"]


# Unfollows


def test_an_unfollow_is_emitted_once_as_the_account_was_last_seen(world):
    world.poll()
    gone = world.standin.following(HANDLE)[30]
    world.standin.unfollow(HANDLE, gone["id"])
    result = world.poll()
    (item,) = result.items
    assert list(item)[: len(ITEM_FIELDS)] == ITEM_FIELDS
    assert item["id"] == gone["id"] and item["uniqueId"] == gone["uniqueId"]
    made = world.standin.make_user(int(gone["uniqueId"].removeprefix("user")))
    assert item["followerCount"] == made["stats"]["followerCount"]
    assert item["nickname"] == gone["nickname"] and item["secUid"] == gone["secUid"]
    assert item["profileUrl"] == f"https://www.tiktok.com/@{gone['uniqueId']}"
    assert item["lastSeenAt"] < item["detectedAt"]
    assert result.meta["check"] == "short" and result.meta["unfollows"] == 1
    # The read stops once the count's one missing account is found: page 4 holds it.
    assert world.requests[-1] == 4
    assert world.poll().items == [] and world.requests[-1] == 1


def test_several_unfollows_come_oldest_follow_first(world):
    world.poll()
    listed = world.standin.following(HANDLE)
    chosen = [listed[i] for i in (2, 25, 50)]  # newest first
    for user in chosen:
        world.standin.unfollow(HANDLE, user["id"])
    result = world.poll()
    assert names(result.items) == names(reversed(chosen))
    assert world.requests[-1] == pages(57 - 3)  # the oldest is on the last page


def test_an_unfollow_of_a_recent_follow_costs_little(world):
    world.poll()
    new = world.standin.follow_many(HANDLE, 3)
    world.poll()
    world.standin.unfollow(HANDLE, new[0]["id"])
    result = world.poll()
    assert names(result.items) == [new[0]["uniqueId"]]
    assert world.requests[-1] == 1  # found on the first page, which the poll reads anyway


def test_follows_and_an_unfollow_in_one_interval_are_told_apart(world):
    world.poll()
    gone = world.standin.following(HANDLE)[40]
    world.standin.unfollow(HANDLE, gone["id"])
    world.standin.follow_many(HANDLE, 1)  # the count is unchanged: 57 - 1 + 1
    result = world.poll()
    assert names(result.items) == [gone["uniqueId"]]
    assert result.meta["total"] == 57 and result.meta["expectedTotal"] == 58
    assert world.poll().items == [] and world.requests[-1] == 1


def test_more_follows_than_a_page_and_unfollows_in_one_interval(world):
    world.poll()
    listed = world.standin.following(HANDLE)
    for user in (listed[0], listed[56]):
        world.standin.unfollow(HANDLE, user["id"])
    world.standin.follow_many(HANDLE, 2 * P + 5)
    result = world.poll()
    assert names(result.items) == [listed[56]["uniqueId"], listed[0]["uniqueId"]]
    assert world.poll().items == [] and world.requests[-1] == 1


def test_unfollow_refollow_unfollow_is_two_events_with_two_event_ids(world):
    world.poll()
    user = world.standin.following(HANDLE)[20]
    world.standin.unfollow(HANDLE, user["id"])
    first = world.poll().items
    world.standin.follow(HANDLE, user)
    assert world.poll().items == [] and world.requests[-1] == 1
    world.standin.unfollow(HANDLE, user["id"])
    second = world.poll().items
    assert names(first) == names(second) == [user["uniqueId"]]
    assert world.emitted == [user["uniqueId"]] * 2
    ids = {new_event(HANDLE, item, detected_at="now", kind="unfollowed")[0]
           for item in first + second}
    assert len(ids) == 2  # the receiver keeps both: two unfollows, not one repeated


def test_an_unfollow_undone_before_the_next_poll_is_not_an_event(world):
    world.poll()
    user = world.standin.following(HANDLE)[20]
    world.standin.unfollow(HANDLE, user["id"])
    world.standin.follow(HANDLE, user)
    result = world.poll()
    assert result.items == [] and result.meta["check"] == "agreed"
    assert world.requests[-1] == 1
    world.standin.unfollow(HANDLE, user["id"])
    assert names(world.poll().items) == [user["uniqueId"]]


def test_a_follow_made_and_unfollowed_between_polls_is_not_an_event(world):
    world.poll()
    (user,) = world.standin.follow_many(HANDLE, 1)
    world.standin.unfollow(HANDLE, user["id"])
    result = world.poll()
    assert result.items == [] and world.requests[-1] == 1  # never seen: nothing to emit


def test_a_mass_unfollow_is_emitted_whole(world):
    world.poll()
    listed = world.standin.following(HANDLE)
    for user in listed[::2]:
        world.standin.unfollow(HANDLE, user["id"])
    result = world.poll()
    assert sorted(names(result.items)) == sorted(names(listed[::2]))
    assert world.poll().items == []


# When the count lies


def test_a_stale_count_higher_then_lower_emits_only_real_unfollows(world):
    world.poll()
    world.standin.set_total(HANDLE, 60)  # runs 3 ahead
    higher = world.poll()
    assert higher.items == [] and higher.meta["check"] == "higher"
    assert world.requests[-1] == 1  # a higher count is not an unfollow: nothing is read
    gone = world.standin.following(HANDLE)[10]
    world.standin.unfollow(HANDLE, gone["id"])
    world.standin.set_total(HANDLE, None)  # back to the truth: 56, 4 short of 60
    lower = world.poll()
    assert names(lower.items) == [gone["uniqueId"]]
    assert lower.meta["fullRead"] is True  # only one of the 4 was found: read to the end
    assert world.poll().items == [] and world.requests[-1] == 1


def test_a_count_that_lags_behind_unfollows_finds_them_when_it_catches_up(world):
    world.poll()
    world.standin.set_total(HANDLE, 57)  # frozen
    gone = world.standin.following(HANDLE)[15]
    world.standin.unfollow(HANDLE, gone["id"])
    assert world.poll().items == [] and world.requests[-1] == 1  # the count still agrees
    world.standin.set_total(HANDLE, None)
    assert names(world.poll().items) == [gone["uniqueId"]]


def test_a_count_that_lags_behind_follows_costs_one_full_read_and_no_event(world):
    world.poll()
    world.standin.set_total(HANDLE, 57)  # frozen while 3 follows arrive
    world.standin.follow_many(HANDLE, 3)
    short = world.poll()
    assert short.items == [] and short.meta["check"] == "short"
    assert short.meta["fullRead"] is True
    assert any("lags" in w for w in short.meta["warnings"])
    assert world.poll().items == [] and world.requests[-1] == 1  # taken as lagging: adopted
    world.standin.set_total(HANDLE, None)  # catches up: higher, not an unfollow
    caught_up = world.poll()
    assert caught_up.items == [] and caught_up.meta["check"] == "higher"
    assert world.requests[-1] == 1


def test_a_missing_count_falls_back_to_the_periodic_full_read(world):
    world.inputs["reconcileEvery"] = 3
    world.poll()
    world.standin.set_total(HANDLE, "missing")
    gone = world.standin.following(HANDLE)[33]
    world.standin.unfollow(HANDLE, gone["id"])
    first = world.poll()
    assert first.items == [] and first.meta["check"] == "noTotal"
    assert any("every 3 polls" in w for w in first.meta["warnings"])
    assert world.poll().items == []
    third = world.poll()
    assert names(third.items) == [gone["uniqueId"]] and third.meta["fullRead"] is True
    assert world.requests[1:] == [1, 1, pages(56)]


def test_a_missing_count_with_full_reads_off_says_unfollows_cannot_be_found(world):
    world.poll()
    world.standin.set_total(HANDLE, "missing")
    result = world.poll(reconcileEvery=0)
    assert any("none will be found" in w for w in result.meta["warnings"])


def test_every_full_read_re_syncs_even_when_the_count_agrees(world):
    world.inputs["reconcileEvery"] = 2
    world.poll()
    world.standin.set_total(HANDLE, 57)  # frozen: an unfollow does not show in it
    gone = world.standin.following(HANDLE)[44]
    world.standin.unfollow(HANDLE, gone["id"])
    assert world.poll().items == []
    second = world.poll()
    assert names(second.items) == [gone["uniqueId"]] and second.meta["fullRead"] is True
    # The frozen count is now one above the list: adopted, the next polls are quiet.
    assert world.poll().items == [] and world.requests[-1] == 1


# The depth cap


def test_beyond_the_depth_cap_unfollows_cannot_be_seen_and_are_counted():
    with StandIn(api_keys=(API_KEY,), depth_cap=40) as standin:
        standin.add_account(HANDLE, 55)
        world = unfollows(standin, {"apiKey": API_KEY, "baseUrl": standin.url})
        first = world.poll()
        assert world.requests == [pages(40)] and first.items == []
        assert first.meta["tracked"] == 40 and first.meta["unlisted"] == 15
        assert first.meta["atDepthCap"] is True
        assert any("depth cap" in w for w in first.meta["warnings"])
        listed = standin.following(HANDLE)
        standin.unfollow(HANDLE, listed[50]["id"])  # below the cap
        standin.unfollow(HANDLE, listed[5]["id"])  # above it
        result = world.poll()
        assert names(result.items) == [listed[5]["uniqueId"]]
        assert result.meta["unfoundUnfollows"] == 1
        assert any("below the depth cap" in w for w in result.meta["warnings"])
        assert world.poll().items == [] and world.requests[-1] == 1


def test_follows_that_push_seen_accounts_below_the_cap_are_not_unfollows():
    with StandIn(api_keys=(API_KEY,), depth_cap=40) as standin:
        standin.add_account(HANDLE, 38)
        world = unfollows(standin, {"apiKey": API_KEY, "baseUrl": standin.url})
        world.poll()
        standin.follow_many(HANDLE, 7)  # the 5 oldest seen accounts fall below the cap
        assert world.poll().items == []
        gone = standin.following(HANDLE)[3]
        standin.unfollow(HANDLE, gone["id"])
        result = world.poll()
        assert names(result.items) == [gone["uniqueId"]]
        assert result.meta["fullRead"] is False  # found high up: the read stopped there
        full = world.poll(reconcileEvery=1)
        assert full.items == [] and full.meta["fullRead"] is True
        assert full.meta["droppedAtCap"] == 4  # out of sight, not unfollowed
        assert full.meta["tracked"] == 40 and full.meta["unlisted"] == 4
        assert world.poll().items == [] and world.requests[-1] == 1
        assert world.emitted == [gone["uniqueId"]]


# Budgets, failures and state


def test_a_list_bigger_than_the_budget_is_read_over_several_polls(standin, creds):
    standin.add_account(HANDLE, 95)
    world = unfollows(standin, creds, maxPages=3)
    first = world.poll()
    assert first.meta["readingList"] is True and first.meta["baseline"] is True
    during = standin.following(HANDLE)[2]  # seen on the first poll, unfollowed mid-baseline
    standin.unfollow(HANDLE, during["id"])
    while world.poll().meta["readingList"]:
        assert len(world.requests) < 10
    assert world.requests[:4] == [3, 3, 3, 3] and sum(world.requests[:4]) >= pages(95)
    for _ in range(6):
        world.poll()
    assert world.emitted == [during["uniqueId"]]
    listed = standin.following(HANDLE)
    standin.unfollow(HANDLE, listed[80]["id"])
    for _ in range(6):
        world.poll()
    assert world.emitted == [during["uniqueId"], listed[80]["uniqueId"]]
    assert max(world.requests) <= 3 and world.requests[-1] == 1


@pytest.mark.parametrize("fault", ["500", "503", "reset", "malformed", "stall", "empty"])
def test_a_read_the_upstream_breaks_off_goes_on_later_and_loses_nothing(world, fault):
    world.poll()
    gone = world.standin.following(HANDLE)[50]
    world.standin.unfollow(HANDLE, gone["id"])
    world.standin.inject(*script(f"ok, ok, {fault}*5"))
    broken = world.poll()
    world.standin.clear_faults()
    assert broken.items == [] and broken.meta["readingList"] is True
    assert any("broke off" in w for w in broken.meta["warnings"])
    for _ in range(3):
        world.poll()
    assert world.emitted == [gone["uniqueId"]]


# Damage of this trigger's own fields (test_triggers.py has what both triggers refuse alike).
@pytest.mark.parametrize(
    "bad, message",
    [
        ({"v": 2, "handle": HANDLE, "known": [], "gaps": []}, "Account Unfollowed"),
        ({"v": 1, "trigger": OPERATION, "handle": HANDLE, "accounts": ["abc"]}, "damaged"),
        ({"v": 1, "trigger": OPERATION, "handle": HANDLE, "offset": "3"}, "damaged"),
        ({"v": 1, "trigger": OPERATION, "handle": HANDLE, "capped": 1}, "'capped'"),
        ({"v": 1, "trigger": OPERATION, "handle": HANDLE, "scan": {"mode": "x"}}, "damaged"),
    ],
)
def test_bad_state_is_an_error_before_any_request(standin, creds, bad, message):
    standin.add_account(HANDLE, 5)
    with pytest.raises(connector.StateError, match=message):
        connector.run(OPERATION, {"handle": HANDLE}, credentials=creds, state=bad)
    assert standin.count_requests() == 0


def test_a_block_of_accounts_that_does_not_decode_is_damage(world):
    world.poll()
    state = copy.deepcopy(world.state)
    block = state["accounts"][0]
    state["accounts"][0] = block[:-5] + "AAAAA"
    before = world.standin.count_requests()
    with pytest.raises(connector.StateError, match="accounts"):
        connector.run(OPERATION, world.inputs, credentials=world.creds, state=state)
    assert world.standin.count_requests() == before


def test_state_at_5000_followed_accounts_stays_compact(standin, creds):
    standin.add_account(HANDLE, 5000)
    world = unfollows(standin, creds, count=100, maxPages=60)
    world.poll()
    assert world.requests == [50]
    size = len(json.dumps(world.state))
    # Stand-in fields are short: about 46 B per account. Real ones take about 260 B
    # (docs/unfollows.md, measured by `python benchmarks/run.py --only unfollows`).
    assert size < 300 * 1024, size
    world.standin.follow_many(HANDLE, 3)
    world.poll()
    assert world.requests[-1] == 1


def test_many_accounts_pushed_below_the_cap_start_a_full_read_that_drops_them(monkeypatch):
    from connector.operations import unfollowed

    monkeypatch.setattr(unfollowed, "TRACK_LIMIT", 45)
    with StandIn(api_keys=(API_KEY,), depth_cap=40) as standin:
        standin.add_account(HANDLE, 40)
        world = unfollows(standin, {"apiKey": API_KEY, "baseUrl": standin.url},
                       reconcileEvery=0)
        world.poll()
        standin.follow_many(HANDLE, 8)  # 48 tracked, 8 of them now below the cap
        result = world.poll()
        assert result.meta["fullRead"] is True and result.items == []
        assert result.meta["tracked"] == 40 and result.meta["unlisted"] == 8
        assert world.poll().meta["requests"] == 1


def test_the_issue_18_history_at_the_depth_cap_emits_only_the_unfollow():
    # Page size 5, depth cap 20: follows push the 5 oldest below the cap, still followed.
    with StandIn(api_keys=(API_KEY,), depth_cap=20) as standin:
        standin.add_account(HANDLE, 20)
        world = unfollows(standin, {"apiKey": API_KEY, "baseUrl": standin.url}, count=5)
        world.poll()
        new = standin.follow_many(HANDLE, 5)
        standin.unfollow(HANDLE, new[2]["id"])
        assert world.poll().items == []
        listed = standin.following(HANDLE)
        standin.unfollow(HANDLE, listed[8]["id"])  # listed
        standin.unfollow(HANDLE, listed[22]["id"])  # below the cap
        world.poll()
        world.poll()
        assert world.emitted == [listed[8]["uniqueId"]]


def test_a_read_the_depth_cap_overtakes_between_polls_emits_no_account_still_followed():
    # A read spread over polls (a budget of 2 pages of 5) goes on from where it stopped; new
    # follows meanwhile push that place below the depth cap, so the next page there is empty.
    # That is where the upstream stops listing, not where the list ends: the accounts the read
    # had not reached yet are out of sight, not unfollowed, and are counted.
    with StandIn(api_keys=(API_KEY,), depth_cap=20) as standin:
        standin.add_account(HANDLE, 20)
        world = unfollows(standin, {"apiKey": API_KEY, "baseUrl": standin.url}, count=5,
                       maxPages=2)
        world.poll(maxPages=10)
        standin.follow_many(HANDLE, 5)  # user1-5 now below the cap
        assert world.poll().items == []
        standin.unfollow(HANDLE, "user14")  # listed
        standin.unfollow(HANDLE, "user2")  # below the cap
        assert world.poll().meta["readingList"] is True  # short by 2: a read begins
        standin.follow_many(HANDLE, 10)  # the read's place (below user16) is now below the cap
        metas = [world.poll().meta for _ in range(4)]
        followed = {u["uniqueId"] for u in standin.following(HANDLE)}
        assert not set(world.emitted) & followed, f"emitted while followed: {world.emitted}"
        # user14 was unfollowed where the read could see it, but by the time the read got
        # there its place was below the cap too: it cannot be told from user13 and user15.
        assert world.emitted == []
        ended = next(m for m in metas if m["fullRead"])
        assert ended["droppedAtCap"] == 15 and ended["unfoundUnfollows"] == 2
        assert any("out of sight" in w for w in ended["warnings"])
        assert ended["tracked"] == 20 and ended["unlisted"] == len(followed) - 20
        assert world.poll().meta["requests"] == 1  # and the count agrees again


def test_a_read_whose_tail_is_unfollowed_between_polls_reads_again_and_loses_nothing(
    standin, creds
):
    # The same empty page as above, on a list that never reached the depth cap: the accounts
    # below the read's place were unfollowed while it went on over polls. One read from the
    # top tells that end from the cap, and finds them gone.
    standin.add_account(HANDLE, 20)
    world = unfollows(standin, creds, count=5, maxPages=2)
    world.poll(maxPages=10)
    standin.unfollow(HANDLE, "user3")
    assert world.poll().meta["readingList"] is True  # short by 1; read down to user11
    tail = [f"user{n}" for n in (10, 9, 8, 7, 6, 5, 4, 2, 1)]
    for gone in tail:
        standin.unfollow(HANDLE, gone)
    again = world.poll()  # the read's next page is empty: the end, or the cap?
    assert any("again from the top" in w for w in again.meta["warnings"])
    assert again.items == [] and again.meta["readingList"] is True
    world.poll()
    assert sorted(world.emitted) == sorted([*tail, "user3"])
    assert world.poll().meta["requests"] == 1
