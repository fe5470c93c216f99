"""Change points in a benchmark's history of run medians: the one place these statistics live.

The unit is the process: each saved run contributes one number per benchmark, its median
(rounds inside a process only estimate that median; between processes it moves by far
more, see benchruns/stats.py). A history is the sequence of a benchmark's run medians of
one machine key and one profile, oldest first.

**Detection** is a penalised piecewise-constant fit (optimal partitioning, the exact search
that PELT prunes: Killick, Fearnhead & Eckley 2012, "Optimal detection of changepoints with
a linear computational cost", JASA 107(500)) on the *rank scores* of the medians: minimise
the within-segment sum of squares plus ``PENALTY * ln(n)`` per change. Process medians on a
shared machine are heavy-tailed and often bimodal (a µs-scale case here sits at 4.3 or 8 µs
depending on the process), so a Gaussian fit with a noise estimate from the same few runs
calls steps where a process just landed in the other mode; on ranks the null variance is
1 whatever the shape of the spread, so one penalty serves every benchmark and the spread is
accounted for by construction. Segments are at least ``MIN_SEGMENT`` runs long, so one odd
run is not a level. A history may also say where a change can start (``allowed``): the site
allows one only where the commit or the recorded versions change, since between two runs of
the same code and versions only the machine moved.

**Each change** gets its size (ratio of the medians of the segments on either side) with a
95% percentile-bootstrap interval, and is called *real* when a Mann-Whitney test between
the two segments gives p < ``ALPHA`` and the size is at least ``MIN_EFFECT``. The test
ignores that the location was chosen from the data, so what the whole procedure does on
unchanged code is measured, not assumed: ``false_step_rates`` builds synthetic histories
by resampling real process medians of one commit (no change anywhere) and counts the
histories where a real step is reported, and the same histories with a step injected half
way measure detection. tests/test_changepoints.py prints both on the recorded processes in
tests/data; README ("Runs over time") quotes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

MIN_SEGMENT = 3
# Penalty per change in units of ln(n) (the null variance of rank scores is 1). 2 would be
# BIC's; 3 keeps the measured false-step rate on real processes of this machine under 1%
# of benchmark histories (README, "Runs over time"), 2 gave 7%.
PENALTY = 3.0
MIN_EFFECT = 0.02  # smaller steps are not reported as regressions, however sure
ALPHA = 0.01  # Mann-Whitney level between the segments on either side of a change
LEVEL = 0.95


def rank_scores(values) -> np.ndarray:
    """Mid-ranks of the values scaled to mean 0 and variance 1 (for n values without ties)."""
    y = np.asarray(values, dtype=float)
    n = y.size
    order = np.argsort(y, kind="stable")
    r = np.empty(n)
    r[order] = np.arange(1, n + 1)
    if np.unique(y).size < n:  # ties share their mid-rank
        r = _st.rankdata(y)
    return (r - (n + 1) / 2) / math.sqrt(max(n * n - 1, 1) / 12)


def detect_steps(values, min_segment: int = MIN_SEGMENT, penalty: float = PENALTY, allowed=None) -> list[int]:
    """Indices where a new level starts: penalised least squares on the rank scores of the medians.

    Exact optimal partitioning (the search that PELT prunes; at a few hundred runs the exact
    search is cheap). On rank scores the null variance is 1 whatever the shape of the
    benchmark's run-to-run spread, so one penalty fits every benchmark. ``allowed[i]`` (optional)
    says whether a new level may start at run i: a history passes "the commit or the versions
    changed here", since between two runs of the same code and versions only the machine moved.
    """
    y = rank_scores(values)
    n = y.size
    if n < 2 * min_segment:
        return []
    beta = penalty * math.log(n)
    s1 = np.concatenate([[0.0], np.cumsum(y)])
    s2 = np.concatenate([[0.0], np.cumsum(y * y)])
    idx = np.arange(n + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # cost[s, t]: sum of squares of y[s:t] around its mean
        cost = (s2[None, :] - s2[:, None]) - (s1[None, :] - s1[:, None]) ** 2 / (idx[None, :] - idx[:, None])
    best = np.full(n + 1, np.inf)
    best[0] = -beta  # the first segment carries no change penalty
    last = np.zeros(n + 1, dtype=int)
    if allowed is not None:
        ok = np.concatenate([[True], np.asarray(allowed, dtype=bool)[1:], [True]])
        best_mask = np.where(ok, 0.0, np.inf)
    else:
        best_mask = np.zeros(n + 1)
    for t in range(min_segment, n + 1):
        total = best[: t - min_segment + 1] + best_mask[: t - min_segment + 1] + cost[: t - min_segment + 1, t]
        i = int(total.argmin())
        best[t], last[t] = total[i] + beta, i
    steps, t = [], n
    while t > 0:
        t = last[t]
        if t > 0:
            steps.append(t)
    return sorted(steps)


@dataclass
class Step:
    """A change of level starting at run ``index`` of the history."""

    index: int
    before: float  # median of the segment's run medians before the change (seconds)
    after: float
    ratio: float  # after / before
    ci_low: float
    ci_high: float
    p: float  # Mann-Whitney, the segments on either side
    real: bool

    @property
    def change(self) -> float:
        return self.ratio - 1


def _interval(a: np.ndarray, b: np.ndarray, rng, level: float = LEVEL, resamples: int = 400) -> tuple[float, float]:
    """Percentile-bootstrap interval of median(b) / median(a), each segment resampled on its own."""
    ra = np.median(rng.choice(a, size=(resamples, a.size)), axis=1)
    rb = np.median(rng.choice(b, size=(resamples, b.size)), axis=1)
    lo, hi = np.quantile(rb / ra, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def find_steps(values, min_segment: int = MIN_SEGMENT, penalty: float = PENALTY, alpha: float = ALPHA,
               min_effect: float = MIN_EFFECT, seed: int = 0, intervals: bool = True, allowed=None) -> list[Step]:
    """Every detected change with its size and interval; ``real`` marks the ones to report."""
    y = np.asarray(values, dtype=float)
    idx = detect_steps(y, min_segment=min_segment, penalty=penalty, allowed=allowed)
    bounds = [0] + idx + [y.size]
    rng = np.random.default_rng(seed)
    out = []
    for k, cut in enumerate(idx):
        a, b = y[bounds[k]:cut], y[cut:bounds[k + 2]]
        before, after = float(np.median(a)), float(np.median(b))
        p = _st.mannwhitneyu(a, b, alternative="two-sided").pvalue
        lo, hi = _interval(a, b, rng) if intervals else (math.nan, math.nan)
        real = bool(p < alpha and abs(after / before - 1) >= min_effect)
        out.append(Step(cut, before, after, after / before, lo, hi, float(p), real))
    return out


def segments(values, steps: list[Step]) -> list[tuple[int, int, float]]:
    """(start, end, median level) of each segment between steps."""
    y = np.asarray(values, dtype=float)
    bounds = [0] + [s.index for s in steps] + [y.size]
    return [(a, b, float(np.median(y[a:b]))) for a, b in zip(bounds[:-1], bounds[1:])]


# --- measured error rates ----------------------------------------------------------------


@dataclass
class StepRates:
    benchmarks: int
    histories: int  # synthetic histories per benchmark
    runs: int  # runs per synthetic history
    false_step: float  # share of (benchmark, history) with a real step although nothing changed
    detection: dict  # injected step (e.g. 1.10) -> share of histories where it is found, all benchmarks
    detection_quiet: dict  # the same over benchmarks whose run-to-run spread is under QUIET
    quiet: int  # how many benchmarks that is
    spread: float  # median run-to-run spread (IQR/1.349 of log medians) over the benchmarks
    worst: list  # (benchmark, false-step share), most first


QUIET = 0.15  # run-to-run spread (IQR/1.349 of log medians) counted as a quiet benchmark


def false_step_rates(medians: dict[str, list[float]], runs: int = 30, histories: int = 40, steps=(1.10,),
                     seed: int = 20261129, penalty: float = PENALTY) -> StepRates:
    """Resample real process medians of one commit into histories with no change, and with one step.

    Each synthetic history draws ``runs`` medians with replacement from the benchmark's real
    processes (so it has their spread, tails and modes, and no change); each detection
    history is the same draw with its second half multiplied by the injected step, found when
    a real slower step is reported within two runs of it.
    """
    rng = np.random.default_rng(seed)
    false = 0
    hits = {s: 0 for s in steps}
    hits_quiet = {s: 0 for s in steps}
    n_bench = n_quiet = 0
    worst, spreads = [], []
    half = runs // 2
    for name, values in sorted(medians.items()):
        real = np.asarray([v for v in values if v], dtype=float)
        if real.size < 4:
            continue
        n_bench += 1
        q1, q3 = np.percentile(np.log(real), [25, 75])
        spread = float(q3 - q1) / 1.349
        spreads.append(spread)
        quiet = spread < QUIET
        n_quiet += quiet
        mine = 0
        for _ in range(histories):
            draw = rng.choice(real, size=runs, replace=True)
            mine += any(s.real for s in find_steps(draw, penalty=penalty, intervals=False))
            for step in steps:
                stepped = draw * np.where(np.arange(runs) >= half, step, 1.0)
                found = any(s.real and abs(s.index - half) <= 2 and s.ratio > 1
                            for s in find_steps(stepped, penalty=penalty, intervals=False))
                hits[step] += found
                hits_quiet[step] += found and quiet
        false += mine
        worst.append((name, mine / histories))
    worst.sort(key=lambda kv: -kv[1])
    total = max(n_bench * histories, 1)
    return StepRates(n_bench, histories, runs, false / total, {s: hits[s] / total for s in steps},
                     {s: hits_quiet[s] / (n_quiet * histories) if n_quiet else math.nan for s in steps},
                     n_quiet, float(np.median(spreads)) if spreads else math.nan, worst[:5])


def render_rates(r: StepRates, source: str) -> str:
    lines = [f"change points, measured on {r.benchmarks} benchmarks' real process medians ({source}): "
             f"{r.histories} resampled histories of {r.runs} runs each per benchmark, median run-to-run spread "
             f"{r.spread:.0%}",
             f"  false steps (no change in the data): {r.false_step:.2%} of benchmark histories "
             f"(about {r.false_step * r.benchmarks:.1f} of the {r.benchmarks} benchmarks per {r.runs}-run history)"]
    for step in r.detection:
        lines.append(f"  injected {step - 1:+.0%} step half way: found in {r.detection[step]:.0%} of histories "
                     f"(all benchmarks), {r.detection_quiet[step]:.0%} for the {r.quiet} with spread under {QUIET:.0%}")
    return "\n".join(lines)
