"""Shell completion: generated from the parser `main` runs, so it completes what exists."""

from __future__ import annotations

import subprocess

import pytest

from policyengine.cli import build_parser, main
from policyengine.tools.completion import completion_script


def _complete(capsys: pytest.CaptureFixture[str], *words: str) -> list[str]:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    line = " ".join(f"'{w}'" for w in words)
    probe = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _policyengine; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_commands_complete_at_the_first_word(capsys: pytest.CaptureFixture[str]) -> None:
    assert _complete(capsys, "policyengine", "te") == ["test"]
    first = set(_complete(capsys, "policyengine", ""))
    assert {"check", "eval", "fmt", "lsp", "completion", "--version"} <= first


def test_options_and_their_choices_complete_per_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _complete(capsys, "policyengine", "test", "--w") == ["--watch"]
    assert _complete(capsys, "policyengine", "test", "--format", "") == ["text", "json", "junit"]
    assert _complete(capsys, "policyengine", "check", "--format", "") == ["text", "json"]
    assert _complete(capsys, "policyengine", "completion", "") == ["bash", "zsh", "fish"]


def test_every_option_of_the_parser_is_in_every_script() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for shell in ("bash", "zsh", "fish"):
        script = completion_script(parser, shell)
        for name, cmd in sub.choices.items():  # type: ignore[union-attr]
            assert name in script
            for action in cmd._actions:
                for flag in action.option_strings:
                    if flag.startswith("--"):
                        needle = flag if shell != "fish" else f"-l {flag[2:]}"
                        assert needle in script, (shell, name, flag)


def test_the_bash_script_parses() -> None:
    """zsh sources the same function (after bashcompinit); fish's lines are checked above."""
    script = completion_script(build_parser(), "bash")
    subprocess.run(["bash", "-n", "-c", script], check=True, capture_output=True)
