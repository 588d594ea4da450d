"""The memory's parts as bytes: sets of fingerprints, Golomb-Rice coded, and the 32-bit
segments of version-2 state, each sealed with its kind and a CRC-32 (damage is refused, never
decoded into other fingerprints). A database keeps these bytes; runner JSON their base85.
"""

from __future__ import annotations

import re
import struct
import sys
import zlib
from array import array
from functools import lru_cache
from itertools import accumulate

from ..core import b85
from .prints import KNOWN_LIMIT, PRINTS

#: Version 2 kept 32-bit fingerprints in segments of this many.
SEGMENT = 1250
SET = 0x53  # "S": fingerprints, sorted, Golomb-Rice coded
RECENT = 0x52  # "R": the same, for the newest remembered
LEGACY = 0x4C  # "L": a version-2 segment: 32-bit fingerprints as deflated delta planes
_HEAD = struct.Struct(">HB")  # a set's count and Rice parameter k


class _Sealed:
    """A part's sealed bytes and their base85 text, each made once (a part that did not change
    is never coded again)."""

    __slots__ = ("data", "text")
    kind: int

    def _body(self) -> bytes:
        raise NotImplementedError

    def sealed(self) -> bytes:
        if self.data is None:
            self.data = seal(self.kind, self._body())
        return self.data

    def encode(self) -> str:
        if self.text is None:
            self.text = b85.encode(self.sealed())
        return self.text


class Part(_Sealed):
    """Fingerprints remembered together (sorted).

    Coded as a sorted set: each gap to the next fingerprint as a Golomb-Rice code, its low k
    bits in one block and the rest in unary in another, so that both decode with operations
    on whole strings and numbers, not a loop over bits. About log2(PRINTS / n) + 1.5 bits
    each: 31.5 for 5,000, within 0.1 of what any code of such a set needs."""

    __slots__ = ("kind", "prints")

    def __init__(self, kind: int, prints: list[int], data: bytes | None = None,
                 text: str | None = None) -> None:
        self.kind, self.prints, self.data, self.text = kind, prints, data, text

    def _body(self) -> bytes:
        return _rice(self.prints)

    @classmethod
    def decode(cls, kind: int, body: bytes, data: bytes, text: str | None) -> Part:
        if len(body) < _HEAD.size:
            raise ValueError("a part too short")
        count, k = _HEAD.unpack_from(body)
        if count > KNOWN_LIMIT or k > 63:
            raise ValueError("a part out of bounds")
        return cls(kind, _unrice(count, k, memoryview(body)[_HEAD.size:]), data, text)


class Legacy(_Sealed):
    """A version-2 segment: 32-bit fingerprints, read-only until it ages out."""

    __slots__ = ("prints", "raw")
    kind = LEGACY

    def __init__(self, prints: set[int], raw: bytes) -> None:
        self.prints = prints
        self.raw = raw  # the deflated planes, as version 2 wrote them
        self.data: bytes | None = None
        self.text: str | None = None

    def _body(self) -> bytes:
        return self.raw

    @classmethod
    def decode(cls, raw: bytes) -> Legacy:
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


def unsealed(data: bytes, text: str | None = None) -> Part | Legacy:
    """A part from its sealed bytes (`text`: their base85, when they came so)."""
    if len(data) < 5 or struct.unpack(">I", data[-4:])[0] != zlib.crc32(data[:-4]):
        raise ValueError("a part that does not check")
    kind, body = data[0], data[1:-4]
    if kind == LEGACY:
        part = Legacy.decode(body)
        part.data, part.text = data, text
        return part
    if kind in (SET, RECENT):
        return Part.decode(kind, body, data, text)
    raise ValueError("a part of an unknown kind")


def seal(kind: int, body: bytes) -> bytes:
    """A part's bytes: kind, body, CRC-32, padded (in the body's free tail) to whole groups of
    four bytes, so its base85 has no short group and round-trips as bytes in a database."""
    data = bytes([kind]) + body
    data += bytes(-(len(data) + 4) % 4)  # zeros: more unary padding, or after the deflate end
    return data + struct.pack(">I", zlib.crc32(data))


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
