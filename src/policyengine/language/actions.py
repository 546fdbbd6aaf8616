"""Stage 2, validate: what a rule does, as pydantic models.

Actions (``{assign: ...}``, ``{penalty: ...}``, ``{expect: ...}``...), each a mapping with
exactly one action key picked by a callable discriminator, and what they carry: penalties and
their ladders, expectations (duties with deadlines) with their steps and cancelling events.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from policyengine.language.expressions import Condition, Operand, _Strict


class LadderStep(_Strict):
    """One step of an escalation ladder: the sanction of the n-th offence.
    累进处罚的一级:第 n 次违规的处罚。"""

    sanction: Literal[
        "fine", "salary_deduction", "warning", "transfer", "dismissal", "confiscation"
    ]
    amount: Operand = None
    salary_days: Operand = None


LadderPeriod = Literal["day", "week", "month", "year"]


class LadderSpec(_Strict):
    """An escalation ladder with how its offences are counted: ``steps`` (the n-th offence
    takes step n, the last repeating), over a rolling ``window`` (a duration: the offences of
    the party in the window ending at this one) or ``per`` local calendar period (the count
    restarts each period), under ``key`` (shared across rules) or the rule's id.
    累进阶梯及其计数方式:滚动时间窗、按日历周期重新计数、跨规则共享的计数键。"""

    steps: list[LadderStep] = Field(min_length=1)
    window: str | None = Field(
        default=None,
        description="count only the offences in this rolling duration (90 days, $params.name)"
        " / 只计该滚动时长内的违规",
    )
    per: LadderPeriod | None = Field(
        default=None,
        description="the count restarts each local calendar period / 按日历周期重新计数",
    )
    key: str | None = Field(
        default=None, description="share the count across rules (ladder_key) / 跨规则共享计数"
    )


class PenaltySpec(_Strict):
    """A sanction on a party: fixed, a range, per unit, in salary days, or an escalation ladder.

    With ``ladder``, the n-th offence of the party under this rule (or under ``ladder_key``,
    to share a count across rules) takes step n; the last step repeats. ``window`` counts only
    the offences in a rolling duration ending at this one, ``per`` restarts the count each local
    calendar period (both also accepted inside a mapping ``ladder: {steps, window, per, key}``).

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
    ladder: list[LadderStep] | LadderSpec | None = None
    ladder_key: str | None = None
    window: str | None = Field(
        default=None,
        description="a ladder counts only the offences in this rolling duration (90 days)"
        " / 阶梯只计该滚动时长内的违规",
    )
    per: LadderPeriod | None = Field(
        default=None,
        description="a ladder's count restarts each local calendar period / 阶梯按日历周期重新计数",
    )

    @model_validator(mode="after")
    def _shape(self) -> PenaltySpec:
        if (self.ladder is None) == (self.sanction is None):
            raise ValueError("give either `sanction` (with its amount) or `ladder`, not both")
        if self.ladder is None and (self.window is not None or self.per is not None):
            raise ValueError("`window` and `per` count the offences of a `ladder`")
        inner = self.ladder if isinstance(self.ladder, LadderSpec) else None
        if inner is not None:
            for outer, own, name in (
                (self.window, inner.window, "window"),
                (self.per, inner.per, "per"),
                (self.ladder_key, inner.key, "key"),
            ):
                if outer is not None and own is not None:
                    raise ValueError(f"give the ladder's `{name}` once, in the ladder or beside it")
        if self.ladder_window is not None and self.ladder_per is not None:
            raise ValueError("a ladder counts within a rolling `window` or `per` period, not both")
        if self.per_unit is not None and self.units is None:
            raise ValueError("`per_unit` needs `units` (what is counted)")
        if self.amount is not None and self.per_unit is not None:
            raise ValueError("give `amount` or `per_unit`, not both")
        return self

    # the ladder, whichever way it is written
    @property
    def ladder_steps(self) -> list[LadderStep] | None:
        return self.ladder.steps if isinstance(self.ladder, LadderSpec) else self.ladder

    @property
    def ladder_name(self) -> str | None:
        inner = self.ladder.key if isinstance(self.ladder, LadderSpec) else None
        return inner if inner is not None else self.ladder_key

    @property
    def ladder_window(self) -> str | None:
        inner = self.ladder.window if isinstance(self.ladder, LadderSpec) else None
        return inner if inner is not None else self.window

    @property
    def ladder_per(self) -> str | None:
        inner = self.ladder.per if isinstance(self.ladder, LadderSpec) else None
        return inner if inner is not None else self.per


class CreditSpec(_Strict):
    """A positive amount owed to a party: a commission, a bonus, a reward.
    给当事人的正向金额:提成、奖金、奖励。"""

    party: Operand
    kind: str = Field(description="what the credit is for: commission, bonus... / 名目")
    amount: Operand = Field(
        description="a number or a one-value money amount, not negative / 金额(非负)"
    )
    currency: str | None = Field(
        default=None, description="default: the policy's currency / 币种,默认为政策币种"
    )

    @field_validator("amount")
    @classmethod
    def _not_negative(cls, v: Any) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool) and v < 0:
            raise ValueError(f"a credit's amount is not negative, not {v!r}")
        return v


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
    """Events that end the expectation (and, for a recurring one, stop its renewals), or a
    pending timer. ``cancel_on:`` takes one such mapping or a list of them, each with its own
    ``match`` and ``where``; a cancelled duty is reported with status ``cancelled``.
    终止该期望(及其续期)或计时器的事件"""

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
    within: Operand = None
    after: Operand = None
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
    - ``repeat``: a rolling cadence: when met the duty is owed again, its window starting at
      the meeting event; when its deadline passes it is overdue (``missed`` runs) and stays
      the one duty owed, until the next matching event meets it late (``late`` runs) and the
      cadence restarts from that event;
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
    within: Operand = Field(
        default=None,
        description="the time limit: a duration (2 days, 4 working hours, $params.name) or a"
        " computed instant, date or duration ($event.promised_by) / 时限:时长或计算出的时刻",
    )
    after: Operand = Field(
        default=None,
        description="the window opens this long after the trigger, or at a computed instant"
        " / 时限窗口的起始延迟或起始时刻",
    )
    roll: Literal["next_working_day"] | None = Field(
        default=None,
        description="a deadline on a day off moves to the same time of the next working day"
        " / 截止日遇休息日顺延至下一个工作日",
    )
    every: Literal["day", "week", "month"] | None = Field(
        default=None, description="one duty per calendar period / 每个日历周期一项义务"
    )
    repeat: bool = Field(
        default=False,
        description="a rolling cadence: owed again from each meeting event, on time or late"
        " / 滚动周期:每次履行(含逾期履行)后从该事件起再次产生",
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
    cancel_on: CancelOn | list[CancelOn] | None = Field(
        default=None,
        description="events that cancel the duty: one entry or a list / 取消该义务的事件",
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


def cancel_entries(value: CancelOn | list[CancelOn] | None) -> list[CancelOn]:
    """``cancel_on:`` as a list of entries (one mapping is a list of one)."""
    if value is None:
        return []
    return [value] if isinstance(value, CancelOn) else list(value)


class TimerSpec(_Strict):
    """Run actions at an instant: ``after`` a duration from the setting event, or ``at`` an
    instant (or a date: its end) computed from it. No duty is owed: when the timer fires its
    ``then`` actions run with ``$trigger`` the setting event (no ``$event``), unless a
    ``cancel_on`` event came first; a timer set with the same ``key`` as a pending one
    replaces it.

    计时器:在某一时刻执行动作(不产生义务);可被取消,同 key 的新计时器替换旧的。
    """

    after: Operand = Field(
        default=None,
        description="how long after the setting event: a duration or a duration parameter"
        " / 设置事件之后多久",
    )
    at: Operand = Field(
        default=None,
        description="the instant, computed from the setting event (a date: its end)"
        " / 触发时刻(计算得出)",
    )
    then: list[Action] = Field(description="the actions when the timer fires / 触发时的动作")
    key: Operand = Field(
        default=None,
        description="one pending timer per key: a new one replaces it / 每个 key 一个计时器",
    )
    cancel_on: CancelOn | list[CancelOn] | None = Field(
        default=None, description="events that stop the timer / 取消计时器的事件"
    )

    @model_validator(mode="after")
    def _shape(self) -> TimerSpec:
        if (self.after is None) == (self.at is None):
            raise ValueError("a timer gives either `after` (a duration) or `at` (an instant)")
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


class CreditAction(_ActionBase):
    """Credit a party with an amount (commission, bonus, reward). / 给当事人记入正向金额。"""

    credit: CreditSpec


class ExpectAction(_ActionBase):
    """Create an expectation (a duty with a deadline). / 创建期望(有时限的义务)。"""

    expect: Expect


class TimerAction(_ActionBase):
    """Set a timer: actions at a later instant, without a duty. / 设置计时器。"""

    timer: TimerSpec


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
    "credit",
    "expect",
    "timer",
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
    | Annotated[CreditAction, Tag("credit")]
    | Annotated[ExpectAction, Tag("expect")]
    | Annotated[TimerAction, Tag("timer")]
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
        CreditAction: "credit",
        ExpectAction: "expect",
        TimerAction: "timer",
        SetAction: "set",
        ClearAction: "clear",
        AddAction: "add",
        RejectAction: "reject",
        ViolationAction: "violation",
    }
)


for _m in (CancelOn, Step, Expect, TimerSpec):
    _m.model_rebuild()
