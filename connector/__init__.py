"""TikTok Following connector: DumplingAI's get-tiktok-user-following for automation runners.

    import connector
    result = connector.run("get_tiktok_user_following", {"handle": "@someone"})
    result.items, result.meta

This module is the whole public API (`__all__`): the operations (`run`, `stream`,
`check_credentials`) and their results, the settings, the HTTP client seam, the embedded store,
`watch` (`Watcher`, `WatcherGroup`, `Webhook`, `Outbox`, `Metrics`, `watch_status`) and the
error tree. The stand-in server is a testing tool, imported from `connector.standin`. Names
are imported on first use, so `import connector` stays as cheap as the CLI's `--help`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # The operations, and what they return.
    "run": "connector.api",
    "stream": "connector.api",
    "check_credentials": "connector.api",
    "CONNECTOR": "connector.api",
    "Result": "connector.operations.results",
    "Partial": "connector.operations.results",
    "Listing": "connector.operations.action",
    # Settings, and the seam for a client of one's own.
    "RetryPolicy": "connector.core.config",
    "Timeouts": "connector.core.config",
    "Client": "connector.core.http",
    "Page": "connector.core.http",
    "PageSource": "connector.core.http",
    # The embedded store (`poll`).
    "open_store": "connector.store",
    "Store": "connector.store",
    "Batch": "connector.store",
    # `watch` and its outbox.
    "Watcher": "connector.watch.watcher",
    "WatcherGroup": "connector.watch.processes",
    "Webhook": "connector.watch.webhook",
    "Outbox": "connector.storage.outbox",
    "watch_status": "connector.watch.status",
    "Metrics": "connector.watch.metrics",
    # The error tree.
    "ConnectorError": "connector.core.errors",
    "InputError": "connector.core.errors",
    "ConfigurationError": "connector.core.errors",
    "StateError": "connector.core.errors",
    "ApiError": "connector.core.errors",
    "BadRequestError": "connector.core.errors",
    "AuthenticationError": "connector.core.errors",
    "InsufficientCreditsError": "connector.core.errors",
    "NotFoundError": "connector.core.errors",
    "ServerError": "connector.core.errors",
    "UpstreamError": "connector.core.errors",
    "RateLimitError": "connector.core.errors",
    "ResponseFormatError": "connector.core.errors",
    "TransportError": "connector.core.errors",
    "StateConflict": "connector.core.errors",
    "DatabaseUnavailable": "connector.core.errors",
}

__all__ = sorted([*_EXPORTS, "__version__"])

#: Names this module exported before it was the product's API alone: where they are now.
_MOVED = {
    "StandIn": "connector.standin.StandIn (a testing tool)",
    "Fault": "connector.standin.Fault (a testing tool)",
    "prepare": "connector.operations.prepare",
    "manifests": "connector.CONNECTOR.manifest and .operations, or connector.core.manifests",
}

if TYPE_CHECKING:  # pragma: no cover
    from .api import CONNECTOR, check_credentials, run, stream
    from .core.config import RetryPolicy, Timeouts
    from .core.errors import (
        ApiError,
        AuthenticationError,
        BadRequestError,
        ConfigurationError,
        ConnectorError,
        DatabaseUnavailable,
        InputError,
        InsufficientCreditsError,
        NotFoundError,
        RateLimitError,
        ResponseFormatError,
        ServerError,
        StateConflict,
        StateError,
        TransportError,
        UpstreamError,
    )
    from .core.http import Client, Page, PageSource
    from .operations.action import Listing
    from .operations.results import Partial, Result
    from .storage.outbox import Outbox
    from .store import Batch, Store, open_store
    from .watch.metrics import Metrics
    from .watch.processes import WatcherGroup
    from .watch.status import watch_status
    from .watch.watcher import Watcher
    from .watch.webhook import Webhook


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        moved = f"; it is {_MOVED[name]}" if name in _MOVED else ""
        raise AttributeError(f"module 'connector' has no attribute {name!r}{moved}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
