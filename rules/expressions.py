"""Conditions: expressions compiled once at load time (simpleeval), checked against known names.

No ``eval`` and no parser of our own: simpleeval parses with Python's ``ast`` and walks only
a safe subset. Unknown names and type errors are found at load time by evaluating the
expression once against sample values.

>>> cond = compile_condition("orders_count >= 3 and tier != 'member'", {"orders_count": 1, "tier": "x"})
>>> cond({"orders_count": 5, "tier": "gold"}), cond({"orders_count": 5, "tier": "member"})
(True, False)
>>> compile_condition("orders_cont >= 3", {"orders_count": 1})
Traceback (most recent call last):
...
rules.expressions.ConditionError: unknown name 'orders_cont'; did you mean 'orders_count'?
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Mapping
from typing import Any

import simpleeval

Condition = Callable[[Mapping[str, Any]], bool]


class ConditionError(ValueError):
    """A condition that cannot be compiled: bad syntax, unknown name or a type error."""


def _names(tree: ast.AST) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def compile_condition(source: str, sample: Mapping[str, Any]) -> Condition:
    """Parse ``source`` once; return a function of a name → value mapping.

    At run time a comparison with a missing value (``None``) is false rather than an
    error, as in SQL; at load time every name must exist and types must fit ``sample``.
    """
    evaluator = simpleeval.SimpleEval(names=dict(sample), functions={})
    try:
        tree = evaluator.parse(source)
    except SyntaxError as error:
        raise ConditionError(
            f"not a valid expression: {error.msg} at column {error.offset}"
        ) from error
    for name in sorted(_names(tree) - set(sample) - {"None", "True", "False"}):
        hint = difflib.get_close_matches(name, list(sample), n=1)
        suffix = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConditionError(f"unknown name {name!r}{suffix}")
    try:
        result = evaluator.eval(source, previously_parsed=tree)
    except TypeError as error:
        raise ConditionError(f"type error: {error}") from error
    except simpleeval.InvalidExpression as error:
        raise ConditionError(str(error)) from error
    if not isinstance(result, bool):
        raise ConditionError(
            f"a condition must be true or false, this gives {type(result).__name__}"
        )

    def condition(names: Mapping[str, Any]) -> bool:
        evaluator.names = names
        try:
            return bool(evaluator.eval(source, previously_parsed=tree))
        except TypeError:
            return False

    return condition
