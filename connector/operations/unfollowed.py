"""The polling trigger "Account Unfollowed": each unfollow of an account the trigger has seen,
once, for what the follow trigger costs in the steady state.

A poll:
1. Keeps up with new follows with the follow trigger's walk (walk.py): from the newest follow
   down to the watermark, ceil((n + 1) / p) requests for n new follows. Every account listed on
   a page the poll read goes into the roster (state/roster.py) as seen now.
2. Takes the first page's `total` as a checksum. `total` is taken to be the account's following
   count (an inference, like the cursor one). It should equal the accounts in the roster plus
   `offset`, the accounts the count includes that cannot be listed (beyond the upstream's depth
   cap, or counted but hidden). Equal: nothing was unfollowed, the poll is done. Higher: not an
   unfollow; the difference is adopted into `offset`. Short by u: a read of the list begins.
3. The read goes down from the newest follow, page by page, within the page budget (and on in
   the next polls when it needs more). After each page, an account whose bound (a follow time
   at or before its own, see state/roster.py) lies above the page's oldest follow, and that no
   page has listed since the read began, is gone: emitted as last seen, and dropped
   (list_read.py).

The walk only reads while it is caught up with new follows (a burst bigger than the page
budget is read first), so every re-followed account has been listed at the top before the read
passes its old place: an unfollow undone before the next poll is not an event.
"""

from __future__ import annotations

from typing import Any

from ..core.http import PageSource, list_reader
from ..state.unfollowed import BASELINE, FULL, SHORT, Scan, UnfollowState
from .list_read import ListRead, iso, unfollow_item
from .poll import PollRun
from .results import Result
from .walk import advance

#: The trigger's state, for the embedded store (operations/registry.py).
State = UnfollowState
#: More tracked accounts than this means many have been pushed below the depth cap since the
#: last full read: one is started, to drop them (TikTok itself allows 10,000 follows).
TRACK_LIMIT = 10_000


def run(
    client: PageSource,
    inputs: dict[str, Any],
    *,
    source: str = "API",
    state: Any = None,
    mode: str = "live",
) -> Result:
    """Poll once, as the follow trigger's `run` does (followed.py)."""
    handle = inputs["handle"]
    # Parse state before any request: damaged state must cost nothing and change nothing.
    prior = UnfollowState.of(state)
    walk = PollRun(list_reader(client, handle, count=inputs.get("count"), request_source=source),
                   budget=inputs["maxPages"])
    # Always later than the previous poll's time, even if the clock steps back.
    now = max(walk.now_ms, (prior.clock if prior is not None else 0) + 1)
    poll = _Poll(walk, reconcile=inputs["reconcileEvery"], now=now)
    if mode == "test":
        stamp = iso(now)
        items = [unfollow_item(item, stamp, stamp) for item in walk.sample()]
        meta = poll.meta(handle, UnfollowState(handle))
        meta.update(mode="test", sampleItems=len(items))
        return Result(items=items, state=state, meta=meta)
    new_state = (poll.baseline(handle) if walk.new_baseline(prior, handle)
                 else poll.advance(prior))  # type: ignore[arg-type]
    return Result(items=poll.items, state=new_state, meta=poll.meta(handle, new_state))


class _Poll(ListRead):
    """One poll of the trigger: the walk, the check, the read, and what they found."""

    def __init__(self, walk: PollRun, *, reconcile: int, now: int) -> None:
        super().__init__(walk, now=now)
        self.reconcile = reconcile
        self.check: str | None = None
        self.expected: int | None = None

    # The two kinds of poll

    def baseline(self, handle: str) -> UnfollowState:
        """First poll: learn the list (as much as the budget reads now, the rest next polls);
        nothing is emitted."""
        watermark, base, _ = self.walk.baseline()
        state = UnfollowState(handle=handle, watermark=watermark, base=base, clock=self.now)
        self.merge_all(state.roster, older=True)
        self.total = self.walk.total()
        self.check = BASELINE
        state.scan = Scan(None, BASELINE, began=self.now)
        self.read(state, target=None)
        return state

    def advance(self, state: UnfollowState) -> UnfollowState:
        """Every poll after the first: new follows, the check, and the read if one is due."""
        state.clock = self.now
        state.since_full += 1
        step = advance(self.walk, state.watermark, state.gaps, state.roster, state.base)
        state.watermark, state.gaps, state.base = step.watermark, step.gaps, step.base
        self.merge_all(state.roster)
        caught_up = self.walk.top_done and not state.gaps
        total = self.total = self.walk.total()
        expected = self.expected = len(state.roster) + state.offset
        scan = state.scan
        waiting = scan is not None and scan.wait > 0
        if waiting:
            scan.wait -= 1  # type: ignore[union-attr]
        if not caught_up:
            self.check = "catchingUp"
            return state
        if scan is not None and scan.mode == BASELINE:
            self.check = BASELINE
            self.walk.baselined = True  # the baseline goes on
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
            state.offset += total - expected  # type: ignore[operator]  # not an unfollow
        state.scan = scan
        if scan is not None and not waiting:
            shortfall = expected - total if (scan.mode == SHORT and total is not None) else None
            self.read(state, target=shortfall)
        return state

    def meta(self, handle: str, state: UnfollowState) -> dict[str, Any]:
        reading = state.scan is not None
        return self.walk.meta(handle, {
            "unfollows": len(self.items),
            "followsSeen": self.added,
            "baseline": self.walk.baselined,
            "check": self.check,
            "total": self.total,
            "expectedTotal": self.expected,
            "fullRead": self.full_read,
            "readingList": reading,
            "tracked": len(state.roster),
            "unlisted": max(state.offset, 0),
            "atDepthCap": state.capped,
            "unfoundUnfollows": self.unfound,
            "droppedAtCap": self.dropped,
            "catchingUp": bool(state.gaps) or reading or not self.walk.top_done,
            "pendingGaps": len(state.gaps),
        })

