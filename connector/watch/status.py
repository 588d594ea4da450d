"""What `watch` is doing, per handle and for the whole fleet, read from its state database:
`tiktok-following status`, and in Python

    from connector import watch_status
    report = watch_status("watch.db")      # {"handles": [...], "budget": {...}}

It only reads: a database that does not exist is an error, never created.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..core.budget import PERIODS, period_start
from ..operations.registry import NEW_FOLLOWS
from ..storage import Database, PollRow, open_database
from ..storage.outbox import iso
from .activity import Activity
from .backoff import FAILING, HIDDEN, Health
from .spend import BUDGET_NAME
from .timing import parse_kept


def watch_status(target: str | os.PathLike[str] | Database | None = None) -> dict[str, Any]:
    """Each watched handle's last and next poll, follows a day (estimate), credits spent this
    period, status, list size against accounts seen, pending and parked events; and the
    budget, spent and projected for the period. `target` as `open_database` takes it."""
    database = open_database(target, create=False)
    try:
        prefix = f"{NEW_FOLLOWS.key}:"
        rows = [r for r in database.poll_rows() if r.key.startswith(prefix)]
        backlog = database.backlog_by_handle()
        stored = database.budget_view(BUDGET_NAME)
        now = database.clock()  # the clock the periods were counted by
    finally:
        if database is not target:  # opened here
            database.close()
    period = stored[0].period if stored is not None else "day"
    seconds = PERIODS[period]
    began = period_start(now, seconds)
    handles = [_handle(r, r.key[len(prefix):], backlog, began) for r in rows]
    spent = sum(h["creditsSpent"] for h in handles)
    fleet: dict[str, Any] = {
        "credits": None, "period": period, "periodStart": iso(began),
        "spent": spent, "projected": round(spent * seconds / max(now - began, 1.0)),
        "inHand": None, "held": None,
    }
    if stored is not None:
        budget, bucket = stored
        fleet.update(credits=budget.credits, inHand=round(bucket.level, 1),
                     held=round(bucket.held, 1))
    return {"handles": handles, "budget": fleet}


def _handle(row: PollRow, handle: str, backlog: dict[str, tuple[int, int]], began: float
            ) -> dict[str, Any]:
    facts = _json(row.health)
    activity = parse_kept(Activity, row.activity, Activity())
    health = parse_kept(Health, row.health, Health())
    if health.status in (HIDDEN, FAILING):
        status = health.status
    elif facts.get("atDepthCap"):
        status = "at the depth cap"
    elif facts.get("catchingUp"):
        status = "catching up"
    elif not row.polled_at:
        status = "not polled yet"
    else:
        status = "ok"
    pending, parked = backlog.get(handle, (0, 0))
    return {
        "handle": handle,
        "lastPollAt": iso(row.polled_at) if row.polled_at else None,
        "nextPollAt": iso(row.next_at) if row.next_at else None,
        "followsPerDay": round(activity.per_day, 2) if activity.polls else None,
        "creditsSpent": row.credits if row.period == began else 0,
        "status": status,
        "failures": health.failures,
        "total": facts.get("total") if isinstance(facts.get("total"), int) else None,
        "seen": facts.get("seen") if isinstance(facts.get("seen"), int) else None,
        "pending": pending,
        "parked": parked,
    }


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def status_table(report: dict[str, Any]) -> str:
    """The report as `status --format table` prints it."""
    lines = [f"{'HANDLE':<24}  {'STATUS':<16}  {'LAST POLL':<25}  {'NEXT POLL':<25}  "
             f"{'FOLLOWS/DAY':>11}  {'CREDITS':>8}  {'TOTAL':>6}  {'SEEN':>6}  "
             f"{'PENDING':>7}  {'PARKED':>6}"]
    for h in report["handles"]:
        per_day = "-" if h["followsPerDay"] is None else f"{h['followsPerDay']:g}"
        lines.append(f"@{h['handle']:<23}  {h['status']:<16}  {h['lastPollAt'] or '-':<25}  "
                     f"{h['nextPollAt'] or '-':<25}  {per_day:>11}  {h['creditsSpent']:>8}  "
                     f"{_n(h['total']):>6}  {_n(h['seen']):>6}  {h['pending']:>7}  "
                     f"{h['parked']:>6}")
    b = report["budget"]
    cap = (f"of a budget of {b['credits']}/{b['period']} ({b['inHand']:g} in hand)"
           if b["credits"] is not None else "(no budget)")
    lines.append(f"spent {b['spent']} credits this {b['period']} {cap}; projected "
                 f"{b['projected']} for the {b['period']}")
    return "\n".join(lines)


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)
