"""Multi-poll trigger histories on cassettes (recorded from the stand-in; on replay no server
runs: tests/conftest.py).

The same page-1 request is sent on every poll; vcrpy plays each recorded answer once and in
order, so the history replays exactly as it was recorded.
"""

from __future__ import annotations

import pytest

import connector
from connector.core.config import RetryPolicy
from connector.standin import Fault

HANDLE = "alice"


def poll(creds, state, **inputs):
    return connector.run("new_account_followed", {"handle": HANDLE, "count": 10, **inputs},
                         credentials=creds, state=state, retry=RetryPolicy.no_wait())


@pytest.mark.vcr
def test_a_history_of_polls_emits_each_follow_once_in_the_fewest_requests(standin, creds):
    standin.add_account(HANDLE, 30)
    baseline = poll(creds, None)
    assert baseline.items == [] and baseline.meta["requests"] == 1
    standin.follow_many(HANDLE, 4)
    few = poll(creds, baseline.state)
    assert [i["uniqueId"] for i in few.items] == ["user31", "user32", "user33", "user34"]
    assert few.meta["requests"] == 1
    standin.follow_many(HANDLE, 12)
    many = poll(creds, few.state)
    assert [i["uniqueId"] for i in many.items] == [f"user{n}" for n in range(35, 47)]
    assert many.meta["requests"] == 2  # ceil((12 + 1) / 10)
    quiet = poll(creds, many.state)
    assert quiet.items == [] and quiet.meta["requests"] == 1


@pytest.mark.vcr
def test_a_404_mid_history_leaves_state_for_the_next_poll(standin, creds):
    standin.add_account(HANDLE, 30)
    baseline = poll(creds, None)
    standin.follow_many(HANDLE, 2)
    standin.inject(Fault(status=404))
    with pytest.raises(connector.NotFoundError, match="Following list not found for user"):
        poll(creds, baseline.state)
    after = poll(creds, baseline.state)
    assert [i["uniqueId"] for i in after.items] == ["user31", "user32"]
