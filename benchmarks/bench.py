"""Benchmark: the engine against the durable_rules backend and against hand-written Python.

Run from the repository root (``make bench`` runs the first line)::

    .venv/bin/python benchmarks/bench.py                 # 20 000 customers, seed 1
    .venv/bin/python benchmarks/bench.py --quick         # 300 customers: a smoke run
    .venv/bin/python benchmarks/bench.py --customers 5000 --durable-customers 500 --json

Issue #7 asks how fast the engine is in absolute terms and next to two references, so every
figure comes from one generated history (``generate.py``, seeded), measured in one process:

1. throughput of the HX packs (``policies/huixiao``: resources + after-sales) on the native
   backend, over the whole history;
2. the same policy on the durable_rules backend. It is several times slower, so both backends
   run on a subset: the events of the first ``--durable-customers`` customers plus every event
   that names no customer (resignations, hand-overs, transfers, records, lists);
3. the ownership core alone (``hx_ownership.yaml``: the HX-RM-2 and HX-RM-6 rules) against
   ``baseline.py``, the same rules written by hand in plain Python: what Python can do at
   best. That policy declares ``registered``, ``preheated`` and ``invited`` only (and refuses
   other types, as the pack does), so its stream is the history filtered to those three types
   before timing; the durable comparison is repeated for it on the same customer subset;
4. latency of one customer's 100-event history: ``evaluate``, then ``decision.owner(...)``
   and ``decision.penalties`` read (entries are built on first read), p50/p99;
5. load + validate + compile of each policy file or folder;
6. memory (tracemalloc): what a decision retains per customer, and whether evaluating batch
   after batch of new customers leaves anything behind;
7. if ``Policy.evaluate_many`` exists, the process-parallel runner with 1 and 2 workers on
   the HX resources pack and the whole history, one run each (they are long).

Throughput is events / seconds of ``policy.evaluate(events)``: event validation, the
evaluation and the Decision object (whose entries are built lazily); best of ``--repeat`` runs,
``time.perf_counter``; before each run gc collects and freezes what already exists, so that the
collector's work counted is that of the run's own objects. The flat cost (issue 20) compares
the Rust core on the ownership stream and on a stream 10x larger (``--flat-rounds`` rounds,
each timing both, and the hand-written replay on both, best of each: ``native.interleaved``).
A history larger than anything the process touched before runs slower on its first runs, while
the system hands its pages out afresh, so neither history is judged by a first run alone. The
targets of the issue are checked and printed as PASS/FAIL; the machine is printed first,
because every figure depends on it.
"""

from __future__ import annotations

import argparse
import calendar
import gc
import importlib
import json
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import baseline
from generate import generate, single_customer
from native import interleaved

import policyengine as pe

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HX_PACKS = ROOT / "policies" / "huixiao"  # resources.yaml + after_sales.yaml
HX_RESOURCES = HX_PACKS / "resources.yaml"
OWNERSHIP = HERE / "hx_ownership.yaml"
OWNERSHIP_TYPES = ("registered", "preheated", "invited")
MB = 1024 * 1024

# issue #7
TARGET_OWNERSHIP_EPS = 300_000  # events/s, ownership-only policy, native
TARGET_BASELINE_FACTOR = 4.0  # the hand-written baseline at most this many times faster
TARGET_DURABLE_FACTOR = 20.0  # native at least this many times faster than durable
TARGET_P50_MS = 1.0

Event = dict[str, Any]
Result = dict[str, Any]
T = TypeVar("T")

QUICK = {
    "customers": 300,
    "durable_customers": 100,
    "repeat": 1,
    "flat_rounds": 1,
    "batch_customers": 100,
    "warmup": 10,
}
FULL = {
    "customers": 20_000,
    "durable_customers": 1_000,
    "repeat": 2,
    "flat_rounds": 4,
    "batch_customers": 500,
    "warmup": 20,
}


# ---------------------------------------------------------------- helpers


def machine() -> Result:
    """What the figures were measured on; load average because the machine may be shared."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "load_average": load,
    }


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation: a p99 is a run that happened)."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))
    return ordered[int(rank) - 1]


def best_of(run: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Seconds of the fastest of ``repeat`` runs (the least disturbed by other processes), and
    the last run's result, for the agreement checks."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeat):
        result = None  # the previous run's decision is not alive during this one
        gc.collect()
        # What exists before the run (the input history, the whole history while a subset is
        # timed) is not rescanned by the collector during it: each figure then depends on the
        # run's own allocations only, not on what else this process holds.
        gc.freeze()
        try:
            t0 = time.perf_counter()
            result = run()
            best = min(best, time.perf_counter() - t0)
        finally:
            gc.unfreeze()
    assert result is not None
    return best, result


def throughput(events: int, seconds: float) -> Result:
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds}


def timed(out: Result, key: str, events: Sequence[Event], run: Callable[[], T], repeat: int) -> T:
    """Record the throughput of ``run`` over ``events`` under ``key``; return its result."""
    seconds, result = best_of(run, repeat)
    out[key] = throughput(len(events), seconds)
    return result


def us(dt: datetime) -> int:
    """Epoch microseconds of a decision's instant, to compare with the baseline's."""
    return calendar.timegm(dt.utctimetuple()) * 1_000_000 + dt.microsecond


def spans_of(decision: pe.Decision) -> dict[str, list[tuple[Any, ...]]]:
    return {
        c: [(s.owner, us(s.start), None if s.end is None else us(s.end), s.rule) for s in found]
        for c, found in decision.ownerships.items()
    }


def first_customers(events: Sequence[Event], n: int) -> list[Event]:
    """The events of the first ``n`` customers to appear, and the events naming no customer
    (employee events: the rules about resignations, transfers and records still run)."""
    chosen: set[str] = set()
    out: list[Event] = []
    for e in events:
        customer = e.get("customer")
        if customer is None:
            out.append(e)
            continue
        if customer not in chosen:
            if len(chosen) >= n:
                continue
            chosen.add(customer)
        out.append(e)
    return out


def new_customers(size: int, seed: int, batch: int) -> list[Event]:
    """A whole history of ``size`` customers whose ids no other batch uses (suffix ``.batch``),
    over the same six months: what could grow with the subjects seen is then told apart from
    what grows with the calendar (periods, dates met once)."""
    out: list[Event] = []
    for e in generate(size, seed + batch):
        e = dict(e)
        for name in ("customer", "referred_by"):
            if name in e:
                e[name] = f"{e[name]}.{batch}"
        out.append(e)
    return out


def customers_in(events: Sequence[Event]) -> int:
    return len({e["customer"] for e in events if "customer" in e})


# ---------------------------------------------------------------- measurements


def load_times(path: Path, repeat: int = 5) -> tuple[pe.Policy, Result]:
    """The first load pays for lazy imports and caches; later loads are what a service pays."""
    t0 = time.perf_counter()
    policy = pe.load_policy(path)
    first = (time.perf_counter() - t0) * 1000
    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        pe.load_policy(path)
        warm.append((time.perf_counter() - t0) * 1000)
    return policy, {
        "path": str(path.relative_to(ROOT)),
        "rules": len(policy.rule_ids),
        "first_ms": first,
        "median_ms": statistics.median(warm),
        "runs": repeat,
    }


def held_per_event(run: Callable[[], Any], events: int) -> float:
    """Bytes the result of ``run`` holds per event (tracemalloc: Python's objects; the Rust
    core returns its rows as such, and keeps nothing once it has)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = run()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del result
    return held / max(1, events)


def latency(
    policy: pe.Policy, history: list[Event], runs: int, warmup: int, backend: str = "python"
) -> Result:
    """One small history, as a service answering one customer at a time would evaluate it."""
    customer = history[0]["customer"]

    def once() -> None:
        decision = policy.evaluate(history, backend=backend)  # type: ignore[arg-type]
        decision.owner(customer)
        _ = decision.penalties

    for _ in range(warmup):
        once()
    samples: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        once()
        samples.append((time.perf_counter() - t0) * 1000)
    return {
        "events": len(history),
        "runs": runs,
        "warmup": warmup,
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "mean_ms": statistics.fmean(samples),
        "max_ms": max(samples),
    }


def resume_latency(policy: pe.Policy, history: list[Event], runs: int, warmup: int) -> Result:
    """What a CRM calling us on every new event pays: the stored snapshot of the first
    ``len - 1`` events (already read from its database) resumed with the last event, the
    decision read as in ``latency``."""
    customer = history[0]["customer"]
    stored = json.loads(json.dumps(policy.evaluate(history[:-1]).snapshot()))
    last = history[-1:]

    def once() -> None:
        decision = policy.resume(stored, last)
        decision.owner(customer)
        _ = decision.penalties

    for _ in range(warmup):
        once()
    samples: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        once()
        samples.append((time.perf_counter() - t0) * 1000)
    return {
        "events": len(history),
        "runs": runs,
        "warmup": warmup,
        "snapshot_kb": len(json.dumps(stored)) / 1024,
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "mean_ms": statistics.fmean(samples),
        "max_ms": max(samples),
    }


def retained(policy: pe.Policy, events: list[Event]) -> Result:
    """Memory a decision keeps, per customer; tracemalloc slows Python, so this run is untimed.

    The input events exist before tracing starts and are not counted. ``lazy`` is the decision
    as ``evaluate`` returns it; ``built`` after its ownerships, penalties and obligations were
    read (pydantic entries, built on first read and cached in the decision).
    """
    n = max(1, customers_in(events))
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    decision = policy.evaluate(events, resumable=False)
    gc.collect()
    lazy, peak = tracemalloc.get_traced_memory()
    _ = decision.ownerships, decision.penalties, decision.obligations
    gc.collect()
    built = tracemalloc.get_traced_memory()[0]
    del decision
    gc.collect()
    left = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {
        "customers": n,
        "events": len(events),
        "peak_mb": (peak - base) / MB,
        "retained_mb": (lazy - base) / MB,
        "retained_kb_per_customer": (lazy - base) / 1024 / n,
        "built_mb": (built - base) / MB,
        "built_kb_per_customer": (built - base) / 1024 / n,
        "left_after_drop_kb": (left - base) / 1024,
    }


def boundedness(policy: pe.Policy, batches: list[list[Event]], size: int) -> Result:
    """Evaluate batches of new customers one after another, dropping each decision: the memory
    held with the current decision alive, and what stays once it is dropped, must not grow
    with the customers evaluated before (no per-subject state outliving its evaluation)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    rows: list[Result] = []
    for k, batch in enumerate(batches, start=1):
        decision = policy.evaluate(batch, resumable=False)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
        del decision
        gc.collect()
        left = tracemalloc.get_traced_memory()[0] - base
        rows.append(
            {
                "batch": k,
                "customers_before": (k - 1) * size,
                "customers": customers_in(batch),
                "events": len(batch),
                "held_mb": held / MB,
                "held_kb_per_customer": held / 1024 / max(1, customers_in(batch)),
                "left_kb": left / 1024,
            }
        )
    tracemalloc.stop()
    mean_held_kb = statistics.fmean(r["held_mb"] * 1024 for r in rows)
    # after the first batch (imports, caches filled once), what is left must not grow
    growth_kb = rows[-1]["left_kb"] - rows[0]["left_kb"] if len(rows) > 1 else 0.0
    held_kb = [r["held_kb_per_customer"] for r in rows]
    later = sum(r["customers"] for r in rows[1:])
    return {
        "batches": rows,
        "left_growth_kb": growth_kb,
        "left_growth_bytes_per_customer": growth_kb * 1024 / later if later else 0.0,
        "held_kb_per_customer_spread": max(held_kb) - min(held_kb),
        "bounded": growth_kb <= 0.05 * mean_held_kb,
    }


def parallel(events: list[Event], repeat: int) -> Result:
    """``evaluate_many`` on the HX resources pack with 1 and 2 worker processes, beside
    ``evaluate``; its decision must give the same owners."""
    policy = pe.load_policy(HX_RESOURCES)
    as_of = events[-1]["at"]
    many: Callable[..., pe.Decision] = cast(Any, policy).evaluate_many  # not in every version
    out: Result = {"policy": str(HX_RESOURCES.relative_to(ROOT)), "events": len(events)}
    reference = timed(
        out, "evaluate", events, lambda: policy.evaluate(events, as_of, resumable=False), 1
    )
    timed(out, "workers_1", events, lambda: many(events, as_of=as_of, workers=1), repeat)
    split = timed(out, "workers_2", events, lambda: many(events, as_of=as_of, workers=2), repeat)
    out["speedup_2_vs_1"] = out["workers_1"]["seconds"] / out["workers_2"]["seconds"]
    sample = sorted({e["customer"] for e in events if "customer" in e})[::50]
    out["owners_agree"] = all(reference.owner(c) == split.owner(c) for c in sample)
    out["owners_compared"] = len(sample)
    try:  # why a policy runs as one shard, where the runner says so
        split_plan = importlib.import_module("policyengine.distributed").plan(policy)
        out["separable"] = bool(split_plan.separable)
        out["not_separable_because"] = [str(x) for x in split_plan.reasons]
    except (ImportError, AttributeError):
        pass
    return out


# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> Result:
    out: Result = {"machine": machine()}

    # 5. first, so that the first load is a first load
    hx, load_hx = load_times(HX_PACKS)
    own, load_own = load_times(OWNERSHIP)
    out["load"] = {"hx_packs": load_hx, "ownership": load_own}

    t0 = time.perf_counter()
    events = generate(args.customers, args.seed)
    generated_s = time.perf_counter() - t0
    stream = [e for e in events if e["type"] in OWNERSHIP_TYPES]
    subset = first_customers(events, args.durable_customers)
    stream_subset = [e for e in subset if e["type"] in OWNERSHIP_TYPES]
    out["history"] = {
        "customers": args.customers,
        "seed": args.seed,
        "events": len(events),
        "generated_s": generated_s,
        "ownership_events": len(stream),
        "ownership_filter": "events of other types than "
        + ", ".join(OWNERSHIP_TYPES)
        + " removed before timing (the policy refuses them)",
        "durable_customers": min(args.durable_customers, customers_in(events)),
        "durable_events": len(subset),
        "durable_customerless_events": sum(1 for e in subset if "customer" not in e),
        "durable_ownership_events": len(stream_subset),
        "repeat": args.repeat,
    }

    # 1-3. throughput; the comparisons mean something only if the answers agree (checked
    # on the timed runs' results, outside the timings)
    r = args.repeat
    t: Result = {}
    # durable builds its ruleset once per process (as native compiles in load_policy): a small
    # run of each first, so that no timing pays for it
    for policy, sample in ((hx, subset[:200]), (own, stream_subset[:200])):
        policy.evaluate(sample)
        policy.evaluate(sample, backend="durable")
    timed(t, "hx_native", events, lambda: hx.evaluate(events, resumable=False), r)
    native = timed(t, "hx_native_subset", subset, lambda: hx.evaluate(subset, resumable=False), r)
    durable = timed(
        t, "hx_durable_subset", subset, lambda: hx.evaluate(subset, backend="durable"), r
    )
    agree: Result = {
        "durable_vs_native_hx": spans_of(native) == spans_of(durable)
        and native.penalties == durable.penalties
        and native.obligations == durable.obligations
    }
    del native, durable
    decision = timed(t, "own_native", stream, lambda: own.evaluate(stream, resumable=False), r)
    ours = timed(t, "own_baseline", stream, lambda: baseline.evaluate(stream), max(r, 3))
    agree["baseline_vs_native_ownership"] = spans_of(decision) == ours.spans
    del decision, ours
    native = timed(
        t,
        "own_native_subset",
        stream_subset,
        lambda: own.evaluate(stream_subset, resumable=False),
        r,
    )
    durable = timed(
        t,
        "own_durable_subset",
        stream_subset,
        lambda: own.evaluate(stream_subset, backend="durable"),
        r,
    )
    agree["durable_vs_native_ownership"] = spans_of(native) == spans_of(durable)
    del native, durable
    # the Rust core (issue 20): backend="native" where it is built, on the same histories
    from policyengine.backends import native as core

    rust: Result = {"available": core.available(), "hx_runs_on": None}
    if core.available():
        rd = timed(t, "own_rust", stream, lambda: own.evaluate(stream, backend="native"), max(r, 3))
        agree["rust_vs_python_ownership"] = spans_of(rd) == spans_of(
            own.evaluate(stream, resumable=False)
        )
        del rd
        why = core.unsupported(hx)
        rust["hx_runs_on"] = "Python engine: " + why if why else "Rust core"
        # flat cost: the same policy on a history 10x larger (other customers, same mix), the
        # two histories in rounds of their own, and the hand-written replay on both beside them
        big = [
            e for e in generate(10 * args.customers, args.seed + 1) if e["type"] in OWNERSHIP_TYPES
        ]
        flat_rows: list[tuple[str, list[Event], Callable[[], Any]]] = [
            ("own_rust_flat", stream, lambda: own.evaluate(stream, backend="native")),
            ("own_rust_10x", big, lambda: own.evaluate(big, backend="native")),
            ("own_baseline_flat", stream, lambda: baseline.evaluate(stream)),
            ("own_baseline_10x", big, lambda: baseline.evaluate(big)),
        ]
        seconds = interleaved(flat_rows, args.flat_rounds, once=lambda run: best_of(run, 1)[0])
        for (key, evs, _), s in zip(flat_rows, seconds, strict=True):
            t[key] = throughput(len(evs), s)
        del big, flat_rows
        if not args.no_memory:
            rust["bytes_per_event"] = held_per_event(
                lambda: own.evaluate(stream, backend="native"), len(stream)
            )
        if why is None:  # the packs on the core: today's rate and the durable backend's
            timed(t, "hx_rust", events, lambda: hx.evaluate(events, backend="native"), r)
            timed(t, "hx_rust_subset", subset, lambda: hx.evaluate(subset, backend="native"), r)
            rust["hx_latency"] = latency(
                hx, single_customer(args.latency_events, args.seed), args.latency_runs,
                args.warmup, backend="native",
            )  # fmt: skip
        rust["ownership_latency"] = latency(
            own,
            single_customer(args.latency_events, args.seed, types=OWNERSHIP_TYPES),
            args.latency_runs,
            args.warmup,
            backend="native",
        )
    out["rust"] = rust
    out["throughput"] = t
    out["agreement"] = agree

    eps = {k: v["events_per_s"] for k, v in t.items()}
    ratios = {
        "hx_native_over_durable": eps["hx_native_subset"] / eps["hx_durable_subset"],
        "own_native_over_durable": eps["own_native_subset"] / eps["own_durable_subset"],
        "own_baseline_over_native": eps["own_baseline"] / eps["own_native"],
        "own_native_over_baseline": eps["own_native"] / eps["own_baseline"],
    }
    out["ratios"] = ratios

    # 4. latency
    history = single_customer(args.latency_events, args.seed)
    own_history = single_customer(args.latency_events, args.seed, types=OWNERSHIP_TYPES)
    out["latency"] = {
        "hx_packs": latency(hx, history, args.latency_runs, args.warmup),
        "ownership": latency(own, own_history, args.latency_runs, args.warmup),
        "hx_packs_resume": resume_latency(hx, history, args.latency_runs, args.warmup),
        "ownership_resume": resume_latency(own, own_history, args.latency_runs, args.warmup),
    }

    # 6. memory, per customer on the durable subset (tracemalloc is slow and a decision with
    # its entries built is large); boundedness on batches of new customers
    if not args.no_memory:
        batches = [
            new_customers(args.batch_customers, args.seed + 1, k) for k in range(args.batches)
        ]
        out["memory"] = {
            "hx_packs": retained(hx, subset),
            "ownership": retained(own, stream_subset),
            "bounded_hx_packs": boundedness(hx, batches, args.batch_customers),
        }

    # 7. the parallel runner, once it exists
    if hasattr(pe.Policy, "evaluate_many"):
        try:
            out["parallel"] = parallel(events, 1)  # whole-history runs: one each
        except Exception as exc:  # another engineer's work in progress: report, do not crash
            out["parallel"] = {"error": f"{type(exc).__name__}: {exc}"}
    else:
        out["parallel"] = None

    lat = out["latency"]
    out["targets"] = [
        {
            "what": "ownership-only policy, native throughput",
            "target": f">= {TARGET_OWNERSHIP_EPS:,} events/s",
            "measured": f"{eps['own_native']:,.0f} events/s",
            "pass": eps["own_native"] >= TARGET_OWNERSHIP_EPS,
        },
        {
            "what": "ownership-only policy, within 4x of the hand-written baseline",
            "target": f"baseline <= {TARGET_BASELINE_FACTOR:g}x faster",
            "measured": f"baseline {ratios['own_baseline_over_native']:.1f}x faster",
            "pass": ratios["own_baseline_over_native"] <= TARGET_BASELINE_FACTOR,
        },
        {
            "what": "ownership-only policy, native vs durable (same subset)",
            "target": f"native >= {TARGET_DURABLE_FACTOR:g}x durable",
            "measured": f"native {ratios['own_native_over_durable']:.1f}x durable",
            "pass": ratios["own_native_over_durable"] >= TARGET_DURABLE_FACTOR,
        },
        *(
            {
                "what": f"latency p50, {name}, one customer, {lat[key]['events']} events",
                "target": f"<= {TARGET_P50_MS:g} ms",
                "measured": f"{lat[key]['p50_ms']:.2f} ms",
                "pass": lat[key]["p50_ms"] <= TARGET_P50_MS,
            }
            for key, name in (
                ("hx_packs", "HX packs"),
                ("ownership", "ownership-only"),
                ("hx_packs_resume", "HX packs, resume with the last event"),
                ("ownership_resume", "ownership-only, resume with the last event"),
            )
        ),
    ]
    if "own_rust" in eps:
        ratios["own_rust_over_baseline"] = eps["own_rust"] / eps["own_baseline"]
        ratios["own_rust_over_python"] = eps["own_rust"] / eps["own_native"]
        ratios["own_rust_10x_over_1x"] = eps["own_rust_10x"] / eps["own_rust_flat"]
        ratios["own_baseline_10x_over_1x"] = eps["own_baseline_10x"] / eps["own_baseline_flat"]
        out["targets"] += [
            {
                "what": "issue 20: flat cost, Rust core, a 10x larger history (the hand-written "
                f"replay: {ratios['own_baseline_10x_over_1x']:.2f}x)",
                "target": "rate >= 0.8x the small one's",
                "measured": f"{ratios['own_rust_10x_over_1x']:.2f}x",
                "pass": ratios["own_rust_10x_over_1x"] >= 0.8,
            },
        ]
        if "bytes_per_event" in out["rust"]:
            per = out["rust"]["bytes_per_event"]
            out["targets"].append(
                {
                    "what": "issue 20: memory of a lean decision (Rust core, ownership)",
                    "target": "<= 200 bytes per event",
                    "measured": f"{per:.0f} bytes per event",
                    "pass": per <= 200,
                }
            )
        if "hx_rust" in eps:
            ratios["hx_rust_over_python"] = eps["hx_rust"] / eps["hx_native"]
            ratios["hx_rust_over_durable"] = eps["hx_rust_subset"] / eps["hx_durable_subset"]
            out["targets"] += [
                {
                    "what": "issue 20: HX packs, Rust core vs the Python engine",
                    "target": ">= 5x",
                    "measured": f"{ratios['hx_rust_over_python']:.2f}x",
                    "pass": ratios["hx_rust_over_python"] >= 5,
                },
                {
                    "what": "issue 20: HX packs, Rust core vs durable (subset)",
                    "target": ">= 20x",
                    "measured": f"{ratios['hx_rust_over_durable']:.1f}x",
                    "pass": ratios["hx_rust_over_durable"] >= 20,
                },
                {
                    "what": "issue 20: latency p50, HX packs on the Rust core, one customer",
                    "target": "<= 0.5 ms",
                    "measured": f"{out['rust']['hx_latency']['p50_ms']:.2f} ms",
                    "pass": out["rust"]["hx_latency"]["p50_ms"] <= 0.5,
                },
            ]
        out["targets"] += [
            {
                "what": "issue 20: ownership-only, Rust core vs the hand-written replay",
                "target": "native >= 1.0x baseline",
                "measured": f"native {ratios['own_rust_over_baseline']:.2f}x baseline",
                "pass": ratios["own_rust_over_baseline"] >= 1.0,
            },
            {
                "what": "issue 20: HX packs on the Rust core (>= 5x today's rate)",
                "target": "runs on the Rust core",
                "measured": str(out["rust"]["hx_runs_on"])[:90],
                "pass": out["rust"]["hx_runs_on"] == "Rust core",
            },
            {
                "what": "issue 20: latency p50, ownership-only on the Rust core, one customer",
                "target": "<= 0.5 ms",
                "measured": f"{out['rust']['ownership_latency']['p50_ms']:.2f} ms",
                "pass": out["rust"]["ownership_latency"]["p50_ms"] <= 0.5,
            },
        ]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["peak_rss_mb"] = peak / MB if sys.platform == "darwin" else peak / 1024
    return out


# ---------------------------------------------------------------- the table


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def report(r: Result) -> str:
    """The results as aligned tables, every figure labelled with what was measured on what."""
    m, h, t, q, a = r["machine"], r["history"], r["throughput"], r["ratios"], r["agreement"]
    load = f"; load average {' '.join(map(str, m['load_average']))}" if m["load_average"] else ""
    lines = [
        "policyengine benchmark (issue #7)",
        f"machine    {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable){load}",
        f"           {m['python']}, {m['platform']}",
        f"history    generate.py, {h['customers']:,} customers, seed {h['seed']}: "
        f"{h['events']:,} events (generated in {h['generated_s']:.1f} s)",
        f"ownership  {h['ownership_events']:,} events: the history filtered to "
        f"{', '.join(OWNERSHIP_TYPES)} before timing",
        "           (hx_ownership.yaml declares only those and refuses other types, as the pack)",
        f"subset     for durable: the events of the first {h['durable_customers']:,} customers "
        f"+ the {h['durable_customerless_events']:,} naming no customer",
        f"           = {h['durable_events']:,} events ({h['durable_ownership_events']:,} "
        "ownership-only); native is timed on the same subset for each ratio",
        "timing     policy.evaluate(events) = event validation + evaluation + Decision "
        "(entries built on first read)",
        f"           best of {h['repeat']} run(s) (baseline: of {max(h['repeat'], 3)}), "
        "time.perf_counter, gc.collect() + gc.freeze() before each run",
        "",
        f"{'THROUGHPUT':46s} {'events':>10s} {'seconds':>9s} {'events/s':>12s}",
    ]
    rows = [
        ("HX packs, native, whole history", "hx_native"),
        ("HX packs, native, subset", "hx_native_subset"),
        ("HX packs, durable, subset", "hx_durable_subset"),
        ("ownership-only, native, whole history", "own_native"),
        ("ownership-only, hand-written baseline, whole", "own_baseline"),
        ("ownership-only, native, subset", "own_native_subset"),
        ("ownership-only, durable, subset", "own_durable_subset"),
        ("ownership-only, Rust core (native), whole", "own_rust"),
        ("ownership-only, Rust core, in the flat rounds", "own_rust_flat"),
        ("ownership-only, Rust core, 10x the history", "own_rust_10x"),
        ("ownership-only, baseline, in the flat rounds", "own_baseline_flat"),
        ("ownership-only, baseline, 10x the history", "own_baseline_10x"),
        ("HX packs, Rust core, whole history", "hx_rust"),
        ("HX packs, Rust core, subset", "hx_rust_subset"),
    ]
    for label, key in rows:
        if key not in t:  # the Rust core is not built here
            continue
        x = t[key]
        lines.append(
            f"  {label:44s} {x['events']:>10,} {x['seconds']:>9.3f} {x['events_per_s']:>12,.0f}"
        )
    lines += [
        "",
        "RATIOS",
        f"  HX packs, native / durable (subset)          {q['hx_native_over_durable']:7.1f}x",
        f"  ownership-only, native / durable (subset)    {q['own_native_over_durable']:7.1f}x",
        f"  ownership-only, baseline / native            {q['own_baseline_over_native']:7.1f}x"
        f"   (engine / baseline = {q['own_native_over_baseline']:.2f})",
        f"  same decisions: baseline = native (all ownership spans) "
        f"{_yes(a['baseline_vs_native_ownership'])}; durable = native: HX packs (spans, "
        f"penalties, obligations) {_yes(a['durable_vs_native_hx'])}, ownership-only "
        f"{_yes(a['durable_vs_native_ownership'])}",
        *_rust_lines(r),
        "",
        "LATENCY    one customer's history: evaluate + decision.owner() + decision.penalties",
        f"  {'':26s} {'events':>7s} {'runs':>6s} {'p50 ms':>8s} {'p99 ms':>8s} "
        f"{'mean ms':>8s} {'max ms':>8s}",
    ]
    for key, label in (
        ("hx_packs", "HX packs"),
        ("ownership", "ownership-only"),
        ("hx_packs_resume", "HX packs, resume 1 event"),
        ("ownership_resume", "ownership, resume 1 event"),
    ):
        x = r["latency"][key]
        lines.append(
            f"  {label:26s} {x['events']:>7} {x['runs']:>6} {x['p50_ms']:>8.3f} "
            f"{x['p99_ms']:>8.3f} {x['mean_ms']:>8.3f} {x['max_ms']:>8.3f}"
        )
    lines.append(f"  (after {r['latency']['hx_packs']['warmup']} warm-up runs each)")
    lines += [
        "",
        f"{'LOAD + VALIDATE + COMPILE':52s} {'rules':>6s} {'first ms':>9s} {'median ms':>9s}",
    ]
    for key, label in (("hx_packs", "HX packs"), ("ownership", "ownership-only")):
        x = r["load"][key]
        lines.append(
            f"  {label + ' (' + x['path'] + ')':50s} {x['rules']:>6} {x['first_ms']:>9.1f} "
            f"{x['median_ms']:>9.1f}"
        )
    lines.append(f"  (first: the first load in this process; median of {x['runs']} more)")
    if "memory" in r:
        mem = r["memory"]
        lines += [
            "",
            "MEMORY     tracemalloc, untimed runs on the subset; the input events are not counted",
            f"  {'':16s} {'customers':>9s} {'peak MB':>8s} {'retained MB':>11s} "
            f"{'KB/customer':>11s} {'built MB':>9s} {'KB/customer':>11s}",
        ]
        for key, label in (("hx_packs", "HX packs"), ("ownership", "ownership-only")):
            x = mem[key]
            lines.append(
                f"  {label:16s} {x['customers']:>9,} {x['peak_mb']:>8.1f} "
                f"{x['retained_mb']:>11.2f} {x['retained_kb_per_customer']:>11.2f} "
                f"{x['built_mb']:>9.2f} {x['built_kb_per_customer']:>11.2f}"
            )
        lines.append(
            "  retained: the decision evaluate() returns; built: the same after its ownerships, "
            "penalties and obligations were read"
        )
        b = mem["bounded_hx_packs"]
        size = b["batches"][0]["customers"] if b["batches"] else 0
        lines += [
            f"  boundedness, HX packs: {len(b['batches'])} batches of {size} new customers "
            "each (a whole six-month history per batch),",
            "  one evaluate per batch, the previous decision dropped before the next",
            f"  {'batch':>7s} {'customers before':>17s} {'events':>8s} {'held MB':>8s} "
            f"{'KB/customer':>12s} {'left after drop KB':>19s}",
        ]
        for x in b["batches"]:
            lines.append(
                f"  {x['batch']:>7} {x['customers_before']:>17,} {x['events']:>8,} "
                f"{x['held_mb']:>8.2f} {x['held_kb_per_customer']:>12.2f} {x['left_kb']:>19.1f}"
            )
        lines.append(
            f"  left after drop, batch 1 to the last: {b['left_growth_kb']:+.1f} KB "
            f"({b['left_growth_bytes_per_customer']:+.2f} bytes per later customer): "
            + ("bounded" if b["bounded"] else "GROWS (more than 5% of one decision)")
        )
    p = r["parallel"]
    lines += [
        "",
        "PARALLEL   policy.evaluate_many, HX resources pack, whole history, one run each",
    ]
    if p is None:
        lines.append("  skipped: this version of policyengine has no Policy.evaluate_many")
    elif "error" in p:
        lines.append(f"  failed: {p['error']}")
    else:
        for key, label in (
            ("evaluate", "evaluate()"),
            ("workers_1", "evaluate_many, 1 worker"),
            ("workers_2", "evaluate_many, 2 workers"),
        ):
            x = p[key]
            lines.append(
                f"  {label:44s} {x['events']:>10,} {x['seconds']:>9.3f} {x['events_per_s']:>12,.0f}"
            )
        lines.append(
            f"  speed-up, 2 workers over 1: {p['speedup_2_vs_1']:.2f}x; owners as evaluate() "
            f"decides them ({p['owners_compared']} customers compared): {_yes(p['owners_agree'])}"
        )
        if p.get("separable") is True:
            lines.append("  the policy splits by customer (policyengine.distributed.plan)")
        elif p.get("separable") is False:
            lines.append("  the policy does not split, so it runs as one shard; plan() says:")
            lines += [f"    - {why}" for why in p["not_separable_because"]]
    lines += ["", 'TARGETS    issue #7 ("native" there: the Python engine), then issue 20']
    for x in r["targets"]:
        verdict = "PASS" if x["pass"] else "FAIL"
        lines.append(f"  {verdict}  {x['what']}: {x['measured']} (target {x['target']})")
    lines += ["", f"peak RSS of the process: {r['peak_rss_mb']:.0f} MB"]
    return "\n".join(lines)


def _rust_lines(r: Result) -> list[str]:
    """The Rust core's ratios (issue 20), or why there are none."""
    rust, q = r["rust"], r["ratios"]
    if not rust["available"]:
        return ['  Rust core: not built here (no cargo): backend="native" runs the Python engine']
    return [
        f"  ownership-only, Rust core / baseline         {q['own_rust_over_baseline']:7.2f}x"
        f"   (Rust core / Python engine = {q['own_rust_over_python']:.1f}x)",
        f"  same decisions: Rust core = Python engine (ownership spans) "
        f"{_yes(r['agreement']['rust_vs_python_ownership'])}",
        f'  HX packs, backend="native": {rust["hx_runs_on"]}',
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time the engine against durable_rules and a hand-written baseline."
    )
    parser.add_argument("--customers", type=int, help="customers generated (default 20000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument(
        "--durable-customers", type=int, help="customers of the durable subset (default 1000)"
    )
    parser.add_argument("--repeat", type=int, help="timed runs per figure, best kept (default 2)")
    parser.add_argument(
        "--flat-rounds",
        type=int,
        help="rounds of the flat-cost rows, best of each (default 4)",
    )
    parser.add_argument("--latency-events", type=int, default=100)
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, help="warm-up runs before latency (default 20)")
    parser.add_argument("--batches", type=int, default=5, help="boundedness batches (default 5)")
    parser.add_argument(
        "--batch-customers", type=int, help="customers per boundedness batch (default 500)"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc runs")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small fast run: 300 customers, durable subset 100, one run each",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    positive = (
        "customers",
        "durable_customers",
        "repeat",
        "flat_rounds",
        "latency_events",
        "latency_runs",
    )
    if any(getattr(args, name) < 1 for name in (*positive, "batches", "batch_customers")):
        parser.error("counts must be positive")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    results = run(args)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
