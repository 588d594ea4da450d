"""The trigger's state: a small, versioned JSON object that the runner (or SQLite) keeps.

What it remembers, and why that is enough:
- `watermark`: the follow-time cursor of the newest follow seen. The next poll reads down only
  until a page reaches it: everything newer is on the pages before.
- `known`: identity keys of the most recently seen accounts, newest first, at most
  KNOWN_LIMIT (5,000). They tell new from old on the page where a poll stops, and keep
  re-follows and page-boundary repeats from being emitted twice. 5,000 is the upstream's own
  depth cap: the list never shows more, so an account forgotten here is one the upstream
  could only show again by being re-followed after 5,000 newer follows.
- `gaps`: cursor ranges of follows detected but not yet read because a burst exceeded one
  poll's page budget; later polls read them. At most GAP_LIMIT; past that the trigger catches
  up before it reads new follows, so nothing is dropped.
At the bounds the JSON is about 110 KB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import StateError

STATE_VERSION = 1
KNOWN_LIMIT = 5000
GAP_LIMIT = 20


@dataclass
class Gap:
    """Follows between two cursors still to read: from `start` (exclusive) down to `stop`."""

    start: Any
    stop: Any
    tries: int = 0


@dataclass
class TriggerState:
    handle: str
    watermark: Any = None
    known: list[str] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "handle": self.handle,
            "watermark": self.watermark,
            "known": self.known[:KNOWN_LIMIT],
            "gaps": [{"from": g.start, "to": g.stop, "tries": g.tries} for g in self.gaps],
        }

    @classmethod
    def from_json(cls, data: Any) -> TriggerState:
        """Parse stored state; anything unexpected is a StateError, never a silent reset."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise StateError("state is not valid JSON; restore it from the runner's "
                                 "history, or pass null state to start a new baseline") from exc
        if not isinstance(data, dict):
            raise StateError("state must be a JSON object written by this connector "
                             "(or null for a first run)")
        version = data.get("v")
        if not isinstance(version, int):
            raise StateError("state has no version field 'v': it was not written by this "
                             "connector; pass null state to start a new baseline")
        if version > STATE_VERSION:
            raise StateError(f"state is version {version}, newer than this connector "
                             f"understands ({STATE_VERSION}); upgrade tiktok-following-connector")
        try:
            handle = data["handle"]
            known = data.get("known", [])
            gaps = [Gap(g["from"], g["to"], int(g.get("tries", 0))) for g in data.get("gaps", [])]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StateError(f"state is damaged ({exc!r}); restore it, or pass null state to "
                             "start a new baseline") from exc
        if not isinstance(handle, str) or not isinstance(known, list) or not all(
            isinstance(k, str) for k in known
        ):
            raise StateError("state is damaged (handle or known ids of the wrong type); "
                             "restore it, or pass null state to start a new baseline")
        return cls(handle=handle, watermark=data.get("watermark"), known=known, gaps=gaps)
