"""The package's shape (issue #17): no import cycle, no module over 400 lines, a small ``daemon/``.

The import graph is read from the source with :mod:`ast`, not from ``sys.modules``, so that the
imports Python would only run later count as well: one inside a function, or under
``if TYPE_CHECKING:``. Such imports hide a cycle from the interpreter, not from a reader:
two modules that need each other are one responsibility split in the wrong place.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cloudwatcher

PACKAGE_DIR = Path(cloudwatcher.__file__).parent
MAX_LINES = 400
MAX_DAEMON_MODULES = 10


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module of the package that ``name`` imports, anywhere in its source.

    ``from package import name`` counts as an import of ``package.name`` when that is a module,
    else of ``package`` (whose ``__init__`` runs either way).
    """
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = name.split(".") if is_package else name.split(".")[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for following in sorted(graph[node]):
            if state.get(following) == 1:
                return [*path[path.index(following) :], following]
            if following not in state:
                cycle = visit(following)
                if cycle is not None:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle is not None:
                return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_sees_function_local_and_type_checking_imports(tmp_path: Path) -> None:
    """The check must be able to fail: the cycle shapes this package once hid are found."""
    a = tmp_path / "a.py"
    a.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cloudwatcher.b import B\n")
    b = tmp_path / "b.py"
    b.write_text("def f() -> None:\n    from cloudwatcher.a import g\n")
    known = {"cloudwatcher.a", "cloudwatcher.b"}
    graph = {
        "cloudwatcher.a": imported_modules("cloudwatcher.a", a, known),
        "cloudwatcher.b": imported_modules("cloudwatcher.b", b, known),
    }
    assert find_cycle(graph) == ["cloudwatcher.a", "cloudwatcher.b", "cloudwatcher.a"]


def test_no_module_is_over_400_lines() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in package_modules().items()}
    over = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them along their responsibilities): {over}"


def test_the_daemon_package_holds_at_most_ten_modules_directly() -> None:
    direct = sorted(path.name for path in (PACKAGE_DIR / "daemon").glob("*.py") if path.name != "__init__.py")
    assert len(direct) <= MAX_DAEMON_MODULES, f"cloudwatcher/daemon/ holds {len(direct)} modules: {direct}"
