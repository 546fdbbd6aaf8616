"""A policy set through the first three stages (load -> validate -> compile), as one value.

Every later layer (the runtime, the backends, the front end ``policy.Policy``) receives a
``Program``: the compiled closures for evaluation, and the validated set and the loaded YAML
for what reads the rules as data (static analysis, the durable translator, a rebuild in a
worker process, a snapshot's fingerprint).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from policyengine.errors import Code, Location, PolicyError, ProblemSink
from policyengine.language.compiler import CompiledPolicy, compile_policy
from policyengine.language.loader import Source, load_source, load_text
from policyengine.language.model import Rule
from policyengine.language.overlays import apply_overlays, is_overlay
from policyengine.language.templates import expand_templates
from policyengine.language.validate import OverlayRecord, PolicySet, validate_sources


@dataclass(frozen=True, eq=False)
class Program:
    """Immutable once built, and safe to share between threads and calls."""

    compiled: CompiledPolicy
    files: tuple[str, ...]
    # the validated rules, in compiled order: the durable backend translates their `when`
    # into its own condition language (closures cannot be read back)
    rules: tuple[Rule, ...] = ()
    # the validated policy set with source positions (static analysis reads it)
    pset: PolicySet | None = None
    sources: tuple[Source, ...] = ()
    # calendar files given beside the policy (``calendar=``), part of its identity
    calendars: tuple[Source, ...] = ()
    # what later stages derive from this program once and keep (the snapshot codec): owned
    # by the program, so nothing is cached process-wide
    memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.compiled.id

    @property
    def version(self) -> str:
        return self.compiled.version

    @property
    def overlays(self) -> tuple[OverlayRecord, ...]:
        """What each company overlay layered on the base added, replaced and disabled."""
        return tuple(self.pset.overlays) if self.pset is not None else ()


def _policy_files(path: Path, sink: ProblemSink) -> list[Path]:
    try:
        if path.is_dir():
            return sorted(
                p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
            )
    except OSError as exc:
        sink.add(
            Code.FILE_NOT_FOUND,
            f"cannot read the policy folder {path}: {exc.strerror or exc}",
            Location(str(path), 1, 1),
        )
        return []
    return [path]


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, a NUL character in it
        return False


def load_params_file(path: str | Path) -> dict[str, Any]:
    """A company's parameter overrides: a YAML mapping name -> value (same safe loader).

    Either the mapping itself or a mapping with one key ``params:`` holding it.
    """
    sink = ProblemSink()
    source = load_source(Path(path), sink)
    data: Any = source.data if source is not None else None
    if source is not None and isinstance(data, dict) and "params" in data:
        data = data["params"]
        where = source.locate(("params",))
    elif source is not None:
        where = source.locate(())
    if source is not None and not isinstance(data, dict):
        sink.add(
            Code.BAD_VALUE,
            "a params file is a mapping of parameter name to value"
            + (f", not {_kind(data)}" if data is not None else ""),
            where,
            "write one `name: value` line per parameter (optionally under `params:`)",
        )
    sink.raise_if_any()
    assert isinstance(data, dict)
    return dict(data)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _overrides(params: Any, sink: ProblemSink) -> dict[str, Any]:
    """``params=`` as given by a caller: a mapping of parameter name to value, else refused."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        sink.add(
            Code.BAD_VALUE,
            f"params= is a mapping of parameter name to value, not {_kind(params)}",
            Location("<params>", 1, 1),
        )
        return {}
    out: dict[str, Any] = {}
    for name, value in params.items():
        if not isinstance(name, str):
            sink.add(
                Code.BAD_VALUE,
                f"a parameter name is text, not {_kind(name)} ({name!r})",
                Location("<params>", 1, 1),
            )
            continue
        out[name] = value
    return out


PolicyPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def _roots(path: Any, sink: ProblemSink) -> list[Path]:
    """``path`` as a list of paths: one file or folder, or a list (a base, then overlays)."""
    if isinstance(path, str | os.PathLike):
        return [Path(path)]
    if not isinstance(path, list | tuple):
        sink.add(
            Code.BAD_VALUE,
            "a policy is a file or folder name (str or Path), or a list of them (a base, "
            f"then overlays), not {_kind(path)}",
            Location("<paths>", 1, 1),
        )
        return []
    if not path:
        sink.add(
            Code.BAD_VALUE,
            "the list of policy paths is empty",
            Location("<paths>", 1, 1),
            "give the base pack first, then its overlays",
        )
    out: list[Path] = []
    for i, item in enumerate(path):
        if isinstance(item, str | os.PathLike):
            out.append(Path(item))
            continue
        sink.add(
            Code.BAD_VALUE,
            f"policy path {i + 1} of the list is {_kind(item)} ({str(item)[:40]!r}), not a "
            "file or folder name",
            Location(f"<paths>[{i}]", 1, 1),
            "give each policy file or folder as a str or a Path",
        )
    return out


def _load_root(root: Path, sink: ProblemSink) -> tuple[list[Path], list[Source]]:
    """The YAML files of one path (a file, or a folder's files) and those that loaded."""
    if not _exists(root):
        sink.add(
            Code.FILE_NOT_FOUND, f"no policy file or folder at {root}", Location(str(root), 1, 1)
        )
        return [], []
    files = _policy_files(root, sink)
    if not files and not sink:
        sink.add(
            Code.FILE_NOT_FOUND,
            f"the folder {root} has no .yaml policy files",
            Location(str(root), 1, 1),
        )
    sources: list[Source] = []
    for file in files:
        source = load_source(file, sink)
        if source is not None:
            sources.append(source)
    return files, sources


def _overlay_base(sources: list[Source], sink: ProblemSink) -> Path | None:
    """The base an overlay given on its own names (``overlay: {base: ...}``, relative to it)."""
    first = sources[0]
    header = first.data.get("overlay") if isinstance(first.data, dict) else None
    base = header.get("base") if isinstance(header, dict) else None
    if not isinstance(base, str) or not base:
        sink.add(
            Code.MISSING_FIELD,
            "an overlay loaded on its own needs its base pack",
            first.locate(("overlay",)),
            "write `base: <the pack's folder, relative to this file>` in the `overlay:` "
            "header, or load [base, overlay]",
        )
        return None
    path = Path(first.file).parent / base
    if not _exists(path):
        sink.add(
            Code.FILE_NOT_FOUND,
            f"the overlay's base {base!r} is not there ({path})",
            first.locate(("overlay", "base")),
            "base is relative to the overlay file's folder",
        )
        return None
    return path


def load_program(
    path: PolicyPaths,
    params: Mapping[str, Any] | None = None,
    params_file: str | Path | None = None,
    calendar: str | Path | None = None,
) -> Program:
    """A policy file, or a folder whose YAML files form one policy set; or a list of them:
    the first is the base, the later ones are layered on it in order (company overlays, files
    with ``overlay:``). An overlay (or a folder of them) given on its own, or first, is
    layered on the base its ``base:`` names.

    ``calendar``: a YAML file with a ``calendar:`` block (a company's holidays and make-up
    days, its business hours), merged with the files' own ``calendar:`` declarations."""
    sink = ProblemSink()
    roots = _roots(path, sink)
    sink.raise_if_any()
    sources: list[Source] = []
    files: list[Path] = []
    for n, root in enumerate(roots):
        found, loaded = _load_root(root, sink)
        if n == 0 and loaded and all(is_overlay(s) for s in loaded):
            base = _overlay_base(loaded, sink)
            if base is not None:
                base_files, base_sources = _load_root(base, sink)
                files += base_files
                sources += base_sources
        files += found
        sources += loaded
    if not files:
        sink.raise_if_any()
    overrides: dict[str, Any] = {}
    if params_file is not None:
        try:
            overrides.update(load_params_file(params_file))
        except PolicyError as exc:
            sink.problems.extend(exc.problems)
    overrides.update(_overrides(params, sink))
    calendars: list[Source] = []
    if calendar is not None:
        found_calendar = load_source(Path(calendar), sink)
        if found_calendar is not None:
            calendars.append(found_calendar)
    return build(sources, sink, overrides, [str(f) for f in files], calendars)


def load_program_text(
    text: str, name: str = "<policy>", params: Mapping[str, Any] | None = None
) -> Program:
    """A program from a string (tests, documentation examples, editors)."""
    sink = ProblemSink()
    source = load_text(text, name, sink)
    overrides = _overrides(params, sink)
    return build([source] if source is not None else [], sink, overrides, [name])


def build(
    sources: list[Source],
    sink: ProblemSink,
    params: dict[str, Any],
    files: list[str],
    calendars: list[Source] | None = None,
) -> Program:
    """Validate and compile loaded sources; raises one ``PolicyError`` with every problem.

    Sources with ``overlay:`` are company overlays, layered in order on the others."""
    bases = [s for s in sources if not is_overlay(s)]
    overlays = [s for s in sources if is_overlay(s)]
    if overlays and not bases:
        sink.add(
            Code.MISSING_FIELD,
            "only overlays were given: an overlay adapts a base policy",
            overlays[0].locate(("overlay",)),
            "load [base, overlay], or name the base with `base:` in the `overlay:` header",
        )
    pset = validate_sources(bases, sink, calendars) if bases else None
    if pset is not None:  # rule templates, over the tables as this load resolves them
        pset = expand_templates(pset, params, sink)
    if pset is not None and overlays:  # on the expanded base, so `replace:` names its rules
        apply_overlays(pset, overlays, sink, bases, calendars)
        pset = expand_templates(pset, params, sink)  # the overlays' own templates
    compiled = compile_policy(pset, sink, params) if pset is not None else None
    sink.raise_if_any()
    assert compiled is not None
    assert pset is not None
    return Program(
        compiled,
        tuple(files),
        tuple(site.rule for site in pset.rules),
        pset,
        tuple(sources),
        tuple(calendars or ()),
    )


class HasProgram(Protocol):
    """What the front end's ``Policy`` is to the layers below it: a holder of a program."""

    @property
    def program(self) -> Program: ...


def program_of(policy: Program | HasProgram) -> Program:
    """The program of a ``Policy`` (or the program itself): the backends' public functions take
    either, and the front end stays above them."""
    return policy if isinstance(policy, Program) else policy.program
