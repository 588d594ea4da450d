"""Which database a target names, and opening it: a file path is SQLite (the embedded
default), a `postgresql://` URL is PostgreSQL (shared by many `watch` workers, on one machine
or many), None is $TIKTOK_FOLLOWING_STATE_DB or the user data dir."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..core.config import STATE_DB_ENV
from ..core.errors import ConfigurationError
from .database import Database

#: URL schemes that select PostgreSQL.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def default_path() -> Path:
    """DB path: $TIKTOK_FOLLOWING_STATE_DB, else the user data dir from platformdirs."""
    env = os.environ.get(STATE_DB_ENV)
    if env:
        return Path(env).expanduser()
    return data_dir() / "state.db"


def data_dir() -> Path:
    """The user data dir (platformdirs): the default location, whose folders are made."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("tiktok-following", appauthor=False))


def sandbox_path() -> Path:
    """The state of runs against the sandbox: apart from the real default database."""
    return data_dir() / "sandbox.db"


def open_database(target: str | os.PathLike[str] | Database | None = None, *,
                  create: bool = True) -> Database:
    """The database at `target`: a path (SQLite), a postgresql:// URL, an open Database (kept
    as it is), or None for $TIKTOK_FOLLOWING_STATE_DB or the user data dir.

    State is never created by mistake: a SQLite file's folder must exist (only the default
    location's folders are made), another kind of URL (sqlite://, file://) is refused by name,
    and with `create` false (what only reads or changes what is stored: the outbox) the file
    must exist too."""
    if isinstance(target, Database):
        return target
    option = "--state-db"
    if target is None:
        option = STATE_DB_ENV if os.environ.get(STATE_DB_ENV) else option
        target = os.environ.get(STATE_DB_ENV) or default_path()
    if isinstance(target, str) and target.strip().lower().startswith(POSTGRES_SCHEMES):
        # Imported only for a postgresql:// target: it needs the postgres extra (psycopg).
        from .postgres import PostgresDatabase

        return PostgresDatabase(str(target).strip())
    check_sqlite_path(target, option=option, create=create)
    from .sqlite import SQLiteDatabase

    return SQLiteDatabase(target)


def check_sqlite_path(target: str | os.PathLike[str], *, option: str = "--state-db",
                      create: bool = True) -> None:
    """Refuse, naming `option`, a SQLite target that would create state by mistake."""
    text = os.fspath(target)
    scheme = re.match(r"\s*([A-Za-z][A-Za-z0-9+.-]*):(//)?", text)
    if scheme and (scheme.group(2) or scheme.group(1).lower() in ("sqlite", "file")):
        name = scheme.group(1).lower()
        rest = text.strip()[scheme.end():]
        path = rest[1:] if name == "sqlite" and rest.startswith("/") else rest
        if name in ("sqlite", "file"):
            raise ConfigurationError(f"{option} takes a SQLite file's path, not a {name}: "
                                     f"URL; give the path itself: {path or '...'}",
                                     field="stateDb")
        raise ConfigurationError(f"{option} takes a SQLite file's path or a postgresql:// "
                                 f"URL; {name}:// is not supported", field="stateDb")
    path = Path(text).expanduser()
    folder = path.parent
    if not folder.is_dir() and folder.resolve() != data_dir().resolve():
        raise ConfigurationError(f"{option}: the folder {folder} does not exist; create it "
                                 f"first or give another path (only the default location's "
                                 f"folders are made)", field="stateDb")
    if not create and not path.exists():
        raise ConfigurationError(f"{option}: there is no state database at {path} (nothing "
                                 f"was ever stored there); check the path", field="stateDb")
