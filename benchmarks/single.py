"""Single calls as a runner or a person makes them, each against a bare `requests` script that
does the same work: `tiktok-following invoke` (one test-mode request) and `tiktok-following
list` (1, 10 and 100 pages), whole processes, their CPU time and peak memory.

The stand-in runs in a child process of its own. Each round runs every command once, in a
shuffled order; figures are medians over the rounds. CPU is the child's user + system time
(`wait4`); peak memory is the child's own high-water mark (benchmarks/peakmem.py).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .report import Section, Target, median, ms, ratio, size
from .standin import in_child_process

KEY = "bench-key"
HANDLE = "bench"
COUNT = 30  # the API's default page size
FOLLOWS = 3100  # enough for 100 full pages
INVOKE_TARGET = 1.2
ROOT = Path(__file__).resolve().parent.parent

#: The bare equivalent of `invoke` in test mode: read the request, send the same POST, print
#: the first three accounts as flat items.
BARE_INVOKE = '''
import json, sys, requests
request = json.loads(sys.stdin.buffer.read())
creds = request["credentials"]
resp = requests.post(creds["baseUrl"] + "/api/v1/get-tiktok-user-following",
                     data=json.dumps({"handle": request["inputs"]["handle"],
                                      "requestSource": "API"}),
                     headers={"Authorization": "Bearer " + creds["apiKey"],
                              "Content-Type": "application/json"}, timeout=30)
page = json.loads(resp.content)
items = []
for entry in page["followingList"][:3]:
    user, stats = entry["user"], entry.get("stats") or {}
    item = {"id": str(user["id"])}
    for name in ("uniqueId", "nickname", "avatarThumb", "signature", "verified", "secUid",
                 "privateAccount"):
        item[name] = user.get(name)
    for name in ("followerCount", "followingCount", "heartCount", "videoCount", "diggCount"):
        item[name] = stats.get(name)
    item["profileUrl"] = "https://www.tiktok.com/@" + user["uniqueId"]
    items.append(item)
print(json.dumps({"items": items[::-1], "state": None, "meta": {"requests": 1}}))
'''

#: The bare equivalent of `list --format jsonl`: follow minCursor, write each page's flat
#: items as the page arrives.
BARE_LIST = '''
import json, os, sys, requests
pages = int(sys.argv[1])
session = requests.Session()
endpoint = os.environ["BENCH_URL"] + "/api/v1/get-tiktok-user-following"
headers = {"Authorization": "Bearer " + os.environ["DUMPLINGAI_API_KEY"],
           "Content-Type": "application/json"}
cursor, out = None, sys.stdout
for _ in range(pages):
    body = {"handle": sys.argv[2], "count": 30, "requestSource": "API"}
    if cursor is not None:
        body["minTime"] = cursor
    page = json.loads(session.post(endpoint, data=json.dumps(body), headers=headers,
                                   timeout=30).content)
    for entry in page["followingList"]:
        user, stats = entry["user"], entry.get("stats") or {}
        item = {"id": str(user["id"])}
        for name in ("uniqueId", "nickname", "avatarThumb", "signature", "verified",
                     "secUid", "privateAccount"):
            item[name] = user.get(name)
        for name in ("followerCount", "followingCount", "heartCount", "videoCount",
                     "diggCount"):
            item[name] = stats.get(name)
        item["profileUrl"] = "https://www.tiktok.com/@" + user["uniqueId"]
        out.write(json.dumps(item, ensure_ascii=False) + "\\n")
    out.flush()
    if not page["hasMore"]:
        break
    cursor = page["minCursor"]
'''


def _cli() -> list[str]:
    """The CLI as the peakmem wrapper runs it: the module the `tiktok-following` script calls."""
    return ["connector.cli"]


def _spawn(argv: list[str], *, stdin: bytes, env: dict[str, str], cwd: str, report: Path
           ) -> tuple[float, int]:
    """CPU seconds (user + system) and peak RSS of one child; its output is discarded."""
    report.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "benchmarks.peakmem", str(report), *argv]
    with tempfile.TemporaryFile() as inp:
        inp.write(stdin)
        inp.seek(0)
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=inp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} failed: {err.decode(errors='replace')[-300:]}")
    peak = json.loads(report.read_text()).get("peak_rss") or 0
    return usage.ru_utime + usage.ru_stime, peak


def run(quick: bool = False) -> Section:
    rounds = 6 if quick else 40
    page_counts = (1, 10) if quick else (1, 10, 100)
    section = Section(
        name="single",
        title="Single calls: invoke and list against bare requests scripts",
        method=(f"Whole processes against the stand-in (in a child process, {COUNT} accounts "
                "a page). `invoke`: one test-mode request of `get_tiktok_user_following` on "
                "stdin, against a script that reads the same request, sends the same POST "
                "with `requests.post` and prints the first three accounts as flat items. "
                "`list`: `tiktok-following list --max-pages N` in each format, against a "
                "script that follows `minCursor` with one `requests.Session` and writes each "
                f"page's flat items as JSON lines as the page arrives. {rounds} rounds, each "
                "running every command once in a shuffled order; medians. CPU is the child's "
                "user + system time; peak RSS its own high-water mark (VmHWM)."),
        headers=["command", "CPU", "bare CPU", "CPU ratio", "peak RSS", "bare peak RSS"],
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-single-"))
    try:
        (tmp / "bare_invoke.py").write_text(BARE_INVOKE)
        (tmp / "bare_list.py").write_text(BARE_LIST)
        with in_child_process({HANDLE: FOLLOWS}, key=KEY) as url:
            env = {**os.environ, "DUMPLINGAI_API_KEY": KEY, "BENCH_URL": url}
            env.pop("DUMPLINGAI_BASE_URL", None)
            request = json.dumps({"operation": "get_tiktok_user_following",
                                  "inputs": {"handle": HANDLE},
                                  "credentials": {"apiKey": KEY, "baseUrl": url},
                                  "mode": "test"}).encode()
            commands: dict[str, tuple[list[str], bytes]] = {
                "invoke": ([*_cli(), "invoke"], request),
                "bare invoke": ([str(tmp / "bare_invoke.py")], request),
            }
            for n in page_counts:
                for fmt in ("jsonl", "json", "csv"):
                    commands[f"list {n} {fmt}"] = ([*_cli(), "--base-url", url, "list", HANDLE,
                                                    "--max-pages", str(n), "--count",
                                                    str(COUNT), "--format", fmt], b"")
                commands[f"bare list {n}"] = ([str(tmp / "bare_list.py"), str(n), HANDLE], b"")
            cpu: dict[str, list[float]] = {name: [] for name in commands}
            peak: dict[str, list[int]] = {name: [] for name in commands}
            report = tmp / "peak.json"
            rng = random.Random(11)
            for round_ in range(rounds + 1):  # the first round warms caches and is not kept
                order = list(commands.items())
                rng.shuffle(order)
                for name, (argv, stdin) in order:
                    c, p = _spawn(argv, stdin=stdin, env=env, cwd=str(ROOT), report=report)
                    if round_:
                        cpu[name].append(c)
                        peak[name].append(p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    cpu_m = {name: median(v) for name, v in cpu.items()}
    peak_m = {name: median(v) for name, v in peak.items()}

    def row(label: str, name: str, bare: str) -> float:
        r = cpu_m[name] / cpu_m[bare]
        section.rows.append([label, ms(cpu_m[name]), ms(cpu_m[bare]), ratio(r, 3),
                             size(peak_m[name]), size(peak_m[bare])])
        return r

    invoke_ratio = row("tiktok-following invoke (test mode, 1 request)", "invoke",
                       "bare invoke")
    section.targets.append(Target(
        f"invoke, one test-mode request: CPU at most {INVOKE_TARGET}x a bare requests script",
        f"{ratio(invoke_ratio, 3)} ({ms(cpu_m['invoke'])} against {ms(cpu_m['bare invoke'])})",
        invoke_ratio <= INVOKE_TARGET))
    for n in page_counts:
        for fmt in ("jsonl", "json", "csv"):
            row(f"tiktok-following list, {n} page{'s' * (n > 1)}, {fmt}", f"list {n} {fmt}",
                f"bare list {n}")
    first, last = page_counts[0], page_counts[-1]
    growth = {fmt: peak_m[f"list {last} {fmt}"] - peak_m[f"list {first} {fmt}"]
              for fmt in ("jsonl", "json", "csv")}
    bare_growth = peak_m[f"bare list {last}"] - peak_m[f"bare list {first}"]
    worst = max(growth.values())
    # Flat: from 1 to 100 pages, list's memory grows no more than the bare loop's, give or
    # take 2 MB (allocator noise).
    section.targets.append(Target(
        f"list streams: peak memory from {first} to {last} pages grows no more than a bare "
        "loop writing each page as it arrives (+2 MB)",
        f"+{size(worst)} at most (jsonl, json, csv) against +{size(bare_growth)} bare",
        worst <= bare_growth + 2 * 2**20))
    section.notes.append(
        f"Peak memory of `list` from {first} to {last} pages: "
        + ", ".join(f"{fmt} +{size(g)}" for fmt, g in growth.items())
        + f"; the bare loop +{size(bare_growth)}. Each page is written as it arrives, so "
        "memory holds one page, whatever the page count.")
    section.notes.append(
        "The bare scripts import only requests and json; the connector also imports its own "
        "modules, reads the manifest, checks the inputs and builds the same flat items. The "
        "connector's modules are run from compiled bytecode, as an installed package is "
        "(`pip install` compiles them).")
    return section
