"""Data flows one way: surfaces -> operations -> core. Checked on the source with `ast`, so a
lazy import inside a function counts as much as one at the top of a module."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from tests.support import ROOT, run_python

PACKAGE = ROOT / "connector"

#: Each unit of the package and the units it may import. Imports point down only: the core
#: knows nothing above it; the triggers' state stands on the core alone; operations (on the
#: state) and storage stand on the core, side by side (storage never knows the state's form);
#: the two services (`api`, `store`) use them; surfaces use the services and never one
#: another; the command line, on top, may use every surface. A unit may always import itself.
CORE = "connector.core"
STATE = "connector.state"
ALLOWED: dict[str, set[str]] = {
    CORE: set(),
    STATE: {CORE},
    "connector.operations": {CORE, STATE},
    "connector.storage": {CORE},
    "connector.api": {CORE, "connector.operations"},
    "connector.store": {CORE, STATE, "connector.operations", "connector.storage"},
    # The runner protocol both request/response surfaces speak (invoke, serve).
    "connector.protocol": {CORE, "connector.operations", "connector.api"},
    "connector.invoke": {CORE, "connector.operations", "connector.api", "connector.protocol"},
    "connector.serve": {CORE, "connector.operations", "connector.api", "connector.protocol"},
    "connector.watch": {CORE, "connector.operations", "connector.storage", "connector.store"},
    "connector.standin": {CORE},
    "connector.cli": {CORE, "connector.operations", "connector.storage", "connector.api",
                      "connector.store", "connector.protocol", "connector.invoke",
                      "connector.serve", "connector.watch", "connector.standin"},
}
SURFACES = ("connector.invoke", "connector.serve", "connector.watch", "connector.standin")
HEAVY = ("jsonschema", "urllib3", "sqlite3", "waitress")
#: The most lines a module of the package may have (issue 19).
MAX_LINES = 400


def unit_of(module: str) -> str | None:
    """The unit a module belongs to (None for the package's own __init__)."""
    return next((u for u in ALLOWED if module == u or module.startswith(u + ".")), None)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str | ast.Module, module: str, *, is_package: bool = False) -> set[str]:
    """Every module `module` imports, relative imports resolved; `from x import y` also
    counts `x.y`, since y may be a submodule. `source` is its text, or its parsed tree."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(parsed(source)):
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


def parsed(source: str | ast.Module) -> ast.Module:
    return source if isinstance(source, ast.Module) else ast.parse(source)


@functools.cache
def package_sources() -> dict[str, tuple[str, bool]]:
    """Every module of the package, read once for the whole session: its text, and whether it
    is a package's __init__."""
    return {module_name(path): (path.read_text(encoding="utf-8"), path.name == "__init__.py")
            for path in sorted(PACKAGE.rglob("*.py"))}


@functools.cache
def package_trees() -> dict[str, tuple[ast.Module, bool]]:
    """Every module of the package, parsed once for the whole session: its tree, and whether
    it is a package's __init__."""
    return {name: (ast.parse(text), is_package)
            for name, (text, is_package) in package_sources().items()}


@functools.cache
def package_imports() -> dict[str, frozenset[str]]:
    return {name: frozenset(imports_of(tree, name, is_package=is_package))
            for name, (tree, is_package) in package_trees().items()}


def reaching(imports: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(i for i in imports if any(i == f or i.startswith(f + ".") for f in forbidden))


def in_layer(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def test_the_package_is_parsed_once_for_every_check(monkeypatch) -> None:
    package_trees(), package_imports()  # parsed already, for the parametrize below

    def refuse(*args: object, **kwargs: object) -> ast.Module:
        raise AssertionError("the package was parsed again")

    monkeypatch.setattr(ast, "parse", refuse)
    assert package_imports() is package_imports()
    test_no_module_imports_another_modules_private_names()
    test_every_module_of_the_package_belongs_to_a_unit()


def test_every_module_is_at_most_400_lines() -> None:
    # Issue 19: a module past this holds more than one idea; split it where it divides.
    long = {name: lines for name, (text, _) in package_sources().items()
            if (lines := len(text.splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


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
    assert unit_of("connector.cli") == "connector.cli"
    assert imports_of("from .core import http", "connector", is_package=True) >= {
        "connector.core.http"
    }


def test_every_module_of_the_package_belongs_to_a_unit() -> None:
    modules = package_imports()
    assert {"connector.core.http", "connector.operations.action", "connector.api",
            "connector.state.memory", "connector.storage.sqlite", "connector.store",
            "connector.watch.watcher"} <= set(modules)
    assert [m for m in modules if m != "connector" and unit_of(m) is None] == []


@pytest.mark.parametrize("module", [m for m in package_imports() if m != "connector"])
def test_imports_point_down_only(module: str) -> None:
    own = unit_of(module)
    assert own is not None
    wrong = sorted(
        target for target in package_imports()[module]
        if (target == "connector" or target.startswith("connector."))
        and (target == "connector" or unit_of(target) not in ALLOWED[own] | {own})
    )
    assert wrong == [], f"{module} ({own}) reaches {wrong}"


def private_imports(source: str | ast.Module, module: str, *,
                    is_package: bool = False) -> list[str]:
    """The private names (`_x`) `module` imports from another module of the package (a
    package's own helpers, in its __init__, are its submodules' to use)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(parsed(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            if (ROOT / target.replace(".", "/")).is_dir():
                continue
            found += [f"{target}.{a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    found = {name: private_imports(tree, name, is_package=is_package)
             for name, (tree, is_package) in package_trees().items()}
    assert {m: names for m, names in found.items() if names} == {}


def test_the_private_import_check_sees_one() -> None:
    source = "from .poll import _hidden, shown\nfrom . import _package_helper\n"
    assert private_imports(source, "connector.operations.walk") == [
        "connector.operations.poll._hidden"]


def test_no_surface_imports_another_surface() -> None:
    for surface in SURFACES:
        assert not ALLOWED[surface] & (set(SURFACES) | {"connector.cli"})


def test_the_layer_check_sees_an_import_pointing_up() -> None:
    # What the check above would say of a core module reaching into a surface.
    found = imports_of("from ..watch import watcher", "connector.core.http")
    assert {unit_of(t) for t in found if t.startswith("connector.")} - ALLOWED[CORE] == {
        "connector.watch"}


def test_importing_connector_loads_no_heavy_dependency() -> None:
    script = (
        "import sys, json, connector\n"
        "from connector import cli\n"
        "cli._parser()  # --help builds this and nothing more\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    run = run_python(script)
    assert run.code == 0, run.stderr
    assert run.json == []


def test_the_check_above_sees_a_heavy_import() -> None:
    script = (
        "import sys, json, connector\n"
        "connector.run\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    run = run_python(script)
    assert run.code == 0, run.stderr
    assert "urllib3" in run.json


def test_the_package_speaks_http_through_urllib3_without_requests() -> None:
    # requests is a test dependency only: the transport (core/transport.py) is urllib3's.
    modules = package_imports()
    assert reaching(modules["connector.core.transport"], ("urllib3",))
    assert {m: found for m, i in modules.items() if (found := reaching(i, ("requests",)))} == {}
