"""The benchruns package's imports, read with ``ast``: no import cycle, and no framework.

Every import statement counts, the ones inside functions too: a lazy import only delays
a cycle (report.py once imported cli's Parser inside a function while cli imports report
inside another), and a framework imported lazily still has to be installed. Imports under
``if TYPE_CHECKING:`` never run and are left out. A package's ``__init__`` that a submodule's
import runs first is not an edge: only what a statement names is.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("torch", "tensorflow", "keras", "jax")


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


# --------------------------------------------------------------------------- the checks


def test_benchruns_has_no_import_cycle():
    package = ROOT / "benchruns"
    graph = import_graph(package)
    assert graph["benchruns.cli"], "the reader found no imports in cli.py: it is broken, not the package clean"
    cycle = find_cycle(graph)
    assert cycle is None, describe(cycle, graph, package_modules(package))


def test_benchruns_never_imports_a_framework():
    """Not even lazily: the tooling must run where neither framework is installed."""
    offenders = []
    for name, path in package_modules(ROOT / "benchruns").items():
        for line, base, _ in import_statements(name, path):
            if base.split(".")[0] in FRAMEWORKS:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {base}")
    assert not offenders, "benchruns must import neither torch nor TensorFlow:\n" + "\n".join(sorted(set(offenders)))


def test_importing_every_benchruns_module_loads_no_framework():
    """What ast cannot see: a third-party module that pulls a framework in on import."""
    names = sorted(m for m in package_modules(ROOT / "benchruns") if not m.endswith("__main__"))  # that one runs the CLI
    code = (f"import importlib, sys\nfor m in {names!r}: importlib.import_module(m)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", f"importing benchruns loaded {done.stdout.strip()}"


# --------------------------------------------------------------------------- the reader itself


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path / "pkg"


def test_a_cycle_through_lazy_relative_imports_is_found_and_named(tmp_path):
    """The shape benchruns had: cli imports report inside a function, report imports cli inside another."""
    package = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/argparsing.py": "class Parser: pass\n",
        "pkg/cli.py": "from .argparsing import Parser\n\ndef cmd():\n    from . import report\n",
        "pkg/report.py": "def build():\n    from .cli import Parser\n",
    })
    graph = import_graph(package)
    cycle = find_cycle(graph)
    assert cycle == ["pkg.cli", "pkg.report", "pkg.cli"]
    message = describe(cycle, graph, package_modules(package))
    assert "pkg.cli -> pkg.report -> pkg.cli" in message and "pkg.cli imports pkg.report at line 4 of cli.py" in message


def test_clean_package_and_type_checking_imports_pass(tmp_path):
    package = _package(tmp_path, {
        "pkg/__init__.py": "from .sub import thing\n",
        "pkg/sub/__init__.py": "from .leaf import thing\n",
        "pkg/sub/leaf.py": "import os\nfrom typing import TYPE_CHECKING\nthing = 1\n"
                           "if TYPE_CHECKING:\n    from pkg import sub\n",
        "pkg/other.py": "from .sub import leaf\nimport pkg.sub.leaf\n",
    })
    graph = import_graph(package)
    assert graph["pkg"] == {"pkg.sub": 1}
    assert graph["pkg.other"] == {"pkg.sub.leaf": 1}  # a submodule named, not its package
    assert graph["pkg.sub.leaf"] == {}  # the TYPE_CHECKING import never runs
    assert find_cycle(graph) is None
