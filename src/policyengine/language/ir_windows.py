"""The intermediate form's windows and calendars: a duration as the deadline the core computes
(``times.Duration.due`` written down as months, microseconds, a local midnight, working days
or business hours), and the policy's working days as data (the days that differ from
Monday-Friday), so the core needs no Python callback to count them. Kept apart from ``ir`` so
that each stays small enough to read."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any, Final

from policyengine.calendars import statutory
from policyengine.language import model as m
from policyengine.language.ir_values import _Lowers, working_hours
from policyengine.times import _FIXED_US, Duration, parse_duration, steady_offset

__all__ = ["calendar", "duration", "window"]

_DAY_US: Final = 86_400_000_000


def window(low: _Lowers, value: Any, *path: str | int) -> dict[str, Any]:
    """``within``/``after`` as ``Compiler.window`` reads a duration (written, or a
    parameter); a window computed from the trigger is not described."""
    found: Any = value
    if isinstance(value, str) and value.startswith("$params.") and value.count(".") == 1:
        found = low.c.params.get(value[len("$params.") :])
    elif isinstance(value, str) and m.is_reference(value):
        raise low.outside("a computed window", *path)
    if not isinstance(found, Duration):
        try:
            found = parse_duration(str(found))
        except ValueError as exc:
            raise low.outside("a computed window", *path) from exc
    return duration(low, found, *path, working=True)


def calendar(low: _Lowers) -> dict[str, Any]:
    """The working days as data (``Calendar.is_workday``): the days whose status differs
    from Monday-Friday, as days since 1970-01-01, in the years the calendar knows without
    guessing (all, for ``base: weekdays``); a day of another year is left to the engine
    (its error, or its guess and notice)."""
    cal = low.c.calendar
    epoch = date(1970, 1, 1).toordinal()
    if cal.base == "weekdays":
        days: Iterable[date] = cal.holidays | cal.workdays
        years: list[int] | None = None
    else:
        try:
            known = statutory()[2]
        except ImportError as exc:  # the engine cannot count them either
            raise low.outside("working days without the statutory calendar") from exc
        years = sorted(set(known) | cal.declared_years)
        days = (
            date.fromordinal(o)
            for y in years
            for o in range(date(y, 1, 1).toordinal(), date(y + 1, 1, 1).toordinal())
        )
    odd = sorted(d.toordinal() - epoch for d in days if cal.is_workday(d) != (d.weekday() < 5))
    return {"exceptions": odd, "years": years, "hours": [list(h) for h in cal.hours]}


def duration(low: _Lowers, d: Duration, *path: str | int, working: bool = False) -> dict[str, Any]:
    """The deadline as ``times.Duration.due`` computes it: ``months`` calendar months
    (``add_months`` on the wall time, the zone's steady ``offset``), then ``us`` after the
    start (or, with ``midnight``, after the local midnight that begins the start's day,
    the zone's offset being ``midnight``), inclusive or not, from ``from`` on."""
    out: dict[str, Any] = {"us": 0, "months": 0, "offset": 0, "from": None}
    fixed = _FIXED_US.get(d.unit)
    if fixed is not None:
        return {**out, "us": d.amount * fixed, "midnight": None, "inclusive": True}
    steady = steady_offset(low.c.timezone)
    # a local day is 24 h only after the timezone's last offset change
    if d.unit in ("day", "week") and steady is not None:
        days = d.amount * (7 if d.unit == "week" else 1)
        return {
            **out,
            "us": days * _DAY_US,
            "from": steady[0],
            "midnight": None,
            "inclusive": True,
        }
    if d.unit in ("same_day", "next_day") and steady is not None:
        days = d.amount + (1 if d.unit == "same_day" else 2)
        return {
            **out,
            "us": days * _DAY_US,
            "from": steady[0],
            "midnight": steady[1],
            "inclusive": False,
        }
    if d.unit in ("month", "year") and steady is not None:
        months = d.amount * (12 if d.unit == "year" else 1)
        return {
            **out,
            "months": months,
            "offset": steady[1],
            "from": steady[0],
            "midnight": None,
            "inclusive": True,
        }
    if (hours := working_hours(low, d, working)) is not None:  # business hours
        return hours
    if d.unit == "working_day" and working and steady is not None:
        # the same wall time, that many working days on (the policy's calendar)
        low.working = True
        return {
            **out,
            "working_days": d.amount,
            "offset": steady[1],
            "from": steady[0],
            "midnight": None,
            "inclusive": True,
        }
    if d.unit == "month_end" and steady is not None:
        # the local month's first midnight, 1 + amount months on, exclusive
        return {
            **out,
            "months": 1 + d.amount,
            "offset": steady[1],
            "from": steady[0],
            "midnight": steady[1],
            "inclusive": False,
            "month_start": True,
        }
    raise low.outside(f"the window {d.text!r}", *path)
