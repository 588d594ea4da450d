"""The `invoke` protocol: one JSON request in, one JSON response out.

This is how a runner that is not Python uses the connector. Whatever happens, the runner gets
a JSON object on stdout and an exit code (0 ok, 2 bad input or configuration and nothing was
sent, 1 anything else); a traceback never reaches it, nor does a secret.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from .core.config import API_KEY_ENV, BASE_URL_ENV
from .core.errors import ConnectorError, InputError
from .core.redact import one_line, redact, url_secrets

log = logging.getLogger("connector.invoke")

REQUEST_KEYS = {"operation", "inputs", "credentials", "platform", "state", "mode"}
#: A request is a form and a state (about 110 KB at most); anything far larger is a mistake.
MAX_REQUEST_BYTES = 8 * 1024 * 1024
OK, FAILED, NOTHING_SENT = 0, 1, 2


def exit_code(err: BaseException) -> int:
    """2 when the error came before anything was sent (fix the input), else 1."""
    return NOTHING_SENT if getattr(err, "sent_nothing", False) else FAILED


def request_secrets(request: Any = None) -> list[str]:
    """Every secret a request (or the environment) brings: keys and URL passwords."""
    found = [os.environ.get(API_KEY_ENV, ""), *url_secrets(os.environ.get(BASE_URL_ENV, ""))]
    creds = request.get("credentials") if isinstance(request, dict) else None
    if isinstance(creds, dict):
        if isinstance(creds.get("apiKey"), str):
            found.append(creds["apiKey"].strip())
        if isinstance(creds.get("baseUrl"), str):
            found += url_secrets(creds["baseUrl"])
    return [s for s in found if s]


def answer(raw: bytes | str, **run_options: Any) -> tuple[int, dict[str, Any]]:
    """Answer one raw request: (exit code, response object)."""
    secrets = request_secrets()
    try:
        request = parse_request(raw)
        secrets = request_secrets(request)
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
    except ConnectorError as err:
        body = err.to_dict()
        if err.partial is not None:
            body["partial"] = err.partial.to_dict()
        body["message"] = redact(one_line(body["message"]), secrets)
        return exit_code(err), {"error": body}
    except Exception as err:  # the runner must get JSON, whatever broke
        log.debug("internal error", exc_info=True)
        message = redact(one_line(f"internal error ({type(err).__name__}): {err}"), secrets)
        return FAILED, {"error": {"type": "internal_error", "message": message}}


def parse_request(raw: bytes | str) -> dict[str, Any]:
    if len(raw) > MAX_REQUEST_BYTES:
        raise InputError(f"the request is {len(raw)} bytes; at most {MAX_REQUEST_BYTES} are "
                         "accepted", field="request")
    try:
        request = json.loads(raw)
    except RecursionError:
        raise InputError("the request is nested too deeply to be a connector request; send "
                         "one flat object", field="request") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"stdin is not a JSON request ({one_line(str(exc), 120)}); send one "
                         'object like {"operation": "get_tiktok_user_following", "inputs": '
                         '{"handle": "name"}, "credentials": {"apiKey": "..."}}',
                         field="request") from None
    if not isinstance(request, dict):
        raise InputError("the request must be a JSON object", field="request")
    unknown = sorted(set(request) - REQUEST_KEYS)
    if unknown:
        raise InputError(f"unknown request field {one_line(repr(unknown[0]), 60)}; the fields "
                         f"are: {', '.join(sorted(REQUEST_KEYS))}", field=unknown[0][:60])
    if "operation" not in request:
        raise InputError("operation is required (get_tiktok_user_following or "
                         "new_account_followed)", field="operation")
    for key in ("inputs", "credentials"):
        if request.get(key) is not None and not isinstance(request[key], dict):
            raise InputError(f"{key} must be an object", field=key)
    if request.get("state") is not None and not isinstance(request["state"], dict):
        raise InputError("state must be an object (what the previous call returned) or null",
                         field="state")
    return request


def main(stdin: Any, stdout: Any, stderr: Any, **run_options: Any) -> int:
    source = stdin.buffer if hasattr(stdin, "buffer") else stdin
    raw = source.read(MAX_REQUEST_BYTES + 1)  # a larger request is refused, never read whole
    code, response = answer(raw, **run_options)
    stdout.write(json.dumps(response, ensure_ascii=False) + "\n")
    stdout.flush()
    if "error" in response:
        stderr.write(f"tiktok-following: {one_line(response['error']['message'])}\n")
    return code
