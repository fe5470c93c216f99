"""compare: one row per benchmark: base and candidate medians, ratio with 95% CI, MDE, verdict.

Each side is a set of runs (processes). A run contributes one number per benchmark, its
median; the statistics in benchruns/stats.py decide on those. Rows are keyed by
``fullname`` (unique within a run), shown by ``name`` and grouped by ``group``, the way
pytest-benchmark groups its own tables. Formats: ``table`` for a terminal, ``md`` for CI
job summaries, ``json`` for machines.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from . import probe
from .runs import Run
from .stats import ALPHA, MIN_RUNS, POWER, Row, compare_processes


@dataclass
class Side:
    """The runs of one side of a comparison."""

    label: str
    runs: list[Run]

    @property
    def commit(self) -> str:
        commits = sorted({run.commit for run in self.runs})
        return commits[0] if len(commits) == 1 else f"{len(commits)} commits"

    def describe(self) -> str:
        if len(self.runs) == 1:
            return f"{self.runs[0].path} ({self.commit})"
        names = [run.label for run in self.runs]
        head = "" if self.label in ("base", "cand") else f"{self.label}: "
        return f"{head}{len(self.runs)} runs, {names[0]} … {names[-1]} ({self.commit})"


@dataclass
class Comparison:
    base: Side
    cand: Side
    rows: list[Row]
    added: list[str]
    removed: list[str]
    alpha: float
    paired: bool = False
    notes: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # fullname -> how it was measured, shown with its verdict
    normalised: list[str] = field(default_factory=list)  # benchmarks judged on median / reference probe
    by_mean_of_calls: list[str] = field(default_factory=list)  # ab: first calls judged on the mean of their calls

    def counts(self) -> dict:
        out = {"slower": 0, "faster": 0, "unchanged": 0}
        for row in self.rows:
            out[row.verdict] += 1
        return out

    @property
    def not_gateable(self) -> list[Row]:
        return [r for r in self.rows if not r.gateable]

    @property
    def too_few_runs(self) -> bool:
        return min(len(self.base.runs), len(self.cand.runs)) < MIN_RUNS

    def summary(self) -> str:
        c = self.counts()
        text = f"{len(self.rows)} benchmarks: {c['slower']} slower, {c['faster']} faster, {c['unchanged']} unchanged"
        if self.not_gateable:
            text += f" ({len(self.not_gateable)} not gateable here: MDE above threshold)"
        if self.added or self.removed:
            text += f"; {len(self.added)} added, {len(self.removed)} removed (not judged)"
        return text


def build(base_runs: list[Run], cand_runs: list[Run], thresholds, alpha: float = ALPHA, paired: bool = False,
          base_label: str = "base", cand_label: str = "cand", normalise: str = "raw",
          strata: dict[str, str] | None = None, figures: dict | None = None) -> Comparison:
    """Compare two sets of runs; ``paired``: base_runs[i] and cand_runs[i] are one worker pair.

    ``normalise`` (unpaired only): ``raw`` compares run medians; ``probe`` compares median / reference
    probe wherever both sides carry a probe (benchruns/probe.py); ``auto`` does so only when the
    probe shrinks the spread between the base runs. Medians shown stay in seconds either way.
    ``strata`` (benchmark -> label; ab: interleaved or per process): the variance priors' strata
    (benchruns/stats.py). ``figures`` (benchmark -> function of a Bench): a process's figure where it is not
    the run median (ab: the mean of a first call's interleaved calls)."""
    in_base = {name for run in base_runs for name in run.benchmarks}
    in_cand = {name for run in cand_runs for name in run.benchmarks}
    shared = sorted(in_base & in_cand)
    use_probe, how = (False, "") if paired else probe.choose(normalise, base_runs, cand_runs, shared)
    series, shown = [], {}
    for name in shared:
        if paired:
            pairs = [(a.benchmarks[name], b.benchmarks[name]) for a, b in zip(base_runs, cand_runs)
                     if name in a.benchmarks and name in b.benchmarks]
            base_b, cand_b = [a for a, _ in pairs], [b for _, b in pairs]
        else:
            base_b = [run.benchmarks[name] for run in base_runs if name in run.benchmarks]
            cand_b = [run.benchmarks[name] for run in cand_runs if name in run.benchmarks]
        figure = (figures or {}).get(name) or (lambda b: b.median)
        if use_probe and all(probe.normalised(b) is not None for b in base_b + cand_b):
            figure = probe.normalised
            shown[name] = (geomean([b.median for b in base_b]), geomean([b.median for b in cand_b]))
        ref = next(run.benchmarks[name] for run in cand_runs if name in run.benchmarks)
        series.append((name, ref.name, ref.group, [figure(b) for b in base_b], [figure(b) for b in cand_b]))
    labels = [strata.get(s[0], "") for s in series] if strata else None
    rows = compare_processes(series, thresholds, alpha, paired, strata=labels)
    for row in rows:  # normalised rows are judged on median/probe and shown in seconds
        if row.fullname in shown:
            row.base_median, row.cand_median = shown[row.fullname]
    rows.sort(key=lambda r: (r.group, r.name))
    cmp = Comparison(Side(base_label, base_runs), Side(cand_label, cand_runs), rows,
                     added=sorted(in_cand - in_base), removed=sorted(in_base - in_cand), alpha=alpha, paired=paired)
    cmp.normalised = sorted(shown)
    cmp.by_mean_of_calls = sorted(figures or {})
    if how and rows:
        cmp.notes.append(f"note: judged on {how}"
                         + (f"; {len(rows) - len(shown)} benchmark(s) without a probe compared raw"
                            if shown and len(shown) < len(rows) else ""))
    if cmp.too_few_runs:
        for row in rows:  # ratios are shown; nothing is judged on one or two processes
            row.verdict, row.mde = "unchanged", math.inf
        if paired:
            cmp.notes.append(f"note: too few worker pairs to gate: {len(base_runs)}, need {MIN_RUNS}; one process "
                             "cannot tell a code change from process-to-process noise (ratios are shown, not judged)")
        else:
            cmp.notes.append(
                f"note: too few runs to gate: {len(base_runs)} base and {len(cand_runs)} new run(s), need {MIN_RUNS} "
                f"of each (run `make bench` {MIN_RUNS} times on the new commit); one process cannot tell a code change "
                "from process-to-process noise: a window of 7 against 1 new run failed 44% of A/A jobs "
                "(docs/gate.md). Ratios are shown, not judged")
    return cmp


def geomean(values: list[float]) -> float:
    return float(math.exp(sum(math.log(v) for v in values) / len(values)))


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_mde(row: Row) -> str:
    return f"{row.mde:.0%}" if math.isfinite(row.mde) else "–"


def verdict_text(row: Row) -> str:
    if row.verdict == "unchanged" and not math.isfinite(row.mde):
        return "not judged (too few runs)"
    if row.verdict == "unchanged" and not row.gateable:
        return f"not gateable here (MDE {fmt_mde(row)})"
    return row.verdict


def _cells(row: Row, tags: dict[str, str] | None = None) -> list[str]:
    ci = f"[{row.ci_low:.3f}, {row.ci_high:.3f}]" if math.isfinite(row.ci_low) else "–"
    tag = (tags or {}).get(row.fullname)
    return [row.name, fmt_time(row.base_median), fmt_time(row.cand_median), f"{row.ratio:.3f}", ci,
            f"{row.p_adjusted:.2g}", fmt_mde(row), verdict_text(row) + (f" ({tag})" if tag else "")]


HEADER = ["name", "base median", "cand median", "ratio", "95% CI", "p (BH)", "MDE", "verdict"]


def _grouped(rows):
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    return groups


def rule_text(cmp: Comparison) -> str:
    design = ("paired by worker pair (A and B in one job)" if cmp.paired
              else "base and candidate runs as independent processes")
    figure = ("run medians (a first call's interleaved calls: the mean of its calls)" if cmp.by_mean_of_calls
              else "run medians")
    return (f"medians: geometric mean of each side's {figure}; statistics on them, {design}; "
            f"moderated t + Benjamini-Hochberg at {cmp.alpha:g} job-wide; slower/faster needs p < {cmp.alpha:g} and "
            f"a ratio beyond 1 ± threshold/2; MDE = slowdown caught in {POWER:.0%} of jobs")


def render_table(cmp: Comparison, rows: list[Row] | None = None) -> str:
    rows = cmp.rows if rows is None else rows
    lines = [f"base: {cmp.base.describe()}", f"cand: {cmp.cand.describe()}", ""]
    body = [HEADER] + [_cells(r, cmp.tags) for r in rows]
    widths = [max(len(cells[i]) for cells in body) for i in range(len(HEADER))]

    def line(cells):
        return "  ".join(c.ljust(w) if i in (0, len(cells) - 1) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    lines.append(line(HEADER))
    for group, members in _grouped(rows).items():
        lines.append(f"-- {group} " + "-" * max(0, sum(widths) + 2 * len(widths) - len(group) - 4))
        lines.extend(line(_cells(r, cmp.tags)) for r in members)
    lines += _tail(cmp)
    return "\n".join(lines)


def render_md(cmp: Comparison, rows: list[Row] | None = None) -> str:
    rows = cmp.rows if rows is None else rows
    lines = [f"**{cmp.summary()}**", "", f"base {cmp.base.describe()} → candidate {cmp.cand.describe()}; "
             f"ratio = cand/base, > 1 is slower; {rule_text(cmp)}."]
    for group, members in _grouped(rows).items():
        lines += ["", f"#### {group}", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        for r in members:
            cells = _cells(r, cmp.tags)
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
    if not md:
        out.append(rule_text(cmp))
        out.append(cmp.summary())
    return out


def to_json(cmp: Comparison, rows: list[Row] | None = None) -> dict:
    rows = cmp.rows if rows is None else rows
    return {
        "base": [str(run.path) for run in cmp.base.runs],
        "cand": [str(run.path) for run in cmp.cand.runs],
        "design": "paired" if cmp.paired else "unpaired",
        "alpha": cmp.alpha,
        "power": POWER,
        "rule": rule_text(cmp),
        "too_few_runs": cmp.too_few_runs,
        "counts": cmp.counts(),
        "not_gateable": [r.fullname for r in cmp.not_gateable],
        "benchmarks": [r.as_dict() for r in rows],
        "added": cmp.added,
        "removed": cmp.removed,
        "notes": cmp.notes,
        "tags": cmp.tags,
        "normalised": cmp.normalised,
    }


def render(cmp: Comparison, fmt: str, rows: list[Row] | None = None) -> str:
    if fmt == "json":
        return json.dumps(to_json(cmp, rows), indent=2)
    if fmt == "md":
        return render_md(cmp, rows)
    return render_table(cmp, rows)
