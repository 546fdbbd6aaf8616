"""Scenario tests for policies/online_store: clauses OS-1..OS-6 of docs/clauses.md.

Every expectation follows the clause readings (the pack's ``clauses:`` and its README) and
docs/semantics.md. Windows are tested on both edges:

* "within N minutes/hours" is inclusive: an event exactly at the due instant is in time, one
  second later is late (or overdue when nothing came), and before the due instant the duty is
  still open;
* "within N working days" counts days of the Chinese statutory calendar (holidays skipped,
  adjusted weekend workdays counted) and keeps the trigger's wall-clock time;
* metrics and the service star are per local (Asia/Shanghai) calendar month.

Calendar facts used below (2026): Sat 02-14 is an adjusted working day, 02-15..02-23 are the
Spring Festival holidays, Sat 02-28 is an adjusted working day, 03-07/03-08 are a plain weekend.

All instants are 2026, +08:00 unless a test says otherwise.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policyengine as pe

POLICY = Path(__file__).parent.parent / "policies/online_store"

Event = dict[str, Any]

NOT_ANSWERED = "online consultation not answered in time"
PHONE_LATE = "phone answered after the allowed number of rings"
NO_SOLUTION = "no initial solution in time"
NO_REPLY = "no reply within the working-day window"
EMAIL_UNANSWERED = "e-mail consultation not answered within the working-day window"
OUT_OF_ORDER = (
    "return step out of order (reviewed, waybill, received, inspected, resolved, records)"
)
REFUSAL_OUT_OF_ORDER = "return step out of order (refused, records)"
NO_REASON = "return refused without telling the customer why"

WORKFLOW = [
    "review the request",
    "give the customer a waybill number",
    "follow the parcel until it arrives",
    "inspect the returned goods",
    "refund, exchange, or explain the refusal",
    "update the customer's records",
]


# ---------------------------------------------------------------------------- helpers


def t(md: str, hms: str = "10:00:00") -> str:
    """A Shanghai-local instant in 2026: ``t("03-02")`` is 2026-03-02T10:00:00+08:00."""
    return f"2026-{md}T{hms}+08:00"


def dt(md: str, hms: str = "10:00:00") -> datetime:
    return datetime.fromisoformat(t(md, hms))


def ev(eid: str, etype: str, at: str, **fields: Any) -> Event:
    return {"id": eid, "type": etype, "at": at, **fields}


def consult(
    eid: str, at: str, q: str = "Q1", customer: str = "C1", employee: str = "E1", **f: Any
) -> Event:
    return ev(
        eid, "consultation_received", at, customer=customer, consultation=q, employee=employee, **f
    )


def answer(eid: str, at: str, q: str = "Q1", customer: str = "C1", employee: str = "E1") -> Event:
    return ev(
        eid, "consultation_answered", at, customer=customer, consultation=q, employee=employee
    )


def phone(eid: str, at: str, rings: int, employee: str = "E1") -> Event:
    return ev(eid, "phone_answered", at, call=f"call-{eid}", employee=employee, rings=rings)


def issue(
    eid: str, at: str, case: str = "K1", customer: str = "C1", employee: str = "E1", **f: Any
) -> Event:
    return ev(eid, "issue_raised", at, customer=customer, case=case, employee=employee, **f)


def solution(eid: str, at: str, case: str = "K1", customer: str = "C1", employee: str = "E1"):
    return ev(eid, "solution_proposed", at, customer=customer, case=case, employee=employee)


def replied(eid: str, at: str, case: str = "K1", customer: str = "C1", employee: str = "E1"):
    return ev(eid, "issue_replied", at, customer=customer, case=case, employee=employee)


def resolved(eid: str, at: str, case: str = "K1", customer: str = "C1", employee: str = "E1"):
    return ev(eid, "issue_resolved", at, customer=customer, case=case, employee=employee)


def ret(eid: str, at: str, case: str = "R1", customer: str = "C1", employee: str = "E1") -> Event:
    return ev(eid, "return_requested", at, customer=customer, case=case, employee=employee)


def rstep(eid: str, at: str, step: str, case: str = "R1", customer: str = "C1", **f: Any) -> Event:
    f.setdefault("employee", "E1")
    if f["employee"] is None:
        del f["employee"]
    return ev(eid, "return_step", at, customer=customer, case=case, step=step, **f)


def offence(eid: str, at: str, employee: str = "E1", severity: str = "minor") -> Event:
    return ev(eid, "violation_recorded", at, employee=employee, severity=severity)


def scored(eid: str, at: str, employee: str, source: str, score: str | int) -> Event:
    return ev(eid, "assessment_scored", at, employee=employee, source=source, score=str(score))


def rated(eid: str, at: str, employee: str, score: str | int, customer: str = "C1") -> Event:
    return ev(eid, "satisfaction_rated", at, employee=employee, score=str(score), customer=customer)


def assessed(prefix: str, employee: str, s: Any, v: Any, c: Any, at: str | None = None) -> list:
    """The three monthly scores (self, supervisor, customer) of ``employee``, in February."""
    at = at or t("02-27", "17:00:00")
    return [
        scored(f"{prefix}-s", at, employee, "self", s),
        scored(f"{prefix}-v", at, employee, "supervisor", v),
        scored(f"{prefix}-c", at, employee, "customer", c),
    ]


def refs(obj: Any) -> list[str]:
    return [obj.clause] if isinstance(obj.clause, str) else list(obj.clause)


def obls(d: Any, clause: str, *, rule: str | None = None, subject: str | None = None) -> list:
    return [
        o
        for o in d.obligations
        if clause in refs(o)
        and (rule is None or o.rule == rule)
        and (subject is None or o.subject == subject)
    ]


def viols(d: Any, clause: str, what: str | None = None) -> list[Any]:
    return [v for v in d.violations if clause in refs(v) and (what is None or v.what == what)]


def pens(d: Any, party: str | None = None) -> list[Any]:
    found = [p for p in d.penalties if "OS-5" in refs(p) and (party is None or p.party == party)]
    return sorted(found, key=lambda p: p.offence)


def metric(d: Any, rule: str, party: str, period: str = "2026-02") -> Any:
    found = [m for m in d.metrics if m.rule == rule and m.party == party and m.period == period]
    assert len(found) <= 1, found
    return found[0] if found else None


def stars(d: Any, period: str = "2026-02") -> list[Any]:
    return [a for a in d.awards if a.rule == "service-star" and a.period == period]


def one(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


@pytest.fixture(scope="module")
def policy() -> Any:
    return pe.load_policy(POLICY)


@pytest.fixture
def run(policy: Any) -> Any:
    """``run(event_or_list, ..., as_of=...)``: evaluate the flattened history."""

    def _run(*items: Event | list[Event], as_of: str, pol: Any = None) -> Any:
        events: list[Event] = []
        for item in items:
            events.extend(item if isinstance(item, list) else [item])
        return (pol or policy).evaluate(events, as_of=as_of)

    return _run


def test_pack_carries_clauses_os1_to_os7(run: Any) -> None:
    """The pack declares OS-1..OS-7 with their readings."""
    d = run(phone("p", t("02-02"), 1), as_of=t("02-03"))
    for n in range(1, 8):
        assert f"OS-{n}" in d.clauses
    assert "working days" in d.clauses["OS-2"]


# ============================================================================ OS-1
# An online consultation owes an answer (same consultation) within 5 minutes, inclusive, by the
# agent it is routed to; a miss is a violation. E-mail: a reply within 2 working days. Phone:
# more than 3 rings is a violation.


@pytest.mark.parametrize(
    ("answered", "status"),
    [("09:04:59", "met"), ("09:05:00", "met"), ("09:05:01", "late")],
)
def test_os1_online_answer_window_edges(run: Any, answered: str, status: str) -> None:
    """OS-1: answered at +5:00 is in time; +5:01 is late (and a violation at the due instant)."""
    d = run(
        consult("c", t("02-02", "09:00:00")),
        answer("a", t("02-02", answered)),
        as_of=t("02-03"),
    )
    o = one(obls(d, "OS-1"))
    assert o.status == status
    assert o.rule == "answer-online-consultation"
    assert o.due == dt("02-02", "09:05:00")
    assert (o.party, o.subject) == ("E1", "C1")
    assert (o.met_by, o.met_at) == ("a", dt("02-02", answered))
    found = viols(d, "OS-1", NOT_ANSWERED)
    if status == "met":
        assert found == []
    else:
        v = one(found)
        assert (v.party, v.subject, v.event) == ("E1", "C1", "c")
        assert v.at == dt("02-02", "09:05:00")


@pytest.mark.parametrize(
    ("as_of", "status", "violated"),
    [
        (t("02-02", "09:01:00"), "open", False),
        (t("02-02", "09:05:00"), "open", False),
        (t("02-02", "09:05:01"), "overdue", True),
    ],
)
def test_os1_unanswered_consultation(run: Any, as_of: str, status: str, violated: bool) -> None:
    """OS-1: unanswered -> open until the due instant, then overdue with a violation."""
    # the answer at 09:06 lies after every as_of here: it is not applied yet
    d = run(consult("c", t("02-02", "09:00:00")), answer("a", t("02-02", "09:06:00")), as_of=as_of)
    o = one(obls(d, "OS-1"))
    assert o.status == status
    assert o.met_by is None
    assert len(viols(d, "OS-1", NOT_ANSWERED)) == (1 if violated else 0)


def test_os1_answer_to_another_consultation_does_not_count(run: Any) -> None:
    """OS-1: only an answer naming the same consultation meets the duty."""
    d = run(
        consult("c1", t("02-02", "09:00:00"), q="Q1"),
        consult("c2", t("02-02", "09:01:00"), q="Q2", customer="C2"),
        answer("a2", t("02-02", "09:02:00"), q="Q2", customer="C2"),
        as_of=t("02-03"),
    )
    assert one(obls(d, "OS-1", subject="C1")).status == "overdue"
    assert one(obls(d, "OS-1", subject="C2")).status == "met"
    assert one(viols(d, "OS-1", NOT_ANSWERED)).subject == "C1"


@pytest.mark.parametrize(
    ("answered", "status"),
    [(t("03-09"), "met"), (t("03-09", "10:00:01"), "late")],
)
def test_os1_email_reply_within_two_working_days(run: Any, answered: str, status: str) -> None:
    """OS-1/OS-2: an e-mail (Thu 03-05 10:00) is due two working days later, Mon 03-09 10:00.

    It owes no five-minute answer.
    """
    d = run(
        consult("c", t("03-05"), channel="email"),
        answer("a", answered),
        as_of=t("03-20"),
    )
    assert obls(d, "OS-1") == []
    o = one(obls(d, "OS-2", rule="reply-to-email"))
    assert o.due == dt("03-09")
    assert o.status == status
    assert o.party == "E1"
    assert viols(d, "OS-1", NOT_ANSWERED) == []


@pytest.mark.parametrize(
    ("as_of", "status"), [(t("03-09"), "open"), (t("03-09", "10:00:01"), "overdue")]
)
def test_os1_unanswered_email(run: Any, as_of: str, status: str) -> None:
    """E-mail: open up to the due instant (not the 5-minute edge), overdue one second later,
    and then a violation like any missed working-day reply."""
    d = run(consult("c", t("03-05"), channel="email"), as_of=as_of)
    assert one(obls(d, "OS-2", rule="reply-to-email")).status == status
    missed = [v.party for v in viols(d, "OS-2", EMAIL_UNANSWERED)]
    assert missed == (["E1"] if status == "overdue" else [])


@pytest.mark.parametrize(("rings", "violated"), [(3, False), (4, True)])
def test_os1_phone_rings(run: Any, rings: int, violated: bool) -> None:
    """OS-1: answering within 3 rings is fine; a 4th ring is a violation by the agent."""
    d = run(phone("p", t("02-03"), rings), as_of=t("02-04"))
    found = viols(d, "OS-1", PHONE_LATE)
    assert len(found) == (1 if violated else 0)
    if violated:
        assert (found[0].party, found[0].event) == ("E1", "p")
        assert found[0].at == dt("02-03")


@pytest.fixture(scope="module")
def quick() -> Any:
    return pe.load_policy(POLICY, params={"online_response": "3 minutes", "phone_rings": 2})


@pytest.mark.parametrize(
    ("answered", "default_status", "quick_status"),
    [("09:03:00", "met", "met"), ("09:03:01", "met", "late")],
)
def test_os1_params_move_the_online_edge(
    run: Any, quick: Any, answered: str, default_status: str, quick_status: str
) -> None:
    """OS-1 parameter `online_response: 3 minutes`: due at +3:00 instead of +5:00."""
    events = [consult("c", t("02-02", "09:00:00")), answer("a", t("02-02", answered))]
    assert one(obls(run(events, as_of=t("02-03")), "OS-1")).status == default_status
    o = one(obls(run(events, as_of=t("02-03"), pol=quick), "OS-1"))
    assert o.status == quick_status
    assert o.due == dt("02-02", "09:03:00")


@pytest.mark.parametrize(("rings", "violated"), [(2, False), (3, True)])
def test_os1_params_move_the_ring_edge(run: Any, quick: Any, rings: int, violated: bool) -> None:
    """OS-1 parameter `phone_rings: 2`: a 3rd ring is already a violation."""
    d = run(phone("p", t("02-03"), rings), as_of=t("02-04"), pol=quick)
    assert len(viols(d, "OS-1", PHONE_LATE)) == (1 if violated else 0)


def test_os1_missed_response_is_not_disciplined_by_itself(run: Any) -> None:
    """OS-1 vs OS-5: a missed response is reported, but only a recorded violation is punished."""
    d = run(consult("c", t("02-02", "09:00:00")), phone("p", t("02-02"), 6), as_of=t("02-05"))
    assert len(viols(d, "OS-1")) == 2
    assert pens(d) == []


# ============================================================================ OS-2
# Complaints and urgent issues: an initial solution within 4 hours. Complex complaints and
# non-urgent questions: a reply within 2 working days (Chinese statutory calendar).


@pytest.mark.parametrize(
    ("kind", "urgent", "complex_", "rules"),
    [
        ("complaint", False, False, {"initial-solution"}),
        ("complaint", False, True, {"initial-solution", "working-day-reply"}),
        ("complaint", True, False, {"initial-solution"}),
        ("complaint", True, True, {"initial-solution", "working-day-reply"}),
        ("question", False, False, {"working-day-reply"}),
        ("question", False, True, {"working-day-reply"}),
        ("question", True, False, {"initial-solution"}),
        ("question", True, True, {"initial-solution"}),
    ],
)
def test_os2_which_duties_an_issue_owes(
    run: Any, kind: str, urgent: bool, complex_: bool, rules: set[str]
) -> None:
    """OS-2: complaints/urgent -> initial solution; complex complaints/non-urgent -> reply."""
    d = run(issue("i", t("03-05"), kind=kind, urgent=urgent, complex=complex_), as_of=t("03-05"))
    found = obls(d, "OS-2", subject="C1")
    assert {o.rule for o in found} == rules
    assert len(found) == len(rules)
    assert all(o.status == "open" and o.party == "E1" for o in found)
    due = {o.rule: o.due for o in found}
    if "initial-solution" in rules:
        assert due["initial-solution"] == dt("03-05", "14:00:00")
    if "working-day-reply" in rules:
        assert due["working-day-reply"] == dt("03-09")


def test_os2_defaults_are_a_question_neither_urgent_nor_complex(run: Any) -> None:
    """OS-2: an issue with no kind/urgent/complex is a non-urgent question: only the reply."""
    d = run(issue("i", t("03-05")), as_of=t("03-05"))
    assert one(obls(d, "OS-2")).rule == "working-day-reply"


@pytest.mark.parametrize(
    ("proposed", "status"),
    [("14:00:00", "met"), ("14:00:01", "late")],
)
@pytest.mark.parametrize(
    "flags",
    [{"kind": "complaint"}, {"kind": "question", "urgent": True}],
    ids=["complaint", "urgent"],
)
def test_os2_initial_solution_edges(
    run: Any, flags: dict[str, Any], proposed: str, status: str
) -> None:
    """OS-2: raised 10:00 -> solution due 14:00 inclusive; 14:00:01 is late and a violation."""
    d = run(
        issue("i", t("03-05"), **flags),
        solution("s", t("03-05", proposed)),
        as_of=t("03-06"),
    )
    o = one(obls(d, "OS-2", rule="initial-solution"))
    assert o.due == dt("03-05", "14:00:00")
    assert o.status == status
    assert o.met_by == "s"
    found = viols(d, "OS-2", NO_SOLUTION)
    assert len(found) == (0 if status == "met" else 1)


@pytest.mark.parametrize(
    ("as_of", "status"), [(t("03-05", "14:00:00"), "open"), (t("03-05", "14:00:01"), "overdue")]
)
def test_os2_no_initial_solution(run: Any, as_of: str, status: str) -> None:
    """OS-2: no solution -> open until 14:00, then overdue with a violation by the agent."""
    d = run(issue("i", t("03-05"), kind="complaint"), as_of=as_of)
    assert one(obls(d, "OS-2", rule="initial-solution")).status == status
    found = viols(d, "OS-2", NO_SOLUTION)
    if status == "open":
        assert found == []
    else:
        assert (one(found).party, found[0].subject) == ("E1", "C1")


@pytest.mark.parametrize(
    ("reply_at", "status"),
    [
        (t("02-14"), "met"),
        (t("02-24", "09:59:59"), "met"),
        (t("02-24"), "met"),
        (t("02-24", "10:00:01"), "late"),
    ],
)
def test_os2_reply_across_spring_festival(run: Any, reply_at: str, status: str) -> None:
    """OS-2: Fri 02-13 10:00 + 2 working days = Tue 02-24 10:00.

    Sat 02-14 is an adjusted working day (the 1st), 02-15..02-23 are holidays, 02-24 the 2nd.
    """
    d = run(
        issue("i", t("02-13")),
        replied("r", reply_at),
        as_of=t("03-02"),
    )
    o = one(obls(d, "OS-2", rule="working-day-reply"))
    assert o.due == dt("02-24")
    assert o.status == status
    assert o.met_by == "r"
    assert len(viols(d, "OS-2", NO_REPLY)) == (0 if status == "met" else 1)


@pytest.mark.parametrize(
    ("as_of", "status"),
    [
        (t("02-20"), "open"),
        (t("02-24", "09:59:59"), "open"),
        (t("02-24"), "open"),
        (t("02-24", "10:00:01"), "overdue"),
    ],
)
def test_os2_unreplied_across_spring_festival(run: Any, as_of: str, status: str) -> None:
    """OS-2: without a reply the Feb-13 issue is open up to 02-24 10:00, overdue after."""
    d = run(issue("i", t("02-13")), as_of=as_of)
    o = one(obls(d, "OS-2", rule="working-day-reply"))
    assert o.due == dt("02-24")
    assert o.status == status
    found = viols(d, "OS-2", NO_REPLY)
    assert len(found) == (1 if status == "overdue" else 0)


@pytest.mark.parametrize(
    ("raised", "due"),
    [
        (t("03-05"), dt("03-09")),  # Thu -> Fri, Mon (the plain weekend skipped)
        (t("03-02", "15:30:00"), dt("03-04", "15:30:00")),  # Mon -> Wed, same wall-clock time
        (t("03-06"), dt("03-10")),  # Fri -> Mon, Tue
        (t("03-07"), dt("03-10")),  # raised on a Saturday: Mon, Tue
        (t("02-16"), dt("02-25")),  # raised on a holiday: 02-24, 02-25
        (t("02-14"), dt("02-25")),  # raised on the adjusted Saturday: 02-24, 02-25
        (t("02-27"), dt("03-02")),  # Fri -> adjusted Sat 02-28, Mon 03-02
    ],
)
def test_os2_working_day_due_dates(run: Any, raised: str, due: datetime) -> None:
    """OS-2: due dates on the statutory calendar, keeping the raising wall-clock time."""
    d = run(issue("i", raised), as_of=raised)
    assert one(obls(d, "OS-2", rule="working-day-reply")).due == due


@pytest.mark.parametrize(
    ("reply_at", "status"), [(t("03-09"), "met"), (t("03-09", "10:00:01"), "late")]
)
def test_os2_plain_weekday_reply_edges(run: Any, reply_at: str, status: str) -> None:
    """OS-2: raised Thu 03-05 10:00 -> due Mon 03-09 10:00, inclusive."""
    d = run(issue("i", t("03-05")), replied("r", reply_at), as_of=t("03-20"))
    assert one(obls(d, "OS-2", rule="working-day-reply")).status == status


def test_os2_working_days_outside_the_calendar_are_counted_monday_to_friday_with_a_notice(
    run: Any,
) -> None:
    """OS-2: the pack's calendar says `outside: weekdays`: a working-day deadline in a year the
    statutory calendar does not know is counted Mon-Fri, and the decision says so."""
    d = run(issue("i", "2040-03-05T10:00:00+08:00"), as_of="2040-03-06T10:00:00+08:00")
    o = one(obls(d, "OS-2", rule="working-day-reply"))
    assert o.due == pendulum.parse("2040-03-07T10:00:00+08:00")
    notices = [n for n in d.notices if n.kind == "calendar"]
    assert [n.event for n in notices] == ["#calendar"] and "2040" in notices[0].detail


def test_os2_without_the_pack_calendar_a_year_nobody_knows_is_an_error(tmp_path: Path) -> None:
    """The same pack with `outside: error`: the deadline is PE302, never a guess."""
    text = (POLICY / "online_store.yaml").read_text(encoding="utf-8")
    assert "outside: weekdays" in text
    (tmp_path / "online_store.yaml").write_text(
        text.replace("outside: weekdays", "outside: error"), encoding="utf-8"
    )
    strict = pe.load_policy(tmp_path)
    events = [issue("i", "2040-03-05T10:00:00+08:00")]
    with pytest.raises(pe.EvaluationError) as err:
        strict.evaluate(events, as_of="2040-03-06T10:00:00+08:00")
    assert "PE302" in err.value.codes


def test_os2_reply_window_parameter(run: Any) -> None:
    """OS-2 parameter `reply_window: 3 working days`: Fri 02-13 -> Wed 02-25 10:00."""
    longer = pe.load_policy(POLICY, params={"reply_window": "3 working days"})
    events = [issue("i", t("02-13")), replied("r", t("02-25"))]
    o = one(obls(run(events, as_of=t("03-02"), pol=longer), "OS-2", rule="working-day-reply"))
    assert o.due == dt("02-25")
    assert o.status == "met"
    default = one(obls(run(events, as_of=t("03-02")), "OS-2", rule="working-day-reply"))
    assert default.status == "late"


def test_os2_reply_window_parameter_also_moves_email(run: Any) -> None:
    """The e-mail reply shares `reply_window`: 3 working days from Thu 03-05 is Tue 03-10."""
    longer = pe.load_policy(POLICY, params={"reply_window": "3 working days"})
    d = run(consult("c", t("03-05"), channel="email"), as_of=t("03-05"), pol=longer)
    assert one(obls(d, "OS-2", rule="reply-to-email")).due == dt("03-10")


def test_os2_complex_complaint_owes_both(run: Any) -> None:
    """OS-2: a complex complaint with a solution in time but no reply: one met, one overdue."""
    d = run(
        issue("i", t("03-05"), kind="complaint", complex=True),
        solution("s", t("03-05", "13:00:00")),
        as_of=t("03-09", "10:00:01"),
    )
    by_rule = {o.rule: o for o in obls(d, "OS-2")}
    assert by_rule["initial-solution"].status == "met"
    assert by_rule["working-day-reply"].status == "overdue"
    assert viols(d, "OS-2", NO_SOLUTION) == []
    assert one(viols(d, "OS-2", NO_REPLY)).party == "E1"


def test_os2_other_case_does_not_meet(run: Any) -> None:
    """OS-2: a reply or solution for another case meets nothing."""
    d = run(
        issue("i", t("03-05"), kind="complaint", complex=True),
        solution("s", t("03-05", "11:00:00"), case="K2"),
        replied("r", t("03-05", "11:00:00"), case="K2"),
        as_of=t("03-10"),
    )
    assert {o.status for o in obls(d, "OS-2")} == {"overdue"}


# ============================================================================ OS-3
# reviewed -> waybill_issued -> received -> inspected -> refunded/exchanged/refused ->
# records_updated; no deadlines; out of order is a violation; failing review switches to
# refused -> records_updated; a refusal needs a reason.


def flow(resolution: str = "refunded", **f: Any) -> list[Event]:
    steps = ["reviewed", "waybill_issued", "received", "inspected", resolution, "records_updated"]
    return [ret("r", t("02-02"))] + [
        rstep(f"s{i}", t(f"02-{3 + i:02d}"), name, **(f if name == "refused" else {}))
        for i, name in enumerate(steps)
    ]


def workflow(d: Any) -> dict[str, Any]:
    return {o.what: o for o in obls(d, "OS-3", rule="return-workflow")}


@pytest.mark.parametrize(
    ("resolution", "extra"),
    [("refunded", {}), ("exchanged", {}), ("refused", {"reason": "used goods"})],
)
def test_os3_full_workflow_in_order(run: Any, resolution: str, extra: dict[str, Any]) -> None:
    """OS-3: the six steps in order -> six met duties, no violation."""
    d = run(flow(resolution, **extra), as_of=t("02-20"))
    duties = workflow(d)
    assert list(duties) == WORKFLOW
    assert [o.status for o in duties.values()] == ["met"] * 6
    assert [o.met_by for o in duties.values()] == [f"s{i}" for i in range(6)]
    assert all(o.due is None and o.party == "E1" and o.subject == "C1" for o in duties.values())
    assert viols(d, "OS-3") == []


def test_os3_skipped_step_is_out_of_order(run: Any) -> None:
    """OS-3: `inspected` before `received` -> a violation; the skipped duty stays open."""
    d = run(
        ret("r", t("02-02")),
        rstep("a", t("02-03"), "reviewed"),
        rstep("b", t("02-04"), "waybill_issued"),
        rstep("c", t("02-05"), "inspected"),
        as_of=t("02-20"),
    )
    duties = workflow(d)
    assert duties["follow the parcel until it arrives"].status == "open"
    assert duties["inspect the returned goods"].status == "met"
    assert duties["inspect the returned goods"].met_by == "c"
    v = one(viols(d, "OS-3", OUT_OF_ORDER))
    assert (v.event, v.party, v.subject) == ("c", "E1", "C1")
    assert v.at == dt("02-05")


def test_os3_late_step_after_skip_still_counts(run: Any) -> None:
    """OS-3: the skipped step done afterwards meets its duty; one violation only."""
    d = run(
        ret("r", t("02-02")),
        rstep("a", t("02-03"), "reviewed"),
        rstep("b", t("02-04"), "waybill_issued"),
        rstep("c", t("02-05"), "inspected"),
        rstep("d", t("02-06"), "received"),
        as_of=t("02-20"),
    )
    assert workflow(d)["follow the parcel until it arrives"].met_by == "d"
    assert len(viols(d, "OS-3", OUT_OF_ORDER)) == 1


@pytest.mark.parametrize("done", [0, 3, 5])
def test_os3_unfinished_case_has_open_duties(run: Any, done: int) -> None:
    """OS-3: after `done` steps the remaining duties are open, with no due date."""
    d = run(flow()[: 1 + done], as_of=t("03-31"))
    statuses = [o.status for o in workflow(d).values()]
    assert statuses == ["met"] * done + ["open"] * (6 - done)
    assert all(o.due is None for o in workflow(d).values())
    assert viols(d, "OS-3") == []


def test_os3_steps_of_another_case_do_not_count(run: Any) -> None:
    """OS-3: a step naming another case is not this case's step."""
    d = run(ret("r", t("02-02")), rstep("a", t("02-03"), "reviewed", case="R2"), as_of=t("02-20"))
    assert workflow(d)["review the request"].status == "open"


def refusal(d: Any) -> dict[str, Any]:
    return {o.what: o for o in obls(d, "OS-3", rule="return-refused-at-review")}


def test_os3_failed_review_switches_path(run: Any) -> None:
    """OS-3: `reviewed` with approved false cancels the main path; refused, records now owed."""
    d = run(
        ret("r", t("02-02")),
        rstep("a", t("02-03"), "reviewed", approved=False),
        as_of=t("02-20"),
    )
    main = workflow(d)
    # the rest of the main path is withdrawn: reported as cancelled by the review (issue 16)
    assert [(w, o.status, o.met_by) for w, o in main.items()] == [
        ("review the request", "met", "a"),
        *((w, "cancelled", "a") for w in WORKFLOW[1:]),
    ]
    alt = refusal(d)
    assert list(alt) == ["explain the refusal to the customer", "update the customer's records"]
    assert [o.status for o in alt.values()] == ["open", "open"]
    assert all(o.party == "E1" and o.due is None for o in alt.values())


def test_os3_failed_review_completed(run: Any) -> None:
    """OS-3: refused with a reason, then records updated -> both met, no violation."""
    d = run(
        ret("r", t("02-02")),
        rstep("a", t("02-03"), "reviewed", approved=False),
        rstep("b", t("02-04"), "refused", reason="outside the return period"),
        rstep("c", t("02-05"), "records_updated"),
        as_of=t("02-20"),
    )
    alt = refusal(d)
    assert [(o.status, o.met_by) for o in alt.values()] == [("met", "b"), ("met", "c")]
    assert [o.status for o in workflow(d).values()] == ["met"] + ["cancelled"] * 5
    assert viols(d, "OS-3") == []


def test_os3_failed_review_records_before_refusal(run: Any) -> None:
    """OS-3: on the refusal path, records before the refusal is out of order."""
    d = run(
        ret("r", t("02-02")),
        rstep("a", t("02-03"), "reviewed", approved=False),
        rstep("c", t("02-04"), "records_updated"),
        as_of=t("02-20"),
    )
    alt = refusal(d)
    assert alt["explain the refusal to the customer"].status == "open"
    assert alt["update the customer's records"].status == "met"
    assert one(viols(d, "OS-3", REFUSAL_OUT_OF_ORDER)).event == "c"


@pytest.mark.parametrize(("reason", "violated"), [(None, True), ("damaged by the customer", False)])
def test_os3_refusal_needs_a_reason(run: Any, reason: str | None, violated: bool) -> None:
    """OS-3: `refused` without a reason is a violation; with one it is not."""
    extra = {} if reason is None else {"reason": reason}
    d = run(flow("refused", **extra), as_of=t("02-20"))
    found = viols(d, "OS-3", NO_REASON)
    assert len(found) == (1 if violated else 0)
    if violated:
        assert (found[0].event, found[0].party) == ("s4", "E1")
    assert workflow(d)["refund, exchange, or explain the refusal"].status == "met"


def test_os3_violation_party_without_employee_on_the_step(run: Any) -> None:
    """OS-3: a step naming no employee: out of order -> the case's agent; an unexplained
    refusal -> the case's agent too (taken from the request)."""
    d = run(
        ret("r", t("02-02"), employee="E7"),
        rstep("a", t("02-03"), "waybill_issued", employee=None),
        rstep("b", t("02-04"), "refused", employee=None),
        as_of=t("02-20"),
    )
    assert [v.party for v in viols(d, "OS-3", OUT_OF_ORDER)] == ["E7", "E7"]
    assert one(viols(d, "OS-3", NO_REASON)).party == "E7"


# ============================================================================ OS-5
# Per employee over the whole history: 1st warning, 2nd a fine by severity (50/100/200),
# 3rd transfer, 4th and later dismissal; a `serious` one is dismissal at once and counts.


@pytest.mark.parametrize(
    ("count", "sanction"),
    [(1, "warning"), (2, "fine"), (3, "transfer"), (4, "dismissal"), (5, "dismissal")],
)
def test_os5_ladder(run: Any, count: int, sanction: str) -> None:
    """OS-5: the n-th recorded offence gets the n-th rung (the last rung repeats)."""
    events = [offence(f"v{i}", t(f"0{1 + i}-10")) for i in range(count)]
    d = run(events, as_of=t("06-30"))
    found = pens(d, "E1")
    assert [p.offence for p in found] == list(range(1, count + 1))
    last = found[-1]
    assert last.sanction == sanction
    assert last.rule == "discipline-ladder"
    assert last.events == [f"v{count - 1}"]


@pytest.mark.parametrize(
    ("severity", "amount"), [("minor", "50"), ("moderate", "100"), ("major", "200")]
)
def test_os5_fine_by_severity(run: Any, severity: str, amount: str) -> None:
    """OS-5: the second offence is a fine of the table amount of its own severity."""
    d = run(
        offence("v1", t("02-02"), severity="major"),
        offence("v2", t("02-03"), severity=severity),
        as_of=t("02-04"),
    )
    first, second = pens(d, "E1")
    assert (first.sanction, first.amount_min, first.amount_max) == ("warning", None, None)
    assert second.sanction == "fine"
    assert second.amount_min == second.amount_max == Decimal(amount)
    assert second.currency == "CNY"


def test_os5_serious_is_dismissal_at_once(run: Any) -> None:
    """OS-5: a first, serious offence is one dismissal (the ladder's warning is overridden)."""
    d = run(offence("v1", t("02-02"), severity="serious"), as_of=t("02-03"))
    p = one(pens(d, "E1"))
    assert (p.sanction, p.offence, p.rule) == ("dismissal", 1, "serious-violation")


def test_os5_serious_counts_on_the_ladder(run: Any) -> None:
    """OS-5: after a serious offence, a minor one is the 2nd offence -> a fine of 50."""
    d = run(
        offence("v1", t("02-02"), severity="serious"),
        offence("v2", t("02-03"), severity="minor"),
        as_of=t("02-04"),
    )
    assert [(p.sanction, p.offence) for p in pens(d, "E1")] == [("dismissal", 1), ("fine", 2)]
    assert pens(d, "E1")[1].amount_min == Decimal("50")


def test_os5_serious_as_second_offence(run: Any) -> None:
    """OS-5: warning, then serious -> dismissal (offence 2); the next is the 3rd -> transfer."""
    d = run(
        offence("v1", t("02-02")),
        offence("v2", t("02-03"), severity="serious"),
        offence("v3", t("02-04")),
        as_of=t("02-05"),
    )
    assert [(p.sanction, p.offence) for p in pens(d, "E1")] == [
        ("warning", 1),
        ("dismissal", 2),
        ("transfer", 3),
    ]


def test_os5_ladders_are_per_employee(run: Any) -> None:
    """OS-5: two employees' offences are counted apart."""
    d = run(
        offence("a1", t("02-02"), employee="E1"),
        offence("b1", t("02-03"), employee="E2"),
        offence("a2", t("02-04"), employee="E1", severity="moderate"),
        offence("b2", t("02-05"), employee="E2", severity="major"),
        offence("b3", t("02-06"), employee="E2"),
        as_of=t("02-07"),
    )
    assert [(p.sanction, p.amount_min) for p in pens(d, "E1")] == [
        ("warning", None),
        ("fine", Decimal("100")),
    ]
    assert [p.sanction for p in pens(d, "E2")] == ["warning", "fine", "transfer"]
    assert pens(d, "E2")[1].amount_min == Decimal("200")


def test_os5_ladder_spans_months(run: Any) -> None:
    """OS-5: offences count over the whole history, not per month."""
    d = run(offence("v1", t("01-05")), offence("v2", t("06-05")), as_of=t("06-06"))
    assert pens(d, "E1")[-1].sanction == "fine"


def test_os5_as_of_cuts_the_ladder(run: Any) -> None:
    """OS-5: an offence after as_of is not applied."""
    d = run(offence("v1", t("02-02")), offence("v2", t("02-04")), as_of=t("02-03"))
    assert [p.sanction for p in pens(d, "E1")] == ["warning"]


@pytest.mark.parametrize(
    ("severity", "amount"), [("minor", "80"), ("moderate", "100"), ("major", "200")]
)
def test_os5_fine_table_override(run: Any, severity: str, amount: str) -> None:
    """OS-5 parameter `fine_by_severity: {minor: 80}` replaces only the minor row."""
    pol = pe.load_policy(POLICY, params={"fine_by_severity": {"minor": 80}})
    d = run(
        offence("v1", t("02-02")),
        offence("v2", t("02-03"), severity=severity),
        as_of=t("02-04"),
        pol=pol,
    )
    fine = pens(d, "E1")[1]
    assert fine.amount_min == fine.amount_max == Decimal(amount)


# ============================================================================ OS-4
# Per employee per local calendar month: satisfaction mean, resolution rate, response
# compliance, the three score means and composite = 0.2 self + 0.4 supervisor + 0.4 customer,
# graded excellent >= 90, good >= 80, pass >= 60, else fail.


def test_os4_satisfaction_is_the_monthly_mean(run: Any) -> None:
    """OS-4: the mean of the employee's ratings in the month; March ratings stay in March."""
    d = run(
        rated("a", t("02-03"), "E1", 80),
        rated("b", t("02-20"), "E1", 91),
        rated("c", t("02-21"), "E2", 70),
        rated("d", t("03-02"), "E1", 10),
        as_of=t("04-01", "00:00:00"),
    )
    assert metric(d, "satisfaction", "E1").value == Decimal("85.5")
    assert metric(d, "satisfaction", "E2").value == Decimal("70")
    assert metric(d, "satisfaction", "E1", "2026-03").value == Decimal("10")
    assert metric(d, "satisfaction", "E2", "2026-03") is None


def test_os4_resolution_rate(run: Any) -> None:
    """OS-4: of the month's issues, the share resolved in the month (a January issue resolved in
    February counts in neither numerator)."""
    d = run(
        issue("i0", t("01-28"), case="K0"),
        issue("i1", t("02-02"), case="K1"),
        issue("i2", t("02-03"), case="K2"),
        issue("i3", t("02-04"), case="K3"),
        issue("i4", t("02-05"), case="K4"),
        resolved("x0", t("02-02"), case="K0"),
        resolved("x1", t("02-06"), case="K1"),
        resolved("x2", t("02-07"), case="K2"),
        as_of=t("03-01", "00:00:00"),
    )
    m = metric(d, "resolution-rate", "E1")
    assert (m.numerator, m.denominator) == (Decimal(2), Decimal(4))
    assert m.value == Decimal("0.5")
    assert m.complete is True
    jan = metric(d, "resolution-rate", "E1", "2026-01")
    assert (jan.numerator, jan.denominator, jan.value) == (0, 1, 0)


def test_os4_resolution_at_month_edge(run: Any) -> None:
    """OS-4: resolved at 23:59:59 on the raise month's last day counts; at 00:00 on the 1st not,
    in either month (April has no issue raised, so no rate)."""
    d = run(
        issue("i1", t("03-31", "23:00:00"), case="K1"),
        resolved("x1", t("03-31", "23:59:59"), case="K1"),
        issue("i2", t("03-31", "23:00:00"), case="K2", employee="E2"),
        resolved("x2", t("04-01", "00:00:00"), case="K2", employee="E2"),
        as_of=t("04-10"),
    )
    m1 = metric(d, "resolution-rate", "E1", "2026-03")
    assert (m1.numerator, m1.denominator) == (1, 1)
    m2 = metric(d, "resolution-rate", "E2", "2026-03")
    assert (m2.numerator, m2.denominator, m2.value) == (0, 1, 0)
    assert metric(d, "resolution-rate", "E2", "2026-04") is None


def test_os4_resolution_rate_resolved_twice_and_by_a_colleague(run: Any) -> None:
    """OS-4: a case resolved twice counts once; a colleague's resolution counts for the employee
    the issue was raised with, not for the colleague."""
    d = run(
        issue("i1", t("02-02"), case="K1"),
        resolved("x1", t("02-04"), case="K1"),
        resolved("x2", t("02-05"), case="K1"),
        issue("i2", t("02-02"), case="K2", employee="E2"),
        resolved("x3", t("02-04"), case="K2", employee="E1"),
        as_of=t("03-01", "00:00:00"),
    )
    m1 = metric(d, "resolution-rate", "E1")
    assert (m1.numerator, m1.denominator, m1.value) == (1, 1, 1)
    m2 = metric(d, "resolution-rate", "E2")
    assert (m2.numerator, m2.denominator, m2.value) == (1, 1, 1)


_RAISES = st.lists(
    st.tuples(
        st.sampled_from(["E1", "E2"]),  # the employee it is raised with
        st.integers(min_value=0, max_value=89),  # day offset from 2026-01-01
        st.integers(min_value=0, max_value=86399),  # second of the day
        st.lists(st.integers(min_value=0, max_value=60 * 86400), max_size=3),  # resolutions after
        st.sampled_from(["E1", "E2"]),  # who records the resolutions
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(raises=_RAISES)
def test_os4_resolution_rate_is_a_share_property(policy: Any, raises: list[Any]) -> None:
    """OS-4: over any raise/resolve history, every period's rate is in [0, 1], its numerator is at
    most its denominator, and the denominator is the number of issues raised that month."""
    base = pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai")
    events: list[Event] = []
    raised: dict[tuple[str, str], int] = {}
    for i, (emp, day, sec, later, resolver) in enumerate(raises):
        at = base.add(days=day, seconds=sec)
        events.append(issue(f"i{i}", at.isoformat(), case=f"K{i}", employee=emp))
        key = (emp, at.format("YYYY-MM"))
        raised[key] = raised.get(key, 0) + 1
        for j, delta in enumerate(later):
            when = at.add(seconds=delta)
            events.append(resolved(f"x{i}-{j}", when.isoformat(), case=f"K{i}", employee=resolver))
    d = policy.evaluate(events, as_of="2026-06-01T00:00:00+08:00")
    rows = [m for m in d.metrics if m.rule == "resolution-rate"]
    for m in rows:
        assert 0 <= m.value <= 1, m
        assert 0 <= m.numerator <= m.denominator, m
        assert m.denominator == raised[(m.party, m.period)], m
    assert {(m.party, m.period) for m in rows} == set(raised)


def test_os4_response_compliance(run: Any) -> None:
    """OS-4: online consultations answered in time / those whose window closed in the month."""
    d = run(
        consult("c1", t("02-02", "09:00:00"), q="Q1"),
        answer("a1", t("02-02", "09:05:00"), q="Q1"),
        consult("c2", t("02-03", "09:00:00"), q="Q2"),
        answer("a2", t("02-03", "09:05:01"), q="Q2"),
        consult("c3", t("02-04", "09:00:00"), q="Q3"),
        consult("c4", t("02-05", "09:00:00"), q="Q4"),
        answer("a4", t("02-05", "09:01:00"), q="Q4"),
        consult("e1", t("02-05", "09:00:00"), q="M1", channel="email"),
        as_of=t("03-01", "00:00:00"),
    )
    m = metric(d, "response-compliance", "E1")
    assert (m.numerator, m.denominator) == (Decimal(2), Decimal(4))
    assert m.value == Decimal("0.5")


@pytest.mark.parametrize(
    ("answered", "period"),
    [
        (t("02-28", "23:59:59"), "2026-02"),
        (t("03-01", "00:01:00"), "2026-03"),
        (None, "2026-03"),
    ],
)
def test_os4_response_counted_in_month_of_outcome(
    run: Any, answered: str | None, period: str
) -> None:
    """OS-4: a consultation at 02-28 23:58 (due 03-01 00:03) counts in the month of its answer;
    unanswered, the miss at 00:03 counts in March."""
    events = [consult("c", t("02-28", "23:58:00"))]
    if answered:
        events.append(answer("a", answered))
    d = run(events, as_of=t("04-01", "00:00:00"))
    rows = [m for m in d.metrics if m.rule == "response-compliance"]
    m = one(rows)
    assert m.period == period
    assert m.denominator == 1
    assert m.value == (1 if answered else 0)


def test_os4_three_scores_and_composite(run: Any) -> None:
    """OS-4: each source's scores are averaged, then weighted 0.2 / 0.4 / 0.4."""
    d = run(
        scored("s", t("02-27"), "E1", "self", 70),
        scored("v1", t("02-27"), "E1", "supervisor", 70),
        scored("v2", t("02-28"), "E1", "supervisor", 90),
        scored("c1", t("02-27"), "E1", "customer", 85),
        scored("c2", t("02-27"), "E1", "customer", 95),
        as_of=t("03-01", "00:00:00"),
    )
    assert metric(d, "self-score", "E1").value == 70
    assert metric(d, "supervisor-score", "E1").value == 80
    assert metric(d, "customer-score", "E1").value == 90
    m = metric(d, "composite-score", "E1")
    assert m.value == Decimal("82")  # 14 + 32 + 36
    assert m.grade == "good"
    assert m.complete is True


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        ("90", "excellent"),
        ("89.99", "good"),
        ("80", "good"),
        ("79.99", "pass"),
        ("60", "pass"),
        ("59.99", "fail"),
        ("0", "fail"),
    ],
)
def test_os4_grade_boundaries(run: Any, score: str, grade: str) -> None:
    """OS-4: equal scores give a composite equal to them; the bands are closed below."""
    d = run(assessed("a", "E1", score, score, score), as_of=t("03-01", "00:00:00"))
    m = metric(d, "composite-score", "E1")
    assert m.value == Decimal(score)
    assert m.grade == grade


def test_os4_grade_uses_the_weighted_composite(run: Any) -> None:
    """OS-4: self 100, supervisor 85, customer 85 -> 20 + 34 + 34 = 88 (good, not excellent)."""
    d = run(assessed("a", "E1", 100, 85, 85), as_of=t("03-01", "00:00:00"))
    m = metric(d, "composite-score", "E1")
    assert (m.value, m.grade) == (Decimal("88"), "good")


@pytest.mark.parametrize("missing", ["self", "supervisor", "customer"])
def test_os4_no_composite_without_all_three_sources(run: Any, missing: str) -> None:
    """OS-4: an employee missing one of the three scores in the month has no composite."""
    events = [
        e
        for e in assessed("a", "E1", 95, 95, 95) + assessed("b", "E2", 70, 70, 70)
        if not (e["employee"] == "E1" and e["source"] == missing)
    ]
    d = run(events, as_of=t("03-01", "00:00:00"))
    assert metric(d, "composite-score", "E1") is None
    assert metric(d, f"{missing}-score", "E1") is None
    present = {"self", "supervisor", "customer"} - {missing}
    assert all(metric(d, f"{s}-score", "E1").value == 95 for s in present)
    assert metric(d, "composite-score", "E2").value == 70


@pytest.mark.parametrize(
    ("at", "period"),
    [
        (t("02-28", "23:59:59"), "2026-02"),
        (t("03-01", "00:00:00"), "2026-03"),
        ("2026-02-28T15:59:59+00:00", "2026-02"),
        ("2026-02-28T16:00:00+00:00", "2026-03"),
    ],
)
def test_os4_month_boundaries(run: Any, at: str, period: str) -> None:
    """OS-4: a score belongs to its local (Asia/Shanghai) calendar month, whatever its offset."""
    d = run(assessed("a", "E1", 80, 80, 80, at=at), as_of=t("04-01", "00:00:00"))
    rows = [m for m in d.metrics if m.rule == "composite-score" and m.party == "E1"]
    assert [m.period for m in rows] == [period]


def test_os4_scores_split_across_months_give_no_composite(run: Any) -> None:
    """OS-4: self on 02-28 23:59:59 and the others on 03-01 00:00 -> no month has all three."""
    d = run(
        scored("s", t("02-28", "23:59:59"), "E1", "self", 90),
        scored("v", t("03-01", "00:00:00"), "E1", "supervisor", 90),
        scored("c", t("03-01", "00:00:00"), "E1", "customer", 90),
        as_of=t("04-01", "00:00:00"),
    )
    assert [m for m in d.metrics if m.rule == "composite-score"] == []
    assert metric(d, "self-score", "E1").value == 90
    assert metric(d, "supervisor-score", "E1", "2026-03").value == 90


@pytest.mark.parametrize(
    ("as_of", "complete"),
    [
        (t("02-27", "18:00:00"), False),
        (t("02-28", "23:59:59"), False),
        (t("03-01", "00:00:00"), True),
    ],
)
def test_os4_unfinished_month_is_incomplete(run: Any, as_of: str, complete: bool) -> None:
    """OS-4: before the month has ended at as_of, its metrics are values so far."""
    d = run(assessed("a", "E1", 80, 80, 80), as_of=as_of)
    m = metric(d, "composite-score", "E1")
    assert m.complete is complete
    assert m.value == 80


def test_os4_weight_override(run: Any) -> None:
    """OS-4 weights are parameters: 0.5 / 0.25 / 0.25 turns 100/80/80 into 90 (excellent)."""
    pol = pe.load_policy(
        POLICY, params={"weight_self": 0.5, "weight_supervisor": 0.25, "weight_customer": 0.25}
    )
    events = assessed("a", "E1", 100, 80, 80)
    m = metric(run(events, as_of=t("03-01", "00:00:00"), pol=pol), "composite-score", "E1")
    assert (m.value, m.grade) == (Decimal("90"), "excellent")
    default = metric(run(events, as_of=t("03-01", "00:00:00")), "composite-score", "E1")
    assert (default.value, default.grade) == (Decimal("84"), "good")


def test_os4_grade_threshold_override(run: Any) -> None:
    """OS-4 grade thresholds are parameters: excellent from 95 makes 92 good."""
    pol = pe.load_policy(POLICY, params={"grade_excellent": 95})
    m = metric(
        run(assessed("a", "E1", 92, 92, 92), as_of=t("03-01", "00:00:00"), pol=pol),
        "composite-score",
        "E1",
    )
    assert m.grade == "good"


# ============================================================================ OS-6
# The service star of a month: the best composite; ties -> higher resolution rate, then the
# smaller employee id; only employees with a composite compete.


def issues(prefix: str, employee: str, raised: int, solved: int) -> list[Event]:
    """``raised`` questions of ``employee`` in February, the first ``solved`` of them solved."""
    out: list[Event] = []
    for i in range(raised):
        case = f"{prefix}{i}"
        out.append(issue(f"{case}-i", t("02-02"), case=case, employee=employee))
        if i < solved:
            out.append(resolved(f"{case}-x", t("02-03"), case=case, employee=employee))
    return out


def test_os6_best_composite_wins(run: Any) -> None:
    """OS-6: the highest composite of the month is the star (one winner, place 1)."""
    d = run(
        assessed("a", "E1", 80, 80, 80),
        assessed("b", "E2", 95, 95, 95),
        assessed("c", "E3", 90, 90, 90),
        as_of=t("03-01", "00:00:00"),
    )
    star = one(stars(d))
    assert (star.party, star.place, star.complete) == ("E2", 1, True)
    assert star.metrics["composite-score"] == Decimal("95")
    assert star.title == "服务之星"


def test_os6_tie_goes_to_higher_resolution_rate(run: Any) -> None:
    """OS-6: equal composites -> the higher resolution rate wins, even with a larger id."""
    d = run(
        assessed("a", "A1", 90, 90, 90),
        assessed("b", "B2", 90, 90, 90),
        issues("ka", "A1", 2, 1),
        issues("kb", "B2", 2, 2),
        as_of=t("03-01", "00:00:00"),
    )
    star = one(stars(d))
    assert star.party == "B2"
    assert star.metrics["resolution-rate"] == Decimal(1)


def test_os6_full_tie_goes_to_smaller_id(run: Any) -> None:
    """OS-6: equal composite and resolution rate -> the smaller employee id."""
    d = run(
        assessed("b", "E2", 90, 90, 90),
        assessed("a", "E1", 90, 90, 90),
        issues("kb", "E2", 2, 1),
        issues("ka", "E1", 4, 2),
        as_of=t("03-01", "00:00:00"),
    )
    assert one(stars(d)).party == "E1"


def test_os6_composite_beats_resolution_rate(run: Any) -> None:
    """OS-6: the resolution rate only breaks ties; a higher composite wins regardless."""
    d = run(
        assessed("a", "E1", 91, 91, 91),
        assessed("b", "E2", 90, 90, 90),
        issues("ka", "E1", 2, 0),
        issues("kb", "E2", 2, 2),
        as_of=t("03-01", "00:00:00"),
    )
    assert one(stars(d)).party == "E1"


def test_os6_no_composite_cannot_win(run: Any) -> None:
    """OS-6: a perfect employee missing the customer score does not compete."""
    d = run(
        scored("s", t("02-27"), "E0", "self", 100),
        scored("v", t("02-27"), "E0", "supervisor", 100),
        assessed("b", "E9", 61, 61, 61),
        as_of=t("03-01", "00:00:00"),
    )
    assert one(stars(d)).party == "E9"


def test_os6_no_star_without_any_composite(run: Any) -> None:
    """OS-6: a month in which nobody has a composite has no star."""
    d = run(scored("s", t("02-27"), "E1", "self", 100), as_of=t("03-01", "00:00:00"))
    assert stars(d) == []


def test_os6_star_per_month(run: Any) -> None:
    """OS-6: each month has its own star; March is still incomplete at as_of."""
    d = run(
        assessed("a", "E1", 95, 95, 95),
        assessed("b", "E2", 85, 85, 85),
        assessed("c", "E1", 70, 70, 70, at=t("03-10")),
        assessed("d", "E2", 75, 75, 75, at=t("03-10")),
        as_of=t("03-15"),
    )
    feb, mar = one(stars(d, "2026-02")), one(stars(d, "2026-03"))
    assert (feb.party, feb.complete) == ("E1", True)
    assert (mar.party, mar.complete) == ("E2", False)


def test_example_history_decision(run: Any) -> None:
    """The shipped example: zhao is February's star; qian's late answer is OS-1's violation."""
    import json

    events = json.loads((POLICY.parents[1] / "examples/online_store.json").read_text("utf-8"))
    d = run(events, as_of=t("03-10", "00:00:00"))
    assert one(stars(d)).party == "zhao"
    assert one(viols(d, "OS-1", NOT_ANSWERED)).party == "qian"
    assert metric(d, "composite-score", "qian").value == Decimal("77")


@pytest.mark.parametrize(
    ("score", "accepted"), [("100", True), ("100.01", False), ("-0.01", False)]
)
def test_scores_are_between_0_and_100(run: Any, score: str, accepted: bool) -> None:
    """Scores are on a 0-100 scale: a score outside it is bad input naming the event and field."""
    events = [scored("s1", t("02-03"), "E1", "self", score)]
    if accepted:
        assert metric(run(*events, as_of=t("03-01", "00:00:00")), "self-score", "E1").value == (
            Decimal(score)
        )
        return
    with pytest.raises(pe.EventError) as info:
        run(*events, as_of=t("03-01", "00:00:00"))
    assert (info.value.first.event_id, info.value.first.field) == ("s1", "score")
