"""figures: the producers of the docs' measured data tables (benchruns/studies/figures.py, benches/transfer_cases.py).

Each producer writes a ``table data=`` file that ``python -m benchruns docs`` renders: checked
here on small synthetic inputs in a scratch git repository, for the table format (read back
by docs' own ``read_data`` and rendered into a page), the commit (a modified checkout is
refused or marked -dirty), the load (a disturbed or unrecorded one is written but refused by
the docs) and bad input (one line, exit 2, nothing written).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from benchruns.studies import docs, figures
from benchruns import load as machine_load
from benchruns.history import synth
from benchruns.runs import BadInput

DATA = Path(__file__).parent / "data"
QUIET = {"schema": 1, "available": True, "threshold_cores": 0.1, "windows": 1, "benchmarks_s": 9.0,
         "own_cores": 1.0, "other_cores": 0.02, "steal_cores": 0.0, "disturbed": False, "why": "",
         "busiest_others": []}
BUSY = dict(QUIET, other_cores=0.9, disturbed=True,
            why="other processes used 0.90 of a core while benchmarks ran (limit 0.10)")
PAGE = "# Figures\n\n<!-- generated: table data=docs/data/{name}.json -->\n<!-- end generated -->\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def scratch_checkout(tmp_path: Path) -> Path:
    """A scratch git checkout with one commit, one tracked file."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "tracked.txt").write_text("one\n")
    git(root, "add", "tracked.txt")
    git(root, "commit", "-q", "-m", "one")
    return root


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """The checkout whose commit the tables name."""
    root = scratch_checkout(tmp_path)
    monkeypatch.setattr(figures, "ROOT", root)
    return root


def processes_file(path: Path, loads=("undisturbed",) * 10, n_bench: int = 6, seed: int = 1) -> Path:
    """Run medians of ``len(loads)`` synthetic processes of one commit (error-rates --save format)."""
    rng = np.random.default_rng(seed)
    n = len(loads) if loads is not None else 10
    doc = {"what": "run medians", "commit": "abc1234", "machine_key": "synthetic-2c-cpu-00000000",
           "profile": "quick", "sources": [f"2026010{i % 10}T000000Z_abc1234.json" for i in range(n)],
           "benchmarks": {f"benches/test_x.py::test_{i}": {
               "name": f"test_{i}", "group": "graph/x",
               "medians": [float(v) for v in 1e-3 * (i + 1) * np.exp(rng.normal(0, 0.05 * (i + 1), n))]}
               for i in range(n_bench)}}
    if loads is not None:
        doc["loads"] = list(loads)
    path.write_text(json.dumps(doc))
    return path


def render(root: Path, name: str, capsys) -> tuple[int, str, str]:
    """The page a docs block over the data file renders to (docs' own code), with its exit code and stderr."""
    page = root / "docs" / "page.md"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(PAGE.format(name=name))
    capsys.readouterr()
    code = docs.main(["--root", str(root), str(page)])
    _, err = capsys.readouterr()
    return code, page.read_text(), err


# --- change points ------------------------------------------------------------------------------


def test_changepoints_table_is_a_docs_table_naming_command_commit_and_processes(repo, capsys):
    procs = processes_file(repo / "procs.json")
    out = repo / "docs" / "data" / "changepoints.json"
    argv = ["changepoints", str(procs), "--out", str(out), "--histories", "4", "--results-dir", str(repo)]
    assert figures.main(argv) == 0
    meta, columns, rows = docs.read_data(out, "test", repo)
    assert meta["commit"] == git(repo, "rev-parse", "--short=7", "HEAD")
    assert meta["load"] == "undisturbed" and meta["source"].startswith("`python -m benchruns.studies.figures changepoints ")
    assert "synthetic-2c-cpu-00000000" in meta["machine"]
    assert "10 real quick processes of commit abc1234" in meta["title"]
    assert columns == ["what", "measured"]
    assert [r[0].split(":")[0] for r in rows] == [
        "false steps", "+10% step injected half way, found within 2 runs",
        "+25% step injected half way, found within 2 runs",
        "the 10 real processes in the order they ran, steps allowed between any two"]
    assert rows[3][1].endswith("of 6 benchmarks show a real step")
    code, page, err = render(repo, "changepoints", capsys)
    assert code == 0, err
    assert "| false steps: histories with a real step although nothing changed |" in page
    assert "commit " + meta["commit"] in page


def test_changepoint_rates_are_those_of_the_detector(repo):
    """The table quotes false_step_rates on the same medians, not a figure of its own."""
    doc = json.loads(processes_file(repo / "procs.json").read_text())
    _, _, rows, extra = figures.changepoints_table(doc, "procs.json", runs=20, histories=6)
    medians = {k: v["medians"] for k, v in doc["benchmarks"].items()}
    rates = figures.false_step_rates(medians, runs=20, histories=6, steps=(1.10, 1.25))
    assert rows[0][1].startswith(f"{100 * rates.false_step:.2f}% of benchmark histories")
    assert rows[2][1].startswith(f"{100 * rates.detection[1.25]:.0f}% of histories")
    assert extra["benchmarks"] == 6 and extra["loads"] == {"undisturbed": 10}


@pytest.mark.parametrize("loads, status", [
    (("undisturbed",) * 9 + ("disturbed",), "disturbed"),
    (("undisturbed",) * 9 + ("unrecorded",), "unrecorded"),
    (None, "unrecorded"),
])
def test_changepoints_from_runs_not_all_undisturbed_are_written_and_refused_by_docs(repo, capsys, loads, status):
    procs = processes_file(repo / "procs.json", loads=loads)
    out = repo / "docs" / "data" / "changepoints.json"
    assert figures.main(["changepoints", str(procs), "--out", str(out), "--histories", "2"]) == 0
    assert "refuses this file" in capsys.readouterr().err
    assert json.loads(out.read_text())["load"] == status
    with pytest.raises(BadInput, match="refused"):
        docs.read_data(out, "test", repo)
    code, page, err = render(repo, "changepoints", capsys)
    assert code == 2 and "not undisturbed" in err and page == PAGE.format(name="changepoints")


# --- the commit --------------------------------------------------------------------------------


def test_a_modified_checkout_is_refused_or_marked_dirty(repo, capsys):
    procs = processes_file(repo / "procs.json")
    out = repo / "out.json"
    (repo / "tracked.txt").write_text("two\n")
    assert figures.main(["changepoints", str(procs), "--out", str(out), "--histories", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tracked.txt" in err and "clean checkout" in err
    assert not out.exists()
    assert figures.main(["changepoints", str(procs), "--out", str(out), "--histories", "2", "--allow-dirty"]) == 0
    assert json.loads(out.read_text())["commit"] == git(repo, "rev-parse", "--short=7", "HEAD") + "-dirty"


def test_outside_a_git_checkout_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(figures, "ROOT", tmp_path)
    procs = processes_file(tmp_path / "procs.json")
    assert figures.main(["changepoints", str(procs), "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a git checkout" in err and not (tmp_path / "o.json").exists()


# --- history build -------------------------------------------------------------------------------


def test_injected_steps_replays_synth(tmp_path):
    """With no run-to-run spread, the benchmarks synth slowed are exactly the ones injected_steps names."""
    assert synth.main([str(DATA / "run_a.json"), str(tmp_path / "s"), "--runs", "10", "--spread", "0",
                       "--stepped", "0.5", "--seed", "7"]) == 0
    files = sorted((tmp_path / "s" / "synthetic").glob("*.json"))
    first, last = (json.loads(f.read_text())["benchmarks"] for f in (files[0], files[-1]))
    slowed = {a["fullname"] for a, b in zip(first, last) if b["stats"]["median"] > 1.05 * a["stats"]["median"]}
    names = [b["fullname"] for b in first]
    assert len(slowed) == 2 and figures.injected_steps(names, 0.5, 7) == slowed


def test_history_build_times_two_builds_in_a_load_window(repo):
    out = repo / "docs" / "data" / "history_build.json"
    run = repo / "run.json"
    run.write_text((DATA / "run_a.json").read_text())
    argv = ["history-build", str(run), "--runs", "20", "--spread", "0", "--stepped", "0.5", "--out", str(out)]
    assert figures.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["commit"] == git(repo, "rev-parse", "--short=7", "HEAD")
    assert doc["source"] == "`python -m benchruns.studies.figures " + " ".join(argv) + "`"
    assert doc["load_record"]["windows"] == 2  # the build and the rebuild, nothing else
    assert doc["load"] == machine_load.status(doc["load_record"])[0]
    rows = dict(doc["rows"])
    assert rows["input"].startswith("20 synthetic runs of 4 benchmarks")
    for label in ("build", "rebuild over the existing site"):
        wall, peak = rows[label].split(" s wall, ")
        assert float(wall) > 0 and int(peak.split(" MB")[0]) > 10  # a Python process with numpy loaded
    files = int(rows["site written"].split(" in ")[1].split()[0])
    assert files >= 4 + 3  # a page per benchmark, overview, regressions, machines
    assert rows["steps found"] == ("2 of the 2 injected +10% steps (within 2 runs of run 14); 0 false step(s) "
                                   "among the other 2 benchmarks")


def test_a_disturbed_history_build_is_written_and_refused_by_docs(repo, monkeypatch, capsys):
    def fake_build(run_path, runs, spread, share, seed, python, meter, log=print):
        meter.open()
        meter.close()
        return {"benchmarks": 4, "runs": runs, "stepped": 0, "at": 7, "input_bytes": 1, "input_files": 1,
                "builds": [("build", 1.0, 5e7)], "out_bytes": 2, "out_files": 2, "series": 4, "found": 0,
                "false_slower": 0, "false_faster": 1}

    monkeypatch.setattr(figures, "history_build", fake_build)
    monkeypatch.setattr(machine_load.LoadMeter, "record", lambda self: dict(BUSY))
    out = repo / "docs" / "data" / "history_build.json"
    assert figures.main(["history-build", str(DATA / "run_a.json"), "--runs", "10", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["load"] == "disturbed" and "0.90 of a core" in doc["load_why"]
    assert dict(doc["rows"])["steps found"].endswith("1 false step(s) (1 faster) among the other 4 benchmarks")
    code, page, err = render(repo, "history_build", capsys)
    assert code == 2 and "refused docs/data/history_build.json" in err


# --- peer harness -------------------------------------------------------------------------------


def test_peer_harness_table(repo, monkeypatch, capsys):
    cases = pytest.importorskip("benches.transfer_cases")
    figures_in = [(64 * cases.KiB, 4.0e-6, 4.4e-6), (4 * cases.MiB, 5.0e-4, 4.5e-4), (64 * cases.MiB, 1.0e-2, 1.0e-2)]
    monkeypatch.setattr(cases, "reference_agreement", lambda: figures_in)
    for record, status in ((QUIET, "undisturbed"), (BUSY, "disturbed")):
        monkeypatch.setattr(machine_load.LoadMeter, "record", lambda self, r=record: dict(r))
        out = repo / "docs" / "data" / "peer_harness.json"
        assert cases.main(["--out", str(out)]) == 0
        doc = json.loads(out.read_text())
        assert doc["load"] == status and doc["source"] == f"`python -m benches.transfer_cases --out {out}`"
        assert doc["rows"] == [["64KiB", "4 µs", "4.4 µs", "16.38", "1.100"],
                               ["4MiB", "500 µs", "450 µs", "8.39", "0.900"],
                               ["64MiB", "10 ms", "10 ms", "6.71", "1.000"]]
        code, page, err = render(repo, "peer_harness", capsys)
        assert code == (0 if status == "undisturbed" else 2), err
        if code == 0:
            assert "| 4MiB | 500 µs | 450 µs | 8.39 | 0.900 |" in page


def test_peer_harness_bad_input(repo, capsys):
    cases = pytest.importorskip("benches.transfer_cases")
    with pytest.raises(SystemExit) as exc:
        cases.main(["--bogus"])
    assert exc.value.code == 2 and capsys.readouterr().err.count("\n") == 1
    (repo / "tracked.txt").write_text("two\n")
    assert cases.main(["--out", str(repo / "o.json")]) == 2
    assert "modified" in capsys.readouterr().err and not (repo / "o.json").exists()


# --- bad input ----------------------------------------------------------------------------------


def _bad_processes(tmp: Path, how: str) -> Path:
    path = tmp / "procs.json"
    if how == "missing":
        return tmp / "nope.json"
    if how == "not json":
        path.write_text("{not json")
        return path
    processes_file(path)
    doc = json.loads(path.read_text())
    if how == "a list":
        doc = [doc]
    elif how == "no benchmarks":
        doc["benchmarks"] = {}
    elif how == "too few processes":
        doc["sources"], doc["loads"] = doc["sources"][:3], doc["loads"][:3]
        for b in doc["benchmarks"].values():
            b["medians"] = b["medians"][:3]
    elif how == "negative median":
        next(iter(doc["benchmarks"].values()))["medians"][0] = -1.0
    elif how == "short medians":
        next(iter(doc["benchmarks"].values()))["medians"].pop()
    elif how == "loads of another length":
        doc["loads"] = ["undisturbed"]
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("how", ["missing", "not json", "a list", "no benchmarks", "too few processes",
                                 "negative median", "short medians", "loads of another length"])
def test_bad_processes_file_is_one_line_and_exit_2(repo, capsys, how):
    out = repo / "out.json"
    assert figures.main(["changepoints", str(_bad_processes(repo, how)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("benchruns figures changepoints: ") and not out.exists()


@pytest.mark.parametrize("argv", [
    ["history-build", "nope.json"],
    ["history-build", "NOT_A_RUN"],  # JSON, but not a pytest-benchmark run
    ["history-build", str(DATA / "run_a.json"), "--runs", "5"],
    ["history-build", str(DATA / "run_a.json"), "--stepped", "2"],
    ["changepoints", "x.json", "--histories", "0"],
])
def test_bad_history_build_input_is_one_line_and_exit_2(repo, capsys, argv):
    out = repo / "out.json"
    (repo / "not_a_run.json").write_text(json.dumps({"benchmarks": {}, "what": "not a run"}))
    argv = [str(repo / "not_a_run.json") if a == "NOT_A_RUN" else a for a in argv]
    assert figures.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("benchruns figures ") and not out.exists()


@pytest.mark.parametrize("argv", [[], ["nothing"], ["changepoints"], ["history-build", "r.json", "--runs", "x"]])
def test_bad_command_line_is_one_line_and_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        figures.main(argv)
    assert exc.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_a_table_needs_rows_as_wide_as_its_columns():
    with pytest.raises(ValueError, match="one cell per column"):
        figures.table_doc("`x`", "m", "abc1234", "undisturbed", ["a", "b"], [["1"]])
