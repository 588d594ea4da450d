"""Delivery: webhook POSTs from the outbox; an event leaves the outbox only after a 2xx.

A failed POST is tried again later with exponential backoff; after `max_attempts` the event is
parked (kept, never dropped) until `tiktok-following outbox retry`. When the receiver looks
down, the rest of the pass waits for the backoff instead of being tried one by one against a
host that is not there. It looks down when no connection can be made to it, when a gateway or
rate limit in front of it answers 429 or 502-504, or when DOWN_AFTER POSTs in a row get no
answer at all (reset, timed out). One POST without an answer is not enough: a kept-alive
connection the receiver dropped is retried at once on another (watch/webhook.py), and a single
event that still fails is only that event's failure.

Deliverers sharing a database (many `watch` workers) claim a handle's events, a few at a time,
just before they POST them: each event is tried by one deliverer at a time, one handle's events
go out in order, and the claims of a deliverer that died run out so another takes over.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..storage import Backlog, Database, DatabaseUnavailable, OutboxEvent, new_owner
from .outage import mark_stands
from .summary import DeliveryPass
from .webhook import Webhook

log = logging.getLogger("connector.watch")

DEFAULT_MAX_ATTEMPTS = 10
#: A deliverer claims this many of a handle's events at once, just before it POSTs them.
CLAIM_CHUNK = 10
#: POSTs in a row without any answer after which the receiver looks down (see above).
DOWN_AFTER = 3


@dataclass(frozen=True)
class Backoff:
    """Seconds before attempt n+1 after n failures: base * factor**(n-1), capped, less up to
    `jitter` of it. The jitter keeps the retries of many events from arriving together when the
    receiver comes back; `delay()` takes the random draw as an argument so tests can pin it."""

    base: float = 30.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.25

    def delay(self, failures: int, draw: float = 0.0) -> float:
        exponent = min(max(failures - 1, 0), 64)  # 2**64 * base is past any cap already
        return min(self.cap, self.base * self.factor ** exponent) * (1 - self.jitter * draw)

    @classmethod
    def immediate(cls) -> Backoff:
        """No waiting between attempts: for tests."""
        return cls(base=0.0, jitter=0.0)


class Deliverer:
    """Delivers the due outbox events of a state database to one webhook.

    `handles` limits it to events of those handles, so a `watch` never posts another watch's
    events (sharing one database) to its own webhook. Events of one handle go out in the order
    they were detected, handles in parallel.
    """

    def __init__(
        self,
        store: Database,
        webhook: Webhook,
        *,
        handles: Iterable[str] | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: Backoff | None = None,
        concurrency: int = 4,
        stop: threading.Event | None = None,
        owner: str | None = None,
        on_database_error: Callable[[DatabaseUnavailable], None] | None = None,
        on_delivery: Callable[[str, float | None], None] | None = None,
        on_backlog: Callable[[Backlog], None] | None = None,
    ) -> None:
        self.store = store
        self.webhook = webhook
        self.handles = frozenset(handles) if handles is not None else None
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff()
        self.concurrency = max(1, concurrency)
        self.stop = stop or threading.Event()
        #: No POST before this time: the receiver looked down on the last try.
        self.hold_until = 0.0
        #: This deliverer's name on its claims.
        self.owner = owner or new_owner()
        #: Seconds a claim lasts: after this, events claimed by a deliverer that died are
        #: tried by another. Long enough to POST a whole claim to a receiver that takes its
        #: full deadline on each: a claim that ran out mid-way would let a second deliverer in.
        self.claim_for = CLAIM_CHUNK * webhook.timeouts.total * 1.5 + 60.0
        #: Told when the database goes away mid-pass (a watcher's outage); else it is logged.
        self.on_database_error = on_database_error or _log_database_error
        #: Told of each POST as it ends: `delivered` (with the event's delay since its
        #: detection), `failed` or `parked`; and of each count of the outbox (metrics.py).
        self.on_delivery = on_delivery
        self.on_backlog = on_backlog
        #: Events the receiver took while the database was away: marked delivered first thing
        #: in the next pass, never POSTed again by this deliverer.
        self._unrecorded: set[str] = set()

    def backlog(self) -> Backlog:
        backlog = self.store.backlog(self.handles)
        if backlog.next_due is not None:
            backlog = replace(backlog, next_due=max(backlog.next_due, self.hold_until))
        if self.on_backlog is not None:
            self.on_backlog(backlog)
        return backlog

    def run_pass(self, only: Collection[str] | None = None, *,
                 into: DeliveryPass | None = None) -> DeliveryPass:
        """POST every due event once (only those in `only`, when given); return what happened.

        `into` continues a pass begun by `deliver_handle`: events it already tried are not
        tried again, and a receiver it found down holds back the rest.
        """
        result = into if into is not None else DeliveryPass()
        for event_id in list(self._unrecorded):
            self.store.delivered(event_id)
            self._unrecorded.discard(event_id)
        now = time.time()  # wall-clock time: the outbox's next_attempt_at is time.time()
        due = [e for e in self.store.due(now, handles=self.handles)
               if (only is None or e.event_id in only) and e.event_id not in result.tried]
        if not due:
            return result
        if now < self.hold_until or self.stop.is_set() or result.down.is_set():
            with result.lock:
                result.held += len(due)
            return result
        by_handle: dict[str, list[OutboxEvent]] = {}
        for event in due:
            by_handle.setdefault(event.handle, []).append(event)
        if len(by_handle) == 1:  # no threads to start for one handle's events
            self._deliver_all(due, result)
            return result
        workers = min(self.concurrency, len(by_handle))
        with ThreadPoolExecutor(workers, thread_name_prefix="watch-deliver") as pool:
            for events in by_handle.values():
                pool.submit(self._deliver_all, events, result)
        return result

    def deliver_handle(self, handle: str, into: DeliveryPass) -> None:
        """POST `handle`'s due events now, in this thread, as part of the pass `into`.

        `watch` calls it as soon as a poll has committed, so deliveries overlap the other
        polls' waiting for the API instead of queueing after all of them. While the receiver
        looks down, or watch is stopping, it does nothing: the closing `run_pass(into=...)`
        holds those events back and counts them, once.
        """
        if time.time() < self.hold_until or self.stop.is_set() or into.down.is_set():
            return
        due = [e for e in self.store.due(time.time(), handles=(handle,))
               if e.event_id not in into.tried and e.event_id not in self._unrecorded]
        self._deliver_all(due, into, count_held=False)

    def deliver_claimed(self, events: list[OutboxEvent], into: DeliveryPass) -> None:
        """POST events this deliverer claimed as its poll queued them (`Batch.commit(claim=)`:
        their handle's only events, oldest first), as `deliver_handle` would, without asking
        the outbox for them again. What is not tried is unclaimed, for the closing pass."""
        ids = [e.event_id for e in events]
        if time.time() < self.hold_until:
            self._unclaim(ids)
            return
        try:
            self._send(events, [], into)
        except BaseException:
            self._unclaim([e for e in ids if e not in into.tried])
            raise

    def _deliver_all(self, events: list[OutboxEvent], result: DeliveryPass, *,
                     count_held: bool = True) -> None:
        """One handle's due events, in order, claimed CLAIM_CHUNK at a time (so two deliverers
        sharing a database never POST one event at once)."""
        held = 0
        for start in range(0, len(events), CLAIM_CHUNK):
            left = len(events) - start
            if self.stop.is_set() or result.down.is_set():
                held = left
                break
            chunk = events[start:start + CLAIM_CHUNK]
            try:
                got = set(self.store.claim_events([e.event_id for e in chunk], self.owner,
                                                  claim_for=self.claim_for))
            except Exception as exc:
                if isinstance(exc, DatabaseUnavailable):
                    self.on_database_error(exc)
                else:
                    log.exception("claiming events of @%s failed", chunk[0].handle)
                held = left
                break
            # Only an unbroken run from the oldest: if another deliverer holds an older event
            # of this handle, it sends the rest too, in order.
            run = next((i for i, e in enumerate(chunk) if e.event_id not in got), len(chunk))
            mine = chunk[:run]
            held = self._send(mine, list(got.difference(e.event_id for e in mine)), result)
            if held:
                held += left - run
            if held or run < len(chunk):
                break
        if held and count_held:
            with result.lock:
                result.held += held

    def _send(self, mine: list[OutboxEvent], rest: list[str], result: DeliveryPass) -> int:
        """POST `mine`, claimed events of one handle, in order, then end the claims on those
        not delivered and on `rest`. Stops early (watch stopping, the receiver down, its claims
        no longer its own); returns how many of `mine` it held back then (0: all were tried)."""
        for i, event in enumerate(mine):
            if self.stop.is_set() or result.down.is_set() or not mark_stands(
                    self.store, self.owner, self.on_database_error):
                self._unclaim([*rest, *(e.event_id for e in mine[i:])])
                return len(mine) - i
            with result.lock:
                result.tried.add(event.event_id)
            try:
                self._deliver(event, result)
            except Exception:
                # A bug or a database error must not end the pass for everyone else; the
                # event stays in the outbox and is tried again.
                log.exception("delivering %s failed unexpectedly", event.event_id)
                rest = [*rest, event.event_id]
                with result.lock:
                    result.failed += 1
                    result.last_error = "internal error (see the log)"
        self._unclaim(rest)
        return 0

    def _record(self, event: OutboxEvent, error: str, *, retry_at: float, park: bool) -> None:
        """A failed try, in the outbox; while the database is away it is not counted there,
        and the event is tried again as it was."""
        try:
            self.store.failed(event.event_id, error, retry_at=retry_at, park=park)
        except DatabaseUnavailable as exc:
            self.on_database_error(exc)

    def _unclaim(self, event_ids: list[str]) -> None:
        if event_ids:
            try:
                self.store.release_events(event_ids, self.owner)
            except DatabaseUnavailable as exc:  # the claims run out by themselves
                self.on_database_error(exc)
            except Exception as exc:  # the claims run out by themselves
                log.warning("releasing %d claimed events failed: %s", len(event_ids), exc)

    def _deliver(self, event: OutboxEvent, result: DeliveryPass) -> None:
        if event.payload is None:
            # Damaged in the database: sending it cannot work, and retrying cannot mend it.
            error = "its stored payload is damaged; `outbox discard` removes it"
            self._record(event, error, retry_at=time.time(), park=True)
            log.warning("outbox event %s parked: %s", event.event_id, error)
            with result.lock:
                result.failed += 1
                result.parked += 1
                result.last_error = error
            self._tell("parked")
            return
        outcome = self.webhook.post(event.payload)
        if outcome.ok:
            try:
                self.store.delivered(event.event_id)
            except DatabaseUnavailable as exc:
                self._unrecorded.add(event.event_id)
                self.on_database_error(exc)
            log.info("delivered %s (@%s followed @%s): HTTP %s in %.0f ms", event.event_id,
                     event.handle, _followed(event), outcome.status, outcome.elapsed * 1000)
            delay = detection_delay(event.payload, time.time())
            with result.lock:
                result.delivered += 1
                result.silent = 0
                if delay is not None:
                    result.delays.append(delay)
            self._tell("delivered", delay)
            return
        failures = event.attempts + 1
        park = failures >= self.max_attempts
        delay = self.backoff.delay(failures, random.random())
        if outcome.retry_after is not None:
            delay = max(delay, min(outcome.retry_after, self.backoff.cap))
        retry_at = time.time() + delay
        error = outcome.error or "failed"
        self._record(event, error, retry_at=retry_at, park=park)
        then = ("parked; `tiktok-following outbox retry` sends it again" if park
                else f"next try in {delay:.0f}s")
        log.info("delivery of %s (@%s followed @%s) failed: %s (attempt %d of %d); %s",
                 event.event_id, event.handle, _followed(event), outcome.error, failures,
                 self.max_attempts, then)
        with result.lock:
            result.failed += 1
            result.parked += int(park)
            result.last_error = error
            result.silent = result.silent + 1 if outcome.unreachable else 0
            down = outcome.receiver_down or result.silent >= DOWN_AFTER
            if down:
                self.hold_until = max(self.hold_until, retry_at)
        self._tell("parked" if park else "failed")
        if down:
            result.down.set()

    def _tell(self, result: str, delay: float | None = None) -> None:
        if self.on_delivery is not None:
            try:
                self.on_delivery(result, delay)
            except Exception:  # metrics must never stop a delivery
                log.exception("recording a delivery in the metrics failed")


def detection_delay(payload: dict[str, Any] | None, now: float) -> float | None:
    """Seconds from an event's detection (its payload's `detectedAt`) to `now` (epoch
    seconds); None when it has none that reads."""
    text = (payload or {}).get("detectedAt")
    try:
        detected = datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return max(0.0, now - detected)


def _followed(event: OutboxEvent) -> str:
    item = (event.payload or {}).get("item") or {}
    return str(item.get("uniqueId") or item.get("id") or "?")


def _log_database_error(exc: DatabaseUnavailable) -> None:
    log.warning("%s", exc.message)
