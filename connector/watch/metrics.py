"""Prometheus metrics of a watch: `watch --metrics HOST:PORT`, or in Python

    with Metrics() as metrics, Watcher(handles, url, metrics=metrics) as w:
        metrics.serve("127.0.0.1:9464")      # http://127.0.0.1:9464/metrics
        w.run()

A Watcher tells its metrics of each poll and delivery as it ends (live); a WatcherGroup's
children cannot, so `WatcherGroup(..., metrics=)` feeds them each interval's summary instead
(`observe`): the same figures, once an interval.

Each Metrics has a registry of its own, never prometheus_client's global one: two watchers in
one process (and the tests) do not collide. prometheus_client is an extra (`metrics`), imported
when a Metrics is made, so `import connector` and a watch without `--metrics` never load it.
No metric is labelled by handle: a fleet can have thousands, and each label value is a series
Prometheus keeps (`status` and the outcomes are a handful of values each).
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..core.config import host_port, install_extra, is_loopback
from ..core.errors import ConfigurationError, InputError
from ..operations import CREDITS_PER_REQUEST
from ..storage import Backlog
from .summary import BudgetLevel, CycleSummary, HandlePoll

log = logging.getLogger("connector.watch")

PREFIX = "tiktok_following"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464
#: Seconds from detection to delivery: well under a second when the receiver is up (events go
#: out as their poll commits), up to the outbox's backoff cap and beyond when it is down.
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)
#: The outcomes of a poll (HandlePoll.result) and of a delivery attempt, all shown from the
#: start at 0 so that rate() and alerts see them before the first one happens.
POLL_RESULTS = ("ok", "failed", "dropped")
DELIVERY_RESULTS = ("delivered", "failed", "parked")
#: A handle this watch has not polled yet (or that another watcher sharing the database
#: polls): its status is not known here.
UNKNOWN = "unknown"
#: A scrape that stops reading is dropped after this long, so stopping never waits on it.
SCRAPE_TIMEOUT = 10.0
#: The budget's gauges (`set_budget`), each `{PREFIX}_budget_{name}_credits`.
BUDGET_GAUGES = (("available", "Credits the budget holds now (--budget)"),
                 ("held", "Credits reserved by polls in flight (--budget)"),
                 ("capacity", "The most credits the budget can hold (--budget)"))


def parse_address(text: str) -> tuple[str, int]:
    """`PORT`, `HOST:PORT` or `[IPv6]:PORT` as (host, port); a port alone listens on loopback.
    Port 0 takes any free port (`Metrics.address` says which)."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, text
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address goes in brackets: [::1]:9464
    if not host:
        raise InputError(f"--metrics expects PORT or HOST:PORT (e.g. 9464, 127.0.0.1:9464 or "
                         f"[::1]:9464), got {text[:60]!r}", field="metrics")
    if not port.isdigit() or int(port) > 65535:
        raise InputError(f"--metrics: the port must be a number from 0 to 65535 (e.g. "
                         f"127.0.0.1:{DEFAULT_PORT}), got {port[:20]!r}", field="metrics")
    return host, int(port)


class Metrics:
    """The figures of one watch (or one WatcherGroup), in a registry of their own."""

    def __init__(self, handles: Iterable[str] = ()) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError:
            raise ConfigurationError("metrics need prometheus_client: "
                                     + install_extra("metrics", "prometheus_client")) from None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(f"{PREFIX}_requests", "HTTP requests sent to the API by "
                                "polls, failed ones and retries included", registry=r)
        self.credits = Counter(f"{PREFIX}_spent_credits", "Credits the API charged for "
                               "polls: 10 for each successful request", registry=r)
        self.polls = Counter(f"{PREFIX}_polls", "Polls of a handle (each watched trigger "
                             "together), by result: ok, failed, or dropped (another watcher "
                             "sharing the database saved its poll first)", ["result"],
                             registry=r)
        self.follows = Counter(f"{PREFIX}_follows_found", "New follows detected (each an "
                               "event in the outbox)", registry=r)
        self.unfollows = Counter(f"{PREFIX}_unfollows_found", "Unfollows detected (with "
                                 "--events unfollowed)", registry=r)
        self.deliveries = Counter(f"{PREFIX}_deliveries", "Webhook POSTs, by result: "
                                  "delivered (2xx), failed (tried again later), parked "
                                  "(failed its last attempt)", ["result"], registry=r)
        self.delay = Histogram(f"{PREFIX}_delivery_delay_seconds", "Seconds from an event's "
                               "detection (its detectedAt) to its 2xx delivery",
                               buckets=DELAY_BUCKETS, registry=r)
        self.outbox = Gauge(f"{PREFIX}_outbox_events", "Events in the outbox of this watch's "
                            "handles, by state: pending (to be delivered) or parked (failed "
                            "every attempt; `outbox retry` sends them again)", ["state"],
                            registry=r)
        self.handles = Gauge(f"{PREFIX}_handles", "Handles watched, by the status of their "
                             "last poll here (ok, failing, unknown: not polled here yet)",
                             ["status"], registry=r)
        #: The budget's gauges, made once there is one (a 0 would read as an empty budget).
        self._budget: list[Gauge] = []
        for metric, values in ((self.polls, POLL_RESULTS), (self.deliveries, DELIVERY_RESULTS),
                               (self.outbox, ("pending", "parked"))):
            for value in values:
                metric.labels(value)
        self._lock = threading.Lock()
        #: Each handle's status as this watch last saw it.
        self._status: dict[str, str] = {}
        #: The statuses shown so far, in the order first seen.
        self._shown: dict[str, None] = {}
        self._serving: tuple[_Server, threading.Thread] | None = None
        self.watching(handles)

    # What a watch tells it

    def watching(self, handles: Iterable[str]) -> None:
        """The handles watched: each `unknown` until its first poll here."""
        with self._lock:
            for handle in handles:
                self._status.setdefault(handle, UNKNOWN)
            self._show_statuses()

    def record_poll(self, outcome: HandlePoll) -> None:
        """One poll of a handle, as it ended (a Watcher calls this)."""
        self.requests.inc(outcome.requests)
        self.credits.inc(outcome.pages * CREDITS_PER_REQUEST)
        result = outcome.result
        if result is None:
            return
        self.polls.labels(result).inc()
        if result == "ok":
            meta = outcome.meta or {}
            self.follows.inc(meta.get("newFollows", 0))
            self.unfollows.inc(meta.get("unfollows", 0))
        if result != "dropped":
            status = outcome.health or ("ok" if result == "ok" else "failing")
            with self._lock:
                # Counted again only when a status changes: not every poll of thousands.
                if self._status.get(outcome.handle) != status:
                    self._status[outcome.handle] = status
                    self._show_statuses()

    def record_delivery(self, result: str, delay: float | None = None) -> None:
        """One webhook POST: `delivered` (with its delay, when known), `failed` or `parked`."""
        self.deliveries.labels(result).inc()
        if delay is not None:
            self.delay.observe(delay)

    def record_backlog(self, backlog: Backlog) -> None:
        """The outbox of the watched handles, as just counted."""
        self.outbox.labels("pending").set(backlog.pending)
        self.outbox.labels("parked").set(backlog.parked)

    def observe(self, summary: CycleSummary) -> None:
        """One interval's summary, for a watch that cannot tell of each poll (a WatcherGroup's
        children). Do not also feed it polls: they would count twice."""
        for result, count in summary.polls.items():
            self.polls.labels(result).inc(count)
        self.requests.inc(summary.requests)
        self.credits.inc(summary.credits)
        self.follows.inc(summary.new_follows)
        self.unfollows.inc(summary.unfollows or 0)
        d = summary.delivery
        for result, count in (("delivered", d.delivered), ("failed", d.failed - d.parked),
                              ("parked", d.parked)):
            self.deliveries.labels(result).inc(count)
        for delay in d.delays:
            self.delay.observe(delay)
        self.record_backlog(Backlog(summary.pending, summary.parked, None))
        if summary.bucket is not None:  # the bucket the processes share, as last read
            self.set_budget(summary.bucket)
        with self._lock:
            # The health a poll said (a 404 is `hidden`, as a single watch shows it).
            health = summary.health
            self._status.update({h: health.get(h, "ok") for h in summary.polled})
            self._status.update({h: health.get(h, "failing") for h in summary.failed})
            self._show_statuses()

    def set_handle_statuses(self, counts: Mapping[str, int]) -> None:
        """How many handles have each status; a status shown before and missing now is 0."""
        self._shown.update(dict.fromkeys(counts))
        for status in self._shown:
            self.handles.labels(status).set(counts.get(status, 0))

    def set_budget(self, bucket: BudgetLevel) -> None:
        """A budget's bucket: credits in hand, credits held by polls in flight, its capacity."""
        with self._lock:
            fresh = not self._budget
            if fresh:
                from prometheus_client import Gauge

                self._budget = [Gauge(f"{PREFIX}_budget_{name}_credits", text, registry=None)
                                for name, text in BUDGET_GAUGES]
            values = bucket.level, bucket.held, bucket.capacity
            for gauge, value in zip(self._budget, values, strict=True):
                gauge.set(value)
                if fresh:  # registered once it has its value: a scrape never reads a 0
                    self.registry.register(gauge)

    def _show_statuses(self) -> None:
        self.set_handle_statuses(Tally(self._status.values()))

    # Serving

    def serve(self, address: str | tuple[str, int]) -> Metrics:
        """Serve /metrics on `address` (`PORT`, `HOST:PORT`, or (host, port)) in a thread,
        until `close()`. Anything but loopback must be asked for: the endpoint has no auth."""
        from prometheus_client import make_wsgi_app

        host, port = parse_address(address) if isinstance(address, str) else address
        if self._serving is not None:
            raise RuntimeError("these metrics are already served")
        try:
            family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                        flags=socket.AI_PASSIVE)[0][0]
        except socket.gaierror as exc:
            raise InputError(f"--metrics: cannot listen on {host!r}: {exc.strerror}; give an "
                             f"address of this machine, e.g. 127.0.0.1:{port or DEFAULT_PORT}",
                             field="metrics") from None
        server_class = type("_Server", (_Server,), {"address_family": family})
        try:
            server = make_server(host, port, make_wsgi_app(self.registry), server_class,
                                 handler_class=_QuietHandler)
        except OSError as exc:
            raise InputError(_bind_error(host, port, exc), field="metrics") from None
        thread = threading.Thread(target=server.serve_forever, name="watch-metrics",
                                  kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        self._serving = server, thread
        if not is_loopback(host):
            log.warning("metrics served on %s to anyone who can reach it: the endpoint has no "
                        "authentication", self.url)
        return self

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) served on, the port as bound (port 0 asks for any free one)."""
        if self._serving is None:
            return None
        host, port = self._serving[0].server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str | None:
        if self.address is None:
            return None
        host, port = self.address
        return f"http://{host_port(host, port)}/metrics"

    def close(self) -> None:
        """Stop serving, and wait for the server's threads (a scrape under way ends first)."""
        serving, self._serving = self._serving, None
        if serving is not None:
            server, thread = serving
            server.shutdown()
            server.server_close()
            thread.join()

    def __enter__(self) -> Metrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Server(ThreadingMixIn, WSGIServer):
    """One thread a scrape; `server_close` waits for those under way (socketserver's default)."""


class _QuietHandler(WSGIRequestHandler):
    """No line on stderr for each scrape; a scraper that stops reading is cut off."""

    timeout = SCRAPE_TIMEOUT
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _bind_error(host: str, port: int, exc: OSError) -> str:
    where = host_port(host, port)
    if exc.errno == errno.EADDRINUSE:
        return (f"--metrics {where}: the port is in use (another watch, or another exporter); "
                f"give another port, e.g. --metrics {host if ':' not in host else f'[{host}]'}:"
                f"{port + 1 if 0 < port < 65535 else DEFAULT_PORT + 1}")
    if exc.errno == errno.EACCES:
        return (f"--metrics {where}: not allowed to listen there (ports below 1024 need "
                f"privileges); give a port from 1024 up, e.g. --metrics {DEFAULT_PORT}")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"--metrics {where}: {host} is not an address of this machine; give one that "
                f"is, e.g. --metrics 127.0.0.1:{port or DEFAULT_PORT}")
    return f"--metrics {where}: cannot listen there ({exc.strerror or exc})"

