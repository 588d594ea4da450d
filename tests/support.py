"""What many test files share: the test key, the item fields the contract promises, one
`invoke` request builder, and one way to run the CLI, `invoke` or a Python snippet in a
subprocess (as a runner would) or the CLI in this process (for tests that run it many times).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "test-key-0123456789"
#: The emitted item, in order: written out here as the spec, not taken from the code.
ITEM_FIELDS = [
    "id", "uniqueId", "nickname", "avatarThumb", "signature", "verified", "secUid",
    "privateAccount", "followerCount", "followingCount", "heartCount", "videoCount",
    "diggCount", "profileUrl",
]
ACTION = "get_tiktok_user_following"
TRIGGER = "new_account_followed"
#: The command line, as a child process runs it.
CLI = (sys.executable, "-m", "connector.cli")


def request(operation: str = ACTION, inputs: Mapping[str, Any] | None = None,
            credentials: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """An `invoke` request; fields left out are left out of the JSON too."""
    out: dict[str, Any] = {"operation": operation}
    if inputs is not None:
        out["inputs"] = dict(inputs)
    if credentials is not None:
        out["credentials"] = dict(credentials)
    out.update(extra)
    return out


@dataclass
class Run:
    """A finished run: exit code, stdout, stderr, and stdout as JSON when it is."""

    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def error(self) -> dict[str, Any]:
        return self.json["error"]

    @property
    def output(self) -> str:
        """Everything the run printed, on both channels."""
        return self.stdout + self.stderr


def child_env(key: str | None = API_KEY, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: this one without DUMPLINGAI_* and TIKTOK_FOLLOWING_*
    (a developer's own settings must not leak into a test), the test key in
    DUMPLINGAI_API_KEY unless `key` is None, and `env` on top."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("DUMPLINGAI_", "TIKTOK_FOLLOWING_"))}
    if key is not None:
        full["DUMPLINGAI_API_KEY"] = key
    full.update(env or {})
    return full


def run(argv: Sequence[str], *, stdin: str | bytes | None = None,
        env: Mapping[str, str] | None = None, key: str | None = API_KEY,
        cwd: str | os.PathLike[str] = ROOT, timeout: float = 60) -> Run:
    """Run `argv` to the end in the environment of `child_env(key, env)`."""
    binary = isinstance(stdin, bytes)
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=not binary,
                          env=child_env(key, env), timeout=timeout, cwd=cwd)
    out, err = proc.stdout, proc.stderr
    if binary:
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    return Run(proc.returncode, out, err)


def run_cli(*args: str, stdin: str | bytes | None = None, env: Mapping[str, str] | None = None,
            key: str | None = API_KEY, timeout: float = 60) -> Run:
    """`tiktok-following ARGS` in a fresh interpreter (`python -m connector.cli`), with the
    test key in DUMPLINGAI_API_KEY unless `key` is None, and `env` on top."""
    return run([*CLI, *args], stdin=stdin, env=env, key=key, timeout=timeout)


def run_invoke(req: Any, *, key: str | None = None, **kwargs: Any) -> Run:
    """`tiktok-following invoke` with `req` (a dict is sent as JSON, text or bytes as they are).
    As a runner starts it: no DUMPLINGAI_* in the environment unless `key` or `env` says so."""
    stdin = req if isinstance(req, (str, bytes)) else json.dumps(req)
    return run_cli("invoke", stdin=stdin, key=key, **kwargs)


def run_python(code: str, *, flags: Sequence[str] = (), env: Mapping[str, str] | None = None,
               key: str | None = None, cwd: str | os.PathLike[str] = ROOT,
               timeout: float = 60) -> Run:
    """`python FLAGS -c CODE` in a fresh interpreter."""
    return run([sys.executable, *flags, "-c", code], env=env, key=key, cwd=cwd,
               timeout=timeout)


def start_cli(*args: str, env: Mapping[str, str] | None = None, key: str | None = API_KEY
              ) -> subprocess.Popen[str]:
    """`tiktok-following ARGS` started and left running (stdout and stderr piped as text), for
    tests that signal or kill it."""
    return start([*CLI, *args], env=env, key=key)


def start(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
          key: str | None = API_KEY) -> subprocess.Popen[str]:
    """`argv` started and left running, in the environment of `child_env(key, env)`."""
    return subprocess.Popen(list(argv), cwd=ROOT, env=child_env(key, env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run_main(*args: str, stdin: str | bytes = b"", env: Mapping[str, str] | None = None,
             key: str | None = API_KEY) -> Run:
    """`tiktok-following ARGS` in this process (`connector.cli.main`), in the environment of
    `child_env(key, env)`: stdin given, stdout and stderr captured, and the environment and the
    logging set-up `-v` changes put back afterwards. Much cheaper than a subprocess, for tests
    that run the CLI many times or patch what it calls. Not thread-safe (it swaps sys.stdout)."""
    from connector.cli import main

    raw = stdin.encode() if isinstance(stdin, str) else stdin
    out, err = io.StringIO(), io.StringIO()
    with _logging_restored(), _environ(child_env(key, env)), contextlib.ExitStack() as stack:
        stack.enter_context(_swapped("stdin", io.TextIOWrapper(io.BytesIO(raw),
                                                               encoding="utf-8")))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse: usage errors and --help
            code = exit_.code if isinstance(exit_.code, int) else 2
    return Run(code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _swapped(name: str, value: Any) -> Iterator[None]:
    old = getattr(sys, name)
    setattr(sys, name, value)
    try:
        yield
    finally:
        setattr(sys, name, old)


@contextlib.contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """`-v` replaces the root logger's handlers (pytest's capture among them) and sets levels:
    put all of it back."""
    loggers = [logging.getLogger(), logging.getLogger("connector"), logging.getLogger("urllib3")]
    saved = [(lg, lg.level, list(lg.handlers)) for lg in loggers]
    try:
        yield
    finally:
        for lg, level, handlers in saved:
            lg.setLevel(level)
            lg.handlers[:] = handlers


def raw_sql(target: str, sql: str, args: tuple = ()) -> list[tuple]:
    """Run SQL straight on a state database, behind the connector's back (to damage it, or to
    look at what it wrote): a SQLite path, or a postgresql:// URL (tables in its schema)."""
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("SET search_path TO tiktok_following")
            cur = conn.execute(sql.replace("?", "%s"), args)
            return cur.fetchall() if cur.description else []
    import sqlite3

    conn = sqlite3.connect(target, isolation_level=None)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def load_state(database: Any, key: str) -> dict[str, Any] | None:
    """The trigger state stored under `key`, made whole again as a poll reads it."""
    from connector.operations.registry import module

    stored = database.read_state(key)
    if stored.row is None:
        return None
    return module(key.split(":")[0]).State.from_stored(stored.row, stored.parts).to_json()


#: Where a cassette test's requests go on replay: nowhere (vcrpy does not match the host).
REPLAY_URL = "http://127.0.0.1:9"


def replaying(request: Any) -> bool:
    """Whether this is a cassette test whose cassette is replayed, never recorded."""
    return (request.node.get_closest_marker("vcr") is not None
            and request.config.getoption("record_mode") == "none")
