"""The HTTP core: one pooled session, bounded retries, and a typed result or error per page."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .config import ENDPOINT_PATH, Credentials, RetryPolicy, Timeouts
from .errors import ResponseFormatError, TransportError, error_for_status

log = logging.getLogger("connector.http")

USER_AGENT = "tiktok-following-connector/0.1"


@dataclass(frozen=True)
class RateLimit:
    """`X-RateLimit-*` headers of the last response (None when the server did not send them)."""

    limit: int | None = None
    remaining: int | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        return cls(_int_or_none(headers.get("X-RateLimit-Limit")),
                   _int_or_none(headers.get("X-RateLimit-Remaining")))


@dataclass
class Page:
    """One successful response: raw entries plus the pagination fields, as the server sent them."""

    entries: list[dict[str, Any]]
    min_cursor: Any
    max_cursor: Any
    has_more: bool | None
    total: int | None
    rate_limit: RateLimit = field(default_factory=RateLimit)
    #: HTTP requests this page took, retries included.
    attempts: int = 1


class _Retry(Retry):
    """urllib3 Retry with `Retry-After` capped, whatever the urllib3 2.x release."""

    retry_after_cap: float = 30.0

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), self.retry_after_cap)

    def new(self, **kw: Any) -> _Retry:
        new = super().new(**kw)
        new.retry_after_cap = self.retry_after_cap
        return new


def build_retry(policy: RetryPolicy) -> Retry:
    """The urllib3 Retry for our POSTs: the endpoint only reads, so retrying POST is safe."""
    retry = _Retry(
        total=policy.total,
        connect=policy.total,
        read=policy.total,
        status=policy.total,
        other=0,
        redirect=0,
        allowed_methods=frozenset({"POST"}),
        status_forcelist=policy.statuses,
        backoff_factor=policy.backoff_factor,
        backoff_max=policy.backoff_max,
        backoff_jitter=policy.backoff_jitter,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    retry.retry_after_cap = policy.retry_after_max
    return retry


class Client:
    """Sends one page request at a time over a shared, pooled `requests.Session`.

    Thread-safe for concurrent `fetch_page` calls (requests' pool is), which `watch` relies on.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        pool_size: int = 10,
    ) -> None:
        self.credentials = credentials
        self.timeouts = timeouts or Timeouts()
        self.url = credentials.base_url + ENDPOINT_PATH
        self.session = requests.Session()
        adapter = HTTPAdapter(
            max_retries=build_retry(retry or RetryPolicy()),
            pool_connections=1,
            pool_maxsize=pool_size,
        )
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({
            "Authorization": f"Bearer {credentials.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        })
        # Environment proxies would send loopback stand-in traffic astray and leak the key.
        self.session.trust_env = False
        #: The rate-limit headers of the most recent response, for callers that pace themselves.
        self.last_rate_limit = RateLimit()

    def __repr__(self) -> str:
        return f"Client(url={self.url!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch_page(
        self,
        handle: str,
        *,
        min_time: Any = None,
        count: int | None = None,
        request_source: str = "API",
    ) -> Page:
        """POST one page request; return the parsed page or raise a typed ConnectorError."""
        body: dict[str, Any] = {"handle": handle, "requestSource": request_source}
        if min_time is not None:
            body["minTime"] = min_time
        if count is not None:
            body["count"] = count
        log.debug("POST %s handle=%s minTime=%s count=%s", self.url, handle, min_time, count)
        try:
            resp = self.session.post(
                self.url,
                # allow_nan=False: NaN is not JSON, and the server would answer 400 for it.
                data=json.dumps(body, allow_nan=False),
                timeout=(self.timeouts.connect, self.timeouts.read),
            )
        except requests.exceptions.RequestException as exc:
            if _timed_out(exc):
                raise TransportError(f"timed out talking to {self.credentials.base_url}: "
                                     "the server did not answer in time; try again later") from exc
            raise TransportError(f"could not reach {self.credentials.base_url} "
                                 f"({_reason(exc)}); check the network and baseUrl") from exc
        attempts = _attempts(resp)
        rate = RateLimit.from_headers(resp.headers)
        self.last_rate_limit = rate
        payload = _json_or_none(resp.content)
        if resp.status_code != 200:
            server_message = payload.get("error") if isinstance(payload, dict) else None
            if not isinstance(server_message, str):
                server_message = None
            err = error_for_status(resp.status_code, server_message, resp.headers)
            err.details["attempts"] = attempts
            raise err
        page = parse_page(payload, resp.content)
        page.rate_limit = rate
        page.attempts = attempts
        return page


def parse_page(payload: Any, raw: bytes = b"") -> Page:
    """Check a 200 body against the documented shape and turn it into a Page."""
    if payload is None:
        snippet = raw[:80].decode("utf-8", "replace")
        raise ResponseFormatError(f"the server answered 200 with a body that is not JSON: "
                                  f"{snippet!r}; try again, and report it if it persists")
    if not isinstance(payload, dict):
        raise ResponseFormatError("the server answered 200 with JSON that is not an object")
    entries = payload.get("followingList")
    if entries is None and "followingList" not in payload:
        raise ResponseFormatError("the server answered 200 without a followingList; "
                                  "try again, and report it if it persists")
    entries = entries or []
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("user"), dict) for e in entries
    ):
        raise ResponseFormatError("the server answered 200 with a followingList whose entries "
                                  "are not {user, stats} objects")
    has_more = payload.get("hasMore")
    if has_more is not None and not isinstance(has_more, bool):
        raise ResponseFormatError(f"hasMore should be true, false or null, got {has_more!r}")
    for name in ("minCursor", "maxCursor"):
        if not _is_cursor(payload.get(name)):
            raise ResponseFormatError(f"{name} should be a number, got {payload.get(name)!r}")
    total = payload.get("total")
    return Page(
        entries=entries,
        min_cursor=payload.get("minCursor"),
        max_cursor=payload.get("maxCursor"),
        has_more=has_more,
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def _is_cursor(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        # json.loads accepts NaN and Infinity; sent back as minTime they are not JSON.
        return math.isfinite(value)
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.lstrip("-").isdigit()


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _attempts(resp: requests.Response) -> int:
    retries = getattr(resp.raw, "retries", None)
    history = getattr(retries, "history", None) or ()
    return 1 + len(history)


def _timed_out(exc: requests.exceptions.RequestException) -> bool:
    """Whether the server was reached but did not answer in time.

    Once urllib3 has retried, a read timeout arrives as a ConnectionError wrapping
    MaxRetryError(reason=ReadTimeoutError), not as requests' Timeout. (Not any urllib3
    TimeoutError: a refused connection, NewConnectionError, is one of those too.)
    """
    if isinstance(exc, requests.exceptions.Timeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.ReadTimeoutError)


def _reason(exc: BaseException) -> str:
    """A short cause for a transport failure, without URLs that could carry secrets."""
    text = str(exc)
    for word in ("refused", "reset", "timed out", "Name or service not known",
                 "IncompleteRead", "Connection aborted", "Max retries exceeded"):
        if word.lower() in text.lower():
            return {"Max retries exceeded": "retries exhausted"}.get(word, word)
    return type(exc).__name__
