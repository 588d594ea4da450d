"""The Python surface: `run()` one operation the way a runner would."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .core.config import RetryPolicy, Timeouts, resolve_credentials
from .core.errors import InputError
from .core.handles import normalize_handle
from .core.http import Client
from .core.manifests import prepare_inputs
from .operations import Result, registry, request_source

MODES = ("live", "test")


def prepare(
    operation: str, inputs: Any, *, platform: str | None = None, mode: str = "live"
) -> tuple[dict[str, Any], str]:
    """Validate everything about a call that needs no network: inputs, platform, mode.

    Returns the inputs with defaults applied and the requestSource to send.
    """
    if not isinstance(operation, str) or operation not in registry():
        raise InputError(f"unknown operation {operation!r}; the operations are: "
                         f"{', '.join(registry())}", field="operation")
    if platform is not None and not isinstance(platform, str):
        # Checked here: a list or object would otherwise crash the lookup, not name the field.
        raise InputError(f"platform must be one of zapier, n8n, make, api; got {platform!r}",
                         field="platform")
    if mode not in MODES:
        raise InputError(f"mode must be 'live' or 'test', got {mode!r}", field="mode")
    values = prepare_inputs(operation, inputs)
    values["handle"] = normalize_handle(values.get("handle"))
    source = request_source(platform, values.pop("requestSource", None))
    return values, source


def run(
    operation: str,
    inputs: Mapping[str, Any] | None,
    *,
    credentials: Mapping[str, Any] | None = None,
    platform: str | None = None,
    state: Any = None,
    mode: str = "live",
    client: Client | None = None,
    retry: RetryPolicy | None = None,
    timeouts: Timeouts | None = None,
    on_page: Callable[[int, int], None] | None = None,
) -> Result:
    """Run an operation and return its Result (`.items`, `.state`, `.meta`).

    Inputs are validated against the operation's manifest before anything is sent; errors
    raise the ConnectorError tree. Credentials default to DUMPLINGAI_API_KEY and
    DUMPLINGAI_BASE_URL. Pass `client` to share one pooled session across many calls;
    `on_page(pages, items)` is called after each page (progress indicators).
    """
    # Anything but a mapping goes to prepare() as it is, to be refused as `inputs`.
    given = dict(inputs) if isinstance(inputs, Mapping) else inputs
    values, source = prepare(operation, given, platform=platform, mode=mode)
    op = registry()[operation]
    options: dict[str, Any] = {"source": source, "state": state, "mode": mode}
    if on_page is not None:
        options["on_page"] = on_page
    if client is not None:
        return op(client, values, **options)
    creds = resolve_credentials(credentials)
    with Client(creds, retry=retry, timeouts=timeouts) as own:
        return op(own, values, **options)
