"""Stage 2, validate: values and conditions as pydantic models (the language's expressions).

Operands (``$event.amount``, ``{count: ...}``, ``{sum: [...]}``), history queries and conditions
(``{eq: [a, b]}``, ``{all: [...]}``). Each is a single-key mapping; a callable discriminator
picks the model from the key, so a misspelt operator is one "unknown operator" error at its
position instead of a wall of union errors. ``_Strict`` is the base of every model.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
)
from typing_extensions import TypeAliasType


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


class TimeOfDay(_Strict):
    """The local wall-clock time (``HH:MM:SS`` in the policy timezone) of an instant, compared
    with literals like ``"09:00"`` (``lt: [{time_of_day: $event.at}, "09:00"]``).
    某时刻在策略时区的本地钟点"""

    time_of_day: Operand


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


ROUNDING: Final = ("half_up", "half_even", "down", "up", "floor", "ceiling")


class Round(_Strict):
    """``{round: [x, 2]}``: a number rounded to 2 decimal places, half up (0.125 -> 0.13,
    -0.125 -> -0.13); a third item names another mode (half_even, down, up, floor, ceiling).
    Null when x is null or not a number. / 四舍五入到指定小数位(可选舍入方式);空值得空"""

    round: list[Operand]

    @field_validator("round")
    @classmethod
    def _shape(cls, v: list[Any]) -> list[Any]:
        if len(v) not in (2, 3):
            raise ValueError("round takes [value, digits] or [value, digits, mode]")
        digits = v[1]
        if type(digits) is not int or not 0 <= digits <= 10:
            raise ValueError(f"round's digits are a whole number from 0 to 10, not {digits!r}")
        if len(v) == 3 and v[2] not in ROUNDING:
            raise ValueError(f"round's mode is one of {', '.join(ROUNDING)}, not {v[2]!r}")
        return v


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
    "time_of_day",
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
    "round",
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
            | Annotated[TimeOfDay, Tag("time_of_day")]
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
            | Annotated[MetricOf, Tag("metric")]
            | Annotated[Round, Tag("round")],
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


class ConditionRef(_Strict):
    """``{condition: NAME}``: the named condition declared under ``conditions:``, checked and
    compiled where it is used (``$event`` is the event of the rule that uses it).
    引用 ``conditions:`` 中声明的具名条件,在使用处检查并编译。"""

    condition: str = Field(min_length=1)


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
    "condition",
)


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return next(iter(value)) if len(value) == 1 else "?"
    if isinstance(value, BaseModel):
        return {All: "all", AnyOf: "any", Not: "not", In: "in", ConditionRef: "condition"}.get(
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
    | Annotated[History, Tag("history")]
    | Annotated[ConditionRef, Tag("condition")],
    Discriminator(
        _condition_tag,
        custom_error_type="unknown_condition",
        custom_error_message="a condition is a mapping with one operator: "
        + ", ".join(CONDITION_KEYS),
    ),
]


def is_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith("$") and not value.startswith("$$")


def reference_ok(value: str) -> bool:
    return bool(_REF_RE.match(value))


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
    Round,
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
):
    _m.model_rebuild()
