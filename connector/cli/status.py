"""The `status` command: what `watch` is doing, per handle and for the fleet. Python
equivalent: `connector.watch_status`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import state_db_arg, state_target
from .options import examples


def add_commands(sub: Any) -> None:
    c = sub.add_parser(
        "status", cmd_status,
        help="per handle: last and next poll, follows a day, credits, status",
        description="What watch is doing, from its state database: for each watched handle "
                    "its last and next poll, its follows a day (the adaptive schedule's "
                    "estimate), the credits it spent this period, its status (ok, hidden, "
                    "failing, catching up, at the depth cap), the list's total against the "
                    "accounts seen, and its pending and parked events; then the credits spent "
                    "against the budget and the spend projected for the period. It only "
                    "reads: a --state-db that does not exist is an error.",
        epilog=examples("tiktok-following status --state-db watch.db",
                        "tiktok-following status --state-db watch.db --format json"))
    state_db_arg(c)
    c.add_argument("--format", choices=("table", "json"), default="table",
                   help="table (default) or json: {\"handles\": [...], \"budget\": {...}}")


def cmd_status(args: argparse.Namespace) -> int:
    from ..watch.status import status_table, watch_status

    report = watch_status(state_target(args))
    if args.format == "json":
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    else:
        print(status_table(report))
    return 0
