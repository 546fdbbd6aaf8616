"""Hostile input in bounded time and memory (issue 14).

One mistyped year (9026 for 2026) in a short history would owe every monthly duty and fire
every period tick for seven thousand years. A history spanning more than ``max_span_years``
calendar years (default 20) from its first event to an event or ``as_of`` is refused with
PE308 before any of those duties is created, on every path (evaluate, durable, resume,
evaluate_many); the caller can raise the limit or lift it (``None``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from optional import require
from policyengine.errors import Code, EvaluationError

ROOT = Path(__file__).resolve().parents[1]
Event = dict[str, Any]


@pytest.fixture(scope="module")
def cm() -> pe.Policy:
    return pe.load_policy(ROOT / "policies" / "customer_management")


def history(year: int = 2026) -> list[Event]:
    """24 events of salespeople, a project and visits; the last one in ``year``."""
    evs: list[Event] = [
        {
            "id": f"j{i}",
            "type": "salesperson_joined",
            "at": f"2026-03-1{i}T10:00:00+08:00",
            "employee": f"S{i}",
        }
        for i in range(3)
    ]
    evs.append(
        {
            "id": "pa",
            "type": "project_approved",
            "at": "2026-03-02T10:00:00+08:00",
            "customer": "P1",
            "employee": "S0",
        }
    )
    for m in range(4, 11):
        evs.append(
            {
                "id": f"p{m}",
                "type": "visit_plan_submitted",
                "at": f"2026-{m:02d}-05T10:00:00+08:00",
                "employee": "S0",
                "month": f"2026-{m:02d}",
            }
        )
        evs.append(
            {
                "id": f"t{m}",
                "type": "tracking_recorded",
                "at": f"2026-{m:02d}-06T10:00:00+08:00",
                "customer": "P1",
                "employee": "S0",
            }
        )
    for k in range(3):
        evs.append(
            {
                "id": f"v{k}",
                "type": "client_visited",
                "at": f"2026-05-1{k}T10:00:00+08:00",
                "employee": "S1",
                "visit": f"V{k}",
                "customer": "C1",
            }
        )
        evs.append(
            {
                "id": f"r{k}",
                "type": "visit_report_submitted",
                "at": f"{year if k == 2 else 2026}-05-1{k}T12:00:00+08:00",
                "employee": "S1",
                "visit": f"V{k}",
                "customer": "C1",
            }
        )
    assert len(evs) == 24
    return evs


def test_a_mistyped_year_is_refused_quickly_at_its_event(cm: pe.Policy) -> None:
    started = time.process_time()  # CPU time: a busy machine does not fail it
    with pytest.raises(EvaluationError) as caught:
        cm.evaluate(history(9026))
    assert time.process_time() - started < 5  # not the 7000 years of duties (8 s, 350 MB)
    (problem,) = caught.value.problems
    assert problem.code == Code.SPAN_TOO_LONG.value == "PE308"
    assert problem.event_id == "r2"
    assert "9026-05-12" in problem.message and "20 years" in problem.message
    assert problem.hint is not None and "max_span_years" in problem.hint


@pytest.mark.parametrize("backend", ["python", "native", "durable"])
def test_every_evaluation_path_refuses_it(cm: pe.Policy, backend: str) -> None:
    if backend == "durable":
        require("durable")
    with pytest.raises(EvaluationError, match="PE308"):
        cm.evaluate(history(9026), backend=backend, resumable=False)  # type: ignore[arg-type]


def test_evaluate_many_refuses_it(cm: pe.Policy) -> None:
    with pytest.raises(EvaluationError, match="PE308"):
        cm.evaluate_many(history(9026), shards=2)


def test_an_as_of_too_far_is_refused_without_an_event(cm: pe.Policy) -> None:
    with pytest.raises(EvaluationError) as caught:
        cm.evaluate(history(), as_of="2050-01-01T00:00:00+08:00")
    (problem,) = caught.value.problems
    assert problem.code == "PE308" and problem.event_id is None and "as_of" in problem.message


def test_the_edge_of_the_limit(cm: pe.Policy) -> None:
    """Exactly 20 calendar years after the first event is allowed; one second more is not."""
    first = "2026-03-02T10:00:00+08:00"
    cm.evaluate(history(), as_of="2046-03-02T10:00:00+08:00", resumable=False)
    with pytest.raises(EvaluationError, match="PE308"):
        cm.evaluate(history(), as_of="2046-03-02T10:00:01+08:00", resumable=False)
    assert history()[3]["at"] == first


def test_the_limit_can_be_raised_or_lifted(cm: pe.Policy) -> None:
    events = history(2056)  # 30 years
    with pytest.raises(EvaluationError, match="PE308"):
        cm.evaluate(events, resumable=False)
    a = cm.evaluate(events, resumable=False, max_span_years=40)
    b = cm.evaluate(events, resumable=False, max_span_years=None)
    assert a.model_dump(mode="json") == b.model_dump(mode="json")
    # the monthly visit plans of 30 years: owed up to as_of, and no further
    plans = [o for o in a.obligations if o.rule == "monthly-visit-plan"]
    assert 3 * 12 * 30 <= len(plans) <= 3 * 12 * 31
    with pytest.raises(EvaluationError, match="PE308"):
        cm.evaluate(events, resumable=False, max_span_years=29)
    with pytest.raises(ValueError, match="max_span_years"):
        cm.evaluate(events, max_span_years=0)


def test_resume_checks_the_span_from_the_first_event(cm: pe.Policy) -> None:
    events = sorted(history(), key=lambda e: e["at"])  # one offset: text order is time order
    stored = cm.evaluate(events[:10], as_of=events[9]["at"]).snapshot()
    late = {
        "id": "x",
        "type": "tracking_recorded",
        "at": "2066-06-01T10:00:00+08:00",
        "customer": "P1",
        "employee": "S0",
    }
    with pytest.raises(EvaluationError) as caught:
        cm.resume(stored, [*events[10:], late])
    assert caught.value.problems[0].event_id == "x"
    resumed = cm.resume(stored, [*events[10:], late], max_span_years=None)
    full = cm.evaluate([*events, late], max_span_years=None)
    assert resumed.resumed is not None and resumed.resumed.mode == "incremental"
    assert resumed.model_dump(mode="json") == full.model_dump(mode="json")


def test_evaluate_many_passes_the_limit_on(cm: pe.Policy) -> None:
    events = history(2056)
    with pytest.raises(EvaluationError, match="PE308"):
        cm.evaluate_many(events)
    many = cm.evaluate_many(events, shards=2, max_span_years=None)
    one = cm.evaluate(events, max_span_years=None)
    assert many.model_dump(mode="json") == one.model_dump(mode="json")


def test_valid_histories_are_unchanged(cm: pe.Policy) -> None:
    events = history()
    assert cm.evaluate(events).model_dump(mode="json") == cm.evaluate(
        events, max_span_years=None
    ).model_dump(mode="json")
