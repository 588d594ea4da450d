"""Polling with the embedded SQLite store, for people without a runner.

    store = connector.open_store()                # or open_store("follows.db")
    with store.poll("@someone") as batch:          # holds the handle's lock
        for item in batch.items:
            handle(item)
        batch.commit()                             # only now is the state advanced

Leaving the block without `commit()` (an exception, a crash) keeps the old state, so the same
follows come back on the next poll: at-least-once, never lost.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from filelock import FileLock, Timeout

from .api import prepare
from .core.config import RetryPolicy, Timeouts, resolve_credentials
from .core.errors import ConnectorError
from .core.http import Client
from .core.store import OutboxEvent, StateStore
from .operations import trigger

__all__ = ["Batch", "OutboxEvent", "Store", "event_id", "open_store"]


def state_key(handle: str) -> str:
    return f"{trigger.KEY}:{handle}"


def event_id(handle: str, item: Mapping[str, Any]) -> str:
    """A stable id for "handle followed this account": the same on every retry."""
    who = item.get("id") or f"s:{item.get('secUid')}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tiktok-following:{handle}:{who}"))


@dataclass
class Batch:
    """One poll's result, holding the handle's lock until it is committed or closed."""

    handle: str
    items: list[dict[str, Any]]
    meta: dict[str, Any]
    state: dict[str, Any] | None
    _store: StateStore = field(repr=False)
    _lock: FileLock | None = field(repr=False, default=None)
    committed: bool = False

    def commit(self, *, outbox: bool = False) -> int:
        """Save the new state (and, with outbox=True, the items as outbox events, in the same
        transaction). Call it after the items were handled. Returns events queued."""
        if self.committed:
            return 0
        events = []
        if outbox:
            detected = datetime.now(timezone.utc).isoformat(timespec="seconds")
            for item in self.items:
                eid = event_id(self.handle, item)
                payload = {"eventId": eid, "handle": self.handle, "detectedAt": detected,
                           "item": item}
                events.append((eid, self.handle, payload))
        added = 0
        if self.state is not None:
            added = self._store.save(state_key(self.handle), self.state, events)
        self.committed = True
        self.close()
        return added

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Store:
    """The embedded state database, with the trigger as a method."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.db = StateStore(path)

    @property
    def path(self) -> Any:
        return self.db.path

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def state(self, handle: str) -> dict[str, Any] | None:
        values, _ = prepare(trigger.KEY, {"handle": handle})
        return self.db.load(state_key(values["handle"]))

    def poll(
        self,
        handle: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | None = None,
        platform: str | None = None,
        client: Client | None = None,
        lock_timeout: float = 300.0,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
    ) -> Batch:
        """Poll `handle` once with the stored state; commit the returned Batch to advance it."""
        values, source = prepare(trigger.KEY, {**(inputs or {}), "handle": handle},
                                 platform=platform)
        name = values["handle"]
        own_client = None
        if client is None:
            own_client = client = Client(resolve_credentials(credentials), retry=retry,
                                         timeouts=timeouts)
        path = self.db.lock_path(state_key(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path))
        try:
            lock.acquire(timeout=lock_timeout)
        except Timeout as exc:
            raise ConnectorError(f"another poll of @{name} holds {path} for over "
                                 f"{lock_timeout:.0f}s; try again when it is done") from exc
        try:
            # Read state only once the lock is held: it may just have been advanced.
            state = self.db.load(state_key(name))
            result = trigger.run(client, values, source=source, state=state)
        except BaseException:
            lock.release()
            raise
        finally:
            if own_client is not None:
                own_client.close()
        return Batch(name, result.items, result.meta, result.state, self.db, lock)


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """Open (or create) the state database: `path`, $TIKTOK_FOLLOWING_STATE_DB, or the
    platform's data dir."""
    return Store(path)
