"""The static plan of the parallel backend: ``plan(policy)`` reads the validated rules once
and says how events of different subjects can interact: links (an event field naming another
subject), co-location tokens (a duty, key or history that events of several subjects share),
the types replicated to every shard, and what phase 2 does; or, when the policy is not
separable, why (``Plan.reasons``). The design: ``docs/parallel.md``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from policyengine.language import model as m
from policyengine.language.compiler import OWNER_CHANGED
from policyengine.language.program import HasProgram, Program, program_of
from policyengine.language.visitor import Visitor, node_types

# ================================================================ the plan (static analysis)

_TOKEN_TYPES = frozenset({"str", "int", "bool", "date", "list[str]", "list[int]"})


@dataclass(frozen=True)
class TokenSide:
    """Events of ``types`` join the token ``(name, value of each field)``.

    ``fields`` are ``(field, how)``: ``raw`` is the value as sent, ``date`` the local date of an
    instant; no fields means one token for every event of the types."""

    types: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]
    # (field, "exists" | "eq", literal): the rule's own `when` says events failing these never
    # create the duty, so they need not join (a purchase without a manager opens no list duty)
    guards: tuple[tuple[str, str, Any], ...] = ()


@dataclass(frozen=True)
class Colocation:
    """Events that can meet, read or share one thing (a duty, a history, a key) land in one
    shard: every side's events join the same token."""

    name: str
    why: str
    sides: tuple[TokenSide, ...]


@dataclass(frozen=True)
class Plan:
    """How a policy can be evaluated in shards, read off its validated rules.

    ``separable`` False: only one shard is exact, ``reasons`` says why (rule and construct).
    ``links``: event type -> fields whose values name another subject.
    ``colocations``: tokens that join subjects that share a duty, a key or a history.
    ``replicated``: input types whose events name no subject: sent to every shard.
    ``notes``: what phase 2 does for this policy (offences, counters, metrics).
    """

    policy: str
    subject_field: str
    separable: bool
    reasons: tuple[str, ...]
    links: dict[str, tuple[str, ...]]
    colocations: tuple[Colocation, ...]
    replicated: tuple[str, ...]
    notes: tuple[str, ...]
    metrics: bool = False  # metrics/awards are measured in phase 2

    def explain(self) -> str:
        """A readable account, for logs and the command line."""
        lines = [
            f"policy {self.policy}: "
            + ("separable by subject" if self.separable else "not separable: one shard")
        ]
        lines += [f"  - {r}" for r in self.reasons]
        for t, fields in sorted(self.links.items()):
            lines.append(f"  link: {t}.{', '.join(fields)} names another {self.subject_field}")
        for c in self.colocations:
            lines.append(f"  co-located: {c.why}")
        if self.replicated:
            lines.append("  replicated to every shard: " + ", ".join(self.replicated))
        lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)


_Bound = Literal["yes", "no", "maybe"]


@dataclass(frozen=True)
class _Cx:
    """Where an expression is evaluated: what ``$event``/``$trigger`` can be, and whether a
    subject of this shard is bound (``no``: a step without a subject, run in every shard)."""

    where: str
    event: tuple[str, ...] | None
    trigger: tuple[str, ...] | None
    bound: _Bound
    party: bool = False
    item: tuple[str, str] | None = None  # $item iterates ($event|$trigger).field
    metric: bool = False
    guards: tuple[tuple[str, str, Any], ...] = ()  # what holds of $event here (see TokenSide)

    def but(self, **changes: Any) -> _Cx:
        values = dict(self.__dict__)
        values.update(changes)
        return _Cx(**values)


@dataclass
class _KeyMember:
    cx: _Cx
    anchored: int | None  # index of an own-subject element (-1: the key is the subject)
    side: TokenSide | None  # the creating events' token side, when the key can be read
    creators: tuple[str, ...]


class _Analyzer(Visitor[None]):
    """Walks every rule, label, invariant and metric as the compiler scopes them: one visit
    method per value, condition and action model, each given the context (``_Cx``)."""

    # the current subject's claims, a clock reading, a metric of the same period: read
    # nothing a shard might lack; `clear` and `reject` read nothing at all
    ignores = node_types(m.Claims, m.Ago, m.MetricOf, m.ClearAction, m.RejectAction)

    def __init__(self, policy: Program) -> None:
        if policy.pset is None:
            raise ValueError("the policy has no validated rules (load it with load_policy)")
        self.pset = policy.pset
        self.sf = self.pset.meta.subject
        self.reasons: list[str] = []
        self.links: dict[str, set[str]] = {}
        self.colocations: list[Colocation] = []
        self.keys: dict[str, list[_KeyMember]] = {}
        self.party_adds = False
        self.penalties = False
        self.replicated_rules: list[str] = []
        self.n = 0
        self.metric_reads = _MetricReads(self)

    def ignore(self, node: BaseModel, cx: _Cx) -> None:
        return None

    # -- facts about event types
    def _field(self, t: str, name: str) -> m.FieldSpec | None:
        et = self.pset.events.get(t)
        return et.fields.get(name) if et is not None else None

    def carries(self, t: str) -> bool:
        """Events of ``t`` can name a subject (the engine reads text in the subject field)."""
        if t == OWNER_CHANGED:
            return True
        spec = self._field(t, self.sf)
        return spec is not None and spec.type == "str"

    def always(self, t: str) -> bool:
        if t == OWNER_CHANGED:
            return True
        spec = self._field(t, self.sf)
        return (
            spec is not None
            and spec.type == "str"
            and (not spec.optional or spec.default is not None)
        )

    def bound_of(self, types: Sequence[str]) -> _Bound:
        if all(self.always(t) for t in types):
            return "yes"
        if not any(self.carries(t) for t in types):
            return "no"
        return "maybe"

    def token_field(self, types: Sequence[str], name: str) -> bool:
        """A field whose raw value compares as the engine compares it (no normalisation)."""
        if name in ("type",):
            return True
        for t in types:
            spec = self._field(t, name)
            if spec is None or spec.type not in _TOKEN_TYPES:
                return False
        return True

    def fail(self, cx: _Cx, what: str) -> None:
        self.reasons.append(f"{cx.where}: {what}")

    def name(self, cx: _Cx, what: str) -> str:
        self.n += 1
        return f"{cx.where}#{what}{self.n}"

    # -- values
    def value(self, op: Any, cx: _Cx) -> None:
        """Any value: it must read only what this shard holds exactly."""
        if isinstance(op, list):
            for x in op:
                self.value(x, cx)
            return
        if isinstance(op, str) or op is None or isinstance(op, bool | int | float):
            return
        self.visit(op, cx)

    def visit_OwnerOf(self, op: m.OwnerOf, cx: _Cx) -> None:
        self.subject(op.owner_of, cx, "owner_of")

    def visit_FlagOf(self, op: m.FlagOf, cx: _Cx) -> None:
        self.subject(op.flag_of[0], cx, "flag_of")

    def visit_Subjects(self, op: m.Subjects, cx: _Cx) -> None:
        self.fail(cx, "reads the set of subjects ({subjects: ...}) as a value")

    def visit_Owners(self, op: m.Owners, cx: _Cx) -> None:
        self.fail(cx, "reads every owner ({owners: ...})")

    def visit_Values(self, op: m.Values, cx: _Cx) -> None:
        self.history(op.values, cx)

    def visit_Count(self, op: m.Count, cx: _Cx) -> None:
        self.history(op.count, cx)

    def visit_Added(self, op: m.Added | m.CounterValue, cx: _Cx) -> None:
        if cx.party and not cx.metric:
            self.fail(cx, "reads a party's counter, summed over every subject")

    visit_CounterValue = visit_Added

    def visit_PartiesWith(self, op: m.PartiesWith, cx: _Cx) -> None:
        if not cx.metric:
            self.fail(cx, "reads which parties have a counter ({parties_with: ...})")

    def visit_Coalesce(self, op: m.Coalesce, cx: _Cx) -> None:
        self.value(op.coalesce, cx)

    def visit_Plus(self, op: m.Plus, cx: _Cx) -> None:
        self.value(op.plus[0], cx)

    def _reads_its_field(self, node: BaseModel, cx: _Cx) -> None:
        """A node whose one field is a value or a list of values (``{sum: ...}``, ``{eq:
        [a, b]}``): what it reads is what that value reads."""
        self.value(next(iter(node.__dict__.values())), cx)

    visit_Date = visit_TimeOfDay = visit_Len = visit_First = _reads_its_field
    visit_Sum = visit_MinOf = visit_MaxOf = visit_Avg = _reads_its_field
    visit_Add = visit_Sub = visit_Mul = visit_Div = visit_Get = _reads_its_field
    visit_Round = _reads_its_field

    def metric_value(self, op: Any, cx: _Cx) -> None:
        """Phase 2 measures metrics from the merged counters: nothing else is there."""
        if isinstance(op, list):
            for x in op:
                self.metric_value(x, cx)
        elif isinstance(op, BaseModel):
            self.metric_reads.visit(op, cx)
        elif isinstance(op, str) and op.startswith("$subject"):
            return  # no subject in a metric: null there, as in one process
        else:
            self.value(op, cx)

    def own(self, op: Any, cx: _Cx) -> bool:
        """The expression is surely the subject of an event of this shard (never null)."""
        if op in ("$subject", "$subject.id"):
            return cx.bound == "yes"
        for root, types in (("event", cx.event), ("trigger", cx.trigger)):
            if op == f"${root}.{self.sf}" and types:
                return all(self.always(t) and not t.startswith("@") for t in types)
        return False

    def subject(self, op: Any, cx: _Cx, what: str) -> None:
        """An expression read as a subject id: own, a link (joins the two), or not separable."""
        if op is None or self.own(op, cx):
            return
        if op in ("$subject", "$subject.id") or op in (
            f"$event.{self.sf}",
            f"$trigger.{self.sf}",
        ):
            return  # null where no subject is bound: the same in every shard
        if isinstance(op, m.Coalesce):
            for x in op.coalesce:
                self.subject(x, cx, what)
            return
        if isinstance(op, str) and m.is_reference(op):
            parts = op[1:].split(".")
            if parts[0] in ("event", "trigger") and len(parts) == 2:
                types = cx.event if parts[0] == "event" else cx.trigger
                self.link(types or (), parts[1], cx, what)
                return
            if parts[0] == "item" and len(parts) == 1 and cx.item is not None:
                root, fname = cx.item
                types = cx.event if root == "event" else cx.trigger
                self.link(types or (), fname, cx, what)
                return
        self.fail(cx, f"{what} names a subject through {_show(op)}")

    def link(self, types: Sequence[str], fname: str, cx: _Cx, what: str) -> None:
        if not types:
            self.fail(cx, f"{what} reads a field where no event is bound")
            return
        for t in types:
            if t.startswith("@") or t == OWNER_CHANGED or t not in self.pset.events:
                self.fail(cx, f"{what} reads {t}.{fname} as a subject (not an input event)")
                return
            self.links.setdefault(t, set()).add(fname)

    # -- conditions and history
    def condition(self, cond: Any, cx: _Cx) -> None:
        if cond is None or isinstance(cond, bool):
            return
        self.visit(cond, cx)

    def visit_All(self, cond: m.All, cx: _Cx) -> None:
        for c in cond.all:
            self.condition(c, cx)

    def visit_AnyOf(self, cond: m.AnyOf, cx: _Cx) -> None:
        for c in cond.any:
            self.condition(c, cx)

    def visit_Not(self, cond: m.Not, cx: _Cx) -> None:
        self.condition(cond.not_, cx)

    def visit_ConditionRef(self, cond: m.ConditionRef, cx: _Cx) -> None:
        """What the named condition reads, where it is used (a cycle is refused at load)."""
        entry = self.pset.conditions.get(cond.condition)
        if entry is not None:
            self.condition(entry[0].when, cx)

    def visit_History(self, cond: m.History, cx: _Cx) -> None:
        self.history(cond.history, cx)

    visit_In = visit_Exists = _reads_its_field
    visit_Eq = visit_Ne = visit_Lt = visit_Le = visit_Gt = visit_Ge = _reads_its_field

    def history(self, q: m.HistoryQuery, cx: _Cx) -> None:
        types = (q.type,) if isinstance(q.type, str) else tuple(q.type)
        self.value(q.since, cx)
        for fname, v in q.match.items():
            if fname == self.sf:
                self.subject(v, cx, "a history query")
            else:
                self.value(v, cx)
        if self.sf in q.match:
            return  # the subject's own (or a linked subject's) history
        reach = tuple(t for t in types if self.carries(t))
        if not reach:
            return  # events without a subject: every shard has all of them
        if cx.metric:
            self.fail(cx, "a metric reads the history")
            return
        if cx.bound != "yes":
            self.fail(cx, f"a step without a subject reads {', '.join(reach)} of every subject")
            return
        self.colocate(cx, q.match, reach, "a history query not bound to the subject")

    def colocate(
        self, cx: _Cx, match: Mapping[str, Any], targets: tuple[str, ...], why: str
    ) -> None:
        """Events that create (or run) a lookup by ``match`` join the events it can find."""
        if any(t == OWNER_CHANGED or t.startswith("@") for t in targets):
            self.fail(cx, f"{why} reaches derived {OWNER_CHANGED} events of other subjects")
            return
        creators, pairs = self.readable(cx, match, targets)
        if not creators:
            self.fail(cx, f"{why}: no event to co-locate it with")
            return
        fields = tuple((src, "raw") for src, _ in pairs)
        name = self.name(cx, "match")
        self.colocations.append(
            Colocation(
                name,
                f"{cx.where}: {why}"
                + (f" (by {', '.join(f for _, f in pairs)})" if pairs else " (all together)"),
                (
                    self.side(cx, creators, fields),
                    TokenSide(targets, tuple((f, "raw") for _, f in pairs)),
                ),
            )
        )

    def side(
        self, cx: _Cx, creators: tuple[str, ...], fields: tuple[tuple[str, str], ...]
    ) -> TokenSide:
        """The creating events' side; the context's guards apply when they are ``$event``."""
        guards = cx.guards if creators == cx.event else ()
        return TokenSide(creators, fields, guards)

    def readable(
        self, cx: _Cx, match: Mapping[str, Any], targets: tuple[str, ...]
    ) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
        """The creating step's event types, and (its field, target field) pairs whose raw
        values decide the match: reading them off raw events needs no evaluation."""
        roots = (("event", cx.event), ("trigger", cx.trigger))
        for root, types in roots:
            if not types or any(t.startswith("@") or t == OWNER_CHANGED for t in types):
                continue
            pairs = []
            for fname, v in match.items():
                if fname == self.sf or not isinstance(v, str):
                    continue
                if v.startswith(f"${root}.") and v.count(".") == 1:
                    src = v.split(".")[1]
                    if self.token_field(types, src) and self.token_field(targets, fname):
                        pairs.append((src, fname))
            return types, pairs
        return (), []

    # -- actions
    def actions(self, acts: Sequence[Any], cx: _Cx) -> None:
        for i, a in enumerate(acts):
            self.action(a, cx.but(where=f"{cx.where}.{i}"))

    def action(self, a: Any, cx: _Cx) -> None:
        if a.for_each_subject is not None:
            src = a.for_each_subject
            if isinstance(src, m.Subjects):
                if cx.bound != "no":
                    self.fail(cx, "for_each_subject over {subjects: ...} on a subject's event")
                self.value(src.owner, cx)
                if src.where is not None:
                    self.condition(src.where, cx.but(bound="yes"))
            elif isinstance(src, list):
                for x in src:
                    self.subject(x, cx, "for_each_subject")
            elif isinstance(src, str) and src.startswith(("$event.", "$trigger.")):
                self.subject(src, cx, "for_each_subject")
            else:
                self.subject(src, cx, "for_each_subject")
            cx = cx.but(bound="yes")
        if a.for_each is not None:
            self.value(a.for_each, cx)
            src = a.for_each
            item = None
            if (
                isinstance(src, str)
                and src.count(".") == 1
                and src[1:].split(".")[0]
                in (
                    "event",
                    "trigger",
                )
            ):
                root, fname = src[1:].split(".")
                item = (root, fname)
            cx = cx.but(item=item)
        self.condition(a.when, cx)
        if a.when is not None:
            cx = cx.but(guards=cx.guards + _guards(a.when))
        self.visit(a, cx)

    def visit_ClaimAction(self, a: m.ClaimAction, cx: _Cx) -> None:
        self.value(a.claim, cx)

    def visit_LapseClaimAction(self, a: m.LapseClaimAction, cx: _Cx) -> None:
        self.value(a.lapse_claim, cx)

    def visit_DropClaimsAction(self, a: m.DropClaimsAction, cx: _Cx) -> None:
        if cx.bound != "no":
            self.fail(cx, "drop_claims on a subject's event changes other subjects")
        self.value(a.drop_claims, cx)

    def visit_TransferAction(self, a: m.TransferAction, cx: _Cx) -> None:
        if cx.bound != "no":
            self.fail(cx, "transfer on a subject's event changes other subjects")
        self.value([a.transfer.from_, a.transfer.to], cx)

    def visit_AssignAction(self, a: m.AssignAction, cx: _Cx) -> None:
        if isinstance(a.assign, m.AssignSpec):
            self.value(a.assign.owner, cx)
            if a.assign.subject is not None:
                self.subject(a.assign.subject, cx, "assign")
        else:
            self.value(a.assign, cx)

    def visit_ReleaseAction(self, a: m.ReleaseAction, cx: _Cx) -> None:
        if a.release is not None:
            self.subject(a.release, cx, "release")

    def visit_PenaltyAction(self, a: m.PenaltyAction, cx: _Cx) -> None:
        self.penalties = True
        p = a.penalty
        self.value([p.party, p.amount, p.per_unit, p.units, p.salary_days], cx)
        for step in p.ladder_steps or ():
            self.value([step.amount, step.salary_days], cx)

    def visit_CreditAction(self, a: m.CreditAction, cx: _Cx) -> None:
        self.value([a.credit.party, a.credit.amount], cx)

    def visit_ExpectAction(self, a: m.ExpectAction, cx: _Cx) -> None:
        self.expect(a.expect, cx)

    def visit_TimerAction(self, a: m.TimerAction, cx: _Cx) -> None:
        # a timer is a step of the clock of its own, which the shards do not place yet
        self.fail(cx, "a timer (`timer:`) is not evaluated in shards")

    def visit_SetAction(self, a: m.SetAction, cx: _Cx) -> None:
        self.value(a.set.value, cx)
        if a.set.subject is not None:
            self.subject(a.set.subject, cx, "set")

    def visit_AddAction(self, a: m.AddAction, cx: _Cx) -> None:
        self.value([a.add.by, a.add.party], cx)
        if a.add.party is not None:
            self.party_adds = True

    def visit_ViolationAction(self, a: m.ViolationAction, cx: _Cx) -> None:
        if not isinstance(a.violation, str):
            self.value(a.violation.party, cx)

    def expect(self, e: m.Expect, cx: _Cx) -> None:
        types = (e.event,) if isinstance(e.event, str) else tuple(e.event)
        for st in e.steps or ():
            if st.event is not None:
                types += (st.event,) if isinstance(st.event, str) else tuple(st.event)
        entries = m.cancel_entries(e.cancel_on)
        cancel: tuple[str, ...] = ()
        for entry in entries:
            ce = entry.event
            cancel += (ce,) if isinstance(ce, str) else tuple(ce)
        for fname, v in e.match.items():
            if fname == self.sf:
                self.subject(v, cx, "a duty's subject")
            else:
                self.value(v, cx)
        self.value([e.party, e.about, e.key, e.within, e.after], cx)
        self.value([x for st in e.steps or () for x in (st.within, st.after)], cx)
        creator = cx.event if cx.event is not None else cx.trigger
        candidate = _Cx(cx.where + ".expect", types, creator, cx.bound, party=True)
        self.condition(e.where, candidate)
        for st in e.steps or ():
            stypes = (
                types
                if st.event is None
                else ((st.event,) if isinstance(st.event, str) else tuple(st.event))
            )
            self.condition(st.where, candidate.but(event=stypes))
        for entry in entries:
            etypes = (entry.event,) if isinstance(entry.event, str) else tuple(entry.event)
            for fname, v in entry.match.items():
                if fname == self.sf:
                    self.subject(v, cx, "a duty's cancel event")
                else:
                    self.value(v, cx)
            self.condition(entry.where, candidate.but(event=etypes))
        self.actions(e.met, candidate.but(where=cx.where + ".met"))
        self.actions(e.late, candidate.but(where=cx.where + ".late"))
        self.actions(e.out_of_order, candidate.but(where=cx.where + ".out_of_order"))
        self.actions(e.missed, _Cx(cx.where + ".missed", None, creator, cx.bound, party=True))
        # who can meet or cancel it
        reach = tuple(t for t in dict.fromkeys(types + cancel) if self.carries(t))
        if cx.bound != "yes" and reach:
            self.fail(
                cx,
                "a duty owed in a step without a subject can be met or cancelled by events "
                f"of subjects ({', '.join(reach)})",
            )
        if cx.bound != "no":
            for kinds, match in (
                (types, e.match),
                *(
                    ((x.event,) if isinstance(x.event, str) else tuple(x.event), x.match)
                    for x in entries
                ),
            ):
                targets = tuple(t for t in kinds if self.carries(t))
                if targets and not self.own(match.get(self.sf), cx):
                    self.colocate(cx, match, targets, "a duty not matched on its subject")
            loose = tuple(t for t in types if not self.always(t))
            if e.consume and loose and not self.own(e.match.get(self.sf), cx):
                # an event without a subject meets one such duty over every subject: the
                # duties it can meet (same matched values) must be in one shard
                creators, pairs = self.readable(cx, e.match, loose)
                if not creators:
                    self.fail(cx, "a consume duty met by events without a subject")
                else:
                    self.colocations.append(
                        Colocation(
                            self.name(cx, "consume"),
                            f"{cx.where}: a consume duty that events without a subject meet",
                            (self.side(cx, creators, tuple((src, "raw") for src, _ in pairs)),),
                        )
                    )
        if e.key is not None:
            self.key(e, cx, creator or ())

    def key(self, e: m.Expect, cx: _Cx, creators: tuple[str, ...]) -> None:
        parts = e.key if isinstance(e.key, list) else [e.key]
        anchored: int | None = None
        if not isinstance(e.key, list):
            anchored = -1 if self.own(e.key, cx) else None
        else:
            anchored = next((i for i, x in enumerate(parts) if self.own(x, cx)), None)
        side = None
        if creators and not any(t.startswith("@") or t == OWNER_CHANGED for t in creators):
            fields: list[tuple[str, str]] = []
            for x in parts:
                if isinstance(x, str) and x.startswith("$event.") and x.count(".") == 1:
                    f = x.split(".")[1]
                    if (
                        cx.event == creators
                        and f not in ("id", "at")
                        and self.token_field(creators, f)
                    ):
                        fields.append((f, "raw"))
                elif isinstance(x, m.Date) and x.date == "$event.at" and cx.event == creators:
                    fields.append(("at", "date"))
            side = self.side(cx, creators, tuple(fields))
        scope = e.key_scope or f"{cx.where}.key"
        self.keys.setdefault(scope, []).append(_KeyMember(cx, anchored, side, creators))

    def close_keys(self) -> None:
        """Duties sharing a key across subjects must be created in one shard."""
        for scope, members in self.keys.items():
            kinds = {mb.cx.bound for mb in members}
            if "maybe" in kinds or kinds == {"yes", "no"}:
                self.fail(
                    members[0].cx, f"key {scope!r} is shared by steps with and without a subject"
                )
                continue
            if kinds == {"no"}:
                continue  # the same duties in every shard
            anchors = {mb.anchored for mb in members}
            if None not in anchors and len(anchors) == 1:
                continue  # the key holds the subject: never shared across subjects
            if len(members) == 1 and members[0].side is not None:
                mb = members[0]
                assert mb.side is not None
                self.colocations.append(
                    Colocation(
                        f"key:{scope}",
                        f"{mb.cx.where}: one live duty per key "
                        + (
                            f"({', '.join(f for f, _ in mb.side.fields)})"
                            if mb.side.fields
                            else "(all together)"
                        ),
                        (mb.side,),
                    )
                )
                continue
            sides = tuple(self.side(mb.cx, mb.creators, ()) for mb in members if mb.creators)
            if len(sides) != len(members):
                self.fail(members[0].cx, f"key {scope!r} is created where no event is bound")
                continue
            self.colocations.append(
                Colocation(f"key:{scope}", f"key scope {scope!r}: all together", sides)
            )

    # -- the whole set
    def run(self) -> Plan:
        pset = self.pset
        for site in pset.rules:
            r = site.rule
            if r.every is not None:
                types: tuple[str, ...] = ("@" + r.every,)
                bound: _Bound = "no"
            else:
                types = tuple(r.triggers)
                bound = self.bound_of(types)
            cx = _Cx(f"rule {r.id}", types, None, bound, guards=_guards(r.when))
            if bound != "yes":
                self.replicated_rules.append(r.id)
            self.condition(r.when, cx)
            self.actions(r.then, cx.but(where=f"rule {r.id}.then"))
            if r.expect is not None:
                self.expect(r.expect, cx.but(where=f"rule {r.id}.expect"))
        for name, (lab, _) in pset.labels.items():
            on = () if lab.on is None else ((lab.on,) if isinstance(lab.on, str) else tuple(lab.on))
            cx = _Cx(f"label {name}", on or None, None, self.bound_of(on) if on else "yes")
            self.value(lab.subject, cx)
            for case in lab.cases:
                self.condition(case.when, cx)
        for inv, _, _ in pset.invariants:
            self.condition(inv.holds, _Cx(f"invariant {inv.id}", None, None, "yes"))
        for mt, _, _ in pset.metrics:
            cx = _Cx(f"metric {mt.id}", ("@" + mt.every,), None, "no", metric=True)
            self.metric_value(mt.parties, cx)
            per = cx.but(party=True)
            for op in (mt.numerator, mt.denominator, mt.value):
                self.metric_value(op, per)
            if mt.target is not None:
                self.metric_value(getattr(mt.target, mt.target.op), cx)
            for g in mt.grades or ():
                self.metric_value(g.min, cx)
        self.close_keys()
        notes = []
        if self.penalties:
            notes.append("phase 2: offence numbers and ladder steps counted per party in order")
        if self.party_adds:
            notes.append("phase 2: party counters summed over shards in order")
        if pset.metrics:
            notes.append("phase 2: metrics and awards measured from the merged counters")
        if self.replicated_rules:
            notes.append(
                "rules on events without a subject run in every shard, kept once: "
                + ", ".join(dict.fromkeys(self.replicated_rules))
            )
        replicated = tuple(sorted(t for t in pset.events if not self.always(t)))
        reasons = tuple(dict.fromkeys(self.reasons))
        return Plan(
            policy=pset.id,
            subject_field=self.sf,
            separable=not reasons,
            reasons=reasons,
            links={t: tuple(sorted(fs)) for t, fs in sorted(self.links.items())},
            colocations=tuple(self.colocations),
            replicated=replicated,
            notes=tuple(notes),
            metrics=bool(pset.metrics),
        )


class _MetricReads(Visitor[None]):
    """A value inside a metric, for ``_Analyzer.metric_value``: phase 2 has the merged
    counters only, so whatever reads subjects, owners or the history cannot be measured."""

    # as anywhere else: counters, the clock, claims, other metrics
    ignores = node_types(m.Claims, m.Ago, m.Added, m.CounterValue, m.PartiesWith, m.MetricOf)

    def __init__(self, analyzer: _Analyzer) -> None:
        self.analyzer = analyzer

    def ignore(self, op: BaseModel, cx: _Cx) -> None:
        self.analyzer.value(op, cx)

    def unmerged(self, op: BaseModel, cx: _Cx) -> None:
        self.analyzer.fail(cx, f"a metric reads {type(op).__name__} (only counters are merged)")

    visit_OwnerOf = visit_FlagOf = visit_Subjects = visit_Owners = unmerged
    visit_Values = visit_Count = unmerged

    def visit_Coalesce(self, op: m.Coalesce, cx: _Cx) -> None:
        self.analyzer.metric_value(op.coalesce, cx)

    def visit_Plus(self, op: m.Plus, cx: _Cx) -> None:
        self.analyzer.metric_value(op.plus[0], cx)

    def _reads_its_field(self, op: BaseModel, cx: _Cx) -> None:
        self.analyzer.metric_value(next(iter(op.__dict__.values())), cx)

    visit_Date = visit_TimeOfDay = visit_Len = visit_First = _reads_its_field
    visit_Sum = visit_MinOf = visit_MaxOf = visit_Avg = _reads_its_field
    visit_Add = visit_Sub = visit_Mul = visit_Div = visit_Get = _reads_its_field
    visit_Round = _reads_its_field


Guard = tuple[str, str, Any]


class _Guards(Visitor[tuple[Guard, ...]]):
    """Conjuncts of a condition that a raw event can be checked against: ``exists:
    $event.F`` and ``eq: [$event.F, text or yes/no]``."""

    ignores = frozenset(m.CONDITION_MODELS) - node_types(m.All, m.Exists, m.Eq)

    def ignore(self, cond: BaseModel) -> tuple[Guard, ...]:
        return ()

    def visit_All(self, cond: m.All) -> tuple[Guard, ...]:
        return tuple(g for c in cond.all for g in _guards(c))

    def visit_Exists(self, cond: m.Exists) -> tuple[Guard, ...]:
        ref = cond.exists
        if isinstance(ref, str) and ref.startswith("$event.") and ref.count(".") == 1:
            return ((ref.split(".")[1], "exists", None),)
        return ()

    def visit_Eq(self, cond: m.Eq) -> tuple[Guard, ...]:
        for ref, lit in (cond.eq, cond.eq[::-1]):
            if (
                isinstance(ref, str)
                and ref.startswith("$event.")
                and ref.count(".") == 1
                and (isinstance(lit, bool) or (isinstance(lit, str) and not lit.startswith("$")))
            ):
                return ((ref.split(".")[1], "eq", lit),)
        return ()


_GUARDS = _Guards()


def _guards(cond: Any) -> tuple[Guard, ...]:
    """What of ``cond`` (a condition, ``True`` or None) a raw event can be checked against."""
    return _GUARDS.visit(cond) if isinstance(cond, BaseModel) else ()


def _show(op: Any) -> str:
    if isinstance(op, BaseModel):
        return "{" + ", ".join(op.model_dump(exclude_none=True)) + ": ...}"
    return repr(op)


def plan(policy: Program | HasProgram) -> Plan:
    """How ``policy`` splits over subjects (see the module doc); cheap, read off the rules."""
    return _Analyzer(program_of(policy)).run()
