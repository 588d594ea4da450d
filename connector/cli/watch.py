"""The `watch` command. Python equivalent: `connector.Watcher` (or `connector.WatcherGroup`).

Exit status of `watch --once`: 0 when every handle was polled and every due event delivered,
1 when a handle failed or an event is left pending or parked by this cycle's failures, 2 for
bad arguments (nothing was sent). A stop by SIGTERM exits 0, by SIGINT 130 (both modes).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..core.config import plural
from ..core.errors import InputError
from ..operations.registry import FOLLOWED, NEW_FOLLOWS, TRIGGERS, UNFOLLOWED, UNFOLLOWS
from .common import (
    credentials_for,
    path_text,
    say,
    seconds,
    setup_logging,
    state_db_arg,
    state_target,
    whole_number,
)
from .options import examples, input_option

WEBHOOK_ENV = "TIKTOK_FOLLOWING_WEBHOOK"
#: The triggers `watch` runs, and how its command line picks each (--events).
WATCH_OPERATIONS = {NEW_FOLLOWS.key: "", UNFOLLOWS.key: f"for {UNFOLLOWED} events"}
#: What --events takes: the event kinds, alone or together.
_KINDS = f"{', '.join(TRIGGERS)} or {','.join(TRIGGERS)}"
log = logging.getLogger("connector.watch")


def add_commands(sub: Any) -> None:
    c = sub.add_parser(
        "watch", cmd_watch,
        help="deliver new follows of many handles to a webhook (n8n, Zapier, Make)",
        description="Poll each HANDLE for new follows every --interval and POST each new follow "
                    "to --webhook as JSON, through a SQLite outbox: nothing detected is lost, "
                    "even if the receiver is down or the process is killed.",
        epilog="Exit status with --once: 0 all handles polled and all due events delivered; "
               "1 a handle failed or an event is left pending/parked; 2 bad arguments. "
               "SIGTERM stops cleanly with 0, SIGINT with 130.\n\n" + examples(
                   "tiktok-following watch alice bob --webhook https://hooks.example/catch/1 "
                   "--interval 15m",
                   "tiktok-following watch --handles-file handles.txt --events "
                   f"{','.join(TRIGGERS)} --once",
                   "tiktok-following watch alice bob --webhook https://hooks.example/catch/1 "
                   "--metrics 127.0.0.1:9464"))
    c.add_argument("handles", nargs="*", metavar="HANDLE", help="TikTok handles to watch")
    c.add_argument("--handles-file", metavar="FILE", type=path_text,
                   help="more handles, one a line ('#' starts a comment; '-' reads stdin)")
    webhook_args(c)
    c.add_argument("--interval", type=_interval, default=900.0, metavar="DURATION",
                   help="how often each handle is polled, e.g. 30s, 15m, 1h (default 15m)")
    c.add_argument("--once", action="store_true",
                   help="one cycle: poll every handle once, deliver what is due, exit")
    state_db_arg(c)
    c.add_argument("--concurrency", type=whole_number(1, 256), default=4, metavar="N",
                   help="handles polled (and webhooks posted) at once (1 to 256; default: 4)")
    c.add_argument("--processes", type=_processes, default="auto", metavar="N",
                   help="processes the handles are split over, sharing --concurrency; auto "
                        "(default): one per 8 requests in flight, at most one per core and per "
                        "100 handles, so --concurrency 16 over 1,000 handles on 2 cores runs 2 "
                        "(see docs/speed.md)")
    c.add_argument("--max-attempts", type=whole_number(1, 1000), default=10, metavar="N",
                   help="delivery attempts before an event is parked (1 to 1000; default: 10)")
    for name in ("count", "maxPages", "firstRun"):
        input_option(c, name, WATCH_OPERATIONS)
    c.add_argument("--events", type=_events, default=(FOLLOWED,), metavar="KINDS",
                   help=f"what to deliver: {FOLLOWED} (default), {UNFOLLOWED}, or "
                        f"{FOLLOWED},{UNFOLLOWED}; unfollow events carry \"event\": "
                        f"\"{UNFOLLOWED}\"")
    input_option(c, "reconcileEvery", WATCH_OPERATIONS, metavar="POLLS")
    c.add_argument("--budget", type=_budget, metavar="N/PERIOD",
                   help="a hard cap on credits, e.g. 100000/month, 5000/day, 2000/hour: over "
                        "any stretch t at most N*t/PERIOD + N/10, baselines included; shared by "
                        "every watch on the same --state-db (see docs/scheduling.md)")
    c.add_argument("--schedule", choices=("fixed", "adaptive"),
                   help="fixed: every handle every --interval; adaptive: each as often as its "
                        "follows are worth, for the same credits (default: adaptive with "
                        "--budget, fixed without)")
    c.add_argument("--min-interval", type=_interval, metavar="DURATION",
                   help="adaptive schedule: the most often a handle is polled (default 1m, "
                        "or --interval if shorter)")
    c.add_argument("--max-interval", type=_interval, metavar="DURATION",
                   help="adaptive schedule: the least often a handle is polled (default 1d, "
                        "or --interval if longer)")
    c.add_argument("--lease", type=_interval, default=300.0, metavar="DURATION",
                   help="with several watch workers on one --state-db: how long a handle "
                        "claimed by a worker stays its own if that worker stops answering "
                        "(default 5m; a worker whose process died is taken over within about "
                        "5s)")
    c.add_argument("--metrics", metavar="HOST:PORT",
                   help="serve Prometheus metrics at http://HOST:PORT/metrics while watching, "
                        "e.g. --metrics 9464 (loopback) or --metrics 0.0.0.0:9464 (every "
                        "interface: the endpoint has no auth); needs the metrics extra "
                        "(docs/watch.md#metrics)")
    c.add_argument("--send-sample", action="store_true",
                   help="POST one sample event to the webhook and exit (teaches Zapier or "
                        "Make the fields)")


def webhook_args(c: argparse.ArgumentParser, *, for_retry: bool = False) -> None:
    c.add_argument("--webhook", metavar="URL", default=os.environ.get(WEBHOOK_ENV),
                   help="retry: deliver the events now to this URL" if for_retry else
                   f"where each new follow is POSTed (default: ${WEBHOOK_ENV})")
    c.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                   help="extra header on every POST, e.g. an auth token; repeatable; values "
                        "are never logged")
    c.add_argument("--allow-http", action="store_true",
                   help="allow a plain-http webhook on a non-loopback host")
    c.add_argument("--webhook-timeout", type=seconds(0, 600), default=30.0, metavar="SECONDS",
                   help="the longest one POST may take, from connecting to the last byte of "
                        "the answer, however slowly the receiver sends it (more than 0, at most "
                        "600; default: 30)")


def _events(text: str) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    if not kinds or not set(kinds) <= set(TRIGGERS):
        raise argparse.ArgumentTypeError(f"expected {_KINDS}, got {text[:40]!r}")
    return kinds


def _processes(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    return whole_number(1, 64)(text)


def _parsed_by(module: str, name: str) -> Callable[[str], Any]:
    """An argparse type: `module`'s parser `name`, imported when a value is given (not for
    --help), its InputError's words refused as argparse refuses a value."""
    def parse(text: str) -> Any:
        try:
            return getattr(importlib.import_module(module, __package__), name)(text)
        except InputError as err:
            raise argparse.ArgumentTypeError(err.message) from None
    return parse


_budget = _parsed_by("..core.budget", "parse_budget")
_interval = _parsed_by("..watch.schedule", "parse_interval")


def cmd_watch(args: argparse.Namespace) -> int:
    from ..watch.webhook import sample_event

    webhook = webhook_for(args)
    with webhook:
        if args.send_sample:
            code = 0
            for kind in args.events:
                reply = webhook.post(sample_event(kind))
                say(f"watch: sample {kind} event to {webhook.redacted}: "
                    f"{'delivered' if reply.ok else 'failed'} ({reply.status or reply.error})",
                    args.secrets)
                code = code or (0 if reply.ok else 1)
            return code
        handles = list(args.handles)
        if args.handles_file:
            handles += read_handles_file(args.handles_file)
        if not handles:
            raise InputError("no handles to watch: give HANDLE arguments or --handles-file FILE",
                             field="handle")
        from ..watch.arguments import check_spending

        # Bad bounds or a budget too small for a poll: refused before anything is sent.
        _, kind = check_spending(args.budget, args.schedule, args.interval, args.min_interval,
                                 args.max_interval, len(args.events))
        options = {name: getattr(args, name) for name in (
            "interval", "concurrency", "count", "max_pages", "first_run", "max_attempts",
            "events", "reconcile_every", "lease", "budget", "schedule", "min_interval",
            "max_interval")}
        options["store"] = state_target(args)
        with credentials_for(args) as creds, _metrics(args) as metrics, _watcher(
                args, handles, webhook, creds, {**options, "metrics": metrics}) as watcher:
            log.info("webhook %s; extra headers: %s", webhook.redacted,
                     ", ".join(sorted(webhook.headers)) or "none")
            with _GracefulStop(watcher) as stop:
                if args.once:
                    summary = watcher.run_cycle()
                    _print_summary(summary)
                    code = 0 if summary.ok else 1
                else:
                    processes = getattr(watcher, "processes", 1)
                    when = (f"on the {kind} schedule (from every {args.interval:g}s)"
                            if kind == "adaptive" else f"every {args.interval:g}s")
                    spend = f", budget {args.budget}" if args.budget else ""
                    say(f"watch: {plural(len(watcher.handles), 'handle')} {when}{spend} to "
                        f"{webhook.redacted}, state in {watcher.location}"
                        f"{f', in {processes} processes' if processes > 1 else ''}; a summary "
                        "line every interval"
                        + (f"; metrics at {metrics.url}" if metrics is not None else ""),
                        args.secrets)
                    watcher.run(on_summary=_print_summary)
                    code = 0
        return _GracefulStop.EXIT_CODES.get(stop.signum, code)  # type: ignore[call-overload]


def _metrics(args: argparse.Namespace) -> Any:
    """The --metrics endpoint, serving before anything is polled (a port in use stops watch
    here, exit 2); nothing, and prometheus_client not even imported, without --metrics."""
    if args.metrics is None:
        return contextlib.nullcontext()
    if args.once:
        raise InputError("--metrics serves a running watch, and --once exits after one cycle, "
                         "before any scrape: drop one of the two", field="metrics")
    from ..watch.metrics import Metrics, parse_address

    address = parse_address(args.metrics)  # a bad address is refused before the extra
    metrics = Metrics()
    try:
        return metrics.serve(address)
    except BaseException:
        metrics.close()
        raise


def _watcher(args: argparse.Namespace, handles: list[str], webhook: Any,
             credentials: dict[str, Any], options: dict[str, Any]) -> Any:
    """A Watcher, or with more than one process a WatcherGroup (the same calls)."""
    from ..watch.processes import WatcherGroup, auto_processes
    from ..watch.watcher import Watcher, unique_handles

    count = len(unique_handles(handles))
    processes = args.processes
    if processes == "auto":
        processes = auto_processes(args.concurrency, count)
    if min(processes, count) == 1:
        return Watcher(handles, webhook, credentials=credentials, **options)
    # The same logging in each child, which starts with none.
    log_setup = functools.partial(setup_logging, args.verbose, args.secrets)
    return WatcherGroup(handles, webhook, processes=processes, credentials=credentials,
                        log_setup=log_setup, **options)


def webhook_for(args: argparse.Namespace) -> Any:
    from ..core.config import Timeouts
    from ..watch.webhook import DEFAULT_TIMEOUTS, Webhook, parse_header

    if not args.webhook:
        raise InputError(f"--webhook URL is required (or set {WEBHOOK_ENV})", field="webhook")
    # Known as secrets before anything can fail, so no message can show them.
    args.secrets.webhook(args.webhook, (header.partition(":")[2] for header in args.header))
    headers = [parse_header(h) for h in args.header]
    return Webhook(args.webhook, headers=headers, allow_http=args.allow_http,
                   timeouts=Timeouts(DEFAULT_TIMEOUTS.connect, args.webhook_timeout,
                                     args.webhook_timeout),
                   pool_size=getattr(args, "concurrency", 4))


def read_handles_file(path: str) -> list[str]:
    """Handles from a UTF-8 text file ('-' is stdin), one a line; blank lines and '#' comments
    are skipped."""
    option = "--handles-file"
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read(10 * 2**20 + 1)
    except UnicodeDecodeError:
        raise InputError(f"{option} {path} is not a UTF-8 text file", field=option) from None
    except OSError as exc:
        raise InputError(f"cannot read {option} {path}: {exc.strerror}", field=option) from None
    return [h for h in (line.split("#", 1)[0].strip() for line in text.splitlines()) if h]


def _print_summary(summary: Any) -> None:
    print(summary.line(), file=sys.stderr, flush=True)


class _GracefulStop:
    """First SIGINT/SIGTERM: start nothing new, let polls and deliveries in flight finish.
    A second one quits at once, which is safe: the outbox survives even kill -9."""

    EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 0}

    def __init__(self, watcher: Any) -> None:
        self.watcher = watcher
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            kill = getattr(self.watcher, "kill", None)  # a WatcherGroup's processes
            if kill is not None:
                kill()
            os._exit(self.EXIT_CODES[signum])  # type: ignore[index]
        self.signum = signum
        # os.write, not print: a signal can arrive while the main thread is inside print().
        os.write(2, b"watch: stopping after the deliveries in flight (signal again to quit "
                    b"now)\n")
        self.watcher.stop()

    def __enter__(self) -> _GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in self.EXIT_CODES:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
