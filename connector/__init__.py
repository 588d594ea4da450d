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

#: Each public name, by the module it comes from.
_EXPORTS = {name: module for module, names in [
    # The operations, and what they return.
    ("connector.api", ("run", "stream", "check_credentials", "CONNECTOR")),
    ("connector.operations.results", ("Result", "Partial")),
    ("connector.operations.action", ("Listing",)),
    # Settings, and the seam for a client of one's own.
    ("connector.core.config", ("RetryPolicy", "Timeouts")),
    ("connector.core.http", ("Client", "Page", "PageSource")),
    # The embedded store (`poll`).
    ("connector.store", ("open_store", "Store", "Batch")),
    # `watch` and its outbox.
    ("connector.watch.watcher", ("Watcher",)),
    ("connector.watch.processes", ("WatcherGroup",)),
    ("connector.watch.webhook", ("Webhook",)),
    ("connector.storage.outbox", ("Outbox",)),
    ("connector.watch.status", ("watch_status",)),
    ("connector.watch.metrics", ("Metrics",)),
    # The error tree.
    ("connector.core.errors", (
        "ConnectorError", "InputError", "ConfigurationError", "StateError", "ApiError",
        "BadRequestError", "AuthenticationError", "InsufficientCreditsError", "NotFoundError",
        "ServerError", "UpstreamError", "RateLimitError", "ResponseFormatError",
        "TransportError", "StateConflict", "DatabaseUnavailable")),
] for name in names}

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
