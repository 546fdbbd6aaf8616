"""Stage 2, validate: the policy language as pydantic models.

These models are the single definition of the language: the validator, the compiler's
input types and (later) the editor's JSON Schema all come from them. Conditions, operands
and actions are single-key mappings (``{eq: [a, b]}``, ``{assign: $event.employee}``); a
callable discriminator picks the model from the key, so a misspelt operator is reported as
one "unknown operator" error at its position instead of a wall of union errors.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from typing_extensions import TypeAliasType

from .times import Duration, parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- operands (values)

REF_ROOTS = ("event", "trigger", "subject", "params", "now", "item", "party")
_REF_RE = re.compile(
    r"^\$(event|trigger|subject|params|now|item|party)(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)


class OwnerOf(_Strict):
    """The owner of another subject at this instant (HX-RM-5: the referring old customer)."""

    owner_of: Operand


class Claims(_Strict):
    """Employees holding claims of a status on the current subject, as a list."""

    claims: Literal["open", "lapsed", "released", "any"]


class Subjects(_Strict):
    """Every known subject with an owner of a kind, sorted by id (for ``for_each_subject``).

    ``owner`` narrows to one owner's subjects (through the owner index, so it is cheap);
    ``where`` keeps those for which a condition holds, with ``$subject`` bound to each.
    """

    subjects: Literal["any", "owned", "owned_by_employee", "company"]
    owner: Operand = None
    where: Condition | None = None


class Owners(_Strict):
    """Distinct current owners, sorted: ``employee`` leaves out the company pool."""

    owners: Literal["employee", "any"]


class Coalesce(_Strict):
    """The first value that is not null (``{coalesce: [$event.manager, department_manager]}``)."""

    coalesce: list[Operand]


class Date(_Strict):
    """The local calendar date (``YYYY-MM-DD`` in the policy timezone) of an instant."""

    date: Operand


class Values(_Strict):
    """One field of the matching earlier events, newest first (with ``last``: at most N)."""

    values: ValuesQuery


class Added(_Strict):
    """How much a counter grew during the current period (metrics): ``$party``'s counter if a
    party is bound, else the subject's."""

    added: str


class CounterValue(_Strict):
    """A counter's value now: ``$party``'s if a party is bound, else the subject's."""

    counter: str


class PartiesWith(_Strict):
    """Parties whose counter is not zero, sorted (who a metric measures)."""

    parties_with: str


class FlagOf(_Strict):
    """A flag of another subject (``{flag_of: [$event.referred_by, specialist]}``)."""

    flag_of: list[Operand]

    @field_validator("flag_of")
    @classmethod
    def _two(cls, v: list[Any]) -> list[Any]:
        if len(v) != 2 or not isinstance(v[1], str):
            raise ValueError("flag_of takes [subject, flag name]")
        return v


class Ago(_Strict):
    """The instant a duration before now, read on the calendar (``{ago: 1 month}``)."""

    ago: str


class Plus(_Strict):
    """An instant plus a duration, forward on the calendar (``{plus: [$subject.owner_since,
    1 month]}``): the exact inverse of a window, so month ends clamp as windows do."""

    plus: list[Operand]

    @field_validator("plus")
    @classmethod
    def _two(cls, v: list[Any]) -> list[Any]:
        if len(v) != 2 or not isinstance(v[1], str):
            raise ValueError("plus takes [instant, duration], e.g. [$event.at, 2 days]")
        return v


class Len(_Strict):
    len: Operand


class Count(_Strict):
    """How many earlier events match a history query."""

    count: HistoryQuery


class Sum(_Strict):
    """The sum of numbers: ``{sum: [a, b]}``, or of a list value such as ``{sum: {values: ...}}``.

    List values inside are flattened one level and nulls skipped, so "spend so far plus this
    expense" is ``{sum: [{values: {...}}, $event.amount]}``. Exact decimals; empty is 0.
    """

    sum: Operand


class MinOf(_Strict):
    """The least of numbers or of a list value (null when there is none)."""

    min: Operand


class MaxOf(_Strict):
    """The greatest of numbers or of a list value (null when there is none)."""

    max: Operand


class Avg(_Strict):
    """The mean of numbers or of a list value (null when there is none): an average rating."""

    avg: Operand


class First(_Strict):
    """The first element of a list value (null when empty): the newest of a ``values`` query."""

    first: Operand


def _two_operands(name: str, v: list[Any]) -> list[Any]:
    if len(v) != 2:
        raise ValueError(f"{name} takes two values, e.g. {{{name}: [$event.amount, 100]}}")
    return v


class Add(_Strict):
    """``a + b + ...``, exact; null if any is null (a weighted score that needs every part).
    Use ``sum`` to add up a list and skip what is missing."""

    add: list[Operand] = Field(min_length=2)


class Sub(_Strict):
    """``a - b``, exact; null if either is null."""

    sub: list[Operand]

    @field_validator("sub")
    @classmethod
    def _two(cls, v: list[Any]) -> list[Any]:
        return _two_operands("sub", v)


class Mul(_Strict):
    """The product of two or more numbers, exact; null if any is null (weights, tolerances)."""

    mul: list[Operand] = Field(min_length=2)


class Div(_Strict):
    """``a / b``, exact; null if either is null or ``b`` is zero (a rate with no cases)."""

    div: list[Operand]

    @field_validator("div")
    @classmethod
    def _two(cls, v: list[Any]) -> list[Any]:
        return _two_operands("div", v)


class Get(_Strict):
    """One entry of a mapping: ``{get: [$params.fine_by_severity, $event.severity]}`` (null if
    the key is absent), for parameter tables and mapping values."""

    get: list[Operand]

    @field_validator("get")
    @classmethod
    def _two(cls, v: list[Any]) -> list[Any]:
        return _two_operands("get", v)


class MetricOf(_Strict):
    """Inside a metric or award: another metric's value for ``$party`` in the same period
    (``{metric: resolution-rate}``); metrics are measured in file order, so name an earlier one."""

    metric: str


Literal_ = str | int | float | bool | None


OPERAND_KEYS = (
    "owner_of",
    "claims",
    "subjects",
    "owners",
    "len",
    "count",
    "values",
    "ago",
    "plus",
    "coalesce",
    "date",
    "added",
    "counter",
    "parties_with",
    "flag_of",
    "sum",
    "min",
    "max",
    "avg",
    "first",
    "add",
    "sub",
    "mul",
    "div",
    "get",
    "metric",
)


def _operand_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        if len(value) == 1:
            return str(next(iter(value)))
        return "subjects" if "subjects" in value else "?"
    if isinstance(value, BaseModel):
        return type(value).__name__.lower()
    if isinstance(value, list):
        return "list"
    return "literal"


if TYPE_CHECKING:  # mypy cannot follow a recursive alias through pydantic's Annotated union
    Operand = Any
else:
    Operand = TypeAliasType(
        "Operand",
        Annotated[
            Annotated[Literal_, Tag("literal")]
            | Annotated[list["Operand"], Tag("list")]
            | Annotated[OwnerOf, Tag("owner_of")]
            | Annotated[Claims, Tag("claims")]
            | Annotated[Subjects, Tag("subjects")]
            | Annotated[Owners, Tag("owners")]
            | Annotated[Len, Tag("len")]
            | Annotated[Count, Tag("count")]
            | Annotated[Values, Tag("values")]
            | Annotated[Ago, Tag("ago")]
            | Annotated[Plus, Tag("plus")]
            | Annotated[Coalesce, Tag("coalesce")]
            | Annotated[Date, Tag("date")]
            | Annotated[Added, Tag("added")]
            | Annotated[CounterValue, Tag("counter")]
            | Annotated[PartiesWith, Tag("parties_with")]
            | Annotated[FlagOf, Tag("flag_of")]
            | Annotated[Sum, Tag("sum")]
            | Annotated[MinOf, Tag("min")]
            | Annotated[MaxOf, Tag("max")]
            | Annotated[Avg, Tag("avg")]
            | Annotated[First, Tag("first")]
            | Annotated[Add, Tag("add")]
            | Annotated[Sub, Tag("sub")]
            | Annotated[Mul, Tag("mul")]
            | Annotated[Div, Tag("div")]
            | Annotated[Get, Tag("get")]
            | Annotated[MetricOf, Tag("metric")],
            Discriminator(
                _operand_tag,
                custom_error_type="unknown_operand",
                custom_error_message="unknown value form; use a literal, a $reference, a list, "
                "or one of " + ", ".join(OPERAND_KEYS),
            ),
        ],
    )


# ---------------------------------------------------------------- history queries


class HistoryQuery(_Strict):
    """Earlier events of some types whose fields equal the given values.

    ``within`` restricts to the last duration before now (inclusive); ``since`` to events at
    or after an instant; ``last`` to the N most recent matching events. A ``null`` in
    ``match`` means the field is absent. The current event is not part of its own history.
    """

    type: str | list[str]
    match: dict[str, Operand] = Field(default_factory=dict)
    within: str | None = None
    since: Operand = None
    last: int | None = Field(default=None, ge=1)

    @field_validator("type")
    @classmethod
    def _types(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and not v:
            raise ValueError("name at least one event type")
        return v


class ValuesQuery(HistoryQuery):
    field: str = Field(description="the event field to return (or `type`, `id`, `at`)")


# ---------------------------------------------------------------- conditions


class All(_Strict):
    all: list[Condition]


class AnyOf(_Strict):
    any: list[Condition]


class Not(_Strict):
    not_: Condition = Field(alias="not")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _pair(v: list[Any]) -> list[Any]:
    if len(v) != 2:
        raise ValueError(f"a comparison takes exactly two values, got {len(v)}")
    return v


class Eq(_Strict):
    eq: list[Operand]
    _check = field_validator("eq")(classmethod(lambda cls, v: _pair(v)))


class Ne(_Strict):
    ne: list[Operand]
    _check = field_validator("ne")(classmethod(lambda cls, v: _pair(v)))


class Lt(_Strict):
    lt: list[Operand]
    _check = field_validator("lt")(classmethod(lambda cls, v: _pair(v)))


class Le(_Strict):
    le: list[Operand]
    _check = field_validator("le")(classmethod(lambda cls, v: _pair(v)))


class Gt(_Strict):
    gt: list[Operand]
    _check = field_validator("gt")(classmethod(lambda cls, v: _pair(v)))


class Ge(_Strict):
    ge: list[Operand]
    _check = field_validator("ge")(classmethod(lambda cls, v: _pair(v)))


class In(_Strict):
    """``{in: [value, collection]}``: membership."""

    in_: list[Operand] = Field(alias="in")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    _check = field_validator("in_")(classmethod(lambda cls, v: _pair(v)))


class Exists(_Strict):
    """``{exists: $event.referred_by}``: the value is present (not null)."""

    exists: Operand


class History(_Strict):
    """``{history: {...}}``: at least one earlier event matches."""

    history: HistoryQuery


CONDITION_KEYS = (
    "all",
    "any",
    "not",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "in",
    "exists",
    "history",
)


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return next(iter(value)) if len(value) == 1 else "?"
    if isinstance(value, BaseModel):
        return {All: "all", AnyOf: "any", Not: "not", In: "in"}.get(
            type(value), type(value).__name__.lower()
        )
    return None


Condition = Annotated[
    Annotated[bool, Tag("bool")]
    | Annotated[All, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[Eq, Tag("eq")]
    | Annotated[Ne, Tag("ne")]
    | Annotated[Lt, Tag("lt")]
    | Annotated[Le, Tag("le")]
    | Annotated[Gt, Tag("gt")]
    | Annotated[Ge, Tag("ge")]
    | Annotated[In, Tag("in")]
    | Annotated[Exists, Tag("exists")]
    | Annotated[History, Tag("history")],
    Discriminator(
        _condition_tag,
        custom_error_type="unknown_condition",
        custom_error_message="a condition is a mapping with one operator: "
        + ", ".join(CONDITION_KEYS),
    ),
]


# ---------------------------------------------------------------- actions


class LadderStep(_Strict):
    sanction: Literal[
        "fine", "salary_deduction", "warning", "transfer", "dismissal", "confiscation"
    ]
    amount: Operand = None
    salary_days: Operand = None


class PenaltySpec(_Strict):
    """A sanction on a party: fixed, a range, per unit, in salary days, or an escalation ladder.

    With ``ladder``, the n-th offence of the party under this rule (or under ``ladder_key``,
    to share a count across rules) takes step n; the last step repeats.
    """

    party: Operand
    sanction: (
        Literal["fine", "salary_deduction", "warning", "transfer", "dismissal", "confiscation"]
        | None
    ) = None
    amount: Operand = None
    per_unit: Operand = None
    units: Operand = None
    salary_days: Operand = None
    ladder: list[LadderStep] | None = None
    ladder_key: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> PenaltySpec:
        if (self.ladder is None) == (self.sanction is None):
            raise ValueError("give either `sanction` (with its amount) or `ladder`, not both")
        if self.per_unit is not None and self.units is None:
            raise ValueError("`per_unit` needs `units` (what is counted)")
        if self.amount is not None and self.per_unit is not None:
            raise ValueError("give `amount` or `per_unit`, not both")
        return self


class SetSpec(_Strict):
    flag: str
    value: Operand = True
    subject: Operand = None


class AddSpec(_Strict):
    counter: str
    by: Operand = 1
    party: Operand = None


class AssignSpec(_Strict):
    owner: Operand
    subject: Operand = None


class TransferSpec(_Strict):
    from_: Operand = Field(alias="from")
    to: Operand
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CancelOn(_Strict):
    """Events that end the expectation (and, for a recurring one, stop its renewals)."""

    event: str | list[str]
    match: dict[str, Operand] = Field(default_factory=dict)
    where: Condition | None = Field(
        default=None, description="checked on the cancelling event ($event), $trigger the creator"
    )


class Step(_Strict):
    """One dated duty of a schedule, or one stage of a workflow.

    A step's window starts where the previous step's window ended (so one event cannot fall in
    two windows) unless ``after`` says otherwise; a step without ``within`` has no deadline.
    ``event`` and ``where`` replace or add to the expectation's for this step.
    """

    event: str | list[str] | None = None
    where: Condition | None = None
    within: str | None = None
    after: str | None = None
    obligation: str | None = None


class Expect(_Strict):
    """After this event, expect another one within a window; branches for met, late, missed.

    ``match`` is evaluated when the expectation is created (``$event`` is the creating event);
    ``where`` is checked on each candidate (``$event`` is the candidate, ``$trigger`` the
    creator). With ``obligation`` the expectation is reported as a duty of ``party``.

    The shapes beyond a single duty:

    - ``steps``: one trigger owes several duties, each its own obligation (a schedule, or with
      ``in_order`` a workflow whose out-of-order events run ``out_of_order``);
    - ``every: month`` (or day, week): one duty per local calendar period, from the period the
      window starts in, renewed at each period end until cancelled;
    - ``repeat``: a rolling cadence: when met (or missed) the duty is owed again, its window
      starting at the meeting event (or at the missed deadline);
    - ``consume``: an event meets at most one duty of this expectation, across all instances;
    - ``key``: while a duty with the same key is live, the trigger does not create another.

    Without ``within`` (and without ``every``) the duty has no deadline: open until met.
    """

    event: str | list[str]
    match: dict[str, Operand] = Field(default_factory=dict)
    where: Condition | None = None
    within: str | None = None
    after: str | None = None
    every: Literal["day", "week", "month"] | None = None
    repeat: bool = False
    steps: list[Step] | None = None
    in_order: bool = False
    consume: bool = False
    key: Operand = None
    key_scope: str | None = Field(
        default=None,
        description="expectations naming the same key_scope share their keys: one live duty "
        "per key across several rules (two ways to owe the same duty)",
    )
    about: Operand = Field(
        default=None, description="who the duty is about, when not the rule's subject"
    )
    cancel_on: CancelOn | None = None
    obligation: str | None = None
    party: Operand = None
    met: list[Action] = Field(default_factory=list)
    late: list[Action] = Field(default_factory=list)
    missed: list[Action] = Field(default_factory=list)
    out_of_order: list[Action] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shape(self) -> Expect:
        shapes = [n for n in ("every", "steps") if getattr(self, n) is not None]
        if self.repeat:
            shapes.append("repeat")
        if len(shapes) > 1:
            raise ValueError(f"an expectation is one of steps, every, repeat; got {shapes}")
        if self.every is not None and self.within is not None:
            raise ValueError("with `every`, the window is the calendar period: drop `within`")
        if self.repeat and self.within is None:
            raise ValueError("`repeat` needs `within` (the cadence, e.g. 3 days)")
        if self.steps is not None and not self.steps:
            raise ValueError("`steps` lists at least one step")
        if (self.in_order or self.out_of_order) and self.steps is None:
            raise ValueError("`in_order` and `out_of_order` belong to an expectation with `steps`")
        if self.out_of_order and not self.in_order:
            raise ValueError("`out_of_order` actions need `in_order: true`")
        return self


class _ActionBase(_Strict):
    when: Condition | None = None
    for_each: Operand = None
    for_each_subject: Operand = Field(
        default=None, description="run the action once per subject id, with $subject bound to it"
    )


class ClaimAction(_ActionBase):
    claim: Operand


class LapseClaimAction(_ActionBase):
    lapse_claim: Operand


class DropClaimsAction(_ActionBase):
    """Release every open claim of an employee, on every subject."""

    drop_claims: Operand


class AssignAction(_ActionBase):
    assign: Operand | AssignSpec

    @field_validator("assign", mode="before")
    @classmethod
    def _spec(cls, v: Any) -> Any:
        if isinstance(v, dict) and "owner" in v:
            return AssignSpec.model_validate(v)
        return v


class ReleaseAction(_ActionBase):
    release: Operand = None


class TransferAction(_ActionBase):
    transfer: TransferSpec


class PenaltyAction(_ActionBase):
    penalty: PenaltySpec


class ExpectAction(_ActionBase):
    expect: Expect


class SetAction(_ActionBase):
    set: SetSpec


class ClearAction(_ActionBase):
    clear: str


class AddAction(_ActionBase):
    add: AddSpec


class RejectAction(_ActionBase):
    reject: str


class ViolationSpec(_Strict):
    what: str
    party: Operand = None


class ViolationAction(_ActionBase):
    """Record a breach of the policy (e.g. a workflow step out of order); the event still counts."""

    violation: str | ViolationSpec


ACTION_KEYS = (
    "claim",
    "lapse_claim",
    "drop_claims",
    "assign",
    "release",
    "transfer",
    "penalty",
    "expect",
    "set",
    "clear",
    "add",
    "reject",
    "violation",
)
_ACTION_MODELS: dict[type[BaseModel], str] = {}


def _action_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        found = [str(k) for k in value if k in ACTION_KEYS]
        if len(found) == 1:
            return found[0]
        return "?"
    if isinstance(value, BaseModel):
        tag: str | None = _ACTION_MODELS.get(type(value))
        return tag
    return None


Action = Annotated[
    Annotated[ClaimAction, Tag("claim")]
    | Annotated[LapseClaimAction, Tag("lapse_claim")]
    | Annotated[DropClaimsAction, Tag("drop_claims")]
    | Annotated[AssignAction, Tag("assign")]
    | Annotated[ReleaseAction, Tag("release")]
    | Annotated[TransferAction, Tag("transfer")]
    | Annotated[PenaltyAction, Tag("penalty")]
    | Annotated[ExpectAction, Tag("expect")]
    | Annotated[SetAction, Tag("set")]
    | Annotated[ClearAction, Tag("clear")]
    | Annotated[AddAction, Tag("add")]
    | Annotated[RejectAction, Tag("reject")]
    | Annotated[ViolationAction, Tag("violation")],
    Discriminator(
        _action_tag,
        custom_error_type="unknown_action",
        custom_error_message="an action is a mapping with exactly one of: "
        + ", ".join(ACTION_KEYS),
    ),
]
_ACTION_MODELS.update(
    {
        ClaimAction: "claim",
        LapseClaimAction: "lapse_claim",
        DropClaimsAction: "drop_claims",
        AssignAction: "assign",
        ReleaseAction: "release",
        TransferAction: "transfer",
        PenaltyAction: "penalty",
        ExpectAction: "expect",
        SetAction: "set",
        ClearAction: "clear",
        AddAction: "add",
        RejectAction: "reject",
        ViolationAction: "violation",
    }
)


# ---------------------------------------------------------------- declarations


class Meta(_Strict):
    id: str = Field(min_length=1)
    title: str
    version: str
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    subject: str = Field(default="customer", description="event field that names the subject")
    unknown_events: Literal["reject", "ignore"] = "reject"

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        import pendulum

        try:
            pendulum.timezone(v)
        except Exception as exc:  # pendulum raises its own InvalidTimezone
            raise ValueError(
                f"unknown timezone {v!r}; use an IANA name like Asia/Shanghai"
            ) from exc
        return v


class Clause(_Strict):
    id: str = Field(min_length=1)
    text: str
    reading: str
    kind: str | None = None


class Money(_Strict):
    """``200`` or ``20-100`` (a range) in the policy currency; exact decimals."""

    low: Decimal
    high: Decimal


def parse_money(value: Any) -> Money:
    if isinstance(value, bool):
        raise ValueError("money is a number or a range like '20-100'")
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("money is a number or a range like '20-100'")
    text = value.strip().removesuffix("CNY").removesuffix("元").strip()
    parts = [p.strip() for p in re.split(r"\s*(?:-|–|—|~|～)\s*", text, maxsplit=1)]
    try:
        nums = [Decimal(p) for p in parts]
    except InvalidOperation:
        raise ValueError(f"cannot read {value!r} as money; write e.g. 200 or '20-100'") from None
    low, high = nums[0], nums[-1]
    if low < 0 or high < low:
        raise ValueError(f"money range {value!r} must be non-negative and low <= high")
    return Money(low=low, high=high)


PARAM_KINDS: Final = ("duration", "money", "count", "number", "salary_days", "text", "table")


def _table_entry(value: str | int | float) -> Decimal | Money | str:
    """Numbers are exact decimals, ``'50-200'`` a money range, anything else text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return Decimal(str(value))
    try:
        money = parse_money(value)
    except ValueError:
        return value
    return money.low if money.low == money.high else money


class Param(_Strict):
    """A named number of the manual; exactly one of the typed keys."""

    duration: str | None = None
    money: str | int | float | None = None
    count: int | None = None
    number: float | int | str | None = None
    salary_days: int | float | str | None = None
    text: str | None = None
    table: dict[str, str | int | float] | None = Field(
        default=None,
        description="a lookup table (fine by severity, weight by source): key -> number, "
        "money range or text; read with {get: [$params.NAME, key]}",
    )
    doc: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Param:
        given = [k for k in PARAM_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a parameter has exactly one of: " + ", ".join(PARAM_KINDS))
        if self.duration is not None:
            parse_duration(self.duration)
        if self.money is not None:
            parse_money(self.money)
        return self

    @property
    def kind(self) -> str:
        return next(k for k in PARAM_KINDS if getattr(self, k) is not None)

    def value(self) -> Duration | Money | Decimal | int | str | dict[str, Any]:
        if self.table is not None:
            return {k: _table_entry(v) for k, v in self.table.items()}
        if self.duration is not None:
            return parse_duration(self.duration)
        if self.money is not None:
            return parse_money(self.money)
        if self.count is not None:
            return self.count
        if self.number is not None:
            return Decimal(str(self.number))
        if self.salary_days is not None:
            return Decimal(str(self.salary_days))
        assert self.text is not None
        return self.text


FieldType = Literal["str", "int", "bool", "decimal", "time", "date", "list[str]", "list[int]"]


class FieldSpec(_Strict):
    type: FieldType = "str"
    optional: bool = False
    enum: list[str | int] | None = None
    min: int | float | None = None
    max: int | float | None = None
    default: Any = None
    doc: str | None = None


def parse_field(value: Any) -> Any:
    """Short forms: ``str``, ``int?`` (optional), ``[a, b]`` (an enum of text)."""
    if isinstance(value, str):
        optional = value.endswith("?")
        return {"type": value.rstrip("?"), "optional": optional}
    if isinstance(value, list):
        return {"type": "str", "enum": value}
    return value


class EventType(_Strict):
    doc: str | None = None
    fields: dict[str, FieldSpec] = Field(default_factory=dict)

    @field_validator("fields", mode="before")
    @classmethod
    def _short(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: parse_field(x) for k, x in v.items()}
        return v


class Rule(_Strict):
    id: str = Field(min_length=1)
    clause: str | list[str]
    doc: str | None = None
    on: str | list[str] | None = None
    every: Literal["day", "week", "month"] | None = Field(
        default=None, description="fire at the start of every local calendar period instead"
    )
    when: Condition | None = None
    overrides: list[str] = Field(default_factory=list)
    then: list[Action] = Field(default_factory=list)
    expect: Expect | None = None

    @property
    def clauses(self) -> list[str]:
        return [self.clause] if isinstance(self.clause, str) else list(self.clause)

    @property
    def triggers(self) -> list[str]:
        if self.on is None:
            return []
        return [self.on] if isinstance(self.on, str) else list(self.on)

    @model_validator(mode="after")
    def _does_something(self) -> Rule:
        if (self.on is None) == (self.every is None):
            raise ValueError("a rule has exactly one trigger: `on: <event type>` or `every: month`")
        if not self.then and self.expect is None:
            raise ValueError("a rule needs `then` actions or an `expect`")
        if not self.clauses:
            raise ValueError("a rule cites at least one clause")
        return self


class LabelCase(_Strict):
    value: str
    when: Condition = True
    reason: str | None = Field(
        default=None, description="why this value applies, reported with the classification"
    )


class Label(_Strict):
    """A classification derived from history.

    Without ``on``, each subject is classified as of ``as_of`` (a customer's tier). With ``on``,
    each such event classifies the thing ``subject`` names (default: the event's subject), at
    that event, with ``$event`` bound: a return request is ``refused``, ``exchange``... with its
    reason. ``cases`` are tried top-down and the first that holds gives the value, so list the
    highest grade or the most specific case first; none holding gives null.
    """

    clause: str | list[str]
    doc: str | None = None
    on: str | list[str] | None = None
    subject: Operand = None
    cases: list[LabelCase] = Field(min_length=1)

    @model_validator(mode="after")
    def _subject_needs_on(self) -> Label:
        if self.subject is not None and self.on is None:
            raise ValueError("`subject` names what an event classifies; it needs `on:`")
        return self

    @property
    def clauses(self) -> list[str]:
        return [self.clause] if isinstance(self.clause, str) else list(self.clause)


class Target(_Strict):
    """The standard a metric is held to: one comparison with a number."""

    ge: Operand = None
    gt: Operand = None
    le: Operand = None
    lt: Operand = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        given = [k for k in ("ge", "gt", "le", "lt") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a target is one of ge, gt, le, lt with a number, e.g. {ge: 0.2}")
        return self

    @property
    def op(self) -> str:
        return next(k for k in ("ge", "gt", "le", "lt") if getattr(self, k) is not None)


class Grade(_Strict):
    """A grade and the least value that earns it; the last grade may omit ``min`` (the rest)."""

    grade: str
    min: Operand = None


class Metric(_Strict):
    """A value per party per local calendar period, taken at the period's end.

    ``parties`` lists who is measured; ``numerator`` / ``denominator`` (a rate) or ``value``
    (any number, e.g. a weighted score) is computed with ``$party`` bound and ``$event`` the
    period (``period``, ``start``, ``end``). A period whose denominator is zero, or whose value
    is null, is not reported. ``target`` (optional) says met / not met; ``grades`` (optional,
    highest first) name the band the value falls in. A party listed twice is measured once.
    """

    id: str = Field(min_length=1)
    clause: str | list[str]
    doc: str | None = None
    every: Literal["day", "week", "month"] = "month"
    parties: Operand
    numerator: Operand = None
    denominator: Operand = None
    value: Operand = None
    target: Target | None = None
    grades: list[Grade] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _value_or_ratio(self) -> Metric:
        if (self.numerator is None) == (self.value is None):
            raise ValueError("a metric has either `value` or `numerator` (with `denominator`)")
        if self.value is not None and self.denominator is not None:
            raise ValueError("`denominator` goes with `numerator`, not with `value`")
        return self

    @property
    def clauses(self) -> list[str]:
        return [self.clause] if isinstance(self.clause, str) else list(self.clause)


class TieBreak(_Strict):
    metric: str
    order: Literal["highest", "lowest"] = "highest"


class Award(_Strict):
    """The best party of each period by a metric ("service star of the month").

    Parties are ranked by ``metric`` (``order``), then by each ``tie_break`` metric, then by
    party id; the first ``winners`` win. Only parties the metric measured that period compete.
    """

    id: str = Field(min_length=1)
    clause: str | list[str]
    doc: str | None = None
    title: str | None = None
    metric: str
    order: Literal["highest", "lowest"] = "highest"
    tie_break: list[TieBreak] = Field(default_factory=list)
    winners: int = Field(default=1, ge=1)

    @property
    def clauses(self) -> list[str]:
        return [self.clause] if isinstance(self.clause, str) else list(self.clause)


class PolicyInvariant(_Strict):
    """Something that must hold for every subject at every ``as_of`` (``$subject`` bound), e.g.
    "no customer carries more than three open claims"; checked by ``policyengine.testing``."""

    id: str = Field(min_length=1)
    doc: str | None = None
    holds: Condition


class PolicyFile(_Strict):
    """One YAML file. Files of one folder form a policy set; ``policy`` is required in each."""

    schema_: str | None = Field(default=None, alias="$schema")
    policy: Meta
    clauses: list[Clause] = Field(default_factory=list)
    params: dict[str, Param] = Field(default_factory=dict)
    events: dict[str, EventType] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    labels: dict[str, Label] = Field(default_factory=dict)
    metrics: list[Metric] = Field(default_factory=list)
    awards: list[Award] = Field(default_factory=list)
    invariants: list[PolicyInvariant] = Field(default_factory=list)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


for _m in (
    OwnerOf,
    Sum,
    MinOf,
    MaxOf,
    Avg,
    First,
    Add,
    Sub,
    Mul,
    Div,
    Get,
    Subjects,
    Coalesce,
    Date,
    Values,
    ValuesQuery,
    FlagOf,
    Len,
    Count,
    Plus,
    HistoryQuery,
    All,
    AnyOf,
    Not,
    CancelOn,
    Step,
    Expect,
    Target,
    Metric,
    Grade,
    Label,
    LabelCase,
    PolicyInvariant,
    PolicyFile,
):
    _m.model_rebuild()


def is_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith("$") and not value.startswith("$$")


def reference_ok(value: str) -> bool:
    return bool(_REF_RE.match(value))


def _draft07(node: Any) -> Any:
    """Rewrite pydantic's 2020-12 output into draft-07, which the YAML language server reads:
    ``$defs`` -> ``definitions``, ``prefixItems`` -> ``items`` (array form), and the OpenAPI
    ``discriminator`` keyword dropped (a callable discriminator has no mapping anyway)."""
    if isinstance(node, list):
        return [_draft07(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "discriminator":
            continue
        if key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/$defs/", "#/definitions/")
        elif key == "$defs":
            out["definitions"] = _draft07(value)
        elif key == "prefixItems":
            out["items"] = _draft07(value)
            if "items" in node:  # 2020-12 `items` after a tuple is draft-07 `additionalItems`
                out["additionalItems"] = _draft07(node["items"])
        elif key == "items" and "prefixItems" in node:
            continue
        else:
            out[key] = _draft07(value)
    return out


# Short forms the models accept through ``mode="before"`` validators, which pydantic's schema
# cannot see: an event field written ``str`` / ``int?`` / ``[a, b]``, and a numeric version.
_FIELD_SHORT_FORMS: Final[list[dict[str, Any]]] = [
    {
        "type": "string",
        "enum": [t + q for t in get_args(FieldType) for q in ("", "?")],
        "description": "a field type; `?` marks it optional",
    },
    {
        "type": "array",
        "items": {"type": "string"},
        "minItems": 1,
        "description": "an enum of text values",
    },
]


def policy_json_schema() -> dict[str, Any]:
    """The language as draft-07 JSON Schema, for editors (the YAML language server reads
    draft-07: name it with ``# yaml-language-server: $schema=...`` on a policy's first line)."""
    schema: dict[str, Any] = _draft07(PolicyFile.model_json_schema(by_alias=True))
    defs = schema["definitions"]
    fields = defs["EventType"]["properties"]["fields"]
    fields["additionalProperties"] = {
        "anyOf": [fields["additionalProperties"], *_FIELD_SHORT_FORMS]
    }
    version = defs["Meta"]["properties"]["version"]
    defs["Meta"]["properties"]["version"] = {
        "anyOf": [{"type": "string"}, {"type": "number"}],
        "title": version.get("title", "Version"),
        "description": 'the policy\'s version, e.g. "1.0.0"',
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        **schema,
        "title": "policyengine 策略文件 / policy file",
        "description": "policyengine 策略文件:条款、参数、事件类型与规则(见 docs/language.md)。"
        " / A policyengine policy file: clauses, parameters, event types and rules"
        " (reference: docs/language.md).",
    }
