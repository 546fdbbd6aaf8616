"""The Rust core's local dates, lengths and list keys decide what the Python engine's do.

``{date: ...}`` (a match on a ``date`` field, a ``key`` made of a list with a date in it, an
``about``, a date against a text), ``len`` of a text, each run by both backends on a small
policy at its edges (local midnight either side, texts of seven characters and not, dates in
the one form and another) and on drawn histories; the packs' rules these unlock run alone on
their packs' scenarios. What is not exact yet stays unsupported, named where it was written.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policyengine as pe
from policyengine.backends import native
from strategies import SHANGHAI, Event
from test_native_duties import AS, CM, SS, assert_same, core, pack_rule, same_as, scenarios

MORE_POLICY = """
policy: {id: more, title: more, version: "1", timezone: Asia/Shanghai, subject: customer}
clauses:
  - {id: M-1, kind: obligation, text: the lists, reading: the lists}
events:
  sold: {fields: {customer: str, employee: str}}
  listed: {fields: {customer: str, employee: str, day: date, month: "str?"}}
rules:
  - id: list-by-day
    clause: M-1
    on: sold
    expect:
      event: listed
      match: {employee: $event.employee, day: {date: $event.at}}
      within: 1 day
      key: [$event.employee, {date: $event.at}]
      about: {date: $event.at}
      obligation: list the day's sales
      party: $event.employee
  - id: month-label
    clause: M-1
    on: sold
    expect:
      event: listed
      match: {employee: $event.employee}
      where:
        all:
          - eq: [{len: $event.month}, 7]
          - gt: [$event.month, {date: $trigger.at}]
          - le: [$event.month, {date: {plus: [$trigger.at, 1 month]}}]
      within: end of month
      about: $event.employee
      obligation: next month's plan
      party: $event.employee
  - id: dated
    clause: M-1
    on: listed
    when:
      any:
        - {eq: [$event.day, "2026-03-02"]}
        - {lt: [$event.day, $event.month]}
        - {ge: [{date: $event.at}, $event.day]}
    then:
      - set: {flag: seen, value: $event.employee}
"""

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
H = timedelta(hours=1)
S = timedelta(seconds=1)


@functools.cache
def more_policy() -> pe.Policy:
    return pe.load_policy_text(MORE_POLICY, "more.yaml")


def sold(eid: str, at: datetime, employee: str = "E1", customer: str = "C1") -> Event:
    return {
        "id": eid,
        "type": "sold",
        "at": at.isoformat(),
        "customer": customer,
        "employee": employee,
    }


def listed(
    eid: str, at: datetime, day: str, month: str | None = None, employee: str = "E1"
) -> Event:
    out: Event = {
        "id": eid,
        "type": "listed",
        "at": at.isoformat(),
        "customer": "C1",
        "employee": employee,
        "day": day,
    }
    if month is not None:
        out["month"] = month
    return out


MIDNIGHT = datetime(2026, 3, 3, 0, 0, tzinfo=SHANGHAI)
EDGES: dict[str, list[Event]] = {
    "two sales of one day, one list": [
        sold("s1", BASE),
        sold("s2", BASE + H),
        listed("l1", BASE + 2 * H, "2026-03-02"),
    ],
    "sales either side of local midnight": [
        sold("s1", MIDNIGHT - S),
        sold("s2", MIDNIGHT),
        listed("l1", MIDNIGHT + H, "2026-03-02"),
    ],
    "a list of another day": [sold("s1", BASE), listed("l1", BASE + H, "2026-03-03")],
    "two employees, one day": [
        sold("s1", BASE),
        sold("s2", BASE, "E2"),
        listed("l1", BASE, "2026-03-02", None, "E2"),
    ],
    "the next month's label": [sold("s1", BASE), listed("l1", BASE + H, "2026-03-02", "2026-04")],
    "this month's label": [sold("s1", BASE), listed("l1", BASE + H, "2026-03-02", "2026-03")],
    "a label of six characters": [sold("s1", BASE), listed("l1", BASE + H, "2026-03-02", "2026-4")],
    "a label of other characters": [
        sold("s1", BASE),
        listed("l1", BASE + H, "2026-03-02", "二〇二六年四月"),
    ],
    "a month end": [
        sold("s1", datetime(2026, 1, 31, 23, 59, tzinfo=SHANGHAI)),
        listed("l1", datetime(2026, 2, 1, 0, 0, tzinfo=SHANGHAI), "2026-01-31", "2026-02"),
    ],
    "a late list": [sold("s1", BASE), listed("l1", BASE + 30 * H, "2026-03-02")],
    "a day before the label": [sold("s1", BASE), listed("l1", BASE, "2026-03-01", "2026-03-01x")],
}


@pytest.mark.parametrize("name", list(EDGES))
def test_same_decision_at_the_edges(name: str) -> None:
    assert_same(more_policy(), EDGES[name])


def test_the_edges_decide_differently() -> None:
    """The cases are not all alike: the dates and lengths decide something."""
    found = {assert_same(more_policy(), events) for events in EDGES.values()}
    assert len(found) >= 8
    one_day = more_policy().evaluate(EDGES["two sales of one day, one list"], backend="native")
    assert "2026-03-02" in one_day.model_dump_json()


def test_a_date_in_another_form_is_left_to_the_engine() -> None:
    """``prepare`` reads ``2026-W10-1`` as a date: the core holds one form, so the engine
    decides, and the decision is the same."""
    core()
    events = [sold("s1", BASE), listed("l1", BASE + H, "2026-W10-1")]
    python = more_policy().evaluate(events, backend="python", resumable=False)
    ours = more_policy().evaluate(events, backend="native")
    assert ours.model_dump_json() == python.model_dump_json()


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Event], str | None]:
    n = draw(st.integers(min_value=0, max_value=10))
    anchors = [BASE, MIDNIGHT]
    events: list[Event] = []
    for i in range(n):
        at = draw(st.sampled_from(anchors)) + draw(st.sampled_from((0 * H, H, 15 * H, 24 * H)))
        at += draw(st.sampled_from((-S, 0 * S, S)))
        anchors.append(at)
        employee = draw(st.sampled_from(("E1", "E2")))
        if draw(st.booleans()):
            events.append(sold(f"e{i}", at, employee))
        else:
            day = draw(st.sampled_from(("2026-03-01", "2026-03-02", "2026-03-03")))
            month = draw(st.sampled_from((None, "2026-03", "2026-04", "2026-4", "2026-03-02")))
            events.append(listed(f"e{i}", at, day, month, employee))
    as_of = None
    if draw(st.booleans()):
        as_of = (draw(st.sampled_from(anchors)) + draw(st.sampled_from((H, 40 * H)))).isoformat()
    return events, as_of


@settings(max_examples=200, deadline=None)
@given(histories())
def test_same_decision_on_drawn_histories(drawn: tuple[list[Event], str | None]) -> None:
    events, as_of = drawn
    assert_same(more_policy(), events, as_of)


@pytest.mark.parametrize(
    ("old", "new", "what"),
    [
        (
            "key: [$event.employee, {date: $event.at}]",
            "key: [$event.employee, {date: $event.at}]\n      key_scope: lists",
            "a `key` of the kind dated in a named scope",
        ),
        (
            "match: {employee: $event.employee, day: {date: $event.at}}",
            "match: {employee: $event.employee, day: $event.employee}",
            "a match of a text on the field 'day'",
        ),
        (
            "      party: $event.employee\n  - id: month-label",
            "      party: {date: $event.at}\n  - id: month-label",
            "a date here",
        ),
        (
            "      match: {employee: $event.employee}\n",
            "      match: {employee: $event.employee, customer: {date: $event.at}}\n",
            "a match of a date on the field 'customer'",
        ),
        (
            "- set: {flag: seen, value: $event.employee}",
            "- set: {flag: seen, value: {owner_of: $event.day}}",
            "a date here",
        ),
        (
            "- set: {flag: seen, value: $event.employee}",
            "- set: {flag: seen, value: {coalesce: [$event.day, $event.month]}}",
            "`coalesce` of a decimal or date and others",
        ),
    ],
)
def test_what_is_not_exact_stays_unsupported(old: str, new: str, what: str) -> None:
    assert old in MORE_POLICY
    policy = pe.load_policy_text(MORE_POLICY.replace(old, new), "more.yaml")
    reason = native.unsupported(policy)
    assert reason is not None and what in reason, reason
    assert "more.yaml:" in reason


EACH_POLICY = """
policy: {id: each, title: each, version: "1", timezone: Asia/Shanghai, subject: customer}
clauses:
  - {id: E-1, kind: obligation, text: the visits, reading: the visits}
events:
  bought: {fields: {customer: str, employee: str, expert: "str?"}}
  absent: {fields: {employee: str}}
  visited: {fields: {customer: str, employee: str}}
rules:
  - id: bought
    clause: E-1
    on: bought
    then:
      - assign: $event.employee
      - set: {flag: expert, value: $event.expert}
        when: {exists: $event.expert}
  - id: absent-visits
    clause: E-1
    on: absent
    then:
      - for_each_subject:
          subjects: any
          where: {eq: [$subject.flags.expert, $event.employee]}
        expect:
          event: visited
          match: {customer: $subject}
          within: 1 day
          key: [$subject, {date: $event.at}]
          obligation: visit at once
          party: {coalesce: [$subject.owner, nobody]}
  - id: owners-told
    clause: E-1
    on: absent
    then:
      - for_each_subject: {subjects: owned_by_employee, owner: $event.employee}
        set: {flag: told, value: $event.id}
      - for_each_subject: {subjects: company}
        when: {not: {exists: $subject.flags.expert}}
        set: {flag: company_told, value: $event.id}
      - for_each_subject: {subjects: owned}
        set: {flag: owned_told, value: $event.employee}
"""


@functools.cache
def each_policy() -> pe.Policy:
    return pe.load_policy_text(EACH_POLICY, "each.yaml")


def ev(eid: str, etype: str, at: datetime, **fields: str) -> Event:
    return {"id": eid, "type": etype, "at": at.isoformat(), **fields}


EACH_EDGES: dict[str, list[Event]] = {
    "no subjects yet": [ev("a1", "absent", BASE, employee="X1")],
    "two customers of one expert, in id order": [
        ev("b1", "bought", BASE, customer="C2", employee="E1", expert="X1"),
        ev("b2", "bought", BASE, customer="C10", employee="E2", expert="X1"),
        ev("b3", "bought", BASE, customer="C3", employee="company", expert="X2"),
        ev("a1", "absent", BASE + H, employee="X1"),
        ev("v1", "visited", BASE + 2 * H, customer="C10", employee="E2"),
    ],
    "a second absence the same day, another the next": [
        ev("b1", "bought", BASE, customer="C1", employee="E1", expert="X1"),
        ev("a1", "absent", BASE + H, employee="X1"),
        ev("a2", "absent", BASE + 2 * H, employee="X1"),
        ev("a3", "absent", MIDNIGHT, employee="X1"),
    ],
    "the owner absent": [
        ev("b1", "bought", BASE, customer="C1", employee="E1"),
        ev("b2", "bought", BASE, customer="C2", employee="company"),
        ev("a1", "absent", BASE + H, employee="E1"),
        ev("a2", "absent", BASE + H, employee="company"),
    ],
}


@pytest.mark.parametrize("name", list(EACH_EDGES))
def test_same_decision_for_each_subject(name: str) -> None:
    assert_same(each_policy(), EACH_EDGES[name])


def test_each_subject_decides_something() -> None:
    found = {assert_same(each_policy(), events) for events in EACH_EDGES.values()}
    assert len(found) == len(EACH_EDGES)
    order = each_policy().evaluate(EACH_EDGES["two customers of one expert, in id order"])
    # by id as text: C10 before C2; the company's C3 has another expert
    assert [(o.subject, o.status) for o in order.obligations] == [("C10", "met"), ("C2", "open")]
    assert [r.subject for r in order.trace if r.rule == "owners-told"] == ["C10", "C2", "C3"]


@st.composite
def each_histories(draw: st.DrawFn) -> tuple[list[Event], str | None]:
    n = draw(st.integers(min_value=0, max_value=10))
    events: list[Event] = []
    at = BASE
    for i in range(n):
        at += draw(st.sampled_from((0 * H, H, 20 * H)))
        etype = draw(st.sampled_from(("bought", "absent", "visited")))
        who = draw(st.sampled_from(("E1", "X1", "company")))
        if etype == "absent":
            events.append(ev(f"e{i}", etype, at, employee=who))
            continue
        fields = {"customer": draw(st.sampled_from(("C1", "C2", "C10"))), "employee": who}
        if etype == "bought" and draw(st.booleans()):
            fields["expert"] = draw(st.sampled_from(("X1", "E1")))
        events.append(ev(f"e{i}", etype, at, **fields))
    as_of = (at + 30 * H).isoformat() if draw(st.booleans()) else None
    return events, as_of


@settings(max_examples=150, deadline=None)
@given(each_histories())
def test_same_decision_on_drawn_subjects(drawn: tuple[list[Event], str | None]) -> None:
    events, as_of = drawn
    assert_same(each_policy(), events, as_of)


def test_a_for_each_inside_for_each_subject_stays_unsupported() -> None:
    text = EACH_POLICY.replace(
        "      - for_each_subject: {subjects: owned}\n",
        "      - for_each_subject: {subjects: owned}\n        for_each: $event.id\n",
    )
    assert text != EACH_POLICY
    reason = native.unsupported(pe.load_policy_text(text, "each.yaml"))
    assert reason is not None and "a `for_each` inside `for_each_subject`" in reason, reason


VALUES_POLICY = """
policy: {id: lists, title: lists, version: "1", timezone: Asia/Shanghai, subject: customer}
clauses:
  - {id: L-1, kind: obligation, text: the plans, reading: the plans}
events:
  joined: {fields: {customer: str, employee: str}}
  left: {fields: {customer: str, employee: str}}
  call: {fields: {customer: str, employee: str}}
  visit: {fields: {customer: str, employee: str}}
  tick: {fields: {customer: str, employee: str}}
rules:
  - id: plan
    clause: L-1
    on: tick
    then:
      - for_each: {values: {type: joined, field: employee}}
        when:
          not:
            history:
              type: left
              match: {employee: $item}
              since: {first: {values: {type: joined, match: {employee: $item}, last: 1, field: at}}}
        add: {counter: planned, party: $item}
  - id: two-calls
    clause: L-1
    on: visit
    when:
      eq:
        - {values: {type: [call, visit], match: {customer: $event.customer}, last: 2, field: type}}
        - [call, call]
    then:
      - set: {flag: after_two_calls, value: $event.id}
  - id: recent-call
    clause: L-1
    on: visit
    when:
      ge:
        - {first: {values: {type: call, match: {customer: $event.customer}, last: 1, field: at}}}
        - {ago: 1 hour}
    then:
      - set: {flag: recent_call, value: $event.id}
  - id: old-call
    clause: L-1
    on: visit
    when: {lt: [{first: {values: {type: call, last: 1, field: at}}}, {ago: 1 day}]}
    then:
      - set: {flag: old_call, value: $event.id}
  - id: last-three
    clause: L-1
    on: tick
    when: {ne: [{values: {type: [visit, call], last: 3, field: employee}}, [E1, E1, E1]]}
    then:
      - set: {flag: mixed, value: $event.employee}
"""


@functools.cache
def values_policy() -> pe.Policy:
    return pe.load_policy_text(VALUES_POLICY, "lists.yaml")


def lv(eid: str, etype: str, at: datetime, customer: str = "C1", employee: str = "E1") -> Event:
    return ev(eid, etype, at, customer=customer, employee=employee)


VALUES_EDGES: dict[str, list[Event]] = {
    "nobody joined": [lv("t1", "tick", BASE)],
    "joined, left, joined again": [
        lv("j1", "joined", BASE),
        lv("j2", "joined", BASE, employee="E2"),
        lv("l1", "left", BASE + H, employee="E2"),
        lv("t1", "tick", BASE + 2 * H),
        lv("j3", "joined", BASE + 3 * H, employee="E2"),
        lv("t2", "tick", BASE + 4 * H),
    ],
    "left at the instant of joining": [
        lv("j1", "joined", BASE),
        lv("l1", "left", BASE),
        lv("t1", "tick", BASE + H),
    ],
    "two calls, then a visit": [
        lv("c1", "call", BASE),
        lv("c2", "call", BASE + H),
        lv("v1", "visit", BASE + 2 * H),
    ],
    "a call and a visit at one instant": [
        lv("c1", "call", BASE),
        lv("v1", "visit", BASE + H),
        lv("c2", "call", BASE + H),
        lv("v2", "visit", BASE + 2 * H),
    ],
    "a call a day ago": [
        lv("c1", "call", BASE),
        lv("v1", "visit", BASE + 24 * H),
        lv("v2", "visit", BASE + 24 * H + S),
    ],
    "three by one employee": [
        lv("c1", "call", BASE),
        lv("v1", "visit", BASE),
        lv("c2", "call", BASE + H),
        lv("t1", "tick", BASE + 2 * H),
        lv("c3", "call", BASE + 2 * H, employee="E2"),
        lv("t2", "tick", BASE + 3 * H),
    ],
}


@pytest.mark.parametrize("name", list(VALUES_EDGES))
def test_same_decision_on_values_lists(name: str) -> None:
    assert_same(values_policy(), VALUES_EDGES[name])


def test_values_lists_decide_something() -> None:
    found = {assert_same(values_policy(), events) for events in VALUES_EDGES.values()}
    assert len(found) == len(VALUES_EDGES)


@st.composite
def values_histories(draw: st.DrawFn) -> tuple[list[Event], str | None]:
    n = draw(st.integers(min_value=0, max_value=12))
    events: list[Event] = []
    at = BASE
    for i in range(n):
        at += draw(st.sampled_from((0 * H, 0 * H, H)))
        etype = draw(st.sampled_from(("joined", "left", "call", "visit", "tick")))
        customer = draw(st.sampled_from(("C1", "C2")))
        events.append(lv(f"e{i}", etype, at, customer, draw(st.sampled_from(("E1", "E2")))))
    return events, None


@settings(max_examples=150, deadline=None)
@given(values_histories())
def test_same_decision_on_drawn_values(drawn: tuple[list[Event], str | None]) -> None:
    events, as_of = drawn
    assert_same(values_policy(), events, as_of)


def test_lists_in_order_stay_unsupported() -> None:
    text = VALUES_POLICY.replace("when: {ne: [{values:", "when: {lt: [{values:")
    assert text != VALUES_POLICY
    reason = native.unsupported(pe.load_policy_text(text, "lists.yaml"))
    assert reason is not None and "`lt` of a values and a tuple" in reason, reason


NUMBERS_POLICY = """
policy: {id: numbers, title: numbers, version: "1", timezone: Asia/Shanghai, subject: customer}
clauses:
  - {id: N-1, kind: obligation, text: the shares, reading: the shares}
events:
  paid: {fields: {customer: str, amount: decimal, parts: "int?"}}
rules:
  - id: small-share
    clause: N-1
    on: paid
    when: {lt: [{div: [$event.amount, $event.parts]}, 0.5]}
    then: [{set: {flag: small_share, value: $event.id}}]
  - id: no-share
    clause: N-1
    on: paid
    when: {not: {exists: {div: [$event.amount, $event.parts]}}}
    then: [{set: {flag: no_share, value: $event.id}}]
  - id: quarter
    clause: N-1
    on: paid
    when: {eq: [{div: [$event.amount, 4]}, 0.3125]}
    then: [{set: {flag: quarter, value: $event.id}}]
  - id: half-up
    clause: N-1
    on: paid
    when: {eq: [{round: [$event.amount, 1]}, 1.3]}
    then: [{set: {flag: half_up, value: $event.id}}]
  - id: half-even
    clause: N-1
    on: paid
    when: {eq: [{round: [$event.amount, 1, half_even]}, 1.2]}
    then: [{set: {flag: half_even, value: $event.id}}]
  - id: average
    clause: N-1
    on: paid
    when: {gt: [{avg: [$event.amount, $event.parts, $event.customer]}, 1.3]}
    then: [{set: {flag: average, value: $event.id}}]
  - id: modes
    clause: N-1
    on: paid
    when:
      any:
        - {ge: [{round: [$event.amount, 0, floor]}, 2]}
        - {le: [{round: [$event.amount, 0, ceiling]}, -1]}
        - {eq: [{round: [$event.amount, 2, up]}, 1.26]}
        - {eq: [{round: [$event.amount, 2, down]}, -1.25]}
    then: [{set: {flag: moded, value: $event.id}}]
"""


@functools.cache
def numbers_policy() -> pe.Policy:
    return pe.load_policy_text(NUMBERS_POLICY, "numbers.yaml")


def paid(eid: str, amount: str | int, parts: int | None = None) -> Event:
    out: Event = {"id": eid, "type": "paid", "at": BASE.isoformat(), "customer": eid}
    out["amount"] = amount
    if parts is not None:
        out["parts"] = parts
    return out


def same_either_way(policy: pe.Policy, events: list[Event]) -> tuple[str, str | None]:
    """Both backends' decisions, equal; and why the engine decided (None: the core did)."""
    core()
    python = policy.evaluate(events, backend="python", resumable=False).model_dump_json()
    ours, why = native.run_events(policy.program, events, None)
    assert ours.model_dump_json() == python
    return python, why


# amounts at the rounding edges; (amount, parts) and whether the core decides (exact)
AMOUNTS: list[tuple[str | int, int | None, bool]] = [
    ("1.25", None, True),
    ("1.35", None, True),
    ("-1.25", None, True),
    ("-1.251", 2, True),
    ("1.251", 4, True),
    ("1.2500", 5, True),
    ("2", 0, True),
    ("0", 3, True),
    (7, 2, True),
    ("2.999", None, True),
    ("-0.0001", None, True),
    ("1", 3, False),  # 0.333...: 28 digits, more than the core holds
    ("1E+2", 8, True),
]


@pytest.mark.parametrize(("amount", "parts", "exact"), AMOUNTS)
def test_same_decision_on_div_and_round(amount: str | int, parts: int | None, exact: bool) -> None:
    _, why = same_either_way(numbers_policy(), [paid("p1", amount, parts)])
    assert (why is None) == exact, why


def test_div_and_round_decide_something() -> None:
    found = {same_either_way(numbers_policy(), [paid("p1", a, p)])[0] for a, p, _ in AMOUNTS}
    assert len(found) >= 8


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=-5, max_value=5, places=4, allow_nan=False),
            st.one_of(st.none(), st.integers(min_value=-4, max_value=8)),
        ),
        max_size=4,
    )
)
def test_same_decision_on_drawn_amounts(drawn: list[tuple[Any, int | None]]) -> None:
    events = [paid(f"p{i}", str(a), n) for i, (a, n) in enumerate(drawn)]
    same_either_way(numbers_policy(), events)


COUNTERS_POLICY = """
policy: {id: counted, title: counted, version: "1", timezone: Asia/Shanghai, subject: customer}
clauses:
  - {id: C-1, kind: obligation, text: the returns, reading: the returns}
events:
  returned: {fields: {customer: str, amount: "decimal?", who: "str?"}}
rules:
  - id: count-own
    clause: C-1
    on: returned
    then:
      - add: {counter: returned, by: $event.amount}
      - add: {counter: mixed, by: 2}
      - add: {counter: mixed, by: $event.amount}
  - id: count-party
    clause: C-1
    on: returned
    when: {exists: $event.who}
    then:
      - add: {counter: by_who, by: $event.amount, party: $event.who}
  - id: reviewed
    clause: C-1
    on: returned
    when: {exists: $event.who}
    expect:
      event: returned
      match: {customer: $event.customer}
      within: 1 day
      obligation: review the return
      party: $event.who
      met:
        - set: {flag: party_total_big, value: $event.id}
          when: {gt: [{counter: by_who}, 5]}
  - id: subject-total
    clause: C-1
    on: returned
    when: {ge: [{counter: returned}, 3]}
    then:
      - set: {flag: subject_total_big, value: $event.id}
  - id: over
    clause: C-1
    on: returned
    when: {gt: [$subject.counters.returned, 10.5]}
    then:
      - set: {flag: over, value: $event.id}
"""


@functools.cache
def counters_policy() -> pe.Policy:
    return pe.load_policy_text(COUNTERS_POLICY, "counted.yaml")


def ret(eid: str, amount: str | int | None, who: str | None = None, customer: str = "C1") -> Event:
    out: Event = {"id": eid, "type": "returned", "at": BASE.isoformat(), "customer": customer}
    if amount is not None:
        out["amount"] = amount
    if who is not None:
        out["who"] = who
    return out


COUNTER_EDGES: dict[str, list[Event]] = {
    "whole numbers only": [ret("r1", 3), ret("r2", 4, "E1")],
    "cents, then a whole number": [ret("r1", "1.50"), ret("r2", 2, "E1"), ret("r3", "9")],
    "a zero of two places": [ret("r1", "0.00"), ret("r2", "1")],
    "no amount": [ret("r1", None, "E1"), ret("r2", "0.5", "E1")],
    "the party is a subject too": [ret("r1", "2.25", "C1"), ret("r2", "8.25", "C1")],
    "back to zero": [ret("r1", "1.5"), ret("r2", "-1.5")],
    "tiny amounts": [ret("r1", "0.0000001"), ret("r2", "0.0000001")],
    "just over": [ret("r1", "10.5"), ret("r2", "0.01")],
    "the party's counter": [ret("r1", "4", "E1"), ret("r2", "1.5", "E1"), ret("r3", "1")],
}


@pytest.mark.parametrize("name", list(COUNTER_EDGES))
def test_same_decision_on_decimal_counters(name: str) -> None:
    assert_same(counters_policy(), COUNTER_EDGES[name])


def test_decimal_counters_decide_something() -> None:
    found = {assert_same(counters_policy(), events) for events in COUNTER_EDGES.values()}
    assert len(found) == len(COUNTER_EDGES)
    cents = counters_policy().evaluate(COUNTER_EDGES["cents, then a whole number"])
    assert '"12.50"' in cents.model_dump_json()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.none(),
                st.integers(min_value=-20, max_value=20),
                st.decimals(min_value=-20, max_value=20, places=3, allow_nan=False).map(str),
            ),
            st.sampled_from((None, "E1", "C1")),
            st.sampled_from(("C1", "C2")),
        ),
        max_size=6,
    )
)
def test_same_decision_on_drawn_counters(drawn: list[tuple[Any, str | None, str]]) -> None:
    events = [ret(f"r{i}", a, who, cust) for i, (a, who, cust) in enumerate(drawn)]
    assert_same(counters_policy(), events)


HOURS_POLICY = """
policy: {id: hours, title: hours, version: "1", timezone: Asia/Shanghai, subject: customer}
clauses:
  - {id: H-1, kind: obligation, text: the answers, reading: the answers}
calendar:
  base: weekdays
  holidays: [2026-03-10]
  workdays: [2026-03-14]
  hours: ["09:00-12:00", "13:30-18:00"]
events:
  message: {fields: {customer: str, urgent: "bool?"}}
  answered: {fields: {customer: str}}
rules:
  - id: answer
    clause: H-1
    on: message
    when: {not: {eq: [$event.urgent, true]}}
    expect: {event: answered, match: {customer: $event.customer}, within: 4 working hours,
             obligation: answer}
  - id: answer-urgent
    clause: H-1
    on: message
    when: {eq: [$event.urgent, true]}
    expect: {event: answered, match: {customer: $event.customer}, within: 30 working minutes,
             after: 1 working minute, obligation: answer at once}
"""


@functools.cache
def hours_policy() -> pe.Policy:
    return pe.load_policy_text(HOURS_POLICY, "hours.yaml")


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=SHANGHAI)


def msg(eid: str, when: datetime, urgent: bool | None = None) -> Event:
    out: Event = {"id": eid, "type": "message", "at": when.isoformat(), "customer": "C1"}
    if urgent is not None:
        out["urgent"] = urgent
    return out


def answer(eid: str, when: datetime) -> Event:
    return {"id": eid, "type": "answered", "at": when.isoformat(), "customer": "C1"}


AS_OF = "2026-03-20T00:00:00+08:00"
# 2026-03-06 is a Friday, 03-10 a declared day off, 03-14 (a Saturday) a declared working day
HOURS_EDGES: dict[str, list[Event]] = {
    "Friday 16:00 + 4 h is Monday 11:00: just in time": [
        msg("m", at(6, 16)),
        answer("a", at(9, 11)),
    ],
    "a second late": [msg("m", at(6, 16)), answer("a", at(9, 11, 0, 1))],
    "over lunch": [msg("m", at(9, 11)), answer("a", at(9, 16, 30))],
    "at lunch, ending at a closing": [msg("m", at(9, 12, 30)), answer("a", at(9, 17, 30))],
    "over the day off": [msg("m", at(9, 17)), answer("a", at(11, 12))],
    "on the working Saturday": [msg("m", at(14, 8)), answer("a", at(14, 14, 30))],
    "urgent at an opening": [msg("m", at(9, 9), True), answer("a", at(9, 9, 30))],
    "urgent, too early": [msg("m", at(9, 9), True), answer("a", at(9, 9, 0, 30))],
    "urgent after hours": [msg("m", at(9, 23), True), answer("a", at(10, 9, 30))],
    "never answered": [msg("m", at(13, 17, 59))],
}


@pytest.mark.parametrize("name", list(HOURS_EDGES))
def test_same_decision_on_working_hours(name: str) -> None:
    assert_same(hours_policy(), HOURS_EDGES[name], AS_OF)


def test_working_hours_decide_something() -> None:
    found = {assert_same(hours_policy(), events, AS_OF) for events in HOURS_EDGES.values()}
    assert len(found) == len(HOURS_EDGES)
    first = hours_policy().evaluate(
        HOURS_EDGES["Friday 16:00 + 4 h is Monday 11:00: just in time"], as_of=AS_OF
    )
    assert [o.status for o in first.obligations] == ["met"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=6, max_value=16),
            st.integers(min_value=0, max_value=23),
            st.sampled_from((0, 29, 30, 59)),
            st.sampled_from((None, True, False, "answer")),
        ),
        max_size=6,
    )
)
def test_same_decision_on_drawn_working_hours(drawn: list[tuple[int, int, int, Any]]) -> None:
    events = [
        answer(f"e{i}", at(d, h, mi)) if kind == "answer" else msg(f"e{i}", at(d, h, mi), kind)
        for i, (d, h, mi, kind) in enumerate(sorted(drawn, key=lambda x: x[:3]))
    ]
    assert_same(hours_policy(), events, AS_OF)


def test_working_hours_elsewhere_stay_unsupported() -> None:
    """Only a duty's window counts business time in the core: `plus` and look-backs do not."""
    old = "when: {not: {eq: [$event.urgent, true]}}"
    for new, what in (
        ("when: {lt: [$event.at, {plus: [$now, 1 working hour]}]}", "the window '1 working hour'"),
        (
            "when: {history: {type: answered, within: 2 working hours}}",
            "the look-back '2 working hours'",
        ),
    ):
        reason = native.unsupported(pe.load_policy_text(HOURS_POLICY.replace(old, new), "h.yaml"))
        assert reason is not None and what in reason and "h.yaml:" in reason, reason


# the pack rules these forms unlock, each alone with its pack's declarations
UNLOCKED = [
    (*CM, "franchise-returns-counted"),
    (*SS, "five-step-service"),
    (*AS, "absent-expert-customers-visited"),
    (*AS, "venue-list-next-day"),
    (*AS, "expert-monthly-call"),
    (*CM, "visit-plan-joining-month"),
]


@pytest.mark.parametrize(("file", "tests", "rule"), UNLOCKED, ids=[r[2] for r in UNLOCKED])
def test_a_pack_rule_alone_on_its_packs_scenarios(file: str, tests: str, rule: str) -> None:
    core()
    policy = pack_rule(file, rule)
    assert policy.rule_ids == [rule]
    assert native.unsupported(policy) is None, native.unsupported(policy)
    ran = 0
    decided: set[str] = set()
    for _, events, as_of in scenarios(tests):
        try:
            python = policy.evaluate(events, as_of=as_of, backend="python", resumable=False)
        except pe.PolicyEngineError:  # a scenario about an event the rule alone refuses
            continue
        decided.add(same_as(policy, events, as_of, python.model_dump_json()))
        ran += 1
    assert ran >= 5 and len(decided) >= 2
