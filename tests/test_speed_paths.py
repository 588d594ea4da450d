"""The short cuts issue 11 took for speed keep their behaviour: POSTs straight to a urllib3
pool (`core/transport.py`), deliveries started as each poll commits, and a CLI that builds only
the parser of the command it runs."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from connector import cli
from connector.core.config import Credentials, RetryPolicy, Timeouts
from connector.core.errors import ApiError
from connector.core.http import Client
from connector.core.items import identity
from connector.operations.events import event_id
from connector.storage import EventClaim
from connector.watch import Backoff, Watcher
from connector.watch.summary import DeliveryPass
from connector.watch.webhook import MAX_REPLY_BYTES, Webhook, WebhookReply


def test_a_page_request_carries_the_session_headers_and_follows_no_redirect(receiver):
    receiver.answer(307)
    base = receiver.url.removesuffix("/hook")
    client = Client(Credentials("sk-test", base), retry=RetryPolicy.no_wait(total=0))
    with client, pytest.raises(ApiError) as caught:
        client.fetch_page("alice", count=5)
    assert caught.value.status == 307
    (sent,) = receiver.requests  # answered as it is, not followed
    assert sent.path == "/api/v1/get-tiktok-user-following"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["user-agent"].startswith("tiktok-following-connector/")
    assert sent.body == {"handle": "alice", "requestSource": "API", "count": 5}


class _Listener:
    """A loopback socket that records the first line of each connection and answers with
    `reply` (None: never answers)."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.lines: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as request:  # both, or the socket stays open
                self.lines.append(request.readline().decode().strip())
                length = 0
                while (line := request.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                request.read(length)
                if self.reply is None:
                    self.done.wait(5)
                else:
                    conn.sendall(self.reply)

    def close(self) -> None:
        self.done.set()
        self.sock.close()


def test_a_remote_webhook_goes_through_the_environments_proxy(monkeypatch):
    # A remote receiver may legitimately need the company proxy: its POST goes through it, a
    # CONNECT tunnel for https.
    proxy = _Listener(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        with Webhook("https://hooks.example.invalid/catch/1") as hook:
            reply = hook.post({"eventId": "e1"})
    finally:
        proxy.close()
    assert [line.split()[:2] for line in proxy.lines] == [["CONNECT", "hooks.example.invalid:443"]]
    assert not reply.ok and reply.unreachable


def _post_once(answer: bytes | None, **options) -> tuple[WebhookReply, list[str]]:
    """One webhook POST to a loopback listener answering `answer`: how it went, and the
    request lines the listener saw."""
    listener = _Listener(answer)
    try:
        with Webhook(f"http://127.0.0.1:{listener.port}/hook", **options) as hook:
            reply = hook.post({"eventId": "e1"})
    finally:
        listener.close()
    return reply, listener.lines


def test_a_webhook_that_never_answers_times_out_as_unreachable():
    reply, lines = _post_once(None, timeouts=Timeouts(connect=1, read=0.2))
    assert lines == ["POST /hook HTTP/1.1"]
    assert (reply.ok, reply.error, reply.unreachable) == (False, "timed out", True)


def test_a_webhook_answer_that_breaks_off_is_unreachable_not_delivered():
    reply, _ = _post_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf",
                          timeouts=Timeouts(connect=1, read=5))
    assert (reply.ok, reply.unreachable) == (False, True)
    assert reply.error in ("incomplete response", "connection reset", "connection aborted")


def test_a_receiver_answering_with_more_than_a_reply_is_still_delivered_to():
    huge = b"x" * (MAX_REPLY_BYTES + 10)
    reply, _ = _post_once(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(huge) + huge)
    assert reply.ok and reply.status == 200


def test_polling_with_a_delivery_pass_delivers_each_handles_follows_before_it_returns(
    standin, creds, receiver, tmp_path
):
    for name in ("alice", "bob", "carol"):
        standin.add_account(name, 3)
    with Watcher(["alice", "bob", "carol"], receiver.url, store=tmp_path / "w.db",
                 credentials=creds, backoff=Backoff.immediate(), concurrency=2) as watcher:
        watcher.run_cycle()
        followed = {name: standin.follow_many(name, 2) for name in ("alice", "bob", "carol")}
        deliveries = DeliveryPass()
        outcomes = watcher.poll(watcher.handles, deliveries)
        # Delivered already: the closing pass has nothing left to do.
        assert deliveries.delivered == 6 and len(receiver.requests) == 6
        assert sum(o.queued for o in outcomes) == 6
        closing = watcher.deliverer.run_pass(into=deliveries)
        assert closing.delivered == 6 and len(receiver.requests) == 6
    for name, users in followed.items():
        sent = [r.body["eventId"] for r in receiver.requests if r.body["handle"] == name]
        assert sent == [event_id(name, identity(u)) for u in users]  # oldest first


def test_a_failed_delivery_is_not_tried_again_by_the_closing_pass_of_its_cycle(
    standin, creds, receiver, tmp_path
):
    standin.add_account("alice", 3)
    with Watcher(["alice"], receiver.url, store=tmp_path / "w.db", credentials=creds,
                 backoff=Backoff.immediate()) as watcher:
        watcher.run_cycle()
        standin.follow_many("alice", 1)
        receiver.answer(500)
        summary = watcher.run_cycle()
    assert summary.delivery.failed == 1 and summary.delivery.delivered == 0
    assert len(receiver.requests) == 1 and summary.pending == 1


def test_new_follows_behind_an_undelivered_one_go_out_after_it_in_order(
    standin, creds, receiver, tmp_path
):
    # A poll claims what it queued for itself only when nothing of its handle is still in the
    # outbox; otherwise the handle's events go out together, oldest first.
    standin.add_account("alice", 3)
    with Watcher(["alice"], receiver.url, store=tmp_path / "w.db", credentials=creds,
                 backoff=Backoff.immediate()) as watcher:
        watcher.run_cycle()
        first = standin.follow_many("alice", 1)
        receiver.answer(500)
        assert watcher.run_cycle().pending == 1
        second = standin.follow_many("alice", 2)
        deliveries = DeliveryPass()
        watcher.poll(watcher.handles, deliveries)
        assert deliveries.delivered == 3 and deliveries.failed == 0
        assert watcher.store.database.backlog().pending == 0
    sent = [r.body["eventId"] for r in receiver.requests]
    assert sent[1:] == [event_id("alice", identity(u)) for u in first + second]


def test_follows_a_poll_claimed_are_left_to_the_closing_pass_when_watch_stops(
    standin, creds, receiver, tmp_path
):
    standin.add_account("alice", 3)
    with Watcher(["alice"], receiver.url, store=tmp_path / "w.db", credentials=creds,
                 backoff=Backoff.immediate()) as watcher:
        watcher.run_cycle()
        standin.follow_many("alice", 2)
        store = watcher.store
        with store.poll("alice", credentials=creds) as batch:
            batch.commit(outbox=True, claim=EventClaim(watcher.owner, 600))
        assert len(batch.claimed) == 2
        watcher.stop()
        deliveries = DeliveryPass()
        watcher.deliverer.deliver_claimed(batch.claimed, deliveries)
        assert deliveries.tried == set() and receiver.requests == []
        # Unclaimed: the closing pass sees them (and, stopping, holds them back).
        assert len(store.database.due(time.time() + 1)) == 2
        assert watcher.deliverer.run_pass(into=deliveries).held == 2


@pytest.mark.parametrize("command", ["list", "poll", "invoke", "manifest", "sandbox", "demo",
                                     "watch", "outbox"])
def test_every_command_has_its_own_help_when_run_alone(command, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main([command, "--help"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: tiktok-following {command}")


def test_an_unknown_command_is_refused_naming_the_real_ones(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["--base-url", "http://127.0.0.1:9", "lst", "alice"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'lst'" in err and "'list'" in err and "'watch'" in err
