"""The public surface of `connector` is exactly `__all__` (after httpx's test of the same name).

Names are imported lazily on first use, so the check resolves every one of them, compares
`__all__` with the names type checkers see, and makes sure nothing else leaks out.
"""

from __future__ import annotations

import ast
import inspect
import types
from pathlib import Path

import pytest

import connector

INIT = Path(connector.__file__)
# Module-level helpers of __init__.py that are not part of the API.
PLUMBING = {"annotations", "importlib", "TYPE_CHECKING", "Any"}


def type_checking_names() -> set[str]:
    """The names imported under `if TYPE_CHECKING:` in connector/__init__.py."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in ast.walk(node):
                if isinstance(stmt, ast.ImportFrom):
                    names.update(alias.asname or alias.name for alias in stmt.names)
    return names


def test_all_is_sorted_and_unique() -> None:
    assert connector.__all__ == sorted(set(connector.__all__))


def test_every_name_in_all_resolves() -> None:
    for name in connector.__all__:
        assert getattr(connector, name) is not None, name


def test_all_matches_what_type_checkers_see() -> None:
    assert set(connector.__all__) == type_checking_names()


def test_all_imports_are_exported() -> None:
    for name in connector.__all__:
        getattr(connector, name)
    public = {
        member
        for member in vars(connector)
        if not member.startswith("_")
        and member not in PLUMBING
        # Submodules appear as attributes once imported; they are reached by their path.
        and not (
            isinstance(vars(connector)[member], types.ModuleType)
            and member not in connector.__all__
        )
    }
    assert public == set(connector.__all__)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from connector import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == connector.__all__


def test_each_name_comes_from_the_module_it_is_documented_in() -> None:
    from connector import _EXPORTS

    for name, module in _EXPORTS.items():
        value = getattr(connector, name)
        if inspect.ismodule(value):
            assert value.__name__ == module, name
        elif inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == module, name
        else:
            assert type(value).__module__ == module, name


def test_the_errors_form_one_tree_rooted_in_connector_error() -> None:
    errors = [getattr(connector, n) for n in connector.__all__ if n.endswith("Error")]
    assert len(errors) >= 13
    for cls in errors:
        assert issubclass(cls, connector.ConnectorError), cls
        assert cls.__doc__ and cls.__doc__.strip(), cls  # says when it happens


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        connector.nope  # noqa: B018


def test_dir_lists_the_public_names() -> None:
    assert dir(connector) == connector.__all__


def test_the_version_is_the_package_version() -> None:
    from importlib.metadata import version

    assert connector.__version__ == version("tiktok-following-connector")
