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
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from ..core.budget import PERIODS, Budget
from ..core.config import RetryPolicy, Timeouts
from ..core.errors import InputError
from ..core.http import PageSource, client_for
from ..operations import FOLLOWED, prepare
from ..storage import (
    Backlog,
    Database,
    DatabaseUnavailable,
    new_owner,
)
from ..store import Store
from .arguments import check_options, check_spending, inputs_for, triggers_for
from .arguments import unique_handles as unique_handles
from .delivery import DEFAULT_MAX_ATTEMPTS, Backoff, Deliverer
from .outage import Outage, Reconnect
from .pacing import Pacer
from .poller import Poller
from .spend import BUDGET_NAME, Spender
from .summary import BudgetLevel, CycleSummary, DeliveryPass, HandlePoll
from .sweep import sweep
from .timing import Timing
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
#: How long a claimed handle is this watcher's if it stops answering: a watcher whose process
#: died is known at once (its liveness mark), and its handles are taken over within
#: sweep.TAKEOVER_RECHECK; one whose machine vanished, after this. Longer than a poll takes, or
#: another watcher would poll it too (harmlessly: only one of the two can save).
DEFAULT_LEASE = 300.0
#: A `--once` cycle waiting for handles that another watcher holds looks again after
#: FIRST_RECHECK, then twice as long each time, up to RECHECK: such a handle is usually a poll
#: in flight there, done within the API's latency, and a second of waiting for it was most of
#: what a second worker added to a cycle.
FIRST_RECHECK = 0.05
RECHECK = 1.0


class Watcher:
    """Watches handles for new follows and delivers each one to a webhook, through the outbox.

    `budget` ("100000/month", or a core.budget.Budget) caps the credits it spends, with every
    watcher of the same database; `schedule` is "fixed" (every `interval`) or "adaptive" (by
    each handle's activity, within `min_interval` and `max_interval`), adaptive by default with
    a budget (docs/scheduling.md)."""

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
        operations = triggers_for(events)
        check_options(inputs, operations)
        if lease <= 0:
            raise InputError("lease must be longer than zero", field="lease")
        budget, kind = check_spending(budget, schedule, interval, min_interval, max_interval,
                                      len(operations))
        # Checked once for every handle: only the handle differs between their polls.
        self.plans = [(key, *prepare(key, {**inputs_for(key, inputs),
                                            "handle": self.handles[0]}))
                      for key in operations]
        self.interval = interval
        self.concurrency = concurrency
        self.lock_timeout = lock_timeout
        self.lease = lease
        #: This watcher's name on its leases and claims.
        self.owner = new_owner()
        self._stop = threading.Event()
        with ExitStack() as owned:  # all closed at once if any of them fails
            if isinstance(webhook, str):
                webhook = owned.enter_context(Webhook(webhook, pool_size=concurrency))
            self.webhook = webhook
            self.client = owned.enter_context(client_for(
                client, credentials=credentials, retry=retry, timeouts=timeouts,
                pool_size=concurrency))
            if not isinstance(store, Store):
                store = owned.enter_context(Store(store))
            self.store = store
            # Marked alive: if this process dies, other watchers take its leases and claims
            # over at once, not when they run out.
            owned.enter_context(store.database.worker(self.owner))
            self._owned = owned.pop_all()
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
        self._last_backlog = Backlog(0, 0, None)
        bucket = (store.database.bucket(BUDGET_NAME, budget, self.owner)
                  if budget is not None else None)
        self.spender = Spender(bucket)
        self.timing = Timing(self.handles, interval, schedule=kind, bucket=bucket,
                             share=budget_share, min_interval=min_interval,
                             max_interval=max_interval, jitter=jitter)
        # Deliveries of what a poll just committed: a thread of their own, so a poll slot is
        # free for the next handle while its webhook POSTs are under way. Entered first, so
        # it is shut down after the polls that hand it work (last in, first out).
        self._deliver_pool = self._owned.enter_context(
            ThreadPoolExecutor(concurrency, thread_name_prefix="watch-deliver"))
        self._pool = self._owned.enter_context(
            ThreadPoolExecutor(concurrency, thread_name_prefix="watch-poll"))
        self.poller = Poller(store=store, client=self.client, pacer=self.pacer,
                             owner=self.owner, plans=self.plans,
                             deliverer=self.deliverer, outage=self._outage,
                             deliver_pool=self._deliver_pool, timing=self.timing,
                             spender=self.spender, stop=self._stop,
                             period=budget.seconds if budget is not None else PERIODS["day"])
        # Closing settles first what the database was away for.
        self._owned.callback(self.poller.settle_late)

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
        outcomes, waiting = sweep(self, self.handles, started, deliveries)
        pause = FIRST_RECHECK
        while waiting and not self.stopping:
            if not self._outage.check():
                give_up = give_up or time.monotonic() + self._outage.policy.patience
                if not self._outage.wait(until=give_up):
                    break
            else:
                self._stop.wait(min(max(min(waiting.values()), MIN_IDLE), pause))
                pause = min(2 * pause, RECHECK)
            more, waiting = sweep(self, waiting, started, deliveries)
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
                    outcomes, later = sweep(self, due, None, deliveries)
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
                view = bucket.view()
                summary.budget = f"budget {bucket.budget}, {view.level:.0f} in hand"
                summary.bucket = BudgetLevel(view.level, view.held, bucket.budget.capacity,
                                             view.at)
                if self.metrics is not None:
                    self.metrics.set_budget(summary.bucket)
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

    def _deliver_pass(self, deliveries: DeliveryPass) -> None:
        """The closing delivery pass of a sweep (`run_pass`); the database going away ends
        it, and holds what it did not try."""
        try:
            self.deliverer.run_pass(into=deliveries)
        except DatabaseUnavailable as exc:
            self._outage.report(exc)

    # Polling

    def poll(self, handles: Iterable[str],
             deliveries: DeliveryPass | None = None) -> list[HandlePoll]:
        """Poll those of `handles` that are due and that no other watcher holds, at most
        `concurrency` at a time; each commits its follows to the outbox. A failing handle is
        an outcome with an error, never an exception; one polled or held by another watcher is
        an outcome marked `elsewhere`."""
        outcomes, later = sweep(self, handles, None, deliveries)
        return outcomes + [HandlePoll(h, elsewhere=True) for h in later
                           if not any(o.handle == h for o in outcomes)]
