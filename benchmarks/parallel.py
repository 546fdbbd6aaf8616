"""``evaluate`` against ``evaluate_many(workers=2)`` on the HX packs and a generated history:
the wall-clock ratio, and the caller's serial part measured in CPU seconds with its Amdahl
bound, which a loaded machine cannot blur (its wall clock can).

    python benchmarks/parallel.py --customers 20000 [--check] [--json]

W is all the CPU work of the 2-worker run (the caller's and its workers'), S the caller's own
work outside the shard it evaluates (planning, partitioning, unpickling, merging, the
decision), so the 2-process bound is W / (S + (W - S) / 2). "against evaluate" divides
``evaluate``'s own CPU seconds by that same S + (W - S) / 2: the ratio an idle machine shows
when both processes finish together.
Workers' CPU comes from ``getrusage(RUSAGE_CHILDREN)`` (a worker's whole life, its pickling
included), the caller's from ``getrusage(RUSAGE_SELF)`` and ``Report.cpu`` per stage.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

from generate import generate  # noqa: E402

import policyengine as pe  # noqa: E402
from policyengine import distributed  # noqa: E402


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def measure(policy: pe.Policy, events: list[dict[str, Any]], check: bool) -> dict[str, Any]:
    """One ``evaluate`` and one ``run(workers=2)``, each after a full collection."""
    out: dict[str, Any] = {"events": len(events), "load_average": os.getloadavg()}
    gc.collect()
    w0, c0 = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    single = policy.evaluate(events, resumable=False)
    out["evaluate"] = {
        "wall": time.perf_counter() - w0,
        "cpu": _cpu(resource.RUSAGE_SELF) - c0,
    }
    gc.collect()
    w0, c0 = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    k0 = _cpu(resource.RUSAGE_CHILDREN)
    run = distributed.run(policy, events, workers=2)
    wall = time.perf_counter() - w0
    caller = _cpu(resource.RUSAGE_SELF) - c0
    workers = _cpu(resource.RUSAGE_CHILDREN) - k0
    report = run.report
    stages = getattr(report, "cpu", {})  # absent before the runner measured it
    own = stages.get("own shard", 0.0)  # the caller's shard, as a worker's: not serial
    serial = caller - own
    total = caller + workers
    out["many"] = {
        "wall": wall,
        "mode": report.mode,
        "shards": report.shards,
        "sizes": report.sizes,
        "replicated": report.replicated,
        "fallback": report.fallback,
        "caller_cpu": caller,
        "workers_cpu": workers,
        "stages_cpu": dict(stages),
        "seconds": dict(report.seconds),
    }
    out["ratio_wall"] = out["evaluate"]["wall"] / wall
    out["serial_fraction"] = serial / total if total else 1.0
    out["amdahl_bound"] = total / (serial + (total - serial) / 2) if total else 1.0
    out["bound_vs_evaluate"] = out["evaluate"]["cpu"] / (serial + (total - serial) / 2)
    if check:
        out["byte_equal"] = single.model_dump_json() == run.decision.model_dump_json()
    return out


def report(r: dict[str, Any]) -> str:
    m = r["many"]
    la = ", ".join(f"{x:.2f}" for x in r["load_average"])
    lines = [
        f"{r['events']:,} events, load average {la} (2-worker wall clock is reliable only "
        "near 0 on 2 cores)",
        f"  evaluate()                 wall {r['evaluate']['wall']:8.2f} s, "
        f"CPU {r['evaluate']['cpu']:8.2f} s",
        f"  evaluate_many(workers=2)   wall {m['wall']:8.2f} s, caller CPU {m['caller_cpu']:.2f} s,"
        f" workers CPU {m['workers_cpu']:.2f} s ({m['mode']}, {m['shards']} shards "
        f"{m['sizes']} + {m['replicated']} replicated)",
        "  caller CPU by stage: " + ", ".join(f"{k} {v:.2f}" for k, v in m["stages_cpu"].items()),
        f"  wall-clock ratio: {r['ratio_wall']:.2f}x",
        f"  serial part S/W: {r['serial_fraction']:.1%}; Amdahl bound with 2 processes: "
        f"{r['amdahl_bound']:.2f}x; against evaluate's CPU: "
        f"{r['bound_vs_evaluate']:.2f}x",
    ]
    if m["fallback"]:
        lines.append(f"  FELL BACK to one process: {m['fallback']}")
    if "byte_equal" in r:
        lines.append(f"  decision byte-equal to evaluate(): {r['byte_equal']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--policy", default=str(ROOT / "policies" / "huixiao"))
    ap.add_argument("--check", action="store_true", help="compare the decisions as JSON")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    policy = pe.load_policy(args.policy)
    events = [e for e in generate(args.customers, args.seed) if e["type"] in policy.compiled.events]
    r = measure(policy, events, args.check)
    print(json.dumps(r, indent=1) if args.json else report(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
