"""Backing off a handle whose list is hidden, or that keeps failing: it is asked again after 1,
2, 4 ... of its intervals, at most a day apart, and reported once, not every interval.

A 404 is an answer (a private or hidden following list, or no such account), not a fault:
asking it every interval costs no credits (failed requests are free) but spends requests
against the rate limit and fills the log. A handle whose polls keep failing for another reason
(the upstream, the network, its state) is no likelier to answer the next minute. Either way it
is still asked, less and less often, and comes back at its first good poll.

What is the whole watch's trouble, not one handle's, is not backed off here: a rate limit
(the Pacer holds every poll back), a key that is refused or credits that ran out (they fail
every handle alike, and come right when the operator acts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..core.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
)
from .schedule import format_interval

OK = "ok"
#: The list answered 404: private, hidden, or no such account.
HIDDEN = "hidden"
#: Polls failed FAILING_AFTER times in a row or more, for another reason.
FAILING = "failing"
STATUSES = (OK, HIDDEN, FAILING)
#: A backed-off handle is still asked at least this often (or every interval, if longer).
MAX_DELAY = 86400.0
#: One failure is weather; this many in a row is a handle that keeps failing.
FAILING_AFTER = 2
#: Errors that say nothing about the handle: not counted against it.
FLEET_ERRORS = (AuthenticationError, InsufficientCreditsError, RateLimitError)


@dataclass(frozen=True)
class Health:
    """How a handle's polls have been going: its status and the failures in a row."""

    status: str = OK
    failures: int = 0

    def failed(self, error: BaseException, interval: float) -> Verdict:
        """A poll of the handle failed with `error`; `interval` is its usual interval. The
        verdict says when to ask again (never None), and what to report (once, when the
        status changes)."""
        if isinstance(error, FLEET_ERRORS):
            return Verdict(self, interval, None)
        failures = self.failures + 1
        status = HIDDEN if isinstance(error, NotFoundError) else (
            FAILING if failures >= FAILING_AFTER else self.status)
        delay = backoff_delay(failures, interval)
        report = None
        if status != self.status:
            then = (f"asked again in {format_interval(delay)}, then half as often each time "
                    f"it fails, at least every {format_interval(max(MAX_DELAY, interval))}")
            report = (f"the following list is private, hidden or missing (404); {then}"
                      if status == HIDDEN else
                      f"{failures} polls in a row failed (last: {_why(error)}); {then}")
        return Verdict(replace(self, status=status, failures=failures), delay, report)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "failures": self.failures}

    @classmethod
    def from_json(cls, raw: Any) -> Health:
        """Parse a stored health; ValueError when it is damaged (start afresh then)."""
        if not isinstance(raw, dict) or raw.get("status") not in STATUSES or type(
                raw.get("failures")) is not int or raw["failures"] < 0:
            raise ValueError("a health is a known status and a count of failures")
        return cls(raw["status"], raw["failures"])

    def succeeded(self) -> Verdict:
        """A poll of the handle succeeded: back to its usual interval."""
        report = (f"answering again after {self.failures} failed "
                  f"poll{'s' * (self.failures != 1)}" if self.status != OK else None)
        return Verdict(HEALTHY, None, report)


#: A handle whose polls go well (what a new handle is taken to be).
HEALTHY = Health()


@dataclass(frozen=True)
class Verdict:
    """What a poll's outcome means for the handle: its health after, the seconds until it is
    asked again (None, from `succeeded`: as its schedule has it), a line to report, if any."""

    health: Health
    delay: float | None
    report: str | None


def backoff_delay(failures: int, interval: float) -> float:
    """Seconds to wait after `failures` failed polls in a row: 1, 2, 4 ... intervals, at most
    MAX_DELAY (or one interval, if that is longer)."""
    return min(interval * 2.0 ** min(max(failures, 1) - 1, 40), max(MAX_DELAY, interval))


def _why(error: BaseException) -> str:
    message = getattr(error, "message", None) or type(error).__name__
    return message if len(message) <= 120 else message[:117] + "..."
