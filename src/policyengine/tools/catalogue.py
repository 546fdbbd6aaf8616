"""The clause catalogue of policy packs as Markdown; ``docs/clauses.md`` is its output.

A catalogue written by hand drifts from the packs: a clause gains a rule, a reading is
reworded, and the document still says the old thing. So it is generated from what the packs
declare, loaded as any caller loads them: each clause's kind, the manual's text, the reading
the pack encodes, and the rules (and labels, metrics, awards) that cite it.

``python -m policyengine.tools.catalogue`` rewrites ``docs/clauses.md`` from ``policies/``;
``--check`` only compares, exiting 1 when the file is stale (``tests/test_repo_docs.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from policyengine.policy import Policy, load_policy

# The shipped packs, in the order the catalogue lists them (folders under policies/).
SHIPPED = ("huixiao", "service_system", "online_store", "customer_management")

_INTRO = """\
# Clause catalogue

Every clause of the four source manuals that the shipped packs carry: its id, its kind, the
manual's original text (quoted as the manual writes it, in simplified or traditional
characters), the reading the pack encodes, and what in the pack cites it. A clause no rule
cites is descriptive: the pack carries it for reference, and no decision follows from it.

This page is generated from the packs' `clauses:` blocks and rules
(`python -m policyengine.tools.catalogue`); `tests/test_repo_docs.py` fails when it is stale.
Edit the packs, then regenerate; do not edit this page by hand. Each pack's README
(`policies/<pack>/README.md`) tells its readings in full: the edges of every window, who the
party is, what a miss costs. For any one pack, a company's own included, `policyengine
describe POLICY` prints its clauses with its event types and parameters.

{sources}
Kinds: `ownership` (who owns a customer), `penalty` (a sanction), `obligation` (a duty with or
without a deadline), `classification` (a label or award), `kpi` (a measure per period),
`descriptive` (no decision). Time words in the readings are read as in
[semantics.md](semantics.md); the events named are those of [events.md](events.md).
"""


# The source manuals: prefix, manual, company, pack file.
SOURCES = (
    (
        "HX-AS",
        "会销公司售后服务部管理制度手册 (after-sales department manual)",
        "a conference-marketing (会销) company, 天津健康管家公司, selling the 安泰 series of"
        " health products",
        "policies/huixiao/after_sales.yaml",
    ),
    (
        "HX-RM",
        "天津健康管家公司客服部资源管理规定 (resource rules: who owns a customer), in the same"
        " manual",
        "the same company",
        "policies/huixiao/resources.yaml",
    ),
    (
        "HX-RS",
        "资源管理补充条例 (supplement to the resource rules), in the same manual",
        "the same company",
        "policies/huixiao/resources.yaml",
    ),
    (
        "SS",
        "售后服务体系及承诺书 (after-sales service system and commitment; the 1-3-7-15-28 visit"
        " cadence)",
        "a company selling health products through meetings and home visits",
        "policies/service_system/service_system.yaml",
    ),
    (
        "OS",
        "网店售后员工管理制度 (online-store after-sales staff rules)",
        "an online store",
        "policies/online_store/online_store.yaml",
    ),
    (
        "CM",
        "客户管理制度5篇 (five customer-management articles)",
        "several companies: article one a property-management company (物业管理公司), which"
        " decides nothing and is not carried; articles two to four unnamed companies' rules for"
        " new-customer projects, complaints and client visits; article five the wholesaler and"
        " franchisor 天竺工坊 (phone, reception, shipping, returns)",
        "policies/customer_management/customer_management.yaml",
    ),
)


def _sources_table() -> str:
    lines = ["## Sources", "", "| prefix | manual | company | pack |", "|---|---|---|---|"]
    lines += [f"| `{p}` | {m} | {c} | `{f}` |" for p, m, c, f in SOURCES]
    return "\n".join(lines) + "\n"


INTRO = _INTRO.format(sources=_sources_table())


def citations(policy: Policy) -> dict[str, list[str]]:
    """Clause id -> what cites it, in the pack's order: ``rule `id` ``, ``label `name` ``..."""
    out: dict[str, list[str]] = {cid: [] for cid in policy.compiled.clauses}
    compiled = policy.compiled
    cited: list[tuple[str, str, tuple[str, ...]]] = [
        ("rule", r.id, r.clauses) for r in sorted(compiled.rules, key=lambda r: r.order)
    ]
    cited += [("label", lab.name, lab.ref[1]) for lab in compiled.labels]
    cited += [("metric", m.id, m.ref[1]) for m in compiled.metrics]
    cited += [("award", a.id, a.ref[1]) for a in compiled.awards]
    for what, name, clause_ids in cited:
        for cid in clause_ids:
            out.setdefault(cid, []).append(f"{what} `{name}`")
    return out


def _cell(text: str) -> str:
    """Text inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _quote(text: str) -> list[str]:
    return [f"> {line}".rstrip() for line in text.strip().splitlines()] or [">"]


def pack_markdown(name: str, policy: Policy) -> str:
    """One pack's section: an index table, then each clause with its text and reading."""
    cites = citations(policy)
    clauses = list(policy.compiled.clauses.values())
    files = ", ".join(f"`{Path(s.file).name}`" for s in policy.sources)
    lines = [
        f"## {name}",
        "",
        f"`policies/{name}` ({files}): policy `{policy.id}`, {len(clauses)} clauses.",
        "",
        "| clause | kind | cited by |",
        "|---|---|---|",
    ]
    for c in clauses:
        by = ", ".join(cites.get(c.id, [])) or "descriptive: no rule"
        lines.append(f"| [{c.id}](#{c.id.lower()}) | {_cell(c.kind or '')} | {_cell(by)} |")
    for c in clauses:
        lines += ["", f"### {c.id}", "", f"Kind: {c.kind or 'not given'}.", ""]
        lines += _quote(c.text or "")
        lines += ["", f"Reading: {' '.join((c.reading or '').split())}", ""]
        cited_by = ", ".join(cites.get(c.id, [])) or "descriptive: no rule"
        lines.append(f"Cited by: {cited_by}.")
    return "\n".join(lines) + "\n"


def catalogue_markdown(packs: Sequence[tuple[str, Policy]], intro: str = INTRO) -> str:
    """The whole catalogue: ``intro``, then one section per ``(name, policy)``."""
    return "\n".join([intro, *(pack_markdown(name, policy) for name, policy in packs)])


def shipped_markdown(policies_dir: Path) -> str:
    """The catalogue of the shipped packs under ``policies_dir`` (docs/clauses.md)."""
    return catalogue_markdown([(n, load_policy(str(policies_dir / n))) for n in SHIPPED])


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the catalogue; 1 when ``--check`` finds it stale."""
    parser = argparse.ArgumentParser(prog="python -m policyengine.tools.catalogue")
    parser.add_argument("--policies", default="policies", help="the packs' folder")
    parser.add_argument("--out", default="docs/clauses.md", help="the catalogue file")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    args = parser.parse_args(argv)
    text = shipped_markdown(Path(args.policies))
    out = Path(args.out)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else None
        if current != text:
            print(f"{out} is stale: run python -m policyengine.tools.catalogue", file=sys.stderr)
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
