"""Pacing: many poll threads share one API key, so they share one idea of how fast to go.

When `X-RateLimit-Remaining` runs low, requests are spaced out across all threads (more the
lower it gets). When a request still ends in 429/503 after the HTTP core's own retries,
everyone holds back for a while (the server's Retry-After, or an exponential backoff), instead
of each thread walking into the limit by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.errors import ApiError, ConnectorError, RateLimitError
from ..core.http import Page, PageSource, RateLimit


class Stopped(Exception):
    """Raised inside a poll when watch is stopping: the poll is abandoned uncommitted, which is
    safe (its follows are found again next time)."""


class Pacer:
    """Decides when the next API request may start; shared by all poll threads."""

    def __init__(
        self,
        *,
        low_fraction: float = 0.1,
        max_spacing: float = 5.0,
        backoff_base: float = 10.0,
        backoff_cap: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        stop: threading.Event | None = None,
    ) -> None:
        self.low_fraction = low_fraction
        self.max_spacing = max_spacing
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.clock = clock
        self.stop = stop or threading.Event()
        self._lock = threading.Lock()
        self._spacing = 0.0
        self._last_start = float("-inf")
        self._hold_until = 0.0
        self._strikes = 0
        #: The most recent rate-limit headers seen, for the summary line.
        self.last = RateLimit()

    def hold_remaining(self) -> float:
        """Seconds left of a global backoff (0 when none)."""
        return max(0.0, self._hold_until - self.clock())

    def wait_turn(self) -> None:
        """Block until this thread may send; raises Stopped if watch stops meanwhile."""
        with self._lock:
            now = self.clock()
            start = max(now, self._hold_until, self._last_start + self._spacing)
            # Taken now, so threads waiting together queue up one spacing apart.
            self._last_start = start
        if (start > now and self.stop.wait(start - now)) or self.stop.is_set():
            raise Stopped

    def observe(self, rate: RateLimit) -> None:
        """Adjust the spacing to what the server says is left of the limit."""
        if rate.remaining is None:
            return
        with self._lock:
            self.last = rate
            low = max(1.0, (rate.limit or 0) * self.low_fraction)
            self._spacing = self.max_spacing * max(0.0, 1 - rate.remaining / low)

    def succeeded(self) -> None:
        with self._lock:
            self._strikes = 0

    def rate_limited(self, err: RateLimitError) -> float:
        """Hold everyone back after a 429/503; returns the hold in seconds."""
        with self._lock:
            self._strikes += 1
            backoff = min(self.backoff_cap, self.backoff_base * 2 ** min(self._strikes - 1, 16))
            hold = max(backoff, min(err.retry_after or 0.0, self.backoff_cap))
            self._hold_until = max(self._hold_until, self.clock() + hold)
            return hold


class PacedClient:
    """The shared Client seen through the Pacer, counting one poll's requests and pages (the
    trigger only calls `fetch_page`: all of the Client it needs)."""

    def __init__(self, client: PageSource, pacer: Pacer) -> None:
        self.client = client
        self.pacer = pacer
        #: HTTP requests made, retries included.
        self.requests = 0
        #: Successful pages: what credits are charged for.
        self.pages = 0
        #: The list's size as the last page that said gave it (None: none did).
        self.total: int | None = None

    def fetch_page(self, handle: str, **kwargs: Any) -> Page:
        self.pacer.wait_turn()
        try:
            page = self.client.fetch_page(handle, **kwargs)
        except ConnectorError as err:
            self.requests += int(err.details.get("attempts") or 1)
            if isinstance(err, ApiError):
                self.pacer.observe(RateLimit.from_headers(err.headers))
            if isinstance(err, RateLimitError):
                self.pacer.rate_limited(err)
            raise
        self.requests += page.attempts
        self.pages += 1
        if page.total is not None:
            self.total = page.total
        self.pacer.observe(page.rate_limit)
        self.pacer.succeeded()
        return page
