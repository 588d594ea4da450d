"""Storage: states and the webhook outbox, in SQLite or PostgreSQL.

It knows nothing of operations or surfaces: a state is a JSON row and opaque binary parts
under a key, events are JSON payloads under an id, leases and claims are rows naming a worker.
`database.Database` runs every operation, each backend speaking its own dialect (`sql.py`).
"""

from __future__ import annotations

from ..core.config import STATE_DB_ENV
from ..core.errors import DatabaseUnavailable, StateConflict
from .database import Database
from .location import default_path, open_database, sandbox_path
from .outbox import Outbox, event_row
from .records import (
    Backlog,
    Claim,
    EventClaim,
    Lease,
    OutboxEvent,
    PollRow,
    Saved,
    Snapshot,
    compact_json,
    new_owner,
)

__all__ = ["STATE_DB_ENV", "Backlog", "Claim", "Database", "DatabaseUnavailable",
           "EventClaim", "Lease", "Outbox", "OutboxEvent", "PollRow", "Saved", "Snapshot",
           "StateConflict", "compact_json", "default_path", "event_row", "new_owner",
           "open_database", "sandbox_path"]
