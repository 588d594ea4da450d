"""Emitted items: one flat dict per followed account, and the key that identifies it."""

from __future__ import annotations

from typing import Any

USER_FIELDS = ("uniqueId", "nickname", "avatarThumb", "signature", "verified", "secUid",
               "privateAccount")
STAT_FIELDS = ("followerCount", "followingCount", "heartCount", "videoCount", "diggCount")


def flatten(entry: dict[str, Any]) -> dict[str, Any]:
    """Turn a `{user, stats}` entry into the flat item of CONTRACT 2 (fields form builders map)."""
    user = entry.get("user") or {}
    stats = entry.get("stats") or {}
    raw_id = user.get("id")
    item: dict[str, Any] = {"id": raw_id if type(raw_id) is str and raw_id else
                            _id_string(raw_id)}
    get = user.get
    for name in USER_FIELDS:
        item[name] = get(name)
    for name in STAT_FIELDS:
        value = stats.get(name)
        # type() rather than isinstance: a bool is an int, but not a count
        item[name] = value if type(value) is int else None
    unique_id = item["uniqueId"]
    item["profileUrl"] = f"https://www.tiktok.com/@{unique_id}" if unique_id else None
    return item


def identity(entry: dict[str, Any]) -> str | None:
    """The dedup key of an entry or item: `id`, else `secUid`, else the handle.

    Prefixed so that an id can never collide with a secUid. `uniqueId` is the last resort
    because it changes when a user renames.
    """
    user = entry.get("user", entry)
    raw_id = user.get("id")
    if type(raw_id) is str and raw_id:  # the usual case, first
        return raw_id
    raw_id = _id_string(raw_id)
    if raw_id:
        return raw_id
    if user.get("secUid"):
        return "s:" + str(user["secUid"])
    if user.get("uniqueId"):
        return "u:" + str(user["uniqueId"]).lower()
    return None


def _id_string(value: Any) -> str | None:
    # Ids exceed 2**53: keep them as strings. Python ints are exact; a float would not be.
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return str(int(value))
    return str(value)
