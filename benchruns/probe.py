"""The reference probe: a fixed workload timed between a benchmark's rounds, so that a run carries
the machine's speed at the moments it measured.

On a shared VM the host makes the vCPUs faster or slower in regimes of tens to hundreds of
milliseconds (docs/gate.md). A new commit's run cannot interleave with an old commit's, but
each can interleave its rounds with the same reference: a pure-Python loop and a 96x96
matmul in numpy, no framework. ``benchmark median / probe median`` then takes out what the
machine's regime did to both. The harness (conftest.py) runs one probe call after a round
whenever the probe's share of the timed time stays under ``SHARE``, and records per
benchmark ``extra_info["probe"]`` and per run ``probe`` in the JSON.

Whether the normalised figure is used is decided from data, never assumed: compare and gate
use it (``--normalise auto``) only when it shrinks the spread between the base side's runs
(``choose``); an old run without a probe is compared raw, with a note.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np

SHARE = 0.10  # at most this share of a benchmark's timed time goes to probe calls
MIN_SAMPLES = 5  # fewer probe calls than this: the benchmark has no probe figure
SHRINK = 0.9  # auto: the normalised spread must be below this fraction of the raw spread

_A = np.random.default_rng(7).standard_normal((96, 96)).astype(np.float32)
_B = np.random.default_rng(8).standard_normal((96, 96)).astype(np.float32)


def reference_work() -> float:
    """One probe call (about 0.1-0.2 ms here): interpreter work and a small BLAS call."""
    total = 0
    for i in range(2000):
        total += i * i % 7
    return float((_A @ _B)[0, 0]) + total


class Probe:
    """Probe calls interleaved with one benchmark's rounds, within a time budget."""

    def __init__(self, share: float = SHARE, clock=time.perf_counter):
        self.share = share
        self.clock = clock
        self.samples: list[float] = []
        self.rounds_s = 0.0

    def after_round(self, round_s: float) -> None:
        """Called after each timed round: one probe call when the budget allows."""
        self.rounds_s += round_s
        if sum(self.samples) > self.share * self.rounds_s:
            return
        start = self.clock()
        reference_work()
        self.samples.append(self.clock() - start)

    def summary(self) -> dict | None:
        if len(self.samples) < MIN_SAMPLES:
            return None
        return {"median_s": float(np.median(self.samples)), "calls": len(self.samples),
                "share": round(sum(self.samples) / self.rounds_s, 4) if self.rounds_s else None}


def warm_up(calls: int = 20) -> None:
    for _ in range(calls):
        reference_work()


def median_call_s(calls: int) -> float:
    """The median of ``calls`` probe calls timed now, after a warm-up: the machine's speed at this moment
    (lower is faster), for a figure taken outside a benchmark's rounds."""
    warm_up()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        reference_work()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def wrap_runner(make_runner, probe: Probe):
    """pytest-benchmark's ``_make_runner`` whose runners call the probe after each round."""

    def make(function_to_benchmark, args, kwargs):
        runner = make_runner(function_to_benchmark, args, kwargs)

        def probed(loops_range, *rest, **kw):
            out = runner(loops_range, *rest, **kw)  # a duration, or (duration, result) for a single call
            probe.after_round(out[0] if isinstance(out, tuple) else out)
            return out

        return probed

    return make


@contextlib.contextmanager
def probing(bench, calls: list[float]):
    """Interleave the probe with the rounds of ``bench`` (a pytest-benchmark fixture) while the test runs;
    then record its figure in ``extra_info["probe"]`` and add its calls to the run's ``calls``."""
    if not calls:
        warm_up()
    window = Probe()
    bench._make_runner = wrap_runner(bench._make_runner, window)
    try:
        yield window
    finally:
        del bench._make_runner  # the instance attribute: back to the class's method
        summary = window.summary()
        if summary is not None:
            bench.extra_info["probe"] = summary
        calls.extend(window.samples)


def run_record(calls: list[float]) -> dict:
    """The run's probe figure (the JSON's top-level ``probe``): over every benchmark's calls."""
    return {"median_s": float(np.median(calls)), "calls": len(calls), "workload": "benchruns.probe.reference_work"}


def probe_median(bench) -> float | None:
    """A saved benchmark's probe median in seconds, None when it has none (older runs, single rounds)."""
    rec = (bench.extra_info or {}).get("probe")
    value = rec.get("median_s") if isinstance(rec, dict) else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else None


def normalised(bench) -> float | None:
    """median / probe median (dimensionless), None without a probe."""
    p = probe_median(bench)
    return bench.median / p if p else None


def spreads(runs, names) -> tuple[float, float, int]:
    """Median over benchmarks of the sd of log(raw) and log(normalised) between ``runs``; benchmarks counted."""
    raw_sd, norm_sd = [], []
    for name in names:
        benches = [run.benchmarks[name] for run in runs if name in run.benchmarks]
        norms = [normalised(b) for b in benches]
        if len(benches) < 3 or any(v is None for v in norms):
            continue
        raw_sd.append(np.std(np.log([b.median for b in benches]), ddof=1))
        norm_sd.append(np.std(np.log(norms), ddof=1))
    if not raw_sd:
        return math.nan, math.nan, 0
    return float(np.median(raw_sd)), float(np.median(norm_sd)), len(raw_sd)


def choose(mode: str, base_runs, cand_runs, names) -> tuple[bool, str]:
    """Whether to compare benchmark/probe; and one line saying what was used and why.

    ``raw``: never. ``probe``: wherever both sides carry a probe. ``auto``: only when, over the base
    runs, the median spread of the normalised figure is below SHRINK times the raw one."""
    have = [n for n in names if all(normalised(r.benchmarks[n]) is not None
                                    for r in list(base_runs) + list(cand_runs) if n in r.benchmarks)]
    if mode == "raw":
        return False, "raw medians (--normalise raw)"
    if not have:
        return False, ("raw medians: these runs carry no reference probe (made before it existed, or single-round "
                       "cases); compared raw, not normalised")
    if mode == "probe":
        return True, f"normalised by the reference probe (--normalise probe; {len(have)} of {len(names)} benchmarks)"
    raw_sd, norm_sd, n = spreads(base_runs, have)
    if n == 0:
        return False, "raw medians: too few base runs with a probe (3 needed) to tell whether the probe helps"
    figures = f"median spread between base runs {raw_sd:.1%} raw, {norm_sd:.1%} normalised, over {n} benchmarks"
    if norm_sd < SHRINK * raw_sd:
        return True, f"normalised by the reference probe ({figures})"
    return False, f"raw medians: the reference probe does not shrink the spread here ({figures})"
