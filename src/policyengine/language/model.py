"""Stage 2, validate: the policy language as pydantic models, in one namespace.

These models are the single definition of the language: the validator, the compiler's input
types and the editor's JSON Schema all come from them. They live in ``expressions`` (operands,
history queries, conditions), ``actions`` (what rules do) and ``declarations`` (rules, labels,
metrics, parameters, event types, the file); ``schema`` derives the JSON Schema. Later stages
read them all from here: ``from policyengine.language import model as m``, then ``m.Rule``.

``OPERAND_MODELS``, ``CONDITION_MODELS``, ``ACTION_MODELS`` and ``NODE_MODELS`` list the model
classes, for walkers (``language.visitor``) and the tests that check they miss none.
"""

from __future__ import annotations

from typing import Any, Final, get_args

from pydantic import BaseModel

from policyengine.language import actions as _actions
from policyengine.language import declarations as _declarations
from policyengine.language import expressions as _expressions
from policyengine.language.actions import *  # noqa: F403
from policyengine.language.actions import _ACTION_MODELS as _ACTION_MODELS
from policyengine.language.actions import Action
from policyengine.language.actions import _action_tag as _action_tag
from policyengine.language.actions import _ActionBase as _ActionBase
from policyengine.language.declarations import *  # noqa: F403
from policyengine.language.declarations import _table_entry as _table_entry
from policyengine.language.expressions import *  # noqa: F403
from policyengine.language.expressions import _REF_RE as _REF_RE
from policyengine.language.expressions import Condition, Operand
from policyengine.language.expressions import _condition_tag as _condition_tag
from policyengine.language.expressions import _operand_tag as _operand_tag
from policyengine.language.expressions import _pair as _pair
from policyengine.language.expressions import _Strict as _Strict
from policyengine.language.expressions import _two_operands as _two_operands
from policyengine.language.schema import _FIELD_SHORT_FORMS as _FIELD_SHORT_FORMS
from policyengine.language.schema import _draft07 as _draft07
from policyengine.language.schema import policy_json_schema as policy_json_schema


def _members(union: Any) -> tuple[type[BaseModel], ...]:
    """The model classes of a tagged union (``Operand``, ``Condition``, ``Action``)."""
    value = getattr(union, "__value__", union)  # Operand is a named (recursive) alias
    found: list[type[BaseModel]] = []
    stack = [value]
    while stack:
        t = stack.pop(0)
        if isinstance(t, type):
            if issubclass(t, BaseModel):
                found.append(t)
            continue
        stack[:0] = list(get_args(t))
    return tuple(dict.fromkeys(found))


OPERAND_MODELS: Final[tuple[type[BaseModel], ...]] = _members(Operand)
CONDITION_MODELS: Final[tuple[type[BaseModel], ...]] = _members(Condition)
ACTION_MODELS: Final[tuple[type[BaseModel], ...]] = _members(Action)
# every model class of the language (the abstract bases ``_Strict`` and ``_ActionBase`` aside)
NODE_MODELS: Final[tuple[type[BaseModel], ...]] = tuple(
    dict.fromkeys(
        v
        for mod in (_expressions, _actions, _declarations)
        for v in vars(mod).values()
        if isinstance(v, type)
        and issubclass(v, BaseModel)
        and v.__module__ == mod.__name__
        and v not in (_Strict, _ActionBase)
    )
)
