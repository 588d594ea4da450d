"""What storage takes and gives back: plain records, the same whatever database holds them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: JSON text as the database keeps it: compact. One encoder for every call (json.dumps given
#: separators makes a new one each time).
compact_json = json.JSONEncoder(separators=(",", ":")).encode

#: How an event is written by `save`: (event id, handle, payload).
NewEvent = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True)
class Snapshot:
    """A stored state as `read_state` found it: its JSON row (None: nothing stored), its parts
    newest first, and the version it was read at (0: nothing stored yet).

    Each part comes back as it is stored: bytes, or, for rows written as text by releases
    before this one, str; telling them apart is the caller's (who wrote them)."""

    row: dict[str, Any] | None
    parts: list[bytes | str] = field(default_factory=list)
    version: int = 0


class Saved(NamedTuple):
    """What `save` did with its events: how many were new, and whether it claimed them."""

    added: int
    claimed: bool = False


@dataclass(frozen=True)
class EventClaim:
    """A claim `save` takes on the events it queues, for the worker that will POST them at
    once: `owner` holds them for `seconds`. Taken only when they are their handle's only
    events in the outbox (nothing older goes first, no one else holds a claim there)."""

    owner: str
    seconds: float


@dataclass(frozen=True)
class Lease:
    """What `save` does with the poll lease of the worker that saves: it releases it, the
    handle counts as polled now (`polled`), and is next due `next_in` seconds from now (None:
    its due time stays as it is; a `--once` cycle leaves the schedule to running watchers)."""

    owner: str
    next_in: float | None = None
    polled: bool = True
    #: What the worker keeps about the handle next to its lease, opaque here (JSON text, the
    #: schedule's): its activity estimate and its health; None leaves what is stored.
    activity: str | None = None
    health: str | None = None
    #: Credits the poll spent, added to the handle's counter of this period: periods are
    #: `period` seconds long, from the epoch, on the database's clock (a counter of an
    #: earlier period starts again from these); None: not counted.
    credits: int = 0
    period: float | None = None


@dataclass
class Claim:
    """What `claim_polls` answered: the keys this worker may poll now, and for each of the
    others how many seconds until it is worth asking again."""

    granted: list[str] = field(default_factory=list)
    #: Keys another worker holds, and the seconds left of its lease.
    busy: dict[str, float] = field(default_factory=dict)
    #: Keys already polled (in this cycle, or within their interval), and the seconds until
    #: they are due again.
    later: dict[str, float] = field(default_factory=dict)
    #: For each granted key, what was kept next to its lease: (activity, health), JSON text
    #: or None (Lease).
    stored: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class PollRow:
    """A handle's poll lease row as it stands, for a status view: when it was last polled and
    is next due (seconds since the epoch, on the database's clock; 0: never), what its worker
    keeps next to it (Lease), its credit counter and the period that counter is of, and
    whether a worker holds it now."""

    key: str
    polled_at: float
    next_at: float
    activity: str | None
    health: str | None
    credits: int
    period: float
    held: bool


def new_owner() -> str:
    """A name for one worker (of leases and claims), unique across machines: host, process
    id and a random part."""
    import socket
    import uuid

    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class OutboxEvent:
    """One event as stored. `payload` is None when the stored JSON is damaged."""

    event_id: str
    handle: str
    payload: dict[str, Any] | None
    attempts: int
    next_attempt_at: float
    last_error: str | None
    parked: bool


@dataclass(frozen=True)
class Backlog:
    """Pending and parked events (of some handles), and when the next pending one is due."""

    pending: int
    parked: int
    next_due: float | None


#: The columns `event_from_row` reads, in its order.
OUTBOX_COLUMNS = "event_id, handle, payload, attempts, next_attempt_at, last_error, parked"


def event_from_row(row: tuple) -> OutboxEvent:
    """An outbox row (OUTBOX_COLUMNS) as an OutboxEvent; a damaged payload becomes None."""
    event_id, handle, payload, attempts, next_at, error, parked = row
    try:
        body = json.loads(payload)
    except (ValueError, TypeError, RecursionError):
        body = None
    if not isinstance(body, dict):
        body = None
    return OutboxEvent(event_id, handle, body, attempts, next_at, error, bool(parked))
