"""The engine's state, declared once.

``EngineState`` lists every attribute the ``World`` has, each with its role: rebuilt from the
policy, state that later events read or change (with the shape the snapshot codec stores it
in), an append-only record (with its row type), or set by one run. The ``World`` gets its
``__slots__`` and its initial values from this declaration, so an attribute that is not
declared cannot exist; the snapshot codec and the parallel shards' bookkeeping read the same
declaration, so a new field cannot be forgotten by either. The objects the state holds
(subjects, duties, chains, timers) declare their fields the same way (``FIELDS``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Final, Literal, get_type_hints

from policyengine.calendars import Calendar
from policyengine.errors import Code, EvaluationError, Problem
from policyengine.language.compiler import CExpect, CompiledPolicy, CompiledRule, CTimer, Ctx
from policyengine.runtime.events import Event
from policyengine.runtime.records import (
    OPEN,
    AwardRow,
    ClassificationRow,
    ConflictRow,
    CreditRow,
    MetricRow,
    ObligationRecord,
    PenaltyRow,
    RejectionRow,
    SpanRecord,
    TraceRow,
    ViolationRow,
)
from policyengine.times import (
    MAX_US,
    MIN_US,
    add_months,
    from_dt,
    iso_utc,
    out_of_range,
    to_local,
    to_pendulum,
)

Role = Literal["policy", "state", "record", "run"]


@dataclass(frozen=True, slots=True)
class Declared:
    """One attribute of the World: what it is for, and how the layers above treat it."""

    role: Role
    # state: how the snapshot codec stores it (``backends.snapshot`` has one coder per shape)
    shape: str | None = None
    new: Callable[[], Any] | None = None  # its value in a new World (state and records)
    row: type | None = None  # records: the row type
    # records a resumed World does not read back (a decision parses them when read)
    lazy: bool = False
    # counted at the start of every step by the parallel shards (merge by position)
    stepped: bool = False
    # changed by ``finish`` (the measures at the horizon): a snapshot stores it as before
    at_finish: bool = False


POLICY: Final = Declared("policy")
RUN: Final = Declared("run")


def keep(
    shape: str, new: Callable[[], Any], *, stepped: bool = False, at_finish: bool = False
) -> Declared:
    return Declared("state", shape, new, stepped=stepped, at_finish=at_finish)


def record(
    row: type, *, lazy: bool = False, stepped: bool = False, at_finish: bool = False
) -> Declared:
    return Declared("record", "rows", list, row, lazy, stepped, at_finish)


# the kinds of an object field, for the snapshot codec (see ``FIELDS`` below)
FieldKind = Literal[
    "value",  # a value as tagged JSON
    "pairs",  # a dict whose order matters: a list of pairs
    "matches",  # a tuple of (field, value) pairs
    "spans",  # a list of SpanRecord
    "expect",  # a compiled expectation: stored by its place in the policy
    "rule",  # a compiled rule: stored by its id
    "event",  # an event (or None): stored once in the events table
    "chain",  # a Chain (or None): stored once in the chains table
    "pendings",  # a list of Pending: stored once each in the duties table
    "obligation",  # an ObligationRecord (or None): stored by its place in the records
    "key",  # a live-key of ``expect(key=...)``
    "object",  # an object of a class with FIELDS, stored inline (a Close's Tick)
    "timer",  # a compiled timer (``timer:``): stored by its place in the policy
    "derived",  # recomputed from the other fields when read back
]


class Subject:
    """Mutable state of one subject (a customer)."""

    FIELDS: ClassVar[Mapping[str, FieldKind]] = {
        "id": "value",
        "owner": "value",
        "owner_since": "value",
        "flags": "pairs",
        "counters": "pairs",
        "claims": "pairs",
        "spans": "spans",
    }
    __slots__ = tuple(FIELDS)

    def __init__(self, sid: str) -> None:
        self.id = sid
        self.owner: str | None = None
        self.owner_since: int | None = None
        self.flags: dict[str, Any] = {}
        self.counters: dict[str, Decimal] = {}
        self.claims: dict[str, str] = {}
        self.spans: list[SpanRecord] = []


class Chain:
    """The duties one ``expect`` owes from one trigger: schedule steps, or a recurring duty.

    Renewals are rebuilt from the same context (the creating event as ``$event``), so match and
    party are evaluated afresh against the subject's state at each renewal.
    """

    FIELDS: ClassVar[Mapping[str, FieldKind]] = {
        "spec": "expect",
        "rule": "rule",
        "ctx_event": "event",
        "ctx_trigger": "event",
        "ctx_item": "value",
        "subject_id": "value",
        "key": "key",
        "stopped": "value",
        "members": "pendings",
    }
    __slots__ = tuple(FIELDS)

    def __init__(self, spec: CExpect, rule: CompiledRule, ctx: Ctx, key: Any) -> None:
        self.spec = spec
        self.rule = rule
        self.ctx_event = ctx.event
        self.ctx_trigger = ctx.trigger
        self.ctx_item = ctx.item
        self.subject_id = ctx.subject_id
        self.key = key
        self.stopped = False
        self.members: list[Pending] = []

    def live(self) -> bool:
        if self.stopped:
            return False
        if self.spec.every is not None or self.spec.repeat:
            return True
        return any(p.state == OPEN for p in self.members)

    def members_read(self) -> bool:
        """Whether the engine reads the chain's duties: a schedule's, to know whether it is
        live and which steps came first; a recurring chain's (every period's duty so far)
        never, being live until stopped (a snapshot leaves them out)."""
        spec = self.spec
        return spec.steps is not None or (spec.every is None and not spec.repeat)


class Pending:
    """An expectation waiting for its event, or past due and watched for a late one."""

    FIELDS: ClassVar[Mapping[str, FieldKind]] = {
        "spec": "expect",
        "rule": "rule",
        "trigger": "event",
        "subject_id": "value",
        "state": "value",
        "match": "matches",
        "cancel": "value",  # per ``cancel_on`` entry, its (field, value) pairs
        "due": "value",
        "inclusive": "value",
        "start": "value",
        "start_excl": "value",
        "chain": "chain",
        "step": "value",
        "party": "value",
        "obligation": "obligation",
        "sv": "value",
        "types": "derived",
        "where": "derived",
    }
    __slots__ = tuple(FIELDS)

    def __init__(
        self, spec: CExpect, rule: CompiledRule, trigger: Mapping[str, Any], subject_id: str | None
    ) -> None:
        self.spec = spec
        self.rule = rule
        self.trigger = trigger
        self.subject_id = subject_id
        self.state = OPEN
        self.match: tuple[tuple[str, Any], ...] = ()
        self.cancel: tuple[tuple[tuple[str, Any], ...], ...] = ()
        self.due: int | None = 0
        self.inclusive = True
        self.start: int | None = None
        self.start_excl = False
        self.chain: Chain | None = None
        self.step = 0
        self.types = spec.types
        self.where = spec.where
        self.party: Any = None
        self.obligation: ObligationRecord | None = None
        self.sv: Any = None  # the subject value it is indexed under (None: matched on no subject)

    def derive(self) -> None:
        """The derived fields from the others: a schedule step awaits its own types."""
        steps = self.spec.steps
        if steps:
            self.types, self.where = steps[self.step].types, steps[self.step].where
        else:
            self.types, self.where = self.spec.types, self.spec.where


class Tick:
    """The start of a calendar period, for rules declared with ``every:``."""

    FIELDS: ClassVar[Mapping[str, FieldKind]] = {
        "unit": "value",
        "start": "value",
        "end": "value",
        "label": "value",
    }
    __slots__ = tuple(FIELDS)

    def __init__(self, unit: str, start: int, end: int, label: str) -> None:
        self.unit = unit
        self.start = start
        self.end = end
        self.label = label


class Renew:
    """A recurring duty's next calendar period begins."""

    FIELDS: ClassVar[Mapping[str, FieldKind]] = {"chain": "chain", "at": "value"}
    __slots__ = tuple(FIELDS)

    def __init__(self, chain: Chain, at: int) -> None:
        self.chain = chain
        self.at = at


class Close:
    """The end of a metric period: measure it with the state as it stands."""

    FIELDS: ClassVar[Mapping[str, FieldKind]] = {"tick": "object"}
    __slots__ = tuple(FIELDS)

    def __init__(self, tick: Tick) -> None:
        self.tick = tick


class Alarm:
    """A timer (``timer:``) set by an event: its ``then`` actions run ``at`` that instant
    unless cancelled or replaced first. Pending ones are kept in ``EngineState.alarms`` under
    ``seq`` (also their tie-break in the heap), so a cancelling event or a timer with the same
    key finds them; the heap entry of one that is no longer there is skipped."""

    FIELDS: ClassVar[Mapping[str, FieldKind]] = {
        "spec": "timer",
        "rule": "rule",
        "trigger": "event",
        "subject_id": "value",
        "at": "value",
        "inclusive": "value",
        "seq": "value",
        "cancel": "value",  # per ``cancel_on`` entry, its (field, value) pairs
        "key": "value",  # (scope, key value), or None
    }
    __slots__ = tuple(FIELDS)

    def __init__(
        self,
        spec: CTimer,
        rule: CompiledRule,
        trigger: Mapping[str, Any],
        subject_id: str | None,
        at: int,
        inclusive: bool,
        seq: int,
    ) -> None:
        self.spec = spec
        self.rule = rule
        self.trigger = trigger
        self.subject_id = subject_id
        self.at = at
        self.inclusive = inclusive
        self.seq = seq
        self.cancel: tuple[tuple[tuple[str, Any], ...], ...] = ()
        self.key: tuple[str, Any] | None = None


Timer = Pending | Tick | Renew | Close | Alarm
# the timer heap's entries: (key, tie-break, entry); key 2*due (+1 inclusive): see fire_until
TimerEntry = tuple[int, int, Timer]


def period_of(unit: str, us: int, tz: str) -> Tick:
    """The local calendar period (day, ISO week from Monday, month, year) that contains ``us``.
    Raises EvaluationError (PE307) when the period ends past the supported range."""
    try:
        tick = _period_of(unit, us, tz)
    except (OverflowError, ValueError):  # e.g. the month after 9999-12
        tick = None
    if tick is None or not (tick.start >= MIN_US and tick.end <= MAX_US):
        raise out_of_range(f"the {unit} period of {iso_utc(us)}")
    return tick


def _period_of(unit: str, us: int, tz: str) -> Tick:
    local = to_local(us, tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return Tick(
            unit,
            from_dt(midnight),
            from_dt(midnight + timedelta(days=1)),
            midnight.date().isoformat(),
        )
    if unit == "week":
        start = midnight - timedelta(days=midnight.weekday())
        year, week, _ = start.isocalendar()
        return Tick(
            unit, from_dt(start), from_dt(start + timedelta(weeks=1)), f"{year}-W{week:02d}"
        )
    if unit == "year":  # a ladder's ``per: year``
        first = midnight.replace(month=1, day=1)
        return Tick(unit, from_dt(first), from_dt(add_months(first, 12)), f"{first:%Y}")
    start = midnight.replace(day=1)
    return Tick(unit, from_dt(start), from_dt(add_months(start, 1)), f"{start:%Y-%m}")


# the most calendar years between a history's first event and any event or its horizon:
# recurring duties and period ticks are owed for every period up to the horizon, so one
# mistyped year (9026 for 2026) would otherwise create hundreds of thousands of duties
MAX_SPAN_YEARS: Final = 20


def span_years(years: object) -> int | None:
    """A ``max_span_years`` argument, checked: a positive int, or None for no limit."""
    if years is not None and (type(years) is not int or years < 1):
        raise ValueError(f"max_span_years must be a positive int or None, not {years!r}")
    return years


def check_span(first: int, years: int, tz: str, events: list[Event], horizon: int | None) -> None:
    """Refuse (PE308) events or a horizon more than ``years`` calendar years after ``first``,
    before any timer fires: nothing is created for those years."""
    try:
        end = from_dt(add_months(to_local(first, tz), 12 * years))
    except (ValueError, OverflowError):  # past year 9999: nothing can be after it
        return
    last = max(events[-1]["at"] if events else first, horizon or first)
    if last <= end:
        return
    bad = next((ev for ev in events if ev["at"] > end), None)
    at = bad["at"] if bad is not None else last
    what = f"event {bad['id']!r}" if bad is not None else "as_of"
    raise EvaluationError(
        [
            Problem(
                Code.SPAN_TOO_LONG,
                f"the history spans more than {years} years: {what} at "
                f"{to_pendulum(at, tz).isoformat()} is after "
                f"{to_pendulum(end, tz).isoformat()}, {years} years after the first event "
                f"at {to_pendulum(first, tz).isoformat()} (a mistyped year?)",
                hint=f"correct the date, or pass max_span_years= more than {years} "
                "(None: no limit) to Policy.evaluate, Policy.resume or Policy.evaluate_many",
                event_id=bad["id"] if bad is not None else None,
            )
        ]
    )


class Hooks:
    """Where another component observes (or, for matching and sentencing, decides) what the
    engine does: the durable backend matches rules, the parallel shards record each step's
    place in the global order. The engine calls a hook only when one is given, and never
    changes its own steps for it; the base class does what the engine does alone."""

    def bind(self, world: Any) -> None:
        """The World these hooks observe (called once, when it is created)."""

    def match(self, rules: tuple[CompiledRule, ...], ctx: Ctx) -> list[CompiledRule]:
        """The rules among ``rules`` whose ``when`` holds for ``ctx`` (state before the step)."""
        return [r for r in rules if r.when is None or r.when(ctx)]

    def resolved(self, matched: list[CompiledRule], ctx: Ctx) -> None:
        """The rules a step applies, after overrides."""

    def event(self, ev: Event) -> None:
        """An input event is about to be applied (not a derived ``owner_changed``)."""

    def timer(self, key: int, entry: Timer) -> None:
        """A timer-heap entry is about to fire (``key`` orders it: see ``fire_until``)."""

    def first_period(self, first: int) -> int:
        """The instant the calendar periods start from (default: the first event's)."""
        return first

    def duty(self, p: Pending, chain: Chain | None, obligation: int | None) -> None:
        """A duty was created; ``obligation``: the index of its record, if it has one."""

    def closing(self, tick: Tick, at: int, complete: bool) -> None:
        """A metric period is about to be measured."""

    def sentence(
        self,
        world: Any,
        p: Any,
        party: str,
        count: int,
        ctx: Ctx,
        rule: CompiledRule,
        causes: tuple[str, ...],
    ) -> tuple[PenaltyRow, dict[str, Any]]:
        """The penalty row and trace detail of the party's offence ``count + 1`` (the
        engine's ``World.sentence`` of the ladder step it reaches)."""
        steps = len(p.steps) - 1
        result: tuple[PenaltyRow, dict[str, Any]] = world.sentence(
            p, min(count, steps), count + 1, party, ctx, rule, causes
        )
        return result

    def penalized(self, a: Any, ctx: Ctx, key: tuple[str, str], row: int, trace: int) -> None:
        """A penalty row (index ``row``) and its trace entry (``trace``) were written."""

    def added(
        self, a: Any, ctx: Ctx, key: tuple[str, str], by: Decimal, at: int, trace: int
    ) -> None:
        """A party counter grew by ``by`` (``key``: party, counter)."""


class EngineState:
    """Every attribute of one evaluation's World, with its role (see the module doc)."""

    __slots__ = ()

    # rebuilt from the policy by ``World.__init__``
    policy: Annotated[CompiledPolicy, POLICY]
    hooks: Annotated[Hooks | None, POLICY]
    tz: Annotated[str, POLICY]
    cal: Annotated[Calendar, POLICY]  # the policy's working days and business hours
    sf: Annotated[str, POLICY]
    classifying: Annotated[Mapping[str, Any], POLICY]
    emits_owner: Annotated[bool, POLICY]
    plain: Annotated[frozenset[int], POLICY]
    # ladder keys some penalty counts in a window or per period: their offences are logged
    offence_keys: Annotated[frozenset[str], POLICY]

    # what later events can read or change
    subjects: Annotated[dict[str, Subject], keep("subjects", dict, stepped=True)]
    owned_by: Annotated[dict[str, set[str]], keep("sets", dict)]
    claims_by: Annotated[dict[str, set[str]], keep("sets", dict)]
    party_counters: Annotated[dict[str, dict[str, Decimal]], keep("maps", dict)]
    ladders: Annotated[dict[tuple[str, str], int], keep("map", dict)]
    # (ladder key, party) -> the instants of its offences, for the keys in ``offence_keys``
    offence_log: Annotated[dict[tuple[str, str], list[int]], keep("map", dict)]
    hist_subj: Annotated[dict[tuple[Any, str], list[Event]], keep("event_lists", dict)]
    hist_type: Annotated[dict[str, list[Event]], keep("event_lists", dict)]
    waiting: Annotated[dict[tuple[str, Any], list[Pending]], keep("duties:open", dict)]
    overdue: Annotated[dict[tuple[str, Any], list[Pending]], keep("duties:missed", dict)]
    cancels: Annotated[dict[tuple[str, Any], list[Pending]], keep("duties:cancelling", dict)]
    timers: Annotated[list[TimerEntry], keep("timers", list)]
    # pending timers (``timer:``) by their seq; the seqs under each cancelling (type, subject
    # value) and each live (scope, key)
    alarms: Annotated[dict[int, Alarm], keep("alarms", dict)]
    alarm_cancels: Annotated[dict[tuple[str, Any], list[int]], keep("map", dict)]
    alarm_keys: Annotated[dict[tuple[str, Any], int], keep("map", dict)]
    live_keys: Annotated[dict[tuple[int | str, Any], Chain], keep("live_keys", dict)]
    counter_log: Annotated[dict[tuple[str, str], list[tuple[int, Decimal]]], keep("map", dict)]
    event_labels: Annotated[dict[str, dict[str, Any]], keep("maps", dict)]
    period_values: Annotated[dict[tuple[str, str], Decimal], keep("map", dict, at_finish=True)]
    fired: Annotated[dict[str, int], keep("map", dict)]  # rule id -> times its trigger matched
    seq: Annotated[int, keep("value", int)]  # the timer heap's tie-break counter
    step_owner: Annotated[dict[str, tuple[str | None, str]], keep("map", dict)]
    rejected: Annotated[bool, keep("value", bool)]
    # years whose working days were counted Monday-Friday (``outside: weekdays``): a notice
    calendar_guesses: Annotated[dict[int, bool], keep("map", dict)]
    now: Annotated[int, keep("value", int, at_finish=True)]
    # the instant the history's span is measured from (``max_span``): its first event's, or
    # the whole history's for a shard (``Hooks.first_period``)
    first_at: Annotated[int | None, keep("value", lambda: None)]

    # what was decided: append-only rows
    trace: Annotated[list[TraceRow], record(TraceRow, lazy=True, stepped=True)]
    obligations: Annotated[
        list[ObligationRecord], record(ObligationRecord, lazy=True, stepped=True)
    ]
    penalties: Annotated[list[PenaltyRow], record(PenaltyRow, lazy=True, stepped=True)]
    credits: Annotated[list[CreditRow], record(CreditRow, lazy=True, stepped=True)]
    violations: Annotated[list[ViolationRow], record(ViolationRow, lazy=True, stepped=True)]
    rejections: Annotated[list[RejectionRow], record(RejectionRow, lazy=True, stepped=True)]
    classifications: Annotated[list[ClassificationRow], record(ClassificationRow, stepped=True)]
    conflicts: Annotated[list[ConflictRow], record(ConflictRow, stepped=True)]
    metric_rows: Annotated[list[MetricRow], record(MetricRow, at_finish=True)]
    award_rows: Annotated[list[AwardRow], record(AwardRow, at_finish=True)]

    # set by one run: the horizon, derived events of the current step, the measures of
    # ``finish`` (labels, broken invariants) and what they replaced
    horizon: Annotated[int | None, RUN]
    derived: Annotated[list[Event], RUN]
    labels: Annotated[dict[str, dict[str, Any]], RUN]
    broken: Annotated[dict[str, list[str]], RUN]  # declared invariant -> subjects breaking it
    before_finish: Annotated[dict[str, Any] | None, RUN]
    # the most calendar years from ``first_at`` to any event or the horizon (None: no limit)
    max_span: Annotated[int | None, RUN]
    # derived from the history lists, rebuilt on first use by a resumed World (issue 14):
    # (plan, tag, subject value) -> the events scanned so far and their counts or totals
    memo: Annotated[dict[tuple[int, Any, Any], Any], RUN]
    scanned: Annotated[int, RUN]  # events the history queries have scanned (for the tests)


def _declare() -> dict[str, Declared]:
    hints = get_type_hints(EngineState, include_extras=True)
    out: dict[str, Declared] = {}
    for name, hint in hints.items():
        found = [x for x in getattr(hint, "__metadata__", ()) if isinstance(x, Declared)]
        if len(found) != 1:
            raise TypeError(f"EngineState.{name} must declare its role once")
        out[name] = found[0]
    return out


# name -> declaration, in declaration order: what the World, the snapshot codec and the
# shards' bookkeeping are built from
STATE: Final[Mapping[str, Declared]] = _declare()
# the lists the shards count at each step, in this order (``ShardHooks.marks``)
STEPPED: Final[tuple[str, ...]] = tuple(n for n, d in STATE.items() if d.stepped)
RECORDS: Final[tuple[str, ...]] = tuple(n for n, d in STATE.items() if d.role == "record")
