"""The stand-in's meter: a fixed-window rate limit per API key, and credit balances."""

from __future__ import annotations

import math
from collections.abc import Callable

#: Credits one successful page costs; a key below this gets 403.
CREDITS_PER_CALL = 10


class Meter:
    """Counts requests per key and window, and spends credits. The server holds its lock."""

    def __init__(self, *, rate_limit: int, rate_window: float, credits: dict[str, int] | None,
                 clock: Callable[[], float]) -> None:
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        # None = unlimited; keys missing from the dict are unlimited too.
        self.credits = dict(credits) if credits is not None else None
        self.clock = clock
        self._windows: dict[str, tuple[int, int]] = {}  # key -> (window index, used)

    def headers(self, key: str, remaining: int | None = None) -> dict[str, str]:
        """The X-RateLimit-* headers for `key` as things stand."""
        if remaining is None:
            remaining = self.rate_limit - self._used(key)[1]
        return {"X-RateLimit-Limit": str(self.rate_limit), "X-RateLimit-Remaining": str(remaining)}

    def take(self, key: str) -> tuple[int | None, dict[str, str]]:
        """Count one request: (seconds to wait, headers) when over the limit, else (None,
        headers with what is left)."""
        window, used = self._used(key)
        if used >= self.rate_limit:
            wait = max(1, math.ceil((window + 1) * self.rate_window - self.clock()))
            return wait, self.headers(key, 0)
        self._windows[key] = (window, used + 1)
        return None, self.headers(key, self.rate_limit - used - 1)

    def balance(self, key: str) -> int | None:
        """Credits left for `key` (None: unlimited)."""
        return None if self.credits is None else self.credits.get(key)

    def spend(self, key: str) -> None:
        if self.credits is not None and key in self.credits:
            self.credits[key] -= CREDITS_PER_CALL

    def _used(self, key: str) -> tuple[int, int]:
        """The current window, and the requests `key` made in it."""
        window = int(self.clock() // self.rate_window)
        start, used = self._windows.get(key, (window, 0))
        return window, used if start == window else 0
