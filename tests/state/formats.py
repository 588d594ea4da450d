"""Every form of trigger state a release of this connector has written, for the tests that
check it all still loads: version-1 and version-2 follow states as their releases made them,
and the runner JSON of the release before the state package (tests/data/runner_states.json,
made by that release's code from fixed inputs: a version-3 follow state with a held set, a
recent part and version-2 segments kept as legacy parts, and a version-2 unfollow state of
600 accounts in three blocks)."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import zlib
from array import array
from typing import Any

from tests.support import ROOT

HANDLE = "alice"


def previous_release() -> dict[str, dict[str, Any]]:
    """{"followed": ..., "unfollowed": ...}: runner JSON exactly as the previous release wrote
    it."""
    return json.loads((ROOT / "tests" / "data" / "runner_states.json").read_text())


def v1_state(ids: list[str], watermark: int = 9) -> dict[str, Any]:
    """The first release's state: the identity keys themselves, newest first."""
    return {"v": 1, "handle": HANDLE, "watermark": watermark, "known": ids, "gaps": []}


def v2_state() -> dict[str, Any]:
    """A version-2 state as its release wrote it: 32-bit fingerprints of these ids in segments
    of 1,250, newest first."""
    ids = [str(7_000_000_000_000_000_000 + i) for i in range(2600)]
    segments = [v2_segment(ids[at:at + 1250]) for at in range(0, len(ids), 1250)]
    return {"v": 2, "handle": HANDLE, "watermark": 1_700_000_000, "known": segments[::-1],
            "gaps": [{"from": 1_700_000_500, "to": 1_700_000_000, "tries": 2, "wait": 1}]}


def v2_segment(ids: list[str]) -> str:
    """Version 2's segment of these ids: the deltas of their sorted 32-bit fingerprints in four
    byte planes, deflated, in base85."""
    prints = sorted({int.from_bytes(hashlib.blake2b(k.encode(), digest_size=4).digest(), "big")
                     for k in ids})
    deltas = array("I", [b - a for a, b in zip([0, *prints], prints, strict=False)])
    if sys.byteorder == "little":
        deltas.byteswap()
    raw = deltas.tobytes()
    return base64.b85encode(zlib.compress(b"".join(raw[i::4] for i in range(4)), 9)).decode()
