"""The walkers over the policy model: one dispatch (``language.visitor``), no node class missed.

Each walker declares, per node class it can meet, a ``visit_<Class>`` method or that it
ignores the class on purpose; a class it can meet and does neither for is a bug that would
surface only on the policy that uses it, so it is caught here, for every walker at once.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from pydantic import BaseModel

from policyengine.backends import durable
from policyengine.language import compiler
from policyengine.language import model as m
from policyengine.language.visitor import (
    UnhandledNode,
    Visitor,
    children,
    descendants,
    fields,
    node_types,
)
from policyengine.tools import analysis

# the package re-exports the function `plan` under the module's name
plan = importlib.import_module("policyengine.backends.parallel.planner")
OPERANDS = frozenset(m.OPERAND_MODELS)
CONDITIONS = frozenset(m.CONDITION_MODELS)
ACTIONS = frozenset(m.ACTION_MODELS)
EVERY_NODE = frozenset(m.NODE_MODELS)

# walker -> the node classes it can be given (what the positions it walks may hold)
WALKERS: dict[type[Visitor[Any]], frozenset[type[BaseModel]]] = {
    compiler._Compiler: OPERANDS | CONDITIONS | ACTIONS,
    analysis._Uses: EVERY_NODE,
    analysis._Atom: CONDITIONS,
    analysis._Decides: ACTIONS,
    plan._Analyzer: OPERANDS | CONDITIONS | ACTIONS,
    plan._MetricReads: OPERANDS,
    plan._Guards: CONDITIONS,
    durable._Translator: CONDITIONS,
    durable._Safe: CONDITIONS | OPERANDS,
    durable._Lists: OPERANDS,
}


# ---------------------------------------------------------------- the model's node classes


def test_the_node_tables_match_the_tags() -> None:
    """The unions' members are the tagged models: one per key, the actions as tagged."""
    assert len(m.OPERAND_MODELS) == len(m.OPERAND_KEYS)
    assert len(m.CONDITION_MODELS) == len(m.CONDITION_KEYS)
    assert len(m.ACTION_MODELS) == len(m.ACTION_KEYS)
    assert set(m.ACTION_MODELS) == set(m._ACTION_MODELS)
    assert set(m._ACTION_MODELS.values()) == set(m.ACTION_KEYS)
    for cls in m.OPERAND_MODELS:  # the tag is the first field's name (or the lowercase class)
        first = next(iter(cls.model_fields.values()))
        name = next(iter(cls.model_fields))
        assert (first.alias or name) in m.OPERAND_KEYS, cls
    for cls in m.CONDITION_MODELS:
        name, first = next(iter(cls.model_fields.items()))
        assert (first.alias or name) in m.CONDITION_KEYS, cls
    assert not (OPERANDS & CONDITIONS) and not (OPERANDS & ACTIONS) and not (CONDITIONS & ACTIONS)


def test_every_model_class_is_a_node() -> None:
    models = {
        v
        for v in vars(m).values()
        if isinstance(v, type) and issubclass(v, BaseModel) and v.__module__.startswith("policy")
    }
    assert models - {m._Strict, m._ActionBase} == EVERY_NODE
    assert OPERANDS | CONDITIONS | ACTIONS <= EVERY_NODE


# ---------------------------------------------------------------- (a) no walker misses one


@pytest.mark.parametrize("walker", list(WALKERS), ids=lambda w: f"{w.__module__}.{w.__name__}")
def test_the_walker_handles_every_node_it_can_meet(walker: type[Visitor[Any]]) -> None:
    missing = sorted(c.__name__ for c in WALKERS[walker] if not walker.handles(c))
    assert not missing, f"{walker.__name__} has no visit_ method (and no `ignores`) for {missing}"


@pytest.mark.parametrize("walker", list(WALKERS), ids=lambda w: f"{w.__module__}.{w.__name__}")
def test_the_walker_visits_only_node_classes(walker: type[Visitor[Any]]) -> None:
    """A ``visit_`` method named after no model class (a typo) would never be called."""
    names = {c.__name__ for c in EVERY_NODE}
    stray = [a for a in dir(walker) if a.startswith("visit_") and a[6:] not in names]
    assert not stray
    assert walker.ignores <= EVERY_NODE


@pytest.mark.parametrize("walker", list(WALKERS), ids=lambda w: f"{w.__module__}.{w.__name__}")
def test_each_handled_node_resolves_to_one_function(walker: type[Visitor[Any]]) -> None:
    for cls in WALKERS[walker]:
        method = walker._resolve(cls)
        expected = getattr(walker, f"visit_{cls.__name__}", None)
        assert method is (expected if expected is not None else walker.ignore), cls


# ---------------------------------------------------------------- (b) a gap fails loudly


class _OnlyEq(Visitor[str]):
    def visit_Eq(self, node: m.Eq) -> str:
        return "eq"


def test_a_missing_method_names_the_walker_and_the_node() -> None:
    with pytest.raises(UnhandledNode) as info:
        _OnlyEq().visit(m.Ne(ne=[1, 2]))
    text = str(info.value)
    assert "_OnlyEq" in text and "Ne" in text and "visit_Ne" in text
    assert info.value.walker is _OnlyEq and info.value.node_type is m.Ne
    assert isinstance(info.value, TypeError)
    with pytest.raises(UnhandledNode):  # a second time too: failures are not cached
        _OnlyEq().visit(m.Ne(ne=[1, 2]))


def test_no_fallback_to_a_base_class_method() -> None:
    """ValuesQuery is a HistoryQuery, but a walker must say what it does with it."""

    class Queries(Visitor[str]):
        def visit_HistoryQuery(self, node: m.HistoryQuery) -> str:
            return "history"

    assert Queries().visit(m.HistoryQuery(type="a")) == "history"
    with pytest.raises(UnhandledNode, match="ValuesQuery"):
        Queries().visit(m.ValuesQuery(type="a", field="b"))


def test_a_value_that_is_no_node_fails_loudly() -> None:
    with pytest.raises(UnhandledNode, match="str"):
        _OnlyEq().visit("$event.x")  # type: ignore[arg-type]


def test_ignores_without_an_ignore_method_is_refused_at_definition() -> None:
    with pytest.raises(TypeError, match="ignore"):

        class Careless(Visitor[None]):
            ignores = node_types(m.Eq)


def test_a_class_both_visited_and_ignored_is_refused_at_definition() -> None:
    with pytest.raises(TypeError, match="both visits and ignores Eq"):

        class Confused(Visitor[None]):
            ignores = node_types(m.Eq)

            def ignore(self, node: BaseModel) -> None:
                return None

            def visit_Eq(self, node: m.Eq) -> None:
                return None


# ---------------------------------------------------------------- (c) the right method


class _Names(Visitor[str]):
    ignores = node_types(m.Exists)

    def ignore(self, node: BaseModel, suffix: str = "") -> str:
        return "ignored" + suffix

    def visit_Eq(self, node: m.Eq, suffix: str = "") -> str:
        return "eq" + suffix

    def visit_Ne(self, node: m.Ne, suffix: str = "") -> str:
        return "ne" + suffix

    def visit_All(self, node: m.All, suffix: str = "") -> str:
        return "all(" + ",".join(self.visit(c, suffix) for c in node.all) + ")"


class _Louder(_Names):
    def visit_Eq(self, node: m.Eq, suffix: str = "") -> str:
        return "EQ" + suffix


def test_dispatch_picks_the_method_of_the_class() -> None:
    walker = _Names()
    assert walker.visit(m.Eq(eq=[1, 2])) == "eq"
    assert walker.visit(m.Ne(ne=[1, 2])) == "ne"
    assert walker.visit(m.Exists(exists="$event.x")) == "ignored"
    assert walker.visit(m.Ne(ne=[1, 2]), "!") == "ne!"  # extra arguments are passed on
    nested = m.All(all=[m.Eq(eq=[1, 2]), m.Exists(exists=1), m.Ne(ne=[1, 2])])
    assert walker.visit(nested, "?") == "all(eq?,ignored?,ne?)"


def test_the_cache_is_per_walker_class() -> None:
    eq = m.Eq(eq=[1, 2])
    assert _Names().visit(eq) == "eq"
    assert _Louder().visit(eq) == "EQ"  # the parent's cached entry is not the child's
    assert _Names().visit(eq) == "eq"
    assert _Louder().visit(m.Ne(ne=[1, 2])) == "ne"  # inherited methods still resolve
    assert _Names._table is not _Louder._table is not Visitor._table
    assert _Names._table[m.Eq] is _Names.visit_Eq
    assert _Louder._table[m.Eq] is _Louder.visit_Eq


def test_the_compiler_dispatches_each_family() -> None:
    """The same walker compiles values, conditions and actions, each to its kind."""
    import policyengine as pe

    policy = pe.load_policy_text(
        """
policy: {id: t, title: T, version: "1"}
clauses: [{id: c1, text: t, reading: r}]
events:
  e: {fields: {customer: str, n: int}}
rules:
  - id: r
    clause: c1
    on: e
    when: {all: [{eq: [$event.n, 1]}, {not: {exists: $subject.owner}}]}
    then:
      - {set: {flag: n, value: {add: [$event.n, 1]}}}
      - assign: li
"""
    )
    rule = policy.program.compiled.rules[0]
    assert [a.kind for a in rule.actions] == ["set", "assign"]
    decision = policy.evaluate(
        [{"id": "1", "type": "e", "at": "2026-03-01T09:00:00+08:00", "customer": "C", "n": 1}]
    )
    assert decision.owner("C") == "li"


# ---------------------------------------------------------------- generic contents


def test_fields_children_and_descendants() -> None:
    q = m.HistoryQuery(type=["a", "b"], match={"x": "$event.x"}, within="1 day")
    cond = m.All(all=[m.History(history=q), m.Eq(eq=[{"count": {"type": "a"}}, 2]), True])
    assert list(fields(q)) == ["a", "b", "$event.x", "1 day", None, None]
    assert [type(c) for c in children(cond)] == [m.History, m.Eq]
    kinds = [type(n).__name__ for n in descendants(cond)]
    assert kinds == ["All", "History", "HistoryQuery", "Eq", "Count", "HistoryQuery"]
