"""Fuzzing the loader (issue 14): any policy text ends as a ``Policy`` or a ``PolicyEngineError``,
never another exception. Generated YAML-ish text and mutations of the shipped packs' files.

Size: 3 properties x the profile's examples (``HYPOTHESIS_PROFILE``, tests/strategies.py), at
most 120 each, plus the regression inputs below; a few seconds on the ci profile.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import policyengine as pe
from strategies import profile

ROOT = Path(__file__).resolve().parents[1]
PACK_FILES = sorted((ROOT / "policies").glob("*/*.yaml"))
PACK_TEXTS = [p.read_text(encoding="utf-8") for p in PACK_FILES]
EXAMPLES = min(profile().max_examples, 120)


def outcome(text: str) -> str:
    """'ok' or the error's codes; anything else than our family fails the test."""
    try:
        pe.load_policy_text(text, "fuzz.yaml")
    except pe.PolicyEngineError as exc:
        assert exc.problems and all(p.code.startswith("PE") for p in exc.problems)
        for p in exc.problems:
            assert p.location is not None, p
        return ",".join(exc.codes)
    return "ok"


# every input that once ended in a raw exception, a recursion error or a silent misreading
REGRESSIONS = [
    "a: \x00",
    "a: b\x07",
    'a: "\\ud800"',
    "a: \ud800",
    "a: !!int abc",
    "a: !!float x",
    "a: !!bool maybe",
    "a: !!int [1]",
    "a: " + "9" * 5000,
    "a: 1" + "0" * 400 + ".0",
    "[" * 3000 + "]" * 3000,
    "{a: " * 3000 + "1" + "}" * 3000,
    "- " * 3000 + "x",
    "".join(" " * i + "a:\n" for i in range(1500)),
    "policy: {id: t, title: t, version: .nan}\nrules: []\n",
    "policy: {id: t, title: t, version: '1'}\nparams: {c: {money: NaN}}\nrules: []\n",
    "policy: {id: t, title: t, version: '1'}\nparams: {c: {table: {a: NaN}}}\nrules: []\n",
    "policy: {id: t, title: t, version: '1'}\nparams: {c: {number: 1:30}}\nrules: []\n",
    "policy: {id: t, title: t, version: '1'}\nparams: {c: {salary_days: x}}\nrules: []\n",
    "policy: {id: t, title: t, version: '1'}\nparams: {c: {duration: 8000 years}}\nrules: []\n",
    '"\\udfff": 1',
    "\x00\x01\x02\xff\xfe",
]


@pytest.mark.parametrize("text", REGRESSIONS, ids=[f"r{i}" for i in range(len(REGRESSIONS))])
def test_regressions(text: str) -> None:
    assert outcome(text) != "ok"


TOKENS = [*"ab01:-[]{},\"'!&*#|>?%@`\n\t .\\", "  ", "- ", ": ", "!!", "\x00", "\ud800", "é"]
YAMLISH = st.lists(st.sampled_from(TOKENS), max_size=120).map("".join)


@settings(profile(), max_examples=EXAMPLES, deadline=None)
@given(YAMLISH)
def test_yamlish_text(text: str) -> None:
    outcome(text)


SCALARS = st.sampled_from(
    [
        "1:30",
        "1:30:00",
        ".nan",
        "-.inf",
        "NaN",
        "Infinity",
        "!!int abc",
        "!!float x",
        "!!bool maybe",
        "9" * 5000,
        "8000 years",
        "99999999 days",
        "null",
        "~",
        "[]",
        "{}",
        '"\\0"',
        '"\\ud800"',
        "&a x",
        "*a",
        "010",
        "0x1F",
        "true",
        "-1",
        "''",
        "[" * 80 + "]" * 80,
    ]
)


@st.composite
def mutated_pack(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(PACK_TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "scalar", "nest"]))
        at = draw(st.integers(0, len(text)))
        if kind == "insert":
            text = text[:at] + draw(st.text(max_size=5)) + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif kind == "replace":
            text = text[:at] + draw(st.text(min_size=1, max_size=3)) + text[at + 1 :]
        elif kind == "scalar":
            # replace the value after a `: ` near `at` with a hostile scalar
            colon = text.find(": ", at)
            if colon != -1:
                end = text.find("\n", colon)
                end = len(text) if end == -1 else end
                text = text[: colon + 2] + draw(SCALARS) + text[end:]
        else:
            depth = draw(st.integers(1, 200))
            text = text[:at] + "[" * depth + "x" + "]" * depth + text[at:]
    return text


@settings(profile(), max_examples=EXAMPLES, deadline=None)
@given(mutated_pack())
def test_mutated_packs(text: str) -> None:
    outcome(text)


def test_the_packs_themselves_load() -> None:
    assert PACK_TEXTS
    for text in PACK_TEXTS:
        assert outcome(text) == "ok"
