"""What the model tests share: a transport that hands each POST to a model of the upstream
instead of a socket, so the connector's own Client parses every answer as it would the real
API's."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

import connector
from connector.core.config import Credentials, Timeouts
from connector.core.transport import PostFailed, Reply


class Model(Protocol):
    def answer(self, body: dict[str, Any]) -> tuple[int, Any]:
        """(status, JSON payload or HTML text) for one request body; may raise a
        ConnectionError (any OSError, requests' too) to drop the connection."""


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
        if isinstance(payload, str):
            return Reply.of(status, payload.encode(), {"Content-Type": "text/html"})
        return Reply.of(status, json.dumps(payload).encode(),
                        {"Content-Type": "application/json"})


def model_client(model: Model) -> connector.Client:
    """The connector's Client, its requests going to `model`."""
    return connector.Client(Credentials(api_key="model-key", base_url="https://model.invalid"),
                            transport=ModelTransport(model))
