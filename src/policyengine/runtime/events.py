"""History input: plain mappings -> checked, ordered events, or one EventError with all problems.

Nothing is evaluated until the whole history is valid ("nothing half-applied"). Events are
ordered by timestamp, ties keeping their input order; a repeated id is kept once and
reported; an undeclared type is an error unless the policy says ``unknown_events: ignore``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from policyengine.errors import EventError, Problem, did_you_mean
from policyengine.language.compiler import CompiledPolicy, FieldCheck
from policyengine.times import instant_us

Event = dict[str, Any]  # fields plus "id", "type" and "at" (epoch microseconds)


@dataclass
class History:
    events: list[Event]
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (id, detail)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # id -> original timestamp text


def _derived_id(raw: Mapping[str, Any], index: int) -> str:
    digest = hashlib.sha1(
        json.dumps(dict(raw), sort_keys=True, default=str).encode("utf-8")
    ).hexdigest()[:10]
    return f"auto-{index}-{digest}"


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_field(check: FieldCheck, value: Any) -> str | None:
    """A message if ``value`` does not fit the declared field, else None."""
    t = check.type
    if t == "str":
        if not isinstance(value, str) or not value:
            return "must be non-empty text"
    elif t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
    elif t == "bool":
        if not isinstance(value, bool):
            return "must be true or false"
    elif t == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | str | Decimal | float):
            return "must be a number"
        number = _normalise(check, value)
        if not isinstance(number, Decimal) or not number.is_finite():
            return 'must be a finite number, like 12.50 or "12.50"'
    elif t == "time":
        if instant_us(value) is None:
            return "must be an ISO 8601 timestamp with a UTC offset"
    elif t == "date" and not _is_date(value):
        return "must be a calendar date like 2026-03-01"
    elif t.startswith("list["):
        inner = "str" if t == "list[str]" else "int"
        if not isinstance(value, list):
            return "must be a list"
        for item in value:
            if inner == "str" and (not isinstance(item, str) or not item):
                return "must be a list of non-empty text"
            if inner == "int" and (isinstance(item, bool) or not isinstance(item, int)):
                return "must be a list of whole numbers"
    if check.enum is not None:
        items = value if isinstance(value, list) else [value]
        bad = [x for x in items if x not in check.enum]
        if bad:
            return f"{bad[0]!r} is not one of {sorted(map(str, check.enum))}"
    number = _normalise(check, value) if t == "decimal" else value  # "12.50" is checked too
    if not isinstance(number, int | float | Decimal) or isinstance(number, bool):
        return None
    if check.min is not None and number < check.min:
        return f"must be at least {check.min}"
    if check.max is not None and number > check.max:
        return f"must be at most {check.max}"
    return None


def _normalise(check: FieldCheck, value: Any) -> Any:
    if check.type == "decimal":
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    if check.type == "time":
        return instant_us(value)
    return value


_Plan = tuple[tuple[tuple[str, bool, bool, Any, FieldCheck], ...], frozenset[str]]


def _plan(checks: tuple[FieldCheck, ...]) -> _Plan:
    """Per declared field: whether plain non-empty text is accepted as is (a text field with
    no enum), so the common field costs one type test; and the keys an event may carry."""
    fields = tuple(
        (c.name, c.type == "str" and c.enum is None, c.required, c.default, c) for c in checks
    )
    return fields, frozenset({"id", "type", "at", *(c.name for c in checks)})


def prepare(policy: CompiledPolicy, raw_events: Iterable[Any]) -> History:
    problems: list[Problem] = []
    out: list[tuple[int, int, Event]] = []
    seen: dict[str, Mapping[str, Any]] = {}
    history = History([])
    plans: dict[Any, _Plan] = {}  # per event type, built on first sight
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, Mapping):
            problems.append(
                Problem(
                    "PE207",
                    f"event #{index} is a {type(raw).__name__}, not a mapping",
                    event_id=f"#{index}",
                )
            )
            continue
        raw_id = raw.get("id")
        if raw_id is None:
            eid = _derived_id(raw, index)
        elif not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or raw_id == "":
            problems.append(
                Problem("PE203", "id must be non-empty text", event_id=f"#{index}", field="id")
            )
            continue
        else:
            eid = str(raw_id)
        if eid in seen:
            same = dict(seen[eid]) == dict(raw)
            history.duplicates.append(
                (
                    eid,
                    "repeated event ignored"
                    if same
                    else "a different event reuses this id; the later one was ignored",
                )
            )
            continue
        seen[eid] = raw
        etype = raw.get("type")
        checks = policy.events.get(etype) if isinstance(etype, str) else None
        if checks is None:
            if isinstance(etype, str) and policy.unknown_events == "ignore":
                history.ignored.append((eid, f"type {etype!r} is not declared by the policy"))
                continue
            problems.append(
                Problem(
                    "PE201" if etype is not None else "PE202",
                    f"unknown event type {etype!r}" if etype is not None else "missing event type",
                    hint=did_you_mean(str(etype), policy.events)
                    or "declare the type in the policy, or set `unknown_events: ignore`",
                    event_id=eid,
                    field="type",
                )
            )
            continue
        at_raw = raw.get("at")
        at = instant_us(at_raw)
        if at is None:
            code = "PE202" if at_raw is None else "PE204"
            msg = (
                "missing timestamp `at`"
                if at_raw is None
                else f"timestamp {at_raw!r} has no UTC offset or is not ISO 8601"
            )
            problems.append(
                Problem(
                    code, msg, hint="write e.g. 2026-03-01T10:00:00+08:00", event_id=eid, field="at"
                )
            )
            continue
        event: Event = {"id": eid, "type": etype, "at": at}
        plan = plans.get(etype)
        if plan is None:
            plan = plans[etype] = _plan(checks)
        fields, allowed = plan
        bad = False
        for name, fast, required, default, check in fields:
            value = raw.get(name)
            if value is None:
                if required:
                    problems.append(
                        Problem(
                            "PE202",
                            f"missing field {name!r} of {etype}",
                            event_id=eid,
                            field=name,
                        )
                    )
                    bad = True
                elif default is not None:
                    event[name] = default
                continue
            if fast and type(value) is str and value:
                event[name] = value  # plain text, the common case: nothing to convert
                continue
            complaint = _check_field(check, value)
            if complaint is not None:
                problems.append(Problem("PE203", f"{name} {complaint}", event_id=eid, field=name))
                bad = True
                continue
            event[name] = _normalise(check, value)
        if not allowed.issuperset(raw):
            declared = {check.name for check in checks}
            for key in raw:
                if key not in allowed:
                    problems.append(
                        Problem(
                            "PE205",
                            f"field {key!r} is not declared for {etype}",
                            hint=did_you_mean(str(key), declared),
                            event_id=eid,
                            field=str(key),
                        )
                    )
            bad = True
        if not bad:
            out.append((at, index, event))
            if isinstance(at_raw, str):
                history.texts[eid] = at_raw
    if problems:
        raise EventError(problems)
    out.sort(key=lambda x: (x[0], x[1]))
    history.events = [e for _, _, e in out]
    return history
