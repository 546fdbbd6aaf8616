"""A second evaluator: the same compiled policy, with durable_rules deciding which rules match.

The World keeps its clock, its state and its actions; ``_Run`` (a ``runtime.state.Hooks``)
asserts each step to one durable ruleset as a fact and hands back the rules durable matched.
Conditions durable cannot hold exactly stay compiled closures. An optional extra, imported only
for ``backend="durable"``: a differential check of the engine, not a faster path. Why, how a
step goes, which conditions are translated and the quirks of durable-rules 2.0.28:
``docs/durable.md``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel

from policyengine.errors import Code, EvaluationError, Problem
from policyengine.language import model as m
from policyengine.language.compiler import OWNER_CHANGED, CompiledPolicy, CompiledRule, Ctx
from policyengine.language.visitor import Visitor, node_types
from policyengine.runtime.evaluate import evaluate as engine_evaluate
from policyengine.runtime.records import OPEN
from policyengine.runtime.state import (
    MAX_SPAN_YEARS,
    Alarm,
    Close,
    Hooks,
    Pending,
    Renew,
    Tick,
)

if TYPE_CHECKING:
    from policyengine.language.program import Program
    from policyengine.runtime.decision import Decision
    from policyengine.runtime.events import History

# ---------------------------------------------------------------- the translation

STR: Final = "str"
INT: Final = "int"
BOOL: Final = "bool"
NULL: Final = "null"
_KINDS: Final[dict[str, str]] = {"str": STR, "date": STR, "int": INT, "time": INT, "bool": BOOL}
_INT_LIMIT: Final = 2**62  # durable parses whole numbers as 64-bit, saturating
_TEXT_LIMIT: Final = 16_000  # durable keeps string lengths in 16 bits (of UTF-8 bytes)
_MAX_GROUPS: Final = 15  # 2 expression slots per $and/$or, 32 per rule (error 113)
_MIRROR: Final[dict[str, str]] = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_OPS: Final[dict[str, str]] = {"lt": "lt", "le": "lte", "gt": "gt", "ge": "gte"}
_NEGATED: Final[dict[str, str]] = {
    "eq": "neq",
    "neq": "eq",
    "lt": "gte",
    "lte": "gt",
    "gt": "lte",
    "gte": "lt",
}
_NOT_CONSTANT: Final = object()

# A translated condition: True / False, or a tuple
#   ("eq"|"neq"|"lt"|"lte"|"gt"|"gte", key, literal)  the field is present and compares so
#   ("ex"|"nex", key)                                  the field is present / absent
#   ("and"|"or", (parts...))
Expr = bool | tuple[Any, ...]


def _text_fits(value: str) -> bool:
    return 0 < len(value) < _TEXT_LIMIT and value.isprintable()


def _kind_of_value(value: Any) -> str | None:
    """The durable kind a literal (or an event value) is carried as, or None if it is not."""
    if value is None:
        return NULL
    t = type(value)
    if t is bool:
        return BOOL
    if t is int:
        return INT if -_INT_LIMIT < value < _INT_LIMIT else None
    if t is str:
        return STR if _text_fits(value) else None
    return None


def _safe(cond: Any) -> bool:
    """Whether a closure condition cannot raise (no calendar arithmetic, no history, no
    membership in a value that may not be a list): conjuncts after it can still be
    pre-filtered by durable without hiding an error the native path would raise."""
    if isinstance(cond, bool):
        return True
    return _SAFE.visit(cond)


def _safe_operand(op: Any) -> bool:
    if isinstance(op, list):
        return all(_safe_operand(x) for x in op)
    if isinstance(op, BaseModel):
        return _SAFE.visit(op)
    return not isinstance(op, dict)  # literals and plain references


def _listed(op: Any) -> bool:
    """Whether a value is surely a list: a literal list, ``{claims: ...}``, ``{owners: ...}``."""
    return isinstance(op, list) or (isinstance(op, BaseModel) and _LISTS.visit(op))


class _Safe(Visitor[bool]):
    """``_safe`` of conditions and ``_safe_operand`` of the values in them: one method per
    model that cannot raise when its parts cannot."""

    # history queries, calendar arithmetic, numbers, other subjects' state, named conditions
    # (compiled at their use, not read here): may raise
    ignores = node_types(m.History, m.ConditionRef) | (
        frozenset(m.OPERAND_MODELS) - node_types(m.OwnerOf, m.Len, m.Claims, m.Owners)
    )

    def ignore(self, node: BaseModel) -> bool:
        return False

    def visit_All(self, cond: m.All) -> bool:
        return all(_safe(c) for c in cond.all)

    def visit_AnyOf(self, cond: m.AnyOf) -> bool:
        return all(_safe(c) for c in cond.any)

    def visit_Not(self, cond: m.Not) -> bool:
        return _safe(cond.not_)

    def visit_Exists(self, cond: m.Exists) -> bool:
        return _safe_operand(cond.exists)

    def visit_In(self, cond: m.In) -> bool:
        a, b = cond.in_
        return _listed(b) and _safe_operand(a) and _safe_operand(b)

    def _compared(self, cond: m.Eq | m.Ne | m.Lt | m.Le | m.Gt | m.Ge) -> bool:
        return all(_safe_operand(x) for x in next(iter(cond.__dict__.values())))

    visit_Eq = visit_Ne = visit_Lt = visit_Le = visit_Gt = visit_Ge = _compared

    def visit_OwnerOf(self, op: m.OwnerOf) -> bool:
        return _safe_operand(op.owner_of)

    def visit_Len(self, op: m.Len) -> bool:
        return _listed(op.len) and _safe_operand(op.len)

    def visit_Claims(self, op: m.Claims | m.Owners) -> bool:
        return True

    visit_Owners = visit_Claims


class _Lists(Visitor[bool]):
    """The values that are lists whatever the state: claims and owners."""

    ignores = frozenset(m.OPERAND_MODELS) - node_types(m.Claims, m.Owners)

    def ignore(self, op: BaseModel) -> bool:
        return False

    def visit_Claims(self, op: m.Claims | m.Owners) -> bool:
        return True

    visit_Owners = visit_Claims


_SAFE: Final = _Safe()
_LISTS: Final = _Lists()


def _and(parts: Iterable[Expr]) -> Expr:
    out: list[Expr] = []
    for p in parts:
        if p is False:
            return False
        if p is True:
            continue
        assert isinstance(p, tuple)
        out.extend(p[1] if p[0] == "and" else (p,))
    if not out:
        return True
    return out[0] if len(out) == 1 else ("and", tuple(out))


def _or(parts: Iterable[Expr]) -> Expr:
    out: list[Expr] = []
    for p in parts:
        if p is True:
            return True
        if p is False:
            continue
        assert isinstance(p, tuple)
        out.extend(p[1] if p[0] == "or" else (p,))
    if not out:
        return False
    return out[0] if len(out) == 1 else ("or", tuple(out))


def _negate(e: Expr) -> Expr:
    """``not``, pushed to the atoms: absent fields are unequal to everything, never ordered."""
    if isinstance(e, bool):
        return not e
    tag = e[0]
    if tag == "and":
        return _or(_negate(p) for p in e[1])
    if tag == "or":
        return _and(_negate(p) for p in e[1])
    if tag == "ex":
        return ("nex", e[1])
    if tag == "nex":
        return ("ex", e[1])
    return _or([("nex", e[1]), (_NEGATED[tag], e[1], e[2])])


def _groups(definition: Any) -> int:
    if isinstance(definition, dict):
        own = sum(1 for k in definition if k in ("$and", "$or"))
        return own + sum(_groups(v) for v in definition.values())
    if isinstance(definition, list):
        return sum(_groups(v) for v in definition)
    return 0


class _Slots:
    """Fact keys for the event fields conditions read: ``f0``, ``f1``... so that no field name
    (``id``, ``sid``, dotted or non-ASCII names) can collide with durable's own keys."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], str] = {}
        self.by_type: dict[str, dict[str, tuple[str, str, str]]] = {}

    def key(self, name: str, kind: str, types: tuple[str, ...]) -> str:
        key = self.keys.setdefault((name, kind), f"f{len(self.keys)}")
        for t in types:
            self.by_type.setdefault(t, {})[key] = (name, key, kind)
        return key


class _Translator(Visitor[tuple[Expr, bool]]):
    """One rule's ``when`` -> (a durable condition it implies, whether it is equivalent)."""

    # history queries and named conditions: the closure decides
    ignores = node_types(m.History, m.ConditionRef)

    def __init__(self, policy: CompiledPolicy, types: tuple[str, ...], slots: _Slots) -> None:
        self.policy = policy
        self.types = types
        self.slots = slots

    def field_kind(self, name: str) -> str | None:
        kinds = {self._kind(t, name) for t in self.types}
        kind = kinds.pop() if len(kinds) == 1 else None
        return kind

    def _kind(self, etype: str, name: str) -> str | None:
        if name in ("id", "type"):
            return STR
        if name == "at":
            return INT
        if etype.startswith("@"):  # a calendar tick
            return {"period": STR, "start": INT, "end": INT}.get(name)
        checks = self.policy.events.get(etype)
        if checks is None:
            derived = (self.policy.subject_field, "owner", "previous")
            return STR if etype == OWNER_CHANGED and name in derived else None
        for check in checks:
            if check.name == name:
                return _KINDS.get(check.type)
        return None

    def event_field(self, op: Any) -> tuple[str, str] | None:
        if not (isinstance(op, str) and op.startswith("$event.") and op.count(".") == 1):
            return None
        name = op[len("$event.") :]
        kind = self.field_kind(name)
        return (name, kind) if kind is not None else None

    def constant(self, op: Any) -> Any:
        if isinstance(op, BaseModel | list | dict):
            return _NOT_CONSTANT
        if isinstance(op, str):
            if op.startswith("$$"):
                return op[1:]
            if m.is_reference(op):
                parts = op[1:].split(".")
                if parts[0] == "params" and len(parts) == 2 and parts[1] in self.policy.params:
                    return self.policy.params[parts[1]]
                return _NOT_CONSTANT
        return op

    def key(self, name: str, kind: str) -> str:
        return self.slots.key(name, kind, self.types)

    # -- conditions: (expr, complete); expr is implied by the condition, and equivalent to
    # it when complete. An incomplete part's closure may raise, so nothing the native path
    # evaluates after it may filter it out.
    def condition(self, cond: Any) -> tuple[Expr, bool]:
        if isinstance(cond, bool):
            return cond, True
        return self.visit(cond)

    def ignore(self, cond: BaseModel) -> tuple[Expr, bool]:
        return True, False

    def visit_All(self, cond: m.All) -> tuple[Expr, bool]:
        parts: list[Expr] = []
        complete = True
        for sub in cond.all:
            e, ok = self.condition(sub)
            parts.append(e)
            if not ok:
                complete = False
                if not _safe(sub):
                    break  # it may raise: nothing after it may filter it out
        return _and(parts), complete and len(parts) == len(cond.all)

    def visit_AnyOf(self, cond: m.AnyOf) -> tuple[Expr, bool]:
        results = [self.condition(sub) for sub in cond.any]
        return _or(e for e, _ in results), all(ok for _, ok in results)

    def visit_Not(self, cond: m.Not) -> tuple[Expr, bool]:
        e, ok = self.condition(cond.not_)
        return (_negate(e), True) if ok else (True, False)

    def visit_Exists(self, cond: m.Exists) -> tuple[Expr, bool]:
        return self.exists(cond.exists)

    def visit_In(self, cond: m.In) -> tuple[Expr, bool]:
        return self.member(cond.in_[0], cond.in_[1])

    def visit_Eq(self, cond: m.Eq) -> tuple[Expr, bool]:
        return self.compare("eq", *cond.eq)

    def visit_Ne(self, cond: m.Ne) -> tuple[Expr, bool]:
        return self.compare("ne", *cond.ne)

    def visit_Lt(self, cond: m.Lt) -> tuple[Expr, bool]:
        return self.compare("lt", *cond.lt)

    def visit_Le(self, cond: m.Le) -> tuple[Expr, bool]:
        return self.compare("le", *cond.le)

    def visit_Gt(self, cond: m.Gt) -> tuple[Expr, bool]:
        return self.compare("gt", *cond.gt)

    def visit_Ge(self, cond: m.Ge) -> tuple[Expr, bool]:
        return self.compare("ge", *cond.ge)

    def exists(self, op: Any) -> tuple[Expr, bool]:
        f = self.event_field(op)
        if f is not None:
            return ("ex", self.key(*f)), True
        value = self.constant(op)
        if value is _NOT_CONSTANT:
            return True, False
        return value is not None, True

    def compare(self, op: str, a: Any, b: Any) -> tuple[Expr, bool]:
        fa, fb = self.event_field(a), self.event_field(b)
        if (fa is None) == (fb is None):
            return True, False  # two fields, or none: the closure decides
        if fa is None:
            a, b, fa = b, a, fb
            op = _MIRROR.get(op, op)
        assert fa is not None
        literal = self.constant(b)
        if literal is _NOT_CONSTANT:
            return True, False
        lk = _kind_of_value(literal)
        name, kind = fa
        if op in ("eq", "ne"):
            if lk == NULL:
                e: Expr = ("nex", self.key(name, kind))
            elif lk == kind:
                e = ("eq", self.key(name, kind), literal)
            else:
                return True, False
            return (e if op == "eq" else _negate(e)), True
        if lk in (NULL, BOOL) or kind == BOOL:
            self.key(name, kind)  # carried all the same: a value of another kind goes to `x`
            return False, True  # never ordered: null and yes/no are not numbers
        if lk == INT and kind == INT:
            return (_OPS[op], self.key(name, kind), literal), True
        return True, False

    def member(self, a: Any, b: Any) -> tuple[Expr, bool]:
        f = self.event_field(a)
        if f is None:
            return True, False
        name, kind = f
        key = self.key(name, kind)
        if isinstance(b, list):
            values = [self.constant(x) for x in b]
        else:
            whole = self.constant(b)
            if not isinstance(whole, list | tuple):
                return True, False
            values = list(whole)
        parts: list[Expr] = []
        for v in values:
            if v is _NOT_CONSTANT:
                return True, False
            vk = _kind_of_value(v)
            if vk is None:
                return True, False  # a decimal can equal a whole number: the closure decides
            if vk == NULL:
                parts.append(("nex", key))
            elif vk == kind:
                parts.append(("eq", key, v))
            # text, whole numbers and yes/no never equal one another
        return _or(parts), True


@dataclass(frozen=True)
class RulePlan:
    """How one compiled rule runs in durable (``translation`` reports these)."""

    rule: str
    index: int
    mode: str  # "full": durable decides; "partial": durable pre-filters, the closure decides;
    # "closure": durable matches the trigger only; "always": the rule has no `when`
    condition: dict[str, Any]  # the durable condition on the fact `m`
    closure: bool


@dataclass(frozen=True)
class _Plan:
    key: str  # names the ruleset: a digest of everything the ruleset is built from
    rules: tuple[RulePlan, ...]
    slots: dict[str, tuple[tuple[str, str, str], ...]]  # event type -> (field, key, kind)


def _plan(policy: Program, dm: Any) -> _Plan:
    compiled = policy.compiled
    models = policy.rules
    readable = len(models) == len(compiled.rules) and all(
        r.id == mr.id for r, mr in zip(compiled.rules, models, strict=True)
    )
    slots = _Slots()
    plans: list[RulePlan] = []
    for r in compiled.rules:
        types = r.triggers if r.every is None else ("@" + r.every,)
        trigger = _or(("eq", "t", t) for t in types)
        expr: Expr = True
        complete = r.when is None
        if r.when is not None and readable and models[r.order].when is not None:
            expr, complete = _Translator(compiled, types, slots).condition(models[r.order].when)
            if expr is False:  # never holds: the closure says so
                expr, complete = True, False
        if r.when is None:
            mode = "always"
        else:
            mode = "full" if complete else ("closure" if expr is True else "partial")
        if expr is not True:
            expr = _or([expr, ("ex", "x")])  # a value durable cannot carry: ask the closure
        definition = _durable(_and([trigger, expr]), dm).define()
        if _groups(definition) > _MAX_GROUPS:
            definition = _durable(trigger, dm).define()
            mode, complete = "closure", False
        plans.append(
            RulePlan(r.id, r.order, mode, definition, closure=not complete and r.when is not None)
        )
    by_type = {t: tuple(fields.values()) for t, fields in slots.by_type.items()}
    digest = hashlib.sha256(
        json.dumps(
            [[p.index, p.closure, p.condition] for p in plans] + [sorted(slots.keys.items())],
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:24]
    return _Plan(f"policyengine-{digest}", tuple(plans), by_type)


def _durable(e: Expr, dm: Any) -> Any:
    """The durable_rules expression (``durable.lang.m``) of a translated condition."""
    assert not isinstance(e, bool)
    tag = e[0]
    if tag in ("and", "or"):
        parts = [_durable(p, dm) for p in e[1]]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if tag == "and" else (out | p)
        return out
    attr = getattr(dm, e[1])
    if tag == "ex":
        return +attr
    if tag == "nex":
        return -attr
    value = e[2]
    if tag == "eq":
        return attr == value
    if tag == "neq":
        return attr != value
    if tag == "lt":
        return attr < value
    if tag == "lte":
        return attr <= value
    if tag == "gt":
        return attr > value
    return attr >= value


# ---------------------------------------------------------------- durable plumbing


def _fnv1a32(text: str) -> int:
    """durable's state index hash: two live ids with the same hash share one state."""
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


@dataclass
class _Ruleset:
    name: str
    runs: dict[str, _Run] = field(default_factory=dict)  # live state id -> its run


class _Backend:
    """The Host and the rulesets it has registered, created once per process (see the
    module doc for why), and a lock: the C engine is not re-entrant across threads."""

    def __init__(self, durable_engine: Any, durable_lang: Any) -> None:
        class Host(durable_engine.Host):  # type: ignore[misc]
            def _run(self) -> None:
                """No background timer threads: actions run inside assert_fact only."""

        self.host = Host()
        self.m = durable_lang.m
        self.lock = threading.RLock()
        self.rulesets: dict[str, _Ruleset] = {}
        self.plans: weakref.WeakKeyDictionary[Program, _Plan] = weakref.WeakKeyDictionary()
        self.sids: Iterator[str] = (f"pe{n}" for n in itertools.count(1))

    def plan(self, policy: Program) -> _Plan:
        with self.lock:
            plan = self.plans.get(policy)
            if plan is None:
                plan = self.plans[policy] = _plan(policy, self.m)
            return plan

    def ruleset(self, plan: _Plan) -> _Ruleset:
        with self.lock:
            rs = self.rulesets.get(plan.key)
            if rs is None:
                rs = _Ruleset(plan.key)
                definition: dict[str, Any] = {
                    f"r{p.index}": {"all": [{"m": p.condition}], "run": _action(rs, p)}
                    for p in plan.rules
                }
                definition["any"] = {
                    # never a key durable's own state carries (sid, id, $s): the state is a
                    # fact too, re-asserted after every action, so such a rule loops forever
                    "all": [{"m": (+self.m.t | +self.m.timer).define()}],
                    "run": _catch_all,
                }
                self.host.register_rulesets({plan.key: definition})
                self.rulesets[plan.key] = rs
            return rs

    def open(self, policy: Program) -> _Run:
        plan = self.plan(policy)
        rs = self.ruleset(plan)
        with self.lock:
            if len(rs.runs) >= 1000:
                raise RuntimeError("more than 1000 durable evaluations of one policy at once")
            taken = {_fnv1a32(sid) for sid in rs.runs}
            sid = next(self.sids)
            while _fnv1a32(sid) in taken:
                sid = next(self.sids)
            run = _Run(self, rs, plan, policy.compiled, sid)
            rs.runs[sid] = run
            return run

    def close(self, run: _Run) -> None:
        with self.lock:
            try:
                if run.seq:
                    self.host.delete_state(run.ruleset.name, run.sid)
            finally:
                del run.ruleset.runs[run.sid]


def _mark(c: Any) -> tuple[dict[str, Any], int]:
    """The state this step records into: durable keeps it between steps, so a new step
    starts a new list."""
    state: dict[str, Any] = c.s._d
    step = c.m["id"]
    if state.get("step") != step:
        state["step"] = step
        state["hits"] = []
    return state, step


def _catch_all(c: Any) -> None:
    _mark(c)


def _action(rs: _Ruleset, p: RulePlan) -> Callable[[Any], None]:
    index, closure = p.index, p.closure

    def action(c: Any) -> None:
        state, _ = _mark(c)
        if closure or c.m["x"] is not None:
            run = rs.runs[c.s.sid]
            when, ctx = run.compiled.rules[index].when, run.ctx
            assert ctx is not None
            try:
                holds = when is None or when(ctx)
            except BaseException as exc:  # durable would keep only its text
                run.errors.setdefault(index, exc)
                raise
            if not holds:
                return
        state["hits"].append(index)

    return action


class _Run(Hooks):
    """One evaluation's durable state, and the engine's ``Dispatcher``."""

    def __init__(
        self, backend: _Backend, ruleset: _Ruleset, plan: _Plan, compiled: CompiledPolicy, sid: str
    ) -> None:
        self.backend = backend
        self.ruleset = ruleset
        self.plan = plan
        self.compiled = compiled
        self.sid = sid
        self.seq = 0
        self.ctx: Ctx | None = None
        # rule index -> what its closure raised this step; the native path evaluates rules in
        # file order, so the first rule's error is the one it raises
        self.errors: dict[int, BaseException] = {}
        self.steps: list[tuple[str, int]] | None = None  # what was asserted, for tests

    def match(self, rules: tuple[CompiledRule, ...], ctx: Ctx) -> list[CompiledRule]:
        ev = ctx.event
        assert ev is not None
        self.ctx = ctx
        try:
            hits = self.post(ev["type"], ev["at"], ev)
        finally:
            self.ctx = None
        chosen = [r for r in rules if r.order in hits]
        if len(chosen) != len(hits):
            raise RuntimeError(
                f"durable matched rules {sorted(hits)} on a {ev['type']} step, which triggers "
                f"{[r.order for r in rules]}"
            )
        return chosen

    def timer(self, key: int, entry: Pending | Tick | Renew | Close | Alarm) -> None:
        if isinstance(entry, Tick):
            return  # the tick is a step of its own: match() posts it
        if isinstance(entry, Pending):
            if entry.state != OPEN or entry.due is None:
                return  # met or cancelled before its deadline: nothing fires
            self.post("deadline", key // 2, None)
        elif isinstance(entry, Renew):
            self.post("renew", key // 2, None)
        elif isinstance(entry, Alarm):
            self.post("alarm", key // 2, None)
        else:
            self.post("close", key // 2, None)

    def post(self, kind: str, at: int, ev: Mapping[str, Any] | None) -> set[int]:
        """Assert one step, read which rules recorded themselves, retract it.

        An event step carries its type as ``t``; a timer step carries ``timer`` instead, so
        that no rule (they all test ``t``) can match it, whatever the event types are named.
        """
        self.seq += 1
        fact: dict[str, Any] = {"sid": self.sid, "id": self.seq, "at": at}
        if ev is None:
            fact["timer"] = kind
        else:
            fact["t"] = kind
            for name, key, kind_of in self.plan.slots.get(kind, ()):
                value = ev.get(name)
                if value is None:
                    continue
                if _kind_of_value(value) == kind_of:
                    fact[key] = value
                else:
                    fact["x"] = 1
        if self.steps is not None:
            self.steps.append((kind, at))
        host, name = self.backend.host, self.ruleset.name
        with self.backend.lock:
            try:
                state = host.assert_fact(name, fact)
            finally:
                host.retract_fact(name, fact)
        if isinstance(state, dict) and "exception" in state:
            if self.errors:
                raise self.errors[min(self.errors)]
            raise RuntimeError(f"a durable action failed: {state['exception']}")
        if not isinstance(state, dict) or state.get("step") != self.seq:
            raise RuntimeError(f"durable did not finish the step {kind} at {at}: {state!r}")
        return set(state["hits"])


_BACKEND: _Backend | None = None
_CREATING = threading.Lock()  # two threads' first evaluations must not build two Hosts


def _backend() -> _Backend:
    global _BACKEND
    if _BACKEND is not None:
        return _BACKEND
    with _CREATING:
        if _BACKEND is not None:
            return _BACKEND
        try:
            from durable import engine as durable_engine
            from durable import lang as durable_lang
        except ImportError as exc:
            raise EvaluationError(
                [
                    Problem(
                        Code.DURABLE_UNAVAILABLE,
                        f"backend='durable' needs durable-rules, which cannot be imported ({exc})",
                        hint="pip install 'policyengine[durable]'",
                    )
                ]
            ) from exc
        _BACKEND = _Backend(durable_engine, durable_lang)
    return _BACKEND


# ---------------------------------------------------------------- entry points


def evaluate(
    policy: Program,
    history: History,
    as_of: int | None,
    steps: list[tuple[str, int]] | None = None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> Decision:
    """Evaluate with durable dispatching; ``steps`` (if given) collects what was asserted."""
    backend = _backend()
    run = backend.open(policy)
    run.steps = steps
    try:
        return engine_evaluate(policy.compiled, history, as_of, run, max_span=max_span)
    finally:
        backend.close(run)


def translation(policy: Program) -> dict[str, RulePlan]:
    """How each rule runs in durable: what was translated, and the durable condition."""
    return {p.rule: p for p in _backend().plan(policy).rules}
