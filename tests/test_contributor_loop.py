"""The contributor loop: ``make test``'s parallel runs, its serial list, its slowest-tests
summary, Ctrl-C during a parallel run, and the producer of the loop's times.

The producer (benchruns/studies/looptime.py) is checked on tiny stand-in commands in a
scratch git repository; timing the real loop is left to whoever writes the docs' table.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from benches.distributed.launcher import default_sigint
from benchruns import load as machine_load
from benchruns.studies import docs, looptime
from tests import slowest
from tests.conftest import SERIAL_MODULES, SERIAL_TESTS
from tests.test_figures import git, scratch_checkout

ROOT = Path(__file__).resolve().parent.parent
QUIET = {"schema": 1, "available": True, "threshold_cores": 0.1, "windows": 1, "benchmarks_s": 9.0,
         "own_cores": 1.0, "other_cores": 0.02, "steal_cores": 0.0, "disturbed": False, "why": "",
         "busiest_others": []}


# --------------------------------------------------------------------------- the serial list


def test_every_serial_entry_names_a_test_that_exists():
    """A renamed test would silently lose its serial mark: each entry must name a real module and function."""
    for module in SERIAL_MODULES:
        assert (ROOT / "tests" / module).is_file(), f"SERIAL_MODULES names {module}, which does not exist"
    for entry in SERIAL_TESTS:
        module, _, name = entry.partition("::")
        tree = ast.parse((ROOT / "tests" / module).read_text())
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert name in names, f"SERIAL_TESTS names {entry}, which does not exist"


def test_serial_marks_reach_the_collected_items():
    """What `make test`'s second run selects with -m serial: a listed test, and a test using
    pytest-benchmark's fixture (xdist workers do not time); a listed module whole is checked below.
    Benchmark cases collected in the same session (make test's first run holds tests/ and the smoke
    profile) use the fixture too, and are never marked: they run in the parallel session."""
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/test_load.py", "tests/test_distributed.py",
                           "benches/test_distributed.py", "--profile=smoke",
                           "-m", "serial", "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    selected = {line.split("[")[0] for line in done.stdout.splitlines() if "::" in line}
    listed = {f"tests/{entry}" for entry in SERIAL_TESTS if entry.split("::")[0] in ("test_load.py",
                                                                                     "test_distributed.py")}
    with_benchmark = {"tests/test_distributed.py::test_recorded_rounds_become_the_benchmark_stats"}
    assert selected == listed | with_benchmark
    assert "tests/test_load.py::test_status_of_records" not in selected


def test_make_test_is_two_runs_the_serial_tests_and_the_distributed_cases_share_the_second():
    """`make test` has two pytest runs. The second holds the serial tests and the distributed smoke cases:
    one start-up of both frameworks fewer than a run for each. The benchmark fixture is on there (the serial
    tests that use it check what it records); the first run, across the cores, has it off."""
    dry = subprocess.run(["make", "-n", "test", f"PYTHON={sys.executable}"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    parallel, alone = [line for line in dry.stdout.splitlines() if " -m pytest " in line]
    assert '-m "not serial and not distributed"' in parallel and "--benchmark-disable" in parallel
    assert "--profile=smoke" in parallel and "-n auto" in parallel
    assert '-m "serial or distributed"' in alone and "--profile=smoke" in alone
    assert "--benchmark-disable" not in alone and "-n " not in alone and "xdist" not in alone


def test_figures_reported_inside_xdist_workers_reach_the_end_of_the_run(tmp_path):
    """The error-rate tests run in the parallel pass; what they measured must still show (a print in an xdist
    worker is lost), and a failing test's figures too."""
    (tmp_path / "test_f.py").write_text(textwrap.dedent("""
        def test_one(figures):
            figures("false alarms 1.5% over 2000 jobs")

        def test_two(figures):
            figures("detection 93% at 10%")
            assert False
    """))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env = {k: v for k, v in env.items() if not k.startswith("PYTEST_XDIST")}
    done = subprocess.run([sys.executable, "-m", "pytest", "test_f.py", "-p", "tests.conftest", "-n", "2",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", os.devnull],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "2 workers" in done.stdout  # really run across processes
    for name, text in (("test_one", "false alarms 1.5% over 2000 jobs"), ("test_two", "detection 93% at 10%")):
        assert f"figures: {name} " in done.stdout and text in done.stdout


def test_a_listed_module_is_serial_whole(monkeypatch):
    from tests import conftest

    monkeypatch.setitem(conftest.SERIAL_MODULES, "test_whole.py", "why")
    item = SimpleNamespace(path=Path("tests/test_whole.py"), originalname="test_any", fixturenames=["tmp_path"])
    assert conftest.serial_reason(item) == "why"
    plain = SimpleNamespace(path=Path("tests/test_other.py"), originalname="test_any", fixturenames=["tmp_path"])
    assert conftest.serial_reason(plain) is None
    timed = SimpleNamespace(path=Path("tests/test_other.py"), originalname="test_any", fixturenames=["benchmark"])
    assert conftest.serial_reason(timed) == conftest.BENCHMARK_FIXTURE


# --------------------------------------------------------------------------- Ctrl-C in a parallel run

SLEEPY_TESTS = textwrap.dedent("""
    import os, pathlib, time
    import pytest

    @pytest.mark.parametrize("n", range(4))
    def test_sleeps(n):
        pathlib.Path(os.environ["PIDS"], f"{os.getpid()}-{n}").write_text("")
        time.sleep(120)
""")


def _session_members(sid: int) -> list[int]:
    """Live processes whose session is ``sid`` (field 6 of /proc/PID/stat), zombies left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry.name))
    return found


def test_ctrl_c_during_a_parallel_run_leaves_no_process(tmp_path):
    """SIGINT to the whole foreground group, as a terminal's Ctrl-C sends it, while two xdist workers
    are inside tests: the run ends and no process of its session is left."""
    pytest.importorskip("xdist", reason="pytest-xdist is not installed here (requirements.txt pins it)")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_sleepy.py").write_text(SLEEPY_TESTS)
    pids = tmp_path / "pids"
    pids.mkdir()

    def new_session():  # a session of its own: its own foreground group, and SIGINT acting again
        os.setsid()
        default_sigint()

    runner = subprocess.Popen([sys.executable, "-m", "pytest", str(project), "-n", "2", "-p", "no:cacheprovider",
                               "-q"], cwd=project, env=dict(os.environ, PIDS=str(pids)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=new_session)
    try:
        deadline = time.monotonic() + 120
        while len(list(pids.iterdir())) < 2:  # both workers are inside a test
            assert runner.poll() is None, runner.stdout.read()[-2000:]
            assert time.monotonic() < deadline, "the workers never started a test"
            time.sleep(0.1)
        workers = {int(p.name.split("-")[0]) for p in pids.iterdir()}
        assert len(workers) == 2, "two tests ran in one process: not a parallel run"
        os.killpg(runner.pid, signal.SIGINT)
        runner.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _session_members(runner.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _session_members(runner.pid) == [], "processes left behind after Ctrl-C"
        assert runner.returncode != 0 and "KeyboardInterrupt" in runner.stdout.read()
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
        for pid in _session_members(runner.pid):
            os.kill(pid, signal.SIGKILL)


REPORT_IMPORTS = """
import json, os, sys

def pytest_sessionfinish(session):
    role = session.config.workerinput["workerid"] if hasattr(session.config, "workerinput") else "controller"
    with open(os.path.join(os.environ["IMPORTS_OUT"], role + ".json"), "w") as f:
        json.dump({name: name in sys.modules for name in ("torch", "tensorflow")}, f)
"""
# Stand-ins for torch and tensorflow, so the test below costs no real import: any attribute, call or
# assignment the suite's conftest makes on them works and does nothing.
STAND_IN = """
class _Anything:
    def __call__(self, *args, **kwargs):
        return self
    def __getattr__(self, name):
        return self
    def __setattr__(self, name, value):
        pass
    def __iter__(self):
        return iter(())

def __getattr__(name):
    return _Anything()
"""


def test_the_xdist_controller_leaves_the_frameworks_to_its_workers(tmp_path):
    """Under pytest-xdist the controller runs no test, so it does not import torch and TensorFlow (seconds
    each, before any worker starts); each worker still does, in the suite's conftest."""
    pytest.importorskip("xdist", reason="pytest-xdist is not installed here (requirements.txt pins it)")
    plugin = tmp_path / "plugin"
    for name in ("torch", "tensorflow"):
        (plugin / name).mkdir(parents=True)
        (plugin / name / "__init__.py").write_text(STAND_IN)
    (plugin / "report_imports.py").write_text(REPORT_IMPORTS)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, IMPORTS_OUT=str(out), PYTHONPATH=os.pathsep.join([str(plugin), str(ROOT)]))
    done = subprocess.run([sys.executable, "-m", "pytest", "tests/test_durations.py", "-n", "1", "-q",
                           "-p", "no:cacheprovider", "-p", "report_imports"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    seen = {p.stem: json.loads(p.read_text()) for p in out.iterdir()}
    assert seen == {"controller": {"torch": False, "tensorflow": False}, "gw0": {"torch": True, "tensorflow": True}}


# --------------------------------------------------------------------------- the slowest tests


def junit(path: Path, cases: dict[str, float]) -> Path:
    body = "".join(f'<testcase classname="tests.test_x" name="{name}" time="{t}"/>' for name, t in cases.items())
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{body}</testsuite></testsuites>')
    return path


def test_slowest_ranks_the_tests_of_every_report(tmp_path, capsys):
    a = junit(tmp_path / "a.xml", {"test_fast": 0.5, "test_slow": 9.0})
    b = junit(tmp_path / "b.xml", {"test_middle": 3.25})
    assert slowest.main([str(a), str(b), "--top", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("slowest 2 of 3 tests") and "13 s in tests" in out[0]
    assert out[1:] == ["    9.00s  tests.test_x::test_slow", "    3.25s  tests.test_x::test_middle"]


@pytest.mark.parametrize("text", ["not xml at all", "<html><body/></html>"], ids=["not-xml", "not-junit"])
def test_slowest_refuses_a_file_that_is_no_junit_report_in_one_line(tmp_path, capsys, text):
    bad = tmp_path / "bad.xml"
    bad.write_text(text)
    assert slowest.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"slowest: {bad}: not a JUnit XML report") and err.count("\n") == 1


# --------------------------------------------------------------------------- the producer of the loop's times


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A scratch git checkout with one commit: the checkout whose commit the table names, where commands run."""
    root = scratch_checkout(tmp_path)
    monkeypatch.setattr(looptime, "ROOT", root)
    return root


def fake_pytest(counts: str, seconds: float = 0.05, code: int = 0) -> str:
    """A stand-in for make test: sleeps, prints pytest's closing line, exits with ``code``."""
    script = f"import time, sys; time.sleep({seconds}); print('===== {counts} in 0.05s ====='); sys.exit({code})"
    return f"{sys.executable} -c \"{script}\""


def test_loop_table_times_each_command_and_renders_in_the_docs(repo, monkeypatch, capsys):
    monkeypatch.setattr(machine_load.LoadMeter, "record", lambda self: dict(QUIET))
    out = repo / "docs" / "data" / "contributor_loop.json"
    argv = ["--out", str(out), "--command", "quick=" + fake_pytest("3 passed, 1 skipped", 0.2),
            "--command", f"tmp={sys.executable} -c 'import os, sys; assert os.path.isdir(sys.argv[1])' {{tmp}}"]
    assert looptime.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["commit"] == git(repo, "rev-parse", "--short=7", "HEAD") and doc["load"] == "undisturbed"
    assert doc["source"].startswith("`python -m benchruns.studies.looptime --out ")
    assert doc["columns"] == ["command", "wall time", "pytest says", "reference probe before it (µs a call)"]
    (label, wall, counts, speed), (label2, _, counts2, _) = doc["rows"]
    assert label == "`quick`" and counts == "3 passed, 1 skipped" and 0.2 <= float(wall.split()[0]) < 30
    assert 1 < float(speed) < 100_000  # the probe's median call, timed before the command (about 80-100 µs here)
    assert label2 == "`tmp`" and counts2 == "–"  # {tmp} became a folder that exists; no pytest line
    page = repo / "docs" / "page.md"
    page.write_text("<!-- generated: table data=docs/data/contributor_loop.json -->\n<!-- end generated -->\n")
    assert docs.main(["--root", str(repo), str(page)]) == 0
    assert "| `quick` | " in page.read_text() and "3 passed, 1 skipped" in page.read_text()


def test_default_loop_is_make_test_and_the_quick_profile_into_a_temporary_folder():
    commands = looptime.parse_commands(None)
    assert list(commands) == ["make test", "make bench PROFILE=quick"]
    assert commands["make bench PROFILE=quick"] == "make bench PROFILE=quick RESULTS={tmp}"


def test_pytest_counts_joins_every_closing_line():
    output = ("..\n===== 380 passed, 4 skipped in 61.20s (0:01:01) =====\nnoise\n"
              "== 24 passed, 380 deselected in 9.1s ==\n")
    assert looptime.pytest_counts(output) == "380 passed, 4 skipped; 24 passed, 380 deselected"


def test_a_failing_command_writes_nothing_and_says_why(repo, capsys):
    out = repo / "loop.json"
    assert looptime.main(["--out", str(out), "--command", "broken=" + fake_pytest("1 failed", code=1)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("benchruns looptime: broken exited 1; nothing written") and "1 failed" in err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--command", "no-equals-sign"], "bad --command 'no-equals-sign': LABEL=COMMAND"),
    (["--command", "x=python -c 'unclosed"], "bad --command \"x=python -c 'unclosed\": No closing quotation"),
    (["--command", "missing=/nonexistent/tool"], "missing: cannot start '/nonexistent/tool'"),
    # the second command cannot start: refused before the first one is timed
    (["--command", "ok=true", "--command", "make bench PROFILE=quick=make bench"],
     "make bench PROFILE: cannot start 'quick=make'"),
], ids=["no-label", "bad-quoting", "no-such-program", "equals-in-label"])
def test_bad_input_is_one_line_and_exit_2(repo, capsys, argv, message):
    out = repo / "loop.json"
    assert looptime.main(["--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()


def test_a_modified_checkout_is_refused_or_marked_dirty(repo, monkeypatch, capsys):
    monkeypatch.setattr(machine_load.LoadMeter, "record", lambda self: dict(QUIET))
    (repo / "tracked.txt").write_text("two\n")
    out = repo / "loop.json"
    command = ["--command", "quick=" + fake_pytest("1 passed")]
    assert looptime.main(["--out", str(out), *command]) == 2
    assert "tracked files are modified" in capsys.readouterr().err and not out.exists()
    assert looptime.main(["--out", str(out), *command, "--allow-dirty"]) == 0
    assert json.loads(out.read_text())["commit"].endswith("-dirty")
