"""``evaluate_many(..., backend="native")``: shards on the Rust core give the decision the
single-process Python engine gives, for every shipped pack, worker and shard count; where the
core does not evaluate a policy's or a history's shards, the Python engine does, and the
report says which engine ran and why not the core."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyengine as pe
from optional import require
from policyengine import distributed
from policyengine.backends import native
from policyengine.backends.parallel import native_shard
from policyengine.testing import histories

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import generate  # noqa: E402

PACKS = ROOT / "policies"
RESOURCES = "huixiao/resources.yaml"
# pack -> why its shards are not on the core (None: they are)
NOT_ON_THE_CORE: dict[str, str | None] = {
    "huixiao": "metrics and awards",
    "huixiao/after_sales.yaml": "metrics and awards",
    RESOURCES: None,
    "online_store": "metrics and awards",
    "service_system": "`every:`",
    "customer_management": "`every:`",
}
RUNS = [(1, 2), (1, 3), (2, 2), (2, 4)]  # (workers, shards)
Event = dict[str, Any]


@functools.cache
def _policy(name: str) -> pe.Policy:
    return pe.load_policy(PACKS / name)


@functools.cache
def _huixiao(customers: int, seed: int, subjects_only: bool) -> list[Event]:
    events = generate(customers, seed)
    if subjects_only:  # no resignation, filed record...: every event names its customer
        events = [e for e in events if isinstance(e.get("customer"), str)]
    return events


def _json(decision: pe.Decision) -> Any:
    return json.loads(decision.model_dump_json())


def _run(policy: pe.Policy, events: list[Event], workers: int, shards: int) -> distributed.Run:
    return distributed.run(policy, events, workers=workers, shards=shards, backend="native")


def test_the_table_says_which_packs_shard_on_the_core() -> None:
    require(native.MODULE)
    for pack, why in NOT_ON_THE_CORE.items():
        found = native_shard.refusal(_policy(pack).program)
        if why is None:
            assert found is None, pack
        else:
            assert found is not None and why in found, (pack, found)


@pytest.mark.parametrize(("workers", "shards"), RUNS)
@pytest.mark.parametrize("seed", [1, 2])
def test_resources_on_the_core_decide_as_one_python_process(
    seed: int, workers: int, shards: int
) -> None:
    require(native.MODULE)
    policy = _policy(RESOURCES)
    events = _huixiao(150, seed, True)
    run = _run(policy, events, workers, shards)
    assert run.report.engine == "native", run.report.not_native
    assert run.report.shards == shards
    assert _json(run.decision) == _json(policy.evaluate(events))
    # and byte for byte what the Python engine's shards give
    python = distributed.run(policy, events, workers=workers, shards=shards)
    assert python.report.engine == "python"
    assert run.decision.model_dump_json() == python.decision.model_dump_json()


def test_offences_across_shards_take_later_ladder_steps() -> None:
    """The phase-2 numbering picks steps the shard itself did not take."""
    require(native.MODULE)
    policy = _policy(RESOURCES)
    events = _huixiao(150, 1, True)
    single = policy.evaluate(events)
    later = [p for p in single.penalties if p.sanction == "dismissal"]
    assert later, "the history should hold a second offence of some party"
    run = _run(policy, events, 1, 4)
    assert run.report.engine == "native"
    assert _json(run.decision)["penalties"] == _json(single)["penalties"]


def _same(policy: pe.Policy, events: list[Event], workers: int, shards: int) -> distributed.Run:
    """The native backend's run: byte for byte the Python engine's shards, and the single
    process's decision wherever those are (no event without a subject moves entries of
    several shards within one step: ``docs/parallel.md``, Limits)."""
    run = _run(policy, events, workers, shards)
    python = distributed.run(policy, events, workers=workers, shards=shards)
    assert run.decision.model_dump_json() == python.decision.model_dump_json()
    if not run.report.replicated:
        assert _json(run.decision) == _json(policy.evaluate(events))
    return run


@pytest.mark.parametrize(("workers", "shards"), RUNS)
@pytest.mark.parametrize("pack", sorted(NOT_ON_THE_CORE))
def test_every_pack_decides_as_the_python_shards(pack: str, workers: int, shards: int) -> None:
    """Whole generated histories (events without a subject included): the core where it
    can, the Python engine elsewhere, the same decision."""
    require(native.MODULE)
    policy = _policy(pack)

    def check(events: list[Event]) -> None:
        run = _same(policy, events, workers, shards)
        if run.report.mode != "single" and NOT_ON_THE_CORE[pack] is not None:
            assert run.report.engine == "python"
            assert run.report.not_native and NOT_ON_THE_CORE[pack] in run.report.not_native

    if pack in ("huixiao", RESOURCES):  # the histories benchmarks/generate.py makes
        check(_huixiao(60, 3, False))
        check(_huixiao(60, 4, True))
        return
    settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])(
        given(histories(policy, max_events=80))(check)
    )()


def test_events_without_a_subject_keep_the_shards_on_python() -> None:
    require(native.MODULE)
    policy = _policy(RESOURCES)
    events = _huixiao(60, 1, False)
    run = _run(policy, events, 1, 2)
    assert run.report.engine == "python"
    assert run.report.not_native is not None and "without a subject" in run.report.not_native
    assert _json(run.decision) == _json(policy.evaluate(events))


@pytest.mark.parametrize("pack", [RESOURCES])
def test_generated_histories(pack: str) -> None:
    require(native.MODULE)
    policy = _policy(pack)
    sf = policy.compiled.subject_field

    engines: list[str] = []

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(histories(policy, max_events=40), st.integers(2, 4))
    def check(events: list[Event], shards: int) -> None:
        events = [e for e in events if isinstance(e.get(sf), str)]
        try:
            expected = _json(policy.evaluate(events))
        except pe.PolicyEngineError as exc:
            with pytest.raises(type(exc)):
                _run(policy, events, 1, shards)
            return
        run = _same(policy, events, 1, shards)
        assert _json(run.decision) == expected
        if run.report.mode != "single":
            engines.append(run.report.engine)

    check()
    assert "native" in engines  # the core ran the shards of some of them


def test_without_the_core_the_python_engine_runs_the_shards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = pe.load_policy(PACKS / RESOURCES)  # its own memo: the core is looked up afresh
    monkeypatch.setattr(native, "_module", lambda: None)
    events = _huixiao(60, 1, True)
    run = _run(policy, events, 2, 2)
    assert run.report.engine == "python"
    assert run.report.not_native is not None and "not installed" in run.report.not_native
    assert _json(run.decision) == _json(policy.evaluate(events))


def test_a_shard_the_core_refuses_runs_on_python(monkeypatch: pytest.MonkeyPatch) -> None:
    require(native.MODULE)
    policy = _policy(RESOURCES)
    events = _huixiao(60, 1, True)
    real = native_shard.evaluate_native_shard
    calls: list[int] = []

    def refuses_the_second(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise native_shard.Refused("a value the core does not hold")
        return real(*args)

    monkeypatch.setattr(native_shard, "evaluate_native_shard", refuses_the_second)
    run = _run(policy, events, 1, 3)
    assert run.report.engine == "mixed"
    assert run.report.not_native == "a value the core does not hold"
    assert _json(run.decision) == _json(policy.evaluate(events))
    python = distributed.run(policy, events, workers=1, shards=3)
    assert run.decision.model_dump_json() == python.decision.model_dump_json()


def test_one_process_on_the_core() -> None:
    require(native.MODULE)
    policy = _policy("huixiao")
    events = _huixiao(40, 1, False)
    run = distributed.run(policy, events, workers=1, backend="native")
    assert (run.report.mode, run.report.engine) == ("single", "native")
    assert run.decision.model_dump_json() == policy.evaluate(events).model_dump_json()
    assert "engine native" in run.report.explain()


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend"):
        distributed.run(_policy(RESOURCES), [], backend="rust")


def test_the_core_reads_the_shards_raw_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated histories are checked and ordered by the core itself, not ``prepare``."""
    require(native.MODULE)

    def no_prepare(*args: Any) -> Any:
        raise AssertionError("prepared in Python")

    monkeypatch.setattr(native_shard, "_prepared", no_prepare)
    policy = _policy(RESOURCES)
    events = _huixiao(60, 2, True)
    run = _run(policy, events, 1, 3)
    assert run.report.engine == "native"
    assert _json(run.decision) == _json(policy.evaluate(events))


def test_a_ladder_step_the_core_lacks_hands_the_shards_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As if the core could not look up the amount of any step a shard did not take."""
    require(native.MODULE)
    real = native_shard._ladder

    def only_the_steps_taken(*args: Any) -> Any:
        records = real(*args)
        for rec in records:
            shown = min(args[2][rec.row].offence - 1, len(rec.outcomes) - 1)
            rec.outcomes = [o if i == shown else None for i, o in enumerate(rec.outcomes)]
        return records

    monkeypatch.setattr(native_shard, "_ladder", only_the_steps_taken)
    policy = _policy(RESOURCES)
    events = _huixiao(150, 1, True)
    run = _run(policy, events, 1, 4)
    assert run.report.engine == "python"
    assert run.report.not_native is not None and run.report.not_native.startswith("phase 2")
    assert _json(run.decision) == _json(policy.evaluate(events))
