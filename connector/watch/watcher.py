"""The watcher: polls many handles into the outbox, and delivers the outbox to a webhook.

    with Watcher(["alice", "bob"], "https://hooks.example/abc", store="watch.db") as w:
        summary = w.run_cycle()      # one cycle, like `watch --once`
        w.run(on_summary=lambda s: print(s.line()))   # or: until w.stop()

Each poll commits the trigger's new state and its new follows as outbox events in one
transaction (`Batch.commit(outbox=True)`); delivery removes an event only after a 2xx. So a
crash at any moment repeats work, and loses none: at-least-once, with the event id in the
`Idempotency-Key` header for receivers that want exactly-once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

from ..core.config import RetryPolicy, Timeouts
from ..core.errors import ConnectorError, InputError
from ..core.handles import normalize_handle
from ..core.http import PageSource, client_for
from ..operations import prepare, trigger
from ..polling import Store
from ..storage import Database
from .delivery import DEFAULT_MAX_ATTEMPTS, Backoff, Deliverer, DeliveryPass
from .pacing import PacedClient, Pacer, Stopped
from .schedule import Schedule
from .summary import CycleSummary, HandlePoll
from .webhook import Webhook

log = logging.getLogger("connector.watch")

DEFAULT_INTERVAL = 900.0
DEFAULT_CONCURRENCY = 4
#: A running watch looks at the outbox at least this often, so events put back by
#: `outbox retry` from another process go out within a minute.
MAX_IDLE = 60.0
#: Never spin: a zero backoff (tests) would otherwise retry in a tight loop.
MIN_IDLE = 0.05


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
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: Backoff | None = None,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        jitter: float = 0.1,
        lock_timeout: float = 30.0,
    ) -> None:
        # Everything that can be wrong with the arguments fails here, before any request.
        self.handles = _unique_handles(handles)
        if interval <= 0:
            raise InputError("interval must be longer than zero", field="interval")
        if concurrency < 1:
            raise InputError("concurrency must be at least 1", field="concurrency")
        if max_attempts < 1:
            raise InputError("max attempts must be at least 1", field="maxAttempts")
        inputs = {"count": count, "maxPages": max_pages, "firstRun": first_run}
        inputs = {k: v for k, v in inputs.items() if v is not None}
        # Checked once for every handle: only the handle differs between their polls.
        self.inputs, self.source = prepare(trigger.KEY, {**inputs, "handle": self.handles[0]})
        self.interval = interval
        self.concurrency = concurrency
        self.jitter = jitter
        self.lock_timeout = lock_timeout
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
        except BaseException:
            self.close()
            raise
        self.pacer = pacer or Pacer()
        self.pacer.stop = self._stop
        self.deliverer = Deliverer(store.database, webhook, handles=self.handles,
                                   max_attempts=max_attempts, backoff=backoff,
                                   concurrency=concurrency, stop=self._stop)
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
        """Poll every handle once, then deliver what is due: one cycle, like `watch --once`."""
        summary = CycleSummary(len(self.handles))
        deliveries = DeliveryPass()
        for outcome in self.poll(self.handles, deliveries):
            summary.record_poll(outcome)
        summary.record_delivery(self.deliverer.run_pass(into=deliveries))
        return self._finish(summary)

    def run(self, on_summary: Callable[[CycleSummary], None] | None = None) -> CycleSummary:
        """Poll each handle once per interval (jittered) and deliver as events come due, until
        `stop()`. `on_summary` gets each interval's summary, and the last partial one."""
        mono = time.monotonic
        schedule = Schedule(self.handles, self.interval, now=mono(), jitter=self.jitter)
        summary = CycleSummary(len(self.handles))
        period_end = mono() + self.interval
        log.info("watching %d handles every %gs, %d at a time; webhook %s", len(self.handles),
                 self.interval, self.concurrency, self.webhook)
        while not self.stopping:
            due = schedule.due(mono())
            deliveries = DeliveryPass()
            if due:
                for outcome in self.poll(due, deliveries):
                    summary.record_poll(outcome)
                schedule.polled(due, mono())
            summary.record_delivery(self.deliverer.run_pass(into=deliveries))
            if mono() >= period_end and not self.stopping:
                if on_summary is not None:
                    on_summary(self._finish(summary))
                summary = CycleSummary(len(self.handles))
                while period_end <= mono():
                    period_end += self.interval
            wake = min(schedule.next_at(), period_end, mono() + MAX_IDLE)
            next_due = self.deliverer.backlog().next_due
            if next_due is not None:
                wake = min(wake, mono() + (next_due - time.time()))
            self._stop.wait(max(MIN_IDLE, wake - mono()))
        summary.stopped = True
        self._finish(summary)
        if on_summary is not None:
            on_summary(summary)
        return summary

    def _finish(self, summary: CycleSummary) -> CycleSummary:
        summary.record_backlog(self.deliverer.backlog())
        if self.pacer.last.remaining is not None:
            summary.rate_limit = self.pacer.last
        summary.stopped = summary.stopped or self.stopping
        return summary

    # Polling

    def poll(self, handles: Iterable[str],
             deliveries: DeliveryPass | None = None) -> list[HandlePoll]:
        """Poll `handles` at most `concurrency` at a time; each commits its follows to the
        outbox (and, given `deliveries`, delivers them at once, as part of that pass; they are
        done when this returns). A failing handle is an outcome with an error, never an
        exception."""
        delivering: list[Future[None]] = []
        futures = [self._pool.submit(self._poll_one, h, deliveries, delivering)
                   for h in handles]
        outcomes = [f.result() for f in futures]
        for future in delivering:
            future.result()
        return outcomes

    def _poll_one(self, handle: str, deliveries: DeliveryPass | None = None,
                  delivering: list[Future[None]] | None = None) -> HandlePoll:
        if self.stopping:
            return HandlePoll(handle, skipped=True)
        paced = PacedClient(self.client, self.pacer)
        try:
            batch = self.store.poll_prepared({**self.inputs, "handle": handle}, self.source,
                                             client=paced, lock_timeout=self.lock_timeout)
            with batch:
                queued = batch.commit(outbox=True)
        except Stopped:
            return HandlePoll(handle, skipped=True, requests=paced.requests, pages=paced.pages)
        except Exception as exc:
            # One handle's trouble (404, a rename, a timeout, even a bug) must not stop the
            # others; its state is untouched, so its next poll starts from the same place.
            outcome = HandlePoll(handle, error=exc, requests=paced.requests, pages=paced.pages)
            if isinstance(exc, ConnectorError):
                log.info("@%s: failed: %s", handle, exc.message)
            else:
                log.exception("@%s: failed unexpectedly", handle)
            return outcome
        meta = batch.meta
        if log.isEnabledFor(logging.INFO):
            log.info("@%s: %s%d new follows (%d queued), %d requests, %d credits", handle,
                     "baseline taken, " if meta["baseline"] else "", meta["newFollows"],
                     queued, paced.requests, meta["creditsUsed"])
            for warning in meta.get("warnings", ()):
                log.info("@%s: %s", handle, warning)
        if queued and deliveries is not None and delivering is not None:
            # Delivered now, while the other polls wait for the API, not after all of them.
            delivering.append(self._deliver_pool.submit(self._deliver_now, handle, deliveries))
        return HandlePoll(handle, meta=meta, queued=queued, requests=paced.requests,
                           pages=paced.pages)


    def _deliver_now(self, handle: str, deliveries: DeliveryPass) -> None:
        try:
            self.deliverer.deliver_handle(handle, deliveries)
        except Exception:  # the cycle's closing pass tries them again
            log.exception("@%s: delivering its new follows failed unexpectedly", handle)


def _unique_handles(handles: Iterable[str]) -> tuple[str, ...]:
    if isinstance(handles, str):
        handles = [handles]
    out = tuple(dict.fromkeys(normalize_handle(h) for h in handles))
    if not out:
        raise InputError("no handles to watch: give at least one TikTok handle", field="handle")
    return out
