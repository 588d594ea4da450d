"""What a trigger's item becomes on a webhook: an event, with an id that is the same on every
retry (the `Idempotency-Key`) and the body every receiver gets. The outbox stores them; the
kinds are the registry's (registry.py)."""

from __future__ import annotations

from typing import Any

from ..core.items import identity
from .registry import FOLLOWED


def event_id(handle: str, key: str, kind: str = FOLLOWED, occurrence: str | None = None
             ) -> str:
    """The id of "`handle` <kind> the account `key`": the same on every retry, so a receiver
    can drop duplicates (`Idempotency-Key`). Follow events keep the ids of earlier releases.

    An event that can happen to one account more than once (unfollowed, followed again,
    unfollowed again) also takes `occurrence`, something that tells those times apart and
    stays the same when a poll is repeated."""
    import uuid  # here: uuid imports platform, which a call that emits no event need not pay

    who = key if kind == FOLLOWED else f"{kind}:{key}"
    if occurrence is not None:
        who = f"{who}@{occurrence}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tiktok-following:{handle}:{who}"))


def new_event(handle: str, item: dict[str, Any], *, detected_at: str,
              kind: str = FOLLOWED) -> tuple[str, dict[str, Any]]:
    """(event id, payload) for "`handle` <kind> `item`": the body every webhook receives. An
    unfollow's occurrence (see event_id) is when the account was last seen followed, its
    item's `lastSeenAt`."""
    occurrence = item.get("lastSeenAt") if kind != FOLLOWED else None
    eid = event_id(handle, identity(item), kind, occurrence)
    payload: dict[str, Any] = {"eventId": eid, "handle": handle, "detectedAt": detected_at,
                               "item": item}
    if kind != FOLLOWED:
        payload["event"] = kind
    return eid, payload
