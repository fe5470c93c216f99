"""Change points on run medians (benchruns/changepoints.py): behaviour, and error rates measured on real processes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchruns.changepoints import detect_steps, false_step_rates, find_steps, render_rates

DATA = Path(__file__).resolve().parent / "data"
PROCESSES = DATA / "processes_quick_35c2370.json"


def test_finds_one_step_and_nothing_in_noise():
    rng = np.random.default_rng(3)
    flat = np.exp(rng.normal(0, 0.02, 60))
    assert [s for s in find_steps(flat) if s.real] == []
    stepped = flat * np.where(np.arange(60) >= 35, 1.10, 1.0)
    (step,) = [s for s in find_steps(stepped) if s.real]
    assert step.index == 35 and step.ci_low > 1.0 and 1.05 < step.ratio < 1.15 and step.ci_high > step.ratio


def test_one_outlier_run_is_not_a_step():
    values = np.exp(np.random.default_rng(4).normal(0, 0.02, 40))
    values[20] *= 1.5
    assert not any(s.real for s in find_steps(values))


def test_a_noisy_benchmark_needs_a_bigger_step():
    rng = np.random.default_rng(5)
    step = np.where(np.arange(30) >= 15, 1.10, 1.0)
    quiet = np.exp(rng.normal(0, 0.01, 30)) * step
    noisy = np.exp(rng.normal(0, 0.30, 30)) * step
    assert any(s.real for s in find_steps(quiet)) and not any(s.real for s in find_steps(noisy))


def test_steps_only_where_code_or_versions_changed():
    values = np.exp(np.random.default_rng(6).normal(0, 0.01, 20)) * np.where(np.arange(20) >= 10, 1.3, 1.0)
    assert detect_steps(values) == [10]
    allowed = [i in (0, 14) for i in range(20)]  # one commit for runs 0-13, another from 14
    assert detect_steps(values, allowed=allowed) in ([], [14])
    assert 10 not in detect_steps(values, allowed=allowed)


def test_false_step_rate_measured_on_real_processes(figures):
    """Synthetic histories resampled from 12 real quick processes of one commit: nothing changed in them.

    Prints the measured figures (README quotes them); `python -m benchruns history` uses the
    same find_steps, so the figures describe the site's regressions page.
    """
    doc = json.loads(PROCESSES.read_text())
    medians = {k: v["medians"] for k, v in doc["benchmarks"].items()}
    rates = false_step_rates(medians, runs=30, histories=60, steps=(1.10, 1.25))
    # The real processes in the order they ran, with a step allowed anywhere: what drift of a
    # shared machine does that resampling (which shuffles time away) cannot show.
    in_order = sum(any(s.real for s in find_steps(v)) for v in medians.values())
    figures(render_rates(rates, f"{PROCESSES.name}, {len(doc['sources'])} processes of {doc['commit']}") + "\n"
            f"  the {len(doc['sources'])} real processes in the order they ran, steps allowed between any two: "
            f"{in_order} of {len(medians)} benchmarks show a real step (history allows steps only where "
            "the commit or versions change)")
    assert rates.benchmarks == len(medians)
    assert rates.false_step <= 0.02, rates.worst
    assert rates.detection[1.25] > rates.detection[1.10]
