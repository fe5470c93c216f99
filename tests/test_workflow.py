"""The CI workflows users copy (.github/workflows/benchmarks.yml, nightly.yml): actionlint finds
nothing in them, and every ``make`` call in them names a target, variables and options that exist.

actionlint comes from requirements.txt (a wheel that carries the binary); the lint test
skips, saying so, only where it is not installed.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchruns.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "benchmarks.yml"
NIGHTLY = ROOT / ".github" / "workflows" / "nightly.yml"
WORKFLOWS = pytest.mark.parametrize("workflow", [WORKFLOW, NIGHTLY], ids=lambda p: p.name)


def actionlint() -> str:
    """The actionlint beside this interpreter (the venv's), else the one on PATH; skip if neither."""
    here = Path(sys.executable).parent / "actionlint"
    found = str(here) if here.exists() else shutil.which("actionlint")
    if found is None:
        pytest.skip("actionlint is not installed (requirements.txt pins it: make's .venv has it)")
    return found


def lint(path: Path) -> subprocess.CompletedProcess:
    # -config-file /dev/null: a stray .github/actionlint.yaml must not relax the check
    return subprocess.run([actionlint(), "-no-color", "-config-file", "/dev/null", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def shell_lines(text: str) -> list[str]:
    """The lines of every ``run:`` step, one-line or block (``run: |``), comment lines left out."""
    found, block_indent = [], None
    for line in text.splitlines():
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if block_indent is not None:
            if not stripped or indent > block_indent:
                if stripped and not stripped.startswith("#"):
                    found.append(stripped)
                continue
            block_indent = None
        step = re.match(r"(?:-\s+)?run:\s*(.*)$", stripped)
        if step:
            if step.group(1) in ("|", "|-", ">", ">-"):
                block_indent = indent
            else:
                found.append(step.group(1))
    return found


def make_calls(text: str) -> list[list[str]]:
    """The words after each ``make`` in the workflow's shell lines, up to a pipe or a separator."""
    return [shlex.split(m.group(1)) for line in shell_lines(text)
            for m in re.finditer(r"(?:^|[;&|(]\s*)make\s+([^|;&]*)", line)]


def makefile_targets() -> set[str]:
    """What ``make help`` lists: the targets users are meant to call."""
    done = subprocess.run(["make", "-s", "--no-print-directory", "help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}


# --------------------------------------------------------------------------- actionlint


@WORKFLOWS
def test_actionlint_finds_nothing_in_the_workflow(workflow):
    done = lint(workflow)
    assert done.returncode == 0 and not done.stdout.strip(), f"actionlint:\n{done.stdout}{done.stderr}"


def test_actionlint_is_really_checking(tmp_path):
    """A workflow with a typo'd key and an unknown action input must fail: the lint above is not a no-op."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    stepz: []\n"
                   "  k:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v6\n"
                   "        with:\n          fetch-deepth: 0\n")
    done = lint(bad)
    assert done.returncode == 1
    assert '"stepz"' in done.stdout and '"fetch-deepth"' in done.stdout, done.stdout


# --------------------------------------------------------------------------- what the workflow calls


def test_make_calls_are_read_from_the_workflow():
    calls = make_calls(WORKFLOW.read_text())
    assert [c for c in calls if "ab" in c] and [c for c in calls if "bench" in c], calls


@WORKFLOWS
def test_every_make_call_names_a_listed_target_and_known_variables(workflow):
    makefile = (ROOT / "Makefile").read_text()
    targets = makefile_targets()
    for call in make_calls(workflow.read_text()):
        words = [w for w in call if not w.startswith("-")]
        named = [w for w in words if "=" not in w]
        assert named and all(t in targets for t in named), f"make {' '.join(call)}: target not in `make help`"
        for var in (w.split("=", 1)[0] for w in words if "=" in w):
            assert re.search(rf"\$\({var}\)|^{var}\s*[?:]?=", makefile, re.M), f"make {' '.join(call)}: {var} unused"


def test_the_ab_call_passes_options_the_ab_command_accepts():
    """ARGS='--format=md' reaches `python -m benchruns ab`: it must parse, with md among the formats."""
    (call,) = [c for c in make_calls(WORKFLOW.read_text()) if "ab" in c]
    extra = shlex.split(next(w.split("=", 1)[1] for w in call if w.startswith("ARGS=")))
    args = build_parser().parse_args(["ab", "--base-ref", "origin/main", *extra])
    assert args.format == "md"


# --------------------------------------------------------------------------- the nightly workflow


def nightly_calls(target: str) -> list[list[str]]:
    return [c for c in make_calls(NIGHTLY.read_text()) if target in c]


def args_of(call: list[str]) -> list[str]:
    """ARGS='...' of one make call as the tool receives it; a shell array stands for two runs."""
    text = next((w.split("=", 1)[1] for w in call if w.startswith("ARGS=")), "").rstrip(")")
    return shlex.split(text.replace("${cand[*]}", "--cand=a.json --cand=b.json"))


def test_nightly_runs_on_a_schedule_and_by_hand():
    text = NIGHTLY.read_text()
    assert re.search(r"^on:\n  schedule:\n    - cron: \"[^\"]+\"\n  workflow_dispatch:", text, re.M), text[:600]


def test_nightly_runs_the_quick_profile_three_times_into_the_results_branch():
    text = NIGHTLY.read_text()
    (bench,) = nightly_calls("bench")
    assert "PROFILE=quick" in bench and "RESULTS=$RESULTS" in bench
    assert re.search(r"for \w+ in 1 2 3; do\n(?:.*\n)?\s+make bench PROFILE=quick", text), "three quick runs"
    assert re.search(r"^  RESULTS: results-branch$", text, re.M)


def test_nightly_gates_this_jobs_runs_with_options_gate_accepts():
    (gate,) = nightly_calls("gate")
    args = build_parser().parse_args(["gate", *args_of(gate)])
    assert args.format == "md" and args.cand == ["a.json", "b.json"]
    assert "RESULTS=$RESULTS" in gate
    text = NIGHTLY.read_text()
    assert 'tee -a "$GITHUB_STEP_SUMMARY"' in text.split("make -s gate", 1)[1].splitlines()[0]


def test_nightly_publish_calls_parse_and_the_runs_are_kept_after_a_failed_gate():
    from benchruns.publish import build_parser as publish_parser

    modes = set()
    for call in nightly_calls("publish"):
        args = publish_parser().parse_args(args_of(call))
        modes.add("prepare" if args.prepare else "new-runs" if args.new_runs else "summary" if args.summary else "push")
    assert modes == {"prepare", "new-runs", "summary", "push"}
    text = NIGHTLY.read_text()
    step = text.split("- name: make publish", 1)[1].split("- name:", 1)[0]
    assert "if: ${{ !cancelled() && steps.bench.outcome == 'success' }}" in step
    assert "GIT_AUTHOR_NAME" in step and "GIT_COMMITTER_EMAIL" in step


def test_nightly_publishes_the_site_with_the_official_pages_actions_and_permissions():
    text = NIGHTLY.read_text()
    for action in ("actions/upload-pages-artifact@", "actions/configure-pages@", "actions/deploy-pages@"):
        assert f"uses: {action}" in text, action
    nightly, pages = text.split("\n  pages:\n", 1)
    assert "contents: write" in nightly and "pages: write" not in nightly
    assert "path: build/history" in nightly and "make -s history" in nightly
    assert "pages: write" in pages and "id-token: write" in pages and "name: github-pages" in pages
    assert "needs.nightly.outputs.site == 'success'" in pages
