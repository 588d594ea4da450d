"""The operations by key, and everything about a call that can be checked before sending."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from types import ModuleType
from typing import Any, NamedTuple

from ..core.errors import InputError
from ..core.handles import normalize_handle
from ..core.manifests import prepare_inputs
from ..core.redact import shown
from .results import Result

#: The `requestSource` each platform's requests carry. The manifests' `requestSource` enum
#: (what a user may choose instead) lists these values; a test keeps them equal.
PLATFORM_SOURCES = {None: "API", "api": "API", "zapier": "ZAPIER", "n8n": "N8N",
                    "make": "MAKE_DOT_COM"}
MODES = ("live", "test")


class Operation(NamedTuple):
    """One operation: its key (as in the manifests), the module of this package that carries
    it out (its `run`; a trigger's `State` too), and for a trigger the kind of event its items
    are, in the outbox and on webhooks."""

    key: str
    module: str
    event: str | None = None


# The kinds of event, one per trigger.
FOLLOWED = "followed"
UNFOLLOWED = "unfollowed"

ACTION = Operation("get_tiktok_user_following", "action")
NEW_FOLLOWS = Operation("new_account_followed", "followed", FOLLOWED)
UNFOLLOWS = Operation("account_unfollowed", "unfollowed", UNFOLLOWED)
#: Every operation by key: the one list (manifests/connector.json lists the same keys, for
#: runners; a test keeps them equal). Modules are imported on first use, each alone: a single
#: call of one operation does not pay for importing the others.
OPERATIONS = {op.key: op for op in (ACTION, NEW_FOLLOWS, UNFOLLOWS)}
#: Event kind -> the trigger whose items are events of that kind.
TRIGGERS = {op.event: op for op in OPERATIONS.values() if op.event is not None}


@cache
def module(key: str) -> ModuleType:
    """The module that carries out the operation `key` (looked up once: a watch asks for
    every poll)."""
    from importlib import import_module

    return import_module(f"{__package__}.{OPERATIONS[key].module}")


def runner(key: str) -> Callable[..., Result]:
    """run(source, inputs, *, request_source, state, mode) -> Result of one operation."""
    return module(key).run  # type: ignore[no-any-return]


def check_trigger(key: Any) -> Operation:
    """The trigger `key` names, or an InputError naming the operation."""
    op = OPERATIONS.get(key) if isinstance(key, str) else None
    if op is None or op.event is None:
        keys = ", ".join(t.key for t in TRIGGERS.values())
        raise InputError(f"operation must be a trigger ({keys}); got {shown(key)}",
                         field="operation")
    return op


def request_source(platform: Any) -> str:
    """The `requestSource` of `platform`'s requests, or an InputError naming `platform`."""
    if not (platform is None or isinstance(platform, str)) or platform not in PLATFORM_SOURCES:
        raise InputError("platform must be one of zapier, n8n, make, api; "
                         f"got {shown(platform)}", field="platform")
    return PLATFORM_SOURCES[platform]


def prepare(
    operation: Any, inputs: Any, *, platform: Any = None, mode: Any = "live"
) -> tuple[dict[str, Any], str]:
    """Validate everything about a call that needs no network: operation, inputs, platform,
    mode. Returns the inputs with defaults applied and the handle normalised (once, here),
    and the requestSource to send."""
    if not isinstance(operation, str) or operation not in OPERATIONS:
        raise InputError(f"unknown operation {shown(operation)}; the operations are: "
                         f"{', '.join(OPERATIONS)}", field="operation")
    if mode not in MODES:
        raise InputError(f"mode must be 'live' or 'test', got {shown(mode)}", field="mode")
    source = request_source(platform)  # the platform is checked even when an input overrides it
    if isinstance(inputs, Mapping) and "handle" in inputs:
        # Normalised first, once: its error says more than the schema's pattern can.
        inputs = {**inputs, "handle": normalize_handle(inputs["handle"])}
    values = prepare_inputs(operation, inputs)
    # The one place the precedence is decided: a requestSource the user chose (one of the
    # manifest's enum, checked above) over the platform's.
    return values, values.pop("requestSource", None) or source
