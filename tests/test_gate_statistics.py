"""The gate's statistics: error rates on real processes of this suite, and the model's arithmetic.

tests/data/processes_quick_35c2370.json holds the run medians of 10 real quick-profile
processes of commit 35c2370 on the 2-core development machine (`make bench
PROFILE=quick` ten times, alone on the machine, each run's load record undisturbed; the
runs themselves are in results/). Jobs resampled from them (benchruns/studies/errorrates.py, the
gate's own statistics) give:

* false alarms: the share of A/A jobs that fail, paired (ab with its default 4 worker
  pairs) and unpaired (a window of 7 saved runs + 3 new runs of one commit): at most 5%.
  Unpaired with a single new run fails far more often (printed, not bounded): one
  process cannot tell a regression from a process that drew a slow state, which is why
  the saved-run gate takes the newest runs of one commit together;
* detection: a 10% slowdown of the mlp-small graph benchmarks (what a workload doing
  more arithmetic would cause) is caught in at least 90% of jobs for every slowed
  benchmark whose MDE is at most 10%.

The figures are printed in every run (`make test` shows them; `make error-rates`
prints the same table).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchruns.studies import errorrates
from benchruns.config import Thresholds, load_thresholds
from benchruns.runs import BadInput
from benchruns.stats import ALPHA, compare_processes, fit_prior, fit_prior_robust, moderate, trigamma_inverse

DATA = Path(__file__).parent / "data"
PROCESSES = DATA / "processes_quick_35c2370.json"
JOBS = 1000
SLOW = "*mlp-small*"


@pytest.fixture(scope="module")
def procs():
    return errorrates.Processes.from_json(json.loads(PROCESSES.read_text()))


@pytest.fixture(scope="module")
def thresholds():
    return load_thresholds("10%", None)  # the gate's defaults, with benchruns/thresholds.toml


@pytest.fixture(scope="module")
def rates(procs, thresholds):
    return [errorrates.simulate(procs, thresholds, True, 4, JOBS, SLOW),
            errorrates.simulate(procs, thresholds, False, 7, JOBS, SLOW, new_runs=3)]


@pytest.fixture(scope="module")
def one_new_run(procs, thresholds):
    return errorrates.simulate(procs, thresholds, False, 7, JOBS, new_runs=1)


def test_recorded_processes_are_real_and_enough(procs):
    assert procs.count >= 10 and procs.profile == "quick" and not procs.commit.endswith("-dirty")
    assert procs.loads == ["undisturbed"] * procs.count  # each run's load record was checked
    assert len(procs.medians) >= 50
    for name, medians in procs.medians.items():
        spread = max(medians) / min(medians) - 1
        assert spread > 0, name  # separate processes never agree exactly


def test_false_alarms_and_detection_on_real_processes(procs, rates, one_new_run, thresholds, figures):
    figures("gate error rates, resampled from real processes:\n" + errorrates.render(procs, rates, thresholds)
            + f"\nunpaired with a single new run (not bounded): A/A jobs failing {one_new_run.false_alarm:.1%}")
    for r in rates:
        assert r.false_alarm <= 0.05, (r.design, r.false_alarm)
        assert r.slowed, "the detection scenario slowed nothing"
        for name in r.slowed:
            if r.mde[name] <= 0.10:
                assert r.detection[name] >= 0.90, (r.design, name, r.mde[name], r.detection[name])


# --- the model: moderation and the MDE, on data drawn from it ------------------------------


def test_trigamma_inverse():
    from scipy.special import polygamma

    for y in (0.3, 1.0, 4.0, 50.0):
        assert trigamma_inverse(polygamma(1, y)) == pytest.approx(y, rel=1e-6)


def test_prior_recovers_scaled_inverse_chi2():
    rng = np.random.default_rng(1)
    d0, s0_2, df, n = 8.0, 0.003, 4, 4000
    true_var = d0 * s0_2 / rng.chisquare(d0, n)
    s2 = true_var * rng.chisquare(df, n) / df
    est_d0, est_s0_2 = fit_prior(s2, np.full(n, df))
    assert est_d0 == pytest.approx(d0, rel=0.25)
    assert est_s0_2 == pytest.approx(s0_2, rel=0.1)
    # identical variances: no scatter beyond sampling, every benchmark shares one variance
    same = 0.002 * rng.chisquare(df, n) / df
    assert math.isinf(fit_prior(same, np.full(n, df))[0])


def test_robust_prior_holds_against_a_noisy_few_and_leaves_them_their_own_variance():
    """An ab job: 50 interleaved benchmarks (spread ~1%) and 13 first calls judged per process (~20%)."""
    rng = np.random.default_rng(2)
    d0, s0_2, df = 10.0, 1e-4, 3
    quiet = d0 * s0_2 / rng.chisquare(d0, 50) * rng.chisquare(df, 50) / df
    noisy = 0.04 * rng.chisquare(df, 13) / df
    s2 = np.concatenate([quiet, noisy])
    dfs = np.full(len(s2), float(df))
    # the moment fit is dragged by the noisy few: a prior so wide that the quiet ones borrow almost nothing
    assert fit_prior(s2, dfs)[0] < 2
    robust_d0, robust_s0_2 = fit_prior_robust(quiet, np.full(50, float(df)))
    assert robust_s0_2 == pytest.approx(s0_2, rel=0.5) and robust_d0 > 3
    # per stratum: the quiet ones borrow from each other; the noisy ones are not pulled down
    post, post_df = moderate(s2, dfs, strata=["interleaved"] * 50 + ["per process"] * 13)
    assert np.median(post[:50]) < 2 * s0_2 and np.mean(post_df[:50] > df) > 0.9
    assert np.all(post[50:] > 0.004)
    # without strata, the robust fit still treats the noisy few as outliers: they keep their own variance
    post, post_df = moderate(s2, dfs)
    outliers = post[50:] == s2[50:]
    assert outliers.mean() > 0.5 and np.all(post_df[50:][outliers] == df)
    assert np.median(post[:50]) < 3 * s0_2


def simulated_jobs(sigmas, slowdown, paired, per_side, jobs=300, seed=3):
    rng = np.random.default_rng(seed)
    flags, mdes = [], []
    for _ in range(jobs):
        series = []
        for i, s in enumerate(sigmas):
            base = np.exp(rng.normal(0, s, per_side)) * 1e-3
            cand = np.exp(rng.normal(0, s, per_side if paired else 1)) * 1e-3 * slowdown[i]
            series.append((f"b{i}", f"b{i}", "g", base, cand))
        rows = compare_processes(series, Thresholds(0.10), ALPHA, paired)
        flags.append([r.verdict == "slower" for r in rows])
        mdes.append([r.mde for r in rows])
    return np.array(flags), np.median(np.array(mdes), axis=0)


@pytest.mark.parametrize("paired,per_side", [(True, 4), (False, 8)])
def test_mde_is_about_the_slowdown_caught_in_90_percent(paired, per_side):
    """Under the model (normal log medians, 40 benchmarks of mixed spread), a lone slowdown of a
    benchmark's reported MDE is caught in about 90% of jobs (the MDE is itself estimated from
    each job's processes, so single benchmarks scatter around it: the mean over three is held
    to 85%), and A/A jobs fail in at most alpha of them."""
    rng = np.random.default_rng(5)
    sigmas = rng.uniform(0.005, 0.03, 40)
    _, mde = simulated_jobs(sigmas, np.ones(40), paired, per_side, jobs=50)
    caught = []
    for i in range(3):
        effect = max(mde[i], 0.06)  # never below the effect floor, T/2 above 1
        slowdown = np.ones(40)
        slowdown[i] = 1 + effect
        flags, _ = simulated_jobs(sigmas, slowdown, paired, per_side, jobs=200, seed=10 + i)
        caught.append(flags[:, i].mean())
    assert np.mean(caught) >= 0.85, (mde[:3], caught)
    null, _ = simulated_jobs(sigmas, np.ones(40), paired, per_side, seed=9)
    assert null.any(axis=1).mean() <= ALPHA + 0.02


def test_collect_refuses_mixed_commits(tmp_path):
    doc = json.loads((DATA / "run_a.json").read_text())
    paths = []
    for i, commit in enumerate(["aaa", "aaa", "aaa", "bbb"]):
        doc["commit_info"]["id"] = commit
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(doc))
    # runs without a load record are refused: calibration takes undisturbed runs only
    with pytest.raises(BadInput, match="unrecorded run"):
        errorrates.collect(paths)
    quiet = {"schema": 1, "available": True, "other_cores": 0.01, "steal_cores": 0.0, "disturbed": False, "why": ""}
    busy = dict(quiet, other_cores=0.9, disturbed=True, why="other processes used 0.90 of a core")
    for i, path in enumerate(paths):
        d = json.loads(path.read_text())
        d["load"] = busy if i == 1 else quiet
        path.write_text(json.dumps(d))
    with pytest.raises(BadInput, match="disturbed run"):
        errorrates.collect(paths)
    with pytest.raises(BadInput, match="mix commits"):
        errorrates.collect(paths, include_disturbed=True)
    with pytest.raises(BadInput, match="at least 4"):
        errorrates.collect(paths[:2], include_disturbed=True)
