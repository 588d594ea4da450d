"""The webhook `watch` delivers to: its URL, its extra headers, and one JSON POST per event.

Header values and the URL's path are treated as secrets (an n8n, Zapier or Make hook URL is
itself a credential): reprs and messages show the origin and header names only.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..core.config import Timeouts, check_url, is_loopback
from ..core.errors import InputError
from ..core.redact import display_url
from ..core.retries import fresh_connection_retry
from ..core.secrets import Secrets
from ..core.transport import ACCEPT_ENCODING, USER_AGENT, HTTPTransport, PostFailed, Transport
from ..operations.registry import FOLLOWED

#: RFC 9110 token characters: what a header name may contain.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Headers `watch` sets itself, or that would corrupt the request if overridden.
RESERVED_HEADERS = frozenset({"content-length", "host", "idempotency-key", "transfer-encoding",
                              "connection"})
#: A POST, its one retry on a fresh connection included, takes at most `total` seconds from
#: connecting to the last byte of the answer, however slowly the receiver trickles it.
DEFAULT_TIMEOUTS = Timeouts(connect=5.0, read=30.0, total=30.0)
#: What is read of a receiver's answer: its status is what counts.
MAX_REPLY_BYTES = 1024 * 1024
#: A POST's body: the event as compact UTF-8 JSON (one encoder for every POST).
_body = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def parse_header(text: str) -> tuple[str, str]:
    """`'Name: value'` from the command line -> (name, value). The text is never echoed back:
    a malformed header may still hold a secret."""
    name, sep, value = text.partition(":")
    if not sep:
        raise InputError("a --header is not in the form 'Name: value' (its text is not shown: "
                         "it may hold a secret)", field="header")
    return check_header(name.strip(), value.strip())


def check_header(name: str, value: str) -> tuple[str, str]:
    """A header `watch` may send on every POST: a valid name, a value HTTP can carry (one
    line, Latin-1), not one watch sets itself. The value is never shown in an error."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise InputError("a header name must be letters, digits and -_.!#$%&'*+^`|~ (the "
                         "header is not shown: it may hold a secret)", field="header")
    if not isinstance(value, str) or any((ord(c) < 32 and c != "\t") or ord(c) == 127
                                          for c in value):
        raise InputError(f"--header {name}: the value holds a line break or control "
                         "character", field="header")
    if any(ord(c) > 255 for c in value):
        raise InputError(f"--header {name}: the value holds characters HTTP headers cannot "
                         "carry (outside Latin-1); encode it, e.g. as base64", field="header")
    if name.lower() in RESERVED_HEADERS:
        raise InputError(f"--header {name}: watch sets this header itself", field="header")
    return name, value


def check_webhook_url(url: str, *, allow_http: bool = False) -> str:
    """https anywhere; plain http only to loopback unless `allow_http`, since the events and
    any auth header would cross the network unencrypted."""
    return check_url(url, field="webhook", allow_http=allow_http, secret_path=True,
                     example="https://hooks.zapier.com/hooks/catch/...",
                     http_hint=", or with --allow-http on a trusted network")


@dataclass(frozen=True)
class WebhookReply:
    """How one POST went. `unreachable` means no answer at all (after the one retry a broken
    kept-alive connection gets): the receiver is down, slow or dropping connections, which
    says nothing about this particular event. `no_connection`: not even a connection could be
    made (refused, unknown host, connect timeout, TLS refused)."""

    ok: bool
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    unreachable: bool = False
    elapsed: float = 0.0
    no_connection: bool = False

    @property
    def receiver_down(self) -> bool:
        """True when this reply alone says trying more events now is pointless: no connection
        could be made, or a gateway or rate limit in front of the receiver said so. Other
        failures without an answer (a reset, a timeout) count towards it only when several
        come in a row (watch/delivery.py)."""
        return self.no_connection or self.status in (429, 502, 503, 504)


class Webhook:
    """A receiver URL with its headers, posting over one transport (default: an
    `HTTPTransport` of `pool_size` connections, closed with the webhook; a transport given is
    the caller's)."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        allow_http: bool = False,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        pool_size: int = 10,
        transport: Transport | None = None,
    ) -> None:
        self.url = check_webhook_url(url, allow_http=allow_http)
        self.allow_http = allow_http
        self.pool_size = pool_size
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        self.headers = dict(check_header(name, value) for name, value in pairs)
        self.timeouts = timeouts
        self._own: HTTPTransport | None = None
        if transport is None:
            # A loopback receiver must not be sent through an environment proxy; a remote one
            # may legitimately need it (HTTPS_PROXY in a company network). A POST whose
            # kept-alive connection broke before any answer is tried once more at once;
            # nothing else is retried here: the outbox's backoff does that. Never follows
            # redirects: a 30x turning the POST into a GET would lose the event.
            transport = self._own = HTTPTransport(
                retry=fresh_connection_retry(), pool_size=pool_size,
                trust_env=not is_loopback(urlsplit(self.url).hostname or ""))
        self.transport = transport
        # What every POST carries; a header given of the same name wins, but not over the
        # ones watch sets itself.
        self._headers = {"Accept": "*/*", "Accept-Encoding": ACCEPT_ENCODING, **self.headers,
                         "Content-Type": "application/json",
                         "User-Agent": f"{USER_AGENT} (watch)"}

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent to another process (a WatcherGroup's), it is built anew there, on a transport
        # of its own: pools and their sockets belong to one process.
        return (functools.partial(Webhook, self.url, headers=self.headers,
                                  allow_http=self.allow_http, timeouts=self.timeouts,
                                  pool_size=self.pool_size), ())

    @property
    def redacted(self) -> str:
        """The URL without its path, query and userinfo, which are secret for most hooks."""
        return display_url(self.url, path=False)

    @property
    def secrets(self) -> list[str]:
        """Everything about this webhook that must never be printed."""
        return Secrets().webhook(self.url, self.headers.values()).values

    def __repr__(self) -> str:
        return f"Webhook({self.redacted!r}, headers={sorted(self.headers)!r})"

    def close(self) -> None:
        if self._own is not None:
            self._own.close()

    def __enter__(self) -> Webhook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def post(self, event: Mapping[str, Any]) -> WebhookReply:
        """POST one event as JSON, its eventId in `Idempotency-Key`. Never raises for HTTP or
        network trouble: the Outcome says what happened."""
        headers = {**self._headers, "Idempotency-Key": str(event["eventId"])}
        body = _body(event).encode()
        started = time.monotonic()
        try:
            resp = self.transport.post(self.url, body, headers, self.timeouts)
            # Read to the end, so the connection goes back to the pool for the next POST; a
            # receiver that answers with more than a reply's worth loses the connection.
            if len(resp.read(MAX_REPLY_BYTES + 1)) > MAX_REPLY_BYTES:
                resp.close()
        except PostFailed as failed:  # no answer, or one that broke off
            return WebhookReply(False, error=failed.why, unreachable=True,
                                no_connection=failed.no_connection,
                                elapsed=time.monotonic() - started)
        elapsed = time.monotonic() - started
        status = resp.status
        if 200 <= status < 300:
            return WebhookReply(True, status=status, elapsed=elapsed)
        redirect = " redirect: give the final webhook URL" if 300 <= status < 400 else ""
        return WebhookReply(False, status=status, error=f"HTTP {status}{redirect}",
                            retry_after=_retry_after(resp.headers.get("Retry-After")),
                            elapsed=elapsed)


def sample_event(kind: str = FOLLOWED) -> dict[str, Any]:
    """An event shaped like the real ones of `kind` (followed, unfollowed), with the manifest's
    sample item: for teaching a Zapier or Make hook its fields before any real one happens."""
    from ..core.manifests import load
    from ..operations import TRIGGERS
    from ..operations.events import new_event

    return new_event("sample", load(TRIGGERS[kind].key)["sample"],
                     detected_at="2024-01-01T00:00:00+00:00", kind=kind)[1]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare for webhooks; the backoff applies instead
