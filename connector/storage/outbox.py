"""The outbox: events waiting to be POSTed to a webhook, whatever database holds them.

An event (its id and payload made by operations/events.py) is created in the same transaction
that advances the trigger state (so a crash repeats an event, never loses one), leaves the
outbox only after a 2xx, and after `max_attempts` failures is parked (kept) until someone
retries or discards it.

    box = Outbox("watch.db")             # a path, a postgresql:// URL or an open Database
    for event in box.list():             # parked events (include_pending=True: all of them)
        print(event.event_id, event.last_error)
    box.retry()                          # every parked event goes back in the queue
    box.retry(include_pending=True)      # ... and every pending one is due now
    box.discard(["<event id>"])          # gone for good: the only way an event is dropped
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any

from .database import Database
from .location import open_database
from .records import OutboxEvent


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def event_row(event: OutboxEvent) -> dict[str, Any]:
    """An outbox event as plain JSON, for `outbox list --format jsonl`."""
    return {
        "eventId": event.event_id,
        "handle": event.handle,
        "status": "parked" if event.parked else "pending",
        "attempts": event.attempts,
        "nextAttemptAt": None if event.parked else iso(event.next_attempt_at),
        "lastError": event.last_error,
        "event": event.payload,
    }


class Outbox(AbstractContextManager["Outbox"]):
    """Parked and pending webhook events of a database: the Python side of `outbox`."""

    def __init__(self, database: Database | str | os.PathLike[str] | None = None, *,
                 create: bool = False) -> None:
        """`database` as `open_database` takes it; a file that does not exist is an error
        (`create` false): an empty new one would say "0 parked" of events kept elsewhere."""
        self._owns = not isinstance(database, Database)
        self.database = open_database(database, create=create)

    def close(self) -> None:
        if self._owns:
            self.database.close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list(self, *, include_pending: bool = False) -> list[OutboxEvent]:
        """Parked events, oldest first; with `include_pending`, the queued ones too."""
        return self.database.events(parked=None if include_pending else True)

    def retry(self, event_ids: Iterable[str] | None = None, *,
              include_pending: bool = False) -> int:
        """Put parked events (all when `event_ids` is None) back in the queue, due now, with
        their attempts reset; with `include_pending`, pending events are made due now too (for
        when the receiver is fixed). Returns how many events were changed."""
        return self.database.requeue(event_ids, include_pending=include_pending)

    def discard(self, event_ids: Iterable[str] | None = None) -> int:
        """Delete parked events (all when `event_ids` is None). Pending events cannot be
        discarded: they may be mid-delivery. Returns how many were deleted."""
        return self.database.discard(event_ids)

    def counts(self) -> dict[str, int]:
        backlog = self.database.backlog()
        return {"pending": backlog.pending, "parked": backlog.parked}
