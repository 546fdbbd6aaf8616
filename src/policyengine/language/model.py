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

from policyengine.times import Duration, parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- operands (values)

REF_ROOTS = ("event", "trigger", "subject", "params", "now", "item", "party")
_REF_RE = re.compile(
    r"^\$(event|trigger|subject|params|now|item|party)(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)


class OwnerOf(_Strict):
    """The owner of another subject at this instant (HX-RM-5: the referring old customer).
    另一主体此刻的负责人"""

    owner_of: Operand


class Claims(_Strict):
    """Employees holding claims of a status on the current subject, as a list.
    对当前主体持有某状态报备的员工列表"""

    claims: Literal["open", "lapsed", "released", "any"]


class Subjects(_Strict):
    """Every known subject with an owner of a kind, sorted by id (for ``for_each_subject``).

    ``owner`` narrows to one owner's subjects (through the owner index, so it is cheap);
    ``where`` keeps those for which a condition holds, with ``$subject`` bound to each.

    有某类负责人的全部已知主体(按 id 排序);``owner`` 限定某负责人,``where`` 按条件筛选。
    """

    subjects: Literal["any", "owned", "owned_by_employee", "company"]
    owner: Operand = None
    where: Condition | None = None


class Owners(_Strict):
    """Distinct current owners, sorted: ``employee`` leaves out the company pool.
    当前的全部负责人(去重排序);``employee`` 不含公司公海"""

    owners: Literal["employee", "any"]


class Coalesce(_Strict):
    """The first value that is not null (``{coalesce: [$event.manager, department_manager]}``).
    第一个非空的值"""

    coalesce: list[Operand]


class Date(_Strict):
    """The local calendar date (``YYYY-MM-DD`` in the policy timezone) of an instant.
    某时刻在策略时区的本地日期"""

    date: Operand


class Values(_Strict):
    """One field of the matching earlier events, newest first (with ``last``: at most N).
    匹配的历史事件的某字段值,最新在前"""

    values: ValuesQuery


class Added(_Strict):
    """How much a counter grew during the current period (metrics): ``$party``'s counter if a
    party is bound, else the subject's. / 计数器在本周期内的增量(用于指标)。"""

    added: str


class CounterValue(_Strict):
    """A counter's value now: ``$party``'s if a party is bound, else the subject's.
    计数器的当前值"""

    counter: str


class PartiesWith(_Strict):
    """Parties whose counter is not zero, sorted (who a metric measures).
    计数器不为零的当事人(指标的考核对象)"""

    parties_with: str


class FlagOf(_Strict):
    """A flag of another subject (``{flag_of: [$event.referred_by, specialist]}``).
    另一主体的标记"""

    flag_of: list[Operand]

    @field_validator("flag_of")
    @classmethod
    def _two(cls, v: list[Any]) -> list[Any]:
        if len(v) != 2 or not isinstance(v[1], str):
            raise ValueError("flag_of takes [subject, flag name]")
        return v


class Ago(_Strict):
    """The instant a duration before now, read on the calendar (``{ago: 1 month}``).
    按日历往前推一段时长的时刻"""

    ago: str


class Plus(_Strict):
    """An instant plus a duration, forward on the calendar (``{plus: [$subject.owner_since,
    1 month]}``): the exact inverse of a window, so month ends clamp as windows do.
    某时刻按日历加上一段时长。"""

    plus: list[Operand]

    @field_validator("plus")
    @classmethod
    def _two(cls, v: list[Any]) -> list[Any]:
        if len(v) != 2 or not isinstance(v[1], str):
            raise ValueError("plus takes [instant, duration], e.g. [$event.at, 2 days]")
        return v


class Len(_Strict):
    """The number of elements of a list value. / 列表值的元素个数。"""

    len: Operand


class Count(_Strict):
    """How many earlier events match a history query. / 匹配历史查询的事件数"""

    count: HistoryQuery


class Sum(_Strict):
    """The sum of numbers: ``{sum: [a, b]}``, or of a list value such as ``{sum: {values: ...}}``.

    List values inside are flattened one level and nulls skipped, so "spend so far plus this
    expense" is ``{sum: [{values: {...}}, $event.amount]}``. Exact decimals; empty is 0.

    数值之和(精确小数,列表展开一层,跳过空值;无值为 0)。
    """

    sum: Operand


class MinOf(_Strict):
    """The least of numbers or of a list value (null when there is none). / 最小值(无值为空)"""

    min: Operand


class MaxOf(_Strict):
    """The greatest of numbers or of a list value (null when there is none). / 最大值(无值为空)"""

    max: Operand


class Avg(_Strict):
    """The mean of numbers or of a list value (null when there is none): an average rating.
    平均值(无值为空),如平均评分"""

    avg: Operand


class First(_Strict):
    """The first element of a list value (null when empty): the newest of a ``values`` query.
    列表值的第一个元素(空列表为空)"""

    first: Operand


def _two_operands(name: str, v: list[Any]) -> list[Any]:
    if len(v) != 2:
        raise ValueError(f"{name} takes two values, e.g. {{{name}: [$event.amount, 100]}}")
    return v


class Add(_Strict):
    """``a + b + ...``, exact; null if any is null (a weighted score that needs every part).
    Use ``sum`` to add up a list and skip what is missing. / 精确加法;任一项为空则结果为空。"""

    add: list[Operand] = Field(min_length=2)


class Sub(_Strict):
    """``a - b``, exact; null if either is null. / 精确减法;任一项为空则结果为空"""

    sub: list[Operand]

    @field_validator("sub")
    @classmethod
    def _two(cls, v: list[Any]) -> list[Any]:
        return _two_operands("sub", v)


class Mul(_Strict):
    """The product of two or more numbers, exact; null if any is null (weights, tolerances).
    精确乘法;任一项为空则结果为空"""

    mul: list[Operand] = Field(min_length=2)


class Div(_Strict):
    """``a / b``, exact; null if either is null or ``b`` is zero (a rate with no cases).
    精确除法;有空值或除数为零时结果为空"""

    div: list[Operand]

    @field_validator("div")
    @classmethod
    def _two(cls, v: list[Any]) -> list[Any]:
        return _two_operands("div", v)


class Get(_Strict):
    """One entry of a mapping: ``{get: [$params.fine_by_severity, $event.severity]}`` (null if
    the key is absent), for parameter tables and mapping values. / 取映射(如参数表)中的一项。"""

    get: list[Operand]

    @field_validator("get")
    @classmethod
    def _two(cls, v: list[Any]) -> list[Any]:
        return _two_operands("get", v)


class MetricOf(_Strict):
    """Inside a metric or award: another metric's value for ``$party`` in the same period
    (``{metric: resolution-rate}``); metrics are measured in file order, so name an earlier one.
    同一周期内 ``$party`` 的另一指标值(须在前面定义)。"""

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

    历史查询:某些类型、字段取给定值的历史事件(不含当前事件)。
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
    """A history query and the field to read from each match. / 历史查询及要读取的字段。"""

    field: str = Field(
        description="the event field to return (or `type`, `id`, `at`) / 要返回的事件字段"
    )


# ---------------------------------------------------------------- conditions


class All(_Strict):
    """Every condition holds. / 全部条件成立。"""

    all: list[Condition]


class AnyOf(_Strict):
    """At least one condition holds. / 至少一个条件成立。"""

    any: list[Condition]


class Not(_Strict):
    """The condition does not hold. / 条件不成立。"""

    not_: Condition = Field(alias="not")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _pair(v: list[Any]) -> list[Any]:
    if len(v) != 2:
        raise ValueError(f"a comparison takes exactly two values, got {len(v)}")
    return v


class Eq(_Strict):
    """The two values are equal. / 两值相等。"""

    eq: list[Operand]
    _check = field_validator("eq")(classmethod(lambda cls, v: _pair(v)))


class Ne(_Strict):
    """The two values differ. / 两值不等。"""

    ne: list[Operand]
    _check = field_validator("ne")(classmethod(lambda cls, v: _pair(v)))


class Lt(_Strict):
    """The first value is less than the second. / 前值小于后值。"""

    lt: list[Operand]
    _check = field_validator("lt")(classmethod(lambda cls, v: _pair(v)))


class Le(_Strict):
    """The first value is at most the second. / 前值小于或等于后值。"""

    le: list[Operand]
    _check = field_validator("le")(classmethod(lambda cls, v: _pair(v)))


class Gt(_Strict):
    """The first value is greater than the second. / 前值大于后值。"""

    gt: list[Operand]
    _check = field_validator("gt")(classmethod(lambda cls, v: _pair(v)))


class Ge(_Strict):
    """The first value is at least the second. / 前值大于或等于后值。"""

    ge: list[Operand]
    _check = field_validator("ge")(classmethod(lambda cls, v: _pair(v)))


class In(_Strict):
    """``{in: [value, collection]}``: membership. / 值属于集合"""

    in_: list[Operand] = Field(alias="in")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    _check = field_validator("in_")(classmethod(lambda cls, v: _pair(v)))


class Exists(_Strict):
    """``{exists: $event.referred_by}``: the value is present (not null). / 值存在(非空)"""

    exists: Operand


class History(_Strict):
    """``{history: {...}}``: at least one earlier event matches. / 至少有一个历史事件匹配"""

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
    """One step of an escalation ladder: the sanction of the n-th offence.
    累进处罚的一级:第 n 次违规的处罚。"""

    sanction: Literal[
        "fine", "salary_deduction", "warning", "transfer", "dismissal", "confiscation"
    ]
    amount: Operand = None
    salary_days: Operand = None


class PenaltySpec(_Strict):
    """A sanction on a party: fixed, a range, per unit, in salary days, or an escalation ladder.

    With ``ladder``, the n-th offence of the party under this rule (or under ``ladder_key``,
    to share a count across rules) takes step n; the last step repeats.

    对当事人的处罚:固定金额、区间、按件、按日工资或累进阶梯(罚款、扣工资、警告、调岗、开除、没收)。
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
    """Set a flag on a subject. / 给主体设置标记。"""

    flag: str
    value: Operand = True
    subject: Operand = None


class AddSpec(_Strict):
    """Add to a counter. / 累加计数器。"""

    counter: str
    by: Operand = 1
    party: Operand = None


class AssignSpec(_Strict):
    """Make an owner responsible for a subject. / 指定主体的负责人。"""

    owner: Operand
    subject: Operand = None


class TransferSpec(_Strict):
    """Move subjects from one owner to another. / 将主体从一个负责人转给另一个。"""

    from_: Operand = Field(alias="from")
    to: Operand
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CancelOn(_Strict):
    """Events that end the expectation (and, for a recurring one, stop its renewals).
    终止该期望(及其续期)的事件"""

    event: str | list[str]
    match: dict[str, Operand] = Field(default_factory=dict)
    where: Condition | None = Field(
        default=None,
        description="checked on the cancelling event ($event), $trigger the creator"
        " / 在取消事件上检查的条件",
    )


class Step(_Strict):
    """One dated duty of a schedule, or one stage of a workflow.

    A step's window starts where the previous step's window ended (so one event cannot fall in
    two windows) unless ``after`` says otherwise; a step without ``within`` has no deadline.
    ``event`` and ``where`` replace or add to the expectation's for this step.

    时间表中的一项有期限的义务,或流程中的一个环节。
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

    期望:某事件之后,须在时限内发生另一事件(义务);按时、逾期、未履行分别执行动作。
    """

    event: str | list[str] = Field(
        description="the event type(s) that meet the duty / 履行义务的事件类型"
    )
    match: dict[str, Operand] = Field(
        default_factory=dict,
        description="fields the meeting event must have, fixed at creation / 履行事件须匹配的字段",
    )
    where: Condition | None = Field(
        default=None, description="checked on each candidate event / 对候选事件检查的条件"
    )
    within: str | None = Field(
        default=None, description="the time limit, e.g. 2 days / 时限,如 2 days"
    )
    after: str | None = Field(
        default=None,
        description="the window opens this long after the trigger / 时限窗口的起始延迟",
    )
    every: Literal["day", "week", "month"] | None = Field(
        default=None, description="one duty per calendar period / 每个日历周期一项义务"
    )
    repeat: bool = Field(
        default=False, description="owed again once met or missed / 履行或逾期后再次产生"
    )
    steps: list[Step] | None = Field(
        default=None, description="several duties in one / 多项分步义务"
    )
    in_order: bool = Field(
        default=False, description="the steps must happen in order / 各步须按顺序完成"
    )
    consume: bool = Field(
        default=False, description="an event meets at most one duty / 一个事件最多履行一项义务"
    )
    key: Operand = Field(
        default=None, description="one live duty per key / 每个 key 只有一项生效义务"
    )
    key_scope: str | None = Field(
        default=None,
        description="expectations naming the same key_scope share their keys: one live duty "
        "per key across several rules (two ways to owe the same duty)"
        " / 同一 key_scope 的期望共享 key:跨规则每个 key 只有一项生效义务",
    )
    about: Operand = Field(
        default=None,
        description="who the duty is about, when not the rule's subject"
        " / 义务涉及的主体(非规则主体时)",
    )
    cancel_on: CancelOn | None = Field(
        default=None, description="events that cancel the duty / 取消该义务的事件"
    )
    obligation: str | None = Field(default=None, description="the duty's name / 义务名称")
    party: Operand = Field(default=None, description="who owes the duty / 负有义务的一方")
    met: list[Action] = Field(
        default_factory=list, description="actions when met in time / 按时履行时的动作"
    )
    late: list[Action] = Field(
        default_factory=list, description="actions when met late / 逾期履行时的动作"
    )
    missed: list[Action] = Field(
        default_factory=list, description="actions when the deadline passes / 到期未履行时的动作"
    )
    out_of_order: list[Action] = Field(
        default_factory=list, description="actions for a step out of order / 步骤顺序错误时的动作"
    )

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
        default=None,
        description="run the action once per subject id, with $subject bound to it"
        " / 对每个主体执行一次该动作",
    )


class ClaimAction(_ActionBase):
    """Claim the subject for an employee. / 员工报备(认领)该主体。"""

    claim: Operand


class LapseClaimAction(_ActionBase):
    """Mark an employee's claim on the subject lapsed. / 使员工对该主体的报备失效。"""

    lapse_claim: Operand


class DropClaimsAction(_ActionBase):
    """Release every open claim of an employee, on every subject. / 释放某员工在所有主体上的报备"""

    drop_claims: Operand


class AssignAction(_ActionBase):
    """Make an employee (or the company) the subject's owner. / 指定主体的负责人。"""

    assign: Operand | AssignSpec

    @field_validator("assign", mode="before")
    @classmethod
    def _spec(cls, v: Any) -> Any:
        if isinstance(v, dict) and "owner" in v:
            return AssignSpec.model_validate(v)
        return v


class ReleaseAction(_ActionBase):
    """Return the subject to the company pool. / 将主体收归公司。"""

    release: Operand = None


class TransferAction(_ActionBase):
    """Move subjects between owners. / 在负责人之间转移主体。"""

    transfer: TransferSpec


class PenaltyAction(_ActionBase):
    """Impose a sanction on a party. / 对当事人处罚。"""

    penalty: PenaltySpec


class ExpectAction(_ActionBase):
    """Create an expectation (a duty with a deadline). / 创建期望(有时限的义务)。"""

    expect: Expect


class SetAction(_ActionBase):
    """Set a flag. / 设置标记。"""

    set: SetSpec


class ClearAction(_ActionBase):
    """Clear a flag. / 清除标记。"""

    clear: str


class AddAction(_ActionBase):
    """Add to a counter. / 累加计数器。"""

    add: AddSpec


class RejectAction(_ActionBase):
    """Refuse the event: it is recorded as rejected and changes nothing. / 拒绝该事件。"""

    reject: str


class ViolationSpec(_Strict):
    """What was breached, and by whom. / 违规内容及违规方。"""

    what: str
    party: Operand = None


class ViolationAction(_ActionBase):
    """Record a breach of the policy (e.g. a workflow step out of order); the event still counts.
    记录违规;事件仍然有效"""

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
    """The policy's identity and the settings every rule shares. / 策略标识及所有规则共用的设置。"""

    id: str = Field(min_length=1, description="the policy id / 策略标识")
    title: str = Field(description="the manual's title / 手册标题")
    version: str = Field(description="the policy's version / 策略版本")
    timezone: str = Field(
        default="Asia/Shanghai",
        description="IANA timezone of calendar days and periods / 日历日与周期所用的时区",
    )
    currency: str = Field(default="CNY", description="currency of money amounts / 金额的币种")
    subject: str = Field(
        default="customer",
        description="event field that names the subject / 指明主体(如客户)的事件字段",
    )
    unknown_events: Literal["reject", "ignore"] = Field(
        default="reject",
        description="what to do with an event of an undeclared type / 未声明类型的事件如何处理",
    )

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
    """A clause of the manual, quoted, so every rule can cite its source.
    手册条款原文,供规则引用出处。"""

    id: str = Field(min_length=1, description="the clause id rules cite / 条款编号,供规则引用")
    text: str = Field(description="the clause as the manual words it / 条款原文")
    reading: str = Field(description="how the policy reads the clause / 对条款的解读")
    kind: str | None = Field(default=None, description="a free category / 条款类别")


class Money(_Strict):
    """``200`` or ``20-100`` (a range) in the policy currency; exact decimals.
    金额或金额区间(精确小数)"""

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
    """A named number of the manual; exactly one of the typed keys.
    手册中的具名参数;只写一种类型键。"""

    duration: str | None = Field(
        default=None, description="a time limit, e.g. 2 days / 时限,如 2 days"
    )
    money: str | int | float | None = Field(
        default=None, description="an amount or range, e.g. 200 or '20-100' / 金额或区间(如罚款)"
    )
    count: int | None = Field(default=None, description="a whole number / 整数次数")
    number: float | int | str | None = Field(default=None, description="an exact number / 精确数值")
    salary_days: int | float | str | None = Field(
        default=None, description="days of salary / 日工资天数"
    )
    text: str | None = Field(default=None, description="a piece of text / 文本")
    table: dict[str, str | int | float] | None = Field(
        default=None,
        description="a lookup table (fine by severity, weight by source): key -> number, "
        "money range or text; read with {get: [$params.NAME, key]}"
        " / 参数表:键 -> 数值、金额区间或文本",
    )
    doc: str | None = Field(default=None, description="what the parameter is for / 参数说明")

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
    """One field of an event type, so bad input is refused at the door.
    事件类型的一个字段,用于拒绝不合格输入。"""

    type: FieldType = Field(default="str", description="the value type / 字段类型")
    optional: bool = Field(default=False, description="the field may be absent / 字段可省略")
    enum: list[str | int] | None = Field(
        default=None, description="the allowed values / 允许的取值"
    )
    min: int | float | None = Field(default=None, description="least allowed number / 最小值")
    max: int | float | None = Field(default=None, description="greatest allowed number / 最大值")
    default: Any = Field(default=None, description="value when absent / 缺省值")
    doc: str | None = Field(default=None, description="what the field means / 字段说明")


def parse_field(value: Any) -> Any:
    """Short forms: ``str``, ``int?`` (optional), ``[a, b]`` (an enum of text)."""
    if isinstance(value, str):
        optional = value.endswith("?")
        return {"type": value.rstrip("?"), "optional": optional}
    if isinstance(value, list):
        return {"type": "str", "enum": value}
    return value


class EventType(_Strict):
    """A kind of event the policy accepts, and its fields. / 策略接受的一类事件及其字段。"""

    doc: str | None = None
    fields: dict[str, FieldSpec] = Field(default_factory=dict)

    @field_validator("fields", mode="before")
    @classmethod
    def _short(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: parse_field(x) for k, x in v.items()}
        return v


class Rule(_Strict):
    """What the manual requires when something happens, citing its clause.
    规则:事件发生时手册的要求,并引用条款。"""

    id: str = Field(min_length=1, description="the rule id / 规则编号")
    clause: str | list[str] = Field(
        description="the clause(s) the rule enforces / 规则所依据的条款"
    )
    doc: str | None = None
    on: str | list[str] | None = Field(
        default=None, description="the event type(s) that fire the rule / 触发规则的事件类型"
    )
    every: Literal["day", "week", "month"] | None = Field(
        default=None,
        description="fire at the start of every local calendar period instead"
        " / 改为在每个日历周期开始时触发",
    )
    when: Condition | None = Field(
        default=None, description="the rule applies only when this holds / 规则适用的条件"
    )
    overrides: list[str] = Field(
        default_factory=list,
        description="rules this one replaces when both apply / 两者都适用时被本规则取代的规则",
    )
    then: list[Action] = Field(default_factory=list, description="actions to run / 执行的动作")
    expect: Expect | None = Field(
        default=None, description="a duty the event creates, with a deadline / 事件产生的有时限义务"
    )

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
    """One value of a label and when it applies. / 标签的一个取值及其适用条件。"""

    value: str
    when: Condition = True
    reason: str | None = Field(
        default=None,
        description="why this value applies, reported with the classification / 取该值的原因",
    )


class Label(_Strict):
    """A classification derived from history.

    Without ``on``, each subject is classified as of ``as_of`` (a customer's tier). With ``on``,
    each such event classifies the thing ``subject`` names (default: the event's subject), at
    that event, with ``$event`` bound: a return request is ``refused``, ``exchange``... with its
    reason. ``cases`` are tried top-down and the first that holds gives the value, so list the
    highest grade or the most specific case first; none holding gives null.

    标签:按历史对主体或事件分类(如客户等级);按顺序取第一个成立的情形。
    """

    clause: str | list[str] = Field(description="the clause(s) behind the label / 标签所依据的条款")
    doc: str | None = None
    on: str | list[str] | None = Field(
        default=None, description="classify at each such event / 在此类事件发生时分类"
    )
    subject: Operand = Field(
        default=None, description="what the event classifies / 事件所分类的对象"
    )
    cases: list[LabelCase] = Field(
        min_length=1, description="the values, tried top-down / 取值情形,自上而下匹配"
    )

    @model_validator(mode="after")
    def _subject_needs_on(self) -> Label:
        if self.subject is not None and self.on is None:
            raise ValueError("`subject` names what an event classifies; it needs `on:`")
        return self

    @property
    def clauses(self) -> list[str]:
        return [self.clause] if isinstance(self.clause, str) else list(self.clause)


class Target(_Strict):
    """The standard a metric is held to: one comparison with a number.
    指标的考核标准:与一个数值比较"""

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
    """A grade and the least value that earns it; the last grade may omit ``min`` (the rest).
    等级及其最低值"""

    grade: str
    min: Operand = None


class Metric(_Strict):
    """A value per party per local calendar period, taken at the period's end.

    ``parties`` lists who is measured; ``numerator`` / ``denominator`` (a rate) or ``value``
    (any number, e.g. a weighted score) is computed with ``$party`` bound and ``$event`` the
    period (``period``, ``start``, ``end``). A period whose denominator is zero, or whose value
    is null, is not reported. ``target`` (optional) says met / not met; ``grades`` (optional,
    highest first) name the band the value falls in. A party listed twice is measured once.

    指标:每个当事人每个日历周期的数值(如投诉解决率),在周期末计算。
    """

    id: str = Field(min_length=1, description="the metric id / 指标编号")
    clause: str | list[str] = Field(
        description="the clause(s) behind the metric / 指标所依据的条款"
    )
    doc: str | None = None
    every: Literal["day", "week", "month"] = Field(
        default="month", description="the measuring period / 考核周期"
    )
    parties: Operand = Field(description="who is measured / 考核对象")
    numerator: Operand = Field(default=None, description="a rate's numerator / 比率的分子")
    denominator: Operand = Field(default=None, description="a rate's denominator / 比率的分母")
    value: Operand = Field(
        default=None, description="the value, when not a rate / 指标值(非比率时)"
    )
    target: Target | None = Field(default=None, description="the standard to meet / 考核标准")
    grades: list[Grade] | None = Field(
        default=None, min_length=1, description="grade bands, highest first / 等级划分,从高到低"
    )

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
    """A further metric to rank by when parties tie. / 并列时的次要排名指标。"""

    metric: str
    order: Literal["highest", "lowest"] = "highest"


class Award(_Strict):
    """The best party of each period by a metric ("service star of the month").

    Parties are ranked by ``metric`` (``order``), then by each ``tie_break`` metric, then by
    party id; the first ``winners`` win. Only parties the metric measured that period compete.

    评选:每个周期按指标选出最佳当事人(如每月服务之星)。
    """

    id: str = Field(min_length=1, description="the award id / 评选编号")
    clause: str | list[str] = Field(description="the clause(s) behind the award / 评选所依据的条款")
    doc: str | None = None
    title: str | None = Field(default=None, description="the award's name / 奖项名称")
    metric: str = Field(description="the metric parties are ranked by / 排名所依据的指标")
    order: Literal["highest", "lowest"] = Field(
        default="highest", description="which end wins / 高者胜或低者胜"
    )
    tie_break: list[TieBreak] = Field(
        default_factory=list, description="tie breakers / 并列时的排序"
    )
    winners: int = Field(default=1, ge=1, description="how many win / 获奖人数")

    @property
    def clauses(self) -> list[str]:
        return [self.clause] if isinstance(self.clause, str) else list(self.clause)


class PolicyInvariant(_Strict):
    """Something that must hold for every subject at every ``as_of`` (``$subject`` bound), e.g.
    "no customer carries more than three open claims"; checked by ``policyengine.testing``.
    不变式:任何时刻对每个主体都须成立的条件。"""

    id: str = Field(min_length=1)
    doc: str | None = None
    holds: Condition


class PolicyFile(_Strict):
    """One YAML file. Files of one folder form a policy set; ``policy`` is required in each.
    一个 YAML 文件;同一文件夹的文件组成一套策略,每个文件都须有 ``policy``。"""

    schema_: str | None = Field(default=None, alias="$schema")
    policy: Meta = Field(description="the policy's identity and settings / 策略标识与设置")
    clauses: list[Clause] = Field(
        default_factory=list, description="clauses of the manual / 手册条款"
    )
    params: dict[str, Param] = Field(
        default_factory=dict, description="named numbers: time limits, fines... / 参数:时限、罚款等"
    )
    events: dict[str, EventType] = Field(
        default_factory=dict, description="event types and their fields / 事件类型及其字段"
    )
    rules: list[Rule] = Field(default_factory=list, description="rules / 规则")
    labels: dict[str, Label] = Field(
        default_factory=dict, description="labels (classifications) / 标签(分类)"
    )
    metrics: list[Metric] = Field(default_factory=list, description="metrics / 指标")
    awards: list[Award] = Field(default_factory=list, description="awards / 评选")
    invariants: list[PolicyInvariant] = Field(
        default_factory=list, description="invariants / 不变式"
    )
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
        "description": "a field type; `?` marks it optional / 字段类型;`?` 表示可省略",
    },
    {
        "type": "array",
        "items": {"type": "string"},
        "minItems": 1,
        "description": "an enum of text values / 文本枚举值",
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
        "description": 'the policy\'s version, e.g. "1.0.0" / 策略版本',
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        **schema,
        "title": "policyengine 策略文件 / policy file",
        "description": "policyengine 策略文件:条款、参数、事件类型与规则(见 docs/language.md)。"
        " / A policyengine policy file: clauses, parameters, event types and rules"
        " (reference: docs/language.md).",
    }
