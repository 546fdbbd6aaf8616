"""Stage 3, compile: validated models -> closures and indexes, backend-neutral.

Conditions and values become plain Python closures over a small context (``Ctx``), so
evaluation never interprets YAML and never calls ``eval``. Parameters, durations and money
are resolved here, once. References (``$event.channel``, ``$params.preheat_window``) are
checked against the declared event fields and parameters, so a typo is a load error at its
``file:line:col``, not a silent ``None`` at run time.

The compiled form (``CompiledPolicy``) is the contract with evaluators: the native engine
runs it, and a second evaluator can run the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Protocol

from pydantic import BaseModel

from policyengine.errors import Location, ProblemSink, did_you_mean
from policyengine.language import model as m
from policyengine.language.loader import Source
from policyengine.language.validate import PolicySet, RuleSite
from policyengine.times import Duration, parse_duration, to_local

# labels and metrics are compiled with the rule machinery; this stands in for "no rule"
_NO_RULE = m.Rule.model_validate({"id": "-", "clause": "-", "on": "-", "then": [{"clear": "-"}]})

BUILTIN_FIELDS = ("id", "type", "at")
OWNER_CHANGED = "owner_changed"  # derived by the engine whenever a subject's owner changes


class SubjectView(Protocol):
    owner: str | None
    owner_since: int | None
    flags: dict[str, Any]
    counters: dict[str, Decimal]
    claims: dict[str, str]


class WorldView(Protocol):
    def owner_of(self, subject: Any) -> str | None: ...

    def history(self, plan: HistoryPlan, ctx: Ctx) -> Any: ...

    def subjects_with(self, kind: str, owner: Any = None) -> list[str]: ...

    def subject_view(self, sid: str) -> SubjectView | None: ...

    def owners(self, kind: str) -> list[str]: ...

    def added(self, name: str, key: Any, start: int | None, end: int | None) -> Decimal: ...

    def party_counter(self, party: str, name: str) -> Decimal: ...

    def parties_with(self, name: str) -> list[str]: ...

    def metric_value(self, metric: str, party: Any) -> Decimal | None: ...


class Ctx:
    """What a compiled closure can see; the engine fills it in for each step."""

    __slots__ = ("event", "item", "now", "party", "subj", "subject_id", "trigger", "world")

    def __init__(
        self,
        world: WorldView,
        now: int,
        event: Mapping[str, Any] | None,
        trigger: Mapping[str, Any] | None,
        subject_id: str | None,
        subj: SubjectView | None,
    ) -> None:
        self.world = world
        self.now = now
        self.event = event
        self.trigger = trigger
        self.subject_id = subject_id
        self.subj = subj
        self.item: Any = None
        self.party: Any = None


Getter = Callable[[Ctx], Any]
Pred = Callable[[Ctx], bool]


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    types: tuple[str, ...]
    subject: Getter | None  # value the subject field must equal (uses the per-subject index)
    match: tuple[tuple[str, Getter], ...]
    within: Duration | None
    since: Getter | None = None
    last: int | None = None


@dataclass(frozen=True, slots=True)
class CStep:
    sanction: str
    amount: Getter | None
    salary_days: Getter | None


@dataclass(frozen=True, slots=True)
class CPenalty:
    party: Getter
    steps: tuple[CStep, ...]
    ladder: bool
    ladder_key: str | None
    per_unit: Getter | None
    units: Getter | None


@dataclass(frozen=True, slots=True)
class CStepSpec:
    """One duty of a schedule or workflow, with the expectation's defaults filled in."""

    types: tuple[str, ...]
    where: Pred | None
    within: Duration | None
    after: Duration | None
    obligation: str | None


@dataclass(frozen=True, slots=True)
class CExpect:
    types: tuple[str, ...]
    subject: Getter | None  # creation-time value of the subject field, if matched on
    match: tuple[tuple[str, Getter], ...]
    where: Pred | None
    within: Duration | None  # None: no deadline
    after: Duration | None
    cancel_types: tuple[str, ...]
    cancel_match: tuple[tuple[str, Getter], ...]
    obligation: str | None
    party: Getter | None
    met: tuple[CAction, ...]
    late: tuple[CAction, ...]
    missed: tuple[CAction, ...]
    cancel_where: Pred | None = None
    steps: tuple[CStepSpec, ...] | None = None
    every: str | None = None
    repeat: bool = False
    consume: bool = False
    in_order: bool = False
    key: Getter | None = None
    key_scope: str | None = None
    about: Getter | None = None
    out_of_order: tuple[CAction, ...] = ()

    @property
    def all_types(self) -> tuple[str, ...]:
        if self.steps is None:
            return self.types
        return tuple(dict.fromkeys(t for st in self.steps for t in st.types))


@dataclass(frozen=True, slots=True)
class CAction:
    kind: str
    when: Pred | None = None
    for_each: Getter | None = None
    for_each_subject: Getter | None = None
    value: Getter | None = None
    subject: Getter | None = None
    target: Getter | None = None
    name: str | None = None
    text: str | None = None
    penalty: CPenalty | None = None
    expect: CExpect | None = None


@dataclass(slots=True)
class CompiledRule:
    id: str
    clauses: tuple[str, ...]
    order: int
    triggers: tuple[str, ...]
    when: Pred | None
    overrides: frozenset[str]
    actions: tuple[CAction, ...]
    rejects: bool
    location: Location
    every: str | None = None  # "day" | "week" | "month": fires at each local period start
    rank: int = 0  # topological: overriders before the rules they override
    ref: tuple[str, tuple[str, ...]] = ("", ())  # (id, clauses): what decisions record

    @property
    def clause_ref(self) -> str | list[str]:
        return self.clauses[0] if len(self.clauses) == 1 else list(self.clauses)


@dataclass(frozen=True, slots=True)
class CLabel:
    name: str
    ref: tuple[str, tuple[str, ...]]
    cases: tuple[tuple[str, Pred, str | None], ...]  # value, when, reason
    on: tuple[str, ...] = ()  # classify at these events; () = every subject at as_of
    subject: Getter | None = None  # what an event classifies (default: its subject)


@dataclass(frozen=True, slots=True)
class CMetric:
    id: str
    ref: tuple[str, tuple[str, ...]]
    every: str
    parties: Getter
    numerator: Getter
    denominator: Getter | None
    op: str | None
    target: Getter | None
    grades: tuple[tuple[str, Getter | None], ...] = ()


@dataclass(frozen=True, slots=True)
class CAward:
    id: str
    ref: tuple[str, tuple[str, ...]]
    every: str
    title: str | None
    keys: tuple[tuple[str, bool], ...]  # (metric id, highest first?) in ranking order
    winners: int


@dataclass(frozen=True, slots=True)
class FieldCheck:
    name: str
    type: str
    required: bool
    enum: frozenset[Any] | None
    min: float | None
    max: float | None
    default: Any


@dataclass(slots=True)
class CompiledPolicy:
    id: str
    version: str
    timezone: str
    currency: str
    subject_field: str
    unknown_events: str
    clauses: dict[str, m.Clause]
    params: dict[str, Any]
    events: dict[str, tuple[FieldCheck, ...]]
    rules: tuple[CompiledRule, ...]
    by_trigger: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)
    awaited: frozenset[str] = frozenset()  # event types some expectation waits for
    periodic: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)
    labels: tuple[CLabel, ...] = ()
    metrics: tuple[CMetric, ...] = ()
    awards: tuple[CAward, ...] = ()
    param_decls: dict[str, m.Param] = field(default_factory=dict)  # as declared (mutation)
    invariants: tuple[tuple[str, Pred], ...] = ()  # id, holds (per subject at as_of)

    @property
    def classifying(self) -> dict[str, tuple[CLabel, ...]]:
        """Event type -> the labels its events classify."""
        out: dict[str, list[CLabel]] = {}
        for lab in self.labels:
            for t in lab.on:
                out.setdefault(t, []).append(lab)
        return {t: tuple(v) for t, v in out.items()}


# ---------------------------------------------------------------- the compiler


@dataclass
class _Scope:
    """Which event types `$event` and `$trigger` can be, to check field references."""

    event: tuple[str, ...] | None
    trigger: tuple[str, ...] | None
    item: bool = False
    party: bool = False
    metrics: frozenset[str] = frozenset()  # metric ids `{metric: ...}` may read here


class _Compiler:
    def __init__(self, pset: PolicySet, params: dict[str, Any], sink: ProblemSink) -> None:
        self.pset = pset
        self.params = params
        self.sink = sink
        self.site: RuleSite | None = None
        self.site_root: tuple[str | int, ...] = ()
        self.subject_field = pset.meta.subject

    # -- helpers
    def loc(self, path: tuple[str | int, ...], key: bool = False) -> Location:
        assert self.site is not None
        if self.site.index < 0:  # a label or a metric, not a rule
            return self.site.source.locate((*self.site_root, *path), key=key)
        return self.site.locate(*path, key=key)

    def error(
        self,
        code: str,
        msg: str,
        path: tuple[str | int, ...],
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

    def check_types(self, types: tuple[str, ...], path: tuple[str | int, ...]) -> None:
        for i, t in enumerate(types):
            if t not in self.pset.events and t not in self.pset.broken and t != OWNER_CHANGED:
                p = path if len(types) == 1 else (*path, i)
                self.error(
                    "PE109",
                    f"unknown event type {t!r}",
                    p,
                    did_you_mean(t, self.pset.events) or "declare it under `events:`",
                )

    def duration(self, text: str | None, path: tuple[str | int, ...]) -> Duration | None:
        if text is None:
            return None
        if m.is_reference(text):
            value = self.param_value(text, path)
            if value is None:
                return None
            if not isinstance(value, Duration):
                self.error("PE102", f"{text} is not a duration parameter", path)
                return None
            return value
        try:
            return parse_duration(text)
        except ValueError as exc:
            self.error("PE106", str(exc), path)
            return None

    def param_value(self, ref: str, path: tuple[str | int, ...]) -> Any:
        parts = ref[1:].split(".")
        if parts[0] != "params" or len(parts) != 2:
            self.error("PE117", f"{ref!r} must be a parameter reference like $params.name", path)
            return None
        if parts[1] not in self.params:
            if parts[1] in self.pset.broken:
                return None
            self.error(
                "PE110",
                f"unknown parameter {parts[1]!r}",
                path,
                did_you_mean(parts[1], self.params) or "declare it under `params:`",
            )
            return None
        return self.params[parts[1]]

    # -- values
    def operand(self, op: Any, path: tuple[str | int, ...], scope: _Scope) -> Getter:
        if isinstance(op, m.OwnerOf):
            inner = self.operand(op.owner_of, (*path, "owner_of"), scope)
            return lambda c: c.world.owner_of(inner(c))
        if isinstance(op, m.Claims):
            status = op.claims
            if status == "any":
                return lambda c: list(c.subj.claims) if c.subj is not None else []
            return lambda c: (
                [e for e, s in c.subj.claims.items() if s == status] if c.subj is not None else []
            )
        if isinstance(op, m.Subjects):
            kind = op.subjects
            owner = (
                self.operand(op.owner, (*path, "owner"), scope) if op.owner is not None else None
            )
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
        if isinstance(op, m.Owners):
            owners_kind = op.owners
            return lambda c: c.world.owners(owners_kind)
        if isinstance(op, m.Coalesce):
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
        if isinstance(op, m.Date):
            instant = self.operand(op.date, (*path, "date"), scope)
            tz_name = self.pset.meta.timezone

            def local_date(c: Ctx) -> Any:
                v = instant(c)
                return to_local(v, tz_name).date().isoformat() if isinstance(v, int) else None

            return local_date
        if isinstance(op, m.Values):
            vplan = self.history_plan(op.values, (*path, "values"), scope)
            fname = op.values.field
            if fname not in self.fields_of(vplan.types):
                self.error(
                    "PE113",
                    f"event field {fname!r} is not declared for {', '.join(vplan.types)}",
                    (*path, "values", "field"),
                )
            return lambda c: [ev.get(fname) for ev in c.world.history(vplan, c)]
        if isinstance(op, m.CounterValue):
            cname = op.counter

            def counter_value(c: Ctx) -> Decimal:
                if c.party is not None:
                    return c.world.party_counter(str(c.party), cname)
                if c.subj is not None:
                    return c.subj.counters.get(cname, Decimal(0))
                return Decimal(0)

            return counter_value
        if isinstance(op, m.PartiesWith):
            pname = op.parties_with
            return lambda c: c.world.parties_with(pname)
        if isinstance(op, m.FlagOf):
            who = self.operand(op.flag_of[0], (*path, "flag_of", 0), scope)
            flag = op.flag_of[1]

            def flag_of(c: Ctx) -> Any:
                sid = who(c)
                view = c.world.subject_view(sid) if isinstance(sid, str) else None
                return view.flags.get(flag) if view is not None else None

            return flag_of
        if isinstance(op, m.Added):
            counter = op.added

            def added(c: Ctx) -> Decimal:
                key = c.party if c.party is not None else c.subject_id
                ev = c.event
                start = ev.get("start") if ev is not None else None
                end = ev.get("end") if ev is not None else None
                return c.world.added(counter, key, start, end)

            return added
        if isinstance(op, m.Ago):
            dur = self.duration(op.ago, (*path, "ago"))
            if dur is None:
                return lambda c: None
            tz = self.pset.meta.timezone
            return lambda c: dur.back(c.now, tz)
        if isinstance(op, m.Plus):
            base = self.operand(op.plus[0], (*path, "plus", 0), scope)
            span = self.duration(op.plus[1], (*path, "plus", 1))
            if span is None:
                return lambda c: None
            zone_name = self.pset.meta.timezone

            def plus(c: Ctx) -> Any:
                start = base(c)
                return span.due(start, zone_name)[0] if isinstance(start, int) else None

            return plus
        if isinstance(op, m.Sum | m.MinOf | m.MaxOf | m.Avg):
            key = _FOLD_KEY[type(op)]
            inner = self.operand(getattr(op, key), (*path, key), scope)
            fold = _FOLDS[key]
            return lambda c: fold(_numbers(inner(c)))
        if isinstance(op, m.First):
            inner = self.operand(op.first, (*path, "first"), scope)

            def first(c: Ctx) -> Any:
                v = inner(c)
                return v[0] if isinstance(v, list | tuple) and v else None

            return first
        if isinstance(op, m.Add | m.Sub | m.Mul | m.Div):
            key = _ARITH_KEY[type(op)]
            args = [self.operand(x, (*path, key, i), scope) for i, x in enumerate(getattr(op, key))]
            arith = _ARITH[key]

            def arithmetic(c: Ctx) -> Decimal | None:
                nums = [as_number(g(c)) for g in args]
                if any(n is None for n in nums):
                    return None
                return arith([n for n in nums if n is not None])

            return arithmetic
        if isinstance(op, m.Get):
            table = self.operand(op.get[0], (*path, "get", 0), scope)
            entry = self.operand(op.get[1], (*path, "get", 1), scope)

            def get(c: Ctx) -> Any:
                mapping, k = table(c), entry(c)
                return (
                    mapping.get(str(k)) if isinstance(mapping, Mapping) and k is not None else None
                )

            return get
        if isinstance(op, m.MetricOf):
            mid = op.metric
            if mid not in scope.metrics:
                self.error(
                    "PE117",
                    f"{{metric: {mid}}} names no metric measured before this one",
                    (*path, "metric"),
                    did_you_mean(mid, scope.metrics)
                    or "metrics are measured in file order, with the same `every`",
                )
            return lambda c: c.world.metric_value(mid, c.party)
        if isinstance(op, m.Len):
            inner = self.operand(op.len, (*path, "len"), scope)
            return lambda c: len(inner(c) or ())
        if isinstance(op, m.Count):
            plan = self.history_plan(op.count, (*path, "count"), scope)
            return lambda c: sum(1 for _ in c.world.history(plan, c))
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

    def reference(self, ref: str, path: tuple[str | int, ...], scope: _Scope) -> Getter:
        if not m.reference_ok(ref):
            self.error(
                "PE117",
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
                    "PE117",
                    "$party is only defined inside an expectation's where/met/late/missed",
                    path,
                )
            return lambda c: c.party
        if root == "item":
            if not scope.item:
                self.error("PE117", "$item is only defined inside `for_each`", path)
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
                self.error("PE117", f"{ref} is not available here", path, hint)
                return lambda c: None
            if len(rest) != 1:
                self.error("PE117", f"{ref}: name one field, like ${root}.customer", path)
                return lambda c: None
            name = rest[0]
            known = self.fields_of(types)
            if name not in known:
                self.error(
                    "PE113",
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
            "PE117",
            f"unknown subject property in {ref!r}",
            path,
            "use $subject, $subject.owner, $subject.owner_since, $subject.flags.NAME "
            "or $subject.counters.NAME",
        )
        return lambda c: None

    def history_plan(
        self, q: m.HistoryQuery, path: tuple[str | int, ...], scope: _Scope
    ) -> HistoryPlan:
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
        path: tuple[str | int, ...],
        scope: _Scope,
    ) -> tuple[tuple[tuple[str, Getter], ...], Getter | None]:
        known = self.fields_of(types)
        out: list[tuple[str, Getter]] = []
        subject: Getter | None = None
        for name, value in spec.items():
            if name not in known:
                self.error(
                    "PE113",
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
    def condition(self, cond: Any, path: tuple[str | int, ...], scope: _Scope) -> Pred:
        if isinstance(cond, bool):
            return (lambda c: True) if cond else (lambda c: False)
        if isinstance(cond, m.All):
            parts = [self.condition(x, (*path, "all", i), scope) for i, x in enumerate(cond.all)]
            return _conjunction(parts)
        if isinstance(cond, m.AnyOf):
            parts = [self.condition(x, (*path, "any", i), scope) for i, x in enumerate(cond.any)]
            return _disjunction(parts)
        if isinstance(cond, m.Not):
            inner = self.condition(cond.not_, (*path, "not"), scope)
            return lambda c: not inner(c)
        if isinstance(cond, m.Exists):
            g = self.operand(cond.exists, (*path, "exists"), scope)
            return lambda c: g(c) is not None
        if isinstance(cond, m.History):
            plan = self.history_plan(cond.history, (*path, "history"), scope)
            return lambda c: next(iter(c.world.history(plan, c)), None) is not None
        if isinstance(cond, m.In):
            a = self.operand(cond.in_[0], (*path, "in", 0), scope)
            b = self.operand(cond.in_[1], (*path, "in", 1), scope)

            def member(c: Ctx) -> bool:
                x, items = a(c), b(c) or ()
                if isinstance(x, str):
                    return x in items
                return any(_equal(x, item) for item in items)

            return member
        for op in ("eq", "ne", "lt", "le", "gt", "ge"):
            if isinstance(cond, getattr(m, op.capitalize())):
                pair = getattr(cond, op)
                a = self.operand(pair[0], (*path, op, 0), scope)
                b = self.operand(pair[1], (*path, op, 1), scope)
                if op in ("eq", "ne"):
                    fast = _literal_equality(op, pair, a, b)
                    if fast is not None:
                        return fast
                return _comparison(op, a, b)
        raise AssertionError(f"unhandled condition {cond!r}")  # pragma: no cover

    # -- actions
    def actions(
        self, acts: list[Any], path: tuple[str | int, ...], scope: _Scope
    ) -> tuple[CAction, ...]:
        return tuple(self.action(a, (*path, i), scope) for i, a in enumerate(acts))

    def action(self, act: Any, path: tuple[str | int, ...], scope: _Scope) -> CAction:
        each_subject = None
        if act.for_each_subject is not None:
            each_subject = self.operand(act.for_each_subject, (*path, "for_each_subject"), scope)
        for_each = None
        if act.for_each is not None:
            for_each = self.operand(act.for_each, (*path, "for_each"), scope)
            scope = _Scope(scope.event, scope.trigger, item=True, party=scope.party)
        when = self.condition(act.when, (*path, "when"), scope) if act.when is not None else None
        base: dict[str, Any] = {
            "when": when,
            "for_each": for_each,
            "for_each_subject": each_subject,
        }

        def op(v: Any, *p: str | int) -> Getter:
            return self.operand(v, (*path, *p), scope)

        if isinstance(act, m.ClaimAction):
            return CAction("claim", value=op(act.claim, "claim"), **base)
        if isinstance(act, m.LapseClaimAction):
            return CAction("lapse_claim", value=op(act.lapse_claim, "lapse_claim"), **base)
        if isinstance(act, m.DropClaimsAction):
            return CAction("drop_claims", value=op(act.drop_claims, "drop_claims"), **base)
        if isinstance(act, m.AssignAction):
            if isinstance(act.assign, m.AssignSpec):
                subj = (
                    op(act.assign.subject, "assign", "subject")
                    if act.assign.subject is not None
                    else None
                )
                return CAction(
                    "assign", value=op(act.assign.owner, "assign", "owner"), subject=subj, **base
                )
            return CAction("assign", value=op(act.assign, "assign"), **base)
        if isinstance(act, m.ReleaseAction):
            subj = op(act.release, "release") if act.release is not None else None
            return CAction("release", subject=subj, **base)
        if isinstance(act, m.TransferAction):
            return CAction(
                "transfer",
                value=op(act.transfer.from_, "transfer", "from"),
                target=op(act.transfer.to, "transfer", "to"),
                **base,
            )
        if isinstance(act, m.PenaltyAction):
            return CAction(
                "penalty", penalty=self.penalty(act.penalty, (*path, "penalty"), scope), **base
            )
        if isinstance(act, m.ExpectAction):
            return CAction(
                "expect", expect=self.expect(act.expect, (*path, "expect"), scope), **base
            )
        if isinstance(act, m.SetAction):
            subj = op(act.set.subject, "set", "subject") if act.set.subject is not None else None
            return CAction(
                "set",
                name=act.set.flag,
                value=op(act.set.value, "set", "value"),
                subject=subj,
                **base,
            )
        if isinstance(act, m.ClearAction):
            return CAction("clear", name=act.clear, **base)
        if isinstance(act, m.AddAction):
            party = op(act.add.party, "add", "party") if act.add.party is not None else None
            return CAction(
                "add", name=act.add.counter, value=op(act.add.by, "add", "by"), target=party, **base
            )
        if isinstance(act, m.RejectAction):
            return CAction("reject", text=act.reject, **base)
        if isinstance(act, m.ViolationAction):
            if isinstance(act.violation, str):
                return CAction("violation", text=act.violation, **base)
            vparty = act.violation.party
            return CAction(
                "violation",
                text=act.violation.what,
                target=op(vparty, "violation", "party") if vparty is not None else None,
                **base,
            )
        raise AssertionError(f"unhandled action {act!r}")  # pragma: no cover

    def penalty(self, spec: m.PenaltySpec, path: tuple[str | int, ...], scope: _Scope) -> CPenalty:
        def opt(v: Any, *p: str | int) -> Getter | None:
            return None if v is None else self.operand(v, (*path, *p), scope)

        if spec.ladder is not None:
            steps = tuple(
                CStep(
                    s.sanction,
                    opt(s.amount, "ladder", i, "amount"),
                    opt(s.salary_days, "ladder", i, "salary_days"),
                )
                for i, s in enumerate(spec.ladder)
            )
        else:
            assert spec.sanction is not None
            steps = (
                CStep(
                    spec.sanction, opt(spec.amount, "amount"), opt(spec.salary_days, "salary_days")
                ),
            )
        return CPenalty(
            party=self.operand(spec.party, (*path, "party"), scope),
            steps=steps,
            ladder=spec.ladder is not None,
            ladder_key=spec.ladder_key,
            per_unit=opt(spec.per_unit, "per_unit"),
            units=opt(spec.units, "units"),
        )

    def expect(self, ex: m.Expect, path: tuple[str | int, ...], scope: _Scope) -> CExpect:
        types = (ex.event,) if isinstance(ex.event, str) else tuple(ex.event)
        self.check_types(types, (*path, "event"))
        creator = scope.event if scope.event is not None else scope.trigger
        create_scope = _Scope(scope.event, scope.trigger, scope.item)
        match, subject = self.match_fields(ex.match, types, (*path, "match"), create_scope)
        candidate = _Scope(types, creator, party=True)
        where = (
            self.condition(ex.where, (*path, "where"), candidate) if ex.where is not None else None
        )
        within = self.duration(ex.within, (*path, "within"))
        after = self.duration(ex.after, (*path, "after"))
        cancel_types: tuple[str, ...] = ()
        cancel_match: tuple[tuple[str, Getter], ...] = ()
        cancel_where: Pred | None = None
        if ex.cancel_on is not None:
            cancel_types = (
                (ex.cancel_on.event,)
                if isinstance(ex.cancel_on.event, str)
                else tuple(ex.cancel_on.event)
            )
            self.check_types(cancel_types, (*path, "cancel_on", "event"))
            cmatch, csubj = self.match_fields(
                ex.cancel_on.match, cancel_types, (*path, "cancel_on", "match"), create_scope
            )
            cancel_match = cmatch if csubj is None else ((self.subject_field, csubj), *cmatch)
            if ex.cancel_on.where is not None:
                cancel_where = self.condition(
                    ex.cancel_on.where,
                    (*path, "cancel_on", "where"),
                    _Scope(cancel_types, creator, party=True),
                )
        steps: tuple[CStepSpec, ...] | None = None
        if ex.steps is not None:
            compiled_steps = []
            for i, st in enumerate(ex.steps):
                spath = (*path, "steps", i)
                stypes = types
                if st.event is not None:
                    stypes = (st.event,) if isinstance(st.event, str) else tuple(st.event)
                    self.check_types(stypes, (*spath, "event"))
                swhere = where
                if st.where is not None:
                    own = self.condition(
                        st.where, (*spath, "where"), _Scope(stypes, creator, party=True)
                    )
                    swhere = own if where is None else _conjunction([where, own])
                compiled_steps.append(
                    CStepSpec(
                        stypes,
                        swhere,
                        self.duration(st.within, (*spath, "within")),
                        self.duration(st.after, (*spath, "after")),
                        st.obligation if st.obligation is not None else ex.obligation,
                    )
                )
            steps = tuple(compiled_steps)
        party = (
            self.operand(ex.party, (*path, "party"), create_scope) if ex.party is not None else None
        )
        key = self.operand(ex.key, (*path, "key"), create_scope) if ex.key is not None else None
        about = (
            self.operand(ex.about, (*path, "about"), create_scope) if ex.about is not None else None
        )
        return CExpect(
            types=types,
            subject=subject,
            match=match,
            where=where,
            within=within,
            after=after,
            cancel_types=cancel_types,
            cancel_match=cancel_match,
            obligation=ex.obligation,
            party=party,
            met=self.actions(ex.met, (*path, "met"), candidate),
            late=self.actions(ex.late, (*path, "late"), candidate),
            missed=self.actions(ex.missed, (*path, "missed"), _Scope(None, creator, party=True)),
            cancel_where=cancel_where,
            steps=steps,
            every=ex.every,
            repeat=ex.repeat,
            consume=ex.consume,
            in_order=ex.in_order,
            key=key,
            key_scope=ex.key_scope,
            about=about,
            out_of_order=self.actions(ex.out_of_order, (*path, "out_of_order"), candidate),
        )

    def label(self, name: str, label: m.Label, source: Source) -> CLabel:
        """Cases see the subject and the history; with ``on``, also the classifying event."""
        self.site = RuleSite(_NO_RULE, source, -1)
        self.site_root = ("labels", name)
        on = tuple(label.on if isinstance(label.on, list) else [label.on] if label.on else [])
        self.check_types(on, ("on",))
        scope = _Scope(on or None, None)
        cases = tuple(
            (case.value, self.condition(case.when, ("cases", i, "when"), scope), case.reason)
            for i, case in enumerate(label.cases)
        )
        subject = (
            self.operand(label.subject, ("subject",), scope) if label.subject is not None else None
        )
        return CLabel(name, (name, tuple(label.clauses)), cases, on, subject)

    def invariant(self, inv: m.PolicyInvariant, source: Source, index: int) -> tuple[str, Pred]:
        """Like a label's case: the subject and the history at as_of, no current event."""
        self.site = RuleSite(_NO_RULE, source, -1)
        self.site_root = ("invariants", index)
        return inv.id, self.condition(inv.holds, ("holds",), _Scope(None, None))

    def metric(self, metric: m.Metric, source: Source, index: int, before: set[str]) -> CMetric:
        self.site = RuleSite(_NO_RULE, source, -1)
        self.site_root = ("metrics", index)
        period = _Scope(("@" + metric.every,), None)
        per_party = _Scope(("@" + metric.every,), None, party=True, metrics=frozenset(before))
        target = metric.target
        op = target.op if target is not None else None
        numerator = metric.value if metric.value is not None else metric.numerator
        return CMetric(
            id=metric.id,
            ref=(metric.id, tuple(metric.clauses)),
            every=metric.every,
            parties=self.operand(metric.parties, ("parties",), period),
            numerator=self.operand(
                numerator, ("value" if metric.value is not None else "numerator",), per_party
            ),
            denominator=(
                self.operand(metric.denominator, ("denominator",), per_party)
                if metric.denominator is not None
                else None
            ),
            op=op,
            target=(
                self.operand(getattr(target, op), ("target", op), period)
                if target is not None and op is not None
                else None
            ),
            grades=tuple(
                (
                    g.grade,
                    self.operand(g.min, ("grades", i, "min"), period)
                    if g.min is not None
                    else None,
                )
                for i, g in enumerate(metric.grades or ())
            ),
        )

    def award(self, award: m.Award, source: Source, index: int, metrics: dict[str, str]) -> CAward:
        """An award ranks parties by metrics of one period; all of them must share its unit."""
        self.site = RuleSite(_NO_RULE, source, -1)
        self.site_root = ("awards", index)
        keys: list[tuple[str, bool, tuple[str | int, ...]]] = [
            (award.metric, award.order == "highest", ("metric",))
        ]
        keys += [
            (tb.metric, tb.order == "highest", ("tie_break", i, "metric"))
            for i, tb in enumerate(award.tie_break)
        ]
        every = metrics.get(award.metric, "month")
        for mid, _, where in keys:
            if mid not in metrics:
                self.error(
                    "PE117",
                    f"award {award.id!r} ranks by unknown metric {mid!r}",
                    where,
                    did_you_mean(mid, metrics) or "name a metric declared under `metrics:`",
                )
            elif metrics[mid] != every:
                self.error(
                    "PE117",
                    f"metric {mid!r} is measured every {metrics[mid]}, not every {every}",
                    where,
                    "rank by metrics of the same period",
                )
        return CAward(
            id=award.id,
            ref=(award.id, tuple(award.clauses)),
            every=every,
            title=award.title,
            keys=tuple((mid, hi) for mid, hi, _ in keys),
            winners=award.winners,
        )

    def rule(self, site: RuleSite, order: int) -> CompiledRule:
        self.site = site
        rule = site.rule
        triggers = tuple(rule.triggers)
        self.check_types(triggers, ("on",))
        scope = _Scope(triggers if rule.every is None else ("@" + rule.every,), None)
        when = self.condition(rule.when, ("when",), scope) if rule.when is not None else None
        actions = list(self.actions(rule.then, ("then",), scope))
        if rule.expect is not None:
            actions.append(CAction("expect", expect=self.expect(rule.expect, ("expect",), scope)))
        return CompiledRule(
            id=rule.id,
            clauses=tuple(rule.clauses),
            order=order,
            triggers=triggers,
            when=when,
            overrides=frozenset(rule.overrides),
            actions=tuple(actions),
            rejects=any(a.kind == "reject" for a in actions),
            location=site.locate("id"),
            every=rule.every,
        )


def _conjunction(parts: list[Pred]) -> Pred:
    """``all``, folded into nested closures: no generator per call in the inner loop."""
    if not parts:
        return lambda c: True
    head, *rest = parts
    if not rest:
        return head
    tail = _conjunction(rest)
    return lambda c: head(c) and tail(c)


def _disjunction(parts: list[Pred]) -> Pred:
    if not parts:
        return lambda c: False
    head, *rest = parts
    if not rest:
        return head
    tail = _disjunction(rest)
    return lambda c: head(c) or tail(c)


def _plain(value: Any) -> Any:
    """A one-value money parameter compares as its amount (``gt: [$event.total, $params.cap]``)."""
    return value.low if isinstance(value, m.Money) and value.low == value.high else value


def _equal(x: Any, y: Any) -> bool:
    """Python's ``True == 1`` is not the manual's: a yes/no never equals a number."""
    if type(x) is type(y):  # the common case (text against text) stays one comparison
        return bool(x == y)
    x, y = _plain(x), _plain(y)
    return isinstance(x, bool) == isinstance(y, bool) and bool(x == y)


def _literal_equality(op: str, pair: Any, a: Getter, b: Getter) -> Pred | None:
    """``eq``/``ne`` against a literal null or text, the commonest guards (``owner: null``,
    ``channel: feedback``), as one identity or string test: ``_equal`` gives the same answer
    there, since no other kind of value equals null or a text."""
    for lit, other in ((pair[1], a), (pair[0], b)):
        if lit is None:
            if op == "eq":
                return lambda c: other(c) is None
            return lambda c: other(c) is not None
        if isinstance(lit, str) and not lit.startswith("$"):
            text = lit
            if op == "eq":
                return lambda c: other(c) == text
            return lambda c: other(c) != text
    return None


def _comparison(op: str, a: Getter, b: Getter) -> Pred:
    if op == "eq":
        return lambda c: _equal(a(c), b(c))
    if op == "ne":
        return lambda c: not _equal(a(c), b(c))

    def ordered(c: Ctx) -> bool:
        x, y = _plain(a(c)), _plain(b(c))
        if x is None or y is None or isinstance(x, bool) or isinstance(y, bool):
            return False
        try:
            if op == "lt":
                return bool(x < y)
            if op == "le":
                return bool(x <= y)
            if op == "gt":
                return bool(x > y)
            return bool(x >= y)
        except TypeError:
            return False

    return ordered


def resolve_params(
    pset: PolicySet, overrides: Mapping[str, Any] | None, sink: ProblemSink
) -> dict[str, Any]:
    """Declared defaults, with a company's overrides (validated like the declarations)."""
    values: dict[str, Any] = {name: p.value() for name, p in pset.params.items()}
    for name, raw in (overrides or {}).items():
        declared = pset.params.get(name)
        where = Location("<params>", 1, 1)
        if declared is None:
            sink.add(
                "PE110",
                f"parameter override {name!r} is not declared by the policy",
                where,
                did_you_mean(name, pset.params),
            )
            continue
        kind = declared.kind
        if isinstance(raw, Mapping) and set(raw) == {kind}:
            raw = raw[kind]  # written the way it is declared: {duration: 3 working days}
        if kind == "table" and isinstance(raw, Mapping):
            raw = {**(declared.table or {}), **raw}  # a company overrides some rows only
        try:
            values[name] = m.Param.model_validate({kind: raw}).value()
        except Exception as exc:  # pydantic ValidationError or ValueError, reported alike
            sink.add("PE106", f"parameter override {name!r}: {exc}", where)
    return values


def compile_policy(
    pset: PolicySet, sink: ProblemSink, params: Mapping[str, Any] | None = None
) -> CompiledPolicy:
    values = resolve_params(pset, params, sink)
    comp = _Compiler(pset, values, sink)
    rules = tuple(comp.rule(site, i) for i, site in enumerate(pset.rules))
    _rank(rules)
    for r in rules:
        r.ref = (r.id, r.clauses)
    by_trigger: dict[str, list[CompiledRule]] = {}
    periodic: dict[str, list[CompiledRule]] = {}
    for r in rules:
        if r.every is not None:
            periodic.setdefault(r.every, []).append(r)
        for t in r.triggers:
            by_trigger.setdefault(t, []).append(r)
    awaited: set[str] = set()

    def collect(actions: tuple[CAction, ...]) -> None:
        for a in actions:
            if a.expect is not None:
                awaited.update(a.expect.all_types)
                awaited.update(a.expect.cancel_types)
                collect(a.expect.met + a.expect.late + a.expect.missed + a.expect.out_of_order)

    for r in rules:
        collect(r.actions)
    events = {
        name: tuple(
            FieldCheck(
                fname,
                f.type,
                not f.optional and f.default is None,
                frozenset(f.enum) if f.enum is not None else None,
                f.min,
                f.max,
                f.default,
            )
            for fname, f in et.fields.items()
        )
        for name, et in pset.events.items()
    }
    labels = tuple(comp.label(name, lab, src) for name, (lab, src) in pset.labels.items())
    measured: dict[str, str] = {}
    compiled_metrics: list[CMetric] = []
    for mt, src, i in pset.metrics:
        same_period = {mid for mid, unit in measured.items() if unit == mt.every}
        compiled_metrics.append(comp.metric(mt, src, i, same_period))
        measured[mt.id] = mt.every
    metrics = tuple(compiled_metrics)
    awards = tuple(comp.award(aw, src, i, measured) for aw, src, i in pset.awards)
    invariants = tuple(comp.invariant(iv, src, i) for iv, src, i in pset.invariants)
    return CompiledPolicy(
        id=pset.id,
        version=pset.version,
        timezone=pset.meta.timezone,
        currency=pset.meta.currency,
        subject_field=pset.meta.subject,
        unknown_events=pset.meta.unknown_events,
        clauses=dict(pset.clauses),
        params=values,
        events=events,
        param_decls=dict(pset.params),
        invariants=invariants,
        rules=rules,
        by_trigger={t: tuple(rs) for t, rs in by_trigger.items()},
        awaited=frozenset(awaited),
        periodic={unit: tuple(rs) for unit, rs in periodic.items()},
        labels=labels,
        metrics=metrics,
        awards=awards,
    )


def _rank(rules: tuple[CompiledRule, ...]) -> None:
    """Longest override chain below each rule; overriders get the higher rank."""
    by_id = {r.id: r for r in rules}
    memo: dict[str, int] = {}

    def depth(rid: str, seen: frozenset[str]) -> int:
        if rid in memo:
            return memo[rid]
        r = by_id.get(rid)
        if r is None or rid in seen:
            return 0
        d = 1 + max((depth(t, seen | {rid}) for t in r.overrides), default=-1)
        memo[rid] = d
        return d

    for r in rules:
        r.rank = depth(r.id, frozenset())


class _AnyField(frozenset[str]):
    """The fields of an undeclared event type: every name is taken to be one."""

    def __contains__(self, item: object) -> bool:
        return True


_ANY_FIELD: Final = _AnyField()


# ---------------------------------------------------------------- numbers


def as_number(value: Any) -> Decimal | None:
    """An exact number, or None: ints and decimals as they are, a one-value money amount
    (``{money: 30000}``) as its amount; booleans, text and money ranges are not numbers."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, m.Money) and value.low == value.high:
        return value.low
    return None


def _numbers(value: Any) -> list[Decimal]:
    """Numbers of a value or a list of values, lists inside flattened once, nulls skipped."""
    items = value if isinstance(value, list | tuple) else [value]
    out: list[Decimal] = []
    for item in items:
        for v in item if isinstance(item, list | tuple) else (item,):
            n = as_number(v)
            if n is not None:
                out.append(n)
    return out


def _div(nums: list[Decimal]) -> Decimal | None:
    return None if nums[1] == 0 else nums[0] / nums[1]


def _product(nums: list[Decimal]) -> Decimal:
    out = Decimal(1)
    for n in nums:
        out *= n
    return out


_FOLDS: Final[dict[str, Callable[[list[Decimal]], Decimal | None]]] = {
    "sum": lambda ns: sum(ns, Decimal(0)),
    "min": lambda ns: min(ns) if ns else None,
    "max": lambda ns: max(ns) if ns else None,
    "avg": lambda ns: sum(ns, Decimal(0)) / len(ns) if ns else None,
}
_FOLD_KEY: Final[dict[type[BaseModel], str]] = {
    m.Sum: "sum",
    m.MinOf: "min",
    m.MaxOf: "max",
    m.Avg: "avg",
}
_ARITH_KEY: Final[dict[type[BaseModel], str]] = {
    m.Add: "add",
    m.Sub: "sub",
    m.Mul: "mul",
    m.Div: "div",
}
_ARITH: Final[dict[str, Callable[[list[Decimal]], Decimal | None]]] = {
    "add": lambda ns: sum(ns, Decimal(0)),
    "sub": lambda ns: ns[0] - ns[1],
    "mul": _product,
    "div": _div,
}


def walk_actions(policy: CompiledPolicy) -> Iterator[CAction]:
    """Every action of the compiled rules, depth first, an expectation's branches (met, late,
    missed, out of order) right after it: the same order in every process that compiled the
    same policy, so positions in it name closures that cannot be stored or sent."""

    def walk(actions: tuple[CAction, ...]) -> Iterator[CAction]:
        for a in actions:
            yield a
            e = a.expect
            if e is not None:
                for branch in (e.met, e.late, e.missed, e.out_of_order):
                    yield from walk(branch)

    for rule in policy.rules:
        yield from walk(rule.actions)
