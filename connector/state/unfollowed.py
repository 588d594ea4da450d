"""The "Account Unfollowed" trigger's state: the walk's place (watermark, base, gaps, as the
follow trigger's), the roster of followed accounts as last seen (roster.py), the count's
offset, and the read of the list in progress, if any (Scan)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.errors import StateError
from .envelope import SplitState, check_cursor, check_envelope, check_fields, check_flag, damaged
from .gaps import MAX_TRIES, MAX_WAIT, Gap, backoff, gaps_from_json
from .roster import Roster

#: 2 adds the watermark's `base`, and a scan's `recheck`.
STATE_VERSION = 2
#: What the state says it is: the trigger's operation key, fixed in the format (a state must
#: load whatever the operation comes to be called).
TRIGGER = "account_unfollowed"
#: A roster larger than this is damage: the upstream lists about 5,000 accounts, and a full
#: read drops the ones pushed below its depth cap.
ROSTER_LIMIT = 50_000

# Why a read of the list runs.
BASELINE = "baseline"  # the first poll: learn the list, emit nothing
FULL = "full"  # every `reconcileEvery` polls: read to the end and re-sync
SHORT = "short"  # the count came up short: read until the missing accounts are found
MODES = (BASELINE, FULL, SHORT)

#: The fields each version of this state has, and of its scan: any other is refused.
_FIELDS = {1: {"v", "trigger", "handle", "watermark", "gaps", "offset", "sinceFull",
               "shortScans", "capped", "clock", "scan", "accounts"}}
_FIELDS[2] = _FIELDS[1] | {"base"}
_SCAN_FIELDS = {1: {"from", "mode", "began", "polls", "tries", "wait"}}
_SCAN_FIELDS[2] = _SCAN_FIELDS[1] | {"recheck"}


@dataclass
class Scan:
    """A read of the whole list in progress: where it goes on from (None: the newest follow),
    why it runs, when it began (epoch ms), and how its reading has gone."""

    cursor: Any
    mode: str
    began: int
    polls: int = 0
    tries: int = 0
    wait: int = 0
    #: This read reads the list again because the last one ended where it could not tell
    #: the list's end from a place where the upstream stops listing.
    recheck: bool = False

    def failed(self, cursor: Any) -> None:
        """The upstream broke the read off at `cursor`: go on from there after 1, 2, 4 ...
        polls."""
        self.cursor = cursor
        self.tries, self.wait = backoff(self.tries)

    def to_json(self) -> dict[str, Any]:
        out = {"from": self.cursor, "mode": self.mode, "began": self.began,
               "polls": self.polls, "tries": self.tries, "wait": self.wait}
        if self.recheck:
            out["recheck"] = True
        return out

    @classmethod
    def from_json(cls, raw: Any, version: int = STATE_VERSION) -> Scan:
        if not isinstance(raw, dict) or raw.get("mode") not in MODES:
            raise damaged(f"'scan' must be null or an object with a mode ({', '.join(MODES)})")
        check_fields(raw, _SCAN_FIELDS[version], "the scan")
        check_cursor(raw.get("from"), "scan 'from'")
        numbers = [raw.get(k, 0) for k in ("began", "polls", "tries", "wait")]
        if not all(type(n) is int and 0 <= n < 2**53 for n in numbers):
            raise damaged("the scan's counters must be whole numbers")
        began, polls, tries, wait = numbers
        recheck = check_flag(raw.get("recheck", False), "the scan's 'recheck'")
        return cls(raw.get("from"), raw["mode"], began, polls, min(tries, MAX_TRIES),
                   min(wait, MAX_WAIT), recheck)


@dataclass
class UnfollowState(SplitState):
    """What the trigger keeps between polls."""

    handle: str
    watermark: Any = None
    gaps: list[Gap] = field(default_factory=list)
    roster: Roster = field(default_factory=Roster)
    #: A cursor at or below the watermark that the upstream handed out (operations/walk.py).
    base: Any = None
    #: Accounts the count includes that cannot be listed (beyond the depth cap, hidden);
    #: negative when the count runs behind the list.
    offset: int = 0
    #: Polls since the last full read of the list.
    since_full: int = 0
    #: Full reads in a row that spanned polls and ended with the count below the list.
    short_scans: int = 0
    #: The last full read stopped at the upstream's depth cap.
    capped: bool = False
    #: When the last poll ran (epoch ms); each poll's time is later than the one before.
    clock: int = 0
    scan: Scan | None = None

    PARTS = "accounts"

    def _fields(self, parts: list[str] | None) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "trigger": TRIGGER,
            "handle": self.handle,
            "watermark": self.watermark,
            "base": self.base,
            "gaps": [g.to_json() for g in self.gaps],
            "offset": self.offset,
            "sinceFull": self.since_full,
            "shortScans": self.short_scans,
            "capped": self.capped,
            "clock": self.clock,
            "scan": self.scan.to_json() if self.scan is not None else None,
            "accounts": parts,
        }

    def _parts(self, text: bool) -> list[Any]:
        return self.roster.texts() if text else self.roster.blocks()

    @classmethod
    def _load(cls, data: dict[str, Any], parts: list[bytes | str] | None) -> UnfollowState:
        if data.get("trigger") != TRIGGER:
            raise StateError(f"state was not written by the Account Unfollowed trigger (it "
                             f"has no \"trigger\": \"{TRIGGER}\"); pass the state this trigger "
                             f"returned, or null to start a new baseline")
        version, handle, watermark, base = check_envelope(data, STATE_VERSION, _FIELDS)
        gaps = gaps_from_json(data.get("gaps", []), with_base=version >= 2)
        numbers = {k: data.get(k, 0) for k in ("offset", "sinceFull", "shortScans", "clock")}
        if not all(type(n) is int and abs(n) < 2**53 for n in numbers.values()) or min(
            numbers["sinceFull"], numbers["shortScans"], numbers["clock"]
        ) < 0:
            raise damaged("offset, sinceFull, shortScans and clock must be whole numbers")
        capped = check_flag(data.get("capped", False), "'capped'")
        raw_scan = data.get("scan")
        try:
            roster = Roster.load(data.get("accounts", []) if parts is None else parts,
                                 limit=ROSTER_LIMIT)
        except ValueError as exc:
            raise damaged(f"'accounts' does not decode ({exc})") from None
        return cls(handle=handle, watermark=watermark, base=base, gaps=gaps, roster=roster,
                   offset=numbers["offset"], since_full=numbers["sinceFull"],
                   short_scans=numbers["shortScans"], capped=capped, clock=numbers["clock"],
                   scan=Scan.from_json(raw_scan, version) if raw_scan is not None else None)
