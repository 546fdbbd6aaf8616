"""Stage 4, evaluate: one history replayed on the World's virtual clock, then its decision.

``run`` applies the events up to the horizon (``as_of``, default the last event) and
finishes there; ``decision_of`` turns a finished World into the ``Decision`` (also a World
resumed from a snapshot or merged from shards). The wall clock is never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import cast

from policyengine.calendars import guessed_notice
from policyengine.language.compiler import CompiledPolicy
from policyengine.runtime import decision as d
from policyengine.runtime.engine import World
from policyengine.runtime.events import History
from policyengine.runtime.records import ObligationRow, reported
from policyengine.runtime.state import MAX_SPAN_YEARS, Hooks
from policyengine.times import to_pendulum

__all__ = ["MAX_SPAN_YEARS", "decision_of", "evaluate", "run"]


def run(
    policy: CompiledPolicy,
    history: History,
    as_of: int | None,
    hooks: Hooks | None = None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> World:
    """Replay ``history`` up to ``as_of`` (default: its last event) and finish at the horizon;
    ``hooks``: what observes the steps (the durable backend's matcher, a shard's bookkeeping);
    ``max_span``: the most calendar years the history may span (PE308; None: no limit)."""
    world = World(policy, hooks, max_span)
    applied = [e for e in history.events if as_of is None or e["at"] <= as_of]
    horizon = as_of if as_of is not None else (applied[-1]["at"] if applied else None)
    world.horizon = horizon
    if applied:
        first = applied[0]["at"]
        # a shard measures the span from the whole history's first event, as its periods
        world.first_at = hooks.first_period(first) if hooks is not None else first
    if (policy.periodic or policy.metrics) and applied and horizon is not None:
        world.schedule_ticks(applied[0]["at"], horizon)
    world.advance(applied, horizon)
    if horizon is not None:
        world.finish(horizon)
    return world


def evaluate(
    policy: CompiledPolicy,
    history: History,
    as_of: int | None,
    hooks: Hooks | None = None,
    keep_world: bool = False,
    max_span: int | None = MAX_SPAN_YEARS,
) -> d.Decision:
    """``run``, then the decision. ``keep_world``: the decision keeps the World (stopped
    before ``finish``'s measures) so that it can be snapshotted and resumed; it costs memory."""
    world = run(policy, history, as_of, hooks, max_span)
    decision = decision_of(policy, world, history, world.horizon)
    if keep_world:
        # for ``Decision.snapshot``; outside the model's fields, so dumps and == ignore it
        decision.__dict__["_world"] = world
    return decision


def _fired(policy: CompiledPolicy, w: World) -> dict[str, int]:
    """How often each rule matched, and each label, metric and award produced a value: what
    scenario coverage counts."""
    out = dict(w.fired)
    for row in w.classifications:
        if row.value is not None:
            out[row.rule[0]] = out.get(row.rule[0], 0) + 1
    for values in w.labels.values():
        for name, value in values.items():
            if value is not None and not any(lab.name == name and lab.on for lab in policy.labels):
                out[name] = out.get(name, 0) + 1
    for ref in [*(r.rule for r in w.metric_rows), *(r.rule for r in w.award_rows)]:
        out[ref[0]] = out.get(ref[0], 0) + 1
    # in the policy's order, not the order things first fired: a decision merged from shards
    # (or made by the core) gives the same JSON, byte for byte
    rank = _declared(policy)
    return dict(sorted(out.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def _declared(policy: CompiledPolicy) -> dict[str, int]:
    """Each rule, label, metric and award name -> its place in the policy, made once."""
    found = policy.memo.get("fired.order")
    if found is None:
        names = [r.id for r in policy.rules]
        for lab in policy.labels:
            names += [lab.ref[0], lab.name]
        names += [mt.ref[0] for mt in policy.metrics] + [aw.ref[0] for aw in policy.awards]
        found = policy.memo["fired.order"] = {n: i for i, n in reversed(list(enumerate(names)))}
    return cast(dict[str, int], found)


def _readings(policy: CompiledPolicy) -> dict[str, str]:
    """Clause id -> reading, made once per policy: every decision carries a copy."""
    found = policy.memo.get("clause.readings")
    if found is None:
        found = policy.memo["clause.readings"] = {
            cid: c.reading for cid, c in policy.clauses.items()
        }
    return cast(dict[str, str], found)


def decision_of(
    policy: CompiledPolicy,
    w: World,
    history: History,
    as_of: int | None,
    obligations: Sequence[ObligationRow] | None = None,
) -> d.Decision:
    """The Decision of a finished World (also for a World resumed or merged from shards, or
    filled with the native core's records, which reports its ``obligations`` itself)."""
    raw = d.RawDecision(
        spans={sid: s.spans for sid, s in w.subjects.items() if s.spans},
        penalties=w.penalties,
        obligations=reported(w.obligations) if obligations is None else obligations,
        rejections=w.rejections,
        trace=w.trace,
        violations=w.violations,
        metrics=w.metric_rows,
        classifications=w.classifications,
        awards=w.award_rows,
        award_keys={aw.id: tuple(mid for mid, _ in aw.keys) for aw in policy.awards},
        credits=w.credits,
    )
    notices = [d.Notice(event=e, kind="duplicate", detail=x) for e, x in history.duplicates]
    notices += [d.Notice(event=e, kind="ignored", detail=x) for e, x in history.ignored]
    notices += [d.Notice(event=c.event, kind="conflict", detail=c.detail) for c in w.conflicts]
    if w.calendar_guesses:
        detail = guessed_notice(w.calendar_guesses)
        notices.append(d.Notice(event="#calendar", kind="calendar", detail=detail))
    counters: dict[str, dict[str, Decimal]] = {k: dict(v) for k, v in w.party_counters.items()}
    for sid, s in w.subjects.items():
        if s.counters:
            counters.setdefault(sid, {}).update(s.counters)
    # every part is built here from checked values: validating them again would cost as much
    # as a 100-event evaluation
    return d.trusted(
        d.Decision,
        policy=policy.id,
        version=policy.version,
        timezone=policy.timezone,
        as_of=to_pendulum(as_of, policy.timezone) if as_of is not None else None,
        notices=notices,
        flags={
            sid: d.shown_flags(s.flags, policy.timezone) for sid, s in w.subjects.items() if s.flags
        },
        counters=counters,
        clauses=dict(_readings(policy)),
        subject_labels=w.labels,
        fired=_fired(policy, w),
        broken_invariants=w.broken,
        raw=raw,
    )
