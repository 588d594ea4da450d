"""What the model tests share: a transport that hands each POST to a model of the upstream
instead of a socket, so the connector's own Client parses every answer as it would the real
API's."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any, Protocol

import urllib3

import connector
from connector.core.config import Credentials, Timeouts
from connector.core.transport import PostFailed, Reply


class Model(Protocol):
    def answer(self, body: dict[str, Any]) -> tuple[int, Any]:
        """(status, JSON payload or HTML text) for one request body, the payload wrapped in
        Truncated to cut the body short of its Content-Length; may raise a ConnectionError
        (any OSError, requests' too) to drop the connection."""


class Truncated:
    """A payload sent with a Content-Length longer than its body, as a connection that drops
    mid-answer leaves it."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload


class ModelTransport:
    """A Transport that answers each POST from the model; a dropped connection is a POST
    without an answer, as the HTTP transport reports one."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def post(self, url: str, body: bytes, headers: Mapping[str, str],
             timeouts: Timeouts) -> Reply:
        try:
            status, payload = self.model.answer(json.loads(body))
        except OSError as exc:
            raise PostFailed.of(exc) from None
        cut = isinstance(payload, Truncated)
        if cut:
            payload = payload.payload
        if isinstance(payload, str):
            data, kind = payload.encode(), "text/html"
        else:
            data, kind = json.dumps(payload).encode(), "application/json"
        answer = {"Content-Type": kind, "Content-Length": str(len(data))}
        if status in (429, 503):
            answer["Retry-After"] = "1"
        if cut:  # half the body its Content-Length promises: reading it breaks off
            data = data[: len(data) // 2]
        raw = urllib3.HTTPResponse(body=io.BytesIO(data), headers=answer, status=status,
                                   preload_content=False, enforce_content_length=True)
        return Reply(status, raw.headers, raw)


def model_client(model: Model) -> connector.Client:
    """The connector's Client, its requests going to `model`."""
    return connector.Client(Credentials(api_key="model-key", base_url="https://model.invalid"),
                            transport=ModelTransport(model))
