"""Conditions: a small, closed expression language, checked when rules load and bounded by
construction.

Python's ``ast`` parses; this module decides what is allowed (docs/rules.md,
"Conditions"): names of the profile and ``event.<property>``; literals of bounded size;
``and`` ``or`` ``not``; comparisons, ``in``, ``is None``; and ``+ - * /`` on numbers.
Nothing else exists: no calls, no other attribute access, no subscripts, no ``**``.
Every operand's type is known from the names' sample values, so a type mistake is a
load-time error, and nothing is evaluated at load time. At run time each node runs once
per evaluation on bounded numbers and texts: time and memory are bounded by the length
of the condition.

A missing value (``None``) makes a comparison false, as in SQL; arithmetic with it gives
``None``. A condition that fails when it runs (a division by zero) is false: it is
counted on its ``Condition``, logged once with its ``file:line``, and never loses an event.

>>> cond = compile_condition("orders_count >= 3 and tier != 'member'", {"orders_count": 1, "tier": "x"})
>>> cond({"orders_count": 5, "tier": "gold"}), cond({"orders_count": 5, "tier": "member"})
(True, False)
>>> compile_condition("orders_cont >= 3", {"orders_count": 1})
Traceback (most recent call last):
...
rules.expressions.ConditionError: unknown name 'orders_cont'; did you mean 'orders_count'?
>>> compile_condition("tier.upper() == 'GOLD'", {"tier": "x"})
Traceback (most recent call last):
...
rules.expressions.ConditionError: column 1: calls are not part of the condition language (no functions or methods)
"""

from __future__ import annotations

import ast
import difflib
import logging
import math
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, Final

from rules.condition_closures import ARITHMETIC, EQUALITY, Program, lower

log = logging.getLogger("rapport.rules")

#: The language's bounds (docs/rules.md): a condition's length, its parts, its literals.
MAX_SOURCE_CHARS: Final = 500
MAX_NODES: Final = 120
MAX_NUMBER: Final = 1e12
MAX_TEXT_CHARS: Final = 200
MAX_LIST_ITEMS: Final = 64


class ConditionError(ValueError):
    """A condition that cannot be compiled: bad syntax, unknown name, a form outside the
    language, or a type mistake."""


class Kind(Enum):
    """What a value is, as far as the language cares."""

    NUMBER = "a number"
    TEXT = "text"
    BOOL = "true/false"
    SET = "a set of texts"
    NONE = "None"
    OTHER = "a value conditions cannot compare"
    LIST = "a list of literals"


class Condition:
    """A compiled condition: call it with a name → value mapping for true or false.

    ``failures`` counts the evaluations that failed (and were taken as false); ``rule``
    names it in metrics, ``where`` is its ``file:line:col`` once the loader knows it.
    """

    __slots__ = ("_program", "failures", "loc", "rule", "source", "where")

    def __init__(
        self, source: str, program: Program, rule: str, loc: tuple[str | int, ...] = ()
    ) -> None:
        self.source, self._program, self.rule, self.loc = source, program, rule, loc
        self.where = rule
        self.failures = 0

    def __call__(self, names: Mapping[str, Any]) -> bool:
        try:
            return self._program(names) is True
        except (ArithmeticError, TypeError, ValueError, AttributeError) as error:
            self.failures += 1
            if self.failures == 1:
                log.warning(
                    "condition at %s failed and counts as false (logged once; "
                    "rapport_condition_failures_total counts them): %s: %s in `%s`",
                    self.where,
                    type(error).__name__,
                    error,
                    self.source,
                )
            return False

    def __repr__(self) -> str:
        return f"Condition({self.source!r}, rule={self.rule!r})"


def compile_condition(
    source: str, sample: Mapping[str, Any], rule: str = "", loc: Sequence[str | int] = ()
) -> Condition:
    """Parse and check ``source`` once; return a ``Condition``.

    ``sample`` gives every allowed name a typical value (its type is the name's type);
    ``rule`` labels the condition (a journey or tag id and the field) in logs and metrics,
    ``loc`` is where it sits in its rule file (the loader turns it into ``file:line``).
    """
    if len(source) > MAX_SOURCE_CHARS:
        raise ConditionError(
            f"a condition is at most {MAX_SOURCE_CHARS} characters; this one has {len(source):,}"
        )
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as error:
        raise ConditionError(
            f"not a valid expression: {error.msg} at column {error.offset}"
        ) from error
    except (ValueError, RecursionError, MemoryError) as error:
        raise ConditionError(f"not a valid expression: {error}") from error
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise ConditionError(
            f"a condition has at most {MAX_NODES} parts; this one has {nodes}: split it"
        )
    checker = _Checker(sample)
    kind = checker.kind(tree.body)
    if kind is not Kind.BOOL:
        raise ConditionError(f"a condition must be true or false, this gives {kind.value}")
    return Condition(source, lower(tree.body), rule or source, tuple(loc))


# --- checking: the language and its types --------------------------------------------------

_SYMBOLS: Final = {
    ast.Pow: "**",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Invert: "~",
}
_FORMS: Final[dict[type, str]] = {
    ast.Call: "calls are not part of the condition language (no functions or methods)",
    ast.Subscript: "indexing (`x[...]`) is not part of the condition language",
    ast.IfExp: "`x if y else z` is not part of the condition language: use and / or",
    ast.Lambda: "lambdas are not part of the condition language",
    ast.NamedExpr: "`:=` is not part of the condition language",
    ast.JoinedStr: "f-strings are not part of the condition language",
    ast.Dict: "dicts are not part of the condition language",
    ast.Set: "sets are not part of the condition language: write a list after `in`",
    ast.ListComp: "comprehensions are not part of the condition language",
    ast.SetComp: "comprehensions are not part of the condition language",
    ast.DictComp: "comprehensions are not part of the condition language",
    ast.GeneratorExp: "comprehensions are not part of the condition language",
    ast.Starred: "`*` unpacking is not part of the condition language",
    ast.Await: "`await` is not part of the condition language",
    ast.Yield: "`yield` is not part of the condition language",
    ast.YieldFrom: "`yield` is not part of the condition language",
    ast.Slice: "slices are not part of the condition language",
}


def _kind_of(value: Any) -> Kind:
    if value is None:
        return Kind.NONE
    if isinstance(value, bool):
        return Kind.BOOL
    if isinstance(value, int | float):
        return Kind.NUMBER
    if isinstance(value, str):
        return Kind.TEXT
    if isinstance(value, frozenset | set):
        return Kind.SET
    return Kind.OTHER


class _Checker:
    """Walks a parsed condition: refuses what is outside the language, returns kinds."""

    def __init__(self, sample: Mapping[str, Any]) -> None:
        self.sample = sample

    def fail(self, node: ast.AST, message: str) -> ConditionError:
        column = getattr(node, "col_offset", None)
        where = f"column {column + 1}: " if column is not None else ""
        return ConditionError(where + message)

    def kind(self, node: ast.AST) -> Kind:
        form = _FORMS.get(type(node))
        if form is not None:
            raise self.fail(node, form)
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Attribute):
            return self._attribute(node)
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self._expect_bool(value, "and" if isinstance(node.op, ast.And) else "or")
            return Kind.BOOL
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.List | ast.Tuple):
            raise self.fail(node, "a list is only allowed right of `in` / `not in`")
        raise self.fail(node, f"`{type(node).__name__}` is not part of the condition language")

    def _constant(self, node: ast.Constant) -> Kind:
        value = node.value
        if isinstance(value, bool) or value is None:
            return _kind_of(value)
        if isinstance(value, int | float):
            if not (abs(value) <= MAX_NUMBER and math.isfinite(value)):
                raise self.fail(node, f"numbers are at most {MAX_NUMBER:,.0f} in size")
            return Kind.NUMBER
        if isinstance(value, str):
            if len(value) > MAX_TEXT_CHARS:
                raise self.fail(node, f"texts are at most {MAX_TEXT_CHARS} characters")
            return Kind.TEXT
        raise self.fail(node, f"{type(value).__name__} literals are not part of the language")

    def _name(self, node: ast.Name) -> Kind:
        if node.id == "event" and "event" in self.sample:
            raise self.fail(node, "`event` alone is not a value: write event.<property>")
        if node.id not in self.sample:
            known = [name for name in self.sample if name != "event"]
            hint = difflib.get_close_matches(node.id, known, n=1)
            suffix = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConditionError(f"unknown name {node.id!r}{suffix}")
        return _kind_of(self.sample[node.id])

    def _attribute(self, node: ast.Attribute) -> Kind:
        target = node.value
        if not (isinstance(target, ast.Name) and target.id == "event" and "event" in self.sample):
            raise self.fail(
                node,
                "attribute access is not part of the condition language, except "
                "event.<property> in a journey with an event trigger",
            )
        properties = self.sample["event"]
        if not hasattr(properties, node.attr):
            known = sorted(vars(properties))
            raise self.fail(
                node, f"the trigger event has no property {node.attr!r}; it has {known}"
            )
        return _kind_of(getattr(properties, node.attr))

    def _expect_bool(self, node: ast.AST, where: str) -> None:
        kind = self.kind(node)
        if kind is not Kind.BOOL:
            raise self.fail(
                node, f"`{where}` joins true/false tests; this part is {kind.value}: compare it"
            )

    def _unary(self, node: ast.UnaryOp) -> Kind:
        if isinstance(node.op, ast.Not):
            self._expect_bool(node.operand, "not")
            return Kind.BOOL
        if isinstance(node.op, ast.USub | ast.UAdd):
            if self.kind(node.operand) is not Kind.NUMBER:
                raise self.fail(node, "a sign (`-x`) needs a number")
            return Kind.NUMBER
        raise self.fail(node, f"`{_SYMBOLS.get(type(node.op), '?')}` is not part of the language")

    def _binary(self, node: ast.BinOp) -> Kind:
        if type(node.op) not in ARITHMETIC:
            symbol = _SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise self.fail(
                node, f"`{symbol}` is not part of the condition language: use + - * / only"
            )
        for side in (node.left, node.right):
            kind = self.kind(side)
            if kind is not Kind.NUMBER:
                raise self.fail(side, f"arithmetic needs numbers; this is {kind.value}")
        if (
            isinstance(node.op, ast.Div)
            and isinstance(node.right, ast.Constant)
            and node.right.value == 0
        ):
            raise self.fail(node.right, "division by zero")
        return Kind.NUMBER

    def _compare(self, node: ast.Compare) -> Kind:
        left = self.kind(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot):
                if not (isinstance(comparator, ast.Constant) and comparator.value is None):
                    raise self.fail(comparator, "`is` / `is not` only compare with None")
                right = Kind.NONE
            elif isinstance(op, ast.In | ast.NotIn):
                right = self._membership(left, comparator)
            else:
                right = self.kind(comparator)
                self._comparable(op, left, right, comparator)
            left = right
        return Kind.BOOL

    def _membership(self, left: Kind, node: ast.AST) -> Kind:
        if isinstance(node, ast.List | ast.Tuple):
            if len(node.elts) > MAX_LIST_ITEMS:
                raise self.fail(node, f"a list has at most {MAX_LIST_ITEMS} items")
            kinds = set()
            for item in node.elts:
                if not isinstance(item, ast.Constant):
                    raise self.fail(item, "a list after `in` holds literals only")
                kinds.add(self._constant(item))
            kinds.discard(Kind.NONE)
            if kinds and kinds != {left} and left is not Kind.NONE:
                wanted = ", ".join(sorted(k.value for k in kinds))
                raise self.fail(node, f"this list holds {wanted}, compared with {left.value}")
            return Kind.LIST
        right = self.kind(node)
        if right is Kind.SET and left is Kind.TEXT:
            return right
        if right is Kind.TEXT and left is Kind.TEXT:
            return right  # a part of the text
        raise self.fail(
            node,
            f"`in` looks for text in a set (tags), a text, or a list; here {left.value} in "
            f"{right.value}",
        )

    def _comparable(self, op: ast.cmpop, left: Kind, right: Kind, node: ast.AST) -> None:
        if Kind.OTHER in (left, right) or Kind.LIST in (left, right):
            raise self.fail(node, "this value cannot be compared")
        if type(op) in EQUALITY:
            if Kind.NONE in (left, right) or left is right:
                return
            raise self.fail(node, f"comparing {left.value} with {right.value} is never true")
        if left is Kind.NONE or right is Kind.NONE:
            raise self.fail(node, "order comparisons with None are never true: use `is None`")
        if left is not right or left not in (Kind.NUMBER, Kind.TEXT):
            raise self.fail(node, f"cannot order {left.value} against {right.value}")
