"""The polling trigger "New Account Followed": each follow since the last poll, exactly once.

A poll reads from the newest follow down only until a page reaches the newest follow it already
knew (the watermark): with n new follows and page size p that is ceil((n + 1) / p) requests,
the fewest that can show every new follow and one known one. The walk itself (pages, budget,
gaps, the check at `floor`) lives in walk.py, shared with the "Account Unfollowed" trigger;
this module decides what the trigger remembers and emits.
"""

from __future__ import annotations

from typing import Any

from ..core.http import PageSource, list_reader
from ..core.items import flatten, identity
from .results import Result
from .state import Memory, TriggerState
from .walk import TEST_ITEMS, PollRun

KEY = "new_account_followed"
#: The kind of event this trigger's items are, in the outbox and on webhooks.
EVENT = "followed"

__all__ = ["EVENT", "KEY", "TEST_ITEMS", "run"]


def run(
    client: PageSource,
    inputs: dict[str, Any],
    *,
    source: str = "API",
    state: Any = None,
    mode: str = "live",
) -> Result:
    """Poll once. `state` is what the previous poll returned (None on the first run);
    `inputs` are prepared (defaults applied, handle normalised)."""
    handle = inputs["handle"]
    # Parse state before any request: damaged state must cost nothing and change nothing.
    prior = TriggerState.from_json(state) if state is not None else None
    poll = PollRun(list_reader(client, handle, count=inputs.get("count"), request_source=source),
                   budget=inputs.get("maxPages", 10))
    if mode == "test":
        items = poll.sample()
        meta = poll.meta(handle, new_follows=0, gaps=None)
        meta.update(mode="test", sampleItems=len(items))
        return Result(items=items, state=state, meta=meta)
    if prior is None or prior.handle != handle:
        if prior is not None:
            poll.warnings.append(f"the state was for @{prior.handle}; started a new baseline "
                                 f"for @{handle}")
        watermark, base, entries = poll.baseline()
        new_state = TriggerState(handle=handle, watermark=watermark, base=base,
                                 known=Memory().remember(identity(e) for e in entries))
        emit = inputs.get("firstRun") == "emitRecent"
        items = [flatten(e) for e in reversed(entries)] if emit else []
    else:
        step = poll.advance(prior.watermark, prior.gaps, prior.known, prior.base)
        new_state = TriggerState(handle=prior.handle, watermark=step.watermark, base=step.base,
                                 known=prior.known.remember(step.remembered, step.touched),
                                 gaps=step.gaps)
        items = step.items
    return Result(items=items, state=new_state.to_json(),
                  meta=poll.meta(handle, new_follows=len(items), gaps=new_state.gaps))
