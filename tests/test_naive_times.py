"""Local times without a UTC offset: refused by default (PE204), read in the policy's timezone
with the explicit opt-in ``naive_times="policy"`` (``--naive-times policy``), the same way by
``evaluate``, ``resume``, ``evaluate_many`` and the command line."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine.cli import main
from policyengine.errors import Code
from policyengine.runtime.events import local_instant, localise, prepare
from policyengine.times import instant_us

ROOT = Path(__file__).resolve().parents[1]

POLICY = """\
policy: {id: naive, title: naive times, version: "1", timezone: %(tz)s, currency: CNY,
         subject: customer, unknown_events: reject}
clauses:
  - {id: N-1, text: 顾客报名后当天必须回访, reading: Call the same day.}
events:
  registered:
    fields: {customer: str, employee: str, promised: "time?"}
  called:
    fields: {customer: str, employee: str}
rules:
  - id: call-same-day
    clause: N-1
    on: registered
    expect:
      event: called
      match: {customer: $event.customer}
      within: same day
      obligation: call the customer the same day
      party: $event.employee
"""


def policy_in(tz: str) -> pe.Policy:
    return pe.load_policy_text(POLICY % {"tz": tz}, "naive.yaml")


@pytest.fixture
def shanghai() -> pe.Policy:
    return policy_in("Asia/Shanghai")


@pytest.fixture
def berlin() -> pe.Policy:
    return policy_in("Europe/Berlin")


def reg(eid: str, at: Any, customer: str = "C1", **extra: Any) -> dict[str, Any]:
    event = {"id": eid, "type": "registered", "at": at, "customer": customer, "employee": "li"}
    return {**event, **extra}


def call(eid: str, at: Any, customer: str = "C1") -> dict[str, Any]:
    return {"id": eid, "type": "called", "at": at, "customer": customer, "employee": "li"}


def history(naive: bool) -> list[dict[str, Any]]:
    """Two customers over two days: C1 called in time, C2 (registered late) never called."""
    suffix = "" if naive else "+08:00"
    return [
        reg("r1", "2026-03-01T10:00:00" + suffix),
        call("c1", "2026-03-01T23:30:00" + suffix),  # in time only if read as local time
        reg("r2", "2026-03-01T22:00:00" + suffix, customer="C2"),
        reg("r3", "2026-03-02T09:00:00" + suffix, customer="C3"),
        call("c3", "2026-03-02T12:00:00" + suffix, customer="C3"),
    ]


def dump(decision: pe.Decision) -> Any:
    return decision.model_dump(mode="json")


# ------------------------------------------------------------------ the default: refused


def test_default_still_refuses_a_naive_at(shanghai: pe.Policy) -> None:
    with pytest.raises(pe.EventError) as info:
        shanghai.evaluate([reg("e1", "2026-03-01T10:00:00")])
    [p] = info.value.problems
    assert p.code == Code.EVENT_NO_OFFSET
    assert (p.event_id, p.field) == ("e1", "at")
    assert p.hint is not None
    assert 'naive_times="policy"' in p.hint and "--naive-times policy" in p.hint


def test_default_refuses_a_naive_datetime_and_a_naive_time_field(shanghai: pe.Policy) -> None:
    with pytest.raises(pe.EventError) as info:
        shanghai.evaluate(
            [
                reg("e1", datetime(2026, 3, 1, 10)),
                reg("e2", "2026-03-01T10:00:00+08:00", promised="2026-03-02T10:00:00"),
            ]
        )
    first, second = info.value.problems
    assert (first.code, first.event_id, first.field) == (Code.EVENT_NO_OFFSET, "e1", "at")
    # a `time` field keeps its code (PE203), and its hint names the opt-in too
    assert (second.code, second.event_id, second.field) == (
        Code.EVENT_BAD_FIELD,
        "e2",
        "promised",
    )
    assert second.hint is not None and 'naive_times="policy"' in second.hint


def test_the_hint_names_the_opt_in_only_where_it_helps(shanghai: pe.Policy) -> None:
    with pytest.raises(pe.EventError) as info:
        shanghai.evaluate([reg("e1", 1772416800), reg("e2", "yesterday")])
    for p in info.value.problems:
        assert p.code == Code.EVENT_NO_OFFSET
        assert p.hint is not None and "naive_times" not in p.hint


def test_an_unknown_option_is_refused(shanghai: pe.Policy) -> None:
    for call_it in (
        lambda: prepare(shanghai.compiled, [], naive_times="local"),  # type: ignore[arg-type]
        lambda: shanghai.evaluate([], naive_times="utc"),  # type: ignore[arg-type]
        lambda: shanghai.evaluate_many([], naive_times=None),  # type: ignore[arg-type]
    ):
        with pytest.raises(pe.EventError) as info:
            call_it()
        [p] = info.value.problems
        assert p.code == Code.MALFORMED_HISTORY
        assert (p.event_id, p.field) == ("#history", "naive_times")


# ------------------------------------------------------------------ naive_times="policy"


@pytest.mark.parametrize(
    "naive", ["2026-03-01T10:00:00", "2026-03-01 10:00", " 2026-03-01T10:00:00.000 "]
)
def test_a_naive_text_is_local_time_of_the_policy(shanghai: pe.Policy, naive: str) -> None:
    got = prepare(shanghai.compiled, [reg("e1", naive)], naive_times="policy")
    want = prepare(shanghai.compiled, [reg("e1", "2026-03-01T10:00:00+08:00")])
    assert got.events == want.events
    assert got.texts["e1"] == "2026-03-01T10:00:00+08:00"  # kept with its offset


def test_a_naive_datetime_is_local_time_too(shanghai: pe.Policy) -> None:
    got = prepare(shanghai.compiled, [reg("e1", datetime(2026, 3, 1, 10))], naive_times="policy")
    assert got.events[0]["at"] == instant_us("2026-03-01T02:00:00Z")


def test_same_decision_as_the_offset_form(shanghai: pe.Policy) -> None:
    offset = shanghai.evaluate(history(naive=False))
    naive = shanghai.evaluate(history(naive=True), naive_times="policy")
    assert dump(naive) == dump(offset)
    # read as UTC instead, the 23:30 call would be on the next local day: the reading matters
    utc = shanghai.evaluate([{**e, "at": e["at"] + "Z"} for e in history(naive=True)])
    assert dump(utc) != dump(offset)


def test_a_time_field(shanghai: pe.Policy) -> None:
    got = prepare(
        shanghai.compiled,
        [reg("e1", "2026-03-01T10:00:00+08:00", promised="2026-03-02T18:30:00")],
        naive_times="policy",
    )
    assert got.events[0]["promised"] == instant_us("2026-03-02T18:30:00+08:00")


def test_mixed_offset_and_naive(shanghai: pe.Policy) -> None:
    events = [
        reg("a", "2026-03-01T10:00:00"),  # local: 02:00Z
        reg("b", "2026-03-01T03:00:00Z", customer="C2"),  # an offset: read as given
        reg("c", "2026-03-01T10:30:00+09:00", customer="C3", promised="2026-03-01T12:00:00"),
    ]
    got = prepare(shanghai.compiled, events, naive_times="policy")
    assert [e["id"] for e in got.events] == ["c", "a", "b"]  # 01:30Z, 02:00Z, 03:00Z
    assert [e["at"] for e in got.events] == [
        instant_us("2026-03-01T01:30:00Z"),
        instant_us("2026-03-01T02:00:00Z"),
        instant_us("2026-03-01T03:00:00Z"),
    ]
    assert got.events[0]["promised"] == instant_us("2026-03-01T04:00:00Z")
    decision = shanghai.evaluate(events, naive_times="policy")
    assert decision.notices == []


def test_a_date_alone_is_still_refused(shanghai: pe.Policy) -> None:
    with pytest.raises(pe.EventError) as info:
        shanghai.evaluate([reg("e1", "2026-03-01")], naive_times="policy")
    [p] = info.value.problems
    assert (p.code, p.event_id, p.field) == (Code.EVENT_NO_OFFSET, "e1", "at")


def test_other_errors_are_reported_as_before(shanghai: pe.Policy) -> None:
    bad = [reg("e1", "2026-03-01T10:00:00", customer=""), {"id": "e2", "type": "nope", "at": 1}]
    with pytest.raises(pe.EventError) as default:
        shanghai.evaluate(bad[1:])
    with pytest.raises(pe.EventError) as opted:
        shanghai.evaluate(bad, naive_times="policy")
    assert [p.code for p in opted.value.problems] == [
        "PE203",
        *(p.code for p in default.value.problems),
    ]


def test_localise_leaves_the_input_alone(shanghai: pe.Policy) -> None:
    events = [reg("a", "2026-03-01T10:00:00"), reg("b", "2026-03-01T10:00:00+08:00"), 5]
    out = localise(shanghai.compiled, events)
    assert events[0]["at"] == "2026-03-01T10:00:00"  # type: ignore[index]
    assert out[0] == {**events[0], "at": "2026-03-01T10:00:00+08:00"}  # type: ignore[dict-item]
    assert out[1] is events[1] and out[2] == 5  # unchanged items are passed through
    with pytest.raises(pe.EventError):
        localise(shanghai.compiled, "not a history")


def test_a_derived_id_is_that_of_the_offset_form(shanghai: pe.Policy) -> None:
    naive = {k: v for k, v in reg("x", "2026-03-01T10:00:00").items() if k != "id"}
    offset = {**naive, "at": "2026-03-01T10:00:00+08:00"}
    got = prepare(shanghai.compiled, [naive, offset], naive_times="policy")
    assert len(got.events) == 2 and got.events[0]["id"] != got.events[1]["id"]  # by index
    first = prepare(shanghai.compiled, [naive], naive_times="policy").events[0]["id"]
    assert first == prepare(shanghai.compiled, [offset]).events[0]["id"]


def test_as_of_may_be_naive_too(shanghai: pe.Policy) -> None:
    events = history(naive=True)
    got = shanghai.evaluate(events, as_of="2026-03-01T23:00:00", naive_times="policy")
    want = shanghai.evaluate(history(naive=False), as_of="2026-03-01T23:00:00+08:00")
    assert dump(got) == dump(want)


# ------------------------------------------------------------------ summer time (fold=0)


def test_a_wall_time_summer_time_skips(berlin: pe.Policy) -> None:
    # 2026-03-29: Berlin's clocks go from 02:00 CET to 03:00 CEST; 02:30 does not exist.
    # fold=0 reads it with the offset before the change (+01:00): 01:30Z, shown as 03:30 CEST
    found = local_instant("2026-03-29T02:30:00", "Europe/Berlin")
    assert found is not None and found.isoformat() == "2026-03-29T03:30:00+02:00"
    got = prepare(berlin.compiled, [reg("e1", "2026-03-29T02:30:00")], naive_times="policy")
    assert got.events[0]["at"] == instant_us("2026-03-29T01:30:00Z")
    assert got.texts["e1"] == "2026-03-29T03:30:00+02:00"
    decision = berlin.evaluate([reg("e1", "2026-03-29T02:30:00")], naive_times="policy")
    assert dump(decision) == dump(berlin.evaluate([reg("e1", "2026-03-29T01:30:00Z")]))


def test_a_wall_time_summer_time_repeats(berlin: pe.Policy) -> None:
    # 2026-10-25: 02:30 happens twice (CEST, then CET); fold=0 is the first, +02:00
    got = prepare(berlin.compiled, [reg("e1", "2026-10-25T02:30:00")], naive_times="policy")
    assert got.events[0]["at"] == instant_us("2026-10-25T00:30:00Z")
    assert got.texts["e1"] == "2026-10-25T02:30:00+02:00"


def test_winter_and_summer_offsets(berlin: pe.Policy) -> None:
    events = [reg("w", "2026-01-15T10:00:00"), reg("s", "2026-07-15T10:00:00", customer="C2")]
    got = prepare(berlin.compiled, events, naive_times="policy")
    assert [got.texts["w"], got.texts["s"]] == [
        "2026-01-15T10:00:00+01:00",
        "2026-07-15T10:00:00+02:00",
    ]


# ------------------------------------------------------------------ every backend agrees


def test_evaluate_many_agrees(shanghai: pe.Policy) -> None:
    want = dump(shanghai.evaluate(history(naive=False)))
    for shards in (1, 2):
        got = shanghai.evaluate_many(history(naive=True), shards=shards, naive_times="policy")
        assert dump(got) == want


def test_evaluate_many_refuses_by_default(shanghai: pe.Policy) -> None:
    with pytest.raises(pe.EventError) as info:
        shanghai.evaluate_many(history(naive=True), shards=2)
    assert Code.EVENT_NO_OFFSET in info.value.codes


def test_resume_agrees(shanghai: pe.Policy) -> None:
    events = history(naive=True)
    want = dump(shanghai.evaluate(history(naive=False)))
    first = shanghai.evaluate(events[:2], naive_times="policy")
    stored = first.snapshot()
    assert all("+08:00" in text for text in stored["inputs"])  # stored with their offsets
    resumed = shanghai.resume(stored, events[2:], naive_times="policy")
    assert dump(resumed) == want
    with pytest.raises(pe.EventError) as info:
        shanghai.resume(stored, events[2:])
    assert Code.EVENT_NO_OFFSET in info.value.codes


def test_the_lean_path_agrees(shanghai: pe.Policy) -> None:
    want = dump(shanghai.evaluate(history(naive=False)))
    lean = shanghai.evaluate(history(naive=True), resumable=False, naive_times="policy")
    assert dump(lean) == want


def test_a_shipped_pack_with_local_times() -> None:
    """The customer-management example with every offset removed decides the same, read in
    the pack's timezone (Asia/Shanghai, where every example time is +08:00)."""
    policy = pe.load_policy(ROOT / "policies" / "customer_management")
    data = json.loads((ROOT / "examples" / "customer_management.json").read_text("utf-8"))
    events = data["events"] if isinstance(data, dict) else data
    assert all(e["at"].endswith("+08:00") for e in events)
    naive = [{**e, "at": e["at"].removesuffix("+08:00")} for e in events]
    assert dump(policy.evaluate(naive, naive_times="policy")) == dump(policy.evaluate(events))


# ------------------------------------------------------------------ the command line


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    policy = tmp_path / "naive.yaml"
    policy.write_text(POLICY % {"tz": "Asia/Shanghai"}, encoding="utf-8")
    events = tmp_path / "history.json"
    events.write_text(json.dumps(history(naive=True), ensure_ascii=False), encoding="utf-8")
    return str(policy), str(events)


def test_cli_eval_naive_times(files: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    policy, events = files
    assert main(["eval", policy, events, "--format", "json"]) == 1
    err = capsys.readouterr().err
    assert "PE204" in err and "--naive-times policy" in err
    assert main(["eval", policy, events, "--format", "json", "--naive-times", "policy"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = (
        pe.load_policy(policy)
        .evaluate(history(naive=False))
        .model_dump(mode="json", exclude={"trace"})
    )
    assert got == want


def test_cli_explain_naive_times(
    files: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, events = files
    assert main(["explain", policy, events, "--subject", "C2"]) == 1
    assert "PE204" in capsys.readouterr().err
    args = ["explain", policy, events, "--subject", "C2", "--naive-times", "policy"]
    assert main([*args, "--at", "2026-03-01T22:30:00"]) == 0
    out = capsys.readouterr().out
    # the events are read as local times: shown as the policy's local time (issue 17)
    assert "C2" in out and "event r2: registered at 2026-03-01 22:00" in out


def test_cli_refuses_an_unknown_option(
    files: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    policy, events = files
    with pytest.raises(SystemExit) as info:
        main(["eval", policy, events, "--naive-times", "utc"])
    assert info.value.code == 2  # argparse: invalid choice
    assert "invalid choice" in capsys.readouterr().err


WORKING_DAY = (POLICY % {"tz": "Asia/Shanghai"}).replace(
    "within: same day", "within: 1 working day"
)


def test_cli_calendar_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--calendar`` reaches ``load_policy``: a Saturday made a working day moves the
    deadline of a Friday registration from Monday to Saturday, and Monday's call is late."""
    policy = tmp_path / "wd.yaml"
    policy.write_text(WORKING_DAY, encoding="utf-8")
    events = tmp_path / "h.json"
    friday = [reg("r1", "2026-03-06T10:00:00"), call("c1", "2026-03-09T09:00:00")]
    events.write_text(json.dumps(friday), encoding="utf-8")
    company = tmp_path / "company.yaml"
    company.write_text("calendar:\n  workdays: [2026-03-07]\n", encoding="utf-8")
    args = ["eval", str(policy), str(events), "--format", "json", "--naive-times", "policy"]
    assert main(args) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*args, "--calendar", str(company)]) == 0
    with_calendar = json.loads(capsys.readouterr().out)
    assert plain != with_calendar
    want = pe.load_policy(policy, calendar=company).evaluate(friday, naive_times="policy")
    assert with_calendar == want.model_dump(mode="json", exclude={"trace"})
    company.write_text("calendar:\n  workdayz: [2026-03-07]\n", encoding="utf-8")
    assert main([*args, "--calendar", str(company)]) == 1
    assert "company.yaml" in capsys.readouterr().err
    assert main([*args, "--calendar", str(tmp_path / "missing.yaml")]) == 1
