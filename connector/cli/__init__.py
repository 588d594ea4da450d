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

from ..core import manifests
from ..core.config import API_KEY_ENV, STATE_DB_ENV, MissingApiKey
from ..core.errors import ConnectorError, InputError, exit_code
from ..core.secrets import Secrets
from .common import PROG, Parser, path_problem, say, setup_logging
from .options import add_globals, examples, merge_globals

__all__ = ["SIGPIPE_EXIT", "main"]

#: The exit status when the reader of stdout left: 128 + SIGPIPE.
SIGPIPE_EXIT = 141


def main(argv: list[str] | None = None) -> int:
    parser = _parser(_command_in(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    merge_globals(args)
    # Every secret this run knows of, so no line it prints or logs can hold one.
    args.secrets = secrets = (Secrets().environment().url(args.base_url)
                              .database(getattr(args, "state_db", None)))
    handler = setup_logging(args.verbose, secrets)
    try:
        return _run(args)
    finally:
        for name in ("connector", "psycopg"):
            logging.getLogger(name).removeHandler(handler)


def _run(args: Any) -> int:
    secrets = args.secrets
    try:
        _check_state_db_env(args)
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that left is found here, not in the flush at exit
        return code
    except ConnectorError as err:
        if isinstance(err, MissingApiKey):
            # Python's wording names an argument no one on a command line can pass.
            err = MissingApiKey(f"set {API_KEY_ENV}, or add --sandbox to try it against the "
                               "built-in stand-in (demo accounts, no key needed)")
        say(f"{PROG}: {err.message}", secrets)
        return exit_code(err)
    except KeyboardInterrupt:
        say(f"{PROG}: interrupted")
        return 130
    except BrokenPipeError:
        # The reader left (`| head`): stop at once, quietly, with the status of a process
        # SIGPIPE ended, as gh, git and coreutils do. Not 0: the output was cut short (a
        # `poll` saved no state); not 1, which says something went wrong here. Python ignores
        # SIGPIPE, so the status is given by hand; stdout goes to devnull so the flush at
        # exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_EXIT
    except Exception as err:  # a bug: one line, the traceback only with -vv
        logging.getLogger("connector").debug("internal error", exc_info=True)
        say(f"{PROG}: internal error ({type(err).__name__}): {err}; run with -vv for details "
            "and report it", secrets)
        return exit_code(err)


def _check_state_db_env(args: Any) -> None:
    """$TIKTOK_FOLLOWING_STATE_DB, where a command is about to use it, is held to --state-db's
    rules (argparse checks only the option), before anything is created."""
    value = os.environ.get(STATE_DB_ENV)
    if getattr(args, "state_db", "") is None and value:  # set but empty is "not set"
        problem = path_problem(value)
        if problem:
            raise InputError(f"{STATE_DB_ENV} {problem}; set it to a plain path or a "
                             "postgresql:// URL, or unset it", field=STATE_DB_ENV)


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


class _Commands:
    """The subparsers action, building only `command`'s parser (None: all of them), run by its
    `func` and taking the global options after the command too; a group of commands (`auth`)
    has no `func`, and its own commands take them."""

    def __init__(self, sub: Any, command: str | None) -> None:
        self.sub = sub
        self.command = command

    def add_parser(self, name: str, func: Any = None, **kwargs: Any) -> Any:
        if self.command is not None and name != self.command:
            return _Skipped()
        parser = self.sub.add_parser(name, **kwargs)
        if func is not None:
            parser.set_defaults(func=func)
            add_globals(parser, sub=True)
        return parser


def _parser(command: str | None = None) -> Parser:
    p = Parser(
        prog=PROG,
        description="Whom a TikTok account follows, and when it follows someone new "
                    "(DumplingAI get-tiktok-user-following).",
        epilog="Credentials: DUMPLINGAI_API_KEY and DUMPLINGAI_BASE_URL, or --sandbox to use "
               "a built-in stand-in with demo accounts and no key. Global options go before "
               "or after the command; COMMAND --help tells more.\n\n" + examples(
                   f"{PROG} list busy_demo --sandbox",
                   f"{PROG} poll stoolpresidente --state-db ./follows.db",
                   f"{PROG} demo"),
    )
    version = manifests.load(manifests.CONNECTOR_KEY)["version"]  # what `serve` reports too
    p.add_argument("--version", action="version", version=f"%(prog)s {version}",
                   help="print the version and exit")
    add_globals(p, sub=False)
    # prog given: argparse would otherwise format a usage line just to find this same prefix.
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           parser_class=Parser, prog=PROG)

    from . import commands, outbox, serve, status, watch

    target = _Commands(sub, command)
    for module in (commands, watch, outbox, status, serve):
        module.add_commands(target)
    if command is not None and command not in sub.choices:
        return _parser()  # not a command: the full parser names the real ones
    return p
