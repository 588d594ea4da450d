"""The "Account Unfollowed" trigger's read of the list (state/unfollowed.py's Scan): page by
page from the newest follow, every account listed going into the roster as seen now, and the
accounts whose place the read passed without listing them found gone and emitted as items.

A read begun by the count stops once it has found the accounts the count says are missing; a
full read (the baseline, the periodic one) goes to the end of the list or the depth cap and
re-syncs the count's offset. Every page comes through the pager, whose stop reasons say where
the list ends and where the upstream stops listing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..core import cursors
from ..core.errors import ConnectorError
from ..core.http import Page
from ..core.items import flatten, identity, profile_url
from ..core.pagination import ANSWERED, DEPTH_CAP, END, ENDS, GUARDS, NO_CURSOR, Pager, PageRead
from ..state.roster import FIELDS, Account, Roster
from ..state.unfollowed import BASELINE, FULL, Scan, UnfollowState
from .poll import PollRun

#: A list that ends (hasMore false, a live cursor) this deep while the count says it goes on is
#: taken to have reached the depth cap (about 5,000) rather than its end.
DEPTH_NEAR = 4000
#: `ListRead._reach`: the read listed the whole list.
_WHOLE = object()


class _Spent(Exception):
    """The page budget is spent: the read goes on from here next poll."""


class ListRead:
    """One poll's read of the list, and what it found (the trigger's poll builds on it)."""

    def __init__(self, walk: PollRun, *, now: int) -> None:
        self.walk = walk
        self.now = now
        self.items: list[dict[str, Any]] = []
        self.gone: list[Account] = []
        self.added = 0
        self.merged: set[int] = set()
        self.total: int | None = None
        self.full_read = False
        self.dropped = 0  # accounts found below the depth cap by this poll's full read
        self.unfound = 0  # unfollows the count showed that no read could find

    def read(self, state: UnfollowState, *, target: int | None) -> None:
        """Read on down the list from where the read stands; emit the accounts it shows are
        gone. `target`: stop once this many are found (the count's shortfall)."""
        try:
            while not self._read_on(state, target):
                # It ended where it could not tell the list's end from where the upstream
                # stops listing: read again from the top (pages this poll read are reused).
                target = None
        finally:
            # The accounts found gone, oldest follow first (those without a bound, listed
            # last, first of all), as items.
            detected = iso(self.now)
            self.items += [unfollow_item(a.item, iso(a.seen), detected) for a in sorted(
                self.gone, key=lambda a: (0,) if a.bound is None else (1, cursors.in_ms(a.bound)))]
            self.gone = []

    def _read_on(self, state: UnfollowState, target: int | None) -> bool:
        """`read`'s pages, for the read in `state.scan`; False when the read is to begin
        again from the top."""
        scan = state.scan
        assert scan is not None
        scan.polls += 1
        pager = Pager(self._fetch_for_read, start=scan.cursor)
        try:
            for read in pager:
                reason = read.reason
                # Even a page the read cannot go on from lists accounts that are followed.
                self.merge(state.roster, read.cursor, read.page,
                           older=scan.mode == BASELINE)
                if reason in GUARDS:
                    self._read_failed(scan, read.cursor, ANSWERED[reason])
                    return True
                scan.tries = 0  # the read moves on
                if reason in ENDS:
                    return self._finish(state, scan, read, reason, target)
                scan.cursor = read.page.min_cursor
                if scan.mode != BASELINE:
                    self._judge(state, scan, read.page.min_cursor)
                if target is not None and len(self.gone) >= target:
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
        page = self.walk.by_cursor.get(cursor)
        if page is not None:
            return page  # this poll's walk already read it
        if self.walk.remaining < 1:
            raise _Spent
        return self.walk.fetch(cursor)

    def _judge(self, state: UnfollowState, scan: Scan, below: Any) -> None:
        """Drop the accounts that should have been listed above the follow time `below` since
        the read began, and were not."""
        self.gone += [state.roster.remove(key) for key, a in state.roster
                      if a.seen < scan.began and a.bound is not None
                      and cursors.below(below, a.bound)]

    def _finish(self, state: UnfollowState, scan: Scan, read: PageRead, reason: str,
                target: int | None) -> bool:
        """The read reached the end of the list, or where the upstream stops listing: whatever
        it did not list, and whose place it passed, is gone; an account whose place it may not
        have reached is out of sight, never an unfollow (it is counted, and no longer tracked).
        The count's offset is synced again. Returns False, changing nothing but the read, when
        the read must begin again to tell the list's end from where the upstream stops."""
        roster, total = state.roster, self.total
        listed = sum(1 for _, a in roster if a.seen >= scan.began)
        reach, capped, unsure = self._reach(read, reason, listed)
        if unsure and not scan.recheck and not state.capped and scan.mode != BASELINE:
            # The list was not known to reach the depth cap: its tail may have been unfollowed
            # while the read went on over several polls. One read from the top tells (a
            # second that ends so drops what it did not reach).
            self.walk.warnings.append(
                f"the read of the list ended on {_ended_on(reason)}, where the list may go "
                f"on: it reads the list again from the top to tell its end from the depth cap")
            state.scan = Scan(None, FULL, began=self.now, recheck=True)
            return False
        for key, account in roster:
            if account.seen >= scan.began:
                continue
            gone = reach is _WHOLE or (reach is not None and account.bound is not None
                                       and cursors.below(reach, account.bound))
            account = roster.remove(key)
            if gone and scan.mode != BASELINE:
                self.gone.append(account)
            else:
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
                f"the read of the list ended on {_ended_on(reason)}, where the list may go on "
                f"(new follows may have pushed the rest below the depth cap): the "
                f"{self.dropped} accounts it did not reach are out of sight, not taken for "
                f"unfollows")
        if reach is not _WHOLE and target is not None and len(self.gone) < target:
            self.unfound = target - len(self.gone)
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

    def merge_all(self, roster: Roster, *, older: bool = False) -> None:
        """Every page this poll got (PollRun.got) into the roster: each account a page lists
        is followed now."""
        for cursor, page in self.walk.got:
            self.merge(roster, cursor, page, older=older)

    def merge(self, roster: Roster, cursor: Any, page: Page, *, older: bool = False) -> None:
        """Every account a page lists is followed now; its bound is the page's oldest follow
        time, when the page's cursors can be trusted: consistent, and moved below the cursor
        sent (a page that hands the cursor back, stalled, may list older follows under it).
        `older`: the baseline's pages, read from the newest down (Roster.see)."""
        if id(page) in self.merged:
            return
        self.merged.add(id(page))
        bound = page.min_cursor
        if cursors.is_dead(bound) or not cursors.consistent(
            len(page.entries), page.min_cursor, page.max_cursor, cursor
        ) or not (cursors.is_dead(cursor) or cursors.below(bound, cursor)):
            bound = None
        self.added += sum(roster.see(identity(e), flatten(e), bound, self.now, older=older)
                          for e in page.entries)


def unfollow_item(fields: dict[str, Any], last_seen: str, detected: str) -> dict[str, Any]:
    """An emitted item: the follow trigger's flat item, then when the account was last seen
    listed and when its unfollow was detected (it happened in between)."""
    item = {name: fields.get(name) for name in FIELDS}
    return {**item, "profileUrl": profile_url(item["uniqueId"]), "lastSeenAt": last_seen,
            "detectedAt": detected}


def _ended_on(reason: str) -> str:
    """What a read that ends where the list may go on was answered."""
    return "an empty page below where it had listed" if reason == END else ANSWERED[reason]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")
