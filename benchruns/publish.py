"""publish: commit this job's runs to a results branch and push it, so that runs outlive the CI job.

``python -m benchruns publish [--results-dir results] [--branch benchmark-results] [--remote origin]
[--worktree results-branch] [--attempts 3]``

The results branch holds nothing but runs, ``<machine-key>/<UTC time>_<commit>.json.gz``
(gzip -9 with mtime 0: the same run always gives the same bytes), and a README.md
saying so. It is checked out as a git worktree (``--worktree``), which is also a results
folder: ``make gate RESULTS=results-branch`` judges new runs against the earlier ones in it
and ``make history RESULTS=results-branch`` draws the whole history.

Publishing takes every run under ``--results-dir`` that the branch does not hold yet (the
same name with the same content), writes it gzipped into the worktree, commits and pushes.
It is idempotent: a run already in the branch is left alone, and nothing new means no
commit. Two jobs pushing at once: the loser fetches the new tip, rebuilds its commit on
it (the same files added) and pushes again, at most ``--attempts`` times in all; when the
last attempt fails the command says so in one line and exits 1, and every run is still on
disk (in ``--results-dir`` and committed locally in the worktree). Without push rights (a
pull request from a fork, a read-only token) nothing is pushed: one line, exit 0.

Other modes, for the nightly workflow (``.github/workflows/nightly.yml``):

``--prepare``   check the branch out into ``--worktree`` (a local first commit with the README
                when the remote has no such branch yet; the first publish pushes it)
``--new-runs``  the runs under ``--results-dir`` that the branch does not hold, one path a line
                (the gate's ``--cand`` list: this job's runs)
``--summary``   Markdown for ``$GITHUB_STEP_SUMMARY``: the machine key of this job's runs, how
                many earlier runs of that key and profile the gate's window has, other keys

Exit codes: 0 done (or nothing to do, or skipped without push rights), 1 the push failed
after every attempt, 2 bad input (not a git checkout, unknown remote, a bad branch name, a
worktree path that is something else): one line, never a traceback.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import storage
from .argparsing import Parser
from .runs import BadInput, load_run, select_runs, skip_note

BRANCH = "benchmark-results"
WORKTREE = "results-branch"
ATTEMPTS = 3
README = """\
# Benchmark results

This branch holds saved benchmark runs and nothing else. It is written by
`python -m benchruns publish` (`make publish`), usually from the nightly CI workflow.

- `<machine-key>/<UTC time>_<commit>.json.gz`: one pytest-benchmark run with the suite's
  machine info and load record, gzipped (gzip -9, mtime 0, so the same run gives the
  same bytes). Runs are only added, never rewritten.
- One folder per machine key: runs of different machines (CPU model, cores, GPUs,
  framework versions, threads) are never compared with each other.

Read it as a results folder: check it out (`git worktree add results-branch
benchmark-results`) and run `make history RESULTS=results-branch` or
`make gate RESULTS=results-branch`; every command reads `.json` and `.json.gz` alike.
"""

# What a push failure says when the remote refuses this identity altogether (GitHub's
# read-only tokens: 403; ssh: "Permission denied"; a server without receive-pack for us).
NO_RIGHTS = re.compile(r"permission to .* denied|permission denied|error: 403|returned error: 403|"
                       r"write access to repository not granted|the requested url returned error: 403|"
                       r"make sure you have the correct access rights", re.I)


class PushFailed(Exception):
    """The push did not land after every attempt: one line, exit 1."""


class NoRights(Exception):
    """The remote refuses pushes from this identity: skipped, exit 0."""


def compress(data: bytes) -> bytes:
    """gzip -9 with mtime 0 and no file name: the same run always gives the same bytes."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def _raw(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


@dataclass
class Source:
    """One run to publish: where it is, its machine folder, its stem and its uncompressed bytes."""

    path: Path
    key: str
    stem: str
    data: bytes


class Git:
    """``git`` in one directory, without prompts, with an identity on a machine that has none."""

    def __init__(self, where: Path):
        self.where = Path(where)
        self.env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        for what, default in (("name", "benchruns publish"), ("email", "benchruns-publish@localhost")):
            if not self.out("config", "--get", f"user.{what}", check=False):
                for role in ("AUTHOR", "COMMITTER"):
                    self.env.setdefault(f"GIT_{role}_{what.upper()}", default)

    def run(self, *args: str, check: bool = True, input: bytes | None = None, where: Path | None = None):
        try:
            done = subprocess.run(["git", "-C", str(where or self.where), *args], env=self.env,
                                  input=input, capture_output=True, timeout=600)
        except OSError as exc:
            raise BadInput(f"cannot run git ({exc.strerror})") from None
        if check and done.returncode != 0:
            raise PushFailed(f"git {' '.join(args[:2])} failed: {_last_line(done)}")
        return done

    def out(self, *args: str, check: bool = True, where: Path | None = None) -> str:
        return self.run(*args, check=check, where=where).stdout.decode("utf-8", "replace").strip()


def _last_line(done: subprocess.CompletedProcess) -> str:
    text = (done.stderr or b"").decode("utf-8", "replace") + (done.stdout or b"").decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("hint:")]
    return lines[-1] if lines else f"exit {done.returncode}"


# --- this job's runs ------------------------------------------------------------------------------


def sources(results_dir: Path, notes: list[str], held: set[str], worktree: Path) -> list[Source]:
    """The readable runs under ``results_dir`` that are not the branch's own files; a broken or
    foreign file is skipped and named. When ``results_dir`` is the worktree itself, the
    branch's runs are left unread (a year of them would take minutes), and only the job's
    fresh files are runs to publish."""
    if not results_dir.is_dir():
        raise BadInput(f"{results_dir}: no such results folder; run `make bench` first")
    inside = results_dir.resolve() == worktree.resolve()
    found = []
    for folder in storage.machine_folders(results_dir):
        for path in storage.list_runs(folder):
            if inside and f"{folder.name}/{path.name}" in held:
                continue
            try:
                load_run(path)
                found.append(Source(path, folder.name, storage.run_stem(path), _raw(path)))
            except BadInput as exc:
                notes.append(skip_note(exc))
    return found


def branch_files(git: Git, worktree: Path) -> set[str]:
    """The paths the worktree's commit holds (none before the branch is checked out)."""
    if not worktree.is_dir():
        return set()
    return set(git.out("ls-tree", "-r", "--name-only", "HEAD", where=worktree).splitlines())


def unpublished(runs: list[Source], held: set[str]) -> list[Source]:
    """The runs whose name the branch does not hold (as .json.gz or .json)."""
    return [s for s in runs if not any(f"{s.key}/{s.stem}{suffix}" in held for suffix in storage.RUN_SUFFIXES)]


def not_runs(held: set[str]) -> list[str]:
    """Files in the branch that are neither runs, baseline markers nor the README."""
    return sorted(p for p in held if p != "README.md" and not (
        p.count("/") == 1 and (storage.is_run_name(p.split("/")[1]) or p.endswith("/" + storage.BASELINE))))


# --- the branch and its worktree ------------------------------------------------------------------


@dataclass
class Branch:
    git: Git
    remote: str
    name: str
    worktree: Path

    @property
    def tracking(self) -> str:
        return f"refs/remotes/{self.remote}/{self.name}"

    def fetch(self) -> str | None:
        """The remote branch's tip after fetching it, or None when the remote has no such branch."""
        done = self.git.run("ls-remote", "--heads", self.remote, f"refs/heads/{self.name}", check=False)
        if done.returncode != 0:
            raise PushFailed(f"cannot reach {self.remote}: {_last_line(done)}")
        if not done.stdout.strip():
            return None
        # A shallow checkout (CI's) fetches only the tip: the runs are files in it, and the branch's
        # history grows by every night's runs. A full clone stays full: no shallow boundary added to it.
        shallow = self.git.out("rev-parse", "--is-shallow-repository") == "true"
        self.git.run("fetch", "--quiet", "--no-tags", *(["--depth=1"] if shallow else []), self.remote,
                     f"+refs/heads/{self.name}:{self.tracking}")
        return self.git.out("rev-parse", self.tracking)

    def first_commit(self) -> str:
        """A local root commit holding only README.md, for a branch the remote does not have yet."""
        blob = self.git.run("hash-object", "-w", "--stdin", input=README.encode()).stdout.decode().strip()
        tree = self.git.run("mktree", input=f"100644 blob {blob}\tREADME.md\n".encode()).stdout.decode().strip()
        return self.git.out("commit-tree", tree, "-m", f"{self.name}: saved benchmark runs (see README.md)")

    def checkout(self, commit: str) -> None:
        """Put the worktree at ``commit`` (detached): created when missing, moved when it exists."""
        if not self.worktree.exists():
            self.git.run("worktree", "prune")
            self.git.run("worktree", "add", "--quiet", "--detach", str(self.worktree), commit)
            return
        self.git.run("checkout", "--quiet", "--detach", "--force", commit, where=self.worktree)

    def check_worktree(self) -> None:
        if not self.worktree.exists():
            return
        if not self.worktree.is_dir():
            raise BadInput(f"{self.worktree}: exists and is not a folder; pass another --worktree")
        mine = Path(self.git.out("rev-parse", "--path-format=absolute", "--git-common-dir"))
        theirs = self.git.run("rev-parse", "--path-format=absolute", "--git-common-dir", "--show-prefix",
                              where=self.worktree, check=False)
        lines = theirs.stdout.decode().splitlines()
        if theirs.returncode != 0 or Path(lines[0]) != mine or (len(lines) > 1 and lines[1]):
            raise BadInput(f"{self.worktree}: exists and is not a worktree of this repository; pass another "
                           "--worktree (or remove the folder)")

    def prepare(self) -> tuple[str | None, str]:
        """Fetch and check the branch out; (remote tip or None, the commit checked out)."""
        self.check_worktree()
        tip = self.fetch()
        commit = tip or self.first_commit()
        if tip is None and self.worktree.exists() and self._holds_unpushed_root():
            commit = self.git.out("rev-parse", "HEAD", where=self.worktree)
        self.checkout(commit)
        return tip, commit

    def _holds_unpushed_root(self) -> bool:
        """The worktree already sits on a local first commit (an earlier --prepare): keep it."""
        done = self.git.run("rev-list", "--max-parents=0", "HEAD", where=self.worktree, check=False)
        head = self.git.run("rev-parse", "HEAD", where=self.worktree, check=False)
        return done.returncode == 0 and head.returncode == 0 and done.stdout.strip() == head.stdout.strip() \
            and self.git.run("ls-tree", "--name-only", "HEAD", where=self.worktree).stdout.strip() == b"README.md"


def place(run: Source, worktree: Path, held: set[str]) -> Path | None:
    """Where ``run`` goes in the worktree, or None when the branch holds it already (same content)."""
    folder = worktree / run.key
    if f"{run.key}/{run.stem}.json" in held and (folder / f"{run.stem}.json").read_bytes() == run.data:
        return None  # a branch that stores plain .json holds this run already
    names = [f"{run.stem}.json.gz"] + [f"{run.stem}.{n}.json.gz" for n in range(1, 100)]
    for name in names:
        target = folder / name
        if not target.exists() or target.resolve() == run.path.resolve():
            return target  # a free name, or the run itself lying uncommitted in the worktree
        if f"{run.key}/{name}" not in held:
            continue  # an uncommitted file of another run: not the branch's
        try:
            if _raw(target) == run.data:
                return None
        except (OSError, EOFError):  # a broken file of that name: the run goes beside it
            continue
    raise PushFailed(f"{run.key}/{run.stem}: 100 different runs of that name in the branch")


def commit_runs(branch: Branch, runs: list[Source]) -> list[Source]:
    """Write the runs the worktree lacks (gzipped) and commit them; the runs written."""
    git, worktree = branch.git, branch.worktree
    held = branch_files(git, worktree)
    written, paths = [], []
    for run in runs:
        target = place(run, worktree, held)
        if target is None:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(compress(run.data))
        written.append(run)
        paths.append(str(target.relative_to(worktree)))
    if written:
        git.run("add", "--", *paths, where=worktree)
        keys = sorted({r.key for r in written})
        git.run("commit", "--quiet", "--no-verify", "-m",
                f"{len(written)} run(s) of {', '.join(keys)}\n\n" + "\n".join(paths), where=worktree)
    return written


def push_reason(done: subprocess.CompletedProcess) -> str:
    """Why a push failed: the rejected ref's line of ``--porcelain`` output, else git's last words."""
    for line in (done.stdout or b"").decode("utf-8", "replace").splitlines():
        if line.startswith("!"):
            return line.split("\t")[-1].strip()
    text = (done.stderr or b"").decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("hint:")]
    return lines[-1] if lines else f"exit {done.returncode}"


def push(branch: Branch) -> subprocess.CompletedProcess:
    return branch.git.run("push", "--quiet", "--porcelain", branch.remote, f"HEAD:refs/heads/{branch.name}",
                          where=branch.worktree, check=False)


def fork_pull_request() -> str | None:
    """On GitHub Actions, a pull request from a fork has a read-only token: say whose fork."""
    if os.environ.get("GITHUB_EVENT_NAME") not in ("pull_request", "pull_request_target"):
        return None
    try:
        event = json.loads(Path(os.environ.get("GITHUB_EVENT_PATH", "")).read_text(encoding="utf-8"))
        head = event["pull_request"]["head"]["repo"]["full_name"]
        base = event["pull_request"]["base"]["repo"]["full_name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return head if head != base else None


def publish(branch: Branch, results_dir: Path, attempts: int, log=print) -> int:
    fork = fork_pull_request()
    if fork:
        raise NoRights(f"a pull request from the fork {fork} cannot push")
    tip, _ = branch.prepare()
    held = branch_files(branch.git, branch.worktree)
    notes: list[str] = []
    runs = sources(results_dir, notes, held, branch.worktree)
    for note in notes:
        log(note, file=sys.stderr)
    foreign = not_runs(held)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        log(f"note: {branch.name} holds {len(foreign)} file(s) that are not runs, left alone: {shown}")
    last = ""
    for attempt in range(1, attempts + 1):
        if attempt > 1:  # someone else pushed first: rebuild this job's commit on the new tip
            tip = branch.fetch()
            branch.checkout(tip or branch.first_commit())
        written = commit_runs(branch, runs)
        head = branch.git.out("rev-parse", "HEAD", where=branch.worktree)
        if head == tip:
            log(f"publish: nothing new for {branch.remote}/{branch.name} ({len(runs)} run(s) under {results_dir} "
                "already there)")
            return 0
        done = push(branch)
        if done.returncode == 0:
            names = ", ".join(f"{r.key}/{r.stem}" for r in written[:3]) + (" ..." if len(written) > 3 else "")
            log(f"publish: {len(written)} run(s) pushed to {branch.remote}/{branch.name}"
                + (f" (attempt {attempt})" if attempt > 1 else "") + (f": {names}" if written else ""))
            return 0
        last = push_reason(done)
        text = (done.stderr or b"").decode("utf-8", "replace")
        if NO_RIGHTS.search(text):
            raise NoRights(next(line.strip() for line in text.splitlines() if NO_RIGHTS.search(line)))
        if attempt < attempts:
            log(f"publish: push rejected (attempt {attempt} of {attempts}: {last}); fetching and retrying")
    raise PushFailed(f"push to {branch.remote}/{branch.name} failed {attempts} times (last: {last}); nothing was "
                     f"lost: the runs are still in {results_dir} and committed locally in {branch.worktree}")


# --- the nightly's helpers ------------------------------------------------------------------------


def new_runs(branch: Branch, results_dir: Path) -> list[Source]:
    """The readable runs under ``results_dir`` whose name the checked-out branch does not hold."""
    notes: list[str] = []
    held = branch_files(branch.git, branch.worktree)
    runs = sources(results_dir, notes, held, branch.worktree)
    for note in notes:
        print(note, file=sys.stderr)
    return unpublished(runs, held)


def summary(branch: Branch, results_dir: Path) -> str:
    """Markdown: which machine key this job's runs have, and the window the gate judges them against."""
    fresh = new_runs(branch, results_dir)
    lines = []
    if not fresh:
        return f"No new runs under `{results_dir}`: nothing for the gate to judge."
    by_key: dict[str, list[Source]] = {}
    for run in fresh:
        by_key.setdefault(run.key, []).append(run)
    for key, runs in by_key.items():
        notes: list[str] = []
        total = len(storage.list_runs(results_dir / key)) - len(runs)
        lines += [f"### Machine key `{key}`", ""]
        try:
            base, cand = select_runs(None, [str(r.path) for r in runs], results_dir, notes=notes)
        except BadInput as exc:  # e.g. every new run disturbed: the gate will say why; so does the summary
            lines += [f"- this job: {len(runs)} run(s); earlier runs of this key: {total}",
                      f"- the gate cannot judge them: {exc}"]
            continue
        profile = cand[-1].profile
        commits = ", ".join(sorted({c.commit for c in cand}))
        lines += [f"- this job: {len(runs)} {profile} run(s) of commit {commits}",
                  f"- earlier runs of this key: {total}; the gate's window: {len(base)} {profile} run(s)"
                  + (" (the newest undisturbed ones, at most 10)" if base else
                     " (none yet: the gate says NOT DECIDED until 3 exist)")]
        lines += [f"- {n}" for n in notes]
    others = [(f.name, len(storage.list_runs(f))) for f in storage.machine_folders(results_dir)
              if f.name not in by_key]
    if others:
        lines += ["", "Other machine keys in the results (hosted runners differ; each key is only compared with "
                  "itself): " + ", ".join(f"`{k}` ({n} runs)" for k, n in others if n)]
    return "\n".join(lines)


# --- the command ----------------------------------------------------------------------------------


def build_parser() -> Parser:
    p = Parser(prog="python -m benchruns publish",
               description="Commit the runs under --results-dir that the results branch lacks (gzipped) through a "
               "git worktree, and push; retried on a concurrent push. See benchruns/publish.py and docs/nightly-ci.md.")
    p.add_argument("--results-dir", default="results", help="where this job's runs are (default: results)")
    p.add_argument("--branch", default=BRANCH, help=f"the results branch (default: {BRANCH})")
    p.add_argument("--remote", default="origin", help="the remote to push to (default: origin)")
    p.add_argument("--worktree", default=WORKTREE, help=f"where the branch is checked out (default: {WORKTREE})")
    p.add_argument("--attempts", type=int, default=ATTEMPTS, help=f"pushes before giving up (default {ATTEMPTS})")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--prepare", action="store_true", help="only check the branch out into --worktree")
    mode.add_argument("--new-runs", action="store_true", help="print the runs the branch lacks, one path a line")
    mode.add_argument("--summary", action="store_true", help="Markdown: machine key, this job's runs, the window")
    return p


def _branch(args) -> Branch:
    git = Git(Path.cwd())
    top = git.run("rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0:
        raise BadInput(f"{Path.cwd()}: not inside a git checkout; publish commits through a worktree of one")
    if git.run("remote", "get-url", args.remote, check=False).returncode != 0:
        raise BadInput(f"no git remote named {args.remote!r}; pass --remote NAME")
    if git.run("check-ref-format", "--branch", args.branch, check=False).returncode != 0:
        raise BadInput(f"bad --branch {args.branch!r}: not a valid branch name")
    if args.attempts < 1:
        raise BadInput(f"bad --attempts value {args.attempts}: at least 1")
    return Branch(git, args.remote, args.branch, Path(args.worktree))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    prog = "benchruns publish"
    try:
        branch = _branch(args)
        results_dir = Path(args.results_dir)
        if args.prepare:
            tip, commit = branch.prepare()
            runs = sum(len(storage.list_runs(f)) for f in storage.machine_folders(branch.worktree))
            print(f"publish: {branch.remote}/{branch.name} checked out in {branch.worktree} ({runs} runs)" if tip else
                  f"publish: {branch.remote} has no branch {branch.name} yet; {branch.worktree} starts it "
                  "(the first publish pushes it)")
            return 0
        if args.new_runs:
            for run in new_runs(branch, results_dir):
                print(run.path)
            return 0
        if args.summary:
            print(summary(branch, results_dir))
            return 0
        return publish(branch, results_dir, args.attempts)
    except BadInput as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except NoRights as exc:
        print(f"{prog}: skipped: no push rights to {args.remote}/{args.branch} ({exc}); the runs stay in "
              f"{args.results_dir}", file=sys.stderr)
        return 0
    except PushFailed as exc:
        print(f"{prog}: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
