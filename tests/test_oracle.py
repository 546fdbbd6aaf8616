"""Window edges checked against independent oracles, not against the engine itself.

The other property tests compare the engine with itself (resumed with whole, sharded with
single), so a bug that shifts a window edge on both sides passes them. These compare it with
code that shares none of its time arithmetic:

(a) the hand-written plain-Python baseline of the HX ownership clauses (benchmarks/baseline.py:
    a 2-day window as 48 hours of microseconds), span for span, flag for flag and duty for
    duty, on generated histories whose instants fall exactly at, one second before and one
    second after the pre-heat deadlines;
(b) a reference ``within`` (``reference_status``: met / late / overdue / open from the trigger
    instant, the duration, the inclusive due and the answering events' instants) against the
    obligations of a minimal policy;
(c) resuming a snapshot cut at every event instant and every deadline (a timer due exactly at
    the cut) equals evaluating the whole history.

A planted edge bug (every window ends one second early) must make (a) and (b) fail: the last
tests assert that it does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyengine as pe
from policyengine import times
from policyengine.calendars import Calendar, Seen
from test_snapshot import assert_same as assert_same_decision

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import baseline  # noqa: E402

from test_benchmark_baseline import assert_same as assert_same_view  # noqa: E402
from test_benchmark_baseline import baseline_view, engine_view  # noqa: E402

Event = dict[str, Any]
SECOND = 1_000_000
HOUR = 3600 * SECOND
DAY = 24 * HOUR
BASE = 1_772_330_400 * SECOND  # 2026-03-01T10:00:00+08:00
SHIFTS = (-SECOND, 0, SECOND)
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def text(us: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).isoformat()


# ---------------------------------------------------------------- (a) the ownership baseline

OWNERSHIP = ROOT / "benchmarks" / "hx_ownership.yaml"
_OWNERSHIP: list[pe.Policy] = []


def ownership() -> pe.Policy:
    if not _OWNERSHIP:
        _OWNERSHIP.append(pe.load_policy(OWNERSHIP))
    return _OWNERSHIP[0]


@st.composite
def edge_histories(draw: st.DrawFn) -> tuple[list[Event], str | None]:
    """Registrations, pre-heats and invitations of 1-2 customers by 1-3 employees, each at an
    earlier event's instant plus nothing, an hour or the 2-day window, then -1 s, 0 or +1 s;
    sometimes an ``as_of`` on such an edge too."""
    anchors = [BASE]
    events: list[Event] = []
    for i in range(draw(st.integers(1, 8))):
        anchor = draw(st.sampled_from(anchors))
        step = draw(st.sampled_from((0, HOUR, 2 * DAY, 2 * DAY)))
        at = anchor + step + draw(st.sampled_from(SHIFTS))
        at = max(at, BASE)
        anchors.append(at)
        kind = draw(st.sampled_from(("registered", "registered", "preheated", "invited")))
        ev: Event = {
            "id": f"e{i}",
            "type": kind,
            "at": text(at),
            "customer": draw(st.sampled_from(("C1", "C2"))) if i else "C1",
            "employee": draw(st.sampled_from(("A", "B", "C"))),
        }
        if kind == "registered":
            ev["channel"] = "list_call"
        events.append(ev)
    events.sort(key=lambda e: times.instant_us(e["at"]) or 0)  # the baseline assumes order
    as_of = None
    if draw(st.booleans()):
        anchor = draw(st.sampled_from(anchors))
        as_of = text(max(anchor, max(anchors)) + draw(st.sampled_from((0, 2 * DAY))) + SECOND)
        if draw(st.booleans()):
            as_of = text(anchor + 2 * DAY + draw(st.sampled_from(SHIFTS)))
            if times.instant_us(as_of) < max(anchors):  # type: ignore[operator]
                as_of = None
    return events, as_of


def check_ownership(case: tuple[list[Event], str | None]) -> None:
    events, as_of = case
    engine = engine_view(ownership().evaluate(events, as_of=as_of, resumable=False))
    assert_same_view(engine, baseline_view(baseline.evaluate(events, as_of=as_of)))


@given(edge_histories())
@PROPERTY
def test_ownership_agrees_with_the_baseline_at_window_edges(
    case: tuple[list[Event], str | None],
) -> None:
    check_ownership(case)


# ---------------------------------------------------------------- (b) a reference ``within``

WITHIN_HOURS = 48
MINIMAL = f"""\
policy: {{id: oracle, title: within oracle, version: "1", timezone: Asia/Shanghai}}
clauses:
  - {{id: O-1, text: 原文, reading: answer within {WITHIN_HOURS} hours}}
events:
  asked: {{fields: {{customer: str}}}}
  answered: {{fields: {{customer: str}}}}
rules:
  - id: answer
    clause: O-1
    on: asked
    expect:
      event: answered
      match: {{customer: $event.customer}}
      within: {WITHIN_HOURS} hours
      obligation: answer the customer
"""
_MINIMAL: list[pe.Policy] = []


def minimal() -> pe.Policy:
    if not _MINIMAL:
        _MINIMAL.append(pe.load_policy_text(MINIMAL, "oracle.yaml"))
    return _MINIMAL[0]


def reference_status(
    trigger: int, duration: int, answers: list[int], horizon: int
) -> tuple[str, int | None]:
    """ "Within ``duration`` after ``trigger``", inclusive: the status at ``horizon`` and the
    instant of the answer that settled it. An answer at the trigger instant or later (given
    after the trigger) counts; one at or before the due instant meets it, a later one is late;
    without one the duty is overdue once the horizon is past the due instant, else open."""
    due = trigger + duration
    seen = sorted(a for a in answers if trigger <= a <= horizon)
    in_time = [a for a in seen if a <= due]
    if in_time:
        return "met", in_time[0]
    if horizon <= due:
        return "open", None
    if seen:
        return "late", seen[0]
    return "overdue", None


@st.composite
def within_cases(draw: st.DrawFn) -> dict[str, Any]:
    """One question at BASE, answers at the edges of its window (and of the trigger), an
    as_of at an edge or none (the last event)."""
    due = BASE + WITHIN_HOURS * HOUR
    edges = [BASE + s for s in (0, SECOND)] + [due + s for s in SHIFTS] + [due + DAY]
    answers = draw(st.lists(st.sampled_from(edges), max_size=3))
    as_of = draw(st.sampled_from([None, *[due + s for s in SHIFTS], due + 2 * DAY]))
    if as_of is not None and answers and as_of < max(answers):
        as_of = None
    return {"answers": sorted(answers), "as_of": as_of}


def check_within(case: dict[str, Any]) -> None:
    answers: list[int] = case["answers"]
    events: list[Event] = [{"id": "q", "type": "asked", "at": text(BASE), "customer": "C1"}]
    events += [
        {"id": f"a{i}", "type": "answered", "at": text(at), "customer": "C1"}
        for i, at in enumerate(answers)
    ]
    as_of: int | None = case["as_of"]
    horizon = as_of if as_of is not None else max([BASE, *answers])
    decision = minimal().evaluate(
        events, as_of=text(as_of) if as_of is not None else None, resumable=False
    )
    (duty,) = decision.obligations
    status, at = reference_status(BASE, WITHIN_HOURS * HOUR, answers, horizon)
    assert duty.due is not None and times.from_dt(duty.due) == BASE + WITHIN_HOURS * HOUR, (
        "the due instant"
    )
    assert duty.status == status
    if at is None:
        assert duty.met_by is None
    else:
        assert duty.met_by == f"a{answers.index(at)}"


@given(within_cases())
@PROPERTY
def test_within_agrees_with_the_reference(case: dict[str, Any]) -> None:
    check_within(case)


def test_reference_within_by_hand() -> None:
    due = BASE + WITHIN_HOURS * HOUR
    assert reference_status(BASE, WITHIN_HOURS * HOUR, [due], due) == ("met", due)
    assert reference_status(BASE, WITHIN_HOURS * HOUR, [due + SECOND], due + SECOND) == (
        "late",
        due + SECOND,
    )
    assert reference_status(BASE, WITHIN_HOURS * HOUR, [], due) == ("open", None)
    assert reference_status(BASE, WITHIN_HOURS * HOUR, [], due + SECOND) == ("overdue", None)


# ---------------------------------------------------------------- the planted edge bug


@pytest.fixture
def one_second_early(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every duration's window ends one second early: the bug these oracles must catch."""
    honest = times.Duration._due

    def early(
        self: times.Duration, start_us: int, tz: str, cal: Calendar, seen: Seen | None
    ) -> tuple[int, bool]:
        due, inclusive = honest(self, start_us, tz, cal, seen)
        return due - SECOND, inclusive

    monkeypatch.setattr(times.Duration, "_due", early)


def _fails(check: Callable[[Any], None], strategy: st.SearchStrategy[Any]) -> None:
    @given(strategy)
    @settings(PROPERTY, max_examples=300, print_blob=False, report_multiple_bugs=False)
    def prop(case: Any) -> None:
        check(case)

    with pytest.raises(AssertionError):
        prop()


@pytest.mark.usefixtures("one_second_early")
def test_the_within_oracle_catches_a_window_one_second_short() -> None:
    _fails(check_within, within_cases())


@pytest.mark.usefixtures("one_second_early")
def test_the_baseline_oracle_catches_a_window_one_second_short() -> None:
    _fails(check_ownership, edge_histories())


# ---------------------------------------------------------------- (c) resume at every cut


def cuts_of(policy: pe.Policy, events: list[Event], as_of: str | None) -> list[int]:
    """Every event instant and every deadline up to the horizon (a timer due at the cut)."""
    full = policy.evaluate(events, as_of=as_of, resumable=False)
    instants = {times.instant_us(e["at"]) for e in events}
    dues = {times.from_dt(o.due) for o in full.obligations if o.due is not None}
    horizon = times.instant_us(as_of) if as_of is not None else max(instants)  # type: ignore
    return sorted(t for t in instants | dues if t is not None and t <= horizon)  # type: ignore


def check_every_cut(policy: pe.Policy, events: list[Event], as_of: str | None) -> None:
    full = policy.evaluate(events, as_of=as_of)
    for cut in cuts_of(policy, events, as_of):
        before = [e for e in events if times.instant_us(e["at"]) <= cut]  # type: ignore
        after = [e for e in events if times.instant_us(e["at"]) > cut]  # type: ignore
        stored = policy.evaluate(before, as_of=text(cut)).snapshot()
        resumed = policy.resume(stored, after, as_of=as_of)
        assert_same_decision(resumed, full)
        info = resumed.resumed
        assert info is not None
        assert info.mode == ("incremental" if before else "full"), text(cut)


@given(edge_histories())
@settings(PROPERTY, max_examples=25)
def test_resume_at_every_cut_ownership(case: tuple[list[Event], str | None]) -> None:
    events, as_of = case
    check_every_cut(ownership(), events, as_of)


@given(within_cases())
@settings(PROPERTY, max_examples=25)
def test_resume_at_every_cut_within(case: dict[str, Any]) -> None:
    answers: list[int] = case["answers"]
    events: list[Event] = [{"id": "q", "type": "asked", "at": text(BASE), "customer": "C1"}]
    events += [
        {"id": f"a{i}", "type": "answered", "at": text(at), "customer": "C1"}
        for i, at in enumerate(answers)
    ]
    as_of = case["as_of"]
    check_every_cut(minimal(), events, text(as_of) if as_of is not None else None)


PACKS = sorted(p.name for p in (ROOT / "policies").iterdir() if p.is_dir())


@pytest.mark.parametrize("name", PACKS)
def test_resume_at_every_cut_of_a_pack_history(name: str) -> None:
    """Generated histories of every shipped pack (periods, recurring duties, schedules)."""
    from policyengine.tools.testing import histories
    from test_snapshot import pack

    policy = pack(name)

    @given(histories(policy, max_events=12))
    @settings(PROPERTY, max_examples=8)
    def run(events: list[Event]) -> None:
        check_every_cut(policy, events, None)

    run()
