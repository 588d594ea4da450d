"""The outbox as people handle it: list parked events, put them back in the queue, or drop them.

    box = Outbox("watch.db")
    for event in box.list():             # parked events (include_pending=True: all of them)
        print(event.event_id, event.last_error)
    box.retry()                          # every parked event goes back in the queue
    box.discard(["<event id>"])          # gone for good: the only way an event is dropped
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from ..core.store import OutboxEvent
from ..store_api import Store


class Outbox:
    """Parked and pending webhook events of a state database."""

    def __init__(self, store: Store | str | os.PathLike[str] | None = None) -> None:
        self._own = not isinstance(store, Store)
        self.store = store if isinstance(store, Store) else Store(store)

    def close(self) -> None:
        if self._own:
            self.store.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list(self, *, include_pending: bool = False) -> list[OutboxEvent]:
        """Parked events, oldest first; with `include_pending`, the queued ones too."""
        return self.store.db.events(parked=None if include_pending else True)

    def retry(self, event_ids: Iterable[str] | None = None) -> int:
        """Put parked events (all when `event_ids` is None) back in the queue with their attempts
        reset; the next delivery pass sends them. Returns how many were parked."""
        return self.store.db.unpark(None if event_ids is None else list(event_ids))

    def discard(self, event_ids: Iterable[str] | None = None) -> int:
        """Delete parked events (all when `event_ids` is None). Pending events cannot be
        discarded: they may be mid-delivery. Returns how many were deleted."""
        return self.store.db.discard(None if event_ids is None else list(event_ids))

    def counts(self) -> dict[str, int]:
        return self.store.db.counts()


def event_row(event: OutboxEvent) -> dict[str, Any]:
    """An outbox event as plain JSON, for `outbox list --format jsonl`."""
    return {
        "eventId": event.event_id,
        "handle": event.handle,
        "status": "parked" if event.parked else "pending",
        "attempts": event.attempts,
        "nextAttemptAt": None if event.parked else _iso(event.next_attempt_at),
        "lastError": event.last_error,
        "event": event.payload,
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")
