"""Data flows one way: surfaces -> operations -> core. Checked on the source with `ast`, so a
lazy import inside a function counts as much as one at the top of a module."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "connector"

SURFACES = (
    "connector.api",
    "connector.cli",
    "connector.invoke",
    "connector.store_api",
    "connector.watch",
    "connector.connector_object",
)
OPERATIONS = ("connector.operations",)
STAND_IN = ("connector.sandbox",)
HEAVY = ("jsonschema", "requests", "sqlite3")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module `module` imports, relative imports resolved; `from x import y` also
    counts `x.y`, since y may be a submodule."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def package_imports() -> dict[str, set[str]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        source = path.read_text(encoding="utf-8")
        out[name] = imports_of(source, name, is_package=path.name == "__init__.py")
    return out


def reaching(imports: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(i for i in imports if any(i == f or i.startswith(f + ".") for f in forbidden))


def in_layer(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def test_the_import_reader_resolves_relative_and_lazy_imports() -> None:
    source = (
        "from .errors import InputError\n"
        "from ..operations import action\n"
        "def later():\n"
        "    from .. import cli\n"
        "    import requests\n"
    )
    found = imports_of(source, "connector.core.http")
    assert {"connector.core.errors", "connector.operations.action", "connector.cli"} <= found
    assert "requests" in found
    assert reaching(found, SURFACES) == ["connector.cli"]
    assert imports_of("from .core import http", "connector", is_package=True) >= {
        "connector.core.http"
    }


def test_the_package_has_the_layers_this_file_checks() -> None:
    modules = package_imports()
    assert {"connector.core.http", "connector.operations.action", "connector.api"} <= set(modules)


@pytest.mark.parametrize("module", [m for m in package_imports() if in_layer(m, "connector.core")])
def test_the_core_imports_nothing_from_operations_surfaces_or_the_stand_in(module: str) -> None:
    imports = package_imports()[module]
    # Nor the top-level package: it re-exports the surfaces.
    assert reaching(imports, ("connector.operations", *SURFACES, *STAND_IN)) == []
    assert "connector" not in imports


@pytest.mark.parametrize(
    "module", [m for m in package_imports() if in_layer(m, "connector.operations")]
)
def test_operations_import_nothing_from_the_surfaces(module: str) -> None:
    imports = package_imports()[module]
    assert reaching(imports, (*SURFACES, *STAND_IN)) == []
    assert "connector" not in imports


def test_the_stand_in_stands_on_the_core_alone() -> None:
    imports = package_imports()["connector.sandbox"]
    assert reaching(imports, (*OPERATIONS, *SURFACES)) == []


def test_nothing_in_the_package_imports_the_cli() -> None:
    importers = [m for m, found in package_imports().items() if reaching(found, ("connector.cli",))]
    assert importers == []


def test_importing_connector_loads_no_heavy_dependency() -> None:
    script = (
        "import sys, json, connector\n"
        "from connector import cli\n"
        "cli._parser()  # --help builds this and nothing more\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_the_check_above_sees_a_heavy_import() -> None:
    script = (
        "import sys, json, connector\n"
        "connector.run\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert "requests" in json.loads(proc.stdout)
