"""Company overlays (issue 16): a shipped pack adapted without editing it.

``load_policy([base, overlay])`` layers an overlay file; ``policyengine test OVERLAY`` runs the
overlay's scenarios and the base pack's, naming the base scenarios the overlay changes. The
example is ``examples/overlay`` (ACME's 15-day public pool on the huixiao pack).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import policyengine as pe
from policyengine.__main__ import main
from policyengine.backends.parallel.spec import policy_spec, rebuild
from policyengine.tools.overlays import is_overlay_path, run_overlay

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "policies" / "huixiao"
EXAMPLE = ROOT / "examples" / "overlay"
OVERLAY = EXAMPLE / "overlay.yaml"

# the base scenarios the 15-day pool changes, by file: each keeps a customer owned (or lets
# another employee take it) longer than 15 days without a contact by the owner
CHANGED = {
    "as10_referral_rate.yaml": [
        "a referral by a customer who never bought does not count",
        "a specialist with customers but no old customers is not measured",
    ],
    "as4_monthly_signed_form.yaml": [
        "a signed form at the last second of the month meets that month",
        "a form at 00:00 on the 1st is the new month's form, and the month before is fined 10",
        "without a form the month is still open at 23:59:59 on its last day",
        "without a form the month is overdue at 00:00 on the 1st and the owner is fined 10",
        "the fine is 10 per owned customer per month",
        "a form signed on the customer's behalf costs 50 and does not count for the month",
        "the proxy-signature fine falls on the employee who returned the form",
        "a new owner takes over the month of the change, and the old owner owes nothing for it",
        "ownership from 31 January owes January and February, each due at its month end",
        "another employee's form leaves the month overdue and the owner fined 10",
        "a form by the next owner before the change meets neither owner's month",
    ],
    "as7_owner_at_all_times.yaml": [
        "a purchase by a customer a specialist already owns opens no ownership duty",
        "the duty is met when a claimant pre-heats and becomes the owner",
        "a manager's assignment of the pooled customer meets the duty",
    ],
    "rm7_followup_after_preheat.yaml": [
        "the owner's invite exactly one month after the pre-heat keeps the customer",
        "the owner's home visit exactly one month after the pre-heat keeps the customer too",
        "without a follow-up, another specialist who pre-heated invites one second after the "
        "month and owns",
        "an invite exactly at the end of the owner's month takes nothing",
        "an inviter who never pre-heated the customer does not take it",
        "the inviter's pre-heat exactly one month before the invite counts as within the last "
        "month",
        "the inviter's pre-heat one second more than a month before the invite is too old",
        "one month after 31 January is 28 February",
    ],
    "rm8_visit_after_meeting.yaml": [
        "the owner's home visit exactly one month after the meeting keeps the customer",
        "without the visit, another employee's invite one second after the month takes the "
        "customer",
        "an invite exactly at the end of the month after the meeting takes nothing",
        "a purchase within the month cancels the visit duty, so a later invite takes nothing",
        "a home visit by someone other than the owner does not meet the duty",
    ],
    "rs1_silent_owner.yaml": [
        "a scattered registration one second after the owner's silent month takes the customer",
        "a referral registration is a second registration too",
        "a registration exactly one month after the owner's pre-heat takes nothing",
        "a list-call registration is not a second registration that takes the customer",
        "the owner's pre-heat exactly one month before the registration still protects the "
        "customer",
        "one second later the owner's last pre-heat is over a month old and the registrant owns",
        "an owner assigned on 20 March who never pre-heated keeps the customer until over one "
        "month",
        "an owner assigned on 20 March who never pre-heated loses the customer one second after "
        "the month",
        "an owner assigned on 31 January has owned over one month from 28 February 10:00:01",
        "an owner assigned on 31 January has owned exactly one month, not over, at 28 February "
        "10:00",
    ],
}
POOL_RULES = {"new-owner-pool-clock", "contact-pool-clock"}

HEAD = 'overlay: {id: acme, title: ACME, version: "1"}\n'
DISPUTE = """\
  - id: dispute-fine
    clause: HX-RM-9
    on: dispute
    then:
      - penalty: {party: $item, sanction: fine, amount: $params.dispute_fine}
        for_each: $event.employees
"""


def _write(tmp_path: Path, text: str, name: str = "overlay.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _at(path: Path, text: str, needle: str, column: int) -> str:
    """``file:line:col`` of the line of ``text`` holding ``needle``."""
    line = next(i for i, t in enumerate(text.splitlines(), 1) if needle in t)
    return f"{path}:{line}:{column}"


# ---------------------------------------------------------------- the example


@pytest.fixture(scope="module")
def report() -> object:
    return run_overlay(EXAMPLE)


def test_the_example_changes_exactly_these_base_scenarios(report: object) -> None:
    from policyengine.tools.overlays import OverlayReport

    assert isinstance(report, OverlayReport)
    assert report.base == BASE.relative_to(ROOT) or report.base.resolve() == BASE
    changed = {(o.layered.case.file.name, o.name) for o in report.changed}
    expected = {(f, n) for f, names in CHANGED.items() for n in names}
    assert changed == expected
    # every changed scenario names the pool rule that decided differently, as an added rule
    for o in report.changed:
        assert o.rules, o.name
        assert {rid for rid, _ in o.rules} <= POOL_RULES
        assert {how for _, how in o.rules} == {"added"}
    # the others pass unchanged; none fails without the overlay
    assert report.failing_alone == []
    assert len(report.unchanged) == len(report.base_outcomes) - len(expected)
    assert all(o.alone.passed and o.layered.passed for o in report.unchanged)


def test_the_examples_own_scenarios_pass_and_cover_its_rules(report: object) -> None:
    from policyengine.tools.overlays import OverlayReport

    assert isinstance(report, OverlayReport)
    names = {r.case.scenario.name for r in report.own}
    assert "an owner silent for 15 days loses the customer at exactly 15 days" in names
    assert "at 15 days minus one second the customer is still owned" in names
    assert report.passed, "\n".join(r.report() for r in report.own if not r.passed)
    cov = report.coverage()
    assert cov.percent == 100.0
    assert set(cov.items) == POOL_RULES | {"released-customer-not-reclaimed"}


def test_the_example_loads_alone_or_after_its_base() -> None:
    alone = pe.load_policy(EXAMPLE)
    listed = pe.load_policy([BASE, OVERLAY])
    base = pe.load_policy(BASE)
    assert alone.rule_ids == listed.rule_ids == [*base.rule_ids, *alone.overlays[0].added]
    assert alone.id == f"{base.id}+acme-pool"
    [record] = listed.overlays
    assert record.added == [
        "new-owner-pool-clock",
        "contact-pool-clock",
        "released-customer-not-reclaimed",
    ]
    assert record.clauses == ["ACME-1"]
    assert record.params == ["pool_silence", "reclaim_ban"]
    assert "ACME-1" in listed.clause_ids
    # the overlay is part of the program's sources: snapshots and workers see it
    assert len(listed.sources) == len(base.sources) + 1
    rebuilt = rebuild(policy_spec(listed))  # as a worker process rebuilds it
    assert [r.id for r in rebuilt.compiled.rules] == listed.rule_ids
    assert rebuilt.overlays == listed.overlays


def test_the_release_edges_in_python() -> None:
    policy = pe.load_policy(EXAMPLE)
    events = [
        {"id": "r1", "type": "registered", "at": "2026-03-02T10:00:00+08:00"}
        | {"customer": "C1", "employee": "li", "channel": "list_call"},
        {"id": "p1", "type": "preheated", "at": "2026-03-03T10:00:00+08:00"}
        | {"customer": "C1", "employee": "li"},
    ]
    d = policy.evaluate(events, as_of="2026-03-20T00:00:00+08:00")
    assert d.owner("C1", at="2026-03-18T09:59:59+08:00") == "li"
    assert d.owner("C1", at="2026-03-18T10:00:00+08:00") is None
    assert d.fired["new-owner-pool-clock"] == 1
    # the base alone keeps the customer
    alone = pe.load_policy(BASE).evaluate(events, as_of="2026-03-20T00:00:00+08:00")
    assert alone.owner("C1") == "li"
    explained = d.explain("C1")
    assert "flag pool_released_from: li" in explained


# ---------------------------------------------------------------- the list of paths


@pytest.mark.parametrize(
    ("paths", "where", "words"),
    [
        ([str(BASE), 3], "<paths>[1]:1:1", "policy path 2 of the list is an int"),
        ([BASE, None], "<paths>[1]:1:1", "not a file or folder name"),
        (7, "<paths>:1:1", "not an int"),
        ({"base": "x"}, "<paths>:1:1", "not a dict"),
        ([], "<paths>:1:1", "empty"),
    ],
)
def test_a_bad_list_of_paths_is_a_located_policy_error(
    paths: object, where: str, words: str
) -> None:
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy(paths)  # type: ignore[arg-type]
    assert where in str(info.value)
    assert words in str(info.value)


def test_a_missing_path_in_the_list_is_reported_with_the_others(tmp_path: Path) -> None:
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy([BASE, tmp_path / "nope.yaml", tmp_path / "nope2.yaml"])
    assert str(info.value).count("PE116") == 2 or "nope2.yaml" in str(info.value)


def test_an_overlay_alone_without_base_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + "clauses: []\n")
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy(path)
    assert f"{path}:1:" in str(info.value)
    assert "base" in str(info.value)
    text = 'overlay: {id: acme, title: t, version: "1", base: ../nowhere}\n'
    path = _write(tmp_path, text)
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy(path)
    assert "PE116" in str(info.value) and "nowhere" in str(info.value)


# ---------------------------------------------------------------- located errors


def test_load_errors_are_located_in_the_overlay(tmp_path: Path) -> None:
    text = (
        HEAD
        + "clauses:\n  - {id: HX-RM-9, text: t, reading: r}\n"
        + "replace:\n"
        + DISPUTE.replace("id: dispute-fine", "id: dispute-fin")
        + "disable:\n  - {rule: sale-transfer-fine}\n  - {rule: embezzlment, reason: no}\n"
        + "rules:\n  - {id: embezzlement, clause: HX-RS-7, on: dispute, then: [{clear: x}]}\n"
        + "  - {id: acme-new, clause: ACME-9, on: dispute, then: [{clear: x}]}\n"
        + "  - {id: acme-o, clause: HX-RS-7, on: dispute, overrides: [nope], then: [{clear: x}]}\n"
    )
    path = _write(tmp_path, text)
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy([BASE, path])
    message = str(info.value)
    assert f"{path}:3:10: PE107 clause 'HX-RM-9' is already in the base" in message
    assert f"{path}:5:9: PE111 replace: the base has no rule 'dispute-fin'" in message
    assert "did you mean 'dispute-fine'?" in message
    assert f"{path}:12:5: PE" in message and "missing field 'reason'" in message
    assert "disable: the base has no rule 'embezzlment'" in message
    assert "did you mean 'embezzlement'?" in message
    where = _at(path, text, "id: embezzlement", 10)
    assert f"{where}: PE107 rule 'embezzlement' is already in the base" in message
    assert "list the whole rule under `replace:`" in message
    assert "resources.yaml:" in message  # where the base rule is
    assert "cites clause 'ACME-9', which neither the overlay nor its base carries" in message
    assert "overrides unknown rule 'nope'" in message
    assert str(BASE) not in message.split("the base rule is at")[0]  # all located in the overlay


def test_an_unknown_field_of_an_overlay_is_located(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + "rulez: []\n")
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy([BASE, path])
    assert f"{path}:2:1: PE101 unknown field 'rulez'" in str(info.value)
    assert "did you mean" in str(info.value)


# ---------------------------------------------------------------- replace, disable, params


def test_replace_keeps_the_base_position_and_disable_records_the_reason(tmp_path: Path) -> None:
    text = (
        HEAD
        + "replace:\n"
        + DISPUTE.replace("$params.dispute_fine", "300")
        + "disable:\n  - {rule: sale-transfer-fine, reason: ACME does not transfer sales}\n"
    )
    path = _write(tmp_path, text)
    base = pe.load_policy(BASE)
    layered = pe.load_policy([BASE, path])
    assert layered.rule_ids.index("dispute-fine") == base.rule_ids.index("dispute-fine")
    assert "sale-transfer-fine" not in layered.rule_ids
    assert len(layered.rule_ids) == len(base.rule_ids) - 1
    [record] = layered.overlays
    assert record.replaced == ["dispute-fine"]
    assert record.disabled == {"sale-transfer-fine": "ACME does not transfer sales"}
    events = [
        {"id": "d1", "type": "dispute", "at": "2026-03-02T10:00:00+08:00"}
        | {"customer": "C1", "employees": ["li", "wang"]},
        {"id": "t1", "type": "sale_transferred", "at": "2026-03-02T11:00:00+08:00"}
        | {"employee": "li", "to": "wang", "boxes": 2},
    ]
    d = layered.evaluate(events)
    assert sorted((p.party, str(p.amount_min)) for p in d.penalties) == [
        ("li", "300"),
        ("wang", "300"),
    ]
    # the severe-dispute rule still overrides the replaced rule (its precedence is kept)
    severe = [{**events[0], "severe": True}]
    assert {p.sanction for p in layered.evaluate(severe).penalties} == {"dismissal"}


def test_params_add_and_redeclare_of_the_same_kind(tmp_path: Path) -> None:
    text = HEAD + "params:\n  dispute_fine: {money: 300}\n  acme_limit: {count: 3}\n"
    layered = pe.load_policy([BASE, _write(tmp_path, text)])
    assert str(layered.params["dispute_fine"].low) == "300"
    [record] = layered.overlays
    assert record.changed_params == ["dispute_fine"] and record.params == ["acme_limit"]
    bad = _write(tmp_path, HEAD + "params:\n  dispute_fine: {duration: 2 days}\n", "bad.yaml")
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy([BASE, bad])
    assert f"{bad}:3:3: PE" in str(info.value)
    assert "is a money in the base, not a duration" in str(info.value)


def test_calendar_days_merge_with_the_base(tmp_path: Path) -> None:
    text = HEAD + "calendar:\n  holidays: [2026-03-09]\n  workdays: [2026-03-08]\n"
    layered = pe.load_policy([BASE, _write(tmp_path, text)])
    from datetime import date

    assert date(2026, 3, 9) in layered.calendar.holidays
    assert date(2026, 3, 8) in layered.calendar.workdays
    assert layered.overlays[0].calendar
    clash = HEAD + "calendar:\n  holidays: [2026-03-09]\n  workdays: [2026-03-09]\n"
    path = _write(tmp_path, clash, "clash.yaml")
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy([BASE, path])
    assert f"{path}:4:" in str(info.value)


def test_an_overlay_may_not_add_what_it_disables(tmp_path: Path) -> None:
    text = (
        HEAD
        + "disable:\n  - {rule: dispute-fine, reason: r}\n"
        + "rules:\n  - {id: acme-x, clause: HX-RM-9, on: dispute, overrides: [dispute-fine],"
        + " then: [{clear: x}]}\n"
    )
    path = _write(tmp_path, text)
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy([BASE, path])
    assert "overrides rule 'dispute-fine', which overlay 'acme' disables" in str(info.value)


# ---------------------------------------------------------------- the command line


def test_cli_test_reports_changed_base_scenarios_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["test", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "its own scenarios: 8/8 pass" in out
    assert "39 changed by the overlay" in out
    assert out.count("CHANGED by the overlay") == 39
    assert "(rules: new-owner-pool-clock (added))" in out
    assert "coverage of overlay acme-pool: 100.0% of 3 rules" in out
    assert main(["test", str(EXAMPLE), "--format", "json"]) == 0
    [body] = json.loads(capsys.readouterr().out)
    changed = {s["name"] for s in body["base_scenarios"] if s["changed_by_overlay"]}
    assert changed == {n for names in CHANGED.values() for n in names}
    assert body["passed"] is True
    assert body["overlays"][0]["added"][0] == "new-owner-pool-clock"


def test_cli_test_exits_2_when_the_overlays_own_scenario_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "acme"
    shutil.copytree(EXAMPLE, folder)
    overlay = folder / "overlay.yaml"
    text = overlay.read_text(encoding="utf-8")
    overlay.write_text(re.sub(r"\n  base: .*\n", "\n", text), encoding="utf-8")
    scenarios = folder / "tests" / "acme_pool.yaml"
    s = scenarios.read_text(encoding="utf-8")
    scenarios.write_text(s.replace("owners: {C1: li}", "owners: {C1: wang}", 1), encoding="utf-8")
    assert is_overlay_path(folder) and not is_overlay_path(BASE)
    assert main(["test", str(folder), "--base", str(BASE)]) == 2
    out = capsys.readouterr().out
    assert "FAIL at 15 days minus one second" in out
    assert "39 changed by the overlay" in out
    assert main(["test", str(folder)]) == 1  # no base: a located error
    assert "needs its base pack" in capsys.readouterr().err


def test_cli_eval_explain_and_check_take_overlays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "h.json"
    events = [
        {"id": "r1", "type": "registered", "at": "2026-03-02T10:00:00+08:00"}
        | {"customer": "C1", "employee": "li", "channel": "list_call"},
        {"id": "p1", "type": "preheated", "at": "2026-03-03T10:00:00+08:00"}
        | {"customer": "C1", "employee": "li"},
    ]
    history.write_text(json.dumps(events), encoding="utf-8")
    as_of = ["--as-of", "2026-03-20T00:00:00+08:00", "--format", "json"]
    assert main(["eval", str(BASE), str(history), "--overlay", str(OVERLAY), *as_of]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["policy"].endswith("+acme-pool")
    assert main(["eval", str(EXAMPLE), str(history), *as_of]) == 0
    assert json.loads(capsys.readouterr().out)["policy"] == body["policy"]
    # several paths: the policy, then overlay files, then the histories
    assert main(["eval", str(BASE), str(OVERLAY), str(history), *as_of]) == 0
    assert json.loads(capsys.readouterr().out)["policy"] == body["policy"]
    assert main(["eval", str(BASE), str(history), *as_of]) == 0
    assert json.loads(capsys.readouterr().out)["policy"] != body["policy"]
    args = ["explain", str(BASE), str(history), "--subject", "C1", "--overlay", str(OVERLAY)]
    assert main([*args, "--as-of", "2026-03-20T00:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert "[added by overlay acme-pool]" in out
    assert "overlay acme-pool 1.0.0" in out
    assert main(["check", str(EXAMPLE)]) == 0
    assert main(["check", str(BASE), "--overlay", str(OVERLAY)]) == 0
    bad = _write(tmp_path, HEAD + "disable:\n  - {rule: nope, reason: r}\n")
    capsys.readouterr()
    assert main(["check", str(BASE), "--overlay", str(bad)]) == 1
    assert f"{bad}:3:12: PE111" in capsys.readouterr().err
