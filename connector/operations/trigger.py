"""The polling trigger "New Account Followed": each follow that happened since the last poll.

A poll reads from the newest follow down only until a page reaches the newest follow it
already knew (the watermark): with n new follows and page size p that is ceil((n + 1) / p)
requests, the fewest that can show every new follow and one known one. The known ids then
tell new from old on that last page. A burst larger than the page budget is read over the
next polls through "gaps" (see core/state.py); the newest follows are always read first so
they never starve behind a backlog.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.handles import normalize_handle
from ..core.http import Client, Page
from ..core.items import flatten, identity
from ..core.pagination import (
    CURSOR_REPEATED,
    EMPTY_PAGE,
    MAX_PAGES,
    NO_CURSOR,
    NO_NEW_ITEMS,
    Pager,
)
from ..core.state import GAP_LIMIT, KNOWN_LIMIT, Gap, TriggerState
from . import CREDITS_PER_REQUEST, Result

KEY = "new_account_followed"
TEST_ITEMS = 3
#: A gap whose walk keeps tripping a pager guard is given up after this many polls.
GAP_TRIES = 3
_GUARDS = (CURSOR_REPEATED, EMPTY_PAGE, NO_NEW_ITEMS)
_DEAD = (None, 0, -1, "0", "-1", "")


def run(
    client: Client,
    inputs: dict[str, Any],
    *,
    source: str = "API",
    state: Any = None,
    mode: str = "live",
    on_page: Callable[[int, int], None] | None = None,
) -> Result:
    """Poll once. `state` is what the previous poll returned (None on the first run)."""
    handle = normalize_handle(inputs.get("handle"))
    # Parse state before any request: damaged state must cost nothing and change nothing.
    prior = TriggerState.from_json(state) if state is not None else None
    count = inputs.get("count")
    poll = _Poll(
        lambda cursor: client.fetch_page(handle, min_time=cursor, count=count,
                                         request_source=source),
        budget=inputs.get("maxPages", 10),
    )
    if mode == "test":
        items = poll.sample()
        return Result(items=items, state=state, meta=poll.meta(handle, items, state=None))
    if prior is None or prior.handle != handle:
        if prior is not None:
            poll.warnings.append(f"the state was for @{prior.handle}; started a new baseline "
                                 f"for @{handle}")
        new_state, items = poll.baseline(handle, emit=inputs.get("firstRun") == "emitRecent")
    else:
        new_state, items = poll.advance(prior)
    return Result(items=items, state=new_state.to_json(),
                  meta=poll.meta(handle, items, state=new_state))


@dataclass
class _Walk:
    """One descent through the list: what it read, what was new, and where it ended."""

    pager: Pager
    entries: list[dict[str, Any]] = field(default_factory=list)
    new: list[dict[str, Any]] = field(default_factory=list)
    old_verified: list[str] = field(default_factory=list)
    reached: bool = False
    last_cursor: Any = None
    first_page: Page | None = None


class _Poll:
    def __init__(self, fetch: Callable[[Any], Page], *, budget: int) -> None:
        self._fetch_page = fetch
        self.budget = budget
        self.pages = 0
        self.attempts = 0
        self.last_page: Page | None = None
        self.warnings: list[str] = []
        self.baselined = False

    def fetch(self, cursor: Any) -> Page:
        page = self._fetch_page(cursor)
        self.pages += 1
        self.attempts += page.attempts
        self.last_page = page
        return page

    def sample(self) -> list[dict[str, Any]]:
        """Test mode: up to three recent follows, oldest first; nothing is remembered."""
        page = self.fetch(None)
        return [flatten(e) for e in reversed(_dedupe(page.entries)[:TEST_ITEMS])]

    def baseline(self, handle: str, *, emit: bool) -> tuple[TriggerState, list[dict]]:
        """First poll: remember the top of the list; emit it only if asked to."""
        self.baselined = True
        page = self.fetch(None)
        entries = _dedupe(page.entries)
        state = TriggerState(handle=handle, watermark=_newest_cursor(page),
                             known=_keys(entries)[:KNOWN_LIMIT])
        items = [flatten(e) for e in reversed(entries)] if emit else []
        return state, items

    def advance(self, prior: TriggerState) -> tuple[TriggerState, list[dict]]:
        known = set(prior.known)
        budget = self.budget
        seen_order: list[str] = []
        chunks: list[list[dict]] = []  # oldest chunk first
        old_verified: list[str] = []
        watermark = prior.watermark
        new_gaps: list[Gap] = []

        # The newest follows first, so a backlog never starves them; skipped only when
        # the backlog is at its bound, to catch up before opening another gap.
        top: _Walk | None = None
        if len(prior.gaps) < GAP_LIMIT:
            # With a backlog, one page of the budget is kept for it, so it always advances.
            top_budget = budget - 1 if prior.gaps else budget
            top = self._walk(None, prior.watermark, top_budget, known)
            budget -= top.pager.pages
            seen_order += _keys(top.entries)
            known.update(_keys(top.entries))
            old_verified += top.old_verified
            if top.first_page is not None and top.first_page.entries:
                watermark = _newest_cursor(top.first_page, fallback=prior.watermark)
            gap = self._leftover(top, prior.watermark, tries=0)
            if gap is not None:
                new_gaps.append(gap)
        else:
            self.warnings.append("catching up on a backlog before reading new follows")

        kept: list[Gap] = []
        for gap in reversed(prior.gaps):  # oldest first: its follows are the oldest
            if budget <= 0:
                kept.append(gap)
                continue
            walk = self._walk(gap.start, gap.stop, budget, known)
            budget -= walk.pager.pages
            seen_order += _keys(walk.entries)
            known.update(_keys(walk.entries))
            old_verified += walk.old_verified
            chunks.append(walk.new)
            rest = self._leftover(walk, gap.stop, tries=gap.tries)
            if rest is not None:
                kept.append(rest)

        if top is not None:
            chunks.append(top.new)
        gaps = new_gaps + list(reversed(kept))
        # Accounts shown to be older than a stop cursor are remembered only once no gap is
        # pending: until then they might be follows that a gap has yet to emit.
        extra = old_verified if not gaps else []
        state = TriggerState(
            handle=prior.handle,
            watermark=watermark,
            known=_unique(seen_order + extra + prior.known)[:KNOWN_LIMIT],
            gaps=gaps,
        )
        items = [flatten(e) for chunk in chunks for e in reversed(chunk)]
        return state, items

    def _walk(self, start: Any, stop: Any, budget: int, known: set[str]) -> _Walk:
        """Read from `start` down until a page reaches the cursor `stop`, or the list ends."""
        walk = _Walk(Pager(self.fetch, start=start, max_pages=max(budget, 1)))
        last: list[dict[str, Any]] = []
        for read in walk.pager:
            walk.first_page = walk.first_page or read.page
            walk.last_cursor = read.cursor
            walk.entries += read.fresh
            last = read.page.entries  # all of it: a known account may be a boundary repeat
            if stop is not None and _reaches(read.page.min_cursor, stop):
                walk.reached = True
                break
        walk.new = [e for e in walk.entries if identity(e) not in known]
        if walk.reached:
            self._verify_tail(walk, last, stop, known)
        return walk

    def _verify_tail(self, walk: _Walk, last: list[dict], stop: Any, known: set[str]) -> None:
        """Tell new from old among unknown accounts after the last known one on the last page.

        Normally the last page ends in known accounts. Unknown ones after them appear only
        when unfollows emptied the known accounts just below `stop`: they may be old follows
        never seen before. One request at `minTime=stop` lists what is older, instead of
        guessing (a guess would either drop a follow or emit an old one).
        """
        last_known = max((i for i, e in enumerate(last) if identity(e) in known), default=-1)
        tail = [e for e in last[last_known + 1:] if identity(e) is not None]
        if not tail:
            return
        older = {identity(e) for e in self.fetch(stop).entries}
        old_keys = {identity(e) for e in tail} & older
        if old_keys:
            walk.new = [e for e in walk.new if identity(e) not in old_keys]
            walk.old_verified = sorted(k for k in old_keys if k)

    def _leftover(self, walk: _Walk, stop: Any, *, tries: int) -> Gap | None:
        """The gap a walk leaves when it ran out of budget or tripped a guard, if any."""
        pager = walk.pager
        if walk.reached:
            return None
        if pager.stop_reason == MAX_PAGES:
            return Gap(pager.next_cursor, stop, 0)
        if pager.stop_reason in _GUARDS and walk.last_cursor is not None:
            if tries + 1 >= GAP_TRIES:
                self.warnings.append(f"gave up reading older follows below cursor "
                                     f"{walk.last_cursor}: the upstream kept answering "
                                     f"{pager.stop_reason} ({GAP_TRIES} polls)")
                return None
            return Gap(walk.last_cursor, stop, tries + 1)
        at_cap = pager.stop_reason == NO_CURSOR or (
            pager.last_page is not None and pager.last_page.min_cursor in (-1, "-1"))
        if at_cap and stop is not None:
            self.warnings.append("the upstream stopped listing at its depth cap before the "
                                 "known follows: older new follows cannot be read")
        return None

    def meta(self, handle: str, items: list, *, state: TriggerState | None) -> dict[str, Any]:
        rate = self.last_page.rate_limit if self.last_page else None
        return {
            "handle": handle,
            "requests": self.attempts,
            "pages": self.pages,
            "creditsUsed": self.pages * CREDITS_PER_REQUEST,
            "newFollows": len(items),
            "baseline": self.baselined,
            "catchingUp": bool(state and state.gaps),
            "pendingGaps": len(state.gaps) if state else 0,
            "warnings": self.warnings,
            "rateLimitLimit": rate.limit if rate else None,
            "rateLimitRemaining": rate.remaining if rate else None,
        }


def _as_ms(cursor: Any) -> float:
    # Cursor units vary between upstreams (seconds or milliseconds): compare in one unit.
    value = float(cursor)
    return value * 1000 if abs(value) < 1e11 else value


def _reaches(min_cursor: Any, stop: Any) -> bool:
    if min_cursor in _DEAD:
        return False
    return _as_ms(min_cursor) <= _as_ms(stop)


def _newest_cursor(page: Page, fallback: Any = None) -> Any:
    """The follow time of the newest account on a page; lower is always safe, higher is not."""
    if not page.entries:
        return fallback
    hi, lo = page.max_cursor, page.min_cursor
    if hi not in _DEAD and (lo in _DEAD or _as_ms(hi) >= _as_ms(lo)):
        return hi
    return lo if lo not in _DEAD else fallback


def _dedupe(entries: list[dict]) -> list[dict]:
    seen: set[str] = set()
    out = []
    for e in entries:
        key = identity(e)
        if key is None or key not in seen:
            out.append(e)
            if key is not None:
                seen.add(key)
    return out


def _keys(entries: list[dict]) -> list[str]:
    return [k for k in (identity(e) for e in entries) if k is not None]


def _unique(keys: list[str]) -> list[str]:
    return list(dict.fromkeys(keys))
