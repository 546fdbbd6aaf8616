"""The main job: evaluate the example histories against the shipped policies and print them.

Run with ``make demo`` (``python examples/demo.py --lang zh`` for the Chinese words). Owners come
with the rule and clause that made them, penalties with their clause; duties with their status
as of the evaluation instant. Every value is shown as ``policyengine eval`` shows it
(``tools/present.py``): local times, ``¥200`` or the manual's range ``¥20–100``, clause lists.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import policyengine as pe
from policyengine.tools.explain import explain_subject
from policyengine.tools.present import LANGS, Lang, number, when, word
from policyengine.tools.tables import amount, period, table

ROOT = Path(__file__).resolve().parents[1]


class Demo:
    """One run of the demo in one language."""

    def __init__(self, lang: Lang) -> None:
        self.lang: Lang = lang

    def w(self, key: str, **fields: Any) -> str:
        return word(key, self.lang).format(**fields)

    def section(
        self, decision: pe.Decision, name: str, headers: Sequence[str], rows: list[list[Any]]
    ) -> None:
        print(f"\n{name}")
        body = table([self.w(h) for h in headers], rows, decision.timezone, self.lang)
        print("\n".join("  " + line for line in body.splitlines()))

    def load(self, policy_path: Path, history_path: Path, as_of: str) -> pe.Decision:
        policy = pe.load_policy(policy_path)
        events = json.loads(history_path.read_text(encoding="utf-8"))
        decision = policy.evaluate(events, as_of=as_of)
        rel = history_path.relative_to(ROOT)
        head = f"== {policy.id} v{policy.version}: {rel}"
        tz = decision.timezone
        print(self.w("title", head=head, as_of=when(decision.as_of, tz), tz=tz))
        return decision

    def owners(self, decision: pe.Decision) -> None:
        rows: list[list[Any]] = []
        for subject in sorted(decision.ownerships):
            for span in decision.ownership(subject):
                end: Any = span.end if span.end is not None else self.w("now")
                rows.append(
                    [subject, span.owner, span.start, end, span.clauses, span.rule, span.events]
                )
        headers = ("subject", "owner", "since", "until", "clause", "rule", "events")
        self.section(decision, self.w("owners"), headers, rows)

    def penalties(self, decision: pe.Decision) -> None:
        rows: list[list[Any]] = []
        for p in decision.penalties:
            money = amount(p, self.lang)
            if p.units:
                money += self.w("x_units", units=p.units)
            rows.append(
                [p.party, self.w(p.sanction), p.offence, money, p.clauses, p.rule, p.events]
            )
        headers = ("party", "sanction", "offence", "amount", "clause", "rule", "events")
        self.section(decision, self.w("penalties"), headers, rows)

    def obligations(self, decision: pe.Decision) -> None:
        rows = [
            [self.w(o.status), o.party, o.subject, o.due, o.clauses, o.what, o.met_by]
            for o in decision.obligations
        ]
        headers = ("status", "party", "subject", "due", "clause", "duty", "met_by")
        as_of = when(decision.as_of, decision.timezone)
        name = f"{self.w('obligations')} ({self.w('as_of')} {as_of})"
        self.section(decision, name, headers, rows)

    def violations(self, decision: pe.Decision) -> None:
        rows = [[v.party, v.event, v.at, v.clauses, v.what] for v in decision.violations]
        headers = ("party", "event", "at", "clause", "what")
        self.section(decision, self.w("violations"), headers, rows)

    def resources(self) -> None:
        decision = self.load(
            ROOT / "policies/huixiao/resources.yaml",
            ROOT / "examples/huixiao_march.json",
            as_of="2026-03-31T23:59:59+08:00",
        )
        self.owners(decision)
        self.penalties(decision)
        self.obligations(decision)
        rows = [[r.event, r.at, r.clauses, r.reason] for r in decision.rejected]
        self.section(decision, self.w("rejected"), ("event", "at", "clause", "reason"), rows)
        print("\n" + self.w("x_why", subject="C-liu"))
        print(explain_subject(decision, "C-liu", lang=self.lang))
        print()

    def after_sales(self) -> None:
        """Both huixiao packs as one policy set: owners decided by one are seen by the other."""
        decision = self.load(
            ROOT / "policies/huixiao",
            ROOT / "examples/huixiao_after_sales.json",
            as_of="2026-04-02T12:00:00+08:00",
        )
        self.penalties(decision)
        self.obligations(decision)
        rows: list[list[Any]] = []
        for mt in decision.metrics:
            ratio = f"{number(mt.numerator)}/{number(mt.denominator or 0)} = {number(mt.value)}"
            rows.append([mt.party, period(mt, self.lang), ratio, mt.target, mt.met])
        headers = ("party", "period", "value", "target", "target_met")
        self.section(decision, f"{self.w('metrics')} (HX-AS-10)", headers, rows)
        print()

    def service_system(self) -> None:
        decision = self.load(
            ROOT / "policies/service_system",
            ROOT / "examples/service_system.json",
            as_of="2026-04-02T12:00:00+08:00",
        )
        self.obligations(decision)
        self.violations(decision)
        rows = [
            [subject, decision.labels(subject).get("tier")]
            for subject in sorted(decision.subject_labels)
        ]
        self.section(decision, f"{self.w('tiers')} (SS-3)", ("subject", "grade"), rows)
        print()

    def online_store(self) -> None:
        """Working-day replies across the 2026 Spring Festival, the discipline ladder, the
        monthly assessment with grades and the service star."""
        decision = self.load(
            ROOT / "policies/online_store",
            ROOT / "examples/online_store.json",
            as_of="2026-03-01T00:00:00+08:00",
        )
        self.obligations(decision)
        self.violations(decision)
        self.penalties(decision)
        rows = [
            [mt.party, period(mt, self.lang), mt.value, mt.grade]
            for mt in decision.metrics
            if mt.rule == "composite-score"
        ]
        headers = ("party", "period", "value", "grade")
        self.section(decision, f"{self.w('metrics')} (OS-4): composite-score", headers, rows)
        rows = [[a.period, a.title or a.rule, a.party, a.metrics] for a in decision.awards]
        headers = ("period", "award", "winner", "metrics")
        self.section(decision, f"{self.w('awards')} (OS-6)", headers, rows)
        print()

    def customer_management(self) -> None:
        """Project milestones and budgets, the complaint SLA, and the return/exchange
        decisions."""
        decision = self.load(
            ROOT / "policies/customer_management",
            ROOT / "examples/customer_management.json",
            as_of="2026-03-31T23:59:59+08:00",
        )
        self.obligations(decision)
        self.violations(decision)
        self.penalties(decision)
        rows = [[c.subject, c.customer, c.value, c.reason] for c in decision.classifications]
        headers = ("what", "subject", "value", "reason")
        self.section(decision, f"{self.w('classifications')} (CM-5b)", headers, rows)
        print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the example histories, decided")
    parser.add_argument("--lang", choices=LANGS, default="en")
    args = parser.parse_args(argv)
    demo = Demo(args.lang)
    try:
        demo.resources()
        demo.after_sales()
        demo.service_system()
        demo.online_store()
        demo.customer_management()
    except pe.PolicyEngineError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
