"""Overhead: the action through `connector.run` against a bare `requests` loop that builds the
same flat items, same server.

The stand-in runs in a child process, so the CPU time measured here (time.process_time) is the
client's alone and the client has a core to itself. Each repetition times one call of each
contender back to back, in alternating order; the figures are medians over the repetitions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import requests

import connector
from connector.core.config import Credentials
from connector.core.http import Client
from connector.core.items import flatten, identity

from .report import Section, Target, median, ms, ratio
from .standin import in_child_process

KEY = "bench-key"
HANDLE = "bench"
COUNT = 30  # accounts per page: the API's default page size
FOLLOWS = 1000
CPU_TARGET = 1.05
WALL_TARGET = 1.10
USER_FIELDS = ("uniqueId", "nickname", "avatarThumb", "signature", "verified", "secUid",
               "privateAccount")
STAT_FIELDS = ("followerCount", "followingCount", "heartCount", "videoCount", "diggCount")


def bare_fetch(session: requests.Session, endpoint: str, pages: int, *, flat: bool = True
               ) -> list[dict[str, Any]]:
    """The baseline: POST, json.loads, follow minCursor, and (`flat`) build the flat items the
    connector returns, written out plainly; nothing else."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(pages):
        body: dict[str, Any] = {"handle": HANDLE, "count": COUNT, "requestSource": "API"}
        if cursor is not None:
            body["minTime"] = cursor
        resp = session.post(endpoint, data=json.dumps(body), timeout=30,
                            headers={"Authorization": f"Bearer {KEY}",
                                     "Content-Type": "application/json"})
        page = json.loads(resp.content)
        if not flat:
            items += page["followingList"]
        else:
            for entry in page["followingList"]:
                user, stats = entry["user"], entry.get("stats") or {}
                item = {"id": str(user["id"])}
                for name in USER_FIELDS:
                    item[name] = user.get(name)
                for name in STAT_FIELDS:
                    item[name] = stats.get(name)
                item["profileUrl"] = f"https://www.tiktok.com/@{user['uniqueId']}"
                items.append(item)
        if not page["hasMore"]:
            break
        cursor = page["minCursor"]
    return items


def _timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = call()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def run(quick: bool = False) -> Section:
    reps = 15 if quick else 400
    section = Section(
        name="overhead",
        title="Overhead: connector.run against a bare requests loop",
        method=(f"The action `get_tiktok_user_following` with `maxPages` 1 and 10 "
                f"({COUNT} accounts a page) through `connector.run`, against a loop of "
                "`requests.Session().post` + `json.loads` following `minCursor` over the same "
                "stand-in (in a child process) and building the same flat items (the 14 "
                "fields of CONTRACT 2, written out plainly). Two ways of calling: *per call*, "
                "what the "
                "README shows: `connector.run(...)` with credentials, which opens its own "
                "client, against a new `requests.Session()` per call; *shared*, "
                "`connector.run(..., client=Client(...))` reused across calls, against one "
                f"`requests.Session` reused. {reps} interleaved repetitions after a warm-up "
                "(the first `connector.run` in a process also imports the operation modules and "
                "compiles the input schema: that is in the cold-start section). Wall and CPU "
                "(`time.process_time`, client process only) medians; ratio = connector / bare."),
        headers=["case", "bare wall", "connector wall", "wall ratio", "bare CPU",
                 "connector CPU", "CPU ratio"],
    )
    with in_child_process({HANDLE: FOLLOWS}, key=KEY) as url:
        endpoint = url + "/api/v1/get-tiktok-user-following"
        creds = {"apiKey": KEY, "baseUrl": url}
        shared_session = requests.Session()
        shared_session.trust_env = False
        shared_client = Client(Credentials(KEY, url))

        def contenders(pages: int, shared: bool) -> tuple[Callable[[], Any], Callable[[], Any]]:
            inputs = {"handle": HANDLE, "maxPages": pages, "count": COUNT}
            if shared:
                return (lambda: bare_fetch(shared_session, endpoint, pages),
                        lambda: connector.run("get_tiktok_user_following", inputs,
                                              client=shared_client).items)

            def bare() -> list[dict[str, Any]]:
                with requests.Session() as session:
                    session.trust_env = False  # as the connector's client: no proxy lookups
                    return bare_fetch(session, endpoint, pages)
            return bare, lambda: connector.run("get_tiktok_user_following", inputs,
                                               credentials=creds).items

        cases = [(f"{pages} page{'s' if pages > 1 else ''}, {mode}", *contenders(pages, shared))
                 for pages in (1, 10) for mode, shared in (("per call", False),
                                                           ("shared", True))]
        samples: dict[str, dict[str, list[float]]] = {
            name: {"bare_wall": [], "bare_cpu": [], "conn_wall": [], "conn_cpu": []}
            for name, _, _ in cases}
        for name, bare, conn in cases:  # warm-up, and both sides must see the same accounts
            for _ in range(3):
                b, c = bare(), conn()
            if len(b) != len(c):
                raise RuntimeError(f"{name}: bare read {len(b)} accounts, connector {len(c)}")
        for rep in range(reps):
            for name, bare, conn in cases:
                order = [("bare", bare), ("conn", conn)]
                for side, call in order if rep % 2 else reversed(order):
                    wall, cpu, _ = _timed(call)
                    samples[name][f"{side}_wall"].append(wall)
                    samples[name][f"{side}_cpu"].append(cpu)
        # Per-item work, measured apart: flat items, identities.
        entries = bare_fetch(shared_session, endpoint, 10, flat=False)
        item_work = {name: median(_timed(lambda f=f: [f(e) for e in entries])[1]
                                  for _ in range(51))
                     for name, f in (("flatten", flatten), ("identity", identity))}
        shared_client.close()
        shared_session.close()

    results = {}
    for name, _, _ in cases:
        s = {k: median(v) for k, v in samples[name].items()}
        wall_ratio, cpu_ratio = s["conn_wall"] / s["bare_wall"], s["conn_cpu"] / s["bare_cpu"]
        results[name] = (wall_ratio, cpu_ratio)
        section.rows.append([name, ms(s["bare_wall"]), ms(s["conn_wall"]), ratio(wall_ratio, 3),
                             ms(s["bare_cpu"]), ms(s["conn_cpu"]), ratio(cpu_ratio, 3)])
    for mode in ("per call", "shared"):
        wall_ratio, cpu_ratio = results[f"10 pages, {mode}"]
        for kind, value, target in (("CPU", cpu_ratio, CPU_TARGET),
                                    ("wall", wall_ratio, WALL_TARGET)):
            section.targets.append(Target(
                f"10 pages, {mode}: {kind} time at most {target:.2f}x a bare loop building "
                "the same flat items", ratio(value, 3), value <= target))
    section.notes.append(
        f"Per pass over the {len(entries)} accounts of 10 pages, measured apart in the same "
        f"run: building the flat items (`connector/core/items.py` `flatten`) takes "
        f"{ms(item_work['flatten'])}, their identity keys (`identity`, for de-duplication "
        f"within a walk, which the bare loop does not do) {ms(item_work['identity'])}.")
    section.notes.append("Wall time includes the stand-in's own work per page, the same for "
                         "both; CPU time is the client's alone, so the CPU ratio is the stricter "
                         "measure of what the connector adds.")
    return section
