"""The structure the layers issue set up, checked so that it cannot erode unnoticed.

The import contracts themselves run in ``make lint`` (``lint-imports``); these tests add what
the contracts do not say: no import cycle between any two modules (not only siblings), the
engine's state and records declared once and used as declared, no oversized module.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import policyengine as pe
from policyengine.backends import snapshot_codec
from policyengine.backends.parallel import merger, shard
from policyengine.runtime import records, state
from policyengine.runtime.engine import World

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "policyengine"
MINI = """
policy: {id: mini, title: t, version: "1", timezone: Asia/Shanghai}
clauses: [{id: C-1, text: t, reading: r}]
events:
  bought: {fields: {customer: str}}
rules:
  - {id: r, clause: C-1, on: bought, then: [{assign: {owner: company}}]}
"""


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        "policyengine", include_external_packages=False, exclude_type_checking_imports=False
    )


def test_no_import_cycle_between_any_two_modules() -> None:
    """Tarjan's strongly connected components over every import, including imports inside
    functions and under TYPE_CHECKING: a component of more than one module is a cycle."""
    graph = _graph()
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(m: str) -> None:
        nonlocal counter
        index[m] = low[m] = counter
        counter += 1
        stack.append(m)
        on_stack.add(m)
        for n in sorted(graph.find_modules_directly_imported_by(m)):
            # a package's __init__ importing its own children is not a cycle of modules
            if n.startswith(m + "."):
                continue
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on_stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            component = []
            while True:
                n = stack.pop()
                on_stack.discard(n)
                component.append(n)
                if n == m:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for m in modules:
        if m not in index:
            visit(m)
    assert cycles == []


def _lint(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    found = Path(sys.executable).parent / "lint-imports"
    command = str(found) if found.exists() else shutil.which("lint-imports")
    assert command is not None, "install the dev extra: pip install -e '.[dev]'"
    return subprocess.run(
        [command, "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_the_layer_contracts_hold() -> None:
    """``make lint`` runs the same command; import-linter is a dev dependency."""
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_back_edge_breaks_the_contracts(tmp_path: Path) -> None:
    """The contracts are not vacuous: a copy of the package whose decision module imports a
    tool inside a function fails ``lint-imports``."""
    copy = tmp_path / "src" / "policyengine"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    decision = copy / "runtime" / "decision.py"
    decision.write_text(
        decision.read_text(encoding="utf-8")
        + "\n\ndef _back() -> None:\n    from policyengine.tools import explain  # noqa: F401\n",
        encoding="utf-8",
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    done = _lint(tmp_path, {"PYTHONPATH": str(tmp_path / "src")})
    assert done.returncode != 0
    assert "policyengine.runtime.decision -> policyengine.tools.explain" in done.stdout


def test_the_decision_imports_no_tool_and_no_backend() -> None:
    graph = _graph()
    below = graph.find_upstream_modules("policyengine.runtime.decision")
    assert not {m for m in below if m.startswith(("policyengine.tools", "policyengine.backends"))}


def test_the_world_has_exactly_its_declared_state() -> None:
    world = World(pe.load_policy_text(MINI).compiled)
    assert set(World.__slots__) == set(state.STATE)
    assert {n for n in state.STATE if hasattr(world, n)} == set(state.STATE)
    with pytest.raises(AttributeError):
        world.undeclared = 1  # type: ignore[attr-defined]


def test_every_declaration_is_complete() -> None:
    for name, declared in state.STATE.items():
        if declared.role in ("state", "record"):
            assert declared.new is not None, name
            assert declared.shape, name
        if declared.role == "record":
            assert declared.row is not None, name
            fields = snapshot_codec.row_fields(declared.row)
            assert fields and len(set(fields)) == len(fields), name
        else:
            assert declared.row is None, name
    snapshot_codec.check_declaration()  # every shape and field kind has a coder


def test_record_rows_are_named_and_name_their_rule() -> None:
    rows = [declared.row for declared in state.STATE.values() if declared.row is not None]
    for row in rows:
        named = hasattr(row, "_fields") or dataclasses.is_dataclass(row)
        assert named, row
    with_rule = {row for row in rows if "rule" in snapshot_codec.row_fields(row)}
    assert with_rule == set(rows) - {records.ConflictRow}


def test_shard_bookkeeping_follows_the_declaration() -> None:
    assert len(state.STEPPED) == shard._MARKS
    merged = {name for name, *_ in merger._LISTS}
    assert merged == {n for n in state.STEPPED if state.STATE[n].role == "record"}
    assert state.STEPPED[0] == "subjects"


def test_objects_in_the_state_declare_their_fields() -> None:
    for cls in snapshot_codec.OBJECTS.values():
        assert set(cls.__slots__) == set(cls.FIELDS), cls


def test_no_module_is_over_a_thousand_lines_and_docstrings_stay_short() -> None:
    long, wordy = [], []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 1050:
            long.append((path.name, text.count("\n")))
        if text.startswith('"""'):
            doc = text[3 : text.index('"""', 3)]
            if doc.count("\n") > 20:
                wordy.append((path.name, doc.count("\n")))
    assert long == []
    assert wordy == []
