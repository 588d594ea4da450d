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

import hashlib
import json
import re
import struct
import sys
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate, islice
from typing import Any

from ..core import b85, cursors
from ..core.errors import StateError
from ..core.handles import normalize_handle

STATE_VERSION = 3
KNOWN_LIMIT = 5000
#: Fingerprints are whole numbers below this. With KNOWN_LIMIT remembered, a new account is
#: taken for one of them with a chance of at most 5,000 / PRINTS = 1 in 1.02 billion per
#: follow (false_positive_rate); 5.1e12 is about 2**42.2.
PRINTS = 5_100_000_000_000
#: The newest remembered accounts are kept in a part of at most this many (Memory).
RECENT = 32
#: Version 2 kept 32-bit fingerprints in segments of this many.
SEGMENT = 1250
#: The longest part text this connector writes is about 25,000 characters.
_MAX_PART = 64 * 1024
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
    """The fingerprint an identity is remembered by: a whole number below PRINTS. A new
    account is taken for a remembered one when their fingerprints are equal (see
    `false_positive_rate`)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") % PRINTS


def legacy_fingerprint(key: str) -> int:
    """The 32-bit fingerprint of version-2 state, which its segments hold."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big")


def false_positive_rate(remembered: int, legacy: int = 0) -> float:
    """The chance, at most, that a new follow is taken for an account already remembered and
    so never emitted, with `remembered` fingerprints (and `legacy` 32-bit ones from
    version-2 state): its fingerprint must equal one of theirs. A fingerprint is a 64-bit
    hash reduced modulo PRINTS, so each value has a chance of at most 1 / PRINTS + 2**-64."""
    return remembered * (1 / PRINTS + 2.0**-64) + legacy / 2**32


# Parts of the memory, as bytes: a kind, then the kind's body, then a CRC-32 of both (damage
# is refused, never decoded into other fingerprints). In JSON each is base85 text.
_SET = 0x53  # "S": fingerprints, sorted, Golomb-Rice coded (see _Part)
_RECENT = 0x52  # "R": the same, for the newest remembered
_LEGACY = 0x4C  # "L": a version-2 segment: 32-bit fingerprints as deflated delta planes
_HEAD = struct.Struct(">HB")  # a set's count and Rice parameter k


class _Part:
    """Fingerprints remembered together (sorted), and their text form once computed.

    Coded as a sorted set: each gap to the next fingerprint as a Golomb-Rice code, its low k
    bits in one block and the rest in unary in another, so that both decode with operations
    on whole strings and numbers, not a loop over bits. About log2(PRINTS / n) + 1.5 bits
    each: 31.5 for 5,000, within 0.1 of what any code of such a set needs."""

    __slots__ = ("kind", "prints", "text")

    def __init__(self, kind: int, prints: list[int], text: str | None = None) -> None:
        self.kind = kind
        self.prints = prints
        self.text = text

    def encode(self) -> str:
        if self.text is None:
            self.text = b85.encode(_seal(self.kind, _rice(self.prints)))
        return self.text

    @classmethod
    def decode(cls, kind: int, body: bytes, text: str) -> _Part:
        if len(body) < _HEAD.size:
            raise ValueError("a part too short")
        count, k = _HEAD.unpack_from(body)
        if count > KNOWN_LIMIT or k > 63:
            raise ValueError("a part out of bounds")
        return cls(kind, _unrice(count, k, memoryview(body)[_HEAD.size:]), text)


def _thin(prints: list[int], over: int, point: int, *spared: set[int]) -> list[int]:
    """`prints` (sorted) without `over` of them: the first from `point` on (round), past
    those of the `spared` sets while there are others, the first set spared longest (the
    bound comes first)."""
    start = bisect_left(prints, point)
    order = prints[start:] + prints[:start]
    gone: set[int] = set()
    for tier in range(len(spared), -1, -1):
        shield = set().union(*spared[:tier])
        gone.update(islice((p for p in order if p not in gone and p not in shield),
                           over - len(gone)))
        if len(gone) == over:
            break
    return [p for p in prints if p not in gone]


def _rice(prints: list[int]) -> bytes:
    gaps = [b - a for a, b in zip([-1, *prints], prints, strict=False)]  # each at least 1
    n = len(gaps)
    if not n:
        return _HEAD.pack(0, 0)
    k = max(0, int(PRINTS / n * 0.69).bit_length() - 1)
    cost = {j: sum(g >> j for g in gaps) + j * n for j in (k - 1, k, k + 1) if j >= 0}
    k = min(cost, key=cost.__getitem__)
    # Unary codes least significant bit first, so that the number's binary text reversed
    # reads them in order.
    high = "".join(["0" * (g >> k) + "1" for g in gaps])
    unary = int(high[::-1], 2).to_bytes((len(high) + 7) // 8, "little")
    low = b""
    if k:
        # Each gap's low k bits: the gaps in 64-bit lanes, as one binary text, and the last k
        # characters of every 64.
        mask = (1 << k) - 1
        text = format(int.from_bytes(_lanes([g & mask for g in gaps]), "big"), f"0{64 * n}b")
        low = int("".join(_tail(k).findall(text)), 2).to_bytes((n * k + 7) // 8, "big")
    return _HEAD.pack(n, k) + low + unary


def _unrice(n: int, k: int, data: memoryview) -> list[int]:
    """A set's fingerprints from its Rice codes, in steps on whole strings and numbers: the
    unary codes split as text, the low bits spread into 64-bit lanes of one number, and the
    two added lane by lane."""
    split = (n * k + 7) // 8
    if len(data) < split:
        raise ValueError("a part cut short")
    bits = format(int.from_bytes(data[split:], "little"), "b")[::-1] if n else ""
    if bits.count("1") != n:
        raise ValueError("a part whose codes do not add up")
    highs = [len(run) for run in bits.split("1", n)[:n]]
    if max(highs, default=0) >= 1 << (63 - k):
        raise ValueError("a part out of bounds")  # a lane would overflow into the next
    lanes = int.from_bytes(_lanes(highs), "big") << k
    if k:
        low = int.from_bytes(data[:split], "big")
        if low.bit_length() > n * k:
            raise ValueError("a part whose codes do not add up")
        fields = _field(k).findall(format(low, f"0{n * k}b"))
        lanes += int(("0" * (64 - k)).join(["", *fields]), 2)
    gaps = array("Q", lanes.to_bytes(8 * n, "big"))
    if sys.byteorder == "little":
        gaps.byteswap()
    # Gaps are never negative: bounds at both ends bound them all. (A gap of 0 would repeat
    # a fingerprint: harmless, and the CRC keeps damage out.)
    prints = list(accumulate(gaps, initial=-1))[1:]
    if prints and (prints[0] < 0 or prints[-1] >= PRINTS):
        raise ValueError("a part with fingerprints out of bounds")
    return prints


def _lanes(values: list[int]) -> bytes:
    """Whole numbers below 2**64 as big-endian 64-bit lanes."""
    words = array("Q", values)
    if sys.byteorder == "little":
        words.byteswap()
    return words.tobytes()


@lru_cache(maxsize=64)
def _field(k: int) -> re.Pattern[str]:
    return re.compile(f".{{{k}}}")


@lru_cache(maxsize=64)
def _tail(k: int) -> re.Pattern[str]:
    return re.compile(f".{{{64 - k}}}(.{{{k}}})")


def _seal(kind: int, body: bytes) -> bytes:
    """A part's bytes: kind, body, CRC-32, padded (in the body's free tail) to whole groups of
    four bytes, so its base85 has no short group and round-trips as bytes in a database."""
    data = bytes([kind]) + body
    data += bytes(-(len(data) + 4) % 4)  # zeros: more unary padding, or after the deflate end
    return data + struct.pack(">I", zlib.crc32(data))


def _unseal(text: str) -> tuple[int, bytes]:
    data = b85.decode(text)
    if len(data) < 5 or struct.unpack(">I", data[-4:])[0] != zlib.crc32(data[:-4]):
        raise ValueError("a part that does not check")
    return data[0], data[1:-4]


class _Legacy:
    """A version-2 segment: 32-bit fingerprints, read-only until it ages out."""

    __slots__ = ("prints", "raw", "text")

    def __init__(self, prints: set[int], raw: bytes) -> None:
        self.prints = prints
        self.raw = raw  # the deflated planes, as version 2 wrote them
        self.text: str | None = None

    def encode(self) -> str:
        if self.text is None:
            self.text = b85.encode(_seal(_LEGACY, self.raw))
        return self.text

    @classmethod
    def decode(cls, raw: bytes) -> _Legacy:
        # Bounded: a damaged (or hostile) state must not inflate into gigabytes.
        inflate = zlib.decompressobj()
        planes = inflate.decompress(raw, 4 * SEGMENT + 1)
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
        return cls(set(accumulate(deltas)), raw)


class Memory:
    """The accounts a trigger remembers, by fingerprint.

    The newest are kept in a small part of at most RECENT ("recent"): a poll that remembers
    a few rewrites it alone (a database keeps it in the state's own row), and a full one
    goes into the set of the others ("held"), which is coded whole: a set of 5,000 coded
    whole takes 2 bits an account less than four sets of 1,250, and that is what keeps
    fingerprints wide enough for 1 in 10**9 within 21 KB; but the set keeps no order.

    Past KNOWN_LIMIT fingerprints go: first the oldest segments of a version-2 state
    (`legacy`: its 32-bit fingerprints, read-only), then, when the recent part goes into the
    held set, a run of held ones from a point that depends on what was just added, each as
    likely as any other to go, except those just added and the accounts the poll has just
    seen (on the pages it read, the newest page's among them), which stay. So the memory
    keeps what a walk needs (the newest, and the accounts at the top of the list); an older
    account may be forgotten before its turn would have come in order, which costs at most a
    check request, or one re-follow of it emitted again.
    """

    def __init__(self, held: _Part | None = None, recent: list[_Part] | None = None,
                 legacy: list[_Legacy] | None = None, every: set[int] | None = None) -> None:
        self._held = held
        self._recent = recent or []
        self._legacy = legacy or []
        if every is None:
            every = set(held.prints) if held is not None else set()
            for part in self._recent:
                every.update(part.prints)
        self._all: set[int] = every
        self._old: set[int] = set().union(*(s.prints for s in self._legacy))

    def __contains__(self, key: str) -> bool:
        if fingerprint(key) in self._all:
            return True
        return bool(self._old) and legacy_fingerprint(key) in self._old

    def __len__(self) -> int:
        return len(self._all) + sum(len(s.prints) for s in self._legacy)

    @property
    def legacy(self) -> int:
        """How many 32-bit fingerprints of a version-2 state are still kept."""
        return sum(len(s.prints) for s in self._legacy)

    def false_positive_rate(self) -> float:
        """The chance, at most, that a new follow is taken for one of these accounts."""
        return false_positive_rate(len(self._all), self.legacy)

    def remember(self, keys: Iterable[str], keep: Iterable[str] = ()) -> Memory:
        """A new Memory with `keys` added: into the recent part (at most RECENT), the rest
        with a full recent part into the held set; past KNOWN_LIMIT the oldest legacy
        segments go, then fingerprints of the held set (see the class), never those of `keep`
        (the accounts the poll has just seen)."""
        new = added = sorted({fingerprint(k) for k in keys} - self._all)
        if not new:
            return self
        recent = list(self._recent)
        if recent and len(recent[0].prints) < RECENT:
            room = RECENT - len(recent[0].prints)
            recent[0] = _Part(_RECENT, sorted(recent[0].prints + new[:room]))
            new = new[room:]
        for at in range(0, len(new), RECENT):
            recent.insert(0, _Part(_RECENT, new[at:at + RECENT]))
        held = self._held
        every: set[int] | None = self._all.union(added)
        if len(recent) > 1:
            # Full recent parts go into the held set, which then keeps room for a full recent
            # part: it is rewritten (and thinned, when full) only here, once in RECENT
            # remembered, and the memory never holds more than KNOWN_LIMIT.
            moved = [p for part in recent[1:] for p in part.prints]
            recent = recent[:1]
            prints = sorted((held.prints if held else []) + moved)
            over = len(prints) - (KNOWN_LIMIT - RECENT)
            if over > 0:
                prints = _thin(prints, over, sum(added) % PRINTS,
                               {fingerprint(k) for k in keep}, set(added))
                every = None  # made again from the parts
            held = _Part(_SET, prints)
        legacy = list(self._legacy)
        count = (len(held.prints) if held else 0) + sum(len(p.prints) for p in recent)
        while legacy and count + sum(len(s.prints) for s in legacy) > KNOWN_LIMIT:
            legacy.pop()
        return Memory(held, recent, legacy, every)

    def to_json(self) -> tuple[list[str], list[str]]:
        """(the recent parts, the held set and legacy segments), as text."""
        held: list[_Part | _Legacy] = [self._held] if self._held and self._held.prints else []
        return ([p.encode() for p in self._recent],
                [p.encode() for p in [*held, *self._legacy]])

    @classmethod
    def from_json(cls, data: Any, version: int, recent_data: Any = ()) -> Memory:
        """Version 3: the held set and legacy segments, and the recent parts apart; version 2:
        32-bit segments (kept as legacy); version 1: identity keys, newest first."""
        if version == 1:
            # Oldest first, the newest last, so that those are the recent ones and stay.
            newest = list(data[:RECENT])
            return cls().remember(reversed(data[RECENT:]), keep=data[:KNOWN_LIMIT // 5]) \
                .remember(reversed(newest), keep=data[:KNOWN_LIMIT // 5])
        if version == 2:
            return cls(legacy=[_Legacy.decode(b85.decode(text)) for text in data])
        held: _Part | None = None
        recent: list[_Part] = []
        legacy: list[_Legacy] = []
        for text in recent_data:
            kind, body = _unseal(text)
            if kind != _RECENT or recent:
                raise ValueError("recent parts of the wrong kind")
            recent.append(_Part.decode(kind, body, text))
        for text in data:
            kind, body = _unseal(text)
            if kind == _LEGACY:
                part: Any = _Legacy.decode(body)
                part.text = text
                legacy.append(part)
            elif kind == _SET and held is None and not legacy:
                held = _Part.decode(kind, body, text)
            else:
                raise ValueError("parts of the wrong kind or order")
        memory = cls(held, recent, legacy)
        if len(memory._all) > KNOWN_LIMIT or any(len(p.prints) > RECENT for p in recent):
            raise ValueError("more fingerprints than this connector keeps")
        return memory


@dataclass
class TriggerState:
    handle: str
    watermark: Any = None
    known: Memory = field(default_factory=Memory)
    gaps: list[Gap] = field(default_factory=list)
    base: Any = None

    def to_json(self) -> dict[str, Any]:
        recent, known = self.known.to_json()
        return {
            "v": STATE_VERSION,
            "handle": self.handle,
            "watermark": self.watermark,
            "base": self.base,
            # The newest remembered, which most polls change, apart from `known`: a database
            # keeps them in the state's own row, rewritten by every save anyway (see Memory).
            "recent": recent,
            "known": known,
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
        check_fields(data, _FIELDS[version], "the state")
        handle = check_handle(data.get("handle"))
        watermark = data.get("watermark")
        _check_cursor(watermark, "watermark")
        base = data.get("base")
        _check_cursor(base, "base")
        known = data.get("known", [])
        limit, longest, what = {
            1: (KNOWN_LIMIT, _MAX_KEY, "account ids"),
            2: (KNOWN_LIMIT // SEGMENT + 2, 8 * SEGMENT, "segments"),
            3: (1 + KNOWN_LIMIT // SEGMENT, _MAX_PART, "parts"),
        }[version]
        if not isinstance(known, list) or not all(
            isinstance(k, str) and 0 < len(k) <= longest for k in known
        ):
            raise StateError(f"state is damaged: 'known' must be a list of {what}; {_RESTORE}")
        if len(known) > limit:
            raise StateError(f"state is damaged: 'known' holds {len(known)} entries, more than "
                             f"the {limit} this connector keeps; {_RESTORE}")
        recent = data.get("recent", [])
        if not isinstance(recent, list) or len(recent) > 1 or not all(
            isinstance(r, str) and 0 < len(r) <= _MAX_PART for r in recent
        ):
            raise StateError(f"state is damaged: 'recent' must be a list of at most 1 part; "
                             f"{_RESTORE}")
        try:
            memory = Memory.from_json(known, version, recent)
        except (ValueError, zlib.error):
            raise StateError(f"state is damaged: 'known' does not decode; {_RESTORE}") from None
        raw_gaps = data.get("gaps", [])
        if not isinstance(raw_gaps, list):
            raise StateError(f"state is damaged: 'gaps' must be a list; {_RESTORE}")
        if len(raw_gaps) > GAP_LIMIT:
            raise StateError(f"state is damaged: {len(raw_gaps)} gaps, more than the "
                             f"{GAP_LIMIT} this connector keeps; {_RESTORE}")
        gap_fields = _GAP_FIELDS if version >= 3 else _GAP_FIELDS - {"base"}
        return cls(handle=handle, watermark=watermark, base=base, known=memory,
                   gaps=[_gap(g, gap_fields) for g in raw_gaps])


#: The fields each version of this state has: any other is refused (check_fields).
_FIELDS = {1: {"v", "handle", "watermark", "known", "gaps"},
           2: {"v", "handle", "watermark", "known", "gaps"},
           3: {"v", "handle", "watermark", "base", "recent", "known", "gaps"}}
_GAP_FIELDS = frozenset({"from", "to", "tries", "wait", "check", "base"})


def check_fields(data: dict[str, Any], allowed: Iterable[str], where: str) -> None:
    """Refuse a field this connector does not write in `where`: a mistyped or foreign state
    must not load with a part of it silently ignored."""
    unknown = sorted(str(k) for k in set(data) - set(allowed))
    if unknown:
        raise StateError(f"state is damaged: {where} has a field {_short(unknown[0])} this "
                         f"connector does not write; {_RESTORE}")


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


def _gap(raw: Any, fields: Iterable[str] = _GAP_FIELDS) -> Gap:
    if not isinstance(raw, dict) or "from" not in raw or "to" not in raw:
        raise StateError(f"state is damaged: a gap must be an object with 'from' and 'to'; "
                         f"{_RESTORE}")
    check_fields(raw, fields, "a gap")
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
