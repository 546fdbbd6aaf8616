"""The hand-written baseline (benchmarks/baseline.py) decides what the engine decides.

bench.py reports how far the engine is from plain Python on HX-RM-2 and HX-RM-6; that figure
means something only if both compute the same thing. So the baseline's whole output is
compared with the engine's on ``benchmarks/hx_ownership.yaml``: every customer's ownership
spans (owner, start, end, and the rule that made it), the ``open_to_anyone`` flags, and every
pre-heat duty (party, customer, opened, due, status, met by). On generated histories first,
then on hand-written histories at the window's edges, where each case also states the expected
owner, so that two implementations wrong in the same way still fail.

The policy file must also keep the pack's semantics: its rules are checked to be the pack's,
word for word, but for the one override of a rule the file does not have.
"""

from __future__ import annotations

import calendar
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import policyengine as pe

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import baseline  # noqa: E402
from generate import generate  # noqa: E402

POLICY_FILE = BENCHMARKS / "hx_ownership.yaml"
PACK_FILE = ROOT / "policies" / "huixiao" / "resources.yaml"
TYPES = ("registered", "preheated", "invited")

Event = dict[str, Any]
View = tuple[dict[str, list[tuple[Any, ...]]], dict[str, str], list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def policy() -> pe.Policy:
    return pe.load_policy(POLICY_FILE)


def us(dt: datetime) -> int:
    """Epoch microseconds of the engine's (pendulum) instants, to compare with the baseline's."""
    return calendar.timegm(dt.utctimetuple()) * 1_000_000 + dt.microsecond


def engine_view(decision: pe.Decision) -> View:
    spans = {
        customer: [
            (s.owner, us(s.start), None if s.end is None else us(s.end), s.rule) for s in found
        ]
        for customer, found in decision.ownerships.items()
    }
    flags = {c: f["open_to_anyone"] for c, f in decision.flags.items() if "open_to_anyone" in f}
    duties = [
        (o.party, o.subject, us(o.opened), None if o.due is None else us(o.due), o.status, o.met_by)
        for o in decision.obligations
    ]
    return spans, flags, duties


def baseline_view(found: baseline.Ownership) -> View:
    spans: dict[str, list[tuple[Any, ...]]] = {c: list(s) for c, s in found.spans.items()}
    duties = [(d.employee, d.customer, d.opened, d.due, d.status, d.met_by) for d in found.duties]
    return spans, dict(found.open_to_anyone), duties


def both(policy: pe.Policy, events: list[Event], as_of: str | None = None) -> tuple[View, View]:
    return (
        engine_view(policy.evaluate(events, as_of=as_of)),
        baseline_view(baseline.evaluate(events, as_of=as_of)),
    )


def assert_same(engine: View, ours: View) -> None:
    """Per customer first, so that a failure names the first customer that differs."""
    for name, mine, theirs in zip(("spans", "flags", "duties"), ours, engine, strict=True):
        if isinstance(mine, dict):
            assert isinstance(theirs, dict)
            for customer in sorted(set(mine) | set(theirs)):
                assert mine.get(customer) == theirs.get(customer), f"{name} of {customer}"
        else:
            assert mine == theirs, name


# ---------------------------------------------------------------- generated histories


@pytest.mark.parametrize(
    ("seed", "customers", "as_of"),
    [
        (1, 400, None),
        (2, 400, None),
        (3, 300, None),
        (4, 300, "2026-04-15T12:00:00+08:00"),  # duties open at the horizon, events cut off
        (5, 300, "2026-03-20T00:00:00+08:00"),
    ],
)
def test_baseline_agrees_on_generated_histories(
    policy: pe.Policy, seed: int, customers: int, as_of: str | None
) -> None:
    events = [e for e in generate(customers, seed) if e["type"] in TYPES]
    engine, ours = both(policy, events, as_of)
    assert_same(engine, ours)
    spans, flags, duties = engine
    statuses = {d[4] for d in duties}
    if as_of is not None:
        assert "open" in statuses, "duties still open at the horizon"
        return
    # the whole histories reach every branch the comparison is about
    rules = {s[3] for found in spans.values() for s in found}
    assert rules == {"first-preheat-owns", "takeover-after-lapse"}
    assert any(len(found) > 1 for found in spans.values()), "an owner replaced"
    assert flags, "a customer open to anyone at the horizon"
    assert {"met", "late", "overdue"} <= statuses


# ---------------------------------------------------------------- edges, by hand


def at(day: int, hms: str = "10:00:00") -> str:
    return f"2026-03-{day:02d}T{hms}+08:00"


def reg(eid: str, when: str, employee: str, customer: str = "C1") -> Event:
    return {
        "id": eid,
        "type": "registered",
        "at": when,
        "customer": customer,
        "employee": employee,
        "channel": "list_call",
    }


def pre(eid: str, when: str, employee: str, customer: str = "C1") -> Event:
    return {"id": eid, "type": "preheated", "at": when, "customer": customer, "employee": employee}


def inv(eid: str, when: str, employee: str, customer: str = "C1") -> Event:
    return {"id": eid, "type": "invited", "at": when, "customer": customer, "employee": employee}


# name -> (events, as_of, expected owners of C1 as (owner, start) spans, statuses of the duties)
EDGES: dict[str, tuple[list[Event], str | None, list[tuple[str, str]], list[str]]] = {
    "pre-heat exactly at the deadline is in time": (
        [reg("r1", at(2), "A"), pre("p1", at(4), "A")],
        None,
        [("A", at(4))],
        ["met"],
    ),
    "pre-heat one second late: the claim lapsed, nobody owns": (
        [reg("r1", at(2), "A"), pre("p1", at(4, "10:00:01"), "A")],
        None,
        [],
        ["late"],
    ),
    "another event at the deadline instant does not fire it early": (
        [reg("r1", at(2), "A"), reg("r2", at(4), "B"), pre("p1", at(4), "A")],
        None,
        [("A", at(4))],
        ["met", "open"],
    ),
    "after a lapse the next employee's registration takes the customer": (
        [reg("r1", at(2), "A"), reg("r2", at(4, "10:00:01"), "B")],
        None,
        [("B", at(4, "10:00:01"))],
        ["overdue", "open"],
    ),
    "after a lapse the next employee's invitation takes the customer": (
        [reg("r1", at(2), "A"), inv("i1", at(5), "B")],
        None,
        [("B", at(5))],
        ["overdue"],
    ),
    "the employee whose claim lapsed cannot take the customer back": (
        [reg("r1", at(2), "A"), inv("i1", at(5), "A"), pre("p1", at(5, "11:00:00"), "A")],
        None,
        [],
        ["late"],
    ),
    "re-registration by the same employee renews the claim": (
        [reg("r1", at(2), "A"), reg("r2", at(3), "A"), pre("p1", at(5), "A")],
        None,
        [("A", at(5))],
        ["late", "met"],
    ),
    "re-registration at the same instant also renews: both late, the claim holds": (
        [reg("r1", at(2), "A"), reg("r2", at(2), "A"), pre("p1", at(4, "10:00:01"), "A")],
        None,
        [("A", at(4, "10:00:01"))],
        ["late", "late"],
    ),
    "a second employee pre-heating first owns": (
        [
            reg("r1", at(2), "A"),
            reg("r2", at(2, "12:00:00"), "B"),
            pre("p1", at(3), "B"),
            pre("p2", at(3, "11:00:00"), "A"),
        ],
        None,
        [("B", at(3))],
        ["met", "met"],
    ),
    "one claimant lapses, the other pre-heats in time and owns": (
        [reg("r1", at(2), "A"), reg("r2", at(3), "B"), pre("p1", at(5), "B")],
        None,
        [("B", at(5))],
        ["overdue", "met"],
    ),
    "a pre-heat without a claim does nothing": (
        [reg("r1", at(2), "A"), pre("p1", at(3), "B")],
        None,
        [],
        ["open"],
    ),
    "the owner's renewed claim lapses: the next employee takes over": (
        [
            reg("r1", at(2), "A"),
            pre("p1", at(3), "A"),
            reg("r2", at(10), "A"),
            inv("i1", at(12, "10:00:01"), "B"),
        ],
        None,
        [("A", at(3)), ("B", at(12, "10:00:01"))],
        ["met", "overdue"],
    ),
    "the owner's duty due at as_of is still open, one second later overdue": (
        [reg("r1", at(2), "A"), inv("i1", at(4), "B")],
        at(4),
        [],
        ["open"],
    ),
    "a deadline before as_of fires with no event after it": (
        [reg("r1", at(2), "A")],
        at(4, "10:00:01"),
        [],
        ["overdue"],
    ),
}


@pytest.mark.parametrize("name", list(EDGES))
def test_baseline_agrees_at_the_window_edges(policy: pe.Policy, name: str) -> None:
    events, as_of, owners, statuses = EDGES[name]
    engine, ours = both(policy, events, as_of)
    assert_same(engine, ours)
    spans, _, duties = engine
    assert [(s[0], s[1]) for s in spans.get("C1", [])] == [
        (owner, baseline.instant_us(start)) for owner, start in owners
    ]
    assert [d[4] for d in duties] == statuses


def test_the_lapse_opens_the_customer_only_when_no_claim_is_left(policy: pe.Policy) -> None:
    """The flag is set after the lapse, counting the claims left (actions run in order)."""
    events = [reg("r1", at(2), "A"), reg("r2", at(2), "B")]
    engine, ours = both(policy, events, at(5))
    assert_same(engine, ours)
    assert engine[1] == {"C1": "B"}  # A's lapse left B's claim open; B's lapse left none


def test_the_comparison_can_fail(policy: pe.Policy) -> None:
    """A baseline off by one second at the window's edge is caught."""
    events = [reg("r1", at(2), "A"), pre("p1", at(4), "A")]
    engine, _ = both(policy, events)
    shifted = [dict(e, at=at(4, "10:00:01")) if e["id"] == "p1" else e for e in events]
    wrong = baseline_view(baseline.evaluate(shifted))
    with pytest.raises(AssertionError):
        assert_same(engine, wrong)


# ---------------------------------------------------------------- the policy file


def test_the_ownership_policy_keeps_the_packs_rules() -> None:
    ours = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
    pack = yaml.safe_load(PACK_FILE.read_text(encoding="utf-8"))
    pack_rules = {r["id"]: r for r in pack["rules"]}
    cited = {
        r["id"]
        for r in pack["rules"]
        if {"HX-RM-2", "HX-RM-6"}
        & set([r["clause"]] if isinstance(r["clause"], str) else r["clause"])
    }
    assert {r["id"] for r in ours["rules"]} == cited
    for rule in ours["rules"]:
        expected = dict(pack_rules[rule["id"]])
        if rule["id"] == "takeover-after-lapse":
            assert expected.pop("overrides") == ["store-walkin-to-pool"]  # not in this file
        assert rule == expected, rule["id"]
    for name, declared in ours["events"].items():
        assert declared == pack["events"][name], name
    assert ours["params"] == {"preheat_window": pack["params"]["preheat_window"]}
    pack_clauses = {c["id"]: c for c in pack["clauses"]}
    for clause in ours["clauses"]:
        assert clause == pack_clauses[clause["id"]]
