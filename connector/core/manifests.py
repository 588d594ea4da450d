"""The JSON manifests runners draw forms from, and input validation against them.

The files live in the repository's top-level `manifests/` and ship inside the wheel as
`connector/manifests/`; both places are looked in, so a checkout and an install behave alike.

Inputs are checked against the manifest's JSON Schema in two steps. `conforms` reads the
schema's common keywords directly and answers "valid" only when it is sure; anything else (an
invalid value, a keyword it does not read) goes to jsonschema, which decides and words the
error. So well-formed input, the usual case, never imports jsonschema or builds a validator
(most of a single `invoke`'s CPU once was), and the manifest stays the one source of the rules.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ConnectorError, InputError
from .handles import normalize_handle
from .redact import shown

CONNECTOR_KEY = "connector"


def manifest_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "manifests", here.parent / "manifests"):
        if (candidate / f"{CONNECTOR_KEY}.json").is_file():
            return candidate
    raise ConnectorError("the manifests are missing from this installation; reinstall the "
                         "package from its clone (pip install --force-reinstall .) or from a "
                         "wheel built there (pip install --force-reinstall dist/*.whl)")


@cache
def load_all() -> dict[str, dict[str, Any]]:
    """Every manifest by key: `connector` plus one per operation."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(manifest_dir().glob("*.json"))}


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
    if not isinstance(inputs, Mapping):
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
    if not conforms(values, schema):
        errors = sorted(validator(key).iter_errors(values), key=_first_to_tell)
        if errors:
            raise _input_error(errors[0], props)
    return values


def _first_to_tell(error: Any) -> tuple[bool, list]:
    """Which error to report first: an unknown input before anything else (a misspelt
    `handel` is why `handle` is missing), then by field."""
    return error.validator != "additionalProperties", [str(p) for p in error.path]


# --------------------------------------------------------------------------- the quick check

#: Keywords that never make an instance invalid (annotations), so `conforms` may skip them.
#: `format` is an annotation too: the validator is built without a format checker.
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "default",
                          "examples", "deprecated", "readOnly", "writeOnly", "format",
                          "contentMediaType", "contentEncoding"})
_NUMBERS = (int, float)


def conforms(instance: Any, schema: Any) -> bool:
    """True only if `instance` is valid against `schema` as Draft 2020-12 sees it, judged from
    the keywords read here; False means "not sure": an invalid instance, or a keyword this
    check does not read (jsonschema then decides). Never True for what jsonschema refuses."""
    if schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    for keyword, rule in schema.items():
        if keyword in _ANNOTATIONS or keyword.startswith("x-"):
            continue
        check = _KEYWORDS.get(keyword)
        if check is None or not check(instance, rule, schema):
            return False
    return True


#: Each JSON Schema type, as Python sees a parsed instance (a bool is no number).
_TYPES = {
    "string": lambda i: type(i) is str,
    "integer": lambda i: type(i) is int or (type(i) is float and i.is_integer()),
    "number": lambda i: type(i) in _NUMBERS,
    "boolean": lambda i: type(i) is bool,
    "null": lambda i: i is None,
    "object": lambda i: type(i) is dict,
    "array": lambda i: type(i) is list,
}


def _same(a: Any, b: Any) -> bool:
    """JSON equality for scalars (true is not 1); containers are left to jsonschema."""
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return a == b


def _type(instance: Any, rule: Any, schema: dict) -> bool:
    names = rule if isinstance(rule, list) else [rule]
    return any(type(n) is str and n in _TYPES and _TYPES[n](instance) for n in names)


def _bound(compare: Any, length: bool = False) -> Any:
    """A number's bound, or a string's `length` bound: other instances pass."""
    kinds, rules = ((str,), (int,)) if length else (_NUMBERS, _NUMBERS)

    def check(instance: Any, rule: Any, schema: dict) -> bool:
        return type(instance) not in kinds or (
            type(rule) in rules and compare(len(instance) if length else instance, rule))
    return check


def _properties(instance: Any, rule: Any, schema: dict) -> bool:
    if type(instance) is not dict:
        return True
    return isinstance(rule, dict) and all(
        conforms(value, rule[name]) for name, value in instance.items() if name in rule)


def _additional(instance: Any, rule: Any, schema: dict) -> bool:
    if type(instance) is not dict:
        return True
    if "patternProperties" in schema:
        return False  # which names the patterns cover is jsonschema's to say
    known = schema.get("properties", {})
    return all(conforms(value, rule) for name, value in instance.items() if name not in known)


def _pattern(instance: Any, rule: Any, schema: dict) -> bool:
    """As jsonschema reads `pattern`: a Python regular expression, searched (not anchored)."""
    if type(instance) is not str:
        return True
    return isinstance(rule, str) and re.search(rule, instance) is not None


def _required(instance: Any, rule: Any, schema: dict) -> bool:
    return type(instance) is not dict or (isinstance(rule, list)
                                          and all(name in instance for name in rule))


_KEYWORDS = {
    "type": _type,
    "enum": lambda i, rule, s: isinstance(rule, list) and any(_same(i, v) for v in rule),
    "const": lambda i, rule, s: _same(i, rule),
    "minimum": _bound(operator.ge),
    "maximum": _bound(operator.le),
    "exclusiveMinimum": _bound(operator.gt),
    "exclusiveMaximum": _bound(operator.lt),
    "minLength": _bound(operator.ge, length=True),
    "maxLength": _bound(operator.le, length=True),
    "pattern": _pattern,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "allOf": lambda i, rule, s: isinstance(rule, list) and all(conforms(i, r) for r in rule),
    "anyOf": lambda i, rule, s: isinstance(rule, list) and any(conforms(i, r) for r in rule),
    # Exactly one: sure only when one branch conforms and every other one is refused for
    # sure, which is the case for branches that are `const` (enum labels written as oneOf).
    "oneOf": lambda i, rule, s: isinstance(rule, list) and _one_of(i, rule),
}


def _one_of(instance: Any, branches: list) -> bool:
    matched = [b for b in branches if conforms(instance, b)]
    if len(matched) != 1:
        return False
    return all(isinstance(b, dict) and "const" in b and not _same(instance, b["const"])
               for b in branches if b is not matched[0])


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


#: What a value that fails a keyword is told, with the keyword's value in the braces.
_SAYS = {"enum": "must be one of {}", "minimum": "must be at least {}",
         "maximum": "must be at most {}", "minLength": "must not be empty",
         "maxLength": "is too long (at most {} characters)",
         "pattern": "does not have the expected form"}


def _input_error(error: Any, props: dict[str, Any]) -> InputError:
    kind = error.validator
    if kind == "required":
        field = error.message.split("'")[1]
        hint = props.get(field, {}).get("description", "")
        return InputError(f"{field} is required. {hint}".strip(), field=field)
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(props))
        field = extra[0] if extra else None
        hint = _did_you_mean(field, props, error.instance)
        return InputError(f"unknown input {field!r}{hint}; the inputs are: {', '.join(props)}",
                          field=field)
    field = str(error.path[0]) if error.path else None
    prop = props.get(field or "", {})
    title = f"{field} ({prop['title']})" if prop.get("title") else str(field)
    value = error.instance if error.instance == _TOO_BIG else shown(error.instance, 80)
    if kind == "pattern" and field == "handle":
        try:
            normalize_handle(error.instance)
        except InputError as err:
            return err  # its message says what is wrong with the handle, in the user's terms
    rule = error.validator_value
    if kind == "oneOf" and all("const" in branch for branch in rule):
        # A choice with labels (oneOf of const + title): the values to send, as for an enum.
        kind, rule = "enum", [branch["const"] for branch in rule]
    if kind == "enum":
        rule = ", ".join(map(str, rule))
    if kind == "type":
        text = f"must be {'an' if rule == 'integer' else 'a'} {rule}"
    else:
        text = _SAYS[kind].format(rule) if kind in _SAYS else error.message
    return InputError(f"{title} {text}; got {value}", field=field)


def _did_you_mean(name: str | None, props: dict[str, Any], given: dict[str, Any]) -> str:
    """A known input spelt like `name`, and not given already."""
    import difflib

    unused = [p for p in props if p not in given]
    close = difflib.get_close_matches(str(name), unused, n=1, cutoff=0.6) if name else []
    return f" (did you mean {close[0]!r}?)" if close else ""
