"""Every example of docs/language.md and docs/tutorial.md is run.

Convention: every ```yaml block of those files is either a complete policy (a mapping with
``policy:``) or a scenario list (``scenarios:``, the format of ``policyengine.scenarios``) for
the nearest policy above it. Each policy is loaded, checked against the JSON Schema, and each
scenario run against it. Every construct of the language (each field of each model, each
operator, each reference root) must appear in at least one tested policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import policyengine as pe
from policyengine.errors import ProblemSink
from policyengine.language import model as m
from policyengine.language.loader import load_text
from policyengine.tools.scenarios import collect, run_suite
from test_schema import validate

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "docs/language.md", ROOT / "docs/tutorial.md"]
_BLOCK = re.compile(r"^```yaml[^\n]*\n(.*?)^```", re.S | re.M)


@dataclass
class Example:
    doc: str
    line: int
    policy: str
    data: Any
    scenarios: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def _parse(text: str, name: str) -> Any:
    source = load_text(text, name, ProblemSink())
    assert source is not None, f"{name}: not plain YAML"
    return source.data


def examples() -> list[Example]:
    out: list[Example] = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        current: Example | None = None
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            block = match.group(1)
            data = _parse(block, f"{doc.name}:{line}")
            if isinstance(data, dict) and "policy" in data:
                assert current is None or current.scenarios, f"{current} has no scenarios"
                current = Example(doc.name, line, block, data)
                out.append(current)
            else:
                assert isinstance(data, dict) and "scenarios" in data, (
                    f"{doc.name}:{line}: a yaml block is a policy or a scenario list"
                )
                assert current is not None, f"{doc.name}:{line}: scenarios before any policy"
                current.scenarios.append(block)
        assert current is None or current.scenarios, f"{current} has no scenarios"
    return out


EXAMPLES = examples()


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 25
    assert all(e.scenarios for e in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_example(example: Example, tmp_path: Path) -> None:
    pe.load_policy_text(example.policy, name=example.id)  # raises PolicyError with positions
    assert validate(example.data) == [], "the editor's schema refuses this example"
    (tmp_path / "policy.yaml").write_text(example.policy, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    for i, block in enumerate(example.scenarios):
        (tmp_path / "tests" / f"s{i}.yaml").write_text(block, encoding="utf-8")
    [suite] = collect(tmp_path)
    results = run_suite(suite)
    assert results
    failures = [r.report() for r in results if not r.passed]
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------- every construct is shown


def _keys(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(str(k))
            _keys(v, out)
    elif isinstance(node, list):
        for v in node:
            _keys(v, out)
    elif isinstance(node, str):
        out.add(node)
        if node.startswith("$"):
            out.add(node.split(".")[0])
    return out


def _fields(*models: type[BaseModel]) -> set[str]:
    return {f.alias or name for mdl in models for name, f in mdl.model_fields.items()}


CONSTRUCTS = (
    set(m.OPERAND_KEYS)
    | set(m.CONDITION_KEYS)
    | set(m.ACTION_KEYS)
    | set(m.PARAM_KINDS)
    | {"$" + r for r in m.REF_ROOTS}
    | _fields(
        m.Meta,
        m.Clause,
        m.EventType,
        m.FieldSpec,
        m.Rule,
        m.Expect,
        m.Step,
        m.CancelOn,
        m.PenaltySpec,
        m.LadderStep,
        m.LadderSpec,
        m.CreditSpec,
        m.SetSpec,
        m.AddSpec,
        m.AssignSpec,
        m.TransferSpec,
        m.ViolationSpec,
        m.ClaimAction,
        m.HistoryQuery,
        m.ValuesQuery,
        m.Subjects,
        m.Label,
        m.LabelCase,
        m.Metric,
        m.Target,
        m.Grade,
        m.Award,
        m.TieBreak,
        m.PolicyInvariant,
        m.NamedCondition,
        m.PolicyFile,
    )
    | {"$row", "$row.window", "{row}"}
    | {"$subject.owner", "$subject.owner_since", "$event.period", "$event.start", "$event.end"}
    | {"2 days", "same day", "next day", "end of month", "3 working days", "1 month"}
) - {"$schema"}


def test_every_construct_appears_in_a_tested_example() -> None:
    seen: set[str] = set()
    for e in EXAMPLES:
        _keys(e.data, seen)
        seen.update(re.findall(r"\$[a-z_]+(?:\.[a-z_]+)?", e.policy))
    text = "\n".join(e.policy for e in EXAMPLES)
    types = {"list[str]", "list[int]", "decimal", "time", "date", "bool", "int", "str?"}
    missing = sorted(c for c in CONSTRUCTS | types if c not in seen and c not in text)
    assert not missing, f"constructs without a tested example: {missing}"


# ---------------------------------------------------------------- the tutorial's commands


def _tutorial_pack(tmp_path: Path) -> Path:
    first = next(e for e in EXAMPLES if e.doc == "tutorial.md")
    pack = tmp_path / "policies" / "my_company"
    (pack / "tests").mkdir(parents=True)
    (pack / "complaints.yaml").write_text(first.policy, encoding="utf-8")
    (pack / "tests" / "complaints.yaml").write_text(first.scenarios[0], encoding="utf-8")
    return pack


def _tutorial_text() -> str:
    return (ROOT / "docs/tutorial.md").read_text(encoding="utf-8")


def test_tutorial_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from policyengine.__main__ import main

    text = _tutorial_text()
    assert ".venv/bin/policyengine check policies/my_company" in text
    assert ".venv/bin/policyengine test policies/my_company --coverage 100 --mutate" in text
    pack = _tutorial_pack(tmp_path)
    assert main(["check", str(pack)]) == 0
    assert capsys.readouterr().out == ""
    assert main(["test", str(pack), "--coverage", "100", "--mutate"]) == 0, capsys.readouterr()


def test_tutorial_misspelling_reads_as_printed(tmp_path: Path) -> None:
    from policyengine.__main__ import main

    pack = _tutorial_pack(tmp_path)
    policy = pack / "complaints.yaml"
    text = policy.read_text(encoding="utf-8")
    policy.write_text(text.replace("event: complaint_answered", "event: complaint_answerd"))
    [printed] = re.findall(r"```text\n(complaints\.yaml:.*)\n```", _tutorial_text())
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy(policy)
    assert printed.replace("complaints.yaml", str(policy)) in str(info.value)
    assert main(["check", str(pack)]) == 1


def test_tutorial_explain_quotes_the_reading(tmp_path: Path) -> None:
    policy = pe.load_policy(_tutorial_pack(tmp_path))
    events = [
        {
            "id": "c1",
            "type": "complaint_received",
            "at": "2026-03-02T10:00:00+08:00",
            "customer": "C1",
            "complaint": "K1",
            "handler": "li",
        }
    ]
    d = policy.evaluate(events, as_of="2026-03-10T00:00:00+08:00")
    explained = d.explain("C1")
    assert "MY-2" in explained
    assert "A complaint is answered within 24 hours by its handler" in explained
    assert "A complaint is answered within 24\nhours by its handler; ..." in _tutorial_text()
