"""Reliability under hostile input: fuzzing `invoke` requests and the CLI's option values.

Whatever comes in, the connector answers with an exit code of 0, 1 or 2 and never a traceback
(nor an "internal error", which is a bug reported politely); `invoke` always prints exactly one
JSON object; and an exit of 2 ("fix the input, nothing was sent") means exactly that: the
stand-in and the webhook received nothing.

Each fuzz test is bounded so the suite stays quick, and deterministic in CI;
`FUZZ_EXAMPLES=2000 pytest tests/test_reliability.py` runs more examples, freshly drawn.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from connector import invoke
from connector.operations.registry import OPERATIONS
from connector.standin import StandIn
from tests.receiver import Receiver
from tests.support import ACTION, API_KEY, TRIGGER, Run, request, run_main

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0")) or None
fuzz = settings(max_examples=EXAMPLES or 150, deadline=None, derandomize=EXAMPLES is None,
                suppress_health_check=list(HealthCheck), database=None)
OPS = [ACTION, TRIGGER]


@pytest.fixture(scope="module")
def upstream() -> Iterator[StandIn]:
    with StandIn(api_keys=(API_KEY,)) as server:
        server.add_account("alice", 12)
        server.add_account("ok", 5)
        yield server


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


# --------------------------------------------------------------------------- values

#: Text a person, a form or an attacker might put anywhere.
NASTY = ["", " ", "0", "-1", "1.5", "1e400", "inf", "-inf", "nan", "NaN", "9" * 5000,
         "-" + "9" * 30, "\x00", "a\nb", "a\r\nb", "\t", "€", "ключ", "😀", "%00",
         "' OR 1=1 --", "${HOME}", "../../etc/passwd", "@", "@@", "--", "-x", "null", "true",
         "[]", "{}"]
nasty_text = st.one_of(st.sampled_from(NASTY), st.text(max_size=30))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.just(10**4000 - 1),
                         st.floats(allow_nan=False), nasty_text)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def bad_urls(good: str) -> list[str]:
    """URLs wrong in every way a URL can be, all of them on this machine if they are URLs at
    all (the suite has no network), built from `good`, a loopback URL."""
    port = good.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    return [
        good + "/extra/path", good.replace("http://", "http://user:pw@"), f"http://[::1:{port}",
        "http://127.0.0.1:99999", "http://127.0.0.1:0", f"https://[::1/{port}",
        "ftp://127.0.0.1/x", "javascript:alert(1)", "//127.0.0.1", "http://", "http:///x",
        "http://exa mple.com", f"http://127.0.0.1:{port}\n/x", "http://bücher.example",
        "http://example.com", "file:///etc/passwd", "http://" + "a" * 3000, "",
    ]


def loopback_urls(good: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(good), st.sampled_from(bad_urls(good)),
                     nasty_text.filter(lambda t: "://" not in t))


verbosity = st.sampled_from([[], ["-v"], ["-vv"]])


# --------------------------------------------------------------------------- checks


def check(run: Run, before: tuple[int, int], upstream: StandIn, hook: Receiver) -> None:
    """What every run must do, whatever it was given."""
    assert run.code in (0, 1, 2), run.output
    for text in (run.stdout, run.stderr):
        assert "Traceback" not in text and "internal error" not in text, text
    if run.code == 2:
        assert (upstream.count_requests(), len(hook.requests)) == before, run.output
    assert "reach https://app.dumplingai.com" not in run.output  # the fuzz stays on loopback


def counts(upstream: StandIn, hook: Receiver) -> tuple[int, int]:
    return upstream.count_requests(), len(hook.requests)


# --------------------------------------------------------------------------- invoke


def invoke_requests(url: str) -> st.SearchStrategy[str | bytes]:
    """Raw stdin for `invoke`: good requests, good ones with a field gone wrong, and junk."""
    good_inputs = st.fixed_dictionaries({"handle": st.sampled_from(["alice", "@ok", "ghost"])},
                                        optional={"count": st.integers(1, 100),
                                                  "maxPages": st.integers(2, 4)})
    good_creds = st.fixed_dictionaries({"apiKey": st.just(API_KEY), "baseUrl": st.just(url)})
    good = st.fixed_dictionaries(
        {"operation": st.sampled_from(OPS), "inputs": good_inputs, "credentials": good_creds},
        optional={"platform": st.sampled_from(["zapier", "n8n", "make", "api", None]),
                  "mode": st.sampled_from(["live", "test", None]), "state": st.none()})
    field_names = st.sampled_from(["operation", "inputs", "credentials", "platform", "mode",
                                   "state", "verbose"])
    input_names = st.sampled_from(["handle", "count", "maxPages", "maxItems", "minTime",
                                   "firstRun", "requestSource", "handel"])
    broken_field = st.tuples(good, field_names, json_values).map(
        lambda t: {**t[0], t[1]: t[2]})
    broken_input = st.tuples(good, input_names, json_values).map(
        lambda t: {**t[0], "inputs": {**t[0]["inputs"], t[1]: t[2]}})
    broken_creds = st.tuples(good, st.sampled_from(["apiKey", "baseUrl"]),
                             st.one_of(json_values, loopback_urls(url))).map(
        lambda t: {**t[0], "credentials": {**t[0]["credentials"], t[1]: t[2]}})
    as_json = st.one_of(good, broken_field, broken_input, broken_creds).map(
        lambda r: json.dumps(r, allow_nan=True))
    return st.one_of(
        as_json, as_json, as_json,
        json_values.map(lambda v: json.dumps(v)),
        st.binary(max_size=60),
        st.integers(1, 60_000).map(lambda depth: "[" * depth + "]" * depth),
        st.just(json.dumps(request(ACTION, {"handle": "a" * 5000}))),
        st.just(json.dumps(request(ACTION, {"handle": "alice", "count": 0}))
                .replace('"count": 0', '"count": ' + "9" * 5000)),
    )


def test_invoke_answers_any_stdin_with_one_json_object_and_an_honest_exit_code(
    upstream, hook
) -> None:
    @fuzz
    @given(raw=invoke_requests(upstream.url), flags=verbosity)
    def one(raw: str | bytes, flags: list[str]) -> None:
        before = counts(upstream, hook)
        # A request without a baseUrl goes to the environment's: the stand-in, never the API.
        run = run_main(*flags, "invoke", stdin=raw, key=None,
                       env={"DUMPLINGAI_BASE_URL": upstream.url})
        event(f"invoke: exit {run.code}")
        check(run, before, upstream, hook)
        assert run.stdout.endswith("\n") and run.stdout.count("\n") == 1, run.stdout
        body = run.json
        assert isinstance(body, dict)
        if run.code == 0:
            assert set(body) == {"items", "state", "meta"}
            assert run.stderr == "" or flags
        else:
            assert set(body) == {"error"}
            assert body["error"]["type"] != "internal_error"
            assert f"tiktok-following: {body['error']['message']}\n" in run.stderr
            if not flags:
                assert run.stderr.count("\n") == 1

    one()


def known_bad_requests(url: str) -> st.SearchStrategy[str | bytes]:
    """Requests that are wrong in a way `invoke` must name (exit 2), each built from a good one."""
    creds = {"apiKey": "k", "baseUrl": url}
    base = st.fixed_dictionaries({"operation": st.sampled_from(OPS), "credentials": st.just(creds)})
    plain = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=20))
    bad_handles = st.one_of(
        st.integers(), st.lists(st.text(), max_size=2), st.just(""), st.just("bad handle!"),
        st.just("x" * 25), st.just("@@x"),
        st.text(alphabet="!#$%^&*() ", min_size=1, max_size=10),
    )
    bad_numbers = st.one_of(
        st.just(0), st.integers(max_value=0), st.just("abc"), st.just(1.5), st.just(10**6),
        st.just(True), st.lists(st.integers(), max_size=2),
    )
    return st.one_of(
        # not JSON at all
        st.binary(max_size=50).filter(lambda b: not _parses(b)),
        # JSON, but not a request object
        json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v)),
        # unknown operation (any operation's key is a known one: Hypothesis draws strings
        # from the package's own constants too, "account_unfollowed" among them)
        st.text(max_size=30).filter(lambda s: s not in OPERATIONS).map(
            lambda op: json.dumps(request(op, {"handle": "ok"}, creds))),
        # a bad handle, or a bad number in an otherwise good request
        base.flatmap(lambda r: bad_handles.map(lambda h: {**r, "inputs": {"handle": h}})).map(
            json.dumps),
        base.flatmap(
            lambda r: st.tuples(st.sampled_from(["count", "maxPages", "maxItems"]), bad_numbers)
            .filter(lambda kv: kv != ("maxItems", 10**6))
            .map(lambda kv: {**r, "inputs": {"handle": "ok", kv[0]: kv[1]}})
        ).map(json.dumps),
        # wrong types at the top level
        base.flatmap(
            lambda r: st.sampled_from(["inputs", "credentials", "state"]).flatmap(
                lambda k: st.one_of(st.integers(), st.text(max_size=5),
                                    st.lists(st.integers()), plain.filter(bool))
                .map(lambda v: {**r, "inputs": {"handle": "ok"}, k: v}))
        ).map(json.dumps),
        # unknown request or input fields, a bad mode or platform
        base.map(lambda r: json.dumps({**r, "inputs": {"handle": "ok", "handel": "x"}})),
        base.map(lambda r: json.dumps({**r, "inputs": {"handle": "ok"}, "mode": "dry"})),
        base.map(lambda r: json.dumps({**r, "inputs": {"handle": "ok"}, "platform": "ifttt"})),
        base.map(lambda r: json.dumps({**r, "inputs": {"handle": "ok"}, "extra": 1})),
    )


def _parses(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def test_invoke_names_every_known_bad_request_with_exit_2_and_sends_nothing(upstream):
    before = upstream.count_requests()

    @settings(fuzz, max_examples=(EXAMPLES or 300))
    @given(raw=known_bad_requests(upstream.url))
    def one(raw: str | bytes) -> None:
        code, body = invoke.answer(raw)
        assert code == 2, body
        assert set(body) == {"error"}
        assert body["error"]["type"] in ("input_error", "configuration_error", "state_error")
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        json.dumps(body)  # serialisable as the protocol promises

    one()
    assert upstream.count_requests() == before


def test_invoke_refuses_a_huge_request_before_parsing_it(upstream):
    before = upstream.count_requests()
    raw = json.dumps(request(ACTION, {"handle": "a" * (9 * 1024 * 1024)}))
    code, body = invoke.answer(raw)
    assert code == 2 and body["error"]["field"] == "request"
    code, body = invoke.answer(json.dumps(request(ACTION, {"handle": "a" * 5000},
                                                  {"apiKey": "k"})))
    assert code == 2 and body["error"]["field"] == "handle"
    assert upstream.count_requests() == before


def test_invoke_never_prints_a_traceback_even_on_internal_errors(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("unexpected")

    monkeypatch.setattr("connector.api.run", boom)
    code, body = invoke.answer(json.dumps(request(ACTION, {"handle": "x"})))
    assert code == 1 and body["error"]["type"] == "internal_error"


# --------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """Paths the fuzzed commands may be given: a state database, and files that are not one."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "handles.txt").write_text("alice\n# a comment\n@ok\n", encoding="utf-8")
    (root / "binary").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff" * 20)
    (root / "text.db").write_text("not a database\n" * 40, encoding="utf-8")
    (root / "empty").write_bytes(b"")
    (root / "folder").mkdir()
    return {name: str(root / name) for name in
            ("handles.txt", "binary", "text.db", "empty", "folder", "state.db",
             "fresh/state.db")}


#: An option of a command: its name (None for a positional argument, a name and True/False
#: for a flag), values that are right (None: left out) and values that are wrong in some way.
Option = tuple[str | None, list[Any], list[Any]]
#: Options naming files: never given made-up text, which would create files anywhere.
PATHS = ("--state-db", "--handles-file")


@st.composite
def command_line(draw: st.DrawFn, words: list[str], options: list[Option]) -> list[str]:
    """`words` and the options, each right except for none, one or two drawn wrong (with every
    option free to go wrong, nearly every command would stop at its first bad option and the
    paths behind it would never run). Choices are uniform (hypothesis's own draws favour the
    first element of a list), made by a Random that hypothesis seeds."""
    rnd = draw(st.randoms(use_true_random=True))
    broken = set(rnd.sample(range(len(options)), rnd.choice([0, 0, 1, 1, 2])))
    argv = list(words)
    for i, (name, right, bad) in enumerate(options):
        if i not in broken:
            value = rnd.choice(right)
        elif name in PATHS:  # only the files and folders made for the test: nothing else
            value = rnd.choice(bad)
        elif rnd.random() < 0.2:
            value = draw(st.text(max_size=30))  # anything at all
        else:  # the option's own likely mistakes, or what could be wrong anywhere
            value = rnd.choice(bad if bad and rnd.random() < 0.6 else NASTY)
        if value is None or value is False:
            continue
        argv += [name] if value is True else [name, value] if name else [value]
    return argv


def cli_runs(upstream: StandIn, hook: Receiver, files: dict[str, str]
             ) -> st.SearchStrategy[list[str]]:
    """Whole command lines for list, poll, watch --once and outbox."""
    def numbers(low: int, high: int) -> list[str | None]:
        return [None, str(low), str(high), str((low + high) // 2)]

    handle: Option = (None, ["alice", "@Alice", " ok ", "ghost",
                             "https://www.tiktok.com/@alice?lang=en"],
                      ["bad handle!", "x" * 25, "https://[::1/@alice", "ftp://tiktok.com/@a",
                       "javascript:alert(1)//tiktok.com/@a", "https://evil.example/@alice"])
    state_db: Option = ("--state-db", [files["state.db"]],
                        [files["text.db"], files["folder"], files["binary"], files["empty"], ""])
    count: Option = ("--count", numbers(1, 100), ["0", "101", "30.5"])
    max_pages: Option = ("--max-pages", numbers(2, 4), ["1", "201"])
    first_run: Option = ("--first-run", [None, "skipExisting", "emitRecent"],
                         ["emitrecent", "skip"])
    webhook: Option = ("--webhook", [hook.url], bad_urls(hook.url))
    header: Option = ("--header", [None, "X-Token: abc", "Authorization: Bearer t0k3n"],
                      ["Idempotency-Key: x", "Content-Length: 1", "Bad Name: v", "X-T: €uro",
                       "X-T: ключ", "no colon", ": no name", "X-T: a\nb", "X-T: a\x00b"])
    timeout: Option = ("--webhook-timeout", [None, "0.5", "5"], ["0", "601", "-5"])
    listing = command_line(["list"], [
        handle, ("--max-pages", numbers(1, 3), ["0", "1001"]),
        ("--max-items", numbers(1, 50), ["0", "1000001"]), count,
        ("--min-time", [None, "1700000005", "1699999999", "1700000000000"],
         ["1e400", "-1", "1" * 20, "0x10", "1.7.0"]),
        ("--format", [None, "json", "jsonl", "csv"], ["xml", "JSON"])])
    poll = command_line(["poll"], [handle, state_db, count, max_pages, first_run])
    watch = command_line(["watch", "--once"], [
        handle, ("--handles-file", [None, files["handles.txt"]],
                 [files["binary"], files["empty"], files["folder"], files["fresh/state.db"],
                  "-", ""]),
        webhook, header, state_db,
        ("--interval", [None, "30s", "15m", "1h30m"], ["0s", "5 parsecs", "1h30", "-1m"]),
        ("--concurrency", numbers(1, 8), ["0", "257"]),
        ("--max-attempts", numbers(1, 5), ["0", "1001"]),
        timeout, count, max_pages, first_run, ("--allow-http", [True, False], [True])])
    outbox = command_line(["outbox"], [
        (None, [None, "list", "retry", "discard"], ["delete", "LIST"]),
        (None, [None, "no-such-event", "e1"], []),
        ("--all", [True, False], [True]), state_db,
        ("--format", [None, "table", "jsonl"], ["csv"]),
        ("--webhook", [None, hook.url], bad_urls(hook.url)), header, timeout])
    verbosity = st.sampled_from([[], ["-v"], ["-vv"]])
    base = st.sampled_from([["--base-url", upstream.url], []]
                           + [["--base-url", u] for u in bad_urls(upstream.url)])
    command = st.one_of(listing, poll, watch, outbox)
    return st.tuples(verbosity, base, command).map(
        lambda parts: list(itertools.chain.from_iterable(parts)))


def test_the_cli_answers_any_option_values_with_an_honest_exit_code(upstream, hook, files):
    @fuzz
    @given(argv=cli_runs(upstream, hook, files))
    def one(argv: list[str]) -> None:
        # Something new each time, so polls find follows and watch has events to deliver.
        upstream.follow_many("alice", 1)
        upstream.follow_many("ok", 1)
        before = counts(upstream, hook)
        # The environment points at the stand-in too: nothing can fall back to the real API.
        run = run_main(*argv, env={"TIKTOK_FOLLOWING_WEBHOOK": "",
                                   "DUMPLINGAI_BASE_URL": upstream.url})
        command = next(a for a in argv if a in ("list", "poll", "watch", "outbox"))
        event(f"{command}: exit {run.code}")  # --hypothesis-show-statistics
        check(run, before, upstream, hook)
        if run.code == 2 and "-v" not in argv and "-vv" not in argv:
            # One line: the usage error or the refusal (--help aside, which exits 0).
            assert run.stderr.count("\n") == 1, run.stderr

    one()


def test_the_fuzzed_commands_do_reach_the_stand_in_and_the_webhook(upstream, hook, files):
    """The fuzz above would pass vacuously if every command were refused: these are the good
    paths its strategies start from."""
    before = counts(upstream, hook)
    assert run_main("--base-url", upstream.url, "list", "alice").code == 0
    state = ["--state-db", str(Path(files["state.db"]).with_name("good.db"))]
    assert run_main("--base-url", upstream.url, "poll", "alice", *state).code == 0
    assert run_main("--base-url", upstream.url, "watch", "--once", "ok", "--first-run",
                    "emitRecent", "--webhook", hook.url, *state).code == 0
    assert run_main("outbox", "list", "--all", *state).code == 0
    after = counts(upstream, hook)
    assert after[0] == before[0] + 3 and after[1] > before[1]
