"""Conditions: expressions compiled once at load time (simpleeval), checked against known names.

No ``eval`` and no parser of our own: simpleeval parses with Python's ``ast`` and defines
the safe subset. Unknown names and type errors are found at load time by evaluating the
expression once against sample values with simpleeval.

For speed, the checked tree is then turned into nested closures, once: names, constants,
``and``/``or``/``not``, comparisons and arithmetic call simpleeval's own operator table
directly instead of dispatching on node types on every call (about 5x faster on the
shipped conditions; docs/decisions.md). Any other node (attribute access such as
``event.rating``, calls, subscripts) is still evaluated by simpleeval itself, so the
language and its safety limits stay simpleeval's.

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

    program = _lower(tree, evaluator, source)

    def condition(names: Mapping[str, Any]) -> bool:
        evaluator.names = names  # read by subtrees simpleeval evaluates itself
        try:
            return bool(program(names))
        except TypeError:
            return False

    return condition


Program = Callable[[Mapping[str, Any]], Any]


def _lower(node: ast.AST, evaluator: simpleeval.SimpleEval, source: str) -> Program:
    """Closures computing what ``evaluator.eval(source, previously_parsed=node)`` would."""
    operators = evaluator.operators
    if isinstance(node, ast.Expr):
        return _lower(node.value, evaluator, source)
    if isinstance(node, ast.Constant):
        value = evaluator.eval(source, previously_parsed=node)  # applies simpleeval's limits
        return lambda names: value
    if isinstance(node, ast.Name) and node.id not in ("None", "True", "False"):
        name = node.id

        def lookup(names: Mapping[str, Any]) -> Any:
            try:
                return names[name]
            except KeyError:
                raise simpleeval.NameNotDefined(name, source) from None

        return lookup
    if isinstance(node, ast.BoolOp):
        parts = tuple(_lower(value, evaluator, source) for value in node.values)
        return _boolean(parts, isinstance(node.op, ast.And))
    if isinstance(node, ast.UnaryOp) and type(node.op) in operators:
        unary = operators[type(node.op)]
        operand = _lower(node.operand, evaluator, source)
        return lambda names: unary(operand(names))
    if isinstance(node, ast.BinOp) and type(node.op) in operators:
        binary = operators[type(node.op)]
        left, right = _lower(node.left, evaluator, source), _lower(node.right, evaluator, source)
        return lambda names: binary(left(names), right(names))
    if isinstance(node, ast.Compare) and all(type(o) in operators for o in node.ops):
        return _compare(node, evaluator, source)
    return lambda names: evaluator.eval(source, previously_parsed=node)


def _boolean(parts: tuple[Program, ...], is_and: bool) -> Program:
    """``and`` (stops at the first false part) or ``or`` (at the first true one)."""
    if len(parts) == 2:
        first, second = parts
        if is_and:
            return lambda names: first(names) and second(names)
        return lambda names: first(names) or second(names)

    def run(names: Mapping[str, Any]) -> Any:
        result: Any = False
        for part in parts:
            result = part(names)
            if bool(result) is not is_and:
                break
        return result

    return run


def _compare(node: ast.Compare, evaluator: simpleeval.SimpleEval, source: str) -> Program:
    head = _lower(node.left, evaluator, source)
    links = tuple(
        (evaluator.operators[type(operation)], _lower(comparator, evaluator, source))
        for operation, comparator in zip(node.ops, node.comparators, strict=True)
    )
    if len(links) == 1:
        ((compare, tail),) = links
        return lambda names: compare(head(names), tail(names))

    def chain(names: Mapping[str, Any]) -> Any:
        right = head(names)
        result: Any = True
        for compare, comparator in links:
            left, right = right, comparator(names)
            result = compare(left, right)
            if not result:
                break
        return result

    return chain
