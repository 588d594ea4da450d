"""A sweep of a watcher (watcher.py): claim the due handles in the database, a batch at a
time, and poll those granted (poller.py) a few at a time; for each of the others, the seconds
until it is worth asking about again."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from ..storage import DatabaseUnavailable
from ..store import state_key
from .summary import DeliveryPass, HandlePoll

if TYPE_CHECKING:  # pragma: no cover
    from .watcher import Watcher

log = logging.getLogger("connector.watch")

#: A running watch asks again about a handle another watcher holds after this long (or when
#: its lease ends, if sooner): that watcher's poll is usually done by then, and if its process
#: died the database says so and this one takes the handle over, rather than a lease later.
TAKEOVER_RECHECK = 5.0


def sweep(watcher: Watcher, handles: Iterable[str], cycle_start: float | None,
          deliveries: DeliveryPass | None = None
          ) -> tuple[list[HandlePoll], dict[str, float]]:
    """Claim and poll `handles`, a few more claimed than are in flight so the pool never
    idles and no lease waits long. Due means: not polled since `cycle_start` (a monotonic
    time: a `--once` cycle), or, when None, its interval has passed. Returns the outcomes
    of the polls made, and for each handle not polled here the seconds until it is worth
    asking again (held by another: what is left of its lease, in a running watch at most
    TAKEOVER_RECHECK; polled by another: its next due time);
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
    window = 2 * watcher.concurrency
    database = watcher.store.database
    while pending or running:
        # Claim in batches: a claim is a transaction that every poll's commit waits
        # behind, so refill only once half the window is done, a batch at a time.
        if pending and not watcher._outage.check():  # polled once the database is back
            later.update(dict.fromkeys(pending, 0.0))
            pending = []
            continue
        if pending and len(running) <= window - watcher.concurrency and not watcher.stopping:
            chunk, pending = (pending[:window - len(running)],
                              pending[window - len(running):])
            within = None if cycle_start is None else time.monotonic() - cycle_start
            try:
                claim = database.claim_polls([state_key(h) for h in chunk], watcher.owner,
                                             lease_for=watcher.lease, polled_within=within)
            except DatabaseUnavailable as exc:
                watcher._outage.report(exc)
                later.update(dict.fromkeys(chunk, 0.0))
                continue
            except Exception as exc:  # these handles wait a turn
                log.warning("claiming %d handles failed: %s", len(chunk), exc)
                outcomes += [HandlePoll(h, error=exc) for h in chunk]
                continue
            for key in claim.granted:
                handle = by_key[key]
                if key in claim.stored:
                    watcher.timing.restore(handle, *claim.stored[key])
                future = watcher._pool.submit(watcher.poller.poll, handle, cycle_start is None,
                                           deliveries, delivering)
                running[future] = handle
                future.add_done_callback(finished.put)
            for key, seconds in claim.busy.items():
                # Asked again soon, not when its lease runs out: a worker that died is
                # taken over once the database knows (at once, for a process that died).
                later[by_key[key]] = (min(seconds, TAKEOVER_RECHECK) if cycle_start is None
                                      else seconds)
            for key, seconds in claim.later.items():
                if cycle_start is None:
                    later[by_key[key]] = seconds
                else:  # polled elsewhere in this cycle: nothing to wait for
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
        if watcher.metrics is not None:
            watcher.metrics.record_poll(outcome)
        if isinstance(outcome.error, DatabaseUnavailable) and not watcher.stopping:
            later[outcome.handle] = 0.0  # polled again once the database is back
    for future in delivering:
        future.result()
    return outcomes, later
