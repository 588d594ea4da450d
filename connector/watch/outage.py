"""When the state database goes away (a restart, its sessions cut, the network): one line when
it does, polls and deliveries paused, reconnection with backoff, and on with the work when it is
back.

Nothing is lost meanwhile: a poll whose commit failed left its handle's state as it was (it is
polled again once the database is back), and an event stays in the outbox until a delivery is
recorded there. A watcher whose liveness mark was cut (storage/database.py `worker`) is in an
outage too, even while its other sessions work: other workers may take its leases and claims
until it is marked again, so it acts on none of them.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..storage import Database, DatabaseUnavailable

log = logging.getLogger("connector.watch")


@dataclass(frozen=True)
class Reconnect:
    """Seconds between attempts to reach a database that went away: `first`, then twice as
    long each time up to `cap`, less up to `jitter` of it (so workers that lost the database
    together do not all knock at once when it is back). A `--once` cycle gives up on what is
    left after `patience`; a running watch waits as long as it takes."""

    first: float = 0.5
    cap: float = 30.0
    jitter: float = 0.25
    patience: float = 120.0

    def delay(self, attempt: int, draw: float = 0.0) -> float:
        """The wait after failed attempt `attempt` (0: the first)."""
        return min(self.cap, self.first * 2.0 ** min(attempt, 32)) * (1 - self.jitter * draw)


def mark_stands(database: Database, owner: str,
                report: Callable[[DatabaseUnavailable], None]) -> bool:
    """Whether `owner`'s liveness mark stands. Once it was cut (`report` is told), another
    worker may hold its leases and claims, and acting on them here too would do it twice."""
    if database.holds_mark(owner):
        return True
    report(DatabaseUnavailable(f"the state database {database.location} cut the session that "
                               "marks this watcher alive"))
    return False


class Outage:
    """Whether the state database is away for one watcher, and the wait for it to come back.

    `report()` may be called from any thread, as often as calls fail: the outage is logged once.
    `wait()` is for the thread that runs the cycles, between them, when nothing that claimed
    work is in flight (`Database.recover` re-takes a lost mark)."""

    def __init__(self, database: Database, owner: str, stop: threading.Event,
                 policy: Reconnect | None = None) -> None:
        self.database = database
        self.owner = owner
        self.stop = stop
        self.policy = policy or Reconnect()
        #: What began the outage; None while the database is there.
        self.error: DatabaseUnavailable | None = None
        self._since = 0.0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.error is not None

    def report(self, error: DatabaseUnavailable) -> None:
        """A database call failed with `error`: the outage begins (said once, whoever reports
        it and however many calls fail)."""
        with self._lock:
            if self.error is not None:
                return
            self.error, self._since = error, time.monotonic()
        log.warning("%s; polls and deliveries wait until it is back (reconnecting with "
                    "backoff, nothing is lost)", error.message)

    def check(self) -> bool:
        """Whether work may go on now: no outage, and this watcher's liveness mark stands (a
        lost one begins an outage)."""
        if self.error is None:
            mark_stands(self.database, self.owner, self.report)
        return self.error is None

    def wait(self, until: float | None = None) -> bool:
        """Try to reach the database until it answers (True), waiting longer after each
        failed try; False when watch stops first, or the monotonic time `until` comes."""
        attempt = 0
        while self.error is not None:
            with contextlib.suppress(DatabaseUnavailable):  # not yet: wait, and try again
                self.database.recover(self.owner)
                log.info("the state database %s is back after %.1fs; polls and deliveries go "
                         "on", self.database.location, time.monotonic() - self._since)
                self.error = None
                return True
            pause = self.policy.delay(attempt, random.random())
            attempt += 1
            if until is not None:
                left = until - time.monotonic()
                if left <= 0:
                    return False
                pause = min(pause, left)
            if self.stop.wait(pause):
                return False
        return True
