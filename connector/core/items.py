"""Emitted items: one flat dict per followed account, and the key that identifies it."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

USER_FIELDS = ("uniqueId", "nickname", "avatarThumb", "signature", "verified", "secUid",
               "privateAccount")
STAT_FIELDS = ("followerCount", "followingCount", "heartCount", "videoCount", "diggCount")


def flatten(entry: dict[str, Any]) -> dict[str, Any]:
    """Turn a `{user, stats}` entry into the flat item of CONTRACT 2 (fields form builders map)."""
    user = entry.get("user") or {}
    stats = entry.get("stats") or {}
    item: dict[str, Any] = {"id": _id_string(user.get("id"))}
    item.update((name, user.get(name)) for name in USER_FIELDS)
    for name in STAT_FIELDS:
        value = stats.get(name)
        # type() rather than isinstance: a bool is an int, but not a count
        item[name] = value if type(value) is int else None
    item["profileUrl"] = profile_url(item["uniqueId"])
    return item


def profile_url(unique_id: Any) -> str | None:
    """The account's TikTok profile, from its handle (None without one)."""
    return f"https://www.tiktok.com/@{unique_id}" if unique_id else None


def identity(entry: dict[str, Any]) -> str:
    """The one key that identifies an account, for an entry (`{user, stats}`) or a flat item.

    In order: `id` (a string: ids exceed 2**53), else `secUid`, else the handle `uniqueId`,
    else a digest of the user's fields. Prefixes keep the kinds apart, so an id never collides
    with a secUid. The trigger's memory, the events' ids and the tests all use this.
    Only `id` and `secUid` survive a rename: see `is_stable`.
    """
    user = entry.get("user", entry)
    if not isinstance(user, dict):
        user = {}
    raw_id = user.get("id")
    if type(raw_id) is str and raw_id:  # the usual case, first: this runs for every entry
        return raw_id
    raw_id = _id_string(raw_id)
    if raw_id:
        return raw_id
    sec_uid = user.get("secUid")
    if isinstance(sec_uid, str) and sec_uid:
        return "s:" + sec_uid
    unique_id = user.get("uniqueId")
    if isinstance(unique_id, str) and unique_id:
        return "u:" + unique_id.lower()
    return "d:" + _digest(user)


def is_stable(key: str) -> bool:
    """Whether an identity key survives the account renaming or changing its profile."""
    return not key.startswith(("u:", "d:"))


def _digest(user: dict[str, Any]) -> str:
    """A digest of a user that has no id, secUid or handle: its profile fields (the ones an
    item keeps, so an entry and its item digest alike), with the query strings cut from URLs
    (avatar links carry signatures that change on every read)."""
    fields = {}
    for name in USER_FIELDS:
        value = user.get(name)
        if isinstance(value, str) and value.startswith("http"):
            value = value.split("?", 1)[0]
        if value is not None:
            fields[name] = value
    text = json.dumps(fields, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _id_string(value: Any) -> str | None:
    # Ids exceed 2**53: keep them as strings. Python ints are exact; a float would not be.
    if type(value) is str:  # the usual case, first
        return value or None
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) else None
    if isinstance(value, (dict, list)):
        return None  # not an id: the next rule identifies the account
    return str(value)
