"""docs: write every table of figures in README.md and docs/*.md from named run files.

``python -m benchruns docs [--check] [--root DIR] [FILE ...]``

Typed numbers go stale, so the figures in the README and the docs live between marker
comments that name their kind and their sources::

    <!-- generated: verdicts run=results/<machine-key>/<time>_<commit>.json -->
    (written by this command; edits by hand are overwritten, and caught by --check)
    <!-- end generated -->

This command rewrites each block from its sources; ``--check`` writes nothing, prints a
unified diff of every block that differs from what its sources give, and exits 1 (the
test suite runs it over the committed files). Each table is preceded by a caption that
names its run file(s), the machine (CPU, cores, threads, torch and TensorFlow versions,
GPUs), the commit and the load status.

Sources. ``run=`` takes paths or globs relative to ``--root``, comma-separated; every run
must have been measured **undisturbed** (``Run.load_status``): a disturbed run, or one
that predates load recording, is refused with one line and exit 2, and nothing is written.
``data=`` names a JSON or CSV file of figures from a measurement script (see
``read_data``); it carries its own source, machine, commit and load fields, and its load
must say undisturbed too.

A block whose sources do not exist yet (the runs of a commit about to be made) is written
``<!-- pending generated: KIND ... -->`` ... ``<!-- end pending -->`` with placeholder paths:
this command leaves it alone and says how many are pending. Once the sources exist, drop
"pending " from the start marker, make the end marker ``<!-- end generated -->``, put the
paths in, and run ``make docs``.

Kinds (options in brackets; ``device`` defaults to cpu when the run has it):

=================  =====================================================================
verdicts           the report's claims: number, claim, verdict, comparisons for and
                   against, the strongest comparison each way; the claim links to its
                   ``claim`` block in docs/ (benchruns.claims.judge, as ``make report``)
claim n=N          claim N's section of the report: claim, what was compared, verdict,
                   findings, notes
claim-table        claim N's table K (1-based) as the report prints it [claim=N table=K]
graph-medians      steady-state median per step, workload/pass/batch × mode, fastest in
                   bold [workload= pass= batch= device=]; several runs: median of the
                   runs' medians
first-call         compile time / steps to break even, per case and graph mode [device=]
pipelines          the best configuration per input pipeline: samples/s, fraction of the
                   numpy ideal, time to first batch (claim 5's table)
transfer           GB/s (fraction of numpy.copyto at that size) per call and size;
                   zero-copy calls show their time per call [device= direction=]
distributed        data-parallel step and scaling efficiency (claim 7's first table)
api-levels         idiomatic loop over the hand-written step (claim 8's first table)
profile            per run: profile, case count, seconds spent in benchmarks (from the
                   run's load record; the column is left out when no run has one), size
plot               one of a claim's plots as a PNG [claim=N out=PATH kind= device= index=]
table data=FILE    a table from a JSON or CSV data file
=================  =====================================================================

Exit codes: 0 written (or, with --check, nothing differs), 1 --check found a difference,
2 bad input (a marker, a kind, an option, a missing or refused source): one line, never
a traceback, nothing written.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .argparsing import Parser
from .runs import BadInput, Run, load_run

START = re.compile(r"^<!-- generated: (?P<spec>.*?) -->\s*$")
END = "<!-- end generated -->"
# A block whose sources do not exist yet (the runs of a commit not made yet): plain text to
# this command until someone turns it into a generated block ("pending " removed, its
# placeholders replaced by run paths, "end pending" made "end generated").
PENDING = "<!-- pending generated:"
ANY_MARK = re.compile(r"^<!--\s*(generated\b|end generated\b)")
FENCE = re.compile(r"^(```|~~~)")

UNDISTURBED = "undisturbed"

# Which docs page holds each claim's `claim n=N` block (the verdict table links there).
CLAIM_PAGES = {1: "graph-modes.md", 2: "graph-modes.md", 3: "graph-modes.md", 4: "graph-modes.md",
               5: "input-pipelines.md", 6: "device-transfer.md", 7: "distributed.md", 8: "api-levels.md"}

GRAPH_COLUMNS = [("torch", "eager"), ("torch", "compile"), ("torch", "script"), ("torch", "export"),
                 ("tensorflow", "eager"), ("tensorflow", "function"), ("tensorflow", "xla")]
FIRST_CALL_COLUMNS = [("torch", "compile-cold"), ("torch", "compile-warm"), ("torch", "script"), ("torch", "export"),
                      ("tensorflow", "function"), ("tensorflow", "xla")]
SHORT = {"torch": "torch", "tensorflow": "tf"}


# --- markers ---------------------------------------------------------------------------------


@dataclass
class Block:
    """One generated block: the marker's line numbers (0-based) and what it asks for."""

    path: Path
    start: int  # line of the start marker
    end: int  # line of the end marker
    kind: str
    args: dict[str, str]

    def where(self, root: Path) -> str:
        return f"{_rel(self.path, root)}:{self.start + 1}"


def parse(path: Path, lines: list[str], root: Path) -> list[Block]:
    """The blocks of one file; unbalanced or malformed markers are BadInput."""
    blocks, open_at, spec, fence = [], None, "", None
    for number, line in enumerate(lines):
        text = line.strip()
        if open_at is None and (fence or FENCE.match(text)):
            # markers shown in a fenced code block are examples, not blocks
            if fence is None:
                fence = text[:3]
            elif text.startswith(fence):
                fence = None
            continue
        match = START.match(text)
        if match:
            if open_at is not None:
                raise BadInput(f"{_rel(path, root)}:{number + 1}: a generated block starts inside the block opened at "
                               f"line {open_at + 1}; close that one first with {END}")
            open_at, spec = number, match.group("spec")
        elif text == END:
            if open_at is None:
                raise BadInput(f"{_rel(path, root)}:{number + 1}: {END} without a <!-- generated: ... --> before it")
            kind, args = _spec(spec, f"{_rel(path, root)}:{open_at + 1}")
            blocks.append(Block(path, open_at, number, kind, args))
            open_at = None
        elif ANY_MARK.search(text):
            raise BadInput(f"{_rel(path, root)}:{number + 1}: malformed marker {text[:60]!r}; a block is "
                           f"'<!-- generated: KIND key=value ... -->' ... '{END}', each on its own line")
    if open_at is not None:
        raise BadInput(f"{_rel(path, root)}:{open_at + 1}: generated block never closed (no {END} after it)")
    return blocks


def _spec(spec: str, where: str) -> tuple[str, dict[str, str]]:
    try:
        words = shlex.split(spec)
    except ValueError as exc:
        raise BadInput(f"{where}: cannot read the marker ({exc})") from None
    if not words:
        raise BadInput(f"{where}: the marker names no kind; one of {', '.join(KINDS)}")
    kind, args = words[0], {}
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if not eq or not key or not value:
            raise BadInput(f"{where}: {word!r} is not key=value")
        if key in args:
            raise BadInput(f"{where}: {key}= given twice")
        args[key] = value
    if kind not in KINDS:
        raise BadInput(f"{where}: unknown table kind {kind!r}; one of {', '.join(KINDS)}")
    allowed = KINDS[kind].required | KINDS[kind].optional
    for key in args:
        if key not in allowed:
            raise BadInput(f"{where}: {kind} takes {', '.join(sorted(allowed))}, not {key}=")
    missing = sorted(KINDS[kind].required - set(args))
    if missing:
        raise BadInput(f"{where}: {kind} needs {', '.join(k + '=' for k in missing)}")
    return kind, args


# --- sources ---------------------------------------------------------------------------------


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


class Sources:
    """Runs and their judged claims, each loaded once and checked for load status."""

    def __init__(self, root: Path):
        self.root = root
        self.runs: dict[Path, Run] = {}
        self.judged: dict[tuple, tuple] = {}
        self.links: list = []  # (verdicts block, [(claim number, page it links to)])

    def paths(self, value: str, where: str) -> list[Path]:
        out: list[Path] = []
        for part in [p.strip() for p in value.split(",") if p.strip()]:
            if Path(part).is_absolute():
                raise BadInput(f"{where}: {part}: a marker names its files relative to the repository root, "
                               "so the page reads the same on every checkout")
            if any(ch in part for ch in "*?["):
                found = sorted(p for p in self.root.glob(part) if p.is_file())
                if not found:
                    raise BadInput(f"{where}: no file matches {part}")
                out += found
            else:
                path = self.root / part
                if not path.is_file():
                    raise BadInput(f"{where}: {part}: no such file")
                out.append(path)
        if not out:
            raise BadInput(f"{where}: run= names no file")
        return list(dict.fromkeys(out))

    def run(self, path: Path, where: str) -> Run:
        if path not in self.runs:
            try:
                run = load_run(path)
            except BadInput as exc:
                raise BadInput(f"{where}: {exc}") from None
            status = run.load_status
            if status != UNDISTURBED:
                why = " ".join(str(run.load_why or status).split())
                raise BadInput(f"{where}: refused {_rel(path, self.root)}: {status} ({why}); figures come only "
                               "from undisturbed runs")
            self.runs[path] = run
        return self.runs[path]

    def for_block(self, block: Block, one: bool, one_profile: bool = True) -> list[Run]:
        where = block.where(self.root)
        runs = [self.run(p, where) for p in self.paths(block.args["run"], where)]
        if one and len(runs) > 1:
            raise BadInput(f"{where}: {block.kind} reads one run, but run= matched {len(runs)} files")
        keys = sorted({r.key for r in runs})
        if len(keys) > 1:
            raise BadInput(f"{where}: runs of different machines ({', '.join(keys)}); one table, one machine")
        profiles = sorted({r.profile for r in runs})
        if one_profile and len(profiles) > 1:
            raise BadInput(f"{where}: runs of different profiles ({', '.join(profiles)}); {block.kind} takes "
                           "runs of one profile")
        return runs

    def claims(self, run: Run):
        """judge() on one run, with every comparison each claim counted (for the one-line summaries)."""
        key = (run.path,)
        if key not in self.judged:
            from .claims import Benches, Claim, judge

            benches = Benches([run])
            counted: dict[int, list] = {}
            original = Claim.count

            # Claim.count is where a comparison enters a verdict; recording there keeps the
            # summaries on exactly the comparisons the report counts.
            def count(claim, supports, cmp=None):
                counted.setdefault(claim.number, []).append((supports, cmp))
                return original(claim, supports, cmp)

            Claim.count = count
            try:
                claims = judge(benches)
            finally:
                Claim.count = original
            groups = {item.name: item.bench.group for item in benches.items}
            self.judged[key] = (claims, counted, groups)
        return self.judged[key]


# --- captions ---------------------------------------------------------------------------------


def machine_text(info: dict) -> str:
    cores = info.get("cpu_count")
    parts = [f"{info.get('cpu_model') or 'unknown CPU'}" + (f", {cores} cores" if cores else ""),
             f"{info.get('threads', '?')} threads per framework",
             f"torch {info.get('torch_version') or 'not installed'}",
             f"TensorFlow {info.get('tensorflow_version') or 'not installed'}"]
    gpus = info.get("gpu_models") or []
    parts.append(", ".join(gpus) if gpus else "no GPU")
    return ", ".join(parts)


def caption(runs: list[Run], root: Path, what: str = "") -> str:
    files = ", ".join(f"`{_rel(r.path, root)}`" for r in runs)
    profiles = "/".join(sorted({r.profile for r in runs}))
    commits = ", ".join(sorted({r.commit for r in runs}))
    many = f"{len(runs)} runs " if len(runs) > 1 else ""
    return (f"*{what + ' ' if what else ''}From {many}{files} ({profiles} profile): {machine_text(runs[0].machine_info)}; "
            f"commit {commits}; {', '.join(sorted({r.load_status for r in runs}))}. Written by `make docs`.*")


# --- table helpers ----------------------------------------------------------------------------


def md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def cell(value) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    out = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return out


def _device(runs: list[Run], block: Block, kinds: tuple[str, ...]) -> str:
    if "device" in block.args:
        return block.args["device"]
    found = set()
    for run in runs:
        for bench in run.benchmarks.values():
            if bench.group.split("/")[0] in kinds:
                info = bench.extra_info or {}
                found.add(info.get("device") or bench.group.rsplit("/", 1)[-1])
    return "cpu" if "cpu" in found or not found else sorted(found)[0]


def _choices(block: Block, key: str) -> set[str] | None:
    value = block.args.get(key)
    return {v.strip() for v in value.split(",")} if value else None


def _batch_order(batch):
    return (0, batch) if isinstance(batch, (int, float)) else (1, str(batch))


def _item_median(bench) -> float:
    return float(np.median(bench.data)) if bench.data is not None and bench.data.size >= 2 else bench.median


def _size(nbytes) -> str:
    return f"{nbytes / 2**20:g} MiB" if nbytes >= 2**20 else f"{nbytes / 2**10:g} KiB"


# --- kinds ------------------------------------------------------------------------------------


@dataclass
class Kind:
    render: object
    required: set = field(default_factory=set)
    optional: set = field(default_factory=set)


@dataclass
class Output:
    lines: list[str]
    files: dict[Path, bytes] = field(default_factory=dict)  # side files (plots) the block refers to


def _times(ratio: float) -> str:
    return f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.2g}×"


def _plain(cmp) -> str:
    """Cmp.plain() in words, with ratios of 10 and more written out (103×, not 1e+02×)."""
    if cmp.outcome == "faster":
        return f"{cmp.a} is {_times(1 / cmp.value)} faster than {cmp.b}"
    if cmp.outcome == "slower":
        return f"{cmp.a} is {_times(cmp.value)} slower than {cmp.b}"
    return cmp.plain()


def _strongest(entries: list, groups: dict) -> str:
    """The comparison furthest from a ratio of 1, in words, with the benchmark groups it rests on."""
    cmp = max(entries, key=lambda c: abs(math.log(c.value)) if c.value > 0 else 0.0)
    where = list(dict.fromkeys(groups.get(name, name) for name in cmp.evidence))
    return f"{_plain(cmp)} ({', '.join(where[:2])})"


def k_verdicts(block: Block, src: Sources, target: Path) -> Output:
    (run,) = src.for_block(block, one=True)
    claims, counted, groups = src.claims(run)
    rows = []
    for c in claims:
        page = src.root / "docs" / CLAIM_PAGES.get(c.number, "")
        link = os.path.relpath(page, target.parent).replace(os.sep, "/") + f"#claim-{c.number}"
        entries = counted.get(c.number, [])
        pro = [cmp for ok, cmp in entries if ok and cmp is not None and not cmp.suspect]
        con = [cmp for ok, cmp in entries if not ok and cmp is not None and not cmp.suspect]
        if c.supports + c.contradicts:
            parts = [f"for: {_strongest(pro, groups)}" if pro else "",
                     f"against: {_strongest(con, groups)}" if con else ""]
            short = "; ".join(p for p in parts if p)
            support = f"{c.supports} of {c.supports + c.contradicts}"
        else:
            short, support = c.summary, "–"
        rows.append([str(c.number), f"[{c.title}]({link})", f"**{c.verdict}**", support, short])
    src.links.append((block, [(c.number, src.root / "docs" / CLAIM_PAGES.get(c.number, "")) for c in claims]))
    return Output([caption([run], src.root, "The report's verdicts (`make report`)."), ""]
                  + md_table(["#", "claim", "verdict", "comparisons for it", "strongest comparison each way"], rows))


EVIDENCE = re.compile(r"\s*\((?:test_[^()]*)\)$")


def k_claim(block: Block, src: Sources, target: Path) -> Output:
    (run,) = src.for_block(block, one=True)
    claims, _, _ = src.claims(run)
    c = _claim(claims, block.args["n"], block.where(src.root))
    lines = [f'<a id="claim-{c.number}"></a>', "",
             f"**Claim {c.number}, {c.title}: {c.verdict}.** {c.summary}", "", f"> {c.claim}", "",
             caption([run], src.root, "The report's section (`make report`)."), "", f"*What was compared.* {c.tested}"]
    if c.findings or c.notes:
        lines.append("")
    lines += [f"- {EVIDENCE.sub('', f)}" for f in c.findings]
    lines += [f"- *{n}*" for n in c.notes]
    return Output(lines)


def _claim(claims, number: str, where: str):
    found = [c for c in claims if str(c.number) == str(number)]
    if not found:
        raise BadInput(f"{where}: no claim {number}; claims are {', '.join(str(c.number) for c in claims)}")
    return found[0]


def _claim_table(block: Block, src: Sources, number, index) -> Output:
    where = block.where(src.root)
    (run,) = src.for_block(block, one=True)
    claims, _, _ = src.claims(run)
    c = _claim(claims, number, where)
    try:
        k = int(index)
    except ValueError:
        raise BadInput(f"{where}: table={index!r} is not a number") from None
    if not 1 <= k <= len(c.tables):
        raise BadInput(f"{where}: claim {c.number} has {len(c.tables)} table(s) in {_rel(run.path, src.root)}, "
                       f"not a table {index}")
    table = c.tables[k - 1]
    headers, rows = list(table.headers), [list(r) for r in table.rows]
    if headers and headers[0] == "device" and len({r[0] for r in rows}) == 1:
        headers, rows = headers[1:], [r[1:] for r in rows]  # one device: the column says nothing
    title = f"{table.title} (claim {c.number})." if table.title else ""
    return Output([caption([run], src.root, title), ""] + md_table(headers, rows))


def k_claim_table(block, src, target):
    return _claim_table(block, src, block.args["claim"], block.args["table"])


def k_pipelines(block, src, target):
    return _claim_table(block, src, 5, 1)


def k_distributed(block, src, target):
    return _claim_table(block, src, 7, 1)


def k_api_levels(block, src, target):
    return _claim_table(block, src, 8, 1)


def k_graph_medians(block: Block, src: Sources, target: Path) -> Output:
    from .claims import fmt_time, mode_label

    runs = src.for_block(block, one=False)
    device = _device(runs, block, ("graph",))
    want = {k: _choices(block, k) for k in ("workload", "pass", "batch")}
    cells: dict = {}
    order: list = []
    for run in runs:
        for bench in run.benchmarks.values():
            info = bench.extra_info or {}
            if bench.group.split("/")[0] != "graph" or info.get("device", bench.group.rsplit("/", 1)[-1]) != device:
                continue
            row = (info.get("workload"), info.get("pass"), info.get("batch"))
            col = (info.get("framework"), info.get("mode"))
            if None in row or col not in GRAPH_COLUMNS:
                continue
            if any(want[k] is not None and str(v) not in want[k] for k, v in zip(("workload", "pass", "batch"), row)):
                continue
            if row[0] not in order:
                order.append(row[0])
            cells.setdefault(row, {}).setdefault(col, []).append(_item_median(bench))
    if not cells:
        raise BadInput(f"{block.where(src.root)}: no steady-state graph benchmarks on {device} in the run(s) "
                       "(or none match the workload=/pass=/batch= given)")
    columns = [c for c in GRAPH_COLUMNS if any(c in v for v in cells.values())]
    rows = []
    for row in sorted(cells, key=lambda r: (order.index(r[0]), r[1] != "inference", str(r[1]), _batch_order(r[2]))):
        medians = {c: float(np.median(v)) for c, v in cells[row].items()}
        fastest = min(medians, key=medians.get)
        rows.append([row[0], row[1], str(row[2])] + [
            ("**" + fmt_time(medians[c]) + "**" if c == fastest and len(medians) > 1 else fmt_time(medians[c]))
            if c in medians else "–" for c in columns])
    what = ("Median time per step, steady state; fastest in bold"
            + (f"; each figure the median of the {len(runs)} runs' medians." if len(runs) > 1 else "."))
    headers = ["workload", "pass", "batch"] + [mode_label(fw, m) for fw, m in columns]
    return Output([caption(runs, src.root, what), ""] + md_table(headers, rows))


def k_first_call(block: Block, src: Sources, target: Path) -> Output:
    from .claims import fmt_time, mode_label

    (run,) = src.for_block(block, one=True)
    device = _device([run], block, ("graph-first-call",))
    cells: dict = {}
    order: list = []
    for bench in run.benchmarks.values():
        info = bench.extra_info or {}
        if bench.group.split("/")[0] != "graph-first-call" or info.get("device") != device:
            continue
        row, col = (info.get("workload"), info.get("pass"), info.get("batch")), (info.get("framework"), info.get("mode"))
        if None in row or col not in FIRST_CALL_COLUMNS:
            continue
        if row[0] not in order:
            order.append(row[0])
        compile_s = info.get("compile_s")
        if "break_even_steps" not in info:
            even = "n/a"
        elif info["break_even_steps"] is None:
            even = "never"
        else:
            even = f"{info['break_even_steps']:,.0f}"
        cells.setdefault(row, {})[col] = f"{fmt_time(compile_s) if compile_s is not None else 'n/a'} / {even}"
    if not cells:
        raise BadInput(f"{block.where(src.root)}: no first-call benchmarks (graph-first-call/...) on {device} in "
                       f"{_rel(run.path, src.root)}")
    columns = [c for c in FIRST_CALL_COLUMNS if any(c in v for v in cells.values())]
    rows = [[r[0], r[1], str(r[2])] + [cells[r].get(c, "–") for c in columns]
            for r in sorted(cells, key=lambda r: (order.index(r[0]), r[1] != "inference", str(r[1]), _batch_order(r[2])))]
    what = ("First call: compile time (first call minus one steady step) / steps until it pays back against eager "
            "('never': the graph mode's step is not faster).")
    return Output([caption([run], src.root, what), ""]
                  + md_table(["workload", "pass", "batch"] + [mode_label(fw, m) for fw, m in columns], rows))


def k_transfer(block: Block, src: Sources, target: Path) -> Output:
    from .claims import fmt_time

    (run,) = src.for_block(block, one=True)
    device = _device([run], block, ("transfer",))
    directions = _choices(block, "direction")
    lines: dict = {}
    sizes: set = set()
    reference: dict = {}
    for bench in run.benchmarks.values():
        info = bench.extra_info or {}
        size = info.get("size") or info.get("bytes")
        if bench.group.split("/")[0] != "transfer" or info.get("device") != device or not isinstance(size, (int, float)):
            continue
        median = _item_median(bench)
        gbps = info.get("gbps") or (info["bytes"] / median / 1e9 if info.get("bytes") else None)
        if info.get("direction") == "reference":
            reference[size] = gbps
        elif directions is not None and info.get("direction") not in directions:
            continue
        memory = info.get("memory") or ""
        label = (f"{info.get('framework')} {info.get('mode')} ({info.get('direction')}"
                 + (f", {memory}" if memory and (memory != "pageable" or device != "cpu") else "")
                 + (", non_blocking" if info.get("blocking") is False else "") + ")")
        if info.get("direction") == "reference":
            label = "numpy copyto (the copy limit)"
        lines.setdefault(label, {})[size] = (median, gbps, bool(info.get("zero_copy")))
        sizes.add(size)
    if not lines:
        raise BadInput(f"{block.where(src.root)}: no transfer benchmarks on {device} in {_rel(run.path, src.root)}")
    columns = sorted(sizes)
    rows = []
    for label in sorted(lines, key=lambda l: (not l.startswith("numpy copyto"), l)):
        row = [label]
        for size in columns:
            if size not in lines[label]:
                row.append("–")
                continue
            median, gbps, zero = lines[label][size]
            if zero or not gbps:
                row.append(f"{fmt_time(median)}{' (0-copy)' if zero else ''}")
            elif label.startswith("numpy copyto") or not reference.get(size):
                row.append(f"{gbps:.3g}")
            else:
                row.append(f"{gbps:.3g} ({gbps / reference[size]:.2f})")
        rows.append(row)
    what = ("GB/s from the median time (fraction of numpy.copyto of the same size, measured in the same run); "
            "zero-copy calls: time per call.")
    return Output([caption([run], src.root, what), ""] + md_table(["call"] + [_size(s) for s in columns], rows))


def k_profile(block: Block, src: Sources, target: Path) -> Output:
    runs = src.for_block(block, one=False, one_profile=False)
    seconds = {r.path: (r.load or {}).get("benchmarks_s") for r in runs}
    timed = any(isinstance(s, (int, float)) for s in seconds.values())
    headers = ["run", "profile", "cases"] + (["time in benchmarks"] if timed else []) + ["run JSON"]
    rows = []
    for r in runs:
        row = [f"`{r.path.name}`", r.profile, str(len(r.benchmarks))]
        if timed:
            s = seconds[r.path]
            row.append(_duration(s) if isinstance(s, (int, float)) else "n/a")
        row.append(f"{r.path.stat().st_size / 1e6:.1f} MB")
        rows.append(row)
    what = "Profiles: cases run" + (" and the seconds spent inside benchmark calls (the run's load record)." if timed
                                    else ".")
    return Output([caption(runs, src.root, what), ""] + md_table(headers, rows))


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def k_plot(block: Block, src: Sources, target: Path) -> Output:
    from .report_plots import draw

    where = block.where(src.root)
    (run,) = src.for_block(block, one=True)
    claims, _, _ = src.claims(run)
    c = _claim(claims, block.args["claim"], where)
    specs = [s for s in c.plots if ("kind" not in block.args or s.get("kind") == block.args["kind"])
             and ("device" not in block.args or str(s.get("device")) == block.args["device"])]
    try:
        index = int(block.args.get("index", "1"))
    except ValueError:
        raise BadInput(f"{where}: index={block.args['index']!r} is not a number") from None
    if not 1 <= index <= len(specs):
        raise BadInput(f"{where}: claim {c.number} has {len(specs)} matching plot(s) in "
                       f"{_rel(run.path, src.root)}, not a plot {index}")
    out = src.root / block.args["out"]
    if out.suffix != ".png":
        raise BadInput(f"{where}: out={block.args['out']} must name a .png file")
    spec = specs[index - 1]
    with tempfile.TemporaryDirectory() as tmp:
        draw(spec, Path(tmp), "plot.png")
        data = (Path(tmp) / "plot.png").read_bytes()
    link = os.path.relpath(out, target.parent).replace(os.sep, "/")
    title = spec.get("title", f"claim {c.number}")
    return Output([f"![{title}]({link})", "", caption([run], src.root, f"{title}.")], {out: data})


def read_data(path: Path, where: str, root: Path) -> tuple[dict, list[str], list[list[str]]]:
    """A data file of figures from a measurement script.

    JSON: ``{"source": ..., "machine": ..., "commit": ..., "load": "undisturbed",
    "columns": [...], "rows": [[...], ...]}``. CSV: ``# key: value`` lines for the same
    four fields, then a header row and the data rows. ``source`` says what measured it
    (the command); ``load`` must be ``undisturbed``.
    """
    name = _rel(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{where}: {name}: cannot read ({exc})") from None
    if path.suffix == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{where}: {name}: not JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(doc, dict):
            raise BadInput(f"{where}: {name}: not a JSON object with columns and rows")
        meta, columns, rows = doc, doc.get("columns"), doc.get("rows")
    elif path.suffix == ".csv":
        meta, body = {}, []
        for line in text.splitlines():
            if line.startswith("#"):
                key, _, value = line[1:].partition(":")
                meta[key.strip()] = value.strip()
            elif line.strip():
                body.append(line)
        table = list(csv.reader(io.StringIO("\n".join(body))))
        columns, rows = (table[0], table[1:]) if table else (None, None)
    else:
        raise BadInput(f"{where}: {name}: a data file is .json or .csv")
    for key in ("source", "machine", "commit", "load"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise BadInput(f"{where}: {name}: no '{key}' field; a data file says what measured it, where, at which "
                           "commit and under what load")
    if meta["load"] != UNDISTURBED:
        raise BadInput(f"{where}: refused {name}: its load is {meta['load']!r}, not undisturbed; "
                       "figures come only from undisturbed measurements")
    if not isinstance(columns, list) or not columns or not isinstance(rows, list) or \
            not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
        raise BadInput(f"{where}: {name}: needs 'columns' and 'rows' of the same width")
    return meta, [str(c) for c in columns], [[str(c) for c in r] for r in rows]


def k_table(block: Block, src: Sources, target: Path) -> Output:
    where = block.where(src.root)
    if Path(block.args["data"]).is_absolute():
        raise BadInput(f"{where}: {block.args['data']}: a marker names its files relative to the repository root, "
                       "so the page reads the same on every checkout")
    path = src.root / block.args["data"]
    if not path.is_file():
        raise BadInput(f"{where}: {block.args['data']}: no such file")
    meta, columns, rows = read_data(path, where, src.root)
    title = meta.get("title")
    text = (f"*{title + ' ' if title else ''}From `{_rel(path, src.root)}`, measured by {meta['source']}: "
            f"{meta['machine']}; commit {meta['commit']}; {meta['load']}. Written by `make docs`.*")
    return Output([text, ""] + md_table(columns, rows))


KINDS = {
    "verdicts": Kind(k_verdicts, {"run"}),
    "claim": Kind(k_claim, {"run", "n"}),
    "claim-table": Kind(k_claim_table, {"run", "claim", "table"}),
    "graph-medians": Kind(k_graph_medians, {"run"}, {"workload", "pass", "batch", "device"}),
    "first-call": Kind(k_first_call, {"run"}, {"device"}),
    "pipelines": Kind(k_pipelines, {"run"}),
    "transfer": Kind(k_transfer, {"run"}, {"device", "direction"}),
    "distributed": Kind(k_distributed, {"run"}),
    "api-levels": Kind(k_api_levels, {"run"}),
    "profile": Kind(k_profile, {"run"}),
    "plot": Kind(k_plot, {"run", "claim", "out"}, {"kind", "device", "index"}),
    "table": Kind(k_table, {"data"}),
}


# --- the command --------------------------------------------------------------------------------


@dataclass
class Result:
    texts: dict[Path, tuple[str, str]]  # path -> (old, new)
    files: dict[Path, bytes]  # plots
    blocks: int


def generate(root: Path, files: list[Path]) -> Result:
    """Every block of every file, regenerated in memory; BadInput on any problem."""
    src = Sources(root)
    texts, side, count = {}, {}, 0
    parsed = {}
    for path in files:
        if not path.is_file():
            raise BadInput(f"{_rel(path, root)}: no such file")
        try:
            old = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{_rel(path, root)}: cannot read ({exc})") from None
        lines = old.split("\n")
        parsed[path] = (old, lines, parse(path, lines, root))
    for path, (old, lines, blocks) in parsed.items():
        new_lines, last = [], 0
        for block in blocks:
            out = KINDS[block.kind].render(block, src, path)
            for other, data in out.files.items():
                if other in side and side[other] != data:
                    raise BadInput(f"{block.where(root)}: two blocks draw different plots into {_rel(other, root)}")
                side[other] = data
            new_lines += lines[last:block.start + 1] + [""] + out.lines + [""]
            last = block.end
            count += 1
        new_lines += lines[last:]
        texts[path] = (old, "\n".join(new_lines))
    _check_links(src, parsed, root)
    return Result(texts, side, count)


def _check_links(src: Sources, parsed: dict, root: Path) -> None:
    """A verdict table links each claim to a page whose `claim n=N` block carries the anchor."""
    claims_on = {}
    for path, (_, _, blocks) in parsed.items():
        claims_on[path.resolve()] = {b.args.get("n") for b in blocks if b.kind == "claim"}
    for block, links in src.links:
        for number, page in links:
            if page.resolve() not in claims_on:  # a page not given on the command line
                try:
                    text = page.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    raise BadInput(f"{block.where(root)}: claim {number} links to {_rel(page, root)}, which cannot "
                                   "be read; the verdict table links each claim to its section in docs/") from None
                claims_on[page.resolve()] = {b.args.get("n") for b in parse(page, text.split("\n"), root)
                                             if b.kind == "claim"}
            if str(number) not in claims_on[page.resolve()]:
                raise BadInput(f"{block.where(root)}: claim {number} links to {_rel(page, root)}, which has no "
                               f"'claim n={number}' block")


def _pending_note(result: Result) -> str:
    """Blocks marked ``<!-- pending generated: ... -->`` wait for sources not made yet; say how many."""
    pending = sum(1 for _, new in result.texts.values() for line in new.split("\n")
                  if line.startswith(PENDING))
    return f"; {pending} pending block(s) still wait for their sources" if pending else ""


def build_parser():
    p = Parser(prog="python -m benchruns docs",
               description="Rewrite every <!-- generated: KIND ... --> block of README.md and docs/*.md from the run "
               "files (or data files) its marker names; runs must be undisturbed. --check writes nothing, prints a "
               "diff of what would change and exits 1 if anything would.")
    p.add_argument("files", nargs="*", metavar="FILE", help="Markdown files (default: README.md and docs/*.md)")
    p.add_argument("--root", default=".", help="repository root: marker paths are relative to it (default: .)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff when a block is stale")
    return p


def _files(root: Path, given: list[str]) -> list[Path]:
    if given:
        return [Path(f) if Path(f).is_absolute() else root / f for f in given]
    files = [root / "README.md"] if (root / "README.md").is_file() else []
    files += sorted((root / "docs").glob("*.md"))
    if not files:
        raise BadInput(f"{root}: no README.md and no docs/*.md to generate")
    return files


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    root = Path(args.root)
    try:
        if not root.is_dir():
            raise BadInput(f"{root}: no such folder (--root)")
        result = generate(root, _files(root, args.files))
    except BadInput as exc:
        print(f"benchruns docs: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("benchruns docs: interrupted", file=sys.stderr)
        return 130
    stale_texts = {p: t for p, t in result.texts.items() if t[0] != t[1]}
    stale_files = [p for p, data in result.files.items() if not p.is_file() or p.read_bytes() != data]
    if args.check:
        for path, (old, new) in stale_texts.items():
            name = _rel(path, root)
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       f"{name} (committed)", f"{name} (from its sources)"))
        for path in stale_files:
            print(f"{_rel(path, root)}: the plot differs from what its run draws (or is missing)")
        if stale_texts or stale_files:
            print(f"benchruns docs: {len(stale_texts) + len(stale_files)} file(s) differ from their sources; "
                  "run `make docs`", file=sys.stderr)
            return 1
        print(f"docs: {result.blocks} generated blocks in {len(result.texts)} files match their sources"
              + _pending_note(result))
        return 0
    for path in stale_files:
        _write(path, result.files[path])
    for path, (_, new) in stale_texts.items():
        _write(path, new.encode("utf-8"))
    changed = [_rel(p, root) for p in list(stale_texts) + stale_files]
    print(f"docs: {result.blocks} generated blocks in {len(result.texts)} files; "
          + (f"rewrote {', '.join(changed)}" if changed else "nothing changed") + _pending_note(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
