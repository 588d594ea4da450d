"""The pager: follows `minCursor` -> `minTime` down the list, with guards against every loop.

The upstream may repeat accounts at page boundaries, answer `hasMore: true` forever with the
same cursor or with empty pages, hand back cursors that do not move, and stops listing at a
depth cap with a -1 cursor. Each of those ends the walk instead of spending credits in a loop,
and says why in `stop_reason`: the list's end (nothing more to list) and the depth cap (more that
cannot be listed) are different reasons, because what the walk did not reach means different
things for them. A walk can also be told where to stop: at the first page that reaches the
cursor `stop` (a follow time the caller already knows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from . import cursors
from .http import Page
from .items import identity

# Why a walk ended. The list's own ends:
END = "end"  # hasMore false or null: the upstream says the list ends here
DEPTH_CAP = "depth_cap"  # minCursor -1: the upstream stops listing here; the list may go on
NO_CURSOR = "no_cursor"  # hasMore true, but minCursor missing or 0: nowhere to go on from
REACHED = "reached"  # the page reached the `stop` cursor
# The caller's caps: `next_cursor` says where to go on from.
MAX_PAGES = "max_pages"
MAX_ITEMS = "max_items"
# Guards: the upstream answered something a walk cannot go on from.
EMPTY_PAGE = "empty_page"  # no entries, yet hasMore true: proves nothing about the list
BAD_CURSOR = "bad_cursor"  # cursors that contradict the page or do not move down
CURSOR_REPEATED = "cursor_repeated"  # the server handed back a cursor already sent
NO_NEW_ITEMS = "no_new_items"  # every entry on the page was seen before in this walk

#: The list's own ends: nothing below the page can be read.
ENDS = frozenset({END, DEPTH_CAP, NO_CURSOR})
#: Guards: the walk is to be tried again from the cursor that fetched the page.
GUARDS = frozenset({EMPTY_PAGE, BAD_CURSOR, CURSOR_REPEATED, NO_NEW_ITEMS})
#: Guards that make the page itself worthless (its entries cannot be placed by its cursors, or
#: it has none): a one-page read (a baseline, a check) is then unanswered.
UNUSABLE = frozenset({EMPTY_PAGE, BAD_CURSOR})
#: What the upstream answered, as a warning says it.
ANSWERED = {
    EMPTY_PAGE: "an empty page that claimed more",
    BAD_CURSOR: "a page whose cursors contradict it",
    CURSOR_REPEATED: "a cursor it had already handed out",
    NO_NEW_ITEMS: "a page of accounts it had just listed",
    NO_CURSOR: "a page with no cursor to go on from",
}


class PageRead(NamedTuple):
    """One page as the pager saw it: the page, the cursor that fetched it, the identity key of
    each of its entries, those not seen before in this walk (`fresh`, with their keys), and
    why the walk ends after it (`reason`: one of the reasons above; None, it goes on)."""

    page: Page
    cursor: Any
    keys: list[str]
    fresh: list[dict[str, Any]]
    fresh_keys: list[str]
    reason: str | None = None


class Pager:
    """Iterates pages from `start` and records why and where it stopped.

    `fetch(cursor)` returns a Page or raises; on an error, `next_cursor` is the cursor that
    failed, so the caller can resume there instead of starting over. After a guard, the page
    that tripped it is still yielded (with `stop_reason` set) so the caller can decide what it
    is worth; `PageRead.cursor` says where it was fetched.
    """

    def __init__(
        self,
        fetch: Callable[[Any], Page],
        *,
        start: Any = None,
        stop: Any = None,
        max_pages: int | None = None,
        max_items: int | None = None,
    ) -> None:
        self._fetch = fetch
        self.start = start
        self.stop = stop
        self.max_pages = max_pages
        self.max_items = max_items
        #: Identity keys delivered so far in this walk.
        self.seen: set[str] = set()
        self.pages = 0
        self.attempts = 0
        self.items = 0
        self.stop_reason: str | None = None
        self.next_cursor: Any = start
        self.last_page: Page | None = None
        #: Whether the list goes on past where the walk stopped (from `next_cursor`; None = top).
        self.has_more = False
        self._sent: set[Any] = set()

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
            keys = [identity(entry) for entry in page.entries]
            # Those not delivered before in this walk, each once (a page may repeat an account).
            unseen: dict[str, dict[str, Any]] = {}
            seen = self.seen
            for entry, key in zip(page.entries, keys, strict=False):
                if key not in seen and key not in unseen:
                    unseen[key] = entry
            fresh, fresh_keys = list(unseen.values()), list(unseen)
            truncated = False
            if self.max_items is not None and self.items + len(fresh) > self.max_items:
                fresh = fresh[: self.max_items - self.items]
                fresh_keys = fresh_keys[: len(fresh)]
                truncated = True
            reason = self._stop_after(page, cursor, fresh, truncated)
            if reason not in GUARDS:
                # Only what is delivered counts as seen: entries cut off by max_items are
                # not, so a resumed walk still delivers them.
                self.seen.update(fresh_keys)
                self.items += len(fresh)
            self.stop_reason = reason
            self.has_more = reason in (MAX_PAGES, MAX_ITEMS, None)
            # A page cut short by max_items is read again on resume: a repeat beats a miss.
            if reason is None or reason == MAX_PAGES or (reason == MAX_ITEMS and not truncated):
                self.next_cursor = page.min_cursor
            elif reason != MAX_ITEMS:
                self.next_cursor = None
            yield PageRead(page, cursor, keys, fresh, fresh_keys, reason)
            if reason is not None:
                return
            cursor = page.min_cursor

    def _stop_after(self, page: Page, cursor: Any, fresh: list, truncated: bool) -> str | None:
        """Why the walk must end after this page, or None to go on."""
        if not page.entries:
            if page.has_more:
                return EMPTY_PAGE
            return DEPTH_CAP if cursors.is_cap(page.min_cursor) else END
        if not cursors.consistent(len(page.entries), page.min_cursor, page.max_cursor, cursor):
            return BAD_CURSOR
        if not fresh:
            return NO_NEW_ITEMS
        if truncated:
            return MAX_ITEMS  # the rest of this page is still to read
        nxt = page.min_cursor
        if self.stop is not None and not cursors.is_dead(nxt) and cursors.at_or_below(
            nxt, self.stop
        ):
            return REACHED
        # The list's own ends come before the caller's caps: a cap may only claim there is
        # more (and hand out min_cursor to resume from) when min_cursor is a usable cursor.
        if cursors.is_cap(nxt):
            return DEPTH_CAP  # whatever hasMore says
        if page.has_more is not True:
            return END
        if cursors.is_dead(nxt):
            return NO_CURSOR
        if nxt in self._sent or nxt == cursor:
            return CURSOR_REPEATED
        if self.max_items is not None and self.items + len(fresh) >= self.max_items:
            return MAX_ITEMS
        if self.max_pages is not None and self.pages >= self.max_pages:
            return MAX_PAGES
        return None


def read_page(fetch: Callable[[Any], Page], cursor: Any = None) -> PageRead:
    """One page, judged as the first page of a walk from `cursor`: `reason` in UNUSABLE says
    it proves nothing."""
    return next(iter(Pager(fetch, start=cursor, max_pages=1)))
