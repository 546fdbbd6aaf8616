"""What ``policyengine lsp`` knows of the file being edited: its problems and its pack's names.

``check_text`` checks the editor's unsaved text the way ``policyengine check`` checks a saved
pack: the file is loaded together with the saved files of its folder (a pack of several files
is one policy set; an overlay's folder brings its ``base:``; a calendar file is checked on a
bare policy), then validated, compiled and analysed. The loader's positions (``Source``) say
where each event type, field, parameter, rule and clause is declared, so go-to-definition
lands where the loader read the name, not where a regex guessed it. Nothing here raises on
bad text: every problem is a ``Note``, and a failure of our own is a note too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from policyengine.errors import Code, Location, PolicyEngineError, ProblemSink
from policyengine.language.loader import Source, load_source, load_text
from policyengine.language.overlays import is_overlay
from policyengine.language.program import build
from policyengine.policy import Policy
from policyengine.tools.analysis import analyze
from policyengine.tools.describe import clauses, event_types, params

# a calendar file is checked as the calendar of this policy, which declares nothing else
_BARE_POLICY: Final = "policy: {id: calendar-check, title: calendar, version: '0'}\n"
_BARE_NAME: Final = "<calendar check>"
_CALENDAR_KEYS: Final = frozenset({"calendar", "base", "holidays", "workdays", "hours", "outside"})


@dataclass(frozen=True)
class Note:
    """One problem of the edited file, as ``check`` reports it (severity error or warning)."""

    location: Location
    code: str
    message: str
    hint: str | None
    severity: str = "error"  # error | warning | information


@dataclass(frozen=True)
class Symbol:
    """A declared name and where it is declared (None: made by the compiler, e.g. ``each:``)."""

    name: str
    where: Location | None = None
    detail: str | None = None
    text: str | None = None  # a clause's original text
    reading: str | None = None  # a clause's reading


@dataclass
class PackIndex:
    """The names completion, hover and definition offer, from the pack the file belongs to."""

    events: dict[str, Symbol] = field(default_factory=dict)
    fields: dict[str, dict[str, Symbol]] = field(default_factory=dict)  # by event type
    params: dict[str, Symbol] = field(default_factory=dict)
    rules: dict[str, Symbol] = field(default_factory=dict)
    clauses: dict[str, Symbol] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.events or self.params or self.rules or self.clauses)

    def over(self, older: PackIndex) -> PackIndex:
        """This index, with what only ``older`` knows added (a broken file's last good load)."""
        fields = {t: dict(fs) for t, fs in older.fields.items()}
        for etype, fs in self.fields.items():
            fields.setdefault(etype, {}).update(fs)
        return PackIndex(
            {**older.events, **self.events},
            fields,
            {**older.params, **self.params},
            {**older.rules, **self.rules},
            {**older.clauses, **self.clauses},
        )


@dataclass
class Checked:
    """The outcome of one check: the file's notes, and the index (``loaded``: from a policy
    that loaded, else from the YAML that could be read)."""

    notes: list[Note]
    index: PackIndex
    loaded: bool


def _yaml_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    except OSError:
        return []


def _is_calendar(source: Source | None) -> bool:
    data = source.data if source is not None else None
    return isinstance(data, dict) and bool(data) and set(data) <= _CALENDAR_KEYS


def _is_scenarios(source: Source | None) -> bool:
    data = source.data if source is not None else None
    return isinstance(data, dict) and "scenarios" in data and not {"policy", "overlay"} & set(data)


def _overlay_base(source: Source) -> Path | None:
    header = source.data.get("overlay") if isinstance(source.data, dict) else None
    base = header.get("base") if isinstance(header, dict) else None
    if not isinstance(base, str) or not base:
        return None
    return (Path(source.file).parent / base).resolve()


def _gather(path: Path, source: Source | None, sink: ProblemSink) -> tuple[list[Source], list[str]]:
    """The edited file with the saved files of its folder, in ``load_program``'s order; an
    overlay folder is preceded by the base its first overlay names."""
    mine = str(path)
    files = _yaml_files(path.parent)
    if path not in files:
        files = sorted([*files, path])
    sources: list[Source] = []
    names: list[str] = []
    for file in files:
        if file == path:
            if source is not None:
                sources.append(source)
        else:
            loaded = load_source(file, sink)
            if loaded is None or _is_calendar(loaded):
                continue
            sources.append(loaded)
        names.append(mine if file == path else str(file))
    if sources and all(is_overlay(s) for s in sources):
        base = _overlay_base(sources[0])
        if base is not None:
            base_files = _yaml_files(base) if base.is_dir() else [base]
            base_sources = [s for f in base_files if (s := load_source(f, sink)) is not None]
            sources = base_sources + sources
            names = [str(f) for f in base_files] + names
    return sources, names


def _note(loc: Location | None, code: str, message: str, hint: str | None, sev: str) -> Note:
    if not hint:
        known = Code._value2member_map_.get(code)
        hint = known.todo if isinstance(known, Code) else None
    return Note(loc or Location("", 1, 1), code, message, hint, sev)


def check_text(path: str | Path, text: str) -> Checked:
    """Check ``text`` as the content of ``path`` (see the module doc); never raises."""
    file = Path(path)
    try:
        return _check(file, text)
    except Exception as exc:  # a bug of ours must not end the editor's session
        where = Location(str(file), 1, 1)
        return Checked(
            [Note(where, "", f"policyengine could not check this file: {exc!r}", None)],
            PackIndex(),
            False,
        )


def _check(file: Path, text: str) -> Checked:
    mine = str(file)
    sink = ProblemSink()
    source = load_text(text, mine, sink)
    calendars: list[Source] = []
    if _is_scenarios(source):  # `policyengine test` reads these, not the policy loader
        return Checked([], PackIndex(), False)
    if _is_calendar(source):
        assert source is not None
        bare = load_text(_BARE_POLICY, _BARE_NAME, sink)
        sources, names, calendars = ([bare] if bare else []), [_BARE_NAME], [source]
    else:
        sources, names = _gather(file, source, sink)
    raw = index_sources([*sources, *calendars])
    problems = []
    policy: Policy | None = None
    try:
        policy = Policy(build(sources, sink, {}, names, calendars))
    except PolicyEngineError as exc:
        problems = [(p.location, p.code, p.message, p.hint, "error") for p in exc.problems]
    if policy is not None:
        for f in analyze(policy):
            problems.append((f.location, f.code, f.message, f.hint, f.severity))
    notes = [_note(*p) for p in problems if p[0] is not None and p[0].file == mine]
    elsewhere = [p for p in problems if p[0] is None or p[0].file not in (mine, _BARE_NAME)]
    if elsewhere:
        loc, code, message = elsewhere[0][:3]
        notes.append(
            Note(
                Location(mine, 1, 1),
                code,
                f"{len(elsewhere)} problem(s) in other files of the pack; the first: "
                f"{loc or ''}: {message}",
                "open that file to see and fix them",
                "information",
            )
        )
    if policy is None:
        return Checked(notes, raw, False)
    return Checked(notes, index_policy(policy, raw).over(raw), True)


# ---------------------------------------------------------------- the index


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _items(data: Any, key: str) -> list[tuple[int, dict[str, Any]]]:
    seq = data.get(key) if isinstance(data, dict) else None
    if not isinstance(seq, list):
        return []
    return [(i, item) for i, item in enumerate(seq) if isinstance(item, dict)]


def _doc(spec: Any) -> Any:
    return spec.get("doc") if isinstance(spec, dict) else None


def _mapping(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def index_sources(sources: list[Source | None]) -> PackIndex:
    """The names the YAML declares, read from the loaded documents even when they do not
    validate (the fallback while a file is broken); the first declaration of a name wins."""
    out = PackIndex()
    for s in sources:
        if s is None:
            continue
        for name, spec in _mapping(s.data, "events").items():
            at = s.keys.get(("events", name))
            out.events.setdefault(name, Symbol(name, at, _text(_doc(spec))))
            fields = out.fields.setdefault(name, {})
            for fname in (spec or {}).get("fields", {}) if isinstance(spec, dict) else {}:
                at = s.keys.get(("events", name, "fields", fname))
                fields.setdefault(str(fname), Symbol(str(fname), at))
        for name, spec in _mapping(s.data, "params").items():
            at = s.keys.get(("params", name))
            out.params.setdefault(name, Symbol(name, at, _text(_doc(spec))))
        for section in ("rules", "replace"):
            for i, rule in _items(s.data, section):
                rid = rule.get("id")
                if isinstance(rid, str):
                    at = s.values.get((section, i, "id"))
                    out.rules.setdefault(rid, Symbol(rid, at, _text(rule.get("doc"))))
        for i, clause in _items(s.data, "clauses"):
            cid = clause.get("id")
            if isinstance(cid, str):
                out.clauses.setdefault(
                    cid,
                    Symbol(
                        cid,
                        s.values.get(("clauses", i, "id")),
                        _text(clause.get("kind")),
                        _text(clause.get("text")),
                        _text(clause.get("reading")),
                    ),
                )
    return out


def _declared(sources: tuple[Source, ...], *path: str) -> Location | None:
    return next((s.keys[path] for s in sources if path in s.keys), None)


def _at(table: dict[str, Symbol], name: str) -> Location | None:
    known = table.get(name)
    return known.where if known is not None else None


def index_policy(policy: Policy, raw: PackIndex | None = None) -> PackIndex:
    """The names of a loaded policy (``describe``'s event types, fields, parameters and
    clauses, and its rules), each at the position the loader kept for it: first where the
    YAML declares it (``raw``: a rule ``replace:`` names is the base's), else where the policy
    set keeps it (a rule made by ``each:``)."""
    src = policy.sources
    raw = raw or PackIndex()
    out = PackIndex()
    for etype, spec in event_types(policy).items():
        out.events[etype] = Symbol(etype, _declared(src, "events", etype), spec["doc"])
        out.fields[etype] = {
            f["name"]: Symbol(
                f["name"],
                _declared(src, "events", etype, "fields", f["name"]),
                f"{f['type']}{' (optional)' if f['optional'] else ''}"
                + (f": {f['doc']}" if f["doc"] else ""),
            )
            for f in spec["fields"]
        }
    sites = policy.pset.param_sites if policy.pset is not None else {}
    for p in params(policy):
        name = p["name"]
        detail = f"{p['kind']}: {p['default']}" + (f" ({p['doc']})" if p["doc"] else "")
        out.params[name] = Symbol(name, sites.get(name) or _declared(src, "params", name), detail)
    for site in policy.pset.rules if policy.pset is not None else ():
        rule = site.rule
        at = _at(raw.rules, rule.id) or site.locate("id")
        out.rules.setdefault(rule.id, Symbol(rule.id, at, rule.doc))
    for c in clauses(policy):
        declared = _at(raw.clauses, c["id"])
        out.clauses[c["id"]] = Symbol(c["id"], declared, c["kind"], c["text"], c["reading"])
    return out
