"""TikTok Following connector: DumplingAI's get-tiktok-user-following for automation runners.

    import connector
    result = connector.run("get_tiktok_user_following", {"handle": "@someone"})
    result.items, result.meta

Names are imported on first use, so `import connector` stays as cheap as the CLI's `--help`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "run": "connector.api",
    "check_credentials": "connector.api",
    "stream": "connector.api",
    "Listing": "connector.operations.action",
    "prepare": "connector.operations.registry",
    "Result": "connector.operations.results",
    "Partial": "connector.operations.results",
    "RetryPolicy": "connector.core.config",
    "Timeouts": "connector.core.config",
    "Client": "connector.core.http",
    "Store": "connector.polling",
    "open_store": "connector.polling",
    "Batch": "connector.polling",
    "manifests": "connector.core.manifests",
    "StandIn": "connector.standin.server",
    "Fault": "connector.standin.faults",
    "CONNECTOR": "connector.api",
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
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from .api import CONNECTOR, check_credentials, run, stream
    from .core import manifests
    from .core.config import RetryPolicy, Timeouts
    from .core.errors import (
        ApiError,
        AuthenticationError,
        BadRequestError,
        ConfigurationError,
        ConnectorError,
        InputError,
        InsufficientCreditsError,
        NotFoundError,
        RateLimitError,
        ResponseFormatError,
        ServerError,
        StateError,
        TransportError,
        UpstreamError,
    )
    from .core.http import Client
    from .operations import Partial, Result, prepare
    from .operations.action import Listing
    from .polling import Batch, Store, open_store
    from .standin import Fault, StandIn


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'connector' has no attribute {name!r}")
    value = importlib.import_module(module)
    if name != "manifests":
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
