"""History input: plain mappings -> checked, ordered events, or one EventError with all problems.

Nothing is evaluated until the whole history is valid ("nothing half-applied"). Events are
ordered by timestamp, ties keeping their input order; an identical repeat of an event is
kept once and reported, a different event reusing an id is an error (PE212); an undeclared
type is an error unless the policy says ``unknown_events: ignore``.
"""

from __future__ import annotations

import hashlib
import json
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Generic, Literal, TypeVar, get_args

from policyengine.errors import Code, EventError, Problem, did_you_mean
from policyengine.language.compiler import CompiledPolicy, FieldCheck
from policyengine.times import RANGE_TEXT, impossible_time, in_range, instant_us, zone

Event = dict[str, Any]  # fields plus "id", "type" and "at" (epoch microseconds)


@dataclass
class History:
    events: list[Event]
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (id, detail)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # id -> original timestamp text


# ---------------------------------------------------------------- identity and repeats
# The one definition of the id an input event gets and of how a repeated id is judged: used
# by ``prepare`` and by every backend that reads the raw input itself (the shards' partition
# and the Dask reader, which drop repeats before sharding; resume, which judges the new
# events against the stored ones), so that all of them report what ``prepare`` reports.

REPEATED: Final = "repeated event ignored"
# the notice of a reused id before PE212 made it an error: snapshots made then may carry it
REUSED: Final = "a different event reuses this id; the later one was ignored"
REUSED_HINT: Final = "give each event its own id, or drop the repeat"

_T = TypeVar("_T")


# ---------------------------------------------------------------- hostile values
# An event comes from outside: any value may be huge, deep, cyclic or not text. What prepare
# reads of it, shows of it in a message or digests of it must cost time and memory linear in
# the event and never fail.

MAX_DIGITS: Final = 4300  # Python's default int -> text limit; no event needs more
_MAX_BITS: Final = int(MAX_DIGITS * 3.3219280948873626)  # log2(10)
_PLAIN_DEPTH: Final = 64  # deeper (or cyclic) content is digested by _canonical, not json
_PLAIN_NODES: Final = 100_000
_DIGEST_NODES: Final = 1_000_000  # beyond: the rest of the content is not digested
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 80
_SHOW.maxlevel = 3


def too_long(value: Any) -> bool:
    """Whether ``value`` is a whole number of more than ``MAX_DIGITS`` digits (roughly)."""
    return type(value) is int and value.bit_length() > _MAX_BITS


def not_text(value: str) -> bool:
    """Whether ``value`` holds a lone surrogate: not Unicode text, and no UTF-8 can carry it."""
    return not value.isascii() and _SURROGATE.search(value) is not None


def show(value: Any) -> str:
    """A short repr for messages: bounded in length and depth, and never failing."""
    if isinstance(value, int) and not isinstance(value, bool) and too_long(value):
        return f"<a whole number of about {int(value.bit_length() / 3.3219280948873626)} digits>"
    try:
        return _SHOW.repr(value)
    except Exception:
        return f"<a {type(value).__name__}>"


def _plain(raw: Mapping[str, Any]) -> bool:
    """Whether ``json.dumps(sort_keys=True)`` can take the content: text keys, ints json can
    write, bounded depth and size (a DAG of shared lists would expand exponentially)."""
    stack: list[tuple[Any, int]] = [(raw, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > _PLAIN_NODES or depth > _PLAIN_DEPTH:
            return False
        if isinstance(value, Mapping):
            for k, v in value.items():
                if type(k) is not str:
                    return False
                stack.append((v, depth + 1))
        elif isinstance(value, list | tuple):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, int) and too_long(value):
            return False
    return True


def _canonical(raw: Mapping[str, Any]) -> bytes:
    """A deterministic encoding of any content (iterative; keys of any type, ordered by their
    own encoding; cycles cut; at most ``_DIGEST_NODES`` values)."""

    def atom(value: Any) -> str:
        if isinstance(value, bool) or value is None:
            return repr(value)
        if isinstance(value, int):
            return f"i{value:x}"  # hex has no digit limit
        if isinstance(value, str):
            return "s" + json.dumps(value)
        try:
            return "o" + json.dumps(str(value))
        except Exception:
            return f"<{type(value).__name__}>"

    def encode(value: Any, path: frozenset[int], budget: list[int]) -> str:
        out: list[str] = []
        stack: list[tuple[Any, frozenset[int]] | str] = [(value, path)]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                out.append(item)
                continue
            v, seen = item
            budget[0] -= 1
            if budget[0] < 0:
                out.append("...")
                continue
            if isinstance(v, Mapping | list | tuple):
                if id(v) in seen:
                    out.append("<cycle>")
                    continue
                inner = seen | {id(v)}
                if isinstance(v, Mapping):
                    pairs = sorted(
                        ((encode(k, inner, budget), x) for k, x in v.items()), key=lambda p: p[0]
                    )
                    stack.append("}")
                    for k, x in reversed(pairs):
                        stack.extend((",", (x, inner), k + ":"))
                    stack.append("{")
                else:
                    stack.append("]")
                    for x in reversed(v):
                        stack.extend((",", (x, inner)))
                    stack.append("[")
            else:
                out.append(atom(v))
        return "".join(out)

    return encode(raw, frozenset(), [_DIGEST_NODES]).encode("utf-8", "surrogatepass")


def content_digest(raw: Mapping[str, Any]) -> str:
    """SHA-1 (hex) of an event's content: its JSON with sorted keys, other values as text.
    Equal events, equal digests. Content JSON cannot write (keys that are not text, numbers of
    more than ``MAX_DIGITS`` digits, deep or cyclic nesting) is digested by a canonical
    encoding of its own instead; text is digested as UTF-8, lone surrogates kept."""
    if _plain(raw):
        try:
            text = json.dumps(dict(raw), sort_keys=True, default=str)
        except (TypeError, ValueError, RecursionError):  # a hostile value's __str__
            data = _canonical(raw)
        else:
            data = text.encode("utf-8", "surrogatepass")
    else:
        data = _canonical(raw)
    return hashlib.sha1(data).hexdigest()


def derived_id(raw: Mapping[str, Any], index: int) -> str:
    """The id of an event sent without one: its place in the whole input and its content."""
    return f"auto-{index}-{content_digest(raw)[:10]}"


def event_id(raw: Any, index: int) -> str | None:
    """The id of the input event at ``index`` (0-based, in the whole input): its ``id`` as
    text, or ``derived_id`` when it has none. None when ``prepare`` refuses the event: not a
    mapping (PE207), or an id that is neither non-empty text nor a whole number (PE203)."""
    if type(raw) is not dict and not isinstance(raw, Mapping):
        return None
    raw_id = raw.get("id")
    if type(raw_id) is str and raw_id and not not_text(raw_id):
        return raw_id
    if raw_id is None:
        return derived_id(raw, index)
    if not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or raw_id == "":
        return None
    if too_long(raw_id) or (isinstance(raw_id, str) and not_text(raw_id)):
        return None  # prepare says why (PE211, PE203)
    return str(raw_id)


def ignored_type(etype: str) -> str:
    """The notice of an event of an undeclared type under ``unknown_events: ignore``."""
    return f"type {etype!r} is not declared by the policy"


def same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two input events are the same event (a repeat, not a reuse of its id)."""
    try:
        return dict(a) == dict(b)
    except RecursionError:  # deep content: compared by digest
        return content_digest(a) == content_digest(b)


class Repeats(Generic[_T]):
    """Repeated ids, judged as ``prepare`` judges them. The first event of an id is kept; each
    later one is to be dropped: the same event again with a ``REPEATED`` notice in
    ``duplicates`` (in input order); a different event reusing the id is recorded in
    ``reused`` as (id, first, later), which ``prepare`` refuses (PE212) and every other reader
    hands on to ``prepare`` so that the error is the same on every path.

    What is remembered of the first event of an id is the caller's choice (the event, its
    input index, its digest), with ``same(first, later)`` to compare two of them. ``before``,
    if given, finds the first event of an id in an earlier part of the input that is not
    passed through ``repeated`` (the events a snapshot stored), or None.
    """

    __slots__ = ("before", "duplicates", "first", "reused", "same")

    def __init__(
        self,
        same: Callable[[_T, _T], bool],
        before: Callable[[str], _T | None] | None = None,
    ) -> None:
        self.same = same
        self.before = before
        self.first: dict[str, _T] = {}
        self.duplicates: list[tuple[str, str]] = []  # (id, REPEATED)
        self.reused: list[tuple[str, _T, _T]] = []  # (id, first, later): different events

    def repeated(self, eid: str, item: _T) -> bool:
        """Whether the event ``item`` repeats an id met before: then its notice (or, for a
        different event, its entry in ``reused``) is recorded and the caller drops it.
        Otherwise it is the first of its id, and remembered."""
        earlier = self.first.get(eid)
        if earlier is None:
            if self.before is not None:
                earlier = self.before(eid)
            if earlier is None:
                self.first[eid] = item
                return False
            self.first[eid] = earlier
        if self.same(earlier, item):
            self.duplicates.append((eid, REPEATED))
        else:
            self.reused.append((eid, earlier, item))
        return True


def reused_problem(eid: str, first: int, later: int) -> Problem:
    """PE212 for the input events at ``first`` and ``later`` (0-based), located at the later
    one's id. The positions are written ``#N`` so that a reader of a file can name its lines
    instead (``tools.history_io``)."""
    return Problem(
        Code.EVENT_ID_REUSED,
        f"two different events have the id {show(eid)}: #{first} and #{later} of the history "
        "(counted from 0); which one counts would change the decision",
        hint=REUSED_HINT + " (an identical repeat is dropped with a notice)",
        event_id=eid,
        field="id",
    )


def got(value: Any) -> str:
    """What a wrong value is, in words (for "must be ...; got ..."): a user who wrote a number
    where text belongs sees which value and which kind it was."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (true/false)"
    if isinstance(value, int | float | Decimal):
        return f"the number {show(value)}"
    if isinstance(value, str):
        return "empty text" if not value.strip() else f"the text {show(value)}"
    if isinstance(value, Mapping):
        return f"a mapping {show(value)}"
    if isinstance(value, list | tuple):
        return f"a list {show(value)}"
    return f"a {type(value).__name__}"


def _as_text(value: Any) -> str:
    """``got`` with the fix for a value that is not text: a number or true/false written
    where text belongs (a customer number 10001) is quoted ("10001")."""
    said = got(value)
    if isinstance(value, bool):
        return f"{said}; write it as text in quotes"
    if isinstance(value, int | float | Decimal) and not too_long(value):
        return f"{said}; write it as text: {json.dumps(str(value))}"
    return said


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_field(check: FieldCheck, value: Any) -> str | None:
    """A message if ``value`` does not fit the declared field, else None."""
    t = check.type
    if t == "str":
        if not isinstance(value, str) or not value:
            return "must be non-empty text; got " + _as_text(value)
        if not_text(value):
            return _SURROGATE_TEXT
    elif t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number; got " + got(value)
    elif t == "bool":
        if not isinstance(value, bool):
            return "must be true or false; got " + got(value)
    elif t == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | str | Decimal | float):
            return "must be a number; got " + got(value)
        if isinstance(value, str) and len(value) > MAX_DIGITS:
            return f"must be a number of at most {MAX_DIGITS} characters"
        number = _normalise(check, value)
        if not isinstance(number, Decimal) or not number.is_finite():
            return 'must be a finite number, like 12.50 or "12.50"'
    elif t == "time":
        us = instant_us(value)
        impossible = impossible_time(value) if us is None else None
        if impossible is not None:
            return f"{show(value)} names no instant: {impossible}"
        if us is None:
            return "must be an ISO 8601 timestamp with a UTC offset; got " + got(value)
        if not in_range(us):
            return f"must be an instant in the supported range {RANGE_TEXT}"
    elif t == "date" and not _is_date(value):
        impossible = impossible_time(value)
        if impossible is not None:
            return f"{show(value)} is no calendar date: {impossible}"
        return "must be a calendar date like 2026-03-01; got " + got(value)
    elif t.startswith("list["):
        inner = "str" if t == "list[str]" else "int"
        if not isinstance(value, list):
            return "must be a list, like [a, b]; got " + got(value)
        for item in value:
            if inner == "str" and (not isinstance(item, str) or not item):
                return "must be a list of non-empty text; one item is " + _as_text(item)
            if inner == "str" and not_text(item):
                return _SURROGATE_TEXT
            if inner == "int" and (isinstance(item, bool) or not isinstance(item, int)):
                return "must be a list of whole numbers; one item is " + got(item)
    if check.enum is not None:
        items = value if isinstance(value, list) else [value]
        bad = [x for x in items if x not in check.enum]
        if bad:
            return f"{show(bad[0])} is not one of {sorted(map(str, check.enum))}"
    number = _normalise(check, value) if t == "decimal" else value  # "12.50" is checked too
    if not isinstance(number, int | float | Decimal) or isinstance(number, bool):
        return None
    if check.min is not None and number < check.min:
        return f"must be at least {check.min}"
    if check.max is not None and number > check.max:
        return f"must be at most {check.max}"
    return None


def _too_large(check: FieldCheck, value: Any) -> bool:
    """A whole number of more than ``MAX_DIGITS`` digits, or a decimal whose exponent is beyond
    ±``MAX_DIGITS`` (``1e999999999`` would overflow the decimal arithmetic of conditions)."""
    if too_long(value) or (isinstance(value, list) and any(map(too_long, value))):
        return True
    if check.type == "decimal" and not isinstance(value, bool):
        number = _normalise(check, value)
        if isinstance(number, Decimal) and number.is_finite() and number:
            return abs(number.adjusted()) > MAX_DIGITS
    return False


_SURROGATE_TEXT: Final = "must be Unicode text: it holds a lone surrogate (\\ud800-\\udfff)"


def _normalise(check: FieldCheck, value: Any) -> Any:
    if check.type == "decimal":
        try:
            return Decimal(str(value))
        except (InvalidOperation, ValueError):  # ValueError: an int too long for str()
            return None
    if check.type == "time":
        return instant_us(value)
    return value


_Plan = tuple[tuple[tuple[str, bool, bool, Any, FieldCheck], ...], frozenset[str]]


def _plan(checks: tuple[FieldCheck, ...]) -> _Plan:
    """Per declared field: whether plain non-empty text is accepted as is (a text field with
    no enum), so the common field costs one type test; and the keys an event may carry."""
    fields = tuple(
        (c.name, c.type == "str" and c.enum is None, c.required, c.default, c) for c in checks
    )
    return fields, frozenset({"id", "type", "at", *(c.name for c in checks)})


# ---------------------------------------------------------------- local times without an offset
# A time without a UTC offset names no instant, so it is refused (PE204) unless the caller
# opts in with ``naive_times="policy"``: then it is read as wall-clock time in the policy's
# timezone. The opt-in is explicit because the guess is only right when the sender wrote the
# policy's local time; a CRM writing UTC without a "Z" would be silently off by hours.

NaiveTimes = Literal["error", "policy"]
NAIVE_TIMES: Final[tuple[str, ...]] = get_args(NaiveTimes)
NAIVE_HINT: Final = (
    'or, if these are local times of the policy\'s timezone, pass naive_times="policy" '
    "(command line: --naive-times policy)"
)


def naive_times_mode(naive_times: Any) -> NaiveTimes:
    """``naive_times`` checked: ``"error"`` or ``"policy"``, else EventError PE207 (a wrong
    option is a wrong reading of the history, reported in the history's own family)."""
    if naive_times == "error" or naive_times == "policy":
        return "error" if naive_times == "error" else "policy"
    raise EventError(
        [
            Problem(
                Code.MALFORMED_HISTORY,
                f"naive_times={show(naive_times)} is not one of {list(NAIVE_TIMES)}",
                hint='pass naive_times="error" (the default: refuse) or "policy" (read them '
                "in the policy's timezone)",
                event_id="#history",
                field="naive_times",
            )
        ]
    )


# Excel's usual renderings of a date and time: year first, then month and day of one or two
# digits, with "-" or "/" (the same one twice), then an hour of one or two digits, minutes and
# optionally seconds and a fraction. Year first only: "3/2/2026" (day or month first?) is not
# read, never guessed at.
_SPREADSHEET_TIME: Final = re.compile(
    r"([0-9]{4})([-/])([0-9]{1,2})\2([0-9]{1,2})[ T]([0-9]{1,2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:\.([0-9]{1,6}))?)?",
    re.ASCII,
)


def _spreadsheet_time(text: str) -> datetime | None:
    """``2026/3/2 09:00``, ``2026/03/02 09:00:00``, ``2026-3-2 9:00`` as a naive datetime."""
    m = _SPREADSHEET_TIME.fullmatch(text)
    if m is None:
        return None
    year, _, month, day, hour, minute, second, fraction = m.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:  # 2026/2/30, 25:00
        return None


def naive_wall_time(value: Any) -> datetime | None:
    """The wall-clock time of ``value`` if it is a time without an offset: ISO 8601 text with
    a time of day and no offset (``2026-03-01T10:00:00``, ``2026-03-01 10:00``), a
    spreadsheet's rendering of one, year first (``2026/3/2 09:00``, ``2026/03/02 09:00:00``,
    ``2026-3-2 9:00``), or a naive ``datetime``. None for anything else: an instant with an
    offset, a calendar date alone (a day is not a time of day), a date not written year first
    (``3/2/2026``: day and month are never guessed), other text, or another type. Never
    fails."""
    if isinstance(value, str):
        text = value.strip()
        try:
            found = datetime.fromisoformat(text)
        except ValueError:
            spreadsheet = _spreadsheet_time(text)
            if spreadsheet is None:
                return None
            found = spreadsheet
        try:
            date.fromisoformat(text)
        except ValueError:
            pass
        else:
            return None  # "2026-03-01" alone: fromisoformat reads it as midnight
    elif isinstance(value, datetime):
        found = value
    else:
        return None
    return found if found.tzinfo is None else None


def local_instant(value: Any, tz: str) -> datetime | None:
    """``value`` (see ``naive_wall_time``) read as local time in ``tz``, as an aware datetime
    of that zone; None when it is not a time without an offset, or cannot be placed there
    (the first or last hours of year 1 and 9999).

    A wall time summer time skips (02:30 on the spring-forward night) or repeats (02:30 on
    the fall-back night) is read with ``fold=0``, the offset in force before the change: a
    skipped 02:30 CET is 01:30 UTC, shown as 03:30 CEST; a repeated 02:30 is the first one,
    CEST. The result is the instant shown as the zone shows it, so its text is a real local
    time with the offset in force then."""
    wall = naive_wall_time(value)
    if wall is None:
        return None
    try:
        z = zone(tz)
        return wall.replace(tzinfo=z, fold=0).astimezone(UTC).astimezone(z)
    except (OverflowError, ValueError):
        return None


def _local_text(value: Any, tz: str) -> str | None:
    """``local_instant`` as ISO 8601 text with its offset (``2026-03-01T10:00:00+08:00``)."""
    found = local_instant(value, tz)
    return None if found is None else found.isoformat()


def localise_instant(value: Any, tz: str) -> Any:
    """An API argument (``as_of``, ``at``) under ``naive_times="policy"``: a time without an
    offset becomes the ISO 8601 text of that local time in ``tz``; anything else is returned
    as given, for ``parse_instant`` to accept or refuse as always."""
    text = _local_text(value, tz)
    return value if text is None else text


def localise(policy: CompiledPolicy, raw_events: Iterable[Any]) -> list[Any]:
    """The history with every time without an offset (``at``, and the fields the event's type
    declares ``time``) written as ISO 8601 text with the offset of the policy's timezone then:
    what ``naive_times="policy"`` reads. An event that changes is a new dict (the caller's
    mapping is not touched); every other item, good or bad, is passed through as it is, for
    ``prepare`` to judge. Text, not an instant, is put in: the result is still raw input,
    which the snapshots store and the parallel partitioner reads, so every backend sees the
    same events with no option of its own; and a derived id is that of the offset form.

    Raises EventError PE207 when ``raw_events`` is not a history (``history_items``)."""
    tz = policy.timezone
    times: dict[str, tuple[str, ...]] = {
        etype: tuple(c.name for c in checks if c.type == "time")
        for etype, checks in policy.events.items()
    }
    out: list[Any] = []
    for raw in history_items(raw_events):
        if not isinstance(raw, Mapping):
            out.append(raw)
            continue
        changed: dict[Any, str] = {}
        text = _local_text(raw.get("at"), tz)
        if text is not None:
            changed["at"] = text
        etype = raw.get("type")
        for name in times.get(etype, ()) if isinstance(etype, str) else ():
            text = _local_text(raw.get(name), tz)
            if text is not None:
                changed[name] = text
        out.append({**raw, **changed} if changed else raw)
    return out


def history_items(raw_events: Any) -> Iterable[Any]:
    """``raw_events`` if it can be a history (an iterable of events), else EventError PE207:
    a text, bytes or a single mapping would be iterated as characters or keys, and a number
    is not iterable at all. ``prepare`` calls it; a caller iterating the input itself first
    (the front end copies it for snapshots) should call it before."""
    if isinstance(raw_events, str | bytes | bytearray | Mapping) or not hasattr(
        raw_events, "__iter__"
    ):
        raise EventError(
            [
                Problem(
                    Code.MALFORMED_HISTORY,
                    f"a history is a list of events, not a {type(raw_events).__name__}",
                    hint='pass [{"id": ..., "type": ..., "at": ...}, ...]',
                    event_id="#history",
                )
            ]
        )
    return raw_events  # type: ignore[no-any-return]


def prepare(
    policy: CompiledPolicy, raw_events: Iterable[Any], *, naive_times: NaiveTimes = "error"
) -> History:
    """The checked, ordered history of ``raw_events``, or EventError with every problem.

    ``naive_times``: what a time without a UTC offset (in ``at`` or a ``time`` field) means:
    ``"error"`` (default) refuses it (PE204 for ``at``, PE203 for a field), since it names
    no instant; ``"policy"`` reads it as local time in the policy's timezone (``localise``)."""
    if naive_times_mode(naive_times) == "policy":
        raw_events = localise(policy, raw_events)
    raw_events = history_items(raw_events)
    problems: list[Problem] = []
    out: list[tuple[int, int, Event]] = []
    repeats: Repeats[tuple[int, Mapping[str, Any]]] = Repeats(lambda a, b: same_content(a[1], b[1]))
    history = History([], repeats.duplicates)
    plans: dict[Any, _Plan] = {}  # per event type, built on first sight
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, Mapping):
            problems.append(
                Problem(
                    Code.MALFORMED_HISTORY,
                    f"event #{index} is a {type(raw).__name__}, not a mapping",
                    event_id=f"#{index}",
                )
            )
            continue
        eid = event_id(raw, index)
        if eid is None:  # a mapping: its id is what is wrong
            raw_id = raw.get("id")
            problems.append(
                Problem(
                    Code.HISTORY_TOO_LARGE if too_long(raw_id) else Code.EVENT_BAD_FIELD,
                    f"id is a whole number of more than {MAX_DIGITS} digits"
                    if too_long(raw_id)
                    else "id " + _SURROGATE_TEXT
                    if isinstance(raw_id, str) and raw_id
                    else "id must be non-empty text or a whole number; got " + _as_text(raw_id),
                    event_id=f"#{index}",
                    field="id",
                )
            )
            continue
        reused = len(repeats.reused)
        if repeats.repeated(eid, (index, raw)):
            if len(repeats.reused) > reused:
                problems.append(reused_problem(eid, repeats.reused[-1][1][0], index))
            continue
        etype = raw.get("type")
        checks = policy.events.get(etype) if isinstance(etype, str) else None
        if checks is None:
            if isinstance(etype, str) and not_text(etype):
                problems.append(
                    Problem(
                        Code.EVENT_BAD_FIELD, "type " + _SURROGATE_TEXT, event_id=eid, field="type"
                    )
                )
                continue
            if isinstance(etype, str) and policy.unknown_events == "ignore":
                history.ignored.append((eid, ignored_type(etype)))
                continue
            problems.append(
                Problem(
                    Code.EVENT_UNKNOWN_TYPE if etype is not None else Code.EVENT_MISSING_FIELD,
                    f"unknown event type {show(etype)}"
                    if etype is not None
                    else "missing event type",
                    hint=(did_you_mean(etype, policy.events) if isinstance(etype, str) else None)
                    or "declare the type in the policy, or set `unknown_events: ignore`",
                    event_id=eid,
                    field="type",
                )
            )
            continue
        at_raw = raw.get("at")
        at = instant_us(at_raw)
        if at is not None and not in_range(at):
            problems.append(
                Problem(
                    Code.INSTANT_OUT_OF_RANGE,
                    f"timestamp {show(at_raw)} is outside the supported range {RANGE_TEXT}",
                    hint="check the year",
                    event_id=eid,
                    field="at",
                )
            )
            continue
        if at is None:
            code = Code.EVENT_MISSING_FIELD if at_raw is None else Code.EVENT_NO_OFFSET
            msg = (
                "missing timestamp `at`"
                if at_raw is None
                else f"timestamp {show(at_raw)} has no UTC offset or is not ISO 8601"
            )
            hint = "write e.g. 2026-03-01T10:00:00+08:00"
            impossible = impossible_time(at_raw)
            if impossible is not None:
                msg = f"timestamp {show(at_raw)} names no instant: {impossible}"
                hint = "correct the date or the time of day, e.g. 2026-03-01T10:00:00+08:00"
            elif naive_wall_time(at_raw) is not None:
                hint += ", " + NAIVE_HINT
            problems.append(Problem(code, msg, hint=hint, event_id=eid, field="at"))
            continue
        event: Event = {"id": eid, "type": etype, "at": at}
        plan = plans.get(etype)
        if plan is None:
            plan = plans[etype] = _plan(checks)
        fields, allowed = plan
        bad = False
        for name, fast, required, default, check in fields:
            value = raw.get(name)
            if value is None:
                if required:
                    problems.append(
                        Problem(
                            Code.EVENT_MISSING_FIELD,
                            f"missing field {name!r} of {etype}",
                            event_id=eid,
                            field=name,
                        )
                    )
                    bad = True
                elif default is not None:
                    event[name] = default
                continue
            if fast and type(value) is str and value and (value.isascii() or not not_text(value)):
                event[name] = value  # plain text, the common case: nothing to convert
                continue
            if _too_large(check, value):
                problems.append(
                    Problem(
                        Code.HISTORY_TOO_LARGE,
                        f"{name} holds a number of more than {MAX_DIGITS} digits"
                        " (or a decimal exponent beyond ±4300)",
                        event_id=eid,
                        field=name,
                    )
                )
                bad = True
                continue
            complaint = _check_field(check, value)
            if complaint is not None:
                code = Code.EVENT_BAD_FIELD
                field_hint: str | None = None
                if check.type == "time" and instant_us(value) is not None:
                    code = Code.INSTANT_OUT_OF_RANGE  # an instant, but out of range
                elif check.type == "time" and naive_wall_time(value) is not None:
                    field_hint = "give it an offset, " + NAIVE_HINT
                problems.append(
                    Problem(code, f"{name} {complaint}", hint=field_hint, event_id=eid, field=name)
                )
                bad = True
                continue
            event[name] = _normalise(check, value)
        if not allowed.issuperset(raw):
            declared = {check.name for check in checks}
            for key in raw:
                if key not in allowed:
                    problems.append(
                        Problem(
                            Code.EVENT_UNKNOWN_FIELD,
                            f"field {show(key)} is not declared for {etype}",
                            hint=did_you_mean(key, declared) if isinstance(key, str) else None,
                            event_id=eid,
                            field=key if isinstance(key, str) else show(key),
                        )
                    )
            bad = True
        if not bad:
            out.append((at, index, event))
            if isinstance(at_raw, str):
                history.texts[eid] = at_raw
    if problems:
        raise EventError(problems)
    out.sort(key=lambda x: (x[0], x[1]))
    history.events = [e for _, _, e in out]
    return history
