"""What the connector keeps between runs, whatever database keeps it: trigger states by key,
the outbox, and a lock per key so two polls of one handle take turns.

`open_database()` picks the implementation: a file path is SQLite (the embedded default), a
`postgresql://` URL is PostgreSQL (shared by many `watch` workers).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from .outbox import Backlog, OutboxEvent

STATE_DB_ENV = "TIKTOK_FOLLOWING_STATE_DB"
#: How an event is written by `save`: (event id, handle, payload).
NewEvent = tuple[str, str, dict[str, Any]]


def default_path() -> Path:
    """DB path: $TIKTOK_FOLLOWING_STATE_DB, else the user data dir from platformdirs."""
    env = os.environ.get(STATE_DB_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("tiktok-following", appauthor=False)) / "state.db"


class Database(ABC):
    """One state database. Safe to share between threads."""

    #: Where it is, as it may be shown (a path, or a URL without its password).
    location: str

    def close(self) -> None:  # noqa: B027 -- an implementation may hold nothing to close
        """Release connections."""

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Trigger states

    @abstractmethod
    def load_state(self, key: str) -> dict[str, Any] | None:
        """The stored state for `key`, or None."""

    @abstractmethod
    def save(self, key: str, state: dict[str, Any], events: Iterable[NewEvent] = ()) -> int:
        """Commit `state` and new outbox events together; returns how many events were new
        (an event id already queued is not queued twice)."""

    @abstractmethod
    def lock(self, key: str, timeout: float) -> AbstractContextManager[None]:
        """Hold `key` against other polls (other threads, processes or machines) for the
        duration; raises ConnectorError after `timeout` seconds of waiting."""

    # Outbox

    @abstractmethod
    def due(self, now: float, *, handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        """Pending events due by `now`, oldest first (only those of `handles`, when given)."""

    @abstractmethod
    def events(self, *, parked: bool | None = None,
               handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        """Events, oldest first: parked ones, pending ones (parked=False) or all (None)."""

    @abstractmethod
    def delivered(self, event_id: str) -> None:
        """The receiver took the event: it leaves the outbox."""

    @abstractmethod
    def failed(self, event_id: str, error: str, *, retry_at: float, park: bool) -> None:
        """A delivery failed: count it, and try again at `retry_at` (or park the event)."""

    @abstractmethod
    def requeue(self, event_ids: list[str] | None = None, *,
                include_pending: bool = False) -> int:
        """Parked events (all, or these) back in the queue and due now, attempts reset; with
        `include_pending`, pending events due now too. Returns how many changed."""

    @abstractmethod
    def discard(self, event_ids: list[str] | None = None) -> int:
        """Delete parked events (all, or these); pending ones are never discarded."""

    @abstractmethod
    def backlog(self, handles: Iterable[str] | None = None) -> Backlog:
        """Pending and parked counts, and when the next pending event is due."""


def open_database(target: str | os.PathLike[str] | Database | None = None) -> Database:
    """The database at `target`: a path (SQLite), a postgresql:// URL, an open Database (kept
    as it is), or None for $TIKTOK_FOLLOWING_STATE_DB or the user data dir."""
    if isinstance(target, Database):
        return target
    if target is None:
        target = os.environ.get(STATE_DB_ENV) or default_path()
    from .sqlite import SQLiteDatabase

    return SQLiteDatabase(target)
