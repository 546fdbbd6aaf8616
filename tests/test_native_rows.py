"""The core keeps a lean decision's trace and obligations (``native/src/rows.rs``).

They are read-only sequences that make the engine's own ``TraceRow`` and ``ObligationRow`` on
access: the same rows as the Python engine's lists (index, negative index, slice, iteration,
equality, pickling and copying as that list), the same decisions as JSON, and a decision that
holds a fraction of the Python heap it held when every row was a Python object.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import pickle
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import policyengine as pe
from optional import require
from policyengine.backends import native
from policyengine.runtime.decision import Decision, RawDecision
from policyengine.runtime.events import prepare
from policyengine.runtime.records import ObligationRow, TraceRow
from policyengine.testing import histories

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from generate import generate  # noqa: E402

TYPES = ("registered", "preheated", "invited")
# tracemalloc's bytes per event a lean native decision holds on the generated history below:
# about 63 measured (630 when the core handed back every row as a Python object)
HELD_PER_EVENT = 120
Event = dict[str, Any]


@pytest.fixture(scope="module")
def own() -> pe.Policy:
    return pe.load_policy(ROOT / "benchmarks" / "hx_ownership.yaml")


@pytest.fixture(scope="module")
def resources() -> pe.Policy:
    return pe.load_policy(ROOT / "policies" / "huixiao" / "resources.yaml")


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return [e for e in generate(300, 3) if e["type"] in TYPES]


def _raw(decision: Decision) -> RawDecision:
    assert decision.raw is not None
    return decision.raw


def _lean(policy: pe.Policy, events: list[Event]) -> tuple[RawDecision, RawDecision]:
    """The core's rows, then the Python engine's, for one history."""
    require(native.MODULE)
    ours = policy.evaluate(events, backend="native")
    assert native.unsupported(policy) is None
    python = policy.evaluate(events, backend="python", resumable=False)
    assert ours.model_dump_json() == python.model_dump_json()
    return _raw(ours), _raw(python)


def test_the_rows_are_the_engines_rows(own: pe.Policy, events: list[Event]) -> None:
    ours, python = _lean(own, events)
    assert not isinstance(ours.trace, list)  # kept in the core
    assert not isinstance(ours.obligations, list)
    assert len(ours.trace) == len(python.trace) > 100
    assert len(ours.obligations) == len(python.obligations) > 10
    assert list(ours.trace) == python.trace
    assert list(ours.obligations) == python.obligations
    assert all(type(t) is TraceRow for t in ours.trace)
    assert all(type(o) is ObligationRow for o in ours.obligations)
    assert {t.kind for t in ours.trace} >= {"owner", "claim", "expectation", "flag"}


def test_the_sequence_protocol(own: pe.Policy, events: list[Event]) -> None:
    ours, python = _lean(own, events)
    for rows, theirs in ((ours.trace, python.trace), (ours.obligations, python.obligations)):
        n = len(theirs)
        assert rows[0] == theirs[0] and rows[n - 1] == theirs[-1]
        assert rows[-1] == theirs[-1] and rows[-n] == theirs[0]
        assert rows[3:9] == theirs[3:9] and type(rows[3:9]) is list
        assert rows[::-7] == theirs[::-7] and rows[-5:] == theirs[-5:]
        assert rows[n + 3 :] == [] and rows[5:2] == []
        for bad in (n, -n - 1, 10**9, 10**30, -(10**30)):
            with pytest.raises(IndexError):
                rows[bad]
        for wrong in ("0", 1.0, None):
            with pytest.raises(TypeError):
                rows[wrong]
        with pytest.raises(ValueError):
            rows[::0]
        assert rows[True] == theirs[1] and list(reversed(rows)) == theirs[::-1]
        it = iter(rows)
        assert next(it) == theirs[0]
        assert list(it) == theirs[1:]
        assert list(it) == []  # exhausted, and stays so
        assert rows == theirs and rows != theirs[:-1] and rows != list(reversed(theirs))
        assert (rows == "rows") is False
        # a row handed out is the caller's: changing it changes no later one
        if rows is ours.trace:
            rows[0].detail["extra"] = 1
            assert "extra" not in rows[0].detail


def test_pickling_and_copying_give_the_list(own: pe.Policy, events: list[Event]) -> None:
    ours, python = _lean(own, events)
    for rows, theirs in ((ours.trace, python.trace), (ours.obligations, python.obligations)):
        for back in (pickle.loads(pickle.dumps(rows)), copy.copy(rows), copy.deepcopy(rows)):
            assert type(back) is list and back == theirs
    decision = own.evaluate(events, backend="native")
    again = pickle.loads(pickle.dumps(decision))
    assert again.model_dump_json() == decision.model_dump_json()
    assert again == decision and decision == own.evaluate(events, backend="native")


def test_penalty_rows_and_counters_as_the_engine_makes_them(resources: pe.Policy) -> None:
    require(native.MODULE)
    kinds: set[str] = set()

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(histories(resources, max_events=30))
    def check(events: list[Event]) -> None:
        ours, python = _lean(resources, events)
        assert list(ours.trace) == python.trace
        assert list(ours.obligations) == python.obligations
        assert ours.penalties == python.penalties
        kinds.update(t.kind for t in ours.trace)

    check()
    assert kinds >= {"penalty", "counter"}, kinds


def test_a_lean_decision_holds_little_of_the_python_heap(
    own: pe.Policy, events: list[Event]
) -> None:
    require(native.MODULE)
    history = [e for e in generate(2000, 5) if e["type"] in TYPES]
    own.evaluate(history[:100], backend="native")  # the program and its core, made once
    gc.collect()
    tracemalloc.start()
    try:
        decision = own.evaluate(history, backend="native")
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(_raw(decision).trace) > len(history)  # a trace row or more per event
    assert held / len(history) < HELD_PER_EVENT, held / len(history)


def test_a_panic_of_the_core_is_a_reason_and_the_reference_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A panic in Rust reaches Python as ``pyo3_runtime.PanicException`` (a BaseException,
    outside our family): the engine decides instead, and the reason says it is our bug."""
    require(native.MODULE)
    policy = pe.load_policy(ROOT / "benchmarks" / "hx_ownership.yaml")
    events = [
        {"id": "r1", "type": "registered", "at": "2026-03-02T09:00:00+08:00",
         "customer": "C1", "employee": "E1", "channel": "list_call"},
    ]  # fmt: skip
    panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})

    class Broken:
        def __init__(self, real: Any) -> None:
            self._real = real

        def __getattr__(self, name: str) -> Any:
            if name in ("run", "run_raw"):
                def boom(*args: Any) -> Any:
                    raise panic("index out of bounds")
                return boom
            return getattr(self._real, name)

    prepared = native._prepared(policy.program)
    memo = policy.program.memo

    def use(core: Any) -> None:
        monkeypatch.setitem(memo, native._MEMO, dataclasses.replace(prepared, core=core))

    use(Broken(prepared.core))
    reference = policy.evaluate(events, backend="python", resumable=False).model_dump_json()
    for decided, why in (
        native.run_events(policy.program, events, None),
        native.run(policy.program, prepare(policy.compiled, events), None),
    ):
        assert decided.model_dump_json() == reference
        assert why is not None and "a bug of ours" in why and "index out of bounds" in why

    class Other(BaseException):
        pass

    def other(*args: Any) -> Any:
        raise Other

    use(type("C", (), {"run_raw": other, "run": other})())
    with pytest.raises(Other):  # anything else is not swallowed
        native.run_events(policy.program, events, None)
