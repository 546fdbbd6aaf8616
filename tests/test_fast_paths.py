"""The shortcuts taken for speed give exactly the answers of the general paths they skip.

Each shortcut is checked against the slow computation it replaces, on instants and values
drawn by hypothesis, so a shortcut that is wrong at an edge (a zone's last summer time, a
month end, a yes/no against a number) fails here rather than in a customer's decision.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policyengine as pe
from policyengine.calendars import STATUTORY
from policyengine.errors import EventError
from policyengine.language.compiler import _equal
from policyengine.times import Duration, from_dt, steady_offset, to_local, to_pendulum

ZONES = ["Asia/Shanghai", "UTC", "Asia/Kolkata", "Europe/Berlin", "America/New_York"]
instants = st.integers(min_value=-(10**9), max_value=4 * 10**9).map(lambda s: s * 10**6)


def slow_due(d: Duration, us: int, tz: str) -> tuple[int, bool]:
    local = to_local(us, tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return {
        "day": (from_dt(local + timedelta(days=d.amount)), True),
        "week": (from_dt(local + timedelta(weeks=d.amount)), True),
        "same_day": (from_dt(midnight + timedelta(days=1 + d.amount)), False),
        "next_day": (from_dt(midnight + timedelta(days=2 + d.amount)), False),
    }[d.unit]


def test_shanghai_has_kept_one_offset_since_its_last_summer_time_and_berlin_never_does() -> None:
    steady = steady_offset("Asia/Shanghai")
    assert steady is not None
    since, offset = steady
    assert offset == 8 * 3600 * 10**6
    # China's last summer time ended on 1991-09-15; the weekly probe starts within a week
    assert (
        datetime(1991, 9, 14, tzinfo=UTC)
        < to_local(since, "UTC")
        < datetime(1991, 9, 23, tzinfo=UTC)
    )
    assert steady_offset("Europe/Berlin") is None


@settings(max_examples=300, deadline=None)
@given(
    us=instants,
    micro=st.integers(0, 10**6 - 1),
    tz=st.sampled_from(ZONES),
    unit=st.sampled_from(["day", "week", "same_day", "next_day"]),
    amount=st.integers(1, 40),
)
def test_day_windows_counted_in_24_hour_steps_equal_wall_clock_arithmetic(
    us: int, micro: int, tz: str, unit: str, amount: int
) -> None:
    d = Duration(amount, unit, f"{amount} {unit}")  # type: ignore[arg-type]
    assert d.due(us + micro, tz, STATUTORY) == slow_due(d, us + micro, tz)


@pytest.mark.parametrize("tz", ZONES)
def test_windows_around_the_1991_summer_time_end_use_the_zone(tz: str) -> None:
    start = from_dt(datetime(1991, 9, 10, 12, tzinfo=UTC))
    for hours in range(0, 24 * 20, 7):
        us = start + hours * 3600 * 10**6
        for unit in ("day", "same_day"):
            d = Duration(2, unit, "2")  # type: ignore[arg-type]
            assert d.due(us, tz, STATUTORY) == slow_due(d, us, tz)


@settings(max_examples=300, deadline=None)
@given(us=instants, micro=st.integers(0, 10**6 - 1), tz=st.sampled_from(ZONES))
def test_instants_shown_in_the_zone_equal_pendulums_own_conversion(
    us: int, micro: int, tz: str
) -> None:
    ours = to_pendulum(us + micro, tz)
    theirs = pendulum.instance(
        datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us + micro)
    ).in_timezone(tz)
    assert ours == theirs
    assert ours.isoformat() == theirs.isoformat()
    assert ours.utcoffset() == theirs.utcoffset()


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([Decimal("1"), Decimal("1.0"), "", "feedback", "null", "1", "True"]),
    st.text(max_size=3),
)
literals = st.one_of(st.none(), st.sampled_from(["feedback", "1", "True", "", "null"]))

GUARD = """
policy: {{id: p, title: t, version: "1", timezone: Asia/Shanghai, subject: customer}}
clauses: [{{id: C, kind: ownership, text: t, reading: r}}]
events: {{e: {{fields: {{customer: str, v: "str?"}}}}}}
rules:
  - id: r
    clause: C
    on: e
    when: {{{op}: {pair}}}
    then: [{{set: {{flag: hit, value: true}}}}]
"""


@settings(max_examples=200, deadline=None)
@given(value=values, literal=literals, op=st.sampled_from(["eq", "ne"]), flip=st.booleans())
def test_a_guard_against_a_literal_null_or_text_agrees_with_general_equality(
    value: Any, literal: str | None, op: str, flip: bool
) -> None:
    """The compiled shortcut is read off a policy, then fed values no event could carry
    (numbers, yes/no) through `$item`-free getters: it must agree with `_equal` on all."""
    from policyengine.language.compiler import _literal_equality

    pair = ["$event.v", literal] if not flip else [literal, "$event.v"]
    getter = lambda c: value  # noqa: E731
    const = lambda c: literal  # noqa: E731
    a, b = (getter, const) if not flip else (const, getter)
    fast = _literal_equality(op, pair, a, b)
    assert fast is not None
    expected = _equal(value, literal) if op == "eq" else not _equal(value, literal)
    assert fast(None) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize("literal", ["null", "feedback"])
def test_policies_with_literal_guards_decide_as_written(literal: str) -> None:
    policy = pe.load_policy_text(GUARD.format(op="eq", pair=f"[$event.v, {literal}]"))
    hit = {"id": "1", "type": "e", "at": "2026-03-01T10:00:00+08:00", "customer": "C1"}
    if literal == "feedback":
        hit["v"] = "feedback"
    miss = {"id": "2", "type": "e", "at": "2026-03-01T10:00:00+08:00", "customer": "C2", "v": "x"}
    decision = policy.evaluate([hit, miss])
    assert decision.flags == {"C1": {"hit": True}}


def test_the_field_fast_path_still_reports_every_bad_field_at_once() -> None:
    policy = pe.load_policy_text(GUARD.format(op="eq", pair="[$event.v, feedback]"))
    events = [
        {"id": "1", "type": "e", "at": "2026-03-01T10:00:00+08:00", "customer": ""},
        {"id": "2", "type": "e", "at": "2026-03-01T10:00:00+08:00", "customer": 5},
        {"id": "3", "type": "e", "at": "2026-03-01T10:00:00+08:00", "customer": "C", "w": 1},
        {"id": "4", "type": "e", "at": "2026-03-01T10:00:00+08:00"},
    ]
    with pytest.raises(EventError) as info:
        policy.evaluate(events)
    found = {(p.event_id, p.field, p.code) for p in info.value.problems}
    assert found == {
        ("1", "customer", "PE203"),
        ("2", "customer", "PE203"),
        ("3", "w", "PE205"),
        ("4", "customer", "PE202"),
    }
