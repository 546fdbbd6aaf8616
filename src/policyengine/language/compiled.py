"""The compiled form of a policy: what stage 3 produces and every evaluator runs.

``CompiledPolicy`` holds the rules (``CompiledRule``), their actions (``CAction``, with
``CPenalty`` and ``CExpect``), labels, metrics and awards, and the field checks of each event
type; conditions and values are closures over a ``Ctx`` (``Getter``, ``Pred``). ``WorldView``
and ``SubjectView`` are what a closure may ask of the evaluator's state. Backend-neutral: the
native engine runs it, and a second evaluator can run the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from policyengine.calendars import STATUTORY, Calendar, Seen
from policyengine.errors import Code, EvaluationError, Location, Problem
from policyengine.language import model as m
from policyengine.times import MAX_US, MIN_US, Duration, iso_utc, next_midnight, roll_to_working_day

BUILTIN_FIELDS = ("id", "type", "at")
OWNER_CHANGED = "owner_changed"  # derived by the engine whenever a subject's owner changes


class SubjectView(Protocol):
    owner: str | None
    owner_since: int | None
    flags: dict[str, Any]
    counters: dict[str, Decimal]
    claims: dict[str, str]


class WorldView(Protocol):
    @property
    def tz(self) -> str: ...

    @property
    def cal(self) -> Calendar: ...

    @property
    def calendar_guesses(self) -> Seen: ...

    def owner_of(self, subject: Any) -> str | None: ...

    def history(self, plan: HistoryPlan, ctx: Ctx) -> Any: ...

    def history_count(self, plan: HistoryPlan, ctx: Ctx) -> int: ...

    def history_any(self, plan: HistoryPlan, ctx: Ctx) -> bool: ...

    def values_total(
        self, plan: HistoryPlan, field: str, flatten: bool, ctx: Ctx
    ) -> tuple[Decimal, Decimal, int] | None: ...

    def subjects_with(self, kind: str, owner: Any = None) -> list[str]: ...

    def subject_view(self, sid: str) -> SubjectView | None: ...

    def owners(self, kind: str) -> list[str]: ...

    def added(self, name: str, key: Any, start: int | None, end: int | None) -> Decimal: ...

    def party_counter(self, party: str, name: str) -> Decimal: ...

    def parties_with(self, name: str) -> list[str]: ...

    def metric_value(self, metric: str, party: Any) -> Decimal | None: ...


class Ctx:
    """What a compiled closure can see; the engine fills it in for each step."""

    __slots__ = ("event", "item", "now", "party", "subj", "subject_id", "trigger", "world")

    def __init__(
        self,
        world: WorldView,
        now: int,
        event: Mapping[str, Any] | None,
        trigger: Mapping[str, Any] | None,
        subject_id: str | None,
        subj: SubjectView | None,
    ) -> None:
        self.world = world
        self.now = now
        self.event = event
        self.trigger = trigger
        self.subject_id = subject_id
        self.subj = subj
        self.item: Any = None
        self.party: Any = None


Getter = Callable[[Ctx], Any]
Pred = Callable[[Ctx], bool]


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    types: tuple[str, ...]
    subject: Getter | None  # value the subject field must equal (uses the per-subject index)
    match: tuple[tuple[str, Getter], ...]
    within: Duration | None
    since: Getter | None = None
    last: int | None = None


@dataclass(frozen=True, slots=True)
class CStep:
    sanction: str
    amount: Getter | None
    salary_days: Getter | None


@dataclass(frozen=True, slots=True)
class CPenalty:
    party: Getter
    steps: tuple[CStep, ...]
    ladder: bool
    ladder_key: str | None
    per_unit: Getter | None
    units: Getter | None
    # how a ladder counts the offences: in a rolling window ending now, or per local period
    window: Duration | None = None
    per: str | None = None  # "day" | "week" | "month" | "year"


@dataclass(frozen=True, slots=True)
class CCredit:
    """A compiled ``credit:``: a positive amount owed to a party."""

    party: Getter
    kind: str
    amount: Getter
    currency: str | None


@dataclass(frozen=True, slots=True)
class Window:
    """A compiled ``within:`` or ``after:``: a duration counted from the trigger, or a value
    computed from it when the duty arises: an instant is the deadline itself, a date its whole
    local day, a duration is counted from the trigger. Which of them the expression can give
    was checked at load; what it gave is checked here, where the trigger is known."""

    duration: Duration | None
    computed: Getter | None = None
    text: str = ""
    where: Location | None = None

    def due(self, ctx: Ctx, start: int) -> tuple[int, bool]:
        world = ctx.world
        if self.duration is not None:
            return self.duration.due(start, world.tz, world.cal, world.calendar_guesses)
        assert self.computed is not None
        value = self.computed(ctx)
        if isinstance(value, Duration):
            return value.due(start, world.tz, world.cal, world.calendar_guesses)
        if isinstance(value, int) and not isinstance(value, bool) and MIN_US <= value <= MAX_US:
            return value, True
        if isinstance(value, str):
            end = next_midnight(value, world.tz)
            if end is not None:
                return end, False
        got = iso_utc(value) if isinstance(value, int) and not isinstance(value, bool) else value
        raise EvaluationError(
            [
                Problem(
                    Code.RUNTIME_TYPE,
                    f"the window {self.text} gave {got!r}, not an instant, a date or a duration",
                    self.where,
                    hint="make sure the events carry the field it reads, or give a default "
                    "with `coalesce`",
                )
            ]
        )


@dataclass(frozen=True, slots=True)
class CStepSpec:
    """One duty of a schedule or workflow, with the expectation's defaults filled in."""

    types: tuple[str, ...]
    where: Pred | None
    within: Window | None
    after: Window | None
    obligation: str | None


@dataclass(frozen=True, slots=True)
class CCancel:
    """One ``cancel_on:`` entry: the event types, the fields (values fixed when the duty or
    timer is created; the subject field among them) and the condition on the event."""

    types: tuple[str, ...]
    match: tuple[tuple[str, Getter], ...]
    where: Pred | None = None


def cancel_types(cancels: tuple[CCancel, ...]) -> tuple[str, ...]:
    """Every event type some entry of ``cancels`` names, once each."""
    return tuple(dict.fromkeys(t for c in cancels for t in c.types))


@dataclass(frozen=True, slots=True)
class CExpect:
    types: tuple[str, ...]
    subject: Getter | None  # creation-time value of the subject field, if matched on
    match: tuple[tuple[str, Getter], ...]
    where: Pred | None
    within: Window | None  # None: no deadline
    after: Window | None
    obligation: str | None
    party: Getter | None
    met: tuple[CAction, ...]
    late: tuple[CAction, ...]
    missed: tuple[CAction, ...]
    cancels: tuple[CCancel, ...] = ()  # the ``cancel_on:`` entries
    steps: tuple[CStepSpec, ...] | None = None
    every: str | None = None
    repeat: bool = False
    consume: bool = False
    in_order: bool = False
    key: Getter | None = None
    key_scope: str | None = None
    about: Getter | None = None
    out_of_order: tuple[CAction, ...] = ()
    roll: bool = False  # a deadline on a day off moves to the next working day

    def deadline(self, window: Window | None, ctx: Ctx, start: int) -> tuple[int, bool] | None:
        """A duty's deadline from ``start``: its window, rolled off days off (``roll``)."""
        if window is None:
            return None
        duration = window.duration
        if duration is not None:  # the common case, once per duty: no call to Window.due
            w = ctx.world
            due = duration.due(start, w.tz, w.cal, w.calendar_guesses)
        else:
            due = window.due(ctx, start)
        return self.rolled(ctx, due) if self.roll else due

    def rolled(self, ctx: Ctx, due: tuple[int, bool]) -> tuple[int, bool]:
        if not self.roll:
            return due
        w, (at, inclusive) = ctx.world, due
        return roll_to_working_day(at, inclusive, w.tz, w.cal, w.calendar_guesses), inclusive

    @property
    def all_types(self) -> tuple[str, ...]:
        if self.steps is None:
            return self.types
        return tuple(dict.fromkeys(t for st in self.steps for t in st.types))

    @property
    def cancel_types(self) -> tuple[str, ...]:
        return cancel_types(self.cancels)


@dataclass(frozen=True, slots=True)
class CTimer:
    """A compiled ``timer:``: when it fires (``when``: ``after`` or ``at``, from the setting
    event), what then runs, its key and its cancelling events. ``scope`` names it stably (its
    place in the policy): live keys are stored under it."""

    when: Window
    then: tuple[CAction, ...]
    scope: str
    key: Getter | None = None
    cancels: tuple[CCancel, ...] = ()

    @property
    def cancel_types(self) -> tuple[str, ...]:
        return cancel_types(self.cancels)


@dataclass(frozen=True, slots=True)
class CAction:
    kind: str
    when: Pred | None = None
    for_each: Getter | None = None
    for_each_subject: Getter | None = None
    value: Getter | None = None
    subject: Getter | None = None
    target: Getter | None = None
    name: str | None = None
    text: str | None = None
    penalty: CPenalty | None = None
    expect: CExpect | None = None
    timer: CTimer | None = None
    credit: CCredit | None = None


@dataclass(slots=True)
class CompiledRule:
    id: str
    clauses: tuple[str, ...]
    order: int
    triggers: tuple[str, ...]
    when: Pred | None
    overrides: frozenset[str]
    actions: tuple[CAction, ...]
    rejects: bool
    location: Location
    every: str | None = None  # "day" | "week" | "month": fires at each local period start
    rank: int = 0  # topological: overriders before the rules they override
    ref: tuple[str, tuple[str, ...]] = ("", ())  # (id, clauses): what decisions record

    @property
    def clause_ref(self) -> str | list[str]:
        return self.clauses[0] if len(self.clauses) == 1 else list(self.clauses)


@dataclass(frozen=True, slots=True)
class CLabel:
    name: str
    ref: tuple[str, tuple[str, ...]]
    cases: tuple[tuple[str, Pred, str | None], ...]  # value, when, reason
    on: tuple[str, ...] = ()  # classify at these events; () = every subject at as_of
    subject: Getter | None = None  # what an event classifies (default: its subject)


@dataclass(frozen=True, slots=True)
class CMetric:
    id: str
    ref: tuple[str, tuple[str, ...]]
    every: str
    parties: Getter
    numerator: Getter
    denominator: Getter | None
    op: str | None
    target: Getter | None
    grades: tuple[tuple[str, Getter | None], ...] = ()


@dataclass(frozen=True, slots=True)
class CAward:
    id: str
    ref: tuple[str, tuple[str, ...]]
    every: str
    title: str | None
    keys: tuple[tuple[str, bool], ...]  # (metric id, highest first?) in ranking order
    winners: int


@dataclass(frozen=True, slots=True)
class FieldCheck:
    name: str
    type: str
    required: bool
    enum: frozenset[Any] | None
    min: float | None
    max: float | None
    default: Any


@dataclass(slots=True)
class CompiledPolicy:
    id: str
    version: str
    timezone: str
    currency: str
    subject_field: str
    unknown_events: str
    clauses: dict[str, m.Clause]
    params: dict[str, Any]
    events: dict[str, tuple[FieldCheck, ...]]
    rules: tuple[CompiledRule, ...]
    by_trigger: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)
    awaited: frozenset[str] = frozenset()  # event types some expectation waits for
    periodic: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)
    labels: tuple[CLabel, ...] = ()
    metrics: tuple[CMetric, ...] = ()
    awards: tuple[CAward, ...] = ()
    param_decls: dict[str, m.Param] = field(default_factory=dict)  # as declared (mutation)
    invariants: tuple[tuple[str, Pred], ...] = ()  # id, holds (per subject at as_of)
    calendar: Calendar = STATUTORY  # working days and business hours (`calendar:`)
    # what later stages derive from the policy once and keep with it (the runtime's facts
    # about the rules: ``engine.World`` reads them on every evaluation)
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def classifying(self) -> dict[str, tuple[CLabel, ...]]:
        """Event type -> the labels its events classify."""
        out: dict[str, list[CLabel]] = {}
        for lab in self.labels:
            for t in lab.on:
                out.setdefault(t, []).append(lab)
        return {t: tuple(v) for t, v in out.items()}


def walk_actions(policy: CompiledPolicy) -> Iterator[CAction]:
    """Every action of the compiled rules, depth first, an expectation's branches (met, late,
    missed, out of order) and a timer's actions right after it: the same order in every
    process that compiled the same policy, so positions in it name closures that cannot be
    stored or sent."""

    def walk(actions: tuple[CAction, ...]) -> Iterator[CAction]:
        for a in actions:
            yield a
            e = a.expect
            if e is not None:
                for branch in (e.met, e.late, e.missed, e.out_of_order):
                    yield from walk(branch)
            if a.timer is not None:
                yield from walk(a.timer.then)

    for rule in policy.rules:
        yield from walk(rule.actions)
