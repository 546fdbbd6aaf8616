"""The intermediate form: a compiled policy as versioned, JSON-ready data, for a native core.

The compiled form (``compiled``) holds closures, which no other language can run; the validated
model keeps the expression trees. ``lower`` writes both down once per policy as plain data
(rules, triggers, conditions as trees, duties and their windows, actions, parameters resolved,
event field checks), tagged ``IR_VERSION``: a core reads only the versions it knows. It covers
a subset of the language (what ``benchmarks/hx_ownership.yaml`` uses, and the forms around it
that cost nothing more); anything else yields no IR but the reason, naming the construct and
where it was written, so that the caller runs the Python engine instead.
"""

from __future__ import annotations

from typing import Any, Final

from policyengine.language import model as m
from policyengine.language.compiler import OWNER_CHANGED, CAction, CompiledPolicy
from policyengine.language.validate import PolicySet, RuleSite
from policyengine.times import _FIXED_US, MAX_US, Duration, steady_offset

__all__ = ["IR_VERSION", "lower"]

IR_VERSION: Final = 1
_DAY_US: Final = 86_400_000_000
# event fields every event has; ``at`` is an instant (an integer), the others text
_BUILTIN: Final = {"id": "text", "type": "text", "at": "instant"}
_COMPARE: Final = ("eq", "ne", "lt", "le", "gt", "ge")


class _Outside(Exception):
    """A construct the intermediate form does not (yet) describe; caught in ``lower``."""


def lower(
    compiled: CompiledPolicy, pset: PolicySet | None
) -> tuple[dict[str, Any] | None, str | None]:
    """``(ir, None)``, or ``(None, reason)`` when the policy uses what the IR cannot say."""
    if pset is None:
        return None, "the policy has no validated model (built from a compiled form only)"
    try:
        return _Lowering(compiled, pset).policy(), None
    except _Outside as exc:
        return None, str(exc)


class _Lowering:
    """One pass over the rules: the validated trees, with the compiled form's resolved
    parameters, windows, ranks and references."""

    def __init__(self, compiled: CompiledPolicy, pset: PolicySet) -> None:
        self.c = compiled
        self.pset = pset
        self.site: RuleSite | None = None

    def outside(self, what: str, *path: str | int) -> _Outside:
        where = f" at {self.site.locate(*path)}" if self.site is not None else ""
        rule = f"rule {self.site.rule.id!r}: " if self.site is not None else ""
        return _Outside(f"{rule}{what}{where} is not supported by the native core")

    def policy(self) -> dict[str, Any]:
        c = self.c
        for what, present in (
            ("labels", c.labels),
            ("metrics", c.metrics),
            ("awards", c.awards),
            ("invariants", c.invariants),
            ("periodic rules (`every:`)", c.periodic),
        ):
            if present:
                raise _Outside(f"{what} are not supported by the native core")
        if OWNER_CHANGED in c.by_trigger or OWNER_CHANGED in c.awaited:
            raise _Outside(f"rules on {OWNER_CHANGED} are not supported by the native core")
        rules = []
        for site, rule in zip(self.pset.rules, c.rules, strict=True):
            self.site = site
            r = site.rule
            when = self.condition(r.when, r.triggers, None, False, "when") if r.when else None
            actions = [
                self.action(a, r.triggers, None, False, "then", i) for i, a in enumerate(r.then)
            ]
            if r.expect is not None:
                compiled_expect = rule.actions[-1]
                actions.append(self.expect(r.expect, compiled_expect, r.triggers, "expect"))
            rules.append(
                {
                    "id": rule.id,
                    "clauses": list(rule.clauses),
                    "triggers": list(rule.triggers),
                    "rank": rule.rank,
                    "overrides": sorted(rule.overrides),
                    "when": when,
                    "actions": actions,
                }
            )
        self.site = None
        return {
            "ir_version": IR_VERSION,
            "policy": {
                "id": c.id,
                "version": c.version,
                "timezone": c.timezone,
                "subject_field": c.subject_field,
                "max_us": MAX_US,
                "unknown_events": c.unknown_events,
            },
            "events": {
                name: [
                    {
                        "name": f.name,
                        "type": f.type,
                        "required": f.required,
                        "enum": None if f.enum is None else sorted(map(str, f.enum)),
                        "default": f.default if isinstance(f.default, str | int | bool) else None,
                    }
                    for f in checks
                ]
                for name, checks in c.events.items()
            },
            "rules": rules,
        }

    # ------------------------------------------------------------ actions
    def action(
        self,
        a: Any,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> dict[str, Any]:
        if a.for_each is not None or a.for_each_subject is not None:
            raise self.outside("`for_each`", *path)
        when = self.condition(a.when, event, trigger, party, *path, "when") if a.when else None
        out: dict[str, Any] = {"when": when}

        def value(op: Any, *sub: str | int) -> dict[str, Any]:
            lowered, kind = self.operand(op, event, trigger, party, *path, *sub)
            if kind not in ("text", "null", "any", "bool", "int"):
                raise self.outside(f"a {kind} value here", *path, *sub)
            return lowered

        if isinstance(a, m.ClaimAction):
            return {**out, "kind": "claim", "value": value(a.claim, "claim")}
        if isinstance(a, m.LapseClaimAction):
            return {**out, "kind": "lapse_claim", "value": value(a.lapse_claim, "lapse_claim")}
        if isinstance(a, m.AssignAction) and not isinstance(a.assign, m.AssignSpec):
            return {**out, "kind": "assign", "value": value(a.assign, "assign")}
        if isinstance(a, m.ReleaseAction) and a.release is None:
            return {**out, "kind": "assign", "value": {"lit": None}}
        if isinstance(a, m.SetAction) and a.set.subject is None:
            return {
                **out,
                "kind": "set",
                "name": a.set.flag,
                "value": value(a.set.value, "set", "value"),
            }
        if isinstance(a, m.ClearAction):
            return {**out, "kind": "clear", "name": a.clear}
        raise self.outside(f"the action {type(a).__name__}", *path)

    def expect(
        self, ex: m.Expect, compiled: CAction, event: list[str], *path: str | int
    ) -> dict[str, Any]:
        spec = compiled.expect
        assert spec is not None
        for name in ("after", "roll", "every", "steps", "key", "about", "cancel_on", "where"):
            if getattr(ex, name) not in (None, False):
                raise self.outside(f"`{name}` in an expectation", *path, name)
        if ex.repeat or ex.consume or ex.in_order or ex.out_of_order:
            raise self.outside("a repeating, consuming or ordered expectation", *path)
        types = [ex.event] if isinstance(ex.event, str) else list(ex.event)
        sf = self.c.subject_field
        match: list[list[Any]] = []
        subject = None
        for name, op in ex.match.items():
            lowered, _ = self.operand(op, event, None, False, *path, "match", name)
            if name == sf:
                subject = lowered
            else:
                match.append([name, lowered])
        within = None
        if spec.within is not None:
            if spec.within.duration is None:
                raise self.outside("a computed window", *path, "within")
            within = self.duration(spec.within.duration, *path, "within")
        party = None
        if ex.party is not None:
            party, _ = self.operand(ex.party, event, None, False, *path, "party")

        def branch(name: str, actions: list[Any], ev: list[str] | None) -> list[dict[str, Any]]:
            return [self.action(a, ev, event, True, *path, name, i) for i, a in enumerate(actions)]

        return {
            "when": None,
            "kind": "expect",
            "types": types,
            "subject": subject,
            "match": match,
            "within": within,
            "obligation": ex.obligation,
            "party": party,
            # what an overdue duty waits for: a late event (the engine's rule, fixed per spec)
            "watch_late": ex.obligation is not None or bool(ex.late),
            "met": branch("met", ex.met, types),
            "late": branch("late", ex.late, types),
            "missed": branch("missed", ex.missed, None),
        }

    def duration(self, d: Duration, *path: str | int) -> dict[str, Any]:
        fixed = _FIXED_US.get(d.unit)
        if fixed is not None:
            return {"us": d.amount * fixed, "from": None}
        steady = steady_offset(self.c.timezone)
        if d.unit in ("day", "week") and steady is not None:
            days = d.amount * (7 if d.unit == "week" else 1)
            # a local day is 24 h only after the timezone's last offset change
            return {"us": days * _DAY_US, "from": steady[0]}
        raise self.outside(f"the window {d.text!r}", *path)

    # ------------------------------------------------------------ conditions and values
    def condition(
        self,
        cond: Any,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> dict[str, Any]:
        if isinstance(cond, bool):
            return {"op": "bool", "value": cond}
        if isinstance(cond, m.All | m.AnyOf):
            key = "all" if isinstance(cond, m.All) else "any"
            parts = cond.all if isinstance(cond, m.All) else cond.any
            return {
                "op": key,
                "args": [
                    self.condition(x, event, trigger, party, *path, key, i)
                    for i, x in enumerate(parts)
                ],
            }
        if isinstance(cond, m.Not):
            return {
                "op": "not",
                "arg": self.condition(cond.not_, event, trigger, party, *path, "not"),
            }
        if isinstance(cond, m.Exists):
            arg, _ = self.operand(cond.exists, event, trigger, party, *path, "exists")
            return {"op": "exists", "arg": arg}
        if isinstance(cond, m.In):
            a, _ = self.operand(cond.in_[0], event, trigger, party, *path, "in", 0)
            b, kind = self.operand(cond.in_[1], event, trigger, party, *path, "in", 1)
            if kind != "list":
                raise self.outside("`in` of anything but a claims list", *path, "in")
            return {"op": "in", "args": [a, b]}
        for op in _COMPARE:
            pair = getattr(cond, op, None)
            if pair is not None and type(cond).__name__.lower() == op:
                a, ka = self.operand(pair[0], event, trigger, party, *path, op, 0)
                b, kb = self.operand(pair[1], event, trigger, party, *path, op, 1)
                if {ka, kb} & {"list"} or ("instant" in (ka, kb) and {ka, kb} - {"instant", "int"}):
                    # instants against written dates and times are read by the compiler
                    raise self.outside(f"`{op}` of a {ka} and a {kb}", *path, op)
                return {"op": op, "args": [a, b]}
        raise self.outside(f"the condition {type(cond).__name__}", *path)

    def operand(
        self,
        op: Any,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> tuple[dict[str, Any], str]:
        """The operand's tree and its kind (text, int, bool, null, instant, list, any)."""
        if op is None:
            return {"lit": None}, "null"
        if isinstance(op, bool):
            return {"lit": op}, "bool"
        if isinstance(op, int):
            if not -(2**63) <= op < 2**63:
                raise self.outside("a number this large", *path)
            return {"lit": op}, "int"
        if isinstance(op, str):
            if op.startswith("$$"):  # an escaped dollar: read by the compiler
                raise self.outside(f"the text {op!r}", *path)
            if not m.is_reference(op):
                return {"lit": op}, "text"
            return self.reference(op, event, trigger, party, *path)
        if isinstance(op, m.Claims):
            return {"claims": op.claims}, "list"
        if isinstance(op, m.Len):
            inner, kind = self.operand(op.len, event, trigger, party, *path, "len")
            if kind != "list":
                raise self.outside("`len` of anything but a claims list", *path, "len")
            return {"len": inner}, "int"
        if isinstance(op, m.Count):
            q = op.count
            if q.within is not None or q.last is not None:
                raise self.outside("`within` or `last` in a history query", *path, "count")
            types = [q.type] if isinstance(q.type, str) else list(q.type)
            sf = self.c.subject_field
            subject = None
            match: list[list[Any]] = []
            for name, value in q.match.items():
                lowered, _ = self.operand(
                    value, event, trigger, party, *path, "count", "match", name
                )
                if name == sf:
                    subject = lowered
                else:
                    self.text_field(types, name, *path, "count", "match", name)
                    match.append([name, lowered])
            since = None
            if q.since is not None:
                since, kind = self.operand(q.since, event, trigger, party, *path, "count", "since")
                if kind != "instant":
                    raise self.outside("`since` of anything but an instant", *path, "count")
            return {
                "count": {"types": types, "subject": subject, "match": match, "since": since}
            }, "int"
        raise self.outside(f"the value {type(op).__name__}", *path)

    def reference(
        self,
        ref: str,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> tuple[dict[str, Any], str]:
        parts = ref[1:].split(".")
        root, rest = parts[0], parts[1:]
        if root == "params" and len(rest) == 1:
            value = self.c.params.get(rest[0])
            if value is None or isinstance(value, str | bool | int):
                if isinstance(value, str):  # a resolved value: text, never a reference
                    return {"lit": value}, "text"
                return self.operand(value, None, None, False, *path)
            raise self.outside(f"the parameter {rest[0]!r} as a value", *path)
        if root == "now" and not rest:
            return {"ref": "now"}, "instant"
        if root == "party" and not rest and party:
            return {"ref": "party"}, "any"
        if root in ("event", "trigger") and len(rest) == 1:
            types = event if root == "event" else trigger
            assert types is not None  # the compiler refused it otherwise
            return {"ref": root, "field": rest[0]}, self.text_field(types, rest[0], *path)
        if root == "subject":
            if not rest or rest == ["id"]:
                return {"ref": "subject"}, "text"
            if rest == ["owner"]:
                return {"ref": "owner"}, "text"
            if len(rest) == 2 and rest[0] == "flags":
                return {"ref": "flag", "name": rest[1]}, "any"
        raise self.outside(f"the reference {ref}", *path)

    def text_field(self, types: list[str], name: str, *path: str | int) -> str:
        """The kind of an event field: text (or ``at``, an instant); any other type is not
        described yet (numbers, dates and times compare in ways the compiler decides)."""
        if name in _BUILTIN:
            return _BUILTIN[name]
        for t in types:
            declared = self.pset.events.get(t)
            spec = declared.fields.get(name) if declared is not None else None
            if spec is not None and spec.type != "str":
                raise self.outside(f"the {spec.type} field {name!r} of {t}", *path)
        return "text"
