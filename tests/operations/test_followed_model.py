"""The trigger's one promise, checked against an independent model of the upstream.

The model below is written from the endpoint's contract alone (a following list served newest
first, follow times as cursors, `minCursor` sent back as `minTime`), not from the stand-in or the
connector. It answers at the HTTP level, through a requests transport adapter mounted on the
connector's own `Client`, so the connector parses and maps every answer exactly as it would the
real API's.

Random histories of follows, unfollows (of any account) and re-follows (of accounts followed
since the baseline) run between polls, with page sizes 3-10, budgets 2-4, inclusive and exclusive
page boundaries, accounts with and without ids, and transient faults of every kind the stand-in
injects but the timed ones (500, 502, 503, 429, reset, truncated body, HTML, malformed, wrong
shape, a stuck cursor, an empty page that claims more with and without a cursor that moves,
accounts repeated from the page before, and a maxCursor a year ahead of its page, which must not
lose a later follow). Once the faults stop, draining polls must have emitted every account
followed after the baseline and still followed exactly once, and no baseline account, ever.

Every other poll takes its state as the embedded store gives it (loaded from the row and parts
a database keeps) rather than as runner JSON, so the histories hold for both forms.

`TRIGGER_MODEL_HISTORIES=5000 pytest tests/operations/test_followed_model.py` runs more
histories.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connector
from connector.core.config import Credentials
from connector.state.followed import FollowState
from tests.operations.model_transport import Truncated, model_client

HISTORIES = int(os.environ.get("TRIGGER_MODEL_HISTORIES", "250"))
FAULT_KINDS = ("malformed", "wrong_shape", "html", "reset", "truncate", "stuck_cursor",
               "empty", "empty_more", "repeat_boundary", "far_cursor", "500", "502", "503",
               "429")
#: The faults the connector sees as an error rather than a page.
ERROR_FAULTS = ("malformed", "wrong_shape", "html", "reset", "truncate", "500", "502", "503",
                "429")
HANDLE = "modelled"
YEAR_S = 31_536_000


@dataclass
class Account:
    """One followed account as the upstream shows it; `name` is the model's own key for it."""

    name: str
    user: dict[str, Any]
    time: int = 0
    #: When it was followed, among follows of the same second (newest first within it too).
    order: int = 0


@dataclass
class Upstream:
    """The following list of one handle, and the faults it is told to answer with."""

    inclusive: bool
    epoch: int
    rng: random.Random
    clock: int = 0
    listed: dict[str, Account] = field(default_factory=dict)
    fault_rate: float = 0.0
    requests: int = 0
    counter: int = 0
    #: How many follows one second may hold: more than one only where pages are cut "at or
    #: before" (inclusive), and fewer than a page, as the real list's seconds hold few.
    per_second: int = 1
    follows: int = 0
    in_second: int = 0

    def new_account(self) -> Account:
        self.counter += 1
        n = self.counter
        user: dict[str, Any] = {"nickname": f"Account {n}", "avatarThumb": f"https://a/{n}.jpeg"}
        kind = self.rng.random()
        if kind < 0.85:
            user["id"] = str(7_100_000_000_000_000_000 + n)
            user["secUid"] = f"MS4w{n}"
            user["uniqueId"] = f"acct{n}"
        elif kind < 0.90:
            user["secUid"] = f"MS4w{n}"
            user["uniqueId"] = f"acct{n}"
        elif kind < 0.95:
            user["uniqueId"] = f"acct{n}"
        # else: no id, no secUid, no uniqueId at all
        return Account(f"Account {n}", user)

    def follow(self, account: Account) -> None:
        """Follow (or re-follow): the account moves to the top with a new follow time."""
        step = self.rng.choice((0, 1, 1, 2, 7))
        if step == 0 and self.in_second >= self.per_second:
            step = 1
        self.clock += step
        self.in_second = self.in_second + 1 if step == 0 else 1
        self.follows += 1
        account.time, account.order = self.epoch + self.clock, self.follows
        self.listed[account.name] = account

    def unfollow(self, name: str) -> None:
        del self.listed[name]

    # The endpoint

    def answer(self, body: dict[str, Any]) -> tuple[int, Any]:
        self.requests += 1
        fault = self.rng.choice(FAULT_KINDS) if self.rng.random() < self.fault_rate else None
        if fault in ("500", "502", "503", "429"):
            return int(fault), {"error": "injected"}
        if fault == "html":
            return 502, "<html><body><h1>502 Bad Gateway</h1></body></html>"
        if fault == "reset":
            raise requests.exceptions.ConnectionError("Connection reset by peer")
        if fault == "malformed":
            return 200, {"data": None}
        everything = sorted(self.listed.values(), key=lambda a: (-a.time, -a.order))
        rows = everything
        min_time = body.get("minTime")
        if min_time is not None:
            rows = [a for a in rows
                    if (a.time <= min_time if self.inclusive else a.time < min_time)]
        page, rest = rows[: body["count"]], rows[body["count"]:]
        if fault == "repeat_boundary" and min_time is not None:
            page = [a for a in everything if a not in rows][-2:] + page
        asked = min_time if min_time is not None else self.epoch + self.clock + 1
        if fault == "wrong_shape":
            return 200, {"followingList": [a.name for a in page], "hasMore": "yes"}
        if fault == "empty_more":
            # An empty page that claims more, with a cursor that moves on (below the watermark).
            return 200, {"followingList": [], "hasMore": True, "maxCursor": asked,
                         "minCursor": asked - self.rng.randint(1, 40), "total": len(self.listed)}
        if fault == "empty":  # an empty page that claims more, its cursors where it was asked
            return 200, {"followingList": [], "hasMore": True, "maxCursor": asked,
                         "minCursor": asked, "total": len(self.listed)}
        entries = [{"user": dict(a.user), "stats": {"followerCount": 1}} for a in page]
        if fault == "stuck_cursor":
            # The real page, but a next cursor that does not move (the stand-in's STALL).
            return 200, {"followingList": entries, "hasMore": True,
                         "maxCursor": page[0].time if page else asked, "minCursor": asked,
                         "total": len(self.listed)}
        if not page:
            return 200, {"followingList": [], "hasMore": False, "maxCursor": 0, "minCursor": 0,
                         "total": len(self.listed)}
        newest = page[0].time
        if fault == "far_cursor":  # a year ahead of the page's newest follow
            newest += YEAR_S * (1 if newest < 10**11 else 1000)
        if fault == "near_cursor":  # seconds ahead: a second that later follows reach
            newest += self.rng.randint(1, 20) * (1 if newest < 10**11 else 1000)
        payload = {"followingList": entries, "hasMore": bool(rest), "maxCursor": newest,
                   "minCursor": page[-1].time, "total": len(self.listed)}
        return 200, Truncated(payload) if fault == "truncate" else payload


@dataclass
class Run:
    """A history's bookkeeping: what the test knows happened, independent of the trigger."""

    upstream: Upstream
    inputs: dict[str, Any]
    client: connector.Client
    state: Any = None
    #: The same state as the trigger made it (Result.kept), for its database form.
    kept: FollowState | None = None
    baseline: set[str] = field(default_factory=set)
    fresh: dict[str, Account] = field(default_factory=dict)
    emitted: list[str] = field(default_factory=list)
    crashes: set[int] = field(default_factory=set)
    polls: int = 0

    def poll(self) -> dict[str, Any] | None:
        self.polls += 1
        try:
            result = connector.run("new_account_followed", self.inputs, state=self.given(),
                                   client=self.client)
        except connector.ConnectorError:
            return None  # a failed poll: the runner keeps the old state and polls again
        self.emitted += [item["nickname"] for item in result.items]
        if self.polls not in self.crashes:  # a crash after the hand-off loses the new state
            self.state, self.kept = result.state, result.kept
        return result.meta

    def given(self) -> Any:
        """The state for the next poll: runner JSON, or every other poll the state as a
        database keeps it, loaded again."""
        if self.kept is None or self.polls % 2:
            return self.state
        return FollowState.from_stored(*self.kept.to_stored())


def play(rng: random.Random, *, faults: bool, crashes: bool = False) -> Run:
    upstream = Upstream(inclusive=rng.random() < 0.5,
                        epoch=rng.choice((1_700_000_000, 1_700_000_000_000)), rng=rng)
    count = rng.randint(3, 10)
    if upstream.inclusive:
        upstream.per_second = rng.randint(1, count - 1)
    for _ in range(rng.randint(0, 30)):
        upstream.follow(upstream.new_account())
    run = Run(upstream, {"handle": HANDLE, "count": count,
                         "maxPages": rng.randint(2, 4)}, model_client(upstream))
    run.baseline = set(upstream.listed)
    while run.state is None:  # the baseline itself is taken without faults
        run.poll()
    upstream.fault_rate = rng.choice((0.1, 0.25, 0.5)) if faults else 0.0
    if crashes:
        run.crashes = {rng.randint(2, 25) for _ in range(rng.randint(1, 4))}
    for _ in range(rng.randint(1, 25)):
        step = rng.random()
        if step < 0.35:
            for _ in range(rng.choice((1, 1, 2, 3, 5, 8, 13, 21))):
                account = upstream.new_account()
                run.fresh[account.name] = account
                upstream.follow(account)
        elif step < 0.55 and upstream.listed:
            upstream.unfollow(rng.choice(sorted(upstream.listed)))
        elif step < 0.65:
            gone = sorted(set(run.fresh) - set(upstream.listed))
            if gone:
                upstream.follow(run.fresh[rng.choice(gone)])
        else:
            run.poll()
    upstream.fault_rate = 0.0
    run.crashes = set()
    # Draining: quiet polls until nothing is pending (retries of failed ranges are spaced out).
    for _ in range(500):
        meta = run.poll()
        if meta is not None and not meta["catchingUp"]:
            break
    return run


def check_exactly_once(run: Run) -> None:
    emitted = run.emitted
    twice = sorted({n for n in emitted if emitted.count(n) > 1})
    assert not twice, f"emitted twice: {twice}"
    check_nothing_lost_nothing_old(run)


def check_nothing_lost_nothing_old(run: Run) -> None:
    emitted = set(run.emitted)
    old = sorted(emitted - set(run.fresh))
    assert not old, f"emitted accounts that were not followed after the baseline: {old}"
    missed = sorted(set(run.fresh) & set(run.upstream.listed) - emitted)
    assert not missed, f"followed after the baseline, still followed, never emitted: {missed}"
    assert run.state["gaps"] == [], "ranges still pending after the draining polls"


relaxed = settings(max_examples=HISTORIES, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow])


@relaxed
@given(seed=st.integers(0, 2**32 - 1))
def test_without_faults_every_new_follow_is_emitted_exactly_once(seed: int) -> None:
    check_exactly_once(play(random.Random(seed), faults=False))


@relaxed
@given(seed=st.integers(0, 2**32 - 1))
def test_after_transient_faults_every_new_follow_is_emitted_exactly_once(seed: int) -> None:
    check_exactly_once(play(random.Random(seed), faults=True))


@relaxed
@given(seed=st.integers(0, 2**32 - 1))
def test_crashes_before_the_state_is_saved_repeat_follows_but_lose_none(seed: int) -> None:
    check_nothing_lost_nothing_old(play(random.Random(seed), faults=True, crashes=True))


@pytest.mark.parametrize("seed", [
    # A re-follow in a pending range's stop second hid the new follows below it.
    959,
    # A maxCursor a year ahead became the watermark while a range was pending down to the end
    # of the list (an empty list's baseline): the next page of new follows was taken for the
    # one that reaches the watermark, and the 13 follows below it were never read.
    19916664,
    # The newest page was the whole list, within one second: a follow made in that second
    # after the poll, read down to from a far-ahead watermark, was taken for old by the
    # check "at or before" the base, that second.
    442421280,
])
def test_histories_that_once_lost_follows_lose_none(seed: int) -> None:
    """Found by runs of 24,000 and 60,000 histories, kept so that CI replays them."""
    check_nothing_lost_nothing_old(play(random.Random(seed), faults=True, crashes=True))


#: A maxCursor a few seconds ahead of its page, where later follows land: not yet among the
#: faults every history draws from, because the trigger loses follows to it (below).
NEAR_FAULT_KINDS = (*FAULT_KINDS[:10], "near_cursor", *FAULT_KINDS[10:])


@pytest.mark.xfail(strict=True, reason="known loss: a watermark a few seconds ahead of the "
                   "list, reached by later follows, hides some of them (found 2026-12-06)")
@pytest.mark.parametrize(("seed", "crashes"), [(497, False), (146944, True), (46643, True)])
def test_a_max_cursor_a_few_seconds_ahead_loses_no_follow(seed: int, crashes: bool,
                                                           monkeypatch) -> None:
    """Found by 3,000 histories with the near_cursor fault among the others. Strict: once the
    trigger is fixed this passes, fails as XPASS, and near_cursor joins FAULT_KINDS."""
    monkeypatch.setattr(sys.modules[__name__], "FAULT_KINDS", NEAR_FAULT_KINDS)
    check_nothing_lost_nothing_old(play(random.Random(seed), faults=True, crashes=crashes))


def test_a_fault_free_history_a_first_near_cursor_fix_broke_stays_exact() -> None:
    """A first fix of the loss above (read past a page ending on a new follow, check below
    every base) emitted an old follow in this fault-free history (40,000 histories): it was
    reverted. Any fix must keep this one exact."""
    check_exactly_once(play(random.Random(10405), faults=False))


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_the_model_injects_each_fault_kind_as_the_connector_sees_it(kind: str) -> None:
    """The faults must reach the trigger as the real API's would: a guard on this test."""
    upstream = Upstream(inclusive=False, epoch=1_700_000_000, rng=random.Random(1))
    for _ in range(12):
        upstream.follow(upstream.new_account())
    upstream.fault_rate = 1.0
    upstream.rng = _Pinned(kind)
    client = model_client(upstream)
    try:
        page = client.fetch_page(HANDLE, count=5)
    except connector.ConnectorError as err:
        assert kind in ERROR_FAULTS, err
        return
    assert kind not in ERROR_FAULTS
    assert (page.entries == []) == (kind in ("empty", "empty_more"))
    if kind in ("stuck_cursor", "empty", "empty_more"):
        assert page.has_more is True
    if kind == "far_cursor":
        assert page.max_cursor > upstream.epoch + upstream.clock + YEAR_S // 2


# The same promise through the stand-in, over HTTP, with the stand-in's own faults. Fewer
# histories: each request crosses loopback. The bookkeeping stays the test's own.

STANDIN_FAULTS = {
    "malformed": "malformed", "wrong_shape": "wrong_shape", "html": "html", "reset": "reset",
    "truncate": "truncate", "stuck_cursor": "stall", "empty": "empty",
    "empty_more": "empty_advancing", "repeat_boundary": "repeat", "far_cursor": "far_cursor",
    "500": "500", "502": "502", "503": "503", "429": "429",
}
STANDIN_HISTORIES = max(1, HISTORIES // 10)


@pytest.mark.parametrize("seed", range(STANDIN_HISTORIES))
def test_through_the_stand_in_every_new_follow_is_emitted_exactly_once(seed: int) -> None:
    from connector.core.config import RetryPolicy
    from connector.standin import OK, StandIn, script

    rng = random.Random(seed)
    handle = "modelled"
    count, budget = rng.randint(3, 10), rng.randint(2, 4)
    with StandIn(api_keys=("k",), boundary_repeats=rng.random() < 0.5) as standin, \
            connector.Client(Credentials(api_key="k", base_url=standin.url),
                             retry=RetryPolicy.no_wait(total=0)) as client:
        made = 0

        def new_user() -> dict[str, Any]:
            nonlocal made
            made += 1
            user = {"nickname": f"Account {made}", "uniqueId": f"acct{made}",
                    "id": str(7_200_000_000_000_000_000 + made)}
            if rng.random() < 0.1:
                del user["id"]
            return user

        standin.add_account(handle, [new_user() for _ in range(rng.randint(0, 25))])
        inputs = {"handle": handle, "count": count, "maxPages": budget}
        state = connector.run("new_account_followed", inputs, client=client).state
        fresh: dict[str, dict[str, Any]] = {}
        emitted: list[str] = []

        def poll(faulty: bool) -> dict[str, Any] | None:
            nonlocal state
            if faulty:
                kinds = [rng.choice(sorted(STANDIN_FAULTS)) if rng.random() < 0.3 else None
                         for _ in range(budget + 2)]
                standin.inject(*[script(STANDIN_FAULTS[k])[0] if k else OK for k in kinds])
            try:
                result = connector.run("new_account_followed", inputs, state=state,
                                       client=client)
            except connector.ConnectorError:
                return None
            finally:
                standin.clear_faults()
            emitted.extend(i["nickname"] for i in result.items)
            state = result.state
            return result.meta

        for _ in range(rng.randint(3, 15)):
            step = rng.random()
            if step < 0.35:
                for _ in range(rng.choice((1, 2, 5, 9, 17))):
                    user = standin.follow(handle, new_user())
                    fresh[user["nickname"]] = user
            elif step < 0.5:
                listed = standin.following(handle)
                if listed:
                    gone = rng.choice(listed)
                    standin.unfollow(handle, gone.get("id") or gone["uniqueId"])
            elif step < 0.6:
                listed = {u["nickname"] for u in standin.following(handle)}
                gone = sorted(set(fresh) - listed)
                if gone:
                    standin.follow(handle, fresh[rng.choice(gone)])
            else:
                poll(faulty=True)
        for _ in range(300):
            meta = poll(faulty=False)
            if meta is not None and not meta["catchingUp"]:
                break
        listed = {u["nickname"] for u in standin.following(handle)}
    twice = sorted({n for n in emitted if emitted.count(n) > 1})
    assert not twice, f"emitted twice: {twice}"
    assert not set(emitted) - set(fresh), "emitted an account followed before the baseline"
    assert not (set(fresh) & listed) - set(emitted), "a new follow still listed was lost"


class _Pinned(random.Random):
    def __init__(self, kind: str) -> None:
        super().__init__(0)
        self.kind = kind

    def choice(self, seq: Any) -> Any:
        return self.kind if seq is FAULT_KINDS else super().choice(seq)
