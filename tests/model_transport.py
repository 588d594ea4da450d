"""What the model tests share: a requests transport that hands each POST to a model of the
upstream instead of a socket, so the connector's own Client parses every answer as it would
the real API's."""

from __future__ import annotations

import io
import json
from typing import Any, Protocol

import requests
from requests.adapters import BaseAdapter
from urllib3 import HTTPResponse

import connector
from connector.core.config import Credentials


class Model(Protocol):
    def answer(self, body: dict[str, Any]) -> tuple[int, Any]:
        """(status, JSON payload or HTML text) for one request body, the payload wrapped in
        Truncated to cut the body short of its Content-Length; may raise a requests
        ConnectionError to drop the connection."""


class Truncated:
    """A payload sent with a Content-Length longer than its body, as a connection that drops
    mid-answer leaves it."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload


class ModelAdapter(BaseAdapter):
    """A requests transport that hands each POST to the model instead of a socket."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model

    def send(self, request: Any, **kwargs: Any) -> requests.Response:
        status, payload = self.model.answer(json.loads(request.body))
        cut = isinstance(payload, Truncated)
        if cut:
            payload = payload.payload
        response = requests.Response()
        response.status_code = status
        response.request = request
        response.url = request.url
        if isinstance(payload, str):
            body, kind = payload.encode(), "text/html"
        else:
            body, kind = json.dumps(payload).encode(), "application/json"
        response.headers["Content-Type"] = kind
        headers = {"Content-Length": str(len(body))}
        if status in (429, 503):
            headers["Retry-After"] = "1"
        response.headers.update(headers)
        if cut:  # half the body its Content-Length promises: reading it raises IncompleteRead
            body = body[: len(body) // 2]
        response.raw = HTTPResponse(body=io.BytesIO(body), status=status, headers=headers,
                                    preload_content=False, enforce_content_length=True)
        return response

    def close(self) -> None:
        pass


def model_client(model: Model) -> connector.Client:
    """The connector's Client, its requests going to `model`."""
    client = connector.Client(Credentials(api_key="model-key",
                                          base_url="https://model.invalid"))
    client.session.mount("https://", ModelAdapter(model))
    return client
