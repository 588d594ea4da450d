"""The HTTP core: one pooled session, bounded retries, and a typed page or error per request.

`PageSource` is the seam the rest of the package depends on: anything with `fetch_page` (the
`Client` here, `watch`'s paced client, a test's fake) can feed the pager and the operations.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple, Protocol

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.util.retry import Retry

from . import cursors, deadline
from .config import ENDPOINT_PATH, Credentials, RetryPolicy, Timeouts, resolve_credentials
from .errors import ResponseFormatError, TransportError, error_for_status
from .redact import display_url, one_line, redact
from .secrets import Secrets

log = logging.getLogger("connector.http")

USER_AGENT = "tiktok-following-connector/0.1"
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


class _Retry(Retry):
    """urllib3 Retry with `Retry-After` capped, whatever the urllib3 2.x release, that keeps
    to the deadline of the exchange in progress (core/deadline.py): no try starts after it,
    and no wait runs past it. When the next wait would, the last answer stands (a 503 is
    reported as the 503 it is) or the last error does."""

    retry_after_cap: float = 30.0
    #: Whether a read timeout is retried. Not for webhooks: a timeout means the receiver is
    #: slow, and a second try would only be slow again.
    retry_timeouts: bool = True
    #: Seconds `sleep` waits before the next try, decided by `increment` (None: urllib3's own).
    planned_wait: float | None = None

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), self.retry_after_cap)

    def new(self, **kw: Any) -> _Retry:
        new = super().new(**kw)
        new.retry_after_cap = self.retry_after_cap
        new.retry_timeouts = self.retry_timeouts
        return new

    def increment(self, method: str | None = None, url: str | None = None,
                  response: Any = None, error: Exception | None = None, _pool: Any = None,
                  _stacktrace: Any = None) -> _Retry:
        if not self.retry_timeouts and isinstance(error, urllib3.exceptions.ReadTimeoutError):
            raise error
        exchange = deadline.current()
        if exchange is not None and exchange.remaining() <= 0:
            raise deadline.DeadlinePassed from error
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        if exchange is not None:
            after = (self.get_retry_after(response)
                     if response is not None and self.respect_retry_after_header else None)
            new.planned_wait = after or new.get_backoff_time()
            if new.planned_wait >= exchange.remaining():
                reason = error or urllib3.exceptions.ResponseError(
                    f"no time left for another try after HTTP "
                    f"{getattr(response, 'status', '?')}")
                raise urllib3.exceptions.MaxRetryError(_pool, url, reason)
        return new

    def sleep(self, response: Any = None) -> None:
        if self.planned_wait is None:
            super().sleep(response)
        elif self.planned_wait > 0:
            time.sleep(self.planned_wait)


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


def fresh_connection_retry() -> Retry:
    """For POSTs that are not safe to repeat blindly (a webhook's): one more try, at once, when
    the request got no answer at all because the connection broke (reset, aborted, broken pipe,
    the peer closing an idle kept-alive connection). The next connection is checked before use,
    so the retry goes out on a live one. Not for a connection that could not be made (the
    receiver is down), nor a read timeout (it is slow), nor any answer."""
    retry = _Retry(total=1, connect=0, read=1, status=0, other=0, redirect=0,
                   allowed_methods=frozenset({"POST"}), backoff_factor=0,
                   raise_on_status=False, raise_on_redirect=False)
    retry.retry_timeouts = False
    return retry


def new_session(*, pool_size: int, retry: Retry | int = 0, trust_env: bool = False
                ) -> requests.Session:
    """A pooled session for one host. Environment proxies are off unless asked for: they would
    send loopback traffic astray and see the secrets in it."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    # HTTP/1.1 keeps connections open without it: one header less to write on every POST.
    del session.headers["Connection"]
    session.trust_env = trust_env
    return session


class PostFailed(Exception):
    """A POST got no HTTP answer (refused, reset, timed out, past its deadline, retries
    exhausted). `why` is a short cause without the URL, which may hold secrets."""

    def __init__(self, why: str, *, timed_out: bool = False, deadline: float | None = None,
                 no_connection: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.timed_out = timed_out
        #: The deadline, in seconds, that passed (None: it did not).
        self.deadline = deadline
        #: No connection could be made at all (refused, unknown host, connect timeout, TLS).
        self.no_connection = no_connection

    @classmethod
    def of(cls, exc: BaseException) -> PostFailed:
        why = describe_transport_error(exc)
        return cls(why, timed_out=why == "timed out", no_connection=_no_connection(exc))

    @classmethod
    def past(cls, seconds: float) -> PostFailed:
        return cls(f"no complete answer within the {seconds:g} s deadline", timed_out=True,
                   deadline=seconds)


class Reply:
    """One HTTP answer: its status and headers (looked up case-insensitively), and `raw`, the
    urllib3 response its body is read from. The exchange's deadline holds until the body is
    read or the reply closed."""

    __slots__ = ("exchange", "headers", "raw", "seconds", "status")

    def __init__(self, status: int, headers: Mapping[str, str], raw: Any,
                 exchange: deadline.Exchange | None = None, seconds: float = 0.0) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw
        self.exchange = exchange
        self.seconds = seconds

    @property
    def attempts(self) -> int:
        """HTTP requests this answer took, retries included."""
        history = getattr(getattr(self.raw, "retries", None), "history", None) or ()
        return 1 + len(history)

    def read(self, limit: int) -> bytes:
        """The body, up to `limit` bytes (decoded as sent). Raises PostFailed when the answer
        breaks off or the deadline passes before its end."""
        try:
            body = self.raw.read(limit, decode_content=True)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self.raw.close()
            if self._ended():
                raise PostFailed.past(self.seconds) from None
            raise PostFailed.of(exc) from None
        if self._ended():
            # A body read to a close the watchdog forced is cut short, whatever it parses as.
            self.raw.close()
            raise PostFailed.past(self.seconds)
        return body

    def close(self) -> None:
        self.raw.close()
        self._ended()

    def _ended(self) -> bool:
        exchange, self.exchange = self.exchange, None
        return exchange is not None and exchange.end()


class Poster:
    """POSTs to one URL with a session's headers, retries and TLS settings, without the
    machinery of `Session.request` these POSTs never need.

    `session.post` spends more CPU than the HTTP exchange itself on merging settings and
    headers, preparing the URL again, cookies, hooks and the redirect machinery (neither caller
    follows redirects: a 30x comes back as the answer), and requests' adapter then copies every
    response header into a dict of its own. Here the URL, the headers and the environment's
    settings are prepared once, and a POST goes straight to the urllib3 pool that the
    session's `HTTPAdapter` keeps for the URL, with that adapter's `Retry`. Through a proxy, or
    when another adapter is mounted (a test's transport), it goes through the adapter instead.
    """

    def __init__(self, session: requests.Session, url: str) -> None:
        self.session = session
        # Prepared as session.post would: the session's headers and auth (netrc too, when the
        # session trusts the environment), the URL normalised.
        self._template = session.prepare_request(requests.Request("POST", url))
        self.url: str = self._template.url  # type: ignore[assignment]
        self._headers = dict(self._template.headers)
        self._settings = session.merge_environment_settings(self.url, {}, None, None, None)
        self._path = urllib3.util.parse_url(self.url).request_uri
        self._pool: Any = None
        self._timeouts: dict[tuple[float, float], urllib3.Timeout] = {}

    def post(self, body: bytes, *, timeout: tuple[float, float], deadline_s: float,
             headers: Mapping[str, str] | None = None) -> Reply:
        """Send `body`; the answer's body is left to read from the Reply. Raises PostFailed
        when no answer came. The exchange, retries and body included, ends `deadline_s`
        seconds from now however slowly the server answers (through a proxy, or another
        adapter, only the per-read timeouts and the retries' checks bound it)."""
        merged = {**self._headers, **headers} if headers else self._headers.copy()
        merged["Content-Length"] = str(len(body))
        adapter = self.session.get_adapter(self.url)
        exchange = deadline.WATCHDOG.arm(deadline_s)
        deadline.set_current(exchange)
        try:
            if type(adapter) is not HTTPAdapter or self._settings["proxies"]:
                reply = self._through(adapter, merged, body, timeout)
            else:
                limits = self._timeouts.get(timeout)
                if limits is None:
                    limits = self._timeouts[timeout] = urllib3.Timeout(connect=timeout[0],
                                                                      read=timeout[1])
                resp = self._pool_of(adapter).urlopen(
                    "POST", self._path, body=body, headers=merged, redirect=False,
                    assert_same_host=False, preload_content=False, decode_content=False,
                    retries=adapter.max_retries, timeout=limits)
                reply = Reply(resp.status, resp.headers, resp)
        except deadline.DeadlinePassed:
            exchange.end()
            raise PostFailed.past(deadline_s) from None
        except (urllib3.exceptions.HTTPError, OSError, requests.exceptions.RequestException
                ) as exc:
            if exchange.end():
                raise PostFailed.past(deadline_s) from None
            raise PostFailed.of(exc) from None
        finally:
            deadline.set_current(None)
        reply.exchange, reply.seconds = exchange, deadline_s
        return reply

    def _pool_of(self, adapter: HTTPAdapter) -> Any:
        pool = self._pool
        if pool is None or pool.pool is None:  # first POST, or closed with the session
            settings = self._settings
            try:
                pool = adapter.get_connection_with_tls_context(
                    self._template, settings["verify"], None, settings["cert"])
                adapter.cert_verify(pool, self.url, settings["verify"], settings["cert"])
            except (requests.exceptions.RequestException, OSError) as exc:
                raise PostFailed.of(exc) from None
            deadline.watch_pool(pool)
            self._pool = pool
        return pool

    def _through(self, adapter: Any, headers: dict[str, str], body: bytes,
                 timeout: tuple[float, float]) -> Reply:
        request = requests.PreparedRequest()
        request.method = "POST"
        request.url = self.url
        request.headers = CaseInsensitiveDict(headers)
        request.body = body
        settings = self._settings
        resp = adapter.send(request, stream=True, timeout=timeout, verify=settings["verify"],
                            cert=settings["cert"], proxies=settings["proxies"])
        return Reply(resp.status_code, resp.headers, resp.raw)


def describe_transport_error(exc: BaseException) -> str:
    """A short cause for a failed request, without the URL (which may hold secrets)."""
    if _timed_out(exc):
        return "timed out"
    text = str(exc).lower()
    for word, says in (("refused", "connection refused"), ("reset", "connection reset"),
                       ("name or service not known", "unknown host"),
                       ("nodename nor servname", "unknown host"),
                       ("certificate", "TLS certificate rejected"),
                       ("incompleteread", "incomplete response"),
                       ("aborted", "connection aborted"),
                       ("max retries exceeded", "retries exhausted")):
        if word in text:
            return says
    return type(exc).__name__


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
        self._shown_url = display_url(self.url)
        self._secrets = Secrets().api_key(credentials.api_key).url(credentials.base_url).values
        self.session = new_session(pool_size=pool_size, retry=build_retry(retry or RetryPolicy()))
        self.session.headers.update({
            "Authorization": f"Bearer {credentials.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        })
        self._poster = Poster(self.session, self.url)

    def __repr__(self) -> str:
        return f"Client(url={self._shown_url!r})"

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
        if log.isEnabledFor(logging.DEBUG):
            log.debug("POST %s handle=%s minTime=%s count=%s", self._shown_url, handle,
                      min_time, count)
        try:
            resp = self._poster.post(
                # allow_nan=False: NaN is not JSON, and the server would answer 400 for it.
                json.dumps(body, allow_nan=False).encode(),
                timeout=(self.timeouts.connect, self.timeouts.read),
                deadline_s=self.timeouts.total,
            )
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
        payload = _json_or_none(content)
        if resp.status != 200:
            server_message = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(server_message, str):
                # The server's text is kept, but on one line and without any secret echoed
                # (redacted before it is cut short, so no part of one survives the cut).
                server_message = one_line(redact(server_message, self._secrets), 500)
            else:
                server_message = None
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
    """Server text for a message: secrets out first, then on one line and cut short."""
    return one_line(redact(text, secrets), limit)


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None and len(value) < 20 else None
    except ValueError:
        return None


def _no_connection(exc: BaseException) -> bool:
    """Whether a failed request never had a connection: refused, an unknown host, a connect
    timeout or a TLS handshake refused (as urllib3 raises it, retried or not, or as requests
    wraps it)."""
    if isinstance(exc, requests.exceptions.RequestException) and exc.args:
        exc = exc.args[0]
    cause = getattr(exc, "reason", None) if isinstance(exc, urllib3.exceptions.MaxRetryError) \
        else exc
    errors = urllib3.exceptions
    return isinstance(cause, (errors.ConnectTimeoutError, errors.SSLError))


def _timed_out(exc: BaseException) -> bool:
    """Whether a failed request timed out, as urllib3 raises it (a timeout, or once retried, a
    MaxRetryError whose reason is one) or as requests wraps that. Not any urllib3 TimeoutError:
    a refused connection, NewConnectionError, is one of those too."""
    if isinstance(exc, requests.exceptions.Timeout):
        return True
    if isinstance(exc, requests.exceptions.RequestException) and exc.args:
        exc = exc.args[0]
    cause = getattr(exc, "reason", None) if isinstance(exc, urllib3.exceptions.MaxRetryError) \
        else exc
    errors = urllib3.exceptions
    return (isinstance(cause, (errors.ReadTimeoutError, errors.ConnectTimeoutError))
            and not isinstance(cause, errors.NewConnectionError))


@contextmanager
def client_for(
    client: PageSource | None = None,
    *,
    credentials: Mapping[str, Any] | None = None,
    retry: RetryPolicy | None = None,
    timeouts: Timeouts | None = None,
    pool_size: int = 10,
) -> Iterator[PageSource]:
    """The client to use: `client` if one is given (the caller owns it), else a new Client for
    `credentials` (default: the environment), closed when the block ends."""
    if client is not None:
        yield client
        return
    with Client(resolve_credentials(credentials), retry=retry, timeouts=timeouts,
                pool_size=pool_size) as own:
        yield own
