"""What the compiled closures compute with: the manual's equality, order and exact numbers.

Yes/no never equals a number; null is never ordered; a one-value money amount compares and
counts as its amount; numbers are exact decimals. Conjunctions and disjunctions are folded
into nested closures. No compile-time logic here: these run inside every evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from policyengine.language import model as m
from policyengine.language.compiled import Ctx, Getter, Pred


def _conjunction(parts: list[Pred]) -> Pred:
    """``all``, folded into nested closures: no generator per call in the inner loop."""
    if not parts:
        return lambda c: True
    head, *rest = parts
    if not rest:
        return head
    tail = _conjunction(rest)
    return lambda c: head(c) and tail(c)


def _disjunction(parts: list[Pred]) -> Pred:
    if not parts:
        return lambda c: False
    head, *rest = parts
    if not rest:
        return head
    tail = _disjunction(rest)
    return lambda c: head(c) or tail(c)


def _plain(value: Any) -> Any:
    """A one-value money parameter compares as its amount (``gt: [$event.total, $params.cap]``)."""
    return value.low if isinstance(value, m.Money) and value.low == value.high else value


def _equal(x: Any, y: Any) -> bool:
    """Python's ``True == 1`` is not the manual's: a yes/no never equals a number."""
    if type(x) is type(y):  # the common case (text against text) stays one comparison
        return bool(x == y)
    x, y = _plain(x), _plain(y)
    return isinstance(x, bool) == isinstance(y, bool) and bool(x == y)


def _literal_equality(op: str, pair: Any, a: Getter, b: Getter) -> Pred | None:
    """``eq``/``ne`` against a literal null or text, the commonest guards (``owner: null``,
    ``channel: feedback``), as one identity or string test: ``_equal`` gives the same answer
    there, since no other kind of value equals null or a text."""
    for lit, other in ((pair[1], a), (pair[0], b)):
        if lit is None:
            if op == "eq":
                return lambda c: other(c) is None
            return lambda c: other(c) is not None
        if isinstance(lit, str) and not lit.startswith("$"):
            text = lit
            if op == "eq":
                return lambda c: other(c) == text
            return lambda c: other(c) != text
    return None


def _comparison(op: str, a: Getter, b: Getter) -> Pred:
    if op == "eq":
        return lambda c: _equal(a(c), b(c))
    if op == "ne":
        return lambda c: not _equal(a(c), b(c))

    def ordered(c: Ctx) -> bool:
        x, y = _plain(a(c)), _plain(b(c))
        if x is None or y is None or isinstance(x, bool) or isinstance(y, bool):
            return False
        try:
            if op == "lt":
                return bool(x < y)
            if op == "le":
                return bool(x <= y)
            if op == "gt":
                return bool(x > y)
            return bool(x >= y)
        except TypeError:
            return False

    return ordered


# ---------------------------------------------------------------- numbers


def as_number(value: Any) -> Decimal | None:
    """An exact number, or None: ints and decimals as they are, a one-value money amount
    (``{money: 30000}``) as its amount; booleans, text and money ranges are not numbers."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, m.Money) and value.low == value.high:
        return value.low
    return None


def _numbers(value: Any) -> list[Decimal]:
    """Numbers of a value or a list of values, lists inside flattened once, nulls skipped."""
    items = value if isinstance(value, list | tuple) else [value]
    out: list[Decimal] = []
    for item in items:
        for v in item if isinstance(item, list | tuple) else (item,):
            n = as_number(v)
            if n is not None:
                out.append(n)
    return out


def _div(nums: list[Decimal]) -> Decimal | None:
    return None if nums[1] == 0 else nums[0] / nums[1]


def _product(nums: list[Decimal]) -> Decimal:
    out = Decimal(1)
    for n in nums:
        out *= n
    return out


_FOLDS: Final[dict[str, Callable[[list[Decimal]], Decimal | None]]] = {
    "sum": lambda ns: sum(ns, Decimal(0)),
    "min": lambda ns: min(ns) if ns else None,
    "max": lambda ns: max(ns) if ns else None,
    "avg": lambda ns: sum(ns, Decimal(0)) / len(ns) if ns else None,
}
_ARITH: Final[dict[str, Callable[[list[Decimal]], Decimal | None]]] = {
    "add": lambda ns: sum(ns, Decimal(0)),
    "sub": lambda ns: ns[0] - ns[1],
    "mul": _product,
    "div": _div,
}
