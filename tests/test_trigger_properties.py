"""Property-based histories for the trigger, against an in-memory model of the upstream.

The model is written here, independently of the stand-in: a newest-first list with
follow-time cursors. Random follows, unfollows and re-follows happen between polls with random
page sizes and budgets. Without faults every new follow is emitted exactly once; with transport
faults and crashes (a poll whose state is lost) every new follow is emitted at least once and
no old follow ever is. "New" is CONTRACT 3's: an account the trigger had not emitted or
baselined, so re-following an account the trigger never saw may be emitted (once).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.core.errors import TransportError
from connector.core.http import Page
from connector.operations import trigger


class Upstream:
    """The following list: account id -> follow time, served newest first."""

    def __init__(self, initial: int, *, repeats: bool) -> None:
        self.clock = 1_000
        self.times: dict[str, int] = {}
        self.repeats = repeats
        self.next_id = 0
        self.faults: list[bool] = []
        for _ in range(initial):
            self.follow_new()

    def follow_new(self) -> str:
        self.next_id += 1
        account = f"{7_000_000_000_000_000_000 + self.next_id}"
        self.follow(account)
        return account

    def follow(self, account: str) -> None:
        self.clock += 1
        self.times[account] = self.clock

    def fetch_page(self, handle, *, min_time=None, count=None, request_source="API") -> Page:
        if self.faults and self.faults.pop(0):
            raise TransportError("injected")
        rows = sorted(self.times.items(), key=lambda kv: -kv[1])
        if min_time is not None:
            rows = [kv for kv in rows if (kv[1] <= min_time if self.repeats else kv[1] < min_time)]
        page = rows[:count]
        return Page(
            entries=[{"user": {"id": a, "uniqueId": f"u{a[-6:]}"}, "stats": {}} for a, _ in page],
            min_cursor=page[-1][1] if page else 0,
            max_cursor=page[0][1] if page else 0,
            has_more=len(rows) > len(page),
            total=len(self.times),
        )


step = st.one_of(
    st.tuples(st.just("follow"), st.integers(1, 40)),
    st.tuples(st.just("unfollow"), st.integers(0, 10_000)),
    st.tuples(st.just("refollow"), st.integers(0, 10_000)),
    st.tuples(st.just("poll"), st.just(0)),
)


def replay(history, *, page, budget, initial, repeats, faults=(), crashes=()):
    up = Upstream(initial, repeats=repeats)
    inputs = {"handle": "h", "count": page, "maxPages": budget}
    state = trigger.run(up, inputs, state=None).state
    up.faults = list(faults)
    baselined = set(state["known"])  # never to be emitted, even when re-followed
    fresh: set[str] = set()  # accounts first followed after the baseline: must be emitted
    refollowed: set[str] = set()  # may be emitted once, unless the trigger had seen them
    gone: set[str] = set()
    emitted: list[str] = []
    polls = 0

    def poll():
        nonlocal state, polls
        polls += 1
        try:
            result = trigger.run(up, inputs, state=state)
        except TransportError:
            return
        emitted.extend(i["id"] for i in result.items)
        if polls not in crashes:  # a crash after handing items off: state is never saved
            state = result.state

    for action, n in history:
        if action == "follow":
            for _ in range(n):
                fresh.add(up.follow_new())
        elif action == "unfollow" and up.times:
            account = sorted(up.times)[n % len(up.times)]
            del up.times[account]
            gone.add(account)
        elif action == "refollow" and gone:
            account = sorted(gone)[n % len(gone)]
            gone.discard(account)
            up.follow(account)
            refollowed.add(account)
        else:
            poll()
    up.faults.clear()
    for _ in range(400 // budget + 5):  # quiet polls drain every backlog
        poll()
    allowed = (fresh | refollowed) - baselined
    return up, fresh, allowed, emitted, state


common = {
    "history": st.lists(step, max_size=25),
    "page": st.integers(2, 12),
    "budget": st.integers(2, 6),
    "initial": st.integers(0, 40),
    "repeats": st.booleans(),
}
relaxed = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@relaxed
@given(**common)
def test_without_faults_every_new_follow_is_emitted_exactly_once(
    history, page, budget, initial, repeats
):
    up, fresh, allowed, emitted, state = replay(
        history, page=page, budget=budget, initial=initial, repeats=repeats
    )
    assert len(emitted) == len(set(emitted)), "a follow was emitted twice"
    assert set(emitted) <= allowed, "an old or baselined follow was emitted"
    assert fresh & set(up.times) <= set(emitted), "a new follow still listed was never emitted"
    assert state["gaps"] == []


@relaxed
@given(
    **common,
    faults=st.lists(st.booleans(), max_size=30),
    crashes=st.sets(st.integers(1, 30), max_size=6),
)
def test_with_faults_and_crashes_nothing_is_lost_and_nothing_old_is_emitted(
    history, page, budget, initial, repeats, faults, crashes
):
    up, fresh, allowed, emitted, _ = replay(
        history,
        page=page,
        budget=budget,
        initial=initial,
        repeats=repeats,
        faults=faults,
        crashes=crashes,
    )
    assert set(emitted) <= allowed
    assert fresh & set(up.times) <= set(emitted)
