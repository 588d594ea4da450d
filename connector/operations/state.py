"""The trigger's state: a small, versioned JSON object that the runner (or a database) keeps.

What it remembers, and why that is enough:
- `watermark`: the follow-time cursor of the newest follow seen. The next poll reads down only
  until a page reaches it: everything newer is on the pages before.
- `known`: the accounts emitted, baselined or proven old, at most KNOWN_LIMIT (5,000), the
  upstream's own depth cap. They tell new from old on the page where a walk stops, and keep
  re-follows and page-boundary repeats from being emitted twice. Kept compact (see Memory):
  32-bit fingerprints of their identities, in segments newest first, so 5,000 of them take
  under 20 KB.
- `gaps`: cursor ranges of follows detected but not read yet, because a burst exceeded one
  poll's page budget or the upstream failed part-way. Later polls read them; a range whose
  reading failed is retried after 1, 2, 4, 8 ... polls (`tries`, `wait`). At most GAP_LIMIT;
  at the bound the trigger catches up before it reads new follows, so nothing is dropped.
At 5,000 remembered accounts the JSON is under 20 KB. Anything else in a state object is
damage: it is refused with a StateError before any request, never repaired silently. State of
version 1 (identities as a plain list of strings, up to 110 KB) still loads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
import zlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from ..core import cursors
from ..core.errors import StateError
from ..core.handles import normalize_handle

STATE_VERSION = 2
KNOWN_LIMIT = 5000
#: Remembered accounts are sealed into segments of this many; the oldest segment is dropped
#: whole when more than KNOWN_LIMIT are remembered, so between 3,750 and 5,000 stay.
SEGMENT = 1250
GAP_LIMIT = 20
#: A range that keeps failing is retried at least this often (in polls).
MAX_WAIT = 31
#: Failed tries are counted up to this many.
MAX_TRIES = 1000
_MAX_KEY = 300
_RESTORE = "restore it from the runner's history, or pass null state to start a new baseline"


@dataclass
class Gap:
    """Follows still to read between two cursors: from `start` (exclusive; None = the top)
    down to `stop` (a follow time already known; None = the end of the list).

    `tries` counts the polls whose reading of this range failed; the range then waits `wait`
    polls before the next try. `check`: the last walk stopped at the page that reaches `stop`
    and could not afford the one request that tells its old follows from new ones, so the next
    walk needs two requests in a row. `base`: a cursor at or below `stop` that the upstream
    handed out (the watermark's base when `stop` was the watermark, see walk.py), or None.
    """

    start: Any
    stop: Any
    tries: int = 0
    wait: int = 0
    check: bool = False
    base: Any = None

    def failed(self) -> Gap:
        """The same range after one more failed try: retried after 1, 2, 4, 8 ... polls."""
        return Gap(self.start, self.stop, *backoff(self.tries), base=self.base)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.start, "to": self.stop, "tries": self.tries}
        if self.wait:
            out["wait"] = self.wait
        if self.check:
            out["check"] = True
        if self.base is not None:
            out["base"] = self.base
        return out


def backoff(tries: int) -> tuple[int, int]:
    """(tries, wait) after one more failed try of a read: it waits 0, 1, 3, 7 ... polls, so it
    is tried again after 1, 2, 4, 8 ... polls, and at least every MAX_WAIT + 1."""
    tries = min(tries + 1, MAX_TRIES)
    return tries, min(2 ** (tries - 1) - 1, MAX_WAIT)


def fingerprint(key: str) -> int:
    """The 32-bit fingerprint an identity is remembered by. With 5,000 remembered, a new
    account shares one with a remembered account about once in 860,000 new follows."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big")


class _Segment:
    """Fingerprints remembered together, and their text form once computed."""

    __slots__ = ("prints", "text")

    def __init__(self, prints: set[int], text: str | None = None) -> None:
        self.prints = prints
        self.text = text

    def encode(self) -> str:
        """Sorted fingerprints as deltas, split into byte planes (the high bytes of deltas are
        mostly zero and compress well), deflated, in base85: about 3.9 characters each."""
        if self.text is None:
            ordered = sorted(self.prints)
            deltas = [b - a for a, b in zip([0, *ordered], ordered, strict=False)]
            words = array("I", deltas)
            if sys.byteorder == "little":
                words.byteswap()
            raw = words.tobytes()
            planes = b"".join(raw[i::4] for i in range(4))
            self.text = base64.b85encode(zlib.compress(planes, 9)).decode("ascii")
        return self.text

    @classmethod
    def decode(cls, text: str) -> _Segment:
        # Bounded: a damaged (or hostile) state must not inflate into gigabytes.
        inflate = zlib.decompressobj()
        planes = inflate.decompress(base64.b85decode(text), 4 * SEGMENT + 1)
        n, rest = divmod(len(planes), 4)
        if rest or n > SEGMENT or inflate.unconsumed_tail or not inflate.eof:
            raise ValueError("not a segment")
        # Interleave the planes back into big-endian words, all in C: slices, not loops.
        words = bytearray(4 * n)
        for i in range(4):
            words[i::4] = planes[i * n:(i + 1) * n]
        deltas = array("I", bytes(words))
        if sys.byteorder == "little":
            deltas.byteswap()
        return cls(set(accumulate(deltas)), text)


class Memory:
    """The accounts a trigger remembers, by fingerprint, in segments newest first."""

    def __init__(self, segments: list[_Segment] | None = None) -> None:
        self._segments = segments or []
        self._all: set[int] = set().union(*(s.prints for s in self._segments))

    def __contains__(self, key: str) -> bool:
        return fingerprint(key) in self._all

    def __len__(self) -> int:
        return sum(len(s.prints) for s in self._segments)

    def remember(self, keys: Iterable[str]) -> Memory:
        """A new Memory with `keys` added to the newest segment (sealed at SEGMENT), the
        oldest segments dropped while more than KNOWN_LIMIT are remembered."""
        new = {fingerprint(k) for k in keys} - self._all
        if not new:
            return self
        segments = list(self._segments)
        if segments and len(segments[0].prints) < SEGMENT:
            room = SEGMENT - len(segments[0].prints)
            taken = set(sorted(new)[:room])
            segments[0] = _Segment(segments[0].prints | taken)
            new -= taken
        for chunk in _chunks(sorted(new), SEGMENT):
            segments.insert(0, _Segment(set(chunk)))
        while len(segments) > 1 and sum(len(s.prints) for s in segments) > KNOWN_LIMIT:
            segments.pop()
        return Memory(segments)

    def to_json(self) -> list[str]:
        return [s.encode() for s in self._segments]

    @classmethod
    def from_json(cls, data: Any, version: int) -> Memory:
        """Version 2: segments; version 1: identity keys, newest first."""
        if version == 1:
            return cls().remember(reversed(data)) if data else cls()
        return cls([_Segment.decode(text) for text in data])


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


@dataclass
class TriggerState:
    handle: str
    watermark: Any = None
    known: Memory = field(default_factory=Memory)
    gaps: list[Gap] = field(default_factory=list)
    base: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "handle": self.handle,
            "watermark": self.watermark,
            "base": self.base,
            "known": self.known.to_json(),
            "gaps": [g.to_json() for g in self.gaps],
        }

    @classmethod
    def from_json(cls, data: Any) -> TriggerState:
        """Parse stored state; anything unexpected is a StateError, never a silent reset."""
        data = parse_object(data)
        if "v" not in data:
            raise StateError("state has no version field 'v': it was not written by this "
                             f"connector; {_RESTORE}")
        version = check_version(data.get("v"), STATE_VERSION)
        handle = check_handle(data.get("handle"))
        watermark = data.get("watermark")
        _check_cursor(watermark, "watermark")
        base = data.get("base")
        _check_cursor(base, "base")
        known = data.get("known", [])
        limit = KNOWN_LIMIT if version == 1 else KNOWN_LIMIT // SEGMENT + 2
        if not isinstance(known, list) or not all(
            isinstance(k, str) and 0 < len(k) <= (_MAX_KEY if version == 1 else 8 * SEGMENT)
            for k in known
        ):
            raise StateError(f"state is damaged: 'known' must be a list of "
                             f"{'account ids' if version == 1 else 'segments'}; {_RESTORE}")
        if len(known) > limit:
            raise StateError(f"state is damaged: 'known' holds {len(known)} entries, more than "
                             f"the {limit} this connector keeps; {_RESTORE}")
        try:
            memory = Memory.from_json(known, version)
        except (ValueError, zlib.error, binascii.Error):
            raise StateError(f"state is damaged: 'known' does not decode; {_RESTORE}") from None
        raw_gaps = data.get("gaps", [])
        if not isinstance(raw_gaps, list):
            raise StateError(f"state is damaged: 'gaps' must be a list; {_RESTORE}")
        if len(raw_gaps) > GAP_LIMIT:
            raise StateError(f"state is damaged: {len(raw_gaps)} gaps, more than the "
                             f"{GAP_LIMIT} this connector keeps; {_RESTORE}")
        return cls(handle=handle, watermark=watermark, base=base, known=memory,
                   gaps=[_gap(g) for g in raw_gaps])


def parse_object(data: Any) -> dict[str, Any]:
    """Stored state as a dict (parsed first when it comes as JSON text), or a StateError."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise StateError(f"state is not valid JSON; {_RESTORE}") from exc
    if not isinstance(data, dict):
        raise StateError("state must be a JSON object written by this connector "
                         "(or null for a first run)")
    return data


def check_version(version: Any, newest: int) -> int:
    """A state's version 'v', from 1 up to `newest` (what this connector writes)."""
    if type(version) is not int or version < 1:
        raise StateError(f"state version {_short(version)} is not valid (a whole number "
                         f"from 1); {_RESTORE}")
    if version > newest:
        raise StateError(f"state is version {version}, newer than this connector "
                         f"understands ({newest}); upgrade tiktok-following-connector")
    return version


def check_handle(handle: Any) -> str:
    """A state's handle: normalised, as the connector writes it."""
    try:
        valid = isinstance(handle, str) and normalize_handle(handle) == handle
    except Exception:
        valid = False
    if not valid:
        raise StateError(f"state is damaged: 'handle' {_short(handle)} is not a TikTok handle; "
                         f"{_RESTORE}")
    return handle


def _gap(raw: Any) -> Gap:
    if not isinstance(raw, dict) or "from" not in raw or "to" not in raw:
        raise StateError(f"state is damaged: a gap must be an object with 'from' and 'to'; "
                         f"{_RESTORE}")
    _check_cursor(raw["from"], "gap 'from'")
    _check_cursor(raw["to"], "gap 'to'")
    numbers = [raw.get("tries", 0), raw.get("wait", 0)]
    if not all(type(n) is int and 0 <= n <= MAX_TRIES for n in numbers):
        raise StateError(f"state is damaged: a gap's 'tries' and 'wait' must be whole numbers "
                         f"from 0 to {MAX_TRIES}; {_RESTORE}")
    check = raw.get("check", False)
    if not isinstance(check, bool):
        raise StateError(f"state is damaged: a gap's 'check' must be true or false; {_RESTORE}")
    base = raw.get("base")
    _check_cursor(base, "gap 'base'")
    return Gap(raw["from"], raw["to"], numbers[0], min(numbers[1], MAX_WAIT), check, base)


def _check_cursor(value: Any, name: str) -> None:
    if not cursors.is_cursor(value) or (value is not None and cursors.is_dead(value)):
        raise StateError(f"state is damaged: {name} {_short(value)} is not a follow-time cursor; "
                         f"{_RESTORE}")


def _short(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 128:
        return f"(a number of {value.bit_length()} bits)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
