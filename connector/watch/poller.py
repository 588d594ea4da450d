"""One handle's poll, once the watcher holds its lease (watcher.py): its credits reserved from
the budget, each watched trigger read and committed with its new follows as outbox events,
and its next poll time, what is known of it and its credits written in the same transaction.

The next poll time comes after the poll, from what it found (timing.py). A poll the budget
cannot pay for now gives its lease back, due again when the credits are there: it is
`waiting`, not failed. Credits reserved for a poll are settled when it is done, however it
ends.
"""

from __future__ import annotations

import logging
import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..core.config import CREDITS_PER_REQUEST, plural
from ..core.errors import ConnectorError
from ..core.http import PageSource
from ..storage import DatabaseUnavailable, EventClaim, Lease, OutboxEvent, StateConflict
from ..store import Batch, Store, state_key
from .delivery import CLAIM_CHUNK, Deliverer
from .outage import Outage
from .pacing import PacedClient, Pacer, Stopped
from .spend import Grant, Spender
from .summary import DeliveryPass, HandlePoll
from .timing import Next, Timing

log = logging.getLogger("connector.watch")

#: A poll waiting for credits that only polls in flight can free asks again after this.
CREDIT_RECHECK = 5.0
#: ... and never sooner than this (the bucket's own answer may be a hair early).
MIN_CREDIT_WAIT = 1.0


class Poller:
    """Polls one claimed handle at a time (from many threads); what a Watcher polls with."""

    def __init__(self, *, store: Store, client: PageSource, pacer: Pacer, owner: str,
                 plans: list[tuple[str, dict[str, Any], str]], deliverer: Deliverer,
                 outage: Outage, deliver_pool: ThreadPoolExecutor, timing: Timing,
                 spender: Spender, stop: threading.Event, period: float) -> None:
        self.store = store
        self.client = client
        self.pacer = pacer
        self.owner = owner
        self.plans = plans
        self.deliverer = deliverer
        self.outage = outage
        self.deliver_pool = deliver_pool
        self.timing = timing
        self.spender = spender
        self.stop = stop
        #: The period, in seconds, of the per-handle credit counters (the budget's, or a day).
        self.period = period
        #: The page budget each trigger asks for: what a poll reserves.
        self.wants = [int(inputs.get("maxPages") or 1) for _, inputs, _ in plans]
        #: The seconds until its next poll that each poll gave its handle (the watch loop
        #: takes them).
        self.chosen: dict[str, float] = {}
        #: Reservations whose settling the database was away for: settled at the next poll.
        self._unsettled: list[tuple[Grant, int]] = []
        self._settle_lock = threading.Lock()
        #: What the last good poll of each handle said of its list (`status` shows it).
        self._facts: dict[str, dict[str, Any]] = {}

    def poll(self, handle: str, scheduled: bool, deliveries: DeliveryPass | None,
             delivering: list[Future[None]]) -> HandlePoll:
        """Poll one claimed handle with each watched trigger and commit. `scheduled`: a running
        watch's poll, which sets the handle's next due time for every watcher; a `--once` poll
        leaves it as it was. Given `deliveries`, new events go out at once (in `delivering`).
        The lease is the handle's (its follow state's key); with both triggers, each commits
        its own state, and the lease is given back after the last."""
        key = state_key(handle)
        if self.stop.is_set():
            self._release(key)
            return HandlePoll(handle, skipped=True)
        if not self.outage.check():
            self._release(key)
            return HandlePoll(handle, error=self.outage.error)
        grant = None
        if self.spender.bucket is not None:
            try:
                self.settle_late()
                grant = self.spender.start(self.wants)
                wait = self.spender.ready_in(self.wants) if grant is None else 0.0
            except Exception as exc:  # the budget's row could not be read: not polled now
                if isinstance(exc, DatabaseUnavailable):
                    self.outage.report(exc)
                else:
                    log.warning("@%s: reserving its credits failed: %s", handle, exc)
                self._release(key)
                return HandlePoll(handle, error=exc)
            if grant is None:
                # Asked again when the credits are there; if only polls in flight can free
                # them (inf), after CREDIT_RECHECK.
                wait = CREDIT_RECHECK if math.isinf(wait) else max(MIN_CREDIT_WAIT, wait)
                self.chosen[handle] = wait
                self._release(key, next_in=wait if scheduled else None)
                return HandlePoll(handle, waiting=True)
        paced = PacedClient(self.client, self.pacer)
        try:
            return self._poll(handle, key, grant, paced, scheduled, deliveries, delivering)
        finally:
            if grant is not None:
                self._settle(grant, paced.pages)

    def _poll(self, handle: str, key: str, grant: Grant | None, paced: PacedClient,
              scheduled: bool, deliveries: DeliveryPass | None,
              delivering: list[Future[None]]) -> HandlePoll:
        metas: list[dict[str, Any]] = []
        queued = 0
        remembered: int | None = None
        for n, (operation, inputs, source) in enumerate(self.plans):
            last = n == len(self.plans) - 1
            holds_lease = last and state_key(handle, operation) == key
            values = {**inputs, "handle": handle}
            if grant is not None:
                values["maxPages"] = grant.pages[n]
            try:
                batch = self.store.poll_prepared(values, source, client=paced, locked=False,
                                                 operation=operation)
                metas.append(batch.meta)
                remembered = batch.remembered if remembered is None else remembered
                lease = None
                if last:
                    then = self.timing.polled(handle, metas)
                    if then.report:
                        log.info("@%s: %s", handle, then.report)
                    self._facts[handle] = _facts(metas, paced.total, remembered)
                    lease = self._lease(handle, then, paced, scheduled)
                # Follows this poll delivers at once are claimed as they are queued: no other
                # deliverer takes them meanwhile, and no second look at the outbox is needed.
                claim = (EventClaim(self.owner, self.deliverer.claim_for)
                         if deliveries is not None and len(batch.items) <= CLAIM_CHUNK else None)
                with batch:
                    step = batch.commit(outbox=True, lease=lease if holds_lease else None,
                                        claim=claim)
                queued += step
                if lease is not None and not holds_lease:
                    self._release(key, lease=lease)
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
                return HandlePoll(handle, skipped=True, requests=paced.requests,
                                  pages=paced.pages)
            except DatabaseUnavailable as exc:
                # Its state is as it was (or, a commit whose answer was lost, saved): polled
                # again once the database is back. The outage is said once, not per handle.
                self.outage.report(exc)
                self._release(key)
                return HandlePoll(handle, error=exc, requests=paced.requests, pages=paced.pages)
            except Exception as exc:
                return self._failed(handle, key, exc, paced, scheduled)
            self._log(handle, batch, step, paced if len(self.plans) == 1 else None)
            if step and deliveries is not None:
                # Delivered now, while the other polls wait for the API, not after all of them.
                delivering.append(self.deliver_pool.submit(self._deliver_now, handle,
                                                           deliveries, batch.claimed))
        return HandlePoll(handle, meta=_outcome_meta(metas), queued=queued,
                          requests=paced.requests, pages=paced.pages, health=then.health.status)

    def _failed(self, handle: str, key: str, exc: Exception, paced: PacedClient,
                scheduled: bool) -> HandlePoll:
        """One handle's trouble (404, a rename, a timeout, even a bug) must not stop the
        others; its state is untouched, so its next poll starts from the same place. It is
        backed off if its list is hidden or it keeps failing, and said once."""
        then = self.timing.failed(handle, exc)
        self._release(key, lease=self._lease(handle, then, paced, scheduled))
        if then.report:
            log.warning("@%s: %s", handle, then.report)
        if isinstance(exc, ConnectorError):
            log.info("@%s: failed: %s", handle, exc.message)
        else:
            log.exception("@%s: failed unexpectedly", handle)
        return HandlePoll(handle, error=exc, requests=paced.requests, pages=paced.pages,
                          health=then.health.status)

    def _lease(self, handle: str, then: Next, paced: PacedClient, scheduled: bool) -> Lease:
        """The lease given back with the poll: next due `then` (unless `--once`; the watch
        loop takes it from `chosen`), what is known of the handle (what its last good poll
        found), and what the poll cost."""
        self.chosen[handle] = then.delay
        activity, health = then.kept(self._facts.get(handle))
        self.timing.wrote(handle, activity, health)
        # The period is the database's (its clock, in the statement that writes them).
        return Lease(self.owner, then.delay if scheduled else None, activity=activity,
                     health=health, credits=paced.pages * CREDITS_PER_REQUEST,
                     period=self.period)

    def _log(self, handle: str, batch: Batch, queued: int, paced: PacedClient | None) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        meta = batch.meta
        found = (plural(meta["unfollows"], "unfollow") if "unfollows" in meta else
                 plural(meta["newFollows"], "new follow"))
        requests = f"{plural(paced.requests, 'request')}, " if paced is not None else ""
        log.info("@%s: %s%s (%d queued), %s%d credits", handle,
                 "baseline taken, " if meta["baseline"] else "", found, queued, requests,
                 meta["creditsUsed"])
        for warning in meta.get("warnings", ()):
            log.info("@%s: %s", handle, warning)

    def _deliver_now(self, handle: str, deliveries: DeliveryPass,
                     claimed: list[OutboxEvent]) -> None:
        try:
            if claimed:
                self.deliverer.deliver_claimed(claimed, deliveries)
            else:
                self.deliverer.deliver_handle(handle, deliveries)
        except DatabaseUnavailable as exc:  # the closing pass tries them once it is back
            self.outage.report(exc)
        except Exception:  # the cycle's closing pass tries them again
            log.exception("@%s: delivering its new follows failed unexpectedly", handle)

    def _settle(self, grant: Grant, pages: int) -> None:
        try:
            self.spender.finish(grant, pages)
        except Exception as exc:  # kept, and settled at the next poll
            with self._settle_lock:
                self._unsettled.append((grant, pages))
            if isinstance(exc, DatabaseUnavailable):
                self.outage.report(exc)
            else:
                log.warning("settling a poll's credits failed (tried again): %s", exc)

    def settle_late(self) -> None:
        """Settle what the database was away for: before a poll, and as the watcher stops
        (what fails again is kept: the database is still away)."""
        with self._settle_lock:
            late, self._unsettled = self._unsettled, []
        for grant, pages in late:
            self._settle(grant, pages)

    def _release(self, key: str, *, next_in: float | None = None,
                 lease: Lease | None = None) -> None:
        """Give a poll lease back: not polled (due again in `next_in`, if given), or polled,
        with what `lease` keeps. If that fails, it simply runs out."""
        try:
            self.store.database.release_poll(key, lease or Lease(self.owner, next_in,
                                                                 polled=False))
        except DatabaseUnavailable as exc:
            self.outage.report(exc)
        except Exception as exc:
            log.warning("releasing the lease of %s failed (it runs out by itself): %s", key, exc)


def _outcome_meta(metas: list[dict[str, Any]]) -> dict[str, Any]:
    """The meta of a poll's one trigger, or the sums of its triggers'."""
    if len(metas) == 1:
        return metas[0]
    return {"newFollows": sum(m.get("newFollows", 0) for m in metas),
            "unfollows": sum(m.get("unfollows", 0) for m in metas),
            "baseline": any(m["baseline"] for m in metas),
            "warnings": [w for m in metas for w in m["warnings"]]}


def _facts(metas: list[dict[str, Any]], total: int | None, remembered: int | None
           ) -> dict[str, Any]:
    """What `status` shows of a handle's list, from its last poll: its size as the upstream
    says, the accounts the watch has seen on it, whether new follows are left to read, and
    whether the list is deeper than the upstream lists."""
    # The first trigger's figures stand.
    return {"catchingUp": any(m.get("catchingUp") for m in metas),
            "atDepthCap": any(m.get("atDepthCap") for m in metas),
            "total": next((m["total"] for m in metas if isinstance(m.get("total"), int)), total),
            "seen": next((m["tracked"] for m in metas if isinstance(m.get("tracked"), int)),
                         remembered)}

