"""The public entry points: load a policy (file or folder), evaluate histories against it.

``load_policy`` runs the first three pipeline stages (load -> validate -> compile) and raises
one ``PolicyError`` listing every problem of every file; ``Policy.evaluate`` runs the last
ones (history input -> evaluate -> decision).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import snapshot as _snapshot
from .compiler import CompiledPolicy, compile_policy
from .decision import Decision
from .engine import evaluate as _evaluate
from .errors import Location, Problem, ProblemSink, SnapshotError
from .events import prepare
from .loader import Source, load_source, load_text
from .times import from_dt, parse_instant

if TYPE_CHECKING:
    from .model import Rule
    from .validate import PolicySet


class Policy:
    """A compiled policy set; immutable and safe to share between threads and calls."""

    def __init__(
        self,
        compiled: CompiledPolicy,
        files: list[str],
        rules: tuple[Rule, ...] = (),
        pset: PolicySet | None = None,
        sources: tuple[Source, ...] = (),
    ) -> None:
        self.compiled = compiled
        self.files = files
        # the validated policy set with source positions (static analysis reads it)
        self.pset = pset
        self.sources = sources
        # the validated rules, in compiled order: the durable backend translates their `when`
        # into its own condition language (closures cannot be read back)
        self.rules = rules

    @property
    def id(self) -> str:
        return self.compiled.id

    @property
    def version(self) -> str:
        return self.compiled.version

    @property
    def rule_ids(self) -> list[str]:
        return [r.id for r in self.compiled.rules]

    @property
    def clause_ids(self) -> list[str]:
        return list(self.compiled.clauses)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.compiled.params)

    def evaluate(
        self,
        events: Iterable[Mapping[str, Any]],
        as_of: str | datetime | None = None,
        backend: Literal["native", "durable"] = "native",
        resumable: bool | None = None,
    ) -> Decision:
        """Decide everything the history implies as of ``as_of`` (default: its last event).

        Raises ``EventError`` (every bad event at once) before evaluating anything.
        ``backend="durable"`` lets durable_rules dispatch the steps instead of the native
        matcher (same decision; an optional extra, imported only when asked for).
        The decision keeps the evaluation's state, so that ``decision.snapshot()`` can be
        stored and later continued with ``resume`` (native backend; the default). That costs
        memory for as long as the decision lives: ``resumable=False`` gives a lean decision
        for batch work that never snapshots.
        """
        if backend not in ("native", "durable"):
            raise ValueError(f"unknown backend {backend!r}: use 'native' or 'durable'")
        horizon = from_dt(parse_instant(as_of, "as_of")) if as_of is not None else None
        if resumable is None:
            resumable = backend == "native"
        if resumable:
            if backend != "native":
                raise SnapshotError(
                    [
                        Problem(
                            "PE504",
                            "a durable-backend evaluation cannot be snapshotted",
                            hint="evaluate with the native backend (both decide the same)",
                        )
                    ]
                )
            return _snapshot.evaluate_resumable(self, events, horizon)
        history = prepare(self.compiled, events)
        if backend == "durable":
            from .durable_backend import evaluate as durable_evaluate

            return durable_evaluate(self, history, horizon)
        return _evaluate(self.compiled, history, horizon)

    def resume(
        self,
        snapshot: Mapping[str, Any],
        events: Iterable[Mapping[str, Any]],
        as_of: str | datetime | None = None,
    ) -> Decision:
        """Continue a stored ``decision.snapshot()`` with the events that came after it.

        Equal to ``evaluate(all events, as_of=as_of)``, at the cost of the new events only.
        ``as_of`` defaults to the last event and must not be before the snapshot's. A new
        event before the snapshot's ``as_of`` makes it evaluate the whole history again
        (``decision.resumed`` says which way it went). Raises ``SnapshotError``: PE501 for a
        snapshot of another policy (or parameters, or library version), PE502 for a damaged
        one, PE503 for an ``as_of`` before the snapshot's.
        """
        return _snapshot.resume(self, snapshot, events, as_of)

    @cached_property
    def _snapshot_codec(self) -> _snapshot._Codec:
        """Built on first use and kept: walking the compiled rules and hashing the sources is
        not worth repeating on every resume."""
        return _snapshot._Codec(self)

    def evaluate_many(
        self,
        events: Iterable[Mapping[str, Any]],
        as_of: str | datetime | None = None,
        workers: int = 1,
        shards: int | None = None,
    ) -> Decision:
        """``evaluate`` of one large history of many subjects, split by subject over
        ``workers`` processes (``workers=1``: this process). The decision is the same; a
        policy or history that cannot be split is evaluated as one shard.
        ``policyengine.distributed.run`` also reports how it was split, and why not.
        """
        from .distributed import evaluate_many

        return evaluate_many(self, events, as_of, workers=workers, shards=shards)

    def __repr__(self) -> str:
        return f"Policy({self.id!r}, version={self.version!r}, rules={len(self.compiled.rules)})"


def _policy_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def load_params_file(path: str | Path) -> dict[str, Any]:
    """A company's parameter overrides: a YAML mapping name -> value (same safe loader)."""
    sink = ProblemSink()
    source = load_source(Path(path), sink)
    if source is not None and not isinstance(source.data, dict):
        sink.add(
            "PE102", "a params file is a mapping of parameter name to value", source.locate(())
        )
    sink.raise_if_any()
    assert source is not None
    data = source.data
    return dict(data.get("params", data)) if isinstance(data, dict) else {}


def load_policy(
    path: str | Path,
    params: Mapping[str, Any] | None = None,
    params_file: str | Path | None = None,
) -> Policy:
    """Load a policy file, or a folder whose YAML files form one policy set.

    ``params`` (or a ``params_file``) overrides declared parameters without editing rules.
    """
    root = Path(path)
    sink = ProblemSink()
    if not root.exists():
        sink.add("PE116", f"no policy file or folder at {root}", Location(str(root), 1, 1))
        sink.raise_if_any()
    sources: list[Source] = []
    files = _policy_files(root)
    if not files:
        sink.add("PE116", f"the folder {root} has no .yaml policy files", Location(str(root), 1, 1))
    for file in files:
        source = load_source(file, sink)
        if source is not None:
            sources.append(source)
    overrides = dict(load_params_file(params_file)) if params_file is not None else {}
    overrides.update(params or {})
    return _build(sources, sink, overrides, [str(f) for f in files])


def load_policy_text(
    text: str, name: str = "<policy>", params: Mapping[str, Any] | None = None
) -> Policy:
    """A policy from a string (tests, documentation examples, editors)."""
    sink = ProblemSink()
    source = load_text(text, name, sink)
    return _build([source] if source is not None else [], sink, dict(params or {}), [name])


def _build(
    sources: list[Source], sink: ProblemSink, params: dict[str, Any], files: list[str]
) -> Policy:
    from .validate import validate_sources

    pset = validate_sources(sources, sink) if sources else None
    compiled = compile_policy(pset, sink, params) if pset is not None else None
    sink.raise_if_any()
    assert compiled is not None
    assert pset is not None
    return Policy(compiled, files, tuple(site.rule for site in pset.rules), pset, tuple(sources))
