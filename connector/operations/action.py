"""The action "Get TikTok User Following": one or more pages of whom a handle follows."""

from __future__ import annotations

from typing import Any

from ..core.errors import ConnectorError
from ..core.http import PageSource
from ..core.items import flatten
from ..core.pagination import Pager
from .results import CREDITS_PER_REQUEST, Partial, Result

KEY = "get_tiktok_user_following"
TEST_ITEMS = 3


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
    handle = inputs["handle"]
    count = inputs.get("count")
    test = mode == "test"
    pager = Pager(
        lambda cursor: client.fetch_page(handle, min_time=cursor, count=count,
                                         request_source=source),
        start=inputs.get("minTime"),
        max_pages=1 if test else inputs.get("maxPages", 1),
        max_items=TEST_ITEMS if test else inputs.get("maxItems"),
    )
    items: list[dict[str, Any]] = []
    try:
        for read in pager:
            items.extend(flatten(entry) for entry in read.fresh)
    except ConnectorError as err:
        err.partial = Partial(items, pager.next_cursor, pager.pages)
        raise
    page = pager.last_page
    meta = {
        "handle": handle,
        "requests": pager.attempts,
        "creditsUsed": pager.pages * CREDITS_PER_REQUEST,
        "pages": pager.pages,
        "hasMore": pager.has_more,
        "nextCursor": pager.next_cursor,
        "stopReason": pager.stop_reason,
        "total": page.total if page else None,
        "rateLimitLimit": page.rate_limit.limit if page else None,
        "rateLimitRemaining": page.rate_limit.remaining if page else None,
    }
    return Result(items=items, state=state, meta=meta)
