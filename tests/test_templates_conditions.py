"""Rule templates (``each:``) and named conditions (``conditions:``), issue 16.

Templates: the expanded ids and their positions, an error inside a template at the template's
``file:line:col``, a company's override of the table changing the expansion, id clashes and
``overrides:`` of expanded ids. Named conditions: compiled at each use in that use's scope,
unknown / conflicting / cyclic names, located. And the templated huixiao pack decides exactly
as the written-out one did (``tests/fixtures/hx_resources_untemplated.yaml``), on the example
histories and on generated ones.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from optional import available
from policyengine.errors import Code, PolicyError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from generate import generate  # noqa: E402

HX = ROOT / "policies" / "huixiao"
UNTEMPLATED = ROOT / "tests" / "fixtures" / "hx_resources_untemplated.yaml"

HEAD = """\
policy: {id: t, title: T, version: "1"}
clauses: [{id: c1, text: t, reading: r}, {id: c2, text: t, reading: r}]
events:
  registered: {fields: {customer: str, employee: str, channel: [phone, store, web]}}
  followed_up: {fields: {customer: str, employee: str}}
  refund: {fields: {customer: str, amount: int, by: "str?"}}
"""

TEMPLATE = (
    HEAD
    + """\
params:
  followup:
    table:
      phone: {window: 2 days, flag: phone_missed, clause: c1}
      store: {window: 3 days, flag: store_missed, clause: c2}
rules:
  - id: registrant-claims
    clause: c1
    on: registered
    then: [{claim: $event.employee}]
  - id: "{row}-followup"
    each: $params.followup
    clause: $row.clause
    on: registered
    when: {eq: [$event.channel, $row]}
    expect:
      event: followed_up
      match: {customer: $event.customer}
      within: $row.window
      obligation: follow up
      party: $event.employee
      missed:
        - set: {flag: $row.flag, value: $trigger.employee}
        - set: {flag: "late_{row}"}
  - id: web-registration
    clause: c1
    on: registered
    when: {eq: [$event.channel, store]}
    overrides: [store-followup]
    then: [{set: {flag: seen}}]
"""
)


def reg(eid: str, customer: str, channel: str, at: str = "2026-03-02T10:00:00+08:00") -> Any:
    return {
        "id": eid,
        "type": "registered",
        "at": at,
        "customer": customer,
        "employee": "li",
        "channel": channel,
    }


def problems(text: str, **kw: Any) -> list[Any]:
    with pytest.raises(PolicyError) as info:
        pe.load_policy_text(text, name="p.yaml", **kw)
    return info.value.problems


def line_of(text: str, needle: str, nth: int = 0) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[nth]


# ---------------------------------------------------------------- templates: expansion


def test_a_template_expands_in_place_with_the_row_substituted() -> None:
    policy = pe.load_policy_text(TEMPLATE, name="p.yaml")
    ids = [r.id for r in policy.program.rules]
    assert ids == ["registrant-claims", "phone-followup", "store-followup", "web-registration"]
    phone = policy.program.rules[1]
    assert phone.clause == "c1" and policy.program.rules[2].clause == "c2"
    assert phone.when is not None and phone.when.model_dump()["eq"] == ["$event.channel", "phone"]
    assert phone.expect is not None and phone.expect.within == "2 days"
    assert [a.set.flag for a in phone.expect.missed] == ["phone_missed", "late_phone"]
    # each expanded rule keeps the template's position, and says which row it came from
    sites = {s.rule.id: s for s in policy.program.pset.rules}
    template_line = line_of(TEMPLATE, '"{row}-followup"')
    for rid, row in (("phone-followup", "phone"), ("store-followup", "store")):
        where = sites[rid].locate("id")
        assert (where.file, where.line) == ("p.yaml", template_line)
        assert sites[rid].row == row
    compiled = {r.id: r for r in policy.program.compiled.rules}
    assert compiled["phone-followup"].location.line == template_line
    # the override of an expanded id applies: a store registration has no duty
    decision = policy.evaluate(
        [reg("r1", "C1", "phone"), reg("r2", "C2", "store")], as_of="2026-03-10T12:00:00+08:00"
    )
    assert [(o.rule, o.status) for o in decision.obligations] == [("phone-followup", "overdue")]


def test_an_override_of_the_table_changes_the_expansion(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    rows = {
        "web": {"window": "1 day", "flag": "web_missed", "clause": "c1"},
        "phone": {"window": "5 days", "flag": "phone_missed", "clause": "c1"},
    }
    policy = pe.load_policy(path, params={"followup": rows})
    ids = [r.id for r in policy.program.rules]
    assert ids == [
        "registrant-claims",
        "phone-followup",
        "store-followup",
        "web-followup",
        "web-registration",
    ]
    by_id = {r.id: r for r in policy.program.rules}
    assert by_id["phone-followup"].expect is not None
    assert by_id["phone-followup"].expect.within == "5 days"
    decision = policy.evaluate([reg("r1", "C1", "web")], as_of="2026-03-10T12:00:00+08:00")
    [duty] = decision.obligations
    assert duty.rule == "web-followup" and duty.due.isoformat().startswith("2026-03-03T10:00:00")


def test_an_error_inside_a_template_points_at_the_template_text() -> None:
    bad = TEMPLATE.replace(
        "match: {customer: $event.customer}", "match: {custome: $event.customer}"
    )
    found = problems(bad)
    assert {p.code for p in found} == {Code.UNDECLARED_EVENT_FIELD}
    line = line_of(bad, "custome:")
    assert {(p.location.file, p.location.line) for p in found} == {("p.yaml", line)}
    # a bad cell: the problem is at the `$row.window` it replaced, for that row only
    found = problems(TEMPLATE.replace("window: 3 days", "window: 3 dayz"))
    assert [p.code for p in found] == [Code.BAD_QUANTITY]
    assert found[0].location.line == line_of(TEMPLATE, "within: $row.window")
    assert "3 dayz" in found[0].message


def test_a_missing_column_is_located_with_a_close_spelling() -> None:
    found = problems(TEMPLATE.replace("within: $row.window", "within: $row.windw"))
    assert {p.code for p in found} == {Code.BAD_REFERENCE}
    assert len(found) == 2  # once per row
    assert found[0].location.line == line_of(TEMPLATE, "within: $row.window")
    assert "no column 'windw'" in found[0].message and "window" in (found[0].hint or "")


def test_a_validation_error_names_the_row() -> None:
    text = TEMPLATE.replace("flag: store_missed", "flag: 12")
    found = problems(text)
    assert [p.code for p in found] == [Code.BAD_VALUE]
    assert "template row 'store'" in found[0].message
    assert found[0].location.line == line_of(text, "set: {flag: $row.flag")


def test_expanded_ids_must_be_unique() -> None:
    text = TEMPLATE.replace("  - id: web-registration", "  - id: phone-followup")
    text = text.replace("    overrides: [store-followup]\n", "")
    found = problems(text)
    assert [p.code for p in found] == [Code.DUPLICATE_ID]
    assert found[0].location.line == line_of(text, "- id: phone-followup")
    assert f"p.yaml:{line_of(text, '{row}-followup')}" in (found[0].hint or "")


def test_a_template_needs_row_in_its_id_and_a_table() -> None:
    found = problems(TEMPLATE.replace('"{row}-followup"', "followup"))
    assert found[0].code == Code.BAD_VALUE  # then: `overrides: [store-followup]` is unknown
    assert found[0].location.line == line_of(TEMPLATE, '"{row}-followup"')
    found = problems(TEMPLATE.replace("each: $params.followup", "each: $params.folowup"))
    assert found[0].code == Code.UNKNOWN_PARAMETER
    assert "followup" in (found[0].hint or "")
    found = problems(TEMPLATE.replace("each: $params.followup", "each: followup"))
    assert found[0].code == Code.BAD_REFERENCE


def test_an_override_that_removes_an_overridden_row_is_an_unknown_rule(tmp_path: Path) -> None:
    text = TEMPLATE.replace("      store: {window: 3 days, flag: store_missed, clause: c2}\n", "")
    found = problems(text)
    assert [p.code for p in found] == [Code.UNKNOWN_RULE]
    assert found[0].location.line == line_of(text, "overrides: [store-followup]")


def test_row_outside_a_template_is_a_bad_reference() -> None:
    text = TEMPLATE.replace("then: [{set: {flag: seen}}]", "then: [{assign: $row}]")
    assert [p.code for p in problems(text)] == [Code.BAD_REFERENCE]


# ---------------------------------------------------------------- named conditions

NAMED = (
    HEAD
    + """\
conditions:
  unowned: {doc: nobody owns the customer, when: {not: {exists: $subject.owner}}}
  phone_unowned:
    when: {all: [{condition: unowned}, {eq: [$event.channel, phone]}]}
rules:
  - id: phone-owner
    clause: c1
    on: registered
    when: {condition: phone_unowned}
    then: [{assign: $event.employee}]
  - id: refund-to-pool
    clause: c2
    on: refund
    then:
      - assign: company
        when: {condition: unowned}
"""
)


def test_named_conditions_are_compiled_at_each_use() -> None:
    policy = pe.load_policy_text(NAMED)
    decision = policy.evaluate(
        [
            reg("r1", "C1", "phone"),
            reg("r2", "C2", "web"),
            {
                "id": "f1",
                "type": "refund",
                "at": "2026-03-03T10:00:00+08:00",
                "customer": "C2",
                "amount": 5,
            },
            {
                "id": "f2",
                "type": "refund",
                "at": "2026-03-03T10:00:00+08:00",
                "customer": "C1",
                "amount": 5,
            },
        ],
        as_of="2026-03-10T12:00:00+08:00",
    )
    assert decision.owner("C1") == "li" and decision.owner("C2") == "company"
    assert set(policy.program.pset.conditions) == {"unowned", "phone_unowned"}


def test_a_scope_error_points_at_the_declaration_and_names_the_use() -> None:
    text = NAMED.replace("when: {condition: unowned}", "when: {condition: phone_unowned}")
    [problem] = problems(text)
    assert problem.code == Code.UNDECLARED_EVENT_FIELD
    assert problem.location.line == line_of(text, "{eq: [$event.channel, phone]}")
    use = line_of(text, "when: {condition: phone_unowned}", 1)
    assert f"in named condition 'phone_unowned', used at p.yaml:{use}:" in problem.message


def test_an_unknown_name_is_located_with_a_close_spelling() -> None:
    text = NAMED.replace("when: {condition: phone_unowned}", "when: {condition: phone_unowed}")
    [problem] = problems(text)
    assert problem.code == Code.UNKNOWN_CONDITION
    assert problem.location.line == line_of(text, "phone_unowed")
    assert "phone_unowned" in (problem.hint or "")
    text = NAMED.replace("{condition: unowned}, {eq", "{condition: unowed}, {eq")
    [problem] = problems(text)
    assert problem.code == Code.UNKNOWN_CONDITION
    assert problem.location.line == line_of(text, "unowed")


def test_a_cycle_is_refused() -> None:
    text = NAMED.replace("{not: {exists: $subject.owner}}", "{not: {condition: phone_unowned}}")
    found = problems(text)
    assert Code.CONDITION_CYCLE in [p.code for p in found]
    found = [p for p in found if p.code == Code.CONDITION_CYCLE]
    assert len(found) == 1
    assert "phone_unowned -> unowned -> phone_unowned" in found[0].message or (
        "unowned -> phone_unowned -> unowned" in found[0].message
    )


def test_names_merge_across_files(tmp_path: Path) -> None:
    other = """\
policy: {id: u, title: U, version: "1"}
conditions:
  unowned: {when: {not: {exists: $subject.owner}}, doc: nobody owns the customer}
"""
    (tmp_path / "a.yaml").write_text(NAMED, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(other, encoding="utf-8")
    pe.load_policy(tmp_path)  # declared the same way twice: one condition
    (tmp_path / "b.yaml").write_text(other.replace("not: {exists", "exists: {not"), "utf-8")
    (tmp_path / "b.yaml").write_text(
        other.replace("{not: {exists: $subject.owner}}", "{exists: $subject.owner}"), "utf-8"
    )
    with pytest.raises(PolicyError) as info:
        pe.load_policy(tmp_path)
    [problem] = info.value.problems
    assert problem.code == Code.CONFLICTING_DECLARATIONS
    assert problem.location.file.endswith("b.yaml") and problem.location.line == 3
    assert "a.yaml:" in (problem.hint or "")


def test_the_walkers_read_through_a_named_condition() -> None:
    """Static analysis sees the parameters a named condition reads, the shard planner the
    other subjects it names, and the durable backend leaves it to the closure."""
    from policyengine.analysis import analyze
    from policyengine.distributed import plan

    text = NAMED.replace(
        "  unowned: {doc",
        "  limit: {when: {gt: [$event.amount, $params.cap]}}\n"
        "  referred: {when: {exists: {owner_of: $event.by}}}\n"
        "  unowned: {doc",
    ).replace("rules:\n", "params: {cap: {count: 3}}\nrules:\n")
    text = text.replace(
        "        when: {condition: unowned}",
        "        when:\n"
        "          all: [{condition: unowned}, {condition: limit}, {not: {condition: referred}}]",
    )
    policy = pe.load_policy_text(text)
    assert not [f for f in analyze(policy) if f.code == Code.UNUSED_PARAMETER]
    assert plan(policy).links == {"refund": ("by",)}
    events = [
        {
            "id": "f1",
            "type": "refund",
            "at": "2026-03-03T10:00:00+08:00",
            "customer": "C2",
            "amount": 5,
        },
        {
            "id": "f2",
            "type": "refund",
            "at": "2026-03-03T10:00:00+08:00",
            "customer": "C3",
            "amount": 1,
        },
    ]
    as_of = "2026-03-10T12:00:00+08:00"
    decision = policy.evaluate(events, as_of=as_of)
    assert decision.owner("C2") == "company" and decision.owner("C3") is None
    if available("durable"):
        durable = policy.evaluate(events, as_of=as_of, backend="durable")
        assert durable.model_dump(mode="json") == decision.model_dump(mode="json")



# ---------------------------------------------------------------- the huixiao pack


def _untemplated_pack(tmp_path: Path) -> Path:
    pack = tmp_path / "huixiao"
    pack.mkdir()
    for f in HX.glob("*.yaml"):
        shutil.copy(f, pack / f.name)
    shutil.copy(UNTEMPLATED, pack / "resources.yaml")
    return pack


def test_the_templated_pack_has_the_same_rules() -> None:
    new = pe.load_policy(HX / "resources.yaml").program.rules
    old = pe.load_policy(UNTEMPLATED).program.rules
    assert [r.id for r in new] == [r.id for r in old]
    for a, b in zip(new, old, strict=True):
        assert a.model_dump(exclude={"each"}) == b.model_dump(exclude={"each"}), a.id
    assert {r.id for r in new if r.each} == {
        f"{ch}-{what}"
        for ch in ("feedback", "scattered", "referral")
        for what in ("preheat-window", "second-registration")
    }


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> tuple[pe.Policy, pe.Policy]:
    return pe.load_policy(HX), pe.load_policy(_untemplated_pack(tmp_path_factory.mktemp("hx")))


@pytest.mark.parametrize("name", ["huixiao_march.json", "huixiao_after_sales.json"])
def test_the_templated_pack_decides_as_before_on_the_examples(
    packs: tuple[pe.Policy, pe.Policy], name: str
) -> None:
    events = json.loads((ROOT / "examples" / name).read_text(encoding="utf-8"))
    new, old = packs
    as_of = "2026-09-30T00:00:00+08:00"
    assert new.evaluate(events, as_of=as_of).model_dump(mode="json") == old.evaluate(
        events, as_of=as_of
    ).model_dump(mode="json")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_templated_pack_decides_as_before_on_generated_histories(
    packs: tuple[pe.Policy, pe.Policy], seed: int
) -> None:
    events = generate(40, seed=seed)
    new, old = packs
    as_of = "2026-12-31T00:00:00+08:00"
    assert new.evaluate(events, as_of=as_of).model_dump(mode="json") == old.evaluate(
        events, as_of=as_of
    ).model_dump(mode="json")


def test_a_malformed_clause_id_beside_a_template_is_a_located_error_not_a_crash() -> None:
    """Found by the policy fuzzer: a clause id that is a list made the template expansion
    raise TypeError (an unhashable id) instead of reporting the bad clause."""
    text = (Path(__file__).parents[1] / "policies/huixiao/resources.yaml").read_text("utf-8")
    assert "- id: HX-RM-3\n" in text
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy_text(text.replace("- id: HX-RM-3\n", "- id: []\n"), "resources.yaml")
    assert all(p.location is not None for p in info.value.problems)
    assert any(p.location is not None and p.location.line > 0 for p in info.value.problems)
