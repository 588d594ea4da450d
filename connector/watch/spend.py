"""Spending a budget: a poll starts only with the credits its page budget could spend.

Before a poll, the credits of its triggers' page budgets (`maxPages`, 10 credits a page) are
reserved from the budget's bucket (core/budget.py); after it, what it did not spend goes back.
When the bucket holds less, the page budgets are cut to what it holds, never below a trigger's
minimum of two pages: a smaller page budget only delays follows (the trigger keeps what it
could not read as a gap and reads it next poll: every follow is still delivered once). A poll
that cannot get its minimum waits, and the budget says once that it is short.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.budget import MIN_POLL_PAGES, CreditBucket, Hold
from ..core.config import CREDITS_PER_REQUEST

#: Where the budget's bucket is kept: one budget for every watcher sharing a database.
BUDGET_NAME = "default"


@dataclass(frozen=True)
class Grant:
    """What a poll may spend: a page budget for each of its triggers, in order, and the
    credits reserved for them (0 without a budget), held as `hold` until the poll settles."""

    pages: tuple[int, ...]
    credits: int
    hold: Hold | None = None


class Spender:
    """Reserves and settles polls' credits (as above); with no bucket, polls get what they ask."""

    def __init__(self, bucket: CreditBucket | None, *, least: int = MIN_POLL_PAGES) -> None:
        self.bucket = bucket
        self.least = least
        #: Polls that had to wait for credits, and polls whose page budget was cut.
        self.waited = 0
        self.cut = 0
        self._short = False
        self._said = False

    def start(self, wants: Sequence[int]) -> Grant | None:
        """Page budgets for a poll whose triggers ask for `wants` pages, or None when the
        budget cannot pay each its minimum now (the poll waits: see `ready_in`)."""
        wants = tuple(max(self.least, w) for w in wants)
        if self.bucket is None:
            return Grant(wants, 0)
        hold = self.bucket.reserve(sum(wants) * CREDITS_PER_REQUEST,
                                   self.least * len(wants) * CREDITS_PER_REQUEST)
        credits = hold.credits
        if not credits:
            self.waited += 1
            self._short = True
            return None
        # Each trigger gets its minimum, then the rest goes to them in order (the follow
        # trigger first: its follows are what is waited for).
        spare = credits // CREDITS_PER_REQUEST - self.least * len(wants)
        pages = []
        for want in wants:
            pages.append(min(want, self.least + spare))
            spare -= pages[-1] - self.least
        grant = Grant(tuple(pages), credits, hold)
        if grant.pages != wants:
            self.cut += 1
        return grant

    def finish(self, grant: Grant, pages: int) -> None:
        """The poll is done, and made `pages` successful requests (credits are charged for
        those only): the rest of its reservation goes back."""
        if self.bucket is not None and grant.hold is not None and grant.credits:
            self.bucket.settle(grant.hold, pages * CREDITS_PER_REQUEST)

    def ready_in(self, wants: Sequence[int]) -> float:
        """Seconds until a poll asking for `wants` could get its minimum (0: now)."""
        if self.bucket is None:
            return 0.0
        return self.bucket.ready_in(self.least * len(wants) * CREDITS_PER_REQUEST)

    def take_short(self) -> str | None:
        """That the budget is short, the first time polls wait for it (again once the bucket
        has been full since); None otherwise."""
        if self.bucket is None:
            return None
        budget = self.bucket.budget
        if self.bucket.view().level >= budget.capacity - CREDITS_PER_REQUEST:
            self._short = self._said = False
        if not self._short or self._said:
            return None
        self._said = True
        wait = self.bucket.ready_in(self.least * CREDITS_PER_REQUEST)
        soon = "" if math.isinf(wait) else f" (the next in about {math.ceil(wait)}s)"
        return (f"the budget of {budget} credits is spent for now: polls wait for credits"
                f"{soon}, the handles most likely to have new follows first")
