"""docs: write every table of figures in README.md and docs/*.md from named run files.

``python -m benchruns docs [--check] [--root DIR] [FILE ...]``

This package is the command; the block kinds live in modules by what they read:
``verdicts`` (the report's judged claims and plots), ``medians`` (run medians), ``data``
(a measurement script's data file); ``blocks`` reads the markers, ``sources`` loads runs.

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

import difflib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ...argparsing import Parser
from ...runs import BadInput
from .blocks import END, PENDING, Kind, relative, parse
from .data import k_table, read_data
from .medians import k_first_call, k_graph_medians, k_profile, k_transfer
from .sources import Sources
from .verdicts import (CLAIM_PAGES, k_api_levels, k_claim, k_claim_table, k_distributed, k_pipelines, k_plot,
                       k_verdicts)

__all__ = ["CLAIM_PAGES", "END", "KINDS", "generate", "main", "read_data"]

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
            raise BadInput(f"{relative(path, root)}: no such file")
        try:
            old = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{relative(path, root)}: cannot read ({exc})") from None
        lines = old.split("\n")
        parsed[path] = (old, lines, parse(path, lines, root, KINDS))
    for path, (old, lines, blocks) in parsed.items():
        new_lines, last = [], 0
        for block in blocks:
            out = KINDS[block.kind].render(block, src, path)
            for other, data in out.files.items():
                if other in side and side[other] != data:
                    raise BadInput(f"{block.where(root)}: two blocks draw different plots into {relative(other, root)}")
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
                    raise BadInput(f"{block.where(root)}: claim {number} links to {relative(page, root)}, which cannot "
                                   "be read; the verdict table links each claim to its section in docs/") from None
                claims_on[page.resolve()] = {b.args.get("n") for b in parse(page, text.split("\n"), root, KINDS)
                                             if b.kind == "claim"}
            if str(number) not in claims_on[page.resolve()]:
                raise BadInput(f"{block.where(root)}: claim {number} links to {relative(page, root)}, which has no "
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
            name = relative(path, root)
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       f"{name} (committed)", f"{name} (from its sources)"))
        for path in stale_files:
            print(f"{relative(path, root)}: the plot differs from what its run draws (or is missing)")
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
    changed = [relative(p, root) for p in list(stale_texts) + stale_files]
    print(f"docs: {result.blocks} generated blocks in {len(result.texts)} files; "
          + (f"rewrote {', '.join(changed)}" if changed else "nothing changed") + _pending_note(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
