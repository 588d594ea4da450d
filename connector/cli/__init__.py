"""`tiktok-following`: the command line. Every command has a Python call that does the same.

Modules are imported inside each command so `--help` stays as quick as `import connector`.
Whatever goes wrong, the user gets one line on stderr and an exit status (2: fix the input,
nothing was sent; 1: anything else), never a traceback or a secret.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from ..core.errors import ConnectorError
from .common import PROG, Parser, Secrets, say, setup_logging

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = _parser(_command_in(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    args.secrets = secrets = Secrets()
    if args.base_url:
        from ..core.redact import url_secrets

        secrets.add(*url_secrets(args.base_url))
    if getattr(args, "state_db", None):
        secrets.add_database(args.state_db)
    handler = setup_logging(args.verbose, secrets)
    try:
        return _run(args)
    finally:
        for name in ("connector", "psycopg"):
            logging.getLogger(name).removeHandler(handler)


def _run(args: Any) -> int:
    from ..invoke import exit_code

    secrets = args.secrets
    try:
        return int(args.func(args) or 0)
    except ConnectorError as err:
        say(f"{PROG}: {err.message}", secrets)
        return exit_code(err)
    except KeyboardInterrupt:
        say(f"{PROG}: interrupted")
        return 130
    except BrokenPipeError:
        # The reader (head, a closed pipe) left; exit quietly like other Unix tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as err:  # a bug: one line, the traceback only with -vv
        logging.getLogger("connector").debug("internal error", exc_info=True)
        say(f"{PROG}: internal error ({type(err).__name__}): {err}; run with -vv for details "
            "and report it", secrets)
        return 1


def _command_in(argv: list[str]) -> str | None:
    """The command a command line runs, when it is plain to see: only that command's parser is
    then built (building all of them is a few ms of argparse work, a tenth of what `invoke`
    adds to a bare script). None, to build them all, for help or anything unexpected."""
    args = iter(argv)
    for arg in args:
        if arg == "--base-url":
            next(args, None)  # its value
        elif arg == "--sandbox" or arg.startswith("--base-url=") or (
                arg.startswith("-") and arg.lstrip("-") in ("v", "vv", "vvv", "verbose")):
            continue
        else:
            return None if arg.startswith("-") else arg
    return None


class _Skipped:
    """Stands in for the parser of a command that is not being run: takes every call."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


class _OnlyOne:
    """The subparsers action, building only `command`'s parser (if it is one of them)."""

    def __init__(self, sub: Any, command: str) -> None:
        self.sub = sub
        self.command = command

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name == self.command:
            return self.sub.add_parser(name, **kwargs)
        return _Skipped()


def _parser(command: str | None = None) -> Parser:
    p = Parser(
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
    # prog given: argparse would otherwise format a usage line just to find this same prefix.
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           parser_class=Parser, prog=PROG)

    from . import commands, serve, watch

    target = sub
    if command is not None:
        target = _OnlyOne(sub, command)
    commands.add_commands(target)
    watch.add_commands(target)
    serve.add_commands(target)
    if command is not None and command not in sub.choices:
        return _parser()  # not a command: the full parser names the real ones
    return p
