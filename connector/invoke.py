"""The `invoke` protocol on stdin and stdout: one JSON request in, one JSON response out.

This is how a runner that is not Python uses the connector (an Execute Command node, a shell
step). The protocol itself lives in `connector.protocol`, shared with `serve`; this surface
only reads stdin, writes stdout and puts a one-line message on stderr.
"""

from __future__ import annotations

import json
from typing import Any

from .core.redact import one_line
from .protocol import MAX_REQUEST_BYTES, answer

__all__ = ["MAX_REQUEST_BYTES", "answer", "main"]


def main(stdin: Any, stdout: Any, stderr: Any, **run_options: Any) -> int:
    """Answer the request on `stdin` on `stdout`; the exit code (core/errors.py's)."""
    # A larger request is refused, never read whole.
    raw = getattr(stdin, "buffer", stdin).read(MAX_REQUEST_BYTES + 1)
    code, response = answer(raw, **run_options)
    stdout.write(json.dumps(response, ensure_ascii=False) + "\n")
    stdout.flush()
    if "error" in response:
        stderr.write(f"tiktok-following: {one_line(response['error']['message'])}\n")
    return code
