"""What `python -m build` makes (issue 21): an sdist and a wheel that pass `twine check --strict`,
the wheel holding the manifests and the console script, the sdist enough to build the wheel."""

from __future__ import annotations

import json
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from connector.core import manifests
from tests.support import ROOT, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An sdist, and a wheel built from it (what `python -m build` does), with the build
    backend installed here: no isolated environment, nothing downloaded."""
    out = tmp_path_factory.mktemp("dist")
    built = run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                 str(ROOT)], key=None, timeout=300)
    assert built.code == 0, built.output
    return out


def test_the_sdist_and_the_wheel_pass_twine_check_strict(dist: Path) -> None:
    files = sorted(p.name for p in dist.iterdir())
    version = manifests.load("connector")["version"]
    assert files == [f"tiktok_following_connector-{version}-py3-none-any.whl",
                     f"tiktok_following_connector-{version}.tar.gz"]
    check = run([sys.executable, "-m", "twine", "check", "--strict",
                 *(str(dist / f) for f in files)], key=None)
    assert check.code == 0, check.output
    assert check.stdout.count("PASSED") == 2


def test_the_wheel_holds_the_manifests_and_the_console_script(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        shipped = {Path(n).stem: json.loads(zf.read(n)) for n in names
                   if n.startswith("connector/manifests/") and n.endswith(".json")}
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entries = zf.read(entry_points).decode()
    assert shipped == manifests.load_all()
    assert "tiktok-following = connector.cli:main" in entries
    assert "tiktok_following = connector:CONNECTOR" in entries


def test_the_sdist_holds_what_the_wheel_and_the_tests_need(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for needed in ("pyproject.toml", "README.md", "connector/cli/__init__.py",
                   "manifests/connector.json", "tests/data/handle_corpus.json"):
        assert needed in names, needed
