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
from typing import Any

from ..core.budget import MIN_POLL_PAGES, PERIODS, Budget, parse_budget
from ..core.config import CREDITS_PER_REQUEST, RetryPolicy, Timeouts
from ..core.errors import InputError
from ..core.handles import normalize_handle
from ..core.http import PageSource, client_for
from ..operations import FOLLOWED, TRIGGERS, prepare
from ..storage import (
    Backlog,
    Database,
    DatabaseUnavailable,
    new_owner,
)
from ..store import Store, state_key
from .delivery import DEFAULT_MAX_ATTEMPTS, Backoff, Deliverer, DeliveryPass
from .outage import Outage, Reconnect
from .pacing import Pacer
from .poller import Poller
from .spend import Spender
from .summary import CycleSummary, HandlePoll
from .timing import FIXED, Timing, schedule_kind
from .webhook import Webhook

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
#: A running watch asks again about a handle another watcher holds after this long (or when
#: its lease ends, if sooner): that watcher's poll is usually done by then, and if its process
#: died the database says so and this one takes the handle over, rather than a lease later.
TAKEOVER_RECHECK = 5.0
#: Where the budget's bucket is kept: one budget for every watcher sharing a database.
BUDGET_NAME = "default"
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
        budget: Budget | str | None = None,
        schedule: str | None = None,
        min_interval: float | None = None,
        max_interval: float | None = None,
        budget_share: float = 1.0,
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
        if isinstance(budget, str):
            budget = parse_budget(budget)
        self.budget = budget
        kind = schedule_kind(schedule, budget)
        if kind == FIXED and (min_interval is not None or max_interval is not None):
            raise InputError("min and max intervals bound the adaptive schedule: give "
                             "--schedule adaptive (or a --budget) with them, or leave them out",
                             field="minInterval" if min_interval is not None else "maxInterval")
        if budget is not None and budget.capacity < (MIN_POLL_PAGES * len(operations)
                                                     * CREDITS_PER_REQUEST):
            raise InputError(f"budget {budget}: a tenth of it, the most spent at once, must "
                             f"pay a poll's {MIN_POLL_PAGES} requests for each of the "
                             f"{len(operations)} triggers watched; give at least "
                             f"{MIN_POLL_PAGES * len(operations) * CREDITS_PER_REQUEST * 10}"
                             f"/{budget.period}", field="budget")
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
        self.deliverer = Deliverer(store.database, webhook, handles=self.handles,
                                   max_attempts=max_attempts, backoff=backoff,
                                   concurrency=concurrency, stop=self._stop, owner=self.owner,
                                   on_database_error=self._outage.report)
        #: The outbox as last seen: what a summary shows while the database is away.
        self._last_backlog = Backlog(0, 0, None)
        bucket = (store.database.bucket(BUDGET_NAME, budget, self.owner)
                  if budget is not None else None)
        self.spender = Spender(bucket)
        self.timing = Timing(self.handles, interval, schedule=kind, bucket=bucket,
                             share=budget_share, min_interval=min_interval,
                             max_interval=max_interval, jitter=jitter)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="watch-poll")
        # Deliveries of what a poll just committed: a thread of their own, so a poll slot is
        # free for the next handle while its webhook POSTs are under way.
        self._deliver_pool = ThreadPoolExecutor(concurrency, thread_name_prefix="watch-deliver")
        self.poller = Poller(store=store, client=self.client, pacer=self.pacer,
                             owner=self.owner, plans=[p[:3] for p in self.plans],
                             deliverer=self.deliverer, outage=self._outage,
                             deliver_pool=self._deliver_pool, timing=self.timing,
                             spender=self.spender, stop=self._stop,
                             period=budget.seconds if budget is not None else PERIODS["day"])

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
        poller = getattr(self, "poller", None)
        if poller is not None:
            poller.settle_all()
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
        timing = self.timing
        chosen = self.poller.chosen
        summary = CycleSummary(len(self.handles))
        period_end = mono() + self.interval
        log.info("watching %d handles %s, %d at a time; webhook %s", len(self.handles),
                 f"every {self.interval:g}s" if timing.adaptive is None else
                 f"on the adaptive schedule (from every {self.interval:g}s)",
                 self.concurrency, self.webhook)
        while not self.stopping:
            if not self._outage.check():
                # Until it is back, or the interval's summary is due (then on waiting).
                self._outage.wait(until=period_end)
            if not self._outage.active and not self.stopping:
                due = timing.due()
                deliveries = DeliveryPass()
                if due:
                    # The database has the last word on who polls what when: handles polled
                    # by another watcher, or held by one, come back when they are due there
                    # (and those the database was away for, as soon as it is back).
                    outcomes, later = self._sweep(due, None, deliveries)
                    for outcome in outcomes:
                        summary.record_poll(outcome)
                    for handle in due:
                        given = chosen.pop(handle, None)
                        timing.set(handle, later[handle] if handle in later else
                                   given if given is not None else timing.fallback())
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
            wake = min(mono() + timing.wake_in(), period_end, mono() + MAX_IDLE)
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
        bucket = self.spender.bucket
        if bucket is not None and not self._outage.active:
            try:
                summary.budget = f"budget {bucket.budget}, {bucket.view().level:.0f} in hand"
                notes = [self.spender.take_short(), self.timing.take_short()]
            except DatabaseUnavailable as exc:
                self._outage.report(exc)
                notes = []
            for note in filter(None, notes):
                log.warning("watch: %s", note)
                summary.notes.append(note)
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
                    if key in claim.stored:
                        self.timing.restore(handle, *claim.stored[key])
                    future = self._pool.submit(self.poller.poll, handle, cycle_start is None,
                                               deliveries, delivering)
                    running[future] = handle
                    future.add_done_callback(finished.put)
                for key, seconds in claim.busy.items():
                    # Asked again soon, not when its lease runs out: a worker that died is
                    # taken over once the database knows (at once, for a process that died).
                    later[by_key[key]] = (min(seconds, TAKEOVER_RECHECK) if cycle_start is None
                                          else seconds)
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
            if isinstance(outcome.error, DatabaseUnavailable) and not self.stopping:
                later[outcome.handle] = 0.0  # polled again once the database is back
        for future in list(delivering):
            future.result()
        if cycle_start is not None:
            # Polled elsewhere in this cycle: nothing to wait for.
            done_elsewhere = {o.handle for o in outcomes if o.elsewhere}
            later = {h: s for h, s in later.items() if h not in done_elsewhere}
        return outcomes, later


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
