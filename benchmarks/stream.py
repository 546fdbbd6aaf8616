"""Streaming evaluation of a generated HX history: events/s and peak RSS.

``python benchmarks/stream.py --customers 20000`` generates a history (``generate.py``, the
huixiao packs in ``policies/huixiao``), orders it for streaming (``policyengine.stream.grouped``)
and writes it as JSON Lines; then a fresh process streams that file line by line
(``tools.stream_files.stream_file``, as ``policyengine eval --stream`` does) into JSON Lines
or Parquet and prints events/s and its peak RSS (``resource.getrusage``), next to the RSS of
the same process before the first event is read (interpreter, library, policy).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
AS_OF = "2026-09-30T23:59:59+08:00"


def _rss_mb() -> float:
    """Peak RSS so far (kB on Linux). Linux keeps the peak across exec, so the parent that
    starts this process holds nothing large."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stream(history: Path, out: Path) -> None:
    """The measured process: load the policy, then stream the file."""
    import policyengine as pe
    from policyengine.tools.stream_files import stream_file

    policy = pe.load_policy(ROOT / "policies" / "huixiao")
    base = _rss_mb()
    t0 = time.perf_counter()
    summary = stream_file(policy, history, out, as_of=AS_OF)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "events": summary.events,
                "groups": summary.groups,
                "subjects": summary.subjects,
                "shared": summary.shared,
                "shared_not_given": summary.routed_out,  # (shared event, group) pairs skipped
                "kept_for_final_line": summary.kept,
                "largest_group": summary.largest,
                "seconds": round(seconds, 2),
                "events_per_s": round(summary.events / seconds),
                "rss_before_mb": round(base),
                "peak_rss_mb": round(_rss_mb()),
                "out_mb": round(out.stat().st_size / 2**20, 1),
            }
        )
    )


def _prepare(customers: int, seed: int, history: Path, batch: int | None = None) -> None:
    """Generate, order for streaming and write the history (its own process: the measured
    one never held the whole history, and starts from a small parent). With ``batch``, the
    customers come in independent batches of that many (each with its own 200 employees,
    ids, customers and employees prefixed ``B<k>``), so a million customers never sit in
    memory at once: the batches' events without a subject are written first, then every
    batch's groups, as one grouped stream."""
    from generate import generate

    import policyengine as pe
    from policyengine.stream import grouped

    policy = pe.load_policy(ROOT / "policies" / "huixiao")
    sf = policy.compiled.subject_field
    size = batch or customers
    groups_part = history.with_suffix(".groups.tmp")
    with history.open("w", encoding="utf-8") as shared, groups_part.open("w") as rest:
        for k, start in enumerate(range(0, customers, size)):
            events = generate(min(size, customers - start), seed + k)
            if batch is not None:
                events = [_prefixed(e, f"B{k}") for e in events]
            for e in grouped(policy, events):
                out = shared if e.get(sf) is None else rest
                out.write(json.dumps(e, ensure_ascii=False) + "\n")
    with history.open("a", encoding="utf-8") as f, groups_part.open() as rest:
        for line in rest:
            f.write(line)
    groups_part.unlink()


def _prefixed(e: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The event of another batch: its id, customers and employees renamed."""

    def name(v: Any) -> Any:
        if isinstance(v, str) and len(v) > 1 and v[0] in "CE" and v[1:].isdigit():
            return prefix + v
        if isinstance(v, list):
            return [name(x) for x in v]
        return v

    return {k: prefix + v if k == "id" else name(v) for k, v in e.items()}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--batch", type=int, default=None,
        help="generate the customers in independent batches of this many (a million: 20000)",
    )  # fmt: skip
    ap.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl")
    ap.add_argument("--dir", default=None, help="where the history and output go (a temp dir)")
    ap.add_argument("--stream-only", nargs=2, metavar=("HISTORY", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--prepare-only", metavar="HISTORY", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stream_only:
        _stream(Path(args.stream_only[0]), Path(args.stream_only[1]))
        return
    if args.prepare_only:
        _prepare(args.customers, args.seed, Path(args.prepare_only), args.batch)
        return
    where = Path(args.dir or tempfile.mkdtemp(prefix="pe-stream-"))
    where.mkdir(parents=True, exist_ok=True)
    batched = f"-b{args.batch}" if args.batch else ""
    history = where / f"hx-{args.customers}-{args.seed}{batched}.jsonl"
    if not history.exists():
        subprocess.run(
            [sys.executable, __file__, "--customers", str(args.customers), "--seed",
             str(args.seed), "--prepare-only", str(history),
             *(["--batch", str(args.batch)] if args.batch else [])],
            check=True,
        )  # fmt: skip
    out = where / f"decisions.{args.format}"
    print(f"{args.customers} customers -> {history} ({history.stat().st_size / 2**20:.1f} MB)")
    subprocess.run([sys.executable, __file__, "--stream-only", str(history), str(out)], check=True)


if __name__ == "__main__":
    main()
