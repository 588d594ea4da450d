"""`list`, `poll`, `invoke`, `manifest`, `sandbox` and `demo`. Python equivalents:
`connector.stream` (or `connector.run`), `connector.open_store().poll`
(`operation="account_unfollowed"` for `poll --unfollows`), `connector.invoke`,
`connector.manifests`, `connector.StandIn`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, TextIO

from ..core.errors import ConfigurationError, InputError
from .common import (
    PROG,
    ItemWriter,
    credentials_for,
    cursor,
    plural,
    poll_summary,
    rate,
    say,
    seconds,
    state_db_arg,
    whole_number,
    write_items,
)

FIRST_RUN = ("skipExisting", "emitRecent")


def add_commands(sub: Any) -> None:
    c = sub.add_parser("list", help="list whom a handle follows")
    c.add_argument("handle")
    c.add_argument("--max-pages", type=whole_number(1, 1000), default=1,
                   help="pages to fetch (10 credits each)")
    c.add_argument("--max-items", type=whole_number(1, 10**6), help="stop after this many accounts")
    c.add_argument("--count", type=whole_number(1, 100), help="accounts per page")
    c.add_argument("--min-time", type=cursor, help="resume from an earlier nextCursor")
    c.add_argument("--format", choices=("json", "jsonl", "csv"), default="jsonl")
    c.set_defaults(func=cmd_list)

    c = sub.add_parser("poll", help="print new follows (or --unfollows) since the last poll "
                                    "(SQLite state)")
    c.add_argument("handle")
    state_db_arg(c)
    c.add_argument("--unfollows", action="store_true",
                   help="print the accounts unfollowed since the last poll instead (the Account "
                        "Unfollowed trigger, with its own state)")
    c.add_argument("--count", type=whole_number(1, 100), help="accounts per page")
    c.add_argument("--max-pages", type=whole_number(2, 200),
                   help="page budget of this poll (default 10; 50 with --unfollows)")
    c.add_argument("--first-run", choices=FIRST_RUN,
                   help="what the first poll does (default skipExisting: baseline only)")
    c.add_argument("--reconcile-every", type=whole_number(0, 100000), metavar="POLLS",
                   help="with --unfollows: read the whole list every POLLS polls even when the "
                        "count agrees (default 96; 0: never)")
    c.set_defaults(func=cmd_poll)

    c = sub.add_parser("invoke", help="runner protocol: JSON request on stdin, JSON on stdout")
    c.set_defaults(func=cmd_invoke)

    c = sub.add_parser("manifest", help="print the manifests as JSON")
    c.add_argument("key", nargs="?", help="one manifest (connector or an operation key)")
    c.set_defaults(func=cmd_manifest)

    c = sub.add_parser("sandbox", help="run the local stand-in server with demo accounts")
    c.add_argument("--port", type=whole_number(0, 65535), default=8787)
    c.set_defaults(func=cmd_sandbox)

    c = sub.add_parser("demo", help="watch the trigger detect new follows on the stand-in")
    c.add_argument("--handle", default="busy_demo")
    c.add_argument("--polls", type=whole_number(1, 1000), default=3)
    c.add_argument("--interval", type=seconds(0, 3600), default=4.0,
                   help="seconds between polls")
    state_db_arg(c, default_help="a temporary file")
    c.set_defaults(func=cmd_demo)


def cmd_list(args: argparse.Namespace) -> int:
    from ..api import stream
    from ..core.errors import ConnectorError

    inputs = {"handle": args.handle, "maxPages": args.max_pages, "maxItems": args.max_items,
              "count": args.count, "minTime": args.min_time}
    progress = _Progress(sys.stderr, args.max_pages)
    writer = ItemWriter(args.format, sys.stdout)
    # Each page is printed as it arrives: memory stays that of one page, however many.
    with credentials_for(args) as creds, stream(
        {k: v for k, v in inputs.items() if v is not None}, credentials=creds,
        on_page=progress.update,
    ) as listing:
        try:
            for page in listing.pages():
                writer.write(page)
                sys.stdout.flush()
        except ConnectorError as err:
            writer.close()
            progress.done()
            cursor = err.partial.next_cursor if err.partial is not None else None
            if listing.items and cursor is not None:
                say(f"@{listing.handle}: {listing.items} accounts printed before the error; "
                    f"continue with --min-time {cursor}", args.secrets)
            raise
    writer.close()
    progress.done()
    meta = listing.meta
    more = ""
    if meta["hasMore"]:
        # No cursor means the first page was cut short by --max-items: more is at the top.
        more = (", more with a higher --max-items" if meta["nextCursor"] is None
                else f", more from --min-time {meta['nextCursor']}")
    say(f"@{meta['handle']}: {listing.items} accounts, {plural(meta['pages'], 'page')}, "
        f"{meta['creditsUsed']} credits{rate(meta)}{more}", args.secrets)
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    from ..polling import open_store

    inputs = {"count": args.count, "maxPages": args.max_pages, "firstRun": args.first_run,
              "reconcileEvery": args.reconcile_every}
    operation = "account_unfollowed" if args.unfollows else "new_account_followed"
    if args.unfollows and args.first_run is not None:
        raise InputError("--first-run is for new follows; an unfollow poll's first run always "
                         "only learns the list", field="firstRun")
    if not args.unfollows and args.reconcile_every is not None:
        raise InputError("--reconcile-every needs --unfollows", field="reconcileEvery")
    with credentials_for(args) as creds, open_store(args.state_db) as store:
        batch = store.poll(args.handle, inputs={k: v for k, v in inputs.items() if v is not None},
                           credentials=creds, operation=operation)
        with batch:
            write_items(batch.items, "jsonl", sys.stdout)
            sys.stdout.flush()  # the lines are out before the state moves on
            batch.commit()
    print(args.secrets.scrub(poll_summary(batch.meta)), file=sys.stderr)
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    from ..invoke import main

    return main(sys.stdin, sys.stdout, sys.stderr)


def cmd_manifest(args: argparse.Namespace) -> int:
    from ..core import manifests

    data = manifests.load(args.key) if args.key else manifests.load_all()
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from ..standin import serve

    try:
        serve(port=args.port)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); "
                                 "pick another --port, or 0 for any free one",
                                 field="port") from None
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from ..polling import open_store
    from ..standin import StandIn

    with StandIn(demo=True) as standin, tempfile.TemporaryDirectory() as tmp:
        creds = {"apiKey": standin.api_key, "baseUrl": standin.url}
        path = args.state_db or os.path.join(tmp, "demo.db")
        say(f"stand-in at {standin.url}; state in {path}")
        with open_store(path) as store:
            for n in range(args.polls):
                if n:
                    say(f"... waiting {args.interval:g}s for @{args.handle} to follow more "
                        "accounts")
                    time.sleep(args.interval)
                with store.poll(args.handle, inputs={"count": 30},
                                credentials=creds) as batch:
                    write_items(batch.items, "jsonl", sys.stdout)
                    sys.stdout.flush()
                    batch.commit()
                print(poll_summary(batch.meta), file=sys.stderr)
    return 0


class _Progress:
    """A one-line page counter on a terminal when several pages are fetched; silent otherwise."""

    def __init__(self, out: TextIO, max_pages: int) -> None:
        self.out = out
        self.active = max_pages > 1 and out.isatty()
        self.shown = False

    def update(self, pages: int, items: int) -> None:
        if self.active:
            self.out.write(f"\rfetching: page {pages}, {items} accounts")
            self.out.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            self.out.write("\r\033[K")
            self.out.flush()


__all__ = ["PROG", "add_commands"]
