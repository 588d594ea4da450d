"""Running the app on waitress: a production WSGI server in pure Python, an optional extra.

Loopback by default. Listening anywhere else needs the shared token, because the service
spends the key it is given (or its own). Bounded, so that slow clients and slow upstreams
cannot take it down:

- Connections. waitress reads requests in one thread (poll(), so no select() limit on
  descriptors) and hands only whole requests to worker threads, so a slow client holds a
  connection, never a thread. But waitress closes a connection only after `channel_timeout`
  seconds of *silence*: a client trickling a byte now and then keeps it forever, and
  `connection_limit` of those stop the service accepting anyone (waitress has no setting for
  a request's total time). So `Server.run`, which drives waitress's loop itself, also closes
  every connection whose request has not arrived whole within `request_timeout` seconds of
  its first byte, the way waitress closes idle ones (its `will_close` flag). Idle connections
  are closed after the same `request_timeout` of silence (waitress's `channel_timeout`).
- Threads. `threads` requests call an upstream at once, a bounded number more wait
  (serve/limits.py); waitress runs more threads than that, so /healthz, the manifests and
  refusals always find one. Every upstream exchange has its deadline (Timeouts.total).
- A body larger than `max_body` is refused unread (413).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.config import SERVE_TOKEN_ENV, host_port, install_extra, is_loopback
from ..core.errors import ConfigurationError
from ..protocol import MAX_REQUEST_BYTES
from .app import TOKEN_HEADER, make_app
from .limits import UpstreamSlots

log = logging.getLogger("connector.serve")
DEFAULT_PORT = 8790
DEFAULT_CONNECTION_LIMIT = 1000
#: Seconds a client has to send a request whole, from its first byte; and the most a
#: connection may stay silent, idle, before it is closed.
DEFAULT_REQUEST_TIMEOUT = 30.0
#: Requests for the service's own upstream that may wait for a slot, per slot, and how long.
WAITING_PER_SLOT = 4
WAIT_FOR_SLOT = 60.0
#: Worker threads kept beyond the slots and the waiting room, for the routes that call nothing.
SPARE_THREADS = 2
#: How often, at most, `Server.run` looks for requests that take too long to arrive.
SWEEP_EVERY = 0.25


def serve(*, ready: Callable[[str], Any] | None = None, **options: Any) -> None:
    """Serve until interrupted; `options` are create_server's (host, port, token, threads,
    connection_limit, request_timeout, max_body, and connector.run's retry and timeouts).
    `token` defaults to $TIKTOK_FOLLOWING_SERVE_TOKEN; it is required when `host` is not
    loopback. `ready(url)` is called once listening."""
    server = create_server(**options)
    log.warning("serving the connector on %s (%s)", server.url,
                "shared token required" if server.token else "loopback, no token")
    if ready is not None:
        ready(server.url)
    server.run()


class Server:
    """A bound waitress server: `run()` serves in the calling thread until `stop()` (from
    any thread) or Ctrl-C, then closes every socket in that same thread."""

    def __init__(self, waitress_server: Any, socket_map: dict[int, Any], token: str | None,
                 poll_interval: float, request_timeout: float) -> None:
        self._server = waitress_server
        self._map = socket_map
        self._stopping = threading.Event()
        self.poll_interval = poll_interval
        self.request_timeout = request_timeout
        self.token = token
        #: Connections receiving a request: the request's parser, and when it was first seen.
        self._receiving: dict[int, tuple[Any, float]] = {}
        if hasattr(waitress_server, "effective_host"):
            host, port = waitress_server.effective_host, waitress_server.effective_port
        else:  # a name that resolved to several addresses: the first one
            host, port = waitress_server.effective_listen[0][:2]
        #: Where it listens, e.g. http://127.0.0.1:8790.
        self.url = f"http://{host_port(host, port)}"

    def run(self) -> None:
        from waitress import wasyncore

        next_sweep = 0.0
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=self.poll_interval, map=self._map, count=1,
                               use_poll=True)
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + SWEEP_EVERY
                    self._cut_slow_requests(now)
        except KeyboardInterrupt:
            pass
        finally:
            self._server.close()
            self._server.task_dispatcher.shutdown()
            wasyncore.close_all(self._map)

    def stop(self) -> None:
        self._stopping.set()

    def _cut_slow_requests(self, now: float) -> None:
        """Close the connections whose request has been arriving for longer than
        `request_timeout`, however steadily its bytes trickle in. A request is told from the
        next by its parser (waitress's `channel.request`, None between requests)."""
        from waitress.channel import HTTPChannel

        receiving: dict[int, tuple[Any, float]] = {}
        cut = 0
        for channel in list(self._map.values()):
            parser = getattr(channel, "request", None)
            if parser is None or not isinstance(channel, HTTPChannel) or channel.will_close:
                continue
            seen = self._receiving.get(id(channel))
            if seen is None or seen[0] is not parser:
                seen = (parser, now)
            receiving[id(channel)] = seen
            if now - seen[1] > self.request_timeout:
                # What waitress's own maintenance does to an idle connection: its loop closes
                # it on the next pass.
                channel.will_close = True
                cut += 1
        self._receiving = receiving
        if cut:
            log.warning("closed %d connection%s whose request took longer than %gs to arrive",
                        cut, "" if cut == 1 else "s", self.request_timeout)


def create_server(*, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                  token: str | None = None, threads: int = 4,
                  connection_limit: int = DEFAULT_CONNECTION_LIMIT,
                  request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                  max_body: int = MAX_REQUEST_BYTES, poll_interval: float = 1.0,
                  **run_options: Any) -> Server:
    """A bound Server, not yet running; for tests and embedding. `threads`: requests that
    call an upstream at once. `poll_interval`: how soon `run()` notices a `stop()`. Raises
    the process's open-files limit when `connection_limit` needs it and the hard limit
    allows, else serves fewer connections (and says so)."""
    try:
        from waitress.server import create_server as waitress_server
    except ImportError:
        raise ConfigurationError(f"serve needs waitress: {install_extra('serve', 'waitress')}",
                                 field="serve") from None
    token = token if token is not None else (os.environ.get(SERVE_TOKEN_ENV) or None)
    if token is not None and len(token.strip()) < 16:
        raise ConfigurationError(f"the shared token ({SERVE_TOKEN_ENV}) is shorter than 16 "
                                 "characters; use a long random one, e.g. from "
                                 "`openssl rand -hex 24`", field="token")
    if not is_loopback(host.strip("[]")) and token is None:
        raise ConfigurationError(f"serve listens on {host}, beyond this machine, only with a "
                                 f"shared token: set {SERVE_TOKEN_ENV} (callers send it in the "
                                 f"{TOKEN_HEADER} header)", field="host")
    slots = UpstreamSlots(threads, waiting=WAITING_PER_SLOT * threads, wait_s=WAIT_FOR_SLOT)
    workers = slots.slots + slots.waiting + SPARE_THREADS
    app = make_app(token=token, max_body=max_body, slots=slots, **run_options)
    socket_map: dict[int, Any] = {}
    try:
        server = waitress_server(
            app, map=socket_map, host=host, port=port, threads=workers,
            connection_limit=_connections_that_fit(connection_limit, workers),
            # waitress refuses a larger declared body itself (413, plain text), unread.
            max_request_body_size=max_body,
            # Idle connections: closed after this much silence, looked for every second.
            channel_timeout=max(1, math.ceil(request_timeout)), cleanup_interval=1,
            asyncore_use_poll=True, clear_untrusted_proxy_headers=True,
            ident="tiktok-following", expose_tracebacks=False,
            asyncore_loop_timeout=poll_interval)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port} ({exc.strerror}); pick "
                                 "another --port, or 0 for any free one", field="port") from None
    return Server(server, socket_map, token, poll_interval, request_timeout)


def _connections_that_fit(connections: int, threads: int) -> int:
    """`connections`, if the process may open enough files for them besides its threads'
    upstream sockets and its own files (raising its soft limit up to the hard one when it
    must), else as many as fit. Past the limit, waitress's accept() would fail in a loop."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return connections
    other = 2 * threads + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= connections + other:
        return connections
    want = connections + other if hard == resource.RLIM_INFINITY else min(connections + other,
                                                                          hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    fit = min(connections, max(1, soft - other))
    if fit < connections:
        log.warning("serving at most %d connections, not %d: the process may open %d files "
                    "(ulimit -n)", fit, connections, soft)
    return fit
