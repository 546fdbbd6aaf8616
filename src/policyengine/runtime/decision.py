"""Decision: what an evaluation concluded, as pydantic models that serialise to JSON as they are.

The engine works on plain tuples and dicts for speed; this module is the boundary where
those become validated, documented, JSON-ready objects. Every entry names the rule and
clause that produced it and the event ids that prove it, so a decision can be argued with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, ClassVar, Final, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, computed_field

from policyengine.errors import Code, Problem, SnapshotError
from policyengine.runtime.records import (
    AwardRow,
    ClassificationRow,
    CreditRow,
    MetricRow,
    ObligationRow,
    PenaltyRow,
    RejectionRow,
    RuleRef,
    SpanRecord,
    TraceRow,
    ViolationRow,
)
from policyengine.times import Instant, parse_instant, to_pendulum


@dataclass(frozen=True, slots=True)
class ResumeInfo:
    """How ``Policy.resume`` produced a decision: ``incremental`` (only the events after the
    snapshot were applied) or ``full`` (the whole history again, for ``reason``)."""

    mode: Literal["incremental", "full"]
    applied: int  # events the engine applied in this call
    reason: str | None = None


class Resumable(Protocol):
    """What a backend attaches to a decision it can snapshot (under ``RESUMABLE``): the
    decision stays pure data and reaches the backend through this hook only."""

    @property
    def resumed(self) -> ResumeInfo | None: ...

    def snapshot(self, key: bytes | None = None) -> dict[str, Any]: ...


# where a decision keeps its backend's hook: outside the model's fields, so dumps and == ignore
# it, as they ignore cached properties
RESUMABLE: Final = "_resumable"


ObligationStatus = Literal["met", "late", "open", "overdue", "cancelled"]
Sanction = Literal["fine", "salary_deduction", "warning", "transfer", "dismissal", "confiscation"]
ClauseRef = str | list[str]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)


class OwnershipSpan(_Frozen):
    """One owner over ``[start, end)``; ``end`` is None while it lasts."""

    subject: str
    owner: str = Field(description="employee id, or 'company' for the company pool")
    start: datetime
    end: datetime | None = None
    rule: str
    clause: ClauseRef = Field(description="the clause id the rule cites; a list if several")
    clauses: list[str]
    events: list[str] = Field(description="ids of the events that caused the change")


class Penalty(_Frozen):
    party: str
    sanction: Sanction
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    currency: str | None = None
    units: int | None = Field(default=None, description="unit count of a per-unit fine")
    salary_days: Decimal | None = Field(
        default=None, description="days of salary, for a salary deduction stated in days"
    )
    offence: int = Field(default=1, description="which offence of this party under this ladder")
    subject: str | None = None
    at: datetime
    rule: str
    clause: ClauseRef
    clauses: list[str]
    events: list[str]


class Credit(_Frozen):
    """A positive amount owed to a party (``credit:``): a commission, a bonus, a reward."""

    party: str
    kind: str = Field(description="what the credit is for: commission, bonus, reward...")
    amount: Decimal = Field(description="zero or more, exact")
    currency: str
    subject: str | None = None
    at: datetime
    event: str | None = Field(default=None, description="the event the credit was decided on")
    rule: str
    clause: ClauseRef
    clauses: list[str]
    events: list[str]


class Obligation(_Frozen):
    rule: str
    clause: ClauseRef
    clauses: list[str]
    what: str
    party: str | None
    subject: str | None
    opened: datetime = Field(description="when the duty arose")
    window_start: datetime | None = Field(
        default=None, description="earliest instant a meeting event counts; None = as soon as owed"
    )
    window_start_inclusive: bool = Field(
        default=True,
        description="False: the window opens just after `window_start` (the previous step's due)",
    )
    due: datetime | None = Field(description="None: the manual sets no deadline (open until met)")
    due_inclusive: bool = Field(
        default=True,
        description="True: an event at exactly `due` is in time; False: `due` itself is too late",
    )
    status: ObligationStatus
    met_by: str | None = None
    met_at: datetime | None = None
    events: list[str] = Field(description="ids of the events that created the duty")


class Rejection(_Frozen):
    """An event the policy refused as evidence: reported, never applied."""

    event: str
    at: datetime
    rule: str
    clause: ClauseRef
    clauses: list[str]
    reason: str


class Violation(_Frozen):
    """A breach the policy reports without refusing the event (e.g. a step out of order)."""

    what: str
    party: str | None = None
    subject: str | None = None
    event: str | None = Field(description="the event that broke the rule")
    at: datetime
    rule: str
    clause: ClauseRef
    clauses: list[str]
    events: list[str]


class Metric(_Frozen):
    """A measured value of one party for one calendar period, against its target."""

    rule: str = Field(description="the metric id")
    clause: ClauseRef
    clauses: list[str]
    party: str
    period: str = Field(description="local period label: 2026-03, 2026-W10 or 2026-03-01")
    value: Decimal
    target: Decimal | None
    comparison: Literal["ge", "gt", "le", "lt"] | None
    met: bool | None
    numerator: Decimal
    denominator: Decimal | None
    complete: bool = Field(description="False: the period had not ended at as_of (value so far)")
    grade: str | None = Field(default=None, description="the band of `grades` the value is in")


class Award(_Frozen):
    """A party that won a period's ranking ("service star of the month")."""

    rule: str = Field(description="the award id")
    clause: ClauseRef
    clauses: list[str]
    title: str | None
    party: str
    period: str
    place: int = Field(description="1 for the winner; 2, 3... when an award has several")
    metrics: dict[str, Decimal | None] = Field(
        description="the ranking metric and each tie-break metric, with the party's value"
    )
    complete: bool


class Classification(_Frozen):
    """What an event classified (a return request: refused, exchange, refund...) and why."""

    label: str
    clause: ClauseRef
    clauses: list[str]
    subject: str = Field(description="what is classified: a case, an order, a customer")
    value: str | None = Field(description="None: no case of the label applied")
    reason: str | None
    at: datetime
    event: str
    customer: str | None = Field(description="the subject of the classifying event, if any")


class Notice(_Frozen):
    """Something the caller should know: input not applied (a duplicate id, an ignored unknown
    type), two rules deciding one owner differently in one step with no precedence, or working
    days counted Monday-Friday in a year the calendar does not know (``event`` ``#calendar``)."""

    event: str
    kind: Literal["duplicate", "ignored", "conflict", "calendar"]
    detail: str


class TraceEntry(_Frozen):
    seq: int
    at: datetime
    kind: Literal[
        "owner",
        "claim",
        "penalty",
        "credit",
        "obligation",
        "flag",
        "counter",
        "reject",
        "expectation",
        "violation",
        "timer",
    ]
    subject: str | None = None
    party: str | None = None
    rule: str
    clause: ClauseRef
    clauses: list[str]
    events: list[str]
    detail: dict[str, Any] = Field(default_factory=dict)


_M = TypeVar("_M", bound=BaseModel)


def trusted(cls: type[_M], **values: Any) -> _M:
    """An entry built from the engine's own checked tuples, every field given: validating it
    again (or pydantic's ``model_construct``, which walks the fields in Python) would cost
    more than evaluating the events that produced it."""
    return _entry(cls, values)


def _entry(cls: type[_M], values: dict[str, Any]) -> _M:
    """``trusted`` of the values as a dict (the caller's own, kept as the entry's)."""
    obj = cls.__new__(cls)
    _set_dict(obj, values)
    _set_fields_set(obj, set(values))
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


# BaseModel's slots, set through their descriptors: ``object.__setattr__`` looks each up anew
# and costs more than the entry's values (a decision's penalties are read in a request)
_set_dict: Final = BaseModel.__dict__["__dict__"].__set__
_set_fields_set: Final = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra: Final = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private: Final = BaseModel.__dict__["__pydantic_private__"].__set__


def _instant(value: str | datetime, what: str) -> datetime:
    return parse_instant(value, what)


@dataclass(frozen=True, slots=True)
class RawDecision:
    """The engine's findings as its own records (``runtime.records``).

    Turning them into pydantic models costs as much as evaluating, and many callers read only
    an owner or two, so the models are built on first access (and then cached).
    """

    spans: dict[str, list[SpanRecord]]
    penalties: list[PenaltyRow]
    obligations: Sequence[ObligationRow]  # the native core's, read-only, made on access
    rejections: list[RejectionRow]
    trace: list[TraceRow]
    violations: list[ViolationRow] = field(default_factory=list)
    metrics: list[MetricRow] = field(default_factory=list)
    classifications: list[ClassificationRow] = field(default_factory=list)
    awards: list[AwardRow] = field(default_factory=list)
    award_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    credits: list[CreditRow] = field(default_factory=list)


# the leading fields of a ``PenaltyRow`` a ``Penalty`` shows as they are, in the row's order
_PENALTY_AS_IS: Final = (
    "party",
    "sanction",
    "amount_min",
    "amount_max",
    "currency",
    "units",
    "salary_days",
    "offence",
    "subject",
)
assert PenaltyRow._fields[: len(_PENALTY_AS_IS)] == _PENALTY_AS_IS


def _clause_ref(clauses: tuple[str, ...]) -> str | list[str]:
    return clauses[0] if len(clauses) == 1 else list(clauses)


def shown_flags(flags: dict[str, Any], tz: str) -> dict[str, Any]:
    """A subject's flags as the decision shows them: an instant (``times.Instant``) as a
    local time in the policy's timezone, so that JSON gives ISO 8601 text with its offset."""
    if not any(type(v) is Instant for v in flags.values()):
        return dict(flags)
    return {k: to_pendulum(v, tz) if type(v) is Instant else v for k, v in flags.items()}


def _rule(ref: RuleRef) -> dict[str, Any]:
    """The fields every entry has for the rule that produced it."""
    return {"rule": ref[0], "clause": _clause_ref(ref[1]), "clauses": list(ref[1])}


class Decision(_Frozen):
    """Everything decided, as of ``as_of``; lists are built from the engine's record on use."""

    policy: str
    version: str
    timezone: str = "Asia/Shanghai"
    as_of: datetime | None
    notices: list[Notice] = Field(default_factory=list)
    flags: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per subject, the flags set at as_of"
    )
    counters: dict[str, dict[str, Decimal]] = Field(
        default_factory=dict, description="per party (or subject), the counters at as_of"
    )
    clauses: dict[str, str] = Field(
        default_factory=dict, description="clause id -> reading, for explanations"
    )
    subject_labels: dict[str, dict[str, str | None]] = Field(
        default_factory=dict, description="per subject, each label's value at as_of"
    )
    fired: dict[str, int] = Field(
        default_factory=dict,
        description="rule id -> times its trigger matched; label, metric and award name -> "
        "values produced (what scenario coverage counts)",
    )
    broken_invariants: dict[str, list[str]] = Field(
        default_factory=dict,
        description="the policy's own `invariants:` that fail at as_of -> the subjects failing",
    )
    raw: RawDecision | None = Field(default=None, exclude=True, repr=False)

    @cached_property
    def _instants(self) -> dict[int, datetime]:
        """Instants already converted: a decision repeats its events' times in many entries,
        and building a pendulum DateTime costs more than the rest of an entry."""
        return {}

    def _t(self, us: int | None) -> datetime | None:
        return None if us is None else self._at(us)

    def _at(self, us: int) -> datetime:
        found = self._instants.get(us)
        if found is None:
            found = self._instants[us] = to_pendulum(us, self.timezone)
        return found

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def ownerships(self) -> dict[str, list[OwnershipSpan]]:
        if self.raw is None:
            return {}
        return {
            sid: [
                trusted(
                    OwnershipSpan,
                    subject=sid,
                    owner=s.owner,
                    start=self._at(s.start),
                    end=self._t(s.end),
                    rule=s.rule[0],
                    clause=_clause_ref(s.rule[1]),
                    clauses=list(s.rule[1]),
                    events=list(s.events),
                )
                for s in spans
            ]
            for sid, spans in self.raw.spans.items()
        }

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def penalties(self) -> list[Penalty]:
        if self.raw is None:
            return []
        at = self._at
        out = []
        for p in self.raw.penalties:  # read in a request: a loop of a few C calls an entry
            values: dict[str, Any] = dict(zip(_PENALTY_AS_IS, p, strict=False))
            ref = p.rule
            values["at"] = at(p.at)
            values["rule"] = ref[0]
            values["clause"] = _clause_ref(ref[1])
            values["clauses"] = list(ref[1])
            values["events"] = list(p.events)
            out.append(_entry(Penalty, values))
        return out

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def credits(self) -> list[Credit]:
        """Positive amounts owed to parties (``credit:``), in the order they were decided."""
        if self.raw is None:
            return []
        return [
            trusted(
                Credit,
                party=c.party,
                kind=c.kind,
                amount=c.amount,
                currency=c.currency,
                subject=c.subject,
                at=self._at(c.at),
                event=c.event,
                rule=c.rule[0],
                clause=_clause_ref(c.rule[1]),
                clauses=list(c.rule[1]),
                events=list(c.events),
            )
            for c in self.raw.credits
        ]

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def obligations(self) -> list[Obligation]:
        if self.raw is None:
            return []
        return [
            trusted(
                Obligation,
                rule=o.rule[0],
                clause=_clause_ref(o.rule[1]),
                clauses=list(o.rule[1]),
                what=o.what,
                party=o.party,
                subject=o.subject,
                opened=self._at(o.opened),
                window_start=self._t(o.window_start),
                due=self._t(o.due),
                due_inclusive=o.due_inclusive,
                status=o.status,
                met_by=o.met_by,
                met_at=self._t(o.met_at),
                events=list(o.events),
                window_start_inclusive=o.window_start_inclusive,
            )
            for o in self.raw.obligations
        ]

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def rejected(self) -> list[Rejection]:
        if self.raw is None:
            return []
        return [
            Rejection(event=r.event, at=self._at(r.at), reason=r.reason, **_rule(r.rule))
            for r in self.raw.rejections
        ]

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def violations(self) -> list[Violation]:
        if self.raw is None:
            return []
        return [
            Violation(
                what=v.what,
                party=v.party,
                subject=v.subject,
                event=v.event,
                at=self._at(v.at),
                events=list(v.events),
                **_rule(v.rule),
            )
            for v in self.raw.violations
        ]

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def metrics(self) -> list[Metric]:
        if self.raw is None:
            return []
        return [
            Metric(
                party=mt.party,
                period=mt.period,
                value=mt.value,
                target=mt.target,
                comparison=mt.comparison,
                met=mt.met,
                numerator=mt.numerator,
                denominator=mt.denominator,
                complete=mt.complete,
                grade=mt.grade,
                **_rule(mt.rule),
            )
            for mt in self.raw.metrics
        ]

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def awards(self) -> list[Award]:
        if self.raw is None:
            return []
        keys = self.raw.award_keys
        return [
            Award(
                title=aw.title,
                party=aw.party,
                period=aw.period,
                place=aw.place,
                metrics=dict(zip(keys.get(aw.rule[0], ()), aw.metrics, strict=False)),
                complete=aw.complete,
                **_rule(aw.rule),
            )
            for aw in self.raw.awards
        ]

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def classifications(self) -> list[Classification]:
        if self.raw is None:
            return []
        return [
            Classification(
                label=c.rule[0],
                clause=_clause_ref(c.rule[1]),
                clauses=list(c.rule[1]),
                subject=c.subject,
                value=c.value,
                reason=c.reason,
                at=self._at(c.at),
                event=c.event,
                customer=c.customer,
            )
            for c in self.raw.classifications
        ]

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def trace(self) -> list[TraceEntry]:
        """Every state change, penalty, duty and rejection, in order."""
        if self.raw is None:
            return []
        return [
            trusted(
                TraceEntry,
                seq=i,
                at=self._at(t.at),
                kind=t.kind,
                subject=t.subject,
                party=t.party,
                rule=t.rule[0],
                clause=_clause_ref(t.rule[1]),
                clauses=list(t.rule[1]),
                events=list(t.events),
                detail={
                    k: (
                        self._t(v)
                        if k == "due" or type(v) is Instant
                        else list(v)
                        if k == "awaits"
                        else v
                    )
                    for k, v in t.detail.items()
                },
            )
            for i, t in enumerate(self.raw.trace)
        ]

    def owner(self, subject: str, at: str | datetime | None = None) -> str | None:
        """The owner at ``at`` (default: as_of); None before the first ownership."""
        if at is None and self.raw is not None and "ownerships" not in self.__dict__:
            # read from the engine's spans: a service asking one owner need not build the
            # entries of every subject
            found = self.raw.spans.get(subject)
            return found[-1].owner if found and found[-1].end is None else None
        spans = self.ownerships.get(subject, [])
        if not spans:
            return None
        if at is None:
            last = spans[-1]
            return last.owner if last.end is None else None
        when = _instant(at, "at")
        for span in reversed(spans):
            if span.start <= when and (span.end is None or when < span.end):
                return span.owner
        return None

    def ownership(self, subject: str) -> list[OwnershipSpan]:
        return list(self.ownerships.get(subject, []))

    def penalties_of(self, party: str) -> list[Penalty]:
        return [p for p in self.penalties if p.party == party]

    def credits_of(self, party: str) -> list[Credit]:
        return [c for c in self.credits if c.party == party]

    def obligations_of(self, subject: str) -> list[Obligation]:
        return [o for o in self.obligations if o.subject == subject]

    def labels(self, subject: str) -> dict[str, str | None]:
        """Each label's value for the subject at as_of (None: no case applies)."""
        return dict(self.subject_labels.get(subject, {}))

    def metrics_of(self, party: str) -> list[Metric]:
        return [mt for mt in self.metrics if mt.party == party]

    def classification(self, subject: str, label: str) -> Classification | None:
        """The latest classification of ``subject`` by ``label`` (e.g. a return case)."""
        found = [c for c in self.classifications if c.subject == subject and c.label == label]
        return found[-1] if found else None

    @property
    def duplicates(self) -> list[str]:
        return [n.event for n in self.notices if n.kind == "duplicate"]

    @property
    def ignored(self) -> list[str]:
        return [n.event for n in self.notices if n.kind == "ignored"]

    # the text of ``explain``: registered by ``policyengine.tools.explain`` when it is imported
    # (``import policyengine`` does), so this data module imports no tool
    explainer: ClassVar[Callable[[Decision, str], str] | None] = None

    def explain(self, subject: str) -> str:
        """A readable account of how the subject's owner, penalties and duties came about
        (the same as ``policyengine.explain(decision, subject)``)."""
        explainer = type(self).explainer
        if explainer is None:
            raise RuntimeError("import policyengine.tools.explain to explain decisions")
        return explainer(self, subject)

    def snapshot(self, key: bytes | None = None) -> dict[str, Any]:
        """The evaluation's state at ``as_of`` as plain JSON values, for ``Policy.resume``: a
        caller stores it and later applies only the new events instead of the whole history.

        ``key``: seal it with HMAC-SHA256 under that key, so that ``resume(..., key=key)``
        refuses a snapshot edited by anyone without the key (the digest alone detects damage,
        not tampering).

        For decisions of ``policy.evaluate`` (Python backend, unless ``resumable=False``;
        native backend with ``resumable=True``) and ``policy.resume``; ``SnapshotError`` PE504
        otherwise.
        """
        state: Resumable | None = self.__dict__.get(RESUMABLE)
        if state is None:
            raise SnapshotError(
                [
                    Problem(
                        Code.NOT_SNAPSHOTTABLE,
                        "this decision cannot be snapshotted: it was evaluated with "
                        "resumable=False, on the durable backend, on the native one without "
                        "resumable=True, or by evaluate_many",
                        hint="evaluate it with policy.evaluate(events, as_of=...) on the Python "
                        "backend (resumable by default), or resume it with policy.resume(...)",
                    )
                ]
            )
        return state.snapshot(key)

    @property
    def resumed(self) -> ResumeInfo | None:
        """How ``Policy.resume`` made this decision (``mode`` incremental or full, and why);
        None for a decision of ``evaluate``. Not part of the dump: it does not change what
        was decided."""
        state: Resumable | None = self.__dict__.get(RESUMABLE)
        return state.resumed if state is not None else None
