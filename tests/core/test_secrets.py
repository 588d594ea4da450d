"""What counts as a secret is decided in one place, `connector.core.secrets.Secrets`, and every
surface asks it (issue 19). How a secret is masked is test_redact.py's subject."""

from __future__ import annotations

import ast
import io
import json
from typing import Any

import pytest

from connector import invoke
from connector.core.redact import MASK, Whole
from connector.core.secrets import Secrets
from connector.serve.app import make_app
from tests.support import ROOT, TRIGGER, run_main

CANARY = "canary-9f8e7d6c5b4a"


# ---------------------------------------------------------------- the kinds


def test_an_api_key_counts_however_it_is_given() -> None:
    assert Secrets().api_key("  sk_live_0123  ").values == ["sk_live_0123"]
    assert Secrets().api_key(None).api_key(42).api_key("   ").values == []
    assert Secrets().credentials({"apiKey": "sk_1234", "baseUrl": "https://u:p4ss@h/"}
                                 ).values == ["sk_1234", "p4ss"]
    assert Secrets().authorization("Bearer sk_5678 ").values == ["sk_5678"]
    assert Secrets().authorization(None).authorization("Bearer").values == []


def test_a_urls_password_counts_and_its_user_is_a_name() -> None:
    assert Secrets().url("https://tiktok:p%40ss-1@api.example/").values == ["p%40ss-1",
                                                                            "p@ss-1"]
    assert Secrets().url("https://tiktok@api.example/").values == []
    assert Secrets().url("http://[::1").values == []  # not a URL: nothing, no error


def test_a_webhooks_userinfo_path_query_and_headers_count() -> None:
    found = Secrets().webhook(" https://tok:en@hooks.example/catch/123?k=v ",
                              ["header-value-1 "]).values
    assert [str(s) for s in found] == ["en", "tok", "header-value-1", "/catch/123?k=v"]
    assert type(found[-1]) is Whole  # masked only whole: its words are the owner's
    assert Secrets().webhook("https://hooks.example/").values == []


@pytest.mark.parametrize(("target", "found"), [
    ("postgresql://tiktok:s3cret-pw@db/tiktok", ["s3cret-pw"]),
    ("postgres://db/x?user=u&password=pw-1234&sslpassword=key-pass-1", ["pw-1234",
                                                                        "key-pass-1"]),
    ("/var/lib/tiktok/state.db", []),
    (None, []),
])
def test_a_databases_passwords_count_and_its_names_do_not(target, found) -> None:
    assert Secrets().database(target).values == found


def test_the_environment_brings_every_secret_it_holds() -> None:
    env = {"DUMPLINGAI_API_KEY": " sk_env_0123 ",
           "DUMPLINGAI_BASE_URL": "https://u:base-pw@h/",
           "TIKTOK_FOLLOWING_STATE_DB": "postgresql://u:db-pw@h/d",
           "TIKTOK_FOLLOWING_SERVE_TOKEN": "serve-token-0123456789",
           "HOME": "/root"}
    assert Secrets().environment(env).values == ["sk_env_0123", "base-pw", "db-pw",
                                                 "serve-token-0123456789"]


def test_scrub_masks_what_was_collected() -> None:
    secrets = Secrets("tok-0123456789").api_key("sk_live_4f9a2c7e")
    assert secrets.scrub("a tok-0123456789 and sk_live_4f9a2c7e") == f"a {MASK} and {MASK}"
    assert list(secrets) == secrets.values and "tok" not in repr(secrets)


# ---------------------------------------------------------------- one home, every surface


def test_no_other_module_decides_what_a_secret_is() -> None:
    """A URL's userinfo is read, and a Whole built, in core/secrets.py only."""
    for path in sorted((ROOT / "connector").rglob("*.py")):
        if path.relative_to(ROOT).as_posix() == "connector/core/secrets.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("password", "username"), (path, node.lineno)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Whole":
                raise AssertionError(f"{path}:{node.lineno} builds a Whole")
            if isinstance(node, ast.FunctionDef):
                assert not node.name.endswith("_secrets"), (path, node.name)


@pytest.fixture
def canary_secret(monkeypatch) -> None:
    """The collector knows one more secret in the environment: every surface must mask it."""
    environment = Secrets.environment

    def with_canary(self: Secrets, *args: Any, **kwargs: Any) -> Secrets:
        return environment(self, *args, **kwargs).add(CANARY)

    monkeypatch.setattr(Secrets, "environment", with_canary)

    def leaking(*args: Any, **kwargs: Any) -> Any:
        from connector.core.errors import ServerError

        raise ServerError(f"upstream quoted {CANARY} back", status=500)

    monkeypatch.setattr("connector.api.run", leaking)
    monkeypatch.setattr("connector.api.check_credentials", leaking)


def test_invoke_serve_and_the_cli_mask_what_the_collector_knows(canary_secret) -> None:
    request = json.dumps({"operation": TRIGGER, "inputs": {"handle": "alice"}}).encode()
    out, err = io.StringIO(), io.StringIO()
    assert invoke.main(io.BytesIO(request), out, err) == 1
    seen: list[str] = []
    served = b"".join(make_app()({"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/run",
                                  "CONTENT_LENGTH": str(len(request)),
                                  "wsgi.input": io.BytesIO(request)},
                                 lambda status, headers: seen.append(status))).decode()
    cli = run_main("auth", "test")
    texts = {"invoke": out.getvalue() + err.getvalue(), "serve": served,
             "cli": cli.stdout + cli.stderr}
    for surface, text in texts.items():
        assert "upstream quoted" in text and CANARY not in text, surface
        assert f"quoted {MASK} back" in text, surface
