"""The Rust core's values, conditions, event field checks and breaches, against the engine.

Each construct the core took over from the Python engine (``coalesce``, ``flag_of``, ``first``
of a ``values`` query, whole-number fields compared, an instant kept in a flag, the
``violation`` action; bounded whole numbers, lists of texts, dates, instants and decimals
checked in the core) is run by both backends on small policies and at its edges (null
operands, ties, a number at its bound, a bad value): the decisions are byte-equal as JSON, or
the errors the same (code, event, field and message); the core checks exactly the histories it
is sure of; and hypothesis draws histories over the same policy.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policyengine as pe
from optional import require
from policyengine.backends import native
from policyengine.errors import EvaluationError, EventError
from policyengine.runtime.events import prepare
from policyengine.times import from_dt, parse_instant

Event = dict[str, Any]

POLICY = """
policy:
  {id: values, title: values, version: "1", timezone: Asia/Shanghai, subject: customer,
   currency: CNY}
clauses:
  - {id: V-1, kind: duty, text: the values, reading: the values}
params:
  most_rings: {count: 3}
  visit_window: {duration: 2 days}
  cap: {money: 100}
  tolerance: {number: 0.05}
  fines: {table: {minor: 50, major: 200.50}}
events:
  purchased:
    fields:
      customer: str
      employee: str
      manager: {type: str, optional: true}
      referred_by: {type: str, optional: true}
      rings: {type: int, min: 0, max: 9}
      tags: {type: "list[str]", optional: true, enum: [vip, new, old]}
      day: {type: date, optional: true}
      paid_at: {type: time, optional: true}
      amount: {type: decimal, optional: true}
  cannot_help:
    fields: {customer: str, employee: {type: str, optional: true}}
  visited:
    fields:
      customer: str
      role: str
      employee: {type: str, optional: true}
      severity: {type: str, optional: true}
rules:
  - id: remember
    clause: V-1
    on: purchased
    then:
      - set: {flag: specialist, value: $event.employee}
      - set: {flag: manager, value: $event.manager}
        when: {exists: $event.manager}
      - set: {flag: first_purchase, value: $event.at}
        when: {not: {exists: $subject.flags.first_purchase}}
      - set: {flag: tagged, value: $item}
        for_each: $event.tags
  - id: slow-answer
    clause: V-1
    on: purchased
    when: {gt: [$event.rings, $params.most_rings]}
    then:
      - violation: {what: answered too late, party: $event.employee}
  - id: rings-at-bound
    clause: V-1
    on: purchased
    when: {any: [{eq: [$event.rings, 9]}, {le: [$event.rings, 0]}, {ge: [0, $event.rings]}]}
    then:
      - violation: rings at a bound
  - id: referral
    clause: V-1
    on: purchased
    when: {exists: {flag_of: [$event.referred_by, specialist]}}
    then:
      - add: {counter: referrals, party: {flag_of: [$event.referred_by, specialist]}}
      - set: {flag: referrer, value: {flag_of: [$event.referred_by, specialist]}}
  - id: manager-visits
    clause: V-1
    on: cannot_help
    expect:
      event: visited
      match: {customer: $event.customer, role: manager}
      within: $params.visit_window
      obligation: the manager visits
      party: {coalesce: [$subject.flags.manager, $event.employee, department_manager]}
      missed:
        - violation: manager did not visit
        - violation: {what: nobody visited, party: {coalesce: [$trigger.employee, null]}}
  - id: latest-seller
    clause: V-1
    on: visited
    when:
      ne:
        - first:
            values: {type: purchased, match: {customer: $event.customer}, field: employee}
        - first:
            values:
              {type: purchased, match: {customer: $event.customer}, last: 1, field: employee}
    then:
      - violation: {what: the two readings differ, party: $event.employee}
  - id: spend-cap
    clause: V-1
    on: purchased
    when:
      gt:
        - sum:
            - values: {type: purchased, match: {customer: $event.customer}, field: amount}
            - $event.amount
        - $params.cap
    then:
      - violation: {what: over the cap, party: $event.employee}
  - id: over-the-last
    clause: V-1
    on: purchased
    when:
      gt:
        - $event.amount
        - mul:
            - first:
                values:
                  {type: purchased, match: {customer: $event.customer}, last: 1, field: amount}
            - {add: [1, $params.tolerance]}
    then:
      - violation: {what: over the last by more than 5%, party: $event.employee}
  - id: exact-amounts
    clause: V-1
    on: purchased
    when:
      any:
        - {eq: [$event.amount, 12.5]}
        - {le: [{sub: [$event.amount, {sum: {values: {type: purchased, field: amount}}}]}, -50]}
        - {eq: [{sum: [$event.rings, $event.amount, true, null]}, 10.50]}
    then:
      - violation: exact amounts
  - id: counted
    clause: V-1
    on: purchased
    then:
      - add: {counter: buys}
  - id: folds
    clause: V-1
    on: purchased
    when:
      any:
        - all:
            - not: {exists: {max: {values: {type: purchased, match: {customer: x}, field: amount}}}}
            - {ge: [$subject.counters.buys, 3]}
        - eq:
            - min:
                - {values: {type: purchased, match: {customer: $event.customer}, field: amount}}
                - $event.amount
            - {max: {values: {type: purchased, match: {customer: $event.customer}, field: amount}}}
    then:
      - violation: folds
  - id: fines
    clause: V-1
    on: visited
    when: {exists: $event.severity}
    then:
      - penalty:
          party: $event.role
          ladder_key: fines
          ladder:
            - {sanction: warning}
            - {sanction: fine, amount: {get: [$params.fines, $event.severity]}}
  - id: latest-any
    clause: V-1
    on: visited
    then:
      - set:
          flag: last_seen_by
          value:
            first:
              values:
                type: [cannot_help, purchased]
                match: {customer: $event.customer}
                last: 2
                field: employee
      - set:
          flag: first_of_none
          value: {first: {values: {type: visited, match: {customer: nobody}, last: 1, field: role}}}
      - set:
          flag: who
          value:
            coalesce:
              - null
              - first:
                  values: {type: cannot_help, match: {customer: $event.customer}, field: employee}
"""


@functools.cache
def _policy() -> pe.Policy:
    return pe.load_policy_text(POLICY, "values.yaml")


def core() -> Any:
    return require(native.MODULE)


def at(day: int, hour: int, minute: int = 0) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


def buy(eid: str, when: str, customer: str = "C1", employee: str = "E1", **more: Any) -> Event:
    return {
        "id": eid,
        "type": "purchased",
        "at": when,
        "customer": customer,
        "employee": employee,
        "rings": 1,
        **more,
    }


def outcome(policy: pe.Policy, events: Any, as_of: str | None = None, in_core: bool = True) -> str:
    """What the native backend gives: the decision as JSON, or the error's problems; with
    ``in_core``, made by the core."""
    horizon = None if as_of is None else from_dt(parse_instant(as_of, "as_of"))
    try:
        decision, why = native.run_events(policy.program, events, horizon)
    except (EventError, EvaluationError) as exc:
        return "error: " + repr([(p.code, p.event_id, p.field, p.message) for p in exc.problems])
    assert why is None or not in_core, why
    return decision.model_dump_json()


def reference(policy: pe.Policy, events: Any, as_of: str | None = None) -> str:
    try:
        decision = policy.evaluate(events, as_of=as_of, backend="python", resumable=False)
    except (EventError, EvaluationError) as exc:
        return "error: " + repr([(p.code, p.event_id, p.field, p.message) for p in exc.problems])
    return decision.model_dump_json()


def assert_same(events: list[Event], as_of: str | None = None) -> str:
    """Byte-equal decisions by the prepared path, the raw path and the Python engine."""
    policy = _policy()
    python = reference(policy, events, as_of)
    ours = outcome(policy, events, as_of)
    assert ours == python
    if not python.startswith("error: "):
        horizon = None if as_of is None else from_dt(parse_instant(as_of, "as_of"))
        prepared, why = native.run(policy.program, prepare(policy.compiled, events), horizon)
        assert why is None, why
        assert prepared.model_dump_json() == python
    return python


def test_the_policy_runs_on_the_core() -> None:
    core()
    assert native.unsupported(_policy()) is None


CASES: list[tuple[str, list[Event], str | None, str]] = [
    (
        "coalesce: the flag first, then the event's field, then the text",
        [
            buy("p1", at(1, 9), manager="M1"),
            {"id": "c1", "type": "cannot_help", "at": at(1, 10), "customer": "C1"},
            {
                "id": "c2",
                "type": "cannot_help",
                "at": at(1, 11),
                "customer": "C2",
                "employee": "E7",
            },
            {"id": "c3", "type": "cannot_help", "at": at(1, 12), "customer": "C3"},
        ],
        None,
        '"party":"M1"',
    ),
    (
        "a missed duty's breaches: the duty's party and the trigger's",
        [
            {
                "id": "c1",
                "type": "cannot_help",
                "at": at(1, 10),
                "customer": "C1",
                "employee": "E2",
            },
            {"id": "c2", "type": "cannot_help", "at": at(1, 11), "customer": "C2"},
        ],
        at(9, 0),
        "nobody visited",
    ),
    (
        "a met duty: no breach",
        [
            {"id": "c1", "type": "cannot_help", "at": at(1, 10), "customer": "C1"},
            {"id": "v1", "type": "visited", "at": at(2, 10), "customer": "C1", "role": "manager"},
        ],
        at(9, 0),
        "the manager visits",
    ),
    (
        "flag_of: a known referrer's specialist, an unknown one, none",
        [
            buy("p1", at(1, 9), customer="C1", employee="E1"),
            buy("p2", at(1, 10), customer="C2", employee="E2", referred_by="C1"),
            buy("p3", at(1, 11), customer="C3", employee="E2", referred_by="C9"),
            buy("p4", at(1, 12), customer="C4", employee="E3", referred_by="C1"),
        ],
        None,
        "referrals",
    ),
    (
        "whole numbers compared with a parameter and at their bounds",
        [
            buy("p1", at(1, 9), rings=3),
            buy("p2", at(1, 10), rings=4),
            buy("p3", at(1, 11), rings=9),
            buy("p4", at(1, 12), rings=0),
        ],
        None,
        "answered too late",
    ),
    (
        "first of values: newest first, with and without last, ties in written order",
        [
            buy("p1", at(1, 9), employee="E1"),
            buy("p2", at(1, 9), employee="E2"),
            {"id": "c1", "type": "cannot_help", "at": at(1, 9), "customer": "C1", "employee": "E5"},
            {"id": "v1", "type": "visited", "at": at(1, 10), "customer": "C1", "role": "x"},
            buy("p3", at(1, 11), employee="E3"),
            buy("p0", at(1, 8), employee="E0"),
            {"id": "v2", "type": "visited", "at": at(1, 12), "customer": "C1", "role": "x"},
            {"id": "v3", "type": "visited", "at": at(1, 12), "customer": "C5", "role": "x"},
        ],
        None,
        "last_seen_by",
    ),
    (
        "decimals summed, multiplied and compared by value",
        [
            buy("p1", at(1, 9), amount="40.00"),
            buy("p2", at(1, 10), amount="42.0"),
            buy("p3", at(1, 11), amount=12),
            buy("p4", at(1, 12), amount="12.50"),
            buy("p5", at(1, 13), amount="9.5", rings=1),
            buy("p6", at(1, 14), amount="0.0000000000000001", customer="C2"),
            buy("p7", at(1, 15), amount="-90", customer="C2"),
            buy("p8", at(1, 16), amount="0.0000000000000002", customer="C2"),
        ],
        None,
        '"what":"folds","party":null,"subject":"C1","event":"p2"',
    ),
    (
        "a fine looked up in a table by the event's field",
        [
            {"id": "v1", "type": "visited", "at": at(1, 9), "customer": "C1", "role": "r"},
            {
                "id": "v2",
                "type": "visited",
                "at": at(1, 10),
                "customer": "C1",
                "role": "r",
                "severity": "nope",
            },
            {
                "id": "v3",
                "type": "visited",
                "at": at(1, 11),
                "customer": "C1",
                "role": "r",
                "severity": "major",
            },
            {
                "id": "v4",
                "type": "visited",
                "at": at(1, 12),
                "customer": "C1",
                "role": "r",
                "severity": "minor",
            },
        ],
        None,
        '"amount_min":"200.5"',
    ),
    (
        "lists, dates, instants and decimals checked in the core",
        [
            buy("p1", at(1, 9), tags=["vip", "new"], day="2026-02-28", amount="12.50"),
            buy("p2", at(1, 10), tags=[], paid_at="2026-03-01T10:00:00Z", amount=7),
            buy("p3", at(1, 11), amount="-0.000000000001"),
        ],
        None,
        '"tagged"',
    ),
]


@pytest.mark.parametrize(("name", "events", "as_of", "shows"), CASES, ids=[c[0] for c in CASES])
def test_values_and_breaches(name: str, events: list[Event], as_of: str | None, shows: str) -> None:
    core()
    got = assert_same(events, as_of)
    assert shows in got
    assert native.checked_in_core(_policy(), events) is True


def test_the_breaches_are_recorded() -> None:
    """The comparisons can fail: the core's breaches are in the decision, with their parties."""
    core()
    events = CASES[4][1]
    got = json.loads(assert_same(events))
    ringing = ("answered too late", "rings at a bound")
    rows = [(v["what"], v["party"], v["event"]) for v in got["violations"] if v["what"] in ringing]
    assert rows == [
        ("answered too late", "E1", "p2"),  # rings 4
        ("answered too late", "E1", "p3"),  # rings 9
        ("rings at a bound", None, "p3"),
        ("rings at a bound", None, "p4"),  # rings 0
    ], rows


def test_the_decimal_conditions_hold_where_they_should() -> None:
    """By value: 40.00 + 42.0 + 12 + 12.50 crosses the cap of 100 at p4; 12.50 equals 12.5;
    42.0 is not over 40.00 x 1.05; sums skip yes/no and null (1 + 9.5 = 10.50)."""
    core()
    events = next(c[1] for c in CASES if c[0].startswith("decimals"))
    got = json.loads(assert_same(events))
    rows = [(v["what"], v["event"]) for v in got["violations"] if v["what"] != "folds"]
    assert rows == [
        ("exact amounts", "p3"),  # 12 - 82 <= -50
        ("over the cap", "p4"),
        ("exact amounts", "p4"),
        ("over the cap", "p5"),
        ("exact amounts", "p5"),
        ("exact amounts", "p6"),
        ("exact amounts", "p7"),
        ("over the last by more than 5%", "p8"),  # over -90 x 1.05
    ], rows


def test_a_key_the_table_lacks_is_the_engines_error() -> None:
    core()
    policy = _policy()
    events = [
        {
            "id": "v1",
            "type": "visited",
            "at": at(1, 9),
            "customer": "C1",
            "role": "r",
            "severity": "minor",
        },
        {
            "id": "v2",
            "type": "visited",
            "at": at(1, 10),
            "customer": "C1",
            "role": "r",
            "severity": "nope",
        },
    ]
    ours = outcome(policy, events, in_core=False)
    assert ours == reference(policy, events)
    assert ours.startswith("error: ") and "amount" in ours, ours


def test_a_sum_beyond_the_cores_digits_is_the_engines() -> None:
    """Many places summed with a larger amount need more digits than the core keeps exactly:
    the engine decides that history, the same decision, and the reason is given."""
    core()
    policy = _policy()
    events = [
        buy("p1", at(1, 9), amount="12.50"),
        buy("p2", at(1, 10), amount="-0.000000000000000000000000000001"),
    ]
    decision, why = native.run_events(policy.program, events, None)
    assert why is not None and "beyond the core's digits" in why
    assert decision.model_dump_json() == reference(policy, events)


# (what, the event's fields, checked in the core, refused by prepare)
BAD: list[tuple[str, Event, bool, bool]] = [
    ("a whole number above its bound", {"rings": 10}, False, True),
    ("a whole number below its bound", {"rings": -1}, False, True),
    ("a whole number at its upper bound", {"rings": 9}, True, False),
    ("a yes/no for a whole number", {"rings": True}, False, True),
    ("text for a whole number", {"rings": "3"}, False, True),
    ("a list member outside the enum", {"tags": ["vip", "gold"]}, False, True),
    ("an empty text in a list", {"tags": [""]}, False, True),
    ("text for a list", {"tags": "vip"}, False, True),
    ("an impossible date", {"day": "2026-02-30"}, False, True),
    ("a week date", {"day": "2026-W09-1"}, False, False),
    ("an instant without its offset", {"paid_at": "2026-03-01T10:00:00"}, False, True),
    ("an instant out of range", {"paid_at": "9999-12-31T10:00:00Z"}, False, True),
    ("a decimal in words", {"amount": "twelve"}, False, True),
    ("a decimal with an exponent", {"amount": "1e3"}, False, False),
    ("a decimal of many places", {"amount": "0.1234567890123456789012345678901"}, False, False),
    ("a decimal of 18 digits", {"amount": "-12345678.9012345678"}, True, False),
    ("an infinite decimal", {"amount": "Infinity"}, False, True),
    ("a float for a decimal", {"amount": 1.5}, False, False),
]


@pytest.mark.parametrize(("name", "more", "in_core", "refused"), BAD, ids=[b[0] for b in BAD])
def test_bad_fields_give_the_references_error(
    name: str, more: Event, in_core: bool, refused: bool
) -> None:
    """A value the core is not sure of goes to ``prepare``: the same error, or decision."""
    core()
    events = [buy("p1", at(1, 9), **more)]
    policy = _policy()
    assert native.checked_in_core(policy, events) is in_core
    ours, python = outcome(policy, events, in_core=False), reference(policy, events)
    assert ours == python
    assert ours.startswith("error: ") is refused, ours[:300]


UNSUPPORTED = [
    (
        "first:\n            values: {type: purchased, match: {customer: $event.customer}, field: "
        "employee}",
        "first: [a, b]",
        "`first` of anything but a `values` query",
    ),
    (  # the engine's instant would be copied into another flag: the core holds a number
        "{flag: referrer, value: {flag_of: [$event.referred_by, specialist]}}",
        "{flag: referrer, value: {flag_of: [$event.referred_by, first_purchase]}}",
        "the flag 'first_purchase', an instant elsewhere, as a value",
    ),
    (
        "{flag: tagged, value: $item}",
        "{flag: first_purchase, value: 7}",
        "the flag 'first_purchase', an instant elsewhere, set",
    ),
    ("value: $event.at}", "value: {ago: 2 months}}", "`ago` of '2 months'"),
    (
        "party: $event.employee}\n  - id: rings",
        "party: [a]}\n  - id: rings",
        "a violation by a tuple",
    ),
]


@pytest.mark.parametrize(("old", "new", "why"), UNSUPPORTED, ids=[u[2] for u in UNSUPPORTED])
def test_constructs_the_core_lacks_stay_unsupported(old: str, new: str, why: str) -> None:
    core()
    assert old in POLICY
    policy = pe.load_policy_text(POLICY.replace(old, new, 1), "values.yaml")
    found = native.unsupported(policy)
    assert found is not None and why in found, found
    assert "values.yaml:" in found
    python = policy.evaluate([buy("p1", at(1, 9))], backend="python", resumable=False)
    ours = policy.evaluate([buy("p1", at(1, 9))], backend="native")
    assert ours.model_dump_json() == python.model_dump_json()


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    n = draw(st.integers(0, 14))
    out: list[Event] = []
    for i in range(n):
        kind = draw(st.sampled_from(["purchased", "cannot_help", "visited"]))
        when = at(1 + draw(st.integers(0, 4)), draw(st.sampled_from([9, 10, 12])))
        customer = draw(st.sampled_from(["C1", "C2", "C3"]))
        e: Event = {"id": f"e{i}", "type": kind, "at": when, "customer": customer}
        if kind == "purchased":
            e["employee"] = draw(st.sampled_from(["E1", "E2"]))
            e["rings"] = draw(st.integers(-1, 10))
            if draw(st.booleans()):
                e["manager"] = draw(st.sampled_from(["M1", "M2"]))
            if draw(st.booleans()):
                e["referred_by"] = draw(st.sampled_from(["C1", "C2", "C9"]))
            if draw(st.booleans()):
                e["tags"] = draw(
                    st.lists(st.sampled_from(["vip", "new", "old", "bad"]), max_size=2)
                )
            if draw(st.booleans()):
                e["amount"] = draw(st.sampled_from(["1.10", "2", 3, "0.000001", "x"]))
        elif kind == "visited":
            e["role"] = draw(st.sampled_from(["manager", "expert"]))
        if kind != "purchased" and draw(st.booleans()):
            e["employee"] = draw(st.sampled_from(["E1", "E3"]))
        out.append(e)
    return out


@settings(max_examples=60, deadline=None)
@given(histories(), st.sampled_from([None, at(3, 0), at(9, 0)]))
def test_same_decision_on_drawn_histories(events: list[Event], as_of: str | None) -> None:
    core()
    assert_same(events, as_of)
