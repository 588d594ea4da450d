"""The `invoke` protocol (CONTRACT 2): one JSON request in, one JSON response out.

This is how a runner that is not Python uses the connector. Whatever happens, the runner gets
a JSON object on stdout and an exit code (0 ok, 2 bad input or configuration and nothing was
sent, 1 anything else); a traceback never reaches it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .core.errors import ConnectorError, InputError

log = logging.getLogger("connector.invoke")

REQUEST_KEYS = {"operation", "inputs", "credentials", "platform", "state", "mode"}
#: A request is a form and a state (about 110 KB at most); anything far larger is a mistake.
MAX_REQUEST_BYTES = 8 * 1024 * 1024


def handle(raw: bytes | str, **run_options: Any) -> tuple[int, dict[str, Any]]:
    """Answer one raw request: (exit code, response object)."""
    secrets: list[str] = []
    try:
        request = parse_request(raw)
        creds = request.get("credentials")
        if isinstance(creds, dict) and isinstance(creds.get("apiKey"), str):
            secrets.append(creds["apiKey"])
        from .api import run

        result = run(
            request["operation"],
            request.get("inputs"),
            credentials=creds,
            platform=request.get("platform"),
            state=request.get("state"),
            # null means "not given", as for the other optional fields.
            mode=request["mode"] if request.get("mode") is not None else "live",
            **run_options,
        )
        return 0, {"items": result.items, "state": result.state, "meta": result.meta}
    except ConnectorError as err:
        body = err.to_dict()
        if err.partial is not None:
            body["partial"] = err.partial.to_dict()
        body["message"] = redact(body["message"], secrets)
        return err.exit_code, {"error": body}
    except Exception as err:  # the runner must get JSON, whatever broke
        log.debug("internal error", exc_info=True)
        message = redact(f"internal error ({type(err).__name__}): {err}", secrets)
        return 1, {"error": {"type": "internal_error", "message": message}}


def parse_request(raw: bytes | str) -> dict[str, Any]:
    if len(raw) > MAX_REQUEST_BYTES:
        raise InputError(f"the request is {len(raw)} bytes; at most {MAX_REQUEST_BYTES} are "
                         "accepted", field="request")
    try:
        request = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"stdin is not a JSON request ({exc}); send one object like "
                         '{"operation": "get_tiktok_user_following", "inputs": {"handle": '
                         '"name"}, "credentials": {"apiKey": "..."}}', field="request") from exc
    if not isinstance(request, dict):
        raise InputError("the request must be a JSON object", field="request")
    unknown = sorted(set(request) - REQUEST_KEYS)
    if unknown:
        raise InputError(f"unknown request field {unknown[0]!r}; the fields are: "
                         f"{', '.join(sorted(REQUEST_KEYS))}", field=unknown[0])
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


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def main(stdin: Any, stdout: Any, stderr: Any, **run_options: Any) -> int:
    raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
    code, response = handle(raw, **run_options)
    stdout.write(json.dumps(response, ensure_ascii=False) + "\n")
    stdout.flush()
    if "error" in response:
        # One line, whatever the message holds (server texts may carry newlines).
        line = " ".join(str(response["error"]["message"]).split())
        stderr.write(f"tiktok-following: {line}\n")
    return code
