"""Bounded work per upstream: how many `serve` requests may call an upstream at once, so that a
slow upstream cannot take every thread from /healthz and from other callers.

A request to the service's own upstream (`DUMPLINGAI_BASE_URL`, else DumplingAI) takes a slot,
or waits its turn for one (a bounded number wait, each for a bounded time). A request to an
upstream the caller names itself (`credentials.baseUrl`, with its own key) may only use half
of the slots, all such upstreams together, and never waits: past that it is refused at once
with 503, so a caller pointing at a host that trickles its answers holds a few threads, not
all of them. Threads beyond the slots and the waiting room are kept for the routes that call
nothing (/healthz, the manifests, refusals).
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit


class UpstreamSlots:
    """Counts the requests calling an upstream; `acquire` says whether one more may."""

    def __init__(self, slots: int, *, waiting: int, wait_s: float) -> None:
        #: Requests that call an upstream at once.
        self.slots = max(1, slots)
        #: Of those, at most this many to upstreams callers named.
        self.named = max(1, self.slots // 2)
        #: Requests for the service's own upstream that may wait for a slot, and how long.
        self.waiting = waiting
        self.wait_s = wait_s
        self._cond = threading.Condition()
        self._busy = 0
        self._busy_named = 0
        self._waiters = 0

    def acquire(self, own: bool) -> bool:
        """Take a slot for a request to the service's own upstream (`own`) or to one the
        caller named. False: none free; answer 503 and call nothing."""
        with self._cond:
            if not own:
                if self._busy >= self.slots or self._busy_named >= self.named:
                    return False
                self._busy_named += 1
            elif self._busy >= self.slots:
                if self._waiters >= self.waiting:
                    return False
                self._waiters += 1
                try:
                    if not self._cond.wait_for(lambda: self._busy < self.slots, self.wait_s):
                        return False
                finally:
                    self._waiters -= 1
            self._busy += 1
            return True

    def release(self, own: bool) -> None:
        with self._cond:
            self._busy -= 1
            if not own:
                self._busy_named -= 1
            self._cond.notify()


def same_origin(url: str, other: str) -> bool:
    """Whether two base URLs reach the same server (scheme, host and port)."""
    try:
        a, b = urlsplit(url.strip()), urlsplit(other.strip())
        return (a.scheme.lower(), a.hostname, a.port or _PORTS.get(a.scheme.lower())) == \
            (b.scheme.lower(), b.hostname, b.port or _PORTS.get(b.scheme.lower()))
    except ValueError:
        return False


_PORTS = {"http": 80, "https": 443}
