"""Running the app on waitress: a production WSGI server in pure Python, an optional extra.

Loopback by default. Listening anywhere else needs the shared token, because the service
spends the key it is given (or its own). Bounded: `threads` requests run at once, at most
`connection_limit` connections are open (more wait in the listen backlog), and a body larger
than `max_body` is refused unread (413).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from ..core.config import is_loopback
from ..core.errors import ConfigurationError
from ..protocol import MAX_REQUEST_BYTES
from .app import TOKEN_ENV, make_app

log = logging.getLogger("connector.serve")
DEFAULT_PORT = 8790


def serve(*, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None,
          threads: int = 4, connection_limit: int = 100, max_body: int = MAX_REQUEST_BYTES,
          ready: Any = None, **run_options: Any) -> None:
    """Serve until interrupted. `token` defaults to $TIKTOK_FOLLOWING_SERVE_TOKEN; it is
    required when `host` is not loopback. `ready(url)` is called once listening."""
    server = create_server(host=host, port=port, token=token, threads=threads,
                           connection_limit=connection_limit, max_body=max_body, **run_options)
    log.warning("serving the connector on %s (%s)", server.url,
                "shared token required" if server.token else "loopback, no token")
    if ready is not None:
        ready(server.url)
    server.run()


class Server:
    """A bound waitress server: `run()` serves in the calling thread until `stop()` (from
    any thread) or Ctrl-C, then closes every socket in that same thread."""

    def __init__(self, waitress_server: Any, token: str | None, poll_interval: float) -> None:
        self._server = waitress_server
        self._map = getattr(waitress_server, "_map", None) or waitress_server.map
        self._stopping = threading.Event()
        self.poll_interval = poll_interval
        self.token = token
        if hasattr(waitress_server, "effective_host"):
            host, port = waitress_server.effective_host, waitress_server.effective_port
        else:  # a name that resolved to several addresses: the first one
            host, port = waitress_server.effective_listen[0][:2]
        #: Where it listens, e.g. http://127.0.0.1:8790.
        self.url = f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"

    def run(self) -> None:
        from waitress import wasyncore

        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=self.poll_interval, map=self._map, count=1)
        except KeyboardInterrupt:
            pass
        finally:
            self._server.close()
            self._server.task_dispatcher.shutdown()
            wasyncore.close_all(self._map)

    def stop(self) -> None:
        self._stopping.set()


def create_server(*, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                  token: str | None = None, threads: int = 4, connection_limit: int = 100,
                  max_body: int = MAX_REQUEST_BYTES, poll_interval: float = 1.0,
                  **run_options: Any) -> Server:
    """A bound Server, not yet running; for tests and embedding. `poll_interval`: how soon
    `run()` notices a `stop()`."""
    try:
        from waitress.server import create_server as waitress_server
    except ImportError:
        raise ConfigurationError("serve needs waitress: pip install "
                                 "'tiktok-following-connector[serve]'", field="serve") from None
    token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    if token is not None and len(token.strip()) < 16:
        raise ConfigurationError(f"the shared token ({TOKEN_ENV}) is shorter than 16 "
                                 "characters; use a long random one, e.g. from "
                                 "`openssl rand -hex 24`", field="token")
    if not is_loopback(host.strip("[]")) and token is None:
        raise ConfigurationError(f"serve listens on {host}, beyond this machine, only with a "
                                 f"shared token: set {TOKEN_ENV} (callers send it in the "
                                 "X-Connector-Token header)", field="host")
    app = make_app(token=token, max_body=max_body, **run_options)
    try:
        server = waitress_server(
            app, host=host, port=port, threads=threads, connection_limit=connection_limit,
            # waitress refuses a larger declared body itself (413, plain text), unread.
            max_request_body_size=max_body, channel_timeout=120,
            clear_untrusted_proxy_headers=True, ident="tiktok-following",
            expose_tracebacks=False, asyncore_loop_timeout=poll_interval)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port} ({exc.strerror}); pick "
                                 "another --port, or 0 for any free one", field="port") from None
    return Server(server, token, poll_interval)
