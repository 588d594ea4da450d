"""The "New Account Followed" trigger's state: a small, versioned JSON object that the runner
(or a database) keeps.

What it remembers, and why that is enough:
- `watermark`: the follow-time cursor of the newest follow seen. The next poll reads down only
  until a page reaches it: everything newer is on the pages before. `base`: a cursor the
  upstream handed out at or below it (see operations/walk.py). `watermarkAccount`: the
  fingerprint (prints.py) of the account the watermark came from, the newest on the page it
  was taken from; follows made later in the watermark's second are listed above it (see
  `_short` in operations/range_walk.py). States written before it was kept have none.
- `known`: the accounts emitted, baselined or proven old, at most KNOWN_LIMIT (5,000), the
  upstream's own depth cap, as fingerprints (memory.py); `recent`, the newest of them apart.
  They tell new from old on the page where a walk stops, and keep re-follows and page-boundary
  repeats from being emitted twice.
- `gaps`: ranges of follows detected but not read yet (gaps.py).
At 5,000 remembered accounts the JSON is under 26 KB. State of versions 1 (identities as a
plain list of strings) and 2 (32-bit fingerprints) still loads.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import StateError
from .envelope import RESTORE, SplitState, check_account, check_envelope, damaged
from .gaps import Gap, gaps_from_json
from .memory import Memory
from .parts import SEGMENT
from .prints import KNOWN_LIMIT

STATE_VERSION = 3
#: The longest part text this connector writes is about 25,000 characters.
_MAX_PART = 64 * 1024
_MAX_KEY = 300
#: The fields each version of this state has: any other is refused (check_fields).
_FIELDS = {v: {"v", "handle", "watermark", "known", "gaps"} for v in (1, 2)}
# `watermarkAccount` came later in version 3: optional, and absent, the poll is what it was
# before it came (see operations/range_walk.py `_short`).
_FIELDS[3] = _FIELDS[1] | {"base", "watermarkAccount", "recent"}
#: Per version: how many `known` entries at most, how long each, and what they are.
_KNOWN = {1: (KNOWN_LIMIT, _MAX_KEY, "account ids"),
          2: (KNOWN_LIMIT // SEGMENT + 2, 8 * SEGMENT, "segments"),
          3: (1 + KNOWN_LIMIT // SEGMENT, _MAX_PART, "parts")}


@dataclass
class FollowState(SplitState):
    handle: str
    watermark: Any = None
    known: Memory = field(default_factory=Memory)
    gaps: list[Gap] = field(default_factory=list)
    base: Any = None
    #: The fingerprint of the account the watermark came from, or None (see the module).
    watermark_account: int | None = None

    PARTS = "known"

    def _fields(self, parts: list[str] | None) -> dict[str, Any]:
        account = {} if self.watermark_account is None else {
            "watermarkAccount": self.watermark_account}
        return {
            "v": STATE_VERSION,
            "handle": self.handle,
            "watermark": self.watermark,
            "base": self.base,
            **account,
            # The newest remembered, which most polls change, apart from `known`: a database
            # keeps them in the state's own row, rewritten by every save anyway (see Memory).
            "recent": self.known.recent_texts(),
            "known": parts,
            "gaps": [g.to_json() for g in self.gaps],
        }

    def _parts(self, text: bool) -> list[Any]:
        return self.known.known_texts() if text else self.known.known_bytes()

    @classmethod
    def _load(cls, data: dict[str, Any], parts: list[bytes | str] | None) -> FollowState:
        if "v" not in data:
            raise StateError("state has no version field 'v': it was not written by this "
                             f"connector; {RESTORE}")
        version, handle, watermark, base = check_envelope(data, STATE_VERSION, _FIELDS)
        known = data.get("known", []) if parts is None else parts
        kinds = str if parts is None else (str, bytes)
        limit, longest, what = _KNOWN[version]
        if not isinstance(known, list) or not all(
            isinstance(k, kinds) and 0 < len(k) <= longest for k in known
        ):
            raise damaged(f"'known' must be a list of {what}")
        if len(known) > limit:
            raise damaged(f"'known' holds {len(known)} entries, more than the {limit} this "
                          f"connector keeps")
        recent = data.get("recent", [])
        if not isinstance(recent, list) or len(recent) > 1 or not all(
            isinstance(r, str) and 0 < len(r) <= _MAX_PART for r in recent
        ):
            raise damaged("'recent' must be a list of at most 1 part")
        try:
            memory = Memory.load(known, version, recent)
        except (ValueError, zlib.error):
            raise damaged("'known' does not decode") from None
        return cls(handle=handle, watermark=watermark, base=base, known=memory,
                   gaps=gaps_from_json(data.get("gaps", []), with_base=version >= 3,
                                       with_account=version >= 3),
                   watermark_account=check_account(data.get("watermarkAccount"),
                                                   "'watermarkAccount'"))
