"""The pager: follows `minCursor` -> `minTime` down the list, with guards against every loop.

CONTRACT 1: the next page is asked for by sending the previous response's `minCursor` as
`minTime`. The upstream may repeat accounts at page boundaries, answer `hasMore: true` forever
with the same cursor or with empty pages, and ends at a depth cap with a -1 cursor. Each of
those ends the walk instead of spending credits in a loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .http import Page
from .items import identity

#: Why a walk ended. Only the caps leave `next_cursor` set: there is more to read from there.
END = "end"  # hasMore false or null
EMPTY_PAGE = "empty_page"  # no entries, even if hasMore says true
NO_CURSOR = "no_cursor"  # minCursor missing, 0 or -1 (the depth cap)
CURSOR_REPEATED = "cursor_repeated"  # the server handed back a cursor we had already sent
NO_NEW_ITEMS = "no_new_items"  # every entry on the page was seen before
MAX_PAGES = "max_pages"
MAX_ITEMS = "max_items"
STOPPED = "stopped"  # the caller stopped reading (the trigger reached known follows)

_DEAD_CURSORS = (0, -1, "0", "-1", "")


@dataclass
class PageRead:
    """One page as the pager saw it: the page, the cursor that fetched it, its unseen entries."""

    page: Page
    cursor: Any
    fresh: list[dict[str, Any]]


class Pager:
    """Iterates pages from `start` and records why and where it stopped.

    `fetch(cursor)` returns a Page or raises; on an error, `next_cursor` is the cursor that
    failed, so the caller can resume there instead of starting over.
    """

    def __init__(
        self,
        fetch: Callable[[Any], Page],
        *,
        start: Any = None,
        max_pages: int | None = None,
        max_items: int | None = None,
        seen: set[str] | None = None,
    ) -> None:
        self._fetch = fetch
        self.start = start
        self.max_pages = max_pages
        self.max_items = max_items
        #: Identity keys already delivered: across pages, or across walks when shared.
        self.seen = seen if seen is not None else set()
        self.pages = 0
        self.attempts = 0
        self.items = 0
        self.stop_reason: str | None = None
        self.next_cursor: Any = start
        self.last_page: Page | None = None
        self._sent: set[Any] = set()
        self._more = False

    @property
    def has_more(self) -> bool:
        """Whether the list goes on past where the walk stopped (from `next_cursor`; None = top)."""
        return self._more

    def __iter__(self) -> Iterator[PageRead]:
        cursor = self.start
        while True:
            if cursor is not None:
                self._sent.add(cursor)
            self.next_cursor = cursor
            page = self._fetch(cursor)
            self.pages += 1
            self.attempts += page.attempts
            self.last_page = page
            fresh, keys = self._unseen(page.entries)
            truncated = False
            if self.max_items is not None and self.items + len(fresh) > self.max_items:
                fresh = fresh[: self.max_items - self.items]
                keys = keys[: len(fresh)]
                truncated = True
            # Only what is delivered counts as seen: entries cut off by max_items are not,
            # so a walk sharing `seen` (or resuming) still delivers them.
            self.seen.update(k for k in keys if k is not None)
            self.items += len(fresh)
            reason = self._stop_after(page, fresh, cursor, truncated)
            self.stop_reason = reason or STOPPED
            self._more = reason in (MAX_PAGES, MAX_ITEMS, None)
            # A page cut short by max_items is read again on resume: a repeat beats a miss.
            self.next_cursor = (
                cursor if truncated else page.min_cursor if self._more else None
            )
            yield PageRead(page=page, cursor=cursor, fresh=fresh)
            if reason is not None:
                return
            cursor = page.min_cursor

    def _unseen(self, entries: list[dict[str, Any]]) -> tuple[list[dict], list[str | None]]:
        """Entries not delivered before, each once (a page may repeat an account too), and
        their identity keys, computed once."""
        fresh: list[dict[str, Any]] = []
        keys: list[str | None] = []
        on_page: set[str] = set()
        seen = self.seen
        for entry in entries:
            key = identity(entry)
            if key is not None:
                if key in seen or key in on_page:
                    continue
                on_page.add(key)
            fresh.append(entry)
            keys.append(key)
        return fresh, keys

    def _stop_after(self, page: Page, fresh: list, cursor: Any, truncated: bool) -> str | None:
        """Why the walk must end after this page, or None to go on."""
        if not page.entries:
            return EMPTY_PAGE if page.has_more else END
        if not fresh:
            return NO_NEW_ITEMS
        if truncated:
            return MAX_ITEMS  # the rest of this page is still to read
        # The list's own ends come before the caller's caps: a cap may only claim there is
        # more (and hand out min_cursor to resume from) when min_cursor is a usable cursor.
        if page.has_more is not True:
            return END
        nxt = page.min_cursor
        if nxt is None or nxt in _DEAD_CURSORS:
            return NO_CURSOR
        if nxt in self._sent or nxt == cursor:
            return CURSOR_REPEATED
        if self.max_items is not None and self.items >= self.max_items:
            return MAX_ITEMS
        if self.max_pages is not None and self.pages >= self.max_pages:
            return MAX_PAGES
        return None
