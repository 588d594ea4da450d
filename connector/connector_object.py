"""The object the `automation.connectors` entry point names: what a runner discovers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .api import run
from .core import manifests
from .operations import Result


@dataclass(frozen=True)
class Connector:
    """Everything a runner needs: the manifests and one call to run an operation."""

    key: str = "tiktok_following"

    @property
    def manifest(self) -> dict[str, Any]:
        return manifests.load(manifests.CONNECTOR_KEY)

    @property
    def operations(self) -> dict[str, dict[str, Any]]:
        return {key: manifests.load(key) for key in manifests.operation_keys()}

    def run(self, operation: str, inputs: dict[str, Any], **kwargs: Any) -> Result:
        return run(operation, inputs, **kwargs)


CONNECTOR = Connector()
