"""The gate's decision rule on timing distributions recorded in tests/data.

For each recorded benchmark with raw rounds, draw 1000 trial pairs (base, candidate) of
the recorded size from the recorded rounds (resampling with replacement):

* false alarm: both sides from the same distribution; the gate must flag "slower" in
  at most 1% of trials;
* detection: the candidate's rounds x 1.10 (a 10% slowdown) with the default threshold
  of 10%; by the rule in benchruns/stats.py ("slower" = significant and median ratio
  above 1 + threshold/2) the gate must flag it in at least 95% of trials, for every
  benchmark whose rounds are stable (IQR under 10% of the median) and number at least
  MIN_ROUNDS_TO_GATE. A heavy case timed in only a few rounds (the suite's minimum is 5)
  cannot be gated at all, and compare says so rather than calling it unchanged. An unstable one
  (e.g. bimodal: the median hops between two modes from run to run) is only held to
  the false-alarm bound; its detection rate is printed, not hidden.

The test calls the gate's own functions (mwu_pvalues, decide), vectorised over trials.
With one benchmark per trial, Benjamini-Hochberg changes nothing. The figures are
printed in every run (``make test`` shows them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchruns.stats import ALPHA, MIN_ROUNDS_TO_GATE, decide, mwu_pvalues

DATA = Path(__file__).parent / "data"
TRIALS = 1000
THRESHOLD = 0.10  # the gate's default
SLOWDOWN = 1.10
STABLE_IQR = 0.10
MIN_GATED_ROUNDS = MIN_ROUNDS_TO_GATE


def recorded_benchmarks():
    out = []
    for path in sorted(DATA.glob("recorded_*.json")):  # real runs of this suite, trimmed
        doc = json.loads(path.read_text())
        for bench in doc["benchmarks"]:
            data = bench["stats"].get("data")
            if data and len(data) >= 5:
                out.append(pytest.param(np.asarray(data), id=f"{path.stem}:{bench['name']}"))
    return out


def flag_rate(base, cand):
    ratio = np.median(cand, axis=1) / np.median(base, axis=1)
    verdicts = decide(ratio, mwu_pvalues(base, cand), THRESHOLD, ALPHA)
    return float(np.mean(verdicts == "slower"))


@pytest.mark.parametrize("rounds_data", recorded_benchmarks())
def test_false_alarms_and_detection(rounds_data, capsys):
    rng = np.random.default_rng(7)
    n = rounds_data.size  # the recorded benchmark's own rounds count
    base = rng.choice(rounds_data, size=(TRIALS, n))
    same = rng.choice(rounds_data, size=(TRIALS, n))
    slower = rng.choice(rounds_data, size=(TRIALS, n)) * SLOWDOWN
    false_alarm = flag_rate(base, same)
    detection = flag_rate(base, slower)
    figures = (f"rounds={n}: false alarms {false_alarm:.1%} on identical distributions, "
               f"detection {detection:.1%} of a {SLOWDOWN - 1:.0%} slowdown at threshold {THRESHOLD:.0%} "
               f"({TRIALS} trials)")
    q1, median, q3 = np.percentile(rounds_data, [25, 50, 75])
    stable = (q3 - q1) / median < STABLE_IQR
    enough = n >= MIN_GATED_ROUNDS
    figures += "" if stable else f"; unstable (IQR {(q3 - q1) / median:.0%} of the median): detection not required"
    figures += "" if enough else f"; only {n} rounds (a heavy case): too few to gate, compare warns about it"
    with capsys.disabled():  # `make test` prints the figures, as README promises
        print(f"\ngate statistics: {figures}")
    assert false_alarm <= 0.01, figures
    if stable and enough:
        assert detection >= 0.95, figures


def test_recorded_data_present():
    assert recorded_benchmarks(), "tests/data has no run with raw rounds (stats.data)"
