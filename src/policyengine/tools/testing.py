"""Property-based testing of any policy: history strategies drawn from its own declarations
(``histories``), the invariants every policy must keep, and ``check``, which writes failing
examples out as YAML scenarios. Needs ``hypothesis`` (the ``test`` extra); the core library
never imports it. The design: ``docs/policy-testing.md``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyengine.errors import PolicyEngineError
from policyengine.language.compiled import CExpect, walk_actions
from policyengine.language.model import Money
from policyengine.policy import Policy
from policyengine.runtime.decision import Decision
from policyengine.times import Duration, from_dt, instant_us, to_pendulum

Event = dict[str, Any]
BASE = datetime.fromisoformat("2026-03-02T09:00:00+08:00")  # a Monday, no holiday near

# Field names that hold a party (employee, manager...) rather than a case or order id.
_PARTY_WORDS = ("employee", "manager", "expert", "responsible", "referred_by", "party", "by")
_PARTY_FIELDS_PLURAL = ("colluders", "shielded_by", "employees")


# ---------------------------------------------------------------- strategies


@dataclass(frozen=True)
class Pools:
    """The small sets of ids histories draw from, so that events share subjects and parties."""

    subjects: tuple[str, ...] = ("C1", "C2", "C3")
    parties: tuple[str, ...] = ("E1", "E2", "E3")
    keys: tuple[str, ...] = ("K1", "K2")


def histories(
    policy: Policy,
    *,
    min_events: int = 1,
    max_events: int = 25,
    pools: Pools = Pools(),
    types: Sequence[str] | None = None,
    base: datetime = BASE,
) -> st.SearchStrategy[list[Event]]:
    """Valid histories for ``policy``, in draw order (not time order)."""
    compiled = policy.compiled
    names = sorted(types if types is not None else compiled.events)
    steps = _steps(policy)
    subject_field = compiled.subject_field

    def field_value(name: str, check: Any) -> st.SearchStrategy[Any]:
        if check.enum is not None:
            return st.sampled_from(sorted(check.enum, key=str))
        t = check.type
        if t == "bool":
            return st.booleans()
        if t == "int":
            low = int(check.min) if check.min is not None else 0
            high = int(check.max) if check.max is not None else low + 8
            return st.integers(low, high)
        if t == "decimal":
            floor = Decimal(str(check.min)) if check.min is not None else Decimal(0)
            ceiling = Decimal(str(check.max)) if check.max is not None else _money_ceiling(policy)
            return st.decimals(floor, ceiling, places=2, allow_nan=False, allow_infinity=False).map(
                str
            )
        if t == "date":
            return st.integers(-40, 40).map(lambda d: (base.date() + timedelta(days=d)).isoformat())
        if t == "time":
            return st.integers(-3, 3).map(lambda d: (base + timedelta(days=d)).isoformat())
        if t == "list[str]":
            return st.lists(st.sampled_from(pools.parties), max_size=2, unique=True)
        if t == "list[int]":
            return st.lists(st.integers(0, 5), max_size=3)
        if name == subject_field:
            return st.sampled_from(pools.subjects)
        if name in _PARTY_FIELDS_PLURAL or any(w in name for w in _PARTY_WORDS):
            return st.sampled_from(pools.parties)
        return st.sampled_from(pools.keys)

    def event_body(etype: str) -> st.SearchStrategy[dict[str, Any]]:
        fields: dict[str, st.SearchStrategy[Any]] = {}
        optional: dict[str, st.SearchStrategy[Any]] = {}
        for check in compiled.events[etype]:
            value = field_value(check.name, check)
            (fields if check.required else optional)[check.name] = value
        return st.fixed_dictionaries(fields, optional=optional).map(
            lambda body: {"type": etype, **body}
        )

    bodies = st.one_of([event_body(t) for t in names])

    @st.composite
    def draw(d: st.DrawFn) -> list[Event]:
        n = d(st.integers(min_events, max_events), label="events")
        instants: list[datetime] = []
        out: list[Event] = []
        for i in range(n):
            anchor = base if not instants else d(st.sampled_from([base, *instants]))
            step = d(st.sampled_from(steps))
            jitter = d(st.sampled_from((0, -1, 1)))
            at = anchor + step + timedelta(seconds=jitter)
            instants.append(at)
            body = d(bodies)
            out.append({"id": f"e{i + 1}", "at": at.isoformat(), **body})
        return out

    return draw()


def _steps(policy: Policy) -> list[timedelta]:
    """Offsets worth drawing: none, an hour, the policy's own durations (calendar ones measured
    from the base instant), and the rest of the local day."""
    out = {timedelta(0), timedelta(hours=1), timedelta(days=1)}
    start = from_dt(BASE)
    tz = policy.compiled.timezone
    for value in _durations(policy):
        try:
            due, _ = value.due(start, tz, policy.compiled.calendar)
        except PolicyEngineError:
            continue  # a working-day window outside the calendar: not a useful step
        out.add(timedelta(microseconds=due - start))
    return sorted(out)


def _durations(policy: Policy) -> Iterable[Duration]:
    for value in policy.compiled.params.values():
        if isinstance(value, Duration):
            yield value


def _money_ceiling(policy: Policy) -> Decimal:
    highest = Decimal(100)
    for value in policy.compiled.params.values():
        if isinstance(value, Money):
            highest = max(highest, value.high * 2)
        elif isinstance(value, Decimal):
            highest = max(highest, value * 2)
    return highest


# ---------------------------------------------------------------- invariants


class InvariantViolation(AssertionError):
    """A policy broke an invariant on a history; ``name`` says which."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(f"invariant {name!r} broken: {message}")


Invariant = Callable[[Policy, list[Event], random.Random], None]


def _dump(decision: Decision) -> dict[str, Any]:
    return decision.model_dump(mode="json")


def _instant(text: str) -> datetime:
    us = instant_us(text)
    assert us is not None
    return to_pendulum(us, "UTC")


def one_owner_at_a_time(policy: Policy, events: list[Event], rnd: random.Random) -> None:
    """A subject's ownership spans never overlap, and each ends after it starts."""
    decision = policy.evaluate(events)
    for subject, spans in decision.ownerships.items():
        for s in spans:
            if s.end is not None and not s.start < s.end:
                raise InvariantViolation("one_owner_at_a_time", f"{subject}: empty span {s}")
        for a, b in pairwise(spans):
            if a.end is None or a.end > b.start:
                raise InvariantViolation("one_owner_at_a_time", f"{subject}: {a} overlaps {b}")


def accountable(policy: Policy, events: list[Event], rnd: random.Random) -> None:
    """Every ownership change and penalty names a rule, a clause of the policy, and events."""
    decision = policy.evaluate(events)
    rules, clauses = set(policy.rule_ids), set(policy.clause_ids)
    ids = {e["id"] for e in events}
    entries: list[Any] = [s for spans in decision.ownerships.values() for s in spans]
    entries += decision.penalties
    for entry in entries:
        if entry.rule not in rules or not set(entry.clauses) <= clauses or not entry.clauses:
            raise InvariantViolation("accountable", f"no known rule and clause: {entry}")
        if not entry.events or not set(entry.events) <= ids:
            raise InvariantViolation("accountable", f"no input events named: {entry}")


def deterministic(policy: Policy, events: list[Event], rnd: random.Random) -> None:
    if _dump(policy.evaluate(events)) != _dump(policy.evaluate(list(events))):
        raise InvariantViolation("deterministic", "two evaluations of one history differ")


def order_independent(policy: Policy, events: list[Event], rnd: random.Random) -> None:
    """Shuffling events with distinct timestamps changes nothing (ties keep their order)."""
    groups: dict[datetime, list[Event]] = {}
    for e in events:
        groups.setdefault(_instant(e["at"]), []).append(e)
    keys = list(groups)
    rnd.shuffle(keys)
    shuffled = [e for k in keys for e in groups[k]]
    if _dump(policy.evaluate(events)) != _dump(policy.evaluate(shuffled)):
        raise InvariantViolation("order_independent", "a reordering of the input changed it")


def duplicates_change_nothing(policy: Policy, events: list[Event], rnd: random.Random) -> None:
    noisy = list(events)
    original = rnd.randrange(len(events))
    copy = dict(events[original])
    noisy.insert(rnd.randint(original + 1, len(noisy)), copy)
    a, b = _dump(policy.evaluate(events)), _dump(policy.evaluate(noisy))
    a.pop("notices")
    b.pop("notices")
    if a != b:
        raise InvariantViolation("duplicates_change_nothing", f"a copy of {copy['id']} changed it")


def causal(policy: Policy, events: list[Event], rnd: random.Random) -> None:
    """Deciding as of t equals deciding the history cut at t."""
    t = _instant(rnd.choice(events)["at"])
    cut = [e for e in events if _instant(e["at"]) <= t]
    if _dump(policy.evaluate(events, as_of=t)) != _dump(policy.evaluate(cut, as_of=t)):
        raise InvariantViolation("causal", f"events after {t.isoformat()} changed the decision")


def week_shift(policy: Policy, events: list[Event], rnd: random.Random) -> None:
    """Shifting every timestamp by whole weeks shifts every decided instant by as much."""
    if not shift_applies(policy):
        return
    weeks = timedelta(weeks=rnd.choice((-2, -1, 1, 3)))
    moved = [{**e, "at": (_instant(e["at"]) + weeks).isoformat()} for e in events]
    a = _shifted(_dump(policy.evaluate(events)), weeks)
    b = _dump(policy.evaluate(moved))
    if a != b:
        raise InvariantViolation("week_shift", f"shifting by {weeks} changed more than the times")


def fines_in_range(policy: Policy, events: list[Event], rnd: random.Random) -> None:
    """Each fine per unit lies within an amount the policy declares (its clause's range)."""
    ranges = list(_declared_amounts(policy))
    if not ranges:
        return
    for p in policy.evaluate(events).penalties:
        if p.amount_min is None or p.amount_max is None:
            continue
        units = Decimal(p.units or 1)
        low, high = p.amount_min / units, p.amount_max / units
        if not any(lo <= low and high <= hi for lo, hi in ranges):
            raise InvariantViolation("fines_in_range", f"{p} is outside every declared amount")


def declared(policy: Policy, events: list[Event], rnd: random.Random) -> None:
    """The policy's own ``invariants:`` hold for every subject, at the end and at a random
    instant of the history."""
    for as_of in (None, rnd.choice(events)["at"]):
        broken = policy.evaluate(events, as_of=as_of).broken_invariants
        if broken:
            found = "; ".join(f"{name}: {', '.join(subjects)}" for name, subjects in broken.items())
            raise InvariantViolation("declared", f"as of {as_of or 'the last event'}: {found}")


INVARIANTS: dict[str, Invariant] = {
    "declared": declared,
    "one_owner_at_a_time": one_owner_at_a_time,
    "accountable": accountable,
    "deterministic": deterministic,
    "order_independent": order_independent,
    "duplicates_change_nothing": duplicates_change_nothing,
    "causal": causal,
    "week_shift": week_shift,
    "fines_in_range": fines_in_range,
}


def shift_applies(policy: Policy) -> bool:
    """Whole-week shifts keep local days and weekdays, not months or holidays: the invariant
    is checked for policies without working-day, month or year windows and monthly periods."""
    compiled = policy.compiled
    if "month" in compiled.periodic or any(mt.every == "month" for mt in compiled.metrics):
        return False
    units = {d.unit for d in _all_durations(policy)}
    if units & {"working_day", "working_hour", "working_minute", "month", "year", "month_end"}:
        return False
    if any(_calendar_bound(a.expect) for a in walk_actions(compiled) if a.expect is not None):
        return False  # a deadline rolled off holidays, or read from the events (dates too)
    for file in policy.files:  # durations inside conditions are compiled away: read the text
        path = Path(file)
        if path.is_file() and any(
            w in path.read_text(encoding="utf-8")
            for w in (
                "month",
                "year",
                "working day",
                "working hour",
                "working minute",
                "个月",
                "工作日",
                "工作小时",
                "工作分钟",
                "every: month",
            )
        ):
            return False
    return True


def _calendar_bound(e: CExpect) -> bool:
    windows = (e.within, e.after, *(x for st in e.steps or () for x in (st.within, st.after)))
    return e.roll or any(w is not None and w.duration is None for w in windows)


def _all_durations(policy: Policy) -> Iterable[Duration]:
    """Declared durations and those of every expectation, branches included."""
    yield from _durations(policy)
    stack = [a for r in policy.compiled.rules for a in r.actions]
    while stack:
        action = stack.pop()
        e = action.expect
        if e is None:
            continue
        if e.every is not None:
            yield Duration(1, "month" if e.every == "month" else "day", e.every)
        for w in (
            e.within,
            e.after,
            *(x for st_ in e.steps or () for x in (st_.within, st_.after)),
        ):
            if w is not None and w.duration is not None:
                yield w.duration
        stack.extend((*e.met, *e.late, *e.missed, *e.out_of_order))


def _shifted(data: Any, by: timedelta) -> Any:
    if isinstance(data, dict):
        return {k: _shifted(v, by) for k, v in data.items()}
    if isinstance(data, list):
        return [_shifted(v, by) for v in data]
    if isinstance(data, str) and len(data) >= 19 and data[4] == "-" and "T" in data:
        us = instant_us(data)
        if us is not None:
            return (datetime.fromisoformat(data) + by).isoformat()
    return data


def _declared_amounts(policy: Policy) -> Iterable[tuple[Decimal, Decimal]]:
    for value in policy.compiled.params.values():
        if isinstance(value, Money):
            yield value.low, value.high
        elif isinstance(value, dict):
            for v in value.values():
                if isinstance(v, Money):
                    yield v.low, v.high
                elif isinstance(v, Decimal):
                    yield v, v


# ---------------------------------------------------------------- running them


def check_history(
    policy: Policy,
    events: list[Event],
    rnd: random.Random,
    invariants: Iterable[str] | None = None,
) -> None:
    """Run the named invariants (default: all) on one history."""
    for name in invariants if invariants is not None else INVARIANTS:
        INVARIANTS[name](policy, events, rnd)


def check(
    policy: Policy,
    *,
    max_examples: int = 100,
    invariants: Iterable[str] | None = None,
    failures_dir: str | Path | None = None,
    strategy: st.SearchStrategy[list[Event]] | None = None,
) -> None:
    """Check the invariants on generated histories; a shrunk failure is written as a scenario
    file under ``failures_dir`` (when given) before the error is raised."""
    chosen = list(invariants) if invariants is not None else list(INVARIANTS)
    unknown = [n for n in chosen if n not in INVARIANTS]
    if unknown:
        raise ValueError(f"unknown invariants {unknown}; choose from {sorted(INVARIANTS)}")

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy or histories(policy), st.randoms(use_true_random=False))
    def run(events: list[Event], rnd: random.Random) -> None:
        try:
            check_history(policy, events, rnd, chosen)
        except InvariantViolation as exc:
            if failures_dir is not None:
                write_scenario(policy, events, Path(failures_dir), reason=str(exc))
            raise

    run()


def write_scenario(policy: Policy, events: list[Event], folder: Path, reason: str) -> Path:
    """A history as a scenario file: the decided owners, penalties and obligations become the
    expectation, for the author to correct into what the manual requires."""
    decision = policy.evaluate(events)
    as_of = decision.as_of.isoformat() if decision.as_of is not None else BASE.isoformat()
    expect: dict[str, Any] = {
        "owners": {s: decision.owner(s) for s in sorted(decision.ownerships)},
        "penalties": [
            {"rule": p.rule, "party": p.party, "sanction": p.sanction} for p in decision.penalties
        ],
        "obligations": [
            {"rule": o.rule, "subject": o.subject, "status": o.status} for o in decision.obligations
        ],
    }
    files = [Path(f) for f in policy.files if Path(f).is_file()]
    where = files[0] if len(files) == 1 else files[0].parent if files else None
    scenario = {
        "policy": str(where.resolve()) if where is not None else None,
        "scenarios": [
            {
                "name": f"regression: {reason.splitlines()[0][:80]}",
                "doc": reason + "\nThe expectation is what the engine decided; correct it.",
                "as_of": as_of,
                "events": [_plain_event(e) for e in sorted(events, key=lambda e: e["at"])],
                "expect": expect,
            }
        ],
    }
    if scenario["policy"] is None:
        del scenario["policy"]
    folder.mkdir(parents=True, exist_ok=True)
    # one file per policy and invariant: hypothesis replays the shrunk example last, so the
    # file ends up holding the smallest failing history
    name = reason.split("'")[1] if reason.count("'") >= 2 else "failure"
    path = folder / f"regression-{policy.id}-{name}.yaml"
    path.write_text(
        yaml.safe_dump(scenario, allow_unicode=True, sort_keys=False, width=100), encoding="utf-8"
    )
    return path


def _plain_event(event: Event) -> Event:
    return {k: (str(v) if isinstance(v, Decimal | date) else v) for k, v in event.items()}
