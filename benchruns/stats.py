"""Did a benchmark get slower? Process-level statistics for compare, gate and ab.

**The process is the unit.** Rounds inside one pytest process estimate that process's
median; between processes the median moves by far more (thread placement, memory
layout, the neighbours of a shared machine; docs/gate.md has the spread measured here). Rounds are therefore
reduced to one number per process and benchmark, its median, and every verdict rests on
those run medians, on the log scale (timing effects are multiplicative):

* **unpaired** (saved runs: a lookback window of N base runs against the new run(s)):
  two-sample t on log medians with the pooled between-process variance,
  se = s * sqrt(1/n_base + 1/n_cand).
* **paired** (``ab``: worker pairs, A and B taking turns in one pair): one-sample t on
  the per-pair differences d = log(B) - log(A), se = sd(d) / sqrt(pairs). Taking turns
  close in time lets drift of the machine hit both sides of a pair alike.

**Borrowing strength across benchmarks.** With 3-6 processes a side each benchmark's
own variance has 2-5 degrees of freedom, and a t test at a multiplicity-corrected
level then needs an enormous t. The variances are moderated with the empirical-Bayes
rule of limma (Smyth 2004, "Linear models and empirical Bayes methods for assessing
differential expression", SAGMB 3(1)): the benchmarks' variances are modelled as
scaled inverse-chi-square around a prior s0^2 with d0 degrees of freedom, both fitted
from this job's own variances, and each benchmark's variance is shrunk to
(d0 s0^2 + d s^2) / (d0 + d) with d0 + d degrees of freedom. A benchmark whose
processes disagree a lot keeps most of its own variance; a quiet one is not declared
infinitely precise because two runs happened to agree.

The prior is fitted robustly, and per stratum. A job mixes measurements of different
kinds: in ``ab``, interleaved timing rounds (spread about 1%) beside first calls and cold
compiles judged per process (10-100%); a few benchmarks are bimodal from process to
process. A moment fit on all of them gives a prior so wide (small d0) that every quiet
benchmark loses its borrowed degrees of freedom, and so large (s0^2) that its variance is
pulled up: the MDEs of an A/A job's interleaved benchmarks came out 2-3x what their own
pairs showed. So (i) ``strata`` (one label per benchmark, e.g. interleaved / per process)
fits a prior within each label of at least MIN_STRATUM benchmarks; (ii) the prior is fitted
on quantiles, not moments: (d0, s0^2) such that the model's median and interquartile range
of log s^2 (s^2 / s0^2 ~ F(d, d0)) match the observed ones, which holds up to a quarter of
outlying variances on either side; (iii) a benchmark whose variance is an outlier under that
prior (F upper tail, Benjamini-Hochberg at OUTLIER_LEVEL) keeps its own variance and
degrees of freedom, unshrunk (in the spirit of limma's robust=TRUE, Phipson et al. 2016,
"Robust hyperparameter estimation protects against hypervariable genes and improves power
to detect differential expression", Ann. Appl. Stat. 10(2)). The false-alarm rate this
gives on real interleaved pairs is measured, not assumed (docs/gate.md).

**Job-wide error rate.** Two-sided p-values are adjusted with Benjamini-Hochberg over
every benchmark of the comparison (scipy.stats.false_discovery_control). Under the
complete null (an A/A job: no benchmark changed) BH at level alpha bounds the chance
that *any* benchmark is flagged by alpha, which is the job's false-alarm rate; with
real changes it keeps far more power than Bonferroni or Holm.

**Verdict** with threshold T (per group, thresholds.toml; T is the slowdown to catch):

    slower     p_adj < alpha and ratio > 1 + T/2 and every process agrees
    faster     p_adj < alpha and ratio < 1 / (1 + T/2) and every process agrees
    unchanged  otherwise

The effect floor halfway to T decides a case by whether it looks more like no change or
like a slowdown of T, and keeps tiny but significant shifts from failing CI. "Every
process agrees" is a guard against heavy tails: on this machine a process now and then
runs one benchmark 2-14x slower for its whole life (no transient: its rounds agree with
each other), and a mean-based test on 5 processes can be carried by that one. Paired:
every pair's B/A ratio lies on the verdict's side of 1; unpaired: every candidate run
lies beyond every base run of the window ("outside what those runs show"). At the MDE
the guard costs little power (each pair agrees with probability Phi(crit/sqrt(P)),
above 0.99 here); without a change it holds by chance with probability 2^-P per side
(paired) or n_c! n_b! / (n_b + n_c)! (unpaired).

**Minimum detectable slowdown (MDE)**, per benchmark, from the spread measured in this
job: the true slowdown that would be flagged with probability POWER (90%) at the
Bonferroni level alpha/m (what BH demands of a lone change among m benchmarks):
exp(ncp * se) - 1, ncp from the noncentral t at the moderated degrees of freedom
(``detectable_ncp``). A benchmark whose MDE exceeds its threshold is reported as "not gateable
here (MDE x%)": its "unchanged" means "could not tell", and the output says so.

What the rates are on this suite's real processes (false alarms on A/A jobs, detection
of a real 10% change) is measured by tests/test_gate_statistics.py and by real ``make
ab`` jobs; docs/gate.md gives the figures and the commands.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

# Job-wide level of Benjamini-Hochberg. Nominally the A/A failure rate; the process medians
# of this machine are heavy-tailed, and on 10 undisturbed quick processes the saved-run gate
# (a window of 7 against 3 new runs) failed more than 5% of A/A jobs at 0.05 and fewer at
# 0.025 (docs/gate.md, `make error-rates`), so the default keeps the measured rate under 5%.
ALPHA = 0.025
POWER = 0.90  # the MDE is the slowdown caught in this share of jobs
MIN_RUNS = 3  # fewer processes a side (or pairs) than this: too few to gate
# A variance of exactly zero (identical medians, e.g. one file compared with itself) has
# no logarithm; this floor (a 0.01% spread) is far below any real between-process spread.
MIN_VARIANCE = 1e-8
MIN_STRATUM = 8  # a stratum with fewer benchmarks borrows the prior fitted on the whole job
OUTLIER_LEVEL = 0.05  # BH level at which a benchmark's variance is too large for the prior to shrink
SEED = 20261127
N_RESAMPLES = 2000


@dataclass
class Row:
    """One benchmark's process-level comparison."""

    fullname: str
    name: str
    group: str
    base_median: float  # geometric mean of the base processes' medians (seconds)
    cand_median: float
    ratio: float  # cand / base; > 1 is slower
    ci_low: float  # 95% CI of the ratio (moderated t)
    ci_high: float
    p_value: float
    p_adjusted: float  # Benjamini-Hochberg over the comparison
    threshold: float
    mde: float  # minimum detectable slowdown (0.12 = 12%); inf when nothing estimates the spread
    spread: float  # between-process sd of log medians (about the relative spread of one process)
    verdict: str
    design: str  # "paired" or "unpaired"
    n_base: int  # processes (runs) on each side; pairs for the paired design
    n_cand: int

    @property
    def gateable(self) -> bool:
        return self.mde <= self.threshold

    def as_dict(self) -> dict:
        out = asdict(self)
        out["gateable"] = self.gateable
        out["mde"] = None if not math.isfinite(self.mde) else self.mde
        return out


def decide(ratio, p_adjusted, threshold, alpha=ALPHA, agree_slower=True, agree_faster=True):
    """Vectorised verdicts: 'slower' / 'faster' / 'unchanged' (see the module docstring)."""
    ratio = np.asarray(ratio, dtype=float)
    significant = np.asarray(p_adjusted, dtype=float) < alpha
    floor = 1.0 + np.asarray(threshold, dtype=float) / 2.0
    out = np.full(np.broadcast(ratio, significant, floor).shape, "unchanged", dtype=object)
    out[significant & (ratio > floor) & np.asarray(agree_slower)] = "slower"
    out[significant & (ratio < 1.0 / floor) & np.asarray(agree_faster)] = "faster"
    return out


def adjust(pvalues):
    """Benjamini-Hochberg adjusted p-values across the benchmarks of one comparison."""
    from scipy import stats

    p = np.asarray(pvalues, dtype=float)
    if p.size <= 1:
        return p
    return stats.false_discovery_control(p, method="bh")


# --- empirical-Bayes moderation of the variances (limma's squeezeVar) ----------------------


def trigamma_inverse(x):
    """y with trigamma(y) = x, by limma's Newton iteration (Smyth 2004, appendix)."""
    from scipy.special import polygamma

    x = np.asarray(x, dtype=float)
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = polygamma(1, y)
        step = tri * (1 - tri / x) / polygamma(2, y)
        y = y + step
        if np.all(-step / y < 1e-8):
            break
    return y


def fit_prior(s2, df) -> tuple[float, float]:
    """(d0, s0^2): the prior of the variances, fitted by moments on log s^2 (limma's fitFDist).

    d0 is infinite when the variances scatter no more than chi-square sampling alone
    would make them: then every benchmark shares one variance.
    """
    from scipy.special import digamma, polygamma

    s2, df = np.asarray(s2, dtype=float), np.asarray(df, dtype=float)
    ok = (df > 0) & np.isfinite(s2)
    if ok.sum() < 2:
        return 0.0, float(np.median(s2[ok])) if ok.any() else 0.0
    s2, df = np.maximum(s2[ok], MIN_VARIANCE), df[ok]
    e = np.log(s2) - digamma(df / 2) + np.log(df / 2)
    e_mean = float(np.mean(e))
    excess = float(np.var(e, ddof=1) - np.mean(polygamma(1, df / 2)))
    if excess <= 0:
        return math.inf, math.exp(e_mean)
    d0 = float(2 * trigamma_inverse(excess))
    s0_2 = math.exp(e_mean + float(digamma(d0 / 2)) - math.log(d0 / 2))
    return d0, s0_2


@functools.lru_cache(maxsize=64)
def _log_f_quantiles(d: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a grid of d0 (log-spaced, 1e-3 to 1e6): the IQR and the median of log F(d, d0).

    The IQR falls monotonically with d0, so the robust fit reads d0 off this grid by
    interpolation (in log d0) instead of solving with quantile functions for every job."""
    from scipy import stats as st

    d0 = np.logspace(-3, 6, 400)
    q1, q2, q3 = (np.log(st.f.ppf(q, d, d0)) for q in (0.25, 0.5, 0.75))
    return d0, q3 - q1, q2


def fit_prior_robust(s2, df) -> tuple[float, float]:
    """(d0, s0^2) by matching the median and interquartile range of log s^2 to the model's.

    Under the model s^2 / s0^2 ~ F(d, d0), so log s^2 has quantiles log s0^2 + log F_q(d, d0);
    the IQR falls with d0 (to that of log chi2_d / d at d0 = inf), which fixes d0, and the
    median then fixes s0^2. d: the median of the benchmarks' degrees of freedom.
    """
    from scipy import stats as st

    s2, df = np.asarray(s2, dtype=float), np.asarray(df, dtype=float)
    ok = (df > 0) & np.isfinite(s2)
    if ok.sum() < 4:
        return fit_prior(s2, df)
    z = np.log(np.maximum(s2[ok], MIN_VARIANCE))
    d = float(np.median(df[ok]))
    q1, med, q3 = np.quantile(z, [0.25, 0.5, 0.75])
    grid, iqrs, medians = _log_f_quantiles(d)
    if q3 - q1 <= iqrs[-1]:  # no more scatter than sampling alone: all alike
        return math.inf, float(math.exp(med - math.log(st.chi2.ppf(0.5, d) / d)))
    if q3 - q1 >= iqrs[0]:
        return float(grid[0]), float(math.exp(med - medians[0]))
    # iqrs falls with the grid: interpolate log d0 on the reversed (rising) arrays
    log_d0 = float(np.interp(q3 - q1, iqrs[::-1], np.log(grid)[::-1]))
    return float(math.exp(log_d0)), float(math.exp(med - np.interp(log_d0, np.log(grid), medians)))


def moderate(s2, df, strata=None, prior: str = "robust") -> tuple[np.ndarray, np.ndarray]:
    """Posterior variances and their degrees of freedom (d0 + d) for each benchmark.

    The prior is fitted robustly within each stratum of at least MIN_STRATUM benchmarks (the
    others share one fitted on the whole job); benchmarks whose variance is an outlier under
    their prior keep their own (module docstring). ``prior="moments"``: the earlier rule, one
    moment fit on every benchmark (kept to measure what the robust one changes: ab-aa)."""
    from scipy import stats as st

    s2, df = np.asarray(s2, dtype=float), np.asarray(df, dtype=float)
    s2_safe = np.where(df > 0, np.maximum(np.nan_to_num(s2), MIN_VARIANCE), 0.0)
    if prior == "moments":
        d0, s0_2 = fit_prior(s2, df)
        if math.isinf(d0):
            return np.full_like(s2, s0_2), np.full_like(df, 1e6)
        if d0 == 0:
            return s2_safe, df
        return (d0 * s0_2 + df * s2_safe) / (d0 + df), d0 + df
    labels = np.asarray(strata if strata is not None else [""] * len(s2), dtype=object)
    sizes = {label: int(np.sum(labels == label)) for label in set(labels)}
    labels = np.array([label if sizes[label] >= MIN_STRATUM else None for label in labels], dtype=object)
    post_s2, post_df = s2_safe.copy(), df.copy()
    for label in set(labels):
        rows = np.array([lab == label for lab in labels])
        fit_on = rows if label is not None else np.ones(len(rows), dtype=bool)
        d0, s0_2 = fit_prior_robust(s2[fit_on], df[fit_on])
        if d0 == 0 or s0_2 <= 0:
            continue
        # The prior is estimated from the stratum's own variances: it cannot carry more degrees of
        # freedom than they hold together (and "infinite", all alike, is never proven by a few pairs).
        d0 = min(d0, float(np.sum(np.maximum(df[fit_on], 0))))
        shrunk = (d0 * s0_2 + df[rows] * s2_safe[rows]) / (d0 + df[rows])
        shrunk_df = d0 + df[rows]
        tail = st.f.sf(s2_safe[rows] / s0_2, np.maximum(df[rows], 1), d0)
        tail = np.where(df[rows] > 0, tail, 1.0)
        outlier = (adjust(tail) < OUTLIER_LEVEL) if tail.size > 1 else tail < OUTLIER_LEVEL
        post_s2[rows] = np.where(outlier | (df[rows] <= 0), s2_safe[rows], shrunk)
        post_df[rows] = np.where(outlier | (df[rows] <= 0), df[rows], shrunk_df)
    return post_s2, post_df


# --- the test on run medians ---------------------------------------------------------------


def detectable_ncp(alpha_two_sided, power, df):
    """The shift, in standard errors, that a two-sided t test at ``alpha`` detects with ``power``.

    Power of a t test is a noncentral-t tail; its normal approximation (Johnson & Welch
    1940) T' ~ N(ncp, 1 + t^2 / 2df) gives ncp = t_crit + z_power * sqrt(1 + t_crit^2 / 2df),
    which stays close where the plain t_crit + t_power undershoots (few degrees of
    freedom, extreme t_crit: both are the case here).
    """
    from scipy import stats

    df = np.asarray(df, dtype=float)
    t_crit = stats.t.ppf(1 - alpha_two_sided / 2, df)
    return t_crit + stats.norm.ppf(power) * np.sqrt(1 + t_crit**2 / (2 * df))


@dataclass
class Tested:
    """Vectorised result over benchmarks: effect, moderated se and df, p, CI, MDE, spread."""

    log_ratio: np.ndarray
    se: np.ndarray
    df: np.ndarray
    p: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    mde: np.ndarray
    spread: np.ndarray


def padded(rows) -> np.ndarray:
    """A list of 1-D arrays (benchmarks of differing process counts) as a 2-D array, NaN-padded."""
    if isinstance(rows, np.ndarray) and rows.ndim == 2:
        return rows.astype(float)
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def moderated_t(base, cand, paired: bool, alpha: float = ALPHA, power: float = POWER, strata=None,
                prior: str = "robust") -> Tested:
    """Per benchmark i (row i): the log run medians of each side (paired: column p of both from
    worker pair p; NaN where a process lacks the benchmark). The moderated t test of the difference;
    ``strata``: one label per benchmark, the priors' strata (``moderate``)."""
    from scipy import stats

    base, cand = padded(base), padded(cand)
    m = base.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        if paired:
            d = cand - base
            n = np.sum(~np.isnan(d), axis=1).astype(float)
            effect = np.nansum(d, axis=1) / n
            df = n - 1
            ss = np.nansum((d - effect[:, None]) ** 2, axis=1)
            scale = 1 / np.sqrt(n)
            spread_factor = 1 / math.sqrt(2)  # var(d) = 2 var(one process)
        else:
            nb = np.sum(~np.isnan(base), axis=1).astype(float)
            nc = np.sum(~np.isnan(cand), axis=1).astype(float)
            mb, mc = np.nansum(base, axis=1) / nb, np.nansum(cand, axis=1) / nc
            effect = mc - mb
            df = nb + nc - 2
            ss = np.nansum((base - mb[:, None]) ** 2, axis=1) + np.nansum((cand - mc[:, None]) ** 2, axis=1)
            scale = np.sqrt(1 / nb + 1 / nc)
            spread_factor = 1.0
        s2 = np.where(df > 0, ss / np.maximum(df, 1), np.nan)
    post_s2, post_df = moderate(s2, df, strata, prior)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(post_s2) * scale
        t = np.where(se > 0, effect / se, 0.0)
    usable = post_df > 0
    safe_df = np.where(usable, post_df, 1.0)
    p = np.where(usable, 2 * stats.t.sf(np.abs(t), safe_df), 1.0)
    half = stats.t.ppf(0.975, safe_df) * se
    # Shrinkage pulls a noisier-than-typical benchmark's variance down; the MDE must not
    # promise what its own processes do not show, so it uses the larger of the two.
    own = np.where(df > 0, np.sqrt(np.nan_to_num(s2)) * scale, 0.0)
    mde = np.where(usable, np.expm1(detectable_ncp(alpha / max(m, 1), power, safe_df) * np.maximum(se, own)), np.inf)
    return Tested(
        log_ratio=effect,
        se=se,
        df=post_df,
        p=p,
        ci_low=np.where(usable, np.exp(effect - half), np.nan),
        ci_high=np.where(usable, np.exp(effect + half), np.nan),
        mde=mde,
        spread=np.where(df > 0, np.sqrt(np.nan_to_num(s2)) * spread_factor, np.nan),
    )


def processes_agree(base, cand, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per benchmark (all say slower, all say faster): the heavy-tail guard of the verdict."""
    base, cand = padded(base), padded(cand)
    with np.errstate(invalid="ignore"):
        if paired:
            d = cand - base
            seen = ~np.isnan(d)
            return np.all((d > 0) | ~seen, axis=1), np.all((d < 0) | ~seen, axis=1)
        return np.nanmin(cand, axis=1) > np.nanmax(base, axis=1), np.nanmax(cand, axis=1) < np.nanmin(base, axis=1)


def judge(base_log, cand_log, thresholds, alpha: float = ALPHA, paired: bool = False, guard: bool = True,
          strata=None, prior: str = "robust"):
    """Vectorised verdicts on log run medians (rows = benchmarks): (Tested, p_adjusted, verdicts).

    ``guard=False`` drops the "every process agrees" condition (only error-rates uses it, to
    measure what the guard buys)."""
    tested = moderated_t(base_log, cand_log, paired, alpha, strata=strata, prior=prior)
    p_adj = np.atleast_1d(adjust(tested.p))
    if guard:
        slower_ok, faster_ok = processes_agree(base_log, cand_log, paired)
    else:
        slower_ok = faster_ok = np.ones(len(p_adj), dtype=bool)
    verdicts = decide(np.exp(tested.log_ratio), p_adj, thresholds, alpha, slower_ok, faster_ok)
    return tested, p_adj, verdicts


def compare_processes(series: list[tuple], thresholds, alpha: float = ALPHA, paired: bool = False,
                      strata=None) -> list[Row]:
    """Rows for ``(fullname, name, group, base_medians, cand_medians)``; medians in seconds.

    ``thresholds`` maps a group to its T. For the paired design both lists are ordered by
    worker pair.
    """
    if not series:
        return []
    base = padded([np.log(np.asarray(s[3], dtype=float)) for s in series])
    cand = padded([np.log(np.asarray(s[4], dtype=float)) for s in series])
    limits = np.array([thresholds(s[2]) for s in series])
    tested, p_adj, verdicts = judge(base, cand, limits, alpha, paired, strata=strata)
    rows = []
    for i, (fullname, name, group, b, c) in enumerate(series):
        rows.append(Row(
            fullname=fullname, name=name, group=group,
            base_median=float(np.exp(np.nanmean(base[i]))), cand_median=float(np.exp(np.nanmean(cand[i]))),
            ratio=float(np.exp(tested.log_ratio[i])), ci_low=float(tested.ci_low[i]), ci_high=float(tested.ci_high[i]),
            p_value=float(tested.p[i]), p_adjusted=float(p_adj[i]), threshold=float(limits[i]),
            mde=float(tested.mde[i]), spread=float(tested.spread[i]), verdict=str(verdicts[i]),
            design="paired" if paired else "unpaired", n_base=len(b), n_cand=len(c),
        ))
    return rows


# --- descriptive helpers kept for the report's claims (one run, rounds) ---------------------


class MedianBootstrap:
    """Percentile bootstrap of medians of rounds (the report's CIs within one run).

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


