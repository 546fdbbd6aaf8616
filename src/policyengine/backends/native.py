"""``backend="native"``: the Rust core (``policyengine_native``, built from ``native/``).

The policy is lowered once to its intermediate form (``language.ir``) and handed to the core,
both kept in the program's memo; each evaluation passes the prepared events as columns (``run``)
or the raw mappings, which the core checks and orders itself where it is sure ``prepare`` would
accept them (``run_events``; ``prepare`` otherwise), and the records the core returns, made as
the engine's own rows, fill a ``World`` from which the same ``decision_of`` as the Python
engine's builds the decision (metrics by the engine's own ``World.close``, at the periods the
core closed, on the history and counters as the core recorded them). The core is optional:
where it is not installed (``available``), where the policy uses what it does not support
(``unsupported`` says what and where), or where one history holds what it cannot decide
exactly as the Python engine would (``run`` gives the reason), the Python engine decides
instead: the decision is the same either way.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter, methodcaller
from types import ModuleType
from typing import Any, Final, Protocol

from policyengine.language.ir import lower
from policyengine.language.program import Program
from policyengine.runtime.decision import Decision
from policyengine.runtime.engine import World
from policyengine.runtime.evaluate import MAX_SPAN_YEARS, decision_of
from policyengine.runtime.evaluate import evaluate as python_evaluate
from policyengine.runtime.events import (
    REPEATED,
    History,
    derived_id,
    history_items,
    ignored_type,
    prepare,
)
from policyengine.runtime.records import (
    ClassificationRow,
    ConflictRow,
    ObligationRow,
    PenaltyRow,
    RejectionRow,
    SpanRecord,
    TraceRow,
    ViolationRow,
    gc_paused,
)
from policyengine.runtime.state import Subject, Tick, check_span

log = logging.getLogger(__name__)

__all__ = [
    "MODULE",
    "available",
    "checked_in_core",
    "core_of",
    "evaluate",
    "evaluate_events",
    "intermediate",
    "run",
    "run_events",
    "unsupported",
    "world_of",
]

MODULE = "policyengine_native"
_ZERO: Final = Decimal(0)
_MEMO = "native"


class _HasProgram(Protocol):
    @property
    def program(self) -> Program: ...


@dataclass(frozen=True)
class _Prepared:
    """What one program lowers to, once: the core built from its IR, or why not."""

    core: Any
    ir: dict[str, Any] | None
    reason: str | None
    refs: list[Any]  # the rules' references, in the IR's order: what the records name


def _module() -> ModuleType | None:
    try:
        return importlib.import_module(MODULE)
    except ImportError:
        return None


def available() -> bool:
    """Whether the Rust core is installed (``pip install ./native``, or ``make``)."""
    return _module() is not None


def _program(policy: Program | _HasProgram) -> Program:
    return policy if isinstance(policy, Program) else policy.program


def _prepared(program: Program) -> _Prepared:
    found = program.memo.get(_MEMO)
    if isinstance(found, _Prepared):
        return found
    ir, reason = lower(program.compiled, program.pset)
    core = None
    mod = _module()
    if ir is not None and mod is not None:
        try:
            core = mod.Core(json.dumps(ir), TraceRow, SpanRecord, ObligationRow, PenaltyRow)
        except mod.Unsupported as exc:  # an IR this build of the core cannot read
            ir, reason = None, f"the installed core cannot read the policy's IR: {exc}"
    elif mod is None:
        reason = f"the native core ({MODULE}) is not installed: pip install ./native"
    prepared = _Prepared(core, ir, reason, [r.ref for r in program.compiled.rules])
    program.memo[_MEMO] = prepared
    return prepared


def intermediate(policy: Program | _HasProgram) -> dict[str, Any] | None:
    """The policy's intermediate form (JSON-ready), or None where it has none."""
    program = _program(policy)
    found = program.memo.get(_MEMO)
    if isinstance(found, _Prepared):
        return found.ir
    return lower(program.compiled, program.pset)[0]


def core_of(program: Program) -> tuple[Any, list[Any]] | None:
    """The core built for the program and its rules' references, or None (``unsupported``
    says why): what a shard of ``evaluate_many`` runs on."""
    prepared = _prepared(program)
    return None if prepared.core is None else (prepared.core, prepared.refs)


def unsupported(policy: Program | _HasProgram) -> str | None:
    """Why ``backend="native"`` runs the Python engine for this policy (the core is not
    installed, or the policy uses a construct it does not support, named with its place);
    None: the Rust core evaluates it."""
    return _prepared(_program(policy)).reason


def run(
    program: Program,
    history: History,
    as_of: int | None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> tuple[Decision, str | None]:
    """The decision, and why the Python engine made it (None: the Rust core did)."""
    prepared = _prepared(program)
    policy = program.compiled
    if prepared.core is None:
        return python_evaluate(policy, history, as_of, max_span=max_span), prepared.reason
    applied, horizon = applied_events(policy, history, as_of, max_span)
    core = prepared.core
    try:
        with gc_paused():
            rows = core.run(
                list(map(itemgetter("id"), applied)),
                list(map(itemgetter("type"), applied)),
                list(map(itemgetter("at"), applied)),
                columns(core, applied),
                horizon,
                prepared.refs,
            )
            decision = _decision(program, history, horizon, rows, max_span)
    except (_module_unsupported(), TypeError, OverflowError) as exc:
        # a value the core does not hold (a field that is not text), or a step it leaves to
        # the engine: the engine decides, or raises its located error
        why = f"this history needs the Python engine: {exc}"
        return python_evaluate(policy, history, as_of, max_span=max_span), why
    except BaseException as exc:
        why = _failed(exc)
        return python_evaluate(policy, history, as_of, max_span=max_span), why
    return decision, None


def applied_events(
    policy: Any, history: History, as_of: int | None, max_span: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """The events up to ``as_of`` and the horizon (``as_of``, or the last event's instant),
    the span checked as the engine checks it."""
    applied = [e for e in history.events if as_of is None or e["at"] <= as_of]
    horizon = as_of if as_of is not None else (applied[-1]["at"] if applied else None)
    if max_span is not None and applied:
        check_span(applied[0]["at"], max_span, policy.timezone, applied, horizon)
    return applied, horizon


def columns(core: Any, events: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """The events' fields the core reads, as columns, not dicts: the core reads no Python
    mapping (map: the loops stay in C)."""
    return [list(map(methodcaller("get", f), events)) for f in core.fields()]


def _failed(exc: BaseException) -> str:
    """A panic of the core (PyO3 raises it as ``pyo3_runtime.PanicException``, outside our
    error family) is a bug of ours, not the caller's: the reference decides, the reason says
    so and is logged. Anything else is re-raised as it came."""
    kind = type(exc)
    if kind.__name__ != "PanicException" or kind.__module__ != "pyo3_runtime":
        raise exc
    why = (
        f"the native core failed ({exc}), a bug of ours (please report it): the Python "
        "engine decided"
    )
    log.warning(why)
    return why


def evaluate(
    program: Program,
    history: History,
    as_of: int | None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> Decision:
    """``Policy.evaluate(..., backend="native")``: ``run``'s decision."""
    return run(program, history, as_of, max_span)[0]


def run_events(
    program: Program,
    events: Iterable[Mapping[str, Any]],
    as_of: int | None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> tuple[Decision, str | None]:
    """``run`` from the caller's raw events: the core checks and orders them itself where it
    is sure ``prepare`` would accept them as it reads them; on any doubt (a problem, a form it
    does not read) ``prepare`` runs, and accepts them or raises its located errors, and
    ``run`` goes on from its history. The decision is the same either way."""
    prepared = _prepared(program)
    policy = program.compiled
    raw = events if type(events) is list else list(history_items(events))
    if prepared.core is not None and _raw_path(prepared, policy):
        try:
            with gc_paused():
                out = prepared.core.run_raw(
                    raw, as_of, max_span, prepared.refs, derived_id
                )
                if out is not None:
                    rows, duplicates, ignored, horizon = out
                    history = History(
                        [],
                        [(eid, REPEATED) for eid in duplicates],
                        [(eid, ignored_type(t)) for eid, t in ignored],
                    )
                    return _decision(program, history, horizon, rows, max_span), None
        except _module_unsupported() as exc:  # a step the core leaves to the engine
            history = prepare(policy, raw)
            why = f"this history needs the Python engine: {exc}"
            return python_evaluate(policy, history, as_of, max_span=max_span), why
        except (TypeError, OverflowError):  # an argument the core does not take (a span of
            pass  # more years than an i64 holds): the prepared path decides
        except BaseException as exc:
            why = _failed(exc)
            return python_evaluate(policy, prepare(policy, raw), as_of, max_span=max_span), why
    return run(program, prepare(policy, raw), as_of, max_span)


def evaluate_events(
    program: Program,
    events: Iterable[Mapping[str, Any]],
    as_of: int | None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> Decision:
    """``Policy.evaluate(..., backend="native")`` from raw events: ``run_events``' decision."""
    return run_events(program, events, as_of, max_span)[0]


def checked_in_core(
    policy: Program | _HasProgram,
    events: Sequence[Mapping[str, Any]],
    as_of: int | None = None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> bool:
    """Whether the core itself checks and orders these events (``run_events``' first path),
    rather than handing them to ``prepare``: what the tests and the benchmark look at."""
    program = _program(policy)
    prepared = _prepared(program)
    if prepared.core is None or not _raw_path(prepared, program.compiled):
        return False
    raw = events if type(events) is list else list(events)
    with gc_paused():
        return prepared.core.run_raw(raw, as_of, max_span, prepared.refs, derived_id) is not None



def _file(w: World, ev: dict[str, Any], sf: str) -> None:
    """An applied event in the history the metrics read, as ``World.apply`` files it."""
    sid = ev.get(sf)
    if isinstance(sid, str):
        w.hist_subj.setdefault((sid, ev["type"]), []).append(ev)
    w.hist_type.setdefault(ev["type"], []).append(ev)


def _raw_path(prepared: _Prepared, policy: Any) -> bool:
    """Whether raw events may go to the core: not where a metric or award reads the history,
    which ``_measure`` files from the prepared events."""
    ir = prepared.ir
    return not policy.metrics or (ir is not None and not ir.get("metrics_read_history", True))


def _module_unsupported() -> type[Exception]:
    mod = _module()
    found = getattr(mod, "Unsupported", None) if mod is not None else None
    return found if isinstance(found, type) and issubclass(found, Exception) else RuntimeError


def _decision(
    program: Program, history: History, horizon: int | None, rows: Any, max_span: int | None
) -> Decision:
    """The core's records in a World, then the engine's own ``decision_of``."""
    w, obligations = world_of(program, history, horizon, rows, max_span)
    # the obligations as they are reported, made on access
    return decision_of(program.compiled, w, history, horizon, obligations)


def world_of(
    program: Program, history: History, horizon: int | None, rows: Any, max_span: int | None
) -> tuple[World, Any]:
    """The core's records (``Core.run``'s) in a World, and the obligations as reported."""
    # the core's records, in the order out.rs writes them
    (
        subjects, trace, obligations, fired, conflicts, penalties, party_counters, rejected,
        breaches, labels, measured, classified, broken,
    ) = rows  # fmt: skip
    policy = program.compiled
    w = World(policy, None, max_span)
    w.horizon = horizon
    for sid, spans, flags, counters in subjects:  # the records made by the core as the engine's
        s = Subject(sid)
        s.flags = flags
        s.spans = spans
        s.counters = counters
        if spans and spans[-1].end is None:
            s.owner, s.owner_since = spans[-1].owner, spans[-1].start
        w.subjects[sid] = s
    w.trace = trace  # the core's read-only sequences of TraceRow and ObligationRow (rows.rs)
    w.penalties = penalties
    w.party_counters = dict(party_counters)
    w.rejections = [RejectionRow(*row) for row in rejected]
    w.violations = [ViolationRow(*row) for row in breaches]
    w.fired = dict(fired)
    w.labels = labels  # per subject (and thing classified) at the horizon
    w.classifications = [ClassificationRow(policy.labels[i].ref, *row) for i, *row in classified]
    w.broken = broken  # the invariants failing at the horizon, with their subjects
    if measured is not None:
        _measure(w, history.events if history.events else None, measured)
    w.conflicts = [
        ConflictRow(
            event,
            f"rules {first_rule!r} and {rule!r} both decided the owner of {sid!r} "
            f"({first!r} vs {owner!r}); the later rule in the file won: declare "
            "`overrides:` between them",
        )
        for event, sid, first, first_rule, owner, rule in conflicts
    ]
    return w, obligations


def _measure(w: World, events: Sequence[dict[str, Any]] | None, measured: Any) -> None:
    """The engine's own ``World.close`` at each metric period the core closed, in its order,
    on the history and the counters as they stood at that instant (which the core recorded:
    how many events had joined the history, how many steps the counters' log held). Without
    ``events`` (the raw path, for metrics that read only counters) no history is filed."""
    closes, log, packed = measured
    joined = memoryview(packed).cast("Q")  # the indexes, one u64 each (metric.rs)
    final = w.party_counters
    w.party_counters, w.counter_log = {}, {}
    logged = seen = 0
    sf = w.sf
    steps, parties = w.counter_log, w.party_counters
    for unit, start, end, label, at, complete, n_log, n_joined in closes:
        for owner, name, t, by, of_party in log[logged:n_log]:
            step = Decimal(by)
            key = (owner, name)
            found = steps.get(key)
            if found is None:
                steps[key] = [(t, step)]
            else:
                found.append((t, step))
            if of_party:
                table = parties.get(owner)
                if table is None:
                    table = parties[owner] = {}
                table[name] = table.get(name, _ZERO) + step
        if events is not None:
            for i in joined[seen:n_joined]:
                _file(w, events[i], sf)
        logged, seen = n_log, n_joined
        w.close(Tick(unit, start, end, label), at, complete, schedule=False)
    w.party_counters = final
