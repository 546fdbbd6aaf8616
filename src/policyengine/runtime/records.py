"""The engine's records: what an evaluation decided, as named rows, declared once.

The engine appends them; the decision, the snapshot codec and the parallel merge read them by
field name (never by position). Rows are tuples (``NamedTuple``): cheap to create in the inner
loop and immutable. The two records a later step changes (an ownership span gets its end, a
duty's obligation its status) are slotted dataclasses. Every row names its rule as a
``RuleRef`` in a field called ``rule``: the snapshot codec stores those as references.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal, NamedTuple

# (rule id, clause ids): how every record names the rule, label, metric or award behind it
RuleRef = tuple[str, tuple[str, ...]]
# ids of the events behind a change: a tuple, shared by every record it explains (immutable,
# and untracked by the cyclic GC, which otherwise rescans every trace entry of a long history)
Causes = tuple[str, ...]
Comparison = Literal["ge", "gt", "le", "lt"]

# a duty's state (``Pending.state``) and its obligation's status: plain ints, as JSON keeps them
OPEN, MET, MISSED, LATE, CANCELLED = range(5)
STATUS: Final[dict[int, str]] = {
    OPEN: "open",
    MET: "met",
    MISSED: "overdue",
    LATE: "late",
    CANCELLED: "cancelled",
}


class TraceRow(NamedTuple):
    """One state change, penalty, duty or rejection, in the order the engine made it."""

    at: int
    kind: str
    subject: str | None
    party: str | None
    rule: RuleRef
    events: Causes
    detail: dict[str, Any]


class PenaltyRow(NamedTuple):
    party: str
    sanction: str
    amount_min: Decimal | None
    amount_max: Decimal | None
    currency: str | None
    units: int | None
    salary_days: Decimal | None
    offence: int
    subject: str | None
    at: int
    rule: RuleRef
    events: Causes


class CreditRow(NamedTuple):
    """A positive amount owed to a party (``credit:``): a commission, a bonus, a reward."""

    party: str
    kind: str
    amount: Decimal
    currency: str
    subject: str | None
    event: str | None
    at: int
    rule: RuleRef
    events: Causes


class ViolationRow(NamedTuple):
    what: str
    party: str | None
    subject: str | None
    event: str | None
    at: int
    rule: RuleRef
    events: Causes


class RejectionRow(NamedTuple):
    event: str
    at: int
    rule: RuleRef
    reason: str


class ClassificationRow(NamedTuple):
    rule: RuleRef  # the label
    subject: str  # what is classified: a case, an order, a customer
    value: Any
    reason: str | None
    event: str
    at: int
    customer: str | None  # the subject of the classifying event


class MetricRow(NamedTuple):
    rule: RuleRef  # the metric
    party: str
    period: str
    value: Decimal
    target: Decimal | None
    comparison: Comparison | None
    met: bool | None
    numerator: Decimal
    denominator: Decimal | None
    complete: bool
    grade: str | None


class AwardRow(NamedTuple):
    rule: RuleRef  # the award
    title: str | None
    party: str
    period: str
    place: int
    metrics: list[Decimal | None]  # the ranking metric's value, then each tie-break's
    complete: bool


class ConflictRow(NamedTuple):
    """Two rules deciding one owner differently in one step, with no precedence declared."""

    event: str
    detail: str


@dataclass(slots=True)
class SpanRecord:
    """One owner over ``[start, end)``; ``end`` is set when the ownership ends."""

    owner: str
    start: int
    end: int | None
    rule: RuleRef
    events: Causes


@dataclass(slots=True)
class ObligationRecord:
    """A duty's obligation; ``status`` (an int above), ``met_by`` and ``met_at`` change as the
    duty is met, missed or cancelled."""

    rule: RuleRef
    what: str
    party: Any
    subject: str | None
    opened: int
    window_start: int | None
    due: int | None
    due_inclusive: bool
    status: int
    met_by: str | None
    met_at: int | None
    events: Causes
    window_start_inclusive: bool


class ObligationRow(NamedTuple):
    """An obligation as decisions show it (status in words, party as text)."""

    rule: RuleRef
    what: str
    party: str | None
    subject: str | None
    opened: int
    window_start: int | None
    due: int | None
    due_inclusive: bool
    status: str
    met_by: str | None
    met_at: int | None
    events: Causes
    window_start_inclusive: bool


def reported(obligations: list[ObligationRecord]) -> list[ObligationRow]:
    """Obligation records as decisions show them (a cancelled duty too: ``met_by`` names the
    cancelling event)."""
    return [
        ObligationRow(
            o.rule,
            o.what,
            None if o.party is None else str(o.party),
            o.subject,
            o.opened,
            o.window_start,
            o.due,
            o.due_inclusive,
            STATUS[o.status],
            o.met_by,
            o.met_at,
            o.events,
            o.window_start_inclusive,
        )
        for o in obligations
    ]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Rows made in bulk (unpickled and merged shards, the native core's hand-back) are tens of
    thousands of small acyclic tuples: the cyclic collector's repeated passes over them cost
    several times the work itself and can free nothing. Paused for that span only, and
    restored as it was."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
