"""Incremental evaluation: a decision's state as plain JSON values, and resuming from it.

``make_resumable`` gives a decision evaluated with ``keep_world=True`` the hook that
``Decision.snapshot()`` calls (under ``RESUMABLE``; ``evaluate_resumable`` evaluates, then
does that); ``take`` writes the snapshot (header, payload, digest) and ``resume``
(``Policy.resume``) continues it with new events, deciding what evaluating the whole history
would. The World's encoding is ``snapshot_codec``. What a snapshot holds and why, the format
(version 2), and when a resume evaluates in full: ``docs/snapshots.md``.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import json
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from policyengine.backends.snapshot_codec import (
    FORMAT,
    FORMAT_VERSION,
    Codec,
    LazyRaw,
    Reader,
    Writer,
    codec_of,
)
from policyengine.backends.snapshot_values import (
    _decode_inputs,
    _dumps,
    _enc,
    _enc_event,
    _loads,
    error,
)
from policyengine.errors import Code, EventError, SnapshotError
from policyengine.language.compiler import CompiledPolicy
from policyengine.language.program import Program
from policyengine.runtime import evaluate as engine
from policyengine.runtime.decision import RESUMABLE, Decision, ResumeInfo
from policyengine.runtime.engine import World
from policyengine.runtime.events import (
    REPEATED,
    REUSED,
    Event,
    History,
    Repeats,
    event_id,
    history_items,
    prepare,
    same_content,
)
from policyengine.runtime.records import ObligationRecord
from policyengine.runtime.state import MAX_SPAN_YEARS, RECORDS
from policyengine.times import from_dt, parse_instant, to_pendulum

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "evaluate_resumable",
    "history_of",
    "make_resumable",
    "resume",
    "take",
]

_HINT: Final = "re-evaluate the full history with this policy"


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
    loaded: dict[int, tuple[ObligationRecord, tuple[Any, ...]]] = field(default_factory=dict)
    # the input events of a first evaluation, copied, encoded into ``inputs`` only when a
    # snapshot is taken: most decisions are never snapshotted, and encoding every event
    # would cost a fifth of the evaluation
    raw_inputs: list[Any] | None = None

    def snapshot(self, key: bytes | None = None) -> dict[str, Any]:
        """The hook ``Decision.snapshot()`` calls (``runtime.decision.Resumable``)."""
        return take(self, key)


# ---------------------------------------------------------------- public entry points


def evaluate_resumable(
    policy: Program,
    events: Iterable[Mapping[str, Any]],
    as_of: int | None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> Decision:
    """``Policy.evaluate`` on the Python backend, for callers below the front end (the
    parallel runner's one-process fallback): evaluate, then ``make_resumable``."""
    raw = [dict(e) if isinstance(e, Mapping) else e for e in history_items(events)]
    history = prepare(policy.compiled, raw)
    decision = engine.evaluate(policy.compiled, history, as_of, keep_world=True, max_span=max_span)
    return make_resumable(policy, decision, history, raw, as_of)


def make_resumable(
    policy: Program, decision: Decision, history: History, raw: list[Any], as_of: int | None
) -> Decision:
    """Give a decision evaluated with ``keep_world=True`` its snapshot hook (``RESUMABLE``):
    the World it keeps, the validated history and a copy of the input ``raw`` (encoded only
    when a snapshot is taken)."""
    codec_of(policy)  # refuse an engine state the format does not know
    ids = [_input_id(e, i) or "" for i, e in enumerate(raw)]
    world: World = decision.__dict__.pop("_world")
    state = _resumable(policy, world, history, as_of, [], ids, [None] * len(history.events), None)
    state.raw_inputs = raw
    _attach(decision, state)
    return decision


def _resumable(
    policy: Program,
    world: World,
    history: History,
    as_of: int | None,
    inputs: list[str],
    ids: list[str],
    texts: list[str | None],
    resumed: ResumeInfo | None,
) -> _Resumable:
    horizon = _horizon(history, as_of)
    ats = [e["at"] for e in history.events]
    applied = bisect_right(ats, horizon) if horizon is not None else 0
    return _Resumable(policy, world, history, applied, horizon, resumed, inputs, ids, texts)


def _run(
    policy: Program,
    history: History,
    as_of: int | None,
    inputs: list[str],
    ids: list[str],
    texts: list[str | None],
    resumed: ResumeInfo | None,
    max_span: int | None,
) -> Decision:
    """A whole evaluation again, inside ``resume`` (what it carries stays as it was)."""
    decision = engine.evaluate(policy.compiled, history, as_of, keep_world=True, max_span=max_span)
    world: World = decision.__dict__.pop("_world")
    _attach(decision, _resumable(policy, world, history, as_of, inputs, ids, texts, resumed))
    return decision


def take(state: _Resumable, key: bytes | None = None) -> dict[str, Any]:
    """``Decision.snapshot()``: see docs/snapshots.md. ``key``: seal it (HMAC-SHA256)."""
    secret = _key(key)
    codec = codec_of(state.policy)
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
    writer = Writer(
        codec, state.world, history.events[: state.applied], state.carried, state.loaded
    )
    body["state"] = writer.state()
    body["records"] = writer.records()
    body["digest"] = _digest(body)
    if secret is not None:
        body["seal"] = _seal(secret, body["digest"])
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
    key: bytes | None = None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> Decision:
    """``Policy.resume``: see docs/snapshots.md. ``key``: the snapshot must carry a seal made
    with it (``Decision.snapshot(key=...)``), else PE502. ``max_span``: as for ``evaluate``."""
    codec = codec_of(policy)
    body = _check(codec, snapshot, _key(key))
    after = continued(policy, body, events, as_of)
    history, applied, horizon, wanted = after.history, after.applied, after.horizon, after.wanted
    inputs, ids, event_texts, ats = after.inputs, after.ids, after.texts, after.ats
    if after.reason is not None:
        n = bisect_right(ats, horizon) if horizon is not None else 0
        info = ResumeInfo("full", n, after.reason)
        return _run(policy, history, wanted, inputs, ids, event_texts, info, max_span)
    assert horizon is not None and after.old_as_of is not None
    try:
        reader = Reader(codec, body["state"], body["records"], history.events[:applied])
        world = reader.world(max_span)
        carried_rows = reader.parse_carried()
    except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
        raise _malformed(exc) from exc
    world.horizon = horizon
    todo = history.events[applied : bisect_right(ats, horizon)]
    world.advance(todo, horizon)
    world.finish(horizon)
    decision = engine.decision_of(policy.compiled, world, history, horizon)
    assert decision.raw is not None
    lazy = LazyRaw(decision.raw, carried_rows, reader.loaded)
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


@dataclass(slots=True)
class Continued:
    """A snapshot's history with the new events (``continued``): what either engine resumes
    from, or evaluates in full (``reason``: why, None: it may resume)."""

    history: History
    applied: int  # how many of ``history.events`` the snapshot's state applied
    old_as_of: int | None
    wanted: int | None  # the ``as_of`` asked for
    horizon: int | None
    inputs: list[str]
    ids: list[str]
    texts: list[str | None]
    ats: list[int]
    reason: str | None


def continued(
    policy: Program,
    body: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]],
    as_of: str | datetime | None,
) -> Continued:
    """A checked snapshot's history with the new events, as evaluating the whole input would
    prepare it (PE503 for an ``as_of`` before the snapshot's), and whether it may resume."""
    old_as_of, applied = body["as_of"], body["applied"]
    inputs: list[str] = list(body["inputs"])
    ids: list[str] = list(body["ids"])
    texts: list[str] = list(body["events"])
    new = list(history_items(events))
    try:
        inputs += [_enc_event(e) for e in new]  # refuses what a snapshot could not store
    except (ValueError, TypeError, RecursionError):
        # a value the input checks refuse (a 5,000-digit number): refused as evaluate does
        prepare(policy.compiled, new)
        raise
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
        raise error(
            Code.RESUME_BEFORE_SNAPSHOT,
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
    return Continued(
        history, applied, old_as_of, wanted, horizon, inputs, ids, event_texts, ats, reason
    )


# The notices ``events.prepare`` gives a repeated id (resume judges repeats of stored events
# itself, so as not to check the whole history again; tests compare it with prepare).
_REPEATED: Final = REPEATED
_REUSED: Final = REUSED


def _input_id(raw: Any, index: int) -> str | None:
    """The id ``prepare`` gives an input event (None: it would refuse the event)."""
    return event_id(raw, index)


def _prepare_after(
    compiled: CompiledPolicy, inputs: list[str], ids: list[str], new: list[Any]
) -> tuple[History, list[str]] | None:
    """``prepare`` of the new events as if after the stored ones (ids derived from their
    place in the whole input, repeats of stored ids reported), checking only the new ones.
    None when an event is refused: the whole input is then prepared, to raise exactly."""
    first: dict[str, int] = {}
    for i, known in enumerate(ids):
        first.setdefault(known, i)

    def stored(eid: str) -> Mapping[str, Any] | None:  # the first stored event of an id
        i = first.get(eid)
        return None if i is None else _loads(inputs[i])

    repeats: Repeats[Mapping[str, Any]] = Repeats(same_content, stored)
    keep: list[Mapping[str, Any]] = []
    new_ids: list[str] = []
    for index, raw in enumerate(new, start=len(ids)):
        eid = event_id(raw, index)
        if eid is None:
            return None
        new_ids.append(eid)
        if repeats.repeated(eid, raw):
            continue
        keep.append(raw if raw.get("id") is not None else {**raw, "id": eid})
    if repeats.reused:  # PE212: the whole input is prepared, to name both events
        return None
    try:
        added = prepare(compiled, keep)
    except EventError:
        return None
    added.duplicates = repeats.duplicates
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


def _malformed(exc: BaseException) -> SnapshotError:
    detail = f" ({type(exc).__name__}: {exc})" if str(exc) else f" ({type(exc).__name__})"
    return error(
        Code.SNAPSHOT_MALFORMED,
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
    if "engine" in body:  # a native snapshot's (``native_snapshot``); absent: the Python's
        head["engine"] = body["engine"]
    h.update(json.dumps(head, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    for name in _TEXTS:
        h.update(b"\x1e" + "\x1f".join(body[name]).encode("utf-8"))
    h.update(b"\x1e" + body["state"].encode("utf-8"))
    records = body["records"]
    for name in RECORDS:
        h.update(b"\x1e" + "\x1f".join(records[name]).encode("utf-8"))
    return h.hexdigest()


def _texts(value: Any) -> bool:
    return isinstance(value, list)  # of texts: joining them for the digest checks that


def _key(key: object) -> bytes | None:
    """A seal's key: bytes (or text, as UTF-8); an empty key seals nothing and is refused."""
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, bytes | bytearray) or not key:
        raise error(
            Code.SNAPSHOT_MALFORMED,
            f"a snapshot key must be non-empty bytes, not {type(key).__name__}",
            "pass the same secret bytes to decision.snapshot(key=...) and policy.resume(...)",
        )
    return bytes(key)


def _seal(key: bytes, digest: str) -> str:
    return hmac.new(key, f"{FORMAT}/{digest}".encode(), hashlib.sha256).hexdigest()


def _check(codec: Codec, snapshot: Any, key: bytes | None = None) -> Mapping[str, Any]:
    if not isinstance(snapshot, Mapping) or snapshot.get("format") != FORMAT:
        raise _malformed(ValueError("not a policyengine snapshot"))
    version = snapshot.get("version")
    if version != FORMAT_VERSION:
        raise error(
            Code.SNAPSHOT_OTHER_POLICY,
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
        and all(_texts(records.get(k)) for k in RECORDS)
    )
    if not shape_ok:
        raise _malformed(ValueError("fields are missing or of the wrong type"))
    try:
        digest = _digest(snapshot)
    except (TypeError, AttributeError) as exc:  # a list holding something else than texts
        raise _malformed(exc) from exc
    if snapshot.get("digest") != digest:
        raise _malformed(ValueError("its digest does not match its content"))
    if key is not None:
        seal = snapshot.get("seal")
        if seal is None:
            raise _malformed(ValueError("it carries no seal, and a key was given"))
        if not isinstance(seal, str) or not hmac.compare_digest(seal, _seal(key, digest)):
            raise _malformed(ValueError("its seal does not verify with the key given"))
    if snapshot.get("fingerprint") != codec.fingerprint:
        meta = snapshot.get("policy")
        was = (
            f"{meta.get('id')!r} version {meta.get('version')!r}"
            if isinstance(meta, Mapping)
            else "another policy"
        )
        raise error(
            Code.SNAPSHOT_OTHER_POLICY,
            f"the snapshot was taken with another policy ({was}, or other rules or "
            f"parameters) than {codec.policy_id!r} version {codec.policy_version!r}",
            _HINT + " (policyengine.snapshot.history_of(snapshot) gives its events)",
        )
    return snapshot
