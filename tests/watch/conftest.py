"""What the watch tests share: a webhook receiver, and Watchers on the stand-in that never wait
(on `db`: SQLite and PostgreSQL both, unless a module gives its own)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connector.core.config import RetryPolicy
from connector.watch import Backoff, Watcher


@pytest.fixture
def db(any_db: str) -> str:
    """A SQLite file, or a PostgreSQL database: a test runs against both, unless its module
    says otherwise."""
    return any_db


@pytest.fixture
def make_watcher(creds, receiver, db) -> Iterator[Any]:
    """Watchers on the stand-in and the receiver, with retries and backoff that never wait."""
    made: list[Watcher] = []

    def make(handles: list[str], **kwargs: Any) -> Watcher:
        webhook = kwargs.pop("webhook", receiver.url)
        options: dict[str, Any] = {"store": db, "credentials": creds,
                                   "retry": RetryPolicy.no_wait(total=3),
                                   "backoff": Backoff.immediate(), **kwargs}
        watcher = Watcher(handles, webhook, **options)
        made.append(watcher)
        return watcher

    yield make
    for watcher in made:
        watcher.close()
