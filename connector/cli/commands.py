"""`list`, `poll`, `invoke`, `manifest`, `sandbox`, `demo` and `completion`. Python equivalents:
`connector.stream` (or `connector.run`), `connector.open_store().poll`
(`operation="account_unfollowed"` for `poll --unfollows`), `connector.invoke`,
`connector.CONNECTOR.operations` (the manifests), `connector.standin.StandIn`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from ..core import manifests
from ..core.config import API_KEY_ENV, BASE_URL_ENV, plural
from ..core.errors import ConfigurationError, ConnectorError, InputError
from ..operations.registry import ACTION, NEW_FOLLOWS, UNFOLLOWS
from .common import (
    PROG,
    ItemWriter,
    credentials_for,
    poll_summary,
    rate,
    say,
    seconds,
    state_db_arg,
    state_target,
    whole_number,
)
from .options import example, examples, input_default, input_help, input_option

#: The operations `poll` runs, and how its command line picks each.
POLL_OPERATIONS = {NEW_FOLLOWS.key: "", UNFOLLOWS.key: "with --unfollows"}


def add_commands(sub: Any) -> None:
    handle = example(ACTION.key, "handle")
    c = sub.add_parser(
        "list", cmd_list, help="list whom a handle follows",
        description="Whom HANDLE follows, newest follow first, one JSON line (or CSV row) "
                    "per account, printed a page at a time; a summary on stderr says what it "
                    "cost and where to continue. Python: connector.stream().",
        epilog=examples(
            f"{PROG} list {handle}",
            f"{PROG} list {example(ACTION.key, 'handle', 2)} --max-pages "
            f"{example(ACTION.key, 'maxPages', -1)} --format csv > following.csv",
            f"{PROG} list busy_demo --sandbox --format json"))
    c.add_argument("handle", help=input_help(ACTION.key, "handle"))
    action = {ACTION.key: ""}
    for name in ("maxPages", "maxItems", "count"):
        input_option(c, name, action)
    input_option(c, "minTime", action,
                 also="On the command line: the cursor a summary printed after "
                      "'more from --min-time'.")
    c.add_argument("--format", choices=("jsonl", "json", "csv"), default="jsonl",
                   help="jsonl: one JSON object a line; json: one array; csv: a header and a "
                        "row per account (default: jsonl)")

    c = sub.add_parser(
        "poll", cmd_poll,
        help="print new follows (or --unfollows) since the last poll (SQLite state)",
        description="The trigger New Account Followed (or with --unfollows, Account "
                    "Unfollowed) once: the accounts HANDLE followed since the last poll, one "
                    "JSON line each, oldest first, then the state is saved. The first poll "
                    "takes a baseline. Python: connector.open_store().poll().",
        epilog=examples(
            f"{PROG} poll {handle}",
            f"{PROG} poll {handle} --state-db ./follows.db --first-run emitRecent",
            f"{PROG} poll {handle} --unfollows --reconcile-every "
            f"{example(UNFOLLOWS.key, 'reconcileEvery', -1)}",
            f"{PROG} poll busy_demo --sandbox"))
    c.add_argument("handle", help=input_help(NEW_FOLLOWS.key, "handle"))
    state_db_arg(c)
    c.add_argument("--unfollows", action="store_true",
                   help="print the accounts unfollowed since the last poll instead (the Account "
                        "Unfollowed trigger, with its own state)")
    for name in ("count", "maxPages", "firstRun"):
        input_option(c, name, POLL_OPERATIONS)
    input_option(c, "reconcileEvery", POLL_OPERATIONS, metavar="POLLS")

    c = sub.add_parser(
        "invoke", cmd_invoke, help="runner protocol: JSON request on stdin, JSON on stdout",
        description="One JSON request on stdin, one JSON response on stdout; exit 2 for bad "
                    "input (nothing sent), 1 for anything else. Python: connector.invoke().",
        epilog=examples(
            f"echo '{{\"operation\": \"{NEW_FOLLOWS.key}\", \"inputs\": {{\"handle\": "
            f"\"{handle}\"}}, \"state\": null}}' | {PROG} invoke"))

    c = sub.add_parser("manifest", cmd_manifest, help="print the manifests as JSON",
                       epilog=examples(f"{PROG} manifest", f"{PROG} manifest {ACTION.key}"))
    c.add_argument("key", nargs="?", help="one manifest (connector or an operation key)")

    c = sub.add_parser("sandbox", cmd_sandbox,
                       help="run the local stand-in server with demo accounts",
                       epilog=examples(f"{PROG} sandbox --port 8787"))
    c.add_argument("--port", type=whole_number(0, 65535), default=8787,
                   help="port on 127.0.0.1 (0 to 65535, 0: any free one; default: 8787)")

    c = sub.add_parser("demo", cmd_demo,
                       help="watch the trigger detect new follows on the stand-in",
                       epilog=examples(f"{PROG} demo", f"{PROG} demo --polls 5 --interval 2"))
    c.add_argument("--handle", default="busy_demo",
                   help="a demo account of the stand-in (default: busy_demo)")
    c.add_argument("--polls", type=whole_number(1, 1000), default=3,
                   help="how many polls (1 to 1000; default: 3)")
    c.add_argument("--interval", type=seconds(0, 3600), default=4.0,
                   help="seconds between polls (more than 0, at most 3600; default: 4)")
    state_db_arg(c, default_help="a temporary file")

    c = sub.add_parser(
        "completion", cmd_completion,
        help="print a shell completion script (the completion extra: shtab)",
        description="A completion script for the shell, generated once from this command "
                    "line (commands, options, choices): nothing runs when you press Tab. "
                    "Needs shtab: pip install shtab, or the completion extra.",
        epilog=examples(f"{PROG} completion bash > ~/.local/share/bash-completion/completions/"
                        f"{PROG}",
                        f"{PROG} completion zsh > ~/.zfunc/_{PROG}"))
    c.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell to complete in")


def cmd_list(args: argparse.Namespace) -> int:
    from ..api import stream

    inputs = {"handle": args.handle, "maxPages": args.max_pages, "maxItems": args.max_items,
              "count": args.count, "minTime": args.min_time}
    progress = _Progress(sys.stderr, args.max_pages or input_default(ACTION.key, "maxPages"))
    writer = ItemWriter(args.format, sys.stdout)
    # Each page is printed as it arrives: memory stays that of one page, however many.
    with credentials_for(args) as creds, stream(
        {k: v for k, v in inputs.items() if v is not None}, credentials=creds,
        on_page=progress.update,
    ) as listing:
        try:
            for page in listing.pages():
                with interrupts_deferred():  # a page is printed whole, or not at all
                    writer.write(page)
                    sys.stdout.flush()
        except (ConnectorError, KeyboardInterrupt) as err:
            # What was printed stays a whole document; nothing is printed when no account
            # was, so an error never reads as an empty list.
            writer.close(complete=False)
            sys.stdout.flush()
            progress.done()
            if isinstance(err, ConnectorError):
                cursor = err.partial.next_cursor if err.partial is not None else None
                if listing.items and cursor is not None:
                    say(f"@{listing.handle}: {plural(listing.items, 'account')} printed before "
                        f"the error; continue with --min-time {cursor}", args.secrets)
                raise
            cursor = listing.meta["nextCursor"]
            say(f"{PROG}: interrupted; @{listing.handle}: "
                f"{plural(listing.items, 'account')} printed"
                + (f", continue with --min-time {cursor}" if cursor is not None else ""),
                args.secrets)
            return 130
    writer.close()
    progress.done()
    meta = listing.meta
    more = ""
    if meta["hasMore"]:
        # No cursor means the first page was cut short by --max-items: more is at the top.
        more = (", more with a higher --max-items" if meta["nextCursor"] is None
                else f", more from --min-time {meta['nextCursor']}")
    say(f"@{meta['handle']}: {plural(listing.items, 'account')}, "
        f"{plural(meta['pages'], 'page')}, {meta['creditsUsed']} credits{rate(meta)}{more}",
        args.secrets)
    for warning in meta["warnings"]:
        say(f"warning: {warning}", args.secrets)
    return 0


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C inside the block takes effect when it ends (in the main thread; elsewhere
    signals are not delivered anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if caught and callable(old):  # Python's own handler raises KeyboardInterrupt
        old(caught[0], None)


def cmd_poll(args: argparse.Namespace) -> int:
    from ..store import open_store

    inputs = {"count": args.count, "maxPages": args.max_pages, "firstRun": args.first_run,
              "reconcileEvery": args.reconcile_every}
    operation = (UNFOLLOWS if args.unfollows else NEW_FOLLOWS).key
    if args.unfollows and args.first_run is not None:
        raise InputError("--first-run is for new follows; an unfollow poll's first run always "
                         "only learns the list", field="firstRun")
    if not args.unfollows and args.reconcile_every is not None:
        raise InputError("--reconcile-every needs --unfollows", field="reconcileEvery")
    with credentials_for(args) as creds, open_store(state_target(args)) as store:
        _print_poll(store.poll(args.handle, credentials=creds, operation=operation,
                               inputs={k: v for k, v in inputs.items() if v is not None}),
                    args.secrets)
    return 0


def _print_poll(batch: Any, secrets: Any) -> None:
    """A poll's items as JSON lines, then its state saved, then its summary on stderr."""
    with batch:
        ItemWriter("jsonl", sys.stdout).write(batch.items)
        sys.stdout.flush()  # the lines are out before the state moves on
        batch.commit()
    print(secrets.scrub(poll_summary(batch.meta)), file=sys.stderr)


def cmd_invoke(args: argparse.Namespace) -> int:
    from ..invoke import main

    # --sandbox and --base-url stand where the environment would (a request's own
    # credentials still win, as they do over the environment): never ignored.
    with credentials_for(args) as creds, _environment(creds):
        return main(sys.stdin, sys.stdout, sys.stderr)


@contextmanager
def _environment(creds: dict[str, Any]) -> Iterator[None]:
    """DUMPLINGAI_API_KEY and DUMPLINGAI_BASE_URL set from `creds` for the block."""
    given = {env: creds[field] for field, env in (("apiKey", API_KEY_ENV),
                                                   ("baseUrl", BASE_URL_ENV)) if creds.get(field)}
    before = {env: os.environ.get(env) for env in given}
    os.environ.update(given)
    try:
        yield
    finally:
        for env, value in before.items():
            if value is None:
                os.environ.pop(env, None)
            else:
                os.environ[env] = value


def cmd_manifest(args: argparse.Namespace) -> int:
    data = manifests.load(args.key) if args.key else manifests.load_all()
    print(json.dumps(data, indent=2))
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

    from ..standin import StandIn
    from ..store import open_store

    with StandIn(demo=True) as standin, tempfile.TemporaryDirectory() as tmp:
        path = args.state_db or os.path.join(tmp, "demo.db")
        say(f"stand-in at {standin.url}; state in {path}")
        with open_store(path) as store:
            for n in range(args.polls):
                if n:
                    say(f"... waiting {args.interval:g}s for @{args.handle} to follow more "
                        "accounts")
                    time.sleep(args.interval)
                _print_poll(store.poll(args.handle, inputs={"count": 30},
                                       credentials=standin.credentials),
                            args.secrets)
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    try:
        import shtab
    except ImportError:
        raise ConfigurationError("shell completion needs shtab: pip install shtab (or the "
                                 "completion extra)", field="shell") from None
    from . import _parser

    sys.stdout.write(shtab.complete(_parser(), args.shell))
    return 0


class _Progress:
    """A one-line page counter on a terminal when several pages are fetched; silent otherwise."""

    def __init__(self, out: TextIO, max_pages: int) -> None:
        self.out = out
        self.active = max_pages > 1 and out.isatty()
        self.shown = False

    def update(self, pages: int, items: int) -> None:
        if self.active:
            self.out.write(f"\rfetching: page {pages}, {plural(items, 'account')}")
            self.out.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            self.out.write("\r\033[K")
            self.out.flush()


__all__ = ["PROG", "add_commands"]
