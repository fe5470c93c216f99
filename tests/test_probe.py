"""The reference probe: its budget, the choice between raw and normalised, and that normalising
never hides a change to the benchmark alone (real pytest-benchmark processes, a real code change)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchruns import compare, probe
from benchruns.config import Thresholds
from benchruns.runs import Bench, Run, load_run

ROOT = Path(__file__).resolve().parent.parent


def test_probe_calls_stay_within_their_share_of_the_rounds():
    # A clock that advances 0.15 ms per reading: each probe call measures 0.15 ms, however busy the
    # machine running the tests is (a real call took 13-16 ms under xdist on a loaded CI VM).
    ticks = itertools.count()
    window = probe.Probe(clock=lambda: 0.00015 * next(ticks))
    for _ in range(200):
        window.after_round(0.002)
    assert len(window.samples) >= probe.MIN_SAMPLES
    assert sum(window.samples) <= probe.SHARE * window.rounds_s + max(window.samples)
    summary = window.summary()
    assert summary["calls"] == len(window.samples) and summary["share"] <= probe.SHARE + 0.02


def test_too_few_probe_calls_give_no_figure():
    window = probe.Probe()
    window.after_round(0.0001)
    assert window.summary() is None


def fake_runs(n, speed, probe_speed, seed, scale=1.0, with_probe=True) -> list[Run]:
    """n runs of two benchmarks; the machine's speed per run multiplies the benchmark and (maybe) the probe."""
    rng = np.random.default_rng(seed)
    runs = []
    for i in range(n):
        benches = {}
        for j, base in enumerate((1e-3, 5e-3)):
            median = base * scale * speed[i] * np.exp(rng.normal(0, 0.005))
            info = {"probe": {"median_s": 1e-4 * probe_speed[i] * np.exp(rng.normal(0, 0.005)), "calls": 50}} \
                if with_probe else {}
            name = f"b::t{j}"
            benches[name] = Bench(name, f"t{j}", "graph/x", median, median, median, 50, None, info)
        runs.append(Run(Path(f"r{seed}_{i}.json"), {}, {"id": "a" * 40}, "", benches))
    return runs


def test_auto_normalises_when_the_probe_follows_the_machine_and_not_when_it_does_not():
    speed = np.exp(np.random.default_rng(1).normal(0, 0.15, 10))
    base, cand = fake_runs(7, speed[:7], speed[:7], 1), fake_runs(3, speed[7:], speed[7:], 2)
    use, why = probe.choose("auto", base, cand, ["b::t0", "b::t1"])
    assert use and "normalised by the reference probe" in why
    flat = np.ones(10)
    use, why = probe.choose("auto", fake_runs(7, speed[:7], flat[:7], 3), fake_runs(3, speed[7:], flat[7:], 4),
                            ["b::t0", "b::t1"])
    assert not use and "does not shrink" in why
    cmp = compare.build(base, cand, Thresholds(0.10), normalise="auto")
    assert cmp.normalised == ["b::t0", "b::t1"] and all(r.verdict == "unchanged" for r in cmp.rows)
    raw = compare.build(base, cand, Thresholds(0.10), normalise="raw")
    assert np.median([r.mde for r in cmp.rows]) < np.median([r.mde for r in raw.rows]) / 2


def test_runs_without_a_probe_are_compared_raw_with_a_note():
    speed = np.ones(6)
    base = fake_runs(3, speed, speed, 1, with_probe=False)
    cand = fake_runs(3, speed, speed, 2)
    for mode in ("auto", "probe"):
        cmp = compare.build(base, cand, Thresholds(0.10), normalise=mode)
        assert cmp.normalised == []
        assert any("carry no reference probe" in note and "compared raw" in note for note in cmp.notes)


TINY_CONFTEST = '''
import pytest

from benchruns import probe

CALLS = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with probe.probing(item.funcargs["benchmark"], CALLS):
        return (yield)
'''

TINY_BENCH = '''
def work(n={n}):
    total = 0
    for i in range(n):
        total += i % 7
    return total


def test_work(benchmark):
    benchmark(work)
'''


def run_tiny(folder: Path, n: int, runs: int) -> list[Run]:
    folder.mkdir()
    (folder / "conftest.py").write_text(TINY_CONFTEST)
    (folder / "test_tiny.py").write_text(TINY_BENCH.format(n=n))
    out = []
    for i in range(runs):
        path = folder / f"run{i}.json"
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder),
                               "-c", "/dev/null", f"--benchmark-json={path}", "--benchmark-max-time=0.3",
                               "--benchmark-min-time=0.002", str(folder / "test_tiny.py")],
                              cwd=folder, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out.append(load_run(path))
    return out


def test_normalising_never_hides_a_change_to_the_benchmark_alone(tmp_path):
    """A real code change (four times the loop iterations) in real processes: the probe does not move with it,
    so the normalised comparison flags the change as the raw one does. Four times, not twice: these processes
    share the machine with the rest of the test suite, and with 3 runs a side the MDE reached 52% (a twofold
    change then read 1.75 [unchanged] normalised in one try of ten)."""
    base = run_tiny(tmp_path / "base", 20000, 3)
    cand = run_tiny(tmp_path / "cand", 80000, 3)
    for run in base + cand:
        assert probe.probe_median(run.benchmarks[next(iter(run.benchmarks))]) is not None
    raw = compare.build(base, cand, Thresholds(0.10), normalise="raw").rows[0]
    norm = compare.build(base, cand, Thresholds(0.10), normalise="probe")
    [row] = norm.rows
    assert norm.normalised == [row.fullname]
    # Both say slower, and the normalised ratio keeps most of the change. How close it is to the raw ratio is
    # not asserted: the raw one is what the machine's regimes move (2.0-2.5 for a twofold change between tries).
    assert raw.verdict == row.verdict == "slower", (raw.ratio, row.ratio)
    assert row.ratio > 2.5, (row.ratio, raw.ratio)
    assert row.base_median == pytest.approx(raw.base_median)  # shown in seconds either way
    doc = json.loads((tmp_path / "cand" / "run0.json").read_text())
    assert doc["benchmarks"][0]["extra_info"]["probe"]["calls"] >= probe.MIN_SAMPLES


def test_error_rates_judge_normalised_processes_where_every_process_has_a_probe(tmp_path):
    from benchruns.studies import errorrates

    rng = np.random.default_rng(5)
    speed = np.exp(rng.normal(0, 0.15, 10))
    medians = {f"b::t{j}": list(1e-3 * (j + 1) * speed * np.exp(rng.normal(0, 0.005, 10))) for j in range(6)}
    probes = {name: list(1e-4 * speed * np.exp(rng.normal(0, 0.005, 10))) for name in medians}
    probes["b::t5"][3] = None  # one process without a probe: that benchmark is left out of the normalised figure
    procs = errorrates.Processes("abc1234", "k", "quick", [f"r{i}" for i in range(10)],
                                 {n: "graph/x" for n in medians}, {n: n for n in medians}, medians,
                                 ["undisturbed"] * 10, probes)
    norm = procs.normalised()
    assert sorted(norm.medians) == [f"b::t{j}" for j in range(5)]
    raw_rates = errorrates.simulate(procs, Thresholds(0.10), False, 7, 200, new_runs=3)
    norm_rates = errorrates.simulate(norm, Thresholds(0.10), False, 7, 200, new_runs=3)
    assert np.median(list(norm_rates.mde.values())) < np.median(list(raw_rates.mde.values())) / 2
    again = errorrates.Processes.from_json(json.loads(json.dumps(procs.to_json())))
    assert again.probes == procs.probes
