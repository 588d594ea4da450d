"""The polling trigger "New Account Followed": each follow since the last poll, exactly once.

A poll is the walk down to the watermark (walk.py; one range's read, the check at `floor`, in
range_walk.py), shared with the "Account Unfollowed" trigger; this module decides what the
trigger remembers and emits.
"""

from __future__ import annotations

from typing import Any

from ..core.http import PageSource, list_reader
from ..core.items import flatten, identity
from ..state.followed import FollowState
from ..state.memory import Memory
from .poll import PollRun, newest_account
from .results import Result
from .walk import advance

#: The trigger's state, for the embedded store (operations/registry.py).
State = FollowState


def run(
    client: PageSource,
    inputs: dict[str, Any],
    *,
    source: str = "API",
    state: Any = None,
    mode: str = "live",
) -> Result:
    """Poll once. `state` is what the previous poll returned (None on the first run): its
    runner JSON, or the state object the embedded store loaded; `inputs` are prepared
    (defaults applied, handle normalised)."""
    handle = inputs["handle"]
    # Parse state before any request: damaged state must cost nothing and change nothing.
    prior = FollowState.of(state)
    poll = PollRun(list_reader(client, handle, count=inputs.get("count"), request_source=source),
                   budget=inputs["maxPages"])
    if mode == "test":
        items = poll.sample()
        meta = _meta(poll, handle, new_follows=0, gaps=[])
        meta.update(mode="test", sampleItems=len(items))
        return Result(items=items, state=state, meta=meta)
    if poll.new_baseline(prior, handle):
        watermark, base, entries = poll.baseline()
        new_state = FollowState(handle=handle, watermark=watermark, base=base,
                                known=Memory().remember(identity(e) for e in entries),
                                watermark_account=newest_account(entries))
        emit = inputs.get("firstRun") == "emitRecent"
        items = [flatten(e) for e in reversed(entries)] if emit else []
    else:
        step = advance(poll, prior.watermark, prior.gaps, prior.known, prior.base,
                       forgets=prior.known.forgets, account=prior.watermark_account)
        new_state = FollowState(handle=prior.handle, watermark=step.watermark, base=step.base,
                                known=prior.known.remember(step.remembered, poll.touched,
                                                           step.closed),
                                gaps=step.gaps, watermark_account=step.watermark_account)
        items = step.items
    return Result(items=items, state=new_state,
                  meta=_meta(poll, handle, new_follows=len(items), gaps=new_state.gaps))


def _meta(poll: PollRun, handle: str, *, new_follows: int, gaps: list) -> dict[str, Any]:
    return poll.meta(handle, {
        "newFollows": new_follows,
        "baseline": poll.baselined,
        "catchingUp": bool(gaps) or not poll.top_done,
        "pendingGaps": len(gaps),
        "retryingGaps": sum(1 for g in gaps if g.tries),
    })
