"""One range's walk (walk.py plans a poll's ranges): from its start down the list until a
page reaches its stop, within the pages it is given. The page that reaches the stop is sorted
into new and old follows (`_settle`), read past when it ends inside the stop's second
(`_short`, `_read_on`); a read the upstream broke off keeps the rest of the range (`_failed`).
"""

from __future__ import annotations

from typing import Any

from ..core import cursors
from ..core.errors import ConnectorError, ResponseFormatError
from ..core.http import Page
from ..core.items import is_stable
from ..core.pagination import (
    ANSWERED,
    ENDS,
    GUARDS,
    MAX_PAGES,
    REACHED,
    UNUSABLE,
    Pager,
    PageRead,
    read_page,
)
from ..state.gaps import Gap
from ..state.prints import fingerprint
from .poll import PollRun, newest_cursor
from .reads import Known, RangeRead, pick


class RangeWalker:
    """The walks of one poll's ranges, over its PollRun's budget."""

    def __init__(self, run: PollRun, lowest_stop: Any = None) -> None:
        self.run = run
        #: The lowest stop of the ranges this poll reads, as taken (see walk.py `advance`).
        self.lowest_stop = lowest_stop

    def walk(self, start: Any, stop: Any, pages: int, known: Known, floor: Any,
             gap: Gap | None, base: Any, lower: list[Any] | None = None,
             account: int | None = None) -> RangeRead:
        """Read from `start` down until a page reaches the follow time `stop` (or the list
        ends), within `pages` pages; `gap` is the range being read, None for the top walk.
        `floor`: where old follows are checked for; `base`: a cursor at or below `stop` the
        upstream handed out, or None (see walk.py `advance`); `lower`: a gap's, the starts
        of the ranges still unread below it (see `_settle`); `account`: the fingerprint of
        the account `stop` came from, or None (see `_short`)."""
        walk = RangeRead(stop=gap.stop if gap is not None else stop,
                         stop_account=gap.stop_account if gap is not None else account,
                         base=base, tries=gap.tries if gap is not None else 0)
        cursor = start

        def fetch(at: Any) -> Page:
            nonlocal stop, account
            page = self.run.fetch(at)
            if at is None and walk.first_page is None and base is not None and stop is not None:
                # The list's newest follow is older than the stop: read down to base instead
                # (see walk.py `advance`). Set before the pager judges this page.
                newest = newest_cursor(page, None, now_ms=self.run.now_ms)
                if newest is not None and cursors.below(newest, stop) \
                        and cursors.below(base, stop):
                    stop, account = base, None  # a base is no account's (see `_short`)
                    pager.stop = base  # type: ignore[union-attr]  # the pager calls fetch
            return page

        pager: Pager | None = None

        while True:
            pager = Pager(fetch, start=cursor, stop=stop, max_pages=pages)
            pager.seen = walk.keys  # one walk, even past a page it took for the last
            go_on = None
            try:
                for read in pager:
                    reason = read.reason
                    self.run.touched.update(read.keys)
                    if reason in GUARDS:
                        self._failed(walk, read.cursor, ANSWERED[reason])
                        break
                    if walk.first_page is None:
                        walk.first_page = read.page
                    # The page that may reach the stop: it does, or the list ends on it with
                    # no cursor to date its oldest follow.
                    if reason == REACHED and self._short(read, stop, known,
                                                         self.run.pages_before(), account):
                        read = self._read_on(walk, read, known)
                        if read is None:
                            break
                    if reason == REACHED or (
                        reason in ENDS and cursors.is_dead(read.page.min_cursor)
                    ):
                        settled = self._settle(walk, read, stop, known, floor, lower)
                        if settled is _ABOVE:
                            walk.ahead = True
                            go_on = read.page.min_cursor
                            # The stop is ahead of the list: its base is not, and is lower.
                            if base is not None and cursors.below(base, stop):
                                stop, account = base, None
                        elif settled:
                            walk.at_cap = reason != REACHED and not walk.old and not any(
                                k in known for k in read.keys)
                        break
                    walk.new += [(k, e) for k, e in zip(read.fresh_keys, read.fresh,
                                                         strict=False) if k not in known]
                    if reason == MAX_PAGES:
                        walk.left = walk.rest(pager.next_cursor)
            except ConnectorError as err:
                if not err.transient:
                    raise
                walk.error = err
                self._failed(walk, pager.next_cursor, err.message)
            if go_on is None:
                break
            pages = min(pages - pager.pages, self.run.remaining)
            if pages < 1:
                walk.left = walk.rest(go_on)
                break
            cursor = go_on
        # `fetch` and the pager refer to each other (a cycle): broken here, the poll's pages
        # are freed as it ends instead of waiting for the garbage collector, which otherwise
        # runs several times as often in a watch and costs CPU with each run.
        pager = None
        if walk.failure is not None and start is None and walk.first_page is None:
            # Nothing usable from the very first page: this poll has nothing to go on.
            if walk.error is not None:
                raise walk.error
            raise ResponseFormatError(f"the upstream answered the first page with "
                                      f"{walk.failure}; try again, and report it if it stays")
        if walk.at_cap and stop is not None:
            self.run.warnings.append("the upstream stopped listing at its depth cap before "
                                     "the known follows: older new follows cannot be read")
        known.update([*(k for k, _ in walk.new), *walk.old])  # what later walks know
        return walk

    @staticmethod
    def _short(read: PageRead, stop: Any, known: Known, pages_before: bool,
               account: int | None = None) -> bool:
        """Whether a page that reaches `stop` and ends in the stop's own second (its cursor
        dates its last account) must be read past: that second may go on below the page, with
        follows made after the poll that took the stop, or old ones. It must when its last
        account is unknown. A known one is proof that what lies below is older only when the
        page also lists `account`, the account the stop came from (the newest follow when the
        poll took the stop, state/followed.py): follows made later in that second are listed
        above it. Alone it proves nothing: a remembered account re-followed in the stop's
        second is listed above the new follows made in it (nor does an account known higher
        on the page: it may be one emitted from above the stop). So with `account`, a page
        that does not list it is read past too, for one request more, only then; a page that
        ends on it or below it costs what it did. Without (a state kept before it was, or a
        stop that is a base, no account's), a known last account ends the walk, as it did.
        (Left: `account` itself, unfollowed and followed again since, is listed above that
        second's new follows; a page that lists it and ends on a known account in that second
        stops short of them.) A page fetched at the stop itself cannot be read past, nor the
        stop's second on an upstream that pages only "before" a cursor (`pages_before`): it
        never lists the rest of that second."""
        if not read.keys or pages_before or cursors.below(read.page.min_cursor, stop) or not (
                read.cursor is None or cursors.below(stop, read.cursor)):
            return False
        return read.keys[-1] not in known or (
            account is not None and all(fingerprint(k) != account for k in read.keys))

    def _read_on(self, walk: RangeRead, read: PageRead, known: Known) -> PageRead | None:
        """Read past a page that ends short of its stop's second (`_short`): the page below,
        from the stop, lists that whole second. The accounts of the short page it does not
        list again lie above the stop's second, and are new unless known; those it lists
        again are sorted with it into new and old. Returns the page below, or None when it
        could not be read now: the range is kept from the short page, to be read again."""
        if self.run.remaining < 1:
            walk.left = walk.rest(read.cursor, walk.tries, check=True)
            return None
        below = self._one_page(read.page.min_cursor)
        if isinstance(below, str):
            self._failed(walk, read.cursor, below)
            return None
        again, seen = set(below.keys), walk.keys
        walk.new += [(k, e) for k, e in zip(read.fresh_keys, read.fresh, strict=False)
                     if k not in again and k not in known]
        # Fresh again: they are sorted with the page below, not taken for repeats there.
        seen.difference_update(k for k in read.fresh_keys if k in again)
        fresh = [(k, e) for k, e in zip(below.fresh_keys, below.fresh, strict=False)
                 if k not in seen]
        seen.update(k for k, _ in fresh)
        return PageRead(below.page, below.cursor, below.keys, [e for _, e in fresh],
                        [k for k, _ in fresh], REACHED)

    def _settle(self, walk: RangeRead, read: PageRead, stop: Any, known: Known, floor: Any,
                lower: list[Any] | None = None) -> bool | object:
        """Sort the page that reaches the walk's stop into new and old follows (see walk.py
        `advance`). Returns False when that could not be done now and the page is left for
        later, _ABOVE when it holds only new follows and no account the trigger knows: the
        stop was ahead of the list, and the walk goes on below it.

        A memory at its bound forgets accounts a poll did not see (state/memory.py), and a
        gap's last page holds old follows an earlier poll saw: one forgotten between two
        anchors would pass for new. So on a gap's page (`lower` not None), when every range
        still unread starts below the page, each unknown account is checked against the
        follows older than the stop (in place of the check at `floor`): those listed are old,
        the rest new. One followed in the stop's very second is not listed, nor one the range
        resumes at (a page-boundary repeat): if forgotten, it is emitted again (an old follow
        repeated, never a new one lost)."""
        fresh = set(read.fresh_keys)
        keys = read.keys
        # An anchor: an account the trigger knows, or one this walk saw on an earlier page.
        anchors = [k in known or (k in walk.keys and k not in fresh) for k in keys]
        last_anchor = len(anchors) - 1 - anchors[::-1].index(True) if True in anchors else -1
        unknown = [(i, k) for i, k in enumerate(keys) if not anchors[i]]
        sure = {k for i, k in unknown if i < last_anchor and is_stable(k)}
        unsure = {k for i, k in unknown if not (i < last_anchor and is_stable(k))}
        old: set[str] = set()
        base = walk.base
        if floor is not None:
            # Checked at the lowest of the stops and the base: a maxCursor ahead of the list
            # can lift the watermark and the stops taken from it, never the base; the accounts
            # between the base and the watermark were on the newest page, and are remembered
            # (the memory keeps what a poll has just seen).
            lowest = cursors.lowest([c for c in (floor, stop, base) if c is not None])
            # A stop's own second may hold new follows, made after the poll that took it: a
            # check there lists only older ones. (`lowest` is at or below every stop.)
            stop_second = self.lowest_stop is not None and not cursors.below(
                lowest, self.lowest_stop)
            floor = self.run.earlier(lowest) if stop_second else lowest
        check = floor
        bottom = read.page.min_cursor
        earlier = self.run.earlier(stop) if lower is not None and stop is not None else None
        if earlier is not None and (sure or unsure) and not cursors.is_dead(bottom) \
                and all(not cursors.is_dead(s) and cursors.below(s, bottom) for s in lower):
            check, sure, unsure = earlier, set(), sure | unsure
        if unsure and stop is not None and check is not None:
            if self.run.remaining < 1:
                walk.new += pick(read, sure)
                walk.left = walk.rest(read.cursor, walk.tries, check=True)
                return False
            listed = self._one_page(check)
            if isinstance(listed, str):
                walk.new += pick(read, sure)
                self._failed(walk, read.cursor, "a check of older follows it could not answer")
                return False
            old = unsure & set(listed.keys)
        walk.new += pick(read, (sure | unsure) - old)
        walk.old += [k for k in dict.fromkeys(keys) if k in old]
        # Without a floor (a range pending down to the end of the list) nothing was checked,
        # but a page without an anchor is still above what the trigger knows: reading on
        # costs requests, stopping here would lose what lies between it and the base.
        if last_anchor < 0 and not old and stop is not None \
                and not cursors.is_dead(read.page.min_cursor):
            return _ABOVE
        return True

    def _one_page(self, cursor: Any) -> PageRead | str:
        """The page at `cursor` (its accounts seen by this poll), or what the upstream
        answered instead of a usable one (a transient error, an empty page that claims more,
        contradicting cursors)."""
        try:
            read = read_page(self.run.fetch, cursor)
        except ConnectorError as err:
            if not err.transient:
                raise
            return err.message
        if read.reason in UNUSABLE:
            return ANSWERED[read.reason]
        self.run.touched.update(read.keys)
        return read

    def _failed(self, walk: RangeRead, cursor: Any, why: str) -> None:
        """The upstream broke the walk off at `cursor`: keep the rest of the range (its stop
        and base) for a later poll, sooner when this walk still made progress."""
        walk.failure = why
        walk.left = walk.rest(cursor, 0 if walk.first_page is not None else walk.tries).failed()
        if cursor is None:
            if walk.first_page is not None:
                self.run.warnings.append(
                    f"could not tell new follows from old on the newest page: the upstream "
                    f"answered {why}; the next poll reads it again")
            return
        wait = walk.left.wait
        self.run.warnings.append(
            f"could not read the follows below cursor {cursor}: the upstream answered {why}; "
            f"kept to try again {'next poll' if not wait else f'in {wait + 1} polls'}")


#: `_settle`: the page lies above the known follows.
_ABOVE = object()
