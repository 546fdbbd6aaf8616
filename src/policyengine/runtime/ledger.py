"""What actions write into the World's records: the trace, owners, penalties and credits.

``Ledger`` is the part of the ``World`` (``runtime.engine``) that turns a decided action into
rows: an owner change into a span, a trace entry and (when a rule waits for it) a derived
``owner_changed`` event; a penalty into its ladder step and row; a credit into its row. It
reads and writes only the declared state (``runtime.state.EngineState``), so the engine's
control flow (matching, duties, the clock) stays in ``engine`` and the bookkeeping here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from policyengine.errors import Code, EvaluationError, Problem
from policyengine.language.compiler import (
    OWNER_CHANGED,
    CAction,
    CompiledRule,
    CPenalty,
    Ctx,
    as_number,
)
from policyengine.language.model import Money
from policyengine.runtime.queries import Queries
from policyengine.runtime.records import (
    Causes,
    ConflictRow,
    CreditRow,
    PenaltyRow,
    SpanRecord,
    TraceRow,
)
from policyengine.runtime.state import Subject

_new_row = tuple.__new__


class Ledger(Queries):
    """The records side of the World: every method here appends rows or changes an owner."""

    __slots__ = ()

    def subject(self, sid: str) -> Subject:
        s = self.subjects.get(sid)
        if s is None:
            s = self.subjects[sid] = Subject(sid)
        return s

    def _trace(
        self,
        kind: str,
        rule: CompiledRule,
        causes: Causes,
        subject: str | None = None,
        party: str | None = None,
        **detail: Any,
    ) -> None:
        # the tuple constructor directly: a NamedTuple's own __new__ is one more Python call
        # per trace entry, on the engine's hottest path
        self.trace.append(
            _new_row(TraceRow, (self.now, kind, subject, party, rule.ref, causes, detail))
        )

    def set_owner(self, sid: str, owner: str | None, rule: CompiledRule, causes: Causes) -> None:
        s = self.subject(sid)
        earlier = self.step_owner.get(sid)
        if earlier is not None and earlier[1] != rule.id and earlier[0] != owner:
            self.conflicts.append(
                ConflictRow(
                    causes[-1] if causes else "?",
                    f"rules {earlier[1]!r} and {rule.id!r} both decided the owner "
                    f"of {sid!r} ({earlier[0]!r} vs {owner!r}); the later rule "
                    "in the file won: declare `overrides:` between them",
                )
            )
        self.step_owner[sid] = (owner, rule.id)
        if s.owner == owner:
            return
        if s.spans and s.spans[-1].end is None:
            if s.spans[-1].start == self.now:
                s.spans.pop()  # owned for no time at all: keep it in the trace only
            else:
                s.spans[-1].end = self.now
        if s.owner is not None:
            self.owned_by[s.owner].discard(sid)
        previous = s.owner
        s.owner = owner
        s.owner_since = self.now if owner is not None else None
        if owner is not None:
            s.spans.append(SpanRecord(owner, self.now, None, rule.ref, causes))
            self.owned_by.setdefault(owner, set()).add(sid)
        self._trace("owner", rule, causes, subject=sid, owner=owner, previous=previous)
        if self.emits_owner:
            self.derived.append(
                {
                    "id": causes[-1] if causes else "?",
                    "type": OWNER_CHANGED,
                    "at": self.now,
                    self.sf: sid,
                    "owner": owner,
                    "previous": previous,
                }
            )

    def penalize(self, a: CAction, ctx: Ctx, rule: CompiledRule, causes: Causes) -> None:
        p = a.penalty
        assert p is not None
        party = p.party(ctx)
        if party is None:
            return
        key = (p.ladder_key or rule.id, str(party))
        total = count = self.ladders.get(key, 0)
        if key[0] in self.offence_keys:  # some ladder of the key counts in a window or period
            log = self.offence_log.setdefault(key, [])
            count = self.offences_in(p, log)
            log.append(self.now)
        hooks = self.hooks
        if hooks is None:
            row, detail = self.sentence(
                p, min(count, len(p.steps) - 1), count + 1, str(party), ctx, rule, causes
            )
        else:
            row, detail = hooks.sentence(self, p, str(party), count, ctx, rule, causes)
        self.ladders[key] = total + 1
        self.penalties.append(row)
        self._trace("penalty", rule, causes, subject=ctx.subject_id, party=str(party), **detail)
        if hooks is not None:
            hooks.penalized(a, ctx, key, len(self.penalties) - 1, len(self.trace) - 1)

    def credit(self, a: CAction, ctx: Ctx, rule: CompiledRule, causes: Causes) -> None:
        c = a.credit
        assert c is not None
        party = c.party(ctx)
        if party is None:
            return
        value = c.amount(ctx)
        amount = as_number(value)
        if amount is None or not amount.is_finite() or amount < 0:
            raise EvaluationError(
                [
                    Problem(
                        Code.NOT_AN_AMOUNT,
                        f"rule {rule.id!r}: the credit's amount came out as {value!r}, "
                        "not an amount of zero or more",
                        rule.location,
                        hint="a credit is a number or a one-value money amount, not negative",
                    )
                ]
            )
        ev = ctx.event if ctx.event is not None else ctx.trigger
        currency = c.currency if c.currency is not None else self.policy.currency
        self.credits.append(
            CreditRow(
                str(party),
                c.kind,
                amount,
                currency,
                ctx.subject_id,
                ev["id"] if ev is not None else None,
                self.now,
                rule.ref,
                causes,
            )
        )
        self._trace(
            "credit",
            rule,
            causes,
            subject=ctx.subject_id,
            party=str(party),
            credit=c.kind,
            amount=str(amount),
            currency=currency,
        )

    def sentence(
        self,
        p: CPenalty,
        index: int,
        offence: int,
        party: str,
        ctx: Ctx,
        rule: CompiledRule,
        causes: Causes,
    ) -> tuple[PenaltyRow, dict[str, Any]]:
        """The penalty row and its trace detail for step ``index`` of ``p`` (step 0 unless a
        ladder): the distributed runner evaluates every step where the context exists and
        numbers the offences afterwards."""
        step = p.steps[index] if p.ladder else p.steps[0]
        low = high = None
        if step.amount is not None:
            low, high = _money(step.amount(ctx), rule, "amount")
        units = None
        if p.per_unit is not None and p.units is not None:
            ulow, uhigh = _money(p.per_unit(ctx), rule, "per_unit")
            units = int(p.units(ctx) or 0)
            low, high = ulow * units, uhigh * units
        days = None
        if step.salary_days is not None:
            days = _money(step.salary_days(ctx), rule, "salary_days")[0]
        currency = self.policy.currency if low is not None else None
        row = PenaltyRow(
            party,
            step.sanction,
            low,
            high,
            currency,
            units,
            days,
            offence,
            ctx.subject_id,
            self.now,
            rule.ref,
            causes,
        )
        detail = {
            "sanction": step.sanction,
            "amount_min": text_of(low),
            "amount_max": text_of(high),
            "units": units,
            "salary_days": text_of(days),
            "offence": offence,
        }
        return row, detail


def _money(value: Any, rule: CompiledRule, what: str) -> tuple[Decimal, Decimal]:
    """An amount the rule computed; a missing or non-numeric one is never read as 0."""
    if isinstance(value, Money):
        return value.low, value.high
    amount = decimal_of(value)
    if amount is None or not amount.is_finite():
        raise EvaluationError(
            [
                Problem(
                    Code.NOT_AN_AMOUNT,
                    f"rule {rule.id!r}: the penalty's {what} came out as {value!r}, not an amount",
                    hint="give every key the rule looks up a row in its table, or a default "
                    "with {coalesce: [...]}",
                )
            ]
        )
    return amount, amount


def text_of(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def decimal_of(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None
