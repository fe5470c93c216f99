"""Load and validate saved runs, and pick which runs a command compares.

Every problem with a user's input becomes a ``BadInput`` whose message is one line that
names the file and the problem; the CLI prints it and exits 2. Validation happens here,
before any command writes anything, so bad input never leaves partial output behind.

A run file is ``.json`` or ``.json.gz`` (the results branch stores runs gzipped). A file a
command was asked to judge by name must be good; a broken or foreign file found by
listing a results folder is skipped, named with the reason in one note, and the rest
are used (``load_listed``): one cut-off run must not stop a history of hundreds.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import load as machine_load
from . import storage
from .machine import KEY_FIELDS, current_machine_info, machine_key


class BadInput(Exception):
    """A user mistake: bad path, bad file, bad option. Exit code 2, one line, no traceback."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


@dataclass
class Bench:
    """One benchmark of a run: identity, summary statistics and (when saved) raw round times."""

    fullname: str
    name: str
    group: str
    median: float
    q1: float
    q3: float
    rounds: int
    data: np.ndarray | None
    extra_info: dict = field(default_factory=dict)
    params: dict | None = None
    iterations: int = 1  # calls of the benchmarked function per timed round (pytest-benchmark's calibration)


@dataclass
class Run:
    path: Path
    machine_info: dict
    commit_info: dict
    datetime: str
    benchmarks: dict[str, Bench]
    load: dict | None = None  # what else used the machine while it ran (benchruns/load.py)

    @property
    def load_status(self) -> str:
        """"undisturbed", "disturbed" or "unrecorded" (runs made before the load record existed)."""
        return machine_load.status(self.load)[0]

    @property
    def load_why(self) -> str:
        """One line: why the run counts as disturbed or unrecorded; empty when undisturbed."""
        return machine_load.status(self.load)[1]

    @property
    def key(self) -> str:
        return self.machine_info.get("machine_key") or machine_key(self.machine_info)

    @property
    def label(self) -> str:
        return self.path.name

    @property
    def profile(self) -> str:
        """smoke / quick / full, as the harness recorded it (runs of other suites: "unknown")."""
        return str(self.machine_info.get("profile") or "unknown")

    @property
    def commit(self) -> str:
        cid = (self.commit_info or {}).get("id") or "nogit"
        return cid[:7] + ("-dirty" if (self.commit_info or {}).get("dirty") else "")


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _read_text(path: Path) -> str:
    """The file's text; a ``.gz`` file is decompressed first."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from None
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except EOFError:
            raise BadInput(f"{path}: truncated gzip (ends at byte {len(raw)}); the run was cut off") from None
        except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise BadInput(f"{path}: not a gzip file ({exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not JSON (not UTF-8 text)") from None


def _parse_json(path: Path):
    text = _read_text(path)
    if not text.strip():
        raise BadInput(f"{path}: empty file, not a pytest-benchmark run")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) - 1:
            raise BadInput(f"{path}: truncated JSON (ends at byte {len(text)}); the run was cut off") from None
        raise BadInput(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def _bench(path: Path, index: int, raw) -> Bench:
    if not isinstance(raw, dict) or not isinstance(raw.get("fullname"), str) or not isinstance(raw.get("stats"), dict):
        raise BadInput(f"{path}: benchmark #{index} has no 'fullname' or 'stats'; not a pytest-benchmark run")
    stats = raw["stats"]
    name = raw.get("name") or raw["fullname"]
    data = stats.get("data")
    if data is not None:
        try:
            data = np.asarray(data, dtype=float)
        except (TypeError, ValueError):
            raise BadInput(f"{path}: benchmark '{name}' has non-numeric stats.data") from None
        if data.ndim != 1 or data.size == 0:
            data = None
        elif not np.all(np.isfinite(data)) or np.any(data <= 0):
            raise BadInput(f"{path}: benchmark '{name}' has NaN, infinite or non-positive timings in stats.data")
    if not _positive(stats.get("median")):
        raise BadInput(f"{path}: benchmark '{name}' has a NaN, missing or non-positive stats.median")
    median = float(stats["median"])
    q1 = float(stats["q1"]) if _positive(stats.get("q1")) else median
    q3 = float(stats["q3"]) if _positive(stats.get("q3")) else median
    rounds = stats.get("rounds")
    rounds = int(rounds) if _positive(rounds) else (data.size if data is not None else 1)
    return Bench(
        fullname=raw["fullname"],
        name=name,
        group=raw.get("group") or "(no group)",
        median=median,
        q1=q1,
        q3=q3,
        rounds=rounds,
        data=data,
        extra_info=raw.get("extra_info") or {},
        params=raw.get("params"),
        iterations=int(stats["iterations"]) if _positive(stats.get("iterations")) else 1,
    )


def load_run(path) -> Run:
    """Read and validate one pytest-benchmark JSON file."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    if path.is_dir():
        raise BadInput(f"{path}: is a folder, not a run file")
    doc = _parse_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list) or not isinstance(doc.get("machine_info"), dict):
        raise BadInput(f"{path}: not a pytest-benchmark run (needs 'machine_info' and a 'benchmarks' list)")
    if not doc["benchmarks"]:
        raise BadInput(f"{path}: the run has no benchmarks")
    benches = {}
    for index, raw in enumerate(doc["benchmarks"]):
        bench = _bench(path, index, raw)
        benches[bench.fullname] = bench
    return Run(
        path=path,
        machine_info=doc["machine_info"],
        commit_info=doc.get("commit_info") or {},
        datetime=str(doc.get("datetime") or ""),
        benchmarks=benches,
        load=doc.get("load") if isinstance(doc.get("load"), dict) else None,
    )


def load_listed(paths, notes: list[str]) -> list[Run]:
    """The runs among ``paths`` (found by listing a folder) that load; each one that does not is
    skipped with one note naming it and why."""
    runs = []
    for path in paths:
        try:
            runs.append(load_run(path))
        except BadInput as exc:
            notes.append(skip_note(exc))
    return runs


def skip_note(exc: BadInput) -> str:
    """``skipped <file>: <why>``, the one line for a listed file that is not a usable run."""
    return f"skipped {exc}"


# --- which runs -----------------------------------------------------------------


def machine_folder(results_dir, machine: str | None = None) -> Path:
    """``results/<key>`` of this machine (or of ``machine``); strict: never guesses another."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise BadInput(f"{results_dir}: no such results folder; run `make bench` first, or pass --base/--cand")
    folders = storage.machine_folders(results_dir)
    if not folders:
        raise BadInput(f"{results_dir}: empty results folder (no saved runs); run `make bench` first")
    key = machine or machine_key(current_machine_info())
    folder = results_dir / key
    if not folder.is_dir():
        found = ", ".join(p.name for p in folders)
        raise BadInput(
            f"{results_dir}: no runs for this machine (looked for key {key}; found {found}); "
            "pass --base/--cand or --machine KEY"
        )
    return folder


def saved_runs(folder: Path) -> list[Path]:
    runs = storage.list_runs(folder)
    if not runs:
        raise BadInput(f"{folder}: no saved runs in this machine folder")
    return runs


LOOKBACK = 10  # base runs in the window when the baseline comes from history
MAX_NEW = 5  # at most this many newest runs of one commit form the candidate side


def select_runs(base: list[str] | None, cand: list[str] | None, results_dir, machine=None, lookback: int = LOOKBACK,
                notes: list[str] | None = None, include_disturbed: bool = False) -> tuple[list[Run], list[Run]]:
    """The two sides of a saved-run comparison, loaded and validated.

    Candidate: every --cand file, else this machine's newest run together with the runs of
    the same commit and profile just before it (run the suite three times on a commit and
    all three are the candidate: one process is too few, see docs/gate.md). Base: every --base file,
    else a lookback window: the last ``lookback`` runs of the candidate's machine folder
    that share its profile and come before it, ending at the marked baseline when one is
    marked (``make baseline`` pins the reference). Runs of other profiles never enter the
    window: a quick and a full run differ in rounds and data sizes, not in code.
    """
    notes = notes if notes is not None else []
    loaded: dict[Path, Run | None] = {}

    def load(path: Path) -> Run | None:  # a listed file that is no usable run: skipped, named once
        if path not in loaded:
            try:
                loaded[path] = load_run(path)
            except BadInput as exc:
                loaded[path] = None
                notes.append(skip_note(exc))
        return loaded[path]

    def quiet(run: Run) -> bool:
        return include_disturbed or run.load_status != "disturbed"

    def named(paths: list[str]) -> list[Run]:
        runs = [load_run(p) for p in paths]
        for run in runs:
            if not quiet(run):
                raise BadInput(f"{run.path}: disturbed run ({run.load_why}); its timings are not comparable. "
                               "Rerun on a quiet machine, or pass --include-disturbed to use it anyway")
        return runs

    left_out: list[Run] = []
    if cand:
        cand_runs = named(cand)
        folder_runs = storage.list_runs(Path(cand[-1]).parent)
        newest = Path(cand[-1])
    else:
        folder_runs = saved_runs(machine_folder(results_dir, machine))
        newest = next((p for p in reversed(folder_runs) if load(p) is not None), None)
        if newest is None:
            raise BadInput(f"{folder_runs[-1].parent}: no readable run among {len(folder_runs)} file(s) "
                           f"({notes[-1]})")
        newest_run = load(newest)
        cand_runs = []
        for path in reversed([p for p in folder_runs if storage._run_order(p) <= storage._run_order(newest)]):
            run = load(path)
            if run is None:
                continue
            if run.commit != newest_run.commit or run.profile != newest_run.profile or len(cand_runs) == MAX_NEW:
                break
            if quiet(run):
                cand_runs.insert(0, run)
            else:
                left_out.append(run)
        if not cand_runs:
            raise BadInput(f"{newest}: the newest run(s) of {newest_run.commit} ({newest_run.profile}) were all "
                           f"disturbed ({newest_run.load_why}); rerun `make bench` on a quiet machine, or pass "
                           "--include-disturbed to gate on them anyway")
    if left_out:
        notes.append(f"note: {len(left_out)} disturbed run(s) of the candidate left out: "
                     + "; ".join(f"{r.label} ({r.load_why.split(';')[0]})" for r in left_out))
    if base:
        return named(base), cand_runs
    profile = cand_runs[-1].profile
    cand_stems = {(Path(c.path).resolve().parent, storage.run_stem(c.path)) for c in cand_runs}
    earlier = [p for p in folder_runs if storage._run_order(p) < storage._run_order(newest)
               and (p.resolve().parent, storage.run_stem(p)) not in cand_stems]
    marked = storage.read_baseline(newest.parent)
    if marked is not None:
        if not marked.is_file():
            raise BadInput(f"{newest.parent / storage.BASELINE}: names {marked.name}, which does not exist; "
                           "run `make baseline`")
        if any(marked.resolve() == Path(c.path).resolve() for c in cand_runs):
            notes.append(f"note: the baseline {marked.name} is the candidate itself; using the runs before it")
        else:
            earlier = [p for p in folder_runs if storage._run_order(p) <= storage._run_order(marked)]
            notes.append(f"note: window ends at the marked baseline {marked.name}")
    window: list[Run] = []
    other_profiles = disturbed = 0
    for path in reversed(earlier):
        run = load(path)
        if run is None:
            continue
        if run.profile != profile:
            other_profiles += 1
            continue
        if not quiet(run):
            disturbed += 1
            continue
        window.append(run)
        if len(window) == lookback:
            break
    if other_profiles:
        notes.append(f"note: {other_profiles} run(s) of other profiles left out of the window "
                     f"(only {profile} runs are compared with a {profile} run)")
    if disturbed:
        notes.append(f"note: {disturbed} disturbed run(s) left out of the window (pass --include-disturbed to use them)")
    unrecorded = [r for r in window + cand_runs if r.load_status == "unrecorded"]
    if unrecorded:
        notes.append(f"note: {len(unrecorded)} run(s) have no load record (made before the suite measured it); "
                     "nobody checked that the machine was quiet then")
    return list(reversed(window)), cand_runs


def check_same_profile(runs: list[Run]) -> None:
    """Refuse to compare runs of different profiles: their rounds and sizes differ, not their code."""
    profiles = sorted({run.profile for run in runs})
    if len(profiles) > 1:
        by = "; ".join(f"{p}: {', '.join(r.label for r in runs if r.profile == p)[:120]}" for p in profiles)
        raise BadInput(f"runs of different profiles ({by}); compare runs of one profile")


def check_same_machine(base: Run, cand: Run, allow: bool) -> str | None:
    """Refuse runs from different machine keys unless allowed; return a warning when allowed."""
    if base.key == cand.key:
        return None
    diffs = []
    for name in KEY_FIELDS:
        a, b = base.machine_info.get(name), cand.machine_info.get(name)
        if a != b:
            diffs.append(f"{name}: {a} vs {b}")
    if not diffs:
        diffs.append(f"machine_key: {base.key} vs {cand.key}")
    what = "; ".join(diffs)
    if allow:
        return f"warning: {base.label} and {cand.label} come from different machines ({what})"
    raise BadInput(
        f"{base.path} and {cand.path} come from different machines ({what}); "
        "pass --allow-different-machines to compare them anyway"
    )
