"""fleet: the report's eight verdicts per machine, side by side, and where they disagree.

``python -m benchruns fleet [FOLDER ...] [--results-dir results] [--out build/fleet] [--format text|md|json]``

One run of one machine judges the usual claims (benchruns/report.py); the verdicts differ
between machines (a 2-core Xeon VM found claim 3 supported, the 2-core EPYC VM contradicted),
and no single report shows that. This command takes every machine key under ``--results-dir``
(or under each results folder named, e.g. unpacked CI artifacts), picks one run per machine:

* the newest undisturbed full run (benchruns/load.py; a run with no load record counts, as in
  compare and gate, and says so);
* else the newest undisturbed quick run, labelled "quick run" (it lacks most of the claims'
  benchmarks, so its "not measured here" means the profile, not the machine);
* a disturbed run never: a machine whose newest run is disturbed falls back to its newest
  undisturbed one, and a machine with none is left out and named;

writes each machine's own report into ``<out>/<machine>/`` with the report's code, and a matrix
of claims x machines whose cells link to that machine's claim section. For each claim whose
verdicts differ, it lists the comparisons that support the claim on one machine and contradict
it on another, each machine's ratio and 95% CI side by side, and draws them (one point per
machine with its CI, log scale, the no-difference line at 1). Output: ``fleet.html``,
``fleet.md`` (for a CI job summary) and ``fleet.json`` in ``--out``.

A comparison is matched across machines by the benchmark groups (and frameworks) it rests on,
not by its wording: "torch eager against TensorFlow's fastest mode" is the same comparison
whether XLA or tf.function was the fastest on each machine. Where one group pair holds several
comparisons (each graph mode against eager) the labels tell them apart.

Bad input (a folder that does not exist or holds no runs) is one line and exit 2; a broken or
foreign JSON file among many is skipped with its name and reason, and the rest still drawn.
"""

from __future__ import annotations

import html
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from . import storage
from .argparsing import Parser
from .runs import BadInput, Run, load_run

PROFILE_RANK = {"full": 0, "quick": 1}  # any other profile (smoke, unknown) after these
FORMATS = ("text", "md", "json")
MAX_PLOTTED = 30  # flipped comparisons drawn per claim; the table lists them all


# --- which run of each machine --------------------------------------------------------------


@dataclass
class Column:
    """One machine of the matrix: its chosen run, where it came from, and its verdicts."""

    name: str  # the machine key, suffixed @folder when two folders hold different machines under one key
    key: str
    folders: list[str]  # labels of the results folders its runs came from
    run: Run
    slug: str = ""  # its report's subfolder in the output
    claims: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def info(self) -> dict:
        return self.run.machine_info

    @property
    def quick(self) -> bool:
        return self.run.profile != "full"

    @property
    def profile_label(self) -> str:
        return "full run" if self.run.profile == "full" else f"{self.run.profile} run"


def torch_build(info: dict) -> str:
    """CPU wheel / CUDA build, from the torch version's local tag (+cpu, +cu128); PyPI's untagged Linux wheel is CUDA."""
    version = str(info.get("torch_version") or "")
    if not version:
        return "no torch"
    tag = version.partition("+")[2]
    if tag == "cpu":
        return "CPU wheel"
    if re.fullmatch(r"cu\d+", tag):
        return f"CUDA build ({tag})"
    if tag.startswith("rocm"):
        return f"ROCm build ({tag})"
    if tag:
        return f"{tag} build"
    if info.get("torch_cuda"):
        return f"CUDA build (no local tag, CUDA {info['torch_cuda']})"
    return "no local tag"


def machine_rows(col: Column) -> list[tuple[str, str]]:
    """What a column head says about its machine and run."""
    info = col.info
    run = col.run
    return [
        ("CPU", str(info.get("cpu_model") or "n/a")),
        ("cores", str(info.get("cpu_count") or "?")),
        ("GPU", ", ".join(map(str, info.get("gpu_models") or [])) or "none"),
        ("torch", str(info.get("torch_version") or "not installed")),
        ("TensorFlow", str(info.get("tensorflow_version") or "not installed")),
        ("build", torch_build(info)),
        ("run", f"{run.path.name} ({run.profile}, commit {run.commit})"),
        ("load", run.load_status),
    ]


def cpu_description(info: dict) -> tuple:
    return (str(info.get("cpu_model")), str((info.get("cpu") or {}).get("brand_raw")), str(info.get("cpu_count")))


def _order(run: Run) -> tuple:
    return storage._run_order(run.path)  # the store's own order: timestamp, then a same-second suffix


def pick_run(candidates: list, skipped: list[tuple[str, str]]) -> tuple[Run | None, list[str]]:
    """The newest undisturbed full run, else the newest undisturbed run of another profile (quick first).

    ``candidates`` are paths (read lazily) or runs already read, oldest first. A file that cannot
    be read as a run is added to ``skipped`` with its reason. Returns the run and notes.
    """
    best: Run | None = None
    disturbed: list[Run] = []
    for cand in reversed(candidates):
        if isinstance(cand, Run):
            run = cand
        else:
            try:
                run = load_run(cand)
            except BadInput as exc:  # a broken or foreign file among many: skip it, name it
                skipped.append((str(cand), str(exc).removeprefix(f"{cand}: ")))
                continue
        if run.load_status == "disturbed":
            disturbed.append(run)
            continue
        rank = PROFILE_RANK.get(run.profile, len(PROFILE_RANK))
        if best is None or rank < PROFILE_RANK.get(best.profile, len(PROFILE_RANK)):
            best = run
        if rank == 0:
            break
    notes = []
    newer = [r for r in disturbed if best is None or _order(r) > _order(best)]
    if newer:
        notes.append(f"{len(newer)} newer disturbed run(s) left out, newest {max(newer, key=_order).path.name} "
                     f"({newer[0].load_why.split(';')[0]})")
    if best is not None and best.profile != "full":
        notes.append(f"no undisturbed full run: this column is a {best.profile} run, whose profile lacks most "
                     "of the claims' benchmarks")
    if best is not None and best.load_status == "unrecorded":
        notes.append("the run has no load record: nobody checked that the machine was quiet")
    return best, notes


def _folder_labels(folders: list[Path]) -> list[str]:
    labels = []
    for folder in folders:
        label = folder.resolve().name or str(folder)
        if label in labels:
            label = f"{label}#{len(labels) + 1}"
        labels.append(label)
    return labels


def machine_dirs(results: Path) -> list[Path]:
    """The machine folders of a results folder; a folder of run files is itself one machine folder."""
    if storage.list_runs(results):
        return [results]
    return [f for f in storage.machine_folders(results) if storage.list_runs(f)]


def gather(folders: list[Path]) -> dict[tuple[str, str], list[Path]]:
    """(folder label, machine key) -> run paths, oldest first; one bad-input line for a missing or empty folder."""
    found: dict[tuple[str, str], list[Path]] = {}
    for folder, label in zip(folders, _folder_labels(folders)):
        if not folder.is_dir():
            raise BadInput(f"{folder}: no such results folder; run `make bench` first, or name a folder of saved runs")
        dirs = machine_dirs(folder)
        if not dirs:
            raise BadInput(f"{folder}: holds no saved runs (no <machine-key>/*.json); run `make bench` first")
        for machine in dirs:
            # storage's listing (.json and .json.gz, oldest first). A broken or foreign file among
            # them is skipped when pick_run reads it, newest first, stopping at the first full run
            # (runs.load_listed would read every file of the folder first).
            found[(label, machine.name)] = storage.list_runs(machine)
    return found


def choose_columns(by_folder: dict[tuple[str, str], list], skipped: list[tuple[str, str]]) -> tuple[list[Column], list[str]]:
    """One column per machine: folders that hold one key are merged unless their CPUs differ."""
    picked: dict[str, list[tuple[str, Run, list[str]]]] = {}
    left_out = []
    for (label, key), candidates in by_folder.items():
        run, notes = pick_run(candidates, skipped)
        if run is None:
            left_out.append(f"{key} ({label}): no undisturbed run that could be read")
            continue
        picked.setdefault(key, []).append((label, run, notes))
    columns = []
    for key, entries in sorted(picked.items()):
        by_cpu: dict[tuple, list] = {}
        for entry in entries:
            by_cpu.setdefault(cpu_description(entry[1].machine_info), []).append(entry)
        for same in by_cpu.values():
            # the same machine in several folders: the best of their picks (full first, then newest)
            label, run, notes = max(same, key=lambda e: (-PROFILE_RANK.get(e[1].profile, len(PROFILE_RANK)),
                                                         _order(e[1])))
            labels = [e[0] for e in same]
            name = key if len(by_cpu) == 1 else f"{key}@{'+'.join(labels)}"
            col = Column(name, key, labels, run, notes=list(notes))
            if len(by_cpu) > 1:
                col.notes.append(f"machine key {key} also names a machine with another CPU in another folder; "
                                 "kept apart")
            columns.append(col)
    used: set[str] = set()
    for col in columns:
        col.slug = _unique_slug(col.name, used)
    return columns, left_out


def _unique_slug(name: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:80] or "machine"
    slug, n = base, 2
    while slug.lower() in used:
        slug, n = f"{base}-{n}", n + 1
    used.add(slug.lower())
    return slug


# --- the verdicts and the comparisons that differ --------------------------------------------


@dataclass
class Flip:
    """One comparison that supports the claim on one machine and contradicts it on another."""

    case: str  # the benchmark groups it rests on
    by_column: dict  # column name -> {"a", "b", "ratio", "lo", "hi", "outcome", "supports"}

    @property
    def label(self) -> str:
        names = list(dict.fromkeys(f"{c['a']} / {c['b']}" for c in self.by_column.values()))
        return " or ".join(names)


@dataclass
class ClaimRow:
    number: int
    title: str
    verdicts: dict  # column name -> verdict
    flips: list[Flip] = field(default_factory=list)
    plot: str = ""

    @property
    def differ(self) -> bool:
        return len(set(self.verdicts.values())) > 1


@dataclass
class Fleet:
    columns: list[Column]
    claims: list[ClaimRow]
    skipped: list[tuple[str, str]]
    left_out: list[str]


def _case_of(run: Run) -> dict:
    by_name = {}
    for bench in run.benchmarks.values():
        by_name.setdefault(bench.name, (bench.group, str((bench.extra_info or {}).get("framework") or "")))
    return by_name


def comparisons(claim, run: Run) -> list[tuple[tuple, object, bool]]:
    """(match key, Cmp, supports) for each comparison the claim counted on this run (suspect ones left out)."""
    cases = _case_of(run)
    rows = [(tuple(cases.get(n, (n, "")) for n in cmp.evidence), cmp, supports)
            for cmp, supports in getattr(claim, "counted", []) if not cmp.suspect]
    return rows


def _match_keys(per_column: dict[str, list]) -> dict[str, list[tuple]]:
    """Keys that name the same comparison on every machine (see the module docstring)."""
    ambiguous = set()
    for rows in per_column.values():
        seen: dict = {}
        for loose, _, _ in rows:
            seen[loose] = seen.get(loose, 0) + 1
        ambiguous |= {k for k, n in seen.items() if n > 1}
    out = {}
    for name, rows in per_column.items():
        keys, counts = [], {}
        for loose, cmp, _ in rows:
            key = (loose, cmp.a, cmp.b) if loose in ambiguous else (loose,)
            counts[key] = counts.get(key, 0) + 1
            keys.append(key + (counts[key],))
        out[name] = keys
    return out


def find_flips(number: int, columns: list[Column]) -> list[Flip]:
    per_column = {col.name: comparisons(col.claims[number - 1], col.run) for col in columns}
    keys = _match_keys(per_column)
    table: dict[tuple, dict] = {}
    cases: dict[tuple, str] = {}
    for name, rows in per_column.items():
        for key, (loose, cmp, supports) in zip(keys[name], rows):
            cases.setdefault(key, " · ".join(dict.fromkeys(group for group, _ in loose)))
            table.setdefault(key, {})[name] = {"a": cmp.a, "b": cmp.b, "ratio": cmp.value, "lo": cmp.lo,
                                               "hi": cmp.hi, "outcome": cmp.outcome, "supports": bool(supports)}
    return [Flip(cases[key], by_col) for key, by_col in table.items()
            if len(by_col) > 1 and len({c["supports"] for c in by_col.values()}) == 2]


def build(columns: list[Column], out: Path, skipped, left_out) -> Fleet:
    """Write each machine's report into out/<slug>/ and judge the matrix from the same claims."""
    from .report import write_report

    for col in columns:
        col.claims = write_report([col.run], out / col.slug, list(col.notes))
    rows = []
    for index, claim in enumerate(columns[0].claims):
        row = ClaimRow(claim.number, claim.title, {col.name: col.claims[index].verdict for col in columns})
        if row.differ and len(columns) > 1:
            row.flips = find_flips(index + 1, columns)
        rows.append(row)
    return Fleet(columns, rows, skipped, left_out)


# --- the plot -------------------------------------------------------------------------------


def draw_flips(row: ClaimRow, columns: list[Column], out: Path) -> str:
    """One point per machine and comparison with its 95% CI, log scale, the no-difference line at 1."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, NullLocator

    from .report_plots import DPI, _plt

    plt = _plt()
    flips = row.flips[:MAX_PLOTTED]
    names = [c.name for c in columns if any(c.name in f.by_column for f in flips)]
    width, height = 9.0, 1.5 + 0.22 * len(flips) * (1 + len(names))
    fig, ax = plt.subplots(figsize=(width, height))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    step = 0.7 / max(len(names), 1)
    values, handles = [1.0], []
    for m, name in enumerate(names):
        color = colors[m % len(colors)]
        for i, flip in enumerate(flips):
            cell = flip.by_column.get(name)
            if cell is None:
                continue
            y = len(flips) - 1 - i - (m - (len(names) - 1) / 2) * step
            lo, hi = (cell["lo"], cell["hi"]) if cell["lo"] is not None else (cell["ratio"], cell["ratio"])
            values += [lo, hi]
            ax.plot([lo, hi], [y, y], color=color, linewidth=1.4)
            ax.plot([cell["ratio"]], [y], "o", markersize=5, color=color,
                    markerfacecolor=color if cell["supports"] else "white")
        handles.append(Line2D([], [], color=color, marker="o", linewidth=1.4, label=name[:48]))
    ax.axvline(1.0, color="#495057", linewidth=1, linestyle="--")
    ax.set_xscale("log")
    span = max(max(values) * 1.15, 1 / (min(values) / 1.15), 1.3)
    ax.set_xlim(1 / span, span)
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.8, 1, 1.25, 2, 5, 10, 20, 50, 100) if 1 / span <= t <= span]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_yticks(range(len(flips) - 1, -1, -1))
    ax.set_yticklabels([f"{f.label[:52]}\n{f.case[:64]}" for f in flips], fontsize=6.5)
    ax.set_ylim(-0.6, len(flips) - 0.4)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("time ratio A / B with its 95% CI (log scale). Filled: supports the claim; hollow: against it")
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.42 / height), ncol=min(len(names), 3), frameon=False)
    more = f" (first {MAX_PLOTTED} of {len(row.flips)})" if len(row.flips) > MAX_PLOTTED else ""
    fig.suptitle(f"Claim {row.number}: comparisons that change sides between machines{more}", fontsize=10)
    fig.subplots_adjust(left=3.4 / width, right=1 - 0.3 / width, top=1 - 0.8 / height, bottom=0.55 / height)
    name = f"fleet_claim{row.number}.png"
    fig.savefig(out / name, dpi=DPI)
    plt.close(fig)
    return name


# --- rendering ------------------------------------------------------------------------------


def _ci(cell: dict) -> str:
    ci = "no CI" if cell["lo"] is None else f"[{cell['lo']:.3g}, {cell['hi']:.3g}]"
    return f"{cell['ratio']:.3g} {ci} {cell['outcome']} ({'for' if cell['supports'] else 'against'})"


def no_flip_text(row: ClaimRow, cols: list[Column]) -> str:
    """Why verdicts differ when no comparison changes sides: one machine measured none, or other ones."""
    from .claims import NOT_MEASURED

    missing = [c for c in cols if row.verdicts[c.name] == NOT_MEASURED]
    text = "No comparison measured on two machines changes sides. "
    if missing:
        text += ("; ".join(f"{c.name} ({c.profile_label}) has none of the benchmarks this claim needs" for c in missing)
                 + ". ")
    if len(missing) < len(cols) - 1:
        text += "The others differ in which comparisons they measured or in the shares that decide the verdict."
    return text.strip()


def _report_link(col: Column, number: int, page: str = "report.html") -> str:
    return f"{quote(col.slug)}/{page}#claim-{number}"


INTRO = ("Each column is one machine: its newest undisturbed full run (a quick run, labelled, where it has "
         "no full run; a disturbed run never). Each cell is the report's verdict on that run and links to the "
         "claim's section of that machine's own report. Where the verdicts differ, the comparisons that support "
         "the claim on one machine and contradict it on another are listed with each machine's time ratio A / B "
         "and its 95% CI.")


def _md(text) -> str:
    """Markdown cell text from a file: HTML escaped, table and link syntax defused."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", text)


def render_md(fleet: Fleet) -> str:
    cols = fleet.columns
    lines = ["# Verdicts per machine", "", INTRO, "",
             "| machine | " + " | ".join(k for k, _ in machine_rows(cols[0])) + " |",
             "|---" * (1 + len(machine_rows(cols[0]))) + "|"]
    for col in cols:
        label = _md(col.name) + (" **(quick run)**" if col.quick else "")
        lines.append(f"| {label} | " + " | ".join(_md(v) for _, v in machine_rows(col)) + " |")
    lines += ["", "| # | claim | " + " | ".join(_md(c.name) for c in cols) + " |", "|---" * (2 + len(cols)) + "|"]
    for row in fleet.claims:
        cells = [f"[{_md(row.verdicts[c.name])}]({_report_link(c, row.number, 'report.md')})" for c in cols]
        lines.append(f"| {row.number} | {_md(row.title)}{' ⚑' if row.differ else ''} | " + " | ".join(cells) + " |")
    for row in fleet.claims:
        if not row.differ:
            continue
        lines += ["", f"## Claim {row.number}: {_md(row.title)}, verdicts differ", ""]
        lines.append("; ".join(f"{_md(c.name)}: **{_md(row.verdicts[c.name])}**" for c in cols) + ".")
        if not row.flips:
            lines += ["", _md(no_flip_text(row, cols))]
            continue
        if row.plot:
            lines += ["", f"![Claim {row.number}: comparisons that flip]({row.plot})"]
        lines += ["", "| comparison (A / B) | benchmarks | " + " | ".join(_md(c.name) for c in cols) + " |",
                  "|---" * (2 + len(cols)) + "|"]
        for flip in row.flips:
            cells = [_md(_ci(flip.by_column[c.name])) if c.name in flip.by_column else "–" for c in cols]
            lines.append(f"| {_md(flip.label)} | {_md(flip.case)} | " + " | ".join(cells) + " |")
    lines += _md_notes(fleet)
    return "\n".join(lines) + "\n"


def _md_notes(fleet: Fleet) -> list[str]:
    lines = []
    notes = [(c.name, n) for c in fleet.columns for n in c.notes]
    if notes or fleet.left_out or fleet.skipped:
        lines += ["", "## Notes", ""]
    lines += [f"- {_md(name)}: {_md(n)}" for name, n in notes]
    lines += [f"- left out: {_md(n)}" for n in fleet.left_out]
    lines += [f"- skipped {_md(path)}: {_md(why)}" for path, why in fleet.skipped]
    return lines


FLEET_CSS = """
table.matrix th{min-width:9em;font-weight:normal}table.matrix th b{font-size:1.05em}
.mk{font-family:monospace;word-break:break-all}.quick{background:#fff3bf;border-radius:4px;padding:0 4px;font-weight:600}
dl.m{margin:.2em 0 0;font-size:.9em}dl.m dt{float:left;clear:left;color:#868e96;margin-right:.3em}dl.m dd{margin:0}
tr.differ td{background:#fff9db}nav a{margin-right:1em}img.flips{max-width:100%;border:1px solid #e9ecef}
"""


def render_html(fleet: Fleet, nav: str = "") -> str:
    from .report import CSS

    e = html.escape
    cols = fleet.columns
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
             "<meta name=viewport content='width=device-width,initial-scale=1'>",
             "<title>Verdicts per machine</title>", f"<style>{CSS}{FLEET_CSS}</style></head><body>", nav,
             "<h1>Verdicts per machine</h1>", f"<p>{e(INTRO)}</p>",
             "<table class=matrix><tr><th>#</th><th>claim</th>"]
    for col in cols:
        info = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in machine_rows(col))
        quick = f" <span class=quick>{e(col.profile_label)}</span>" if col.quick else ""
        parts.append(f"<th><b class=mk>{e(col.name)}</b>{quick}<dl class=m>{info}</dl></th>")
    parts.append("</tr>")
    for row in fleet.claims:
        cells = "".join(f"<td><a href='{e(_report_link(c, row.number))}'>{_badge(row.verdicts[c.name])}</a></td>"
                        for c in cols)
        title = (f"<a href='#claim-{row.number}'>{e(row.title)}</a>" if row.differ else e(row.title))
        parts.append(f"<tr{' class=differ' if row.differ else ''}><td>{row.number}</td><td>{title}</td>{cells}</tr>")
    parts.append("</table>")
    differ = [r for r in fleet.claims if r.differ]
    if differ:
        parts.append("<h2>Where the verdicts differ</h2>")
    for row in differ:
        parts.append(f"<h3 id='claim-{row.number}'>{row.number}. {e(row.title)}</h3><p>"
                     + "; ".join(f"<span class=mk>{e(c.name)}</span>: {_badge(row.verdicts[c.name])}" for c in cols)
                     + "</p>")
        if not row.flips:
            parts.append(f"<p>{e(no_flip_text(row, cols))}</p>")
            continue
        if row.plot:
            parts.append(f"<p><img class=flips src='{e(quote(row.plot))}' alt='Claim {row.number}: comparisons "
                         "that flip between machines'></p>")
        parts.append("<table><tr><th>comparison (A / B)</th><th>benchmarks</th>"
                     + "".join(f"<th class=mk>{e(c.name)}</th>" for c in cols) + "</tr>")
        for flip in row.flips:
            cells = "".join(f"<td>{e(_ci(flip.by_column[c.name]))}</td>" if c.name in flip.by_column else "<td>–</td>"
                            for c in cols)
            parts.append(f"<tr><td>{e(flip.label)}</td><td>{e(flip.case)}</td>{cells}</tr>")
        parts.append("</table>")
    notes = [(c.name, n) for c in cols for n in c.notes]
    if notes or fleet.left_out or fleet.skipped:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li><span class=mk>{e(name)}</span>: {e(n)}</li>" for name, n in notes]
        parts += [f"<li>left out: {e(n)}</li>" for n in fleet.left_out]
        parts += [f"<li class=note>skipped {e(path)}: {e(why)}</li>" for path, why in fleet.skipped]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _badge(verdict: str) -> str:
    return f'<span class="v {re.sub(r"[^a-z]+", "-", str(verdict))}">{html.escape(str(verdict))}</span>'


def to_json(fleet: Fleet) -> dict:
    return {
        "machines": [{"column": c.name, "key": c.key, "folders": c.folders, "run": str(c.run.path),
                      "profile": c.run.profile, "quick": c.quick, "load": c.run.load_status,
                      "machine": dict(machine_rows(c)), "report": f"{c.slug}/report.html", "notes": c.notes}
                     for c in fleet.columns],
        "claims": [{"number": r.number, "title": r.title, "verdicts": r.verdicts, "differ": r.differ,
                    "links": {c.name: _report_link(c, r.number) for c in fleet.columns}, "plot": r.plot or None,
                    "flips": [{"comparison": f.label, "benchmarks": f.case, "machines": f.by_column} for f in r.flips]}
                   for r in fleet.claims],
        "left_out": fleet.left_out,
        "skipped": [{"path": p, "reason": why} for p, why in fleet.skipped],
    }


def docs_table(fleet: Fleet, source: str) -> dict:
    """The verdict matrix as a docs data table (``table data=FILE``): claims x machines, each column
    headed by its machine and run; undisturbed only when every column's run is."""
    cols = fleet.columns
    heads = [f"{c.name}: " + ", ".join(f"{k} {v}" for k, v in machine_rows(c) if k not in ("run", "load"))
             + (" (quick run)" if c.quick else "") for c in cols]
    loads = {c.run.load_status for c in cols}
    return {"source": source,
            "machine": "; ".join(f"{c.name}: {c.run.path.name}" for c in cols),
            "commit": ", ".join(sorted({c.run.commit for c in cols})),
            "load": "undisturbed" if loads == {"undisturbed"} else "disturbed",
            "title": "The report's verdicts per machine, each from its newest undisturbed full run (a quick run "
                     "where there is none, labelled); ⚑ marks a claim whose verdicts differ.",
            "columns": ["#", "claim", *heads],
            "rows": [[str(r.number), r.title + (" ⚑" if r.differ else ""), *[r.verdicts[c.name] for c in cols]]
                     for r in fleet.claims]}


def render_text(fleet: Fleet) -> str:
    cols = fleet.columns
    width = max(len(c.name) for c in cols) + 2
    lines = []
    for col in cols:
        lines.append(f"{col.name}: " + ", ".join(f"{k} {v}" for k, v in machine_rows(col))
                     + (" [QUICK RUN]" if col.quick else ""))
    lines.append("")
    for row in fleet.claims:
        lines.append(f"{row.number}. {row.title}{'  <- verdicts differ' if row.differ else ''}")
        for col in cols:
            lines.append(f"     {col.name:<{width}}{row.verdicts[col.name]}")
        if row.flips:
            lines.append(f"     {len(row.flips)} comparison(s) change sides between machines")
    return "\n".join(lines)


def write(fleet: Fleet, out: Path, nav: str = "") -> Path:
    """Plots, fleet.html, fleet.md and fleet.json into out (each machine's report is already there)."""
    for stale in out.glob("fleet_claim*.png"):
        stale.unlink()
    for row in fleet.claims:
        if row.flips:
            row.plot = draw_flips(row, fleet.columns, out)
    (out / "fleet.md").write_text(render_md(fleet), encoding="utf-8")
    (out / "fleet.json").write_text(json.dumps(to_json(fleet), indent=1) + "\n", encoding="utf-8")
    page = out / "fleet.html"
    page.write_text(render_html(fleet, nav), encoding="utf-8")
    return page


def make_fleet(by_folder: dict, out: Path, skipped: list | None = None, nav: str = "") -> Fleet:
    """Choose the runs, write every machine's report and the fleet pages into out; BadInput when no machine remains."""
    skipped = [] if skipped is None else skipped
    columns, left_out = choose_columns(by_folder, skipped)
    if not columns:
        why = "; ".join(left_out) or "no runs"
        raise BadInput(f"no machine has an undisturbed run that could be read ({why})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out}: exists and is not a folder; pass another --out")
    out.mkdir(parents=True, exist_ok=True)
    fleet = build(columns, out, skipped, left_out)
    write(fleet, out, nav)
    return fleet


# --- the command ----------------------------------------------------------------------------


def build_parser() -> Parser:
    p = Parser(prog="python -m benchruns fleet",
               description="The report's verdicts on the usual claims for every machine, side by side: one run per "
               "machine key (newest undisturbed full run, else a quick run, labelled), each machine's report, and "
               "for claims whose verdicts differ the comparisons that change sides with each machine's ratio and "
               "95%% CI. Writes fleet.html, fleet.md, fleet.json and <machine>/report.html into --out.")
    p.add_argument("folders", nargs="*", metavar="FOLDER",
                   help="results folders to combine, e.g. unpacked CI artifacts (<machine-key>/*.json inside); "
                   "default: --results-dir")
    p.add_argument("--results-dir", default="results", help="saved runs, results/<machine-key>/ (default: results)")
    p.add_argument("--out", default="build/fleet", help="output folder (default: build/fleet)")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="what to print: text, md (a CI job summary, same as fleet.md) or json (same as fleet.json)")
    p.add_argument("--table", metavar="FILE", help="also write the verdict matrix as a docs data table "
                   "(table data=FILE in docs/)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    start = time.perf_counter()
    folders = [Path(f) for f in args.folders] or [Path(args.results_dir)]
    skipped: list[tuple[str, str]] = []
    try:
        fleet = make_fleet(gather(folders), Path(args.out), skipped)
    except BadInput as exc:
        print(f"benchruns fleet: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("benchruns fleet: interrupted", file=sys.stderr)
        return 130
    for path, why in fleet.skipped:
        print(f"note: skipped {path}: {why}", file=sys.stderr)
    for note in fleet.left_out:
        print(f"note: left out {note}", file=sys.stderr)
    if args.format == "md":
        print(render_md(fleet), end="")
    elif args.format == "json":
        print(json.dumps(to_json(fleet), indent=1))
    else:
        print(render_text(fleet))
    if args.table:
        source = "`python -m benchruns fleet" + "".join(f" {f}" for f in args.folders) + f" --table {args.table}`"
        Path(args.table).write_text(json.dumps(docs_table(fleet, source), indent=1, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    differ = sum(r.differ for r in fleet.claims)
    print(f"fleet: {len(fleet.columns)} machine(s), verdicts differ on {differ} of {len(fleet.claims)} claims; "
          f"see {Path(args.out) / 'fleet.html'} ({time.perf_counter() - start:.1f} s)",
          file=sys.stderr if args.format != "text" else sys.stdout)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
