"""Phase 2: one decision from the shards' results, in the single-process order: lists merged
by step position, offences numbered per party, counters summed, metrics and awards measured
from the merged counters (the design: ``docs/parallel.md``)."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

from policyengine.backends.parallel.partitioner import Partition
from policyengine.backends.parallel.shard import (
    _FINISH,
    _MARKS,
    AddRecord,
    LadderRecord,
    ShardResult,
)
from policyengine.runtime.decision import Decision
from policyengine.runtime.engine import World
from policyengine.runtime.evaluate import decision_of
from policyengine.runtime.events import History
from policyengine.runtime.records import PenaltyRow, TraceRow, reported
from policyengine.runtime.state import STATE, STEPPED, Subject

if TYPE_CHECKING:
    from policyengine.language.program import Program

log = logging.getLogger(__name__)


class _Fallback(Exception):
    """Phase 2 met something only one process can decide exactly (e.g. a ladder step whose
    amount cannot be evaluated): the caller evaluates the history in one process."""


def _positions(res: ShardResult) -> list[tuple[Any, ...]]:
    """Comparable positions: ``(2*at, 1, input index)`` for an event, ``(key, 0, pusher's
    position, j)`` for a timer, nested tuples sharing their pushers (``()``: none)."""
    out: list[tuple[Any, ...]] = []
    for key, ref, j, flag in zip(res.s_key, res.s_ref, res.s_j, res.s_flag, strict=True):
        if flag & 1:
            out.append((key, 1, ref))
        else:
            out.append((key, 0, out[ref] if ref >= 0 else (), j))
    return out


_LAST: tuple[Any, ...] = (_FINISH,)


_TB0: tuple[Any, ...] = (0, "")
_TB1: tuple[Any, ...] = (1, "")


def _keys(
    rows: Sequence[Any],
    column: int,
    res: ShardResult,
    pos: list[tuple[Any, ...]],
    shard: int,
    replicated: Callable[[int, Any], bool],
    subject: Callable[[Any], Any],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Merge keys of the rows, ``(step position, tie-break, shard, row index)``: those of this
    shard's own rows, and those of rows every shard produced alike (kept from one shard).
    Only steps without a subject can hold the latter, or rows of several shards, so only
    their rows pay for a check."""
    starts = res.marks[column::_MARKS]
    flags = res.s_flag
    own: list[tuple[Any, ...]] = []
    alike: list[tuple[Any, ...]] = []
    append = own.append
    n = len(rows)
    last = len(starts) - 1
    right = bisect.bisect_right
    i = 0
    while i < n:  # one run of rows per step that has any
        s = right(starts, i) - 1
        b = starts[s + 1] if s < last else n
        p = pos[s] if s >= 0 else ()
        if s < 0 or not flags[s] & 2:
            for j in range(i, b):
                append((p, _TB0, shard, j))
        else:
            for j in range(i, b):
                row = rows[j]
                if replicated(j, row):
                    alike.append((p, _TB1, shard, j))
                else:
                    append((p, (0, str(subject(row) or "")), shard, j))
        i = b
    return own, alike


def _reject_subjects(r: ShardResult) -> list[Any]:
    """The subject of each rejection: its trace entry, in the same order."""
    return [row.subject for row in r.records["trace"] if row.kind == "reject"]


def _obligation_check(r: ShardResult) -> Callable[[int, Any], bool]:
    alike = set(r.repl_obligations)
    return lambda i, row: i in alike


def _rejection_check(r: ShardResult) -> Callable[[int, Any], bool]:
    subjects = _reject_subjects(r)
    return lambda i, row: subjects[i] is None


def _no_subject(r: ShardResult) -> Callable[[int, Any], bool]:
    return lambda i, row: row.subject is None


# How each record the shards count per step is merged: which rows every shard made alike
# (kept from one shard) and the subject that orders a row within a step without one. Keyed by
# the engine's declared names; a stepped record without an entry here fails at import.
_HOW: dict[str, tuple[Callable[[ShardResult], Callable[[int, Any], bool]], Callable[[Any], Any]]]
_HOW = {
    "trace": (_no_subject, lambda row: row.subject),
    "obligations": (_obligation_check, lambda row: row.subject),
    "penalties": (_no_subject, lambda row: row.subject),
    "credits": (_no_subject, lambda row: row.subject),
    "violations": (_no_subject, lambda row: row.subject),
    "rejections": (_rejection_check, lambda row: row.event),
    "classifications": (lambda r: lambda i, row: row.customer is None, lambda row: row.customer),
    "conflicts": (lambda r: lambda i, row: False, lambda row: row.event),
}
_MERGED: Final = tuple(n for n in STEPPED if STATE[n].role == "record")
if set(_HOW) != set(_MERGED):
    raise TypeError(f"the merge does not know how to merge {sorted(set(_MERGED) ^ set(_HOW))}")
# the merged lists: name, marks column, which rows every shard made alike, the row's subject
_LISTS: tuple[
    tuple[str, int, Callable[[ShardResult], Callable[[int, Any], bool]], Callable[[Any], Any]],
    ...,
] = tuple((name, STEPPED.index(name), *_HOW[name]) for name in _MERGED)
_SUBJECTS_COLUMN: Final = STEPPED.index("subjects")


@dataclass
class Prepared:
    """One shard's result with what the merge needs from it alone, computed as soon as it
    arrives (while other shards still run): step positions and the merge keys."""

    result: ShardResult
    pos: list[tuple[Any, ...]]
    keys: dict[str, tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]
    touched: list[tuple[tuple[Any, ...], str]]


def prepare_result(res: ShardResult, shard: int) -> Prepared:
    pos = _positions(res)
    keys = {
        name: _keys(res.records[name], column, res, pos, shard, alike(res), subject)
        for name, column, alike, subject in _LISTS
    }
    starts = res.marks[_SUBJECTS_COLUMN::_MARKS]
    right = bisect.bisect_right
    touched = []
    for i, sid in enumerate(res.subjects):
        step = right(starts, i) - 1
        touched.append(((pos[step] if step >= 0 else (), shard, i), sid))
    return Prepared(res, pos, keys, touched)


# a penalty to number: (its place in the single-process order, its record, the penalty and
# trace rows its ``row`` and ``trace`` index)
Offence = tuple[tuple[Any, ...], LadderRecord, list[Any], list[Any]]
# a party counter increment: (its place in that order, its record, the trace rows)
Increment = tuple[tuple[Any, ...], AddRecord, list[Any]]


_first = itemgetter(0)
_OFFENCE: Final = PenaltyRow._fields.index("offence")
_DETAIL: Final = TraceRow._fields.index("detail")
if len(TraceRow._fields) - 1 != _DETAIL:
    raise TypeError("number_offences writes a trace row's detail as its last field")


def number_offences(offences: Sequence[Offence]) -> None:
    """Number each party's offences in the single-process order and write the ladder step
    each takes into its penalty and trace rows (shared by ``merge`` and the streaming mode's
    final line, which holds only these rows)."""
    new = tuple.__new__
    groups: dict[tuple[str, str], list[Offence]] = {}
    for o in offences:
        groups.setdefault(o[1].key, []).append(o)
    for group in groups.values():
        group.sort(key=_first)
        ats = [pens[rec.row].at for _, rec, pens, _ in group]
        for i, (_, rec, pens, trace) in enumerate(group):
            n = i + 1
            if rec.bounds is not None:  # counted in a window or per period: from its start
                lower, exact = rec.bounds
                low = bisect.bisect_left(ats, lower, 0, i)
                ex = bisect.bisect_left(ats, exact, 0, i)
                if low < ex:  # near a month end: only the window's own `covers` can tell
                    raise _Fallback(f"offence {n} of {rec.key} is near its window's edge")
                n = i - ex + 1
            outcome = rec.outcomes[min(n - 1, len(rec.outcomes) - 1)]
            if outcome is None:
                raise _Fallback(f"offence {n} of {rec.key} takes a step that cannot be evaluated")
            row, detail = outcome
            # ``_replace`` without its Python-level ``_make``: the same named rows, built in C
            pens[rec.row] = new(type(row), (*row[:_OFFENCE], n, *row[_OFFENCE + 1 :]))
            t = trace[rec.trace]
            trace[rec.trace] = new(type(t), (*t[:_DETAIL], {**detail, "offence": n}))


def sum_counters(
    adds: Iterable[Increment],
) -> tuple[dict[str, dict[str, Decimal]], dict[tuple[str, str], list[tuple[int, Decimal]]]]:
    """The party counters' totals and logs from increments sorted in the single-process
    order; each increment's trace row shows the running total, as one process shows it."""
    totals: dict[str, dict[str, Decimal]] = {}
    counter_log: dict[tuple[str, str], list[tuple[int, Decimal]]] = {}
    for _, a, trace in adds:
        party, name = a.key
        table = totals.setdefault(party, {})
        table[name] = table.get(name, Decimal(0)) + a.by
        counter_log.setdefault(a.key, []).append((a.at, a.by))
        trace[a.trace].detail["value"] = str(table[name])
    return totals, counter_log


def measure(
    w: World,
    adds: Iterable[Increment],
    counter_log: dict[tuple[str, str], list[tuple[int, Decimal]]],
    horizon: int | None,
    closes: Sequence[tuple[int, Any, int, bool]],
    pos: Sequence[tuple[Any, ...]],
) -> None:
    """Metrics and awards into ``w``: measured at each period end (``closes`` of one shard,
    ``pos`` its step positions) with the counters as they stood (``adds`` sorted, read once:
    the streaming mode reads them from disk)."""
    counters: dict[str, dict[str, Decimal]] = {}
    w.counter_log = counter_log
    w.horizon = horizon
    pending = iter(adds)
    nxt = next(pending, None)
    for step, tick, at, complete in closes:
        at_pos = pos[step] if step != _FINISH else _LAST
        while nxt is not None and nxt[0][0] < at_pos:
            a = nxt[1]
            table = counters.setdefault(a.key[0], {})
            table[a.key[1]] = table.get(a.key[1], Decimal(0)) + a.by
            nxt = next(pending, None)
        w.party_counters = counters
        w.close(tick, at, complete)


def merge(policy: Program, part: Partition, shards: Sequence[ShardResult | Prepared]) -> Decision:
    """Phase 2: one decision from the shards (see the module doc)."""
    compiled = policy.compiled
    prepared = [
        x if isinstance(x, Prepared) else prepare_result(x, k) for k, x in enumerate(shards)
    ]
    results = [x.result for x in prepared]
    shown = any(r.reported for r in results)  # rows of the core: obligations as reported
    for r in results:
        if shown and not r.reported:
            r.records["obligations"] = reported(r.records["obligations"])
            r.reported = True
    primary = next((k for k, r in enumerate(results) if r.applied), 0)
    pos = [x.pos for x in prepared]

    # offences: numbered per (ladder key, party) in the single-process order
    offences: list[Offence] = []
    for k, r in enumerate(results):
        records = r.records
        for rec in r.ladder:
            if rec.replicated and k != primary:
                continue
            offences.append(
                (
                    (pos[k][rec.step], rec.intra, k, rec.row),
                    rec,
                    records["penalties"],
                    records["trace"],
                )
            )
    number_offences(offences)

    # party counters: increments in order; running totals as one process shows them
    adds: list[Increment] = []
    for k, r in enumerate(results):
        for a in r.adds:
            if a.replicated and k != primary:
                continue
            adds.append(((pos[k][a.step], a.intra, k, a.trace), a, r.records["trace"]))
    adds.sort(key=lambda x: x[0])
    totals, counter_log = sum_counters(adds)

    w = World(compiled)
    # metrics and awards: measured at each period end with the counters as they stood
    if compiled.metrics:
        measure(w, adds, counter_log, part.horizon, results[primary].closes, pos[primary])

    # the lists, merged by position (after the offences and totals above were written in)
    merged: dict[str, list[Any]] = {}
    for name, _, _, _ in _LISTS:
        order = [key for x in prepared for key in x.keys[name][0]]
        order += prepared[primary].keys[name][1]
        order.sort()
        lists = [r.records[name] for r in results]
        merged[name] = [lists[key[2]][key[3]] for key in order]

    # subjects, in the order one process first touched them
    touched = sorted(t for x in prepared for t in x.touched)
    subjects: dict[str, Subject] = {}
    for (_, k, _), sid in touched:
        if sid in subjects:
            raise _Fallback(f"subject {sid!r} was touched in two shards")
        subjects[sid] = results[k].subjects[sid]

    # labels: each subject's at as_of, then what events classified (the latest wins)
    labels: dict[str, dict[str, Any]] = {}
    if any(not lab.on for lab in compiled.labels):
        for sid in subjects:
            for r in results:
                found = r.labels.get(sid)
                if found is not None:
                    labels[sid] = dict(found)
                    break
    event_labels: dict[str, dict[str, Any]] = {}
    for row in merged["classifications"]:
        event_labels.setdefault(row.subject, {})[row.rule[0]] = row.value
    for key, found in event_labels.items():
        labels.setdefault(key, {}).update(found)

    broken_in = [{name: set(sids) for name, sids in r.broken.items()} for r in results]
    broken: dict[str, list[str]] = {}
    for sid in subjects:
        for name, _ in compiled.invariants:
            if any(sid in b.get(name, ()) for b in broken_in):
                broken.setdefault(name, []).append(sid)

    fired: dict[str, int] = {}
    for k, r in enumerate(results):
        for rid, n in r.fired.items():
            own = n - r.fired_repl.get(rid, 0) + (r.fired_repl.get(rid, 0) if k == primary else 0)
            if own:
                fired[rid] = fired.get(rid, 0) + own

    w.subjects = subjects
    for name, rows in merged.items():
        setattr(w, name, rows)
    w.party_counters = totals
    w.labels = labels
    w.broken = broken
    w.fired = fired
    w.calendar_guesses = {year: True for r in results for year in r.calendar_guesses}
    history = History([], duplicates=list(part.duplicates), ignored=list(part.ignored))
    return decision_of(compiled, w, history, part.horizon, merged["obligations"] if shown else None)
