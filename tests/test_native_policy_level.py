"""The Rust core decides the policy-level constructs byte for byte as the Python engine does.

Labels without ``on:`` (each subject at the horizon), rules with ``every:`` (the period's
tick), the derived ``owner_changed`` events (rules and duties on them, chains of them) and
metrics and awards (the core keeps their periods' clock and records the state at each
close; the engine's ``World.close`` measures): each on small policies at their edges, the
decisions compared as JSON, then on hypothesis-drawn histories of one policy with all of
them. What the core cannot do exactly stays ``unsupported``, named with its place.
"""

from __future__ import annotations

import functools
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import policyengine as pe
from optional import require
from policyengine.backends import native
from policyengine.errors import EvaluationError
from policyengine.runtime.events import prepare
from policyengine.times import from_dt, parse_instant
from strategies import profile

ROOT = Path(__file__).resolve().parents[1]
PROFILE = profile()
Event = dict[str, Any]

HEAD = """
policy: {id: pl, title: pl, version: "1", timezone: Asia/Shanghai, subject: customer}
clauses:
  - {id: P-1, kind: ownership, text: the text, reading: the reading}
params:
  target: {number: 0.5}
events:
  registered: {fields: {customer: str, employee: str}}
  released: {fields: {customer: str}}
  resolved: {fields: {customer: str, employee: str}}
  rated: {fields: {customer: str, employee: str, score: int, grade: {type: str, default: ok}}}
"""

LABELS = """
rules:
  - id: own
    clause: P-1
    on: registered
    then:
      - assign: $event.employee
  - id: resolve
    clause: P-1
    on: resolved
    then:
      - set: {flag: done, value: true}
labels:
  tier:
    clause: P-1
    cases:
      - {value: A, when: {history: {type: resolved, match: {customer: $subject, employee: E1}}}}
      - {value: B, when: {ge: [{count: {type: registered, match: {customer: $subject}}}, 2]}}
      - {value: C, when: {eq: [$subject.flags.done, true]}}
  owned:
    clause: P-1
    cases:
      - {value: "yes", when: {exists: $subject.owner}}
"""

OWNER = """
rules:
  - id: own
    clause: P-1
    on: registered
    then:
      - assign: $event.employee
  - id: free
    clause: P-1
    on: released
    then:
      - release: null
  - id: bounce
    clause: P-1
    on: owner_changed
    when: {eq: [$event.owner, E1]}
    then:
      - assign: E2
  - id: note
    clause: P-1
    on: owner_changed
    then:
      - set: {flag: was, value: $event.previous}
      - set: {flag: by, value: $event.id}
  - id: must-own
    clause: P-1
    on: registered
    expect:
      event: owner_changed
      match: {customer: $event.customer}
      within: 1 day
      obligation: a new owner
      party: $event.employee
      missed:
        - assign: E9
"""

PERIODIC = """
rules:
  - id: own
    clause: P-1
    on: registered
    then:
      - assign: $event.employee
  - id: monthly
    clause: P-1
    every: month
    when: {history: {type: registered}}
    then:
      - penalty: {party: E1, sanction: warning}
  - id: weekly
    clause: P-1
    every: week
    then:
      - penalty: {party: $event.period, sanction: warning}
  - id: daily
    clause: P-1
    every: day
    when: {ge: [{count: {type: registered}}, 2]}
    expect:
      event: registered
      within: 1 day
      obligation: another registration
      party: $event.id
"""

METRICS = """
rules:
  - id: raise
    clause: P-1
    on: registered
    then:
      - add: {counter: raised, party: $event.employee}
  - id: resolve
    clause: P-1
    on: resolved
    then:
      - add: {counter: resolved, party: $event.employee}
metrics:
  - id: rate
    clause: P-1
    parties: {parties_with: raised}
    numerator: {added: resolved}
    denominator: {added: raised}
    target: {ge: $params.target}
  - id: total
    clause: P-1
    every: week
    parties: {parties_with: raised}
    value: {counter: raised}
  - id: score
    clause: P-1
    parties: {values: {type: rated, since: $event.start, field: employee}}
    value:
      avg: {values: {type: rated, match: {employee: $party}, since: $event.start, field: score}}
    grades:
      - {grade: good, min: 4}
      - {grade: poor}
awards:
  - id: star
    clause: P-1
    title: star
    metric: score
    tie_break: [{metric: rate}]
"""

# everything at once, for the generated histories
ALL = (
    HEAD
    + """
rules:
  - id: own
    clause: P-1
    on: registered
    then:
      - assign: $event.employee
      - add: {counter: raised, party: $event.employee}
  - id: free
    clause: P-1
    on: released
    then:
      - release: null
  - id: resolve
    clause: P-1
    on: resolved
    then:
      - set: {flag: done, value: true}
      - add: {counter: resolved, party: $event.employee}
  - id: bounce
    clause: P-1
    on: owner_changed
    when: {eq: [$event.owner, E1]}
    then:
      - assign: E2
  - id: note
    clause: P-1
    on: owner_changed
    then:
      - set: {flag: was, value: $event.previous}
      - add: {counter: moves, party: $event.id}
  - id: must-own
    clause: P-1
    on: registered
    expect:
      event: owner_changed
      match: {customer: $event.customer}
      within: 2 days
      obligation: a new owner
      party: $event.employee
      missed:
        - assign: E9
        - add: {counter: raised, party: E9}
  - id: refuse
    clause: P-1
    on: rated
    when: {eq: [$event.grade, bad]}
    then:
      - reject: a bad grade is refused
  - id: monthly
    clause: P-1
    every: month
    when: {history: {type: registered, since: $event.start}}
    then:
      - penalty: {party: E1, sanction: warning}
  - id: weekly
    clause: P-1
    every: week
    then:
      - penalty: {party: $event.period, sanction: warning}
labels:
  tier:
    clause: P-1
    cases:
      - {value: A, when: {history: {type: resolved, match: {customer: $subject, employee: E1}}}}
      - {value: B, when: {eq: [$subject.flags.done, true]}}
      - {value: C, when: {exists: $subject.owner}}
  moved:
    clause: P-1
    on: [owner_changed, rated]
    subject: $event.customer
    cases:
      - {value: moved, reason: a new owner, when: {eq: [$event.type, owner_changed]}}
      - {value: rated, when: {history: {type: rated, match: {customer: $event.customer}}}}
"""
    + METRICS.split("metrics:", 1)[1].join(["metrics:", ""])
    + """
invariants:
  - id: owned
    holds: {exists: $subject.owner}
"""
)


def core() -> Any:
    return require(native.MODULE)


@functools.cache
def load(body: str) -> pe.Policy:
    return pe.load_policy_text(
        body if body.lstrip().startswith("policy:") else HEAD + body, "pl.yaml"
    )


def instant(day: int, hour: int = 10) -> str:
    t = datetime(2026, 2, 26, tzinfo=UTC) + timedelta(days=day, hours=hour - 8)
    return t.isoformat()


def ev(eid: str, etype: str, day: int, hour: int = 10, **fields: Any) -> Event:
    return {"id": eid, "type": etype, "at": instant(day, hour), **fields}


def assert_same(policy: pe.Policy, events: list[Event], as_of: str | None = None) -> str:
    """Both backends' decisions as JSON, equal; the native one made by the core (through
    ``run`` and ``run_events``); returns it."""
    assert native.unsupported(policy) is None, native.unsupported(policy)
    horizon = None if as_of is None else from_dt(parse_instant(as_of, "as_of"))
    ours, why = native.run(policy.program, prepare(policy.compiled, events), horizon)
    assert why is None, why
    raw, why = native.run_events(policy.program, events, horizon)
    assert why is None, why
    python = policy.evaluate(events, as_of=as_of, backend="python", resumable=False)
    mine = ours.model_dump_json()
    assert raw.model_dump_json() == mine
    assert policy.evaluate(events, as_of=as_of, backend="native").model_dump_json() == mine
    assert mine == python.model_dump_json()
    return mine


# ---------------------------------------------------------------- labels


def test_labels_at_the_horizon() -> None:
    core()
    policy = load(LABELS)
    events = [
        ev("r1", "registered", 1, customer="C1", employee="E1"),
        ev("r2", "registered", 1, 11, customer="C2", employee="E2"),
        ev("r3", "registered", 2, customer="C2", employee="E2"),
        ev("s1", "resolved", 3, customer="C3", employee="E2"),
        ev("s2", "resolved", 4, customer="C1", employee="E1"),
    ]
    out = policy.evaluate(events, backend="native")
    assert out.subject_labels == {
        "C1": {"tier": "A", "owned": "yes"},
        "C2": {"tier": "B", "owned": "yes"},
        "C3": {"tier": "C", "owned": None},
    }
    assert_same(policy, events)
    # the label changes with the event at the horizon's instant: it counts (events up to as_of)
    assert_same(policy, events, instant(4))
    assert load(LABELS).evaluate(events, as_of=instant(4), backend="native").labels("C1") == {
        "tier": "A",
        "owned": "yes",
    }
    assert_same(policy, events, instant(4, 9))
    assert_same(policy, events[:1], instant(1))
    assert_same(policy, [])


CLASSIFY = (
    OWNER
    + """
  - id: refuse
    clause: P-1
    on: rated
    when: {eq: [$event.grade, bad]}
    then:
      - reject: a bad grade is refused
labels:
  kind:
    clause: P-1
    on: rated
    subject: $event.employee
    cases:
      - {value: top, reason: the best grade, when: {eq: [$event.grade, top]}}
      - {value: again, when: {history: {type: rated, match: {employee: $event.employee}}}}
  moved:
    clause: P-1
    on: [owner_changed, registered]
    cases:
      - {value: moved, reason: it has an owner, when: {exists: $subject.owner}}
  owned:
    clause: P-1
    cases:
      - {value: "yes", when: {exists: $subject.owner}}
"""
)


def test_labels_that_classify_at_events() -> None:
    core()
    policy = load(CLASSIFY)
    events = [
        ev("r1", "registered", 1, customer="C1", employee="E1"),
        ev("s1", "rated", 1, 11, customer="C2", employee="E1", score=3),
        # rejected: unclassified, and out of the history
        ev("s2", "rated", 2, customer="C2", employee="E1", score=1, grade="bad"),
        ev("s3", "rated", 2, customer="C3", employee="E2", score=5, grade="top"),
        ev("s4", "rated", 3, customer="C3", employee="E1", score=4),
    ]
    out = assert_same(policy, events)
    decision = policy.evaluate(events, backend="native")
    assert decision.labels("E1") == {"kind": "again"}
    assert decision.labels("C1") == {"owned": "yes", "moved": "moved"}
    # the registration is classified before its rules run (no owner yet), then each change
    assert [c.value for c in decision.classifications if c.label == "moved"] == [
        None,
        "moved",
        "moved",
    ]
    assert '"event":"s2"' not in out.split('"classifications"')[1].split('"trace"')[0]
    for cut in (instant(1), instant(1, 11), instant(2), instant(2, 9)):
        assert_same(policy, events, cut)


def test_invariants_at_the_horizon() -> None:
    core()
    body = (
        LABELS
        + """
invariants:
  - id: owned
    holds: {exists: $subject.owner}
  - id: not-done
    holds: {not: {eq: [$subject.flags.done, true]}}
"""
    )
    policy = load(body)
    events = [
        ev("s1", "resolved", 1, customer="C3", employee="E2"),
        ev("r1", "registered", 2, customer="C1", employee="E1"),
        ev("s2", "resolved", 3, customer="C1", employee="E1"),
    ]
    assert_same(policy, events)
    decision = policy.evaluate(events, backend="native")
    assert decision.broken_invariants == {"owned": ["C3"], "not-done": ["C3", "C1"]}
    assert_same(policy, events, instant(2))
    assert_same(policy, [])


# ---------------------------------------------------------------- owner_changed


def test_owner_changed_rules_duties_and_chains() -> None:
    core()
    policy = load(OWNER)
    events = [
        # E1 takes C1; the change makes `bounce` change it again, to E2 (a chain)
        ev("r1", "registered", 1, customer="C1", employee="E1"),
        ev("r2", "registered", 1, 11, customer="C2", employee="E3"),
        ev("x1", "released", 1, 12, customer="C2"),
        # the same owner again: no change, so the duty is missed and its branch assigns E9
        ev("r3", "registered", 5, customer="C1", employee="E2"),
        ev("r4", "registered", 9, customer="C2", employee="E3"),
    ]
    out = assert_same(policy, events)
    decision = policy.evaluate(events, backend="native")
    assert decision.ownerships["C1"][-1].owner == "E9"
    assert decision.flags["C1"]["was"] == "E2" and '"rule":"bounce"' in out
    statuses = [o.status for o in decision.obligations]
    # missed at its deadline, whose branch's change of owner then meets it late
    assert "met" in statuses and "late" in statuses
    for cut in (instant(1), instant(1, 12), instant(6, 10), instant(6, 11)):
        assert_same(policy, events, cut)


def test_owner_changes_that_never_settle_fail_on_both() -> None:
    core()
    body = OWNER.replace("when: {eq: [$event.owner, E1]}", "when: {ne: [$event.owner, E1]}")
    body = body.replace("      - assign: E2\n", "      - assign: E1\n", 1)
    body += """
  - id: flip
    clause: P-1
    on: owner_changed
    when: {eq: [$event.owner, E1]}
    then:
      - assign: E3
"""
    policy = load(body)
    assert native.unsupported(policy) is None
    events = [ev("r1", "registered", 1, customer="C1", employee="E2")]
    with pytest.raises(EvaluationError) as python:
        policy.evaluate(events, backend="python")
    with pytest.raises(EvaluationError) as ours:
        policy.evaluate(events, backend="native")
    assert str(ours.value) == str(python.value)


def test_a_declared_owner_changed_event_stays_on_python() -> None:
    body = OWNER.replace("rules:", "", 1)
    head = HEAD + '  owner_changed: {fields: {customer: str, owner: "str?", previous: "str?"}}\n'
    policy = pe.load_policy_text(head + "rules:" + body, "pl.yaml")
    reason = native.unsupported(policy)
    assert reason is not None and "owner_changed" in reason


# ---------------------------------------------------------------- periodic rules


def test_periodic_rules_first_and_last_ticks() -> None:
    core()
    policy = load(PERIODIC)
    events = [
        # the first event exactly at a month's and a day's start: their ticks come first
        {
            "id": "r1",
            "type": "registered",
            "at": "2026-03-01T00:00:00+08:00",
            "customer": "C1",
            "employee": "E1",
        },
        ev("r2", "registered", 4, customer="C2", employee="E2"),
        ev("r3", "registered", 12, customer="C2", employee="E2"),
    ]
    out = assert_same(policy, events)
    assert '"rule":"daily"' in out and "2026-W09" in out
    # March's tick came before the registration at its instant: the history was empty
    assert '"rule":"monthly"' not in out
    # the last tick: a horizon at a period's start fires its tick; one microsecond before not
    for cut in (
        "2026-04-01T00:00:00+08:00",
        "2026-03-31T23:59:59.999999+08:00",
        "2026-03-09T00:00:00+08:00",
        "2026-06-01T00:00:00+08:00",
    ):
        assert_same(policy, events, cut)
    april = policy.evaluate(events, as_of="2026-04-01T00:00:00+08:00", backend="native")
    assert april.fired["monthly"] == 1  # April's tick, at the horizon
    assert "monthly" not in policy.evaluate(events, as_of="2026-03-31T23:59:59.999999+08:00").fired
    # ISO weeks across a year's end (2026-W53) and the first event in the middle of a week
    late = [
        ev("y1", "registered", 300, customer="C9", employee="E1"),
        ev("y2", "registered", 320, customer="C9", employee="E1"),
    ]
    assert "2026-W53" in assert_same(policy, late)


def test_periodic_rules_in_a_zone_with_summer_time_stay_on_python() -> None:
    body = (HEAD + PERIODIC.split("  - id: daily")[0]).replace("Asia/Shanghai", "Europe/Berlin")
    reason = native.unsupported(load(body))
    assert reason is not None and "Europe/Berlin" in reason


# ---------------------------------------------------------------- metrics and awards


def test_metrics_and_awards() -> None:
    core()
    policy = load(METRICS)
    events = [
        ev("1", "registered", 3, customer="C1", employee="E1"),
        ev("2", "registered", 4, customer="C2", employee="E2"),
        ev("3", "resolved", 5, customer="C1", employee="E1"),
        ev("4", "rated", 5, customer="C1", employee="E1", score=5),
        ev("5", "rated", 6, customer="C2", employee="E2", score=5),
        # at the month's end instant: after the close, so in April
        {
            "id": "6",
            "type": "registered",
            "at": "2026-04-01T00:00:00+08:00",
            "customer": "C6",
            "employee": "E2",
        },
        # April and May empty; June again
        ev("7", "registered", 100, customer="C7", employee="E3"),
    ]
    out = assert_same(policy, events)
    decision = policy.evaluate(events, backend="native")
    march = [m for m in decision.metrics if m.period == "2026-03"]
    assert {(m.rule, m.party) for m in march} >= {("rate", "E1"), ("score", "E2")}
    assert [a.party for a in decision.awards if a.period == "2026-03"] == ["E1"]
    assert '"2026-05"' not in out  # a period with no one to measure reports nothing
    for cut in (
        "2026-03-01T00:00:00+08:00",
        instant(5),
        "2026-04-01T00:00:00+08:00",
        "2026-04-01T00:00:00.000001+08:00",
        "2026-07-01T00:00:00+08:00",
    ):
        assert_same(policy, events, cut)


def test_a_metric_reading_subject_state_stays_on_python() -> None:
    body = METRICS.replace(
        "value: {counter: raised}",
        "value: {count: {type: registered, match: {customer: $subject}}}",
    )
    reason = native.unsupported(load(body))
    assert reason is not None and "metric 'total'" in reason and "pl.yaml:" in reason


def online_store_metrics() -> pe.Policy:
    """The online store pack's metrics and award as written (OS-4, OS-6), on rules that make
    their counters."""
    pack = yaml.safe_load((ROOT / "policies/online_store/online_store.yaml").read_text("utf-8"))
    doc = {
        "policy": {**pack["policy"], "unknown_events": "reject"},
        "clauses": [c for c in pack["clauses"] if c["id"] in ("OS-4", "OS-6")],
        "params": {k: v for k, v in pack["params"].items() if k.startswith(("weight", "grade"))},
        "events": {
            "satisfaction_rated": pack["events"]["satisfaction_rated"],
            "assessment_scored": pack["events"]["assessment_scored"],
            "issue": {
                "fields": {"customer": "str", "employee": "str", "step": ["raised", "resolved"]}
            },
            "answered": {"fields": {"customer": "str", "employee": "str", "late": "bool"}},
        },
        "rules": [
            {
                "id": "raised",
                "clause": "OS-4",
                "on": "issue",
                "when": {"eq": ["$event.step", "raised"]},
                "then": [{"add": {"counter": "issues_raised", "party": "$event.employee"}}],
            },
            {
                "id": "resolved",
                "clause": "OS-4",
                "on": "issue",
                "when": {"eq": ["$event.step", "resolved"]},
                "then": [{"add": {"counter": "issues_resolved", "party": "$event.employee"}}],
            },
            {
                "id": "due",
                "clause": "OS-4",
                "on": "answered",
                "then": [{"add": {"counter": "responses_due", "party": "$event.employee"}}],
            },
            {
                "id": "on-time",
                "clause": "OS-4",
                "on": "answered",
                "when": {"eq": ["$event.late", False]},
                "then": [{"add": {"counter": "responses_on_time", "party": "$event.employee"}}],
            },
        ],
        "metrics": pack["metrics"],
        "awards": pack["awards"],
    }
    return pe.load_policy_text(yaml.safe_dump(doc, allow_unicode=True), "os.yaml")


@pytest.mark.parametrize("seed", range(6))
def test_the_online_store_metrics_and_award(seed: int) -> None:
    core()
    policy = online_store_metrics()
    rnd = random.Random(seed)
    events: list[Event] = []
    for i in range(rnd.randint(5, 60)):
        at = datetime(2026, 2, 26, 16, tzinfo=UTC) + timedelta(hours=rnd.randint(0, 24 * 70))
        emp = rnd.choice(["E1", "E2", "E3"])
        kind = rnd.choice(["satisfaction_rated", "assessment_scored", "issue", "answered"])
        e: Event = {"id": f"e{i}", "type": kind, "at": at.isoformat(), "employee": emp}
        if kind == "satisfaction_rated":
            e["score"] = rnd.randint(50, 100)
        elif kind == "assessment_scored":
            e["source"] = rnd.choice(["self", "supervisor", "customer"])
            e["score"] = rnd.choice([60, 85, 92.5, 100])
        elif kind == "issue":
            e["customer"], e["step"] = f"C{i}", rnd.choice(["raised", "resolved"])
        else:
            e["customer"], e["late"] = f"C{i}", rnd.random() < 0.3
        events.append(e)
    for emp, score in (("E1", 90), ("E2", 90)):  # a composite for two: a tie to break
        for source in ("self", "supervisor", "customer"):
            at = f"2026-03-1{seed}T12:00:00+08:00"
            e = {"type": "assessment_scored", "at": at, "employee": emp, "source": source}
            events.append({**e, "id": f"{emp}-{source}", "score": score})
    events.sort(key=lambda e: e["at"])
    out = assert_same(policy, events)
    assert '"rule":"composite-score"' in out and '"rule":"service-star"' in out
    assert_same(policy, events, "2026-04-01T00:00:00+08:00")


# ---------------------------------------------------------------- the packs


@pytest.mark.parametrize(
    "pack", ["huixiao/after_sales.yaml", "online_store", "service_system", "customer_management"]
)
def test_no_pack_is_refused_for_its_policy_level_constructs(pack: str) -> None:
    path = ROOT / "policies" / pack
    policy = pe.load_policy(path)
    reason = native.unsupported(policy)
    if reason is None:  # the whole pack runs on the core (tests/test_native_packs.py)
        return
    assert reason.startswith(("rule ", "label ")), reason
    for what in ("metrics are", "awards are", "periodic rules", "rules on owner_changed"):
        assert what not in reason


# ---------------------------------------------------------------- generated histories


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Event], str | None]:
    n = draw(st.integers(0, 18))
    events = []
    for i in range(n):
        kind = draw(st.sampled_from(["registered", "released", "resolved", "rated"]))
        minute = draw(st.integers(0, 75 * 24 * 4)) * 15
        at = datetime(2026, 2, 27, 16, tzinfo=UTC) + timedelta(minutes=minute)
        e: Event = {
            "id": f"e{i}",
            "type": kind,
            "at": at.isoformat(),
            "customer": draw(st.sampled_from(["C1", "C2", "C3"])),
        }
        if kind != "released":
            e["employee"] = draw(st.sampled_from(["E1", "E2", "E3"]))
        if kind == "rated":
            e["score"] = draw(st.integers(1, 5))
            grade = draw(st.sampled_from([None, "bad", "top"]))
            if grade is not None:
                e["grade"] = grade
        events.append(e)
    events.sort(key=lambda e: e["at"])
    as_of = draw(
        st.one_of(
            st.none(),
            st.sampled_from([e["at"] for e in events] or [None]),
            st.sampled_from(
                [
                    "2026-03-01T00:00:00+08:00",
                    "2026-03-16T00:00:00+08:00",
                    "2026-04-01T00:00:00+08:00",
                    "2026-05-01T00:00:00+08:00",
                ]
            ),
        )
    )
    return events, as_of


@PROFILE
@given(histories())
def test_same_decision_on_generated_histories(case: tuple[list[Event], str | None]) -> None:
    core()
    events, as_of = case
    policy = load(ALL)
    if as_of is not None and events and as_of < events[0]["at"]:
        as_of = None
    assert_same(policy, events, as_of)


def test_metrics_of_counters_only_take_the_raw_path_and_history_reads_the_prepared() -> None:
    """A metric that reads only counters (huixiao's referral rate) leaves the raw events to
    the core; one that reads the history (online_store's) is measured on the prepared events.
    Either way the decision is the reference's."""
    core()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import generate

    hx = pe.load_policy(ROOT / "policies" / "huixiao")
    shop = pe.load_policy(ROOT / "policies" / "online_store")
    ir_hx, ir_shop = native.intermediate(hx), native.intermediate(shop)
    assert ir_hx is not None and ir_hx["metrics_read_history"] is False
    assert ir_shop is not None and ir_shop["metrics_read_history"] is True
    events = generate(60, seed=3)
    assert native.checked_in_core(hx, events)
    assert hx.evaluate(events, backend="native").model_dump_json() == (
        hx.evaluate(events, backend="python", resumable=False).model_dump_json()
    )
    assert not native.checked_in_core(shop, [])
