"""The intermediate form: a compiled policy as versioned, JSON-ready data, for a native core.

The compiled form (``compiled``) holds closures, which no other language can run; the validated
model keeps the expression trees. ``lower`` writes both down once per policy as plain data
(rules, triggers, conditions as trees, duties and their windows, actions, parameters resolved,
event field checks, labels, invariants, the periods of ``every:`` and of metrics), tagged
``IR_VERSION``: a core reads only the versions it knows. It covers
a subset of the language (what ``benchmarks/hx_ownership.yaml`` uses, and the forms around it
that cost nothing more); anything else yields no IR but the reason, naming the construct and
where it was written, so that the caller runs the Python engine instead.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from pydantic import BaseModel

from policyengine.language import ir_values as more
from policyengine.language import ir_windows as windows
from policyengine.language import model as m
from policyengine.language.compiler import OWNER_CHANGED, CAction, CompiledPolicy
from policyengine.language.declarations import Money
from policyengine.language.loader import Source
from policyengine.language.validate import PolicySet, RuleSite
from policyengine.times import (
    _FIXED_US,
    MAX_US,
    MIN_US,
    Duration,
    parse_duration,
    steady_offset,
)

__all__ = ["IR_VERSION", "lower"]

IR_VERSION: Final = 8
_DAY_US: Final = 86_400_000_000
# event fields every event has; ``at`` is an instant (an integer), the others text
_BUILTIN: Final = {"id": "text", "type": "text", "at": "instant"}
_COMPARE: Final = ("eq", "ne", "lt", "le", "gt", "ge")
# the kinds `in` compares with the manual's equality, as the core does (instants are numbers
# the compiler may have read from written dates: left to it)
_SCALAR: Final = ("text", "int", "bool", "null", "any")
# what a metric or an award may be written with: reads of counters, the history, metrics
_MEASURED: Final = frozenset(
    "Metric Target Grade Award TieBreak Added CounterValue PartiesWith Values ValuesQuery "  # noqa: SIM905
    "HistoryQuery Count History Sum Avg First Add Sub Mul Div Round MetricOf Coalesce Len "
    "All AnyOf Not Eq Ne Lt Le Gt Ge In Exists".split()
)
_HISTORY: Final = frozenset({"HistoryQuery", "Count", "History", "Values", "ValuesQuery"})


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
        # flags set to instants (`times.Instant` in the engine: shown as times): exact where
        # no other `set` may give them a number and they are read only inside conditions
        # (where an instant is the number it is); the first place that says otherwise
        self.conditions = 0
        self.instant_flags: set[str] = set()
        self.numbers_set: dict[str, str] = {}
        self.flags_read: dict[str, str] = {}
        self.working = False  # a duty's window counts working days: the calendar goes along
        # outside the rules: what is lowered (its file, its path there, its name)
        self.where: tuple[Source, tuple[str | int, ...], str] | None = None
        self.history_read = False  # a metric or award reads the history (not only counters)

    def outside(self, what: str, *path: str | int) -> _Outside:
        if self.site is None and self.where is not None:
            source, root, name = self.where
            at = source.locate((*root, *path))
            return _Outside(f"{name}: {what} at {at} is not supported by the native core")
        where = f" at {self.site.locate(*path)}" if self.site is not None else ""
        rule = f"rule {self.site.rule.id!r}: " if self.site is not None else ""
        return _Outside(f"{rule}{what}{where} is not supported by the native core")

    def policy(self) -> dict[str, Any]:
        c = self.c
        if (OWNER_CHANGED in c.by_trigger or OWNER_CHANGED in c.awaited) and (
            OWNER_CHANGED in self.pset.events or c.subject_field in ("owner", "previous")
        ):
            # the core writes the derived events itself: subject, `owner`, `previous`
            raise _Outside(
                f"rules on {OWNER_CHANGED} with a declared {OWNER_CHANGED} event or a subject "
                "field named `owner` or `previous` are not supported by the native core"
            )
        rules = []
        for site, rule in zip(self.pset.rules, c.rules, strict=True):
            self.site = site
            self.rule_id = rule.id
            r = site.rule
            # a rule with `every:` runs on its period's tick event (`@month`)
            on = list(r.triggers) if rule.every is None else ["@" + rule.every]
            when = self.condition(r.when, on, None, False, "when") if r.when else None
            actions = [self.action(a, on, None, False, "then", i) for i, a in enumerate(r.then)]
            if r.expect is not None:
                compiled_expect = rule.actions[-1]
                actions.append(self.expect(r.expect, compiled_expect, on, "expect"))
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
                    "every": rule.every,
                }
            )
        self.site = None
        labels = self.labels()
        for name in sorted(self.instant_flags):
            clash = self.numbers_set.get(name) or self.flags_read.get(name)
            if clash is not None:
                raise _Outside(clash)
        return {
            "ir_version": IR_VERSION,
            "instant_flags": sorted(self.instant_flags),
            "policy": {
                "id": c.id,
                "version": c.version,
                "timezone": c.timezone,
                "subject_field": c.subject_field,
                "max_us": MAX_US,
                "currency": c.currency,
                "unknown_events": c.unknown_events,
                "calendar": self.calendar() if self.working else None,
            },
            "events": more.event_checks(c),
            "rules": rules,
            "labels": labels,
            "periodic": self.periodic(),
            "metric_units": self.metrics(),
            # read by the bridge, not the core: measuring needs the prepared events
            "metrics_read_history": self.history_read,
            "invariants": self.invariants(),
        }

    def invariants(self) -> list[dict[str, Any]]:
        """``invariants:`` as ``World.finish`` checks them: each subject at the horizon."""
        out = []
        for inv, source, index in self.pset.invariants:
            self.where = (source, ("invariants", index), f"invariant {inv.id!r}")
            out.append(
                {"id": inv.id, "holds": self.condition(inv.holds, None, None, False, "holds")}
            )
        self.where = None
        return out

    def metrics(self) -> list[str]:
        """The metrics' units, in the engine's order (sorted). The core keeps their periods'
        clock; the engine's ``World.close`` measures them from what the core recorded (the
        history and the counters as they stood), so a metric may read only those: counters,
        the history, other metrics, parameters, ``$event`` (the period) and ``$party``."""
        for mt, source, index in self.pset.metrics:
            self.where = (source, ("metrics", index), f"metric {mt.id!r}")
            self.measured(mt)
        for aw, source, index in self.pset.awards:
            self.where = (source, ("awards", index), f"award {aw.id!r}")
            self.measured(aw)
        self.where = None
        return sorted({mt.every for mt in self.c.metrics})

    def periodic(self) -> dict[str, int] | None:
        """Where the core computes the local periods of ``every:`` and of metrics
        (``state.period_of``): in a zone of steady offset, from its last change on; None:
        neither."""
        if not self.c.periodic and not self.c.metrics:
            return None
        steady = steady_offset(self.c.timezone)
        if steady is None:
            raise _Outside(
                f"periodic rules (`every:`) or metrics in the timezone {self.c.timezone!r}, "
                "whose offset changes, are not supported by the native core"
            )
        return {"from": steady[0], "offset": steady[1]}

    def labels(self) -> list[dict[str, Any]]:
        """Labels: without ``on:`` as ``World.finish`` gives them (at the horizon, for every
        subject, the first case that holds, on the subject and the whole history); with it
        as ``World.classify`` does (at each such event, with ``$event`` bound, what
        ``subject`` names)."""
        out = []
        for (name, (label, source)), compiled in zip(
            self.pset.labels.items(), self.c.labels, strict=True
        ):
            self.where = (source, ("labels", name), f"label {name!r}")
            on = list(compiled.on) or None
            cases = [
                {
                    "value": case.value,
                    "when": self.condition(case.when, on, None, False, "cases", i, "when"),
                    "reason": case.reason,
                }
                for i, case in enumerate(label.cases)
            ]
            subject = None
            if label.subject is not None:
                subject, kind = self.operand(label.subject, on, None, False, "subject")
                if kind not in ("text", "any", "null"):
                    raise self.outside(f"a label's subject of a {kind}", "subject")
            out.append({"name": name, "cases": cases, "on": on or [], "subject": subject})
        self.where = None
        return out

    def measured(self, node: Any, *path: str | int) -> None:
        """Refuse what a metric or award could read beyond the state the core records."""
        if isinstance(node, BaseModel):
            if type(node).__name__ not in _MEASURED:
                raise self.outside(f"`{type(node).__name__}` in a metric", *path)
            self.history_read |= type(node).__name__ in _HISTORY
            for name in type(node).model_fields:
                self.measured(getattr(node, name), *path, name)
        elif isinstance(node, list | tuple):
            for i, x in enumerate(node):
                self.measured(x, *path, i)
        elif isinstance(node, dict):
            for k, x in node.items():
                self.measured(x, *path, str(k))
        elif isinstance(node, str) and m.is_reference(node):
            root = node[1:].split(".")[0]
            if root not in ("event", "party", "params", "now"):
                raise self.outside(f"the reference {node} in a metric", *path)

    # ------------------------------------------------------------ actions
    def action(
        self,
        a: Any,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> dict[str, Any]:
        if a.for_each_subject is not None:  # each subject in turn, `$subject` that one
            return more.each_subject(self, a, event, trigger, party, *path)
        if a.for_each is not None and self.item:
            raise self.outside("a nested `for_each`", *path)
        if a.for_each is not None:
            # the items of a list of texts (an event field), `$item` each in turn
            each, kind = self.operand(
                a.for_each, event, trigger, party, *path, "for_each", lists=True
            )
            if kind not in ("texts", "values"):  # a written list: as the first core said
                what = "the value list" if kind == "tuple" else f"`for_each` over a {kind}"
                raise self.outside(what, *path, "for_each")
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
            if kind not in ("text", "null", "any", "bool", "int", "instant"):
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
            _, kind = self.operand(a.set.value, event, trigger, party, *path, "set", "value")
            if kind == "instant":
                self.instant_flags.add(a.set.flag)
            elif kind in ("int", "any"):
                self.numbers_set.setdefault(
                    a.set.flag,
                    str(self.outside(f"the flag {a.set.flag!r}, an instant elsewhere, set", *path)),
                )
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
        if isinstance(a, m.ViolationAction):
            return {**out, **self.violation(a, event, trigger, party, *path)}
        if isinstance(a, m.AddAction):
            spec = a.add
            by, kind = self.operand(
                spec.by, event, trigger, party, *path, "add", "by", numbers=True
            )
            if kind not in ("int", "null", "decimal"):  # Decimal(str(value or 0)): numbers
                raise self.outside(f"a counter added by a {kind}", *path, "add", "by")
            target = None
            if spec.party is not None:
                target = value(spec.party, "add", "party")
            return {**out, "kind": "add", "name": spec.counter, "by": by, "party": target}
        if isinstance(a, m.ExpectAction):  # a duty made by `then` or a branch
            return {**self.duty(a.expect, event, trigger, *path, "expect"), **out}
        raise self.outside(f"the action {type(a).__name__}", *path)

    def violation(
        self,
        a: m.ViolationAction,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> dict[str, Any]:
        """A breach as the engine records it: its text (``violation`` where empty), the party
        written or else ``$party`` (null outside an expectation's branches)."""
        spec = a.violation
        what = spec if isinstance(spec, str) else spec.what
        who: dict[str, Any] = {"ref": "party"}
        if not isinstance(spec, str) and spec.party is not None:
            who, kind = self.operand(spec.party, event, trigger, party, *path, "violation", "party")
            if kind not in ("text", "any", "null", "int", "bool", "instant"):
                raise self.outside(f"a violation by a {kind}", *path, "violation", "party")
        return {"kind": "violation", "what": what, "party": who}

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
                    else self.looked_up(s.amount, event, trigger, party, *path, *at, "amount")
                    if isinstance(s.amount, m.Get)
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

    def looked_up(
        self,
        op: m.Get,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> dict[str, Any]:
        """``{get: [$params.table, key]}`` as an amount: the table's rows as constant amounts,
        the key a text; a key the table lacks is the engine's error (``_money``: PE3xx), so
        the core leaves that evaluation to it."""
        table, key = op.get
        rows = None
        if isinstance(table, str) and table.startswith("$params.") and table.count(".") == 1:
            rows = self.c.params.get(table[len("$params.") :])
        if not isinstance(rows, dict):
            raise self.outside("a lookup in anything but a table parameter", *path, "get", 0)
        lowered, kind = self.operand(key, event, trigger, party, *path, "get", 1)
        if kind != "text":
            raise self.outside(f"a lookup by a {kind}", *path, "get", 1)
        entries = []
        for name, value in rows.items():
            if not isinstance(name, str) or isinstance(value, str):
                raise self.outside("a table of anything but text keys and amounts", *path, "get", 0)
            entries.append([name, self.amount(value, *path, "get", 0)])
        return {"key": lowered, "table": entries}

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
        self, ex: m.Expect, compiled: CAction | None, event: list[str], *path: str | int
    ) -> dict[str, Any]:
        """A rule's own ``expect``: created in the context of its trigger."""
        within = None
        if compiled is not None and compiled.expect is not None and ex.within is not None:
            if compiled.expect.within is None or compiled.expect.within.duration is None:
                raise self.outside("a computed window", *path, "within")
            within = self.duration(compiled.expect.within.duration, *path, "within", working=True)
        return self.duty(ex, event, None, *path, within=within)

    def duty(
        self,
        ex: m.Expect,
        event: list[str] | None,
        trigger: list[str] | None,
        *path: str | int,
        within: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A duty as ``Engine.expect`` makes it from a context whose event is of ``event``
        (in a branch, none) and trigger of ``trigger``: one duty, a schedule's (``steps``;
        ``in_order`` only checked by the compiler), one per calendar period (``every``) or a
        cadence (``repeat``); ``key`` skips it while the key's latest duties are live."""
        roll = None
        if ex.roll is not None:  # ``roll_to_working_day`` on the policy's calendar
            steady = steady_offset(self.c.timezone)
            if steady is None:
                raise self.outside("`roll` in a zone of changing offset", *path, "roll")
            self.working = True
            roll = {"offset": steady[1], "from": steady[0]}
        every = None
        if ex.every is not None:  # ``period_of``: local periods, exact where days are 24 h
            steady = steady_offset(self.c.timezone)
            if steady is None:
                raise self.outside("`every` in a zone of changing offset", *path, "every")
            every = {
                "unit": ex.every,
                "offset": steady[1],
                "from": steady[0],
                "min_us": MIN_US,
                "max_us": MAX_US,
            }
        creator = event if event is not None else trigger
        types = [ex.event] if isinstance(ex.event, str) else list(ex.event)
        sf = self.c.subject_field
        match: list[list[Any]] = []
        subject = None
        for name, op in ex.match.items():
            lowered, kind = self.operand(op, event, trigger, False, *path, "match", name)
            more.match_kind(self, types, name, kind, *path, "match", name)
            if name == sf:
                subject = lowered
            else:
                match.append([name, lowered])
        if within is None and ex.within is not None:
            within = self.window(ex.within, *path, "within")
        after = None if ex.after is None else self.window(ex.after, *path, "after")
        party = None
        if ex.party is not None:
            party, kind = self.operand(ex.party, event, trigger, False, *path, "party")
            more.plain(self, kind, *path, "party")
        key = about = None
        if ex.key is not None:  # held as the engine's dict holds it: no yes/no next to a 1
            key, kind = self.operand(ex.key, event, trigger, False, *path, "key")
            more.key_kind(self, ex.key_scope, kind, *path, "key")
        if ex.about is not None:  # `str(about)`: text as it is
            about, kind = self.operand(ex.about, event, trigger, False, *path, "about")
            if kind not in ("text", "null", "date"):
                raise self.outside(f"an `about` of the kind {kind}", *path, "about")
        where = None
        if ex.where is not None:
            where = self.condition(ex.where, types, creator, True, *path, "where")

        steps = None
        early = list(types)  # what `$event` can be in a branch: any step's event
        if ex.steps is not None:
            steps, early = self.steps(ex, types, where, creator, *path)

        def branch(name: str, actions: list[Any], ev: list[str] | None) -> list[dict[str, Any]]:
            return [
                self.action(a, ev, creator, True, *path, name, i) for i, a in enumerate(actions)
            ]

        return {
            "when": None,
            "kind": "expect",
            "types": types,
            "subject": subject,
            "match": match,
            "within": within,
            "after": after,
            "obligation": ex.obligation,
            "party": party,
            "about": about,
            "where": where,
            "key": key,
            "key_scope": ex.key_scope,
            "cancels": self.cancels(ex.cancel_on, event, trigger, creator, *path, "cancel_on"),
            # what an overdue duty waits for: a late event (the engine's rule, fixed per spec)
            "watch_late": ex.obligation is not None or bool(ex.late),
            "steps": steps,
            "every": every,
            "repeat": ex.repeat,
            "roll": roll,
            "consume": ex.consume,
            "out_of_order": branch("out_of_order", ex.out_of_order, early),
            "met": branch("met", ex.met, early),
            "late": branch("late", ex.late, early),
            "missed": branch("missed", ex.missed, None),
        }

    def steps(
        self,
        ex: m.Expect,
        types: list[str],
        where: dict[str, Any] | None,
        creator: list[str] | None,
        *path: str | int,
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """A schedule's duties as ``Compiler.expect`` fills them in (the expectation's types,
        ``where`` and obligation by default), and every event type a step awaits."""
        assert ex.steps is not None
        out = []
        early: list[str] = []
        for i, st in enumerate(ex.steps):
            at = (*path, "steps", i)
            stypes = types
            if st.event is not None:
                stypes = [st.event] if isinstance(st.event, str) else list(st.event)
            early += [t for t in stypes if t not in early]
            swhere = where
            if st.where is not None:
                own = self.condition(st.where, stypes, creator, True, *at, "where")
                swhere = own if where is None else {"op": "all", "args": [where, own]}
            out.append(
                {
                    "types": stypes,
                    "where": swhere,
                    "within": None if st.within is None else self.window(st.within, *at, "within"),
                    "after": None if st.after is None else self.window(st.after, *at, "after"),
                    "obligation": st.obligation if st.obligation is not None else ex.obligation,
                }
            )
        return out, [*early, *(t for t in types if t not in early)]

    def cancels(
        self,
        value: m.CancelOn | list[m.CancelOn] | None,
        event: list[str] | None,
        trigger: list[str] | None,
        creator: list[str] | None,
        *path: str | int,
    ) -> list[dict[str, Any]]:
        """``cancel_on``'s entries as ``Compiler.cancels`` reads them: values fixed at the
        duty's start (text fields only), ``where`` on the cancelling event."""
        sf = self.c.subject_field
        out = []
        for i, entry in enumerate(m.cancel_entries(value)):
            at = path if isinstance(value, m.CancelOn) else (*path, i)
            types = [entry.event] if isinstance(entry.event, str) else list(entry.event)
            subject = None
            match: list[list[Any]] = []
            for name, op in entry.match.items():
                lowered, kind = self.operand(op, event, trigger, False, *at, "match", name)
                more.plain(self, kind, *at, "match", name)
                if name == sf:
                    subject = lowered
                else:
                    self.text_field(types, name, *at, "match", name)
                    match.append([name, lowered])
            where = None
            if entry.where is not None:
                where = self.condition(entry.where, types, creator, True, *at, "where")
            out.append({"types": types, "subject": subject, "match": match, "where": where})
        return out

    def window(self, value: Any, *path: str | int) -> dict[str, Any]:
        return windows.window(self, value, *path)

    def calendar(self) -> dict[str, Any]:
        return windows.calendar(self)

    def duration(self, d: Duration, *path: str | int, working: bool = False) -> dict[str, Any]:
        return windows.duration(self, d, *path, working=working)

    # ------------------------------------------------------------ conditions and values
    def condition(
        self,
        cond: Any,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> dict[str, Any]:
        self.conditions += 1
        try:
            return self.test(cond, event, trigger, party, *path)
        finally:
            self.conditions -= 1

    def flag_read(self, name: str, *path: str | int) -> None:
        """A flag read as a value outside a condition (kept for ``instant_flags``' check)."""
        if self.conditions == 0:
            self.flags_read.setdefault(
                name,
                str(self.outside(f"the flag {name!r}, an instant elsewhere, as a value", *path)),
            )

    def test(
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
            if kind != "list" or ka in more.HELD_APART:
                raise self.outside("`in` of anything but a claims list", *path, "in")
            return {"op": "in", "args": [a, b]}
        for op in _COMPARE:
            pair = getattr(cond, op, None)
            if pair is not None and type(cond).__name__.lower() == op:
                a, ka = self.operand(pair[0], event, trigger, party, *path, op, 0, numbers=True)
                b, kb = self.operand(pair[1], event, trigger, party, *path, op, 1, numbers=True)
                if (held := more.compare(self, op, pair, [a, b], [ka, kb], *path)) is not None:
                    return held  # a date, a list
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
        if isinstance(op, float | Decimal | Money):  # as the compiler reads it (`Decimal(str)`)
            return self.decimal(op, *path), "decimal"
        if isinstance(op, str):
            if op.startswith("$$"):  # an escaped dollar: read by the compiler
                raise self.outside(f"the text {op!r}", *path)
            if not m.is_reference(op):
                return {"lit": op}, "text"
            return self.reference(op, event, trigger, party, *path, numbers=numbers, lists=lists)
        if isinstance(op, m.Claims):
            return {"claims": op.claims}, "list"
        if (lowered := more.operand(self, op, event, trigger, party, *path)) is not None:
            return lowered  # dates, lengths, lists, quotients, roundings...
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
            inner, kind = self.operand(op.owner_of, event, trigger, party, *path, "owner_of")
            more.plain(self, kind, *path, "owner_of")
            return {"owner_of": inner}, "text"
        if isinstance(op, m.Count):
            return {"count": self.query(op.count, event, trigger, party, *path, "count")}, "int"
        if isinstance(op, m.Coalesce | m.FlagOf | m.First):
            return self.value(op, event, trigger, party, *path, numbers=numbers)
        if isinstance(op, m.Sum | m.MinOf | m.MaxOf):
            return self.total(op, event, trigger, party, *path), "decimal"
        for key in ("add", "sub", "mul"):
            if type(op).__name__.lower() == key:
                args = [
                    self.operand(x, event, trigger, party, *path, key, i, numbers=True)
                    for i, x in enumerate(getattr(op, key))
                ]
                if any(kind in ("list", "texts") for _, kind in args):
                    raise self.outside(f"`{key}` of a list", *path, key)
                return {"arith": key, "args": [a for a, _ in args]}, "decimal"
        raise self.outside(f"the value {type(op).__name__}", *path)

    def decimal(self, value: float | Decimal | Money, *path: str | int) -> dict[str, Any]:
        """An exact number the core holds (a one-value money amount as its amount, as
        ``operators`` reads it); other amounts are not described."""
        if isinstance(value, Money):
            if value.low != value.high:
                raise self.outside("a money range as a number", *path)
            value = value.low
        number = Decimal(str(value))
        _, digits, exp = number.as_tuple()
        if not isinstance(exp, int) or len(digits) > 18 or abs(exp) > 30:
            raise self.outside(f"the number {number}", *path)
        return {"lit": {"dec": str(number)}}

    def total(
        self,
        op: m.Sum | m.MinOf | m.MaxOf,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> dict[str, Any]:
        """``{sum: ...}`` (``min``, ``max``): its terms, a ``values`` query's items one by one
        (whole numbers or decimals, so that nothing nests), every value not a number skipped."""
        key = "sum" if isinstance(op, m.Sum) else "min" if isinstance(op, m.MinOf) else "max"
        spec = getattr(op, key)
        many = isinstance(spec, list)
        terms: list[Any] = spec if isinstance(spec, list) else [spec]
        out = []
        for i, t in enumerate(terms):
            at = (*path, key, i) if many else (*path, key)
            if isinstance(t, m.Values):
                q = t.values
                types = [q.type] if isinstance(q.type, str) else list(q.type)
                if q.last is not None:
                    raise self.outside("`last` in a summed `values` query", *at, "values", "last")
                kind = self.text_field(types, q.field, *at, "values", "field", numbers=True)
                if kind not in ("int", "decimal"):
                    raise self.outside(f"a sum of a {kind} field", *at, "values", "field")
                found = self.query(q, event, trigger, party, *at, "values")
                out.append({"values_of": found, "field": q.field})
                continue
            lowered, kind = self.operand(t, event, trigger, party, *at, numbers=True)
            if kind in ("list", "texts"):
                raise self.outside(f"a sum of a {kind}", *at)
            out.append(lowered)
        return {"sum": out} if key == "sum" else {"fold": key, "terms": out}

    def value(
        self,
        op: m.Coalesce | m.FlagOf | m.First,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
        numbers: bool = False,
    ) -> tuple[dict[str, Any], str]:
        """``coalesce`` (the first value not null), ``flag_of`` (another subject's flag, null
        where it has none) and ``first`` of a ``values`` query (the newest match's field)."""
        if isinstance(op, m.Coalesce):
            items, kinds = [], set()
            for i, x in enumerate(op.coalesce):
                lowered, kind = self.operand(
                    x, event, trigger, party, *path, "coalesce", i, numbers=numbers
                )
                if kind in ("list", "texts"):
                    raise self.outside(f"a {kind} in `coalesce`", *path, "coalesce", i)
                items.append(lowered)
                kinds.add(kind)
            kinds.discard("null")
            if kinds & {"decimal", "date"} and len(kinds) > 1:  # held apart from texts
                raise self.outside("`coalesce` of a decimal or date and others", *path, "coalesce")
            return {"coalesce": items}, kinds.pop() if len(kinds) == 1 else "any"
        if isinstance(op, m.FlagOf):
            who, name = op.flag_of
            if not isinstance(name, str) or name.startswith("$"):
                raise self.outside("a computed flag name", *path, "flag_of", 1)
            inner, kind = self.operand(who, event, trigger, party, *path, "flag_of", 0)
            more.plain(self, kind, *path, "flag_of", 0)
            self.flag_read(name, *path)
            return {"flag_of": inner, "name": name}, "any"
        if not isinstance(op.first, m.Values):
            raise self.outside("`first` of anything but a `values` query", *path, "first")
        q = op.first.values
        where = (*path, "first", "values")
        if q.last is not None and not 0 <= q.last < 2**63:
            raise self.outside("a `last` this large", *where, "last")
        found = self.query(q.model_copy(update={"last": None}), event, trigger, party, *where)
        types = [q.type] if isinstance(q.type, str) else list(q.type)
        kind = self.text_field(types, q.field, *where, "field", yes_no=True, numbers=True)
        return {"first": found, "field": q.field, "last": q.last}, kind

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
            lowered, kind = self.operand(value, event, trigger, party, *path, "match", name)
            more.plain(self, kind, *path, "match", name)
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
        found = more.written_duration(self, text, "the look-back", *path)
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
            if value is None or isinstance(value, str | bool | int | Decimal | Money):
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
            if more.date_field(self.pset, types, rest[0]):
                return {"ref": root, "field": rest[0]}, "date"
            kind = self.text_field(types, rest[0], *path, yes_no=True, numbers=numbers, lists=lists)
            return {"ref": root, "field": rest[0]}, kind
        if root == "subject":
            if not rest or rest == ["id"]:
                return {"ref": "subject"}, "text"
            if rest == ["owner"]:
                return {"ref": "owner"}, "text"
            if rest == ["owner_since"]:  # the instant the current owner took it, or null
                return {"ref": "owner_since"}, "instant"
            if len(rest) == 2 and rest[0] == "counters":  # a whole number, read as a Decimal
                return {"ref": "counter", "name": rest[1]}, "decimal"
            if len(rest) == 2 and rest[0] == "flags":
                self.flag_read(rest[1], *path)
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
        if name in ("start", "end") and types and all(t.startswith("@") for t in types):
            return "instant"  # a tick's period bounds; its `period` is text
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
        if "decimal" in kinds and kinds <= {"int", "decimal"} and numbers:
            return "decimal"
        if kinds == {"list[str]"} and lists:
            return "texts"
        if kinds - {"str"}:
            what = next(iter(sorted(kinds - {"str"})))
            raise self.outside(f"the {what} field {name!r} of {'/'.join(types)}", *path)
        return "text"
