"""``policyengine.testing``: strategies from any policy's declarations, the built-in invariants
on every shipped pack, and a failing example written out as a runnable scenario."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policyengine as pe
from policyengine.tools.scenarios import collect, run_suite
from policyengine.tools.testing import (
    INVARIANTS,
    InvariantViolation,
    check,
    check_history,
    histories,
    shift_applies,
)
from strategies import profile

PROFILE = profile()

POLICIES = Path(__file__).resolve().parents[1] / "policies"
PACKS = sorted(p.name for p in POLICIES.iterdir() if p.is_dir())
EXAMPLES = {"dev": 15, "ci": 100, "thorough": 1000}.get(
    __import__("os").environ.get("HYPOTHESIS_PROFILE", ""), 40
)


@pytest.mark.parametrize("pack", PACKS)
def test_every_shipped_pack_keeps_the_built_in_invariants(pack: str, tmp_path: Path) -> None:
    check(pe.load_policy(POLICIES / pack), max_examples=EXAMPLES, failures_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("pack", PACKS)
def test_generated_histories_are_valid_and_exercise_the_pack(pack: str) -> None:
    policy = pe.load_policy(POLICIES / pack)
    fired: set[str] = set()

    @PROFILE
    @given(histories(policy))
    def run(events: list[dict[str, object]]) -> None:
        assert len({e["id"] for e in events}) == len(events)
        decision = policy.evaluate(events)  # raises EventError on any invalid event
        assert decision.duplicates == [] and decision.ignored == []
        fired.update(decision.fired)

    run()
    assert len(fired) >= len(policy.rule_ids) // 3, f"only {sorted(fired)} fired"


MINI = """\
policy: {id: mini, title: mini, version: "1"}
clauses:
  - {id: M-1, text: 2天内回访, reading: a visit within 2 days of a purchase}
  - {id: M-2, text: 罚款50元, reading: a breach is fined 50 CNY}
params:
  window: {duration: 2 days}
  fine: {money: 50}
events:
  purchased: {fields: {customer: str, employee: str}}
  visited: {fields: {customer: str, employee: str}}
  breach: {fields: {customer: str, employee: str, boxes: {type: int, min: 1, max: 4}}}
rules:
  - id: visit
    clause: M-1
    on: purchased
    then: [{assign: $event.employee}]
    expect: {event: visited, match: {customer: $event.customer}, within: $params.window,
             obligation: visit, party: $event.employee}
  - id: fine
    clause: M-2
    on: breach
    then: [{penalty: {party: $event.employee, sanction: fine, amount: $params.fine}}]
"""


def test_week_shift_is_checked_where_it_applies() -> None:
    mini = pe.load_policy_text(MINI)
    assert shift_applies(mini)
    assert not shift_applies(pe.load_policy(POLICIES / "huixiao"))
    check(mini, max_examples=EXAMPLES, invariants=["week_shift", "causal"])


def test_a_broken_invariant_is_shrunk_and_written_as_a_runnable_scenario(tmp_path: Path) -> None:
    (tmp_path / "mini.yaml").write_text(
        MINI.replace("amount: $params.fine", "amount: 5000"), encoding="utf-8"
    )
    policy = pe.load_policy(tmp_path / "mini.yaml")
    with pytest.raises(InvariantViolation) as info:
        check(policy, max_examples=200, invariants=["fines_in_range"], failures_dir=tmp_path / "f")
    assert info.value.name == "fines_in_range"
    [written] = list((tmp_path / "f").iterdir())
    [suite] = collect(written)
    [case] = suite.cases
    assert len(case.scenario.events) == 1  # shrunk to the one breach
    assert case.scenario.events[0]["type"] == "breach"
    assert [r.failures for r in run_suite(suite)] == [[]]  # a regression test as it stands


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_invariants_can_be_run_on_a_given_history(rnd: random.Random) -> None:
    mini = pe.load_policy_text(MINI)
    events = [
        {
            "id": "p",
            "type": "purchased",
            "at": "2026-03-02T09:00:00+08:00",
            "customer": "C1",
            "employee": "E1",
        },
        {
            "id": "v",
            "type": "visited",
            "at": "2026-03-04T09:00:00+08:00",
            "customer": "C1",
            "employee": "E2",
        },
    ]
    check_history(mini, events, rnd)


def test_unknown_invariant_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown invariants"):
        check(pe.load_policy_text(MINI), invariants=["one_owner"])
    assert sorted(INVARIANTS) == [
        "accountable",
        "causal",
        "declared",
        "deterministic",
        "duplicates_change_nothing",
        "fines_in_range",
        "one_owner_at_a_time",
        "order_independent",
        "week_shift",
    ]


def test_a_policy_declares_its_own_invariants(tmp_path: Path) -> None:
    """`invariants:` hold per subject at as_of; a broken one is reported in the decision and
    fails `check`, shrunk to the history that breaks it."""
    text = (
        MINI
        + """\
invariants:
  - id: one-purchase-per-customer
    doc: a made-up rule, to be broken
    holds: {le: [{count: {type: purchased, match: {customer: $subject}}}, 1]}
"""
    )
    policy = pe.load_policy_text(text)
    events = [
        {
            "id": "p",
            "type": "purchased",
            "at": "2026-03-02T09:00:00+08:00",
            "customer": "C1",
            "employee": "E1",
        }
    ]
    assert policy.evaluate(events).broken_invariants == {}
    twice = [*events, {**events[0], "id": "q", "at": "2026-03-03T09:00:00+08:00"}]
    assert policy.evaluate(twice).broken_invariants == {"one-purchase-per-customer": ["C1"]}
    with pytest.raises(InvariantViolation, match="one-purchase-per-customer: C1"):
        check(policy, max_examples=200, invariants=["declared"], failures_dir=tmp_path)
    [written] = list(tmp_path.iterdir())
    [case] = collect(written)[0].cases
    assert [e["type"] for e in case.scenario.events] == ["purchased", "purchased"]
