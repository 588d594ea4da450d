"""The JSON manifests runners draw forms from, and input validation against them.

The files live in the repository's top-level `manifests/` and ship inside the wheel as
`connector/manifests/`; both places are looked in, so a checkout and an install behave alike.
jsonschema is imported on first use: commands that validate nothing don't pay for it.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ConnectorError, InputError
from .handles import normalize_handle

CONNECTOR_KEY = "connector"


def manifest_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "manifests", here.parent / "manifests"):
        if (candidate / f"{CONNECTOR_KEY}.json").is_file():
            return candidate
    raise ConnectorError("the manifests are missing from this installation; reinstall the "
                         "package (pip install --force-reinstall tiktok-following-connector)")


@cache
def load_all() -> dict[str, dict[str, Any]]:
    """Every manifest by key: `connector` plus one per operation."""
    folder = manifest_dir()
    out = {}
    for path in sorted(folder.glob("*.json")):
        with path.open(encoding="utf-8") as f:
            out[path.stem] = json.load(f)
    return out


def load(key: str) -> dict[str, Any]:
    manifests = load_all()
    if key not in manifests:
        raise InputError(f"unknown manifest {key!r}; known: {', '.join(manifests)}",
                         field="operation")
    return manifests[key]


def operation_keys() -> list[str]:
    return list(load(CONNECTOR_KEY)["operations"])


@cache
def validator(key: str) -> Any:
    """One compiled Draft 2020-12 validator per operation's input schema, reused."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load(key)["input"])


def prepare_inputs(key: str, inputs: Any) -> dict[str, Any]:
    """Coerce form values, apply defaults and validate, naming the field on error.

    Form builders send blanks as "" and numbers as strings ("30"); both are accepted the way
    a person filling the form meant them.
    """
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        raise InputError("inputs must be an object of field values", field="inputs")
    schema = load(key)["input"]
    props: dict[str, Any] = schema.get("properties", {})
    values: dict[str, Any] = {}
    for name, value in inputs.items():
        if value is None or (isinstance(value, str) and not value.strip() and name != "handle"):
            continue  # a blank optional field means "not set"
        values[name] = _coerce(value, props.get(name, {}))
        if isinstance(values[name], float) and not math.isfinite(values[name]):
            # jsonschema counts NaN and Infinity as numbers, but they are not JSON.
            raise InputError(f"{name} must be a finite number; got {value!r}", field=name)
    for name, prop in props.items():
        if name not in values and "default" in prop:
            values[name] = prop["default"]
    errors = sorted(validator(key).iter_errors(values), key=lambda e: list(e.path))
    if errors:
        raise _input_error(errors[0], props)
    return values


def _coerce(value: Any, prop: dict[str, Any]) -> Any:
    types = prop.get("type")
    types = types if isinstance(types, list) else [types]
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text.startswith("-") else text
        if ("integer" in types or "number" in types) and digits.isdigit() and digits.isascii():
            # Exact, however many digits a cursor has; past 19 it is no cursor or count, and
            # stays text, to be refused by name as not a number.
            return int(text) if len(digits) <= 19 else value
        if "number" in types:
            try:
                number = float(text)
            except ValueError:
                return value
            if not math.isfinite(number):
                return value  # "nan", "inf": reported as not a number
            return int(number) if number.is_integer() else number
        if "boolean" in types and text.lower() in ("true", "false"):
            return text.lower() == "true"
    if "integer" in types and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**19:
        return _TOO_BIG  # refused below by name, without printing it
    return value


#: A number too large for any field: replaces it before validation, so the error message never
#: has to print a 5,000-digit number (which Python refuses to turn into text).
_TOO_BIG = "(a number of more than 19 digits)"


def _input_error(error: Any, props: dict[str, Any]) -> InputError:
    kind = error.validator
    if kind == "required":
        field = error.message.split("'")[1]
        hint = props.get(field, {}).get("description", "")
        return InputError(f"{field} is required. {hint}".strip(), field=field)
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(props))
        field = extra[0] if extra else None
        return InputError(f"unknown input {field!r}; the inputs are: {', '.join(props)}",
                          field=field)
    field = str(error.path[0]) if error.path else None
    prop = props.get(field or "", {})
    title = f"{field} ({prop['title']})" if prop.get("title") else str(field)
    value = _shown(error.instance)
    if kind == "pattern" and field == "handle":
        try:
            normalize_handle(error.instance)
        except InputError as err:
            return err  # its message says what is wrong with the handle, in the user's terms
    if kind == "enum":
        text = f"must be one of {', '.join(map(str, error.validator_value))}"
    elif kind == "oneOf" and all("const" in branch for branch in error.validator_value):
        # A choice with labels (oneOf of const + title): the values to send, as for an enum.
        text = f"must be one of {', '.join(str(b['const']) for b in error.validator_value)}"
    elif kind == "minimum":
        text = f"must be at least {error.validator_value}"
    elif kind == "maximum":
        text = f"must be at most {error.validator_value}"
    elif kind == "type":
        text = f"must be {'an' if error.validator_value == 'integer' else 'a'} " \
               f"{error.validator_value}"
    elif kind in ("minLength", "maxLength"):
        text = "must not be empty" if kind == "minLength" else (
            f"is too long (at most {error.validator_value} characters)")
    elif kind == "pattern":
        text = "does not have the expected form"
    else:
        text = error.message
    return InputError(f"{title} {text}; got {value}", field=field)


def _shown(value: Any) -> str:
    if value == _TOO_BIG:
        return value
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
