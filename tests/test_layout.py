"""
The package's shape, read from the source of the installed provider: modules of about 400 lines at most, and no
import circle. Every import counts (at module level, inside a function, under ``TYPE_CHECKING``): a circle read
lazily still means neither module can be understood, or moved, without the other. ``from package import name``
is an edge to the package's ``__init__`` (which runs first), and to ``package.name`` too when that is a module;
``import package.module`` and ``from package.module import name`` are edges to the module alone (the parent
packages Python imports on the way would otherwise make every module depend on its package's ``__init__``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_provider_devrev

PACKAGE = Path(airflow_provider_devrev.__file__).parent
#: "About 400 lines": a module may run a little over while it holds one concern.
MAX_LINES = 420


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # The package itself runs first: `from package import module` depends on its __init__ too.
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(target for target in targets if target in known and target != name)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_a_circle_through_a_lazy_import():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(edges) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_relative_and_lazy_imports_are_edges(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from airflow_provider_devrev.hooks.devrev import DevRevHook\n"
        "def f():\n    from . import metrics\n"
    )
    known = {
        "airflow_provider_devrev",
        "airflow_provider_devrev.hooks.devrev",
        "airflow_provider_devrev.metrics",
        "airflow_provider_devrev.x",
    }
    edges = imports_of("airflow_provider_devrev.x", source, known)
    assert edges == {
        "airflow_provider_devrev",
        "airflow_provider_devrev.hooks.devrev",
        "airflow_provider_devrev.metrics",
    }


def test_no_two_modules_of_the_package_import_each_other():
    assert circles(graph()) == []


def test_no_module_is_much_over_400_lines():
    long = {
        name: lines for name, path in modules().items() if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
