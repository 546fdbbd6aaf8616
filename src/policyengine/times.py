"""Time: instants, durations and calendars, read the way semantics.md reads the manuals.

The engine orders and compares instants as integer microseconds since the Unix epoch
(exact, cheap, hashable); calendar words ("1 month", "the same day", "3 working days")
are resolved with pendulum in the policy's timezone. A deadline is a pair
``(instant, inclusive)``: "within 2 days" is inclusive at T + 2 days, "the same day"
ends at the next local midnight, which is itself already too late.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final, Literal

import pendulum

from policyengine.calendars import US_PER_DAY, Calendar, Seen
from policyengine.errors import Code, EvaluationError, EventError, Problem

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_new_datetime: Final = datetime.__new__
US: Final = 1_000_000
_FIXED_US: Final[dict[str, int]] = {
    "second": US,
    "minute": 60 * US,
    "hour": 3600 * US,
}

Unit = Literal[
    "second",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
    "working_day",
    "working_hour",
    "working_minute",
    "same_day",
    "next_day",
    "month_end",
]

_UNIT_WORDS: Final[dict[str, Unit]] = {
    "s": "second",
    "sec": "second",
    "second": "second",
    "seconds": "second",
    "秒": "second",
    "min": "minute",
    "minute": "minute",
    "minutes": "minute",
    "分钟": "minute",
    "分鐘": "minute",
    "h": "hour",
    "hour": "hour",
    "hours": "hour",
    "小时": "hour",
    "小時": "hour",
    "d": "day",
    "day": "day",
    "days": "day",
    "天": "day",
    "日": "day",
    "week": "week",
    "weeks": "week",
    "周": "week",
    "週": "week",
    "month": "month",
    "months": "month",
    "个月": "month",
    "個月": "month",
    "月": "month",
    "year": "year",
    "years": "year",
    "年": "year",
    "working day": "working_day",
    "working days": "working_day",
    "workday": "working_day",
    "workdays": "working_day",
    "个工作日": "working_day",
    "個工作日": "working_day",
    "工作日": "working_day",
    "working hour": "working_hour",
    "working hours": "working_hour",
    "个工作小时": "working_hour",
    "個工作小時": "working_hour",
    "工作小时": "working_hour",
    "工作小時": "working_hour",
    "working minute": "working_minute",
    "working minutes": "working_minute",
    "工作分钟": "working_minute",
    "工作分鐘": "working_minute",
}
_ANCHORS: Final[dict[str, Unit]] = {
    "same day": "same_day",
    "the same day": "same_day",
    "当日": "same_day",
    "當日": "same_day",
    "当天": "same_day",
    "next day": "next_day",
    "the next day": "next_day",
    "次日": "next_day",
    "end of month": "month_end",
    "month end": "month_end",
    "月底": "month_end",
}
_DATE_UNITS: Final = frozenset({"day", "week", "month", "year", "working_day"})
_DURATION_RE: Final = re.compile(r"^\s*(\d+)\s*([A-Za-z\u4e00-\u9fff][A-Za-z \u4e00-\u9fff]*?)\s*$")


@dataclass(frozen=True, slots=True)
class Duration:
    """A span of time as a manual states it; resolved against a start instant and a timezone."""

    amount: int
    unit: Unit
    text: str

    @property
    def is_working_days(self) -> bool:
        return self.unit == "working_day"

    def due(
        self, start_us: int, tz: str, cal: Calendar, seen: Seen | None = None
    ) -> tuple[int, bool]:
        """Deadline ``(instant, inclusive)`` of "within this duration after start".

        ``cal`` says which days are worked and the business hours (working days and hours);
        days it had to guess (``outside: weekdays``) are written into ``seen``.
        Raises EvaluationError (PE307) when the deadline falls outside the supported range
        (``MIN_US`` .. ``MAX_US``): 30 days after 9999-12-20 cannot be computed."""
        try:
            found = self._due(start_us, tz, cal, seen)
        except (OverflowError, ValueError):  # datetime arithmetic left years 1..9999
            found = None
        if found is None or not MIN_US <= found[0] <= MAX_US:
            raise out_of_range(f"{self.text} after {iso_utc(start_us)}")
        return found

    def _due(self, start_us: int, tz: str, cal: Calendar, seen: Seen | None) -> tuple[int, bool]:
        fixed = _FIXED_US.get(self.unit)
        if fixed is not None:
            return start_us + self.amount * fixed, True
        unit, n = self.unit, self.amount
        working = WORKING_US.get(unit)
        if working is not None:
            return business_due(start_us, n * working, tz, cal, seen), True
        steady = steady_offset(tz)
        if steady is not None and start_us >= steady[0]:
            # no offset change from here on: a local day is 24 h, midnight is arithmetic
            if unit == "day":
                return start_us + n * _DAY_US, True
            if unit == "week":
                return start_us + n * 7 * _DAY_US, True
            if unit == "same_day" or unit == "next_day":
                offset = steady[1]
                local_midnight = (start_us + offset) // _DAY_US * _DAY_US - offset
                return local_midnight + (n + (1 if unit == "same_day" else 2)) * _DAY_US, False
        local = to_local(start_us, tz)
        if unit == "day":
            return from_dt(local + timedelta(days=n)), True
        if unit == "week":
            return from_dt(local + timedelta(weeks=n)), True
        if unit == "month":
            return from_dt(add_months(local, n)), True
        if unit == "year":
            return from_dt(add_months(local, 12 * n)), True
        if unit == "working_day":
            day = nth_working_day_after(local.date(), n, cal, seen)
            return from_dt(local.replace(year=day.year, month=day.month, day=day.day)), True
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if unit == "same_day":
            return from_dt(midnight + timedelta(days=1 + n)), False
        if unit == "next_day":
            return from_dt(midnight + timedelta(days=2 + n)), False
        # month_end: the local month [1st, next 1st), exclusive; amount shifts by whole months
        return from_dt(add_months(midnight.replace(day=1), 1 + n)), False

    @property
    def on_dates(self) -> bool:
        """Whether the duration can be added to a calendar date (days, weeks, months, years,
        working days): hours, minutes and the anchors ("same day") need a time of day."""
        return self.unit in _DATE_UNITS

    def after_date(self, day: date, cal: Calendar, seen: Seen | None = None) -> date:
        """The calendar date this duration after ``day`` (``on_dates`` units only): months
        clamp to the month's last day, working days count in ``cal``. PE307 out of range."""
        n = self.amount
        try:
            if self.unit == "day":
                return day + timedelta(days=n)
            if self.unit == "week":
                return day + timedelta(weeks=n)
            if self.unit in ("month", "year"):
                months = n if self.unit == "month" else 12 * n
                years, month0 = divmod(day.month - 1 + months, 12)
                year, month = day.year + years, month0 + 1
                return date(year, month, min(day.day, monthrange(year, month)[1]))
            if self.unit == "working_day":
                return nth_working_day_after(day, n, cal, seen)
        except (OverflowError, ValueError):
            pass
        else:
            raise ValueError(f"{self.text!r} cannot be added to a date")
        raise out_of_range(f"{self.text} after {day.isoformat()}")

    def back(self, now_us: int, tz: str, cal: Calendar, seen: Seen | None = None) -> int:
        """Earliest instant of "within the last <duration>" before now (inclusive bound);
        clamped to ``MIN_US``: no event is earlier."""
        try:
            return max(self._back(now_us, tz, cal, seen)[0], MIN_US)
        except (OverflowError, ValueError):  # before year 1: every event is after it
            return MIN_US

    def look_back(
        self, now_us: int, tz: str, cal: Calendar, seen: Seen | None = None
    ) -> tuple[int, int]:
        """``(lower, exact_from)`` of "within the last <duration>" at now: no event before
        ``lower`` is in it, every event from ``exact_from`` on is, and one between is exactly
        when ``covers`` says so (month ends clamp; business hours close overnight)."""
        try:
            lower, exact = self._back(now_us, tz, cal, seen)
        except (OverflowError, ValueError):
            return MIN_US, MIN_US
        slack = self.calendar_slack
        return max(lower - slack, MIN_US), max(exact + slack, MIN_US)

    def _back(self, now_us: int, tz: str, cal: Calendar, seen: Seen | None) -> tuple[int, int]:
        fixed = _FIXED_US.get(self.unit)
        if fixed is not None:
            bound = now_us - self.amount * fixed
            return bound, bound
        working = WORKING_US.get(self.unit)
        if working is not None:
            return business_back(now_us, self.amount * working, tz, cal, seen)
        local = to_local(now_us, tz)
        unit, n = self.unit, self.amount
        if unit in ("day", "same_day", "next_day"):
            bound = from_dt(local - timedelta(days=n))
        elif unit == "week":
            bound = from_dt(local - timedelta(weeks=n))
        elif unit in ("month", "month_end"):
            bound = from_dt(add_months(local, -n))
        elif unit == "year":
            bound = from_dt(add_months(local, -12 * n))
        else:
            return _working_days_back(local, n, cal, seen)
        return bound, bound

    def covers(
        self, at_us: int, now_us: int, tz: str, cal: Calendar, seen: Seen | None = None
    ) -> bool:
        """Is an event at ``at_us`` "within the last <duration>" at ``now_us``?

        Exactly when its own window "within <duration> after it" has not closed by now, so
        history look-backs and deadlines agree at month ends (31 Jan + 1 month = 28 Feb).
        """
        try:
            due, inclusive = self._due(at_us, tz, cal, seen)
        except (OverflowError, ValueError):  # its window closes after the last instant
            return True
        return now_us <= due if inclusive else now_us < due

    @property
    def calendar_slack(self) -> int:
        """How far ``back()`` may be from the exact bound (month clamping); 0 when exact."""
        return 4 * 86_400 * US if self.unit in ("month", "year", "month_end") else 0

    def __str__(self) -> str:
        return self.text


def parse_duration(text: str) -> Duration:
    """Parse ``2 days``, ``1 month``, ``3 working days``, ``24 hours``, ``same day``, ``2天``.

    Raises ValueError with a message an author can act on.
    """
    if not isinstance(text, str):
        raise ValueError(f"a duration is text like '2 days', not {type(text).__name__}")
    raw = text.strip()
    anchor = _ANCHORS.get(raw.lower())
    if anchor is not None:
        return Duration(0, anchor, raw)
    m = _DURATION_RE.match(raw)
    if not m:
        raise ValueError(
            f"cannot read {text!r} as a duration; write e.g. '2 days', '1 month', "
            "'3 working days', '4 working hours', '24 hours', 'same day', 'next day' or "
            "'end of month'"
        )
    amount, word = int(m.group(1)), m.group(2).strip().lower()
    unit = _UNIT_WORDS.get(word) or _UNIT_WORDS.get(word.rstrip("s"))
    if unit is None:
        raise ValueError(
            f"unknown time unit {m.group(2)!r} in {text!r}; use seconds, minutes, hours, days, "
            "weeks, months, years, working days, working hours or working minutes"
        )
    if amount == 0 and unit not in ("same_day", "next_day", "month_end"):
        raise ValueError(f"a duration of zero ({text!r}) cannot be met; use 'same day'")
    return Duration(amount, unit, raw)


# ---------------------------------------------------------------- instants


def from_dt(dt: datetime) -> int:
    """Aware datetime -> exact epoch microseconds."""
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


# The supported instants: [MIN_US, MAX_US). One day of margin inside datetime's years 1..9999
# keeps every local time (UTC offsets below 24 h) representable, so every conversion of an
# instant in range succeeds. Events and as_of arguments must be in range; a computed deadline
# or period end may be MAX_US itself (still a representable local time everywhere).
MIN_US: Final = from_dt(datetime(1, 1, 2, tzinfo=UTC))
MAX_US: Final = from_dt(datetime(9999, 12, 31, tzinfo=UTC))
RANGE_TEXT: Final = "0001-01-02T00:00:00Z .. 9999-12-30T23:59:59Z"


class Instant(int):
    """Epoch microseconds known to be an instant (a flag set from ``$event.at``, ``{plus}``...).

    It is an ``int`` in every comparison and sum (which give plain ints), so the engine does
    not tell it apart; the boundaries do: the decision shows it as a local time, the snapshot
    codec tags it, so that a stored instant stays one (issue 16)."""

    __slots__ = ()

    def isoformat(self, tz: str = "UTC") -> str:
        """ISO 8601 with the offset of ``tz``."""
        return to_pendulum(self, tz).isoformat()

    def __repr__(self) -> str:
        return f"Instant({iso_utc(self)})"

    def __str__(self) -> str:  # as text (a key, a table row) it is the number it always was
        return int.__repr__(self)

    def __reduce__(self) -> tuple[type[Instant], tuple[int]]:
        return Instant, (int(self),)


def as_instant(value: object) -> object:
    """``value`` marked as an instant when it is epoch microseconds (not a yes/no)."""
    if type(value) is int:
        return Instant(value)
    return value


def in_range(us: int) -> bool:
    """Whether epoch microseconds ``us`` lie in the supported range."""
    return MIN_US <= us < MAX_US


def iso_utc(us: int) -> str:
    """``us`` as ISO 8601 text in UTC, for messages; never fails (out of range: the µs)."""
    try:
        return (EPOCH + timedelta(microseconds=us)).isoformat().replace("+00:00", "Z")
    except OverflowError:
        return f"{us} µs from 1970-01-01T00:00:00Z"


def out_of_range(what: str) -> EvaluationError:
    """PE307: ``what`` (a deadline, a period) cannot be computed in the supported range."""
    return EvaluationError(
        [
            Problem(
                Code.TIME_OUT_OF_RANGE,
                f"{what} falls outside the supported range {RANGE_TEXT}",
                hint="check the event's year, or shorten the duration",
            )
        ]
    )


@lru_cache(maxsize=64)
def zone(tz: str) -> pendulum.Timezone:
    """pendulum's zone is a ``zoneinfo.ZoneInfo``: stdlib arithmetic on it runs in C."""
    found = pendulum.timezone(tz)
    assert isinstance(found, pendulum.Timezone)
    return found


_DAY_US: Final = 86_400 * US


@lru_cache(maxsize=64)
def steady_offset(tz: str) -> tuple[int, int] | None:
    """``(since_us, offset_us)``: from ``since_us`` until 2100 the zone's UTC offset is
    constant (Asia/Shanghai since its last summer time in 1991), so local days can be counted
    in exact 24 h steps there; None for zones that keep changing (summer time).

    Found by probing weekly back from 2100: summer time lasts months, so no change hides
    between two probes, and the first probe after the last change is a safe start.
    """
    zi = zone(tz)
    probe = datetime(2100, 1, 1, tzinfo=UTC)
    final = zi.utcoffset(probe)
    if final is None:
        return None
    floor = datetime(1900, 1, 1, tzinfo=UTC)
    while probe > floor:
        earlier = probe - timedelta(weeks=1)
        if zi.utcoffset(earlier.astimezone(zi)) != final:
            break
        probe = earlier
    since = from_dt(probe)
    if since >= from_dt(datetime(2099, 1, 1, tzinfo=UTC)):
        return None
    return since, (final // timedelta(microseconds=1))


def next_midnight(day_text: str, tz: str) -> int | None:
    """The local midnight ending the calendar date ``YYYY-MM-DD`` (None: not a date, or out
    of range): a duty due "on" a date may be met all that day."""
    try:
        day = date.fromisoformat(day_text) + timedelta(days=1)
        found = from_dt(datetime(day.year, day.month, day.day, tzinfo=zone(tz)))
    except (ValueError, OverflowError):
        return None
    return found if MIN_US <= found <= MAX_US else None


def to_local(us: int, tz: str) -> datetime:
    """Wall-clock time in ``tz``; adding a timedelta to it is calendar (wall-clock) arithmetic.
    Raises EvaluationError (PE307) for an instant no local time can show."""
    try:
        return (EPOCH + timedelta(microseconds=us)).astimezone(zone(tz))
    except (OverflowError, ValueError):
        raise out_of_range(f"the local time of {iso_utc(us)}") from None


def add_months(local: datetime, n: int) -> datetime:
    """Calendar months, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    years, month0 = divmod(local.month - 1 + n, 12)
    year, month = local.year + years, month0 + 1
    return local.replace(year=year, month=month, day=min(local.day, monthrange(year, month)[1]))


def to_pendulum(us: int, tz: str) -> pendulum.DateTime:
    """Boundary conversion to pendulum (built directly: ``pendulum.instance`` is 4x slower)."""
    if not MIN_US <= us <= MAX_US:  # computed bounds may reach MAX_US itself
        raise out_of_range(f"the local time of {iso_utc(us)}")
    z = zone(tz)
    steady = steady_offset(tz)
    if steady is not None and us >= steady[0]:  # wall time by arithmetic, no zone lookup
        # whole seconds through the C calendar: a timedelta of microseconds costs twice that
        seconds, micro = divmod(us + steady[1], 1_000_000)
        t = datetime.fromtimestamp(seconds, UTC)
        # pendulum.DateTime has no constructor of its own: datetime's, positional, is quickest
        return _new_datetime(
            pendulum.DateTime, t.year, t.month, t.day, t.hour, t.minute, t.second, micro, z
        )
    t = (EPOCH + timedelta(microseconds=us)).astimezone(z)
    return pendulum.DateTime(
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond, tzinfo=z, fold=t.fold
    )


def parse_instant(value: object, what: str) -> pendulum.DateTime:
    """An API argument (``as_of``, ``at``): ISO 8601 with an offset, or an aware datetime."""
    us = instant_us(value)
    if us is not None and not MIN_US <= us < MAX_US:
        raise EventError(
            [
                Problem(
                    Code.INSTANT_OUT_OF_RANGE,
                    f"{what}={value!r} is outside the supported range {RANGE_TEXT}",
                    hint="check the year",
                    field=what,
                )
            ]
        )
    if us is None:
        impossible = impossible_time(value)
        raise EventError(
            [
                Problem(
                    Code.BAD_INSTANT,
                    f"{what}={value!r} is not an instant with a UTC offset"
                    if impossible is None
                    else f"{what}={value!r} names no instant: {impossible}",
                    hint="pass e.g. '2026-03-05T12:00:00+08:00' or a timezone-aware datetime",
                    field=what,
                )
            ]
        )
    return pendulum.instance(EPOCH + timedelta(microseconds=us))


# A date (year first, "-" or "/", one or two digits for month and day), maybe a time of day
# after it: what ``impossible_time`` reads to tell a day that does not exist from a missing
# offset. ASCII digits only: "２０２６" is another mistake.
_WRITTEN_TIME: Final = re.compile(
    r"\s*([0-9]{4})([-/])([0-9]{1,2})\2([0-9]{1,2})"
    r"(?:[ T]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?(?![0-9])",
    re.ASCII,
)


def impossible_time(value: object) -> str | None:
    """Why the text ``value`` names no instant when it is written like one but its date or time
    of day does not exist ("2026-02 has 28 days, so day 30 does not exist", "there is no month
    13"), else None: for those, "no UTC offset" would send the reader to the wrong fix."""
    if not isinstance(value, str):
        return None
    m = _WRITTEN_TIME.match(value)
    if m is None:
        return None
    year, month, day = int(m.group(1)), int(m.group(3)), int(m.group(4))
    if not 1 <= month <= 12:
        return f"there is no month {month}: the month is 1 to 12, written after the year"
    last = monthrange(year, month)[1] if year else 31
    if not 1 <= day <= last:
        return f"{year:04d}-{month:02d} has {last} days, so day {day} does not exist"
    if m.group(5) is not None:
        hour, minute, second = int(m.group(5)), int(m.group(6)), int(m.group(7) or 0)
        if hour > 23 or minute > 59 or second > 59:
            shown = f"{m.group(5)}:{m.group(6)}" + (f":{m.group(7)}" if m.group(7) else "")
            return f"{shown} is not a time of day (00:00 to 23:59:59)"
    return None


def instant_us(value: object) -> int | None:
    """Epoch microseconds of an aware instant, or None if it is naive or not an instant."""
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    elif isinstance(value, datetime):
        dt = value
    else:
        return None
    try:  # a hostile tzinfo may raise, or give an offset datetime refuses
        if dt.tzinfo is None or dt.utcoffset() is None:
            return None
        return from_dt(dt)
    except (ValueError, TypeError, OverflowError):
        return None


# ---------------------------------------------------------------- working days and hours

# business microseconds per unit of the working-time units (the one home: the compiler bounds
# working-hour durations with it)
WORKING_US: Final[dict[str, int]] = {"working_hour": 3600 * US, "working_minute": 60 * US}


def nth_working_day_after(start: date, n: int, cal: Calendar, seen: Seen | None = None) -> date:
    day = start
    for _ in range(n):
        day = cal.next_working_day(day, seen)
    return day


def nth_working_day_before(start: date, n: int, cal: Calendar, seen: Seen | None = None) -> date:
    day = start
    for _ in range(n):
        day = cal.previous_working_day(day, seen)
    return day


def _working_days_back(
    local: datetime, n: int, cal: Calendar, seen: Seen | None
) -> tuple[int, int]:
    """``(lower, exact_from)`` of "within the last ``n`` working days" at ``local``: exactly
    the events whose own window (``n`` working days on, at their wall time) ends at or after
    now.

    Counting back ``n`` working days from now's day lands on ``day``. When now is on a day
    off, every instant from ``day``'s midnight on is in (Saturday: Thursday's "2 working
    days" end on Monday), and nothing before. When now is on a working day, an event on
    ``day`` is in from now's wall time on, and so is one on the days off after ``day`` (they
    count from the same next working day), but only from that wall time: between ``lower``
    and the next working day's midnight, ``covers`` decides."""
    today = local.date()
    day = nth_working_day_before(today, n, cal, seen)
    if not cal.is_workday(today, seen):
        bound = from_dt(datetime(day.year, day.month, day.day, tzinfo=local.tzinfo))
        return bound, bound
    lower = from_dt(local.replace(year=day.year, month=day.month, day=day.day))
    after = cal.next_working_day(day, seen)
    return lower, from_dt(datetime(after.year, after.month, after.day, tzinfo=local.tzinfo))


def _wall(day: date, us_of_day: int, tz: str) -> int:
    """The instant of a local wall-clock time (``24:00`` is the next midnight)."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone(tz))
    return from_dt(midnight + timedelta(microseconds=us_of_day))


def _local_day(us: int, tz: str) -> tuple[date, int]:
    local = to_local(us, tz)
    return local.date(), (
        (local.hour * 60 + local.minute) * 60 + local.second
    ) * US + local.microsecond


def business_due(start_us: int, amount_us: int, tz: str, cal: Calendar, seen: Seen | None) -> int:
    """The instant ``amount_us`` of business time after ``start_us``: counted inside the
    business hours of working days, from the next opening when ``start_us`` is outside them;
    a count that ends at a closing ends there (the deadline is inclusive)."""
    day, tod = _local_day(start_us, tz)
    left = amount_us
    while True:
        if cal.is_workday(day, seen):
            for opening, closing in cal.hours:
                if tod >= closing:
                    continue
                begin = max(opening, tod)
                if left <= closing - begin:
                    return _wall(day, begin + left, tz)
                left -= closing - begin
        day += timedelta(days=1)
        tod = 0


def business_back(
    now_us: int, amount_us: int, tz: str, cal: Calendar, seen: Seen | None
) -> tuple[int, int]:
    """``(lower, exact_from)`` of "the last ``amount_us`` of business time" before now.

    Walking back over business time lands on an instant ``t``; an event after ``t`` is in the
    window, one before it is not, and one at ``t`` or, when ``t`` is an opening, in the closed
    stretch before it (the evening, a weekend) is in exactly when its own deadline is not
    past: ``lower`` is the closing that stretch starts at, ``exact_from`` just after ``t``.
    """
    day, tod = _local_day(now_us, tz)
    left = amount_us
    while True:
        if cal.is_workday(day, seen):
            for index in range(len(cal.hours) - 1, -1, -1):
                opening, closing = cal.hours[index]
                if tod <= opening:
                    continue
                end = min(closing, tod)
                if left < end - opening:
                    landing = _wall(day, end - left, tz)
                    return landing, landing + 1
                left -= end - opening
                if left == 0:
                    landing = _wall(day, opening, tz)
                    return _closing_before(day, index, tz, cal, seen), landing + 1
        day -= timedelta(days=1)
        tod = US_PER_DAY


def _closing_before(day: date, index: int, tz: str, cal: Calendar, seen: Seen | None) -> int:
    """The last closing before the opening ``cal.hours[index]`` of working day ``day``."""
    if index > 0:
        return _wall(day, cal.hours[index - 1][1], tz)
    before = cal.previous_working_day(day, seen)
    return _wall(before, cal.hours[-1][1], tz)


def roll_to_working_day(
    due_us: int, inclusive: bool, tz: str, cal: Calendar, seen: Seen | None = None
) -> int:
    """A deadline on a day off moves to the same wall-clock time of the next working day.

    The day a deadline falls on is the day of its last instant in time: an exclusive
    midnight ("the same day", "end of month") belongs to the day before it, so a Friday's
    same-day duty is not rolled, and a Saturday's is due by the end of Monday."""
    last = due_us if inclusive else due_us - 1
    day = to_local(last, tz).date()
    if cal.is_workday(day, seen):
        return due_us
    shift = cal.next_working_day(day, seen) - day
    try:
        return from_dt(to_local(due_us, tz) + shift)
    except (OverflowError, ValueError):
        raise out_of_range(f"the deadline {iso_utc(due_us)} rolled to a working day") from None
