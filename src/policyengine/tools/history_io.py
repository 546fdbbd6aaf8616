"""History files for the command line: JSON, JSON Lines, YAML and CSV -> lists of event mappings.

Every reader keeps where each event was written (``file:line:col``), so that a bad event is
reported at its place in the file as well as by id and field. Reading problems (unreadable
file, malformed text, a row that is not an event) are ``EventError`` problems too: nothing is
evaluated from a history that could not be read whole.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from policyengine.errors import Code, EventError, Location, Problem, ProblemSink
from policyengine.language.loader import load_source

if TYPE_CHECKING:
    from policyengine.policy import Policy

SUFFIXES: Final = (".json", ".jsonl", ".ndjson", ".yaml", ".yml", ".csv")
_GLOB = re.compile(r"[*?\[]")
_LIST_SPLIT = re.compile(r"[;|]")


@dataclass
class History:
    """Events read from one file, each with where it starts in the file."""

    file: str
    events: list[Any]
    where: list[Location] = field(default_factory=list)

    def locate(self, event_id: str | None) -> Location | None:
        """Where the event ``event_id`` (or ``#index`` for one without an id) was written."""
        if event_id is None:
            return None
        if event_id.startswith("#") and event_id[1:].isdigit():
            i = int(event_id[1:])
            return self.where[i] if i < len(self.where) else None
        for i, ev in enumerate(self.events):
            if isinstance(ev, dict) and str(ev.get("id")) == event_id and i < len(self.where):
                return self.where[i]
        return None

    def relocate(self, error: EventError) -> EventError:
        """The same problems, each at ``file:line:col`` of its event (id and field kept)."""
        out: list[Problem] = []
        for p in error.problems:
            loc = p.location or self.locate(p.event_id)
            if loc is None:
                loc = Location(self.file, 1, 1)
            what = ""
            if p.event_id is not None:
                what = f"event {p.event_id!r}" + (f" field {p.field!r}" if p.field else "") + ": "
            out.append(Problem(p.code, what + p.message, loc, p.hint, p.event_id, p.field))
        return EventError(out)


def expand(paths: list[str]) -> list[Path]:
    """History arguments -> files: a folder gives its history files (sorted), a glob its matches."""
    out: list[Path] = []
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and f.suffix in SUFFIXES))
        elif not p.exists() and _GLOB.search(arg):
            out.extend(Path(m) for m in sorted(glob.glob(arg)) if Path(m).is_file())
        else:
            out.append(p)
    return out


def read_history(path: str | Path, policy: Policy | None = None) -> list[dict[str, Any]]:
    """The events of one history file (the format is chosen by the file's suffix).

    ``policy`` tells a CSV reader which columns are numbers, booleans or lists.
    Raises ``EventError`` naming the file and line when the file cannot be read.
    """
    return read_located(path, policy).events


def read_located(path: str | Path, policy: Policy | None = None) -> History:
    p = Path(path)
    name = str(path)
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return _yaml(p, name)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise _error(
            Code.FILE_NOT_FOUND, f"no history file at {name}", Location(name, 1, 1)
        ) from None
    except OSError as exc:
        raise _error(
            Code.FILE_NOT_FOUND,
            f"cannot read the history file: {exc.strerror}",
            Location(name, 1, 1),
        ) from None
    except UnicodeDecodeError:
        raise _error(
            Code.MALFORMED_HISTORY, "the history file is not UTF-8 text", Location(name, 1, 1)
        ) from None
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl(text, name)
    if suffix == ".csv":
        return _csv(text, name, policy)
    return _json(text, name)


def _error(code: str, message: str, where: Location, hint: str | None = None) -> EventError:
    return EventError([Problem(code, message, where, hint)])


def _unwrap(data: Any, name: str, where: Location) -> list[Any]:
    if isinstance(data, dict) and isinstance(data.get("events"), list):
        return list(data["events"])
    if isinstance(data, list):
        return data
    raise _error(
        Code.MALFORMED_HISTORY,
        f"a history is a list of events or a mapping with `events:`, not a {type(data).__name__}",
        where,
        'write [{"id": ..., "type": ..., "at": ...}, ...]',
    )


def _json(text: str, name: str) -> History:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _error(
            Code.MALFORMED_HISTORY,
            f"malformed JSON: {exc.msg}",
            Location(name, exc.lineno, exc.colno),
        ) from None
    events = _unwrap(data, name, Location(name, 1, 1))
    return History(name, events, _json_positions(text, name, len(events)))


def _json_positions(text: str, name: str, count: int) -> list[Location]:
    """Where each top-level event object of a JSON history starts (a small bracket scanner)."""
    starts: list[Location] = []
    depth = 0
    target = None  # depth at which events sit: 1 for a list, 2 for {"events": [...]}
    in_str = esc = False
    line, col = 1, 0
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            if target is None and ch == "[":
                target = depth + 1
            elif depth == target:
                starts.append(Location(name, line, col))
            depth += 1
        elif ch in "]}":
            depth -= 1
    while len(starts) < count:
        starts.append(Location(name, 1, 1))
    return starts[:count]


def _jsonl(text: str, name: str) -> History:
    events: list[Any] = []
    where: list[Location] = []
    problems: list[Problem] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(
                    Code.MALFORMED_HISTORY,
                    f"malformed JSON line: {exc.msg}",
                    Location(name, n, exc.colno),
                )
            )
            continue
        where.append(Location(name, n, 1))
    if problems:
        raise EventError(problems)
    return History(name, events, where)


def _yaml(path: Path, name: str) -> History:
    sink = ProblemSink()
    source = load_source(path, sink, display=name)
    if sink.problems or source is None:
        raise EventError(
            [
                Problem(
                    Code.FILE_NOT_FOUND
                    if p.code == Code.FILE_NOT_FOUND
                    else Code.MALFORMED_HISTORY,
                    p.message.replace("policy file", "history file"),
                    p.location,
                    p.hint,
                )
                for p in sink.problems
            ]
            or [Problem(Code.MALFORMED_HISTORY, "the history file is empty", Location(name, 1, 1))]
        )
    data = source.data
    events = _unwrap(data, name, source.locate(()))
    prefix: tuple[str | int, ...] = ("events",) if isinstance(data, dict) else ()
    where = [source.locate((*prefix, i)) for i in range(len(events))]
    return History(name, events, where)


def _field_types(policy: Policy | None) -> dict[str, dict[str, str]]:
    if policy is None:
        return {}
    return {t: {c.name: c.type for c in checks} for t, checks in policy.compiled.events.items()}


def _csv(text: str, name: str, policy: Policy | None) -> History:
    types = _field_types(policy)
    reader = csv.reader(io.StringIO(text))
    rows = list(reader)
    if not rows:
        raise _error(
            Code.MALFORMED_HISTORY, "the CSV history is empty (no header row)", Location(name, 1, 1)
        )
    header = [h.strip() for h in rows[0]]
    events: list[Any] = []
    where: list[Location] = []
    problems: list[Problem] = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            problems.append(
                Problem(
                    Code.MALFORMED_HISTORY,
                    f"row has {len(row)} cells but the header names {len(header)} fields",
                    Location(name, n, 1),
                )
            )
            continue
        ev: dict[str, Any] = {}
        etype = row[header.index("type")].strip() if "type" in header else ""
        declared = types.get(etype, {})
        for col, (key, cell) in enumerate(zip(header, row, strict=False), start=1):
            if cell == "":
                continue  # empty cell: the field is absent
            kind = declared.get(key, "str")
            try:
                ev[key] = _cell(kind, cell)
            except ValueError as exc:
                eid = row[header.index("id")] if "id" in header else f"#{len(events)}"
                problems.append(
                    Problem(
                        Code.EVENT_BAD_FIELD,
                        f"event {eid!r} field {key!r}: {exc}",
                        Location(name, n, col),
                        event_id=eid,
                        field=key,
                    )
                )
        events.append(ev)
        where.append(Location(name, n, 1))
    if problems:
        raise EventError(problems)
    return History(name, events, where)


def _cell(kind: str, cell: str) -> Any:
    text = cell.strip()
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if kind == "bool":
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        raise ValueError(f"{text!r} is not true or false")
    if kind == "decimal":
        return text  # the history check reads "12.50" exactly, as a Decimal
    if kind.startswith("list["):
        items = [x.strip() for x in _LIST_SPLIT.split(text) if x.strip()]
        if kind == "list[int]":
            try:
                return [int(x) for x in items]
            except ValueError:
                raise ValueError(f"{text!r} is not a list of whole numbers") from None
        return items
    return cell
