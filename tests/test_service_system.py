"""Scenario tests for policies/service_system: clauses SS-1..9 of docs/clauses.md.

Every expectation follows the clause readings and docs/semantics.md. Windows are tested
on both edges:

* "within N days/hours" is inclusive: an event exactly at the due instant is in time, one
  second later is late (or overdue when nothing came), and before the due instant the duty is
  still open;
* "the same day" / "the next day" end at the first / second local (Asia/Shanghai) midnight,
  which is already late: 23:59:59 is in time, 00:00:00 is not;
* "each calendar month" owes one duty per local month, due at its end (exclusive).

All instants are 2026, +08:00.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe

POLICY = Path(__file__).parents[1] / "policies" / "service_system"

Event = dict[str, Any]


# ---------------------------------------------------------------------------- helpers


def t(md: str, hms: str = "10:00:00") -> str:
    """A Shanghai-local instant in 2026: ``t("03-02")`` is 2026-03-02T10:00:00+08:00."""
    return f"2026-{md}T{hms}+08:00"


def dt(md: str, hms: str = "10:00:00") -> datetime:
    return datetime.fromisoformat(t(md, hms))


def ev(eid: str, etype: str, at: str, **fields: Any) -> Event:
    return {"id": eid, "type": etype, "at": at, **fields}


def bought(eid: str, at: str, customer: str = "C1", employee: str = "S1", **f: Any) -> Event:
    return ev(eid, "purchased", at, customer=customer, employee=employee, boxes=2, **f)


def phone(eid: str, at: str, customer: str = "C1", employee: str = "S1", **f: Any) -> Event:
    return ev(eid, "phone_visit", at, customer=customer, employee=employee, **f)


def home(eid: str, at: str, customer: str = "C1", employee: str = "S1", **f: Any) -> Event:
    return ev(eid, "home_visit", at, customer=customer, employee=employee, **f)


def request(eid: str, at: str, case: str = "K1", customer: str = "C1") -> Event:
    return ev(eid, "service_requested", at, case=case, customer=customer)


def step(eid: str, at: str, name: str, case: str = "K1", **f: Any) -> Event:
    return ev(eid, "case_step", at, case=case, step=name, **f)


def horizon(eid: str, at: str, months: int, customer: str = "C1") -> Event:
    return ev(eid, "horizon_set", at, customer=customer, months=months)


def stopped(eid: str, at: str, reason: str, customer: str = "C1") -> Event:
    return ev(eid, "stopped", at, customer=customer, reason=reason)


def held(eid: str, at: str, kind: str, **f: Any) -> Event:
    return ev(eid, "meeting_held", at, kind=kind, **f)


def invited(eid: str, at: str, kind: str, customer: str = "C1", employee: str = "S1") -> Event:
    return ev(eid, "meeting_invited", at, customer=customer, employee=employee, kind=kind)


def attended(eid: str, at: str, customer: str = "C1", **f: Any) -> Event:
    return ev(eid, "meeting_attended", at, customer=customer, **f)


def cites(obj: Any, clause_id: str) -> bool:
    return clause_id in ([obj.clause] if isinstance(obj.clause, str) else obj.clause)


def obls(d: Any, clause: str, subject: str | None = "C1", what: str | None = None) -> list[Any]:
    """The clause's obligations about ``subject`` whose ``what`` contains ``what``."""
    return [
        o
        for o in d.obligations
        if cites(o, clause)
        and (subject is None or o.subject == subject)
        and (what is None or what in o.what)
    ]


def viols(d: Any, clause: str) -> list[Any]:
    return [v for v in d.violations if cites(v, clause)]


def one(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def by_due(items: list[Any]) -> list[Any]:
    return sorted(items, key=lambda o: (o.due is None, o.due))


@pytest.fixture(scope="module")
def policy() -> Any:
    return pe.load_policy(str(POLICY))


@pytest.fixture
def run(policy: Any) -> Any:
    """``run(event_or_list, ..., as_of=None)``: evaluate the flattened history."""

    def _run(*items: Event | list[Event], as_of: str | None = None) -> Any:
        events: list[Event] = []
        for item in items:
            events.extend(item if isinstance(item, list) else [item])
        return policy.evaluate(events, as_of=as_of)

    return _run


def test_policy_loads_with_all_clauses(policy: Any, run: Any) -> None:
    """The pack carries SS-1..SS-10 with their readings."""
    d = run(bought("p", t("03-02")), as_of=t("03-02", "11:00:00"))
    for n in range(1, 11):
        assert f"SS-{n}" in d.clauses


# ============================================================================ SS-1
# Every service request owes a case_step `responded` of the same case within 24 hours
# (inclusive), by the service department.


def test_ss1_response_at_24_hours_is_met(run: Any) -> None:
    """SS-1: responded exactly 24 hours later -> met, by the service department."""
    d = run(
        request("r", t("03-02")),
        step("s", t("03-03"), "responded", employee="E9"),
        as_of=t("03-05"),
    )
    o = one(obls(d, "SS-1"))
    assert o.status == "met"
    assert o.met_by == "s"
    assert o.met_at == dt("03-03")
    assert o.party == "service_department"
    assert o.due == dt("03-03")
    assert o.due_inclusive is True
    assert o.opened == dt("03-02")
    assert "r" in o.events


def test_ss1_response_one_second_late(run: Any) -> None:
    """SS-1: responded 24 hours and 1 second later -> late, still recorded with its event."""
    d = run(
        request("r", t("03-02")),
        step("s", t("03-03", "10:00:01"), "responded"),
        as_of=t("03-05"),
    )
    o = one(obls(d, "SS-1"))
    assert o.status == "late"
    assert o.met_by == "s"


@pytest.mark.parametrize(
    ("as_of", "status"),
    [(t("03-02", "12:00:00"), "open"), (t("03-03"), "open"), (t("03-03", "10:00:01"), "overdue")],
)
def test_ss1_unanswered_request_open_until_due(run: Any, as_of: str, status: str) -> None:
    """SS-1: with no response the duty is open up to the due instant, overdue one second later."""
    d = run(request("r", t("03-02")), as_of=as_of)
    o = one(obls(d, "SS-1"))
    assert o.status == status
    assert o.met_by is None


@pytest.mark.parametrize(("case", "name"), [("K2", "responded"), ("K1", "registered")])
def test_ss1_only_a_response_of_the_same_case_counts(run: Any, case: str, name: str) -> None:
    """SS-1: another case's response, or another step of this case, is not a response."""
    d = run(
        request("r", t("03-02")),
        step("s", t("03-02", "12:00:00"), name, case=case),
        as_of=t("03-04"),
    )
    assert one(obls(d, "SS-1")).status == "overdue"


# ============================================================================ SS-2
# received (the request) -> registered -> dispatched -> resolved -> evaluated. Each later stage
# is a duty without deadline; a stage done while an earlier one is undone is a violation (and
# still counts).

SS2_STEPS = ["registered", "dispatched", "resolved", "evaluated"]
SS2_WHAT = {
    "registered": "register",
    "dispatched": "dispatch",
    "resolved": "resolve",
    "evaluated": "evaluate",
}


def ss2(d: Any, name: str) -> Any:
    return one(obls(d, "SS-2", what=SS2_WHAT[name]))


def test_ss2_request_owes_four_steps_without_deadline(run: Any) -> None:
    """SS-2: an untouched case has four open duties with no due instant, even months later."""
    d = run(request("r", t("03-02")), as_of=t("12-31"))
    assert len(obls(d, "SS-2")) == 4
    for name in SS2_STEPS:
        o = ss2(d, name)
        assert o.status == "open"
        assert o.due is None
        assert o.party == "service_department"
        assert "r" in o.events
    assert viols(d, "SS-2") == []


def test_ss2_case_in_order_is_met_without_violation(run: Any) -> None:
    """SS-2: every step in order -> four met duties, each by its own step, no violation."""
    d = run(
        request("r", t("03-02")),
        step("s0", t("03-02", "11:00:00"), "responded"),
        [step(f"s{i}", t(f"03-0{i + 2}"), name) for i, name in enumerate(SS2_STEPS, start=1)],
        as_of=t("03-10"),
    )
    for i, name in enumerate(SS2_STEPS, start=1):
        o = ss2(d, name)
        assert o.status == "met"
        assert o.met_by == f"s{i}"
    assert viols(d, "SS-2") == []


def test_ss2_unfinished_case_leaves_the_remaining_steps_open(run: Any) -> None:
    """SS-2: registered and dispatched done -> resolved and evaluated still open."""
    d = run(
        request("r", t("03-02")),
        step("s1", t("03-03"), "registered"),
        step("s2", t("03-04"), "dispatched"),
        as_of=t("06-30"),
    )
    assert [ss2(d, n).status for n in SS2_STEPS] == ["met", "met", "open", "open"]
    assert viols(d, "SS-2") == []


def test_ss2_step_out_of_order_is_one_violation_and_still_counts(run: Any) -> None:
    """SS-2: resolved while dispatched is undone -> one violation on that step, which is met."""
    d = run(
        request("r", t("03-02")),
        step("s1", t("03-03"), "registered"),
        step("s3", t("03-04"), "resolved", employee="E7"),
        as_of=t("03-10"),
    )
    v = one(viols(d, "SS-2"))
    assert v.event == "s3"
    assert v.party == "E7"
    assert v.at == dt("03-04")
    assert v.subject == "C1"
    assert ss2(d, "resolved").status == "met"
    assert ss2(d, "resolved").met_by == "s3"
    assert ss2(d, "dispatched").status == "open"
    assert ss2(d, "evaluated").status == "open"


def test_ss2_catching_up_later_adds_no_second_violation(run: Any) -> None:
    """SS-2: after the skipped step is done, the remaining steps are in order again."""
    d = run(
        request("r", t("03-02")),
        step("s1", t("03-03"), "registered"),
        step("s3", t("03-04"), "resolved"),
        step("s2", t("03-05"), "dispatched"),
        step("s4", t("03-06"), "evaluated"),
        as_of=t("03-10"),
    )
    v = one(viols(d, "SS-2"))
    assert v.event == "s3"
    assert v.party == "service_department"
    assert [ss2(d, n).status for n in SS2_STEPS] == ["met"] * 4
    assert ss2(d, "dispatched").met_by == "s2"


def test_ss2_first_step_skipped(run: Any) -> None:
    """SS-2: dispatched before registered -> the violation names the dispatch."""
    d = run(
        request("r", t("03-02")),
        step("s2", t("03-03"), "dispatched"),
        as_of=t("03-10"),
    )
    assert one(viols(d, "SS-2")).event == "s2"
    assert ss2(d, "registered").status == "open"
    assert ss2(d, "dispatched").status == "met"


def test_ss2_steps_of_another_case_do_not_count(run: Any) -> None:
    """SS-2: case K2's steps neither meet K1's duties nor report violations against K1."""
    d = run(
        request("r", t("03-02")),
        [step(f"x{i}", t(f"03-0{i + 2}"), n, case="K2") for i, n in enumerate(SS2_STEPS, 1)],
        step("y", t("03-08"), "resolved", case="K2"),
        as_of=t("03-10"),
    )
    assert [ss2(d, n).status for n in SS2_STEPS] == ["open"] * 4
    assert viols(d, "SS-2") == []


# ============================================================================ SS-3
# tier, highest that applies: A made_core, B referral_closed, C brought_guest, D attended a
# meeting AND helped persuade, E a second purchase; None before any.


def tier_events(*kinds: str) -> list[Event]:
    out: list[Event] = []
    for i, kind in enumerate(kinds):
        at = t(f"03-{i + 2:02d}")
        if kind == "purchased":
            out.append(bought(f"e{i}", at))
        else:
            out.append(ev(f"e{i}", kind, at, customer="C1"))
    return out


@pytest.mark.parametrize(
    ("kinds", "tier"),
    [
        (["purchased"], None),
        (["purchased", "purchased"], "E"),
        (["meeting_attended"], None),
        (["helped_persuade"], None),
        (["purchased", "helped_persuade"], None),
        (["meeting_attended", "helped_persuade"], "D"),
        (["helped_persuade", "meeting_attended"], "D"),
        (["brought_guest"], "C"),
        (["referral_closed"], "B"),
        (["made_core"], "A"),
        (["purchased", "purchased", "meeting_attended", "helped_persuade"], "D"),
        (["meeting_attended", "helped_persuade", "brought_guest"], "C"),
        (["brought_guest", "referral_closed", "purchased", "purchased"], "B"),
        (["made_core", "brought_guest", "referral_closed", "purchased", "purchased"], "A"),
    ],
)
def test_ss3_tier_is_the_highest_that_applies(run: Any, kinds: list[str], tier: str) -> None:
    """SS-3: the tier label for each combination of behaviours."""
    d = run(tier_events(*kinds), as_of=t("04-01"))
    assert d.labels("C1") == {"tier": tier}


@pytest.mark.parametrize(
    ("as_of", "tier"),
    [
        (t("03-02"), None),
        (t("03-03", "09:59:59"), None),
        (t("03-03"), "E"),
        (t("03-04"), "C"),
        (t("03-05"), "A"),
    ],
)
def test_ss3_tier_as_of_ignores_later_events(run: Any, as_of: str, tier: str) -> None:
    """SS-3: the label is read at as_of; events after it do not count."""
    d = run(
        bought("p1", t("03-02")),
        bought("p2", t("03-03")),
        ev("g", "brought_guest", t("03-04"), customer="C1"),
        ev("c", "made_core", t("03-05"), customer="C1"),
        as_of=as_of,
    )
    assert d.labels("C1") == {"tier": tier}


def test_ss3_another_customers_behaviour_does_not_count(run: Any) -> None:
    """SS-3: C2's core status and C2's purchase say nothing about C1."""
    d = run(
        bought("p1", t("03-02")),
        bought("p2", t("03-03"), customer="C2"),
        ev("c", "made_core", t("03-04"), customer="C2"),
        ev("m", "meeting_attended", t("03-05"), customer="C1"),
        ev("h", "helped_persuade", t("03-06"), customer="C2"),
        as_of=t("04-01"),
    )
    assert d.labels("C1") == {"tier": None}
    assert d.labels("C2") == {"tier": "A"}


# ============================================================================ SS-4
# Purchase at T = 03-02 10:00 by S1. Step 1 phone call by 03-03 00:00 (exclusive); step 2 home
# visit in [03-03 00:00, 03-05 10:00]; step 3 home or phone in (03-05 10:00, 03-09 10:00];
# step 4 in (03-09 10:00, 03-17 10:00], a home visit if the two latest visits were phone calls;
# step 5 in (03-17 10:00, 03-30 10:00]. One visit meets one step only.

BUY = bought("p", t("03-02"))
SS4_DUE = [
    (dt("03-03", "00:00:00"), False),
    (dt("03-05"), True),
    (dt("03-09"), True),
    (dt("03-17"), True),
    (dt("03-30"), True),
]
# The last instant in time for each step, and a visit kind that may meet it.
SS4_LAST = [
    (t("03-02", "23:59:59"), phone),
    (t("03-05"), home),
    (t("03-09"), phone),
    (t("03-17"), phone),
    (t("03-30"), home),
]
# One ordinary in-time visit for each step.
SS4_OK = [
    phone("v1", t("03-02", "12:00:00")),
    home("v2", t("03-04")),
    phone("v3", t("03-07")),
    phone("v4", t("03-12")),
    home("v5", t("03-25")),
]


def ss4(d: Any, customer: str = "C1") -> list[Any]:
    steps = by_due(obls(d, "SS-4", customer))
    assert len(steps) == 5, steps
    return steps


def test_ss4_purchase_owes_five_steps_with_their_windows(run: Any) -> None:
    """SS-4: five duties of the serving specialist, each window opening at the previous due."""
    d = run(BUY, as_of=t("03-02", "11:00:00"))
    steps = ss4(d)
    assert [(o.due, o.due_inclusive) for o in steps] == SS4_DUE
    assert [o.status for o in steps] == ["open"] * 5
    assert {o.party for o in steps} == {"S1"}
    assert steps[0].window_start in (None, dt("03-02"))
    starts = [(o.window_start, o.window_start_inclusive) for o in steps[1:]]
    assert starts == [
        (dt("03-03", "00:00:00"), True),
        (dt("03-05"), False),
        (dt("03-09"), False),
        (dt("03-17"), False),
    ]


def test_ss4_all_steps_met_in_time(run: Any) -> None:
    """SS-4: one in-time visit of a right kind per step -> all five met, each by its visit."""
    d = run(BUY, SS4_OK, as_of=t("04-15"))
    steps = ss4(d)
    assert [o.status for o in steps] == ["met"] * 5
    assert [o.met_by for o in steps] == ["v1", "v2", "v3", "v4", "v5"]


@pytest.mark.parametrize("k", range(5))
def test_ss4_visit_at_the_last_instant_meets_the_step(run: Any, k: int) -> None:
    """SS-4: a visit exactly at the due (23:59:59 for the same-day call) is in time."""
    at, kind = SS4_LAST[k]
    d = run(BUY, SS4_OK[:k], kind("edge", at), as_of=t("04-15"))
    o = ss4(d)[k]
    assert o.status == "met"
    assert o.met_by == "edge"
    assert [s.status for s in ss4(d)[:k]] == ["met"] * k


@pytest.mark.parametrize("k", range(5))
def test_ss4_step_open_until_due_then_overdue(run: Any, k: int) -> None:
    """SS-4: no visit for step k -> open at its last in-time instant, overdue right after."""
    due, inclusive = SS4_DUE[k]
    last = t("03-02", "23:59:59") if not inclusive else due.isoformat()
    after = due.isoformat() if not inclusive else t(due.strftime("%m-%d"), "10:00:01")
    before = run(BUY, SS4_OK[:k], as_of=last)
    assert ss4(before)[k].status == "open"
    late = run(BUY, SS4_OK[:k], as_of=after)
    assert ss4(late)[k].status == "overdue"
    assert ss4(late)[k].met_by is None


def test_ss4_day0_call_at_midnight_is_late(run: Any) -> None:
    """SS-4: the purchase day ends at local midnight; a call at 00:00 is late for step 1."""
    d = run(BUY, phone("c", t("03-03", "00:00:00")), as_of=t("03-04"))
    steps = ss4(d)
    assert steps[0].status == "late"
    assert steps[0].met_by == "c"
    assert steps[1].status == "open"


def test_ss4_home_visit_does_not_meet_the_day0_call(run: Any) -> None:
    """SS-4: step 1 needs a phone call; a same-day home visit meets nothing (step 2 not open)."""
    d = run(BUY, home("h", t("03-02", "15:00:00")), as_of=t("03-04"))
    steps = ss4(d)
    assert steps[0].status == "overdue"
    assert steps[1].status == "open"
    assert all(o.met_by is None for o in steps)


def test_ss4_phone_call_does_not_meet_the_day3_visit(run: Any) -> None:
    """SS-4: step 2 needs a home visit; a phone call on day 2 is neither step 2 nor step 3."""
    d = run(BUY, SS4_OK[0], phone("c", t("03-04")), as_of=t("03-05", "10:00:01"))
    steps = ss4(d)
    assert steps[1].status == "overdue"
    assert steps[2].status == "open"
    assert steps[2].met_by is None


def test_ss4_phone_at_day3_due_meets_neither_step(run: Any) -> None:
    """SS-4: a phone call exactly at T+3d: wrong kind for step 2, before step 3's window."""
    d = run(BUY, SS4_OK[0], phone("c", t("03-05")), as_of=t("03-06"))
    steps = ss4(d)
    assert steps[1].status == "overdue"
    assert steps[2].status == "open"
    assert steps[2].met_by is None


def test_ss4_visit_at_day3_due_never_meets_step3(run: Any) -> None:
    """SS-4: with step 2 already met, a home visit exactly at T+3d does not meet step 3."""
    d = run(BUY, SS4_OK[:2], home("h", t("03-05")), as_of=t("03-09"))
    steps = ss4(d)
    assert steps[1].met_by == "v2"
    assert steps[2].status == "open"
    assert steps[2].met_by is None


def test_ss4_visit_just_after_day3_due_meets_step3_only(run: Any) -> None:
    """SS-4: a home visit at T+3d+1s is in step 3's window: step 3 met, step 2 stays overdue."""
    d = run(BUY, SS4_OK[0], home("h", t("03-05", "10:00:01")), as_of=t("03-06"))
    steps = ss4(d)
    assert steps[1].status == "overdue"
    assert steps[2].status == "met"
    assert steps[2].met_by == "h"


def test_ss4_one_visit_meets_one_step_only(run: Any) -> None:
    """SS-4: step 2 missed; a day-5 visit meets step 3, the next one meets step 2 late."""
    d = run(
        BUY,
        SS4_OK[0],
        home("h1", t("03-07")),
        home("h2", t("03-08")),
        as_of=t("03-10"),
    )
    steps = ss4(d)
    assert (steps[2].status, steps[2].met_by) == ("met", "h1")
    assert (steps[1].status, steps[1].met_by) == ("late", "h2")
    assert steps[3].status == "open"


def test_ss4_extra_visit_before_a_window_meets_nothing(run: Any) -> None:
    """SS-4: a second visit on day 6 (step 3 met, step 4 not yet open) leaves step 4 open."""
    d = run(BUY, SS4_OK[:3], phone("x", t("03-08")), as_of=t("03-10"))
    steps = ss4(d)
    assert steps[2].met_by == "v3"
    assert steps[3].status == "open"
    assert steps[3].met_by is None


def test_ss4_day15_phone_refused_after_two_phone_calls(run: Any) -> None:
    """SS-4: the two latest visits were phone calls -> a phone call does not meet day 15."""
    d = run(
        BUY,
        SS4_OK[:3],  # phone, home, phone (03-07)
        phone("x", t("03-08")),  # meets nothing
        phone("c", t("03-12")),  # latest two before it: phone, phone
        as_of=t("03-13"),
    )
    assert ss4(d)[3].status == "open"
    assert ss4(d)[3].met_by is None


def test_ss4_day15_home_visit_after_two_phone_calls(run: Any) -> None:
    """SS-4: ... and a home visit afterwards (on day 15's due) meets it."""
    d = run(
        BUY,
        SS4_OK[:3],
        phone("x", t("03-08")),
        phone("c", t("03-12")),
        home("h", t("03-17")),
        as_of=t("03-18"),
    )
    assert (ss4(d)[3].status, ss4(d)[3].met_by) == ("met", "h")


def test_ss4_day15_phone_refused_then_overdue(run: Any) -> None:
    """SS-4: phone calls only -> the day-15 step is overdue after its due."""
    d = run(
        BUY,
        SS4_OK[:3],
        phone("x", t("03-08")),
        phone("c1", t("03-12")),
        phone("c2", t("03-16")),
        as_of=t("03-17", "10:00:01"),
    )
    assert ss4(d)[3].status == "overdue"


@pytest.mark.parametrize(
    "before",
    [
        [home("h3", t("03-07")), phone("x", t("03-08"))],  # latest two: phone, home
        [phone("h3", t("03-07")), home("x", t("03-08"))],  # latest two: home, phone
        [phone("h3", t("03-07")), phone("x", t("03-08"), customer="C2")],  # C2 does not count
    ],
)
def test_ss4_day15_phone_allowed_unless_two_latest_were_phone(
    run: Any, before: list[Event]
) -> None:
    """SS-4: a phone call meets day 15 when the customer's two latest visits were not both
    phone calls (visits to another customer are not this customer's)."""
    d = run(BUY, SS4_OK[:2], before, phone("c", t("03-12")), as_of=t("03-13"))
    assert (ss4(d)[3].status, ss4(d)[3].met_by) == ("met", "c")


def test_ss4_visits_to_another_customer_do_not_count(run: Any) -> None:
    """SS-4: C2's calls and visits do not meet C1's steps."""
    d = run(
        BUY,
        phone("a", t("03-02", "12:00:00"), customer="C2"),
        home("b", t("03-04"), customer="C2"),
        as_of=t("03-06"),
    )
    steps = ss4(d)
    assert [o.status for o in steps[:3]] == ["overdue", "overdue", "open"]


# ============================================================================ SS-5
# Purchase at T = 02-10 10:00 by S1 (owner), expert X1: day 28 = 03-10 10:00. From then on,
# per calendar month: a visit by the owner, an expert phone call, a service call, a
# maintenance-meeting attendance; due at the month's end (exclusive).

BUY5 = bought("p", t("02-10"), expert="X1")

SS5_DUTY: dict[str, tuple[str, str, Any]] = {
    # key: (what keyword, party, event builder for a meeting event at ``at``)
    "owner": ("owner", "S1", lambda eid, at: home(eid, at, employee="S1")),
    "expert": ("expert", "X1", lambda eid, at: phone(eid, at, employee="X1", role="expert")),
    "service": (
        "call-back",
        "customer_service",
        lambda eid, at: ev(eid, "service_call", at, customer="C1", employee="K9"),
    ),
    "meeting": ("meeting", "S1", lambda eid, at: attended(eid, at, kind="maintenance")),
}


def ss5(d: Any, key: str) -> list[Any]:
    return by_due(obls(d, "SS-5", what=SS5_DUTY[key][0]))


def test_ss5_four_monthly_duties_from_day_28(run: Any) -> None:
    """SS-5: March (the month of day 28) owes four duties from 03-10 10:00 to 04-01 00:00."""
    d = run(BUY5, as_of=t("03-15"))
    assert len(obls(d, "SS-5")) == 4
    for key, (_, party, _) in SS5_DUTY.items():
        o = one(ss5(d, key))
        assert o.party == party, key
        assert o.status == "open"
        assert o.window_start == dt("03-10")
        assert o.due == dt("04-01", "00:00:00")
        assert o.due_inclusive is False
        assert "p" in o.events


def test_ss5_owner_is_the_first_serving_specialist(run: Any) -> None:
    """SS-5: the owner is S1 (first purchase); a repurchase served by S2 does not change it."""
    d = run(BUY5, bought("p2", t("02-20"), employee="S2"), as_of=t("03-25"))
    assert d.owner("C1") == "S1"
    assert {o.party for o in obls(d, "SS-5", what="owner")} == {"S1"}


@pytest.mark.parametrize("key", list(SS5_DUTY))
def test_ss5_met_on_the_last_second_of_the_month(run: Any, key: str) -> None:
    """SS-5: the duty's event at 03-31 23:59:59 meets March's duty."""
    make = SS5_DUTY[key][2]
    d = run(BUY5, make("x", t("03-31", "23:59:59")), as_of=t("04-15"))
    march, april = ss5(d, key)
    assert (march.status, march.met_by) == ("met", "x")
    assert april.status == "open"
    assert april.due == dt("05-01", "00:00:00")


@pytest.mark.parametrize("key", list(SS5_DUTY))
def test_ss5_first_of_next_month_is_too_late(run: Any, key: str) -> None:
    """SS-5: at 04-01 00:00 March is overdue; the event counts for April instead."""
    make = SS5_DUTY[key][2]
    d = run(BUY5, make("x", t("04-01", "00:00:00")), as_of=t("04-15"))
    march, april = ss5(d, key)
    assert march.status == "overdue"
    assert march.met_by is None
    assert (april.status, april.met_by) == ("met", "x")


@pytest.mark.parametrize("key", list(SS5_DUTY))
def test_ss5_events_before_day_28_do_not_count(run: Any, key: str) -> None:
    """SS-5: the duty's event one second before T+28d does not meet March's duty."""
    make = SS5_DUTY[key][2]
    d = run(BUY5, make("x", t("03-10", "09:59:59")), as_of=t("03-31", "23:59:59"))
    assert one(ss5(d, key)).status == "open"


@pytest.mark.parametrize("key", list(SS5_DUTY))
def test_ss5_event_at_day_28_counts(run: Any, key: str) -> None:
    """SS-5: the window starts at T+28d itself."""
    make = SS5_DUTY[key][2]
    d = run(BUY5, make("x", t("03-10")), as_of=t("03-20"))
    assert (one(ss5(d, key)).status, one(ss5(d, key)).met_by) == ("met", "x")


def test_ss5_month_end_open_then_overdue(run: Any) -> None:
    """SS-5: as of 03-31 23:59:59 all four open; as of 04-01 00:00 March's four are overdue."""
    before = run(BUY5, as_of=t("03-31", "23:59:59"))
    assert sorted(o.status for o in obls(before, "SS-5")) == ["open"] * 4
    after = run(BUY5, as_of=t("04-01", "00:00:00"))
    march = [o for o in obls(after, "SS-5") if o.due == dt("04-01", "00:00:00")]
    assert [o.status for o in march] == ["overdue"] * 4


@pytest.mark.parametrize(
    ("key", "wrong"),
    [
        ("owner", home("x", t("03-20"), employee="S2")),
        ("expert", phone("x", t("03-20"), employee="X1")),  # role specialist
        ("expert", home("x", t("03-20"), employee="X1", role="expert")),  # not a phone call
        ("expert", phone("x", t("03-20"), customer="C2", employee="X1", role="expert")),
        ("service", ev("x", "service_call", t("03-20"), customer="C2", employee="K9")),
        ("meeting", attended("x", t("03-20"))),  # no kind
        ("meeting", attended("x", t("03-20"), kind="sales")),
    ],
)
def test_ss5_wrong_event_does_not_meet_the_duty(run: Any, key: str, wrong: Event) -> None:
    """SS-5: a visit by someone else than the owner, a non-expert call, another customer's
    call-back, or a meeting of another kind does not meet the duty."""
    d = run(BUY5, wrong, as_of=t("03-25"))
    assert one(ss5(d, key)).status == "open"


def test_ss5_expert_party_defaults_to_expert(run: Any) -> None:
    """SS-5: without a named consulting expert the expert call is owed by `expert`."""
    d = run(bought("p", t("02-10")), as_of=t("03-15"))
    assert one(ss5(d, "expert")).party == "expert"


# ============================================================================ SS-6
# horizon_set at H = 03-02 10:00. Months 1-2: phone every 3 days, home weekly; 3: phone weekly,
# home every 15 days; 4+: phone every 15 days, home monthly. Rolling windows.

H = t("03-02")


def ss6(d: Any, kind: str) -> list[Any]:
    return by_due(obls(d, "SS-6", what=kind))


@pytest.mark.parametrize(
    ("months", "phone_due", "home_due"),
    [
        (1, dt("03-05"), dt("03-09")),
        (2, dt("03-05"), dt("03-09")),
        (3, dt("03-09"), dt("03-17")),
        (4, dt("03-17"), dt("04-02")),
        (9, dt("03-17"), dt("04-02")),
    ],
)
def test_ss6_cadence_by_horizon(
    run: Any, months: int, phone_due: datetime, home_due: datetime
) -> None:
    """SS-6: the first phone and home duties are due by the horizon's cadence."""
    d = run(horizon("h", H, months), as_of=t("03-02", "11:00:00"))
    p, v = one(ss6(d, "phone")), one(ss6(d, "home"))
    assert (p.due, p.due_inclusive, p.status) == (phone_due, True, "open")
    assert (v.due, v.due_inclusive, v.status) == (home_due, True, "open")
    assert p.party == v.party == "after_sales"


def test_ss6_monthly_home_cadence_clamps_to_month_end(run: Any) -> None:
    """SS-6: a monthly home visit from 01-31 is due 02-28 (one calendar month)."""
    d = run(horizon("h", t("01-31"), 5), as_of=t("02-01"))
    assert one(ss6(d, "home")).due == dt("02-28")


def test_ss6_party_is_the_owner(run: Any) -> None:
    """SS-6: with an owner (first purchase's specialist), the owner owes the contacts."""
    d = run(bought("p", t("03-01")), horizon("h", H, 1), as_of=t("03-02", "11:00:00"))
    assert {o.party for o in obls(d, "SS-6")} == {"S1"}


def test_ss6_phone_at_due_is_met_and_next_window_runs_from_it(run: Any) -> None:
    """SS-6: a call exactly at H+3d meets the duty; the next is due 3 days after that call."""
    d = run(horizon("h", H, 1), phone("c", t("03-05")), as_of=t("03-06"))
    first, second = ss6(d, "phone")
    assert (first.status, first.met_by) == ("met", "c")
    assert (second.status, second.due) == ("open", dt("03-08"))


def test_ss6_early_contact_restarts_the_window(run: Any) -> None:
    """SS-6: rolling: a call on day 1 makes the next due 3 days after it, a home visit the same."""
    d = run(
        horizon("h", H, 1),
        phone("c", t("03-03", "09:00:00")),
        home("v", t("03-04")),
        as_of=t("03-04", "12:00:00"),
    )
    p1, p2 = ss6(d, "phone")
    assert p1.met_by == "c"
    assert p2.due == dt("03-06", "09:00:00")
    v1, v2 = ss6(d, "home")
    assert v1.met_by == "v"
    assert v2.due == dt("03-11")


@pytest.mark.parametrize(
    ("as_of", "statuses"),
    [(t("03-05"), ["open"]), (t("03-05", "10:00:01"), ["overdue"])],
)
def test_ss6_missed_duty_stays_the_one_owed(run: Any, as_of: str, statuses: list[str]) -> None:
    """SS-6: no call: open up to H+3d, overdue one second later, and no next duty until a
    call meets it late (issue 16: before, the next was due H+6d)."""
    d = run(horizon("h", H, 2), as_of=as_of)
    phones = ss6(d, "phone")
    assert [o.status for o in phones] == statuses


def test_ss6_contact_after_a_miss_meets_it_late(run: Any) -> None:
    """SS-6: a call on 03-06 meets the missed duty late, and the next is due 3 days after the
    call (issue 16: before, it met a window after the miss and the missed one stayed)."""
    d = run(horizon("h", H, 1), phone("c", t("03-06")), as_of=t("03-07"))
    p1, p2 = ss6(d, "phone")
    assert (p1.status, p1.met_by, p1.due) == ("late", "c", dt("03-05"))
    assert (p2.status, p2.due) == ("open", dt("03-09"))


@pytest.mark.parametrize(
    ("contact", "kind"),
    [
        (home("x", t("03-03")), "phone"),
        (phone("x", t("03-03")), "home"),
        (phone("x", t("03-03"), customer="C2"), "phone"),
    ],
)
def test_ss6_wrong_contact_does_not_count(run: Any, contact: Event, kind: str) -> None:
    """SS-6: a home visit is not a call, a call is not a home visit, C2's call is not C1's."""
    d = run(horizon("h", H, 1), contact, as_of=t("03-04"))
    o = one(ss6(d, kind))
    assert (o.status, o.met_by) == ("open", None)


def test_ss6_new_horizon_replaces_the_cadence(run: Any) -> None:
    """SS-6: a new horizon_set drops the old open duties and owes the new cadence from it."""
    d = run(
        horizon("h1", H, 1),
        phone("c", t("03-03")),
        horizon("h2", t("03-04"), 4),
        as_of=t("03-05", "12:00:00"),
    )
    phones = ss6(d, "phone")
    # the old cadence's open duties are reported as cancelled by h2 (issue 16)
    assert [(o.status, o.due) for o in phones] == [
        ("met", dt("03-05")),
        ("cancelled", dt("03-06")),
        ("open", dt("03-19")),
    ]
    homes = ss6(d, "home")
    assert [(o.status, o.due) for o in homes] == [("cancelled", dt("03-09")), ("open", dt("04-04"))]
    assert "h2" in homes[1].events and homes[0].met_by == "h2"


# ============================================================================ SS-7
# stopped at S = 03-02 10:00. effect/quality -> home visit with role expert or manager by the
# end of the next local day (03-04 00:00, exclusive); service -> role manager; competitor ->
# nothing.

S = t("03-02")


@pytest.mark.parametrize("reason", ["effect", "quality"])
@pytest.mark.parametrize("role", ["expert", "manager"])
def test_ss7_effect_or_quality_met_by_expert_or_manager(run: Any, reason: str, role: str) -> None:
    """SS-7: a visit with an expert or manager at 23:59:59 of the next day is in time."""
    d = run(
        stopped("s", S, reason),
        home("v", t("03-03", "23:59:59"), employee="M1", role=role),
        as_of=t("03-05"),
    )
    o = one(obls(d, "SS-7"))
    assert (o.status, o.met_by) == ("met", "v")
    assert (o.due, o.due_inclusive) == (dt("03-04", "00:00:00"), False)
    assert o.party == "after_sales"


@pytest.mark.parametrize("reason", ["effect", "quality", "service"])
def test_ss7_visit_at_second_midnight_is_late(run: Any, reason: str) -> None:
    """SS-7: 00:00 two days later is too late."""
    d = run(
        stopped("s", S, reason),
        home("v", t("03-04", "00:00:00"), employee="M1", role="manager"),
        as_of=t("03-05"),
    )
    assert (one(obls(d, "SS-7")).status, one(obls(d, "SS-7")).met_by) == ("late", "v")


@pytest.mark.parametrize(
    ("as_of", "status"), [(t("03-03", "23:59:59"), "open"), (t("03-04", "00:00:00"), "overdue")]
)
def test_ss7_open_then_overdue(run: Any, as_of: str, status: str) -> None:
    """SS-7: no visit: open through the next day, overdue at the second midnight."""
    d = run(stopped("s", S, "effect"), as_of=as_of)
    assert one(obls(d, "SS-7")).status == status


@pytest.mark.parametrize(
    ("reason", "visit"),
    [
        ("effect", home("v", t("03-03"))),  # specialist
        ("quality", home("v", t("03-03"), role="specialist")),
        ("effect", phone("v", t("03-03"), employee="X1", role="expert")),  # not a home visit
        ("service", home("v", t("03-03"), employee="X1", role="expert")),  # service: manager
        ("service", home("v", t("03-03"))),
        ("effect", home("v", t("03-03"), customer="C2", role="manager")),
    ],
)
def test_ss7_visit_without_the_right_role_does_not_count(
    run: Any, reason: str, visit: Event
) -> None:
    """SS-7: a specialist's visit, an expert's call, an expert for a service stop, or another
    customer's visit leaves the duty unmet."""
    d = run(stopped("s", S, reason), visit, as_of=t("03-04", "00:00:00"))
    o = one(obls(d, "SS-7"))
    assert (o.status, o.met_by) == ("overdue", None)


def test_ss7_service_stop_met_by_manager(run: Any) -> None:
    """SS-7: stopped for service reasons -> a home visit with the manager meets it; owner owes."""
    d = run(
        bought("p", t("03-01")),
        stopped("s", S, "service"),
        home("v", t("03-03"), employee="M1", role="manager"),
        as_of=t("03-05"),
    )
    o = one(obls(d, "SS-7"))
    assert (o.status, o.met_by, o.party) == ("met", "v", "S1")


def test_ss7_competitor_stop_owes_nothing(run: Any) -> None:
    """SS-7: stopped for a competitor -> no SS-7 duty."""
    d = run(stopped("s", S, "competitor"), as_of=t("03-10"))
    assert obls(d, "SS-7", subject=None) == []


# ============================================================================ SS-8
# The first purchase (03-02 10:00 by S1) owes a consolidation-meeting invitation within 15 days:
# due 03-17 10:00 inclusive.


@pytest.mark.parametrize(("at", "status"), [(t("03-17"), "met"), (t("03-17", "10:00:01"), "late")])
def test_ss8_invitation_edges(run: Any, at: str, status: str) -> None:
    """SS-8: invited exactly at T+15d is in time, one second later is late."""
    d = run(BUY, invited("i", at, "consolidation"), as_of=t("03-20"))
    o = one(obls(d, "SS-8"))
    assert (o.status, o.met_by) == (status, "i")
    assert (o.due, o.due_inclusive, o.party) == (dt("03-17"), True, "S1")


@pytest.mark.parametrize(
    ("as_of", "status"), [(t("03-17"), "open"), (t("03-17", "10:00:01"), "overdue")]
)
def test_ss8_open_then_overdue(run: Any, as_of: str, status: str) -> None:
    """SS-8: uninvited: open up to T+15d, overdue one second later."""
    d = run(BUY, as_of=as_of)
    assert one(obls(d, "SS-8")).status == status


@pytest.mark.parametrize(
    "wrong",
    [invited("i", t("03-05"), "maintenance"), invited("i", t("03-05"), "consolidation", "C2")],
)
def test_ss8_other_invitations_do_not_count(run: Any, wrong: Event) -> None:
    """SS-8: an invitation of another kind, or of another customer, is not it."""
    d = run(BUY, wrong, as_of=t("03-20"))
    assert one(obls(d, "SS-8")).status == "overdue"


def test_ss8_repurchase_owes_no_second_invitation(run: Any) -> None:
    """SS-8: only the first purchase makes a new member; a repurchase owes nothing new."""
    d = run(
        BUY,
        invited("i", t("03-04"), "consolidation"),
        bought("p2", t("03-10"), employee="S2"),
        as_of=t("04-30"),
    )
    o = one(obls(d, "SS-8"))
    assert (o.status, o.met_by, o.events) == ("met", "i", ["p"])


# ============================================================================ SS-9
# A sales meeting at M = 03-02 19:00 owes a post-sale meeting within 2 days (03-04 19:00
# inclusive). An employee seen (purchase, or meeting with employee) owes a personal maintenance
# meeting each calendar month; the duty is about the employee.

M = t("03-02", "19:00:00")


def post(d: Any) -> Any:
    return one(obls(d, "SS-9", subject=None, what="post-sale"))


def personal(d: Any, employee: str) -> list[Any]:
    return by_due(obls(d, "SS-9", subject=employee, what="personal"))


@pytest.mark.parametrize(
    ("at", "status"),
    [(t("03-04", "19:00:00"), "met"), (t("03-04", "19:00:01"), "late")],
)
def test_ss9_post_sale_meeting_edges(run: Any, at: str, status: str) -> None:
    """SS-9: a post-sale meeting exactly 2 days after the sales meeting is in time."""
    d = run(held("m", M, "sales"), held("q", at, "post_sale"), as_of=t("03-10"))
    o = post(d)
    assert (o.status, o.met_by) == (status, "q")
    assert (o.due, o.due_inclusive, o.party) == (dt("03-04", "19:00:00"), True, "department")


@pytest.mark.parametrize(
    ("as_of", "status"),
    [(t("03-04", "19:00:00"), "open"), (t("03-04", "19:00:01"), "overdue")],
)
def test_ss9_post_sale_open_then_overdue(run: Any, as_of: str, status: str) -> None:
    """SS-9: no post-sale meeting: open up to M+2d, overdue one second later."""
    d = run(held("m", M, "sales"), as_of=as_of)
    assert post(d).status == status


def test_ss9_post_sale_owed_by_the_sales_meeting_employee(run: Any) -> None:
    """SS-9: a sales meeting with an employee -> that employee owes the post-sale meeting."""
    d = run(held("m", M, "sales", employee="E1"), as_of=t("03-03"))
    assert post(d).party == "E1"


@pytest.mark.parametrize(
    "wrong",
    [
        held("q", t("03-02", "18:00:00"), "post_sale"),  # before the sales meeting
        held("q", t("03-03"), "personal"),
        held("q", t("03-03"), "maintenance"),
    ],
)
def test_ss9_other_meetings_are_not_post_sale(run: Any, wrong: Event) -> None:
    """SS-9: an earlier post-sale meeting or a meeting of another kind does not count."""
    d = run(held("m", M, "sales"), wrong, as_of=t("03-10"))
    assert post(d).status == "overdue"


def test_ss9_no_post_sale_duty_for_other_meetings(run: Any) -> None:
    """SS-9: only a sales meeting owes a post-sale meeting."""
    d = run(held("m", M, "maintenance"), held("n", M, "consolidation"), as_of=t("03-10"))
    assert obls(d, "SS-9", subject=None, what="post-sale") == []


def test_ss9_employee_seen_by_purchase_owes_monthly_personal_meeting(run: Any) -> None:
    """SS-9: S1's sale in March -> a personal meeting owed by S1 about S1, due 04-01 00:00."""
    d = run(BUY, bought("p2", t("03-05"), customer="C2"), as_of=t("03-20"))
    o = one(personal(d, "S1"))
    assert o.subject == "S1"
    assert o.party == "S1"
    assert (o.due, o.due_inclusive, o.status) == (dt("04-01", "00:00:00"), False, "open")
    assert o in d.obligations_of("S1")


@pytest.mark.parametrize(
    ("at", "march", "april"),
    [
        (t("03-31", "23:59:59"), ("met", "x"), ("open", None)),
        (t("04-01", "00:00:00"), ("overdue", None), ("met", "x")),
    ],
)
def test_ss9_personal_meeting_month_edges(
    run: Any, at: str, march: tuple[str, str | None], april: tuple[str, str | None]
) -> None:
    """SS-9: the month ends at the next 1st 00:00 (exclusive); then the meeting is April's."""
    d = run(BUY, held("x", at, "personal", employee="S1"), as_of=t("04-15"))
    m, a = personal(d, "S1")
    assert (m.status, m.met_by) == march
    assert (a.status, a.met_by) == april
    assert a.due == dt("05-01", "00:00:00")


def test_ss9_personal_meeting_of_another_employee_does_not_count(run: Any) -> None:
    """SS-9: S2's personal meeting is S2's, not S1's."""
    d = run(BUY, held("x", t("03-10"), "personal", employee="S2"), as_of=t("04-01", "00:00:00"))
    march, april = personal(d, "S1")
    assert (march.status, march.met_by) == ("overdue", None)
    assert april.status == "open"


def test_ss9_employee_seen_by_meeting_owes_personal_meeting(run: Any) -> None:
    """SS-9: an employee who held a sales meeting is seen too."""
    d = run(
        held("m", M, "sales", employee="E1"),
        held("x", t("03-20"), "personal", employee="E1"),
        as_of=t("03-25"),
    )
    o = one(personal(d, "E1"))
    assert (o.status, o.met_by, o.party) == ("met", "x", "E1")


def test_ss9_personal_meeting_as_first_sighting_counts_for_its_month(run: Any) -> None:
    """SS-9: an employee whose first appearance is their personal meeting held one that month."""
    d = run(held("x", t("03-10"), "personal", employee="E1"), as_of=t("04-15"))
    march, april = personal(d, "E1")
    assert (march.status, march.met_by) == ("met", "x")
    assert april.status == "open"


def test_ss9_one_personal_duty_per_employee_per_month(run: Any) -> None:
    """SS-9: several sales by S1 do not multiply the monthly duty; months accumulate."""
    d = run(
        BUY,
        bought("p2", t("03-05"), customer="C2"),
        held("m", t("03-06"), "sales", employee="S1"),
        held("x", t("03-20"), "personal", employee="S1"),
        held("y", t("05-02"), "personal", employee="S1"),
        as_of=t("05-15"),
    )
    assert [(o.status, o.met_by) for o in personal(d, "S1")] == [
        ("met", "x"),
        ("overdue", None),
        ("met", "y"),
    ]
