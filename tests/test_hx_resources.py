"""Scenario tests for policies/huixiao/resources.yaml: clauses HX-RM-1..9 and HX-RS-1..10.

Every expectation follows the reading table in policies/huixiao/README.md; the docstring of
each test names the clause row it exercises. Windows are tested on both edges (semantics.md):

* "within N days/months" is inclusive: an event exactly at the due instant is in time, one
  second later is late, and a lapse caused by the deadline is only visible after it;
* "the same day" ends at the next local (Asia/Shanghai) midnight, which is already late, so
  23:59:59 is in time and 00:00:00 of the next day is late.

All instants are 2026, +08:00. ``owned(...)`` builds a customer owned through the ordinary
path (registered, reported the same day, pre-heated within the window) so that the scenario
under test starts from a clean owner.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe

POLICY = Path(__file__).parents[1] / "policies" / "huixiao" / "resources.yaml"

Event = dict[str, Any]


# ---------------------------------------------------------------------------- helpers


def t(md: str, hms: str = "10:00:00") -> str:
    """A Shanghai-local instant in 2026: ``t("03-02")`` is 2026-03-02T10:00:00+08:00."""
    return f"2026-{md}T{hms}+08:00"


def dt(md: str, hms: str = "10:00:00") -> datetime:
    return datetime.fromisoformat(t(md, hms))


def ev(eid: str, etype: str, at: str, **fields: Any) -> Event:
    return {"id": eid, "type": etype, "at": at, **fields}


def reg(
    eid: str, at: str, customer: str, employee: str, channel: str = "list_call", **fields: Any
) -> Event:
    return ev(
        eid, "registered", at, customer=customer, employee=employee, channel=channel, **fields
    )


def pre(eid: str, at: str, customer: str, employee: str) -> Event:
    return ev(eid, "preheated", at, customer=customer, employee=employee)


def inv(eid: str, at: str, customer: str, employee: str) -> Event:
    return ev(eid, "invited", at, customer=customer, employee=employee)


def visit(eid: str, at: str, customer: str, employee: str) -> Event:
    return ev(eid, "home_visit", at, customer=customer, employee=employee)


def reported(eid: str, at: str, customer: str, employee: str) -> Event:
    return ev(eid, "resource_reported", at, customer=customer, employee=employee)


def assign(eid: str, at: str, customer: str, employee: str) -> Event:
    return ev(eid, "manager_assigned", at, customer=customer, employee=employee)


def bought(eid: str, at: str, customer: str, employee: str, boxes: int = 2) -> Event:
    return ev(eid, "purchased", at, customer=customer, employee=employee, boxes=boxes)


def resigned(eid: str, at: str, employee: str) -> Event:
    return ev(eid, "employee_resigned", at, employee=employee)


def handed_over(eid: str, at: str, employee: str) -> Event:
    return ev(eid, "resources_handed_over", at, employee=employee)


def dispute(eid: str, at: str, customer: str, employees: list[str], **fields: Any) -> Event:
    return ev(eid, "dispute", at, customer=customer, employees=employees, **fields)


def owned(prefix: str, customer: str, employee: str, md: str) -> list[Event]:
    """``employee`` owns ``customer`` from ``md`` 10:00 (HX-RM-2), cleanly.

    Registered (list_call) at 09:00, reported at 09:30 (HX-RM-1 met), pre-heated at 10:00
    (HX-RM-6 met). The pre-heat starts HX-RM-7's one-month follow-up window (due md+1 month
    10:00).
    """
    return [
        reg(f"{prefix}-reg", t(md, "09:00:00"), customer, employee),
        reported(f"{prefix}-rep", t(md, "09:30:00"), customer, employee),
        pre(f"{prefix}-pre", t(md), customer, employee),
    ]


def refs(obj: Any) -> list[str]:
    clause = obj.clause
    return [clause] if isinstance(clause, str) else list(clause)


def cites(obj: Any, clause_id: str) -> bool:
    """The entry names the clause both in ``clause`` and in ``clauses``."""
    return clause_id in refs(obj) and clause_id in obj.clauses


def span_at(decision: Any, customer: str, at: str | None = None) -> Any:
    spans = decision.ownership(customer)
    if at is None:
        return spans[-1] if spans and spans[-1].end is None else None
    when = datetime.fromisoformat(at)
    for span in reversed(spans):
        if span.start <= when and (span.end is None or when < span.end):
            return span
    return None


def assert_owned(
    decision: Any,
    customer: str,
    owner: str,
    clause: str,
    *,
    at: str | None = None,
    cause: str | None = None,
) -> None:
    """``owner`` owns ``customer`` (at ``at``, default as_of) by a span citing ``clause``."""
    assert decision.owner(customer, at=at) == owner
    span = span_at(decision, customer, at)
    assert span is not None and span.owner == owner, decision.ownership(customer)
    assert cites(span, clause), (span.rule, span.clause, span.clauses)
    if cause is not None:
        assert cause in span.events, (span.rule, span.events)


def pens(decision: Any, clause: str, party: str | None = None) -> list[Any]:
    return [
        p for p in decision.penalties if cites(p, clause) and (party is None or p.party == party)
    ]


def obls(
    decision: Any, clause: str, subject: str | None = None, cause: str | None = None
) -> list[Any]:
    return [
        o
        for o in decision.obligations
        if cites(o, clause)
        and (subject is None or o.subject == subject)
        and (cause is None or cause in o.events)
    ]


def one(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


def assert_fine(p: Any, party: str, low: str, high: str) -> None:
    assert p.party == party
    assert p.sanction == "fine"
    assert p.amount_min == Decimal(low)
    assert p.amount_max == Decimal(high)
    assert p.currency == "CNY"


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


# ============================================================================ HX-RM-1
# Each registration owes a resource_reported (same customer, same employee) by the end of the
# same local day; missed: 1st offence of that employee fine 20-100, 2nd and later dismissal.


def test_rm1_report_at_2359_is_in_time(run: Any) -> None:
    """HX-RM-1: reported at 23:59:59 the same day -> obligation met, no penalty."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        reported("e2", t("03-02", "23:59:59"), "C1", "A"),
        as_of=t("03-04"),
    )
    o = one(obls(d, "HX-RM-1", "C1"))
    assert o.status == "met"
    assert o.met_by == "e2"
    assert o.party == "A"
    assert o.due == dt("03-03", "00:00:00")
    assert o.due_inclusive is False
    assert pens(d, "HX-RM-1") == []


def test_rm1_report_at_midnight_is_late(run: Any) -> None:
    """HX-RM-1: the next local midnight is already late -> obligation late, first-offence fine."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        reported("e2", t("03-03", "00:00:00"), "C1", "A"),
        as_of=t("03-04"),
    )
    o = one(obls(d, "HX-RM-1", "C1"))
    assert o.status == "late"
    assert o.met_by == "e2"
    p = one(pens(d, "HX-RM-1"))
    assert_fine(p, "A", "20", "100")
    assert p.offence == 1
    assert p.subject == "C1"
    assert "e1" in p.events


def test_rm1_open_until_just_before_midnight(run: Any) -> None:
    """HX-RM-1: as of 23:59:59 the unreported registration is still open, nobody fined."""
    d = run(reg("e1", t("03-02"), "C1", "A"), as_of=t("03-02", "23:59:59"))
    assert one(obls(d, "HX-RM-1", "C1")).status == "open"
    assert pens(d, "HX-RM-1") == []


def test_rm1_overdue_at_midnight(run: Any) -> None:
    """HX-RM-1: as of next midnight exactly, the duty is overdue and the fine is due."""
    d = run(reg("e1", t("03-02"), "C1", "A"), as_of=t("03-03", "00:00:00"))
    assert one(obls(d, "HX-RM-1", "C1")).status == "overdue"
    assert_fine(one(pens(d, "HX-RM-1")), "A", "20", "100")


@pytest.mark.parametrize(("customer", "employee"), [("C1", "B"), ("C2", "A")])
def test_rm1_report_must_name_same_customer_and_employee(
    run: Any, customer: str, employee: str
) -> None:
    """HX-RM-1: only a report of the same customer by the same employee meets the duty."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        reported("e2", t("03-02", "12:00:00"), customer, employee),
        as_of=t("03-04"),
    )
    assert one(obls(d, "HX-RM-1", "C1")).status == "overdue"
    assert_fine(one(pens(d, "HX-RM-1", "A")), "A", "20", "100")


def test_rm1_same_day_is_the_shanghai_local_day(run: Any) -> None:
    """HX-RM-1: 17:00Z on 03-02 is 01:00 on 03-03 in Shanghai; the day ends 03-04 00:00+08."""
    d = run(
        reg("e1", "2026-03-02T17:00:00+00:00", "C1", "A"),
        reported("e2", t("03-03", "23:59:59"), "C1", "A"),
        as_of=t("03-05"),
    )
    o = one(obls(d, "HX-RM-1", "C1"))
    assert o.due == dt("03-04", "00:00:00")
    assert o.status == "met"
    assert pens(d, "HX-RM-1") == []


def test_rm1_registration_at_midnight_has_the_whole_day(run: Any) -> None:
    """HX-RM-1: registered at 00:00:00 -> due at the following midnight; 23:59:59 is in time."""
    d = run(
        reg("e1", t("03-03", "00:00:00"), "C1", "A"),
        reported("e2", t("03-03", "23:59:59"), "C1", "A"),
        as_of=t("03-05"),
    )
    o = one(obls(d, "HX-RM-1", "C1"))
    assert o.due == dt("03-04", "00:00:00")
    assert o.status == "met"


def test_rm1_second_and_later_offences_dismiss(run: Any) -> None:
    """HX-RM-1: the ladder - 1st unreported registration a fine, 2nd and 3rd dismissal."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        reg("e2", t("03-05"), "C2", "A"),
        reg("e3", t("03-07"), "C3", "A"),
        as_of=t("03-09"),
    )
    got = sorted(pens(d, "HX-RM-1", "A"), key=lambda p: p.offence)
    assert [p.offence for p in got] == [1, 2, 3]
    assert [p.sanction for p in got] == ["fine", "dismissal", "dismissal"]
    assert [p.subject for p in got] == ["C1", "C2", "C3"]
    assert_fine(got[0], "A", "20", "100")


def test_rm1_ladder_counts_per_employee(run: Any) -> None:
    """HX-RM-1: B's first offence is a fine even after A has already been dismissed."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        reg("e2", t("03-03"), "C2", "A"),
        reg("e3", t("03-04"), "C3", "B"),
        as_of=t("03-06"),
    )
    a = sorted(pens(d, "HX-RM-1", "A"), key=lambda p: p.offence)
    assert [p.sanction for p in a] == ["fine", "dismissal"]
    b = one(pens(d, "HX-RM-1", "B"))
    assert_fine(b, "B", "20", "100")
    assert b.offence == 1
    assert b.subject == "C3"


def test_rm1_reported_registrations_are_not_offences(run: Any) -> None:
    """HX-RM-1: a registration reported in time does not count on the ladder."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        reported("e2", t("03-02", "18:00:00"), "C1", "A"),
        reg("e3", t("03-03"), "C2", "A"),
        as_of=t("03-05"),
    )
    p = one(pens(d, "HX-RM-1", "A"))
    assert p.sanction == "fine"
    assert p.offence == 1
    assert p.subject == "C2"


# ============================================================================ HX-RM-2
# The first pre-heat by an employee holding an open claim, while nobody owns, makes the owner.


def test_rm2_first_preheat_among_claimants_owns(run: Any) -> None:
    """HX-RM-2: A and B both registered; B pre-heats first and owns; A's later pre-heat is moot."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        reg("e2", t("03-02", "11:00:00"), "C1", "B"),
        pre("e3", t("03-03"), "C1", "B"),
        pre("e4", t("03-03", "11:00:00"), "C1", "A"),
    )
    assert d.owner("C1", at=t("03-03", "09:59:59")) is None
    assert_owned(d, "C1", "B", "HX-RM-2", at=t("03-03"), cause="e3")
    assert_owned(d, "C1", "B", "HX-RM-2", cause="e3")
    assert len(d.ownership("C1")) == 1


def test_rm2_preheat_without_claim_does_nothing(run: Any) -> None:
    """HX-RM-2: X never registered the customer, so X's pre-heat makes no owner."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        pre("e2", t("03-02", "12:00:00"), "C1", "X"),
        pre("e3", t("03-02", "13:00:00"), "C1", "A"),
    )
    assert d.owner("C1", at=t("03-02", "12:30:00")) is None
    assert_owned(d, "C1", "A", "HX-RM-2", cause="e3")


def test_rm2_claim_still_open_at_window_end(run: Any) -> None:
    """HX-RM-2/RM-6: a pre-heat exactly 2 days after the registration still wins the race."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        reg("e2", t("03-03"), "C1", "B"),
        pre("e3", t("03-04", "10:00:00"), "C1", "A"),
        pre("e4", t("03-04", "12:00:00"), "C1", "B"),
    )
    assert_owned(d, "C1", "A", "HX-RM-2", cause="e3")


def test_rm2_lapsed_claim_loses_the_race(run: Any) -> None:
    """HX-RM-2/RM-6: one second late, A's claim has lapsed; B (still open) wins its pre-heat."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        reg("e2", t("03-03"), "C1", "B"),
        pre("e3", t("03-04", "10:00:01"), "C1", "A"),
        pre("e4", t("03-04", "12:00:00"), "C1", "B"),
    )
    assert d.owner("C1", at=t("03-04", "10:00:01")) is None
    assert_owned(d, "C1", "B", "HX-RM-2", cause="e4")


@pytest.mark.parametrize(("first", "second"), [("A", "B"), ("B", "A")])
def test_rm2_same_instant_preheats_keep_input_order(run: Any, first: str, second: str) -> None:
    """HX-RM-2 + semantics.md `Order`: equal timestamps keep their input order, so the
    pre-heat listed first is the first pre-heat."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        reg("e2", t("03-02", "11:00:00"), "C1", "B"),
        pre("e3", t("03-03"), "C1", first),
        pre("e4", t("03-03"), "C1", second),
    )
    assert_owned(d, "C1", first, "HX-RM-2", cause="e3")


def test_rm2_history_is_evaluated_in_timestamp_order(run: Any) -> None:
    """HX-RM-2 + semantics.md `Order`: input order does not matter across timestamps."""
    events = [
        reg("e1", t("03-02"), "C1", "A"),
        reg("e2", t("03-02", "11:00:00"), "C1", "B"),
        pre("e3", t("03-03"), "C1", "B"),
        pre("e4", t("03-03", "11:00:00"), "C1", "A"),
    ]
    d = run(list(reversed(events)))
    assert_owned(d, "C1", "B", "HX-RM-2", cause="e3")


# ============================================================================ HX-RM-3
# Two or more open claimants, nobody ever pre-heated, one claimant invites: company pool.


def _two_claims() -> list[Event]:
    return [reg("e1", t("03-02"), "C1", "A"), reg("e2", t("03-02", "11:00:00"), "C1", "B")]


def test_rm3_invite_without_preheat_goes_to_company(run: Any) -> None:
    """HX-RM-3: A invites directly while B also holds a claim -> owner `company`."""
    d = run(_two_claims(), inv("e3", t("03-03"), "C1", "A"))
    assert d.owner("C1", at=t("03-03", "09:59:59")) is None
    assert_owned(d, "C1", "company", "HX-RM-3", cause="e3")


def test_rm3_manager_assignment_names_new_owner(run: Any) -> None:
    """HX-RM-3: after the pool, a manager_assigned names the new owner."""
    d = run(_two_claims(), inv("e3", t("03-03"), "C1", "A"), assign("e4", t("03-05"), "C1", "D"))
    assert d.owner("C1", at=t("03-04")) == "company"
    assert d.owner("C1") == "D"
    span = span_at(d, "C1")
    assert "e4" in span.events


def test_rm3_manager_assignment_span_cites_rm3(run: Any) -> None:
    """HX-RM-3: the README puts `any manager_assigned sets the owner` in the RM-3 row."""
    d = run(_two_claims(), inv("e3", t("03-03"), "C1", "A"), assign("e4", t("03-05"), "C1", "D"))
    assert_owned(d, "C1", "D", "HX-RM-3", cause="e4")


def test_rm3_claimant_preheat_does_not_take_pool_back(run: Any) -> None:
    """HX-RM-3 (and RM-2 needs no owner): B's pre-heat leaves the customer with the company.

    This is not a store customer, so no HX-RS-10 fine either.
    """
    d = run(
        _two_claims(),
        inv("e3", t("03-03"), "C1", "A"),
        pre("e4", t("03-03", "12:00:00"), "C1", "B"),
    )
    assert_owned(d, "C1", "company", "HX-RM-3", cause="e3")
    assert pens(d, "HX-RS-10") == []


def test_rm3_needs_two_open_claimants(run: Any) -> None:
    """HX-RM-3: a sole claimant's direct invite is not a dispute; nobody owns."""
    d = run(reg("e1", t("03-02"), "C1", "A"), inv("e2", t("03-03"), "C1", "A"))
    assert d.owner("C1") is None
    assert d.ownership("C1") == []


def test_rm3_inviter_must_be_a_claimant(run: Any) -> None:
    """HX-RM-3: the invite must come from one of the open claimants."""
    d = run(_two_claims(), inv("e3", t("03-03"), "C1", "X"))
    assert d.owner("C1") is None


def test_rm3_any_earlier_preheat_blocks_the_pool(run: Any) -> None:
    """HX-RM-3: `no preheated of the customer ever` - even X's ineffective pre-heat counts."""
    d = run(
        _two_claims(),
        pre("e3", t("03-02", "12:00:00"), "C1", "X"),
        inv("e4", t("03-03"), "C1", "A"),
    )
    assert d.owner("C1") is None


@pytest.mark.parametrize(("hms", "expected"), [("10:00:00", "company"), ("10:00:01", None)])
def test_rm3_inviter_claim_must_still_be_open(run: Any, hms: str, expected: str | None) -> None:
    """HX-RM-3 x RM-6: A's claim is open until exactly +2 days; one second later A is no
    longer an open claimant (only B is), so the invite makes no pool."""
    d = run(_two_claims(), inv("e3", t("03-04", hms), "C1", "A"))
    assert d.owner("C1", at=t("03-04", hms)) == expected


# ============================================================================ HX-RM-4
# Registrations via spouse/child/relative are claims like any other.


@pytest.mark.parametrize("via", ["spouse", "child", "relative"])
def test_rm4_family_registration_is_an_ordinary_claim(run: Any, via: str) -> None:
    """HX-RM-4: a family registration competes under RM-2; first pre-heater owns."""
    d = run(
        reg("e1", t("03-02"), "C1", "A", via=via),
        reg("e2", t("03-02", "11:00:00"), "C1", "B", via="child"),
        pre("e3", t("03-03"), "C1", "A"),
        pre("e4", t("03-03", "11:00:00"), "C1", "B"),
    )
    assert d.owner("C1") == "A"
    span = span_at(d, "C1")
    assert "e3" in span.events
    assert {"HX-RM-2", "HX-RM-4"} & set(span.clauses)


@pytest.mark.parametrize(("hms", "expected"), [("10:00:00", "A"), ("10:00:01", None)])
def test_rm4_family_claim_has_the_2_day_window(run: Any, hms: str, expected: str | None) -> None:
    """HX-RM-4 x RM-6: a spouse registration lapses exactly like a self registration."""
    d = run(reg("e1", t("03-02"), "C1", "A", via="spouse"), pre("e2", t("03-04", hms), "C1", "A"))
    assert d.owner("C1") == expected


def test_rm4_is_cited_for_a_family_registration(run: Any) -> None:
    """HX-RM-4 is encode: required; the claim a family registration makes must cite it."""
    d = run(reg("e1", t("03-02"), "C1", "A", via="spouse"))
    assert any("e1" in e.events and "HX-RM-4" in e.clauses for e in d.trace)


# ============================================================================ HX-RM-5
# A registration referred_by old customer X goes at once to X's owner at that instant (if an
# employee); after an unclear referral, the next registration's employee owns at once.


def test_rm5_referral_goes_to_old_customers_owner(run: Any) -> None:
    """HX-RM-5: B registers C1 referred by X, whom A owns -> A owns C1 at once."""
    d = run(
        owned("x", "X", "A", "03-01"), reg("e1", t("03-05"), "C1", "B", "referral", referred_by="X")
    )
    assert d.owner("C1", at=t("03-05", "09:59:59")) is None
    assert_owned(d, "C1", "A", "HX-RM-5", at=t("03-05"), cause="e1")


def test_rm5_owner_is_taken_at_the_referral_instant(run: Any) -> None:
    """HX-RM-5: X was reassigned to D before the referral, so D (not A) gets C1."""
    d = run(
        owned("x", "X", "A", "03-01"),
        assign("e1", t("03-04"), "X", "D"),
        reg("e2", t("03-05"), "C1", "B", "referral", referred_by="X"),
    )
    assert_owned(d, "C1", "D", "HX-RM-5", cause="e2")


def test_rm5_later_change_of_old_customers_owner_does_not_move(run: Any) -> None:
    """HX-RM-5: `at the time of the referral` - X's later reassignment leaves C1 with A."""
    d = run(
        owned("x", "X", "A", "03-01"),
        reg("e1", t("03-05"), "C1", "B", "referral", referred_by="X"),
        assign("e2", t("03-06"), "X", "D"),
    )
    assert d.owner("X") == "D"
    assert_owned(d, "C1", "A", "HX-RM-5", cause="e1")


def test_rm5_referral_does_not_reassign_an_owned_customer(run: Any) -> None:
    """HX-RM-5 (README): a referral makes ownership *start*; a customer D already owns is not
    re-assigned to the referring old customer's specialist A by a later referral."""
    d = run(
        owned("x", "X", "A", "03-01"),
        owned("d", "C1", "D", "03-03"),
        reg("e1", t("03-05"), "C1", "B", "referral", referred_by="X"),
    )
    assert d.owner("C1", at=t("03-04")) == "D"
    assert_owned(d, "C1", "D", "HX-RM-2")


@pytest.mark.parametrize("setup", ["unknown", "company"])
def test_rm5_old_customer_without_employee_owner(run: Any, setup: str) -> None:
    """HX-RM-5: only an employee owner of X takes C1; unowned or pooled X gives no owner."""
    history: list[Event] = []
    if setup == "company":
        history.append(reg("e0", t("03-01"), "X", "A", "store"))
    history.append(reg("e1", t("03-05"), "C1", "B", "referral", referred_by="X"))
    d = run(history)
    if setup == "company":
        assert d.owner("X") == "company"
    assert d.owner("C1") is None


@pytest.mark.parametrize("channel", ["list_call", "scattered", "community"])
def test_rm5_unclear_referral_then_new_registration_owns(run: Any, channel: str) -> None:
    """HX-RM-5: a referral naming no old customer, then D registers -> D owns at once."""
    d = run(reg("e1", t("03-02"), "C1", "B", "referral"), reg("e2", t("03-03"), "C1", "D", channel))
    assert d.owner("C1", at=t("03-03", "09:59:59")) is None
    assert_owned(d, "C1", "D", "HX-RM-5", at=t("03-03"), cause="e2")


def test_rm5_unclear_referral_already_owned_stays(run: Any) -> None:
    """HX-RM-5: the re-registration rule needs `no owner yet`; B pre-heated and keeps C1."""
    d = run(
        reg("e1", t("03-02"), "C1", "B", "referral"),
        pre("e2", t("03-02", "11:00:00"), "C1", "B"),
        reg("e3", t("03-03"), "C1", "D"),
    )
    assert_owned(d, "C1", "B", "HX-RM-2", cause="e2")


def test_rm5_unclear_rule_needs_a_referral_registration(run: Any) -> None:
    """HX-RM-5: after an ordinary list_call registration a second one is just another claim."""
    d = run(reg("e1", t("03-02"), "C1", "B"), reg("e2", t("03-03"), "C1", "D", "scattered"))
    assert d.owner("C1") is None


# ============================================================================ HX-RM-6
# Each registration owes a pre-heat by the same employee within 2 days (inclusive). Missed:
# the claim lapses; with no owner and no other open claim the customer is open to anyone.


def test_rm6_preheat_at_exactly_2_days_is_in_time(run: Any) -> None:
    """HX-RM-6: pre-heat at registration + 2 days -> owner, obligation met."""
    d = run(reg("e1", t("03-02"), "C1", "A"), pre("e2", t("03-04"), "C1", "A"), as_of=t("03-06"))
    assert_owned(d, "C1", "A", "HX-RM-2", cause="e2")
    o = one(obls(d, "HX-RM-6", "C1", cause="e1"))
    assert o.status == "met"
    assert o.met_by == "e2"
    assert o.party == "A"
    assert o.due == dt("03-04")
    assert o.due_inclusive is True


def test_rm6_preheat_one_second_late_lapses(run: Any) -> None:
    """HX-RM-6: pre-heat at +2 days +1 s -> claim lapsed, no owner, obligation late."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        pre("e2", t("03-04", "10:00:01"), "C1", "A"),
        as_of=t("03-06"),
    )
    assert d.owner("C1") is None
    o = one(obls(d, "HX-RM-6", "C1", cause="e1"))
    assert o.status == "late"
    assert o.met_by == "e2"


@pytest.mark.parametrize(
    ("at", "expected"), [("2026-03-04T02:00:00+00:00", "A"), ("2026-03-04T02:00:01+00:00", None)]
)
def test_rm6_deadline_is_an_instant_whatever_the_offset(
    run: Any, at: str, expected: str | None
) -> None:
    """HX-RM-6: 02:00Z is 10:00+08 - exactly +2 days, in time; one second later, lapsed."""
    d = run(reg("e1", t("03-02"), "C1", "A"), pre("e2", at, "C1", "A"))
    assert d.owner("C1") == expected


@pytest.mark.parametrize(("hms", "expected"), [("10:00:00", "A"), ("10:00:01", None)])
def test_rm6_window_across_month_end(run: Any, hms: str, expected: str | None) -> None:
    """HX-RM-6: 2026-02-27 10:00 + 2 calendar days = 2026-03-01 10:00 (no 02-29 in 2026)."""
    d = run(reg("e1", t("02-27"), "C1", "A"), pre("e2", t("03-01", hms), "C1", "A"))
    assert d.owner("C1") == expected


@pytest.mark.parametrize(
    ("as_of", "status"), [(t("03-04"), "open"), (t("03-04", "10:00:01"), "overdue")]
)
def test_rm6_obligation_status_at_the_edge(run: Any, as_of: str, status: str) -> None:
    """HX-RM-6: as of the due instant the duty is still open; a second later it is overdue."""
    d = run(reg("e1", t("03-02"), "C1", "A"), as_of=as_of)
    assert one(obls(d, "HX-RM-6", "C1", cause="e1")).status == status


@pytest.mark.parametrize("make", [reg, pre, inv], ids=["registered", "preheated", "invited"])
def test_rm6_lapsed_customer_open_to_anyone(run: Any, make: Any) -> None:
    """HX-RM-6: after A's lapse (no other claim), B's registration/pre-heat/invite owns."""
    d = run(reg("e1", t("03-02"), "C1", "A"), make("e2", t("03-05"), "C1", "B"))
    assert d.owner("C1", at=t("03-04", "23:00:00")) is None
    assert_owned(d, "C1", "B", "HX-RM-6", cause="e2")


@pytest.mark.parametrize("make", [reg, pre, inv], ids=["registered", "preheated", "invited"])
def test_rm6_taking_at_the_deadline_instant_is_too_early(run: Any, make: Any) -> None:
    """HX-RM-6: at exactly +2 days A's claim has not lapsed yet; B takes nothing."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        make("e2", t("03-04"), "C1", "B"),
        as_of=t("03-04", "12:00:00"),
    )
    assert d.owner("C1") is None


def test_rm6_lapsed_employee_cannot_take_back(run: Any) -> None:
    """HX-RM-6: `by an employee whose claim did not lapse` - A's late pre-heat/invite fail."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        pre("e2", t("03-05"), "C1", "A"),
        inv("e3", t("03-06"), "C1", "A"),
    )
    assert d.owner("C1") is None


def test_rm6_other_open_claim_keeps_customer_closed(run: Any) -> None:
    """HX-RM-6: A lapsed but B's claim is open -> not open to anyone; X's pre-heat does
    nothing; B's own pre-heat then wins under RM-2."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        reg("e2", t("03-03"), "C1", "B"),
        pre("e3", t("03-04", "12:00:00"), "C1", "X"),
        pre("e4", t("03-04", "13:00:00"), "C1", "B"),
    )
    assert d.owner("C1", at=t("03-04", "12:30:00")) is None
    assert_owned(d, "C1", "B", "HX-RM-2", cause="e4")


@pytest.mark.parametrize(("hms", "expected"), [("10:00:00", "A"), ("10:00:01", "B")])
def test_rm6_lapse_of_the_owners_own_registration(run: Any, hms: str, expected: str) -> None:
    """HX-RM-6 `(or the lapsed employee was the owner)`: A owns C1, registers it again and
    does not pre-heat within 2 days -> from +2 days +1 s B's invite takes the customer."""
    d = run(
        owned("a", "C1", "A", "03-02"),
        inv("a-inv", t("03-05"), "C1", "A"),
        reg("e1", t("03-10"), "C1", "A"),
        reported("e2", t("03-10", "11:00:00"), "C1", "A"),
        inv("e3", t("03-12", hms), "C1", "B"),
    )
    assert d.owner("C1") == expected
    if expected == "B":
        assert_owned(d, "C1", "B", "HX-RM-6", cause="e3")


# ============================================================================ HX-RS-2/3/4
# feedback (RS-2), scattered (RS-3), referral (RS-4): 3-day window overriding RM-6's 2 days;
# after the lapse only a second registration by another employee via the listed channels owns.

RS_CLAUSE = {"feedback": "HX-RS-2", "scattered": "HX-RS-3", "referral": "HX-RS-4"}
RS_CHANNELS = list(RS_CLAUSE)
RS_SECOND = {
    "feedback": ["scattered", "feedback", "community"],
    "scattered": ["scattered", "feedback", "community"],
    "referral": ["scattered", "feedback", "community", "referral"],
}


def rs_reg(eid: str, at: str, customer: str, employee: str, channel: str) -> Event:
    """A registration; referral ones name an unowned old customer X9 so that HX-RM-5 (owner
    of X9 / unclear referral) stays out of the picture."""
    extra = {"referred_by": "X9"} if channel == "referral" else {}
    return reg(eid, at, customer, employee, channel, **extra)


@pytest.mark.parametrize("channel", RS_CHANNELS)
def test_rs_window_preheat_at_day_2_5_still_owns(run: Any, channel: str) -> None:
    """HX-RS-2/3/4 override HX-RM-6: at +2 days +1 s the customer is NOT open to anyone
    (X's registration takes nothing), and A's pre-heat at day 2.5 still owns."""
    d = run(
        rs_reg("e1", t("03-02"), "C1", "A", channel),
        reg("e2", t("03-04", "10:00:01"), "C1", "X"),
        pre("e3", t("03-04", "22:00:00"), "C1", "A"),
    )
    assert d.owner("C1", at=t("03-04", "12:00:00")) is None
    assert_owned(d, "C1", "A", "HX-RM-2", cause="e3")


@pytest.mark.parametrize("channel", RS_CHANNELS)
def test_rs_window_replaces_the_rm6_two_day_obligation(run: Any, channel: str) -> None:
    """HX-RS-2/3/4 override HX-RM-6: no RM-6 pre-heat duty due at +2 days, nothing overdue."""
    d = run(
        rs_reg("e1", t("03-02"), "C1", "A", channel), pre("e2", t("03-04", "22:00:00"), "C1", "A")
    )
    two_day = [o for o in obls(d, "HX-RM-6", "C1", cause="e1") if o.due == dt("03-04")]
    assert two_day == []
    assert all(o.status != "late" for o in obls(d, "HX-RM-6", "C1"))


@pytest.mark.parametrize("channel", RS_CHANNELS)
def test_rs_window_preheat_at_exactly_3_days(run: Any, channel: str) -> None:
    """HX-RS-2/3/4: a pre-heat at registration + 3 days is in time."""
    d = run(rs_reg("e1", t("03-02"), "C1", "A", channel), pre("e2", t("03-05"), "C1", "A"))
    assert_owned(d, "C1", "A", "HX-RM-2", cause="e2")


@pytest.mark.parametrize("channel", RS_CHANNELS)
def test_rs_window_preheat_one_second_late(run: Any, channel: str) -> None:
    """HX-RS-2/3/4: a pre-heat at +3 days +1 s finds a lapsed claim; nobody owns."""
    d = run(
        rs_reg("e1", t("03-02"), "C1", "A", channel), pre("e2", t("03-05", "10:00:01"), "C1", "A")
    )
    assert d.owner("C1") is None


@pytest.mark.parametrize(("first", "second"), [(f, s) for f in RS_CHANNELS for s in RS_SECOND[f]])
def test_rs_second_registration_after_lapse_owns(run: Any, first: str, second: str) -> None:
    """HX-RS-2/3/4: after the 3-day lapse, B's second registration via a listed channel owns
    at once, citing the clause of the first registration's channel."""
    d = run(
        rs_reg("e1", t("03-02"), "C1", "A", first),
        rs_reg("e2", t("03-05", "10:00:01"), "C1", "B", second),
    )
    assert_owned(d, "C1", "B", RS_CLAUSE[first], at=t("03-05", "10:00:01"), cause="e2")


@pytest.mark.parametrize("channel", RS_CHANNELS)
def test_rs_second_registration_at_the_deadline_is_too_early(run: Any, channel: str) -> None:
    """HX-RS-2/3/4: at exactly +3 days A's claim is still open; B's registration is only a
    claim, and A's later lapse does not turn it into ownership."""
    d = run(
        rs_reg("e1", t("03-02"), "C1", "A", channel),
        reg("e2", t("03-05"), "C1", "B", "community"),
        as_of=t("03-05", "12:00:00"),
    )
    assert d.owner("C1") is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("feedback", "referral"),
        ("scattered", "referral"),
        ("feedback", "list_call"),
        ("scattered", "list_call"),
        ("referral", "list_call"),
    ],
)
def test_rs_second_registration_via_unlisted_channel(run: Any, first: str, second: str) -> None:
    """HX-RS-2/3/4: RS-2/RS-3 do not list referral; none lists list_call -> no owner."""
    d = run(
        rs_reg("e1", t("03-02"), "C1", "A", first),
        rs_reg("e2", t("03-05", "10:00:01"), "C1", "B", second),
    )
    assert d.owner("C1") is None


@pytest.mark.parametrize("make", [pre, inv], ids=["preheated", "invited"])
@pytest.mark.parametrize("channel", RS_CHANNELS)
def test_rs_lapsed_customer_not_taken_by_preheat_or_invite(
    run: Any, channel: str, make: Any
) -> None:
    """HX-RS-2/3/4: `Pre-heats and invites by others do not take such a customer`."""
    d = run(
        rs_reg("e1", t("03-02"), "C1", "A", channel), make("e2", t("03-05", "12:00:00"), "C1", "B")
    )
    assert d.owner("C1") is None


# ============================================================================ HX-RM-7
# Each pre-heat owes an invite or home visit by the same employee within 1 month; missed while
# that employee owns: an invite by another employee who pre-heated in the last month takes.


@pytest.mark.parametrize("make", [inv, visit], ids=["invited", "home_visit"])
def test_rm7_follow_up_at_exactly_one_month_keeps_owner(run: Any, make: Any) -> None:
    """HX-RM-7: A's invite/home visit at pre-heat + 1 month is in time; B cannot take."""
    d = run(
        owned("a", "C1", "A", "03-02"),
        make("e1", t("04-02"), "C1", "A"),
        pre("e2", t("04-03"), "C1", "B"),
        inv("e3", t("04-04"), "C1", "B"),
    )
    assert_owned(d, "C1", "A", "HX-RM-2", cause="a-pre")


def test_rm7_missed_follow_up_other_preheater_invites_and_owns(run: Any) -> None:
    """HX-RM-7: no follow-up by 04-02 10:00; B pre-heated on 03-20 and invites 1 s later."""
    d = run(
        owned("a", "C1", "A", "03-02"),
        pre("e1", t("03-20"), "C1", "B"),
        inv("e2", t("04-02", "10:00:01"), "C1", "B"),
    )
    assert d.owner("C1", at=t("04-02")) == "A"
    assert_owned(d, "C1", "B", "HX-RM-7", cause="e2")


def test_rm7_invite_at_the_deadline_instant_is_too_early(run: Any) -> None:
    """HX-RM-7: at exactly +1 month the window is still running; B's invite takes nothing."""
    d = run(
        owned("a", "C1", "A", "03-02"),
        pre("e1", t("03-20"), "C1", "B"),
        inv("e2", t("04-02"), "C1", "B"),
    )
    assert d.owner("C1") == "A"


def test_rm7_inviter_must_have_preheated(run: Any) -> None:
    """HX-RM-7: B never pre-heated the customer, so B's invite after the lapse takes nothing."""
    d = run(owned("a", "C1", "A", "03-02"), inv("e1", t("04-03"), "C1", "B"))
    assert d.owner("C1") == "A"


@pytest.mark.parametrize(("hms", "expected"), [("10:00:00", "B"), ("09:59:59", "A")])
def test_rm7_inviters_preheat_within_the_last_month(run: Any, hms: str, expected: str) -> None:
    """HX-RM-7: B's pre-heat exactly one month before the invite is `within the last month`
    (inclusive, as semantics.md reads `within`); one second earlier it is not."""
    d = run(
        owned("a", "C1", "A", "03-02"),
        pre("e1", t("03-05", hms), "C1", "B"),
        inv("e2", t("04-05"), "C1", "B"),
    )
    assert d.owner("C1") == expected


@pytest.mark.parametrize(("hms", "expected"), [("10:00:00", "A"), ("10:00:01", "B")])
def test_rm7_one_month_after_jan_31_is_feb_28(run: Any, hms: str, expected: str) -> None:
    """HX-RM-7 + semantics.md: 31 Jan + 1 month = 28 Feb; B's invite at 02-28 10:00 is
    still inside A's window, one second later it takes the customer."""
    d = run(
        owned("a", "C1", "A", "01-31"),
        pre("e1", t("02-10"), "C1", "B"),
        inv("e2", t("02-28", hms), "C1", "B"),
    )
    assert d.owner("C1") == expected


# ============================================================================ HX-RM-8
# Meeting attended by an owned customer: the owner owes a home visit within 1 month; a purchase
# in that month cancels; missed: the next invite by another employee takes.


def _met_at_meeting() -> list[Event]:
    """A owns C1 (03-02), follows up on 03-05 (RM-7 met), C1 attends a meeting 03-10 10:00."""
    return [
        *owned("a", "C1", "A", "03-02"),
        inv("a-inv", t("03-05"), "C1", "A"),
        ev("m1", "meeting_attended", t("03-10"), customer="C1"),
    ]


def test_rm8_home_visit_at_exactly_one_month_keeps_owner(run: Any) -> None:
    """HX-RM-8: A's home visit at meeting + 1 month is in time; B's later invite takes nothing."""
    d = run(_met_at_meeting(), visit("e1", t("04-10"), "C1", "A"), inv("e2", t("04-11"), "C1", "B"))
    assert d.owner("C1") == "A"


def test_rm8_missed_next_invite_by_other_owns(run: Any) -> None:
    """HX-RM-8: no home visit; B's invite at +1 month +1 s takes the customer."""
    d = run(_met_at_meeting(), inv("e1", t("04-10", "10:00:01"), "C1", "B"))
    assert d.owner("C1", at=t("04-10")) == "A"
    assert_owned(d, "C1", "B", "HX-RM-8", cause="e1")


def test_rm8_invite_at_the_deadline_instant_is_too_early(run: Any) -> None:
    """HX-RM-8: at exactly +1 month A's window is still open."""
    d = run(_met_at_meeting(), inv("e1", t("04-10"), "C1", "B"))
    assert d.owner("C1") == "A"


def test_rm8_purchase_within_the_month_cancels_the_duty(run: Any) -> None:
    """HX-RM-8: C1 bought on 03-20, so no home-visit duty; B's invite on 04-11 takes nothing."""
    d = run(
        _met_at_meeting(), bought("e1", t("03-20"), "C1", "A"), inv("e2", t("04-11"), "C1", "B")
    )
    assert d.owner("C1") == "A"


def test_rm8_home_visit_by_someone_else_does_not_count(run: Any) -> None:
    """HX-RM-8: only the owner's home visit meets the duty; D's invite after the month owns."""
    d = run(_met_at_meeting(), visit("e1", t("03-20"), "C1", "B"), inv("e2", t("04-11"), "C1", "D"))
    assert_owned(d, "C1", "D", "HX-RM-8", cause="e2")


# ============================================================================ HX-RM-9
# dispute: 200 CNY on each employee named; severe: dismissal of each instead.


@pytest.mark.parametrize("extra", [{}, {"severe": False}], ids=["plain", "severe-false"])
def test_rm9_dispute_fines_each_party_200(run: Any, extra: dict[str, Any]) -> None:
    """HX-RM-9: each employee in the dispute is fined 200 CNY; ownership does not move."""
    d = run(owned("a", "C1", "A", "03-02"), dispute("e1", t("03-05"), "C1", ["A", "B"], **extra))
    got = pens(d, "HX-RM-9")
    assert sorted(p.party for p in got) == ["A", "B"]
    for p in got:
        assert_fine(p, p.party, "200", "200")
        assert p.clause == "HX-RM-9"
        assert p.subject == "C1"
        assert "e1" in p.events
    assert d.owner("C1") == "A"


def test_rm9_severe_dispute_dismisses_instead_of_fining(run: Any) -> None:
    """HX-RM-9: severe: true overrides the fine with dismissal of each employee."""
    d = run(dispute("e1", t("03-05"), "C1", ["A", "B"], severe=True))
    got = pens(d, "HX-RM-9")
    assert sorted(p.party for p in got) == ["A", "B"]
    assert {p.sanction for p in got} == {"dismissal"}
    assert all("e1" in p.events for p in got)


def test_rm9_every_named_employee_is_a_party(run: Any) -> None:
    """HX-RM-9: three employees in the dispute -> three fines."""
    d = run(dispute("e1", t("03-05"), "C1", ["A", "B", "D"]))
    assert sorted(p.party for p in pens(d, "HX-RM-9")) == ["A", "B", "D"]


def test_rm9_repeated_dispute_is_fined_again_not_escalated(run: Any) -> None:
    """HX-RM-9: the README encodes no ladder; a second dispute is another 200 CNY fine."""
    d = run(
        dispute("e1", t("03-05"), "C1", ["A", "B"]), dispute("e2", t("03-06"), "C2", ["A", "D"])
    )
    a = pens(d, "HX-RM-9", "A")
    assert len(a) == 2
    for p in a:
        assert_fine(p, "A", "200", "200")


# ============================================================================ HX-RS-1
# Registration via scattered/feedback/community/referral by B while A has owned for over one
# month and A has not pre-heated in the last month (exactly one month ago counts as within).


def _a_owns_since_0302() -> list[Event]:
    return [*owned("a", "C1", "A", "03-02"), inv("a-inv", t("03-05"), "C1", "A")]


@pytest.mark.parametrize("channel", ["scattered", "feedback", "community", "referral"])
def test_rs1_second_registration_after_one_month_owns(run: Any, channel: str) -> None:
    """HX-RS-1: A owns since 03-02 10:00 with its only pre-heat then; B's listed-channel
    registration at 04-02 10:00:01 takes the customer at once."""
    d = run(_a_owns_since_0302(), rs_reg("e1", t("04-02", "10:00:01"), "C1", "B", channel))
    assert d.owner("C1", at=t("04-02")) == "A"
    assert_owned(d, "C1", "B", "HX-RS-1", cause="e1")


def test_rs1_registration_at_exactly_one_month_does_not_take(run: Any) -> None:
    """HX-RS-1: owned exactly one month (not over), pre-heat exactly one month ago (within)."""
    d = run(_a_owns_since_0302(), reg("e1", t("04-02"), "C1", "B", "scattered"))
    assert d.owner("C1") == "A"


def test_rs1_list_call_registration_does_not_take(run: Any) -> None:
    """HX-RS-1 lists scattered/feedback/community/referral only."""
    d = run(_a_owns_since_0302(), reg("e1", t("04-10"), "C1", "B", "list_call"))
    assert d.owner("C1") == "A"


@pytest.mark.parametrize(("hms", "expected"), [("10:00:00", "A"), ("10:00:01", "B")])
def test_rs1_recent_preheat_protects_the_owner(run: Any, hms: str, expected: str) -> None:
    """HX-RS-1: A pre-heated again on 03-10 10:00; B's registration at 04-10 10:00:00 finds
    that pre-heat exactly one month ago (still within) -> A keeps; one second later B owns."""
    d = run(
        _a_owns_since_0302(),
        pre("e1", t("03-10"), "C1", "A"),
        reg("e2", t("04-10", hms), "C1", "B", "scattered"),
    )
    assert d.owner("C1") == expected
    if expected == "B":
        assert_owned(d, "C1", "B", "HX-RS-1", cause="e2")


@pytest.mark.parametrize(
    ("at", "expected"), [(t("04-10"), "A"), (t("04-20"), "A"), (t("04-20", "10:00:01"), "B")]
)
def test_rs1_owner_must_have_owned_over_one_month(run: Any, at: str, expected: str) -> None:
    """HX-RS-1: A was assigned C1 on 03-20 10:00 and never pre-heated; the rule waits until
    A has owned for *over* one month (04-20 10:00 exactly is not over)."""
    d = run(assign("e1", t("03-20"), "C1", "A"), reg("e2", at, "C1", "B", "community"))
    assert d.owner("C1") == expected


@pytest.mark.parametrize(("hms", "expected"), [("10:00:00", "A"), ("10:00:01", "B")])
def test_rs1_over_one_month_counted_forward_from_jan_31(run: Any, hms: str, expected: str) -> None:
    """HX-RS-1 + semantics.md (`31 Jan + 1 month = 28 Feb`): A assigned on 01-31 10:00 (never
    pre-heated) has owned for one month at 02-28 10:00 and for *over* one month a second
    later, so B's community registration at 02-28 10:00:01 takes the customer."""
    d = run(assign("e1", t("01-31"), "C1", "A"), reg("e2", t("02-28", hms), "C1", "B", "community"))
    assert d.owner("C1") == expected


# ============================================================================ HX-RS-5
# Resignation: owned customers -> company, open claims released; without an earlier handover
# one is owed by the end of the resignation day, else a 15-salary-day deduction.


def _two_owned_by_a() -> list[Event]:
    return [
        *owned("a1", "C1", "A", "03-02"),
        *owned("a2", "C2", "A", "03-03"),
        *owned("b1", "C3", "B", "03-03"),
    ]


def test_rs5_resignation_moves_owned_customers_to_company(run: Any) -> None:
    """HX-RS-5: at the resignation instant each of A's customers goes to `company`."""
    d = run(
        _two_owned_by_a(),
        handed_over("e0", t("03-10", "14:00:00"), "A"),
        resigned("e1", t("03-10", "15:00:00"), "A"),
    )
    for customer in ("C1", "C2"):
        assert d.owner(customer, at=t("03-10", "14:59:59")) == "A"
        assert_owned(d, customer, "company", "HX-RS-5", at=t("03-10", "15:00:00"), cause="e1")
    assert d.owner("C3") == "B"


def test_rs5_as_of_before_resignation_applies_nothing(run: Any) -> None:
    """HX-RS-5 + semantics.md `as_of`: later events are not applied."""
    d = run(
        _two_owned_by_a(), resigned("e1", t("03-10", "15:00:00"), "A"), as_of=t("03-10", "14:59:59")
    )
    assert d.owner("C1") == "A"
    assert d.owner("C2") == "A"
    assert pens(d, "HX-RS-5") == []


def test_rs5_handover_before_resignation_no_deduction(run: Any) -> None:
    """HX-RS-5: a handover recorded before the resignation -> no salary deduction."""
    d = run(
        _two_owned_by_a(),
        handed_over("e0", t("03-10", "14:00:00"), "A"),
        resigned("e1", t("03-10", "15:00:00"), "A"),
        as_of=t("03-12"),
    )
    assert pens(d, "HX-RS-5") == []


@pytest.mark.parametrize(
    ("md", "hms", "fined"), [("03-10", "23:59:59", False), ("03-11", "00:00:00", True)]
)
def test_rs5_handover_by_end_of_resignation_day(run: Any, md: str, hms: str, fined: bool) -> None:
    """HX-RS-5: a handover at 23:59:59 of the resignation day is in time; at the next local
    midnight it is late and the 15-day salary deduction stands."""
    d = run(
        _two_owned_by_a(),
        resigned("e1", t("03-10", "15:00:00"), "A"),
        handed_over("e2", t(md, hms), "A"),
        as_of=t("03-12"),
    )
    got = pens(d, "HX-RS-5")
    if not fined:
        assert got == []
    else:
        p = one(got)
        assert p.party == "A"
        assert p.sanction == "salary_deduction"
        assert p.salary_days == Decimal("15")
        assert "e1" in p.events


@pytest.mark.parametrize(
    ("as_of", "fined"), [(t("03-10", "23:59:59"), False), (t("03-11", "00:00:00"), True)]
)
def test_rs5_no_handover_deduction_from_midnight(run: Any, as_of: str, fined: bool) -> None:
    """HX-RS-5: without any handover, the deduction appears at the next local midnight."""
    d = run(_two_owned_by_a(), resigned("e1", t("03-10", "15:00:00"), "A"), as_of=as_of)
    got = pens(d, "HX-RS-5", "A")
    assert len(got) == (1 if fined else 0)
    if fined:
        assert got[0].salary_days == Decimal("15")


def test_rs5_handover_by_another_employee_does_not_count(run: Any) -> None:
    """HX-RS-5: B's handover does not discharge A."""
    d = run(
        _two_owned_by_a(),
        handed_over("e0", t("03-10", "14:00:00"), "B"),
        resigned("e1", t("03-10", "15:00:00"), "A"),
        as_of=t("03-12"),
    )
    p = one(pens(d, "HX-RS-5"))
    assert p.party == "A"
    assert p.sanction == "salary_deduction"
    assert p.salary_days == Decimal("15")


def test_rs5_resignation_releases_open_claims(run: Any) -> None:
    """HX-RS-5: A's open claim on C3 is released, so A's pre-heat within the window owns
    nothing (RM-2 needs an open claim)."""
    d = run(
        reg("e1", t("03-10"), "C3", "A"),
        resigned("e2", t("03-10", "15:00:00"), "A"),
        pre("e3", t("03-10", "16:00:00"), "C3", "A"),
    )
    assert d.owner("C3") is None


# ============================================================================ HX-RS-6
# resource_taken_over without approval: half a month's salary (15 days), customer -> company.
# With approved: true the taker owns.


def _a_left() -> list[Event]:
    return [
        *owned("a", "C1", "A", "03-02"),
        handed_over("h1", t("03-10", "14:00:00"), "A"),
        resigned("r1", t("03-10", "15:00:00"), "A"),
    ]


@pytest.mark.parametrize("extra", [{}, {"approved": False}], ids=["absent", "false"])
def test_rs6_unapproved_takeover_deducts_and_pools(run: Any, extra: dict[str, Any]) -> None:
    """HX-RS-6: B takes A's old customer without approval -> 15 salary days, stays company."""
    d = run(
        _a_left(),
        ev(
            "e1",
            "resource_taken_over",
            t("03-12"),
            customer="C1",
            employee="B",
            **{"from": "A"},
            **extra,
        ),
    )
    p = one(pens(d, "HX-RS-6"))
    assert p.party == "B"
    assert p.sanction == "salary_deduction"
    assert p.salary_days == Decimal("15")
    assert p.subject == "C1"
    assert "e1" in p.events
    assert d.owner("C1") == "company"


def test_rs6_approved_takeover_owns(run: Any) -> None:
    """HX-RS-6: with approved: true the taker owns and nobody is penalised."""
    d = run(
        _a_left(),
        ev(
            "e1",
            "resource_taken_over",
            t("03-12"),
            customer="C1",
            employee="B",
            approved=True,
            **{"from": "A"},
        ),
    )
    assert_owned(d, "C1", "B", "HX-RS-6", cause="e1")
    assert pens(d, "HX-RS-6") == []


def test_rs6_unapproved_takeover_moves_customer_to_company(run: Any) -> None:
    """HX-RS-6: the README applies to any unapproved resource_taken_over: owner -> company."""
    d = run(
        owned("a", "C1", "A", "03-02"),
        ev("e1", "resource_taken_over", t("03-12"), customer="C1", employee="B", **{"from": "A"}),
    )
    assert_owned(d, "C1", "company", "HX-RS-6", cause="e1")
    assert one(pens(d, "HX-RS-6")).party == "B"


# ============================================================================ HX-RS-7
# resource_embezzled: fine 50 CNY on the embezzler; owner becomes the victim.


def test_rs7_embezzlement_fines_50_and_returns_customer(run: Any) -> None:
    """HX-RS-7: B held C1, embezzled from A -> 50 CNY on B, A owns."""
    d = run(
        owned("b", "C1", "B", "03-02"),
        ev("e1", "resource_embezzled", t("03-05"), customer="C1", employee="B", victim="A"),
    )
    p = one(pens(d, "HX-RS-7"))
    assert_fine(p, "B", "50", "50")
    assert p.subject == "C1"
    assert "e1" in p.events
    assert_owned(d, "C1", "A", "HX-RS-7", cause="e1")


def test_rs7_each_embezzlement_is_a_separate_fine(run: Any) -> None:
    """HX-RS-7: `a fine of 50 for each one found` - two customers, two fines, no escalation."""
    d = run(
        ev("e1", "resource_embezzled", t("03-05"), customer="C1", employee="B", victim="A"),
        ev("e2", "resource_embezzled", t("03-06"), customer="C2", employee="B", victim="D"),
    )
    got = pens(d, "HX-RS-7", "B")
    assert len(got) == 2
    for p in got:
        assert_fine(p, "B", "50", "50")
    assert d.owner("C2") == "D"


# ============================================================================ HX-RS-8
# sale_transferred: 10 CNY per box on the transferring employee (one penalty, total amount,
# units = boxes); excluded_boxes grows for both; purchased credits credited_boxes.


@pytest.mark.parametrize("boxes", [1, 3, 7])
def test_rs8_per_box_fine_is_one_penalty_with_total(run: Any, boxes: int) -> None:
    """HX-RS-8: one fine of 10 x boxes CNY on A, units = boxes; none on the receiver B."""
    d = run(ev("e1", "sale_transferred", t("03-05"), employee="A", to="B", boxes=boxes))
    p = one(pens(d, "HX-RS-8"))
    assert_fine(p, "A", str(10 * boxes), str(10 * boxes))
    assert p.units == boxes
    assert "e1" in p.events
    assert pens(d, "HX-RS-8", "B") == []


def test_rs8_transferred_boxes_excluded_for_both_and_purchases_credited(run: Any) -> None:
    """HX-RS-8: counters - credited_boxes from purchases, excluded_boxes on both parties."""
    d = run(
        bought("e1", t("03-02"), "C1", "A", boxes=5),
        ev("e2", "sale_transferred", t("03-05"), employee="A", to="B", boxes=3),
    )
    assert d.counters["A"]["credited_boxes"] == Decimal(5)
    assert d.counters["A"]["excluded_boxes"] == Decimal(3)
    assert d.counters["B"]["excluded_boxes"] == Decimal(3)


def test_rs8_transfers_accumulate(run: Any) -> None:
    """HX-RS-8: two transfers -> two penalties (20 and 30 CNY) and 5 excluded boxes."""
    d = run(
        ev("e1", "sale_transferred", t("03-05"), employee="A", to="B", boxes=2),
        ev("e2", "sale_transferred", t("03-06"), employee="A", to="D", boxes=3),
    )
    got = sorted(pens(d, "HX-RS-8", "A"), key=lambda p: p.amount_min)
    assert [(p.amount_min, p.units) for p in got] == [(Decimal(20), 2), (Decimal(30), 3)]
    assert d.counters["A"]["excluded_boxes"] == Decimal(5)
    assert d.counters["B"]["excluded_boxes"] == Decimal(2)
    assert d.counters["D"]["excluded_boxes"] == Decimal(3)


def test_rs8_duplicate_event_is_fined_once(run: Any) -> None:
    """HX-RS-8 + semantics.md: the same event id twice is applied once, reported duplicate."""
    e1 = ev("e1", "sale_transferred", t("03-05"), employee="A", to="B", boxes=3)
    d = run(e1, dict(e1))
    assert len(pens(d, "HX-RS-8")) == 1
    assert d.counters["A"]["excluded_boxes"] == Decimal(3)
    assert d.duplicates == ["e1"]


def test_rs8_decision_serialises_to_json(run: Any) -> None:
    """HX-RS-8: the per-box penalty survives model_dump(mode="json") with clause and units."""
    d = run(ev("e1", "sale_transferred", t("03-05"), employee="A", to="B", boxes=3))
    data = d.model_dump(mode="json")
    p = one([p for p in data["penalties"] if p["clause"] == "HX-RS-8"])
    assert p["party"] == "A"
    assert p["units"] == 3
    assert Decimal(str(p["amount_min"])) == Decimal(30)
    assert p["events"] == ["e1"]


# ============================================================================ HX-RS-9
# record_filed with stamped or dated false is rejected as evidence; accepted ones count.


def record(eid: str, at: str, stamped: bool, dated: bool, employee: str = "A") -> Event:
    return ev(
        eid,
        "record_filed",
        at,
        employee=employee,
        record="新增资源一览表",
        stamped=stamped,
        dated=dated,
    )


@pytest.mark.parametrize(("stamped", "dated"), [(False, True), (True, False), (False, False)])
def test_rs9_unstamped_or_undated_record_is_rejected(run: Any, stamped: bool, dated: bool) -> None:
    """HX-RS-9: the record is reported in `rejected` and nothing else is applied."""
    d = run(record("e1", t("03-05"), stamped, dated))
    r = one([r for r in d.rejected if r.event == "e1"])
    assert cites(r, "HX-RS-9")
    assert r.reason
    assert d.counters.get("A", {}).get("evidence_records", Decimal(0)) == Decimal(0)


def test_rs9_stamped_and_dated_records_count_as_evidence(run: Any) -> None:
    """HX-RS-9: each accepted record adds one to the employee's evidence_records."""
    d = run(
        record("e1", t("03-05"), True, True),
        record("e2", t("03-06"), True, True),
        record("e3", t("03-07"), False, True),
    )
    assert [r.event for r in d.rejected] == ["e3"]
    assert d.counters["A"]["evidence_records"] == Decimal(2)


# ============================================================================ HX-RS-10
# A store registration of an unowned, unclaimed customer puts it in the company pool until a
# manager_assigned; registering, pre-heating or inviting it meanwhile: fine 20-100, stays.


def test_rs10_store_customer_goes_to_company_without_claim(run: Any) -> None:
    """HX-RS-10: store walk-in -> company at once; no claim, so no RM-6 pre-heat window."""
    d = run(reg("e1", t("03-02"), "C1", "A", "store"), as_of=t("03-06"))
    assert_owned(d, "C1", "company", "HX-RS-10", at=t("03-02"), cause="e1")
    assert obls(d, "HX-RM-6", "C1", cause="e1") == []
    assert pens(d, "HX-RS-10") == []


@pytest.mark.parametrize("make", [reg, pre, inv], ids=["registered", "preheated", "invited"])
def test_rs10_claiming_a_pooled_store_customer_is_fined(run: Any, make: Any) -> None:
    """HX-RS-10: B's registration/pre-heat/invite -> fine 20-100 on B, customer stays company."""
    d = run(reg("e1", t("03-02"), "C1", "A", "store"), make("e2", t("03-03"), "C1", "B"))
    p = one(pens(d, "HX-RS-10"))
    assert_fine(p, "B", "20", "100")
    assert p.subject == "C1"
    assert "e2" in p.events
    assert_owned(d, "C1", "company", "HX-RS-10", cause="e1")


def test_rs10_the_store_registrant_is_fined_too(run: Any) -> None:
    """HX-RS-10: `by an employee` - A, who took the walk-in, may not pre-heat it either."""
    d = run(reg("e1", t("03-02"), "C1", "A", "store"), pre("e2", t("03-02", "11:00:00"), "C1", "A"))
    assert_fine(one(pens(d, "HX-RS-10")), "A", "20", "100")
    assert d.owner("C1") == "company"


def test_rs10_manager_assignment_ends_the_pool(run: Any) -> None:
    """HX-RS-10: after manager_assigned to D, D owns and D's pre-heat is no offence."""
    d = run(
        reg("e1", t("03-02"), "C1", "A", "store"),
        assign("e2", t("03-03"), "C1", "D"),
        pre("e3", t("03-04"), "C1", "D"),
    )
    assert d.owner("C1", at=t("03-02", "12:00:00")) == "company"
    assert d.owner("C1") == "D"
    assert "e2" in span_at(d, "C1").events
    assert pens(d, "HX-RS-10") == []


def test_rs10_store_registration_with_open_claim_is_an_ordinary_claim(run: Any) -> None:
    """HX-RS-10 needs `no owner and no open claim`: A's earlier claim keeps it out of the pool."""
    d = run(reg("e1", t("03-02"), "C1", "A"), reg("e2", t("03-02", "12:00:00"), "C1", "B", "store"))
    assert d.owner("C1") is None


def test_rs10_store_registration_of_owned_customer_changes_nothing(run: Any) -> None:
    """HX-RS-10 needs `no owner`: A's customer stays A's."""
    d = run(owned("a", "C1", "A", "03-02"), reg("e1", t("03-03"), "C1", "B", "store"))
    assert_owned(d, "C1", "A", "HX-RM-2", cause="a-pre")
    assert pens(d, "HX-RS-10") == []


def test_rs10_released_claim_is_not_an_open_claim(run: Any) -> None:
    """HX-RS-10 `no owner and no open claim`: A's claim was released by A's resignation
    (HX-RS-5), so D's store registration the next day puts the customer in the pool."""
    d = run(
        reg("e1", t("03-02"), "C1", "A"),
        handed_over("e2", t("03-02", "14:00:00"), "A"),
        resigned("e3", t("03-02", "15:00:00"), "A"),
        reg("e4", t("03-03"), "C1", "D", "store"),
    )
    assert_owned(d, "C1", "company", "HX-RS-10", cause="e4")
