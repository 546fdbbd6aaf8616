"""The World as JSON and back, derived from the engine's declaration of its state.

``runtime.state.STATE`` names every attribute of the World with its role; for state, the shape
it is stored in; for records, the row type. ``Subject``, ``Chain``, ``Pending`` and the timer
entries declare their fields (``FIELDS``) with a kind each. This module has one coder per
shape and one per field kind, and nothing per attribute: a new state field is stored as soon
as it is declared, and a shape or kind this module does not know refuses snapshots (PE504)
instead of being lost. Compiled closures cannot be stored, so rules are named by id,
expectations by their place in the compiled policy, rule references by their place in the
policy's table of references (``Codec``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import UnionType
from typing import Any, Final, Literal, Union, get_args, get_origin, get_type_hints

from policyengine.backends.snapshot_values import (
    _SCALAR,
    _dumps,
    _enc,
    _loads,
    error,
)
from policyengine.errors import Code
from policyengine.language.compiler import (
    CExpect,
    CompiledPolicy,
    CompiledRule,
    CTimer,
    walk_actions,
)
from policyengine.language.program import Program
from policyengine.runtime.decision import RawDecision
from policyengine.runtime.engine import World
from policyengine.runtime.events import Event
from policyengine.runtime.records import (
    MISSED,
    OPEN,
    ObligationRecord,
    SpanRecord,
    reported,
)
from policyengine.runtime.state import (
    MAX_SPAN_YEARS,
    RECORDS,
    STATE,
    Alarm,
    Chain,
    Close,
    Pending,
    Renew,
    Subject,
    Tick,
)
from policyengine.version import __version__

FORMAT: Final = "policyengine.snapshot"
# Bump on any change to what the World keeps or how the engine steps: it is part of the
# fingerprint, so older snapshots are refused instead of being resumed wrongly.
FORMAT_VERSION: Final = 3  # 3: cancel_on lists, timers (Alarm), repeat met late

# the records a resumed World does not read back: the decision parses them when it is read,
# and the next snapshot carries their texts as they were
LAZY: Final = frozenset(n for n in RECORDS if STATE[n].lazy)
# the objects the state holds, by the tag they are stored under
OBJECTS: Final[dict[str, Any]] = {
    "Subject": Subject,
    "Chain": Chain,
    "Pending": Pending,
    "Tick": Tick,
    "Renew": Renew,
    "Close": Close,
    "Alarm": Alarm,
}
# each object class's stored fields with their kinds, in declared order
_STORED: Final[dict[Any, tuple[tuple[str, str], ...]]] = {
    cls: tuple((n, k) for n, k in cls.FIELDS.items() if k != "derived") for cls in OBJECTS.values()
}
# duty indexes keep the duties a later event can still meet, meet late or cancel
_KEEP: Final[dict[str, Callable[[Pending], bool]]] = {
    "open": lambda p: p.state == OPEN,
    "missed": lambda p: p.state == MISSED,
    # a settled duty in the cancel index still ends its recurring chain (``settle``)
    "cancelling": lambda p: p.state == OPEN or (p.chain is not None and not p.chain.stopped),
}
_SHAPES: Final = frozenset(
    {"value", "sets", "map", "maps", "event_lists", "timers", "live_keys", "subjects", "rows"}
    | {"alarms"}
    | {f"duties:{k}" for k in _KEEP}
)
_KINDS: Final = frozenset(
    {"value", "pairs", "matches", "spans", "expect", "rule", "event", "chain", "pendings"}
    | {"obligation", "key", "derived", "object", "timer"}
)


def row_fields(row_type: type) -> tuple[str, ...]:
    """A record type's fields, in order (a NamedTuple's or a dataclass's)."""
    fields = getattr(row_type, "_fields", None)
    if fields is None:
        fields = tuple(f.name for f in dataclasses.fields(row_type))
    return tuple(fields)


class Codec:
    """What the format needs from one compiled policy, built once per program: stable numbers
    for its expectations and rule references, and its fingerprint."""

    def __init__(self, program: Program) -> None:
        compiled = program.compiled
        self.compiled: CompiledPolicy = compiled
        self.policy_id = program.id
        self.policy_version = program.version
        found = {id(a.expect): a.expect for a in walk_actions(compiled) if a.expect is not None}
        self.expects: list[CExpect] = list(found.values())
        self.expect_index = {id(e): i for i, e in enumerate(self.expects)}
        # the compiled timers (``timer:``), stored by their place in the same walk
        self.timer_specs: list[CTimer] = [a.timer for a in walk_actions(compiled) if a.timer]
        self.timer_index = {id(t): i for i, t in enumerate(self.timer_specs)}
        self.rules: dict[str, CompiledRule] = {r.id: r for r in compiled.rules}
        refs = [r.ref for r in compiled.rules]
        refs += [lab.ref for lab in compiled.labels]
        refs += [mt.ref for mt in compiled.metrics]
        refs += [aw.ref for aw in compiled.awards]
        self.refs: list[tuple[str, tuple[str, ...]]] = list(dict.fromkeys(refs))
        self.ref_index = {ref: i for i, ref in enumerate(self.refs)}
        self.fingerprint = fingerprint(program)
        check_declaration()


def check_declaration() -> None:
    """Every declared shape and field kind has a coder here, else snapshots are refused: a
    state this module cannot store would be silently lost, and the resumed decision differ."""
    unknown = [
        f"{name} (shape {d.shape!r})"
        for name, d in STATE.items()
        if d.role in ("state", "record") and d.shape not in _SHAPES
    ]
    for tag, cls in OBJECTS.items():
        fields: Mapping[str, str] = getattr(cls, "FIELDS", {})
        unknown += [f"{tag}.{f} (kind {k!r})" for f, k in fields.items() if k not in _KINDS]
        if set(getattr(cls, "__slots__", ())) != set(fields):
            unknown.append(f"{tag}: its slots and its FIELDS differ")
    if unknown:
        raise error(
            Code.NOT_SNAPSHOTTABLE,
            f"snapshots do not know how to store the engine's state {sorted(unknown)}",
            "extend policyengine.backends.snapshot_codec for it (and bump FORMAT_VERSION)",
        )


def codec_of(program: Program) -> Codec:
    """Built on first use and kept by the program: walking the compiled rules and hashing the
    sources is not worth repeating on every resume."""
    found = program.memo.get("snapshot.codec")
    if found is None:
        found = program.memo["snapshot.codec"] = Codec(program)
    assert isinstance(found, Codec)
    return found


def fingerprint(program: Program) -> str:
    h = hashlib.sha256()
    h.update(f"{FORMAT}/{FORMAT_VERSION}/policyengine {__version__}\n".encode())
    for source in (*program.sources, *program.calendars):
        h.update(json.dumps(source.data, ensure_ascii=False, default=repr).encode("utf-8"))
        h.update(b"\n")
    compiled = program.compiled
    if not program.sources:  # built without sources: what the compiled policy tells
        h.update(repr((compiled.id, compiled.version, [r.ref for r in compiled.rules])).encode())
        h.update(repr(compiled.calendar).encode())
    h.update(repr(sorted(compiled.params.items())).encode("utf-8"))
    return h.hexdigest()


# ---------------------------------------------------------------- records


def encode_row(row: Any, names: tuple[str, ...], ref: Mapping[Any, int], at: int) -> str:
    """One record row as a JSON list in its declared field order; its rule (at ``at``; -1:
    none) as a reference; a field declared as a tuple of text (the events behind it) as a
    plain list: the declaration, not a tag, says it is read back as a tuple."""
    values = row if isinstance(row, tuple) else [getattr(row, name) for name in names]
    out = [x if type(x) in _SCALAR else _enc(x) for x in values]
    for i in _TEXT_TUPLES.get(type(row), ()):
        out[i] = list(values[i])
    if at >= 0:
        out[at] = ref[values[at]]
    return _dumps(out)


def decode_rows(texts: list[str], row_type: type, refs: list[Any]) -> list[Any]:
    """Rows back from their texts, each field checked against the row type's declaration:
    a snapshot re-sealed around a broken row is refused here (PE502), not when read. The
    checks run column by column (a resume reads every carried row: this is its main cost)."""
    rows: list[list[Any]] = _loads("[" + ",".join(texts) + "]") if texts else []
    names = row_fields(row_type)
    n = len(names)
    at = names.index("rule") if "rule" in names else -1
    exact, other = _column_checks(row_type)
    nrefs = len(refs)
    for r in rows:
        if type(r) is not list or len(r) != n:
            raise ValueError(f"a {row_type.__name__} row of the wrong shape")
        if at >= 0:
            i = r[at]
            if type(i) is not int or not 0 <= i < nrefs:
                raise ValueError("a rule reference out of range")
            r[at] = refs[i]
    for i in _TEXT_TUPLES.get(row_type, ()):
        for r in rows:
            v = r[i]
            if type(v) is list:
                v = r[i] = tuple(v)
            if type(v) is not tuple or not all(type(x) is str for x in v):
                raise TypeError(f"{row_type.__name__}.{names[i]} holds {type(v).__name__}")
    for i, types in exact:
        for r in rows:
            if type(r[i]) not in types:
                raise TypeError(f"{row_type.__name__}.{names[i]} holds {type(r[i]).__name__}")
    for i, ok in other:
        for r in rows:
            if not ok(r[i]):
                raise TypeError(f"{row_type.__name__}.{names[i]} holds {type(r[i]).__name__}")
    if issubclass(row_type, tuple):
        new = tuple.__new__  # a NamedTuple, without its Python __new__
        return [new(row_type, r) for r in rows]
    return [row_type(*r) for r in rows]


def _exact_types(hint: Any) -> frozenset[type] | None:
    """The exact types a simple field may hold (``int``, ``str | None``...), else None."""
    simple = {int, str, bool, type(None), Decimal}
    if hint in simple:
        return frozenset({hint})
    if get_origin(hint) in (Union, UnionType) and set(get_args(hint)) <= simple:
        return frozenset(get_args(hint))
    return None


def _column_checks(
    row_type: type,
) -> tuple[list[tuple[int, frozenset[type]]], list[tuple[int, Callable[[Any], bool]]]]:
    """A row type's checks: by exact type where the declaration is that simple, else by
    the declared type's checker; the rule, text tuples and ``Any`` fields are left to
    ``decode_rows`` (or unchecked)."""
    found = _COLUMNS.get(row_type)
    if found is not None:
        return found
    hints = get_type_hints(row_type)
    names = row_fields(row_type)
    skip = {names.index("rule")} if "rule" in names else set()
    skip |= set(_TEXT_TUPLES.get(row_type, ()))
    exact: list[tuple[int, frozenset[type]]] = []
    other: list[tuple[int, Callable[[Any], bool]]] = []
    for i, name in enumerate(names):
        if i in skip or hints[name] is Any:
            continue
        types = _exact_types(hints[name])
        if types is not None:
            exact.append((i, types))
        else:
            other.append((i, _checker(hints[name])))
    return exact, other


def _ref(refs: list[Any], i: Any) -> Any:
    if type(i) is not int or not 0 <= i < len(refs):
        raise ValueError("a rule reference out of range")
    return refs[i]


def _ANY(x: Any) -> bool:
    return True


def _checker(hint: Any) -> Callable[[Any], bool]:
    """A test of a decoded JSON value against a declared type (the few forms records use)."""
    if hint is Any:
        return _ANY
    if hint is type(None) or hint is None:
        return lambda x: x is None
    origin, args = get_origin(hint), get_args(hint)
    simple = {int, str, bool, type(None), Decimal}
    if origin in (Union, UnionType) and set(args) <= simple:
        exact = frozenset(args)  # one set lookup: these are never subclassed in a row
        return lambda x: type(x) in exact
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and args[0] in simple:
        kind = args[0]
        return lambda x: type(x) is tuple and all(type(v) is kind for v in x)
    if origin is Literal:
        allowed = frozenset(args)
        return lambda x: type(x) is str and x in allowed
    if origin in (Union, UnionType):
        parts = [_checker(a) for a in args]
        return lambda x: any(ok(x) for ok in parts)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _checker(args[0])
            return lambda x: type(x) is tuple and all(item(v) for v in x)
        items = [_checker(a) for a in args]
        return lambda x: (
            type(x) is tuple
            and len(x) == len(items)
            and all(ok(v) for ok, v in zip(items, x, strict=True))
        )
    if origin is list:
        item = _checker(args[0]) if args else _checker(Any)
        return lambda x: type(x) is list and all(item(v) for v in x)
    if origin is dict:
        key, value = (_checker(args[0]), _checker(args[1])) if args else (_ANY, _ANY)
        if value is _ANY and args and args[0] is str:
            return lambda x: type(x) is dict and all(type(k) is str for k in x)
        return lambda x: type(x) is dict and all(key(k) and value(v) for k, v in x.items())
    if hint in (int, str, bool):
        return lambda x: type(x) is hint
    if isinstance(hint, type):
        return lambda x: isinstance(x, hint)
    raise TypeError(f"no check for the declared type {hint!r}")


def _checks_of(row_type: type) -> tuple[Callable[[Any], bool], ...]:
    hints = get_type_hints(row_type)
    return tuple(_checker(hints[name]) for name in row_fields(row_type))


def _row_checks(row_type: type) -> tuple[Callable[[Any], bool], ...]:
    found = _CHECKS.get(row_type)
    return found if found is not None else _checks_of(row_type)


def _text_tuples(row_type: type) -> tuple[int, ...]:
    hints = get_type_hints(row_type)
    return tuple(
        i
        for i, name in enumerate(row_fields(row_type))
        if name != "rule"
        and get_origin(hints[name]) is tuple
        and get_args(hints[name]) == (str, Ellipsis)
    )


# the checks of every declared row type, built once from the declarations
_CHECKS: Final[dict[type, tuple[Callable[[Any], bool], ...]]] = {
    row: _checks_of(row)
    for row in [*(d.row for d in STATE.values() if d.row is not None), SpanRecord]
}
# the fields of each row type declared as a tuple of text, stored as plain lists
_TEXT_TUPLES: Final[dict[type, tuple[int, ...]]] = {
    row: found for row in _CHECKS if (found := _text_tuples(row))
}
_COLUMNS: Final[
    dict[type, tuple[list[tuple[int, frozenset[type]]], list[tuple[int, Callable[[Any], bool]]]]]
] = {}
_COLUMNS.update({row: _column_checks(row) for row in _CHECKS})


def _spans_out(spans: list[SpanRecord], ref: Mapping[Any, int]) -> list[Any]:
    return [[s.owner, s.start, s.end, ref[s.rule], _enc(s.events)] for s in spans]


def _spans_in(rows: list[Any], refs: list[Any]) -> list[SpanRecord]:
    spans = [SpanRecord(o, a, b, _ref(refs, r), c) for o, a, b, r, c in rows]
    checks = _row_checks(SpanRecord)
    for s in spans:
        for name, ok in zip(row_fields(SpanRecord), checks, strict=True):
            if not ok(getattr(s, name)):
                raise TypeError(f"SpanRecord.{name}")
    return spans


_OBLIGATION_FIELDS: Final = row_fields(ObligationRecord)


def _fields_of(o: ObligationRecord) -> tuple[Any, ...]:
    """Its fields, shallow (``dataclasses.astuple`` would deep-copy every value)."""
    return tuple(getattr(o, name) for name in _OBLIGATION_FIELDS)


# ---------------------------------------------------------------- writing the World


class Writer:
    """The World as JSON. Objects shared by identity (duties, chains, obligation records,
    events) are written once into tables and referred to by position. Duties settled for good
    are left out: no step reads them again (``fire_until`` skips them, ``settle`` drops them
    from the indexes), and the timer heap's order is that of its (key, seq) pairs, which are
    unique, so removing entries changes no other entry's turn."""

    def __init__(
        self,
        codec: Codec,
        world: World,
        applied: list[Event],
        carried: dict[str, list[str]],
        loaded: dict[int, tuple[ObligationRecord, tuple[Any, ...]]],
    ) -> None:
        self.codec = codec
        self.w = world
        self.carried = carried
        self.loaded = loaded
        self.events: dict[int, int] = {id(e): i for i, e in enumerate(applied)}
        self.extras: list[Any] = []  # events not in the history (ticks, owner_changed)
        self.tables: dict[str, list[Any]] = {"Pending": [], "Chain": []}
        self.placed: dict[str, dict[int, int]] = {"Pending": {}, "Chain": {}}
        # records carried unread come first: the World holds the later ones only
        n = len(carried.get("obligations", ()))
        self.obligations = {id(o): i for i, (o, _) in loaded.items()}
        self.obligations.update({id(o): n + i for i, o in enumerate(world.obligations)})
        self.before = world.before_finish or {}
        self.coders = self._coders()

    def value_of(self, name: str) -> Any:
        """A field as the snapshot stores it: as it was before ``finish`` where that changed it."""
        if STATE[name].at_finish and name in self.before:
            found = self.before[name]
            return getattr(self.w, name)[:found] if STATE[name].role == "record" else found
        return getattr(self.w, name)

    def state(self) -> str:
        fields = {
            name: self.shape(declared.shape or "", self.value_of(name))
            for name, declared in STATE.items()
            if declared.role == "state"
        }
        # the tables last: the fields above filled them
        out = {"fields": fields, **self.tables, "extras": self.extras}
        return _dumps(out)

    def shape(self, shape: str, v: Any) -> Any:
        if shape == "value":
            return _enc(v)
        if shape == "sets":
            return [[_key(k), sorted(s)] for k, s in v.items()]
        if shape == "map":
            return [[_key(k), x if type(x) in _SCALAR else _enc(x)] for k, x in v.items()]
        if shape == "maps":
            return [[_key(k), _pairs(x)] for k, x in v.items()]
        if shape == "event_lists":
            events = self.events
            return [[_key(k), [events[id(e)] for e in lst]] for k, lst in v.items()]
        if shape.startswith("duties:"):
            keep = _KEEP[shape.split(":", 1)[1]]
            out = []
            for k, lst in v.items():
                kept = [self.ref("Pending", p) for p in lst if keep(p)]
                if kept:
                    out.append([_key(k), kept])
            return out
        if shape == "timers":
            return [
                [key, seq, self.timer(entry)]
                for key, seq, entry in v
                if not (isinstance(entry, Pending) and entry.state != OPEN)
                and not (isinstance(entry, Renew) and entry.chain.stopped)
                # a timer fired, cancelled or replaced is no longer pending
                and not (isinstance(entry, Alarm) and self.w.alarms.get(entry.seq) is not entry)
            ]
        if shape == "alarms":  # every pending one is in the heap, written there: their seqs
            return list(v)
        if shape == "live_keys":
            return [[self.key(k), self.ref("Chain", c)] for k, c in v.items() if c.live()]
        if shape == "subjects":
            return [self.fields(s) for s in v.values()]
        raise error(
            Code.NOT_SNAPSHOTTABLE,
            f"no coder for the state shape {shape!r}",
            "see check_declaration",
        )

    def timer(self, entry: Any) -> list[Any]:
        if isinstance(entry, Pending):
            return ["Pending", self.ref("Pending", entry)]
        return [type(entry).__name__, self.fields(entry)]

    def ref(self, table: str, obj: Any) -> int:
        """The place of a shared object in its table, written there once."""
        placed = self.placed[table]
        found = placed.get(id(obj))
        if found is not None:
            return found
        rows = self.tables[table]
        found = placed[id(obj)] = len(rows)
        rows.append(None)  # its place, before the objects it refers to take theirs
        if table == "Pending":
            steps = obj.spec.steps
            types, where = (
                (steps[obj.step].types, steps[obj.step].where)
                if steps
                else (obj.spec.types, obj.spec.where)
            )
            if obj.types != types or obj.where is not where:
                raise AssertionError("a pending duty's types or condition is not its spec's")
        rows[found] = self.fields(obj)
        return found

    def fields(self, obj: Any) -> list[Any]:
        """An object's declared fields, in order (derived fields are left out)."""
        out = []
        coders = self.coders
        for name, kind in _STORED[type(obj)]:
            x = getattr(obj, name)
            if kind == "value":
                out.append(x if type(x) in _SCALAR else _enc(x))
            else:
                out.append(coders[kind](x, obj))
        return out

    def _pendings(self, x: list[Pending], owner: Any) -> list[int]:
        # a recurring chain's duties are never read again (``Chain.members_read``)
        if isinstance(owner, Chain) and not owner.members_read():
            return []
        return [self.ref("Pending", p) for p in x]

    def _coders(self) -> dict[str, Callable[[Any, Any], Any]]:
        """One coder per field kind (``runtime.state.FieldKind``) but ``value`` and
        ``derived``, which ``fields`` handles itself."""
        ref = self.codec.ref_index
        expect = self.codec.expect_index
        return {
            "pairs": lambda x, _: _pairs(x),
            "matches": lambda x, _: [[f, v if type(v) in _SCALAR else _enc(v)] for f, v in x],
            "spans": lambda x, _: _spans_out(x, ref),
            "expect": lambda x, _: expect[id(x)],
            "rule": lambda x, _: x.id,
            "event": lambda x, _: self.event(x),
            "chain": lambda x, _: None if x is None else self.ref("Chain", x),
            "pendings": self._pendings,
            "obligation": lambda x, _: None if x is None else self.obligations[id(x)],
            "key": lambda x, _: None if x is None else self.key(x),
            "object": lambda x, _: [type(x).__name__, self.fields(x)],
            "timer": lambda x, _: self.codec.timer_index[id(x)],
        }

    def event(self, ev: Mapping[str, Any] | None) -> int | None:
        if ev is None:
            return None
        found = self.events.get(id(ev))
        if found is None:
            found = self.events[id(ev)] = len(self.events)
            self.extras.append(_enc(dict(ev)))
        return found

    def key(self, key: tuple[int | str, Any]) -> list[Any]:
        scope, value = key
        if isinstance(scope, str):
            return ["s", scope, _enc(value)]
        return ["x", self.codec.expect_index[scope], _enc(value)]

    def records(self) -> dict[str, list[str]]:
        """Rows carried from the snapshot resumed from are kept as they were written, but an
        obligation changed since (its duty was met, missed...) is written again."""
        ref = self.codec.ref_index
        out: dict[str, list[str]] = {}
        for name in RECORDS:
            declared = STATE[name]
            assert declared.row is not None
            names = row_fields(declared.row)
            at = names.index("rule") if "rule" in names else -1
            rows: list[Any] = self.value_of(name)
            old = self.carried.get(name, [])
            texts = list(old)
            if name == "obligations":
                for i, (row, was) in self.loaded.items():
                    if _fields_of(row) != was:
                        texts[i] = encode_row(row, names, ref, at)
            texts += [
                encode_row(r, names, ref, at) for r in (rows if name in LAZY else rows[len(old) :])
            ]
            out[name] = texts
        return out


def _key(k: Any) -> Any:
    """A dict key as JSON: a tuple key (the engine's indexes) as a list, read back as a tuple
    (a list is never a key), so its parts need no tag."""
    if type(k) is tuple:
        return [_key(x) for x in k]
    return k if type(k) in _SCALAR else _enc(k)


def _unkey(k: Any) -> Any:
    if type(k) is list:
        return tuple(_unkey(x) for x in k)
    return k


def _pairs(d: Mapping[Any, Any]) -> list[list[Any]]:
    return [[_enc(k), _enc(v)] for k, v in d.items()]


# ---------------------------------------------------------------- reading it back


class LazyRaw:
    """The ``RawDecision`` of a resumed evaluation: the rows carried from the snapshot (parsed
    and checked when it was resumed) come before the resumed evaluation's own. Decisions read
    it by attribute, as a RawDecision."""

    def __init__(
        self,
        base: RawDecision,
        carried: dict[str, list[Any]],
        loaded: dict[int, tuple[ObligationRecord, tuple[Any, ...]]],
    ) -> None:
        self._base = base
        self._carried = carried
        self._loaded = loaded

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._base, name)
        rows = self._carried.get(name)
        if rows:
            if name == "obligations":
                rows = list(rows)
                for i, (record, _) in self._loaded.items():
                    rows[i] = record  # as the resumed evaluation left it
                value = reported(rows) + value
            else:
                value = rows + value
        self.__dict__[name] = value
        return value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RawDecision | LazyRaw):
            return NotImplemented
        names = [f.name for f in dataclasses.fields(RawDecision)]
        return all(getattr(self, n) == getattr(other, n) for n in names)

    __hash__ = None  # type: ignore[assignment]


class Reader:
    """The World back from ``Writer``'s JSON, on this process's compiled policy."""

    def __init__(
        self, codec: Codec, state: str, records: Mapping[str, list[str]], events: list[Event]
    ) -> None:
        self.codec = codec
        self.x: dict[str, Any] = _loads(state)
        self.events: list[Event] = [*events, *self.x["extras"]]
        self.refs = codec.refs
        self.carried: dict[str, list[str]] = {k: list(records[k]) for k in RECORDS}
        self.loaded: dict[int, tuple[ObligationRecord, tuple[Any, ...]]] = {}
        self.parsed: dict[str, list[Any]] | None = None
        self.alarms: dict[int, Alarm] = {}  # the pending timers, as the heap is read
        # the shared objects, created empty first (they refer to each other), then filled in
        self.objects: dict[str, list[Any]] = {
            tag: [cls.__new__(cls) for _ in self.x[tag]]
            for tag, cls in (("Pending", Pending), ("Chain", Chain))
        }

    def world(self, max_span: int | None = MAX_SPAN_YEARS) -> World:
        w = World(self.codec.compiled, None, max_span)
        obligation_at = list(Pending.FIELDS).index("obligation")
        self.preload([row[obligation_at] for row in self.x["Pending"]])
        for name in RECORDS:
            if name not in LAZY:
                row = STATE[name].row
                assert row is not None
                setattr(w, name, decode_rows(self.carried[name], row, self.refs))
        for tag in ("Chain", "Pending"):
            for obj, row in zip(self.objects[tag], self.x[tag], strict=True):
                self.fill(obj, row)
        fields = self.x["fields"]
        for name, declared in STATE.items():
            if declared.role == "state":
                setattr(w, name, self.shape(declared.shape or "", fields[name]))
        if not all(type(v) is int for v in (w.seq, w.now)):
            raise TypeError("clock")
        heapq.heapify(w.timers)  # settled duties were left out
        return w

    def parse_carried(self) -> dict[str, list[Any]]:
        """Every carried row of the records the World does not read back, parsed and checked
        (once, in ``world``), so that a broken one is refused (PE502) before anything is
        decided."""
        if self.parsed is None:
            parsed: dict[str, list[Any]] = {}
            for name in LAZY:
                row = STATE[name].row
                assert row is not None
                parsed[name] = decode_rows(self.carried[name], row, self.refs)
            self.parsed = parsed
        return self.parsed

    def preload(self, indexes: Iterable[int | None]) -> None:
        """The carried obligations that duties refer to, with their content as read (a
        changed one is written again by the next snapshot)."""
        rows = self.parse_carried()["obligations"]
        for i in {i for i in indexes if i is not None}:
            if type(i) is not int or not 0 <= i < len(rows):
                raise IndexError("obligation")
            self.loaded[i] = (rows[i], _fields_of(rows[i]))

    def fill(self, obj: Any, row: list[Any]) -> Any:
        kinds = [(n, k) for n, k in type(obj).FIELDS.items() if k != "derived"]
        if len(row) != len(kinds):
            raise ValueError(f"a {type(obj).__name__} with {len(row)} fields")
        for (name, kind), x in zip(kinds, row, strict=True):
            setattr(obj, name, self.field(kind, x))
        if isinstance(obj, Pending):
            obj.derive()
        return obj

    def field(self, kind: str, x: Any) -> Any:
        if kind == "value":
            return x
        if kind == "pairs":
            return {k: v for k, v in x}
        if kind == "matches":
            return tuple((f, v) for f, v in x)
        if kind == "spans":
            return _spans_in(x, self.refs)
        if kind == "expect":
            return self.codec.expects[x]
        if kind == "rule":
            return self.codec.rules[x]
        if kind == "event":
            return None if x is None else self.events[x]
        if kind == "chain":
            return None if x is None else self.objects["Chain"][x]
        if kind == "pendings":
            return [self.objects["Pending"][i] for i in x]
        if kind == "obligation":
            return None if x is None else self.loaded[x][0]
        if kind == "key":
            return None if x is None else self.key(x)
        if kind == "object":
            return self.inline(x)
        if kind == "timer":
            return self.codec.timer_specs[x]
        raise ValueError(f"field kind {kind!r}")

    def inline(self, x: list[Any]) -> Any:
        tag, row = x
        cls: Any = OBJECTS[tag]
        return self.fill(object.__new__(cls), row)

    def key(self, k: list[Any]) -> tuple[int | str, Any]:
        kind, scope, value = k
        if kind == "s":
            if not isinstance(scope, str):
                raise TypeError("key scope")
            return scope, value
        return id(self.codec.expects[scope]), value

    def shape(self, shape: str, v: Any) -> Any:
        if shape == "value":
            return v
        if shape == "sets":
            return {_unkey(k): set(s) for k, s in v}
        if shape == "map":
            return {_unkey(k): x for k, x in v}
        if shape == "maps":
            return {_unkey(k): dict(x) for k, x in v}
        if shape == "event_lists":
            at = self.events.__getitem__
            return {_unkey(k): list(map(at, lst)) for k, lst in v}
        if shape.startswith("duties:"):
            pendings = self.objects["Pending"]
            return {_unkey(k): [pendings[i] for i in lst] for k, lst in v}
        if shape == "timers":
            return [(key, seq, self.timer(entry)) for key, seq, entry in v]
        if shape == "alarms":  # read after the heap, which holds them
            return {seq: self.alarms[seq] for seq in v}
        if shape == "live_keys":
            chains = self.objects["Chain"]
            return {self.key(k): chains[c] for k, c in v}
        if shape == "subjects":
            out = {}
            for row in v:
                s = self.fill(Subject.__new__(Subject), row)
                out[s.id] = s
            return out
        raise ValueError(f"state shape {shape!r}")

    def timer(self, entry: list[Any]) -> Any:
        tag, body = entry
        if tag == "Pending":
            return self.objects["Pending"][body]
        if tag not in ("Tick", "Renew", "Close", "Alarm"):
            raise ValueError(f"timer kind {tag!r}")
        obj = self.inline(entry)
        if isinstance(obj, Alarm):
            self.alarms[obj.seq] = obj
        return obj
