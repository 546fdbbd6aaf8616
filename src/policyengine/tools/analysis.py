"""Static analysis of a valid policy (``policyengine check``): findings, not errors.

A policy that loads is well-formed; these checks look for what is legal but probably not
meant: two rules deciding one thing differently on one event, a rule that can never fire,
names declared and never used. They walk the validated pydantic models (the compiled
closures cannot be read back) and point at ``file:line:col`` through the loader's positions.

The checks are deliberately simple and sound in one direction: two conditions are called
exclusive, or one implied by another, only in the obvious cases (the same ``$event.F``
compared with literals through ``eq`` / ``ne`` / ``in``, conjunctions, equal conditions);
anything else is assumed to overlap, so PE401 may over-report and PE403 under-report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel

from policyengine.errors import Code, Family, Location, codes_of
from policyengine.language import model as m
from policyengine.language.compiler import OWNER_CHANGED
from policyengine.language.loader import Source
from policyengine.language.validate import PolicySet, RuleSite
from policyengine.language.visitor import Visitor, fields, node_types
from policyengine.policy import Policy, load_policy

# Stable codes, like errors.CODES. Never renumber.
CODES: Final[dict[str, str]] = codes_of(Family.ANALYSIS)


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    location: Location
    severity: str = "warning"
    related: tuple[Location, ...] = ()
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.location}: {self.code} {self.message}"
        if self.related:
            text += " (see " + ", ".join(str(r) for r in self.related) + ")"
        if self.hint:
            text += f" [{self.hint}]"
        return text


def analyze(path: str | Path | Policy) -> list[Finding]:
    """Every finding for the policy file or folder at ``path`` (or a loaded ``Policy``),
    sorted by position. Raises ``PolicyError`` when the policy does not load."""
    policy = path if isinstance(path, Policy) else load_policy(path)
    if policy.pset is None:
        raise ValueError("this Policy was built without its policy set; use load_policy")
    return _Analysis(policy.pset, policy.sources).run()


# ---------------------------------------------------------------- model walking


class _Uses(Visitor[None]):
    """The parameters (``$params.X`` in any text) and event types a declaration names."""

    # these name no event type themselves: only what is inside them is read
    ignores = frozenset(m.NODE_MODELS) - node_types(
        m.HistoryQuery, m.ValuesQuery, m.Expect, m.Step, m.CancelOn
    )

    def __init__(self) -> None:
        self.params: set[str] = set()
        self.events: set[str] = set()

    def read(self, node: BaseModel) -> None:
        for v in fields(node):
            if isinstance(v, BaseModel):
                self.visit(v)
            elif isinstance(v, str):
                self.params.update(_PARAM_RE.findall(v))

    def ignore(self, node: BaseModel) -> None:
        self.read(node)

    def visit_HistoryQuery(self, q: m.HistoryQuery) -> None:
        self.events.update(_names(q.type))
        self.read(q)

    visit_ValuesQuery = visit_HistoryQuery

    def visit_Expect(self, node: m.Expect | m.Step | m.CancelOn) -> None:
        self.events.update(_names(node.event))
        self.read(node)

    visit_Step = visit_CancelOn = visit_Expect


def _names(v: str | list[str] | None) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else list(v)


_PARAM_RE = re.compile(r"\$params\.([A-Za-z_][A-Za-z0-9_]*)")


def _dump(v: Any) -> Any:
    return v.model_dump(by_alias=True) if isinstance(v, BaseModel) else v


# ---------------------------------------------------------------- field constraints

Key = tuple[str, Any]  # a literal, keyed so that values the engine never equates differ


def _key(lit: Any) -> Key | None:
    if lit is None:
        return ("z", None)
    if isinstance(lit, bool):
        return ("b", lit)
    if isinstance(lit, int | float):
        return ("n", Decimal(str(lit)))
    if isinstance(lit, str) and not m.is_reference(lit):
        return ("s", lit)
    return None


_NULL: Final = frozenset({("z", None)})


@dataclass(frozen=True)
class Fact:
    """The value ``ref`` is one of ``allowed`` (None: anything) and none of ``excluded``."""

    ref: str  # `$event.F`, or subject state (the same for every rule matched on one event)
    allowed: frozenset[Key] | None
    excluded: frozenset[Key]
    path: tuple[str | int, ...]  # where the literal(s) were written, under the condition

    @property
    def event_field(self) -> str | None:
        return self.ref.split(".", 1)[1] if self.ref.startswith("$event.") else None


_STATE_RE: Final = re.compile(
    r"^\$(event\.[A-Za-z_]\w*|subject\.owner|subject\.(flags|counters)\.[A-Za-z_]\w*)$"
)


def _ref(v: Any) -> str | None:
    """A reference every rule matched on one event reads alike: the event's fields, the
    subject's owner, flags and counters (rules are matched on the state before the event)."""
    return v if isinstance(v, str) and _STATE_RE.match(v) else None


def _atom(cond: Any) -> Fact | None:
    """The fact an atomic condition states about one reference, if it is that simple."""
    return _ATOM.visit(cond) if isinstance(cond, BaseModel) else None


class _Atom(Visitor[Fact | None]):
    """``not``, ``exists``, ``eq``, ``ne`` and ``in`` of a reference and literals."""

    ignores = node_types(m.All, m.AnyOf, m.History, m.Lt, m.Le, m.Gt, m.Ge, m.ConditionRef)

    def ignore(self, cond: BaseModel) -> None:
        return None

    def visit_Not(self, cond: m.Not) -> Fact | None:
        inner = _atom(cond.not_)
        if inner is not None and inner.allowed is not None and not inner.excluded:
            return Fact(inner.ref, None, inner.allowed, ("not", *inner.path))
        return None

    def visit_Exists(self, cond: m.Exists) -> Fact | None:
        ref = _ref(cond.exists)
        return Fact(ref, None, _NULL, ("exists",)) if ref is not None else None

    def visit_Eq(self, cond: m.Eq) -> Fact | None:
        return self.equality("eq", cond.eq)

    def visit_Ne(self, cond: m.Ne) -> Fact | None:
        return self.equality("ne", cond.ne)

    @staticmethod
    def equality(op: str, pair: list[Any]) -> Fact | None:
        for i in (0, 1):
            f, k = _ref(pair[i]), _key(pair[1 - i])
            if f is not None and k is not None:
                keys = frozenset({k})
                if op == "eq":
                    return Fact(f, keys, frozenset(), (op, 1 - i))
                return Fact(f, None, keys, (op, 1 - i))
        return None

    def visit_In(self, cond: m.In) -> Fact | None:
        f = _ref(cond.in_[0])
        coll = cond.in_[1]
        if f is not None and isinstance(coll, list):
            ks = [_key(x) for x in coll]
            if all(k is not None for k in ks):
                return Fact(f, frozenset(k for k in ks if k is not None), frozenset(), ("in", 1))
        return None


_ATOM: Final = _Atom()


def _conjuncts(
    cond: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[Any, tuple[str | int, ...]]]:
    """The conditions that must all hold for ``cond`` to hold, with their paths."""
    if isinstance(cond, m.All):
        for i, c in enumerate(cond.all):
            yield from _conjuncts(c, (*path, "all", i))
    elif cond is not None and cond is not True:
        yield cond, path


def _facts(*conds: tuple[Any, tuple[str | int, ...]]) -> list[Fact]:
    out: list[Fact] = []
    equal: list[tuple[str, str, tuple[str | int, ...]]] = []
    for cond, base in conds:
        for c, p in _conjuncts(cond, base):
            fact = _atom(c)
            if fact is not None:
                out.append(Fact(fact.ref, fact.allowed, fact.excluded, (*p, *fact.path)))
            elif isinstance(c, m.Eq):
                a, b = _ref(c.eq[0]), _ref(c.eq[1])
                if a is not None and b is not None:
                    equal.append((a, b, p))
    # `exists: X` and `eq: [Y, X]`: Y is not null either
    present = {f.ref for f in out if f.allowed is None and f.excluded >= _NULL}
    for a, b, p in equal:
        for x, y in ((a, b), (b, a)):
            if y in present and x not in present:
                out.append(Fact(x, None, _NULL, p))
    return out


def _combine(facts: list[Fact], ref: str) -> tuple[frozenset[Key] | None, frozenset[Key]]:
    allowed: frozenset[Key] | None = None
    excluded: frozenset[Key] = frozenset()
    for f in facts:
        if f.ref != ref:
            continue
        if f.allowed is not None:
            allowed = f.allowed if allowed is None else allowed & f.allowed
        excluded |= f.excluded
    return allowed, excluded


def _exclusive(a: list[Fact], b: list[Fact]) -> bool:
    """True only when some event field cannot satisfy both fact lists at once."""
    for ref in {f.ref for f in a} & {f.ref for f in b}:
        allowed_a, excl_a = _combine(a, ref)
        allowed_b, excl_b = _combine(b, ref)
        if allowed_a is None and allowed_b is None:
            continue
        if allowed_a is None or allowed_b is None:
            both = allowed_a if allowed_a is not None else allowed_b
            assert both is not None
        else:
            both = allowed_a & allowed_b
        if not (both - excl_a - excl_b):
            return True
    return False


def _implies(a: Any, b: Any) -> bool:
    """``a`` implies ``b`` (conservatively: False when unsure)."""
    if b is None or b is True:
        return True
    if a == b:
        return True
    if isinstance(b, m.All):
        return all(_implies(a, c) for c in b.all)
    if isinstance(b, m.AnyOf):
        return any(_implies(a, c) for c in b.any)
    if isinstance(a, m.All) and any(_implies(c, b) for c in a.all):
        return True
    if isinstance(a, m.AnyOf):
        return bool(a.any) and all(_implies(c, b) for c in a.any)
    fact_b = _atom(b)
    if fact_b is None:
        return False
    allowed_a, excl_a = _combine(_facts((a, ())), fact_b.ref)
    if allowed_a is None:
        return fact_b.allowed is None and fact_b.excluded <= excl_a
    values = allowed_a - excl_a
    if fact_b.allowed is not None and not values <= fact_b.allowed:
        return False
    return not (values & fact_b.excluded)


# ---------------------------------------------------------------- the analysis


@dataclass(frozen=True)
class _Decision:
    kind: str  # "owner" or "penalty"
    target: Any  # whose owner / which party (dumped operands, with for_each bindings)
    value: Any  # the owner decided / the sanction
    facts: tuple[Fact, ...]


Binding = tuple[Any, Any]  # an action's for_each and for_each_subject, dumped


class _Decides(Visitor[_Decision | None]):
    """What an action decides that another rule may decide differently (PE401)."""

    # these decide no owner and no penalty
    ignores = frozenset(m.ACTION_MODELS) - node_types(
        m.AssignAction, m.ReleaseAction, m.PenaltyAction
    )

    def ignore(self, act: BaseModel, binding: Binding, facts: tuple[Fact, ...]) -> None:
        return None

    def visit_AssignAction(
        self, act: m.AssignAction, binding: Binding, facts: tuple[Fact, ...]
    ) -> _Decision:
        if isinstance(act.assign, m.AssignSpec):
            subj, owner = _dump(act.assign.subject), _dump(act.assign.owner)
        else:
            subj, owner = None, _dump(act.assign)
        return _Decision("owner", (binding, subj), ("assign", owner), facts)

    def visit_ReleaseAction(
        self, act: m.ReleaseAction, binding: Binding, facts: tuple[Fact, ...]
    ) -> _Decision:
        return _Decision("owner", (binding, _dump(act.release)), ("release",), facts)

    def visit_PenaltyAction(
        self, act: m.PenaltyAction, binding: Binding, facts: tuple[Fact, ...]
    ) -> _Decision:
        spec = act.penalty.model_dump(by_alias=True)
        party = spec.pop("party")
        return _Decision("penalty", (binding, party), spec, facts)


_DECIDES: Final = _Decides()


class _Analysis:
    def __init__(self, pset: PolicySet, sources: tuple[Source, ...]) -> None:
        self.pset = pset
        self.sources = sources
        self.findings: list[Finding] = []
        self.sites = {s.rule.id: s for s in pset.rules}
        self.order = {s.rule.id: i for i, s in enumerate(pset.rules)}

    def run(self) -> list[Finding]:
        self.overlaps()
        self.unreachable()
        self.shadowed()
        self.unused()
        return sorted(
            self.findings,
            key=lambda f: (f.location.file, f.location.line, f.location.column, f.code),
        )

    def add(
        self,
        code: str,
        message: str,
        location: Location,
        related: tuple[Location, ...] = (),
        hint: str | None = None,
    ) -> None:
        self.findings.append(Finding(code, message, location, "warning", related, hint))

    # ------------------------------------------------------------ helpers
    @staticmethod
    def triggers(rule: m.Rule) -> list[str]:
        return rule.triggers if rule.on is not None else [f"every {rule.every}"]

    def declared_at(self, section: str, name: str, *rest: str | int) -> Location | None:
        for src in self.sources:
            data = src.data
            table = data.get(section) if isinstance(data, dict) else None
            if isinstance(table, dict) and name in table:
                return src.locate((section, name, *rest), key=True)
        return None

    def clause_at(self, cid: str) -> Location | None:
        for src in self.sources:
            data = src.data
            clauses = data.get("clauses") if isinstance(data, dict) else None
            if isinstance(clauses, list):
                for i, c in enumerate(clauses):
                    if isinstance(c, dict) and c.get("id") == cid:
                        return src.locate(("clauses", i, "id"))
        return None

    def override_closure(self) -> dict[str, set[str]]:
        reach: dict[str, set[str]] = {}
        for rid, site in self.sites.items():
            seen: set[str] = set()
            stack = list(site.rule.overrides)
            while stack:
                t = stack.pop()
                if t in seen or t not in self.sites:
                    continue
                seen.add(t)
                stack.extend(self.sites[t].rule.overrides)
            reach[rid] = seen
        return reach

    # ------------------------------------------------------------ PE401
    def decisions(self, site: RuleSite) -> list[_Decision]:
        rule = site.rule
        out: list[_Decision] = []
        for j, act in enumerate(rule.then):
            facts = tuple(_facts((rule.when, ("when",)), (act.when, ("then", j, "when"))))
            binding = (_dump(act.for_each), _dump(act.for_each_subject))
            decision = _DECIDES.visit(act, binding, facts)
            if decision is not None:
                out.append(decision)
        return out

    def overlaps(self) -> None:
        reach = self.override_closure()
        rules = self.pset.rules
        decisions = {s.rule.id: self.decisions(s) for s in rules}
        for i, a in enumerate(rules):
            for b in rules[i + 1 :]:
                ra, rb = a.rule, b.rule
                common = [t for t in self.triggers(ra) if t in self.triggers(rb)]
                if not common or rb.id in reach[ra.id] or ra.id in reach[rb.id]:
                    continue
                clash = self.clash(decisions[ra.id], decisions[rb.id])
                if clash is None:
                    continue
                what = "the owner" if clash == "owner" else "a penalty for the same party"
                self.add(
                    Code.OVERLAPPING_RULES,
                    f"rules {ra.id!r} and {rb.id!r} can both fire on one {common[0]!r} event "
                    f"and decide {what} differently",
                    a.locate("id"),
                    (b.locate("id"),),
                    "make their `when` conditions exclusive or declare `overrides:` between them",
                )

    @staticmethod
    def clash(da: list[_Decision], db: list[_Decision]) -> str | None:
        for x in da:
            for y in db:
                if x.kind != y.kind or x.target != y.target or x.value == y.value:
                    continue
                if not _exclusive(list(x.facts), list(y.facts)):
                    return x.kind
        return None

    # ------------------------------------------------------------ PE402
    def impossible(self, fact: Fact, trigger: str) -> bool:
        """The fact can never hold on an event of this type (a literal outside the enum)."""
        etype = self.pset.events.get(trigger)
        field = fact.event_field
        spec = etype.fields.get(field) if etype is not None and field is not None else None
        if spec is None or spec.enum is None or fact.allowed is None:
            return False
        enum = {_key(v) for v in spec.enum}
        if spec.optional:
            enum.add(None)
        return not ((fact.allowed & enum) - fact.excluded)

    def unreachable(self) -> None:
        for site in self.pset.rules:
            rule = site.rule
            triggers = rule.triggers
            if not triggers:
                continue
            for fact in _facts((rule.when, ("when",))):
                if all(self.impossible(fact, t) for t in triggers):
                    self.add(
                        Code.UNREACHABLE,
                        f"rule {rule.id!r} can never fire: no {' or '.join(triggers)!s} event "
                        f"has such a {fact.event_field!r}",
                        site.locate(*fact.path),
                        self.field_sites(triggers, fact.event_field),
                        "check the value against the event's declared `enum`",
                    )
                    break
            for j, act in enumerate(rule.then):
                for fact in _facts((act.when, ("then", j, "when"))):
                    if all(self.impossible(fact, t) for t in triggers):
                        self.add(
                            Code.UNREACHABLE,
                            f"action {j + 1} of rule {rule.id!r} never runs: no "
                            f"{' or '.join(triggers)} event has such a {fact.event_field!r}",
                            site.locate(*fact.path),
                            self.field_sites(triggers, fact.event_field),
                            "check the value against the event's declared `enum`",
                        )
                        break

    def field_sites(self, triggers: list[str], field: str | None) -> tuple[Location, ...]:
        if field is None:
            return ()
        out = [self.declared_at("events", t, "fields", field) for t in triggers]
        return tuple(loc for loc in out if loc is not None)

    # ------------------------------------------------------------ PE403
    def shadowed(self) -> None:
        overridden_by: dict[str, list[str]] = {}
        for site in self.pset.rules:
            for t in site.rule.overrides:
                overridden_by.setdefault(t, []).append(site.rule.id)
        for rid, overriders in overridden_by.items():
            r_site = self.sites.get(rid)
            if r_site is None:
                continue
            r = r_site.rule
            for sid in overriders:
                s_site = self.sites[sid]
                s = s_site.rule
                if overridden_by.get(sid):
                    continue  # the overrider may itself drop out
                if not set(self.triggers(r)) <= set(self.triggers(s)):
                    continue
                if not _implies(r.when, s.when):
                    continue
                self.add(
                    Code.SHADOWED_RULE,
                    f"rule {rid!r} can never fire: {sid!r} overrides it and matches "
                    "every event it matches",
                    r_site.locate("id"),
                    (s_site.locate("id"),),
                    f"narrow {sid!r}'s `when`, or drop {rid!r}",
                )
                break

    # ------------------------------------------------------------ PE404-PE406
    def unused(self) -> None:
        pset = self.pset
        rules = [s.rule for s in pset.rules]
        labels = [label for label, _ in pset.labels.values()]
        metrics = [x for x, _, _ in pset.metrics]
        awards = [x for x, _, _ in pset.awards]
        invariants = [x for x, _, _ in pset.invariants]
        uses = _Uses()
        cited: set[str] = set()
        triggered: list[m.Rule | m.Label] = [*rules, *labels]
        citing: list[m.Rule | m.Label | m.Metric | m.Award] = [*triggered, *metrics, *awards]
        for t in triggered:
            uses.events.update(_names(t.on))
        for c in citing:
            cited.update(c.clauses)
        named = [nc for nc, _ in pset.conditions.values()]
        for declaration in (*rules, *labels, *metrics, *awards, *invariants, *named):
            uses.visit(declaration)
        params, events = uses.params, uses.events
        for name in pset.params:
            if name not in params:
                self.add(
                    Code.UNUSED_PARAMETER,
                    f"parameter {name!r} is declared but no rule, label or metric uses it",
                    pset.param_sites[name],
                    hint=f"use it as $params.{name}, or remove it",
                )
        for name in pset.events:
            if name not in events and name != OWNER_CHANGED and not pset.events[name].accept_only:
                loc = self.declared_at("events", name)
                assert loc is not None
                self.add(
                    Code.UNUSED_EVENT_TYPE,
                    f"event type {name!r} is declared but nothing triggers on, awaits or "
                    "queries it",
                    loc,
                    hint="histories may still carry it; remove it if they need not, or mark it "
                    "`accept_only: true` if they do",
                )
        for cid, clause in pset.clauses.items():
            if cid not in cited and clause.kind != "descriptive":
                loc = self.clause_at(cid)
                assert loc is not None
                self.add(
                    Code.UNCITED_CLAUSE,
                    f"clause {cid!r} is carried but no rule, label, metric or award cites it",
                    loc,
                    hint="encode it, or mark it `kind: descriptive` if it decides nothing",
                )
