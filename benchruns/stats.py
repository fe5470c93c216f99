"""Is a benchmark slower, faster or unchanged between two runs? The decision rule.

For every benchmark found in both runs:

* ratio     = median(cand) / median(base): the effect size, > 1 means slower.
* p-value   = two-sided Mann-Whitney U on the raw per-round times (scipy), then
              Benjamini-Hochberg over all benchmarks of the comparison (scipy's
              ``false_discovery_control``) so that 300 benchmarks do not buy 300 chances
              of a false alarm; FDR rather than Bonferroni keeps power with few rounds.
* 95% CI    = percentile bootstrap of the ratio of medians (fixed seed, so a rerun
              prints the same numbers). Reported, not used in the decision.

Decision, with threshold T (default 10%, per group from thresholds.toml):

    slower  when  p_adj < alpha  and  ratio > 1 + T/2
    faster  when  p_adj < alpha  and  ratio < 1 / (1 + T/2)
    unchanged otherwise

Why this rule. T is the slowdown the gate must catch. Requiring the *lower CI bound*
to exceed 1 + T flags a true slowdown of exactly T only ~2.5% of the time, and
requiring the *point ratio* to exceed 1 + T flags it half the time: either way a
"10% gate" would miss most 10% slowdowns. Putting the boundary halfway (1 + T/2)
decides each case by whether it looks more like "no change" or like "a slowdown of T";
the significance test keeps noisy benchmarks from crossing it by chance. What the
user gives up: a real slowdown between T/2 and T can fail the gate (a grey zone), and
one below T/2 never does. The effect-size floor also guards against what the U test
cannot see: rounds within one process are not independent of the process (clock
state, memory layout), so between-run shifts of a few percent are common and are
significant to a test that sees 100 rounds; they are smaller than T/2 for T >= 10%.

Runs without raw ``data`` fall back to summary statistics (median, IQR, rounds): a
z-test on the log ratio, with the median's standard error taken from the IQR as for a
normal distribution. Timing distributions are skewed, so that verdict is weaker; the
commands say so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

ALPHA = 0.01
N_RESAMPLES = 2000
SEED = 20261127


@dataclass
class Row:
    fullname: str
    name: str
    group: str
    base_median: float
    cand_median: float
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    threshold: float
    verdict: str
    method: str  # "raw" (samples) or "summary" (median/IQR/rounds only)
    base_rounds: int
    cand_rounds: int

    def as_dict(self) -> dict:
        return asdict(self)


# Fewer rounds than this on either side: a 10% slowdown is found in only a few percent of
# trials (measured on recorded 5-round cases), so compare and gate warn instead of implying
# "unchanged" means "checked". Raise pytest's --benchmark-min-rounds for such cases.
MIN_ROUNDS_TO_GATE = 10


def decide(ratio, p_adjusted, threshold, alpha=ALPHA):
    """Vectorised verdicts: 'slower' / 'faster' / 'unchanged' (see the module docstring)."""
    ratio = np.asarray(ratio, dtype=float)
    significant = np.asarray(p_adjusted, dtype=float) < alpha
    floor = 1.0 + np.asarray(threshold, dtype=float) / 2.0
    out = np.full(np.broadcast(ratio, significant, floor).shape, "unchanged", dtype=object)
    out[significant & (ratio > floor)] = "slower"
    out[significant & (ratio < 1.0 / floor)] = "faster"
    return out


def mwu_pvalues(base, cand):
    """Two-sided Mann-Whitney U p-values; works on 1-D samples or row-wise on 2-D batches."""
    from scipy import stats

    base = np.asarray(base, dtype=float)
    cand = np.asarray(cand, dtype=float)
    p = stats.mannwhitneyu(cand, base, alternative="two-sided", axis=-1).pvalue
    # All rounds identical on both sides gives NaN: nothing distinguishes them.
    return np.where(np.isnan(p), 1.0, p)


def adjust(pvalues):
    """Benjamini-Hochberg adjusted p-values across the benchmarks of one comparison."""
    from scipy import stats

    p = np.asarray(pvalues, dtype=float)
    if p.size <= 1:
        return p
    return stats.false_discovery_control(p, method="bh")


class MedianBootstrap:
    """Percentile bootstrap of medians, fast enough for hundreds of benchmarks.

    scipy.stats.bootstrap costs about 12 ms per benchmark here (3.6 s for 300), over
    the 2 s budget of compare/gate. Same resampling, cheaper: the median of a resample
    of sorted x is x at the median of the resampled *indices*, so the index order
    statistics of N resamples are drawn once per sample size (and side, so base and
    candidate resamples stay independent) and reused for every benchmark. Each
    benchmark's CI is still an ordinary percentile bootstrap with N resamples.
    """

    def __init__(self, n_resamples: int = N_RESAMPLES, seed: int = SEED):
        self.n_resamples = n_resamples
        self.seed = seed
        self._positions: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _order_positions(self, n: int, side: int):
        key = (n, side)
        if key not in self._positions:
            rng = np.random.default_rng([self.seed, side, n])
            idx = rng.integers(0, n, size=(self.n_resamples, n), dtype=np.int32)
            lo, hi = (n - 1) // 2, n // 2
            part = np.partition(idx, sorted({lo, hi}), axis=1)
            self._positions[key] = (part[:, lo], part[:, hi])
        return self._positions[key]

    def medians(self, x, side: int):
        xs = np.sort(np.asarray(x, dtype=float))
        lo, hi = self._order_positions(xs.size, side)
        return 0.5 * (xs[lo] + xs[hi])

    def ratio_ci(self, base, cand, level: float = 0.95) -> tuple[float, float]:
        ratios = self.medians(cand, 1) / self.medians(base, 0)
        tail = (1 - level) / 2
        lo, hi = np.quantile(ratios, [tail, 1 - tail])
        return float(lo), float(hi)


def summary_test(base_median, base_iqr, base_rounds, cand_median, cand_iqr, cand_rounds):
    """(p, ci_low, ci_high) from medians, IQRs and rounds only: the weaker fallback."""
    from scipy import stats

    def rel_se(median, iqr, n):
        # sd ~ IQR/1.349 and se(median) ~ 1.2533 sd / sqrt(n), both for a normal shape
        return 1.2533 * (iqr / 1.349) / math.sqrt(max(n, 1)) / median

    log_ratio = math.log(cand_median / base_median)
    se = math.hypot(rel_se(base_median, base_iqr, base_rounds), rel_se(cand_median, cand_iqr, cand_rounds))
    if se <= 0:
        return (1.0 if log_ratio == 0 else 0.0), math.exp(log_ratio), math.exp(log_ratio)
    p = float(2 * stats.norm.sf(abs(log_ratio) / se))
    return p, math.exp(log_ratio - 1.96 * se), math.exp(log_ratio + 1.96 * se)


def compare_benches(pairs, thresholds, alpha: float = ALPHA, bootstrap: MedianBootstrap | None = None) -> list[Row]:
    """Rows for (base Bench, cand Bench) pairs; ``thresholds`` maps a group to its T."""
    bootstrap = bootstrap or MedianBootstrap()
    partial = []
    for base, cand in pairs:
        if base.data is not None and cand.data is not None and base.data.size >= 2 and cand.data.size >= 2:
            bm, cm = float(np.median(base.data)), float(np.median(cand.data))
            p = float(mwu_pvalues(base.data, cand.data))
            lo, hi = bootstrap.ratio_ci(base.data, cand.data)
            method, nb, nc = "raw", base.data.size, cand.data.size
        else:
            bm, cm = base.median, cand.median
            p, lo, hi = summary_test(bm, base.q3 - base.q1, base.rounds, cm, cand.q3 - cand.q1, cand.rounds)
            method, nb, nc = "summary", base.rounds, cand.rounds
        partial.append((base, cand, bm, cm, p, lo, hi, method, nb, nc))
    p_adj = adjust([row[4] for row in partial])
    rows = []
    for (base, cand, bm, cm, p, lo, hi, method, nb, nc), pa in zip(partial, np.atleast_1d(p_adj)):
        threshold = thresholds(cand.group)
        ratio = cm / bm
        rows.append(
            Row(
                fullname=cand.fullname,
                name=cand.name,
                group=cand.group,
                base_median=bm,
                cand_median=cm,
                ratio=ratio,
                ci_low=lo,
                ci_high=hi,
                p_value=p,
                p_adjusted=float(pa),
                threshold=threshold,
                verdict=str(decide(ratio, pa, threshold, alpha)),
                method=method,
                base_rounds=int(nb),
                cand_rounds=int(nc),
            )
        )
    return rows
