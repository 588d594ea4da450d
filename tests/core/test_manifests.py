"""The manifests runners draw forms from: valid schemas, valid samples, shipped in the wheel."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import connector
from connector.core import manifests
from connector.core.errors import InputError
from connector.core.handles import MAX_INPUT, PATTERN, normalize_handle
from connector.operations import PLATFORM_SOURCES
from tests.support import ITEM_FIELDS, ROOT, run_invoke, run_python

MANIFEST_FILES = sorted((ROOT / "manifests").glob("*.json"))
OPERATIONS = [p.stem for p in MANIFEST_FILES if p.stem != manifests.CONNECTOR_KEY]
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def load(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "manifests" / f"{name}.json").read_text(encoding="utf-8"))


def test_there_is_a_connector_manifest_and_one_per_operation() -> None:
    assert [p.stem for p in MANIFEST_FILES] == [
        "account_unfollowed",
        "connector",
        "get_tiktok_user_following",
        "new_account_followed",
    ]


def test_the_connector_manifest_lists_every_operation_and_its_auth() -> None:
    connector = load("connector")
    assert connector["operations"] == OPERATIONS
    assert connector["name"] and connector["description"]
    auth = connector["auth"]
    Draft202012Validator.check_schema(auth)
    assert auth["required"] == ["apiKey"]
    key = auth["properties"]["apiKey"]
    assert key["writeOnly"] is True and key["x-secret"] is True  # forms mask it
    assert auth["properties"]["baseUrl"]["default"] == "https://app.dumplingai.com"
    Draft202012Validator(auth).validate({"apiKey": "k"})


@pytest.mark.parametrize("key", OPERATIONS)
def test_each_operation_manifest_names_itself_and_its_kind(key: str) -> None:
    manifest = load(key)
    assert manifest["key"] == key
    assert manifest["kind"] == {"get_tiktok_user_following": "action"}.get(key, "trigger")
    assert manifest["label"] and manifest["description"]


@pytest.mark.parametrize("key", OPERATIONS)
@pytest.mark.parametrize("part", ["input", "output"])
def test_input_and_output_are_valid_draft_2020_12_schemas(key: str, part: str) -> None:
    schema = load(key)[part]
    assert schema["$schema"] == DRAFT_2020_12
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("key", OPERATIONS)
def test_the_sample_validates_against_the_output(key: str) -> None:
    manifest = load(key)
    Draft202012Validator(manifest["output"]).validate(manifest["sample"])


#: What an operation's items carry beyond the flat item: an unfollow says when it was seen.
ITEM_EXTRAS = {"account_unfollowed": {"lastSeenAt", "detectedAt"}}


@pytest.mark.parametrize("key", OPERATIONS)
def test_the_output_is_the_flat_item_of_the_contract(key: str) -> None:
    output = load(key)["output"]
    fields = set(ITEM_FIELDS) | ITEM_EXTRAS.get(key, set())
    assert set(output["properties"]) == fields
    assert set(output["required"]) == fields
    assert output["additionalProperties"] is False
    assert "string" in output["properties"]["id"]["type"]  # ids exceed 2^53


@pytest.mark.parametrize("key", OPERATIONS)
def test_every_input_field_has_form_hints_in_order(key: str) -> None:
    schema = load(key)["input"]
    props = schema["properties"]
    assert sorted(schema["x-order"]) == sorted(props)
    assert schema["x-order"][0] == "handle"
    assert schema["required"] == ["handle"]
    assert schema["additionalProperties"] is False
    for name, prop in props.items():
        assert prop.get("title") and prop.get("description"), name
        assert prop.get("examples") or prop.get("oneOf") or prop.get("enum"), name


@pytest.mark.parametrize("key", OPERATIONS)
def test_defaults_and_examples_are_values_the_field_accepts(key: str) -> None:
    for name, prop in load(key)["input"]["properties"].items():
        check = Draft202012Validator(prop)
        for value in [prop["default"]] if "default" in prop else []:
            assert check.is_valid(value), (name, value)
        for value in prop.get("examples", []):
            assert check.is_valid(value), (name, value)


#: The `requestSource` values the endpoint accepts (its OpenAPI enum, shared/CONTRACT.md).
ENDPOINT_SOURCES = ("API", "WEB", "MAKE_DOT_COM", "ZAPIER", "N8N", "PLAYGROUND",
                    "DEFAULT_AUTOMATION", "AGENT_PREVIEW", "AGENT_LIVE", "AUTOPILOT", "STUDIO")


@pytest.mark.parametrize("key", OPERATIONS)
def test_request_source_offers_the_platforms_sources_as_an_enum_a_form_preselects_none(
        key: str) -> None:
    prop = load(key)["input"]["properties"]["requestSource"]
    # An enum, not a oneOf of consts: form builders (@rjsf) preselect the first oneOf choice
    # and so sent "API" from every form, over the platform (integrations/n8n/test/forms.test.mjs
    # draws the forms). Its labels are x-enumTitles, in the same order.
    assert "oneOf" not in prop and "default" not in prop
    assert prop["enum"] == ["API", "N8N", "ZAPIER", "MAKE_DOT_COM"]
    assert prop["x-enumTitles"] == ["API", "n8n", "Zapier", "Make"]
    # The sources a user may choose are those the platforms set, each one the endpoint's.
    assert set(prop["enum"]) == set(PLATFORM_SOURCES.values())
    assert set(prop["enum"]) <= set(ENDPOINT_SOURCES)


def test_the_package_loads_the_same_manifests_as_the_files() -> None:
    loaded = manifests.load_all()
    assert loaded == {p.stem: load(p.stem) for p in MANIFEST_FILES}
    assert manifests.operation_keys() == OPERATIONS


def test_an_unknown_manifest_names_the_known_ones() -> None:
    with pytest.raises(InputError) as caught:
        manifests.load("get_followers")
    assert "get_tiktok_user_following" in caught.value.message


def test_inputs_are_validated_with_defaults_applied() -> None:
    assert manifests.prepare_inputs("get_tiktok_user_following", {"handle": "a"}) == {
        "handle": "a",
        "maxPages": 1,
    }
    assert manifests.prepare_inputs("new_account_followed", {"handle": "a"}) == {
        "handle": "a",
        "maxPages": 10,
        "firstRun": "skipExisting",
    }
    with pytest.raises(InputError) as caught:
        manifests.prepare_inputs("new_account_followed", {"handle": "a", "maxPages": 1})
    assert caught.value.field == "maxPages" and "at least 2" in caught.value.message


def test_inputs_must_be_an_object() -> None:
    with pytest.raises(InputError) as caught:
        manifests.prepare_inputs("get_tiktok_user_following", ["handle", "a"])
    assert caught.value.field == "inputs"


def test_the_entry_point_names_the_connector_object_with_every_operation() -> None:
    from importlib.metadata import entry_points

    (point,) = [e for e in entry_points(group="automation.connectors")]
    found = point.load()
    assert found.manifest == load("connector")
    assert list(found.operations) == OPERATIONS
    assert found.operations["get_tiktok_user_following"] == load("get_tiktok_user_following")


def test_the_built_wheel_ships_the_manifests_and_loads_them_when_installed(
    tmp_path: Path,
) -> None:
    builder = pytest.importorskip("hatchling.builders.wheel")
    wheel = next(iter(builder.WheelBuilder(str(ROOT)).build(directory=str(tmp_path / "dist"))))
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(n for n in archive.namelist() if n.startswith("connector/manifests/"))
        archive.extractall(tmp_path / "site")
    assert shipped == [f"connector/manifests/{p.name}" for p in MANIFEST_FILES]

    # The unpacked wheel alone, without the checkout: what a non-editable install sees.
    script = (
        "import json; from connector.core import manifests; "
        "print(json.dumps([str(manifests.manifest_dir()), manifests.load_all()]))"
    )
    run = run_python(script, flags=["-S"], env={"PYTHONPATH": str(tmp_path / "site")},
                     cwd=tmp_path)
    assert run.code == 0, run.stderr
    folder, loaded = run.json
    assert Path(folder) == tmp_path / "site" / "connector" / "manifests"
    assert loaded == {p.stem: load(p.stem) for p in MANIFEST_FILES}


# ---------------------------------------------------------------- conversion without loss
# (issue 12): what n8n, Zapier and JSON-Schema form libraries need to draw the same form the
# connector validates.

CORPUS = json.loads((ROOT / "tests" / "data" / "handle_corpus.json").read_text("utf-8"))
HANDLE_OPERATIONS = [k for k in OPERATIONS if "handle" in load(k)["input"]["properties"]]


def walk(node: Any) -> Any:
    """Every dict inside a manifest, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_the_handle_corpus_says_what_the_connector_accepts() -> None:
    def accepted(value: str) -> bool:
        try:
            normalize_handle(value)
        except InputError:
            return False
        return True

    cases = CORPUS["cases"]
    assert [accepted(c["value"]) for c in cases] == [c["accepted"] for c in cases]
    assert 20 < sum(c["accepted"] for c in cases) < len(cases) - 20  # both kinds, plenty


@pytest.mark.parametrize("key", HANDLE_OPERATIONS)
def test_the_handle_field_accepts_exactly_what_the_connector_accepts(key: str) -> None:
    field = load(key)["input"]["properties"]["handle"]
    assert field["pattern"] == PATTERN and field["maxLength"] == MAX_INPUT
    check = Draft202012Validator(field)
    wrong = [c["value"] for c in CORPUS["cases"] if check.is_valid(c["value"]) != c["accepted"]]
    assert wrong == []


@pytest.mark.parametrize("key", OPERATIONS)
def test_every_choice_has_a_label_and_no_bare_enum_is_left(key: str) -> None:
    for name, prop in load(key)["input"]["properties"].items():
        # A choice is a oneOf of labelled consts when it has a default (a form preselects
        # that), else an enum with its labels in x-enumTitles (a form preselects nothing).
        if "enum" in prop:
            assert "default" not in prop and "oneOf" not in prop, name
            assert len(prop["x-enumTitles"]) == len(prop["enum"]), name
            assert all(isinstance(t, str) and t for t in prop["x-enumTitles"]), name
        if "oneOf" in prop:
            assert "default" in prop, name
        for choice in prop.get("oneOf", []):
            assert set(choice) <= {"const", "title", "description"}, name
            assert isinstance(choice["const"], str) and choice["title"], name


def test_a_value_outside_a_labelled_choice_is_refused_naming_the_values() -> None:
    with pytest.raises(InputError) as caught:
        manifests.prepare_inputs("new_account_followed", {"handle": "a", "firstRun": "all"})
    assert caught.value.field == "firstRun"
    assert caught.value.message == ("firstRun (On the first run) must be one of skipExisting, "
                                    "emitRecent; got 'all'")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("count", 101, "count (Page size) must be at most 100; got 101"),
    ("count", 0, "count (Page size) must be at least 1; got 0"),
    ("handle", "", "handle (TikTok handle) must not be empty; got ''"),
    ("handle", "a" * 501, "handle (TikTok handle) is too long (at most 500 characters); got '"
     + "a" * 76 + "..."),
    ("maxPages", "x", "maxPages (Page budget per poll) must be an integer; got 'x'"),
    ("requestSource", "FOO", "requestSource (Request source) must be one of API, N8N, ZAPIER, "
     "MAKE_DOT_COM; got 'FOO'"),
    ("requestSource", 5, "requestSource (Request source) must be a string; got 5"),
])
def test_each_refusal_of_the_schema_is_told_in_its_own_words(field: str, value: object,
                                                             message: str) -> None:
    with pytest.raises(InputError) as caught:
        manifests.prepare_inputs("new_account_followed", {"handle": "alice", field: value})
    assert (caught.value.field, caught.value.message) == (field, message)


def test_a_handle_refused_by_the_pattern_gets_the_connectors_own_message() -> None:
    with pytest.raises(InputError) as caught:
        manifests.prepare_inputs("get_tiktok_user_following", {"handle": "stool presidente"})
    assert caught.value.field == "handle"
    assert "is not a TikTok handle" in caught.value.message


@pytest.mark.parametrize("key", OPERATIONS)
def test_advanced_fields_are_marked_by_a_boolean_and_the_handle_never_is(key: str) -> None:
    props = load(key)["input"]["properties"]
    advanced = {n for n, p in props.items() if p.get("x-advanced")}
    assert all(isinstance(p.get("x-advanced", False), bool) for p in props.values())
    assert "requestSource" in advanced and "handle" not in advanced
    for name in advanced:
        assert not props[name]["description"].startswith("Advanced:"), name


def test_every_vendor_keyword_used_is_declared_and_every_declared_one_used() -> None:
    declared = load("connector")["vendorKeywords"]
    used = {k for p in MANIFEST_FILES for node in walk(load(p.stem)) for k in node
            if k.startswith("x-")}
    assert sorted(used) == sorted(declared)


def test_the_base_url_is_a_uri_and_advanced() -> None:
    base = load("connector")["auth"]["properties"]["baseUrl"]
    assert base["format"] == "uri" and base["x-advanced"] is True


def test_the_connector_manifest_describes_the_connection_test_and_its_cost() -> None:
    test = load("connector")["connectionTest"]
    assert test["cli"].startswith("tiktok-following auth test")
    assert test["http"] == "POST /v1/auth/test"
    assert test["python"].startswith("connector.check_credentials(")
    assert test["cost"].startswith("0 credits")


def test_fields_shared_by_operations_are_the_same_everywhere() -> None:
    """One source for the handle, page size and request source: no operation drifts."""
    first = load(OPERATIONS[0])["input"]["properties"]
    for key in OPERATIONS[1:]:
        props = load(key)["input"]["properties"]
        for name in ("handle", "count", "requestSource"):
            if name in props:
                assert props[name] == first[name], (key, name)


def test_there_is_no_zapier_export_that_zapier_would_refuse(capsys) -> None:
    # `export zapier` wrote definitions zapier-platform-schema refused, for polling triggers
    # Zapier cannot run statelessly; Zapier users connect through `watch` (docs/zapier.md).
    from connector import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["export", "zapier"])
    assert exited.value.code == 2
    assert "invalid choice: 'export'" in capsys.readouterr().err


# ---------------------------------------------------------------- unknown inputs (issue 19)


def test_a_misspelt_input_is_named_not_reported_as_the_missing_one() -> None:
    with pytest.raises(connector.InputError) as caught:
        connector.run("new_account_followed", {"handel": "x"}, credentials={"apiKey": "k"})
    assert caught.value.field == "handel"
    assert caught.value.message.startswith("unknown input 'handel' (did you mean 'handle'?); "
                                           "the inputs are: handle, ")


def test_an_unknown_input_wins_over_another_bad_one() -> None:
    with pytest.raises(connector.InputError) as caught:
        connector.run("get_tiktok_user_following", {"handle": "x", "maxPages": 0, "pages": 3},
                      credentials={"apiKey": "k"})
    assert caught.value.field == "pages"
    # maxPages was given, so it is not what `pages` meant.
    assert caught.value.message.startswith("unknown input 'pages'; the inputs are: handle, ")


def test_invoke_names_the_unknown_input() -> None:
    run = run_invoke({"operation": "new_account_followed", "inputs": {"handel": "x"}}, key="k")
    assert run.code == 2
    assert run.error["type"] == "input_error" and run.error["field"] == "handel"
    assert run.error["message"].startswith("unknown input 'handel'")
    assert "handle is required" not in run.output
