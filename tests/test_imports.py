"""The packages' imports: no import circle in benchruns/ or benches/, and no framework in benchruns/.

The reader (tests/importgraph.py) counts every import statement, lazy ones too, and leaves
out ``if TYPE_CHECKING:`` imports, which never run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.importgraph import (circles, describe, find_cycle, floors, import_graph, import_statements, main,
                               package_modules)

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("torch", "tensorflow", "keras", "jax")


# --------------------------------------------------------------------------- the checks


@pytest.mark.parametrize("name, probe", [("benchruns", "benchruns.cli"), ("benches", "benches.test_input_pipelines")])
def test_package_has_no_import_cycle(name, probe):
    package = ROOT / name
    graph = import_graph(package)
    assert graph[probe], f"the reader found no imports in {probe}: it is broken, not the package clean"
    cycle = find_cycle(graph)
    assert cycle is None, describe(cycle, graph, package_modules(package))
    assert circles(graph) == []


def test_only_the_cli_reaches_into_the_studies():
    """The product does not lean on the project's own studies: outside benchruns/studies/, only cli.py
    (which names their commands) imports from it."""
    graph = import_graph(ROOT / "benchruns")
    leaning = sorted(f"{module} imports {target}" for module, targets in graph.items() for target in targets
                     if target.startswith("benchruns.studies") and not module.startswith("benchruns.studies")
                     and module != "benchruns.cli")
    assert graph["benchruns.cli"].keys() & {"benchruns.studies.docs", "benchruns.studies.errorrates"}
    assert not leaning, "\n".join(leaning)


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


def test_circles_and_floors_count_a_loop_once(tmp_path):
    """Two loops (a<->b, c->d->e->c) are two circles; floors count a circle as one module."""
    package = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\n", "pkg/b.py": "def f():\n    from . import a\n",
        "pkg/c.py": "from . import d\nfrom . import leaf\n", "pkg/d.py": "from . import e\n",
        "pkg/e.py": "from .c import x\n", "pkg/leaf.py": "", "pkg/top.py": "from . import a, c\n",
    })
    graph = import_graph(package)
    assert circles(graph) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.d", "pkg.e"]]
    assert floors(graph) == 3  # top -> {c, d, e} -> leaf
    assert floors(import_graph(_package(tmp_path / "flat", {"pkg/__init__.py": "", "pkg/x.py": ""}))) == 1


def test_importgraph_command_counts_and_refuses_a_non_package(tmp_path, capsys):
    package = _package(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "from . import b\n",
                                  "pkg/b.py": "from . import a\n"})
    assert main([str(package)]) == 0
    assert capsys.readouterr().out == "pkg: 3 modules, 1 floors, 1 circles\n  circle: pkg.a <-> pkg.b\n"
    assert main([str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"importgraph: {tmp_path / 'nowhere'}: not a package folder (no __init__.py)\n"
