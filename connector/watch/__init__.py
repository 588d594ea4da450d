"""`watch`: deliver new follows of many handles to a webhook, through the outbox.

    from connector.watch import Watcher, Outbox
    with Watcher(["alice", "bob"], "https://hooks.example/abc", store="watch.db") as w:
        print(w.run_cycle().line())

`WatcherGroup` does the same over several processes (`watch --processes N`).

Names are imported on first use, so the CLI's `--help` does not load urllib3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Watcher": "connector.watch.watcher",
    "WatcherGroup": "connector.watch.processes",
    "CycleSummary": "connector.watch.summary",
    "HandlePoll": "connector.watch.summary",
    "Webhook": "connector.watch.webhook",
    "WebhookReply": "connector.watch.webhook",
    "Deliverer": "connector.watch.delivery",
    "Backoff": "connector.watch.delivery",
    "DeliveryPass": "connector.watch.delivery",
    "Pacer": "connector.watch.pacing",
    "Reconnect": "connector.watch.outage",
    "Outbox": "connector.storage.outbox",
    "parse_interval": "connector.watch.schedule",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from ..storage.outbox import Outbox  # noqa: F401
    from .delivery import Backoff, Deliverer, DeliveryPass  # noqa: F401
    from .outage import Reconnect  # noqa: F401
    from .pacing import Pacer  # noqa: F401
    from .processes import WatcherGroup  # noqa: F401
    from .schedule import parse_interval  # noqa: F401
    from .summary import CycleSummary, HandlePoll  # noqa: F401
    from .watcher import Watcher  # noqa: F401
    from .webhook import Webhook, WebhookReply  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'connector.watch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
