"""The Rust core's duties decide what the Python engine's do, byte for byte.

Each form of ``expect`` the core runs (``key`` and ``key_scope``, ``where``, ``after``,
``about``, ``cancel_on`` of several entries, types and conditions, an ``expect`` made by
``then`` or by a branch) is run by both backends on a small policy at its edges (just in time,
just late, events at the same instant) and on drawn histories; the packs' rules the core now
runs alone are run on their packs' scenario histories. Forms not yet run stay unsupported,
named with where they were written.
"""

from __future__ import annotations

import functools
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import policyengine as pe
from optional import require
from policyengine.backends import native
from policyengine.language.ir import IR_VERSION
from policyengine.times import from_dt, parse_instant
from strategies import SHANGHAI, Event

ROOT = Path(__file__).resolve().parents[1]

DUTY_POLICY = """
policy: {id: duties, title: duties, version: "1", timezone: Asia/Shanghai, subject: customer}
clauses:
  - {id: D-1, kind: obligation, text: the duties, reading: the duties}
params:
  visit_window: {duration: 2 days}
events:
  opened: {fields: {customer: str, employee: str, kind: "str?"}}
  visited: {fields: {customer: str, employee: str, role: "str?"}}
  closed: {fields: {customer: str, employee: str, reason: "str?"}}
  paused: {fields: {customer: str, employee: str}}
  reported: {fields: {customer: str, employee: str}}
rules:
  - id: visit
    clause: D-1
    on: opened
    expect:
      event: visited
      match: {customer: $event.customer}
      where: {eq: [$event.employee, $trigger.employee]}
      within: $params.visit_window
      key: $event.customer
      key_scope: visit
      obligation: visit the customer
      party: $event.employee
      cancel_on:
        - {event: [closed, paused], match: {customer: $event.customer}}
        - event: reported
          match: {customer: $event.customer}
          where: {ne: [$event.employee, $trigger.employee]}
      late:
        - set: {flag: late_visit, value: true}
      missed:
        - set: {flag: overdue, value: true}
        - expect:
            event: reported
            match: {customer: $trigger.customer}
            within: 1 day
            obligation: report the missed visit
            party: $trigger.employee
            met:
              - clear: overdue
  - id: reopened
    clause: D-1
    on: closed
    when: {eq: [$event.reason, reopen]}
    expect:
      event: visited
      match: {customer: $event.customer}
      within: 1 day
      key: $event.customer
      key_scope: visit
      obligation: visit the reopened customer
      party: $event.employee
  - id: follow-up
    clause: D-1
    on: visited
    when: {eq: [$event.role, expert]}
    then:
      - set: {flag: expert_seen, value: true}
      - expect:
          event: reported
          match: {customer: $event.customer, employee: $event.employee}
          after: 1 day
          within: 3 days
          about: $event.employee
          obligation: follow the expert visit up
          party: $event.employee
          met:
            - expect:
                event: visited
                match: {customer: $event.customer}
                within: 12 hours
                key: $event.employee
                obligation: visit after the report
                party: $event.employee
"""

TYPES = ("opened", "visited", "closed", "paused", "reported")
BASE = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)


def core() -> Any:
    """The Rust core, or a skip saying why (required where cargo is on PATH)."""
    if shutil.which("cargo") is None and not native.available():
        pytest.skip("no cargo on PATH: the Rust core is not built here")
    return require(native.MODULE)


@functools.cache
def duty_policy() -> pe.Policy:
    return pe.load_policy_text(DUTY_POLICY, "duties.yaml")


def assert_same(policy: pe.Policy, events: list[Event], as_of: str | None = None) -> str:
    """Both backends' decisions, equal as JSON; the core's returned (it decided itself)."""
    core()
    assert native.unsupported(policy) is None, native.unsupported(policy)
    python = policy.evaluate(events, as_of=as_of, backend="python", resumable=False)
    return same_as(policy, events, as_of, python.model_dump_json())


def same_as(policy: pe.Policy, events: list[Event], as_of: str | None, python: str) -> str:
    """The core's own decision (no fallback: it says why not) equals the engine's."""
    horizon = None if as_of is None else from_dt(parse_instant(as_of, "as_of"))
    ours, why = native.run_events(policy.program, events, horizon)
    assert why is None, why
    assert ours.model_dump_json() == python
    assert policy.evaluate(events, as_of=as_of, backend="native").model_dump_json() == python
    return python


def ev(
    eid: str, etype: str, at: datetime, customer: str = "C1", employee: str = "E1", **more: Any
) -> Event:
    return {
        "id": eid,
        "type": etype,
        "at": at.isoformat(),
        "customer": customer,
        "employee": employee,
        **more,
    }


S = timedelta(seconds=1)
D2 = timedelta(days=2)
H = timedelta(hours=1)
T = BASE

EDGES: dict[str, tuple[list[Event], str | None]] = {
    "met just in time": ([ev("o", "opened", T), ev("v", "visited", T + D2)], None),
    "met just late": ([ev("o", "opened", T), ev("v", "visited", T + D2 + S)], None),
    "the wrong employee does not meet it (where)": (
        [ev("o", "opened", T), ev("v", "visited", T + H, employee="E2")],
        None,
    ),
    "a second opening while the first is open is not owed (key)": (
        [ev("o1", "opened", T), ev("o2", "opened", T + H), ev("v", "visited", T + D2 + H)],
        None,
    ),
    "the key is free again once met": (
        [ev("o1", "opened", T), ev("v", "visited", T + H), ev("o2", "opened", T + 2 * H)],
        "2026-03-10T00:00:00+08:00",
    ),
    "the key is free again once missed": (
        [ev("o1", "opened", T), ev("o2", "opened", T + D2 + S)],
        "2026-03-10T00:00:00+08:00",
    ),
    "another rule shares the key scope": (
        [
            ev("o1", "opened", T),
            ev("c", "closed", T + H, reason="reopen"),
            ev("o2", "opened", T + 3 * H),
        ],
        "2026-03-10T00:00:00+08:00",
    ),
    "keys per customer": (
        [ev("o1", "opened", T), ev("o2", "opened", T, customer="C2")],
        "2026-03-10T00:00:00+08:00",
    ),
    "cancelled by either type of the first entry": (
        [
            ev("o1", "opened", T),
            ev("p", "paused", T + H),
            ev("o2", "opened", T, customer="C2"),
            ev("c", "closed", T + D2, customer="C2"),
        ],
        "2026-03-10T00:00:00+08:00",
    ),
    "a cancel at the deadline comes before it (inclusive)": (
        [ev("o", "opened", T), ev("c", "closed", T + D2)],
        "2026-03-10T00:00:00+08:00",
    ),
    "the second entry's where: another employee's report cancels": (
        [ev("o", "opened", T), ev("r", "reported", T + H, employee="E2")],
        "2026-03-10T00:00:00+08:00",
    ),
    "the second entry's where: one's own report does not": (
        [ev("o", "opened", T), ev("r", "reported", T + H)],
        "2026-03-10T00:00:00+08:00",
    ),
    "the missed branch owes a report, met in time": (
        [ev("o", "opened", T), ev("r", "reported", T + D2 + timedelta(days=1))],
        None,
    ),
    "the missed branch's report just late": (
        [ev("o", "opened", T), ev("r", "reported", T + D2 + timedelta(days=1) + S)],
        "2026-03-10T00:00:00+08:00",
    ),
    "opened and visited at the same instant": (
        [ev("v", "visited", T), ev("o", "opened", T)],
        "2026-03-10T00:00:00+08:00",
    ),
    "visited then opened at one instant, input order the other way": (
        [ev("o", "opened", T), ev("v", "visited", T)],
        None,
    ),
    "a report before the window opens does not count (after)": (
        [ev("v", "visited", T, role="expert"), ev("r", "reported", T + 24 * H - S)],
        "2026-03-10T00:00:00+08:00",
    ),
    "a report as the window opens counts (after)": (
        [ev("v", "visited", T, role="expert"), ev("r", "reported", T + 24 * H)],
        "2026-03-10T00:00:00+08:00",
    ),
    "the report's met branch owes a keyed visit": (
        [
            ev("v1", "visited", T, role="expert"),
            ev("r", "reported", T + 30 * H),
            ev("v2", "visited", T + 42 * H, employee="E3"),
        ],
        "2026-03-10T00:00:00+08:00",
    ),
    "two expert visits, two follow-ups (about the employee)": (
        [
            ev("v1", "visited", T, role="expert"),
            ev("v2", "visited", T + H, role="expert", employee="E2"),
            ev("r", "reported", T + 4 * 24 * H, employee="E2"),
        ],
        None,
    ),
}


@pytest.mark.parametrize("name", list(EDGES))
def test_same_decision_at_the_edges(name: str) -> None:
    events, as_of = EDGES[name]
    assert_same(duty_policy(), events, as_of)


def test_the_core_reads_the_duties() -> None:
    core()
    ir = native.intermediate(duty_policy())
    assert ir is not None and ir["ir_version"] == IR_VERSION
    visit = ir["rules"][0]["actions"][-1]
    assert visit["key_scope"] == "visit" and len(visit["cancels"]) == 2
    assert visit["missed"][1]["kind"] == "expect"
    follow = ir["rules"][2]["actions"][1]
    assert follow["kind"] == "expect" and follow["after"] is not None


def test_the_edges_decide_differently() -> None:
    """The cases are not all alike: keys skip duties, `where` and `after` refuse events."""
    p = duty_policy()
    in_time = assert_same(p, *EDGES["met just in time"])
    late = assert_same(p, *EDGES["met just late"])
    assert '"late_visit"' in late and '"late_visit"' not in in_time
    one = pe.load_policy_text(DUTY_POLICY, "duties.yaml").evaluate(
        EDGES["a second opening while the first is open is not owed (key)"][0],
        backend="native",
    )
    assert [o.what for o in one.obligations].count("visit the customer") == 1
    before = p.evaluate(*EDGES["a report before the window opens does not count (after)"])
    at = p.evaluate(*EDGES["a report as the window opens counts (after)"])
    assert [o.status for o in before.obligations] != [o.status for o in at.obligations]
    follow = [o.subject for o in at.obligations if o.what == "follow the expert visit up"]
    assert follow == ["E1"]  # `about`: the employee, not the customer


# one customer's events, in turn: opened, a visit `where` refuses, a visit that meets the
# duty, opened again, a report that cancels it, an expert's visit (its follow-up owed), a
# report meeting that, opened, closed (cancelling)
AHEAD_TURNS = (
    ("opened", "E1", {}),
    ("visited", "E2", {}),
    ("visited", "E1", {}),
    ("opened", "E1", {}),
    ("reported", "E2", {}),
    ("visited", "E1", {"role": "expert"}),
    ("opened", "E1", {}),
    ("reported", "E1", {}),
    ("closed", "E1", {"reason": "moved"}),
)


@pytest.mark.parametrize("apart", [1, 2, 7, 8, 9, 15, 16, 17, 31])
def test_duties_fetched_ahead_change_before_their_event(apart: int) -> None:
    """The core asks for an awaited event's subject and duties 16 events ahead, and for their
    vectors, trigger events and obligations 8 later (``native/src/ahead.rs``): a duty noted
    then may be met, cancelled or joined by others before its event comes. Customers taking
    turns, a customer's events `apart` events apart (closer than either stage, at it, past
    it), get the engine's decision."""
    events = []
    for turn, (etype, employee, more) in enumerate(AHEAD_TURNS):
        for c in range(apart):
            n = turn * apart + c
            at = BASE + timedelta(hours=turn * 6, seconds=c)
            events.append(ev(f"a{n}", etype, at, f"C{c}", employee, **more))
    decided = duty_policy().evaluate(events, backend="python", resumable=False)
    statuses = {o.status for o in decided.obligations}
    assert {"met", "cancelled", "open"} <= statuses, statuses
    same_as(duty_policy(), events, None, decided.model_dump_json())


STEPS = (
    timedelta(0),
    H,
    12 * H,
    24 * H,
    D2,
    timedelta(days=3),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Event], str | None]:
    """A few customers and employees, times anchored on earlier events plus a step that lands
    on the windows' edges, then a second either side."""
    n = draw(st.integers(min_value=0, max_value=14))
    anchors = [BASE]
    events: list[Event] = []
    for i in range(n):
        etype = draw(st.sampled_from(TYPES))
        at = draw(st.sampled_from(anchors)) + draw(st.sampled_from(STEPS))
        at += draw(st.sampled_from((-S, timedelta(0), timedelta(0), S)))
        anchors.append(at)
        more: dict[str, Any] = {}
        if etype == "visited":
            more["role"] = draw(st.sampled_from(("expert", "specialist")))
        if etype == "closed":
            more["reason"] = draw(st.sampled_from(("reopen", "done")))
        events.append(
            ev(
                f"e{i}",
                etype,
                at,
                draw(st.sampled_from(("C1", "C2"))),
                draw(st.sampled_from(("E1", "E2"))),
                **more,
            )
        )
    as_of = None
    if draw(st.booleans()):
        as_of = (draw(st.sampled_from(anchors)) + draw(st.sampled_from(STEPS))).isoformat()
    return events, as_of


@settings(max_examples=300, deadline=None)
@given(histories())
def test_same_decision_on_drawn_histories(drawn: tuple[list[Event], str | None]) -> None:
    events, as_of = drawn
    assert_same(duty_policy(), events, as_of)


@pytest.mark.parametrize(
    ("old", "new", "what"),
    [
        (
            "      within: 1 day\n      key: $event.customer",
            "      within: 1 day\n      key: [$event.customer, {date: $event.at}]",
            "a `key` of the kind dated in a named scope",
        ),
        ("          after: 1 day\n", "          after: $event.at\n", "a computed window"),
        (
            "      key: $event.customer\n      key_scope: visit\n",
            "      key: $subject.flags.overdue\n      key_scope: visit\n",
            "a `key` of the kind any",
        ),
    ],
)
def test_what_is_not_exact_stays_unsupported(old: str, new: str, what: str) -> None:
    assert old in DUTY_POLICY
    policy = pe.load_policy_text(DUTY_POLICY.replace(old, new, 1), "duties.yaml")
    reason = native.unsupported(policy)
    assert reason is not None and what in reason and "duties.yaml:" in reason, reason


# ---------------------------------------------------------------- schedules and workflows

STEPS_POLICY = """
policy: {id: steps, title: steps, version: "1", timezone: Asia/Shanghai, subject: customer}
clauses:
  - {id: S-1, kind: obligation, text: the steps, reading: the steps}
params:
  first_call: {duration: 1 day}
events:
  purchased: {fields: {customer: str, employee: str}}
  home_visit: {fields: {customer: str, employee: str}}
  phone_visit: {fields: {customer: str, employee: str}}
  case_step: {fields: {customer: str, employee: str, step: str}}
rules:
  - id: schedule
    clause: S-1
    on: purchased
    expect:
      event: [home_visit, phone_visit]
      match: {customer: $event.customer}
      consume: true
      key: $event.customer
      steps:
        - {event: phone_visit, within: $params.first_call, obligation: "day 1: a call"}
        - {event: home_visit, within: 3 days, obligation: "day 3: a home visit"}
        - within: 7 days
          obligation: "day 7: the seller's contact"
          where: {eq: [$event.employee, $trigger.employee]}
        - {after: 10 days, within: 14 days, obligation: "days 10-14: a contact"}
        - {obligation: "then: a contact, no deadline"}
      party: $event.employee
      late:
        - set: {flag: late_contact, value: true}
      missed:
        - set: {flag: missed_contact, value: true}
  - id: workflow
    clause: S-1
    on: case_step
    when: {eq: [$event.step, opened]}
    expect:
      event: case_step
      match: {customer: $event.customer}
      in_order: true
      consume: true
      steps:
        - {where: {eq: [$event.step, registered]}, obligation: register}
        - {where: {eq: [$event.step, resolved]}, within: 2 days, obligation: resolve}
        - {where: {in: [$event.step, [evaluated, closed]]}, obligation: evaluate}
      party: $event.employee
      cancel_on:
        event: case_step
        match: {customer: $event.customer}
        where: {eq: [$event.step, abandoned]}
      out_of_order:
        - set: {flag: out_of_order, value: $event.step}
      met:
        - set: {flag: last_step, value: $event.step}
"""

STEP_TYPES = ("purchased", "home_visit", "phone_visit", "case_step")
CASE_STEPS = ("opened", "registered", "resolved", "evaluated", "closed", "abandoned")
DAY = timedelta(days=1)


@functools.cache
def steps_policy() -> pe.Policy:
    return pe.load_policy_text(STEPS_POLICY, "steps.yaml")


def step(eid: str, at: datetime, name: str, customer: str = "C1") -> Event:
    return ev(eid, "case_step", at, customer, step=name)


STEP_EDGES: dict[str, tuple[list[Event], str | None]] = {
    "each step met in its window": (
        [
            ev("p", "purchased", T),
            ev("c", "phone_visit", T + DAY),
            ev("h", "home_visit", T + 3 * DAY),
            ev("x", "phone_visit", T + 7 * DAY),
            ev("y", "home_visit", T + 10 * DAY),
            ev("z", "home_visit", T + 20 * DAY),
        ],
        None,
    ),
    "a call at the first deadline's instant meets the first step only (consume)": (
        [
            ev("p", "purchased", T),
            ev("c", "phone_visit", T + DAY),
            ev("c2", "phone_visit", T + DAY),
        ],
        "2026-04-30T00:00:00+08:00",
    ),
    "one second late: the next window holds it": (
        [ev("p", "purchased", T), ev("c", "phone_visit", T + DAY + S)],
        "2026-04-30T00:00:00+08:00",
    ),
    "a visit before day 10 does not meet the day-14 step (after)": (
        [
            ev("p", "purchased", T),
            ev("a", "home_visit", T + 10 * DAY - S),
            ev("b", "home_visit", T + 10 * DAY),
        ],
        "2026-04-30T00:00:00+08:00",
    ),
    "another employee's contact does not meet day 7 (the step's where)": (
        [ev("p", "purchased", T), ev("x", "home_visit", T + 4 * DAY, employee="E2")],
        "2026-04-30T00:00:00+08:00",
    ),
    "a second purchase while the schedule runs is not owed (key)": (
        [
            ev("p1", "purchased", T),
            ev("p2", "purchased", T + DAY),
            ev("h", "home_visit", T + 2 * DAY),
        ],
        "2026-04-30T00:00:00+08:00",
    ),
    "a purchase and a visit at one instant": (
        [ev("h", "home_visit", T), ev("p", "purchased", T), ev("c", "phone_visit", T)],
        "2026-04-30T00:00:00+08:00",
    ),
    "the workflow in order": (
        [
            step("o", T, "opened"),
            step("r", T + H, "registered"),
            step("s", T + 2 * DAY, "resolved"),
            step("e", T + 3 * DAY, "evaluated"),
        ],
        None,
    ),
    "a step out of order runs out_of_order, then still counts": (
        [step("o", T, "opened"), step("s", T + H, "resolved"), step("r", T + 2 * H, "registered")],
        None,
    ),
    "resolved just late": (
        [
            step("o", T, "opened"),
            step("r", T + H, "registered"),
            step("s", T + 2 * DAY + S, "resolved"),
        ],
        "2026-04-30T00:00:00+08:00",
    ),
    "abandoned: every open step is cancelled": (
        [step("o", T, "opened"), step("r", T + H, "registered"), step("a", T + 2 * H, "abandoned")],
        "2026-04-30T00:00:00+08:00",
    ),
    "two cases of one customer: one event meets one duty (consume)": (
        [step("o1", T, "opened"), step("o2", T + H, "opened"), step("r", T + 2 * H, "registered")],
        "2026-04-30T00:00:00+08:00",
    ),
}


@pytest.mark.parametrize("name", list(STEP_EDGES))
def test_same_decision_on_schedules_and_workflows(name: str) -> None:
    events, as_of = STEP_EDGES[name]
    assert_same(steps_policy(), events, as_of)


def test_the_schedule_edges_decide_differently() -> None:
    p = steps_policy()
    out = p.evaluate(*STEP_EDGES["a step out of order runs out_of_order, then still counts"])
    assert out.flags["C1"].get("out_of_order") == "resolved"
    once = p.evaluate(
        *STEP_EDGES["a call at the first deadline's instant meets the first step only (consume)"]
    )
    met = sorted(o.what for o in once.obligations if o.status == "met")
    assert met == ["day 1: a call"]
    late = p.evaluate(*STEP_EDGES["one second late: the next window holds it"])
    assert "day 1: a call" not in [o.what for o in late.obligations if o.status == "met"]


@st.composite
def step_histories(draw: st.DrawFn) -> tuple[list[Event], str | None]:
    n = draw(st.integers(min_value=0, max_value=12))
    anchors = [BASE]
    events: list[Event] = []
    for i in range(n):
        etype = draw(st.sampled_from(STEP_TYPES))
        at = draw(st.sampled_from(anchors)) + draw(
            st.sampled_from((timedelta(0), H, DAY, 3 * DAY, 7 * DAY, 10 * DAY, 14 * DAY))
        )
        at += draw(st.sampled_from((-S, timedelta(0), timedelta(0), S)))
        anchors.append(at)
        more = {"step": draw(st.sampled_from(CASE_STEPS))} if etype == "case_step" else {}
        customer = draw(st.sampled_from(("C1", "C2")))
        employee = draw(st.sampled_from(("E1", "E2")))
        events.append(ev(f"e{i}", etype, at, customer, employee, **more))
    as_of = None
    if draw(st.booleans()):
        as_of = (draw(st.sampled_from(anchors)) + draw(st.sampled_from((DAY, 7 * DAY)))).isoformat()
    return events, as_of


@settings(max_examples=300, deadline=None)
@given(step_histories())
def test_same_decision_on_drawn_schedules(drawn: tuple[list[Event], str | None]) -> None:
    events, as_of = drawn
    assert_same(steps_policy(), events, as_of)


# ---------------------------------------------------------------- a duty per calendar period

EVERY_POLICY = """
policy: {id: every, title: every, version: "1", timezone: Asia/Shanghai, subject: customer}
clauses:
  - {id: E-1, kind: obligation, text: the periods, reading: the periods}
events:
  hired: {fields: {customer: str, employee: str}}
  met_with: {fields: {customer: str, employee: str, kind: str}}
  left: {fields: {customer: str, employee: str}}
  owned: {fields: {customer: str, employee: str}}
  form: {fields: {customer: str, employee: str}}
rules:
  - id: monthly-meeting
    clause: E-1
    on: [hired, met_with]
    expect:
      event: met_with
      match: {kind: personal, employee: $event.employee}
      every: month
      key: $event.employee
      about: $event.employee
      obligation: a meeting this month
      party: $event.employee
      cancel_on: {event: left, match: {employee: $event.employee}}
      met:
        - set: {flag: met_this_month, value: true}
  - id: weekly-form
    clause: E-1
    on: owned
    expect:
      event: form
      match: {customer: $event.customer}
      where: {eq: [$event.employee, $party]}
      every: week
      cancel_on: {event: owned, match: {customer: $event.customer}}
      obligation: a form this week
      party: $event.employee
      missed:
        - set: {flag: no_form, value: $party}
  - id: daily-call
    clause: E-1
    on: hired
    expect:
      event: form
      match: {customer: $event.customer}
      after: 2 days
      every: day
      obligation: a form a day, from day 2
      party: $event.employee
"""

EVERY_TYPES = ("hired", "met_with", "left", "owned", "form")
MONTH_END = datetime(2026, 4, 1, 0, 0, tzinfo=SHANGHAI)  # March 2026 ends here (a Wednesday)


@functools.cache
def every_policy() -> pe.Policy:
    return pe.load_policy_text(EVERY_POLICY, "every.yaml")


EVERY_EDGES: dict[str, tuple[list[Event], str | None]] = {
    "hired, met in the month": (
        [ev("h", "hired", T), ev("m", "met_with", T + DAY, kind="personal")],
        "2026-05-15T00:00:00+08:00",
    ),
    "met a second before the month ends, then nothing": (
        [ev("h", "hired", T), ev("m", "met_with", MONTH_END - S, kind="personal")],
        "2026-05-15T00:00:00+08:00",
    ),
    "met at the month's end instant: next month's": (
        [ev("h", "hired", T), ev("m", "met_with", MONTH_END, kind="personal")],
        "2026-05-15T00:00:00+08:00",
    ),
    "the creating meeting meets its own month": (
        [ev("m", "met_with", T, kind="personal"), ev("m2", "met_with", T + H, kind="group")],
        "2026-04-15T00:00:00+08:00",
    ),
    "a second hiring while the series runs is not owed (key)": (
        [ev("h1", "hired", T), ev("h2", "hired", T + DAY)],
        "2026-04-15T00:00:00+08:00",
    ),
    "leaving stops the series, even after this month's duty is met": (
        [
            ev("h", "hired", T),
            ev("m", "met_with", T + H, kind="personal"),
            ev("l", "left", T + 2 * H),
        ],
        "2026-06-15T00:00:00+08:00",
    ),
    "leaving while the duty is open cancels it": (
        [ev("h", "hired", T), ev("l", "left", T + DAY), ev("h2", "hired", T + 2 * DAY)],
        "2026-05-15T00:00:00+08:00",
    ),
    "weekly forms by the owner, a change of owner hands over": (
        [
            ev("o1", "owned", T),
            ev("f1", "form", T + DAY),
            ev("o2", "owned", T + 8 * DAY, employee="E2"),
            ev("f2", "form", T + 9 * DAY),
            ev("f3", "form", T + 10 * DAY, employee="E2"),
        ],
        "2026-04-01T00:00:00+08:00",
    ),
    "the week ends at Monday's midnight": (
        [
            ev("o", "owned", T),
            ev("f", "form", datetime(2026, 3, 9, 0, 0, tzinfo=SHANGHAI) - S),
            ev("g", "form", datetime(2026, 3, 9, 0, 0, tzinfo=SHANGHAI)),
        ],
        "2026-03-20T00:00:00+08:00",
    ),
    "a daily duty from day 2 (after)": (
        [ev("h", "hired", T), ev("f", "form", T + D2 - S), ev("g", "form", T + D2)],
        "2026-03-08T00:00:00+08:00",
    ),
    "the horizon at a period's end": (
        [ev("h", "hired", T)],
        MONTH_END.isoformat(),
    ),
}


@pytest.mark.parametrize("name", list(EVERY_EDGES))
def test_same_decision_per_period(name: str) -> None:
    events, as_of = EVERY_EDGES[name]
    assert_same(every_policy(), events, as_of)


def test_the_periods_decide_differently() -> None:
    p = every_policy()
    before = p.evaluate(*EVERY_EDGES["met a second before the month ends, then nothing"])
    at = p.evaluate(*EVERY_EDGES["met at the month's end instant: next month's"])
    status = [(o.opened, o.status) for o in before.obligations if o.what == "a meeting this month"]
    assert status != [
        (o.opened, o.status) for o in at.obligations if o.what == "a meeting this month"
    ]
    stopped = p.evaluate(
        *EVERY_EDGES["leaving stops the series, even after this month's duty is met"]
    )
    meetings = [o for o in stopped.obligations if o.what == "a meeting this month"]
    assert len(meetings) == 1 and meetings[0].subject == "E1"


@st.composite
def every_histories(draw: st.DrawFn) -> tuple[list[Event], str | None]:
    n = draw(st.integers(min_value=0, max_value=12))
    anchors = [BASE, MONTH_END, datetime(2026, 3, 9, 0, 0, tzinfo=SHANGHAI)]
    events: list[Event] = []
    for i in range(n):
        etype = draw(st.sampled_from(EVERY_TYPES))
        at = draw(st.sampled_from(anchors)) + draw(
            st.sampled_from((timedelta(0), H, DAY, D2, 7 * DAY, 31 * DAY))
        )
        at += draw(st.sampled_from((-S, timedelta(0), timedelta(0), S)))
        anchors.append(at)
        more = {"kind": draw(st.sampled_from(("personal", "group")))} if etype == "met_with" else {}
        customer = draw(st.sampled_from(("C1", "C2")))
        employee = draw(st.sampled_from(("E1", "E2")))
        events.append(ev(f"e{i}", etype, at, customer, employee, **more))
    as_of = None
    if draw(st.booleans()):
        as_of = (
            draw(st.sampled_from(anchors)) + draw(st.sampled_from((DAY, 40 * DAY)))
        ).isoformat()
    return events, as_of


@settings(max_examples=300, deadline=None)
@given(every_histories())
def test_same_decision_on_drawn_periods(drawn: tuple[list[Event], str | None]) -> None:
    events, as_of = drawn
    assert_same(every_policy(), events, as_of)


# ---------------------------------------------------------------- cadences and month ends

REPEAT_POLICY = """
policy: {id: repeat, title: repeat, version: "1", timezone: Asia/Shanghai, subject: customer}
clauses:
  - {id: R-1, kind: obligation, text: the cadence, reading: the cadence}
params:
  interval: {duration: 3 days}
events:
  approved: {fields: {customer: str, employee: str}}
  tracked: {fields: {customer: str, employee: str}}
  closed: {fields: {customer: str, employee: str}}
  planned: {fields: {customer: str, employee: str}}
rules:
  - id: tracking
    clause: R-1
    on: approved
    expect:
      event: tracked
      match: {customer: $event.customer}
      within: $params.interval
      repeat: true
      consume: true
      key: $event.customer
      obligation: track the project
      party: $event.employee
      cancel_on: {event: [closed], match: {customer: $event.customer}}
      late:
        - set: {flag: tracked_late, value: true}
      missed:
        - set: {flag: untracked, value: true}
  - id: plan-by-month-end
    clause: R-1
    on: approved
    expect:
      event: planned
      match: {customer: $event.customer}
      within: end of month
      obligation: plan by the month's end
      party: $event.employee
"""

REPEAT_TYPES = ("approved", "tracked", "closed", "planned")
D3 = timedelta(days=3)


@functools.cache
def repeat_policy() -> pe.Policy:
    return pe.load_policy_text(REPEAT_POLICY, "repeat.yaml")


REPEAT_EDGES: dict[str, tuple[list[Event], str | None]] = {
    "tracked at each deadline's instant": (
        [ev("a", "approved", T), ev("t1", "tracked", T + D3), ev("t2", "tracked", T + 2 * D3)],
        "2026-03-20T00:00:00+08:00",
    ),
    "tracked a second late restarts from the late record": (
        [
            ev("a", "approved", T),
            ev("t1", "tracked", T + D3 + S),
            ev("t2", "tracked", T + 2 * D3 + S),
        ],
        "2026-03-20T00:00:00+08:00",
    ),
    "two records at one instant meet one duty (consume)": (
        [ev("a", "approved", T), ev("t1", "tracked", T + H), ev("t2", "tracked", T + H)],
        "2026-03-20T00:00:00+08:00",
    ),
    "closing stops the cadence; a late record meets nothing": (
        [
            ev("a", "approved", T),
            ev("t1", "tracked", T + H),
            ev("c", "closed", T + 5 * DAY),
            ev("t2", "tracked", T + 6 * DAY),
        ],
        "2026-05-20T00:00:00+08:00",
    ),
    "a second approval while the cadence runs is not owed (key)": (
        [ev("a1", "approved", T), ev("a2", "approved", T + H)],
        "2026-03-08T00:00:00+08:00",
    ),
    "planned a second before the month ends": (
        [ev("a", "approved", T), ev("p", "planned", MONTH_END - S)],
        "2026-04-20T00:00:00+08:00",
    ),
    "planned at the month's end instant: too late": (
        [ev("a", "approved", T), ev("p", "planned", MONTH_END)],
        "2026-04-20T00:00:00+08:00",
    ),
    "approved at the month's last instant": (
        [ev("a", "approved", MONTH_END - S), ev("p", "planned", MONTH_END - S)],
        "2026-04-20T00:00:00+08:00",
    ),
}


@pytest.mark.parametrize("name", list(REPEAT_EDGES))
def test_same_decision_on_cadences_and_month_ends(name: str) -> None:
    events, as_of = REPEAT_EDGES[name]
    assert_same(repeat_policy(), events, as_of)


def test_the_cadence_edges_decide_differently() -> None:
    p = repeat_policy()
    in_time = p.evaluate(*REPEAT_EDGES["tracked at each deadline's instant"])
    late = p.evaluate(*REPEAT_EDGES["tracked a second late restarts from the late record"])
    assert "tracked_late" in late.flags["C1"] and "tracked_late" not in in_time.flags["C1"]
    before = p.evaluate(*REPEAT_EDGES["planned a second before the month ends"])
    at = p.evaluate(*REPEAT_EDGES["planned at the month's end instant: too late"])
    plan = "plan by the month's end"
    assert [o.status for o in before.obligations if o.what == plan] == ["met"]
    assert [o.status for o in at.obligations if o.what == plan] == ["late"]


@st.composite
def repeat_histories(draw: st.DrawFn) -> tuple[list[Event], str | None]:
    n = draw(st.integers(min_value=0, max_value=12))
    anchors = [BASE, MONTH_END]
    events: list[Event] = []
    for i in range(n):
        etype = draw(st.sampled_from(REPEAT_TYPES))
        at = draw(st.sampled_from(anchors)) + draw(
            st.sampled_from((timedelta(0), H, DAY, D3, 30 * DAY))
        )
        at += draw(st.sampled_from((-S, timedelta(0), timedelta(0), S)))
        anchors.append(at)
        customer = draw(st.sampled_from(("C1", "C2")))
        events.append(ev(f"e{i}", etype, at, customer, draw(st.sampled_from(("E1", "E2")))))
    as_of = None
    if draw(st.booleans()):
        as_of = (
            draw(st.sampled_from(anchors)) + draw(st.sampled_from((DAY, 40 * DAY)))
        ).isoformat()
    return events, as_of


@settings(max_examples=300, deadline=None)
@given(repeat_histories())
def test_same_decision_on_drawn_cadences(drawn: tuple[list[Event], str | None]) -> None:
    events, as_of = drawn
    assert_same(repeat_policy(), events, as_of)


# ---------------------------------------------------------------- working days

WORKING_POLICY = """
policy: {id: working, title: working, version: "1", timezone: Asia/Shanghai, subject: customer}
clauses:
  - {id: W-1, kind: obligation, text: the working days, reading: the working days}
calendar:
  base: china
  outside: weekdays
  holidays: [2026-03-10]
  workdays: [2026-03-14]
params:
  reply_window: {duration: 2 working days}
events:
  asked: {fields: {customer: str, employee: str}}
  answered: {fields: {customer: str, employee: str}}
  booked: {fields: {customer: str, employee: str}}
  served: {fields: {customer: str, employee: str}}
rules:
  - id: reply
    clause: W-1
    on: asked
    expect:
      event: answered
      match: {customer: $event.customer}
      within: $params.reply_window
      obligation: reply within 2 working days
      party: $event.employee
      missed:
        - set: {flag: unanswered, value: true}
  - id: serve
    clause: W-1
    on: booked
    expect:
      event: served
      match: {customer: $event.customer}
      within: same day
      roll: next_working_day
      obligation: serve the booking (rolled to a working day)
      party: $event.employee
  - id: follow
    clause: W-1
    on: served
    expect:
      event: answered
      match: {customer: $event.customer}
      steps:
        - {within: 1 working day, obligation: "working day 1"}
        - {within: 3 working days, obligation: "working day 3"}
      party: $event.employee
"""

WORKING_TYPES = ("asked", "answered", "booked", "served")
FRIDAY = datetime(2026, 3, 6, 10, 0, tzinfo=SHANGHAI)
WEDNESDAY = datetime(2026, 3, 11, 10, 0, tzinfo=SHANGHAI)  # Friday + 2 (Tuesday is off)


@functools.cache
def working_policy() -> pe.Policy:
    return pe.load_policy_text(WORKING_POLICY, "working.yaml")


WORKING_EDGES: dict[str, tuple[list[Event], str | None]] = {
    "Friday plus 2 working days skips the declared day off: met at Wednesday's instant": (
        [ev("a", "asked", FRIDAY), ev("r", "answered", WEDNESDAY)],
        None,
    ),
    "a second after Wednesday's instant is late": (
        [ev("a", "asked", FRIDAY), ev("r", "answered", WEDNESDAY + S)],
        None,
    ),
    "asked on the declared working Saturday": (
        [ev("a", "asked", datetime(2026, 3, 14, 12, 0, tzinfo=SHANGHAI))],
        "2026-03-25T00:00:00+08:00",
    ),
    "asked before the statutory May Day holidays": (
        [ev("a", "asked", datetime(2026, 4, 30, 17, 0, tzinfo=SHANGHAI))],
        "2026-05-20T00:00:00+08:00",
    ),
    "a same-day booking on a Saturday rolls to Monday's end": (
        [
            ev("b", "booked", datetime(2026, 3, 7, 10, 0, tzinfo=SHANGHAI)),
            ev("s", "served", datetime(2026, 3, 9, 23, 59, 59, tzinfo=SHANGHAI)),
        ],
        "2026-03-25T00:00:00+08:00",
    ),
    "a same-day booking on Friday is not rolled": (
        [
            ev("b", "booked", FRIDAY),
            ev("s", "served", datetime(2026, 3, 7, 0, 0, tzinfo=SHANGHAI)),
        ],
        "2026-03-25T00:00:00+08:00",
    ),
    "working-day steps from a service": (
        [
            ev("s", "served", FRIDAY),
            ev("r1", "answered", datetime(2026, 3, 9, 10, 0, tzinfo=SHANGHAI)),
            ev("r2", "answered", datetime(2026, 3, 12, 10, 0, 1, tzinfo=SHANGHAI)),
        ],
        "2026-03-25T00:00:00+08:00",
    ),
}


@pytest.mark.parametrize("name", list(WORKING_EDGES))
def test_same_decision_on_working_days(name: str) -> None:
    events, as_of = WORKING_EDGES[name]
    assert_same(working_policy(), events, as_of)


def test_the_working_day_edges_decide_differently() -> None:
    p = working_policy()
    first = "Friday plus 2 working days skips the declared day off: met at Wednesday's instant"
    in_time = p.evaluate(*WORKING_EDGES[first])
    late = p.evaluate(*WORKING_EDGES["a second after Wednesday's instant is late"])
    assert [o.status for o in in_time.obligations] == ["met"]
    assert [o.status for o in late.obligations] == ["late"]
    rolled = p.evaluate(*WORKING_EDGES["a same-day booking on a Saturday rolls to Monday's end"])
    assert rolled.obligations[0].status == "met"


def test_a_year_the_calendar_guesses_is_the_engines() -> None:
    """2031 is neither statutory nor declared: the engine counts Monday-Friday and says so in
    a notice; the core hands that history back, naming the year."""
    core()
    p = working_policy()
    events = [ev("a", "asked", datetime(2031, 3, 7, 10, 0, tzinfo=SHANGHAI))]
    decision, why = native.run_events(p.program, events, None)
    assert why is not None and "2031" in why
    python = p.evaluate(events, backend="python", resumable=False)
    assert decision.model_dump_json() == python.model_dump_json()
    assert any(n.kind == "calendar" for n in python.notices)


@st.composite
def working_histories(draw: st.DrawFn) -> tuple[list[Event], str | None]:
    n = draw(st.integers(min_value=0, max_value=10))
    anchors = [BASE, FRIDAY, datetime(2026, 4, 30, 17, 0, tzinfo=SHANGHAI)]
    events: list[Event] = []
    for i in range(n):
        etype = draw(st.sampled_from(WORKING_TYPES))
        at = draw(st.sampled_from(anchors)) + draw(
            st.sampled_from((timedelta(0), 14 * H, DAY, D2, 5 * DAY))
        )
        at += draw(st.sampled_from((-S, timedelta(0), timedelta(0), S)))
        anchors.append(at)
        customer = draw(st.sampled_from(("C1", "C2")))
        events.append(ev(f"e{i}", etype, at, customer))
    as_of = None
    if draw(st.booleans()):
        as_of = (draw(st.sampled_from(anchors)) + draw(st.sampled_from((DAY, 9 * DAY)))).isoformat()
    return events, as_of


@settings(max_examples=300, deadline=None)
@given(working_histories())
def test_same_decision_on_drawn_working_days(drawn: tuple[list[Event], str | None]) -> None:
    events, as_of = drawn
    assert_same(working_policy(), events, as_of)


# ---------------------------------------------------------------- the packs' rules, alone


def pack_rule(file: str, rule: str) -> pe.Policy:
    """One rule of a pack with the pack's declarations, as a policy of its own (the packs
    hold forms the core does not run yet: labels, metrics, other rules). Cut from the text:
    a YAML library would read the rules' ``on`` as a yes/no."""
    path = ROOT / "policies" / file
    kept: list[str] = []
    section = ""
    keep_rule = False
    for line in path.read_text(encoding="utf-8").splitlines():
        top = re.match(r"([a-z_]+):", line)
        if top:
            section = top.group(1)
        if section in ("labels", "metrics", "awards", "invariants"):
            continue
        if section == "rules" and not top:
            start = re.match(r"  - id: (\S+)", line)
            if start:
                keep_rule = start.group(1) == rule
            if not keep_rule:
                continue
        kept.append(line)
    return pe.load_policy_text("\n".join(kept) + "\n", path.name)


def scenarios(pattern: str) -> list[tuple[str, list[Event], str | None]]:
    out = []
    for path in sorted((ROOT / "policies").glob(pattern)):
        for sc in yaml.safe_load(path.read_text(encoding="utf-8"))["scenarios"]:
            as_of = sc.get("as_of")
            out.append((f"{path.stem}: {sc['name']}", sc.get("events") or [], as_of and str(as_of)))
    return out


CM = ("customer_management/customer_management.yaml", "customer_management/tests/*.yaml")
SS = ("service_system/service_system.yaml", "service_system/tests/*.yaml")
OS = ("online_store/online_store.yaml", "online_store/tests/*.yaml")
AS = ("huixiao/after_sales.yaml", "huixiao/tests/as*.yaml")
# (the rule's file, the rule, its pack's scenarios): the pack rules the core runs alone now
UNLOCKED = [
    (*CM, "project-tracking"),
    (*CM, "project-progress-3-months"),
    (*CM, "project-breakthrough-6-months"),
    (*CM, "project-qualified-1-year"),
    (*SS, "personal-maintenance-meeting"),
    (*OS, "count-resolved"),
    (*AS, "venue-visit-form"),
    (*AS, "specialist-home-visits"),
]


@pytest.mark.parametrize(("file", "tests", "rule"), UNLOCKED, ids=[r[2] for r in UNLOCKED])
def test_a_pack_rule_alone_on_its_packs_scenarios(file: str, tests: str, rule: str) -> None:
    core()
    policy = pack_rule(file, rule)
    assert policy.rule_ids == [rule]
    assert native.unsupported(policy) is None, native.unsupported(policy)
    ran = 0
    for _, events, as_of in scenarios(tests):
        try:
            python = policy.evaluate(events, as_of=as_of, backend="python", resumable=False)
        except pe.PolicyEngineError:  # a scenario about an event the rule alone refuses
            continue
        same_as(policy, events, as_of, python.model_dump_json())
        ran += 1
    assert ran >= 10
