"""One registry of the operations and their event kinds (operations/registry.py): the manifests,
the command line, `watch` and the webhook events all take them from it."""

from __future__ import annotations

import argparse
import uuid

import pytest

from connector.core import manifests
from connector.operations.events import event_id, new_event
from connector.operations.registry import FOLLOWED, OPERATIONS, TRIGGERS, UNFOLLOWED, module


def test_the_manifests_list_the_registry_s_operations_with_their_kinds():
    assert manifests.operation_keys() == sorted(OPERATIONS)
    for key, op in OPERATIONS.items():
        assert manifests.load(key)["kind"] == ("trigger" if op.event else "action")
        assert callable(module(key).run)
        if op.event:
            assert module(key).State.PARTS  # the embedded store keeps its state by this


def test_each_trigger_has_its_own_event_kind():
    assert {kind: op.key for kind, op in TRIGGERS.items()} == {
        FOLLOWED: "new_account_followed", UNFOLLOWED: "account_unfollowed"}


def test_watch_on_the_command_line_takes_exactly_the_registry_s_event_kinds():
    from connector.cli.watch import _events

    assert _events(",".join(reversed(TRIGGERS))) == tuple(reversed(TRIGGERS))
    with pytest.raises(argparse.ArgumentTypeError, match="followed, unfollowed or"):
        _events("follows")


@pytest.mark.parametrize("kind", list(TRIGGERS))
def test_a_sample_event_is_shaped_like_the_real_ones_of_its_kind(kind):
    from connector.watch.webhook import sample_event

    sample = sample_event(kind)
    item = manifests.load(TRIGGERS[kind].key)["sample"]
    assert sample == new_event("sample", item, detected_at=sample["detectedAt"], kind=kind)[1]
    assert sample.get("event") == (None if kind == FOLLOWED else kind)


def test_event_ids_are_those_earlier_releases_gave():
    # What the first release sent as Idempotency-Key: written out here, not taken from the code.
    first = str(uuid.uuid5(uuid.NAMESPACE_URL, "tiktok-following:alice:7000000000000000001"))
    assert event_id("alice", "7000000000000000001") == first
    assert new_event("alice", {"id": "7000000000000000001"}, detected_at="x")[0] == first
    later = str(uuid.uuid5(uuid.NAMESPACE_URL,
                           "tiktok-following:alice:unfollowed:7000000000000000001@2024"))
    assert new_event("alice", {"id": "7000000000000000001", "lastSeenAt": "2024"},
                     detected_at="x", kind=UNFOLLOWED)[0] == later
