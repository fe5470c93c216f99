"""branchgrowth: how fast the results branch grows at the nightly cadence, from committed runs' sizes.

``python -m benchruns.studies.branchgrowth [--results-dir results] [--nightly 3] [--out FILE]``

Measures every run file this commit holds under ``--results-dir`` (``git ls-files``: the
committed runs, not whatever else lies there) whose load record says undisturbed: its JSON
size and the size ``make publish`` stores (``benchruns.publish.compress``: gzip -9, mtime 0),
the median per profile. Then the branch's growth per year at ``--nightly`` quick runs a
night, and what git really keeps: the quick runs committed ``--nightly`` to a commit into a
scratch repository, ``git gc``, and the pack's size per run (trees and commits included).

Writes a ``table data=`` file (benchruns/studies/docs/data.py) for docs/nightly-ci.md. Nothing
is timed, so the machine's load cannot change a figure; the table says undisturbed because
every run it measures is. Exit codes: 0 written, 2 bad input (no committed undisturbed quick
run, a modified checkout without --allow-dirty): one line, nothing written.
"""

from __future__ import annotations

import gzip
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import storage
from ..argparsing import Parser
from ..publish import compress
from ..runs import BadInput, load_run
from . import figures

NIGHTLY = 3
NIGHTS = 365
WEEKS = 52


def committed_runs(root: Path, results_dir: str) -> list[Path]:
    """The run files under ``results_dir`` that the checkout at ``root`` has committed."""
    done = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", results_dir], capture_output=True)
    if done.returncode != 0:
        raise BadInput(f"{root}: not a git checkout; the sizes are of committed runs")
    names = [n for n in done.stdout.decode("utf-8", "replace").split("\0") if n]
    return sorted(root / n for n in names if storage.is_run_name(Path(n).name) and (root / n).is_file())


def measure(paths: list[Path]) -> dict[str, list[dict]]:
    """Per profile, each undisturbed run's file, machine key, JSON bytes and stored (gzipped) bytes."""
    by_profile: dict[str, list[dict]] = {}
    for path in paths:
        try:
            run = load_run(path)
        except BadInput:
            continue  # a broken file is no run; the branch would not hold it either
        if run.load_status != figures.UNDISTURBED:
            continue
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        by_profile.setdefault(run.profile, []).append({
            "path": path, "key": run.key, "machine": run.machine_info,
            "json": len(data), "stored": len(compress(data)), "data": data})
    return by_profile


def pack_bytes_per_run(runs: list[dict], nightly: int) -> float:
    """The pack git keeps per run: the runs committed ``nightly`` at a time into a scratch repo, then gc."""
    with tempfile.TemporaryDirectory(prefix="benchruns-branchgrowth-") as tmp:
        repo = Path(tmp)

        def git(*args: str) -> str:
            done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=branchgrowth",
                                   "-c", "user.email=branchgrowth@localhost", *args], capture_output=True, text=True)
            if done.returncode != 0:
                raise BadInput(f"git {args[0]} failed in a scratch repository: {done.stderr.strip()[-200:]}")
            return done.stdout

        git("init", "-q")
        for start in range(0, len(runs), nightly):
            for run in runs[start:start + nightly]:
                target = repo / run["key"] / (storage.run_stem(run["path"]) + ".json.gz")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(compress(run["data"]))
            git("add", "-A")
            git("commit", "-q", "-m", f"night {start // nightly + 1}")
        git("gc", "-q")
        sizes = dict(line.split(": ", 1) for line in git("count-objects", "-v").splitlines())
        return int(sizes["size-pack"]) * 1024 / len(runs)


def _size(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f} MB" if n < 10e6 else f"{n / 1e6:.0f} MB"
    return f"{n / 1e3:.0f} KB"


def growth_table(by_profile: dict[str, list[dict]], nightly: int, results_dir: str) -> tuple[str, list, list, dict]:
    """(title, columns, rows, extra) of the branch's growth."""
    quick = by_profile.get("quick") or []
    if not quick:
        raise BadInput(f"{results_dir}: no committed undisturbed quick run to measure; commit some "
                       "(make bench PROFILE=quick) first")
    rows, medians = [], {}
    for profile in sorted(by_profile, key=lambda p: (p != "quick", p)):
        runs = by_profile[profile]
        size = statistics.median(r["json"] for r in runs)
        stored = statistics.median(r["stored"] for r in runs)
        medians[profile] = {"runs": len(runs), "json_bytes": size, "stored_bytes": stored}
        rows.append([f"one {profile} run (median of {len(runs)})",
                     f"{_size(size)} of JSON; {_size(stored)} stored as .json.gz ({stored / size:.0%})"])
    per_year = nightly * NIGHTS
    quick_stored = medians["quick"]["stored_bytes"]
    pack = pack_bytes_per_run(quick, nightly)
    rows.append([f"results branch per year at {nightly} quick runs a night ({per_year} runs)",
                 f"{_size(per_year * quick_stored)} of .json.gz files; git's pack {_size(per_year * pack)} "
                 f"({_size(pack)} per run, measured on {len(quick)} runs committed {nightly} a night, after git gc)"])
    if "full" in medians:
        rows.append([f"and one full run a week ({WEEKS} more runs a year)",
                     f"+{_size(WEEKS * medians['full']['stored_bytes'])} of .json.gz files"])
    keys = sorted({r["key"] for runs in by_profile.values() for r in runs})
    title = (f"Sizes of the runs committed under `{results_dir}/` (undisturbed ones: "
             f"{', '.join(f'{len(v)} {p}' for p, v in sorted(by_profile.items()))}), as `make publish` stores them "
             f"in the results branch (gzip -9, mtime 0), and the branch's growth at the nightly workflow's "
             f"cadence. Sizes do not depend on load; the runs measured are all undisturbed.")
    extra = {"nightly": nightly, "medians": medians, "pack_bytes_per_run": pack, "machine_keys": keys}
    return title, ["what", "measured"], rows, extra


def machines(by_profile: dict[str, list[dict]]) -> str:
    seen = {}
    for runs in by_profile.values():
        for r in runs:
            info = r["machine"]
            seen[r["key"]] = f"{info.get('cpu_model', '?')}, {info.get('cpu_count', '?')} cores (machine key {r['key']})"
    return "; ".join(seen[k] for k in sorted(seen))


def build_parser() -> Parser:
    p = Parser(prog="python -m benchruns.studies.branchgrowth",
               description="The results branch's size and growth per year at the nightly cadence, measured on the "
               "committed runs (see the module docstring); writes a docs data table.")
    p.add_argument("--results-dir", default="results", help="committed runs, relative to the checkout (default results)")
    p.add_argument("--nightly", type=int, default=NIGHTLY, help=f"quick runs a night (default {NIGHTLY})")
    p.add_argument("--out", default="docs/data/results_branch_growth.json")
    p.add_argument("--allow-dirty", action="store_true",
                   help="measure a checkout with modified tracked files; the commit reads <sha>-dirty")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    prog = "benchruns branchgrowth"
    try:
        if args.nightly < 1:
            raise BadInput(f"bad --nightly value {args.nightly}: at least 1 run a night")
        if Path(args.results_dir).is_absolute():
            raise BadInput(f"{args.results_dir}: give --results-dir relative to the checkout (the table names it)")
        root = figures.ROOT
        sha = figures.commit(root, args.allow_dirty)
        by_profile = measure(committed_runs(root, args.results_dir))
        title, columns, rows, extra = growth_table(by_profile, args.nightly, args.results_dir)
        table = figures.table_doc(figures.source_text("python -m benchruns.studies.branchgrowth", argv),
                                  machines(by_profile), sha, figures.UNDISTURBED, columns, rows, title, **extra)
    except BadInput as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    for row in rows:
        print(f"  {row[0]}: {row[1]}")
    out = Path(args.out)
    figures.write_table(out if out.is_absolute() else root / out, table, prog)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
