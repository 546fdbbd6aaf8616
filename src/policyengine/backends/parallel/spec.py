"""A policy as plain data, for another process or a cluster worker: ``policy_spec`` gives its
loaded YAML and parameter overrides (compiled closures do not pickle), ``rebuild`` compiles it
again there and refuses a rebuild that resolves its parameters differently."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from policyengine.errors import ProblemSink
from policyengine.language import model as m
from policyengine.language.loader import Source
from policyengine.language.program import HasProgram, Program, build, program_of


@dataclass(frozen=True)
class PolicySpec:
    """A policy as plain data, to rebuild it in another process or on a cluster worker:
    compiled closures do not pickle, the loaded YAML (``Source``) and the parameters do."""

    sources: tuple[Source, ...]
    files: tuple[str, ...]
    params: dict[str, Any]  # overrides, written as a params file would write them
    expected: dict[str, Any]  # the resolved values, to check the rebuild
    calendars: tuple[Source, ...] = ()  # calendar files given beside the policy


def _money_text(v: m.Money) -> str:
    return str(v.low) if v.low == v.high else f"{v.low}-{v.high}"


def _written(value: Any, kind: str) -> Any:
    if kind == "duration":
        return value.text
    if kind == "money":
        return _money_text(value)
    if kind == "table":
        return {
            k: _money_text(v) if isinstance(v, m.Money) else str(v) if isinstance(v, Decimal) else v
            for k, v in value.items()
        }
    return str(value) if isinstance(value, Decimal) else value


def policy_spec(policy: Program | HasProgram) -> PolicySpec:
    """``policy`` as data (its YAML and its parameter overrides)."""
    policy = program_of(policy)
    pset = policy.pset
    if not policy.sources or pset is None:
        raise ValueError("this policy carries no sources; load it with load_policy")
    overrides: dict[str, Any] = {}
    for name, value in policy.compiled.params.items():
        decl = pset.params.get(name)
        if decl is not None and value != decl.value():
            overrides[name] = _written(value, decl.kind)
    return PolicySpec(
        tuple(policy.sources),
        tuple(policy.files),
        overrides,
        dict(policy.compiled.params),
        tuple(policy.calendars),
    )


def rebuild(spec: PolicySpec) -> Program:
    """The policy again, in this process; refuses a rebuild that resolves differently."""
    built = build(
        list(spec.sources),
        ProblemSink(),
        dict(spec.params),
        list(spec.files),
        list(spec.calendars),
    )
    if built.compiled.params != spec.expected:
        raise RuntimeError("the policy rebuilt in a worker resolves its parameters differently")
    return built
