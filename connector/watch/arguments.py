"""What a Watcher is given, checked before anything is sent: the triggers its event kinds
mean, the options each takes, the handles, and how it spends (budget, schedule, bounds)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core.budget import MIN_POLL_PAGES, Budget, parse_budget
from ..core.config import CREDITS_PER_REQUEST
from ..core.errors import InputError
from ..core.handles import normalize_handle
from ..operations import TRIGGERS
from .adaptive import check_bounds
from .timing import ADAPTIVE, FIXED, schedule_kind


def check_spending(budget: Budget | str | None, schedule: str | None, interval: float,
                   min_interval: float | None, max_interval: float | None, triggers: int
                   ) -> tuple[Budget | None, str]:
    """The budget (parsed) and the schedule (fixed or adaptive) a watch spends by, its bounds
    checked."""
    if isinstance(budget, str):
        budget = parse_budget(budget)
    kind = schedule_kind(schedule, budget)
    if kind == FIXED and (min_interval is not None or max_interval is not None):
        raise InputError("--min-interval and --max-interval (min_interval, max_interval) bound "
                         "the adaptive schedule: give --schedule adaptive (or a --budget) with "
                         "them, or leave them out",
                         field="minInterval" if min_interval is not None else "maxInterval")
    if kind == ADAPTIVE:
        check_bounds(interval, min_interval, max_interval)
    least = MIN_POLL_PAGES * triggers * CREDITS_PER_REQUEST
    if budget is not None and budget.capacity < least:
        raise InputError(f"budget {budget}: a tenth of it, the most spent at once, must pay a "
                         f"poll's {MIN_POLL_PAGES} requests for each of the {triggers} "
                         f"triggers watched; give at least {least * 10}/{budget.period}",
                         field="budget")
    return budget, kind


def triggers_for(events: Iterable[str]) -> list[str]:
    """The triggers to poll for the event kinds asked for, in the order given."""
    kinds = [events] if isinstance(events, str) else list(events)
    wrong = [k for k in kinds if k not in TRIGGERS]
    if wrong or not kinds:
        raise InputError(f"events must be some of {', '.join(TRIGGERS)}; got "
                         f"{', '.join(map(str, wrong)) or 'none'}", field="events")
    return [TRIGGERS[k].key for k in dict.fromkeys(kinds)]


def inputs_for(operation: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The watch options a trigger takes (firstRun is the follow trigger's, reconcileEvery
    the unfollow trigger's), those that were given."""
    from ..core.manifests import load

    accepted = load(operation)["input"]["properties"]
    return {k: v for k, v in inputs.items() if v is not None and k in accepted}


def check_options(inputs: dict[str, Any], operations: list[str]) -> None:
    """An option none of the watched triggers takes is a mistake, not something to ignore."""
    for name, value in inputs.items():
        if value is not None and not any(name in inputs_for(op, {name: value})
                                         for op in operations):
            kinds = [k for k, op in TRIGGERS.items() if name in inputs_for(op.key, {name: value})]
            raise InputError(f"{name} applies only when watching {' or '.join(kinds) or '?'} "
                             f"events", field=name)


def unique_handles(handles: Iterable[str]) -> tuple[str, ...]:
    if isinstance(handles, str):
        handles = [handles]
    out = tuple(dict.fromkeys(normalize_handle(h) for h in handles))
    if not out:
        raise InputError("no handles to watch: give at least one TikTok handle", field="handle")
    return out
