"""Proof in a real n8n: the trigger node, active in n8n 1.123 on Node 24, against the stand-in
through `tiktok-following serve`; every follow arrives once, and the state survives a restart.

Run by run.sh (which installs n8n and builds the package); everything listens on loopback and
lives in one work folder. The checks read n8n's own execution records (its SQLite database).

    python run.py --n8n-home DIR --package DIR --work DIR
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from connector.standin import StandIn

KEY = "e2e-key-0123456789abcdef"
HANDLE = "e2e_watch"
NODE_NAME = "TikTok New Account Followed"
#: Every 10 s: a cron with explicit seconds (n8n refuses '*' in the seconds field).
CRON = "0,10,20,30,40,50 * * * * *"
POLL_WAIT = 75  # seconds a phase may take: several polls


def free_port(preferred: int | None = None) -> int:
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def unflatten(text: str) -> Any:
    """n8n stores execution data with `flatted`: one array, every object and string referred
    to by its index (as a string). This is its parse."""
    table = json.loads(text)
    done: dict[int, Any] = {}

    def get(i: int) -> Any:
        value = table[i]
        if isinstance(value, dict | list):
            if i in done:
                return done[i]
            out: Any = {} if isinstance(value, dict) else [None] * len(value)
            done[i] = out
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            for k, v in pairs:
                out[k] = get(int(v)) if isinstance(v, str) else v
            return out
        return value

    return get(0)


class N8n:
    """One n8n installation, with its own user folder, ports and database."""

    def __init__(self, home: Path, work: Path, custom: Path) -> None:
        self.home = home
        self.work = work
        self.port = free_port(5678)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("N8N_", "DUMPLINGAI_"))},
            "N8N_USER_FOLDER": str(work),
            "N8N_PORT": str(self.port),
            "N8N_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_HOST": "127.0.0.1",
            "N8N_CUSTOM_EXTENSIONS": str(custom),
            "N8N_ENCRYPTION_KEY": "e2e-encryption-key-not-secret",
            "N8N_RUNNERS_BROKER_PORT": str(free_port(5679)),
            "N8N_RUNNERS_BROKER_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_DIAGNOSTICS_ENABLED": "false",
            "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_PERSONALIZATION_ENABLED": "false",
            "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
            "N8N_SECURE_COOKIE": "false",
            "EXECUTIONS_DATA_SAVE_ON_SUCCESS": "all",
            "GENERIC_TIMEZONE": "UTC",
            "N8N_LOG_LEVEL": "info",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = open(work / "n8n.log", "ab")  # noqa: SIM115 -- lives as long as n8n

    def command(self, *args: str) -> None:
        node = self.home / "node_modules" / ".bin" / "node"
        n8n = self.home / "node_modules" / "n8n" / "bin" / "n8n"
        subprocess.run([str(node), str(n8n), *args], env=self.env, check=True, timeout=300,
                       stdout=self.log, stderr=subprocess.STDOUT)

    def start(self) -> float:
        node = self.home / "node_modules" / ".bin" / "node"
        n8n = self.home / "node_modules" / "n8n" / "bin" / "n8n"
        started = time.monotonic()
        self.proc = subprocess.Popen([str(node), str(n8n), "start"], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = started + 240
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"n8n exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                    if b" 200 " in s.recv(100):
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("n8n did not become healthy in 240 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # a graceful stop: n8n deactivates triggers
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.work / ".n8n" / "database.sqlite", timeout=10)

    def executions(self, workflow_id: str) -> list[dict[str, Any]]:
        """The workflow's finished executions, oldest first: id, status, mode and the items
        the trigger node emitted."""
        with self.db() as db:
            rows = db.execute(
                "SELECT e.id, e.status, e.mode, d.data FROM execution_entity e "
                "JOIN execution_data d ON d.executionId = e.id "
                "WHERE e.workflowId = ? AND e.status IN ('success', 'error', 'crashed') "
                "ORDER BY e.id", (workflow_id,)).fetchall()
        out = []
        for exec_id, status, mode, data in rows:
            run = unflatten(data)["resultData"]["runData"].get(NODE_NAME) or []
            items = [i["json"] for r in run for i in r["data"]["main"][0]] if run else []
            out.append({"id": exec_id, "status": status, "mode": mode, "items": items})
        return out

    def static_data(self, workflow_id: str) -> Any:
        with self.db() as db:
            (value,) = db.execute("SELECT staticData FROM workflow_entity WHERE id = ?",
                                  (workflow_id,)).fetchone()
        return json.loads(value) if value else None


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n8n-home", type=Path, required=True)
    p.add_argument("--package", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    args = p.parse_args()
    work: Path = args.work
    # Custom nodes are required from where they lie: under the n8n install, n8n-workflow is
    # found in its node_modules, the same copy n8n itself uses.
    custom = work / "custom"
    subprocess.run(["cp", "-r", str(args.package / "dist"), str(custom)], check=True)
    figures: dict[str, Any] = {}
    expected: list[str] = []  # ids followed after the baseline, in follow order
    standin = StandIn(api_keys=(KEY,), credits={KEY: 1_000_000}, default_count=30).start()
    serve = n8n = None
    try:
        standin.add_account(HANDLE, 40)
        serve_port = free_port(8790)
        serve = subprocess.Popen(
            [sys.executable, "-m", "connector.cli", "serve", "--port", str(serve_port)],
            env={k: v for k, v in os.environ.items() if not k.startswith("DUMPLINGAI_")},
            stdout=subprocess.DEVNULL, stderr=open(work / "serve.log", "wb"))  # noqa: SIM115
        service = f"http://127.0.0.1:{serve_port}"

        n8n = N8n(args.n8n_home, work, custom)
        cred_id, wf_id = "tkCred" + uuid.uuid4().hex[:10], "tkWf" + uuid.uuid4().hex[:12]
        (work / "credentials.json").write_text(json.dumps([{
            "id": cred_id, "name": "TikTok Following e2e", "type": "tikTokFollowingApi",
            "data": {"apiKey": KEY, "baseUrl": standin.url, "serviceUrl": service,
                     "serviceToken": ""}}]))
        (work / "workflow.json").write_text(json.dumps({
            "id": wf_id, "name": "TikTok follows (e2e)", "active": False,
            "settings": {"executionOrder": "v1"}, "connections": {
                NODE_NAME: {"main": [[{"node": "Done", "type": "main", "index": 0}]]}},
            "nodes": [
                {"id": str(uuid.uuid4()), "name": NODE_NAME, "typeVersion": 1, "position": [0, 0],
                 "type": "CUSTOM.tikTokNewAccountFollowedTrigger",
                 "parameters": {"pollTimes": {"item": [{"mode": "custom",
                                                         "cronExpression": CRON}]},
                                "handle": f"@{HANDLE}", "firstRun": "skipExisting",
                                # A page of 10 and 2 pages a poll: a burst of 25 spans polls.
                                "options": {"count": 10, "maxPages": 2}},
                 "credentials": {"tikTokFollowingApi": {"id": cred_id,
                                                        "name": "TikTok Following e2e"}}},
                {"id": str(uuid.uuid4()), "name": "Done", "type": "n8n-nodes-base.noOp",
                 "typeVersion": 1, "position": [250, 0], "parameters": {}},
            ]}))
        t = time.monotonic()
        n8n.command("import:credentials", f"--input={work / 'credentials.json'}")
        n8n.command("import:workflow", f"--input={work / 'workflow.json'}")
        n8n.command("update:workflow", f"--id={wf_id}", "--active=true")
        figures["import_seconds"] = round(time.monotonic() - t, 1)

        def delivered() -> list[str]:
            return [i["id"] for e in n8n.executions(wf_id) for i in e["items"]]

        def wait_for(what: str, done: Any, timeout: float = POLL_WAIT) -> float:
            started = time.monotonic()
            while time.monotonic() - started < timeout:
                if done():
                    took = time.monotonic() - started
                    print(f"  {what}: {took:.1f}s", flush=True)
                    return took
                time.sleep(1)
            raise AssertionError(f"{what}: not within {timeout}s; delivered {delivered()}, "
                                 f"expected {expected}")

        def follow(n: int) -> None:
            for user in standin.follow_many(HANDLE, n):
                expected.append(str(user["id"]))

        figures["n8n_start_seconds"] = round(n8n.start(), 1)
        print(f"n8n on 127.0.0.1:{n8n.port}, serve on {service}, stand-in on {standin.url}")
        wait_for("baseline poll at activation", lambda: standin.count_requests(HANDLE) >= 1)
        assert delivered() == [], "the baseline emitted follows"

        print("phase 1: 3 new follows")
        follow(3)
        figures["latency_3_follows_s"] = round(
            wait_for("3 follows delivered", lambda: delivered() == expected), 1)

        print("phase 2: a burst of 25, more than one poll's 2 pages of 10")
        follow(25)
        wait_for("burst delivered", lambda: sorted(delivered()) == sorted(expected))
        burst_executions = sum(1 for e in n8n.executions(wf_id) if e["items"]) - 1

        print("phase 3: 2 unfollows, 1 re-follow of a known account, 2 new follows")
        old = standin.following(HANDLE)
        gone = [u for u in old if str(u["id"]) in expected[:3]][:2]
        for user in gone:
            standin.unfollow(HANDLE, str(user["id"]))
        standin.follow(HANDLE, gone[0])  # known: not emitted again
        follow(2)
        wait_for("2 new follows delivered", lambda: sorted(delivered()) == sorted(expected))
        saved = n8n.static_data(wf_id)
        assert saved and "node:" + NODE_NAME in saved, f"no state saved: {saved}"

        print("phase 4: n8n stopped, 4 follows while it is down, n8n started again")
        n8n.stop()
        follow(4)
        figures["n8n_restart_seconds"] = round(n8n.start(), 1)
        wait_for("follows made while down delivered after the restart",
                 lambda: sorted(delivered()) == sorted(expected))

        print("quiet: two more polls must deliver nothing")
        requests_before = standin.count_requests(HANDLE)
        wait_for("2 quiet polls", lambda: standin.count_requests(HANDLE) >= requests_before + 2,
                 timeout=40)

        runs = n8n.executions(wf_id)
        got = delivered()
        duplicates = len(got) - len(set(got))
        missing = sorted(set(expected) - set(got))
        unexpected = sorted(set(got) - set(expected))
        order_ok = all(
            [expected.index(i["id"]) for i in e["items"]]
            == sorted(expected.index(i["id"]) for i in e["items"]) for e in runs)
        state = n8n.static_data(wf_id)["node:" + NODE_NAME]["state"]
        figures.update({
            "follows_made": len(expected), "items_delivered": len(got),
            "duplicates": duplicates, "missing": len(missing), "unexpected": len(unexpected),
            "oldest_first_in_every_execution": order_ok,
            "executions": len(runs), "executions_failed": sum(r["status"] != "success"
                                                              for r in runs),
            "burst_spread_over_executions": burst_executions,
            "requests_seen_by_stand_in": standin.count_requests(HANDLE),
            "credits_used": 1_000_000 - (standin.credits or {}).get(KEY, 0),
            "state_bytes_in_static_data": len(json.dumps(state)),
            "state_handle": state.get("handle"),
        })
        print(json.dumps(figures, indent=2))
        (work / "figures.json").write_text(json.dumps(figures, indent=2))
        assert duplicates == 0 and not missing and not unexpected, (missing, unexpected)
        assert order_ok and figures["executions_failed"] == 0
        serve_log = (work / "serve.log").read_text()
        assert KEY not in serve_log and KEY not in (work / "n8n.log").read_text()
        print("e2e: every follow arrived once, oldest first; the state survived a restart")
        return 0
    finally:
        if n8n:
            n8n.stop()
        if serve:
            serve.terminate()
            serve.wait(10)
        standin.stop()


if __name__ == "__main__":
    sys.exit(main())
