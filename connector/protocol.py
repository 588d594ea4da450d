"""The runner protocol that `invoke` (stdin/stdout) and `serve` (HTTP) both speak.

One request object in, one response object out: `{"items", "state", "meta"}` on success,
`{"error": {"type", "message", "advice", ...}}` on failure. Whatever breaks, the answer is that
JSON and a code (0 ok, 2 bad input or configuration and nothing was sent, 1 anything else: the
error table's, core/errors.py); a traceback never reaches the runner, nor does a secret. The
surfaces only move bytes: they share this.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .core.config import API_KEY_ENV, MissingApiKey
from .core.errors import OK, ConnectorError, InputError, error_body, exit_code
from .core.redact import one_line, redact, shown
from .core.secrets import Secrets

log = logging.getLogger("connector.protocol")

REQUEST_KEYS = {"operation", "inputs", "credentials", "platform", "state", "mode"}
#: A request is a form and a state (the follow trigger's is at most 26 KB; the unfollow
#: trigger's grows with the list, about 1.2 MB at 5,000); anything far larger is a mistake.
MAX_REQUEST_BYTES = 8 * 1024 * 1024
#: A request as the hints show it: without a key, which goes where the surface says.
EXAMPLE_REQUEST = '{"operation": "get_tiktok_user_following", "inputs": {"handle": "name"}}'


class Wording(NamedTuple):
    """What a surface of the protocol says in its own words."""

    #: Where the request came from ("stdin", "the request body").
    source: str
    #: How to give an API key: ends "no API key: ...".
    give_key: str
    #: Where the key goes, shown after an example request.
    key_goes: str


#: `invoke`'s words: the README's advice, the key in the environment rather than the request
#: (a runner that logs the command would log it).
INVOKE = Wording(
    "stdin",
    f"set {API_KEY_ENV} in invoke's environment (credentials.apiKey in the request works "
    "too, but a runner that logs the command would log the key)",
    f"with the API key in the environment ({API_KEY_ENV}), not in the request")


def answer(raw: bytes | str | dict[str, Any], *, wording: Wording = INVOKE,
           api_key: str | None = None, **run_options: Any) -> tuple[int, dict[str, Any]]:
    """Answer one raw request, or one `parse_request` made already: (exit code, response).

    `wording` is the surface's, for what only it can say (where the request came from, where a
    key goes); `api_key`, when given, is the key the transport carried (a `serve` Bearer
    header) and takes the place of any in the request.
    """
    secrets = Secrets().environment().api_key(api_key)
    try:
        request = raw if isinstance(raw, dict) else parse_request(raw, wording=wording)
        secrets.credentials(request.get("credentials"))
        if api_key:
            request["credentials"] = {**(request.get("credentials") or {}), "apiKey": api_key}
        from .api import run

        result = run(
            request["operation"],
            request.get("inputs"),
            credentials=request.get("credentials"),
            platform=request.get("platform"),
            state=request.get("state"),
            # null means "not given", as for the other optional fields.
            mode=request["mode"] if request.get("mode") is not None else "live",
            **run_options,
        )
        return OK, {"items": result.items, "state": result.state, "meta": result.meta}
    except Exception as err:  # the runner must get JSON, whatever broke
        return failure(err, secrets, wording)


def answer_auth_test(credentials: Mapping[str, Any] | None = None, *,
                     wording: Wording = INVOKE, **options: Any) -> tuple[int, dict[str, Any]]:
    """Answer a connection test: (exit code, `{"ok": true, ...}` or `{"error": ...}`)."""
    secrets = Secrets().environment().credentials(credentials)
    try:
        from .api import check_credentials

        return OK, check_credentials(credentials, **options)
    except Exception as err:
        return failure(err, secrets, wording)


def failure(err: BaseException, secrets: Iterable[str], wording: Wording = INVOKE
            ) -> tuple[int, dict[str, Any]]:
    """The error response for any exception: typed for ours, `internal_error` for a bug;
    one line, secrets removed, in the surface's words where it has its own."""
    if isinstance(err, MissingApiKey):
        err = MissingApiKey(wording.give_key)
    if isinstance(err, ConnectorError):
        body = err.to_dict()
        if err.partial is not None:
            body["partial"] = err.partial.to_dict()
        body["message"] = redact(one_line(body["message"]), secrets)
        return exit_code(err), {"error": body}
    message = redact(one_line(f"internal error ({type(err).__name__}): {err}"), secrets)
    # The traceback too goes through this request's secrets: a log formatter knows only the
    # process's own (a serve caller's Bearer key is not among them).
    if log.isEnabledFor(logging.DEBUG):
        trace = "".join(traceback.format_exception(err))
        log.debug("%s\n%s", message, redact(trace, secrets))
    return exit_code(err), {"error": error_body("internal_error", message)}


def parse_request(raw: bytes | str, *, wording: Wording = INVOKE) -> dict[str, Any]:
    """The request object from raw JSON, checked for shape (not content: `run` does that)."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise InputError(f"the request is {len(raw)} bytes; at most {MAX_REQUEST_BYTES} are "
                         "accepted", field="request")
    try:
        request = json.loads(raw)
    except RecursionError:
        raise InputError("the request is nested too deeply to be a connector request; send "
                         "one flat object", field="request") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{wording.source} is not a JSON request ({one_line(str(exc), 120)}); "
                         f"send one object like {EXAMPLE_REQUEST}, {wording.key_goes}",
                         field="request") from None
    if not isinstance(request, dict):
        raise InputError("the request must be a JSON object", field="request")
    unknown = sorted(set(request) - REQUEST_KEYS)
    if unknown:
        raise InputError(f"unknown request field {shown(unknown[0])}; the fields "
                         f"are: {', '.join(sorted(REQUEST_KEYS))}", field=unknown[0][:60])
    if "operation" not in request:
        from .operations import OPERATIONS

        raise InputError(f"operation is required (one of {', '.join(OPERATIONS)})",
                         field="operation")
    for key, must in (("inputs", "an object"), ("credentials", "an object"),
                      ("state", "an object (what the previous call returned) or null")):
        if request.get(key) is not None and not isinstance(request[key], dict):
            raise InputError(f"{key} must be {must}", field=key)
    return request
