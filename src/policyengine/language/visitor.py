"""One way to walk the policy model: dispatch on a node's class to ``visit_<ClassName>``.

A walker subclasses ``Visitor[R]`` and writes one method per model class it handles
(``visit_Eq``, ``visit_HistoryQuery``...); ``walker.visit(node, *args)`` calls the method of
``type(node)`` exactly (no fallback to a base class: share a method by assigning it, as in
``visit_MinOf = visit_Sum``). The method is looked up once per node class and cached on the
walker class. A node class with no method raises ``UnhandledNode``, naming the walker and the
class, unless the walker lists it in ``ignores`` (built with ``node_types``): those go to the
walker's ``ignore`` method (a default value, or "just read the children"). ``fields``,
``children`` and ``descendants`` iterate a node's contents, for walkers that only collect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

R = TypeVar("R")


class UnhandledNode(TypeError):
    """A walker met a node class it has no ``visit_`` method for (a bug in the walker)."""

    def __init__(self, walker: type[Any], node_type: type[Any]) -> None:
        self.walker = walker
        self.node_type = node_type
        name = node_type.__name__
        super().__init__(
            f"{walker.__name__} cannot walk a {name} node ({node_type.__module__}.{name}): "
            f"define {walker.__name__}.visit_{name}, or list {name} in its `ignores`"
        )


class Visitor(Generic[R]):
    """Base of the walkers over the policy model (see the module doc)."""

    # node classes this walker deliberately does not handle: ``visit`` sends them to ``ignore``
    ignores: ClassVar[frozenset[type[BaseModel]]] = frozenset()
    # node class -> the function that visits it; one table per walker class, filled lazily
    _table: ClassVar[dict[type[Any], Callable[..., Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._table = {}
        if cls.ignores and cls.ignore is Visitor.ignore:
            raise TypeError(f"{cls.__name__} lists `ignores` but defines no `ignore` method")
        both = sorted(t.__name__ for t in cls.ignores if hasattr(cls, f"visit_{t.__name__}"))
        if both:
            raise TypeError(f"{cls.__name__} both visits and ignores {', '.join(both)}")

    def visit(self, node: BaseModel, *args: Any) -> R:
        """The result of this walker's method for ``type(node)``, called with ``args``."""
        method = self._table.get(type(node))
        if method is None:
            method = type(self)._resolve(type(node))
        result: R = method(self, node, *args)
        return result

    def ignore(self, node: BaseModel, *args: Any) -> R:
        """What visiting a node class listed in ``ignores`` gives; a walker that lists any
        defines it (checked when the class is created)."""
        raise NotImplementedError  # pragma: no cover - __init_subclass__ refuses the class

    @classmethod
    def handles(cls, node_type: type[Any]) -> bool:
        """Whether ``visit`` accepts nodes of ``node_type`` (a method, or listed in ``ignores``)."""
        return hasattr(cls, f"visit_{node_type.__name__}") or node_type in cls.ignores

    @classmethod
    def _resolve(cls, node_type: type[Any]) -> Callable[..., Any]:
        method: Callable[..., Any] | None = getattr(cls, f"visit_{node_type.__name__}", None)
        if method is None:
            if node_type not in cls.ignores:
                raise UnhandledNode(cls, node_type)
            method = cls.ignore
        cls._table[node_type] = method
        return method


def node_types(*types: type[BaseModel]) -> frozenset[type[BaseModel]]:
    """A set of model classes, for ``ignores`` (typed one by one: a set literal of classes
    would be joined into their common base's constructor type)."""
    return frozenset(types)


# ---------------------------------------------------------------- generic contents


def fields(node: BaseModel) -> Iterator[Any]:
    """Every value in ``node``'s fields, in field order, with lists, tuples and mapping values
    opened (at any depth) but nodes inside not entered: scalars, None and child nodes."""
    for name in type(node).model_fields:
        yield from _opened(getattr(node, name))


def _opened(value: Any) -> Iterator[Any]:
    if isinstance(value, list | tuple):
        for item in value:
            yield from _opened(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _opened(item)
    else:
        yield value


def children(node: BaseModel) -> Iterator[BaseModel]:
    """The nodes directly inside ``node`` (through lists and mappings), in field order."""
    for value in fields(node):
        if isinstance(value, BaseModel):
            yield value


def descendants(node: BaseModel) -> Iterator[BaseModel]:
    """``node`` and every node below it, depth first, parents before children."""
    yield node
    for child in children(node):
        yield from descendants(child)
