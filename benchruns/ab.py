"""ab: same-job A/B of a git ref (or another interpreter) against the working tree.

Two saved runs from different days differ by more than code: machine state, thermal
state, neighbours. Running both sides in one job, alternately A B A B, spreads such
drift over both sides instead of loading it onto one. Each side's rounds are pooled
per benchmark and B is gated against A with the same rule as ``gate``. The runs go
to a temporary folder, never into results/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import compare, gate
from .runs import BadInput, Bench, Run, load_run


def plan(repeat: int) -> list[tuple[str, int]]:
    """The alternation order: [('A', 0), ('B', 0), ('A', 1), ('B', 1), ...]."""
    return [(side, i) for i in range(repeat) for side in ("A", "B")]


def pytest_command(python: str, profile: str, k: str, json_path: Path) -> list[str]:
    cmd = [python, "-m", "pytest", "benches", f"--profile={profile}", "-p", "no:cacheprovider",
           f"--benchmark-json={json_path}"]
    if k:
        cmd += ["-k", k]
    return cmd


def run_pytest(cmd: list[str], cwd: Path) -> int:
    return subprocess.call(cmd, cwd=cwd)


def pool(runs: list[Run], label: str) -> Run:
    """One run whose benchmarks hold the concatenated rounds of every run of one side."""
    benches: dict[str, Bench] = {}
    parts: dict[str, list[Bench]] = {}
    for run in runs:
        for name, bench in run.benchmarks.items():
            parts.setdefault(name, []).append(bench)
    for name, items in parts.items():
        first = items[0]
        if all(b.data is not None for b in items):
            data = np.concatenate([b.data for b in items])
            q1, median, q3 = np.percentile(data, [25, 50, 75])
            rounds = data.size
        else:  # a side without raw rounds: keep a summary; compare will warn
            data = None
            median = float(np.median([b.median for b in items]))
            q1 = float(np.median([b.q1 for b in items]))
            q3 = float(np.median([b.q3 for b in items]))
            rounds = sum(b.rounds for b in items)
        benches[name] = Bench(first.fullname, first.name, first.group, float(median), float(q1), float(q3),
                              int(rounds), data, first.extra_info, first.params)
    return Run(path=Path(label), machine_info=runs[0].machine_info, commit_info=runs[0].commit_info,
               datetime=runs[0].datetime, benchmarks=benches)


def require_every_repeat_agrees(cmp: compare.Comparison, runs: dict[str, list[Run]]) -> None:
    """Keep a verdict only if every run of one side beats every run of the other.

    Pooled rounds capture the noise within a process, not the drift between processes
    (CPU frequency, neighbours, memory layout, thread placement), which on a shared
    machine shifted whole runs of an unchanged tree by up to 17%. The process is the
    honest unit: requiring complete separation of the run medians is a Mann-Whitney test
    on them, significant at p = 2/C(2R, R) (0.8% for the default R = 5 runs a side;
    33% for R = 2, which is why 2 is too few).
    """
    if min(len(runs["A"]), len(runs["B"])) < 2:
        return
    downgraded = 0
    for row in cmp.rows:
        if row.verdict == "unchanged":
            continue
        a = [run.benchmarks[row.fullname].median for run in runs["A"] if row.fullname in run.benchmarks]
        b = [run.benchmarks[row.fullname].median for run in runs["B"] if row.fullname in run.benchmarks]
        consistent = min(b) > max(a) if row.verdict == "slower" else max(b) < min(a)
        if not consistent:
            row.verdict = "unchanged"
            downgraded += 1
    if downgraded:
        cmp.notes.append(f"note: {downgraded} verdict(s) set to unchanged: the runs of one side did not all "
                         "beat the other's (drift between runs, not a change in code)")


def _git(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def execute(sides: dict, repeat: int, profile: str, k: str, tmp: Path, runner=run_pytest) -> dict[str, list[Run]]:
    """Run the plan; ``sides`` maps 'A'/'B' to (python, cwd). Returns the loaded runs per side."""
    out: dict[str, list[Run]] = {"A": [], "B": []}
    for side, i in plan(repeat):
        python, cwd = sides[side]
        json_path = tmp / f"{side}{i}.json"
        print(f"ab: run {i + 1}/{repeat} of side {side} ({python} in {cwd})", file=sys.stderr, flush=True)
        code = runner(pytest_command(python, profile, k, json_path), cwd)
        if not json_path.is_file():
            raise BadInput(f"side {side} run {i + 1}: pytest exited {code} without writing {json_path.name}; see its output above")
        out[side].append(load_run(json_path))
    return out


def main(args, runner=run_pytest) -> int:
    from .config import load_thresholds

    thresholds = load_thresholds(args.threshold, args.config, not args.no_config)
    if args.repeat < 1:
        raise BadInput(f"bad --repeat value {args.repeat}: at least 1")
    if not args.base_ref and not args.base_python:
        raise BadInput("nothing to compare against: pass --base-ref REF (e.g. BASE_REF=main) or --base-python PATH")
    # Not resolve(): a venv's python is a symlink, and resolving it would leave the venv.
    python = os.path.abspath(args.python) if os.sep in args.python else args.python
    base_python = args.base_python or args.python
    base_python = os.path.abspath(base_python) if os.sep in base_python else base_python
    for p in {python, base_python}:
        if shutil.which(p) is None:
            raise BadInput(f"{p}: no such interpreter")
    here = Path.cwd()
    tmp = Path(tempfile.mkdtemp(prefix="benchruns-ab-"))
    worktree = None
    try:
        if args.base_ref:
            top = _git("rev-parse", "--show-toplevel", cwd=here)
            if top.returncode != 0:
                raise BadInput(f"{here}: not a git repository; use --base-python instead of --base-ref")
            here = Path(top.stdout.strip())
            ref = _git("rev-parse", "--verify", "--quiet", f"{args.base_ref}^{{commit}}", cwd=here)
            if ref.returncode != 0:
                raise BadInput(f"--base-ref {args.base_ref!r}: not a commit in {here}")
            worktree = tmp / "base"
            added = _git("worktree", "add", "--detach", str(worktree), ref.stdout.strip(), cwd=here)
            if added.returncode != 0:
                worktree = None
                raise BadInput(f"git worktree add {args.base_ref}: {added.stderr.strip().splitlines()[-1] if added.stderr.strip() else 'failed'}")
        sides = {"A": (base_python, worktree or here), "B": (python, here)}
        runs = execute(sides, args.repeat, args.profile, args.k, tmp, runner)
    finally:
        if worktree is not None:
            _git("worktree", "remove", "--force", str(worktree), cwd=here)
        shutil.rmtree(tmp, ignore_errors=True)
    label_a = f"A ({args.base_ref or base_python}, {args.repeat} runs pooled)"
    label_b = f"B (working tree, {python}, {args.repeat} runs pooled)"
    cmp = compare.build(pool(runs["A"], label_a), pool(runs["B"], label_b), thresholds, args.alpha)
    require_every_repeat_agrees(cmp, runs)
    for note in cmp.notes:
        print(note, file=sys.stderr)
    text, code = gate.report(cmp, args.format)
    print(text)
    return code
