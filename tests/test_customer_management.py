"""Scenario tests for policies/customer_management: clauses CM-2, CM-2b, CM-3, CM-4, CM-5, CM-5b.

Every expectation follows the clause readings (the pack's ``clauses:``, its README and
docs/clauses.md) and the time words of docs/semantics.md. Windows are tested on
both edges:

* "within N days" is inclusive at T + N days, same wall-clock time; "1 week" is 7 days; one
  second after the due instant is late (or overdue when nothing came); before it, open;
* "3 months" / "1 year" are calendar months (30 Nov + 3 months = 28 Feb);
* "the same day" / "the next day" end at the first / second local (Asia/Shanghai) midnight,
  which is already late: 23:59:59 is in time, 00:00:00 is not;
* a monthly duty is owed per local calendar month and due at its end (exclusive).

All instants are 2026, +08:00, unless a test gives a full date.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe

Event = dict[str, Any]

SPECIAL = "special_attention"
TRACK = "record the project's tracking with the deputy leader"
REPORT = "submit a written report to the review group"
OVER_LINE = "expense more than 5% over its budget line"
NO_LINE = "expense on a line the budget does not have"
OVER_CAP = "development spend above the cap before a breakthrough"
RING2 = "phone not answered by the 2nd ring"
APOLOGY = "no apology after the 5th ring"
ALLOWED = "allowed up to ratio"


# ---------------------------------------------------------------------------- helpers


def t(day: str, hms: str = "10:00:00") -> str:
    """A Shanghai-local instant: ``t("03-02")`` is 2026-03-02T10:00:00+08:00; a full date
    (``t("2025-11-30")``) names its own year."""
    date = day if len(day) > 5 else f"2026-{day}"
    return f"{date}T{hms}+08:00"


def dt(day: str, hms: str = "10:00:00") -> datetime:
    return datetime.fromisoformat(t(day, hms))


def ev(eid: str, etype: str, at: str, **fields: Any) -> Event:
    return {"id": eid, "type": etype, "at": at, **fields}


def approved(eid: str, at: str, customer: str = "P1", employee: str = "E1") -> Event:
    return ev(eid, "project_approved", at, customer=customer, employee=employee)


def tracked(
    eid: str, at: str, progress: str = "none", customer: str = "P1", employee: str = "E1"
) -> Event:
    return ev(eid, "tracking_recorded", at, customer=customer, employee=employee, progress=progress)


def budget(
    eid: str, at: str, amount: str, line: str = "L1", customer: str = "P1", employee: str = "E1"
) -> Event:
    return ev(
        eid,
        "budget_line_submitted",
        at,
        customer=customer,
        employee=employee,
        line=line,
        amount=amount,
    )


def expense(
    eid: str, at: str, amount: str, line: str = "L1", customer: str = "P1", employee: str = "E1"
) -> Event:
    return ev(
        eid, "expense_recorded", at, customer=customer, employee=employee, line=line, amount=amount
    )


def cev(
    eid: str, etype: str, at: str, complaint: str = "K1", customer: str = "C1", **f: Any
) -> Event:
    """A complaint event (CM-3) of ``complaint`` by ``customer``."""
    return ev(eid, etype, at, customer=customer, complaint=complaint, **f)


def complaint(eid: str, at: str, complaint: str = "K1", department: str = "logistics") -> Event:
    return cev(eid, "complaint_received", at, complaint, department=department)


def call(eid: str, at: str, satisfied: bool, complaint: str = "K1") -> Event:
    return cev(eid, "follow_up_call", at, complaint, satisfied=satisfied)


def visited(eid: str, at: str, etype: str = "client_visited") -> Event:
    """A client visit V1 to C8 by zhou (or, with ``etype``, its report)."""
    return ev(eid, etype, at, customer="C8", visit="V1", employee="zhou")


def plan(eid: str, at: str, month: str | None = None, employee: str = "S1") -> Event:
    """A visit plan naming ``month`` ("2026-04"), or no month."""
    fields = {} if month is None else {"month": month}
    return ev(eid, "visit_plan_submitted", at, employee=employee, **fields)


def phone(eid: str, at: str, rings: int, **f: Any) -> Event:
    return ev(eid, "phone_answered", at, call="T1", employee="E7", rings=rings, **f)


def contract(eid: str, at: str, ratio: str, customer: str = "F1") -> Event:
    return ev(eid, "franchise_contract", at, customer=customer, return_ratio=ratio)


def delivered(eid: str, at: str, amount: str, customer: str = "F1", order: str = "O1") -> Event:
    return ev(eid, "goods_delivered", at, customer=customer, order=order, amount=amount)


def ret(eid: str, at: str, case: str, customer: str = "W1", **f: Any) -> Event:
    """A return request; defaults: wholesale, remote delivery, issue `other`."""
    f.setdefault("customer_kind", "wholesale")
    f.setdefault("delivery", "remote")
    f.setdefault("issue", "other")
    return ev(eid, "return_requested", at, customer=customer, case=case, **f)


def fret(eid: str, at: str, case: str, amount: str, customer: str = "F1") -> Event:
    """A franchise customer's return request of ``amount``."""
    return ret(eid, at, case, customer, customer_kind="franchise", amount=amount)


def cites(obj: Any, clause: str) -> bool:
    return clause in ([obj.clause] if isinstance(obj.clause, str) else obj.clause)


def obls(d: Any, clause: str, subject: str | None = None, what: str | None = None) -> list[Any]:
    """The clause's obligations (about ``subject``, whose ``what`` contains ``what``), by due."""
    found = [
        o
        for o in d.obligations
        if cites(o, clause)
        and (subject is None or o.subject == subject)
        and (what is None or what in o.what)
    ]
    return sorted(found, key=lambda o: (o.due is None, o.due or o.opened, o.opened))


def viols(d: Any, clause: str, what: str | None = None) -> list[Any]:
    return [v for v in d.violations if cites(v, clause) and (what is None or v.what == what)]


def one(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def flags(d: Any, subject: str = "P1") -> dict[str, Any]:
    return d.flags.get(subject, {})


def statuses_around(
    run: Any,
    events: list[Event],
    clause: str,
    subject: str,
    what: str,
    last_ok: str,
    first_late: str,
) -> tuple[str, str]:
    """The status of the one matching duty as of ``last_ok`` and as of ``first_late``."""
    return (
        one(obls(run(events, as_of=last_ok), clause, subject, what)).status,
        one(obls(run(events, as_of=first_late), clause, subject, what)).status,
    )


@pytest.fixture(scope="module")
def policy() -> Any:
    return pe.load_policy(Path(__file__).parent.parent / "policies/customer_management")


@pytest.fixture
def run(policy: Any) -> Any:
    """``run(event_or_list, ..., as_of=None)``: evaluate the flattened history."""

    def _run(*items: Event | list[Event], as_of: str | None = None) -> Any:
        events: list[Event] = []
        for item in items:
            events.extend(item if isinstance(item, list) else [item])
        return policy.evaluate(events, as_of=as_of)

    return _run


def test_policy_carries_the_six_clauses(run: Any) -> None:
    d = run(approved("a", t("01-05")), as_of=t("01-06"))
    for clause in ("CM-2", "CM-2b", "CM-3", "CM-4", "CM-5", "CM-5b"):
        assert d.clauses.get(clause), clause


# ============================================================================ CM-2 tracking
# From project_approved a tracking record is due at most every 30 days, rolling: met at t ->
# next due t + 30 days; missed at D -> overdue until a record meets it late at t', next due
# t' + 30 days (issue 16). Qualified / closed cancel it (reported as cancelled).


@pytest.mark.parametrize(
    ("hms", "first", "second_due"),
    [("10:00:00", "met", dt("03-06")), ("10:00:01", "late", dt("03-06", "10:00:01"))],
)
def test_cm2_first_tracking_edge(run: Any, hms: str, first: str, second_due: datetime) -> None:
    """CM-2: approved 01-05 10:00 -> due 02-04 10:00; a record then is in time; one second
    later it meets the first duty late, and the cadence restarts from it (issue 16)."""
    d = run(approved("a", t("01-05")), tracked("t1", t("02-04", hms)), as_of=t("02-20"))
    duties = obls(d, "CM-2", "P1", TRACK)
    assert duties[0].due == dt("02-04")
    assert duties[0].status == first
    assert duties[0].party == "E1"
    assert duties[1].due == second_due
    if first == "met":
        assert duties[0].met_by == "t1"
        assert duties[1].status == "open"
        assert len(duties) == 2
    else:
        assert duties[0].met_by == "t1"
        # the record restarts the cadence: next due 30 days after it
        assert duties[1].status == "open"
        assert len(duties) == 2


@pytest.mark.parametrize(
    ("as_of", "statuses"),
    [
        (t("02-04"), ["open"]),
        (t("02-04", "10:00:01"), ["overdue"]),  # one overdue duty, waiting (issue 16)
    ],
)
def test_cm2_tracking_open_until_due(run: Any, as_of: str, statuses: list[str]) -> None:
    """CM-2: with no record the first duty is open up to its due instant, overdue after."""
    d = run(approved("a", t("01-05")), as_of=as_of)
    assert [o.status for o in obls(d, "CM-2", "P1", TRACK)] == statuses


def test_cm2_tracking_rolls_from_the_record(run: Any) -> None:
    """CM-2: met at 01-20 15:00 -> next due 02-19 15:00; met again 02-10 -> next 03-12."""
    d = run(
        approved("a", t("01-05")),
        tracked("t1", t("01-20", "15:00:00")),
        tracked("t2", t("02-10", "08:00:00")),
        as_of=t("03-01"),
    )
    duties = obls(d, "CM-2", "P1", TRACK)
    assert [(o.due, o.status, o.met_by) for o in duties] == [
        (dt("02-04"), "met", "t1"),
        (dt("02-19", "15:00:00"), "met", "t2"),
        (dt("03-12", "08:00:00"), "open", None),
    ]


def test_cm2_missed_tracking_waits_overdue_then_rolls_from_the_late_record(run: Any) -> None:
    """CM-2: nothing recorded -> one duty overdue from 02-04, no pile (issue 16); a record on
    03-10 meets it late and the next is due 30 days after that record."""
    d = run(approved("a", t("01-05")), as_of=t("03-10"))
    duties = obls(d, "CM-2", "P1", TRACK)
    assert [(o.due, o.status) for o in duties] == [(dt("02-04"), "overdue")]
    assert {o.party for o in duties} == {"E1"}
    d = run(approved("a", t("01-05")), tracked("t1", t("03-10")), as_of=t("03-11"))
    assert [(o.due, o.status, o.met_by) for o in obls(d, "CM-2", "P1", TRACK)] == [
        (dt("02-04"), "late", "t1"),
        (dt("04-09"), "open", None),
    ]


def test_cm2_tracking_of_another_customer_does_not_count(run: Any) -> None:
    d = run(
        approved("a", t("01-05")),
        tracked("t1", t("01-20"), customer="P2"),
        as_of=t("02-05"),
    )
    assert obls(d, "CM-2", "P1", TRACK)[0].status == "overdue"


@pytest.mark.parametrize("ender", ["project_qualified", "project_closed"])
def test_cm2_qualified_or_closed_ends_tracking(run: Any, ender: str) -> None:
    """CM-2: qualified / closed on 02-10 -> no tracking owed after; the met duty stays."""
    d = run(
        approved("a", t("01-05")),
        tracked("t1", t("02-01")),
        ev("q", ender, t("02-10"), customer="P1"),
        as_of=t("06-01"),
    )
    duties = obls(d, "CM-2", "P1", TRACK)
    # the duty owed after t1 is reported as cancelled by the ending event (issue 16)
    assert [(o.status, o.met_by) for o in duties] == [("met", "t1"), ("cancelled", "q")]
    assert flags(d) == {}


# ============================================================================ CM-2 milestones
# 3 months: a tracking record with progress `progress` or `breakthrough`, else special_attention.
# 6 months: one with `breakthrough`, else review. 1 year: qualified, else report_due and a
# written report owed with no deadline.


@pytest.mark.parametrize(
    ("hms", "progress", "flagged"),
    [
        ("10:00:00", "progress", False),
        ("10:00:00", "breakthrough", False),
        ("10:00:00", "none", True),
        ("10:00:01", "breakthrough", True),
    ],
)
def test_cm2_progress_within_3_months(run: Any, hms: str, progress: str, flagged: bool) -> None:
    """CM-2: approved 01-05 10:00 -> progress due 04-05 10:00 (calendar months, inclusive)."""
    d = run(approved("a", t("01-05")), tracked("t1", t("04-05", hms), progress), as_of=t("04-20"))
    assert (flags(d).get(SPECIAL) is True) is flagged
    assert d.labels("P1")["project_status"] == ("special attention" if flagged else "tracking")


def test_cm2_special_attention_set_after_3_months(run: Any) -> None:
    """CM-2: no record at all: as of 04-05 10:00 no flag yet, one second later the flag."""
    assert SPECIAL not in flags(run(approved("a", t("01-05")), as_of=t("04-05")))
    assert flags(run(approved("a", t("01-05")), as_of=t("04-05", "10:00:01")))[SPECIAL] is True


@pytest.mark.parametrize(
    ("at", "flagged"),
    [
        (t("2026-02-28"), False),
        (t("2026-02-28", "10:00:01"), True),
    ],
)
def test_cm2_three_months_from_a_month_end(run: Any, at: str, flagged: bool) -> None:
    """CM-2: approved 2025-11-30 10:00 -> 3 months is 2026-02-28 10:00 (not 03-02)."""
    d = run(
        approved("a", t("2025-11-30")),
        tracked("t1", at, "progress"),
        as_of=t("2026-03-10"),
    )
    assert (flags(d).get(SPECIAL) is True) is flagged


def test_cm2_month_end_flag_edge_by_as_of(run: Any) -> None:
    """CM-2: approved 2025-11-30 10:00, nothing after: the flag comes at 2026-02-28 10:00:01."""
    a = approved("a", t("2025-11-30"))
    assert SPECIAL not in flags(run(a, as_of=t("2026-02-28")))
    assert flags(run(a, as_of=t("2026-02-28", "10:00:01")))[SPECIAL] is True


@pytest.mark.parametrize(
    ("hms", "progress", "review"),
    [
        ("10:00:00", "breakthrough", False),
        ("10:00:00", "progress", True),
        ("10:00:01", "breakthrough", True),
    ],
)
def test_cm2_breakthrough_within_6_months(run: Any, hms: str, progress: str, review: bool) -> None:
    """CM-2: approved 01-05 10:00 -> breakthrough due 07-05 10:00; only `breakthrough` counts.

    A progress record on 03-01 keeps special attention away in every case."""
    d = run(
        approved("a", t("01-05")),
        tracked("t0", t("03-01"), "progress"),
        tracked("t1", t("07-05", hms), progress),
        as_of=t("08-01"),
    )
    assert (flags(d).get("review") is True) is review
    assert SPECIAL not in flags(d)
    assert d.labels("P1")["project_status"] == ("review" if review else "tracking")


def test_cm2_review_flag_edge_by_as_of(run: Any) -> None:
    """CM-2: with progress but no breakthrough, review is set at 07-05 10:00:01, not before."""
    events = [approved("a", t("01-05")), tracked("t0", t("03-01"), "progress")]
    assert flags(run(events, as_of=t("07-05"))) == {}
    assert flags(run(events, as_of=t("07-05", "10:00:01"))) == {"review": True}


def test_cm2_no_written_report_before_one_year(run: Any) -> None:
    """CM-2: as of 2027-01-05 10:00 (exactly a year) nothing is owed yet."""
    d = run(approved("a", t("01-05")), as_of=t("2027-01-05"))
    assert obls(d, "CM-2", "P1", REPORT) == []
    assert "report_due" not in flags(d)
    assert d.labels("P1")["project_status"] == "review"


def test_cm2_not_qualified_in_a_year_owes_a_report_without_deadline(run: Any) -> None:
    """CM-2: one second after a year -> flag report_due and a report owed with due None,
    still open years later."""
    d = run(approved("a", t("01-05")), as_of=t("2029-01-01"))
    assert flags(d).get("report_due") is True
    o = one(obls(d, "CM-2", "P1", REPORT))
    assert o.what == REPORT
    assert o.due is None
    assert o.status == "open"
    assert o.party == "E1"
    assert o.met_by is None
    assert d.labels("P1")["project_status"] == "report due"


def test_cm2_written_report_meets_the_report_duty(run: Any) -> None:
    d = run(
        approved("a", t("01-05")),
        ev("w", "written_report_submitted", t("2027-02-01"), customer="P1", employee="E1"),
        as_of=t("2027-03-01"),
    )
    o = one(obls(d, "CM-2", "P1", REPORT))
    assert o.status == "met"
    assert o.met_by == "w"
    assert o.met_at == dt("2027-02-01")


def test_cm2_written_report_changes_the_status(run: Any) -> None:
    """CM-2: once the report is in, the project no longer reads "report due"."""
    d = run(
        approved("a", t("01-05")),
        ev("w", "written_report_submitted", t("2027-02-01"), customer="P1", employee="E1"),
        as_of=t("2027-03-01"),
    )
    assert "report_due" not in flags(d)
    assert d.labels("P1")["project_status"] == "report submitted"


def test_cm2_closing_the_project_withdraws_an_owed_report(run: Any) -> None:
    """CM-2: `project_closed` ends everything, the report owed after a year included."""
    d = run(
        approved("a", t("01-05")),
        ev("c", "project_closed", t("2027-03-01"), customer="P1", reason="abandoned"),
        as_of=t("2027-06-01"),
    )
    # withdrawn: reported as cancelled by the closing (issue 16)
    assert [(o.status, o.met_by) for o in obls(d, "CM-2", "P1", REPORT)] == [("cancelled", "c")]
    assert d.labels("P1")["project_status"] == "closed"


@pytest.mark.parametrize(("hms", "report"), [("10:00:00", False), ("10:00:01", True)])
def test_cm2_qualified_at_one_year_edge(run: Any, hms: str, report: bool) -> None:
    """CM-2: qualified exactly at approval + 1 year is in time; one second later the report is
    owed anyway (the label then reads qualified)."""
    d = run(
        approved("a", t("01-05")),
        ev("q", "project_qualified", t("2027-01-05", hms), customer="P1"),
        as_of=t("2027-02-01"),
    )
    assert (flags(d).get("report_due") is True) is report
    assert len(obls(d, "CM-2", "P1", REPORT)) == (1 if report else 0)
    assert d.labels("P1")["project_status"] == "qualified"


def test_cm2_closed_project_sets_no_flags(run: Any) -> None:
    """CM-2: closed a month after approval -> no milestone flag and no report, ever."""
    d = run(
        approved("a", t("01-05")),
        ev("c", "project_closed", t("02-05"), customer="P1", reason="lost"),
        as_of=t("2027-06-01"),
    )
    assert flags(d) == {}
    assert obls(d, "CM-2", "P1", REPORT) == []
    assert d.labels("P1")["project_status"] == "closed"


@pytest.mark.parametrize(
    ("extra", "as_of", "status"),
    [
        ([], t("01-20"), "tracking"),
        ([], t("04-05", "10:00:01"), "special attention"),
        ([tracked("t0", t("03-01"), "progress")], t("07-06"), "review"),
        ([], t("2027-01-06"), "report due"),
        (
            [ev("q", "project_qualified", t("2027-02-01"), customer="P1")],
            t("2027-03-01"),
            "qualified",
        ),
        (
            [
                ev("q", "project_qualified", t("03-01"), customer="P1"),
                ev("c", "project_closed", t("05-01"), customer="P1"),
            ],
            t("06-01"),
            "closed",
        ),
        ([ev("c", "project_closed", t("2027-02-01"), customer="P1")], t("2027-03-01"), "closed"),
    ],
)
def test_cm2_project_status_label(run: Any, extra: list[Event], as_of: str, status: str) -> None:
    """CM-2: closed > qualified > report due > review > special attention > tracking."""
    d = run(approved("a", t("01-05")), extra, as_of=as_of)
    assert d.labels("P1")["project_status"] == status


def test_cm2_project_status_is_none_without_a_project(run: Any) -> None:
    d = run(approved("a", t("01-05")), complaint("k", t("01-06")), as_of=t("01-07"))
    assert d.labels("C1").get("project_status") is None


# ============================================================================ CM-2b budget
# The budget table (first budget_line_submitted) within 7 days of approval; a single expense over
# its line x 1.05 is a violation; an expense on a missing line is a violation; total spend above
# 30,000 before a breakthrough is a violation for each expense that leaves it above.


@pytest.mark.parametrize(("hms", "status"), [("10:00:00", "met"), ("10:00:01", "late")])
def test_cm2b_budget_within_7_days(run: Any, hms: str, status: str) -> None:
    """CM-2b: approved 01-05 10:00 -> budget due 01-12 10:00 inclusive."""
    d = run(approved("a", t("01-05")), budget("b", t("01-12", hms), "10000"), as_of=t("01-20"))
    o = one(obls(d, "CM-2b", "P1"))
    assert o.due == dt("01-12")
    assert o.status == status
    assert o.met_by == "b"
    assert o.party == "E1"


def test_cm2b_budget_missing(run: Any) -> None:
    """CM-2b: no budget: open as of 01-12 10:00, overdue one second later."""
    got = statuses_around(
        run,
        [approved("a", t("01-05"))],
        "CM-2b",
        "P1",
        "budget",
        t("01-12"),
        t("01-12", "10:00:01"),
    )
    assert got == ("open", "overdue")


def test_cm2b_first_budget_line_meets_the_budget_duty(run: Any) -> None:
    d = run(
        approved("a", t("01-05")),
        budget("b1", t("01-08"), "10000", "L1"),
        budget("b2", t("01-09"), "5000", "L2"),
        as_of=t("01-20"),
    )
    o = one(obls(d, "CM-2b", "P1"))
    assert (o.status, o.met_by) == ("met", "b1")


@pytest.mark.parametrize(
    ("amount", "violation"),
    [("10000", False), ("10500", False), ("10500.01", True)],
)
def test_cm2b_single_expense_tolerance(run: Any, amount: str, violation: bool) -> None:
    """CM-2b: line 10000 -> up to 10500 (exactly 5% over) is within, 10500.01 is not."""
    d = run(
        approved("a", t("01-05")),
        budget("b", t("01-08"), "10000"),
        expense("x", t("02-01"), amount),
        as_of=t("02-02"),
    )
    found = viols(d, "CM-2b", OVER_LINE)
    assert len(found) == (1 if violation else 0)
    if violation:
        v = found[0]
        assert (v.party, v.subject, v.event, v.rule) == (
            "E1",
            "P1",
            "x",
            "expense-over-budget-line",
        )
    assert viols(d, "CM-2b", NO_LINE) == []


def test_cm2b_expense_on_a_line_without_budget(run: Any) -> None:
    """CM-2b: a budget for L1 only (and P2's L2) -> an expense on P1's L2 is a violation."""
    d = run(
        approved("a", t("01-05")),
        budget("b", t("01-08"), "10000", "L1"),
        budget("b2", t("01-08"), "10000", "L2", customer="P2"),
        expense("x", t("02-01"), "100", "L2"),
        as_of=t("02-02"),
    )
    v = one(viols(d, "CM-2b", NO_LINE))
    assert (v.party, v.subject, v.event) == ("E1", "P1", "x")
    assert viols(d, "CM-2b", OVER_LINE) == []


def test_cm2b_budget_line_submitted_after_the_expense_does_not_cover_it(run: Any) -> None:
    d = run(
        approved("a", t("01-05")),
        expense("x", t("01-07"), "100"),
        budget("b", t("01-08"), "10000"),
        expense("y", t("01-09"), "100"),
        as_of=t("02-02"),
    )
    assert [v.event for v in viols(d, "CM-2b", NO_LINE)] == ["x"]


@pytest.mark.parametrize(
    ("first", "second", "violation"),
    [("10000", "20000", False), ("20000", "10000", True)],
)
def test_cm2b_latest_budget_line_replaces_earlier(
    run: Any, first: str, second: str, violation: bool
) -> None:
    """CM-2b: the line's budget is the latest submission before the expense (15000 spent)."""
    d = run(
        approved("a", t("01-05")),
        budget("b1", t("01-08"), first),
        budget("b2", t("01-10"), second),
        expense("x", t("02-01"), "15000"),
        as_of=t("02-02"),
    )
    assert len(viols(d, "CM-2b", OVER_LINE)) == (1 if violation else 0)


def test_cm2b_later_budget_does_not_change_an_earlier_expense(run: Any) -> None:
    """CM-2b: 15000 over a 10000 line is a violation even if the line is raised afterwards."""
    d = run(
        approved("a", t("01-05")),
        budget("b1", t("01-08"), "10000"),
        expense("x", t("02-01"), "15000"),
        budget("b2", t("02-05"), "20000"),
        expense("y", t("02-06"), "15000"),
        as_of=t("02-10"),
    )
    assert [v.event for v in viols(d, "CM-2b", OVER_LINE)] == ["x"]


def _big_budget() -> list[Event]:
    return [approved("a", t("01-05")), budget("b", t("01-08"), "1000000")]


@pytest.mark.parametrize(
    ("amounts", "violating"),
    [
        (["30000"], []),
        (["30000.01"], ["x0"]),
        (["15000.01"], []),
        (["20000", "10000.01"], ["x1"]),
        (["20000", "10000.01", "1"], ["x1", "x2"]),
    ],
)
def test_cm2b_spend_cap(run: Any, amounts: list[str], violating: list[str]) -> None:
    """CM-2b: total exactly 30000 is not above the cap; each expense leaving it above is."""
    xs = [expense(f"x{i}", t("02-01", f"1{i}:00:00"), a) for i, a in enumerate(amounts)]
    d = run(_big_budget(), xs, as_of=t("03-01"))
    found = viols(d, "CM-2b", OVER_CAP)
    assert [v.event for v in found] == violating
    assert {(v.party, v.subject) for v in found} <= {("E1", "P1")}
    assert viols(d, "CM-2b", OVER_LINE) == []


@pytest.mark.parametrize(("progress", "violating"), [("breakthrough", []), ("progress", ["x1"])])
def test_cm2b_breakthrough_lifts_the_cap(run: Any, progress: str, violating: list[str]) -> None:
    """CM-2b: a breakthrough recorded before the crossing expense -> no cap violation;
    a mere `progress` does not lift the cap."""
    d = run(
        _big_budget(),
        expense("x0", t("02-01"), "20000"),
        tracked("t1", t("02-02"), progress),
        expense("x1", t("02-03"), "15000"),
        as_of=t("03-01"),
    )
    assert [v.event for v in viols(d, "CM-2b", OVER_CAP)] == violating


def test_cm2b_no_cap_violation_after_breakthrough(run: Any) -> None:
    """CM-2b: x1 crosses the cap (violation), then a breakthrough: later spending is free."""
    d = run(
        _big_budget(),
        expense("x0", t("02-01"), "20000"),
        expense("x1", t("02-03"), "15000"),
        tracked("t1", t("02-04"), "breakthrough"),
        expense("x2", t("02-05"), "5000"),
        as_of=t("03-01"),
    )
    assert [v.event for v in viols(d, "CM-2b", OVER_CAP)] == ["x1"]


def test_cm2b_cap_is_per_project(run: Any) -> None:
    """CM-2b: 20000 on P1 and 20000 on P2 (P2's breakthrough does not lift P1's cap)."""
    d = run(
        _big_budget(),
        approved("a2", t("01-05"), customer="P2"),
        budget("b2", t("01-08"), "1000000", customer="P2"),
        tracked("t2", t("01-20"), "breakthrough", customer="P2"),
        expense("x0", t("02-01"), "20000"),
        expense("y0", t("02-01", "11:00:00"), "20000", customer="P2"),
        expense("x1", t("02-02"), "10000.01"),
        as_of=t("03-01"),
    )
    assert [v.event for v in viols(d, "CM-2b", OVER_CAP)] == ["x1"]


# ============================================================================ CM-3 complaints
# responsibility_agreed within 1 day (department), report within 3 days of investigation_done
# (quality_lead), resolved within 1 week (department), follow-up call the same local day
# (quality_lead); an unsatisfied call reopens; each upheld complaint: fine 200-1500.


@pytest.mark.parametrize(("hms", "status"), [("10:00:00", "met"), ("10:00:01", "late")])
def test_cm3_responsibility_within_1_day(run: Any, hms: str, status: str) -> None:
    d = run(
        complaint("k", t("03-02")),
        cev("r", "responsibility_agreed", t("03-03", hms), employee="wu"),
        as_of=t("03-05"),
    )
    o = one(obls(d, "CM-3", "C1", "responsibility"))
    assert o.due == dt("03-03")
    assert (o.status, o.met_by, o.party) == (status, "r", "logistics")


def test_cm3_responsibility_missing(run: Any) -> None:
    """CM-3: no agreement: open as of 03-03 10:00, overdue one second later."""
    events = [complaint("k", t("03-02"), department="sales")]
    got = statuses_around(
        run, events, "CM-3", "C1", "responsibility", t("03-03"), t("03-03", "10:00:01")
    )
    assert got == ("open", "overdue")


def test_cm3_party_is_each_complaints_department(run: Any) -> None:
    d = run(
        complaint("k1", t("03-02"), "K1", "logistics"),
        complaint("k2", t("03-02", "11:00:00"), "K2", "sales"),
        cev("r2", "responsibility_agreed", t("03-02", "12:00:00"), "K2"),
        as_of=t("03-04"),
    )
    got = {(o.party, o.status) for o in obls(d, "CM-3", "C1", "responsibility")}
    assert got == {("logistics", "overdue"), ("sales", "met")}


@pytest.mark.parametrize(("hms", "status"), [("17:00:00", "met"), ("17:00:01", "late")])
def test_cm3_report_within_3_days_of_investigation(run: Any, hms: str, status: str) -> None:
    """CM-3: investigation 03-04 17:00 -> report due 03-07 17:00, by quality_lead."""
    d = run(
        complaint("k", t("03-02")),
        cev("i", "investigation_done", t("03-04", "17:00:00")),
        cev("r", "complaint_report_submitted", t("03-07", hms)),
        as_of=t("03-10"),
    )
    o = one(obls(d, "CM-3", "C1", "report the complaint"))
    assert o.due == dt("03-07", "17:00:00")
    assert (o.status, o.met_by, o.party) == (status, "r", "quality_lead")


def test_cm3_report_missing(run: Any) -> None:
    events = [complaint("k", t("03-02")), cev("i", "investigation_done", t("03-04", "17:00:00"))]
    got = statuses_around(
        run, events, "CM-3", "C1", "report the", t("03-07", "17:00:00"), t("03-07", "17:00:01")
    )
    assert got == ("open", "overdue")


@pytest.mark.parametrize(("hms", "status"), [("10:00:00", "met"), ("10:00:01", "late")])
def test_cm3_resolved_within_1_week(run: Any, hms: str, status: str) -> None:
    """CM-3: complaint 03-02 10:00 -> resolution due 03-09 10:00 (7 days), department."""
    d = run(
        complaint("k", t("03-02")),
        cev("d", "complaint_resolved", t("03-09", hms)),
        as_of=t("03-12"),
    )
    o = one(obls(d, "CM-3", "C1", "handle the complaint"))
    assert o.due == dt("03-09")
    assert (o.status, o.met_by, o.party) == (status, "d", "logistics")


def test_cm3_resolution_missing(run: Any) -> None:
    got = statuses_around(
        run,
        [complaint("k", t("03-02"))],
        "CM-3",
        "C1",
        "handle the complaint",
        t("03-09"),
        t("03-09", "10:00:01"),
    )
    assert got == ("open", "overdue")


@pytest.mark.parametrize(
    ("at", "status"),
    [(t("03-06", "23:59:59"), "met"), (t("03-07", "00:00:00"), "late")],
)
def test_cm3_follow_up_call_same_day(run: Any, at: str, status: str) -> None:
    """CM-3: resolved 03-06 15:00 -> call due before 03-07 00:00 (exclusive), quality_lead."""
    d = run(
        complaint("k", t("03-02")),
        cev("d", "complaint_resolved", t("03-06", "15:00:00")),
        call("c", at, True),
        as_of=t("03-10"),
    )
    o = one(obls(d, "CM-3", "C1", "call the customer"))
    assert o.due == dt("03-07", "00:00:00")
    assert o.due_inclusive is False
    assert (o.status, o.met_by, o.party) == (status, "c", "quality_lead")
    assert obls(d, "CM-3", "C1", "reopened") == []


def test_cm3_follow_up_call_missing(run: Any) -> None:
    """CM-3: no call: open as of 23:59:59 on the day of resolution, overdue at midnight."""
    events = [complaint("k", t("03-02")), cev("d", "complaint_resolved", t("03-06", "15:00:00"))]
    got = statuses_around(
        run, events, "CM-3", "C1", "call the", t("03-06", "23:59:59"), t("03-07", "00:00:00")
    )
    assert got == ("open", "overdue")


@pytest.mark.parametrize(("hms", "status"), [("18:00:00", "met"), ("18:00:01", "late")])
def test_cm3_unsatisfied_call_reopens_for_a_week(run: Any, hms: str, status: str) -> None:
    """CM-3: unsatisfied call 03-06 18:00 -> the department handles the reopened complaint by
    03-13 18:00; that resolution owes a new call the same day."""
    d = run(
        complaint("k", t("03-02"), department="logistics"),
        cev("d1", "complaint_resolved", t("03-06", "15:00:00")),
        call("c1", t("03-06", "18:00:00"), False),
        cev("d2", "complaint_resolved", t("03-13", hms)),
        as_of=t("03-20"),
    )
    o = one(obls(d, "CM-3", "C1", "handle the reopened complaint"))
    assert o.due == dt("03-13", "18:00:00")
    assert (o.status, o.met_by, o.party) == (status, "d2", "logistics")
    assert o.events == ["c1"]
    calls = obls(d, "CM-3", "C1", "call the customer")
    assert [(c.due, c.status, c.met_by) for c in calls] == [
        (dt("03-07", "00:00:00"), "met", "c1"),
        (dt("03-14", "00:00:00"), "overdue", None),
    ]


def test_cm3_reopened_case_still_open_and_overdue(run: Any) -> None:
    base = [
        complaint("k", t("03-02")),
        cev("d1", "complaint_resolved", t("03-06", "15:00:00")),
        call("c1", t("03-06", "18:00:00"), False),
    ]
    before = run(base, as_of=t("03-13", "18:00:00"))
    after = run(base, as_of=t("03-13", "18:00:01"))
    assert one(obls(before, "CM-3", "C1", "reopened")).status == "open"
    assert one(obls(after, "CM-3", "C1", "reopened")).status == "overdue"


def test_cm3_satisfied_second_call_closes_the_reopened_case(run: Any) -> None:
    d = run(
        complaint("k", t("03-02")),
        cev("d1", "complaint_resolved", t("03-06", "15:00:00")),
        call("c1", t("03-06", "18:00:00"), False),
        cev("d2", "complaint_resolved", t("03-10", "09:00:00")),
        call("c2", t("03-10", "20:00:00"), True),
        as_of=t("03-31"),
    )
    assert [o.status for o in obls(d, "CM-3", "C1", "reopened")] == ["met"]
    calls = obls(d, "CM-3", "C1", "call the customer")
    assert [(c.status, c.met_by) for c in calls] == [("met", "c1"), ("met", "c2")]


def test_cm3_upheld_complaint_fines_the_responsible_party(run: Any) -> None:
    d = run(
        complaint("k", t("03-02")),
        cev("u", "complaint_upheld", t("03-07"), responsible="logistics"),
        as_of=t("03-10"),
    )
    p = one([p for p in d.penalties if cites(p, "CM-3")])
    assert (p.party, p.sanction) == ("logistics", "fine")
    assert p.amount_min == Decimal("200")
    assert p.amount_max == Decimal("1500")
    assert isinstance(p.amount_min, Decimal)
    assert p.currency == "CNY"
    assert p.rule == "complaint-fine"
    assert "u" in p.events
    # nothing upheld, nothing fined
    assert [p for p in run(complaint("k", t("03-02"))).penalties if cites(p, "CM-3")] == []


def test_cm3_one_fine_per_upheld_complaint(run: Any) -> None:
    d = run(
        complaint("k1", t("03-02"), "K1"),
        complaint("k2", t("03-03"), "K2", "sales"),
        complaint("k3", t("03-04"), "K3", "sales"),
        cev("u1", "complaint_upheld", t("03-07"), "K1", responsible="logistics"),
        cev("u2", "complaint_upheld", t("03-08"), "K2", responsible="sales"),
        cev("u3", "complaint_upheld", t("03-09"), "K3", responsible="sales"),
        as_of=t("03-10"),
    )
    fines = [p for p in d.penalties if cites(p, "CM-3")]
    assert sorted(p.party for p in fines) == ["logistics", "sales", "sales"]
    assert all((p.amount_min, p.amount_max) == (Decimal(200), Decimal(1500)) for p in fines)


def test_cm3_upholding_the_same_attribution_twice_fines_once(run: Any) -> None:
    """CM-3: one fine per complaint and responsible party; a second party is fined too."""
    d = run(
        complaint("k", t("03-02")),
        cev("u1", "complaint_upheld", t("03-07"), responsible="logistics"),
        cev("u2", "complaint_upheld", t("03-08"), responsible="logistics"),
        cev("u3", "complaint_upheld", t("03-08"), responsible="sales"),
        as_of=t("03-10"),
    )
    fines = [(p.party, p.events) for p in d.penalties if cites(p, "CM-3")]
    assert fines == [("logistics", ["u1"]), ("sales", ["u3"])]


# ============================================================================ CM-4 visits
# salesperson_joined -> the plan for the next month by each local month end, from the joining
# month; a plan counts for the month its `month` names (late after the month before it ends);
# salesperson_left ends it; each client visit -> a report within 2 days.


def joined(eid: str = "j", at: str = t("03-15"), employee: str = "S1") -> Event:
    return ev(eid, "salesperson_joined", at, employee=employee)


@pytest.mark.parametrize(
    ("at", "month", "april", "may"),
    [
        (t("03-31", "23:59:59"), "2026-04", ("met", "p"), ("open", None)),
        (t("04-01", "00:00:00"), "2026-04", ("late", "p"), ("open", None)),
        (t("04-01", "00:00:00"), "2026-05", ("overdue", None), ("met", "p")),
        (t("03-31", "23:59:59"), "2026-05", ("overdue", None), ("open", None)),
        (t("03-31", "23:59:59"), None, ("overdue", None), ("open", None)),
        (t("03-31", "23:59:59"), "2026-03", ("overdue", None), ("open", None)),
        (t("03-31", "23:59:59"), "2026-04-01", ("overdue", None), ("open", None)),
    ],
)
def test_cm4_plan_counts_for_the_month_it_names(
    run: Any, at: str, month: str | None, april: tuple[str, Any], may: tuple[str, Any]
) -> None:
    """CM-4: joined 03-15; April's plan is due by 04-01 00:00 and met by a plan naming 2026-04
    (late on 1 April); May's is owed from 1 April and met only by a plan naming 2026-05 sent
    from then on; a plan naming no month, another month or a date meets nothing."""
    d = run(joined(), plan("p", at, month), as_of=t("04-10"))
    duties = obls(d, "CM-4", "S1", "visit plan")
    assert [o.due for o in duties] == [dt("04-01", "00:00:00"), dt("05-01", "00:00:00")]
    assert [o.rule for o in duties] == ["visit-plan-joining-month", "monthly-visit-plan"]
    assert (duties[0].status, duties[0].met_by) == april
    assert (duties[1].status, duties[1].met_by) == may
    assert {o.party for o in duties} == {"S1"}


@pytest.mark.parametrize(
    ("as_of", "statuses"),
    [
        (t("03-31", "23:59:59"), ["open"]),
        (t("04-01", "00:00:00"), ["overdue", "open"]),
        (t("06-10"), ["overdue", "overdue", "overdue", "open"]),
    ],
)
def test_cm4_one_plan_per_month(run: Any, as_of: str, statuses: list[str]) -> None:
    d = run(joined(), as_of=as_of)
    assert [o.status for o in obls(d, "CM-4", "S1", "visit plan")] == statuses


def test_cm4_plan_before_joining_does_not_count(run: Any) -> None:
    d = run(plan("p", t("03-03"), "2026-04"), joined(), as_of=t("04-02"))
    assert obls(d, "CM-4", "S1", "visit plan")[0].status == "overdue"


def test_cm4_plans_of_a_salesperson_meet_their_own_duties(run: Any) -> None:
    """CM-4: S2's plan for April does not meet S1's April duty."""
    d = run(
        joined(),
        joined("j2", t("03-16"), "S2"),
        plan("p2", t("03-20"), "2026-04", employee="S2"),
        as_of=t("04-02"),
    )
    assert obls(d, "CM-4", "S1", "visit plan")[0].status == "overdue"
    assert obls(d, "CM-4", "S2", "visit plan")[0].met_by == "p2"


def test_cm4_leaving_ends_later_months(run: Any) -> None:
    """CM-4: left 05-10 with June's plan not yet in -> June's duty cancelled, nothing after."""
    d = run(
        joined(),
        plan("p3", t("03-20"), "2026-04"),
        plan("p4", t("04-20"), "2026-05"),
        ev("l", "salesperson_left", t("05-10"), employee="S1"),
        as_of=t("08-15"),
    )
    duties = obls(d, "CM-4", "S1", "visit plan")
    assert [(o.due, o.status, o.met_by) for o in duties] == [
        (dt("04-01", "00:00:00"), "met", "p3"),
        (dt("05-01", "00:00:00"), "met", "p4"),
        (dt("06-01", "00:00:00"), "cancelled", "l"),
    ]


def test_cm4_rejoining_owes_plans_again(run: Any) -> None:
    """CM-4: left 04-10, back 06-10 -> nothing arises on 1 May or 1 June; July's plan is owed
    from the rejoining, August's from 1 July."""
    d = run(
        joined(),
        ev("l", "salesperson_left", t("04-10"), employee="S1"),
        joined("j2", t("06-10")),
        as_of=t("07-10"),
    )
    duties = obls(d, "CM-4", "S1", "visit plan")
    assert [(o.due, o.status) for o in duties] == [
        (dt("04-01", "00:00:00"), "overdue"),
        (dt("05-01", "00:00:00"), "cancelled"),
        (dt("07-01", "00:00:00"), "overdue"),
        (dt("08-01", "00:00:00"), "open"),
    ]


@pytest.mark.parametrize(("hms", "status"), [("14:00:00", "met"), ("14:00:01", "late")])
def test_cm4_visit_report_within_2_days(run: Any, hms: str, status: str) -> None:
    """CM-4: visit 03-09 14:00 -> report due 03-11 14:00 inclusive, by the salesperson."""
    d = run(
        visited("v", t("03-09", "14:00:00")),
        visited("r", t("03-11", hms), "visit_report_submitted"),
        as_of=t("03-20"),
    )
    o = one(obls(d, "CM-4", "C8", "report the client visit"))
    assert o.due == dt("03-11", "14:00:00")
    assert (o.status, o.met_by, o.party) == (status, "r", "zhou")


def test_cm4_visit_report_missing(run: Any) -> None:
    events = [visited("v", t("03-09", "14:00:00"))]
    got = statuses_around(
        run, events, "CM-4", "C8", "report the", t("03-11", "14:00:00"), t("03-11", "14:00:01")
    )
    assert got == ("open", "overdue")


# ============================================================================ CM-5 service
# Phone answered by the 2nd ring; after the 5th ring an apology; visitor greeted within 1 minute;
# a web order answered the same local day and packed by the end of the next local day.


@pytest.mark.parametrize(
    ("rings", "apologized", "expected"),
    [
        (2, False, []),
        (3, False, [RING2]),
        (5, False, [RING2]),
        (6, False, [RING2, APOLOGY]),
        (6, True, [RING2]),
    ],
)
def test_cm5_phone_rings(run: Any, rings: int, apologized: bool, expected: list[str]) -> None:
    d = run(phone("ph", t("03-12"), rings, apologized=apologized), as_of=t("03-13"))
    found = viols(d, "CM-5")
    assert sorted(v.what for v in found) == sorted(expected)
    assert all((v.party, v.event) == ("E7", "ph") for v in found)


@pytest.mark.parametrize(("hms", "status"), [("11:01:00", "met"), ("11:01:01", "late")])
def test_cm5_visitor_greeted_within_a_minute(run: Any, hms: str, status: str) -> None:
    d = run(
        ev("a", "visitor_arrived", t("03-12", "11:00:00"), customer="C9", visit="W1"),
        ev("g", "visitor_greeted", t("03-12", hms), customer="C9", visit="W1", employee="he"),
        as_of=t("03-13"),
    )
    o = one(obls(d, "CM-5", "C9", "greet"))
    assert o.due == dt("03-12", "11:01:00")
    assert (o.status, o.met_by, o.party) == (status, "g", "reception")


def test_cm5_visitor_not_greeted(run: Any) -> None:
    events = [ev("a", "visitor_arrived", t("03-12", "11:00:00"), customer="C9", visit="W1")]
    got = statuses_around(
        run, events, "CM-5", "C9", "greet", t("03-12", "11:01:00"), t("03-12", "11:01:01")
    )
    assert got == ("open", "overdue")


def _order(at: str = t("03-12", "21:00:00")) -> Event:
    return ev("w", "web_order_received", at, customer="C10", order="O1")


@pytest.mark.parametrize(
    ("at", "status"),
    [(t("03-12", "23:59:59"), "met"), (t("03-13", "00:00:00"), "late")],
)
def test_cm5_web_order_answered_same_day(run: Any, at: str, status: str) -> None:
    d = run(
        _order(),
        ev("wa", "web_order_answered", at, customer="C10", order="O1"),
        as_of=t("03-20"),
    )
    o = one(obls(d, "CM-5", "C10", "answer the customer"))
    assert o.due == dt("03-13", "00:00:00")
    assert o.due_inclusive is False
    assert (o.status, o.met_by, o.party) == (status, "wa", "order_desk")


@pytest.mark.parametrize(
    ("at", "status"),
    [(t("03-13", "23:59:59"), "met"), (t("03-14", "00:00:00"), "late")],
)
def test_cm5_order_packed_by_next_day(run: Any, at: str, status: str) -> None:
    d = run(_order(), ev("wp", "order_packed", at, customer="C10", order="O1"), as_of=t("03-20"))
    o = one(obls(d, "CM-5", "C10", "pack"))
    assert o.due == dt("03-14", "00:00:00")
    assert (o.status, o.met_by, o.party) == (status, "wp", "order_desk")


@pytest.mark.parametrize(
    ("as_of", "answer", "pack"),
    [
        (t("03-12", "23:59:59"), "open", "open"),
        (t("03-13", "00:00:00"), "overdue", "open"),
        (t("03-14", "00:00:00"), "overdue", "overdue"),
    ],
)
def test_cm5_web_order_unanswered(run: Any, as_of: str, answer: str, pack: str) -> None:
    d = run(_order(), as_of=as_of)
    assert one(obls(d, "CM-5", "C10", "answer the customer")).status == answer
    assert one(obls(d, "CM-5", "C10", "pack")).status == pack


def test_cm5_web_order_day_is_the_local_day(run: Any) -> None:
    """CM-5: received 2026-03-12T16:30Z = 03-13 00:30 Shanghai -> answer by 03-14 00:00 local,
    packing by 03-15 00:00 local."""
    d = run(_order("2026-03-12T16:30:00+00:00"), as_of=t("03-13", "12:00:00"))
    assert one(obls(d, "CM-5", "C10", "answer the customer")).due == dt("03-14", "00:00:00")
    assert one(obls(d, "CM-5", "C10", "pack")).due == dt("03-15", "00:00:00")


# ============================================================================ CM-5b returns
# return_decision per case, decided when the request is made, first case that holds:
# franchise (ratio quota) / wholesale self-pickup refused / wrong item exchange / confirmed defect
# exchange or refund / otherwise refused.


def _decided(d: Any, case: str) -> str | None:
    c = d.classification(case, "return_decision")
    assert c is not None
    assert c.reason
    assert cites(c, "CM-5b")
    assert d.labels(case)["return_decision"] == c.value
    return c.value


@pytest.mark.parametrize(
    ("fields", "value"),
    [
        (
            {"delivery": "self_pickup", "issue": "quality_defect", "defect_confirmed": True},
            "refused",
        ),
        ({"delivery": "self_pickup", "issue": "wrong_item"}, "refused"),
        ({"delivery": "remote", "issue": "wrong_item"}, "exchange"),
        ({"delivery": "remote", "issue": "quality_defect", "defect_confirmed": True}, "exchange"),
        (
            {
                "delivery": "remote",
                "issue": "quality_defect",
                "defect_confirmed": True,
                "in_stock": False,
            },
            "refund",
        ),
        ({"delivery": "video", "issue": "quality_defect", "defect_confirmed": False}, "refused"),
        ({"delivery": "remote", "issue": "other"}, "refused"),
        ({"delivery": "video", "issue": "other", "defect_confirmed": True}, "refused"),
    ],
)
def test_cm5b_wholesale_decision(run: Any, fields: dict[str, Any], value: str) -> None:
    d = run(ret("r", t("03-16"), "R1", **fields), as_of=t("03-17"))
    assert _decided(d, "R1") == value
    c = d.classification("R1", "return_decision")
    assert (c.event, c.customer, c.at) == ("r", "W1", dt("03-16"))


def _quota(ratio: str = "0.1", amount: str = "50000") -> list[Event]:
    return [contract("fc", t("01-02"), ratio), delivered("gd", t("01-20"), amount)]


@pytest.mark.parametrize(
    ("amounts", "values"),
    [
        (["5000"], [ALLOWED]),
        (["5000", "0.01"], [ALLOWED, "refused"]),
        (["3000", "2000", "0.01"], [ALLOWED, ALLOWED, "refused"]),
        (["4000", "1500", "1000"], [ALLOWED, "refused", ALLOWED]),
        (["6000", "5000"], ["refused", ALLOWED]),
    ],
)
def test_cm5b_franchise_ratio(run: Any, amounts: list[str], values: list[str]) -> None:
    """CM-5b: ratio 0.1 of 50000 delivered -> allowed returns may total 5000 (inclusive);
    refused requests do not use up the quota."""
    reqs = [fret(f"r{i}", t("03-15", f"1{i}:00:00"), f"R{i}", a) for i, a in enumerate(amounts)]
    d = run(_quota(), reqs, as_of=t("03-20"))
    assert [_decided(d, f"R{i}") for i in range(len(amounts))] == values


def test_cm5b_franchise_label_r1(run: Any) -> None:
    d = run(_quota(), fret("r1", t("03-15"), "R1", "5000"), as_of=t("03-20"))
    assert d.labels("R1")["return_decision"] == ALLOWED
    c = d.classification("R1", "return_decision")
    assert (c.value, c.customer, c.event) == (ALLOWED, "F1", "r1")
    assert "ratio" in c.reason


def test_cm5b_franchise_without_contract_is_refused(run: Any) -> None:
    d = run(
        delivered("gd", t("01-20"), "50000"), fret("r1", t("03-15"), "R1", "1"), as_of=t("03-20")
    )
    assert _decided(d, "R1") == "refused"


def test_cm5b_franchise_quota_is_per_customer(run: Any) -> None:
    """CM-5b: F1's contract and deliveries give F2 no quota; F1's returns do not use F2's."""
    d = run(
        _quota(),
        contract("fc2", t("01-02"), "0.1", customer="F2"),
        delivered("gd2", t("01-20"), "10000", customer="F2", order="O2"),
        fret("r1", t("03-15"), "R1", "5000"),
        fret("r2", t("03-15", "11:00:00"), "R2", "1000", customer="F2"),
        fret("r3", t("03-15", "12:00:00"), "R3", "1", customer="F3"),
        as_of=t("03-20"),
    )
    assert [_decided(d, c) for c in ("R1", "R2", "R3")] == [ALLOWED, ALLOWED, "refused"]


def test_cm5b_franchise_quota_grows_with_deliveries(run: Any) -> None:
    """CM-5b: the base is the total delivered so far; decided when the request is made."""
    d = run(
        contract("fc", t("01-02"), "0.1"),
        delivered("gd1", t("01-20"), "30000"),
        fret("r1", t("02-01"), "R1", "3000"),
        fret("r2", t("02-02"), "R2", "2000"),
        delivered("gd2", t("02-10"), "20000", order="O2"),
        fret("r3", t("02-15"), "R3", "2000"),
        fret("r4", t("02-16"), "R4", "0.01"),
        as_of=t("03-01"),
    )
    assert [_decided(d, c) for c in ("R1", "R2", "R3", "R4")] == [
        ALLOWED,
        "refused",
        ALLOWED,
        "refused",
    ]


def test_cm5b_latest_contract_ratio_applies(run: Any) -> None:
    d = run(
        _quota("0.1"),
        contract("fc2", t("02-01"), "0.2"),
        fret("r1", t("03-15"), "R1", "10000"),
        as_of=t("03-20"),
    )
    assert _decided(d, "R1") == ALLOWED


def test_cm5b_franchise_contract_decides_before_self_pickup(run: Any) -> None:
    """CM-5b: franchise customers are decided by their contract (first case), not the pickup."""
    d = run(
        _quota(),
        ret(
            "r1",
            t("03-15"),
            "R1",
            "F1",
            customer_kind="franchise",
            delivery="self_pickup",
            amount="100",
        ),
        as_of=t("03-20"),
    )
    assert _decided(d, "R1") == ALLOWED
