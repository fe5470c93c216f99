"""The history's data: runs split by machine key and profile, one series per benchmark, change points."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..changepoints import Step, find_steps
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
    q1: np.ndarray | None = None
    q3: np.ndarray | None = None
    steps: list[Step] = field(default_factory=list)

    @property
    def latest_step(self) -> Step | None:
        real = [s for s in self.steps if s.real]
        return real[-1] if real else None


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
                    out.append(Change(s, st, s.runs[st.index - 1], s.runs[st.index]))
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


def build_history(runs: list[Run], baselines: dict[str, Path | None]) -> History:
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
        s.q1 = np.array([b.q1 for b in benches])
        s.q3 = np.array([b.q3 for b in benches])
        allowed = [i == 0 or code_changed(s.runs[i - 1], s.runs[i]) for i in range(len(s.runs))]
        s.steps = find_steps(s.median, seed=zlib.crc32(s.fullname.encode()), allowed=allowed)
    return History(by_side, series, baselines, references)
