"""One history as a Dask DataFrame or Bag, evaluated in shards on a Dask cluster
(``evaluate_dask``, ``run_dask``): the phases of ``Policy.evaluate_many``, with Dask moving
the data. Dask is imported only here and only when called (``pip install
'policyengine[dask]'``). The phases, and how DataFrame rows become events:
``docs/parallel.md``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from policyengine.backends.parallel.merger import _Fallback, merge
from policyengine.backends.parallel.partitioner import REPLICATED, Read, Reader, assemble
from policyengine.backends.parallel.planner import plan
from policyengine.backends.parallel.runner import Report, Run
from policyengine.backends.parallel.shard import ShardResult, evaluate_shard
from policyengine.backends.parallel.spec import PolicySpec, policy_spec, rebuild
from policyengine.backends.snapshot import evaluate_resumable
from policyengine.errors import PolicyEngineError
from policyengine.language.program import HasProgram, Program, load_program, program_of
from policyengine.runtime.decision import Decision
from policyengine.runtime.events import content_digest
from policyengine.runtime.records import gc_paused
from policyengine.times import from_dt, parse_instant

_INSTALL = "pip install 'policyengine[dask]'"


def _dask() -> Any:
    """The dask modules, or an error that says how to install them."""
    try:
        import dask
        import dask.bag
        import dask.dataframe
    except ImportError as exc:  # pragma: no cover - the dev extra installs dask
        raise ImportError(f"evaluate_dask needs Dask and distributed: {_INSTALL}") from exc
    return dask


# ---------------------------------------------------------------- rows -> events


@dataclass(frozen=True)
class Convert:
    """How a DataFrame row becomes an event: the declared field types, the JSON column."""

    types: dict[str, dict[str, str]]  # event type -> field -> declared type
    extra_column: str | None

    @classmethod
    def of(cls, policy: Program, extra_column: str | None) -> Convert:
        return cls(
            {t: {c.name: c.type for c in checks} for t, checks in policy.compiled.events.items()},
            extra_column,
        )

    def event(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in row.items():
            if key in ("_gidx", "_shard") or key == self.extra_column:
                continue
            v = _plain(value)
            if v is not None:
                out[str(key)] = v
        if self.extra_column is not None:
            extra = _plain(row.get(self.extra_column))
            if isinstance(extra, str) and extra:
                found = json.loads(extra)
                if isinstance(found, dict):
                    out.update(found)
        declared = self.types.get(out.get("type", ""), {})
        for name, value in out.items():
            kind = declared.get(name)
            if kind == "int" and isinstance(value, float) and value.is_integer():
                out[name] = int(value)
            elif kind is not None and kind.startswith("list[") and isinstance(value, tuple):
                out[name] = list(value)
        return out


def _plain(value: Any) -> Any:
    """A Python value for a pandas/numpy one; None for every kind of missing value."""
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, str | bool | int):
        return value
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if isinstance(value, datetime):  # a pandas Timestamp is one too
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalars and arrays, pyarrow arrays
        return _plain(value.tolist())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- tasks run on the workers


def _read_events(
    events: Iterable[Mapping[str, Any]], offset: int, reader: Reader
) -> tuple[list[Read], dict[int, str], list[tuple[int, Mapping[str, Any]]]]:
    """Phase 1 on one input partition: records, digests, and the events without a subject."""
    reads: list[Read] = []
    digests: dict[int, str] = {}
    loose: list[tuple[int, Mapping[str, Any]]] = []
    for i, ev in enumerate(events):
        r = reader.read(offset + i, ev)
        reads.append(r)
        # equal events, equal digests: a duplicate notice says whether a repeat was identical
        digests[offset + i] = content_digest(ev) if isinstance(ev, Mapping) else ""
        if r[3] == 0 and r[1] is not None and r[6] is None:
            loose.append((offset + i, ev))
    return reads, digests, loose


def _read_frame(
    frame: Any, offset: int, reader: Reader, convert: Convert
) -> tuple[list[Read], dict[int, str], list[tuple[int, Mapping[str, Any]]]]:
    return _read_events((convert.event(row) for row in frame.to_dict("records")), offset, reader)


def _tag_frame(
    frame: Any, offsets: Sequence[int], shard_of: Sequence[int], partition_info: Any = None
) -> Any:
    """Each row's input index and shard; rows of no shard (without a subject, repeated,
    ignored) leave: the former reach every shard another way."""
    start = offsets[partition_info["number"]] if partition_info else 0
    out = frame.copy()
    index = list(range(start, start + len(frame)))
    out["_gidx"] = index
    out["_shard"] = [shard_of[i] for i in index]
    return out[out["_shard"] >= 0]


def _evaluate_part(
    events: Sequence[tuple[int, Mapping[str, Any]]],
    loose: Sequence[tuple[int, Mapping[str, Any]]],
    ids: Mapping[int, str],
    spec: PolicySpec,
    horizon: int | None,
    first: int | None,
) -> ShardResult:
    """Phase 2 input for one shard: its events and every event without a subject, in input
    order, evaluated with the policy rebuilt on this worker."""
    pairs = sorted([*events, *loose], key=lambda p: p[0])
    with_ids = [(i, {**ev, "id": ids[i]} if i in ids else ev) for i, ev in pairs]
    return evaluate_shard(rebuild(spec), with_ids, horizon, first)


def _evaluate_frame(
    frame: Any,
    loose: Sequence[tuple[int, Mapping[str, Any]]],
    ids: Mapping[int, str],
    spec: PolicySpec,
    horizon: int | None,
    first: int | None,
    convert: Convert,
) -> ShardResult:
    rows = frame.reset_index(drop=True).to_dict("records")
    events = [(int(row["_gidx"]), convert.event(row)) for row in rows]
    return _evaluate_part(events, loose, ids, spec, horizon, first)


def _evaluate_groups(
    groups: Iterable[tuple[int, list[tuple[int, int, Mapping[str, Any]]]]],
    loose: Sequence[tuple[int, Mapping[str, Any]]],
    ids: Mapping[int, str],
    spec: PolicySpec,
    horizon: int | None,
    first: int | None,
) -> list[ShardResult]:
    """A Bag partition after ``groupby``: one or more shards, each evaluated on its own."""
    return [
        _evaluate_part([(i, ev) for _, i, ev in tagged], loose, ids, spec, horizon, first)
        for _, tagged in groups
    ]


def _tag_list(
    events: Iterable[Mapping[str, Any]], offset: int, shard_of: Sequence[int]
) -> list[tuple[int, int, Mapping[str, Any]]]:
    out = []
    for i, ev in enumerate(events):
        s = shard_of[offset + i]
        if s >= 0:
            out.append((s, offset + i, ev))
    return out


# ---------------------------------------------------------------- the client


def _compute(client: Any, *objs: Any) -> list[Any]:
    if client is not None:
        return list(client.gather(client.compute(list(objs))))
    return list(_dask().compute(*objs))


def run_dask(
    policy: Program | HasProgram | str | Path,
    events: Any,
    as_of: str | datetime | None = None,
    client: Any = None,
    params: Mapping[str, Any] | None = None,
    shards: int | None = None,
    extra_column: str | None = "extra",
) -> Run:
    """``evaluate_dask`` with its report (the plan, the shards, where each subject was
    evaluated, the time taken)."""
    dask = _dask()
    import dask.bag as db
    import dask.dataframe as dd

    started = time.perf_counter()
    if isinstance(policy, str | Path):
        policy = load_program(policy, params=params)
    elif params:
        raise ValueError("params go with a policy path; a loaded Policy has its own")
    else:
        policy = program_of(policy)
    if client is None:
        try:
            from distributed import get_client

            client = get_client()
        except (ImportError, ValueError):
            client = None
    is_frame = isinstance(events, dd.DataFrame)
    if not is_frame and not isinstance(events, db.Bag):
        raise TypeError("events: a Dask DataFrame (one row per event) or a Dask Bag of mappings")
    the_plan = plan(policy)
    report = Report(the_plan, "dask", 1)
    horizon_arg = from_dt(parse_instant(as_of, "as_of")) if as_of is not None else None
    convert = Convert.of(policy, extra_column if is_frame else None)
    reader = Reader.of(policy, the_plan)
    if shards is None:
        shards = sum(client.nthreads().values()) if client is not None else 2
    parts = events.to_delayed()
    if is_frame:
        lengths = [int(n) for n in events.map_partitions(len).compute()]
    else:
        lengths = _compute(client, *[dask.delayed(len)(p) for p in parts])
    offsets = [sum(lengths[:i]) for i in range(len(lengths))]
    # phase 1: one record per event, read where the partition lives
    if is_frame:
        read_tasks = [
            dask.delayed(_read_frame)(p, offsets[i], reader, convert) for i, p in enumerate(parts)
        ]
    else:
        read_tasks = [
            dask.delayed(_read_events)(p, offsets[i], reader) for i, p in enumerate(parts)
        ]
    found = _compute(client, *read_tasks)
    digests: dict[int, str] = {}
    loose: list[tuple[int, Mapping[str, Any]]] = []
    reads: list[Read] = []
    for r, d, lo in found:
        reads += r
        digests.update(d)
        loose += lo
    part = assemble(
        reads,
        sum(lengths),
        shards if the_plan.separable else 1,
        horizon_arg,
        lambda i, j: digests[i] == digests[j],
    )
    report.seconds["partition"] = time.perf_counter() - started
    report.sizes, report.replicated = part.sizes, part.replicated
    report.components, report.largest, report.collapse = (
        part.components,
        part.largest,
        part.collapse,
    )
    if part.invalid or part.shards <= 1 or not the_plan.separable:
        why = (
            "an event could not be read"
            if part.invalid
            else "the policy is not separable: " + "; ".join(the_plan.reasons)
            if not the_plan.separable
            else "; ".join(part.collapse) or "one component"
        )
        return _single(policy, events, is_frame, convert, as_of, client, report, why)
    spec = policy_spec(policy)
    ids = dict(part.ids)
    loose_ids = [(i, ev) for i, ev in loose if part.shard_of[i] == REPLICATED]
    t0 = time.perf_counter()
    shard_of = part.shard_of
    if client is not None:
        [shard_of_ref] = client.scatter([shard_of], broadcast=True)
        [loose_ref] = client.scatter([loose_ids], broadcast=True)
    else:
        shard_of_ref, loose_ref = shard_of, loose_ids
    n = part.shards
    # phase 2: every subject's events to its shard's partition, then one task per shard
    if is_frame:
        meta = events._meta.assign(_gidx=0, _shard=0)
        tagged = events.map_partitions(_tag_frame, offsets, shard_of_ref, meta=meta)
        by_shard = tagged.set_index("_shard", divisions=(*range(n), n - 1))
        tasks = [
            dask.delayed(_evaluate_frame)(
                p, loose_ref, ids, spec, part.horizon, part.first, convert
            )
            for p in by_shard.to_delayed()
        ]
    else:
        from_delayed: Any = db.from_delayed
        tagged_bag = from_delayed(
            [dask.delayed(_tag_list)(p, offsets[i], shard_of_ref) for i, p in enumerate(parts)]
        )
        groups = tagged_bag.groupby(lambda t: t[0], npartitions=n)
        tasks = [
            dask.delayed(_evaluate_groups)(g, loose_ref, ids, spec, part.horizon, part.first)
            for g in groups.to_delayed()
        ]
    results: list[ShardResult] = []
    try:
        for r in _compute(client, *tasks):
            results += r if isinstance(r, list) else [r]
    except PolicyEngineError as exc:  # one process reports it exactly, with every problem
        return _single(policy, events, is_frame, convert, as_of, client, report, str(exc))
    results = [r for r in results if r.events]
    report.shards = len(results)
    report.mode = "dask"
    report.seconds["shards"] = time.perf_counter() - t0
    report.placed = {sid: k for k, r in enumerate(results) for sid in r.subjects}
    t0 = time.perf_counter()
    try:
        with gc_paused():
            decision = merge(policy, part, results)
    except (_Fallback, RecursionError) as exc:
        why = str(exc) or type(exc).__name__
        return _single(policy, events, is_frame, convert, as_of, client, report, why)
    report.seconds["merge"] = time.perf_counter() - t0
    report.seconds["total"] = time.perf_counter() - started
    return Run(decision, report)


def _single(
    policy: Program,
    events: Any,
    is_frame: bool,
    convert: Convert,
    as_of: str | datetime | None,
    client: Any,
    report: Report,
    why: str,
) -> Run:
    """The history evaluated in one process (the client): exact, including every error."""
    t0 = time.perf_counter()
    if is_frame:
        frame = _compute(client, events)[0]
        history: list[Mapping[str, Any]] = [convert.event(r) for r in frame.to_dict("records")]
    else:
        history = list(_compute(client, events)[0])
    horizon = from_dt(parse_instant(as_of, "as_of")) if as_of is not None else None
    decision = evaluate_resumable(policy, history, horizon)
    report.mode, report.shards, report.fallback = "single", 1, why
    report.seconds["evaluate"] = time.perf_counter() - t0
    return Run(decision, report)


def evaluate_dask(
    policy: Program | HasProgram | str | Path,
    events: Any,
    as_of: str | datetime | None = None,
    client: Any = None,
    params: Mapping[str, Any] | None = None,
    shards: int | None = None,
    extra_column: str | None = "extra",
) -> Decision:
    """The decision ``Policy.evaluate`` would give for ``events``, a Dask DataFrame (one row
    per event) or a Dask Bag of event mappings, computed on ``client``'s cluster (default: the
    current client, else Dask's local scheduler). ``policy``: a loaded Policy, or a policy
    file or folder (with ``params`` overrides). ``shards`` defaults to the cluster's threads.
    """
    return run_dask(policy, events, as_of, client, params, shards, extra_column).decision


__all__ = ["Convert", "evaluate_dask", "run_dask"]
