"""Stage 6, explain: a decision told as a manager would want to read it.

Every line names the rule, the clause (with the clause's reading) and the events, so that
an argument about a customer can be settled by pointing at the manual and the CRM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from policyengine.runtime.decision import Decision, TraceEntry
from policyengine.times import parse_instant

if TYPE_CHECKING:
    from policyengine.policy import Policy


def _fmt(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def explain_subject(
    decision: Decision,
    subject: str,
    policy: Policy | None = None,
    at: str | datetime | None = None,
    history: Iterable[Mapping[str, Any]] = (),
) -> str:
    """How the subject's owner, penalties and duties came about.

    With ``policy`` (or ``at``, or ``history``) the account is the full one of
    ``explain_full``: clause texts, the events, and what would have changed the outcome.
    """
    if policy is not None or at is not None or history:
        return explain_full(decision, subject, policy, at, history)
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
    for cr in decision.credits:
        if cr.subject == subject:
            lines.append(f"  credit: {cr.party} {cr.kind} {cr.amount} {cr.currency}")
            lines.extend(_why(decision, cr.rule, cr.clauses, cr.events))
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
    for name, value in decision.flags.get(subject, {}).items():
        lines.append(f"  flag {name}: {_fmt(value)}")  # an instant as local time (issue 16)
    return "\n".join(lines)


def _why(decision: Decision, rule: str, clauses: list[str], events: list[str]) -> list[str]:
    out = [f"    because rule {rule} on events {', '.join(events)}"]
    for cid in clauses:
        out.append(f"    {cid}: {decision.clauses.get(cid, '')}")
    return out


# ------------------------------------------------------------------ with the policy's text


def _when(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def _article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def _clause_lines(policy: Policy | None, decision: Decision, clauses: list[str]) -> list[str]:
    out: list[str] = []
    for cid in clauses:
        clause = policy.compiled.clauses.get(cid) if policy is not None else None
        if clause is None:
            out.append(f"      {cid}: {decision.clauses.get(cid, '')}")
            continue
        out.append(f"      {cid} 原文: {clause.text}")
        if clause.reading:
            out.append(f"      {cid} reading: {clause.reading}")
    return out


def _event_line(eid: str, events: Mapping[str, Mapping[str, Any]]) -> str:
    ev = events.get(eid)
    if ev is None:
        return f"      event {eid}"
    fields = ", ".join(f"{k} {v}" for k, v in ev.items() if k not in ("id", "type", "at"))
    return f"      event {eid}: {ev.get('type')} at {ev.get('at')}" + (
        f" ({fields})" if fields else ""
    )


def _because(
    decision: Decision,
    policy: Policy | None,
    events: Mapping[str, Mapping[str, Any]],
    rule: str,
    clauses: list[str],
    causes: list[str],
) -> list[str]:
    out = [f"    because rule {rule} ({', '.join(clauses)}) on {', '.join(causes) or 'no event'}"]
    for record in policy.overlays if policy is not None else ():
        how = record.origin(rule)
        if how is not None:  # a company overlay's rule, not the pack's
            out[0] += f" [{how} by overlay {record.id}]"
    out.extend(_event_line(eid, events) for eid in causes)
    out.extend(_clause_lines(policy, decision, clauses))
    return out


def _consequence(t: TraceEntry) -> str:
    d = t.detail
    if t.kind == "claim":
        return f"the claim of {t.party} {d.get('status')}"
    if t.kind == "owner":
        return f"the owner became {d.get('owner') or 'nobody'}"
    if t.kind == "penalty":
        return f"{t.party} got a {d.get('sanction', 'penalty')}"
    if t.kind == "credit":
        return f"{t.party} was credited {d.get('amount')} {d.get('currency')} ({d.get('credit')})"
    if t.kind == "flag":
        return f"flag {d.get('flag')} set to {_when(d.get('value'))}"  # an instant: local
    if t.kind == "counter":
        return f"counter {d.get('counter')} of {t.party} became {d.get('value')}"
    if t.kind == "violation":
        return f"a violation by {t.party}: {d.get('what')}"
    return t.kind


def counterfactuals(decision: Decision, subject: str, policy: Policy | None = None) -> list[str]:
    """For each overdue or late duty of ``subject``: what had to happen, by when, and what the
    miss cost (as the trace records it: a lapsed claim, a penalty, a new owner)."""
    sf = policy.compiled.subject_field if policy is not None else "subject"
    out: list[str] = []
    trace = decision.trace
    for o in decision.obligations:
        if o.subject != subject or o.status not in ("overdue", "late"):
            continue
        exp = next(
            (
                t
                for t in trace
                if t.kind == "expectation"
                and t.rule == o.rule
                and t.events == o.events
                and t.party == o.party
                and t.detail.get("due") == o.due
            ),
            None,
        )
        awaits = list(exp.detail.get("awaits", [])) if exp is not None else []
        what = " or ".join(awaits) if awaits else "the awaited event"
        by = f" by {o.party}" if o.party else ""
        when = "by" if o.due_inclusive else "before"
        clause = ", ".join(o.clauses)
        head = (
            f"    {_article(what)}{by} ({sf} {subject}) {when} {_when(o.due)} would have met "
            f"'{o.what}' (rule {o.rule}, {clause})"
        )
        if o.status == "late":
            out.append(f"{head}; it came late, {_when(o.met_at)} ({o.met_by})")
            continue
        missed = [
            t
            for t in trace
            if t.kind != "expectation"
            and t.rule == o.rule
            and t.events == o.events
            and o.due is not None
            and t.at == o.due
        ]
        if not missed:
            out.append(f"{head}; it is overdue")
            continue
        costs = "; ".join(_consequence(t) for t in missed)
        line = f"{head}; missing it: {costs}"
        lapsed = [t for t in missed if t.kind == "claim" and t.detail.get("status") == "lapsed"]
        if lapsed:
            taker = next(
                (
                    s
                    for s in decision.ownership(subject)
                    if s.start >= lapsed[0].at and s.owner != lapsed[0].party
                ),
                None,
            )
            if taker is not None:
                line += (
                    f"; then {taker.owner} took the {sf} at {_when(taker.start)} "
                    f"(rule {taker.rule}, {', '.join(taker.clauses)})"
                )
            line += f". In time, {lapsed[0].party} would have kept the claim"
        out.append(line)
    return out


def explain_full(
    decision: Decision,
    subject: str,
    policy: Policy | None = None,
    at: str | datetime | None = None,
    history: Iterable[Mapping[str, Any]] = (),
) -> str:
    """The chain of events and rules behind the subject's owner, claims, penalties and duties,
    each with its clause's original text (from ``policy``), then the counterfactuals.

    ``at``: explain the owner at that instant instead of every ownership span.
    ``history``: the evaluated events, to show each cause's type, time and fields.
    """
    events = {str(e.get("id")): e for e in history if isinstance(e, Mapping)}
    lines = [f"{subject} (as of {_when(decision.as_of)})"]
    spans = decision.ownership(subject)
    limit = None
    if at is not None:
        when = parse_instant(at, "at").astimezone(ZoneInfo(decision.timezone))
        limit = when
        owner = decision.owner(subject, at=at)
        lines.append(f"  owner at {_when(when)}: {owner or 'nobody'}")
        span = next((s for s in spans if s.start <= when and (s.end is None or when < s.end)), None)
        if span is not None:
            until = f" until {_when(span.end)}" if span.end is not None else ""
            lines.append(f"  ({span.owner} since {_when(span.start)}{until})")
            lines.extend(_because(decision, policy, events, span.rule, span.clauses, span.events))
        spans = []
    elif not spans:
        lines.append("  no owner: nothing made anyone the owner")
    for span in spans:
        until = f" until {_when(span.end)}" if span.end is not None else " (current)"
        lines.append(f"  owner {span.owner} from {_when(span.start)}{until}")
        lines.extend(_because(decision, policy, events, span.rule, span.clauses, span.events))
    for t in decision.trace:
        if t.kind == "claim" and t.subject == subject and (limit is None or t.at <= limit):
            lines.append(f"  {_when(t.at)} claim of {t.party}: {t.detail.get('status')}")
            lines.extend(_because(decision, policy, events, t.rule, t.clauses, t.events))
    for p in decision.penalties:
        if p.subject == subject and (limit is None or p.at <= limit):
            amount = ""
            if p.amount_min is not None:
                low, high = p.amount_min, p.amount_max
                amount = f" {low}" if low == high else f" {low}-{high}"
                amount += f" {p.currency or ''}".rstrip()
            lines.append(f"  penalty: {p.party} {p.sanction}{amount}, offence #{p.offence}")
            lines.extend(_because(decision, policy, events, p.rule, p.clauses, p.events))
    for cr in decision.credits:
        if cr.subject == subject and (limit is None or cr.at <= limit):
            lines.append(f"  credit: {cr.party} {cr.kind} {cr.amount} {cr.currency}")
            lines.extend(_because(decision, policy, events, cr.rule, cr.clauses, cr.events))
    for o in decision.obligations:
        if o.subject == subject and (limit is None or o.opened <= limit):
            met = f" by {o.met_by} at {_when(o.met_at)}" if o.met_by else ""
            due = f"due {_when(o.due)}" if o.due is not None else "no deadline"
            lines.append(f"  duty of {o.party}: {o.what}, {due}: {o.status}{met}")
            lines.extend(_because(decision, policy, events, o.rule, o.clauses, o.events))
    for v in decision.violations:
        if v.subject == subject and (limit is None or v.at <= limit):
            lines.append(f"  violation by {v.party}: {v.what} (event {v.event})")
            lines.extend(_because(decision, policy, events, v.rule, v.clauses, v.events))
    for name, value in decision.flags.get(subject, {}).items():
        lines.append(f"  flag {name}: {_when(value)}")
    for record in policy.overlays if policy is not None else ():
        off = "".join(f"; disabled {rid} ({why})" for rid, why in record.disabled.items())
        lines.append(
            f"  overlay {record.id} {record.version} ({record.file}): added "
            f"{', '.join(record.added) or 'no rule'}; replaced "
            f"{', '.join(record.replaced) or 'no rule'}{off}"
        )
    what_if = counterfactuals(decision, subject, policy)
    if what_if:
        lines.append("  what would have changed it:")
        lines.extend(what_if)
    return "\n".join(lines)


def explain(decision: Decision, subject: str) -> str:
    """``pe.explain(decision, subject)``: the account ``decision.explain(subject)`` gives."""
    return explain_subject(decision, subject)


# ``Decision.explain`` reaches this module through its hook: the data module imports no tool
Decision.explainer = explain
