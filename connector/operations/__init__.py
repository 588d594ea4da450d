"""Operations: the action and the two triggers. They use the core and the triggers' state
(connector.state), and know nothing of surfaces."""

from __future__ import annotations

from .registry import (
    FOLLOWED,
    MODES,
    OPERATIONS,
    PLATFORM_SOURCES,
    TRIGGERS,
    UNFOLLOWED,
    Operation,
    prepare,
    request_source,
)
from .results import CREDITS_PER_REQUEST, Partial, Result

__all__ = ["CREDITS_PER_REQUEST", "FOLLOWED", "MODES", "OPERATIONS", "PLATFORM_SOURCES",
           "TRIGGERS", "UNFOLLOWED", "Operation", "Partial", "Result", "prepare",
           "request_source"]
