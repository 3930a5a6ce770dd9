"""Running a checked condition (``rules/expressions.py``): the tree is lowered once, at load
time, to nested closures, so an evaluation is a few Python calls per node with no tree
walk and no ``eval``. A missing value (``None``) makes a comparison false; arithmetic
with it gives ``None``.

>>> import ast
>>> program = lower(ast.parse("a + 1 > b", mode="eval").body)
>>> program({"a": 2, "b": 2}), program({"a": None, "b": 2})
(True, False)
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

#: The operators, by their syntax node.
ARITHMETIC: Final[dict[type, Callable[[Any, Any], Any]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
ORDERING: Final[dict[type, Callable[[Any, Any], Any]]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
EQUALITY: Final[dict[type, Callable[[Any, Any], Any]]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}

#: A lowered expression: names in, value out.
Program = Callable[[Mapping[str, Any]], Any]

# --- lowering -------------------------------------


def lower(node: ast.AST) -> Program:
    """Closures computing the checked expression ``node``."""
    if isinstance(node, ast.Constant):
        value = node.value
        return lambda names: value
    if isinstance(node, ast.Name):
        name = node.id
        return lambda names: names[name]
    if isinstance(node, ast.Attribute):
        assert isinstance(node.value, ast.Name)
        holder, attribute = node.value.id, node.attr
        return lambda names: getattr(names[holder], attribute, None)
    if isinstance(node, ast.BoolOp):
        parts = tuple(lower(value) for value in node.values)
        return _boolean(parts, isinstance(node.op, ast.And))
    if isinstance(node, ast.UnaryOp):
        operand = lower(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda names: not operand(names)
        if isinstance(node.op, ast.USub):
            return lambda names: None if (value := operand(names)) is None else -value
        return operand
    if isinstance(node, ast.BinOp):
        return _arithmetic(ARITHMETIC[type(node.op)], lower(node.left), lower(node.right))
    if isinstance(node, ast.Compare):
        return _compare(node)
    raise AssertionError(f"unchecked node {type(node).__name__}")  # the checker refused it


def _arithmetic(apply: Callable[[Any, Any], Any], left: Program, right: Program) -> Program:
    def run(names: Mapping[str, Any]) -> Any:
        a, b = left(names), right(names)
        if a is None or b is None:
            return None  # a missing value stays missing
        return apply(a, b)

    return run


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


Test = Callable[[Any, Any], bool]


def _test(op: ast.cmpop, comparator: ast.AST) -> tuple[Test, Program]:
    """One link of a comparison: how it compares, and its right side."""
    if isinstance(op, ast.Is):
        return (lambda a, b: a is None), lower(comparator)
    if isinstance(op, ast.IsNot):
        return (lambda a, b: a is not None), lower(comparator)
    if isinstance(op, ast.In | ast.NotIn):
        negate = isinstance(op, ast.NotIn)
        if isinstance(comparator, ast.List | ast.Tuple):
            members = frozenset(
                item.value for item in comparator.elts if isinstance(item, ast.Constant)
            )
            right: Program = lambda names: members  # noqa: E731
        else:
            right = lower(comparator)

        def member(a: Any, b: Any) -> bool:
            if a is None or b is None:
                return False
            return (a not in b) if negate else (a in b)

        return member, right
    compare = {**ORDERING, **EQUALITY}[type(op)]
    if type(op) in EQUALITY:
        return compare, lower(comparator)

    def ordered(a: Any, b: Any) -> bool:
        return a is not None and b is not None and bool(compare(a, b))

    return ordered, lower(comparator)


def _compare_with_constant(node: ast.Compare) -> Program | None:
    """The most common shape, ``name <op> literal``, as one closure (conditions on every
    product view run it: about twice as fast as the general chain)."""
    if len(node.ops) != 1 or not isinstance(right := node.comparators[0], ast.Constant):
        return None
    op, value, head = node.ops[0], right.value, lower(node.left)
    if value is None:
        return None
    if type(op) in EQUALITY:
        equal = EQUALITY[type(op)]
        return lambda names: equal(head(names), value)
    if type(op) in ORDERING:
        compare = ORDERING[type(op)]

        def ordered(names: Mapping[str, Any]) -> bool:
            left = head(names)
            return left is not None and compare(left, value)

        return ordered
    return None


def _compare(node: ast.Compare) -> Program:
    fast = _compare_with_constant(node)
    if fast is not None:
        return fast
    head = lower(node.left)
    links: Sequence[tuple[Test, Program]] = tuple(
        _test(op, comparator) for op, comparator in zip(node.ops, node.comparators, strict=True)
    )
    if len(links) == 1:
        ((test, tail),) = links
        return lambda names: test(head(names), tail(names))

    def chain(names: Mapping[str, Any]) -> bool:
        right = head(names)
        for test, comparator in links:
            left, right = right, comparator(names)
            if not test(left, right):
                return False
        return True

    return chain
