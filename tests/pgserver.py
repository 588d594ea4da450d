"""A throwaway PostgreSQL server for the tests and the benchmarks.

Debian's packages put the server in /usr/lib/postgresql/<version>/bin, not on PATH. It refuses
to run as root, so under root it runs as the `postgres` user (`runuser`), in a temporary
directory, on a free loopback port, with no Unix socket outside that directory, and is torn
down afterwards. Set TIKTOK_FOLLOWING_TEST_PG to a postgresql:// URL to use a server of your
own instead (the tests then create and drop databases in it).

    with TempPostgres() as server:
        url = server.new_database()      # a fresh, empty database
        server.stop_server()             # down (every session cut), then up on the same port
        server.start_server()
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

URL_ENV = "TIKTOK_FOLLOWING_TEST_PG"
PREFERRED = "15"


def find_bin() -> Path | None:
    """The folder of initdb and pg_ctl: PostgreSQL 15 if present, else the newest there is."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: (Path(p).parent.parent.name != PREFERRED,
                                  -int(Path(p).parent.parent.name.split(".")[0] or 0)))
    if found:
        return Path(found[0]).parent
    which = shutil.which("pg_ctl")
    return Path(which).parent if which else None


def unavailable() -> str | None:
    """Why no PostgreSQL can be used here, or None when one can."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install '.[test]' installs it)"
    if os.environ.get(URL_ENV):
        return None
    if find_bin() is None:
        return ("no PostgreSQL server binaries (looked in /usr/lib/postgresql/*/bin and PATH; "
                "Debian: apt-get install postgresql)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root and there is no runuser to start the server as `postgres`"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempPostgres:
    """A PostgreSQL server of its own (or the one at $TIKTOK_FOLLOWING_TEST_PG).

    `durable=False` (the tests) turns off fsync: nothing here must survive a power cut, and
    the suite runs faster. The benchmarks keep PostgreSQL's defaults."""

    def __init__(self, *, durable: bool = False, max_connections: int = 300) -> None:
        self.durable = durable
        self.max_connections = max_connections
        self.url = os.environ.get(URL_ENV, "")
        self.own = not self.url
        self._tmp: Path | None = None
        self._made: list[str] = []
        self._options = ""

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        command = list(argv)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True,
                              cwd="/")

    def start(self) -> TempPostgres:
        if not self.own:
            return self
        bin_dir = find_bin()
        assert bin_dir is not None, unavailable()
        self._tmp = Path(tempfile.mkdtemp(prefix="tkf-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self._tmp, user.pw_uid, user.pw_gid)
        data = self._tmp / "data"
        port = free_port()
        self._run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions")
        options = [f"-c listen_addresses=127.0.0.1 -c port={port}",
                   f"-c unix_socket_directories={self._tmp}",
                   f"-c max_connections={self.max_connections}"]
        if not self.durable:
            options.append("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._options = " ".join(options)
        self.start_server()
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        return self

    @property
    def restartable(self) -> bool:
        """Whether this server is ours to stop and start (not one at $TIKTOK_FOLLOWING_TEST_PG)."""
        return self.own and self._tmp is not None

    def start_server(self) -> None:
        """Start the server (again), on the same port and with the same data."""
        assert self._tmp is not None
        bin_dir = find_bin()
        assert bin_dir is not None
        try:
            # -l: the server's output to a file, not to pipes that would keep this waiting.
            self._run(str(bin_dir / "pg_ctl"), "-D", str(self._tmp / "data"), "-l",
                      str(self._tmp / "log"), "-o", self._options, "-w", "-t", "60", "start")
        except subprocess.CalledProcessError as exc:
            log = (self._tmp / "log").read_text(errors="replace")[-2000:] \
                if (self._tmp / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr.strip()} {log}") from None

    def stop_server(self) -> None:
        """Stop the server as an administrator's restart does (`-m fast`): every session is
        told so and cut, transactions in flight are rolled back."""
        assert self._tmp is not None
        bin_dir = find_bin()
        assert bin_dir is not None
        self._run(str(bin_dir / "pg_ctl"), "-D", str(self._tmp / "data"), "-m", "fast", "-w",
                  "stop")

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server, wait `down_for` seconds, start it again on the same port."""
        self.stop_server()
        time.sleep(down_for)
        self.start_server()

    def new_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        import psycopg

        name = f"tkf_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        self._made.append(name)
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def drop_database(self, url: str) -> None:
        import psycopg

        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if name in self._made:
            self._made.remove(name)

    def stop(self) -> None:
        if not self.own:
            for name in list(self._made):
                self.drop_database(f"{self.url.rsplit('/', 1)[0]}/{name}")
            return
        if self._tmp is None:
            return
        bin_dir = find_bin()
        try:
            if bin_dir is not None and (self._tmp / "data" / "postmaster.pid").exists():
                self._run(str(bin_dir / "pg_ctl"), "-D", str(self._tmp / "data"), "-m",
                          "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
