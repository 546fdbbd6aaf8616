"""``policyengine describe``: every shipped pack's event types, fields, parameters and clauses,
as JSON and as text, and ``GET /v1/policy``'s lists read from the same place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import policyengine as pe
from policyengine.__main__ import main
from policyengine.tools.describe import describe, render_text
from policyengine.tools.present import LANGS

ROOT = Path(__file__).resolve().parents[1]
PACKS = sorted(p for p in (ROOT / "policies").iterdir() if p.is_dir())


@pytest.fixture(scope="module", params=PACKS, ids=lambda p: p.name)
def pack(request: pytest.FixtureRequest) -> tuple[Path, pe.Policy]:
    path: Path = request.param
    return path, pe.load_policy(str(path))


def test_json_lists_every_declaration(pack: tuple[Path, pe.Policy]) -> None:
    _, policy = pack
    desc = describe(policy)
    json.dumps(desc)  # JSON-ready as it is: no default=str needed
    assert policy.pset is not None
    assert set(policy.pset.events) <= set(desc["events"])
    for etype, decl in policy.pset.events.items():
        got = {f["name"]: f for f in desc["events"][etype]["fields"]}
        assert set(decl.fields) <= set(got), etype
        assert desc["events"][etype]["doc"] == decl.doc
        for name, spec in decl.fields.items():
            f = got[name]
            assert {"type", "optional", "enum", "default", "doc"} <= set(f)
            assert f["type"] == spec.type and f["doc"] == spec.doc
            assert f["optional"] == (spec.optional or spec.default is not None)
            assert f["enum"] == (None if spec.enum is None else sorted(spec.enum, key=str))
    assert [p["name"] for p in desc["params"]] == list(policy.pset.params)
    for p in desc["params"]:
        decl_p = policy.pset.params[p["name"]]
        assert p["kind"] is not None and p["doc"] == decl_p.doc
        assert p["default"] is not None
    assert [c["id"] for c in desc["clauses"]] == policy.clause_ids
    assert all({"id", "kind", "text", "reading"} <= set(c) for c in desc["clauses"])


@pytest.mark.parametrize("lang", LANGS)
def test_text_shows_every_declaration(pack: tuple[Path, pe.Policy], lang: str) -> None:
    _, policy = pack
    desc = describe(policy)
    text = render_text(desc, lang)  # type: ignore[arg-type]
    for etype, spec in desc["events"].items():
        assert f"\n{etype}" in text
        for f in spec["fields"]:
            assert f["name"] in text
    for p in desc["params"]:
        assert p["name"] in text
    for c in desc["clauses"]:
        assert f"\n{c['id']} ({c['kind']})" in text
        assert (c["reading"] or "") in text and (c["text"] or "") in text
    assert "Decimal(" not in text and "Duration(" not in text and "FieldSpec(" not in text


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_cli_exit_0(
    pack: tuple[Path, pe.Policy], fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path, policy = pack
    assert main(["describe", str(path), "--format", fmt, "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        assert json.loads(out) == json.loads(json.dumps(describe(policy)))
    else:
        assert out.startswith(f"{policy.id} {policy.version}")


def test_cli_bad_policy_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", str(tmp_path / "nothing.yaml")]) == 1
    assert capsys.readouterr().err


def test_service_policy_lists_come_from_describe(pack: tuple[Path, pe.Policy]) -> None:
    pytest.importorskip("fastapi")
    from policyengine.tools.service import _policy_info

    _, policy = pack
    info = _policy_info("x", policy, "fp", ["x"])
    desc = describe(policy)
    assert info["clauses"] == desc["clauses"]
    assert set(info["events"]) == set(desc["events"])
    for etype, fields in info["events"].items():
        assert [set(f) for f in fields] == [{"name", "type", "optional", "enum"}] * len(fields)
        assert [f["name"] for f in fields] == [f["name"] for f in desc["events"][etype]["fields"]]
