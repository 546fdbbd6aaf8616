"""What the wheel and the sdist carry: built from a copy of the repository (the source tree
gets no ``build/``), with the build backend ``pyproject.toml`` names (setuptools>=77).

The wheel: the package, its schema as package data (``policyengine/data/policy.schema.json``,
equal to what ``policyengine schema`` prints) and the LICENSE; installed alone, ``policyengine
schema`` works. The sdist: the package and its data, README, LICENSE; no tests (MANIFEST.in),
since they need the repository's packs and examples. By hand: ``python -m build`` where
``build`` is installed.

Building fetches setuptools through pip (the index or its cache); without them the tests skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from policyengine.language.model import policy_json_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "policyengine/data/policy.schema.json"
SKIP = {".venv", ".git", "build", "dist"}


def _pip(*args: str, cwd: Path | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, cwd=cwd, timeout=180
    )
    if done.returncode != 0:
        pytest.skip(f"pip {args[0]} failed (no index?): {done.stderr[-400:]}")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository without its virtualenv, caches and build output."""
    dest = tmp_path_factory.mktemp("repo")
    for entry in ROOT.iterdir():
        if entry.name in SKIP or entry.name.startswith("."):
            continue
        if entry.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".*")
            shutil.copytree(entry, dest / entry.name, ignore=ignore)
        else:
            shutil.copy2(entry, dest / entry.name)
    return dest


@pytest.fixture(scope="module")
def wheel(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _pip("wheel", "--no-deps", "-q", "-w", str(out), str(tree))
    (found,) = out.glob("policyengine-*.whl")
    return found


def test_wheel_carries_schema_and_license(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert SCHEMA in names
        assert json.loads(z.read(SCHEMA)) == policy_json_schema()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in meta
    assert not any(n.startswith(("tests/", "policies/")) for n in names)


def test_installed_wheel_prints_the_schema(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    _pip("install", "--no-deps", "-q", "--target", str(target), str(wheel))
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import policyengine, sys; from policyengine.cli import main; "
        "assert policyengine.__file__.startswith(sys.argv[1]), policyengine.__file__; "
        "raise SystemExit(main(['schema']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (target / SCHEMA).read_text(encoding="utf-8")


def test_sdist_is_the_package_without_tests(tree: Path, tmp_path: Path) -> None:
    backend = tmp_path / "setuptools"
    _pip("install", "-q", "--target", str(backend), "setuptools>=77")
    out = tmp_path / "dist"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from setuptools import build_meta; "
        "print(build_meta.build_sdist(sys.argv[2]))"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code, str(backend), str(out)],
        capture_output=True,
        text=True,
        cwd=tree,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with tarfile.open(out / done.stdout.split()[-1]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "pyproject.toml", f"src/{SCHEMA}"} <= names
    assert "src/policyengine/cli.py" in names
    assert not any(n.startswith(("tests", "policies", "examples", "benchmarks")) for n in names)
