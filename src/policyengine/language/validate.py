"""Stage 2, validate: loaded YAML -> pydantic models, merged into one policy set.

Every problem of every file is collected (pydantic reports all field errors of a file at
once; the cross-file checks run on whatever validated) and mapped back to ``file:line:col``
through the loader's position table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, get_args

from pydantic import BaseModel, ValidationError

from policyengine.calendars import STATUTORY, Calendar, parse_hours
from policyengine.errors import Code, Location, ProblemSink, did_you_mean
from policyengine.language import model as m
from policyengine.language.loader import Path_, Source


@dataclass
class RuleSite:
    """A rule together with where it was written, so later stages can point at it."""

    rule: m.Rule
    source: Source
    index: int  # position in its file's `rules` list
    row: str | None = None  # made from a rule template (`each:`): the row's key

    def locate(self, *path: str | int, key: bool = False) -> Location:
        return self.source.locate(("rules", self.index, *path), key=key)


@dataclass
class PolicySet:
    """All files of one policy, validated and merged."""

    ids: list[str]
    versions: list[str]
    meta: m.Meta
    clauses: dict[str, m.Clause] = field(default_factory=dict)
    params: dict[str, m.Param] = field(default_factory=dict)
    param_sites: dict[str, Location] = field(default_factory=dict)
    events: dict[str, m.EventType] = field(default_factory=dict)
    rules: list[RuleSite] = field(default_factory=list)
    labels: dict[str, tuple[m.Label, Source]] = field(default_factory=dict)
    # named conditions (`conditions:`), with the file that declares each
    conditions: dict[str, tuple[m.NamedCondition, Source]] = field(default_factory=dict)
    metrics: list[tuple[m.Metric, Source, int]] = field(default_factory=list)
    awards: list[tuple[m.Award, Source, int]] = field(default_factory=list)
    invariants: list[tuple[m.PolicyInvariant, Source, int]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # names whose declaration had errors
    calendar: Calendar = STATUTORY  # every file's `calendar:` and the calendar file, merged
    # company overlays layered on the files above, in order (``apply_overlays``)
    overlays: list[OverlayRecord] = field(default_factory=list)

    @property
    def id(self) -> str:
        return "+".join(self.ids)

    @property
    def version(self) -> str:
        return "+".join(self.versions)


def _all_keys() -> set[str]:
    keys: set[str] = set()
    stack: list[type[BaseModel]] = [m.PolicyFile]
    seen: set[type[BaseModel]] = set()
    for mod_obj in vars(m).values():
        if isinstance(mod_obj, type) and issubclass(mod_obj, BaseModel):
            stack.append(mod_obj)
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for name, info in cls.model_fields.items():
            keys.add(info.alias or name)
    return keys


_KNOWN_KEYS = _all_keys()


def _key_homes() -> dict[str, set[str]]:
    """Each key of the language -> the keys whose mapping holds it (``missed`` -> ``expect``):
    a key written at the wrong depth is a valid key of a nearby model, and saying where it
    belongs helps where "did you mean 'missed'?" does not."""
    homes: dict[str, set[str]] = {}
    for cls in m.NODE_MODELS:
        for name, info in cls.model_fields.items():
            stack: list[Any] = [info.annotation]
            seen: set[int] = set()
            while stack:
                t = stack.pop()
                if id(t) in seen:
                    continue
                seen.add(id(t))
                if isinstance(t, type) and issubclass(t, BaseModel):
                    for inner, sub in t.model_fields.items():
                        homes.setdefault(sub.alias or inner, set()).add(info.alias or name)
                    continue
                stack.extend(get_args(getattr(t, "__value__", t)))
    return homes


_HOMES: Final = _key_homes()


def _misplaced(key: str, loc: tuple[Any, ...], source: Source) -> str | None:
    """Where the valid key ``key``, refused at ``loc`` (its own path), belongs when a mapping
    it is a key of is nearby: a sibling (written one level too shallow) or an enclosing one
    (too deep); or in general words. None when ``key`` is no key of the language."""
    homes = _HOMES.get(key)
    if not homes:
        return None
    at = source.doc_path(loc[:-1])
    for depth in range(len(at), -1, -1):  # the mapping that holds it, then the enclosing ones
        parent = source.doc_path(at[:depth])
        node = _node(source.data, parent)
        if isinstance(node, dict):
            for home in sorted(homes):
                if home in node and (*parent, home) != at:
                    line = source.locate((*parent, home), key=True).line
                    return f"{key!r} is a key of `{home}:` (line {line}): check its indentation"
        if depth < len(at) and isinstance(at[depth], str) and at[depth] in homes:
            line = source.locate(at[: depth + 1], key=True).line
            return f"{key!r} is a key of `{at[depth]}:` (line {line}): check its indentation"
    shown = ", ".join(f"`{h}:`" for h in sorted(homes)[:4])
    return f"{key!r} is a key of {shown}, not of this mapping: check its indentation"


def _node(data: Any, path: Path_) -> Any:
    for seg in path:
        found = isinstance(data, dict) and seg in data
        if found or (isinstance(data, list) and isinstance(seg, int) and 0 <= seg < len(data)):
            data = data[seg]
        else:
            return None
    return data


def _unknown_key_hint(key: str, loc: tuple[Any, ...], source: Source, choices: Any) -> str | None:
    """A misspelt key's closest spelling, or where a valid key belongs; never the key itself."""
    close = did_you_mean(key, [c for c in choices if c != key])
    if key in _HOMES:
        return _misplaced(key, loc, source) or close
    return close


def got(value: Any) -> str:
    """A policy value in words, for "must be ...; got ...": what the YAML made of it."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (true/false)"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        short = value if len(value) <= 40 else value[:40] + "..."
        return f"the text {short!r}" if value.strip() else "empty text"
    if isinstance(value, dict):
        return "a mapping" + (f" (keys {', '.join(map(str, list(value)[:4]))})" if value else "")
    if isinstance(value, list):
        return f"a list of {len(value)} item" + ("" if len(value) == 1 else "s")
    return f"a {type(value).__name__}"


def _named(loc: tuple[Any, ...], source: Source) -> str:
    """The place an error is at, in the author's words: `then`, item 2 of `on`."""
    at = source.doc_path(loc)
    names = [s for s in at if isinstance(s, str)]
    if not at:
        return "the value"
    if isinstance(at[-1], int) and names:
        return f"item {at[-1] + 1} of `{names[-1]}`"
    return f"`{names[-1]}`" if names else "the value"


def error_words(err: Any, source: Source) -> str | None:
    """pydantic's message for a wrong type or value (``err["type"]``), in the language's words,
    with what was given named; None for a kind with no words of its own (its message is
    shown as pydantic writes it)."""
    kind, loc, value = err["type"], tuple(err["loc"]), err.get("input")
    ctx = err.get("ctx") or {}
    what, given = _named(loc, source), got(value)
    if kind in ("model_type", "model_attributes_type", "dict_type", "mapping_type"):
        if ctx.get("class_name") == "Param":
            kinds = ", ".join(f"`{k}:`" for k in m.PARAM_KINDS)
            return (
                f"a param is a mapping with one kind key ({kinds}), like "
                f"`{loc[-1]}: {{count: 5}}`; got {given}"
            )
        fix = (
            "; write ':' (ASCII) instead of '：'"
            if isinstance(value, str) and "：" in value
            else ""
        )
        return f"{what} is a mapping (`key: value` lines, or {{key: value}}); got {given}{fix}"
    if kind == "string_type":
        return f"{what} must be text; got {given}" + (
            ": write one text, or quote the value" if isinstance(value, list | dict) else ""
        )
    if kind in ("list_type", "tuple_type", "set_type"):
        return f"{what} is a list ([a, b], or `- ` lines), even of one item; got {given}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        part = ", which has a fractional part" if kind == "int_from_float" else ""
        return f"{what} must be a whole number; got {given}{part}"
    if kind in ("bool_type", "bool_parsing"):
        return f"{what} must be true or false; got {given}"
    if kind in ("float_type", "float_parsing", "decimal_type", "decimal_parsing", "finite_number"):
        return f"{what} must be a number; got {given}"
    if kind in ("literal_error", "enum"):
        return f"{what} must be one of {ctx.get('expected', '?')}; got {given}"
    if kind in ("string_too_short", "too_short"):
        return f"{what} must not be empty" + (
            "" if kind == "string_too_short" else f"; got {given}"
        )
    if kind == "too_long":
        return f"{what} holds at most {ctx.get('max_length', '?')} items; got {given}"
    bounds = {
        "greater_than": "more than",
        "greater_than_equal": "at least",
        "less_than": "less than",
        "less_than_equal": "at most",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return f"{what} must be {bounds[kind]} {limit}; got {given}"
    if kind == "none_required":
        return f"{what} takes no value here; got {given}"
    return None


def _problem_from_error(err: Any, source: Source, sink: ProblemSink) -> None:
    loc = tuple(err["loc"])
    kind = err["type"]
    msg = err["msg"]
    value = err.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        sink.add(
            Code.UNKNOWN_FIELD,
            f"unknown field {key!r}",
            source.locate(loc, key=True),
            _unknown_key_hint(key, loc, source, _KNOWN_KEYS)
            or "remove it or check the language reference",
        )
    elif kind == "missing":
        sink.add(
            Code.MISSING_FIELD,
            f"missing field {loc[-1]!r}",
            source.locate(loc[:-1]),
            f"add `{loc[-1]}:`",
        )
    elif kind in ("unknown_condition", "unknown_action", "unknown_operand"):
        choices = {
            "unknown_condition": m.CONDITION_KEYS,
            "unknown_action": m.ACTION_KEYS,
            "unknown_operand": m.OPERAND_KEYS,
        }[kind]
        hint = None
        if isinstance(value, dict):
            unknown = [
                k
                for k in value
                if k not in choices and k not in ("when", "for_each", "for_each_subject")
            ]
            if unknown:
                key = str(unknown[0])
                hint = _unknown_key_hint(key, (*loc, key), source, choices)
                msg = f"unknown operator {unknown[0]!r}; " + msg
        sink.add(
            Code.UNKNOWN_FIELD if hint or "unknown operator" in msg else Code.BAD_VALUE,
            msg,
            source.locate(loc),
            hint,
        )
    else:
        words = error_words(err, source)
        text = msg.removeprefix("Value error, ") if words is None else words
        code = (
            Code.BAD_QUANTITY
            if words is None and any(w in text for w in ("duration", "money", "time unit"))
            else Code.BAD_VALUE
        )
        sink.add(
            code,
            f"{text} (got {value!r})"
            if words is None and code == Code.BAD_VALUE and not isinstance(value, dict | list)
            else text,
            source.locate(loc),
        )


def _branches_kept(errors: list[Any], source: Source) -> list[Any]:
    """The errors without a union branch's complaint about the whole value when another
    branch got further inside it: for `on: [registered, 5]`, "item 2 of `on` must be text"
    is kept and "`on` must be text; got a list" is not. Linear in the errors."""
    deeper: set[Path_] = set()
    tagged: list[tuple[Path_, int]] = []  # per error: the prefix before its first tag, depth
    for err in errors:
        loc = tuple(err["loc"])
        doc = source.doc_path(loc)
        walked: list[Any] = []
        prefix: Path_ | None = None
        for i, seg in enumerate(loc):
            cand = (*walked, seg)
            if cand in source.values or cand in source.keys:
                walked.append(seg)
            elif prefix is None:
                prefix = loc[:i]
        tagged.append((prefix or (), len(doc)) if prefix is not None else ((), -1))
        if prefix is not None and len(doc) > len(source.doc_path(prefix)):
            deeper.add(prefix)
    return [
        err
        for err, (prefix, depth) in zip(errors, tagged, strict=True)
        if depth < 0 or prefix not in deeper or depth > len(source.doc_path(prefix))
    ]


# schema problems reported per file: a generated file with 60,000 bad keys is refused in
# bounded time (each report looks for a close spelling), not listed in full
MAX_FILE_PROBLEMS: Final = 100

_SECTIONS = (
    "rules",
    "params",
    "events",
    "clauses",
    "labels",
    "metrics",
    "awards",
    "invariants",
    "conditions",
)
_LISTS = ("rules", "clauses", "metrics", "awards", "invariants")
Kept = dict[str, list[int]]  # list section -> original index of each entry kept


def _salvage(
    data: dict[str, Any], errors: list[Any], broken: set[str]
) -> tuple[dict[str, Any], Kept] | None:
    """Drop the entries that have errors, so the rest can still be checked in this pass.

    Returns the reduced document and the original index of every kept list entry (so
    positions stay right), or None when
    an error lies outside the four sections (the header itself is broken).
    """
    bad: dict[str, set[Any]] = {s: set() for s in _SECTIONS}
    calendar_broken = False
    for err in errors:
        loc = err["loc"]
        if loc and loc[0] == "calendar":
            calendar_broken = True
            continue
        if len(loc) < 2 or loc[0] not in _SECTIONS:
            return None
        bad[loc[0]].add(loc[1])
    out = dict(data)
    if calendar_broken:
        del out["calendar"]
        broken.add("calendar")
    kept: Kept = {}
    for section in ("params", "events", "labels", "conditions"):
        if isinstance(data.get(section), dict):
            broken.update(str(k) for k in bad[section])
            out[section] = {k: v for k, v in data[section].items() if k not in bad[section]}
    for section in _LISTS:
        items = data.get(section)
        if isinstance(items, list):
            for i in bad[section]:
                if isinstance(i, int) and isinstance(items[i], dict) and "id" in items[i]:
                    broken.add(str(items[i]["id"]))
            keep = [i for i in range(len(items)) if i not in bad[section]]
            out[section] = [items[i] for i in keep]
            kept[section] = keep
    return out, kept


def validate_sources(
    sources: list[Source], sink: ProblemSink, calendars: list[Source] | None = None
) -> PolicySet | None:
    """The policy set of ``sources``; ``calendars`` are calendar files (``calendar=``)."""
    files: list[tuple[Source, m.PolicyFile, Kept]] = []
    broken: set[str] = set()
    for source in sources:
        if not isinstance(source.data, dict):
            sink.add(
                Code.BAD_VALUE,
                "a policy file is a mapping with `policy:` and `rules:`",
                source.locate(()),
            )
            continue
        try:
            pf = m.PolicyFile.model_validate(source.data)
            files.append((source, pf, {}))
        except ValidationError as exc:
            errors = exc.errors()
            shown = [e for e in errors if not source.is_spoiled(tuple(e["loc"]))]
            shown = _branches_kept(shown, source)
            for err in shown[:MAX_FILE_PROBLEMS]:  # a spoiled one: a knock-on of the loader's
                _problem_from_error(err, source, sink)
            if len(shown) > MAX_FILE_PROBLEMS:
                rest = shown[MAX_FILE_PROBLEMS]
                sink.add(
                    Code.BAD_VALUE,
                    f"and {len(shown) - MAX_FILE_PROBLEMS} more problems in this file; "
                    f"only the first {MAX_FILE_PROBLEMS} are reported",
                    source.locate(tuple(rest["loc"])),
                    "fix these and load again",
                )
            salvaged = _salvage(source.data, errors, broken)
            if salvaged is None:
                continue
            try:
                files.append((source, m.PolicyFile.model_validate(salvaged[0]), salvaged[1]))
            except ValidationError:
                continue  # already reported; nothing more can be checked in this file
    if not files:
        return None
    pset = _merge(files, sink, broken)
    entries: list[tuple[m.CalendarSpec, Source, Path_]] = [
        (pf.calendar, source, ("calendar",)) for source, pf, _ in files if pf.calendar is not None
    ]
    entries += _calendar_files(calendars or [], sink)
    if entries and "calendar" not in broken:
        pset.calendar = merge_calendars(entries, sink)
    return pset


def _calendar_files(
    sources: list[Source], sink: ProblemSink
) -> list[tuple[m.CalendarSpec, Source, Path_]]:
    """A calendar file holds ``calendar:`` (like a policy file's block), or the block itself."""
    out: list[tuple[m.CalendarSpec, Source, Path_]] = []
    for source in sources:
        data = source.data
        root: Path_ = ("calendar",) if isinstance(data, dict) and "calendar" in data else ()
        try:
            if root:
                out.append((m.CalendarFile.model_validate(data).calendar, source, root))
            else:
                out.append((m.CalendarSpec.model_validate(data), source, root))
        except ValidationError as exc:
            for err in exc.errors()[:MAX_FILE_PROBLEMS]:
                _problem_from_error(err, source, sink)
    return out


# declared days across a policy set: a company's decades of calendars, not a flood of ranges
MAX_CALENDAR_DAYS: Final = 100_000


def merge_calendars(
    entries: list[tuple[m.CalendarSpec, Source, Path_]], sink: ProblemSink
) -> Calendar:
    """One calendar from several declarations: days off and working days are unions (a day
    declared both is an error, at the second declaration), and ``base``, ``hours`` and
    ``outside``, where declared more than once, must agree."""
    chosen: dict[str, tuple[Any, Location]] = {}
    days: dict[str, dict[Any, Location]] = {"holidays": {}, "workdays": {}}
    for spec, source, root in entries:
        for name in ("base", "hours", "outside"):
            value = getattr(spec, name)
            if value is None:
                continue
            if name == "hours":  # the same hours however they are spelt or ordered
                value = parse_hours(value)
            where = source.locate((*root, name))
            if name in chosen and chosen[name][0] != value:
                sink.add(
                    Code.CONFLICTING_DECLARATIONS,
                    f"calendar {name} {getattr(spec, name)!r} differs from the {name} declared "
                    "first",
                    where,
                    f"first at {chosen[name][1]}; declare it the same way, or in one file",
                )
                continue
            chosen.setdefault(name, (value, where))
        for kind, other in (("holidays", "workdays"), ("workdays", "holidays")):
            for i, text in enumerate(getattr(spec, kind)):
                where = source.locate((*root, kind, i))
                for day in m.parse_days(text):
                    if day in days[other]:
                        sink.add(
                            Code.CONFLICTING_DECLARATIONS,
                            f"{day.isoformat()} is declared both a holiday and a working day",
                            where,
                            f"the other declaration is at {days[other][day]}; keep one",
                        )
                    days[kind].setdefault(day, where)
                if len(days["holidays"]) + len(days["workdays"]) > MAX_CALENDAR_DAYS:
                    sink.add(
                        Code.BAD_VALUE,
                        f"the calendar declares more than {MAX_CALENDAR_DAYS:,} days",
                        where,
                        "declare the days off and make-up days of the years you need",
                    )
                    return STATUTORY
    hours = chosen.get("hours")
    return Calendar(
        base=chosen.get("base", ("china",))[0],
        holidays=frozenset(days["holidays"]),
        workdays=frozenset(days["workdays"]),
        hours=hours[0] if hours is not None else STATUTORY.hours,
        outside=chosen.get("outside", ("error",))[0],
    )


def _merge(
    files: list[tuple[Source, m.PolicyFile, Kept]], sink: ProblemSink, broken: set[str]
) -> PolicySet:
    first = files[0][1].policy
    pset = PolicySet(ids=[], versions=[], meta=first, broken=broken)
    rule_sites: dict[str, RuleSite] = {}
    event_sites: dict[str, Location] = {}
    for source, pf, kept in files:

        def original(section: str, i: int, kept: Kept = kept) -> int:
            return kept[section][i] if section in kept else i

        pset.files.append(source.file)
        pset.ids.append(pf.policy.id)
        pset.versions.append(pf.policy.version)
        for attr in ("timezone", "currency", "subject", "unknown_events"):
            if getattr(pf.policy, attr) != getattr(first, attr):
                sink.add(
                    Code.CONFLICTING_DECLARATIONS,
                    f"policy {attr} {getattr(pf.policy, attr)!r} differs from "
                    f"{getattr(first, attr)!r} in {files[0][0].file}",
                    source.locate(("policy", attr)),
                    "files of one policy set share timezone, currency, subject and unknown_events",
                )
        local_clauses: set[str] = set()
        for i, clause in enumerate(pf.clauses):
            if clause.id in local_clauses:
                sink.add(
                    Code.DUPLICATE_ID,
                    f"clause {clause.id!r} is carried twice",
                    source.locate(("clauses", i, "id")),
                )
            local_clauses.add(clause.id)
            pset.clauses.setdefault(clause.id, clause)
        for name, param in pf.params.items():
            if name in pset.params and pset.params[name] != param:
                sink.add(
                    Code.CONFLICTING_DECLARATIONS,
                    f"parameter {name!r} is declared differently in two files",
                    source.locate(("params", name), key=True),
                    f"first at {pset.param_sites[name]}",
                )
            pset.params.setdefault(name, param)
            pset.param_sites.setdefault(name, source.locate(("params", name), key=True))
        for name, etype in pf.events.items():
            if name in pset.events and pset.events[name] != etype:
                sink.add(
                    Code.CONFLICTING_DECLARATIONS,
                    f"event type {name!r} is declared differently in two files",
                    source.locate(("events", name), key=True),
                    f"first at {event_sites[name]}; declare it the same way or once",
                )
            pset.events.setdefault(name, etype)
            event_sites.setdefault(name, source.locate(("events", name), key=True))
        cites: list[tuple[list[str], str | list[str], tuple[str | int, ...], str]] = []
        for name, label in pf.labels.items():
            if name in pset.labels:
                sink.add(
                    Code.DUPLICATE_ID,
                    f"label {name!r} is declared twice",
                    source.locate(("labels", name), key=True),
                )
                continue
            pset.labels[name] = (label, source)
            cites.append(
                (label.clauses, label.clause, ("labels", name, "clause"), f"label {name!r}")
            )
        # metrics, awards and invariants: entries with ids, unique across the set
        for section, noun in (
            ("metrics", "metric"),
            ("awards", "award"),
            ("invariants", "invariant"),
        ):
            merged: list[tuple[Any, Source, int]] = getattr(pset, section)
            seen = {entry.id for entry, _, _ in merged}
            for k, entry in enumerate(getattr(pf, section)):
                i = original(section, k)
                if entry.id in seen:
                    sink.add(
                        Code.DUPLICATE_ID,
                        f"duplicate {noun} id {entry.id!r}",
                        source.locate((section, i, "id")),
                    )
                    continue
                seen.add(entry.id)
                merged.append((entry, source, i))
                if hasattr(entry, "clause"):
                    cites.append(
                        (
                            entry.clauses,
                            entry.clause,
                            (section, i, "clause"),
                            f"{noun} {entry.id!r}",
                        )
                    )
        for clause_ids, raw, where, what in cites:
            for j, cid in enumerate(clause_ids):
                if cid not in local_clauses and cid not in broken:
                    sink.add(
                        Code.UNKNOWN_CLAUSE,
                        f"{what} cites clause {cid!r}, which this file does not carry",
                        source.locate(where if isinstance(raw, str) else (*where, j)),
                        did_you_mean(cid, local_clauses)
                        or "add the clause (id, text, reading) under `clauses:`",
                    )
        for i, rule in enumerate(pf.rules):
            site = RuleSite(rule, source, original("rules", i))
            if rule.id in rule_sites:
                sink.add(
                    Code.DUPLICATE_ID,
                    f"duplicate rule id {rule.id!r}",
                    site.locate("id"),
                    f"first at {rule_sites[rule.id].locate('id')}",
                )
                continue
            rule_sites[rule.id] = site
            pset.rules.append(site)
            for j, cid in enumerate(rule.clauses):
                if rule.each is not None and "$row" in cid:
                    continue  # a template's clause per row: checked once it is expanded
                if cid not in local_clauses and cid not in broken:
                    path: tuple[str | int, ...] = (
                        ("clause",) if isinstance(rule.clause, str) else ("clause", j)
                    )
                    sink.add(
                        Code.UNKNOWN_CLAUSE,
                        f"rule {rule.id!r} cites clause {cid!r}, which this file does not carry",
                        site.locate(*path),
                        did_you_mean(cid, local_clauses)
                        or "add the clause (id, text, reading) under `clauses:`",
                    )
        for name, named in pf.conditions.items():
            declared_at = source.locate(("conditions", name), key=True)
            if name in pset.conditions and pset.conditions[name][0] != named:
                first_at = pset.conditions[name][1].locate(("conditions", name), key=True)
                sink.add(
                    Code.CONFLICTING_DECLARATIONS,
                    f"named condition {name!r} is declared differently in two files",
                    declared_at,
                    f"first at {first_at}; declare it the same way or once",
                )
            pset.conditions.setdefault(name, (named, source))
    _check_conditions(pset, sink)
    if not any(site.rule.each is not None for site in pset.rules):
        _check_precedence(pset, rule_sites, sink)  # else once the templates are expanded
    return pset


def condition_refs(node: Any, path: Path_ = ()) -> list[tuple[str, Path_]]:
    """Every ``{condition: NAME}`` inside ``node`` (a model, list or mapping), with its path
    (the YAML keys, so ``Source.locate`` finds it)."""
    found: list[tuple[str, Path_]] = []
    stack: list[tuple[Any, Path_]] = [(node, path)]
    while stack:
        value, at = stack.pop()
        if isinstance(value, m.ConditionRef):
            found.append((value.condition, (*at, "condition")))
        elif isinstance(value, BaseModel):
            for name, info in type(value).model_fields.items():
                stack.append((getattr(value, name), (*at, info.alias or name)))
        elif isinstance(value, list | tuple):
            stack.extend((x, (*at, i)) for i, x in enumerate(value))
        elif isinstance(value, dict):
            stack.extend((x, (*at, k)) for k, x in value.items())
    return sorted(found, key=lambda f: str(f[1]))


def _check_conditions(pset: PolicySet, sink: ProblemSink) -> None:
    """Named conditions: each name they use is declared, and none uses itself (through
    others). Unknown names at use sites elsewhere are reported where they are compiled."""
    graph: dict[str, list[str]] = {}
    for name, (named, source) in pset.conditions.items():
        graph[name] = []
        for ref, at in condition_refs(named.when, ("conditions", name, "when")):
            if ref in pset.conditions:
                graph[name].append(ref)
            elif ref not in pset.broken:
                sink.add(
                    Code.UNKNOWN_CONDITION,
                    f"named condition {name!r} uses unknown condition {ref!r}",
                    source.locate(at),
                    did_you_mean(ref, pset.conditions) or "declare it under `conditions:`",
                )
    done: set[str] = set()
    for root in graph:  # depth-first with an explicit stack, as for overrides
        if root in done:
            continue
        path: list[str] = [root]
        todo: list[list[str]] = [list(graph[root])]
        while todo:
            if not todo[-1]:
                done.add(path.pop())
                todo.pop()
                continue
            nxt = todo[-1].pop(0)
            if nxt in path:
                cycle = [*path[path.index(nxt) :], nxt]
                named, source = pset.conditions[path[-1]]
                sink.add(
                    Code.CONDITION_CYCLE,
                    "named condition cycle: " + " -> ".join(cycle),
                    source.locate(("conditions", path[-1]), key=True),
                    "a named condition may use others, but never itself through them",
                )
            elif nxt not in done:
                path.append(nxt)
                todo.append(list(graph[nxt]))


def _check_precedence(pset: PolicySet, sites: dict[str, RuleSite], sink: ProblemSink) -> None:
    for site in pset.rules:
        for j, target in enumerate(site.rule.overrides):
            if target not in sites and target not in pset.broken:
                sink.add(
                    Code.UNKNOWN_RULE,
                    f"rule {site.rule.id!r} overrides unknown rule {target!r}",
                    site.locate("overrides", j),
                    did_you_mean(target, sites),
                )
            elif target == site.rule.id:
                sink.add(
                    Code.PRECEDENCE_CYCLE,
                    f"rule {target!r} overrides itself",
                    site.locate("overrides", j),
                )
    # cycles: depth-first search over the override graph
    graph = {s.rule.id: [t for t in s.rule.overrides if t in sites] for s in pset.rules}
    state: dict[str, int] = {}

    # depth-first, with an explicit stack: a chain of thousands of overrides must not
    # exhaust Python's recursion limit
    for root in graph:
        if root in state:
            continue
        state[root] = 1
        stack: list[str] = [root]
        todo: list[list[str]] = [list(graph.get(root, []))]
        while todo:
            node = stack[-1]
            if not todo[-1]:
                state[node] = 2
                stack.pop()
                todo.pop()
                continue
            nxt = todo[-1].pop(0)
            if state.get(nxt) == 1 and nxt != node:
                cycle = [*stack[stack.index(nxt) :], nxt] if nxt in stack else [node, nxt]
                sink.add(
                    Code.PRECEDENCE_CYCLE,
                    "precedence cycle: " + " -> ".join(cycle),
                    sites[node].locate("overrides"),
                    "remove one of the overrides",
                )
            elif state.get(nxt) is None:
                state[nxt] = 1
                stack.append(nxt)
                todo.append(list(graph.get(nxt, [])))


# ---------------------------------------------------------------- company overlays


@dataclass
class OverlayRecord:
    """What one overlay changed in its base: for the test report and for ``explain``."""

    id: str
    title: str
    version: str
    file: str
    base: str | None  # its `base:`, resolved against the overlay's folder (None: not given)
    added: list[str] = field(default_factory=list)  # rule ids, in file order
    replaced: list[str] = field(default_factory=list)
    disabled: dict[str, str] = field(default_factory=dict)  # rule id -> reason
    clauses: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)  # new parameters
    changed_params: list[str] = field(default_factory=list)  # base parameters redeclared
    calendar: bool = False

    def origin(self, rule_id: str) -> str | None:
        """``added``, ``replaced`` or ``disabled`` when this overlay did that to the rule."""
        if rule_id in self.added:
            return "added"
        if rule_id in self.replaced:
            return "replaced"
        if rule_id in self.disabled:
            return "disabled"
        return None
