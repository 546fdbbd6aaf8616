"""Every shipped pack, every scenario, generated histories: ``backend="native"`` gives the
decision ``backend="python"`` gives, byte for byte as JSON, or the same errors.

Where the Rust core runs the pack (``native.unsupported`` is None) each scenario must be
decided by the core itself (``native.run_events``: no history handed back), so these tests
are the differential the core is held to; where it does not yet, the fallback is what is
checked, and ``ON_THE_CORE`` says which packs run on it: a pack that starts or stops running
on the core fails here until the table says so."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

import policyengine as pe
from optional import require
from policyengine.backends import native
from policyengine.errors import EvaluationError, EventError
from policyengine.testing import histories
from policyengine.times import from_dt, parse_instant

ROOT = Path(__file__).resolve().parents[1]
PACKS = ROOT / "policies"
# policy path (a pack, or one file of it) -> whether the whole of it runs on the core
ON_THE_CORE: dict[str, bool] = {
    "huixiao": True,
    "huixiao/resources.yaml": True,
    "huixiao/after_sales.yaml": True,
    "online_store": True,
    "service_system": True,
    "customer_management": True,
}
Event = dict[str, Any]


@functools.cache
def _policy(name: str, params: str = "{}") -> pe.Policy:
    return pe.load_policy(PACKS / name, params=json.loads(params) or None)


def _text(value: Any) -> Any:
    """YAML reads instants as datetimes: a history takes them as text."""
    return value.isoformat() if hasattr(value, "isoformat") else value


def _scenarios() -> list[tuple[str, str, list[Event], str | None, str]]:
    out = []
    for pack in sorted(p.name for p in PACKS.iterdir() if (p / "tests").is_dir()):
        for path in sorted((PACKS / pack / "tests").glob("*.yaml")):
            for sc in yaml.safe_load(path.read_text(encoding="utf-8"))["scenarios"]:
                events = [{k: _text(v) for k, v in e.items()} for e in sc.get("events") or []]
                as_of = sc.get("as_of")
                params = json.dumps(sc.get("params") or {}, sort_keys=True, default=str)
                out.append(
                    (pack, f"{pack}/{path.stem}: {sc['name']}", events, _text(as_of), params)
                )
    return out


SCENARIOS = _scenarios()


def _outcome(policy: pe.Policy, events: list[Event], as_of: str | None, backend: str) -> str:
    try:
        d = policy.evaluate(events, as_of=as_of, backend=backend, resumable=False)  # type: ignore[arg-type]
    except (EventError, EvaluationError) as exc:
        return "error: " + repr([(p.code, p.event_id, p.field, p.message) for p in exc.problems])
    return d.model_dump_json()


# what may make the core hand one history back to the engine (the decision is still checked)
HANDED_BACK = ("this history needs the Python engine: a working day in ",)


def _on_core(policy: pe.Policy, events: list[Event], as_of: str | None) -> str | None:
    """The core's own decision (or the errors it raises), or None where it handed the history
    back for a reason of ``HANDED_BACK``: anything else it hands back fails."""
    horizon = None if as_of is None else from_dt(parse_instant(as_of, "as_of"))
    try:
        decision, why = native.run_events(policy.program, events, horizon)
    except (EventError, EvaluationError) as exc:
        return "error: " + repr([(p.code, p.event_id, p.field, p.message) for p in exc.problems])
    if why is not None:
        assert why.startswith(HANDED_BACK), why
        return None
    return decision.model_dump_json()


def test_the_table_says_which_packs_run_on_the_core() -> None:
    require(native.MODULE)
    got = {name: native.unsupported(pe.load_policy(PACKS / name)) is None for name in ON_THE_CORE}
    assert got == ON_THE_CORE, {n: native.unsupported(pe.load_policy(PACKS / n)) for n in got}
    assert {p.name for p in PACKS.iterdir() if (p / "tests").is_dir()} <= set(ON_THE_CORE)
    assert all(
        native.unsupported(pe.load_policy(PACKS / n)) is not None for n, on in got.items() if not on
    )


def test_the_core_decides_almost_every_scenario_of_its_packs() -> None:
    require(native.MODULE)
    mine = [s for s in SCENARIOS if ON_THE_CORE[s[0]]]
    kept = [s for s in mine if _on_core(_policy(s[0], s[4]), s[2], s[3]) is not None]
    # online_store: 4 of its 78 reach 2027, a year the statutory calendar does not hold yet
    assert mine and len(kept) >= 0.9 * len(mine), (len(kept), len(mine))


def test_every_pack_has_scenarios_here() -> None:
    assert len(SCENARIOS) >= 400
    assert {s[0] for s in SCENARIOS} == {k for k in ON_THE_CORE if "/" not in k}


@pytest.mark.parametrize(
    ("pack", "name", "events", "as_of", "params"), SCENARIOS, ids=[s[1] for s in SCENARIOS]
)
def test_same_decision_on_every_scenario(
    pack: str, name: str, events: list[Event], as_of: str | None, params: str
) -> None:
    require(native.MODULE)
    policy = _policy(pack, params)
    python = _outcome(policy, events, as_of, "python")
    assert _outcome(policy, events, as_of, "native") == python
    if ON_THE_CORE[pack]:
        assert _on_core(policy, events, as_of) in (python, None)


@pytest.mark.parametrize("pack", sorted(k for k in ON_THE_CORE if "/" not in k))
def test_same_decision_on_generated_histories(pack: str) -> None:
    require(native.MODULE)
    policy = _policy(pack)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(histories(policy, max_events=30))
    def check(events: list[Event]) -> None:
        python = _outcome(policy, events, None, "python")
        assert _outcome(policy, events, None, "native") == python
        if ON_THE_CORE[pack]:
            assert _on_core(policy, events, None) in (python, None)

    check()
