"""compare: one row per benchmark, base median, candidate median, ratio with 95% CI, verdict.

Rows are keyed by ``fullname`` (unique within a run), shown by ``name`` and grouped by
``group``, the way pytest-benchmark groups its own tables. Formats: ``table`` for a
terminal, ``md`` for CI job summaries, ``json`` for machines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .runs import Run
from .stats import ALPHA, MIN_ROUNDS_TO_GATE, Row, compare_benches


@dataclass
class Comparison:
    base: Run
    cand: Run
    rows: list[Row]
    added: list[str]
    removed: list[str]
    alpha: float
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict:
        out = {"slower": 0, "faster": 0, "unchanged": 0}
        for row in self.rows:
            out[row.verdict] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        text = f"{len(self.rows)} benchmarks: {c['slower']} slower, {c['faster']} faster, {c['unchanged']} unchanged"
        if self.added or self.removed:
            text += f"; {len(self.added)} added, {len(self.removed)} removed (not judged)"
        return text


def build(base: Run, cand: Run, thresholds, alpha: float = ALPHA) -> Comparison:
    common = [name for name in cand.benchmarks if name in base.benchmarks]
    pairs = [(base.benchmarks[n], cand.benchmarks[n]) for n in common]
    rows = compare_benches(pairs, thresholds, alpha)
    rows.sort(key=lambda r: (r.group, r.name))
    added = sorted(n for n in cand.benchmarks if n not in base.benchmarks)
    removed = sorted(n for n in base.benchmarks if n not in cand.benchmarks)
    notes = []
    summary_rows = sum(r.method == "summary" for r in rows)
    if summary_rows:
        notes.append(
            f"warning: {summary_rows} benchmark(s) lack raw timings (stats.data) in one of the runs; "
            "their verdicts use median/IQR/rounds only and are weaker"
        )
    few = sum(r.method == "raw" and min(r.base_rounds, r.cand_rounds) < MIN_ROUNDS_TO_GATE for r in rows)
    if few:
        notes.append(
            f"warning: {few} benchmark(s) have fewer than {MIN_ROUNDS_TO_GATE} rounds in a run; the gate can barely "
            "see a slowdown there (run them with a higher --benchmark-min-rounds)"
        )
    return Comparison(base, cand, rows, added, removed, alpha, notes)


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(row: Row) -> tuple[str, str]:
    return f"{row.ratio:.3f}", f"[{row.ci_low:.3f}, {row.ci_high:.3f}]"


def _cells(row: Row) -> list[str]:
    ratio, ci = fmt_ratio(row)
    verdict = row.verdict + ("*" if row.method == "summary" else "")
    return [row.name, fmt_time(row.base_median), fmt_time(row.cand_median), ratio, ci, f"{row.p_adjusted:.2g}", verdict]


HEADER = ["name", "base median", "cand median", "ratio", "95% CI", "p (BH)", "verdict"]


def _grouped(rows):
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    return groups


def render_table(cmp: Comparison, rows: list[Row] | None = None) -> str:
    rows = cmp.rows if rows is None else rows
    lines = [f"base: {cmp.base.path}  ({cmp.base.commit})", f"cand: {cmp.cand.path}  ({cmp.cand.commit})", ""]
    body = [HEADER] + [_cells(r) for r in rows]
    widths = [max(len(cells[i]) for cells in body) for i in range(len(HEADER))]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    lines.append(line(HEADER))
    for group, members in _grouped(rows).items():
        lines.append(f"-- {group} " + "-" * max(0, sum(widths) + 2 * len(widths) - len(group) - 4))
        lines.extend(line(_cells(r)) for r in members)
    lines += _tail(cmp)
    return "\n".join(lines)


def render_md(cmp: Comparison, rows: list[Row] | None = None) -> str:
    rows = cmp.rows if rows is None else rows
    lines = [
        f"**{cmp.summary()}**",
        "",
        f"base `{cmp.base.label}` ({cmp.base.commit}) → candidate `{cmp.cand.label}` ({cmp.cand.commit}); "
        f"ratio = cand/base median, > 1 is slower; verdicts need p (Benjamini-Hochberg) < {cmp.alpha:g} "
        "and a ratio beyond 1 ± threshold/2.",
    ]
    for group, members in _grouped(rows).items():
        lines += ["", f"#### {group}", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        for r in members:
            cells = _cells(r)
            cells[0] = f"`{cells[0]}`"
            if r.verdict == "slower":
                cells[-1] = f"**{cells[-1]}**"
            lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"- {line}" for line in _tail(cmp, md=True) if line]
    return "\n".join(lines)


def _some(names: list[str], shown: int = 8) -> str:
    """A few names and a count: a profile change can add or remove hundreds (diff lists them all)."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more (see `make diff`)" if more > 0 else "")


def _tail(cmp: Comparison, md: bool = False) -> list[str]:
    out = [""] if not md else []
    if cmp.added:
        out.append(f"added (only in cand, not judged): {_some(cmp.added)}")
    if cmp.removed:
        out.append(f"removed (only in base, not judged): {_some(cmp.removed)}")
    if any(r.method == "summary" for r in cmp.rows):
        out.append("* verdict from summary statistics (no raw timings): weaker")
    if not md:
        out.append(cmp.summary())
    return out


def to_json(cmp: Comparison, rows: list[Row] | None = None) -> dict:
    rows = cmp.rows if rows is None else rows
    return {
        "base": str(cmp.base.path),
        "cand": str(cmp.cand.path),
        "alpha": cmp.alpha,
        "rule": "slower if p_adjusted < alpha and ratio > 1 + threshold/2; faster if p_adjusted < alpha and ratio < 1/(1 + threshold/2)",
        "counts": cmp.counts(),
        "benchmarks": [r.as_dict() for r in rows],
        "added": cmp.added,
        "removed": cmp.removed,
        "notes": cmp.notes,
    }


def render(cmp: Comparison, fmt: str, rows: list[Row] | None = None) -> str:
    if fmt == "json":
        return json.dumps(to_json(cmp, rows), indent=2)
    if fmt == "md":
        return render_md(cmp, rows)
    return render_table(cmp, rows)
