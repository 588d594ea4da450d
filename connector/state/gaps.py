"""Gaps: cursor ranges of follows a trigger detected but has not read yet (a burst bigger than
one poll's page budget, or a read the upstream broke off), and the backoff of a read that keeps
failing. Both triggers keep them, in the same JSON."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .envelope import check_account, check_cursor, check_fields, check_flag, damaged

#: At most this many ranges are pending: at the bound a trigger catches up before it reads new
#: follows, so nothing is dropped.
GAP_LIMIT = 20
#: A range that keeps failing is retried at least this often (in polls).
MAX_WAIT = 31
#: Failed tries are counted up to this many.
MAX_TRIES = 1000
#: A gap's fields; `base` came with version 3 of the follow state (2 of the unfollow one),
#: `account` (the account of its stop) later in version 3 of the follow state (the unfollow
#: trigger never writes it).
FIELDS = frozenset({"from", "to", "tries", "wait", "check", "base", "account"})


@dataclass
class Gap:
    """Follows still to read between two cursors: from `start` (exclusive; None = the top)
    down to `stop` (a follow time already known; None = the end of the list).

    `tries` counts the polls whose reading of this range failed; the range then waits `wait`
    polls before the next try. `check`: the last walk stopped at the page that reaches `stop`
    and could not afford the one request that tells its old follows from new ones, so the next
    walk needs two requests in a row. `base`: a cursor at or below `stop` that the upstream
    handed out (the watermark's base when `stop` was the watermark, see operations/walk.py),
    or None. `stop_account`: the fingerprint (state/prints.py) of the account `stop` came
    from (the watermark's account when `stop` was the watermark), or None: where a page that
    ends inside the stop's second may stop (operations/range_walk.py `_short`).
    """

    start: Any
    stop: Any
    tries: int = 0
    wait: int = 0
    check: bool = False
    base: Any = None
    stop_account: int | None = None

    def failed(self) -> Gap:
        """The same range after one more failed try: retried after 1, 2, 4, 8 ... polls."""
        tries, wait = backoff(self.tries)
        return replace(self, tries=tries, wait=wait, check=False)

    def to_json(self) -> dict[str, Any]:
        # What is 0, false or none is left out (`tries` too: every release reads it so), which
        # keeps 20 ranges, each with the account of its stop, within the state's 26 KB.
        kept = {"tries": self.tries or None, "wait": self.wait or None,
                "check": self.check or None, "base": self.base, "account": self.stop_account}
        return {"from": self.start, "to": self.stop,
                **{name: value for name, value in kept.items() if value is not None}}

    @classmethod
    def from_json(cls, raw: Any, *, with_base: bool, with_account: bool) -> Gap:
        if not isinstance(raw, dict) or "from" not in raw or "to" not in raw:
            raise damaged("a gap must be an object with 'from' and 'to'")
        left_out = {name for name, kept in (("base", with_base), ("account", with_account))
                    if not kept}
        check_fields(raw, FIELDS - left_out, "a gap")
        start = check_cursor(raw["from"], "gap 'from'")
        stop = check_cursor(raw["to"], "gap 'to'")
        tries, wait = raw.get("tries", 0), raw.get("wait", 0)
        if not all(type(n) is int and 0 <= n <= MAX_TRIES for n in (tries, wait)):
            raise damaged(f"a gap's 'tries' and 'wait' must be whole numbers from 0 to "
                          f"{MAX_TRIES}")
        return cls(start, stop, tries, min(wait, MAX_WAIT),
                   check_flag(raw.get("check", False), "a gap's 'check'"),
                   check_cursor(raw.get("base"), "gap 'base'"),
                   check_account(raw.get("account"), "a gap's 'account'"))


def gaps_from_json(raw: Any, *, with_base: bool, with_account: bool = False) -> list[Gap]:
    """A state's `gaps`, at most GAP_LIMIT; `with_account`: they may name their stop's
    account (the follow trigger's do)."""
    if not isinstance(raw, list):
        raise damaged("'gaps' must be a list")
    if len(raw) > GAP_LIMIT:
        raise damaged(f"{len(raw)} gaps, more than the {GAP_LIMIT} this connector keeps")
    return [Gap.from_json(g, with_base=with_base, with_account=with_account) for g in raw]


def backoff(tries: int) -> tuple[int, int]:
    """(tries, wait) after one more failed try of a read: it waits 0, 1, 3, 7 ... polls, so it
    is tried again after 1, 2, 4, 8 ... polls, and at least every MAX_WAIT + 1."""
    tries = min(tries + 1, MAX_TRIES)
    return tries, min(2 ** (tries - 1) - 1, MAX_WAIT)
