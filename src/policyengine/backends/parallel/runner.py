"""Running the shards: ``run`` (and ``evaluate_many``, its decision) plans, partitions,
evaluates the shards in worker processes (fork or spawn) or in this process, and merges; a
policy or a history that cannot be split is evaluated in one process, and ``Report`` says how
it went and why. The design: ``docs/parallel.md``."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import pickle
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from policyengine.backends import native
from policyengine.backends.parallel.merger import Prepared, _Fallback, merge, prepare_result
from policyengine.backends.parallel.native_shard import (
    evaluate_shard_on,
    history_refusal,
    refusal,
)
from policyengine.backends.parallel.partitioner import Partition, partition, shard_events
from policyengine.backends.parallel.planner import Plan, plan
from policyengine.backends.parallel.shard import ShardResult, evaluate_shard, pack, unpack
from policyengine.backends.parallel.spec import PolicySpec, policy_spec, rebuild
from policyengine.backends.snapshot import evaluate_resumable
from policyengine.errors import Code, PolicyEngineError, Problem, WorkerError
from policyengine.language.program import HasProgram, Program, program_of
from policyengine.runtime.decision import Decision
from policyengine.runtime.records import gc_paused
from policyengine.runtime.state import MAX_SPAN_YEARS
from policyengine.times import from_dt, parse_instant

log = logging.getLogger(__name__)


@dataclass
class Report:
    """How a history was evaluated: the plan, the shards and where the time went."""

    plan: Plan
    mode: str  # single | in-process | fork | spawn | dask
    shards: int
    sizes: list[int] = field(default_factory=list)  # events of subjects per shard
    replicated: int = 0  # events without a subject (in every shard)
    components: int = 0
    largest: int = 0
    collapse: list[str] = field(default_factory=list)
    fallback: str | None = None  # why the decision came from one process after all
    seconds: dict[str, float] = field(default_factory=dict)
    # this process's CPU seconds per stage: its serial part, the bound of the speed-up
    cpu: dict[str, float] = field(default_factory=dict)
    placed: dict[str, int] = field(default_factory=dict)  # subject -> shard that evaluated it
    # the engine that evaluated the shards (``native``: the Rust core; ``mixed``: the core
    # some, the Python engine the others), and why not the core where it was asked for
    engine: str = "python"
    not_native: str | None = None

    def explain(self) -> str:
        lines = [self.plan.explain(), f"mode {self.mode}, {self.shards} shard(s)"]
        if self.sizes:
            lines.append(
                f"  {self.components} components (largest {self.largest} events), "
                f"events per shard {self.sizes} + {self.replicated} replicated"
            )
        lines += [f"  one shard: {c}" for c in self.collapse]
        lines.append(f"  engine {self.engine}")
        if self.not_native:
            lines.append(f"  not on the core: {self.not_native}")
        if self.fallback:
            lines.append(f"  evaluated in one process: {self.fallback}")
        if self.seconds:
            lines.append("  seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in self.seconds.items()))
        if self.cpu:
            lines.append("  caller CPU: " + ", ".join(f"{k} {v:.3f}" for k, v in self.cpu.items()))
        return "\n".join(lines)


@dataclass
class Run:
    decision: Decision
    report: Report


# seconds a worker may take for its shard before evaluate_many gives up on it (PE311)
DEFAULT_TIMEOUT: Final = 3600.0


def _default_method() -> str:
    """fork shares the history with the workers without copying it, but is safe only on Linux
    from a process that runs no other thread; spawn works everywhere."""
    methods = multiprocessing.get_all_start_methods()
    if sys.platform == "linux" and "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "spawn"


def _evaluate(
    engine: str,
    policy: Program,
    events: list[tuple[int, Mapping[str, Any]]],
    horizon: int | None,
    first: int | None,
    max_span: int | None,
) -> ShardResult:
    """One shard on ``engine`` (``native``: the core where it can, see ``native_shard``)."""
    if engine == "native":
        return evaluate_shard_on(engine, policy, events, horizon, first, max_span)
    return evaluate_shard(policy, events, horizon, first, max_span)


def _child_fork(policy: Program, part: Partition, k: int, conn: Any, engine: str) -> None:
    # what this process inherited (the whole history, the caller's objects) stays alive and
    # unchanged: out of the cyclic collector's sight, it costs the shard nothing
    gc.freeze()
    _no_collector()
    _reply(
        conn,
        lambda: _evaluate(
            engine, policy, shard_events(part, k), part.horizon, part.first, part.max_span
        ),
    )


def _child_spawn(
    spec: PolicySpec,
    events: list[tuple[int, Mapping[str, Any]]],
    horizon: int | None,
    first: int | None,
    conn: Any,
    max_span: int | None = MAX_SPAN_YEARS,
    engine: str = "python",
) -> None:
    _no_collector()
    _reply(
        conn,
        lambda: _evaluate(engine, rebuild(spec), events, horizon, first, max_span),
    )


def _no_collector() -> None:
    """A worker is our own process: it evaluates one shard, sends it and exits. The cyclic
    collector could free nothing the shard still holds, and its passes over the shard's live
    objects cost a third of the work; off for the worker's short life (its memory goes back
    when it exits). Never done in the caller's process."""
    gc.disable()


def _reply(conn: Any, work: Callable[[], ShardResult]) -> None:
    try:
        payload: tuple[str, Any] = ("ok", pack(work()))
    except PolicyEngineError as exc:
        payload = ("engine", f"{type(exc).__name__}: {exc}")
    except BaseException:
        payload = ("crash", traceback.format_exc())
    conn.send_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
    conn.close()


def _run_processes(
    policy: Program,
    part: Partition,
    workers: int,
    method: str,
    timeout: float | None = None,
    cpu: dict[str, float] | None = None,
    engine: str = "python",
) -> list[tuple[str, Any]]:
    """Shard 0 in this process, the others in worker processes, ``workers - 1`` at a time:
    a caller that waited idle for its workers would leave one core in ``workers`` unused, and
    its own shard is never pickled nor unpickled. A worker that ends without its result
    raises PE310, one that has not answered within ``timeout`` seconds PE311 (the others are
    ended; seen once the caller's own shard is done): both name the shard. ``cpu`` receives
    this process's CPU seconds per stage."""
    ctx: Any = multiprocessing.get_context(method)
    spec = None if method == "fork" else policy_spec(policy)
    waiting = list(range(1, part.shards))
    running: dict[Any, tuple[int, Any, float]] = {}
    done: dict[int, tuple[str, Any]] = {}
    stages = cpu if cpu is not None else {}
    try:
        _start(ctx, spec, policy, part, workers - 1, waiting, running, engine)
        done[0] = _own_shard(policy, part, stages, engine)
        if done[0][0] != "ok":  # one process decides after all: the workers are ended
            return [done[0]]
        t1 = time.process_time()
        _loop(ctx, spec, policy, part, workers - 1, timeout, waiting, running, done, engine)
        stages["receive"] = time.process_time() - t1
    finally:
        for _, proc, _ in running.values():  # given up on: end them, they are ours
            if proc.is_alive():
                proc.kill()
            proc.join()
    return [done[k] for k in range(part.shards)]


def _own_shard(
    policy: Program, part: Partition, cpu: dict[str, float], engine: str
) -> tuple[str, Any]:
    """Shard 0, evaluated here as a worker would evaluate it (without the collector: its rows
    are live until the merge) and keyed for the merge at once, while the workers still run."""
    t0 = time.process_time()
    with gc_paused():
        try:
            res = _evaluate(
                engine, policy, shard_events(part, 0), part.horizon, part.first, part.max_span
            )
        except PolicyEngineError as exc:
            return ("engine", f"{type(exc).__name__}: {exc}")
        t1 = time.process_time()
        cpu["own shard"] = t1 - t0
        prepared = prepare_result(res, 0)
        cpu["own keys"] = time.process_time() - t1
        return ("ok", prepared)


def _start(
    ctx: Any,
    spec: PolicySpec | None,
    policy: Program,
    part: Partition,
    workers: int,
    waiting: list[int],
    running: dict[Any, tuple[int, Any, float]],
    engine: str = "python",
) -> None:
    """Worker processes for the waiting shards, up to ``workers`` running."""
    while waiting and len(running) < workers:
        k = waiting.pop(0)
        recv, send = ctx.Pipe(duplex=False)
        if spec is None:
            args: tuple[Any, ...] = (policy, part, k, send, engine)
            target: Callable[..., None] = _child_fork
        else:
            args = (
                spec,
                shard_events(part, k),
                part.horizon,
                part.first,
                send,
                part.max_span,
                engine,
            )
            target = _child_spawn
        proc = ctx.Process(target=target, args=args, daemon=True)
        proc.start()
        send.close()
        running[recv] = (k, proc, time.monotonic())


def _loop(
    ctx: Any,
    spec: PolicySpec | None,
    policy: Program,
    part: Partition,
    workers: int,
    timeout: float | None,
    waiting: list[int],
    running: dict[Any, tuple[int, Any, float]],
    done: dict[int, tuple[str, Any]],
    engine: str = "python",
) -> None:
    while waiting or running:
        _start(ctx, spec, policy, part, workers, waiting, running, engine)
        wait = None
        if timeout is not None:
            oldest = min(started for _, _, started in running.values())
            wait = max(0.0, oldest + timeout - time.monotonic())
        ready: list[Any] = multiprocessing.connection.wait(list(running), timeout=wait)
        if not ready:
            late = min(running.values(), key=lambda r: r[2])
            raise WorkerError(
                [
                    Problem(
                        Code.WORKER_TIMEOUT,
                        f"shard {late[0]} of {part.shards}: its worker did not answer within "
                        f"{timeout:g} s",
                        hint=Code.WORKER_TIMEOUT.todo,
                    )
                ]
            )
        received: list[tuple[int, bytes]] = []
        for conn in ready:  # every finished worker's bytes first: a worker blocks until read
            k, proc, _ = running.pop(conn)
            try:
                data = conn.recv_bytes()
            except EOFError:
                proc.join()
                raise WorkerError(
                    [
                        Problem(
                            Code.WORKER_DIED,
                            f"shard {k} of {part.shards}: its worker process died "
                            f"(exit code {proc.exitcode}) before sending its result",
                            hint=Code.WORKER_DIED.todo,
                        )
                    ]
                ) from None
            conn.close()
            proc.join()
            received.append((k, data))
        for k, data in received:
            # read and key this shard while the others still run
            with gc_paused():
                status, value = pickle.loads(data)
                done[k] = (status, prepare_result(unpack(value), k) if status == "ok" else value)


def run(
    policy: Program | HasProgram,
    events: Iterable[Mapping[str, Any]],
    as_of: str | Any | None = None,
    workers: int = 1,
    shards: int | None = None,
    start_method: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    max_span: int | None = MAX_SPAN_YEARS,
    backend: str = "python",
) -> Run:
    """Evaluate one large history in shards; the decision equals ``policy.evaluate``'s.

    ``workers`` processes evaluate ``shards`` shards (default: one per worker). ``workers=1``
    evaluates in this process (with ``shards`` > 1, shard by shard: the same merge, without
    processes). ``start_method``: ``fork`` or ``spawn`` (default: fork on Linux when this
    process runs no other thread). ``timeout``: seconds a worker may take for its shard
    (``None``: no limit); a worker that dies or does not answer in time raises
    ``WorkerError`` (PE310, PE311) naming the shard. The report says how the history was
    split, and why a policy or a history was evaluated as one shard.
    ``backend="native"``: the Rust core evaluates the shards (or the one process) where it
    can, the Python engine elsewhere; ``Report.engine`` and ``Report.not_native`` say which
    and why (see ``native_shard``). The decision is the same either way.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if backend not in ("python", "native"):
        raise ValueError(f"backend must be 'python' or 'native', not {backend!r}")
    policy = program_of(policy)
    started = time.perf_counter()
    cpu0 = time.process_time()
    the_plan = plan(policy)
    horizon_arg = from_dt(parse_instant(as_of, "as_of")) if as_of is not None else None
    raw = list(events)
    want = shards if shards is not None else workers
    report = Report(the_plan, "single", 1)
    engine = backend
    if backend == "native":
        report.not_native = refusal(policy)
        if report.not_native is not None:
            engine = "python"

    def single(why: str | None) -> Run:
        t0 = time.perf_counter()
        report.engine = "python"
        if backend == "native":  # one process on the core, where it can (``native.run_events``)
            decision, report.not_native = native.run_events(policy, raw, horizon_arg, max_span)
            report.engine = "python" if report.not_native else "native"
        else:
            decision = evaluate_resumable(policy, raw, horizon_arg, max_span)
        report.mode, report.shards, report.fallback = "single", 1, why
        report.seconds["evaluate"] = time.perf_counter() - t0
        if why:
            log.info("evaluate_many: one process: %s", why)
        return Run(decision, report)

    if want <= 1:
        return single(None)
    if not the_plan.separable:
        return single("the policy is not separable: " + "; ".join(the_plan.reasons))
    with _collector_paused():
        args = (policy, the_plan, raw, want, horizon_arg, workers, start_method, timeout)
        try:
            outcome = _split(*args, max_span, report, started, cpu0, engine)
        except _HandBack as exc:  # phase 2 needs what only the Python engine's shards record
            report.not_native = str(exc)
            outcome = _split(*args, max_span, report, started, cpu0, "python")
    if isinstance(outcome, str):
        return single(outcome)
    return Run(outcome, report)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The collector paused from partitioning to the merged decision, then restored as it was.
    The history, the caller's shard, the shards' rows and the decision are live all that time:
    its passes over them could free nothing. At the end, what the pause made goes straight to
    the oldest generation (``freeze`` then ``unfreeze``, when the caller has frozen nothing):
    otherwise the first allocation after it starts a young pass over those millions of objects,
    then another, a serial cost of a tenth of a shard. A cycle made meanwhile is freed by the
    next full collection, as any old object's."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _split(
    policy: Program,
    the_plan: Plan,
    raw: list[Any],
    want: int,
    horizon_arg: int | None,
    workers: int,
    start_method: str | None,
    timeout: float | None,
    max_span: int | None,
    report: Report,
    started: float,
    cpu0: float,
    engine: str = "python",
) -> Decision | str:
    """``run``'s partition, shards and merge: the merged decision, or why the history is to be
    evaluated in one process after all."""
    part = partition(policy, the_plan, raw, want, horizon_arg)
    part.max_span = max_span
    report.seconds["partition"] = time.perf_counter() - started
    report.cpu["partition"] = time.process_time() - cpu0
    report.sizes, report.replicated = part.sizes, part.replicated
    report.components, report.largest, report.collapse = (
        part.components,
        part.largest,
        part.collapse,
    )
    if part.invalid:
        return "an event could not be read (one process reports every problem)"
    if part.shards <= 1:
        return "; ".join(part.collapse) or "one component"
    if engine == "native":
        why = history_refusal(part)
        if why is not None:
            engine, report.not_native = "python", why
    t0 = time.perf_counter()
    results: list[ShardResult | Prepared] = []
    if workers == 1:
        report.mode = "in-process"
        try:
            for k in range(part.shards):
                results.append(
                    _evaluate(
                        engine,
                        policy,
                        shard_events(part, k),
                        part.horizon,
                        part.first,
                        part.max_span,
                    )
                )
        except PolicyEngineError as exc:
            return f"{type(exc).__name__} in a shard"
    else:
        method = start_method or _default_method()
        report.mode = method
        processes = _run_processes(policy, part, workers, method, timeout, report.cpu, engine)
        for status, value in processes:
            if status == "engine":
                return f"{value} (in a shard)"
            if status != "ok":  # an exception that is not ours: a bug, with its traceback
                raise WorkerError(
                    [
                        Problem(
                            Code.WORKER_DIED,
                            f"a shard's worker failed:\n{value}",
                            hint="please report this with the traceback; meanwhile evaluate "
                            "with workers=1",
                        )
                    ]
                )
            results.append(value)
    report.shards = part.shards
    shard_results = [x.result if isinstance(x, Prepared) else x for x in results]
    report.placed = {sid: k for k, r in enumerate(shard_results) for sid in r.subjects}
    engines = {r.engine for r in shard_results}
    report.engine = engines.pop() if len(engines) == 1 else "mixed"
    report.not_native = report.not_native or next((r.why for r in shard_results if r.why), None)
    report.seconds["shards"] = time.perf_counter() - t0
    report.seconds.update({f"shard{k}": r.seconds for k, r in enumerate(shard_results)})
    t0 = time.perf_counter()
    c0 = time.process_time()
    try:
        decision = merge(policy, part, results)
    except (_Fallback, RecursionError) as exc:  # RecursionError: timer chains too deep to order
        if "native" in {r.engine for r in shard_results}:
            raise _HandBack(f"phase 2: {exc}") from None
        return str(exc) or type(exc).__name__
    report.seconds["merge"] = time.perf_counter() - t0
    report.cpu["merge"] = time.process_time() - c0
    report.seconds["total"] = time.perf_counter() - started
    return decision


class _HandBack(Exception):
    """Phase 2 of shards on the core met what only the Python engine's shards record (a
    ladder step whose amount the core could not look up): the shards run again on the Python
    engine."""


def evaluate_many(
    policy: Program | HasProgram,
    events: Iterable[Mapping[str, Any]],
    as_of: str | Any | None = None,
    workers: int = 1,
    shards: int | None = None,
    start_method: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    max_span: int | None = MAX_SPAN_YEARS,
    backend: str = "python",
) -> Decision:
    """``run(...).decision``: see ``run``."""
    return run(
        policy, events, as_of, workers, shards, start_method, timeout, max_span, backend
    ).decision
