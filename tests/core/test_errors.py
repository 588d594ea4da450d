"""One table of errors (core/errors.py), and every surface derived from it: the exit code of
`invoke` and the CLI, the HTTP status of `serve`, the `advice` of every error body, the
README's table, the statuses the docs name and the types the n8n node reads (issue 19)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from urllib3 import HTTPHeaderDict

from connector import invoke
from connector.core import errors
from connector.core.errors import (
    ERRORS,
    ConnectorError,
    ErrorType,
    RateLimitError,
    error_for_status,
    errors_table,
)
from connector.core.http import RateLimit
from connector.serve.app import make_app
from tests.support import ROOT, TRIGGER, run_main


def subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]


#: Every class of the tree, by its type (not a subclass kept beside what raises it, such as
#: config.MissingApiKey: a ConfigurationError whose words each surface chooses).
CLASSES = {cls.code: cls for cls in subclasses(ConnectorError)
           if cls.__module__ == errors.__name__} | {"connector_error": ConnectorError}


def example(cls: type[ConnectorError]) -> ConnectorError:
    if issubclass(cls, errors.ApiError):
        return cls("the server said so", status=418)
    if issubclass(cls, errors.InputError):
        return cls("handle is wrong", field="handle")
    return cls("it went wrong")


def call_app(app: Any, method: str, path: str, body: bytes = b"",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    seen: list[str] = []
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body), **(headers or {})}
    payload = b"".join(app(environ, lambda status, _headers: seen.append(status)))
    return int(seen[0].split()[0]), json.loads(payload)


# ---------------------------------------------------------------- the table


def test_every_class_of_the_tree_has_its_row_and_takes_its_rules_from_it() -> None:
    assert set(CLASSES) <= set(ERRORS)
    assert {"StateConflict", "DatabaseUnavailable"} <= {c.__name__ for c in CLASSES.values()}
    for code, cls in CLASSES.items():
        row = ERRORS[code]
        assert (cls.transient, cls.sent_nothing) == (row.transient, row.sent_nothing), code
        assert row.advice and row.when, code


def test_a_class_without_a_row_is_refused_at_import() -> None:
    with pytest.raises(TypeError, match="no row in ERRORS"):
        type("Mistyped", (ConnectorError,), {"code": "mistyped"})


def test_the_exit_code_is_derived_from_sent_nothing() -> None:
    assert ErrorType("x", 400, "w", "a", sent_nothing=True).exit_code == 2
    assert ErrorType("x", 400, "w", "a").exit_code == 1
    assert {t for t, row in ERRORS.items() if row.exit_code == 2} == {
        "input_error", "configuration_error", "state_error", "unauthorized", "unknown_route",
        "method_not_allowed", "too_large", "busy"}


def test_the_services_own_refusals_have_rows_of_their_own() -> None:
    for code in ("unauthorized", "too_large", "method_not_allowed", "unknown_route", "busy"):
        assert ERRORS[code].serve_only and code not in CLASSES, code
    assert "private" not in ERRORS["unknown_route"].advice
    assert "private" in ERRORS["not_found"].advice


def test_the_endpoints_statuses_map_to_the_documented_classes() -> None:
    assert {s: cls.__name__ for s, cls in errors.STATUS_ERRORS.items()} == {
        400: "BadRequestError", 401: "AuthenticationError", 403: "InsufficientCreditsError",
        404: "NotFoundError", 429: "RateLimitError", 500: "ServerError",
        502: "UpstreamError", 503: "RateLimitError"}


# ---------------------------------------------------------------- the surfaces derive from it


@pytest.mark.parametrize("code", sorted(CLASSES))
def test_invoke_and_serve_answer_each_error_as_the_table_says(code: str, monkeypatch) -> None:
    err = example(CLASSES[code])
    row = ERRORS[code]

    def failing_run(*args: Any, **kwargs: Any) -> Any:
        raise err

    monkeypatch.setattr("connector.api.run", failing_run)
    request = json.dumps({"operation": TRIGGER, "inputs": {"handle": "alice"}}).encode()
    stdout, stderr = io.StringIO(), io.StringIO()
    exit_ = invoke.main(io.BytesIO(request), stdout, stderr)
    invoked = json.loads(stdout.getvalue())["error"]
    status, served = call_app(make_app(), "POST", "/v1/run", request,
                              {"HTTP_AUTHORIZATION": "Bearer some-key-0123"})
    assert (exit_, invoked["type"], invoked["advice"]) == (row.exit_code, code, row.advice)
    field_status = row.field_status.get(invoked.get("field"), row.http_status)
    assert (status, served["error"]) == (field_status, invoked)


@pytest.mark.parametrize("code", sorted(CLASSES))
def test_the_cli_exits_with_each_errors_exit_code(code: str, monkeypatch) -> None:
    err = example(CLASSES[code])

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise err

    monkeypatch.setattr("connector.api.check_credentials", failing)
    run = run_main("auth", "test")
    assert run.code == ERRORS[code].exit_code
    assert run.stderr.strip() == f"tiktok-following: {err.message}"


def test_a_bug_is_an_internal_error_as_the_table_says(monkeypatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr("connector.api.run", broken)
    code, body = invoke.answer(json.dumps({"operation": TRIGGER, "inputs": {"handle": "a"}}))
    row = ERRORS["internal_error"]
    assert (code, body["error"]["type"], body["error"]["advice"]) == (
        row.exit_code, "internal_error", row.advice)
    status, served = call_app(make_app(), "POST", "/v1/run",
                              json.dumps({"operation": TRIGGER, "inputs": {}}).encode(),
                              {"HTTP_AUTHORIZATION": "Bearer some-key-0123"})
    assert status == row.http_status == 500 and served["error"]["type"] == "internal_error"


def test_bad_input_through_invoke_says_what_to_do_and_exits_2() -> None:
    code, body = invoke.answer(json.dumps({"operation": TRIGGER,
                                           "inputs": {"handle": "stool presidente"}}))
    assert code == 2
    assert body["error"]["type"] == "input_error" and body["error"]["field"] == "handle"
    assert body["error"]["advice"] == ERRORS["input_error"].advice


@pytest.mark.parametrize(("method", "path", "headers", "code"), [
    ("GET", "/nowhere", {}, "unknown_route"),
    ("POST", "/api/v1/run", {}, "unknown_route"),
    ("GET", "/v1/manifests/nope", {}, "unknown_route"),
    ("GET", "/v1/run", {}, "method_not_allowed"),
    ("GET", "/v1/manifests", {"token": "a-token-0123456789abcdef"}, "unauthorized"),
    ("POST", "/v1/run", {"max_body": 10}, "too_large"),
])
def test_the_services_refusals_answer_as_the_table_says(method, path, headers, code) -> None:
    app = make_app(**headers)
    status, body = call_app(app, method, path, b"x" * 20 if method == "POST" else b"")
    row = ERRORS[code]
    assert (status, body["error"]["type"], body["error"]["advice"]) == (
        row.http_status, code, row.advice)
    # A wrong path is never told that a following list is private.
    assert "private" not in json.dumps(body)


def test_busy_is_503_with_the_tables_advice() -> None:
    from connector.serve.limits import UpstreamSlots

    slots = UpstreamSlots(1, waiting=0, wait_s=0)
    assert slots.acquire(True)
    # A well-formed request: one refused for its shape is 400 before it asks for a slot.
    request = b'{"operation": "get_tiktok_user_following", "inputs": {"handle": "alice"}}'
    status, body = call_app(make_app(slots=slots), "POST", "/v1/run", request,
                            {"HTTP_AUTHORIZATION": "Bearer some-key-0123"})
    assert (status, body["error"]["type"]) == (503, "busy")
    assert body["error"]["advice"] == ERRORS["busy"].advice


# ---------------------------------------------------------------- docs and the n8n node


def test_the_readme_table_is_the_one_made_from_the_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- errors table:")
    start = readme.index("\n", start) + 1
    end = readme.index("<!-- end of errors table -->")
    assert readme[start:end] == errors_table(), (
        "README's error table is stale: paste the output of `python -m connector.core.errors`")


def test_the_readme_table_lists_every_type_with_its_exit_code_and_status() -> None:
    rows = [line.split(" | ") for line in errors_table().splitlines()[2:]]
    assert [r[0].strip("| `") for r in rows] == list(ERRORS)
    for cells in rows:
        row = ERRORS[cells[0].strip("| `")]
        assert cells[2] == ("-" if row.serve_only else str(row.exit_code))
        assert cells[3].startswith(str(row.http_status))


def test_every_type_and_status_the_docs_pair_is_the_tables() -> None:
    """"`unknown_route` (404" or "404 with type `unknown_route`" in the docs must be what the
    code answers."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    pairs = []
    for path in docs:
        text = " ".join(path.read_text(encoding="utf-8").split())
        pairs += [(t, int(s), path.name) for t, s in re.findall(r"`(\w+)` \((\d{3})\b", text)]
        pairs += [(t, int(s), path.name) for s, t in
                  re.findall(r"\b(\d{3}) with type `(\w+)`", text)]
    known = [(t, s, name) for t, s, name in pairs if t in ERRORS]
    assert len(known) >= 4, pairs  # the statuses paragraph of docs/n8n.md names several
    for code, status, name in known:
        assert status == ERRORS[code].http_status, (name, code, status)


def test_every_error_type_the_n8n_node_reads_is_in_the_table() -> None:
    n8n = ROOT / "integrations" / "n8n"
    sources = [*sorted((n8n / "nodes").rglob("*.ts")), n8n / "scripts" / "generate.mjs"]
    found = set()
    for path in sources:
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r"type === '(\w+)'", text))
        found |= set(re.findall(r"key: 'error\.type', value: '(\w+)'", text))
    assert {"unauthorized", "unknown_route", "authentication_error"} <= found
    assert found <= set(ERRORS)


def test_the_n8n_node_keeps_no_copy_of_the_advice() -> None:
    n8n = ROOT / "integrations" / "n8n"
    text = "\n".join(p.read_text(encoding="utf-8") for p in
                     [*(n8n / "nodes").rglob("*.ts"), n8n / "scripts" / "generate.mjs"])
    for row in ERRORS.values():
        assert row.advice not in text, row.type


def test_the_surfaces_write_no_status_or_exit_code_per_type() -> None:
    """No other module maps an error type to a status or an exit code of its own."""
    for path in sorted(Path(ROOT / "connector").rglob("*.py")):
        if path.name == "errors.py":
            continue
        text = path.read_text(encoding="utf-8")
        for code in ERRORS:
            assert not re.search(rf'"{code}":\s*\d', text), (path, code)
        assert "return 401" not in text and "return 404" not in text, path


def test_an_api_errors_headers_are_read_whatever_the_case_the_server_sent() -> None:
    # HTTP/2 servers and many proxies send header names in lower case.
    sent = HTTPHeaderDict({"retry-after": "7", "x-ratelimit-limit": "60",
                           "x-ratelimit-remaining": "0"})
    err = error_for_status(429, "Too many requests", sent)
    assert isinstance(err, RateLimitError)
    assert err.retry_after == 7.0
    assert RateLimit.from_headers(err.headers) == RateLimit(60, 0)
    assert err.headers["Retry-After"] == "7"
