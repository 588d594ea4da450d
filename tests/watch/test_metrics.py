"""`watch --metrics HOST:PORT`: Prometheus metrics of a running watch, equal to what happened.

The real `watch` command runs in a child process against the stand-in and a local receiver;
the tests scrape its /metrics and compare with the requests the stand-in counted, the events
the receiver got and the outbox. Waits are for a figure to arrive, never on the clock.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector import Metrics, WatcherGroup
from connector.core.errors import InputError
from connector.storage import Backlog
from connector.storage.outbox import Outbox
from connector.watch.delivery import detection_delay
from connector.watch.metrics import parse_address
from connector.watch.summary import BudgetLevel, CycleSummary, DeliveryPass, HandlePoll
from tests.receiver import Receiver
from tests.support import API_KEY, run_main, run_python, start_cli

P = "tiktok_following_"
#: How long a test waits for a figure to show before it fails (not a measurement).
PATIENCE = 30.0


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "state.db")


# --------------------------------------------------------------------------- helpers


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples[(P + name, tuple(sorted(labels.items())))]


def scrape_until(url: str, ready: Callable[[Any], bool], proc: subprocess.Popen) -> Any:
    """Scrape until `ready(samples)`: the watch reports a figure when its poll or delivery
    ends, a moment after the stand-in or the receiver saw it."""
    deadline = time.monotonic() + PATIENCE
    while True:
        samples = scrape(url)
        if ready(samples):
            return samples
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"the figure never came; last scrape {samples}; "
                        f"watch said {proc.communicate()[1]}")
        time.sleep(0.05)


def once(standin, db: str, receiver: Receiver, *args: str) -> None:
    """A `watch --once` in this process (baselines, or events parked on purpose)."""
    run = run_main("--base-url", standin.url, "watch", *args, "--once", "--webhook",
                   receiver.url, "--state-db", db)
    assert run.code in (0, 1), run.stderr


def running_watch(standin, db: str, receiver: Receiver, *args: str
                  ) -> tuple[subprocess.Popen, str]:
    """`watch ARGS --metrics 127.0.0.1:0` left running; returns it and its metrics URL (port 0
    takes a free one, and the first line says which: no race for a port)."""
    proc = start_cli("--base-url", standin.url, "watch", *args, "--interval", "1h",
                     "--webhook", receiver.url, "--state-db", db, "--metrics", "127.0.0.1:0")
    line = proc.stderr.readline()
    found = re.search(r"metrics at (http://127\.0\.0\.1:\d+/metrics)", line)
    if found is None:
        proc.kill()
        pytest.fail(f"no metrics URL on the first line: {line}{proc.communicate()[1]}")
    return proc, found.group(1)


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=PATIENCE)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    return err


def refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.URLError:
        return True
    return False


# --------------------------------------------------------------------------- the watch command


@pytest.mark.slow
def test_a_running_watch_serves_the_requests_credits_polls_follows_and_deliveries_it_made(
    standin, receiver, db
):
    standin.add_account("alice", 5)
    standin.add_account("bob", 3)
    standin.add_account("carol", 2, private=True)  # 404: a hidden list, backed off
    once(standin, db, receiver, "alice", "bob")  # the baselines: follows after it are new
    before = standin.count_requests()
    standin.follow_many("alice", 3)
    standin.follow_many("bob", 2)

    proc, url = running_watch(standin, db, receiver, "alice", "bob", "carol")
    samples = scrape_until(
        url, lambda s: value(s, "deliveries_total", result="delivered") == 5
        and value(s, "polls_total", result="failed") == 1, proc)

    requests = standin.count_requests() - before
    assert requests == 3  # nothing else happens for an hour: the figures stand still
    assert value(samples, "requests_total") == requests
    # Credits are charged for the two successful requests, not carol's 404.
    assert value(samples, "spent_credits_total") == 20
    assert value(samples, "polls_total", result="ok") == 2
    assert value(samples, "polls_total", result="dropped") == 0
    assert value(samples, "follows_found_total") == 5
    assert value(samples, "unfollows_found_total") == 0
    assert len(receiver.event_ids()) == 5
    assert value(samples, "deliveries_total", result="failed") == 0
    assert value(samples, "delivery_delay_seconds_count") == 5
    assert value(samples, "delivery_delay_seconds_sum") >= 0
    # Every delay under a day: each lands in a finite bucket.
    assert value(samples, "delivery_delay_seconds_bucket", le="86400.0") == 5
    assert value(samples, "handles", status="ok") == 2
    assert value(samples, "handles", status="hidden") == 1
    assert value(samples, "handles", status="unknown") == 0
    # No budget, no budget gauges (a 0 would read as an empty budget).
    assert not any("budget" in name for name, _ in samples)
    # No handle is a label: a fleet's thousands of handles would be thousands of series.
    assert not any(dict(labels).keys() - {"result", "state", "status", "le"}
                   for _, labels in samples)

    err = stop(proc)
    assert "3 requests, 20 credits" in err and "5 new follows" in err
    assert refused(url)  # the endpoint went with the watch


@pytest.mark.slow
def test_after_a_receiver_outage_the_outbox_gauges_show_what_is_pending_and_parked(
    standin, receiver, db
):
    standin.add_account("alice", 5)
    standin.add_account("bob", 3)
    once(standin, db, receiver, "alice", "bob")
    receiver.status = 500  # the receiver fails from here on
    standin.follow_many("bob", 2)
    once(standin, db, receiver, "alice", "bob", "--max-attempts", "1")  # bob's 2: parked
    standin.follow_many("alice", 3)
    posted = len(receiver.requests)

    proc, url = running_watch(standin, db, receiver, "alice", "bob", "--max-attempts", "5")
    samples = scrape_until(
        url, lambda s: value(s, "outbox_events", state="pending") == 3, proc)

    with Outbox(db) as box:
        assert box.counts() == {"pending": 3, "parked": 2}
    assert value(samples, "outbox_events", state="parked") == 2
    # Each of alice's events was POSTed once and failed; bob's parked ones wait for a retry.
    tries = len(receiver.requests) - posted
    assert tries == 3
    assert value(samples, "deliveries_total", result="failed") == tries
    assert value(samples, "deliveries_total", result="delivered") == 0
    assert value(samples, "deliveries_total", result="parked") == 0
    assert value(samples, "delivery_delay_seconds_count") == 0
    assert value(samples, "follows_found_total") == 3
    stop(proc)


@pytest.mark.slow
def test_events_parked_by_a_running_watch_are_counted_as_parked(standin, receiver, db):
    standin.add_account("alice", 5)
    once(standin, db, receiver, "alice")
    receiver.status = 500
    standin.follow_many("alice", 2)

    proc, url = running_watch(standin, db, receiver, "alice", "--max-attempts", "1")
    samples = scrape_until(
        url, lambda s: value(s, "outbox_events", state="parked") == 2, proc)

    assert value(samples, "deliveries_total", result="parked") == len(receiver.requests) == 2
    assert value(samples, "deliveries_total", result="failed") == 0
    assert value(samples, "outbox_events", state="pending") == 0
    stop(proc)


@pytest.mark.slow
def test_a_watch_in_several_processes_serves_their_figures_each_interval(standin, receiver, db):
    for handle in ("alice", "bob", "carol"):
        standin.add_account(handle, 3)
    once(standin, db, receiver, "alice", "bob", "carol")
    standin.follow_many("alice", 2)
    standin.follow_many("carol", 2)

    # The processes report once an interval: a short one, and figures that stop changing
    # once every follow is delivered (the polls after it only add requests).
    proc = start_cli("--base-url", standin.url, "watch", "alice", "bob", "carol",
                     "--processes", "2", "--interval", "2s", "--webhook", receiver.url,
                     "--state-db", db, "--metrics", "127.0.0.1:0")
    line = proc.stderr.readline()
    assert "in 2 processes" in line, line
    url = re.search(r"metrics at (\S+)", line).group(1)
    samples = scrape_until(
        url, lambda s: value(s, "deliveries_total", result="delivered") == 4
        and value(s, "handles", status="unknown") == 0, proc)

    assert sorted(receiver.event_ids()) == sorted(set(receiver.event_ids()))
    assert len(receiver.event_ids()) == 4
    assert value(samples, "follows_found_total") == 4
    assert value(samples, "delivery_delay_seconds_count") == 4
    assert value(samples, "handles", status="ok") == 3
    requests = value(samples, "requests_total")
    assert 3 <= requests <= standin.count_requests()
    assert value(samples, "spent_credits_total") == 10 * requests  # every request succeeded
    assert value(samples, "polls_total", result="ok") >= 3
    stop(proc)


def test_a_port_in_use_is_refused_before_anything_is_polled(standin, receiver, db):
    standin.add_account("alice", 5)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_main("--base-url", standin.url, "watch", "alice", "--webhook", receiver.url,
                       "--state-db", db, "--metrics", f"127.0.0.1:{port}")
    assert run.code == 2, run.stderr
    assert f"--metrics 127.0.0.1:{port}: the port is in use" in run.stderr
    assert f"--metrics 127.0.0.1:{port + 1}" in run.stderr  # the fix: another port
    assert standin.count_requests() == 0 and receiver.requests == []


@pytest.mark.parametrize(("address", "message"), [
    ("http://x", "--metrics: the port must be a number"),
    ("127.0.0.1:99999", "--metrics: the port must be a number from 0 to 65535"),
    ("::1", "--metrics expects PORT or HOST:PORT"),
    (":9464", "--metrics expects PORT or HOST:PORT"),
    ("no-such-host.invalid:9464", "--metrics: cannot listen on 'no-such-host.invalid'"),
])
def test_a_bad_metrics_address_exits_2_naming_the_option(address, message, standin, receiver,
                                                         db):
    standin.add_account("alice", 5)
    run = run_main("--base-url", standin.url, "watch", "alice", "--webhook", receiver.url,
                   "--state-db", db, "--metrics", address)
    assert run.code == 2, run.stderr
    assert message in run.stderr
    assert standin.count_requests() == 0


def test_metrics_with_once_is_refused_a_scrape_could_never_reach_it(standin, receiver, db):
    standin.add_account("alice", 5)
    run = run_main("--base-url", standin.url, "watch", "alice", "--once", "--webhook",
                   receiver.url, "--state-db", db, "--metrics", "0")
    assert run.code == 2
    assert "--metrics serves a running watch" in run.stderr
    assert standin.count_requests() == 0


def test_without_the_extra_metrics_names_it_and_how_to_install_it(standin, receiver, db):
    standin.add_account("alice", 5)
    # None in sys.modules: `import prometheus_client` raises ImportError, as if not installed.
    code = ("import sys; sys.modules['prometheus_client'] = None\n"
            "from connector.cli import main\n"
            f"sys.exit(main(['--base-url', {standin.url!r}, 'watch', 'alice', '--webhook', "
            f"{receiver.url!r}, '--state-db', {db!r}, '--metrics', '0']))")
    run = run_python(code, key=API_KEY)
    assert run.code == 2, run.stderr
    assert "metrics need prometheus_client" in run.stderr
    assert "pip install '.[metrics]'" in run.stderr
    assert "pip install prometheus_client" in run.stderr
    assert standin.count_requests() == 0


def test_import_connector_and_a_watch_without_metrics_never_import_prometheus_client(
    standin, receiver, db
):
    standin.add_account("alice", 5)
    code = ("import sys, connector\n"
            "assert 'prometheus_client' not in sys.modules, 'import connector'\n"
            "from connector.cli import main\n"
            f"code = main(['--base-url', {standin.url!r}, 'watch', 'alice', '--once', "
            f"'--webhook', {receiver.url!r}, '--state-db', {db!r}])\n"
            "print(code, 'prometheus_client' in sys.modules)")
    run = run_python(code, key=API_KEY)
    assert run.stdout.split() == ["0", "False"], run.output
    assert standin.count_requests() == 1  # it did watch


# --------------------------------------------------------------------------- Python


def test_a_watcher_tells_its_metrics_of_each_poll_and_delivery(make_watcher, standin,
                                                               receiver):
    standin.add_account("alice", 5)
    metrics = Metrics()
    watcher = make_watcher(["alice", "bob"], metrics=metrics)
    watcher.run_cycle()  # alice's baseline; bob is not there (404)
    standin.follow_many("alice", 4)
    summary = watcher.run_cycle()
    figures = registry_values(metrics)

    assert figures[P + "requests_total", ()] == standin.count_requests() == 4
    assert figures[P + "spent_credits_total", ()] == 20
    assert figures[P + "polls_total", (("result", "ok"),)] == 2
    assert figures[P + "polls_total", (("result", "failed"),)] == 2
    assert figures[P + "follows_found_total", ()] == summary.new_follows == 4
    assert figures[P + "deliveries_total", (("result", "delivered"),)] == 4
    assert figures[P + "delivery_delay_seconds_count", ()] == 4
    assert figures[P + "outbox_events", (("state", "pending"),)] == 0
    assert figures[P + "handles", (("status", "ok"),)] == 1
    assert figures[P + "handles", (("status", "hidden"),)] == 1  # bob's list: 404


def registry_values(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in metrics.registry.collect() for s in family.samples}


@pytest.mark.slow
def test_a_watcher_group_feeds_its_metrics_each_cycles_summary(standin, receiver, db, creds):
    for handle in ("alice", "bob", "carol"):
        standin.add_account(handle, 3)
    standin.add_account("dave", 2, private=True)  # 404: a hidden list
    metrics = Metrics()
    with WatcherGroup(["alice", "bob", "carol", "dave"], receiver.url, processes=2, store=db,
                      credentials=creds, concurrency=2, metrics=metrics) as group:
        group.run_cycle()
        standin.follow_many("alice", 2)
        standin.follow_many("carol", 1)
        summary = group.run_cycle()
    figures = registry_values(metrics)

    assert figures[P + "requests_total", ()] == standin.count_requests()
    assert figures[P + "spent_credits_total", ()] == 60  # a 404 costs nothing
    assert figures[P + "polls_total", (("result", "ok"),)] == 6
    assert figures[P + "follows_found_total", ()] == 3
    assert figures[P + "deliveries_total", (("result", "delivered"),)] == 3
    assert len(receiver.event_ids()) == 3
    # The delays crossed from the children with their summaries.
    assert figures[P + "delivery_delay_seconds_count", ()] == 3
    assert figures[P + "handles", (("status", "ok"),)] == 3
    # dave's 404 is `hidden`, as a single watch shows it (it was `failing` from a group).
    assert figures[P + "handles", (("status", "hidden"),)] == 1
    assert sum(v for (name, _), v in figures.items() if name == P + "handles") == 4
    assert summary.polls.get("ok") == 3


def test_observe_adds_up_summaries_and_the_outbox_is_the_last_one_seen():
    metrics = Metrics(["a", "b", "c"])
    first = CycleSummary(3, polled={"a"}, failed={"b": "404 not_found"}, requests=3,
                         credits=20, new_follows=2, polls={"ok": 1, "failed": 1},
                         delivery=DeliveryPass(delivered=1, failed=2, parked=1,
                                               delays=[0.2]),
                         pending=4, parked=1)
    second = CycleSummary(3, polled={"b"}, requests=1, credits=10, unfollows=1,
                          polls={"ok": 1}, pending=2, parked=1)
    metrics.observe(first)
    metrics.observe(second)
    figures = registry_values(metrics)
    assert figures[P + "requests_total", ()] == 4
    assert figures[P + "spent_credits_total", ()] == 30
    assert figures[P + "polls_total", (("result", "ok"),)] == 2
    assert figures[P + "polls_total", (("result", "failed"),)] == 1
    assert figures[P + "follows_found_total", ()] == 2
    assert figures[P + "unfollows_found_total", ()] == 1
    assert figures[P + "deliveries_total", (("result", "delivered"),)] == 1
    assert figures[P + "deliveries_total", (("result", "failed"),)] == 1
    assert figures[P + "deliveries_total", (("result", "parked"),)] == 1
    assert figures[P + "delivery_delay_seconds_sum", ()] == pytest.approx(0.2)
    assert figures[P + "outbox_events", (("state", "pending"),)] == 2
    # b failed, then polled fine: ok now; c never polled here.
    assert figures[P + "handles", (("status", "ok"),)] == 2
    assert figures[P + "handles", (("status", "failing"),)] == 0
    assert figures[P + "handles", (("status", "unknown"),)] == 1


def test_a_poll_result_is_ok_failed_dropped_or_not_a_poll():
    assert HandlePoll("a", meta={}).result == "ok"
    assert HandlePoll("a", error=RuntimeError()).result == "failed"
    assert HandlePoll("a", elsewhere=True, requests=2, pages=2).result == "dropped"
    assert HandlePoll("a", elsewhere=True).result is None
    assert HandlePoll("a", skipped=True, requests=1).result is None
    assert HandlePoll("a", waiting=True).result is None


def test_a_poll_put_off_for_credits_is_not_counted_as_a_poll_nor_marks_the_handle_ok():
    metrics = Metrics(["a"])
    summary = CycleSummary(1)
    failed = HandlePoll("a", error=RuntimeError(), health="failing")
    for outcome in (failed, HandlePoll("a", waiting=True)):
        metrics.record_poll(outcome)
        summary.record_poll(outcome)
    figures = registry_values(metrics)
    assert figures[P + "polls_total", (("result", "ok"),)] == 0
    assert figures[P + "polls_total", (("result", "failed"),)] == 1
    # Still failing: the handle was not polled again, only put off.
    assert figures[P + "handles", (("status", "failing"),)] == 1
    assert figures.get((P + "handles", (("status", "ok"),)), 0) == 0
    assert summary.polls == {"failed": 1}
    assert summary.failed == {"a": "RuntimeError"}


def test_handle_statuses_and_the_budget_are_set_as_given():
    metrics = Metrics()
    metrics.set_handle_statuses({"ok": 7, "hidden": 2})
    metrics.set_handle_statuses({"ok": 8, "failing": 1})
    metrics.set_budget(BudgetLevel(120, 30, 1000, at=0.0))
    figures = registry_values(metrics)
    # A status gone since the last count shows 0, not its old count.
    assert figures[P + "handles", (("status", "hidden"),)] == 0
    assert figures[P + "handles", (("status", "ok"),)] == 8
    assert figures[P + "handles", (("status", "failing"),)] == 1
    assert figures[P + "budget_available_credits", ()] == 120
    assert figures[P + "budget_held_credits", ()] == 30
    assert figures[P + "budget_capacity_credits", ()] == 1000


def test_two_metrics_in_one_process_keep_their_own_figures_and_stop_cleanly():
    one, two = Metrics(), Metrics()
    one.serve("127.0.0.1:0")
    two.serve(("127.0.0.1", 0))
    try:
        one.record_backlog(Backlog(5, 1, None))
        assert value(scrape(one.url), "outbox_events", state="pending") == 5
        assert value(scrape(two.url), "outbox_events", state="pending") == 0
    finally:
        url, address = one.url, one.address
        one.close()
        two.close()
    assert not [t for t in threading.enumerate() if t.name == "watch-metrics"]
    assert refused(url)
    # The port is free again: nothing of the server is left listening on it (SO_REUSEADDR
    # passes over the scrapes' TIME_WAIT, never over a listening socket).
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(address)
        again.listen()
    one.close()  # twice is harmless


def test_serving_beyond_loopback_warns_that_the_endpoint_has_no_auth(monkeypatch, caplog):
    # Listening on another interface is not done here (loopback only): the check is made to
    # take 127.0.0.1 for a public address instead.
    monkeypatch.setattr("connector.watch.metrics.is_loopback", lambda host: False)
    with Metrics() as metrics:
        metrics.serve("127.0.0.1:0")
    assert "no authentication" in caplog.text
    caplog.clear()
    monkeypatch.undo()
    with Metrics() as metrics:
        metrics.serve("127.0.0.1:0")
    assert "no authentication" not in caplog.text


def test_a_metrics_address_alone_is_a_port_on_loopback():
    assert parse_address("9464") == ("127.0.0.1", 9464)
    assert parse_address("0.0.0.0:9464") == ("0.0.0.0", 9464)
    assert parse_address("[::1]:9464") == ("::1", 9464)
    with pytest.raises(InputError) as err:
        parse_address("::1")
    assert err.value.field == "metrics"


def test_a_delivery_delay_runs_from_the_events_detection():
    payload = {"detectedAt": "2024-01-01T00:00:00.000+00:00"}
    assert detection_delay(payload, 1704067202.5) == pytest.approx(2.5)
    assert detection_delay({"detectedAt": "2024-01-01T00:00:00Z"}, 1704067201) == 1
    assert detection_delay({}, 1704067201) is None
    assert detection_delay({"detectedAt": "yesterday"}, 1704067201) is None


def test_a_watcher_with_a_budget_shows_its_bucket(make_watcher, standin, receiver):
    """The budget gauges appear with --budget only, and show the shared bucket as the summary
    line does: a tenth of the budget at most, less what the polls spent."""
    standin.add_account("alice", 5)
    metrics = Metrics()
    watcher = make_watcher(["alice"], metrics=metrics, budget="10000/day")
    summary = watcher.run_cycle()
    figures = registry_values(metrics)
    capacity = figures[P + "budget_capacity_credits", ()]
    available = figures[P + "budget_available_credits", ()]
    assert capacity == 1000
    assert figures[P + "budget_held_credits", ()] == 0
    spent = standin.count_requests() * 10
    assert spent > 0 and capacity - spent <= available < capacity
    assert f"{available:.0f} in hand" in summary.budget


@pytest.mark.slow
def test_a_watcher_group_with_a_budget_shows_the_shared_bucket(standin, receiver, db, creds):
    """As a single watch does: the one bucket the processes spend from, not one each."""
    for handle in ("alice", "bob", "carol", "dave"):
        standin.add_account(handle, 5)
    metrics = Metrics()
    with WatcherGroup(["alice", "bob", "carol", "dave"], receiver.url, processes=2, store=db,
                      credentials=creds, concurrency=2, metrics=metrics,
                      budget="10000/day") as group:
        summary = group.run_cycle()
    figures = registry_values(metrics)
    assert figures[P + "budget_capacity_credits", ()] == 1000
    assert figures[P + "budget_held_credits", ()] == 0
    available = figures[P + "budget_available_credits", ()]
    spent = standin.count_requests() * 10
    assert spent == 40 and 1000 - spent <= available < 1000 - spent + 1
    assert summary.budget == f"budget 10000/day, {available:.0f} in hand"


def test_a_watcher_without_a_budget_shows_no_budget_gauges(make_watcher, standin, receiver):
    standin.add_account("alice", 5)
    metrics = Metrics()
    make_watcher(["alice"], metrics=metrics).run_cycle()
    assert not [name for name, _ in registry_values(metrics) if "budget" in name]
