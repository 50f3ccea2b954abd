"""The package's layout is the reading guide: the translation on top, the tools beneath, imports one way.

DESIGN.md, "Architecture": ``ls repg2`` shows the translation modules (one
per Erlang module) and the subpackages, nothing else; ``tools`` and
``testing`` use the translation and never the reverse; the translation
modules form no import cycle (``kernel.erl`` names ``global`` in a child
spec, ``global.erl`` never names the kernel). Imports inside functions
count: a lazy import is still a dependency, and hiding a cycle in one is
how the ``global_`` <-> ``kernel`` cycle used to live.
"""

from __future__ import annotations

import ast
from pathlib import Path

from repg2.tools import xref

PACKAGE = xref.package_dir()
SUBPACKAGES = {"testing", "tools", "examples"}
NOT_TRANSLATION = ("repg2.testing", "repg2.tools", "repg2.examples")


def translation_modules() -> dict[str, Path]:
    """Map each translation module's name (``pg2``) to its file."""
    return {path.stem: path for path in xref.translation_modules()}


def imports_of(path: Path) -> set[str]:
    """Return every module a file imports, at any depth (``from repg2 import x`` counts as ``repg2.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def dependency_graph() -> dict[str, set[str]]:
    """Map each translation module to the translation modules it imports."""
    modules = translation_modules()
    return {
        name: {m.removeprefix("repg2.") for m in imports_of(path) if m.removeprefix("repg2.") in modules} - {name}
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_ls_repg2_shows_the_translation_and_the_subpackages_only() -> None:
    """Every file at the top of repg2 is a translation module (or __init__/__main__); every folder a subpackage."""
    entries = {p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == SUBPACKAGES
    assert all((PACKAGE / f / "__init__.py").exists() for f in folders)
    files = entries - folders
    assert {"__init__.py", "__main__.py"} <= files
    for name in files - {"__init__.py", "__main__.py"}:
        assert name.endswith(".py"), f"repg2/{name} is not a module"
        assert any(t.path == f"repg2/{name}" for t in xref.translations()), f"repg2/{name} translates nothing"


def test_translation_never_imports_tools_or_testing() -> None:
    """No translation module imports repg2.tools, repg2.testing or repg2.examples, not even inside a function."""
    offenders = {
        name: sorted(
            m for m in imports_of(path) if m.startswith(NOT_TRANSLATION) or m in {"repg2.tools", "repg2.testing"}
        )
        for name, path in translation_modules().items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_translation_modules_form_no_import_cycle() -> None:
    """The translation modules' imports form a DAG (kernel -> global_, never global_ -> kernel)."""
    graph = dependency_graph()
    assert "global_" in graph["kernel"] and "kernel" not in graph["global_"]
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_the_cycle_finder_finds_cycles() -> None:
    """The check can fail: a two-module cycle and a longer one are both reported."""
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
