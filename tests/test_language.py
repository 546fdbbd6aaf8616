"""The language's general constructs, each on a minimal policy (not tied to any manual)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

import policyengine as pe

HEAD = """\
policy: {id: lang, title: language tests, version: "1"}
clauses:
  - {id: C-1, text: 原文, reading: reading one}
  - {id: C-2, text: 原文, reading: reading two}
params:
  window: {duration: 2 days}
  fine: {money: 20-100}
  per_box: {money: 10}
events:
  claim: {fields: {customer: str, employee: str, channel: "str?"}}
  touch: {fields: {customer: str, employee: str}}
  buy: {fields: {customer: str}}
  fault: {fields: {employee: str, boxes: "int?", who: "list[str]?"}}
"""


def policy(rules: str, head: str = HEAD) -> pe.Policy:
    return pe.load_policy_text(head + "rules:\n" + rules, "lang.yaml")


def ev(eid: str, etype: str, at: str, **fields: object) -> dict[str, object]:
    return {"id": eid, "type": etype, "at": at, **fields}


T0 = "2026-03-01T10:00:00+08:00"

OWNERS_BY_CHANNEL = """\
  - id: general
    clause: C-1
    on: claim
    then: [{assign: $event.employee}]
  - id: special
    clause: C-2
    on: claim
    when: {eq: [$event.channel, vip]}
    overrides: [general]
    then: [{assign: company}]
"""


@pytest.mark.parametrize("reverse", [False, True])
def test_overrides_decide_not_file_order(reverse: bool) -> None:
    parts = ["  - id: " + part for part in OWNERS_BY_CHANNEL.split("  - id: ")[1:]]
    p = policy("".join(reversed(parts) if reverse else parts))
    d = p.evaluate(
        [
            ev("e1", "claim", T0, customer="C", employee="A", channel="vip"),
            ev("e2", "claim", T0, customer="D", employee="A"),
        ]
    )
    assert d.owner("C") == "company" and d.ownership("C")[0].clause == "C-2"
    assert d.owner("D") == "A" and d.notices == []


def test_rules_of_one_event_see_the_state_before_it() -> None:
    p = policy("""\
  - id: first
    clause: C-1
    on: touch
    when: {eq: [$subject.owner, null]}
    then: [{assign: $event.employee}]
  - id: second
    clause: C-1
    on: touch
    when: {eq: [$subject.owner, $event.employee]}
    then: [{penalty: {party: $event.employee, sanction: warning}}]
""")
    d = p.evaluate([ev("e1", "touch", T0, customer="C", employee="A")])
    assert d.owner("C") == "A"
    assert d.penalties == []  # `second` did not see `first`'s assignment


EXPECT = """\
  - id: answer
    clause: C-1
    on: claim
    expect:
      event: touch
      match: {customer: $event.customer, employee: $event.employee}
      within: $params.window
      cancel_on: {event: buy, match: {customer: $event.customer}}
      obligation: touch the customer
      party: $event.employee
      met: [{assign: $event.employee}]
      late: [{set: {flag: late_touch}}]
      missed:
        - penalty: {party: $trigger.employee, sanction: fine, amount: $params.fine}
"""


@pytest.mark.parametrize(
    ("touch_at", "status", "fined"),
    [
        ("2026-03-03T10:00:00+08:00", "met", False),  # exactly at the deadline: in time
        ("2026-03-03T10:00:01+08:00", "late", True),  # one second later: late
        ("2026-03-02T10:00:00+08:00", "met", False),
    ],
)
def test_expectation_window_edges(touch_at: str, status: str, fined: bool) -> None:
    p = policy(EXPECT)
    d = p.evaluate(
        [
            ev("e1", "claim", T0, customer="C", employee="A"),
            ev("e2", "touch", touch_at, customer="C", employee="A"),
        ]
    )
    [o] = d.obligations
    assert o.status == status and o.met_by == "e2"
    assert str(o.due.isoformat()) == "2026-03-03T10:00:00+08:00"
    assert bool(d.penalties) is fined
    if fined:
        [pen] = d.penalties
        assert (pen.amount_min, pen.amount_max, pen.currency) == (Decimal(20), Decimal(100), "CNY")
        assert pen.at.isoformat() == "2026-03-03T10:00:00+08:00"
        assert d.flags["C"] == {"late_touch": True}
        assert d.owner("C") is None


def test_as_of_leaves_future_deadlines_open() -> None:
    p = policy(EXPECT)
    history = [ev("e1", "claim", T0, customer="C", employee="A")]
    assert p.evaluate(history, as_of="2026-03-03T10:00:00+08:00").obligations[0].status == "open"
    d = p.evaluate(history, as_of="2026-03-03T10:00:01+08:00")
    assert d.obligations[0].status == "overdue" and len(d.penalties) == 1
    # later events are not applied
    late_touch = ev("e2", "touch", "2026-03-04T10:00:00+08:00", customer="C", employee="A")
    d2 = p.evaluate([*history, late_touch], as_of="2026-03-03T12:00:00+08:00")
    assert d2.obligations[0].status == "overdue" and d2.obligations[0].met_by is None


def test_cancel_on_drops_the_duty() -> None:
    p = policy(EXPECT)
    d = p.evaluate(
        [
            ev("e1", "claim", T0, customer="C", employee="A"),
            ev("e2", "buy", "2026-03-02T10:00:00+08:00", customer="C"),
        ],
        as_of="2026-03-10T00:00:00+08:00",
    )
    # reported as cancelled, with the cancelling event (issue 16); no penalty
    assert [(o.status, o.met_by, str(o.met_at)) for o in d.obligations] == [
        ("cancelled", "e2", "2026-03-02 10:00:00+08:00")
    ]
    assert d.penalties == []


def test_same_day_is_exclusive_at_midnight() -> None:
    p = policy(EXPECT.replace("$params.window", "same day"))
    base = [ev("e1", "claim", T0, customer="C", employee="A")]
    ok = p.evaluate(
        [*base, ev("e2", "touch", "2026-03-01T23:59:59+08:00", customer="C", employee="A")]
    )
    late = p.evaluate(
        [*base, ev("e2", "touch", "2026-03-02T00:00:00+08:00", customer="C", employee="A")]
    )
    assert ok.obligations[0].status == "met"
    assert late.obligations[0].status == "late"
    assert late.obligations[0].due.isoformat() == "2026-03-02T00:00:00+08:00"
    assert late.obligations[0].due_inclusive is False


def test_month_window_clamps_to_month_end() -> None:
    p = policy(EXPECT.replace("$params.window", "1 month"))
    d = p.evaluate(
        [ev("e1", "claim", "2026-01-31T10:00:00+08:00", customer="C", employee="A")],
        as_of="2026-02-28T10:00:00+08:00",
    )
    assert d.obligations[0].due.isoformat() == "2026-02-28T10:00:00+08:00"
    assert d.obligations[0].status == "open"


LADDER = """\
  - id: ladder
    clause: C-1
    on: fault
    then:
      - penalty:
          party: $event.employee
          ladder:
            - {sanction: fine, amount: 200}
            - {sanction: dismissal}
"""


def test_escalation_ladder_counts_per_party() -> None:
    p = policy(LADDER)
    d = p.evaluate(
        [
            ev(f"e{i}", "fault", f"2026-03-0{i}T10:00:00+08:00", employee=emp)
            for i, emp in enumerate(["A", "B", "A", "A"], start=1)
        ]
    )
    got = [(x.party, x.sanction, x.offence, x.amount_min) for x in d.penalties]
    assert got == [
        ("A", "fine", 1, Decimal(200)),
        ("B", "fine", 1, Decimal(200)),
        ("A", "dismissal", 2, None),
        ("A", "dismissal", 3, None),
    ]


def test_per_unit_fine_reports_total_and_units() -> None:
    p = policy("""\
  - id: per-box
    clause: C-1
    on: fault
    then:
      - penalty: {party: $event.employee, sanction: fine, per_unit: $params.per_box,
                  units: $event.boxes}
""")
    [x] = p.evaluate([ev("e1", "fault", T0, employee="A", boxes=3)]).penalties
    assert (x.amount_min, x.amount_max, x.units) == (Decimal(30), Decimal(30), 3)


def test_for_each_names_every_party() -> None:
    p = policy("""\
  - id: each
    clause: C-1
    on: fault
    then:
      - penalty: {party: $item, sanction: fine, amount: 50}
        for_each: $event.who
""")
    d = p.evaluate([ev("e1", "fault", T0, employee="A", who=["X", "Y"])])
    assert [x.party for x in d.penalties] == ["X", "Y"]


def test_history_condition_with_window() -> None:
    p = policy("""\
  - id: repeat-touch
    clause: C-1
    on: touch
    when:
      history:
        type: touch
        match: {customer: $event.customer, employee: $event.employee}
        within: 1 month
    then: [{penalty: {party: $event.employee, sanction: warning}}]
""")
    d = p.evaluate(
        [
            ev("e1", "touch", "2026-01-10T10:00:00+08:00", customer="C", employee="A"),
            ev(
                "e2", "touch", "2026-02-10T10:00:00+08:00", customer="C", employee="A"
            ),  # exactly 1m
            ev("e3", "touch", "2026-03-10T10:00:01+08:00", customer="C", employee="A"),  # 1m + 1s
        ]
    )
    assert [x.events for x in d.penalties] == [["e2"]]


def test_owner_at_instants_and_json() -> None:
    p = policy(OWNERS_BY_CHANNEL)
    d = p.evaluate(
        [
            ev("e1", "claim", T0, customer="C", employee="A"),
            ev("e2", "claim", "2026-03-02T10:00:00+08:00", customer="C", employee="B"),
        ]
    )
    assert d.owner("C", at="2026-03-01T09:59:59+08:00") is None
    assert d.owner("C", at=T0) == "A"
    assert d.owner("C", at="2026-03-02T09:59:59+08:00") == "A"
    assert d.owner("C", at="2026-03-02T02:00:00Z") == "B"
    assert d.owner("C") == "B"
    dumped = json.loads(json.dumps(d.model_dump(mode="json")))
    assert dumped["ownerships"]["C"][0]["end"] == "2026-03-02T10:00:00+08:00"


def test_undeclared_precedence_is_reported_not_hidden() -> None:
    p = policy("""\
  - {id: one, clause: C-1, on: claim, then: [{assign: $event.employee}]}
  - {id: two, clause: C-2, on: claim, then: [{assign: company}]}
""")
    d = p.evaluate([ev("e1", "claim", T0, customer="C", employee="A")])
    assert d.owner("C") == "company"
    assert [n.kind for n in d.notices] == ["conflict"]


def test_reference_to_trigger_in_missed_branch_is_checked() -> None:
    with pytest.raises(pe.PolicyError) as info:
        policy(EXPECT.replace("party: $trigger.employee", "party: $event.employee"))
    assert info.value.first.code == "PE117"


def test_params_override_without_editing_rules() -> None:
    p = pe.load_policy_text(HEAD + "rules:\n" + EXPECT, "lang.yaml", params={"window": "3 days"})
    d = p.evaluate(
        [ev("e1", "claim", T0, customer="C", employee="A")], as_of="2026-03-03T12:00:00+08:00"
    )
    assert d.obligations[0].status == "open"
    assert d.obligations[0].due.isoformat() == "2026-03-04T10:00:00+08:00"


def test_history_lookback_agrees_with_windows_at_month_end() -> None:
    """A touch on 31 Jan is "within the last month" until 28 Feb 10:00 (31 Jan + 1 month),
    exactly as a 1-month window opened on 31 Jan would still be open then."""
    p = policy("""\
  - id: recent
    clause: C-1
    on: claim
    when:
      history: {type: touch, match: {customer: $event.customer}, within: 1 month}
    then: [{penalty: {party: $event.employee, sanction: warning}}]
  - id: over-a-month
    clause: C-2
    on: claim
    when: {lt: [{plus: [$subject.owner_since, 1 month]}, $now]}
    then: [{penalty: {party: $event.employee, sanction: fine, amount: 1}}]
  - id: own
    clause: C-1
    on: touch
    then: [{assign: $event.employee}]
""")
    base = [ev("t", "touch", "2026-01-31T10:00:00+08:00", customer="C", employee="A")]
    in_time = p.evaluate(
        [*base, ev("c", "claim", "2026-02-28T10:00:00+08:00", customer="C", employee="B")]
    )
    after = p.evaluate(
        [*base, ev("c", "claim", "2026-02-28T10:00:01+08:00", customer="C", employee="B")]
    )
    assert [x.sanction for x in in_time.penalties] == ["warning"]
    assert [x.sanction for x in after.penalties] == ["fine"]


MONTHLY = """\
  - id: own
    clause: C-1
    on: touch
    when: {eq: [$subject.owner, null]}
    then: [{assign: $event.employee}]
  - id: monthly-visit
    clause: C-2
    every: month
    then:
      - for_each_subject: {subjects: owned_by_employee}
        expect:
          event: touch
          match: {customer: $subject, employee: $subject.owner}
          within: end of month
          obligation: touch each owned customer every calendar month
          party: $subject.owner
          missed:
            - penalty: {party: $party, sanction: fine, amount: 10}
"""


def test_every_month_owes_a_duty_per_owned_subject() -> None:
    """Recurring duties: at each local month start, every customer an employee owns owes a
    touch by the owner before the next month starts (the 1st 00:00 is already late)."""
    p = policy(MONTHLY)
    history = [
        ev("t0", "touch", "2026-02-20T10:00:00+08:00", customer="C", employee="A"),
        ev("t1", "touch", "2026-03-31T23:59:59+08:00", customer="C", employee="A"),  # in time
        ev("t2", "touch", "2026-05-01T00:00:00+08:00", customer="C", employee="A"),  # late (Apr)
    ]
    d = p.evaluate(history, as_of="2026-05-15T00:00:00+08:00")
    by_month = {o.opened.strftime("%Y-%m"): o for o in d.obligations}
    assert sorted(by_month) == ["2026-03", "2026-04", "2026-05"]  # February: nobody owned yet
    assert (by_month["2026-03"].status, by_month["2026-03"].met_by) == ("met", "t1")
    assert by_month["2026-03"].due.isoformat() == "2026-04-01T00:00:00+08:00"
    assert by_month["2026-03"].due_inclusive is False
    assert (by_month["2026-04"].status, by_month["2026-04"].met_by) == ("late", "t2")
    # the same touch is inside May: it meets May's duty too (an event answers every
    # expectation it matches; "one visit meets one duty" is not this pack's reading)
    assert (by_month["2026-05"].status, by_month["2026-05"].met_by) == ("met", "t2")
    assert [(x.party, x.at.isoformat()) for x in d.penalties] == [
        ("A", "2026-05-01T00:00:00+08:00")
    ]
    assert {o.party for o in d.obligations} == {"A"}


def test_every_month_ticks_stop_at_as_of() -> None:
    p = policy(MONTHLY)
    history = [ev("t0", "touch", "2026-02-20T10:00:00+08:00", customer="C", employee="A")]
    assert p.evaluate(history, as_of="2026-02-28T23:59:59+08:00").obligations == []
    [o] = p.evaluate(history, as_of="2026-03-01T00:00:00+08:00").obligations
    assert o.status == "open"


def test_a_rule_has_exactly_one_trigger() -> None:
    with pytest.raises(pe.PolicyError) as info:
        policy("  - {id: r, clause: C-1, on: touch, every: month, then: [{claim: a}]}\n")
    assert "exactly one trigger" in str(info.value)
