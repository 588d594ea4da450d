"""What counts as a secret, and how much of one is masked (issue 18, defects 6 and 7).

Any run of 8 or more characters of a secret is masked, not only the whole secret: a server
that quotes `key[2:]` or `key[:-2]` back must not put 24 of 26 characters on a channel. And a
URL's password is the secret, not its user or database name: a PostgreSQL user `tiktok` must not
turn the program's own name into `***-following`.
"""

from __future__ import annotations

import json
import logging
import pickle
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import connector
from connector.core.config import RetryPolicy
from connector.core.redact import FRAGMENT, MASK, Whole, redact, shown
from connector.core.secrets import Secrets
from connector.protocol import failure
from connector.standin import Fault, StandIn
from connector.watch import Webhook
from tests.support import ACTION, request, run_invoke, run_main

KEY = "sk_live_4f9a2c7e1b8d3f6a0c"  # 26 characters, as in the issue
#: What servers and proxies quote back: all but the first two, all but the last two, a middle.
PIECES = {"key[2:]": KEY[2:], "key[:-2]": KEY[:-2], "key[5:13]": KEY[5:13],
          "key[9:]": KEY[9:]}


def fragments(secret: str) -> list[str]:
    return [secret[i:i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1)]


def assert_no_fragment(*texts: str, secret: str = KEY) -> None:
    """No run of FRAGMENT characters of `secret` in any text."""
    for text in texts:
        shown = [f for f in fragments(secret) if f in text]
        assert not shown, f"{shown[0]!r} shown in ...{text[:300]!r}"


# --------------------------------------------------------------------------- redact itself


@pytest.mark.parametrize("piece", PIECES.values(), ids=PIECES.keys())
def test_a_quoted_piece_of_the_key_is_masked_whole(piece) -> None:
    text = f"401: key {piece} is revoked"
    assert redact(text, [KEY]) == f"401: key {MASK} is revoked"


def test_pieces_shorter_than_the_fragment_stay_and_short_secrets_go_whole() -> None:
    assert redact(f"id {KEY[:7]} ok", [KEY]) == f"id {KEY[:7]} ok"
    assert redact("user abcde logged", ["abcde"]) == f"user {MASK} logged"
    assert redact("an abc", ["abc"]) == "an abc"  # under MIN_SECRET: never replaced


def test_two_secrets_side_by_side_and_overlapping_pieces_make_one_mask() -> None:
    other = "pw-0f1e2d3c4b5a"
    assert redact(f"[{KEY}{other}]", [KEY, other]) == f"[{MASK}]"
    assert redact(f"<{KEY[:12]}{KEY[4:20]}>", [KEY]) == f"<{MASK}>"


def _oracle(text: str, secrets: list[str]) -> str:
    """Written apart from the code: mark every position inside an 8-character piece of a secret
    of 8 or more, mask each marked run, then replace the shorter secrets whole."""
    marked = [False] * len(text)
    for secret in (s for s in secrets if len(s) >= FRAGMENT):
        for piece in set(fragments(secret)):
            start = text.find(piece)
            while start != -1:
                marked[start:start + FRAGMENT] = [True] * FRAGMENT
                start = text.find(piece, start + 1)
    out, i = [], 0
    while i < len(text):
        if marked[i]:
            while i < len(text) and marked[i]:
                i += 1
            out.append(MASK)
        else:
            out.append(text[i])
            i += 1
    result = "".join(out)
    for secret in sorted((s for s in secrets if 4 <= len(s) < FRAGMENT), key=len, reverse=True):
        result = result.replace(secret, MASK)
    return result


#: Few letters, so pieces of secrets turn up by chance too; and characters of 2, 3 and 4 bytes
#: in UTF-8, since the first look is taken at the text's bytes.
ALPHABET = "abcx-é\u3000😀"


@st.composite
def text_with_pieces(draw: st.DrawFn) -> tuple[str, list[str]]:
    secrets = draw(st.lists(st.text(ALPHABET, min_size=3, max_size=24), min_size=1, max_size=3))
    text = draw(st.text(ALPHABET + " ", max_size=60))
    for _ in range(draw(st.integers(0, 3))):
        secret = draw(st.sampled_from(secrets))
        a = draw(st.integers(0, len(secret)))
        b = draw(st.integers(a, len(secret)))
        at = draw(st.integers(0, len(text)))
        text = text[:at] + secret[a:b] + text[at:]
    return text, secrets


@given(text_with_pieces())
def test_redact_masks_exactly_the_runs_of_8_or_more_of_a_secret(case) -> None:
    text, secrets = case
    assert redact(text, secrets) == _oracle(text, secrets)


# --------------------------------------------------------------------------- every channel


@pytest.fixture
def echoing() -> Iterator[StandIn]:
    """A stand-in that knows KEY (and one other key), to be told to quote a piece back."""
    with StandIn(api_keys=(KEY, "caller-key-0000")) as server:
        server.add_account("alice", 3)
        yield server


def echo(piece: str, status: int = 401) -> list[Fault]:
    return [Fault(status=status, body=json.dumps({"error": f"key {piece} is revoked"}))] * 3


@pytest.mark.parametrize("piece", PIECES.values(), ids=PIECES.keys())
def test_a_quoted_piece_never_reaches_python_invoke_or_the_cli(echoing, piece, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    creds = {"apiKey": KEY, "baseUrl": echoing.url}
    echoing.inject(*echo(piece))
    with pytest.raises(connector.ConnectorError) as caught:
        connector.run(ACTION, {"handle": "alice"}, credentials=creds,
                      retry=RetryPolicy.no_wait(1))
    assert "is revoked" in str(caught.value)
    echoing.inject(*echo(piece))
    invoked = run_invoke(request(ACTION, {"handle": "alice"}, creds))
    runs = []
    for verbosity in ([], ["-v"], ["-vv"]):
        echoing.inject(*echo(piece, status=400))
        runs.append(run_main(*verbosity, "--base-url", echoing.url, "list", "alice", key=KEY))
    assert invoked.code == 1 and "is revoked" in invoked.error["message"]
    assert [r.code for r in runs] == [1, 1, 1]
    assert_no_fragment(str(caught.value), repr(caught.value), caplog.text, invoked.output,
                       *(r.output for r in runs))


def test_a_quoted_piece_never_reaches_a_traceback_at_vv(echoing, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError(f"bug while holding {KEY[2:]} and {KEY[:-2]}")

    monkeypatch.setattr("connector.core.http.Client.fetch_page", broken)
    run = run_main("-vv", "--base-url", echoing.url, "list", "alice", key=KEY)
    assert run.code == 1 and "Traceback" in run.stderr and "RuntimeError" in run.stderr
    assert_no_fragment(run.output)


def test_a_quoted_piece_of_a_callers_key_never_reaches_a_protocol_traceback(caplog) -> None:
    try:
        raise RuntimeError(f"bug while holding {KEY[:-2]}")
    except RuntimeError as exc:
        with caplog.at_level(logging.DEBUG, logger="connector"):
            _, body = failure(exc, [KEY])
    assert "Traceback" in caplog.text
    assert_no_fragment(json.dumps(body), caplog.text)


@pytest.mark.parametrize("piece", PIECES.values(), ids=PIECES.keys())
def test_a_quoted_piece_never_reaches_a_serve_answer_or_its_log(echoing, piece, caplog,
                                                                 monkeypatch) -> None:
    pytest.importorskip("waitress")
    import requests

    from connector.serve.server import create_server

    for name in ("DUMPLINGAI_API_KEY", "DUMPLINGAI_BASE_URL", "TIKTOK_FOLLOWING_SERVE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.DEBUG)
    server = create_server(host="127.0.0.1", port=0, retry=RetryPolicy.no_wait(total=1),
                           poll_interval=0.05)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        answers = []
        for path, body in (("/v1/run", request(ACTION, {"handle": "alice"},
                                               {"baseUrl": echoing.url})),
                           ("/v1/auth/test", {"credentials": {"baseUrl": echoing.url}})):
            echoing.inject(*echo(piece))
            answers.append(requests.post(server.url + path, json=body, timeout=30,
                                         headers={"Authorization": f"Bearer {KEY}"}))
    finally:
        server.stop()
        thread.join(5)
    assert [a.status_code for a in answers] == [401, 401]
    assert_no_fragment(*(a.text for a in answers), caplog.text)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(("url", "secrets"), [
    ("postgresql://tiktok:s3cret-pw@db/tiktok", ["s3cret-pw"]),
    ("postgresql://postgres@db/postgres", []),
    ("postgresql://db/tiktok?user=tiktok&password=s3cret-pw", ["s3cret-pw"]),
    ("postgresql://u:p%40ss-word@db/x?sslpassword=key-pass-1", ["p%40ss-word", "p@ss-word",
                                                                 "key-pass-1"]),
    ("/var/lib/tiktok/state.db", []),
])
def test_a_database_urls_secrets_are_its_passwords_not_its_names(url, secrets) -> None:
    assert Secrets().database(url).values == secrets


def test_a_url_user_is_a_name_but_a_webhooks_user_is_part_of_its_credential() -> None:
    assert Secrets().url("https://tiktok:pw-1234@api.example/").values == ["pw-1234"]
    assert Secrets().url("https://tiktok@api.example/").values == []
    hook = Webhook("https://hooktoken-0a1b@hooks.example/catch")
    assert "hooktoken-0a1b" in hook.secrets


def test_a_webhook_path_is_masked_whole_and_its_words_stay_elsewhere() -> None:
    """A hook path is words its owner chose: masking any 8 of its characters would turn the
    program's own name into ***ing in every line."""
    hook = Webhook("https://n8n.example/webhook/tiktok-follows")
    line = "tiktok-following: POST /webhook/tiktok-follows failed; POST /webhook/tiktok-fo"
    assert redact(line, hook.secrets) == ("tiktok-following: POST *** failed; POST "
                                          "/webhook/tiktok-fo")
    # As it reaches the processes of watch --processes: pickled, still whole-only.
    sent = pickle.loads(pickle.dumps(hook.secrets))
    assert redact(line, sent) == redact(line, hook.secrets)
    assert Whole("abcdefghij") != "abcdefghij"  # so redact never mixes the two up
    assert redact("x abcdefghi", ["abcdefghij"]) == f"x {MASK}"
    assert redact("x abcdefghi", [Whole("abcdefghij")]) == "x abcdefghi"


def test_the_cli_keeps_its_name_with_a_readable_webhook_path(tmp_path) -> None:
    run = run_main("-v", "watch", "--once", "alice", "--webhook",
                   "http://127.0.0.1:9/webhook/tiktok-follows", "--state-db",
                   "postgresql://u:pw-Q7x9w2k4@127.0.0.1:1/db")
    assert run.code == 2
    assert run.stderr.splitlines()[-1].startswith(
        "tiktok-following: cannot use the state database postgresql://127.0.0.1:1/db: ")
    assert "tiktok-follows" not in run.output and "Q7x9" not in run.output


@pytest.mark.parametrize("user", ["tiktok", "postgres"])
@pytest.mark.parametrize("where", ["userinfo", "query"])
def test_a_database_user_name_is_shown_and_its_password_is_not(user, where, tmp_path) -> None:
    """`poll` on a PostgreSQL URL where nothing listens: the message keeps the program's name,
    the scheme and the database name, and shows no password."""
    password = "pw-Q7x9w2k4"
    url = (f"postgresql://{user}:{password}@127.0.0.1:1/{user}" if where == "userinfo" else
           f"postgresql://127.0.0.1:1/{user}?user={user}&password={password}")
    runs = [run_main(*verbosity, "poll", "alice", "--state-db", url)
            for verbosity in ([], ["-vv"])]
    for run in runs:
        assert run.code == 2, run.output
        assert run.stderr.startswith("tiktok-following: cannot use the state database "
                                     f"postgresql://127.0.0.1:1/{user}: ")
        assert "***" not in run.stderr
        assert password not in run.output and "Q7x9" not in run.output
    # The same URL from the environment, and a user that is not in the message at all.
    env_run = run_main("poll", "alice", env={"TIKTOK_FOLLOWING_STATE_DB": url})
    assert env_run.stderr.startswith("tiktok-following: cannot use the state database "
                                     f"postgresql://127.0.0.1:1/{user}: ")


def test_a_value_quoted_in_an_error_is_short_whatever_it_is() -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert shown("handle") == "'handle'"
    assert shown("x" * 100) == "'" + "x" * 56 + "..."  # 60 characters
    assert shown("x" * 100, 40) == "'" + "x" * 36 + "..."
    assert shown(10**5000) == "(a number of 16610 bits)"  # too long for Python to print
    assert shown(Unprintable()) == "a Unprintable"
    with pytest.raises(connector.InputError, match=r"unknown operation \(a number of 16610"):
        connector.run(10**5000, {})  # type: ignore[arg-type]
