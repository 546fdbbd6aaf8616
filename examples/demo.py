"""The main job: evaluate the example histories against the shipped policies and print them.

Run with ``make demo``. Owners come with the rule and clause that made them, penalties with
their clause; obligations with their status as of the evaluation instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import policyengine as pe

ROOT = Path(__file__).resolve().parents[1]


def _money(p: pe.Penalty) -> str:
    if p.salary_days is not None:
        return f"{p.salary_days} days of salary"
    if p.amount_min is None:
        return "-"
    text = str(p.amount_min) if p.amount_min == p.amount_max else f"{p.amount_min}-{p.amount_max}"
    units = f" ({p.units} units)" if p.units else ""
    return f"{text} {p.currency}{units}"


def _load(policy_path: Path, history_path: Path, as_of: str) -> pe.Decision:
    policy = pe.load_policy(policy_path)
    events = json.loads(history_path.read_text(encoding="utf-8"))
    decision = policy.evaluate(events, as_of=as_of)
    rel = history_path.relative_to(ROOT)
    print(f"== {policy.id} v{policy.version} on {rel} as of {decision.as_of}")
    return decision


def _owners(decision: pe.Decision) -> None:
    print("\nOwners")
    for subject in sorted(decision.ownerships):
        for span in decision.ownership(subject):
            end = span.end.isoformat() if span.end else "now"
            print(
                f"  {subject:8} {span.owner:8} {span.start.isoformat()} -> {end:25} "
                f"{span.clause!s:18} {span.rule} {span.events}"
            )


def _penalties(decision: pe.Decision) -> None:
    print("\nPenalties")
    for p in decision.penalties:
        print(
            f"  {p.party:8} {p.sanction:17} {_money(p):22} #{p.offence} {p.clause!s:10} "
            f"{p.rule} {p.events}"
        )


def _obligations(decision: pe.Decision) -> None:
    print("\nObligations (status as of the evaluation)")
    for o in decision.obligations:
        met = f" by {o.met_by}" if o.met_by else ""
        due = o.due.isoformat() if o.due else "no deadline"
        print(
            f"  {o.status:8} {o.party!s:16} {o.subject!s:10} due {due:25} "
            f"{o.clause!s:9} {o.what}{met}"
        )


def resources() -> None:
    decision = _load(
        ROOT / "policies/huixiao/resources.yaml",
        ROOT / "examples/huixiao_march.json",
        as_of="2026-03-31T23:59:59+08:00",
    )
    _owners(decision)
    _penalties(decision)
    _obligations(decision)
    for r in decision.rejected:
        print(f"\nRejected {r.event} ({r.clause}): {r.reason}")
    print("\nWhy does C-liu belong to whom it does?")
    print(decision.explain("C-liu"))
    print()


def after_sales() -> None:
    """Both huixiao packs as one policy set: owners decided by one are seen by the other."""
    decision = _load(
        ROOT / "policies/huixiao",
        ROOT / "examples/huixiao_after_sales.json",
        as_of="2026-04-02T12:00:00+08:00",
    )
    _penalties(decision)
    _obligations(decision)
    print("\nMonthly referral rate (HX-AS-10)")
    for mt in decision.metrics:
        state = "met" if mt.met else "not met"
        final = "" if mt.complete else " (month not over)"
        print(
            f"  {mt.party:8} {mt.period}  {mt.numerator}/{mt.denominator} = {mt.value:.2f}"
            f"  target >= {mt.target}: {state}{final}"
        )
    print()


def service_system() -> None:
    decision = _load(
        ROOT / "policies/service_system",
        ROOT / "examples/service_system.json",
        as_of="2026-04-02T12:00:00+08:00",
    )
    _obligations(decision)
    _violations(decision)
    print("\nCustomer tiers (SS-3)")
    for subject in sorted(decision.subject_labels):
        print(f"  {subject:8} {decision.labels(subject).get('tier') or '-'}")
    print()


def _violations(decision: pe.Decision) -> None:
    print("\nViolations")
    for v in decision.violations:
        print(f"  {v.party!s:10} {v.event!s:6} {v.clause!s:6} {v.what}")


def online_store() -> None:
    """Working-day replies across the 2026 Spring Festival, the discipline ladder, the monthly
    assessment with grades and the service star."""
    decision = _load(
        ROOT / "policies/online_store",
        ROOT / "examples/online_store.json",
        as_of="2026-03-01T00:00:00+08:00",
    )
    _obligations(decision)
    _violations(decision)
    _penalties(decision)
    print("\nMonthly assessment (OS-4): composite score and grade")
    for mt in decision.metrics:
        if mt.rule == "composite-score":
            print(f"  {mt.party:8} {mt.period}  {mt.value:6.2f}  {mt.grade}")
    for award in decision.awards:
        print(f"\n{award.title} {award.period} (OS-6): {award.party}  {award.metrics}")
    print()


def customer_management() -> None:
    """Project milestones and budgets, the complaint SLA, and the return/exchange decisions."""
    decision = _load(
        ROOT / "policies/customer_management",
        ROOT / "examples/customer_management.json",
        as_of="2026-03-31T23:59:59+08:00",
    )
    _obligations(decision)
    _violations(decision)
    _penalties(decision)
    print("\nReturn and exchange decisions (CM-5b)")
    for c in decision.classifications:
        print(f"  {c.subject:4} {c.customer!s:4} {c.value!s:20} {c.reason}")
    print()


def main() -> int:
    try:
        resources()
        after_sales()
        service_system()
        online_store()
        customer_management()
    except pe.PolicyEngineError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
