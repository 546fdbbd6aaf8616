"""The duty constructs of the language (schedules, recurring and rolling duties, consumption,
keys, workflows, derived owner changes, labels, metrics), each on a minimal policy that is not
tied to any manual. Pack scenarios live in the test_hx_* and test_service_system files."""

from __future__ import annotations

from decimal import Decimal

import pytest

import policyengine as pe

HEAD = """\
policy: {id: duties, title: duty constructs, version: "1"}
clauses:
  - {id: C-1, text: 原文, reading: reading one}
params:
  three: {duration: 3 days}
  target: {number: 0.5}
events:
  buy: {fields: {customer: str, employee: str, helper: "str?"}}
  visit:
    fields: {customer: str, employee: str, kind: {type: str, enum: [home, phone], default: home}}
  step: {fields: {case: str, step: [a, b, c], employee: "str?"}}
  open_case: {fields: {case: str, customer: str}}
  take: {fields: {customer: str, employee: str}}
  drop: {fields: {customer: str}}
  refer: {fields: {customer: str, by: str}}
  mark: {fields: {customer: str, level: int}}
  report: {fields: {employee: str, day: date}}
"""


def policy(rules: str, extra: str = "") -> pe.Policy:
    return pe.load_policy_text(HEAD + "rules:\n" + rules + extra, "duties.yaml")


def ev(eid: str, etype: str, at: str, **fields: object) -> dict[str, object]:
    return {"id": eid, "type": etype, "at": at, **fields}


T0 = "2026-03-01T10:00:00+08:00"


def statuses(d: pe.Decision) -> list[str]:
    return [o.status for o in d.obligations]


# ---------------------------------------------------------------- schedules (steps)

SCHEDULE = """\
  - id: visits
    clause: C-1
    on: buy
    expect:
      event: visit
      match: {customer: $event.customer}
      consume: true
      steps:
        - {within: 3 days, obligation: first}
        - {within: 15 days, obligation: second}
      party: $event.employee
"""


def test_each_step_is_its_own_obligation_with_its_own_window() -> None:
    d = policy(SCHEDULE).evaluate(
        [ev("b", "buy", T0, customer="C", employee="E")], as_of="2026-03-02T00:00:00+08:00"
    )
    first, second = d.obligations
    assert (first.what, first.window_start, str(first.due)) == (
        "first",
        None,
        "2026-03-04 10:00:00+08:00",
    )
    assert str(second.window_start) == "2026-03-04 10:00:00+08:00"
    assert second.window_start_inclusive is False  # opens just after the first step's due
    assert statuses(d) == ["open", "open"]


def test_one_event_meets_one_step_only() -> None:
    d = policy(SCHEDULE).evaluate(
        [
            ev("b", "buy", T0, customer="C", employee="E"),
            ev("v1", "visit", "2026-03-02T10:00:00+08:00", customer="C", employee="E"),
            ev("v2", "visit", "2026-03-02T11:00:00+08:00", customer="C", employee="E"),
        ],
        as_of="2026-03-20T00:00:00+08:00",
    )
    assert [(o.status, o.met_by) for o in d.obligations] == [("met", "v1"), ("overdue", None)]


def test_a_visit_at_the_first_due_instant_never_counts_for_the_second_step() -> None:
    d = policy(SCHEDULE).evaluate(
        [
            ev("b", "buy", T0, customer="C", employee="E"),
            ev("v1", "visit", "2026-03-02T10:00:00+08:00", customer="C", employee="E"),
            ev("v2", "visit", "2026-03-04T10:00:00+08:00", customer="C", employee="E"),
            ev("v3", "visit", "2026-03-04T10:00:01+08:00", customer="C", employee="E"),
        ],
        as_of="2026-03-20T00:00:00+08:00",
    )
    assert [o.met_by for o in d.obligations] == ["v1", "v3"]


def test_in_window_duties_are_served_before_overdue_ones() -> None:
    d = policy(SCHEDULE).evaluate(
        [
            ev("b", "buy", T0, customer="C", employee="E"),
            ev("v", "visit", "2026-03-06T10:00:00+08:00", customer="C", employee="E"),
        ],
        as_of="2026-03-20T00:00:00+08:00",
    )
    assert [(o.status, o.met_by) for o in d.obligations] == [("overdue", None), ("met", "v")]


def test_without_consume_one_event_meets_every_step_it_fits() -> None:
    rules = SCHEDULE.replace("consume: true", "consume: false").replace(
        "{within: 15 days, obligation: second}", "{within: 15 days, after: 1 hour, obligation: b}"
    )
    d = policy(rules).evaluate(
        [
            ev("b", "buy", T0, customer="C", employee="E"),
            ev("v", "visit", "2026-03-02T10:00:00+08:00", customer="C", employee="E"),
        ],
        as_of="2026-03-03T00:00:00+08:00",
    )
    assert [o.met_by for o in d.obligations] == ["v", "v"]


def test_history_sensitive_step_condition() -> None:
    """The second step must be a home visit when the two visits before it were phone calls."""
    rules = """\
  - id: visits
    clause: C-1
    on: buy
    expect:
      event: visit
      match: {customer: $event.customer}
      consume: true
      steps:
        - {within: 3 days, obligation: first}
        - within: 15 days
          obligation: second
          where:
            any:
              - {eq: [$event.kind, home]}
              - ne:
                  - values: {type: visit, match: {customer: $event.customer}, last: 2, field: kind}
                  - [phone, phone]
"""
    base = [
        ev("b", "buy", T0, customer="C", employee="E"),
        ev("v0", "visit", "2026-02-20T10:00:00+08:00", customer="C", employee="E", kind="phone"),
        ev("v1", "visit", "2026-03-02T10:00:00+08:00", customer="C", employee="E", kind="phone"),
    ]
    phone = ev("v2", "visit", "2026-03-06T10:00:00+08:00", customer="C", employee="E", kind="phone")
    d = policy(rules).evaluate([*base, phone], as_of="2026-03-20T00:00:00+08:00")
    assert statuses(d) == ["met", "overdue"]
    home = {**phone, "kind": "home"}
    d = policy(rules).evaluate([*base, home], as_of="2026-03-20T00:00:00+08:00")
    assert statuses(d) == ["met", "met"]
    # with a home visit among the last two, a phone call is enough
    base[1] = {**base[1], "kind": "home"}
    d = policy(rules).evaluate([*base, phone], as_of="2026-03-20T00:00:00+08:00")
    assert statuses(d) == ["met", "met"]


# ---------------------------------------------------------------- calendar-period duties

MONTHLY = """\
  - id: monthly
    clause: C-1
    on: buy
    expect:
      event: visit
      match: {customer: $event.customer}
      every: month
      key: $event.customer
      cancel_on: {event: drop, match: {customer: $event.customer}}
      obligation: a visit this month
      party: $event.employee
"""


def test_every_month_owes_one_duty_per_month_from_the_month_it_arises() -> None:
    d = policy(MONTHLY).evaluate(
        [
            ev("b", "buy", "2026-01-20T10:00:00+08:00", customer="C", employee="E"),
            ev("v", "visit", "2026-02-28T23:59:59+08:00", customer="C", employee="E"),
        ],
        as_of="2026-03-15T00:00:00+08:00",
    )
    assert [(str(o.due), o.status) for o in d.obligations] == [
        ("2026-02-01 00:00:00+08:00", "overdue"),
        ("2026-03-01 00:00:00+08:00", "met"),
        ("2026-04-01 00:00:00+08:00", "open"),
    ]
    assert all(o.due_inclusive is False for o in d.obligations)


def test_month_end_instant_belongs_to_the_next_month() -> None:
    d = policy(MONTHLY).evaluate(
        [
            ev("b", "buy", "2026-01-20T10:00:00+08:00", customer="C", employee="E"),
            ev("v", "visit", "2026-02-01T00:00:00+08:00", customer="C", employee="E"),
        ],
        as_of="2026-02-10T00:00:00+08:00",
    )
    assert [o.status for o in d.obligations] == ["overdue", "met"]


def test_key_keeps_one_recurring_duty_per_customer_and_cancel_stops_it() -> None:
    d = policy(MONTHLY).evaluate(
        [
            ev("b1", "buy", "2026-01-20T10:00:00+08:00", customer="C", employee="E"),
            ev("b2", "buy", "2026-01-21T10:00:00+08:00", customer="C", employee="E"),
            ev("x", "drop", "2026-02-10T10:00:00+08:00", customer="C"),
        ],
        as_of="2026-04-15T00:00:00+08:00",
    )
    # January missed, February cancelled (reported, with the cancelling event), nothing after
    assert [(str(o.due), o.status, o.met_by) for o in d.obligations] == [
        ("2026-02-01 00:00:00+08:00", "overdue", None),
        ("2026-03-01 00:00:00+08:00", "cancelled", "x"),
    ]


SHARED_KEY = """\
  - id: owed-on-buy
    clause: C-1
    on: buy
    expect: {event: visit, match: {customer: $event.customer}, key: $event.customer,
             key_scope: one-visit, obligation: a visit, party: $event.employee}
  - id: owed-on-drop
    clause: C-1
    on: drop
    expect: {event: visit, match: {customer: $event.customer}, key: $event.customer,
             key_scope: one-visit, obligation: a visit, party: ops}
"""


def test_rules_sharing_a_key_scope_owe_one_live_duty_per_key() -> None:
    """Two ways to owe the same duty: while one is live, the other rule creates none; once it
    is met, the next trigger owes a new one."""
    d = policy(SHARED_KEY).evaluate(
        [
            ev("b", "buy", "2026-03-01T10:00:00+08:00", customer="C", employee="E"),
            ev("x", "drop", "2026-03-02T10:00:00+08:00", customer="C"),
            ev("v", "visit", "2026-03-03T10:00:00+08:00", customer="C", employee="E"),
            ev("y", "drop", "2026-03-04T10:00:00+08:00", customer="C"),
        ],
        as_of="2026-03-05T00:00:00+08:00",
    )
    assert [(o.rule, o.status) for o in d.obligations] == [
        ("owed-on-buy", "met"),
        ("owed-on-drop", "open"),
    ]
    unscoped = policy(SHARED_KEY.replace("key_scope: one-visit, ", "")).evaluate(
        [
            ev("b", "buy", "2026-03-01T10:00:00+08:00", customer="C", employee="E"),
            ev("x", "drop", "2026-03-02T10:00:00+08:00", customer="C"),
        ],
        as_of="2026-03-05T00:00:00+08:00",
    )
    assert [o.rule for o in unscoped.obligations] == ["owed-on-buy", "owed-on-drop"]


def test_cancel_stops_a_recurring_duty_whose_current_period_is_already_met() -> None:
    """Met this month, then cancelled: no duty for the months after (the series ends even
    though no duty was open when the cancel came)."""
    d = policy(MONTHLY).evaluate(
        [
            ev("b", "buy", "2026-01-20T10:00:00+08:00", customer="C", employee="E"),
            ev("v", "visit", "2026-02-03T10:00:00+08:00", customer="C", employee="E"),
            ev("x", "drop", "2026-02-10T10:00:00+08:00", customer="C"),
        ],
        as_of="2026-05-15T00:00:00+08:00",
    )
    assert [(str(o.due), o.status) for o in d.obligations] == [
        ("2026-02-01 00:00:00+08:00", "overdue"),
        ("2026-03-01 00:00:00+08:00", "met"),
    ]


def test_every_with_after_starts_in_the_month_the_window_opens() -> None:
    rules = MONTHLY.replace("every: month", "every: month\n      after: 28 days")
    d = policy(rules).evaluate(
        [ev("b", "buy", "2026-03-10T10:00:00+08:00", customer="C", employee="E")],
        as_of="2026-05-02T00:00:00+08:00",
    )
    first = d.obligations[0]
    assert str(first.window_start) == "2026-04-07 10:00:00+08:00"
    assert [str(o.due) for o in d.obligations] == [
        "2026-05-01 00:00:00+08:00",
        "2026-06-01 00:00:00+08:00",
    ]


# ---------------------------------------------------------------- rolling cadences

ROLLING = """\
  - id: cadence
    clause: C-1
    on: buy
    expect:
      event: visit
      match: {customer: $event.customer}
      within: $params.three
      repeat: true
      consume: true
      obligation: a visit every 3 days
      party: $event.employee
"""


def test_repeat_renews_from_the_meeting_event_and_waits_when_overdue() -> None:
    d = policy(ROLLING).evaluate(
        [
            ev("b", "buy", T0, customer="C", employee="E"),
            ev("v1", "visit", "2026-03-02T10:00:00+08:00", customer="C", employee="E"),
        ],
        as_of="2026-03-08T10:00:00+08:00",
    )
    # issue 16: an overdue cadence is one overdue duty, waiting to be met late (no renewal
    # at the missed deadline, so no pile of overdue duties)
    assert [(str(o.due), o.status) for o in d.obligations] == [
        ("2026-03-04 10:00:00+08:00", "met"),
        ("2026-03-05 10:00:00+08:00", "overdue"),  # 3 days after v1
    ]


# ---------------------------------------------------------------- workflows

WORKFLOW = """\
  - id: case
    clause: C-1
    on: open_case
    expect:
      event: step
      match: {case: $event.case}
      in_order: true
      consume: true
      steps:
        - {where: {eq: [$event.step, a]}, obligation: a}
        - {where: {eq: [$event.step, b]}, obligation: b}
        - {where: {eq: [$event.step, c]}, obligation: c}
      party: desk
      out_of_order:
        - violation: {what: out of order, party: {coalesce: [$event.employee, desk]}}
"""


def test_workflow_in_order_has_no_violation_and_no_deadlines() -> None:
    d = policy(WORKFLOW).evaluate(
        [
            ev("o", "open_case", T0, case="K", customer="C"),
            ev("s1", "step", "2026-03-02T10:00:00+08:00", case="K", step="a"),
            ev("s2", "step", "2026-03-03T10:00:00+08:00", case="K", step="b"),
        ],
        as_of="2027-01-01T00:00:00+08:00",
    )
    assert statuses(d) == ["met", "met", "open"]  # no deadline: open, never overdue
    assert d.obligations[2].due is None and d.violations == []


def test_out_of_order_step_is_reported_and_still_counts() -> None:
    d = policy(WORKFLOW).evaluate(
        [
            ev("o", "open_case", T0, case="K", customer="C"),
            ev("s2", "step", "2026-03-02T10:00:00+08:00", case="K", step="b", employee="E"),
            ev("s1", "step", "2026-03-03T10:00:00+08:00", case="K", step="a"),
            ev("other", "step", "2026-03-03T11:00:00+08:00", case="L", step="c"),
        ]
    )
    assert statuses(d) == ["met", "met", "open"]
    (v,) = d.violations
    assert (v.event, v.party, v.subject, v.clause, v.events) == ("s2", "E", "C", "C-1", ["o", "s2"])
    assert any(t.kind == "violation" for t in d.trace)


# ---------------------------------------------------------------- derived owner changes

OWNER_DUTY = """\
  - id: take
    clause: C-1
    on: take
    then: [{assign: $event.employee}]
  - id: drop
    clause: C-1
    on: drop
    then: [{release: null}]
  - id: needs-owner
    clause: C-1
    on: buy
    when: {eq: [$subject.owner, null]}
    expect:
      event: owner_changed
      match: {customer: $event.customer}
      where: {ne: [$event.owner, null]}
      key: $event.customer
      obligation: find an owner
      party: $event.employee
  - id: welcome
    clause: C-1
    on: owner_changed
    when: {ne: [$event.owner, null]}
    then: [{add: {counter: welcomed, party: $event.owner}}]
"""


def test_owner_changed_is_a_trigger_and_meets_expectations() -> None:
    d = policy(OWNER_DUTY).evaluate(
        [
            ev("b1", "buy", T0, customer="C", employee="M"),
            ev("b2", "buy", "2026-03-02T10:00:00+08:00", customer="C", employee="M"),
            ev("t", "take", "2026-03-03T10:00:00+08:00", customer="C", employee="E"),
            ev("x", "drop", "2026-03-04T10:00:00+08:00", customer="C"),
        ]
    )
    (o,) = d.obligations  # the key kept the second purchase from owing it again
    assert (o.status, o.met_by, o.party) == ("met", "t", "M")
    assert d.counters["E"]["welcomed"] == Decimal(1)


def test_owner_changed_cannot_be_sent_as_input() -> None:
    with pytest.raises(pe.EventError) as err:
        policy(OWNER_DUTY).evaluate([ev("o", "owner_changed", T0, customer="C", owner="E")])
    assert err.value.problems[0].code == "PE201"


# ---------------------------------------------------------------- keys, dates, about


def test_key_and_date_make_one_duty_per_employee_and_local_day() -> None:
    rules = """\
  - id: daily-report
    clause: C-1
    on: buy
    expect:
      event: report
      match: {employee: $event.employee, day: {date: $event.at}}
      within: next day
      key: [$event.employee, {date: $event.at}]
      about: {date: $event.at}
      obligation: report the day's sales
      party: $event.employee
"""
    d = policy(rules).evaluate(
        [
            ev("b1", "buy", "2026-03-01T09:00:00+08:00", customer="C1", employee="E"),
            ev("b2", "buy", "2026-03-01T15:00:00Z", customer="C2", employee="E"),  # 23:00 local
            ev("b3", "buy", "2026-03-01T16:00:00Z", customer="C3", employee="E"),  # 03-02 local
            ev("r", "report", "2026-03-02T23:59:59+08:00", employee="E", day="2026-03-01"),
        ],
        as_of="2026-03-04T00:00:00+08:00",
    )
    assert [(o.subject, o.status, o.met_by) for o in d.obligations] == [
        ("2026-03-01", "met", "r"),
        ("2026-03-02", "overdue", None),
    ]


def test_date_fields_are_checked() -> None:
    with pytest.raises(pe.EventError) as err:
        policy(SCHEDULE).evaluate([ev("r", "report", T0, employee="E", day="1 March")])
    assert err.value.problems[0].field == "day"


# ---------------------------------------------------------------- labels

LABELS = """\
labels:
  grade:
    clause: C-1
    cases:
      - {value: A, when: {history: {type: refer, match: {by: $subject}}}}
      - {value: B, when: {ge: [{count: {type: buy, match: {customer: $subject}}}, 2]}}
"""


def test_label_is_the_first_case_that_holds_as_of() -> None:
    p = policy(SCHEDULE, LABELS)
    events = [
        ev("b1", "buy", T0, customer="C", employee="E"),
        ev("b2", "buy", "2026-03-02T10:00:00+08:00", customer="C", employee="E"),
        ev("r", "refer", "2026-03-03T10:00:00+08:00", customer="N", by="C"),
    ]
    assert p.evaluate(events).labels("C") == {"grade": "A"}
    assert p.evaluate(events, as_of="2026-03-02T12:00:00+08:00").labels("C") == {"grade": "B"}
    assert p.evaluate(events, as_of=T0).labels("C") == {"grade": None}
    assert p.evaluate(events).labels("nobody") == {}


def test_label_citing_an_unknown_clause_is_a_load_error() -> None:
    with pytest.raises(pe.PolicyError) as err:
        policy(SCHEDULE, LABELS.replace("clause: C-1", "clause: C-9"))
    assert any(p.code == "PE108" and "label" in p.message for p in err.value.problems)


# ---------------------------------------------------------------- metrics

METRICS = """\
  - id: own
    clause: C-1
    on: take
    then: [{assign: $event.employee}]
  - id: count-referrals
    clause: C-1
    on: refer
    then: [{add: {counter: referrals, party: {owner_of: $event.by}}}]
metrics:
  - id: rate
    clause: C-1
    every: month
    parties: {owners: employee}
    numerator: {added: referrals}
    denominator: {len: {subjects: owned_by_employee, owner: $party}}
    target: {ge: $params.target}
"""


def test_metric_per_party_per_month_with_target() -> None:
    d = policy(METRICS).evaluate(
        [
            ev("t1", "take", "2026-03-01T10:00:00+08:00", customer="C1", employee="E"),
            ev("t2", "take", "2026-03-01T10:00:00+08:00", customer="C2", employee="E"),
            ev("t3", "take", "2026-03-01T10:00:00+08:00", customer="C3", employee="F"),
            ev("r1", "refer", "2026-03-31T23:59:59+08:00", customer="N1", by="C1"),
            ev("r2", "refer", "2026-04-01T00:00:00+08:00", customer="N2", by="C3"),
        ],
        as_of="2026-04-10T00:00:00+08:00",
    )
    rows = [(m.party, m.period, m.value, m.met, m.complete) for m in d.metrics]
    assert rows == [
        ("E", "2026-03", Decimal("0.5"), True, True),
        ("F", "2026-03", Decimal(0), False, True),
        ("E", "2026-04", Decimal(0), False, False),
        ("F", "2026-04", Decimal(1), True, False),
    ]
    assert d.metrics[0].target == Decimal("0.5") and d.metrics[0].clause == "C-1"
    assert d.model_dump(mode="json")["metrics"][0]["value"] == "0.5"


def test_metric_period_with_zero_denominator_is_not_reported() -> None:
    d = policy(METRICS).evaluate(
        [ev("r", "refer", "2026-03-05T10:00:00+08:00", customer="N", by="C1")]
    )
    assert d.metrics == []


def test_the_event_that_creates_a_period_duty_counts_for_its_period() -> None:
    rules = """\
  - id: monthly-visit
    clause: C-1
    on: visit
    expect:
      event: visit
      match: {employee: $event.employee}
      every: month
      key: $event.employee
      about: $event.employee
      obligation: a visit a month
      party: $event.employee
"""
    d = policy(rules).evaluate(
        [ev("v", "visit", "2026-03-10T10:00:00+08:00", customer="C", employee="E")],
        as_of="2026-04-15T00:00:00+08:00",
    )
    assert [(o.subject, o.status, o.met_by) for o in d.obligations] == [
        ("E", "met", "v"),
        ("E", "open", None),
    ]


def test_counter_parties_with_and_flag_of() -> None:
    rules = """\
  - id: serve
    clause: C-1
    on: buy
    when: {ne: [$subject.flags.server, $event.employee]}
    then:
      - add: {counter: served, party: $event.employee}
      - add: {counter: served, party: $subject.flags.server, by: -1}
        when: {exists: $subject.flags.server}
  - id: remember
    clause: C-1
    on: buy
    then: [{set: {flag: server, value: $event.employee}}]
  - id: credit
    clause: C-1
    on: refer
    then: [{add: {counter: referrals, party: {flag_of: [$event.by, server]}}}]
metrics:
  - id: rate
    clause: C-1
    parties: {parties_with: served}
    numerator: {added: referrals}
    denominator: {counter: served}
    target: {ge: 1}
"""
    d = policy(rules).evaluate(
        [
            ev("b1", "buy", T0, customer="C1", employee="E"),
            ev("b2", "buy", T0, customer="C2", employee="E"),
            ev("b3", "buy", "2026-03-02T10:00:00+08:00", customer="C2", employee="F"),
            ev("r", "refer", "2026-03-03T10:00:00+08:00", customer="N", by="C2"),
        ]
    )
    assert [(m.party, m.numerator, m.denominator) for m in d.metrics] == [
        ("E", Decimal(0), Decimal(1)),
        ("F", Decimal(1), Decimal(1)),
    ]
