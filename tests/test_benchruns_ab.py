"""ab with a fake pytest runner: alternation order, pooling, gating, worktree clean-up.

No benchmark runs here: the runner writes a recorded run (scaled for side B) where
pytest would have written its JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from benchruns import ab
from benchruns.runs import BadInput, load_run

DATA = Path(__file__).parent / "data"


def test_plan_alternates():
    assert ab.plan(2) == [("A", 0), ("B", 0), ("A", 1), ("B", 1)]


def test_pool_concatenates_rounds():
    run = load_run(DATA / "run_a.json")
    pooled = ab.pool([run, run], "A")
    for name, bench in pooled.benchmarks.items():
        assert bench.data.size == 2 * run.benchmarks[name].data.size
        assert bench.median == pytest.approx(np.median(run.benchmarks[name].data))


def args(**kw):
    base = dict(base_ref="", k="", repeat=2, python="python", base_python=None, profile="quick",
                threshold="10%", config=None, no_config=True, alpha=0.01, format="table")
    base.update(kw)
    return argparse.Namespace(**base)


class FakeRunner:
    """Writes run_a.json (x factor on side B) to the --benchmark-json path; records calls."""

    def __init__(self, factor_b=1.0, only_run=None):
        self.calls = []
        self.factor_b = factor_b
        self.only_run = only_run  # e.g. "B1.json": drift that hits one run, not the code

    def __call__(self, cmd, cwd):
        self.calls.append((cmd, Path(cwd)))
        out = Path(next(a for a in cmd if a.startswith("--benchmark-json=")).split("=", 1)[1])
        doc = json.loads((DATA / "run_a.json").read_text())
        if out.name.startswith("B") and self.only_run in (None, out.name):
            for bench in doc["benchmarks"]:
                bench["stats"]["data"] = [t * self.factor_b for t in bench["stats"]["data"]]
                bench["stats"]["median"] *= self.factor_b
        out.write_text(json.dumps(doc))
        return 0


def test_base_python_runs_same_tree_alternately_and_gates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = FakeRunner(factor_b=1.5)
    code = ab.main(args(base_python="python3", k="mlp"), runner=runner)
    assert code == 1  # B is 50% slower
    names = [Path(next(a for a in cmd if a.startswith("--benchmark-json")).split("=", 1)[1]).name for cmd, _ in runner.calls]
    assert names == ["A0.json", "B0.json", "A1.json", "B1.json"]
    assert [cmd[0] for cmd, _ in runner.calls] == ["python3", "python", "python3", "python"]
    assert all(cwd == tmp_path for _, cwd in runner.calls)
    assert all({"-p", "no:cacheprovider", "-k", "mlp", "--profile=quick"} <= set(cmd) for cmd, _ in runner.calls)


def test_same_code_passes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ab.main(args(base_python="python3"), runner=FakeRunner(1.0)) == 0


def test_drift_in_one_run_is_not_a_regression(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert ab.main(args(base_python="python3"), runner=FakeRunner(1.5, only_run="B1.json")) == 0
    assert "did not all beat" in capsys.readouterr().err


def git_repo(path: Path) -> Path:
    for cmd in (["init", "-q"], ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", *cmd], cwd=path, check=True)
    return path


def worktrees(repo):
    out = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.startswith("worktree ")]


def test_worktree_is_used_and_removed_even_on_failure(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git_repo(repo)
    monkeypatch.chdir(repo)
    runner = FakeRunner()
    assert ab.main(args(base_ref="HEAD", repeat=1), runner=runner) == 0
    (cmd_a, cwd_a), (cmd_b, cwd_b) = runner.calls
    assert cwd_a != repo and cwd_b == repo
    assert len(worktrees(repo)) == 1 and not cwd_a.exists()

    def failing(cmd, cwd):
        return 4  # pytest failed and wrote no JSON

    with pytest.raises(BadInput, match="side A run 1"):
        ab.main(args(base_ref="HEAD", repeat=1), runner=failing)
    assert len(worktrees(repo)) == 1


def test_needs_a_base(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput, match="--base-ref"):
        ab.main(args(), runner=FakeRunner())
    git_repo(tmp_path)
    with pytest.raises(BadInput, match="not a commit"):
        ab.main(args(base_ref="no-such-ref"), runner=FakeRunner())
