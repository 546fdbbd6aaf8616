"""One registry of error codes (``errors.Code``), checked both ways against src/ and the docs.

* every code the source uses, as a literal ``"PEnnn"`` or as a ``Code.NAME`` constant, is
  declared in the registry;
* every declared code is raised or reported somewhere in src/ (a ``reserved`` one, nowhere);
* every declared code is documented in docs/errors.md, and nothing else is;
* no two members share a code, and the tables derived from the registry (``errors.CODES``,
  ``tools.analysis.CODES``) say what they said before it.

Literals and constants are both accepted while the modules move to the constants.
"""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from policyengine import errors
from policyengine.errors import (
    CODES,
    Code,
    EvaluationError,
    EventError,
    Family,
    PolicyEngineError,
    PolicyError,
    Problem,
    SnapshotError,
    codes_of,
)
from policyengine.tools import analysis

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "policyengine"
DOC = ROOT / "docs" / "errors.md"
_CODE = re.compile(r"PE\d{3}")
_MEMBER = re.compile(r"[A-Z][A-Z0-9_]*")


def _declarations(tree: ast.Module, path: Path) -> set[int]:
    """Nodes that declare codes rather than use them: the registry itself, and a module-level
    ``CODES = {...}`` table of summaries (tools/analysis.py's, until it is derived)."""
    out: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Code" and path.name == "errors.py":
            out |= {id(n) for n in ast.walk(node)}
        if isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "CODES" and isinstance(value, ast.Dict):
            out |= {id(n) for k in value.keys if k is not None for n in ast.walk(k)}
    return out


def _uses() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Codes used in src/ -> where (``file:line``), and ``Code.NAME`` constants naming no
    member -> where."""
    used: dict[str, list[str]] = defaultdict(list)
    unknown: dict[str, list[str]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skip = _declarations(tree, path)
        rel = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _CODE.fullmatch(node.value)
            ):
                used[node.value].append(where)
            elif isinstance(node, ast.Attribute) and _MEMBER.fullmatch(node.attr):
                base = node.value
                named = (isinstance(base, ast.Name) and base.id == "Code") or (
                    isinstance(base, ast.Attribute) and base.attr == "Code"
                )
                if not named:
                    continue
                member = Code.__members__.get(node.attr)
                if member is None:
                    unknown[f"Code.{node.attr}"].append(where)
                else:
                    used[member.value].append(where)
    return used, unknown


USED, UNKNOWN = _uses()


def _sections() -> dict[str, str]:
    """docs/errors.md: code -> its section (heading included), whitespace collapsed."""
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^(?=#{1,3} )", text, flags=re.M)
    out: dict[str, str] = {}
    for part in parts:
        m = re.match(r"### (PE\d{3})\b", part)
        if m:
            assert m.group(1) not in out, f"docs/errors.md documents {m.group(1)} twice"
            out[m.group(1)] = " ".join(part.split())
    return out


SECTIONS = _sections()


def test_every_code_used_in_src_is_declared() -> None:
    undeclared = {c: w for c, w in USED.items() if c not in CODES}
    assert not undeclared, f"codes used but not declared in errors.Code: {undeclared}"
    assert not UNKNOWN, f"constants that name no member of errors.Code: {dict(UNKNOWN)}"


@pytest.mark.parametrize("code", list(Code), ids=str)
def test_every_declared_code_is_raised_or_reported(code: Code) -> None:
    if code.reserved:
        assert code.value not in USED, (
            f"{code.value} is reserved but used at {USED[code.value]}: drop `reserved`"
        )
    else:
        assert code.value in USED, f"{code.value} ({code.name}) is declared but used nowhere"


@pytest.mark.parametrize("code", list(Code), ids=str)
def test_every_declared_code_is_documented(code: Code) -> None:
    section = SECTIONS.get(code.value)
    assert section is not None, f"docs/errors.md has no `### {code.value}: ...` section"
    assert section.startswith(f"### {code.value}: {code.summary} "), "heading: code: summary"
    assert f"`Code.{code.name}`" in section
    word = {
        Family.POLICY: "Class: policy",
        Family.HISTORY: "Class: history",
        Family.EVALUATION: "Class: evaluation",
        Family.ANALYSIS: "Class: analysis warning",
        Family.SNAPSHOT: "Class: snapshot",
    }[code.family]
    assert word in section
    assert f"What to do: {' '.join(code.todo.split())}" in section
    assert ("Reserved" in section) == code.reserved


def test_the_docs_document_only_declared_codes() -> None:
    assert set(SECTIONS) == set(CODES)
    mentioned = set(_CODE.findall(DOC.read_text(encoding="utf-8")))
    assert mentioned <= set(CODES), mentioned - set(CODES)


def test_no_two_members_share_a_code() -> None:
    # an Enum turns a repeated value into an alias of the first member, silently
    assert len(Code.__members__) == len(Code), [
        name for name, m in Code.__members__.items() if m.name != name
    ]
    values = [m.value for m in Code]
    assert len(values) == len(set(values))
    tree = ast.parse((SRC / "errors.py").read_text(encoding="utf-8"))
    [registry] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Code"]
    literal = [
        n.value.elts[0].value
        for n in registry.body
        if isinstance(n, ast.Assign)
        and isinstance(n.value, ast.Tuple)
        and isinstance(n.value.elts[0], ast.Constant)
    ]
    assert sorted(literal) == sorted(values)


def test_every_member_is_one_well_formed_code() -> None:
    for code in Code:
        assert _CODE.fullmatch(code.value), code
        assert code.family.value == f"{code.value[:3]}xx"
        assert code.summary and "\n" not in code.summary and code.summary == code.summary.strip()
        assert code.todo and "\n" not in code.todo
        assert code.name.isupper()


def test_the_tables_are_derived_from_the_registry() -> None:
    assert {c.value: c.summary for c in Code} == CODES
    assert all(type(k) is str and type(v) is str for k, v in CODES.items())
    assert set(analysis.CODES) == {f"PE40{i}" for i in range(1, 8)}
    assert codes_of(Family.ANALYSIS) == analysis.CODES
    assert errors.CODES["PE302"] == "date outside the working-day calendar"
    assert CODES["PE100"] == "malformed YAML"
    assert all(k[2] in "12345" for k in CODES)


def test_codes_surface_as_plain_text() -> None:
    p = Problem(Code.OUTSIDE_CALENDAR, "a message")
    assert type(p.code) is str and p.code == "PE302"
    assert "'PE302'" in repr(p) and str(p) == "PE302 a message"
    exc = EvaluationError([p])
    assert exc.codes == ["PE302"] and all(type(c) is str for c in exc.codes)
    assert json.dumps({"code": Code.OUTSIDE_CALENDAR}) == '{"code": "PE302"}'
    assert f"{Code.OUTSIDE_CALENDAR}" == "PE302" and str(Code.OUTSIDE_CALENDAR) == "PE302"
    assert Code("PE302") is Code.OUTSIDE_CALENDAR
    assert {"PE302": 1}[Code.OUTSIDE_CALENDAR] == 1  # hashes as its text


def test_exception_classes_name_families_not_problems() -> None:
    expected = {
        PolicyEngineError: "PExxx",
        PolicyError: Family.POLICY,
        EventError: Family.HISTORY,
        EvaluationError: Family.EVALUATION,
        SnapshotError: Family.SNAPSHOT,
    }
    for cls, code in expected.items():
        assert cls.code == code and type(cls.code) is str
        assert cls.code not in CODES
