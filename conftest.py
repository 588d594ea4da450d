"""The docs' snippets as tests (tests/doc_snippets.py): pytest collects README.md and docs/*.md
through Sybil, as `testpaths` in pyproject.toml names them.

And how `pytest` alone (the whole suite, as the README and CI run it) spreads over the
machine's cores with pytest-xdist (in the `test` extra): a test file, or a document, is one
unit that a worker runs whole (a document's snippets share one world, and a test file's
fixtures are set up once); the documents whose snippets listen on the same fixed ports (8787,
8790: README.md and docs/n8n.md) are one unit, so they never run at once. Two workers a core
(the suite mostly waits). `pytest` with paths (a file while you work) runs in this process, as
does `-n 0` or `-p no:xdist`; `-n N` picks the number of workers for any run."""

from __future__ import annotations

import os

import pytest

from tests.doc_snippets import pytest_collect_file

__all__ = ["pytest_collect_file"]

#: Documents whose snippets listen on the same fixed ports, run by one worker one after another.
SHARING_PORTS = ("README.md", "docs/n8n.md")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The whole suite on every core, a file at a time (xdist's own default is one process)."""
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return
    whole_suite = config.args_source == pytest.Config.ArgsSource.TESTPATHS
    if whole_suite and config.option.numprocesses is None and not config.option.tx:
        config.option.numprocesses = "auto"
    if config.option.dist == "no":
        config.option.dist = "loadfile"


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """Twice as many workers as cores: the suite mostly waits (child processes, servers on
    loopback, PostgreSQL), its CPU time about half its time on the clock with one per core.
    PYTEST_XDIST_AUTO_NUM_WORKERS still decides when set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return 2 * (os.cpu_count() or 1)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if config.getvalue("dist") != "loadfile":
        return None  # what was asked for on the command line
    from xdist.scheduler import LoadFileScheduling

    class FilesAndPortSharingDocs(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return " + ".join(SHARING_PORTS) if scope in SHARING_PORTS else scope

    return FilesAndPortSharingDocs(config, log)
