"""History files: JSON, JSON Lines, YAML, CSV and Excel (.xlsx) -> lists of event mappings.

Every reader keeps where each event was written (``file:line:col``), so that a bad event is
reported at its place in the file as well as by id and field. Reading problems (unreadable
file, malformed text, a row that is not an event) are ``EventError`` problems too: nothing is
evaluated from a history that could not be read whole.

Nothing is read loosely: the format is the suffix's (an unknown suffix is PE209, never a
guess); a JSON object or YAML mapping with a repeated key, or a CSV header naming a column
twice, is refused (PE210) instead of keeping the last value; YAML numbers are decimal only
(``0x1A``, ``012``, ``1:30``, ``1_000`` stay text); a CSV row has exactly the header's cells;
numbers of more than ``MAX_DIGITS`` digits, nesting deeper than ``MAX_DEPTH`` and CSV cells
longer than ``csv.field_size_limit()`` are refused (PE211) in time linear in the file; JSON
Lines are split at ``\n`` only (U+2028 and U+2029 are legal inside a JSON text).

Spreadsheets: a CSV file is UTF-8 (BOM or not) or else GB18030, Excel's GBK (``encoding``,
``notices``); an ``.xlsx`` (python-calamine) is one sheet (the first, ``sheet=`` or ``h.xlsx#S``)
under a header row, cells converted by the declared types, problems at their cell (``Cell``:
``h.xlsx:Sheet1!D7``); date-and-time cells are naive: read under ``naive_times="policy"`` only.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from policyengine.errors import Code, EventError, Location, Problem, ProblemSink, did_you_mean
from policyengine.language.loader import Source, load_source
from policyengine.runtime.events import (
    MAX_DIGITS,
    NaiveTimes,
    localise,
    naive_times_mode,
    show,
)

if TYPE_CHECKING:
    from policyengine.policy import Policy

SUFFIXES: Final = (".json", ".jsonl", ".ndjson", ".yaml", ".yml", ".csv", ".xlsx")
_GLOB = re.compile(r"[*?\[]")
_LIST_SPLIT = re.compile(r"[;|]")
MAX_DEPTH: Final = 64  # nesting of lists and objects in a JSON history (as for YAML)
_FORMATS: Final = (
    "one of " + " ".join(SUFFIXES) + ": JSON (.json), JSON Lines (.jsonl, .ndjson), "
    "YAML (.yaml, .yml), CSV (.csv) or an Excel workbook (.xlsx)"
)
EXCEL_HINT: Final = "pip install 'policyengine[excel]' (python-calamine reads .xlsx)"
_INT_CELL = re.compile(r"[-+]?[0-9]+")  # int() would also take "1_000" and "١٢"


@dataclass
class History:
    """Events read from one file, each with where it starts in the file (``where``; for JSON
    found only when asked, by scanning the text again: most histories are never located)."""

    file: str
    events: list[Any]
    _where: list[Location] | Callable[[], list[Location]] = field(default_factory=list)
    # per event, where each of its fields was written (a spreadsheet's cells); else empty
    cells: list[dict[str, Location]] = field(default_factory=list)
    encoding: str | None = None  # of a CSV file: "UTF-8", "UTF-8 with BOM" or "GB18030"
    notices: list[str] = field(default_factory=list)  # e.g. "read h.csv as GB18030"

    @property
    def where(self) -> list[Location]:
        if callable(self._where):
            self._where = self._where()
        return self._where

    def _index(self, event_id: str) -> int | None:
        if event_id.startswith("#") and event_id[1:].isdigit():
            return int(event_id[1:])
        for i, ev in enumerate(self.events):
            if isinstance(ev, dict) and str(ev.get("id")) == event_id:
                return i
        derived = _DERIVED.fullmatch(event_id)  # an id derived from the event's place
        return int(derived.group(1)) if derived else None

    def locate(self, event_id: str | None, field: str | None = None) -> Location | None:
        """Where the event ``event_id`` (or ``#index`` for one without an id) was written:
        the cell of its ``field`` when the file has cells (a spreadsheet), else the event."""
        if event_id is None:
            return None
        i = self._index(event_id)
        if i is None or i >= len(self.where):
            return None
        if field is not None and i < len(self.cells) and field in self.cells[i]:
            return self.cells[i][field]
        return self.where[i]

    def relocate(self, error: EventError) -> EventError:
        """The same problems, each at ``file:line:col`` of its event (id and field kept); in a
        spreadsheet at the cell of the field (``history.xlsx:Sheet1!D7``)."""
        out: list[Problem] = []
        for p in error.problems:
            if p.code == Code.EVENT_ID_REUSED and p.location is None:
                p = self._reused(p)
            loc = p.location or self.locate(p.event_id, p.field)
            if loc is None:
                loc = Location(self.file, 1, 1)
            what = ""
            if p.event_id is not None:
                what = f"event {p.event_id!r}" + (f" field {p.field!r}" if p.field else "") + ": "
            out.append(Problem(p.code, what + p.message, loc, p.hint, p.event_id, p.field))
        return EventError(out)


    def _reused(self, p: Problem) -> Problem:
        """PE212 names its two events by position (``#3 and #7 of the history``): here, by
        where they were written, located at the later one."""
        found = _REUSED_AT.search(p.message)
        if found is None:
            return p
        first, later = int(found.group(1)), int(found.group(2))
        if later >= len(self.where):
            return p
        a, b = self.where[first], self.where[later]
        message = p.message[: found.start()] + f"the one at {a} and the one at {b}"
        message += p.message[found.end() :]
        return Problem(p.code, message, b, p.hint, p.event_id, p.field)


_DERIVED = re.compile(r"auto-([0-9]+)-[0-9a-f]{10}")
_REUSED_AT = re.compile(r"#([0-9]+) and #([0-9]+) of the history \(counted from 0\)")


def column_letters(column: int) -> str:
    """A spreadsheet's name of the 1-based ``column``: 1 -> A, 26 -> Z, 27 -> AA."""
    out = ""
    while column > 0:
        column, rest = divmod(column - 1, 26)
        out = chr(ord("A") + rest) + out
    return out


_PLAIN_SHEET = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Cell(Location):
    """A cell of a sheet: ``line`` is its row, ``column`` its column (1-based), shown as a
    spreadsheet names it, ``history.xlsx:Sheet1!D7`` (``'My sheet'!D7`` when quoted)."""

    sheet: str = ""

    def __str__(self) -> str:
        sheet = self.sheet
        if not _PLAIN_SHEET.fullmatch(sheet):
            sheet = "'" + sheet.replace("'", "''") + "'"
        return f"{self.file}:{sheet}!{column_letters(self.column)}{self.line}"


def expand(paths: list[str]) -> list[Path]:
    """History arguments -> files: a folder gives its history files (sorted), a glob its matches."""
    out: list[Path] = []
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            out.extend(
                sorted(
                    f
                    for f in p.iterdir()
                    # "~$h.xlsx": the lock file Excel keeps beside a workbook it has open
                    if f.is_file() and f.suffix in SUFFIXES and not f.name.startswith("~$")
                )
            )
        elif not p.exists() and _GLOB.search(arg):
            out.extend(Path(m) for m in sorted(glob.glob(arg)) if Path(m).is_file())
        else:
            out.append(p)
    return out


def read_history(
    path: str | Path,
    policy: Policy | None = None,
    *,
    sheet: str | None = None,
    naive_times: NaiveTimes = "error",
    aliases: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The events of one history file (the format is chosen by the file's suffix: ``SUFFIXES``).

    ``policy`` tells the CSV and Excel readers which columns are numbers, booleans, dates or
    lists. ``sheet``: the sheet of an ``.xlsx`` workbook (default: the first; or write
    ``history.xlsx#Sheet2``). ``naive_times="policy"`` (which needs ``policy``) gives times
    without an offset (``2026/3/2 09:00``, a date-and-time cell) the offset of the policy's
    timezone, as ``policy.evaluate(..., naive_times="policy")`` would. ``aliases`` maps the
    names of a header's columns to field names (``{"客户": "customer"}``).
    Raises ``EventError`` naming the file and line (or cell) when the file cannot be read.
    """
    return read_located(path, policy, sheet=sheet, naive_times=naive_times, aliases=aliases).events


def read_located(
    path: str | Path,
    policy: Policy | None = None,
    *,
    sheet: str | None = None,
    naive_times: NaiveTimes = "error",
    aliases: Mapping[str, str] | None = None,
) -> History:
    """``read_history`` with where each event (and, in a workbook, each cell) was written:
    ``History.relocate`` puts the problems ``prepare`` finds at their place in the file."""
    mode = naive_times_mode(naive_times)
    name = str(path)
    p = Path(path)
    if "#" in name and not p.exists():  # history.xlsx#Sheet2
        base, _, fragment = name.rpartition("#")
        if Path(base).suffix.lower() == ".xlsx":
            if sheet is not None and sheet != fragment:
                raise _error(
                    Code.MALFORMED_HISTORY,
                    f"two sheets named for {base}: {fragment!r} (after #) and {sheet!r}",
                    Location(base, 1, 1),
                    "name the sheet once",
                )
            name, p, sheet = base, Path(base), fragment
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        hint = "rename the file after its format"
        if suffix in (".xls", ".xlsm", ".xlsb", ".ods", ".et"):
            hint = "save the workbook as .xlsx (Excel Workbook) or .csv"
        raise _error(
            Code.UNKNOWN_HISTORY_FORMAT,
            f"cannot tell the format of {name}: a history file is {_FORMATS}",
            Location(name, 1, 1),
            hint,
        )
    if sheet is not None and suffix != ".xlsx":
        raise _error(
            Code.MALFORMED_HISTORY,
            f"a sheet ({sheet!r}) is named for {name}, which is not an .xlsx workbook",
            Location(name, 1, 1),
            "name a sheet for .xlsx histories only",
        )
    if mode == "policy" and policy is None:
        raise EventError(
            [
                Problem(
                    Code.MALFORMED_HISTORY,
                    'naive_times="policy" needs the policy: its timezone gives the offset',
                    Location(name, 1, 1),
                    "pass policy=...",
                    event_id="#history",
                    field="naive_times",
                )
            ]
        )
    if aliases is not None:
        _check_aliases(aliases, name)
    if p.exists() and not p.is_file():
        what = "a folder" if p.is_dir() else "not a regular file"
        raise _error(
            Code.FILE_NOT_FOUND,
            f"the history {name} is {what}",
            Location(name, 1, 1),
            "name a history file (folders are read file by file on the command line)",
        )
    history = _read(p, name, suffix, policy, sheet, aliases)
    if mode == "policy" and policy is not None:
        history.events = localise(policy.compiled, history.events)
    return history


def _read(
    p: Path,
    name: str,
    suffix: str,
    policy: Policy | None,
    sheet: str | None,
    aliases: Mapping[str, str] | None,
) -> History:
    if suffix in (".yaml", ".yml"):
        return _yaml(p, name)
    if suffix == ".xlsx":
        return _xlsx(p, name, sheet, policy, aliases)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise _error(
            Code.FILE_NOT_FOUND, f"no history file at {name}", Location(name, 1, 1)
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _error(
            Code.FILE_NOT_FOUND, f"cannot read the history file: {reason}", Location(name, 1, 1)
        ) from None
    encoding = "UTF-8 with BOM" if data.startswith(b"\xef\xbb\xbf") else "UTF-8"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if suffix != ".csv":
            raise _error(
                Code.MALFORMED_HISTORY,
                f"the history file is not UTF-8 text (byte {exc.start} cannot be read)",
                Location(name, 1, 1),
            ) from None
        try:  # Excel on Chinese Windows saves CSV in the ANSI code page: GBK, within GB18030
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise _error(
                Code.MALFORMED_HISTORY,
                f"the CSV history is neither UTF-8 nor GB18030 (GBK) text (byte {exc.start} "
                "cannot be read as UTF-8)",
                Location(name, 1, 1),
                "save it as CSV UTF-8",
            ) from None
        encoding = "GB18030"
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as read_text
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl(text, name)
    if suffix == ".csv":
        history = _csv(text, name, policy, aliases)
        history.encoding = encoding
        if encoding == "GB18030":
            history.notices.append(f"read {name} as GB18030")
        return history
    return _json(text, name)


def _check_aliases(aliases: Any, name: str) -> None:
    if not isinstance(aliases, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in aliases.items()
    ):
        raise _error(
            Code.MALFORMED_HISTORY,
            f"aliases={show(aliases)} is not a mapping of column names to field names",
            Location(name, 1, 1),
            'pass e.g. {"客户": "customer", "时间": "at"}',
        )


def _header(cells: list[str], aliases: Mapping[str, str] | None) -> list[str]:
    """A header row's field names: each cell stripped, then renamed by ``aliases``."""
    keys = [h.strip() for h in cells]
    if not aliases:
        return keys
    return [aliases.get(k, k) for k in keys]


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


class _Refused(Exception):
    """Raised inside json.loads by a hook: the scanner then finds where."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Refused("duplicate")
    return out


def _int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_DIGITS:
        raise _Refused("digits")
    return int(text)


def _loads(text: str, name: str, line: int = 1) -> Any:
    """One JSON text, strictly: a repeated key, a number of more than ``MAX_DIGITS`` digits
    or nesting deeper than ``MAX_DEPTH`` is refused at its place (``line``: of the text's
    first line in the file)."""
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_int=_int)
    except json.JSONDecodeError as exc:
        _scan(text, name, line)  # a deep document is refused for its depth first
        raise _error(
            Code.MALFORMED_HISTORY,
            f"malformed JSON: {exc.msg}",
            Location(name, line + exc.lineno - 1, exc.colno),
        ) from None
    except (_Refused, RecursionError):
        _scan(text, name, line, keys=True)
        raise _error(  # pragma: no cover - the scanner finds what the parser refused
            Code.HISTORY_TOO_LARGE, "the JSON history is too deeply nested", Location(name, line, 1)
        ) from None
    if _deeper(data):
        _scan(text, name, line)  # raises, at the first bracket too deep
    return data


def _deeper(data: Any) -> bool:
    """Whether parsed JSON nests deeper than ``MAX_DEPTH`` (iterative; scalars cost nothing)."""
    if not isinstance(data, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        inner = value.values() if isinstance(value, dict) else value
        stack.extend((v, depth + 1) for v in inner if isinstance(v, dict | list))
    return False


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{},]|[0-9]+')  # strings, brackets, digit runs


def _scan(text: str, name: str, first_line: int = 1, *, keys: bool = False) -> list[Location]:
    """A small scanner over a JSON text: where each object at nesting level 2 starts (an
    event of a list, or of ``{"events": [...]}``). Raises the located EventError for nesting
    deeper than ``MAX_DEPTH``, a number of more than ``MAX_DIGITS`` digits and (``keys``) a
    repeated key, whichever comes first. Linear in the text (a regex walks its tokens)."""
    starts: list[Location] = []
    depth = 0
    target = None  # depth at which events sit: 1 for a list, 2 for {"events": [...]}
    # per open container: None for a list, else [keys seen, expecting a key]
    stack: list[list[Any] | None] = []
    line, line_start, scanned = first_line, 0, 0  # newlines counted up to ``scanned``

    def at(pos: int) -> Location:
        nonlocal line, line_start, scanned
        found = text.count("\n", scanned, pos)
        if found:
            line += found
            line_start = text.rfind("\n", scanned, pos) + 1
        scanned = pos
        return Location(name, line, pos - line_start + 1)

    for m in _TOKEN.finditer(text):
        tok = m.group()
        c = tok[0]
        if c == '"':
            top = stack[-1] if keys and stack else None
            if top is not None and top[1]:
                try:
                    key = json.loads(tok)
                except ValueError:
                    key = tok
                if key in top[0]:
                    raise _error(
                        Code.HISTORY_DUPLICATE_KEY,
                        f"duplicate key {show(key)} in one object (JSON would keep only the last)",
                        at(m.start()),
                        "give each field once per event",
                    )
                top[0].add(key)
                top[1] = False
        elif c == "[" or c == "{":
            if target is None and c == "[":
                target = depth + 1
            elif depth == target:
                starts.append(at(m.start()))
            depth += 1
            if depth > MAX_DEPTH:
                raise _error(
                    Code.HISTORY_TOO_LARGE,
                    f"the JSON nests lists and objects deeper than {MAX_DEPTH} levels",
                    at(m.start()),
                    "events are flat mappings of text, numbers and lists",
                )
            stack.append([set(), True] if c == "{" else None)
        elif c == "]" or c == "}":
            depth -= 1
            if stack:
                stack.pop()
        elif c == ",":
            if stack and stack[-1] is not None:
                stack[-1][1] = True
        elif len(tok) > MAX_DIGITS:
            raise _error(
                Code.HISTORY_TOO_LARGE,
                f"a number of more than {MAX_DIGITS} digits",
                at(m.start()),
                "send long identifiers as text, in quotes",
            )
    return starts


def _json(text: str, name: str) -> History:
    events = _unwrap(_loads(text, name), name, Location(name, 1, 1))

    def where() -> list[Location]:
        starts = _scan(text, name)
        while len(starts) < len(events):
            starts.append(Location(name, 1, 1))
        return starts[: len(events)]

    return History(name, events, where)


def _jsonl(text: str, name: str) -> History:
    events: list[Any] = []
    where: list[Location] = []
    problems: list[Problem] = []
    # "\n" only: str.splitlines() also splits at U+2028, U+2029, \x0b, \x1c... which a JSON
    # text may carry raw inside its strings
    for n, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            events.append(_loads(line, name, n))
        except EventError as exc:
            problems.extend(
                Problem(
                    p.code,
                    p.message.replace("malformed JSON:", "malformed JSON line:"),
                    p.location,
                    p.hint,
                )
                for p in exc.problems
            )
            continue
        where.append(Location(name, n, 1))
    if problems:
        raise EventError(problems)
    return History(name, events, where)


# the loader's codes -> a history's
_YAML_CODES: Final[dict[str, str]] = {
    Code.FILE_NOT_FOUND: Code.FILE_NOT_FOUND,
    Code.DUPLICATE_KEY: Code.HISTORY_DUPLICATE_KEY,
    Code.ALIAS_TOO_LARGE: Code.HISTORY_TOO_LARGE,
}
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9]+")
_NUMBER_TOKEN = re.compile(r"[-+]?[0-9.][0-9A-Za-z_.:+-]*")


def _yaml(path: Path, name: str) -> History:
    sink = ProblemSink()
    source = load_source(path, sink, display=name)
    if sink.problems or source is None:
        raise EventError(
            [
                Problem(
                    _YAML_CODES.get(p.code, Code.MALFORMED_HISTORY),
                    p.message.replace("policy file", "history file").replace(
                        "a policy", "a history"
                    ),
                    p.location,
                    p.hint.replace("a policy", "a history") if p.hint else None,
                )
                for p in sink.problems
            ]
            or [Problem(Code.MALFORMED_HISTORY, "the history file is empty", Location(name, 1, 1))]
        )
    data = source.data
    events = _unwrap(data, name, source.locate(()))
    prefix: tuple[str | int, ...] = ("events",) if isinstance(data, dict) else ()
    where = [source.locate((*prefix, i)) for i in range(len(events))]
    _as_written(path, events, prefix, source)
    return History(name, events, where)


def _as_written(
    path: Path, events: list[Any], prefix: tuple[str | int, ...], source: Source
) -> None:
    """Numbers of an event that were not written in decimal (``0x1A``, ``0o17``, ``1_000``)
    are put back as the text they were written as: an id or a field is never misread as a
    number YAML 1.1 reads in another base (the loader already keeps ``012`` and ``1:30`` as
    text). The written text is found at the value's position in the file."""
    lines: list[str] | None = None
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            continue
        for key, value in event.items():
            items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
            for j, item in items:
                if isinstance(item, bool) or not isinstance(item, int | float):
                    continue
                at = (*prefix, i, key) if j is None else (*prefix, i, key, j)
                loc = source.values.get(at)
                if loc is None:
                    continue
                if lines is None:
                    lines = path.read_text(encoding="utf-8").split("\n")
                if not 0 < loc.line <= len(lines):
                    continue
                token = _NUMBER_TOKEN.match(lines[loc.line - 1], loc.column - 1)
                if token is None or _DECIMAL.fullmatch(token.group()):
                    continue
                if j is None:
                    event[key] = token.group()
                else:
                    value[j] = token.group()


def _field_types(policy: Policy | None) -> dict[str, dict[str, str]]:
    if policy is None:
        return {}
    return {t: {c.name: c.type for c in checks} for t, checks in policy.compiled.events.items()}


def _rows(text: str, name: str) -> list[tuple[int, list[str]]]:
    """The CSV rows, each with the line it starts on; a located EventError for text the csv
    module refuses (a cell over its field size limit, a NUL character, a stray quote)."""
    reader = csv.reader(io.StringIO(text))
    rows: list[tuple[int, list[str]]] = []
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:
            line = reader.line_num or 1
            limit = csv.field_size_limit()
            if "field larger than field limit" in str(exc):
                raise _error(
                    Code.HISTORY_TOO_LARGE,
                    f"a CSV cell is longer than {limit} characters",
                    Location(name, max(start, 1), 1),
                    "events are short: check the quoting (an unclosed quote swallows the rest)",
                ) from None
            raise _error(
                Code.MALFORMED_HISTORY, f"malformed CSV: {exc}", Location(name, line, 1)
            ) from None
        rows.append((start, row))
        start = reader.line_num + 1


def _csv(
    text: str, name: str, policy: Policy | None, aliases: Mapping[str, str] | None = None
) -> History:
    types = _field_types(policy)
    rows = _rows(text, name)
    if not rows:
        raise _error(
            Code.MALFORMED_HISTORY, "the CSV history is empty (no header row)", Location(name, 1, 1)
        )
    header = _header(rows[0][1], aliases)
    events: list[Any] = []
    where: list[Location] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for col, key in enumerate(header, start=1):
        if key in seen:
            problems.append(
                Problem(
                    Code.HISTORY_DUPLICATE_KEY,
                    f"the header names the column {show(key)} twice (columns {seen[key]} and "
                    f"{col})",
                    Location(name, rows[0][0], col),
                    "give each field one column",
                )
            )
        seen.setdefault(key, col)
    if problems:
        raise EventError(problems)
    for n, row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(
                Problem(
                    Code.MALFORMED_HISTORY,
                    f"row has {len(row)} cells but the header names {len(header)} fields",
                    Location(name, n, min(len(row), len(header)) + 1),
                    "give every row one cell per header column (an empty cell for no value)",
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
                code = Code.HISTORY_TOO_LARGE if "digits" in str(exc) else Code.EVENT_BAD_FIELD
                problems.append(
                    Problem(
                        code,
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
        return _int_cell(text, text)
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
            return [_int_cell(x, text) for x in items]
        return items
    return cell


def _int_cell(text: str, cell: str) -> int:
    """A whole number written in decimal digits (``int()`` also reads ``1_000`` and ``١٢``)."""
    if not _INT_CELL.fullmatch(text):
        raise ValueError(f"{show(cell)} is not a whole number")
    if len(text.lstrip("+-")) > MAX_DIGITS:
        raise ValueError(f"a number of more than {MAX_DIGITS} digits")
    return int(text)


# ---------------------------------------------------------------- Excel workbooks (.xlsx)

_Value = int | float | str | bool | time | date | datetime | timedelta


def _workbook_rows(path: Path, name: str, sheet: str | None) -> tuple[str, list[list[_Value]]]:
    """The sheet's name and its rows, from the top left cell A1 (row n of the sheet is
    ``rows[n - 1]``); a located EventError for a file calamine cannot read."""
    try:
        from python_calamine import CalamineError, CalamineWorkbook
    except ImportError:  # pragma: no cover - the excel extra is installed with dev
        raise _error(
            Code.MALFORMED_HISTORY,
            "reading an .xlsx history needs python-calamine, which is not installed",
            Location(name, 1, 1),
            EXCEL_HINT,
        ) from None
    if not path.exists():
        raise _error(Code.FILE_NOT_FOUND, f"no history file at {name}", Location(name, 1, 1))
    try:
        book = CalamineWorkbook.from_path(str(path))
    except (CalamineError, OSError, ValueError) as exc:
        raise _error(
            Code.MALFORMED_HISTORY,
            f"the history file is not an Excel workbook calamine can read ({exc})",
            Location(name, 1, 1),
            "save it from Excel as .xlsx (Excel Workbook)",
        ) from None
    names = list(book.sheet_names)
    if not names:
        raise _error(Code.MALFORMED_HISTORY, "the workbook has no sheet", Location(name, 1, 1))
    chosen = names[0] if sheet is None else sheet
    if chosen not in names:
        raise _error(
            Code.MALFORMED_HISTORY,
            f"the workbook has no sheet {chosen!r}; its sheets: {', '.join(map(repr, names))}",
            Location(name, 1, 1),
            did_you_mean(chosen, names) or "name one of its sheets",
        )
    try:
        rows = book.get_sheet_by_name(chosen).to_python(skip_empty_area=False)
    except (CalamineError, OSError, ValueError) as exc:
        raise _error(
            Code.MALFORMED_HISTORY,
            f"the sheet {chosen!r} cannot be read ({exc})",
            Location(name, 1, 1),
        ) from None
    finally:
        book.close()
    return chosen, rows


def _blank(value: _Value) -> bool:
    return isinstance(value, str) and not value.strip()


def _xlsx(
    path: Path,
    name: str,
    sheet: str | None,
    policy: Policy | None,
    aliases: Mapping[str, str] | None,
) -> History:
    """One event a row under a header row (the first row that is not empty); empty cells are
    absent fields, a row of empty cells is skipped."""
    chosen, rows = _workbook_rows(path, name, sheet)

    def cell(row: int, col: int) -> Cell:
        return Cell(name, row, col, chosen)

    top = next((i for i, r in enumerate(rows) if not all(map(_blank, r))), None)
    if top is None:
        raise _error(
            Code.MALFORMED_HISTORY,
            f"the sheet {chosen!r} is empty (no header row)",
            cell(1, 1),
            "put the field names (id, type, at, ...) in the first row",
        )
    problems: list[Problem] = []
    texts: list[str] = []
    for col, h in enumerate(rows[top], start=1):
        if isinstance(h, str):
            texts.append(h)
        else:
            texts.append("")
            problems.append(
                Problem(
                    Code.MALFORMED_HISTORY,
                    f"a header cell holds {show(h)}, not the name of a field",
                    cell(top + 1, col),
                    "write the field names as text in the header row",
                )
            )
    header = _header(texts, aliases)
    seen: dict[str, int] = {}
    for col, key in enumerate(header, start=1):
        if key and key in seen:
            problems.append(
                Problem(
                    Code.HISTORY_DUPLICATE_KEY,
                    f"the header names the column {show(key)} twice (columns "
                    f"{column_letters(seen[key])} and {column_letters(col)})",
                    cell(top + 1, col),
                    "give each field one column",
                )
            )
        seen.setdefault(key, col)
    if problems:
        raise EventError(problems)
    types = _field_types(policy)
    limit = csv.field_size_limit()
    events: list[Any] = []
    where: list[Location] = []
    cells: list[dict[str, Location]] = []
    type_col = seen.get("type")
    id_col = seen.get("id")
    for n, row in enumerate(rows[top + 1 :], start=top + 2):
        if all(map(_blank, row)):
            continue
        etype = row[type_col - 1] if type_col is not None and type_col <= len(row) else ""
        declared = types.get(etype.strip(), {}) if isinstance(etype, str) else {}
        ev: dict[str, Any] = {}
        at: dict[str, Location] = {}
        for col, value in enumerate(row, start=1):
            if _blank(value):
                continue  # an empty cell: the field is absent
            key = header[col - 1] if col <= len(header) else ""
            if not key:
                problems.append(
                    Problem(
                        Code.MALFORMED_HISTORY,
                        f"a value ({show(value)}) in a column without a field name",
                        cell(n, col),
                        "name the column in the header row, or empty it",
                    )
                )
                continue
            at[key] = cell(n, col)
            kind = "time" if key == "at" else declared.get(key, "str")
            try:
                if isinstance(value, str) and len(value) > limit:
                    raise ValueError(f"a cell of more than {limit} characters")
                ev[key] = _xlsx_cell(kind, value)
            except ValueError as exc:
                eid = f"#{len(events)}"
                if id_col is not None and id_col <= len(row) and not _blank(row[id_col - 1]):
                    eid = _text(row[id_col - 1])
                code = (
                    Code.HISTORY_TOO_LARGE
                    if "digits" in str(exc) or "characters" in str(exc)
                    else Code.EVENT_BAD_FIELD
                )
                problems.append(
                    Problem(
                        code,
                        f"event {eid!r} field {key!r}: {exc}",
                        cell(n, col),
                        event_id=eid,
                        field=key,
                    )
                )
        events.append(ev)
        where.append(cell(n, 1))
        cells.append(at)
    if problems:
        raise EventError(problems)
    return History(name, events, where, cells)


def _text(value: _Value) -> str:
    """A cell as text: a whole number without ``.0`` (ids, codes), a fraction as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)  # str, int; a float: its shortest repr, 0.1 -> "0.1"


def _xlsx_cell(kind: str, value: _Value) -> Any:
    """A cell as the value of a field of type ``kind``. Text is read as a CSV cell is; a
    number is whole (an int) or a decimal kept as its shortest text, so ``12.5`` stays exact;
    a date-and-time is ISO 8601 text without an offset (``prepare`` refuses it unless
    naive_times="policy")."""
    if isinstance(value, str):
        return value if kind == "str" else _cell(kind, value)
    if isinstance(value, bool):
        if kind == "bool":
            return value
        raise ValueError(f"a TRUE/FALSE cell, but the field is {kind}")
    if isinstance(value, int | float):
        whole = isinstance(value, int) or value.is_integer()
        if kind in ("time", "date"):
            what = "date and time" if kind == "time" else "date"
            raise ValueError(
                f"{_text(value)} is a number, not a {what}: format the cell as a {what}"
            )
        if kind in ("int", "list[int]"):
            if not whole:
                raise ValueError(f"{_text(value)} is not a whole number")
            return int(value) if kind == "int" else [int(value)]
        if kind == "decimal":
            return int(value) if whole else _text(value)
        if kind == "bool":
            raise ValueError(f"{_text(value)} is not true or false")
        return [_text(value)] if kind.startswith("list[") else _text(value)
    if isinstance(value, datetime):
        if kind == "time":  # naive: a local time, read only under naive_times="policy"
            return value.isoformat()
        if kind == "date":
            if value.time() != time(0):
                raise ValueError(f"{_text(value)} is a date and time, the field is a date")
            return value.date().isoformat()
        if kind == "str":
            return _text(value)
        raise ValueError(f"{_text(value)} is a date and time, the field is {kind}")
    if isinstance(value, date):
        if kind in ("date", "str"):
            return value.isoformat()
        if kind == "time":
            return value.isoformat()  # a day alone: prepare says it is not a time of day
        raise ValueError(f"{_text(value)} is a date, the field is {kind}")
    if kind == "str":  # a time of day or a duration
        return _text(value)
    raise ValueError(f"{_text(value)} is a time or a duration, the field is {kind}")
