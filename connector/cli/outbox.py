"""The `outbox` command: list, retry or discard parked webhook events. Python equivalent:
`connector.Outbox`."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from ..core.config import plural
from ..core.errors import InputError
from ..core.redact import one_line
from .common import say, state_db_arg, state_target
from .options import examples
from .watch import webhook_args, webhook_for


def add_commands(sub: Any) -> None:
    c = sub.add_parser(
        "outbox", cmd_outbox, help="list, retry or discard parked webhook events",
        description="Events that failed --max-attempts deliveries are parked, never dropped. "
                    "list shows them (--all: pending ones too, with when each is next tried); "
                    "retry puts parked events back in the queue, due now (--all: every "
                    "parked event, and every pending one due now too; with --webhook: "
                    "delivers them now); discard deletes parked events. It never creates a "
                    "state database: a --state-db that does not exist is an error.",
        epilog=examples("tiktok-following outbox list --all",
                        "tiktok-following outbox retry --all --webhook "
                        "https://hooks.example/catch/1"))
    c.add_argument("action", nargs="?", choices=("list", "retry", "discard"), default="list",
                   help="what to do (default: list)")
    c.add_argument("event_ids", nargs="*", metavar="EVENT_ID",
                   help="the events to list, retry or discard (their eventId)")
    c.add_argument("--all", action="store_true",
                   help="list: pending events too; retry: every parked and pending event, due "
                        "now; discard: every parked event")
    state_db_arg(c)
    c.add_argument("--format", choices=("table", "jsonl"), default="table",
                   help="list output (default table; jsonl has the whole event)")
    webhook_args(c, for_retry=True)


def cmd_outbox(args: argparse.Namespace) -> int:
    if args.action != "list" and bool(args.event_ids) == bool(args.all):
        raise InputError(f"outbox {args.action} needs EVENT_ID ... or --all (one of the two)",
                         field="eventIds")
    # A bad --webhook is refused before the outbox changes, not after the events were requeued.
    webhook = webhook_for(args) if args.action == "retry" and args.webhook else None
    from ..storage import Outbox

    with webhook or contextlib.nullcontext(), Outbox(state_target(args)) as box:
        if args.action == "list":
            return _list(box, args)
        ids = None if args.all else list(dict.fromkeys(args.event_ids))
        before = {e.event_id: e for e in box.list(include_pending=True)}
        parked = {i for i, e in before.items() if e.parked}
        if args.action == "discard":
            done = box.discard(ids)
            say(f"outbox: discarded {plural(done, 'parked event')}")
        else:
            # --all: parked events back in the queue, and pending ones due now (the receiver
            # was fixed: nothing should wait out its backoff).
            done = box.retry(ids, include_pending=ids is None)
            pending = len(before) - len(parked)
            say(f"outbox: {plural(len(parked) if ids is None else done, 'parked event')} back "
                f"in the queue" + (f", {plural(pending, 'pending event')} due now"
                                   if ids is None and pending else ""))
        code = 0
        if ids is not None and len(ids) > done:
            missing = [i for i in ids if i not in parked]
            say(f"outbox: not parked (unknown, pending or already delivered): "
                f"{', '.join(missing)}", args.secrets)
            code = 1
        # Delivered now (retry --webhook): what was just put back in the queue.
        targets = set(before) if ids is None else parked.intersection(ids)
        if webhook is not None and targets:
            from ..watch.delivery import Deliverer

            result = Deliverer(box.database, webhook).run_pass(only=targets)
            say(f"outbox: delivered {result.delivered} of {len(targets)} to {webhook.redacted}"
                + (f"; {result.failed} failed ({result.last_error}), queued for a later try"
                   if result.failed else ""), args.secrets)
            code = max(code, 0 if result.delivered == len(targets) else 1)
        return code


def _list(box: Any, args: argparse.Namespace) -> int:
    from ..storage import event_row
    from ..storage.outbox import iso

    events = box.list(include_pending=args.all)
    if args.event_ids:
        wanted = set(args.event_ids)
        events = [e for e in events if e.event_id in wanted]
    if args.format == "jsonl":
        for event in events:
            sys.stdout.write(json.dumps(event_row(event), ensure_ascii=False) + "\n")
    elif events:
        print(f"{'EVENT_ID':<36}  {'STATUS':<7}  {'TRIES':>5}  {'NEXT TRY':<25}  "
              f"{'HANDLE':<24}  {'FOLLOWED':<24}  LAST ERROR")
        for e in events:
            item = (e.payload or {}).get("item") or {}
            followed = item.get("uniqueId") or item.get("id") or "?"
            next_try = "-" if e.parked else iso(e.next_attempt_at)
            print(f"{e.event_id:<36}  {'parked' if e.parked else 'pending':<7}  "
                  f"{e.attempts:>5}  {next_try:<25}  @{e.handle:<23}  @{followed:<23}  "
                  f"{one_line(e.last_error or '', 200)}")
    counts = box.counts()
    say(f"outbox: {counts['parked']} parked, {counts['pending']} pending")
    return 0

