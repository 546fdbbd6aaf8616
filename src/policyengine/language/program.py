"""A policy set through the first three stages (load -> validate -> compile), as one value.

Every later layer (the runtime, the backends, the front end ``policy.Policy``) receives a
``Program``: the compiled closures for evaluation, and the validated set and the loaded YAML
for what reads the rules as data (static analysis, the durable translator, a rebuild in a
worker process, a snapshot's fingerprint).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from policyengine.errors import Code, Location, PolicyError, ProblemSink
from policyengine.language.compiler import CompiledPolicy, compile_policy
from policyengine.language.loader import Source, load_source, load_text
from policyengine.language.model import Rule
from policyengine.language.validate import PolicySet, validate_sources


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


def load_program(
    path: str | Path,
    params: Mapping[str, Any] | None = None,
    params_file: str | Path | None = None,
    calendar: str | Path | None = None,
) -> Program:
    """A policy file, or a folder whose YAML files form one policy set.

    ``calendar``: a YAML file with a ``calendar:`` block (a company's holidays and make-up
    days, its business hours), merged with the files' own ``calendar:`` declarations."""
    root = Path(path)
    sink = ProblemSink()
    if not _exists(root):
        sink.add(
            Code.FILE_NOT_FOUND, f"no policy file or folder at {root}", Location(str(root), 1, 1)
        )
        sink.raise_if_any()
    sources: list[Source] = []
    files = _policy_files(root, sink)
    if not files and not sink:
        sink.add(
            Code.FILE_NOT_FOUND,
            f"the folder {root} has no .yaml policy files",
            Location(str(root), 1, 1),
        )
    for file in files:
        source = load_source(file, sink)
        if source is not None:
            sources.append(source)
    overrides: dict[str, Any] = {}
    if params_file is not None:
        try:
            overrides.update(load_params_file(params_file))
        except PolicyError as exc:
            sink.problems.extend(exc.problems)
    overrides.update(_overrides(params, sink))
    calendars: list[Source] = []
    if calendar is not None:
        found = load_source(Path(calendar), sink)
        if found is not None:
            calendars.append(found)
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
    """Validate and compile loaded sources; raises one ``PolicyError`` with every problem."""
    pset = validate_sources(sources, sink, calendars) if sources else None
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
