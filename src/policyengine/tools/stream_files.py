"""``policyengine eval POLICY HISTORY --stream OUT``: a history file streamed group by group.

A JSON Lines history (``.jsonl``, ``.ndjson``) is read line by line, each line as strictly as
``history_io`` reads it (repeated keys, huge numbers, deep nesting refused at ``file:line``), so
the file is never held whole; any other format is read whole by ``history_io`` first, as
``eval`` reads it. The grouping and the output are ``backends.stream``'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from policyengine.backends.stream import Backend, Summary, evaluate_stream
from policyengine.errors import Code, EventError, Location, Problem
from policyengine.policy import Policy
from policyengine.runtime.events import NaiveTimes, localise, localise_instant
from policyengine.tools.history_io import _loads, read_history


def iter_history(path: str | Path, policy: Policy | None = None) -> Iterator[Any]:
    """The events of a history file, one at a time for JSON Lines (``\\n``-separated, blank
    lines skipped, a UTF-8 BOM allowed), else ``read_history``'s list."""
    name = str(path)
    p = Path(path)
    if p.suffix.lower() not in (".jsonl", ".ndjson"):
        yield from read_history(p, policy)
        return
    try:
        f = open(p, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise EventError(
            [
                Problem(
                    Code.FILE_NOT_FOUND,
                    f"cannot read the history file: {exc.strerror or exc}",
                    Location(name, 1, 1),
                )
            ]
        ) from None
    with f:
        n = 0
        try:
            for n, line in enumerate(f, start=1):
                text = line.rstrip("\n").removesuffix("\r")
                if text.strip():
                    yield _loads(text, name, n)
        except UnicodeDecodeError:
            raise EventError(
                [
                    Problem(
                        Code.MALFORMED_HISTORY,
                        f"the history file is not UTF-8 text (line {n + 1})",
                        Location(name, n + 1, 1),
                    )
                ]
            ) from None


def stream_file(
    policy: Policy,
    history: str | Path,
    out: str | Path,
    *,
    as_of: str | None = None,
    naive_times: NaiveTimes = "error",
    backend: Backend = "python",
    exclude: tuple[str, ...] = ("trace",),
) -> Summary:
    """Stream one history file into ``out`` (``.parquet``: Parquet; else JSON Lines); the
    decisions without their trace by default, as ``eval --format json`` writes them."""
    events: Iterator[Any] = iter_history(history, policy)
    if naive_times == "policy":
        compiled = policy.compiled
        events = (localise(compiled, [e])[0] for e in events)
        as_of = localise_instant(as_of, compiled.timezone)
    return evaluate_stream(policy, events, out, as_of=as_of, backend=backend, exclude=exclude)
