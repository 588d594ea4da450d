"""When each handle is polled: once per interval, jittered so many handles' polls spread out
instead of hitting the API (and the webhook) in one burst every interval."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable

from ..core.errors import InputError

#: The first polls of a fresh `watch` start over about a second per handle, at most this long
#: (or the interval, if shorter): soon enough to see the baselines taken, not one burst.
FIRST_SPREAD = 60.0
_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([a-z]*)")
#: The units format_interval writes, each with the next smaller one: (unit, size, smaller, size).
_STEPS = (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1))


def parse_interval(text: str) -> float:
    """'30s', '15m', '1h', '1h30m', or plain seconds -> seconds (> 0)."""
    value = re.sub(r"\s+", "", text.lower())
    parts = _PART.findall(value)
    whole = "".join(n + u for n, u in parts) == value != ""
    # A bare number means seconds, but only alone: "1h30" is more likely a typo than 1h30s.
    if (not whole or any(u not in _UNITS for _, u in parts)
            or (len(parts) > 1 and not all(u for _, u in parts))):
        raise InputError(f"interval {text!r}: give a duration like 30s, 15m, 1h or 1h30m",
                         field="interval")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise InputError(f"interval {text!r} must be longer than zero", field="interval")
    return seconds


def format_interval(seconds: float) -> str:
    """Seconds as parse_interval reads them back, to the nearest unit that matters: '45s',
    '15m', '2h30m', '1d', '3d12h'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    unit, size, smaller, small_size = next(step for step in _STEPS if seconds >= step[1])
    whole, rest = divmod(seconds, size)
    rest = round(rest / small_size)
    if rest * small_size >= size:
        whole, rest = whole + 1, 0
    return f"{whole}{unit}{f'{rest}{smaller}' if rest else ''}"


def first_polls(handles: list[str], interval: float, now: float, draw: Callable[[], float]
                ) -> dict[str, float]:
    """Each handle's first poll time, spread as FIRST_SPREAD says (both schedules start so)."""
    spread = min(interval, FIRST_SPREAD, float(len(handles)))
    return {h: now + draw() * spread for h in handles}


class Schedule:
    """The next poll time of each handle."""

    def __init__(
        self,
        handles: Iterable[str],
        interval: float,
        *,
        now: float,
        jitter: float = 0.1,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.interval = interval
        self.jitter = jitter
        self.draw = draw
        self._next = first_polls(list(handles), interval, now, draw)

    def due(self, now: float) -> list[str]:
        """Handles whose time has come, the longest-waiting first."""
        return sorted((h for h, t in self._next.items() if t <= now), key=self._next.__getitem__)

    def next_in(self) -> float:
        """Seconds to a handle's next poll: one interval, ± `jitter` of it (the random walk
        keeps handles that started together from staying together)."""
        return self.interval * (1 + self.jitter * (2 * self.draw() - 1))

    def set(self, handle: str, at: float) -> None:
        """Poll `handle` next at `at` (another watcher sharing the database decided it)."""
        self._next[handle] = at

    def next_at(self) -> float:
        return min(self._next.values())
