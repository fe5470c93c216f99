"""history: a static site of every saved run over time, per machine key and profile.

``python -m benchruns history`` reads every machine folder under ``results/`` (or the ones
named by ``--machine``) and writes ``build/history/``: an overview of trend lines grouped by
question, profile and device; a regressions page of the change points the statistics call
real (benchruns/changepoints.py, the only place those statistics live); a page per
benchmark with its run medians, the spread of rounds as a band, change points, the runs'
machines and versions, and a side-by-side view of machines; and the ``benchruns diff`` of
the two runs around each change. Pages are plain HTML with inline SVG: they open from
disk, offline, with nothing fetched from anywhere. Disturbed runs (their load record says
other processes used the cores, benchruns/load.py) are drawn as hollow red rings and
marked in the run lists, and change points leave them out unless ``--include-disturbed``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .. import storage
from ..runs import BadInput, load_listed
from .model import build_history
from .site import write_site


def _folders(results_dir: Path, machines: list[str] | None) -> list[Path]:
    if not results_dir.is_dir():
        raise BadInput(f"{results_dir}: no such results folder; run `make bench` first")
    folders = storage.machine_folders(results_dir)
    if machines:
        missing = [m for m in machines if not (results_dir / m).is_dir()]
        if missing:
            found = ", ".join(p.name for p in folders) or "none"
            raise BadInput(f"{results_dir}: no machine folder {', '.join(missing)} (found: {found})")
        folders = [results_dir / m for m in machines]
    folders = [f for f in folders if storage.list_runs(f)]
    if not folders:
        raise BadInput(f"{results_dir}: empty results folder (no saved runs); run `make bench` first")
    return folders


def main(args) -> int:
    results_dir = Path(args.results_dir)
    folders = _folders(results_dir, args.machine)
    skipped: list[str] = []
    runs = load_listed([p for f in folders for p in storage.list_runs(f)], skipped)  # all read before writing
    if not runs:
        raise BadInput(f"{results_dir}: no readable run ({skipped[0]}" +
                       (f"; and {len(skipped) - 1} more)" if len(skipped) > 1 else ")"))
    for note in skipped:
        print(note, file=sys.stderr)
    baselines = {f.name: storage.read_baseline(f) for f in folders}
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out}: exists and is not a folder; pass another --out")
    include = getattr(args, "include_disturbed", False)
    normalise = getattr(args, "normalise", "raw") == "probe"
    history = build_history(runs, baselines, include_disturbed=include, normalise=normalise)
    index = write_site(history, out)
    regressions = history.regressions()
    real = sum(1 for s in history.series.values() for st in s.steps if st.real)
    print(f"history: {len(history.benchmarks)} benchmarks, {len(runs)} runs of {len(folders)} machine(s); "
          f"{real} real change point(s), {len(regressions)} of them slower")
    if normalise:
        drawn = sum(s.normalised for s in history.series.values())
        print(f"note: {drawn} of {len(history.series)} series drawn normalised by the reference probe; the rest "
              "have a run without a probe and are drawn raw")
    disturbed = [r for r in runs if r.load_status == "disturbed"]
    if disturbed:
        print(f"note: {len(disturbed)} disturbed run(s) (other processes used the cores) "
              + ("counted in change points (--include-disturbed)" if include else
                 "drawn hollow and left out of change points (pass --include-disturbed to count them)"))
    print(f"overview: {index.resolve()}")
    top = regressions[: args.top]
    print("newest real regressions:" if top else "newest real regressions: none")
    for r in top:
        print(f"  {r.step.change:+.1%} [{r.step.ci_low - 1:+.0%}, {r.step.ci_high - 1:+.0%}] {r.series.name} "
              f"({r.series.key}, {r.series.profile}) {r.before.commit} -> {r.after.commit} at {r.after.label}")
    return 0
