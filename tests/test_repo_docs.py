"""The repository documents itself: no file points outside it, every link between its documents
resolves, docs/events.md names every event type a pack declares, and docs/clauses.md is what
the packs generate (so the catalogue cannot drift from the rules)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import policyengine as pe
from policyengine.tools.catalogue import SHIPPED, catalogue_markdown, main, shipped_markdown

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".json", ".jsonl", ".csv", ".txt", ".toml"}
SKIP_DIRS = {".venv", ".git", "build", "dist", "__pycache__", ".mypy_cache", ".ruff_cache"}
OUTSIDE = ("shared" + "/spec", "shared" + "/seeds")  # split: this file must pass too
PACKS = [ROOT / "policies" / name for name in SHIPPED]


def _text_files() -> list[Path]:
    out = []
    for top in ("README.md", "docs", "policies", "examples", "tests", "src"):
        base = ROOT / top
        paths = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in paths:
            parts = set(path.relative_to(ROOT).parts)
            if parts & SKIP_DIRS or any(p.endswith(".egg-info") for p in parts):
                continue
            if path.is_file() and path.suffix in TEXT_SUFFIXES:
                out.append(path)
    return out


def test_no_file_points_at_the_spec_folder_beside_the_repo() -> None:
    files = _text_files()
    assert len(files) > 100  # the walk found the tree
    bad = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        bad += [f"{path.relative_to(ROOT)}: {word}" for word in OUTSIDE if word in text]
    assert bad == []


_LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)|`(docs/[\w./-]+\.md)`|\b(docs/[\w./-]+\.md)\b")


def _links(path: Path) -> list[tuple[str, Path]]:
    """Relative .md links of a document, each with the file it names."""
    out = []
    for match in _LINK.finditer(path.read_text(encoding="utf-8")):
        md_link, code, bare = match.groups()
        target = md_link or code or bare
        if target is None or "://" in target or "<" in target:
            continue
        resolved = (path.parent / target) if md_link else (ROOT / target)
        out.append((target, resolved))
    return out


@pytest.mark.parametrize(
    "doc",
    [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))],
    ids=lambda p: p.name,
)
def test_relative_links_resolve(doc: Path) -> None:
    links = _links(doc)
    missing = [target for target, resolved in links if not resolved.is_file()]
    assert missing == [], f"{doc.name} links to missing files"


def test_the_readme_links_the_three_reference_documents() -> None:
    targets = {t for t, _ in _links(ROOT / "README.md")}
    assert {"docs/events.md", "docs/semantics.md", "docs/clauses.md"} <= targets


def _events_doc() -> str:
    return (ROOT / "docs/events.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.name)
def test_events_doc_names_every_declared_event_type_and_field(pack: Path) -> None:
    policy = pe.load_policy(str(pack))
    doc = _events_doc()
    rows: dict[str, list[str]] = {}
    for line in doc.splitlines():
        m = re.match(r"\| `([a-z_]+)` \|", line)
        if m:
            rows.setdefault(m.group(1), []).append(line)
    assert policy.pset is not None
    for etype, decl in policy.pset.events.items():
        assert etype in rows, f"{pack.name}: event type {etype!r} is not in docs/events.md"
        for field in decl.fields:
            assert any(f"`{field}" in row for row in rows[etype]), (pack.name, etype, field)


def test_clauses_doc_is_current() -> None:
    committed = (ROOT / "docs/clauses.md").read_text(encoding="utf-8")
    assert committed == shipped_markdown(ROOT / "policies"), (
        "docs/clauses.md is stale: run .venv/bin/python -m policyengine.tools.catalogue"
    )


def test_clauses_doc_lists_every_clause_with_what_cites_it() -> None:
    doc = (ROOT / "docs/clauses.md").read_text(encoding="utf-8")
    for pack in PACKS:
        policy = pe.load_policy(str(pack))
        cited = {cid for r in policy.compiled.rules for cid in r.clauses}
        for clause in policy.compiled.clauses.values():
            section = re.split(r"\n##+ ", doc.split(f"\n### {clause.id}\n", 1)[1], maxsplit=1)[0]
            assert (clause.text or "").strip().splitlines()[0] in section
            if clause.id in cited:
                assert "descriptive: no rule" not in section, clause.id
    for prefix in ("HX-AS", "HX-RM", "HX-RS", "SS", "OS", "CM"):
        assert f"`{prefix}`" in doc


def test_a_descriptive_clause_is_said_to_have_no_rule() -> None:
    policy = pe.load_policy_text(
        """
policy: {id: tiny, title: tiny, version: "1"}
clauses:
  - {id: T-1, text: 登记即归属。, reading: The registrant owns., kind: ownership}
  - {id: T-2, text: 热线电话。, reading: Hotline; no decision., kind: descriptive}
events:
  registered: {fields: {customer: str, employee: str}}
rules:
  - {id: registrant-owns, clause: T-1, on: registered, then: [{assign: $event.employee}]}
"""
    )
    text = catalogue_markdown([("tiny", policy)], intro="# tiny\n")
    assert "| [T-1](#t-1) | ownership | rule `registrant-owns` |" in text
    assert "| [T-2](#t-2) | descriptive | descriptive: no rule |" in text
    assert "> 热线电话。" in text


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "clauses.md"
    stale.write_text("# old\n", encoding="utf-8")
    args = ["--policies", str(ROOT / "policies"), "--out", str(stale)]
    assert main([*args, "--check"]) == 1
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    assert stale.read_text(encoding="utf-8") == shipped_markdown(ROOT / "policies")
