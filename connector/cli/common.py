"""What the CLI's commands share: the one-line error style, secrets kept out of every line,
credentials from the environment or the stand-in, and item output."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TextIO

from ..core.config import check_base_url, plural
from ..core.cursors import MAX_DIGITS, is_cursor
from ..core.redact import one_line
from ..core.secrets import Secrets

PROG = "tiktok-following"


class RedactingFormatter(logging.Formatter):
    """A log formatter that removes the run's secrets from every line, tracebacks included."""

    def __init__(self, secrets: Secrets, fmt: str) -> None:
        super().__init__(fmt)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return self.secrets.scrub(super().format(record))


def setup_logging(verbose: int, secrets: Secrets) -> logging.Handler:
    """Log lines on stderr, every one through the redacting formatter: warnings, or with -v the
    connector's progress, with -vv urllib3's too (its lines name paths and hosts)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets, "%(levelname)s %(name)s: %(message)s"))
    own = logging.getLogger("connector")
    # psycopg's pool warns of each session it drops and each reconnect that fails: while a
    # database is away the connector says so itself, once, so those show with -vv only (and,
    # like everything, through this handler, never Python's bare last-resort one).
    pg = logging.getLogger("psycopg")
    pg.setLevel(logging.WARNING if verbose > 1 else logging.ERROR)
    if verbose:
        logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
        own.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
        if verbose > 1:
            logging.getLogger("urllib3").setLevel(logging.DEBUG)
    else:
        handler.setLevel(logging.WARNING)
        own.addHandler(handler)
        pg.addHandler(handler)
    return handler


class HelpFormatter(argparse.HelpFormatter):
    """argparse's layout, keeping indented lines (examples) of a description or epilog as
    they are written, and wrapping the other paragraphs."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in text.split("\n\n"):
            if para.startswith("  ") or "\n  " in para:
                out.append("\n".join(indent + line for line in para.split("\n")))
            else:
                out.append(super()._fill_text(para, width, indent))
        return "\n\n".join(out)


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (exit 2) instead of usage and error, and
    examples in help kept as written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {one_line(message, 300)} (see --help)\n")


def say(text: str, secrets: Secrets | None = None) -> None:
    """One line on stderr, secrets removed."""
    line = one_line(text)
    print(secrets.scrub(line) if secrets else line, file=sys.stderr, flush=True)


@contextmanager
def credentials_for(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Credentials from --base-url, or with --sandbox a demo stand-in's for the duration of
    the command."""
    if args.sandbox:
        from ..standin import StandIn

        # Anchored to the hour so separate commands see the same demo accounts.
        with StandIn(demo=True, demo_epoch=time.time() // 3600 * 3600) as standin:
            yield standin.credentials
        return
    # The key and the default URL are left to the environment (`resolve_credentials`), so an
    # error about the key names DUMPLINGAI_API_KEY, where the user set it; --base-url is
    # checked here for its error to name it.
    creds: dict[str, Any] = {}
    if args.base_url is not None:  # given but blank is a mistake, not "the default"
        creds["baseUrl"] = check_base_url(args.base_url, field_name="--base-url")
    yield creds


def state_db_arg(parser: argparse.ArgumentParser, default_help: str | None = None) -> None:
    """The --state-db option, the same on every command that keeps state."""
    parser.add_argument(
        "--state-db", metavar="PATH|URL", type=path_text,
        help="SQLite state file (its folder must exist), or a "
             "postgresql://user:password@host/db URL shared by many watch workers (needs the "
             "postgres extra) (default: " + (default_help or
             "$TIKTOK_FOLLOWING_STATE_DB, else the user data dir; with --sandbox, a "
             "sandbox.db there") + ")")


def path_text(text: str) -> str:
    """An argparse type: a path (or a database URL), refused when it is blank or holds a
    control character (a line break, a tab, NUL, U+2028...): that is a paste gone wrong, and
    would create a file no one can name. argparse names the option; nothing is created."""
    problem = path_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"the path {problem}; give a plain path")
    return text


def path_problem(text: str) -> str | None:
    """What is wrong with a path given as text, or None. C0 and C1 controls and the Unicode
    line and paragraph separators count; other characters (spaces too) are a file's own."""
    if not text.strip():
        return "is blank"
    for char in text:
        code = ord(char)
        if code < 32 or 127 <= code < 160 or code in (0x2028, 0x2029):
            what = {0: "NUL", 9: "a tab", 10: "a line break", 13: "a line break"}.get(
                code, f"the control character U+{code:04X}")
            return f"holds {what}"
    return None


def state_target(args: argparse.Namespace) -> str | None:
    """The --state-db to open: as given; with --sandbox and none given, the sandbox's own
    database, apart from the real default one (said on stderr); else None, the default."""
    if args.state_db or not args.sandbox:
        return args.state_db
    from ..storage import sandbox_path

    path = str(sandbox_path())
    say(f"sandbox: state in {path}")
    return path


def whole_number(low: int, high: int | None) -> Any:
    """An argparse type: a whole number from `low` to `high` (None: no upper bound), refused
    in one short line."""
    span = f"from {low} to {high}" if high is not None else f"of at least {low}"

    def parse(text: str) -> int:
        digits = text.strip().lstrip("-")
        if not (digits.isdigit() and digits.isascii() and len(digits) <= 12):
            raise argparse.ArgumentTypeError(f"expected a whole number {span}, "
                                             f"got {_short(text)}")
        value = int(text)
        if not (low <= value and (high is None or value <= high)):
            raise argparse.ArgumentTypeError(f"expected a whole number {span}, got {value}")
        return value
    return parse


def cursor(text: str) -> str:
    """An argparse type: a cursor to resume from (an earlier nextCursor), kept as the text it
    is: turned into a float, 1700000045 would travel as 1700000045.0."""
    value = text.strip()
    try:
        number = float(value) if len(value) <= MAX_DIGITS + 8 else math.inf
    except ValueError:
        number = math.nan
    # A number is held to is_cursor's rule too; cursors are follow times, never negative.
    if not (is_cursor(value) or is_cursor(number)) or number < 0:
        raise argparse.ArgumentTypeError(f"expected an earlier nextCursor (a number from 0, of "
                                         f"at most {MAX_DIGITS} digits), got {_short(text)}")
    return value


def seconds(low: float, high: float) -> Any:
    """An argparse type: a finite number of seconds, more than `low` and at most `high`."""
    def parse(text: str) -> float:
        try:
            value = float(text) if len(text) < 30 else math.nan
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low < value <= high):
            raise argparse.ArgumentTypeError(f"expected seconds, more than {low:g} and at most "
                                             f"{high:g}, got {_short(text)}")
        return value
    return parse


def _short(text: str) -> str:
    return repr(text if len(text) <= 30 else text[:27] + "...")


class ItemWriter:
    """Writes items in one of the output formats as they come (a page at a time), so nothing
    has to be held until the end; `close()` ends the document. The output is the same as
    writing all the items at once."""

    def __init__(self, fmt: str, out: TextIO) -> None:
        self.fmt = fmt
        self.out = out
        self.count = 0
        self._rows: Any = None
        if fmt == "csv":
            import csv

            from ..core.items import STAT_FIELDS, USER_FIELDS

            fields = ["id", *USER_FIELDS, *STAT_FIELDS, "profileUrl"]
            self._rows = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")

    def write(self, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        if self.fmt == "json":
            # Each item as json.dump(items, indent=2) would write it inside the array.
            for n, item in enumerate(items, self.count):
                text = json.dumps(item, indent=2, ensure_ascii=False).replace("\n", "\n  ")
                self.out.write(("[\n  " if not n else ",\n  ") + text)
        elif self.fmt == "jsonl":
            self.out.writelines(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
        else:
            if not self.count:
                self._rows.writeheader()
            self._rows.writerows(items)
        self.count += len(items)

    def close(self, *, complete: bool = True) -> None:
        """End the document. Cut short (`complete` false: an error, an interrupt), what was
        printed is still a whole document, and nothing is printed if no item was: an empty
        array or a bare header would read as "no accounts"."""
        if self.fmt == "json" and (self.count or complete):
            self.out.write("\n]\n" if self.count else "[]\n")
        elif self.fmt == "csv" and complete and not self.count:
            self._rows.writeheader()


def poll_summary(meta: dict[str, Any]) -> str:
    """`@alice: 1 new follow, 1 request, 10 credits` (or `@alice: 1 unfollow, 4 requests, 40
    credits, count 56 short by 1`) and the poll's warnings."""
    if "unfollows" in meta:
        what, found = "learning the list, ", plural(meta["unfollows"], "unfollow")
        extra = {"agreed": f", count {meta['total']} agreed",
                 "higher": f", count {meta['total']} higher (not an unfollow)",
                 "short": f", count {meta['total']} short by "
                          f"{(meta['expectedTotal'] or 0) - (meta['total'] or 0)}",
                 "noTotal": ", no count sent"}.get(meta["check"] or "", "")
        if meta["fullRead"]:
            extra += ", full read done"
        if meta["readingList"]:
            extra += ", reading the list (goes on next poll)"
    else:
        what, found = "baseline taken, ", plural(meta["newFollows"], "new follow")
        extra = (f", catching up ({plural(meta['pendingGaps'], 'gap')})" if meta["catchingUp"]
                 else "")
    line = (f"@{meta['handle']}: {what if meta['baseline'] else ''}{found}, "
            f"{plural(meta['pages'], 'request')}, {meta['creditsUsed']} credits{rate(meta)}"
            f"{extra}")
    return "\n".join([line, *(f"  warning: {one_line(w)}" for w in meta["warnings"])])


def rate(meta: dict[str, Any]) -> str:
    if meta.get("rateLimitRemaining") is None:
        return ""
    return f", rate limit {meta['rateLimitRemaining']}/{meta['rateLimitLimit']} left"
