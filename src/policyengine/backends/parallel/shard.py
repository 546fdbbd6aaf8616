"""A shard: the ordinary engine on some subjects' events, observed through hooks that record
what phase 2 (``merge``) needs: every step's place in the global order, which entries came
from steps without a subject, each penalty with all its ladder steps, each party counter
increment (the design: ``docs/parallel.md``)."""

from __future__ import annotations

import time
from collections import namedtuple
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final

from policyengine.errors import EvaluationError
from policyengine.language.compiler import (
    CAction,
    CompiledPolicy,
    CompiledRule,
    CPenalty,
    Ctx,
    walk_actions,
)
from policyengine.runtime.engine import World
from policyengine.runtime.evaluate import run
from policyengine.runtime.events import prepare
from policyengine.runtime.records import ObligationRecord, PenaltyRow
from policyengine.runtime.state import (
    MAX_SPAN_YEARS,
    RECORDS,
    STEPPED,
    Alarm,
    Chain,
    Close,
    Hooks,
    Pending,
    Renew,
    Subject,
    Tick,
    Timer,
)

if TYPE_CHECKING:
    from policyengine.language.program import Program

_FINISH = 2**62  # the position of the closes at as_of: after every step
# the lengths recorded at the start of every step: the engine's declared stepped state
_MARKS = len(STEPPED)


def _index_compiled(policy: CompiledPolicy) -> tuple[dict[int, int], dict[int, int]]:
    """A stable number for every expectation and action of the compiled rules (the same in
    every process that compiled the same policy): they order work within one step."""
    specs: dict[int, int] = {}
    acts: dict[int, int] = {}
    for a in walk_actions(policy):
        acts.setdefault(id(a), len(acts))
        if a.expect is not None:
            specs.setdefault(id(a.expect), len(specs))
    return specs, acts


@dataclass
class LadderRecord:
    """One penalty as a shard saw it: phase 2 numbers it among the party's offences."""

    step: int
    intra: Any
    row: int  # index in the shard's penalties
    trace: int  # index in the shard's trace
    key: tuple[str, str]  # (ladder key or rule id, party)
    outcomes: list[tuple[PenaltyRow, dict[str, Any]] | None]  # per step; None: error
    replicated: bool
    # a ladder counted in a window or per period: ``World.ladder_bounds`` at the offence
    bounds: tuple[int, int] | None = None


@dataclass
class AddRecord:
    """One increment of a party counter: phase 2 sums them in order."""

    step: int
    intra: Any
    key: tuple[str, str]  # (party, counter)
    by: Decimal
    at: int
    trace: int
    replicated: bool


class ShardHooks(Hooks):
    """The engine's hooks in a shard: native matching, and the bookkeeping of phase 2.

    Steps are numbered in the shard. An event step is ``2*at`` and its input index; a timer
    step is its heap key, the index of the step that pushed it (-1: before the first event) and
    ``j``, its order among that step's pushes (see ``docs/parallel.md``).
    """

    def __init__(
        self,
        policy: CompiledPolicy,
        gidx: dict[str, int],
        first: int | None,
        specs: dict[int, int],
        acts: dict[int, int],
    ) -> None:
        self.policy = policy
        self.world: World | None = None  # the World observed (``bind``)
        self._gidx = gidx
        self._first = first
        self._specs = specs
        self._acts = acts
        # one entry per step, in flat lists of numbers: nothing for the cyclic GC to walk
        self.s_key: list[int] = []  # 2*at for an event, the heap key for a timer
        self.s_ref: list[int] = []  # the event's input index; the pushing step (-1: none)
        self.s_j: list[Any] = []  # a timer's order among its pusher's pushes
        self.s_flag = bytearray()  # 1: an event (else a timer); 2: a step without a subject
        self.marks: list[int] = []  # the STEPPED lengths at the start of each step
        self._cur = -1
        self._cur_repl = True
        self._c = 0
        self._bc: dict[tuple[int, str], int] | None = None
        self._pc: dict[Any, int] | None = None
        self._born: dict[int, int] = {}
        self._born_j: dict[int, Any] = {}
        self._chain_last: dict[int, tuple[int, Any]] = {}
        self._tick_from: dict[tuple[str, str], tuple[int, Any]] = {}
        self._outcomes: list[tuple[PenaltyRow, dict[str, Any]] | None] = []
        self.repl_obligations: list[int] = []
        self.ladder: list[LadderRecord] = []
        self.adds: list[AddRecord] = []
        self.closes: list[tuple[int, Tick, int, bool]] = []
        self.fired_repl: dict[str, int] = {}
        self.applied = False

    def bind(self, world: Any) -> None:
        assert isinstance(world, World)
        self.world = world

    # -- steps
    def _begin(self, key: int, ref: int, j: Any, flag: int) -> None:
        w = self.world
        assert w is not None
        self.s_key.append(key)
        self.s_ref.append(ref)
        self.s_j.append(j)
        self.s_flag.append(flag)
        self.marks += [len(getattr(w, name)) for name in STEPPED]
        self._cur += 1
        self._cur_repl = bool(flag & 2)
        self._c = 0
        self._bc = None
        self._pc = None

    def event(self, ev: Mapping[str, Any]) -> None:
        self.applied = True
        self._begin(
            2 * ev["at"],
            self._gidx[ev["id"]],
            0,
            1 if isinstance(ev.get(self.policy.subject_field), str) else 3,
        )

    def timer(self, key: int, entry: Timer) -> None:
        j: Any
        if isinstance(entry, Pending):
            pusher = self._born.pop(id(entry))
            j = self._born_j.pop(id(entry))
            replicated = entry.subject_id is None
        elif isinstance(entry, Renew):
            pusher, j = self._chain_last[id(entry.chain)]
            # pushed right after the chain's latest duty, in the same step
            j = (*j[:-1], 1) if isinstance(j, tuple) else j + 1
            replicated = entry.chain.subject_id is None
        elif isinstance(entry, Alarm):
            raise AssertionError("a timer in a shard: the plan refuses policies with timers")
        else:
            kind = ("tick", entry.unit) if isinstance(entry, Tick) else ("close", entry.tick.unit)
            pusher, j = self._tick_from[kind]
            replicated = True
        self._begin(key, pusher, j, 2 if replicated else 0)
        if isinstance(entry, Tick):
            self._tick_from[("tick", entry.unit)] = (self._cur, (2, 0, "", 0, 0))
        elif isinstance(entry, Close):
            self._tick_from[("close", entry.tick.unit)] = (self._cur, (2, 0, "", 0, 0))

    def first_period(self, first: int) -> int:
        """Periods start from the first event of the whole history, in every shard."""
        k = 0
        for unit in self.policy.periodic:
            self._tick_from[("tick", unit)] = (-1, (2, k, "", 0, 0))
            k += 1
        for unit in sorted({mt.every for mt in self.policy.metrics}):
            self._tick_from[("close", unit)] = (-1, (2, k, "", 0, 0))
            k += 1
        return self._first if self._first is not None else first

    def duty(self, p: Pending, chain: Chain | None, obligation: int | None) -> None:
        sid = p.subject_id
        e = p.spec
        j: Any
        if self._cur_repl:
            # every shard runs this step: order pushes by (expectation, subject), which the
            # shards agree on, not by a count that differs with each shard's subjects
            if self._bc is None:
                self._bc = {}
            k = (self._specs[id(e)], sid or "")
            c = self._bc.get(k, 0)
            self._bc[k] = c + 1
            j = (1, k[0], k[1], c, 0)
        else:
            j = 2 * self._c
            self._c += 1
        self._born[id(p)] = self._cur
        self._born_j[id(p)] = j
        if chain is not None and e.every is not None:
            self._chain_last[id(chain)] = (self._cur, j)
        if sid is None and obligation is not None:
            self.repl_obligations.append(obligation)

    def closing(self, tick: Tick, at: int, complete: bool) -> None:
        self.closes.append((self._cur if complete else _FINISH, tick, at, complete))

    def resolved(self, matched: list[CompiledRule], ctx: Ctx) -> None:
        if ctx.subject_id is None and matched:
            for r in matched:
                self.fired_repl[r.id] = self.fired_repl.get(r.id, 0) + 1

    def _intra(self, a: CAction, sid: str | None) -> Any:
        """Order within one step: as ``j`` for pushes (see ``duty``)."""
        if self._pc is None:
            self._pc = {}
        k: Any = (self._acts[id(a)], sid or "") if self._cur_repl else None
        c = self._pc.get(k, 0)
        self._pc[k] = c + 1
        return c if k is None else (1, k[0], k[1], c)

    # -- penalties: every ladder step's outcome, numbered in phase 2
    def sentence(
        self,
        world: Any,
        p: Any,
        party: str,
        count: int,
        ctx: Ctx,
        rule: CompiledRule,
        causes: tuple[str, ...],
    ) -> tuple[PenaltyRow, dict[str, Any]]:
        assert isinstance(p, CPenalty)
        outcomes: list[tuple[PenaltyRow, dict[str, Any]] | None] = []
        error: EvaluationError | None = None
        for i in range(len(p.steps) if p.ladder else 1):
            try:
                outcomes.append(world.sentence(p, i, i + 1, party, ctx, rule, causes))
            except EvaluationError as exc:
                if not p.ladder:
                    raise  # its only step: one process stops here too
                outcomes.append(None)
                error = exc
        shown = outcomes[min(count, len(outcomes) - 1)]
        if shown is None:
            shown = next((o for o in outcomes if o is not None), None)
        if shown is None:  # every step fails: whichever phase 2 picks, one process stops here
            assert error is not None
            raise error
        self._outcomes = outcomes
        return shown

    def penalized(self, a: Any, ctx: Ctx, key: tuple[str, str], row: int, trace: int) -> None:
        assert self.world is not None
        self.ladder.append(
            LadderRecord(
                self._cur,
                self._intra(a, ctx.subject_id),
                row,
                trace,
                key,
                self._outcomes,
                ctx.subject_id is None,
                self.world.ladder_bounds(a.penalty),
            )
        )

    # -- party counters: each increment, summed in phase 2
    def added(
        self, a: Any, ctx: Ctx, key: tuple[str, str], by: Decimal, at: int, trace: int
    ) -> None:
        self.adds.append(
            AddRecord(
                self._cur,
                self._intra(a, ctx.subject_id),
                key,
                by,
                at,
                trace,
                ctx.subject_id is None,
            )
        )


@dataclass
class ShardResult:
    """What one shard decided, as plain data for phase 2 (see ``ShardHooks``)."""

    s_key: list[int]
    s_ref: list[int]
    s_j: list[Any]
    s_flag: bytes
    marks: list[int]  # _MARKS ints per step, in the order of ``STEPPED``
    subjects: dict[str, Subject]
    records: dict[str, list[Any]]  # every record of the World, by its declared name
    repl_obligations: list[int]
    ladder: list[LadderRecord]
    adds: list[AddRecord]
    closes: list[tuple[int, Tick, int, bool]]
    fired: dict[str, int]
    fired_repl: dict[str, int]
    calendar_guesses: dict[int, bool]  # years counted Monday-Friday (a notice)
    labels: dict[str, dict[str, Any]]
    broken: dict[str, list[str]]
    applied: bool
    events: int = 0
    seconds: float = 0.0
    reported: bool = False  # obligations as decisions show them (``ObligationRow``)
    engine: str = "python"  # or "native": the Rust core evaluated it (``native_shard``)
    why: str | None = None  # why the core did not, where it was asked to


def evaluate_shard(
    policy: Program,
    events: Sequence[tuple[int, Mapping[str, Any]]],
    horizon: int | None,
    first: int | None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> ShardResult:
    """Evaluate one shard: ``events`` are ``(global input index, event)`` in input order, each
    with its id; ``horizon`` is the whole history's, ``first`` its first applied instant."""
    started = time.process_time()
    compiled = policy.compiled
    gidx: dict[str, int] = {}
    raws: list[Mapping[str, Any]] = []
    for index, raw in events:
        gidx[str(raw["id"])] = index
        raws.append(raw)
    history = prepare(compiled, raws)
    specs, acts = _index_compiled(compiled)
    hooks = ShardHooks(compiled, gidx, first, specs, acts)
    w = run(compiled, history, horizon, hooks, max_span)
    unbound = [lab.name for lab in compiled.labels if not lab.on]
    labels = (
        {sid: {n: w.labels.get(sid, {}).get(n) for n in unbound} for sid in w.subjects}
        if unbound
        else {}
    )
    return ShardResult(
        s_key=hooks.s_key,
        s_ref=hooks.s_ref,
        s_j=hooks.s_j,
        s_flag=bytes(hooks.s_flag),
        marks=hooks.marks,
        subjects=w.subjects,
        records={name: getattr(w, name) for name in RECORDS},
        repl_obligations=hooks.repl_obligations,
        ladder=hooks.ladder,
        adds=hooks.adds,
        closes=hooks.closes,
        fired=w.fired,
        fired_repl=hooks.fired_repl,
        calendar_guesses=dict(w.calendar_guesses),
        labels=labels,
        broken=w.broken,
        applied=hooks.applied,
        events=len(raws),
        seconds=time.process_time() - started,
    )


# -- a shard's result as it travels from a worker: rows as plain tuples
#
# Pickle writes a named tuple or a dataclass row through Python-level hooks (``__getnewargs__``,
# ``__reduce_ex__``, the instance dict) and reads it back through its Python ``__new__``: for
# the tens of thousands of rows of a shard that cost more than the worker's last quarter of
# evaluation and, in the caller, serial time. Plain tuples pickle in C, and the caller makes
# named rows of them again with ``tuple.__new__`` (C as well). Records whose class is not a
# tuple (an obligation, a ladder or counter record) come back as named tuples with the same
# field names: the merge and the decision read them by name only, after every change is made.
_namedtuple: Any = namedtuple  # field names read off the classes below, not literals
_VIEWS: Final[dict[str, Any]] = {
    cls.__name__: _namedtuple(cls.__name__ + "View", [f.name for f in fields(cls)])
    for cls in (ObligationRecord, LadderRecord, AddRecord)
}
_TUPLE, _VIEW, _AS_IS = 0, 1, 2


def _pack_rows(rows: list[Any]) -> tuple[int, Any, list[Any]]:
    kinds = set(map(type, rows))
    if len(kinds) != 1:
        return (_AS_IS, None, rows)
    (cls,) = kinds
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return (_TUPLE, cls, list(map(tuple, rows)))
    view = _VIEWS.get(cls.__name__)
    if view is not None and cls in (ObligationRecord, LadderRecord, AddRecord):
        return (_VIEW, cls.__name__, list(map(attrgetter(*view._fields), rows)))
    return (_AS_IS, None, rows)


def _unpack_rows(packed: tuple[int, Any, list[Any]]) -> list[Any]:
    how, cls, rows = packed
    if how == _TUPLE:
        return list(map(partial(tuple.__new__, cls), rows))
    if how == _VIEW:
        return list(map(partial(tuple.__new__, _VIEWS[cls]), rows))
    return rows


def pack(res: ShardResult) -> tuple[Any, ...]:
    """What a worker sends: the result with its rows as plain tuples (see above)."""
    return (
        replace(res, records={}, ladder=[], adds=[]),
        {name: _pack_rows(rows) for name, rows in res.records.items()},
        _pack_rows(res.ladder),
        _pack_rows(res.adds),
    )


def unpack(packed: tuple[Any, ...]) -> ShardResult:
    """The caller's side of ``pack``."""
    res, records, ladder, adds = packed
    assert isinstance(res, ShardResult)
    res.records = {name: _unpack_rows(rows) for name, rows in records.items()}
    res.ladder = _unpack_rows(ladder)
    res.adds = _unpack_rows(adds)
    return res
