"""Running the app on waitress: a production WSGI server in pure Python, an optional extra.

Loopback by default. Listening anywhere else needs the shared token, because the service
spends the key it is given (or its own). Bounded: `threads` requests run at once, at most
`connection_limit` connections are open (more wait in the listen backlog), and a body larger
than `max_body` is refused unread (413).
"""

from __future__ import annotations

import logging
import os
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
    url = server_url(server)
    log.warning("serving the connector on %s (%s)", url,
                "shared token required" if server.application_token else "loopback, no token")
    if ready is not None:
        ready(url)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def create_server(*, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                  token: str | None = None, threads: int = 4, connection_limit: int = 100,
                  max_body: int = MAX_REQUEST_BYTES, **run_options: Any) -> Any:
    """A bound, not yet running waitress server (`.run()`, `.close()`); for tests and
    embedding."""
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
    if not _loopback(host) and token is None:
        raise ConfigurationError(f"serve listens on {host}, beyond this machine, only with a "
                                 f"shared token: set {TOKEN_ENV} (callers send it in the "
                                 "X-Connector-Token header)", field="host")
    app = make_app(token=token, max_body=max_body, **run_options)
    try:
        server = waitress_server(
            app, host=host, port=port, threads=threads, connection_limit=connection_limit,
            max_request_body_size=max_body, channel_timeout=120, clear_untrusted_proxy_headers=True,
            ident="tiktok-following", expose_tracebacks=False)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port} ({exc.strerror}); pick "
                                 "another --port, or 0 for any free one", field="port") from None
    server.application_token = token
    return server


def server_url(server: Any) -> str:
    """Where the server listens (the first address, when a name resolved to several)."""
    if hasattr(server, "effective_host"):
        host, port = server.effective_host, server.effective_port
    else:
        host, port = server.effective_listen[0][:2]
    return f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"


def _loopback(host: str) -> bool:
    return is_loopback(host.strip("[]"))
