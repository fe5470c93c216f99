"""figures: the docs' data tables that come from a measurement script rather than from a saved run.

``python -m benchruns.studies.figures changepoints PROCESSES [--out FILE]``
    false steps per history and detection of injected +10% / +25% steps of the change-point
    detector (benchruns/changepoints.py), computed from the run medians of real processes of
    one commit (a ``tests/data/processes_quick_<commit>.json`` file, ``error-rates --save``).
    Pure computation, nothing is timed: its load is the load of those processes' runs, so
    the table is ``undisturbed`` only when the file's ``loads`` lists nothing else.

``python -m benchruns.studies.figures history-build RUN [--runs 100] [--out FILE]``
    wall time, peak memory (the build process's maximum resident set), output size and the
    steps found of ``python -m benchruns history`` over ``--runs`` synthetic runs made from
    the real run RUN by ``benchruns.history.synth``: a fresh build, then a rebuild over the
    site it wrote. Both builds are timed inside a ``benchruns.load.LoadMeter`` window, and
    the table's load is that window's verdict.

The peer-harness table comes from ``python -m benches.transfer_cases --out FILE``, which
uses ``commit``, ``this_machine`` and ``write_table`` from here.

Every table is a ``table data=FILE`` data file of benchruns/studies/docs/data.py: ``source`` (the command
that measured it), ``machine``, ``commit`` (``git rev-parse --short=7 HEAD`` of this
checkout; a checkout with modified tracked files is refused unless ``--allow-dirty``, which
marks the commit ``-dirty``), ``load``, ``columns`` and ``rows``; ``python -m benchruns docs``
refuses a file whose load is not undisturbed. ``make figures`` runs all three.

Exit codes: 0 written (a disturbed measurement is written too, with a warning: the docs
refuse it), 2 bad input: one line, nothing written.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import load as machine_load
from ..argparsing import Parser
from ..changepoints import MIN_EFFECT, PENALTY, QUIET, false_step_rates, find_steps
from ..machine import cpu_model, current_machine_info, machine_key
from ..runs import BadInput, load_run

# The checkout whose commit a table names (tests point it at a scratch repository).
ROOT = Path(__file__).resolve().parents[2]
# Where ``python -m benchruns history`` is started from: the code being timed.
CODE = Path(__file__).resolve().parents[2]
UNDISTURBED = "undisturbed"

CP_RUNS = 30  # runs per synthetic history (as tests/test_changepoints.py)
CP_HISTORIES = 60  # synthetic histories per benchmark
CP_STEPS = (1.10, 1.25)
MIN_PROCESSES = 4


# --- what every table carries ------------------------------------------------------------------


def commit(root: Path | None = None, allow_dirty: bool = False) -> str:
    """``git rev-parse --short=7 HEAD`` of ``root``; modified tracked files are refused (or marked -dirty)."""
    root = Path(root or ROOT)

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)

    try:
        head = git("rev-parse", "--short=7", "HEAD")
    except OSError as exc:
        raise BadInput(f"{root}: cannot run git ({exc.strerror}); a table names the commit it was measured "
                       "at") from None
    if head.returncode != 0 or not head.stdout.strip():
        raise BadInput(f"{root}: not a git checkout with a commit; a table names the commit it was measured at")
    sha = head.stdout.strip()
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").stdout.splitlines()
               if line.strip()]
    if changed and not allow_dirty:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise BadInput(f"{root}: tracked files are modified ({shown}), so no commit holds the code that would "
                       "be measured; run from a clean checkout (git worktree add --detach /tmp/figures HEAD) or "
                       "pass --allow-dirty to mark the commit -dirty")
    return sha + ("-dirty" if changed else "")


def this_machine() -> str:
    """CPU model and core count of the machine running this code."""
    return f"{cpu_model()}, {os.cpu_count()} cores"


def source_text(command: str, argv: list[str]) -> str:
    """The command line as typed, for a table's ``source`` field."""
    return f"`{command} {shlex.join(argv)}`" if argv else f"`{command}`"


def table_doc(source: str, machine: str, commit_: str, load: str, columns: list[str], rows: list[list[str]],
              title: str | None = None, **extra) -> dict:
    """A ``table data=`` document (benchruns/studies/docs/data.py's ``read_data`` format)."""
    if not columns or any(len(r) != len(columns) for r in rows):
        raise ValueError("every row needs one cell per column")
    doc = {"source": source, "machine": machine, "commit": commit_, "load": load}
    if title:
        doc["title"] = title
    doc.update({"columns": [str(c) for c in columns], "rows": [[str(c) for c in r] for r in rows]})
    doc.update(extra)
    return doc


def write_table(path, doc: dict, prog: str) -> None:
    """Write ``doc`` atomically and say so; a table that is not undisturbed is written with a warning."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    print(f"{prog}: wrote {path} ({len(doc['rows'])} rows; commit {doc['commit']}; {doc['load']})")
    if doc["load"] != UNDISTURBED:
        print(f"{prog}: warning: the measurement is {doc['load']}"
              + (f" ({doc['load_why']})" if doc.get("load_why") else "")
              + "; `python -m benchruns docs` refuses this file (figures come only from undisturbed measurements)",
              file=sys.stderr)


def load_of(meter: machine_load.LoadMeter) -> tuple[str, str, dict]:
    """(status, why, record) of a LoadMeter's windows."""
    rec = meter.record()
    status, why = machine_load.status(rec)
    return status, why, rec


def _pct(x: float, digits: int = 0) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f}%"


# --- change points ------------------------------------------------------------------------------


def read_processes(path: Path) -> dict:
    """A processes file (``error-rates --save``): run medians of real processes of one commit."""
    if not path.is_file():
        raise BadInput(f"{path}: no such file (a processes file: python -m benchruns error-rates RUN... --save FILE)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), dict) or not doc["benchmarks"]:
        raise BadInput(f"{path}: not a processes file (needs a non-empty 'benchmarks' object of run medians)")
    sources = doc.get("sources")
    if not isinstance(sources, list) or not sources:
        raise BadInput(f"{path}: no 'sources' list (one run file per process)")
    for key in ("commit", "machine_key"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise BadInput(f"{path}: no '{key}' field")
    for name, bench in doc["benchmarks"].items():
        medians = bench.get("medians") if isinstance(bench, dict) else None
        if not isinstance(medians, list) or len(medians) != len(sources) or not all(
                m is None or (isinstance(m, (int, float)) and not isinstance(m, bool) and math.isfinite(m) and m > 0)
                for m in medians):
            raise BadInput(f"{path}: benchmark {name!r} needs 'medians': one positive number (or null) per source")
    if len(sources) < MIN_PROCESSES:
        raise BadInput(f"{path}: {len(sources)} processes; change-point rates need at least {MIN_PROCESSES} "
                       "(10 or more for figures worth quoting)")
    loads = doc.get("loads")
    if loads is not None and (not isinstance(loads, list) or len(loads) != len(sources)
                              or not all(isinstance(x, str) for x in loads)):
        raise BadInput(f"{path}: 'loads' must list one load status per source")
    return doc


def processes_load(doc: dict) -> str:
    """undisturbed only when every process's run was; unrecorded when the file does not say."""
    loads = doc.get("loads") or []
    if not loads:
        return "unrecorded"
    if set(loads) == {UNDISTURBED}:
        return UNDISTURBED
    return "disturbed" if "disturbed" in loads else "unrecorded"


def machine_of_key(key: str, results_dir: Path) -> str:
    """CPU and cores of the machine behind a machine key: this one, or a saved run of that key."""
    try:
        if machine_key(current_machine_info()) == key:
            return f"{this_machine()} (machine key {key})"
    except Exception:  # noqa: BLE001 - reading this machine is best effort; the key still names it
        pass
    folder = results_dir / key
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            info = json.loads(path.read_text(encoding="utf-8")).get("machine_info") or {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
        if info.get("cpu_model"):
            return f"{info['cpu_model']}, {info.get('cpu_count', '?')} cores (machine key {key})"
    return f"machine key {key}"


def changepoints_table(doc: dict, name: str, runs: int = CP_RUNS, histories: int = CP_HISTORIES,
                       seed: int | None = None) -> tuple[str, list[str], list[list[str]], dict]:
    """(title, columns, rows, extra fields) of the change-point figures on one processes file."""
    medians = {k: [m for m in v["medians"] if m is not None] for k, v in doc["benchmarks"].items()}
    kwargs = {} if seed is None else {"seed": seed}
    rates = false_step_rates(medians, runs=runs, histories=histories, steps=CP_STEPS, **kwargs)
    if rates.benchmarks == 0:
        raise BadInput(f"{name}: no benchmark has {MIN_PROCESSES} or more run medians")
    # The real processes in the order they ran, a step allowed between any two: the drift of a
    # shared machine that resampling (which shuffles time away) cannot show.
    usable = [v for v in medians.values() if len(v) >= MIN_PROCESSES]
    in_order = sum(any(s.real for s in find_steps(v)) for v in usable)
    n = len(doc["sources"])
    title = (f"Change points on the run medians of {n} real {doc.get('profile', '')} processes of commit "
             f"{doc['commit']} (`{name}`): for each of {rates.benchmarks} benchmarks, {histories} synthetic "
             f"histories of {runs} runs drawn with replacement from its own medians (nothing changes in them), "
             f"then the same with a step injected half way; steps allowed at any run, which is stricter than "
             f"the site. Median run-to-run spread {_pct(rates.spread)} (IQR/1.349 of log medians).")
    title = " ".join(title.split())
    rows = [["false steps: histories with a real step although nothing changed",
             f"{_pct(rates.false_step, 2)} of benchmark histories (about {rates.false_step * rates.benchmarks:.1f} "
             f"of the {rates.benchmarks} benchmarks per {runs}-run history)"]]
    for step in CP_STEPS:
        rows.append([f"{step - 1:+.0%} step injected half way, found within 2 runs",
                     f"{_pct(rates.detection[step])} of histories ({_pct(rates.detection_quiet[step])} for the "
                     f"{rates.quiet} benchmarks with spread under {QUIET:.0%})"])
    rows.append([f"the {n} real processes in the order they ran, steps allowed between any two",
                 f"{in_order} of {len(usable)} benchmarks show a real step"])
    extra = {"processes": n, "benchmarks": rates.benchmarks, "histories": histories, "runs": runs,
             "penalty": PENALTY, "min_effect": MIN_EFFECT,
             "loads": {s: (doc.get("loads") or []).count(s) for s in sorted(set(doc.get("loads") or []))},
             "worst": [[k, v] for k, v in rates.worst]}
    return title, ["what", "measured"], rows, extra


def cmd_changepoints(args, argv: list[str], prog: str) -> int:
    path = Path(args.processes)
    doc = read_processes(path)
    sha = commit(ROOT, args.allow_dirty)
    name = _shown(path)
    title, columns, rows, extra = changepoints_table(doc, name, args.runs, args.histories)
    table = table_doc(source_text("python -m benchruns.studies.figures", argv),
                      machine_of_key(doc["machine_key"], Path(args.results_dir)), sha, processes_load(doc),
                      columns, rows, title, **extra)
    if table["load"] != UNDISTURBED:
        table["load_why"] = f"the runs of {name} are not all undisturbed (loads: {extra['loads'] or 'not recorded'})"
    for row in rows:
        print(f"  {row[0]}: {row[1]}")
    write_table(args.out, table, prog)
    return 0


# --- history build --------------------------------------------------------------------------------


def injected_steps(names: list[str], share: float, seed: int) -> set[str]:
    """The benchmarks ``benchruns.history.synth`` steps +10%: its generator's first draw, replayed."""
    rng = np.random.default_rng(seed)
    return {str(n) for n in rng.choice(names, size=int(len(names) * share), replace=False)} if names else set()


def measured_child(cmd: list[str], cwd: Path) -> tuple[float, int, int, str]:
    """(wall seconds, peak resident bytes, exit code, output) of one child process."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return wall, usage.ru_maxrss * 1024, proc.returncode, text


def _tree_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 10e6 else f"{n / 1e6:.0f} MB"


def steps_found(folder: Path, stepped: set[str], at: int) -> dict:
    """Real change points in the synthetic history: the injected ones found (within 2 runs, slower), the rest false."""
    from .. import storage
    from ..history.model import build_history

    runs = [load_run(p) for p in storage.list_runs(folder)]
    history = build_history(runs, {})
    found, false_slower, false_faster, series = 0, 0, 0, 0
    for s in history.series.values():
        series += 1
        hit = False
        for st in s.steps:
            if not st.real:
                continue
            if s.fullname in stepped and not hit and abs(st.index - at) <= 2 and st.ratio > 1:
                hit = True
            elif st.ratio > 1:
                false_slower += 1
            else:
                false_faster += 1
        found += hit
    return {"series": series, "found": found, "false_slower": false_slower, "false_faster": false_faster}


def history_build(run_path: Path, runs: int, spread: float, share: float, seed: int, python: str,
                  meter: machine_load.LoadMeter, log=print) -> dict:
    """Make the synthetic runs, time two builds of the site inside ``meter``'s windows, count the steps found."""
    from ..history import synth

    run = load_run(run_path)
    if run.load_status == "disturbed":
        raise BadInput(f"{run_path}: a disturbed run; its synthetic copies would be disturbed too, and change "
                       "points leave disturbed runs out, so nothing could be found")
    # synth draws the stepped benchmarks from the run file's own order of fullnames
    names = [b["fullname"] for b in json.loads(run_path.read_text(encoding="utf-8"))["benchmarks"]]
    with tempfile.TemporaryDirectory(prefix="benchruns-figures-") as tmp:
        tmp = Path(tmp)
        synth_out, site = tmp / "synth", tmp / "site"
        synth.main([str(run_path), str(synth_out), "--runs", str(runs), "--spread", repr(spread),
                    "--stepped", repr(share), "--seed", str(seed)])
        (folder,) = [p for p in synth_out.iterdir() if p.is_dir()]
        input_bytes, input_files = _tree_size(synth_out)
        cmd = [python, "-m", "benchruns", "history", "--results-dir", str(synth_out), "--out", str(site)]
        builds = []
        for label in ("build", "rebuild over the existing site"):
            meter.open()
            try:
                wall, peak, rc, out = measured_child(cmd, CODE)
            finally:
                meter.close()
            if rc != 0:
                last = (out.strip().splitlines() or ["(no output)"])[-1]
                raise RuntimeError(f"python -m benchruns history exited {rc}: {last}")
            log(f"  {label}: {wall:.1f} s, peak {peak / 1e6:.0f} MB")
            builds.append((label, wall, peak))
        out_bytes, out_files = _tree_size(site)
        stepped = injected_steps(names, share, seed)
        steps = steps_found(folder, stepped, int(runs * 0.7))
    return {"benchmarks": len(run.benchmarks), "runs": runs, "stepped": len(stepped), "at": int(runs * 0.7),
            "input_bytes": input_bytes, "input_files": input_files, "builds": builds,
            "out_bytes": out_bytes, "out_files": out_files, **steps}


def history_rows(r: dict) -> list[list[str]]:
    rows = [["input", f"{r['runs']} synthetic runs of {r['benchmarks']} benchmarks, {_mb(r['input_bytes'])} of "
                      "run files (raw rounds kept)"]]
    for label, wall, peak in r["builds"]:
        rows.append([label, f"{wall:.1f} s wall, {peak / 1e6:.0f} MB peak memory"])
    rows.append(["site written", f"{_mb(r['out_bytes'])} in {r['out_files']} files"])
    others = r["benchmarks"] - r["stepped"]
    false = r["false_slower"] + r["false_faster"]
    kinds = ", ".join(f"{n} {what}" for n, what in ((r["false_slower"], "slower"), (r["false_faster"], "faster")) if n)
    rows.append(["steps found", f"{r['found']} of the {r['stepped']} injected +10% steps (within 2 runs of run "
                                f"{r['at']}); {false} false step(s){' (' + kinds + ')' if kinds else ''} among the "
                                f"other {others} benchmarks"])
    return rows


def cmd_history_build(args, argv: list[str], prog: str) -> int:
    run_path = Path(args.run)
    if args.runs < 10:
        raise BadInput(f"bad --runs value {args.runs}: at least 10 (the step starts at run 70% of the way)")
    if not 0 <= args.spread <= 1:
        raise BadInput(f"bad --spread value {args.spread}: a lognormal sigma between 0 and 1")
    if not 0 <= args.stepped <= 1:
        raise BadInput(f"bad --stepped value {args.stepped}: a share of the benchmarks between 0 and 1")
    load_run(run_path)  # one line on a bad run file, before anything is made
    sha = commit(ROOT, args.allow_dirty)
    meter = machine_load.LoadMeter()
    result = history_build(run_path, args.runs, args.spread, args.stepped, args.seed, args.python, meter)
    status, why, rec = load_of(meter)
    title = (f"`python -m benchruns history` over {args.runs} synthetic runs made by `benchruns.history.synth` "
             f"from `{_shown(run_path)}` (each median scaled by a {args.spread:.0%} lognormal run-to-run factor, "
             f"{result['stepped']} benchmarks stepped +10% from run {result['at']}); wall time and the build "
             "process's peak resident memory.")
    table = table_doc(source_text("python -m benchruns.studies.figures", argv), this_machine(), sha, status,
                      ["what", "measured"], history_rows(result), title, load_record=rec,
                      **({"load_why": why} if why else {}))
    for row in table["rows"]:
        print(f"  {row[0]}: {row[1]}")
    write_table(args.out, table, prog)
    return 0


# --- the command ----------------------------------------------------------------------------------


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT.resolve()))
    except ValueError:
        return str(path)


def build_parser() -> Parser:
    p = Parser(prog="python -m benchruns.studies.figures",
               description="Write the docs' data tables that come from a measurement script (see the module "
               "docstring); python -m benchruns docs then renders them.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    c = sub.add_parser("changepoints", help="false steps and detection of the change-point detector on real processes")
    c.add_argument("processes", help="processes file: run medians of real processes of one commit (error-rates --save)")
    c.add_argument("--out", default="docs/data/changepoints.json")
    c.add_argument("--runs", type=int, default=CP_RUNS, help=f"runs per synthetic history (default {CP_RUNS})")
    c.add_argument("--histories", type=int, default=CP_HISTORIES,
                   help=f"synthetic histories per benchmark (default {CP_HISTORIES})")
    c.add_argument("--results-dir", default="results", help="where to find the processes' machine (default results)")
    h = sub.add_parser("history-build", help="time `python -m benchruns history` over synthetic runs (run alone)")
    h.add_argument("run", help="a real run file (a full-profile run, raw rounds kept) to make the synthetic runs from")
    h.add_argument("--out", default="docs/data/history_build.json")
    h.add_argument("--runs", type=int, default=100)
    h.add_argument("--spread", type=float, default=0.05)
    h.add_argument("--stepped", type=float, default=0.05)
    h.add_argument("--seed", type=int, default=13)
    h.add_argument("--python", default=sys.executable, help="interpreter that runs the build (default: this one)")
    for q in (c, h):
        q.add_argument("--allow-dirty", action="store_true",
                       help="measure a checkout with modified tracked files; the commit reads <sha>-dirty")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    prog = f"benchruns figures {args.command}"
    try:
        if getattr(args, "runs", 1) < 1 or getattr(args, "histories", 1) < 1:
            raise BadInput("--runs and --histories must be at least 1")
        return {"changepoints": cmd_changepoints, "history-build": cmd_history_build}[args.command](args, argv, prog)
    except BadInput as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
