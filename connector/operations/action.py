"""The action "Get TikTok User Following": one or more pages of whom a handle follows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.errors import ConnectorError
from ..core.handles import normalize_handle
from ..core.http import Client
from ..core.items import flatten
from ..core.pagination import Pager
from . import CREDITS_PER_REQUEST, Partial, Result

KEY = "get_tiktok_user_following"
TEST_ITEMS = 3


def run(
    client: Client,
    inputs: dict[str, Any],
    *,
    source: str = "API",
    state: Any = None,
    mode: str = "live",
    on_page: Callable[[int, int], None] | None = None,
) -> Result:
    """Fetch up to `maxPages` pages (and `maxItems` items) from `minTime` down.

    In test mode, one page and at most three items: enough to map fields. The action keeps no
    state; whatever state came in goes back out untouched.
    """
    handle = normalize_handle(inputs.get("handle"))
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
            if on_page is not None:
                on_page(pager.pages, len(items))
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
