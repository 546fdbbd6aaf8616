"""Issue 14: history queries with no window, ``since`` or ``last`` cost a flat amount per event.

The World keeps a memo per (plan, subject value) and scans only the events appended since its
last call (``World.scanned`` counts them); the memo must answer exactly what the scanning path
answers (``queries.MEMOISE = False``, the test seam).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policyengine as pe
from policyengine.runtime import queries
from policyengine.runtime.evaluate import run
from policyengine.runtime.events import prepare

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from history_scaling import expenses  # type: ignore[import-not-found]  # noqa: E402

POLICY = pe.load_policy(ROOT / "policies" / "customer_management")
NO_LINE = "expense on a line the budget does not have"
OVER_CAP = "development spend above the cap before a breakthrough"


@pytest.fixture
def unmemoised() -> Iterator[None]:
    queries.MEMOISE = False
    try:
        yield
    finally:
        queries.MEMOISE = True


def scanned(events: list[dict[str, Any]]) -> int:
    world = run(POLICY.compiled, prepare(POLICY.compiled, events), None, max_span=None)
    return world.scanned


def test_events_scanned_grow_linearly() -> None:
    a, b, c = (scanned(expenses(n)) for n in (1000, 2000, 4000))
    assert 1.8 < b / a < 2.2
    assert 1.8 < c / b < 2.2


def whats(events: list[dict[str, Any]]) -> list[str]:
    return [v.what for v in POLICY.evaluate(events, resumable=False).violations]


def test_history_on_a_field_that_is_not_the_subject() -> None:
    events = expenses(3)
    events[-1]["line"] = "food"  # no budget line "food" for P1
    events[-2]["customer"] = "P2"  # nor any budget line at all for P2
    assert whats(events).count(NO_LINE) == 2
    queries.MEMOISE = False
    try:
        assert whats(events).count(NO_LINE) == 2
    finally:
        queries.MEMOISE = True


def test_spend_cap_sums_every_earlier_expense() -> None:
    many = expenses(400)
    for e in many[2:]:
        e["amount"] = 1000
    memo = whats(many).count(OVER_CAP)
    queries.MEMOISE = False
    try:
        assert whats(many).count(OVER_CAP) == memo
    finally:
        queries.MEMOISE = True


AMOUNTS = st.one_of(
    st.integers(-(10**6), 10**9),
    st.decimals(min_value=-(10**6), max_value=10**9, places=2, allow_nan=False).map(float),
)
EXPENSE = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["expense_recorded"] * 4 + ["budget_line_submitted", "tracking_recorded"]
        ),
        "customer": st.sampled_from(["P1", "P2"]),
        "line": st.sampled_from(["travel", "food", "rent"]),
        "amount": AMOUNTS,
        "progress": st.sampled_from(["breakthrough", "steady"]),
        "gap": st.integers(1, 3 * 86_400),
    }
)


def history(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = expenses(0)
    at = 1_772_330_500
    for i, r in enumerate(rows):
        at += r["gap"]
        ev: dict[str, Any] = {
            "id": f"g{i}",
            "type": r["type"],
            "at": at,
            "customer": r["customer"],
            "employee": "E1",
        }
        if r["type"] == "tracking_recorded":
            ev["progress"] = r["progress"]
        else:
            ev["line"], ev["amount"] = r["line"], r["amount"]
        events.append(ev)
    for e in events[2:]:
        e["at"] = pe_time(e["at"])
    return events


def pe_time(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(seconds))


@settings(max_examples=60, deadline=None)
@given(st.lists(EXPENSE, max_size=40))
def test_memo_decides_as_the_scanning_path(rows: list[dict[str, Any]]) -> None:
    events = history(rows)
    try:
        memo = POLICY.evaluate(events, resumable=False)
    except pe.EventError:
        return  # a generated event the pack refuses: nothing to compare
    queries.MEMOISE = False
    try:
        plain = POLICY.evaluate(events, resumable=False)
    finally:
        queries.MEMOISE = True
    assert memo == plain
