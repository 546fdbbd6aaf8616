"""Which groups an event without a subject goes to, in stream mode: none (``inert_types``:
it changes no subject's entries), those holding its co-location token (``routes``: it can
only meet a duty of that key), those whose events name its party (``party_routes``: it can
only move or release the subjects of that party), or every group.

Giving a group more shared events than it needs is always exact; these only leave out an
event that provably cannot touch the group's subjects. Each reads the validated rules, so a
policy the reasoning does not cover gives its events to every group, never a wrong group."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any, Final

from policyengine.backends.parallel.partitioner import _token_value
from policyengine.backends.parallel.planner import Plan, plan
from policyengine.language import model as m
from policyengine.language.program import HasProgram, Program, program_of

__all__ = ["Route", "constants", "inert_types", "party_routes", "routes", "texts"]

_INERT_ACTIONS: Final = (m.PenaltyAction, m.CreditAction, m.ViolationAction, m.RejectAction)


def _mentions(value: Any, names: set[str], found: set[str]) -> None:
    """Which of ``names`` occur as a text anywhere in ``value`` (a model dump)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if v in names:
                found.add(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)


def inert_types(policy: Program | HasProgram) -> frozenset[str]:
    """Types of events without a subject that change no subject's entries: no rule on them
    does more than penalize, credit, record a violation, reject or add to a party counter
    (which only metrics read: ``plan`` checks it); no duty, transfer, flag or action per
    subject; and nothing else in the policy names the type (no history query, duty, label
    or condition). Their events are decided once, on their own, not once per group."""
    program = program_of(policy)
    pset = program.pset
    if pset is None:
        return frozenset()
    candidates = set(plan(program).replicated)
    found: set[str] = set()
    for site in pset.rules:
        r = site.rule
        hit = candidates.intersection(r.triggers)
        if hit and (
            r.expect is not None
            or not all(
                a.for_each_subject is None
                and (
                    isinstance(a, _INERT_ACTIONS)
                    or (isinstance(a, m.AddAction) and a.add.party is not None)
                )
                for a in r.then
            )
        ):
            found |= hit
        _mentions(r.model_dump(exclude={"on"}), candidates, found)
    for label, _ in pset.labels.values():
        _mentions(label.model_dump(), candidates, found)
    for cond, _ in pset.conditions.values():
        _mentions(cond.model_dump(), candidates, found)
    for inv, _, _ in pset.invariants:
        _mentions(inv.model_dump(), candidates, found)
    return frozenset(candidates - found)


# a route of a shared type: (co-location token name, per token field: (the type's field, a date?))
Route = tuple[str, tuple[tuple[str, bool], ...]]


def _route(r: m.Rule, the_plan: Plan, replicated: set[str]) -> Route | None:
    """The token of the expectation ``r.expect`` that its event (without a subject) meets:
    the plan's key token of the duty (one live duty per key), when every field of that token
    is one the expectation matches the event's field against. None: it must meet every group."""
    e = r.expect
    if e is None or e.key is None or replicated.intersection(r.triggers):
        return None
    scope = e.key_scope or f"rule {r.id}.expect.key"
    col = next((c for c in the_plan.colocations if c.name == f"key:{scope}"), None)
    if col is None or len(col.sides) != 1 or col.sides[0].types != tuple(r.triggers):
        return None
    match = e.model_dump()["match"] or {}
    fields: list[tuple[str, bool]] = []
    for f, how in col.sides[0].fields:
        part: Any = f"$event.{f}" if how == "raw" else {"date": "$event.at"}
        found = next((k for k, v in match.items() if v == part), None)
        if found is None:
            return None
        fields.append((found, how == "date"))
    return col.name, tuple(fields)


def routes(policy: Program | HasProgram) -> dict[str, tuple[Route, ...]]:
    """The types of events without a subject that only meet duties of a key the plan
    co-locates (a venue-list delivery meets the duty of its (manager, day)): such an event is
    given only to the groups that hold its token, which are the only groups where it can
    meet a duty. A type named anywhere else (a rule on it, a history query, a label, another
    duty's steps) is given to every group."""
    program = program_of(policy)
    pset = program.pset
    if pset is None:
        return {}
    the_plan = plan(program)
    replicated = set(the_plan.replicated)
    candidates = replicated - inert_types(program)
    found: dict[str, list[Route]] = {}
    spoilt: set[str] = set()
    for site in pset.rules:
        r = site.rule
        spoilt |= candidates.intersection(r.triggers)
        e = r.expect
        if e is not None and isinstance(e.event, str) and e.event in candidates:
            route = _route(r, the_plan, replicated)
            if route is None:
                spoilt.add(e.event)
            else:
                found.setdefault(e.event, []).append(route)
            _mentions(r.model_dump(exclude={"on", "expect"}), candidates, spoilt)
            _mentions(e.model_dump(exclude={"event"}), candidates, spoilt)
        else:
            _mentions(r.model_dump(exclude={"on"}), candidates, spoilt)
    for label, _ in pset.labels.values():
        _mentions(label.model_dump(), candidates, spoilt)
    for cond, _ in pset.conditions.values():
        _mentions(cond.model_dump(), candidates, spoilt)
    for inv, _, _ in pset.invariants:
        _mentions(inv.model_dump(), candidates, spoilt)
    for metric, _, _ in pset.metrics:
        _mentions(metric.model_dump(warnings=False), candidates, spoilt)
    for award, _, _ in pset.awards:
        _mentions(award.model_dump(warnings=False), candidates, spoilt)
    return {t: tuple(rs) for t, rs in found.items() if t not in spoilt}


def _tokens(
    raw: Any, found: tuple[Route, ...], fill: Mapping[str, Any], tz: str
) -> list[Any] | None:
    """The tokens an event of a routed type meets (as ``Reader`` makes the creators'), or
    None when a value is not one the tokens can hold (the event then meets every group)."""
    out: list[Any] = []
    for name, fields in found:
        values: list[Any] = []
        for f, as_date in fields:
            v = _token_value(raw, f, "raw", fill.get(f), tz)
            if as_date:
                if not (isinstance(v, str) and len(v) == 10):
                    return None
                try:
                    v = date.fromisoformat(v).isoformat()
                except ValueError:
                    return None
            elif not isinstance(v, str):
                return None
            values.append(v)
        out.append((name, tuple(values)))
    return out


def party_routes(policy: Program | HasProgram) -> dict[str, str]:
    """Types of events without a subject that reach a subject only through one party field
    ``F``: every rule on the type only moves (``transfer: {from: $event.F}``) or releases
    (``drop_claims: $event.F``) that party's subjects, or does what ``inert_types`` allows,
    or owes a duty without a subject whose branches do no more; and types no rule is on,
    read only by such rules with a ``match`` that holds their field to ``$event.F``. Such
    an event can change a group's subjects only if the party it names owns or claims one of
    them, and a party comes into a group's entries only as a value of the group's events or
    of the shared events it was given, or as a constant of the policy (``constants``): so
    the event goes to the groups whose events (and given events) hold that text. Returns
    type -> the field."""
    program = program_of(policy)
    pset = program.pset
    if pset is None:
        return {}
    the_plan = plan(program)
    sf = program.compiled.subject_field
    candidates = set(the_plan.replicated) - inert_types(program) - set(routes(program))
    spoilt: set[str] = set()
    field: dict[str, set[str]] = {}
    on: dict[str, list[m.Rule]] = {}
    for site in pset.rules:
        for t in candidates.intersection(site.rule.triggers):
            on.setdefault(t, []).append(site.rule)
    own: dict[str, str] = {}
    for t, rules in on.items():
        f = _own_field(rules, sf)
        if f is None:
            spoilt.add(t)
        else:
            own[t] = f
    for site in pset.rules:
        r = site.rule
        f = own.get(r.triggers[0]) if len(r.triggers) == 1 else None
        dump = r.model_dump(exclude={"on"})
        if f is None:
            spoilt |= candidates.intersection(r.triggers) - set(own)
            _mentions(dump, candidates, spoilt)
            continue
        for t, match in _reads(dump, candidates, spoilt):
            held = [k for k, v in (match or {}).items() if v == f"$event.{f}"]
            if held:
                field.setdefault(t, set()).update(held)
            else:
                spoilt.add(t)
    for label, _ in pset.labels.values():
        _mentions(label.model_dump(), candidates, spoilt)
    for cond, _ in pset.conditions.values():
        _mentions(cond.model_dump(), candidates, spoilt)
    for inv, _, _ in pset.invariants:
        _mentions(inv.model_dump(), candidates, spoilt)
    for metric, _, _ in pset.metrics:
        _mentions(metric.model_dump(warnings=False), candidates, spoilt)
    for award, _, _ in pset.awards:
        _mentions(award.model_dump(warnings=False), candidates, spoilt)
    out: dict[str, str] = {}
    for t in candidates - spoilt:
        fields = field.get(t, set()) | ({own[t]} if t in own else set())
        if len(fields) == 1:
            out[t] = next(iter(fields))
    return out


def _own_field(rules: list[m.Rule], subject_field: str) -> str | None:
    """The one ``$event.F`` the rules move or release subjects by, or None if they do more."""
    fields: set[str] = set()

    def narrow(actions: list[Any]) -> bool:
        for a in actions:
            if getattr(a, "for_each_subject", None) is not None:
                return False
            if isinstance(a, _INERT_ACTIONS) or (
                isinstance(a, m.AddAction) and a.add.party is not None
            ):
                continue
            if isinstance(a, m.TransferAction):
                ref = a.transfer.from_
            elif isinstance(a, m.DropClaimsAction):
                ref = a.drop_claims
            else:
                return False
            if not (isinstance(ref, str) and ref.startswith("$event.") and ref.count(".") == 1):
                return False
            fields.add(ref.removeprefix("$event."))
        return True

    for r in rules:
        if not narrow(list(r.then)):
            return None
        e = r.expect
        if e is not None:
            if subject_field in (e.match or {}):
                return None
            branches = [e.met, e.late, e.missed, e.out_of_order]
            if e.steps or not all(narrow(list(b or ())) for b in branches):
                return None
    return next(iter(fields)) if len(fields) == 1 else None


def _reads(value: Any, names: set[str], spoilt: set[str]) -> Iterator[tuple[str, Any]]:
    """The (type, match) of each history query or duty in ``value`` (a rule's dump) on one
    of ``names``; a name occurring anywhere else is added to ``spoilt``."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for key in ("type", "event"):
                t = v.get(key)
                if isinstance(t, str) and t in names and "match" in v:
                    yield t, v["match"]
                    stack.extend(x for k, x in v.items() if k != key)
                    break
            else:
                stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
        elif isinstance(v, str) and v in names:
            spoilt.add(v)


def constants(policy: Program | HasProgram) -> frozenset[str]:
    """Every text the rules and parameters write down (not a ``$`` reference): a party named
    so (``assign: company``) can own subjects of any group, so an event naming it goes to
    every group."""
    program = program_of(policy)
    found: set[str] = set()
    stack: list[Any] = [dict(program.compiled.params)]
    if program.pset is not None:
        stack += [site.rule.model_dump(exclude={"on"}) for site in program.pset.rules]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if not v.startswith("$"):
                found.add(v)
        elif isinstance(v, Mapping):
            stack.extend(v.values())
        elif isinstance(v, list | tuple | set | frozenset):
            stack.extend(v)
    return frozenset(found)


def texts(raw: Any) -> Iterator[str]:
    """The texts an event holds in its fields (list members too): where a party can come
    from into a group's entries."""
    if isinstance(raw, Mapping):
        for v in raw.values():
            if isinstance(v, str):
                yield v
            elif isinstance(v, list):
                yield from (x for x in v if isinstance(x, str))
