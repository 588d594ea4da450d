"""The webhook `watch` delivers to: its URL, its extra headers, and one JSON POST per event.

Header values and the URL's path are treated as secrets (an n8n, Zapier or Make hook URL is
itself a credential): reprs and messages show the origin and header names only.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ..core.config import Timeouts, is_loopback
from ..core.errors import ConfigurationError, InputError
from ..core.http import USER_AGENT

#: RFC 9110 token characters: what a header name may contain.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Headers `watch` sets itself, or that would corrupt the request if overridden.
RESERVED_HEADERS = frozenset({"content-length", "host", "idempotency-key", "transfer-encoding",
                              "connection"})
DEFAULT_TIMEOUTS = Timeouts(connect=5.0, read=30.0)


def parse_header(text: str) -> tuple[str, str]:
    """`'Name: value'` from the command line -> (name, value). The text is never echoed back:
    a malformed header may still hold a secret."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _TOKEN.fullmatch(name):
        raise InputError("a --header is not in the form 'Name: value' (its text is not shown: "
                         "it may hold a secret)", field="header")
    if any(c in value for c in "\r\n\0"):
        raise InputError(f"--header {name}: the value contains a line break", field="header")
    if name.lower() in RESERVED_HEADERS:
        raise InputError(f"--header {name}: watch sets this header itself", field="header")
    return name, value


def check_webhook_url(url: str, *, allow_http: bool = False) -> str:
    """https anywhere; plain http only to loopback unless `allow_http`, since the events and
    any auth header would cross the network unencrypted."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError("the webhook must be an http(s) URL, like "
                                 "https://hooks.zapier.com/hooks/catch/...", field="webhook")
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"the webhook uses plain http to {parts.hostname}: events and headers would travel "
            "unencrypted; use https, or pass --allow-http if this network is trusted",
            field="webhook")
    return url.strip()


@dataclass(frozen=True)
class Outcome:
    """How one POST went. `unreachable` means no answer at all: the receiver is down or slow,
    which says nothing about this particular event."""

    ok: bool
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    unreachable: bool = False
    elapsed: float = 0.0

    @property
    def receiver_down(self) -> bool:
        """True when trying more events now is pointless: no answer, or a gateway or rate
        limit in front of the receiver said so."""
        return self.unreachable or self.status in (429, 502, 503, 504)


class Webhook:
    """A receiver URL with its headers, posting over one pooled session."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        allow_http: bool = False,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        pool_size: int = 10,
    ) -> None:
        self.url = check_webhook_url(url, allow_http=allow_http)
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        self.headers = dict(pairs)
        for name in self.headers:
            if name.lower() in RESERVED_HEADERS:
                raise InputError(f"header {name}: watch sets this header itself", field="header")
        self.timeouts = timeouts
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        # A loopback receiver must not be sent through an environment proxy; a remote one may
        # legitimately need it (HTTPS_PROXY in a company network).
        self.session.trust_env = not is_loopback(urlsplit(self.url).hostname or "")

    @property
    def redacted(self) -> str:
        """The URL without its path and query, which are secret for most hook services."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}/…"

    def __repr__(self) -> str:
        return f"Webhook({self.redacted!r}, headers={sorted(self.headers)!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Webhook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def post(self, event: Mapping[str, Any]) -> Outcome:
        """POST one event as JSON, its eventId in `Idempotency-Key`. Never raises for HTTP or
        network trouble: the Outcome says what happened."""
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": str(event["eventId"]),
            "User-Agent": f"{USER_AGENT} (watch)",
        }
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        started = time.monotonic()
        try:
            # No redirects: a 30x turning the POST into a GET would lose the event silently.
            resp = self.session.post(self.url, data=body, headers=headers, allow_redirects=False,
                                     timeout=(self.timeouts.connect, self.timeouts.read))
        except requests.exceptions.Timeout:
            return Outcome(False, error="timed out", unreachable=True,
                           elapsed=time.monotonic() - started)
        except requests.exceptions.RequestException as exc:
            return Outcome(False, error=_reason(exc), unreachable=True,
                           elapsed=time.monotonic() - started)
        elapsed = time.monotonic() - started
        status = resp.status_code
        resp.close()
        if 200 <= status < 300:
            return Outcome(True, status=status, elapsed=elapsed)
        if 300 <= status < 400:
            error = f"HTTP {status} redirect: give the final webhook URL"
        else:
            error = f"HTTP {status}"
        return Outcome(False, status=status, error=error,
                       retry_after=_retry_after(resp.headers.get("Retry-After")), elapsed=elapsed)


def sample_event() -> dict[str, Any]:
    """An event shaped like the real ones, with the manifest's sample item: for teaching a
    Zapier or Make hook its fields before any real follow happens."""
    from ..core.manifests import load
    from ..operations import trigger

    return {"eventId": "00000000-0000-0000-0000-000000000000", "handle": "sample",
            "detectedAt": "2024-01-01T00:00:00+00:00", "item": load(trigger.KEY)["sample"]}


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare for webhooks; the backoff applies instead


def _reason(exc: BaseException) -> str:
    """A short cause without the URL, which is secret."""
    text = str(exc).lower()
    for word in ("refused", "reset", "name or service not known", "certificate", "aborted"):
        if word in text:
            return {"name or service not known": "unknown host",
                    "certificate": "TLS certificate rejected"}.get(word, f"connection {word}")
    return type(exc).__name__
