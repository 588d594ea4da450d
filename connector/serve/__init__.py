"""`serve`: the runner protocol over HTTP, for runners that can call HTTP but not Python.

    GET  /healthz            liveness, no token needed
    GET  /v1/manifests       every manifest (GET /v1/manifests/KEY: one)
    POST /v1/run             an `invoke` request; the DumplingAI key in `Authorization: Bearer`
    POST /v1/auth/test       the connection test

`make_app()` is a plain WSGI application (embed it in any WSGI server); `serve()` runs it on
waitress (the serve extra: `pip install '.[serve]'` in a clone).
"""

from __future__ import annotations

from .app import make_app
from .server import serve

__all__ = ["make_app", "serve"]
