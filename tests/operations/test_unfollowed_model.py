"""The unfollow trigger's promise, checked against an independent model of the upstream.

The model is written from the contract alone: a following list served newest first, follow
times as cursors, `minCursor` sent back as `minTime`, a `total` that is the following count
when it tells the truth, and a depth cap: the upstream lists only the newest `cap` follows,
and the page that holds the deepest one it lists says so with `minCursor` -1 (a page asked for
below it is empty). It answers at the HTTP level (a requests transport adapter mounted on the
connector's own Client), so every answer is parsed as the real API's would be.

Random histories of follows, unfollows, re-follows (also undone within one interval), a
`total` that is true, frozen, ahead, behind or missing, page sizes 3-10, budgets 2-5, inclusive
and exclusive page boundaries, accounts with and without ids, half of them with a depth cap of
3-6 pages (so follows push accounts below it, where some are unfollowed, while others are
followed and unfollowed above it), and every fault the stand-in injects but the timed ones
(500, 502, 503, 429, reset, truncated body, HTML, malformed, wrong shape, a stuck cursor, an
empty page that claims more with and without a cursor that moves, accounts repeated from the
page before, a maxCursor far ahead). Faults stop before the draining polls. The model records
which accounts each successful poll was shown, on which page, and every answer that stops a
read where the list may go on (a -1 page, or an empty page asked for below where a read had
listed). What must hold:

- no phantom: an event for an account is emitted only at a poll where the account is not
  followed, whether or not the upstream still lists it (an account still followed below the
  cap is never emitted);
- once: before an account's first event, and between two of its events, some poll was shown it
  (each unfollow once; a second one only after the trigger saw it followed again);
- nothing is emitted while the baseline is taken;
- complete where it can be seen: every account the trigger was shown that is no longer followed
  at the end has an event later than the last time it was shown, unless its place may have left
  the trigger's reach. The trigger knows an account's place only as the `minCursor` `f` of a page
  that listed it (the last such clean page, after its last event); it may have left the reach
  when, since, some answer stopped a read at a cursor `c` not below `f` (or a -1 page came at
  the top). So an account unfollowed above the cap is emitted once; one unfollowed below it, or
  pushed there before its unfollow was read, may go unemitted (it is never emitted while
  followed; emitting it later, once unfollows above bring its place back in reach, is a true
  event);
- counted: each account that went unemitted so is counted, in `meta.droppedAtCap` of the poll
  that stopped tracking it (their number is at most the sum of those counts);
- after draining (a true count, a full read): `meta.tracked` is the number of followed accounts
  the upstream lists and `meta.unlisted` the number below the cap;
- when the runner crashes before keeping a poll's state, events may repeat, never go missing.

Every other poll takes its state as the embedded store gives it (loaded from the row and parts
a database keeps) rather than as runner JSON, so the histories hold for both forms.

`UNFOLLOW_MODEL_HISTORIES=2000 pytest tests/operations/test_unfollowed_model.py` runs more
histories.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connector
from connector.state.unfollowed import UnfollowState
from tests.operations.model_transport import Truncated, model_client

HISTORIES = int(os.environ.get("UNFOLLOW_MODEL_HISTORIES", "150"))
FAULTS = ("500", "502", "503", "429", "reset", "truncate", "malformed", "wrong_shape", "html",
          "stuck_cursor", "empty", "empty_more", "repeat_boundary", "far_cursor")
HANDLE = "modelled"
YEAR_S = 31_536_000


@dataclass
class Upstream:
    """One handle's following list, what `total` says, and the faults it answers with."""

    inclusive: bool
    epoch: int
    rng: random.Random
    #: The most follows it lists (None: all).
    cap: int | None = None
    clock: int = 0
    times: dict[str, int] = field(default_factory=dict)  # followed name -> follow time
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: "true", "missing", or a fixed number.
    total: Any = "true"
    fault_rate: float = 0.0
    #: Each page answered with accounts: (names listed, its minCursor when the page is clean:
    #: no fault, a live cursor; else None). The test sorts them into polls.
    shown: list[tuple[list[str], int | None]] = field(default_factory=list)
    #: Each answer that stopped a read where the list may go on: the minTime it was asked
    #: with (None: the top).
    cuts: list[int | None] = field(default_factory=list)
    counter: int = 0

    def new_account(self) -> str:
        self.counter += 1
        n = self.counter
        name = f"Account {n}"
        user: dict[str, Any] = {"nickname": name, "avatarThumb": f"https://a/{n}.jpeg"}
        kind = self.rng.random()
        if kind < 0.85:
            user.update(id=str(7_300_000_000_000_000_000 + n), secUid=f"MS4w{n}",
                        uniqueId=f"acct{n}")
        elif kind < 0.92:
            user.update(secUid=f"MS4w{n}", uniqueId=f"acct{n}")
        elif kind < 0.97:
            user["uniqueId"] = f"acct{n}"
        self.users[name] = user
        return name

    def follow(self, name: str) -> None:
        self.clock += self.rng.choice((1, 1, 2, 9))
        self.times[name] = self.epoch + self.clock

    def unfollow(self, name: str) -> None:
        del self.times[name]

    def listed(self) -> list[str]:
        """What the upstream lists: the newest `cap` follows, newest first."""
        rows = sorted(self.times, key=lambda n: -self.times[n])
        return rows if self.cap is None else rows[: self.cap]

    def answer(self, body: dict[str, Any]) -> tuple[int, Any]:
        fault = self.rng.choice(FAULTS) if self.rng.random() < self.fault_rate else None
        if fault in ("500", "502", "503", "429"):
            return int(fault), {"error": "injected"}
        if fault == "html":
            return 502, "<html><body>502 Bad Gateway</body></html>"
        if fault == "reset":
            raise requests.exceptions.ConnectionError("Connection reset by peer")
        if fault == "malformed":
            return 200, {"data": None}
        if fault == "truncate":  # the page, cut short: the trigger never sees it
            return 200, Truncated({"followingList": [], "hasMore": False})
        reachable = self.listed()
        rows = reachable
        min_time = body.get("minTime")
        if min_time is not None:
            rows = [n for n in rows if (self.times[n] <= min_time if self.inclusive
                                        else self.times[n] < min_time)]
        page, rest = rows[: body["count"]], rows[body["count"]:]
        capped = not rest and self.cap is not None and len(self.times) > self.cap
        if fault == "repeat_boundary" and min_time is not None:
            above = [n for n in reachable if n not in rows]
            page = above[-2:] + page
        counted = ({} if self.total == "missing" else
                   {"total": len(self.times) if self.total == "true" else self.total})
        asked = min_time if min_time is not None else self.epoch + self.clock + 1
        if fault == "wrong_shape":
            return 200, {"followingList": page, "hasMore": "yes", **counted}
        if fault in ("empty", "empty_more"):
            moved = asked - self.rng.randint(1, 40) if fault == "empty_more" else asked
            return 200, {"followingList": [], "hasMore": True, "maxCursor": asked,
                         "minCursor": moved, **counted}
        entries = [{"user": dict(self.users[n]), "stats": {"followerCount": 1}} for n in page]
        if fault == "stuck_cursor":
            self.shown.append((page, None))
            return 200, {"followingList": entries, "hasMore": True,
                         "maxCursor": self.times[page[0]] if page else asked,
                         "minCursor": asked, **counted}
        if not page:
            if min_time is not None:
                self.cuts.append(min_time)  # below the last follow it lists: the end, or not
            return 200, {"followingList": [], "hasMore": False, "maxCursor": 0,
                         "minCursor": 0, **counted}
        newest = self.times[page[0]]
        if fault == "far_cursor":
            newest += YEAR_S * (1 if newest < 10**11 else 1000)
        if capped:
            self.cuts.append(min_time)
        clean = fault is None and not capped
        self.shown.append((page, self.times[page[-1]] if clean else None))
        payload = {"followingList": entries, "hasMore": bool(rest) and not capped,
                   "maxCursor": newest,
                   "minCursor": -1 if capped else self.times[page[-1]], **counted}
        return 200, payload


@dataclass
class History:
    """The test's own bookkeeping of what happened, poll by poll."""

    upstream: Upstream
    inputs: dict[str, Any]
    client: connector.Client
    state: Any = None
    #: The same state as the trigger made it (Result.kept), for its database form.
    kept: UnfollowState | None = None
    polls: int = 0
    #: Poll number -> names followed while it ran.
    followed_at: dict[int, set[str]] = field(default_factory=dict)
    #: Name -> the polls (that succeeded) that were shown it.
    shown_at: dict[str, list[int]] = field(default_factory=dict)
    #: Name -> (poll, minCursor) of the clean pages that listed it.
    placed_at: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    #: (poll, minTime) of the answers that stopped a read where the list may go on.
    cuts: list[tuple[int, int | None]] = field(default_factory=list)
    events: list[tuple[int, str]] = field(default_factory=list)
    #: meta.droppedAtCap of every poll whose state was kept.
    dropped: int = 0
    baseline_items: int = 0
    last_meta: dict[str, Any] | None = None
    #: Polls after which the runner crashes before it keeps the new state.
    crashes: set[int] = field(default_factory=set)

    def poll(self, **override: Any) -> dict[str, Any] | None:
        self.polls += 1
        number = self.polls
        self.followed_at[number] = set(self.upstream.times)
        mark, cut = len(self.upstream.shown), len(self.upstream.cuts)
        try:
            result = connector.run("account_unfollowed", {**self.inputs, **override},
                                   state=self.given(), client=self.client)
        except connector.ConnectorError:
            return None  # a failed poll: the runner keeps the old state
        finally:
            # A read that stops at a cut may drop what it did not reach, even if the poll
            # fails later: counted whatever happens to the poll.
            self.cuts += [(number, c) for c in self.upstream.cuts[cut:]]
        self.events += [(number, item["nickname"]) for item in result.items]
        if result.meta["baseline"]:
            self.baseline_items += len(result.items)
        if number in self.crashes:
            # The items were handed on, the state was not kept: the next poll starts from the
            # old state, and what this poll was shown does not count as seen.
            return result.meta
        for names, floor in self.upstream.shown[mark:]:
            for name in names:
                self.shown_at.setdefault(name, []).append(number)
                if floor is not None:
                    self.placed_at.setdefault(name, []).append((number, floor))
        self.dropped += result.meta["droppedAtCap"]
        self.state, self.kept = result.state, result.kept
        self.last_meta = result.meta
        return result.meta

    def given(self) -> Any:
        """The state for the next poll: runner JSON, or every other poll the state as a
        database keeps it, loaded again."""
        if self.kept is None or self.polls % 2:
            return self.state
        return UnfollowState.from_stored(*self.kept.to_stored())


def play(rng: random.Random, *, faults: bool, crashes: bool = False) -> History:
    upstream = Upstream(inclusive=rng.random() < 0.5,
                        epoch=rng.choice((1_700_000_000, 1_700_000_000_000)), rng=rng)
    count = rng.randint(3, 10)
    size = rng.randint(0, 40)
    if rng.random() < 0.6:  # a depth cap of 3-6 pages, the list around it
        upstream.cap = rng.randint(3, 6) * count
        size = max(0, upstream.cap + rng.randint(-count, 2 * count))
    for _ in range(size):
        upstream.follow(upstream.new_account())
    client = model_client(upstream)
    history = History(upstream, {"handle": HANDLE, "count": count,
                                 "maxPages": rng.randint(2, 5),
                                 "reconcileEvery": rng.choice((0, 3, 10))}, client)
    while history.state is None:  # the baseline's first poll is taken without faults
        history.poll()
    upstream.fault_rate = rng.choice((0.1, 0.25)) if faults else 0.0
    if crashes:
        history.crashes = {history.polls + rng.randint(1, 20) for _ in range(rng.randint(1, 4))}
    gone: list[str] = []
    for _ in range(rng.randint(3, 30)):
        step = rng.random()
        listed = sorted(upstream.times)
        if step < 0.2:
            for _ in range(rng.choice((1, 1, 2, 4, 11))):
                upstream.follow(upstream.new_account())
        elif step < 0.4 and listed:
            deep = [n for n in listed if n not in upstream.listed()]
            pool = deep if deep and rng.random() < 0.3 else listed  # below the cap, at times
            for name in rng.sample(pool, min(len(pool), rng.choice((1, 1, 2, 5)))):
                upstream.unfollow(name)
                gone.append(name)
        elif step < 0.5 and gone:
            name = rng.choice(gone)
            if name not in upstream.times:
                upstream.follow(name)
        elif step < 0.55 and listed:
            name = rng.choice(listed)  # unfollowed and followed again before a poll
            upstream.unfollow(name)
            upstream.follow(name)
        elif step < 0.62:
            count = len(upstream.times)
            upstream.total = rng.choice(("true", "missing", count, count + rng.randint(1, 3),
                                         max(0, count - rng.randint(1, 3))))
        else:
            history.poll()
    # Draining: no faults, a true count, quiet polls until settled, then a full read.
    upstream.fault_rate = 0.0
    upstream.total = "true"
    history.crashes = set()
    settle(history)
    forced = history.poll(reconcileEvery=1)
    assert forced is not None and (forced["fullRead"] or forced["readingList"])
    settle(history)
    return history


def settle(history: History) -> None:
    """Quiet polls until one finds the count agreeing, reads nothing more and costs one
    request: the steady state every history must come back to."""
    for _ in range(300):
        meta = history.poll(reconcileEvery=0)
        if (meta is not None and meta["check"] == "agreed" and not meta["catchingUp"]
                and not meta["readingList"] and meta["requests"] == 1):
            return
    raise AssertionError("the trigger never settled to one request per poll")


def check(history: History, *, once: bool = True) -> None:
    assert history.baseline_items == 0, "emitted while taking the baseline"
    last_event: dict[str, int] = {}
    for poll, name in history.events:
        assert name not in history.followed_at[poll], f"{name}: emitted while followed"
        previous = last_event.get(name, 0)
        if once:
            assert any(previous < p < poll for p in history.shown_at.get(name, [])), (
                f"{name}: emitted at poll {poll} without being seen since poll {previous}")
        last_event[name] = poll
    unemitted = 0
    for name, polls in history.shown_at.items():
        if not polls or name in history.upstream.times or last_event.get(name, 0) > polls[-1]:
            continue
        unemitted += 1
        placed = [(p, f) for p, f in history.placed_at.get(name, [])
                  if p > last_event.get(name, 0)]
        if not placed:
            continue  # never listed on a clean page since its last event: no known place
        since, floor = placed[-1]
        out_of_reach = [(p, c) for p, c in history.cuts
                        if p >= since and (c is None or c >= floor)]
        assert out_of_reach, (
            f"{name}: seen at poll {polls[-1]} on a page down to {floor}, unfollowed, never "
            f"emitted since, and no read stopped at or above its place")
    assert unemitted <= history.dropped, (
        f"{unemitted} unfollows of seen accounts went unemitted, only {history.dropped} "
        f"counted (meta.droppedAtCap)")
    meta = history.last_meta
    assert meta is not None
    followed, cap = len(history.upstream.times), history.upstream.cap
    listable = followed if cap is None else min(followed, cap)
    assert (meta["tracked"], meta["unlisted"]) == (listable, followed - listable), (
        f"after draining: tracked {meta['tracked']}, unlisted {meta['unlisted']}; "
        f"{followed} followed, {listable} listed")


relaxed = settings(max_examples=HISTORIES, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow])


@relaxed
@given(seed=st.integers(0, 2**32 - 1))
def test_without_faults_every_unfollow_of_a_seen_account_is_emitted_once(seed: int) -> None:
    check(play(random.Random(seed), faults=False))


@relaxed
@given(seed=st.integers(0, 2**32 - 1))
def test_after_transient_faults_every_unfollow_is_still_emitted_once(seed: int) -> None:
    check(play(random.Random(seed), faults=True))


@relaxed
@given(seed=st.integers(0, 2**32 - 1))
def test_crashes_before_the_state_is_kept_repeat_unfollows_but_lose_none(seed: int) -> None:
    check(play(random.Random(seed), faults=True, crashes=True), once=False)


@pytest.mark.parametrize("kind", FAULTS)
def test_the_model_injects_each_fault_kind_as_the_connector_sees_it(kind: str) -> None:
    """The faults must reach the trigger as the real API's would: a guard on this test."""
    upstream = Upstream(inclusive=False, epoch=1_700_000_000, rng=random.Random(1))
    for _ in range(12):
        upstream.follow(upstream.new_account())
    upstream.fault_rate = 1.0
    upstream.rng = _Pinned(kind)
    client = model_client(upstream)
    seventh = sorted(upstream.times.values(), reverse=True)[6]
    try:
        page = client.fetch_page(HANDLE, count=5, min_time=seventh)
    except connector.ConnectorError as err:
        assert kind in ("500", "502", "503", "429", "reset", "truncate", "malformed",
                        "wrong_shape", "html"), err
        return
    assert kind in ("stuck_cursor", "empty", "empty_more", "repeat_boundary", "far_cursor")
    assert (page.entries == []) == (kind in ("empty", "empty_more"))
    if kind in ("stuck_cursor", "empty", "empty_more"):
        assert page.has_more is True
    if kind == "repeat_boundary":
        assert len(page.entries) == 7  # two from the page before, then the page
    if kind == "far_cursor":
        assert page.max_cursor > upstream.epoch + upstream.clock + YEAR_S // 2


def test_the_model_says_where_its_depth_cap_is() -> None:
    """A guard: the page with the deepest follow it lists has minCursor -1; below, nothing."""
    upstream = Upstream(inclusive=False, epoch=1_700_000_000, rng=random.Random(1), cap=8)
    for _ in range(12):
        upstream.follow(upstream.new_account())
    client = model_client(upstream)
    first = client.fetch_page(HANDLE, count=5)
    last = client.fetch_page(HANDLE, count=5, min_time=first.min_cursor)
    assert (len(last.entries), last.min_cursor, last.has_more) == (3, -1, False)
    below = client.fetch_page(HANDLE, count=5, min_time=sorted(upstream.times.values())[2])
    assert below.entries == [] and below.has_more is False


class _Pinned(random.Random):
    def __init__(self, kind: str) -> None:
        super().__init__(0)
        self.kind = kind

    def choice(self, seq: Any) -> Any:
        return self.kind if seq is FAULTS else super().choice(seq)
