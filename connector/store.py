"""The embedded store: the triggers polled with their state in a database, for people
without a runner (`tiktok-following poll`, and `watch`).

    store = connector.open_store()                # or open_store("follows.db")
    with store.poll("@someone") as batch:          # holds the handle's lock
        for item in batch.items:
            handle(item)
        batch.commit()                             # only now is the state advanced

Leaving the block without `commit()` (an exception, a crash) keeps the old state, so the same
follows come back on the next poll: at-least-once, never lost. Unfollows the same way:
`store.poll("@someone", operation="account_unfollowed")`. A commit saves over
the version of the state the poll read, or not at all (StateConflict): two polls of one handle
can never both advance it.

The database keeps a state as the state object splits it (connector.state): a small JSON row
and its parts as bytes, never through the runner JSON's text.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from .core.config import RetryPolicy, Timeouts
from .core.http import PageSource, client_for
from .operations import OPERATIONS, Result, prepare
from .operations.events import new_event
from .operations.registry import NEW_FOLLOWS, check_trigger, module
from .storage import Database, EventClaim, Lease, OutboxEvent, open_database
from .storage.outbox import iso

__all__ = ["Batch", "Store", "open_store", "state_key"]


def state_key(handle: str, operation: str = NEW_FOLLOWS.key) -> str:
    """Where a handle's state for a trigger is kept in the database."""
    return f"{operation}:{handle}"


@dataclass
class Batch(AbstractContextManager["Batch"]):
    """One poll's result, holding the handle's lock until it is committed or closed."""

    handle: str
    items: list[dict[str, Any]]
    meta: dict[str, Any]
    _result: Result = field(repr=False)
    _database: Database = field(repr=False)
    _hold: AbstractContextManager[None] | None = field(repr=False, default=None)
    committed: bool = False
    #: The trigger polled, and so the state key and the kind of its outbox events.
    operation: str = NEW_FOLLOWS.key
    #: The version of the stored state this poll started from (0: none).
    version: int = 0
    #: The events the commit queued and claimed for its `claim` owner, oldest first (empty
    #: when it claimed none): that owner POSTs them, and no one else until the claim ends.
    claimed: list[OutboxEvent] = field(default_factory=list)

    @property
    def remembered(self) -> int | None:
        """How many accounts the new state remembers (seen on the list), if it says."""
        known = getattr(self._result.kept, "known", None)
        return len(known) if known is not None else None

    @property
    def state(self) -> dict[str, Any] | None:
        """The new state, as runner JSON (what the commit saves, in the database's form)."""
        return self._result.state

    def commit(self, *, outbox: bool = False, lease: Lease | None = None,
               claim: EventClaim | None = None) -> int:
        """Save the new state (and, with outbox=True, the items as outbox events, in the same
        transaction), as `Database.save` does with `lease` and `claim` (the events it claimed
        are then in `claimed`). Call it after the items were handled. Returns events queued.
        Raises StateConflict, saving nothing, if another poll saved the state since this one
        read it."""
        if self.committed:
            return 0
        events = []
        if outbox:
            detected = iso(time.time())
            kind = OPERATIONS[self.operation].event
            events = [(eid, self.handle, payload) for eid, payload in
                      (new_event(self.handle, item, detected_at=detected, kind=kind)
                       for item in self.items)]
        added = 0
        kept = self._result.kept
        if kept is not None:
            row, parts = kept.to_stored()
            saved = self._database.save(state_key(self.handle, self.operation), row, parts,
                                        events, expect=self.version, lease=lease, claim=claim)
            added = saved.added
            if saved.claimed:
                now = time.time()
                self.claimed = [OutboxEvent(eid, handle, payload, 0, now, None, False)
                                for eid, handle, payload in events]
        self.committed = True
        self.close()
        return added

    def close(self) -> None:
        if self._hold is not None:
            hold, self._hold = self._hold, None
            hold.__exit__(None, None, None)

    def __exit__(self, *exc: object) -> None:
        self.close()


class Store(AbstractContextManager["Store"]):
    """The embedded state database, with the trigger as a method."""

    def __init__(self, target: str | os.PathLike[str] | Database | None = None) -> None:
        self._owns = not isinstance(target, Database)
        self.database = open_database(target)

    @property
    def location(self) -> str:
        return self.database.location

    def close(self) -> None:
        if self._owns:
            self.database.close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def poll(
        self,
        handle: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | None = None,
        platform: str | None = None,
        client: PageSource | None = None,
        lock_timeout: float = 300.0,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        operation: str = NEW_FOLLOWS.key,
    ) -> Batch:
        """Poll `handle` once with the stored state; commit the returned Batch to advance it.
        `operation`: the trigger, new_account_followed (default) or account_unfollowed."""
        check_trigger(operation)
        values, source = prepare(operation, {**(inputs or {}), "handle": handle},
                                 platform=platform)
        return self.poll_prepared(values, source, credentials=credentials, client=client,
                                  lock_timeout=lock_timeout, retry=retry, timeouts=timeouts,
                                  operation=operation)

    def poll_prepared(
        self,
        values: dict[str, Any],
        source: str,
        *,
        credentials: Mapping[str, Any] | None = None,
        client: PageSource | None = None,
        lock_timeout: float = 300.0,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        operation: str = NEW_FOLLOWS.key,
        locked: bool = True,
    ) -> Batch:
        """`poll` for inputs already checked by `operations.prepare` (watch checks them once
        for all its handles). `locked=False` skips the per-handle lock, for a caller that
        holds the handle's poll lease instead (watch): the commit's version check still keeps
        two polls from both advancing the state."""
        name = values["handle"]
        key = state_key(name, operation)
        with client_for(client, credentials=credentials, retry=retry,
                        timeouts=timeouts) as own:
            hold = self.database.lock(key, lock_timeout) if locked else None
            if hold is not None:
                hold.__enter__()
            try:
                # Read state only once the lock is held: it may just have been advanced.
                trigger = module(operation)
                stored = self.database.read_state(key)
                state = (None if stored.row is None
                         else trigger.State.from_stored(stored.row, stored.parts))
                result = trigger.run(own, values, source=source, state=state)
            except BaseException:
                if hold is not None:
                    hold.__exit__(None, None, None)
                raise
        return Batch(name, result.items, result.meta, result, self.database, hold,
                     operation=operation, version=stored.version)


def open_store(target: str | os.PathLike[str] | Database | None = None) -> Store:
    """Open (or create) the state database: a path or postgresql:// URL, else
    $TIKTOK_FOLLOWING_STATE_DB, else the platform's data dir."""
    return Store(target)

