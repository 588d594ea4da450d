"""Cursors: the follow times the endpoint pages by, and every rule about them.

A response's `minCursor` is sent back as `minTime` for the next page (an inference: the
endpoint's page says "minTime from a previous response", but no field has that name). Cursors
are follow times, newest first; their unit varies between upstreams (seconds or milliseconds),
so they travel untouched and are compared here, in one unit. `0`, `-1` and a missing cursor
mean the list ends there (`-1` at the upstream's depth cap of about 5,000 accounts).
"""

from __future__ import annotations

import math
from typing import Any

#: Values that mean "no further page": the end of the list, or its depth cap.
DEAD = (None, 0, -1, "0", "-1", "")
#: The dead values that mean the depth cap rather than the end of the list.
CAP = (-1, "-1")
#: Cursors are times: anything past this many digits is damage, not a cursor.
MAX_DIGITS = 19
#: Below this a cursor is taken to be in seconds (10**11 s is the year 5138).
_SECONDS_BELOW = 10**11
#: A follow time this far past the clock is damage, not a time (clocks differ by seconds).
CLOCK_SLACK_MS = 86_400_000


def is_dead(cursor: Any) -> bool:
    """Whether `cursor` ends the list (missing, 0 or -1) instead of pointing into it."""
    return cursor in DEAD and not isinstance(cursor, bool)


def is_cap(cursor: Any) -> bool:
    """Whether `cursor` is the upstream's depth cap (-1): it stops listing there, though the
    list may go on."""
    return cursor in CAP and not isinstance(cursor, bool)


def is_cursor(value: Any) -> bool:
    """Whether `value` can be sent back as `minTime`: a whole or finite number, or a string of
    digits, of at most MAX_DIGITS digits (None counts: it means "from the top")."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < 10**MAX_DIGITS
    if isinstance(value, float):
        # json.loads accepts NaN and Infinity; sent back as minTime they are not JSON.
        return math.isfinite(value) and abs(value) < 10.0**MAX_DIGITS
    if isinstance(value, str):
        digits = value[1:] if value.startswith("-") else value
        return digits.isdigit() and digits.isascii() and len(digits) <= MAX_DIGITS
    return False


def in_ms(cursor: Any) -> int | float:
    """The live cursor `cursor` in milliseconds: what follow times of either unit compare by."""
    value = _number(cursor)
    return value * 1000 if -_SECONDS_BELOW < value < _SECONDS_BELOW else value


def in_seconds(cursor: Any) -> bool:
    """Whether the live cursor `cursor` is small enough to be in seconds (so that in a list that
    pages in milliseconds it points to 1970, before any follow)."""
    return -_SECONDS_BELOW < _number(cursor) < _SECONDS_BELOW


def future(cursor: Any, now_ms: int) -> bool:
    """Whether the live cursor `cursor` lies more than a day past `now_ms` (epoch ms): no
    follow happened then, so it is damage (a unit mixed up, say)."""
    return in_ms(cursor) > now_ms + CLOCK_SLACK_MS


def in_unit_of(cursor: Any, ref: Any) -> Any:
    """The live cursor `cursor` in the unit of the live cursor `ref`, rounded down (never
    later): a cursor sent back as minTime must be in the unit the upstream pages in, which is
    that of the `minCursor`s it hands out."""
    seconds = in_seconds(cursor)
    if seconds == in_seconds(ref):
        return cursor
    whole = int(_number(cursor))
    out = whole * 1000 if seconds else whole // 1000
    return str(out) if isinstance(cursor, str) else out


def _number(cursor: Any) -> int | float:
    return int(cursor) if isinstance(cursor, str) else cursor


def at_or_below(cursor: Any, bound: Any) -> bool:
    """Whether the follow time `cursor` is at or older than `bound` (both live cursors)."""
    return in_ms(cursor) <= in_ms(bound)


def below(cursor: Any, bound: Any) -> bool:
    """Whether the follow time `cursor` is strictly older than `bound` (both live cursors)."""
    return in_ms(cursor) < in_ms(bound)


def before(cursor: Any) -> Any:
    """The cursor one unit (second or millisecond) older than the live cursor `cursor`, of its
    type: a page "at or before" it lists only follows older than `cursor`. None when that is
    no live cursor."""
    whole = math.ceil(_number(cursor)) - 1
    if whole <= 0:
        return None
    return str(whole) if isinstance(cursor, str) else whole


def lowest(cursors: list[Any]) -> Any:
    """The oldest of some live cursors; None when any of them is None (no lower bound)."""
    return None if not cursors or None in cursors else min(cursors, key=in_ms)


def consistent(entries: int, min_cursor: Any, max_cursor: Any, sent: Any) -> bool:
    """Whether a page's cursors can be trusted, for a page of `entries` fetched with `sent`.

    A page lists follows newest first, so its oldest follow (`minCursor`) is no newer than its
    newest (`maxCursor`), and none is newer than the `minTime` asked for. A page that breaks
    this (a cursor stuck above its own follows, say) cannot tell where its follows lie, so a
    walk must not sort them by it. (A cursor that does not move is the pager's guard.)
    """
    if not entries:
        return True  # an empty page is judged by hasMore, not by cursors
    live_min, live_max = not is_dead(min_cursor), not is_dead(max_cursor)
    if live_min and live_max and below(max_cursor, min_cursor):
        return False
    if is_dead(sent):
        return True
    # "At or before minTime": a page may start at the very cursor sent (an inclusive upstream
    # repeats the boundary account), and a page of only that account ends there too.
    return not ((live_max and below(sent, max_cursor)) or (live_min and below(sent, min_cursor)))
