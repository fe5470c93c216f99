"""publish: runs committed to a results branch and pushed, with real git against a local bare
repository standing in for the remote (file:// paths in tmp_path, no network).

The tool runs as CI runs it: a subprocess, in a clone, with no git identity configured
(HOME points at an empty folder), so it must bring its own.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_A = ROOT / "tests" / "data" / "run_a.json"
KEY = "demo-cpu-0000aaaa"
BRANCH = "benchmark-results"


def clean_env(tmp_path: Path, **extra) -> dict:
    """No user or system git config, no GitHub event: a bare CI machine."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITHUB_"))}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=str(home / "none"),
               PYTHONPATH=str(ROOT), **extra)
    return env


def git(*args, cwd, env=None) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def publish(cwd: Path, *args, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchruns", "publish", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)


def run_doc(i: int) -> dict:
    doc = json.loads(RUN_A.read_text())
    doc["commit_info"]["id"] = f"{i:07x}" * 6
    doc["datetime"] = f"2026-01-{i + 1:02d}T00:00:00"
    for bench in doc["benchmarks"]:
        bench["stats"]["median"] *= 1 + i / 100
    return doc


def add_run(results: Path, i: int, key: str = KEY) -> Path:
    folder = results / key
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"202601{i + 1:02d}T000000Z_{i:07x}.json"
    path.write_text(json.dumps(run_doc(i)))
    return path


@pytest.fixture
def origin(tmp_path) -> Path:
    """A bare repository with a main branch, standing in for GitHub."""
    bare = tmp_path / "origin.git"
    git("init", "--quiet", "--bare", "-b", "main", bare, cwd=tmp_path)
    seed = tmp_path / "seed"
    git("clone", "--quiet", bare, seed, cwd=tmp_path)
    (seed / "README.md").write_text("the project\n")
    git("add", "README.md", cwd=seed)
    git("commit", "--quiet", "-m", "main", cwd=seed)
    git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
    return bare


def job(tmp_path: Path, origin: Path, name: str, shallow: bool = False) -> Path:
    """A fresh CI checkout of main (``shallow``: one commit deep, as actions/checkout makes it)."""
    where = tmp_path / name
    git("clone", "--quiet", *(["--depth=1", f"file://{origin}"] if shallow else [origin]), where, cwd=tmp_path)
    return where


def branch_files(origin: Path) -> list[str]:
    return git("ls-tree", "-r", "--name-only", BRANCH, cwd=origin).splitlines()


def tip(origin: Path) -> str:
    return subprocess.run(["git", "rev-parse", "--verify", "--quiet", BRANCH], cwd=origin, capture_output=True,
                          text=True).stdout.strip()


def hook(origin: Path, body: str) -> None:
    path = origin / "hooks" / "pre-receive"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


# --- the branch: created, idempotent, compressed -----------------------------------------------


def test_first_publish_creates_the_branch_with_a_readme_and_gzipped_runs(tmp_path, origin):
    env = clean_env(tmp_path)
    ci = job(tmp_path, origin, "ci")
    run = add_run(ci / "results", 1)
    assert tip(origin) == ""
    done = publish(ci, env=env)
    assert done.returncode == 0, done.stderr
    assert "1 run(s) pushed" in done.stdout
    assert sorted(branch_files(origin)) == ["README.md", f"{KEY}/{run.stem}.json.gz"]
    readme = git("show", f"{BRANCH}:README.md", cwd=origin)
    assert "saved benchmark runs" in readme and ".json.gz" in readme and "machine key" in readme
    stored = subprocess.run(["git", "show", f"{BRANCH}:{KEY}/{run.stem}.json.gz"], cwd=origin,
                            capture_output=True).stdout
    assert gzip.decompress(stored) == run.read_bytes()
    assert stored[4:8] == b"\0\0\0\0"  # gzip mtime 0: the same run gives the same bytes
    assert run.is_file() and "main" in git("branch", "--list", cwd=ci)  # the job's checkout is untouched


def test_publishing_the_same_run_twice_changes_nothing(tmp_path, origin):
    env = clean_env(tmp_path)
    ci = job(tmp_path, origin, "ci")
    add_run(ci / "results", 1)
    assert publish(ci, env=env).returncode == 0
    first = tip(origin)
    again = publish(ci, env=env)
    assert again.returncode == 0 and "nothing new" in again.stdout, again.stdout
    # another job that holds the same run file (and one more) adds only the new one
    other = job(tmp_path, origin, "other")
    (other / "results" / KEY).mkdir(parents=True)
    (other / "results" / KEY / f"{(ci / 'results' / KEY).iterdir().__next__().name}").write_bytes(
        next((ci / "results" / KEY).iterdir()).read_bytes())
    assert publish(other, env=env).returncode == 0
    assert tip(origin) == first
    add_run(other / "results", 2)
    assert "1 run(s) pushed" in publish(other, env=env).stdout
    assert len([f for f in branch_files(origin) if f.endswith(".json.gz")]) == 2


# --- concurrency and failure --------------------------------------------------------------------


@pytest.mark.parametrize("branch_exists", [True, False], ids=["branch-exists", "both-create-it"])
def test_two_jobs_pushing_at_once_both_land(tmp_path, origin, branch_exists):
    env = clean_env(tmp_path)
    if branch_exists:
        seed = job(tmp_path, origin, "first")
        add_run(seed / "results", 0)
        assert publish(seed, env=env).returncode == 0
    # The hook holds every push until two have arrived (or 20 s): both jobs push on the same
    # old tip, so one of them must be turned away and retry on the other's commit.
    arrived = tmp_path / "arrived"
    arrived.mkdir()
    hook(origin, f'touch "{arrived}/$$"\nfor i in $(seq 200); do\n'
                 f'  [ "$(ls "{arrived}" | wc -l)" -ge 2 ] && exit 0\n  sleep 0.1\ndone\nexit 0\n')
    jobs = [job(tmp_path, origin, name) for name in ("a", "b")]
    for i, where in enumerate(jobs):
        add_run(where / "results", 10 + i)
    procs = [subprocess.Popen([sys.executable, "-m", "benchruns", "publish"], cwd=w, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for w in jobs]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = sorted(f for f in branch_files(origin) if f.endswith(".json.gz"))
    assert runs == sorted(f"{KEY}/202601{i + 1:02d}T000000Z_{i:07x}.json.gz"
                          for i in ((0, 10, 11) if branch_exists else (10, 11)))
    assert "README.md" in branch_files(origin)
    assert len(list(arrived.iterdir())) >= 3  # a rejected push came back
    assert any("retrying" in out for out, _ in outs) and any("(attempt 2)" in out for out, _ in outs), outs


def test_a_push_rejected_three_times_fails_in_one_line_and_keeps_the_run(tmp_path, origin):
    env = clean_env(tmp_path)
    ci = job(tmp_path, origin, "ci")
    run = add_run(ci / "results", 1)
    count = tmp_path / "attempts"
    hook(origin, f'echo x >> "{count}"\necho "nope" >&2\nexit 1\n')
    done = publish(ci, env=env)
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith("benchruns publish: FAILED:") and "3 times" in line and "pre-receive" in line, line
    assert len(count.read_text().splitlines()) == 3
    assert tip(origin) == ""
    assert run.is_file() and json.loads(run.read_text())["benchmarks"]
    local = subprocess.run(["git", "show", f"HEAD:{KEY}/{run.stem}.json.gz"], cwd=ci / "results-branch",
                           capture_output=True).stdout
    assert gzip.decompress(local) == run.read_bytes()  # committed locally, ready for the next try


def test_no_push_rights_is_skipped_in_one_line(tmp_path, origin):
    env = clean_env(tmp_path)
    ci = job(tmp_path, origin, "ci")
    add_run(ci / "results", 1)
    refuse = tmp_path / "receive-pack"  # what GitHub's ssh answers a read-only key
    refuse.write_text("#!/bin/sh\necho 'ERROR: Permission to owner/repo.git denied to reader.' >&2\nexit 1\n")
    refuse.chmod(0o755)
    git("config", "remote.origin.receivepack", refuse, cwd=ci)
    done = publish(ci, env=env)
    assert done.returncode == 0
    line = one_line(done.stderr)
    assert "skipped: no push rights" in line and "Permission to owner/repo.git denied" in line, line
    assert tip(origin) == ""


def test_a_pull_request_from_a_fork_is_skipped_before_touching_git(tmp_path, origin):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"repo": {"full_name": "someone/fork"}},
                                                  "base": {"repo": {"full_name": "owner/repo"}}}}))
    env = clean_env(tmp_path, GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=str(event))
    ci = job(tmp_path, origin, "ci")
    add_run(ci / "results", 1)
    done = publish(ci, env=env)
    assert done.returncode == 0
    assert "skipped: no push rights" in one_line(done.stderr) and "someone/fork" in done.stderr
    assert tip(origin) == "" and not (ci / "results-branch").exists()


# --- what the branch holds -------------------------------------------------------------------


def seed_branch(tmp_path: Path, origin: Path, files: dict[str, bytes]) -> None:
    """Push a results branch holding ``files`` (made by hand, as a user might have)."""
    where = tmp_path / "hand"
    git("clone", "--quiet", origin, where, cwd=tmp_path)
    git("checkout", "--quiet", "--orphan", BRANCH, cwd=where)
    git("rm", "-rf", "--quiet", ".", cwd=where)
    for name, data in files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_bytes(data)
    git("add", "-A", cwd=where)
    git("commit", "--quiet", "-m", "by hand", cwd=where)
    git("push", "--quiet", "origin", f"{BRANCH}:{BRANCH}", cwd=where)


def test_files_that_are_not_runs_are_left_alone_and_named_once(tmp_path, origin):
    foreign = {"notes.txt": b"mine\n", "data.csv": b"a,b\n1,2\n", f"{KEY}/scratch.txt": b"x\n",
               f"{KEY}/20250101T000000Z_0000000.json.gz": gzip.compress(json.dumps(run_doc(0)).encode())}
    seed_branch(tmp_path, origin, foreign)
    env = clean_env(tmp_path)
    ci = job(tmp_path, origin, "ci")
    add_run(ci / "results", 1)
    done = publish(ci, env=env)
    assert done.returncode == 0, done.stderr
    named = [line for line in done.stdout.splitlines() if "not runs" in line]
    assert len(named) == 1 and "3 file(s)" in named[0], done.stdout
    assert all(name in named[0] for name in ("notes.txt", "data.csv", f"{KEY}/scratch.txt"))
    for name, data in foreign.items():
        assert subprocess.run(["git", "show", f"{BRANCH}:{name}"], cwd=origin, capture_output=True).stdout == data
    assert "README.md" not in branch_files(origin)  # a branch made by someone else keeps its own layout


def test_a_truncated_run_in_the_branch_is_skipped_by_history_and_compare(tmp_path, origin):
    good = {f"{KEY}/202601{i + 1:02d}T000000Z_{i:07x}.json.gz": gzip.compress(json.dumps(run_doc(i)).encode())
            for i in range(4)}
    cut = f"{KEY}/20260110T000000Z_0000009.json.gz"
    seed_branch(tmp_path, origin, {**good, cut: gzip.compress(json.dumps(run_doc(9)).encode())[:300]})
    env = clean_env(tmp_path)
    ci = job(tmp_path, origin, "ci")
    assert publish(ci, "--prepare", env=env).returncode == 0
    worktree = ci / "results-branch"
    history = subprocess.run([sys.executable, "-m", "benchruns", "history", "--results-dir", worktree, "--out",
                              tmp_path / "site"], capture_output=True, text=True, env=env)
    assert history.returncode == 0, history.stderr
    assert f"skipped {worktree / cut}: truncated gzip" in history.stderr
    assert "4 runs of 1 machine(s)" in history.stdout and (tmp_path / "site" / "index.html").is_file()
    compare = subprocess.run([sys.executable, "-m", "benchruns", "compare", "--results-dir", worktree, "--machine",
                              KEY, "--format=json"], capture_output=True, text=True, env=env)
    assert compare.returncode == 0, compare.stderr
    assert f"skipped {worktree / cut}: truncated gzip" in compare.stderr
    doc = json.loads(compare.stdout)
    assert len(doc["base"]) == 3 and doc["cand"][0].endswith("0000003.json.gz")


# --- the nightly's flow: the worktree is the results folder --------------------------------------


def test_the_nightly_flow_in_the_worktree(tmp_path, origin):
    env = clean_env(tmp_path)
    earlier = job(tmp_path, origin, "earlier")
    for i in range(4):
        add_run(earlier / "results", i)
    assert publish(earlier, env=env).returncode == 0
    ci = job(tmp_path, origin, "ci", shallow=True)
    prepared = publish(ci, "--prepare", env=env)
    assert prepared.returncode == 0 and "(4 runs)" in prepared.stdout, prepared.stdout
    worktree = ci / "results-branch"
    new = [add_run(worktree, i) for i in (20, 21, 22)]  # what make bench RESULTS=results-branch writes
    listed = publish(ci, "--new-runs", "--results-dir", worktree, env=env)
    assert listed.returncode == 0 and listed.stdout.split() == [str(worktree / KEY / p.name) for p in new]
    summary = publish(ci, "--summary", "--results-dir", worktree, env=env)
    assert summary.returncode == 0, summary.stderr
    assert f"Machine key `{KEY}`" in summary.stdout and "this job: 3 unknown run(s)" in summary.stdout
    assert "earlier runs of this key: 4; the gate's window: 4 unknown run(s)" in summary.stdout
    done = publish(ci, "--results-dir", worktree, env=env)
    assert done.returncode == 0 and "3 run(s) pushed" in done.stdout, done.stdout + done.stderr
    assert len([f for f in branch_files(origin) if f.endswith(".json.gz")]) == 7
    assert git("rev-list", "--count", BRANCH, cwd=origin) == "3"  # the shallow job's commit sits on the full history
    assert publish(ci, "--new-runs", "--results-dir", worktree, env=env).stdout == ""
    assert all(p.is_file() for p in new)  # the job's own files stay
    history = subprocess.run([sys.executable, "-m", "benchruns", "history", "--results-dir", worktree, "--out",
                              tmp_path / "site"], capture_output=True, text=True, env=env)
    assert history.returncode == 0 and "7 runs of 1 machine(s)" in history.stdout, history.stdout + history.stderr


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["not-git", "remote", "branch", "worktree", "attempts"])
def test_bad_input_is_one_line_exit_2(tmp_path, origin, case):
    env = clean_env(tmp_path)
    ci = job(tmp_path, origin, "ci")
    add_run(ci / "results", 1)
    args, where, word = [], ci, ""
    if case == "not-git":
        where = tmp_path / "plain"
        add_run(where / "results", 1)
        word = "not inside a git checkout"
    elif case == "remote":
        args, word = ["--remote", "upstream"], "no git remote named 'upstream'"
    elif case == "branch":
        args, word = ["--branch", "bad..name"], "bad --branch"
    elif case == "worktree":
        (ci / "results-branch").mkdir()
        word = "not a worktree of this repository"
    else:
        args, word = ["--attempts", "0"], "bad --attempts"
    done = publish(where, *args, env=env)
    assert done.returncode == 2 and word in one_line(done.stderr), done.stderr
    assert tip(origin) == ""


def test_the_summary_says_why_the_gate_cannot_judge_disturbed_runs(tmp_path, origin):
    env = clean_env(tmp_path)
    ci = job(tmp_path, origin, "ci")
    assert publish(ci, "--prepare", env=env).returncode == 0
    worktree = ci / "results-branch"
    run = add_run(worktree, 5)
    doc = json.loads(run.read_text())
    doc["load"] = {"schema": 1, "available": True, "threshold_cores": 0.1, "benchmarks_s": 10.0, "other_cores": 0.9,
                   "steal_cores": 0.0, "disturbed": True, "why": "other processes used 0.90 of a core",
                   "busiest_others": []}
    run.write_text(json.dumps(doc))
    summary = publish(ci, "--summary", "--results-dir", worktree, env=env)
    assert summary.returncode == 0, summary.stderr
    assert "the gate cannot judge them" in summary.stdout and "disturbed run" in summary.stdout, summary.stdout


def test_a_gzipped_run_lying_uncommitted_in_the_worktree_is_published(tmp_path, origin):
    env = clean_env(tmp_path)
    ci = job(tmp_path, origin, "ci")
    assert publish(ci, "--prepare", env=env).returncode == 0
    worktree = ci / "results-branch"
    plain = add_run(worktree, 3)
    packed = plain.with_name(plain.name + ".gz")
    packed.write_bytes(gzip.compress(plain.read_bytes(), mtime=123))
    plain.unlink()
    done = publish(ci, "--results-dir", worktree, env=env)
    assert done.returncode == 0 and "1 run(s) pushed" in done.stdout, done.stdout + done.stderr
    assert f"{KEY}/{packed.name}" in branch_files(origin)
    assert gzip.decompress(packed.read_bytes()) == json.dumps(run_doc(3)).encode()
