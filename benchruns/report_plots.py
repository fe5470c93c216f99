"""The report's plots: one small PNG per (claim, device), drawn from the data claims.py gathered.

Agg backend, small figures, no framework imports. Every axis names its quantity and unit.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

COLORS = {"torch": "#d9480f", "tensorflow": "#1864ab", "numpy": "#495057"}
MODE_STYLE = {"eager": ("o", "-"), "compile": ("s", "--"), "script": ("^", ":"), "export": ("D", "-."), "export-aoti": ("P", "-."),
              "function": ("s", "--"), "xla": ("^", ":")}
DPI = 90


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7, "axes.grid": True,
                         "grid.alpha": 0.3})
    return plt


def draw(spec: dict, out: Path, name: str) -> str:
    """Draw one plot spec into out/name; returns the file name (relative to out)."""
    plt = _plt()
    fig = DRAWERS[spec["kind"]](plt, spec)
    fig.suptitle(spec.get("title", ""), fontsize=10)
    # Margins by hand: tight_layout costs a full extra draw per figure (about half the time).
    width, height = fig.get_size_inches()
    margins = dict(left=0.75 / width, right=1 - 0.25 / width, bottom=0.55 / height, top=1 - 0.5 / height,
                   wspace=0.35, hspace=0.55)
    margins.update(getattr(fig, "_margins", {}))
    fig.subplots_adjust(**margins)
    fig.savefig(out / name, dpi=DPI)
    plt.close(fig)
    return name


def _plain(ax, axes="xy"):
    """Log-axis ticks as plain numbers (0.2, 1, 30) rather than 2×10⁻¹."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    for name in axes:
        axis = ax.xaxis if name == "x" else ax.yaxis
        if (ax.get_xscale() if name == "x" else ax.get_yscale()) == "log":
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(fmt)
        axis.set_minor_formatter(NullFormatter())


def _scaling(plt, spec):
    panels = spec["panels"]
    workloads = list(dict.fromkeys(p["workload"] for p in panels))
    passes = list(dict.fromkeys(p["pass"] for p in panels))
    width = min(3.4 * len(workloads), 11) + 1.7
    fig, axes = plt.subplots(len(passes), len(workloads), figsize=(width, 2.6 * len(passes) + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for p in panels:
        ax = axes[passes.index(p["pass"])][workloads.index(p["workload"])]
        ax.set_visible(True)
        for (fw, mode), pts in p["lines"].items():
            marker, ls = MODE_STYLE.get(mode, ("o", "-"))
            b = np.array([x for x, _ in pts], dtype=float)
            m = np.array([ci[0] for _, ci in pts]) * 1e3
            lo = np.array([ci[1] for _, ci in pts]) * 1e3
            hi = np.array([ci[2] for _, ci in pts]) * 1e3
            ax.errorbar(b, m, yerr=[np.maximum(m - lo, 0), np.maximum(hi - m, 0)], marker=marker, ls=ls, ms=4, lw=1,
                        capsize=2, color=COLORS.get(fw), label=f"{'torch' if fw == 'torch' else 'TF'} {mode}")
        for (fw, mode), at in p["crossover"].items():
            ax.axvline(at, color=COLORS.get(fw), lw=1.2, alpha=0.7, ls=MODE_STYLE.get(mode, ("o", "-"))[1])
            ax.annotate(f"{mode} = eager at b≈{at:.3g}", (at, 0.97), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=6, color=COLORS.get(fw),
                        bbox=dict(fc="white", ec="none", alpha=0.8, pad=0.5))
        ax.set_xscale("log")
        ax.set_yscale("log")
        batches = sorted({x for pts in p["lines"].values() for x, _ in pts})
        if len(batches) == 1:
            ax.set_xlim(batches[0] / 2, batches[0] * 2)
            ax.text(0.5, 0.03, "one batch size only: no crossover", transform=ax.transAxes, ha="center",
                    fontsize=7, color="#862e9c")
        elif batches:
            ax.set_xlim(batches[0] / 1.5, batches[-1] * 1.5)
        _plain(ax, "y")
        if batches:
            from matplotlib.ticker import NullFormatter

            ax.set_xticks(batches, [f"{b:g}" for b in batches])
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{p['workload']} · {p['pass']}")
        ax.set_xlabel("batch size (samples)")
        ax.set_ylabel("time per step (ms)")
    handles, labels = [], []
    for ax in axes.flat:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="center right", frameon=False, title="mode (bars: 95% CI)",
               title_fontsize=7)
    fig._margins = {"right": 1 - 1.7 / width}
    return fig


def _hbars(ax, labels, values, colors, xlabel, text_for_missing=None):
    y = np.arange(len(labels))
    vals = [v if v is not None and v > 0 else np.nan for v in values]
    ax.barh(y, vals, color=colors, height=0.6)
    ax.set_yticks(y, labels)
    if not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    finite = [v for v in vals if np.isfinite(v)]
    if finite:
        ax.set_xlim(min(finite) / 3, max(finite) * 6)
    for yi, v, raw in zip(y, vals, values):
        if np.isfinite(v):
            ax.text(v * 1.1, yi, f"{v:,.3g}", va="center", fontsize=7)
        elif text_for_missing:
            ax.text(0.02, yi, text_for_missing(raw), va="center", fontsize=7, transform=ax.get_yaxis_transform(),
                    color="#862e9c")


def _left_margin(labels, width) -> dict:
    chars = max((len(str(l)) for l in labels), default=10)
    return {"left": min((0.3 + 0.062 * chars) / width, 0.6)}


def _compile(plt, spec):
    bars = spec["bars"]
    labels = [b["label"] for b in bars]
    colors = [COLORS.get(b["framework"], "gray") for b in bars]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 0.3 * len(bars) + 1.3), sharey=True)
    fig._margins = _left_margin(labels, 11)
    _hbars(a1, labels, [b["compile_s"] for b in bars], colors, "compile cost, compile_s (s, log)")
    _hbars(a2, labels, [b["break_even"] for b in bars], colors, "break-even (steps, log)",
           lambda raw: "never breaks even")
    a2.tick_params(labelleft=False)
    return fig


def _modes(plt, spec):
    bars = spec["bars"]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(bars) + 1.3))
    labels = [b["label"] for b in bars]
    fig._margins = _left_margin(labels, 7)
    med = np.array([b["ci"][0] for b in bars]) * 1e3
    lo = np.array([b["ci"][1] for b in bars]) * 1e3
    hi = np.array([b["ci"][2] for b in bars]) * 1e3
    y = np.arange(len(bars))
    ax.barh(y, med, xerr=[np.maximum(med - lo, 0), np.maximum(hi - med, 0)], capsize=2,
            color=[COLORS.get(b["framework"]) for b in bars], height=0.6)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    _plain(ax, "x")
    ax.set_xlabel("time per step (ms, log; bars: median, whiskers: 95% CI)")
    return fig


def _ratios(plt, spec):
    bars = spec["bars"]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(bars) + 1.3))
    fig._margins = _left_margin([b["label"] for b in bars], 7)
    y = np.arange(len(bars))
    v = np.array([b["value"] for b in bars])
    lo = np.array([b["lo"] if b["lo"] is not None else b["value"] for b in bars])
    hi = np.array([b["hi"] if b["hi"] is not None else b["value"] for b in bars])
    # grey, with the reason: a suspect measurement, or a bar shown and not counted (e.g. per-call cost mixed in)
    why = [" (suspect)" if b.get("suspect") else " (not counted)" if b.get("not_counted") else "" for b in bars]
    ax.barh(y, v, xerr=[np.maximum(v - lo, 0), np.maximum(hi - v, 0)], capsize=2,
            color=["#ced4da" if w else COLORS.get(b["framework"]) for b, w in zip(bars, why)], height=0.6)
    ax.axvline(1, color="k", lw=0.8)
    for yi, val, top, w in zip(y, v, hi, why):
        ax.text(max(val, top) + 0.04 * max(hi.max(), 1), yi, f"{val:.2f}×{w}", va="center", fontsize=7)
    ax.set_yticks(y, [b["label"] for b in bars])
    ax.invert_yaxis()
    ax.set_xlim(0, max(hi.max(), 1) * 1.25)
    ax.set_xlabel(spec.get("ylabel", "ratio"))
    return fig


def _pipeline(plt, spec):
    bars, scaling = spec["bars"], spec["scaling"]
    ncols = 2 if scaling else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 3.4), squeeze=False)
    fig._margins = {"bottom": 0.75 / 3.4, "left": 0.8 / (5.5 * ncols)}
    ax = axes[0][0]
    labels = [f"{b['label']}\n{b['source']}" for b in bars]
    vals = [b["fraction"] if b["fraction"] is not None else np.nan for b in bars]
    x = np.arange(len(bars))
    ax.bar(x, vals, color=[COLORS.get(b["framework"], "gray") for b in bars], width=0.6)
    ax.axhline(1.0, color="k", ls="--", lw=1, label="numpy ideal = 1")
    for xi, v in zip(x, vals):
        ax.text(xi, (v if np.isfinite(v) else 0) + 0.02, f"{v:.2f}" if np.isfinite(v) else "n/a", ha="center", fontsize=7)
    ax.set_xticks(x, labels, fontsize=7)
    top = max([v for v in vals if np.isfinite(v)] + [1.0])
    ax.set_ylim(0, top * 1.2)
    ax.set_ylabel("throughput / numpy ideal (fraction)")
    ax.set_title("best setting per pipeline (steady epoch)")
    ax.legend(loc="upper right")
    if scaling:
        ax = axes[0][1]
        for s in scaling:
            k = [p[0] for p in s["points"]]
            v = [p[1] for p in s["points"]]
            ax.plot(k, v, "o-", ms=4, lw=1, color=COLORS.get(s["framework"]), label=s["label"])
            if s["ideal"]:
                ax.axhline(s["ideal"], color="k", ls="--", lw=0.8)
        ax.set_xscale("symlog", base=2, linthresh=1)
        _plain(ax, "x")
        from matplotlib.ticker import FuncFormatter

        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_xlabel("workers (num_workers / num_parallel_calls)")
        ax.set_ylabel("throughput (samples/s)")
        ax.set_title("worker scaling (dashed: numpy ideal)")
        ax.legend()
    return fig


def _transfer(plt, spec):
    panels = spec["panels"]
    directions = sorted(panels)
    ncols = min(len(directions), 3)
    nrows = math.ceil(len(directions) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows + 0.3), squeeze=False)
    for ax in axes.flat[len(directions):]:
        ax.set_visible(False)
    ref = spec["reference"]
    for ax, direction in zip(axes.flat, directions):
        for line in panels[direction]:
            s = [p[0] / 2**20 for p in line["points"]]
            g = [p[1] for p in line["points"]]
            ax.plot(s, g, "o" + ("-" if line["memory"] != "pinned" else "--"), ms=3, lw=1,
                    color=COLORS.get(line["framework"], "gray"), label=line["label"])
        if ref:
            ax.plot([p[0] / 2**20 for p in ref], [p[1] for p in ref], "k--", lw=1, label="copy limit (numpy.copyto)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain(ax)
        ax.set_title(direction)
        ax.set_xlabel("transfer size (MiB)")
        ax.set_ylabel("bandwidth (GB/s)")
        ax.legend(fontsize=6)
    return fig


def _distributed(plt, spec):
    """Claim 7: scaling efficiency, all-reduce bus bandwidth, start-up, and the step over a capped link."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.6))
    (a_scale, a_ar), (a_start, a_net) = axes
    styles = ["o-", "s--", "^:", "D-."]
    workloads = list(dict.fromkeys(line["workload"] for line in spec["scaling"]))
    for line in spec["scaling"]:
        n = [p[0] for p in line["points"]]
        a_scale.plot(n, [p[1] for p in line["points"]], styles[workloads.index(line["workload"]) % 4], ms=4, lw=1,
                     color=COLORS.get(line["framework"]), label=f"{_fw(line['framework'])} · {line['workload']}")
    a_scale.axhline(1.0, color="k", ls="--", lw=0.8)
    a_scale.set_xscale("log", base=2)
    _plain(a_scale, "x")
    top = max([p[1] for line in spec["scaling"] for p in line["points"]] + [1.0])
    a_scale.set_ylim(0, top * 1.15)
    a_scale.set_xlabel("workers (processes)")
    a_scale.set_ylabel("scaling efficiency, thr(N) / (N·thr(1))")
    a_scale.set_title("scaling (dashed: linear; one host bounds it near 1/N)")
    if spec["scaling"]:
        a_scale.legend(fontsize=6)
    for line in spec["allreduce"]:
        a_ar.plot([p[0] / 2**20 for p in line["points"]], [p[1] for p in line["points"]], "o-", ms=3, lw=1,
                  color=COLORS.get(line["framework"]), label=f"{_fw(line['framework'])}, {line['workers']} workers")
    if spec["copy"]:
        a_ar.plot([p[0] / 2**20 for p in spec["copy"]], [p[1] for p in spec["copy"]], "k--", lw=1,
                  label="copy limit (numpy.copyto)")
    a_ar.set_xscale("log")
    a_ar.set_yscale("log")
    _plain(a_ar)
    from matplotlib.ticker import LogLocator

    a_ar.xaxis.set_major_locator(LogLocator(base=10))
    a_ar.set_xlabel("message size (MiB)")
    a_ar.set_ylabel("bus bandwidth (GB/s)")
    a_ar.set_title("gradient all-reduce alone (busbw = algbw·2(N-1)/N)")
    if spec["allreduce"] or spec["copy"]:
        a_ar.legend(fontsize=6)
    bars = spec["startup"]
    if bars:
        y = np.arange(len(bars))
        a_start.barh(y, [b["seconds"] for b in bars], color=[COLORS.get(b["framework"]) for b in bars], height=0.6)
        a_start.set_yticks(y, [b["label"] for b in bars], fontsize=6)
        a_start.invert_yaxis()
    a_start.set_xlabel("launch to first finished step (s)")
    a_start.set_title("start-up cost (one launch each)")
    net = spec["network"]
    for fw in dict.fromkeys(p["framework"] for p in net):
        pts = sorted((p["gbit"], p["seconds"]) for p in net if p["framework"] == fw)
        base = next((p["loopback"] for p in net if p["framework"] == fw and p["loopback"]), None)
        a_net.plot([g for g, _ in pts], [t * 1e3 for _, t in pts], "o-", ms=4, lw=1, color=COLORS.get(fw),
                   label=_fw(fw))
        if base:
            a_net.axhline(base * 1e3, color=COLORS.get(fw), ls=":", lw=1, label=f"{_fw(fw)}, loopback uncapped")
    if net:
        a_net.set_xscale("log")
        a_net.set_yscale("log")
        _plain(a_net)
        rates = sorted({p["gbit"] for p in net})
        a_net.set_xticks(rates, [f"{r:g}" for r in rates])
        a_net.set_xlim(rates[0] / 2, rates[-1] * 2)
        a_net.legend(fontsize=6)
    a_net.set_xlabel("link rate (Gbit/s, tc tbf)")
    a_net.set_ylabel("time per step, 2 workers (ms)")
    a_net.set_title("simulated slower network")
    fig._margins = {"left": 0.2, "hspace": 0.6, "wspace": 0.45}
    return fig


def _fw(framework: str) -> str:
    return {"torch": "PyTorch DDP", "tensorflow": "TF MWMS"}.get(framework, framework)


def _api(plt, spec):
    """Claim 8: idiomatic / low-level time ratio bars, with the "costs little" line."""
    fig = _ratios(plt, spec)
    ax = fig.axes[0]
    ax.axvline(spec["little"], color="k", ls="--", lw=0.8)
    ax.set_xlim(0, max(ax.get_xlim()[1], spec["little"] * 1.15))
    ax.set_title(f"dashed: {spec['little']:.2f}×, the most that still \"costs little\"", fontsize=8)
    return fig


DRAWERS = {"scaling": _scaling, "compile": _compile, "modes": _modes, "ratios": _ratios, "pipeline": _pipeline,
           "transfer": _transfer, "distributed": _distributed, "api": _api}
