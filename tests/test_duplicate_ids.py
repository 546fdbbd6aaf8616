"""Two different events with one id are refused (PE212) on every path; an identical repeat is
dropped with a ``duplicate`` notice, as before.

Which of two different events counts would decide whether a duty is met or a fine is due, so
the engine refuses to pick one: ``evaluate`` (native and durable), ``evaluate_many`` (one
subject, or two subjects in two shards), ``resume`` (an id stored in the snapshot, then a
different event with it) and the command line (naming both lines of the file) agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine.errors import Code, EventError
from policyengine.runtime.events import prepare

ROOT = Path(__file__).resolve().parents[1]
POLICY = """\
policy: {id: mini, title: mini, version: "1", timezone: Asia/Shanghai}
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
    then: [{assign: $event.employee}]
    expect: {event: visited, match: {customer: $event.customer}, within: $params.window,
             obligation: visit, party: $event.employee}
"""


def ev(eid: str, etype: str, day: int, customer: str = "C1", **more: Any) -> dict[str, Any]:
    return {
        "id": eid,
        "type": etype,
        "at": f"2026-03-{day:02d}T09:00:00+08:00",
        "customer": customer,
        "employee": "E1",
        **more,
    }


B1 = ev("b1", "bought", 2, amount="10")
V_IN_TIME = ev("v1", "visited", 3)
V_LATE = ev("v1", "visited", 9)  # the same id, another event: met or overdue?


@pytest.fixture(scope="module")
def policy() -> pe.Policy:
    return pe.load_policy_text(POLICY, "mini.yaml")


def refused(call: Any) -> pe.Problem:
    with pytest.raises(EventError) as info:
        call()
    [p] = [p for p in info.value.problems if p.code == Code.EVENT_ID_REUSED]
    return p


def check(p: pe.Problem, first: int, later: int) -> None:
    assert p.code == "PE212" and (p.event_id, p.field) == ("v1", "id")
    assert f"#{first} and #{later} of the history" in p.message
    assert "two different events" in p.message
    assert p.hint is not None and "give each event its own id, or drop the repeat" in p.hint


def test_evaluate_refuses_a_different_event_reusing_an_id(policy: pe.Policy) -> None:
    check(refused(lambda: policy.evaluate([B1, V_IN_TIME, V_LATE])), 1, 2)
    check(refused(lambda: policy.evaluate([V_LATE, B1, V_IN_TIME])), 0, 2)


def test_an_identical_repeat_is_still_a_notice(policy: pe.Policy) -> None:
    d = policy.evaluate([B1, V_IN_TIME, dict(V_IN_TIME)])
    assert d.duplicates == ["v1"]
    assert [n.detail for n in d.notices if n.kind == "duplicate"] == ["repeated event ignored"]
    assert [o.status for o in d.obligations] == ["met"]


def test_every_problem_is_reported_with_the_reuse(policy: pe.Policy) -> None:
    with pytest.raises(EventError) as info:
        policy.evaluate([B1, V_IN_TIME, V_LATE, {**B1, "id": "b2", "amount": "x"}])
    assert sorted(p.code for p in info.value.problems) == ["PE203", "PE212"]


def test_prepare_refuses_it(policy: pe.Policy) -> None:
    check(refused(lambda: prepare(policy.compiled, [B1, V_IN_TIME, V_LATE])), 1, 2)


def test_not_resumable_and_durable_agree(policy: pe.Policy) -> None:
    events = [B1, V_IN_TIME, V_LATE]
    check(refused(lambda: policy.evaluate(events, resumable=False)), 1, 2)
    # refused while the history is read, before the backend (installed or not) is reached
    check(refused(lambda: policy.evaluate(events, backend="durable")), 1, 2)


def test_evaluate_many_per_subject_and_across_subjects(policy: pe.Policy) -> None:
    others = [ev(f"b{i}", "bought", 2, customer=f"C{i}", amount="1") for i in range(2, 6)]
    same_subject = [B1, *others, V_IN_TIME, V_LATE]
    check(refused(lambda: policy.evaluate_many(same_subject, shards=3)), 5, 6)
    elsewhere = {**V_LATE, "customer": "C4"}  # another subject, likely another shard
    across = [B1, *others, V_IN_TIME, elsewhere]
    check(refused(lambda: policy.evaluate_many(across, shards=3)), 5, 6)
    fine = policy.evaluate_many([B1, *others, V_IN_TIME, dict(V_IN_TIME)], shards=3)
    assert fine.duplicates == ["v1"]


def test_resume_judges_new_events_against_the_stored_ones(policy: pe.Policy) -> None:
    stored = policy.evaluate([B1, V_IN_TIME], resumable=True).snapshot()
    check(refused(lambda: policy.resume(stored, [V_LATE])), 1, 2)
    again = policy.resume(stored, [dict(V_IN_TIME)])
    assert again.duplicates == ["v1"]
    assert [o.status for o in again.obligations] == ["met"]
    # the snapshot survives JSON, and the check is the same
    loaded = json.loads(json.dumps(stored))
    check(refused(lambda: policy.resume(loaded, [V_LATE])), 1, 2)


def test_the_command_line_names_both_lines(tmp_path: Path) -> None:
    (tmp_path / "mini.yaml").write_text(POLICY, encoding="utf-8")
    lines = [json.dumps(e) for e in (B1, V_IN_TIME, V_LATE)]
    (tmp_path / "h.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "policyengine", "eval", "mini.yaml", "h.jsonl"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode != 0
    assert "h.jsonl:3:1" in out.stderr and "PE212" in out.stderr
    assert "the one at h.jsonl:2:1 and the one at h.jsonl:3:1" in out.stderr
    assert "give each event its own id" in out.stderr
