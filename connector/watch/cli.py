"""The `watch` and `outbox` commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_commands(sub: Any, state_db_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    pass
