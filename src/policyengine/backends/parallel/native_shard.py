"""A shard on the Rust core: ``Core.run_shard`` evaluates the shard's events and records, per
step, what ``ShardHooks`` records on the Python engine (the step's place in the global order,
the records' lengths at its start, which trace rows are penalties and party counter
increments); ``evaluate_native_shard`` makes a ``ShardResult`` of it for the same phase 2.

The core records steps of subjects only, so shards run on it where ``refusal`` finds nothing
in the policy and the history has no event without a subject (``history_refusal``); anywhere
else, and wherever the core refuses a shard (``Refused``), the Python engine evaluates it.
Phase 2 numbers offences across shards and picks each penalty's ladder step: the core takes
every step of a ladder in a shard, as ``ShardHooks.sentence`` does (see ``docs/parallel.md``)."""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from policyengine.backends import native
from policyengine.backends.parallel.partitioner import Partition
from policyengine.backends.parallel.shard import (
    AddRecord,
    LadderRecord,
    ShardResult,
    evaluate_shard,
)
from policyengine.language.compiler import walk_actions
from policyengine.language.program import Program
from policyengine.runtime.events import History, derived_id, prepare
from policyengine.runtime.ledger import text_of
from policyengine.runtime.queries import counted_keys
from policyengine.runtime.records import gc_paused, reported
from policyengine.runtime.state import MAX_SPAN_YEARS, RECORDS, STEPPED

# the lengths the core records at the start of every step, in its order (``shard.rs``)
_CORE_MARKS: Final = (
    "subjects",
    "trace",
    "obligations",
    "penalties",
    "credits",
    "violations",
    "rejections",
    "classifications",
    "conflicts",
)
if _CORE_MARKS != STEPPED:
    raise TypeError(f"the core's shard marks {_CORE_MARKS} are not the engine's {STEPPED}")
_N: Final = len(STEPPED)
_TRACE: Final = STEPPED.index("trace")
_PENALTIES: Final = STEPPED.index("penalties")
_NO_HISTORY: Final = History([])  # a core shard has no metric that reads the history


class Refused(Exception):
    """The core does not evaluate this shard (the reason): the Python engine does."""


def refusal(program: Program) -> str | None:
    """Why the policy's shards cannot run on the core (None: they can)."""
    why = native.unsupported(program)
    if why is not None:
        return why
    compiled = program.compiled
    if compiled.metrics or compiled.awards:
        return "metrics and awards are measured at period ends, which a core shard does not record"
    if compiled.periodic:
        return "rules with `every:` run on a clock a core shard does not record"
    for a in walk_actions(compiled):
        if a.expect is not None and a.expect.every is not None:
            return "a recurring duty (`every:`) renews on a clock a core shard does not record"
        if a.credit is not None:
            return "credits are not recorded by the core"
    if counted_keys(compiled):
        return "a ladder counted in a window or per period needs the Python engine's counts"
    return None


def history_refusal(part: Partition) -> str | None:
    """Why this history's shards cannot run on the core (None: they can)."""
    if part.replicated:
        return (
            f"{part.replicated} event(s) without a subject run in every shard, which a core "
            "shard does not record"
        )
    return None


def evaluate_native_shard(
    policy: Program,
    events: Sequence[tuple[int, Mapping[str, Any]]],
    horizon: int | None,
    first: int | None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> ShardResult:
    """``evaluate_shard`` on the core; raises ``Refused`` where the core does not decide it.
    ``first`` (the history's first instant) only starts periods, which a core shard has
    none of."""
    started = time.process_time()
    found = native.core_of(policy)
    if found is None:
        raise Refused(native.unsupported(policy) or "the core is not available")
    core, refs = found
    compiled = policy.compiled
    gidx: dict[str, int] = {}
    raws: list[Mapping[str, Any]] = []
    for index, raw in events:
        gidx[str(raw["id"])] = index
        raws.append(raw)
    sf, declared = compiled.subject_field, compiled.events
    if any(not isinstance(r.get(sf), str) and r.get("type") in declared for r in raws):
        raise Refused("an event without a subject")  # a step every shard runs: not recorded
    try:
        with gc_paused():
            out = core.run_shard_raw(raws, horizon, max_span, refs, derived_id)
            if out is None:  # the core is not sure ``prepare`` would accept them: it decides
                rows, steps, ids = _prepared(policy, core, refs, raws, horizon, max_span)
            else:
                rows, steps, ids, horizon = out
            w, obligations = native.world_of(policy, _NO_HISTORY, horizon, rows, max_span)
    except (native._module_unsupported(), TypeError, OverflowError) as exc:
        raise Refused(f"the core leaves this shard to the Python engine: {exc}") from None
    s_key, s_ref, s_j, kinds, marks, pens, adds, alts = steps
    s_ref = [gidx[ids[r]] if kind else r for r, kind in zip(s_ref, kinds, strict=True)]
    trace = list(w.trace)
    penalties = list(w.penalties)
    # a ladder's other steps come after the penalties, as ``run_shard`` appends them
    others = penalties[len(pens) :]
    del penalties[len(pens) :]
    records: dict[str, list[Any]] = {name: [] for name in RECORDS}
    records.update(
        trace=trace,
        obligations=list(obligations),
        penalties=penalties,
        violations=w.violations,
        rejections=w.rejections,
        classifications=w.classifications,
        conflicts=w.conflicts,
    )
    unbound = [lab.name for lab in compiled.labels if not lab.on]
    labels = (
        {sid: {n: w.labels.get(sid, {}).get(n) for n in unbound} for sid in w.subjects}
        if unbound
        else {}
    )
    return ShardResult(
        s_key=s_key,
        s_ref=s_ref,
        s_j=s_j,
        s_flag=kinds,
        marks=marks,
        subjects=w.subjects,
        records=records,
        repl_obligations=[],
        ladder=_ladder(marks, pens, penalties, trace, zip(alts, others, strict=True)),
        adds=_adds(marks, adds, trace),
        closes=[],
        fired=w.fired,
        fired_repl={},
        calendar_guesses=dict(w.calendar_guesses),
        labels=labels,
        broken=w.broken,
        applied=1 in kinds,
        events=len(raws),
        seconds=time.process_time() - started,
        reported=True,
        engine="native",
    )


def _prepared(
    policy: Program,
    core: Any,
    refs: list[Any],
    raws: list[Mapping[str, Any]],
    horizon: int | None,
    max_span: int | None,
) -> tuple[Any, Any, list[Any]]:
    """``Core.run_shard`` on the prepared events: ``(records, steps, ids)``."""
    compiled = policy.compiled
    history = prepare(compiled, raws)
    applied, horizon = native.applied_events(compiled, history, horizon, max_span)
    if any(not isinstance(e.get(compiled.subject_field), str) for e in applied):
        raise Refused("an event without a subject")
    ids = [e["id"] for e in applied]
    columns = native.columns(core, applied)
    types = [e["type"] for e in applied]
    rows, steps = core.run_shard(ids, types, [e["at"] for e in applied], columns, horizon, refs)
    return rows, steps, ids


def _step_of(marks: list[int], column: int) -> tuple[list[int], Any]:
    starts = marks[column::_N]
    return starts, lambda i: bisect.bisect_right(starts, i) - 1


def _ladder(
    marks: list[int],
    pens: list[tuple[int, str, int]],
    penalties: list[Any],
    trace: list[Any],
    others: Iterable[tuple[tuple[int, int], Any]],
) -> list[LadderRecord]:
    """Each penalty as phase 2 numbers it, with the outcome of every step of its ladder (None
    where the core could not look its amount up: phase 2 hands back if it picks that one)."""
    _, step_of = _step_of(marks, _PENALTIES)
    outcomes: list[list[Any]] = []
    for row, (t, _, n) in enumerate(pens):
        pen = penalties[row]
        outcomes.append([None] * n)
        outcomes[row][min(pen.offence - 1, n - 1)] = (pen, dict(trace[t].detail))
    for (row, step), alt in others:
        detail = dict(outcomes[row][min(penalties[row].offence - 1, len(outcomes[row]) - 1)][1])
        detail.update(
            sanction=alt.sanction,
            amount_min=text_of(alt.amount_min),
            amount_max=text_of(alt.amount_max),
            units=alt.units,
            salary_days=text_of(alt.salary_days),
        )
        outcomes[row][step] = (alt, detail)
    return [
        LadderRecord(step_of(row), row, row, t, (key, penalties[row].party), outcomes[row], False)
        for row, (t, key, _) in enumerate(pens)
    ]


def _adds(marks: list[int], adds: list[int], trace: list[Any]) -> list[AddRecord]:
    """Each party counter increment: its step is read off the increment's trace row, and the
    step taken off the running totals the shard's trace shows (exact: Decimal differences)."""
    _, step_of = _step_of(marks, _TRACE)
    last: dict[tuple[str, str], Decimal] = {}
    out = []
    for t in adds:
        row = trace[t]
        key = (row.party, row.detail["counter"])
        value = Decimal(row.detail["value"])
        by = value - last.get(key, Decimal(0))
        last[key] = value
        out.append(AddRecord(step_of(t), t, key, by, row.at, t, False))
    return out


def evaluate_shard_on(
    engine: str,
    policy: Program,
    events: Sequence[tuple[int, Mapping[str, Any]]],
    horizon: int | None,
    first: int | None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> ShardResult:
    """A shard on ``engine`` (``native``: the core, the Python engine where it refuses; its
    obligations are then reported as the core's are, so both merge alike)."""
    if engine == "native":
        try:
            return evaluate_native_shard(policy, events, horizon, first, max_span)
        except Refused as exc:
            res = evaluate_shard(policy, events, horizon, first, max_span)
            res.records["obligations"] = reported(res.records["obligations"])
            res.reported, res.why = True, str(exc)
            return res
    return evaluate_shard(policy, events, horizon, first, max_span)
