"""Snapshots of the Rust core: ``evaluate(..., backend="native", resumable=True)``, its
``snapshot()`` and ``Policy.resume`` of it, on every shipped pack.

A resumed decision must equal the Python engine's evaluation of the whole history (as JSON),
and be made incrementally on the core wherever a Python snapshot would be; the refusals are
those of Python snapshots (PE501, PE502, PE503); without a core, or where the core cannot
continue, the whole history is evaluated and ``decision.resumed`` says so."""

from __future__ import annotations

import base64
import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyengine as pe
import test_native_policy_level as policy_level
from optional import require
from policyengine.backends import native, native_snapshot
from policyengine.errors import EvaluationError, EventError, SnapshotError
from policyengine.testing import histories
from policyengine.times import from_dt, parse_instant
from test_native_packs import ON_THE_CORE, SCENARIOS, _policy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import single_customer  # noqa: E402

Event = dict[str, Any]
PACKS = sorted(k for k in ON_THE_CORE if "/" not in k)


def _at(e: Event) -> int:
    return from_dt(parse_instant(e["at"], "at"))


def _full(policy: pe.Policy, events: list[Event], as_of: str | None) -> str:
    try:
        d = policy.evaluate(events, as_of=as_of, backend="python", resumable=False)
    except (EventError, EvaluationError) as exc:
        return "error: " + repr([(p.code, p.event_id, p.field) for p in exc.problems])
    return d.model_dump_json()


def _native_snapshot(policy: pe.Policy, events: list[Event], as_of: str | None = None) -> Any:
    d = policy.evaluate(events, as_of=as_of, backend="native", resumable=True)
    return json.loads(json.dumps(d.snapshot()))  # as a store would keep it


def _resume(policy: pe.Policy, snap: Any, events: list[Event], as_of: str | None) -> Any:
    try:
        return policy.resume(snap, events, as_of=as_of)
    except (EventError, EvaluationError) as exc:
        return "error: " + repr([(p.code, p.event_id, p.field) for p in exc.problems])


def _check_cut(policy: pe.Policy, events: list[Event], cut: int, as_of: str | None) -> str | None:
    """Snapshot after ``cut`` events (time-ordered), resume with the rest: equal to the whole
    evaluation; incremental wherever the Python snapshot resumes incrementally. Returns the
    resume's mode (None: the prefix itself is refused)."""
    head, rest = events[:cut], events[cut:]
    try:
        snap = _native_snapshot(policy, head)
        py_snap = policy.evaluate(head, backend="python").snapshot()
    except (EventError, EvaluationError):
        return None
    want = _full(policy, events, as_of)
    got = _resume(policy, snap, rest, as_of)
    if isinstance(got, str):
        assert got == want
        return None
    assert got.model_dump_json() == want
    py_mode = policy.resume(py_snap, rest, as_of=as_of).resumed
    assert got.resumed is not None and py_mode is not None
    if snap.get("engine") == "native" and py_mode.mode == "incremental":
        # the core continues its own state (or hands one history back, saying why)
        assert got.resumed.mode == "incremental" or (got.resumed.reason or "").startswith(
            "this history needs the Python engine"
        ), got.resumed
    elif snap.get("engine") == "native":
        assert got.resumed.mode == "full" and got.resumed.reason == py_mode.reason
    return got.resumed.mode


def _sorted(events: list[Event]) -> list[Event]:
    return sorted(events, key=_at)


# ---------------------------------------------------------------- every pack


def test_every_pack_snapshots_on_the_core() -> None:
    require(native.MODULE)
    for pack in PACKS:
        policy = _policy(pack)
        events = _sorted(
            [e for s in SCENARIOS if s[0] == pack and s[4] == "{}" for e in s[2]][:1]
            or [{"id": "x", "type": "nothing", "at": "2026-01-01T00:00:00+00:00"}]
        )
        d = policy.evaluate(events, backend="native", resumable=True)
        snap = d.snapshot()
        if native.unsupported(policy) is None:
            assert snap["engine"] == "native" and base64.b64decode(snap["state"])[:3] == b"PEs"


@pytest.mark.parametrize(
    ("pack", "name", "events", "as_of", "params"), SCENARIOS, ids=[s[1] for s in SCENARIOS]
)
def test_every_scenario_cut_in_two(
    pack: str, name: str, events: list[Event], as_of: str | None, params: str
) -> None:
    require(native.MODULE)
    policy = _policy(pack, params)
    try:
        ordered = _sorted(events)
    except (TypeError, ValueError, KeyError, AttributeError):
        return  # an event without a readable instant: the input checks' business
    cut = len(ordered) // 2
    if as_of is not None and cut and _at(ordered[cut - 1]) > from_dt(parse_instant(as_of, "as_of")):
        as_of = None  # a snapshot after the scenario's as_of: PE503, tested below
    _check_cut(policy, ordered, cut, as_of)


@pytest.mark.parametrize("pack", PACKS)
def test_generated_histories_cut_anywhere(pack: str) -> None:
    require(native.MODULE)
    policy = _policy(pack)
    modes: list[str | None] = []

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(histories(policy, max_events=30), st.data())
    def check(events: list[Event], data: st.DataObject) -> None:
        try:
            ordered = _sorted(events)
        except (TypeError, ValueError, KeyError, AttributeError):
            return
        cut = data.draw(st.integers(0, len(ordered)), label="cut")
        modes.append(_check_cut(policy, ordered, cut, None))

    check()
    assert "incremental" in modes


@pytest.mark.parametrize("pack", PACKS)
def test_chains_of_resumes(pack: str) -> None:
    require(native.MODULE)
    policy = _policy(pack)

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(histories(policy, max_events=24), st.data())
    def check(events: list[Event], data: st.DataObject) -> None:
        try:
            ordered = _sorted(events)
            policy.evaluate(ordered, backend="python", resumable=False)
        except (TypeError, ValueError, KeyError, AttributeError, EventError, EvaluationError):
            return
        cuts = sorted(data.draw(st.lists(st.integers(1, max(1, len(ordered))), max_size=4)))
        snap = _native_snapshot(policy, ordered[:1])
        done = 1
        for cut in [*cuts, len(ordered)]:
            if cut < done:
                continue
            d = policy.resume(snap, ordered[done:cut])
            assert d.model_dump_json() == _full(policy, ordered[:cut], None)
            if snap.get("engine") == "native":
                assert d.resumed is not None
                assert d.resumed.mode == "incremental" or "Python engine" in (
                    d.resumed.reason or ""
                ), d.resumed
            snap = json.loads(json.dumps(d.snapshot()))
            done = cut

    check()


def test_huixiao_long_chain_one_event_at_a_time() -> None:
    require(native.MODULE)
    policy = _policy("huixiao")
    events = single_customer(60, 3)
    snap = _native_snapshot(policy, events[:1])
    for i in range(1, len(events)):
        d = policy.resume(snap, events[i : i + 1])
        assert d.resumed is not None and d.resumed.mode == "incremental", d.resumed
        if i % 10 == 0 or i == len(events) - 1:
            assert d.model_dump_json() == _full(policy, events[: i + 1], None)
        snap = json.loads(json.dumps(d.snapshot()))
    assert snap["engine"] == "native"


def test_resuming_twice_gives_the_same() -> None:
    """The state read back (maps rebuilt in another order) decides the same every time."""
    require(native.MODULE)
    policy = _policy("huixiao")
    events = single_customer(80, 5)
    snap = _native_snapshot(policy, events[:40])
    a = policy.resume(snap, events[40:])
    b = policy.resume(copy.deepcopy(snap), events[40:])
    assert a.model_dump_json() == b.model_dump_json() == _full(policy, events, None)
    assert a.snapshot()["events"] == b.snapshot()["events"]


# ---------------------------------------------------------------- refusals and full paths


def _huixiao() -> tuple[pe.Policy, list[Event], Any]:
    require(native.MODULE)
    policy = _policy("huixiao")
    events = single_customer(40, 2)
    return policy, events, _native_snapshot(policy, events[:20])


def _codes(exc: pytest.ExceptionInfo[SnapshotError]) -> list[str]:
    return [p.code for p in exc.value.problems]


def test_damaged_snapshot_is_pe502() -> None:
    policy, events, snap = _huixiao()
    state = snap["state"]
    bad = dict(snap, state=state[:100] + ("A" if state[100] != "A" else "B") + state[101:])
    with pytest.raises(SnapshotError) as exc:
        policy.resume(bad, events[20:])
    assert _codes(exc) == ["PE502"]
    with pytest.raises(SnapshotError) as exc:
        policy.resume(dict(snap, engine="other"), events[20:])
    assert _codes(exc) == ["PE502"]  # the digest covers the engine


def test_sealed_snapshot_and_the_wrong_key_is_pe502() -> None:
    policy, events, _ = _huixiao()
    d = policy.evaluate(events[:20], backend="native", resumable=True)
    sealed = json.loads(json.dumps(d.snapshot(key=b"right")))
    assert policy.resume(sealed, events[20:], key=b"right").model_dump_json() == _full(
        policy, events, None
    )
    with pytest.raises(SnapshotError) as exc:
        policy.resume(sealed, events[20:], key=b"wrong")
    assert _codes(exc) == ["PE502"]


def test_another_policy_is_pe501() -> None:
    _, events, snap = _huixiao()
    with pytest.raises(SnapshotError) as exc:
        _policy("online_store").resume(snap, events[20:])
    assert _codes(exc) == ["PE501"]


def test_as_of_before_the_snapshot_is_pe503() -> None:
    policy, _, snap = _huixiao()
    with pytest.raises(SnapshotError) as exc:
        policy.resume(snap, [], as_of="2000-01-01T00:00:00+00:00")
    assert _codes(exc) == ["PE503"]


def test_an_event_before_the_snapshot_evaluates_in_full() -> None:
    policy, events, _ = _huixiao()
    head = events[:10] + events[11:20]
    snap = _native_snapshot(policy, head)
    d = policy.resume(snap, [events[10], *events[20:]])
    assert d.resumed is not None and d.resumed.mode == "full"
    assert "before the snapshot's as_of" in (d.resumed.reason or "")
    assert d.model_dump_json() == _full(policy, [*head, events[10], *events[20:]], None)
    again = json.loads(json.dumps(d.snapshot()))  # the full path keeps the core's state
    assert again["engine"] == "native"
    assert policy.resume(again, []).model_dump_json() == d.model_dump_json()


def test_another_state_version_evaluates_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    policy, events, snap = _huixiao()
    raw = bytearray(base64.b64decode(snap["state"]))
    raw[4] = 99  # the state format's number (a one-byte varint after the magic)
    old = dict(snap, state=base64.b64encode(bytes(raw)).decode("ascii"))
    old["digest"] = native_snapshot.snap._digest(old)
    d = policy.resume(old, events[20:])
    assert d.resumed is not None and d.resumed.mode == "full"
    assert "format 99" in (d.resumed.reason or ""), d.resumed
    assert d.model_dump_json() == _full(policy, events, None)


def test_without_the_core_resume_evaluates_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    _, events, snap = _huixiao()
    monkeypatch.setattr(native, "_module", lambda: None)
    policy = pe.load_policy(ROOT / "policies" / "huixiao")  # no core in its memo
    d = policy.resume(snap, events[20:])
    assert d.resumed is not None and d.resumed.mode == "full"
    assert "not installed" in (d.resumed.reason or "")
    assert d.model_dump_json() == _full(policy, events, None)
    python = d.snapshot()  # the Python engine's own state
    assert "engine" not in python
    e = policy.evaluate(events[:20], backend="native", resumable=True)
    assert "engine" not in e.snapshot()


def test_python_snapshots_are_unchanged() -> None:
    policy = _policy("huixiao")
    events = single_customer(30, 4)
    snap = policy.evaluate(events[:15]).snapshot()
    assert "engine" not in snap
    d = policy.resume(json.loads(json.dumps(snap)), events[15:])
    assert d.resumed is not None and d.resumed.mode == "incremental"
    assert d.model_dump_json() == _full(policy, events, None)


# ---------------------------------------------------------------- owner_changed, ticks, metrics


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_level.histories(), st.data())
def test_derived_rows_ticks_and_metrics_across_resumes(
    case: tuple[list[Event], str | None], data: st.DataObject
) -> None:
    """The policy of every construct (derived ``owner_changed`` events, ticks, metrics and
    awards, labels, invariants): new events' rows come after derived rows of the state."""
    require(native.MODULE)
    events, as_of = case
    policy = policy_level.load(policy_level.ALL)
    cuts = sorted(data.draw(st.lists(st.integers(1, max(1, len(events))), max_size=3)))
    if not events:
        return
    snap = _native_snapshot(policy, events[:1])
    done = 1
    for cut in [*cuts, len(events)]:
        if cut < done:
            continue
        last = cut == len(events)
        after = as_of is not None and _at({"at": as_of}) >= _at(events[cut - 1])
        want_as_of = as_of if last and after else None
        d = policy.resume(snap, events[done:cut], as_of=want_as_of)
        assert d.model_dump_json() == _full(policy, events[:cut], want_as_of)
        assert d.resumed is not None and d.resumed.mode == "incremental", d.resumed
        snap = json.loads(json.dumps(d.snapshot()))
        assert snap["engine"] == "native"
        done = cut


def test_events_after_as_of_wait_in_the_snapshot() -> None:
    """Events after the snapshot's ``as_of`` are stored, not applied: a later resume applies
    them with the new ones, in time order."""
    require(native.MODULE)
    policy = _policy("huixiao")
    events = single_customer(50, 6)
    cut_at = events[20]["at"]
    snap = json.loads(
        json.dumps(
            policy.evaluate(events[:30], as_of=cut_at, backend="native", resumable=True).snapshot()
        )
    )
    assert snap["engine"] == "native" and snap["applied"] < 30
    d = policy.resume(snap, events[30:40], as_of=events[35]["at"])
    assert d.resumed is not None and d.resumed.mode == "incremental"
    assert d.model_dump_json() == _full(policy, events[:40], events[35]["at"])
    e = policy.resume(json.loads(json.dumps(d.snapshot())), events[40:])
    assert e.resumed is not None and e.resumed.mode == "incremental"
    assert e.model_dump_json() == _full(policy, events, None)


def test_the_core_refuses_a_state_of_another_ir() -> None:
    """Below the snapshot's own checks: the state names the IR it was made with."""
    mod = require(native.MODULE)
    policy, events, snap = _huixiao()
    state = base64.b64decode(snap["state"])
    other = _policy("online_store")
    core = native._prepared(other.program).core
    refs = [r.ref for r in other.compiled.rules]
    columns: list[list[Any]] = [[] for _ in core.fields()]
    with pytest.raises(mod.Unsupported, match="another policy's IR"):
        core.resume(state, snap["ids"][:20], [], [], columns, None, refs)
    with pytest.raises(mod.Unsupported, match="not a saved state"):
        core.resume(b"junk", [], [], [], columns, None, refs)
    assert mod.STATE_VERSION == 3 and state[:3] == b"PEs"
    forged = dict(snap, engine="other")
    forged["digest"] = native_snapshot.snap._digest(forged)
    with pytest.raises(SnapshotError) as exc:
        policy.resume(forged, events[20:])
    assert _codes(exc) == ["PE502"]
