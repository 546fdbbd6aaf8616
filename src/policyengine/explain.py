"""Stage 6, explain: a decision told as a manager would want to read it.

Every line names the rule, the clause (with the clause's reading) and the events, so that
an argument about a customer can be settled by pointing at the manual and the CRM.
"""

from __future__ import annotations

from .decision import Decision


def _fmt(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def explain_subject(decision: Decision, subject: str) -> str:
    lines = [f"{subject} (as of {_fmt(decision.as_of)})"]
    spans = decision.ownership(subject)
    if not spans:
        lines.append("  no owner: nothing made anyone the owner")
    for span in spans:
        until = f" until {_fmt(span.end)}" if span.end is not None else " (current)"
        lines.append(f"  owner {span.owner} from {_fmt(span.start)}{until}")
        lines.extend(_why(decision, span.rule, span.clauses, span.events))
    for p in decision.penalties:
        if p.subject == subject:
            amount = ""
            if p.amount_min is not None:
                amount = (
                    f" {p.amount_min}"
                    if p.amount_min == p.amount_max
                    else f" {p.amount_min}-{p.amount_max}"
                )
                amount += f" {p.currency}"
            if p.salary_days is not None:
                amount += f" {p.salary_days} days of salary"
            units = f" ({p.units} units)" if p.units else ""
            lines.append(f"  penalty: {p.party} {p.sanction}{amount}{units}, offence #{p.offence}")
            lines.extend(_why(decision, p.rule, p.clauses, p.events))
    for o in decision.obligations:
        if o.subject == subject:
            met = f" by {o.met_by}" if o.met_by else ""
            due = f"due {_fmt(o.due)}" if o.due is not None else "no deadline"
            lines.append(f"  duty of {o.party}: {o.what}, {due}: {o.status}{met}")
            lines.extend(_why(decision, o.rule, o.clauses, o.events))
    for v in decision.violations:
        if v.subject == subject:
            lines.append(f"  violation by {v.party}: {v.what} (event {v.event})")
            lines.extend(_why(decision, v.rule, v.clauses, v.events))
    classified = {c.label for c in decision.classifications if c.subject == subject}
    for name, value in decision.labels(subject).items():
        if name not in classified:
            lines.append(f"  label {name}: {value if value is not None else 'none'}")
    for c in decision.classifications:
        if c.subject == subject or (c.customer == subject and c.subject != subject):
            about = "" if c.subject == subject else f" ({c.subject})"
            value = c.value if c.value is not None else "none"
            lines.append(f"  {c.label}{about}: {value} ({c.reason or 'no case applied'})")
            lines.extend(_why(decision, c.label, c.clauses, [c.event]))
    return "\n".join(lines)


def _why(decision: Decision, rule: str, clauses: list[str], events: list[str]) -> list[str]:
    out = [f"    because rule {rule} on events {', '.join(events)}"]
    for cid in clauses:
        out.append(f"    {cid}: {decision.clauses.get(cid, '')}")
    return out
