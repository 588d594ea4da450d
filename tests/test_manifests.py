"""The manifests runners draw forms from: valid schemas, valid samples, shipped in the wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from connector.core import manifests
from connector.core.errors import InputError
from tests.support import ITEM_FIELDS

ROOT = Path(__file__).resolve().parent.parent
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
        assert prop.get("examples") or prop.get("enum"), name


@pytest.mark.parametrize("key", OPERATIONS)
def test_defaults_and_examples_are_values_the_field_accepts(key: str) -> None:
    for name, prop in load(key)["input"]["properties"].items():
        check = Draft202012Validator(prop)
        for value in [prop["default"]] if "default" in prop else []:
            assert check.is_valid(value), (name, value)
        for value in prop.get("examples", []):
            assert check.is_valid(value), (name, value)


@pytest.mark.parametrize("key", OPERATIONS)
def test_request_source_offers_exactly_the_seed_enum(key: str) -> None:
    assert load(key)["input"]["properties"]["requestSource"]["enum"] == [
        "API",
        "WEB",
        "MAKE_DOT_COM",
        "ZAPIER",
        "N8N",
        "PLAYGROUND",
        "DEFAULT_AUTOMATION",
        "AGENT_PREVIEW",
        "AGENT_LIVE",
        "AUTOPILOT",
        "STUDIO",
    ]


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
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tmp_path / "site")
    out = subprocess.run(
        [sys.executable, "-S", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    folder, loaded = json.loads(out)
    assert Path(folder) == tmp_path / "site" / "connector" / "manifests"
    assert loaded == {p.stem: load(p.stem) for p in MANIFEST_FILES}
