"""What compiled closures can ask the world: owners, history queries, counters, subjects.

Every query reads the state only (``EngineState``); the ``World`` inherits them. History
queries walk the per-subject and per-type indexes backwards from the newest event, so a
window of the last days costs what it holds, not the whole history.

A query with no ``within``, ``since`` or ``last`` (issue 14) is answered from a memo per
(plan, subject value) instead: the history lists only ever grow at their end, so the memo
scans only the events appended since the last call and keeps counts (and, for ``sum`` of
``values``, exact running totals) per tuple of match values. Where a value could compare
differently in a dict than with ``==`` (unhashable, NaN, other types) the old path answers.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from decimal import Decimal, Inexact, localcontext
from typing import Any, Final

from policyengine.language.compiler import (
    CAction,
    CompiledPolicy,
    CPenalty,
    Ctx,
    HistoryPlan,
    SubjectView,
)
from policyengine.language.operators import as_number
from policyengine.runtime.events import Event
from policyengine.runtime.state import EngineState, period_of

# test seam: False answers every query by the scanning path (tests/test_linear_queries.py)
MEMOISE = True
# values whose dict lookup agrees with ``==`` (the numeric hashes agree across these types)
_KEYS: Final = frozenset({str, int, bool, float, Decimal, type(None)})
# exponents of summed numbers kept exact in the memo; others fall back to the scanning path
_EXP: Final = 60
_WIDE: Final = 400  # digits of the memo's exact running totals


class _Odd(Exception):
    """A value the memo cannot key or sum exactly: the plan keeps the scanning path."""


def _key(values: tuple[Any, ...]) -> tuple[Any, ...]:
    for v in values:
        if type(v) not in _KEYS or ((type(v) is float or type(v) is Decimal) and v != v):
            raise _Odd
    return values


class _Memo:
    """The events of a plan's lists scanned so far and what they added up to."""

    __slots__ = ("lists", "odd", "scanned", "table")

    def __init__(self, n: int) -> None:
        self.lists: list[list[Event] | None] = [None] * n
        self.scanned = [0] * n
        self.odd = False
        # match values -> count, or -> [total, sum of absolute values, least exponent]
        self.table: dict[tuple[Any, ...], Any] = {}


def _numbers_of(value: Any, flatten: bool) -> list[Decimal]:
    """The numbers ``operators._numbers`` takes from one event's field value: a list is
    flattened when the ``values`` query is the fold's operand itself, skipped inside a list."""
    items = value if flatten and isinstance(value, list | tuple) else (value,)
    out = []
    for v in items:
        n = as_number(v)
        if n is not None:
            if not n.is_finite() or not -_EXP <= n.as_tuple().exponent <= _EXP:  # type: ignore[operator]
                raise _Odd
            out.append(n)
    return out


class Queries(EngineState):
    """The read side of the World (``WorldView`` of the compiled closures)."""

    __slots__ = ()

    def owner_of(self, subject: Any) -> str | None:
        s = self.subjects.get(subject) if isinstance(subject, str) else None
        return s.owner if s is not None else None

    # -- a ladder's earlier offences (``World.penalize``; the shards' ``penalized``)
    def ladder_bounds(self, p: CPenalty) -> tuple[int, int] | None:
        """``(lower, exact_from)`` of the earlier offences that count now: none before
        ``lower``, every one from ``exact_from`` on, and one between when the window
        ``covers`` it (month ends); None: the whole history counts."""
        if p.window is not None:
            return p.window.look_back(self.now, self.tz, self.cal, self.calendar_guesses)
        if p.per is not None:
            start = period_of(p.per, self.now, self.tz).start
            return start, start
        return None

    def offences_in(self, p: CPenalty, log: list[int]) -> int:
        """The earlier offences (instants ``log``, in order) that count for this one."""
        bounds = self.ladder_bounds(p)
        if bounds is None:
            return len(log)
        lower, exact = bounds
        low, ex = bisect.bisect_left(log, lower), bisect.bisect_left(log, exact)
        n = len(log) - ex
        w = p.window
        if w is not None:
            now, tz, cal, seen = self.now, self.tz, self.cal, self.calendar_guesses
            n += sum(1 for at in log[low:ex] if w.covers(at, now, tz, cal, seen))
        return n

    def history(self, plan: HistoryPlan, ctx: Ctx) -> Iterator[Event]:
        within = plan.within
        now = ctx.now
        lower = exact_from = -(2**62)
        if within is not None:
            lower, exact_from = within.look_back(now, self.tz, self.cal, self.calendar_guesses)
        if plan.since is not None:
            since = plan.since(ctx)
            if isinstance(since, int) and since > lower:
                lower = since
                if within is None:
                    exact_from = lower
        if plan.subject is not None:
            sv = plan.subject(ctx)
            lists = [self.hist_subj.get((sv, t)) for t in plan.types]
        else:
            lists = [self.hist_type.get(t) for t in plan.types]
        match = [(f, g(ctx)) for f, g in plan.match]
        if plan.last is not None:
            found = [
                ev
                for lst in lists
                if lst
                for ev in lst
                if ev["at"] >= lower
                and (
                    ev["at"] >= exact_from
                    or within is None
                    or within.covers(ev["at"], now, self.tz, self.cal, self.calendar_guesses)
                )
                and all(ev.get(f) == v for f, v in match)
            ]
            found.sort(key=lambda ev: ev["at"], reverse=True)  # stable: input order kept on ties
            yield from found[: plan.last]
            return
        for lst in lists:
            if not lst:
                continue
            for ev in reversed(lst):
                at = ev["at"]
                if at < lower:
                    break
                if (
                    at < exact_from
                    and within is not None
                    and not within.covers(at, now, self.tz, self.cal, self.calendar_guesses)
                ):
                    continue
                if all(ev.get(f) == v for f, v in match):
                    yield ev

    def _memo(
        self, plan: HistoryPlan, ctx: Ctx, tag: Any, add: Any
    ) -> tuple[_Memo, tuple[Any, ...]] | None:
        """The plan's memo brought up to date (``add(table, key, event)`` per new event), and
        the match values of this call; None: the scanning path answers."""
        if plan.subject is not None:
            sv = plan.subject(ctx)
            lists = [self.hist_subj.get((sv, t)) for t in plan.types]
        else:
            sv = None
            lists = [self.hist_type.get(t) for t in plan.types]
        try:
            want = _key(tuple(g(ctx) for _, g in plan.match))
        except _Odd:
            return None
        mkey = (id(plan), tag, sv)
        memo = self.memo.get(mkey)
        if memo is None:
            memo = self.memo[mkey] = _Memo(len(lists))
        if memo.odd:
            return None
        fields = [f for f, _ in plan.match]
        table = memo.table
        for i, lst in enumerate(lists):
            if lst is None:
                continue
            done = memo.scanned[i]
            if memo.lists[i] is not lst or len(lst) < done:
                if done:  # a list replaced: start again
                    del self.memo[mkey]
                    return self._memo(plan, ctx, tag, add)
                memo.lists[i] = lst
            n = len(lst)
            if n == done:
                continue
            self.scanned += n - done  # type: ignore[misc]
            try:
                for ev in lst[done:n]:
                    add(table, _key(tuple(ev.get(f) for f in fields)), ev)
            except (_Odd, ArithmeticError):  # a total too wide to keep exact, too
                memo.odd = True
                table.clear()
                return None
            memo.scanned[i] = n
        return memo, want

    def history_count(self, plan: HistoryPlan, ctx: Ctx) -> int:
        """How many events ``history(plan, ctx)`` yields."""
        if MEMOISE and plan.within is None and plan.since is None and plan.last is None:
            got = self._memo(plan, ctx, None, _count)
            if got is not None:
                memo, want = got
                n: int = memo.table.get(want, 0)
                return n
        n = 0
        for _ in self.history(plan, ctx):
            self.scanned += 1  # type: ignore[misc]
            n += 1
        return n

    def history_any(self, plan: HistoryPlan, ctx: Ctx) -> bool:
        """Whether ``history(plan, ctx)`` yields an event."""
        if MEMOISE and plan.within is None and plan.since is None and plan.last is None:
            got = self._memo(plan, ctx, None, _count)
            if got is not None:
                memo, want = got
                return want in memo.table
        self.scanned += 1  # type: ignore[misc]
        return next(iter(self.history(plan, ctx)), None) is not None

    def values_total(
        self, plan: HistoryPlan, field: str, flatten: bool, ctx: Ctx
    ) -> tuple[Decimal, Decimal, int] | None:
        """The exact sum of the numbers of ``field`` over ``history(plan, ctx)``, the sum of
        their absolute values and their least exponent (0 at most); None: not memoised."""
        if not MEMOISE or plan.within is not None or plan.since is not None:
            return None
        if plan.last is not None:
            return None

        def add(table: dict[tuple[Any, ...], Any], key: tuple[Any, ...], ev: Event) -> None:
            nums = _numbers_of(ev.get(field), flatten)
            if not nums:
                table.setdefault(key, [Decimal(0), Decimal(0), 0])
                return
            row = table.get(key)
            if row is None:
                row = table[key] = [Decimal(0), Decimal(0), 0]
            with localcontext() as wide:
                wide.prec = _WIDE
                wide.traps[Inexact] = True
                for x in nums:
                    row[0] += x
                    row[1] += abs(x)
                    e = x.as_tuple().exponent
                    if isinstance(e, int) and e < row[2]:
                        row[2] = e

        got = self._memo(plan, ctx, ("sum", field, flatten), add)
        if got is None:
            return None
        memo, want = got
        row = memo.table.get(want)
        if row is None:
            return Decimal(0), Decimal(0), 0
        return row[0], row[1], row[2]

    def subject_view(self, sid: str) -> SubjectView | None:
        return self.subjects.get(sid)

    def owners(self, kind: str) -> list[str]:
        return sorted(
            o for o, ids in self.owned_by.items() if ids and (kind == "any" or o != "company")
        )

    def party_counter(self, party: str, name: str) -> Decimal:
        return self.party_counters.get(party, {}).get(name, Decimal(0))

    def parties_with(self, name: str) -> list[str]:
        return sorted(p for p, table in self.party_counters.items() if table.get(name))

    def metric_value(self, metric: str, party: Any) -> Decimal | None:
        return self.period_values.get((metric, str(party)))

    def added(self, name: str, key: Any, start: int | None, end: int | None) -> Decimal:
        total = Decimal(0)
        for at, by in self.counter_log.get((str(key), name), ()):
            if (start is None or at >= start) and (end is None or at < end):
                total += by
        return total

    def subjects_with(self, kind: str, owner: Any = None) -> list[str]:
        if owner is not None:
            ids = self.owned_by.get(owner, ())
            if kind == "company" and owner != "company":
                return []
            return sorted(ids)
        subjects = self.subjects.values()
        if kind == "any":
            return sorted(s.id for s in subjects)
        if kind == "owned":
            return sorted(s.id for s in subjects if s.owner is not None)
        if kind == "company":
            return sorted(s.id for s in subjects if s.owner == "company")
        return sorted(s.id for s in subjects if s.owner not in (None, "company"))


def _count(table: dict[tuple[Any, ...], Any], key: tuple[Any, ...], ev: Event) -> None:
    table[key] = table.get(key, 0) + 1


def counted_keys(policy: CompiledPolicy) -> frozenset[str]:
    """The ladder keys (``ladder_key``, else the rule's id) of the penalties that count their
    offences in a window or per period: the engine logs every offence under those keys."""
    out: set[str] = set()

    def walk(actions: tuple[CAction, ...], rule: str) -> None:
        for a in actions:
            p = a.penalty
            if p is not None and (p.window is not None or p.per is not None):
                out.add(p.ladder_key or rule)
            e = a.expect
            if e is not None:  # its branches run under the creating rule
                for branch in (e.met, e.late, e.missed, e.out_of_order):
                    walk(branch, rule)

    for r in policy.rules:
        walk(r.actions, r.id)
    return frozenset(out)
