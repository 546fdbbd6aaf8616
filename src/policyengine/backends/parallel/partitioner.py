"""Partitioning, in the caller: every input event is read once (``Reader``: its id as
``events.prepare`` gives it, its subject, the subjects and tokens it joins), repeated ids are
dropped (``events.Repeats``), subjects are joined by links and tokens, and the components are
packed into shards by event count (``assemble`` -> ``Partition``); ``shard_events`` is one
shard's input. The design: ``docs/parallel.md``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policyengine.backends.parallel.planner import Plan, TokenSide
from policyengine.runtime.events import Repeats, event_id, ignored_type
from policyengine.runtime.state import MAX_SPAN_YEARS
from policyengine.times import instant_us, to_local

if TYPE_CHECKING:
    from policyengine.language.program import Program


REPLICATED = -1  # an event without a subject: sent to every shard
DROPPED = -2  # a repeated id, or an ignored type: reported, never applied

# ISO 8601 instants in one fixed layout: within one length and one offset, text order is time
# order, so the earliest and latest instants are found without parsing every timestamp
_CANONICAL = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:[+-][0-9]{2}:[0-9]{2}|Z)"
)


class _UnionFind:
    """Subjects and tokens joined by the events that relate them."""

    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, x: Any) -> Any:
        parent = self.parent
        root = parent.setdefault(x, x)
        if root == x:
            return x
        path = [x]
        while True:
            up = parent[root]
            if up == root:
                break
            path.append(root)
            root = up
        for node in path:
            parent[node] = root
        return root

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


@dataclass
class Partition:
    """Where each input event goes, and what the caller found while reading them."""

    events: list[Any]
    shard_of: list[int]  # per input index: a shard, REPLICATED or DROPPED
    ids: dict[int, str]  # ids derived (as events.prepare derives them) for events without one
    shards: int
    sizes: list[int]  # events of subjects per shard
    replicated: int
    duplicates: list[tuple[str, str]]
    ignored: list[tuple[str, str]]
    horizon: int | None
    first: int | None
    components: int
    largest: int  # events of the largest component
    collapse: list[str]  # why this history must be one shard (besides the plan's reasons)
    invalid: bool  # an event the caller could not read: one process reports it exactly
    assign: dict[str, int] = field(default_factory=dict)  # subject -> shard
    # the span limit every shard evaluates with (``Policy.evaluate``'s ``max_span_years``)
    max_span: int | None = MAX_SPAN_YEARS


def _extremes(values: list[Any]) -> tuple[int | None, int | None, bool]:
    """Earliest and latest instant of the timestamps, and whether all were readable.

    Timestamps in one canonical layout with one UTC offset order as text: then the C-level
    ``min``/``max`` find them and only those two are parsed."""
    match = _CANONICAL.fullmatch
    try:
        canonical = bool(values) and all(map(match, values))
    except TypeError:  # not all text
        canonical = False
    if canonical and len({v[-6:] for v in values}) == 1 and values[0][-1] != "Z":
        # one offset: a fraction of a second sorts after none ('.' > '+', '-'), digits as digits
        lo, hi = instant_us(min(values)), instant_us(max(values))
        return lo, hi, lo is not None and hi is not None
    groups: dict[tuple[int, str], list[str]] = {}
    found: list[int] = []
    ok = True
    for v in values:
        if isinstance(v, str) and match(v):
            key = (len(v), v[-6:])
            g = groups.get(key)
            if g is None:
                groups[key] = [v, v]
            elif v < g[0]:
                g[0] = v
            elif v > g[1]:
                g[1] = v
            continue
        us = instant_us(v)
        if us is None:
            ok = False
        else:
            found.append(us)
    for pair in groups.values():
        for text in pair:
            us = instant_us(text)
            if us is None:
                ok = False
            else:
                found.append(us)
    if not found:
        return None, None, ok
    return min(found), max(found), ok


def _passes(
    raw: Mapping[str, Any], guards: tuple[tuple[str, str, Any], ...], fill: Mapping[str, Any]
) -> bool:
    for fname, op, lit in guards:
        v = raw.get(fname)
        if v is None:
            v = fill.get(fname)
        if op == "exists":
            if v is None:
                return False
        elif type(v) is not type(lit) or v != lit:
            return False
    return True


def _token_value(raw: Mapping[str, Any], fname: str, how: str, default: Any, tz: str) -> Any:
    v = raw.get(fname)
    if v is None:
        v = default
    if how == "date":
        us = instant_us(v)
        return None if us is None else to_local(us, tz).date().isoformat()
    if isinstance(v, list):
        v = tuple(v)
    try:
        hash(v)
    except TypeError:  # not a value the field allows: the shard's input check reports it
        return repr(v)
    return v


# one event as the caller reads it: (input index, id (None: unreadable), derived id?, type
# status (_OK, _IGNORED, _BAD), type, timestamp, subject, what it joins, why it collapses)
Read = tuple[int, str | None, bool, int, str, Any, str | None, tuple[Any, ...], str | None]
_OK, _IGNORED, _BAD = 0, 1, 2


@dataclass(frozen=True)
class Reader:
    """What reading a raw event takes, as plain data (shipped to Dask workers as is)."""

    subject_field: str
    timezone: str
    unknown_events: str
    # declared type -> (field defaults, link fields, co-location sides)
    types: dict[str, tuple[dict[str, Any], tuple[str, ...], tuple[tuple[str, TokenSide], ...]]]

    @classmethod
    def of(cls, policy: Program, the_plan: Plan) -> Reader:
        compiled = policy.compiled
        sides: dict[str, list[tuple[str, TokenSide]]] = {}
        for col in the_plan.colocations:
            for side in col.sides:
                for t in side.types:
                    sides.setdefault(t, []).append((col.name, side))
        return cls(
            compiled.subject_field,
            compiled.timezone,
            compiled.unknown_events,
            {
                t: (
                    {c.name: c.default for c in checks if c.default is not None},
                    the_plan.links.get(t, ()),
                    tuple(sides.get(t, ())),
                )
                for t, checks in compiled.events.items()
            },
        )

    def read(self, index: int, raw: Any) -> Read:
        """Its id (``events.event_id``, as ``events.prepare`` gives it), subject and joins."""
        raw_id = raw.get("id") if type(raw) is dict else None
        if type(raw_id) is str and raw_id and raw_id.isascii():  # event_id's commonest case
            eid: str | None = raw_id
            derived = False
        else:
            eid = event_id(raw, index)
            if eid is None:
                return (index, None, False, _BAD, "", None, None, (), None)
            derived = raw.get("id") is None
        etype_raw = raw.get("type")
        etype = etype_raw if isinstance(etype_raw, str) else ""
        found = self.types.get(etype) if isinstance(etype_raw, str) else None
        if found is None:
            ignore = isinstance(etype_raw, str) and self.unknown_events == "ignore"
            return (index, eid, derived, _IGNORED if ignore else _BAD, etype, None, None, (), None)
        fill, links, sides = found
        sid = raw.get(self.subject_field)
        if sid is None:
            sid = fill.get(self.subject_field)
        subject = sid if isinstance(sid, str) and sid else None
        if not links and (subject is None or not sides):
            return (index, eid, derived, _OK, etype, raw.get("at"), subject, (), None)
        joins: list[Any] = []
        collapse: str | None = None
        for fname in links:
            v = raw.get(fname)
            if v is None:
                v = fill.get(fname)
            named = [x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str) and x]
            if named and subject is None:
                collapse = (
                    f"event {eid} ({etype}) names {fname}={named[0]!r} but no "
                    f"{self.subject_field}: every shard would need that subject"
                )
            joins += named
        if subject is not None:
            for name, side in sides:
                if side.guards and not _passes(raw, side.guards, fill):
                    continue
                joins.append(
                    (
                        name,
                        tuple(
                            _token_value(raw, f, how, fill.get(f), self.timezone)
                            for f, how in side.fields
                        ),
                    )
                )
        return (index, eid, derived, _OK, etype, raw.get("at"), subject, tuple(joins), collapse)


def assemble(
    reads: Iterable[Read],
    total: int,
    shards: int,
    as_of: int | None,
    same: Callable[[int, int], bool],
) -> Partition:
    """Drop repeated ids (``events.Repeats``: the first wins; an ignored type still takes its
    id, as in ``events.prepare``), join subjects, and pack components into ``shards`` by event
    count, largest first onto the least loaded shard. ``total``: how many inputs; ``same(i, j)``:
    whether inputs i and j are equal (for the wording of a duplicate notice)."""
    uf = _UnionFind()
    repeats: Repeats[int] = Repeats(same)  # by input index
    firsts = repeats.first
    ids: dict[int, str] = {}
    ignored: list[tuple[str, str]] = []
    collapse: list[str] = []
    subject_at: list[str | None] = [None] * total
    shard_of = [DROPPED] * total
    count: dict[str, int] = {}
    ats: list[Any] = []
    invalid = False
    for index, eid, derived, status, etype, at, subject, joins, why in reads:
        if eid is None:
            invalid = True
            continue
        if derived:
            ids[index] = eid
        if eid not in firsts:  # ``Repeats.repeated`` of an id met for the first time
            firsts[eid] = index
        elif repeats.repeated(eid, index):
            continue
        if status != _OK:
            if status == _IGNORED:
                ignored.append((eid, ignored_type(etype)))
            else:
                invalid = True
            continue
        shard_of[index] = REPLICATED
        ats.append(at)
        if why is not None:
            collapse.append(why)
        if subject is None:
            continue
        subject_at[index] = subject
        count[subject] = count.get(subject, 0) + 1
        for x in joins:
            uf.union(subject, x)
    first, last, readable = _extremes(ats)
    if not readable or repeats.reused:  # a reused id: one process refuses it (PE212)
        invalid = True
    horizon = as_of if as_of is not None else last
    joined = uf.parent
    size: dict[Any, int] = {}
    root_of: dict[str, Any] = {}
    for sid, n_events in count.items():  # first-use order: ties pack in that order
        r = uf.find(sid) if sid in joined else sid
        root_of[sid] = r
        size[r] = size.get(r, 0) + n_events
    n = 1 if (collapse or not size) else max(1, min(shards, len(size)))
    loads = [0] * n
    assign: dict[Any, int] = {}
    for r in sorted(size, key=lambda r: -size[r]):
        k = min(range(n), key=lambda i: (loads[i], i))
        assign[r] = k
        loads[k] += size[r]
    where = {sid: assign[r] for sid, r in root_of.items()}
    for index, subject in enumerate(subject_at):
        if subject is not None:
            shard_of[index] = where[subject]
    return Partition(
        events=[],
        shard_of=shard_of,
        ids=ids,
        shards=n,
        sizes=loads,
        replicated=shard_of.count(REPLICATED),
        duplicates=repeats.duplicates,
        ignored=ignored,
        horizon=horizon,
        first=first,
        components=len(size),
        largest=max(size.values(), default=0),
        collapse=collapse,
        invalid=invalid,
        assign=where,
    )


def partition(
    policy: Program,
    the_plan: Plan,
    events: list[Any],
    shards: int,
    as_of: int | None,
) -> Partition:
    """Read each event once, then ``assemble``; anything it cannot read marks the partition
    ``invalid``, and the caller evaluates in one process, which reports every problem."""
    read = Reader.of(policy, the_plan).read
    part = assemble(
        [read(i, raw) for i, raw in enumerate(events)],
        len(events),
        shards,
        as_of,
        lambda i, j: dict(events[i]) == dict(events[j]),
    )
    part.events = events
    return part


def shard_events(part: Partition, k: int) -> list[tuple[int, Mapping[str, Any]]]:
    """Shard ``k``'s input: its subjects' events and every event without a subject, each with
    its global input index, in input order (ids filled in where they were derived)."""
    out: list[tuple[int, Mapping[str, Any]]] = []
    ids = part.ids
    events = part.events
    for index, s in enumerate(part.shard_of):
        if s in (k, REPLICATED):
            raw = events[index]
            if index in ids:
                raw = {**raw, "id": ids[index]}
            out.append((index, raw))
    return out
