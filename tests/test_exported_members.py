"""The public surface of `connector` is exactly the list below (after httpx's test of the same
name): the product, not the stand-in or the plumbing.

The list is written out here, so a name added to or dropped from `connector` fails a test until
it is added here too, on purpose. Names are imported lazily on first use, so the checks resolve
every one of them, and also compare what `dir()`, star imports and type checkers see.
"""

from __future__ import annotations

import ast
import inspect
import types
from pathlib import Path

import pytest

import connector
from tests.support import run_python

INIT = Path(connector.__file__)

#: The API, by what it is for.
OPERATIONS = ["run", "stream", "check_credentials", "CONNECTOR", "Result", "Partial", "Listing"]
SETTINGS = ["RetryPolicy", "Timeouts"]
CLIENT_SEAM = ["Client", "Page", "PageSource"]
STORE = ["open_store", "Store", "Batch"]
WATCH = ["Watcher", "WatcherGroup", "Webhook", "Outbox", "Metrics", "watch_status"]
ERRORS = ["ConnectorError", "InputError", "ConfigurationError", "StateError", "ApiError",
          "BadRequestError", "AuthenticationError", "InsufficientCreditsError",
          "NotFoundError", "ServerError", "UpstreamError", "RateLimitError",
          "ResponseFormatError", "TransportError", "StateConflict", "DatabaseUnavailable"]
EXPECTED = sorted([*OPERATIONS, *SETTINGS, *CLIENT_SEAM, *STORE, *WATCH, *ERRORS,
                   "__version__"])
#: What was exported once and is not the product: the stand-in is a testing tool
#: (`connector.standin`), `prepare` and the manifests module are plumbing.
NOT_EXPORTED = ["StandIn", "Fault", "prepare", "manifests"]
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


def test_all_is_exactly_the_product() -> None:
    assert connector.__all__ == EXPECTED


def test_the_stand_in_and_the_plumbing_are_not_exported_but_say_where_they_went() -> None:
    for name in NOT_EXPORTED:
        assert name not in connector.__all__
        with pytest.raises(AttributeError, match=f"no attribute '{name}'; it is connector"):
            getattr(connector, name)
    from connector.standin import Fault, StandIn  # where the testing tool lives

    assert (StandIn.__module__, Fault.__module__) == ("connector.standin.server",
                                                      "connector.standin.faults")


def test_the_errors_the_store_raises_are_exported() -> None:
    from connector.store import Batch

    # Batch.commit raises StateConflict; a store on PostgreSQL raises DatabaseUnavailable.
    assert "StateConflict" in (Batch.commit.__doc__ or "")
    assert connector.StateConflict.code == "state_conflict"
    assert connector.DatabaseUnavailable.code == "database_unavailable"


def test_every_name_in_all_resolves() -> None:
    for name in connector.__all__:
        assert getattr(connector, name) is not None, name


def test_all_matches_what_type_checkers_see() -> None:
    assert set(connector.__all__) - {"__version__"} == type_checking_names()


def test_all_imports_are_exported() -> None:
    for name in connector.__all__:
        getattr(connector, name)
    public = {
        member
        for member in vars(connector)
        if (not member.startswith("_") or member == "__version__")
        and member not in PLUMBING
        # Submodules appear as attributes once imported; they are reached by their path.
        and not isinstance(vars(connector)[member], types.ModuleType)
    }
    assert sorted(public) == EXPECTED


def test_star_import_gives_exactly_the_product() -> None:
    namespace: dict[str, object] = {}
    exec("from connector import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == EXPECTED


def test_dir_lists_the_public_names_and_nothing_else() -> None:
    # In a fresh interpreter: what dir() shows before any name was used, and after.
    run = run_python(
        "import json, connector\n"
        "before = dir(connector)\n"
        "connector.run, connector.Watcher\n"
        "print(json.dumps([before, dir(connector)]))\n")
    assert run.code == 0, run.stderr
    before, after = run.json
    assert before == after == sorted(EXPECTED)


def test_each_name_comes_from_the_module_it_is_documented_in() -> None:
    from connector import _EXPORTS

    for name, module in _EXPORTS.items():
        value = getattr(connector, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == module, name
        else:
            assert type(value).__module__ == module, name


def test_the_errors_form_one_tree_rooted_in_connector_error() -> None:
    errors = [getattr(connector, n) for n in ERRORS]
    for cls in errors:
        assert issubclass(cls, connector.ConnectorError), cls
        assert cls.__doc__ and cls.__doc__.strip(), cls  # says when it happens
    from connector.core.errors import ConnectorError

    # Every class of the tree is exported, none is left out.
    def tree(cls: type) -> set[str]:
        return {cls.__name__}.union(*(tree(sub) for sub in cls.__subclasses__()
                                      if sub.__module__ == "connector.core.errors"))

    assert tree(ConnectorError) == set(ERRORS)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match=r"no attribute 'nope'$"):
        connector.nope  # noqa: B018


def test_connector_watch_is_modules_not_a_second_api() -> None:
    import connector.watch as watch

    assert not hasattr(watch, "__all__")
    # Old imports still work, and give the one API's objects.
    from connector.watch import Outbox, Watcher, WatcherGroup, Webhook

    assert (Watcher, WatcherGroup, Webhook, Outbox) == (
        connector.Watcher, connector.WatcherGroup, connector.Webhook, connector.Outbox)
    from connector.watch import processes

    assert processes.WatcherGroup is connector.WatcherGroup


def test_importing_connector_and_its_dir_loads_nothing_heavy() -> None:
    run = run_python(
        "import json, sys, connector\n"
        "dir(connector), connector.__all__, connector.__version__\n"
        "print(json.dumps([m for m in ('requests', 'jsonschema', 'sqlite3', 'urllib3') "
        "if m in sys.modules]))\n")
    assert run.code == 0, run.stderr
    assert run.json == []


def test_the_version_is_the_package_version() -> None:
    from importlib.metadata import version

    assert connector.__version__ == version("tiktok-following-connector")
