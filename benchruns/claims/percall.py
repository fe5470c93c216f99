"""Per-call and per-step cost of an API with a fixed cost per call (Keras ``fit``).

Such an API takes, per call, ``per_call + n * per_step`` for n batches. The benches time it
at two or more n (``batches_per_call`` in extra_info: test_idiomatic_train at 4,
test_fit_batches_per_call at more); the line through the cases' medians gives the per-step
cost (slope) and the per-call cost (intercept). A verdict must not divide the per-call cost
by a handful of batches, so the two are reported apart.

The 95% CIs are percentile bootstraps: each case's median is resampled from its raw rounds
(benchruns.stats.MedianBootstrap, fixed seed, one independent side per case) and the line is
refitted on every resample (least squares; with two cases, the line through both). Without
raw rounds, the delta method on the medians' standard errors (from IQR and rounds) gives a
normal CI instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .common import _BOOT, Cmp, Item

# Bootstrap sides apart from the ones ratio_of uses (0, 1, ...), so that these draws are
# independent of a comparison's draws built in the same report.
SIDE_BASE = 100


@dataclass
class Line:
    """time per call = per_call + batches * per_step, fitted over the cases in ``counts``."""

    per_step: float
    per_step_ci: tuple[float, float]
    per_call: float
    per_call_ci: tuple[float, float]
    counts: list[int]  # batches per call of the cases, ascending
    evidence: list[str]  # benchmark names
    method: str  # raw (bootstrap) | summary (delta method)
    per_step_draws: np.ndarray | None = None  # bootstrap draws of the slope, for ratios with other medians

    @property
    def per_call_in_steps(self) -> float:
        return self.per_call / self.per_step if self.per_step > 0 else math.inf


def batches_per_call(item: Item) -> int | None:
    value = item.get("batches_per_call", item.get("steps"))
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def fit_line(cases: list[Item]) -> Line | None:
    """The per-call/per-step line over cases of one API at two or more batch counts; None with fewer.

    Two cases at the same count: the one with more rounds is kept (a rerun of one point adds
    no second point).
    """
    by_count: dict[int, Item] = {}
    for item in cases:
        n = batches_per_call(item)
        if n is not None and (n not in by_count or item.bench.rounds > by_count[n].bench.rounds):
            by_count[n] = item
    if len(by_count) < 2:
        return None
    counts = sorted(by_count)
    items = [by_count[n] for n in counts]
    design = np.column_stack([np.asarray(counts, dtype=float), np.ones(len(counts))])
    medians = np.array([i.median for i in items])
    per_step, per_call = np.linalg.lstsq(design, medians, rcond=None)[0]
    evidence = [i.name for i in items]
    if all(i.has_data for i in items):
        draws = np.vstack([_BOOT.medians(i.bench.data, SIDE_BASE + k) for k, i in enumerate(items)])
        slopes, intercepts = np.linalg.lstsq(design, draws, rcond=None)[0]
        return Line(float(per_step), _ci(slopes), float(per_call), _ci(intercepts), counts, evidence, "raw", slopes)
    # delta method: both coefficients are linear in the medians
    se = np.array([1.2533 * max(i.bench.q3 - i.bench.q1, 0.0) / 1.349 / math.sqrt(max(i.bench.rounds, 1))
                   for i in items])
    weights = np.linalg.pinv(design)  # rows: slope and intercept as weights on the medians
    sd_step, sd_call = np.sqrt((weights ** 2) @ se ** 2)
    return Line(float(per_step), (per_step - 1.96 * sd_step, per_step + 1.96 * sd_step), float(per_call),
                (per_call - 1.96 * sd_call, per_call + 1.96 * sd_call), counts, evidence, "summary")


def _ci(draws: np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return float(lo), float(hi)


def per_step_ratio(line: Line, step: Item, a: str, b: str) -> Cmp:
    """The line's per-step cost over one step of ``step`` (a benchmark timing one step per round)."""
    value = line.per_step / step.median
    evidence = line.evidence + [step.name]
    if line.per_step_draws is not None and step.has_data:
        lo, hi = _ci(line.per_step_draws / _BOOT.medians(step.bench.data, SIDE_BASE + len(line.counts)))
        cmp = Cmp(a, b, value, lo, hi, "raw", evidence)
    else:  # the slope's CI scaled by the step's median: the step's own spread is the smaller part
        lo, hi = line.per_step_ci
        cmp = Cmp(a, b, value, lo / step.median, hi / step.median, "summary", evidence)
    cmp.suspect = step.suspect
    return cmp
