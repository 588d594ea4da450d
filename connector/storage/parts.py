"""Which rows a save writes: a state's parts are kept one row each, numbered, and a save
writes only the parts not already stored in that order."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def as_bytes(part: object) -> bytes:
    """A part as saved: bytes (a str is refused, not encoded: its reader would get bytes)."""
    if not isinstance(part, (bytes, bytearray, memoryview)):
        raise TypeError(f"a state's parts are bytes, not {type(part).__name__}")
    return bytes(part)


def digest(data: bytes) -> bytes:
    """What a stored part is recognised by, so a save need not read the parts back."""
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass
class PartsPlan:
    """The rows a save writes and deletes so that the stored parts equal the new list."""

    insert: list[tuple[int, bytes, bytes]]  # (n, digest, data)
    delete: list[int]


def plan_parts(new: list[bytes], stored: dict[bytes, int]) -> PartsPlan:
    """Rows to write for the list `new` (newest first) over the `stored` rows (digest -> n,
    higher n newer): parts already stored in the right order are kept, the rest inserted with
    higher numbers, the stored parts no longer in the list deleted. So a poll whose newest
    part changed writes that part alone, whatever else the state holds."""
    top = max(stored.values(), default=0)
    last = 0
    kept: set[int] = set()
    insert = []
    for data in reversed(new):  # oldest first: numbers must grow towards the newest
        d = digest(data)
        n = stored.get(d)
        if n is not None and n > last and n not in kept:
            kept.add(n)
            last = n
        else:
            top += 1
            insert.append((top, d, data))
            last = top
    return PartsPlan(insert, sorted(set(stored.values()) - kept))
