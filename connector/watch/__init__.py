"""`watch`: deliver the triggers' events for many handles to a webhook, through the outbox.

Its public names are `connector`'s (`connector.Watcher`, `WatcherGroup`, `Webhook`, `Outbox`,
`Metrics`, `watch_status`);
this package is the modules behind them: watcher (one process: its cycle loop), sweep (claiming
handles), poller (one handle's poll), arguments, processes (`--processes`), webhook, delivery,
pacing, outage, summary; when to poll: schedule (fixed), adaptive (by activity), activity (the
rate estimate), backoff (hidden and failing handles), timing (all of these for a watcher);
spend (the budget); status (`tiktok-following status`); metrics (`--metrics`).
"""

from __future__ import annotations

import importlib
from typing import Any

#: Names `from connector.watch import ...` gave before `connector` was the one public surface:
#: still found, so old imports work, but not advertised (no `__all__`).
_OLD_NAMES = {
    "Watcher": "connector.watch.watcher",
    "WatcherGroup": "connector.watch.processes",
    "CycleSummary": "connector.watch.summary",
    "HandlePoll": "connector.watch.summary",
    "Webhook": "connector.watch.webhook",
    "WebhookReply": "connector.watch.webhook",
    "Deliverer": "connector.watch.delivery",
    "Backoff": "connector.watch.delivery",
    "DeliveryPass": "connector.watch.summary",
    "Pacer": "connector.watch.pacing",
    "Reconnect": "connector.watch.outage",
    "Outbox": "connector.storage.outbox",
    "parse_interval": "connector.watch.schedule",
}


def __getattr__(name: str) -> Any:
    module = _OLD_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'connector.watch' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
