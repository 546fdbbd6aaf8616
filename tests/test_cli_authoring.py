"""The command line for policy authors (issue 19): `check` over trees of packs with a summary,
`accept_only` event types, `--version`, `explain --format json`, help on every argument."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from policyengine.__main__ import main
from policyengine.cli import build_parser
from policyengine.version import __version__

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
PACKS = sorted(p for p in POLICIES.iterdir() if p.is_dir())
HUIXIAO = str(POLICIES / "huixiao")
MARCH = str(ROOT / "examples" / "huixiao_march.json")

POLICY = """\
policy: {id: demo, title: demo, version: "1"}
clauses:
  - {id: D-1, text: 记录每次回访。, reading: Every follow-up is recorded.}
events:
  follow_up: {fields: {customer: str}}
  survey_sent: {fields: {customer: str}}
rules:
  - id: visits-are-recorded
    clause: D-1
    on: follow_up
    then: [{violation: a follow-up was recorded}]
"""


# ------------------------------------------------------------------ check over trees of packs


def test_check_a_tree_of_packs(capsys: pytest.CaptureFixture[str]) -> None:
    """README's `policyengine check policies/`: every pack of the tree, then a summary."""
    assert main(["check", str(POLICIES)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"{len(PACKS)} packs checked: 0 errors, 0 warnings"


def test_check_strict_passes_on_the_shipped_packs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--strict", str(POLICIES)]) == 0
    assert capsys.readouterr().err.strip().splitlines() == [
        f"{len(PACKS)} packs checked: 0 errors, 0 warnings"
    ]


def test_check_tree_skips_tests_and_finds_nested_packs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "a.yaml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "a" / "tests").mkdir()
    (tmp_path / "a" / "tests" / "t.yaml").write_text("scenarios: []\n", encoding="utf-8")
    (tmp_path / "group" / "b").mkdir(parents=True)
    broken = tmp_path / "group" / "b" / "b.yaml"
    broken.write_text(POLICY.replace("clause: D-1", "clause: D-9"), encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "x.yaml").write_text("not: a policy\n", encoding="utf-8")
    assert main(["check", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert any(line.startswith(f"{broken}:") and " PE108 " in line for line in err), err
    assert not any("/tests/" in line for line in err), err  # scenario files are not policies
    assert err[-1] == "2 packs checked: 1 error, 1 warning"  # a's survey_sent is unused


def test_check_json_names_the_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = tmp_path / "packs" / "a"
    pack.mkdir(parents=True)
    (pack / "a.yaml").write_text(POLICY, encoding="utf-8")
    assert main(["check", str(tmp_path / "packs"), "--format", "json"]) == 0
    [found] = json.loads(capsys.readouterr().out)
    assert found["code"] == "PE405" and found["pack"] == str(pack)
    assert main(["check", str(tmp_path / "packs"), "--format", "json", "--strict"]) == 1


def test_check_an_empty_folder_is_still_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "PE116" in err and "1 pack checked: 1 error, 0 warnings" in err


# ------------------------------------------------------------------ accept_only event types


def test_accept_only_silences_unused_event_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(POLICY, encoding="utf-8")
    assert main(["check", "--strict", str(f)]) == 1
    assert "PE405 warning: event type 'survey_sent'" in capsys.readouterr().err
    f.write_text(
        POLICY.replace("survey_sent: {fields:", "survey_sent: {accept_only: true, fields:"),
        encoding="utf-8",
    )
    assert main(["check", "--strict", str(f)]) == 0
    assert "PE405" not in capsys.readouterr().err


def test_service_system_declares_its_vocabulary_accept_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "--strict", str(POLICIES / "service_system")]) == 0
    assert capsys.readouterr().err.strip() == "1 pack checked: 0 errors, 0 warnings"


# ------------------------------------------------------------------ --version


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"policyengine {__version__}"


# ------------------------------------------------------------------ explain --format json


def test_explain_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", HUIXIAO, MARCH, "--subject", "C-liu", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["subject"] == "C-liu"
    assert set(data["json"]) == {
        "owner",
        "ownership",
        "penalties",
        "obligations",
        "trace",
        "what_if",
    }
    assert data["json"]["owner"] == "sun"
    assert "HX-RS-2 原文" in data["text"]
    assert main(["explain", HUIXIAO, MARCH, "--subject", "C-liu"]) == 0
    assert capsys.readouterr().out.strip() == data["text"].strip()


# ------------------------------------------------------------------ help on every argument


def _commands(
    parser: argparse.ArgumentParser, name: str = "policyengine"
) -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                out.extend(_commands(p, f"{name} {sub}"))
    return out


def test_every_argument_has_help() -> None:
    missing = [
        f"{name}: {'/'.join(action.option_strings) or action.dest}"
        for name, parser in _commands(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert missing == []
