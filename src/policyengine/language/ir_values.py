"""The intermediate form's values beyond ``ir``'s own: local dates, lengths, list keys.

``ir`` lowers the language's core; these are the forms whose exactness hangs on a rule about
where they may meet other values (a date is text to the engine, a day to the core: the two
meet only where the core compares them as the engine does), so each lowering here also says
where its value may go. Kept apart from ``ir`` so that each stays small enough to read.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from policyengine.language import model as m
from policyengine.language.validate import PolicySet
from policyengine.times import (
    _FIXED_US,
    MIN_US,
    WORKING_US,
    Duration,
    parse_duration,
    steady_offset,
)

__all__ = [
    "HELD_APART",
    "compare",
    "compare_dates",
    "compare_lists",
    "date_field",
    "each_subject",
    "event_checks",
    "key_kind",
    "match_kind",
    "operand",
    "plain",
]

_EPOCH = date(1970, 1, 1).toordinal()
# what a key's items may be: held by the core as the engine's dict holds them
_KEY_ITEMS = ("text", "int", "instant", "null", "date")
# the kinds the core holds apart from texts (a date is a day there) or as lists
_LISTS = ("values", "values_any", "tuple", "dated", "items", "mixed")
HELD_APART = ("date", *_LISTS)


class _Lowers(Protocol):
    """What these lowerings use of ``ir._Lowering``."""

    pset: PolicySet
    working: bool

    @property
    def c(self) -> Any: ...

    def outside(self, what: str, *path: str | int) -> Exception: ...

    def operand(
        self,
        op: Any,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
        numbers: bool = False,
        lists: bool = False,
    ) -> tuple[dict[str, Any], str]: ...

    def condition(
        self,
        cond: Any,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> dict[str, Any]: ...

    def query(
        self,
        q: m.HistoryQuery,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> dict[str, Any]: ...

    def text_field(
        self,
        types: list[str],
        name: str,
        *path: str | int,
        yes_no: bool = False,
        numbers: bool = False,
        lists: bool = False,
    ) -> str: ...

    def action(
        self,
        a: Any,
        event: list[str] | None,
        trigger: list[str] | None,
        party: bool,
        *path: str | int,
    ) -> dict[str, Any]: ...


def operand(
    low: _Lowers,
    op: Any,
    event: list[str] | None,
    trigger: list[str] | None,
    party: bool,
    *path: str | int,
) -> tuple[dict[str, Any], str] | None:
    """``{date: instant}`` (kind ``date``: the local day, exact where the zone's offset is
    steady), ``{len: ...}`` of a claims list, a text or a list of texts, and a written list
    (kind ``tuple``: only ever a ``key``); None for any other value."""
    if isinstance(op, m.Date):
        inner, kind = low.operand(op.date, event, trigger, party, *path, "date")
        if kind not in ("instant", "null"):
            raise low.outside(f"`date` of a {kind}", *path, "date")
        steady = steady_offset(low.c.timezone)
        if steady is None:
            raise low.outside("`date` in a zone of changing offset", *path)
        return {"date": inner, "offset": steady[1], "from": steady[0]}, "date"
    if isinstance(op, m.Len):  # `len(value or ())`: a text's characters, a list's items
        inner, kind = low.operand(op.len, event, trigger, party, *path, "len", lists=True)
        if kind not in ("list", "texts", "text", "null"):
            raise low.outside(f"`len` of a {kind}", *path, "len")
        return {"len": inner}, "int"
    if isinstance(op, list):  # `tuple`: a key may hold it; `dated`: only a key; `items`
        items, kinds = [], set()
        for i, x in enumerate(op):
            lowered, kind = low.operand(x, event, trigger, party, *path, i)
            if kind not in (*_KEY_ITEMS, "bool"):
                raise low.outside(f"a {kind} in a list value", *path, i)
            items.append(lowered)
            kinds.add(kind)
        if "date" in kinds:
            return {"tuple": items}, "dated" if kinds <= set(_KEY_ITEMS) else "mixed"
        return {"tuple": items}, "tuple" if kinds <= set(_KEY_ITEMS) else "items"
    if isinstance(op, m.Ago):
        return ago(low, op.ago, *path, "ago"), "instant"
    if isinstance(op, m.CounterValue):  # `$party`'s counter, else the subject's
        return {"counter_of": op.counter}, "decimal"
    if isinstance(op, m.Avg):
        return average(low, op, event, trigger, party, *path), "decimal"
    if isinstance(op, m.Div | m.Round):
        return numbers(low, op, event, trigger, party, *path), "decimal"
    if isinstance(op, m.Values):  # `values`: of a text field ($item a text), else `values_any`
        found = values(low, op.values, event, trigger, party, *path, "values")
        return found, "values" if found["text"] else "values_any"
    return None


def numbers(
    low: _Lowers,
    op: m.Div | m.Round,
    event: list[str] | None,
    trigger: list[str] | None,
    party: bool,
    *path: str | int,
) -> dict[str, Any]:
    """``{div: [a, b]}`` (the core holds exact quotients only; for others the engine decides)
    and ``{round: [x, digits, mode]}`` (``quantize``, half up unless written)."""
    key = "div" if isinstance(op, m.Div) else "round"
    terms = op.div if isinstance(op, m.Div) else op.round[:1]
    args = []
    for i, x in enumerate(terms):
        lowered, kind = low.operand(x, event, trigger, party, *path, key, i, numbers=True)
        if kind not in ("int", "decimal", "null", "any", "text", "bool", "instant"):
            raise low.outside(f"`{key}` of a {kind}", *path, key, i)
        args.append(lowered)
    if isinstance(op, m.Div):
        return {"div": args}
    mode = str(op.round[2]) if len(op.round) == 3 else "half_up"
    return {"round": args[0], "digits": int(op.round[1]), "mode": mode}


def average(
    low: _Lowers,
    op: m.Avg,
    event: list[str] | None,
    trigger: list[str] | None,
    party: bool,
    *path: str | int,
) -> dict[str, Any]:
    """``{avg: ...}``: its terms read as a sum's (a ``values`` query's items one by one, all
    else not a number skipped), their sum divided by how many (exact quotients only)."""
    many = isinstance(op.avg, list)
    terms: list[Any] = op.avg if isinstance(op.avg, list) else [op.avg]
    out = []
    for i, t in enumerate(terms):
        at = (*path, "avg", i) if many else (*path, "avg")
        if isinstance(t, m.Values):
            q = t.values
            if q.last is not None:
                raise low.outside("`last` in an averaged `values` query", *at, "values", "last")
            types = [q.type] if isinstance(q.type, str) else list(q.type)
            kind = low.text_field(types, q.field, *at, "values", "field", numbers=True)
            if kind not in ("int", "decimal"):
                raise low.outside(f"an average of a {kind} field", *at, "values", "field")
            found = low.query(q, event, trigger, party, *at, "values")
            out.append({"values_of": found, "field": q.field})
            continue
        lowered, kind = low.operand(t, event, trigger, party, *at, numbers=True)
        if kind not in ("int", "decimal", "null", "any", "text", "bool", "instant"):
            raise low.outside(f"an average of a {kind}", *at)
        out.append(lowered)
    return {"avg": out}


def values(
    low: _Lowers,
    q: m.ValuesQuery,
    event: list[str] | None,
    trigger: list[str] | None,
    party: bool,
    *path: str | int,
) -> dict[str, Any]:
    """``{values: ...}`` as a list (``Queries.history``: with ``last``, the newest first, the
    earlier written first among those at one instant): a field the core compares with
    Python's ``==`` (texts, whole numbers, yes/no, instants), never a date."""
    if q.last is not None and not 0 <= q.last < 2**63:
        raise low.outside("a `last` this large", *path, "last")
    types = [q.type] if isinstance(q.type, str) else list(q.type)
    if len(set(types)) != len(types):
        raise low.outside("a type named twice in a `values` query", *path, "type")
    kind = low.text_field(types, q.field, *path, "field", yes_no=True, numbers=True)
    if kind not in ("text", "int", "bool", "instant"):
        raise low.outside(f"`values` of a {kind} field", *path, "field")
    found = low.query(q.model_copy(update={"last": None}), event, trigger, party, *path)
    return {"values_list": found, "field": q.field, "last": q.last, "text": kind == "text"}


def compare_lists(
    low: _Lowers, op: str, lowered: list[dict[str, Any]], kinds: list[str], *path: str | int
) -> dict[str, Any]:
    """``eq``/``ne`` of two lists (``values``, written lists), item by item with Python's
    ``==``; their order and a list against anything else are not described."""
    lists = ("values", "values_any", "tuple", "items")
    if op not in ("eq", "ne") or not all(k in lists for k in kinds):  # no date: a text there
        raise low.outside(f"`{op}` of a {kinds[0]} and a {kinds[1]}", *path, op)
    return {"op": op, "args": lowered}


def written_duration(low: _Lowers, text: str, what: str, *path: str | int) -> Duration:
    """A duration written down or named by a parameter (``$params.x``), as the compiler reads
    it; anything else is not described."""
    found: Any = text
    if text.startswith("$params.") and text.count(".") == 1:
        found = low.c.params.get(text[len("$params.") :])
    if isinstance(found, Duration):
        return found
    try:
        return parse_duration(str(found))
    except ValueError as exc:
        raise low.outside(f"{what} {text!r}", *path) from exc


def ago(low: _Lowers, text: str, *path: str | int) -> dict[str, Any]:
    """``{ago: ...}`` (``Duration.back``, at least ``MIN_US``): fixed units, and days and weeks
    in a zone of steady offset (from its last change on); the calendar's others are not
    described."""
    found = written_duration(low, text, "the duration", *path)
    fixed = _FIXED_US.get(found.unit)
    if fixed is not None:
        return {"ago": found.amount * fixed, "from": None, "min": MIN_US}
    steady = steady_offset(low.c.timezone)
    days = {"day": 1, "same_day": 1, "next_day": 1, "week": 7}.get(found.unit)
    if days is None or steady is None:
        raise low.outside(f"`ago` of {found.text!r}", *path)
    return {"ago": found.amount * days * 86_400_000_000, "from": steady[0], "min": MIN_US}


def working_hours(low: _Lowers, d: Duration, working: bool) -> dict[str, Any] | None:
    """A duty's window of working hours or minutes (``business_due``: counted inside the
    business hours of working days, inclusive), in a zone of steady offset; None for any
    other duration."""
    per_unit = WORKING_US.get(d.unit)
    steady = steady_offset(low.c.timezone)
    if per_unit is None or not working or steady is None:
        return None
    low.working = True  # the calendar, with its business hours, goes along
    return {
        "us": 0,
        "months": 0,
        "working_us": d.amount * per_unit,
        "offset": steady[1],
        "from": steady[0],
        "midnight": None,
        "inclusive": True,
    }


def date_field(pset: PolicySet, types: list[str], name: str) -> bool:
    """Every type declares the field a plain ``date`` (no choices, no default): the core
    holds its values as days, each the one text ``date.isoformat`` writes for it (others:
    the engine)."""
    found = [pset.events[t].fields.get(name) if t in pset.events else None for t in types]
    return bool(found) and all(
        f is not None and f.type == "date" and f.enum is None and f.default is None for f in found
    )


def match_kind(low: _Lowers, types: list[str], name: str, kind: str, *path: str | int) -> None:
    """A duty's match on a field: a date only against a date field, a date field only by a
    date (or null); a day never meets a text there."""
    declared = {
        spec.type
        for t in types
        if t in low.pset.events
        for spec in [low.pset.events[t].fields.get(name)]
        if spec is not None
    }
    if kind in ("tuple", "dated", "items", "mixed", "values", "values_any"):
        raise low.outside(f"a match by a list ({kind})", *path)
    dated = kind == "date" or "date" in declared
    if dated and (kind not in ("date", "null") or not date_field(low.pset, types, name)):
        raise low.outside(f"a match of a {kind} on the field {name!r}", *path)


def key_kind(low: _Lowers, scope: str | None, kind: str, *path: str | int) -> None:
    """What a ``key`` may be: a text, a whole number, an instant, null, a date or a list of
    those; a date only in the duty's own scope (a named one may hold a text in its place)."""
    if kind not in (*_KEY_ITEMS, "tuple", "dated"):
        raise low.outside(f"a `key` of the kind {kind}", *path)
    if scope is not None and kind in ("date", "dated"):
        raise low.outside(f"a `key` of the kind {kind} in a named scope", *path)


def plain(low: _Lowers, kind: str, *path: str | int) -> None:
    """Where a value is matched or looked up as the engine's text (a subject, a party, a
    field's value): no date (a day to the core) nor a list."""
    if kind in HELD_APART:
        raise low.outside(f"a {kind} here", *path)


def compare(
    low: _Lowers,
    op: str,
    pair: list[Any],
    lowered: list[dict[str, Any]],
    kinds: list[str],
    *path: str | int,
) -> dict[str, Any] | None:
    """A comparison with a date or a list (None for any other)."""
    if "date" in kinds:
        return compare_dates(low, op, pair, lowered, kinds, *path)
    if set(kinds) & set(_LISTS):
        return compare_lists(low, op, lowered, kinds, *path)
    return None


def compare_dates(
    low: _Lowers,
    op: str,
    pair: list[Any],
    lowered: list[dict[str, Any]],
    kinds: list[str],
    *path: str | int,
) -> dict[str, Any]:
    """A comparison with a date: written texts read as dates as the compiler reads them
    (``_date_literals``); a day against a text compares the texts, as the engine does."""
    out = list(lowered)
    for i, (x, kind) in enumerate(zip(pair, kinds, strict=True)):
        if kind in ("list", "texts", "tuple", "decimal", "int", "instant", "bool"):
            raise low.outside(f"`{op}` of a date and a {kind}", *path, op, i)
        literal = isinstance(x, str) and not m.is_reference(x) and not x.startswith("$$")
        if kind == "text" and literal:
            day = _calendar_date(x.strip())
            if day is None:  # the compiler refuses it: never evaluated
                raise low.outside(f"the text {x!r} against a date", *path, op, i)
            out[i] = {"lit": day.isoformat()}
    return {"op": op, "args": out}


def _calendar_date(text: str) -> date | None:
    if len(text) != 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def each_subject(
    low: _Lowers,
    a: Any,
    event: list[str] | None,
    trigger: list[str] | None,
    party: bool,
    *path: str | int,
) -> dict[str, Any]:
    """``for_each_subject`` of a ``subjects`` query (``Queries.subjects_with``: sorted by id,
    narrowed by ``owner`` and ``where`` before the first runs): the action once per subject,
    ``$subject`` that one; a ``for_each`` inside it is not described."""
    spec = a.for_each_subject
    at = (*path, "for_each_subject")
    if not isinstance(spec, m.Subjects):
        raise low.outside("`for_each_subject` of anything but a `subjects` query", *at)
    if a.for_each is not None:
        raise low.outside("a `for_each` inside `for_each_subject`", *path, "for_each")
    owner = None
    if spec.owner is not None:
        owner, kind = low.operand(spec.owner, event, trigger, party, *at, "owner")
        if kind not in ("text", "null", "any"):
            raise low.outside(f"subjects of an owner of the kind {kind}", *at, "owner")
    where = None
    if spec.where is not None:
        where = low.condition(spec.where, event, trigger, party, *at, "where")
    inner = low.action(
        a.model_copy(update={"for_each_subject": None}), event, trigger, party, *path
    )
    each = {"subjects": spec.subjects, "owner": owner, "where": where}
    return {**inner, "for_each": each}


def event_checks(c: Any) -> dict[str, list[dict[str, Any]]]:
    """Each declared event type's field checks, as far as the core checks them itself."""
    return {
        name: [
            {
                "name": f.name,
                "type": f.type,
                "required": f.required,
                "enum": None if f.enum is None else sorted(map(str, f.enum)),
                # the core checks an event only as far as these say it exactly can
                # (text members, no bounds); otherwise it hands the history back
                "enum_text": f.enum is None or all(type(x) is str for x in f.enum),
                "bounded": (f.min is not None or f.max is not None) and _bounds(f) is None,
                "bounds": _bounds(f),
                "default": f.default if isinstance(f.default, str | int | bool) else None,
                "has_default": f.default is not None,
            }
            for f in checks
        ]
        for name, checks in c.events.items()
    }


def _bounds(f: Any) -> list[int | None] | None:
    """A whole-number field's bounds as the core checks them (``[min, max]``, either null);
    None where there are none or they are not whole numbers (``prepare`` checks those)."""
    if f.type != "int" or (f.min is None and f.max is None):
        return None
    out: list[int | None] = []
    for b in (f.min, f.max):
        if b is None or (type(b) is int and -(2**63) <= b < 2**63):
            out.append(b)
        else:
            return None
    return out
