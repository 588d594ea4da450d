"""Proof in a real n8n: both trigger nodes, active on n8n's one-minute poll, against the stand-in
through `tiktok-following serve`, for several minutes with an n8n restart and a `serve` outage
in between. Every follow arrives once, every unfollow a poll could see arrives once, no key in
any log.

Run by run.sh (which installs n8n and builds the package); everything listens on loopback, on
ports of its own (free ones unless given), and lives in one work folder. The checks read n8n's
own execution records (its SQLite database).

    python run.py --n8n-home DIR --package DIR --tarball FILE --work DIR [--n8n-port N]
                  [--broker-port N] [--serve-port N]

The package goes in as docs/n8n.md installs it: its packed tarball, `npm install --omit=peer`
into n8n's folder for custom nodes (here WORK/.n8n/custom), so the nodes use n8n's own
n8n-workflow.
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

import requests

from connector.standin import StandIn

KEY = "e2e-key-0123456789abcdef"
HANDLE = "e2e_watch"
FOLLOWED = "TikTok New Account Followed"
UNFOLLOWED = "TikTok Account Unfollowed"
#: n8n 2.x refuses polls faster than a minute; 1.x is run the same way.
POLL_TIMES = {"item": [{"mode": "everyMinute"}]}
PHASE_WAIT = 200  # seconds a phase may take: three polls and some
STATE_PATTERNS = ('"known"', '"watermark"')  # what a trigger state looks like in a log


def free_port(wanted: int = 0) -> int:
    """`wanted` if it is free (0: any free port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", wanted))
        return s.getsockname()[1]


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


class Serve:
    """`tiktok-following serve` on a fixed port, stopped and started again for the outage."""

    def __init__(self, port: int, log: Path, token: str | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.token = token
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DUMPLINGAI_") and k != "TIKTOK_FOLLOWING_SERVE_TOKEN"}
        if self.token:
            env["TIKTOK_FOLLOWING_SERVE_TOKEN"] = self.token
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "connector.cli", "serve", "--port", str(self.port)],
                env=env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"serve did not listen on {self.port}; see {self.log}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


class N8n:
    """One n8n installation, with its own user folder, ports and database."""

    def __init__(self, home: Path, work: Path, port: int, broker_port: int) -> None:
        self.home = home
        self.work = work
        self.port = port
        self.version = json.loads((home / "node_modules/n8n/package.json").read_text())["version"]
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("N8N_", "DUMPLINGAI_"))},
            "N8N_USER_FOLDER": str(work),
            "N8N_PORT": str(port),
            "N8N_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_HOST": "127.0.0.1",
            "N8N_ENCRYPTION_KEY": "e2e-encryption-key-not-secret",
            # The task broker's default port (5679) is another n8n's on a shared machine.
            "N8N_RUNNERS_BROKER_PORT": str(broker_port),
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

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def _argv(self, *args: str) -> list[str]:
        node = self.home / "node_modules" / ".bin" / "node"
        return [str(node), str(self.home / "node_modules" / "n8n" / "bin" / "n8n"), *args]

    def command(self, *args: str) -> None:
        subprocess.run(self._argv(*args), env=self.env, check=True, timeout=300,
                       stdout=self.log, stderr=subprocess.STDOUT)

    def activate(self, workflow_id: str) -> None:
        if self.major >= 2:
            self.command("publish:workflow", f"--id={workflow_id}")
        else:
            self.command("update:workflow", f"--id={workflow_id}", "--active=true")

    def start(self) -> float:
        started = time.monotonic()
        self.proc = subprocess.Popen(self._argv("start"), env=self.env,
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

    def executions(self, workflow_id: str, node: str) -> list[dict[str, Any]]:
        """The workflow's finished executions, oldest first: id, status, the items the trigger
        node emitted, and the error message of a failed one."""
        with self.db() as db:
            rows = db.execute(
                "SELECT e.id, e.status, d.data FROM execution_entity e "
                "JOIN execution_data d ON d.executionId = e.id "
                "WHERE e.workflowId = ? AND e.status IN ('success', 'error', 'crashed') "
                "ORDER BY e.id", (workflow_id,)).fetchall()
        out = []
        for exec_id, status, data in rows:
            result = unflatten(data)["resultData"]
            run = result["runData"].get(node) or []
            items = [i["json"] for r in run if r.get("data") for i in r["data"]["main"][0]]
            error = (result.get("error") or {}).get("message")
            out.append({"id": exec_id, "status": status, "items": items, "error": error})
        return out

    def static_data(self, workflow_id: str) -> Any:
        with self.db() as db:
            (value,) = db.execute("SELECT staticData FROM workflow_entity WHERE id = ?",
                                  (workflow_id,)).fetchone()
        return json.loads(value) if value else None


def test_button(n8n: N8n, cred: dict[str, str], data: dict[str, str], serve: Serve,
                token_serve: Serve, other_server: str) -> dict[str, dict[str, str]]:
    """The credential's Test button, as the editor presses it (POST /rest/credentials/test),
    for a working credential and each way it can be wrong."""
    http = requests.Session()
    http.trust_env = False
    http.headers["browser-id"] = "e2e-browser"  # n8n ties its session cookie to it
    base = f"http://127.0.0.1:{n8n.port}/rest"
    owner = http.post(f"{base}/owner/setup", json={
        "email": "e2e@example.com", "firstName": "E", "lastName": "E",
        "password": "E2e-password-0123"}, timeout=30)
    owner.raise_for_status()
    cases = {
        "works": {},
        "wrong key": {"apiKey": "wrong-key-0123456789"},
        "token missing": {"serviceUrl": token_serve.url},
        "token wrong": {"serviceUrl": token_serve.url, "serviceToken": "wrong-token-0123456789"},
        "token right": {"serviceUrl": token_serve.url, "serviceToken": token_serve.token or ""},
        "service down": {"serviceUrl": f"http://127.0.0.1:{free_port()}"},
        "path in the URL": {"serviceUrl": f"{serve.url}/api"},
        "another server": {"serviceUrl": other_server},
    }
    out = {}
    for case, change in cases.items():
        answer = http.post(f"{base}/credentials/test", timeout=60, json={"credentials": {
            **cred, "type": "tikTokFollowingApi", "data": {**data, **change}}})
        answer.raise_for_status()
        out[case] = answer.json()["data"]
    return out


def workflow(wf_id: str, name: str, node: str, node_type: str, parameters: dict[str, Any],
             cred: dict[str, str]) -> dict[str, Any]:
    return {
        "id": wf_id, "name": name, "active": False, "settings": {"executionOrder": "v1"},
        "connections": {node: {"main": [[{"node": "Done", "type": "main", "index": 0}]]}},
        "nodes": [
            {"id": str(uuid.uuid4()), "name": node, "typeVersion": 1, "position": [0, 0],
             "type": f"CUSTOM.{node_type}", "parameters": {"pollTimes": POLL_TIMES, **parameters},
             "credentials": {"tikTokFollowingApi": cred}},
            {"id": str(uuid.uuid4()), "name": "Done", "type": "n8n-nodes-base.noOp",
             "typeVersion": 1, "position": [250, 0], "parameters": {}},
        ]}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n8n-home", type=Path, required=True)
    p.add_argument("--package", type=Path, required=True)
    p.add_argument("--tarball", type=Path, required=True, help="the packed package (npm pack)")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--n8n-port", type=int, default=0, help="n8n's port (default: a free one)")
    p.add_argument("--broker-port", type=int, default=0,
                   help="n8n's task broker port (default: a free one)")
    p.add_argument("--serve-port", type=int, default=0, help="serve's port (default: a free one)")
    p.add_argument("--only-test-button", action="store_true",
                   help="stop after the credential's Test button (about two minutes)")
    args = p.parse_args()
    work: Path = args.work
    # n8n's folder for custom nodes in its user folder: ~/.n8n/custom for an n8n of your own.
    custom = work / ".n8n" / "custom"
    custom.mkdir(parents=True)
    subprocess.run(["npm", "install", "--omit=peer", "--ignore-scripts", "--no-audit",
                    "--no-fund", "--loglevel=error", str(args.tarball.resolve())],
                   cwd=custom, check=True)
    assert not (custom / "node_modules" / "n8n-workflow").exists(), "a second n8n-workflow"
    began = time.monotonic()
    figures: dict[str, Any] = {"phases_s": {}}
    follows: list[str] = []  # ids followed after the baseline, in follow order
    unfollows: list[str] = []  # ids unfollowed while the unfollow trigger could see them
    standin = StandIn(api_keys=(KEY,), credits={KEY: 1_000_000}, default_count=30).start()
    serve = token_serve = n8n = None
    try:
        standin.add_account(HANDLE, 40)
        users = {str(u["id"]): u for u in standin.following(HANDLE)}
        original = list(users)  # newest first
        serve = Serve(free_port(args.serve_port), work / "serve.log")
        serve.start()
        token_serve = Serve(free_port(), work / "serve-token.log", "e2e-token-" + uuid.uuid4().hex)
        token_serve.start()
        n8n = N8n(args.n8n_home, work, free_port(args.n8n_port),
                  free_port(args.broker_port))
        figures.update({"n8n": n8n.version, "node": subprocess.run(
            [str(args.n8n_home / "node_modules/.bin/node"), "--version"], capture_output=True,
            text=True, check=True).stdout.strip(), "package": json.loads(
                (args.package / "package.json").read_text())["version"],
            "ports": {"n8n": n8n.port, "broker": int(n8n.env["N8N_RUNNERS_BROKER_PORT"]),
                      "serve": serve.port, "standin": int(standin.url.rsplit(":", 1)[1])}})

        cred_id = "tkCred" + uuid.uuid4().hex[:10]
        cred = {"id": cred_id, "name": "TikTok Following e2e"}
        cred_data = {"apiKey": KEY, "baseUrl": standin.url, "serviceUrl": serve.url,
                     "serviceToken": ""}
        (work / "credentials.json").write_text(json.dumps([{
            **cred, "type": "tikTokFollowingApi", "data": cred_data}]))
        wf_follow, wf_unfollow = ("tkWf" + uuid.uuid4().hex[:12] for _ in range(2))
        # A page of 10 and 2 pages a poll: a burst of 25 spans polls.
        (work / "follow.json").write_text(json.dumps(workflow(
            wf_follow, "TikTok follows (e2e)", FOLLOWED, "tikTokNewAccountFollowedTrigger",
            {"handle": f"@{HANDLE}", "firstRun": "skipExisting",
             "options": {"count": 10, "maxPages": 2}}, cred)))
        (work / "unfollow.json").write_text(json.dumps(workflow(
            wf_unfollow, "TikTok unfollows (e2e)", UNFOLLOWED, "tikTokAccountUnfollowedTrigger",
            {"handle": HANDLE, "options": {"count": 10}}, cred)))
        t = time.monotonic()
        n8n.command("import:credentials", f"--input={work / 'credentials.json'}")
        for name, wf_id in (("follow.json", wf_follow), ("unfollow.json", wf_unfollow)):
            n8n.command("import:workflow", f"--input={work / name}")
            n8n.activate(wf_id)
        figures["import_s"] = round(time.monotonic() - t, 1)

        def delivered(wf_id: str, node: str) -> list[str]:
            return [i["id"] for e in n8n.executions(wf_id, node) for i in e["items"]]

        def got_follows() -> list[str]:
            return delivered(wf_follow, FOLLOWED)

        def got_unfollows() -> list[str]:
            return delivered(wf_unfollow, UNFOLLOWED)

        def all_in() -> bool:
            return sorted(got_follows()) == sorted(follows) and sorted(
                got_unfollows()) == sorted(unfollows)

        def phase(name: str, done: Any = all_in, timeout: float = PHASE_WAIT) -> None:
            started = time.monotonic()
            while time.monotonic() - started < timeout:
                if done():
                    took = round(time.monotonic() - started, 1)
                    figures["phases_s"][name] = took
                    print(f"  {name}: {took}s", flush=True)
                    return
                time.sleep(1)
            raise AssertionError(
                f"{name}: not within {timeout}s; follows {got_follows()} of {follows}, "
                f"unfollows {got_unfollows()} of {unfollows}")

        def follow(n: int) -> None:
            follows.extend(str(u["id"]) for u in standin.follow_many(HANDLE, n))

        def unfollow(user_id: str) -> None:
            standin.unfollow(HANDLE, user_id)
            unfollows.append(user_id)

        figures["n8n_start_s"] = round(n8n.start(), 1)
        print(f"n8n {n8n.version} on 127.0.0.1:{n8n.port} (broker {figures['ports']['broker']}),"
              f" serve on {serve.url}, stand-in on {standin.url}", flush=True)
        # Activation polls once at once: the follow trigger takes its baseline, the unfollow
        # trigger reads the whole list (5 pages of 10).
        phase("activation baselines", lambda: standin.count_requests(HANDLE) >= 6, 120)
        time.sleep(5)
        assert got_follows() == [] and got_unfollows() == [], "a baseline emitted"

        print("the credential's Test button, for two working credentials and six wrong ones",
              flush=True)
        tests = figures["test_button"] = test_button(n8n, cred, cred_data, serve, token_serve,
                                                     standin.url)
        for case, result in tests.items():
            print(f"  {case}: {result['status']}: {result['message']}", flush=True)
        assert [c for c, r in tests.items() if r["status"] == "OK"] == ["works", "token right"]
        assert tests["wrong key"]["message"].startswith("DumplingAI refused the credential's API")
        assert tests["token missing"] == tests["token wrong"]
        assert "refused the credential's Service Token" in tests["token wrong"]["message"]
        # n8n's own words for no answer: the code (2.x) or a sentence about it (1.x).
        down = tests["service down"]["message"]
        assert down == "ECONNREFUSED" or "refused the connection" in down, down
        assert "not its root" in tests["path in the URL"]["message"]
        assert "not the connector service" in tests["another server"]["message"]
        if args.only_test_button:
            return 0

        print("phase 1: 3 follows", flush=True)
        follow(3)
        phase("3 follows")

        print("phase 2: a burst of 25, more than one poll's 2 pages of 10", flush=True)
        follow(25)
        phase("burst of 25")

        print("phase 3: 2 unfollows of known accounts", flush=True)
        unfollow(original[0])
        unfollow(original[1])
        phase("2 unfollows")

        print("phase 4: a known account followed again, and 2 new follows", flush=True)
        standin.follow(HANDLE, users[original[0]])
        follow(2)
        phase("re-follow (not new) and 2 follows")
        for wf_id, node in ((wf_follow, FOLLOWED), (wf_unfollow, UNFOLLOWED)):
            assert f"node:{node}" in (n8n.static_data(wf_id) or {}), f"no state saved for {node}"

        print("phase 5: n8n stopped; 4 follows and 1 unfollow while it is down", flush=True)
        n8n.stop()
        follow(4)
        unfollow(original[2])
        figures["n8n_restart_s"] = round(n8n.start(), 1)
        phase("after the n8n restart")

        print("phase 6: serve stopped; 3 follows and 1 unfollow during the outage", flush=True)
        failed_before = {wf: sum(e["status"] != "success" for e in n8n.executions(wf, node))
                         for wf, node in ((wf_follow, FOLLOWED), (wf_unfollow, UNFOLLOWED))}
        serve.stop()
        outage = time.monotonic()
        follow(3)
        unfollow(original[3])

        def both_failed() -> bool:
            return all(sum(e["status"] != "success" for e in n8n.executions(wf, node))
                       > failed_before[wf]
                       for wf, node in ((wf_follow, FOLLOWED), (wf_unfollow, UNFOLLOWED)))

        phase("a failed poll of each trigger during the outage", both_failed)
        serve.start()
        figures["serve_outage_s"] = round(time.monotonic() - outage, 1)
        phase("after the serve outage")

        print("quiet: a minute more must deliver nothing", flush=True)
        requests_before = standin.count_requests(HANDLE)
        time.sleep(75)
        assert standin.count_requests(HANDLE) >= requests_before + 2, "no poll in the quiet minute"

        runs = {node: n8n.executions(wf, node)
                for wf, node in ((wf_follow, FOLLOWED), (wf_unfollow, UNFOLLOWED))}
        got_f, got_u = got_follows(), got_unfollows()
        order_ok = all(
            [follows.index(i["id"]) for i in e["items"]]
            == sorted(follows.index(i["id"]) for i in e["items"]) for e in runs[FOLLOWED])
        errors = sorted({e["error"] for r in runs.values() for e in r if e["status"] != "success"})
        logs = "".join(path.read_text(errors="replace") for path in (
            work / "serve.log", work / "serve-token.log", work / "n8n.log"))
        figures.update({
            "follows_expected": len(follows), "follows_delivered": len(got_f),
            "follow_duplicates": len(got_f) - len(set(got_f)),
            "follows_missing": len(set(follows) - set(got_f)),
            "follows_unexpected": len(set(got_f) - set(follows)),
            "unfollows_expected": len(unfollows), "unfollows_delivered": len(got_u),
            "unfollow_duplicates": len(got_u) - len(set(got_u)),
            "unfollows_missing": len(set(unfollows) - set(got_u)),
            "unfollows_unexpected": len(set(got_u) - set(unfollows)),
            "oldest_first_in_every_execution": order_ok,
            "executions": {node: len(r) for node, r in runs.items()},
            "executions_failed": {node: sum(e["status"] != "success" for e in r)
                                  for node, r in runs.items()},
            "failed_execution_messages": errors,
            "requests_seen_by_stand_in": standin.count_requests(HANDLE),
            "credits_used": 1_000_000 - (standin.credits or {}).get(KEY, 0),
            "key_in_logs": KEY in logs or str(token_serve.token) in logs,
            "state_in_logs": any(s in logs for s in STATE_PATTERNS),
            "total_s": round(time.monotonic() - began, 1),
        })
        print(json.dumps(figures, indent=2), flush=True)
        (work / "figures.json").write_text(json.dumps(figures, indent=2))
        assert figures["follow_duplicates"] == 0 and figures["unfollow_duplicates"] == 0
        assert sorted(got_f) == sorted(follows) and sorted(got_u) == sorted(unfollows)
        assert order_ok and not figures["key_in_logs"] and not figures["state_in_logs"]
        # The only failed polls are the outage's, and they name the service.
        assert all(e and "Could not reach the connector service" in e for e in errors), errors
        print(f"e2e: n8n {n8n.version}: {len(got_f)} of {len(follows)} follows and {len(got_u)} "
              f"of {len(unfollows)} unfollows, each once, across a restart and an outage")
        return 0
    finally:
        if n8n:
            n8n.stop()
        if serve:
            serve.stop()
        if token_serve:
            token_serve.stop()
        standin.stop()


if __name__ == "__main__":
    sys.exit(main())
