"""What an operation returns, and what a multi-page read that failed part-way leaves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: What one successful request costs; failed requests cost nothing.
CREDITS_PER_REQUEST = 10


@dataclass
class Result:
    """What an operation returns: emitted items, the state to keep, and what it cost."""

    items: list[dict[str, Any]]
    state: dict[str, Any] | None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Partial:
    """What a multi-page read fetched before an error, and where to resume it."""

    items: list[dict[str, Any]]
    next_cursor: Any
    pages: int

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "nextCursor": self.next_cursor, "pages": self.pages,
                "creditsUsed": self.pages * CREDITS_PER_REQUEST}
