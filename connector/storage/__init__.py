"""Storage: trigger states and the webhook outbox, in SQLite or PostgreSQL.

It knows nothing of operations or surfaces: states are JSON objects under a key, events are
JSON payloads under an id, leases and claims are rows naming a worker.
"""

from __future__ import annotations

from .database import (
    STATE_DB_ENV,
    Claim,
    Database,
    DatabaseUnavailable,
    EventClaim,
    Lease,
    Saved,
    Snapshot,
    StateConflict,
    default_path,
    new_owner,
    open_database,
)
from .outbox import Backlog, Outbox, OutboxEvent, event_row

__all__ = ["STATE_DB_ENV", "Backlog", "Claim", "Database", "DatabaseUnavailable", "EventClaim",
           "Lease", "Outbox", "OutboxEvent", "Saved", "Snapshot", "StateConflict", "default_path",
           "event_row", "new_owner", "open_database"]
