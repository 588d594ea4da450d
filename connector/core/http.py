"""The API client: one page request at a time, a typed page or error for each.

`PageSource` is the seam the rest of the package depends on: anything with `fetch_page` (the
`Client` here, `watch`'s paced client, a test's fake) can feed the pager and the operations.
The bytes travel through a `Transport` (core/transport.py): pools, retries, deadlines.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple, Protocol

from . import cursors
from .config import ENDPOINT_PATH, Credentials, RetryPolicy, Timeouts, resolve_credentials
from .errors import ResponseFormatError, TransportError, error_for_status
from .redact import display_url, one_line, redact
from .retries import build_retry
from .secrets import Secrets
from .transport import (
    ACCEPT_ENCODING,
    USER_AGENT,
    HTTPTransport,
    PostFailed,
    Reply,
    Transport,
)

log = logging.getLogger("connector.http")

#: A page is a few hundred KB at most; anything past this is refused unread.
MAX_RESPONSE_BYTES = 20 * 1024 * 1024


class RateLimit(NamedTuple):
    """`X-RateLimit-*` headers of a response (None when the server did not send them)."""

    limit: int | None = None
    remaining: int | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        return cls(_int_or_none(headers.get("X-RateLimit-Limit")),
                   _int_or_none(headers.get("X-RateLimit-Remaining")))


class Page:
    """One successful response: raw entries plus the pagination fields, as the server sent them.

    A plain class, not a dataclass: generating one's methods costs more CPU at import than a
    single call spends on its page (see core/config.py).
    """

    __slots__ = (
        "attempts",
        "entries",
        "has_more",
        "max_cursor",
        "min_cursor",
        "rate_limit",
        "total",
    )

    def __init__(self, entries: list[dict[str, Any]], min_cursor: Any, max_cursor: Any,
                 has_more: bool | None, total: int | None, rate_limit: RateLimit | None = None,
                 attempts: int = 1) -> None:
        self.entries = entries
        self.min_cursor = min_cursor
        self.max_cursor = max_cursor
        self.has_more = has_more
        self.total = total
        self.rate_limit = rate_limit if rate_limit is not None else RateLimit()
        #: HTTP requests this page took, retries included.
        self.attempts = attempts

    def __repr__(self) -> str:
        return (f"Page({len(self.entries)} entries, min_cursor={self.min_cursor!r}, "
                f"max_cursor={self.max_cursor!r}, has_more={self.has_more!r}, "
                f"total={self.total!r}, attempts={self.attempts})")


class PageSource(Protocol):
    """Anything that fetches one page of a handle's following list."""

    def fetch_page(self, handle: str, *, min_time: Any = None, count: int | None = None,
                   request_source: str = "API") -> Page: ...


def list_reader(source: PageSource, handle: str, *, count: int | None = None,
                request_source: str = "API") -> Callable[[Any], Page]:
    """One handle's list, a page at a given cursor: what the pager and the triggers' walks
    call to read down it."""
    return lambda cursor: source.fetch_page(handle, min_time=cursor, count=count,
                                            request_source=request_source)


class Client(AbstractContextManager["Client"]):
    """Sends page requests to the API, each on its own, over one transport.

    `transport`: what carries the POSTs (default: an `HTTPTransport` with `retry` and
    `pool_size`, closed with the client; never through an environment proxy). A transport
    given is the caller's: it brings its own retries and is not closed here.

    Thread-safe for concurrent `fetch_page` calls (urllib3's pools are), which `watch` relies
    on.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        pool_size: int = 10,
        transport: Transport | None = None,
    ) -> None:
        self.credentials = credentials
        self.timeouts = timeouts or Timeouts()
        self.url = credentials.base_url + ENDPOINT_PATH
        self._shown_url = display_url(self.url)
        self._secrets = Secrets().api_key(credentials.api_key).url(credentials.base_url).values
        self._own: HTTPTransport | None = None
        if transport is None:
            transport = self._own = HTTPTransport(retry=build_retry(retry or RetryPolicy()),
                                                  pool_size=pool_size)
        self.transport = transport
        self._headers = {
            "Authorization": f"Bearer {credentials.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
            "User-Agent": USER_AGENT,
        }

    def __repr__(self) -> str:
        return f"Client(url={self._shown_url!r})"

    def close(self) -> None:
        if self._own is not None:
            self._own.close()

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
        if log.isEnabledFor(logging.DEBUG):
            log.debug("POST %s handle=%s minTime=%s count=%s", self._shown_url, handle,
                      min_time, count)
        try:
            resp = self.transport.post(
                # allow_nan=False: NaN is not JSON, and the server would answer 400 for it.
                self.url, json.dumps(body, allow_nan=False).encode(), self._headers,
                self.timeouts)
            content = _read_capped(resp)
        except PostFailed as failed:
            base = display_url(self.credentials.base_url)
            if failed.deadline is not None:
                raise TransportError(f"{base} did not answer in full within the "
                                     f"{failed.deadline:g} s deadline a request has (retries "
                                     "included; Timeouts.total): it is too slow or trickles "
                                     "its answer; try again later") from None
            if failed.timed_out:
                raise TransportError(f"timed out talking to {base}: the server did not "
                                     "answer in time; try again later") from None
            raise TransportError(f"could not reach {base} ({failed.why}); check the network "
                                 "and baseUrl") from None
        attempts = resp.attempts
        try:
            payload = json.loads(content)
        except (ValueError, RecursionError):
            payload = None  # told by its status, or refused by parse_page on a 200
        if resp.status != 200:
            text = payload.get("error") if isinstance(payload, dict) else None
            # The server's text is kept, but on one line and without any secret it echoed.
            server_message = _quoted(text, self._secrets, 500) if isinstance(text, str) else None
            err = error_for_status(resp.status, server_message, resp.headers)
            err.details["attempts"] = attempts
            raise err
        page = parse_page(payload, content, secrets=self._secrets)
        page.rate_limit = RateLimit.from_headers(resp.headers)
        page.attempts = attempts
        return page


def _read_capped(resp: Reply) -> bytes:
    """The body, read whole only if it is within MAX_RESPONSE_BYTES (a runaway or hostile
    answer must not be read into memory)."""
    declared = _int_or_none(resp.headers.get("Content-Length"))
    if declared is not None and declared > MAX_RESPONSE_BYTES:
        resp.close()
        raise ResponseFormatError(f"the server answered with {declared} bytes, more than the "
                                  f"{MAX_RESPONSE_BYTES // 2**20} MB a page can be; refused "
                                  "unread")
    content = resp.read(MAX_RESPONSE_BYTES + 1)
    if len(content) > MAX_RESPONSE_BYTES:
        resp.close()
        raise ResponseFormatError(f"the server's answer is larger than the "
                                  f"{MAX_RESPONSE_BYTES // 2**20} MB a page can be; refused")
    return content


def parse_page(payload: Any, raw: bytes = b"", *, secrets: Iterable[str] = ()) -> Page:
    """Check a 200 body against the documented shape and turn it into a Page. What the
    server sent is quoted in errors only with `secrets` (say, the key it echoed) removed."""
    if payload is None:
        snippet = _quoted(raw[:4096].decode("utf-8", "replace"), secrets, 80)
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
        raise ResponseFormatError(f"hasMore should be true, false or null, got "
                                  f"{_quoted(repr(has_more), secrets, 40)}")
    for name in ("minCursor", "maxCursor"):
        if not cursors.is_cursor(payload.get(name)):
            raise ResponseFormatError(f"{name} should be a number, got "
                                      f"{_quoted(repr(payload.get(name)), secrets, 40)}")
    total = payload.get("total")
    return Page(
        entries=entries,
        min_cursor=payload.get("minCursor"),
        max_cursor=payload.get("maxCursor"),
        has_more=has_more,
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def _quoted(text: str, secrets: Iterable[str], limit: int) -> str:
    """Server text for a message: secrets out first (so no part of one survives the cut),
    then on one line and cut short."""
    return one_line(redact(text, secrets), limit)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None and len(value) < 20 else None
    except ValueError:
        return None


def client_for(
    client: PageSource | None = None,
    *,
    credentials: Mapping[str, Any] | None = None,
    retry: RetryPolicy | None = None,
    timeouts: Timeouts | None = None,
    pool_size: int = 10,
) -> AbstractContextManager[PageSource]:
    """The client to use: `client` if one is given (the caller owns it), else a new Client for
    `credentials` (default: the environment), closed when the block ends."""
    if client is not None:
        return nullcontext(client)
    return Client(resolve_credentials(credentials), retry=retry, timeouts=timeouts,
                  pool_size=pool_size)
