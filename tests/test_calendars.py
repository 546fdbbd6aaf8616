"""Working days, business hours and rolled deadlines at the unit level: ``Calendar`` and
``Duration`` directly, in Asia/Shanghai, with edges at the instant and just after it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.calendars import (
    DEFAULT_HOURS,
    STATUTORY,
    Calendar,
    clock_text,
    guessed_notice,
    parse_clock,
    parse_hours,
    statutory,
)
from policyengine.errors import Code, EvaluationError
from policyengine.times import (
    US,
    Duration,
    business_back,
    business_due,
    instant_us,
    next_midnight,
    parse_duration,
    roll_to_working_day,
    to_local,
)

TZ = "Asia/Shanghai"
H = 3600 * US
LUNCH = Calendar(hours=parse_hours(["09:00-12:00", "13:30-18:00"]))
WEEKDAYS_OUTSIDE = Calendar(outside="weekdays")


def at(text: str) -> int:
    """A Shanghai wall time ``YYYY-MM-DDTHH:MM[:SS]`` as epoch microseconds."""
    found = instant_us(text + "+08:00")
    assert found is not None
    return found


def local(us: int) -> str:
    return to_local(us, TZ).strftime("%Y-%m-%dT%H:%M:%S.%f").removesuffix(".000000")


def due(
    text: str, start: str, cal: Calendar = STATUTORY, seen: dict[int, bool] | None = None
) -> tuple[str, bool]:
    instant, inclusive = parse_duration(text).due(at(start), TZ, cal, seen)
    return local(instant), inclusive


def in_time(d: Duration, start: int, event: int, cal: Calendar) -> bool:
    """Whether an event at ``event`` meets "within ``d`` after ``start``"."""
    instant, inclusive = d.due(start, TZ, cal)
    return event <= instant if inclusive else event < instant


# ---------------------------------------------------------------- the statutory base


def test_statutory_years_and_2026_national_day() -> None:
    holidays, workdays, years = statutory()
    assert years.start <= 2004 and years.stop - 1 == 2026
    assert all(date(2026, 10, d) in holidays for d in range(1, 8))
    assert date(2026, 10, 10) in workdays  # the make-up Saturday
    assert not STATUTORY.is_workday(date(2026, 10, 1))
    assert STATUTORY.is_workday(date(2026, 10, 10))  # a Saturday worked
    assert not STATUTORY.is_workday(date(2026, 9, 25))  # Mid-Autumn, a Friday
    assert STATUTORY.is_workday(date(2026, 9, 30))
    assert STATUTORY.next_working_day(date(2026, 9, 30)) == date(2026, 10, 8)
    assert STATUTORY.previous_working_day(date(2026, 10, 8)) == date(2026, 9, 30)
    assert STATUTORY.knows(2026) and not STATUTORY.knows(2027)


# ---------------------------------------------------------------- 1. a declared 2027 holiday


def test_two_working_days_across_a_declared_2027_holiday() -> None:
    cal = Calendar(holidays=frozenset({date(2027, 1, 8)}))
    seen: dict[int, bool] = {}
    # Thu 7th: Fri 8th off, weekend, so Mon 11th is the first and Tue 12th the second
    assert due("2 working days", "2027-01-07T10:00", cal, seen) == ("2027-01-12T10:00:00", True)
    assert seen == {}  # 2027 is declared: nothing guessed
    d = parse_duration("2 working days")
    start, deadline = at("2027-01-07T10:00"), at("2027-01-12T10:00")
    assert in_time(d, start, deadline, cal)
    assert not in_time(d, start, deadline + 1, cal)
    assert not in_time(d, start, deadline + US, cal)
    # without the holiday, and with a worked Saturday, it is that Saturday
    plain = Calendar(workdays=frozenset({date(2027, 1, 9)}))  # declares 2027
    assert due("2 working days", "2027-01-07T10:00", plain) == ("2027-01-09T10:00:00", True)
    assert due("3 working days", "2027-01-07T10:00", plain) == ("2027-01-11T10:00:00", True)


def test_the_same_window_under_outside_weekdays_is_guessed_and_recorded() -> None:
    cal = Calendar(outside="weekdays")
    seen: dict[int, bool] = {}
    assert due("2 working days", "2027-01-07T10:00", cal, seen) == ("2027-01-11T10:00:00", True)
    assert seen == {2027: True}


# ---------------------------------------------------------------- 2. unknown years


def test_outside_error_raises_pe302_naming_the_day_and_the_year() -> None:
    with pytest.raises(EvaluationError) as info:
        parse_duration("2 working days").due(at("2027-01-07T10:00"), TZ, STATUTORY, {})
    assert info.value.codes == [Code.OUTSIDE_CALENDAR] == ["PE302"]
    problem = info.value.problems[0]
    assert "2027-01-08" in problem.message and "2004-2026" in problem.message
    assert problem.hint is not None and "outside: weekdays" in problem.hint
    with pytest.raises(EvaluationError):
        STATUTORY.is_workday(date(2027, 3, 1))
    with pytest.raises(EvaluationError):
        STATUTORY.is_workday(date(2003, 3, 3))  # before the package's years, too


def test_outside_weekdays_counts_monday_to_friday_and_writes_seen() -> None:
    seen: dict[int, bool] = {}
    assert WEEKDAYS_OUTSIDE.is_workday(date(2027, 1, 1), seen)  # New Year, but undeclared
    assert not WEEKDAYS_OUTSIDE.is_workday(date(2027, 1, 2), seen)
    assert seen == {2027: True}
    assert WEEKDAYS_OUTSIDE.is_workday(date(2027, 1, 4))  # seen may be omitted
    text = guessed_notice([2028, 2027])
    assert "2027, 2028" in text and "Monday to Friday" in text


def test_a_window_inside_2026_guesses_nothing() -> None:
    seen: dict[int, bool] = {}
    assert due("3 working days", "2026-12-25T10:00", WEEKDAYS_OUTSIDE, seen) == (
        "2026-12-30T10:00:00",
        True,
    )
    assert seen == {}
    assert due("4 working hours", "2026-12-31T09:00", WEEKDAYS_OUTSIDE, seen)[0] == (
        "2026-12-31T13:00:00"
    )
    assert seen == {}


def test_base_weekdays_knows_every_year_and_ignores_statutory_holidays() -> None:
    cal = Calendar(base="weekdays")
    seen: dict[int, bool] = {}
    assert cal.is_workday(date(2026, 10, 1), seen)  # National Day is a Thursday like any other
    assert not cal.is_workday(date(2026, 10, 10), seen)  # no make-up Saturday either
    assert cal.is_workday(date(2031, 5, 5), seen)
    assert seen == {} and cal.knows(2031)


def test_declared_days_override_the_statutory_calendar() -> None:
    cal = Calendar(holidays=frozenset({date(2026, 10, 8)}), workdays=frozenset({date(2026, 10, 3)}))
    assert cal.is_workday(date(2026, 10, 3))
    assert not cal.is_workday(date(2026, 10, 8))
    assert cal.next_working_day(date(2026, 10, 3)) == date(2026, 10, 9)


# ---------------------------------------------------------------- 10. known / unknown boundary


def test_the_last_day_of_2026_plus_one_working_day_is_new_years_day_guessed() -> None:
    seen: dict[int, bool] = {}
    assert due("1 working day", "2026-12-31T16:00", WEEKDAYS_OUTSIDE, seen) == (
        "2027-01-01T16:00:00",
        True,
    )
    assert seen == {2027: True}
    with pytest.raises(EvaluationError) as info:
        due("1 working day", "2026-12-31T16:00")
    assert info.value.codes == ["PE302"]
    # 2027 declared (its New Year holiday): known, so no guess, and 1 Jan is off
    cal = Calendar(holidays=frozenset({date(2027, 1, 1)}))
    seen = {}
    assert due("1 working day", "2026-12-31T16:00", cal, seen) == ("2027-01-04T16:00:00", True)
    assert seen == {}


def test_working_hours_across_the_boundary_are_guessed_too() -> None:
    seen: dict[int, bool] = {}
    assert due("4 working hours", "2026-12-31T16:00", WEEKDAYS_OUTSIDE, seen) == (
        "2027-01-01T11:00:00",
        True,
    )
    assert seen == {2027: True}


# ---------------------------------------------------------------- 3. working hours


@pytest.mark.parametrize(
    ("start", "text", "cal", "expected"),
    [
        ("2026-03-06T16:00", "4 working hours", STATUTORY, "2026-03-09T11:00:00"),  # weekend
        ("2026-03-09T11:00", "4 working hours", LUNCH, "2026-03-09T16:30:00"),  # lunch break
        ("2026-03-07T10:00", "4 working hours", STATUTORY, "2026-03-09T13:00:00"),  # Saturday
        ("2026-03-06T19:00", "4 working hours", STATUTORY, "2026-03-09T13:00:00"),  # evening
        ("2026-03-09T08:00", "4 working hours", STATUTORY, "2026-03-09T13:00:00"),  # morning
        ("2026-03-06T18:00", "4 working hours", STATUTORY, "2026-03-09T13:00:00"),  # at closing
        ("2026-03-06T14:00", "4 working hours", STATUTORY, "2026-03-06T18:00:00"),  # ends at close
        ("2026-03-09T08:00", "3 working hours", LUNCH, "2026-03-09T12:00:00"),  # ends at lunch
        ("2026-03-09T12:30", "1 working hour", LUNCH, "2026-03-09T14:30:00"),  # starts in lunch
        ("2026-03-06T17:00", "90 working minutes", STATUTORY, "2026-03-09T09:30:00"),
        ("2026-03-06T17:59:59", "1 working minute", STATUTORY, "2026-03-09T09:00:59"),
        ("2026-03-06T17:00", "4个工作小时", STATUTORY, "2026-03-09T12:00:00"),
        ("2026-03-06T17:00", "4 工作小時", STATUTORY, "2026-03-09T12:00:00"),
        ("2026-03-06T17:30", "30工作分钟", STATUTORY, "2026-03-06T18:00:00"),
        ("2026-03-06T17:30", "31 工作分鐘", STATUTORY, "2026-03-09T09:01:00"),
        ("2026-03-06T10:00", "18 working hours", STATUTORY, "2026-03-10T10:00:00"),  # 2 days
        ("2026-09-30T17:00", "2 working hours", STATUTORY, "2026-10-08T10:00:00"),  # holiday
        ("2026-10-09T17:00", "2 working hours", STATUTORY, "2026-10-10T10:00:00"),  # make-up Sat
    ],
)
def test_working_hours_due(start: str, text: str, cal: Calendar, expected: str) -> None:
    assert due(text, start, cal) == (expected, True)


def test_working_hours_deadline_edges() -> None:
    d = parse_duration("4 working hours")
    start, deadline = at("2026-03-06T16:00"), at("2026-03-09T11:00")
    assert in_time(d, start, deadline, STATUTORY)
    assert not in_time(d, start, deadline + 1, STATUTORY)
    assert not in_time(d, start, deadline + US, STATUTORY)
    # one microsecond later in the day: one microsecond later the deadline
    assert d.due(start + 1, TZ, STATUTORY) == (deadline + 1, True)


def test_working_units_parse() -> None:
    for text, unit in [
        ("4 working hours", "working_hour"),
        ("1 working hour", "working_hour"),
        ("4个工作小时", "working_hour"),
        ("4個工作小時", "working_hour"),
        ("4工作小时", "working_hour"),
        ("30 working minutes", "working_minute"),
        ("30工作分钟", "working_minute"),
        ("2 workdays", "working_day"),
        ("2个工作日", "working_day"),
    ]:
        parsed = parse_duration(text)
        assert parsed.unit == unit and parsed.amount in (1, 2, 4, 30), text
    assert parse_duration("4 hours").unit == "hour"
    with pytest.raises(ValueError, match="zero"):
        parse_duration("0 working hours")
    with pytest.raises(ValueError, match="unknown time unit"):
        parse_duration("4 working fortnights")


def test_a_fully_worked_24h_day() -> None:
    cal = Calendar(base="weekdays", hours=parse_hours(["00:00-24:00"]))
    assert cal.hours_per_day == 24 * H
    assert due("24 working hours", "2026-03-06T10:00", cal) == ("2026-03-09T10:00:00", True)
    assert due("14 working hours", "2026-03-06T10:00", cal) == ("2026-03-07T00:00:00", True)


def test_business_back_lands_on_openings_and_closings() -> None:
    four = 4 * H
    # inside the day: plain subtraction
    assert business_back(at("2026-03-09T15:00"), four, TZ, STATUTORY, None) == (
        at("2026-03-09T11:00"),
        at("2026-03-09T11:00") + 1,
    )
    # exactly four hours since the opening: the weekend before it is decided by `covers`
    lower, exact = business_back(at("2026-03-09T13:00"), four, TZ, STATUTORY, None)
    assert (local(lower), local(exact)) == ("2026-03-06T18:00:00", "2026-03-09T09:00:00.000001")
    # across the lunch break
    lower, exact = business_back(at("2026-03-09T16:30"), four, TZ, LUNCH, None)
    assert local(lower) == "2026-03-09T11:00:00"
    lower, exact = business_back(at("2026-03-09T16:30"), 3 * H, TZ, LUNCH, None)
    assert (local(lower), local(exact)) == ("2026-03-09T12:00:00", "2026-03-09T13:30:00.000001")


# ---------------------------------------------------------------- 4. rolling


def test_roll_over_the_2026_national_day_week() -> None:
    d = parse_duration("1 day")
    start = at("2026-09-30T10:00")
    instant, inclusive = d.due(start, TZ, STATUTORY)
    assert (local(instant), inclusive) == ("2026-10-01T10:00:00", True)
    rolled = roll_to_working_day(instant, inclusive, TZ, STATUTORY)
    assert local(rolled) == "2026-10-08T10:00:00"
    # a working day is not moved
    assert roll_to_working_day(at("2026-10-08T10:00"), True, TZ, STATUTORY) == at(
        "2026-10-08T10:00"
    )
    # the make-up Saturday is a working day
    assert roll_to_working_day(at("2026-10-10T10:00"), True, TZ, STATUTORY) == at(
        "2026-10-10T10:00"
    )
    assert local(roll_to_working_day(at("2026-10-11T10:00"), True, TZ, STATUTORY)) == (
        "2026-10-12T10:00:00"
    )


def test_roll_same_day_deadlines() -> None:
    same_day = parse_duration("same day")
    # Friday's same-day duty ends at Saturday's midnight (exclusive): it belongs to Friday
    instant, inclusive = same_day.due(at("2026-03-06T10:00"), TZ, STATUTORY)
    assert (local(instant), inclusive) == ("2026-03-07T00:00:00", False)
    assert roll_to_working_day(instant, inclusive, TZ, STATUTORY) == instant
    # Saturday's is due by the end of Monday
    instant, inclusive = same_day.due(at("2026-03-07T10:00"), TZ, STATUTORY)
    assert local(roll_to_working_day(instant, inclusive, TZ, STATUTORY)) == "2026-03-10T00:00:00"
    # an inclusive midnight belongs to the day it starts: Saturday 00:00 rolls to Monday 00:00
    assert local(roll_to_working_day(at("2026-03-07T00:00"), True, TZ, STATUTORY)) == (
        "2026-03-09T00:00:00"
    )
    # the National Day week: a same-day duty on 30 September stays, one on 1 October goes to 8th
    instant, inclusive = same_day.due(at("2026-10-01T10:00"), TZ, STATUTORY)
    assert local(roll_to_working_day(instant, inclusive, TZ, STATUTORY)) == "2026-10-09T00:00:00"


def test_roll_into_an_unknown_year() -> None:
    seen: dict[int, bool] = {}
    # Sat 2 Jan 2027 -> Mon 4 Jan, guessed
    rolled = roll_to_working_day(at("2027-01-02T10:00"), True, TZ, WEEKDAYS_OUTSIDE, seen)
    assert local(rolled) == "2027-01-04T10:00:00" and seen == {2027: True}
    with pytest.raises(EvaluationError) as info:
        roll_to_working_day(at("2027-01-02T10:00"), True, TZ, STATUTORY)
    assert info.value.codes == ["PE302"]


# ---------------------------------------------------------------- hours and clocks


def test_parse_hours() -> None:
    assert parse_hours(["09:00-18:00"]) == DEFAULT_HOURS
    assert parse_hours(["13:30-18:00", "09:00-12:00"]) == LUNCH.hours  # sorted
    assert LUNCH.hours_per_day == int(7.5 * H)
    assert parse_hours([" 09:00 - 12:00:30 "]) == ((9 * H, 12 * H + 30 * US),)
    assert parse_hours(["00:00-24:00"]) == ((0, 24 * H),)
    for bad, message in [
        (["18:00-09:00"], "close before they open"),
        (["09:00-09:00"], "close before they open"),
        (["09:00-12:00", "11:00-18:00"], "overlap"),
        (["9:00-18:00"], "cannot read"),
        (["09:00-18:60"], "cannot read"),
        (["24:00-24:00"], "cannot read"),
        (["09:00"], "text like"),
        (["09:00-12:00-18:00"], "text like"),
        ([], "at least one"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_hours(bad)
    # adjacent spans touch, they do not overlap
    assert parse_hours(["09:00-12:00", "12:00-18:00"]) == ((9 * H, 12 * H), (12 * H, 18 * H))


def test_clock_text_and_parse_clock() -> None:
    assert parse_clock("09:00") == 9 * H
    assert parse_clock("09:00:01") == 9 * H + US
    assert parse_clock("24:00") is None
    assert parse_clock("24:00", closing=True) == 24 * H
    assert parse_clock("9h") is None and parse_clock("09:00:00:00") is None
    assert clock_text(9 * H) == "09:00:00"
    assert clock_text(21 * H + US) == "21:00:01"
    assert clock_text(9 * H - 1) == "08:59:59.999999"


@given(st.integers(0, 24 * H - 1), st.integers(0, 24 * H - 1))
def test_clock_text_order_is_time_order(a: int, b: int) -> None:
    assert (clock_text(a) < clock_text(b)) == (a < b)
    assert (clock_text(a) == clock_text(b)) == (a == b)


def test_next_midnight() -> None:
    assert next_midnight("2026-03-06", TZ) == at("2026-03-07T00:00")
    assert next_midnight("2026-12-31", TZ) == at("2027-01-01T00:00")
    assert next_midnight("2026-13-01", TZ) is None
    assert next_midnight("soon", TZ) is None
    assert next_midnight("9999-12-31", TZ) is None  # its end is past the supported range


def test_calendar_is_compared_by_value() -> None:
    a = Calendar(holidays=frozenset({date(2027, 1, 4)}), outside="weekdays")
    b = Calendar(holidays=frozenset({date(2027, 1, 4)}), outside="weekdays")
    assert a == b and hash(a) == hash(b)
    assert a.declared_years == frozenset({2027})
    assert a != Calendar(holidays=frozenset({date(2027, 1, 5)}), outside="weekdays")


# ---------------------------------------------------------------- 8. look-back agrees with covers

FORTNIGHT_START = at("2026-03-02T00:00")  # a Monday
FORTNIGHT = 14 * 24 * H
# instants that land on openings, closings and just off them, plus anything
_EDGES = [h * H + m * 60 * US for h in (0, 9, 12, 13, 18, 23) for m in (0, 30)]
instants = st.one_of(
    st.integers(0, FORTNIGHT).map(lambda o: FORTNIGHT_START + o),
    st.tuples(st.integers(0, 13), st.sampled_from(_EDGES), st.sampled_from([-1, 0, 1])).map(
        lambda t: FORTNIGHT_START + t[0] * 24 * H + t[1] + t[2]
    ),
)
windows = st.sampled_from(
    [
        "4 working hours",
        "1 working hour",
        "9 working hours",
        "30 working minutes",
        "13 working hours",
        "2 working days",
        "1 working day",
    ]
)
calendars = st.sampled_from([STATUTORY, LUNCH])


@settings(max_examples=400, deadline=None)
@given(instants, instants, windows, calendars)
def test_look_back_bounds_agree_with_covers(a: int, b: int, text: str, cal: Calendar) -> None:
    event, now = min(a, b), max(a, b)
    d = parse_duration(text)
    lower, exact_from = d.look_back(now, TZ, cal)
    covered = d.covers(event, now, TZ, cal)
    if event < lower:
        assert not covered, (local(event), local(now), local(lower))
    if event >= exact_from:
        assert covered, (local(event), local(now), local(exact_from))
    # and covers is the deadline of the event's own window, not yet past
    instant, inclusive = d.due(event, TZ, cal)
    assert covered == (now <= instant if inclusive else now < instant)


def test_working_days_look_back_from_a_day_off() -> None:
    """Regression: from a Saturday, "within the last 2 working days" reaches back to the
    start of Thursday (its windows end on Monday), not to Thursday at now's wall time."""
    d = parse_duration("2 working days")
    now = at("2026-03-14T00:30")
    lower, exact_from = d.look_back(now, TZ, STATUTORY)
    assert local(lower) == local(exact_from) == "2026-03-12T00:00:00"
    assert d.covers(at("2026-03-12T00:00"), now, TZ, STATUTORY)
    assert not d.covers(at("2026-03-12T00:00") - 1, now, TZ, STATUTORY)
    assert local(d.back(now, TZ, STATUTORY)) == "2026-03-12T00:00:00"
    # from a working day the days off before it are only partly in: `covers` decides there
    one = parse_duration("1 working day")
    lower, exact_from = one.look_back(at("2026-03-09T00:30"), TZ, STATUTORY)
    assert (local(lower), local(exact_from)) == ("2026-03-06T00:30:00", "2026-03-09T00:00:00")
    assert not one.covers(at("2026-03-07T00:00"), at("2026-03-09T00:30"), TZ, STATUTORY)
    assert one.covers(at("2026-03-07T00:30"), at("2026-03-09T00:30"), TZ, STATUTORY)
    # an unknown year on the way is an error, or a guess recorded
    with pytest.raises(EvaluationError):
        one.look_back(at("2027-01-04T10:00"), TZ, STATUTORY)
    seen: dict[int, bool] = {}
    lower, _ = one.look_back(at("2027-01-04T10:00"), TZ, WEEKDAYS_OUTSIDE, seen)
    assert local(lower) == "2027-01-01T10:00:00" and seen == {2027: True}


@settings(max_examples=200, deadline=None)
@given(instants, st.integers(1, 40), calendars)
def test_business_due_and_back_are_inverse(start: int, quarters: int, cal: Calendar) -> None:
    """Counting ``amount`` forward then back returns to where counting began (the next
    opening when the start is outside hours)."""
    amount = quarters * 15 * 60 * US
    end = business_due(start, amount, TZ, cal, None)
    lower, exact_from = business_back(end, amount, TZ, cal, None)
    first = business_due(start, 1, TZ, cal, None) - 1  # where the count really began
    assert lower <= first < exact_from
    assert business_due(first, amount, TZ, cal, None) == end


def _oracle_due(start: int, minutes: int, cal: Calendar) -> int:
    """Minute by minute: the end of the ``minutes``-th business minute from ``start`` (a
    whole minute), a minute counting when it lies in the hours of a working day."""
    t, left = start, minutes
    while True:
        wall = to_local(t, TZ)
        tod = (wall.hour * 60 + wall.minute) * 60 * US
        if cal.is_workday(wall.date()) and any(a <= tod < b for a, b in cal.hours):
            left -= 1
            if left == 0:
                return t + 60 * US
        t += 60 * US


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 14 * 24 * 60 - 1),
    st.integers(1, 12 * 60),
    st.sampled_from(
        [STATUTORY, LUNCH, Calendar(hours=parse_hours(["08:00-08:30", "20:00-24:00"]))]
    ),
)
def test_business_due_agrees_with_a_minute_by_minute_count(
    offset: int, minutes: int, cal: Calendar
) -> None:
    start = at("2026-09-24T00:00") + offset * 60 * US  # around the National Day week
    assert business_due(start, minutes * 60 * US, TZ, cal, None) == _oracle_due(start, minutes, cal)


def test_day_helpers_stay_in_wall_time() -> None:
    # a working-day window keeps the wall time of its start
    start = datetime(2026, 3, 6, 23, 59, 59, 999_999)
    text = start.isoformat()
    assert due("1 working day", text) == ("2026-03-09T23:59:59.999999", True)
    assert due("1 working day", (start + timedelta(microseconds=1)).isoformat()) == (
        "2026-03-09T00:00:00",
        True,
    )
