"""Base85 (the RFC 1924 alphabet of `base64.b85encode`), in whole-number arithmetic.

The trigger keeps its remembered accounts as bytes, written into JSON state in base85: a
quarter larger than the bytes, where base64 is a third. The standard library's base85 is
pure Python, a loop over groups of five characters (about 8 ms for 20 KB, 40 times base64);
a quiet poll decodes the whole memory. Here every group is a lane of one big integer, split
into its five digits (by multiplying with a reciprocal) or made from them in a handful of
operations on such integers, which run in C. Same output as `base64.b85encode(data)` (no
padding), same input accepted as `base64.b85decode`, ValueError otherwise.
"""

from __future__ import annotations

import struct

ALPHABET = (b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            b"abcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~")
_BAD = 0xFF
_DIGIT = bytes(ALPHABET.index(c) if c in ALPHABET else _BAD for c in range(256))
_CHAR = ALPHABET + bytes(256 - len(ALPHABET))
#: x // 85 == (x * _M) >> _S for every 0 <= x < 2**32 (Granlund-Montgomery: _M * 85 - 2**_S
#: is 21, at most 2**(_S - 32)), and x * _M < 2**64 fits a lane of 8 bytes.
_S = 38
_M = -(-(1 << _S) // 85)
_QUOTIENT = ((1 << (64 - _S)) - 1).to_bytes(8, "big")  # a lane's bits of x // 85
_DELETED = b"\xff\xff\xff\0\0\0\0\0"  # a lane's bytes that are not digits


def encode(data: bytes) -> str:
    """`base64.b85encode(data).decode()`, in C-speed steps."""
    padding = -len(data) % 4
    groups = (len(data) + padding) // 4
    # Each 4-byte word in a lane of 8 bytes; its five digits go into the lane's last five
    # bytes, under three of 0xFF that are deleted as the digits become characters.
    words = bytearray(8 * groups)
    padded = bytes(data) + bytes(padding)
    for i in range(4):
        words[4 + i::8] = padded[i::4]
    x = int.from_bytes(words, "big")
    quotient = int.from_bytes(_QUOTIENT * groups, "big")
    lanes = int.from_bytes(_DELETED * groups, "big")
    for shift in (0, 8, 16, 24):
        q = (x * _M) >> _S & quotient  # x // 85 in every lane: what slid in from the next
        lanes |= (x - 85 * q) << shift  # lane masked off; r < 85, no borrow between lanes
        x = q
    text = (lanes | x << 32).to_bytes(8 * groups, "big").translate(_CHAR, b"\xff")
    return text[: len(text) - padding].decode("ascii")


def decode(text: str | bytes) -> bytes:
    """`base64.b85decode(text)`, in C-speed steps."""
    raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    digits = raw.translate(_DIGIT)
    if _BAD in digits:
        raise ValueError("not base85: a character outside its alphabet")
    padding = -len(digits) % 5
    digits += bytes([84]) * padding  # as b85decode: a short group is padded with '~'
    groups = len(digits) // 5
    # Five-byte lanes, a group's digits in each: a group's value is below 85**5 < 2**33, so
    # no lane ever carries into the next, and one above 2**32 - 1 shows in its first byte.
    x = int.from_bytes(digits, "big")
    digit = int.from_bytes(b"\0\0\0\0\xff" * groups, "big")
    total = 0
    for shift in (32, 24, 16, 8, 0):
        total = total * 85 + (x >> shift & digit)
    if total & digit << 32:
        raise ValueError("not base85: a group above 2**32 - 1")
    out = b"".join(struct.unpack(">" + "x4s" * groups, total.to_bytes(5 * groups, "big")))
    return out[: len(out) - padding]
