"""Backing off hidden and failing handles (watch/backoff.py): 1, 2, 4 ... intervals up to a
day, reported once when the status changes, and not for the whole watch's troubles."""

from __future__ import annotations

import pytest

from connector.core.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
)
from connector.watch.backoff import FAILING, HIDDEN, OK, Health, backoff_delay

HOUR = 3600.0
DAY = 86400.0


def _run(health: Health, errors: list[BaseException], interval: float):
    delays, reports = [], []
    for error in errors:
        verdict = health.failed(error, interval)
        health = verdict.health
        delays.append(verdict.delay)
        reports.append(verdict.report)
    return health, delays, reports


def test_a_hidden_list_is_asked_after_1_2_4_intervals_up_to_a_day_and_reported_once():
    missing = NotFoundError("Following list not found for user: gone", status=404)
    health, delays, reports = _run(Health(), [missing] * 9, 15 * 60)
    assert delays == [900, 1800, 3600, 7200, 14400, 28800, 57600, DAY, DAY]
    assert health == Health(HIDDEN, 9)
    assert reports[0] == ("the following list is private, hidden or missing (404); asked "
                          "again in 15m, then half as often each time it fails, at least "
                          "every 1d")
    assert reports[1:] == [None] * 8


def test_a_handle_that_keeps_failing_is_reported_at_its_second_failure_in_a_row():
    down = ServerError("upstream failed", status=500)
    health, delays, reports = _run(Health(), [down, TransportError("timed out"), down], HOUR)
    assert delays == [HOUR, 2 * HOUR, 4 * HOUR]
    assert health.status == FAILING
    assert reports[0] is None
    assert reports[1].startswith("2 polls in a row failed (last: timed out); asked again in 2h")
    assert reports[2] is None


def test_an_interval_longer_than_a_day_is_the_cap():
    assert backoff_delay(10, 2 * DAY) == 2 * DAY
    assert backoff_delay(1, 2 * DAY) == 2 * DAY


@pytest.mark.parametrize("error", [
    AuthenticationError("API key is invalid or missing.", status=401),
    InsufficientCreditsError("Insufficient credits. Please top up your account.", status=403),
    RateLimitError("slow down", status=429),
])
def test_the_whole_watch_s_troubles_do_not_count_against_a_handle(error):
    verdict = Health().failed(error, HOUR)
    assert verdict == type(verdict)(Health(), HOUR, None)


def test_a_good_poll_brings_the_handle_back_and_says_so_once():
    missing = NotFoundError("gone", status=404)
    health, _, _ = _run(Health(), [missing] * 3, HOUR)
    back = health.succeeded()
    assert back.health == Health(OK, 0)
    assert back.report == "answering again after 3 failed polls"
    assert back.health.succeeded().report is None
    # One failure that was not yet "failing" comes back without a word.
    once = Health().failed(ServerError("x", status=500), HOUR).health
    assert once.succeeded().report is None and once.succeeded().health == Health()


def test_an_unexpected_exception_is_reported_by_its_type_only():
    # It may carry anything (a URL with a password): only its type is shown.
    _, _, reports = _run(Health(), [ValueError("https://user:secret@x"), KeyError("k")],
                         HOUR)
    assert "secret" not in reports[1]
    assert "(last: KeyError)" in reports[1]
