"""The import graph of a package, read with ``ast``: modules, floors and circles.

Every import statement counts, the ones inside functions too: a lazy import only delays
a cycle (report.py once imported cli's Parser inside a function while cli imports report
inside another), and a framework imported lazily still has to be installed. Imports under
``if TYPE_CHECKING:`` never run and are left out. A package's ``__init__`` that a submodule's
import runs first is not an edge: only what a statement names is.

``python -m tests.importgraph benchruns benches`` prints, per package, the number of
modules, of floors (the longest chain of imports inside the package, counted in modules:
a module that imports none of its package is on floor 1) and of circles (groups of modules
that import each other, directly or round a loop). tests/test_imports.py checks them.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def package_modules(package: Path) -> dict[str, Path]:
    """Every module under ``package`` by dotted name (a package by its own name, not ``__init__``)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_nodes(tree: ast.AST):
    """Every Import / ImportFrom that can run, anywhere in the module."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and _type_checking(node):
            children = node.orelse
        stack.extend(children)


def import_statements(name: str, path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names taken from it) per import in ``name``'s module; relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
        found.append((node.lineno, base, [alias.name for alias in node.names]))
    return sorted(found)


def import_graph(package: Path) -> dict[str, dict[str, int]]:
    """Module -> {module of the same package it imports: line of the first such import}.

    ``from pkg import name`` imports the submodule pkg.name where there is one, else takes
    a name from pkg itself.
    """
    modules = package_modules(package)
    graph: dict[str, dict[str, int]] = {m: {} for m in modules}
    for name, path in modules.items():
        for line, base, names in import_statements(name, path):
            targets = [f"{base}.{n}" if f"{base}.{n}" in modules else base for n in names] or [base]
            for target in targets:
                if target in modules and target != name:
                    graph[name].setdefault(target, line)
    return graph


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None. Depth-first, in sorted order so the answer is stable."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def describe(cycle: list[str], graph: dict[str, dict[str, int]], modules: dict[str, Path]) -> str:
    """The cycle on one line, then where each step's import is."""
    steps = [f"{a} imports {b} at line {graph[a][b]} of {modules[a].name}" for a, b in zip(cycle, cycle[1:])]
    return "import cycle: " + " -> ".join(cycle) + "\n  " + "\n  ".join(steps)


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Every group of modules that reach each other by imports (Tarjan's strongly connected
    components of more than one module), each sorted; a module never imports itself here."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, {})):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for start in sorted(graph):
        if start not in index:
            visit(start)
    return sorted(found)


def floors(graph: dict[str, dict[str, int]]) -> int:
    """The longest chain of imports, in modules; a circle counts as one module (its members share a floor)."""
    group_of = {m: m for m in graph}
    for group in circles(graph):
        for member in group:
            group_of[member] = group[0]
    edges: dict[str, set[str]] = {g: set() for g in set(group_of.values())}
    for module, targets in graph.items():
        edges[group_of[module]] |= {group_of[t] for t in targets if group_of[t] != group_of[module]}
    floor: dict[str, int] = {}

    def height(node: str) -> int:
        if node not in floor:
            floor[node] = 1 + max((height(n) for n in edges[node]), default=0)
        return floor[node]

    return max((height(g) for g in edges), default=0)


def summary(package: Path) -> dict:
    """Modules, floors and circles of one package."""
    graph = import_graph(package)
    return {"package": package.name, "modules": len(graph), "floors": floors(graph), "circles": circles(graph)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.importgraph", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("packages", nargs="+", metavar="PACKAGE", help="package folders, e.g. benchruns benches")
    args = p.parse_args(argv)
    for name in args.packages:
        package = Path(name)
        if not (package / "__init__.py").is_file():
            print(f"importgraph: {name}: not a package folder (no __init__.py)", file=sys.stderr)
            return 2
        s = summary(package)
        print(f"{s['package']}: {s['modules']} modules, {s['floors']} floors, {len(s['circles'])} circles"
              + "".join(f"\n  circle: {' <-> '.join(c)}" for c in s["circles"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
