"""Where requests go and how patient they are: credentials, base URL, timeouts, retries."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError

PRODUCTION_URL = "https://app.dumplingai.com"
ENDPOINT_PATH = "/api/v1/get-tiktok-user-following"
API_KEY_ENV = "DUMPLINGAI_API_KEY"
BASE_URL_ENV = "DUMPLINGAI_BASE_URL"


@dataclass(frozen=True)
class RetryPolicy:
    """How the HTTP core retries: urllib3 `Retry` settings, injectable so tests never sleep."""

    total: int = 4
    backoff_factor: float = 0.5
    backoff_max: float = 20.0
    backoff_jitter: float = 0.5
    #: A `Retry-After` longer than this is cut to it: a poll must not hang for an hour.
    retry_after_max: float = 30.0
    statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})

    @classmethod
    def no_wait(cls, total: int = 4) -> RetryPolicy:
        """Same retries, no sleeping: for tests and benchmarks."""
        return cls(total=total, backoff_factor=0, backoff_jitter=0, retry_after_max=0)


@dataclass(frozen=True)
class Timeouts:
    """requests has no default timeout; a hung upstream must not hang a workflow."""

    connect: float = 5.0
    read: float = 60.0


@dataclass(frozen=True)
class Credentials:
    """The API key and where to send it. The key never appears in reprs or logs."""

    api_key: str = field(repr=False)
    base_url: str = PRODUCTION_URL

    def __repr__(self) -> str:
        return f"Credentials(api_key='***', base_url={self.base_url!r})"


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine: where plain http cannot expose a secret."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, *, field_name: str = "baseUrl") -> str:
    """Validate a base URL: https anywhere, plain http only on loopback (the stand-in)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{field_name} must be an http(s) URL like {PRODUCTION_URL}, got {url!r}",
            field=field_name,
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{field_name} uses plain http to {parts.hostname}: the API key would travel "
            "unencrypted; use https (plain http is allowed only for loopback)",
            field=field_name,
        )
    return url.strip().rstrip("/")


def resolve_credentials(
    credentials: Mapping[str, Any] | None, env: Mapping[str, str] | None = None
) -> Credentials:
    """Credentials from the request, else the environment; base URL from `baseUrl`,
    else DUMPLINGAI_BASE_URL, else production."""
    env = os.environ if env is None else env
    credentials = credentials or {}
    if not isinstance(credentials, Mapping):
        raise ConfigurationError("credentials must be an object with apiKey", field="credentials")
    key = credentials.get("apiKey") or env.get(API_KEY_ENV)
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError(
            f"no API key: set credentials.apiKey or {API_KEY_ENV}", field="apiKey"
        )
    base = credentials.get("baseUrl")
    # The error names where the bad URL came from, so the user knows what to fix.
    source = "baseUrl"
    if not base and env.get(BASE_URL_ENV):
        base, source = env[BASE_URL_ENV], BASE_URL_ENV
    base = base or PRODUCTION_URL
    if not isinstance(base, str):
        raise ConfigurationError("baseUrl must be a string URL", field="baseUrl")
    return Credentials(api_key=key.strip(), base_url=check_base_url(base, field_name=source))
