"""One large history, evaluated in shards: on all cores (``Policy.evaluate_many``) or on a Dask
cluster (``policyengine.dask_runner.evaluate_dask``), with the single-process decision as the
result.

Why it works, in four parts:

1. **A static plan** (``plan(policy)``) reads the validated rules once and says how events of
   different subjects can interact. Most rules read and change only the subject of their event;
   what reaches further is one of:

   * *links*: an event field read as another subject (``owner_of: $event.referred_by``,
     ``flag_of``, an ``assign``/``set`` ``subject:``, a duty matched on another subject): each
     such event joins the two subjects into one component (union-find over the stream), so the
     referred customer's owner is known where the referral is evaluated;
   * *co-location tokens*: a duty matched on other fields than the subject (``match: {case:
     $event.case}``), a history query not bound to the subject, a ``key`` shared by duties of
     several subjects (one venue list per manager and day), or a ``consume`` duty met by events
     without a subject: the events that can meet, read or share it join one component through
     a token made of the matched values (or one token for all of them when those values cannot
     be read off the raw events);
   * *events without a subject* (a resignation, a record filed, a calendar tick): they are
     replicated to every shard. Rules on them run in every shard, act on each shard's own
     subjects (``transfer``, ``drop_claims``, ``for_each_subject: {subjects: ...}``), and what
     they produce with no subject (the hand-over duty and its deduction) is the same in every
     shard and kept once;
   * *per-party outcomes*: every penalty carries an offence number counted per party (a
     ``ladder`` picks its step by it), and party counters (``add: {party: ...}``) feed metrics
     and awards. Shards record each penalty with every step's outcome evaluated where its
     context exists, and each counter increment; phase 2 puts them in the single-process order
     and numbers, picks, sums and measures. No rule can read an offence count (the language
     has no operand for it) and only metrics read party counters (checked), so numbering and
     summing after the fact changes nothing a rule decided.

   Anything else that reads across subjects (``subjects``/``owners`` in a condition, a party
   counter read by a rule, a transfer on a subject's event, a replicated duty that a subject's
   event could meet, a metric over the history...) makes the policy *not separable*: it is
   evaluated as one shard, which is the single process. ``Plan.reasons`` says why.

2. **Partitioning** in the caller: ids are derived and duplicates dropped globally (as
   ``events.prepare`` does), each event keeps its global input index, subjects are joined by
   links and tokens, and components are packed into shards by event count.

3. **Shards** run the ordinary engine with a ``World`` subclass (``ShardWorld``) that records,
   for every step (an event, or a timer firing), a *position* that orders it globally: an event
   at ``t`` with input index ``i`` is ``(2t, 1, i)``; a timer with heap key ``K`` (``2*due``,
   ``+1`` when inclusive: see ``engine.fire_until``) is ``(K, 0, P, j)`` where ``P`` is the
   position of the step that pushed it and ``j`` its order among that step's pushes. The
   engine breaks equal keys by push order (its ``seq``), which is exactly the order of ``(P,
   j)``, so positions compare across shards as the single process would order the steps.

4. **Merge** (phase 2): lists are merged by position (a subject's entries keep their order
   exactly); penalties get their offence numbers and ladder steps, counters their totals,
   metrics and awards are measured from the merged counters at each period end, and the
   engine's own ``_decision`` builds the result.

Limits (documented in the README): within one step of an event without a subject (a
resignation moving customers of several shards), entries of different subjects are ordered by
subject id, then those without a subject, and duties pushed in that step by (expectation,
subject), rather than by the engine's loop order: the merged lists can differ from one process
there (each subject's own entries never do). Decimal counter sums beyond 28 significant digits
could round differently. An evaluation error, or an event error, is reproduced exactly by
evaluating the history in one process.
"""

from __future__ import annotations

import bisect
import gc
import logging
import multiprocessing
import pickle
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel

from . import model as m
from .compiler import (
    OWNER_CHANGED,
    CAction,
    CExpect,
    CompiledPolicy,
    CompiledRule,
    Ctx,
    walk_actions,
)
from .decision import Decision
from .engine import Causes, Close, Pending, Renew, Subject, Tick, World, _decision
from .engine import evaluate as engine_evaluate
from .errors import EvaluationError, PolicyEngineError
from .events import History, _derived_id, prepare
from .loader import Source
from .times import from_dt, instant_us, parse_instant, to_local

if TYPE_CHECKING:
    from .policy import Policy

log = logging.getLogger(__name__)

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


class _Analyzer:
    """Walks every rule, label, invariant and metric as the compiler scopes them."""

    def __init__(self, policy: Policy) -> None:
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
        if isinstance(op, m.OwnerOf):
            self.subject(op.owner_of, cx, "owner_of")
        elif isinstance(op, m.FlagOf):
            self.subject(op.flag_of[0], cx, "flag_of")
        elif isinstance(op, m.Claims | m.Ago):
            return  # the current subject's claims; a clock reading
        elif isinstance(op, m.Subjects):
            self.fail(cx, "reads the set of subjects ({subjects: ...}) as a value")
        elif isinstance(op, m.Owners):
            self.fail(cx, "reads every owner ({owners: ...})")
        elif isinstance(op, m.Values | m.Count):
            self.history(op.values if isinstance(op, m.Values) else op.count, cx)
        elif isinstance(op, m.Added | m.CounterValue):
            if cx.party and not cx.metric:
                self.fail(cx, "reads a party's counter, summed over every subject")
        elif isinstance(op, m.PartiesWith):
            if not cx.metric:
                self.fail(cx, "reads which parties have a counter ({parties_with: ...})")
        elif isinstance(op, m.MetricOf):
            return
        elif isinstance(op, m.Coalesce):
            self.value(op.coalesce, cx)
        elif isinstance(op, m.Date):
            self.value(op.date, cx)
        elif isinstance(op, m.Len):
            self.value(op.len, cx)
        elif isinstance(op, m.First):
            self.value(op.first, cx)
        elif isinstance(op, m.Plus):
            self.value(op.plus[0], cx)
        elif isinstance(
            op, m.Sum | m.MinOf | m.MaxOf | m.Avg | m.Add | m.Sub | m.Mul | m.Div | m.Get
        ):
            self.value(next(iter(op.__dict__.values())), cx)
        else:  # pragma: no cover - every operand form is listed above
            self.fail(cx, f"an unknown value form {type(op).__name__}")

    def metric_value(self, op: Any, cx: _Cx) -> None:
        """Phase 2 measures metrics from the merged counters: nothing else is there."""
        if isinstance(op, m.OwnerOf | m.FlagOf | m.Subjects | m.Owners | m.Values | m.Count):
            self.fail(cx, f"a metric reads {type(op).__name__} (only counters are merged)")
            return
        if isinstance(op, list):
            for x in op:
                self.metric_value(x, cx)
            return
        if isinstance(op, m.Coalesce):
            self.metric_value(op.coalesce, cx)
        elif isinstance(op, m.Date | m.Len | m.First):
            self.metric_value(next(iter(op.__dict__.values())), cx)
        elif isinstance(op, m.Plus):
            self.metric_value(op.plus[0], cx)
        elif isinstance(
            op, m.Sum | m.MinOf | m.MaxOf | m.Avg | m.Add | m.Sub | m.Mul | m.Div | m.Get
        ):
            self.metric_value(next(iter(op.__dict__.values())), cx)
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
        if isinstance(cond, m.All | m.AnyOf):
            for c in cond.all if isinstance(cond, m.All) else cond.any:
                self.condition(c, cx)
        elif isinstance(cond, m.Not):
            self.condition(cond.not_, cx)
        elif isinstance(cond, m.History):
            self.history(cond.history, cx)
        elif isinstance(cond, m.In):
            self.value(cond.in_, cx)
        elif isinstance(cond, m.Exists):
            self.value(cond.exists, cx)
        else:
            self.value(next(iter(cond.__dict__.values())), cx)

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
        if isinstance(a, m.ClaimAction | m.LapseClaimAction):
            self.value(a.claim if isinstance(a, m.ClaimAction) else a.lapse_claim, cx)
        elif isinstance(a, m.DropClaimsAction | m.TransferAction):
            if cx.bound != "no":
                self.fail(cx, f"{_kind(a)} on a subject's event changes other subjects")
            if isinstance(a, m.DropClaimsAction):
                self.value(a.drop_claims, cx)
            else:
                self.value([a.transfer.from_, a.transfer.to], cx)
        elif isinstance(a, m.AssignAction):
            if isinstance(a.assign, m.AssignSpec):
                self.value(a.assign.owner, cx)
                if a.assign.subject is not None:
                    self.subject(a.assign.subject, cx, "assign")
            else:
                self.value(a.assign, cx)
        elif isinstance(a, m.ReleaseAction):
            if a.release is not None:
                self.subject(a.release, cx, "release")
        elif isinstance(a, m.PenaltyAction):
            self.penalties = True
            p = a.penalty
            self.value([p.party, p.amount, p.per_unit, p.units, p.salary_days], cx)
            for step in p.ladder or ():
                self.value([step.amount, step.salary_days], cx)
        elif isinstance(a, m.ExpectAction):
            self.expect(a.expect, cx)
        elif isinstance(a, m.SetAction):
            self.value(a.set.value, cx)
            if a.set.subject is not None:
                self.subject(a.set.subject, cx, "set")
        elif isinstance(a, m.AddAction):
            self.value([a.add.by, a.add.party], cx)
            if a.add.party is not None:
                self.party_adds = True
        elif isinstance(a, m.ViolationAction) and not isinstance(a.violation, str):
            self.value(a.violation.party, cx)
        # clear and reject read nothing

    def expect(self, e: m.Expect, cx: _Cx) -> None:
        types = (e.event,) if isinstance(e.event, str) else tuple(e.event)
        for st in e.steps or ():
            if st.event is not None:
                types += (st.event,) if isinstance(st.event, str) else tuple(st.event)
        cancel: tuple[str, ...] = ()
        if e.cancel_on is not None:
            ce = e.cancel_on.event
            cancel = (ce,) if isinstance(ce, str) else tuple(ce)
        for fname, v in e.match.items():
            if fname == self.sf:
                self.subject(v, cx, "a duty's subject")
            else:
                self.value(v, cx)
        self.value([e.party, e.about, e.key], cx)
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
        if e.cancel_on is not None:
            for fname, v in e.cancel_on.match.items():
                if fname == self.sf:
                    self.subject(v, cx, "a duty's cancel event")
                else:
                    self.value(v, cx)
            self.condition(e.cancel_on.where, candidate.but(event=cancel))
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
                (cancel, e.cancel_on.match if e.cancel_on else {}),
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


def _guards(cond: Any) -> tuple[tuple[str, str, Any], ...]:
    """Conjuncts of ``cond`` that a raw event can be checked against: ``exists:
    $event.F`` and ``eq: [$event.F, text or yes/no]``."""
    if isinstance(cond, m.All):
        return tuple(g for c in cond.all for g in _guards(c))
    if isinstance(cond, m.Exists):
        ref = cond.exists
        if isinstance(ref, str) and ref.startswith("$event.") and ref.count(".") == 1:
            return ((ref.split(".")[1], "exists", None),)
    if isinstance(cond, m.Eq):
        for ref, lit in (cond.eq, cond.eq[::-1]):
            if (
                isinstance(ref, str)
                and ref.startswith("$event.")
                and ref.count(".") == 1
                and (isinstance(lit, bool) or (isinstance(lit, str) and not lit.startswith("$")))
            ):
                return ((ref.split(".")[1], "eq", lit),)
    return ()


def _show(op: Any) -> str:
    if isinstance(op, BaseModel):
        return "{" + ", ".join(op.model_dump(exclude_none=True)) + ": ...}"
    return repr(op)


def _kind(a: Any) -> str:
    return "drop_claims" if isinstance(a, m.DropClaimsAction) else "transfer"


def plan(policy: Policy) -> Plan:
    """How ``policy`` splits over subjects (see the module doc); cheap, read off the rules."""
    return _Analyzer(policy).run()


# ================================================================ partitioning

REPLICATED = -1  # an event without a subject: sent to every shard
DROPPED = -2  # a repeated id, or an ignored type: reported, never applied

# ISO 8601 instants in one fixed layout: within one length and one offset, text order is time
# order, so the earliest and latest instants are found without parsing every timestamp
_CANONICAL = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:[+-][0-9]{2}:[0-9]{2}|Z)"
)


class _UnionFind:
    """Subjects and tokens joined by the events that relate them."""

    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, x: Any) -> Any:
        parent = self.parent
        root = parent.setdefault(x, x)
        if root == x:
            return x
        path = [x]
        while True:
            up = parent[root]
            if up == root:
                break
            path.append(root)
            root = up
        for node in path:
            parent[node] = root
        return root

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


@dataclass
class Partition:
    """Where each input event goes, and what the caller found while reading them."""

    events: list[Any]
    shard_of: list[int]  # per input index: a shard, REPLICATED or DROPPED
    ids: dict[int, str]  # ids derived (as events.prepare derives them) for events without one
    shards: int
    sizes: list[int]  # events of subjects per shard
    replicated: int
    duplicates: list[tuple[str, str]]
    ignored: list[tuple[str, str]]
    horizon: int | None
    first: int | None
    components: int
    largest: int  # events of the largest component
    collapse: list[str]  # why this history must be one shard (besides the plan's reasons)
    invalid: bool  # an event the caller could not read: one process reports it exactly
    assign: dict[str, int] = field(default_factory=dict)  # subject -> shard


def _extremes(values: list[Any]) -> tuple[int | None, int | None, bool]:
    """Earliest and latest instant of the timestamps, and whether all were readable.

    Timestamps in one canonical layout with one UTC offset order as text: then the C-level
    ``min``/``max`` find them and only those two are parsed."""
    match = _CANONICAL.fullmatch
    try:
        canonical = bool(values) and all(map(match, values))
    except TypeError:  # not all text
        canonical = False
    if canonical and len({v[-6:] for v in values}) == 1 and values[0][-1] != "Z":
        # one offset: a fraction of a second sorts after none ('.' > '+', '-'), digits as digits
        lo, hi = instant_us(min(values)), instant_us(max(values))
        return lo, hi, lo is not None and hi is not None
    groups: dict[tuple[int, str], list[str]] = {}
    found: list[int] = []
    ok = True
    for v in values:
        if isinstance(v, str) and match(v):
            key = (len(v), v[-6:])
            g = groups.get(key)
            if g is None:
                groups[key] = [v, v]
            elif v < g[0]:
                g[0] = v
            elif v > g[1]:
                g[1] = v
            continue
        us = instant_us(v)
        if us is None:
            ok = False
        else:
            found.append(us)
    for pair in groups.values():
        for text in pair:
            us = instant_us(text)
            if us is None:
                ok = False
            else:
                found.append(us)
    if not found:
        return None, None, ok
    return min(found), max(found), ok


def _passes(
    raw: Mapping[str, Any], guards: tuple[tuple[str, str, Any], ...], fill: Mapping[str, Any]
) -> bool:
    for fname, op, lit in guards:
        v = raw.get(fname)
        if v is None:
            v = fill.get(fname)
        if op == "exists":
            if v is None:
                return False
        elif type(v) is not type(lit) or v != lit:
            return False
    return True


def _token_value(raw: Mapping[str, Any], fname: str, how: str, default: Any, tz: str) -> Any:
    v = raw.get(fname)
    if v is None:
        v = default
    if how == "date":
        us = instant_us(v)
        return None if us is None else to_local(us, tz).date().isoformat()
    if isinstance(v, list):
        v = tuple(v)
    try:
        hash(v)
    except TypeError:  # not a value the field allows: the shard's input check reports it
        return repr(v)
    return v


# one event as the caller reads it: (input index, id (None: unreadable), derived id?, type
# status (_OK, _IGNORED, _BAD), type, timestamp, subject, what it joins, why it collapses)
Read = tuple[int, str | None, bool, int, str, Any, str | None, tuple[Any, ...], str | None]
_OK, _IGNORED, _BAD = 0, 1, 2


@dataclass(frozen=True)
class Reader:
    """What reading a raw event takes, as plain data (shipped to Dask workers as is)."""

    subject_field: str
    timezone: str
    unknown_events: str
    # declared type -> (field defaults, link fields, co-location sides)
    types: dict[str, tuple[dict[str, Any], tuple[str, ...], tuple[tuple[str, TokenSide], ...]]]

    @classmethod
    def of(cls, policy: Policy, the_plan: Plan) -> Reader:
        compiled = policy.compiled
        sides: dict[str, list[tuple[str, TokenSide]]] = {}
        for col in the_plan.colocations:
            for side in col.sides:
                for t in side.types:
                    sides.setdefault(t, []).append((col.name, side))
        return cls(
            compiled.subject_field,
            compiled.timezone,
            compiled.unknown_events,
            {
                t: (
                    {c.name: c.default for c in checks if c.default is not None},
                    the_plan.links.get(t, ()),
                    tuple(sides.get(t, ())),
                )
                for t, checks in compiled.events.items()
            },
        )

    def read(self, index: int, raw: Any) -> Read:
        """Its id (derived as ``events.prepare`` derives it), subject and joins."""
        if type(raw) is not dict and not isinstance(raw, Mapping):
            return (index, None, False, _BAD, "", None, None, (), None)
        raw_id = raw.get("id")
        derived = raw_id is None
        if type(raw_id) is str and raw_id:
            eid = raw_id
        elif derived:
            eid = _derived_id(raw, index)
        elif not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or raw_id == "":
            return (index, None, False, _BAD, "", None, None, (), None)
        else:
            eid = str(raw_id)
        etype_raw = raw.get("type")
        etype = etype_raw if isinstance(etype_raw, str) else ""
        found = self.types.get(etype) if isinstance(etype_raw, str) else None
        if found is None:
            ignore = isinstance(etype_raw, str) and self.unknown_events == "ignore"
            return (index, eid, derived, _IGNORED if ignore else _BAD, etype, None, None, (), None)
        fill, links, sides = found
        sid = raw.get(self.subject_field)
        if sid is None:
            sid = fill.get(self.subject_field)
        subject = sid if isinstance(sid, str) and sid else None
        if not links and (subject is None or not sides):
            return (index, eid, derived, _OK, etype, raw.get("at"), subject, (), None)
        joins: list[Any] = []
        collapse: str | None = None
        for fname in links:
            v = raw.get(fname)
            if v is None:
                v = fill.get(fname)
            named = [x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str) and x]
            if named and subject is None:
                collapse = (
                    f"event {eid} ({etype}) names {fname}={named[0]!r} but no "
                    f"{self.subject_field}: every shard would need that subject"
                )
            joins += named
        if subject is not None:
            for name, side in sides:
                if side.guards and not _passes(raw, side.guards, fill):
                    continue
                joins.append(
                    (
                        name,
                        tuple(
                            _token_value(raw, f, how, fill.get(f), self.timezone)
                            for f, how in side.fields
                        ),
                    )
                )
        return (index, eid, derived, _OK, etype, raw.get("at"), subject, tuple(joins), collapse)


def assemble(
    reads: Iterable[Read],
    total: int,
    shards: int,
    as_of: int | None,
    same: Callable[[int, int], bool],
) -> Partition:
    """Drop repeated ids (the first wins; an ignored type still takes its id, as in
    ``events.prepare``), join subjects, and pack components into ``shards`` by event count,
    largest first onto the least loaded shard. ``total``: how many inputs; ``same(i, j)``:
    whether inputs i and j are equal (for the wording of a duplicate notice)."""
    uf = _UnionFind()
    seen: dict[str, int] = {}
    ids: dict[int, str] = {}
    duplicates: list[tuple[str, str]] = []
    ignored: list[tuple[str, str]] = []
    collapse: list[str] = []
    subject_at: list[str | None] = [None] * total
    shard_of = [DROPPED] * total
    count: dict[str, int] = {}
    ats: list[Any] = []
    invalid = False
    for index, eid, derived, status, etype, at, subject, joins, why in reads:
        if eid is None:
            invalid = True
            continue
        if derived:
            ids[index] = eid
        earlier = seen.get(eid)
        if earlier is not None:
            duplicates.append(
                (
                    eid,
                    "repeated event ignored"
                    if same(earlier, index)
                    else "a different event reuses this id; the later one was ignored",
                )
            )
            continue
        seen[eid] = index
        if status != _OK:
            if status == _IGNORED:
                ignored.append((eid, f"type {etype!r} is not declared by the policy"))
            else:
                invalid = True
            continue
        shard_of[index] = REPLICATED
        ats.append(at)
        if why is not None:
            collapse.append(why)
        if subject is None:
            continue
        subject_at[index] = subject
        count[subject] = count.get(subject, 0) + 1
        for x in joins:
            uf.union(subject, x)
    first, last, readable = _extremes(ats)
    if not readable:
        invalid = True
    horizon = as_of if as_of is not None else last
    joined = uf.parent
    size: dict[Any, int] = {}
    root_of: dict[str, Any] = {}
    for sid, n_events in count.items():  # first-use order: ties pack in that order
        r = uf.find(sid) if sid in joined else sid
        root_of[sid] = r
        size[r] = size.get(r, 0) + n_events
    n = 1 if (collapse or not size) else max(1, min(shards, len(size)))
    loads = [0] * n
    assign: dict[Any, int] = {}
    for r in sorted(size, key=lambda r: -size[r]):
        k = min(range(n), key=lambda i: (loads[i], i))
        assign[r] = k
        loads[k] += size[r]
    where = {sid: assign[r] for sid, r in root_of.items()}
    for index, subject in enumerate(subject_at):
        if subject is not None:
            shard_of[index] = where[subject]
    return Partition(
        events=[],
        shard_of=shard_of,
        ids=ids,
        shards=n,
        sizes=loads,
        replicated=shard_of.count(REPLICATED),
        duplicates=duplicates,
        ignored=ignored,
        horizon=horizon,
        first=first,
        components=len(size),
        largest=max(size.values(), default=0),
        collapse=collapse,
        invalid=invalid,
        assign=where,
    )


def partition(
    policy: Policy,
    the_plan: Plan,
    events: list[Any],
    shards: int,
    as_of: int | None,
) -> Partition:
    """Read each event once, then ``assemble``; anything it cannot read marks the partition
    ``invalid``, and the caller evaluates in one process, which reports every problem."""
    read = Reader.of(policy, the_plan).read
    part = assemble(
        [read(i, raw) for i, raw in enumerate(events)],
        len(events),
        shards,
        as_of,
        lambda i, j: dict(events[i]) == dict(events[j]),
    )
    part.events = events
    return part


def shard_events(part: Partition, k: int) -> list[tuple[int, Mapping[str, Any]]]:
    """Shard ``k``'s input: its subjects' events and every event without a subject, each with
    its global input index, in input order (ids filled in where they were derived)."""
    out: list[tuple[int, Mapping[str, Any]]] = []
    ids = part.ids
    events = part.events
    for index, s in enumerate(part.shard_of):
        if s in (k, REPLICATED):
            raw = events[index]
            if index in ids:
                raw = {**raw, "id": ids[index]}
            out.append((index, raw))
    return out


# ================================================================ shards

_FINISH = 2**62  # the position of the closes at as_of: after every step
_MARKS = 8  # lengths recorded per step: subjects, trace, obligations, penalties, violations,
# rejections, classifications, conflicts


def _index_compiled(policy: CompiledPolicy) -> tuple[dict[int, int], dict[int, int]]:
    """A stable number for every expectation and action of the compiled rules (the same in
    every process that compiled the same policy): they order work within one step."""
    specs: dict[int, int] = {}
    acts: dict[int, int] = {}
    for a in walk_actions(policy):
        acts.setdefault(id(a), len(acts))
        if a.expect is not None:
            specs.setdefault(id(a.expect), len(specs))
    return specs, acts


@dataclass
class _ShardConfig:
    gidx: dict[str, int]
    first: int | None
    specs: dict[int, int]
    acts: dict[int, int]
    out: list[ShardWorld]


@dataclass
class LadderRecord:
    """One penalty as a shard saw it: phase 2 numbers it among the party's offences."""

    step: int
    intra: Any
    row: int  # index in the shard's penalties
    trace: int  # index in the shard's trace
    key: tuple[str, str]  # (ladder key or rule id, party)
    outcomes: list[tuple[tuple[Any, ...], dict[str, Any]] | None]  # per step; None: error
    replicated: bool


@dataclass
class AddRecord:
    """One increment of a party counter: phase 2 sums them in order."""

    step: int
    intra: Any
    key: tuple[str, str]  # (party, counter)
    by: Decimal
    at: int
    trace: int
    replicated: bool


class _Clock:
    """The engine's dispatcher hook: native matching, and the timer about to fire."""

    def __init__(self, world: ShardWorld) -> None:
        self.world = world

    def match(self, rules: tuple[CompiledRule, ...], ctx: Ctx) -> list[CompiledRule]:
        return [r for r in rules if r.when is None or r.when(ctx)]

    def timer(self, key: int, entry: Pending | Tick | Renew | Close) -> None:
        self.world.timer_step(key, entry)


class ShardWorld(World):
    """The engine's World, recording what phase 2 needs: every step's place in the global
    order, which entries came from steps without a subject, each penalty with all its ladder
    steps, and each party counter increment.

    Steps are numbered in the shard. An event step is ``2*at`` and its input index; a timer
    step is its heap key, the index of the step that pushed it (-1: before the first event) and
    ``j``, its order among that step's pushes (see the module doc).
    """

    config: ClassVar[_ShardConfig]

    def __init__(self, policy: CompiledPolicy, dispatcher: Any = None) -> None:
        super().__init__(policy, _Clock(self))
        cfg = type(self).config
        cfg.out.append(self)
        self._gidx = cfg.gidx
        self._specs = cfg.specs
        self._acts = cfg.acts
        # one entry per step, in flat lists of numbers: nothing for the cyclic GC to walk
        self.s_key: list[int] = []  # 2*at for an event, the heap key for a timer
        self.s_ref: list[int] = []  # the event's input index; the pushing step (-1: none)
        self.s_j: list[Any] = []  # a timer's order among its pusher's pushes
        self.s_flag = bytearray()  # 1: an event (else a timer); 2: a step without a subject
        self.marks: list[int] = []  # _MARKS list lengths at the start of each step
        self._cur = -1
        self._cur_repl = True
        self._c = 0
        self._bc: dict[tuple[int, str], int] | None = None
        self._pc: dict[Any, int] | None = None
        self._born: dict[int, int] = {}
        self._born_j: dict[int, Any] = {}
        self._chain_last: dict[int, tuple[int, Any]] = {}
        self._tick_from: dict[tuple[str, str], tuple[int, Any]] = {}
        self.repl_obligations: list[int] = []
        self.ladder: list[LadderRecord] = []
        self.adds: list[AddRecord] = []
        self.closes: list[tuple[int, Tick, int, bool]] = []
        self.fired_repl: dict[str, int] = {}
        self.applied = False

    # -- steps
    def _begin(self, key: int, ref: int, j: Any, flag: int) -> None:
        self.s_key.append(key)
        self.s_ref.append(ref)
        self.s_j.append(j)
        self.s_flag.append(flag)
        self.marks += (
            len(self.subjects),
            len(self.trace),
            len(self.obligations),
            len(self.penalties),
            len(self.violations),
            len(self.rejections),
            len(self.classifications),
            len(self.conflicts),
        )
        self._cur += 1
        self._cur_repl = bool(flag & 2)
        self._c = 0
        self._bc = None
        self._pc = None

    def apply(self, ev: dict[str, Any], derived: bool = False) -> None:
        if not derived:
            self.applied = True
            self._begin(
                2 * ev["at"],
                self._gidx[ev["id"]],
                0,
                1 if isinstance(ev.get(self.sf), str) else 3,
            )
        super().apply(ev, derived)

    def timer_step(self, key: int, entry: Pending | Tick | Renew | Close) -> None:
        j: Any
        if isinstance(entry, Pending):
            pusher = self._born.pop(id(entry))
            j = self._born_j.pop(id(entry))
            replicated = entry.subject_id is None
        elif isinstance(entry, Renew):
            pusher, j = self._chain_last[id(entry.chain)]
            # pushed right after the chain's latest duty, in the same step
            j = (*j[:-1], 1) if isinstance(j, tuple) else j + 1
            replicated = entry.chain.subject_id is None
        else:
            kind = ("tick", entry.unit) if isinstance(entry, Tick) else ("close", entry.tick.unit)
            pusher, j = self._tick_from[kind]
            replicated = True
        self._begin(key, pusher, j, 2 if replicated else 0)
        if isinstance(entry, Tick):
            self._tick_from[("tick", entry.unit)] = (self._cur, (2, 0, "", 0, 0))
        elif isinstance(entry, Close):
            self._tick_from[("close", entry.tick.unit)] = (self._cur, (2, 0, "", 0, 0))

    def schedule_ticks(self, first: int, horizon: int) -> None:
        """Periods start from the first event of the whole history, in every shard."""
        start = type(self).config.first
        super().schedule_ticks(start if start is not None else first, horizon)
        k = 0
        for unit in self.policy.periodic:
            self._tick_from[("tick", unit)] = (-1, (2, k, "", 0, 0))
            k += 1
        for unit in sorted({mt.every for mt in self.policy.metrics}):
            self._tick_from[("close", unit)] = (-1, (2, k, "", 0, 0))
            k += 1

    def _instance(
        self, e: CExpect, ctx: Ctx, rule: CompiledRule, chain: Any, *rest: Any
    ) -> Pending:
        p = super()._instance(e, ctx, rule, chain, *rest)
        sid = p.subject_id
        j: Any
        if self._cur_repl:
            # every shard runs this step: order pushes by (expectation, subject), which the
            # shards agree on, not by a count that differs with each shard's subjects
            if self._bc is None:
                self._bc = {}
            k = (self._specs[id(e)], sid or "")
            c = self._bc.get(k, 0)
            self._bc[k] = c + 1
            j = (1, k[0], k[1], c, 0)
        else:
            j = 2 * self._c
            self._c += 1
        self._born[id(p)] = self._cur
        self._born_j[id(p)] = j
        if chain is not None and e.every is not None:
            self._chain_last[id(chain)] = (self._cur, j)
        if sid is None and p.obligation is not None:
            self.repl_obligations.append(len(self.obligations) - 1)
        return p

    def close(self, tick: Tick, at: int, complete: bool) -> None:
        self.closes.append((self._cur if complete else _FINISH, tick, at, complete))
        super().close(tick, at, complete)

    def resolve(self, rules: tuple[CompiledRule, ...], ctx: Ctx) -> list[CompiledRule]:
        matched = super().resolve(rules, ctx)
        if ctx.subject_id is None and matched:
            for r in matched:
                self.fired_repl[r.id] = self.fired_repl.get(r.id, 0) + 1
        return matched

    def _intra(self, a: CAction, sid: str | None) -> Any:
        """Order within one step: as ``j`` for pushes (see ``_instance``)."""
        if self._pc is None:
            self._pc = {}
        k: Any = (self._acts[id(a)], sid or "") if self._cur_repl else None
        c = self._pc.get(k, 0)
        self._pc[k] = c + 1
        return c if k is None else (1, k[0], k[1], c)

    # -- penalties: every ladder step's outcome, numbered in phase 2
    def penalize(self, a: CAction, ctx: Ctx, rule: CompiledRule, causes: Causes) -> None:
        p = a.penalty
        assert p is not None
        party = p.party(ctx)
        if party is None:
            return
        key = (p.ladder_key or rule.id, str(party))
        count = self.ladders.get(key, 0)
        outcomes: list[tuple[tuple[Any, ...], dict[str, Any]] | None] = []
        error: EvaluationError | None = None
        for i in range(len(p.steps) if p.ladder else 1):
            try:
                outcomes.append(self.sentence(p, i, i + 1, str(party), ctx, rule, causes))
            except EvaluationError as exc:
                if not p.ladder:
                    raise  # its only step: one process stops here too
                outcomes.append(None)
                error = exc
        self.ladders[key] = count + 1
        shown = outcomes[min(count, len(outcomes) - 1)]
        if shown is None:
            shown = next((o for o in outcomes if o is not None), None)
        if shown is None:  # every step fails: whichever phase 2 picks, one process stops here
            assert error is not None
            raise error
        row, detail = shown
        self.penalties.append(row)
        self._trace("penalty", rule, causes, subject=ctx.subject_id, party=str(party), **detail)
        self.ladder.append(
            LadderRecord(
                self._cur,
                self._intra(a, ctx.subject_id),
                len(self.penalties) - 1,
                len(self.trace) - 1,
                key,
                outcomes,
                ctx.subject_id is None,
            )
        )

    # -- party counters: each increment, summed in phase 2
    def do(self, a: CAction, ctx: Ctx, rule: CompiledRule, causes: Causes) -> None:
        if a.kind != "add" or a.target is None:
            super().do(a, ctx, rule, causes)
            return
        party = a.target(ctx)
        if party is None:
            super().do(a, ctx, rule, causes)
            return
        assert a.name is not None
        key = (str(party), a.name)
        before = len(self.counter_log.get(key, ()))
        super().do(a, ctx, rule, causes)
        entries = self.counter_log.get(key, [])
        if len(entries) > before:
            at, by = entries[-1]
            self.adds.append(
                AddRecord(
                    self._cur,
                    self._intra(a, ctx.subject_id),
                    key,
                    by,
                    at,
                    len(self.trace) - 1,
                    ctx.subject_id is None,
                )
            )


@dataclass
class ShardResult:
    """What one shard decided, as plain data for phase 2 (see ``ShardWorld``)."""

    s_key: list[int]
    s_ref: list[int]
    s_j: list[Any]
    s_flag: bytes
    marks: list[int]  # _MARKS ints per step
    subjects: dict[str, Subject]
    penalties: list[tuple[Any, ...]]
    obligations: list[list[Any]]
    rejections: list[tuple[Any, ...]]
    trace: list[tuple[Any, ...]]
    violations: list[tuple[Any, ...]]
    classifications: list[tuple[Any, ...]]
    conflicts: list[tuple[str, str]]
    repl_obligations: list[int]
    ladder: list[LadderRecord]
    adds: list[AddRecord]
    closes: list[tuple[int, Tick, int, bool]]
    fired: dict[str, int]
    fired_repl: dict[str, int]
    labels: dict[str, dict[str, Any]]
    broken: dict[str, list[str]]
    applied: bool
    events: int = 0
    seconds: float = 0.0


def evaluate_shard(
    policy: Policy,
    events: Sequence[tuple[int, Mapping[str, Any]]],
    horizon: int | None,
    first: int | None,
) -> ShardResult:
    """Evaluate one shard: ``events`` are ``(global input index, event)`` in input order, each
    with its id; ``horizon`` is the whole history's, ``first`` its first applied instant."""
    started = time.process_time()
    compiled = policy.compiled
    gidx: dict[str, int] = {}
    raws: list[Mapping[str, Any]] = []
    for index, raw in events:
        gidx[str(raw["id"])] = index
        raws.append(raw)
    history = prepare(compiled, raws)
    specs, acts = _index_compiled(compiled)
    out: list[ShardWorld] = []
    cfg = _ShardConfig(gidx, first, specs, acts, out)
    world_type = type("BoundShardWorld", (ShardWorld,), {"config": cfg})
    engine_evaluate(compiled, history, horizon, world_type=world_type)
    w = out[0]
    unbound = [lab.name for lab in compiled.labels if not lab.on]
    labels = (
        {sid: {n: w.labels.get(sid, {}).get(n) for n in unbound} for sid in w.subjects}
        if unbound
        else {}
    )
    return ShardResult(
        s_key=w.s_key,
        s_ref=w.s_ref,
        s_j=w.s_j,
        s_flag=bytes(w.s_flag),
        marks=w.marks,
        subjects=w.subjects,
        penalties=w.penalties,
        obligations=w.obligations,
        rejections=w.rejections,
        trace=w.trace,
        violations=w.violations,
        classifications=w.classifications,
        conflicts=w.conflicts,
        repl_obligations=w.repl_obligations,
        ladder=w.ladder,
        adds=w.adds,
        closes=w.closes,
        fired=w.fired,
        fired_repl=w.fired_repl,
        labels=labels,
        broken=w.broken,
        applied=w.applied,
        events=len(raws),
        seconds=time.process_time() - started,
    )


# ================================================================ shipping the policy


@dataclass(frozen=True)
class PolicySpec:
    """A policy as plain data, to rebuild it in another process or on a cluster worker:
    compiled closures do not pickle, the loaded YAML (``Source``) and the parameters do."""

    sources: tuple[Source, ...]
    files: tuple[str, ...]
    params: dict[str, Any]  # overrides, written as a params file would write them
    expected: dict[str, Any]  # the resolved values, to check the rebuild


def _money_text(v: m.Money) -> str:
    return str(v.low) if v.low == v.high else f"{v.low}-{v.high}"


def _written(value: Any, kind: str) -> Any:
    if kind == "duration":
        return value.text
    if kind == "money":
        return _money_text(value)
    if kind == "table":
        return {
            k: _money_text(v) if isinstance(v, m.Money) else str(v) if isinstance(v, Decimal) else v
            for k, v in value.items()
        }
    return str(value) if isinstance(value, Decimal) else value


def policy_spec(policy: Policy) -> PolicySpec:
    """``policy`` as data (its YAML and its parameter overrides)."""
    pset = policy.pset
    if not policy.sources or pset is None:
        raise ValueError("this policy carries no sources; load it with load_policy")
    overrides: dict[str, Any] = {}
    for name, value in policy.compiled.params.items():
        decl = pset.params.get(name)
        if decl is not None and value != decl.value():
            overrides[name] = _written(value, decl.kind)
    return PolicySpec(
        tuple(policy.sources), tuple(policy.files), overrides, dict(policy.compiled.params)
    )


def rebuild(spec: PolicySpec) -> Policy:
    """The policy again, in this process; refuses a rebuild that resolves differently."""
    from .errors import ProblemSink
    from .policy import _build

    built = _build(list(spec.sources), ProblemSink(), dict(spec.params), list(spec.files))
    if built.compiled.params != spec.expected:
        raise RuntimeError("the policy rebuilt in a worker resolves its parameters differently")
    return built


# ================================================================ merge (phase 2)


class _Fallback(Exception):
    """Phase 2 met something only one process can decide exactly (e.g. a ladder step whose
    amount cannot be evaluated): the caller evaluates the history in one process."""


def _positions(res: ShardResult) -> list[tuple[Any, ...]]:
    """Comparable positions: ``(2*at, 1, input index)`` for an event, ``(key, 0, pusher's
    position, j)`` for a timer, nested tuples sharing their pushers (``()``: none)."""
    out: list[tuple[Any, ...]] = []
    for key, ref, j, flag in zip(res.s_key, res.s_ref, res.s_j, res.s_flag, strict=True):
        if flag & 1:
            out.append((key, 1, ref))
        else:
            out.append((key, 0, out[ref] if ref >= 0 else (), j))
    return out


_LAST: tuple[Any, ...] = (_FINISH,)


_TB0: tuple[Any, ...] = (0, "")
_TB1: tuple[Any, ...] = (1, "")


def _keys(
    rows: Sequence[Any],
    column: int,
    res: ShardResult,
    pos: list[tuple[Any, ...]],
    shard: int,
    replicated: Callable[[int, Any], bool],
    subject: Callable[[Any], Any],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Merge keys of the rows, ``(step position, tie-break, shard, row index)``: those of this
    shard's own rows, and those of rows every shard produced alike (kept from one shard).
    Only steps without a subject can hold the latter, or rows of several shards, so only
    their rows pay for a check."""
    starts = res.marks[column::_MARKS]
    flags = res.s_flag
    own: list[tuple[Any, ...]] = []
    alike: list[tuple[Any, ...]] = []
    append = own.append
    n = len(rows)
    last = len(starts) - 1
    right = bisect.bisect_right
    i = 0
    while i < n:  # one run of rows per step that has any
        s = right(starts, i) - 1
        b = starts[s + 1] if s < last else n
        p = pos[s] if s >= 0 else ()
        if s < 0 or not flags[s] & 2:
            for j in range(i, b):
                append((p, _TB0, shard, j))
        else:
            for j in range(i, b):
                row = rows[j]
                if replicated(j, row):
                    alike.append((p, _TB1, shard, j))
                else:
                    append((p, (0, str(subject(row) or "")), shard, j))
        i = b
    return own, alike


def _reject_subjects(r: ShardResult) -> list[Any]:
    """The subject of each rejection: its trace entry, in the same order."""
    return [row[2] for row in r.trace if row[1] == "reject"]


def _obligation_check(r: ShardResult) -> Callable[[int, Any], bool]:
    alike = set(r.repl_obligations)
    return lambda i, row: i in alike


def _rejection_check(r: ShardResult) -> Callable[[int, Any], bool]:
    subjects = _reject_subjects(r)
    return lambda i, row: subjects[i] is None


# the merged lists: name, marks column, which rows every shard made alike, the row's subject
_LISTS: tuple[
    tuple[str, int, Callable[[ShardResult], Callable[[int, Any], bool]], Callable[[Any], Any]],
    ...,
] = (
    ("trace", 1, lambda r: lambda i, row: row[2] is None, lambda row: row[2]),
    ("obligations", 2, _obligation_check, lambda row: row[3]),
    ("penalties", 3, lambda r: lambda i, row: row[8] is None, lambda row: row[8]),
    ("violations", 4, lambda r: lambda i, row: row[2] is None, lambda row: row[2]),
    ("rejections", 5, _rejection_check, lambda row: row[0]),
    ("classifications", 6, lambda r: lambda i, row: row[6] is None, lambda row: row[6]),
    ("conflicts", 7, lambda r: lambda i, row: False, lambda row: row[0]),
)


@dataclass
class Prepared:
    """One shard's result with what the merge needs from it alone, computed as soon as it
    arrives (while other shards still run): step positions and the merge keys."""

    result: ShardResult
    pos: list[tuple[Any, ...]]
    keys: dict[str, tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]
    touched: list[tuple[tuple[Any, ...], str]]


def prepare_result(res: ShardResult, shard: int) -> Prepared:
    pos = _positions(res)
    keys = {
        name: _keys(getattr(res, name), column, res, pos, shard, alike(res), subject)
        for name, column, alike, subject in _LISTS
    }
    starts = res.marks[0::_MARKS]
    right = bisect.bisect_right
    touched = []
    for i, sid in enumerate(res.subjects):
        step = right(starts, i) - 1
        touched.append(((pos[step] if step >= 0 else (), shard, i), sid))
    return Prepared(res, pos, keys, touched)


def merge(policy: Policy, part: Partition, shards: Sequence[ShardResult | Prepared]) -> Decision:
    """Phase 2: one decision from the shards (see the module doc)."""
    compiled = policy.compiled
    prepared = [
        x if isinstance(x, Prepared) else prepare_result(x, k) for k, x in enumerate(shards)
    ]
    results = [x.result for x in prepared]
    primary = next((k for k, r in enumerate(results) if r.applied), 0)
    pos = [x.pos for x in prepared]

    # offences: numbered per (ladder key, party) in the single-process order
    groups: dict[tuple[str, str], list[tuple[tuple[Any, ...], int, LadderRecord]]] = {}
    for k, r in enumerate(results):
        for rec in r.ladder:
            if rec.replicated and k != primary:
                continue
            groups.setdefault(rec.key, []).append(
                ((pos[k][rec.step], rec.intra, k, rec.row), k, rec)
            )
    for offences in groups.values():
        offences.sort(key=lambda x: x[0])
        for n, (_, k, rec) in enumerate(offences, start=1):
            outcome = rec.outcomes[min(n - 1, len(rec.outcomes) - 1)]
            if outcome is None:
                raise _Fallback(f"offence {n} of {rec.key} takes a step that cannot be evaluated")
            row, detail = outcome
            res = results[k]
            res.penalties[rec.row] = (*row[:7], n, *row[8:])
            t = res.trace[rec.trace]
            res.trace[rec.trace] = (*t[:6], {**detail, "offence": n})

    # party counters: increments in order; running totals as one process shows them
    adds: list[tuple[tuple[Any, ...], AddRecord, int]] = []
    for k, r in enumerate(results):
        for a in r.adds:
            if a.replicated and k != primary:
                continue
            adds.append(((pos[k][a.step], a.intra, k, a.trace), a, k))
    adds.sort(key=lambda x: x[0])
    totals: dict[str, dict[str, Decimal]] = {}
    counter_log: dict[tuple[str, str], list[tuple[int, Decimal]]] = {}
    for _, a, k in adds:
        party, name = a.key
        table = totals.setdefault(party, {})
        table[name] = table.get(name, Decimal(0)) + a.by
        counter_log.setdefault(a.key, []).append((a.at, a.by))
        results[k].trace[a.trace][6]["value"] = str(table[name])

    w = World(compiled)
    # metrics and awards: measured at each period end with the counters as they stood
    if compiled.metrics:
        counters: dict[str, dict[str, Decimal]] = {}
        w.counter_log = counter_log
        w.horizon = part.horizon
        closes = results[primary].closes
        i = 0
        for step, tick, at, complete in closes:
            at_pos = pos[primary][step] if step != _FINISH else _LAST
            while i < len(adds) and adds[i][0][0] < at_pos:
                a = adds[i][1]
                table = counters.setdefault(a.key[0], {})
                table[a.key[1]] = table.get(a.key[1], Decimal(0)) + a.by
                i += 1
            w.party_counters = counters
            w.close(tick, at, complete)

    # the lists, merged by position (after the offences and totals above were written in)
    merged: dict[str, list[Any]] = {}
    for name, _, _, _ in _LISTS:
        order = [key for x in prepared for key in x.keys[name][0]]
        order += prepared[primary].keys[name][1]
        order.sort()
        lists = [getattr(r, name) for r in results]
        merged[name] = [lists[key[2]][key[3]] for key in order]

    # subjects, in the order one process first touched them
    touched = sorted(t for x in prepared for t in x.touched)
    subjects: dict[str, Subject] = {}
    for (_, k, _), sid in touched:
        if sid in subjects:
            raise _Fallback(f"subject {sid!r} was touched in two shards")
        subjects[sid] = results[k].subjects[sid]

    # labels: each subject's at as_of, then what events classified (the latest wins)
    labels: dict[str, dict[str, Any]] = {}
    if any(not lab.on for lab in compiled.labels):
        for sid in subjects:
            for r in results:
                found = r.labels.get(sid)
                if found is not None:
                    labels[sid] = dict(found)
                    break
    event_labels: dict[str, dict[str, Any]] = {}
    for row in merged["classifications"]:
        event_labels.setdefault(row[1], {})[row[0][0]] = row[2]
    for key, found in event_labels.items():
        labels.setdefault(key, {}).update(found)

    broken_in = [{name: set(sids) for name, sids in r.broken.items()} for r in results]
    broken: dict[str, list[str]] = {}
    for sid in subjects:
        for name, _ in compiled.invariants:
            if any(sid in b.get(name, ()) for b in broken_in):
                broken.setdefault(name, []).append(sid)

    fired: dict[str, int] = {}
    for k, r in enumerate(results):
        for rid, n in r.fired.items():
            own = n - r.fired_repl.get(rid, 0) + (r.fired_repl.get(rid, 0) if k == primary else 0)
            if own:
                fired[rid] = fired.get(rid, 0) + own

    w.subjects = subjects
    w.penalties = merged["penalties"]
    w.obligations = merged["obligations"]
    w.rejections = merged["rejections"]
    w.trace = merged["trace"]
    w.violations = merged["violations"]
    w.classifications = merged["classifications"]
    w.conflicts = merged["conflicts"]
    w.party_counters = totals
    w.labels = labels
    w.broken = broken
    w.fired = fired
    history = History([], duplicates=list(part.duplicates), ignored=list(part.ignored))
    return _decision(compiled, w, history, part.horizon)


# ================================================================ running


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Unpickling and merging build hundreds of thousands of small acyclic tuples; the cyclic
    collector's repeated passes over them cost several times the work itself and can free
    nothing. Paused for that span only, and restored as it was."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class Report:
    """How a history was evaluated: the plan, the shards and where the time went."""

    plan: Plan
    mode: str  # single | in-process | fork | spawn | dask
    shards: int
    sizes: list[int] = field(default_factory=list)  # events of subjects per shard
    replicated: int = 0  # events without a subject (in every shard)
    components: int = 0
    largest: int = 0
    collapse: list[str] = field(default_factory=list)
    fallback: str | None = None  # why the decision came from one process after all
    seconds: dict[str, float] = field(default_factory=dict)
    placed: dict[str, int] = field(default_factory=dict)  # subject -> shard that evaluated it

    def explain(self) -> str:
        lines = [self.plan.explain(), f"mode {self.mode}, {self.shards} shard(s)"]
        if self.sizes:
            lines.append(
                f"  {self.components} components (largest {self.largest} events), "
                f"events per shard {self.sizes} + {self.replicated} replicated"
            )
        lines += [f"  one shard: {c}" for c in self.collapse]
        if self.fallback:
            lines.append(f"  evaluated in one process: {self.fallback}")
        if self.seconds:
            lines.append("  seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in self.seconds.items()))
        return "\n".join(lines)


@dataclass
class Run:
    decision: Decision
    report: Report


def _default_method() -> str:
    """fork shares the history with the workers without copying it, but is safe only on Linux
    from a process that runs no other thread; spawn works everywhere."""
    methods = multiprocessing.get_all_start_methods()
    if sys.platform == "linux" and "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "spawn"


def _child_fork(policy: Policy, part: Partition, k: int, conn: Any) -> None:
    # what this process inherited (the whole history, the caller's objects) stays alive and
    # unchanged: out of the cyclic collector's sight, it costs the shard nothing
    gc.freeze()
    _no_collector()
    _reply(conn, lambda: evaluate_shard(policy, shard_events(part, k), part.horizon, part.first))


def _child_spawn(
    spec: PolicySpec,
    events: list[tuple[int, Mapping[str, Any]]],
    horizon: int | None,
    first: int | None,
    conn: Any,
) -> None:
    _no_collector()
    _reply(conn, lambda: evaluate_shard(rebuild(spec), events, horizon, first))


def _no_collector() -> None:
    """A worker is our own process: it evaluates one shard, sends it and exits. The cyclic
    collector could free nothing the shard still holds, and its passes over the shard's live
    objects cost a third of the work; off for the worker's short life (its memory goes back
    when it exits). Never done in the caller's process."""
    gc.disable()


def _reply(conn: Any, work: Callable[[], ShardResult]) -> None:
    try:
        payload: tuple[str, Any] = ("ok", work())
    except PolicyEngineError as exc:
        payload = ("engine", f"{type(exc).__name__}: {exc}")
    except BaseException:
        payload = ("crash", traceback.format_exc())
    conn.send_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
    conn.close()


def _run_processes(
    policy: Policy, part: Partition, workers: int, method: str
) -> list[tuple[str, Any]]:
    ctx: Any = multiprocessing.get_context(method)
    spec = None if method == "fork" else policy_spec(policy)
    waiting = list(range(part.shards))
    running: dict[Any, tuple[int, Any]] = {}
    done: dict[int, tuple[str, Any]] = {}
    while waiting or running:
        while waiting and len(running) < workers:
            k = waiting.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            if spec is None:
                args: tuple[Any, ...] = (policy, part, k, send)
                target: Callable[..., None] = _child_fork
            else:
                args = (spec, shard_events(part, k), part.horizon, part.first, send)
                target = _child_spawn
            proc = ctx.Process(target=target, args=args, daemon=True)
            proc.start()
            send.close()
            running[recv] = (k, proc)
        ready: list[Any] = multiprocessing.connection.wait(list(running))
        received: list[tuple[int, bytes]] = []
        for conn in ready:  # every finished worker's bytes first: a worker blocks until read
            k, proc = running.pop(conn)
            try:
                data = conn.recv_bytes()
            except EOFError:
                data = pickle.dumps(("crash", f"shard {k}: the worker died ({proc.exitcode})"))
            conn.close()
            proc.join()
            received.append((k, data))
        for k, data in received:
            # read and key this shard while the others still run
            with _gc_paused():
                status, value = pickle.loads(data)
                done[k] = (status, prepare_result(value, k) if status == "ok" else value)
    return [done[k] for k in range(part.shards)]


def run(
    policy: Policy,
    events: Iterable[Mapping[str, Any]],
    as_of: str | Any | None = None,
    workers: int = 1,
    shards: int | None = None,
    start_method: str | None = None,
) -> Run:
    """Evaluate one large history in shards; the decision equals ``policy.evaluate``'s.

    ``workers`` processes evaluate ``shards`` shards (default: one per worker). ``workers=1``
    evaluates in this process (with ``shards`` > 1, shard by shard: the same merge, without
    processes). ``start_method``: ``fork`` or ``spawn`` (default: fork on Linux when this
    process runs no other thread). The report says how the history was split, and why a
    policy or a history was evaluated as one shard.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    started = time.perf_counter()
    the_plan = plan(policy)
    horizon_arg = from_dt(parse_instant(as_of, "as_of")) if as_of is not None else None
    raw = list(events)
    want = shards if shards is not None else workers
    report = Report(the_plan, "single", 1)

    def single(why: str | None) -> Run:
        t0 = time.perf_counter()
        decision = policy.evaluate(raw, as_of)
        report.mode, report.shards, report.fallback = "single", 1, why
        report.seconds["evaluate"] = time.perf_counter() - t0
        if why:
            log.info("evaluate_many: one process: %s", why)
        return Run(decision, report)

    if want <= 1:
        return single(None)
    if not the_plan.separable:
        return single("the policy is not separable: " + "; ".join(the_plan.reasons))
    part = partition(policy, the_plan, raw, want, horizon_arg)
    report.seconds["partition"] = time.perf_counter() - started
    report.sizes, report.replicated = part.sizes, part.replicated
    report.components, report.largest, report.collapse = (
        part.components,
        part.largest,
        part.collapse,
    )
    if part.invalid:
        return single("an event could not be read (one process reports every problem)")
    if part.shards <= 1:
        return single("; ".join(part.collapse) or "one component")
    t0 = time.perf_counter()
    results: list[ShardResult | Prepared] = []
    if workers == 1:
        report.mode = "in-process"
        try:
            for k in range(part.shards):
                results.append(
                    evaluate_shard(policy, shard_events(part, k), part.horizon, part.first)
                )
        except PolicyEngineError as exc:
            return single(f"{type(exc).__name__} in a shard")
    else:
        method = start_method or _default_method()
        report.mode = method
        for status, value in _run_processes(policy, part, workers, method):
            if status == "engine":
                return single(f"{value} (in a shard)")
            if status != "ok":
                raise RuntimeError(f"a shard failed:\n{value}")
            results.append(value)
    report.shards = part.shards
    shard_results = [x.result if isinstance(x, Prepared) else x for x in results]
    report.placed = {sid: k for k, r in enumerate(shard_results) for sid in r.subjects}
    report.seconds["shards"] = time.perf_counter() - t0
    report.seconds.update({f"shard{k}": r.seconds for k, r in enumerate(shard_results)})
    t0 = time.perf_counter()
    try:
        with _gc_paused():
            decision = merge(policy, part, results)
    except (_Fallback, RecursionError) as exc:  # RecursionError: timer chains too deep to order
        return single(str(exc) or type(exc).__name__)
    report.seconds["merge"] = time.perf_counter() - t0
    report.seconds["total"] = time.perf_counter() - started
    return Run(decision, report)


def evaluate_many(
    policy: Policy,
    events: Iterable[Mapping[str, Any]],
    as_of: str | Any | None = None,
    workers: int = 1,
    shards: int | None = None,
    start_method: str | None = None,
) -> Decision:
    """``run(...).decision``: see ``run``."""
    return run(policy, events, as_of, workers, shards, start_method).decision


def evaluate_dask(
    policy: Policy | str | Any,
    events: Any,
    as_of: str | Any | None = None,
    client: Any = None,
    params: Mapping[str, Any] | None = None,
    shards: int | None = None,
) -> Decision:
    """The same on a Dask cluster: see ``policyengine.dask_runner.evaluate_dask`` (Dask is
    imported only there, and only when this is called)."""
    from .dask_runner import evaluate_dask as on_dask

    return on_dask(policy, events, as_of, client, params, shards)
