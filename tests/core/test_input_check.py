"""Input checking without jsonschema: the quick check in core/manifests.py (`conforms`) may
only ever agree with jsonschema, and well-formed input never needs jsonschema at all."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from connector.core import manifests
from connector.core.manifests import conforms
from tests.support import ROOT

OPERATIONS = tuple(manifests.operation_keys())

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 600), st.integers(), st.floats(allow_nan=False),
    st.text(max_size=8), st.text(min_size=190, max_size=210),
    st.sampled_from(["", "API", "N8N", "skipExisting", "emitRecent", "alice", "1.5", "30"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=2),
                   st.dictionaries(st.text(max_size=3), scalars, max_size=2))
names = st.sampled_from(["handle", "count", "maxPages", "maxItems", "minTime", "firstRun",
                         "reconcileEvery", "requestSource", "other", "x-extra"])
# Random dictionaries are rarely valid; these are often, so the quick check's "yes" is tried too.
near_valid = st.fixed_dictionaries(
    {"handle": st.sampled_from(["alice", "a_b.c", "", "stool presidente", "x" * 30])},
    optional={"count": st.sampled_from([1, 30, 50]) | scalars,
              "maxPages": st.sampled_from([1, 10]) | scalars,
              "reconcileEvery": st.sampled_from([0, 96]) | scalars,
              "firstRun": st.sampled_from(["skipExisting", "emitRecent"]) | scalars,
              "requestSource": st.sampled_from(["API", "N8N"]) | scalars})
inputs = st.one_of(st.dictionaries(names, values, max_size=6), near_valid)


@settings(max_examples=400, deadline=None)
@given(inputs, st.sampled_from(OPERATIONS))
def test_the_quick_check_never_passes_what_jsonschema_refuses(instance, operation):
    schema = manifests.load(operation)["input"]
    quick = conforms(instance, schema)
    event(f"quick check says {quick}")
    if quick:
        assert Draft202012Validator(schema).is_valid(instance)


def test_the_quick_check_passes_well_formed_inputs_of_every_operation():
    for operation in OPERATIONS:
        schema = manifests.load(operation)["input"]
        assert conforms({"handle": "alice", "count": 30, "maxPages": 5}, schema)
        assert conforms({"handle": "alice", "requestSource": "N8N"}, schema)
    assert conforms({"handle": "a", "maxItems": 10, "minTime": 1.7e9},
                    manifests.load("get_tiktok_user_following")["input"])


def test_the_quick_check_reads_enum_labels_written_as_one_of_const():
    schema = {"type": "object", "properties": {"mode": {"oneOf": [
        {"const": "a", "title": "A"}, {"const": "b", "title": "B"}]}}}
    assert conforms({"mode": "a"}, schema)
    assert not conforms({"mode": "c"}, schema)
    assert Draft202012Validator(schema).is_valid({"mode": "a"})


def test_the_quick_check_reads_a_pattern_as_jsonschema_does_unanchored():
    assert conforms("abc", {"pattern": "b"})
    assert not conforms("abc", {"pattern": "^b"})
    assert conforms(5, {"pattern": "^b"})  # a pattern applies to strings only


def test_the_quick_check_is_unsure_of_keywords_it_does_not_read():
    assert not conforms("abc", {"propertyNames": {"maxLength": 1}, "type": "string"})
    assert not conforms(4, {"multipleOf": 2})
    assert not conforms({"a": 1}, {"additionalProperties": False, "patternProperties": {}})


def test_true_is_not_a_number_and_one_is_not_true():
    assert not conforms(True, {"type": "integer"})
    assert not conforms(1, {"enum": [True]})
    assert not conforms(True, {"const": 1})
    assert conforms(2.0, {"type": "integer", "minimum": 2})


def test_well_formed_input_never_imports_jsonschema_and_bad_input_keeps_its_message():
    code = (
        "import sys, connector\n"
        "from connector.operations import prepare\n"
        "prepare('get_tiktok_user_following', {'handle': '@a', 'maxPages': '3'})\n"
        "prepare('new_account_followed', {'handle': 'a', 'firstRun': 'emitRecent'})\n"
        "assert 'jsonschema' not in sys.modules, 'jsonschema was imported'\n"
        "try:\n"
        "    prepare('new_account_followed', {'handle': 'a', 'maxPages': 1})\n"
        "except connector.InputError as err:\n"
        "    print(err.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "maxPages (Page budget per poll) must be at least 2; got 1"
