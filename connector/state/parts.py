"""The memory's parts as bytes: sets of fingerprints, Golomb-Rice coded, and the 32-bit
segments of version-2 state, each sealed with its kind and a CRC-32 (damage is refused, never
decoded into other fingerprints). A database keeps these bytes; runner JSON their base85.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from itertools import accumulate, repeat
from operator import add, and_, lshift, rshift, sub

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
    bits in one block and the rest in unary in another, so that both code with operations
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
        # (An empty set is written with k 0; earlier releases read one with k 1 too.)
        if count > KNOWN_LIMIT or k > 63 or (k > 1 and not count):
            raise ValueError("a part out of bounds")
        return cls(kind, _unrice(count, k, memoryview(body)[_HEAD.size:]), data, text)


class Legacy(_Sealed):
    """A version-2 segment: 32-bit fingerprints, read-only until it ages out."""

    __slots__ = ("prints", "raw")
    kind = LEGACY

    def __init__(self, prints: set[int], raw: bytes, data: bytes | None = None,
                 text: str | None = None) -> None:
        # `raw`: the deflated planes, as version 2 wrote them.
        self.prints, self.raw, self.data, self.text = prints, raw, data, text

    def _body(self) -> bytes:
        return self.raw

    @classmethod
    def decode(cls, raw: bytes, data: bytes | None = None, text: str | None = None) -> Legacy:
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
        return cls(set(accumulate(deltas)), raw, data, text)


def unsealed(data: bytes, text: str | None = None) -> Part | Legacy:
    """A part from its sealed bytes (`text`: their base85, when they came so)."""
    if len(data) < 5 or struct.unpack(">I", data[-4:])[0] != zlib.crc32(data[:-4]):
        raise ValueError("a part that does not check")
    kind, body = data[0], data[1:-4]
    if kind == LEGACY:
        return Legacy.decode(body, data, text)
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
    gaps = list(map(sub, prints, [-1, *prints]))  # each at least 1
    n = len(gaps)
    if not n:
        return _HEAD.pack(0, 0)
    k = max(0, int(PRINTS / n * 0.69).bit_length() - 1)
    highs = list(map(rshift, gaps, repeat(k)))
    # Of k - 1, k and k + 1, the k whose codes are shortest (of equals the smallest). With s
    # the zeros of k's unary codes, k - 1 takes at least s - n bits more than k and k + 1 at
    # least (n - s) / 2 more: only k - 1 can be chosen when s <= n, only k + 1 when s > n.
    s = sum(highs)
    j = k + 1 if s > n else k - 1
    if j >= 0:
        other = list(map(rshift, gaps, repeat(j)))
        more = sum(other) - s + (j - k) * n
        if more < 0 or (more == 0 and j < k):
            k, highs = j, other
    # Unary codes least significant bit first: the number's binary text is them reversed.
    high = "1" + "1".join(map("0".__mul__, reversed(highs)))
    low = _joined(list(map(and_, gaps, repeat((1 << k) - 1))), k)
    return (_HEAD.pack(n, k) + low.to_bytes((n * k + 7) // 8, "big")
            + int(high, 2).to_bytes((len(high) + 7) // 8, "little"))


def _unrice(n: int, k: int, data: memoryview) -> list[int]:
    """A set's fingerprints from its Rice codes: the unary codes split as text, the low bits
    split as a number (_split)."""
    split = (n * k + 7) // 8
    if len(data) < split:
        raise ValueError("a part cut short")
    bits = format(int.from_bytes(data[split:], "little"), "b") if n else ""
    low = int.from_bytes(data[:split], "big")
    if bits.count("1") != n or low.bit_length() > n * k:
        raise ValueError("a part whose codes do not add up")
    # bits: the codes last first, each a 1 and its zeros; the last 1 is the first code's.
    gaps = map(lshift, map(len, bits.split("1")[:0:-1]), repeat(k))
    if k:
        gaps = map(add, gaps, _split(low, n, k))
    # Gaps are never negative: bounds at both ends bound them all. (A gap of 0 would repeat
    # a fingerprint: harmless, and the CRC keeps damage out.)
    prints = list(accumulate(gaps, initial=-1))[1:]
    if prints and (prints[0] < 0 or prints[-1] >= PRINTS):
        raise ValueError("a part with fingerprints out of bounds")
    return prints


#: Below this many numbers, _joined and _split work one number at a time (shifting a number
#: of a few hundred bits is cheap); above, in halves, so that 5,000 are not quadratic.
_WHOLE = 32


def _joined(values: list[int], k: int) -> int:
    """Numbers below 2**k as one number of k bits each, the first most significant."""
    if len(values) > _WHOLE:
        half = len(values) // 2
        return (_joined(values[:half], k) << k * (len(values) - half)
                | _joined(values[half:], k))
    x = 0
    for v in values:
        x = x << k | v
    return x


def _split(x: int, n: int, k: int) -> list[int]:
    """The n numbers of k bits each that `x` joins (_joined)."""
    if n > _WHOLE:
        rest = n - n // 2
        return _split(x >> k * rest, n // 2, k) + _split(x & ((1 << k * rest) - 1), rest, k)
    mask = (1 << k) - 1
    return [x >> at & mask for at in range(k * (n - 1), -1, -k)]
