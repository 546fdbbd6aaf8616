"""Issue 16: ladders counted in a rolling window or per calendar period, credits (positive money
entries) and ``{round: [x, digits, mode]}``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import policyengine as pe
from policyengine import distributed
from test_distributed import assert_same
from test_oracle import check_every_cut

Event = dict[str, Any]

HEADER = """\
policy: {id: ladders, title: ladders and credits, version: "1", timezone: Asia/Shanghai}
clauses:
  - {id: L-1, text: 迟到, reading: lateness}
params:
  lookback: {duration: 90 days}
events:
  late: {fields: {customer: str, employee: str}}
  absent: {fields: {customer: str, employee: str}}
  sale: {fields: {customer: str, employee: str, amount: decimal}}
"""

LADDER = "[{sanction: warning}, {sanction: fine, amount: 50}, {sanction: fine, amount: 100}]"


def load(rules: str) -> pe.Policy:
    return pe.load_policy_text(HEADER + "rules:\n" + rules, "p.yaml")


def rule(rid: str, on: str, penalty: str) -> str:
    return f"  - id: {rid}\n    clause: L-1\n    on: {on}\n    then:\n      - penalty: {penalty}\n"


def ev(eid: str, etype: str, at: str, customer: str = "C1", **fields: Any) -> Event:
    return {"id": eid, "type": etype, "at": at, "customer": customer, "employee": "li", **fields}


def offences(d: pe.Decision) -> list[tuple[str, int, str]]:
    return [(p.events[-1], p.offence, p.sanction) for p in d.penalties]


def evaluate(policy: pe.Policy, events: list[Event], as_of: str) -> pe.Decision:
    return policy.evaluate(events, as_of=as_of, resumable=False)


# ---------------------------------------------------------------- windows


WINDOWED = rule("late", "late", f"{{party: $event.employee, window: 7 days, ladder: {LADDER}}}")


def test_an_offence_at_the_window_start_edge_counts() -> None:
    policy = load(WINDOWED)
    events = [
        ev("a", "late", "2026-03-02T10:00:00+08:00"),
        ev("b", "late", "2026-03-09T10:00:00+08:00"),  # exactly 7 days later: a counts
    ]
    d = evaluate(policy, events, "2026-03-20T00:00:00+08:00")
    assert offences(d) == [("a", 1, "warning"), ("b", 2, "fine")]


@pytest.mark.parametrize("late", ["10:00:00.000001", "10:00:01"])
def test_an_offence_just_outside_the_window_does_not(late: str) -> None:
    policy = load(WINDOWED)
    events = [
        ev("a", "late", "2026-03-02T10:00:00+08:00"),
        ev("b", "late", f"2026-03-09T{late}+08:00"),
    ]
    d = evaluate(policy, events, "2026-03-20T00:00:00+08:00")
    assert offences(d) == [("a", 1, "warning"), ("b", 1, "warning")]


def test_the_window_rolls_and_the_last_step_repeats() -> None:
    policy = load(WINDOWED)
    days = ["02", "03", "04", "05", "12"]
    events = [ev(f"e{d}", "late", f"2026-03-{d}T10:00:00+08:00") for d in days]
    d = evaluate(policy, events, "2026-03-20T00:00:00+08:00")
    # on the 12th the window [5th 10:00, 12th 10:00] holds the 5th only
    assert [p.offence for p in d.penalties] == [1, 2, 3, 4, 2]
    assert [p.amount_min for p in d.penalties] == [None, 50, 100, 100, 50]


def test_a_window_from_a_parameter_and_a_month_window_at_month_end() -> None:
    policy = load(
        rule(
            "late",
            "late",
            f"{{party: $event.employee, window: $params.lookback, ladder: {LADDER}}}",
        )
        + rule("absent", "absent", f"{{party: $event.employee, window: 1 month, ladder: {LADDER}}}")
    )
    events = [
        ev("a", "late", "2026-01-01T09:00:00+08:00"),
        ev("b", "late", "2026-04-01T09:00:00+08:00"),  # 90 days after a
        ev("c", "late", "2026-06-30T09:00:00.000001+08:00"),  # 90 days after b, and a µs
        # 31 Jan + 1 month = 28 Feb: on 28 Feb the 31 Jan absence is still in the month
        ev("x", "absent", "2026-01-31T09:00:00+08:00"),
        ev("y", "absent", "2026-02-28T09:00:00+08:00"),
        ev("z", "absent", "2026-03-31T09:00:01+08:00"),
    ]
    d = evaluate(policy, events, "2026-07-01T00:00:00+08:00")
    got = {p.events[-1]: p.offence for p in d.penalties}
    assert got == {"a": 1, "b": 2, "c": 1, "x": 1, "y": 2, "z": 1}


# ---------------------------------------------------------------- calendar periods


def test_per_month_restarts_at_local_midnight_of_the_first() -> None:
    policy = load(rule("late", "late", f"{{party: $event.employee, per: month, ladder: {LADDER}}}"))
    events = [
        ev("a", "late", "2026-03-01T00:00:00+08:00"),
        ev("b", "late", "2026-03-31T23:59:59.999999+08:00"),
        # 2026-03-31T16:00:00Z is midnight of 1 April in Shanghai: a new month
        ev("c", "late", "2026-03-31T16:00:00Z"),
        ev("d", "late", "2026-04-15T10:00:00+08:00"),
        ev("e", "late", "2026-04-30T15:59:59Z"),
    ]
    d = evaluate(policy, events, "2026-05-01T00:00:00+08:00")
    assert [(x, n) for x, n, _ in offences(d)] == [("a", 1), ("b", 2), ("c", 1), ("d", 2), ("e", 3)]


@pytest.mark.parametrize(
    ("per", "second", "expected"),
    [
        ("day", "2026-03-02T23:59:59+08:00", 2),
        ("day", "2026-03-03T00:00:00+08:00", 1),
        ("week", "2026-03-08T23:00:00+08:00", 2),  # Sunday: the ISO week from Monday 2 March
        ("week", "2026-03-09T00:00:00+08:00", 1),
        ("year", "2026-12-31T23:59:59+08:00", 2),
        ("year", "2027-01-01T00:00:00+08:00", 1),
    ],
)
def test_per_day_week_year(per: str, second: str, expected: int) -> None:
    text = f"{{party: $event.employee, ladder: {{per: {per}, steps: {LADDER}}}}}"
    policy = load(rule("late", "late", text))
    events = [ev("a", "late", "2026-03-02T00:00:00+08:00"), ev("b", "late", second)]
    d = evaluate(policy, events, "2027-01-02T00:00:00+08:00")
    assert [p.offence for p in d.penalties] == [1, expected]


def test_a_key_shared_by_a_windowed_and_a_whole_history_ladder() -> None:
    """Each offence is numbered by its own rule's counting, over every offence of the key."""
    policy = load(
        rule(
            "late",
            "late",
            "{party: $event.employee, ladder: {key: attendance, window: 7 days, "
            f"steps: {LADDER}}}}}",
        )
        + rule(
            "absent",
            "absent",
            f"{{party: $event.employee, ladder_key: attendance, ladder: {LADDER}}}",
        )
    )
    events = [
        ev("a", "absent", "2026-03-01T10:00:00+08:00"),
        ev("b", "late", "2026-03-02T10:00:00+08:00"),  # a is in its 7 days
        ev("c", "late", "2026-03-20T10:00:00+08:00"),  # none in its 7 days
        ev("d", "absent", "2026-03-21T10:00:00+08:00"),  # the whole history: a, b, c
        ev("e", "late", "2026-03-22T10:00:00+08:00"),  # c and d
    ]
    d = evaluate(policy, events, "2026-04-01T00:00:00+08:00")
    assert [(x, n) for x, n, _ in offences(d)] == [("a", 1), ("b", 2), ("c", 1), ("d", 4), ("e", 3)]


def test_offences_at_the_same_instant_count_each_other() -> None:
    policy = load(WINDOWED)
    events = [
        ev("a", "late", "2026-03-02T10:00:00+08:00", customer="C1"),
        ev("b", "late", "2026-03-02T10:00:00+08:00", customer="C2"),
    ]
    d = evaluate(policy, events, "2026-03-03T00:00:00+08:00")
    assert [p.offence for p in d.penalties] == [1, 2]


# ---------------------------------------------------------------- credits


CREDITS = """\
  - id: commission
    clause: L-1
    on: sale
    then:
      - credit:
          party: $event.employee
          kind: commission
          amount: {round: [{mul: [$event.amount, 0.025]}, 2]}
      - {credit: {party: $event.employee, kind: reward, amount: 10, currency: USD}}
"""


def test_credits_are_decision_entries() -> None:
    policy = load(CREDITS)
    events = [ev("s1", "sale", "2026-03-02T10:00:00+08:00", amount="5")]
    d = evaluate(policy, events, "2026-03-03T00:00:00+08:00")
    assert [c.amount for c in d.credits] == [Decimal("0.13"), Decimal(10)]
    assert d.credits_of("li") == d.credits and d.penalties == []
    dumped = d.model_dump(mode="json")["credits"]
    assert dumped == [
        {
            "party": "li",
            "kind": "commission",
            "amount": "0.13",
            "currency": "CNY",
            "subject": "C1",
            "at": "2026-03-02T10:00:00+08:00",
            "event": "s1",
            "rule": "commission",
            "clause": "L-1",
            "clauses": ["L-1"],
            "events": ["s1"],
        },
        {
            "party": "li",
            "kind": "reward",
            "amount": "10",
            "currency": "USD",
            "subject": "C1",
            "at": "2026-03-02T10:00:00+08:00",
            "event": "s1",
            "rule": "commission",
            "clause": "L-1",
            "clauses": ["L-1"],
            "events": ["s1"],
        },
    ]
    assert [t.kind for t in d.trace] == ["credit", "credit"]
    from policyengine.tools.tables import render

    assert "credits (2)" in render(d)
    assert "credit: li commission ¥0.13" in d.explain("C1")
    assert "credit: li reward $10" in d.explain("C1")


def test_a_negative_computed_credit_stops_the_evaluation() -> None:
    policy = load(CREDITS)
    events = [ev("s1", "sale", "2026-03-02T10:00:00+08:00", amount="-5")]
    with pytest.raises(pe.EvaluationError) as info:
        evaluate(policy, events, "2026-03-03T00:00:00+08:00")
    [p] = info.value.problems
    assert p.code == "PE305" and p.event_id == "s1"


# ---------------------------------------------------------------- round


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("[0.125, 2]", "0.13"),
        ("[-0.125, 2]", "-0.13"),
        ("[0.125, 2, half_up]", "0.13"),
        ("[0.125, 2, half_even]", "0.12"),
        ("[0.135, 2, half_even]", "0.14"),
        ("[1.999, 2, down]", "1.99"),
        ("[-1.999, 2, down]", "-1.99"),
        ("[1.001, 2, up]", "1.01"),
        ("[-1.001, 2, floor]", "-1.01"),
        ("[-1.009, 2, ceiling]", "-1.00"),
        ("[2.5, 0]", "3"),
        ("[$event.amount, 1]", "12345678901234567890123456789.1"),
        ("[null, 2]", None),
        ("[text, 2]", None),
    ],
)
def test_round(expr: str, expected: str | None) -> None:
    policy = load(
        "  - id: r\n    clause: L-1\n    on: sale\n    then:\n"
        f"      - set: {{flag: rounded, value: {{coalesce: [{{round: {expr}}}, none]}}}}\n"
    )
    events = [
        ev("s1", "sale", "2026-03-02T10:00:00+08:00", amount="12345678901234567890123456789.05")
    ]
    d = evaluate(policy, events, "2026-03-03T00:00:00+08:00")
    got = d.flags["C1"]["rounded"]
    assert (None if got == "none" else str(got)) == expected


# ---------------------------------------------------------------- load errors


def _problem(text: str) -> pe.Problem:
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy_text(HEADER + "rules:\n" + text, "p.yaml")
    return info.value.problems[0]


RULE_LINE = HEADER.count("\n") + 2  # the line of "  - id:" after "rules:"


@pytest.mark.parametrize(
    ("penalty", "words"),
    [
        (f"{{party: $event.employee, window: 7 days, per: month, ladder: {LADDER}}}", "not both"),
        (
            f"{{party: $event.employee, ladder: {{steps: {LADDER}, window: 7 days, per: day}}}}",
            "not both",
        ),
        (
            "{party: $event.employee, window: 7 days, "
            f"ladder: {{steps: {LADDER}, window: 1 day}}}}",
            "once",
        ),
        ("{party: $event.employee, sanction: warning, per: month}", "ladder"),
        (f"{{party: $event.employee, per: quarter, ladder: {LADDER}}}", "'month' or 'year'"),
    ],
)
def test_ladder_shape_errors_are_located(penalty: str, words: str) -> None:
    p = _problem(rule("late", "late", penalty))
    assert p.location is not None and p.location.file == "p.yaml"
    assert p.location.line == RULE_LINE + 4, str(p)
    assert words in p.message


@pytest.mark.parametrize(
    ("window", "column"),
    [("soon", 90), ("$params.missing", 90), ("$event.at", 90)],
)
def test_a_bad_window_is_located(window: str, column: int) -> None:
    line = (
        f"{{party: $event.employee, ladder: {{steps: [{{sanction: warning}}], window: {window}}}}}"
    )
    p = _problem(rule("late", "late", line))
    assert p.location is not None
    assert (p.location.line, p.location.column) == (RULE_LINE + 4, column), str(p)


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("[1.5]", "[value, digits]"),
        ("[1.5, 11]", "0 to 10"),
        ("[1.5, -1]", "0 to 10"),
        ("[1.5, 2.0]", "0 to 10"),
        ("[1.5, true]", "0 to 10"),
        ("[1.5, $params.lookback]", "0 to 10"),
        ("[1.5, 2, bankers]", "half_even"),
    ],
)
def test_round_errors_are_located(expr: str, words: str) -> None:
    text = (
        "  - id: r\n    clause: L-1\n    on: sale\n    then:\n"
        f"      - set: {{flag: f, value: {{round: {expr}}}}}\n"
    )
    p = _problem(text)
    assert p.location is not None
    assert p.location.line == RULE_LINE + 4, str(p)
    assert words in p.message


def test_a_negative_literal_credit_is_a_load_error() -> None:
    text = CREDITS.replace("amount: 10,", "amount: -10,")
    p = _problem(text)
    assert p.location is not None and p.location.line == RULE_LINE + 8, str(p)
    assert "not negative" in p.message


# ---------------------------------------------------------------- every evaluator agrees


MIXED = (
    rule(
        "late",
        "late",
        f"{{party: $event.employee, ladder: {{key: attendance, window: 7 days, steps: {LADDER}}}}}",
    )
    + rule(
        "absent",
        "absent",
        f"{{party: $event.employee, ladder_key: attendance, per: month, ladder: {LADDER}}}",
    )
    + CREDITS
)


def mixed_history() -> list[Event]:
    out: list[Event] = []
    stamps = [
        ("late", "2026-02-26T10:00:00+08:00", "A"),
        ("absent", "2026-02-27T10:00:00+08:00", "B"),
        ("late", "2026-03-01T00:00:00+08:00", "C"),
        ("sale", "2026-03-02T10:00:00+08:00", "A"),
        ("late", "2026-03-05T10:00:00+08:00", "D"),  # exactly 7 days after the 26th
        ("absent", "2026-03-06T10:00:00+08:00", "A"),
        ("late", "2026-03-12T10:00:00.000001+08:00", "B"),  # the 5th is just out
        ("sale", "2026-03-13T10:00:00+08:00", "C"),
        ("absent", "2026-04-01T00:00:00+08:00", "D"),
    ]
    for i, (etype, at, customer) in enumerate(stamps):
        extra = {"amount": f"{100 + i}.5"} if etype == "sale" else {}
        out.append(ev(f"e{i}", etype, at, customer=customer, **extra))
    return out


def test_evaluate_many_equals_evaluate() -> None:
    policy = load(MIXED)
    events = mixed_history()
    as_of = "2026-04-02T00:00:00+08:00"
    single = evaluate(policy, events, as_of)
    assert [p.offence for p in single.penalties] == [1, 2, 3, 4, 3, 2, 1]
    assert len(single.credits) == 4
    run = distributed.run(policy, events, as_of, shards=3)
    assert len(set(run.report.placed.values())) >= 2
    assert run.report.fallback is None  # numbered in phase 2, not in one process
    assert_same(single, run.decision)
    assert_same(single, policy.evaluate_many(events, as_of, workers=1))


def test_resume_at_every_cut_equals_evaluate() -> None:
    check_every_cut(load(MIXED), mixed_history(), "2026-04-02T00:00:00+08:00")
