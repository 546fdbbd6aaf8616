"""Static analysis (``policyengine check``): one minimal policy per finding, and the packs."""

from __future__ import annotations

from pathlib import Path

import pytest

import policyengine as pe
from policyengine.errors import Location
from policyengine.tools.analysis import CODES, Finding, analyze

ROOT = Path(__file__).resolve().parent.parent
F = "a.yaml"

HEAD = """\
policy: {id: an, title: analysis tests, version: "1"}
clauses:
  - {id: C-1, text: 原文, reading: one}
  - {id: C-2, text: 原文, reading: two, kind: descriptive}
params:
  fine: {money: 50}
events:
  registered: {fields: {customer: str, employee: str, channel: [list_call, feedback]}}
rules:
"""  # rules start on line 10


def run(rules: str, head: str = HEAD) -> list[Finding]:
    return analyze(pe.load_policy_text(head + rules, F))


def at(line: int, col: int) -> Location:
    return Location(F, line, col)


CLEAN = """\
  - id: base
    clause: C-1
    on: registered
    then:
      - penalty: {party: $event.employee, sanction: fine, amount: $params.fine}
"""


def test_clean_policy_has_no_findings() -> None:
    assert run(CLEAN) == []


def test_codes_are_documented() -> None:
    assert set(CODES) == {f"PE40{i}" for i in range(1, 8)}


def test_pe401_overlapping_owner_decisions() -> None:
    rules = """\
  - id: to-employee
    clause: C-1
    on: registered
    when: {eq: [$event.channel, feedback]}
    then: [{assign: $event.employee}, {penalty: {party: x, sanction: fine, amount: $params.fine}}]
  - id: to-pool
    clause: C-1
    on: registered
    then: [{assign: company}]
"""
    assert run(rules) == [
        Finding(
            "PE401",
            "rules 'to-employee' and 'to-pool' can both fire on one 'registered' event "
            "and decide the owner differently",
            at(10, 9),
            "warning",
            (at(15, 9),),
            "make their `when` conditions exclusive or declare `overrides:` between them",
        )
    ]


@pytest.mark.parametrize(
    "second_when",
    [
        "{eq: [$event.channel, list_call]}",
        "{ne: [$event.channel, feedback]}",
        "{all: [{in: [$event.channel, [list_call]]}]}",
    ],
)
def test_pe401_exclusive_conditions_are_not_reported(second_when: str) -> None:
    rules = f"""\
  - id: a
    clause: C-1
    on: registered
    when: {{eq: [$event.channel, feedback]}}
    then: [{{assign: $event.employee}}, {{penalty: {{party: x, sanction: fine, amount: 1}}}}]
  - id: b
    clause: C-1
    on: registered
    when: {second_when}
    then: [{{assign: company}}, {{penalty: {{party: x, sanction: fine, amount: $params.fine}}}}]
"""
    assert run(rules) == []


def test_pe401_subject_state_exclusive_and_overrides_silence_it() -> None:
    rules = """\
  - id: a
    clause: C-1
    on: registered
    when: {all: [{exists: $subject.flags.f}, {eq: [$subject.owner, $subject.flags.f]}]}
    then: [{assign: $event.employee}]
  - id: b
    clause: C-1
    on: registered
    when: {eq: [$subject.owner, null]}
    then: [{assign: company}]
  - id: c
    clause: C-1
    on: registered
    when: {eq: [$event.channel, list_call]}
    then: [{penalty: {party: $event.employee, sanction: fine, amount: 5}}]
  - id: d
    clause: C-1
    on: registered
    overrides: [c]
    when: {eq: [$subject.owner, company]}
    then: [{penalty: {party: $event.employee, sanction: warning}}]
  - id: e
    clause: C-1
    on: registered
    when: {eq: [$event.channel, list_call]}
    then: [{penalty: {party: $event.employee, sanction: fine, amount: $params.fine}}]
    overrides: [d]
"""
    # a/b exclusive on the owner; c<d<e related through overrides (transitively)
    assert run(rules) == []


def test_pe402_literal_outside_enum() -> None:
    rules = """\
  - id: typo
    clause: C-1
    on: registered
    when: {all: [{exists: $event.employee}, {eq: [$event.channel, feedbak]}]}
    then: [{penalty: {party: $event.employee, sanction: fine, amount: $params.fine}}]
"""
    [f] = run(rules)
    assert (f.code, f.location, f.related) == ("PE402", at(13, 67), (at(8, 55),))
    assert f.message == "rule 'typo' can never fire: no registered event has such a 'channel'"


def test_pe402_action_when_outside_enum() -> None:
    rules = """\
  - id: act
    clause: C-1
    on: registered
    then:
      - penalty: {party: $event.employee, sanction: fine, amount: $params.fine}
        when: {in: [$event.channel, [store, phone]]}
"""
    [f] = run(rules)
    assert (f.code, f.location, f.related) == ("PE402", at(15, 37), (at(8, 55),))
    assert f.message == (
        "action 1 of rule 'act' never runs: no registered event has such a 'channel'"
    )


def test_pe403_shadowed_rule() -> None:
    rules = """\
  - id: general
    clause: C-1
    on: registered
    when: {eq: [$event.channel, feedback]}
    then: [{penalty: {party: $event.employee, sanction: fine, amount: $params.fine}}]
  - id: special
    clause: C-1
    on: registered
    overrides: [general]
    then: [{penalty: {party: $event.employee, sanction: warning}}]
"""
    assert run(rules) == [
        Finding(
            "PE403",
            "rule 'general' can never fire: 'special' overrides it and matches every event "
            "it matches",
            at(10, 9),
            "warning",
            (at(15, 9),),
            "narrow 'special''s `when`, or drop 'general'",
        )
    ]


def test_pe403_not_reported_when_overrider_is_narrower() -> None:
    rules = """\
  - id: general
    clause: C-1
    on: registered
    then: [{penalty: {party: $event.employee, sanction: fine, amount: $params.fine}}]
  - id: special
    clause: C-1
    on: registered
    overrides: [general]
    when: {eq: [$event.channel, feedback]}
    then: [{penalty: {party: $event.employee, sanction: warning}}]
"""
    assert run(rules) == []


def test_pe404_pe405_pe406_unused_declarations() -> None:
    head = HEAD.replace(
        "  fine: {money: 50}\n", "  fine: {money: 50}\n  spare: {count: 3}\n"
    ).replace(
        "  - {id: C-1, text: 原文, reading: one}\n",
        "  - {id: C-1, text: 原文, reading: one}\n  - {id: C-3, text: 原文, reading: three}\n",
    )
    head = head.replace("rules:\n", "  orphan: {fields: {customer: str}}\nrules:\n")
    found = [(f.code, f.message, f.location) for f in run(CLEAN, head)]
    assert found == [
        (
            "PE406",
            "clause 'C-3' is carried but no rule, label, metric or award cites it",
            at(4, 10),
        ),
        ("PE404", "parameter 'spare' is declared but no rule, label or metric uses it", at(8, 3)),
        (
            "PE405",
            "event type 'orphan' is declared but nothing triggers on, awaits or queries it",
            at(11, 3),
        ),
    ]


def test_references_in_expectations_and_history_count_as_uses(tmp_path: Path) -> None:
    head = HEAD.replace(
        "rules:\n", "  later: {fields: {customer: str}}\n  old: {fields: {customer: str}}\nrules:\n"
    )
    rules = """\
  - id: duty
    clause: C-1
    on: registered
    when: {not: {history: {type: old, match: {customer: $event.customer}}}}
    expect:
      event: later
      match: {customer: $event.customer}
      within: 2 days
      missed: [{penalty: {party: $trigger.employee, sanction: fine, amount: $params.fine}}]
"""
    path = tmp_path / "p.yaml"
    path.write_text(head + rules, encoding="utf-8")
    assert analyze(path) == []


def test_bad_policy_raises() -> None:
    with pytest.raises(pe.PolicyError):
        analyze(ROOT / "no-such-folder")


PACK_FINDINGS: dict[str, list[tuple[str, str]]] = {
    "huixiao": [],
    "online_store": [],
    "customer_management": [],
    # the pack declares the whole shared event vocabulary (its README says so) so that a
    # shared history is accepted under `unknown_events: reject`; the unused ones are marked
    # `accept_only: true`, so PE405 does not report them
    "service_system": [],
}


@pytest.mark.parametrize("pack", sorted(PACK_FINDINGS))
def test_shipped_packs(pack: str) -> None:
    found = [
        (f.code, f"{Path(f.location.file).name}:{f.location.line}:{f.location.column}")
        for f in analyze(ROOT / "policies" / pack)
    ]
    assert found == PACK_FINDINGS[pack]
