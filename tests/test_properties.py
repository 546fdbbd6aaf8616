"""Property tests of the engine over random HX histories (policies/huixiao/resources.yaml).

The properties come from docs/semantics.md and hold for any history:

* one owner at a time: a customer's ownership spans never overlap, each ends after it starts;
* determinism: the same history gives the same decision, to the byte;
* order: the input order of events with distinct timestamps is irrelevant (events with equal
  timestamps keep their input order, so only such permutations are drawn);
* ``as_of``: deciding as of t is deciding the history cut at t, and later events never rewrite
  what was decided before t;
* accountability: every span, penalty, obligation and rejection names a rule, a clause of the
  policy and input events;
* duplicates: a repeated id is reported and otherwise changes nothing;
* offsets: the same instants written with another UTC offset decide the same;
* obligation statuses agree with their due instants and the evaluation instant.

Examples: 60 per property by default; ``HYPOTHESIS_PROFILE=ci`` (150, derandomized),
``dev`` (15) or ``thorough`` (1500) choose others (see tests/strategies.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import policyengine as pe
from strategies import (
    EMPLOYEES,
    Event,
    as_of_instants,
    customers_of,
    hx_histories,
    in_utc,
    instant,
    iso,
    profile,
)

POLICY_PATH = Path(__file__).parents[1] / "policies" / "huixiao"  # ownership + after-sales
PROFILE = profile()


# One policy for all examples (it is immutable; loading it per example would dominate).
_POLICY: pe.Policy | None = None


def hx() -> pe.Policy:
    global _POLICY
    if _POLICY is None:
        _POLICY = pe.load_policy(POLICY_PATH)
    return _POLICY


def dump(decision: pe.Decision) -> dict[str, Any]:
    return decision.model_dump(mode="json")


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


def as_of_value(t: datetime, as_text: bool) -> str | datetime:
    return iso(t) if as_text else t


def probes(decisions: Iterable[pe.Decision], events: list[Event]) -> set[datetime]:
    """Instants worth asking ``owner(at=...)`` about: event times and every span boundary."""
    out = {instant(e["at"]) for e in events}
    for d in decisions:
        for spans in d.ownerships.values():
            for s in spans:
                out.add(s.start)
                if s.end is not None:
                    out.add(s.end)
    for t in list(out):
        out.add(t - timedelta(microseconds=1))
    return out


# ---------------------------------------------------------------------------- one owner


@PROFILE
@given(hx_histories())
def test_at_most_one_owner_at_any_instant(events: list[Event]) -> None:
    decision = hx().evaluate(events)
    owners_allowed = {*EMPLOYEES, "company"}
    for customer, spans in decision.ownerships.items():
        for s in spans:
            assert s.subject == customer
            assert s.owner in owners_allowed, s
            if s.end is not None:
                assert s.start < s.end, f"empty or reversed span of {customer}: {s}"
        for earlier, later in pairwise(spans):
            assert earlier.end is not None, f"{customer}: an open span is followed by another"
            assert earlier.end <= later.start, f"{customer}: overlapping spans {earlier} {later}"
        # pairwise, independent of list order
        for i, a in enumerate(spans):
            for b in spans[i + 1 :]:
                a_end = a.end or datetime.max.replace(tzinfo=a.start.tzinfo)
                b_end = b.end or datetime.max.replace(tzinfo=b.start.tzinfo)
                assert a_end <= b.start or b_end <= a.start, f"{customer}: {a} overlaps {b}"
        # owner(at=...) reads the spans
        for s in spans:
            assert decision.owner(customer, at=s.start) == s.owner
        last = spans[-1]
        assert decision.owner(customer) == (last.owner if last.end is None else None)
    for customer in customers_of(events):
        if customer not in decision.ownerships:
            assert decision.owner(customer) is None
    json.dumps(dump(decision))  # the decision is JSON as it is


# ---------------------------------------------------------------------------- determinism


@PROFILE
@given(hx_histories(), st.booleans())
def test_evaluation_is_deterministic(events: list[Event], fresh_policy: bool) -> None:
    first = dump(hx().evaluate(events))
    other = pe.load_policy(POLICY_PATH) if fresh_policy else hx()
    second = dump(other.evaluate(events))
    assert first == second
    assert dump(hx().evaluate(iter(events))) == first  # any iterable


# ---------------------------------------------------------------------------- input order


def tie_preserving(events: list[Event], order: list[int]) -> list[Event]:
    """``events`` permuted by ``order``, except that events with equal timestamps keep their
    original relative order (semantics.md: ties keep their input order)."""
    groups: dict[datetime, list[Event]] = {}
    for e in events:
        groups.setdefault(instant(e["at"]), []).append(e)
    queues = {k: iter(v) for k, v in groups.items()}
    return [next(queues[instant(events[i]["at"])]) for i in order]


@PROFILE
@given(hx_histories(), st.data())
def test_input_order_of_distinct_timestamps_is_irrelevant(
    events: list[Event], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(range(len(events))), label="order")
    shuffled = tie_preserving(events, order)
    a, b = hx().evaluate(events), hx().evaluate(shuffled)
    assert dump(a)["ownerships"] == dump(b)["ownerships"]
    assert dump(a)["penalties"] == dump(b)["penalties"]
    assert dump(a)["obligations"] == dump(b)["obligations"]
    # the replay itself is the same, so everything else is too
    assert dump(a) == dump(b)


@PROFILE
@given(hx_histories())
def test_sorted_input_equals_unsorted_input(events: list[Event]) -> None:
    """Sorting by instant (stable) is exactly what the engine does first."""
    in_time_order = sorted(events, key=lambda e: instant(e["at"]))
    assert dump(hx().evaluate(events)) == dump(hx().evaluate(in_time_order))


# ---------------------------------------------------------------------------- as_of


@PROFILE
@given(hx_histories(), st.data(), st.booleans())
def test_as_of_equals_the_history_cut_at_as_of(
    events: list[Event], data: st.DataObject, as_text: bool
) -> None:
    t = data.draw(as_of_instants(events), label="as_of")
    cut = [e for e in events if instant(e["at"]) <= t]
    whole = hx().evaluate(events, as_of=as_of_value(t, as_text))
    part = hx().evaluate(cut, as_of=as_of_value(t, as_text))
    for customer in customers_of(events):
        assert whole.owner(customer) == part.owner(customer), customer
    a, b = dump(whole), dump(part)
    assert a["ownerships"] == b["ownerships"]
    assert a["penalties"] == b["penalties"]
    assert a["obligations"] == b["obligations"]
    assert a == b


@PROFILE
@given(hx_histories(), st.data())
def test_later_events_do_not_rewrite_the_past(events: list[Event], data: st.DataObject) -> None:
    """The decision as of t and the decision over the whole history agree on everything before
    t: owners at every instant < t, the penalties (a prefix), rejections, and duties already
    met (or met late) by t."""
    t = data.draw(as_of_instants(events), label="as_of")
    whole = hx().evaluate(events)
    part = hx().evaluate(events, as_of=t)
    if whole.as_of is not None and t > whole.as_of:
        return  # past the last event the two differ only in which deadlines have passed
    for customer in customers_of(events):
        for x in sorted(probes([whole, part], events)):
            if x < t:
                assert whole.owner(customer, at=x) == part.owner(customer, at=x), (customer, x)
    a, b = dump(whole), dump(part)
    assert a["penalties"][: len(b["penalties"])] == b["penalties"]
    assert a["rejected"][: len(b["rejected"])] == b["rejected"]
    for o in b["obligations"]:
        if o["status"] in ("met", "late"):
            assert o in a["obligations"], o


@PROFILE
@given(hx_histories())
def test_default_as_of_is_the_last_event(events: list[Event]) -> None:
    last = max(instant(e["at"]) for e in events)
    assert dump(hx().evaluate(events)) == dump(hx().evaluate(events, as_of=last))


# ---------------------------------------------------------------------------- accountability


@PROFILE
@given(hx_histories())
def test_everything_names_a_rule_a_clause_and_events(events: list[Event]) -> None:
    policy = hx()
    rules, clauses = set(policy.rule_ids), set(policy.clause_ids)
    ids = {e["id"] for e in events}
    decision = policy.evaluate(events)

    def check(entry: Any, what: str, needs_events: bool = True) -> None:
        assert entry.rule in rules, f"{what} names an unknown rule: {entry}"
        named = [entry.clause] if isinstance(entry.clause, str) else list(entry.clause)
        assert named, f"{what} names no clause: {entry}"
        assert set(named) <= clauses, f"{what} names an unknown clause: {entry}"
        assert set(entry.clauses) == set(named), entry
        if needs_events:
            assert entry.events, f"{what} names no events: {entry}"
            assert set(entry.events) <= ids, f"{what} names events not in the input: {entry}"

    for spans in decision.ownerships.values():
        for s in spans:
            check(s, "ownership span")
    for p in decision.penalties:
        check(p, "penalty")
        assert p.party in EMPLOYEES, p
        assert p.offence >= 1
        if p.amount_min is not None or p.amount_max is not None:
            assert p.amount_min is not None and p.amount_max is not None, p
            assert 0 <= p.amount_min <= p.amount_max, p
            assert p.currency == "CNY", p
        if p.units is not None:
            assert p.units >= 1 and p.amount_min is not None, p
    for o in decision.obligations:
        check(o, "obligation")
        assert o.what
    for r in decision.rejected:
        check(r, "rejection", needs_events=False)
        assert r.event in ids
    for entry in decision.trace:
        check(entry, "trace entry")
    assert set(decision.clauses) == clauses


# ---------------------------------------------------------------------------- duplicates


@PROFILE
@given(hx_histories(), st.data())
def test_duplicate_ids_are_reported_and_change_nothing(
    events: list[Event], data: st.DataObject
) -> None:
    """A second event with an id already seen is ignored when it is an exact copy, and
    reported in ``decision.duplicates``; a different event reusing the id is refused (PE212)."""
    n_dups = data.draw(st.integers(1, 5), label="copies")
    noisy = list(events)
    for _ in range(n_dups):
        original = data.draw(st.integers(0, len(events) - 1), label="original")
        pos = noisy.index(events[original])
        where = data.draw(st.integers(pos + 1, len(noisy)), label="insert at")
        impostor = data.draw(st.booleans(), label="different body")
        if impostor:
            body = dict(events[data.draw(st.integers(0, len(events) - 1), label="body")])
            body["id"] = events[original]["id"]
        else:
            body = dict(events[original])
        noisy.insert(where, body)
    first: dict[str, Event] = {}
    expected: list[str] = []
    reused: list[str] = []
    for e in noisy:
        if e["id"] in first:
            (expected if e == first[e["id"]] else reused).append(e["id"])
        first.setdefault(e["id"], e)
    if reused:
        with pytest.raises(pe.EventError) as info:
            hx().evaluate(noisy)
        assert [(p.code, p.event_id) for p in info.value.problems] == [
            ("PE212", eid) for eid in reused
        ]
        return

    clean, dirty = hx().evaluate(events), hx().evaluate(noisy)
    assert dirty.duplicates == expected
    assert clean.duplicates == []
    assert without(dump(clean), "notices") == without(dump(dirty), "notices")
    assert [n for n in dirty.notices if n.kind != "duplicate"] == clean.notices


# ---------------------------------------------------------------------------- offsets


@PROFILE
@given(hx_histories(), st.data())
def test_offset_of_timestamps_is_irrelevant(events: list[Event], data: st.DataObject) -> None:
    """The same instants written in UTC (``+00:00``) decide the same, also for ``as_of``."""
    t = data.draw(as_of_instants(events), label="as_of")
    utc = [{**e, "at": in_utc(e["at"])} for e in events]
    a = hx().evaluate(events, as_of=iso(t))
    b = hx().evaluate(utc, as_of=in_utc(iso(t)))
    assert dump(a) == dump(b)


# ---------------------------------------------------------------------------- obligations


def in_time(x: datetime, o: pe.Obligation) -> bool:
    """Whether something at ``x`` meets the obligation in time (always, without a deadline)."""
    if o.due is None:
        return True
    return x <= o.due if o.due_inclusive else x < o.due


@PROFILE
@given(hx_histories(), st.data())
def test_obligation_status_agrees_with_due_and_as_of(
    events: list[Event], data: st.DataObject
) -> None:
    """semantics.md: met (in time), late (after the due instant), open (not met, not yet due),
    overdue (not met, due instant passed), cancelled (withdrawn by an event, named in met_by);
    inclusive dues accept an event at the due instant."""
    t = data.draw(st.one_of(st.none(), as_of_instants(events)), label="as_of")
    decision = hx().evaluate(events, as_of=t)
    horizon = decision.as_of
    assert horizon is not None
    by_id = {e["id"]: e for e in events}
    for o in decision.obligations:
        assert o.due is None or o.opened <= o.due, o
        assert o.opened <= horizon, o
        if o.status in ("met", "late"):
            assert o.met_by in by_id and o.met_at is not None, o
            assert instant(by_id[o.met_by]["at"]) == o.met_at, o
            assert o.opened <= o.met_at <= horizon, o
            assert in_time(o.met_at, o) == (o.status == "met"), o
        elif o.status == "cancelled":  # withdrawn: met_by names the event that withdrew it
            assert o.met_by in by_id and o.met_at is not None, o
            assert instant(by_id[o.met_by]["at"]) == o.met_at, o
            assert o.opened <= o.met_at <= horizon, o
        else:
            assert o.met_by is None and o.met_at is None, o
            assert in_time(horizon, o) == (o.status == "open"), (o, horizon)


# ---------------------------------------------------------------------------- the strategy


@PROFILE
@given(hx_histories())
def test_histories_are_valid_input(events: list[Event]) -> None:
    """The strategy only draws valid input: unique ids, and the policy accepts every event."""
    assert len({e["id"] for e in events}) == len(events)
    decision = hx().evaluate(events)
    assert decision.duplicates == [] and decision.ignored == []
