"""A broken copy of a shipped policy with five different mistakes: one load reports all five,
each at its line and column, with a "did you mean" where a name is misspelt."""

from __future__ import annotations

from pathlib import Path

import pytest

import policyengine as pe
from policyengine.__main__ import main

SHIPPED = Path(__file__).resolve().parents[1] / "policies/online_store/online_store.yaml"

# (original line, broken line) - each a different kind of mistake
MISTAKES = [
    # 1. a bad duration in a parameter
    (
        '  initial_solution: {duration: 4 hours, doc: "OS-2: initial solution',
        '  initial_solution: {duration: 4 hourz, doc: "OS-2: initial solution',
    ),
    # 2. a misspelt event type awaited by an expectation
    (
        "      event: consultation_answered\n      match: {consultation: $event.consultation}\n"
        "      within: $params.online_response",
        "      event: consultation_answerd\n      match: {consultation: $event.consultation}\n"
        "      within: $params.online_response",
    ),
    # 3. a misspelt key of an expectation
    (
        "      obligation: reply to the e-mail consultation",
        "      obligaton: reply to the e-mail consultation",
    ),
    # 4. an unknown parameter and 5. an unknown event field, on one line
    (
        "    when: {gt: [$event.rings, $params.phone_rings]}",
        "    when: {gt: [$event.ring, $params.phone_ring]}",
    ),
]


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    text = SHIPPED.read_text(encoding="utf-8")
    for original, wrong in MISTAKES:
        assert text.count(original) == 1, original
        text = text.replace(original, wrong)
    path = tmp_path / "online_store.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _line_col(path: Path, needle: str, offset: int = 0) -> tuple[int, int]:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return n, line.index(needle) + 1 + offset
    raise AssertionError(needle)


def test_all_five_mistakes_in_one_run(broken: Path) -> None:
    with pytest.raises(pe.PolicyError) as info:
        pe.load_policy(broken)
    found = sorted(
        (p.location.line, p.location.column, p.code)
        for p in info.value.problems
        if p.location is not None
    )
    expected = sorted(
        [
            (*_line_col(broken, "{duration: 4 hourz"), "PE106"),
            (*_line_col(broken, "consultation_answerd"), "PE109"),
            (*_line_col(broken, "obligaton:"), "PE101"),
            (*_line_col(broken, "$event.ring,"), "PE113"),
            (*_line_col(broken, "$params.phone_ring]"), "PE110"),
        ]
    )
    assert found == expected, str(info.value)
    text = str(info.value)
    assert "did you mean 'consultation_answered'" in text
    assert "did you mean 'obligation'" in text
    assert "did you mean 'phone_rings'" in text
    assert "did you mean 'rings'" in text


def test_the_command_line_reports_them_as_file_line_col(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(broken)]) == 1
    err = capsys.readouterr().err
    lines = [line.strip() for line in err.splitlines() if line.strip().startswith(str(broken))]
    assert len(lines) == 5, err
    assert all(line.split(":")[1].isdigit() and line.split(":")[2].isdigit() for line in lines)
