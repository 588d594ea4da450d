"""What the walks of a poll (walk.py, range_walk.py) read and know: one range's result, the
poll's result, and the accounts the trigger remembers plus those the poll has learnt."""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import ConnectorError
from ..core.http import Page
from ..core.pagination import PageRead
from ..state.gaps import Gap


@dataclass
class Advance:
    """What one poll's walks found: the new watermark and gaps, the new follows (flat items,
    oldest first) and the identities to remember, in the order to remember them."""

    watermark: Any
    gaps: list[Gap]
    items: list[dict[str, Any]]
    remembered: list[str]
    #: A cursor at or below the watermark that the upstream handed out (see `advance`).
    base: Any = None
    #: New follows found in ranges this poll read to their end (below the newest page), not
    #: on a page the top walk read: no later read needs them to tell new from old (the top
    #: walk reads above them, and nothing is left of their range), so a memory at its bound
    #: does not take them in, in place of accounts later reads do need, such as the newest
    #: page's (on which the next poll's top walk stops, even when this poll's budget went to
    #: a range). A re-follow of one is emitted again, as of any account forgotten.
    closed: list[str] = field(default_factory=list)
    #: The fingerprint of the account the watermark came from, or None (range_walk.py
    #: `_short`).
    watermark_account: int | None = None


@dataclass
class RangeRead:
    """One descent through a range of the list: what was new, what is proven old, what is left."""

    #: (identity, entry) of the new follows found, newest first.
    new: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Identities shown to be old follows below every pending range: safe to remember.
    old: list[str] = field(default_factory=list)
    #: The part of the range still to read, if any.
    left: Gap | None = None
    #: The first page read, when it was usable (the top walk's watermark comes from it).
    first_page: Page | None = None
    #: Why the range could not be read further this time, when it could not.
    failure: str | None = None
    error: ConnectorError | None = None
    #: The walk ended at the upstream's depth cap without reaching its stop.
    at_cap: bool = False
    #: A page that reached the stop held only new follows: the stop was ahead of the list.
    ahead: bool = False
    #: The identities on the pages this walk read.
    keys: set[str] = field(default_factory=set)
    #: The range's stop as given, which what is left of the range keeps: the walk may read
    #: down to the base instead (a stop ahead of the list), but a later check must still know
    #: the stop, whose second (unlike the base's) may hold new follows.
    stop: Any = None
    #: The fingerprint of the account `stop` came from, or None: what is left keeps it too.
    stop_account: int | None = None
    #: A cursor at or below `stop` the upstream handed out, or None: what is left keeps it.
    base: Any = None
    #: The failed tries of the range, which what is left keeps while the walk made no progress.
    tries: int = 0

    def rest(self, start: Any, tries: int = 0, check: bool = False) -> Gap:
        """What is left of this range: from `start` down to its stop as given, with the
        account that stop came from and its base."""
        return Gap(start, self.stop, tries, 0, check, self.base, self.stop_account)


class Known:
    """What the trigger remembers, plus what this poll has learnt so far."""

    def __init__(self, memory: Container[str]) -> None:
        self.memory = memory
        # Each key's answer, once looked up (a lookup in the memory hashes it) or learnt.
        self._known: dict[str, bool] = {}

    def __contains__(self, key: str) -> bool:
        try:
            return self._known[key]
        except KeyError:
            hit = self._known[key] = key in self.memory
            return hit

    def update(self, keys: Iterable[str]) -> None:
        self._known.update(dict.fromkeys(keys, True))


def pick(read: PageRead, keys: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """The entries of a page whose identity is in `keys`, once each, in page order."""
    out = []
    for key, entry in zip(read.keys, read.page.entries, strict=False):
        if key in keys:
            out.append((key, entry))
            keys = keys - {key}
    return out
