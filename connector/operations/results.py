"""What an operation returns, and what a multi-page read that failed part-way leaves.

Plain classes, not dataclasses: generating a dataclass's methods at import costs more CPU than
a single call spends on its page (see core/config.py).
"""

from __future__ import annotations

from typing import Any

from ..core.config import CREDITS_PER_REQUEST
from ..state.envelope import SplitState

__all__ = ["CREDITS_PER_REQUEST", "TEST_ITEMS", "Partial", "Result"]

#: What test mode hands back at most: enough items to map fields, for one page's credits.
TEST_ITEMS = 3


class Result:
    """What an operation returns: emitted items, the state to keep, and what it cost.

    A trigger hands its new state over as an object (connector.state): `state` is its runner
    JSON, made on first use; the embedded store saves the object itself (`kept`), as a row and
    parts, without making the JSON at all. `kept` is None when the operation keeps no state,
    or handed back the state it was given, as test mode does."""

    __slots__ = ("_json", "items", "kept", "meta")

    def __init__(self, items: list[dict[str, Any]], state: dict[str, Any] | SplitState | None,
                 meta: dict[str, Any] | None = None) -> None:
        self.items = items
        self.kept, self._json = ((state, None) if isinstance(state, SplitState)
                                 else (None, state))
        self.meta = meta if meta is not None else {}

    @property
    def state(self) -> dict[str, Any] | None:
        """The state to keep, as JSON: hand it back on the next call."""
        if self._json is None and self.kept is not None:
            self._json = self.kept.to_json()
        return self._json

    def __repr__(self) -> str:
        return f"Result({len(self.items)} items, meta={self.meta!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Result):
            return NotImplemented
        return (self.items, self.state, self.meta) == (other.items, other.state, other.meta)


class Partial:
    """What a multi-page read fetched before an error, and where to resume it."""

    __slots__ = ("items", "next_cursor", "pages")

    def __init__(self, items: list[dict[str, Any]], next_cursor: Any, pages: int) -> None:
        self.items = items
        self.next_cursor = next_cursor
        self.pages = pages

    def __repr__(self) -> str:
        return (f"Partial({len(self.items)} items, next_cursor={self.next_cursor!r}, "
                f"pages={self.pages})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Partial):
            return NotImplemented
        return (self.items, self.next_cursor, self.pages) == (
            other.items, other.next_cursor, other.pages)

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "nextCursor": self.next_cursor, "pages": self.pages,
                "creditsUsed": self.pages * CREDITS_PER_REQUEST}
