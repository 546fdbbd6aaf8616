"""Streaming evaluation: a history grouped by subject is evaluated group by group, and each
group's decision is written (JSON Lines or Parquet) as soon as the group ends, then dropped, so
memory is bounded by the largest group and the final line's rows, not by the history.

The grouping contract, the line and row shapes and the limits are in the README ("Streaming,
one subject at a time") and ``docs/parallel.md``. Subjects are joined exactly as
``evaluate_many`` joins them (``parallel.partitioner.Reader``: links and co-location tokens);
an event without a subject that only meets a co-located key's duties goes only to the groups
holding its token (``routes``). Each group runs under the shard's hooks, and the final line
merges what only the whole history decides (offence numbers, party counters, metrics) with
the merge's own functions. A policy ``evaluate_many`` would evaluate as one shard cannot be
streamed (PE312), and a stream that is not grouped is refused at the event that shows it
(PE213), never decided wrong."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Final, Literal, NamedTuple, Protocol

from policyengine.backends.parallel.merger import (
    Offence,
    _Fallback,
    _positions,
    measure,
    number_offences,
    sum_counters,
)
from policyengine.backends.parallel.partitioner import _OK, Reader, _UnionFind
from policyengine.backends.parallel.planner import plan
from policyengine.backends.parallel.shard import ShardHooks, ShardResult, _index_compiled
from policyengine.backends.stream_routes import (
    _tokens,
    constants,
    inert_types,
    party_routes,
    routes,
    texts,
)
from policyengine.backends.stream_store import FinalRows, IdTable
from policyengine.errors import Code, EvaluationError, EventError, Problem
from policyengine.language.program import HasProgram, Program, program_of
from policyengine.runtime.decision import Decision
from policyengine.runtime.engine import World
from policyengine.runtime.evaluate import decision_of, run
from policyengine.runtime.events import History, prepare, reused_problem
from policyengine.runtime.state import MAX_SPAN_YEARS, RECORDS
from policyengine.times import from_dt, parse_instant

Format = Literal["jsonl", "parquet"]
Backend = Literal["python", "native"]
PARQUET_HINT: Final = "pip install 'policyengine[parquet]' (pyarrow writes and reads .parquet)"
_GROUPING_HINT: Final = (
    "give each subject's events consecutively, linked subjects' runs next to each other, and "
    "the events without a subject first (policyengine.stream.grouped orders a history so); "
    "or evaluate the history with evaluate_many"
)
_BATCH: Final = 128  # Parquet rows per row group: the writer's memory is one batch


@dataclass(frozen=True, slots=True)
class Group:
    """One group's result: its subjects (in the order their runs began; none for the line of
    the events without a subject), how many events it had (those without a subject not
    counted), and its decision (see ``groups``)."""

    index: int
    subjects: tuple[str, ...]
    events: int
    decision: Decision
    # the input positions of the shared events it was evaluated with (not written)
    shared: tuple[int, ...] = ()


@dataclass
class Summary:
    """What a streamed evaluation wrote."""

    groups: int = 0  # lines or rows written (the shared events' and the final one included)
    subjects: int = 0
    events: int = 0  # events read, the shared ones included
    shared: int = 0  # events without a subject
    routed_out: int = 0  # (shared event, group) pairs not evaluated: the event meets none
    kept: int = 0  # penalties and counter increments held for the final line
    largest: int = 0  # events of the largest group (shared ones included): what memory holds


@dataclass
class _Open:
    """The group being collected: its events, subjects, and what its events joined."""

    uf: _UnionFind = field(default_factory=_UnionFind)
    events: list[tuple[int, str | None, Any]] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)

    def knows(self, key: Any) -> bool:
        return key in self.uf.parent


@dataclass
class _Run:
    """Consecutive events of one subject, and what they join."""

    subject: str
    events: list[tuple[int, str | None, Any]] = field(default_factory=list)
    joins: list[Any] = field(default_factory=list)


def _not_grouped(eid: str | None, message: str) -> EventError:
    return EventError(
        [Problem(Code.HISTORY_NOT_GROUPED, message, hint=_GROUPING_HINT, event_id=eid or "#?")]
    )


def _not_streamable(message: str, eid: str | None = None) -> EvaluationError:
    return EvaluationError(
        [
            Problem(
                Code.NOT_STREAMABLE,
                message,
                hint="evaluate the history with evaluate_many (all cores) or evaluate "
                "(one process), which decide it exactly",
                event_id=eid,
            )
        ]
    )


def _show(key: Any) -> str:
    if isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str):
        return f"{key[0]} {key[1]!r}"  # a co-location token: (what, matched values)
    return repr(key)


@dataclass
class _Final:
    """What the final line needs: each penalty with its ladder steps and its place in the
    single-process order, each increment (both on disk, ``FinalRows``: memory does not grow
    with them), and the span of the history."""

    rows: FinalRows = field(default_factory=FinalRows)
    first: tuple[int, int, Any] | None = None  # (at, input index, event): the earliest one
    last: int | None = None

    def keep(self, res: ShardResult, pos: list[tuple[Any, ...]], k: int, subjects: bool) -> None:
        """The rows of group ``k``: its own (``subjects``) or the shared ones (else). Only the
        penalty row is kept; the trace rows the merge writes into go to one discarded row."""
        pens = res.records["penalties"]
        sink = [_Sink({})]
        self.rows.add_offences(
            [
                (
                    (pos[rec.step], rec.intra, k, rec.row),
                    replace(rec, row=0, trace=0),
                    [pens[rec.row]],
                    sink,
                )
                for rec in res.ladder
                if rec.replicated != subjects
            ]
        )
        self.rows.add_increments(
            [
                ((pos[a.step], a.intra, k, a.trace), replace(a, trace=0), sink)
                for a in res.adds
                if a.replicated != subjects
            ]
        )

    @property
    def kept(self) -> int:
        return self.rows.offences + self.rows.increments


class _Sink(NamedTuple):
    """Where the merge writes a trace row the final line does not show."""

    detail: dict[str, Any]


def _number(offences: list[Offence] | FinalRows) -> None:
    try:
        if isinstance(offences, FinalRows):
            offences.number([_Sink({})])
        else:
            number_offences(offences)
    except _Fallback as exc:
        raise _not_streamable(
            f"a penalty ladder counted in a window cannot be numbered in stream mode ({exc})"
        ) from None


# an id's slot holds 32 bits of its event's hash and 32 of its input position (``IdTable``)
_INDEX_BITS: Final = 32
_INDEX_MASK: Final = (1 << _INDEX_BITS) - 1


def _digest(value: Any) -> int:
    """64 bits of an id or an event: the ids of a long stream are held as small ints."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


FINAL_FIELDS: Final = frozenset({"as_of", "penalties", "counters", "metrics", "awards"})


def groups(
    policy: Program | HasProgram,
    events: Iterable[Any],
    *,
    as_of: str | Any | None = None,
    backend: Backend = "python",
    max_span: int | None = MAX_SPAN_YEARS,
    summary: Summary | None = None,
) -> Iterator[Group]:
    """Each group's decision, as soon as the group ends, then the final result.

    The stream: the events without a subject first (the shared events), then the groups. A
    group is one subject's consecutive events (a run), followed by the runs that join it, each
    run joining through a link or co-location token of its own events or of the group's. A
    run that joins nothing before it closes the group. The first result (``subjects`` empty)
    is ``evaluate`` of the shared events alone; each group's is ``evaluate`` of the shared
    events that can act on its subjects (all but ``inert_types``, and of a ``routes`` type
    only those meeting the group's tokens) followed by the group's events. The last result
    (``index`` -1, ``FINAL_FIELDS``) holds what only the whole history decides, merged as
    ``evaluate_many`` merges shards: every penalty with its offence number counted over all
    groups, the party counters summed, the metrics and awards measured from them.
    ``as_of`` defaults to each evaluation's last event, as ``evaluate`` takes it (the final
    result's: the history's last event).

    Raises ``EvaluationError`` PE312 for a policy or event that ties every group together,
    ``EventError`` PE213 at the first event that breaks the grouping, PE212 for an id given
    to two different events; a group's own problems are raised as ``evaluate`` raises them.
    ``summary`` is kept up to date."""
    tally = summary if summary is not None else Summary()
    program = program_of(policy)
    the_plan = plan(program)
    if not the_plan.separable:
        raise _not_streamable(
            "the policy reads across subjects, so no subject's decision is known before the "
            "whole history is: " + "; ".join(the_plan.reasons)
        )
    if backend not in ("python", "native"):
        raise ValueError(f"unknown backend {backend!r}: use 'python' or 'native'")
    compiled = program.compiled
    if backend == "native" and any(n.startswith("phase 2") for n in the_plan.notes):
        raise _not_streamable(
            "offence numbers, party counters and metrics are counted over every group, which "
            "the native backend cannot record in stream mode: stream with backend 'python', "
            "or use evaluate_many"
        )
    horizon = from_dt(parse_instant(as_of, "as_of")) if as_of is not None else None
    reader = Reader.of(program, the_plan)
    read = reader.read
    inert = inert_types(program)
    routed_types = routes(program)
    by_party_field = party_routes(program)
    named = constants(program)
    tz = compiled.timezone
    specs, acts = _index_compiled(compiled)
    subject_field = compiled.subject_field
    every: list[tuple[int, str | None, Any]] = []  # the shared events (kept: the final line)
    always: list[int] = []  # positions in ``every`` of those given to every group
    by_token: dict[Any, list[int]] = {}  # token -> positions in ``every`` of those meeting it
    by_party: dict[str, list[int]] = {}  # party -> positions in ``every`` of those naming it
    reach: list[set[int]] = []  # the party events the events given to every group reach
    digests = IdTable()  # every id read (hashed): its content's hash, first input
    closed: set[Any] = set()  # subjects and tokens of groups already written
    final = _Final()
    group: _Open | None = None
    run_: _Run | None = None

    def decide(evs: list[tuple[int, str | None, Any]], subjects: list[str], own: int) -> Group:
        raws = [raw for _, _, raw in evs]
        history = prepare(compiled, raws)
        if backend == "native":
            from policyengine.backends.native import evaluate as native_evaluate

            decision = native_evaluate(program, history, horizon, max_span)
        else:
            gidx = {eid: index for index, eid, _ in evs if eid is not None}
            hooks = ShardHooks(compiled, gidx, None, specs, acts)
            w = run(compiled, history, horizon, hooks, max_span)
            res = _result(hooks, w)
            pos = _positions(res)
            _number(  # the shard's hooks leave offence numbers to the merge: as one process
                [((pos[r.step], r.intra, 0, r.row), r, w.penalties, w.trace) for r in res.ladder]
            )
            decision = decision_of(compiled, w, history, w.horizon)
            if subjects:
                final.keep(res, pos, tally.groups, True)
                tally.kept = final.kept
            ats = [e["at"] for e in history.events]
            if ats:
                lo = min(ats)
                if final.first is None or lo < final.first[0]:
                    at_lo = next(i for i, e in enumerate(history.events) if e["at"] == lo)
                    eid = history.events[at_lo]["id"]
                    item = next(x for x in evs if x[1] == eid)
                    final.first = (lo, item[0], item)
                final.last = max(ats) if final.last is None else max(final.last, max(ats))
        tally.groups += 1
        tally.subjects += len(subjects)
        tally.largest = max(tally.largest, len(evs))
        shared = tuple(i for i, _, _ in evs[: len(evs) - own]) if subjects else ()
        return Group(tally.groups - 1, tuple(subjects), own, decision, shared)

    def close(g: _Open) -> Group:
        closed.update(g.uf.parent)
        picked = set(always)
        for key in g.uf.parent:
            picked.update(by_token.get(key, ()))
        if by_party:  # the parties the group's entries can hold, and the events naming them
            if not reach:  # once: all shared events are read before the first group closes
                reach.append(_reached(by_party, every, texts_of(every[i][2] for i in always)))
            picked |= reach[0]
            own = [t for _, _, raw in g.events for t in texts(raw)]
            picked |= _reached(by_party, every, own + texts_of(every[i][2] for i in picked))
        tally.routed_out += len(every) - len(picked)
        return decide([*(every[i] for i in sorted(picked)), *g.events], g.subjects, len(g.events))

    def finish(r: _Run) -> Group | None:
        """Add the run to the open group if it joins it; else close that group."""
        nonlocal group
        done = None
        if group is not None and not (
            group.knows(r.subject) or any(group.knows(j) for j in r.joins)
        ):
            done = close(group)
            group = None
        if group is None:
            group = _Open()
        uf = group.uf
        uf.find(r.subject)
        for j in r.joins:
            uf.union(r.subject, j)
        if r.subject not in group.subjects:
            group.subjects.append(r.subject)
        group.events += r.events
        return done

    for index, raw in enumerate(events):
        _, eid, derived, status, etype, _at, subject, joins, why = read(index, raw)
        if why is not None:
            raise _not_streamable(why, eid)
        if eid is not None:
            key = _digest(eid)
            digest = (_digest(raw) >> _INDEX_BITS) << _INDEX_BITS | (index & _INDEX_MASK)
            seen = digests.setdefault(key, digest)
            if seen >> _INDEX_BITS != digest >> _INDEX_BITS:
                raise EventError([reused_problem(eid, seen & _INDEX_MASK, index)])
            if derived:  # the id the whole history gives it, not its place in a group
                raw = {**raw, "id": eid}
        item = (index, eid, raw)
        if subject is None and status != _OK and isinstance(raw, Mapping):
            sid = raw.get(subject_field)  # an ignored or unknown type still has its subject
            subject = sid if isinstance(sid, str) and sid else None
        if subject is None:
            if run_ is None:
                if status != _OK or etype not in inert:
                    found = routed_types.get(etype) if status == _OK else None
                    tokens = (
                        _tokens(raw, found, reader.types[etype][0], tz)
                        if found is not None
                        else None
                    )
                    party = (
                        raw.get(by_party_field[etype])
                        if status == _OK and etype in by_party_field and isinstance(raw, Mapping)
                        else None
                    )
                    if tokens is not None:
                        for t in tokens:
                            by_token.setdefault(t, []).append(len(every))
                    elif isinstance(party, str) and party not in named:
                        by_party.setdefault(party, []).append(len(every))
                    else:
                        always.append(len(every))
                every.append(item)
                tally.shared += 1
            elif status == _OK:
                raise _not_grouped(
                    eid,
                    "an event without a subject comes after the first subject's events: it "
                    "would act on every group, also those already written",
                )
            else:  # unreadable: the group's evaluation reports it at its id
                run_.events.append(item)
            continue
        if run_ is None or subject != run_.subject:
            if run_ is None:
                if every:
                    yield decide(every, [], len(every))
            else:
                done = finish(run_)
                if done is not None:
                    yield done
            if subject in closed:
                raise _not_grouped(
                    eid,
                    f"subject {subject!r} has events after its group was written (or is "
                    "linked to a group already written)",
                )
            run_ = _Run(subject)
        for j in joins:
            if j in closed:
                raise _not_grouped(
                    eid,
                    f"the event links {subject!r} to {_show(j)}, of a group already written",
                )
        run_.events.append(item)
        run_.joins += joins
    if run_ is not None:
        done = finish(run_)
        if done is not None:
            yield done
    elif every:  # no subject at all: the shared events' decision only
        yield decide(every, [], len(every))
    if group is not None:
        yield close(group)
    if backend == "python":
        yield _final_group(program, every, final, horizon, max_span, specs, acts, tally)


def texts_of(raws: Iterable[Any]) -> list[str]:
    return [t for raw in raws for t in texts(raw)]


def _reached(
    by_party: dict[str, list[int]], every: list[tuple[int, str | None, Any]], todo: list[str]
) -> set[int]:
    """The party-routed events that the texts ``todo`` name, and those their texts name."""
    picked: set[int] = set()
    seen: set[str] = set()
    while todo:
        t = todo.pop()
        if t not in seen:
            seen.add(t)
            for i in by_party.get(t, ()):
                if i not in picked:
                    picked.add(i)
                    todo.extend(texts(every[i][2]))
    return picked


def _result(hooks: ShardHooks, w: World) -> ShardResult:
    """The parts of a shard's result the final line reads (positions, penalties, counters)."""
    return ShardResult(
        s_key=hooks.s_key,
        s_ref=hooks.s_ref,
        s_j=hooks.s_j,
        s_flag=bytes(hooks.s_flag),
        marks=[],
        subjects={},
        records={name: getattr(w, name) for name in RECORDS},
        repl_obligations=[],
        ladder=hooks.ladder,
        adds=hooks.adds,
        closes=hooks.closes,
        fired={},
        fired_repl={},
        calendar_guesses={},
        labels={},
        broken={},
        applied=hooks.applied,
    )


def _final_group(
    program: Program,
    every: list[tuple[int, str | None, Any]],
    final: _Final,
    as_of: int | None,
    max_span: int | None,
    specs: dict[int, int],
    acts: dict[int, int],
    tally: Summary,
) -> Group:
    """The final result: the shared events run once more as one shard of the whole history
    (its first instant, its horizon), for their own penalties and increments and the period
    ends; then the offences numbered, the counters summed and the metrics measured over all
    groups by ``evaluate_many``'s merge functions."""
    compiled = program.compiled
    horizon = as_of if as_of is not None else final.last
    first = final.first[0] if final.first is not None else None
    evs = list(every)
    if (
        compiled.metrics
        and final.first is not None
        and not any(x[0] == final.first[1] for x in evs)
    ):  # period ends come from a run that starts where the history starts
        evs = sorted([*evs, final.first[2]], key=lambda x: x[0])
    history = prepare(compiled, [raw for _, _, raw in evs])
    gidx = {eid: index for index, eid, _ in evs if eid is not None}
    hooks = ShardHooks(compiled, gidx, first, specs, acts)
    w = run(compiled, history, horizon, hooks, max_span)
    primary = _result(hooks, w)
    final.keep(primary, _positions(primary), -1, False)
    rows = final.rows
    _number(rows)
    totals, counter_log = sum_counters(rows.increments_in_order())
    out = World(compiled)
    if compiled.metrics:
        measure(
            out, rows.increments_in_order(), counter_log, horizon, primary.closes,
            _positions(primary),
        )  # fmt: skip
    out.penalties = rows.penalties()  # type: ignore[assignment]
    out.party_counters = totals
    decision = decision_of(compiled, out, History([]), horizon)
    tally.groups += 1
    return Group(-1, (), 0, decision)


def grouped(policy: Program | HasProgram, events: Iterable[Any]) -> list[Any]:
    """The history in an order ``groups`` streams (not streaming itself: it holds the whole
    history): the events without a subject first, then each linked group. A group keeps the
    input order when its runs join in that order; else its subjects come one after the other,
    each after one it is linked to. A producer that cannot sort this way in its database can
    write its export through this once."""
    program = program_of(policy)
    read = Reader.of(program, plan(program)).read
    raws = list(events)
    shared: list[Any] = []
    info: list[tuple[str | None, tuple[Any, ...]]] = []
    by_subject: dict[str, list[int]] = {}
    neighbours: dict[Any, list[Any]] = {}
    for index, raw in enumerate(raws):
        _, _eid, _derived, _status, _etype, _at, subject, joins, _why = read(index, raw)
        info.append((subject, joins))
        if subject is None:
            shared.append(raw)
            continue
        by_subject.setdefault(subject, []).append(index)
        for j in joins:
            neighbours.setdefault(subject, []).append(j)
            neighbours.setdefault(j, []).append(subject)
    out = shared
    seen: set[Any] = set()
    for start in by_subject:
        if start in seen:
            continue
        seen.add(start)
        queue = [start]
        for node in queue:  # breadth first: each subject after one it is linked to
            for nxt in neighbours.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        members = [x for x in queue if x in by_subject]
        as_given = sorted(i for x in members for i in by_subject[x])
        if not _joins_in_order(as_given, info):
            as_given = [i for x in members for i in by_subject[x]]
        out += [raws[i] for i in as_given]
    return out


def _joins_in_order(order: list[int], info: list[tuple[str | None, tuple[Any, ...]]]) -> bool:
    """Whether ``groups`` keeps these events (one linked group) as one group in this order:
    every run after the first joins what came before it."""
    known: set[Any] = set()
    run: list[Any] = []
    subject: str | None = None
    for k in [*order, None]:
        s, joins = info[k] if k is not None else (None, ())
        if s != subject or k is None:
            if subject is not None:
                if known and subject not in known and not any(j in known for j in run):
                    return False
                known.add(subject)
                known.update(run)
            subject, run = s, []
        run += joins
    return True


# ---------------------------------------------------------------- writers


def _owner(decision: Decision, subject: str | None) -> str | None:
    """The subject's owner at the end: its last ownership span, if still open."""
    spans = decision.ownerships.get(subject or "", [])
    return spans[-1].owner if spans and spans[-1].end is None else None


_CHUNK: Final = 512  # penalties of the final line turned into models at a time


def _body(group: Group, exclude: set[str] | None) -> Iterator[str]:
    """The decision's JSON, in parts: the final result's only with ``FINAL_FIELDS``, its
    penalties dumped ``_CHUNK`` at a time (they are read from disk as they are dumped, and
    written so: millions of them are never one text)."""
    d = group.decision
    if group.index >= 0:
        yield d.model_dump_json(exclude=exclude)
        return
    rest = d.model_dump_json(include=set(FINAL_FIELDS - {"penalties"}))
    raw = d.raw
    if raw is None:  # pragma: no cover - a decision made here always has its raw rows
        yield d.model_dump_json(include=set(FINAL_FIELDS))
        return
    head = '{"penalties":['
    yield head
    sep = ""
    for i in range(0, len(raw.penalties), _CHUNK):
        chunk = replace(raw, penalties=raw.penalties[i : i + _CHUNK])
        text = d.model_copy(update={"raw": chunk}).model_dump_json(include={"penalties"})
        part = text[len(head) : -2]
        if part:
            yield sep + part
            sep = ","
    yield "]," + rest[1:]


class Writer(Protocol):
    def write(self, group: Group) -> None: ...

    def close(self) -> None: ...


class JsonLinesWriter:
    """One line per group: ``{"group", "subjects", "events", "decision"}`` (the decision as
    ``model_dump(mode="json")`` gives it), flushed line by line."""

    def __init__(self, out: str | Path | IO[str], exclude: Iterable[str] = ()) -> None:
        self._exclude = set(exclude) or None
        self._own = isinstance(out, str | Path)
        self._file: IO[str] = (
            open(out, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
            if isinstance(out, str | Path)
            else out
        )

    def write(self, group: Group) -> None:
        data: dict[str, Any] = {"group": group.index}
        if group.index < 0:
            data["final"] = True
        data.update(subjects=list(group.subjects), events=group.events)
        head = json.dumps(data, ensure_ascii=False)
        self._file.write(f'{head[:-1]}, "decision": ')
        for part in _body(group, self._exclude):
            self._file.write(part)
        self._file.write("}\n")

    def close(self) -> None:
        if self._own:
            self._file.close()
        else:
            self._file.flush()


class ParquetWriter:
    """One row per group: ``group`` (int64), ``subject`` (its first subject), ``subjects``
    (list), ``events`` (int64), ``owner`` (the first subject's owner at the end, or null),
    ``penalties``, ``overdue`` (obligations overdue), ``violations`` (int64 counts) and
    ``decision`` (the decision's JSON text). Rows are written in row groups of ``_BATCH``."""

    def __init__(self, out: str | Path, exclude: Iterable[str] = ()) -> None:
        self._exclude = set(exclude) or None
        pa, pq = _pyarrow()
        self._pa = pa
        self._schema = pa.schema(
            [
                ("group", pa.int64()),
                ("subject", pa.string()),
                ("subjects", pa.list_(pa.string())),
                ("events", pa.int64()),
                ("owner", pa.string()),
                ("penalties", pa.int64()),
                ("overdue", pa.int64()),
                ("violations", pa.int64()),
                ("decision", pa.string()),
            ]
        )
        self._writer = pq.ParquetWriter(str(out), self._schema)
        self._rows: dict[str, list[Any]] = {name: [] for name in self._schema.names}

    def write(self, group: Group) -> None:
        d = group.decision
        first = group.subjects[0] if group.subjects else None
        row = self._rows
        row["group"].append(group.index)
        row["subject"].append(first)
        row["subjects"].append(list(group.subjects))
        row["events"].append(group.events)
        row["owner"].append(_owner(d, first))
        row["penalties"].append(len(d.raw.penalties) if d.raw is not None else len(d.penalties))
        row["overdue"].append(sum(1 for o in d.obligations if o.status == "overdue"))
        row["violations"].append(len(d.violations))
        row["decision"].append("".join(_body(group, self._exclude)))
        if len(row["group"]) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._rows["group"]:
            table = self._pa.Table.from_pydict(self._rows, schema=self._schema)
            self._writer.write_table(table)
            for values in self._rows.values():
                values.clear()

    def close(self) -> None:
        self._flush()
        self._writer.close()


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"Parquet output needs pyarrow: {PARQUET_HINT}") from None
    return pa, pq


def format_of(out: str | Path | IO[str], format: Format | None) -> Format:
    """The format asked for, else the file's suffix (.parquet; anything else: JSON Lines)."""
    if format is not None:
        if format not in ("jsonl", "parquet"):
            raise ValueError(f"unknown format {format!r}: use 'jsonl' or 'parquet'")
        return format
    if isinstance(out, str | Path) and Path(out).suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    return "jsonl"


def evaluate_stream(
    policy: Program | HasProgram,
    events: Iterable[Any],
    out: str | Path | IO[str],
    *,
    as_of: str | Any | None = None,
    format: Format | None = None,
    backend: Backend = "python",
    max_span: int | None = MAX_SPAN_YEARS,
    exclude: Iterable[str] = (),
) -> Summary:
    """Stream ``events`` (grouped: see ``groups``) and write each group's decision to ``out``
    (a path, or for JSON Lines an open text file) as it completes. ``exclude``: decision
    fields left out of the output (``{"trace"}``, as ``eval --format json`` leaves it)."""
    fmt = format_of(out, format)
    if fmt == "parquet" and not isinstance(out, str | Path):
        raise ValueError("Parquet output needs a path")
    writer: Writer = (
        ParquetWriter(out, exclude)  # type: ignore[arg-type]
        if fmt == "parquet"
        else JsonLinesWriter(out, exclude)
    )
    summary = Summary()
    counted = _Counted(events)
    try:
        for g in groups(
            policy, counted, as_of=as_of, backend=backend, max_span=max_span, summary=summary
        ):
            writer.write(g)
    finally:
        writer.close()
    summary.events = counted.n
    return summary


class _Counted:
    """The events, counted as they are read."""

    def __init__(self, events: Iterable[Any]) -> None:
        self._events = events
        self.n = 0

    def __iter__(self) -> Iterator[Any]:
        for e in self._events:
            self.n += 1
            yield e


def read_back(path: str | Path) -> Iterator[dict[str, Any]]:
    """The rows a streamed evaluation wrote, as ``{"group", "subjects", "events", "decision"}``
    with the decision as JSON data, whichever the format (by suffix)."""
    if format_of(path, None) == "parquet":
        _, pq = _pyarrow()
        table = pq.ParquetFile(str(path))
        for batch in table.iter_batches(columns=["group", "subjects", "events", "decision"]):
            for row in batch.to_pylist():
                row["decision"] = json.loads(row["decision"])
                if row["group"] < 0:  # as the JSON line has it
                    row = {"group": row["group"], "final": True, **row}
                yield row
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
