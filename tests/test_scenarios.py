"""The scenario runner itself: the format, partial expectations, diffs, coverage, mutations
and the ``policyengine test`` command, on a small pack written to a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyengine.__main__ import main
from policyengine.errors import PolicyError
from policyengine.tools.scenarios import collect, coverage, mutate, run_suite

PACK = """\
policy: {id: mini, title: mini, version: "1", timezone: Asia/Shanghai}
clauses:
  - {id: M-1, text: 报名后2天内预热, reading: pre-heat within 2 days of registering}
  - {id: M-2, text: 违规罚款, reading: a breach is fined 50-100 CNY}
params:
  window: {duration: 2 days}
  fine: {money: 50-100}
events:
  registered: {fields: {customer: str, employee: str}}
  preheated: {fields: {customer: str, employee: str}}
  breach: {fields: {customer: str, employee: str}}
rules:
  - id: first-registration-owns
    clause: M-1
    on: registered
    when: {eq: [$subject.owner, null]}
    then: [{assign: $event.employee}]
  - id: preheat-window
    clause: M-1
    on: registered
    expect:
      event: preheated
      match: {customer: $event.customer}
      within: $params.window
      obligation: pre-heat the customer
      party: $event.employee
  - id: breach-fine
    clause: M-2
    on: breach
    then: [{penalty: {party: $event.employee, sanction: fine, amount: $params.fine}}]
"""

EDGE = """\
scenarios:
  - name: pre-heated exactly at the 2-day edge is in time
    clause: M-1
    as_of: 2026-03-05T00:00:00+08:00
    events:
      - {id: r1, type: registered, at: 2026-03-01T10:00:00+08:00, customer: C1, employee: li}
      - {id: p1, type: preheated, at: 2026-03-03T10:00:00+08:00, customer: C1, employee: li}
    expect:
      owners: {C1: li}
      owners_at: [{subject: C1, at: "2026-03-01T09:59:59+08:00", owner: null}]
      obligations: [{rule: preheat-window, status: met, met_by: p1, due: "2026-03-03T02:00:00Z"}]
      penalties: []
"""

FINE = """\
scenarios:
  - name: a breach is fined 50-100
    clause: M-2
    as_of: 2026-03-02T00:00:00+08:00
    events:
      - {id: b1, type: breach, at: 2026-03-01T10:00:00+08:00, customer: C1, employee: li}
    expect:
      penalties: [{party: li, amount: 50-100, clause: M-2}]
"""


def write_pack(root: Path, *scenarios: str) -> Path:
    pack = root / "mini"
    (pack / "tests").mkdir(parents=True)
    (pack / "mini.yaml").write_text(PACK, encoding="utf-8")
    for i, text in enumerate(scenarios):
        (pack / "tests" / f"s{i}.yaml").write_text(text, encoding="utf-8")
    return pack


def results(pack: Path) -> list[list[str]]:
    [suite] = collect(pack)
    return [r.failures for r in run_suite(suite)]


def test_a_passing_pack(tmp_path: Path) -> None:
    pack = write_pack(tmp_path, EDGE, FINE)
    assert results(pack) == [[], []]


def test_the_pack_folder_is_the_default_policy_and_tests_are_not_policy_files(
    tmp_path: Path,
) -> None:
    pack = write_pack(tmp_path, EDGE)
    [suite] = collect(tmp_path)  # a tree of packs
    assert suite.policy_path == pack.resolve()
    assert [c.scenario.name for c in suite.cases] == [
        "pre-heated exactly at the 2-day edge is in time"
    ]


def test_a_wrong_expectation_reports_expected_and_decided(tmp_path: Path) -> None:
    pack = write_pack(tmp_path, EDGE.replace("status: met", "status: late"))
    [[first, second]] = results(pack)
    assert first.startswith("obligations: expected {rule: preheat-window, status: late")
    assert "decided instead: {rule: preheat-window, status: met" in first
    assert second.startswith("obligations: not expected {rule: preheat-window, clause: M-1")


def test_lists_are_exact_unless_includes(tmp_path: Path) -> None:
    exact = FINE.replace(
        "      - {id: b1,",
        "      - {id: b2, type: breach, at: 2026-03-01T11:00:00+08:00, customer: C2,"
        " employee: wang}\n"
        "      - {id: b1,",
    )
    pack = write_pack(tmp_path, exact)
    [[failure]] = results(pack)
    assert failure.startswith(
        "penalties: not expected {rule: breach-fine, clause: M-2, party: wang"
    )
    partial = exact.replace(
        "penalties: [{party: li, amount: 50-100, clause: M-2}]",
        "penalties: {includes: [{party: li, amount: 50-100}]}",
    )
    other = write_pack(tmp_path / "b", partial)
    assert results(other) == [[]]


def test_owner_and_label_and_flag_mismatches_name_the_deciding_rule(tmp_path: Path) -> None:
    text = EDGE.replace("owners: {C1: li}", "owners: {C1: wang}").replace(
        "      penalties: []", "      penalties: []\n      flags: {C1: {vip: true}}"
    )
    [[owner, flag]] = results(write_pack(tmp_path, text))
    assert owner == (
        "owner of C1: expected 'wang', decided 'li' (last change by rule "
        "first-registration-owns, clause M-1, events ['r1'])"
    )
    assert flag == "flag vip of C1: expected True, decided None"


def test_an_expected_error_code(tmp_path: Path) -> None:
    text = FINE.replace("employee: li}", "employee: li, colour: red}").replace(
        "      penalties: [{party: li, amount: 50-100, clause: M-2}]", "      error: PE205"
    )
    assert results(write_pack(tmp_path, text)) == [[]]
    wrong = text.replace("error: PE205", "error: PE302")
    [[failure]] = results(write_pack(tmp_path / "b", wrong))
    assert failure.startswith("evaluation raised instead of deciding:")


def test_a_malformed_scenario_file_is_reported_at_its_position(tmp_path: Path) -> None:
    text = EDGE.replace("    expect:\n      owners", "    expct:\n      owners")
    with pytest.raises(PolicyError) as info:
        collect(write_pack(tmp_path, text))
    found = [
        (str(p.location).rsplit("/", 1)[1], p.code, p.message, p.hint) for p in info.value.problems
    ]
    assert found == [  # the misspelt key, not also the `expect:` it misses
        ("s0.yaml:8:5", "PE101", "unknown field 'expct' in scenarios.0", "did you mean 'expect'?"),
    ]


def test_a_scenario_needs_a_frozen_clock(tmp_path: Path) -> None:
    text = EDGE.replace("as_of: 2026-03-05T00:00:00+08:00", "as_of: tomorrow")
    with pytest.raises(PolicyError) as info:
        collect(write_pack(tmp_path, text))
    assert "as_of must be an instant with a UTC offset" in str(info.value)


def test_coverage_counts_rules_and_clauses(tmp_path: Path) -> None:
    pack = write_pack(tmp_path, EDGE)
    [suite] = collect(pack)
    from policyengine import load_policy

    cov = coverage(load_policy(pack), run_suite(suite))
    assert cov.never_fired == ["breach-fine"]
    assert cov.clauses == {"M-1": True, "M-2": False}
    assert round(cov.percent, 1) == 66.7


def test_mutations_are_killed_by_edge_scenarios_and_survivors_are_named(tmp_path: Path) -> None:
    pack = write_pack(tmp_path, EDGE, FINE)
    [suite] = collect(pack)
    outcome = {o.mutation.label: o.survived for o in mutate(suite)}
    assert outcome == {
        "fine: 50-100 -> 51-100": False,
        "fine: 50-100 -> 50-101": False,
        "window: 2 days -> 3 days": False,
    }
    loose = write_pack(tmp_path / "b", EDGE.replace(', due: "2026-03-03T02:00:00Z"', ""))
    [suite] = collect(loose)
    assert [o.mutation.label for o in mutate(suite) if o.survived] == [
        "fine: 50-100 -> 51-100",
        "fine: 50-100 -> 50-101",
        "window: 2 days -> 3 days",
    ]


def test_accepted_survivors_come_from_the_scenario_file(tmp_path: Path) -> None:
    text = "survivors: {fine: no scenario fines anyone here}\n" + EDGE
    [suite] = collect(write_pack(tmp_path, text))
    accepted = {o.mutation.param: o.accepted for o in mutate(suite) if o.survived}
    assert accepted == {"fine": "no scenario fines anyone here"}


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_pack(tmp_path, EDGE, FINE)
    assert main(["test", str(good), "--coverage", "100", "--mutate"]) == 0
    out = capsys.readouterr().out
    assert "2/2 scenarios pass" in out and "mutations killed: 3/3" in out
    thin = write_pack(tmp_path / "b", EDGE)
    assert main(["test", str(thin), "--coverage", "100"]) == 2
    assert "BELOW THRESHOLD" in capsys.readouterr().out
    assert main(["test", str(thin), "--format", "json"]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert report["coverage"]["never_fired"] == ["breach-fine"]
    assert report["scenarios"][0]["passed"] is True
    failing = write_pack(tmp_path / "c", FINE.replace("50-100", "60-100"))
    assert main(["test", str(failing)]) == 2
    assert "FAIL a breach is fined" in capsys.readouterr().out
    assert main(["test", str(tmp_path / "nowhere")]) == 1
