"""``evaluate_many(workers=2)`` with shards on the Rust core against shards on the Python
engine and against ``evaluate`` (Python and ``backend="native"``), on a generated HX history:
wall-clock seconds of each, the engine that ran the shards and why not the core.

    python benchmarks/native_shards.py --customers 20000 [--policy PATH] [--subjects-only]

``--subjects-only`` drops the events without a subject (resignations, filed records...),
which keep a history's shards on the Python engine. On a 2-core machine shared with other
work the wall clock is noisy: compare the ratios of one run, with its load average.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

from generate import generate  # noqa: E402

import policyengine as pe  # noqa: E402
from policyengine import distributed  # noqa: E402


def _timed(work: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = work()
    return time.perf_counter() - t0, out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--policy", default=str(ROOT / "policies" / "huixiao" / "resources.yaml"))
    ap.add_argument("--subjects-only", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    policy = pe.load_policy(args.policy)
    sf = policy.compiled.subject_field
    events = [e for e in generate(args.customers, args.seed) if e["type"] in policy.compiled.events]
    if args.subjects_only:
        events = [e for e in events if isinstance(e.get(sf), str)]
    print(f"{len(events):,} events, load average {os.getloadavg()}")
    t_py, single = _timed(lambda: policy.evaluate(events, resumable=False))
    t_nat, _ = _timed(lambda: policy.evaluate(events, backend="native"))
    expected = json.loads(single.model_dump_json())
    print(f"  evaluate(python)                    {t_py:8.2f} s")
    print(f"  evaluate(native)                    {t_nat:8.2f} s")
    for backend in ("python", "native"):
        t, run = _timed(
            lambda b=backend: distributed.run(policy, events, workers=args.workers, backend=b)
        )
        r = run.report
        same = json.loads(run.decision.model_dump_json()) == expected
        print(
            f"  evaluate_many({args.workers} workers, {backend:6}) {t:8.2f} s  engine {r.engine}, "
            f"{r.mode}, {r.shards} shards, equal to evaluate: {same}"
            + (f"; not on the core: {r.not_native}" if r.not_native else "")
        )
    print(f"  load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
