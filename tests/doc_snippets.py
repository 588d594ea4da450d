"""Docs that run: every runnable snippet of README.md and docs/*.md is a test (Sybil), whose id
names its file and line (`docs/watch.md::line:48,column:1`), so a stale doc fails and says
which. The root conftest.py hands `pytest_collect_file` to pytest; `testpaths` names the docs.

Each document runs in a world of its own, set up before its first snippet:
- a temporary folder as the working directory, and as HOME (so the default state database and
  `~/...` paths land there), with `~/tiktok-following/` as the set-up steps of docs/watch.md
  leave it (its `venv` is this test environment, `watch.env` points at the stand-in);
- the stand-in with its demo accounts and the handles the docs use (stoolpresidente, alice,
  bob, ...), taking the docs' placeholder keys (`sk_...`, `...`) as valid keys, named by
  DUMPLINGAI_API_KEY and DUMPLINGAI_BASE_URL;
- `tiktok-following` on PATH from this environment.

What runs, by the block's language:
- `python`: in the document's namespace, in this process (Sybil's own parser);
- `sh`: in bash (`set -eo pipefail`), every block of a document in one session, as in one
  terminal: what a block exports, and its working directory, carry to the next. Jobs it
  leaves in the background are stopped when the block ends. A block that runs until stopped
  has a directive before it (`<!-- shell: ... -->`, below);
- `console`: each `$ command` run as in `sh`, its output (stdout and stderr) compared with the
  lines under it (doctest's ELLIPSIS: `...` matches anything);
- `ini` (a systemd unit): `systemd-analyze verify`, with this environment where the unit names
  /opt/tiktok-following;
- `cron`: the line's command, as cron runs it: /bin/sh, PATH=/usr/bin:/bin, HOME only.

What cannot run here (Docker, n8n, a real key, a remote hook, installing packages) carries
Sybil's `<!-- skip: next "why" -->` in the markdown, the reason written next to the block.
The directive for long-running blocks:
- `<!-- shell: background [port N] -->`: the next block is started and left running until the
  document ends; with `port N`, it must be listening on 127.0.0.1:N within the time bound;
- `<!-- shell: stop after "REGEX" -->`: the next block runs until its output matches REGEX,
  then gets SIGINT (Ctrl-C, as the doc says) and must exit by itself, with 0 or 130.
"""

from __future__ import annotations

import contextlib
import doctest
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from sybil import Example, Region, Sybil
from sybil.parsers.abstract.lexers import LexerCollection
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.markdown.codeblock import CodeBlockParser
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer

from connector.standin import StandIn

ROOT = Path(__file__).resolve().parent.parent
#: This environment's scripts: `tiktok-following`, `python`.
BIN = Path(sys.executable).parent
#: Where the docs install the connector for systemd (docs/watch.md).
OPT = "/opt/tiktok-following"
#: The keys the docs write where a real one goes: the stand-in takes them.
PLACEHOLDER_KEYS = ("sk_...", "...")
#: The handles the docs use, and how many accounts each follows.
ACCOUNTS = {"stoolpresidente": 320, "alice": 40, "bob": 1, "carol": 5, "someone": 3,
            "another_handle": 2}
#: The longest a block may take: a bound, not a measure (a hang must fail, not wait forever).
BLOCK_TIMEOUT = 60.0
#: How long a stopped block has to exit after its SIGINT.
STOP_GRACE = 15.0


# ---------------------------------------------------------------- the world of a document


@dataclass
class Session:
    """One document's terminal: its environment and folder, carried from block to block, and
    what it left running."""

    env: dict[str, str]
    cwd: Path
    home: Path
    standin: StandIn
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: The directive for the next `sh` block, if any.
    mode: tuple[str, dict[str, Any]] | None = None


def setup(namespace: dict[str, Any]) -> None:
    saved = {"environ": dict(os.environ), "cwd": os.getcwd()}
    folder = Path(tempfile.mkdtemp(prefix="docs-"))
    home = folder / "home"
    work = folder / "work"
    for path in (home / ".config", work):
        path.mkdir(parents=True)
    standin = StandIn(demo=True, demo_epoch=time.time() // 3600 * 3600,
                      api_keys=("sandbox-key", *PLACEHOLDER_KEYS)).start()
    for handle, count in ACCOUNTS.items():
        standin.add_account(handle, count)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DUMPLINGAI_", "TIKTOK_FOLLOWING_", "XDG_", "PG"))}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
               DUMPLINGAI_API_KEY=standin.api_key, DUMPLINGAI_BASE_URL=standin.url,
               WATCH_TOKEN="a-long-random-token", PYTHONDONTWRITEBYTECODE="1")
    _as_set_up(home, standin)
    # Python snippets run in this process: the same world, put back by teardown.
    os.environ.clear()
    os.environ.update(env)
    os.chdir(work)
    namespace.update(_saved=saved, _folder=folder, _session=Session(env, work, home, standin),
                     has=lambda module: find_spec(module) is not None, shutil=shutil)


def teardown(namespace: dict[str, Any]) -> None:
    session: Session = namespace["_session"]
    for proc in session.background:
        _stop(proc, signal.SIGTERM)
    session.standin.stop()
    saved = namespace["_saved"]
    os.chdir(saved["cwd"])
    os.environ.clear()
    os.environ.update(saved["environ"])
    shutil.rmtree(namespace["_folder"], ignore_errors=True)


def _as_set_up(home: Path, standin: StandIn) -> None:
    """`~/tiktok-following/` as the cron set-up steps of docs/watch.md leave it, with this test
    environment as its venv and the stand-in as the API (a webhook on loopback: the first
    cycle only baselines, so nothing is POSTed)."""
    folder = home / "tiktok-following"
    folder.mkdir(mode=0o700)
    (folder / "venv").symlink_to(BIN.parent)
    (folder / "watch.env").write_text(
        f"DUMPLINGAI_API_KEY={standin.api_key}\nDUMPLINGAI_BASE_URL={standin.url}\n"
        "TIKTOK_FOLLOWING_WEBHOOK=http://127.0.0.1:9/hook\n")
    (folder / "handles.txt").write_text("alice\nbob\n")


# ---------------------------------------------------------------- sh and console


def _start(session: Session, script: str, log: Path) -> subprocess.Popen[bytes]:
    """`script` in bash, in a process group of its own (so whatever it leaves in the background
    is stopped with it), its output in `log` (a pipe would wait for those jobs too), and its
    environment and folder written at its end for the next block."""
    state = log.with_suffix(".state")
    wrapper = (f"set -eo pipefail\n{script}\n"
               f'env -0 > {shlex.quote(str(state))}.env; pwd > {shlex.quote(str(state))}.cwd\n')
    with open(log, "wb") as out:
        return subprocess.Popen(["bash", "--noprofile", "--norc", "-c", wrapper],
                                cwd=session.cwd, env=session.env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def _carry(session: Session, log: Path) -> None:
    """What the block exported, and where it `cd`-ed, for the next one."""
    state = log.with_suffix(".state")
    env_file, cwd_file = Path(f"{state}.env"), Path(f"{state}.cwd")
    if env_file.exists():
        pairs = [item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item]
        session.env = {k: v for k, v in pairs if k not in ("SHLVL", "_", "OLDPWD")}
    if cwd_file.exists():
        session.cwd = Path(cwd_file.read_text().strip())


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _log(session: Session) -> Path:
    handle, name = tempfile.mkstemp(suffix=".log", dir=session.home.parent)
    os.close(handle)
    return Path(name)


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def run_shell(session: Session, script: str) -> tuple[int, str]:
    """Run `script` to its end (bounded): its exit status and output. Background jobs it left
    are stopped."""
    log = _log(session)
    proc = _start(session, script, log)
    try:
        code = proc.wait(BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        _stop(proc, signal.SIGKILL)
        raise AssertionError(f"still running after {BLOCK_TIMEOUT:g} s (a block that runs until "
                             f"stopped needs a <!-- shell: ... --> directive):\n{_tail(log)}"
                             ) from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # what it left in the background
    _carry(session, log)
    return code, log.read_text(errors="replace")


def evaluate_sh(example: Example) -> str | None:
    session: Session = example.namespace["_session"]
    script = str(example.parsed)
    mode, session.mode = session.mode, None
    if mode is None:
        code, output = run_shell(session, script)
        return None if code == 0 else f"exit status {code}:\n{output}"
    kind, options = mode
    log = _log(session)
    proc = _start(session, script, log)
    if kind == "background":
        session.background.append(proc)
        if options.get("port"):
            return _wait_for_port(proc, options["port"], log)
        return None
    # stop after REGEX: until the output says it, then Ctrl-C.
    pattern = re.compile(options["pattern"], re.MULTILINE)
    deadline = time.monotonic() + BLOCK_TIMEOUT
    while not pattern.search(log.read_text(errors="replace")):
        if proc.poll() is not None:
            return f"exited ({proc.returncode}) before printing {pattern.pattern!r}:\n{_tail(log)}"
        if time.monotonic() > deadline:
            _stop(proc, signal.SIGKILL)
            return f"no {pattern.pattern!r} within {BLOCK_TIMEOUT:g} s:\n{_tail(log)}"
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        code = proc.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        _stop(proc, signal.SIGKILL)
        return f"did not stop within {STOP_GRACE:g} s of Ctrl-C:\n{_tail(log)}"
    return None if code in (0, 130) else f"exit status {code} after Ctrl-C:\n{_tail(log)}"


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log: Path) -> str | None:
    deadline = time.monotonic() + BLOCK_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited ({proc.returncode}) instead of listening on {port}:\n{_tail(log)}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return None
        time.sleep(0.1)
    return f"not listening on {port} within {BLOCK_TIMEOUT:g} s:\n{_tail(log)}"


def evaluate_console(example: Example) -> str | None:
    """`$ command` lines, each followed by the output it must print."""
    session: Session = example.namespace["_session"]
    checker = doctest.OutputChecker()
    steps: list[tuple[str, list[str]]] = []
    for line in str(example.parsed).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    problems = []
    for command, expected in steps:
        # A console shows what the command prints whatever its status: only the text counts.
        _, got = run_shell(session, command + " || true")
        want = "\n".join(expected).rstrip() + "\n"
        got = "\n".join(line.rstrip() for line in got.splitlines()) + "\n"
        if not checker.check_output(want, got, doctest.ELLIPSIS):
            problems.append(f"$ {command}\nexpected:\n{want}got:\n{got}")
    return "\n".join(problems) or None


# ---------------------------------------------------------------- systemd and cron


def evaluate_unit(example: Example) -> str | None:
    """A systemd unit, checked by systemd itself, with this environment installed where the
    unit says (/opt/tiktok-following)."""
    session: Session = example.namespace["_session"]
    text = str(example.parsed)
    if not text.lstrip().startswith("[Unit]"):
        return None
    path = session.home.parent / "tiktok-following-watch.service"
    path.write_text(text.replace(OPT, str(BIN.parent)))
    proc = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                          text=True, timeout=BLOCK_TIMEOUT)
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if path.name in line]
    if proc.returncode or said:
        return f"systemd-analyze verify: exit {proc.returncode}\n" + "\n".join(said)
    return None


def evaluate_cron(example: Example) -> str | None:
    """Each crontab line's command, as cron runs it: /bin/sh -c, with cron's PATH and HOME
    only; it must not report a failure in its log."""
    session: Session = example.namespace["_session"]
    for line in str(example.parsed).splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        command = line.split(None, 5)[5]
        env = {"HOME": str(session.home), "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh",
               "LOGNAME": os.environ.get("USER", "root")}
        proc = subprocess.run(["/bin/sh", "-c", command], env=env, cwd=session.home,
                              capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
        log = session.home / "tiktok-following" / "watch.log"
        said = log.read_text() if log.exists() else ""
        if proc.returncode or "exit" in said or "handles polled" not in said:
            return (f"cron command: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
                    f"log:\n{said}")
    return None


# ---------------------------------------------------------------- the shell directive


class ShellDirectiveParser:
    """`<!-- shell: background [port N] -->` and `<!-- shell: stop after "REGEX" -->`: how the
    next `sh` block runs (module docstring)."""

    def __init__(self) -> None:
        self.lexers = LexerCollection([DirectiveInHTMLCommentLexer("shell", arguments=".+?")])

    def __call__(self, document: Any) -> Iterable[Region]:
        for lexed in self.lexers(document):
            arguments = lexed.lexemes["arguments"].strip()
            background = re.fullmatch(r"background(?: port (\d+))?", arguments)
            stop = re.fullmatch(r'stop after "(.+)"', arguments)
            if background:
                mode = ("background", {"port": int(background[1] or 0)})
            elif stop:
                mode = ("stop", {"pattern": stop[1]})
            else:
                raise ValueError(f"unknown shell directive: {arguments!r}")
            yield Region(lexed.start, lexed.end, mode, self.evaluate)

    @staticmethod
    def evaluate(example: Example) -> None:
        example.namespace["_session"].mode = example.parsed


def make_sybil(root: str | Path = ROOT) -> Sybil:
    """The docs' Sybil for the README.md and docs/*.md under `root` (a folder, or a file in
    it: a conftest.py's `__file__`)."""
    folder = Path(root)
    return Sybil(
        parsers=[
            PythonCodeBlockParser(),
            CodeBlockParser("sh", evaluate_sh),
            CodeBlockParser("console", evaluate_console),
            CodeBlockParser("ini", evaluate_unit),
            CodeBlockParser("cron", evaluate_cron),
            ShellDirectiveParser(),
            SkipParser(),
        ],
        patterns=["README.md", "docs/*.md"],
        path=str(folder if folder.is_dir() else folder.parent),
        setup=setup,
        teardown=teardown,
    )


pytest_collect_file = make_sybil().pytest()
