"""What keeps evaluate_many's serial part small, checked by structure (never by timing): the
caller evaluates one shard itself and no shard twice, a worker's rows travel as plain tuples
and come back as the same rows, and the collector stays paused from partition to decision
(what it made then left in the oldest generation, a caller's frozen objects left frozen)."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import pickletools
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine import distributed
from policyengine.backends.parallel import runner, shard
from policyengine.errors import Code, Problem
from policyengine.runtime.records import ObligationRecord

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import generate  # noqa: E402

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)


def _objects(data: bytes) -> int:
    """Objects the pickle rebuilds through their class's hooks."""
    return sum(op.name in ("NEWOBJ", "REDUCE", "BUILD") for op, _, _ in pickletools.genops(data))


def _plain(row: Any) -> tuple[Any, ...]:
    if isinstance(row, tuple):
        return tuple(row)
    return tuple(getattr(row, f.name) for f in fields(row))


def _setup(n: int = 60) -> tuple[pe.Policy, list[dict[str, Any]]]:
    policy = pe.load_policy(ROOT / "policies/huixiao")
    return policy, [e for e in generate(n, seed=4) if e["type"] in policy.compiled.events]


def test_the_caller_evaluates_shard_0_once_and_a_worker_the_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy, events = _setup()
    caller = os.getpid()
    seen: list[tuple[int, int]] = []  # (pid, first input index) of every shard evaluated here
    real = runner.evaluate_shard

    def counted(program: Any, shard_events: Any, *args: Any) -> Any:
        if os.getpid() == caller:
            seen.append((os.getpid(), shard_events[0][0]))
        return real(program, shard_events, *args)

    monkeypatch.setattr(runner, "evaluate_shard", counted)
    run = distributed.run(policy, events, workers=2, start_method="fork")
    assert run.report.mode == "fork" and run.report.shards == 2
    part = distributed.partition(policy.program, distributed.plan(policy), events, 2, None)
    assert seen == [(caller, distributed.shard_events(part, 0)[0][0])]
    assert set(run.report.placed.values()) == {0, 1}
    assert {"own shard", "own keys", "receive", "merge", "partition"} <= set(run.report.cpu)
    assert "caller CPU" in run.report.explain()
    # the same partition and merge in one process: the bytes do not depend on where shards ran
    one = distributed.run(policy, events, workers=1, shards=2)
    assert one.report.mode == "in-process"
    assert run.decision.model_dump_json() == one.decision.model_dump_json()


def test_a_workers_rows_travel_as_plain_tuples_and_come_back_the_same() -> None:
    policy, events = _setup(30)
    part = distributed.partition(policy.program, distributed.plan(policy), events, 2, None)
    res = shard.evaluate_shard(
        policy.program, distributed.shard_events(part, 1), part.horizon, part.first
    )
    assert res.records["trace"] and res.records["obligations"] and res.ladder
    before = {name: [_plain(r) for r in rows] for name, rows in res.records.items()}
    obligations = [(o.subject, o.status, o.met_by) for o in res.records["obligations"]]
    data = pickle.dumps(shard.pack(res), protocol=pickle.HIGHEST_PROTOCOL)
    # rows are not rebuilt object by object (NEWOBJ, REDUCE, BUILD: Python-level hooks), as a
    # plain pickle of the same result rebuilds each one
    n_rows = sum(len(r) for r in res.records.values()) + len(res.ladder) + len(res.adds)
    assert _objects(pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL)) > n_rows
    assert _objects(data) < n_rows / 2
    back = shard.unpack(pickle.loads(data))
    for name, rows in back.records.items():
        assert [_plain(r) for r in rows] == before[name], name
        if rows and name != "obligations":
            assert type(rows[0]) is type(res.records[name][0]), name
    assert not isinstance(back.records["obligations"][0], ObligationRecord)
    assert [(o.subject, o.status, o.met_by) for o in back.records["obligations"]] == obligations
    assert [(r.step, r.key, r.row) for r in back.ladder] == [
        (r.step, r.key, r.row) for r in res.ladder
    ]


def test_the_collector_is_paused_from_partition_to_decision_and_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy, events = _setup(30)
    states: list[bool] = []
    for name in ("partition", "merge"):
        real = getattr(runner, name)

        def observed(*args: Any, _real: Any = real) -> Any:
            states.append(gc.isenabled())
            return _real(*args)

        monkeypatch.setattr(runner, name, observed)
    assert gc.isenabled()
    # on Python 3.12 the process arrives here with objects frozen already (a caller's frozen set,
    # which the runner leaves alone): begin from none, as a plain caller does
    gc.unfreeze()
    distributed.run(policy, events, workers=2, start_method="fork")
    assert states == [False, False]
    assert gc.isenabled() and gc.get_freeze_count() == 0
    # what the pause made is in the oldest generation: no young pass over it is due
    assert gc.get_count()[0] < gc.get_threshold()[0]
    gc.freeze()  # a caller's own frozen objects stay frozen
    try:
        frozen = gc.get_freeze_count()
        distributed.run(policy, events, workers=2, start_method="fork")
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    gc.disable()
    try:  # a caller that runs without the collector keeps it off
        distributed.run(policy, events, workers=2, start_method="fork")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_error_in_the_callers_shard_ends_the_worker_and_decides_in_one_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy, events = _setup(30)
    caller = os.getpid()
    real = runner.evaluate_shard

    def fails_here(program: Any, shard_events: Any, *args: Any) -> Any:
        if os.getpid() == caller:
            raise pe.EvaluationError([Problem(Code.RUNTIME_TYPE, "made to fail in the caller")])
        return real(program, shard_events, *args)

    monkeypatch.setattr(runner, "evaluate_shard", fails_here)
    run = distributed.run(policy, events, workers=2, start_method="fork")
    assert run.report.mode == "single"
    assert run.report.fallback is not None and "made to fail in the caller" in run.report.fallback
    assert [p for p in multiprocessing.active_children() if p.is_alive()] == []
    assert run.decision.model_dump_json() == policy.evaluate(events).model_dump_json()
