"""The accounts a trigger remembers, by fingerprint (prints.py), in parts (parts.py)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from itertools import islice

from ..core import b85
from . import parts
from .parts import Legacy, Part
from .prints import KNOWN_LIMIT, PRINTS, false_positive_rate, fingerprint, legacy_fingerprint

#: The newest remembered accounts are kept in a part of at most this many.
RECENT = 32

#: A part as runner JSON holds it (base85 text) or as a database keeps it (bytes, or the text
#: of an earlier release).
Stored = str | bytes


class Memory:
    """The accounts a trigger remembers, by fingerprint.

    The newest are kept in a small part of at most RECENT ("recent"): a poll that remembers
    a few rewrites it alone (a database keeps it in the state's own row), and a full one
    goes into the set of the others ("held"), which is coded whole: a set of 5,000 coded
    whole takes 2 bits an account less than four sets of 1,250, and that is what keeps
    fingerprints wide enough for 1 in 10**9 within 21 KB; but the set keeps no order.

    Past KNOWN_LIMIT fingerprints go: first the oldest segments of a version-2 state
    (`legacy`: its 32-bit fingerprints, read-only), then, when the recent part goes into the
    held set, a run of held ones from a point that depends on what was just added, each as
    likely as any other to go, except those just added and the accounts the poll has just
    seen (on the pages it read, the newest page's among them), which stay. So the memory
    keeps what the next poll's top walk needs (the newest page's accounts). A poll may also
    spend its whole budget on pending gaps and read no newest page: what a poll found in gaps
    it read to their end is therefore not taken in at the bound (`spare`; no later read needs
    it), so that such a poll forgets nothing for them. Any other may go
    before its turn would have come in order, even one a few hundred follows from the top
    that a pending gap's last page holds: at the bound (`forgets`) the walk checks that page
    against the follows older than the gap's stop (operations/range_walk.py), so this costs a
    check request there, or one re-follow of a forgotten account emitted again, or an
    account followed in the very second where a pending gap stops or resumes emitted again.
    """

    def __init__(self, held: Part | None = None, recent: list[Part] | None = None,
                 legacy: list[Legacy] | None = None, every: set[int] | None = None) -> None:
        self._held = held
        self._recent = recent or []
        self._legacy = legacy or []
        if every is None:
            every = set(held.prints) if held is not None else set()
            for part in self._recent:
                every.update(part.prints)
        self._all: set[int] = every
        self._old: set[int] = set().union(*(s.prints for s in self._legacy))

    def __contains__(self, key: str) -> bool:
        if fingerprint(key) in self._all:
            return True
        return bool(self._old) and legacy_fingerprint(key) in self._old

    def __len__(self) -> int:
        return len(self._all) + self.legacy

    @property
    def forgets(self) -> bool:
        """Whether this memory is at its bound, where remembering more forgets some (see the
        class): an account remembered a few polls ago, and not seen since, may be gone."""
        return len(self) >= KNOWN_LIMIT - RECENT

    @property
    def legacy(self) -> int:
        """How many 32-bit fingerprints of a version-2 state are still kept."""
        return sum(len(s.prints) for s in self._legacy)

    def false_positive_rate(self) -> float:
        """The chance, at most, that a new follow is taken for one of these accounts."""
        return false_positive_rate(len(self._all), self.legacy)

    def remember(self, keys: Iterable[str], keep: Iterable[str] = (),
                 spare: Iterable[str] = ()) -> Memory:
        """A new Memory with `keys` added (see the class for what goes past KNOWN_LIMIT):
        `keep`, the accounts the poll has just seen, stay; at the bound (`forgets`) the keys
        of `spare`, which no later read needs (operations/reads.py `Advance.closed`), are not
        added."""
        wanted = {fingerprint(k) for k in keys}
        if self.forgets:
            wanted.difference_update(fingerprint(k) for k in spare)
        new = added = sorted(wanted - self._all)
        if not new:
            return self
        recent = list(self._recent)
        if recent and len(recent[0].prints) < RECENT:
            room = RECENT - len(recent[0].prints)
            recent[0] = Part(parts.RECENT, sorted(recent[0].prints + new[:room]))
            new = new[room:]
        for at in range(0, len(new), RECENT):
            recent.insert(0, Part(parts.RECENT, new[at:at + RECENT]))
        held = self._held
        every: set[int] | None = self._all.union(added)
        if len(recent) > 1:
            # Full recent parts go into the held set, which then keeps room for a full recent
            # part: it is rewritten (and thinned, when full) only here, once in RECENT
            # remembered, and the memory never holds more than KNOWN_LIMIT.
            moved = [p for part in recent[1:] for p in part.prints]
            recent = recent[:1]
            prints = sorted((held.prints if held else []) + moved)
            over = len(prints) - (KNOWN_LIMIT - RECENT)
            if over > 0:
                prints = _thin(prints, over, sum(added) % PRINTS,
                               {fingerprint(k) for k in keep}, set(added))
                every = None  # made again from the parts
            held = Part(parts.SET, prints)
        legacy = list(self._legacy)
        count = (len(held.prints) if held else 0) + sum(len(p.prints) for p in recent)
        while legacy and count + sum(len(s.prints) for s in legacy) > KNOWN_LIMIT:
            legacy.pop()
        return Memory(held, recent, legacy, every)

    # Stored forms: the recent part as base85 text (it goes in a state's own JSON row), the
    # others ("known": the held set, then legacy segments) as base85 text in runner JSON and
    # as bytes in a database.

    def recent_texts(self) -> list[str]:
        return [p.encode() for p in self._recent]

    def _known(self) -> list[Part | Legacy]:
        held: list[Part | Legacy] = [self._held] if self._held and self._held.prints else []
        return [*held, *self._legacy]

    def known_texts(self) -> list[str]:
        return [p.encode() for p in self._known()]

    def known_bytes(self) -> list[bytes]:
        return [p.sealed() for p in self._known()]

    @classmethod
    def load(cls, known: list[Stored], version: int, recent: Iterable[str] = ()) -> Memory:
        """Version 3: the held set and legacy segments (`known`), and the recent parts apart;
        version 2: 32-bit segments (kept as legacy); version 1: identity keys, newest first.
        A part comes as its base85 text or as the bytes that text encodes; ValueError when
        one does not decode."""
        if version == 1:
            keys = [k if isinstance(k, str) else b85.encode(k) for k in known]
            # Oldest first, the newest last, so that those are the recent ones and stay.
            seen = keys[:KNOWN_LIMIT // 5]
            return cls().remember(reversed(keys[RECENT:]), keep=seen) \
                .remember(reversed(keys[:RECENT]), keep=seen)
        if version == 2:
            return cls(legacy=[Legacy.decode(_bytes(k)) for k in known])
        held: Part | None = None
        recents: list[Part] = []
        legacy: list[Legacy] = []
        for text in recent:
            part = parts.unsealed(b85.decode(text), text)
            if part.kind != parts.RECENT or recents:
                raise ValueError("recent parts of the wrong kind")
            recents.append(part)  # type: ignore[arg-type]
        for item in known:
            part = parts.unsealed(_bytes(item), item if isinstance(item, str) else None)
            if isinstance(part, Legacy):
                legacy.append(part)
            elif part.kind == parts.SET and held is None and not legacy:
                held = part
            else:
                raise ValueError("parts of the wrong kind or order")
        memory = cls(held, recents, legacy)
        if len(memory._all) > KNOWN_LIMIT or any(len(p.prints) > RECENT for p in recents):
            raise ValueError("more fingerprints than this connector keeps")
        return memory


def _bytes(item: Stored) -> bytes:
    return item if isinstance(item, bytes) else b85.decode(item)


def _thin(prints: list[int], over: int, point: int, *spared: set[int]) -> list[int]:
    """`prints` (sorted) without `over` of them: the first from `point` on (round), past
    those of the `spared` sets while there are others, the first set spared longest (the
    bound comes first)."""
    start = bisect_left(prints, point)
    order = prints[start:] + prints[:start]
    gone: set[int] = set()
    for tier in range(len(spared), -1, -1):
        shield = set().union(*spared[:tier])
        gone.update(islice((p for p in order if p not in gone and p not in shield),
                           over - len(gone)))
        if len(gone) == over:
            break
    return [p for p in prints if p not in gone]

