"""The manifests as other form builders' field definitions (`tiktok-following export`).

The manifests are the one source. A JSON-Schema form library reads them as they are, and the
n8n node package converts them at build time (integrations/n8n/scripts/generate.mjs). This
module converts them for the Zapier Platform: `inputFields`, `outputFields`, a sample and the
authentication fields, with the choice labels, defaults, bounds and advanced markers kept.
"""

from __future__ import annotations

from typing import Any

from . import manifests
from .errors import InputError

_ZAPIER_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean"}


def zapier(key: str | None = None) -> dict[str, Any]:
    """Zapier Platform definitions for every operation (or one), plus authentication."""
    connector = manifests.load(manifests.CONNECTOR_KEY)
    keys = [key] if key else manifests.operation_keys()
    if key is not None and key not in manifests.operation_keys():
        raise InputError(f"unknown operation {key[:60]!r}; the operations are: "
                         f"{', '.join(manifests.operation_keys())}", field="operation")
    auth = connector["auth"]
    return {
        "authentication": {
            "type": "custom",
            "fields": [_zapier_field(name, auth["properties"][name],
                                     name in auth.get("required", []))
                       for name in auth.get("x-order", auth["properties"])],
            "test": connector.get("connectionTest", {}),
        },
        "operations": {k: _zapier_operation(manifests.load(k)) for k in keys},
    }


def _zapier_operation(manifest: dict[str, Any]) -> dict[str, Any]:
    schema = manifest["input"]
    required = set(schema.get("required", []))
    output = manifest["output"]["properties"]
    return {
        "key": manifest["key"],
        "kind": manifest["kind"],  # a trigger is a polling trigger; an action a search/create
        "display": {"label": manifest["label"], "description": manifest["description"]},
        "inputFields": [_zapier_field(name, schema["properties"][name], name in required)
                        for name in schema.get("x-order", schema["properties"])],
        "outputFields": [{"key": name, "label": prop.get("title", name),
                          "type": _zapier_type(prop)} for name, prop in output.items()],
        "sample": manifest["sample"],
        # Zapier's fields have no "advanced" flag (and accept no unknown keys): listed apart.
        "advancedFields": [n for n, p in schema["properties"].items() if p.get("x-advanced")],
    }


def _zapier_field(name: str, prop: dict[str, Any], required: bool) -> dict[str, Any]:
    field: dict[str, Any] = {"key": name, "label": prop.get("title", name),
                             "required": required, "type": _zapier_type(prop)}
    if prop.get("description"):
        field["helpText"] = prop["description"]
    if "default" in prop:
        field["default"] = str(prop["default"])  # Zapier's defaults are text
    if prop.get("examples"):
        field["placeholder"] = str(prop["examples"][0])
    if "oneOf" in prop:
        field["choices"] = [{"value": c["const"], "label": c.get("title", c["const"]),
                             "sample": c["const"]} for c in prop["oneOf"]]
    if prop.get("writeOnly") or prop.get("x-secret"):
        field["type"] = "password"
    return field


def _zapier_type(prop: dict[str, Any]) -> str:
    types = prop.get("type")
    types = types if isinstance(types, list) else [types]
    return next((_ZAPIER_TYPES[t] for t in types if t in _ZAPIER_TYPES), "string")
