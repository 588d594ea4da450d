"""What the connector keeps between runs, whatever database keeps it: trigger states by key,
the outbox, a lock per key so two polls of one handle take turns, and the leases and claims
that let many `watch` workers share one database.

`open_database()` picks the implementation: a file path is SQLite (the embedded default), a
`postgresql://` URL is PostgreSQL (shared by many `watch` workers, on one machine or many).
Both behave the same; the tests run against both.

How many workers share the work, whatever the backend:
- A state is saved only over the version it was read at (`save(..., expect=version)`): of two
  polls that read the same state, one commits and the other gets StateConflict and is
  dropped. So two workers can never both emit the same follow, whatever their leases did.
- Before polling a handle a worker claims it (`claim_polls`): a lease that names the worker
  and ends by itself, so the handles of a worker that died are taken over once it ends. The
  claim also says when each handle is next due, so each handle is polled by one worker per
  interval.
- Before POSTing events a deliverer claims them (`claim_events`): one deliverer at a time per
  event, and per handle, so one handle's events still go out in order. A worker that will
  POST what it just polled claims those events as it queues them (`save(..., claim=...)`),
  when they are their handle's only ones.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..core import b85
from ..core.config import STATE_DB_ENV
from ..core.errors import ConnectorError, StateError
from .outbox import Backlog, OutboxEvent

#: How an event is written by `save`: (event id, handle, payload).
NewEvent = tuple[str, str, dict[str, Any]]
#: The field of a state kept as one row per item, so that a save writes only the items that
#: changed (the trigger's remembered accounts, in segments; see operations/state.py).
SPLIT_FIELD = "known"
#: URL schemes that select PostgreSQL.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StateConflict(ConnectorError):
    """Another poll saved this state after it was read; this poll's result was not saved.
    Nothing is lost: the other poll's result stands, and the next poll starts from it."""

    code = "state_conflict"
    transient = True


@dataclass(frozen=True)
class EventClaim:
    """A claim `save` takes on the events it queues, for the worker that will POST them at
    once: `owner` holds them for `seconds`. Taken only when they are their handle's only
    events in the outbox (nothing older goes first, no one else holds a claim there)."""

    owner: str
    seconds: float


class Saved(NamedTuple):
    """What `save` did with its events: how many were new, and whether it claimed them."""

    added: int
    claimed: bool = False


@dataclass(frozen=True)
class Snapshot:
    """A stored state and the version it was read at (0: no state stored yet)."""

    state: dict[str, Any] | None
    version: int


@dataclass(frozen=True)
class Lease:
    """What `save` does with the poll lease of the worker that saves: it releases it, the
    handle counts as polled now (`polled`), and is next due `next_in` seconds from now (None:
    its due time stays as it is; a `--once` cycle leaves the schedule to running watchers)."""

    owner: str
    next_in: float | None = None
    polled: bool = True


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


def sort_claim(claim: Claim, key: str, *, held_for: float, due_in: float,
               polled: bool) -> None:
    """File one key of a claim: held by another worker for `held_for` more seconds (busy),
    else `polled` already and due in `due_in` seconds (later), else granted."""
    if held_for > 0:
        claim.busy[key] = held_for
    elif polled:
        claim.later[key] = max(due_in, 0.0)
    else:
        claim.granted.append(key)


def database_secrets(target: object) -> list[str]:
    """The secret parts of a database target: a URL's user and password, in its user info or
    its query (`?password=...`)."""
    if not is_postgres(target):
        return []
    from urllib.parse import parse_qs, urlsplit

    from ..core.redact import url_secrets

    out = url_secrets(str(target))
    try:
        query = parse_qs(urlsplit(str(target)).query)
    except ValueError:
        return out
    return out + [v for k in ("password", "user") for v in query.get(k, []) if v]


def new_owner() -> str:
    """A name for one worker, unique across machines: host, process id and a random part."""
    import socket
    import uuid

    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def default_path() -> Path:
    """DB path: $TIKTOK_FOLLOWING_STATE_DB, else the user data dir from platformdirs."""
    env = os.environ.get(STATE_DB_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("tiktok-following", appauthor=False)) / "state.db"


def is_postgres(target: object) -> bool:
    """Whether `target` names a PostgreSQL database (a postgresql:// URL)."""
    return isinstance(target, str) and target.strip().lower().startswith(POSTGRES_SCHEMES)


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

    def load_state(self, key: str) -> dict[str, Any] | None:
        """The stored state for `key`, or None."""
        return self.read_state(key).state

    @abstractmethod
    def read_state(self, key: str) -> Snapshot:
        """The stored state for `key` and its version, for a later `save(expect=version)`."""

    @abstractmethod
    def save(self, key: str, state: dict[str, Any], events: Iterable[NewEvent] = (), *,
             expect: int | None = None, lease: Lease | None = None,
             claim: EventClaim | None = None) -> Saved:
        """Commit `state` and new outbox events together; says how many events were new (an
        event id already queued is not queued twice).

        With `expect` (a version from `read_state`), raises StateConflict, saving nothing, if
        the state was saved by someone else since. With `lease`, the poll lease of that owner
        is released in the same transaction. With `claim`, the events are claimed as they are
        queued, if they are all new and their handle has no other events in the outbox."""

    @abstractmethod
    def lock(self, key: str, timeout: float) -> AbstractContextManager[None]:
        """Hold `key` against other polls (other threads, processes or machines) for the
        duration; raises ConnectorError after `timeout` seconds of waiting."""

    # Workers, poll leases and event claims: many workers, one handle list

    @abstractmethod
    def worker(self, owner: str) -> AbstractContextManager[None]:
        """Mark `owner` alive for the duration (a lock the operating system or the server
        drops if the process dies): its leases and claims then end as soon as it is gone,
        not only when they run out. Leases of an owner never marked are ended by time alone."""

    @abstractmethod
    def claim_polls(self, keys: Iterable[str], owner: str, *, lease_for: float,
                    polled_within: float | None = None) -> Claim:
        """Lease those of `keys` that are due and that no other worker holds, for `lease_for`
        seconds. Due means: its next due time has come, or, with `polled_within` (the age of
        a `--once` cycle), not polled in the last `polled_within` seconds. Times are relative
        so that workers on machines whose clocks differ agree (PostgreSQL uses its own)."""

    @abstractmethod
    def release_poll(self, key: str, owner: str, *, polled: bool = False,
                     next_in: float | None = None) -> None:
        """Give a lease back without saving a state: the poll failed (`polled`: it counts as
        polled now, next due in `next_in` seconds, as with Lease) or was abandoned."""

    # Outbox

    @abstractmethod
    def due(self, now: float, *, handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        """Pending events due by `now`, oldest first (only those of `handles`, when given).
        Events of a handle with events claimed by a deliverer are left out: they are that
        deliverer's until it is done or its claim ends."""

    @abstractmethod
    def claim_events(self, event_ids: list[str], owner: str, *, claim_for: float) -> list[str]:
        """Claim these events for one deliverer for `claim_for` seconds; returns those it got
        (still pending, due, and not claimed by another), in the order asked."""

    @abstractmethod
    def release_events(self, event_ids: list[str], owner: str) -> None:
        """End `owner`'s claim on these events without trying them (another deliverer holds an
        older event of their handle)."""

    @abstractmethod
    def events(self, *, parked: bool | None = None,
               handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        """Events, oldest first: parked ones, pending ones (parked=False) or all (None)."""

    @abstractmethod
    def delivered(self, event_id: str) -> None:
        """The receiver took the event: it leaves the outbox."""

    @abstractmethod
    def failed(self, event_id: str, error: str, *, retry_at: float, park: bool) -> None:
        """A delivery failed: count it, and try again at `retry_at` (or park the event). Its
        claim ends."""

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
    if is_postgres(target):
        from .postgres import PostgresDatabase

        return PostgresDatabase(str(target).strip())
    from .sqlite import SQLiteDatabase

    return SQLiteDatabase(target)


# What both implementations share: the state's split into a small row and one row per item of
# its `known` list.


def split_state(state: dict[str, Any]) -> tuple[dict[str, Any], list[str] | None]:
    """(the state without its `known` list, that list) when the list is all strings, so it
    can be kept as rows; else (the state as it is, None)."""
    known = state.get(SPLIT_FIELD)
    if isinstance(known, list) and all(isinstance(k, str) for k in known):
        return {k: v for k, v in state.items() if k != SPLIT_FIELD}, known
    return state, None


def pack_part(text: str) -> str | bytes:
    """How an item of `known` is stored: an item in base85 (as the trigger's parts are) as the
    bytes it encodes, a fifth smaller, any other item as its text. The trigger's memory is
    kept within 21 KB per handle this way (PostgreSQL keeps the bytes out of line in 2 KB
    TOAST chunks, SQLite in overflow pages; both would take a quarter more as text)."""
    try:
        data = b85.decode(text)
    except ValueError:
        return text
    # Whole groups of five characters decode one to one (or fail); only a short last group
    # can decode to bytes that encode back differently.
    whole = len(text) // 5
    return data if b85.encode(data[4 * whole:]) == text[5 * whole:] else text


def unpack_part(stored: str | bytes | memoryview) -> str:
    """An item of `known` as it was before pack_part: the text stored, or the bytes stored
    back in base85."""
    if isinstance(stored, str):
        return stored
    return b85.encode(bytes(stored))


def digest(text: str) -> bytes:
    """What a stored item is recognised by, so a save need not read the items back."""
    import hashlib

    return hashlib.blake2b(text.encode(), digest_size=16).digest()


@dataclass
class PartsPlan:
    """The rows a save writes and deletes so that the stored items equal the new list."""

    insert: list[tuple[int, bytes, str]]  # (n, digest, text)
    delete: list[int]


def plan_parts(new: list[str], stored: dict[bytes, int]) -> PartsPlan:
    """Rows to write for the list `new` (newest first) over the `stored` rows (digest -> n,
    higher n newer): items already stored in the right order are kept, the rest inserted with
    higher numbers, the stored items no longer in the list deleted. So a poll whose newest
    segment changed writes that segment alone, whatever else the state remembers."""
    top = max(stored.values(), default=0)
    last = 0
    kept: set[int] = set()
    insert = []
    for text in reversed(new):  # oldest first: numbers must grow towards the newest
        d = digest(text)
        n = stored.get(d)
        if n is not None and n > last and n not in kept:
            kept.add(n)
            last = n
        else:
            top += 1
            insert.append((top, d, text))
            last = top
    return PartsPlan(insert, sorted(set(stored.values()) - kept))


def assemble_state(key: str, where: object, text: str, count: int | None,
                   parts: list[str]) -> dict[str, Any]:
    """A stored state made whole again: its row and, when split, its `known` rows."""
    try:
        state = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        state = None
    if not isinstance(state, dict) or (count is not None and count != len(parts)):
        raise StateError(f"the stored state for {key} in {where} is damaged (not valid JSON, "
                         "or parts of it missing); it was left as is (delete that row to start "
                         "a new baseline)")
    if count is not None:
        state[SPLIT_FIELD] = parts
    return state
