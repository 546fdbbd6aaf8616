"""Testing a company overlay: its own scenarios, and which of its base pack's it changes.

``run_overlay(overlay, base=None)`` runs the base pack's scenarios twice, against the base alone
and against the layered policy, and the overlay's own scenarios (its ``tests/``) against the
layered policy. A base scenario that passes alone and fails layered is *changed by the overlay*,
named with the overlay rules that decided differently (from the decisions' traces: a row of an
added or replaced rule, or rows that a disabled or replaced base rule no longer produced). Only
the overlay's own scenarios decide whether it passes (``policyengine test``, exit 2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policyengine.errors import Code, Location, PolicyEngineError, PolicyError, ProblemSink
from policyengine.language.loader import load_source
from policyengine.language.overlays import is_overlay
from policyengine.language.validate import OverlayRecord
from policyengine.policy import Policy, load_policy
from policyengine.runtime.decision import Decision
from policyengine.tools.scenarios import (
    Case,
    Coverage,
    PolicyCache,
    Result,
    collect,
    run_scenario,
)


class LayeredCache(PolicyCache):
    """Policies of ``paths`` (a base, then overlays), whatever path a case names."""

    def __init__(self, paths: list[Path], base_params: Mapping[str, Any] | None = None) -> None:
        super().__init__(base_params)
        self.paths = paths
        self._layered: dict[str, Policy] = {}

    def get(self, path: Path, params: Mapping[str, Any]) -> Policy:
        merged = {**self.base, **params}
        key = repr(sorted(merged.items(), key=lambda kv: kv[0]))
        found = self._layered.get(key)
        if found is None:
            found = self._layered[key] = load_policy(list(self.paths), params=merged)
        return found


@dataclass
class BaseOutcome:
    """One base scenario: alone, and under the overlay."""

    alone: Result
    layered: Result
    rules: list[tuple[str, str]] = field(default_factory=list)  # (rule id, added|replaced|...)

    @property
    def changed(self) -> bool:
        """Passes against the base, fails against the layered policy."""
        return self.alone.passed and not self.layered.passed

    @property
    def name(self) -> str:
        return self.layered.case.scenario.name

    def report(self) -> str:
        who = ", ".join(f"{rid} ({how})" for rid, how in self.rules) or "no overlay rule fired"
        head = f"{self.layered.case.location}: CHANGED by the overlay {self.name} (rules: {who})"
        lines = (line for f in self.layered.failures for line in f.split("\n"))
        return "\n".join([head, *(f"    {line}" for line in lines)])


@dataclass
class OverlayReport:
    overlay: Path
    base: Path
    records: tuple[OverlayRecord, ...]
    own: list[Result]
    base_outcomes: list[BaseOutcome]
    layered: Policy | None = None

    @property
    def changed(self) -> list[BaseOutcome]:
        return [o for o in self.base_outcomes if o.changed]

    @property
    def unchanged(self) -> list[BaseOutcome]:
        return [o for o in self.base_outcomes if o.layered.passed]

    @property
    def failing_alone(self) -> list[BaseOutcome]:
        """Base scenarios that fail against the base itself (not the overlay's doing)."""
        return [o for o in self.base_outcomes if not o.alone.passed]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.own)

    def coverage(self) -> Coverage:
        """Which of the overlay's own rules (added and replaced) its scenarios fired."""
        rules = {rid: rule for rid, rule in self._rules()}
        items = {rid: sum(r.fired.get(rid, 0) for r in self.own) for rid in rules}
        clauses: dict[str, bool] = {}
        for rid, cites in rules.items():
            for c in cites:
                clauses[c] = clauses.get(c, False) or items[rid] > 0
        ids = "+".join(r.id for r in self.records)
        return Coverage(f"overlay {ids}", items, clauses)

    def _rules(self) -> list[tuple[str, tuple[str, ...]]]:
        layered = self.layered
        cites = {r.id: r.clauses for r in layered.compiled.rules} if layered else {}
        return [
            (rid, cites.get(rid, ()))
            for record in self.records
            for rid in (*record.added, *record.replaced)
        ]

    def report(self, verbose: bool = False) -> str:
        ids = "+".join(r.id for r in self.records)
        own_ok = sum(r.passed for r in self.own)
        lines = [
            f"{self.overlay}: overlay {ids} on {self.base}",
            f"  its own scenarios: {own_ok}/{len(self.own)} pass",
        ]
        lines += [r.report() for r in self.own if verbose or not r.passed]
        lines.append(
            f"  base scenarios: {len(self.unchanged)} pass unchanged, {len(self.changed)} "
            f"changed by the overlay, {len(self.failing_alone)} fail without it too"
        )
        lines += [o.report() for o in self.changed]
        lines += [o.layered.report() for o in self.failing_alone if not o.layered.passed]
        for record in self.records:
            lines.append(f"  {record.id}: " + _summary(record))
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "overlay": str(self.overlay),
            "base": str(self.base),
            "passed": self.passed,
            "overlays": [_record_json(r) for r in self.records],
            "scenarios": [_result_json(r) for r in self.own],
            "base_scenarios": [
                {
                    **_result_json(o.layered),
                    "passed_alone": o.alone.passed,
                    "changed_by_overlay": o.changed,
                    "rules": [{"rule": rid, "how": how} for rid, how in o.rules],
                }
                for o in self.base_outcomes
            ],
        }


def _summary(record: OverlayRecord) -> str:
    parts = [
        f"{what} {', '.join(ids)}"
        for what, ids in (
            ("added", record.added),
            ("replaced", record.replaced),
            ("disabled", list(record.disabled)),
        )
        if ids
    ]
    return "; ".join(parts) or "no rule changed"


def _record_json(record: OverlayRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "version": record.version,
        "file": record.file,
        "base": record.base,
        "added": record.added,
        "replaced": record.replaced,
        "disabled": record.disabled,
        "clauses": record.clauses,
        "params": record.params,
        "changed_params": record.changed_params,
    }


def _result_json(r: Result) -> dict[str, Any]:
    return {
        "name": r.case.scenario.name,
        "location": str(r.case.location),
        "passed": r.passed,
        "failures": r.failures,
    }


def run_overlay(overlay: str | Path, base: str | Path | None = None) -> OverlayReport:
    """Test the overlay file or folder ``overlay`` (on ``base``, default: its ``base:``)."""
    root = Path(overlay)
    paths = [Path(base), root] if base is not None else [root]
    layered = load_policy(list(paths))
    records = layered.overlays
    sink = ProblemSink()
    if not records:
        sink.add(
            Code.BAD_VALUE,
            f"{root} holds no overlay (a file with `overlay:` at the top)",
            Location(str(root), 1, 1),
        )
    base_path = Path(base) if base is not None else None
    if base_path is None and records and records[0].base is not None:
        base_path = Path(records[0].base)
    if base_path is None and not sink:
        sink.add(
            Code.MISSING_FIELD,
            "the overlay names no base pack",
            Location(records[0].file, 1, 1),
            "write `base:` in its `overlay:` header, or give --base PATH",
        )
    sink.raise_if_any()
    assert base_path is not None
    cache = LayeredCache(paths)
    own = [run_scenario(case, cache) for case in _cases(root)]
    alone_cache = PolicyCache()
    outcomes: list[BaseOutcome] = []
    for case in _cases(base_path, required=True):
        alone = run_scenario(case, alone_cache)
        under = run_scenario(case, cache)
        outcome = BaseOutcome(alone, under)
        if outcome.changed:
            outcome.rules = _changed_by(
                records, _decision(case, alone_cache), _decision(case, cache), under.fired
            )
        outcomes.append(outcome)
    return OverlayReport(root, base_path, records, own, outcomes, layered)


def is_overlay_path(path: str | Path) -> bool:
    """Whether ``path`` is an overlay file, or a folder whose policy files are all overlays."""
    root = Path(path)
    try:
        files = (
            [root]
            if root.is_file()
            else sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if root.is_dir()
            else []
        )
    except OSError:
        return False
    if not files or root.name == "tests":
        return False
    sources = [load_source(f, ProblemSink()) for f in files]
    return all(s is not None and is_overlay(s) for s in sources)


def _cases(path: Path, required: bool = False) -> list[Case]:
    """The scenarios under ``path`` (none is fine for an overlay, not for its base)."""
    folder = path if path.is_dir() else path.parent
    if not required and not (folder / "tests").is_dir():
        return []
    return [case for suite in collect(folder) for case in suite.cases]


def _decision(case: Case, cache: PolicyCache) -> Decision | None:
    sc = case.scenario
    try:
        return cache.get(case.policy_path, sc.params).evaluate(sc.events, as_of=sc.as_of)
    except PolicyEngineError:
        return None


def _rows(decision: Decision | None) -> Counter[tuple[str, str]]:
    """What each rule decided: the trace's rows (a waiting duty aside), as comparable text."""
    out: Counter[tuple[str, str]] = Counter()
    for row in decision.trace if decision is not None else ():
        if row.kind != "expectation":
            out[(row.rule, repr((row.kind, row.subject, row.party, row.at, row.detail)))] += 1
    return out


def _changed_by(
    records: tuple[OverlayRecord, ...],
    alone: Decision | None,
    layered: Decision | None,
    fired: Mapping[str, int],
) -> list[tuple[str, str]]:
    """The overlay rules behind a changed scenario: an added rule's decisions, a replaced
    rule's decisions that differ from the base rule's, a disabled rule's missing ones."""
    before, after = _rows(alone), _rows(layered)
    differ = {rule for rule, _ in (before - after) + (after - before)}
    found: list[tuple[str, str]] = []
    for record in records:
        for rid in record.added:
            if any(rule == rid for rule, _ in after):
                found.append((rid, "added"))
        for rid in record.replaced:
            if rid in differ:
                found.append((rid, "replaced"))
        for rid in record.disabled:
            if any(rule == rid for rule, _ in before):
                found.append((rid, "disabled"))
    if not found:  # only an indirect effect: name the overlay rules that ran at all
        found = [
            (rid, how)
            for record in records
            for how, ids in (("added", record.added), ("replaced", record.replaced))
            for rid in ids
            if fired.get(rid)
        ]
    return found


__all__ = [
    "BaseOutcome",
    "LayeredCache",
    "OverlayReport",
    "PolicyError",
    "is_overlay_path",
    "run_overlay",
]
