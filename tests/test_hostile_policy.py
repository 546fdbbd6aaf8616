"""Hostile and broken policy input (issue 14): every bad input is one located ``PolicyError``
with a code, in bounded time and memory; never a traceback, never a silent misreading."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import policyengine as pe
from policyengine.language.loader import MAX_BYTES, MAX_DEPTH

HEADER = """\
policy: {id: t, title: test, version: "1"}
clauses:
  - {id: X-1, text: 原文, reading: a reading}
params:
  window: {duration: 2 days}
events:
  ping: {fields: {customer: str, employee: str}}
"""
RULES = "rules:\n  - id: r\n    clause: X-1\n    on: ping\n    then: [{claim: $event.employee}]\n"


def policy(params: str = "", events: str = "", rules: str = RULES) -> str:
    text = HEADER.replace("params:\n", "params:\n" + params)
    return text.replace("events:\n", "events:\n" + events) + rules


def expect_rule(within: str) -> str:
    return (
        "rules:\n  - id: r\n    clause: X-1\n    on: ping\n"
        f"    expect: {{event: ping, within: {within}}}\n"
    )


def refused(text: str, **kw: Any) -> list[pe.Problem]:
    started = time.process_time()  # CPU time: a busy machine does not fail it
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy_text(text, "p.yaml", **kw)
    assert time.process_time() - started < 10, "refusing must take bounded time"
    for p in info.value.problems:
        assert p.location is not None and p.location.line >= 1, p
    return info.value.problems


def the_problem(text: str, code: str, line: int | None = None, **kw: Any) -> pe.Problem:
    ps = refused(text, **kw)
    assert [p.code for p in ps] == [code], ps
    if line is not None:
        assert ps[0].location is not None and ps[0].location.line == line, ps[0]
    return ps[0]


# (id, text, code, line, a word of the message)
CASES: list[tuple[str, str, str, int | None, str]] = [
    # control characters and lone surrogates
    ("nul", HEADER + "rules: []\n# a\x00b\n", "PE100", 9, "U+0000"),
    ("bel", HEADER.replace("test", "te\x07st") + "rules: []\n", "PE100", 1, "U+0007"),
    ("nul escape", HEADER.replace('"1"', '"\\0"') + "rules: []\n", "PE100", 1, "U+0000"),
    ("bel escape", HEADER.replace('"1"', '"\\a"') + "rules: []\n", "PE100", 1, "U+0007"),
    (
        "surrogate escape",
        HEADER.replace('"1"', '"\\ud800"') + "rules: []\n",
        "PE100",
        1,
        "surrogate",
    ),
    ("surrogate raw", HEADER.replace("test", "te\ud800st") + "rules: []\n", "PE100", 1, "U+D800"),
    ("surrogate key", HEADER + 'rules: []\n"\\udfff": 1\n', "PE100", 9, "U+DFFF"),
    ("binary", "\x00\x01\x02\xff\xfe", "PE100", 1, "U+0000"),
    # scalar tags that do not construct
    ("int abc", policy("  c: {count: !!int abc}\n"), "PE100", 5, "'abc'"),
    ("float x", policy("  c: {number: !!float x}\n"), "PE100", 5, "'x'"),
    ("bool maybe", policy("  c: {text: !!bool maybe}\n"), "PE100", 5, "'maybe'"),
    ("int sexagesimal tag", policy("  c: {count: !!int '1:30'}\n"), "PE100", 5, "1:30"),
    ("int tag on a list", policy("  c: {count: !!int [1]}\n"), "PE100", 5, "list"),
    # integers beyond Python's str -> int limit
    ("5000 digits", policy("  c: {count: " + "9" * 5000 + "}\n"), "PE102", 5, "5000 digits"),
    ("5000 digit number", policy("  c: {number: " + "9" * 5000 + "}\n"), "PE102", 5, "digits"),
    ("huge float", policy("  c: {number: 1" + "0" * 400 + ".5}\n"), "PE102", 5, "finite"),
    # YAML 1.1 sexagesimals are never 90
    ("count 1:30", policy("  c: {count: 1:30}\n"), "PE102", 5, "1:30"),
    ("count 1:30:00", policy("  c: {count: 1:30:00}\n"), "PE102", 5, "1:30:00"),
    ("number 1:30", policy("  c: {number: 1:30}\n"), "PE102", 5, "1:30"),
    ("salary_days 1:30", policy("  c: {salary_days: 1:30}\n"), "PE102", 5, "1:30"),
    ("money 1:30", policy("  c: {money: 1:30}\n"), "PE106", 5, "1:30"),
    ("duration 1:30", policy("  c: {duration: 1:30}\n"), "PE106", 5, "1:30"),
    ("duration 1:30:00", policy("  c: {duration: 1:30:00}\n"), "PE106", 5, "1:30:00"),
    # NaN and infinities
    ("money .nan", policy("  c: {money: .nan}\n"), "PE102", 5, "finite"),
    ("money .inf", policy("  c: {money: .inf}\n"), "PE102", 5, "finite"),
    ("money NaN", policy("  c: {money: NaN}\n"), "PE106", 5, "finite"),
    ("money Infinity", policy("  c: {money: Infinity}\n"), "PE106", 5, "finite"),
    ("money range to inf", policy("  c: {money: 10-Infinity}\n"), "PE106", 5, "finite"),
    ("number .nan", policy("  c: {number: .nan}\n"), "PE102", 5, "finite"),
    ("number -.inf", policy("  c: {number: -.inf}\n"), "PE102", 5, "finite"),
    ("number NaN", policy("  c: {number: NaN}\n"), "PE102", 5, "finite"),
    ("number Infinity", policy("  c: {number: 'Infinity'}\n"), "PE102", 5, "finite"),
    ("number sNaN", policy("  c: {number: sNaN}\n"), "PE102", 5, "finite"),
    ("number text", policy("  c: {number: abc}\n"), "PE102", 5, "abc"),
    ("salary_days .inf", policy("  c: {salary_days: .inf}\n"), "PE102", 5, "finite"),
    ("salary_days NaN", policy("  c: {salary_days: NaN}\n"), "PE102", 5, "finite"),
    ("table .nan", policy("  c: {table: {a: .nan}}\n"), "PE102", 5, "finite"),
    ("table -.inf", policy("  c: {table: {a: -.inf}}\n"), "PE102", 5, "finite"),
    ("table NaN", policy("  c: {table: {a: NaN}}\n"), "PE102", 5, "finite"),
    ("table Infinity", policy("  c: {table: {a: -Infinity}}\n"), "PE102", 5, "finite"),
    (
        "field min .nan",
        policy(events="  e: {fields: {n: {type: int, min: .nan}}}\n"),
        "PE102",
        7,
        "",
    ),
    (
        "field max .inf",
        policy(events="  e: {fields: {n: {type: int, max: .inf}}}\n"),
        "PE102",
        7,
        "",
    ),
    (
        "field min > max",
        policy(events="  e: {fields: {n: {type: int, min: 5, max: 1}}}\n"),
        "PE102",
        7,
        "greater than max",
    ),
    (
        "field min bool",
        policy(events="  e: {fields: {n: {type: int, min: true}}}\n"),
        "PE102",
        7,
        "",
    ),
    # defaults of the wrong type for their kind
    ("count true", policy("  c: {count: true}\n"), "PE102", 5, "boolean"),
    ("count text", policy("  c: {count: abc}\n"), "PE102", 5, "abc"),
    ("count 1.5", policy("  c: {count: 1.5}\n"), "PE102", 5, "fractional"),
    ("number false", policy("  c: {number: false}\n"), "PE102", 5, "boolean"),
    ("money true", policy("  c: {money: true}\n"), "PE102", 5, "boolean"),
    ("duration 5", policy("  c: {duration: 5}\n"), "PE102", 5, "must be text; got the number 5"),
    ("text 5", policy("  c: {text: 5}\n"), "PE102", 5, "must be text; got the number 5"),
    ("table list", policy("  c: {table: [1, 2]}\n"), "PE102", 5, ""),
    # durations whose calendar arithmetic would overflow
    ("8000 years", policy("  c: {duration: 8000 years}\n"), "PE106", 5, "100 years"),
    ("99999999 days", policy("  c: {duration: 99999999 days}\n"), "PE106", 5, "100 years"),
    ("5000 digit days", policy("  c: {duration: " + "9" * 5000 + " days}\n"), "PE106", 5, "long"),
    ("1201 months", policy("  c: {duration: 1201 months}\n"), "PE106", 5, "100 years"),
    ("within 8000 years", HEADER + expect_rule("8000 years"), "PE106", 12, "100 years"),
    ("within 99999999 days", HEADER + expect_rule("99999999 days"), "PE106", 12, "100 years"),
    (
        "ago 8000 years",
        HEADER
        + "rules:\n  - id: r\n    clause: X-1\n    on: ping\n"
        + "    when: {gt: [$event.at, {ago: 8000 years}]}\n    then: [{claim: a}]\n",
        "PE106",
        12,
        "100 years",
    ),
    # the shape of the document
    ("top list", "- 1\n- 2\n", "PE102", 1, "mapping"),
    ("top scalar", "5\n", "PE102", 1, "mapping"),
    ("null policy", "policy: null\nrules: []\n", "PE102", 1, ""),
    (
        "null params",
        HEADER.replace("  window: {duration: 2 days}\n", "").replace("params:\n", "params: null\n")
        + "rules: []\n",
        "PE102",
        4,
        "",
    ),
    ("null rules", HEADER + "rules: null\n", "PE102", 8, ""),
    ("key is a list", HEADER + "rules: []\n? [a]\n: x\n", "PE102", 9, "plain text"),
    ("tab indent", HEADER + "rules:\n\t- id: r\n", "PE100", 9, "replace the tab"),
    ("two documents", HEADER + "rules: []\n---\na: 1\n", "PE100", 9, ""),
    ("empty", "", "PE114", 1, "empty"),
]


@pytest.mark.parametrize(
    ("text", "code", "line", "word"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_refused_at_load(text: str, code: str, line: int | None, word: str) -> None:
    p = the_problem(text, code, line)
    assert word in str(p), p


def test_numbers_that_look_like_yaml_1_1_stay_text() -> None:
    # a table cell reads text as text: 1:30 is "1:30", 010 is "010", never 90 or 8
    pol = pe.load_policy_text(policy("  c: {table: {a: 1:30, b: 010, c: 0o10, d: 1_000}}\n"))
    assert pol.program.compiled.params["c"] == {
        "a": "1:30",
        "b": Decimal(10),
        "c": Decimal(8),
        "d": Decimal(1000),
    }


@pytest.mark.parametrize(
    "style", ["flow list", "flow map", "block list", "compact list", "block map", "mixed"]
)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 2, 1_000, 5_000])
def test_deep_nesting_is_refused_before_recursion(style: str, depth: int) -> None:
    text = {
        "flow list": "[" * depth + "]" * depth,
        "flow map": "{a: " * depth + "1" + "}" * depth,
        "block list": "".join("  " * i + "-\n" for i in range(min(depth, 1_000))),
        "compact list": "- " * depth + "x\n",
        "block map": "".join(" " * i + "a:\n" for i in range(min(depth, 2_000))),
        "mixed": "a: " + "[{b: " * depth + "1" + "}]" * depth + "\n",
    }[style]
    p = the_problem(text, "PE105")
    assert str(MAX_DEPTH) in str(p)


def test_nesting_within_the_limit_still_loads_to_the_usual_errors() -> None:
    # 20 levels of `not` is deep but fine: no PE105
    cond = "{not: " * 20 + "{eq: [1, 1]}" + "}" * 20
    text = (
        HEADER
        + f"rules:\n  - {{id: r, clause: X-1, on: ping, when: {cond}, then: [{{claim: a}}]}}\n"
    )
    assert pe.load_policy_text(text) is not None


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(HEADER + "rules: []\n" + "#" * MAX_BYTES + "\n")
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy(big)
    [p] = info.value.problems
    assert p.code == "PE105" and "5 MiB" in p.message and str(p.location).startswith(str(big))
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy_text(HEADER + "#" * MAX_BYTES)
    assert info.value.codes == ["PE105"]


def test_a_file_at_the_size_cap_is_not_refused_for_its_size(tmp_path: Path) -> None:
    text = HEADER + "rules: []\n"
    f = tmp_path / "ok.yaml"
    f.write_text(text + "#" * (MAX_BYTES - len(text.encode()) - 1) + "\n")
    assert pe.load_policy(f) is not None


def test_too_many_values_is_refused_quickly() -> None:
    started = time.process_time()  # CPU time: a busy machine does not fail it
    p = the_problem("a: [" + ",".join(["1"] * 250_000) + "]\n", "PE105")
    assert "200000" in str(p) and time.process_time() - started < 10


def test_a_long_override_chain_does_not_recurse() -> None:
    n = 3_000
    rules = "".join(
        f"  - {{id: r{i}, clause: X-1, on: ping, overrides: [r{i + 1}], then: [{{claim: a}}]}}\n"
        for i in range(n)
    )
    rules += f"  - {{id: r{n}, clause: X-1, on: ping, then: [{{claim: a}}]}}\n"
    pol = pe.load_policy_text(HEADER + "rules:\n" + rules)
    ranks = {r.id: r.rank for r in pol.program.compiled.rules}
    assert ranks["r0"] > ranks["r1"] > ranks[f"r{n}"]
    # a long cycle is one PE112, not a RecursionError
    cyc = rules.replace(f"id: r{n}, clause", f"id: r{n}, overrides: [r0], clause")
    assert "PE112" in refused(HEADER + "rules:\n" + cyc)[0].code


# -------------------------------------------------------------- files and params files


def test_not_utf8_is_located(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_bytes(HEADER.encode() + b"rules: []\n# \xff\xfe\n")
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy(f)
    [p] = info.value.problems
    assert p.code == "PE100" and p.location is not None and p.location.line == 9


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_bytes(b"\xef\xbb\xbf" + (HEADER + "rules: []\n").encode())
    assert pe.load_policy(f) is not None


@pytest.mark.parametrize("path", ["a\x00b.yaml", "x" * 5000, "/nonexistent/p.yaml"])
def test_unreadable_paths_are_pe116(path: str) -> None:
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy(path)
    assert info.value.codes == ["PE116"]


def test_a_device_is_read_up_to_the_cap_only() -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy("/dev/zero")
    assert info.value.codes == ["PE105"]


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    f = tmp_path / "p.yaml"
    f.write_text(HEADER + "rules: []\n")
    return f


@pytest.mark.parametrize(
    ("text", "line", "word"),
    [
        ("params: 5\n", 1, "an int"),
        ("params: [1, 2]\n", 1, "a list"),
        ("params: null\n", 1, "mapping"),
        ("- 1\n- 2\n", 1, "a list"),
        ("5\n", 1, "an int"),
        ("just text\n", 1, "text"),
    ],
)
def test_params_file_not_a_mapping(pack: Path, text: str, line: int, word: str) -> None:
    pf = pack.parent / "params.yaml"
    pf.write_text(text)
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy(pack, params_file=pf)
    [p] = info.value.problems
    assert p.code == "PE102" and word in p.message
    assert p.location is not None and p.location.file == str(pf) and p.location.line == line
    with pytest.raises(pe.PolicyError):
        pe.language.program.load_params_file(pf)  # type: ignore[attr-defined]


def test_params_file_values_are_checked_like_declarations(pack: Path) -> None:
    pf = pack.parent / "params.yaml"
    for text, code in [
        ("window: .nan\n", "PE102"),
        ("window: 8000 years\n", "PE106"),
        ("params: {window: 99999999 days}\n", "PE106"),
        ("window: !!python/object:os.system x\n", "PE104"),
    ]:
        pf.write_text(text)
        with pytest.raises(pe.PolicyError) as info:
            pe.load_policy(pack, params_file=pf)
        assert info.value.codes == [code], text
    pf.write_text("params: {window: 3 days}\n")
    assert pe.load_policy(pack, params_file=pf) is not None


def test_params_file_that_is_a_directory(pack: Path) -> None:
    d = pack.parent / "params.yaml"
    d.mkdir()
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy(pack, params_file=d)
    assert info.value.codes == ["PE116"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (5, "PE102"),
        ("window", "PE102"),
        ([("window", "3 days")], "PE102"),
        ({1: "3 days"}, "PE102"),
        ({"window": float("nan")}, "PE106"),
        ({"window": True}, "PE106"),
        ({"window": "8000 years"}, "PE106"),
    ],
)
def test_bad_params_overrides(pack: Path, params: Any, code: str) -> None:
    for load in (
        lambda: pe.load_policy(pack, params=params),
        lambda: pe.load_policy_text(HEADER + "rules: []\n", params=params),
    ):
        with pytest.raises(pe.PolicyError) as info:
            load()
        assert info.value.codes == [code]
        assert info.value.first.location is not None


def test_number_overrides_refuse_nan(pack: Path) -> None:
    text = policy("  n: {number: 1}\n  m: {money: 10}\n  s: {salary_days: 1}\n") + ""
    for name in ("n", "m", "s"):
        for bad in (float("nan"), float("inf"), "NaN", "-Infinity", True):
            with pytest.raises(pe.PolicyError):
                pe.load_policy_text(text, params={name: bad})


@pytest.mark.parametrize("text", [None, 5, b"\xff\xfe", ["policy: x"]])
def test_policy_text_of_the_wrong_type(text: Any) -> None:
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy_text(text)
    assert info.value.codes == ["PE100"]


def test_check_command_reports_hostile_input(tmp_path: Path) -> None:
    from policyengine.cli import main

    f = tmp_path / "p.yaml"
    f.write_text("[" * 5_000 + "]" * 5_000)
    assert main(["check", str(f)]) not in (0, 3)


@pytest.mark.parametrize(
    "field",
    [
        "{type: int, default: abc}",
        "{type: int, default: true}",
        "{type: bool, default: 1}",
        "{type: decimal, default: .nan}",
        "{type: decimal, default: x}",
        "{type: 'list[int]', default: [a]}",
        "{type: str, enum: [a, b], default: c}",
    ],
)
def test_a_field_default_of_the_wrong_type_is_refused_at_load(field: str) -> None:
    text = f"""
policy: {{id: d, title: t, version: "1"}}
clauses: [{{id: C-1, text: t, reading: r}}]
events:
  bought: {{fields: {{customer: str, n: {field}}}}}
rules:
  - {{id: r, clause: C-1, on: bought, then: [{{assign: company}}]}}
"""
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy_text(text, "p.yaml")
    assert info.value.codes == ["PE102"]
    assert str(info.value).startswith("p.yaml:5:")
