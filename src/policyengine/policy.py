"""The front end: load a policy (file or folder), evaluate histories against it.

``load_policy`` runs the language's three stages (load -> validate -> compile, in
``policyengine.language``) and raises one ``PolicyError`` listing every problem of every file;
``Policy.evaluate`` runs the rest (history input -> evaluate -> decision) on the backend asked
for. Everything here delegates: the policy is a ``Program`` with the public methods on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from policyengine.backends import snapshot as _snapshot
from policyengine.calendars import Calendar
from policyengine.errors import Code, Problem, SnapshotError
from policyengine.language.compiler import CompiledPolicy
from policyengine.language.program import (
    PolicyPaths,
    Program,
    load_params_file,
    load_program,
    load_program_text,
)
from policyengine.runtime.decision import Decision
from policyengine.runtime.evaluate import MAX_SPAN_YEARS
from policyengine.runtime.evaluate import evaluate as _evaluate
from policyengine.runtime.events import (
    NaiveTimes,
    history_items,
    localise,
    localise_instant,
    naive_times_mode,
    prepare,
)
from policyengine.runtime.state import span_years
from policyengine.times import from_dt, parse_instant

if TYPE_CHECKING:
    from policyengine.language.loader import Source
    from policyengine.language.model import Rule
    from policyengine.language.validate import OverlayRecord, PolicySet

__all__ = ["Policy", "load_params_file", "load_policy", "load_policy_text"]


class Policy:
    """A compiled policy set; immutable and safe to share between threads and calls."""

    def __init__(
        self,
        compiled: CompiledPolicy | Program,
        files: list[str] | None = None,
        rules: tuple[Rule, ...] = (),
        pset: PolicySet | None = None,
        sources: tuple[Source, ...] = (),
    ) -> None:
        if isinstance(compiled, Program):
            self.program = compiled
        else:
            self.program = Program(compiled, tuple(files or ()), rules, pset, sources)

    @property
    def compiled(self) -> CompiledPolicy:
        return self.program.compiled

    @property
    def files(self) -> list[str]:
        return list(self.program.files)

    @property
    def pset(self) -> PolicySet | None:
        return self.program.pset

    @property
    def sources(self) -> tuple[Source, ...]:
        return self.program.sources

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.program.rules

    @property
    def id(self) -> str:
        return self.compiled.id

    @property
    def version(self) -> str:
        return self.compiled.version

    @property
    def calendar(self) -> Calendar:
        """The working days and business hours its `calendar:` blocks (and file) declare."""
        return self.compiled.calendar

    @property
    def overlays(self) -> tuple[OverlayRecord, ...]:
        """What each company overlay added, replaced and disabled (empty: none)."""
        return self.program.overlays

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
        backend: Literal["python", "native", "durable"] = "python",
        resumable: bool | None = None,
        *,
        max_span_years: int | None = MAX_SPAN_YEARS,
        naive_times: NaiveTimes = "error",
    ) -> Decision:
        """Decide everything the history implies as of ``as_of`` (default: its last event).

        Raises ``EventError`` (every bad event at once) before evaluating anything.
        ``backend``: ``"python"`` (the default) runs the reference engine; ``"durable"`` lets
        durable_rules dispatch the steps instead of its matcher (same decision; an optional
        extra, imported only when asked for); ``"native"`` runs the Rust core
        (``policyengine_native``) when it is installed and the policy lies within what it
        supports, and the Python engine otherwise (same decision:
        ``policyengine.backends.native.unsupported`` says why it would not run).
        The decision keeps the evaluation's state, so that ``decision.snapshot()`` can be
        stored and later continued with ``resume`` (Python backend; the default). That costs
        memory for as long as the decision lives: ``resumable=False`` gives a lean decision
        for batch work that never snapshots. ``backend="native"`` defaults to a lean
        decision; asked to be resumable, the Rust core keeps its own state, which the
        snapshot carries (docs/snapshots.md, "Native snapshots").
        A history spanning more than ``max_span_years`` calendar years (first event to the
        last event or ``as_of``) is refused with PE308 (usually a mistyped year); ``None``:
        no limit.
        ``naive_times``: a time without a UTC offset (``at``, a ``time`` field, ``as_of``) is
        refused (``"error"``, the default: PE204 for ``at``, PE203 for a field, PE206 for
        ``as_of``), or read as local time in the policy's timezone (``"policy"``; a wall time
        summer time skips or repeats is read with ``fold=0``). The events are then given
        offsets before anything else reads them, so a snapshot stores them with offsets.
        """
        span = span_years(max_span_years)
        if backend not in ("python", "native", "durable"):
            raise ValueError(
                f"unknown backend {backend!r}: use 'python', 'native' or 'durable'"
            )
        if naive_times_mode(naive_times) == "policy":
            events, as_of = self._localised(events, as_of)
        horizon = from_dt(parse_instant(as_of, "as_of")) if as_of is not None else None
        if resumable is None:
            resumable = backend == "python"
        if resumable and backend == "native":  # the core's state, in a native snapshot
            from policyengine.backends.native_snapshot import evaluate_resumable

            return evaluate_resumable(self.program, events, horizon, max_span=span)
        if resumable and backend != "python":
            raise SnapshotError(
                [
                    Problem(
                        Code.NOT_SNAPSHOTTABLE,
                        "a durable-backend evaluation cannot be snapshotted",
                        hint="evaluate with the Python backend (both decide the same)",
                    )
                ]
            )
        if resumable:
            # kept for snapshots (checked first: a text or a number is not a history)
            raw = [dict(e) if isinstance(e, Mapping) else e for e in history_items(events)]
            history = prepare(self.compiled, raw)
            decision = _evaluate(self.compiled, history, horizon, keep_world=True, max_span=span)
            return _snapshot.make_resumable(self.program, decision, history, raw, horizon)
        if backend == "native":  # the core checks the raw events itself, prepare on any doubt
            from policyengine.backends.native import evaluate_events

            return evaluate_events(self.program, events, horizon, max_span=span)
        history = prepare(self.compiled, events)
        if backend == "durable":
            from policyengine.backends.durable import evaluate as durable_evaluate

            return durable_evaluate(self.program, history, horizon, max_span=span)
        return _evaluate(self.compiled, history, horizon, max_span=span)

    def resume(
        self,
        snapshot: Mapping[str, Any],
        events: Iterable[Mapping[str, Any]],
        as_of: str | datetime | None = None,
        key: bytes | None = None,
        *,
        max_span_years: int | None = MAX_SPAN_YEARS,
        naive_times: NaiveTimes = "error",
    ) -> Decision:
        """Continue a stored ``decision.snapshot()`` with the events that came after it.

        Equal to ``evaluate(all events, as_of=as_of)``, at the cost of the new events only.
        ``as_of`` defaults to the last event and must not be before the snapshot's. A new
        event before the snapshot's ``as_of`` makes it evaluate the whole history again
        (``decision.resumed`` says which way it went). Raises ``SnapshotError``: PE501 for a
        snapshot of another policy (or parameters, or library version), PE502 for a damaged
        one (and, when ``key`` is given, for one without a seal made with that key: see
        ``Decision.snapshot(key=...)``), PE503 for an ``as_of`` before the snapshot's.
        ``max_span_years``, ``naive_times``: as for ``evaluate`` (PE308, PE204); the stored
        events already carry offsets, so only the new ones and ``as_of`` are read.
        """
        if naive_times_mode(naive_times) == "policy":
            events, as_of = self._localised(events, as_of)
        if isinstance(snapshot, Mapping) and "engine" in snapshot:  # the Rust core's state
            from policyengine.backends import native_snapshot

            return native_snapshot.resume(
                self.program, snapshot, events, as_of, key, span_years(max_span_years)
            )
        return _snapshot.resume(
            self.program, snapshot, events, as_of, key, span_years(max_span_years)
        )

    def evaluate_many(
        self,
        events: Iterable[Mapping[str, Any]],
        as_of: str | datetime | None = None,
        workers: int = 1,
        shards: int | None = None,
        *,
        max_span_years: int | None = MAX_SPAN_YEARS,
        timeout: float | None = 3600.0,
        naive_times: NaiveTimes = "error",
        backend: Literal["python", "native"] = "python",
    ) -> Decision:
        """``evaluate`` of one large history of many subjects, split by subject over
        ``workers`` processes (``workers=1``: this process). The decision is the same; a
        policy or history that cannot be split is evaluated as one shard.
        ``policyengine.distributed.run`` also reports how it was split, and why not. A worker
        that dies, or takes longer than ``timeout`` seconds, raises ``WorkerError`` (PE310,
        PE311) naming its shard.
        ``max_span_years``, ``naive_times``: as for ``evaluate`` (PE308, PE204); the events
        are given offsets before they are split, so the partitioner and every shard read the
        same instants.
        ``backend="native"``: the Rust core evaluates the shards where it can (``run``'s
        report says where not, and why); the decision is the same.
        """
        from policyengine.backends.parallel import evaluate_many

        if naive_times_mode(naive_times) == "policy":
            events, as_of = self._localised(events, as_of)

        return evaluate_many(
            self.program,
            events,
            as_of,
            workers=workers,
            shards=shards,
            timeout=timeout,
            max_span=span_years(max_span_years),
            backend=backend,
        )

    def _localised(
        self, events: Iterable[Mapping[str, Any]], as_of: str | datetime | None
    ) -> tuple[list[Any], str | datetime | None]:
        """``naive_times="policy"``: the events and ``as_of`` with local times written with
        the offset of the policy's timezone (``events.localise``), before any backend reads
        them: each backend then needs no option of its own and all of them agree."""
        tz = self.compiled.timezone
        return localise(self.compiled, events), localise_instant(as_of, tz)

    def __repr__(self) -> str:
        return f"Policy({self.id!r}, version={self.version!r}, rules={len(self.compiled.rules)})"


def load_policy(
    path: PolicyPaths,
    params: Mapping[str, Any] | None = None,
    params_file: str | Path | None = None,
    calendar: str | Path | None = None,
) -> Policy:
    """Load a policy file, or a folder whose YAML files form one policy set.

    A list of paths layers company overlays (files with ``overlay:``) on the first, the
    base, in order: ``load_policy(["policies/huixiao", "acme/overlay.yaml"])``. An overlay
    given on its own is layered on the base its ``base:`` names. ``policy.overlays`` says
    what each one added, replaced and disabled.

    ``params`` (or a ``params_file``) overrides declared parameters without editing rules.
    ``calendar``: a YAML file holding a ``calendar:`` block (a company's holidays, make-up
    days and business hours), merged with the policy's own: a deployment brings its own
    year without editing the pack (``load_program``).
    """
    return Policy(load_program(path, params, params_file, calendar=calendar))


def load_policy_text(
    text: str, name: str = "<policy>", params: Mapping[str, Any] | None = None
) -> Policy:
    """A policy from a string (tests, documentation examples, editors)."""
    return Policy(load_program_text(text, name, params))
