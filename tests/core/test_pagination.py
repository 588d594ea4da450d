"""The pager: minCursor -> minTime, every way a walk ends, and resuming after an error.

These drive the Pager with scripted pages and no HTTP, so each guard is shown on its own.
The same guards against the stand-in (through the action, with cassettes) are in
tests/operations/test_action.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.core.errors import ServerError
from connector.core.http import Page
from connector.core.pagination import (
    ANSWERED,
    BAD_CURSOR,
    CURSOR_REPEATED,
    DEPTH_CAP,
    EMPTY_PAGE,
    END,
    ENDS,
    GUARDS,
    MAX_ITEMS,
    MAX_PAGES,
    NO_CURSOR,
    NO_NEW_ITEMS,
    REACHED,
    UNUSABLE,
    Pager,
    read_page,
)


def entry(n: int | str) -> dict[str, Any]:
    return {"user": {"id": str(n), "uniqueId": f"user{n}"}, "stats": {}}


def page(ids: list[int], min_cursor: Any, has_more: bool | None = True) -> Page:
    return Page([entry(i) for i in ids], min_cursor, None, has_more, None)


class Script:
    """A fetch function answering from {cursor: Page}, recording the cursors it was sent."""

    def __init__(self, pages: dict[Any, Page | Exception]) -> None:
        self.pages = pages
        self.sent: list[Any] = []

    def __call__(self, cursor: Any) -> Page:
        self.sent.append(cursor)
        answer = self.pages[cursor]
        if isinstance(answer, Exception):
            raise answer
        return answer


def walk(pager: Pager) -> list[str]:
    return [read["user"]["id"] for r in pager for read in r.fresh]


def test_the_next_page_is_asked_for_with_the_previous_min_cursor() -> None:
    fetch = Script({None: page([1, 2], 900), 900: page([3, 4], 800), 800: page([5], 700, False)})
    pager = Pager(fetch)
    assert walk(pager) == ["1", "2", "3", "4", "5"]
    assert fetch.sent == [None, 900, 800]
    assert (pager.stop_reason, pager.has_more, pager.next_cursor, pager.pages) == (
        END,
        False,
        None,
        3,
    )


def test_a_walk_starts_at_the_given_cursor() -> None:
    fetch = Script({800: page([5], 700, False)})
    assert walk(Pager(fetch, start=800)) == ["5"]
    assert fetch.sent == [800]


@pytest.mark.parametrize("has_more", [False, None])
def test_has_more_false_or_null_ends_the_walk(has_more: bool | None) -> None:
    fetch = Script({None: page([1], 900, has_more)})
    pager = Pager(fetch)
    assert walk(pager) == ["1"]
    assert pager.stop_reason == END and not pager.has_more


def test_an_empty_page_ends_the_walk_even_when_has_more_says_true() -> None:
    fetch = Script({None: page([1], 900), 900: page([], 900, True)})
    pager = Pager(fetch, max_pages=10)
    assert walk(pager) == ["1"]
    assert pager.stop_reason == EMPTY_PAGE
    assert fetch.sent == [None, 900]
    assert pager.has_more is False and pager.next_cursor is None


@pytest.mark.parametrize("dead", [None, 0, "0"])
def test_a_missing_or_zero_cursor_ends_the_walk(dead: Any) -> None:
    fetch = Script({None: page([1], dead, True)})
    pager = Pager(fetch, max_pages=10)
    assert walk(pager) == ["1"]
    assert pager.stop_reason == NO_CURSOR
    assert pager.next_cursor is None and not pager.has_more


@pytest.mark.parametrize("has_more", [True, False, None])
@pytest.mark.parametrize("cap", [-1, "-1", -1.0])
def test_a_minus_one_cursor_is_the_depth_cap_not_the_end_of_the_list(cap: Any,
                                                                   has_more: Any) -> None:
    # The end says there is nothing more; the cap that there may be more nobody can list: a
    # caller that takes what it did not reach for gone must tell them apart.
    fetch = Script({None: page([1], 900), 900: page([2], cap, has_more)})
    pager = Pager(fetch, max_pages=10)
    assert walk(pager) == ["1", "2"]
    assert pager.stop_reason == DEPTH_CAP
    assert pager.next_cursor is None and not pager.has_more


def test_an_empty_page_with_a_minus_one_cursor_is_the_depth_cap() -> None:
    fetch = Script({None: page([1], 900), 900: page([], -1, False)})
    pager = Pager(fetch)
    assert walk(pager) == ["1"]
    assert pager.stop_reason == DEPTH_CAP


@pytest.mark.parametrize("last", [page([2], 700, False), page([], 0, False),
                                  page([2], 0, None)])
def test_has_more_false_with_any_other_cursor_is_the_end_of_the_list(last: Page) -> None:
    pager = Pager(Script({None: page([1], 900), 900: last}))
    walk(pager)
    assert pager.stop_reason == END


def test_a_cursor_handed_back_unchanged_ends_the_walk() -> None:
    fetch = Script({None: page([1], 900), 900: page([2], 900)})
    pager = Pager(fetch, max_pages=10)
    assert walk(pager) == ["1", "2"]
    assert pager.stop_reason == CURSOR_REPEATED
    assert fetch.sent == [None, 900]


def test_a_cursor_that_moves_back_up_ends_the_walk() -> None:
    # 900 -> 800 -> 900: a cycle of two, which a check against the last cursor alone misses.
    fetch = Script({None: page([1], 900), 900: page([2], 800), 800: page([3], 900)})
    pager = Pager(fetch, max_pages=10)
    assert walk(pager) == ["1", "2", "3"]
    assert pager.stop_reason == BAD_CURSOR
    assert fetch.sent == [None, 900, 800]


def test_a_page_newer_than_the_cursor_sent_ends_the_walk() -> None:
    fetch = Script({500: Page([entry(1)], 400, 600, True, None)})
    pager = Pager(fetch, start=500, max_pages=10)
    walk(pager)
    assert pager.stop_reason == BAD_CURSOR and fetch.sent == [500]
    assert pager.next_cursor is None and not pager.has_more


def test_a_page_whose_oldest_follow_is_newer_than_its_newest_ends_the_walk() -> None:
    fetch = Script({None: Page([entry(1), entry(2)], 901, 900, True, None)})
    pager = Pager(fetch, max_pages=10)
    walk(pager)
    assert pager.stop_reason == BAD_CURSOR and fetch.sent == [None]


def test_a_walk_told_where_to_stop_ends_at_the_page_that_reaches_it() -> None:
    fetch = Script({None: page([1, 2], 900), 900: page([3, 4], 800), 800: page([5], 700)})
    pager = Pager(fetch, stop=850, max_pages=10)
    assert walk(pager) == ["1", "2", "3", "4"]
    assert pager.stop_reason == REACHED and fetch.sent == [None, 900]


def test_a_stop_in_seconds_is_reached_by_cursors_in_milliseconds() -> None:
    fetch = Script({None: page([1, 2], 1_700_000_900_000), 1_700_000_900_000: page([3], 7)})
    pager = Pager(fetch, stop=1_700_000_950, max_pages=10)
    assert walk(pager) == ["1", "2"]
    assert pager.stop_reason == REACHED


def test_accounts_repeated_across_pages_are_delivered_once() -> None:
    # The upstream repeats the account at the boundary ("followed on or before this time").
    fetch = Script({None: page([1, 2, 3], 900), 900: page([3, 4, 5], 800, False)})
    assert walk(Pager(fetch)) == ["1", "2", "3", "4", "5"]


def test_an_account_repeated_within_a_page_is_delivered_once() -> None:
    fetch = Script({None: page([1, 2, 1], 900, False)})
    assert walk(Pager(fetch)) == ["1", "2"]


def test_a_page_that_adds_no_new_account_ends_the_walk() -> None:
    fetch = Script({None: page([1, 2], 900), 900: page([1, 2], 800), 800: page([9], 700)})
    pager = Pager(fetch, max_pages=10)
    assert walk(pager) == ["1", "2"]
    assert pager.stop_reason == NO_NEW_ITEMS
    assert fetch.sent == [None, 900]


def test_entries_without_any_identity_are_told_apart_by_their_profile() -> None:
    first = {"user": {"nickname": "First"}, "stats": {}}
    second = {"user": {"nickname": "Second"}, "stats": {}}
    fetch = Script({None: Page([first, second, first], 900, None, False, None)})
    assert [e["user"]["nickname"] for r in Pager(fetch) for e in r.fresh] == ["First", "Second"]


def test_max_pages_stops_with_a_cursor_to_continue_from() -> None:
    fetch = Script({None: page([1], 900), 900: page([2], 800), 800: page([3], 700)})
    pager = Pager(fetch, max_pages=2)
    assert walk(pager) == ["1", "2"]
    assert pager.stop_reason == MAX_PAGES
    assert pager.has_more is True and pager.next_cursor == 800
    assert fetch.sent == [None, 900]


def test_max_items_cuts_a_page_and_resumes_at_that_page_so_nothing_is_missed() -> None:
    pages = {None: page([1, 2, 3], 900), 900: page([4, 5, 6], 800), 800: page([7], 700, False)}
    pager = Pager(Script(pages), max_items=5)
    assert walk(pager) == ["1", "2", "3", "4", "5"]
    assert pager.stop_reason == MAX_ITEMS
    # The page holding 6 was cut short: resuming reads it again (a repeat beats a miss).
    assert pager.has_more is True and pager.next_cursor == 900
    rest = walk(Pager(Script(pages), start=pager.next_cursor))
    assert rest == ["4", "5", "6", "7"]


def test_max_items_reached_at_a_page_end_continues_from_min_cursor() -> None:
    fetch = Script({None: page([1, 2], 900), 900: page([3], 800)})
    pager = Pager(fetch, max_items=2)
    assert walk(pager) == ["1", "2"]
    assert (pager.stop_reason, pager.has_more, pager.next_cursor) == (MAX_ITEMS, True, 900)


@pytest.mark.parametrize(
    ("last", "reason"),
    [
        (page([1, 2], -1, True), DEPTH_CAP),
        (page([1, 2], -1, False), DEPTH_CAP),
        (page([1, 2], 900, False), END),
        (page([1, 2], None, True), NO_CURSOR),
    ],
)
def test_max_items_reached_where_the_list_ends_does_not_claim_more(last: Page, reason: str) -> None:
    # A resume cursor of -1 (the depth cap) or None would restart or break the next call.
    pager = Pager(Script({None: last}), max_items=2)
    walk(pager)
    assert (pager.stop_reason, pager.has_more, pager.next_cursor) == (reason, False, None)


def test_an_error_mid_walk_leaves_the_failing_cursor_to_resume_from() -> None:
    boom = ServerError("boom (500)", status=500)
    fetch = Script({None: page([1, 2], 900), 900: boom})
    pager = Pager(fetch, max_pages=5)
    delivered: list[str] = []
    with pytest.raises(ServerError):
        for read in pager:
            delivered += [e["user"]["id"] for e in read.fresh]
    assert delivered == ["1", "2"]
    assert pager.next_cursor == 900 and pager.pages == 1
    # Resuming asks for the failed page, not the first one again.
    fetch.pages[900] = page([3], 800, False)
    fetch.sent.clear()
    assert walk(Pager(fetch, start=pager.next_cursor)) == ["3"]
    assert fetch.sent == [900]


def test_attempts_add_up_the_retries_of_every_page() -> None:
    first, second = page([1], 900), page([2], 800, False)
    first.attempts, second.attempts = 3, 1
    pager = Pager(Script({None: first, 900: second}))
    walk(pager)
    assert (pager.pages, pager.attempts) == (2, 4)


# Every read goes through the pager: each page says why the walk ends after it, and what it
# means is decided here, once.


def test_each_page_says_why_the_walk_ends_after_it() -> None:
    fetch = Script({None: page([1, 2], 900), 900: page([3], -1)})
    reads = list(Pager(fetch))
    assert [r.reason for r in reads] == [None, DEPTH_CAP]


@pytest.mark.parametrize(("last", "reason", "kind"), [
    (page([5], 700, False), END, ENDS),
    (page([5], -1), DEPTH_CAP, ENDS),
    (page([5], 0), NO_CURSOR, ENDS),
    (page([], 700), EMPTY_PAGE, UNUSABLE),
    (Page([entry(5)], 900, 100, True, None), BAD_CURSOR, UNUSABLE),
])
def test_the_list_s_ends_and_the_unusable_pages_are_named_once(last, reason, kind) -> None:
    read = read_page(Script({800: last}), 800)
    assert read.reason == reason and reason in kind
    assert (reason in GUARDS) == (kind is UNUSABLE)
    if reason in GUARDS or reason == NO_CURSOR:
        assert ANSWERED[reason]  # a warning can say what the upstream answered


def test_a_one_page_read_is_judged_as_the_first_page_of_a_walk() -> None:
    fetch = Script({700: page([5, 6], 600)})
    read = read_page(fetch, 700)
    assert fetch.sent == [700] and read.cursor == 700 and read.keys == ["5", "6"]
    assert read.reason == MAX_PAGES and read.reason not in UNUSABLE
    # A page that starts at the very cursor sent is fine for a one-page read.
    assert read_page(Script({600: page([6], 600)}), 600).reason not in UNUSABLE
