"""Option helpers shared by the CLI's command modules (`cli.py`, `watch/cli.py`).

They live apart from `cli.py` so command modules never import the CLI entry point.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .core.config import API_KEY_ENV


@contextmanager
def credentials_for(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Credentials from $DUMPLINGAI_API_KEY and --base-url; with --sandbox, a demo stand-in
    for the duration of the command."""
    if args.sandbox:
        from .sandbox import StandIn

        # Anchored to the hour so separate commands see the same demo accounts.
        with StandIn(demo=True, demo_epoch=time.time() // 3600 * 3600) as standin:
            yield {"apiKey": standin.api_key, "baseUrl": standin.url}
        return
    creds: dict[str, Any] = {}
    if os.environ.get(API_KEY_ENV):
        creds["apiKey"] = os.environ[API_KEY_ENV]
    if args.base_url:
        creds["baseUrl"] = args.base_url
    yield creds


def state_db_arg(parser: argparse.ArgumentParser, default_help: str | None = None) -> None:
    """The --state-db option, the same on every command that keeps state."""
    parser.add_argument(
        "--state-db", metavar="PATH",
        help="SQLite state file (default: " + (default_help or
             "$TIKTOK_FOLLOWING_STATE_DB, else the user data dir") + ")")
