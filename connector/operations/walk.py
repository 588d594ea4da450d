"""The walk both triggers share: one poll's reads down the list, within its page budget.

A poll reads from the newest follow down only until a page reaches the newest follow it already
knew (the watermark): with n new follows and page size p that is ceil((n + 1) / p) requests,
the fewest that can show every new follow and one known one. A burst larger than the page
budget, or a read the upstream broke off, leaves a "gap" (state/gaps.py) that later polls
read; the newest follows are always read first so they never starve behind a backlog. This
module plans a poll's ranges (the top, then the gaps) and merges what they found; each range's
read down to its stop is range_walk.py.

"New Account Followed" (followed.py) emits what the walk finds; "Account Unfollowed"
(unfollowed.py) uses the same walk to keep up with new follows before it checks the count.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import replace
from typing import Any

from ..core import cursors
from ..core.items import flatten, identity
from ..state.gaps import GAP_LIMIT, Gap
from .poll import PollRun, newest_account
from .range_walk import RangeWalker
from .reads import Advance, Known, RangeRead


def _reads_to(gap: Gap) -> Any:
    """Where the walk of a kept range reads down to: its stop, or its base when the range
    starts at or below its stop (a stop ahead of the list: range_walk.py read on below it,
    and what is left, new follows among them, lies between the range's start and its base).
    """
    if gap.base is not None and gap.start is not None and not cursors.below(gap.stop,
                                                                               gap.start):
        return gap.base
    return gap.stop


def advance(run: PollRun, watermark: Any, prior_gaps: list[Gap], remembered: Container[str],
            base: Any = None, *, forgets: bool = False, account: int | None = None) -> Advance:
    """Every poll after the first: read new follows, then the backlog, within the budget.

    Each walk reads a range of the list from its start down to a follow time already
    known (its stop). Pages that lie wholly above the stop hold only new follows. The page
    that reaches the stop also holds old ones; there an account the trigger knows, or saw
    earlier in the walk, is an anchor: unknown accounts before the last anchor are new (the
    list is ordered by follow time). Unknown accounts after it are new or old follows never
    seen: one request at the lowest stop of all (`floor`, or the base when lower) lists the
    old ones, which are then remembered, and the rest are new. The top walk reads from the
    newest follow down to the watermark; gaps, oldest first, read what earlier polls could
    not. A range whose read the upstream broke off is kept and tried again later; only the
    depth cap ends one.

    The watermark comes from a page's `maxCursor`, which nothing else on the page vouches
    for: one far ahead of the list would make a page of new follows look like the page
    that reaches it. `base` (the oldest follow on the newest page when the watermark was
    taken, a cursor the upstream handed out for paging, at or below the watermark) keeps
    that from losing anything. When the list's newest follow is older than the watermark,
    the top walk reads down to `base` instead (no follow lies above the list's newest: the
    watermark is ahead of the list, or the follows just below it were unfollowed; the
    accounts between `base` and the watermark are remembered), and when it finds that
    newest follow new, the watermark was ahead and is lowered to it. Old follows are
    checked for at `base` when it is lower than the stops (which a maxCursor ahead of the
    list can lift, and `base` not), and a page that reaches a stop without an account the
    trigger knows and holds no old follow lies above the known follows: the walk goes on
    down (to `base`). So no later follow is lost to a maxCursor ahead of the list, however
    far, and a warning says when it was seen. This relies on the accounts of the newest
    page being remembered: the memory keeps the accounts a poll has just seen (see
    state/memory.py). (An upstream that pages "before" minTime, not "at or before" it, and
    cuts a page between follows of the very same second could make one of those look new
    at such a check: an old follow emitted, never a new one lost.)

    `forgets`: `remembered` may lack accounts it once held (a memory at its bound,
    state/memory.py), so a gap's last page is checked (see range_walk.py `_settle`).
    `account`: the fingerprint of the account the watermark came from, or None (see
    range_walk.py `_short`).
    """
    known = Known(remembered)
    run.touched.clear()
    # Old follows are checked for below every range still to read, down to where it reads.
    floor = cursors.lowest([watermark, *(_reads_to(g) for g in prior_gaps)])
    # The lowest stop whose second may hold follows made after the poll that took it: not
    # that of a range kept below its stop (the walk that kept it read that second), but that
    # of one that starts at its stop (its read lists that second again).
    lowest_stop = cursors.lowest([c for c in (watermark, *(
        g.stop for g in prior_gaps if g.base is None or g.start is None
        or not cursors.below(g.start, g.stop))) if c is not None])
    ranges = RangeWalker(run, lowest_stop)
    # Gaps are kept newest first. Each gets a slot for its outcome: a gap left as it is
    # (waiting out a failure, or no budget left) keeps its place.
    slots: list[Gap | None] = [replace(g, wait=g.wait - 1) if g.wait > 0 else g
                               for g in prior_gaps]
    oldest_first = [i for i in reversed(range(len(prior_gaps))) if prior_gaps[i].wait <= 0]
    # Gap index (or -1, the top) -> its walk, in the order they were read.
    found: dict[int, RangeRead] = {}

    def read_gap(i: int) -> None:
        gap = prior_gaps[i]
        if run.remaining < 1:
            return
        stop = _reads_to(gap)
        # Where the other ranges below this one start (see range_walk.py `_settle`).
        lower = None if not forgets or cursors.is_dead(stop) else [
            g.start for g in prior_gaps if g is not gap and g.start is not None
            and (cursors.is_dead(g.start) or cursors.below(g.start, stop))]
        walk = ranges.walk(gap.start, stop, run.remaining, known, floor, gap, gap.base, lower,
                           gap.stop_account if stop is gap.stop else None)
        found[i] = walk
        slots[i] = walk.left

    # A range whose last walk stopped for want of the one request its last page needed
    # goes first: it needs two requests in a row, which a backlog slot may never have.
    for i in [i for i in oldest_first if prior_gaps[i].check]:
        read_gap(i)
    top_gap: Gap | None = None
    run.top_done = False
    if len(prior_gaps) >= GAP_LIMIT:
        run.warnings.append("catching up on a backlog before reading new follows")
    elif run.remaining >= 1:
        # With a backlog due, one page of the budget is kept for it, so it always advances.
        reserve = 1 if any(i not in found for i in oldest_first) else 0
        top = ranges.walk(None, watermark, max(1, run.remaining - reserve), known, floor, None,
                          base, account=account)
        found[-1] = top
        run.top_done = top.left is None
        if top.left is None or top.left.start is not None:
            top_gap = top.left
            first = top.first_page
            newest = run.newest(first, watermark)
            # Never lower: when unfollows emptied the top, new follows still come above it.
            # Unless the walk showed the watermark to be ahead of the list: the list's
            # newest follow, older than the watermark, is new.
            newest_is_new = first is not None and first.entries and any(
                k == identity(first.entries[0]) for k, _ in top.new)
            if watermark is None or (newest is not None
                                     and cursors.below(watermark, newest)):
                watermark = newest
            elif (top.ahead or newest_is_new) and newest is not None \
                    and cursors.below(newest, watermark):
                run.warnings.append(
                    f"the watermark {watermark} was ahead of the list (a page's maxCursor "
                    f"far ahead of its follows): a page at or below it held only new "
                    f"follows; lowered to {newest}, the newest follow's time")
                watermark = newest
            base = run.base(first, base)
            if first is not None and first.entries and newest is not None and not (
                    cursors.below(newest, watermark) or cursors.below(watermark, newest)):
                # The watermark is this page's newest follow: pin the account it came from.
                account = newest_account(first.entries)
        # else the newest page itself is left: the next poll's top walk reads it again,
        # from the same watermark.
    for i in oldest_first:
        if i not in found:
            read_gap(i)

    gaps = ([top_gap] if top_gap is not None else []) + [g for g in slots if g is not None]
    order = sorted(found, key=lambda i: -i if i >= 0 else float("inf"))  # oldest first
    new = [(k, e) for i in order for k, e in reversed(found[i].new)]  # oldest first
    top_keys = found[-1].keys if -1 in found else set()
    closed = [k for i, r in found.items() if i >= 0 and r.left is None  # read to their end
              for k, _ in r.new if k not in top_keys]
    return Advance(watermark, gaps, [flatten(e) for _, e in new],
                   [*(k for r in found.values() for k in r.old), *(k for k, _ in new)], base,
                   closed, account)
