"""What the docs say, held to it (issue 21): nothing tells anyone to install a package name
that is not on the package index, a `--min-time` in seconds that reads nothing says so, the
summary line says what the handles it did not poll were, the sample event is as documented,
and a stale snippet fails with an id that names its file and line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from connector.watch.summary import CycleSummary
from connector.watch.webhook import sample_event
from tests.support import ROOT, run_main

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: `pip install tiktok-following-connector`, with or without an extra or quotes.
UNPUBLISHED = re.compile(r"pip install[^\n`]*?['\"]?tiktok-following-connector\b")


def only_for_after_publishing(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for match in UNPUBLISHED.finditer(text):
        sentence = text[max(0, match.start() - 200):match.end()]
        assert "published" in sentence, (path.name, match.group())


def test_no_message_or_help_installs_the_name_that_is_not_on_the_index() -> None:
    for path in (ROOT / "connector").rglob("*.py"):
        only_for_after_publishing(path)


def test_docs_install_from_a_clone_and_name_the_index_only_for_after_publishing() -> None:
    for path in DOCS:
        only_for_after_publishing(path)
        text = path.read_text(encoding="utf-8")
        if "pip install" in text and path.name != "speed.md":
            assert "not on PyPI yet" in text, path.name


def test_the_messages_for_a_missing_extra_say_how_to_install_it_today(monkeypatch) -> None:
    import builtins

    from connector.core.errors import ConfigurationError
    from connector.serve import server
    from connector.storage import postgres

    real_import = builtins.__import__

    def no_waitress(name: str, *args, **kwargs):
        if name.startswith("waitress"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_waitress)
    with pytest.raises(ConfigurationError) as caught:
        server.create_server(host="127.0.0.1", port=0)
    assert caught.value.message == ("serve needs waitress: pip install '.[serve]' in the "
                                    "connector's clone, or pip install waitress")
    monkeypatch.setattr(postgres, "psycopg", None)
    with pytest.raises(ConfigurationError) as caught:
        postgres.PostgresDatabase("postgresql://u@127.0.0.1/db")
    assert "pip install '.[postgres]' in the connector's clone" in caught.value.message


# ---------------------------------------------------------------- --min-time in seconds


def test_a_min_time_in_seconds_that_reads_nothing_says_why() -> None:
    """busy_demo pages in milliseconds, as most upstreams do; the README once showed a
    10-digit cursor, which reads nothing there."""
    run = run_main("--sandbox", "list", "busy_demo", "--min-time", "1700000000", key=None)
    assert (run.code, run.stdout) == (0, "")
    assert run.stderr.splitlines()[-1].startswith(
        "warning: nothing was followed before the cursor 1700000000 this read began at, while "
        "the account follows ")
    assert "pass a nextCursor as it was given" in run.stderr


def test_every_surface_says_why_a_min_time_in_seconds_read_nothing() -> None:
    """The rule lives in the action, not in the CLI: a runner calling `invoke` (or `serve`)
    gets the same warning in the result's meta."""
    request = {"operation": "get_tiktok_user_following", "mode": "live",
               "inputs": {"handle": "busy_demo", "minTime": 1700000000}}
    run = run_main("--sandbox", "invoke", stdin=json.dumps(request))
    assert run.code == 0, run.stderr
    meta = json.loads(run.stdout)["meta"]
    assert len(meta["warnings"]) == 1 and "a cursor of 10 digits is seconds" in meta["warnings"][0]
    request["inputs"]["minTime"] = 1000000000000
    meta = json.loads(run_main("--sandbox", "invoke", stdin=json.dumps(request)).stdout)["meta"]
    assert meta["warnings"] == []


def test_the_python_api_and_serve_say_it_too() -> None:
    """The same warning from `connector.run` and from `serve`'s /v1/run (the rule's one
    home is the action)."""
    pytest.importorskip("waitress")
    import requests

    import connector
    from connector.serve.server import create_server
    from connector.standin import StandIn

    inputs = {"handle": "busy_demo", "minTime": 1700000000}
    with StandIn(demo=True) as standin:
        creds = {"apiKey": standin.api_key, "baseUrl": standin.url}
        warned = connector.run("get_tiktok_user_following", inputs, credentials=creds)
        assert len(warned.meta["warnings"]) == 1
        assert "a cursor of 10 digits is seconds" in warned.meta["warnings"][0]
        quiet = connector.run("get_tiktok_user_following", {**inputs, "minTime": 10**12},
                              credentials=creds)
        assert quiet.meta["warnings"] == []
        server = create_server(host="127.0.0.1", port=0)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            answer = requests.post(server.url + "/v1/run", timeout=30, json={
                "operation": "get_tiktok_user_following", "inputs": inputs,
                "credentials": {"baseUrl": standin.url}},
                headers={"Authorization": f"Bearer {standin.api_key}"})
        finally:
            server.stop()
            thread.join(5)
    assert answer.status_code == 200, answer.text
    assert answer.json()["meta"]["warnings"] == warned.meta["warnings"]


def test_a_min_time_in_milliseconds_gives_no_such_warning() -> None:
    run = run_main("--sandbox", "list", "busy_demo", "--min-time", "1000000000000", key=None)
    assert run.code == 0 and run.stdout == ""
    assert "warning" not in run.stderr


# ---------------------------------------------------------------- the summary line


def test_handles_not_due_in_a_cycle_are_said_to_be_not_due() -> None:
    summary = CycleSummary(4, polled={"a", "b", "c"})
    assert summary.line().startswith("watch: 3/4 handles polled, 1 not due, 0 new follows")
    summary = CycleSummary(4, polled={"a"}, failed={"b": "404 not_found"}, elsewhere=1)
    assert summary.line().startswith("watch: 1/4 handles polled, 1 by other watchers, 1 not "
                                     "due, ")
    assert "not due" not in CycleSummary(2, polled={"a"}, failed={"b": "x"}).line()
    assert "not due" not in CycleSummary(2, polled={"a"}, skipped=1).line()


# ---------------------------------------------------------------- the sample event


def test_the_sample_event_is_as_docs_watch_md_says() -> None:
    text = (ROOT / "docs" / "watch.md").read_text(encoding="utf-8")
    event = sample_event()
    assert event["handle"] == "sample" and sample_event()["eventId"] == event["eventId"]
    assert f"(`{event['eventId']}`; an unfollow sample has its own)" in text
    assert sample_event("unfollowed")["eventId"] != event["eventId"]


# ---------------------------------------------------------------- stale docs fail


@pytest.mark.slow
def test_a_stale_snippet_fails_and_its_id_names_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "stale.md").write_text(textwrap.dedent("""\
        # A page

        ```sh
        tiktok-following list busy_demo --sandbox --max-items 1
        ```

        ```sh
        tiktok-following list busy_demo --no-such-option
        ```

        <!-- skip: next "needs a real key" -->

        ```sh
        tiktok-following list alice --min-time sk_live
        ```
        """))
    (tmp_path / "conftest.py").write_text(
        "from tests.doc_snippets import make_sybil\n"
        "pytest_collect_file = make_sybil(__file__).pytest()\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
         f"--rootdir={tmp_path}", "docs"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "PASSED docs/stale.md::line:3,column:1" in out
    assert "FAILED docs/stale.md::line:7,column:1" in out
    assert "unrecognized arguments: --no-such-option" in out
    assert re.search(r"SKIPPED \[1\] .*: needs a real key", out)


def test_the_readme_layout_names_every_package_and_top_level_module() -> None:
    # Issue 19: the README's layout map current. serve/ and protocol.py were missing from it.
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = text[text.index("## Layout"):]
    layout = layout[:layout.index("```", layout.index("```") + 3)]
    package = ROOT / "connector"
    names = [f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").exists()]
    names += [p.name for p in package.glob("*.py") if p.name != "__init__.py"]
    missing = [n for n in sorted(names) if not re.search(rf"(?<![\w/]){re.escape(n)}", layout)]
    assert not missing, f"README's layout map does not name {missing}"


def test_invoke_goes_where_base_url_and_sandbox_say() -> None:
    """`invoke` once ignored --sandbox and --base-url and sent the request to the production
    API with the key of the environment."""
    from connector.standin import StandIn

    request = json.dumps({"operation": "get_tiktok_user_following",
                          "inputs": {"handle": "someone", "maxItems": 2}})
    with StandIn(api_keys=("test-key",)) as standin:
        standin.add_account("someone", 3)
        run = run_main("--base-url", standin.url, "invoke", stdin=request, key="test-key")
        assert run.code == 0, run.stderr
        assert len(json.loads(run.stdout)["items"]) == 2
        assert standin.count_requests("someone") == 1
    run = run_main("--sandbox", "invoke", stdin=json.dumps(
        {"operation": "get_tiktok_user_following", "inputs": {"handle": "busy_demo"}}), key=None)
    assert run.code == 0, run.stderr
    assert json.loads(run.stdout)["items"]
