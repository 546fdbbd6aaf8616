"""The policy language's calendar: ``calendar:`` blocks and files, working-day and working-hour
windows, rolled deadlines, computed windows and ``time_of_day``, evaluated end to end, with
edges "in time at the instant, late one microsecond or second after"."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policyengine as pe
from policyengine.errors import Code, EvaluationError, PolicyError
from policyengine.language.program import load_program
from policyengine.policy import Policy
from policyengine.runtime.decision import Decision, Obligation
from policyengine.times import instant_us, parse_duration

TZ = "Asia/Shanghai"
HEAD = """\
policy: {id: cal, title: calendar, version: "1", timezone: Asia/Shanghai}
clauses: [{id: C1, text: 原文, reading: reading}]
params:
  grace: {duration: 2 days}
events:
  ticket:
    fields: {customer: str, promised: "time?", due_day: "date?", note: "str?"}
  reply: {fields: {customer: str}}
  call: {fields: {customer: str}}
  promise: {fields: {customer: str}}
"""


def policy(rules: str, calendar: str = "", head: str = HEAD) -> pe.Policy:
    return pe.load_policy_text(head + calendar + "rules:\n" + rules, "cal.yaml")


def expect_rule(within: str, extra: str = "", on: str = "ticket") -> str:
    return f"""\
  - id: r1
    clause: C1
    on: {on}
    then:
      - expect: {{event: reply, match: {{customer: $event.customer}}, within: {within}, \
obligation: answer{extra}}}
"""


def ev(eid: str, etype: str, at: str, **fields: object) -> dict[str, object]:
    return {"id": eid, "type": etype, "at": at, "customer": "c1", **fields}


def sh(text: str) -> str:
    """A Shanghai wall time as ISO text with its offset."""
    return text + "+08:00"


def shift(text: str, **delta: float) -> str:
    """``text`` (Shanghai wall time) moved by ``delta``, as ISO text with the offset."""
    return (datetime.fromisoformat(sh(text)) + timedelta(**delta)).isoformat()


def one(
    p: pe.Policy, history: list[dict[str, object]], as_of: str = "2027-06-01T00:00:00+08:00"
) -> tuple[Decision, Obligation]:
    d = p.evaluate(history, as_of=as_of)
    assert len(d.obligations) == 1, d.obligations
    return d, d.obligations[0]


def iso(dt: datetime | None) -> str:
    assert dt is not None
    return dt.isoformat()


def status_when_replied(p: pe.Policy, opened: str, replied: str, **fields: object) -> str:
    _, ob = one(p, [ev("t", "ticket", opened, **fields), ev("r", "reply", replied)])
    return str(ob.status)


# ---------------------------------------------------------------- 1. a declared 2027 holiday

HOLIDAY_2027 = """\
calendar:
  holidays: [2027-01-08]
"""


def test_two_working_days_across_a_declared_company_holiday() -> None:
    p = policy(expect_rule("2 working days"), HOLIDAY_2027)
    opened = sh("2027-01-07T10:00:00")
    d, ob = one(p, [ev("t", "ticket", opened)])
    assert iso(ob.due) == sh("2027-01-12T10:00:00") and ob.due_inclusive
    assert ob.status == "overdue"
    assert d.notices == []  # 2027 is declared
    assert status_when_replied(p, opened, sh("2027-01-12T10:00:00")) == "met"
    assert status_when_replied(p, opened, shift("2027-01-12T10:00:00", microseconds=1)) == "late"
    assert status_when_replied(p, opened, sh("2027-01-12T10:00:01")) == "late"
    # the company holiday is what moved it: Friday 8th is not counted
    assert status_when_replied(p, opened, sh("2027-01-08T18:00:00")) == "met"


def test_holiday_ranges_are_inclusive() -> None:
    cal = "calendar:\n  holidays: [2027-02-10..2027-02-16]\n"
    p = policy(expect_rule("1 working day"), cal)
    _, ob = one(p, [ev("t", "ticket", sh("2027-02-09T10:00:00"))])
    assert iso(ob.due) == sh("2027-02-17T10:00:00")


def test_declared_workday_saturday_counts() -> None:
    cal = "calendar:\n  workdays: [2027-01-09]\n"
    p = policy(expect_rule("1 working day"), cal)
    _, ob = one(p, [ev("t", "ticket", sh("2027-01-08T10:00:00"))])
    assert iso(ob.due) == sh("2027-01-09T10:00:00")


# ---------------------------------------------------------------- 2. unknown years

OUTSIDE_WEEKDAYS = "calendar:\n  outside: weekdays\n"


def test_outside_weekdays_gives_a_calendar_notice_naming_the_year() -> None:
    p = policy(expect_rule("2 working days"), OUTSIDE_WEEKDAYS)
    d, ob = one(p, [ev("t", "ticket", sh("2027-01-07T10:00:00"))])
    assert iso(ob.due) == sh("2027-01-11T10:00:00")
    assert [(n.kind, n.event) for n in d.notices] == [("calendar", "#calendar")]
    assert "2027" in d.notices[0].detail and "Monday to Friday" in d.notices[0].detail
    assert "2026" not in d.notices[0].detail.split("knows")[0]
    # the decision with its notice serialises
    dumped = json.loads(json.dumps(d.model_dump(mode="json")))
    assert dumped["notices"][0]["kind"] == "calendar"


def test_outside_error_is_the_default_and_raises_pe302() -> None:
    p = policy(expect_rule("2 working days"))
    with pytest.raises(EvaluationError) as info:
        p.evaluate([ev("t", "ticket", sh("2027-01-07T10:00:00"))], as_of=sh("2027-02-01T00:00:00"))
    assert info.value.codes == [Code.OUTSIDE_CALENDAR]
    assert "2027" in str(info.value)
    explicit = policy(expect_rule("2 working days"), "calendar:\n  outside: error\n")
    with pytest.raises(EvaluationError) as info:
        explicit.evaluate([ev("t", "ticket", sh("2027-01-07T10:00:00"))])
    assert info.value.codes == ["PE302"]


def test_no_notice_when_the_window_stays_in_2026() -> None:
    p = policy(expect_rule("2 working days"), OUTSIDE_WEEKDAYS)
    d, ob = one(p, [ev("t", "ticket", sh("2026-12-28T10:00:00"))], as_of=sh("2027-01-05T00:00:00"))
    assert iso(ob.due) == sh("2026-12-30T10:00:00")
    assert d.notices == []
    # and no error without outside: weekdays either
    plain = policy(expect_rule("2 working days"))
    d = plain.evaluate([ev("t", "ticket", sh("2026-12-28T10:00:00"))])
    assert d.notices == [] and iso(d.obligations[0].due) == sh("2026-12-30T10:00:00")


# ---------------------------------------------------------------- 10. the boundary


def test_last_day_of_2026_plus_one_working_day() -> None:
    p = policy(expect_rule("1 working day"), OUTSIDE_WEEKDAYS)
    d, ob = one(p, [ev("t", "ticket", sh("2026-12-31T16:00:00"))])
    assert iso(ob.due) == sh("2027-01-01T16:00:00")  # a Friday, counted as worked
    assert [n.kind for n in d.notices] == ["calendar"] and "2027" in d.notices[0].detail
    # with 2027's New Year declared, 2027 is known: no notice, the 4th
    known = policy(expect_rule("1 working day"), "calendar:\n  holidays: [2027-01-01]\n")
    d, ob = one(known, [ev("t", "ticket", sh("2026-12-31T16:00:00"))])
    assert iso(ob.due) == sh("2027-01-04T16:00:00") and d.notices == []


# ---------------------------------------------------------------- 3. working hours

LUNCH = 'calendar:\n  hours: ["09:00-12:00", "13:30-18:00"]\n'


@pytest.mark.parametrize(
    ("within", "calendar", "opened", "due"),
    [
        ("4 working hours", "", "2026-03-06T16:00:00", "2026-03-09T11:00:00"),
        ("4 working hours", LUNCH, "2026-03-09T11:00:00", "2026-03-09T16:30:00"),
        ("4 working hours", "", "2026-03-07T10:00:00", "2026-03-09T13:00:00"),
        ("4 working hours", "", "2026-03-06T19:00:00", "2026-03-09T13:00:00"),
        ("4 working hours", "", "2026-03-09T08:00:00", "2026-03-09T13:00:00"),
        ("4 working hours", "", "2026-03-06T14:00:00", "2026-03-06T18:00:00"),
        ("90 working minutes", "", "2026-03-06T17:00:00", "2026-03-09T09:30:00"),
        ("4个工作小时", "", "2026-03-06T17:00:00", "2026-03-09T12:00:00"),
        ("30工作分钟", "", "2026-03-06T17:45:00", "2026-03-09T09:15:00"),
        ("2 working hours", "", "2026-09-30T17:00:00", "2026-10-08T10:00:00"),
    ],
)
def test_working_hours_windows(within: str, calendar: str, opened: str, due: str) -> None:
    p = policy(expect_rule(within), calendar)
    _, ob = one(p, [ev("t", "ticket", sh(opened))], as_of=sh("2026-12-01T00:00:00"))
    assert iso(ob.due) == sh(due) and ob.due_inclusive
    assert status_when_replied(p, sh(opened), sh(due)) == "met"
    assert status_when_replied(p, sh(opened), shift(due, microseconds=1)) == "late"
    assert status_when_replied(p, sh(opened), shift(due, seconds=1)) == "late"


def test_working_hours_status_open_then_overdue() -> None:
    p = policy(expect_rule("4 working hours"))
    history = [ev("t", "ticket", sh("2026-03-06T16:00:00"))]
    assert p.evaluate(history, as_of=sh("2026-03-09T11:00:00")).obligations[0].status == "open"
    late = p.evaluate(history, as_of=sh("2026-03-09T11:00:01")).obligations[0].status
    assert late == "overdue"


def test_hours_apply_to_working_days_only_where_working_hours_are_used() -> None:
    # `2 working days` keeps the wall time: hours do not move it
    p = policy(expect_rule("1 working day"), LUNCH)
    _, ob = one(p, [ev("t", "ticket", sh("2026-03-06T20:00:00"))], as_of=sh("2026-04-01T00:00:00"))
    assert iso(ob.due) == sh("2026-03-09T20:00:00")


# ---------------------------------------------------------------- 4. rolling


def test_roll_over_the_2026_national_day_week() -> None:
    rolled = policy(expect_rule("1 day", ", roll: next_working_day"))
    opened = sh("2026-09-30T10:00:00")
    _, ob = one(rolled, [ev("t", "ticket", opened)], as_of=sh("2026-11-01T00:00:00"))
    assert iso(ob.due) == sh("2026-10-08T10:00:00")
    assert status_when_replied(rolled, opened, sh("2026-10-08T10:00:00")) == "met"
    assert status_when_replied(rolled, opened, sh("2026-10-08T10:00:01")) == "late"
    assert status_when_replied(rolled, opened, shift("2026-10-08T10:00:00", microseconds=1)) == (
        "late"
    )
    plain = policy(expect_rule("1 day"))
    _, ob = one(plain, [ev("t", "ticket", opened)], as_of=sh("2026-11-01T00:00:00"))
    assert iso(ob.due) == sh("2026-10-01T10:00:00")
    assert status_when_replied(plain, opened, sh("2026-10-01T10:00:01")) == "late"


def test_roll_keeps_a_deadline_on_the_make_up_saturday() -> None:
    rolled = policy(expect_rule("1 day", ", roll: next_working_day"))
    _, ob = one(rolled, [ev("t", "ticket", sh("2026-10-09T10:00:00"))], sh("2026-11-01T00:00:00"))
    assert iso(ob.due) == sh("2026-10-10T10:00:00")  # Saturday, a statutory working day
    _, ob = one(rolled, [ev("t", "ticket", sh("2026-10-10T10:00:00"))], sh("2026-11-01T00:00:00"))
    assert iso(ob.due) == sh("2026-10-12T10:00:00")  # Sunday off -> Monday


def test_roll_same_day_on_friday_is_not_rolled_and_on_saturday_is() -> None:
    rolled = policy(expect_rule("same day", ", roll: next_working_day"))
    _, ob = one(rolled, [ev("t", "ticket", sh("2026-03-06T10:00:00"))], sh("2026-04-01T00:00:00"))
    assert iso(ob.due) == sh("2026-03-07T00:00:00") and not ob.due_inclusive
    assert status_when_replied(rolled, sh("2026-03-06T10:00:00"), sh("2026-03-06T23:59:59")) == (
        "met"
    )
    assert status_when_replied(rolled, sh("2026-03-06T10:00:00"), sh("2026-03-07T00:00:00")) == (
        "late"
    )
    _, ob = one(rolled, [ev("t", "ticket", sh("2026-03-07T10:00:00"))], sh("2026-04-01T00:00:00"))
    assert iso(ob.due) == sh("2026-03-10T00:00:00") and not ob.due_inclusive


def test_roll_a_date_field_deadline() -> None:
    rolled = policy(expect_rule("$event.due_day", ", roll: next_working_day"))
    opened = sh("2026-09-28T10:00:00")
    _, ob = one(
        rolled, [ev("t", "ticket", opened, due_day="2026-10-03")], sh("2026-11-01T00:00:00")
    )
    # due by the end of 3 October, a holiday: by the end of 8 October
    assert iso(ob.due) == sh("2026-10-09T00:00:00") and not ob.due_inclusive
    _, ob = one(
        rolled, [ev("t", "ticket", opened, due_day="2026-09-30")], sh("2026-11-01T00:00:00")
    )
    assert iso(ob.due) == sh("2026-10-01T00:00:00")  # 30 September is worked: not rolled


def test_roll_with_a_company_holiday_and_outside_weekdays() -> None:
    cal = "calendar:\n  holidays: [2027-01-04]\n"
    rolled = policy(expect_rule("2 days", ", roll: next_working_day"), cal)
    _, ob = one(rolled, [ev("t", "ticket", sh("2027-01-01T10:00:00"))])
    # Sun 3rd -> Mon 4th is a company holiday -> Tue 5th
    assert iso(ob.due) == sh("2027-01-05T10:00:00")
    guessed = policy(expect_rule("2 days", ", roll: next_working_day"), OUTSIDE_WEEKDAYS)
    d, ob = one(guessed, [ev("t", "ticket", sh("2027-01-01T10:00:00"))])
    assert iso(ob.due) == sh("2027-01-04T10:00:00")
    assert [n.kind for n in d.notices] == ["calendar"]


# ---------------------------------------------------------------- 5. time of day

CALLS = """\
  - id: quiet
    clause: C1
    on: call
    when:
      any:
        - {lt: [{time_of_day: $event.at}, "09:00"]}
        - {gt: [{time_of_day: $event.at}, "21:00"]}
    then:
      - violation: {what: call outside hours, party: agent}
"""


def test_time_of_day_rule_edges() -> None:
    p = policy(CALLS)
    times = {
        "k1": "2026-03-06T08:59:59",
        "k2": "2026-03-06T09:00:00",
        "k3": "2026-03-06T21:00:00",
        "k4": "2026-03-06T21:00:01",
        "k5": "2026-03-06T00:00:00",
        "k6": "2026-03-06T23:59:59",
        "k7": "2026-03-06T12:00:00",
    }
    history = [ev(k, "call", sh(t)) for k, t in times.items()]
    history.append(ev("k8", "call", shift("2026-03-06T21:00:00", microseconds=1)))
    history.append(ev("k9", "call", shift("2026-03-06T09:00:00", microseconds=-1)))
    # the local time of an instant given in UTC
    history.append(ev("k10", "call", "2026-03-06T00:59:59Z"))  # 08:59:59 in Shanghai
    history.append(ev("k11", "call", "2026-03-06T01:00:00Z"))  # 09:00:00
    d = p.evaluate(history)
    assert sorted(str(v.event) for v in d.violations) == sorted(
        ["k1", "k4", "k5", "k6", "k8", "k9", "k10"]
    )


def test_time_of_day_with_seconds_literal_and_equality() -> None:
    rule = """\
  - id: exact
    clause: C1
    on: call
    when: {eq: [{time_of_day: $event.at}, "09:30"]}
    then: [{violation: {what: on the dot, party: agent}}]
"""
    p = policy(rule)
    d = p.evaluate(
        [
            ev("a", "call", sh("2026-03-06T09:30:00")),
            ev("b", "call", sh("2026-03-06T09:30:01")),
            ev("c", "call", shift("2026-03-06T09:30:00", microseconds=1)),
        ]
    )
    assert [v.event for v in d.violations] == ["a"]


@pytest.mark.parametrize("literal", ['"9h"', '"nine"', "9", '"25:00"'])
def test_time_of_day_compared_with_a_non_time_is_pe118(literal: str) -> None:
    rule = f"""\
  - id: bad
    clause: C1
    on: call
    when: {{lt: [{{time_of_day: $event.at}}, {literal}]}}
    then: [{{violation: {{what: x, party: agent}}}}]
"""
    with pytest.raises(PolicyError) as info:
        policy(rule)
    assert Code.WRONG_KIND in info.value.codes, str(info.value)
    assert "cal.yaml:" in str(info.value)


# ---------------------------------------------------------------- 6. computed windows


def test_within_a_time_field() -> None:
    p = policy(expect_rule("$event.promised"))
    opened, promised = sh("2026-03-06T10:00:00"), sh("2026-03-20T15:30:00")
    _, ob = one(p, [ev("t", "ticket", opened, promised=promised)])
    assert iso(ob.due) == promised and ob.due_inclusive
    assert status_when_replied(p, opened, promised, promised=promised) == "met"
    assert (
        status_when_replied(
            p, opened, shift("2026-03-20T15:30:00", microseconds=1), promised=promised
        )
        == "late"
    )
    assert status_when_replied(p, opened, sh("2026-03-20T15:30:01"), promised=promised) == "late"


def test_within_a_date_field_is_due_by_the_end_of_that_local_day() -> None:
    p = policy(expect_rule("$event.due_day"))
    opened = sh("2026-03-06T10:00:00")
    _, ob = one(p, [ev("t", "ticket", opened, due_day="2026-03-10")])
    assert iso(ob.due) == sh("2026-03-11T00:00:00") and not ob.due_inclusive
    assert status_when_replied(p, opened, sh("2026-03-10T23:59:59"), due_day="2026-03-10") == "met"
    just = shift("2026-03-11T00:00:00", microseconds=-1)
    assert status_when_replied(p, opened, just, due_day="2026-03-10") == "met"
    assert status_when_replied(p, opened, sh("2026-03-11T00:00:00"), due_day="2026-03-10") == "late"


def test_within_plus_and_coalesce() -> None:
    p = policy(expect_rule("{coalesce: [$event.promised, {plus: [$event.at, 3 working days]}]}"))
    opened = sh("2026-03-06T10:00:00")
    _, ob = one(p, [ev("t", "ticket", opened)])
    assert iso(ob.due) == sh("2026-03-11T10:00:00")  # Fri + 3 working days = Wed
    _, ob = one(p, [ev("t", "ticket", opened, promised=sh("2026-03-07T09:00:00"))])
    assert iso(ob.due) == sh("2026-03-07T09:00:00")


def test_within_a_flag_plus_a_parameter() -> None:
    rules = """\
  - id: promise
    clause: C1
    on: promise
    then: [{set: {flag: promised_at, value: $event.at}}]
  - id: r1
    clause: C1
    on: ticket
    then:
      - expect: {event: reply, match: {customer: $event.customer}, \
within: {plus: [$subject.flags.promised_at, $params.grace]}, obligation: answer}
"""
    p = policy(rules)
    history = [
        ev("p", "promise", sh("2026-03-01T08:00:00")),
        ev("t", "ticket", sh("2026-03-02T10:00:00")),
    ]
    _, ob = one(p, history)
    assert iso(ob.due) == sh("2026-03-03T08:00:00")
    met = p.evaluate([*history, ev("r", "reply", sh("2026-03-03T08:00:00"))]).obligations[0]
    assert met.status == "met"
    late = p.evaluate([*history, ev("r", "reply", sh("2026-03-03T08:00:01"))]).obligations[0]
    assert late.status == "late"
    # the parameter can be overridden at load
    longer = pe.load_policy_text(
        HEAD + "rules:\n" + rules, "cal.yaml", params={"grace": "4 working hours"}
    )
    _, ob = one(longer, history)
    # Sun 1 Mar 08:00: counting starts Monday 09:00
    assert iso(ob.due) == sh("2026-03-02T13:00:00")


def test_within_a_parameter_duration() -> None:
    p = policy(expect_rule("$params.grace"))
    _, ob = one(p, [ev("t", "ticket", sh("2026-03-06T10:00:00"))])
    assert iso(ob.due) == sh("2026-03-08T10:00:00")


@pytest.mark.parametrize(
    "within",
    [
        "$event.customer",
        "$event.note",
        "{add: [1, 2]}",
        '"soon"',
    ],
)
def test_within_of_the_wrong_kind_is_refused_at_load(within: str) -> None:
    with pytest.raises(PolicyError) as info:
        policy(expect_rule(within))
    expected = Code.WRONG_KIND if within[0] in "${" else Code.BAD_QUANTITY
    assert info.value.codes == [expected], str(info.value)
    assert "cal.yaml:" in str(info.value)


def test_repeat_needs_a_duration_window() -> None:
    with pytest.raises(PolicyError) as info:
        policy(expect_rule("$event.promised", ", repeat: true"))
    assert Code.WRONG_KIND in info.value.codes, str(info.value)
    # a duration window repeats fine
    policy(expect_rule("2 working days", ", repeat: true"))


def test_a_window_that_gives_nothing_is_pe303() -> None:
    p = policy(expect_rule("$event.promised"))
    with pytest.raises(EvaluationError) as info:
        p.evaluate([ev("t", "ticket", sh("2026-03-06T10:00:00"))])
    assert info.value.codes == [Code.RUNTIME_TYPE]
    problem = info.value.problems[0]
    assert "$event.promised" in problem.message and "None" in problem.message
    assert problem.hint is not None and "coalesce" in problem.hint
    assert problem.location is not None and problem.location.file == "cal.yaml"


def test_after_a_time_field() -> None:
    rule = """\
  - id: r1
    clause: C1
    on: ticket
    then:
      - expect: {event: reply, match: {customer: $event.customer}, after: $event.promised, \
within: 1 day, obligation: answer}
"""
    p = policy(rule)
    opened, promised = sh("2026-03-06T10:00:00"), sh("2026-03-07T10:00:00")
    _, ob = one(p, [ev("t", "ticket", opened, promised=promised)])
    assert iso(ob.window_start) == promised


# ---------------------------------------------------------------- 7. merging calendars


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


FILE_A = (
    HEAD
    + """\
calendar:
  holidays: [2027-01-08]
  outside: weekdays
rules:
"""
    + expect_rule("2 working days")
)
FILE_B_HEAD = """\
policy: {id: cal-b, title: more, version: "1", timezone: Asia/Shanghai}
clauses: [{id: C2, text: 原文, reading: reading}]
"""


def test_holidays_of_two_files_union(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", FILE_A)
    write(tmp_path, "b.yaml", FILE_B_HEAD + "calendar:\n  holidays: [2027-01-11]\nrules: []\n")
    p = pe.load_policy(tmp_path)
    cal = p.compiled.calendar
    assert cal.outside == "weekdays"
    assert {d.isoformat() for d in cal.holidays} == {"2027-01-08", "2027-01-11"}
    d, ob = one(p, [ev("t", "ticket", sh("2027-01-07T10:00:00"))])
    # Fri 8th (a.yaml) and Mon 11th (b.yaml) off: Tue 12th, Wed 13th
    assert iso(ob.due) == sh("2027-01-13T10:00:00")
    assert d.notices == []


def test_a_day_both_holiday_and_workday_is_pe115_located(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", FILE_A)
    write(
        tmp_path,
        "b.yaml",
        FILE_B_HEAD + "calendar:\n  workdays:\n    - 2027-01-09\n    - 2027-01-08\nrules: []\n",
    )
    with pytest.raises(PolicyError) as info:
        pe.load_policy(tmp_path)
    assert info.value.codes == [Code.CONFLICTING_DECLARATIONS]
    problem = info.value.problems[0]
    assert problem.location is not None
    assert Path(problem.location.file).name == "b.yaml"
    assert (problem.location.line, problem.location.column) == (6, 7)
    assert "2027-01-08" in problem.message
    assert problem.hint is not None and "a.yaml" in problem.hint


def test_a_range_overlapping_a_workday_in_one_file_is_pe115() -> None:
    cal = "calendar:\n  holidays: [2027-02-10..2027-02-16]\n  workdays: [2027-02-14]\n"
    with pytest.raises(PolicyError) as info:
        policy(expect_rule("1 working day"), cal)
    assert info.value.codes == [Code.CONFLICTING_DECLARATIONS]
    assert str(info.value.problems[0].location).startswith("cal.yaml:")


@pytest.mark.parametrize(
    ("other", "name"),
    [
        ("  outside: error\n", "outside"),
        ("  base: weekdays\n", "base"),
        ('  hours: ["08:00-17:00"]\n', "hours"),
    ],
)
def test_differing_settings_are_pe115(tmp_path: Path, other: str, name: str) -> None:
    write(
        tmp_path,
        "a.yaml",
        FILE_A.replace(
            "  outside: weekdays\n",
            '  outside: weekdays\n  base: china\n  hours: ["09:00-18:00"]\n',
        ),
    )
    write(tmp_path, "b.yaml", FILE_B_HEAD + "calendar:\n" + other + "rules: []\n")
    with pytest.raises(PolicyError) as info:
        pe.load_policy(tmp_path)
    assert info.value.codes == [Code.CONFLICTING_DECLARATIONS]
    problem = info.value.problems[0]
    assert name in problem.message
    assert problem.location is not None and Path(problem.location.file).name == "b.yaml"


def test_the_same_hours_spelt_differently_agree(tmp_path: Path) -> None:
    # the same business hours listed in another order or spelt with spaces agree
    write(
        tmp_path,
        "a.yaml",
        FILE_A.replace("  outside: weekdays\n", '  hours: ["09:00-12:00", "13:30-18:00"]\n'),
    )
    write(
        tmp_path,
        "b.yaml",
        FILE_B_HEAD + 'calendar:\n  hours: ["13:30-18:00", "09:00 - 12:00"]\nrules: []\n',
    )
    pe.load_policy(tmp_path)


def test_same_settings_in_two_files_agree(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", FILE_A)
    write(tmp_path, "b.yaml", FILE_B_HEAD + "calendar:\n  outside: weekdays\nrules: []\n")
    p = pe.load_policy(tmp_path)
    _, ob = one(p, [ev("t", "ticket", sh("2027-01-07T10:00:00"))])
    assert iso(ob.due) == sh("2027-01-12T10:00:00")


def load_with_calendar(policy_path: Path, calendar_path: Path) -> pe.Policy:
    try:
        return pe.load_policy(policy_path, calendar=calendar_path)
    except TypeError:  # load_policy not wired yet: the program loader is
        return Policy(load_program(policy_path, calendar=calendar_path))


@pytest.mark.parametrize("wrapped", [True, False])
def test_a_calendar_file(tmp_path: Path, wrapped: bool) -> None:
    path = write(tmp_path, "policy.yaml", HEAD + "rules:\n" + expect_rule("2 working days"))
    block = "holidays: [2027-01-08]\noutside: weekdays\n"
    if wrapped:
        block = "calendar:\n" + "".join("  " + line + "\n" for line in block.splitlines())
    cal = write(tmp_path, "company-2027.yaml", block)
    p = load_with_calendar(path, cal)
    d, ob = one(p, [ev("t", "ticket", sh("2027-01-07T10:00:00"))])
    assert iso(ob.due) == sh("2027-01-12T10:00:00") and d.notices == []
    # and it merges with the policy's own block
    both = write(tmp_path, "with-block.yaml", FILE_A.replace("[2027-01-08]", "[2027-01-11]"))
    p = load_with_calendar(both, cal)
    _, ob = one(p, [ev("t", "ticket", sh("2027-01-07T10:00:00"))])
    assert iso(ob.due) == sh("2027-01-13T10:00:00")


def test_a_calendar_file_conflicting_with_the_policy_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.yaml", FILE_A)
    cal = write(tmp_path, "cal.yaml", "calendar:\n  workdays: [2027-01-08]\n")
    with pytest.raises(PolicyError) as info:
        load_with_calendar(path, cal)
    assert info.value.codes == [Code.CONFLICTING_DECLARATIONS]
    location = info.value.problems[0].location
    assert location is not None and Path(location.file).name == "cal.yaml"
    assert location.line == 2


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        ("  holidays: [2027-13-01]\n", "2027-13-01"),
        ("  holidays: [2027-02-30]\n", "2027-02-30"),
        ("  workdays: [tomorrow]\n", "tomorrow"),
        ('  hours: ["18:00-09:00"]\n', "close before they open"),
        ('  hours: ["09:00-12:00", "11:00-18:00"]\n', "overlap"),
        ('  hours: ["9am-6pm"]\n', "9am-6pm"),
        ("  holidays: [2027-01-01..2028-01-02]\n", "longer than a year"),
        ("  holidays: [2027-02-16..2027-02-10]\n", "ends before it starts"),
        ("  base: japan\n", "japan"),
        ("  outside: guess\n", "guess"),
        ("  weekends: [sat]\n", "weekends"),
    ],
)
def test_bad_calendar_blocks_are_located(block: str, needle: str) -> None:
    with pytest.raises(PolicyError) as info:
        policy(expect_rule("1 working day"), "calendar:\n" + block)
    problem = info.value.problems[0]
    assert problem.code in {Code.BAD_VALUE, Code.UNKNOWN_FIELD}, str(info.value)
    assert problem.location is not None and problem.location.file == "cal.yaml"
    calendar_line = (HEAD + "calendar:\n").count("\n")  # the block's first line
    assert problem.location.line == calendar_line + 1, str(info.value)
    assert needle in str(info.value), str(info.value)


def test_a_full_year_range_is_accepted() -> None:
    p = policy(
        expect_rule("1 working day"),
        "calendar:\n  holidays: [2027-01-01..2027-12-31]\n  workdays: [2028-01-03]\n",
    )
    _, ob = one(p, [ev("t", "ticket", sh("2026-12-31T10:00:00"))], as_of=sh("2028-02-01T00:00:00"))
    assert iso(ob.due) == sh("2028-01-03T10:00:00")


# ---------------------------------------------------------------- 8. history look-back

LOOK_BACK = """\
  - id: again
    clause: C1
    on: call
    when:
      history:
        type: call
        match: {customer: $event.customer}
        within: WINDOW
        last: 5
    then: [{violation: {what: called again, party: agent}}]
  - id: count
    clause: C1
    on: call
    when: {ge: [{count: {type: call, match: {customer: $event.customer}, within: WINDOW}}, 1]}
    then: [{violation: {what: counted again, party: agent}}]
"""

BASE_US = int(datetime.fromisoformat(sh("2026-03-02T00:00:00")).timestamp()) * 1_000_000  # Mon
H_US = 3_600_000_000
FORTNIGHT_US = 14 * 24 * H_US
EDGES = [h * H_US + m for h in (0, 9, 12, 13, 18) for m in (0, 1, -1, 30 * 60_000_000)]
offsets = st.one_of(
    st.integers(0, FORTNIGHT_US),
    st.tuples(st.integers(0, 13), st.sampled_from(EDGES)).map(lambda t: t[0] * 24 * H_US + t[1]),
)


def us_text(us: int) -> str:
    return (
        datetime(1970, 1, 1).replace(tzinfo=None) + timedelta(microseconds=us)
    ).isoformat() + "Z"


@pytest.mark.parametrize(
    "window", ["4 working hours", "1 working day", "2 working days", "30 working minutes"]
)
@pytest.mark.parametrize("calendar", ["", LUNCH])
def test_history_look_back_at_the_edges(window: str, calendar: str) -> None:
    p = policy(LOOK_BACK.replace("WINDOW", window), calendar)
    d = parse_duration(window)
    from policyengine.calendars import STATUTORY, Calendar, parse_hours

    cal: Calendar = (
        Calendar(hours=parse_hours(["09:00-12:00", "13:30-18:00"])) if calendar else STATUTORY
    )
    first = instant_us(sh("2026-03-06T16:00:00"))
    assert first is not None
    deadline, inclusive = d.due(first, TZ, cal)
    for second, expected in [(deadline, inclusive), (deadline + 1, False), (deadline - 1, True)]:
        history = [ev("a", "call", us_text(first)), ev("b", "call", us_text(second))]
        out = p.evaluate(history)
        flagged = sorted({str(v.event) for v in out.violations})
        assert flagged == (["b"] if expected else []), (window, us_text(second))


@pytest.mark.parametrize(
    ("window", "first", "second", "expected"),
    [
        # on a Saturday, Thursday's "2 working days" end on Monday: all of Thursday counts
        ("2 working days", "2026-03-12T00:00:00", "2026-03-14T00:29:59.999999", True),
        ("2 working days", "2026-03-11T23:59:59", "2026-03-14T00:29:59", False),
        # on Monday 00:30, Saturday 00:00's "1 working day" ended at Monday 00:00
        ("1 working day", "2026-03-07T00:00:00", "2026-03-09T00:30:00", False),
        ("1 working day", "2026-03-07T00:30:00", "2026-03-09T00:30:00", True),
        ("1 working day", "2026-03-06T23:00:00", "2026-03-09T00:30:00", True),
        ("1 working day", "2026-03-06T00:29:59", "2026-03-09T00:30:00", False),
        # the National Day week: 30 Sep's window ends on 8 Oct
        ("1 working day", "2026-09-30T10:00:00", "2026-10-08T10:00:00", True),
        ("1 working day", "2026-09-30T10:00:00", "2026-10-08T10:00:01", False),
        ("1 working day", "2026-10-03T09:00:00", "2026-10-08T08:59:59", True),
        ("1 working day", "2026-10-03T09:00:00", "2026-10-08T09:00:01", False),
    ],
)
def test_history_working_days_across_days_off(
    window: str, first: str, second: str, expected: bool
) -> None:
    """Regression: the working-day look-back took now's wall time on the day it counted back
    to, whatever day now was: on a day off it left out events the window still covers, and
    on the next working day it let in events of the days off whose windows had closed."""
    p = _look_back_policy(window)
    out = p.evaluate([ev("a", "call", sh(first)), ev("b", "call", sh(second))])
    assert sorted({v.what for v in out.violations if v.event == "b"}) == (
        ["called again", "counted again"] if expected else []
    )


@settings(max_examples=60, deadline=None)
@given(
    offsets,
    offsets,
    st.sampled_from(["4 working hours", "2 working days", "1 working day", "9 working hours"]),
)
def test_history_agrees_with_covers(a: int, b: int, window: str) -> None:
    first, second = BASE_US + min(a, b), BASE_US + max(a, b)
    if first == second:
        second += 1
    p = _look_back_policy(window)
    from policyengine.calendars import STATUTORY

    expected = parse_duration(window).covers(first, second, TZ, STATUTORY)
    history = [ev("a", "call", us_text(first)), ev("b", "call", us_text(second))]
    out = p.evaluate(history)
    assert {v.what for v in out.violations if v.event == "b"} == (
        {"called again", "counted again"} if expected else set()
    ), (window, us_text(first), us_text(second))


_POLICIES: dict[str, pe.Policy] = {}


def _look_back_policy(window: str) -> pe.Policy:
    if window not in _POLICIES:
        _POLICIES[window] = policy(LOOK_BACK.replace("WINDOW", window))
    return _POLICIES[window]


# ---------------------------------------------------------------- 9. resume and evaluate_many

MANY = """\
  - id: r1
    clause: C1
    on: ticket
    then:
      - expect: {event: reply, match: {customer: $event.customer}, within: 4 working hours, \
obligation: fast}
      - expect: {event: reply, match: {customer: $event.customer}, within: 2 working days, \
obligation: slow}
      - expect: {event: reply, match: {customer: $event.customer}, within: 1 day, \
roll: next_working_day, obligation: rolled}
"""


def many_history() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    starts = ["2026-12-30T17:00:00", "2026-12-31T16:00:00", "2027-01-08T11:00:00",
              "2026-10-09T17:30:00", "2027-01-01T10:00:00"]  # fmt: skip
    for i, start in enumerate(starts):
        c = f"c{i}"
        events.append({"id": f"t{i}", "type": "ticket", "at": sh(start), "customer": c})
        if i % 2 == 0:
            reply = datetime.fromisoformat(sh(start)) + timedelta(hours=20)
            events.append({"id": f"r{i}", "type": "reply", "at": reply.isoformat(), "customer": c})
    events.sort(key=lambda e: datetime.fromisoformat(str(e["at"])))
    return events


def summary(d: Any) -> tuple[Any, ...]:
    obligations = sorted(
        (o.subject, o.what, o.due.isoformat(), o.status, o.met_by) for o in d.obligations
    )
    notices = sorted((n.event, n.kind, n.detail) for n in d.notices)
    return tuple(obligations), tuple(notices)


def test_resume_and_evaluate_many_agree_with_evaluate() -> None:
    p = policy(MANY, LUNCH.rstrip("\n") + "\n  holidays: [2027-01-11]\n  outside: weekdays\n")
    events = many_history()
    as_of = sh("2027-02-01T00:00:00")
    whole = p.evaluate(events, as_of=as_of)
    assert any(n.kind == "calendar" for n in whole.notices) is False  # 2027 is declared
    assert len(whole.obligations) == 15
    for cut in range(1, len(events)):
        first = p.evaluate(events[:cut], as_of=events[cut - 1]["at"], resumable=True)
        stored = json.loads(json.dumps(first.snapshot()))
        resumed = p.resume(stored, events[cut:], as_of=as_of)
        assert summary(resumed) == summary(whole), cut
    many = p.evaluate_many(events, as_of=as_of)
    assert summary(many) == summary(whole)


def test_resume_and_evaluate_many_keep_the_calendar_notice() -> None:
    p = policy(MANY, LUNCH.rstrip("\n") + "\n  outside: weekdays\n")
    events = many_history()
    as_of = sh("2027-02-01T00:00:00")
    whole = p.evaluate(events, as_of=as_of)
    assert [(n.kind, n.event) for n in whole.notices] == [("calendar", "#calendar")]
    assert "2027" in whole.notices[0].detail
    for cut in (1, 2, 4):
        # the first part stays in 2026: no guess yet
        first = p.evaluate(events[:cut], as_of=events[cut - 1]["at"], resumable=True)
        stored = json.loads(json.dumps(first.snapshot()))
        resumed = p.resume(stored, events[cut:], as_of=as_of)
        assert summary(resumed) == summary(whole), cut
    # a guess made before the snapshot survives it
    late_cut = len(events) - 1
    first = p.evaluate(events[:late_cut], as_of=events[late_cut - 1]["at"], resumable=True)
    assert [n.kind for n in first.notices] == ["calendar"]
    resumed = p.resume(json.loads(json.dumps(first.snapshot())), events[late_cut:], as_of=as_of)
    assert summary(resumed) == summary(whole)
    many = p.evaluate_many(events, as_of=as_of)
    assert summary(many) == summary(whole)
    two = p.evaluate_many(events, as_of=as_of, shards=3)
    assert summary(two) == summary(whole)


def test_a_history_look_back_in_an_unknown_year_guesses_with_a_notice() -> None:
    rule = LOOK_BACK.replace("WINDOW", "1 working day")
    guessed = policy(rule, OUTSIDE_WEEKDAYS)
    history = [
        ev("a", "call", sh("2027-01-04T10:00:00")),
        ev("b", "call", sh("2027-01-05T09:00:00")),
    ]
    d = guessed.evaluate(history)
    assert {v.event for v in d.violations} == {"b"}
    assert [(n.kind, n.event) for n in d.notices] == [("calendar", "#calendar")]
    with pytest.raises(EvaluationError) as info:
        policy(rule).evaluate(history)
    assert info.value.codes == ["PE302"]
