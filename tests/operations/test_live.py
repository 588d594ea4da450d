"""Confirming the cursor inference against the live API (CONTRACT 1).

Skipped unless a real key is given and cassettes are being recorded:

    DUMPLINGAI_API_KEY=sk_... pytest --record-mode=rewrite -m live

Once recorded, the cassettes under cassettes/test_live/ replay offline like the others and
keep confirming that page 2 is asked for with page 1's `minCursor` and returns older follows.
"""

from __future__ import annotations

import json
import os

import pytest

import connector
from tests.support import ROOT

HANDLE = os.environ.get("LIVE_HANDLE", "stoolpresidente")
CASSETTES = ROOT / "cassettes" / "test_live"


def _live_or_recorded(request, name: str) -> dict:
    recording = request.config.getoption("--record-mode") != "none"
    if (CASSETTES / f"{name}.yaml").exists() and not recording:
        return {"apiKey": "REDACTED"}
    if not (recording and os.environ.get("DUMPLINGAI_API_KEY")):
        pytest.skip("needs DUMPLINGAI_API_KEY and --record-mode=rewrite, or a recorded cassette")
    return {"apiKey": os.environ["DUMPLINGAI_API_KEY"]}


@pytest.mark.live
@pytest.mark.vcr
def test_page_two_is_asked_for_with_page_ones_min_cursor(request, vcr):
    creds = _live_or_recorded(request, request.node.name)
    result = connector.run(
        "get_tiktok_user_following",
        {"handle": HANDLE, "maxPages": 2, "count": 10},
        credentials=creds,
    )
    sent = [json.loads(r.body) for r in vcr.requests]
    page_one = json.loads(vcr.responses[0]["body"]["string"])
    assert "minTime" not in sent[0]
    assert sent[1]["minTime"] == page_one["minCursor"]
    assert result.meta["pages"] == 2
    ids = [item["id"] for item in result.items]
    assert len(ids) == len(set(ids)), "page 2 repeated page 1"
