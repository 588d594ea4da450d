"""Operations: the action and the trigger. They use the core and know nothing of surfaces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import InputError

REQUEST_SOURCES = ("API", "WEB", "MAKE_DOT_COM", "ZAPIER", "N8N", "PLAYGROUND",
                   "DEFAULT_AUTOMATION", "AGENT_PREVIEW", "AGENT_LIVE", "AUTOPILOT", "STUDIO")
PLATFORM_SOURCES = {None: "API", "api": "API", "zapier": "ZAPIER", "n8n": "N8N",
                    "make": "MAKE_DOT_COM"}
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


def request_source(platform: str | None, explicit: str | None = None) -> str:
    """`requestSource` for every request: the explicit input if given, else the platform's."""
    if explicit is not None:
        if explicit not in REQUEST_SOURCES:
            raise InputError(f"requestSource must be one of {', '.join(REQUEST_SOURCES)}; "
                             f"got {explicit!r}", field="requestSource")
        return explicit
    if not (platform is None or isinstance(platform, str)) or platform not in PLATFORM_SOURCES:
        raise InputError("platform must be one of zapier, n8n, make, api; "
                         f"got {platform!r}", field="platform")
    return PLATFORM_SOURCES[platform]


def registry() -> dict[str, Callable[..., Result]]:
    """Operation key -> function(client, inputs, *, source, state, mode) -> Result."""
    from . import action, trigger

    return {action.KEY: action.run, trigger.KEY: trigger.run}
