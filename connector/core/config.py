"""Where requests go and how patient they are: credentials, URLs, timeouts, retries.

The settings are NamedTuples rather than frozen dataclasses: as immutable, and with no code
generated at import, which a single call (one `invoke`) would pay for on every run.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from .errors import ConfigurationError, InputError
from .redact import display_url, shown

PRODUCTION_URL = "https://app.dumplingai.com"
ENDPOINT_PATH = "/api/v1/get-tiktok-user-following"
#: What one successful request costs; failed requests cost nothing.
CREDITS_PER_REQUEST = 10
API_KEY_ENV = "DUMPLINGAI_API_KEY"
BASE_URL_ENV = "DUMPLINGAI_BASE_URL"
#: Where the embedded state lives: a file path (SQLite) or a postgresql:// URL.
STATE_DB_ENV = "TIKTOK_FOLLOWING_STATE_DB"
#: The shared token `serve` wants from callers (beyond loopback).
SERVE_TOKEN_ENV = "TIKTOK_FOLLOWING_SERVE_TOKEN"
#: A URL longer than this is a paste gone wrong, not an address.
MAX_URL = 2048
#: The fields of `credentials` (the connector manifest's `auth`); any other is a typo.
CREDENTIAL_FIELDS = ("apiKey", "baseUrl")


def install_extra(extra: str, packages: str) -> str:
    """How to install an optional part today: the package is not on the package index yet, so
    from a clone (or a wheel built from one), or the packages it needs by name. Once it is
    published, `pip install 'tiktok-following-connector[EXTRA]'` does it: change it here."""
    return f"pip install '.[{extra}]' in the connector's clone, or pip install {packages}"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 request`, `2 requests` (`nouns`: an irregular plural), in every surface's lines."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


class RetryPolicy(NamedTuple):
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


class Timeouts(NamedTuple):
    """How long a request may take. A read timeout bounds each read, not the answer: a server
    that trickles a byte now and then never trips it. `total` is the deadline of one
    exchange as a whole (connecting, sending, every retry and its wait, the status line,
    headers and body): a hung or trickling upstream must not hang a workflow."""

    connect: float = 5.0
    #: Seconds of silence while waiting for the answer, or between two reads of it.
    read: float = 60.0
    total: float = 120.0


class Credentials(NamedTuple):
    """The API key and where to send it. The key never appears in reprs or logs."""

    api_key: str
    base_url: str = PRODUCTION_URL

    def __repr__(self) -> str:
        return f"Credentials(api_key='***', base_url={display_url(self.base_url)!r})"


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine: where plain http cannot expose a secret."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_port(host: str, port: int) -> str:
    """`host:port` as a URL writes it: an IPv6 address in brackets (`[::1]:8790`)."""
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def check_url(url: Any, *, field: str, example: str, allow_http: bool = False,
              secret_path: bool = False, http_hint: str = "") -> str:
    """Validate a URL the connector will send to: https anywhere, plain http only to loopback
    (or anywhere with `allow_http`), a host, a valid port, nothing that cannot travel in a
    request line. Returns it stripped. Errors never echo a secret: userinfo is dropped, and the
    path too when `secret_path` (webhook URLs)."""
    fix = f"give an http(s) URL like {example}"
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"{field} is empty; {fix}", field=field)
    text = url.strip()
    if len(text) > MAX_URL or any(ord(c) < 33 or ord(c) == 127 for c in text):
        raise ConfigurationError(f"{field} is not a URL (it holds spaces, line breaks or is "
                                 f"over {MAX_URL} characters); {fix}", field=field)
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 -- raises ValueError for a port outside 0-65535
    except ValueError:
        raise ConfigurationError(f"{field} is not a valid URL (a bad host or a port outside "
                                 f"1-65535); {fix}", field=field) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(f"{field} must be an http(s) URL with a host; {fix}",
                                 field=field)
    if parts.port == 0:
        raise ConfigurationError(f"{field} has port 0; {fix}", field=field)
    if not text.isascii():
        raise ConfigurationError(f"{field} holds characters outside ASCII; write the host in "
                                 f"its xn-- form and percent-encode the path; {fix}", field=field)
    if parts.scheme == "http" and not allow_http and not is_loopback(host):
        shown = display_url(text, path=not secret_path)
        raise ConfigurationError(
            f"{field} {shown} uses plain http to {host}: secrets would travel unencrypted; use "
            f"https (plain http is allowed only for loopback{http_hint})", field=field)
    return text


def check_base_url(url: Any, *, field_name: str = "baseUrl") -> str:
    """The API base URL: https, or plain http for loopback (the stand-in). No trailing slash.
    No `user:password@`: the transport would send it as Basic auth in place of the API key."""
    text = check_url(url, field=field_name, example=PRODUCTION_URL)
    if "@" in urlsplit(text).netloc:
        raise ConfigurationError(f"{field_name} holds a user name or password (user:password@); "
                                 "the API authenticates with the API key alone: remove them",
                                 field=field_name)
    return text.rstrip("/")


class MissingApiKey(ConfigurationError):
    """No API key anywhere: none given, and none in DUMPLINGAI_API_KEY. `how` says how to give
    one; each surface that reports it makes it anew in its own words (`MissingApiKey(how)`): an
    option and a variable on the command line, a header for `serve`, an argument in Python."""

    def __init__(self, how: str = f'pass credentials={{"apiKey": ...}} or set {API_KEY_ENV}'
                 ) -> None:
        super().__init__(f"no API key: {how}", field="apiKey")


def check_api_key(key: Any, *, source: str = "apiKey") -> str:
    """The API key as it will travel in the Authorization header, or a ConfigurationError
    that names where it came from (the key itself is never shown). A blank key never gets this
    far: `given_api_key` and `env_api_key` refuse one by name."""
    if not isinstance(key, str):
        raise ConfigurationError(f"{source} must be a string", field="apiKey")
    key = key.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise ConfigurationError(f"the API key in {source} holds a line break or control "
                                 "character; paste it again on one line", field="apiKey")
    if not key.isascii() or " " in key:
        raise ConfigurationError(f"the API key in {source} holds spaces or characters outside "
                                 "ASCII, which an HTTP header cannot carry; paste the key "
                                 "exactly as the dashboard shows it", field="apiKey")
    return key


def given_api_key(value: Any, *, field: str = "credentials.apiKey") -> str | None:
    """Whether a request carries a usable API key, for every surface (`connector.run`, invoke,
    serve's body and its Authorization header): the key, checked, or None when `field` was
    not given (absent, or null). A key given but blank (empty, or only whitespace, Unicode
    spaces included) is an InputError that names `field`, never "no key": a caller that sent
    one and had the service's own key used in its place could send that key anywhere."""
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        raise InputError(f"{field} is blank ({'empty' if not value else 'only whitespace'}); "
                         f"give the API key, or leave {field} out to use {API_KEY_ENV}",
                         # The protocol's `field` is the name inside its object, as for inputs.
                         field=field.rpartition(".")[2])
    return check_api_key(value, source=field)


def env_api_key(env: Mapping[str, str] | None = None) -> str | None:
    """The key in DUMPLINGAI_API_KEY, checked, or None when it is not set. Set but empty
    (`DUMPLINGAI_API_KEY=`) counts as not set, as shells and .env files write "unset"; only
    whitespace is a ConfigurationError that names the variable (a paste gone wrong)."""
    value = (os.environ if env is None else env).get(API_KEY_ENV)
    if not value:
        return None
    if not value.strip():
        raise ConfigurationError(f"{API_KEY_ENV} holds only whitespace; set it to the API key, "
                                 "or unset it", field=API_KEY_ENV)
    return check_api_key(value, source=API_KEY_ENV)


def check_credential_fields(credentials: Any) -> Mapping[str, Any]:
    """`credentials` as a mapping with only the known fields (apiKey, baseUrl); a mistyped
    field (`baseURL`) is refused by name, or the call would quietly go to the default host."""
    if credentials is None:
        return {}
    if not isinstance(credentials, Mapping):
        raise ConfigurationError("credentials must be an object with apiKey", field="credentials")
    for name in credentials:
        if name not in CREDENTIAL_FIELDS:
            raise InputError(f"unknown credentials field {shown(name)}; the fields are: "
                             f"{', '.join(CREDENTIAL_FIELDS)}",
                             field=name[:60] if isinstance(name, str) else "credentials")
    return credentials


def resolve_credentials(
    credentials: Mapping[str, Any] | None, env: Mapping[str, str] | None = None
) -> Credentials:
    """Credentials from the request, else the environment; base URL from `baseUrl`,
    else DUMPLINGAI_BASE_URL, else production."""
    env = os.environ if env is None else env
    credentials = check_credential_fields(credentials)
    key = given_api_key(credentials.get("apiKey")) or env_api_key(env)
    if key is None:
        raise MissingApiKey()
    base = credentials.get("baseUrl")
    # The error names where the bad URL came from, so the user knows what to fix.
    source = "baseUrl"
    if base is None or base == "":
        base, source = env.get(BASE_URL_ENV) or PRODUCTION_URL, BASE_URL_ENV
    return Credentials(api_key=key, base_url=check_base_url(base, field_name=source))
