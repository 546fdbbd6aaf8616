"""Incremental evaluation: a decision's state as plain JSON values, and resuming from it.

A CRM asks for a decision on every new event. Replaying a customer's whole history each time
costs the whole evaluation again; ``Decision.snapshot()`` instead stores the evaluation's state
as it stood at ``as_of`` (before the end-of-evaluation measures, which hold at that instant
only), and ``Policy.resume(snapshot, new_events, as_of=...)`` rebuilds that state, applies the
new events on the same virtual clock and finishes at the new horizon. The result is the
decision that evaluating the whole history would give, entry for entry.

What the snapshot holds, and why:

* ``inputs`` and ``ids``: the input events exactly as given, in input order, with the id each
  got. Repeats are judged on the events as sent (two different events under one id are
  reported differently from a repeat) and missing ids are derived from an event's place in the
  whole input, so resume needs them; it reads only those a new event's id repeats;
* ``events``: the validated history, so that only the new events are checked and sorted in;
  the ``history`` conditions of later events read the old ones;
* ``state``: what the next events can still change or read: per-subject state, counters,
  the history indexes, the duties that can still be met, missed or cancelled with their
  chains, keys and timers (heap tie-break counter included). Duties settled for good are left
  out: they can no longer do anything, and only their records remain;
* ``records``: what was decided (trace, penalties, obligations, violations, rejections,
  classifications, metric and award rows), one JSON text per row. They only grow, so a row is
  encoded once and carried from snapshot to snapshot; a resumed decision parses the carried
  rows only when they are read (an obligation is written again when its duty changed it);
* a fingerprint of the policy (its sources, effective parameters, the library and format
  versions): a state is only meaningful to the policy that produced it; and a digest of the
  rest, so that a snapshot damaged in storage is refused, not misread.

So a resume costs the new events' evaluation plus parsing the stored JSON (in C), not a
replay: about a quarter of a whole evaluation for one new event on a 100-event history.

Compiled closures cannot be stored: rules are named by id, expectations by their position in
the compiled policy (walked in a fixed order), rule references by their position in the
policy's table of references. Values are tagged where JSON has no type for them
(``{"$d": "1.50"}`` for a Decimal, ``{"$t": [...]}`` for a tuple), and every dictionary whose
order matters is a list of pairs, so a store that reorders JSON keys changes nothing.

A new event strictly before the snapshot's ``as_of`` cannot be applied incrementally: the
whole history is evaluated again (``Decision.resumed`` says so). An event at exactly
``as_of`` is applied incrementally: the snapshot's clock stops where such an event would be
applied (exclusive deadlines at ``as_of`` fired, inclusive ones not yet).
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from policyengine.errors import EventError, Problem, SnapshotError
from policyengine.language.compiler import CExpect, CompiledPolicy, CompiledRule, walk_actions
from policyengine.language.program import Program
from policyengine.runtime import engine
from policyengine.runtime.decision import RESUMABLE, Decision, RawDecision, ResumeInfo
from policyengine.runtime.engine import (
    MISSED,
    OPEN,
    Chain,
    Close,
    Pending,
    Renew,
    Subject,
    Tick,
    World,
)
from policyengine.runtime.events import Event, History, _derived_id, prepare
from policyengine.times import from_dt, parse_instant, to_pendulum

FORMAT: Final = "policyengine.snapshot"
# Bump on any change to what the World keeps or how the engine steps: it is part of the
# fingerprint, so older snapshots are refused instead of being resumed wrongly.
FORMAT_VERSION: Final = 1

_HINT: Final = "re-evaluate the full history with this policy"

# Append-only records: World attribute -> position of the rule reference in a row (None: none).
_RECORDS: Final[dict[str, int | None]] = {
    "trace": 4,
    "penalties": 10,
    "obligations": 0,
    "violations": 5,
    "rejections": 2,
    "classifications": 0,
    "metric_rows": 0,
    "award_rows": 0,
    "conflicts": None,
}
# The records a resumed World does not read back: the decision parses them when it is read,
# and the next snapshot carries their texts as they were (the others are small, and
# ``_decision`` counts them).
_LAZY: Final = frozenset({"trace", "penalties", "obligations", "violations", "rejections"})
# World attributes rebuilt from the policy by ``World.__init__``, set by ``resume``, or only
# written by ``finish``; with the records and ``_STATE`` they must cover every attribute,
# else ``snapshot()`` refuses (see _Codec._check_engine_shape).
_REBUILT: Final = frozenset(
    {
        "policy",
        "dispatcher",
        "tz",
        "sf",
        "classifying",
        "emits_owner",
        "plain",
        "horizon",
        "derived",
        "labels",
        "broken",
        "before_finish",
    }
)
_STATE: Final = frozenset(
    {
        "subjects",
        "owned_by",
        "claims_by",
        "party_counters",
        "ladders",
        "hist_subj",
        "hist_type",
        "waiting",
        "overdue",
        "cancels",
        "timers",
        "live_keys",
        "counter_log",
        "event_labels",
        "period_values",
        "fired",
        "seq",
        "step_owner",
        "rejected",
        "now",
    }
)
_SLOTS: Final[dict[type, frozenset[str]]] = {
    Subject: frozenset({"claims", "counters", "flags", "id", "owner", "owner_since", "spans"}),
    Chain: frozenset(
        {
            "ctx_event",
            "ctx_item",
            "ctx_trigger",
            "key",
            "members",
            "rule",
            "spec",
            "stopped",
            "subject_id",
        }
    ),
    Pending: frozenset(
        {
            "cancel",
            "chain",
            "due",
            "inclusive",
            "match",
            "obligation",
            "party",
            "rule",
            "spec",
            "start",
            "start_excl",
            "state",
            "step",
            "subject_id",
            "sv",
            "trigger",
            "types",
            "where",
        }
    ),
    Tick: frozenset({"end", "label", "start", "unit"}),
    Renew: frozenset({"at", "chain"}),
    Close: frozenset({"tick"}),
}


@dataclass(slots=True)
class _Resumable:
    """What a resumable decision keeps: the World stopped before ``finish``, the validated
    history, and what it carries, already encoded, from the snapshot it was resumed from."""

    policy: Program
    world: World
    history: History
    applied: int  # how many of ``history.events`` the World applied
    as_of: int | None
    resumed: ResumeInfo | None
    inputs: list[str]  # every input event as given, encoded, in input order
    ids: list[str]  # the id each input event has (given or derived) in the history
    texts: list[str | None]  # ``history.events`` encoded, where carried (None: not yet)
    carried: dict[str, list[str]] = field(default_factory=dict)  # record rows as loaded
    # carried obligations read back with their duty, which may change them: each is written
    # again if it differs from its content then
    loaded: dict[int, tuple[list[Any], tuple[Any, ...]]] = field(default_factory=dict)
    # the input events of a first evaluation, copied, encoded into ``inputs`` only when a
    # snapshot is taken: most decisions are never snapshotted, and encoding every event
    # would cost a fifth of the evaluation
    raw_inputs: list[Any] | None = None

    def snapshot(self) -> dict[str, Any]:
        """The hook ``Decision.snapshot()`` calls (``runtime.decision.Resumable``)."""
        return take(self)


# ---------------------------------------------------------------- public entry points


def evaluate_resumable(
    policy: Program, events: Iterable[Mapping[str, Any]], as_of: int | None
) -> Decision:
    """``Policy.evaluate`` on the native backend: an evaluation whose decision can be
    snapshotted (it keeps its World and a copy of the input; ``resumable=False`` does not)."""
    _codec(policy)  # refuse an engine state the format does not know, before evaluating
    raw = [dict(e) if isinstance(e, Mapping) else e for e in events]
    history = prepare(policy.compiled, raw)
    ids = [_input_id(e, i) or "" for i, e in enumerate(raw)]
    decision = _run(policy, history, as_of, [], ids, [None] * len(history.events), None)
    decision.__dict__[RESUMABLE].raw_inputs = raw
    return decision


def _run(
    policy: Program,
    history: History,
    as_of: int | None,
    inputs: list[str],
    ids: list[str],
    texts: list[str | None],
    resumed: ResumeInfo | None,
) -> Decision:
    decision = engine.evaluate(policy.compiled, history, as_of, keep_world=True)
    world: World = decision.__dict__.pop("_world")
    horizon = _horizon(history, as_of)
    ats = [e["at"] for e in history.events]
    applied = bisect_right(ats, horizon) if horizon is not None else 0
    _attach(
        decision, _Resumable(policy, world, history, applied, horizon, resumed, inputs, ids, texts)
    )
    return decision


def take(state: _Resumable) -> dict[str, Any]:
    """``Decision.snapshot()``: see the module doc."""
    codec = _codec(state.policy)
    if state.raw_inputs is not None:
        # refuses what a snapshot could not store (PE504)
        state.inputs = [_enc_event(e) for e in state.raw_inputs]
        state.raw_inputs = None
    history = state.history
    body: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "policy": {"id": state.policy.id, "version": state.policy.version},
        "fingerprint": codec.fingerprint,
        "as_of": state.as_of,
        "as_of_text": (
            to_pendulum(state.as_of, state.policy.compiled.timezone).isoformat()
            if state.as_of is not None
            else None
        ),
        "applied": state.applied,
        "inputs": state.inputs,
        "ids": state.ids,
        "events": [
            t if t is not None else _dumps(_enc(e))
            for e, t in zip(history.events, state.texts, strict=True)
        ],
        "duplicates": [list(x) for x in history.duplicates],
        "ignored": [list(x) for x in history.ignored],
    }
    writer = _Writer(codec, state, history.events[: state.applied])
    body["state"] = writer.state()
    body["records"] = writer.records()
    body["digest"] = _digest(body)
    return _copy_lists(body)


def _copy_lists(body: dict[str, Any]) -> dict[str, Any]:
    """Fresh top-level lists: the caller may change the snapshot it gets, and the decision
    still holds the lists it was built from (their items are immutable texts)."""
    out = dict(body)
    for k in ("inputs", "ids", "events", "duplicates", "ignored"):
        out[k] = list(out[k])
    return out


def resume(
    policy: Program,
    snapshot: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]],
    as_of: str | datetime | None,
) -> Decision:
    """``Policy.resume``: see the module doc."""
    codec = _codec(policy)
    body = _check(codec, snapshot)
    old_as_of, applied = body["as_of"], body["applied"]
    inputs: list[str] = list(body["inputs"])
    ids: list[str] = list(body["ids"])
    texts: list[str] = list(body["events"])
    new = list(events)
    inputs += [_enc_event(e) for e in new]  # refuses what a snapshot could not store
    try:
        old_events: list[Event] = _loads("[" + ",".join(texts) + "]")
        duplicates = [(str(a), str(b)) for a, b in body["duplicates"]]
        ignored = [(str(a), str(b)) for a, b in body["ignored"]]
        if not all(type(e) is dict and type(e.get("at")) is int for e in old_events):
            raise TypeError("an event without its instant")
        if applied > len(old_events) or (applied and old_events[applied - 1]["at"] > old_as_of):
            raise ValueError("the applied events are not those of the history")
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise _malformed(exc) from exc
    fresh = _prepare_after(policy.compiled, inputs, ids, new)
    late = 0
    if fresh is None:  # an input error (it is raised here as evaluate raises it), or odd ids
        history = prepare(policy.compiled, [*_decode_inputs(inputs[: len(ids)]), *new])
        ids += [_input_id(e, len(ids) + i) or "" for i, e in enumerate(new)]
        merged: list[tuple[Event, str | None]] = [(e, None) for e in history.events]
    else:
        added, new_ids = fresh
        ids += new_ids
        if not added.events or not old_events or added.events[0]["at"] >= old_events[-1]["at"]:
            # the usual call, new events after the stored ones: nothing to interleave
            merged = [*zip(old_events, texts, strict=True), *((e, None) for e in added.events)]
        else:
            merged = list(
                heapq.merge(
                    zip(old_events, texts, strict=True),
                    ((e, None) for e in added.events),
                    key=lambda pair: pair[0]["at"],
                )
            )  # stable: an old event before a new one at the same instant, as prepare sorts
        history = History(
            [e for e, _ in merged], duplicates + added.duplicates, ignored + added.ignored
        )
        late = sum(1 for e in added.events if old_as_of is not None and e["at"] < old_as_of)
    wanted = from_dt(parse_instant(as_of, "as_of")) if as_of is not None else None
    horizon = _horizon(history, wanted)
    if old_as_of is not None and (horizon is None or horizon < old_as_of):
        shown = to_pendulum(old_as_of, policy.compiled.timezone).isoformat()
        raise _error(
            "PE503",
            f"resume as_of is before the snapshot's as_of {shown}"
            + (" (by default it is the last event's instant)" if as_of is None else ""),
            "pass an as_of at or after the snapshot's; to look back in time, evaluate the "
            "history with that as_of",
        )
    event_texts = [t for _, t in merged]
    ats = [e["at"] for e in history.events]
    reason = None
    if old_as_of is None or applied == 0 or horizon is None:
        reason = "empty snapshot"  # no clock to continue: ticks start at the first event
    elif fresh is None:
        reason = "the new events were checked with the whole history"
    elif late:
        # an event before the snapshot's clock: the state it would have changed is gone
        reason = f"{late} new event(s) before the snapshot's as_of"
    if reason is not None:
        n = bisect_right(ats, horizon) if horizon is not None else 0
        info = ResumeInfo("full", n, reason)
        return _run(policy, history, wanted, inputs, ids, event_texts, info)
    assert horizon is not None and old_as_of is not None
    try:
        reader = _Reader(codec, body, history.events[:applied])
        world = reader.world()
    except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
        raise _malformed(exc) from exc
    world.horizon = horizon
    todo = history.events[applied : bisect_right(ats, horizon)]
    world.advance(todo, horizon)
    world.finish(horizon)
    decision = engine._decision(policy.compiled, world, history, horizon)
    assert decision.raw is not None
    lazy = _LazyRaw(decision.raw, reader.carried, reader.loaded, codec.refs)
    decision = decision.model_copy(update={"raw": lazy})
    state = _Resumable(
        policy,
        world,
        history,
        applied + len(todo),
        horizon,
        ResumeInfo("incremental", len(todo)),
        inputs,
        ids,
        event_texts,
        reader.carried,
        reader.loaded,
    )
    _attach(decision, state)
    return decision


# The notices ``events.prepare`` gives a repeated id (resume judges repeats of stored events
# itself, so as not to check the whole history again; tests compare it with prepare).
_REPEATED: Final = "repeated event ignored"
_REUSED: Final = "a different event reuses this id; the later one was ignored"


def _input_id(raw: Any, index: int) -> str | None:
    """The id ``prepare`` gives an input event (None: it would refuse the event)."""
    if not isinstance(raw, Mapping):
        return None
    raw_id = raw.get("id")
    if raw_id is None:
        return _derived_id(raw, index)
    if not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or raw_id == "":
        return None
    return str(raw_id)


def _prepare_after(
    compiled: CompiledPolicy, inputs: list[str], ids: list[str], new: list[Any]
) -> tuple[History, list[str]] | None:
    """``prepare`` of the new events as if after the stored ones (ids derived from their
    place in the whole input, repeats of stored ids reported), checking only the new ones.
    None when an event is refused: the whole input is then prepared, to raise exactly."""
    first: dict[str, int] = {}
    for i, known in enumerate(ids):
        first.setdefault(known, i)
    seen: dict[str, Mapping[str, Any]] = {}
    keep: list[Mapping[str, Any]] = []
    new_ids: list[str] = []
    repeats: list[tuple[str, str]] = []
    for index, raw in enumerate(new, start=len(ids)):
        eid = _input_id(raw, index)
        if eid is None:
            return None
        new_ids.append(eid)
        earlier = seen.get(eid)
        if earlier is None and eid in first:
            earlier = _loads(inputs[first[eid]])
        if earlier is not None:
            repeats.append((eid, _REPEATED if dict(earlier) == dict(raw) else _REUSED))
            continue
        seen[eid] = raw
        keep.append(raw if raw.get("id") is not None else {**raw, "id": eid})
    try:
        added = prepare(compiled, keep)
    except EventError:
        return None
    added.duplicates = repeats
    return added, new_ids


def history_of(snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The input events a snapshot holds, as given: what to evaluate in full when the snapshot
    is refused because the policy changed."""
    inputs = snapshot.get("inputs") if isinstance(snapshot, Mapping) else None
    if not isinstance(inputs, list) or not all(type(e) is str for e in inputs):
        raise _malformed(ValueError("no inputs"))
    try:
        return _decode_inputs(inputs)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise _malformed(exc) from exc


# ---------------------------------------------------------------- helpers


def _horizon(history: History, as_of: int | None) -> int | None:
    if as_of is not None:
        return as_of
    return history.events[-1]["at"] if history.events else None


def _attach(decision: Decision, state: _Resumable) -> None:
    # outside the model's fields: dumps and == ignore it, as they ignore cached properties
    decision.__dict__[RESUMABLE] = state


def _error(code: str, message: str, hint: str) -> SnapshotError:
    return SnapshotError([Problem(code, message, hint=hint)])


def _malformed(exc: BaseException) -> SnapshotError:
    detail = f" ({type(exc).__name__}: {exc})" if str(exc) else f" ({type(exc).__name__})"
    return _error(
        "PE502",
        "malformed snapshot: not what Decision.snapshot() returned" + detail,
        "pass the value of decision.snapshot() (or its JSON, loaded) unchanged; " + _HINT,
    )


_HEADER: Final = ("format", "version", "policy", "fingerprint", "as_of", "as_of_text", "applied")
_TEXTS: Final = ("inputs", "ids", "events")  # lists of texts
_PAIRS: Final = ("duplicates", "ignored")  # lists of [id, detail]


def _digest(body: Mapping[str, Any]) -> str:
    """Over the header's canonical text and the payload texts as they are: a store may
    reorder keys or reformat the JSON, a changed value changes the digest."""
    h = hashlib.sha256()
    head = {k: body.get(k) for k in (*_HEADER, *_PAIRS)}
    h.update(json.dumps(head, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    for name in _TEXTS:
        h.update(b"\x1e" + "\x1f".join(body[name]).encode("utf-8"))
    h.update(b"\x1e" + body["state"].encode("utf-8"))
    records = body["records"]
    for name in _RECORDS:
        h.update(b"\x1e" + "\x1f".join(records[name]).encode("utf-8"))
    return h.hexdigest()


def _texts(value: Any) -> bool:
    return isinstance(value, list)  # of texts: joining them for the digest checks that


def _check(codec: _Codec, snapshot: Any) -> Mapping[str, Any]:
    if not isinstance(snapshot, Mapping) or snapshot.get("format") != FORMAT:
        raise _malformed(ValueError("not a policyengine snapshot"))
    version = snapshot.get("version")
    if version != FORMAT_VERSION:
        raise _error(
            "PE501",
            f"the snapshot has format version {version!r}; this library reads version "
            f"{FORMAT_VERSION}",
            _HINT,
        )
    records = snapshot.get("records")
    shape_ok = (
        type(snapshot.get("applied")) is int
        and snapshot["applied"] >= 0
        and (snapshot.get("as_of") is None or type(snapshot.get("as_of")) is int)
        and type(snapshot.get("state")) is str
        and all(_texts(snapshot.get(k)) for k in _TEXTS)
        and len(snapshot["ids"]) == len(snapshot["inputs"])
        and all(
            isinstance(snapshot.get(k), list)
            and all(isinstance(x, list) and len(x) == 2 for x in snapshot[k])
            for k in _PAIRS
        )
        and isinstance(records, Mapping)
        and all(_texts(records.get(k)) for k in _RECORDS)
    )
    if not shape_ok:
        raise _malformed(ValueError("fields are missing or of the wrong type"))
    try:
        digest = _digest(snapshot)
    except (TypeError, AttributeError) as exc:  # a list holding something else than texts
        raise _malformed(exc) from exc
    if snapshot.get("digest") != digest:
        raise _malformed(ValueError("its digest does not match its content"))
    if snapshot.get("fingerprint") != codec.fingerprint:
        meta = snapshot.get("policy")
        was = (
            f"{meta.get('id')!r} version {meta.get('version')!r}"
            if isinstance(meta, Mapping)
            else "another policy"
        )
        raise _error(
            "PE501",
            f"the snapshot was taken with another policy ({was}, or other rules or "
            f"parameters) than {codec.policy_id!r} version {codec.policy_version!r}",
            _HINT + " (policyengine.snapshot.history_of(snapshot) gives its events)",
        )
    return snapshot


# ---------------------------------------------------------------- value encoding


_SCALAR: Final = frozenset({str, int, bool, type(None)})  # JSON keeps these as they are


def _enc(v: Any) -> Any:
    """A value as JSON, tagged where JSON would lose its type (Decimal('1.50') stays 1.50).
    Scalars are tested inline before each call: most values are, and calls cost."""
    t = type(v)
    if t in _SCALAR:
        return v
    if t is Decimal:
        return {"$d": str(v)}
    if t is tuple:
        return {"$t": [x if type(x) in _SCALAR else _enc(x) for x in v]}
    if t is list:
        return [x if type(x) in _SCALAR else _enc(x) for x in v]
    if t is dict:
        try:
            keys = "\0" + "\0".join(v)  # raises if a key is not text
        except TypeError:
            keys = "\0$"
        if "\0$" not in keys:  # no key that would read as a tag
            return {k: x if type(x) in _SCALAR else _enc(x) for k, x in v.items()}
        return {"$m": [[_enc(k), _enc(x)] for k, x in v.items()]}
    if t is float:
        return {"$f": repr(v)}
    if isinstance(v, datetime):
        return {"$dt": v.isoformat()}
    if isinstance(v, date):
        return {"$date": v.isoformat()}
    if isinstance(v, Mapping):
        return _enc(dict(v))
    raise _error(
        "PE504",
        f"a value of type {t.__name__} ({v!r:.60}) cannot be stored in a snapshot",
        "send events with JSON values (text, numbers, true/false, null, lists, mappings), "
        "Decimals or datetimes",
    )


# Stateless once built, so shared. ``JSONEncoder.encode`` builds its C encoder on every call,
# which is half the cost of a short record row, so the C encoder is built once when the
# running Python has the one this module knows (else the documented way, per call).
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _unencodable(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _c_encoder() -> Callable[[Any, int], Any] | None:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        fast: Callable[[Any, int], Any] = make(
            None, _unencodable, json.encoder.encode_basestring, None, ":", ",", False, False, False
        )
        probe = [1, "é", None, True, {"k": [2]}]
        if "".join(fast(probe, 0)) != _ENCODER.encode(probe):
            return None
    except Exception:  # another signature: use the documented way
        return None
    return fast


_FAST: Final = _c_encoder()


def _dumps(value: Any) -> str:
    if _FAST is not None:
        return "".join(_FAST(value, 0))
    return _ENCODER.encode(value)


def _enc_event(event: Mapping[str, Any]) -> str:
    return _dumps(_enc(dict(event)) if isinstance(event, Mapping) else _enc(event))


def _tuple(x: Any) -> tuple[Any, ...]:
    if type(x) is not list:
        raise TypeError("$t holds no list")
    return tuple(x)


def _mapping(x: Any) -> dict[Any, Any]:
    if type(x) is not list:
        raise TypeError("$m holds no list")
    return {k: v for k, v in x}


def _text(conv: Callable[[str], Any]) -> Callable[[Any], Any]:
    def checked(x: Any) -> Any:
        if type(x) is not str:
            raise TypeError("a tagged value holds no text")
        return conv(x)

    return checked


_TAGS: Final[dict[str, Callable[[Any], Any]]] = {
    "$d": _text(Decimal),
    "$t": _tuple,
    "$m": _mapping,
    "$f": _text(float),
    "$dt": _text(datetime.fromisoformat),
    "$date": _text(date.fromisoformat),
}


def _hook(d: dict[str, Any]) -> Any:
    """``json.loads``' object hook: the inner values are decoded first, so each tag only
    converts its own value. Tuples and decimals first: they are most of the tagged values."""
    if len(d) != 1:
        return d
    for tag in d:
        inner = d[tag]
        if tag == "$t":
            if type(inner) is list:
                return tuple(inner)
        elif tag == "$d":
            if type(inner) is str:
                return Decimal(inner)
        elif tag[:1] != "$":
            return d
        else:
            conv = _TAGS.get(tag)
            if conv is not None:
                return conv(inner)
        raise ValueError(f"a malformed {tag!r} value")
    return d


_PLAIN: Final = json.JSONDecoder()
_TAGGED: Final = json.JSONDecoder(object_hook=_hook)  # both stateless: safe to share


def _loads(text: str) -> Any:
    if '"$' not in text:  # nothing tagged (most record rows): no Python call per object
        return _PLAIN.decode(text)
    return _TAGGED.decode(text)


def _decode_inputs(inputs: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = _loads("[" + ",".join(inputs) + "]") if inputs else []
    return out


# ---------------------------------------------------------------- per policy


class _Codec:
    """What the format needs from one compiled policy, built once per Program: stable numbers
    for its expectations and rule references (closures cannot be stored), and its
    fingerprint."""

    def __init__(self, policy: Program) -> None:
        compiled = policy.compiled
        self.compiled: CompiledPolicy = compiled
        self.policy_id = policy.id
        self.policy_version = policy.version
        found = {id(a.expect): a.expect for a in walk_actions(compiled) if a.expect is not None}
        self.expects: list[CExpect] = list(found.values())
        self.expect_index = {id(e): i for i, e in enumerate(self.expects)}
        self.rules: dict[str, CompiledRule] = {r.id: r for r in compiled.rules}
        refs = [r.ref for r in compiled.rules]
        refs += [lab.ref for lab in compiled.labels]
        refs += [mt.ref for mt in compiled.metrics]
        refs += [aw.ref for aw in compiled.awards]
        self.refs: list[tuple[str, tuple[str, ...]]] = list(dict.fromkeys(refs))
        self.ref_index = {ref: i for i, ref in enumerate(self.refs)}
        self.fingerprint = _fingerprint(policy)
        self._check_engine_shape()

    def _check_engine_shape(self) -> None:
        """A state field this module does not know would be silently lost, and the resumed
        decision would differ: refuse instead, until the format is extended."""
        unknown = set(vars(World(self.compiled))) - _STATE - _REBUILT - set(_RECORDS)
        for cls, known in _SLOTS.items():
            slots = set(getattr(cls, "__slots__", ()))
            unknown |= {f"{cls.__name__}.{s}" for s in slots ^ known}
        if unknown:
            raise _error(
                "PE504",
                f"snapshots do not know the engine's state {sorted(unknown)}",
                "policyengine.snapshot must be extended for it (and FORMAT_VERSION bumped)",
            )


def _codec(policy: Program) -> _Codec:
    """Built on first use and kept by the program: walking the compiled rules and hashing the
    sources is not worth repeating on every resume."""
    found = policy.memo.get("snapshot.codec")
    if found is None:
        found = policy.memo["snapshot.codec"] = _Codec(policy)
    assert isinstance(found, _Codec)
    return found


def _fingerprint(policy: Program) -> str:
    from policyengine.version import __version__

    h = hashlib.sha256()
    h.update(f"{FORMAT}/{FORMAT_VERSION}/policyengine {__version__}\n".encode())
    for source in policy.sources:
        h.update(json.dumps(source.data, ensure_ascii=False, default=repr).encode("utf-8"))
        h.update(b"\n")
    compiled = policy.compiled
    if not policy.sources:  # built without sources: what the compiled policy tells
        h.update(repr((compiled.id, compiled.version, [r.ref for r in compiled.rules])).encode())
    h.update(repr(sorted(compiled.params.items())).encode("utf-8"))
    return h.hexdigest()


# ---------------------------------------------------------------- the World


def _live(p: Pending) -> bool:
    return p.state == OPEN


def _cancels_still(p: Pending) -> bool:
    """A settled duty in the cancel index still ends its recurring chain (``settle``)."""
    return p.state == OPEN or (p.chain is not None and not p.chain.stopped)


def _members_read(c: Chain) -> bool:
    """Whether the engine reads a chain's duties: a schedule's, to know whether it is live and
    which steps came first; a recurring chain's (every period's duty so far) never, being live
    until stopped, so they are left out."""
    spec = c.spec
    return spec.steps is not None or (spec.every is None and not spec.repeat)


class _Writer:
    """The World as JSON. Objects shared by identity (duties, chains, obligation records,
    events) are written once into tables and referred to by position. Duties settled for good
    are left out: no step reads them again (``fire_until`` skips them, ``settle`` drops them
    from the indexes), and the timer heap's order is that of its (key, seq) pairs, which are
    unique, so removing entries changes no other entry's turn."""

    def __init__(self, codec: _Codec, resumable: _Resumable, applied: list[Event]) -> None:
        world = resumable.world
        self.codec = codec
        self.w = world
        self.carried = resumable.carried
        self.loaded = resumable.loaded
        self.events: dict[int, int] = {id(e): i for i, e in enumerate(applied)}
        self.extras: list[Any] = []  # events not in the history (ticks, owner_changed)
        self.pendings: dict[int, int] = {}
        self.pending_rows: list[Any] = []
        self.chains: dict[int, int] = {}
        self.chain_rows: list[Any] = []
        # records carried unread come first: the World holds the later ones only
        n = len(self.carried.get("obligations", ()))
        self.obligations = {id(o): i for i, (o, _) in self.loaded.items()}
        self.obligations.update({id(o): n + i for i, o in enumerate(world.obligations)})
        self.marks = world.before_finish or (
            len(world.metric_rows),
            len(world.award_rows),
            world.period_values,
            world.now,
        )

    def state(self) -> str:
        w = self.w
        if w.derived:
            raise AssertionError("a snapshot between the steps of one event")
        ref = self.codec.ref_index
        _, _, period_values, now = self.marks
        timers = [
            [key, seq, self.timer(entry)]
            for key, seq, entry in w.timers
            if not (isinstance(entry, Pending) and entry.state != OPEN)
            and not (isinstance(entry, Renew) and entry.chain.stopped)
        ]
        out: dict[str, Any] = {
            "subjects": [
                [
                    s.id,
                    s.owner,
                    s.owner_since,
                    _pairs(s.flags),
                    _pairs(s.counters),
                    _pairs(s.claims),
                    [[o, a, b, ref[r], _enc(c)] for o, a, b, r, c in s.spans],
                ]
                for s in w.subjects.values()
            ],
            "owned_by": [[k, list(v)] for k, v in w.owned_by.items()],
            "claims_by": [[k, list(v)] for k, v in w.claims_by.items()],
            "party_counters": [[k, _pairs(v)] for k, v in w.party_counters.items()],
            "ladders": [[a, b, n] for (a, b), n in w.ladders.items()],
            "hist_subj": [
                [_enc(sv), t, [self.events[id(e)] for e in lst]]
                for (sv, t), lst in w.hist_subj.items()
            ],
            "hist_type": [[t, [self.events[id(e)] for e in lst]] for t, lst in w.hist_type.items()],
            "waiting": self.index(w.waiting, _live),
            "overdue": self.index(w.overdue, lambda p: p.state == MISSED),
            "cancels": self.index(w.cancels, _cancels_still),
            "timers": timers,
            "live_keys": [
                [*self.key(k), self.chain(c)] for k, c in w.live_keys.items() if c.live()
            ],
            "counter_log": [
                [a, b, [[at, _enc(by)] for at, by in log]] for (a, b), log in w.counter_log.items()
            ],
            "event_labels": [[k, _pairs(v)] for k, v in w.event_labels.items()],
            "period_values": [[a, b, _enc(v)] for (a, b), v in period_values.items()],
            "fired": [[k, n] for k, n in w.fired.items()],
            "seq": w.seq,
            "step_owner": [[k, o, r] for k, (o, r) in w.step_owner.items()],
            "rejected": w.rejected,
            "now": now,
        }
        # the tables last: the entries above filled them
        out["pendings"] = self.pending_rows
        out["chains"] = self.chain_rows
        out["extras"] = self.extras
        return _dumps(out)

    def records(self) -> dict[str, list[str]]:
        """Rows carried from the snapshot resumed from are kept as they were written, but an
        obligation changed since (its duty was met, missed...) is written again."""
        w, ref = self.w, self.codec.ref_index
        n_metrics, n_awards, _, _ = self.marks
        out: dict[str, list[str]] = {}
        for name, pos in _RECORDS.items():
            rows: list[Any] = getattr(w, name)
            if name == "metric_rows":
                rows = rows[:n_metrics]
            elif name == "award_rows":
                rows = rows[:n_awards]
            old = self.carried.get(name, [])
            texts = list(old)
            if name == "obligations":
                for i, (row, was) in self.loaded.items():
                    if tuple(row) != was:
                        texts[i] = _row(row, pos, ref)
            texts += [_row(r, pos, ref) for r in (rows if name in _LAZY else rows[len(old) :])]
            out[name] = texts
        return out

    def event(self, ev: Mapping[str, Any] | None) -> int | None:
        if ev is None:
            return None
        found = self.events.get(id(ev))
        if found is None:
            found = self.events[id(ev)] = len(self.events)
            self.extras.append(_enc(dict(ev)))
        return found

    def index(
        self, table: dict[tuple[str, Any], list[Pending]], keep: Callable[[Pending], bool]
    ) -> list[Any]:
        out = []
        for (t, sv), lst in table.items():
            kept = [self.pending(p) for p in lst if keep(p)]
            if kept:
                out.append([t, _enc(sv), kept])
        return out

    def key(self, key: tuple[int | str, Any]) -> list[Any]:
        scope, value = key
        if isinstance(scope, str):
            return ["s", scope, _enc(value)]
        return ["x", self.codec.expect_index[scope], _enc(value)]

    def timer(self, entry: Pending | Tick | Renew | Close) -> list[Any]:
        if isinstance(entry, Pending):
            return ["p", self.pending(entry)]
        if isinstance(entry, Tick):
            return ["tick", entry.unit, entry.start, entry.end, entry.label]
        if isinstance(entry, Renew):
            return ["renew", self.chain(entry.chain), entry.at]
        t = entry.tick
        return ["close", t.unit, t.start, t.end, t.label]

    def pending(self, p: Pending) -> int:
        found = self.pendings.get(id(p))
        if found is not None:
            return found
        found = self.pendings[id(p)] = len(self.pending_rows)
        self.pending_rows.append(None)  # its place, before its chain adds the other members
        spec = p.spec
        steps = spec.steps
        types, where = (
            (steps[p.step].types, steps[p.step].where) if steps else (spec.types, spec.where)
        )
        if p.types != types or p.where is not where:
            raise AssertionError("a pending duty's types or condition is not its spec's")
        self.pending_rows[found] = [
            self.codec.expect_index[id(spec)],
            p.rule.id,
            self.event(p.trigger),
            p.subject_id,
            p.state,
            [[f, _enc(v)] for f, v in p.match],
            [[f, _enc(v)] for f, v in p.cancel],
            p.due,
            p.inclusive,
            p.start,
            p.start_excl,
            self.chain(p.chain) if p.chain is not None else None,
            p.step,
            _enc(p.party),
            self.obligations[id(p.obligation)] if p.obligation is not None else None,
            _enc(p.sv),
        ]
        return found

    def chain(self, c: Chain) -> int:
        found = self.chains.get(id(c))
        if found is not None:
            return found
        found = self.chains[id(c)] = len(self.chain_rows)
        self.chain_rows.append(None)
        self.chain_rows[found] = [
            self.codec.expect_index[id(c.spec)],
            c.rule.id,
            self.event(c.ctx_event),
            self.event(c.ctx_trigger),
            _enc(c.ctx_item),
            c.subject_id,
            self.key(c.key) if c.key is not None else None,
            c.stopped,
            [self.pending(p) for p in c.members] if _members_read(c) else [],
        ]
        return found


def _pairs(d: Mapping[Any, Any]) -> list[list[Any]]:
    return [[_enc(k), _enc(v)] for k, v in d.items()]


def _row(row: tuple[Any, ...] | list[Any], pos: int | None, ref: dict[Any, int]) -> str:
    out = [x if type(x) in _SCALAR else _enc(x) for x in row]
    if pos is not None:
        out[pos] = ref[row[pos]]
    return _dumps(out)


def _rows(texts: list[str], pos: int | None, refs: list[Any]) -> list[tuple[Any, ...]]:
    rows: list[list[Any]] = _loads("[" + ",".join(texts) + "]") if texts else []
    if pos is not None:
        for r in rows:
            r[pos] = refs[r[pos]]
    return [tuple(r) for r in rows]


class _LazyRaw:
    """The ``RawDecision`` of a resumed evaluation: the rows carried from the snapshot are
    parsed when the decision first reads them (a caller often reads an owner or two, and
    the trace is most of a snapshot). Decisions read it by attribute, as a RawDecision."""

    def __init__(
        self,
        base: RawDecision,
        carried: dict[str, list[str]],
        loaded: dict[int, tuple[list[Any], tuple[Any, ...]]],
        refs: list[Any],
    ) -> None:
        self._base = base
        self._carried = carried
        self._loaded = loaded
        self._refs = refs

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._base, name)
        texts = self._carried.get(name) if name in _LAZY else None
        if texts:
            if name == "obligations":
                rows: list[Any] = _loads("[" + ",".join(texts) + "]")
                for r in rows:
                    r[0] = self._refs[r[0]]
                for i, (row, _) in self._loaded.items():
                    rows[i] = row  # as the resumed evaluation left it
                value = World.reported(rows) + value
            else:
                value = _rows(texts, _RECORDS[name], self._refs) + value
        self.__dict__[name] = value
        return value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RawDecision | _LazyRaw):
            return NotImplemented
        names = [f.name for f in dataclasses.fields(RawDecision)]
        return all(getattr(self, n) == getattr(other, n) for n in names)

    __hash__ = None  # type: ignore[assignment]


class _Reader:
    """The World back from ``_Writer``'s JSON, on this process's compiled policy."""

    def __init__(self, codec: _Codec, body: Mapping[str, Any], events: list[Event]) -> None:
        self.codec = codec
        self.x: dict[str, Any] = _loads(body["state"])
        self.records: Mapping[str, list[str]] = body["records"]
        self.events: list[Event] = [*events, *self.x["extras"]]
        self.refs = codec.refs
        self.chains: list[Chain] = []
        self.pendings: list[Pending] = []
        self.carried: dict[str, list[str]] = {k: list(self.records[k]) for k in _RECORDS}
        self.loaded: dict[int, tuple[list[Any], tuple[Any, ...]]] = {}

    def key(self, k: list[Any]) -> tuple[int | str, Any]:
        kind, scope, value = k
        if kind == "s":
            if not isinstance(scope, str):
                raise TypeError("key scope")
            return scope, value
        return id(self.codec.expects[scope]), value

    def event(self, i: int | None) -> Event | None:
        return None if i is None else self.events[i]

    def preload(self, indexes: list[int]) -> None:
        """Parse the carried obligations that duties refer to, in one pass."""
        texts = self.carried["obligations"]
        wanted = sorted({i for i in indexes if i is not None})
        if not wanted:
            return
        if wanted[0] < 0 or wanted[-1] >= len(texts):
            raise IndexError("obligation")
        rows: list[list[Any]] = _loads("[" + ",".join(texts[i] for i in wanted) + "]")
        for i, row in zip(wanted, rows, strict=True):
            row[0] = self.refs[row[0]]
            self.loaded[i] = (row, tuple(row))

    def world(self) -> World:
        x, codec = self.x, self.codec
        w = World(codec.compiled)
        self.preload([p[14] for p in x["pendings"]])
        for name in _RECORDS.keys() - _LAZY:
            setattr(w, name, _rows(self.carried[name], _RECORDS[name], self.refs))
        rules = codec.rules
        expects = codec.expects
        # chains and duties refer to each other: create both, then fill them in
        self.chains = [Chain.__new__(Chain) for _ in x["chains"]]
        self.pendings = [Pending(expects[p[0]], rules[p[1]], {}, None) for p in x["pendings"]]
        for obj, c in zip(self.chains, x["chains"], strict=True):
            spec, rule, ev, trig, item, sid, key, stopped, members = c
            obj.spec, obj.rule = expects[spec], rules[rule]
            obj.ctx_event, obj.ctx_trigger = self.event(ev), self.event(trig)
            obj.ctx_item, obj.subject_id = item, sid
            obj.key = self.key(key) if key is not None else None
            obj.stopped = bool(stopped)
            obj.members = [self.pendings[i] for i in members]
        for obj_p, p in zip(self.pendings, x["pendings"], strict=True):
            (_, _, trig, sid, state, match, cancel, due, incl, start, start_excl) = p[:11]
            chain, step, party, obligation, sv = p[11:]
            trigger = self.event(trig)
            if trigger is None:
                raise ValueError("a pending duty without its trigger")
            obj_p.trigger, obj_p.subject_id, obj_p.state = trigger, sid, state
            obj_p.match = tuple((f, v) for f, v in match)
            obj_p.cancel = tuple((f, v) for f, v in cancel)
            obj_p.due, obj_p.inclusive, obj_p.start, obj_p.start_excl = due, incl, start, start_excl
            obj_p.chain = self.chains[chain] if chain is not None else None
            obj_p.step = step
            steps = obj_p.spec.steps
            if steps:
                obj_p.types, obj_p.where = steps[step].types, steps[step].where
            obj_p.party, obj_p.sv = party, sv
            if obligation is not None:
                obj_p.obligation = self.loaded[obligation][0]
        for sid, owner, since, flags, counters, claims, spans in x["subjects"]:
            s = w.subjects[sid] = Subject(sid)
            s.owner, s.owner_since = owner, since
            s.flags, s.counters, s.claims = dict(flags), dict(counters), dict(claims)
            s.spans = [[o, a, b, self.refs[r], c] for o, a, b, r, c in spans]
        w.owned_by = {k: set(v) for k, v in x["owned_by"]}
        w.claims_by = {k: set(v) for k, v in x["claims_by"]}
        w.party_counters = {k: dict(v) for k, v in x["party_counters"]}
        w.ladders = {(a, b): n for a, b, n in x["ladders"]}
        at = self.events.__getitem__
        w.hist_subj = {(sv, t): list(map(at, lst)) for sv, t, lst in x["hist_subj"]}
        w.hist_type = {t: list(map(at, lst)) for t, lst in x["hist_type"]}
        w.waiting = self.index(x["waiting"])
        w.overdue = self.index(x["overdue"])
        w.cancels = self.index(x["cancels"])
        w.timers = [(key, seq, self.timer(entry)) for key, seq, entry in x["timers"]]
        heapq.heapify(w.timers)  # settled duties were left out
        w.live_keys = {self.key(k[:3]): self.chains[k[3]] for k in x["live_keys"]}
        w.counter_log = {(a, b): [(at, by) for at, by in log] for a, b, log in x["counter_log"]}
        w.event_labels = {k: dict(v) for k, v in x["event_labels"]}
        w.period_values = {(a, b): v for a, b, v in x["period_values"]}
        w.fired = {k: n for k, n in x["fired"]}
        w.seq = x["seq"]
        w.step_owner = {k: (o, r) for k, o, r in x["step_owner"]}
        w.rejected = bool(x["rejected"])
        w.now = x["now"]
        if not all(type(v) is int for v in (w.seq, w.now)):
            raise TypeError("clock")
        return w

    def index(self, rows: list[Any]) -> dict[tuple[str, Any], list[Pending]]:
        return {(t, sv): [self.pendings[i] for i in lst] for t, sv, lst in rows}

    def timer(self, entry: list[Any]) -> Pending | Tick | Renew | Close:
        kind = entry[0]
        if kind == "p":
            found: Pending = self.pendings[entry[1]]
            return found
        if kind == "tick":
            return Tick(*entry[1:5])
        if kind == "renew":
            return Renew(self.chains[entry[1]], entry[2])
        if kind == "close":
            return Close(Tick(*entry[1:5]))
        raise ValueError(f"timer kind {kind!r}")
