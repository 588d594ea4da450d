"""Fingerprints: what a remembered account is kept as, and the loss bound they give.

A new follow whose fingerprint equals a remembered one is taken for that account and never
emitted: with KNOWN_LIMIT remembered, at most once in 1.02 x 10^9 new follows.
"""

from __future__ import annotations

import hashlib

#: The most accounts a trigger remembers: the upstream's own depth cap.
KNOWN_LIMIT = 5000
#: Fingerprints are whole numbers below this (about 2**42.2): with KNOWN_LIMIT remembered, a
#: new account is taken for one of them at most once in 1.02 billion (false_positive_rate).
PRINTS = 5_100_000_000_000


def fingerprint(key: str) -> int:
    """The fingerprint an identity is remembered by: a whole number below PRINTS."""
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
