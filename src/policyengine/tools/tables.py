"""A decision as plain-text tables for a terminal, with Chinese text aligned.

Columns are measured in terminal cells: wide and full-width characters (East Asian width
``W``/``F``, e.g. 汉字 and full-width punctuation) take two, combining marks none.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from policyengine.runtime.decision import Decision

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


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    texts = [[clip(cell(v)) for v in row] for row in rows]
    widths = [width(h) for h in headers]
    for row in texts:
        for i, t in enumerate(row):
            widths[i] = max(widths[i], width(t))
    lines = ["  ".join(pad(h, widths[i]) for i, h in enumerate(headers)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in texts:
        lines.append("  ".join(pad(t, widths[i]) for i, t in enumerate(row)).rstrip())
    return "\n".join(lines)


def _amount(p: Any) -> str:
    if p.amount_min is None:
        return f"{cell(p.salary_days)} days" if p.salary_days is not None else "-"
    low, high = cell(p.amount_min), cell(p.amount_max)
    text = low if low == high else f"{low}-{high}"
    return f"{text} {p.currency or ''}".strip()


def _sanction(p: Any) -> str:
    return str(p.sanction) + (f" #{p.offence}" if p.offence > 1 else "")


def _period(m: Any) -> str:
    return str(m.period) + ("" if m.complete else " (so far)")


def render(decision: Decision, title: str | None = None) -> str:
    """Every section of the decision that has entries, as aligned tables."""
    head = title or f"{decision.policy} {decision.version}"
    parts = [f"{head} (as of {cell(decision.as_of)}, {decision.timezone})"]

    def section(name: str, headers: Sequence[str], rows: list[list[Any]]) -> None:
        if rows:
            parts.append(f"\n{name} ({len(rows)})\n{table(headers, rows)}")

    owners: list[list[Any]] = []
    for sid in sorted(decision.ownerships):
        spans = decision.ownerships[sid]
        if spans and spans[-1].end is None:
            s = spans[-1]
            owners.append([sid, s.owner, s.start, s.rule, s.clause])
        else:
            owners.append([sid, None, None, spans[-1].rule if spans else None, None])
    section("owners", ("subject", "owner", "since", "rule", "clause"), owners)
    section(
        "penalties",
        ("party", "sanction", "amount", "clause", "rule", "events"),
        [
            [p.party, _sanction(p), _amount(p), p.clause, p.rule, p.events]
            for p in decision.penalties
        ],
    )
    section(
        "credits",
        ("party", "kind", "amount", "clause", "rule", "events"),
        [
            [c.party, c.kind, f"{cell(c.amount)} {c.currency}", c.clause, c.rule, c.events]
            for c in decision.credits
        ],
    )
    section(
        "obligations",
        ("status", "party", "subject", "what", "due", "clause"),
        [[o.status, o.party, o.subject, o.what, o.due, o.clause] for o in decision.obligations],
    )
    section(
        "violations",
        ("party", "subject", "what", "event", "at", "clause"),
        [[v.party, v.subject, v.what, v.event, v.at, v.clause] for v in decision.violations],
    )
    section(
        "rejected events",
        ("event", "at", "reason", "rule", "clause"),
        [[r.event, r.at, r.reason, r.rule, r.clause] for r in decision.rejected],
    )
    section(
        "classifications",
        ("subject", "label", "value", "reason", "event", "clause"),
        [
            [c.subject, c.label, c.value, c.reason, c.event, c.clause]
            for c in decision.classifications
        ],
    )
    section(
        "metrics",
        ("party", "metric", "period", "value", "target", "met", "grade", "clause"),
        [
            [m.party, m.rule, _period(m), m.value, m.target, m.met, m.grade, m.clause]
            for m in decision.metrics
        ],
    )
    section(
        "awards",
        ("period", "award", "place", "party", "clause"),
        [[a.period, a.title or a.rule, a.place, a.party, a.clause] for a in decision.awards],
    )
    section(
        "notices",
        ("event", "kind", "detail"),
        [[n.event, n.kind, n.detail] for n in decision.notices],
    )
    if len(parts) == 1:
        parts.append("\nnothing decided")
    return "\n".join(parts)
