"""The history's data: runs split by machine key and profile, one series per benchmark, change points."""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import probe
from ..changepoints import Step, find_steps, segments
from ..runs import Run

QUESTIONS = ("graph", "pipeline", "transfer", "distributed")
# Fields shown per run and compared between machines: what a reader checks when numbers move.
VERSION_FIELDS = ("torch_version", "tensorflow_version", "numpy_version", "python_version", "gpu_driver",
                  "torch_cuda", "tensorflow_cuda", "threads")
REFERENCE_GROUP = "transfer/reference/"


def question(group: str) -> str:
    head = group.split("/", 1)[0]
    for q in QUESTIONS:
        if head == q or head.startswith(q + "-"):
            return q
    return head or "other"


def device(group: str, extra: dict) -> str:
    dev = extra.get("device")
    if isinstance(dev, str) and dev:
        return dev
    parts = group.split("/")
    return next((p for p in parts if p in ("cpu", "cuda")), "cpu")


def stamp(run: Run) -> str:
    """``2026-11-29 00:29`` from the saved file name (UTC), else the run's datetime."""
    head = run.path.name.split("_", 1)[0]
    if len(head) >= 15 and head[8] == "T":
        return f"{head[0:4]}-{head[4:6]}-{head[6:8]} {head[9:11]}:{head[11:13]}"
    return run.datetime[:16].replace("T", " ")


def profile_of(run: Run) -> str:
    # Run.profile is the lead's property; machine_info is where the harness writes it.
    return getattr(run, "profile", None) or str(run.machine_info.get("profile") or "unknown")


@dataclass
class Series:
    """One benchmark on one machine key and profile: its run medians oldest first."""

    key: str
    profile: str
    fullname: str
    name: str
    group: str
    question: str
    device: str
    runs: list = field(default_factory=list)  # Run objects holding this benchmark
    median: np.ndarray | None = None
    normalised: bool = False  # drawn as probe-normalised seconds (build_history(normalise=True))
    q1: np.ndarray | None = None
    q3: np.ndarray | None = None
    steps: list[Step] = field(default_factory=list)  # each Step.index is a position in ``runs``
    counted: np.ndarray | None = None  # per run: whether change-point detection used it

    @property
    def latest_step(self) -> Step | None:
        real = [s for s in self.steps if s.real]
        return real[-1] if real else None

    @property
    def disturbed(self) -> list[bool]:
        return [r.load_status == "disturbed" for r in self.runs]

    def before(self, step: Step) -> int:
        """Position of the last counted run before ``step``: the old level's end (disturbed runs skipped)."""
        return int(np.flatnonzero(self.counted[:step.index])[-1])

    def levels(self) -> list[tuple[int, int, float]]:
        """(start, end, median of the counted runs) between real change points, as positions in ``runs``."""
        out = []
        for a, b, _ in segments(self.median, [st for st in self.steps if st.real]):
            kept = self.median[a:b][self.counted[a:b]]
            out.append((a, b, float(np.median(kept if kept.size else self.median[a:b]))))
        return out


@dataclass
class Change:
    series: Series
    step: Step
    before: Run  # last run of the old level
    after: Run  # first run of the new level


@dataclass
class History:
    runs: dict  # (key, profile) -> [Run], oldest first
    series: dict  # (key, profile, fullname) -> Series
    baselines: dict  # key -> Path | None
    references: dict = field(default_factory=dict)  # id(run) -> {bytes: median of numpy copyto}
    include_disturbed: bool = False  # whether change points counted the disturbed runs

    @property
    def benchmarks(self) -> dict:
        """fullname -> its series on every machine key and profile."""
        out: dict[str, list[Series]] = {}
        for s in self.series.values():
            out.setdefault(s.fullname, []).append(s)
        return out

    def changes(self) -> list[Change]:
        """Every real change point, newest first (by the first run of the new level)."""
        out = []
        for s in self.series.values():
            for st in s.steps:
                if st.real:
                    out.append(Change(s, st, s.runs[s.before(st)], s.runs[st.index]))
        out.sort(key=lambda c: (c.after.path.name, c.series.fullname), reverse=True)
        return out

    def regressions(self) -> list[Change]:
        return [c for c in self.changes() if c.step.ratio > 1]

    def reference(self, run: Run, bench) -> float | None:
        """The numpy copy limit measured in the same run: same size when there is one, else the largest."""
        refs = self.references.get(id(run)) or {}
        if not refs:
            return None
        size = bench.extra_info.get("bytes")
        return refs.get(size) or refs[max(refs)]


def code_changed(a: Run, b: Run) -> bool:
    """Whether anything but the machine's mood can differ between two consecutive runs."""
    if a.commit != b.commit or a.commit.endswith("-dirty") or a.commit == "nogit":
        return True
    return any(a.machine_info.get(f) != b.machine_info.get(f) for f in VERSION_FIELDS)


def find_series_steps(s: Series, include_disturbed: bool = False) -> list[Step]:
    """Change points of ``s`` on its counted runs (all, or the undisturbed and unrecorded), as positions in ``s.runs``.

    A disturbed run's median mixes the code's speed with whatever else held the cores, so by
    default it is drawn but not counted: one slow disturbed run must not start a "regression".
    """
    s.counted = np.array([include_disturbed or not d for d in s.disturbed], dtype=bool)
    pos = np.flatnonzero(s.counted)
    if pos.size < 2:
        return []
    kept = [s.runs[i] for i in pos]
    allowed = [k == 0 or code_changed(kept[k - 1], kept[k]) for k in range(len(kept))]
    steps = find_steps(s.median[pos], seed=zlib.crc32(s.fullname.encode()), allowed=allowed)
    return [dataclasses.replace(st, index=int(pos[st.index])) for st in steps]


def build_history(runs: list[Run], baselines: dict[str, Path | None], include_disturbed: bool = False,
                  normalise: bool = False) -> History:
    """Every series of every machine key and profile. ``normalise``: a series whose runs all carry the
    reference probe is drawn as median x (typical probe / that run's probe): what the run would have
    measured at the series' typical machine speed; a series with a run without a probe stays raw."""
    by_side: dict[tuple, list[Run]] = {}
    for run in runs:  # runs come oldest first within each machine folder
        by_side.setdefault((run.key, profile_of(run)), []).append(run)
    series: dict[tuple, Series] = {}
    references = {}
    for (key, profile), side in by_side.items():
        for run in side:
            refs = {}
            for name, b in run.benchmarks.items():
                s = series.get((key, profile, name))
                if s is None:
                    s = series[(key, profile, name)] = Series(key, profile, name, b.name, b.group, question(b.group),
                                                              device(b.group, b.extra_info))
                s.runs.append(run)
                if b.group.startswith(REFERENCE_GROUP) and isinstance(b.extra_info.get("bytes"), int):
                    refs[b.extra_info["bytes"]] = b.median
            references[id(run)] = refs
    for s in series.values():
        benches = [r.benchmarks[s.fullname] for r in s.runs]
        s.median = np.array([b.median for b in benches])
        probes = [probe.probe_median(b) for b in benches]
        if normalise and all(probes):  # seconds at the series' typical machine speed (benchruns/probe.py)
            s.median = s.median * (float(np.median(probes)) / np.array(probes))
            s.normalised = True
        s.q1 = np.array([b.q1 for b in benches])
        s.q3 = np.array([b.q3 for b in benches])
        s.steps = find_series_steps(s, include_disturbed)
    return History(by_side, series, baselines, references, include_disturbed)
