"""Base85 (the RFC 1924 alphabet of `base64.b85encode`), in whole-number arithmetic.

The trigger keeps its remembered accounts as bytes, written into JSON state in base85: a
quarter larger than the bytes, where base64 is a third. The standard library's base85 is
pure Python, a loop over groups of five characters (about 8 ms for 20 KB, 40 times base64);
a quiet poll decodes the whole memory. Here each of the five digit positions of every group
becomes one big integer with a digit per lane, and the lanes are combined (and, to encode,
split by multiplying with a reciprocal) in a handful of operations on those integers, which
run in C. Same output as `base64.b85encode(data)` (no padding), same input accepted as
`base64.b85decode`, ValueError otherwise.
"""

from __future__ import annotations

ALPHABET = (b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            b"abcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~")
_BAD = 0xFF
_DIGIT = bytes(ALPHABET.index(c) if c in ALPHABET else _BAD for c in range(256))
_CHAR = ALPHABET + bytes(256 - len(ALPHABET))
#: x // 85 == (x * _M) >> _S for every 0 <= x < 2**32 (Granlund-Montgomery: _M * 85 - 2**_S
#: is 42, at most 2**(_S - 32)).
_S = 39
_M = -(-(1 << _S) // 85)
_LANE = 9  # bytes per lane when encoding: x * _M < 2**65 fits


def encode(data: bytes) -> str:
    """`base64.b85encode(data).decode()`, in C-speed steps."""
    size = len(data)
    if not size:
        return ""
    padding = -size % 4
    groups = (size + padding) // 4
    words = bytearray(_LANE * groups)
    padded = bytes(data) + bytes(padding)
    for i in range(4):  # each 4-byte word at the bottom of its lane, big-endian
        words[_LANE - 4 + i::_LANE] = padded[i::4]
    x = int.from_bytes(words, "big")
    lane_mask = int.from_bytes(((1 << (8 * _LANE - _S)) - 1).to_bytes(_LANE, "big") * groups,
                               "big")
    digits: list[bytes] = []
    for _ in range(4):
        q = ((x * _M) >> _S) & lane_mask  # x // 85 in every lane; the bits that slid in from
        r = x - 85 * q  # the next lane are masked off; r < 85, no borrow between lanes
        digits.append(r.to_bytes(_LANE * groups, "big")[_LANE - 1::_LANE])
        x = q
    digits.append(x.to_bytes(_LANE * groups, "big")[_LANE - 1::_LANE])
    text = bytearray(5 * groups)
    for i, column in enumerate(reversed(digits)):  # most significant digit first
        text[i::5] = column.translate(_CHAR)
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
    if not groups:
        return b""
    # Eight-byte lanes: a group's value is below 85**5 < 2**33, so no lane ever carries into
    # the next, and one above 2**32 - 1 shows in its lane's upper half.
    total = 0
    for i in range(5):
        lanes = bytearray(8 * groups)
        lanes[7::8] = digits[i::5]
        total = total * 85 + int.from_bytes(lanes, "big")
    wide = total.to_bytes(8 * groups, "big")
    if any(wide[i::8].count(0) != groups for i in range(4)):
        raise ValueError("not base85: a group above 2**32 - 1")
    out = bytearray(4 * groups)
    for i in range(4):
        out[i::4] = wide[4 + i::8]
    return bytes(out[: len(out) - padding])
