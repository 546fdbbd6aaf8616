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

from decimal import Decimal
from typing import Any, Final

from policyengine.language import model as m
from policyengine.language.compiler import OWNER_CHANGED, CAction, CompiledPolicy
from policyengine.language.declarations import Money
from policyengine.language.validate import PolicySet, RuleSite
from policyengine.times import _FIXED_US, MAX_US, Duration, parse_duration, steady_offset

__all__ = ["IR_VERSION", "lower"]

IR_VERSION: Final = 3
_DAY_US: Final = 86_400_000_000
# event fields every event has; ``at`` is an instant (an integer), the others text
_BUILTIN: Final = {"id": "text", "type": "text", "at": "instant"}
_COMPARE: Final = ("eq", "ne", "lt", "le", "gt", "ge")
# the kinds `in` compares with the manual's equality, as the core does (instants are numbers
# the compiler may have read from written dates: left to it)
_SCALAR: Final = ("text", "int", "bool", "null", "any")


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
        self.rule_id = ""  # the rule being lowered: a ladder's offences count under it
        self.item = False  # inside a `for_each`: `$item` is one text of its list

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
            self.rule_id = rule.id
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
                    "rejects": rule.rejects,
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
                "currency": c.currency,
                "unknown_events": c.unknown_events,
            },
            "events": {
                name: [
                    {
                        "name": f.name,
                        "type": f.type,
                        "required": f.required,
                        "enum": None if f.enum is None else sorted(map(str, f.enum)),
                        # the core checks an event only as far as these say it exactly can
                        # (text members, no bounds); otherwise it hands the history back
                        "enum_text": f.enum is None or all(type(x) is str for x in f.enum),
                        "bounded": f.min is not None or f.max is not None,
                        "default": f.default if isinstance(f.default, str | int | bool) else None,
                        "has_default": f.default is not None,
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
        if a.for_each_subject is not None or (a.for_each is not None and self.item):
            raise self.outside("`for_each_subject` or a nested `for_each`", *path)
        if a.for_each is not None:
            # the items of a list of texts (an event field), `$item` each in turn
            each, kind = self.operand(
                a.for_each, event, trigger, party, *path, "for_each", lists=True
            )
            if kind != "texts":
                raise self.outside(f"`for_each` over a {kind}", *path, "for_each")
            self.item = True
            try:
                inner = self.action(
                    a.model_copy(update={"for_each": None}), event, trigger, party, *path
                )
            finally:
                self.item = False
            return {**inner, "for_each": each}
        when = self.condition(a.when, event, trigger, party, *path, "when") if a.when else None
        out: dict[str, Any] = {"when": when, "for_each": None}

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
        if isinstance(a, m.RejectAction):  # the trace keeps the text, the rejection a reason
            return {**out, "kind": "reject", "text": a.reject, "reason": a.reject or "rejected"}
        if isinstance(a, m.TransferAction):
            return {
                **out,
                "kind": "transfer",
                "from": value(a.transfer.from_, "transfer", "from"),
                "to": value(a.transfer.to, "transfer", "to"),
            }
        if isinstance(a, m.DropClaimsAction):
            return {**out, "kind": "drop_claims", "value": value(a.drop_claims, "drop_claims")}
        if isinstance(a, m.PenaltyAction):
            return {**out, **self.penalty(a.penalty, event, trigger, party, *path, "penalty")}
        if isinstance(a, m.AddAction):
            spec = a.add
            by, kind = self.operand(
                spec.by, event, trigger, party, *path, "add", "by", numbers=True
            )
            if kind not in ("int", "null"):  # counted as Decimal(str(value or 0)): whole numbers
                raise self.outside(f"a counter added by a {kind}", *path, "add", "by")
            target = None
            if spec.party is not None:
                target = value(spec.party, "add", "party")
            return {**out, "kind": "add", "name": spec.counter, "by": by, "party": target}
        raise self.outside(f"the action {type(a).__name__}", *path)

    def penalty(
        self,
        spec: m.PenaltySpec,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> dict[str, Any]:
        """A sanction with constant amounts (written, or parameters), numbered per party under
        its ladder key as ``Ledger.penalize`` numbers it; ladders counted in a window or per
        period are not described."""
        if spec.ladder_window is not None or spec.ladder_per is not None:
            raise self.outside("a ladder counted in a window or per period", *path, "ladder")
        steps = spec.ladder_steps
        inner: tuple[str, ...] = ()
        if steps is not None:
            inner = ("ladder", "steps") if isinstance(spec.ladder, m.LadderSpec) else ("ladder",)
        written: list[m.LadderStep | m.PenaltySpec] = list(steps) if steps is not None else [spec]
        lowered = []
        for i, s in enumerate(written):
            at: tuple[str | int, ...] = (*inner, i) if steps is not None else ()
            days = None
            if s.salary_days is not None:
                days = self.amount(s.salary_days, *path, *at, "salary_days")[0]
            lowered.append(
                {
                    "sanction": s.sanction,
                    "amount": None
                    if s.amount is None
                    else self.amount(s.amount, *path, *at, "amount"),
                    "salary_days": days,
                }
            )
        per_unit = units = None
        if spec.per_unit is not None and spec.units is not None:
            per_unit = self.amount(spec.per_unit, *path, "per_unit")
            units, kind = self.operand(
                spec.units, event, trigger, party, *path, "units", numbers=True
            )
            if kind not in ("int", "null"):  # int(value or 0): whole numbers only
                raise self.outside(f"units of a {kind}", *path, "units")
        who, kind = self.operand(spec.party, event, trigger, party, *path, "party")
        if kind not in ("text", "any", "null"):
            raise self.outside(f"a penalty on a {kind}", *path, "party")
        return {
            "kind": "penalty",
            "party": who,
            "key": spec.ladder_name or self.rule_id,
            "ladder": steps is not None,
            "steps": lowered,
            "per_unit": per_unit,
            "units": units,
        }

    def amount(self, op: Any, *path: str | int) -> list[str]:
        """A constant amount as the ledger reads it (``_money``): ``[low, high]`` as exact
        decimal text; a computed one is not described."""
        value = op
        if isinstance(op, str) and op.startswith("$params.") and op.count(".") == 1:
            value = self.c.params.get(op[len("$params.") :])
        if isinstance(value, Money):
            return [str(value.low), str(value.high)]
        if isinstance(value, Decimal) and value.is_finite():
            return [str(value), str(value)]
        if isinstance(value, int) and not isinstance(value, bool):
            return [str(value), str(value)]
        raise self.outside("an amount that is not a written number or money parameter", *path)

    def expect(
        self, ex: m.Expect, compiled: CAction, event: list[str], *path: str | int
    ) -> dict[str, Any]:
        spec = compiled.expect
        assert spec is not None
        for name in ("after", "roll", "every", "steps", "key", "about", "where"):
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
        cancel = None
        entries = m.cancel_entries(ex.cancel_on)
        if entries:
            if len(entries) > 1 or not isinstance(entries[0].event, str) or entries[0].where:
                raise self.outside(
                    "`cancel_on` but one entry of one type, without `where`", *path, "cancel_on"
                )
            entry = entries[0]
            cancel_subject = None
            cancel_match: list[list[Any]] = []
            for name, op in entry.match.items():
                lowered, _ = self.operand(op, event, None, False, *path, "cancel_on", name)
                if name == sf:
                    cancel_subject = lowered
                else:
                    self.text_field([str(entry.event)], name, *path, "cancel_on", name)
                    cancel_match.append([name, lowered])
            cancel = {"type": entry.event, "subject": cancel_subject, "match": cancel_match}

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
            "cancel": cancel,
            # what an overdue duty waits for: a late event (the engine's rule, fixed per spec)
            "watch_late": ex.obligation is not None or bool(ex.late),
            "met": branch("met", ex.met, types),
            "late": branch("late", ex.late, types),
            "missed": branch("missed", ex.missed, None),
        }

    def duration(self, d: Duration, *path: str | int) -> dict[str, Any]:
        """The deadline as ``times.Duration.due`` computes it: ``months`` calendar months
        (``add_months`` on the wall time, the zone's steady ``offset``), then ``us`` after the
        start (or, with ``midnight``, after the local midnight that begins the start's day,
        the zone's offset being ``midnight``), inclusive or not, from ``from`` on."""
        out: dict[str, Any] = {"us": 0, "months": 0, "offset": 0, "from": None}
        fixed = _FIXED_US.get(d.unit)
        if fixed is not None:
            return {**out, "us": d.amount * fixed, "midnight": None, "inclusive": True}
        steady = steady_offset(self.c.timezone)
        # a local day is 24 h only after the timezone's last offset change
        if d.unit in ("day", "week") and steady is not None:
            days = d.amount * (7 if d.unit == "week" else 1)
            return {
                **out,
                "us": days * _DAY_US,
                "from": steady[0],
                "midnight": None,
                "inclusive": True,
            }
        if d.unit in ("same_day", "next_day") and steady is not None:
            days = d.amount + (1 if d.unit == "same_day" else 2)
            return {
                **out,
                "us": days * _DAY_US,
                "from": steady[0],
                "midnight": steady[1],
                "inclusive": False,
            }
        if d.unit in ("month", "year") and steady is not None:
            months = d.amount * (12 if d.unit == "year" else 1)
            return {
                **out,
                "months": months,
                "offset": steady[1],
                "from": steady[0],
                "midnight": None,
                "inclusive": True,
            }
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
        if isinstance(cond, m.History):
            found = self.query(cond.history, event, trigger, party, *path, "history")
            return {"op": "history", "query": found}
        if isinstance(cond, m.Exists):
            arg, _ = self.operand(cond.exists, event, trigger, party, *path, "exists")
            return {"op": "exists", "arg": arg}
        if isinstance(cond, m.In):
            a, ka = self.operand(cond.in_[0], event, trigger, party, *path, "in", 0)
            if isinstance(cond.in_[1], list):  # written values: [null, company]
                if ka not in _SCALAR:
                    raise self.outside(f"`in` of a {ka}", *path, "in", 0)
                values = []
                for i, x in enumerate(cond.in_[1]):
                    v, kv = self.operand(x, event, trigger, party, *path, "in", 1, i)
                    if kv not in _SCALAR:
                        raise self.outside(f"a {kv} in a list of values", *path, "in", 1, i)
                    values.append(v)
                return {"op": "in", "args": [a, {"values": values}]}
            b, kind = self.operand(cond.in_[1], event, trigger, party, *path, "in", 1)
            if kind != "list":
                raise self.outside("`in` of anything but a claims list", *path, "in")
            return {"op": "in", "args": [a, b]}
        for op in _COMPARE:
            pair = getattr(cond, op, None)
            if pair is not None and type(cond).__name__.lower() == op:
                a, ka = self.operand(pair[0], event, trigger, party, *path, op, 0)
                b, kb = self.operand(pair[1], event, trigger, party, *path, op, 1)
                if (
                    {ka, kb} & {"list"}
                    or ("instant" in (ka, kb) and {ka, kb} - {"instant", "int"})
                    or (op not in ("eq", "ne") and "bool" in (ka, kb))
                ):
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
        numbers: bool = False,
        lists: bool = False,
    ) -> tuple[dict[str, Any], str]:
        """The operand's tree and its kind (text, int, bool, null, instant, list, texts, any);
        ``numbers``: where whole-number event fields may be read (amounts, counters);
        ``lists``: where a list-of-texts event field may (``for_each``)."""
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
            return self.reference(op, event, trigger, party, *path, numbers=numbers, lists=lists)
        if isinstance(op, m.Claims):
            return {"claims": op.claims}, "list"
        if isinstance(op, m.Len):
            inner, kind = self.operand(op.len, event, trigger, party, *path, "len")
            if kind != "list":
                raise self.outside("`len` of anything but a claims list", *path, "len")
            return {"len": inner}, "int"
        if isinstance(op, m.Plus):  # an instant plus a written duration: ``Duration.due``
            base, kind = self.operand(op.plus[0], event, trigger, party, *path, "plus", 0)
            if kind not in ("instant", "null"):
                raise self.outside(f"`plus` on a {kind}", *path, "plus", 0)
            found: Any = op.plus[1]
            if isinstance(found, str) and found.startswith("$params.") and found.count(".") == 1:
                found = self.c.params.get(found[len("$params.") :])
            if not isinstance(found, Duration):
                try:
                    found = parse_duration(str(found))
                except ValueError as exc:
                    raise self.outside("a computed duration", *path, "plus", 1) from exc
            return {"plus": base, "window": self.duration(found, *path, "plus", 1)}, "instant"
        if isinstance(op, m.OwnerOf):  # `Queries.owner_of`: a known subject's owner, or null
            inner, _ = self.operand(op.owner_of, event, trigger, party, *path, "owner_of")
            return {"owner_of": inner}, "text"
        if isinstance(op, m.Count):
            return {"count": self.query(op.count, event, trigger, party, *path, "count")}, "int"
        raise self.outside(f"the value {type(op).__name__}", *path)

    def query(
        self,
        q: m.HistoryQuery,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> dict[str, Any]:
        """A history query (``count``, ``history``): the earlier events of the types whose
        text fields equal the values, from ``since`` and within a look-back of fixed length
        (``back``: microseconds, exact from ``from`` on); the calendar's look-backs (months,
        working days) and ``last`` are not described."""
        if q.last is not None:
            raise self.outside("`last` in a history query", *path, "last")
        types = [q.type] if isinstance(q.type, str) else list(q.type)
        sf = self.c.subject_field
        subject = None
        match: list[list[Any]] = []
        for name, value in q.match.items():
            lowered, _ = self.operand(value, event, trigger, party, *path, "match", name)
            if name == sf:
                subject = lowered
            else:
                self.text_field(types, name, *path, "match", name)
                match.append([name, lowered])
        since = None
        if q.since is not None:
            since, kind = self.operand(q.since, event, trigger, party, *path, "since")
            if kind != "instant":
                raise self.outside("`since` of anything but an instant", *path, "since")
        back = None
        if q.within is not None:
            back = self.look_back(q.within, *path, "within")
        return {"types": types, "subject": subject, "match": match, "since": since, "back": back}

    def look_back(self, text: str, *path: str | int) -> dict[str, Any]:
        """``Duration.look_back`` and ``covers`` where the core computes them exactly: fixed
        units, and days, weeks, months or years in a zone of steady offset (from its last
        change on)."""
        found: Any = text
        if text.startswith("$params.") and text.count(".") == 1:
            found = self.c.params.get(text[len("$params.") :])
        if not isinstance(found, Duration):
            try:
                found = parse_duration(str(found))
            except ValueError as exc:
                raise self.outside(f"the look-back {text!r}", *path) from exc
        fixed = _FIXED_US.get(found.unit)
        if fixed is not None:
            return {"us": found.amount * fixed, "months": 0, "offset": 0, "from": None}
        steady = steady_offset(self.c.timezone)
        if found.unit in ("day", "week") and steady is not None:
            days = found.amount * (7 if found.unit == "week" else 1)
            return {"us": days * _DAY_US, "months": 0, "offset": 0, "from": steady[0]}
        if found.unit in ("month", "year") and steady is not None:
            # months back, within the calendar's slack of the bound; between, ``covers``
            months = found.amount * (12 if found.unit == "year" else 1)
            return {"us": 0, "months": months, "offset": steady[1], "from": steady[0]}
        raise self.outside(f"the look-back {found.text!r}", *path)

    def reference(
        self,
        ref: str,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
        numbers: bool = False,
        lists: bool = False,
    ) -> tuple[dict[str, Any], str]:
        parts = ref[1:].split(".")
        if ref == "$item" and self.item:
            return {"ref": "item"}, "text"
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
            kind = self.text_field(types, rest[0], *path, yes_no=True, numbers=numbers, lists=lists)
            return {"ref": root, "field": rest[0]}, kind
        if root == "subject":
            if not rest or rest == ["id"]:
                return {"ref": "subject"}, "text"
            if rest == ["owner"]:
                return {"ref": "owner"}, "text"
            if rest == ["owner_since"]:  # the instant the current owner took it, or null
                return {"ref": "owner_since"}, "instant"
            if len(rest) == 2 and rest[0] == "flags":
                return {"ref": "flag", "name": rest[1]}, "any"
        raise self.outside(f"the reference {ref}", *path)

    def text_field(
        self,
        types: list[str],
        name: str,
        *path: str | int,
        yes_no: bool = False,
        numbers: bool = False,
        lists: bool = False,
    ) -> str:
        """The kind of an event field: text (or ``at``, an instant), or with ``yes_no`` a
        yes/no where every type declaring it says ``bool``; any other type is not described
        yet (numbers, dates and times compare in ways the compiler decides)."""
        if name in _BUILTIN:
            return _BUILTIN[name]
        kinds = set()
        for t in types:
            declared = self.pset.events.get(t)
            spec = declared.fields.get(name) if declared is not None else None
            if spec is not None:
                kinds.add(spec.type)
        if kinds == {"bool"} and yes_no:
            return "bool"
        if kinds == {"int"} and numbers:
            return "int"
        if kinds == {"list[str]"} and lists:
            return "texts"
        if kinds - {"str"}:
            what = next(iter(sorted(kinds - {"str"})))
            raise self.outside(f"the {what} field {name!r} of {'/'.join(types)}", *path)
        return "text"
