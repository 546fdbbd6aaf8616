"""policies/online_store across the end of the statutory calendar's years (OS-2's working days).

chinesecalendar 1.11 knows 2004-2026. The pack declares ``calendar: {base: china, outside:
weekdays}``: a reply window opened on 31 December 2026 runs into 2027, counted Monday to Friday,
and the decision carries a notice (kind ``calendar``, event ``#calendar``). A company's calendar
file declaring 2027 days (``calendar=``) makes 2027 known: the notice goes away and the due
instants follow the declared days. The 2027 days below are illustrative company days, not the
State Council's schedule (which the package does not know and the pack does not invent).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine.language.program import load_program
from policyengine.policy import Policy
from policyengine.runtime.decision import Notice

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "policies/online_store"
EXAMPLE = ROOT / "examples/online_store_2027.json"
AS_OF = "2027-01-20T00:00:00+08:00"

Event = dict[str, Any]


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def email(eid: str, at: str, q: str, employee: str = "zhao") -> Event:
    return {
        "id": eid,
        "type": "consultation_received",
        "at": at,
        "customer": f"C-{q}",
        "consultation": q,
        "employee": employee,
        "channel": "email",
    }


def answer(eid: str, at: str, q: str, employee: str = "zhao") -> Event:
    return {
        "id": eid,
        "type": "consultation_answered",
        "at": at,
        "customer": f"C-{q}",
        "consultation": q,
        "employee": employee,
    }


def question(eid: str, at: str, case: str) -> Event:
    return {
        "id": eid,
        "type": "issue_raised",
        "at": at,
        "customer": f"C-{case}",
        "case": case,
        "employee": "zhao",
    }


HISTORY = [
    email("e1", "2026-12-31T16:00:00+08:00", "Q1"),
    answer("a1", "2027-01-04T16:00:00+08:00", "Q1"),  # at the due instant: in time
    email("e2", "2026-12-31T16:00:00+08:00", "Q2"),
    answer("a2", "2027-01-04T16:00:01+08:00", "Q2"),  # one second late
    question("k1", "2026-12-31T10:00:00+08:00", "K1"),
]


def calendar_notices(decision: pe.Decision) -> list[Notice]:
    return [n for n in decision.notices if n.kind == "calendar"]


def due(decision: pe.Decision, rule: str, subject: str) -> datetime | None:
    [o] = [o for o in decision.obligations if o.rule == rule and o.subject == subject]
    return o.due


@pytest.fixture(scope="module")
def pack() -> pe.Policy:
    return pe.load_policy(POLICY)


# ---------------------------------------------------------------- the pack alone


def test_the_pack_declares_its_calendar(pack: pe.Policy) -> None:
    cal = pack.compiled.calendar
    assert (cal.base, cal.outside) == ("china", "weekdays")
    assert not cal.holidays and not cal.workdays  # no invented dates of any year


def test_a_history_into_2027_evaluates_counting_monday_to_friday(pack: pe.Policy) -> None:
    """Thu 2026-12-31 + 2 working days, Monday to Friday in 2027: Fri 01-01, Mon 01-04."""
    d = pack.evaluate(HISTORY, as_of=AS_OF)
    assert due(d, "reply-to-email", "C-Q1") == dt("2027-01-04T16:00:00+08:00")
    assert due(d, "reply-to-email", "C-Q2") == dt("2027-01-04T16:00:00+08:00")
    assert due(d, "working-day-reply", "C-K1") == dt("2027-01-04T10:00:00+08:00")
    status = {o.subject: o.status for o in d.obligations}
    assert status == {"C-Q1": "met", "C-Q2": "late", "C-K1": "overdue"}
    late = [v for v in d.violations if v.subject == "C-Q2"]
    assert [(v.party, v.at) for v in late] == [("zhao", dt("2027-01-04T16:00:00+08:00"))]
    [notice] = calendar_notices(d)
    assert (notice.kind, notice.event) == ("calendar", "#calendar")
    assert "2027" in notice.detail and "Monday to Friday" in notice.detail
    assert "outside: weekdays" in notice.detail


def test_a_history_inside_the_known_years_has_no_calendar_notice(pack: pe.Policy) -> None:
    d = pack.evaluate([question("k1", "2026-03-05T10:00:00+08:00", "K1")], as_of=AS_OF)
    assert due(d, "working-day-reply", "C-K1") == dt("2026-03-09T10:00:00+08:00")
    assert calendar_notices(d) == []


def test_only_a_window_that_reaches_2027_guesses(pack: pe.Policy) -> None:
    """A duty due in 2026 but evaluated in 2027 reads no 2027 working day: no notice."""
    d = pack.evaluate([question("k1", "2026-12-28T10:00:00+08:00", "K1")], as_of=AS_OF)
    assert due(d, "working-day-reply", "C-K1") == dt("2026-12-30T10:00:00+08:00")
    assert calendar_notices(d) == []


def test_the_example_history(pack: pe.Policy) -> None:
    import json

    events = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    d = pack.evaluate(events, as_of=AS_OF)
    got = {(o.rule, o.subject): (o.status, o.due) for o in d.obligations}
    assert got[("reply-to-email", "C1")] == ("met", dt("2027-01-04T16:00:00+08:00"))
    assert got[("reply-to-email", "C2")] == ("late", dt("2027-01-04T17:30:00+08:00"))
    assert got[("working-day-reply", "C3")] == ("met", dt("2027-01-04T10:00:00+08:00"))
    assert got[("initial-solution", "C3")] == ("met", dt("2026-12-31T14:00:00+08:00"))
    assert [n.event for n in calendar_notices(d)] == ["#calendar"]


# ---------------------------------------------------------------- a company's 2027 calendar file

# Illustrative company days of 2027 only: NOT the State Council's schedule.
COMPANY_2027 = """\
calendar:
  holidays: [2027-01-01, 2027-01-04..2027-01-05]   # illustrative company days off
  workdays: [2027-01-09]                           # an illustrative working Saturday
"""


def _write(tmp_path: Path, text: str, name: str = "company-2027.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _loaders(path: Path) -> list[pe.Policy]:
    return [
        pe.load_policy(POLICY, calendar=path),
        pe.load_policy(POLICY, calendar=str(path)),
        Policy(load_program(POLICY, calendar=path)),
    ]


def test_a_calendar_file_declaring_2027_removes_the_notice_and_moves_the_due(
    tmp_path: Path,
) -> None:
    """Declared off: 01-01, 01-04, 01-05; so Thu 2026-12-31 + 2 = Wed 01-06, Thu 01-07."""
    path = _write(tmp_path, COMPANY_2027)
    for policy in _loaders(path):
        d = policy.evaluate(HISTORY, as_of=AS_OF)
        assert calendar_notices(d) == []
        assert due(d, "reply-to-email", "C-Q1") == dt("2027-01-07T16:00:00+08:00")
        assert due(d, "working-day-reply", "C-K1") == dt("2027-01-07T10:00:00+08:00")
        # the answers of Mon 01-04 are now early enough: both in time
        status = {o.subject: o.status for o in d.obligations}
        assert status == {"C-Q1": "met", "C-Q2": "met", "C-K1": "overdue"}
        assert [v for v in d.violations if v.subject == "C-Q2"] == []


def test_a_declared_working_saturday_counts(tmp_path: Path) -> None:
    """Fri 2027-01-08 + 1 working day: the declared Saturday 01-09, same wall-clock time."""
    policy = pe.load_policy(POLICY, calendar=_write(tmp_path, COMPANY_2027))
    d = policy.evaluate([question("k1", "2027-01-08T11:00:00+08:00", "K1")], as_of=AS_OF)
    assert due(d, "working-day-reply", "C-K1") == dt("2027-01-11T11:00:00+08:00")
    d = policy.evaluate([question("k1", "2027-01-07T11:00:00+08:00", "K1")], as_of=AS_OF)
    assert due(d, "working-day-reply", "C-K1") == dt("2027-01-09T11:00:00+08:00")


def test_a_calendar_file_may_hold_just_the_block(tmp_path: Path) -> None:
    block = "holidays: [2027-01-01, 2027-01-04..2027-01-05]\nworkdays: [2027-01-09]\n"
    bare = _write(tmp_path, block)
    d = pe.load_policy(POLICY, calendar=bare).evaluate(HISTORY, as_of=AS_OF)
    assert calendar_notices(d) == []
    assert due(d, "reply-to-email", "C-Q1") == dt("2027-01-07T16:00:00+08:00")


def test_declaring_one_day_of_a_year_declares_the_whole_year(tmp_path: Path) -> None:
    """The footgun the README warns of: only a company day of 2027 (01-04) makes 2027 known,
    so Fri 01-01 counts as worked and no notice says anything was guessed."""
    path = _write(tmp_path, "calendar:\n  holidays: [2027-01-04]\n")
    d = pe.load_policy(POLICY, calendar=path).evaluate(HISTORY, as_of=AS_OF)
    assert calendar_notices(d) == []
    assert due(d, "reply-to-email", "C-Q1") == dt("2027-01-05T16:00:00+08:00")


def test_a_year_the_file_does_not_declare_is_still_guessed(tmp_path: Path) -> None:
    path = _write(tmp_path, COMPANY_2027)
    policy = pe.load_policy(POLICY, calendar=path)
    d = policy.evaluate(
        [question("k1", "2027-12-31T10:00:00+08:00", "K1")], as_of="2028-01-20T00:00:00+08:00"
    )
    # Fri 2027-12-31 + 2: Mon 2028-01-03, Tue 2028-01-04 (2028 counted Monday to Friday)
    assert due(d, "working-day-reply", "C-K1") == dt("2028-01-04T10:00:00+08:00")
    [notice] = calendar_notices(d)
    assert notice.detail.startswith("working days in 2028 were counted Monday to Friday")


def test_the_calendar_file_cannot_change_the_packs_settings(tmp_path: Path) -> None:
    path = _write(tmp_path, "calendar:\n  outside: error\n")
    with pytest.raises(pe.PolicyError) as err:
        pe.load_policy(POLICY, calendar=path)
    assert "PE115" in err.value.codes


def test_a_day_both_off_and_worked_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "calendar:\n  holidays: [2027-01-09]\n  workdays: [2027-01-09]\n")
    with pytest.raises(pe.PolicyError) as err:
        pe.load_policy(POLICY, calendar=path)
    assert "PE115" in err.value.codes
    assert str(path) in str(err.value)
