"""The docs' snippets as tests (tests/doc_snippets.py): pytest collects README.md and docs/*.md
through Sybil, as `testpaths` in pyproject.toml names them."""

from tests.doc_snippets import pytest_collect_file

__all__ = ["pytest_collect_file"]
