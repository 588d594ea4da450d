"""The WSGI application behind `serve`: routes, the shared token, access log.

It moves bytes and headers only; answers come from `connector.protocol`, the same functions
`invoke` uses, so the two surfaces cannot disagree. The key a request carries is never logged:
the access log names the method, path, status, operation, error type and time, nothing else.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from ..core import manifests
from ..core.config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    PRODUCTION_URL,
    env_api_key,
    given_api_key,
)
from ..core.errors import ConfigurationError, InputError, error_body, http_status
from ..core.secrets import Secrets
from ..protocol import MAX_REQUEST_BYTES, Wording, answer, answer_auth_test, failure, parse_request
from .limits import UpstreamSlots, same_origin

log = logging.getLogger("connector.serve")

#: The shared token callers from other hosts must send, when the service has one.
TOKEN_HEADER = "X-Connector-Token"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
#: Reason phrases where Python's differ from RFC 9110 (3.10 says "Request Entity Too Large").
_REASONS = {413: "Content Too Large"}
#: Seconds a caller refused for want of a free upstream slot is asked to wait.
BUSY_RETRY_AFTER = 5
#: The service's words: a caller gives its key in a header (or the service has its own).
SERVE = Wording(
    "the request body",
    "send Authorization: Bearer <DumplingAI API key>, or start the service with "
    f"{API_KEY_ENV} set to use its own",
    "with the API key in an Authorization: Bearer <key> header, not in the body")


def status_for(response: dict[str, Any]) -> int:
    """The HTTP status of a protocol response: 200, or its error type's (core/errors.py)."""
    error = response.get("error")
    return 200 if error is None else http_status(error)


def make_app(*, token: str | None = None, max_body: int = MAX_REQUEST_BYTES,
             slots: UpstreamSlots | None = None, **run_options: Any
             ) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app. With `token`, every /v1 route wants it in the X-Connector-Token header.
    With `slots`, requests that call an upstream take one of them, or are refused with 503
    (serve/limits.py). `run_options` go to `connector.run` (retry, timeouts)."""
    routes: dict[tuple[str, str], Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]] = {
        ("GET", "/healthz"): lambda env: (200, {"ok": True, "version": str(
            manifests.load(manifests.CONNECTOR_KEY).get("version", ""))}),
        ("GET", "/v1/manifests"): lambda env: (200, manifests.load_all()),
        ("POST", "/v1/run"): lambda env: _run(env, max_body, run_options, slots),
        ("POST", "/v1/auth/test"): lambda env: _auth_test(env, max_body, run_options, slots),
    }

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        try:
            status, body = _route(environ, method, path, routes, token)
        except Exception as err:  # a refusal, or a bug: JSON either way, without a secret
            secrets = Secrets().environment().authorization(environ.get("HTTP_AUTHORIZATION"))
            _, body = failure(err, secrets.add(environ.get("HTTP_X_CONNECTOR_TOKEN"), token),
                              SERVE)
            status = status_for(body)
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [("Content-Type", "application/json; charset=utf-8"),
                   ("Content-Length", str(len(payload))), ("Cache-Control", "no-store")]
        if status == 405:
            headers.append(("Allow", ", ".join(m for m, p in routes if p == path)))
        if status == 503:
            headers.append(("Retry-After", str(BUSY_RETRY_AFTER)))
        start_response(f"{status} {_REASONS.get(status) or HTTPStatus(status).phrase}", headers)
        error = body.get("error") if isinstance(body, dict) else None
        # Unknown paths are not logged as sent: a hook path can be a secret someone mistyped.
        known = any(p == path for _, p in routes) or path.startswith("/v1/manifests/")
        log.info("%s %s %d%s %.0fms", method, path if known else "(other)",
                 status, f" {error['type']}" if error else "",
                 (time.perf_counter() - started) * 1000)
        return [payload]

    return app


def _route(environ: dict[str, Any], method: str, path: str, routes: dict[Any, Any],
           token: str | None) -> tuple[int, dict[str, Any]]:
    if path.startswith("/v1/") and token is not None:
        given = environ.get("HTTP_X_CONNECTOR_TOKEN", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return _error("unauthorized", f"this service wants its shared token in the "
                          f"{TOKEN_HEADER} header", field=TOKEN_HEADER)
    if path.startswith("/v1/manifests/") and method == "GET":
        key = path.removeprefix("/v1/manifests/")
        try:
            return 200, manifests.load(key)
        except InputError:
            # Not the endpoint's "not_found", which says a following list is private.
            return _error("unknown_route", f"no manifest {key[:60]!r}; known: "
                          f"{', '.join(manifests.load_all())}")
    handler = routes.get((method, path))
    if handler is not None:
        return handler(environ)
    if any(p == path for _, p in routes):
        return _error("method_not_allowed", f"{path} does not take {method[:10]}")
    # Its own type: "not_found" is the endpoint's private or unknown list, and a client with a
    # wrong service URL must not be told that the list is private.
    return _error("unknown_route", "no such route; the routes are "
                  + ", ".join(f"{m} {p}" for m, p in routes))


def _run(environ: dict[str, Any], max_body: int, options: dict[str, Any],
         slots: UpstreamSlots | None) -> tuple[int, dict[str, Any]]:
    raw = _body(environ, max_body)
    key = _bearer(environ)
    request = parse_request(raw, wording=SERVE)
    creds = request.get("credentials") or {}
    _refuse_own_key_elsewhere(creds, key)
    return _bounded(slots, creds.get("baseUrl"),
                    lambda: answer(request, wording=SERVE, api_key=key, **options)[1])


def _auth_test(environ: dict[str, Any], max_body: int, options: dict[str, Any],
               slots: UpstreamSlots | None) -> tuple[int, dict[str, Any]]:
    """Body (optional): {"credentials": {"baseUrl"}, "handle", "platform"}."""
    raw = _body(environ, max_body)
    try:
        request = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        raise InputError("the request body is not JSON; send {} or nothing",
                         field="request") from None
    if not isinstance(request, dict) or set(request) - {"credentials", "handle", "platform"}:
        raise InputError("the body must be an object with credentials, handle and "
                         "platform, all optional", field="request")
    creds = request.get("credentials") or {}
    if not isinstance(creds, dict):
        raise InputError("credentials must be an object", field="credentials")
    key = _bearer(environ)
    _refuse_own_key_elsewhere(creds, key)
    if key is not None:
        creds = {**creds, "apiKey": key}
    options = {k: v for k, v in options.items() if k in ("retry", "timeouts")}
    return _bounded(slots, creds.get("baseUrl"),
                    lambda: answer_auth_test(creds, handle=request.get("handle"),
                                             platform=request.get("platform"), wording=SERVE,
                                             **options)[1])


def _bounded(slots: UpstreamSlots | None, base_url: Any,
             call: Callable[[], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """`call` (which may call an upstream) in a slot of `slots`, or 503 when none is free."""
    own = not (isinstance(base_url, str) and base_url.strip()) or same_origin(
        base_url, os.environ.get(BASE_URL_ENV) or PRODUCTION_URL)
    if slots is not None and not slots.acquire(own):
        which = "this service's upstream" if own else "base URLs callers choose"
        return _error("busy", f"every slot for requests to {which} is taken (at most "
                      f"{slots.slots if own else slots.named} at once); try again in a few "
                      "seconds")
    try:
        response = call()
    finally:
        if slots is not None:
            slots.release(own)
    return status_for(response), response


def _body(environ: dict[str, Any], max_body: int) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0:
        raise InputError("Content-Length is not a number", field="request")
    if length > max_body:
        err = InputError(f"the request is {length} bytes; at most {max_body} are accepted",
                         field="request")
        err.code = "too_large"
        raise err
    return environ["wsgi.input"].read(length) if length else b""


def _bearer(environ: dict[str, Any]) -> str | None:
    """The DumplingAI key in `Authorization: Bearer KEY`, checked as every key a request
    carries is (`given_api_key`), or None when there is no Authorization header. A header that
    is there but empty, or whose key is blank, is refused by name, never taken for "no key"."""
    header = environ.get("HTTP_AUTHORIZATION")
    if header is None:
        return None
    scheme, _, key = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise InputError("the Authorization header must be 'Bearer <DumplingAI API key>'; "
                         "leave it out to use the service's own key", field="Authorization")
    # WSGI hands headers over as Latin-1: a UTF-8 "\u3000" is judged as what it is.
    with contextlib.suppress(UnicodeError):
        key = key.encode("latin-1").decode("utf-8")
    return given_api_key(key, field="Authorization")


def _refuse_own_key_elsewhere(creds: dict[str, Any], key: str | None) -> None:
    """With no key in the request's `creds` or its header (`key`), the service's own key is
    used; then the request may not pick where it goes, or any caller could send the service's
    key to a host of its choice. The body's key is judged by `given_api_key` too: a blank one
    is an error here, not a request without a key."""
    carried = given_api_key(creds.get("apiKey")) or key
    if carried is None and creds.get("baseUrl") and env_api_key() is not None:
        raise ConfigurationError(f"baseUrl can only be chosen together with a key in the "
                                 f"Authorization header; without one the service uses its own "
                                 f"key and {BASE_URL_ENV}", field="baseUrl")


def _error(kind: str, message: str, **details: Any) -> tuple[int, dict[str, Any]]:
    """A refusal of the service itself: its status and body, both from the error table."""
    body = {"error": error_body(kind, message, **details)}
    return status_for(body), body
