"""Numbers, tables, working days, value metrics and grades, awards and event-triggered labels,
each on a minimal inline policy through the public API (not tied to any manual)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe


def ev(eid: str, etype: str, at: str, **fields: object) -> dict[str, object]:
    return {"id": eid, "type": etype, "at": at, **fields}


T0 = "2026-03-01T10:00:00+08:00"

# ---------------------------------------------------------------- arithmetic and aggregates

NUMBERS = """\
policy: {id: numbers, title: number constructs, version: "1", timezone: Asia/Shanghai,
         currency: CNY}
clauses:
  - {id: C-1, text: 原文, reading: reading one}
params:
  cap: {money: 30000}
  band: {money: 100-300}
  tolerance: {number: 1.05}
  fines: {table: {minor: 50, major: "100-300", note: serious}}
events:
  probe:
    fields: {customer: str, a: "decimal?", b: "decimal?", flag: "bool?", text: "str?",
             kind: "str?"}
  budget: {fields: {customer: str, line: str, amount: decimal}}
  expense: {fields: {customer: str, line: str, amount: decimal}}
  breakthrough: {fields: {customer: str}}
rules:
"""


def numbers_policy(rules: str, params: dict[str, Any] | None = None) -> pe.Policy:
    return pe.load_policy_text(NUMBERS + rules, "numbers.yaml", params=params)


def probe_rule(expr: str) -> str:
    """A rule that stores the operand's value in the flag `out` (absent when it is null)."""
    action = f"{{set: {{flag: out, value: {expr}}}}}"
    return f"  - {{id: probe, clause: C-1, on: probe, then: [{action}]}}\n"


def probe(expr: str, history: list[dict[str, object]] | None = None, **fields: object) -> Any:
    d = numbers_policy(probe_rule(expr)).evaluate(
        [*(history or []), ev("p", "probe", "2026-03-09T10:00:00+08:00", customer="C", **fields)]
    )
    return d.flags.get("C", {}).get("out")


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("{sum: [0.1, 0.2]}", Decimal("0.3")),  # exact, not 0.30000000000000004
        ("{sum: [1, 2.5, 3]}", Decimal("6.5")),
        ("{sum: []}", Decimal(0)),
        ("{sum: [null, 1, null]}", Decimal(1)),
        ("{sum: [[1, 2], 3]}", Decimal(6)),  # a list inside is flattened
        ("{sum: [[[1, 2]], 3]}", Decimal(3)),  # ...one level only
        ("{sum: [true, abc, 2]}", Decimal(2)),  # booleans and text are not numbers
        ("{min: [3, -1.5, 2]}", Decimal("-1.5")),
        ("{max: [3, [7, null], 2]}", Decimal(7)),
        ("{min: []}", None),
        ("{max: [null]}", None),
        ("{avg: [1, 2]}", Decimal("1.5")),
        ("{avg: [1, null, 2, 3]}", Decimal(2)),  # the null is not a zero
        ("{avg: [1, 2, 2]}", Decimal(5) / Decimal(3)),
        ("{avg: []}", None),
        ("{first: [7, 8]}", Decimal(7)),
        ("{first: []}", None),
        ("{first: 5}", None),  # not a list
        ("{add: [1, 2.25]}", Decimal("3.25")),
        ("{add: [1, null]}", None),
        ("{sub: [10, 2.5]}", Decimal("7.5")),
        ("{sub: [1, null]}", None),
        ("{sub: [null, 1]}", None),
        ("{mul: [2, 3, 0.5]}", Decimal(3)),
        ("{mul: [1.1, 1.1]}", Decimal("1.21")),
        ("{mul: [2, null, 3]}", None),
        ("{div: [1, 4]}", Decimal("0.25")),
        ("{div: [1, 3]}", Decimal(1) / Decimal(3)),
        ("{div: [1, 0]}", None),  # division by zero is null, not an error
        ("{div: [0, 5]}", Decimal(0)),
        ("{div: [null, 2]}", None),
        ("{sub: [$params.cap, 0.01]}", Decimal("29999.99")),  # one-value money is a number
        ("{sum: [$params.cap, 1]}", Decimal(30001)),
        ("{mul: [$params.band, 2]}", None),  # a money range is not
        ("{sub: [true, 1]}", None),
        ("{mul: [abc, 1]}", None),
        ("{sub: [{sum: [1, 2]}, {mul: [{div: [1, 2]}, 4]}]}", Decimal(1)),  # nesting
    ],
)
def test_arithmetic_is_exact_and_null_aware(expr: str, expected: Decimal | None) -> None:
    got = probe(expr)
    assert got == expected
    if expected is not None and not expr.startswith("{first"):  # first: the element as it is
        assert type(got) is Decimal


@pytest.mark.parametrize(
    ("expr", "fields", "expected"),
    [
        ("{sum: [$event.a, $event.b]}", {"a": "0.1", "b": 0.2}, Decimal("0.3")),
        ("{sum: [$event.a, $event.b]}", {"a": "0.1"}, Decimal("0.1")),  # sum skips the null
        ("{add: [$event.a, $event.b]}", {"a": "0.1"}, None),  # add needs every part
        ("{sub: [$event.a, $event.b]}", {"b": 1}, None),
        ("{div: [$event.a, $event.b]}", {"a": 1, "b": "0.00"}, None),
        ("{sub: [$event.flag, 1]}", {"flag": True}, None),
        ("{sub: [$event.text, 1]}", {"text": "12"}, None),  # numeric-looking text is still text
        ("{max: [$event.text, 3]}", {"text": "12"}, Decimal(3)),
    ],
)
def test_event_fields_in_arithmetic(
    expr: str, fields: dict[str, object], expected: Decimal | None
) -> None:
    assert probe(expr, **fields) == expected


PAST_PROBES = [
    ev("p1", "probe", "2026-03-01T10:00:00+08:00", customer="C", a="10.10"),
    ev("p2", "probe", "2026-03-02T10:00:00+08:00", customer="C"),  # no amount: null
    ev("p3", "probe", "2026-03-03T10:00:00+08:00", customer="C", a="20.20"),
    ev("x", "probe", "2026-03-04T10:00:00+08:00", customer="OTHER", a="1000"),
]
SPENT = "{values: {type: probe, match: {customer: $event.customer}, field: a}}"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (f"{{sum: {SPENT}}}", Decimal("30.30")),  # the current event is not its own history
        (f"{{sum: [{SPENT}, $event.a]}}", Decimal("35.30")),  # "so far plus this one"
        (f"{{avg: {SPENT}}}", Decimal("15.15")),  # p2's null is skipped, not a zero
        (f"{{min: {SPENT}}}", Decimal("10.10")),
        (f"{{max: [{SPENT}, $event.a]}}", Decimal("20.20")),
        (f"{{first: {SPENT}}}", Decimal("20.20")),  # the newest
        (f"{{len: {SPENT}}}", 3),
    ],
)
def test_aggregates_over_a_values_query(expr: str, expected: object) -> None:
    assert probe(expr, history=PAST_PROBES, a="5") == expected


def test_aggregates_over_an_empty_history() -> None:
    assert probe(f"{{sum: {SPENT}}}") == Decimal(0)
    assert probe(f"{{avg: {SPENT}}}") is None
    assert probe(f"{{first: {SPENT}}}") is None
    assert probe(f"{{sum: [{SPENT}, $event.a]}}", a="5") == Decimal(5)


def money(eid: str, etype: str, at: str, line: str, amount: str) -> dict[str, object]:
    return ev(eid, etype, at, customer="C", line=line, amount=amount)


OVER_BUDGET = """\
  - id: over-budget-line
    clause: C-1
    on: expense
    when:
      gt:
        - $event.amount
        - mul:
            - first: {values: {type: budget, match: {customer: $event.customer,
                                                     line: $event.line}, field: amount}}
            - $params.tolerance
    then: [{violation: {what: more than 5% over the budget line, party: $event.customer}}]
"""


@pytest.mark.parametrize(
    ("amount", "over"),
    [
        ("1049.99", False),
        ("1050.00", False),  # exactly 5% over is not more than 5% over
        ("1050.01", True),  # one cent more is
        ("999999", True),
    ],
)
def test_single_expense_more_than_5_percent_over_its_budget_line(amount: str, over: bool) -> None:
    d = numbers_policy(OVER_BUDGET).evaluate(
        [
            money("b", "budget", T0, "travel", "1000.00"),
            money("b2", "budget", T0, "food", "10"),
            money("e", "expense", "2026-03-02T10:00:00+08:00", "travel", amount),
        ]
    )
    assert [(v.what, v.event, v.party) for v in d.violations] == (
        [("more than 5% over the budget line", "e", "C")] if over else []
    )


def test_budget_check_uses_the_newest_budget_and_no_budget_is_no_breach() -> None:
    d = numbers_policy(OVER_BUDGET).evaluate(
        [
            money("b1", "budget", T0, "travel", "1000"),
            money("b2", "budget", "2026-03-02T10:00:00+08:00", "travel", "2000"),
            money("e1", "expense", "2026-03-03T10:00:00+08:00", "travel", "2100"),
            money("e2", "expense", "2026-03-03T11:00:00+08:00", "travel", "2100.01"),
            money("e3", "expense", "2026-03-03T12:00:00+08:00", "gifts", "1"),
        ]
    )
    assert [v.event for v in d.violations] == ["e2"]


OVER_CAP = """\
  - id: spend-before-breakthrough
    clause: C-1
    on: expense
    when:
      all:
        - not: {history: {type: breakthrough, match: {customer: $event.customer}}}
        - gt:
            - sum:
                - {values: {type: expense, match: {customer: $event.customer}, field: amount}}
                - $event.amount
            - $params.cap
    then: [{violation: {what: over 30000 before a breakthrough, party: $event.customer}}]
"""


@pytest.mark.parametrize(
    ("amounts", "breached"),
    [
        (["10000", "20000"], []),  # exactly the cap: not above it
        (["10000", "20000.01"], ["e1"]),
        (["30000"], []),  # the current expense is counted once, not also as history
        (["30000.01"], ["e0"]),
        (["29999.99", "0.01", "0.01"], ["e2"]),
        (["40000", "1"], ["e0", "e1"]),  # every expense while above the cap
    ],
)
def test_total_spend_above_the_cap_before_a_breakthrough(
    amounts: list[str], breached: list[str]
) -> None:
    history = [
        ev(f"e{i}", "expense", f"2026-03-0{i + 1}T10:00:00+08:00", customer="C", line="x", amount=a)
        for i, a in enumerate(amounts)
    ]
    other = ev("o", "expense", T0, customer="OTHER", line="x", amount="99999")
    d = numbers_policy(OVER_CAP).evaluate([other, *history])
    assert [v.event for v in d.violations if v.party == "C"] == breached


def test_spend_after_a_breakthrough_is_not_checked() -> None:
    d = numbers_policy(OVER_CAP).evaluate(
        [
            money("e0", "expense", T0, "x", "25000"),
            ev("bt", "breakthrough", "2026-03-02T10:00:00+08:00", customer="C"),
            money("e1", "expense", "2026-03-03T10:00:00+08:00", "x", "25000"),
        ]
    )
    assert d.violations == []


@pytest.mark.parametrize(
    ("cond", "a", "holds"),
    [
        ("{gt: [$event.a, $params.cap]}", "30000", False),
        ("{gt: [$event.a, $params.cap]}", "30000.01", True),
        ("{ge: [$event.a, $params.cap]}", "30000.00", True),
        ("{lt: [$params.cap, $event.a]}", "30000.01", True),
        ("{eq: [$params.cap, $event.a]}", "30000.0", True),
        ("{gt: [$event.a, $params.band]}", "1000", False),  # a range is not comparable
        ("{lt: [$event.a, $params.band]}", "1", False),
        ("{gt: [$event.a, {sub: [$params.cap, 1]}]}", "30000", True),
        ("{gt: [$event.a, {div: [1, 0]}]}", "1", False),  # null is never ordered
    ],
)
def test_money_parameter_in_comparisons(cond: str, a: str, holds: bool) -> None:
    rules = f"  - {{id: r, clause: C-1, on: probe, when: {cond}, then: [{{set: {{flag: hit}}}}]}}\n"
    d = numbers_policy(rules).evaluate([ev("p", "probe", T0, customer="C", a=a)])
    assert ("hit" in d.flags.get("C", {})) is holds


@pytest.mark.parametrize("cond", ["{gt: [$event.flag, 0]}", "{eq: [$event.flag, 1]}"])
def test_booleans_are_not_numbers_in_comparisons(cond: str) -> None:
    rules = f"  - {{id: r, clause: C-1, on: probe, when: {cond}, then: [{{set: {{flag: hit}}}}]}}\n"
    d = numbers_policy(rules).evaluate([ev("p", "probe", T0, customer="C", flag=True)])
    assert "hit" not in d.flags.get("C", {})


@pytest.mark.parametrize(
    "cond", ["{in: [$event.a, [0.1, 0.2]]}", "{eq: [{first: [0.1, 2]}, $event.a]}"]
)
def test_decimal_literals_inside_lists_are_exact(cond: str) -> None:
    rules = f"  - {{id: r, clause: C-1, on: probe, when: {cond}, then: [{{set: {{flag: hit}}}}]}}\n"
    d = numbers_policy(rules).evaluate([ev("p", "probe", T0, customer="C", a="0.1")])
    assert "hit" in d.flags.get("C", {})


# ---------------------------------------------------------------- parameter tables


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("minor", Decimal(50)),
        ("note", "serious"),  # text that is neither a number nor a range stays text
        ("missing", None),
    ],
)
def test_get_reads_a_table_row(key: str, expected: object) -> None:
    got = probe("{get: [$params.fines, $event.kind]}", kind=key)
    assert got == expected and type(got) is type(expected)


def test_get_with_a_null_key_or_a_non_table_is_null() -> None:
    assert probe("{get: [$params.fines, $event.kind]}") is None
    assert probe("{get: [$params.cap, minor]}") is None


TABLE_FINE = """\
  - id: fine
    clause: C-1
    on: probe
    then:
      - penalty: {party: E, sanction: fine, amount: {get: [$params.fines, $event.kind]}}
"""


def fines(policy: pe.Policy, kind: str) -> list[tuple[Decimal | None, Decimal | None, str | None]]:
    d = policy.evaluate([ev("p", "probe", T0, customer="C", kind=kind)])
    return [(x.amount_min, x.amount_max, x.currency) for x in d.penalties]


def test_table_row_as_a_penalty_amount() -> None:
    p = numbers_policy(TABLE_FINE)
    assert fines(p, "minor") == [(Decimal(50), Decimal(50), "CNY")]
    assert fines(p, "major") == [(Decimal(100), Decimal(300), "CNY")]  # "100-300" is a range


def test_table_override_replaces_named_rows_and_keeps_the_others() -> None:
    p = numbers_policy(TABLE_FINE, params={"fines": {"minor": 80, "grave": "500-800"}})
    assert fines(p, "minor") == [(Decimal(80), Decimal(80), "CNY")]
    assert fines(p, "major") == [(Decimal(100), Decimal(300), "CNY")]  # default kept
    assert fines(p, "grave") == [(Decimal(500), Decimal(800), "CNY")]  # a row may be added
    assert p.params["fines"]["note"] == "serious"
    # the declared defaults are untouched for other loads
    assert fines(numbers_policy(TABLE_FINE), "minor") == [(Decimal(50), Decimal(50), "CNY")]


@pytest.mark.parametrize("override", [{"fine": {"minor": 80}}, {"caps": 1}])
def test_an_undeclared_override_is_pe110(override: dict[str, Any]) -> None:
    with pytest.raises(pe.PolicyError) as info:
        numbers_policy(TABLE_FINE, params=override)
    assert [p.code for p in info.value.problems] == ["PE110"]
    assert repr(next(iter(override))) in info.value.problems[0].message


@pytest.mark.parametrize("kind", ["nope", "note"])
def test_a_penalty_amount_that_is_not_an_amount_is_an_evaluation_error(kind: str) -> None:
    """A missing row (null) or a text row never becomes a 0 CNY fine: evaluation stops and
    says which event and rule."""
    with pytest.raises(pe.EvaluationError) as info:
        fines(numbers_policy(TABLE_FINE), kind)
    assert (info.value.first.code, info.value.first.event_id) == ("PE305", "p")
    assert "'fine'" in info.value.first.message


def test_an_override_may_be_written_the_way_it_is_declared() -> None:
    p = numbers_policy(TABLE_FINE, params={"fines": {"table": {"minor": 70}}})
    assert fines(p, "minor") == [(Decimal(70), Decimal(70), "CNY")]
    assert fines(p, "major") == [(Decimal(100), Decimal(300), "CNY")]


def test_an_override_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(pe.PolicyError) as info:
        numbers_policy(TABLE_FINE, params={"fines": 5})
    assert info.value.first.code == "PE106"


# ---------------------------------------------------------------- time windows

WINDOWS = """\
policy: {id: windows, title: windows, version: "1", timezone: Asia/Shanghai}
clauses:
  - {id: C-1, text: 原文, reading: reading one}
params:
  reply_window: {duration: 2 working days}
events:
  complaint: {fields: {customer: str, employee: str}}
  reply: {fields: {customer: str, employee: str}}
rules:
  - id: reply
    clause: C-1
    on: complaint
    expect:
      event: reply
      match: {customer: $event.customer}
      within: WINDOW
      obligation: reply to the complaint
      party: $event.employee
"""


def window_policy(window: str = "$params.reply_window") -> pe.Policy:
    return pe.load_policy_text(WINDOWS.replace("WINDOW", window), "windows.yaml")


FRIDAY = "2026-02-13T10:00:00+08:00"  # the working Friday before the 2026 Spring Festival


def complaint(at: str = FRIDAY) -> dict[str, object]:
    return ev("c", "complaint", at, customer="C", employee="E")


def reply(at: str) -> dict[str, object]:
    return ev("r", "reply", at, customer="C", employee="E")


@pytest.mark.parametrize(
    ("reply_at", "status"),
    [
        ("2026-02-14T10:00:00+08:00", "met"),  # Saturday, an adjusted working day (day 1)
        ("2026-02-20T12:00:00+08:00", "met"),  # inside the holidays
        ("2026-02-24T10:00:00+08:00", "met"),  # Tuesday = working day 2: exactly the deadline
        ("2026-02-24T02:00:00Z", "met"),  # the same instant in UTC
        ("2026-02-24T10:00:01+08:00", "late"),
        ("2026-02-25T09:00:00+08:00", "late"),
    ],
)
def test_working_days_follow_the_statutory_calendar(reply_at: str, status: str) -> None:
    d = window_policy().evaluate([complaint(), reply(reply_at)])
    [o] = d.obligations
    assert o.due is not None and o.due.isoformat() == "2026-02-24T10:00:00+08:00"
    assert o.due_inclusive is True
    assert (o.status, o.met_by) == (status, "r")


@pytest.mark.parametrize(
    ("as_of", "status"),
    [
        ("2026-02-16T10:00:00+08:00", "open"),  # a plain "2 days" would be overdue here
        ("2026-02-24T09:59:59+08:00", "open"),
        ("2026-02-24T10:00:00+08:00", "open"),  # inclusive: not overdue at the deadline
        ("2026-02-24T10:00:01+08:00", "overdue"),
    ],
)
def test_working_day_duty_open_until_its_deadline(as_of: str, status: str) -> None:
    d = window_policy().evaluate([complaint()], as_of=as_of)
    assert [(o.status, o.due.isoformat() if o.due else None) for o in d.obligations] == [
        (status, "2026-02-24T10:00:00+08:00")
    ]


def test_working_day_windows_on_ordinary_weeks() -> None:
    d = window_policy().evaluate([complaint("2026-03-06T17:30:00+08:00")], as_of=T0)
    assert d.obligations == []  # the complaint is after as_of
    d = window_policy().evaluate([complaint("2026-03-06T17:30:00+08:00")])  # a Friday
    assert d.obligations[0].due.isoformat() == "2026-03-10T17:30:00+08:00"  # Tuesday


@pytest.mark.parametrize(
    "at",
    [
        "2031-03-03T10:00:00+08:00",  # a year the calendar does not know
        "2026-12-31T10:00:00+08:00",  # a known day whose window runs into an unknown year
    ],
)
def test_working_days_outside_the_calendar_are_an_evaluation_error(at: str) -> None:
    with pytest.raises(pe.EvaluationError) as info:
        window_policy().evaluate([complaint(at)])
    [problem] = info.value.problems
    assert problem.code == "PE302" and problem.event_id == "c"
    assert "outside the years" in problem.message
    assert isinstance(info.value, pe.PolicyEngineError)


def test_calendar_day_windows_need_no_calendar() -> None:
    d = window_policy("2 days").evaluate([complaint("2031-03-03T10:00:00+08:00")])
    assert d.obligations[0].due.isoformat() == "2031-03-05T10:00:00+08:00"


@pytest.mark.parametrize(
    ("window", "reply_at", "status"),
    [
        ("4 hours", "2026-03-01T14:00:00+08:00", "met"),
        ("4 hours", "2026-03-01T14:00:01+08:00", "late"),
        ("4 小时", "2026-03-01T14:00:00+08:00", "met"),
        ("1 minute", "2026-03-01T10:01:00+08:00", "met"),
        ("1 minute", "2026-03-01T10:01:00.000001+08:00", "late"),  # one microsecond over
        ("5 分钟", "2026-03-01T10:05:01+08:00", "late"),
    ],
)
def test_hour_and_minute_windows_at_their_edges(window: str, reply_at: str, status: str) -> None:
    d = window_policy(window).evaluate([complaint(T0), reply(reply_at)])
    assert [o.status for o in d.obligations] == [status]


# ---------------------------------------------------------------- params files


@pytest.mark.parametrize(
    "content",
    [
        "params:\n  reply_window: 3 working days\n",
        "reply_window: 3 working days\n",  # the bare mapping
    ],
)
def test_params_file_overrides_a_duration(tmp_path: Path, content: str) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(WINDOWS.replace("WINDOW", "$params.reply_window"), encoding="utf-8")
    params_file = tmp_path / "company.yaml"
    params_file.write_text(content, encoding="utf-8")
    history = [complaint("2026-03-02T10:00:00+08:00")]  # a Monday
    default = pe.load_policy(policy_file).evaluate(history)
    company = pe.load_policy(policy_file, params_file=params_file).evaluate(history)
    assert default.obligations[0].due.isoformat() == "2026-03-04T10:00:00+08:00"
    assert company.obligations[0].due.isoformat() == "2026-03-05T10:00:00+08:00"
    # explicit params win over the file
    both = pe.load_policy(
        policy_file, params={"reply_window": "1 working day"}, params_file=params_file
    ).evaluate(history)
    assert both.obligations[0].due.isoformat() == "2026-03-03T10:00:00+08:00"


def test_params_file_naming_an_undeclared_parameter_is_pe110(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(WINDOWS.replace("WINDOW", "$params.reply_window"), encoding="utf-8")
    params_file = tmp_path / "company.yaml"
    params_file.write_text("params:\n  reply_windw: 3 working days\n", encoding="utf-8")
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy(policy_file, params_file=params_file)
    assert info.value.first.code == "PE110"


# ---------------------------------------------------------------- metrics with value and grades

SCORES = """\
policy: {id: scores, title: scores, version: "1", timezone: Asia/Shanghai}
clauses:
  - {id: C-1, text: 原文, reading: reading one}
  - {id: C-2, text: 原文, reading: reading two}
params:
  weights: {table: {A: 1, B: 2.5}}
  bonus: {table: {"2026-03": 5, "2026-04": 7}}
events:
  scored:
    fields:
      employee: str
      points: "decimal?"
      speed: "decimal?"
      source: {type: str, enum: [self, boss], default: boss}
rules: []
metrics:
"""

SCORED_PARTIES = "{values: {type: scored, since: $event.start, field: employee}}"


def avg_of(field: str, source: str | None = None) -> str:
    match = "{employee: $party" + (f", source: {source}" if source else "") + "}"
    query = f"{{type: scored, match: {match}, since: $event.start, field: {field}}}"
    return f"{{avg: {{values: {query}}}}}"


GRADES = """\
    grades:
      - {grade: excellent, min: 90}
      - {grade: good, min: 80}
      - {grade: pass, min: 60}
      - {grade: fail}
"""

MEAN = f"""\
  - id: mean
    clause: C-1
    parties: {SCORED_PARTIES}
    value: {avg_of("points")}
"""


def scores_policy(metrics: str, awards: str = "") -> pe.Policy:
    return pe.load_policy_text(SCORES + metrics + awards, "scores.yaml")


def scored(eid: str, at: str, employee: str, **fields: object) -> dict[str, object]:
    return ev(eid, "scored", at, employee=employee, **fields)


@pytest.mark.parametrize(
    ("points", "grade"),
    [
        ("100", "excellent"),
        ("90", "excellent"),  # exactly the threshold earns it
        ("89.99", "good"),
        ("80.00", "good"),
        ("79.999", "pass"),
        ("60", "pass"),
        ("59.99", "fail"),
        ("0", "fail"),
    ],
)
def test_metric_value_is_graded_at_exact_thresholds(points: str, grade: str) -> None:
    d = scores_policy(MEAN + GRADES).evaluate(
        [scored("s", "2026-03-10T10:00:00+08:00", "A", points=points)],
        as_of="2026-04-01T00:00:00+08:00",
    )
    [mt] = d.metrics
    assert (mt.rule, mt.party, mt.period, mt.value, mt.grade) == (
        "mean",
        "A",
        "2026-03",
        Decimal(points),
        grade,
    )
    assert type(mt.value) is Decimal
    assert (mt.target, mt.met, mt.comparison, mt.denominator) == (None, None, None, None)
    assert mt.complete is True and mt.clause == "C-1"


def test_grades_and_a_target_together() -> None:
    metric = MEAN + "    target: {ge: 80}\n" + GRADES
    d = scores_policy(metric).evaluate(
        [
            scored("s1", "2026-03-10T10:00:00+08:00", "A", points="80"),
            scored("s2", "2026-03-10T10:00:00+08:00", "B", points="79.99"),
        ]
    )
    rows = sorted((m.party, m.met, m.comparison, m.target, m.grade) for m in d.metrics)
    assert rows == [("A", True, "ge", Decimal(80), "good"), ("B", False, "ge", Decimal(80), "pass")]


def test_a_metric_without_target_or_grades_reports_its_value() -> None:
    """README: target and grades are both optional (OS-4's satisfaction has neither)."""
    d = scores_policy(MEAN).evaluate(
        [
            scored("s1", "2026-03-10T10:00:00+08:00", "A", points="70"),
            scored("s2", "2026-03-11T10:00:00+08:00", "A", points="75"),
            scored("s3", "2026-03-12T10:00:00+08:00", "A"),  # no points: skipped, not a zero
        ]
    )
    [mt] = d.metrics
    assert (mt.value, mt.grade, mt.met, mt.target) == (Decimal("72.5"), None, None, None)


def test_a_null_value_is_not_reported() -> None:
    d = scores_policy(MEAN + GRADES).evaluate(
        [scored("s", "2026-03-10T10:00:00+08:00", "A", speed="3")]
    )
    assert d.metrics == []


def test_metric_periods_are_local_calendar_months_plus_the_unfinished_one() -> None:
    d = scores_policy(MEAN).evaluate(
        [
            scored("s1", "2026-03-31T15:59:59Z", "A", points="10"),  # 23:59:59 local: March
            scored("s2", "2026-03-31T16:00:00Z", "A", points="20"),  # 00:00 local: April
            scored("s3", "2026-04-02T10:00:00+08:00", "A", points="40"),
        ],
        as_of="2026-04-10T00:00:00+08:00",
    )
    assert [(m.period, m.value, m.complete) for m in d.metrics] == [
        ("2026-03", Decimal(10), True),
        ("2026-04", Decimal(30), False),
    ]


def test_no_unfinished_period_when_as_of_is_the_period_start() -> None:
    d = scores_policy(MEAN).evaluate(
        [scored("s1", "2026-03-10T10:00:00+08:00", "A", points="10")],
        as_of="2026-04-01T00:00:00+08:00",
    )
    assert [(m.period, m.complete) for m in d.metrics] == [("2026-03", True)]
    d = scores_policy(MEAN).evaluate(
        [scored("s1", "2026-03-10T10:00:00+08:00", "A", points="10")],
        as_of="2026-03-31T23:59:59+08:00",
    )
    assert [(m.period, m.complete) for m in d.metrics] == [("2026-03", False)]


def test_metric_context_binds_party_and_period() -> None:
    metrics = """\
  - id: weighted
    clause: C-1
    parties: [A, B, Z]
    value: {mul: [{get: [$params.weights, $party]}, {get: [$params.bonus, $event.period]}]}
  - id: bounds
    clause: C-2
    parties: [{date: $event.start}, {date: $event.end}]
    value: {count: {type: scored, since: $event.start}}
"""
    d = scores_policy(metrics).evaluate(
        [
            scored("s0", "2026-02-28T10:00:00+08:00", "A", points="1"),  # before March
            scored("s1", "2026-03-01T00:00:00+08:00", "A", points="1"),  # the period's start
            scored("s2", "2026-04-05T00:00:00+08:00", "A", points="1"),
        ],
        as_of="2026-04-10T00:00:00+08:00",
    )
    rows = [(m.rule, m.party, m.period, m.value, m.complete) for m in d.metrics]
    assert [r for r in rows if r[2] != "2026-02"] == [
        # Z has no weight: a null value, not reported
        ("weighted", "A", "2026-03", Decimal(5), True),
        ("weighted", "B", "2026-03", Decimal("12.5"), True),
        ("bounds", "2026-03-01", "2026-03", 1, True),
        ("bounds", "2026-04-01", "2026-03", 1, True),
        ("weighted", "A", "2026-04", Decimal(7), False),
        ("weighted", "B", "2026-04", Decimal("17.5"), False),
        # the unfinished period still ends at the month's end, not at as_of
        ("bounds", "2026-04-01", "2026-04", 1, False),
        ("bounds", "2026-05-01", "2026-04", 1, False),
    ]


COMPOSITE = f"""\
  - id: self-score
    clause: C-1
    parties: {SCORED_PARTIES}
    value: {avg_of("points", "self")}
  - id: boss-score
    clause: C-1
    parties: {SCORED_PARTIES}
    value: {avg_of("points", "boss")}
  - id: composite
    clause: [C-1, C-2]
    parties: {SCORED_PARTIES}
    value:
      add:
        - {{mul: [{{metric: self-score}}, 0.4]}}
        - {{mul: [{{metric: boss-score}}, 0.6]}}
{GRADES}"""


def test_composite_metric_reads_earlier_metrics_of_the_same_party_and_period() -> None:
    d = scores_policy(COMPOSITE).evaluate(
        [
            scored("a1", "2026-03-02T10:00:00+08:00", "A", points="80", source="self"),
            scored("a2", "2026-03-03T10:00:00+08:00", "A", points="90", source="boss"),
            scored("b1", "2026-03-02T10:00:00+08:00", "B", points="100", source="self"),
            scored("b2", "2026-03-03T10:00:00+08:00", "B", points="70", source="boss"),
            scored("c1", "2026-03-03T10:00:00+08:00", "C", points="99", source="boss"),
            # April: A has only a self score; March's boss score must not leak into it
            scored("a3", "2026-04-02T10:00:00+08:00", "A", points="50", source="self"),
        ],
        as_of="2026-04-10T00:00:00+08:00",
    )
    rows = [m for m in d.metrics if m.rule == "composite"]
    assert {(m.party, m.period): (m.value, m.grade) for m in rows} == {
        ("A", "2026-03"): (Decimal("86.0"), "good"),  # 0.4 * 80 + 0.6 * 90
        ("B", "2026-03"): (Decimal("82.0"), "good"),  # 0.4 * 100 + 0.6 * 70
        # C has no self score: no composite (add needs every part)
    }
    [row] = [m for m in d.metrics if m.rule == "composite" and m.party == "A"]
    assert row.clauses == ["C-1", "C-2"] and row.clause == ["C-1", "C-2"]


@pytest.mark.parametrize(
    ("metrics", "needle"),
    [
        # a later metric
        (
            COMPOSITE.replace(avg_of("points", "self"), "{metric: composite}"),
            "composite",
        ),
        # an unknown one
        (COMPOSITE.replace("{metric: boss-score}", "{metric: bos-score}"), "bos-score"),
    ],
)
def test_metric_reference_must_name_an_earlier_metric(metrics: str, needle: str) -> None:
    with pytest.raises(pe.PolicyError) as info:
        scores_policy(metrics)
    [problem] = info.value.problems
    assert problem.code == "PE117" and needle in problem.message


def test_metric_reference_outside_a_metric_is_refused() -> None:
    rule = "  - {id: r, clause: C-1, on: scored, then: [{add: {counter: x, party: E,\n"
    rule += "      by: {metric: mean}}}]}\n"
    text = SCORES.replace("rules: []\n", "rules:\n" + rule) + MEAN
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy_text(text, "scores.yaml")
    assert info.value.first.code == "PE117"


@pytest.mark.parametrize(
    "extra",
    [
        "    numerator: 1\n",  # value and numerator
        "    denominator: 2\n",  # value with a denominator
    ],
)
def test_metric_value_excludes_a_ratio(extra: str) -> None:
    with pytest.raises(pe.PolicyError) as info:
        scores_policy(MEAN + extra)
    [problem] = info.value.problems
    assert problem.code == "PE102" and "numerator" in problem.message


def test_metric_needs_a_value_or_a_numerator() -> None:
    metric = f"  - id: empty\n    clause: C-1\n    parties: {SCORED_PARTIES}\n" + GRADES
    with pytest.raises(pe.PolicyError) as info:
        scores_policy(metric)
    [problem] = info.value.problems
    assert problem.code == "PE102" and "`value` or `numerator`" in problem.message


# ---------------------------------------------------------------- awards

RANKED = f"""\
  - id: score
    clause: C-1
    parties: {SCORED_PARTIES}
    value: {avg_of("points")}
  - id: speed
    clause: C-1
    parties: {SCORED_PARTIES}
    value: {avg_of("speed")}
"""

STAR = """\
awards:
  - id: star
    clause: C-2
    title: 服务之星
    metric: score
    tie_break: [{metric: speed, order: lowest}]
"""


def star_winners(history: list[dict[str, object]], awards: str = STAR, **kw: Any) -> list[Any]:
    return scores_policy(RANKED, awards).evaluate(history, **kw).awards


def rate(eid: str, employee: str, points: str | None = None, speed: str | None = None) -> Any:
    fields = {k: v for k, v in {"points": points, "speed": speed}.items() if v is not None}
    return scored(eid, "2026-03-10T10:00:00+08:00", employee, **fields)


def test_award_goes_to_the_best_value() -> None:
    [award] = star_winners(
        [rate("a", "A", "90", "5"), rate("b", "B", "95", "9"), rate("c", "C", "94.99", "1")],
        as_of="2026-04-01T00:00:00+08:00",
    )
    assert (award.rule, award.clause, award.clauses) == ("star", "C-2", ["C-2"])
    assert award.title == "服务之星"
    assert (award.party, award.period, award.place, award.complete) == ("B", "2026-03", 1, True)
    assert award.metrics == {"score": Decimal(95), "speed": Decimal(9)}


def test_tie_is_broken_by_the_tie_break_metric() -> None:
    [award] = star_winners(
        [rate("a", "A", "90", "5"), rate("b", "B", "90", "3"), rate("c", "C", "90", "4")]
    )
    assert award.party == "B"  # speed: lowest first


def test_remaining_ties_go_to_the_lowest_party_id() -> None:
    [award] = star_winners(
        [rate("z", "Z", "90", "3"), rate("m", "M", "90", "3"), rate("x", "X", "80", "1")]
    )
    assert award.party == "M"


def test_a_party_without_a_tie_break_value_ranks_after_those_with_one() -> None:
    [award] = star_winners([rate("a", "A", "90"), rate("b", "B", "90", "100")])
    assert (award.party, award.metrics) == ("B", {"score": Decimal(90), "speed": Decimal(100)})


def test_order_lowest_and_several_winners() -> None:
    awards = STAR.replace("order: lowest", "order: highest").replace(
        "metric: score\n", "metric: score\n    order: lowest\n    winners: 2\n"
    )
    got = star_winners(
        [
            rate("a", "A", "70", "1"),
            rate("b", "B", "60", "1"),
            rate("c", "C", "60", "2"),
            rate("d", "D", "50.5"),
        ],
        awards=awards,
    )
    assert [(a.place, a.party, a.metrics["score"]) for a in got] == [
        (1, "D", Decimal("50.5")),
        (2, "C", Decimal(60)),  # tie with B on score; speed now highest first
    ]


def test_a_party_without_a_value_for_the_metric_does_not_compete() -> None:
    awards = STAR.replace("metric: score\n", "metric: score\n    winners: 5\n")
    got = star_winners([rate("a", "A", speed="1"), rate("b", "B", "10", "9")], awards=awards)
    assert [(a.place, a.party) for a in got] == [(1, "B")]


def test_no_measured_party_means_no_award() -> None:
    assert star_winners([rate("a", "A", speed="1")]) == []


def test_each_period_has_its_own_winner() -> None:
    got = star_winners(
        [
            rate("a", "A", "90", "1"),
            rate("b", "B", "80", "1"),
            scored("b2", "2026-04-02T10:00:00+08:00", "B", points="99"),
            scored("a2", "2026-04-03T10:00:00+08:00", "A", points="98"),
        ],
        as_of="2026-04-10T00:00:00+08:00",
    )
    assert [(a.period, a.party, a.complete) for a in got] == [
        ("2026-03", "A", True),
        ("2026-04", "B", False),  # the unfinished month's standing so far
    ]
    assert got[1].metrics == {"score": Decimal(99), "speed": None}


@pytest.mark.parametrize(
    ("awards", "needle"),
    [
        (STAR.replace("metric: score", "metric: scor"), "'scor'"),
        (STAR.replace("{metric: speed", "{metric: sped"), "'sped'"),
    ],
)
def test_award_naming_an_unknown_metric_is_a_policy_error(awards: str, needle: str) -> None:
    with pytest.raises(pe.PolicyError) as info:
        scores_policy(RANKED, awards)
    [problem] = info.value.problems
    assert problem.code == "PE117" and needle in problem.message


# ---------------------------------------------------------------- event-triggered labels

RETURNS = """\
policy: {id: returns, title: returns, version: "1", timezone: Asia/Shanghai}
clauses:
  - {id: C-1, text: 原文, reading: reading one}
  - {id: C-2, text: 原文, reading: reading two}
events:
  return_requested:
    fields:
      customer: str
      case: str
      amount: decimal
      issue: [damaged, wrong_item, changed_mind]
  purchase: {fields: {customer: str, amount: decimal}}
rules:
  - id: too-big
    clause: C-1
    on: return_requested
    when: {gt: [$event.amount, 10000]}
    then: [{reject: amount beyond what a request may claim}]
labels:
  tier:
    clause: C-1
    cases:
      - {value: big, when: {ge: [{sum: {values: {type: purchase, match: {customer: $subject},
                                                   field: amount}}}, 1000]}}
      - {value: small}
  decision:
    clause: [C-1, C-2]
    on: return_requested
    subject: $event.case
    cases:
      - value: exchange
        when: {eq: [$event.issue, wrong_item]}
        reason: the wrong item was sent
      - value: refused
        when: {history: {type: return_requested, match: {customer: $event.customer}}}
        reason: one return per customer
      - value: refund
        when: {le: [$event.amount, {sum: {values: {type: purchase,
                                                    match: {customer: $event.customer},
                                                    field: amount}}}]}
        reason: within what was bought
"""


def returns_policy(text: str = RETURNS) -> pe.Policy:
    return pe.load_policy_text(text, "returns.yaml")


def request(eid: str, at: str, case: str, amount: str, issue: str, customer: str = "C1") -> Any:
    return ev(eid, "return_requested", at, customer=customer, case=case, amount=amount, issue=issue)


BOUGHT = ev("buy", "purchase", T0, customer="C1", amount="500")


def test_an_event_classifies_what_it_names_with_the_reason() -> None:
    d = returns_policy().evaluate(
        [BOUGHT, request("q1", "2026-03-02T10:00:00+08:00", "R1", "500", "damaged")]
    )
    [c] = d.classifications
    assert (c.label, c.clause, c.clauses) == ("decision", ["C-1", "C-2"], ["C-1", "C-2"])
    assert (c.subject, c.value, c.reason, c.event, c.customer) == (
        "R1",
        "refund",
        "within what was bought",
        "q1",
        "C1",
    )
    assert c.at.isoformat() == "2026-03-02T10:00:00+08:00"
    assert d.classification("R1", "decision") == c
    assert d.labels("R1") == {"decision": "refund"}
    # the customer keeps its as_of label, and is not given the case's
    assert d.labels("C1") == {"tier": "small"}


@pytest.mark.parametrize(
    ("amount", "issue", "value"),
    [
        ("500", "wrong_item", "exchange"),  # refund holds too: the first case wins
        ("500.00", "damaged", "refund"),  # exactly what was bought
        ("500.01", "damaged", None),  # no case holds
        ("9999", "changed_mind", None),
    ],
)
def test_first_case_that_holds_wins_and_none_gives_null(
    amount: str, issue: str, value: str | None
) -> None:
    d = returns_policy().evaluate(
        [BOUGHT, request("q1", "2026-03-02T10:00:00+08:00", "R1", amount, issue)]
    )
    c = d.classification("R1", "decision")
    assert c is not None and c.value == value
    assert (c.reason is None) is (value is None)
    assert d.labels("R1") == {"decision": value}


def test_a_later_event_reclassifies_and_the_latest_wins() -> None:
    d = returns_policy().evaluate(
        [
            BOUGHT,
            request("q1", "2026-03-02T10:00:00+08:00", "R1", "100", "damaged"),
            request("q2", "2026-03-03T10:00:00+08:00", "R1", "100", "damaged"),
            request("q3", "2026-03-04T10:00:00+08:00", "R2", "100", "wrong_item"),
        ]
    )
    assert [(c.subject, c.event, c.value) for c in d.classifications] == [
        ("R1", "q1", "refund"),
        ("R1", "q2", "refused"),  # q1 is now in the history; q2 is not its own history
        ("R2", "q3", "exchange"),
    ]
    latest = d.classification("R1", "decision")
    assert latest is not None and (latest.event, latest.value) == ("q2", "refused")
    assert d.labels("R1") == {"decision": "refused"}
    assert d.classification("R1", "tier") is None and d.classification("R9", "decision") is None


def test_classification_is_taken_when_the_event_happens() -> None:
    """A purchase after the request does not change how the request was classified."""
    events = [
        request("q1", "2026-03-02T10:00:00+08:00", "R1", "500", "damaged"),
        ev("buy", "purchase", "2026-03-03T10:00:00+08:00", customer="C1", amount="5000"),
    ]
    d = returns_policy().evaluate(events)
    assert [c.value for c in d.classifications] == [None]
    assert d.labels("C1") == {"tier": "big"}  # as_of labels see the whole history
    assert returns_policy().evaluate(events, as_of=T0).classifications == []


def test_a_rejected_event_classifies_nothing() -> None:
    d = returns_policy().evaluate(
        [BOUGHT, request("q1", "2026-03-02T10:00:00+08:00", "R1", "10000.01", "wrong_item")]
    )
    assert d.classifications == [] and d.labels("R1") == {}
    assert [r.event for r in d.rejected] == ["q1"]


def test_without_subject_an_event_classifies_its_own_subject() -> None:
    text = RETURNS.replace("    subject: $event.case\n", "")
    d = returns_policy(text).evaluate(
        [BOUGHT, request("q1", "2026-03-02T10:00:00+08:00", "R1", "5", "damaged")]
    )
    [c] = d.classifications
    assert (c.subject, c.customer, c.value) == ("C1", "C1", "refund")
    assert d.labels("C1") == {"tier": "small", "decision": "refund"}


def test_subject_without_on_is_a_policy_error() -> None:
    with pytest.raises(pe.PolicyError) as info:
        returns_policy(RETURNS.replace("    on: return_requested\n    subject:", "    subject:"))
    [problem] = info.value.problems
    assert problem.code == "PE102" and "needs `on:`" in problem.message


def test_label_on_an_unknown_event_type_is_a_policy_error() -> None:
    with pytest.raises(pe.PolicyError) as info:
        returns_policy(RETURNS.replace("on: return_requested", "on: return_request"))
    assert info.value.first.code == "PE109"


def test_as_of_labels_are_unchanged_by_event_labels() -> None:
    d = returns_policy().evaluate(
        [BOUGHT, ev("b2", "purchase", "2026-03-02T10:00:00+08:00", customer="C1", amount="500")]
    )
    assert d.labels("C1") == {"tier": "big"}  # exactly 1000
    assert d.classifications == []
    assert returns_policy().evaluate([BOUGHT]).labels("C1") == {"tier": "small"}
