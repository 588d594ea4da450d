"""The memory's parts keep their exact bytes (state/parts.py, core/b85.py): a plain Golomb-Rice
coder written bit by bit, here, and the standard library's base85 say what every set of
fingerprints is stored as and what a damaged part reads as, whatever short cuts the connector's
coder takes for speed."""

from __future__ import annotations

import base64
import random
import struct
from itertools import accumulate

import pytest

from connector.core import b85
from connector.state import parts
from connector.state.prints import KNOWN_LIMIT, PRINTS


def rice(prints: list[int]) -> bytes:
    """A set's body, plainly: count and k, the gaps' low k bits (most significant first, zeros
    in front to whole bytes), then their high parts in unary, least significant bit first."""
    gaps = [b - a for a, b in zip([-1, *prints], prints, strict=False)]
    n = len(gaps)
    k = 0
    if n:
        guess = max(0, int(PRINTS / n * 0.69).bit_length() - 1)
        costs = [(sum(g >> j for g in gaps) + j * n, j) for j in (guess - 1, guess, guess + 1)
                 if j >= 0]
        k = min(costs)[1]  # the cheapest; of equals, the smallest
    low = [(g >> (k - 1 - i)) & 1 for g in gaps for i in range(k)]
    low = [0] * (-len(low) % 8) + low
    unary = [bit for g in gaps for bit in [0] * (g >> k) + [1]]
    unary += [0] * (-len(unary) % 8)
    return (struct.pack(">HB", n, k)
            + bytes(int("".join(map(str, low[i:i + 8])), 2) for i in range(0, len(low), 8))
            + bytes(int("".join(map(str, unary[i:i + 8][::-1])), 2)
                    for i in range(0, len(unary), 8)))


def unrice(body: bytes) -> list[int]:
    """What a set's body holds, plainly, or ValueError: what does not add up is refused."""
    if len(body) < 3:
        raise ValueError("short")
    n, k = struct.unpack(">HB", body[:3])
    if n > KNOWN_LIMIT or k > 63 or (not n and k > 1):
        raise ValueError("bounds")  # an empty set is written with k 0 (1 was read too)
    split = 3 + (n * k + 7) // 8
    if len(body) < split:
        raise ValueError("cut short")
    low = "".join(f"{b:08b}" for b in body[3:split])
    low, pad = low[len(low) - n * k:], low[:len(low) - n * k]
    if "1" in pad:
        raise ValueError("low bits past the codes")
    unary = "".join(f"{b:08b}"[::-1] for b in body[split:]) if n else ""
    if unary.count("1") != n:
        raise ValueError("not n codes")
    prints, at, last = [], 0, -1
    for i in range(n):
        high = unary.index("1", at) - at
        at += high + 1
        last += (high << k) + (int(low[i * k:(i + 1) * k], 2) if k else 0)
        prints.append(last)
    if prints and (prints[0] < 0 or prints[-1] >= PRINTS):
        raise ValueError("out of bounds")
    return prints


def _sets() -> list[list[int]]:
    rng = random.Random(18)
    sets = [sorted(rng.sample(range(PRINTS), n)) for n in range(41) for _ in range(12)]
    sets += [sorted(rng.sample(range(lo, lo + span), n)) for n, lo, span in
             [(5, 0, 5), (3, PRINTS - 3, 3), (30, 10**6, 40), (2, 0, PRINTS), (20, 0, 2**20)]]
    sets += [[0], [PRINTS - 1], [0, PRINTS - 1]]
    for n in range(1, 41):  # gaps near multiples of 2**(k - 1): codes as long for two k
        unit = 1 << int(PRINTS / n * 0.69).bit_length() - 2
        gaps = [max(1, rng.choice((0, 1, 2, 2, 3, 4, 6)) * unit + rng.choice((0, 1, -1)))
                for _ in range(n)]
        prints = list(accumulate(gaps, initial=-1))[1:]
        sets += [prints] if prints[-1] < PRINTS else []
    sets += [sorted(rng.sample(range(PRINTS), n)) for n in (33, 100, 1250, 4968, KNOWN_LIMIT)]
    return sets


SETS = _sets()


def test_every_set_is_stored_as_the_plain_coder_writes_it_and_reads_back():
    for prints in SETS:
        for kind in (parts.RECENT, parts.SET):
            data = parts.Part(kind, prints).sealed()
            assert data == parts.seal(kind, rice(prints))
            text = parts.Part(kind, prints).encode()
            assert text == base64.b85encode(data).decode()
            part = parts.unsealed(b85.decode(text), text)
            assert (part.kind, part.prints, part.sealed(), part.encode()) == (kind, prints,
                                                                              data, text)


def _damaged(rng: random.Random, body: bytes) -> bytes:
    body = bytearray(body)
    how = rng.randrange(5)
    if how == 0 and body:  # a bit flipped
        i = rng.randrange(len(body))
        body[i] ^= 1 << rng.randrange(8)
    elif how == 1:  # cut short, or longer
        body = body[:rng.randrange(len(body) + 1)] if rng.random() < 0.5 else \
            body + bytes([rng.choice((0, 1, 0x80, 0xFF))]) * rng.randrange(1, 4)
    elif how == 2:  # another count
        body[0:2] = rng.randrange(KNOWN_LIMIT + 2).to_bytes(2, "big")
    elif how == 3:  # another k
        body[2] = rng.choice((0, 1, 62, 63, 64, body[2] - 1, body[2] + 1)) % 256
    else:  # a byte anywhere
        body[rng.randrange(len(body))] = rng.randrange(256)
    return bytes(body)


def test_a_damaged_part_reads_as_the_plain_decoder_reads_it():
    # A part's CRC keeps damage out; what lies behind it must still agree with the plain
    # reading, to the error: these are sealed again after the damage, so they check.
    rng = random.Random(22)
    refused = 0
    for prints in SETS:
        for _ in range(20 if len(prints) < 100 else 2):
            data = parts.seal(parts.SET, _damaged(rng, rice(prints)))
            try:
                expected = unrice(data[1:-4])  # the body as sealed: padded to whole words
            except ValueError:
                expected = None
            try:
                got = parts.unsealed(data).prints
            except ValueError:
                got = None
            assert got == expected, data
            refused += got is None
    assert refused > 100  # the damage was not all harmless


@pytest.mark.parametrize("size", [*range(0, 300, 4), 4095, 20_001])
def test_base85_of_parts_of_every_size_is_the_standard_librarys(size):
    data = random.Random(size).randbytes(size)
    text = base64.b85encode(data).decode()
    assert b85.encode(data) == text and b85.decode(text) == data
