"""Stage 3, compile: a validated policy set -> ``CompiledPolicy`` (``compile_policy``).

Rules, their actions, penalties and expectations, labels, metrics, awards and invariants are
compiled on top of ``ExpressionCompiler`` (values and conditions); parameter overrides are
resolved and checked (``resolve_params``), and rules ranked by ``overrides:``. The compiled
form itself lives in ``compiled`` and the closures' arithmetic in ``operators``; both are
re-exported here, where the later layers have always imported them from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from policyengine.errors import Code, Location, ProblemSink, did_you_mean
from policyengine.language import model as m
from policyengine.language.compiled import BUILTIN_FIELDS as BUILTIN_FIELDS
from policyengine.language.compiled import OWNER_CHANGED as OWNER_CHANGED
from policyengine.language.compiled import CAction as CAction
from policyengine.language.compiled import CAward as CAward
from policyengine.language.compiled import CCancel as CCancel
from policyengine.language.compiled import CCredit as CCredit
from policyengine.language.compiled import CExpect as CExpect
from policyengine.language.compiled import CLabel as CLabel
from policyengine.language.compiled import CMetric as CMetric
from policyengine.language.compiled import CompiledPolicy as CompiledPolicy
from policyengine.language.compiled import CompiledRule as CompiledRule
from policyengine.language.compiled import CPenalty as CPenalty
from policyengine.language.compiled import CStep as CStep
from policyengine.language.compiled import CStepSpec as CStepSpec
from policyengine.language.compiled import CTimer as CTimer
from policyengine.language.compiled import Ctx as Ctx
from policyengine.language.compiled import FieldCheck as FieldCheck
from policyengine.language.compiled import Getter as Getter
from policyengine.language.compiled import HistoryPlan as HistoryPlan
from policyengine.language.compiled import Pred as Pred
from policyengine.language.compiled import SubjectView as SubjectView
from policyengine.language.compiled import Window as Window
from policyengine.language.compiled import WorldView as WorldView
from policyengine.language.compiled import walk_actions as walk_actions
from policyengine.language.expression_compiler import ExpressionCompiler, Scope, too_long_for_hours
from policyengine.language.loader import Path_, Source
from policyengine.language.operators import _conjunction
from policyengine.language.operators import _equal as _equal
from policyengine.language.operators import _literal_equality as _literal_equality
from policyengine.language.operators import as_number as as_number
from policyengine.language.validate import PolicySet, RuleSite
from policyengine.times import Duration, as_instant

# labels and metrics are compiled with the rule machinery; this stands in for "no rule"
_NO_RULE = m.Rule.model_validate({"id": "-", "clause": "-", "on": "-", "then": [{"clear": "-"}]})

_Base = dict[str, Any]  # what every compiled action carries: when, for_each, for_each_subject


class _Compiler(ExpressionCompiler):
    """One visit method per action model, on top of the values and conditions."""

    # -- actions
    def actions(self, acts: list[Any], path: Path_, scope: Scope) -> tuple[CAction, ...]:
        return tuple(self.action(a, (*path, i), scope) for i, a in enumerate(acts))

    def action(self, act: Any, path: Path_, scope: Scope) -> CAction:
        each_subject = None
        if act.for_each_subject is not None:
            each_subject = self.operand(act.for_each_subject, (*path, "for_each_subject"), scope)
        for_each = None
        if act.for_each is not None:
            for_each = self.operand(act.for_each, (*path, "for_each"), scope)
            scope = Scope(scope.event, scope.trigger, item=True, party=scope.party)
        when = self.condition(act.when, (*path, "when"), scope) if act.when is not None else None
        base: _Base = {
            "when": when,
            "for_each": for_each,
            "for_each_subject": each_subject,
        }
        compiled: CAction = self.visit(act, path, scope, base)
        return compiled

    def visit_ClaimAction(
        self, act: m.ClaimAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        return CAction("claim", value=self.operand(act.claim, (*path, "claim"), scope), **base)

    def visit_LapseClaimAction(
        self, act: m.LapseClaimAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        value = self.operand(act.lapse_claim, (*path, "lapse_claim"), scope)
        return CAction("lapse_claim", value=value, **base)

    def visit_DropClaimsAction(
        self, act: m.DropClaimsAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        value = self.operand(act.drop_claims, (*path, "drop_claims"), scope)
        return CAction("drop_claims", value=value, **base)

    def visit_AssignAction(
        self, act: m.AssignAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        spec = act.assign
        if isinstance(spec, m.AssignSpec):
            subj = (
                self.operand(spec.subject, (*path, "assign", "subject"), scope)
                if spec.subject is not None
                else None
            )
            owner = self.operand(spec.owner, (*path, "assign", "owner"), scope)
            return CAction("assign", value=owner, subject=subj, **base)
        return CAction("assign", value=self.operand(spec, (*path, "assign"), scope), **base)

    def visit_ReleaseAction(
        self, act: m.ReleaseAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        subj = (
            self.operand(act.release, (*path, "release"), scope)
            if act.release is not None
            else None
        )
        return CAction("release", subject=subj, **base)

    def visit_TransferAction(
        self, act: m.TransferAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        return CAction(
            "transfer",
            value=self.operand(act.transfer.from_, (*path, "transfer", "from"), scope),
            target=self.operand(act.transfer.to, (*path, "transfer", "to"), scope),
            **base,
        )

    def visit_PenaltyAction(
        self, act: m.PenaltyAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        return CAction(
            "penalty", penalty=self.penalty(act.penalty, (*path, "penalty"), scope), **base
        )

    def visit_CreditAction(
        self, act: m.CreditAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        spec = act.credit
        credit = CCredit(
            party=self.operand(spec.party, (*path, "credit", "party"), scope),
            kind=spec.kind,
            amount=self.operand(spec.amount, (*path, "credit", "amount"), scope),
            currency=spec.currency,
        )
        return CAction("credit", credit=credit, **base)

    def visit_ExpectAction(
        self, act: m.ExpectAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        return CAction("expect", expect=self.expect(act.expect, (*path, "expect"), scope), **base)

    def visit_SetAction(self, act: m.SetAction, path: Path_, scope: Scope, base: _Base) -> CAction:
        spec = act.set
        subj = (
            self.operand(spec.subject, (*path, "set", "subject"), scope)
            if spec.subject is not None
            else None
        )
        value = self.operand(spec.value, (*path, "set", "value"), scope)
        if self.kind_of(spec.value, scope) == "instant":  # stays an instant (issue 16)
            plain = value
            value = lambda c: as_instant(plain(c))  # noqa: E731
        return CAction("set", name=spec.flag, value=value, subject=subj, **base)

    def visit_ClearAction(
        self, act: m.ClearAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        return CAction("clear", name=act.clear, **base)

    def visit_AddAction(self, act: m.AddAction, path: Path_, scope: Scope, base: _Base) -> CAction:
        spec = act.add
        party = (
            self.operand(spec.party, (*path, "add", "party"), scope)
            if spec.party is not None
            else None
        )
        return CAction(
            "add",
            name=spec.counter,
            value=self.operand(spec.by, (*path, "add", "by"), scope),
            target=party,
            **base,
        )

    def visit_RejectAction(
        self, act: m.RejectAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        return CAction("reject", text=act.reject, **base)

    def visit_ViolationAction(
        self, act: m.ViolationAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        if isinstance(act.violation, str):
            return CAction("violation", text=act.violation, **base)
        vparty = act.violation.party
        return CAction(
            "violation",
            text=act.violation.what,
            target=(
                self.operand(vparty, (*path, "violation", "party"), scope)
                if vparty is not None
                else None
            ),
            **base,
        )

    def penalty(self, spec: m.PenaltySpec, path: Path_, scope: Scope) -> CPenalty:
        def opt(v: Any, *p: str | int) -> Getter | None:
            return None if v is None else self.operand(v, (*path, *p), scope)

        ladder = spec.ladder_steps
        if ladder is not None:
            inner = ("ladder", "steps") if isinstance(spec.ladder, m.LadderSpec) else ("ladder",)
            steps = tuple(
                CStep(
                    s.sanction,
                    opt(s.amount, *inner, i, "amount"),
                    opt(s.salary_days, *inner, i, "salary_days"),
                )
                for i, s in enumerate(ladder)
            )
        else:
            assert spec.sanction is not None
            steps = (
                CStep(
                    spec.sanction, opt(spec.amount, "amount"), opt(spec.salary_days, "salary_days")
                ),
            )
        window = None
        text = spec.ladder_window
        if text is not None:
            where = (*path, "ladder", "window") if spec.window is None else (*path, "window")
            if m.is_reference(text) and not text.startswith("$params."):
                self.error(
                    Code.BAD_VALUE,
                    f"a ladder's window is a duration (90 days) or $params.name, not {text}",
                    where,
                )
            else:
                window = self.duration(text, where)
        return CPenalty(
            party=self.operand(spec.party, (*path, "party"), scope),
            steps=steps,
            ladder=ladder is not None,
            ladder_key=spec.ladder_name,
            per_unit=opt(spec.per_unit, "per_unit"),
            units=opt(spec.units, "units"),
            window=window,
            per=spec.ladder_per,
        )

    def expect(self, ex: m.Expect, path: Path_, scope: Scope) -> CExpect:
        types = (ex.event,) if isinstance(ex.event, str) else tuple(ex.event)
        self.check_types(types, (*path, "event"))
        creator = scope.event if scope.event is not None else scope.trigger
        create_scope = Scope(scope.event, scope.trigger, scope.item)
        match, subject = self.match_fields(ex.match, types, (*path, "match"), create_scope)
        candidate = Scope(types, creator, party=True)
        where = (
            self.condition(ex.where, (*path, "where"), candidate) if ex.where is not None else None
        )
        within = self.window(ex.within, (*path, "within"), create_scope)
        after = self.window(ex.after, (*path, "after"), create_scope)
        if ex.repeat and within is not None and within.duration is None:
            self.expect_kind(
                ex.within,
                create_scope,
                {"duration"},
                "a repeating duty's `within`",
                (*path, "within"),
            )
        cancels = self.cancels(ex.cancel_on, (*path, "cancel_on"), create_scope, creator)
        steps: tuple[CStepSpec, ...] | None = None
        # `$event` in out_of_order is the event that came early: any step's (issue 16)
        early: tuple[str, ...] = () if ex.steps else types
        if ex.steps is not None:
            compiled_steps = []
            for i, st in enumerate(ex.steps):
                spath = (*path, "steps", i)
                stypes = types
                if st.event is not None:
                    stypes = (st.event,) if isinstance(st.event, str) else tuple(st.event)
                    self.check_types(stypes, (*spath, "event"))
                early = (*early, *(t for t in stypes if t not in early))
                swhere = where
                if st.where is not None:
                    own = self.condition(
                        st.where, (*spath, "where"), Scope(stypes, creator, party=True)
                    )
                    swhere = own if where is None else _conjunction([where, own])
                compiled_steps.append(
                    CStepSpec(
                        stypes,
                        swhere,
                        self.window(st.within, (*spath, "within"), create_scope),
                        self.window(st.after, (*spath, "after"), create_scope),
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
            obligation=ex.obligation,
            party=party,
            met=self.actions(ex.met, (*path, "met"), candidate),
            late=self.actions(ex.late, (*path, "late"), candidate),
            missed=self.actions(ex.missed, (*path, "missed"), Scope(None, creator, party=True)),
            cancels=cancels,
            steps=steps,
            every=ex.every,
            repeat=ex.repeat,
            consume=ex.consume,
            in_order=ex.in_order,
            key=key,
            key_scope=ex.key_scope,
            about=about,
            out_of_order=self.actions(
                ex.out_of_order, (*path, "out_of_order"), Scope(early, creator, party=True)
            ),
            roll=ex.roll is not None,
        )

    def cancels(
        self,
        value: m.CancelOn | list[m.CancelOn] | None,
        path: Path_,
        create_scope: Scope,
        creator: tuple[str, ...] | None,
        party: bool = True,
    ) -> tuple[CCancel, ...]:
        """``cancel_on:``, one mapping or a list: each entry with its own match and where
        (``$event`` the cancelling event, ``$trigger`` the creator)."""
        out = []
        for i, entry in enumerate(m.cancel_entries(value)):
            epath = path if isinstance(value, m.CancelOn) else (*path, i)
            types = (entry.event,) if isinstance(entry.event, str) else tuple(entry.event)
            self.check_types(types, (*epath, "event"))
            cmatch, csubj = self.match_fields(entry.match, types, (*epath, "match"), create_scope)
            match = cmatch if csubj is None else ((self.subject_field, csubj), *cmatch)
            where = None
            if entry.where is not None:
                where = self.condition(
                    entry.where, (*epath, "where"), Scope(types, creator, party=party)
                )
            out.append(CCancel(types, match, where))
        return tuple(out)

    def visit_TimerAction(
        self, act: m.TimerAction, path: Path_, scope: Scope, base: _Base
    ) -> CAction:
        spec, tpath = act.timer, (*path, "timer")
        creator = scope.event if scope.event is not None else scope.trigger
        create_scope = Scope(scope.event, scope.trigger, scope.item)
        if spec.after is not None:
            when = self.window(spec.after, (*tpath, "after"), create_scope)
            if when is not None and when.duration is None:
                self.expect_kind(
                    spec.after, create_scope, {"duration"}, "a timer's `after`", (*tpath, "after")
                )
        elif isinstance(spec.at, str) and (
            not m.is_reference(spec.at) or spec.at.startswith("$params.")
        ):
            when = None
            self.error(
                Code.BAD_VALUE,
                f"a timer's `at` is an instant computed from the event, not {spec.at!r}; "
                "for a duration, use `after`",
                (*tpath, "at"),
            )
        elif self.expect_kind(
            spec.at, create_scope, {"instant", "date"}, "a timer's `at`", (*tpath, "at")
        ):
            getter = self.operand(spec.at, (*tpath, "at"), create_scope)
            when = Window(None, getter, _window_text(spec.at), self.loc((*tpath, "at")))
        else:
            when = None
        key = None
        if spec.key is not None:
            key = self.operand(spec.key, (*tpath, "key"), create_scope)
        timer = CTimer(
            when if when is not None else Window(None),
            self.actions(spec.then, (*tpath, "then"), Scope(None, creator)),
            ".".join(str(x) for x in tpath),
            key,
            self.cancels(spec.cancel_on, (*tpath, "cancel_on"), create_scope, creator, False),
        )
        return CAction("timer", timer=timer, **base)

    def window(self, value: Any, path: Path_, scope: Scope) -> Window | None:
        """``within:``/``after:``: a duration as text or a parameter, compiled once; anything
        else an expression of the trigger, which must be able to give an instant, a date or a
        duration (checked here), and is computed when the duty arises."""
        if value is None:
            return None
        if isinstance(value, str) and (not m.is_reference(value) or value.startswith("$params.")):
            duration = self.duration(value, path)
            return Window(duration, text=value) if duration is not None else None
        allowed = {"instant", "date", "duration"}
        if not self.expect_kind(value, scope, allowed, "a window", path):
            return None
        getter = self.operand(value, path, scope)
        return Window(None, getter, _window_text(value), self.loc(path))

    def label(self, name: str, label: m.Label, source: Source) -> CLabel:
        """Cases see the subject and the history; with ``on``, also the classifying event."""
        self.site = RuleSite(_NO_RULE, source, -1)
        self.site_root = ("labels", name)
        on = tuple(label.on if isinstance(label.on, list) else [label.on] if label.on else [])
        self.check_types(on, ("on",))
        scope = Scope(on or None, None)
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
        return inv.id, self.condition(inv.holds, ("holds",), Scope(None, None))

    def metric(self, metric: m.Metric, source: Source, index: int, before: set[str]) -> CMetric:
        self.site = RuleSite(_NO_RULE, source, -1)
        self.site_root = ("metrics", index)
        period = Scope(("@" + metric.every,), None)
        per_party = Scope(("@" + metric.every,), None, party=True, metrics=frozenset(before))
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
                    Code.BAD_REFERENCE,
                    f"award {award.id!r} ranks by unknown metric {mid!r}",
                    where,
                    did_you_mean(mid, metrics) or "name a metric declared under `metrics:`",
                )
            elif metrics[mid] != every:
                self.error(
                    Code.BAD_REFERENCE,
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
        scope = Scope(triggers if rule.every is None else ("@" + rule.every,), None)
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
                Code.UNKNOWN_PARAMETER,
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
            reason = (
                exc.errors()[0]["msg"].removeprefix("Value error, ")
                if isinstance(exc, ValidationError)
                else str(exc)
            )
            sink.add(Code.BAD_QUANTITY, f"parameter override {name!r}: {reason}", where)
    return values


def compile_policy(
    pset: PolicySet, sink: ProblemSink, params: Mapping[str, Any] | None = None
) -> CompiledPolicy:
    values = resolve_params(pset, params, sink)
    for name, value in values.items():
        problem = too_long_for_hours(value, pset.calendar) if isinstance(value, Duration) else None
        if problem is not None:
            where = pset.param_sites.get(name, Location("<params>", 1, 1))
            sink.add(Code.BAD_QUANTITY, f"parameter {name!r}: {problem}", where)
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
            if a.timer is not None:
                awaited.update(a.timer.cancel_types)
                collect(a.timer.then)

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
        calendar=pset.calendar,
    )


def _window_text(value: Any) -> str:
    if isinstance(value, BaseModel):
        return str(value.model_dump(by_alias=True, exclude_none=True))
    return str(value)


def _rank(rules: tuple[CompiledRule, ...]) -> None:
    """Longest override chain below each rule; overriders get the higher rank."""
    by_id = {r.id: r for r in rules}
    memo: dict[str, int] = {}

    def depth(root: str) -> int:
        # post-order with an explicit stack (a chain of thousands of overrides must not hit the
        # recursion limit); a rule already on the path counts 0 (a cycle is refused: PE112)
        on_path: set[str] = set()
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            rid, done = stack.pop()
            if done:
                on_path.discard(rid)
                r = by_id[rid]
                memo[rid] = 1 + max(
                    (memo.get(t, 0) if t in by_id and t not in on_path else 0 for t in r.overrides),
                    default=-1,
                )
                continue
            if rid in memo or rid not in by_id or rid in on_path:
                continue
            on_path.add(rid)
            stack.append((rid, True))
            stack.extend((t, False) for t in reversed(sorted(by_id[rid].overrides)))
        return memo.get(root, 0)

    for r in rules:
        r.rank = depth(r.id)
