"""Issue 16: cancel_on lists and cancelled duties, plain timers, rolling duties met late."""

from __future__ import annotations

import json
from typing import Any

import pytest

import policyengine as pe
from policyengine import distributed
from policyengine.errors import PolicyError

POLICY = """\
policy: {id: issue16, title: issue 16, version: "1"}
clauses: [{id: C-1, text: x, reading: x}]
params:
  term: {duration: 10 days}
events:
  admitted: {fields: {customer: str}}
  follow_up: {fields: {customer: str}}
  ended: {fields: {customer: str}}
  paused: {fields: {customer: str, reason: str}}
  asked: {fields: {customer: str}}
  answered: {fields: {customer: str}}
  dropped: {fields: {customer: str}}
  signed: {fields: {customer: str, until: "time?"}}
  left: {fields: {customer: str}}
rules:
  - id: cadence
    clause: C-1
    on: admitted
    expect:
      event: follow_up
      match: {customer: $event.customer}
      repeat: true
      within: 3 days
      consume: true
      obligation: follow up
      late: [{add: {counter: late_follow_ups}}]
      missed: [{add: {counter: missed_follow_ups}}]
      cancel_on:
        - {event: ended, match: {customer: $event.customer}}
        - {event: paused, match: {customer: $event.customer}, where: {eq: [$event.reason, final]}}
  - id: answer
    clause: C-1
    on: asked
    expect:
      event: answered
      match: {customer: $event.customer}
      within: 2 days
      obligation: answer
      cancel_on: {event: dropped, match: {customer: $event.customer}}
  - id: answer-same-day
    clause: C-1
    on: asked
    expect:
      event: answered
      match: {customer: $event.customer}
      within: same day
      obligation: answer the same day
      cancel_on: {event: dropped, match: {customer: $event.customer}}
  - id: membership
    clause: C-1
    on: signed
    then:
      - timer:
          after: $params.term
          key: $event.customer
          cancel_on: [{event: left, match: {customer: $event.customer}}]
          then: [{set: {flag: lapsed, value: $trigger.id}}]
      - timer:
          at: {coalesce: [$event.until, {plus: [$event.at, 1 day]}]}
          then: [{add: {counter: reminders}}]
"""

T0 = "2026-03-01T10:00:00+08:00"


@pytest.fixture(scope="module")
def policy() -> pe.Policy:
    return pe.load_policy_text(POLICY)


def ev(eid: str, etype: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"id": eid, "type": etype, "at": at, "customer": "C1", **fields}


def duties(d: pe.Decision, rule: str) -> list[tuple[str, str | None, str]]:
    return [(o.status, o.met_by, str(o.due)) for o in d.obligations if o.rule == rule]


# ---------------------------------------------------------------- cancellation


def test_cancelled_duty_is_reported_with_its_event_and_traced(policy: pe.Policy) -> None:
    d = policy.evaluate(
        [ev("a", "asked", T0), ev("x", "dropped", "2026-03-01T12:00:00+08:00")],
        as_of="2026-03-05T00:00:00+08:00",
    )
    got = [o for o in d.obligations if o.rule == "answer"]
    assert [(o.status, o.met_by, str(o.met_at)) for o in got] == [
        ("cancelled", "x", "2026-03-01 12:00:00+08:00")
    ]
    entries = [t for t in d.trace if t.kind == "obligation"]
    assert {(t.rule, t.detail["status"], t.detail["by"]) for t in entries} == {
        ("answer", "cancelled", "x"),
        ("answer-same-day", "cancelled", "x"),
    }
    assert all(t.events == ["a", "x"] for t in entries)
    # the JSON dump carries the cancelled duty
    dumped = json.loads(d.model_dump_json())
    assert {o["status"] for o in dumped["obligations"]} == {"cancelled"}
    assert {o["met_by"] for o in dumped["obligations"]} == {"x"}


def test_cancel_at_the_due_instant_wins_an_inclusive_deadline_not_an_exclusive_one(
    policy: pe.Policy,
) -> None:
    """Like a meeting event: at the due instant in time for `2 days`, too late for `same day`
    (its midnight fired before the events at midnight)."""
    d = policy.evaluate(
        [ev("a", "asked", T0), ev("x", "dropped", "2026-03-03T10:00:00+08:00")],
        as_of="2026-03-05T00:00:00+08:00",
    )
    assert duties(d, "answer") == [("cancelled", "x", "2026-03-03 10:00:00+08:00")]
    d = policy.evaluate(
        [ev("a", "asked", T0), ev("x", "dropped", "2026-03-02T00:00:00+08:00")],
        as_of="2026-03-05T00:00:00+08:00",
    )
    assert duties(d, "answer-same-day") == [("overdue", None, "2026-03-02 00:00:00+08:00")]
    assert duties(d, "answer") == [("cancelled", "x", "2026-03-03 10:00:00+08:00")]


def test_each_cancel_entry_has_its_own_where(policy: pe.Policy) -> None:
    events = [
        ev("a", "admitted", T0),
        ev("p1", "paused", "2026-03-02T10:00:00+08:00", reason="holiday"),
        ev("p2", "paused", "2026-03-02T11:00:00+08:00", reason="final"),
    ]
    d = policy.evaluate(events, as_of="2026-03-20T00:00:00+08:00")
    assert duties(d, "cadence") == [("cancelled", "p2", "2026-03-04 10:00:00+08:00")]


def test_the_single_mapping_form_stays_valid() -> None:
    text = POLICY.replace(
        "cancel_on: [{event: left, match: {customer: $event.customer}}]",
        "cancel_on: {event: left, match: {customer: $event.customer}}",
    )
    assert text != POLICY
    d = pe.load_policy_text(text).evaluate(
        [ev("s", "signed", T0), ev("l", "left", "2026-03-02T10:00:00+08:00")],
        as_of="2026-04-01T00:00:00+08:00",
    )
    assert d.flags.get("C1", {}).get("lapsed") is None


# ---------------------------------------------------------------- rolling duties met late


def test_repeat_met_at_due_is_met_one_second_later_is_late_and_restarts(
    policy: pe.Policy,
) -> None:
    events = [
        ev("a", "admitted", T0),
        ev("f1", "follow_up", "2026-03-04T10:00:00+08:00"),
        ev("f2", "follow_up", "2026-03-07T10:00:01+08:00"),
    ]
    d = policy.evaluate(events, as_of="2026-03-08T00:00:00+08:00")
    assert duties(d, "cadence") == [
        ("met", "f1", "2026-03-04 10:00:00+08:00"),
        ("late", "f2", "2026-03-07 10:00:00+08:00"),
        ("open", None, "2026-03-10 10:00:01+08:00"),  # the next window starts at f2
    ]
    assert d.counters.get("C1", {}).get("late_follow_ups", 0) == 1
    assert d.counters.get("C1", {}).get("missed_follow_ups", 0) == 1


def test_an_overdue_cadence_is_one_duty_not_a_pile(policy: pe.Policy) -> None:
    d = policy.evaluate([ev("a", "admitted", T0)], as_of="2026-04-01T00:00:00+08:00")
    assert duties(d, "cadence") == [("overdue", None, "2026-03-04 10:00:00+08:00")]
    assert d.counters.get("C1", {}).get("missed_follow_ups", 0) == 1


def test_a_cancelled_cadence_leaves_its_overdue_duty_overdue(policy: pe.Policy) -> None:
    events = [
        ev("a", "admitted", T0),
        ev("e", "ended", "2026-03-05T10:00:00+08:00"),
        ev("f", "follow_up", "2026-03-06T10:00:00+08:00"),
    ]
    d = policy.evaluate(events, as_of="2026-04-01T00:00:00+08:00")
    assert duties(d, "cadence") == [("overdue", None, "2026-03-04 10:00:00+08:00")]


# ---------------------------------------------------------------- timers


def test_a_timer_fires_exactly_at_its_instant(policy: pe.Policy) -> None:
    events = [ev("s", "signed", T0)]
    # as of its instant it has not fired yet, as a deadline at as_of is still open
    just_before = policy.evaluate(events, as_of="2026-03-11T10:00:00+08:00")
    assert just_before.flags.get("C1", {}).get("lapsed") is None
    at = policy.evaluate(events, as_of="2026-03-11T10:00:00.000001+08:00")
    assert at.flags.get("C1", {})["lapsed"] == "s"  # $trigger is the setting event
    entries = [t for t in at.trace if t.kind == "timer" and t.rule == "membership"]
    assert [t.detail["status"] for t in entries] == ["set", "set", "fired", "fired"]


def test_an_event_at_the_instant_comes_first_one_microsecond_later_too_late(
    policy: pe.Policy,
) -> None:
    at = [ev("s", "signed", T0), ev("l", "left", "2026-03-11T10:00:00+08:00")]
    d = policy.evaluate(at, as_of="2026-04-01T00:00:00+08:00")
    assert d.flags.get("C1", {}).get("lapsed") is None
    later = [ev("s", "signed", T0), ev("l", "left", "2026-03-11T10:00:00.000001+08:00")]
    d = policy.evaluate(later, as_of="2026-04-01T00:00:00+08:00")
    assert d.flags.get("C1", {})["lapsed"] == "s"


def test_a_timer_with_the_same_key_replaces_the_pending_one(policy: pe.Policy) -> None:
    events = [ev("s1", "signed", T0), ev("s2", "signed", "2026-03-05T10:00:00+08:00")]
    d = policy.evaluate(events, as_of="2026-03-12T00:00:00+08:00")
    assert d.flags.get("C1", {}).get("lapsed") is None  # s1's timer was replaced
    d = policy.evaluate(events, as_of="2026-03-15T10:00:01+08:00")
    assert d.flags.get("C1", {})["lapsed"] == "s2"
    # the unkeyed reminder timers both fire, one day after each signing
    assert d.counters.get("C1", {}).get("reminders", 0) == 2


def test_a_timer_at_a_computed_instant(policy: pe.Policy) -> None:
    events = [ev("s", "signed", T0, until="2026-03-01T15:00:00+08:00")]
    assert (
        policy.evaluate(events, as_of="2026-03-01T15:00:00+08:00")
        .counters.get("C1", {})
        .get("reminders", 0)
        == 0
    )
    assert (
        policy.evaluate(events, as_of="2026-03-01T15:00:01+08:00")
        .counters.get("C1", {})
        .get("reminders", 0)
        == 1
    )


@pytest.mark.parametrize(
    ("timer", "code"),
    [
        ("{at: 3 days, then: [{clear: x}]}", "PE"),
        ("{after: $event.customer, then: [{clear: x}]}", "PE118"),
        ("{at: 3 days, after: 3 days, then: [{clear: x}]}", "PE"),
    ],
)
def test_timer_shapes_are_checked_at_load(timer: str, code: str) -> None:
    text = POLICY.replace(
        "      - timer:\n          at: {coalesce",
        f"      - timer: {timer}\n      - timer:\n          at: {{coalesce",
    )
    assert text != POLICY
    with pytest.raises(PolicyError) as info:
        pe.load_policy_text(text)
    assert code in str(info.value)


# ---------------------------------------------------------------- every path agrees

HISTORY = [
    ev("a", "admitted", T0),
    ev("f1", "follow_up", "2026-03-04T10:00:00+08:00"),
    ev("f2", "follow_up", "2026-03-07T10:00:01+08:00"),
    ev("q", "asked", "2026-03-02T10:00:00+08:00"),
    ev("x", "dropped", "2026-03-03T10:00:00+08:00"),
    ev("s1", "signed", "2026-03-02T10:00:00+08:00"),
    ev("s2", "signed", "2026-03-06T10:00:00+08:00", until="2026-03-06T12:00:00+08:00"),
    {"id": "b", "type": "admitted", "at": T0, "customer": "C2"},
    {"id": "e", "type": "ended", "at": "2026-03-02T10:00:00+08:00", "customer": "C2"},
    {"id": "t", "type": "signed", "at": T0, "customer": "C2"},
    {"id": "l", "type": "left", "at": "2026-03-03T10:00:00+08:00", "customer": "C2"},
]
AS_OF = "2026-03-25T00:00:00+08:00"


def canonical(d: pe.Decision) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(d.model_dump_json())
    out.pop("trace", None)
    out.pop("notices", None)
    return out


def test_evaluate_many_agrees(policy: pe.Policy) -> None:
    single = policy.evaluate(HISTORY, as_of=AS_OF)
    many = distributed.evaluate_many(policy, HISTORY, as_of=AS_OF, workers=1)
    assert canonical(many) == canonical(single)
    assert "cancelled" in {o.status for o in single.obligations}


def test_resume_at_every_cut_agrees(policy: pe.Policy) -> None:
    from policyengine import times

    full = policy.evaluate(HISTORY, as_of=AS_OF)
    cuts = sorted({times.instant_us(e["at"]) for e in HISTORY})
    cuts += [c + 1 for c in cuts] + [times.instant_us("2026-03-12T10:00:00+08:00")]
    for cut in sorted(set(cuts)):
        before = [e for e in HISTORY if times.instant_us(e["at"]) <= cut]
        after = [e for e in HISTORY if times.instant_us(e["at"]) > cut]
        stored = policy.evaluate(before, as_of=times.iso_utc(cut)).snapshot()
        resumed = policy.resume(stored, after, as_of=AS_OF)
        assert resumed == full, times.iso_utc(cut)
