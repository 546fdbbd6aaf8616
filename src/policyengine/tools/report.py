"""The HTML report for managers: one self-contained page (``policyengine report ... --out``).

In English or Chinese (``lang``); the packs' own text (clause text, duties, reasons) is shown
as written, and every text is escaped. Three parts:

- **customers**: an inline SVG timeline per customer, from the first event to ``as_of``:
  owners (bars), claims (thin bars up to their lapse or release), duty windows (``opened`` ->
  ``due``, coloured by status), fines and violations (marks). A mark links to its clause
  (``#clause-HX-RM-3``) and has a ``<title>`` tooltip; the table under the chart links each
  entry to its rule (``#rule-...``), clauses and events (``#event-...``).
- **statements**, per employee and month (policy timezone): fines (a range stays a range,
  ``¥20–100``), non-cash sanctions, duties overdue or late, credits, with totals.
- **departments**, per month: totals, KPIs (``decision.metrics``), awards. A party's department
  comes from ``departments=``, else a pack parameter ``departments`` (party -> department),
  else events carrying both ``employee`` and ``department``; else one department, "all".

No network: inline CSS and SVG only, no script, no font, image or URL. The formats and words
are ``tools.present``'s.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import pendulum

from policyengine.errors import PolicyEngineError
from policyengine.runtime.decision import Decision, Penalty
from policyengine.times import parse_instant
from policyengine.tools.present import NOTHING, Lang, money, number, plain, when, word

if TYPE_CHECKING:
    from policyengine.policy import Policy

__all__ = ["customers_of", "department_map", "render_html", "statement_totals"]

CASH: Final = frozenset({"fine", "salary_deduction", "confiscation"})
STATUS_COLOURS: Final[dict[str, str]] = {
    "met": "#2e7d32",
    "late": "#ef6c00",
    "overdue": "#c62828",
    "open": "#1565c0",
    "cancelled": "#9e9e9e",
}
_OWNER_COLOURS: Final = ("#5c6bc0", "#26a69a", "#8d6e63", "#ab47bc", "#789262", "#d4a017")
_COMPANY_COLOUR: Final = "#b0bec5"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# the chart's geometry, in SVG user units (the picture scales to the page's width)
_W: Final = 1000
_LABEL: Final = 130
_RIGHT: Final = 16
_AXIS: Final = 26
_LANE: Final = 34
_TRACK: Final = 11


def _e(value: Any) -> str:
    """Any value as escaped text (quotes too: the same text goes into attributes)."""
    return html.escape(value if isinstance(value, str) else plain(value), quote=True)


def _slug(value: str) -> str:
    """An id usable in ``id=`` and ``href="#..."`` alike: safe characters kept, others coded."""
    out = []
    for ch in value:
        if ch.isascii() and (ch.isalnum() or ch in "-_.:"):
            out.append(ch)
        else:
            out.append(f"_{ord(ch):x}_")
    return "".join(out)


def anchor(kind: str, ident: str) -> str:
    """The page-local id of a clause, rule, event or customer: ``clause-HX-RM-3``."""
    return f"{kind}-{_slug(ident)}"


def _link(kind: str, ident: str) -> str:
    return f'<a href="#{anchor(kind, ident)}">{_e(ident)}</a>'


def _links(kind: str, idents: Iterable[str]) -> str:
    found = [_link(kind, i) for i in idents]
    return ", ".join(found) if found else NOTHING


# ------------------------------------------------------------------ what the report is about


def customers_of(decision: Decision) -> list[str]:
    """Every customer the decision says something about, in order of first appearance:
    owned, claimed, owing or owed a duty, fined or credited about, in breach about."""
    seen: dict[str, None] = {}
    for sid in decision.ownerships:
        seen.setdefault(sid, None)
    for t in decision.trace:
        if t.kind == "claim" and t.subject:
            seen.setdefault(t.subject, None)
    for group in (decision.obligations, decision.penalties, decision.credits, decision.violations):
        for item in group:
            if item.subject:
                seen.setdefault(item.subject, None)
    return list(seen)


def department_map(
    policy: Policy | None,
    events: Iterable[Mapping[str, Any]] = (),
    departments: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Party -> department: ``departments`` if given, else the pack parameter ``departments``
    (a mapping), else events carrying both ``employee`` and ``department`` (the latest wins);
    empty when nothing says (every party is then in the department "all")."""
    if departments:
        return {str(k): str(v) for k, v in departments.items()}
    if policy is not None:
        param = policy.compiled.params.get("departments")
        if isinstance(param, Mapping) and param:
            return {str(k): str(v) for k, v in param.items()}
    found: dict[str, str] = {}
    for ev in events:
        emp, dept = ev.get("employee"), ev.get("department")
        if isinstance(emp, str) and isinstance(dept, str) and emp and dept:
            found[emp] = dept
    return found


def _month(value: datetime, tz: str) -> str:
    return pendulum.instance(value).in_timezone(tz).strftime("%Y-%m")


def _period_month(period: str) -> str:
    """The month a metric period falls in: ``2026-03``, ``2026-03-01`` or ``2026-W10``."""
    if "-W" in period:
        year, week = period.split("-W", 1)
        try:
            return datetime.fromisocalendar(int(year), int(week), 4).strftime("%Y-%m")
        except ValueError:
            return period
    return period[:7]


def statement_totals(decision: Decision) -> dict[tuple[str, str, str], tuple[Decimal, Decimal]]:
    """(employee, month, currency) -> (low, high): what the statements total, per currency."""
    out: dict[tuple[str, str, str], tuple[Decimal, Decimal]] = {}
    for p in decision.penalties:
        if p.amount_min is None and p.amount_max is None:
            continue
        low = p.amount_min if p.amount_min is not None else p.amount_max
        high = p.amount_max if p.amount_max is not None else p.amount_min
        assert low is not None and high is not None
        key = (p.party, _month(p.at, decision.timezone), p.currency or "")
        lo, hi = out.get(key, (Decimal(0), Decimal(0)))
        out[key] = (lo + low, hi + high)
    return out


# ------------------------------------------------------------------ the timeline


@dataclass
class _Lane:
    party: str
    owned: list[tuple[datetime, datetime | None, Any]] = field(default_factory=list)
    claims: list[tuple[datetime, datetime | None, str, Any, Any]] = field(default_factory=list)
    duties: list[Any] = field(default_factory=list)
    fines: list[Penalty] = field(default_factory=list)
    breaches: list[Any] = field(default_factory=list)
    tracks: list[list[Any]] = field(default_factory=list)


@dataclass
class _Axis:
    start: datetime
    end: datetime
    tz: str

    def x(self, t: datetime | None) -> float:
        if t is None:
            return float(_W - _RIGHT)
        span = (self.end - self.start).total_seconds() or 1.0
        f = (t - self.start).total_seconds() / span
        f = min(max(f, 0.0), 1.0)
        return round(_LABEL + f * (_W - _LABEL - _RIGHT), 1)


def _claims(decision: Decision, subject: str) -> list[tuple[Any, Any, str, Any, Any]]:
    """(party, start, end, how it ended, opening entry, closing entry) per claim."""
    out: list[tuple[Any, Any, str, Any, Any]] = []
    opened: dict[str, Any] = {}
    for t in decision.trace:
        if t.kind != "claim" or t.subject != subject or t.party is None:
            continue
        status = t.detail.get("status")
        if status == "open":
            if t.party not in opened:
                opened[t.party] = t
        elif t.party in opened:
            start = opened.pop(t.party)
            out.append((t.party, (start.at, t.at), str(status), start, t))
    for party, start in opened.items():
        out.append((party, (start.at, None), "open", start, None))
    return out


def _lanes(decision: Decision, subject: str) -> list[_Lane]:
    lanes: dict[str, _Lane] = {}

    def lane(party: str | None) -> _Lane:
        name = party or NOTHING
        if name not in lanes:
            lanes[name] = _Lane(name)
        return lanes[name]

    for span in decision.ownership(subject):
        lane(span.owner).owned.append((span.start, span.end, span))
    for party, (start, end), how, first, last in _claims(decision, subject):
        lane(party).claims.append((start, end, how, first, last))
    for o in decision.obligations:
        if o.subject == subject:
            lane(o.party).duties.append(o)
    for p in decision.penalties:
        if p.subject == subject:
            lane(p.party).fines.append(p)
    for v in decision.violations:
        if v.subject == subject:
            lane(v.party).breaches.append(v)
    for ln in lanes.values():  # duty windows that overlap go on separate tracks
        for o in sorted(ln.duties, key=lambda o: o.opened):
            for track in ln.tracks:
                last = track[-1]
                if (last.due or last.opened) <= o.opened:
                    track.append(o)
                    break
            else:
                ln.tracks.append([o])
    return list(lanes.values())


def _ticks(axis: _Axis) -> list[datetime]:
    start = pendulum.instance(axis.start).in_timezone(axis.tz)
    days = max((axis.end - axis.start).total_seconds() / 86400, 1.0)
    step = next((s for s in (1, 2, 7, 14, 28) if days / s <= 12), 0)
    out: list[datetime] = []
    if step == 0:  # months
        t = start.start_of("month").add(months=1)
        while t <= axis.end:
            out.append(t)
            t = t.add(months=max(1, int(days // 365) or 1))
        return out
    t = start.start_of("day").add(days=1)
    while t <= axis.end:
        out.append(t)
        t = t.add(days=step)
    return out


def _title(text: str) -> str:
    return f"<title>{_e(text)}</title>"


def _colour(owner: str, palette: dict[str, str]) -> str:
    if owner == "company":
        return _COMPANY_COLOUR
    if owner not in palette:
        palette[owner] = _OWNER_COLOURS[len(palette) % len(_OWNER_COLOURS)]
    return palette[owner]


def _who(party: str, lang: Lang) -> str:
    return word("company", lang) if party == "company" else party


def _timeline(
    decision: Decision,
    subject: str,
    axis: _Axis,
    lang: Lang,
    palette: dict[str, str],
) -> str:
    tz = decision.timezone
    lanes = _lanes(decision, subject)
    heights = [_LANE + _TRACK * len(ln.tracks) for ln in lanes]
    total = _AXIS + sum(heights) + 8
    parts = [
        f'<svg class="timeline" data-customer="{_e(subject)}" viewBox="0 0 {_W} {total}" '
        f'width="100%" role="img" aria-label="{_e(word("timeline", lang))} {_e(subject)}">',
        _title(f"{word('timeline', lang)}: {subject}"),
    ]
    # the axis: local midnights (or months) as ticks, the first event and as_of at the ends
    for t in _ticks(axis):
        x = axis.x(t)
        parts.append(
            f'<line class="tick" x1="{x}" y1="{_AXIS - 6}" x2="{x}" y2="{total - 4}"/>'
            f'<text class="ticklabel" x="{x}" y="{_AXIS - 10}">'
            f"{_e(pendulum.instance(t).in_timezone(tz).strftime('%m-%d'))}</text>"
        )
    x_end = axis.x(axis.end)
    parts.append(
        f'<line class="asof" x1="{x_end}" y1="{_AXIS - 6}" x2="{x_end}" y2="{total - 4}">'
        f"{_title(word('as_of', lang) + ' ' + when(axis.end, tz))}</line>"
    )
    y = _AXIS
    for ln, h in zip(lanes, heights, strict=True):
        who = _who(ln.party, lang)
        short = who if len(who) <= 14 else who[:13] + "…"
        parts.append(
            f'<g class="lane" data-party="{_e(ln.party)}">'
            f'<line class="lanesep" x1="0" y1="{y}" x2="{_W}" y2="{y}"/>'
            f'<text class="party" x="4" y="{y + 20}">{_e(short)}{_title(who)}</text>'
        )
        for start, end, how, first, last in ln.claims:  # a thin bar above the owner bar
            x0, x1 = axis.x(start), axis.x(end if end is not None else axis.end)
            tip = (
                f"{word('claim', lang)} {ln.party}: {when(start, tz)} → "
                f"{when(end, tz) if end is not None else word('claim_open', lang)} "
                f"({word('claim_' + how, lang)}); {word('rule', lang)} {first.rule}"
                f"{' / ' + last.rule if last is not None else ''}; "
                f"{', '.join(first.clauses)}; {word('events', lang)} {', '.join(first.events)}"
            )
            cid = (last or first).clauses[0] if (last or first).clauses else ""
            parts.append(
                f'<a class="mark claim" href="#{anchor("clause", cid)}">'
                f'<rect class="claimbar" x="{x0}" y="{y + 4}" width="{max(x1 - x0, 2):.1f}" '
                f'height="5" rx="2"/>{_title(tip)}</a>'
            )
            if end is not None:
                parts.append(
                    f'<a class="mark claimend" href="#{anchor("clause", cid)}">'
                    f'<path class="lapse" d="M{x1 - 4} {y + 2}l8 9m0 -9l-8 9"/>{_title(tip)}</a>'
                )
        for start, end, span in ln.owned:
            x0, x1 = axis.x(start), axis.x(end if end is not None else axis.end)
            tip = (
                f"{word('owner', lang)} {who}: {when(start, tz)} → "
                f"{when(end, tz) if end is not None else word('as_of', lang)}; "
                f"{word('rule', lang)} {span.rule}; {', '.join(span.clauses)}; "
                f"{word('events', lang)} {', '.join(span.events)}"
            )
            cid = span.clauses[0] if span.clauses else ""
            parts.append(
                f'<a class="mark own" href="#{anchor("clause", cid)}">'
                f'<rect class="ownbar" x="{x0}" y="{y + 11}" width="{max(x1 - x0, 2):.1f}" '
                f'height="13" rx="3" fill="{_colour(ln.party, palette)}"/>{_title(tip)}</a>'
            )
        for k, track in enumerate(ln.tracks):
            ty = y + _LANE - 4 + k * _TRACK
            for o in track:
                x0 = axis.x(o.opened)
                x1 = axis.x(o.due if o.due is not None else axis.end)
                due = when(o.due, tz) if o.due is not None else word("x_no_deadline", lang)
                met = f"; {word('met_at', lang)} {when(o.met_at, tz)}" if o.met_at else ""
                tip = (
                    f"{word('duty', lang)} ({o.party}): {o.what}; {when(o.opened, tz)} → {due}; "
                    f"{word(o.status, lang)}{met}; {word('rule', lang)} {o.rule}; "
                    f"{', '.join(o.clauses)}; {word('events', lang)} {', '.join(o.events)}"
                )
                cid = o.clauses[0] if o.clauses else ""
                colour = STATUS_COLOURS.get(o.status, "#607d8b")
                parts.append(
                    f'<a class="mark duty {_e(o.status)}" href="#{anchor("clause", cid)}">'
                    f'<rect class="dutybar" x="{x0}" y="{ty}" width="{max(x1 - x0, 2):.1f}" '
                    f'height="7" rx="2" fill="{colour}"/>{_title(tip)}</a>'
                )
                if o.met_at is not None:
                    xm = axis.x(o.met_at)
                    parts.append(
                        f'<circle class="metdot" cx="{xm}" cy="{ty + 3.5}" r="3.2" '
                        f'fill="{colour}">{_title(tip)}</circle>'
                    )
        for p in ln.fines:
            xf = axis.x(p.at)
            tip = f"{word(p.sanction, lang)} {ln.party}: {_amount(p, lang)}; " + (
                f"{when(p.at, tz)}; {word('rule', lang)} {p.rule}; {', '.join(p.clauses)}; "
                f"{word('events', lang)} {', '.join(p.events)}"
            )
            cid = p.clauses[0] if p.clauses else ""
            parts.append(
                f'<a class="mark fine" href="#{anchor("clause", cid)}">'
                f'<path class="finemark" d="M{xf} {y + 9}l7 8.5l-7 8.5l-7 -8.5z"/>'
                f"{_title(tip)}</a>"
            )
        for v in ln.breaches:
            xv = axis.x(v.at)
            tip = (
                f"{word('violations', lang)} ({ln.party}): {v.what}; {when(v.at, tz)}; "
                f"{word('rule', lang)} {v.rule}; {', '.join(v.clauses)}; "
                f"{word('events', lang)} {', '.join(v.events)}"
            )
            cid = v.clauses[0] if v.clauses else ""
            parts.append(
                f'<a class="mark breach" href="#{anchor("clause", cid)}">'
                f'<path class="breachmark" d="M{xv} {y + 9}l7 14h-14z"/>{_title(tip)}</a>'
            )
        parts.append("</g>")
        y += h
    parts.append("</svg>")
    return "".join(parts)


def _amount(p: Penalty, lang: Lang) -> str:
    if p.amount_min is not None or p.amount_max is not None:
        text = money(p.amount_min, p.amount_max, p.currency)
        return text + (word("x_units", lang).format(units=p.units) if p.units else "")
    if p.salary_days is not None:
        return word("salary_of_days", lang).format(days=number(p.salary_days))
    return NOTHING


def _customer_rows(decision: Decision, subject: str, lang: Lang) -> list[tuple[Any, ...]]:
    """The chart's marks as table rows: when, what, who, detail, rule, clauses, events."""
    tz = decision.timezone
    rows: list[tuple[Any, ...]] = []
    for s in decision.ownership(subject):
        end = when(s.end, tz) if s.end is not None else NOTHING
        what = f"{word('owner', lang)}: {_who(s.owner, lang)}"
        rows.append((s.start, what, f"{when(s.start, tz)} → {end}", s.rule, s.clauses, s.events))
    for t in decision.trace:
        if t.kind == "claim" and t.subject == subject:
            status = str(t.detail.get("status", ""))
            what = f"{word('claim', lang)}: {t.party} ({word('claim_' + status, lang)})"
            rows.append((t.at, what, when(t.at, tz), t.rule, t.clauses, t.events))
    for o in decision.obligations:
        if o.subject == subject:
            due = when(o.due, tz) if o.due is not None else word("x_no_deadline", lang)
            detail = f"{o.what}; {word('due', lang)} {due}"
            what = f"{word('duty', lang)} ({o.party}): {word(o.status, lang)}"
            rows.append((o.opened, what, detail, o.rule, o.clauses, o.events, o.status))
    for p in decision.penalties:
        if p.subject == subject:
            what = f"{word(p.sanction, lang)} ({p.party})"
            rows.append((p.at, what, _amount(p, lang), p.rule, p.clauses, p.events))
    for v in decision.violations:
        if v.subject == subject:
            what = f"{word('violations', lang)} ({v.party})"
            rows.append((v.at, what, v.what, v.rule, v.clauses, v.events))
    for c in decision.credits:
        if c.subject == subject:
            what = f"{word('credits', lang)} ({c.party})"
            rows.append(
                (
                    c.at,
                    what,
                    f"{c.kind} {money(c.amount, None, c.currency)}",
                    c.rule,
                    c.clauses,
                    c.events,
                )
            )
    rows.sort(key=lambda r: r[0])
    return rows


def _customer(
    decision: Decision, subject: str, axis: _Axis, lang: Lang, palette: dict[str, str]
) -> str:
    tz = decision.timezone
    owner = decision.owner(subject)
    now = _who(owner, lang) if owner is not None else NOTHING
    body = [
        f'<article class="customer" id="{anchor("customer", subject)}" '
        f'data-customer="{_e(subject)}">',
        f"<h3>{_e(subject)}</h3>",
        f'<p class="now">{_e(word("owner", lang))} ({_e(word("as_of", lang))} '
        f"{_e(when(decision.as_of, tz))}): <b>{_e(now)}</b></p>",
        '<div class="chart">',
        _timeline(decision, subject, axis, lang, palette),
        "</div>",
        "<details><summary>" + _e(word("detail", lang)) + "</summary>",
        '<div class="scroll"><table class="marks"><thead><tr>',
        *(
            f"<th>{_e(word(k, lang))}</th>"
            for k in ("at", "what", "detail", "rule", "clause", "events")
        ),
        "</tr></thead><tbody>",
    ]
    for row in _customer_rows(decision, subject, lang):
        at, what, detail, rule, clauses, events = row[:6]
        status = f' class="{_e(row[6])}"' if len(row) > 6 else ""
        body.append(
            f"<tr{status}><td>{_e(when(at, tz))}</td><td>{_e(what)}</td><td>{_e(detail)}</td>"
            f"<td>{_link('rule', rule)}</td><td>{_links('clause', clauses)}</td>"
            f"<td>{_links('event', events)}</td></tr>"
        )
    body.append("</tbody></table></div></details></article>")
    return "".join(body)


def _legend(lang: Lang) -> str:
    items = [
        f'<span><i class="sw own"></i>{_e(word("ownership", lang))}</span>',
        f'<span><i class="sw claimsw"></i>{_e(word("claim", lang))}</span>',
        *(
            f'<span><i class="sw" style="background:{c}"></i>{_e(word(s, lang))}</span>'
            for s, c in STATUS_COLOURS.items()
        ),
        f'<span><i class="sw finesw"></i>{_e(word("fine", lang))}</span>',
        f'<span><i class="sw breachsw"></i>{_e(word("violations", lang))}</span>',
    ]
    return f'<p class="legend">{"".join(items)}</p>'


# ------------------------------------------------------------------ statements and departments


def _statements(decision: Decision, lang: Lang) -> str:
    tz = decision.timezone
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = {}

    def add(party: str | None, at: datetime, row: tuple[Any, ...]) -> None:
        groups.setdefault((party or NOTHING, _month(at, tz)), []).append((at, *row))

    for p in decision.penalties:
        kind = "fine" if p.sanction in CASH else "non_cash"
        add(
            p.party,
            p.at,
            (
                kind,
                word(p.sanction, lang),
                _amount(p, lang),
                p.offence,
                p.subject,
                p.rule,
                p.clauses,
                p.events,
            ),
        )
    for o in decision.obligations:
        if o.status in ("overdue", "late") and o.party:
            at = o.due or o.opened
            add(
                o.party,
                at,
                (
                    "duty",
                    f"{word(o.status, lang)}: {o.what}",
                    NOTHING,
                    None,
                    o.subject,
                    o.rule,
                    o.clauses,
                    o.events,
                ),
            )
    for c in decision.credits:
        add(
            c.party,
            c.at,
            (
                "credit",
                f"{word('credits', lang)}: {c.kind}",
                money(c.amount, None, c.currency),
                None,
                c.subject,
                c.rule,
                c.clauses,
                c.events,
            ),
        )
    totals = statement_totals(decision)
    credit_totals: dict[tuple[str, str, str], Decimal] = {}
    for c in decision.credits:
        key = (c.party, _month(c.at, tz), c.currency)
        credit_totals[key] = credit_totals.get(key, Decimal(0)) + c.amount
    if not groups:
        return f'<p class="none">{_e(word("none", lang))}</p>'
    out = [f'<p class="note">{_e(word("range_note", lang))}</p>']
    heads = ("at", "kind", "what", "amount", "offence", "subject", "rule", "clause", "events")
    for (party, month), rows in sorted(groups.items()):
        rows.sort(key=lambda r: r[0])
        out.append(
            f'<article class="statement" id="{anchor("statement", party + "-" + month)}" '
            f'data-employee="{_e(party)}" data-month="{_e(month)}">'
            f"<h3>{_e(_who(party, lang))} · {_e(month)}</h3>"
            '<div class="scroll"><table><thead><tr>'
            + "".join(f"<th>{_e(word(h, lang))}</th>" for h in heads)
            + "</tr></thead><tbody>"
        )
        for at, kind, what, amount, offence, subject, rule, clauses, events in rows:
            out.append(
                f'<tr class="{kind}"><td>{_e(when(at, tz))}</td><td>{_e(word(kind, lang))}</td>'
                f'<td>{_e(what)}</td><td class="num">{_e(amount)}</td>'
                f"<td>{_e(offence)}</td>"
                f"<td>{_link('customer', subject) if subject else NOTHING}</td>"
                f"<td>{_link('rule', rule)}</td><td>{_links('clause', clauses)}</td>"
                f"<td>{_links('event', events)}</td></tr>"
            )
        out.append("</tbody><tfoot>")
        mine = sorted((k[2], v) for k, v in totals.items() if k[:2] == (party, month))
        for currency, (low, high) in mine or [("", (Decimal(0), Decimal(0)))]:
            out.append(
                f'<tr class="total"><th colspan="3">{_e(word("fines_total", lang))}</th>'
                f'<td class="num total-fines" data-currency="{_e(currency)}" '
                f'data-min="{number(low)}" data-max="{number(high)}">'
                f'{_e(money(low, high, currency or None))}</td><td colspan="5"></td></tr>'
            )
        for (emp, mon, currency), amount in sorted(credit_totals.items()):
            if (emp, mon) == (party, month):
                out.append(
                    f'<tr class="total"><th colspan="3">{_e(word("credits_total", lang))}</th>'
                    f'<td class="num total-credits" data-currency="{_e(currency)}" '
                    f'data-amount="{number(amount)}">{_e(money(amount, None, currency))}</td>'
                    '<td colspan="5"></td></tr>'
                )
        counts = {k: sum(1 for r in rows if r[1] == k) for k in ("non_cash", "duty")}
        out.append(
            f'<tr class="total"><th colspan="3">{_e(word("non_cash", lang))} · '
            f'{_e(word("overdue_duties", lang))}</th><td class="num">'
            f'{counts["non_cash"]} · {counts["duty"]}</td><td colspan="5"></td></tr>'
        )
        out.append("</tfoot></table></div></article>")
    return "".join(out)


def _departments(decision: Decision, depts: Mapping[str, str], lang: Lang) -> str:
    tz = decision.timezone

    def dept(party: str | None) -> str:
        if not depts:
            return word("all_departments", lang)
        return depts.get(party or "", word("unassigned", lang))

    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(party: str | None, month: str) -> dict[str, Any]:
        return rows.setdefault(
            (dept(party), month),
            {"fines": {}, "non_cash": 0, "overdue": 0, "credits": {}, "metrics": [], "awards": []},
        )

    for p in decision.penalties:
        r = row(p.party, _month(p.at, tz))
        if p.amount_min is not None or p.amount_max is not None:
            low = p.amount_min if p.amount_min is not None else p.amount_max
            high = p.amount_max if p.amount_max is not None else p.amount_min
            lo, hi = r["fines"].get(p.currency or "", (Decimal(0), Decimal(0)))
            r["fines"][p.currency or ""] = (lo + low, hi + high)
        elif p.sanction not in CASH:
            r["non_cash"] += 1
    for o in decision.obligations:
        if o.status == "overdue":
            row(o.party, _month(o.due or o.opened, tz))["overdue"] += 1
    for c in decision.credits:
        r = row(c.party, _month(c.at, tz))
        r["credits"][c.currency] = r["credits"].get(c.currency, Decimal(0)) + c.amount
    for mt in decision.metrics:
        row(mt.party, _period_month(mt.period))["metrics"].append(mt)
    for aw in decision.awards:
        row(aw.party, _period_month(aw.period))["awards"].append(aw)
    if not rows:
        return f'<p class="none">{_e(word("none", lang))}</p>'
    out: list[str] = []
    if not depts:
        out.append(f'<p class="note">{_e(word("one_department", lang))}</p>')
    for (name, month), r in sorted(rows.items()):
        fines = ", ".join(money(lo, hi, c or None) for c, (lo, hi) in sorted(r["fines"].items()))
        credits = ", ".join(money(a, None, c) for c, a in sorted(r["credits"].items()))
        out.append(
            f'<article class="department" data-department="{_e(name)}" data-month="{_e(month)}">'
            f"<h3>{_e(name)} · {_e(month)}</h3>"
            '<div class="scroll"><table class="totals"><tbody>'
            f'<tr><th>{_e(word("fines_total", lang))}</th><td class="num">'
            f"{_e(fines or NOTHING)}</td></tr>"
            f'<tr><th>{_e(word("non_cash", lang))}</th><td class="num">{r["non_cash"]}</td></tr>'
            f'<tr><th>{_e(word("overdue_duties", lang))}</th><td class="num">{r["overdue"]}</td>'
            f'</tr><tr><th>{_e(word("credits_total", lang))}</th><td class="num">'
            f"{_e(credits or NOTHING)}</td></tr></tbody></table></div>"
        )
        if r["metrics"]:
            heads = ("metric", "party", "period", "value", "target", "status", "grade", "clause")
            out.append(
                f'<h4>{_e(word("metrics", lang))}</h4><div class="scroll"><table class="kpi">'
                "<thead><tr>"
                + "".join(f"<th>{_e(word(h, lang))}</th>" for h in heads)
                + "</tr></thead><tbody>"
            )
            for mt in r["metrics"]:
                met = "target_met" if mt.met else "target_missed"
                status = NOTHING if mt.met is None else word(met, lang)
                period = mt.period
                if not mt.complete:
                    period = word("so_far", lang).format(period=period)
                target = NOTHING
                if mt.target is not None:
                    sign = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}.get(mt.comparison or "", "")
                    target = f"{sign}{number(mt.target)}"
                out.append(
                    f"<tr><td>{_link('rule', mt.rule)}</td><td>{_e(mt.party)}</td>"
                    f'<td>{_e(period)}</td><td class="num">{_e(number(mt.value))}</td>'
                    f'<td class="num">{_e(target)}</td><td>{_e(status)}</td>'
                    f"<td>{_e(mt.grade)}</td><td>{_links('clause', mt.clauses)}</td></tr>"
                )
            out.append("</tbody></table></div>")
        if r["awards"]:
            award_heads = ("award", "winner", "period", "place", "metrics", "clause")
            out.append(
                f'<h4>{_e(word("awards", lang))}</h4><div class="scroll"><table class="awards">'
                "<thead><tr>"
                + "".join(f"<th>{_e(word(h, lang))}</th>" for h in award_heads)
                + "</tr></thead><tbody>"
            )
            for aw in r["awards"]:
                out.append(
                    f"<tr><td>{_e(aw.title or aw.rule)}</td><td>{_e(aw.party)}</td>"
                    f'<td>{_e(aw.period)}</td><td class="num">{aw.place}</td>'
                    f"<td>{_e(aw.metrics)}</td><td>{_links('clause', aw.clauses)}</td></tr>"
                )
            out.append("</tbody></table></div>")
        out.append("</article>")
    return "".join(out)


# ------------------------------------------------------------------ rules, clauses, events


def _cited(decision: Decision) -> tuple[list[str], list[str], list[str]]:
    """The rules, clauses and events the report's entries name, in order of first mention."""
    rules: dict[str, None] = {}
    clauses: dict[str, None] = {}
    events: dict[str, None] = {}
    groups: Sequence[Sequence[Any]] = (
        [s for spans in decision.ownerships.values() for s in spans],
        [t for t in decision.trace if t.kind == "claim"],
        decision.obligations,
        decision.penalties,
        decision.credits,
        decision.violations,
        decision.rejected,
    )
    for group in groups:
        for item in group:
            rules.setdefault(item.rule, None)
            for cid in item.clauses:
                clauses.setdefault(cid, None)
            for eid in getattr(item, "events", None) or [getattr(item, "event", "")]:
                if eid:
                    events.setdefault(eid, None)
    for group2 in (decision.metrics, decision.awards):
        for item in group2:
            rules.setdefault(item.rule, None)
            for cid in item.clauses:
                clauses.setdefault(cid, None)
    return list(rules), list(clauses), list(events)


def _rules(policy: Policy | None, rules: list[str], lang: Lang) -> str:
    docs: dict[str, str | None] = {}
    cites: dict[str, list[str]] = {}
    if policy is not None:
        for r in policy.rules:
            docs[r.id] = r.doc
        for cr in policy.compiled.rules:
            cites[cr.id] = list(cr.clauses)
            docs.setdefault(cr.id, None)
    out = ["<dl>"]
    for rid in rules:
        doc = docs.get(rid)
        out.append(
            f'<dt id="{anchor("rule", rid)}">{_e(rid)}</dt><dd>'
            + (f"{_e(doc.strip())}<br>" if doc else "")
            + f"{_e(word('clause', lang))}: {_links('clause', cites.get(rid, []))}</dd>"
        )
    out.append("</dl>")
    return "".join(out)


def _clauses(policy: Policy | None, decision: Decision, clauses: list[str], lang: Lang) -> str:
    known = policy.compiled.clauses if policy is not None else {}
    out = ["<dl>"]
    for cid in clauses:
        clause = known.get(cid)
        text = clause.text if clause is not None else None
        reading = clause.reading if clause is not None else decision.clauses.get(cid)
        out.append(f'<dt id="{anchor("clause", cid)}">{_e(cid)}</dt><dd>')
        if text:
            out.append(f'<blockquote lang="zh">{_e(text)}</blockquote>')
        if reading:
            out.append(f'<p class="reading"><b>{_e(word("reading", lang))}:</b> {_e(reading)}</p>')
        out.append("</dd>")
    out.append("</dl>")
    return "".join(out)


def _events(
    decision: Decision, events: Sequence[Mapping[str, Any]], cited: list[str], lang: Lang
) -> str:
    by_id = {str(ev.get("id")): ev for ev in events if ev.get("id") is not None}
    order = [str(ev.get("id")) for ev in events if ev.get("id") is not None]
    order += [eid for eid in cited if eid not in by_id]
    heads = ("event", "kind", "at", "detail")
    out = [
        '<div class="scroll"><table class="events"><thead><tr>'
        + "".join(f"<th>{_e(word(h, lang))}</th>" for h in heads)
        + "</tr></thead><tbody>"
    ]
    for eid in dict.fromkeys(order):
        ev = by_id.get(eid, {})
        rest = "; ".join(f"{k}: {plain(v)}" for k, v in ev.items() if k not in ("id", "type", "at"))
        out.append(
            f'<tr id="{anchor("event", eid)}"><td>{_e(eid)}</td><td>{_e(ev.get("type"))}</td>'
            f"<td>{_e(_event_time(ev.get('at'), decision.timezone))}</td>"
            f"<td>{_e(rest or NOTHING)}</td></tr>"
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def _instant(value: Any) -> datetime | None:
    """An event's ``at`` as an aware datetime; None if it is not one (shown as written)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    try:
        return parse_instant(value, "at")
    except PolicyEngineError:
        return None


def _event_time(value: Any, tz: str) -> str:
    found = _instant(value)
    return when(found, tz) if found is not None else plain(value)


def _notices(decision: Decision, lang: Lang) -> str:
    tz = decision.timezone
    out: list[str] = []
    for r in decision.rejected:
        out.append(
            f"<li>{_e(word('rejected', lang))}: {_link('event', r.event)} "
            f"({_e(when(r.at, tz))}): {_e(r.reason)}; {_e(word('rule', lang))} "
            f"{_link('rule', r.rule)}, {_links('clause', r.clauses)}</li>"
        )
    for n in decision.notices:
        out.append(f"<li>{_e(word(n.kind, lang))}: {_e(n.event)}: {_e(n.detail)}</li>")
    return f"<ul>{''.join(out)}</ul>" if out else f'<p class="none">{_e(word("none", lang))}</p>'


# ------------------------------------------------------------------ the page


_CSS: Final = """
:root{--ink:#1f2933;--muted:#61707d;--rule:#d9dee3;--bg:#fff;--soft:#f5f7f9}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI","PingFang SC",
"Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC",sans-serif;color:var(--ink);
background:var(--bg)}
header,main,footer{max-width:1180px;margin:0 auto;padding:0 14px}
header{padding-top:14px;border-bottom:2px solid var(--ink)}
h1{font-size:1.5em;margin:.2em 0}h2{margin:1.4em 0 .4em;border-bottom:1px solid var(--rule)}
h3{margin:1em 0 .3em}h4{margin:.8em 0 .2em}
.meta{color:var(--muted);margin:.2em 0 .6em}
nav a{margin-right:1em}
a{color:#0b57d0}
.chart{overflow-x:auto}
svg.timeline{display:block;min-width:640px;background:var(--soft);border-radius:6px}
svg text{font-size:12px;fill:var(--ink)}
svg .ticklabel{font-size:11px;fill:var(--muted);text-anchor:middle}
svg .tick{stroke:var(--rule);stroke-width:1}
svg .asof{stroke:#000;stroke-dasharray:3 3}
svg .lanesep{stroke:#e4e8ec}
svg .party{font-weight:600}
svg .claimbar{fill:none;stroke:#455a64;stroke-width:1.5}
svg .lapse{stroke:#455a64;stroke-width:2;fill:none}
svg .finemark{fill:#d32f2f;stroke:#fff;stroke-width:1}
svg .breachmark{fill:#f9a825;stroke:#fff;stroke-width:1}
svg .metdot{stroke:#fff;stroke-width:1}
svg a:hover rect,svg a:hover path{opacity:.7}
.legend span{display:inline-block;margin:0 1em .3em 0;white-space:nowrap}
.sw{display:inline-block;width:1.4em;height:.8em;margin-right:.35em;vertical-align:middle;
border-radius:2px}
.sw.own{background:#5c6bc0}.sw.claimsw{border:1.5px solid #455a64;height:.45em}
.sw.finesw{background:#d32f2f;width:.8em;transform:rotate(45deg)}
.sw.breachsw{background:#f9a825;width:.8em}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:.3em 0 .8em;font-size:.93em}
th,td{border-bottom:1px solid var(--rule);padding:4px 6px;text-align:left;vertical-align:top}
thead th{background:var(--soft)}
td.num{text-align:right;white-space:nowrap}
tfoot th,tfoot td{border-top:2px solid var(--ink)}
tr.overdue td:first-child,tr.duty td:first-child{border-left:3px solid #c62828}
tr.late td:first-child{border-left:3px solid #ef6c00}
.note,.none{color:var(--muted)}
blockquote{margin:.2em 0;padding:.3em .8em;border-left:3px solid var(--rule);background:var(--soft)}
dt{font-weight:700;margin-top:.6em}dd{margin:0 0 .4em 1em}
:target{outline:2px solid #f9a825;outline-offset:2px}
details summary{cursor:pointer;color:var(--muted)}
footer{color:var(--muted);padding:2em 14px}
@media (max-width:640px){body{font-size:14px}h1{font-size:1.25em}
table{font-size:.88em}th,td{padding:3px 4px}nav a{display:inline-block;margin:.2em .8em .2em 0}}
@media print{.chart{overflow:visible}svg.timeline{min-width:0}details{display:block}}
"""


def render_html(
    policy: Policy | None,
    decision: Decision,
    *,
    lang: Lang = "en",
    events: Iterable[Mapping[str, Any]] = (),
    departments: Mapping[str, str] | None = None,
) -> str:
    """The decision as one self-contained HTML page (no script, no network reference).

    ``policy``: for the clauses' original text and the rules' docs (None: the decision's
    readings only). ``events``: the history as evaluated, listed at the end so that every
    entry can link to the events behind it. ``departments``: party -> department for the
    monthly department totals (see the module doc for the defaults).
    """
    evs = list(events)
    tz = decision.timezone
    subjects = customers_of(decision)
    axis = _axis(decision, evs)
    palette: dict[str, str] = {}
    rules, clauses, cited_events = _cited(decision)
    depts = department_map(policy, evs, departments)
    title = f"{word('report_title', lang)}: {decision.policy} {decision.version}"
    html_lang = "zh-CN" if lang == "zh" else "en"
    sections = [
        ("customers", word("customers", lang)),
        ("statements", word("statements", lang)),
        ("departments", word("departments", lang)),
        ("rules", word("rules", lang)),
        ("clauses", word("clauses", lang)),
        ("events", word("events", lang)),
        ("notices", word("notices", lang)),
    ]
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{html_lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="meta">{_e(word("as_of", lang))} {_e(when(decision.as_of, tz))} · '
        f"{_e(word('timezone', lang))} {_e(tz)} · {_e(word('period', lang))} "
        f"{_e(when(axis.start, tz))} → {_e(when(axis.end, tz))}</p>",
        "<nav>" + "".join(f'<a href="#{k}">{_e(v)}</a>' for k, v in sections) + "</nav></header>",
        "<main>",
        f'<section id="customers"><h2>{_e(word("customers", lang))}</h2>',
        _legend(lang),
    ]
    parts.extend(_customer(decision, s, axis, lang, palette) for s in subjects)
    if not subjects:
        parts.append(f'<p class="none">{_e(word("none", lang))}</p>')
    parts += [
        "</section>",
        f'<section id="statements"><h2>{_e(word("statements", lang))}</h2>',
        _statements(decision, lang),
        "</section>",
        f'<section id="departments"><h2>{_e(word("departments", lang))}</h2>',
        _departments(decision, depts, lang),
        "</section>",
        f'<section id="rules"><h2>{_e(word("rules", lang))}</h2>',
        _rules(policy, rules, lang),
        "</section>",
        f'<section id="clauses"><h2>{_e(word("clauses", lang))}</h2>',
        _clauses(policy, decision, clauses, lang),
        "</section>",
        f'<section id="events"><h2>{_e(word("events", lang))}</h2>',
        _events(decision, evs, cited_events, lang),
        "</section>",
        f'<section id="notices"><h2>{_e(word("notices", lang))}</h2>',
        _notices(decision, lang),
        "</section></main>",
        f"<footer>{_e(word('generated', lang))} · {_e(decision.policy)} "
        f"{_e(decision.version)}</footer></body></html>",
    ]
    return "".join(parts) + "\n"


def _axis(decision: Decision, events: Sequence[Mapping[str, Any]]) -> _Axis:
    """From the first event (or the first entry) to ``as_of`` (or the last entry)."""
    times: list[datetime] = []
    for ev in events:
        found = _instant(ev.get("at"))
        if found is not None:
            times.append(found)
    entries: list[datetime] = [t.at for t in decision.trace]
    entries += [s.start for v in decision.ownerships.values() for s in v]
    entries += [o.opened for o in decision.obligations]
    start = min(times or entries or [decision.as_of or _EPOCH])
    end = decision.as_of or max(times + entries or [start])
    if end <= start:
        end = start + timedelta(days=1)
    return _Axis(start, end, decision.timezone)
