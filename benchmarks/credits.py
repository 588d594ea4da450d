"""Credits: requests per poll of our trigger, against the lower bound ceil((n + 1) / p) and two
reference pollers written here: "first page only" (how Zapier polls) and "full-list diff".

Each strategy polls its own account on one in-process stand-in; every account starts with the
same existing follows, gains the same n new follows before each poll, and the requests are
counted where they land: at the stand-in.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import requests

import connector
from connector.core.config import Credentials, RetryPolicy
from connector.core.http import Client
from connector.standin import StandIn

from .report import Section, Target

KEY = "bench-key"
PAGE = 10
EXISTING = 500
BUDGET = 100  # maxPages: enough for the largest history (50p needs 51)


def histories(p: int) -> list[tuple[str, int]]:
    """The issue's histories: new follows per poll, by name."""
    return [("0", 0), ("1", 1), ("p-1", p - 1), ("p", p), ("p+1", p + 1), ("5p", 5 * p),
            ("50p", 50 * p)]


def lower_bound(n: int, p: int) -> int:
    """Fewest requests that can show n new follows and one known one, newest first."""
    return math.ceil((n + 1) / p)


@dataclass
class Row:
    """One history: requests of each strategy in each poll, and what each found."""

    label: str
    n: int
    bound: int
    ours: list[int] = field(default_factory=list)
    ours_exact: list[bool] = field(default_factory=list)  # emitted the n follows, oldest first
    first_page: list[int] = field(default_factory=list)
    first_page_missed: list[int] = field(default_factory=list)
    full_diff: list[int] = field(default_factory=list)
    full_diff_missed: list[int] = field(default_factory=list)


class OurTrigger:
    """The connector's trigger, polled the way a runner does: state out goes back in."""

    def __init__(self, client: Client, handle: str, p: int, budget: int) -> None:
        self.client = client
        self.inputs = {"handle": handle, "count": p, "maxPages": budget}
        self.state: Any = None

    def poll(self) -> list[str]:
        result = connector.run("new_account_followed", self.inputs, state=self.state,
                               client=self.client)
        self.state = result.state
        return [item["id"] or f"s:{item['secUid']}" for item in result.items]


class _Reference:
    """A reference poller over plain requests: one POST per page."""

    def __init__(self, session: requests.Session, endpoint: str, handle: str, p: int) -> None:
        self.session = session
        self.endpoint = endpoint
        self.handle = handle
        self.p = p

    def page(self, cursor: Any = None) -> dict[str, Any]:
        body: dict[str, Any] = {"handle": self.handle, "count": self.p}
        if cursor is not None:
            body["minTime"] = cursor
        resp = self.session.post(self.endpoint, data=json.dumps(body), timeout=30,
                                 headers={"Authorization": f"Bearer {KEY}"})
        resp.raise_for_status()
        return json.loads(resp.content)


class FirstPageOnly(_Reference):
    """Zapier's polling trigger: the first page each poll, deduplicated against every id seen."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seen: set[str] = set()

    def poll(self) -> list[str]:
        ids = [e["user"]["id"] for e in self.page()["followingList"]]
        new = [i for i in ids if i not in self.seen]
        self.seen.update(ids)
        return new


class FullListDiff(_Reference):
    """Reads the whole list every poll and reports what the previous poll did not have."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.previous: set[str] | None = None

    def poll(self) -> list[str]:
        ids: list[str] = []
        page = self.page()
        ids += [e["user"]["id"] for e in page["followingList"]]
        while page["hasMore"]:
            page = self.page(page["minCursor"])
            ids += [e["user"]["id"] for e in page["followingList"]]
        new = [i for i in ids if self.previous is not None and i not in self.previous]
        self.previous = set(ids)
        return new


def measure(*, p: int = PAGE, existing: int = EXISTING, polls: int = 3, budget: int = BUDGET,
            only: list[str] | None = None) -> list[Row]:
    """Run every history (or those named in `only`) and return one Row each."""
    rows = []
    with StandIn(api_keys=(KEY,), default_count=p, max_count=max(p, 100),
                      rate_limit=10**9) as sb, \
            Client(Credentials(KEY, sb.url), retry=RetryPolicy.no_wait()) as client, \
            requests.Session() as session:
        session.trust_env = False  # loopback only, whatever proxy the environment names
        for label, n in histories(p):
            if only is not None and label not in only:
                continue
            row = Row(label, n, lower_bound(n, p))
            tag = label.replace("+", "plus").replace("-", "minus")
            ours = OurTrigger(client, f"ours_{tag}", p, budget)
            first = FirstPageOnly(session, sb.endpoint, f"first_{tag}", p)
            diff = FullListDiff(session, sb.endpoint, f"diff_{tag}", p)
            strategies: list[tuple[Any, str]] = [(ours, ours.inputs["handle"]),
                                                 (first, first.handle), (diff, diff.handle)]
            for poller, handle in strategies:
                sb.add_account(handle, existing)
                poller.poll()  # the baseline: every strategy starts knowing the list
            for _ in range(polls):
                for poller, handle in strategies:
                    new = [u["id"] for u in sb.follow_many(handle, n)]
                    sb.reset_log()
                    found = poller.poll()
                    spent = sb.count_requests(handle)
                    missed = len(set(new) - set(found))
                    if poller is ours:
                        row.ours.append(spent)
                        row.ours_exact.append(found == new)
                    elif poller is first:
                        row.first_page.append(spent)
                        row.first_page_missed.append(missed)
                    else:
                        row.full_diff.append(spent)
                        row.full_diff_missed.append(missed)
            rows.append(row)
    return rows


def _span(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def run(quick: bool = False) -> Section:
    polls = 2 if quick else 3
    rows = measure(polls=polls)
    section = Section(
        name="credits",
        title="Credits: requests per poll",
        method=(f"Page size p = {PAGE}, page budget maxPages = {BUDGET}, {EXISTING} existing "
                f"follows, then {polls} polls each preceded by n new follows. Requests are "
                "counted at the stand-in; each costs 10 credits. *Ours* is "
                "`connector.run(\"new_account_followed\", ...)` with state passed from poll to "
                "poll. *First page only* reads one page per poll and dedups by id, as Zapier's "
                "polling triggers do. *Full-list diff* reads every page each poll and diffs with "
                "the previous list. Where figures vary between polls the range is shown."),
        headers=["history", "n new", "lower bound", "ours: requests", "ours: exact",
                 "first page: requests", "first page: missed", "full diff: requests",
                 "full diff: missed"],
    )
    for r in rows:
        section.rows.append([
            r.label, str(r.n), str(r.bound), _span(r.ours),
            "yes" if all(r.ours_exact) else "NO",
            _span(r.first_page), _span(r.first_page_missed),
            _span(r.full_diff), _span(r.full_diff_missed),
        ])
    at_bound = all(all(req == r.bound for req in r.ours) for r in rows)
    worst = max(rows, key=lambda r: max(req - r.bound for req in r.ours))
    section.targets.append(Target(
        "requests per poll = ceil((n+1)/p) in every history",
        "equal in all histories" if at_bound else
        f"history {worst.label}: {_span(worst.ours)} requests against {worst.bound}",
        at_bound))
    exact = all(all(r.ours_exact) for r in rows)
    section.targets.append(Target(
        "zero follows lost (every follow emitted once, oldest first)",
        "all histories exact" if exact else "some poll emitted a different list", exact))
    big = rows[-1]
    section.notes.append(
        f"At n = {big.n} ({big.label}) first page only misses "
        f"{_span(big.first_page_missed)} of {big.n} follows per poll; full-list diff spends "
        f"{_span(big.full_diff)} requests per poll where ours spends {_span(big.ours)}. In "
        f"steady state (n = 0) full-list diff costs {_span(rows[0].full_diff)} requests per "
        f"poll, ours {_span(rows[0].ours)}.")
    return section
