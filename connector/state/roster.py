"""The roster: the accounts a handle follows, as the unfollow trigger last saw them.

An unfollow is emitted as the account was last seen, so each account's flat fields are kept,
with two more facts:
- `bound`: a follow time at or before the account's own (the `minCursor` of the page it was
  last listed on; None when that page had no usable cursor). Follow times only grow (a
  re-follow moves an account to the top), so a bound stays true; a read of the list that has
  passed below it without listing the account shows the account is gone.
- `seen`: when (epoch milliseconds) a poll last listed it. A read of the list that began after
  that did not list it.

Kept compact: accounts in blocks of BLOCK, newest first, each block its columns as JSON,
deflated; a database keeps those bytes, runner JSON their base64 (decoded in C: base85 would
be 6% smaller and, in pure Python, 50 times slower). A poll re-encodes only the blocks it
changed; a quiet poll changes one (the accounts on the newest page were seen again), and a
database writes that one alone.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..core import cursors
from ..core.items import STAT_FIELDS, USER_FIELDS, identity

#: Accounts per block. Small enough that re-encoding the newest block on a quiet poll is cheap,
#: large enough for deflate to find the repetition in avatar URLs and cursors.
BLOCK = 250
#: The item fields kept (profileUrl is made again from uniqueId).
FIELDS = ("id", *USER_FIELDS, *STAT_FIELDS)
_STRINGS = {"id", "uniqueId", "nickname", "avatarThumb", "signature", "secUid"}
_BOOLS = {"verified", "privateAccount"}
#: A block decompresses to at most this many bytes: a damaged or hostile state cannot make a
#: poll inflate gigabytes.
_MAX_BLOCK_BYTES = 8 * 1024 * 1024


@dataclass
class Account:
    """One followed account as last seen: its FIELDS' values, in order (a tuple, not a dict:
    a quiet poll decodes every account and changes a few)."""

    values: tuple[Any, ...]
    bound: Any
    seen: int
    block: int = 0

    @property
    def item(self) -> dict[str, Any]:
        return dict(zip(FIELDS, self.values, strict=True))

    @property
    def key(self) -> str:
        """The account's identity (core.items.identity), the usual case without a dict."""
        first = self.values[0]
        return first if type(first) is str and first else identity(self.item)


class Roster:
    """The followed accounts by identity, grouped in blocks that encode separately.

    `in` and `len` work on identities, so the roster also serves as the walk's set of known
    accounts.
    """

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        #: Block number -> its deflated bytes while unchanged (None: to encode), and their
        #: base64 (runner JSON) once made or read.
        self._data: dict[int, bytes | None] = {}
        self._texts: dict[int, str] = {}
        self._sizes: dict[int, int] = {}
        #: The blocks new accounts go into: the newest (accounts followed since), and the
        #: oldest (accounts a read down the list found), None before there is one.
        self._newest: int | None = None
        self._oldest: int | None = None

    def __contains__(self, key: object) -> bool:
        return key in self._accounts

    def __len__(self) -> int:
        return len(self._accounts)

    def __iter__(self) -> Iterator[tuple[str, Account]]:
        return iter(list(self._accounts.items()))

    def get(self, key: str) -> Account | None:
        return self._accounts.get(key)

    def see(self, key: str, item: dict[str, Any], bound: Any, seen: int, *,
            older: bool = False) -> bool:
        """Record that a page listed the account: its fields now, a bound from that page
        (None: the page had none), when. Returns True when the account was not in the roster.
        `older`: a read down the list found it, below the accounts already kept (a baseline),
        so it goes with the oldest; the blocks stay ordered as the list is, and the newest
        page's accounts, which every poll sees again, stay in the newest block."""
        account = self._accounts.get(key)
        fields = tuple(item.get(name) for name in FIELDS)
        if account is None:
            block = self._room(older)
            self._accounts[key] = Account(fields, bound, seen, block)
            self._sizes[block] = self._sizes.get(block, 0) + 1
            self._data[block] = None
            return True
        if bound is not None and (account.bound is None
                                  or cursors.below(account.bound, bound)):
            account.bound = bound
            self._data[account.block] = None  # to encode again
        if account.values != fields or account.seen != seen:
            account.values, account.seen = fields, seen
            self._data[account.block] = None
        return False

    def remove(self, key: str) -> Account:
        account = self._accounts.pop(key)
        self._sizes[account.block] -= 1
        self._data[account.block] = None
        return account

    def _room(self, older: bool) -> int:
        block = self._oldest if older else self._newest
        if block is None or self._sizes.get(block, 0) >= BLOCK:
            if not self._sizes:
                block = self._newest = self._oldest = 0
            elif older:
                block = self._oldest = min(self._sizes) - 1
            else:
                block = self._newest = max(self._sizes) + 1
            self._sizes[block], self._data[block] = 0, None
        return block

    # Stored forms: the blocks newest first, as bytes (a database) or base64 (runner JSON)

    def blocks(self) -> list[bytes]:
        return [data for _, data in self._blocks()]

    def texts(self) -> list[str]:
        return [self._texts.get(b) or self._texts.setdefault(b, base64.b64encode(d).decode())
                for b, d in self._blocks()]

    def _blocks(self) -> list[tuple[int, bytes]]:
        """(number, bytes) of the blocks, newest first, the changed ones encoded again. Blocks
        emptied by removals are dropped; when removals have left many half-empty blocks,
        everything is packed again."""
        live = sorted((b for b, n in self._sizes.items() if n), reverse=True)
        if len(live) > 2 * (len(self._accounts) // BLOCK + 1):
            self._repack()
            live = sorted((b for b, n in self._sizes.items() if n), reverse=True)
        changed: dict[int, list[Account]] = {b: [] for b in live if self._data.get(b) is None}
        if changed:
            for account in self._accounts.values():
                members = changed.get(account.block)
                if members is not None:
                    members.append(account)
            for block, members in changed.items():
                self._data[block] = _encode(members)
                self._texts.pop(block, None)
        return [(b, self._data[b]) for b in live]  # type: ignore[misc]

    def _repack(self) -> None:
        ordered = sorted(self._accounts.values(), key=lambda a: a.block)
        self._data, self._texts, self._sizes = {}, {}, {}
        for i, account in enumerate(ordered):
            account.block = i // BLOCK
            self._sizes[account.block] = self._sizes.get(account.block, 0) + 1
            self._data[account.block] = None
        self._newest = max(self._sizes, default=None)
        self._oldest = min(self._sizes, default=None)

    @classmethod
    def load(cls, blocks: Any, *, limit: int) -> Roster:
        """Decode stored blocks (newest first): base64 text, or their bytes. Raises ValueError
        when they are damaged."""
        if not isinstance(blocks, list) or not all(
            isinstance(b, (str, bytes)) and b for b in blocks
        ):
            raise ValueError("not a list of blocks")
        if len(blocks) > 2 * (limit // BLOCK + 1):
            raise ValueError("too many blocks")
        roster = cls()
        count = len(blocks)
        for i, stored in enumerate(blocks):
            block = count - 1 - i  # stored newest first; numbered oldest first
            if isinstance(stored, str):
                try:
                    data = base64.b64decode(stored, validate=True)
                except binascii.Error as exc:
                    raise ValueError("a block that does not decode") from exc
                roster._texts[block] = stored
            else:
                data = stored
            accounts = _decode(data)
            if not accounts or len(accounts) > BLOCK:
                raise ValueError("a block of the wrong size")
            for account in accounts:
                key = account.key
                if key in roster._accounts:
                    raise ValueError("an account twice")
                account.block = block
                roster._accounts[key] = account
            roster._sizes[block] = len(accounts)
            roster._data[block] = data
        if len(roster) > limit:
            raise ValueError("too many accounts")
        roster._newest, roster._oldest = (count - 1, 0) if count else (None, None)
        return roster

    @classmethod
    def of(cls, accounts: Iterable[tuple[str, dict[str, Any], Any, int]]) -> Roster:
        """A roster of (identity, item, bound, seen), oldest first (tests, benchmarks)."""
        roster = cls()
        for key, item, bound, seen in accounts:
            roster.see(key, item, bound, seen)
        return roster


def _encode(accounts: list[Account]) -> bytes:
    columns: list[list[Any]] = [[a.bound for a in accounts], [a.seen for a in accounts]]
    columns += [list(column) for column in zip(*(a.values for a in accounts), strict=True)]
    raw = json.dumps(columns, separators=(",", ":"), ensure_ascii=False).encode()
    return zlib.compress(raw, 6)


def _decode(data: bytes) -> list[Account]:
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(data, _MAX_BLOCK_BYTES)
        if inflater.unconsumed_tail:
            raise ValueError("a block too large")
        columns = json.loads(raw)
    except (zlib.error, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError("a block that does not decode") from exc
    if not (isinstance(columns, list) and len(columns) == 2 + len(FIELDS)
            and all(isinstance(c, list) for c in columns)
            and len({len(c) for c in columns}) == 1):
        raise ValueError("a block of the wrong shape")
    bounds, seens, *values = columns
    # Type checks as sets of types, built in C: a quiet poll decodes every block.
    for bound in set(bounds) - {None}:
        if not cursors.is_cursor(bound) or cursors.is_dead(bound):
            raise ValueError("a bound that is not a cursor")
    if {type(s) for s in seens} - {int} or (seens and not 0 <= min(seens) <= max(seens) < 2**53):
        raise ValueError("a time that is not one")
    for name, column in zip(FIELDS, values, strict=True):
        kind = str if name in _STRINGS else bool if name in _BOOLS else int
        if {type(v) for v in column} - {kind, type(None)}:
            raise ValueError(f"a {name} of the wrong type")
    return [Account(row, bound, seen)
            for bound, seen, row in zip(bounds, seens, zip(*values, strict=True), strict=True)]
