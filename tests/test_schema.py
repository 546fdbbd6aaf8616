"""The checked-in JSON Schema (editor completion) must match the language models."""

from __future__ import annotations

import json
from pathlib import Path

from policyengine.model import policy_json_schema

ROOT = Path(__file__).resolve().parents[1]


def test_schema_file_is_up_to_date() -> None:
    on_disk = json.loads((ROOT / "schema/policy.schema.json").read_text(encoding="utf-8"))
    assert on_disk == policy_json_schema(), (
        "schema/policy.schema.json is stale: regenerate it with "
        ".venv/bin/python -c 'import json; from policyengine.model import policy_json_schema; "
        "print(json.dumps(policy_json_schema(), indent=2, ensure_ascii=False, sort_keys=True))'"
        " > schema/policy.schema.json"
    )


def test_every_shipped_policy_names_the_schema() -> None:
    for path in (ROOT / "policies").rglob("*.yaml"):
        if "tests" in path.parts:
            continue
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
