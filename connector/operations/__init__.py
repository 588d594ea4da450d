"""Operations: the action and the two triggers. They use the core and know nothing of surfaces."""

from __future__ import annotations

from .registry import (
    MODES,
    PLATFORM_SOURCES,
    REQUEST_SOURCES,
    prepare,
    registry,
    request_source,
    triggers,
)
from .results import CREDITS_PER_REQUEST, Partial, Result

__all__ = ["CREDITS_PER_REQUEST", "MODES", "PLATFORM_SOURCES", "REQUEST_SOURCES", "Partial",
           "Result", "prepare", "registry", "request_source", "triggers"]
