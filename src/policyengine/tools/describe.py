"""``policyengine describe``: what an integrator needs to build a history for a pack.

One home for a policy's self-description: its event types and their fields (type, optional,
allowed values, default, meaning), its parameters (kind, declared value, meaning) and its
clauses (id, kind, original text, reading). ``describe`` gives it as JSON-ready data,
``render_text`` as aligned tables in ``--lang en|zh``; ``GET /v1/policy`` (tools/service.py)
builds its clause and event lists from the same functions.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from policyengine.policy import Policy
from policyengine.tools.present import Lang, plain, word
from policyengine.tools.tables import table

PARAM_KINDS = ("duration", "money", "count", "number", "salary_days", "text", "table")


def _jsonable(value: Any) -> Any:
    """A YAML value as JSON: containers walked, numbers kept, anything else as its text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _jsonable(dump(mode="json", exclude_none=True))
    return str(value)


def clauses(policy: Policy) -> list[dict[str, Any]]:
    """Every clause: ``{id, text, reading, kind}``, in declaration order."""
    return [
        {"id": c.id, "text": c.text, "reading": c.reading, "kind": c.kind}
        for c in policy.compiled.clauses.values()
    ]


def event_types(policy: Policy) -> dict[str, dict[str, Any]]:
    """Every event type the policy accepts: ``{doc, fields: [{name, type, optional, enum,
    default, min, max, doc}]}``; a field's ``enum`` sorted, ``None`` when any value goes."""
    declared = policy.pset.events if policy.pset is not None else {}
    out: dict[str, dict[str, Any]] = {}
    for etype, checks in policy.compiled.events.items():
        decl = declared.get(etype)
        specs = decl.fields if decl is not None else {}
        fields = []
        for f in checks:
            spec = specs.get(f.name)
            fields.append(
                {
                    "name": f.name,
                    "type": f.type,
                    "optional": not f.required,
                    "enum": None if f.enum is None else sorted(f.enum, key=str),
                    "default": _jsonable(f.default),
                    "min": f.min,
                    "max": f.max,
                    "doc": spec.doc if spec is not None else None,
                }
            )
        out[etype] = {"doc": decl.doc if decl is not None else None, "fields": fields}
    return out


def params(policy: Policy) -> list[dict[str, Any]]:
    """Every parameter: ``{name, kind, default, doc}`` (``default`` as declared in the pack)."""
    out = []
    for name, decl in policy.compiled.param_decls.items():
        kind = next((k for k in PARAM_KINDS if getattr(decl, k) is not None), None)
        value = getattr(decl, kind) if kind is not None else None
        out.append({"name": name, "kind": kind, "default": _jsonable(value), "doc": decl.doc})
    return out


def describe(policy: Policy) -> dict[str, Any]:
    """The policy's self-description, JSON-ready (``describe --format json``)."""
    compiled = policy.compiled
    return {
        "id": policy.id,
        "version": policy.version,
        "timezone": compiled.timezone,
        "currency": compiled.currency,
        "subject_field": compiled.subject_field,
        "unknown_events": compiled.unknown_events,
        "events": event_types(policy),
        "params": params(policy),
        "clauses": clauses(policy),
    }


def render_text(desc: dict[str, Any], lang: Lang = "en") -> str:
    """``describe(policy)`` as aligned tables, headings in ``lang``; pack text as written."""

    def w(key: str) -> str:
        return word(key, lang)

    head = w("d_head").format(
        id=desc["id"],
        version=desc["version"],
        tz=desc["timezone"],
        currency=desc["currency"],
        subject=desc["subject_field"],
    )
    parts = [head, f"\n{w('d_event_types')} ({len(desc['events'])})"]
    heads = [w(k) for k in ("d_field", "d_type", "d_optional", "d_enum", "d_default", "d_doc")]
    for etype, spec in desc["events"].items():
        title = etype + (f": {spec['doc']}" if spec["doc"] else "")
        if not spec["fields"]:
            parts.append(f"\n{title}\n  {w('d_no_fields')}")
            continue
        rows = [
            [f["name"], f["type"], f["optional"], f["enum"], f["default"], f["doc"]]
            for f in spec["fields"]
        ]
        parts.append(f"\n{title}\n{table(heads, rows, lang=lang)}")
    if desc["params"]:
        rows = [[p["name"], p["kind"], p["default"], p["doc"]] for p in desc["params"]]
        heads = [w(k) for k in ("d_param", "kind", "d_default", "d_doc")]
        parts.append(f"\n{w('d_params')} ({len(rows)})\n{table(heads, rows, lang=lang)}")
    parts.append(f"\n{w('clauses')} ({len(desc['clauses'])})")
    for c in desc["clauses"]:
        lines = [f"\n{c['id']} ({plain(c['kind'])})"]
        lines.append(f"  {w('clause_text')}: {plain(c['text'])}")
        if c["reading"]:
            lines.append(f"  {w('reading')}: {plain(c['reading'])}")
        parts.append("\n".join(lines))
    return "\n".join(parts)
