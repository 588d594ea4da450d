"""The stand-in's world: accounts, whom each follows and when, and the demo accounts that keep
following people as the clock runs. Pages are cut from it the way the upstream cuts them."""

from __future__ import annotations

import copy
import math
import random
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.items import identity
from .faults import Fault

#: Seconds in a year: how far ahead a FAR_CURSOR fault puts maxCursor.
YEAR_S = 31_536_000
#: `World.set_total(handle, MISSING)`: answers carry no `total`.
MISSING = "missing"

#: Follow times of scripted accounts start here (demo accounts use epoch milliseconds).
SCRIPTED_EPOCH = 1_700_000_000

# Demo accounts: handle -> (past follows, seconds between new follows at speed 1 or None, private).
DEMO_ACCOUNTS: dict[str, tuple[int, float | None, bool]] = {
    "dumpling_demo": (120, 5.0, False),
    "busy_demo": (300, 1.0, False),
    "quiet_demo": (40, None, False),
    "private_demo": (25, None, True),
    "big_demo": (6000, None, False),
    "churn_demo": (150, 4.0, False),
}
#: Demo accounts that also unfollow one of their 60 newest follows: handle -> seconds between
#: unfollows at speed 1.
DEMO_UNFOLLOWS: dict[str, float] = {"churn_demo": 6.0}
_DEMO_PAST_STEP_MS = 60_000  # past demo follows are one a minute, ending at start-up


def server_handle(value: str) -> str:
    """The handle as the stand-in's server compares it: trimmed, one leading '@' dropped,
    lowercased. (Looser than the connector's check: a server takes what it is sent.)"""
    return value.strip().removeprefix("@").strip().lower()


@dataclass
class _Entry:
    time: int
    seq: int  # insertion order: breaks ties in time, later first
    user: dict[str, Any]
    stats: dict[str, Any]

    @property
    def key(self) -> str:
        """What identifies the user: the connector's one identity rule (id, secUid, handle,
        else a digest of the profile)."""
        return identity(self.user)


@dataclass
class _Account:
    private: bool = False
    boundary_repeats: bool | None = None
    entries: dict[str, _Entry] = field(default_factory=dict)  # by user key
    last_time: int | None = None  # newest time ever given; the next default is this + 1
    # Demo accounts gain follows lazily from the clock: first due at feed_start + interval.
    feed_interval: float | None = None
    feed_start: float = 0.0
    feed_done: int = 0
    feed_base: int = 0
    # Demo accounts that unfollow: one account chosen by the clock, every unfollow_interval
    # seconds (the others never).
    unfollow_interval: float = math.inf
    unfollow_done: int = 0
    cache: list[_Entry] | None = field(default=None, repr=False)  # ordered(), until a change
    # What `total` says: None = the true count, MISSING = no total at all, an int = that
    # number whatever the list holds (a count that lags, or runs ahead).
    total: int | str | None = None

    def ordered(self) -> list[_Entry]:
        """Newest follow first; ties by insertion, later first."""
        if self.cache is None:
            self.cache = sorted(self.entries.values(), key=lambda e: (e.time, e.seq), reverse=True)
        return self.cache


def number(value: Any) -> float | None:
    """A JSON number or numeric string, else None (bool is not a number here)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return value if numeric and math.isfinite(value) else None


class World:
    """Accounts and their following lists, newest follow first. `lock` guards it: the server
    holds it while answering, and the methods here take it too."""

    def __init__(self, *, depth_cap: int = 5000, default_count: int = 30, max_count: int = 100,
                 boundary_repeats: bool = False, demo: bool = False, demo_speed: float = 1.0,
                 demo_epoch: float | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        if demo_speed <= 0:
            raise ValueError("demo_speed must be positive")
        self.depth_cap = depth_cap
        self.default_count = default_count
        self.max_count = max_count
        self.boundary_repeats = boundary_repeats
        self.demo_speed = demo_speed
        # A fixed epoch gives separate processes the same demo world (the CLI's --sandbox).
        self.demo_epoch = demo_epoch
        self.clock = clock or time.time
        self.lock = threading.RLock()
        self.accounts: dict[str, _Account] = {}
        self._seq = 0
        self._next_user = 1
        if demo:
            self._add_demo_accounts()

    def make_user(self, n: int) -> dict[str, Any]:
        """A deterministic generated user; its "stats" key becomes the item's stats."""
        rng = random.Random(n)
        return {
            "id": f"7{n % 10**18:018d}",
            "uniqueId": f"user{n}",
            "nickname": f"User {n}",
            "avatarThumb": f"https://p16-sign.tiktokcdn.example/avatar/user{n}.jpeg",
            "signature": f"bio of user {n}",
            "verified": n % 50 == 0,
            "secUid": f"MS4wLjABAAAA{n:012d}",
            "privateAccount": n % 23 == 0,
            "stats": {
                "followerCount": rng.randrange(0, 2_000_000),
                "followingCount": rng.randrange(0, 5_000),
                "heartCount": rng.randrange(0, 50_000_000),
                "videoCount": rng.randrange(0, 2_000),
                "diggCount": rng.randrange(0, 100_000),
            },
        }

    def add_account(
        self,
        handle: str,
        follows: int | Iterable[dict[str, Any]] = 0,
        *,
        private: bool = False,
        boundary_repeats: bool | None = None,
    ) -> None:
        """Create an account; `follows` is a count of generated users or dicts, oldest first."""
        key = server_handle(handle)
        with self.lock:
            if key in self.accounts:
                raise ValueError(f"account {key!r} already exists")
            self.accounts[key] = _Account(private=private, boundary_repeats=boundary_repeats)
            if isinstance(follows, int):
                self.follow_many(key, follows)
            else:
                for user in follows:
                    self.follow(key, user)

    def follow(
        self, handle: str, user: dict[str, Any] | None = None, *, at: int | None = None
    ) -> dict[str, Any]:
        """`handle` follows `user` (generated when None) at time `at` (default: newest + 1).

        `user` is a user dict (an optional "stats" key is taken as the stats) or a whole item
        {"user": ..., "stats": ...}. Following someone already followed moves them to the top.
        Unknown handles are created as public accounts. Returns a copy of the user dict.
        """
        with self.lock:
            account = self.accounts.setdefault(server_handle(handle), _Account())
            if user is None:
                user = self.make_user(self._next_user)
                self._next_user += 1
            return self._add_entry(account, user, at)

    def follow_many(self, handle: str, n: int) -> list[dict[str, Any]]:
        """`handle` follows `n` generated users, one time step apart."""
        with self.lock:
            return [self.follow(handle) for _ in range(n)]

    def unfollow(self, handle: str, user_id: str) -> None:
        """Remove a followed user by id, secUid, handle or identity key."""
        with self.lock:
            account = self.account(handle)
            keys = [k for k, e in account.entries.items()
                    if user_id in (k, e.user.get("id"), e.user.get("secUid"),
                                   e.user.get("uniqueId"))]
            if not keys:
                raise KeyError(f"{handle!r} does not follow {user_id!r}")
            for key in keys:
                del account.entries[key]
            account.cache = None

    def set_total(self, handle: str, total: int | str | None) -> None:
        """What `total` says from now on: None, the true count (the default); MISSING, no
        `total` at all; a number, that number whatever the list holds (a stale count)."""
        if total is not None and total != MISSING and (type(total) is not int or total < 0):
            raise ValueError("total must be None, MISSING or a whole number")
        with self.lock:
            self.account(handle).total = total

    def following(self, handle: str) -> list[dict[str, Any]]:
        """The current list of followed users, newest first (copies)."""
        with self.lock:
            account = self.account(handle)
            self.materialize(account)
            return [copy.deepcopy(e.user) for e in account.ordered()]

    def account(self, handle: str) -> _Account:
        try:
            return self.accounts[server_handle(handle)]
        except KeyError:
            raise KeyError(f"no account {handle!r}") from None

    def _add_entry(self, account: _Account, user: dict[str, Any], at: int | None) -> dict[str, Any]:
        if isinstance(user.get("user"), dict):
            user, stats = copy.deepcopy(user["user"]), copy.deepcopy(user.get("stats") or {})
        else:
            user = copy.deepcopy(user)
            stats = user.pop("stats", None) or {}
        if at is None:
            at = SCRIPTED_EPOCH if account.last_time is None else account.last_time + 1
        entry = _Entry(at, self._seq, user, stats)
        self._seq += 1
        account.last_time = at if account.last_time is None else max(account.last_time, at)
        # A user appears once in a following list: a re-follow moves them to the top.
        account.entries.pop(entry.key, None)
        account.entries[entry.key] = entry
        account.cache = None
        return copy.deepcopy(user)

    def _add_demo_accounts(self) -> None:
        start = self.demo_epoch if self.demo_epoch is not None else self.clock()
        start_ms = int(start * 1000)
        for index, (handle, (past, interval, private)) in enumerate(DEMO_ACCOUNTS.items()):
            account = _Account(private=private)
            account.feed_base = (index + 1) * 1_000_000
            for i in range(past):
                user = self.make_user(account.feed_base + i)
                self._add_entry(account, user, start_ms - (past - i) * _DEMO_PAST_STEP_MS)
            if interval is not None:
                account.feed_interval = interval / self.demo_speed
                account.feed_start = start
                account.feed_base += past
            if handle in DEMO_UNFOLLOWS:
                account.unfollow_interval = DEMO_UNFOLLOWS[handle] / self.demo_speed
            self.accounts[handle] = account

    def materialize(self, account: _Account) -> None:
        """Add the demo follows (and make the demo unfollows) the clock says are due by now,
        in the order they fell due: the same clock gives every process the same list."""
        if account.feed_interval is None:
            return
        elapsed = self.clock() - account.feed_start
        due = int(elapsed / account.feed_interval)
        unfollows = int(elapsed / account.unfollow_interval)
        while account.feed_done < due or account.unfollow_done < unfollows:
            follow_at = (account.feed_done + 1) * account.feed_interval
            unfollow_at = (account.unfollow_done + 1) * account.unfollow_interval
            if account.feed_done < due and follow_at <= unfollow_at:
                account.feed_done += 1
                user = self.make_user(account.feed_base + account.feed_done)
                self._add_entry(account, user, int((account.feed_start + follow_at) * 1000))
            else:
                account.unfollow_done += 1
                # Mostly recent follows are undone (follow-for-follow churn).
                recent = account.ordered()[:60]
                if recent:
                    del account.entries[random.Random(account.unfollow_done).choice(recent).key]
                    account.cache = None

    def page(self, account: _Account, body: dict[str, Any], fault: Fault) -> dict[str, Any]:
        """One page of the account's list for this request's minTime and count."""
        count = number(body.get("count"))
        size = self.default_count if count is None or count < 1 else int(count)
        size = min(size, self.max_count)
        min_time = number(body.get("minTime"))
        repeats = (self.boundary_repeats if account.boundary_repeats is None
                   else account.boundary_repeats)
        reachable = account.ordered()[: self.depth_cap]
        counted = {} if account.total == MISSING else {
            "total": len(account.entries) if account.total is None else account.total}
        # The list is newest first; on negated times it is ascending, so bisect finds the start.
        negated = [-e.time for e in reachable]
        if min_time is None:
            start = 0
        elif repeats:
            start = bisect_left(negated, -min_time)  # time <= minTime
        else:
            start = bisect_right(negated, -min_time)  # time < minTime
        end = min(start + size, len(reachable))
        page = reachable[start:end]
        if fault.repeat_boundary > 0:
            page = reachable[max(0, start - fault.repeat_boundary) : start] + page

        # The position the client asked from, for faults whose cursor must not move.
        if min_time is not None:
            asked: float = int(min_time) if min_time == int(min_time) else min_time
        elif reachable:
            asked = reachable[0].time + (0 if repeats else 1)
        else:
            asked = 0
        if fault.empty_page:
            # The page's accounts withheld; with advance_cursor the cursor still moves past them.
            moved = page[-1].time if fault.advance_cursor and page else asked
            page, max_cursor, min_cursor, has_more = [], asked, moved, True
        elif not page:
            max_cursor, min_cursor, has_more = 0, 0, False
        else:
            min_cursor = page[-1].time
            has_more = end < len(reachable)
            if end >= self.depth_cap:
                # The upstream stops here whatever lies beyond, and says so with -1.
                min_cursor, has_more = -1, False
            if fault.stall_cursor:
                min_cursor, has_more = asked, True
            max_cursor = page[0].time
            if fault.far_cursor:
                # A year ahead of the page's newest follow (in the list's unit).
                max_cursor += YEAR_S * (1 if max_cursor < 10**11 else 1000)
        return {
            "followingList": [
                {"user": copy.deepcopy(e.user), "stats": copy.deepcopy(e.stats)} for e in page
            ],
            "maxCursor": max_cursor,
            "minCursor": min_cursor,
            "hasMore": has_more,
            **counted,
        }
