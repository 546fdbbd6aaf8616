"""Company overlays, between validate and compile: a file with ``overlay:`` layered on a
validated base set (new clauses, events, parameters, rules and calendar days; ``replace:``
of a base rule in place; ``disable:`` with a reason), every problem located in the overlay.
What each overlay changed is kept on the set (``PolicySet.overlays``, ``OverlayRecord``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from os.path import normpath
from pathlib import PurePath
from typing import Any, Final

from pydantic import ValidationError

from policyengine.errors import Code, Location, ProblemSink, did_you_mean
from policyengine.language import model as m
from policyengine.language.loader import Path_, Source
from policyengine.language.validate import (
    MAX_FILE_PROBLEMS,
    Kept,
    OverlayRecord,
    PolicySet,
    RuleSite,
    _calendar_files,
    _check_precedence,
    _problem_from_error,
    merge_calendars,
)


def is_overlay(source: Source) -> bool:
    """A file whose top key is ``overlay:``: layered on a base pack (``apply_overlays``)."""
    return isinstance(source.data, dict) and "overlay" in source.data


@dataclass
class OverlaySite(RuleSite):
    """A rule of an overlay: under ``rules:`` (new) or ``replace:`` (in a base rule's place)."""

    section: str = "rules"

    def locate(self, *path: str | int, key: bool = False) -> Location:
        return self.source.locate((self.section, self.index, *path), key=key)


def apply_overlays(
    pset: PolicySet,
    overlays: list[Source],
    sink: ProblemSink,
    bases: list[Source],
    calendars: list[Source] | None = None,
) -> None:
    """Layer company overlays on a validated base set, in order; every problem is located in
    the overlay. ``bases``/``calendars``: the base's sources, for the merged calendar."""
    entries: list[tuple[m.CalendarSpec, Source, Path_]] = []
    for source in overlays:
        validated = _overlay_file(source, sink)
        if validated is None:
            continue
        of, kept = validated
        base = of.overlay.base
        record = OverlayRecord(
            of.overlay.id,
            of.overlay.title,
            of.overlay.version,
            source.file,
            normpath(PurePath(source.file).parent / base) if base is not None else None,
        )
        pset.overlays.append(record)
        pset.files.append(source.file)
        pset.ids.append(of.overlay.id)
        pset.versions.append(of.overlay.version)
        _overlay_declarations(pset, of, source, record, sink, kept)
        _overlay_rules(pset, of, source, record, sink, kept)
        if of.calendar is not None:
            entries.append((of.calendar, source, ("calendar",)))
            record.calendar = True
    if entries and "calendar" not in pset.broken:
        _overlay_calendar(pset, bases, calendars or [], entries, sink)
    if pset.overlays:
        _overlay_precedence(pset, sink)


_OVERLAY_LISTS: Final = ("clauses", "rules", "replace", "disable")
_OVERLAY_MAPS: Final = ("params", "events")


def _overlay_file(source: Source, sink: ProblemSink) -> tuple[m.OverlayFile, Kept] | None:
    """The overlay, validated, with the original index of each list entry kept: entries with
    errors are reported and left out (the rest is still checked); an error in the header
    leaves the whole overlay out."""
    try:
        return m.OverlayFile.model_validate(source.data), {}
    except ValidationError as exc:
        errors = exc.errors()
        shown = [e for e in errors if not source.is_spoiled(tuple(e["loc"]))]
        for err in shown[:MAX_FILE_PROBLEMS]:
            _problem_from_error(err, source, sink)
    assert isinstance(source.data, dict)
    data = dict(source.data)
    bad: dict[str, set[Any]] = {}
    for err in errors:
        loc = err["loc"]
        if len(loc) < 2 or loc[0] not in (*_OVERLAY_LISTS, *_OVERLAY_MAPS):
            return None
        bad.setdefault(loc[0], set()).add(loc[1])
    kept: Kept = {}
    for section, drop in bad.items():
        items = data.get(section)
        if isinstance(items, list):
            kept[section] = [i for i in range(len(items)) if i not in drop]
            data[section] = [items[i] for i in kept[section]]
        elif isinstance(items, dict):
            data[section] = {k: v for k, v in items.items() if k not in drop}
    try:
        return m.OverlayFile.model_validate(data), kept
    except ValidationError:
        return None


def _overlay_declarations(
    pset: PolicySet,
    of: m.OverlayFile,
    source: Source,
    record: OverlayRecord,
    sink: ProblemSink,
    kept: Kept,
) -> None:
    """New clauses and event types; new parameters, or the company's declaration of a base
    parameter (of the same kind: its value for every evaluation of the layered policy)."""
    local: set[str] = set()
    for k, clause in enumerate(of.clauses):
        where = source.locate(("clauses", _original(kept, "clauses", k), "id"))
        if clause.id in local:
            sink.add(Code.DUPLICATE_ID, f"clause {clause.id!r} is carried twice", where)
        elif clause.id in pset.clauses:
            sink.add(
                Code.DUPLICATE_ID,
                f"clause {clause.id!r} is already in the base",
                where,
                "cite the base clause as it is, or give the company's clause an id of its own",
            )
        else:
            pset.clauses[clause.id] = clause
            record.clauses.append(clause.id)
        local.add(clause.id)
    for name, etype in of.events.items():
        where = source.locate(("events", name), key=True)
        if name in pset.events:
            if pset.events[name] != etype:
                sink.add(
                    Code.CONFLICTING_DECLARATIONS,
                    f"event type {name!r} is declared differently in the base",
                    where,
                    "an overlay adds event types; leave out (or repeat exactly) the base's",
                )
            continue
        pset.events[name] = etype
        record.events.append(name)
    for name, param in of.params.items():
        where = source.locate(("params", name), key=True)
        declared = pset.params.get(name)
        if declared is None:
            record.params.append(name)
        elif declared.kind != param.kind:
            sink.add(
                Code.CONFLICTING_DECLARATIONS,
                f"parameter {name!r} is a {declared.kind} in the base, not a {param.kind}",
                where,
                f"the base declares it at {pset.param_sites[name]}; give the company's value "
                f"as a {declared.kind}",
            )
            continue
        else:
            record.changed_params.append(name)
        pset.params[name] = param
        pset.param_sites[name] = where


def _original(kept: Kept, section: str, k: int) -> int:
    return kept[section][k] if section in kept else k


def _overlay_rules(
    pset: PolicySet,
    of: m.OverlayFile,
    source: Source,
    record: OverlayRecord,
    sink: ProblemSink,
    kept: Kept,
) -> None:
    """``replace:`` in place (the base rule's position and precedence), ``disable:``, then
    the new ``rules:`` after the base's (their actions run after the base's in a step)."""
    where_of = {s.rule.id: k for k, s in enumerate(pset.rules)}
    for k, rule in enumerate(of.replace):
        site = OverlaySite(rule, source, _original(kept, "replace", k), section="replace")
        at = where_of.get(rule.id)
        if rule.id in record.replaced:
            sink.add(Code.DUPLICATE_ID, f"rule {rule.id!r} is replaced twice", site.locate("id"))
        elif at is None:
            sink.add(
                Code.UNKNOWN_RULE,
                f"replace: the base has no rule {rule.id!r}",
                site.locate("id"),
                did_you_mean(rule.id, where_of) or "a new rule goes under `rules:`",
            )
        else:
            pset.rules[at] = site
            record.replaced.append(rule.id)
            _overlay_cites(pset, site, sink)
    for k, spec in enumerate(of.disable):
        where = source.locate(("disable", _original(kept, "disable", k), "rule"))
        if spec.rule in record.replaced:
            sink.add(
                Code.CONFLICTING_DECLARATIONS,
                f"rule {spec.rule!r} is both replaced and disabled",
                where,
                "keep one of the two",
            )
        elif spec.rule in record.disabled:
            sink.add(Code.DUPLICATE_ID, f"rule {spec.rule!r} is disabled twice", where)
        elif spec.rule not in where_of:
            sink.add(
                Code.UNKNOWN_RULE,
                f"disable: the base has no rule {spec.rule!r}",
                where,
                did_you_mean(spec.rule, where_of),
            )
        else:
            record.disabled[spec.rule] = spec.reason
    if record.disabled:
        pset.rules[:] = [s for s in pset.rules if s.rule.id not in record.disabled]
        where_of = {s.rule.id: k for k, s in enumerate(pset.rules)}
    for k, rule in enumerate(of.rules):
        site = OverlaySite(rule, source, _original(kept, "rules", k), section="rules")
        if rule.id in where_of or rule.id in record.disabled:
            first = pset.rules[where_of[rule.id]] if rule.id in where_of else None
            base = first is not None and not isinstance(first, OverlaySite)
            sink.add(
                Code.DUPLICATE_ID,
                f"rule {rule.id!r} is already in the base"
                if base or first is None
                else f"duplicate rule id {rule.id!r}",
                site.locate("id"),
                "to change the base rule, list the whole rule under `replace:`"
                + (f" (the base rule is at {first.locate('id')})" if first is not None else "")
                + "; to add a rule, give it an id of its own",
            )
            continue
        pset.rules.append(site)
        where_of[rule.id] = len(pset.rules) - 1
        record.added.append(rule.id)
        _overlay_cites(pset, site, sink)


def _overlay_cites(pset: PolicySet, site: RuleSite, sink: ProblemSink) -> None:
    """An overlay's rule cites clauses of the overlay or of its base."""
    rule = site.rule
    for j, cid in enumerate(rule.clauses):
        if cid in pset.clauses or cid in pset.broken:
            continue
        path: tuple[str | int, ...] = ("clause",) if isinstance(rule.clause, str) else ("clause", j)
        sink.add(
            Code.UNKNOWN_CLAUSE,
            f"rule {rule.id!r} cites clause {cid!r}, which neither the overlay nor its base "
            "carries",
            site.locate(*path),
            did_you_mean(cid, pset.clauses)
            or "add the clause (id, text, reading) under the overlay's `clauses:`",
        )


def _overlay_precedence(pset: PolicySet, sink: ProblemSink) -> None:
    """The overlays' rules may override only rules of the layered set; no new cycle. A base
    rule's ``overrides:`` of a disabled rule is dropped (there is nothing left to override)."""
    sites = {s.rule.id: s for s in pset.rules}
    disabled = {rid: r for r in pset.overlays for rid in r.disabled}
    templates = any(s.rule.each is not None and s.row is None for s in pset.rules)
    for site in pset.rules:
        if not isinstance(site, OverlaySite):
            continue
        for j, target in enumerate(site.rule.overrides):
            if target in disabled:
                sink.add(
                    Code.UNKNOWN_RULE,
                    f"rule {site.rule.id!r} overrides rule {target!r}, which overlay "
                    f"{disabled[target].id!r} disables",
                    site.locate("overrides", j),
                    "drop it from `overrides:`",
                )
            elif target not in sites and target not in pset.broken and not templates:
                sink.add(
                    Code.UNKNOWN_RULE,
                    f"rule {site.rule.id!r} overrides unknown rule {target!r}",
                    site.locate("overrides", j),
                    did_you_mean(target, sites),
                )
    if disabled:
        pset.rules[:] = [_without(site, disabled) for site in pset.rules]
    if templates:
        return  # checked once the overlays' templates are expanded
    scratch = ProblemSink()
    _check_precedence(pset, sites, scratch)  # the base's own problems are reported already
    for problem in scratch.problems:
        if problem.code == Code.PRECEDENCE_CYCLE and problem not in sink.problems:
            sink.problems.append(problem)


def _without(site: RuleSite, disabled: Mapping[str, Any]) -> RuleSite:
    """``site`` with the disabled rules left out of its ``overrides:``."""
    if not any(t in disabled for t in site.rule.overrides):
        return site
    kept = [t for t in site.rule.overrides if t not in disabled]
    return replace(site, rule=site.rule.model_copy(update={"overrides": kept}))


def _overlay_calendar(
    pset: PolicySet,
    bases: list[Source],
    calendars: list[Source],
    entries: list[tuple[m.CalendarSpec, Source, Path_]],
    sink: ProblemSink,
) -> None:
    """The base's calendar blocks and files, then the overlays', merged as ``calendar:``
    blocks merge; only problems found in an overlay are new (the base's are reported)."""
    scratch = ProblemSink()
    found: list[tuple[m.CalendarSpec, Source, Path_]] = []
    for source in bases:
        data = source.data
        if isinstance(data, dict) and isinstance(data.get("calendar"), dict):
            try:
                found.append(
                    (m.CalendarSpec.model_validate(data["calendar"]), source, ("calendar",))
                )
            except ValidationError:
                continue
    found += _calendar_files(calendars, scratch)
    pset.calendar = merge_calendars([*found, *entries], scratch)
    files = {source.file for _, source, _ in entries}
    sink.problems.extend(
        p for p in scratch.problems if p.location is not None and p.location.file in files
    )
