"""Decision: what an evaluation concluded, as pydantic models that serialise to JSON as they are.

The engine works on plain tuples and dicts for speed; this module is the boundary where
those become validated, documented, JSON-ready objects. Every entry names the rule and
clause that produced it and the event ids that prove it, so a decision can be argued with.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .times import parse_instant

ObligationStatus = Literal["met", "late", "open", "overdue"]
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
    due: datetime
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


class Notice(_Frozen):
    """Something the caller should know: input not applied (a duplicate id, an ignored unknown
    type), or two rules deciding one owner differently in one step with no precedence."""

    event: str
    kind: Literal["duplicate", "ignored", "conflict"]
    detail: str


class TraceEntry(_Frozen):
    seq: int
    at: datetime
    kind: Literal[
        "owner", "claim", "penalty", "obligation", "flag", "counter", "reject", "expectation"
    ]
    subject: str | None = None
    party: str | None = None
    rule: str
    clause: ClauseRef
    clauses: list[str]
    events: list[str]
    detail: dict[str, Any] = Field(default_factory=dict)


def _instant(value: str | datetime, what: str) -> datetime:
    return parse_instant(value, what)


class Decision(_Frozen):
    """Everything decided, as of ``as_of``."""

    policy: str
    version: str
    as_of: datetime | None
    ownerships: dict[str, list[OwnershipSpan]] = Field(default_factory=dict)
    penalties: list[Penalty] = Field(default_factory=list)
    obligations: list[Obligation] = Field(default_factory=list)
    rejected: list[Rejection] = Field(default_factory=list)
    notices: list[Notice] = Field(default_factory=list)
    flags: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per subject, the flags set at as_of"
    )
    counters: dict[str, dict[str, Decimal]] = Field(
        default_factory=dict, description="per party (or subject), the counters at as_of"
    )
    trace: list[TraceEntry] = Field(default_factory=list)
    clauses: dict[str, str] = Field(
        default_factory=dict, description="clause id -> reading, for explanations"
    )

    def owner(self, subject: str, at: str | datetime | None = None) -> str | None:
        """The owner at ``at`` (default: as_of); None before the first ownership."""
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

    def obligations_of(self, subject: str) -> list[Obligation]:
        return [o for o in self.obligations if o.subject == subject]

    @property
    def duplicates(self) -> list[str]:
        return [n.event for n in self.notices if n.kind == "duplicate"]

    @property
    def ignored(self) -> list[str]:
        return [n.event for n in self.notices if n.kind == "ignored"]

    def explain(self, subject: str) -> str:
        """A readable account of how the subject's owner, penalties and duties came about."""
        from .explain import explain_subject

        return explain_subject(self, subject)
