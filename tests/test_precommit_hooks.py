"""`.pre-commit-hooks.yaml`: each hook is a command the CLI has, and passes on what we ship."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
import yaml

from policyengine.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))


def test_the_hooks_are_the_three_authors_checks() -> None:
    ids = [h["id"] for h in HOOKS]
    assert ids == ["policyengine-fmt", "policyengine-check", "policyengine-test"]
    for hook in HOOKS:
        assert hook["language"] == "python" and hook["entry"].startswith("policyengine ")
        assert {"id", "name", "entry", "language"} <= set(hook)


@pytest.mark.parametrize("hook", HOOKS, ids=[h["id"] for h in HOOKS])
def test_each_hook_parses_and_passes_on_the_shipped_packs(
    hook: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    args: list[object] = hook.get("args", [])  # type: ignore[assignment]
    argv = shlex.split(str(hook["entry"]))[1:] + [str(a) for a in args]
    if hook.get("pass_filenames", True):
        argv += [str(p.relative_to(ROOT)) for p in sorted((ROOT / "policies").rglob("*.yaml"))]
    build_parser().parse_args(argv)  # a renamed option fails here, not in a user's commit
    cwd = Path.cwd()
    os.chdir(ROOT)  # pre-commit runs hooks at the repository's root
    try:
        assert main(argv) == 0, capsys.readouterr()
    finally:
        os.chdir(cwd)
