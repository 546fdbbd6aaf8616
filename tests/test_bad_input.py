"""Bad input: every kind the core issue lists gives a clear, typed, positioned error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import policyengine as pe

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "policies/huixiao/resources.yaml"

HEADER = """\
policy: {id: t, title: test, version: "1"}
clauses:
  - {id: X-1, text: 原文, reading: a reading}
params:
  window: {duration: 2 days}
events:
  ping: {fields: {customer: str, employee: str}}
"""


def load(text: str) -> pe.Policy:
    return pe.load_policy_text(text, "p.yaml")


def problems(text: str) -> list[pe.Problem]:
    with pytest.raises(pe.PolicyError) as info:
        load(text)
    return info.value.problems


def where(p: pe.Problem) -> tuple[int, int]:
    assert p.location is not None
    return p.location.line, p.location.column


def test_malformed_yaml_points_at_the_line() -> None:
    [p] = problems(HEADER + "rules:\n  - id: r\n    on: [ping\n")
    assert p.code == "PE100"
    assert p.location is not None and p.location.line >= 10


def test_unknown_key_with_suggestion() -> None:
    text = HEADER + "rules:\n  - id: r\n    clause: X-1\n    on: ping\n    thenn: []\n"
    ps = problems(text)
    unknown = [p for p in ps if p.code == "PE101"]
    assert unknown and where(unknown[0]) == (12, 5)
    assert unknown[0].hint and "then" in unknown[0].hint


def test_wrong_type() -> None:
    text = HEADER + "rules:\n  - id: r\n    clause: X-1\n    on: 5\n    then: [{claim: x}]\n"
    ps = problems(text)
    assert any(p.code == "PE102" and where(p)[0] == 11 for p in ps)


def test_bad_duration_parameter() -> None:
    text = HEADER.replace("2 days", "2 fortnights") + "rules: []\n"
    [p] = problems(text)
    assert p.code == "PE106" and where(p) == (5, 11)


def test_bad_duration_in_rule() -> None:
    text = HEADER + (
        "rules:\n  - id: r\n    clause: X-1\n    on: ping\n"
        "    expect: {event: ping, within: soon}\n"
    )
    [p] = problems(text)
    assert p.code == "PE106" and where(p)[0] == 12


def test_duplicate_keys() -> None:
    text = HEADER + "rules:\n  - id: r\n    id: s\n    clause: X-1\n    on: ping\n    then: []\n"
    ps = problems(text)
    assert any(p.code == "PE103" and where(p) == (10, 5) for p in ps)


def test_duplicate_rule_ids() -> None:
    rule = "  - id: r\n    clause: X-1\n    on: ping\n    then: [{claim: $event.employee}]\n"
    ps = problems(HEADER + "rules:\n" + rule + rule)
    assert [p.code for p in ps] == ["PE107"]
    assert where(ps[0]) == (13, 9)


def test_unknown_clause_id() -> None:
    text = HEADER + "rules:\n  - id: r\n    clause: X-2\n    on: ping\n    then: [{claim: a}]\n"
    [p] = problems(text)
    assert p.code == "PE108" and where(p) == (10, 13)
    assert p.hint and "X-1" in p.hint


def test_unknown_event_type_in_rule() -> None:
    text = HEADER + "rules:\n  - id: r\n    clause: X-1\n    on: pong\n    then: [{claim: a}]\n"
    [p] = problems(text)
    assert p.code == "PE109" and p.hint and "ping" in p.hint


def test_unknown_parameter_and_field_references() -> None:
    text = HEADER + (
        "rules:\n  - id: r\n    clause: X-1\n    on: ping\n"
        "    when: {eq: [$event.employe, $params.windw]}\n    then: [{claim: a}]\n"
    )
    codes = sorted(p.code for p in problems(text))
    assert codes == ["PE110", "PE113"]


def test_all_errors_of_a_file_in_one_pass() -> None:
    text = HEADER.replace("2 days", "2 eons") + (
        "rules:\n"
        "  - id: r\n    clause: X-9\n    on: ping\n    then: [{claim: a}]\n"
        "  - id: s\n    clause: X-1\n    on: pang\n    then: [{claim: a}]\n"
        "  - id: t\n    clause: X-1\n    on: ping\n    when: {eqq: [1, 1]}\n"
        "    then: [{claim: a}]\n"
        "  - id: u\n    clause: X-1\n    on: ping\n    when: {eq: [$params.window, 1]}\n"
        "    then: [{claim: $event.custmer}]\n"
    )
    found = sorted((p.code, where(p)[0]) for p in problems(text))
    # a broken parameter, an unknown clause, an unknown event type, an unknown operator and an
    # unknown field: five mistakes, five reports, one run; no knock-on error for `window`
    assert found == [("PE101", 20), ("PE106", 5), ("PE108", 10), ("PE109", 15), ("PE113", 26)]


def test_alias_bomb_is_refused() -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    ps = problems("\n".join(lines) + "\n")
    assert ps[0].code == "PE105"


def test_python_object_tag_is_refused() -> None:
    text = HEADER + "rules:\n  - !!python/object/apply:os.system ['echo owned']\n"
    ps = problems(text)
    assert any(p.code == "PE104" and where(p)[0] == 9 for p in ps)


def test_yaml_1_1_booleans_do_not_eat_the_on_key() -> None:
    policy = load(
        HEADER + "rules:\n  - id: r\n    clause: X-1\n    on: ping\n"
        "    then: [{claim: $event.employee}]\n"
    )
    assert policy.rule_ids == ["r"]


def test_precedence_cycle_and_unknown_override() -> None:
    text = HEADER + (
        "rules:\n"
        "  - {id: a, clause: X-1, on: ping, overrides: [b], then: [{claim: x}]}\n"
        "  - {id: b, clause: X-1, on: ping, overrides: [a, zz], then: [{claim: x}]}\n"
    )
    codes = sorted(p.code for p in problems(text))
    assert "PE112" in codes and "PE111" in codes


def test_missing_file() -> None:
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy(ROOT / "policies/nope.yaml")
    assert info.value.first.code == "PE116"


def test_errors_print_as_file_line_col() -> None:
    text = HEADER + "rules:\n  - id: r\n    clause: X-1\n    on: ping\n    thenn: []\n"
    with pytest.raises(pe.PolicyError) as info:
        load(text)
    assert re.search(r"p\.yaml:12:5: PE101 unknown field 'thenn'", str(info.value))


# ---------------------------------------------------------------- event input


@pytest.fixture(scope="module")
def policy() -> pe.Policy:
    return pe.load_policy(PACK)


def reg(eid: str, at: str = "2026-03-01T10:00:00+08:00", **extra: object) -> dict[str, object]:
    ev: dict[str, object] = {
        "id": eid,
        "type": "registered",
        "at": at,
        "customer": "C1",
        "employee": "A",
        "channel": "list_call",
    }
    ev.update(extra)
    return ev


def preheat(eid: str, at: str = "2026-03-01T12:00:00+08:00") -> dict[str, object]:
    return {"id": eid, "type": "preheated", "at": at, "customer": "C1", "employee": "A"}


def event_problems(policy: pe.Policy, events: list[dict[str, object]]) -> list[pe.Problem]:
    with pytest.raises(pe.EventError) as info:
        policy.evaluate(events)
    return info.value.problems


def test_unknown_event_type(policy: pe.Policy) -> None:
    [p] = event_problems(policy, [{"id": "x", "type": "registerd", "at": "2026-03-01T10:00+08:00"}])
    assert (p.code, p.event_id, p.field) == ("PE201", "x", "type")
    assert p.hint and "registered" in p.hint


def test_missing_field(policy: pe.Policy) -> None:
    ev = reg("e1")
    del ev["channel"]
    [p] = event_problems(policy, [ev])
    assert (p.code, p.event_id, p.field) == ("PE202", "e1", "channel")


def test_wrong_field_value(policy: pe.Policy) -> None:
    [p] = event_problems(policy, [reg("e1", channel="tiktok")])
    assert (p.code, p.field) == ("PE203", "channel")


def test_naive_timestamp(policy: pe.Policy) -> None:
    [p] = event_problems(policy, [reg("e1", at="2026-03-01T10:00:00")])
    assert (p.code, p.event_id, p.field) == ("PE204", "e1", "at")


def test_unknown_event_field(policy: pe.Policy) -> None:
    [p] = event_problems(policy, [reg("e1", chanel="x")])
    assert (p.code, p.field) == ("PE205", "chanel")


def test_all_bad_events_reported_and_nothing_evaluated(policy: pe.Policy) -> None:
    ps = event_problems(policy, [reg("e1", at="yesterday"), reg("e2", channel="?"), reg("e3")])
    assert [p.event_id for p in ps] == ["e1", "e2"]


def test_duplicate_ids_are_ignored_and_reported(policy: pe.Policy) -> None:
    pre = preheat("p1")
    once = policy.evaluate([reg("e1"), pre])
    twice = policy.evaluate([reg("e1"), pre, reg("e1"), dict(pre)])
    assert twice.duplicates == ["e1", "p1"]
    assert twice.ownerships == once.ownerships
    assert twice.penalties == once.penalties


def test_unsorted_input_is_ordered_by_time(policy: pe.Policy) -> None:
    pre = preheat("p1")
    assert policy.evaluate([pre, reg("e1")]).owner("C1") == "A"


def test_unknown_events_can_be_ignored_by_declaration() -> None:
    text = HEADER.replace('version: "1"}', 'version: "1", unknown_events: ignore}') + "rules: []\n"
    policy = load(text)
    d = policy.evaluate([{"id": "z", "type": "mystery", "at": "2026-03-01T10:00:00+08:00"}])
    assert d.ignored == ["z"]


def test_bad_as_of(policy: pe.Policy) -> None:
    with pytest.raises(pe.EventError) as info:
        policy.evaluate([reg("e1")], as_of="2026-03-01 10:00")
    assert info.value.first.code == "PE206"


NUMBERS = """\
policy: {id: n, title: numbers, version: "1"}
clauses:
  - {id: X-1, text: 原文, reading: a reading}
events:
  scored: {fields: {customer: str, score: {type: decimal, min: 0, max: 100}}}
"""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "must be a finite number"),
        ("NaN", "must be a finite number"),
        ("Infinity", "must be a finite number"),
        (True, "must be a number"),
        ("-0.01", "must be at least 0"),
        ("100.01", "must be at most 100"),
        (100.5, "must be at most 100"),
    ],
)
def test_decimal_fields_are_finite_and_within_bounds(value: object, message: str) -> None:
    """Text decimals are checked like numbers: "abc" and "NaN" are refused, bounds apply."""
    numbers = load(NUMBERS)
    [p] = event_problems(
        numbers,
        [
            {
                "id": "s1",
                "type": "scored",
                "at": "2026-03-01T10:00:00+08:00",
                "customer": "C1",
                "score": value,
            }
        ],
    )
    assert (p.event_id, p.field) == ("s1", "score")
    assert message in p.message


@pytest.mark.parametrize("value", ["0", "100", "12.50", 7, 99.5])
def test_decimal_fields_in_bounds_are_accepted(value: object) -> None:
    numbers = load(NUMBERS)
    numbers.evaluate(
        [
            {
                "id": "s1",
                "type": "scored",
                "at": "2026-03-01T10:00:00+08:00",
                "customer": "C1",
                "score": value,
            }
        ]
    )
