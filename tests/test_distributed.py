"""``Policy.evaluate_many`` gives the single-process decision: on generated histories of every
shipped pack, in this process and in worker processes, and in the hand-made cases where
subjects in different shards meet (a referral, a ladder of offences, a resignation). A policy
that cannot be split is evaluated as one shard, and says why.

Equality: ``model_dump(mode="json")`` with every list sorted canonically (the trace without its
``seq``), and each subject's entries in exactly the same order. Entries of different subjects
within one step of an event without a subject can be ordered differently (module doc of
``policyengine.distributed``).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import policyengine as pe
from policyengine import distributed
from policyengine.tools.testing import Pools, histories

ROOT = Path(__file__).parents[1]
PACKS = ROOT / "policies"
sys.path.insert(0, str(ROOT / "benchmarks"))

from generate import generate  # noqa: E402

Event = dict[str, Any]


# ---------------------------------------------------------------------------- equality


def _dump(decision: pe.Decision) -> dict[str, Any]:
    data = decision.model_dump(mode="json")
    for entry in data["trace"]:
        entry.pop("seq")
    return data


def canonical(decision: pe.Decision) -> dict[str, Any]:
    """The decision as JSON, every list sorted by its entries' JSON text."""
    return {
        k: sorted(json.dumps(x, sort_keys=True) for x in v) if isinstance(v, list) else v
        for k, v in _dump(decision).items()
    }


def per_subject(decision: pe.Decision) -> dict[str, dict[Any, list[str]]]:
    """Each list's entries grouped by subject (or event), in the decision's order."""
    out: dict[str, dict[Any, list[str]]] = {}
    for name, value in _dump(decision).items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            groups: dict[Any, list[str]] = defaultdict(list)
            for x in value:
                groups[x.get("subject", x.get("event"))].append(json.dumps(x, sort_keys=True))
            out[name] = dict(groups)
    return out


def assert_same(single: pe.Decision, multi: pe.Decision) -> None:
    a, b = canonical(single), canonical(multi)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], f"{key} differs"
    assert per_subject(single) == per_subject(multi)


# ---------------------------------------------------------------------------- helpers


def t(md: str, hms: str = "10:00:00") -> str:
    return f"2026-{md}T{hms}+08:00"


def ev(eid: str, etype: str, at: str, **fields: Any) -> Event:
    return {"id": eid, "type": etype, "at": at, **fields}


def owned(prefix: str, customer: str, employee: str, day: str) -> list[Event]:
    """A customer owned by ``employee`` the ordinary way (registered, reported, pre-heated)."""
    return [
        ev(
            f"{prefix}r",
            "registered",
            t(day),
            customer=customer,
            employee=employee,
            channel="list_call",
        ),
        ev(
            f"{prefix}p",
            "resource_reported",
            t(day, "11:00:00"),
            customer=customer,
            employee=employee,
        ),
        ev(f"{prefix}h", "preheated", t(day, "12:00:00"), customer=customer, employee=employee),
    ]


def fillers(n: int, day: str = "03-01") -> list[Event]:
    """Customers of other employees, so that the shards have something else to hold."""
    out: list[Event] = []
    for i in range(n):
        out += owned(f"f{i}", f"F{i}", f"other{i % 3}", day)
    return out


@pytest.fixture(scope="module")
def resources() -> pe.Policy:
    return pe.load_policy(PACKS / "huixiao" / "resources.yaml")


@pytest.fixture(scope="module")
def huixiao() -> pe.Policy:
    return pe.load_policy(PACKS / "huixiao")


# ---------------------------------------------------------------------------- the plan


def test_each_shipped_pack_has_a_verdict() -> None:
    verdicts = {
        p.name: distributed.plan(pe.load_policy(p)) for p in sorted(PACKS.iterdir()) if p.is_dir()
    }
    assert verdicts["huixiao"].separable
    assert verdicts["huixiao"].links == {"registered": ("referred_by",)}
    assert verdicts["customer_management"].separable
    assert not verdicts["online_store"].separable
    assert any("metric satisfaction" in r for r in verdicts["online_store"].reasons)
    assert not verdicts["service_system"].separable
    assert any("personal-maintenance-meeting" in r for r in verdicts["service_system"].reasons)
    for name in ("resources.yaml", "after_sales.yaml"):
        assert distributed.plan(pe.load_policy(PACKS / "huixiao" / name)).separable
    assert "separable by subject" in verdicts["huixiao"].explain()


# ---------------------------------------------------------------------------- generated data


@pytest.mark.parametrize("pack", ["huixiao/resources.yaml", "huixiao"])
def test_generated_history_in_this_process(pack: str) -> None:
    policy = pe.load_policy(PACKS / pack)
    events = generate(300, seed=2)
    single = policy.evaluate(events)
    run = distributed.run(policy, events, shards=3)
    assert run.report.mode == "in-process" and run.report.shards == 3
    assert_same(single, run.decision)
    mid = "2026-05-10T12:00:00+08:00"
    assert_same(policy.evaluate(events, mid), policy.evaluate_many(events, mid, shards=2))


def test_generated_history_in_two_processes(huixiao: pe.Policy, resources: pe.Policy) -> None:
    events = generate(200, seed=3)
    run = distributed.run(huixiao, events, workers=2)
    assert run.report.shards == 2 and run.report.mode in ("fork", "spawn")
    assert_same(huixiao.evaluate(events), run.decision)
    small = generate(60, seed=4)
    spawned = distributed.run(resources, small, workers=2, start_method="spawn")
    assert spawned.report.mode == "spawn" and spawned.report.shards == 2
    assert_same(resources.evaluate(small), spawned.decision)


def test_any_order_derived_ids_and_duplicates(huixiao: pe.Policy) -> None:
    events = [dict(e) for e in generate(150, seed=5)]
    events.reverse()
    for e in events[::9]:
        del e["id"]
    events += [dict(e) for e in events[10:20]]
    single = huixiao.evaluate(events)
    assert single.duplicates
    assert_same(single, huixiao.evaluate_many(events, shards=3))
    changed = dict(events[3])  # a different event reusing an id: refused on both paths
    changed["at"] = t("03-02")
    events.append(changed)
    for call in (huixiao.evaluate, lambda e: huixiao.evaluate_many(e, shards=3)):
        with pytest.raises(pe.EventError) as info:
            call(events)
        assert [p.code for p in info.value.problems] == ["PE212"]


POOLS = Pools(
    subjects=tuple(f"C{i}" for i in range(8)),
    parties=("E1", "E2", "E3", "E4"),
    keys=("K1", "K2", "K3"),
)


@pytest.mark.parametrize(
    "pack",
    [
        "huixiao",
        "huixiao/after_sales.yaml",
        "customer_management",
        "online_store",
        "service_system",
    ],
)
def test_every_pack_on_generated_histories(pack: str) -> None:
    policy = pe.load_policy(PACKS / pack)

    @settings(
        max_examples=25,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(histories(policy, min_events=5, max_events=50, pools=POOLS))
    def check(events: list[Event]) -> None:
        try:
            single = policy.evaluate(events)
        except pe.PolicyEngineError as exc:
            with pytest.raises(type(exc)) as raised:
                policy.evaluate_many(events, shards=3)
            assert str(raised.value) == str(exc)
            return
        assert_same(single, policy.evaluate_many(events, shards=3))

    check()


# ---------------------------------------------------------------------------- across shards


def test_referral_joins_the_referred_customer_with_the_referrer(resources: pe.Policy) -> None:
    """HX-RM-5: the referred customer belongs to the referrer's owner, whichever shard."""
    events = [
        *owned("a", "A", "li", "03-02"),
        ev(
            "b1",
            "registered",
            t("03-05"),
            customer="B",
            employee="wang",
            channel="referral",
            referred_by="A",
        ),
        *fillers(6),
    ]
    run = distributed.run(resources, events, shards=3)
    assert run.report.shards == 3
    assert run.report.placed["A"] == run.report.placed["B"]
    assert len(set(run.report.placed.values())) == 3
    assert run.decision.owner("B") == "li"
    assert_same(resources.evaluate(events), run.decision)


def test_ladder_counts_offences_across_shards(resources: pe.Policy) -> None:
    """HX-RM-1: zhang's first unreported registration is fined, the second is dismissal,
    though the two customers are evaluated in different shards; two misses at the same
    midnight are numbered in the order their duties arose."""
    events = [
        ev("x1", "registered", t("03-02"), customer="X", employee="zhang", channel="list_call"),
        ev("y1", "registered", t("03-04"), customer="Y", employee="zhang", channel="list_call"),
        ev(
            "z1",
            "registered",
            t("03-06", "09:00:00"),
            customer="Z",
            employee="zhang",
            channel="list_call",
        ),
        ev(
            "w1",
            "registered",
            t("03-06", "08:00:00"),
            customer="W",
            employee="zhang",
            channel="list_call",
        ),
        *fillers(4),
    ]
    end = t("03-31")
    single = resources.evaluate(events, end)
    run = distributed.run(resources, events, end, shards=4)
    placed = run.report.placed
    assert len({placed["X"], placed["Y"], placed["Z"], placed["W"]}) >= 3
    assert_same(single, run.decision)
    fines = sorted(
        (p.offence, p.sanction, p.subject)
        for p in run.decision.penalties
        if p.party == "zhang" and p.rule == "report-new-resource"
    )
    assert fines == [
        (1, "fine", "X"),
        (2, "dismissal", "Y"),
        (3, "dismissal", "W"),
        (4, "dismissal", "Z"),
    ]


def test_falsification_ladder_across_shards(huixiao: pe.Policy) -> None:
    """HX-AS-2: offences counted per employee over every customer."""
    events = [
        *owned("x", "X", "zhao", "03-02"),
        *owned("y", "Y", "zhao", "03-03"),
        ev("fx", "falsification_found", t("03-10"), customer="X", employee="zhao"),
        ev("fy", "falsification_found", t("03-09"), customer="Y", employee="zhao"),
        *fillers(3),
    ]
    run = distributed.run(huixiao, events, shards=3)
    assert run.report.placed["X"] != run.report.placed["Y"]
    assert_same(huixiao.evaluate(events), run.decision)
    ladder = [
        (p.subject, p.offence, p.sanction)
        for p in run.decision.penalties
        if p.rule == "falsified-visit-form"
    ]
    assert sorted(ladder) == [("X", 2, "dismissal"), ("Y", 1, "fine")]


def test_resignation_reaches_every_shard_and_is_counted_once(resources: pe.Policy) -> None:
    """HX-RS-5: every customer of the leaver goes to the pool, in every shard; the hand-over
    duty and its deduction (no customer) appear once; fired counts are the single ones."""
    events = [
        *owned("a", "A", "li", "03-02"),
        *owned("b", "B", "li", "03-03"),
        *owned("c", "C", "li", "03-04"),
        ev("q", "employee_resigned", t("03-20"), employee="li"),
        ev("r", "record_filed", t("03-21"), employee="li", record="x", stamped=False, dated=True),
        *fillers(3),
    ]
    single = resources.evaluate(events)
    run = distributed.run(resources, events, shards=3)
    assert len({run.report.placed[c] for c in "ABC"}) == 3
    assert_same(single, run.decision)
    assert run.decision.fired == single.fired
    assert [run.decision.owner(c) for c in "ABC"] == ["company"] * 3
    assert [p.sanction for p in run.decision.penalties if p.party == "li"] == ["salary_deduction"]
    assert len(run.decision.rejected) == 1


# ---------------------------------------------------------------------------- limits

NOT_SEPARABLE = """
policy: {id: crowded, title: t, version: "1", subject: customer}
clauses: [{id: C1, text: t, reading: r}]
events:
  visited: {fields: {customer: str, employee: str}}
rules:
  - id: busiest-gets-it
    clause: C1
    on: visited
    when: {ge: [{len: {subjects: owned}}, 2]}
    then: [{assign: $event.employee}]
  - id: first-owns
    clause: C1
    on: visited
    when: {eq: [$subject.owner, null]}
    then: [{assign: $event.employee}]
"""

BROADCAST_LINK = """
policy: {id: notes, title: t, version: "1", subject: customer}
clauses: [{id: C1, text: t, reading: r}]
events:
  visited: {fields: {customer: str, employee: str}}
  noted: {fields: {employee: str, about: "str?"}}
rules:
  - id: visit-owns
    clause: C1
    on: visited
    then: [{assign: $event.employee}]
  - id: note-flags
    clause: C1
    on: noted
    then: [{set: {flag: noted, subject: $event.about}}]
"""


def _visits(n: int) -> list[Event]:
    return [
        ev(
            f"v{i}",
            "visited",
            t("03-02", f"1{i % 10}:00:00"),
            customer=f"K{i}",
            employee=f"e{i % 2}",
        )
        for i in range(n)
    ]


def test_a_policy_that_reads_other_subjects_is_one_shard() -> None:
    policy = pe.load_policy_text(NOT_SEPARABLE)
    the_plan = distributed.plan(policy)
    assert not the_plan.separable
    assert any("busiest-gets-it" in r and "subjects" in r for r in the_plan.reasons)
    events = _visits(8)
    run = distributed.run(policy, events, workers=2)
    assert run.report.mode == "single" and "not separable" in (run.report.fallback or "")
    assert run.decision == policy.evaluate(events)


def test_a_history_that_links_from_an_event_without_subject_is_one_shard() -> None:
    policy = pe.load_policy_text(BROADCAST_LINK)
    assert distributed.plan(policy).links == {"noted": ("about",)}
    plain = _visits(6)
    split = distributed.run(policy, plain, shards=3)
    assert split.report.shards == 3
    assert_same(policy.evaluate(plain), split.decision)
    events = [*plain, ev("n1", "noted", t("03-03"), employee="e0", about="K1")]
    run = distributed.run(policy, events, shards=3)
    assert run.report.mode == "single" and run.report.collapse
    assert run.decision == policy.evaluate(events)


def test_bad_input_raises_what_one_process_raises(resources: pe.Policy) -> None:
    events = [
        *fillers(4),
        ev("bad", "registered", t("03-05"), customer="Q", employee="e", channel="nowhere"),
    ]
    with pytest.raises(pe.EventError) as single:
        resources.evaluate(events)
    with pytest.raises(pe.EventError) as many:
        resources.evaluate_many(events, shards=2)
    assert str(many.value) == str(single.value)
    with pytest.raises(pe.EventError):
        distributed.run(resources, events, workers=2)
    with pytest.raises(ValueError):
        resources.evaluate_many(events, workers=0)


def test_rebuilt_policy_keeps_parameter_overrides() -> None:
    policy = pe.load_policy(
        PACKS / "huixiao", params={"preheat_window": "3 days", "unreported_fine": "30-60"}
    )
    again = distributed.rebuild(distributed.policy_spec(policy))
    assert again.compiled.params == policy.compiled.params
