"""Snapshots of the Rust core: ``evaluate(..., backend="native", resumable=True)`` and the
``Policy.resume`` of what its decisions' ``snapshot()`` writes.

The snapshot has the outer format ``snapshot.take`` writes (header, the input events, ids, the
history's events, repeats and ignored events, digest, optional seal), marked
``"engine": "native"``; its ``state`` is the core's own state (``native/src/saved.rs``: the
evaluation stopped before the horizon's deadlines, versioned with the IR), as base64 text.
A resume continues that state on the core with the new events only; where it cannot (no core
installed, a state of another format or IR version, a history the core leaves to the Python
engine, a new event before the snapshot's ``as_of``), it evaluates the whole history from the
stored events and the new ones, and ``decision.resumed`` says so ("full", and why), as the
Python snapshots do. Either way the decision equals evaluating the whole history.
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, Final

from policyengine.backends import native
from policyengine.backends import snapshot as snap
from policyengine.backends.snapshot import Continued
from policyengine.backends.snapshot_codec import FORMAT, FORMAT_VERSION, codec_of
from policyengine.backends.snapshot_values import _dumps, _enc, _enc_event
from policyengine.language.program import Program
from policyengine.runtime import evaluate as engine
from policyengine.runtime.decision import RESUMABLE, Decision, ResumeInfo
from policyengine.runtime.events import History, history_items, prepare
from policyengine.runtime.records import gc_paused
from policyengine.runtime.state import MAX_SPAN_YEARS, RECORDS, check_span
from policyengine.times import to_pendulum

__all__ = ["ENGINE", "evaluate_resumable", "resume", "take"]

ENGINE: Final = "native"  # the snapshot's ``engine``: its ``state`` is the core's


@dataclass(slots=True)
class _Saved:
    """What a resumable native decision keeps: the core's state (bytes) and the history."""

    policy: Program
    history: History
    applied: int  # how many of ``history.events`` the state applied
    as_of: int | None
    resumed: ResumeInfo | None
    inputs: list[str]  # every input event as given, encoded, in input order
    ids: list[str]  # the id each input event has in the history
    texts: list[str | None]  # ``history.events`` encoded, where carried
    state: bytes
    raw_inputs: list[Any] | None = None  # encoded into ``inputs`` when a snapshot is taken

    def snapshot(self, key: bytes | None = None) -> dict[str, Any]:
        """The hook ``Decision.snapshot()`` calls (``runtime.decision.Resumable``)."""
        return take(self, key)


def evaluate_resumable(
    policy: Program,
    events: Iterable[Mapping[str, Any]],
    as_of: int | None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> Decision:
    """``Policy.evaluate(..., backend="native", resumable=True)``: the core's decision with
    its state; the Python engine's resumable decision where the core does not decide it."""
    raw = [dict(e) if isinstance(e, Mapping) else e for e in history_items(events)]
    history = prepare(policy.compiled, raw)
    codec_of(policy)  # refuse a policy the snapshot format does not know, as Python does
    out = _run_saved(policy, history, as_of, max_span)
    if out is None:
        decision = engine.evaluate(
            policy.compiled, history, as_of, keep_world=True, max_span=max_span
        )
        return snap.make_resumable(policy, decision, history, raw, as_of)
    decision, state, applied, horizon = out
    ids = [snap._input_id(e, i) or "" for i, e in enumerate(raw)]
    texts: list[str | None] = [None] * len(history.events)
    saved = _Saved(policy, history, applied, horizon, None, [], ids, texts, state, raw)
    decision.__dict__[RESUMABLE] = saved
    return decision


def take(saved: _Saved, key: bytes | None = None) -> dict[str, Any]:
    """``Decision.snapshot()`` of a native decision: ``snapshot.take``'s outer format, the
    core's state in ``state``. ``key``: seal it (HMAC-SHA256)."""
    secret = snap._key(key)
    codec = codec_of(saved.policy)
    if saved.raw_inputs is not None:  # refuses what a snapshot could not store (PE504)
        saved.inputs = [_enc_event(e) for e in saved.raw_inputs]
        saved.raw_inputs = None
    history = saved.history
    for i, (e, t) in enumerate(zip(history.events, saved.texts, strict=True)):
        if t is None:  # encoded once: a chain of snapshots encodes each event once
            saved.texts[i] = _dumps(_enc(e))
    tz = saved.policy.compiled.timezone
    body: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "policy": {"id": saved.policy.id, "version": saved.policy.version},
        "fingerprint": codec.fingerprint,
        "as_of": saved.as_of,
        "as_of_text": to_pendulum(saved.as_of, tz).isoformat() if saved.as_of is not None else None,
        "applied": saved.applied,
        "inputs": saved.inputs,
        "ids": saved.ids,
        "events": list(saved.texts),
        "duplicates": [list(x) for x in history.duplicates],
        "ignored": [list(x) for x in history.ignored],
        "engine": ENGINE,
        "state": base64.b64encode(saved.state).decode("ascii"),
        "records": {name: [] for name in RECORDS},  # the core's state holds them
    }
    body["digest"] = snap._digest(body)
    if secret is not None:
        body["seal"] = snap._seal(secret, body["digest"])
    return snap._copy_lists(body)


def resume(
    policy: Program,
    snapshot: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]],
    as_of: str | datetime | None,
    key: bytes | None = None,
    max_span: int | None = MAX_SPAN_YEARS,
) -> Decision:
    """``Policy.resume`` of a native snapshot (``"engine": "native"``): the same checks and
    errors as ``snapshot.resume`` (PE501, PE502, PE503), then the core continues its state,
    or the whole history is evaluated (``decision.resumed`` says which, and why)."""
    body = snap._check(codec_of(policy), snapshot, snap._key(key))
    if body.get("engine") != ENGINE:
        raise snap._malformed(ValueError(f"a snapshot of engine {body.get('engine')!r}"))
    try:
        state = binascii.a2b_base64(body["state"], strict_mode=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise snap._malformed(exc) from exc
    after = snap.continued(policy, body, events, as_of)
    history, horizon = after.history, after.horizon
    reason = after.reason
    if reason is None:
        assert horizon is not None
        done = _resume_core(policy, state, history, after.applied, horizon, after.ats, max_span)
        if not isinstance(done, str):
            decision, new_state, applied = done
            info = ResumeInfo("incremental", applied - after.applied)
            return _keep(decision, policy, after, new_state, applied, horizon, info)
        reason = done
    n = bisect_right(after.ats, horizon) if horizon is not None else 0
    info = ResumeInfo("full", n, reason)
    out = _run_saved(policy, history, after.wanted, max_span)
    if out is None:  # the Python engine decides, and keeps its own state
        return snap._run(
            policy, history, after.wanted, after.inputs, after.ids, after.texts, info, max_span
        )
    decision, new_state, applied, horizon = out
    return _keep(decision, policy, after, new_state, applied, horizon, info)


def _keep(
    decision: Decision,
    policy: Program,
    after: Continued,
    state: bytes,
    applied: int,
    horizon: int | None,
    info: ResumeInfo,
) -> Decision:
    """The resumed decision, with its state for the next snapshot."""
    saved = _Saved(
        policy, after.history, applied, horizon, info, after.inputs, after.ids, after.texts, state
    )
    decision.__dict__[RESUMABLE] = saved
    return decision


# ---------------------------------------------------------------- the core's two calls


def _read(policy: Program, history: History) -> History:
    """The history ``native._decision`` reads: without its events where no metric reads them
    (as on the core's raw path), so that none is filed for the metrics' closes."""
    if native._raw_path(native._prepared(policy), policy.compiled):
        return History([], history.duplicates, history.ignored)
    return history


def _run_saved(
    policy: Program, history: History, as_of: int | None, max_span: int | None
) -> tuple[Decision, bytes, int, int | None] | None:
    """``native.run`` with the core's state: (decision, state, events applied, horizon), or
    None where the core does not decide this history (the Python engine then does)."""
    prepared = native._prepared(policy)
    core = prepared.core
    if core is None:
        return None
    applied, horizon = native.applied_events(policy.compiled, history, as_of, max_span)
    try:
        with gc_paused():
            rows, state = core.run_saved(
                list(map(itemgetter("id"), applied)),
                list(map(itemgetter("type"), applied)),
                list(map(itemgetter("at"), applied)),
                native.columns(core, applied),
                horizon,
                prepared.refs,
            )
            decision = native._decision(policy, _read(policy, history), horizon, rows, max_span)
    except (native._module_unsupported(), TypeError, OverflowError):
        return None
    except BaseException as exc:
        native._failed(exc)
        return None
    return decision, state, len(applied), horizon


def _resume_core(
    policy: Program,
    state: bytes,
    history: History,
    applied: int,
    horizon: int,
    ats: list[int],
    max_span: int | None,
) -> tuple[Decision, bytes, int] | str:
    """The core continues ``state`` with the events after the ``applied`` ones up to the
    horizon: (decision, its state, events applied), or why it did not."""
    prepared = native._prepared(policy)
    core = prepared.core
    if core is None:
        return prepared.reason or "the native core does not run this policy"
    compiled = policy.compiled
    todo = history.events[applied : bisect_right(ats, horizon)]
    if max_span is not None and history.events:
        check_span(history.events[0]["at"], max_span, compiled.timezone, todo, horizon)
    ids = list(map(itemgetter("id"), history.events[: applied + len(todo)]))
    try:
        with gc_paused():
            rows, new_state = core.resume(
                state,
                ids,
                list(map(itemgetter("type"), todo)),
                list(map(itemgetter("at"), todo)),
                native.columns(core, todo),
                horizon,
                prepared.refs,
            )
            decision = native._decision(policy, _read(policy, history), horizon, rows, max_span)
    except native._module_unsupported() as exc:
        return f"the native core does not continue this snapshot: {exc}"
    except (TypeError, OverflowError) as exc:
        return f"this history needs the Python engine: {exc}"
    except BaseException as exc:
        return native._failed(exc)
    return decision, new_state, applied + len(todo)
