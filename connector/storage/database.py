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
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..core import b85
from ..core.config import STATE_DB_ENV
from ..core.errors import ConfigurationError, StateError

# The store's own errors live in the error tree; imported from here too.
from ..core.errors import DatabaseUnavailable as DatabaseUnavailable
from ..core.errors import StateConflict as StateConflict
from .outbox import Backlog, OutboxEvent

#: How an event is written by `save`: (event id, handle, payload).
NewEvent = tuple[str, str, dict[str, Any]]
#: The field of a state kept as one row per item, so that a save writes only the items that
#: changed (the trigger's remembered accounts, in segments; see operations/state.py).
SPLIT_FIELD = "known"
#: URL schemes that select PostgreSQL.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


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
    return data_dir() / "state.db"


def data_dir() -> Path:
    """The user data dir (platformdirs): the default location, whose folders are made."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("tiktok-following", appauthor=False))


def sandbox_path() -> Path:
    """The state of runs against the sandbox: apart from the real default database."""
    return data_dir() / "sandbox.db"


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

    def holds_mark(self, owner: str) -> bool:
        """Whether `owner`'s liveness mark (`worker`) still stands. False once the session that
        holds it was cut: other workers may then take its leases and claims, so it must not act
        on them (POST an event it claimed) until `recover()` has marked it again. True for an
        owner never marked, and where a mark cannot be lost while its process lives."""
        return True

    def recover(self, owner: str | None = None) -> None:  # noqa: B027 -- nothing can go away
        """After DatabaseUnavailable, or a lost mark: raise DatabaseUnavailable while the
        database is still away; once it answers, mend what the outage broke (sessions, and the
        mark of `owner`, or of every worker this object marked). Call it when that worker has
        no claimed work in flight: its event claims end (a claim taken before a lost mark was
        made again must not be acted on, and one a failed call left behind would hold its
        handle's events back until it ran out)."""

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
    if is_postgres(target):
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
