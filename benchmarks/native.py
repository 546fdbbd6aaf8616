"""Benchmark: the Rust core against the Python engine and the hand-written baseline.

Run from the repository root (the core is built by ``make`` where cargo is on PATH, or by
``.venv/bin/pip install ./native``)::

    .venv/bin/python benchmarks/native.py                  # 5 000 customers, seed 1
    .venv/bin/python benchmarks/native.py --customers 300  # a smoke run

One generated history (``generate.py``, seeded), filtered to the three event types
``hx_ownership.yaml`` declares (as ``bench.py`` does for the baseline), timed three ways:
``policy.evaluate(events, backend=...)`` with ``"python"`` and ``"native"`` (both lean,
``resumable=False``: event validation, the evaluation and the Decision object) and
``baseline.evaluate(events)``, and the event validation both backends share (``prepare``,
still Python). Events per second, best of ``--repeat`` runs; the native and
Python decisions are checked equal as JSON before anything is timed.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import baseline
from generate import generate

import policyengine as pe
from policyengine.backends import native
from policyengine.runtime.events import prepare

ROOT = Path(__file__).resolve().parents[1]
TYPES = ("registered", "preheated", "invited")


def best(run: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    policy = pe.load_policy(ROOT / "benchmarks" / "hx_ownership.yaml")
    events = [e for e in generate(args.customers, args.seed) if e["type"] in TYPES]
    why = native.unsupported(policy)
    print(f"{len(events)} events, {args.customers} customers; native core: {why or 'in use'}")
    python = policy.evaluate(events, backend="python", resumable=False)
    ours = policy.evaluate(events, backend="native", resumable=False)
    same = python.model_dump_json() == ours.model_dump_json()
    print(f"decisions equal as JSON: {same}")
    rows = [
        ("python", lambda: policy.evaluate(events, backend="python", resumable=False)),
        ("native", lambda: policy.evaluate(events, backend="native", resumable=False)),
        ("baseline.py", lambda: baseline.evaluate(events)),
        # shared by both backends: what is left of "native" once the core is this fast
        ("prepare only", lambda: prepare(policy.compiled, events)),
    ]
    print(f"{'backend':<12} {'seconds':>9} {'events/s':>12}")
    for name, run in rows:
        seconds = best(run, args.repeat)
        print(f"{name:<12} {seconds:>9.3f} {len(events) / seconds:>12,.0f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
