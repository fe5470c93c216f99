"""How fast does this machine's speed change? One torch step and the reference probe, in 5 ms windows.

``python -m benches.noise_timescale --out docs/data/noise_timescale.json --plot docs/img/noise_timescale.png``

One process, one thread, pinned to one core, alternates windows of about 5 ms: a window of
torch MLP steps (784-256-10, batch 32, inference), then a window of the reference probe
(benchruns/probe.py), for ``--seconds``. Per window it keeps the time per call. From the
torch windows it gives the spread between windows (sd of log), the autocorrelation of log
time at lags of 5 ms to 1 s, and how much two adjacent windows differ; from the pairs of
adjacent torch and probe windows, how closely the probe follows the step's speed.

That is the timescale the A/B design must beat (docs/gate.md): a speed that wanders in
regimes of tens to hundreds of milliseconds is the same for two things measured a
millisecond apart, and different for two things measured a tenth of a second apart.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

WINDOW_S = 0.005
LAGS_MS = (5, 10, 25, 50, 100, 250, 500, 1000)


def torch_step():
    """One inference step of the suite's mlp-small at batch 32 (weights fixed by seed)."""
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()
    x = torch.from_numpy(rng.standard_normal((32, 784)).astype(np.float32))

    def step():
        with torch.no_grad():
            return model(x)

    return step


def windows(step, reference, seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start time, step s per call, probe s per call) of alternating ~5 ms windows."""
    starts, steps, probes = [], [], []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for fn, out in ((step, steps), (reference, probes)):
            n, start = 0, time.perf_counter()
            while True:
                fn()
                n += 1
                elapsed = time.perf_counter() - start
                if elapsed >= WINDOW_S:
                    break
            out.append(elapsed / n)
            if fn is step:
                starts.append(start - t0)
    return np.array(starts), np.array(steps), np.array(probes)


def autocorrelation(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x)) if 0 < lag < len(x) else float("nan")


def analyse(starts: np.ndarray, steps: np.ndarray, probes: np.ndarray) -> dict:
    log_t, log_p = np.log(steps), np.log(probes)
    pitch_ms = float(np.median(np.diff(starts)) * 1e3)  # one torch window to the next (a probe window between)
    acf = {lag: autocorrelation(log_t, max(1, round(lag / pitch_ms))) for lag in LAGS_MS if lag >= pitch_ms * 0.75}
    second = [float(np.median(steps[(starts >= s) & (starts < s + 1)])) for s in range(int(starts[-1]))]
    return {
        "windows": int(len(steps)), "pitch_ms": pitch_ms, "sd_log": float(np.std(log_t, ddof=1)),
        "adjacent_sd_log": float(np.std(np.diff(log_t), ddof=1)),
        "acf": {str(k): v for k, v in acf.items()},
        "probe_correlation": float(np.corrcoef(log_t, log_p)[0, 1]),
        "normalised_sd_log": float(np.std(log_t - log_p, ddof=1)),
        "second_medians_us": [round(v * 1e6, 1) for v in second],
    }


def plot(starts, steps, probes, result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6))
    show = starts < 2.0
    top.plot(starts[show] * 1e3, steps[show] / np.median(steps), lw=0.8, label="torch step (5 ms windows)")
    top.plot(starts[show] * 1e3, probes[show] / np.median(probes), lw=0.8, alpha=0.8, label="reference probe")
    top.set_xlabel("ms")
    top.set_ylabel("time per call / median")
    top.set_title("The machine's speed wanders in regimes; the probe wanders with it")
    top.legend(loc="upper right", fontsize=8)
    lags = [int(k) for k in result["acf"]]
    bottom.semilogx(lags, list(result["acf"].values()), "o-")
    bottom.axhline(0, color="grey", lw=0.5)
    bottom.set_xlabel("lag (ms)")
    bottom.set_ylabel("autocorrelation of log step time")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    from benchruns import load as machine_load
    from benchruns import probe
    from benchruns.argparsing import Parser
    from benchruns.runs import BadInput
    from benchruns.studies import figures as fig

    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "python -m benches.noise_timescale"
    p = Parser(prog=prog, description=__doc__.split("\n\n")[1])
    p.add_argument("--seconds", type=float, default=8.0, help="how long to measure (default 8)")
    p.add_argument("--out", help="write the docs data table here (table data=FILE), with machine, commit and load")
    p.add_argument("--plot", help="write the plot (PNG) here")
    p.add_argument("--allow-dirty", action="store_true", help="with --out: measure a modified checkout (-dirty)")
    args = p.parse_args(argv)
    if not 1 <= args.seconds <= 120:
        print(f"{prog}: bad --seconds value {args.seconds:g}: between 1 and 120", file=sys.stderr)
        return 2
    try:
        sha = fig.commit(fig.ROOT, args.allow_dirty) if args.out else None
    except BadInput as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[-1]})
    step = torch_step()
    for _ in range(200):
        step()
        probe.reference_work()
    meter = machine_load.LoadMeter()
    meter.open()
    try:
        starts, steps, probes = windows(step, probe.reference_work, args.seconds)
    finally:
        meter.close()
    result = analyse(starts, steps, probes)
    status, why, rec = fig.load_of(meter)
    acf = ", ".join(f"{k} ms {v:.2f}" for k, v in result["acf"].items())
    print(f"{result['windows']} windows: sd of log {result['sd_log']:.1%}, adjacent windows differ by "
          f"{result['adjacent_sd_log']:.1%}; autocorrelation {acf}; probe follows the step: r = "
          f"{result['probe_correlation']:.2f}, sd of log(step/probe) {result['normalised_sd_log']:.1%}")
    print(f"machine load: {status}" + (f" ({why})" if why else ""))
    if args.plot:
        plot(starts, steps, probes, result, Path(args.plot))
    if args.out:
        rows = [["windows of about 5 ms (torch step)", str(result["windows"])],
                ["sd of log time between windows", f"{result['sd_log']:.1%}"],
                ["sd of log difference, adjacent windows", f"{result['adjacent_sd_log']:.1%}"],
                *[[f"autocorrelation at {k} ms", f"{v:.2f}"] for k, v in result["acf"].items()],
                ["correlation of log step and log probe, adjacent windows", f"{result['probe_correlation']:.2f}"],
                ["sd of log(step / probe) between windows", f"{result['normalised_sd_log']:.1%}"],
                ["1-s medians of the step (min - max)",
                 f"{min(result['second_medians_us']):.0f} - {max(result['second_medians_us']):.0f} µs"]]
        title = ("One torch MLP step (784-256-10, batch 32, 1 thread, one pinned core) and the reference probe, "
                 "alternating windows of about 5 ms in one process.")
        doc = fig.table_doc(fig.source_text(prog, argv), fig.this_machine(), sha, status, ["figure", "value"], rows,
                            title, load_record=rec, result=result, **({"load_why": why} if why else {}))
        fig.write_table(Path(args.out), doc, prog)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
