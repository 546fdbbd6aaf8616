"""A decision as plain-text tables for a terminal, with Chinese text aligned.

Every value is shown through ``tools/present.py`` (times in the policy's timezone, money as
``¥200`` or ``¥20–100``, lists joined), every heading and status in ``--lang en|zh``.
Columns are measured in terminal cells: wide and full-width characters (East Asian width
``W``/``F``, e.g. 汉字 and full-width punctuation) take two, combining marks none.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from policyengine.runtime.decision import Decision, Metric, Penalty
from policyengine.tools.present import NOTHING, Lang, money, number, plain, when, word

MAX_CELL = 60


def width(text: str) -> int:
    """Terminal cells ``text`` takes."""
    total = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def clip(text: str, limit: int = MAX_CELL) -> str:
    """``text`` cut to at most ``limit`` cells, with an ellipsis when cut."""
    if width(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        w = width(ch)
        if used + w > limit - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def pad(text: str, cells: int) -> str:
    return text + " " * max(0, cells - width(text))


def cell(value: Any, tz: str | None = None, lang: Lang = "en") -> str:
    """One value as the manager reads it (``present``): never a Python repr."""
    if isinstance(value, bool):
        return word("yes" if value else "no", lang)
    if isinstance(value, datetime):
        return when(value, tz)
    return plain(value)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    tz: str | None = None,
    lang: Lang = "en",
) -> str:
    """Aligned columns; each value shown by ``cell`` (instants local to ``tz``)."""
    texts = [[clip(cell(v, tz, lang)) for v in row] for row in rows]
    widths = [width(h) for h in headers]
    for row in texts:
        for i, t in enumerate(row):
            widths[i] = max(widths[i], width(t))
    lines = ["  ".join(pad(h, widths[i]) for i, h in enumerate(headers)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in texts:
        lines.append("  ".join(pad(t, widths[i]) for i, t in enumerate(row)).rstrip())
    return "\n".join(lines)


def amount(p: Penalty, lang: Lang = "en") -> str:
    """A penalty's amount: ``¥200``, the manual's range ``¥20–100``, days of salary, or ``—``."""
    if p.amount_min is None:
        if p.salary_days is not None:
            return word("salary_of_days", lang).format(days=number(p.salary_days))
        return NOTHING
    return money(p.amount_min, p.amount_max, p.currency)


def period(m: Metric, lang: Lang = "en") -> str:
    """A metric's period, marked while it has not ended."""
    return m.period if m.complete else word("so_far", lang).format(period=m.period)


def render(decision: Decision, title: str | None = None, lang: Lang = "en") -> str:
    """Every section of the decision that has entries, as aligned tables, in ``lang``."""
    tz = decision.timezone

    def w(key: str) -> str:
        return word(key, lang)

    head = title or f"{decision.policy} {decision.version}"
    parts = [w("title").format(head=head, as_of=when(decision.as_of, tz), tz=tz)]

    def section(name: str, headers: Sequence[str], rows: list[list[Any]]) -> None:
        if rows:
            heads = [w(h) for h in headers]
            parts.append(f"\n{w(name)} ({len(rows)})\n{table(heads, rows, tz, lang)}")

    owners: list[list[Any]] = []
    for sid in sorted(decision.ownerships):
        spans = decision.ownerships[sid]
        if spans and spans[-1].end is None:
            s = spans[-1]
            owners.append([sid, s.owner, s.start, s.rule, s.clauses])
        else:
            owners.append([sid, None, None, spans[-1].rule if spans else None, None])
    section("owners", ("subject", "owner", "since", "rule", "clause"), owners)
    section(
        "penalties",
        ("party", "sanction", "offence", "amount", "clause", "rule", "events"),
        [
            [p.party, w(p.sanction), p.offence, amount(p, lang), p.clauses, p.rule, p.events]
            for p in decision.penalties
        ],
    )
    section(
        "credits",
        ("party", "kind", "amount", "clause", "rule", "events"),
        [
            [c.party, c.kind, money(c.amount, currency=c.currency), c.clauses, c.rule, c.events]
            for c in decision.credits
        ],
    )
    section(
        "obligations",
        ("status", "party", "subject", "duty", "due", "clause"),
        [[w(o.status), o.party, o.subject, o.what, o.due, o.clauses] for o in decision.obligations],
    )
    section(
        "violations",
        ("party", "subject", "what", "event", "at", "clause"),
        [[v.party, v.subject, v.what, v.event, v.at, v.clauses] for v in decision.violations],
    )
    section(
        "rejected",
        ("event", "at", "reason", "rule", "clause"),
        [[r.event, r.at, r.reason, r.rule, r.clauses] for r in decision.rejected],
    )
    section(
        "classifications",
        ("subject", "label", "value", "reason", "event", "clause"),
        [
            [c.subject, c.label, c.value, c.reason, c.event, c.clauses]
            for c in decision.classifications
        ],
    )
    section(
        "metrics",
        ("party", "metric", "period", "value", "target", "target_met", "grade", "clause"),
        [
            [m.party, m.rule, period(m, lang), m.value, m.target, m.met, m.grade, m.clauses]
            for m in decision.metrics
        ],
    )
    section(
        "awards",
        ("period", "award", "place", "winner", "clause"),
        [[a.period, a.title or a.rule, a.place, a.party, a.clauses] for a in decision.awards],
    )
    section(
        "notices",
        ("event", "kind", "detail"),
        [[n.event, w(n.kind), n.detail] for n in decision.notices],
    )
    if len(parts) == 1:
        parts.append("\n" + w("nothing_decided"))
    return "\n".join(parts)
