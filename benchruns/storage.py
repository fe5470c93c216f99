"""Where runs live: ``results/<machine-key>/<UTC timestamp>_<short commit>.json``.

A results branch (benchruns/publish.py) stores the same runs gzipped, ``<...>.json.gz``;
everything that lists or reads runs takes both.

A run is written by pytest-benchmark (``--benchmark-json``) into ``results/.incoming/``
and only then moved into its machine folder with ``os.replace``: a crashed or
interrupted run leaves at most a stray file in ``.incoming/``, never a partial run
among the saved ones, and an existing run is never overwritten.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from .machine import machine_key

INCOMING = ".incoming"


def run_filename(run: dict, now: _dt.datetime | None = None) -> str:
    """``20261127T181500Z_ab12cd3.json`` from the run's commit info and the UTC clock."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    commit = (run.get("commit_info") or {}).get("id") or "nogit"
    short = commit[:7]
    if (run.get("commit_info") or {}).get("dirty"):
        short += "-dirty"
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}_{short}.json"


def key_of(run: dict) -> str:
    info = run.get("machine_info") or {}
    return info.get("machine_key") or machine_key(info)


def store_run(incoming: Path, results_dir: Path) -> Path:
    """Move a finished run file into its machine folder atomically; return the new path."""
    run = json.loads(Path(incoming).read_text(encoding="utf-8"))
    folder = Path(results_dir) / key_of(run)
    folder.mkdir(parents=True, exist_ok=True)
    name = run_filename(run)
    target = folder / name
    suffix = 1
    while target.exists():  # two runs in one second: keep both
        target = folder / f"{Path(name).stem}.{suffix}.json"
        suffix += 1
    os.replace(incoming, target)
    return target


# --- reading the store back -------------------------------------------------------

BASELINE = "BASELINE"


def machine_folders(results_dir: Path) -> list[Path]:
    """Machine folders under results/, skipping ``.incoming`` and other dot folders."""
    return sorted(p for p in Path(results_dir).iterdir() if p.is_dir() and not p.name.startswith("."))


RUN_SUFFIXES = (".json.gz", ".json")  # a results branch stores runs gzipped


def is_run_name(name: str) -> bool:
    return name.endswith(RUN_SUFFIXES) and not name.startswith(".")


def run_stem(path) -> str:
    """The run's name without ``.json`` / ``.json.gz``: one run has one stem however it is stored."""
    name = Path(path).name
    for suffix in RUN_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _run_order(path: Path) -> tuple:
    # "<stamp>_<commit>.json" then "<stamp>_<commit>.1.json" for a second run in the same
    # second: plain name order would put ".1" first.
    stem = run_stem(path)
    head, _, tail = stem.rpartition(".")
    if head and tail.isdigit():
        return (head.split("_", 1)[0], int(tail), path.name)
    return (stem.split("_", 1)[0], 0, path.name)


def list_runs(folder: Path) -> list[Path]:
    """The saved runs of one machine folder, ``.json`` and ``.json.gz``, oldest first.

    A run present both ways (a results-branch checkout that also holds the job's fresh
    ``.json``) is listed once, as its ``.json``.
    """
    folder = Path(folder)
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if is_run_name(path.name) and path.is_file():
            stem = run_stem(path)
            if stem not in found or path.name.endswith(".json"):
                found[stem] = path
    return sorted(found.values(), key=_run_order)


def read_baseline(folder: Path) -> Path | None:
    """The run marked as baseline in this machine folder, or None when none is marked.

    The marker names a file; where only its other form exists (``.json`` named, the results
    branch holds ``.json.gz``, or the reverse), that one is the baseline.
    """
    marker = Path(folder) / BASELINE
    if not marker.is_file():
        return None
    name = marker.read_text(encoding="utf-8").strip()
    if not name:
        return None
    path = Path(folder) / name
    if not path.is_file():
        for suffix in RUN_SUFFIXES:
            other = Path(folder) / (run_stem(name) + suffix)
            if other.is_file():
                return other
    return path


def write_baseline(folder: Path, run: Path) -> Path:
    """Mark ``run`` (a file in ``folder``) as baseline; the marker is replaced atomically."""
    marker = Path(folder) / BASELINE
    tmp = marker.with_name(f".{BASELINE}.tmp")
    tmp.write_text(Path(run).name + "\n", encoding="utf-8")
    os.replace(tmp, marker)
    return marker
