"""One trigger poll's reads: a page budget its walks share, what they cost, and the first
poll's baseline and the test mode's sample. Both triggers poll through it; the walk down to
the watermark is walk.py.

Every read goes through the pager (core/pagination.py), which says why a read ended; the
watermark a page offers is decided here, once (`newest_cursor`, `PollRun.base`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..core import cursors
from ..core.errors import ResponseFormatError
from ..core.http import Page
from ..core.items import flatten, identity
from ..core.pagination import UNUSABLE, read_page
from ..state.prints import fingerprint
from .results import CREDITS_PER_REQUEST, TEST_ITEMS


class PollRun:
    """One poll: a page budget shared by its walks, and what it cost."""

    def __init__(self, fetch: Callable[[Any], Page], *, budget: int,
                 now_ms: int | None = None) -> None:
        self._fetch_page = fetch
        self.remaining = budget
        #: Now (epoch ms): no follow time lies in the future.
        self.now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        #: The pages this poll got, by the cursor they were asked with: what it cost, and the
        #: unfollow trigger's read of the list reuses them instead of asking again.
        self.got: list[tuple[Any, Page]] = []
        self.by_cursor: dict[Any, Page] = {}
        self.warnings: list[str] = []
        #: The identities on the pages this poll's walks read: the accounts it has just seen.
        self.touched: set[str] = set()
        #: Whether this poll took a baseline (or, for the unfollow trigger, went on with one).
        self.baselined = False
        #: Whether this poll read every new follow down to the watermark.
        self.top_done = True
        #: What the pages fetched at a cursor showed of how the upstream cuts them: "at or
        #: before" it (a page starting in the cursor's own second) or only "before" it.
        self._boundary: set[str] = set()
        self._handed: set[Any] = set()

    def fetch(self, cursor: Any) -> Page:
        """One page, counted against the budget: what every pager of this poll fetches with."""
        self.remaining -= 1
        page = self._fetch_page(cursor)
        self.got.append((cursor, page))
        self.by_cursor.setdefault(cursor, page)
        # Only a cursor this poll was handed tells how pages are cut: the account it dates is
        # still listed (a kept range's start may be one unfollowed since).
        if cursor in self._handed and page.entries and not cursors.is_dead(page.max_cursor):
            self._boundary.add("at" if not cursors.below(page.max_cursor, cursor) else "before")
        self._handed.add(page.min_cursor)
        return page

    def pages_before(self) -> bool:
        """Whether this poll's pages showed an upstream that cuts a page "before" a cursor,
        never "at or before" it (the contract's way): a page fetched at a cursor then lists
        nothing of its second."""
        return self._boundary == {"before"}

    def earlier(self, cursor: Any) -> Any:
        """The cursor whose page lists only follows older than `cursor`'s own second (None:
        nothing is older): the one before it, or itself on an upstream that pages "before"."""
        return cursor if self.pages_before() else cursors.before(cursor)

    def total(self) -> int | None:
        """The following count on this poll's first page of the list's top, if it said."""
        page = self.by_cursor.get(None)
        return page.total if page is not None else None

    def new_baseline(self, prior: Any, handle: str) -> bool:
        """Whether this poll takes a baseline: no state yet, or one for another handle (then
        a warning says so)."""
        if prior is not None and prior.handle != handle:
            self.warnings.append(f"the state was for @{prior.handle}; started a new baseline "
                                 f"for @{handle}")
        return prior is None or prior.handle != handle

    def sample(self) -> list[dict[str, Any]]:
        """Test mode: up to three recent follows, oldest first; nothing is remembered."""
        read = read_page(self.fetch)
        return [flatten(e) for e in reversed(read.fresh[:TEST_ITEMS])]

    def baseline(self) -> tuple[Any, Any, list[dict[str, Any]]]:
        """First poll: the top of the list, as (watermark, base, its entries once each)."""
        self.baselined = True
        read = read_page(self.fetch)
        if read.reason in UNUSABLE:
            raise ResponseFormatError("the upstream's first page was unusable for a baseline "
                                      "(empty, or with contradicting cursors); nothing was "
                                      "saved, the next poll tries again")
        page = read.page
        watermark = self.newest(page, None)
        if watermark is None and page.entries:
            raise ResponseFormatError("the upstream's first page had no usable cursor for a "
                                      "baseline (none, or in the future); nothing was saved, "
                                      "the next poll tries again")
        return watermark, self.base(page), read.fresh

    def base(self, page: Page | None, fallback: Any = None) -> Any:
        """The base that goes with a watermark taken from the newest page: its minCursor, a
        follow time the upstream handed out, at or below the page's newest (see walk.py). A
        page that is the whole list holds every follow of its oldest second, and that second
        may be the newest one, where follows made after this poll come: the base is then the
        second before it, so that a check at the base lists none of them (each follow of
        that second is remembered, and an unknown one is new)."""
        if page is None or not page.entries:
            return fallback
        base = page.min_cursor
        if cursors.is_dead(base) or cursors.future(base, self.now_ms) or not cursors.consistent(
            len(page.entries), base, page.max_cursor, None
        ):
            return fallback
        earlier = self.earlier(base) if page.has_more is False else None
        return base if earlier is None else earlier

    def newest(self, page: Page | None, fallback: Any) -> Any:
        """The watermark a page offers (see newest_cursor), and a warning when its maxCursor
        could not be taken for one."""
        if page is not None and page.entries and not cursors.is_dead(page.max_cursor) \
                and cursors.future(page.max_cursor, self.now_ms):
            self.warnings.append(f"the newest page's maxCursor {page.max_cursor} lies in the "
                                 f"future: not taken for the newest follow's time")
        return newest_cursor(page, fallback, now_ms=self.now_ms)

    def meta(self, handle: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A trigger's meta: what the poll's reads cost, the trigger's own `fields`, then the
        warnings and the rate limit the last page reported."""
        pages = [page for _, page in self.got]
        rate = pages[-1].rate_limit if pages else None
        return {
            "handle": handle,
            "requests": sum(page.attempts for page in pages),
            "pages": len(pages),
            "creditsUsed": len(pages) * CREDITS_PER_REQUEST,
            **fields,
            "warnings": self.warnings,
            "rateLimitLimit": rate.limit if rate else None,
            "rateLimitRemaining": rate.remaining if rate else None,
        }


def newest_cursor(page: Page | None, fallback: Any = None, *, now_ms: int) -> Any:
    """The follow time of the newest account on a page, as a watermark: its maxCursor in the
    unit of its minCursor (the unit the upstream pages in, and so the unit minTime is sent
    in). Lower is always safe, higher is not: a maxCursor below its minCursor, or in the
    future, is not taken (the minCursor is)."""
    if page is None or not page.entries:
        return fallback
    hi, lo = page.max_cursor, page.min_cursor
    live_lo = not cursors.is_dead(lo) and not cursors.future(lo, now_ms)
    if not cursors.is_dead(hi) and not cursors.future(hi, now_ms) and (
        cursors.is_dead(lo) or cursors.at_or_below(lo, hi)
    ):
        return cursors.in_unit_of(hi, lo) if live_lo else hi
    return lo if live_lo else fallback


def newest_account(entries: list[dict[str, Any]]) -> int | None:
    """The account a watermark taken from a page of these entries came from, as its
    fingerprint: the first, the newest follow (None for no entries)."""
    return fingerprint(identity(entries[0])) if entries else None
