"""Liquid parse trees compiled to Python functions: the output python-liquid's interpreter
gives, for the statements message templates use, at a fraction of the cost.

python-liquid stays the authority. It parses and checks every template, and the generated
code calls its own helpers for every rule of the language (``to_liquid_string``,
truthiness, ``==``, ``<``, ``contains``, item lookup, the filters themselves). What goes
is the interpreter's machinery around them: a node object, a context lookup through a
chain of scopes and a buffer write per statement. A part becomes one Python function, so
a render touches one code object instead of a tree of nodes; that is what matters in the
engine, where a render runs between thousands of other events with the CPU's caches cold.

The generated code is built only from this module's fragments: every value that comes
from a template (text, names, keys, literals, keyword names) goes in a tuple of constants
and is referred to by its index, so nothing a marketer writes becomes code.

Two rules keep the output exactly the interpreter's:

- a part with anything outside the compiled subset (``assign``, ``capture``, ``case``,
  ``forloop``, ``break``, loop modifiers, ranges, ternaries, ...) is not compiled: it is
  always interpreted;
- the compiled path only ever returns text on the ordinary path. Anything else (a name
  or key that is missing, a nil where a key is read, a filter that raises, a loop over
  something other than a list, a loop or output limit reached) makes it give up, and
  the interpreter renders the part instead, with its own result or its own error.

``rules/message_render.py: CompiledPart`` applies the two rules, and
``tests/rules/test_liquid_codegen.py`` holds the two side by side on every shipped
template, on the language's corners and on generated templates.

>>> from liquid import Environment
>>> env = Environment(autoescape=True)
>>> part = env.from_string("{% for i in items %}<b>{{ i.name | upcase }}</b>{% endfor %}")
>>> source, render = generate(part)
>>> out = []
>>> render({"items": [{"name": "a&b"}]}, out)
>>> "".join(out)
'<b>A&amp;B</b>'
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import Any, Final

from liquid import BoundTemplate, Markup, escape
from liquid.ast import BlockNode, Node
from liquid.builtin.content import ContentNode
from liquid.builtin.expressions import (
    BooleanExpression,
    Filter,
    FilteredExpression,
    KeywordArgument,
    Nil,
    Path,
    StringLiteral,
)
from liquid.builtin.expressions.logical import (
    ContainsExpression,
    EqExpression,
    GeExpression,
    GtExpression,
    LeExpression,
    LogicalAndExpression,
    LogicalOrExpression,
    LtExpression,
    NeExpression,
    _contains,
    _eq,
    _le,
    _lt,
    is_truthy,
)
from liquid.builtin.expressions.primitive import (
    FalseLiteral,
    FloatLiteral,
    IntegerLiteral,
    TrueLiteral,
)
from liquid.builtin.output import OutputNode
from liquid.builtin.tags.comment_tag import CommentNode
from liquid.builtin.tags.for_tag import ForNode
from liquid.builtin.tags.if_tag import IfNode
from liquid.builtin.tags.unless_tag import UnlessNode
from liquid.expression import Expression
from liquid.stringify import to_liquid_string

#: A compiled part: (the send's names, where its text goes) -> None.
Render = Callable[[Mapping[str, Any], list[str]], None]
#: Keys that ``get_item`` treats specially (``items.size``, ``items.first``).
_SPECIAL_KEYS: Final = frozenset(("size", "first", "last"))
_MISSING: Final = object()
_COMPARISONS: Final = {
    EqExpression: "_eq({a}, {b})",
    NeExpression: "not _eq({a}, {b})",
    LtExpression: "_lt(None, {a}, {b})",
    GtExpression: "_lt(None, {b}, {a})",
    LeExpression: "_le({a}, {b})",
    GeExpression: "_le({b}, {a})",
    ContainsExpression: "_contains(None, {a}, {b})",
}


#: How the reasons name what is left to the interpreter.
_TAGS: Final = {
    "AssignNode": "assign",
    "CaptureNode": "capture",
    "CaseNode": "case",
    "CycleNode": "cycle",
    "BreakNode": "break",
    "ContinueNode": "continue",
    "LiquidNode": "liquid",
    "RawNode": "raw",
    "TablerowNode": "tablerow",
    "IncrementNode": "increment",
    "DecrementNode": "decrement",
    "IfChangedNode": "ifchanged",
}
_EXPRESSIONS: Final = {
    "RangeLiteral": "a range (1..n)",
    "TernaryFilteredExpression": "an inline if",
    "Empty": "empty",
    "Blank": "blank",
}


class NotCompiled(Exception):
    """The part uses something the compiled subset leaves to the interpreter."""


class GiveUp(Exception):
    """This render met something only the interpreter decides."""


def generate(part: BoundTemplate, context_filters: Collection[object] = ()) -> tuple[str, Render]:
    """The Python source of ``part`` and the function it defines, which writes the part's
    text for the names it is given or raises (``GiveUp`` or whatever it met: the caller
    then asks the interpreter). ``context_filters``: filters taking the render context
    that may be called with a name resolver in its place (they read names with
    ``context.resolve`` only). Raises ``NotCompiled`` for a part outside the subset, and
    Python's own ``SyntaxError``/``RecursionError`` for one nested too deep for it."""
    return _Generator(part, context_filters).function()


class _Generator:
    """Python source for one part. Lines are indented by block; constants go in ``K``."""

    def __init__(self, part: BoundTemplate, context_filters: Collection[object]) -> None:
        self.part = part
        self.env = part.env
        self.autoescape = part.env.autoescape
        self.context_filters = context_filters
        self.constants: list[object] = []
        self.lines: list[str] = []
        self.indent = 1
        #: The identifier of each enclosing ``for``, outermost first (``l0``, ``l1``, ...).
        self.loops: list[str] = []
        self.temporaries = 0

    def function(self) -> tuple[str, Render]:
        self.emit("append = out.append")
        self.block(self.part.nodes, blank=False)
        source = "def render(g, out):\n" + "\n".join(self.lines) + "\n"
        namespace: dict[str, Any] = {
            "K": tuple(self.constants),
            "GiveUp": GiveUp,
            "Names": _Names,
            "_str": to_liquid_string,
            "_escape": escape,
            "_truthy": is_truthy,
            "_eq": _eq,
            "_lt": _lt,
            "_le": _le,
            "_contains": _contains,
            "_item": self.part.context_class(self.part).get_item,  # python-liquid's lookup
            "ITERATIONS": self.env.loop_iteration_limit,
            "OUTPUT": self.env.output_stream_limit,
        }
        # Built from this module's fragments only; the template's values are in ``K``.
        exec(compile(source, f"<template {self.part.name or 'part'}>", "exec"), namespace)
        render: Render = namespace["render"]
        return source, render

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def constant(self, value: object) -> str:
        self.constants.append(value)
        return f"K[{len(self.constants) - 1}]"

    def temporary(self) -> str:
        self.temporaries += 1
        return f"t{self.temporaries}"

    # -- statements -------------------------------------------------------------------

    def block(self, nodes: list[Node], *, blank: bool) -> None:
        hidden = blank and self.env.suppress_blank_control_flow_blocks
        if hidden:  # the interpreter renders a whitespace-only block to nowhere
            saved = self.temporary()
            self.emit(f"{saved} = out; out = []; append = out.append")
        start = len(self.lines)
        for node in nodes:
            self.node(node)
        if hidden:
            self.emit(f"out = {saved}; append = out.append")
        elif len(self.lines) == start:
            self.emit("pass")

    def node(self, node: Node) -> None:
        if isinstance(node, ContentNode):
            if node.text:
                self.emit(f"append({self.constant(node.text)})")
        elif isinstance(node, CommentNode):
            pass
        elif isinstance(node, OutputNode):  # ``{% echo %}`` too
            self.output(node.expression)
        elif isinstance(node, IfNode | UnlessNode):
            self.conditional(node)
        elif isinstance(node, ForNode):
            self.loop(node)
        elif isinstance(node, BlockNode):
            self.block(node.nodes, blank=node.blank)
        else:
            raise NotCompiled(_TAGS.get(type(node).__name__, type(node).__name__))

    def output(self, expression: Expression) -> None:
        value = self.temporary()
        self.emit(f"{value} = {self.value(expression)}")
        if self.autoescape:
            self.emit(f"append(_escape({value}) if type({value}) is str else _str({value}, True))")
        else:
            self.emit(f"append({value} if type({value}) is str else _str({value}, False))")

    def conditional(self, node: IfNode | UnlessNode) -> None:
        test = self.value(node.condition)
        self.emit(f"if {'not ' if isinstance(node, UnlessNode) else ''}{test}:")
        self.indented(node.consequence.nodes, node.consequence.blank)
        for branch in node.alternatives:
            self.emit(f"elif {self.value(branch.expression)}:")
            self.indented(branch.block.nodes, branch.block.blank)
        if node.default is not None:
            self.emit("else:")
            self.indented(node.default.nodes, node.default.blank)

    def indented(self, nodes: list[Node], blank: bool) -> None:
        self.indent += 1
        self.block(nodes, blank=blank)
        self.indent -= 1

    def loop(self, node: ForNode) -> None:
        spec = node.expression
        if spec.limit or spec.offset or spec.cols or spec.reversed:
            raise NotCompiled("limit, offset, cols or reversed on a for loop")
        depth = len(self.loops)
        items, length, written = f"i{depth}", f"n{depth}", f"w{depth}"
        self.emit(f"{items} = {self.value(spec.iterable)}")
        self.emit(f"if type({items}) is not list and type({items}) is not tuple: raise GiveUp")
        self.emit(f"if {items}:")
        self.indent += 1
        self.emit(f"{length} = len({items})")
        outer = "".join(f" * n{level}" for level in range(depth))
        self.emit(f"if ITERATIONS and {length}{outer} > ITERATIONS: raise GiveUp")
        self.emit(f"{written} = 0")
        self.loops.append(str(spec.identifier))
        self.emit(f"for l{depth} in {items}:")
        self.indent += 1
        mark = self.temporary()
        self.emit(f"{mark} = len(out)")
        self.block(node.block.nodes, blank=node.block.blank)
        self.emit(f"{written} += sum(map(len, out[{mark}:]))")
        self.emit(f"if OUTPUT is not None and {written} > OUTPUT: raise GiveUp")
        self.indent -= 2
        self.loops.pop()
        if node.default is not None:
            self.emit("else:")
            self.indented(node.default.nodes, node.default.blank)

    # -- expressions ------------------------------------------------------------------

    def value(self, expression: Expression) -> str:
        """A Python expression for ``expression``."""
        if isinstance(expression, Path):
            return self.path(expression)
        if isinstance(expression, FilteredExpression):
            code = self.value(expression.left)
            for item in expression.filters or ():
                code = self.filter(code, item)
            return code
        if isinstance(expression, StringLiteral):
            text = expression.value
            return self.constant(Markup(text) if self.autoescape else text)
        if isinstance(expression, IntegerLiteral | FloatLiteral | TrueLiteral | FalseLiteral):
            return self.constant(expression.value)
        if isinstance(expression, Nil):
            return "None"
        if isinstance(expression, BooleanExpression):
            return f"_truthy({self.value(expression.expression)})"
        if isinstance(expression, LogicalAndExpression | LogicalOrExpression):
            word = "and" if isinstance(expression, LogicalAndExpression) else "or"
            left, right = self.value(expression.left), self.value(expression.right)
            return f"(_truthy({left}) {word} _truthy({right}))"
        pattern = _COMPARISONS.get(type(expression))
        if pattern is not None:
            left = self.value(expression.left)  # type: ignore[attr-defined]
            right = self.value(expression.right)  # type: ignore[attr-defined]
            return "(" + pattern.format(a=left, b=right) + ")"
        raise NotCompiled(_EXPRESSIONS.get(type(expression).__name__, type(expression).__name__))

    def path(self, expression: Path) -> str:
        root, *keys = expression.path
        if not isinstance(root, str) or any(isinstance(key, Path) for key in keys):
            raise NotCompiled("a key computed from another name ([...])")
        code = self.name(root)
        for key in keys:
            constant = self.constant(key)
            if isinstance(key, str) and key not in _SPECIAL_KEYS:
                # A missing key raises KeyError: the interpreter's undefined decides.
                obj = self.temporary()
                code = (
                    f"({obj}[{constant}] if type({obj} := {code}) is dict"
                    f" else _item({obj}, {constant}))"
                )
            else:
                code = f"_item({code}, {constant})"
        return code

    def name(self, name: str) -> str:
        """A top-level name: the innermost loop variable of that name, else the send's."""
        if name == "forloop" and self.loops:
            raise NotCompiled("forloop")
        for depth in range(len(self.loops) - 1, -1, -1):
            if self.loops[depth] == name:
                return f"l{depth}"
        return f"g[{self.constant(name)}]"

    def filter(self, left: str, item: Filter) -> str:
        func = self.env.filters.get(item.name)
        if func is None:
            raise NotCompiled(f"filter {item.name}")
        if getattr(func, "with_environment", False):
            func = partial(func, environment=self.env)
        arguments = [left]
        keywords: list[str] = []
        for argument in item.args:
            if isinstance(argument, KeywordArgument):
                keywords.append(f"{self.constant(argument.name)}: {self.value(argument.value)}")
            else:
                arguments.append(self.value(argument.value))
        if getattr(func, "with_context", False):
            if func not in self.context_filters:
                raise NotCompiled(f"filter {item.name} reads the context")
            in_scope = ", ".join(
                f"{self.constant(loop)}: l{depth}" for depth, loop in enumerate(self.loops)
            )
            keywords.append(f"'context': Names(g, {{{in_scope}}})")
        call = f"{self.constant(func)}({', '.join(arguments)}"
        return call + (f", **{{{', '.join(keywords)}}})" if keywords else ")")


class _Names:
    """The part of a render context the context filters use: ``resolve``."""

    __slots__ = ("_g", "_loops")

    def __init__(self, g: Mapping[str, Any], loops: Mapping[str, Any]) -> None:
        self._g, self._loops = g, loops

    def resolve(self, name: str, *, default: object = _MISSING, token: object = None) -> Any:
        if name in self._loops:
            return self._loops[name]
        if name in self._g:
            return self._g[name]
        if default is _MISSING:
            raise GiveUp  # the interpreter's undefined
        return default
