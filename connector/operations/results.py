"""What an operation returns, and what a multi-page read that failed part-way leaves.

Plain classes, not dataclasses: generating a dataclass's methods at import costs more CPU than
a single call spends on its page (see core/config.py).
"""

from __future__ import annotations

from typing import Any

from ..core.config import CREDITS_PER_REQUEST

__all__ = ["CREDITS_PER_REQUEST", "Partial", "Result"]


class Result:
    """What an operation returns: emitted items, the state to keep, and what it cost."""

    __slots__ = ("items", "meta", "state")

    def __init__(self, items: list[dict[str, Any]], state: dict[str, Any] | None,
                 meta: dict[str, Any] | None = None) -> None:
        self.items = items
        self.state = state
        self.meta = meta if meta is not None else {}

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
