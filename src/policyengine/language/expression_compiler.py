"""Stage 3, compile: operands and conditions -> closures over a ``Ctx``.

Parameters, durations and money are resolved here, once, and references (``$event.channel``,
``$params.preheat_window``) are checked against the declared event fields and parameters, so a
typo is a load error at its ``file:line:col``, not a silent ``None`` at run time. Evaluation
never interprets YAML and never calls ``eval``. ``ExpressionCompiler`` is a ``Visitor``: one
``visit_<Model>`` per operand and condition model; ``compiler`` builds rules on top of it.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, Decimal, getcontext, localcontext
from typing import Any, Final

from pydantic import BaseModel

from policyengine.calendars import Calendar, clock_text, parse_clock
from policyengine.errors import Code, Location, ProblemSink, did_you_mean
from policyengine.language import model as m
from policyengine.language.compiled import (
    BUILTIN_FIELDS,
    OWNER_CHANGED,
    Ctx,
    Getter,
    HistoryPlan,
    Pred,
)
from policyengine.language.declarations import (
    MAX_DURATION_DAYS,
    MAX_DURATION_TEXT,
    parse_bounded_duration,
)
from policyengine.language.loader import Path_
from policyengine.language.operators import (
    _ARITH,
    _FOLDS,
    _comparison,
    _conjunction,
    _disjunction,
    _equal,
    _literal_equality,
    _numbers,
    as_number,
)
from policyengine.language.validate import PolicySet, RuleSite
from policyengine.language.visitor import Visitor
from policyengine.times import WORKING_US, Duration, instant_us, parse_duration, to_local


@dataclass
class Scope:
    """Which event types `$event` and `$trigger` can be, to check field references."""

    event: tuple[str, ...] | None
    trigger: tuple[str, ...] | None
    item: bool = False
    party: bool = False
    metrics: frozenset[str] = frozenset()  # metric ids `{metric: ...}` may read here


class ExpressionCompiler(Visitor[Any]):
    """Compiles values (``operand``) and conditions (``condition``) met at one site (a rule,
    label, metric...): ``site`` and ``site_root`` say where, for the error positions."""

    def __init__(self, pset: PolicySet, params: dict[str, Any], sink: ProblemSink) -> None:
        self.pset = pset
        self.params = params
        self.sink = sink
        self.site: RuleSite | None = None
        self.site_root: Path_ = ()
        self.subject_field = pset.meta.subject
        self.expanding: tuple[str, ...] = ()  # the named conditions being compiled, outermost first

    # -- helpers
    def loc(self, path: Path_, key: bool = False) -> Location:
        assert self.site is not None
        if self.site.index < 0:  # a label or a metric, not a rule
            return self.site.source.locate((*self.site_root, *path), key=key)
        return self.site.locate(*path, key=key)

    def error(
        self,
        code: str,
        msg: str,
        path: Path_,
        hint: str | None = None,
        key: bool = False,
    ) -> None:
        self.sink.add(code, msg, self.loc(path, key), hint)

    def fields_of(self, types: tuple[str, ...]) -> AbstractSet[str]:
        """Fields every one of ``types`` has. An undeclared type (already reported) is taken
        to have any field, so one misspelt type does not bring a cascade of field errors."""
        common: set[str] | None = None
        if any(
            t not in self.pset.events and not t.startswith("@") and t != OWNER_CHANGED
            for t in types
        ):
            return _ANY_FIELD
        for t in types:
            if t.startswith("@"):  # a calendar tick (`every:`) carries its period
                names = {"period", "start", "end"}
                common = names if common is None else common & names
                continue
            if t == OWNER_CHANGED and t not in self.pset.events:
                names = {self.subject_field, "owner", "previous"}
                common = names if common is None else common & names
                continue
            et = self.pset.events.get(t)
            names = set(et.fields) if et else set()
            common = names if common is None else common & names
        return (common or set()) | set(BUILTIN_FIELDS)

    def check_types(self, types: tuple[str, ...], path: Path_) -> None:
        for i, t in enumerate(types):
            if t not in self.pset.events and t not in self.pset.broken and t != OWNER_CHANGED:
                p = path if len(types) == 1 else (*path, i)
                self.error(
                    Code.UNDECLARED_EVENT_TYPE,
                    f"unknown event type {t!r}",
                    p,
                    did_you_mean(t, self.pset.events) or "declare it under `events:`",
                )

    def duration(self, text: str | None, path: Path_) -> Duration | None:
        if text is None:
            return None
        if m.is_reference(text):
            value = self.param_value(text, path)
            if value is None:
                return None
            if not isinstance(value, Duration):
                self.error(Code.BAD_VALUE, f"{text} is not a duration parameter", path)
                return None
            return value  # checked against the business hours where it is declared
        try:
            return self.bounded(parse_bounded_duration(text), path)
        except ValueError as exc:
            self.error(Code.BAD_QUANTITY, str(exc), path)
            return None

    def bounded(self, duration: Duration, path: Path_) -> Duration | None:
        problem = too_long_for_hours(duration, self.pset.calendar)
        if problem is not None:
            self.error(Code.BAD_QUANTITY, problem, path)
            return None
        return duration

    # -- kinds: what a value can be, known at load (for windows, `plus`, times of day)
    def kind_of(self, op: Any, scope: Scope) -> str:
        """``instant``, ``date``, ``duration``, ``time_of_day``, ``number``, ``text``,
        ``bool``, ``list``, ``null`` or ``any`` (not known before evaluation: a flag, an item)."""
        if isinstance(op, BaseModel):
            if isinstance(op, m.Coalesce):
                kinds = {self.kind_of(x, scope) for x in op.coalesce} - {"null"}
                return kinds.pop() if len(kinds) == 1 else "any"
            if isinstance(op, m.Plus):  # a date plus days is a date (issue 16)
                return "date" if self.kind_of(op.plus[0], scope) == "date" else "instant"
            if isinstance(op, m.First) and isinstance(op.first, m.Values):  # a field's kind
                q = op.first.values
                types = (q.type,) if isinstance(q.type, str) else tuple(q.type)
                return self._reference_kind(f"$event.{q.field}", Scope(types, None))
            return _MODEL_KINDS.get(type(op), "any")
        if isinstance(op, bool):
            return "bool"
        if isinstance(op, int | float):
            return "number"
        if op is None:
            return "null"
        if isinstance(op, list):
            return "list"
        if not isinstance(op, str) or op.startswith("$$"):
            return "text"
        if not m.is_reference(op):
            try:
                parse_duration(op)
            except ValueError:
                return "text"
            return "duration"
        return self._reference_kind(op, scope)

    def _reference_kind(self, ref: str, scope: Scope) -> str:
        parts = ref[1:].split(".")
        root, rest = parts[0], parts[1:]
        if root == "now":
            return "instant"
        if root == "params" and len(rest) == 1:
            value = self.params.get(rest[0])
            if isinstance(value, Duration):
                return "duration"
            return "any" if value is None else "text" if isinstance(value, str) else "number"
        if root in ("event", "trigger") and len(rest) == 1:
            types = scope.event if root == "event" else scope.trigger
            name = rest[0]
            if name == "at":
                return "instant"
            if name in ("id", "type"):
                return "text"
            kinds = set()
            for t in types or ():
                spec = self.pset.events[t].fields.get(name) if t in self.pset.events else None
                kinds.add(_FIELD_KINDS.get(spec.type, "any") if spec is not None else "any")
            return kinds.pop() if len(kinds) == 1 else "any"
        if root == "subject":
            if rest == ["owner_since"]:
                return "instant"
            if rest and rest[0] == "counters":
                return "number"
            if rest and rest[0] == "flags":
                return "any"
            return "text"
        return "any"

    def expect_kind(
        self, op: Any, scope: Scope, allowed: AbstractSet[str], what: str, path: Path_
    ) -> bool:
        """Reports PE118 when ``op`` cannot be one of ``allowed`` kinds."""
        kind = self.kind_of(op, scope)
        if kind == "any" or kind in allowed:
            return True
        self.error(
            Code.WRONG_KIND,
            f"{what} takes {_choices(allowed)}, but {_show(op)} is {_article(kind)}",
            path,
        )
        return False

    def param_value(self, ref: str, path: Path_) -> Any:
        parts = ref[1:].split(".")
        if parts[0] != "params" or len(parts) != 2:
            self.error(
                Code.BAD_REFERENCE, f"{ref!r} must be a parameter reference like $params.name", path
            )
            return None
        if parts[1] not in self.params:
            if parts[1] in self.pset.broken:
                return None
            self.error(
                Code.UNKNOWN_PARAMETER,
                f"unknown parameter {parts[1]!r}",
                path,
                did_you_mean(parts[1], self.params) or "declare it under `params:`",
            )
            return None
        return self.params[parts[1]]

    # -- values
    def operand(self, op: Any, path: Path_, scope: Scope) -> Getter:
        if isinstance(op, BaseModel):
            getter: Getter = self.visit(op, path, scope)
            return getter
        if isinstance(op, list):
            items = [self.operand(x, (*path, i), scope) for i, x in enumerate(op)]
            if all(not m.is_reference(x) and not isinstance(x, list | BaseModel) for x in op):
                frozen = [Decimal(str(x)) if isinstance(x, float) else x for x in op]
                return lambda c: frozen
            return lambda c: [g(c) for g in items]
        if isinstance(op, str) and op.startswith("$$"):
            lit = op[1:]
            return lambda c: lit
        if m.is_reference(op):
            return self.reference(op, path, scope)
        if isinstance(op, float):
            dec = Decimal(str(op))
            return lambda c: dec
        value = op
        return lambda c: value

    def visit_OwnerOf(self, op: m.OwnerOf, path: Path_, scope: Scope) -> Getter:
        inner = self.operand(op.owner_of, (*path, "owner_of"), scope)
        return lambda c: c.world.owner_of(inner(c))

    def visit_Claims(self, op: m.Claims, path: Path_, scope: Scope) -> Getter:
        status = op.claims
        if status == "any":
            return lambda c: list(c.subj.claims) if c.subj is not None else []
        return lambda c: (
            [e for e, s in c.subj.claims.items() if s == status] if c.subj is not None else []
        )

    def visit_Subjects(self, op: m.Subjects, path: Path_, scope: Scope) -> Getter:
        kind = op.subjects
        owner = self.operand(op.owner, (*path, "owner"), scope) if op.owner is not None else None
        if op.where is None:
            if owner is None:
                return lambda c: c.world.subjects_with(kind)
            return lambda c: c.world.subjects_with(kind, owner(c))
        keep = self.condition(op.where, (*path, "where"), scope)

        def subjects(c: Ctx) -> list[str]:
            ids = c.world.subjects_with(kind, owner(c) if owner is not None else None)
            out = []
            for sid in ids:
                sub = Ctx(c.world, c.now, c.event, c.trigger, sid, c.world.subject_view(sid))
                sub.party, sub.item = c.party, c.item
                if keep(sub):
                    out.append(sid)
            return out

        return subjects

    def visit_Owners(self, op: m.Owners, path: Path_, scope: Scope) -> Getter:
        owners_kind = op.owners
        return lambda c: c.world.owners(owners_kind)

    def visit_Coalesce(self, op: m.Coalesce, path: Path_, scope: Scope) -> Getter:
        options = [
            self.operand(x, (*path, "coalesce", i), scope) for i, x in enumerate(op.coalesce)
        ]

        def coalesce(c: Ctx) -> Any:
            for g in options:
                v = g(c)
                if v is not None:
                    return v
            return None

        return coalesce

    def visit_Date(self, op: m.Date, path: Path_, scope: Scope) -> Getter:
        instant = self.operand(op.date, (*path, "date"), scope)
        tz_name = self.pset.meta.timezone

        def local_date(c: Ctx) -> Any:
            v = instant(c)
            return to_local(v, tz_name).date().isoformat() if isinstance(v, int) else None

        return local_date

    def visit_TimeOfDay(self, op: m.TimeOfDay, path: Path_, scope: Scope) -> Getter:
        where = (*path, "time_of_day")
        self.expect_kind(op.time_of_day, scope, {"instant"}, "time_of_day", where)
        instant = self.operand(op.time_of_day, where, scope)
        tz_name = self.pset.meta.timezone

        def time_of_day(c: Ctx) -> Any:
            v = instant(c)
            if not isinstance(v, int) or isinstance(v, bool):
                return None
            t = to_local(v, tz_name)
            return clock_text(
                ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond
            )

        return time_of_day

    def visit_Values(self, op: m.Values, path: Path_, scope: Scope) -> Getter:
        return self._values(op, path, scope)[1]

    def _values(self, op: m.Values, path: Path_, scope: Scope) -> tuple[HistoryPlan, Getter]:
        vplan = self.history_plan(op.values, (*path, "values"), scope)
        fname = op.values.field
        if fname not in self.fields_of(vplan.types):
            self.error(
                Code.UNDECLARED_EVENT_FIELD,
                f"event field {fname!r} is not declared for {', '.join(vplan.types)}",
                (*path, "values", "field"),
            )
        return vplan, lambda c: [ev.get(fname) for ev in c.world.history(vplan, c)]

    def visit_CounterValue(self, op: m.CounterValue, path: Path_, scope: Scope) -> Getter:
        cname = op.counter

        def counter_value(c: Ctx) -> Decimal:
            if c.party is not None:
                return c.world.party_counter(str(c.party), cname)
            if c.subj is not None:
                return c.subj.counters.get(cname, Decimal(0))
            return Decimal(0)

        return counter_value

    def visit_PartiesWith(self, op: m.PartiesWith, path: Path_, scope: Scope) -> Getter:
        pname = op.parties_with
        return lambda c: c.world.parties_with(pname)

    def visit_FlagOf(self, op: m.FlagOf, path: Path_, scope: Scope) -> Getter:
        who = self.operand(op.flag_of[0], (*path, "flag_of", 0), scope)
        flag = op.flag_of[1]

        def flag_of(c: Ctx) -> Any:
            sid = who(c)
            view = c.world.subject_view(sid) if isinstance(sid, str) else None
            return view.flags.get(flag) if view is not None else None

        return flag_of

    def visit_Added(self, op: m.Added, path: Path_, scope: Scope) -> Getter:
        counter = op.added

        def added(c: Ctx) -> Decimal:
            key = c.party if c.party is not None else c.subject_id
            ev = c.event
            start = ev.get("start") if ev is not None else None
            end = ev.get("end") if ev is not None else None
            return c.world.added(counter, key, start, end)

        return added

    def visit_Ago(self, op: m.Ago, path: Path_, scope: Scope) -> Getter:
        dur = self.duration(op.ago, (*path, "ago"))
        if dur is None:
            return lambda c: None
        return lambda c: dur.back(c.now, c.world.tz, c.world.cal, c.world.calendar_guesses)

    def visit_Plus(self, op: m.Plus, path: Path_, scope: Scope) -> Getter:
        self.expect_kind(op.plus[0], scope, {"instant", "date"}, "plus", (*path, "plus", 0))
        base = self.operand(op.plus[0], (*path, "plus", 0), scope)
        span = self.duration(op.plus[1], (*path, "plus", 1))
        if span is None:
            return lambda c: None
        if self.kind_of(op.plus[0], scope) == "date" and not span.on_dates:
            self.error(
                Code.WRONG_KIND,
                f"plus on a date takes days, weeks, months, years or working days, "
                f"not {span.text!r}",
                (*path, "plus", 1),
                "a time of day needs an instant: add hours to $event.at, not to a date",
            )
            return lambda c: None

        def plus(c: Ctx) -> Any:
            start = base(c)
            w = c.world
            if isinstance(start, str):  # a calendar date: calendar arithmetic (issue 16)
                day = _calendar_date(start)
                if day is None or not span.on_dates:
                    return None
                return span.after_date(day, w.cal, w.calendar_guesses).isoformat()
            if not isinstance(start, int) or isinstance(start, bool):
                return None
            return span.due(start, w.tz, w.cal, w.calendar_guesses)[0]

        return plus

    def _fold(self, key: str, of: Any, path: Path_, scope: Scope) -> Getter:
        inner = self.operand(of, (*path, key), scope)
        fold = _FOLDS[key]
        return lambda c: fold(_numbers(inner(c)))

    def visit_Sum(self, op: m.Sum, path: Path_, scope: Scope) -> Getter:
        terms = op.sum if isinstance(op.sum, list) else [op.sum]
        if not any(_memoisable(t) for t in terms):
            return self._fold("sum", op.sum, path, scope)
        flatten = not isinstance(op.sum, list)
        memo: list[tuple[HistoryPlan, str]] = []
        rest: list[Getter] = []
        items: list[Getter] = []
        for i, t in enumerate(terms):
            where = (*path, "sum", i) if not flatten else (*path, "sum")
            if _memoisable(t):
                vplan, getter = self._values(t, where, scope)
                memo.append((vplan, t.values.field))
            else:
                getter = self.operand(t, where, scope)
                rest.append(getter)
            items.append(getter)
        fold = _FOLDS["sum"]
        if flatten:
            only = items[0]
            plain: Getter = lambda c: fold(_numbers(only(c)))  # noqa: E731
        else:
            plain = lambda c: fold(_numbers([g(c) for g in items]))  # noqa: E731

        def memo_sum(c: Ctx) -> Any:
            """The running totals of the memo, where exactly the fold's answer (issue 14)."""
            total, width, least = Decimal(0), Decimal(0), 0
            with localcontext() as wide:
                wide.prec = 400
                for plan, fname in memo:
                    got = c.world.values_total(plan, fname, flatten, c)
                    if got is None:
                        return plain(c)
                    total += got[0]
                    width += got[1]
                    least = min(least, got[2])
                for g in rest:
                    for n in _numbers([g(c)]):
                        e = n.as_tuple().exponent
                        if not isinstance(e, int) or not -60 <= e <= 60:
                            return plain(c)
                        total += n
                        width += abs(n)
                        least = min(least, e)
            ctx = getcontext()
            # every partial sum, in any order, is exact: the fold's own answer, digit for digit
            if ctx.rounding == ROUND_FLOOR or width >= Decimal(10) ** (ctx.prec + least):
                return plain(c)
            return total

        return memo_sum

    def visit_MinOf(self, op: m.MinOf, path: Path_, scope: Scope) -> Getter:
        return self._fold("min", op.min, path, scope)

    def visit_MaxOf(self, op: m.MaxOf, path: Path_, scope: Scope) -> Getter:
        return self._fold("max", op.max, path, scope)

    def visit_Avg(self, op: m.Avg, path: Path_, scope: Scope) -> Getter:
        return self._fold("avg", op.avg, path, scope)

    def visit_First(self, op: m.First, path: Path_, scope: Scope) -> Getter:
        inner = self.operand(op.first, (*path, "first"), scope)

        def first(c: Ctx) -> Any:
            v = inner(c)
            return v[0] if isinstance(v, list | tuple) and v else None

        return first

    def _arithmetic(self, key: str, terms: list[Any], path: Path_, scope: Scope) -> Getter:
        args = [self.operand(x, (*path, key, i), scope) for i, x in enumerate(terms)]
        arith = _ARITH[key]

        def arithmetic(c: Ctx) -> Decimal | None:
            nums = [as_number(g(c)) for g in args]
            if any(n is None for n in nums):
                return None
            return arith([n for n in nums if n is not None])

        return arithmetic

    def visit_Add(self, op: m.Add, path: Path_, scope: Scope) -> Getter:
        return self._arithmetic("add", op.add, path, scope)

    def visit_Sub(self, op: m.Sub, path: Path_, scope: Scope) -> Getter:
        return self._arithmetic("sub", op.sub, path, scope)

    def visit_Mul(self, op: m.Mul, path: Path_, scope: Scope) -> Getter:
        return self._arithmetic("mul", op.mul, path, scope)

    def visit_Div(self, op: m.Div, path: Path_, scope: Scope) -> Getter:
        return self._arithmetic("div", op.div, path, scope)

    def visit_Round(self, op: m.Round, path: Path_, scope: Scope) -> Getter:
        value = self.operand(op.round[0], (*path, "round", 0), scope)
        exponent = Decimal(1).scaleb(-int(op.round[1]))
        mode = _ROUNDING[str(op.round[2]) if len(op.round) == 3 else "half_up"]

        def rounded(c: Ctx) -> Decimal | None:
            n = as_number(value(c))
            if n is None or not n.is_finite():
                return None
            with localcontext() as dc:  # enough digits for any finite amount
                dc.prec = max(dc.prec, n.adjusted() - exponent.adjusted() + 2)
                return n.quantize(exponent, rounding=mode)

        return rounded

    def visit_Get(self, op: m.Get, path: Path_, scope: Scope) -> Getter:
        table = self.operand(op.get[0], (*path, "get", 0), scope)
        entry = self.operand(op.get[1], (*path, "get", 1), scope)

        def get(c: Ctx) -> Any:
            mapping, k = table(c), entry(c)
            return mapping.get(str(k)) if isinstance(mapping, Mapping) and k is not None else None

        return get

    def visit_MetricOf(self, op: m.MetricOf, path: Path_, scope: Scope) -> Getter:
        mid = op.metric
        if mid not in scope.metrics:
            self.error(
                Code.BAD_REFERENCE,
                f"{{metric: {mid}}} names no metric measured before this one",
                (*path, "metric"),
                did_you_mean(mid, scope.metrics)
                or "metrics are measured in file order, with the same `every`",
            )
        return lambda c: c.world.metric_value(mid, c.party)

    def visit_Len(self, op: m.Len, path: Path_, scope: Scope) -> Getter:
        inner = self.operand(op.len, (*path, "len"), scope)
        return lambda c: len(inner(c) or ())

    def visit_Count(self, op: m.Count, path: Path_, scope: Scope) -> Getter:
        plan = self.history_plan(op.count, (*path, "count"), scope)
        if plan.within is None and plan.since is None and plan.last is None:
            return lambda c: c.world.history_count(plan, c)  # memoised (issue 14)
        return lambda c: sum(1 for _ in c.world.history(plan, c))

    def reference(self, ref: str, path: Path_, scope: Scope) -> Getter:
        if not m.reference_ok(ref):
            self.error(
                Code.BAD_REFERENCE,
                f"bad reference {ref!r}",
                path,
                "references look like $event.field, $trigger.field, $subject.owner, "
                "$params.name, $now, $item or $party",
            )
            return lambda c: None
        parts = ref[1:].split(".")
        root, rest = parts[0], parts[1:]
        if root == "params":
            value = self.param_value(ref, path)
            return lambda c: value
        if root == "now":
            return lambda c: c.now
        if root == "party":
            if not scope.party:
                self.error(
                    Code.BAD_REFERENCE,
                    "$party is only defined inside an expectation's where/met/late/missed",
                    path,
                )
            return lambda c: c.party
        if root == "item":
            if not scope.item:
                self.error(Code.BAD_REFERENCE, "$item is only defined inside `for_each`", path)
            if not rest:
                return lambda c: c.item
            name = rest[0]
            return lambda c: c.item.get(name) if isinstance(c.item, Mapping) else None
        if root in ("event", "trigger"):
            types = scope.event if root == "event" else scope.trigger
            if types is None:
                hint = (
                    "in `missed` there is no event: use $trigger"
                    if root == "event"
                    else "$trigger exists only inside an expectation"
                )
                self.error(Code.BAD_REFERENCE, f"{ref} is not available here", path, hint)
                return lambda c: None
            if len(rest) != 1:
                self.error(
                    Code.BAD_REFERENCE, f"{ref}: name one field, like ${root}.customer", path
                )
                return lambda c: None
            name = rest[0]
            known = self.fields_of(types)
            if name not in known:
                self.error(
                    Code.UNDECLARED_EVENT_FIELD,
                    f"event field {name!r} is not declared for {', '.join(types)}",
                    path,
                    did_you_mean(name, known),
                )
            if root == "event":
                return lambda c: c.event.get(name) if c.event is not None else None
            return lambda c: c.trigger.get(name) if c.trigger is not None else None
        # subject
        if not rest:
            return lambda c: c.subject_id
        head = rest[0]
        if head == "id" and len(rest) == 1:
            return lambda c: c.subject_id
        if head == "owner" and len(rest) == 1:
            return lambda c: c.subj.owner if c.subj is not None else None
        if head == "owner_since" and len(rest) == 1:
            return lambda c: c.subj.owner_since if c.subj is not None else None
        if head in ("flags", "counters") and len(rest) == 2:
            name = rest[1]
            if head == "flags":
                return lambda c: c.subj.flags.get(name) if c.subj is not None else None
            return lambda c: (
                c.subj.counters.get(name, Decimal(0)) if c.subj is not None else Decimal(0)
            )
        self.error(
            Code.BAD_REFERENCE,
            f"unknown subject property in {ref!r}",
            path,
            "use $subject, $subject.owner, $subject.owner_since, $subject.flags.NAME "
            "or $subject.counters.NAME",
        )
        return lambda c: None

    def history_plan(self, q: m.HistoryQuery, path: Path_, scope: Scope) -> HistoryPlan:
        types = (q.type,) if isinstance(q.type, str) else tuple(q.type)
        self.check_types(types, (*path, "type"))
        match, subject = self.match_fields(q.match, types, (*path, "match"), scope)
        within = self.duration(q.within, (*path, "within"))
        since = self.operand(q.since, (*path, "since"), scope) if q.since is not None else None
        return HistoryPlan(types, subject, match, within, since, q.last)

    def match_fields(
        self,
        spec: dict[str, Any],
        types: tuple[str, ...],
        path: Path_,
        scope: Scope,
    ) -> tuple[tuple[tuple[str, Getter], ...], Getter | None]:
        known = self.fields_of(types)
        out: list[tuple[str, Getter]] = []
        subject: Getter | None = None
        for name, value in spec.items():
            if name not in known:
                self.error(
                    Code.UNDECLARED_EVENT_FIELD,
                    f"event field {name!r} is not declared for {', '.join(types)}",
                    (*path, name),
                    did_you_mean(name, known),
                    key=True,
                )
            getter = self.operand(value, (*path, name), scope)
            if name == self.subject_field:
                subject = getter
            else:
                out.append((name, getter))
        return tuple(out), subject

    # -- conditions
    def condition(self, cond: Any, path: Path_, scope: Scope) -> Pred:
        if isinstance(cond, bool):
            return (lambda c: True) if cond else (lambda c: False)
        pred: Pred = self.visit(cond, path, scope)
        return pred

    def visit_All(self, cond: m.All, path: Path_, scope: Scope) -> Pred:
        parts = [self.condition(x, (*path, "all", i), scope) for i, x in enumerate(cond.all)]
        return _conjunction(parts)

    def visit_AnyOf(self, cond: m.AnyOf, path: Path_, scope: Scope) -> Pred:
        parts = [self.condition(x, (*path, "any", i), scope) for i, x in enumerate(cond.any)]
        return _disjunction(parts)

    def visit_Not(self, cond: m.Not, path: Path_, scope: Scope) -> Pred:
        inner = self.condition(cond.not_, (*path, "not"), scope)
        return lambda c: not inner(c)

    def visit_ConditionRef(self, cond: m.ConditionRef, path: Path_, scope: Scope) -> Pred:
        """A named condition, compiled here in this place's scope; a problem inside points at
        the declaration and names the place of this use."""
        name = cond.condition
        entry = self.pset.conditions.get(name)
        if entry is None or name in self.expanding:  # a cycle is reported by validate
            if entry is None and name not in self.pset.broken and not self.expanding:
                self.error(
                    Code.UNKNOWN_CONDITION,
                    f"unknown named condition {name!r}",
                    (*path, "condition"),
                    did_you_mean(name, self.pset.conditions) or "declare it under `conditions:`",
                )
            return lambda c: False
        named, source = entry
        saved = (self.site, self.site_root, self.sink, self.expanding)
        assert self.site is not None
        self.sink = _UsedAt(self.sink, name, self.loc((*path, "condition")))
        self.site = RuleSite(self.site.rule, source, -1)
        self.site_root = ("conditions", name, "when")
        self.expanding = (*self.expanding, name)
        try:
            return self.condition(named.when, (), scope)
        finally:
            self.site, self.site_root, self.sink, self.expanding = saved

    def visit_Exists(self, cond: m.Exists, path: Path_, scope: Scope) -> Pred:
        g = self.operand(cond.exists, (*path, "exists"), scope)
        return lambda c: g(c) is not None

    def visit_History(self, cond: m.History, path: Path_, scope: Scope) -> Pred:
        plan = self.history_plan(cond.history, (*path, "history"), scope)
        if plan.within is None and plan.since is None and plan.last is None:
            return lambda c: c.world.history_any(plan, c)  # memoised (issue 14)
        return lambda c: next(iter(c.world.history(plan, c)), None) is not None

    def visit_In(self, cond: m.In, path: Path_, scope: Scope) -> Pred:
        a = self.operand(cond.in_[0], (*path, "in", 0), scope)
        b = self.operand(cond.in_[1], (*path, "in", 1), scope)

        def member(c: Ctx) -> bool:
            x, items = a(c), b(c) or ()
            if isinstance(x, str):
                return x in items
            return any(_equal(x, item) for item in items)

        return member

    def _compare(self, op: str, pair: list[Any], path: Path_, scope: Scope) -> Pred:
        pair = self._clock_literals(op, pair, path, scope)
        pair = self._date_literals(op, pair, path, scope)
        pair = self._instant_literals(op, pair, path, scope)
        a = self.operand(pair[0], (*path, op, 0), scope)
        b = self.operand(pair[1], (*path, op, 1), scope)
        if op in ("eq", "ne"):
            fast = _literal_equality(op, pair, a, b)
            if fast is not None:
                return fast
        return _comparison(op, a, b)

    def _clock_literals(self, op: str, pair: list[Any], path: Path_, scope: Scope) -> list[Any]:
        """A text compared with a time of day is read as one (``"09:00"`` -> ``"09:00:00"``),
        so that the comparison is of times, not of spellings; one that is not is PE118."""
        kinds = [self.kind_of(x, scope) for x in pair]
        if "time_of_day" not in kinds:
            return pair
        out = list(pair)
        for i, x in enumerate(pair):
            if kinds[i] in ("text", "duration") and isinstance(x, str):
                clock = parse_clock(x)
                if clock is None:
                    self.error(
                        Code.WRONG_KIND,
                        f"{x!r} is compared with a time of day but is not one",
                        (*path, op, i),
                        'write it as HH:MM or HH:MM:SS, e.g. "09:00"',
                    )
                    continue
                out[i] = clock_text(clock)
            elif kinds[i] not in ("time_of_day", "any", "null"):
                self.error(
                    Code.WRONG_KIND,
                    f"a time of day is compared with {_article(kinds[i])}",
                    (*path, op, i),
                )
        return out

    def _date_literals(self, op: str, pair: list[Any], path: Path_, scope: Scope) -> list[Any]:
        """A date compares with a date, or a literal ``"YYYY-MM-DD"`` (read as one); with an
        instant, a number, a time of day... it is PE118, never a silent false (issue 16)."""
        kinds = [self.kind_of(x, scope) for x in pair]
        if "date" not in kinds or "time_of_day" in kinds:  # a time of day: reported above
            return pair
        out = list(pair)
        for i, x in enumerate(pair):
            literal = isinstance(x, str) and not m.is_reference(x) and not x.startswith("$$")
            if kinds[i] in ("text", "duration") and literal:
                day = _calendar_date(x.strip())
                if day is None:
                    self.error(
                        Code.WRONG_KIND,
                        f"{x!r} is compared with a date but is not one",
                        (*path, op, i),
                        'write it as YYYY-MM-DD, e.g. "2026-03-01"',
                    )
                    continue
                out[i] = day.isoformat()
            elif kinds[i] not in ("date", "text", "any", "null"):
                hint: str | None = None
                if kinds[i] == "instant":
                    hint = "{date: $event.at} gives an instant's local date, to compare with a date"
                self.error(
                    Code.WRONG_KIND,
                    f"a date is compared with {_article(kinds[i])}",
                    (*path, op, i),
                    hint,
                )
        return out

    def _instant_literals(self, op: str, pair: list[Any], path: Path_, scope: Scope) -> list[Any]:
        """A text compared with an instant is read as one when it carries its UTC offset
        (``"2026-03-01T00:00:00+08:00"``); any other text there is PE118, never a silent false."""
        kinds = [self.kind_of(x, scope) for x in pair]
        if "instant" not in kinds or {"date", "time_of_day"} & set(kinds):  # reported above
            return pair
        out = list(pair)
        for i, x in enumerate(pair):
            literal = isinstance(x, str) and not m.is_reference(x) and not x.startswith("$$")
            if kinds[i] in ("text", "duration") and literal:
                us = instant_us(x)
                if us is None:
                    self.error(
                        Code.WRONG_KIND,
                        f"{x!r} is compared with an instant but is not one",
                        (*path, op, i),
                        'write it with its offset, e.g. "2026-03-01T00:00:00+08:00", or '
                        "compare {date: ...} with a date",
                    )
                    continue
                out[i] = us
        return out

    def visit_Eq(self, cond: m.Eq, path: Path_, scope: Scope) -> Pred:
        return self._compare("eq", cond.eq, path, scope)

    def visit_Ne(self, cond: m.Ne, path: Path_, scope: Scope) -> Pred:
        return self._compare("ne", cond.ne, path, scope)

    def visit_Lt(self, cond: m.Lt, path: Path_, scope: Scope) -> Pred:
        return self._compare("lt", cond.lt, path, scope)

    def visit_Le(self, cond: m.Le, path: Path_, scope: Scope) -> Pred:
        return self._compare("le", cond.le, path, scope)

    def visit_Gt(self, cond: m.Gt, path: Path_, scope: Scope) -> Pred:
        return self._compare("gt", cond.gt, path, scope)

    def visit_Ge(self, cond: m.Ge, path: Path_, scope: Scope) -> Pred:
        return self._compare("ge", cond.ge, path, scope)


# the kind of each operand model's value (``ExpressionCompiler.kind_of``); "any" if absent
# ``{round: [x, digits, mode]}``: the language's modes, as the decimal module names them
_ROUNDING: Final[dict[str, str]] = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "down": decimal.ROUND_DOWN,
    "up": decimal.ROUND_UP,
    "floor": decimal.ROUND_FLOOR,
    "ceiling": decimal.ROUND_CEILING,
}
_MODEL_KINDS: Final[dict[type[BaseModel], str]] = {
    m.Ago: "instant",
    m.Date: "date",
    m.TimeOfDay: "time_of_day",
    m.OwnerOf: "text",
    m.Len: "number",
    m.Count: "number",
    m.Sum: "number",
    m.MinOf: "number",
    m.MaxOf: "number",
    m.Avg: "number",
    m.Add: "number",
    m.Sub: "number",
    m.Mul: "number",
    m.Div: "number",
    m.Round: "number",
    m.Added: "number",
    m.CounterValue: "number",
    m.MetricOf: "number",
    m.Claims: "list",
    m.Subjects: "list",
    m.Owners: "list",
    m.Values: "list",
    m.PartiesWith: "list",
}
# the kind of a declared event field's values
_FIELD_KINDS: Final[dict[str, str]] = {
    "str": "text",
    "int": "number",
    "decimal": "number",
    "bool": "bool",
    "time": "instant",
    "date": "date",
    "list[str]": "list",
    "list[int]": "list",
}


def _calendar_date(text: str) -> date | None:
    """``YYYY-MM-DD`` as a date (a `date` field's value, what `{date: ...}` gives), else None."""
    if len(text) != 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _article(kind: str) -> str:
    return {"any": "a value", "null": "null", "time_of_day": "a time of day"}.get(
        kind, f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    )


def too_long_for_hours(duration: Duration, calendar: Calendar) -> str | None:
    """Working hours, counted in the policy's own business hours, within the longest duration
    a policy may state (a minute of business a day makes an hour a long time); else why not."""
    per_unit = WORKING_US.get(duration.unit)
    if per_unit is None:
        return None
    if duration.amount * per_unit / calendar.hours_per_day * 1.4 <= MAX_DURATION_DAYS:
        return None
    return (
        f"the duration {duration.text!r} is too long for business hours of "
        f"{calendar.hours_per_day / 3_600_000_000:g} h a day; the longest a policy may state "
        f"is {MAX_DURATION_TEXT}"
    )


_KIND_ORDER: Final = ("instant", "date", "duration", "time_of_day", "number", "text")


def _choices(kinds: AbstractSet[str]) -> str:
    named = [_article(k) for k in _KIND_ORDER if k in kinds]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " or " + named[-1]


def _show(op: Any) -> str:
    if isinstance(op, BaseModel):
        return "{" + next(iter(op.model_dump(by_alias=True, exclude_none=True)), "?") + ": ...}"
    return repr(op) if not isinstance(op, str) else op


class _UsedAt(ProblemSink):
    """The sink of a named condition's compilation at one use: each problem, reported at the
    declaration, says which condition and where it was used."""

    def __init__(self, outer: ProblemSink, name: str, use: Location) -> None:
        super().__init__(outer.problems)
        self.outer = outer  # a use inside another named condition: that one's sink
        self.what = f" (in named condition {name!r}, used at {use})"

    def add(
        self,
        code: str,
        message: str,
        location: Location | None = None,
        hint: str | None = None,
    ) -> None:
        self.outer.add(code, message + self.what, location, hint)


class _AnyField(frozenset[str]):
    """The fields of an undeclared event type: every name is taken to be one."""

    def __contains__(self, item: object) -> bool:
        return True


_ANY_FIELD: Final = _AnyField()


def _memoisable(term: Any) -> bool:
    """A ``values`` query the World's memo can total: no window, ``since`` or ``last``."""
    if not isinstance(term, m.Values):
        return False
    q = term.values
    return q.within is None and q.since is None and q.last is None
