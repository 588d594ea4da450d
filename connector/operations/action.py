"""The action "Get TikTok User Following": one or more pages of whom a handle follows.

`Listing` reads it a page at a time, handing on each page's flat items as they arrive, so a
long read holds one page in memory, not the whole list (`tiktok-following list`,
`connector.stream`); `run` collects them into a Result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..core import cursors
from ..core.errors import ConnectorError
from ..core.http import PageSource, list_reader
from ..core.items import flatten
from ..core.pagination import Pager
from .results import CREDITS_PER_REQUEST, TEST_ITEMS, Partial, Result


class Listing:
    """The action's pages as they arrive: iterate `pages()` (or the Listing itself, for items
    one by one); `meta` says what it cost and where to continue once the iteration ended.

    On an error the read stops with the ConnectorError, whose `partial` says where to resume
    (its items are those of this iteration not yet handed on: none, for a page at a time).
    """

    def __init__(self, client: PageSource, inputs: dict[str, Any], *, source: str = "API",
                 mode: str = "live") -> None:
        self.handle: str = inputs["handle"]
        test = mode == "test"
        self._min_time = inputs.get("minTime")
        self._pager = Pager(
            list_reader(client, self.handle, count=inputs.get("count"), request_source=source),
            start=self._min_time,
            max_pages=1 if test else inputs.get("maxPages", 1),
            max_items=TEST_ITEMS if test else inputs.get("maxItems"),
        )
        #: Items handed on so far.
        self.items = 0

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        """Each page's new accounts as flat items, newest first, as the page arrives."""
        pager = self._pager
        try:
            for read in pager:
                page = [flatten(entry) for entry in read.fresh]
                self.items += len(page)
                yield page
        except ConnectorError as err:
            err.partial = Partial([], pager.next_cursor, pager.pages)
            raise

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for page in self.pages():
            yield from page

    @property
    def meta(self) -> dict[str, Any]:
        pager = self._pager
        page = pager.last_page
        return {
            "handle": self.handle,
            "requests": pager.attempts,
            "creditsUsed": pager.pages * CREDITS_PER_REQUEST,
            "pages": pager.pages,
            "hasMore": pager.has_more,
            "nextCursor": pager.next_cursor,
            "stopReason": pager.stop_reason,
            "total": page.total if page else None,
            "rateLimitLimit": page.rate_limit.limit if page else None,
            "rateLimitRemaining": page.rate_limit.remaining if page else None,
            "warnings": self._warnings(page.total if page else None),
        }

    def _warnings(self, total: int | None) -> list[str]:
        """What the read suggests went wrong in what was asked: a minTime of seconds on a list
        that pages in milliseconds points to 1970, before any follow, and reads nothing."""
        at = self._min_time
        if self.items or not total or cursors.is_dead(at) or not cursors.in_seconds(at):
            return []
        return [f"nothing was followed before the cursor {at} this read began at, while the "
                f"account follows {total}: a cursor of 10 digits is seconds, and most lists "
                "page in milliseconds (13 digits); pass a nextCursor as it was given"]


def run(
    client: PageSource,
    inputs: dict[str, Any],
    *,
    source: str = "API",
    state: Any = None,
    mode: str = "live",
) -> Result:
    """Fetch up to `maxPages` pages (and `maxItems` items) from `minTime` down.

    In test mode, one page and at most three items: enough to map fields. The action keeps no
    state; whatever state came in goes back out untouched. `inputs` are prepared (defaults
    applied, handle normalised).
    """
    listing = Listing(client, inputs, source=source, mode=mode)
    items: list[dict[str, Any]] = []
    try:
        for page in listing.pages():
            items += page
    except ConnectorError as err:
        if err.partial is not None:
            err.partial.items = items  # a multi-page read keeps what it fetched
        raise
    return Result(items=items, state=state, meta=listing.meta)
