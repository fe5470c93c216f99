"""history: per-benchmark trend plots over a machine's saved runs, with step changes.

Step changes come from a penalised piecewise-constant fit of the log medians (optimal
partitioning, the exact search that PELT prunes; at ~100 runs the exact search is
cheap): minimise the within-segment sum of squares plus a BIC-like penalty of
2 sigma^2 ln(n) per change (a change adds a location and a level). sigma is the
run-to-run noise, estimated robustly from successive differences (MAD), so a step
does not inflate it. Segments are at least two runs long, so one outlier run is not
reported as a pair of steps, and runs far from their 3-run running median are replaced by it first, so
that a single outlier run is not fitted as a short segment. Unlike a pairwise threshold, the fit uses every run on
both sides of a change and does not fire on a single noisy run.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
import sys
from pathlib import Path

import numpy as np

from . import storage
from .compare import fmt_time
from .runs import BadInput, load_run, machine_folder, saved_runs

MIN_SEGMENT = 2
# Below this run-to-run noise (0.5%) steps would be "detected" in numerically
# identical runs; nobody acts on a sub-percent step.
MIN_SIGMA = 0.005


def noise_sigma(y: np.ndarray) -> float:
    if y.size < 3:
        return MIN_SIGMA
    d = np.diff(y)
    mad = np.median(np.abs(d - np.median(d)))
    return max(1.4826 * mad / math.sqrt(2), MIN_SIGMA)


def detect_steps(values, min_segment: int = MIN_SEGMENT, sigma: float | None = None) -> list[int]:
    """Indices where a new level starts, by penalised least squares on log(values)."""
    y = np.log(np.asarray(values, dtype=float))
    n = y.size
    if n < 2 * min_segment:
        return []
    sigma = noise_sigma(y) if sigma is None else sigma
    # Runs far (4 sigma) from their 3-run running median are single-run outliers: one
    # bad night is not a new level. Only those are replaced, so edges stay exact.
    smooth = np.concatenate([y[:1], np.median(np.stack([y[:-2], y[1:-1], y[2:]]), axis=0), y[-1:]])
    y = np.where(np.abs(y - smooth) > 4 * sigma, smooth, y)
    penalty = 2 * sigma**2 * math.log(n)
    s1 = np.concatenate([[0.0], np.cumsum(y)])
    s2 = np.concatenate([[0.0], np.cumsum(y * y)])
    best = np.full(n + 1, np.inf)
    best[0] = -penalty  # the first segment carries no change penalty
    last = np.zeros(n + 1, dtype=int)
    for t in range(min_segment, n + 1):
        s = np.arange(0, t - min_segment + 1)
        s = s[np.isfinite(best[s])]
        length = t - s
        cost = (s2[t] - s2[s]) - (s1[t] - s1[s]) ** 2 / length
        total = best[s] + cost + penalty
        i = int(np.argmin(total))
        best[t], last[t] = total[i], s[i]
    steps, t = [], n
    while t > 0:
        t = last[t]
        if t > 0:
            steps.append(t)
    return sorted(steps)


def _slug(fullname: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", fullname.split("::")[-1]).strip("_")[:60]
    return f"{base}-{hashlib.sha1(fullname.encode()).hexdigest()[:8]}.png"


def collect(paths):
    """Per benchmark: run indices, medians, q1, q3 (from each run's stats)."""
    runs, series = [], {}
    for i, path in enumerate(paths):
        run = load_run(path)
        runs.append(run)
        for name, b in run.benchmarks.items():
            s = series.setdefault(name, {"name": b.name, "group": b.group, "x": [], "median": [], "q1": [], "q3": []})
            s["x"].append(i)
            s["median"].append(b.median)
            s["q1"].append(b.q1)
            s["q3"].append(b.q3)
    return runs, series


def main(args) -> int:
    folder = machine_folder(args.results_dir, args.machine)
    paths = saved_runs(folder)
    baseline = storage.read_baseline(folder)
    runs, series = collect(paths)  # validates every run before anything is written
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out}: exists and is not a folder; pass another --out")
    out.mkdir(parents=True, exist_ok=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base_index = next((i for i, p in enumerate(paths) if baseline and p.name == baseline.name), None)
    labels = [f"{r.path.name[4:8]}-{r.path.name[9:13]}\n{r.commit}" for r in runs]
    fig, ax = plt.subplots(figsize=(6.4, 2.6), dpi=80)
    entries = []
    for fullname, s in sorted(series.items(), key=lambda kv: (kv[1]["group"], kv[1]["name"])):
        x = np.asarray(s["x"])
        med = np.asarray(s["median"])
        steps = detect_steps(med)
        ax.clear()
        scale, unit = _unit(np.median(med))
        ax.fill_between(x, np.asarray(s["q1"]) / scale, np.asarray(s["q3"]) / scale, color="C0", alpha=0.25, lw=0, label="IQR")
        ax.plot(x, med / scale, "o-", color="C0", ms=3, lw=1, label="median")
        bounds = [0] + steps + [len(x)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            level = math.exp(np.mean(np.log(med[a:b]))) / scale
            ax.hlines(level, x[a] - 0.4, x[b - 1] + 0.4, colors="C3" if steps else "0.5", lw=1.5)
        for k in steps:
            ax.axvspan(x[k - 1], x[k], color="C3", alpha=0.15)
        if base_index is not None:
            ax.axvline(base_index, color="C2", ls="--", lw=1, label="baseline")
        ax.set_title(f"{s['group']} :: {s['name']}", fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
        ticks = np.unique(np.linspace(0, len(runs) - 1, min(len(runs), 6)).round().astype(int))
        ax.set_xticks(ticks, [labels[t] for t in ticks], fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlim(-0.5, len(runs) - 0.5)
        fig.tight_layout()
        png = _slug(fullname)
        fig.savefig(out / png)
        changes = [f"{runs[x[k]].path.name} ({med[k:].mean() / med[:k].mean() - 1:+.0%})" for k in steps]
        entries.append({"group": s["group"], "name": s["name"], "png": png, "runs": len(x),
                        "latest": float(med[-1]), "steps": changes})
    plt.close(fig)
    _write_index(out, folder, paths, baseline, entries)
    n_steps = sum(bool(e["steps"]) for e in entries)
    print(f"history: {len(entries)} benchmarks over {len(paths)} runs of {folder.name}; "
          f"{n_steps} with step changes; see {out / 'index.html'}")
    return 0


def _unit(value):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return scale, unit
    return 1e-9, "ns"


def _write_index(out: Path, folder: Path, paths, baseline, entries) -> None:
    head = (f"{len(entries)} benchmarks, {len(paths)} runs of `{folder.name}` "
            f"({paths[0].name} … {paths[-1].name}); baseline: {baseline.name if baseline else 'none'}")
    md = [f"# Benchmark history: {folder.name}", "", head, "", "| group | benchmark | runs | latest median | step changes |", "|---|---|---|---|---|"]
    rows = []
    for e in entries:
        steps = "; ".join(e["steps"]) or "none"
        md.append(f"| {e['group']} | [{e['name']}]({e['png']}) | {e['runs']} | {fmt_time(e['latest'])} | {steps} |")
        style = ' style="background:#fde"' if e["steps"] else ""
        rows.append(f"<tr{style}><td>{html.escape(e['group'])}</td><td><a href=\"{e['png']}\">{html.escape(e['name'])}</a></td>"
                    f"<td>{e['runs']}</td><td>{fmt_time(e['latest'])}</td><td>{html.escape(steps)}</td></tr>")
    (out / "index.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    page = (f"<!doctype html><meta charset=utf-8><title>history {html.escape(folder.name)}</title>"
            f"<h1>Benchmark history: {html.escape(folder.name)}</h1><p>{html.escape(head)}</p>"
            "<table border=1 cellpadding=3><tr><th>group</th><th>benchmark</th><th>runs</th>"
            "<th>latest median</th><th>step changes</th></tr>" + "".join(rows) + "</table>")
    (out / "index.html").write_text(page + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m benchruns history")
