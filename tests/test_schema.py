"""The checked-in JSON Schema (editor completion) must match the language models, be draft-07
(what the YAML language server reads), and accept every shipped policy.

``jsonschema`` is not a dependency, so :func:`schema_errors` is a small draft-07 validator for
exactly the keywords the generated schema uses; a keyword it does not know fails the test, so
a new pydantic output is noticed rather than silently ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policyengine.__main__ import main
from policyengine.errors import ProblemSink
from policyengine.language.loader import load_source
from policyengine.language.model import policy_json_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "schema/policy.schema.json"
PACKAGED_SCHEMA = ROOT / "src/policyengine/data/policy.schema.json"  # in the wheel
REGENERATE = (
    "regenerate both with `policyengine schema --output schema/policy.schema.json` and "
    "`policyengine schema --output src/policyengine/data/policy.schema.json`"
)
DRAFT_07 = "http://json-schema.org/draft-07/schema#"
ANNOTATIONS = frozenset({"title", "description", "default", "$schema", "definitions"})
KNOWN = ANNOTATIONS | {
    "$ref",
    "type",
    "properties",
    "additionalProperties",
    "required",
    "items",
    "anyOf",
    "oneOf",
    "enum",
    "const",
    "minItems",
    "minLength",
    "minimum",
}


def shipped_policies() -> list[Path]:
    return sorted(p for p in (ROOT / "policies").rglob("*.yaml") if "tests" not in p.parts)


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    raise AssertionError(f"unknown JSON Schema type {kind!r}")


def schema_errors(
    value: Any, node: dict[str, Any], root: dict[str, Any], path: str = "$"
) -> list[str]:
    """Every way ``value`` breaks ``node`` (draft-07, the keywords in KNOWN only)."""
    unknown = set(node) - KNOWN
    assert not unknown, f"the validator does not know {sorted(unknown)} (at {path})"
    if "$ref" in node:  # draft-07: $ref replaces its siblings
        ref = node["$ref"]
        assert ref.startswith("#/definitions/"), ref
        return schema_errors(value, root["definitions"][ref.split("/")[-1]], root, path)
    out: list[str] = []
    if "type" in node:
        kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
        if not any(_type_ok(value, k) for k in kinds):
            return [f"{path}: {value!r} is not of type {node['type']}"]
    if "enum" in node and value not in node["enum"]:
        out.append(f"{path}: {value!r} is not one of {node['enum']}")
    if "const" in node and value != node["const"]:
        out.append(f"{path}: {value!r} is not {node['const']!r}")
    if isinstance(value, str) and len(value) < node.get("minLength", 0):
        out.append(f"{path}: shorter than {node['minLength']}")
    if "minimum" in node and _type_ok(value, "number") and value < node["minimum"]:
        out.append(f"{path}: below {node['minimum']}")
    if isinstance(value, list):
        if len(value) < node.get("minItems", 0):
            out.append(f"{path}: fewer than {node['minItems']} items")
        if "items" in node:
            for i, item in enumerate(value):
                out += schema_errors(item, node["items"], root, f"{path}[{i}]")
    if isinstance(value, dict):
        props = node.get("properties", {})
        out += [f"{path}: {r!r} is required" for r in node.get("required", []) if r not in value]
        for key, item in value.items():
            if key in props:
                out += schema_errors(item, props[key], root, f"{path}.{key}")
            elif node.get("additionalProperties") is False:
                out.append(f"{path}: {key!r} is not allowed")
            elif isinstance(node.get("additionalProperties"), dict):
                out += schema_errors(item, node["additionalProperties"], root, f"{path}.{key}")
    if "anyOf" in node:
        branches = [schema_errors(value, b, root, path) for b in node["anyOf"]]
        if all(branches):
            out.append(f"{path}: matches none of anyOf: {min(branches, key=len)}")
    if "oneOf" in node:
        branches = [schema_errors(value, b, root, path) for b in node["oneOf"]]
        good = sum(not b for b in branches)
        if good != 1:
            out.append(f"{path}: matches {good} branches of oneOf (exactly one needed)")
    return out


def validate(document: Any) -> list[str]:
    schema = policy_json_schema()
    return schema_errors(document, schema, schema)


def _walk(node: Any) -> list[Any]:
    out = [node]
    if isinstance(node, dict):
        for v in node.values():
            out += _walk(v)
    elif isinstance(node, list):
        for v in node:
            out += _walk(v)
    return out


@pytest.mark.parametrize("path", [SCHEMA_FILE, PACKAGED_SCHEMA], ids=lambda p: p.parent.name)
def test_schema_file_is_up_to_date(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The models are the one source: both checked-in copies (the editor's, and the wheel's
    package data) are byte for byte what ``policyengine schema`` prints."""
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk == policy_json_schema(), f"{path.relative_to(ROOT)} is stale: {REGENERATE}"
    assert main(["schema"]) == 0
    assert path.read_text(encoding="utf-8") == capsys.readouterr().out, REGENERATE


def test_schema_is_draft_07() -> None:
    schema = policy_json_schema()
    assert schema["$schema"] == DRAFT_07
    assert "policy file" in schema["title"] and "策略文件" in schema["title"]
    assert schema["description"]
    text = SCHEMA_FILE.read_text(encoding="utf-8")
    for word in ("$defs", "prefixItems", "discriminator", "$dynamicRef", "unevaluated"):
        assert word not in text, word
    refs = [n["$ref"] for n in _walk(schema) if isinstance(n, dict) and "$ref" in n]
    assert refs
    for ref in refs:
        assert ref.startswith("#/definitions/"), ref
        assert ref.removeprefix("#/definitions/") in schema["definitions"], ref


@pytest.mark.parametrize("path", shipped_policies(), ids=lambda p: p.name)
def test_every_shipped_policy_names_the_schema(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix), path
    named = (path.parent / first.removeprefix(prefix).strip()).resolve()
    assert named == SCHEMA_FILE, f"{path}: {named} is not {SCHEMA_FILE}"


@pytest.mark.parametrize("path", shipped_policies(), ids=lambda p: p.name)
def test_every_shipped_policy_validates(path: Path) -> None:
    sink = ProblemSink()
    source = load_source(path, sink)  # the engine's own YAML reading (`on:` stays a key)
    assert source is not None
    assert validate(source.data) == []


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ({"policy": {"id": "x", "title": "t", "version": "1"}, "rulez": []}, "'rulez'"),
        ({"policy": {"title": "t", "version": "1"}}, "'id' is required"),
        (
            {
                "policy": {"id": "x", "title": "t", "version": "1"},
                "events": {"e": {"fields": {"a": "string"}}},
            },
            "anyOf",
        ),
        (
            {
                "policy": {"id": "x", "title": "t", "version": "1"},
                "clauses": [{"id": "C", "text": "t", "reading": "r"}],
                "rules": [{"id": "r", "clause": "C", "on": "e", "then": [{"asign": "li"}]}],
            },
            "oneOf",
        ),
    ],
)
def test_the_schema_refuses_what_the_language_refuses(document: Any, why: str) -> None:
    errors = validate(document)
    assert errors and any(why in e for e in errors), errors
