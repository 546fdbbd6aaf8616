"""Values as JSON for snapshots: tagged where JSON has no type for them (``{"$d": "1.50"}`` for
a Decimal, ``{"$t": [...]}`` for a tuple, ``{"$us": n}`` for an instant (``times.Instant``),
``{"$m": [[k, v]...]}`` for a mapping whose keys are not text), and the fast C encoder and
decoder around them."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from policyengine.errors import Code, Problem, SnapshotError
from policyengine.times import Instant


def error(code: str, message: str, hint: str) -> SnapshotError:
    return SnapshotError([Problem(code, message, hint=hint)])


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
    if t is Instant:
        return {"$us": int(v)}
    if isinstance(v, datetime):
        return {"$dt": v.isoformat()}
    if isinstance(v, date):
        return {"$date": v.isoformat()}
    if isinstance(v, Mapping):
        return _enc(dict(v))
    raise error(
        Code.NOT_SNAPSHOTTABLE,
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


def _instant(x: Any) -> Instant:
    if type(x) is not int:
        raise TypeError("$us holds no whole number")
    return Instant(x)


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
    "$us": _instant,
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
