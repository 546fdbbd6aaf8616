"""Issue 17: per-employee monthly statements as an Excel workbook (``--out statement.xlsx``),
written by ``policyengine.tools.statements.write_workbook`` and read back with openpyxl."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl  # the dev extra installs it (and the excel extra)
import pytest

import policyengine as pe
from policyengine.tools import statements as st
from policyengine.tools.present import LANGS, Lang, word

ROOT = Path(__file__).resolve().parent.parent
YEN = '"¥"#,##0.00'
Event = dict[str, Any]

# a pack with a range fine, amounts in cents, non-cash sanctions, salary days, a duty that goes
# overdue and credits, over three local months
POLICY = """\
policy: {id: statements, title: 员工处罚对账单, version: "1", timezone: Asia/Shanghai}
clauses:
  - {id: S-1, text: 迟到一次罚款二十至一百元, reading: lateness is fined 20 to 100}
  - {id: S-2, text: 损坏物品每件罚0.10元, reading: "0.10 per broken item, and 12.35"}
  - {id: S-3, text: 弄虚作假者开除并警告, reading: fraud is dismissal and a warning}
  - {id: S-4, text: 伪造记录扣两天工资, reading: two days of salary}
  - {id: S-5, text: 登记后一天内回访, reading: visit within a day}
  - {id: S-6, text: 成交提成2.5%, reading: commission of 2.5 percent}
params:
  late_fine: {money: 20-100}
  per_item: {money: 0.10}
  fine_cents: {money: 12.35}
  falsify_days: {salary_days: 2}
events:
  late: {fields: {customer: str, employee: str}}
  broken: {fields: {customer: str, employee: str, items: int}}
  fraud: {fields: {customer: str, employee: str}}
  falsified: {fields: {customer: str, employee: str}}
  registered: {fields: {customer: str, employee: str}}
  visited: {fields: {customer: str, employee: str}}
  sale: {fields: {customer: str, employee: str, amount: decimal}}
rules:
  - id: late
    clause: S-1
    on: late
    then: [{penalty: {party: $event.employee, sanction: fine, amount: $params.late_fine}}]
  - id: broken
    clause: S-2
    on: broken
    then:
      - penalty: {party: $event.employee, sanction: fine, per_unit: $params.per_item,
                  units: $event.items}
      - {penalty: {party: $event.employee, sanction: fine, amount: $params.fine_cents}}
  - id: fraud
    clause: [S-3, S-4]
    on: fraud
    then:
      - {penalty: {party: $event.employee, sanction: dismissal}}
      - {penalty: {party: $event.employee, sanction: warning}}
  - id: falsified
    clause: S-4
    on: falsified
    then:
      - penalty: {party: $event.employee, sanction: salary_deduction,
                  salary_days: $params.falsify_days}
  - id: visit
    clause: S-5
    on: registered
    then: [{claim: $event.employee}]
    expect:
      event: visited
      match: {customer: $event.customer, employee: $event.employee}
      within: 1 day
      obligation: 回访客户
      party: $event.employee
  - id: commission
    clause: S-6
    on: sale
    then:
      - credit:
          party: $event.employee
          kind: commission
          amount: {round: [{mul: [$event.amount, 0.025]}, 2]}
"""


def ev(eid: str, etype: str, at: str, employee: str = "李雷", **fields: Any) -> Event:
    return {"id": eid, "type": etype, "at": at, "customer": "C-王", "employee": employee, **fields}


HISTORY = [
    ev("a", "late", "2026-02-10T10:00:00+08:00"),
    ev("b", "broken", "2026-02-28T17:30:00Z", items=3),  # 2026-03-01 01:30 in Shanghai
    ev("c", "late", "2026-03-05T09:00:00+08:00", employee="zhao"),
    ev("d", "fraud", "2026-03-06T09:00:00+08:00", employee="zhao"),
    ev("e", "falsified", "2026-03-31T23:30:00+08:00"),
    ev("f", "registered", "2026-03-10T09:00:00+08:00"),  # never visited: overdue 03-11
    ev("g", "broken", "2026-04-01T00:10:00+08:00", items=7),
    ev("h", "sale", "2026-03-12T09:00:00+08:00", amount="1234.50"),
    ev("i", "sale", "2026-04-02T09:00:00+08:00", amount="99.99"),
]


@pytest.fixture(scope="module")
def synthetic() -> tuple[pe.Policy, pe.Decision]:
    policy = pe.load_policy_text(POLICY, "statements.yaml")
    return policy, policy.evaluate(HISTORY, as_of="2026-04-30T00:00:00+08:00", resumable=False)


@pytest.fixture(scope="module")
def huixiao() -> tuple[pe.Policy, pe.Decision]:
    policy = pe.load_policy(ROOT / "policies" / "huixiao")
    events = json.loads((ROOT / "examples" / "huixiao_march.json").read_text(encoding="utf-8"))
    return policy, policy.evaluate(events, resumable=False)


# ---------------------------------------------------------------- reading the workbook back


def month_of(p: pe.Penalty, tz: str) -> str:
    return st.month_of(p.at, tz)


def local(value: datetime, tz: str) -> datetime:
    return st.local(value, tz)


def cents(value: Any) -> Decimal:
    """A number read back from a cell, as the exact decimal it was written from."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def block(ws: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """The header and the rows of the penalty block (down to the first empty row)."""
    rows = ws.iter_rows(values_only=False)
    header = [c.value for c in next(rows)]
    out = []
    for cells in rows:
        if all(c.value is None for c in cells):
            break
        row = {st.PENALTY_COLUMNS[i]: c for i, c in enumerate(cells[: len(st.PENALTY_COLUMNS)])}
        out.append(row)
    return header, out


def is_total(row: dict[str, Any], lang: Lang = "en") -> bool:
    return bool(row["subject"].value == word("total", lang))


def write(decision: pe.Decision, tmp_path: Path, **kw: Any) -> Any:
    path = st.write_workbook(decision, tmp_path / "statement.xlsx", **kw)
    assert path.exists()
    return openpyxl.load_workbook(path)


def penalty_months(decision: pe.Decision) -> dict[str, list[pe.Penalty]]:
    found: dict[str, list[pe.Penalty]] = defaultdict(list)
    for p in decision.penalties:
        found[month_of(p, decision.timezone)].append(p)
    return found


def check_statement(decision: pe.Decision, wb: Any, lang: Lang = "en") -> None:
    """The properties every statement has, whatever the pack."""
    tz = decision.timezone
    months = penalty_months(decision)
    assert set(months) <= set(wb.sheetnames)
    for month, penalties in months.items():
        ws = wb[month]
        assert ws.freeze_panes == "A2"
        header, rows = block(ws)
        assert header == [word(c, lang) for c in st.PENALTY_COLUMNS]
        assert all(c.font.bold for c in ws[1])
        shown = [r for r in rows if not is_total(r, lang)]
        totals = [r for r in rows if is_total(r, lang)]
        # one row per penalty, in the decision's order within each employee
        assert len(shown) == len(penalties)
        by_party: dict[str, list[pe.Penalty]] = defaultdict(list)
        for p in penalties:
            by_party[p.party].append(p)
        assert [r["employee"].value for r in shown] == [
            p.party for party in sorted(by_party) for p in by_party[party]
        ]
        expected = [p for party in sorted(by_party) for p in by_party[party]]
        for row, p in zip(shown, expected, strict=True):
            at = row["at"]
            assert isinstance(at.value, datetime) and at.value.tzinfo is None
            assert at.value == local(p.at, tz)
            assert at.number_format == "yyyy-mm-dd hh:mm"
            assert row["rule"].value == p.rule
            assert row["clause"].value == ", ".join(p.clauses)
            assert row["sanction"].value == word(p.sanction, lang)
            assert row["offence"].value == p.offence
            assert row["events"].value == ", ".join(p.events)
            assert row["subject"].value == p.subject
            if p.amount_min is None:
                assert row["amount_min"].value is None and row["amount_max"].value is None
            else:
                assert cents(row["amount_min"].value) == p.amount_min
                assert cents(row["amount_max"].value) == p.amount_max
                assert row["amount_min"].number_format == YEN
                assert row["amount_max"].number_format == YEN
        # one bold totals row per employee, exact to the cent
        assert sorted(r["employee"].value for r in totals) == sorted(by_party)
        for row in totals:
            mine = by_party[row["employee"].value]
            assert all(c.font.bold for c in row.values() if c.value is not None)
            low = sum((p.amount_min or Decimal(0) for p in mine), Decimal(0))
            high = sum((p.amount_max or Decimal(0) for p in mine), Decimal(0))
            assert cents(row["amount_min"].value) == low
            assert cents(row["amount_max"].value) == high
            assert row["amount_min"].number_format == YEN
            assert row["amount_max"].number_format == YEN
            non_cash = sum(p.sanction in ("warning", "transfer", "dismissal") for p in mine)
            assert row["non_cash"].value == non_cash
            overdue = [
                o
                for o in decision.obligations
                if o.status == "overdue"
                and o.party == row["employee"].value
                and o.due is not None
                and st.month_of(o.due, tz) == month
            ]
            assert row["overdue_duties"].value == len(overdue)
        # column widths are set
        assert all(ws.column_dimensions[c].width >= 8 for c in "ABCDEFGHIJKLM")


# ---------------------------------------------------------------- the shipped huixiao month


def test_the_huixiao_march_statement(
    huixiao: tuple[pe.Policy, pe.Decision], tmp_path: Path
) -> None:
    policy, decision = huixiao
    assert decision.penalties
    wb = write(decision, tmp_path, policy=policy)
    check_statement(decision, wb)
    assert wb.sheetnames[0] == "2026-03"
    # the range fine of HX-RM-1 shows both ends
    _, rows = block(wb["2026-03"])
    ranged = [r for r in rows if r["clause"].value == "HX-RM-1"]
    assert [(cents(r["amount_min"].value), cents(r["amount_max"].value)) for r in ranged] == [
        (Decimal(20), Decimal(100))
    ]
    # zhao: 20-100 + 20-100 + 200 → 240-400
    zhao = next(r for r in rows if is_total(r) and r["employee"].value == "zhao")
    assert (cents(zhao["amount_min"].value), cents(zhao["amount_max"].value)) == (
        Decimal(240),
        Decimal(400),
    )
    # the overdue duties of the month are listed under the penalties, and counted per employee
    values = [c for row in wb["2026-03"].iter_rows(values_only=True) for c in row]
    assert "report the new resource to the department manager" in values


def test_the_huixiao_statement_in_chinese(
    huixiao: tuple[pe.Policy, pe.Decision], tmp_path: Path
) -> None:
    policy, decision = huixiao
    wb = write(decision, tmp_path, lang="zh", policy=policy)
    check_statement(decision, wb, lang="zh")
    header = [c.value for c in wb["2026-03"][1]]
    assert header[:3] == ["员工", "客户", "时间"]
    assert "最低金额" in header and "最高金额" in header and "逾期未履行义务" in header
    assert {c.value for c in wb["2026-03"]["F"][1:]} >= {"罚款"}
    # the clauses as the manual words them, in Chinese as written
    clauses = wb[word("clause", "zh")]
    texts = {row[0]: row[1] for row in clauses.iter_rows(min_row=2, values_only=True)}
    pset = policy.pset
    assert pset is not None
    assert texts["HX-RM-1"] == pset.clauses["HX-RM-1"].text


# ---------------------------------------------------------------- a pack with ranges and cents


def test_one_sheet_per_local_month(
    synthetic: tuple[pe.Policy, pe.Decision], tmp_path: Path
) -> None:
    policy, decision = synthetic
    wb = write(decision, tmp_path, policy=policy)
    check_statement(decision, wb)
    # b happened on 02-28 in UTC, 03-01 in Shanghai: March's
    assert wb.sheetnames[:3] == ["2026-02", "2026-03", "2026-04"]
    assert {m: len(ps) for m, ps in penalty_months(decision).items()} == {
        "2026-02": 1,
        "2026-03": 6,
        "2026-04": 2,
    }


def test_totals_are_exact_to_the_cent(
    synthetic: tuple[pe.Policy, pe.Decision], tmp_path: Path
) -> None:
    _, decision = synthetic
    wb = write(decision, tmp_path)
    _, rows = block(wb["2026-03"])
    li = next(r for r in rows if is_total(r) and r["employee"].value == "李雷")
    # 0.30 + 12.35; the salary deduction is in days, not money
    assert cents(li["amount_min"].value) == Decimal("12.65")
    assert cents(li["amount_max"].value) == Decimal("12.65")
    assert li["salary_days"].value == 2
    assert li["non_cash"].value == 0
    assert li["overdue_duties"].value == 1
    zhao = next(r for r in rows if is_total(r) and r["employee"].value == "zhao")
    assert (cents(zhao["amount_min"].value), cents(zhao["amount_max"].value)) == (
        Decimal(20),
        Decimal(100),
    )
    assert zhao["non_cash"].value == 2  # the dismissal and the warning
    assert zhao["overdue_duties"].value == 0
    april = next(r for r in block(wb["2026-04"])[1] if is_total(r))
    assert cents(april["amount_min"].value) == Decimal("13.05")  # 0.70 + 12.35
    # the statements as data: the same sums, exact
    months = {m.month: m for m in st.statements(decision)}
    totals = months["2026-03"].employees["李雷"].totals
    assert totals == [st.Totals("CNY", Decimal("12.65"), Decimal("12.65"))]


def test_credits_have_their_own_sheet(
    synthetic: tuple[pe.Policy, pe.Decision], tmp_path: Path
) -> None:
    _, decision = synthetic
    wb = write(decision, tmp_path)
    ws = wb[word("credits")]
    assert ws.freeze_panes == "A2"
    rows = list(ws.iter_rows(min_row=2))
    col = {name: i for i, name in enumerate(st.CREDIT_COLUMNS)}
    shown = [r for r in rows if r[col["subject"]].value != word("total")]
    assert len(shown) == len(decision.credits)
    for r, c in zip(shown, decision.credits, strict=True):
        assert r[col["month"]].value == st.month_of(c.at, decision.timezone)
        assert r[col["employee"]].value == c.party
        assert r[col["kind"]].value == c.kind
        assert cents(r[col["amount"]].value) == c.amount
        assert r[col["amount"]].number_format == YEN
        assert r[col["at"]].value == local(c.at, decision.timezone)
    totals = [r for r in rows if r[col["subject"]].value == word("total")]
    assert [(r[col["month"]].value, cents(r[col["amount"]].value)) for r in totals] == [
        ("2026-03", Decimal("30.86")),
        ("2026-04", Decimal("2.50")),
    ]
    assert all(r[col["amount"]].font.bold for r in totals)


# ---------------------------------------------------------------- edges


def test_an_empty_decision_still_writes_a_workbook(tmp_path: Path) -> None:
    policy = pe.load_policy_text(POLICY, "statements.yaml")
    quiet = [ev("v1", "registered", "2026-03-10T09:00:00+08:00")]
    quiet.append(ev("v2", "visited", "2026-03-10T12:00:00+08:00"))
    decision = policy.evaluate(quiet, resumable=False)
    assert decision.penalties == [] and decision.credits == []
    for lang in LANGS:
        wb = write(decision, tmp_path, lang=lang)
        values = [c for row in wb.worksheets[0].iter_rows(values_only=True) for c in row]
        assert word("no_penalties", lang) in values
    assert "无处罚" in values


def test_an_overdue_month_without_penalties_says_so(tmp_path: Path) -> None:
    policy = pe.load_policy_text(POLICY, "statements.yaml")
    decision = policy.evaluate(
        [ev("r", "registered", "2026-03-10T09:00:00+08:00")],
        as_of="2026-03-20T00:00:00+08:00",
        resumable=False,
    )
    assert decision.penalties == []
    wb = write(decision, tmp_path)
    assert wb.sheetnames == ["2026-03"]
    _, rows = block(wb["2026-03"])
    assert rows[0]["employee"].value == "李雷" and rows[0]["overdue_duties"].value == 1
    values = [c for row in wb["2026-03"].iter_rows(values_only=True) for c in row]
    assert "no penalties" in values and "回访客户" in values


def test_without_openpyxl_the_error_says_what_to_install(
    synthetic: tuple[pe.Policy, pe.Decision], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    with pytest.raises(ImportError, match=r"pip install policyengine\[excel\]"):
        st.write_workbook(synthetic[1], tmp_path / "x.xlsx")
    assert not (tmp_path / "x.xlsx").exists()
