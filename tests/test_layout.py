"""The package's layout is its design: folders in the order data flows, each importing only folders before it,
and no import circles between modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reranker"
# Lowest first. A module may import its own folder and the folders before its own, never one after it.
LAYERS = ["errors", "storage", "scoring", "files", "ranking", "explain", "view", "tuning", "bakeoff", "jobs",
          "integrations", "serve", "ui", "testing", "bench", "cli", "__main__", "__init__"]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``reranker`` module ``path`` imports, wherever the import statement stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "reranker"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "reranker":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from reranker.x import module`
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: {m for m in _imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def test_every_top_level_name_has_a_layer():
    assert {_layer(m) for m in MODULES} <= set(LAYERS), "add the new folder to LAYERS, in data-flow order"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layer_order(module):
    rank = LAYERS.index(_layer(module))
    # ``from reranker import Reranker`` reaches the engine: it counts as an import of ``scoring``.
    upward = sorted(m for m in GRAPH[module] if LAYERS.index("scoring" if m == "reranker" else _layer(m)) > rank)
    assert not upward, f"{module} imports {upward}, which come after {_layer(module)!r} in {LAYERS}"


def test_no_import_circles():
    visiting, done = [], set()

    def visit(node):
        if node in visiting:
            circle = visiting[visiting.index(node):] + [node]
            pytest.fail("import circle: " + " -> ".join(circle))
        if node in done:
            return
        visiting.append(node)
        for nxt in sorted(GRAPH[node]):
            if nxt != "reranker":  # the package's re-export of the engine, checked as ``scoring`` above
                visit(nxt)
        visiting.pop()
        done.add(node)

    for module in sorted(GRAPH):
        visit(module)
