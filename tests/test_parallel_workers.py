"""evaluate_many when a worker process dies or stops answering: our own error, naming the
shard, in bounded time, and no worker left behind."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine import distributed
from policyengine.backends.parallel import runner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from generate import generate  # noqa: E402

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)


def _setup() -> tuple[pe.Policy, list[dict[str, Any]]]:
    policy = pe.load_policy(ROOT / "policies/huixiao/resources.yaml")
    events = [e for e in generate(40, seed=2) if e["type"] in policy.compiled.events]
    return policy, events


def _children() -> list[Any]:
    return [p for p in multiprocessing.active_children() if p.is_alive()]


def test_a_worker_that_dies_raises_our_error_naming_the_shard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy, events = _setup()
    real = runner.evaluate_shard

    def dies_in_shard_1(program: Any, shard_events: Any, *args: Any) -> Any:
        if shard_events and shard_events[0][0] == first_of_1[0]:
            os._exit(9)  # as the kernel's OOM killer would leave it: no result, no traceback
        return real(program, shard_events, *args)

    plan = distributed.plan(policy)
    part = distributed.partition(policy.program, plan, events, 2, None)
    assert part.shards == 2
    first_of_1 = distributed.shard_events(part, 1)[0]
    monkeypatch.setattr(runner, "evaluate_shard", dies_in_shard_1)
    with pytest.raises(pe.WorkerError) as info:
        # fork: the worker inherits the patched function (spawn would import it afresh)
        distributed.run(policy, events, workers=2, start_method="fork")
    assert info.value.codes == ["PE310"]
    assert "shard 1 of 2" in str(info.value) and "exit code 9" in str(info.value)
    assert isinstance(info.value, pe.PolicyEngineError)
    assert _children() == []


def test_a_worker_that_stops_answering_is_given_up_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy, events = _setup()
    real = runner.evaluate_shard

    caller = os.getpid()

    def hangs(program: Any, shard_events: Any, *args: Any) -> Any:
        if os.getpid() != caller:  # the worker's shard; the caller evaluates shard 0 itself
            time.sleep(60)
        return real(program, shard_events, *args)

    monkeypatch.setattr(runner, "evaluate_shard", hangs)
    started = time.monotonic()
    with pytest.raises(pe.WorkerError) as info:
        distributed.run(policy, events, workers=2, start_method="fork", timeout=1.5)
    assert time.monotonic() - started < 20
    assert info.value.codes == ["PE311"]
    assert "did not answer within 1.5 s" in str(info.value)
    assert _children() == []  # the worker given up on was ended


def test_workers_in_time_decide_as_one_process() -> None:
    """Through the front end, with its timeout keyword."""
    policy, events = _setup()
    assert policy.evaluate_many(events, workers=2, timeout=300).model_dump(
        mode="json"
    ) == policy.evaluate(events).model_dump(mode="json")
