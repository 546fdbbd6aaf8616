"""Stage 4, evaluate: replay a history on a virtual clock.

One pass over the events in timestamp order. Before each event, every deadline (and
``timer:``) that has passed fires (an inclusive deadline at D fires after the events at D, an
exclusive one before them). For each event:

1. the rules it triggers are *matched* against the state before the event (snapshot
   semantics: rules of one event do not see each other's effects, so file order cannot
   change which rules apply);
2. overridden rules drop out (``overrides:``, resolved overrider-first);
3. rules that ``reject`` the event run first; a rejected event does nothing else;
4. pending expectations the event meets (or meets late, or cancels) run their branches;
5. the remaining rules' actions run in declaration order;
6. the event joins the history that later conditions can query.

The wall clock is never read: time is the events' and ``as_of``'s.
"""

from __future__ import annotations

import dataclasses
import heapq
from decimal import Decimal
from typing import Any, Final, cast

from policyengine.errors import Code, EvaluationError, Problem
from policyengine.language.compiler import (
    OWNER_CHANGED,
    CAction,
    CAward,
    CCancel,
    CExpect,
    CompiledPolicy,
    CompiledRule,
    CTimer,
    Ctx,
)
from policyengine.runtime.events import Event
from policyengine.runtime.ledger import Ledger, decimal_of, text_of
from policyengine.runtime.queries import counted_keys
from policyengine.runtime.records import (
    CANCELLED,
    LATE,
    MET,
    MISSED,
    OPEN,
    AwardRow,
    Causes,
    ClassificationRow,
    Comparison,
    MetricRow,
    ObligationRecord,
    RejectionRow,
    ViolationRow,
)
from policyengine.runtime.state import (
    MAX_SPAN_YEARS,
    STATE,
    Alarm,
    Chain,
    Close,
    Hooks,
    Pending,
    Renew,
    Tick,
    check_span,
    period_of,
)

_new_row = tuple.__new__
# the attributes every evaluation starts afresh, and how (``EngineState``)
_FRESH: Final = tuple((name, d.new) for name, d in STATE.items() if d.new is not None)
_FACTS: Final = "engine.facts"


@dataclasses.dataclass(frozen=True, slots=True)
class _Facts:
    """What every World of one policy derives from its rules alike: derived once per compiled
    policy (kept in its ``memo``), not for every evaluation of a short history."""

    classifying: dict[str, tuple[Any, ...]]
    emits_owner: bool
    # trigger -> rules tuples in which no rule overrides or rejects (nothing to resolve)
    plain: frozenset[int]
    offence_keys: frozenset[str]


def _facts(policy: CompiledPolicy) -> _Facts:
    return _Facts(
        classifying=policy.classifying,
        emits_owner=OWNER_CHANGED in policy.by_trigger or OWNER_CHANGED in policy.awaited,
        plain=frozenset(
            id(rs)
            for group in (policy.by_trigger, policy.periodic)
            for rs in group.values()
            if not any(r.overrides or r.rejects for r in rs)
        ),
        offence_keys=counted_keys(policy),
    )


class World(Ledger):
    """All state of one evaluation; discarded afterwards (no global state). Its attributes are
    declared once, with their roles, by ``EngineState``."""

    __slots__ = tuple(STATE)

    def __init__(
        self,
        policy: CompiledPolicy,
        hooks: Hooks | None = None,
        max_span: int | None = MAX_SPAN_YEARS,
    ) -> None:
        for name, new in _FRESH:
            setattr(self, name, new())
        facts = policy.memo.get(_FACTS)
        if not isinstance(facts, _Facts):
            facts = policy.memo[_FACTS] = _facts(policy)
        self.policy = policy
        self.hooks = hooks
        self.tz = policy.timezone
        self.cal = policy.calendar
        self.sf = policy.subject_field
        self.classifying = facts.classifying
        self.emits_owner = facts.emits_owner
        self.plain = facts.plain
        self.offence_keys = facts.offence_keys
        self.horizon = None
        self.derived = []
        self.labels = {}
        self.broken = {}
        self.before_finish = None
        self.max_span = max_span
        self.memo = {}
        self.scanned = 0
        if hooks is not None:
            hooks.bind(self)

    # ------------------------------------------------------------ state
    # ------------------------------------------------------------ actions
    def run(
        self, actions: tuple[CAction, ...], ctx: Ctx, rule: CompiledRule, causes: Causes
    ) -> None:
        for a in actions:
            if a.for_each_subject is None:
                if a.for_each is None:  # the common case, without a call per action
                    if a.when is None or a.when(ctx):
                        self.do(a, ctx, rule, causes)
                else:
                    self._run_one(a, ctx, rule, causes)
                continue
            ids = a.for_each_subject(ctx) or []
            for sid in ids if isinstance(ids, list | tuple) else [ids]:
                sub = Ctx(self, ctx.now, ctx.event, ctx.trigger, str(sid), self.subject(str(sid)))
                sub.party, sub.item = ctx.party, ctx.item
                self._run_one(a, sub, rule, causes)

    def _run_one(self, a: CAction, ctx: Ctx, rule: CompiledRule, causes: Causes) -> None:
        if a.for_each is not None:
            items = a.for_each(ctx) or []
            for item in items if isinstance(items, list | tuple) else [items]:
                ctx.item = item
                if a.when is None or a.when(ctx):
                    self.do(a, ctx, rule, causes)
            ctx.item = None
        elif a.when is None or a.when(ctx):
            self.do(a, ctx, rule, causes)

    def _need_subject(self, ctx: Ctx, rule: CompiledRule, what: str) -> str:
        if ctx.subject_id is None:
            raise EvaluationError(
                [
                    Problem(
                        Code.RUNTIME_TYPE,
                        f"rule {rule.id!r} tries to {what} but the event names no {self.sf}",
                        rule.location,
                        hint=f"trigger it on events that carry `{self.sf}`, or name the subject",
                    )
                ]
            )
        return ctx.subject_id

    def do(self, a: CAction, ctx: Ctx, rule: CompiledRule, causes: Causes) -> None:
        kind = a.kind
        if kind == "claim" or kind == "lapse_claim":
            assert a.value is not None
            emp = a.value(ctx)
            sid = self._need_subject(ctx, rule, "change a claim")
            s = self.subject(sid)
            if emp is None:
                return
            if kind == "claim":
                s.claims[emp] = "open"
                self.claims_by.setdefault(emp, set()).add(sid)
                self._trace("claim", rule, causes, subject=sid, party=emp, status="open")
            elif s.claims.get(emp) == "open":
                s.claims[emp] = "lapsed"
                self._trace("claim", rule, causes, subject=sid, party=emp, status="lapsed")
        elif kind == "drop_claims":
            assert a.value is not None
            emp = a.value(ctx)
            for sid in sorted(self.claims_by.pop(emp, ())):
                s = self.subjects[sid]
                if s.claims.get(emp) == "open":
                    s.claims[emp] = "released"
                    self._trace("claim", rule, causes, subject=sid, party=emp, status="released")
        elif kind == "assign" or kind == "release":
            sid = (
                a.subject(ctx)
                if a.subject is not None
                else self._need_subject(ctx, rule, "assign an owner")
            )
            owner = a.value(ctx) if a.value is not None else None
            if sid is not None:
                self.set_owner(sid, owner, rule, causes)
        elif kind == "transfer":
            assert a.value is not None and a.target is not None
            frm, to = a.value(ctx), a.target(ctx)
            for sid in sorted(self.owned_by.get(frm, ())):
                self.set_owner(sid, to, rule, causes)
        elif kind == "penalty":
            self.penalize(a, ctx, rule, causes)
        elif kind == "credit":
            self.credit(a, ctx, rule, causes)
        elif kind == "expect":
            assert a.expect is not None
            self.expect(a.expect, ctx, rule)
        elif kind == "timer":
            assert a.timer is not None
            self.set_timer(a.timer, ctx, rule)
        elif kind == "set" or kind == "clear":
            sid = (
                a.subject(ctx)
                if a.subject is not None
                else self._need_subject(ctx, rule, "set a flag")
            )
            if sid is None:
                return
            s = self.subject(sid)
            assert a.name is not None
            value = a.value(ctx) if (kind == "set" and a.value is not None) else None
            if value is None:
                s.flags.pop(a.name, None)
            else:
                s.flags[a.name] = value
            self._trace("flag", rule, causes, subject=sid, flag=a.name, value=value)
        elif kind == "add":
            assert a.value is not None and a.name is not None
            by = Decimal(str(a.value(ctx) or 0))
            if a.target is not None:
                party = a.target(ctx)
                if party is None:
                    return
                table = self.party_counters.setdefault(str(party), {})
                owner_key: str = str(party)
            else:
                sid = self._need_subject(ctx, rule, "count")
                table = self.subject(sid).counters
                owner_key = sid
            table[a.name] = table.get(a.name, Decimal(0)) + by
            self.counter_log.setdefault((owner_key, a.name), []).append((self.now, by))
            self._trace(
                "counter",
                rule,
                causes,
                subject=ctx.subject_id,
                party=owner_key,
                counter=a.name,
                value=str(table[a.name]),
            )
            if a.target is not None and self.hooks is not None:
                self.hooks.added(a, ctx, (owner_key, a.name), by, self.now, len(self.trace) - 1)
        elif kind == "violation":
            ev = ctx.event if ctx.event is not None else ctx.trigger
            party = a.target(ctx) if a.target is not None else ctx.party
            self.violations.append(
                ViolationRow(
                    a.text or "violation",
                    None if party is None else str(party),
                    ctx.subject_id,
                    ev["id"] if ev is not None else None,
                    self.now,
                    rule.ref,
                    causes,
                )
            )
            self._trace(
                "violation", rule, causes, subject=ctx.subject_id, party=text_of(party), what=a.text
            )
        elif kind == "reject":
            self.rejected = True
            ev = ctx.event
            eid = ev["id"] if ev is not None else "?"
            self.rejections.append(RejectionRow(eid, self.now, rule.ref, a.text or "rejected"))
            self._trace("reject", rule, causes, subject=ctx.subject_id, reason=a.text)

    def expect(self, e: CExpect, ctx: Ctx, rule: CompiledRule) -> None:
        key = None
        if e.key is not None:
            key = (e.key_scope or id(e), _hashable(e.key(ctx)))
            live = self.live_keys.get(key)
            if live is not None and live.live():
                return
        chain = None
        if e.steps is not None or e.every is not None or e.repeat or key is not None:
            chain = Chain(e, rule, ctx, key)
            if key is not None:
                self.live_keys[key] = chain
        if e.steps is not None:
            assert chain is not None
            prev: tuple[int, bool] | None = None
            for i, st in enumerate(e.steps):
                if st.after is not None:
                    start: int | None = st.after.due(ctx, self.now)[0]
                    excl = False
                elif prev is not None:
                    start, excl = (
                        prev[0],
                        prev[1],
                    )  # inclusive due -> the next window opens after it
                else:
                    start, excl = None, False
                due = e.deadline(st.within, ctx, self.now)
                p = self._instance(e, ctx, rule, chain, due, start, excl, st.obligation)
                p.step, p.types, p.where = i, st.types, st.where
                self._register(p)
                if due is not None:
                    prev = due
            return
        if e.every is not None:
            assert chain is not None
            begin = e.after.due(ctx, self.now)[0] if e.after is not None else self.now
            period = period_of(e.every, begin, self.tz)
            p = self._instance(
                e,
                ctx,
                rule,
                chain,
                e.rolled(ctx, (period.end, False)),
                begin if e.after else None,
                False,
            )
            self._register(p)
            self.seq += 1
            heapq.heappush(self.timers, (2 * period.end, self.seq, Renew(chain, period.end)))
            ev = ctx.event
            if (
                e.after is None
                and isinstance(ev, dict)
                and ev["type"] in p.types
                and (p.sv is None or p.sv == ev.get(self.sf))
                and self._matches(p, ev)
            ):
                # the period's duty arose with this event, which already happened in the
                # period: it counts ("an employee seen first at their own meeting")
                p.state = MET
                self._met(p, ev, e.met, MET)
            return
        due = e.deadline(e.within, ctx, self.now)
        start = e.after.due(ctx, self.now)[0] if e.after is not None else None
        self._register(self._instance(e, ctx, rule, chain, due, start, False))

    def _instance(
        self,
        e: CExpect,
        ctx: Ctx,
        rule: CompiledRule,
        chain: Chain | None,
        due: tuple[int, bool] | None,
        start: int | None,
        start_excl: bool,
        what: str | None = None,
    ) -> Pending:
        trig = ctx.event if ctx.event is not None else ctx.trigger
        assert trig is not None
        p = Pending(e, rule, trig, ctx.subject_id)
        p.chain = chain
        if chain is not None and chain.members_read():
            # a recurring chain's duties are never read again: not kept for every period
            chain.members.append(p)
        if due is None:
            p.due = None
        else:
            p.due, p.inclusive = due
        p.start, p.start_excl = start, start_excl
        p.match = tuple((f, g(ctx)) for f, g in e.match)
        p.party = e.party(ctx) if e.party is not None else None
        p.sv = e.subject(ctx) if e.subject is not None else None
        if e.cancels:
            p.cancel = _cancel_values(e.cancels, ctx)
        what = what if what is not None else e.obligation
        if what is not None:
            about = e.about(ctx) if e.about is not None else ctx.subject_id
            p.obligation = ObligationRecord(
                rule.ref,
                what,
                p.party,
                None if about is None else str(about),
                self.now,
                p.start,
                p.due,
                p.inclusive,
                OPEN,
                None,
                None,
                (trig["id"],),
                not start_excl,
            )
            self.obligations.append(p.obligation)
        if self.hooks is not None:
            self.hooks.duty(
                p, chain, len(self.obligations) - 1 if p.obligation is not None else None
            )
        return p

    def _register(self, p: Pending) -> None:
        """Index the duty under the event types it awaits, its cancellers, and its deadline."""
        for t in p.types:
            self.waiting.setdefault((t, p.sv), []).append(p)
        e = p.spec
        if e.cancels:
            for k in self._cancel_keys(e.cancels, p.cancel):
                self.cancels.setdefault(k, []).append(p)
        if p.due is not None:
            self.seq += 1
            heapq.heappush(self.timers, (2 * p.due + (1 if p.inclusive else 0), self.seq, p))
        self._trace(
            "expectation",
            p.rule,
            (p.trigger["id"],),
            subject=p.subject_id,
            party=text_of(p.party),
            awaits=p.types,  # a tuple: the entry stays out of the cyclic GC's sight
            due=p.due,
        )

    def renew(self, chain: Chain, at: int) -> None:
        """Owe a recurring duty again from ``at``: the next period, or the next cadence window."""
        # no horizon test: renewals come from timers and events, which never pass the horizon,
        # and a renewal dropped here would be missing when ``Policy.resume`` moves the clock on
        if chain.stopped:
            return
        e = chain.spec
        subj = self.subject(chain.subject_id) if chain.subject_id is not None else None
        ctx = Ctx(self, at, chain.ctx_event, chain.ctx_trigger, chain.subject_id, subj)
        ctx.item = chain.ctx_item
        saved, self.now = self.now, at
        if e.every is not None:
            period = period_of(e.every, at, self.tz)
            due = e.rolled(ctx, (period.end, False))
            p = self._instance(e, ctx, chain.rule, chain, due, None, False)
            self._register(p)
            self.seq += 1
            heapq.heappush(self.timers, (2 * period.end, self.seq, Renew(chain, period.end)))
        else:
            p = self._instance(
                e, ctx, chain.rule, chain, e.deadline(e.within, ctx, at), None, False
            )
            self._register(p)
        self.now = saved

    # ------------------------------------------------------------ the clock
    def fire_until(self, limit: int) -> None:
        """Fire every deadline whose key is below ``limit`` (see module doc)."""
        timers = self.timers
        while timers and timers[0][0] < limit:
            key, _, p = heapq.heappop(timers)
            if self.hooks is not None:
                self.hooks.timer(key, p)
            if isinstance(p, Tick):
                self.tick(p)
                self.drain()
                continue
            if isinstance(p, Renew):
                self.renew(p.chain, p.at)
                continue
            if isinstance(p, Close):
                self.close(p.tick, p.tick.end, complete=True)
                continue
            if isinstance(p, Alarm):
                if self.alarms.get(p.seq) is p:  # not cancelled, nor replaced
                    self.ring(p)
                continue
            if p.state != OPEN or p.due is None:
                continue
            p.state = MISSED
            self.now = p.due
            if p.obligation is not None:
                p.obligation.status = MISSED
            if p.spec.repeat or (
                (p.obligation is not None or p.spec.late) and p.spec.every is None
            ):
                # a calendar period's later events belong to its later periods, never "late";
                # an overdue cadence waits for the event that meets it late and restarts it
                for t in p.types:
                    self.overdue.setdefault((t, p.sv), []).append(p)
            if p.spec.missed:
                subj = self.subject(p.subject_id) if p.subject_id is not None else None
                ctx = Ctx(self, p.due, None, p.trigger, p.subject_id, subj)
                ctx.party = p.party
                self.step_owner = {}
                self.run(p.spec.missed, ctx, p.rule, (p.trigger["id"],))
            self.drain()

    def _matches(self, p: Pending, ev: Event) -> bool:
        for f, v in p.match:
            if ev.get(f) != v:
                return False
        if p.start is not None and (ev["at"] <= p.start if p.start_excl else ev["at"] < p.start):
            return False
        if p.where is not None:
            subj = self.subjects.get(p.subject_id) if p.subject_id is not None else None
            ctx = Ctx(self, ev["at"], ev, p.trigger, p.subject_id, subj)
            ctx.party = p.party
            return p.where(ctx)
        return True

    def settle(self, ev: Event) -> None:
        """Meet, meet late, or cancel the expectations this event answers.

        Duties in their window are served before overdue ones (a visit on day 5 meets the
        day-15 step in time rather than the day-3 step late), and an expectation with
        ``consume`` lets one event meet one of its duties only.
        """
        etype = ev["type"]
        sv = ev.get(self.sf)
        keys = ((etype, sv), (etype, None)) if sv is not None else ((etype, None),)
        used: set[int] = set()
        for key in keys:
            lst = self.waiting.get(key)
            if not lst:
                continue
            n = len(lst)
            keep = []
            for p in lst[:n]:
                if p.state != OPEN:
                    continue
                if p.spec.consume and id(p.spec) in used:
                    keep.append(p)
                    continue
                if self._matches(p, ev):
                    if p.spec.consume:
                        used.add(id(p.spec))
                    p.state = MET
                    self._met(p, ev, p.spec.met, MET)
                else:
                    keep.append(p)
            keep += [p for p in lst[n:] if p.state == OPEN]  # created by a branch just now
            if keep:
                self.waiting[key] = keep
            else:
                del self.waiting[key]
        for key in keys:
            lst = self.overdue.get(key)
            if not lst:
                continue
            for p in list(lst):
                if p.state != MISSED or (p.spec.repeat and p.chain is not None and p.chain.stopped):
                    # a cancelled cadence's overdue duty stays overdue: nothing meets it late
                    lst.remove(p)
                    continue
                if p.spec.consume and id(p.spec) in used:
                    continue
                if self._matches(p, ev):
                    if p.spec.consume:
                        used.add(id(p.spec))
                    p.state = LATE
                    lst.remove(p)
                    self._met(p, ev, p.spec.late, LATE)
        for key in keys:
            lst = self.cancels.get(key)
            if not lst:
                continue
            for p in list(lst):
                if p.state != OPEN:
                    # this period's duty is settled, but the series goes on: the cancel
                    # event still ends a recurring chain (a salesperson who leaves after
                    # handing in this month's plan owes none next month)
                    chain = p.chain
                    if chain is not None and not chain.stopped and self._cancels(p, ev):
                        chain.stopped = True
                    lst.remove(p)
                elif self._cancels(p, ev):
                    p.state = CANCELLED
                    lst.remove(p)
                    if p.chain is not None:
                        p.chain.stopped = True
                    o = p.obligation
                    if o is not None:  # reported as cancelled, with the event that did it
                        o.status, o.met_by, o.met_at = CANCELLED, ev["id"], ev["at"]
                    self._trace(
                        "obligation",
                        p.rule,
                        (p.trigger["id"], ev["id"]),
                        subject=p.subject_id,
                        party=text_of(p.party),
                        status="cancelled",
                        what=o.what if o is not None else None,
                        by=ev["id"],
                    )
        if self.alarm_cancels:
            for key in keys:
                for seq in list(self.alarm_cancels.get(key, ())):
                    alarm = self.alarms.get(seq)
                    if alarm is not None and self._cancelled_by(
                        alarm.spec.cancels, alarm.cancel, alarm.trigger, alarm.subject_id, ev
                    ):
                        self._drop_alarm(alarm)
                        self._trace(
                            "timer",
                            alarm.rule,
                            (alarm.trigger["id"], ev["id"]),
                            subject=alarm.subject_id,
                            status="cancelled",
                            at=alarm.at,
                            by=ev["id"],
                        )

    def _cancels(self, p: Pending, ev: Event) -> bool:
        return self._cancelled_by(p.spec.cancels, p.cancel, p.trigger, p.subject_id, ev, p.party)

    def _cancelled_by(
        self,
        cancels: tuple[CCancel, ...],
        values: tuple[tuple[tuple[str, Any], ...], ...],
        trigger: Any,
        subject_id: str | None,
        ev: Event,
        party: Any = None,
    ) -> bool:
        """Whether one of the ``cancel_on`` entries takes ``ev``: its type, its fields (a
        subject value matched on none, null, takes any subject), its ``where``."""
        sf, et = self.sf, ev["type"]
        for c, vals in zip(cancels, values, strict=True):
            if et not in c.types:
                continue
            if not all(
                (v is None or ev.get(f) == v) if f == sf else ev.get(f) == v for f, v in vals
            ):
                continue
            if c.where is None:
                return True
            subj = self.subjects.get(subject_id) if subject_id is not None else None
            ctx = Ctx(self, ev["at"], ev, trigger, subject_id, subj)
            ctx.party = party
            if c.where(ctx):
                return True
        return False

    def _cancel_keys(
        self, cancels: tuple[CCancel, ...], values: tuple[tuple[tuple[str, Any], ...], ...]
    ) -> list[tuple[str, Any]]:
        """The (event type, subject value) index keys of the ``cancel_on`` entries."""
        sf = self.sf
        if len(cancels) == 1 and len(cancels[0].types) == 1:  # the common case, per duty
            sv = None
            for f, v in values[0]:
                if f == sf:
                    sv = v
                    break
            return [(cancels[0].types[0], sv)]
        keys = (
            (t, next((v for f, v in vals if f == sf), None))
            for c, vals in zip(cancels, values, strict=True)
            for t in c.types
        )
        return list(dict.fromkeys(keys))

    # ------------------------------------------------------------ timers
    def set_timer(self, t: CTimer, ctx: Ctx, rule: CompiledRule) -> None:
        """Set a ``timer:``: its actions run at its instant unless cancelled or replaced."""
        trig = ctx.event if ctx.event is not None else ctx.trigger
        assert trig is not None
        at, inclusive = t.when.due(ctx, self.now)
        self.seq += 1
        alarm = Alarm(t, rule, trig, ctx.subject_id, at, inclusive, self.seq)
        if t.cancels:
            alarm.cancel = _cancel_values(t.cancels, ctx)
            for k in self._cancel_keys(t.cancels, alarm.cancel):
                self.alarm_cancels.setdefault(k, []).append(alarm.seq)
        replaced = None
        if t.key is not None:
            alarm.key = (t.scope, _hashable(t.key(ctx)))
            old = self.alarms.get(self.alarm_keys.get(alarm.key, -1))
            if old is not None:
                replaced = old.at
                self._drop_alarm(old)
            self.alarm_keys[alarm.key] = alarm.seq
        self.alarms[alarm.seq] = alarm
        # keyed as a deadline: an inclusive instant after the events at it, else before them
        heapq.heappush(self.timers, (2 * at + (1 if inclusive else 0), alarm.seq, alarm))
        self._trace(
            "timer",
            rule,
            (trig["id"],),
            subject=ctx.subject_id,
            status="set",
            at=at,
            replaced=replaced,
        )

    def _drop_alarm(self, alarm: Alarm) -> None:
        """A timer is no longer pending (fired, cancelled or replaced): out of the indexes."""
        del self.alarms[alarm.seq]
        if alarm.key is not None and self.alarm_keys.get(alarm.key) == alarm.seq:
            del self.alarm_keys[alarm.key]
        for k in self._cancel_keys(alarm.spec.cancels, alarm.cancel):
            seqs = self.alarm_cancels.get(k)
            if seqs is not None and alarm.seq in seqs:
                seqs.remove(alarm.seq)
                if not seqs:
                    del self.alarm_cancels[k]

    def ring(self, alarm: Alarm) -> None:
        """A timer's instant came: its actions run, ``$trigger`` the event that set it."""
        self._drop_alarm(alarm)
        self.now = alarm.at
        self.step_owner = {}
        sid = alarm.subject_id
        ctx = Ctx(self, alarm.at, None, alarm.trigger, sid, self.subject(sid) if sid else None)
        causes = (alarm.trigger["id"],)
        self._trace("timer", alarm.rule, causes, subject=sid, status="fired", at=alarm.at)
        self.run(alarm.spec.then, ctx, alarm.rule, causes)
        self.drain()

    def _met(self, p: Pending, ev: Event, branch: tuple[CAction, ...], status: int) -> None:
        if p.obligation is not None:
            p.obligation.status = status
            p.obligation.met_by = ev["id"]
            p.obligation.met_at = ev["at"]
        chain = p.chain
        if (
            chain is not None
            and p.spec.out_of_order
            and any(q.state not in (MET, LATE) for q in chain.members[: p.step])
        ):
            self._branch(p, ev, p.spec.out_of_order)
        if branch:
            self._branch(p, ev, branch)
        if chain is not None and p.spec.repeat:  # met in time or late
            self.renew(chain, ev["at"])  # the cadence restarts at the meeting event

    def _branch(self, p: Pending, ev: Event, branch: tuple[CAction, ...]) -> None:
        subj = self.subject(p.subject_id) if p.subject_id is not None else None
        ctx = Ctx(self, ev["at"], ev, p.trigger, p.subject_id, subj)
        ctx.party = p.party
        self.run(branch, ctx, p.rule, (p.trigger["id"], ev["id"]))

    def schedule_ticks(self, first: int, horizon: int) -> None:
        """Queue the first period start of every `every:` unit; each tick queues the next.

        Metric periods close at their end, with the state as it stands then.
        """
        self.horizon = horizon
        if self.hooks is not None:
            first = self.hooks.first_period(first)
        for unit in self.policy.periodic:
            self._push_tick(period_of(unit, first, self.tz))
        for unit in sorted({mt.every for mt in self.policy.metrics}):
            tick = period_of(unit, first, self.tz)
            self.seq += 1
            heapq.heappush(self.timers, (2 * tick.end, self.seq, Close(tick)))

    def close(self, tick: Tick, at: int, complete: bool, schedule: bool = True) -> None:
        """Measure every metric of the period's unit for each party it names; a complete
        period schedules the next (``schedule=False``: a caller that keeps the metric clock
        itself, the native core's, has no use for it)."""
        if self.hooks is not None:
            self.hooks.closing(tick, at, complete)
        self.now = at
        ev: Event = {
            "id": f"{tick.unit}:{tick.label}",
            "type": "@" + tick.unit,
            "at": at,
            "period": tick.label,
            "start": tick.start,
            "end": tick.end,
        }
        self.period_values = {}
        for mt in self.policy.metrics:
            if mt.every != tick.unit:
                continue
            ctx = Ctx(self, at, ev, None, None, None)
            target = decimal_of(mt.target(ctx)) if mt.target is not None else None
            bands = [(g, decimal_of(low(ctx)) if low is not None else None) for g, low in mt.grades]
            for party in dict.fromkeys(p for p in mt.parties(ctx) or [] if p is not None):
                ctx.party = party
                num = decimal_of(mt.numerator(ctx))
                den = decimal_of(mt.denominator(ctx)) if mt.denominator is not None else None
                if num is None or (den is not None and den == 0):
                    continue
                value = num / den if den is not None else num
                met = None if target is None or mt.op is None else _compare(mt.op, value, target)
                grade = next((g for g, low in bands if low is None or value >= low), None)
                self.period_values[(mt.id, str(party))] = value
                self.metric_rows.append(
                    MetricRow(
                        mt.ref,
                        str(party),
                        tick.label,
                        value,
                        target,
                        cast("Comparison | None", mt.op),
                        met,
                        num,
                        den,
                        complete,
                        grade,
                    )
                )
        for aw in self.policy.awards:
            if aw.every == tick.unit:
                self.rank(aw, tick.label, complete)
        if complete and schedule:
            nxt = period_of(tick.unit, tick.end, self.tz)
            self.seq += 1
            heapq.heappush(self.timers, (2 * nxt.end, self.seq, Close(nxt)))

    def rank(self, aw: CAward, period: str, complete: bool) -> None:
        """Parties measured by the award's metric this period, best first; ties by the
        tie-break metrics (a party without one ranks after those with it), then by id."""
        head = aw.keys[0][0]
        parties = sorted({p for (mid, p) in self.period_values if mid == head})

        def key(party: str) -> tuple[Any, ...]:
            out: list[Any] = []
            for mid, highest in aw.keys:
                v = self.period_values.get((mid, party))
                out += [v is None, (-v if highest else v) if v is not None else 0]
            return (*out, party)

        for place, party in enumerate(sorted(parties, key=key)[: aw.winners], start=1):
            values = [self.period_values.get((mid, party)) for mid, _ in aw.keys]
            self.award_rows.append(
                AwardRow(aw.ref, aw.title, party, period, place, values, complete)
            )

    def classify(self, ev: Event, ctx: Ctx) -> None:
        """Labels with ``on:``: the first case that holds classifies what the event names."""
        for lab in self.classifying[ev["type"]]:
            key = lab.subject(ctx) if lab.subject is not None else ctx.subject_id
            if key is None:
                continue
            hit = next(((v, why) for v, when, why in lab.cases if when(ctx)), None)
            value, reason = hit if hit is not None else (None, None)
            self.event_labels.setdefault(str(key), {})[lab.name] = value
            self.classifications.append(
                ClassificationRow(
                    lab.ref, str(key), value, reason, ev["id"], ev["at"], ctx.subject_id
                )
            )

    def finish(self, horizon: int) -> None:
        """At the horizon: measure the unfinished metric periods, and label every subject."""
        # what a snapshot leaves out: these measures hold at this horizon only
        self.before_finish = {
            name: len(getattr(self, name)) if declared.role == "record" else getattr(self, name)
            for name, declared in STATE.items()
            if declared.at_finish
        }
        for unit in sorted({mt.every for mt in self.policy.metrics}):
            tick = period_of(unit, horizon, self.tz)
            if tick.start < horizon:
                self.close(tick, horizon, complete=False)
        labels = [lab for lab in self.policy.labels if not lab.on]
        if labels:
            for sid, s in self.subjects.items():
                ctx = Ctx(self, horizon, None, None, sid, s)
                out: dict[str, Any] = {}
                for lab in labels:
                    out[lab.name] = next((v for v, when, _ in lab.cases if when(ctx)), None)
                self.labels[sid] = out
        for key, found in self.event_labels.items():
            self.labels.setdefault(key, {}).update(found)
        for sid, s in self.subjects.items():
            ctx = Ctx(self, horizon, None, None, sid, s)
            for name, holds in self.policy.invariants:
                if not holds(ctx):
                    self.broken.setdefault(name, []).append(sid)

    def drain(self) -> None:
        """Apply the derived ``owner_changed`` events that the last step produced, in order."""
        guard = 0
        while self.derived:
            batch, self.derived = self.derived, []
            for ev in batch:
                guard += 1
                if guard > 10_000:
                    raise EvaluationError(
                        [
                            Problem(
                                Code.OWNER_CHANGES_UNSETTLED,
                                "owner_changed rules keep changing owners (more than 10000 "
                                "changes in one step)",
                                hint="a rule on owner_changed must not undo another's change",
                            )
                        ]
                    )
                self.apply(ev, derived=True)

    def _push_tick(self, tick: Tick) -> None:
        # queued even past the horizon, where it never fires: ``Policy.resume`` moves the clock
        # on from a snapshot, and a tick dropped here would stop the periods (and shift ``seq``,
        # the heap's tie-break, against a whole-history evaluation)
        self.seq += 1
        heapq.heappush(self.timers, (2 * tick.start, self.seq, tick))

    def tick(self, tick: Tick) -> None:
        self.now = tick.start
        self.step_owner = {}
        ev: Event = {
            "id": f"{tick.unit}:{tick.label}",
            "type": "@" + tick.unit,
            "at": tick.start,
            "period": tick.label,
            "start": tick.start,
            "end": tick.end,
        }
        ctx = Ctx(self, tick.start, ev, None, None, None)
        causes = (ev["id"],)
        for r in self.resolve(self.policy.periodic.get(tick.unit, ()), ctx):
            self.fired[r.id] = self.fired.get(r.id, 0) + 1
            self.run(r.actions, ctx, r, causes)
        self._push_tick(period_of(tick.unit, tick.end, self.tz))

    def resolve(self, rules: tuple[CompiledRule, ...], ctx: Ctx) -> list[CompiledRule]:
        """Match on the current state, then drop rules a matched rule overrides."""
        hooks = self.hooks
        if hooks is None:
            matched = [r for r in rules if r.when is None or r.when(ctx)]
        else:
            matched = hooks.match(rules, ctx)
        if len(matched) > 1 and id(rules) not in self.plain and any(r.overrides for r in matched):
            suppressed: set[str] = set()
            for r in sorted(matched, key=lambda r: -r.rank):
                if r.id not in suppressed:
                    suppressed |= r.overrides
            matched = [r for r in matched if r.id not in suppressed]
        if hooks is not None:
            hooks.resolved(matched, ctx)
        return matched

    # ------------------------------------------------------------ one event
    def apply(self, ev: Event, derived: bool = False) -> None:
        if not derived and self.hooks is not None:
            self.hooks.event(ev)
        self.now = ev["at"]
        self.step_owner = {}
        self.rejected = False
        sid = ev.get(self.sf)
        subj = self.subject(sid) if isinstance(sid, str) else None
        ctx = Ctx(self, self.now, ev, None, sid if isinstance(sid, str) else None, subj)
        et = ev["type"]
        rules = self.policy.by_trigger.get(et, ())
        matched = self.resolve(rules, ctx)
        causes = (ev["id"],)
        fired = self.fired
        for r in matched:
            fired[r.id] = fired.get(r.id, 0) + 1
        plain = id(rules) in self.plain
        if not plain:
            for r in matched:
                if r.rejects:
                    self.run(r.actions, ctx, r, causes)
            if self.rejected:
                return
        if et in self.classifying:
            self.classify(ev, ctx)
        if et in self.policy.awaited:
            self.settle(ev)
        for r in matched:
            if plain or not r.rejects:
                self.run(r.actions, ctx, r, causes)
        if derived:
            return  # derived events are consequences, not history
        if self.derived:
            self.drain()
        if isinstance(sid, str):
            key = (sid, et)
            found = self.hist_subj.get(key)
            if found is None:
                self.hist_subj[key] = [ev]
            else:
                found.append(ev)
        found = self.hist_type.get(et)
        if found is None:
            self.hist_type[et] = [ev]
        else:
            found.append(ev)

    # ------------------------------------------------------------ incremental evaluation
    def advance(self, events: list[Event], horizon: int | None) -> None:
        """Apply ``events`` (time-ordered, none before the clock), then fire the deadlines up to
        the horizon: the loop of ``evaluate``, which ``Policy.resume`` runs on a World rebuilt
        from a snapshot, so both take exactly the same steps."""
        if self.first_at is None and events:
            self.first_at = events[0]["at"]
        if self.max_span is not None and self.first_at is not None:
            check_span(self.first_at, self.max_span, self.tz, events, horizon)
        for ev in events:
            try:
                self.fire_until(2 * ev["at"] + 1)
                self.apply(ev)
            except EvaluationError as exc:  # say which event the undecidable step was on
                raise EvaluationError(
                    [
                        p if p.event_id is not None else dataclasses.replace(p, event_id=ev["id"])
                        for p in exc.problems
                    ]
                ) from exc
        if horizon is not None:
            self.fire_until(2 * horizon + 1)


def _compare(op: str, a: Decimal, b: Decimal) -> bool:
    return {"ge": a >= b, "gt": a > b, "le": a <= b, "lt": a < b}[op]


def _cancel_values(
    cancels: tuple[CCancel, ...], ctx: Ctx
) -> tuple[tuple[tuple[str, Any], ...], ...]:
    """Per ``cancel_on`` entry, its fields' values, fixed when the duty or timer is set."""
    return tuple(tuple((f, g(ctx)) for f, g in c.match) for c in cancels)


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


# ---------------------------------------------------------------- entry point
