"""The Rust core (``backend="native"``) decides what the Python engine decides, byte for byte.

``benchmarks/hx_ownership.yaml`` (HX-RM-2, HX-RM-6) is evaluated by both and the decisions
compared as JSON: on the huixiao pack's own scenario histories for those rules, on generated
histories (``benchmarks/generate.py``, with and without ``as_of``), at the window's edges
(``tests/test_benchmark_baseline.py``'s cases) and on hypothesis-drawn histories. Without the
core the differential tests skip with the reason (CI requires it where cargo is on PATH); the
fallback tests run everywhere: a policy outside what the core supports, or a machine without
it, gets the Python engine's decision and the reason.
"""

from __future__ import annotations

import functools
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import policyengine as pe
from optional import require
from policyengine.backends import native
from policyengine.errors import EvaluationError, EventError
from policyengine.language.ir import IR_VERSION, lower
from policyengine.runtime.events import prepare
from policyengine.times import from_dt, parse_instant
from strategies import Event, as_of_instants, hx_histories, iso, profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from generate import generate  # noqa: E402

from test_benchmark_baseline import EDGES  # noqa: E402

POLICY_FILE = ROOT / "benchmarks" / "hx_ownership.yaml"
TYPES = ("registered", "preheated", "invited")
PROFILE = profile()


def core() -> Any:
    """The Rust core, or a skip saying why; where cargo is on PATH the Makefile builds it, so
    CI (``POLICYENGINE_REQUIRE_OPTIONAL=1``) requires it there."""
    if shutil.which("cargo") is None and not native.available():
        pytest.skip("no cargo on PATH: the Rust core is not built here")
    return require(native.MODULE)


@pytest.fixture(scope="module")
def policy() -> pe.Policy:
    return pe.load_policy(POLICY_FILE)


def both(policy: pe.Policy, events: list[Event], as_of: str | None = None) -> tuple[str, str]:
    """The decisions as JSON, Python engine first; the native one made by the core."""
    history = prepare(policy.compiled, events)
    horizon = None if as_of is None else from_dt(parse_instant(as_of, "as_of"))
    ours, why = native.run(policy.program, history, horizon)
    assert why is None, why
    python = policy.evaluate(events, as_of=as_of, backend="python", resumable=False)
    assert policy.evaluate(events, as_of=as_of, backend="native").model_dump_json() == (
        ours.model_dump_json()
    )
    return python.model_dump_json(), ours.model_dump_json()


def assert_same(policy: pe.Policy, events: list[Event], as_of: str | None = None) -> None:
    python, ours = both(policy, events, as_of)
    assert ours == python


# ---------------------------------------------------------------- the differential tests


def test_the_core_runs_the_ownership_policy(policy: pe.Policy) -> None:
    core()
    assert native.unsupported(policy) is None
    ir = native.intermediate(policy)
    assert ir is not None and ir["ir_version"] == IR_VERSION
    assert [r["id"] for r in ir["rules"]] == policy.rule_ids


def scenario_histories() -> list[tuple[str, list[Event], str | None]]:
    """The huixiao pack's scenarios whose histories hold only the policy's three event types."""
    out = []
    for path in sorted((ROOT / "policies" / "huixiao" / "tests").glob("*.yaml")):
        for sc in yaml.safe_load(path.read_text(encoding="utf-8"))["scenarios"]:
            events = sc.get("events") or []
            if events and all(e.get("type") in TYPES for e in events):
                as_of = sc.get("as_of")
                out.append(
                    (f"{path.stem}: {sc['name']}", events, None if as_of is None else str(as_of))
                )
    return out


SCENARIOS = scenario_histories()


def test_the_pack_has_scenarios_for_these_rules() -> None:
    assert len(SCENARIOS) >= 10


@pytest.mark.parametrize(("name", "events", "as_of"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_same_decision_on_the_packs_scenarios(
    policy: pe.Policy, name: str, events: list[Event], as_of: str | None
) -> None:
    core()
    for e in events:  # YAML reads the instants as datetimes: the history takes them as text
        e["at"] = e["at"].isoformat() if hasattr(e["at"], "isoformat") else e["at"]
    assert_same(policy, events, as_of)


@pytest.mark.parametrize(
    ("seed", "customers", "as_of"),
    [
        (1, 300, None),
        (2, 300, None),
        (4, 200, "2026-04-15T12:00:00+08:00"),
        (5, 200, "2026-03-20T00:00:00+08:00"),
    ],
)
def test_same_decision_on_generated_histories(
    policy: pe.Policy, seed: int, customers: int, as_of: str | None
) -> None:
    core()
    events = [e for e in generate(customers, seed) if e["type"] in TYPES]
    python, ours = both(policy, events, as_of)
    assert ours == python
    assert '"kind":"owner"' in ours and '"status":"late"' in ours  # the branches are reached


@pytest.mark.parametrize("name", list(EDGES))
def test_same_decision_at_the_window_edges(policy: pe.Policy, name: str) -> None:
    core()
    events, as_of, _, _ = EDGES[name]
    assert_same(policy, events, as_of)


@PROFILE
@given(hx_histories(max_events=30), st.data())
def test_same_decision_on_drawn_histories(events: list[Event], data: st.DataObject) -> None:
    core()
    policy = _policy()
    events = [e for e in events if e["type"] in TYPES]
    as_of = data.draw(st.one_of(st.none(), as_of_instants(events).map(iso)), label="as_of")
    assert_same(policy, events, as_of)


@functools.cache
def _policy() -> pe.Policy:
    """Loaded once: hypothesis calls the test many times, and a fixture would be reset."""
    return pe.load_policy(POLICY_FILE)


def test_the_comparison_can_fail(policy: pe.Policy) -> None:
    """A decision one second off at the window's edge is told apart."""
    core()
    events, _, _, _ = EDGES["pre-heat exactly at the deadline is in time"]
    shifted = [
        dict(e, at=e["at"].replace("10:00:00", "10:00:01")) if e["id"] == "p1" else e
        for e in events
    ]
    assert both(policy, events)[1] != both(policy, shifted)[1]


def test_errors_are_the_engines(policy: pe.Policy) -> None:
    """Bad input is refused before the core sees it, with the same error."""
    with pytest.raises(EventError):
        policy.evaluate([{"id": "x", "type": "registered", "at": "nonsense"}], backend="native")


# ---------------------------------------------------------------- fallback, and the names


HX_PACK = ROOT / "policies" / "huixiao"


def test_an_unsupported_policy_falls_back_with_the_reason() -> None:
    pack = pe.load_policy(HX_PACK / "resources.yaml")
    reason = native.unsupported(pack)
    assert reason is not None
    if native.available():
        assert "is not supported by the native core" in reason, reason
    else:
        assert "is not installed" in reason, reason
    ir, why = lower(pack.compiled, pack.pset)
    assert ir is None and why is not None
    assert "resources.yaml:" in why, why  # names where the construct was written
    events = [e for e in generate(40, 3) if e["type"] in TYPES]
    native_json = pack.evaluate(events, backend="native", resumable=False).model_dump_json()
    assert native_json == pack.evaluate(events, backend="python", resumable=False).model_dump_json()


def test_a_policy_without_a_validated_model_falls_back(policy: pe.Policy) -> None:
    bare = pe.Policy(policy.compiled, policy.files)
    assert bare.pset is None
    assert native.unsupported(bare) is not None
    events = [e for e in generate(20, 1) if e["type"] in TYPES]
    assert (
        bare.evaluate(events, backend="native", resumable=False).model_dump_json()
        == policy.evaluate(events, backend="python", resumable=False).model_dump_json()
    )


def test_python_forces_the_reference(policy: pe.Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the native backend was used")

    monkeypatch.setattr(native, "evaluate", refuse)
    events = [e for e in generate(20, 1) if e["type"] in TYPES]
    assert policy.evaluate(events, backend="python").ownerships
    assert policy.evaluate(events).ownerships  # the default is the reference
    with pytest.raises(AssertionError, match="native backend was used"):
        policy.evaluate(events, backend="native", resumable=False)


def test_native_is_lean_and_resumable_asks_for_the_python_engine(policy: pe.Policy) -> None:
    events = [e for e in generate(20, 1) if e["type"] in TYPES]
    resumable = policy.evaluate(events, backend="native", resumable=True)
    assert resumable.snapshot()  # made by the Python engine, which keeps its World
    with pytest.raises(pe.SnapshotError):
        policy.evaluate(events, backend="native").snapshot()


def test_unknown_backends_are_named() -> None:
    p = pe.load_policy(POLICY_FILE)
    with pytest.raises(ValueError, match="'python', 'native' or 'durable'"):
        p.evaluate([], backend="rust")  # type: ignore[arg-type]


def test_a_step_the_engine_refuses_is_refused_the_same_way(policy: pe.Policy) -> None:
    """A deadline past year 9999 is left to the Python engine, which raises PE307."""
    events = [
        {
            "id": "r1",
            "type": "registered",
            "at": "9999-12-30T10:00:00+08:00",
            "customer": "C",
            "employee": "A",
            "channel": "list_call",
        },
    ]
    with pytest.raises(EvaluationError, match="PE307"):
        policy.evaluate(events, backend="native", max_span_years=None)
    with pytest.raises(EvaluationError, match="PE307"):
        policy.evaluate(events, backend="python", max_span_years=None, resumable=False)
