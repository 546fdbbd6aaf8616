"""Party routes in stream mode (``stream.party_routes``): an event without a subject that
only moves or releases one party's subjects goes only to the groups whose events name that
party; the reasoning refuses what it cannot see through, and the per-subject check has teeth
(the routing made blind to parties is caught)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine import stream
from policyengine.backends import stream as stream_backend

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import generate  # noqa: E402

HX = pe.load_policy(ROOT / "policies" / "huixiao")
AS_OF = "2026-09-30T23:59:59+08:00"

HEAD = """
policy:
  {id: routes, title: routes, version: "1", timezone: Asia/Shanghai, currency: CNY,
   subject: customer}
clauses:
  - {id: C-1, kind: ownership, text: 规则, reading: a rule}
events:
  registered: {fields: {customer: str, employee: str}}
  left: {fields: {employee: str, other: "str?"}}
  handed: {fields: {employee: str, other: "str?"}}
rules:
  - id: claim
    clause: C-1
    on: registered
    then: [{claim: $event.employee}, {assign: $event.employee}]
"""


def _policy(rules: str) -> pe.Policy:
    return pe.load_policy_text(HEAD + rules)


def test_the_huixiao_resignations_are_routed_by_employee() -> None:
    assert stream.party_routes(HX) == {
        "employee_resigned": "employee",
        "resources_handed_over": "employee",
    }


def test_a_transfer_and_a_release_by_one_field_route() -> None:
    p = _policy("""
  - id: leave
    clause: C-1
    on: left
    when: {not: {history: {type: handed, match: {employee: $event.employee}}}}
    then: [{transfer: {from: $event.employee, to: company}}, {drop_claims: $event.employee}]
""")
    assert stream.party_routes(p) == {"left": "employee", "handed": "employee"}


@pytest.mark.parametrize(
    "rules",
    [
        # an action on the subjects beyond moving or releasing a party's
        """
  - id: leave
    clause: C-1
    on: left
    then:
      - transfer: {from: $event.employee, to: company}
      - for_each_subject: {subjects: any, where: {eq: [$subject.owner, $event.employee]}}
        assign: $event.other
""",
        # two different fields
        """
  - id: leave
    clause: C-1
    on: left
    then: [{transfer: {from: $event.employee, to: company}}, {drop_claims: $event.other}]
""",
    ],
)
def test_what_the_reasoning_cannot_see_through_goes_everywhere(rules: str) -> None:
    assert "left" not in stream.party_routes(_policy(rules))


def test_a_read_by_another_field_goes_everywhere() -> None:
    p = _policy("""
  - id: leave
    clause: C-1
    on: left
    when: {not: {history: {type: handed, match: {other: $event.employee}}}}
    then: [{transfer: {from: $event.employee, to: company}}]
""")
    # `handed` is read with its `other` field: routed by that, consistently with `left`
    assert stream.party_routes(p) == {"left": "employee", "handed": "other"}
    q = _policy("""
  - id: leave
    clause: C-1
    on: left
    when: {not: {history: {type: handed, match: {employee: $event.other}}}}
    then: [{transfer: {from: $event.employee, to: company}}]
""")
    assert stream.party_routes(q) == {"left": "employee"}  # not held to the party: everywhere


def _ev(eid: str, etype: str, day: int, **fields: Any) -> dict[str, Any]:
    return {"id": eid, "type": etype, "at": f"2026-03-{day:02d}T10:00:00+08:00", **fields}


def test_groups_get_the_events_of_their_parties_and_of_constants() -> None:
    p = _policy("""
  - id: leave
    clause: C-1
    on: left
    then: [{transfer: {from: $event.employee, to: company}}]
""")
    events = [
        _ev("l1", "left", 5, employee="li"),
        _ev("l2", "left", 5, employee="wang"),
        _ev("l3", "left", 6, employee="company"),  # a constant: its subjects are anywhere
        _ev("r1", "registered", 1, customer="A", employee="li"),
        _ev("r2", "registered", 1, customer="B", employee="zhao"),
    ]
    results = [g for g in stream.groups(p, events) if g.index >= 0 and g.subjects]
    given = {g.subjects[0]: {events[i]["id"] for i in g.shared} for g in results}
    assert given == {"A": {"l1", "l3"}, "B": {"l3"}}
    whole = p.evaluate(events, resumable=False)
    a = next(g for g in results if g.subjects == ("A",))
    assert a.decision.ownerships["A"] == whole.ownerships["A"]
    assert a.decision.ownerships["A"][-1].owner == "company"


def _differs(history: list[dict[str, Any]]) -> int:
    """Groups whose subjects' ownership differs from the whole history's."""
    whole = HX.evaluate(history, as_of=AS_OF, resumable=False).ownerships
    bad = 0
    for g in stream.groups(HX, stream.grouped(HX, history), as_of=AS_OF):
        for s in g.subjects:
            if g.decision.ownerships.get(s) != whole.get(s):
                bad += 1
    return bad


def test_routing_leaves_events_out_and_stays_exact() -> None:
    history = generate(120, seed=7)
    order = stream.grouped(HX, history)
    resigned = {i for i, e in enumerate(order) if e["type"] == "employee_resigned"}
    given = [resigned & set(g.shared) for g in stream.groups(HX, order, as_of=AS_OF) if g.subjects]
    assert any(given) and not all(g == resigned for g in given)  # routed, not broadcast
    assert _differs(history) == 0


def test_a_routing_blind_to_parties_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same check fails when the groups' texts are hidden (no resignation reaches any
    group): the per-subject comparison above can fail."""
    history = generate(120, seed=7)
    monkeypatch.setattr(stream_backend, "texts", lambda raw: iter(()))
    assert _differs(history) > 0
