"""The `serve` and `auth test` commands. Python equivalents: `connector.serve.serve()` (or
`connector.serve.make_app()` in any WSGI server) and `connector.check_credentials()`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from ..core.config import env_api_key, install_extra
from ..core.errors import InputError
from .common import Parser, RedactingFormatter, credentials_for, say, seconds, whole_number
from .options import add_globals, examples


def add_commands(sub: Any) -> None:
    c = sub.add_parser(
        "serve", cmd_serve, help="the invoke protocol over HTTP, for n8n and other HTTP runners",
        description="Serve GET /healthz, GET /v1/manifests, POST /v1/run (an invoke request; "
                    "the DumplingAI key in 'Authorization: Bearer') and POST /v1/auth/test. "
                    "Needs the serve extra: " + install_extra("serve", "waitress") + ".",
        epilog="Without a Bearer key, requests use $DUMPLINGAI_API_KEY of the service. "
               "Listening beyond loopback needs $TIKTOK_FOLLOWING_SERVE_TOKEN, which callers "
               "send in the X-Connector-Token header.\n\n"
               + examples("tiktok-following serve", "tiktok-following serve --port 0"))
    c.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; others need a token)")
    c.add_argument("--port", type=whole_number(0, 65535), default=8790,
                   help="port (default 8790; 0 for any free one)")
    c.add_argument("--threads", type=whole_number(1, 64), default=4,
                   help="requests that call DumplingAI at once (1 to 64; default: 4); up to "
                        "four times as many wait their turn, and a baseUrl the caller picks gets "
                        "half of them")
    c.add_argument("--connection-limit", type=whole_number(1, 10000), default=1000,
                   help="open connections at most (1 to 10000; default: 1000)")
    c.add_argument("--request-timeout", type=seconds(0, 3600), default=30.0, metavar="SECONDS",
                   help="a client must send each request whole within this many seconds, and "
                        "an idle connection is closed after as many (more than 0, at most 3600; "
                        "default: 30)")

    c = sub.add_parser("auth", help="check credentials")
    auth = c.add_subparsers(dest="auth_command", required=True, metavar="COMMAND",
                            parser_class=Parser)
    t = auth.add_parser(
        "test", help="prove the API key, at no cost",
        description="Prove the API key with one request the endpoint refuses for its empty "
                    "handle: 0 credits. With --handle, one real one-account read instead "
                    "(10 credits), which proves it beyond doubt.",
        epilog=examples("tiktok-following auth test",
                        "tiktok-following auth test --handle busy_demo --sandbox"))
    add_globals(t, sub=True)
    t.add_argument("--handle", help="read one account of this handle's list (10 credits)")
    t.set_defaults(func=cmd_auth_test)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..serve.server import serve

    if args.sandbox or args.base_url is not None:
        # Each request is answered with its own credentials (or the service's environment);
        # a global option would be ignored silently.
        raise InputError(f"serve does not take {'--sandbox' if args.sandbox else '--base-url'}: "
                         "set DUMPLINGAI_BASE_URL in the service's environment, or send baseUrl "
                         "in each request's credentials", field="--base-url")
    # The service's own key, refused at start when it is only whitespace (not at each call).
    env_api_key()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(args.secrets, "%(asctime)s %(message)s"))
    own = logging.getLogger("connector.serve")
    own.addHandler(handler)
    own.setLevel(logging.INFO)
    own.propagate = False
    try:
        serve(host=args.host, port=args.port, threads=args.threads,
              connection_limit=args.connection_limit, request_timeout=args.request_timeout,
              ready=lambda url: say(f"ready: {url} (Ctrl-C stops)"))
    finally:
        own.removeHandler(handler)
        own.propagate = True
    return 0


def cmd_auth_test(args: argparse.Namespace) -> int:
    from ..api import check_credentials

    with credentials_for(args) as creds:
        result = check_credentials(creds, handle=args.handle)
    print(json.dumps(result))
    say(f"ok: {result['message']}; {result['creditsUsed']} credits", args.secrets)
    return 0

