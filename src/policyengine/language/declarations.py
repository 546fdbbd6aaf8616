"""Stage 2, validate: the declarations of a policy file, as pydantic models.

The policy's identity and settings, the manual's clauses, parameters (durations, money,
tables...), event types and their fields, and what the file declares around them: rules,
labels, metrics, awards, invariants. ``PolicyFile`` is one YAML file.
"""

from __future__ import annotations

import re
from datetime import date as _date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from policyengine.calendars import parse_hours
from policyengine.language.actions import Action, Expect
from policyengine.language.expressions import Condition, Operand, _Strict
from policyengine.times import Duration, parse_duration

# The longest duration a policy may state: 100 years. Longer spans are no manual's time limit,
# and their calendar arithmetic would leave the years instants can name (9999).
MAX_DURATION_DAYS: Final = 36_525
_UNIT_DAYS: Final[dict[str, float]] = {
    "second": 1 / 86_400,
    "minute": 1 / 1_440,
    "hour": 1 / 24,
    "day": 1,
    "week": 7,
    "month": 30.4375,  # a mean month: 1,200 months are 100 years
    "year": 365.25,
    "working_day": 1.4,  # five working days a week, holidays aside
    # a working hour as days at the default 9 business hours a day; the compiler checks the
    # policy's own hours (``calendar: hours``) against the same limit
    "working_hour": 1.4 / 9,
    "working_minute": 1.4 / 540,
    "same_day": 1,
    "next_day": 1,
    "month_end": 30.4375,
}
_LEADING_DIGITS: Final = re.compile(r"^\s*(\d+)")
MAX_DURATION_TEXT: Final = "100 years (36,525 days, 1,200 months or 26,000 working days)"


def parse_bounded_duration(text: Any) -> Duration:
    """``parse_duration``, refusing spans longer than ``MAX_DURATION_DAYS`` (ValueError)."""
    if isinstance(text, str):
        digits = _LEADING_DIGITS.match(text)
        if digits is not None and len(digits.group(1)) > 12:
            raise ValueError(
                f"the duration {text[:40]!r} is too long; the longest a policy may state is "
                + MAX_DURATION_TEXT
            )
    duration = parse_duration(text)
    if duration.amount * _UNIT_DAYS.get(duration.unit, 1) > MAX_DURATION_DAYS:
        raise ValueError(
            f"the duration {duration.text!r} is too long; the longest a policy may state is "
            + MAX_DURATION_TEXT
        )
    return duration


def finite_decimal(value: Any, what: str) -> Decimal:
    """An exact, finite decimal from a YAML number or a text; ValueError otherwise.

    Refuses booleans (``true`` is not 1), NaN and infinities, written as ``.nan`` or as text
    (``NaN``, ``Infinity``, ``sNaN``), and text that is not a number.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{what} is a number, not {type(value).__name__}")
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise ValueError(f"cannot read {str(value)[:40]!r} as {what}") from None
    if not number.is_finite():
        raise ValueError(f"{what} must be finite (no NaN or infinity), not {str(value)[:40]!r}")
    return number


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
    except (InvalidOperation, ValueError):
        raise ValueError(
            f"cannot read {value[:40]!r} as money; write e.g. 200 or '20-100'"
        ) from None
    if not all(n.is_finite() for n in nums):
        raise ValueError(f"money must be a finite amount, not {value[:40]!r}")
    low, high = nums[0], nums[-1]
    if low < 0 or high < low:
        raise ValueError(f"money range {value!r} must be non-negative and low <= high")
    return Money(low=low, high=high)


PARAM_KINDS: Final = ("duration", "money", "count", "number", "salary_days", "text", "table")


Scalar = str | int | float | bool | None
# a row of a table of rows (rule templates, ``each:``): column -> a scalar or a list of them
Row = dict[str, Scalar | list[Scalar]]


def _table_entry(value: Any) -> Any:
    """Numbers are exact decimals, ``'50-200'`` a money range, anything else text; a row is
    kept as written (its cells are what ``$row.column`` stands for in a rule template)."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return finite_decimal(value, "a table cell")
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
    table: dict[str, str | int | float | Row] | None = Field(
        default=None,
        description="a lookup table (fine by severity, weight by source): key -> number, "
        "money range or text; read with {get: [$params.NAME, key]}; or key -> a row "
        "(column -> value), the rows a rule template (`each:`) expands over"
        " / 参数表:键 -> 数值、金额区间或文本;或键 -> 一行(列 -> 值),供规则模板展开",
    )
    doc: str | None = Field(default=None, description="what the parameter is for / 参数说明")

    @field_validator("count", "money", "number", "salary_days", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError(f"a number is expected, not the boolean {str(v).lower()}")
        return v

    @model_validator(mode="after")
    def _one(self) -> Param:
        given = [k for k in PARAM_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a parameter has exactly one of: " + ", ".join(PARAM_KINDS))
        if self.duration is not None:
            parse_bounded_duration(self.duration)
        if self.money is not None:
            parse_money(self.money)
        if self.number is not None:
            finite_decimal(self.number, "a number")
        if self.salary_days is not None:
            finite_decimal(self.salary_days, "a number of salary days")
        for key, cell in (self.table or {}).items():
            if isinstance(cell, dict):
                for column, v in cell.items():
                    for x in v if isinstance(v, list) else [v]:
                        if isinstance(x, float):
                            finite_decimal(x, f"table cell {key}.{column}")
            elif isinstance(cell, int | float) and not isinstance(cell, bool):
                finite_decimal(cell, f"table cell {key!r}")
            elif isinstance(cell, str) and _looks_non_finite(cell):
                raise ValueError(f"table cell {key!r} must be a finite number, not {cell[:40]!r}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in PARAM_KINDS if getattr(self, k) is not None)

    def value(self) -> Duration | Money | Decimal | int | str | dict[str, Any]:
        if self.table is not None:
            return {k: _table_entry(v) for k, v in self.table.items()}
        if self.duration is not None:
            return parse_bounded_duration(self.duration)
        if self.money is not None:
            return parse_money(self.money)
        if self.count is not None:
            return self.count
        if self.number is not None:
            return finite_decimal(self.number, "a number")
        if self.salary_days is not None:
            return finite_decimal(self.salary_days, "a number of salary days")
        assert self.text is not None
        return self.text


def _looks_non_finite(text: str) -> bool:
    """Text a table would otherwise read as a NaN or infinite number (``NaN``, ``-inf``...)."""
    try:
        return not Decimal(text.strip()).is_finite()
    except (InvalidOperation, ValueError):
        return False


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

    @field_validator("min", "max", mode="before")
    @classmethod
    def _finite_bound(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError(f"a bound is a number, not the boolean {str(v).lower()}")
        if isinstance(v, float | str):
            finite_decimal(v, "a bound")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> FieldSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}: no value could pass")
        if self.default is not None and not _default_fits(self.type, self.default):
            raise ValueError(
                f"the default {self.default!r} is not of type {self.type}: an event without the "
                "field would get a value the field itself refuses"
            )
        if self.default is not None and self.enum is not None and self.default not in self.enum:
            raise ValueError(f"the default {self.default!r} is not one of the enum {self.enum}")
        return self


def _default_fits(kind: str, value: Any) -> bool:
    """Whether a field's ``default`` is a value of its declared type (as events carry it)."""
    if kind in ("str", "time", "date"):
        return isinstance(value, str) or (kind == "date" and isinstance(value, _date))
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "decimal":
        if isinstance(value, bool):
            return False
        try:
            finite_decimal(value, "a default")
        except ValueError:
            return False
        return True
    item = {"list[str]": str, "list[int]": int}.get(kind)
    return (
        item is not None
        and isinstance(value, list)
        and all(isinstance(v, item) and not isinstance(v, bool) for v in value)
    )


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
    accept_only: bool = Field(
        default=False,
        description="histories may carry it but no rule needs to use it (a vocabulary "
        "declared in full): `check` does not warn that it is unused (PE405)"
        " / 仅接受:历史可包含此事件,无需规则使用,check 不报未使用警告",
    )

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
    each: str | None = Field(
        default=None,
        description="a rule template: one rule per row of this table parameter ($params.NAME);"
        " `{row}` in the id and `$row` / `$row.column` in the rule stand for the row"
        " / 规则模板:参数表的每一行展开为一条规则",
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


class NamedCondition(_Strict):
    """A condition with a name (``conditions: {NAME: {when: ...}}``), written once and used in
    any condition position as ``{condition: NAME}``; it is checked and compiled at each use,
    in that place's scope. / 具名条件:声明一次,在任何条件位置以 ``{condition: 名称}`` 引用。"""

    doc: str | None = Field(default=None, description="what the condition means / 条件说明")
    when: Condition = Field(description="the condition / 条件")


class PolicyInvariant(_Strict):
    """Something that must hold for every subject at every ``as_of`` (``$subject`` bound), e.g.
    "no customer carries more than three open claims"; checked by ``policyengine.testing``.
    不变式:任何时刻对每个主体都须成立的条件。"""

    id: str = Field(min_length=1)
    doc: str | None = None
    holds: Condition


MAX_RANGE_DAYS: Final = 366


def parse_days(text: Any) -> tuple[_date, ...]:
    """``2027-01-04`` or a range ``2027-02-10..2027-02-16`` (both ends included, at most a
    year: a range is a holiday week, not a calendar) -> its days; ValueError otherwise."""
    if isinstance(text, _date):
        return (text,)
    if not isinstance(text, str):
        raise ValueError(f"a day is a date like 2027-01-04, not {type(text).__name__}")
    first_text, sep, last_text = text.partition("..")
    try:
        first = _date.fromisoformat(first_text.strip())
        last = _date.fromisoformat(last_text.strip()) if sep else first
    except ValueError:
        raise ValueError(
            f"cannot read {text[:40]!r} as a day; write 2027-01-04 or 2027-02-10..2027-02-16"
        ) from None
    if last < first:
        raise ValueError(f"the range {text!r} ends before it starts")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise ValueError(f"the range {text!r} is longer than a year; list the days off instead")
    return tuple(_date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1))


def _days_item(value: Any) -> str:
    parse_days(value)
    return value.isoformat() if isinstance(value, _date) else str(value)


Days = list[Annotated[Any, AfterValidator(_days_item)]]


class CalendarSpec(_Strict):
    """Working days and business hours, for ``working days``, ``working hours`` and ``roll``.
    Several files' declarations merge: days are unions, the other settings must agree.
    工作日历:法定日历或周一至周五,加上公司的休息日、调休工作日与营业时间。"""

    base: Literal["china", "weekdays"] | None = Field(
        default=None,
        description="china: the statutory calendar (chinesecalendar) for the years it knows;"
        " weekdays: Monday-Friday / 基础日历:法定(china)或周一至周五(weekdays)",
    )
    holidays: Days = Field(
        default_factory=list,
        description="extra days off (or a newly announced statutory year): 2027-01-04 or"
        " 2027-02-10..2027-02-16 / 额外休息日(或新公布年份的法定假日)",
    )
    workdays: Days = Field(
        default_factory=list,
        description="extra working days (调休, 大小周 Saturdays) / 额外工作日(调休、大小周)",
    )
    hours: list[str] | None = Field(
        default=None,
        description="business hours for `working hours`, default 09:00-18:00"
        " / 营业时间,默认 09:00-18:00",
    )
    outside: Literal["error", "weekdays"] | None = Field(
        default=None,
        description="a day of a year nothing declares: error (PE302), or Monday-Friday with a"
        " notice / 未知年份:报错,或按周一至周五计算并给出提示",
    )

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            parse_hours(v)
        return v


class CalendarFile(_Strict):
    """A calendar in a file of its own (``calendar=`` / ``--calendar``): a company's year.
    独立的日历文件。"""

    schema_: str | None = Field(default=None, alias="$schema")
    calendar: CalendarSpec
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


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
    conditions: dict[str, NamedCondition] = Field(
        default_factory=dict,
        description="named conditions, used as {condition: NAME}"
        " / 具名条件,以 {condition: 名称} 引用",
    )
    labels: dict[str, Label] = Field(
        default_factory=dict, description="labels (classifications) / 标签(分类)"
    )
    metrics: list[Metric] = Field(default_factory=list, description="metrics / 指标")
    awards: list[Award] = Field(default_factory=list, description="awards / 评选")
    invariants: list[PolicyInvariant] = Field(
        default_factory=list, description="invariants / 不变式"
    )
    calendar: CalendarSpec | None = Field(
        default=None, description="working days and business hours / 工作日历与营业时间"
    )
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OverlayMeta(_Strict):
    """A company overlay's identity, and the pack it adapts. It inherits the base's timezone,
    currency and subject. / 公司补充规定的标识及其所依据的策略包。"""

    id: str = Field(min_length=1, description="the overlay id / 补充规定标识")
    title: str = Field(description="the overlay's title / 补充规定标题")
    version: str = Field(description="the overlay's version / 补充规定版本")
    base: str | None = Field(
        default=None,
        description="the policy file or folder it adapts, relative to this file"
        " / 所依据的策略文件或文件夹(相对本文件)",
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v


class DisableSpec(_Strict):
    """A base rule the company does not apply, and why. / 停用的基础规则及其理由。"""

    rule: str = Field(min_length=1, description="the id of the base rule / 基础规则编号")
    reason: str = Field(min_length=1, description="why it is disabled / 停用理由")


class OverlayFile(_Strict):
    """A company overlay: layered on a base pack without editing it (``overlay:`` instead of
    ``policy:``). 公司补充规定:在不修改策略包的前提下增加、替换或停用规则。"""

    schema_: str | None = Field(default=None, alias="$schema")
    overlay: OverlayMeta = Field(description="the overlay's identity / 补充规定标识")
    clauses: list[Clause] = Field(default_factory=list, description="new clauses / 新条款")
    params: dict[str, Param] = Field(
        default_factory=dict,
        description="new parameters, or the company's declaration of a base parameter"
        " / 新参数,或公司对基础参数的取值",
    )
    events: dict[str, EventType] = Field(default_factory=dict, description="new event types")
    rules: list[Rule] = Field(default_factory=list, description="new rules / 新规则")
    replace: list[Rule] = Field(
        default_factory=list,
        description="base rules replaced in place, by id / 按编号原位替换的基础规则",
    )
    disable: list[DisableSpec] = Field(
        default_factory=list, description="base rules not applied / 停用的基础规则"
    )
    calendar: CalendarSpec | None = Field(
        default=None, description="the company's days off and hours / 公司日历"
    )
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


for _m in (
    Target,
    Metric,
    Grade,
    Label,
    LabelCase,
    PolicyInvariant,
    PolicyFile,
    CalendarFile,
    OverlayFile,
):
    _m.model_rebuild()
