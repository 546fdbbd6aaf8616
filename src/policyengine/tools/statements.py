"""Per-employee monthly statements of a decision, as an Excel workbook (``--out statement.xlsx``).

``statements(decision)`` groups penalties and overdue duties (by their deadline) by local
calendar month of ``decision.timezone`` and employee, with exact ``Decimal`` totals and a count
of the sanctions that cost no money (warning, transfer, dismissal). ``write_workbook`` writes
them with openpyxl (the ``excel`` extra):

- one sheet per month (``2026-03``): a frozen header row, one row per penalty, a bold totals
  row per employee, then the month's overdue duties; a range fine shows both ends, a fixed one
  equal min and max; a ``credits`` sheet when there are credits; a sheet of the cited clauses.
- times are Excel datetimes in local time of the policy timezone, naive (Excel has no offset),
  as ``yyyy-mm-dd hh:mm``; money cells are the exact ``Decimal`` as numbers, ``"¥"#,##0.00``.
- headers in English or Chinese (``lang="zh"``, the words of ``tools/present.py``); text of the
  packs as written. A decision without penalties gives a workbook with a "no penalties" note.
"""

from __future__ import annotations

import importlib
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pendulum

from policyengine.runtime.decision import Credit, Decision, Obligation, Penalty
from policyengine.tools.present import Lang, excel_money, plain, word

if TYPE_CHECKING:
    from policyengine.policy import Policy

__all__ = ["NON_CASH", "MonthStatement", "Statement", "statements", "write_workbook"]

# sanctions that cost no money: counted in their own column
NON_CASH: Final[frozenset[str]] = frozenset({"warning", "transfer", "dismissal"})
DATETIME_FORMAT: Final = "yyyy-mm-dd hh:mm"
DAYS_FORMAT: Final = "0.##"
INSTALL_HINT: Final = "writing .xlsx needs openpyxl: pip install policyengine[excel]"
_MIN_WIDTH: Final = 8
_MAX_WIDTH: Final = 60


@dataclass(frozen=True, slots=True)
class Totals:
    """One employee's money of one month in one currency (exact)."""

    currency: str | None
    amount_min: Decimal
    amount_max: Decimal


@dataclass(slots=True)
class Statement:
    """One employee's month: penalties in time order, their totals, overdue duties."""

    party: str
    penalties: list[Penalty] = field(default_factory=list)
    overdue: list[Obligation] = field(default_factory=list)

    @property
    def totals(self) -> list[Totals]:
        """The sum of amount_min and of amount_max per currency (one entry when there is no
        money, so every employee has a totals row); a fixed amount counts as min = max."""
        sums: dict[str | None, list[Decimal]] = {}
        for p in self.penalties:
            low, high = _amounts(p)
            if low is None:
                continue
            pair = sums.setdefault(p.currency, [Decimal(0), Decimal(0)])
            pair[0] += low
            pair[1] += high if high is not None else low
        if not sums:
            return [Totals(None, Decimal(0), Decimal(0))]
        return [Totals(cur, lo, hi) for cur, (lo, hi) in sums.items()]

    @property
    def salary_days(self) -> Decimal:
        return sum((p.salary_days or Decimal(0) for p in self.penalties), Decimal(0))

    @property
    def non_cash(self) -> int:
        return sum(1 for p in self.penalties if p.sanction in NON_CASH)


@dataclass(slots=True)
class MonthStatement:
    """Every employee's statement of one local calendar month (``2026-03``)."""

    month: str
    employees: dict[str, Statement] = field(default_factory=dict)

    def of(self, party: str) -> Statement:
        found = self.employees.get(party)
        if found is None:
            found = self.employees[party] = Statement(party)
        return found

    @property
    def penalties(self) -> list[Penalty]:
        return [p for s in self.sorted() for p in s.penalties]

    def sorted(self) -> list[Statement]:
        return [self.employees[k] for k in sorted(self.employees)]


def _amounts(p: Penalty) -> tuple[Decimal | None, Decimal | None]:
    if p.amount_min is None and p.amount_max is None:
        return None, None
    low = p.amount_min if p.amount_min is not None else p.amount_max
    high = p.amount_max if p.amount_max is not None else low
    return low, high


def local(value: datetime, tz: str) -> datetime:
    """``value`` as a naive local time in ``tz``: what an Excel cell can hold."""
    dt = pendulum.instance(value).in_timezone(tz)
    return datetime(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond)


def month_of(value: datetime, tz: str) -> str:
    """The local calendar month of an instant: ``2026-03``."""
    dt = pendulum.instance(value).in_timezone(tz)
    return f"{dt.year:04d}-{dt.month:02d}"


def statements(decision: Decision) -> list[MonthStatement]:
    """The decision's penalties and overdue duties by local month and employee, months in
    order; within a month employees by id, each one's penalties in decision (time) order."""
    tz = decision.timezone
    months: dict[str, MonthStatement] = {}

    def month(label: str) -> MonthStatement:
        found = months.get(label)
        if found is None:
            found = months[label] = MonthStatement(label)
        return found

    for p in decision.penalties:
        month(month_of(p.at, tz)).of(p.party).penalties.append(p)
    for o in decision.obligations:
        if o.status == "overdue":
            when = o.due if o.due is not None else o.opened
            month(month_of(when, tz)).of(plain(o.party)).overdue.append(o)
    return [months[k] for k in sorted(months)]


# ---------------------------------------------------------------- the workbook


def _openpyxl() -> Any:
    try:
        return importlib.import_module("openpyxl")
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc


def _cells(text: str) -> int:
    """Display width of ``text`` in character cells (汉字 take two)."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


class _Sheet:
    """A worksheet written row by row, remembering how wide each column's text is."""

    def __init__(self, ws: Any, fonts: Any) -> None:
        self.ws = ws
        self.bold = fonts.Font(bold=True)
        self.widths: dict[int, int] = defaultdict(lambda: _MIN_WIDTH)
        self.row = 0

    def put(
        self,
        values: Sequence[Any],
        *,
        bold: bool = False,
        formats: dict[int, str] | None = None,
    ) -> int:
        self.row += 1
        for col, value in enumerate(values, start=1):
            if value is None:
                continue
            c = self.ws.cell(row=self.row, column=col, value=value)
            fmt = (formats or {}).get(col)
            if fmt is not None:
                c.number_format = fmt
            if bold:
                c.font = self.bold
            shown = 16 if isinstance(value, datetime) else _cells(plain(value)) + 2
            self.widths[col] = min(_MAX_WIDTH, max(self.widths[col], shown))
        return self.row

    def skip(self) -> None:
        self.row += 1

    def header(self, labels: Sequence[str]) -> None:
        self.put(labels, bold=True)
        self.ws.freeze_panes = "A2"

    def finish(self, letter: Any) -> None:
        for col, w in self.widths.items():
            self.ws.column_dimensions[letter(col)].width = w


PENALTY_COLUMNS: Final[tuple[str, ...]] = (
    "employee",
    "subject",
    "at",
    "rule",
    "clause",
    "sanction",
    "offence",
    "amount_min",
    "amount_max",
    "salary_days",
    "non_cash",
    "overdue_duties",
    "events",
)
# 1-based columns of the penalty sheet
COL: Final[dict[str, int]] = {name: i for i, name in enumerate(PENALTY_COLUMNS, start=1)}
OVERDUE_COLUMNS: Final[tuple[str, ...]] = (
    "employee",
    "subject",
    "due",
    "rule",
    "clause",
    "duty",
    "events",
)
CREDIT_COLUMNS: Final[tuple[str, ...]] = (
    "month",
    "employee",
    "subject",
    "at",
    "rule",
    "clause",
    "kind",
    "amount",
    "events",
)


def _month_sheet(sheet: _Sheet, month: MonthStatement, tz: str, lang: Lang) -> None:
    sheet.header([word(c, lang) for c in PENALTY_COLUMNS])
    for st in month.sorted():
        for p in st.penalties:
            low, high = _amounts(p)
            fmt = excel_money(p.currency or "CNY")
            sheet.put(
                [
                    p.party,
                    p.subject,
                    local(p.at, tz),
                    p.rule,
                    plain(p.clauses),
                    word(p.sanction, lang),
                    p.offence,
                    low,  # the exact Decimal: openpyxl writes it as it is
                    high,
                    p.salary_days,
                    1 if p.sanction in NON_CASH else None,
                    None,
                    plain(p.events),
                ],
                formats={
                    COL["at"]: DATETIME_FORMAT,
                    COL["amount_min"]: fmt,
                    COL["amount_max"]: fmt,
                    COL["salary_days"]: DAYS_FORMAT,
                },
            )
        for i, t in enumerate(st.totals):
            fmt = excel_money(t.currency or "CNY")
            first = i == 0
            sheet.put(
                [
                    st.party,
                    word("total", lang),
                    None,
                    None,
                    None,
                    None,
                    None,
                    t.amount_min,
                    t.amount_max,
                    st.salary_days if first else None,
                    st.non_cash if first else None,
                    len(st.overdue) if first else None,
                    None,
                ],
                bold=True,
                formats={
                    COL["amount_min"]: fmt,
                    COL["amount_max"]: fmt,
                    COL["salary_days"]: DAYS_FORMAT,
                },
            )
    overdue = [o for st in month.sorted() for o in st.overdue]
    if overdue:
        sheet.skip()
        sheet.put([word("overdue_duties", lang)], bold=True)
        sheet.put([word(c, lang) for c in OVERDUE_COLUMNS], bold=True)
        for o in overdue:
            sheet.put(
                [
                    plain(o.party),
                    o.subject,
                    local(o.due, tz) if o.due is not None else None,
                    o.rule,
                    plain(o.clauses),
                    o.what,
                    plain(o.events),
                ],
                formats={3: DATETIME_FORMAT},
            )


def _credit_sheet(sheet: _Sheet, credits: Iterable[Credit], tz: str, lang: Lang) -> None:
    sheet.header([word(c, lang) for c in CREDIT_COLUMNS])
    grouped: dict[tuple[str, str], list[Credit]] = defaultdict(list)
    for c in credits:
        grouped[(month_of(c.at, tz), c.party)].append(c)
    amount = CREDIT_COLUMNS.index("amount") + 1
    for (month, party), rows in sorted(grouped.items()):
        sums: dict[str, Decimal] = {}
        for c in rows:
            sheet.put(
                [
                    month,
                    c.party,
                    c.subject,
                    local(c.at, tz),
                    c.rule,
                    plain(c.clauses),
                    word(c.kind, lang),
                    c.amount,
                    plain(c.events),
                ],
                formats={4: DATETIME_FORMAT, amount: excel_money(c.currency)},
            )
            sums[c.currency] = sums.get(c.currency, Decimal(0)) + c.amount
        for currency, total in sums.items():
            sheet.put(
                [month, party, word("total", lang), None, None, None, None, total, None],
                bold=True,
                formats={amount: excel_money(currency)},
            )


def _clause_sheet(sheet: _Sheet, decision: Decision, policy: Policy | None, lang: Lang) -> None:
    cited: dict[str, None] = {}
    for p in decision.penalties:
        cited.update(dict.fromkeys(p.clauses))
    for o in decision.obligations:
        if o.status == "overdue":
            cited.update(dict.fromkeys(o.clauses))
    for c in decision.credits:
        cited.update(dict.fromkeys(c.clauses))
    pset = policy.pset if policy is not None else None
    sheet.header([word("clause", lang), word("clause_text", lang), word("reading", lang)])
    for cid in cited:
        found = pset.clauses.get(cid) if pset is not None else None
        if found is not None:
            sheet.put([cid, found.text, found.reading])
        else:
            sheet.put([cid, None, decision.clauses.get(cid)])


def write_workbook(
    decision: Decision,
    path: str | Path,
    *,
    lang: Lang = "en",
    policy: Policy | None = None,
) -> Path:
    """Write the decision's monthly statements to ``path`` (an .xlsx file) and return it.

    ``policy``: the policy evaluated, for the title and the clauses' text as the manual words
    it (without it the clauses sheet gives the decision's readings). Needs openpyxl
    (``pip install policyengine[excel]``); ``ImportError`` saying so when it is missing.
    """
    xl = _openpyxl()
    styles = importlib.import_module("openpyxl.styles")
    letter = importlib.import_module("openpyxl.utils").get_column_letter
    tz = decision.timezone
    wb = xl.Workbook()
    wb.remove(wb.active)
    title = policy.pset.meta.title if policy is not None and policy.pset is not None else None
    wb.properties.title = title or f"{decision.policy} {decision.version}"
    sheets: list[_Sheet] = []

    def new(name: str) -> _Sheet:
        sheet = _Sheet(wb.create_sheet(title=name[:31]), styles)
        sheets.append(sheet)
        return sheet

    months = statements(decision)
    for month in months:
        _month_sheet(new(month.month), month, tz, lang)
    if not decision.penalties:
        # the first sheet says so, whatever else the workbook holds
        note = new(word("penalties", lang)) if not months else sheets[0]
        if not months:
            note.header([word("penalties", lang)])
        note.ws.cell(row=note.row + 2, column=1, value=word("no_penalties", lang)).font = note.bold
        wb.move_sheet(note.ws, offset=-wb.index(note.ws))
    if decision.credits:
        _credit_sheet(new(word("credits", lang)), decision.credits, tz, lang)
    if decision.penalties or decision.credits:
        _clause_sheet(new(word("clause", lang)), decision, policy, lang)
    for sheet in sheets:
        sheet.finish(letter)
    out = Path(path)
    wb.save(out)
    return out
