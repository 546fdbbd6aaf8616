"""Error wording a new user can act on: each mistake is located and says what to write.

The inputs are the ones a first user made: a full-width colon or space from a Chinese input
method, a tab in the indentation, a key of a duty written at the rule's level, a param
written as a plain number, a customer number where text belongs, an impossible date, a
mistyped ``--as-of``, and a misspelt key in a scenario file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import policyengine as pe
from policyengine.errors import EventError, Location, Problem
from policyengine.tools.scenarios import collect

HEADER = """\
policy: {id: t, title: test, version: "1", timezone: Asia/Shanghai}
clauses:
  - {id: X-1, text: 原文, reading: a reading}
params:
  window: {duration: 2 days}
events:
  registered: {fields: {customer: str, employee: str, since: "date?", when: "time?"}}
  followed_up: {fields: {customer: str, employee: str}}
rules:
"""  # the rules start on line 10
RULE = """\
  - id: r
    clause: X-1
    on: registered
    then: [{claim: $event.employee}]
"""


def policy_problems(text: str) -> list[Problem]:
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy_text(text, "p.yaml")
    return info.value.problems


def at(p: Problem) -> tuple[int, int]:
    assert p.location is not None
    return p.location.line, p.location.column


# ---------------------------------------------------------------- 1, 2: characters YAML refuses


def test_a_full_width_colon_after_a_key() -> None:
    text = HEADER + RULE.replace("on: registered", "on： registered")
    [p] = policy_problems(text)
    assert (p.code, at(p)) == ("PE100", (12, 7))
    assert "full-width colon" in p.message
    assert p.hint == "write ':' (ASCII) instead of '：'"


def test_a_full_width_colon_inside_an_expectation() -> None:
    rule = RULE + (
        "    expect:\n      event: followed_up\n      within： $params.window\n"
        "      obligation: follow up\n      party: $event.employee\n"
    )
    [p] = policy_problems(HEADER + rule)
    assert (p.code, at(p)) == ("PE100", (16, 13))
    assert p.hint == "write ':' (ASCII) instead of '：'"


def test_a_full_width_comma_in_a_flow_mapping() -> None:
    rule = RULE.replace(
        "then: [{claim: $event.employee}]", "then: [{claim: $event.employee， x: 1}]"
    )
    [p] = policy_problems(HEADER + rule)
    assert p.code == "PE100" and at(p)[0] == 13
    assert p.hint == "write ',' (ASCII) instead of '，'"


def test_a_full_width_space_in_the_indentation() -> None:
    rule = RULE.replace("    on: registered", "\u3000\u3000on: registered")
    [p] = policy_problems(HEADER + rule)
    assert (p.code, at(p)) == ("PE100", (12, 1))
    assert "U+3000" in p.message and "instead of '\u3000'" in (p.hint or "")


def test_a_tab_in_the_indentation() -> None:
    rule = RULE.replace("    then:", "\tthen:")
    [p] = policy_problems(HEADER + rule)
    assert (p.code, at(p)) == ("PE100", (13, 1))
    assert "tab character in the indentation" in p.message
    assert p.hint == "YAML indents with spaces; replace the tab"


def test_chinese_text_with_a_full_width_colon_is_still_fine() -> None:
    text = HEADER.replace("reading: a reading", "reading: 说明：回访") + RULE
    assert pe.load_policy_text(text, "p.yaml").id == "t"


# ---------------------------------------------------------------- 3: a key at the wrong depth

EXPECT = """\
    expect:
      event: followed_up
      match: {customer: $event.customer}
      within: $params.window
      obligation: follow up
      party: $event.employee
"""  # `expect:` is on line 14


def test_missed_written_at_the_rule_level_names_its_home() -> None:
    text = HEADER + RULE + EXPECT + "    missed: [{lapse_claim: $trigger.employee}]\n"
    [p] = policy_problems(text)
    assert (p.code, at(p)) == ("PE101", (20, 5))
    assert p.hint == "'missed' is a key of `expect:` (line 14): check its indentation"
    assert "did you mean 'missed'" not in str(p)


def test_missed_written_inside_within_names_its_home() -> None:
    expect = EXPECT.replace(
        "      within: $params.window\n",
        "      within:\n        missed: [{lapse_claim: $trigger.employee}]\n",
    )
    [p] = policy_problems(HEADER + RULE + expect)
    assert p.code == "PE101" and at(p)[0] == 18
    assert p.hint == "'missed' is a key of `expect:` (line 14): check its indentation"


def test_a_misspelt_key_still_gets_its_spelling() -> None:
    [p] = policy_problems(HEADER + RULE.replace("then:", "thenn:"))
    assert p.hint == "did you mean 'then'?"


# ---------------------------------------------------------------- 4: pydantic's words translated


def test_a_param_written_as_a_plain_number() -> None:
    text = HEADER.replace(
        "  window: {duration: 2 days}\n", "  window: {duration: 2 days}\n  limit: 5\n"
    )
    [p] = policy_problems(text + RULE)
    assert (p.code, at(p)) == ("PE102", (6, 10))
    assert p.message.startswith("a param is a mapping with one kind key (`duration:`, ")
    assert p.message.endswith("like `limit: {count: 5}`; got the number 5")
    assert "Input should be" not in p.message


@pytest.mark.parametrize(
    ("old", "new", "where", "words"),
    [
        (
            "    then: [{claim: $event.employee}]\n",
            "    then: {claim: $event.employee}\n",
            (13, 11),
            "`then` is a list ([a, b], or `- ` lines), even of one item; got a mapping",
        ),
        (
            "    clause: X-1\n",
            "    clause: X-1\n    doc: [a, b]\n",
            (12, 10),
            "`doc` must be text; got a list of 2 items",
        ),
        (
            "    on: registered\n",
            "    on: [registered, 5]\n",
            (12, 22),
            "item 2 of `on` must be text; got the number 5",
        ),
    ],
)
def test_wrong_types_in_the_projects_words(
    old: str, new: str, where: tuple[int, int], words: str
) -> None:
    [p] = policy_problems(HEADER + RULE.replace(old, new))
    assert (p.code, at(p)) == ("PE102", where)
    assert p.message.startswith(words)
    assert "Input should be" not in p.message


def test_every_common_pydantic_kind_has_words() -> None:
    from policyengine.language.loader import Source
    from policyengine.language.validate import error_words

    source = Source("p.yaml", {"x": 1}, {("x",): Location("p.yaml", 1, 4)})
    for kind in (
        "dict_type", "model_type", "string_type", "list_type", "int_type", "int_parsing",
        "bool_type", "float_type", "literal_error", "enum", "too_short", "greater_than_equal",
    ):  # fmt: skip
        words = error_words(
            {
                "type": kind,
                "loc": ("x",),
                "input": True,
                "ctx": {"expected": "'a' or 'b'", "ge": 1},
            },
            source,
        )
        assert (
            words is not None
            and words.startswith("`x` ")
            and words.endswith("got true (true/false)")
        )


# ---------------------------------------------------------------- 5, 7: history values


@pytest.fixture(scope="module")
def policy() -> pe.Policy:
    return pe.load_policy_text(HEADER + RULE, "p.yaml")


def event_problems(policy: pe.Policy, **fields: object) -> list[Problem]:
    event = {"id": "e1", "type": "registered", "at": "2026-03-02T09:00:00+08:00"}
    event.update({"customer": "C1", "employee": "E1"})
    with pytest.raises(EventError) as info:
        policy.evaluate([{**event, **fields}])
    return info.value.problems


def test_a_customer_number_says_it_got_a_number_and_how_to_write_it(policy: pe.Policy) -> None:
    [p] = event_problems(policy, customer=10001)
    assert (p.code, p.event_id, p.field) == ("PE203", "e1", "customer")
    assert (
        p.message
        == 'customer must be non-empty text; got the number 10001; write it as text: "10001"'
    )


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("employee", ["E1"], "employee must be non-empty text; got a list ['E1']"),
        ("employee", {"a": 1}, "employee must be non-empty text; got a mapping {'a': 1}"),
        ("employee", True, "employee must be non-empty text; got true (true/false)"),
        ("id", True, "id must be non-empty text or a whole number; got true (true/false)"),
        ("id", "", "id must be non-empty text or a whole number; got empty text"),
        ("since", 5, "since must be a calendar date like 2026-03-01; got the number 5"),
    ],
)
def test_other_wrong_types_name_what_was_got(
    policy: pe.Policy, field: str, value: object, words: str
) -> None:
    [p] = event_problems(policy, **{field: value})
    assert p.field == field and p.message.startswith(words)


def test_an_impossible_day_of_at(policy: pe.Policy) -> None:
    [p] = event_problems(policy, at="2026-02-30T10:00:00+08:00")
    assert (p.event_id, p.field) == ("e1", "at")
    assert "2026-02 has 28 days, so day 30 does not exist" in p.message
    assert "offset" not in p.message


def test_an_impossible_day_of_a_time_field_and_a_date_field(policy: pe.Policy) -> None:
    [p] = event_problems(policy, when="2026-02-30T10:00:00+08:00")
    assert (p.field, p.code) == ("when", "PE203")
    assert "2026-02 has 28 days" in p.message
    [q] = event_problems(policy, since="2026-13-01")
    assert q.field == "since" and "there is no month 13" in q.message


def test_a_leap_day_is_fine_and_a_missing_offset_is_still_said(policy: pe.Policy) -> None:
    [p] = event_problems(policy, at="2026-02-28T10:00:00")
    assert p.code == "PE204" and "no UTC offset" in p.message
    d = policy.evaluate(
        [
            {
                "id": "e1",
                "type": "registered",
                "at": "2024-02-29T10:00:00+08:00",
                "customer": "C1",
                "employee": "E1",
            }
        ]
    )
    assert d.as_of is not None and (d.as_of.month, d.as_of.day) == (2, 29)


# ---------------------------------------------------------------- 6, 7: the command line


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policyengine", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_an_impossible_day_in_a_csv_history_is_located(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(HEADER + RULE, encoding="utf-8")
    (tmp_path / "h.csv").write_text(
        "id,type,at,customer,employee\ne1,registered,2026-02-30 10:00,C1,E1\n", encoding="utf-8"
    )
    out = cli(tmp_path, "eval", "p.yaml", "h.csv")
    assert out.returncode == 1
    assert "h.csv:2:" in out.stderr and "event 'e1' field 'at'" in out.stderr
    assert "2026-02 has 28 days, so day 30 does not exist" in out.stderr


@pytest.mark.parametrize(
    ("as_of", "words"),
    [("2026-13-01", "there is no month 13"), ("yesterday", "is not an instant with a UTC offset")],
)
def test_a_bad_as_of_names_the_argument_not_the_history(
    tmp_path: Path, as_of: str, words: str
) -> None:
    (tmp_path / "p.yaml").write_text(HEADER + RULE, encoding="utf-8")
    (tmp_path / "h.csv").write_text(
        "id,type,at,customer,employee\ne1,registered,2026-02-27 10:00:00+08:00,C1,E1\n",
        encoding="utf-8",
    )
    out = cli(tmp_path, "eval", "--as-of", as_of, "p.yaml", "h.csv")
    assert out.returncode == 1
    assert "h.csv" not in out.stderr
    assert f"--as-of={as_of!r}" in out.stderr and words in out.stderr
    assert (
        "write --as-of as ISO 8601 with a UTC offset, e.g. --as-of 2026-03-05T12:00:00+08:00"
        in (out.stderr)
    )


# ---------------------------------------------------------------- 8: scenario files


def test_typos_in_a_scenario_file_are_located_with_their_spelling(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(HEADER + RULE, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.yaml").write_text(
        """\
scenarios:
  - name: one
    as_of: 2026-03-01T10:00:00+08:00
    evnets: []
    expcet:
      owners: {C1: E1}
  - name: two
    as_of: 2026-03-01T10:00:00+08:00
    expect:
      onwers: {C1: E1}
""",
        encoding="utf-8",
    )
    with pytest.raises(pe.PolicyError) as info:
        collect(tmp_path)
    unknown = {p.message: (at(p), p.hint) for p in info.value.problems if p.code == "PE101"}
    assert [p.code for p in info.value.problems] == ["PE101"] * 3  # not "missing `expect`" too
    assert unknown == {
        "unknown field 'evnets' in scenarios.0": ((4, 5), "did you mean 'events'?"),
        "unknown field 'expcet' in scenarios.0": ((5, 5), "did you mean 'expect'?"),
        "unknown field 'onwers' in scenarios.1.expect": ((10, 7), "did you mean 'owners'?"),
    }
