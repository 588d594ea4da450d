"""`tiktok-following`: the command line. Every command has a Python call that does the same.

Modules are imported inside each command so `--help` stays as quick as `import connector`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, TextIO

from .cli_common import credentials_for, state_db_arg
from .core.errors import ConnectorError

PROG = "tiktok-following"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except ConnectorError as err:
        print(f"{PROG}: {err.message}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (head, a closed pipe) left; exit quietly like other Unix tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Whom a TikTok account follows, and when it follows someone new "
                    "(DumplingAI get-tiktok-user-following).",
        epilog="Credentials: DUMPLINGAI_API_KEY and DUMPLINGAI_BASE_URL, or --sandbox to use "
               "a built-in stand-in with demo accounts and no key.",
    )
    p.add_argument("--sandbox", action="store_true",
                   help="run against a built-in local stand-in (demo accounts, no API key)")
    p.add_argument("--base-url", help="API base URL (default: $DUMPLINGAI_BASE_URL or "
                                      "https://app.dumplingai.com)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more detail on stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("list", help="list whom a handle follows")
    c.add_argument("handle")
    c.add_argument("--max-pages", type=int, default=1, help="pages to fetch (10 credits each)")
    c.add_argument("--max-items", type=int, help="stop after this many accounts")
    c.add_argument("--count", type=int, help="accounts per page")
    # Kept as text: the manifest coerces it, and a float would turn a cursor 1700000045
    # into 1700000045.0 (cursors pass through untouched, CONTRACT 1).
    c.add_argument("--min-time", help="resume from an earlier nextCursor")
    c.add_argument("--format", choices=("json", "jsonl", "csv"), default="jsonl")
    c.set_defaults(func=cmd_list)

    c = sub.add_parser("poll", help="print new follows since the last poll (SQLite state)")
    c.add_argument("handle")
    state_db_arg(c)
    c.add_argument("--count", type=int, help="accounts per page")
    c.add_argument("--max-pages", type=int, help="page budget of this poll (default 10)")
    c.add_argument("--first-run", choices=("skipExisting", "emitRecent"),
                   help="what the first poll does (default skipExisting: baseline only)")
    c.set_defaults(func=cmd_poll)

    c = sub.add_parser("invoke", help="runner protocol: JSON request on stdin, JSON on stdout")
    c.set_defaults(func=cmd_invoke)

    c = sub.add_parser("manifest", help="print the manifests as JSON")
    c.add_argument("key", nargs="?", help="one manifest (connector or an operation key)")
    c.set_defaults(func=cmd_manifest)

    c = sub.add_parser("sandbox", help="run the local stand-in server with demo accounts")
    c.add_argument("--port", type=int, default=8787)
    c.set_defaults(func=cmd_sandbox)

    c = sub.add_parser("demo", help="watch the trigger detect new follows on the stand-in")
    c.add_argument("--handle", default="busy_demo")
    c.add_argument("--polls", type=int, default=3)
    c.add_argument("--interval", type=float, default=4.0, help="seconds between polls")
    state_db_arg(c, default_help="a temporary file")
    c.set_defaults(func=cmd_demo)

    from .watch.cli import add_commands

    add_commands(sub, state_db_arg)
    return p


def cmd_list(args: argparse.Namespace) -> int:
    from .api import run

    inputs = {"handle": args.handle, "maxPages": args.max_pages, "maxItems": args.max_items,
              "count": args.count, "minTime": args.min_time}
    progress = _Progress(sys.stderr, args.max_pages)
    with credentials_for(args) as creds:
        result = run("get_tiktok_user_following", {k: v for k, v in inputs.items()
                                                   if v is not None},
                     credentials=creds, on_page=progress.update)
    progress.done()
    write_items(result.items, args.format, sys.stdout)
    meta = result.meta
    more = ""
    if meta["hasMore"]:
        # No cursor means the first page was cut short by --max-items: more is at the top.
        more = (", more with a higher --max-items" if meta["nextCursor"] is None
                else f", more from --min-time {meta['nextCursor']}")
    pages = f"{meta['pages']} page{'' if meta['pages'] == 1 else 's'}"
    print(f"@{meta['handle']}: {len(result.items)} accounts, {pages}, "
          f"{meta['creditsUsed']} credits{_rate(meta)}{more}", file=sys.stderr)
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    from .store_api import open_store

    inputs = {"count": args.count, "maxPages": args.max_pages, "firstRun": args.first_run}
    with credentials_for(args) as creds, open_store(args.state_db) as store:
        batch = store.poll(args.handle, inputs={k: v for k, v in inputs.items() if v is not None},
                           credentials=creds)
        with batch:
            write_items(batch.items, "jsonl", sys.stdout)
            sys.stdout.flush()  # the lines are out before the state moves on
            batch.commit()
    print(poll_summary(batch.meta), file=sys.stderr)
    return 0


def poll_summary(meta: dict[str, Any]) -> str:
    what = "baseline taken, " if meta["baseline"] else ""
    extra = f", catching up ({meta['pendingGaps']} gaps)" if meta["catchingUp"] else ""
    line = (f"@{meta['handle']}: {what}{_n(meta['newFollows'], 'new follow')}, "
            f"{_n(meta['pages'], 'request')}, {meta['creditsUsed']} credits{_rate(meta)}{extra}")
    return "\n".join([line, *(f"  warning: {w}" for w in meta["warnings"])])


def cmd_invoke(args: argparse.Namespace) -> int:
    from . import invoke

    return invoke.main(sys.stdin, sys.stdout, sys.stderr)


def cmd_manifest(args: argparse.Namespace) -> int:
    from .core import manifests

    data = manifests.load(args.key) if args.key else manifests.load_all()
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from .sandbox import serve

    serve(port=args.port)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from .sandbox import StandIn
    from .store_api import open_store

    with StandIn(demo=True) as standin, tempfile.TemporaryDirectory() as tmp:
        creds = {"apiKey": standin.api_key, "baseUrl": standin.url}
        path = args.state_db or os.path.join(tmp, "demo.db")
        print(f"stand-in at {standin.url}; state in {path}", file=sys.stderr)
        with open_store(path) as store:
            for n in range(args.polls):
                if n:
                    print(f"... waiting {args.interval:g}s for @{args.handle} to follow "
                          "more accounts", file=sys.stderr)
                    time.sleep(args.interval)
                with store.poll(args.handle, inputs={"count": 30},
                                credentials=creds) as batch:
                    write_items(batch.items, "jsonl", sys.stdout)
                    sys.stdout.flush()
                    batch.commit()
                print(poll_summary(batch.meta), file=sys.stderr)
    return 0


def write_items(items: list[dict[str, Any]], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        json.dump(items, out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif fmt == "jsonl":
        for item in items:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
    else:
        import csv

        from .core.items import STAT_FIELDS, USER_FIELDS

        fields = ["id", *USER_FIELDS, *STAT_FIELDS, "profileUrl"]
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(items)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _rate(meta: dict[str, Any]) -> str:
    if meta.get("rateLimitRemaining") is None:
        return ""
    return f", rate limit {meta['rateLimitRemaining']}/{meta['rateLimitLimit']} left"


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


if __name__ == "__main__":
    sys.exit(main())
