"""The policy language as draft-07 JSON Schema, for editors, derived from the models.

``policy_json_schema()`` is what ``policyengine schema`` prints and ``schema/`` ships.
"""

from __future__ import annotations

from typing import Any, Final, get_args

from policyengine.language.declarations import FieldType, PolicyFile


def _draft07(node: Any) -> Any:
    """Rewrite pydantic's 2020-12 output into draft-07, which the YAML language server reads:
    ``$defs`` -> ``definitions``, ``prefixItems`` -> ``items`` (array form), and the OpenAPI
    ``discriminator`` keyword dropped (a callable discriminator has no mapping anyway)."""
    if isinstance(node, list):
        return [_draft07(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "discriminator":
            continue
        if key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/$defs/", "#/definitions/")
        elif key == "$defs":
            out["definitions"] = _draft07(value)
        elif key == "prefixItems":
            out["items"] = _draft07(value)
            if "items" in node:  # 2020-12 `items` after a tuple is draft-07 `additionalItems`
                out["additionalItems"] = _draft07(node["items"])
        elif key == "items" and "prefixItems" in node:
            continue
        else:
            out[key] = _draft07(value)
    return out


# Short forms the models accept through ``mode="before"`` validators, which pydantic's schema
# cannot see: an event field written ``str`` / ``int?`` / ``[a, b]``, and a numeric version.
_FIELD_SHORT_FORMS: Final[list[dict[str, Any]]] = [
    {
        "type": "string",
        "enum": [t + q for t in get_args(FieldType) for q in ("", "?")],
        "description": "a field type; `?` marks it optional / 字段类型;`?` 表示可省略",
    },
    {
        "type": "array",
        "items": {"type": "string"},
        "minItems": 1,
        "description": "an enum of text values / 文本枚举值",
    },
]


def policy_json_schema() -> dict[str, Any]:
    """The language as draft-07 JSON Schema, for editors (the YAML language server reads
    draft-07: name it with ``# yaml-language-server: $schema=...`` on a policy's first line)."""
    schema: dict[str, Any] = _draft07(PolicyFile.model_json_schema(by_alias=True))
    defs = schema["definitions"]
    fields = defs["EventType"]["properties"]["fields"]
    fields["additionalProperties"] = {
        "anyOf": [fields["additionalProperties"], *_FIELD_SHORT_FORMS]
    }
    version = defs["Meta"]["properties"]["version"]
    defs["Meta"]["properties"]["version"] = {
        "anyOf": [{"type": "string"}, {"type": "number"}],
        "title": version.get("title", "Version"),
        "description": 'the policy\'s version, e.g. "1.0.0" / 策略版本',
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        **schema,
        "title": "policyengine 策略文件 / policy file",
        "description": "policyengine 策略文件:条款、参数、事件类型与规则(见 docs/language.md)。"
        " / A policyengine policy file: clauses, parameters, event types and rules"
        " (reference: docs/language.md).",
    }
