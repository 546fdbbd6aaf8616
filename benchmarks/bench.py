"""Benchmark: the huixiao policy set (ownership + after-sales packs) over a large generated history.

Run from the repository root::

    .venv/bin/python benchmarks/bench.py                   # 20 000 customers, seed 1
    .venv/bin/python benchmarks/bench.py --customers 2000 --json

Measures, in order:

1. loading the policy (load + validate + compile), in ms;
2. one evaluation of the whole history, cold (no warm-up run), timed with
   ``time.perf_counter``: events, seconds, events per second; peak RSS of the process
   (``resource.getrusage``) before and after it;
3. a second evaluation of the same history under ``tracemalloc``: the peak of memory allocated
   during evaluation (input events excluded, they exist before), what the decision retains,
   and both per customer. tracemalloc slows Python down, so this run is not timed;
4. latency of one customer's 100-event history: ``evaluate`` (the Decision built, included)
   plus ``decision.owner(...)``, p50/p99 over 200 runs after 5 warm-up runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from generate import generate, single_customer

import policyengine as pe

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POLICY = ROOT / "policies" / "huixiao"  # both packs: ownership + after-sales
MB = 1024 * 1024


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))
    return ordered[int(rank) - 1]


def customers_in(events: Sequence[dict[str, Any]]) -> int:
    return len({e["customer"] for e in events if "customer" in e})


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "customers": args.customers,
        "seed": args.seed,
        "policy": str(args.policy),
    }

    t0 = time.perf_counter()
    policy = pe.load_policy(args.policy)
    out["load_compile_ms"] = (time.perf_counter() - t0) * 1000
    out["rules"] = len(policy.rule_ids)

    t0 = time.perf_counter()
    events = generate(args.customers, args.seed)
    out["generate_s"] = time.perf_counter() - t0
    out["events"] = len(events)
    out["customers_with_events"] = customers_in(events)

    # 2. one cold, timed evaluation
    gc.collect()
    out["rss_peak_before_mb"] = peak_rss_mb()
    t0 = time.perf_counter()
    decision = policy.evaluate(events)
    seconds = time.perf_counter() - t0
    out["rss_peak_after_mb"] = peak_rss_mb()
    out["evaluate_s"] = seconds
    out["events_per_s"] = len(events) / seconds
    out["decided"] = {
        "customers_owned": sum(1 for c in decision.ownerships if decision.owner(c) is not None),
        "ownership_spans": sum(len(s) for s in decision.ownerships.values()),
        "penalties": len(decision.penalties),
        "obligations": len(decision.obligations),
        "rejected": len(decision.rejected),
        "trace": len(decision.trace),
    }
    if args.serialise:
        t0 = time.perf_counter()
        text = json.dumps(decision.model_dump(mode="json"), ensure_ascii=False)
        out["serialise_s"] = time.perf_counter() - t0
        out["json_mb"] = len(text.encode("utf-8")) / MB
        del text
    del decision
    gc.collect()

    # 3. memory of an evaluation (a second, untimed run)
    if not args.no_tracemalloc:
        tracemalloc.start()
        decision = policy.evaluate(events)
        retained, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del decision
        gc.collect()
        n = max(1, out["customers_with_events"])
        out["tracemalloc_peak_mb"] = peak / MB
        out["decision_retained_mb"] = retained / MB
        out["peak_kb_per_customer"] = peak / 1024 / n
        out["retained_kb_per_customer"] = retained / 1024 / n
    out["rss_peak_end_mb"] = peak_rss_mb()
    del events
    gc.collect()

    # 4. latency of one customer's history
    history = single_customer(args.latency_events, args.seed)
    customer = history[0]["customer"]
    for _ in range(args.warmup):
        policy.evaluate(history).owner(customer)
    samples: list[float] = []
    for _ in range(args.latency_runs):
        t0 = time.perf_counter()
        policy.evaluate(history).owner(customer)
        samples.append((time.perf_counter() - t0) * 1000)
    out["latency"] = {
        "events": len(history),
        "runs": len(samples),
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "mean_ms": statistics.fmean(samples),
        "max_ms": max(samples),
    }
    return out


def report(r: dict[str, Any]) -> str:
    lines = [
        f"policyengine benchmark: {r['policy']}, Python {r['python']} ({r['machine']})",
        f"  policy load+compile      {r['load_compile_ms']:10.1f} ms   ({r['rules']} rules)",
        f"  history                  {r['events']:10d} events, {r['customers_with_events']} "
        f"customers, seed {r['seed']} (generated in {r['generate_s']:.2f} s)",
        f"  evaluate (cold, once)    {r['evaluate_s']:10.3f} s",
        f"  throughput               {r['events_per_s']:10.0f} events/s",
        f"  peak RSS                 {r['rss_peak_before_mb']:10.1f} MB before evaluate, "
        f"{r['rss_peak_after_mb']:.1f} MB after "
        f"(+{r['rss_peak_after_mb'] - r['rss_peak_before_mb']:.1f} MB)",
    ]
    if "serialise_s" in r:
        lines.append(
            f"  model_dump + json        {r['serialise_s']:10.3f} s   ({r['json_mb']:.1f} MB JSON)"
        )
    if "tracemalloc_peak_mb" in r:
        lines += [
            f"  tracemalloc peak         {r['tracemalloc_peak_mb']:10.1f} MB   "
            f"({r['peak_kb_per_customer']:.2f} KB per customer)",
            f"  decision retained        {r['decision_retained_mb']:10.1f} MB   "
            f"({r['retained_kb_per_customer']:.2f} KB per customer)",
        ]
    d, lat = r["decided"], r["latency"]
    lines += [
        f"  decided                  {d['customers_owned']} owned customers, "
        f"{d['ownership_spans']} spans, {d['penalties']} penalties, "
        f"{d['obligations']} obligations, {d['rejected']} rejected, {d['trace']} trace entries",
        f"  single customer          {lat['events']} events x {lat['runs']} runs: "
        f"p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms "
        f"(mean {lat['mean_ms']:.2f}, max {lat['max_ms']:.2f})",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time a policy (default: the huixiao packs) over a generated history."
    )
    parser.add_argument("--customers", type=int, default=20000, help="default 20000")
    parser.add_argument("--seed", type=int, default=1, help="generator seed, default 1")
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    parser.add_argument("--latency-events", type=int, default=100)
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5, help="warm-up runs before latency")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the memory run")
    parser.add_argument(
        "--serialise", action="store_true", help="also time model_dump(mode='json') + json.dumps"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.customers < 1 or args.latency_runs < 1 or args.latency_events < 1:
        parser.error("--customers, --latency-runs and --latency-events must be positive")
    results = run(args)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
