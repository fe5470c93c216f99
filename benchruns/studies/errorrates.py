"""error-rates: the gate's false alarms and detection, measured on real processes of one commit.

Input: N >= 10 saved runs of one commit, one machine and one profile (real, separate
pytest processes; nothing in them differs but the process). Each simulated job draws
processes without replacement and runs the gate's own statistics
(``stats.compare_processes``) on their run medians:

* **paired A/A** (``ab``): 2P distinct processes, pair i = (process A_i, process B_i),
  P pairs (default 5). Pairs of separately started processes carry no shared drift, so
  this is the pessimistic case for ``ab``, whose pairs take turns seconds apart.
* **unpaired A/A** (saved runs): a window of W base runs (default 8) and one new run
  (``--new`` for more).
* **detection**: the same draws with the candidate's medians of the benchmarks matched by
  ``--slow`` multiplied by 1.10: a 10% slowdown of some benchmarks, as a real code change
  makes it. Per slowed benchmark: the share of jobs that flag it, beside its median MDE.

A job *fails* when any benchmark is flagged slower; the false-alarm rate is the share of
A/A jobs that fail. ``python -m benchruns error-rates RUN...`` prints the figures;
``--save FILE`` keeps the run medians (a few kB) for tests/data.
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..probe import probe_median
from ..runs import BadInput, load_run
from ..stats import ALPHA, judge

JOBS = 1000
SLOWDOWN = 1.10
SEED = 20261129


@dataclass
class Processes:
    """Run medians of one commit: ``medians[name]`` holds one value per process (None if absent)."""

    commit: str
    machine_key: str
    profile: str
    sources: list[str]
    groups: dict[str, str]
    names: dict[str, str]
    medians: dict[str, list]
    loads: list[str] | None = None  # load status of each process's run: only "undisturbed" is quoted
    probes: dict[str, list] | None = None  # per benchmark: each process's reference-probe median (None if none)

    def subset(self, names: list[str]) -> "Processes":
        """The same processes with only ``names``."""
        return Processes(self.commit, self.machine_key, self.profile, self.sources,
                         {n: self.groups[n] for n in names}, {n: self.names[n] for n in names},
                         {n: self.medians[n] for n in names}, self.loads,
                         {n: self.probes[n] for n in names if n in self.probes} if self.probes else None)

    def normalised(self) -> "Processes":
        """The same processes judged on median / probe (benchruns/probe.py), for the benchmarks whose every
        process carries a probe; the others are left out."""
        probes = self.probes or {}
        keep = [n for n in self.medians if n in probes and all(p is not None for p in probes[n])
                and all(m is not None for m in self.medians[n])]
        return Processes(self.commit, self.machine_key, self.profile, self.sources,
                         {n: self.groups[n] for n in keep}, {n: self.names[n] for n in keep},
                         {n: [m / p for m, p in zip(self.medians[n], probes[n])] for n in keep}, self.loads)

    @property
    def count(self) -> int:
        return len(self.sources)

    def to_json(self) -> dict:
        return {"what": "run medians (seconds) of real pytest processes of one commit, one per run file",
                "commit": self.commit, "machine_key": self.machine_key, "profile": self.profile,
                "sources": self.sources, "loads": self.loads,
                "benchmarks": {k: {"name": self.names[k], "group": self.groups[k], "medians": v,
                                   **({"probes": self.probes[k]} if self.probes and k in self.probes else {})}
                               for k, v in self.medians.items()}}

    @classmethod
    def from_json(cls, doc: dict) -> "Processes":
        b = doc["benchmarks"]
        return cls(doc["commit"], doc["machine_key"], doc["profile"], doc["sources"],
                   {k: v["group"] for k, v in b.items()}, {k: v["name"] for k, v in b.items()},
                   {k: v["medians"] for k, v in b.items()}, doc.get("loads"),
                   {k: v["probes"] for k, v in b.items() if "probes" in v} or None)


def collect(paths, include_disturbed: bool = False) -> Processes:
    """Run medians of real runs of one commit; a disturbed run is refused (it would calibrate on noise
    that a quiet machine does not have), and so is one with no load record unless asked."""
    runs = [load_run(p) for p in paths]
    for run in runs:
        if run.load_status != "undisturbed" and not include_disturbed:
            raise BadInput(f"{run.path}: {run.load_status} run ({run.load_why}); error rates are calibrated on "
                           "undisturbed runs only (pass --include-disturbed to use it anyway)")
    if len(runs) < 4:
        raise BadInput(f"{len(runs)} run file(s): error rates need at least 4 processes of one commit (10 or more "
                       "for figures worth quoting)")
    for attr, what in (("commit", "commit"), ("key", "machine key"), ("profile", "profile")):
        values = sorted({getattr(r, attr) for r in runs})
        if len(values) > 1:
            raise BadInput(f"the runs mix {what}s ({', '.join(values)}); error rates need processes of one {what}")
    names = sorted({n for r in runs for n in r.benchmarks})
    ref = {n: next(r.benchmarks[n] for r in runs if n in r.benchmarks) for n in names}
    medians = {n: [r.benchmarks[n].median if n in r.benchmarks else None for r in runs] for n in names}
    probes = {n: [probe_median(r.benchmarks[n]) if n in r.benchmarks else None for r in runs] for n in names}
    return Processes(runs[0].commit, runs[0].key, runs[0].profile, [r.label for r in runs],
                     {n: ref[n].group for n in names}, {n: ref[n].name for n in names}, medians,
                     [r.load_status for r in runs], {n: v for n, v in probes.items() if any(v)} or None)


@dataclass
class Rates:
    design: str
    jobs: int
    per_side: int
    new_runs: int
    false_alarm: float  # share of A/A jobs with any benchmark flagged slower
    flagged: dict[str, float]  # per benchmark: share of A/A jobs flagging it
    detection: dict[str, float]  # per slowed benchmark: share of jobs flagging it
    mde: dict[str, float]  # per benchmark: median MDE over the jobs
    slowed: list[str]


def simulate(procs: Processes, thresholds, paired: bool = True, per_side: int = 5, jobs: int = JOBS,
             slow: str = "", slowdown: float = SLOWDOWN, alpha: float = ALPHA, seed: int = SEED,
             new_runs: int = 1, guard: bool = True) -> Rates:
    """Resampled jobs of the gate on real process medians (see the module docstring)."""
    names = [n for n, v in procs.medians.items() if all(x is not None for x in v)]
    need = 2 * per_side if paired else per_side + new_runs
    if procs.count < need:
        raise BadInput(f"{procs.count} processes recorded; a {'paired' if paired else 'unpaired'} job with "
                       f"{per_side} per side needs {need}")
    logs = np.log(np.array([procs.medians[n] for n in names], dtype=float))  # benchmarks x processes
    slowed = [n for n in names if slow and (fnmatch.fnmatchcase(n, slow) or fnmatch.fnmatchcase(procs.groups[n], slow))]
    shift = np.array([[math.log(slowdown) if n in slowed else 0.0] for n in names])
    rng = np.random.default_rng(seed)
    fails = 0
    flag_null = np.zeros(len(names))
    flag_slow = np.zeros(len(names))
    mdes = np.zeros((jobs, len(names)))
    limits = np.array([thresholds(procs.groups[n]) for n in names])
    for j in range(jobs):
        pick = rng.choice(procs.count, size=need, replace=False)
        base, cand = logs[:, pick[:per_side]], logs[:, pick[per_side:]]
        tested, _, verdicts = judge(base, cand, limits, alpha, paired, guard)
        flagged = verdicts == "slower"
        flag_null += flagged
        fails += bool(flagged.any())
        mdes[j] = tested.mde
        if slowed:
            flag_slow += judge(base, cand + shift, limits, alpha, paired, guard)[2] == "slower"
    return Rates(
        design="paired" if paired else "unpaired", jobs=jobs, per_side=per_side, new_runs=new_runs,
        false_alarm=fails / jobs,
        flagged={n: flag_null[i] / jobs for i, n in enumerate(names)},
        detection={n: flag_slow[i] / jobs for i, n in enumerate(names) if n in slowed},
        mde={n: float(np.median(mdes[:, i])) for i, n in enumerate(names)}, slowed=slowed)


def render(procs: Processes, rates: list[Rates], thresholds) -> str:
    lines = [f"{procs.count} processes of commit {procs.commit} ({procs.profile} profile, {procs.machine_key}); "
             f"{rates[0].jobs} resampled jobs per design"]
    for r in rates:
        what = (f"{r.per_side} worker pairs" if r.design == "paired"
                else f"a window of {r.per_side} runs + {r.new_runs} new run{'s' if r.new_runs > 1 else ''}")
        gateable = [n for n, m in r.mde.items() if m <= thresholds(procs.groups[n])]
        lines.append(f"{r.design} ({what}): A/A jobs failing {r.false_alarm:.1%}; "
                     f"{len(gateable)} of {len(r.mde)} benchmarks gateable at their threshold "
                     f"(median MDE {np.median(list(r.mde.values())):.1%})")
        if r.slowed:
            caught = [r.detection[n] for n in r.slowed]
            small = [n for n in r.slowed if r.mde[n] <= SLOWDOWN - 1]
            rate_small = min((r.detection[n] for n in small), default=math.nan)
            lines.append(f"  a {SLOWDOWN - 1:.0%} slowdown of {len(r.slowed)} benchmarks: caught in "
                         f"{min(caught):.0%}-{max(caught):.0%} of jobs; the {len(small)} with MDE <= "
                         f"{SLOWDOWN - 1:.0%}: at least {rate_small:.0%}")
            for n in r.slowed:
                lines.append(f"    {procs.names[n]}: MDE {r.mde[n]:.1%}, caught {r.detection[n]:.0%}")
    return "\n".join(lines)


def main(args) -> int:
    from ..config import load_thresholds

    thresholds = load_thresholds(args.threshold, args.config, not args.no_config)
    if args.processes:
        procs = Processes.from_json(json.loads(Path(args.processes).read_text(encoding="utf-8")))
    else:
        procs = collect(args.runs, getattr(args, "include_disturbed", False))
    if args.save:
        out = Path(args.save)
        if out.exists():
            raise BadInput(f"{out}: exists; pass another --save path (nothing is overwritten)")
        out.write_text(json.dumps(procs.to_json(), indent=1) + "\n", encoding="utf-8")
    guard = not getattr(args, "no_guard", False)
    rates = [simulate(procs, thresholds, True, args.pairs, args.jobs, args.slow, alpha=args.alpha, guard=guard),
             simulate(procs, thresholds, False, args.window, args.jobs, args.slow, alpha=args.alpha,
                      new_runs=args.new, guard=guard)]
    print(render(procs, rates, thresholds))
    if procs.probes:
        norm = procs.normalised()
        if norm.medians:
            print("judged on benchmark / reference probe (benchmarks whose every process carries one):")
            print(render(norm, [simulate(norm, thresholds, False, args.window, args.jobs, args.slow, alpha=args.alpha,
                                         new_runs=args.new, guard=guard)], thresholds))
    if getattr(args, "table", None):
        write_table(Path(args.table), procs, thresholds, args, source=f"`python -m benchruns error-rates "
                    f"{'--processes ' + args.processes if args.processes else 'RUNS'} --pairs {args.pairs} "
                    f"--window {args.window} --new {args.new} --table ...`")
    return 0


def write_table(path: Path, procs: Processes, thresholds, args, source: str) -> None:
    """The docs' table: A/A failure rate, gateable count and median MDE per design, alpha and guard.

    Rows for the gate's alpha (0.025) and the nominal 0.05, each with and without the
    "every process agrees" guard: what each costs or buys on these processes.
    """
    norm = procs.normalised() if procs.probes else None
    designs = [(True, args.pairs, 1, f"{args.pairs} pairs of separately started processes (no interleaving)", procs,
                "raw")]
    for new in sorted({args.new, 3}):
        if procs.count >= args.window + new:
            designs.append((False, args.window, new, f"saved runs, window of {args.window} vs {new} new", procs, "raw"))
            if norm is not None and norm.medians:
                label = f"saved runs, window of {args.window} vs {new} new"
                designs.append((False, args.window, new, label, procs.subset(list(norm.medians)),
                                "raw, the benchmarks that carry a probe"))
                designs.append((False, args.window, new, label, norm, "benchmark / probe"))
    rows = []
    for paired, per_side, new, label, which, figure in designs:
        for alpha in (0.025, 0.05):
            for guard in (True, False):
                r = simulate(which, thresholds, paired, per_side, args.jobs, alpha=alpha, new_runs=new, guard=guard)
                gateable = sum(m <= thresholds(which.groups[n]) for n, m in r.mde.items())
                rows.append([label, figure, f"{alpha:g}", "on" if guard else "off", f"{r.false_alarm:.1%}",
                             f"{gateable} of {len(r.mde)}", f"{np.median(list(r.mde.values())):.1%}"])
    loads = getattr(procs, "loads", None) or ["unrecorded"]
    doc = {"source": source, "machine": procs.machine_key, "commit": procs.commit,
           "load": "undisturbed" if set(loads) == {"undisturbed"} else "disturbed",
           "columns": ["design", "figure", "alpha", "agreement guard", "A/A jobs failing", "gateable at threshold",
                       "median MDE"],
           "rows": rows, "processes": procs.count, "jobs": args.jobs}
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
