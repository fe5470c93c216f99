"""Inline SVG plots: a few kB of text per chart, drawn in the page, nothing to load."""

from __future__ import annotations

import html
import math

import numpy as np

from ..compare import fmt_time

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
STEP = "#d62728"
DISTURBED = "#d62728"  # a disturbed run's point: hollow, red-ringed (benchruns/load.py decides)


def _f(v: float) -> str:
    return f"{v:.1f}"


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or abs(hi) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _point(x: float, y: float, r: float, color: str, disturbed: bool, tip: str = "") -> str:
    title = f"<title>{html.escape(tip)}</title>" if tip else ""
    if disturbed:
        return (f'<circle class="disturbed" cx="{_f(x)}" cy="{_f(y)}" r="{r + 1:.1f}" fill="#fff" '
                f'stroke="{DISTURBED}" stroke-width="1.6">{title}</circle>')
    return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{r}" fill="{color}">{title}</circle>'


def sparkline(y, steps, width: int = 150, height: int = 30, disturbed=None, step_from=None) -> str:
    """A trend line of run medians; the latest real change point as a red mark, disturbed runs as hollow red rings.

    ``step_from``: per step, the position of the old level's last counted run (default: the run before).
    """
    y = np.asarray(y, dtype=float)
    n = y.size
    sx = _scale(0, max(n - 1, 1), 3, width - 3)
    sy = _scale(float(y.min()), float(y.max()), height - 3, 3)
    pts = " ".join(f"{_f(sx(i))},{_f(sy(v))}" for i, v in enumerate(y))
    parts = [f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    starts = list(step_from) if step_from is not None else [st.index - 1 for st in steps]
    real = [(st, a) for st, a in zip(steps, starts) if st.real]
    if real:
        st, a = real[-1]
        x = sx((a + st.index) / 2)
        parts.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="0" y2="{height}" stroke="{STEP}" stroke-width="2"/>')
    parts.append(f'<polyline fill="none" stroke="#333" stroke-width="1.2" points="{pts}"/>')
    flags = list(disturbed) if disturbed is not None else [False] * n
    parts += [_point(sx(i), sy(v), 1.6, "#333", True) for i, v in enumerate(y) if flags[i] and i < n - 1]
    parts.append(_point(sx(n - 1), sy(y[-1]), 2.2, "#333", bool(flags[-1])) + "</svg>")
    return "".join(parts)


def chart(lines: list[dict], labels: list[str], width: int = 820, height: int = 260, yfmt=fmt_time,
          marks: list[tuple[float, str]] = ()) -> str:
    """Run medians over time: per line its points (with hover text), an optional band, steps and levels.

    ``lines``: dicts with y, color, and optionally lo/hi (band), tips (one per point),
    levels [(start, end, value)], steps [Step] with step_from (per step, where the old level's
    last counted run is; default the run before), disturbed (per point: draw it hollow, red-ringed).
    ``labels``: x tick text per run position.
    """
    left, right, top, bottom = 70, 10, 10, 34
    n = max(len(line["y"]) for line in lines)
    vals = np.concatenate([np.asarray(line["y"], float) for line in lines])
    lo_all = [np.asarray(line["lo"], float) for line in lines if line.get("lo") is not None]
    hi_all = [np.asarray(line["hi"], float) for line in lines if line.get("hi") is not None]
    ymin = float(min([vals.min()] + [a.min() for a in lo_all]))
    ymax = float(max([vals.max()] + [a.max() for a in hi_all]))
    pad = (ymax - ymin) * 0.05 or ymax * 0.05 or 1.0
    ymin, ymax = max(ymin - pad, 0.0), ymax + pad
    sx = _scale(0, max(n - 1, 1), left + 6, width - right - 6)
    sy = _scale(ymin, ymax, height - bottom, top)
    out = [f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
           f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
           'fill="none" stroke="#ccc"/>']
    for v in np.linspace(ymin, ymax, 5):
        y = sy(v)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{_f(y)}" y2="{_f(y)}" stroke="#eee"/>'
                   f'<text x="{left - 4}" y="{_f(y + 4)}" text-anchor="end" font-size="10">{html.escape(yfmt(v))}</text>')
    ticks = sorted(set(np.linspace(0, n - 1, min(n, 7)).round().astype(int).tolist())) if n else []
    for t in ticks:
        if t < len(labels):
            anchor = "start" if t == 0 else "end" if t == n - 1 else "middle"
            out.append(f'<text x="{_f(sx(t))}" y="{height - bottom + 14}" text-anchor="{anchor}" font-size="10">'
                       f'{html.escape(labels[t])}</text>')
    for pos, text in marks:
        x = sx(pos)
        out.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{top}" y2="{height - bottom}" stroke="#2ca02c" '
                   f'stroke-dasharray="4 3"/><text x="{_f(x + 3)}" y="{top + 10}" font-size="10" fill="#2ca02c">'
                   f'{html.escape(text)}</text>')
    for line in lines:
        y = np.asarray(line["y"], float)
        color = line.get("color", PALETTE[0])
        if line.get("lo") is not None:
            lo, hi = np.asarray(line["lo"], float), np.asarray(line["hi"], float)
            poly = [f"{_f(sx(i))},{_f(sy(v))}" for i, v in enumerate(hi)]
            poly += [f"{_f(sx(i))},{_f(sy(v))}" for i, v in reversed(list(enumerate(lo)))]
            out.append(f'<polygon points="{" ".join(poly)}" fill="{color}" fill-opacity="0.18" stroke="none"/>')
        steps = line.get("steps", [])
        for st, start in zip(steps, line.get("step_from") or [st.index - 1 for st in steps]):
            x0, x1 = sx(start), sx(st.index)
            color_step = STEP if st.real else "#bbb"
            out.append(f'<rect x="{_f(x0)}" y="{top}" width="{_f(max(x1 - x0, 2))}" height="{height - top - bottom}" '
                       f'fill="{color_step}" fill-opacity="0.15"><title>{"real" if st.real else "not significant"} '
                       f'change {st.change:+.1%}</title></rect>')
        for a, b, level in line.get("levels", []):
            out.append(f'<line x1="{_f(sx(a) - 3)}" x2="{_f(sx(b - 1) + 3)}" y1="{_f(sy(level))}" '
                       f'y2="{_f(sy(level))}" stroke="{STEP if len(line.get("levels", [])) > 1 else "#999"}" '
                       'stroke-width="1.5" stroke-dasharray="6 3"/>')
        pts = " ".join(f"{_f(sx(i))},{_f(sy(v))}" for i, v in enumerate(y))
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.4" points="{pts}"/>')
        tips = line.get("tips") or [""] * y.size
        flags = line.get("disturbed") or [False] * y.size
        out += [_point(sx(i), sy(v), 2.4, color, bool(flags[i]), tips[i]) for i, v in enumerate(y)]
    out.append("</svg>")
    return "".join(out)


def fmt_ratio(v: float) -> str:
    return f"{v:.3g}×" if math.isfinite(v) else "–"
