"""The credits benchmark on a tiny history, so that the benchmark code cannot rot unnoticed."""

from __future__ import annotations

import math

from benchmarks import credits

P = 3
EXISTING = 12
POLLS = 2


def test_the_trigger_spends_exactly_the_lower_bound_in_every_benchmark_history():
    rows = credits.measure(p=P, existing=EXISTING, polls=POLLS, budget=60)
    assert [r.label for r in rows] == ["0", "1", "p-1", "p", "p+1", "5p", "50p"]
    for row in rows:
        assert row.ours == [math.ceil((row.n + 1) / P)] * POLLS, row.label
        assert all(row.ours_exact), row.label


def test_the_reference_pollers_behave_as_the_benchmark_says():
    rows = credits.measure(p=P, existing=EXISTING, polls=POLLS, budget=60, only=["0", "5p"])
    for row in rows:
        # First page only: one request, and everything below the first page is lost.
        assert row.first_page == [1] * POLLS
        assert row.first_page_missed == [max(0, row.n - P)] * POLLS
        # Full-list diff: finds everything, by reading the whole (growing) list each poll.
        lengths = [EXISTING + k * row.n for k in range(1, POLLS + 1)]
        assert row.full_diff == [math.ceil(length / P) for length in lengths]
        assert row.full_diff_missed == [0] * POLLS


def test_the_unfollow_benchmark_counts_requests_as_it_says():
    from benchmarks import unfollows

    quiet = unfollows.measure(40, None, polls=2)
    assert quiet["ours"] == [1, 1] and quiet["diff"] == [2, 2] and quiet["baseline"] == 2
    recent = unfollows.measure(40, "recent", polls=2)
    assert recent["ours"] == [1, 1] and recent["ours_exact"] and recent["diff_exact"]
    state_bytes, plain, _ = unfollows.state_figures(20, True, repeat=1)
    assert 0 < state_bytes < plain


def test_the_scheduling_benchmark_runs_the_real_schedules_and_checks_what_it_says():
    from benchmarks import scheduling

    runs = scheduling.sweep(quick=True)
    section = scheduling.section(runs, quick=True)
    assert [r.kind for r in runs] == ["fixed", "fixed", "adaptive", "adaptive", "adaptive"]
    verdicts = {t.claim.split(":")[0]: t.met for t in section.targets}
    assert verdicts["the budget never exceeded"] is True
    assert verdicts["every follow delivered exactly once"] is True
    for run in runs:
        assert run.follows > 500 and run.missed == 0 and run.twice == 0
        if run.budget is not None:
            assert run.credits <= run.budget.cap(scheduling.QUICK["days"] * scheduling.DAY)


def test_the_against_benchmark_runs_both_checkouts_as_users_do():
    import sys

    from benchmarks import against
    from benchmarks.scale import ROOT

    assert against.run(quick=True).skipped  # no earlier checkout given: nothing measured
    against.configure(ROOT, sys.executable)  # this checkout as the earlier one: an A/A/A
    try:
        section = against.run(quick=True)
    finally:
        against.configure(None, None)
    assert section.skipped is None
    assert [row[0].split(" (")[0] for row in section.rows] == ["this", "earlier",
                                                                "earlier, again"]
    assert [row[4] for row in section.rows] == ["30 - 30"] * 3  # every follow, every arm
    assert [t.met for t in section.targets][1] is True
    assert "noise" in section.notes[0] and "change" in section.notes[0]
