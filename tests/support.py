"""What many test files share: the test key, the item fields the contract promises, and one
way to run the CLI or `invoke` in a subprocess, as a runner would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
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
    """A finished subprocess: exit code, stdout, stderr, and stdout as JSON when it is."""

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


def run_cli(*args: str, stdin: str | bytes | None = None, env: Mapping[str, str] | None = None,
            key: str | None = API_KEY, timeout: float = 60) -> Run:
    """`tiktok-following ARGS` in a fresh interpreter (`python -m connector.cli`), with the
    test key in DUMPLINGAI_API_KEY unless `key` is None, and `env` on top."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DUMPLINGAI_",
                                                                        "TIKTOK_FOLLOWING_"))}
    if key is not None:
        full["DUMPLINGAI_API_KEY"] = key
    full.update(env or {})
    binary = isinstance(stdin, bytes)
    proc = subprocess.run([sys.executable, "-m", "connector.cli", *args], input=stdin,
                          capture_output=True, text=not binary, env=full, timeout=timeout,
                          cwd=ROOT)
    out, err = proc.stdout, proc.stderr
    if binary:
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    return Run(proc.returncode, out, err)


def run_invoke(req: Any, **kwargs: Any) -> Run:
    """`tiktok-following invoke` with `req` (a dict is sent as JSON, text or bytes as they are)."""
    stdin = req if isinstance(req, (str, bytes)) else json.dumps(req)
    return run_cli("invoke", stdin=stdin, **kwargs)


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
