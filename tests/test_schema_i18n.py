"""Issue 6: the editor's hover text is bilingual. Every description a definition of the JSON
Schema carries, and the root's, has English and Chinese, so a reader of either language is
served; a new model without a translated docstring fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from policyengine.language.model import policy_json_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "schema/policy.schema.json"
_LATIN = re.compile(r"[A-Za-z]")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _bilingual(text: str) -> bool:
    return bool(_LATIN.search(text)) and bool(_CJK.search(text))


def _schemas() -> list[dict[str, Any]]:
    return [json.loads(SCHEMA_FILE.read_text(encoding="utf-8")), policy_json_schema()]


@pytest.mark.parametrize("schema", _schemas(), ids=["checked-in", "generated"])
def test_definition_descriptions_are_bilingual(schema: dict[str, Any]) -> None:
    described = {
        name: d["description"] for name, d in schema["definitions"].items() if "description" in d
    }
    assert described, "no definition has a description"
    missing = sorted(name for name, text in described.items() if not _bilingual(text))
    assert not missing, f"descriptions without both English and Chinese: {missing}"


@pytest.mark.parametrize("schema", _schemas(), ids=["checked-in", "generated"])
def test_root_description_is_bilingual(schema: dict[str, Any]) -> None:
    assert _bilingual(schema["description"])


def test_bilingual_check_rejects_one_language() -> None:
    assert not _bilingual("A named number of the manual.")
    assert not _bilingual("手册中的具名参数")
    assert _bilingual("A named number of the manual. / 手册中的具名参数")
