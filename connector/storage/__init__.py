"""Storage: trigger states and the webhook outbox, in SQLite or PostgreSQL.

It knows nothing of operations or surfaces: states are JSON objects under a key, events are
JSON payloads under an id.
"""

from __future__ import annotations

from .database import STATE_DB_ENV, Database, default_path, open_database
from .outbox import Backlog, Outbox, OutboxEvent, event_row, new_event

__all__ = ["STATE_DB_ENV", "Backlog", "Database", "Outbox", "OutboxEvent", "default_path",
           "event_row", "new_event", "open_database"]
