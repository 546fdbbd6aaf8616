"""Which days are working days, and which hours are business hours: a calendar as data.

A ``Calendar`` is what a policy's ``calendar:`` block declares (``language`` builds it): a base
(the Chinese statutory calendar of the ``chinesecalendar`` package, or plain Monday-Friday),
the company's extra days off and extra working days, its business hours, and what to do on a
day the base does not know. It is immutable and compared by value, so one calendar serves
every evaluation of a policy; what an evaluation guessed (days counted Monday-Friday under
``outside: weekdays``) is written into the ``seen`` set the caller passes, never kept here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Final, Literal

from policyengine.errors import Code, EvaluationError, Problem

Base = Literal["china", "weekdays"]
Outside = Literal["error", "weekdays"]
US_PER_DAY: Final = 86_400_000_000
# business hours as (opening, closing) in microseconds after local midnight
Hours = tuple[tuple[int, int], ...]
DEFAULT_HOURS: Final[Hours] = ((9 * 3600 * 1_000_000, 18 * 3600 * 1_000_000),)
# what an evaluation guessed: year -> True (a mapping, so a snapshot stores it as a map)
Seen = dict[int, bool]


@lru_cache(maxsize=1)
def statutory() -> tuple[dict[date, object], dict[date, object], range]:
    """The package's holidays, make-up working days and the years it knows (2004-2026 in
    chinesecalendar 1.11), read once: its own ``is_workday`` raises outside them."""
    from chinese_calendar import constants  # maintained statutory holidays and make-up days

    holidays, workdays = constants.holidays, constants.workdays
    first = min(holidays).year
    last = max(max(holidays), max(workdays)).year
    return holidays, workdays, range(first, last + 1)


def known_years_text() -> str:
    years = statutory()[2]
    return f"{years.start}-{years.stop - 1}"


@dataclass(frozen=True, slots=True)
class Calendar:
    """One policy's working days and business hours.

    A day is a working day when it is declared one (``workdays``), is not when declared a day
    off (``holidays``), and otherwise as the base says. For ``base: china`` a year beyond the
    package's years is known when the policy declares any day of it (the State Council's
    schedule, added the day it is published); a year neither knows is, by ``outside``, an
    error (PE302) or counted Monday-Friday with a notice.
    """

    base: Base = "china"
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    hours: Hours = DEFAULT_HOURS
    outside: Outside = "error"
    declared_years: frozenset[int] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        years = frozenset(d.year for d in self.holidays | self.workdays)
        object.__setattr__(self, "declared_years", years)

    @property
    def hours_per_day(self) -> int:
        """Business microseconds in one working day."""
        return sum(b - a for a, b in self.hours)

    def knows(self, year: int) -> bool:
        """Whether the calendar can say, without guessing, which days of ``year`` are worked."""
        return self.base == "weekdays" or year in self.declared_years or year in statutory()[2]

    def is_workday(self, day: date, seen: Seen | None = None) -> bool:
        """Raises EvaluationError (PE302) for a day of a year nothing knows, unless
        ``outside: weekdays``: then Monday-Friday, and the year is written into ``seen``."""
        if day in self.holidays:
            return False
        if day in self.workdays:
            return True
        if self.base == "china":
            holidays, workdays, years = statutory()
            if day.year in years:
                return day in workdays or (day not in holidays and day.weekday() < 5)
            if day.year not in self.declared_years:
                if self.outside == "error":
                    raise outside_calendar(day)
                if seen is not None:
                    seen[day.year] = True
        return day.weekday() < 5

    def next_working_day(self, day: date, seen: Seen | None = None) -> date:
        """The first working day after ``day``."""
        day += timedelta(days=1)
        while not self.is_workday(day, seen):
            day += timedelta(days=1)
        return day

    def previous_working_day(self, day: date, seen: Seen | None = None) -> date:
        day -= timedelta(days=1)
        while not self.is_workday(day, seen):
            day -= timedelta(days=1)
        return day


STATUTORY: Final = Calendar()


def outside_calendar(day: date) -> EvaluationError:
    """PE302: a day of a year neither the base calendar nor the policy's declarations know."""
    return EvaluationError(
        [
            Problem(
                Code.OUTSIDE_CALENDAR,
                f"{day.isoformat()} is outside the years the working-day calendar knows "
                f"(the statutory calendar knows {known_years_text()}; the policy declares "
                f"no day of {day.year})",
                hint=f"declare {day.year}'s official holidays and make-up working days under "
                "`calendar:`, or set `outside: weekdays` to count Monday-Friday with a notice",
            )
        ]
    )


def guessed_notice(years: Iterable[int]) -> str:
    """The text of the notice an evaluation that guessed gives (``outside: weekdays``)."""
    listed = ", ".join(str(y) for y in sorted(years))
    return (
        f"working days in {listed} were counted Monday to Friday: the statutory calendar knows "
        f"{known_years_text()} and the policy declares no day of {listed} (outside: weekdays)"
    )


def parse_hours(spans: Iterable[str]) -> Hours:
    """``["09:00-12:00", "13:30-18:00"]`` -> ordered, non-overlapping (opening, closing);
    ValueError with a message an author can act on."""
    out: list[tuple[int, int]] = []
    for text in spans:
        if not isinstance(text, str) or text.count("-") != 1:
            raise ValueError(f"business hours are text like '09:00-18:00', not {text!r}")
        start_text, end_text = (p.strip() for p in text.split("-"))
        start, end = parse_clock(start_text), parse_clock(end_text, closing=True)
        if start is None or end is None:
            raise ValueError(f"cannot read {text!r} as business hours; write e.g. '09:00-18:00'")
        if start >= end:
            raise ValueError(f"business hours {text!r} close before they open")
        out.append((start, end))
    out.sort()
    if not out:
        raise ValueError("business hours list at least one span, e.g. ['09:00-18:00']")
    for (_, end), (start, _) in pairwise(out):
        if start < end:
            raise ValueError(f"business hours {spans!r} overlap")
    return tuple(out)


def parse_clock(text: str, *, closing: bool = False) -> int | None:
    """``HH:MM`` or ``HH:MM:SS`` -> microseconds after midnight (``24:00`` only as a closing
    time); None if it is not a time of day."""
    parts = text.strip().split(":")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() and len(p) == 2 for p in parts):
        return None
    h, m, s = (int(p) for p in [*parts, "00"][:3])
    if (h, m, s) == (24, 0, 0) and closing:
        return US_PER_DAY
    if h > 23 or m > 59 or s > 59:
        return None
    return ((h * 60 + m) * 60 + s) * 1_000_000


def clock_text(us_of_day: int) -> str:
    """Microseconds after midnight -> ``HH:MM:SS`` (``.ffffff`` when not whole seconds): text
    whose order is the order of the times, so comparisons with ``"09:00:00"`` are exact."""
    seconds, micro = divmod(us_of_day, 1_000_000)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{h:02d}:{m:02d}:{s:02d}" + (f".{micro:06d}" if micro else "")
