"""The stand-in: a local, scriptable imitation of DumplingAI's following endpoint, on loopback.

    with StandIn() as standin:                 # or StandIn(demo=True) for accounts that move
        standin.add_account("alice", 40)
        standin.inject(*script("502*2, ok"))   # the next requests misbehave
        ...                                     # point a client at standin.url

The CLI's `sandbox` command and `--sandbox` option run it; tests and benchmarks drive it.
"""

from __future__ import annotations

from .faults import (
    EMPTY_ADVANCING,
    EMPTY_PAGE,
    ENDPOINT,
    ERROR_500,
    ERROR_502,
    ERROR_503,
    FAR_CURSOR,
    HTML_502,
    MALFORMED,
    NAMED_FAULTS,
    OK,
    RATE_LIMITED,
    RESET,
    STALL,
    TRUNCATE,
    WRONG_SHAPE,
    Fault,
    script,
)
from .limits import CREDITS_PER_CALL
from .server import RecordedRequest, StandIn, serve
from .world import DEMO_ACCOUNTS, SCRIPTED_EPOCH

__all__ = [
    "CREDITS_PER_CALL", "DEMO_ACCOUNTS", "EMPTY_ADVANCING", "EMPTY_PAGE", "ENDPOINT",
    "ERROR_500", "ERROR_502", "ERROR_503", "FAR_CURSOR", "HTML_502", "MALFORMED",
    "NAMED_FAULTS", "OK", "RATE_LIMITED", "RESET", "SCRIPTED_EPOCH", "STALL", "TRUNCATE",
    "WRONG_SHAPE", "Fault", "RecordedRequest", "StandIn", "script", "serve",
]
