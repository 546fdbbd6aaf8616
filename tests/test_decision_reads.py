"""Reading a decision's owner without building its entries (``Decision.owner`` reads the
engine's spans until the entries exist) gives what the entries give, on both engines; and
``World.close(schedule=False)``, as the native path calls it, measures what a scheduling
close measures."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

import policyengine as pe
from policyengine.runtime.engine import World
from policyengine.runtime.state import period_of
from policyengine.times import from_dt, parse_instant

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from generate import generate  # noqa: E402


@pytest.fixture(scope="module")
def huixiao() -> pe.Policy:
    return pe.load_policy(ROOT / "policies" / "huixiao")


@pytest.mark.parametrize("backend", ["python", "native"])
def test_one_owner_read_agrees_with_the_entries(huixiao: pe.Policy, backend: str) -> None:
    events = generate(60, seed=7)
    subjects = sorted({e["customer"] for e in events if e.get("customer")})
    quick = huixiao.evaluate(events, backend=backend, resumable=False)  # type: ignore[arg-type]
    owners = {s: quick.owner(s) for s in subjects}
    assert "ownerships" not in quick.__dict__  # read from the spans, nothing built
    full = huixiao.evaluate(events, backend=backend, resumable=False)  # type: ignore[arg-type]
    built = full.ownerships
    for s in subjects:
        spans = built.get(s, [])
        expected = spans[-1].owner if spans and spans[-1].end is None else None
        assert owners[s] == expected == full.owner(s), s
    assert any(o is not None for o in owners.values())
    assert any(o is None for o in owners.values()) or len(subjects) < 5
    assert quick.owner("no such customer") is None


def test_a_close_that_schedules_nothing_measures_the_same(huixiao: pe.Policy) -> None:
    compiled = huixiao.compiled
    unit = compiled.metrics[0].every
    tick = period_of(
        unit, from_dt(parse_instant("2026-03-05T10:00:00+08:00", "at")), compiled.timezone
    )
    a, b = World(compiled), World(compiled)
    for w in (a, b):
        w.party_counters = {
            "E1": {"old_customers": Decimal(4)},
            "E2": {"old_customers": Decimal(1)},
        }
        w.counter_log = {("E1", "referrals_brought"): [(tick.start + 1, Decimal(1))]}
    a.close(tick, tick.end, True)
    b.close(tick, tick.end, True, schedule=False)
    assert a.metric_rows == b.metric_rows and len(a.metric_rows) == 2
    assert a.metric_rows[0].value == Decimal(1) / Decimal(4)
    assert len(a.timers) == 1 and not b.timers  # the next period, only where asked


@pytest.mark.parametrize("backend", ["python", "native"])
def test_shards_give_the_same_json_byte_for_byte(backend: str) -> None:
    """``fired`` is in the policy's order, not the order things first fired: the merged
    decision's JSON text is the single process's, not only its parsed value."""
    policy = pe.load_policy(ROOT / "policies" / "huixiao" / "resources.yaml")
    types = set(policy.compiled.events)
    events = [e for e in generate(120, seed=3) if e.get("customer") and e["type"] in types]
    single = policy.evaluate(events).model_dump_json()
    merged = policy.evaluate_many(events, workers=1, shards=3, backend=backend)  # type: ignore[arg-type]
    assert merged.model_dump_json() == single
    assert len(merged.fired) > 3
