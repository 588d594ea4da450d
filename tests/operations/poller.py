"""A runner's polls, as the trigger tests run them: the state out of one poll goes into the
next, and each poll's requests are counted at the stand-in."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import connector
from connector.core.config import RetryPolicy
from connector.standin import StandIn

P = 10  # page size in these histories
HANDLE = "alice"
FOLLOWS = "new_account_followed"
UNFOLLOWS = "account_unfollowed"


def by_id(item: dict) -> str:
    return item["id"] or f"s:{item['secUid']}"


def by_name(item: dict) -> str:
    return item["uniqueId"]


class Poller:
    """Runs polls of `operation` like a runner does; `key` names an emitted item."""

    def __init__(self, standin: StandIn, creds: dict, operation: str = FOLLOWS, *,
                 key: Callable[[dict], str] = by_id, **inputs: Any) -> None:
        self.standin = standin
        self.creds = creds
        self.operation = operation
        self.key = key
        self.inputs = {"handle": HANDLE, "count": P, **inputs}
        self.state: Any = None
        self.emitted: list[str] = []
        self.requests: list[int] = []

    def poll(self, **override: Any) -> connector.Result:
        before = self.standin.count_requests()
        result = connector.run(self.operation, {**self.inputs, **override},
                               credentials=self.creds, state=self.state,
                               retry=RetryPolicy.no_wait())
        self.requests.append(self.standin.count_requests() - before)
        self.state = result.state
        self.emitted += [self.key(i) for i in result.items]
        return result


def ids(users: list[dict]) -> list[str]:
    return [u.get("id") or f"s:{u['secUid']}" for u in users]


def names(accounts: list[dict]) -> list[str]:
    return [a["uniqueId"] for a in accounts]


def pages(n: int, p: int = P) -> int:
    return math.ceil(n / p)


def bound(n: int, p: int = P) -> int:
    """The fewest requests that show n new follows and one known one."""
    return math.ceil((n + 1) / p)
