"""The shape docs/architecture.md describes, checked: a pure core, layers that only import
downwards, no import cycle, and core modules small enough to read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ("schemas", "sentiment", "state", "rules", "churn", "engine")
#: Each package may import those before it, never those after it.
LAYERS = ("schemas", "sentiment", "state", "churn", "rules", "engine", "streams", "agents")
EDGE_LIBRARIES = frozenset(
    ("faust", "mode", "redis", "confluent_kafka", "aiokafka", "aiohttp", "prometheus_client")
)
#: "About 400 lines": the longest core module, the journey runtime, is 414.
MAX_CORE_MODULE_LINES = 420
#: The command line wires every layer together (it registers the worker's agents).
ENTRY_POINTS = frozenset(("streams.cli",))


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for folder in LAYERS for p in sorted((ROOT / folder).rglob("*.py"))}


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules ``path`` imports; with ``top_level_only``, only at import time (not inside
    functions, nor under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try) or (
                not top_level_only and isinstance(node, ast.FunctionDef | ast.ClassDef)
            ):
                visit(node.body)

    if top_level_only:
        visit(tree.body)
    else:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                visit([node])
    return found


def test_the_core_imports_no_broker_store_web_or_metrics_library() -> None:
    found = [
        f"{name} imports {imported}"
        for name, path in _modules().items()
        if name.split(".")[0] in CORE
        for imported in sorted(_imports(path, top_level_only=False))
        if imported.split(".")[0] in EDGE_LIBRARIES
    ]
    assert found == []


def test_packages_import_only_the_layers_below_them() -> None:
    rank = {package: n for n, package in enumerate(LAYERS)}
    found = [
        f"{name} imports {imported}"
        for name, path in _modules().items()
        if name not in ENTRY_POINTS
        for imported in sorted(_imports(path, top_level_only=False))
        if imported.split(".")[0] in rank
        and rank[imported.split(".")[0]] > rank[name.split(".")[0]]
    ]
    assert found == []


def test_no_module_imports_itself_back_through_others() -> None:
    modules = _modules()
    graph = {
        name: {m for m in _imports(path, top_level_only=True) if m in modules and m != name}
        for name, path in modules.items()
    }
    cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def strongly_connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                strongly_connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            strongly_connect(name)
    assert cycles == []


def test_core_modules_can_be_read_in_one_sitting() -> None:
    long = {
        name: lines
        for name, path in _modules().items()
        if name.split(".")[0] in CORE
        and (lines := len(path.read_text().splitlines())) > MAX_CORE_MODULE_LINES
    }
    assert long == {}
