"""The watcher: polls many handles into the outbox, and delivers the outbox to a webhook.

    with Watcher(["alice", "bob"], "https://hooks.example/abc", store="watch.db") as w:
        summary = w.run_cycle()      # one cycle, like `watch --once`
        w.run(on_summary=lambda s: print(s.line()))   # or: until w.stop()

Each poll commits the trigger's new state and its new follows as outbox events in one
transaction (`Batch.commit(outbox=True)`); delivery removes an event only after a 2xx. So a
crash at any moment repeats work, and loses none: at-least-once, with the event id in the
`Idempotency-Key` header for receivers that want exactly-once. With
`events=("followed", "unfollowed")` each handle is polled by both triggers, each with its own
state, and both kinds of event go to the one webhook.


Many watchers (processes, machines) can share one database and one handle list: a watcher
polls a handle only under a lease it claimed in the database (which ends by itself if the
watcher dies, so another takes the handle over), and a handle's next due time is kept there
too, so each handle is polled by one watcher per interval. Deliverers claim events the same
way (storage/database.py).

When the state database goes away (a restart, its sessions cut), a watcher says so once, holds
its polls and deliveries, reconnects with backoff and goes on where it was (outage.py).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from ..core.config import RetryPolicy, Timeouts
from ..core.errors import ConnectorError, InputError
from ..core.handles import normalize_handle
from ..core.http import PageSource, client_for
from ..operations import FOLLOWED, TRIGGERS, prepare
from ..storage import (
    Backlog,
    Database,
    DatabaseUnavailable,
    EventClaim,
    Lease,
    OutboxEvent,
    StateConflict,
    new_owner,
)
from ..store import Store, state_key
from .delivery import CLAIM_CHUNK, DEFAULT_MAX_ATTEMPTS, Backoff, Deliverer, DeliveryPass
from .outage import Outage, Reconnect
from .pacing import PacedClient, Pacer, Stopped
from .schedule import Schedule
from .summary import CycleSummary, HandlePoll, plural
from .webhook import Webhook

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger("connector.watch")

DEFAULT_INTERVAL = 900.0
DEFAULT_CONCURRENCY = 4
#: A running watch looks at the outbox at least this often, so events put back by
#: `outbox retry` from another process go out within a minute.
MAX_IDLE = 60.0
#: Never spin: a zero backoff (tests) would otherwise retry in a tight loop.
MIN_IDLE = 0.05
#: How long a claimed handle is this watcher's: if it dies, another takes the handle over
#: after this. Longer than a poll takes, or another watcher would poll it too (harmlessly:
#: only one of the two can save).
DEFAULT_LEASE = 300.0
#: A `--once` cycle waiting for handles that another watcher holds looks again after
#: FIRST_RECHECK, then twice as long each time, up to RECHECK: such a handle is usually a poll
#: in flight there, done within the API's latency, and a second of waiting for it was most of
#: what a second worker added to a cycle.
FIRST_RECHECK = 0.05
RECHECK = 1.0


class Watcher:
    """Watches handles for new follows and delivers each one to a webhook, through the outbox."""

    def __init__(
        self,
        handles: Iterable[str],
        webhook: Webhook | str,
        *,
        store: Store | Database | str | os.PathLike[str] | None = None,
        credentials: Mapping[str, Any] | None = None,
        client: PageSource | None = None,
        interval: float = DEFAULT_INTERVAL,
        concurrency: int = DEFAULT_CONCURRENCY,
        count: int | None = None,
        max_pages: int | None = None,
        first_run: str | None = None,
        events: Iterable[str] = (FOLLOWED,),
        reconcile_every: int | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: Backoff | None = None,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        jitter: float = 0.1,
        lock_timeout: float = 30.0,
        lease: float = DEFAULT_LEASE,
        reconnect: Reconnect | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        # Everything that can be wrong with the arguments fails here, before any request.
        self.handles = unique_handles(handles)
        if interval <= 0:
            raise InputError("interval must be longer than zero", field="interval")
        if concurrency < 1:
            raise InputError("concurrency must be at least 1", field="concurrency")
        if max_attempts < 1:
            raise InputError("max attempts must be at least 1", field="maxAttempts")
        inputs = {"count": count, "maxPages": max_pages, "firstRun": first_run,
                  "reconcileEvery": reconcile_every}
        operations = _triggers_for(events)
        _check_options(inputs, operations)
        if lease <= 0:
            raise InputError("lease must be longer than zero", field="lease")
        # Checked once for every handle: only the handle differs between their polls.
        self.plans = [(key, *prepare(key, {**_inputs_for(key, inputs),
                                            "handle": self.handles[0]}))
                      for key in operations]
        _, self.inputs, self.source = self.plans[0]
        self.interval = interval
        self.concurrency = concurrency
        self.jitter = jitter
        self.lock_timeout = lock_timeout
        self.lease = lease
        #: This watcher's name on its leases and claims.
        self.owner = new_owner()
        self._owned = ExitStack()
        self._stop = threading.Event()
        try:
            if isinstance(webhook, str):
                webhook = self._owned.enter_context(Webhook(webhook, pool_size=concurrency))
            self.webhook = webhook
            self.client = self._owned.enter_context(client_for(
                client, credentials=credentials, retry=retry, timeouts=timeouts,
                pool_size=concurrency))
            if not isinstance(store, Store):
                store = self._owned.enter_context(Store(store))
            self.store = store
            # Marked alive: if this process dies, other watchers take its leases and claims
            # over at once, not when they run out.
            self._owned.enter_context(store.database.worker(self.owner))
        except BaseException:
            self.close()
            raise
        self.pacer = pacer or Pacer()
        self.pacer.stop = self._stop
        self._outage = Outage(store.database, self.owner, self._stop, reconnect)
        #: Told of each poll and delivery as it ends (metrics.py).
        self.metrics = metrics
        if metrics is not None:
            metrics.watching(self.handles)
        self.deliverer = Deliverer(store.database, webhook, handles=self.handles,
                                   max_attempts=max_attempts, backoff=backoff,
                                   concurrency=concurrency, stop=self._stop, owner=self.owner,
                                   on_database_error=self._outage.report,
                                   on_delivery=metrics and metrics.record_delivery,
                                   on_backlog=metrics and metrics.record_backlog)
        #: The outbox as last seen: what a summary shows while the database is away.
        self._last_backlog = Backlog(0, 0, None)
        self._schedule = Schedule(self.handles, interval, now=time.monotonic(), jitter=jitter)
        #: The next due time (seconds from its poll) each poll of this watcher gave its handle.
        self._chosen: dict[str, float] = {}
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="watch-poll")
        # Deliveries of what a poll just committed: a thread of their own, so a poll slot is
        # free for the next handle while its webhook POSTs are under way.
        self._deliver_pool = ThreadPoolExecutor(concurrency, thread_name_prefix="watch-deliver")

    # Lifecycle

    def stop(self) -> None:
        """Ask a running cycle to wind down: polls and deliveries in flight finish, no new ones
        start. Safe from a signal handler or another thread."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def location(self) -> str:
        """Where the state database is, as it may be shown (no password)."""
        return self.store.location

    def close(self) -> None:
        for name in ("_pool", "_deliver_pool"):
            pool = getattr(self, name, None)
            if pool is not None:
                pool.shutdown(wait=True)
        self._owned.close()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Cycles

    def run_cycle(self) -> CycleSummary:
        """Poll every handle once, then deliver what is due: one cycle, like `watch --once`.

        Handles polled by another watcher since this cycle began count as done; those another
        watcher holds are waited for, and polled here if its lease ends first."""
        summary = CycleSummary(len(self.handles))
        started = time.monotonic()
        deliveries = DeliveryPass()
        #: When this cycle stops waiting for a database that went away.
        give_up: float | None = None
        outcomes, waiting = self._sweep(self.handles, started, deliveries)
        pause = FIRST_RECHECK
        while waiting and not self.stopping:
            if not self._outage.check():
                give_up = give_up or time.monotonic() + self._outage.policy.patience
                if not self._outage.wait(until=give_up):
                    break
            else:
                self._stop.wait(min(max(min(waiting.values()), MIN_IDLE), pause))
                pause = min(2 * pause, RECHECK)
            more, waiting = self._sweep(list(waiting), started, deliveries)
            outcomes += more
        if waiting and self._outage.error is not None:
            # Gave up on the database: what is left was not polled, and says why.
            outcomes += [HandlePoll(h, error=self._outage.error) for h in waiting]
        for outcome in outcomes:
            summary.record_poll(outcome)
        while True:
            if self._outage.check():
                self._deliver_pass(deliveries)
            if self.stopping or self._outage.check():
                break
            # Away, or cut mid-pass: once it is back, the pass goes on with what it has not
            # tried.
            give_up = give_up or time.monotonic() + self._outage.policy.patience
            if not self._outage.wait(until=give_up):
                break
            deliveries.held = 0
        summary.record_delivery(deliveries)
        return self._finish(summary)

    def run(self, on_summary: Callable[[CycleSummary], None] | None = None) -> CycleSummary:
        """Poll each handle once per interval (jittered) and deliver as events come due, until
        `stop()`. `on_summary` gets each interval's summary, and the last partial one."""
        mono = time.monotonic
        schedule = self._schedule
        summary = CycleSummary(len(self.handles))
        period_end = mono() + self.interval
        log.info("watching %d handles every %gs, %d at a time; webhook %s", len(self.handles),
                 self.interval, self.concurrency, self.webhook)
        while not self.stopping:
            if not self._outage.check():
                # Until it is back, or the interval's summary is due (then on waiting).
                self._outage.wait(until=period_end)
            if not self._outage.active and not self.stopping:
                due = schedule.due(mono())
                deliveries = DeliveryPass()
                if due:
                    # The database has the last word on who polls what when: handles polled
                    # by another watcher, or held by one, come back when they are due there
                    # (and those the database was away for, as soon as it is back).
                    outcomes, later = self._sweep(due, None, deliveries)
                    for outcome in outcomes:
                        summary.record_poll(outcome)
                    now = mono()
                    for handle in due:
                        chosen = self._chosen.pop(handle, None)
                        schedule.set(handle,
                                     now + later.get(handle, chosen or schedule.next_in()))
                if not self._outage.active:
                    self._deliver_pass(deliveries)
                summary.record_delivery(deliveries)
            if mono() >= period_end and not self.stopping:
                if on_summary is not None:
                    on_summary(self._finish(summary))
                summary = CycleSummary(len(self.handles))
                while period_end <= mono():
                    period_end += self.interval
            if self._outage.active:
                continue  # its wait is the sleep
            wake = min(schedule.next_at(), period_end, mono() + MAX_IDLE)
            next_due = self._backlog().next_due
            if next_due is not None:
                wake = min(wake, mono() + (next_due - time.time()))
            self._stop.wait(max(MIN_IDLE, wake - mono()))
        summary.stopped = True
        self._finish(summary)
        if on_summary is not None:
            on_summary(summary)
        return summary

    def _finish(self, summary: CycleSummary) -> CycleSummary:
        summary.record_backlog(self._backlog())
        summary.database_away = self._outage.active
        if self.pacer.last.remaining is not None:
            summary.rate_limit = self.pacer.last
        summary.stopped = summary.stopped or self.stopping
        return summary

    def _backlog(self) -> Backlog:
        """The outbox of this watcher's handles; as last seen while the database is away."""
        if not self._outage.active:
            try:
                self._last_backlog = self.deliverer.backlog()
            except DatabaseUnavailable as exc:
                self._outage.report(exc)
        return self._last_backlog

    def _deliver_pass(self, deliveries: DeliveryPass) -> DeliveryPass:
        """The closing delivery pass of a sweep (`run_pass`); the database going away ends
        it, and holds what it did not try."""
        try:
            return self.deliverer.run_pass(into=deliveries)
        except DatabaseUnavailable as exc:
            self._outage.report(exc)
            return deliveries

    # Polling

    def poll(self, handles: Iterable[str],
             deliveries: DeliveryPass | None = None) -> list[HandlePoll]:
        """Poll those of `handles` that are due and that no other watcher holds, at most
        `concurrency` at a time; each commits its follows to the outbox. A failing handle is
        an outcome with an error, never an exception; one polled or held by another watcher is
        an outcome marked `elsewhere`."""
        outcomes, later = self._sweep(list(handles), None, deliveries)
        return outcomes + [HandlePoll(h, elsewhere=True) for h in later
                           if not any(o.handle == h for o in outcomes)]

    def _sweep(self, handles: Iterable[str], cycle_start: float | None,
               deliveries: DeliveryPass | None = None
               ) -> tuple[list[HandlePoll], dict[str, float]]:
        """Claim and poll `handles`, a few more claimed than are in flight so the pool never
        idles and no lease waits long. Due means: not polled since `cycle_start` (a monotonic
        time: a `--once` cycle), or, when None, its interval has passed. Returns the outcomes
        of the polls made, and for each handle not polled here the seconds until it is worth
        asking again (held by another: its lease; polled by another: its next due time);
        handles polled by another since `cycle_start` are outcomes marked `elsewhere`. Given
        `deliveries`, each poll's new events are delivered at once, as part of that pass; they
        are done when this returns."""
        pending = list(handles)
        by_key = {state_key(h): h for h in pending}
        outcomes: list[HandlePoll] = []
        later: dict[str, float] = {}
        running: dict[Future[HandlePoll], str] = {}
        # Each poll puts itself here when done: waiting for the next one costs the same
        # however many are in flight (`wait` would hook onto every one of them each time).
        finished: queue.SimpleQueue[Future[HandlePoll]] = queue.SimpleQueue()
        delivering: list[Future[None]] = []
        window = 2 * self.concurrency
        database = self.store.database
        while pending or running:
            # Claim in batches: a claim is a transaction that every poll's commit waits
            # behind, so refill only once half the window is done, a batch at a time.
            if pending and not self._outage.check():  # polled once the database is back
                later.update(dict.fromkeys(pending, 0.0))
                pending = []
                continue
            if pending and len(running) <= window - self.concurrency and not self.stopping:
                chunk, pending = (pending[:window - len(running)],
                                  pending[window - len(running):])
                within = None if cycle_start is None else time.monotonic() - cycle_start
                try:
                    claim = database.claim_polls([state_key(h) for h in chunk], self.owner,
                                                 lease_for=self.lease, polled_within=within)
                except DatabaseUnavailable as exc:
                    self._outage.report(exc)
                    later.update(dict.fromkeys(chunk, 0.0))
                    continue
                except Exception as exc:  # these handles wait a turn
                    log.warning("claiming %d handles failed: %s", len(chunk), exc)
                    outcomes += [HandlePoll(h, error=exc) for h in chunk]
                    continue
                for key in claim.granted:
                    handle = by_key[key]
                    future = self._pool.submit(self._poll_one, handle, cycle_start is None,
                                               deliveries, delivering)
                    running[future] = handle
                    future.add_done_callback(finished.put)
                for key, seconds in claim.busy.items():
                    later[by_key[key]] = seconds
                for key, seconds in claim.later.items():
                    later[by_key[key]] = seconds
                    if cycle_start is not None:
                        outcomes.append(HandlePoll(by_key[key], elsewhere=True))
                continue
            if pending and not running:  # stopping: the rest are not polled
                outcomes += [HandlePoll(h, skipped=True) for h in pending]
                pending = []
                continue
            future = finished.get()
            running.pop(future)
            outcome = future.result()
            outcomes.append(outcome)
            if self.metrics is not None:
                self.metrics.record_poll(outcome)
            if isinstance(outcome.error, DatabaseUnavailable) and not self.stopping:
                later[outcome.handle] = 0.0  # polled again once the database is back
        for future in list(delivering):
            future.result()
        if cycle_start is not None:
            # Polled elsewhere in this cycle: nothing to wait for.
            done_elsewhere = {o.handle for o in outcomes if o.elsewhere}
            later = {h: s for h, s in later.items() if h not in done_elsewhere}
        return outcomes, later

    def _poll_one(self, handle: str, scheduled: bool = True,
                  deliveries: DeliveryPass | None = None,
                  delivering: list[Future[None]] | None = None) -> HandlePoll:
        """Poll one claimed handle with each watched trigger and commit. `scheduled`: a running
        watch's poll, which sets the handle's next due time for every watcher; a `--once` poll
        leaves it as it was. The lease is the handle's (its follow state's key); with both
        triggers, each commits its own state, and the lease is given back after the last."""
        if len(self.plans) == 1:
            return self._poll_trigger(handle, *self.plans[0], scheduled=scheduled,
                                      deliveries=deliveries, delivering=delivering)
        # Each trigger in turn, with its own state; the outcome adds them up.
        outcome = HandlePoll(handle, meta={"newFollows": 0, "unfollows": 0, "baseline": False,
                                           "warnings": []})
        for n, plan in enumerate(self.plans):
            step = self._poll_trigger(handle, *plan, scheduled=scheduled,
                                      last=n == len(self.plans) - 1,
                                      deliveries=deliveries, delivering=delivering)
            outcome.requests += step.requests
            outcome.pages += step.pages
            outcome.queued += step.queued
            if step.meta is None:  # its lease was given back where it failed
                outcome.error, outcome.skipped, outcome.meta = step.error, step.skipped, None
                outcome.elsewhere = step.elsewhere
                return outcome
            meta = outcome.meta
            assert meta is not None
            for name in ("newFollows", "unfollows"):
                meta[name] += step.meta.get(name, 0)
            meta["baseline"] = meta["baseline"] or step.meta["baseline"]
            meta["warnings"] += step.meta["warnings"]
        return outcome

    def _poll_trigger(self, handle: str, operation: str, inputs: dict[str, Any], source: str,
                      *, scheduled: bool = True, last: bool = True,
                      deliveries: DeliveryPass | None = None,
                      delivering: list[Future[None]] | None = None) -> HandlePoll:
        """Poll `handle` with one trigger and commit. The commit gives the handle's lease back
        in its transaction when this is the last trigger and its state holds the lease."""
        key = state_key(handle)
        holds_lease = last and state_key(handle, operation) == key
        if self.stopping:
            self._release(key)
            return HandlePoll(handle, skipped=True)
        if not self._outage.check():
            self._release(key)
            return HandlePoll(handle, error=self._outage.error)
        paced = PacedClient(self.client, self.pacer)
        delivers_now = deliveries is not None and delivering is not None
        next_in = self._chosen[handle] = self._schedule.next_in()
        if not scheduled:
            next_in = None
        try:
            batch = self.store.poll_prepared({**inputs, "handle": handle}, source,
                                             client=paced, locked=False, operation=operation)
            # Follows this poll delivers at once are claimed as they are queued: no other
            # deliverer takes them meanwhile, and no second look at the outbox is needed.
            claim = (EventClaim(self.owner, self.deliverer.claim_for)
                     if delivers_now and len(batch.items) <= CLAIM_CHUNK else None)
            with batch:
                queued = batch.commit(outbox=True, lease=Lease(self.owner, next_in)
                                      if holds_lease else None, claim=claim)
            if last and not holds_lease:
                self._release(key, polled=True, next_in=next_in)
        except StateConflict:
            # Another watcher polled it meanwhile (this one's lease had run out) and saved
            # first: its result stands, this one's is dropped, nothing is queued twice.
            log.info("@%s: polled by another watcher meanwhile; this poll's result dropped",
                     handle)
            self._release(key)
            return HandlePoll(handle, elsewhere=True, requests=paced.requests,
                              pages=paced.pages)
        except Stopped:
            self._release(key)
            return HandlePoll(handle, skipped=True, requests=paced.requests, pages=paced.pages)
        except DatabaseUnavailable as exc:
            # Its state is as it was (or, a commit whose answer was lost, saved): polled again
            # once the database is back. The outage is said once, not per handle.
            self._outage.report(exc)
            self._release(key)
            return HandlePoll(handle, error=exc, requests=paced.requests, pages=paced.pages)
        except Exception as exc:
            # One handle's trouble (404, a rename, a timeout, even a bug) must not stop the
            # others; its state is untouched, so its next poll starts from the same place.
            self._release(key, polled=True, next_in=next_in)
            outcome = HandlePoll(handle, error=exc, requests=paced.requests, pages=paced.pages)
            if isinstance(exc, ConnectorError):
                log.info("@%s: failed: %s", handle, exc.message)
            else:
                log.exception("@%s: failed unexpectedly", handle)
            return outcome
        meta = batch.meta
        found = (plural(meta["unfollows"], "unfollow") if "unfollows" in meta else
                 plural(meta["newFollows"], "new follow"))
        if log.isEnabledFor(logging.INFO):
            log.info("@%s: %s%s (%d queued), %s, %d credits", handle,
                     "baseline taken, " if meta["baseline"] else "", found, queued,
                     plural(paced.requests, "request"), meta["creditsUsed"])
            for warning in meta.get("warnings", ()):
                log.info("@%s: %s", handle, warning)
        if queued and delivers_now:
            # Delivered now, while the other polls wait for the API, not after all of them.
            delivering.append(self._deliver_pool.submit(self._deliver_now, handle, deliveries,
                                                        batch.claimed))
        return HandlePoll(handle, meta=meta, queued=queued, requests=paced.requests,
                          pages=paced.pages)

    def _deliver_now(self, handle: str, deliveries: DeliveryPass,
                     claimed: list[OutboxEvent]) -> None:
        try:
            if claimed:
                self.deliverer.deliver_claimed(claimed, deliveries)
            else:
                self.deliverer.deliver_handle(handle, deliveries)
        except DatabaseUnavailable as exc:  # the closing pass tries them once it is back
            self._outage.report(exc)
        except Exception:  # the cycle's closing pass tries them again
            log.exception("@%s: delivering its new follows failed unexpectedly", handle)

    def _release(self, key: str, *, polled: bool = False, next_in: float | None = None) -> None:
        """Give a poll lease back; if that fails, it simply runs out."""
        try:
            self.store.database.release_poll(key, self.owner, polled=polled, next_in=next_in)
        except DatabaseUnavailable as exc:
            self._outage.report(exc)
        except Exception as exc:
            log.warning("releasing the lease of %s failed (it runs out by itself): %s", key, exc)


def _triggers_for(events: Iterable[str]) -> list[str]:
    """The triggers to poll for the event kinds asked for, in the order given."""
    kinds = [events] if isinstance(events, str) else list(events)
    wrong = [k for k in kinds if k not in TRIGGERS]
    if wrong or not kinds:
        raise InputError(f"events must be some of {', '.join(TRIGGERS)}; got "
                         f"{', '.join(map(str, wrong)) or 'none'}", field="events")
    return [TRIGGERS[k].key for k in dict.fromkeys(kinds)]


def _inputs_for(operation: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The watch options a trigger takes (firstRun is the follow trigger's, reconcileEvery
    the unfollow trigger's), those that were given."""
    from ..core.manifests import load

    accepted = load(operation)["input"]["properties"]
    return {k: v for k, v in inputs.items() if v is not None and k in accepted}


def _check_options(inputs: dict[str, Any], operations: list[str]) -> None:
    """An option none of the watched triggers takes is a mistake, not something to ignore."""
    for name, value in inputs.items():
        if value is not None and not any(name in _inputs_for(op, {name: value})
                                         for op in operations):
            kinds = [k for k, op in TRIGGERS.items() if name in _inputs_for(op.key, {name: value})]
            raise InputError(f"{name} applies only when watching {' or '.join(kinds) or '?'} "
                             f"events", field=name)


def unique_handles(handles: Iterable[str]) -> tuple[str, ...]:
    if isinstance(handles, str):
        handles = [handles]
    out = tuple(dict.fromkeys(normalize_handle(h) for h in handles))
    if not out:
        raise InputError("no handles to watch: give at least one TikTok handle", field="handle")
    return out
