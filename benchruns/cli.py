"""Command line: ``python -m benchruns COMMAND [options]``; ``COMMAND --help`` for each.

The commands users run (compare, gate, diff, ab, baseline, history, report, fleet, publish)
live in benchruns/; the ones that make the project's own docs and studies (docs,
error-rates, noise-study, ab-jobs, ab-aa) in benchruns/studies/.

Exit codes: 0 ok, 1 the gate found a regression, 2 bad input (one line on stderr
naming the file or option and the problem; never a traceback).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .argparsing import Parser
from .runs import BadInput

FORMATS = ("table", "md", "json")


def _alpha(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad --alpha value {text!r}: a number such as 0.01") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"bad --alpha value {text!r}: must be between 0 and 1")
    return value


def _seconds(option: str, most: float, unit: str, example: str):
    """An argparse type: seconds above 0 and at most ``most``, with one line naming ``option`` otherwise."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad {option} value {text!r}: seconds, such as {example}") from None
        if not 0 < value <= most:
            raise argparse.ArgumentTypeError(f"bad {option} value {text!r}: above 0 and at most {most:g} {unit}")
        return value
    return parse


_turn_time = _seconds("--turn-time", 60, "seconds", "0.3")
_round_time = _seconds("--round-time", 1, "second", "0.001")


def _whole_number(option: str, expected: str):
    """An argparse type: a whole number of at least 1; ``expected`` says what was wanted, in the one line."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad {option} value {text!r}: {expected}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"bad {option} value {text!r}: at least 1")
        return value
    return parse


_lookback = _whole_number("--lookback", "a whole number of runs such as 10")
_lanes = _whole_number("--lanes", "a whole number such as 1 or 2")
_calls = _whole_number("--calls", "a whole number such as 3 or 9")
_thread_count = _whole_number("--threads", "a whole number such as 1, or 'suite'")


def _threads(text):
    return text if text == "suite" else _thread_count(text)


def _pair_options(p, results=True):
    p.add_argument("--base", action="append", metavar="RUN",
                   help="baseline run file; repeat for several runs (default: the last --lookback runs of the "
                   "candidate's machine and profile, ending at the marked baseline if any)")
    p.add_argument("--cand", action="append", metavar="RUN",
                   help="candidate run file; repeat for several (default: this machine's newest run)")
    p.add_argument("--lookback", type=_lookback, default=10,
                   help="how many earlier runs of the same machine and profile form the baseline (default 10)")
    p.add_argument("--strict", action="store_true",
                   help="exit 2 instead of 0 when there are too few runs to decide (fewer than 3 base runs)")
    p.add_argument("--results-dir", default="results", help="saved runs, results/<machine-key>/ (default: results)")
    p.add_argument("--machine", help="machine key folder to use instead of this machine's key")
    p.add_argument("--allow-different-machines", action="store_true", help="compare runs whose machine keys differ")
    p.add_argument("--include-disturbed", action="store_true",
                   help="use runs whose load record says other processes used the cores (left out by default)")
    p.add_argument("--normalise", choices=("auto", "probe", "raw"), default="auto",
                   help="judge on median / reference probe (benchruns/probe.py): auto (default) only where the probe "
                   "shrinks the spread between the base runs; probe wherever both sides carry one; raw never. "
                   "Runs without a probe are compared raw, with a note")


def _judge_options(p, fmt=True):
    p.add_argument("--threshold", default="10%", help="slowdown to catch, for groups not in the config (default 10%%)")
    p.add_argument("--config", help="TOML file of per-group thresholds (default: benchruns/thresholds.toml)")
    p.add_argument("--no-config", action="store_true", help="ignore the per-group threshold file")
    p.add_argument("--alpha", type=_alpha, default=0.025,
                   help="job-wide false-alarm level: Benjamini-Hochberg over all benchmarks (default 0.025, which "
                   "measured under 5%% of A/A jobs failing on real processes; see docs/gate.md)")
    if fmt:
        p.add_argument("--format", choices=FORMATS, default="table", help="table, md (CI summaries) or json")


def build_parser() -> Parser:
    parser = Parser(prog="python -m benchruns", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("compare", help="per-benchmark ratio, 95%% CI, MDE and verdict between runs",
                       description="One row per benchmark: base and candidate medians, ratio cand/base with its 95%% "
                       "CI, the minimum detectable slowdown, and a verdict from a moderated t test on run medians "
                       "(the process is the unit) with Benjamini-Hochberg across benchmarks and an effect-size "
                       "threshold (see benchruns/stats.py). Only runs of one machine key and profile are compared.")
    _pair_options(p)
    _judge_options(p)

    p = sub.add_parser("gate", help="exit 1 if a benchmark got significantly slower beyond its threshold",
                       description="Exit 0 when nothing regressed, 1 when at least one benchmark is significantly "
                       "slower beyond its threshold (listed), 2 on bad input (and on too few runs with --strict). "
                       "The baseline is a lookback window of earlier runs of the same machine and profile. "
                       "Per-group thresholds come from a TOML file of glob patterns on group names.")
    _pair_options(p)
    _judge_options(p)

    p = sub.add_parser("diff", help="benchmarks added/removed, changed machine and commit fields, median changes",
                       description="What differs between two run files: benchmarks added and removed, machine_info "
                       "and commit_info fields that changed, and median changes sorted by size.")
    p.add_argument("a", help="older run file")
    p.add_argument("b", help="newer run file")
    p.add_argument("--format", choices=FORMATS, default="table")

    p = sub.add_parser("ab", help="same-job A/B in worker pairs whose timing rounds interleave, then a paired gate",
                       description="Start --repeat fresh worker pairs: side A runs `pytest benches` in a git worktree "
                       "of --base-ref (or with --base-python), side B in a worktree of the working tree's current "
                       "state. By default (--design interleave) both set up each benchmark, then their timing rounds "
                       "alternate one at a time on the same pinned core; never both at once. B is gated against A on "
                       "the per-pair ratios of run medians (see benchruns/ab.py, benchruns/stats.py, docs/gate.md). "
                       "Nothing is saved to results/; the design and wall time are printed at the end.")
    p.add_argument("--base-ref", default="", help="git ref for side A (a temporary worktree)")
    p.add_argument("-k", dest="k", default="", help="pytest -k expression selecting benchmarks")
    p.add_argument("--repeat", type=int, default=8,
                   help="fresh worker pairs (default 8); each pair gives one process per side, the unit of the test")
    p.add_argument("--python", default=sys.executable, help="interpreter for side B (and A unless --base-python)")
    p.add_argument("--base-python", help="interpreter for side A; without --base-ref, A runs the same code as B")
    p.add_argument("--profile", default="quick", help="benchmark profile (default quick)")
    p.add_argument("--pytest-arg", dest="pytest_args", action="append", metavar="ARG",
                   help="extra argument for both sides' pytest, e.g. --pytest-arg=--benchmark-max-time=0.1")
    p.add_argument("--strict", action="store_true", help="exit 2 when too few pairs to decide")
    p.add_argument("--keep", metavar="DIR", help="copy each worker's run JSON and log into DIR (a new folder)")
    p.add_argument("--design", choices=("interleave", "alternate", "duet"), default="interleave",
                   help="interleave: both workers set up each benchmark, then their timing rounds alternate one at a "
                   "time on the same pinned core(s); alternate: the two workers take turns per benchmark on all cores "
                   "(A B B A ...); duet: both run each benchmark at the same time, each pinned to half of the cores")
    p.add_argument("--turn-time", type=_turn_time, default=None, metavar="SECONDS",
                   help="interleave: seconds of rounds per side and benchmark (default 0.25); alternate/duet: seconds "
                   "of rounds per benchmark and turn (--benchmark-max-time; default 0.1). See docs/gate.md")
    p.add_argument("--round-time", type=_round_time, default=None, metavar="SECONDS",
                   help="interleave: a round lasts at least this long (--benchmark-min-time; default 0.001), or one "
                   "step where a step is longer")
    p.add_argument("--threads", type=_threads, default=None,
                   help="threads of both workers: a number, or 'suite' for the suite's own setting (default: "
                   "interleave 1, pinned to one core; duet half the cores per side; alternate the suite's)")
    p.add_argument("--lanes", type=_lanes, default=None,
                   help="interleave: worker pairs run at once, each pair pinned to its own core(s) (default 2, or 1 "
                   "where the cores allow one); "
                   "a pair's two sides still share their core and alternate rounds")
    p.add_argument("--calls", type=_calls, default=None,
                   help="interleave: calls a side, at least, for a first call that the suite times more than once "
                   "(a fresh set-up and one call each, A's and B's alternating; default 9); a cold compile, timed "
                   "once, keeps its one")
    p.add_argument("--include-disturbed", action="store_true",
                   help="judge pairs during whose turns other processes used the cores (left out by default)")
    p.add_argument("--record", metavar="FILE", help="write the job's summary (verdict, MDEs, wall time, loads) "
                   "as JSON to FILE (a new file), e.g. for the docs' table of real jobs")
    _judge_options(p)

    p = sub.add_parser("history", help="a static site of runs over time: trends, change points, machines",
                       description="Static HTML site (inline SVG, opens from disk, offline) of every machine key "
                       "and profile under --results-dir: an overview of trend lines by question, profile and "
                       "device; the change points called real, newest first, with size, CI, commits and the "
                       "diff of the runs around them; a page per benchmark; machines side by side. Change "
                       "points: benchruns/changepoints.py.")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--machine", action="append", metavar="KEY",
                   help="machine key folder to include; repeat for several (default: every machine folder)")
    p.add_argument("--out", default="build/history", help="output folder (default build/history)")
    p.add_argument("--top", type=int, default=3, help="how many of the newest real regressions to print (default 3)")
    p.add_argument("--normalise", choices=("raw", "probe"), default="raw",
                   help="probe: draw each series whose runs all carry the reference probe at its typical machine "
                   "speed (median x typical probe / the run's probe; benchruns/probe.py); raw (default): as measured")
    p.add_argument("--include-disturbed", action="store_true",
                   help="count disturbed runs in change-point detection (default: drawn hollow, left out)")

    p = sub.add_parser("baseline", help="mark a run as the baseline for compare/gate",
                       description="Write results/<machine-key>/BASELINE naming the run; run files are never modified.")
    p.add_argument("--run", help="run file (default: this machine's newest run)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--machine", help="machine key folder to use instead of this machine's key")

    p = sub.add_parser("error-rates", help="the gate's false alarms and detection, resampled from real processes",
                       description="Resample jobs of the gate from N>=10 real runs (processes) of one commit: the share "
                       "of A/A jobs that fail, paired (ab) and unpaired (saved-run window), and the share of jobs "
                       "that catch a 10%% slowdown injected into the benchmarks matched by --slow. See "
                       "benchruns/studies/errorrates.py.")
    p.add_argument("runs", nargs="*", help="run files of one commit, machine and profile")
    p.add_argument("--processes", help="a saved medians file (--save output) instead of run files")
    p.add_argument("--save", help="write the run medians to this new file (for tests/data)")
    p.add_argument("--slow", default="", help="glob on benchmark fullname or group to slow by 10%% (detection)")
    p.add_argument("--jobs", type=int, default=1000, help="resampled jobs per design (default 1000)")
    p.add_argument("--pairs", type=int, default=5, help="worker pairs per paired job (default 5)")
    p.add_argument("--window", type=int, default=8, help="base runs per unpaired job (default 8)")
    p.add_argument("--new", type=int, default=1, help="new runs per unpaired job (default 1)")
    p.add_argument("--table", metavar="FILE", help="also write the docs' table (designs x alpha x guard) to FILE")
    p.add_argument("--no-guard", action="store_true",
                   help="drop the 'every process agrees' condition, to measure what it buys")
    p.add_argument("--include-disturbed", action="store_true",
                   help="accept runs that are disturbed or have no load record (refused by default)")
    _judge_options(p, fmt=False)

    p = sub.add_parser("noise-study", help="A/A jobs per pair design and time per turn: where ab's noise is",
                       description="Real A/A worker pairs of the working tree's code on representative benchmarks, "
                       "per design (alternate, duet) and seconds per turn; the spread of log(B/A) between pairs "
                       "and the MDE and gateable count for jobs of 3-12 pairs (benchruns/studies/noisestudy.py).")
    p.add_argument("--designs", default="interleave", help="comma-separated: interleave, alternate, duet")
    p.add_argument("--turn-times", default="0.03,0.1,0.3,1", help="alternate/duet: comma-separated seconds per turn")
    p.add_argument("--round-times", default="0.0005,0.001,0.005",
                   help="interleave: comma-separated seconds per round (default 0.0005,0.001,0.005)")
    p.add_argument("--threads", default="1,2", help="interleave: comma-separated thread counts (default 1,2)")
    p.add_argument("--interleave-time", type=float, default=None,
                   help="interleave: seconds of rounds per side and benchmark (default: ab's)")
    p.add_argument("--pairs", type=int, default=6, help="worker pairs per config (default 6)")
    p.add_argument("-k", dest="k", default=None, help="pytest -k expression (default: the study's representative set)")
    p.add_argument("--python", default=sys.executable, help="interpreter for both sides")
    p.add_argument("--out", default="docs/data/noise_study_record.json", help="the raw record (a new file)")
    p.add_argument("--tables", metavar="RECORD", action="append",
                   help="analyse existing records instead of measuring (repeat: their configs side by side)")
    p.add_argument("--m-job", type=int, default=100, help="benchmarks in the job the MDE is for (default 100)")
    p.add_argument("--docs-prefix", help="write the docs' tables as PREFIX_summary.json and PREFIX_benchmarks.json")
    _judge_options(p, fmt=False)

    p = sub.add_parser("ab-jobs", help="the docs' table of real ab jobs from their --record files",
                       description="One row per `ab --record` file: verdict, flags, gateable count, median MDE, "
                       "pairs and wall time, as a docs data table (benchruns/studies/abjobs.py).")
    p.add_argument("records", nargs="+", metavar="LABEL=FILE", help="a job's label and its record file")
    p.add_argument("--out", required=True, help="the table file to write (docs/data/...)")
    p.add_argument("--source", help="what measured it (the command), for the table's caption")
    p.add_argument("--per-benchmark", action="store_true", help="one job's verdict per benchmark instead")
    p.add_argument("--time-split", action="store_true",
                   help="instead: where a pair's wall time goes (start-up, single-round tests, set-ups, rounds)")

    p = sub.add_parser("ab-aa", help="false alarms and MDEs of ab from the real pairs of kept A/A jobs",
                       description="Every set of P worker pairs of an A/A job kept with `make ab ARGS=--keep=FOLDER` "
                       "judged as one job, with the robust per-stratum variance prior and the earlier moment fit: "
                       "the share of such jobs that flag anything, the share of benchmarks gateable at their "
                       "threshold, and the median MDE (benchruns/studies/abjobs.py).")
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="a kept A/A job (A0.json, B0.json, ...)")
    p.add_argument("--pairs", default="3,4", help="pairs per judged job, comma-separated (default 3,4)")
    p.add_argument("--out", help="write the docs' table here (a new file, or --force)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--source", help="what measured it (the command), for the table's caption")
    p.add_argument("--by-iterations", action="store_true",
                   help="instead: how far B/A lands in pairs whose sides timed rounds of the same or different "
                   "iterations")
    p.add_argument("--by-test", action="store_true",
                   help="instead: per test function (first calls, steady-state steps, ...) how ab measured it, its "
                   "spread between pairs, its MDE and gateable share in sub-jobs of --pairs N pairs")
    p.add_argument("--test", action="append", metavar="NAME",
                   help="with --by-test: only this test function's rows (repeatable)")
    _judge_options(p, fmt=False)

    sub.add_parser("report", help="verdicts on the usual TF-vs-PyTorch claims (benchruns/report.py)", add_help=False)
    sub.add_parser("publish", help="commit new runs to the results branch and push (benchruns/publish.py)",
                   add_help=False)
    sub.add_parser("fleet", help="the report's verdicts per machine side by side, and the comparisons that change "
                   "sides (benchruns/fleet.py)", add_help=False)
    sub.add_parser("docs", help="rewrite the generated figure tables of README.md and docs/ from named run files "
                   "(benchruns/studies/docs/; --check: exit 1 with a diff when one is stale)", add_help=False)
    return parser


def _load_sides(args):
    from .runs import check_same_machine, check_same_profile, select_runs

    notes: list[str] = []
    base, cand = select_runs(args.base, args.cand, args.results_dir, args.machine, args.lookback, notes,
                             include_disturbed=args.include_disturbed)
    check_same_profile(base + cand)
    for run in base:
        warning = check_same_machine(run, cand[-1], args.allow_different_machines)
        if warning and warning not in notes:
            notes.append(warning)
    return base, cand, notes


def _build(args):
    from . import compare

    thresholds = _thresholds(args)
    base, cand, notes = _load_sides(args)
    if not base:
        return None, notes + [f"note: no earlier {cand[-1].profile} run of this machine to compare "
                              f"{cand[-1].label} with; run the suite again (3 runs make a baseline)"]
    cmp = compare.build(base, cand, thresholds, args.alpha, normalise=args.normalise)
    return cmp, notes + cmp.notes


def _thresholds(args):
    from .config import load_thresholds

    return load_thresholds(args.threshold, args.config, not args.no_config)


def cmd_compare(args) -> int:
    from . import compare

    cmp, notes = _build(args)
    for note in notes:
        print(note, file=sys.stderr)
    if cmp is None:
        return 2 if args.strict else 0
    print(compare.render(cmp, args.format))
    return 0


def cmd_gate(args) -> int:
    from . import gate

    cmp, notes = _build(args)
    for note in notes:
        print(note, file=sys.stderr)
    if cmp is None:
        print("gate NOT DECIDED: no baseline runs" + (" (--strict: exit 2)" if args.strict else ""))
        return 2 if args.strict else 0
    text, code = gate.report(cmp, args.format, args.strict)
    print(text)
    return code


def cmd_diff(args) -> int:
    from . import diff
    from .runs import load_run

    a, b = load_run(args.a), load_run(args.b)
    print(diff.render(diff.build(a, b), args.format))
    return 0


def cmd_baseline(args) -> int:
    from . import storage
    from .runs import load_run, machine_folder, saved_runs

    if args.run:
        load_run(args.run)
        path = Path(args.run)
        folder = path.parent
        if folder.resolve().parent != Path(args.results_dir).resolve():
            raise BadInput(f"{args.run}: not a saved run under {args.results_dir}/<machine-key>/; a baseline must be one")
    else:
        folder = machine_folder(args.results_dir, args.machine)
        path = saved_runs(folder)[-1]
        load_run(path)
    storage.write_baseline(folder, path)
    print(f"baseline for {folder.name}: {path.name}")
    return 0


def cmd_history(args) -> int:
    from . import history

    return history.main(args)


def cmd_ab(args) -> int:
    from . import ab

    return ab.main(args)


def cmd_error_rates(args) -> int:
    from .studies import errorrates

    if not args.runs and not args.processes:
        raise BadInput("no runs: pass run files of one commit (e.g. results/<key>/*_<commit>.json) or --processes FILE")
    return errorrates.main(args)


def cmd_report(argv) -> int:
    from . import report

    return int(report.main(argv) or 0)


def cmd_ab_jobs(args) -> int:
    from .studies import abjobs

    return abjobs.main(args)


def cmd_ab_aa(args) -> int:
    from .studies import abjobs

    return abjobs.main_aa(args)


def cmd_noise_study(args) -> int:
    from .studies import noisestudy

    if args.k is None:
        args.k = noisestudy.INTERLEAVE_K
    return noisestudy.main(args)


COMMANDS = {
    "compare": cmd_compare,
    "gate": cmd_gate,
    "diff": cmd_diff,
    "baseline": cmd_baseline,
    "history": cmd_history,
    "ab": cmd_ab,
    "error-rates": cmd_error_rates,
    "noise-study": cmd_noise_study,
    "ab-jobs": cmd_ab_jobs,
    "ab-aa": cmd_ab_aa,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        # report.py owns its options; it gets everything after the word "report"
        return cmd_report(argv[1:])
    if argv and argv[0] == "fleet":
        # fleet.py owns its options too
        from . import fleet

        return int(fleet.main(argv[1:]) or 0)
    if argv and argv[0] == "publish":
        # publish.py owns its options
        from . import publish

        return publish.main(argv[1:])
    if argv and argv[0] == "docs":
        # studies/docs owns its options too
        from .studies import docs

        return int(docs.main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BadInput as exc:
        print(f"benchruns {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"benchruns {args.command}: interrupted", file=sys.stderr)
        return 130
