"""Poll leases: which worker polls which handle now, when each handle is next due, and what
the workers keep next to it (its activity estimate and health, opaque JSON here, and its
credits this period). A part of `Database`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .records import Claim, Lease, PollRow
from .sql import Dialect, Session, Sessions


class Leases(Sessions):
    """The poll lease operations of a Database."""

    def claim_polls(self, keys: Iterable[str], owner: str, *, lease_for: float,
                    polled_within: float | None = None) -> Claim:
        """Lease those of `keys` that are due and that no other worker holds, for `lease_for`
        seconds. Due means: its next due time has come, or, with `polled_within` (the age of
        a `--once` cycle), not polled in the last `polled_within` seconds, on the database's
        clock. The claim carries what was kept next to each granted lease (Lease.activity,
        .health)."""
        d, t = self.dialect, self.dialect.prefix
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return Claim()
        ordered = d.listed(sorted(wanted))  # one order for everyone: inserts never deadlock
        with self._tx() as s:
            now = d.now(s)
            s.run(f"INSERT INTO {t}poll_lease (key) {d.each('keys')} ON CONFLICT DO NOTHING",
                  keys=ordered)
            due = "polled_at < :since" if polled_within is not None else "next_at <= :now"
            got = self._claim(s, f"{t}poll_lease", "key",
                              f"{d.among('key', 'keys')} AND (lease_until <= :now OR "
                              f"owner = :owner OR {t}gone(owner)) AND {due}",
                              "owner = :owner, lease_until = :until",
                              also=", activity, health", keys=ordered, owner=owner, now=now,
                              until=now + lease_for, since=now - (polled_within or 0.0))
            rest = [k for k in wanted if k not in got]
            others = s.all(f"SELECT key, owner, lease_until, polled_at, next_at, "
                           f"{t}gone(owner) FROM {t}poll_lease WHERE {d.among('key', 'keys')}",
                           keys=d.listed(rest)) if rest else []
        claim = Claim([k for k in wanted if k in got], stored={
            k: kept for k, kept in got.items() if kept != (None, None)})
        for key, holder, until, polled_at, next_at, gone in others:
            polled = (polled_at >= now - polled_within if polled_within is not None
                      else next_at > now)
            held_for = until - now if holder != owner and not gone else 0.0
            if held_for > 0:
                claim.busy[key] = held_for
            elif polled:
                claim.later[key] = max(next_at - now, 0.0)
            else:
                claim.busy[key] = 1.0  # being claimed by another worker this very moment
        return claim

    def release_poll(self, key: str, lease: Lease) -> None:
        """Give a lease back without saving a state: the poll failed (`lease.polled`: it
        counts as polled now, as with save) or was abandoned (or put off: with `next_in`, due
        again then). What the lease keeps is kept as with save."""
        with self._tx() as s:
            self._release(s, key, lease)

    def _release(self, s: Session, key: str, lease: Lease) -> None:
        t, clock = self.dialect.prefix, self.dialect.clock
        kept, args = _kept(lease, self.dialect)
        if not lease.polled:
            due = "" if lease.next_in is None else f", next_at = {clock} + :next"
            s.run(f"UPDATE {t}poll_lease SET owner = NULL, lease_until = 0{due}{kept} "
                  "WHERE key = :key AND owner = :owner", key=key, owner=lease.owner,
                  next=lease.next_in, **args)
            return
        # Polled now, whoever holds the lease; only the holder's lease ends.
        s.run(f"INSERT INTO {t}poll_lease (key, polled_at, next_at) VALUES (:key, {clock}, "
              f"{clock} + coalesce(:next, 0)) ON CONFLICT (key) DO UPDATE SET "
              f"polled_at = excluded.polled_at, next_at = coalesce({clock} + :next, "
              "poll_lease.next_at), owner = CASE WHEN poll_lease.owner = :owner THEN NULL "
              "ELSE poll_lease.owner END, lease_until = CASE WHEN poll_lease.owner = :owner "
              f"THEN 0 ELSE poll_lease.lease_until END{kept}", key=key, next=lease.next_in,
              owner=lease.owner, **args)

    def poll_rows(self, keys: Iterable[str] | None = None) -> list[PollRow]:
        """The poll lease rows (of `keys`, when given), for a status view."""
        d, t = self.dialect, self.dialect.prefix
        which = "" if keys is None else f" AND {d.among('key', 'keys')}"
        with self._session() as s:
            rows = s.all(f"SELECT key, polled_at, next_at, activity, health, credits, "
                         f"credits_since, owner IS NOT NULL AND lease_until > {d.clock} AND "
                         f"NOT {t}gone(owner) FROM {t}poll_lease WHERE true{which} ORDER BY key",
                         keys=d.listed(sorted(keys or ())))
        return [PollRow(k, float(p), float(n), a, h, int(c), float(since), bool(held))
                for k, p, n, a, h, c, since, held in rows]


def _kept(lease: Lease, d: Dialect) -> tuple[str, dict[str, Any]]:
    """The SET clauses (each after a comma) and parameters that store what `lease` keeps."""
    sets, args = [], {}
    if lease.activity is not None:
        sets.append("activity = :activity")
        args["activity"] = lease.activity
    if lease.health is not None:
        sets.append("health = :health")
        args["health"] = lease.health
    if lease.period is not None:
        # The period of the database's clock, as the budget's bucket runs at, in this very
        # statement: workers whose clocks differ count in the same one (core.budget's
        # period_start of Database.clock(), to the bit).
        began = f"{d.floor(f'{d.clock} / :period')} * :period"
        sets.append(f"credits = CASE WHEN poll_lease.credits_since = {began} THEN "
                    f"poll_lease.credits + :credits ELSE :credits END, credits_since = {began}")
        args.update(period=float(lease.period), credits=int(lease.credits))
    return "".join(", " + x for x in sets), args
