"""Stage 6, explain: a decision told as a manager would want to read it.

Every line names the rule, the clause (with the clause's reading) and the events, so that
an argument about a customer can be settled by pointing at the manual and the CRM. The words
and formats come from ``tools/present.py``: times in the policy's timezone, money as ``¥200`` or
``¥20–100``, in English or Chinese (``lang``); the packs' own text is shown as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from policyengine.runtime.decision import (
    Credit,
    Decision,
    Obligation,
    Penalty,
    TraceEntry,
    Violation,
)
from policyengine.times import parse_instant
from policyengine.tools.present import NOTHING, Lang, money, number, plain, when, word

if TYPE_CHECKING:
    from policyengine.policy import Policy


class _Say:
    """The words of one account: ``present.word`` in ``lang``, values as ``present`` shows
    them (instants in the decision's timezone, money with its currency)."""

    def __init__(self, decision: Decision, lang: Lang) -> None:
        self.tz = decision.timezone
        self.lang: Lang = lang

    def __call__(self, key: str, **fields: Any) -> str:
        shown = {k: NOTHING if x is None else x for k, x in fields.items()}
        return word(key, self.lang).format(**shown)

    def v(self, value: Any) -> str:
        """Any value: an instant as local time, a list joined, yes/no in ``lang``."""
        if isinstance(value, bool):
            return word("yes" if value else "no", self.lang)
        if isinstance(value, datetime):
            return when(value, self.tz)
        if isinstance(value, str):
            try:  # an instant a history or a flag holds as text
                if len(value) >= 16 and value[4] == "-" and value[10] in "T ":
                    return when(parse_instant(value, "at"), self.tz)
            except Exception:
                pass
            return value
        return plain(value)

    def ids(self, items: Iterable[str]) -> str:
        return ", ".join(items)

    def amount(self, p: Penalty) -> str:
        text = ""
        if p.amount_min is not None:
            text = " " + money(p.amount_min, p.amount_max, p.currency)
        if p.salary_days is not None:
            text += " " + self("salary_of_days", days=number(p.salary_days))
        return text

    def penalty(self, p: Penalty) -> str:
        units = self("x_units", units=p.units) if p.units else ""
        return self(
            "x_penalty",
            party=p.party,
            sanction=word(p.sanction, self.lang),
            amount=self.amount(p),
            units=units,
            offence=p.offence,
        )

    def credit(self, cr: Credit) -> str:
        amount = money(cr.amount, currency=cr.currency)
        return self("x_credit", party=cr.party, kind=cr.kind, amount=amount)

    def duty(self, o: Obligation, with_time: bool) -> str:
        met = ""
        if o.met_by:
            met = (
                self("x_met_by_at", event=o.met_by, at=self.v(o.met_at))
                if with_time
                else self("x_met_by", event=o.met_by)
            )
        due = self("x_due", due=self.v(o.due)) if o.due is not None else self("x_no_deadline")
        status = word(o.status, self.lang)
        return self("x_duty", party=o.party, what=o.what, due=due, status=status, met=met)

    def violation(self, v: Violation) -> str:
        return self("x_violation", party=v.party, what=v.what, event=v.event)


def explain_subject(
    decision: Decision,
    subject: str,
    policy: Policy | None = None,
    at: str | datetime | None = None,
    history: Iterable[Mapping[str, Any]] = (),
    lang: Lang = "en",
) -> str:
    """How the subject's owner, penalties and duties came about.

    With ``policy`` (or ``at``, or ``history``) the account is the full one of
    ``explain_full``: clause texts, the events, and what would have changed the outcome.
    """
    if policy is not None or at is not None or history:
        return explain_full(decision, subject, policy, at, history, lang)
    say = _Say(decision, lang)
    lines = [say("x_as_of", subject=subject, as_of=say.v(decision.as_of))]
    spans = decision.ownership(subject)
    if not spans:
        lines.append("  " + say("x_no_owner"))
    for span in spans:
        until = say("x_until", end=say.v(span.end)) if span.end is not None else say("x_current")
        start = say.v(span.start)
        lines.append("  " + say("x_owner_from", owner=span.owner, start=start, until=until))
        lines.extend(_why(decision, say, span.rule, span.clauses, span.events))
    for p in decision.penalties:
        if p.subject == subject:
            lines.append("  " + say.penalty(p))
            lines.extend(_why(decision, say, p.rule, p.clauses, p.events))
    for cr in decision.credits:
        if cr.subject == subject:
            lines.append("  " + say.credit(cr))
            lines.extend(_why(decision, say, cr.rule, cr.clauses, cr.events))
    for o in decision.obligations:
        if o.subject == subject:
            lines.append("  " + say.duty(o, with_time=False))
            lines.extend(_why(decision, say, o.rule, o.clauses, o.events))
    for v in decision.violations:
        if v.subject == subject:
            lines.append("  " + say.violation(v))
            lines.extend(_why(decision, say, v.rule, v.clauses, v.events))
    classified = {c.label for c in decision.classifications if c.subject == subject}
    for name, value in decision.labels(subject).items():
        if name not in classified:
            lines.append("  " + say("x_label", name=name, value=say.v(value)))
    for c in decision.classifications:
        if c.subject == subject or (c.customer == subject and c.subject != subject):
            about = "" if c.subject == subject else f" ({c.subject})"
            reason = c.reason or say("x_no_case")
            lines.append(
                "  "
                + say(
                    "x_classified", label=c.label, about=about, value=say.v(c.value), reason=reason
                )
            )
            lines.extend(_why(decision, say, c.label, c.clauses, [c.event]))
    for name, value in decision.flags.get(subject, {}).items():
        lines.append("  " + say("x_flag", name=name, value=say.v(value)))  # local time (16)
    return "\n".join(lines)


def _why(
    decision: Decision, say: _Say, rule: str, clauses: list[str], events: list[str]
) -> list[str]:
    out = ["    " + say("x_because_events", rule=rule, events=say.ids(events))]
    for cid in clauses:
        out.append(f"    {cid}: {decision.clauses.get(cid, '')}")
    return out


# ------------------------------------------------------------------ with the policy's text


def _article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def _clause_lines(
    policy: Policy | None, decision: Decision, say: _Say, clauses: list[str]
) -> list[str]:
    out: list[str] = []
    for cid in clauses:
        clause = policy.compiled.clauses.get(cid) if policy is not None else None
        if clause is None:
            out.append(f"      {cid}: {decision.clauses.get(cid, '')}")
            continue
        out.append(f"      {cid} 原文: {clause.text}")
        if clause.reading:
            out.append(f"      {cid} {say('reading')}: {clause.reading}")
    return out


def _event_line(say: _Say, eid: str, events: Mapping[str, Mapping[str, Any]]) -> str:
    ev = events.get(eid)
    if ev is None:
        return "      " + say("x_event_alone", id=eid)
    fields = ", ".join(f"{k} {say.v(v)}" for k, v in ev.items() if k not in ("id", "type", "at"))
    head = say("x_event", id=eid, type=ev.get("type"), at=say.v(ev.get("at")))
    return "      " + head + (f" ({fields})" if fields else "")


def _because(
    decision: Decision,
    say: _Say,
    policy: Policy | None,
    events: Mapping[str, Mapping[str, Any]],
    rule: str,
    clauses: list[str],
    causes: list[str],
) -> list[str]:
    on = say.ids(causes) or say("x_no_event")
    out = ["    " + say("x_because", rule=rule, clauses=say.ids(clauses), events=on)]
    for record in policy.overlays if policy is not None else ():
        how = record.origin(rule)
        if how is not None:  # a company overlay's rule, not the pack's
            out[0] += say("x_by_overlay", how=word(how, say.lang), overlay=record.id)
    out.extend(_event_line(say, eid, events) for eid in causes)
    out.extend(_clause_lines(policy, decision, say, clauses))
    return out


def _consequence(say: _Say, t: TraceEntry) -> str:
    d = t.detail
    if t.kind == "claim":
        status = word(f"claim_{d.get('status')}", say.lang)
        if status.startswith("claim_"):
            status = str(d.get("status"))
        return say("x_cost_claim", party=t.party, status=status)
    if t.kind == "owner":
        return say("x_cost_owner", owner=d.get("owner") or say("x_nobody"))
    if t.kind == "penalty":
        sanction = word(str(d.get("sanction", "penalty")), say.lang)
        return say(
            "x_cost_penalty", party=t.party, sanction=sanction, a_sanction=_article(sanction)
        )
    if t.kind == "credit":
        amount = money(d.get("amount"), currency=d.get("currency"))
        return say("x_cost_credit", party=t.party, amount=amount, kind=d.get("credit"))
    if t.kind == "flag":  # an instant: local
        return say("x_cost_flag", flag=d.get("flag"), value=say.v(d.get("value")))
    if t.kind == "counter":
        value = say.v(d.get("value"))
        return say("x_cost_counter", counter=d.get("counter"), party=t.party, value=value)
    if t.kind == "violation":
        return say("x_cost_violation", party=t.party, what=d.get("what"))
    return t.kind


def counterfactuals(
    decision: Decision, subject: str, policy: Policy | None = None, lang: Lang = "en"
) -> list[str]:
    """For each overdue or late duty of ``subject``: what had to happen, by when, and what the
    miss cost (as the trace records it: a lapsed claim, a penalty, a new owner)."""
    say = _Say(decision, lang)
    sf = policy.compiled.subject_field if policy is not None else "subject"
    sf_word = word("subject", lang) if sf in ("subject", "customer") else sf
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
        what = say("x_or").join(awaits) if awaits else say("x_awaited")
        head = say(
            "x_if",
            a_event=_article(what),
            event=what,
            by=f" by {o.party}" if o.party else "",
            who=f" {o.party} " if o.party else "",
            sf=sf_word,
            subject=subject,
            when=say("x_if_by") if o.due_inclusive else say("x_if_before"),
            due=say.v(o.due),
            what=o.what,
            rule=o.rule,
            clauses=say.ids(o.clauses),
        )
        head = "    " + head
        if o.status == "late":
            out.append(say("x_if_late", head=head, at=say.v(o.met_at), event=o.met_by))
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
            out.append(say("x_if_overdue", head=head))
            continue
        costs = say("x_sep").join(_consequence(say, t) for t in missed)
        line = say("x_if_missed", head=head, costs=costs)
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
                line += say(
                    "x_if_taker",
                    owner=taker.owner,
                    sf=sf_word,
                    at=say.v(taker.start),
                    rule=taker.rule,
                    clauses=say.ids(taker.clauses),
                )
            line += say("x_if_kept", party=lapsed[0].party)
        out.append(line)
    return out


def explain_full(
    decision: Decision,
    subject: str,
    policy: Policy | None = None,
    at: str | datetime | None = None,
    history: Iterable[Mapping[str, Any]] = (),
    lang: Lang = "en",
) -> str:
    """The chain of events and rules behind the subject's owner, claims, penalties and duties,
    each with its clause's original text (from ``policy``), then the counterfactuals.

    ``at``: explain the owner at that instant instead of every ownership span.
    ``history``: the evaluated events, to show each cause's type, time and fields.
    ``lang``: the words around the pack's own text (``en`` or ``zh``).
    """
    say = _Say(decision, lang)
    events = {str(e.get("id")): e for e in history if isinstance(e, Mapping)}
    lines = [say("x_as_of", subject=subject, as_of=say.v(decision.as_of))]
    spans = decision.ownership(subject)
    limit = None

    def because(rule: str, clauses: list[str], causes: list[str]) -> list[str]:
        return _because(decision, say, policy, events, rule, clauses, causes)

    if at is not None:
        moment = parse_instant(at, "at").astimezone(ZoneInfo(decision.timezone))
        limit = moment
        owner = decision.owner(subject, at=at)
        lines.append("  " + say("x_owner_at", at=say.v(moment), owner=owner or say("x_nobody")))
        span = next(
            (s for s in spans if s.start <= moment and (s.end is None or moment < s.end)), None
        )
        if span is not None:
            until = say("x_until", end=say.v(span.end)) if span.end is not None else ""
            start = say.v(span.start)
            lines.append("  " + say("x_since", owner=span.owner, start=start, until=until))
            lines.extend(because(span.rule, span.clauses, span.events))
        spans = []
    elif not spans:
        lines.append("  " + say("x_no_owner"))
    for span in spans:
        until = say("x_until", end=say.v(span.end)) if span.end is not None else say("x_current")
        start = say.v(span.start)
        lines.append("  " + say("x_owner_from", owner=span.owner, start=start, until=until))
        lines.extend(because(span.rule, span.clauses, span.events))
    for t in decision.trace:
        if t.kind == "claim" and t.subject == subject and (limit is None or t.at <= limit):
            status = str(t.detail.get("status"))
            shown = word(f"claim_{status}", lang)
            shown = status if shown.startswith("claim_") else shown
            lines.append("  " + say("x_claim", at=say.v(t.at), party=t.party, status=shown))
            lines.extend(because(t.rule, t.clauses, t.events))
    for p in decision.penalties:
        if p.subject == subject and (limit is None or p.at <= limit):
            lines.append("  " + say.penalty(p))
            lines.extend(because(p.rule, p.clauses, p.events))
    for cr in decision.credits:
        if cr.subject == subject and (limit is None or cr.at <= limit):
            lines.append("  " + say.credit(cr))
            lines.extend(because(cr.rule, cr.clauses, cr.events))
    for o in decision.obligations:
        if o.subject == subject and (limit is None or o.opened <= limit):
            lines.append("  " + say.duty(o, with_time=True))
            lines.extend(because(o.rule, o.clauses, o.events))
    for v in decision.violations:
        if v.subject == subject and (limit is None or v.at <= limit):
            lines.append("  " + say.violation(v))
            lines.extend(because(v.rule, v.clauses, v.events))
    for name, value in decision.flags.get(subject, {}).items():
        lines.append("  " + say("x_flag", name=name, value=say.v(value)))
    for record in policy.overlays if policy is not None else ():
        off = "".join(
            say("x_overlay_off", rule=rid, why=why) for rid, why in record.disabled.items()
        )
        lines.append(
            "  "
            + say(
                "x_overlay",
                id=record.id,
                version=record.version,
                file=record.file,
                added=say.ids(record.added) or say("x_no_rule"),
                replaced=say.ids(record.replaced) or say("x_no_rule"),
                off=off,
            )
        )
    what_if = counterfactuals(decision, subject, policy, lang)
    if what_if:
        lines.append("  " + say("x_what_if"))
        lines.extend(what_if)
    return "\n".join(lines)


def explain_json(
    decision: Decision,
    subject: str,
    policy: Policy | None = None,
    at: str | datetime | None = None,
    history: Iterable[Mapping[str, Any]] = (),
    lang: Lang = "en",
) -> dict[str, Any]:
    """The account of ``explain_full`` as data, as ``POST /v1/explain`` and ``explain --format
    json`` return it: ``{subject, text, json: {owner, ownership, penalties, obligations, trace,
    what_if}}``, the subject's part of ``decision.model_dump(mode="json")``."""
    text = explain_full(decision, subject, policy, at=at, history=list(history), lang=lang)
    dumped = decision.model_dump(mode="json")
    return {
        "subject": subject,
        "text": text,
        "json": {
            "owner": decision.owner(subject),
            "ownership": [s.model_dump(mode="json") for s in decision.ownership(subject)],
            "penalties": [p for p in dumped["penalties"] if p.get("subject") == subject],
            "obligations": [o for o in dumped["obligations"] if o.get("subject") == subject],
            "trace": [t for t in dumped["trace"] if t.get("subject") == subject],
            "what_if": counterfactuals(decision, subject, policy, lang=lang),
        },
    }


def explain(decision: Decision, subject: str) -> str:
    """``pe.explain(decision, subject)``: the account ``decision.explain(subject)`` gives."""
    return explain_subject(decision, subject)


# ``Decision.explain`` reaches this module through its hook: the data module imports no tool
Decision.explainer = explain
