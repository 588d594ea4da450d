"""The polling trigger "Account Unfollowed": each unfollow of an account the trigger has seen,
once, for what the follow trigger costs in the steady state.

A poll:
1. Keeps up with new follows with the follow trigger's walk (walk.py): from the newest follow
   down to the watermark, ceil((n + 1) / p) requests for n new follows. Every account listed on
   a page the poll read goes into the roster (roster.py) as seen now.
2. Takes the first page's `total` as a checksum. `total` is taken to be the account's following
   count (an inference, like the cursor one). It should equal the accounts in the roster plus
   `offset`, the accounts the count includes that cannot be listed (beyond the upstream's depth
   cap, or counted but hidden). Equal: nothing was unfollowed, the poll is done. Higher: not an
   unfollow; the difference is adopted into `offset`. Short by u: a read of the list begins.
3. The read goes down from the newest follow, page by page, within the page budget (and on in
   the next polls when it needs more). After each page, an account whose bound (a follow time
   at or before its own, see roster.py) lies above the page's oldest follow, and that no page
   has listed since the read began, is gone: emitted as last seen, and dropped. A read begun by
   the count stops once it has found u. A full read (the baseline, the periodic one every
   `reconcileEvery` polls) goes to the end of the list or the depth cap and re-syncs `offset`.

The walk only reads while it is caught up with new follows (a burst bigger than the page
budget is read first), so every re-followed account has been listed at the top before the read
passes its old place: an unfollow undone before the next poll is not an event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cmp_to_key
from typing import Any

from ..core import cursors
from ..core.errors import ConnectorError, StateError
from ..core.http import Page, PageSource, list_reader
from ..core.items import flatten, identity
from ..core.pagination import DEPTH_CAP, END, GUARDS, NO_CURSOR, Pager, PageRead
from .results import CREDITS_PER_REQUEST, Result
from .roster import FIELDS, Account, Roster
from .state import (
    _GAP_FIELDS,
    _RESTORE,
    GAP_LIMIT,
    MAX_TRIES,
    MAX_WAIT,
    Gap,
    _check_cursor,
    _gap,
    backoff,
    check_fields,
    check_handle,
    check_version,
    parse_object,
)
from .walk import _GUARD_TEXT, PollRun

KEY = "account_unfollowed"
#: The kind of event this trigger's items are, in the outbox and on webhooks.
EVENT = "unfollowed"
#: 2 adds the watermark's `base` (walk.py), and a scan's `recheck`.
STATE_VERSION = 2
DEFAULT_BUDGET = 50
DEFAULT_RECONCILE = 96
#: A roster larger than this is damage: the upstream lists about 5,000 accounts, and a full
#: read drops the ones pushed below its depth cap.
ROSTER_LIMIT = 50_000
#: More tracked accounts than this means many have been pushed below the depth cap since the
#: last full read: one is started, to drop them (TikTok itself allows 10,000 follows).
TRACK_LIMIT = 10_000
#: A list that ends (hasMore false, a live cursor) this deep while the count says it goes on is
#: taken to have reached the depth cap (about 5,000) rather than its end.
DEPTH_NEAR = 4000

#: `_Poll._reach`: the read listed the whole list.
_WHOLE = object()
#: What a read that ends where the list may go on was answered.
_END_TEXT = {NO_CURSOR: "a page with no cursor to go on from",
             END: "an empty page below where it had listed"}

# Why a read of the list runs.
BASELINE = "baseline"  # the first poll: learn the list, emit nothing
FULL = "full"  # every `reconcileEvery` polls: read to the end and re-sync
SHORT = "short"  # the count came up short: read until the missing accounts are found
MODES = (BASELINE, FULL, SHORT)

__all__ = ["DEFAULT_BUDGET", "DEFAULT_RECONCILE", "EVENT", "KEY", "Scan", "UnfollowState",
           "run"]


def run(
    client: PageSource,
    inputs: dict[str, Any],
    *,
    source: str = "API",
    state: Any = None,
    mode: str = "live",
) -> Result:
    """Poll once. `state` is what the previous poll returned (None on the first run);
    `inputs` are prepared (defaults applied, handle normalised)."""
    handle = inputs["handle"]
    # Parse state before any request: damaged state must cost nothing and change nothing.
    prior = UnfollowState.from_json(state) if state is not None else None
    pages = _Pages(list_reader(client, handle, count=inputs.get("count"),
                               request_source=source))
    walk = PollRun(pages.fetch, budget=inputs.get("maxPages", DEFAULT_BUDGET))
    now = _now_ms(prior.clock if prior is not None else 0)
    if mode == "test":
        stamp = iso(now)
        items = [_item(item, stamp, stamp) for item in walk.sample()]
        meta = _Poll(walk, pages, reconcile=0, now=now).meta(handle, None)
        meta.update(mode="test", sampleItems=len(items))
        return Result(items=items, state=state, meta=meta)
    poll = _Poll(walk, pages, reconcile=inputs.get("reconcileEvery", DEFAULT_RECONCILE),
                 now=now)
    if prior is None or prior.handle != handle:
        if prior is not None:
            walk.warnings.append(f"the state was for @{prior.handle}; started a new baseline "
                                 f"for @{handle}")
        new_state = poll.baseline(handle)
    else:
        new_state = poll.advance(prior)
    return Result(items=poll.items, state=new_state.to_json(), meta=poll.meta(handle, new_state))


@dataclass
class Scan:
    """A read of the whole list in progress: where it goes on from (None: the newest follow),
    why it runs, when it began (epoch ms), and how its reading has gone."""

    cursor: Any
    mode: str
    began: int
    polls: int = 0
    tries: int = 0
    wait: int = 0
    #: This read reads the list again because the last one ended where it could not tell
    #: the list's end from a place where the upstream stops listing.
    recheck: bool = False

    def failed(self, cursor: Any) -> None:
        """The upstream broke the read off at `cursor`: go on from there after 1, 2, 4 ...
        polls."""
        self.cursor = cursor
        self.tries, self.wait = backoff(self.tries)

    def to_json(self) -> dict[str, Any]:
        out = {"from": self.cursor, "mode": self.mode, "began": self.began,
               "polls": self.polls, "tries": self.tries, "wait": self.wait}
        if self.recheck:
            out["recheck"] = True
        return out

    @classmethod
    def from_json(cls, raw: Any, version: int = STATE_VERSION) -> Scan:
        if not isinstance(raw, dict) or raw.get("mode") not in MODES:
            raise StateError(f"state is damaged: 'scan' must be null or an object with a mode "
                             f"({', '.join(MODES)}); {_RESTORE}")
        check_fields(raw, _SCAN_FIELDS[version], "the scan")
        _check_cursor(raw.get("from"), "scan 'from'")
        numbers = [raw.get(k, 0) for k in ("began", "polls", "tries", "wait")]
        if not all(type(n) is int and 0 <= n < 2**53 for n in numbers):
            raise StateError(f"state is damaged: the scan's counters must be whole numbers; "
                             f"{_RESTORE}")
        began, polls, tries, wait = numbers
        recheck = raw.get("recheck", False)
        if not isinstance(recheck, bool):
            raise StateError(f"state is damaged: the scan's 'recheck' must be true or false; "
                             f"{_RESTORE}")
        return cls(raw.get("from"), raw["mode"], began, polls, min(tries, MAX_TRIES),
                   min(wait, MAX_WAIT), recheck)


@dataclass
class UnfollowState:
    """What the trigger keeps between polls: the walk's place (watermark, gaps), the roster,
    the count's offset, and the read of the list in progress, if any."""

    handle: str
    watermark: Any = None
    gaps: list[Gap] = field(default_factory=list)
    roster: Roster = field(default_factory=Roster)
    #: A cursor at or below the watermark that the upstream handed out (walk.py).
    base: Any = None
    #: Accounts the count includes that cannot be listed (beyond the depth cap, hidden);
    #: negative when the count runs behind the list.
    offset: int = 0
    #: Polls since the last full read of the list.
    since_full: int = 0
    #: Full reads in a row that spanned polls and ended with the count below the list.
    short_scans: int = 0
    #: The last full read stopped at the upstream's depth cap.
    capped: bool = False
    #: When the last poll ran (epoch ms); each poll's time is later than the one before.
    clock: int = 0
    scan: Scan | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "trigger": KEY,
            "handle": self.handle,
            "watermark": self.watermark,
            "base": self.base,
            "gaps": [g.to_json() for g in self.gaps],
            "offset": self.offset,
            "sinceFull": self.since_full,
            "shortScans": self.short_scans,
            "capped": self.capped,
            "clock": self.clock,
            "scan": self.scan.to_json() if self.scan is not None else None,
            "accounts": self.roster.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> UnfollowState:
        """Parse stored state; anything unexpected is a StateError, never a silent reset."""
        data = parse_object(data)
        if data.get("trigger") != KEY:
            raise StateError(f"state was not written by the Account Unfollowed trigger (it "
                             f"has no \"trigger\": \"{KEY}\"); pass the state this trigger "
                             f"returned, or null to start a new baseline")
        version = check_version(data.get("v"), STATE_VERSION)
        check_fields(data, _FIELDS[version], "the state")
        handle = check_handle(data.get("handle"))
        _check_cursor(data.get("watermark"), "watermark")
        _check_cursor(data.get("base"), "base")
        raw_gaps = data.get("gaps", [])
        if not isinstance(raw_gaps, list) or len(raw_gaps) > GAP_LIMIT:
            raise StateError(f"state is damaged: 'gaps' must be a list of at most {GAP_LIMIT}; "
                             f"{_RESTORE}")
        numbers = {k: data.get(k, 0) for k in ("offset", "sinceFull", "shortScans", "clock")}
        if not all(type(n) is int and abs(n) < 2**53 for n in numbers.values()) or min(
            numbers["sinceFull"], numbers["shortScans"], numbers["clock"]
        ) < 0:
            raise StateError(f"state is damaged: offset, sinceFull, shortScans and clock must "
                             f"be whole numbers; {_RESTORE}")
        capped = data.get("capped", False)
        if not isinstance(capped, bool):
            raise StateError(f"state is damaged: 'capped' must be true or false; {_RESTORE}")
        raw_scan = data.get("scan")
        try:
            roster = Roster.from_json(data.get("accounts", []), limit=ROSTER_LIMIT)
        except ValueError as exc:
            raise StateError(f"state is damaged: 'accounts' does not decode ({exc}); "
                             f"{_RESTORE}") from None
        gap_fields = _GAP_FIELDS if version >= 2 else _GAP_FIELDS - {"base"}
        return cls(handle=handle, watermark=data.get("watermark"), base=data.get("base"),
                   gaps=[_gap(g, gap_fields) for g in raw_gaps], roster=roster,
                   offset=numbers["offset"], since_full=numbers["sinceFull"],
                   short_scans=numbers["shortScans"], capped=capped, clock=numbers["clock"],
                   scan=Scan.from_json(raw_scan, version) if raw_scan is not None else None)


#: The fields each version of this state has, and of its scan: any other is refused.
_FIELDS = {1: {"v", "trigger", "handle", "watermark", "gaps", "offset", "sinceFull",
               "shortScans", "capped", "clock", "scan", "accounts"}}
_FIELDS[2] = _FIELDS[1] | {"base"}
_SCAN_FIELDS = {1: {"from", "mode", "began", "polls", "tries", "wait"}}
_SCAN_FIELDS[2] = _SCAN_FIELDS[1] | {"recheck"}


class _Pages:
    """Fetches pages and keeps those this poll got, by the cursor they were asked with: every
    account they list is followed now, and the read of the list reuses them instead of asking
    again."""

    def __init__(self, fetch: Callable[[Any], Page]) -> None:
        self._fetch = fetch
        self.got: list[tuple[Any, Page]] = []
        self.by_cursor: dict[Any, Page] = {}

    def fetch(self, cursor: Any) -> Page:
        page = self._fetch(cursor)
        self.got.append((cursor, page))
        self.by_cursor.setdefault(cursor, page)
        return page

    def total(self) -> int | None:
        """The following count on this poll's first page of the list's top, if it said."""
        page = self.by_cursor.get(None)
        return page.total if page is not None else None


class _Spent(Exception):
    """The page budget is spent: the read goes on from here next poll."""


class _Poll:
    """One poll of the trigger: the walk, the check, the read, and what they found."""

    def __init__(self, walk: PollRun, pages: _Pages, *, reconcile: int, now: int) -> None:
        self.walk = walk
        self.pages = pages
        self.reconcile = reconcile
        self.now = now
        self.items: list[dict[str, Any]] = []
        self.gone: list[Account] = []
        self.added = 0
        self.merged: set[int] = set()
        self.check: str | None = None
        self.total: int | None = None
        self.expected: int | None = None
        self.full_read = False
        self.dropped = 0  # accounts found below the depth cap by this poll's full read
        self.unfound = 0  # unfollows the count showed that no read could find
        self.baselined = False

    # The two kinds of poll

    def baseline(self, handle: str) -> UnfollowState:
        """First poll: learn the list (as much as the budget reads now, the rest next polls);
        nothing is emitted."""
        self.baselined = True
        watermark, base, _ = self.walk.baseline()
        state = UnfollowState(handle=handle, watermark=watermark, base=base, clock=self.now)
        self._merge_all(state.roster)
        self.total = self.pages.total()
        self.check = BASELINE
        state.scan = Scan(None, BASELINE, began=self.now)
        self._read(state, target=None)
        return state

    def advance(self, state: UnfollowState) -> UnfollowState:
        """Every poll after the first: new follows, the check, and the read if one is due."""
        state.clock = self.now
        state.since_full += 1
        step = self.walk.advance(state.watermark, state.gaps, state.roster, state.base)
        state.watermark, state.gaps, state.base = step.watermark, step.gaps, step.base
        self._merge_all(state.roster)
        caught_up = self.walk.top_done and not state.gaps
        total = self.total = self.pages.total()
        expected = self.expected = len(state.roster) + state.offset
        scan = state.scan
        waiting = scan is not None and scan.wait > 0
        if waiting:
            assert scan is not None
            scan.wait -= 1
        if not caught_up:
            self.check = "catchingUp"
            return state
        if scan is not None and scan.mode == BASELINE:
            self.check = BASELINE
            self.baselined = True
            self.expected = None  # the roster is still being learnt
        elif total is None:
            self.check = "noTotal"
            self.walk.warnings.append(
                "the upstream sent no following count (total): unfollows are found only by "
                + (f"the full read every {self.reconcile} polls" if self.reconcile else
                   "a full read, and reconcileEvery is 0 (never): none will be found until it "
                   "sends a count again"))
        else:
            self.check = ("agreed" if total == expected else
                          "higher" if total > expected else "short")
            if self.check == "agreed":
                state.short_scans = 0
        if scan is None:
            if self.check == "short":
                scan = Scan(None, SHORT, began=self.now)
            elif ((self.reconcile and state.since_full >= self.reconcile)
                  or len(state.roster) > TRACK_LIMIT):
                scan = Scan(None, FULL, began=self.now)
        elif scan.mode == SHORT and self.check in ("agreed", "higher"):
            scan = None  # the count agrees again: nothing is missing any more
        if scan is None and self.check == "higher":
            assert total is not None
            state.offset += total - expected  # a higher count is not an unfollow
        state.scan = scan
        if scan is not None and not waiting:
            shortfall = expected - total if (scan.mode == SHORT and total is not None) else None
            self._read(state, target=shortfall)
        return state

    # The read of the list

    def _read(self, state: UnfollowState, *, target: int | None) -> None:
        """Read on down the list from where the read stands; emit the accounts it shows are
        gone. `target`: stop once this many are found (the count's shortfall)."""
        scan = state.scan
        assert scan is not None
        scan.polls += 1
        try:
            while not self._read_on(state, scan, target):
                # It ended where it could not tell the list's end from where the upstream
                # stops listing: read again from the top (pages this poll read are reused).
                scan = state.scan
                assert scan is not None
                scan.polls += 1
                target = None
        finally:
            self._emit()

    def _read_on(self, state: UnfollowState, scan: Scan, target: int | None) -> bool:
        """`_read`'s pages; False when the read is to begin again from the top."""
        pager = Pager(self._fetch_for_read, start=scan.cursor)
        found = 0
        try:
            for read in pager:
                reason = pager.stop_reason
                # Even a page the read cannot go on from lists accounts that are followed.
                self._merge(state.roster, read.cursor, read.page)
                if reason in GUARDS:
                    self._read_failed(scan, read.cursor, _GUARD_TEXT[reason])
                    return True
                scan.tries = 0  # the read moves on
                if reason in (END, NO_CURSOR, DEPTH_CAP):
                    return self._finish(state, read, reason, target, found)
                scan.cursor = read.page.min_cursor
                if scan.mode != BASELINE:
                    found += self._judge(state, scan, read.page.min_cursor)
                if target is not None and found >= target:
                    state.scan = None  # as many gone as the count said: the rest is as it was
                    return True
        except _Spent:
            scan.cursor = pager.next_cursor
        except ConnectorError as err:
            if not err.transient:
                raise
            self._read_failed(scan, pager.next_cursor, err.message)
        return True

    def _fetch_for_read(self, cursor: Any) -> Page:
        page = self.pages.by_cursor.get(cursor)
        if page is not None:
            return page  # this poll's walk already read it
        if self.walk.remaining < 1:
            raise _Spent
        return self.walk.fetch(cursor)

    def _judge(self, state: UnfollowState, scan: Scan, below: Any) -> int:
        """Drop the accounts that should have been listed above the follow time `below` since
        the read began, and were not."""
        gone = [key for key, a in state.roster
                if a.seen < scan.began and a.bound is not None and cursors.below(below, a.bound)]
        for key in gone:
            self.gone.append(state.roster.remove(key))
        return len(gone)

    def _finish(self, state: UnfollowState, read: PageRead, reason: str, target: int | None,
                found: int) -> bool:
        """The read reached the end of the list, or where the upstream stops listing: whatever
        it did not list, and whose place it passed, is gone; an account whose place it may not
        have reached is out of sight, never an unfollow (it is counted, and no longer tracked).
        The count's offset is synced again. Returns False, changing nothing but the read, when
        the read must begin again to tell the list's end from where the upstream stops."""
        scan = state.scan
        assert scan is not None
        roster, total = state.roster, self.total
        listed = sum(1 for _, a in roster if a.seen >= scan.began)
        reach, capped, unsure = self._reach(read, reason, listed)
        if unsure and not scan.recheck and not state.capped and scan.mode != BASELINE:
            # The list was not known to reach the depth cap: its tail may have been unfollowed
            # while the read went on over several polls. One read from the top tells (a
            # second that ends so drops what it did not reach).
            self.walk.warnings.append(
                f"the read of the list ended on {_END_TEXT[reason]}, where the list may go "
                f"on: it reads the list again from the top to tell its end from the depth cap")
            state.scan = Scan(None, FULL, began=self.now, recheck=True)
            return False
        for key, account in roster:
            if account.seen >= scan.began:
                continue
            gone = reach is _WHOLE or (reach is not None and account.bound is not None
                                       and cursors.below(reach, account.bound))
            if gone and scan.mode != BASELINE:
                self.gone.append(roster.remove(key))
                found += 1
            else:
                roster.remove(key)
                self.dropped += 1
        if total is None:
            state.offset += self.dropped
        else:
            offset = total - len(roster)
            if offset >= 0 or scan.polls == 1 or state.short_scans >= 1:
                if offset < 0:
                    self.walk.warnings.append(
                        f"the following count ({total}) is below the {len(roster)} accounts the "
                        f"list shows: taken as a count that lags behind")
                state.offset, state.short_scans = offset, 0
            else:
                # A read over several polls: accounts it listed early may have gone since.
                # The next poll's check reads again; a second such read settles it.
                state.offset, state.short_scans = 0, state.short_scans + 1
        if capped and (state.offset > 0 or self.dropped):
            self.walk.warnings.append(
                f"the list is deeper than the upstream lists (its depth cap, about 5,000): "
                f"unfollows of the {max(state.offset, 0)} oldest follows cannot be seen")
        elif unsure and self.dropped:
            self.walk.warnings.append(
                f"the read of the list ended on {_END_TEXT[reason]}, where the list may go on "
                f"(new follows may have pushed the rest below the depth cap): the "
                f"{self.dropped} accounts it did not reach are out of sight, not taken for "
                f"unfollows")
        if reach is not _WHOLE and target is not None and found < target:
            self.unfound = target - found
            self.walk.warnings.append(
                f"the count shows {self.unfound} more unfollows than the list does: they "
                f"are below {'the depth cap' if capped else 'where the read could list'}, "
                f"where they cannot be seen")
        if not unsure:
            state.capped = capped
        state.scan = None
        state.since_full = 0
        self.full_read = True
        return True

    def _reach(self, read: PageRead, reason: str, listed: int) -> tuple[Any, bool, bool]:
        """How far down the read that ends with `read` has listed everything: (the follow time
        it listed everything above, or _WHOLE for the whole list, or None for nothing beyond
        what it listed; whether the upstream's depth cap stopped it; whether it cannot tell the
        list's end from a place where the upstream stopped listing)."""
        page, cursor = read.page, read.cursor
        if reason == DEPTH_CAP:
            # The last page lists follows at or before `cursor`, down to the cap: an account
            # placed above `cursor` was listed if it is still followed.
            return cursor, True, False
        if reason == NO_CURSOR or (not page.entries and cursor is not None):
            # No cursor to go on from, or an empty page below where the read had listed (a
            # read over several polls whose place the depth cap overtook answers so, as does
            # a list whose tail was unfollowed meanwhile): what lies below is not known.
            return cursor, False, True
        total = self.total
        if total is not None and total > listed >= DEPTH_NEAR:
            # hasMore false this deep while the count goes on: the depth cap.
            live = not cursors.is_dead(page.min_cursor)
            return (page.min_cursor if live else cursor), True, False
        return _WHOLE, False, False

    def _read_failed(self, scan: Scan, cursor: Any, why: str) -> None:
        scan.failed(cursor)
        self.walk.warnings.append(
            f"the read of the list broke off ({why}); it goes on from there "
            f"{'next poll' if not scan.wait else f'in {scan.wait + 1} polls'}")

    # Pages into the roster, accounts out as items

    def _merge_all(self, roster: Roster) -> None:
        for cursor, page in self.pages.got:
            self._merge(roster, cursor, page)

    def _merge(self, roster: Roster, cursor: Any, page: Page) -> None:
        """Every account a page lists is followed now; its bound is the page's oldest follow
        time, when the page's cursors can be trusted: consistent, and moved below the cursor
        sent (a page that hands the cursor back, stalled, may list older follows under it)."""
        if id(page) in self.merged:
            return
        self.merged.add(id(page))
        bound = page.min_cursor
        if cursors.is_dead(bound) or not cursors.consistent(
            len(page.entries), page.min_cursor, page.max_cursor, cursor
        ) or not (cursors.is_dead(cursor) or cursors.below(bound, cursor)):
            bound = None
        for entry in page.entries:
            if roster.see(identity(entry), flatten(entry), bound, self.now):
                self.added += 1

    def _emit(self) -> None:
        """The accounts found gone, oldest follow first, as items."""
        if not self.gone:
            return
        detected = iso(self.now)
        ordered = sorted(self.gone, key=cmp_to_key(_older_first))
        self.items += [_item(a.item, iso(a.seen), detected) for a in ordered]
        self.gone = []

    def meta(self, handle: str, state: UnfollowState | None) -> dict[str, Any]:
        walk = self.walk
        rate = walk.last_page.rate_limit if walk.last_page else None
        gaps = state.gaps if state else []
        reading = state is not None and state.scan is not None
        return {
            "handle": handle,
            "requests": walk.attempts,
            "pages": walk.pages,
            "creditsUsed": walk.pages * CREDITS_PER_REQUEST,
            "unfollows": len(self.items) if state is not None else 0,
            "followsSeen": self.added,
            "baseline": self.baselined,
            "check": self.check,
            "total": self.total,
            "expectedTotal": self.expected,
            "fullRead": self.full_read,
            "readingList": reading,
            "tracked": len(state.roster) if state else 0,
            "unlisted": max(state.offset, 0) if state else 0,
            "atDepthCap": state.capped if state else False,
            "unfoundUnfollows": self.unfound,
            "droppedAtCap": self.dropped,
            "catchingUp": bool(gaps) or reading or (state is not None and not walk.top_done),
            "pendingGaps": len(gaps),
            "warnings": walk.warnings,
            "rateLimitLimit": rate.limit if rate else None,
            "rateLimitRemaining": rate.remaining if rate else None,
        }


def _item(fields: dict[str, Any], last_seen: str, detected: str) -> dict[str, Any]:
    """An emitted item: the follow trigger's flat item, then when the account was last seen
    listed and when its unfollow was detected (it happened in between)."""
    item = {name: fields.get(name) for name in FIELDS}
    unique_id = item["uniqueId"]
    item["profileUrl"] = f"https://www.tiktok.com/@{unique_id}" if unique_id else None
    item["lastSeenAt"] = last_seen
    item["detectedAt"] = detected
    return item


def _older_first(a: Account, b: Account) -> int:
    """Accounts by bound, oldest first; those without one (listed last) first of all."""
    if a.bound is None or b.bound is None:
        return (b.bound is None) - (a.bound is None)
    return -1 if cursors.below(a.bound, b.bound) else 1 if cursors.below(b.bound, a.bound) else 0


def _now_ms(after: int) -> int:
    """Now in epoch milliseconds, and always later than `after` (the previous poll's time),
    even if the clock steps back."""
    return max(int(time.time() * 1000), after + 1)


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")
