"""Unfollows: requests per poll of the "Account Unfollowed" trigger against a full-list diff,
and the size of its runner-owned state.

Both strategies poll their own account on one in-process stand-in; every account starts with
the same N follows, and before each poll the same kind of account is unfollowed (none; one
anywhere in the list, uniformly; one among the 30 newest follows). Requests are counted where
they land: at the stand-in.
"""

from __future__ import annotations

import json
import math
import random
import string
import timeit
from typing import Any

import requests

import connector
from connector.core.config import Credentials, RetryPolicy
from connector.core.http import Client
from connector.core.items import flatten, identity
from connector.standin import StandIn as BenchStandIn
from connector.standin.world import World
from connector.state.roster import Roster
from connector.state.unfollowed import UnfollowState

from .credits import _Reference
from .report import Section, Target, ms, size

KEY = "bench-key"
PAGE = 30  # the stand-in's default page, like the API's own (its size is not documented)
SIZES = (100, 1000, 5000)
#: Which account is unfollowed before each poll.
CASES = (("0", None), ("1, anywhere", "anywhere"), ("1, of the 30 newest", "recent"))


class Ours:
    """The connector's unfollow trigger, polled the way a runner does."""

    def __init__(self, client: Client, handle: str) -> None:
        self.client = client
        self.inputs = {"handle": handle, "count": PAGE, "maxPages": 200, "reconcileEvery": 0}
        self.state: Any = None

    def poll(self) -> list[str]:
        result = connector.run("account_unfollowed", self.inputs, state=self.state,
                               client=self.client)
        self.state = result.state
        return [item["id"] for item in result.items]


class FullListDiff(_Reference):
    """Reads the whole list every poll and reports who the previous poll had and this one has
    not: what every snapshot comparer does."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.previous: set[str] | None = None

    def poll(self) -> list[str]:
        page = self.page()
        ids = [e["user"]["id"] for e in page["followingList"]]
        while page["hasMore"]:
            page = self.page(page["minCursor"])
            ids += [e["user"]["id"] for e in page["followingList"]]
        gone = sorted(self.previous - set(ids)) if self.previous is not None else []
        self.previous = set(ids)
        return gone


def measure(n: int, case: str | None, *, polls: int, seed: int = 1) -> dict[str, Any]:
    """Requests per poll of each strategy over `polls` polls, and whether each found exactly
    the unfollowed accounts."""
    rng = random.Random(seed)
    out: dict[str, Any] = {"ours": [], "diff": [], "ours_exact": True, "diff_exact": True,
                           "baseline": 0}
    with BenchStandIn(api_keys=(KEY,), default_count=PAGE, rate_limit=10**9,
                      depth_cap=10_000) as sb, \
            Client(Credentials(KEY, sb.url), retry=RetryPolicy.no_wait()) as client, \
            requests.Session() as session:
        session.trust_env = False
        ours, diff = Ours(client, "ours"), FullListDiff(session, sb.endpoint, "diff", PAGE)
        for poller, handle in ((ours, "ours"), (diff, "diff")):
            sb.add_account(handle, n)
            sb.reset_log()
            poller.poll()
            if poller is ours:
                out["baseline"] = sb.count_requests(handle)
        for _ in range(polls):
            index = None
            if case is not None:  # the same place in both lists (of different accounts)
                length = len(sb.following("ours"))
                index = rng.randrange(length) if case == "anywhere" else rng.randrange(30)
            for poller, handle in ((ours, "ours"), (diff, "diff")):
                gone: list[str] = []
                if index is not None:
                    gone = [sb.following(handle)[index]["id"]]
                    sb.unfollow(handle, gone[0])
                sb.reset_log()
                found = poller.poll()
                out["ours" if poller is ours else "diff"].append(sb.count_requests(handle))
                if found != gone:
                    out["ours_exact" if poller is ours else "diff_exact"] = False
    return out


# State size


def _text(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits
          ) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def realistic_entry(rng: random.Random) -> dict[str, Any]:
    """An entry with the lengths TikTok's have: a signed avatar URL of about 300 characters,
    a 76-character secUid, a bio of a few words."""
    hexdigits = "0123456789abcdef"
    words = ("love", "music", "dance", "travel", "food", "life", "art", "fun", "daily", "vibes",
             "official", "fan", "page")
    avatar = (f"https://p16-sign-va.tiktokcdn.com/tos-maliva-avt-0068/"
              f"{_text(rng, 32, hexdigits)}~c5_100x100.jpeg?lk3s=a5d48078"
              f"&nonce={rng.randrange(10**5)}&refresh_token="
              f"{_text(rng, 32, hexdigits)}&x-expires={1_700_000_000 + rng.randrange(10**6)}"
              f"&x-signature={_text(rng, 28)}%3D&shp=a5d48078&shcp=fdd36af4")
    return {
        "user": {"id": str(6_800_000_000_000_000_000 + rng.randrange(10**17)),
                 "uniqueId": _text(rng, rng.randint(6, 18), string.ascii_lowercase + "._"),
                 "nickname": _text(rng, rng.randint(4, 20), string.ascii_letters + " "),
                 "avatarThumb": avatar,
                 "signature": " ".join(rng.choice(words) for _ in range(rng.randint(0, 12))),
                 "verified": rng.random() < 0.05, "secUid": "MS4wLjABAAAA" + _text(rng, 64),
                 "privateAccount": rng.random() < 0.1},
        "stats": {"followerCount": rng.randrange(10**6), "followingCount": rng.randrange(5000),
                  "heartCount": rng.randrange(10**8), "videoCount": rng.randrange(2000),
                  "diggCount": rng.randrange(10**5)},
    }


def standin_entry(n: int) -> dict[str, Any]:
    user = World().make_user(n)
    return {"user": user, "stats": user.pop("stats")}


def unfollow_state(n: int, realistic: bool) -> tuple[UnfollowState, list[dict[str, Any]]]:
    """The state of a handle following n accounts, and their entries (oldest first)."""
    rng = random.Random(n)
    entries = [realistic_entry(rng) if realistic else standin_entry(i) for i in range(n)]
    roster = Roster.of((identity(e), flatten(e), 1_700_000_000 + (n - i) // PAGE * PAGE, SEEN)
                       for i, e in enumerate(entries))
    return UnfollowState(handle="alice", watermark=1_700_000_000 + n, roster=roster,
                         clock=SEEN), entries


SEEN = 1_790_000_000_000


def state_figures(n: int, realistic: bool, *, repeat: int) -> tuple[int, int, float]:
    """(state JSON bytes, the same accounts as plain JSON items, seconds a quiet poll spends
    on the state: parse it, see the newest account again, write it)."""
    made, entries = unfollow_state(n, realistic)
    state = made.to_json()
    plain = len(json.dumps([flatten(e) for e in entries]))
    newest = entries[-1]

    def round_trip() -> None:
        parsed = UnfollowState.from_json(state)
        parsed.roster.see(identity(newest), flatten(newest), 1_700_000_000 + n, SEEN + 1)
        parsed.to_json()

    seconds = min(timeit.repeat(round_trip, number=1, repeat=repeat))
    return len(json.dumps(state)), plain, seconds


def stored_figures(n: int, realistic: bool, *, repeat: int) -> tuple[int, int, float]:
    """The same in a database's form: (bytes of the row and parts, bytes of the parts a quiet
    poll changes, seconds its state work takes: load from row and parts, see the newest page
    again, make the row and parts)."""
    made, entries = unfollow_state(n, realistic)
    row, parts = made.to_stored()
    newest = entries[-PAGE:]
    changed = 0

    def round_trip() -> None:
        nonlocal changed
        parsed = UnfollowState.from_stored(row, parts)
        for entry in newest:
            parsed.roster.see(identity(entry), flatten(entry), 1_700_000_000 + n, SEEN + 1)
        _, after = parsed.to_stored()
        changed = sum(len(a) for a, b in zip(after, parts, strict=True) if a != b)

    seconds = min(timeit.repeat(round_trip, number=1, repeat=repeat))
    return len(json.dumps(row)) + sum(map(len, parts)), changed, seconds


def _span(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def run(quick: bool = False) -> Section:
    polls = 3 if quick else 12
    sizes = SIZES[:2] if quick else SIZES
    section = Section(
        name="unfollows",
        title="Unfollows: requests per poll against a full-list diff",
        method=(f"Page size p = {PAGE}, page budget 200 (enough for any read here), full reads "
                f"every N polls off (reconcileEvery 0). Each list of N accounts is baselined, "
                f"then polled {polls} times; before each poll nothing, or one account, is "
                "unfollowed: anywhere in the list (uniformly), or among the 30 newest follows "
                "(where most unfollows happen: follow-for-follow churn). Requests are counted "
                "at the stand-in, each 10 credits. *Ours* is `connector.run(\"account_unfollowed"
                "\", ...)` with state passed from poll to poll; *full-list diff* reads every page "
                "each poll and compares with the previous list. The stand-in's depth cap is "
                "raised to 10,000 so the 5,000 list ends normally (at the real cap see "
                "tests/operations/test_unfollowed.py). Figures per poll: median (range)."),
        headers=["N", "unfollows per poll", "ours: requests", "full diff: requests",
                 "ours / diff", "ours exact", "diff exact", "ours: baseline"],
    )
    quiet_ok = exact = True
    for n in sizes:
        for label, case in CASES:
            got = measure(n, case, polls=polls)
            ours, diff = got["ours"], got["diff"]
            med = sorted(ours)[len(ours) // 2]
            section.rows.append([
                f"{n:,}", label, f"{med} ({_span(ours)})", _span(diff),
                f"{sum(ours) / sum(diff):.2f}", "yes" if got["ours_exact"] else "NO",
                "yes" if got["diff_exact"] else "NO", str(got["baseline"])])
            quiet_ok &= case is not None or set(ours) == {1}
            exact &= got["ours_exact"]
    section.targets.append(Target("a poll with nothing unfollowed costs 1 request",
                                  "1 request in every quiet poll" if quiet_ok else
                                  "some quiet poll cost more", quiet_ok))
    section.targets.append(Target("every unfollow emitted exactly once",
                                  "all polls exact" if exact else "some poll missed or repeated",
                                  exact))
    repeat = 3 if quick else 15
    states = []
    for realistic in (True, False):
        figures = []
        for n in sizes:
            state_bytes, plain, seconds = state_figures(n, realistic, repeat=repeat)
            figures.append(f"{n:,}: {size(state_bytes)} ({state_bytes / n:.0f} B per account, "
                           f"plain JSON items {size(plain)}), round trip {ms(seconds)}")
        states.append(f"State with {'realistic' if realistic else 'stand-in'} fields: "
                      + "; ".join(figures) + ".")
    section.notes.append(
        "With one unfollow anywhere, ours reads down to where the missing account was and "
        "stops: about half the list on average, in these runs never more than the full diff; "
        "the full diff pays the whole list every poll, also when nothing changed. Steady state: "
        f"{math.ceil(5000 / PAGE)} requests per poll for the full diff at 5,000, 1 for ours.")
    section.notes.append(
        "State is the runner-owned JSON at N followed accounts. Realistic fields have signed "
        "avatar URLs of ~300 characters and 76-character secUids, as TikTok's do; the "
        "stand-in's are short and repetitive. Round trip: what a quiet poll spends on the "
        "state (parse it, see the newest account again, write it), min of repeats.")
    section.notes += states
    stored = []
    for n in sizes:
        total, changed, seconds = stored_figures(n, True, repeat=repeat)
        stored.append(f"{n:,}: {size(total)}, a quiet poll changes {size(changed)} "
                      f"(one block), round trip {ms(seconds)}")
    section.notes.append(
        "In a database (the embedded store, `watch`) the same state is a small row and its "
        "blocks as bytes, one row each (no base64), so a quiet poll writes the one block it "
        "changed (its newest page's accounts, seen again), not the whole state. Realistic "
        "fields: " + "; ".join(stored) + ". Round trip: load from row and blocks, see the "
        "newest page again, make the row and blocks.")
    return section
