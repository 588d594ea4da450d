"""Confirming the `total` inference against the live API (docs/unfollows.md).

Skipped unless a real key is given and cassettes are being recorded:

    DUMPLINGAI_API_KEY=sk_... LIVE_SMALL_HANDLE=someone pytest --record-mode=rewrite -m live

LIVE_SMALL_HANDLE should follow a few hundred accounts at most (the whole list is read: about
one request per 30 of them). Once recorded, the cassette replays offline like the others.
"""

from __future__ import annotations

import json
import os

import pytest

import connector
from tests.support import ROOT

HANDLE = os.environ.get("LIVE_SMALL_HANDLE", "")
CASSETTES = ROOT / "cassettes" / "test_unfollow_live"


@pytest.mark.live
@pytest.mark.vcr
def test_total_is_the_number_of_accounts_the_whole_list_shows(request):
    name = request.node.name
    recording = request.config.getoption("--record-mode") != "none"
    cassette = CASSETTES / f"{name}.yaml"
    handle = HANDLE
    if cassette.exists() and not recording:
        import yaml

        first = yaml.safe_load(cassette.read_text(encoding="utf-8"))["interactions"][0]
        handle = json.loads(first["request"]["body"])["handle"]  # replay what was recorded
        creds = {"apiKey": "REDACTED"}
    elif recording and os.environ.get("DUMPLINGAI_API_KEY") and HANDLE:
        creds = {"apiKey": os.environ["DUMPLINGAI_API_KEY"]}
    else:
        pytest.skip("needs DUMPLINGAI_API_KEY, LIVE_SMALL_HANDLE and --record-mode=rewrite, "
                    "or a recorded cassette")
    result = connector.run("account_unfollowed", {"handle": handle}, credentials=creds)
    assert result.meta["fullRead"] is True and result.meta["atDepthCap"] is False
    # The inference: the count is the following count, the list shows every account in it.
    assert result.meta["total"] == result.meta["tracked"]
