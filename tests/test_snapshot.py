"""Incremental evaluation (issue #7): ``decision.snapshot()`` and ``policy.resume``.

The contract: resuming a snapshot with the events that came after it decides exactly what
evaluating the whole history decides (``model_dump(mode="json")`` equal: trace, penalties,
obligations, spans, notices, counters, flags, metrics, awards, labels, fired counts), also
through JSON, also over several resumes, on generated histories of every shipped pack; and a
snapshot that cannot be resumed (another policy, damaged, an earlier as_of) is refused with
its code.

Examples per property: 25 by default; ``HYPOTHESIS_PROFILE=ci`` 100 (derandomized),
``dev`` 10, ``thorough`` 1000.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policyengine as pe
from optional import require
from policyengine.backends import snapshot as snap
from policyengine.backends import snapshot_codec as codec
from policyengine.errors import SnapshotError
from policyengine.runtime import state
from policyengine.runtime.engine import World
from policyengine.runtime.events import prepare
from policyengine.times import instant_us
from policyengine.tools.testing import histories
from strategies import profile

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
PACKS = sorted(p.name for p in POLICIES.iterdir() if p.is_dir())
EXAMPLES = {"dev": 10, "ci": 100, "thorough": 1000}.get(
    os.environ.get("HYPOTHESIS_PROFILE", ""), 25
)
SETTINGS = settings(profile(), max_examples=EXAMPLES)

Event = dict[str, Any]
_LOADED: dict[str, pe.Policy] = {}


def pack(name: str) -> pe.Policy:
    """Loaded once per pack: policies are immutable, and loading would dominate the examples."""
    if name not in _LOADED:
        _LOADED[name] = pe.load_policy(POLICIES / name)
    return _LOADED[name]


def us(e: Event) -> int:
    at = instant_us(e["at"])
    assert at is not None
    return at


def text(at: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=at)).isoformat()


def dump(d: pe.Decision) -> dict[str, Any]:
    return d.model_dump(mode="json")


def assert_same(resumed: pe.Decision, full: pe.Decision) -> None:
    """Equal as JSON (Decimal('1.50') is not '1.5' there) and as Python values (a tuple is
    not a list there)."""
    a, b = dump(resumed), dump(full)
    if a != b:  # name the parts that differ before the (long) full comparison
        assert [k for k in a if a[k] != b.get(k)] == []
    assert a == b
    assert resumed.raw == full.raw
    assert resumed.model_dump() == full.model_dump()


# ---------------------------------------------------------------- properties


@st.composite
def split_histories(draw: st.DrawFn, policy: pe.Policy, parts: int) -> dict[str, Any]:
    """A generated history cut into ``parts`` at drawn instants (events at or before a cut go
    before it, except that an event exactly at a cut may go after it), sometimes with a late
    event (one of an earlier part sent again later) or a repeated id, and a final as_of."""
    events = draw(histories(policy, max_events=20))
    if draw(st.booleans()):  # ids derived from each event's place in the whole input
        for i in draw(st.sets(st.integers(0, len(events) - 1))):
            del events[i]["id"]
    instants = sorted({us(e) for e in events})
    second = 1_000_000
    candidates = sorted({t + d for t in instants for d in (-second, 0, second)})
    cuts = sorted(
        draw(st.lists(st.sampled_from(candidates), min_size=parts - 1, max_size=parts - 1))
    )
    split: list[list[Event]] = [[] for _ in range(parts)]
    for e in events:
        at = us(e)
        i = sum(1 for c in cuts if c < at)
        if i < parts - 1 and at == cuts[i] and draw(st.booleans()):
            i += 1  # exactly at the snapshot's as_of: still applied incrementally
        split[i].append(e)
    if draw(st.booleans()) and split[0]:
        late = draw(st.sampled_from(split[0]))
        split[0].remove(late)
        split[-1].append(late)
    if draw(st.booleans()) and split[0]:
        again = dict(draw(st.sampled_from(split[0])))
        if draw(st.booleans()):
            again["at"] = text(us(again) + second)  # another event under a seen id: PE212
        split[-1].append(again)
    latest = max([*instants, cuts[-1]])
    final: int | None = draw(
        st.sampled_from([None, cuts[-1], latest + second, latest + 40 * 86_400 * second])
    )
    if final is None and max(instants) < cuts[-1]:
        final = cuts[-1]  # the default (last event) would be before the snapshot's as_of
    return {"parts": split, "cuts": cuts, "final": final, "json": draw(st.booleans())}


def run_parts(policy: pe.Policy, case: dict[str, Any]) -> None:
    parts: list[list[Event]] = case["parts"]
    cuts: list[int] = case["cuts"]
    decision = policy.evaluate(parts[0], as_of=text(cuts[0]), resumable=True)
    assert_same(decision, policy.evaluate(parts[0], as_of=text(cuts[0])))
    sent = list(parts[0])
    for i in range(1, len(parts)):
        stored: dict[str, Any] = decision.snapshot()
        if case["json"]:
            stored = json.loads(json.dumps(stored))
        as_of = cuts[i] if i < len(parts) - 1 else case["final"]
        as_of_text = text(as_of) if as_of is not None else None
        seen = {e.get("id") for e in sent} - {None}
        late = any(us(e) < cuts[i - 1] and e.get("id") not in seen for e in parts[i])
        empty = not any(us(e) <= cuts[i - 1] for e in sent)  # no clock to continue
        sent += parts[i]
        try:
            whole = policy.evaluate(sent, as_of=as_of_text)
        except pe.EventError as exc:  # another event under a seen id: PE212 on both paths
            assert {p.code for p in exc.problems} == {"PE212"}
            with pytest.raises(pe.EventError) as refused:
                policy.resume(stored, parts[i], as_of=as_of_text)
            assert refused.value.problems == exc.problems
            return
        decision = policy.resume(stored, parts[i], as_of=as_of_text)
        assert_same(decision, whole)
        info = decision.resumed
        assert info is not None and info.mode == ("full" if late or empty else "incremental")


@pytest.mark.parametrize("name", PACKS)
def test_resume_equals_the_whole_history(name: str) -> None:
    policy = pack(name)

    @SETTINGS
    @given(split_histories(policy, 2))
    def run(case: dict[str, Any]) -> None:
        run_parts(policy, case)

    run()


@pytest.mark.parametrize("name", PACKS)
def test_chains_of_resumes_equal_the_whole_history(name: str) -> None:
    policy = pack(name)

    @SETTINGS
    @given(split_histories(policy, 3))
    def run(case: dict[str, Any]) -> None:
        run_parts(policy, case)

    run()


PERIODIC = """\
policy: {id: periodic, title: periodic, version: "1", timezone: Asia/Shanghai}
clauses:
  - {id: P-1, text: 原文, reading: owners}
  - {id: P-2, text: 原文, reading: periods}
  - {id: P-3, text: 原文, reading: scores}
params:
  window: {duration: 2 days}
events:
  touch: {fields: {customer: str, employee: str}}
  grab: {fields: {customer: str, employee: str}}
  scored: {fields: {employee: str, points: decimal}}
  bogus: {fields: {customer: str, employee: str}}
rules:
  - id: own
    clause: P-1
    on: touch
    when: {eq: [$subject.owner, null]}
    then: [{assign: $event.employee}, {add: {counter: touches, by: 1}}]
  - id: grab-one
    clause: P-1
    on: grab
    then: [{assign: $event.employee}]
  - id: grab-two
    clause: P-1
    on: grab
    then: [{assign: company}]
  - id: refuse-bogus
    clause: P-1
    on: bogus
    then: [{reject: not evidence}]
  - id: daily
    clause: P-2
    every: day
    then:
      - for_each_subject: {subjects: owned_by_employee}
        set: {flag: seen_day, value: $event.period}
  - id: weekly-recall
    clause: P-2
    every: week
    then:
      - assign: company
        for_each_subject: {subjects: owned_by_employee}
        when: {not: {history: {type: touch, match: {customer: $subject}, within: $params.window}}}
  - id: weekly-visit
    clause: P-2
    every: week
    then:
      - for_each_subject: {subjects: owned_by_employee}
        expect:
          event: touch
          match: {customer: $subject, employee: $subject.owner}
          within: $params.window
          obligation: touch each owned customer early in the week
          party: $subject.owner
          missed:
            - penalty: {party: $party, sanction: fine, amount: 10}
  - id: monthly-report
    clause: P-2
    on: touch
    expect:
      event: grab
      match: {customer: $event.customer}
      every: month
      key: $event.customer
      cancel_on: {event: bogus, match: {customer: $event.customer}}
      obligation: a grab each month
      party: $event.employee
metrics:
  - id: score
    clause: P-3
    every: week
    parties: {values: {type: scored, since: $event.start, field: employee}}
    value: {avg: {values: {type: scored, match: {employee: $party}, since: $event.start,
                           field: points}}}
    target: {ge: 50}
awards:
  - id: star
    clause: P-3
    title: star
    metric: score
labels:
  tier:
    clause: P-1
    cases:
      - {value: busy, when: {ge: [$subject.counters.touches, 2]}}
      - {value: quiet}
invariants:
  - id: owned
    holds: {ne: [$subject.owner, null]}
"""


@pytest.mark.parametrize("parts", [2, 3])
def test_periods_metrics_awards_and_conflicts_resume_exactly(parts: int) -> None:
    """The shipped packs have no ``every:`` rule and few closed metric periods: day, week and
    month ticks (past the horizon too), period closes, awards, rejections, conflicts, labels
    and invariants, on a policy that has them all."""
    policy = pe.load_policy_text(PERIODIC)

    @SETTINGS
    @given(split_histories(policy, parts))
    def run(case: dict[str, Any]) -> None:
        run_parts(policy, case)

    run()


# ---------------------------------------------------------------- the shipped examples

EXAMPLES_OF = {
    "customer_management.json": "customer_management",
    "huixiao_after_sales.json": "huixiao",
    "huixiao_march.json": "huixiao",
    "online_store.json": "online_store",
    "service_system.json": "service_system",
}


def example(file: str) -> tuple[pe.Policy, list[Event], int]:
    """The pack, the history, and its middle instant (the median event's)."""
    events: list[Event] = json.loads((ROOT / "examples" / file).read_text(encoding="utf-8"))
    instants = sorted(us(e) for e in events)
    return pack(EXAMPLES_OF[file]), events, instants[len(instants) // 2]


def halves(events: list[Event], mid: int) -> tuple[list[Event], list[Event]]:
    return [e for e in events if us(e) <= mid], [e for e in events if us(e) > mid]


@pytest.mark.parametrize("file", sorted(EXAMPLES_OF))
def test_example_histories_resumed_from_their_midpoint(file: str) -> None:
    policy, events, mid = example(file)
    first, rest = halves(events, mid)
    stored = json.loads(
        json.dumps(policy.evaluate(first, as_of=text(mid), resumable=True).snapshot())
    )
    resumed = policy.resume(stored, rest)
    assert resumed.resumed == snap.ResumeInfo("incremental", len(rest))
    assert_same(resumed, policy.evaluate(events))
    # and a month further on, with no new event: deadlines and periods move on alone
    later = text(max(us(e) for e in events) + 31 * 86_400_000_000)
    assert_same(
        policy.resume(resumed.snapshot(), [], as_of=later), policy.evaluate(events, as_of=later)
    )


def test_a_long_customer_history_resumed_one_event_at_a_time() -> None:
    policy, events, _ = example("huixiao_march.json")
    events = sorted(events, key=us)
    decision = policy.evaluate(events[:1], resumable=True)
    for i in range(1, len(events)):
        decision = policy.resume(json.loads(json.dumps(decision.snapshot())), events[i : i + 1])
        assert decision.resumed is not None and decision.resumed.mode == "incremental"
    assert_same(decision, policy.evaluate(events))


def test_a_late_event_makes_resume_evaluate_the_whole_history() -> None:
    policy, events, mid = example("huixiao_march.json")
    first, rest = halves(events, mid)
    late = first.pop(len(first) // 2)
    stored = policy.evaluate(first, as_of=text(mid), resumable=True).snapshot()
    resumed = policy.resume(stored, [*rest, late])
    info = resumed.resumed
    assert info is not None and info.mode == "full" and info.applied == len(events)
    assert info.reason == "1 new event(s) before the snapshot's as_of"
    assert_same(resumed, policy.evaluate([*first, *rest, late]))
    # what it decided can itself be resumed
    assert policy.resume(resumed.snapshot(), []).resumed == snap.ResumeInfo("incremental", 0)


def test_an_event_exactly_at_the_snapshots_as_of_is_applied_incrementally() -> None:
    policy, events, mid = example("online_store.json")
    first, rest = halves(events, mid)
    at_mid = [e for e in first if us(e) == mid]
    assert at_mid
    moved = at_mid[-1]
    first.remove(moved)
    stored = policy.evaluate(first, as_of=text(mid), resumable=True).snapshot()
    resumed = policy.resume(stored, [moved, *rest])
    assert resumed.resumed == snap.ResumeInfo("incremental", 1 + len(rest))
    assert_same(resumed, policy.evaluate([*first, moved, *rest]))


def test_repeated_ids_across_snapshot_and_new_events_are_reported_as_evaluate_does() -> None:
    policy, events, mid = example("service_system.json")
    first, rest = halves(events, mid)
    same = dict(first[0])
    other = {**first[1], "at": text(us(first[1]) + 1_000_000)}
    stored = policy.evaluate(first, as_of=text(mid), resumable=True).snapshot()
    resumed = policy.resume(stored, [same, *rest])
    assert resumed.resumed is not None and resumed.resumed.mode == "incremental"
    full = policy.evaluate([*first, same, *rest])
    assert [(n.event, n.detail) for n in full.notices if n.kind == "duplicate"] == [
        (same["id"], "repeated event ignored"),
    ]
    assert_same(resumed, full)
    # a different event reusing a stored id is refused (PE212), as evaluate refuses it
    with pytest.raises(pe.EventError) as by_resume:
        policy.resume(stored, [same, *rest, other])
    with pytest.raises(pe.EventError) as by_evaluate:
        policy.evaluate([*first, same, *rest, other])
    assert by_resume.value.problems == by_evaluate.value.problems
    assert [p.code for p in by_resume.value.problems] == ["PE212"]


def test_events_without_ids_get_the_ids_evaluate_derives() -> None:
    policy, events, mid = example("customer_management.json")
    events = [{k: v for k, v in e.items() if k != "id"} for e in events]
    first, rest = halves(events, mid)
    stored = policy.evaluate(first, as_of=text(mid), resumable=True).snapshot()
    assert_same(policy.resume(stored, rest), policy.evaluate([*first, *rest]))


def test_an_empty_snapshot_resumes_into_a_full_evaluation() -> None:
    policy, events, _ = example("online_store.json")
    start = text(min(us(e) for e in events) - 1)
    for stored in (
        policy.evaluate([], resumable=True).snapshot(),
        policy.evaluate([], as_of=start, resumable=True).snapshot(),
    ):
        resumed = policy.resume(stored, events)
        assert resumed.resumed is not None and resumed.resumed.mode == "full"
        assert_same(resumed, policy.evaluate(events))


def test_events_after_the_first_as_of_wait_in_the_snapshot() -> None:
    """Events sent before their time are kept and applied when the clock reaches them."""
    policy, events, mid = example("huixiao_after_sales.json")
    stored = policy.evaluate(events, as_of=text(mid), resumable=True).snapshot()
    assert_same(policy.resume(stored, []), policy.evaluate(events))
    assert snap.history_of(stored) == events


def test_values_round_trip_exactly() -> None:
    values = [
        Decimal("1.50"),
        Decimal("-0"),
        Decimal("1E+2"),
        ("a", ("b", 1), None),
        ["x", ("y",)],
        {"$d": "not a tag", "k": [Decimal("0.10")]},
        {1: "int key", (2, 3): "tuple key"},
        1.25,
        2**70,
        True,
        datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8))),
        date(2026, 3, 1),
    ]
    for v in values:
        back = snap._loads(json.dumps(snap._enc(v)))
        assert back == v and type(back) is type(v)
        assert str(back) == str(v)


def test_decimal_event_fields_keep_their_scale() -> None:
    policy = pe.load_policy_text(MINI)
    events: list[Event] = [
        {
            "id": "b1",
            "type": "bought",
            "at": "2026-03-02T09:00:00+08:00",
            "customer": "C1",
            "employee": "E1",
            "amount": "1.50",
        },
        {
            "id": "b2",
            "type": "bought",
            "at": "2026-03-03T09:00:00+08:00",
            "customer": "C1",
            "employee": "E1",
            "amount": Decimal("2.250"),
        },
    ]
    first = policy.evaluate(events[:1], resumable=True)
    resumed = policy.resume(json.loads(json.dumps(first.snapshot())), events[1:])
    assert resumed.counters["C1"]["spent"] == Decimal("3.750")
    assert_same(resumed, policy.evaluate(events))


# ---------------------------------------------------------------- refusals

MINI = """\
policy: {id: mini, title: mini, version: "1"}
clauses:
  - {id: M-1, text: 2天内回访, reading: a visit within 2 days of a purchase}
params:
  window: {duration: 2 days}
events:
  bought: {fields: {customer: str, employee: str, amount: decimal}}
  visited: {fields: {customer: str, employee: str}}
rules:
  - id: visit
    clause: M-1
    on: bought
    then: [{assign: $event.employee}, {add: {counter: spent, by: $event.amount}}]
    expect: {event: visited, match: {customer: $event.customer}, within: $params.window,
             obligation: visit, party: $event.employee}
"""
BOUGHT = {
    "id": "b1",
    "type": "bought",
    "at": "2026-03-02T09:00:00+08:00",
    "customer": "C1",
    "employee": "E1",
    "amount": "10",
}
VISITED = {
    "id": "v1",
    "type": "visited",
    "at": "2026-03-03T09:00:00+08:00",
    "customer": "C1",
    "employee": "E1",
}


def mini_snapshot() -> dict[str, Any]:
    return pe.load_policy_text(MINI).evaluate([BOUGHT], resumable=True).snapshot()


def refused(code: str, policy: pe.Policy, stored: Any, **kw: Any) -> SnapshotError:
    with pytest.raises(SnapshotError) as info:
        policy.resume(stored, [VISITED], **kw)
    assert info.value.codes == [code]
    assert isinstance(info.value, pe.PolicyEngineError)
    return info.value


def test_a_snapshot_is_plain_json() -> None:
    stored = mini_snapshot()

    def plain(v: Any) -> bool:
        if isinstance(v, dict):
            return all(type(k) is str and plain(x) for k, x in v.items())
        if isinstance(v, list):
            return all(plain(x) for x in v)
        return v is None or type(v) in (str, int, bool)

    assert plain(stored)
    assert json.loads(json.dumps(stored)) == stored


def test_a_store_that_reorders_keys_and_reformats_changes_nothing() -> None:
    """As PostgreSQL jsonb does: the digest is over canonical texts, order is kept in lists."""
    policy, events, mid = example("huixiao_march.json")
    first, rest = halves(events, mid)
    stored = policy.evaluate(first, as_of=text(mid), resumable=True).snapshot()
    stored = json.loads(json.dumps(stored, sort_keys=True, indent=2, ensure_ascii=True))
    assert_same(policy.resume(stored, rest), policy.evaluate(events))


def test_a_duty_open_in_the_snapshot_and_met_after_it_stays_met() -> None:
    """An obligation carried from a snapshot is written again once its duty changes it."""
    policy = pe.load_policy_text(MINI)
    stored = policy.evaluate([BOUGHT], resumable=True).snapshot()
    met = policy.resume(stored, [VISITED])
    assert [o.status for o in met.obligations] == ["met"]
    later = policy.resume(met.snapshot(), [], as_of="2026-03-10T00:00:00+08:00")
    assert [(o.status, o.met_by) for o in later.obligations] == [("met", "v1")]
    assert_same(later, policy.evaluate([BOUGHT, VISITED], as_of="2026-03-10T00:00:00+08:00"))
    overdue = policy.resume(stored, [], as_of="2026-03-10T00:00:00+08:00")
    assert [o.status for o in overdue.obligations] == ["overdue"]
    late = policy.resume(overdue.snapshot(), [{**VISITED, "at": "2026-03-11T00:00:00+08:00"}])
    assert [o.status for o in late.obligations] == ["late"]


def test_the_repeat_notices_are_those_of_prepare() -> None:
    policy = pe.load_policy_text(MINI)
    history = prepare(policy.compiled, [BOUGHT, BOUGHT])
    assert [detail for _, detail in history.duplicates] == [snap._REPEATED]
    with pytest.raises(pe.EventError) as info:
        prepare(policy.compiled, [BOUGHT, BOUGHT, {**BOUGHT, "amount": "11"}])
    assert [(p.code, p.event_id, p.field) for p in info.value.problems] == [
        ("PE212", "b1", "id")
    ]


def test_a_snapshot_of_other_parameters_is_refused() -> None:
    other = pe.load_policy_text(MINI, params={"window": "3 days"})
    error = refused("PE501", other, mini_snapshot())
    assert error.first.hint is not None
    assert error.first.hint.startswith("re-evaluate the full history with this policy")
    # the events it holds are given back, to evaluate in full
    full = other.evaluate([*snap.history_of(mini_snapshot()), VISITED])
    assert full.obligations[0].status == "met"


def test_a_snapshot_of_an_edited_policy_is_refused() -> None:
    edited = pe.load_policy_text(MINI.replace("obligation: visit", "obligation: visit them"))
    refused("PE501", edited, mini_snapshot())
    refused("PE501", pack("online_store"), mini_snapshot())


def test_a_snapshot_of_another_format_version_is_refused() -> None:
    stored = mini_snapshot()
    stored["version"] = snap.FORMAT_VERSION + 1
    refused("PE501", pe.load_policy_text(MINI), stored)


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: None,
        lambda s: [s],
        lambda s: {**s, "format": "something else"},
        lambda s: {k: v for k, v in s.items() if k != "state"},
        lambda s: {**s, "records": {**s["records"], "trace": None}},
        lambda s: {**s, "applied": 0},
        lambda s: {**s, "digest": "0" * 64},
        lambda s: {**s, "as_of": s["as_of"] - 1},
        lambda s: {**s, "state": s["state"].replace('"seq":', '"seq":1')},
        lambda s: {**s, "inputs": [s["inputs"][0].replace("E1", "E2")]},
        lambda s: {**s, "records": {**s["records"], "trace": s["records"]["trace"][1:]}},
    ],
)
def test_a_damaged_snapshot_is_refused(damage: Any) -> None:
    refused("PE502", pe.load_policy_text(MINI), damage(copy.deepcopy(mini_snapshot())))


def test_a_damaged_snapshot_with_a_recomputed_digest_is_still_refused_clearly() -> None:
    def edited(change: Any) -> dict[str, Any]:
        stored = mini_snapshot()
        state = json.loads(stored["state"])
        change(state)
        stored["state"] = json.dumps(state)
        stored["digest"] = snap._digest(stored)
        return stored

    for change in (
        lambda state: state["fields"].__setitem__("timers", [[0, 0, ["nonsense", 1]]]),
        lambda state: state.pop("Pending"),
        lambda state: state["fields"].__setitem__("seq", "1"),
        lambda state: state.__setitem__("extras", [{"$x": 1}]),
    ):
        refused("PE502", pe.load_policy_text(MINI), edited(change))


def test_resume_before_the_snapshots_as_of_is_refused() -> None:
    policy = pe.load_policy_text(MINI)
    stored = policy.evaluate([BOUGHT], as_of="2026-03-05T00:00:00+08:00", resumable=True).snapshot()
    error = refused("PE503", policy, stored, as_of="2026-03-04T00:00:00+08:00")
    assert "2026-03-05" in str(error)
    # by default as_of is the last event's instant: here before the snapshot's
    error = refused("PE503", policy, stored)
    assert "last event" in str(error)
    later = policy.resume(stored, [VISITED], as_of="2026-03-05T00:00:00+08:00")
    assert_same(later, policy.evaluate([BOUGHT, VISITED], as_of="2026-03-05T00:00:00+08:00"))


def test_native_decisions_snapshot_unless_evaluated_lean() -> None:
    policy = pe.load_policy_text(MINI)
    assert policy.evaluate([BOUGHT]).snapshot()["applied"] == 1  # the default keeps state
    with pytest.raises(SnapshotError) as info:
        policy.evaluate([BOUGHT], resumable=False).snapshot()
    assert info.value.codes == ["PE504"]
    assert "resumable=False" in str(info.value)
    require("durable")
    with pytest.raises(SnapshotError) as info:
        policy.evaluate([BOUGHT], backend="durable").snapshot()
    assert info.value.codes == ["PE504"]
    with pytest.raises(SnapshotError) as info:
        policy.evaluate([BOUGHT], backend="durable", resumable=True)
    assert info.value.codes == ["PE504"]
    assert policy.evaluate([BOUGHT]).resumed is None


def test_values_a_snapshot_cannot_store_are_refused_when_it_is_taken() -> None:
    policy = pe.load_policy_text(
        MINI.replace('version: "1"}', 'version: "1", unknown_events: ignore}')
    )
    odd = {"id": "x1", "type": "undeclared", "at": "2026-03-02T10:00:00+08:00", "what": object()}
    decision = policy.evaluate([BOUGHT, odd])
    assert decision.ignored == ["x1"]  # evaluating accepts it
    with pytest.raises(SnapshotError) as info:
        decision.snapshot()
    assert info.value.codes == ["PE504"]


def test_event_errors_in_new_events_are_reported_as_evaluate_does() -> None:
    policy = pe.load_policy_text(MINI)
    bad = {**VISITED, "employee": ""}
    with pytest.raises(pe.EventError) as resumed:
        policy.resume(mini_snapshot(), [bad])
    with pytest.raises(pe.EventError) as full:
        policy.evaluate([BOUGHT, bad])
    assert str(resumed.value) == str(full.value)


def test_state_the_format_does_not_know_stops_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    """The World's attributes are its declared state: one not declared cannot be set, and a
    declared one the codec cannot store refuses snapshots instead of being lost on resume."""
    world = World(pe.load_policy_text(MINI).compiled)
    with pytest.raises(AttributeError):
        world.cache_of_something = {}  # type: ignore[attr-defined]
    declared = dict(state.STATE)
    declared["cache_of_something"] = state.keep("a shape nobody stores", dict)
    monkeypatch.setattr(codec, "STATE", declared)
    with pytest.raises(SnapshotError) as info:
        pe.load_policy_text(MINI).evaluate([BOUGHT], resumable=True)
    assert info.value.codes == ["PE504"]
    assert "cache_of_something" in str(info.value)
    monkeypatch.setattr(codec, "STATE", state.STATE)
    monkeypatch.setattr(state.Pending, "FIELDS", {**state.Pending.FIELDS, "due": "clockwork"})
    with pytest.raises(SnapshotError, match=r"Pending\.due"):
        pe.load_policy_text(MINI).evaluate([BOUGHT], resumable=True)


def test_snapshots_do_not_share_state_with_their_decisions() -> None:
    policy = pe.load_policy_text(MINI)
    first = policy.evaluate([BOUGHT], resumable=True)
    stored = first.snapshot()
    resumed = policy.resume(stored, [VISITED])
    again = policy.resume(stored, [VISITED])  # the snapshot is not consumed
    assert_same(resumed, again)
    assert first.snapshot() == stored  # nor was the first decision's state touched
    assert first.obligations[0].status == "open"
