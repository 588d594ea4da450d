"""What the connector keeps between runs, whatever database keeps it: states by key, the
outbox, a lock per key so two polls of one handle take turns, and the leases and claims that
let many `watch` workers share one database.

Every operation's steps are written here, once; a backend (sqlite.py, postgres.py) gives its
dialect (sql.py), its connections, and how it locks a key and tells which workers are alive.
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
import time
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager

from ..core.errors import StateConflict, StateError
from .budgets import Budgets
from .leases import Leases
from .parts import as_bytes, plan_parts
from .records import (
    OUTBOX_COLUMNS,
    Backlog,
    EventClaim,
    Lease,
    NewEvent,
    OutboxEvent,
    Saved,
    Snapshot,
    compact_json,
    event_from_row,
)
from .sql import Session


class Database(Leases, Budgets):
    """One state database. Safe to share between threads."""

    #: Where it is, as it may be shown (a path, or a URL without its password).
    location: str

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # What each backend gives

    @abstractmethod
    def lock(self, key: str, timeout: float) -> AbstractContextManager[None]:
        """Hold `key` against other polls (other threads, processes or machines) for the
        duration; raises ConnectorError after `timeout` seconds of waiting."""

    @abstractmethod
    def worker(self, owner: str) -> AbstractContextManager[None]:
        """Mark `owner` alive for the duration (a lock the operating system or the server
        drops if the process dies): its leases and claims then end as soon as it is gone,
        not only when they run out. Leases of an owner never marked are ended by time alone.
        The SQL function `gone(owner)` tells, in every statement, whether an owner is dead."""

    def clock(self) -> float:
        """The database's clock, in seconds since the epoch: what leases, budgets and the
        periods of handles' credits go by (PostgreSQL's own, so that workers whose clocks
        differ agree; SQLite's is this process's)."""
        with self._session() as s:
            return self.dialect.now(s)

    def holds_mark(self, owner: str) -> bool:
        """Whether `owner`'s liveness mark (`worker`) still stands. False once the session that
        holds it was cut: other workers may then take its leases and claims, so it must not act
        on them (POST an event it claimed) until `recover()` has marked it again. True for an
        owner never marked, and where a mark cannot be lost while its process lives."""
        return True

    def recover(self, owner: str | None = None) -> None:
        """After DatabaseUnavailable, or a lost mark: raise DatabaseUnavailable while the
        database is still away; once it answers, mend what the outage broke (sessions, and the
        mark of `owner`, or of every worker this object marked). Call it when that worker has
        no claimed work in flight: its event claims end (a claim taken before a lost mark was
        made again must not be acted on, and one a failed call left behind would hold its
        handle's events back until it ran out)."""

    # States

    def read_state(self, key: str) -> Snapshot:
        """The stored state of `key` and its version, for a later `save(expect=version)`."""
        d, t = self.dialect, self.dialect.prefix
        # One statement, so the row and its parts are of the same save (and a poll pays for
        # one round trip, not four). The parts come as JSON, [n, bytes?, hex or text] each (an
        # aggregate's order is the database's to choose).
        with self._session() as s:
            found = s.one(f"SELECT state, version, parts, CASE WHEN parts IS NULL THEN NULL "
                          f"ELSE (SELECT {d.parts_json} FROM {t}state_part WHERE key = :key) "
                          f"END FROM {t}trigger_state WHERE key = :key", key=key)
        if found is None:
            return Snapshot(None, [], 0)
        text, version, count, listed = found
        try:
            row = json.loads(text)
            if isinstance(listed, str):  # SQLite's JSON is text; psycopg decodes it
                listed = json.loads(listed)
        except (ValueError, TypeError, RecursionError):
            row = None
        parts = [bytes.fromhex(p) if packed else p
                 for _, packed, p in sorted(listed or (), reverse=True)]
        if not isinstance(row, dict) or (count or 0) != len(parts):
            raise StateError(f"the stored state for {key} in {self.location} is damaged (not "
                             "valid JSON, or parts of it missing); it was left as is (delete "
                             "that row to start a new baseline)")
        return Snapshot(row, parts, version)

    def save(self, key: str, row: dict, parts: Sequence[bytes] = (),
             events: Iterable[NewEvent] = (), *, expect: int | None = None,
             lease: Lease | None = None, claim: EventClaim | None = None) -> Saved:
        """Commit a state (`row`, and `parts` newest first) and new outbox events together;
        says how many events were new (an event id already queued is not queued twice). Of
        the parts, only those not already stored in that order are written.

        With `expect` (a version from `read_state`), raises StateConflict, saving nothing, if
        the state was saved by someone else since. With `lease`, the poll lease of that owner
        is released in the same transaction. With `claim`, the events are claimed as they are
        queued, if they are all new and their handle has no other events in the outbox."""
        d, t = self.dialect, self.dialect.prefix
        data = [as_bytes(p) for p in parts]
        text = compact_json(row)
        events = list(events)
        now = time.time()
        with self._tx() as s:
            found = s.one(f"SELECT version, parts FROM {t}trigger_state WHERE key = :key"
                          f"{d.lock_row}", key=key)
            if expect is not None and (0 if found is None else found[0]) != expect:
                raise _conflict(key)
            state = {"key": key, "state": text, "now": now, "parts": len(data) or None}
            if found is not None:
                s.run(f"UPDATE {t}trigger_state SET state = :state, updated_at = :now, "
                      "version = version + 1, parts = :parts WHERE key = :key", **state)
            elif not s.run(f"INSERT INTO {t}trigger_state (key, state, updated_at, version, "
                           "parts) VALUES (:key, :state, :now, 1, :parts) ON CONFLICT (key) "
                           "DO NOTHING", **state).rowcount:
                # Another save inserted it since our read (PostgreSQL: no row to lock yet).
                raise _conflict(key) if expect is not None else StateConflict(
                    f"the state of {key} was first saved by two polls at once; this one's "
                    "result was dropped (the other one stands)")
            if data or found is None or found[1]:  # else none stored, and none to store
                stored = {bytes(digest): n for n, digest in s.run(
                    f"SELECT n, digest FROM {t}state_part WHERE key = :key", key=key)}
                plan = plan_parts(data, stored)
                if plan.delete:
                    s.run(f"DELETE FROM {t}state_part WHERE key = :key AND "
                          f"{d.among('n', 'ns')}", key=key, ns=d.listed(plan.delete))
                s.many(f"INSERT INTO {t}state_part (key, n, digest, {d.part_column}) "
                       "VALUES (:key, :n, :digest, :data)",
                       [{"key": key, "n": n, "digest": h, "data": p} for n, h, p in plan.insert])
            added, holder = self._queue(s, events, claim, now)
            if lease is not None:
                self._release(s, key, lease)
        return Saved(added, holder is not None)

    def _queue(self, s: Session, events: list[NewEvent], claim: EventClaim | None,
               now: float) -> tuple[int, str | None]:
        """Queue `events` (claimed as `claim` says, all of them or none); how many were new,
        and who holds them."""
        d, t = self.dialect, self.dialect.prefix
        if not events:
            return 0, None
        handles = sorted({handle for _, handle, _ in events})
        holder, seconds = None, None
        # A handle at a time (nearly always the only one): `handle = :handle` costs SQLite no
        # list of handles to build first, as among() does.
        if claim is not None and not any(
                s.one(f"SELECT 1 FROM {t}outbox WHERE handle = :handle LIMIT 1", handle=h)
                for h in handles):
            holder, seconds = claim.owner, claim.seconds
        added = 0
        for event_id, handle, payload in events:
            added += s.run(
                f"INSERT INTO {t}outbox (event_id, handle, payload, created_at, "
                "next_attempt_at, claimed_by, claimed_until) VALUES (:id, :handle, :payload, "
                f":now, :now, :holder, coalesce({d.clock} + :seconds, 0)) ON CONFLICT DO NOTHING",
                id=event_id, handle=handle, payload=compact_json(payload),
                now=now, holder=holder, seconds=seconds).rowcount
        if holder is not None and added != len(events):  # an id given twice is queued once
            s.run(f"UPDATE {t}outbox SET claimed_by = NULL, claimed_until = 0 WHERE "
                  f"claimed_by = :holder AND {d.among('handle', 'handles')}",
                  holder=holder, handles=d.listed(handles))
            holder = None
        return added, holder

    # The outbox

    def due(self, now: float, *, handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        """Pending events due by `now`, oldest first (only those of `handles`, when given).
        Events of a handle with events claimed by a deliverer are left out: they are that
        deliverer's until it is done or its claim ends."""
        d, t = self.dialect, self.dialect.prefix
        # For a few handles, their index (outbox_handle) finds their few events.
        x = "" if handles is None else d.no_index
        which = f"{x}parked = false AND {x}next_attempt_at <= :now"
        if handles is not None:
            which += f" AND {d.among('handle', 'handles')}"
        with self._session() as s:
            rows = s.all(f"SELECT {OUTBOX_COLUMNS} FROM {t}outbox o WHERE {which} AND NOT "
                         f"EXISTS (SELECT 1 FROM {t}outbox c WHERE c.handle = o.handle AND "
                         f"c.claimed_until > {d.clock} AND NOT {t}gone(c.claimed_by)) "
                         f"ORDER BY created_at, {d.order}", now=now,
                         handles=d.listed(sorted(handles or ())))
        return [event_from_row(r) for r in rows]

    def claim_events(self, event_ids: list[str], owner: str, *, claim_for: float) -> list[str]:
        """Claim these events for one deliverer for `claim_for` seconds; returns those it got
        (still pending, due, and not claimed by another), in the order asked."""
        d, t = self.dialect, self.dialect.prefix
        if not event_ids:
            return []
        x = d.no_index  # they are found by their ids, not among every due event
        with self._tx() as s:
            got = self._claim(s, f"{t}outbox", "event_id",
                              f"{d.among('event_id', 'ids')} AND {x}parked = false AND "
                              f"{x}next_attempt_at <= :now AND (claimed_until <= {d.clock} OR "
                              f"{t}gone(claimed_by))",
                              f"claimed_by = :owner, claimed_until = {d.clock} + :seconds",
                              ids=d.listed(event_ids), now=time.time(), owner=owner,
                              seconds=claim_for)
        return [e for e in event_ids if e in got]

    def release_events(self, event_ids: list[str], owner: str) -> None:
        """End `owner`'s claim on these events without trying them (another deliverer holds an
        older event of their handle)."""
        d = self.dialect
        if event_ids:
            with self._session() as s:
                s.run(f"UPDATE {d.prefix}outbox SET claimed_by = NULL, claimed_until = 0 WHERE "
                      f"{d.among('event_id', 'ids')} AND claimed_by = :owner",
                      ids=d.listed(event_ids), owner=owner)

    def events(self, *, parked: bool | None = None,
               handles: Iterable[str] | None = None) -> list[OutboxEvent]:
        """Events, oldest first: parked ones, pending ones (parked=False) or all (None)."""
        d = self.dialect
        which = "" if parked is None else " AND parked = :parked"
        if handles is not None:
            which += f" AND {d.among('handle', 'handles')}"
        with self._session() as s:
            rows = s.all(f"SELECT {OUTBOX_COLUMNS} FROM {d.prefix}outbox WHERE true{which} "
                         f"ORDER BY created_at, {d.order}", parked=parked,
                         handles=d.listed(sorted(handles or ())))
        return [event_from_row(r) for r in rows]

    def delivered(self, event_id: str) -> None:
        """The receiver took the event: it leaves the outbox."""
        with self._session() as s:
            s.run(f"DELETE FROM {self.dialect.prefix}outbox WHERE event_id = :id", id=event_id)

    def failed(self, event_id: str, error: str, *, retry_at: float, park: bool) -> None:
        """A delivery failed: count it, and try again at `retry_at` (or park the event). Its
        claim ends."""
        with self._session() as s:
            s.run(f"UPDATE {self.dialect.prefix}outbox SET attempts = attempts + 1, "
                  "last_error = :error, next_attempt_at = :retry, parked = :park, "
                  "claimed_by = NULL, claimed_until = 0 WHERE event_id = :id",
                  error=error[:500], retry=retry_at, park=park, id=event_id)

    def requeue(self, event_ids: Iterable[str] | None = None, *,
                include_pending: bool = False) -> int:
        """Parked events (all, or these) back in the queue and due now, attempts reset; with
        `include_pending`, pending events due now too. Returns how many changed."""
        d = self.dialect
        which = ("" if include_pending else " AND parked") + self._only(event_ids)
        with self._session() as s:
            return s.run(f"UPDATE {d.prefix}outbox SET parked = false, attempts = CASE WHEN "
                         f"parked THEN 0 ELSE attempts END, next_attempt_at = :now WHERE "
                         f"true{which}", now=time.time(),
                         ids=d.listed(dict.fromkeys(event_ids or ()))).rowcount

    def discard(self, event_ids: Iterable[str] | None = None) -> int:
        """Delete parked events (all, or these); pending ones are never discarded."""
        d = self.dialect
        with self._session() as s:
            return s.run(f"DELETE FROM {d.prefix}outbox WHERE parked{self._only(event_ids)}",
                         ids=d.listed(dict.fromkeys(event_ids or ()))).rowcount

    def _only(self, event_ids: Iterable[str] | None) -> str:
        return "" if event_ids is None else f" AND {self.dialect.among('event_id', 'ids')}"

    def backlog(self, handles: Iterable[str] | None = None) -> Backlog:
        """Pending and parked counts, and when the next pending event is due."""
        d = self.dialect
        which = "" if handles is None else f" AND {d.among('handle', 'handles')}"
        with self._session() as s:
            pending, parked, next_due = s.one(
                "SELECT count(CASE WHEN NOT parked THEN 1 END), count(CASE WHEN parked THEN 1 "
                "END), min(CASE WHEN NOT parked THEN next_attempt_at END) FROM "
                f"{d.prefix}outbox WHERE true{which}", handles=d.listed(sorted(handles or ())))
        return Backlog(int(pending), int(parked), next_due)

    def backlog_by_handle(self) -> dict[str, tuple[int, int]]:
        """Pending and parked counts of each handle with events in the outbox."""
        with self._session() as s:
            rows = s.all("SELECT handle, count(CASE WHEN NOT parked THEN 1 END), count(CASE "
                         f"WHEN parked THEN 1 END) FROM {self.dialect.prefix}outbox GROUP BY "
                         "handle")
        return {handle: (int(pending), int(parked)) for handle, pending, parked in rows}


def _conflict(key: str) -> StateConflict:
    return StateConflict(f"the state of {key} was saved by another poll meanwhile; this "
                         "poll's result was dropped (the other one stands)")
