"""Issue 16, fixes: flags holding instants stay instants (JSON, explain, scenarios, snapshots,
the week_shift invariant); out_of_order's `$event` is any step's event; dates in `plus` and
in comparisons."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest

import policyengine as pe
from policyengine.backends.snapshot_values import _dumps, _enc, _loads
from policyengine.errors import ProblemSink
from policyengine.language.loader import load_text
from policyengine.times import Instant, as_instant, instant_us
from policyengine.tools import testing
from policyengine.tools.explain import explain_full
from policyengine.tools.scenarios import ScenarioFile, compare

T0 = "2026-03-01T10:00:00+08:00"

SINCE = """\
policy: {id: since-example, title: flags holding instants, version: "1", timezone: Asia/Shanghai}
clauses:
  - {id: S-1, text: 投诉的客户记下投诉时间, reading: a complaint records when it came}
events:
  complaint: {fields: {customer: str, employee: str}}
  resolved: {fields: {customer: str}}
rules:
  - id: mark
    clause: S-1
    on: complaint
    then:
      - set: {flag: since, value: $event.at}
      - set: {flag: review_by, value: {plus: [$event.at, 2 days]}}
      - set: {flag: handler, value: $event.employee}
  - id: resolve
    clause: S-1
    on: resolved
    when: {lt: [$subject.flags.since, $event.at]}
    then:
      - set: {flag: resolved, value: true}
      - set:
          flag: first
          value: {first: {values: {type: complaint, match: {customer: $event.customer}, field: at}}}
"""


def ev(eid: str, etype: str, at: str, **fields: object) -> dict[str, object]:
    return {"id": eid, "type": etype, "at": at, **fields}


def since_policy() -> pe.Policy:
    return pe.load_policy_text(SINCE, "since.yaml")


HISTORY = [
    ev("c1", "complaint", T0, customer="C1", employee="li"),
    ev("s1", "resolved", "2026-03-02T09:00:00+08:00", customer="C1"),
]
AS_OF = "2026-03-05T00:00:00+08:00"


# ---------------------------------------------------------------- 1. flags holding instants


def test_instant_is_an_int_with_a_readable_face() -> None:
    i = Instant(instant_us(T0) or 0)
    assert i == instant_us(T0) and i + 1 == instant_us(T0) + 1  # type: ignore[operator]
    assert type(i + 1) is int and hash(i) == hash(int(i))
    assert i.isoformat("Asia/Shanghai") == T0
    assert repr(i) == "Instant(2026-03-01T02:00:00Z)"
    assert type(as_instant(int(i))) is Instant and as_instant(True) is True
    assert as_instant("x") == "x"


def test_flags_holding_instants_are_local_times_in_the_decision_and_json() -> None:
    d = since_policy().evaluate(HISTORY, as_of=AS_OF, resumable=False)
    flags = d.flags["C1"]
    assert isinstance(flags["since"], datetime)
    assert flags["since"].isoformat() == T0
    assert flags["handler"] == "li" and flags["resolved"] is True
    dumped = d.model_dump(mode="json")["flags"]["C1"]
    assert dumped["since"] == "2026-03-01T10:00:00+08:00"
    assert dumped["review_by"] == "2026-03-03T10:00:00+08:00"
    assert dumped["first"] == T0  # the newest earlier complaint's time field
    assert "1772330400000000" not in json.dumps(d.model_dump(mode="json"))
    flag_rows = [t for t in d.trace if t.kind == "flag" and t.detail.get("flag") == "since"]
    assert flag_rows[0].detail["value"].isoformat() == T0
    trace_json = json.dumps(d.model_dump(mode="json")["trace"])
    assert '"value": "2026-03-01T10:00:00+08:00"' in trace_json


def test_explain_shows_a_flag_holding_an_instant_as_local_time() -> None:
    d = since_policy().evaluate(HISTORY, as_of=AS_OF, resumable=False)
    text = pe.explain(d, "C1")
    assert "flag since: 2026-03-01 10:00" in text  # local time, as present.when (issue 17)
    assert "flag review_by: 2026-03-03 10:00" in text
    assert "1772330400000000" not in text and d.explain("C1") == text
    long = explain_full(d, "C1", since_policy())
    assert "flag since: 2026-03-01 10:00" in long and "1772330400000000" not in long


SCENARIO = """\
scenarios:
  - name: a flag holding an instant matches an instant in the expectation
    as_of: 2026-03-05T00:00:00+08:00
    events:
      - {id: c1, type: complaint, at: 2026-03-01T10:00:00+08:00, customer: C1, employee: li}
    expect:
      flags:
        C1: {since: 2026-03-01T10:00:00+08:00, review_by: 2026-03-03T02:00:00Z, handler: li}
"""


def _scenario_failures(text: str) -> list[str]:
    source = load_text(text, "scenarios.yaml", ProblemSink())
    assert source is not None
    (sc,) = ScenarioFile.model_validate(source.data).scenarios
    decision = since_policy().evaluate(sc.events, as_of=sc.as_of, resumable=False)
    return compare(sc.expect, decision)


def test_scenario_flags_match_an_instant() -> None:
    assert _scenario_failures(SCENARIO) == []
    wrong = SCENARIO.replace("since: 2026-03-01T10:00:00+08:00", "since: 2026-03-01T10:00:01+08:00")
    problems = _scenario_failures(wrong)
    assert len(problems) == 1 and "flag since of C1" in problems[0]


def test_week_shift_shifts_instants_in_flags() -> None:
    policy = since_policy()
    for seed in range(4):
        testing.week_shift(policy, list(HISTORY), random.Random(seed))


def test_week_shift_would_catch_a_flag_shown_as_microseconds() -> None:
    # the invariant compares JSON dumps: a µs number would not move with the events
    policy = since_policy()
    a = policy.evaluate(HISTORY, resumable=False).model_dump(mode="json")["flags"]["C1"]
    moved = [{**e, "at": str(e["at"]).replace("2026-03-0", "2026-03-1")} for e in HISTORY]
    b = policy.evaluate(moved, resumable=False).model_dump(mode="json")["flags"]["C1"]
    assert a["since"] != b["since"] and b["since"] == "2026-03-11T10:00:00+08:00"


def test_snapshot_values_round_trip_an_instant() -> None:
    i = Instant(instant_us(T0) or 0)
    encoded = _enc({"since": i, "n": 5})
    assert encoded == {"since": {"$us": int(i)}, "n": 5}
    back = _loads(_dumps(encoded))
    assert type(back["since"]) is Instant and back["since"] == i
    assert type(back["n"]) is int


def test_a_resumed_decision_keeps_flags_holding_instants() -> None:
    policy = since_policy()
    first = policy.evaluate(HISTORY[:1], as_of="2026-03-01T12:00:00+08:00")
    snap = first.snapshot()
    resumed = policy.resume(snap, HISTORY[1:], as_of=AS_OF)
    assert resumed.model_dump(mode="json")["flags"]["C1"]["since"] == T0
    assert resumed.flags["C1"]["resolved"] is True


# ---------------------------------------------------------------- 2. out_of_order's $event

WORKFLOW = """\
policy: {id: workflow, title: out of order, version: "1"}
clauses:
  - {id: W-5, text: "先签合同,再发货,再开票", reading: "contract, shipping, invoice, in order"}
events:
  bought: {fields: {customer: str, employee: str}}
  contract: {fields: {customer: str, signer: str, clerk: str}}
  shipped: {fields: {customer: str, clerk: str}}
  invoiced: {fields: {customer: str, clerk: str}}
rules:
  - id: order-workflow
    clause: W-5
    on: bought
    expect:
      event: contract
      match: {customer: $event.customer}
      in_order: true
      steps:
        - {obligation: sign the contract}
        - {event: shipped, obligation: ship}
        - {event: invoiced, obligation: invoice}
      out_of_order: [{violation: {what: step out of order, party: $event.FIELD}}]
"""


def test_out_of_order_event_field_only_the_first_step_has_is_a_load_error() -> None:
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy_text(WORKFLOW.replace("FIELD", "signer"), "workflow.yaml")
    problem = info.value.first
    assert problem.code == "PE113"
    assert "signer" in problem.message
    assert str(problem.location) == "workflow.yaml:21:67"


def test_out_of_order_event_field_every_step_has_is_the_early_event() -> None:
    policy = pe.load_policy_text(WORKFLOW.replace("FIELD", "clerk"), "workflow.yaml")
    d = policy.evaluate(
        [
            ev("b1", "bought", T0, customer="C1", employee="li"),
            ev("i1", "invoiced", "2026-03-01T11:00:00+08:00", customer="C1", clerk="wang"),
        ],
        resumable=False,
    )
    (v,) = d.violations
    assert (v.what, v.event, v.party) == ("step out of order", "i1", "wang")


# ---------------------------------------------------------------- 3. dates

DATES = """\
policy: {id: dates, title: dates, version: "1", timezone: Asia/Shanghai}
clauses:
  - {id: D-1, text: 报告日期, reading: report dates}
events:
  report: {fields: {customer: str, day: date, until: date}}
rules:
"""


def dates_policy(rules: str) -> pe.Policy:
    return pe.load_policy_text(DATES + rules, "dates.yaml")


def report(eid: str, at: str, day: str, until: str) -> dict[str, object]:
    return ev(eid, "report", at, customer="C1", day=day, until=until)


def test_plus_on_a_date_gives_a_date() -> None:
    policy = dates_policy("""\
  - id: r
    clause: D-1
    on: report
    then:
      - set: {flag: next_month, value: {plus: [$event.day, 1 month]}}
      - set: {flag: next_week, value: {plus: [$event.day, 1 week]}}
      - set: {flag: tomorrow, value: {plus: [$event.day, 1 days]}}
      - set: {flag: working, value: {plus: [$event.day, 3 working days]}}
      - set: {flag: year, value: {plus: [{date: $event.at}, 1 year]}}
""")
    d = policy.evaluate(
        [report("r1", "2024-02-29T10:00:00+08:00", "2026-01-30", "2026-02-05")],
        resumable=False,
    )
    assert d.flags["C1"] == {
        "next_month": "2026-02-28",  # clamped to the month's last day
        "next_week": "2026-02-06",
        "tomorrow": "2026-01-31",
        "working": "2026-02-04",  # Friday + 3 working days: Wednesday
        "year": "2025-02-28",
    }


def test_dates_compare_with_dates_and_date_literals() -> None:
    policy = dates_policy("""\
  - id: early
    clause: D-1
    on: report
    when: {lt: [{plus: [$event.day, 3 working days]}, $event.until]}
    then: [{violation: early}]
  - id: from-march
    clause: D-1
    on: report
    when: {ge: [$event.day, "2026-03-01"]}
    then: [{violation: march}]
  - id: local-day
    clause: D-1
    on: report
    when: {eq: [{date: $event.at}, $event.day]}
    then: [{violation: same day}]
""")
    d = policy.evaluate(
        [
            report("r1", "2026-01-30T10:00:00+08:00", "2026-01-30", "2026-02-05"),
            report("r2", "2026-03-02T10:00:00+08:00", "2026-03-01", "2026-03-04"),
        ],
        resumable=False,
    )
    assert [(v.what, v.event) for v in d.violations] == [
        ("early", "r1"),
        ("same day", "r1"),
        ("march", "r2"),
    ]


@pytest.mark.parametrize(
    ("when", "column", "words"),
    [
        ("{lt: [$event.at, $event.day]}", 17, "a date is compared with an instant"),
        ("{gt: [$event.day, {plus: [$event.at, 1 day]}]}", 29, "compared with an instant"),
        ('{eq: [$event.day, "soon"]}', 29, "'soon' is compared with a date"),
        ("{lt: [{plus: [$event.day, 2 hours]}, $event.until]}", 37, "plus on a date"),
        ("{lt: [{plus: [$event.day, same day]}, $event.until]}", 37, "plus on a date"),
        ("{lt: [{plus: [$event.day, 30 working minutes]}, $event.until]}", 37, "plus on"),
    ],
)
def test_dates_with_instants_or_hours_are_refused_at_load(
    when: str, column: int, words: str
) -> None:
    rules = f"""\
  - id: r
    clause: D-1
    on: report
    when: {when}
    then: [{{violation: x}}]
"""
    with pytest.raises(pe.PolicyError) as info:
        dates_policy(rules)
    problem = info.value.first
    assert problem.code == "PE118"
    assert words in problem.message
    assert str(problem.location) == f"dates.yaml:10:{column}"


def test_comparing_a_date_with_an_instant_hints_at_date() -> None:
    with pytest.raises(pe.PolicyError) as info:
        dates_policy("""\
  - id: r
    clause: D-1
    on: report
    when: {lt: [$event.day, $now]}
    then: [{violation: x}]
""")
    assert "{date: $event.at}" in (info.value.first.hint or "")


def test_instants_in_plus_keep_their_behaviour() -> None:
    policy = dates_policy("""\
  - id: r
    clause: D-1
    on: report
    when: {gt: [{plus: [$event.at, 2 hours]}, $now]}
    then: [{set: {flag: due, value: {plus: [$event.at, 2 hours]}}}]
""")
    d = policy.evaluate([report("r1", T0, "2026-03-01", "2026-03-02")], resumable=False)
    assert d.model_dump(mode="json")["flags"]["C1"]["due"] == "2026-03-01T12:00:00+08:00"


_INSTANT_LITERAL = """
policy: {id: t, title: t, version: "1", timezone: Asia/Shanghai}
clauses: [{id: C1, text: x, reading: y}]
events:
  call: {fields: {customer: str}}
rules:
  - id: early-call
    clause: C1
    on: call
    when: {lt: [$event.at, "2026-03-01T00:00:00+08:00"]}
    then:
      - violation: {what: early, party: x}
"""


def test_an_instant_compares_with_a_literal_instant_at_the_edge() -> None:
    policy = pe.load_policy_text(_INSTANT_LITERAL)
    events = [
        {"id": "a", "type": "call", "at": "2026-02-28T23:59:59+08:00", "customer": "c"},
        {"id": "b", "type": "call", "at": "2026-03-01T00:00:00+08:00", "customer": "c"},
        {"id": "c", "type": "call", "at": "2026-02-28T16:00:00Z", "customer": "c"},
    ]
    assert [v.event for v in policy.evaluate(events).violations] == ["a"]


def test_an_instant_compared_with_a_date_text_is_refused_at_load() -> None:
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy_text(_INSTANT_LITERAL.replace("2026-03-01T00:00:00+08:00", "2026-03-01"))
    problem = info.value.problems[0]
    assert problem.code == "PE118" and "instant" in problem.message
    assert problem.location is not None and (problem.location.line, problem.location.column) == (
        10,
        28,
    )
