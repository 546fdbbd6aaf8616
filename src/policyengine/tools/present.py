"""How a decision's values read to a manager: one home for the words and formats of every output.

The terminal tables, the HTML report, the Excel statements and the demo show a value the same
way: an instant as local time in the policy's timezone (``2026-03-02 09:00``), money as
``¥200`` or a range ``¥20–100`` (a range is the manual's, for the manager to settle), a clause
list as ``HX-RM-3, HX-RM-4``, nothing as ``—``; never a Python repr. Labels come in English and
Chinese (``--lang en|zh``); text written in the packs (clause text, duties, reasons) is shown as
written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

import pendulum

Lang = Literal["en", "zh"]
LANGS: Final[tuple[Lang, ...]] = ("en", "zh")
NOTHING: Final = "—"
_SYMBOLS: Final[dict[str, str]] = {"CNY": "¥", "RMB": "¥", "USD": "$", "EUR": "€"}


def when(value: Any, tz: str | None = None) -> str:
    """An instant as ``YYYY-MM-DD HH:MM`` local time (seconds only when not zero)."""
    if value is None:
        return NOTHING
    if isinstance(value, datetime):
        dt = pendulum.instance(value)
        if tz is not None:
            dt = dt.in_timezone(tz)
        fmt = "%Y-%m-%d %H:%M" if dt.second == 0 and dt.microsecond == 0 else "%Y-%m-%d %H:%M:%S"
        return dt.strftime(fmt)
    return plain(value)


def number(value: Decimal | int | float) -> str:
    """A number without exponent or trailing zeros after the point (``92.4``, ``200``)."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    if d == d.to_integral():
        return format(d.quantize(Decimal(1)), "f")
    return format(d.normalize(), "f")


def money(low: Any, high: Any = None, currency: str | None = "CNY") -> str:
    """``¥200``, or ``¥20–100`` for a range the manual leaves to the manager."""
    if low is None and high is None:
        return NOTHING
    symbol = _SYMBOLS.get(currency or "", "")
    prefix = symbol if symbol else ""
    suffix = "" if symbol or not currency else f" {currency}"
    if high is None or high == low:
        return f"{prefix}{number(low)}{suffix}"
    return f"{prefix}{number(low)}–{number(high)}{suffix}"


def currency_symbol(currency: str | None) -> str:
    """``¥`` for CNY (and RMB), ``$``, ``€``; empty for a currency without a symbol here."""
    return _SYMBOLS.get(currency or "", "")


def excel_money(currency: str | None = "CNY") -> str:
    """The Excel number format of a money cell: ``"¥"#,##0.00``, or ``#,##0.00 "GBP"``."""
    sign = currency_symbol(currency)
    if sign:
        return f'"{sign}"#,##0.00'
    return f'#,##0.00 "{currency}"' if currency else "#,##0.00"


def plain(value: Any) -> str:
    """Any other value: text as written, lists joined, numbers plain, nothing as a dash."""
    if value is None:
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal | int | float):
        return number(value)
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(plain(v) for v in value) if value else NOTHING
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items()) if value else NOTHING
    return str(value)


# label -> (English, Chinese): every heading and status word any output shows
WORDS: Final[dict[str, tuple[str, str]]] = {
    "owners": ("owners", "客户归属"),
    "owner": ("owner", "归属人"),
    "subject": ("customer", "客户"),
    "since": ("since", "起始"),
    "until": ("until", "截止"),
    "rule": ("rule", "规则"),
    "clause": ("clause", "条款"),
    "events": ("events", "事件"),
    "penalties": ("penalties", "处罚"),
    "party": ("party", "当事人"),
    "sanction": ("sanction", "处罚方式"),
    "amount": ("amount", "金额"),
    "offence": ("offence", "违规次数"),
    "at": ("at", "时间"),
    "obligations": ("duties", "义务"),
    "duty": ("duty", "义务"),
    "status": ("status", "状态"),
    "due": ("due", "期限"),
    "met_by": ("met by", "履行事件"),
    "violations": ("violations", "违规"),
    "what": ("what", "事项"),
    "credits": ("credits", "奖励与提成"),
    "kind": ("kind", "类别"),
    "metrics": ("metrics", "指标"),
    "metric": ("metric", "指标"),
    "period": ("period", "周期"),
    "value": ("value", "数值"),
    "grade": ("grade", "等级"),
    "awards": ("awards", "评选"),
    "award": ("award", "奖项"),
    "winner": ("winner", "获奖人"),
    "notices": ("notices", "提示"),
    "detail": ("detail", "说明"),
    "total": ("total", "合计"),
    "employee": ("employee", "员工"),
    "month": ("month", "月份"),
    "as_of": ("as of", "截至"),
    # the HTML report (tools/report.py)
    "report_title": ("Policy report", "制度执行报告"),
    "customers": ("customers", "客户"),
    "timeline": ("timeline", "时间线"),
    "ownership": ("ownership", "归属"),
    "claim": ("claim", "认领"),
    "company": ("company pool", "公司公共池"),
    "met_at": ("met at", "履行时间"),
    "credit": ("credit", "奖励与提成"),
    "fines_total": ("fines total", "罚款合计"),
    "credits_total": ("credits total", "奖励与提成合计"),
    "range_note": (
        "a range (¥20–100) is the manual's: the manager settles the amount",
        "区间金额（如 ¥20–100）依制度原文列出，由管理者确定具体金额",
    ),
    "none": ("none", "无"),
    "statements": ("statements by employee and month", "员工月度结算单"),
    "departments": ("departments by month", "部门月度汇总"),
    "all_departments": ("all", "全部"),
    "unassigned": ("unassigned", "未分配部门"),
    "one_department": (
        "no department mapping: every party is counted in one department, all",
        "未提供部门对照：所有人员计入同一部门（全部）",
    ),
    "target_missed": ("missed", "未达标"),
    "rules": ("rules", "规则"),
    "clauses": ("clauses", "条款"),
    "timezone": ("timezone", "时区"),
    "generated": ("generated by policyengine", "由 policyengine 生成"),
    # the Excel statements (tools/statements.py)
    "amount_min": ("amount min", "最低金额"),
    "amount_max": ("amount max", "最高金额"),
    "salary_days": ("salary days", "扣薪天数"),
    "non_cash": ("non-cash sanctions", "非金钱处罚"),
    "overdue_duties": ("overdue duties", "逾期未履行义务"),
    "no_penalties": ("no penalties", "无处罚"),
    "currency": ("currency", "币种"),
    "clause_text": ("clause text", "条款原文"),
    "reading": ("reading", "解读"),
    # the terminal tables, explain and the demo (tools/tables.py, tools/explain.py, demo.py)
    "title": ("{head} (as of {as_of}, {tz})", "{head}（截至 {as_of}，{tz}）"),
    "nothing_decided": ("nothing decided", "没有任何决定"),
    "event": ("event", "事件"),
    "reason": ("reason", "原因"),
    "label": ("label", "标签"),
    "target": ("target", "目标"),
    "target_met": ("met", "达标"),
    "place": ("place", "名次"),
    "rejected": ("rejected events", "不予采信的事件"),
    "classifications": ("classifications", "分类"),
    "tiers": ("customer tiers", "客户等级"),
    "so_far": ("{period} (so far)", "{period}（未结束）"),
    "salary_of_days": ("{days} days of salary", "{days}天工资"),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "now": ("now", "至今"),
    "duplicate": ("duplicate", "重复"),
    "ignored": ("ignored", "已忽略"),
    "conflict": ("conflict", "冲突"),
    "calendar": ("calendar", "日历"),
    "claim_open": ("open", "有效"),
    "claim_lapsed": ("lapsed", "已失效"),
    "claim_released": ("released", "已释放"),
    "x_as_of": ("{subject} (as of {as_of})", "{subject}（截至 {as_of}）"),
    "x_no_owner": ("no owner: nothing made anyone the owner", "无归属人：没有规则指定归属"),
    "x_owner_from": ("owner {owner} from {start}{until}", "归属人 {owner}，自 {start}{until}"),
    "x_until": (" until {end}", " 至 {end}"),
    "x_current": (" (current)", "（当前）"),
    "x_owner_at": ("owner at {at}: {owner}", "{at} 的归属人：{owner}"),
    "x_since": ("({owner} since {start}{until})", "（{owner} 自 {start}{until}）"),
    "x_nobody": ("nobody", "无人"),
    "x_because": (
        "because rule {rule} ({clauses}) on {events}",
        "依据规则 {rule}（{clauses}），事件 {events}",
    ),
    "x_because_events": (
        "because rule {rule} on events {events}",
        "依据规则 {rule}，事件 {events}",
    ),
    "x_no_event": ("no event", "无事件"),
    "x_by_overlay": (" [{how} by overlay {overlay}]", " [覆盖层 {overlay} {how}]"),
    "added": ("added", "新增"),
    "replaced": ("replaced", "替换"),
    "disabled": ("disabled", "停用"),
    "x_event": ("event {id}: {type} at {at}", "事件 {id}：{type}，{at}"),
    "x_event_alone": ("event {id}", "事件 {id}"),
    "x_claim": ("{at} claim of {party}: {status}", "{at} {party} 的认领：{status}"),
    "x_penalty": (
        "penalty: {party} {sanction}{amount}{units}, offence #{offence}",
        "处罚：{party} {sanction}{amount}{units}，第{offence}次违规",
    ),
    "x_units": (" ({units} units)", "（{units}个单位）"),
    "x_credit": ("credit: {party} {kind} {amount}", "奖励与提成：{party} {kind} {amount}"),
    "x_duty": (
        "duty of {party}: {what}, {due}: {status}{met}",
        "{party} 的义务：{what}，{due}：{status}{met}",
    ),
    "x_due": ("due {due}", "期限 {due}"),
    "x_no_deadline": ("no deadline", "无期限"),
    "x_met_by": (" by {event}", "（{event}）"),
    "x_met_by_at": (" by {event} at {at}", "（{event}，{at}）"),
    "x_violation": (
        "violation by {party}: {what} (event {event})",
        "{party} 违规：{what}（事件 {event}）",
    ),
    "x_label": ("label {name}: {value}", "标签 {name}：{value}"),
    "x_classified": ("{label}{about}: {value} ({reason})", "{label}{about}：{value}（{reason}）"),
    "x_no_case": ("no case applied", "无适用情形"),
    "x_flag": ("flag {name}: {value}", "标记 {name}：{value}"),
    "x_overlay": (
        "overlay {id} {version} ({file}): added {added}; replaced {replaced}{off}",
        "覆盖层 {id} {version}（{file}）：新增 {added}；替换 {replaced}{off}",
    ),
    "x_overlay_off": ("; disabled {rule} ({why})", "；停用 {rule}（{why}）"),
    "x_no_rule": ("no rule", "无规则"),
    "x_what_if": ("what would have changed it:", "怎样会改变结果："),
    "x_awaited": ("the awaited event", "所等待的事件"),
    "x_or": (" or ", " 或 "),
    "x_sep": ("; ", "；"),
    "x_if": (
        "{a_event}{by} ({sf} {subject}) {when} {due} would have met '{what}' "
        "(rule {rule}, {clauses})",
        "若{who}在 {due}{when}有 {event}（{sf} {subject}），"
        "即可履行“{what}”（规则 {rule}，{clauses}）",
    ),
    "x_if_by": ("by", "之前（含）"),
    "x_if_before": ("before", "之前"),
    "x_if_late": (
        "{head}; it came late, {at} ({event})",
        "{head}；实际于 {at} 逾期完成（{event}）",
    ),
    "x_if_overdue": ("{head}; it is overdue", "{head}；目前已逾期"),
    "x_if_missed": ("{head}; missing it: {costs}", "{head}；错过的后果：{costs}"),
    "x_if_taker": (
        "; then {owner} took the {sf} at {at} (rule {rule}, {clauses})",
        "；随后 {owner} 于 {at} 取得该{sf}（规则 {rule}，{clauses}）",
    ),
    "x_if_kept": (
        ". In time, {party} would have kept the claim",
        "。若按时完成，{party} 本可保留认领",
    ),
    "x_cost_claim": ("the claim of {party} {status}", "{party} 的认领{status}"),
    "x_cost_owner": ("the owner became {owner}", "归属人变为 {owner}"),
    "x_cost_penalty": ("{party} got {a_sanction}", "{party} 受到{sanction}"),
    "x_cost_credit": ("{party} was credited {amount} ({kind})", "{party} 获得 {amount}（{kind}）"),
    "x_cost_flag": ("flag {flag} set to {value}", "标记 {flag} 设为 {value}"),
    "x_cost_counter": (
        "counter {counter} of {party} became {value}",
        "{party} 的计数 {counter} 变为 {value}",
    ),
    "x_cost_violation": ("a violation by {party}: {what}", "{party} 违规：{what}"),
    "x_why": ("Why does {subject} belong to whom it does?", "{subject} 为什么归属现在的归属人？"),
    # `policyengine describe` (tools/describe.py): what an integrator needs to build a history
    "d_head": (
        "{id} {version} (timezone {tz}, currency {currency}, subject field {subject})",
        "{id} {version}（时区 {tz}，币种 {currency}，客户字段 {subject}）",
    ),
    "d_event_types": ("event types", "事件类型"),
    "d_field": ("field", "字段"),
    "d_type": ("type", "类型"),
    "d_optional": ("optional", "可省略"),
    "d_enum": ("allowed values", "允许取值"),
    "d_default": ("default", "缺省值"),
    "d_doc": ("meaning", "说明"),
    "d_no_fields": ("no fields", "无字段"),
    "d_params": ("parameters", "参数"),
    "d_param": ("parameter", "参数名"),
    # statuses and sanctions
    "met": ("met", "已按时履行"),
    "late": ("late", "逾期履行"),
    "overdue": ("overdue", "逾期未履行"),
    "open": ("open", "待履行"),
    "cancelled": ("cancelled", "已撤销"),
    "fine": ("fine", "罚款"),
    "salary_deduction": ("salary deduction", "扣工资"),
    "warning": ("warning", "警告"),
    "transfer": ("transfer", "调岗"),
    "dismissal": ("dismissal", "开除"),
    "confiscation": ("confiscation", "没收"),
}


def word(key: str, lang: Lang = "en") -> str:
    """The label ``key`` in ``lang``; an unknown key is shown as it is (a pack's own word)."""
    found = WORDS.get(key)
    if found is None:
        return key
    return found[1] if lang == "zh" else found[0]
