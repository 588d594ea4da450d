"""The HTTP transport: POSTs over urllib3 connection pools the connector owns.

`Transport` is the seam: anything with `post` carries the requests of a `Client` (the API)
and of a `Webhook` (watch's POSTs). `HTTPTransport` is the real one; a test hands in a model
of the upstream instead. Everything below the HTTP answer lives here: the pools and their
kept-alive connections, the retries each POST gets (core/retries.py), the per-read timeouts
and the deadline of a whole exchange (core/deadline.py), TLS verified against certifi's
bundle, no redirect followed (a 30x is the answer), and an environment proxy only where asked
for. Only urllib3's public API is used.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import unquote

import urllib3
from urllib3.util.retry import Retry

from . import deadline
from .config import Timeouts

USER_AGENT = "tiktok-following-connector/0.1"
#: The encodings urllib3 can decode here (gzip and deflate, brotli or zstd when installed).
ACCEPT_ENCODING: str = urllib3.util.make_headers(accept_encoding=True)["accept-encoding"]


class Transport(Protocol):
    """What sends a POST and hands back its answer."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str],
             timeouts: Timeouts) -> Reply:
        """Send `body` to `url` with `headers`; the answer's body is left to read from the
        Reply. Raises PostFailed when no answer came."""
        ...


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
        """The failure urllib3 raised, or once retried the last one (MaxRetryError.reason),
        told in a few words."""
        errors = urllib3.exceptions
        cause = exc.reason if isinstance(exc, errors.MaxRetryError) else exc
        # Not any urllib3 TimeoutError: a refused connection, NewConnectionError, is one too.
        if (isinstance(cause, (errors.ReadTimeoutError, errors.ConnectTimeoutError))
                and not isinstance(cause, errors.NewConnectionError)):
            why = "timed out"
        else:
            text = str(exc).lower()
            why = next((says for word, says in _CAUSES if word in text), type(exc).__name__)
        # Refused, an unknown host (NewConnectionError is a ConnectTimeoutError), a connect
        # timeout or a TLS handshake refused: no connection was ever made.
        return cls(why, timed_out=why == "timed out",
                   no_connection=isinstance(cause, (errors.ConnectTimeoutError, errors.SSLError)))

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

    @classmethod
    def of(cls, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Reply:
        """An answer made up whole, as a test's transport gives one."""
        raw = urllib3.HTTPResponse(body=io.BytesIO(body), headers=headers, status=status,
                                   preload_content=False)
        return cls(status, raw.headers, raw)

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
            raise (PostFailed.past(self.seconds) if self._ended() else PostFailed.of(exc)) from None
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


class _Route(NamedTuple):
    """How POSTs to one URL go out: `send(method, target, **urlopen_kw)` (a pool's or a proxy
    manager's `urlopen`), `target` (the path, or the whole URL for a proxy), the Basic auth
    of the URL's `user:password@` (None: none), and what closes its connections."""

    send: Callable[..., Any]
    target: str
    auth: dict[str, str] | None
    close: Callable[[], None]


class HTTPTransport(contextlib.AbstractContextManager["HTTPTransport"]):
    """POSTs over urllib3 connection pools: one per URL, `pool_size` connections kept alive
    in it (more are opened when more POSTs are in flight, and closed after), `retry` on every
    POST. Thread-safe, as urllib3's pools are. A pool closed with `close` is opened again by
    the next POST.

    `trust_env`: whether the environment's proxy (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and
    NO_PROXY, as Python's urllib reads them) and CA bundle (REQUESTS_CA_BUNDLE,
    CURL_CA_BUNDLE) apply. Off unless asked for: a proxy would send loopback traffic astray
    and see the secrets in it.
    """

    def __init__(self, *, retry: Retry | int = 0, pool_size: int = 10,
                 trust_env: bool = False) -> None:
        self.retry = retry
        self.pool_size = pool_size
        self.trust_env = trust_env
        self._routes: dict[str, _Route] = {}
        self._limits: dict[Timeouts, urllib3.Timeout] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HTTPTransport(pool_size={self.pool_size}, trust_env={self.trust_env})"

    def post(self, url: str, body: bytes, headers: Mapping[str, str],
             timeouts: Timeouts) -> Reply:
        """The exchange, retries and body included, ends `timeouts.total` seconds from now
        however slowly the server answers; each read waits at most `timeouts.read`, a
        connection `timeouts.connect`."""
        route = self._routes.get(url) or self._route(url)
        if route.auth is not None and not any(k.lower() == "authorization" for k in headers):
            headers = {**route.auth, **headers}
        limits = self._limits.get(timeouts)
        if limits is None:
            limits = self._limits[timeouts] = urllib3.Timeout(connect=timeouts.connect,
                                                              read=timeouts.read)
        exchange = deadline.WATCHDOG.arm(timeouts.total)
        deadline.CURRENT.exchange = exchange
        try:
            resp = route.send("POST", route.target, body=body, headers=headers,
                              redirect=False, assert_same_host=False, preload_content=False,
                              decode_content=False, retries=self.retry, timeout=limits)
        except (deadline.DeadlinePassed, urllib3.exceptions.HTTPError, OSError) as exc:
            # Past the deadline, whatever the cut socket raised, the deadline is the cause.
            if exchange.end() or isinstance(exc, deadline.DeadlinePassed):
                raise PostFailed.past(timeouts.total) from None
            raise PostFailed.of(exc) from None
        finally:
            deadline.CURRENT.exchange = None
        return Reply(resp.status, resp.headers, resp, exchange, timeouts.total)

    def close(self) -> None:
        """Close every connection (a POST after this opens new ones)."""
        with self._lock:
            routes, self._routes = self._routes, {}
        for route in routes.values():
            route.close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _route(self, url: str) -> _Route:
        with self._lock:
            route = self._routes.get(url)
            if route is None:
                try:
                    route = self._routes[url] = self._new_route(url)
                except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                    raise PostFailed.of(exc) from None
            return route

    def _new_route(self, url: str) -> _Route:
        given = urllib3.util.parse_url(url)
        # `user:password@` goes as Basic auth, as browsers and requests send it, never in the
        # request line.
        auth = (urllib3.util.make_headers(basic_auth=_credentials(given.auth)) if given.auth
                else None)
        # The URL without its user:password@ and #fragment: what the request line may carry.
        parts = urllib3.util.Url(scheme=given.scheme, host=given.host, port=given.port,
                                 path=given.path, query=given.query)
        tls = self._tls_settings() if parts.scheme == "https" else {}
        proxy = _environment_proxy(parts) if self.trust_env else None
        if proxy is None:
            pool = urllib3.connection_from_url(parts.url, maxsize=self.pool_size, block=False,
                                               **tls)
            deadline.watch_pool(pool)
            return _Route(pool.urlopen, parts.request_uri, auth, pool.close)
        proxy_parts = urllib3.util.parse_url(proxy)
        manager = urllib3.ProxyManager(
            urllib3.util.Url(scheme=proxy_parts.scheme, host=proxy_parts.host,
                             port=proxy_parts.port).url,
            num_pools=1, maxsize=self.pool_size, block=False,
            proxy_headers=(urllib3.util.make_headers(
                proxy_basic_auth=_credentials(proxy_parts.auth)) if proxy_parts.auth else None),
            proxy_ssl_context=verifying_context() if proxy_parts.scheme == "https" else None,
            **tls)
        # The pool the manager's urlopen takes for this URL: the proxy's own for plain http,
        # a tunnel to the host for https.
        deadline.watch_pool(manager.connection_from_url(parts.url))
        return _Route(manager.urlopen, parts.url, auth, manager.clear)

    def _tls_settings(self) -> dict[str, Any]:
        bundle = self.trust_env and (os.environ.get("REQUESTS_CA_BUNDLE")
                                     or os.environ.get("CURL_CA_BUNDLE"))
        if bundle:  # as requests reads them: a file of certificates, or a folder of them
            where = "ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"
            return {"cert_reqs": "CERT_REQUIRED", where: bundle}
        return {"cert_reqs": "CERT_REQUIRED", "ssl_context": verifying_context()}


@functools.cache
def verifying_context() -> ssl.SSLContext:
    """The TLS settings of every https pool: urllib3's defaults (certificate required, host
    name checked, TLS 1.2 at least) trusting certifi's bundle, as requests does, whatever the
    system's own store holds (or lacks). Built once, on the first https URL: loading the
    bundle is the costly part, and a context made per connection would do it every time."""
    import certifi

    context = urllib3.util.create_urllib3_context()
    context.load_verify_locations(certifi.where())
    return context


def _environment_proxy(parts: urllib3.util.Url) -> str | None:
    """The proxy the environment sets for this URL (None: none, or NO_PROXY names it)."""
    from urllib.request import getproxies, proxy_bypass

    proxies = getproxies()
    proxy = proxies.get(parts.scheme or "http") or proxies.get("all")
    if not proxy:
        return None
    host = parts.host or ""
    if proxy_bypass(f"{host}:{parts.port}" if parts.port else host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _credentials(userinfo: str) -> str:
    """`user:password` of a URL, percent-decoded, for Basic auth."""
    user, _, password = userinfo.partition(":")
    return f"{unquote(user)}:{unquote(password)}"


#: What a failure's text says, in words without the URL (which may hold secrets).
_CAUSES = (("refused", "connection refused"), ("reset", "connection reset"),
           ("name or service not known", "unknown host"), ("nodename nor servname", "unknown host"),
           ("certificate", "TLS certificate rejected"), ("incompleteread", "incomplete response"),
           ("aborted", "connection aborted"), ("max retries exceeded", "retries exhausted"))
