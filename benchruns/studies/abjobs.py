"""ab-jobs: the docs' table of real `make ab` jobs, from the records that `ab --record` wrote.

One row per job: what it compared, its verdict, what it flagged, how many benchmarks were
gateable at their threshold (MDE at most the threshold) with the median MDE, the pairs it
judged (and how many were disturbed and replaced), and its wall time. A job with a
disturbed pair among those judged, or a record that is not an ab record, is refused.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from ..durations import minutes_text
from ..runs import BadInput


def read(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: not an ab record ({exc})") from None
    if not isinstance(doc, dict) or "verdict" not in doc or "loads" not in doc:
        raise BadInput(f"{path}: not an ab record (written by `python -m benchruns ab --record FILE`)")
    return doc


def design_text(r: dict) -> str:
    """How the job ran: interleaved rounds (round time, time per side, threads) or turns."""
    if r["design"] == "interleave":
        threads = r.get("threads") or "the suite's"
        lanes = r.get("lanes", 1)  # records before --lanes ran one pair at a time
        calls = r.get("calls")  # records before --calls ran a first call's calls as the test asked (3)
        return (f"interleave, {1e3 * (r.get('round_time') or 0):g} ms rounds, {r['turn_time']:g} s/side, "
                f"{threads} thread(s)" + (f", {lanes} pairs at once" if lanes > 1 else "")
                + (f", first calls {calls} a side" if calls else ""))
    return f"{r['design']}, {r['turn_time']:g} s/turn"


def steady_mde(r: dict) -> str:
    """The median MDE of the steady-state graph benchmarks (test_steady_state), the gate's main diet."""
    mdes = [mde for name, (_, mde, _) in r.get("ratios", {}).items() if "test_steady_state" in name]
    if not mdes:
        return "-"
    if any(m is None for m in mdes):
        return "inf"
    mdes.sort()
    mid = len(mdes) // 2
    median = mdes[mid] if len(mdes) % 2 else (mdes[mid - 1] + mdes[mid]) / 2
    return f"{100 * median:.1f}%"


def table(records: list[tuple[str, dict]], source: str) -> dict:
    commits = sorted({r["commit"] for _, r in records})
    machine = records[0][1].get("machine", {})
    # the verdicts rest on undisturbed pairs unless a job was told to judge disturbed ones too
    quiet = all(not r.get("included_disturbed") or r["disturbed_pairs"] == 0 for _, r in records)
    rows = []
    for label, r in records:
        flagged = ", ".join(r["flagged"][:4]) + (f" and {len(r['flagged']) - 4} more" if len(r["flagged"]) > 4 else "")
        mde = r.get("median_mde")
        rows.append([label, design_text(r), r["verdict"], flagged or "none",
                     f"{r['gateable']} of {r['benchmarks']}", "inf" if mde is None else f"{100 * mde:.0f}%",
                     steady_mde(r),
                     f"{r['pairs']} ({r['disturbed_pairs']} disturbed, left out)",
                     minutes_text(r['wall_s'], 0)])
    return {"source": source,
            "machine": f"{machine.get('cpu_model')}, {machine.get('cpu_count')} cores, {machine.get('threads')} threads",
            "commit": ", ".join(commits), "load": "undisturbed" if quiet else "disturbed",
            "columns": ["job", "design", "verdict", "flagged slower", "gateable at threshold", "median MDE",
                        "median MDE, steady state", "pairs judged", "wall time"],
            "rows": rows}


def per_benchmark(label: str, record: dict, source: str) -> dict:
    """One job's verdict per benchmark: ratio B/A of the geometric means, MDE, verdict."""
    doc = table([(label, record)], source)
    base, cand = record.get("base_versions", {}), record.get("machine", {})
    doc["columns"] = ["benchmark", f"B/A (B: torch {cand.get('torch_version')}, A: torch {base.get('torch_version')})",
                      "MDE", "verdict"]
    doc["rows"] = [[name, f"{ratio:.3f}", "inf" if mde is None else f"{100 * mde:.0f}%", verdict]
                   for name, (ratio, mde, verdict) in sorted(record["ratios"].items())]
    return doc


def time_table(records: list[tuple[str, dict]], source: str) -> dict:
    """Where a pair's wall time goes, per job (the record's ``time_split``: medians over its pairs)."""
    from ..ab import TIME_PARTS

    missing = [label for label, r in records if not r.get("time_split")]
    if missing:
        raise BadInput(f"--time-split: no time split in the record of {', '.join(missing)} (an interleaved job "
                       "recorded since ab kept its pairs' timelines)")
    doc = table(records, source)
    doc["columns"] = ["job", "a pair", *[label for _, label in TIME_PARTS], "costliest tests (median s a pair)"]
    doc["rows"] = [[label, f"{r['time_split']['pair_s']:.0f} s",
                    *[f"{r['time_split'][key]:.0f} s" for key, _ in TIME_PARTS],
                    ", ".join(f"{name} {seconds:.1f}" for name, seconds in r["time_split"]["costliest"])]
                   for label, r in records]
    return doc


def main(args) -> int:
    out = Path(args.out)
    records = []
    for item in args.records:
        label, _, path = item.rpartition("=")
        records.append((label or Path(path).stem, read(Path(path))))
    if not records:
        raise BadInput("no ab records given: pass LABEL=FILE for each job")
    source = args.source or "`python -m benchruns ab --record` jobs"
    if getattr(args, "per_benchmark", False):
        if len(records) != 1:
            raise BadInput("--per-benchmark takes one record")
        doc = per_benchmark(*records[0], source)
    elif getattr(args, "time_split", False):
        doc = time_table(records, source)
    else:
        doc = table(records, source)
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"ab-jobs: {len(records)} job(s) written to {out}")
    return 0


# --- ab-aa: false alarms and MDE from the real pairs of kept A/A jobs ----------------------


def kept_pairs(folder: Path) -> list[tuple]:
    """The worker pairs an ``ab --keep FOLDER`` job left: [(run A_i, run B_i), ...] in pair order
    (A0.json or A0.json.gz, ...; the logs are not needed; ``record.json``, the job's ``--record``, says
    what else used the machine)."""
    from ..runs import load_run

    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"{folder}: no such folder (pass what `make ab ARGS=--keep=FOLDER` wrote)")

    def found(name):  # as ab kept it, or gzipped for docs/data
        return next((p for p in (folder / f"{name}.json", folder / f"{name}.json.gz") if p.is_file()), None)

    pairs = []
    while (a := found(f"A{len(pairs)}")) and (b := found(f"B{len(pairs)}")):
        pairs.append((load_run(a), load_run(b)))
    if len(pairs) < 3:
        raise BadInput(f"{folder}: {len(pairs)} worker pair(s) (A0.json/B0.json ...); need at least 3")
    return pairs


def judged_pairs(folder: Path) -> tuple[list[tuple], int, list]:
    """(pairs, how many left out, their load records): the kept pairs the job itself judged.

    The job's record (``record.json``, written by ``--record``) holds every pair's load, in pair
    order, as the coordinator measured it (the workers' own records see each other). A pair it
    found disturbed was left out of the job's verdict and replaced, so it is left out here too,
    unless the job included disturbed pairs. Without a record nothing is left out, and the load
    is unrecorded."""
    from .. import load as machine_load

    pairs = kept_pairs(folder)
    record = folder / "record.json"
    if not record.is_file():
        return pairs, 0, [None]
    doc = read(record)
    loads = doc.get("loads") or []
    if len(loads) != len(pairs):
        raise BadInput(f"{record}: {len(loads)} load record(s) for {len(pairs)} kept pair(s); "
                       "not this folder's record")
    keep = [i for i, rec in enumerate(loads)
            if doc.get("included_disturbed") or machine_load.status(rec)[0] != "disturbed"]
    if len(keep) < 3:
        raise BadInput(f"{folder}: {len(keep)} undisturbed worker pair(s); need at least 3")
    return [pairs[i] for i in keep], len(pairs) - len(keep), [loads[i] for i in keep]


def kept_kinds(folder: Path) -> dict[str, str] | None:
    """The measurement kinds ab wrote into a kept folder (ab.KINDS_FILE), or None for older folders."""
    from ..ab import KINDS, KINDS_FILE

    path = folder / KINDS_FILE
    if not path.is_file():
        return None
    try:
        kinds = json.loads(path.read_text(encoding="utf-8"))["kinds"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{path}: not ab's kinds file ({exc})") from None
    if not isinstance(kinds, dict) or not all(v in KINDS for v in kinds.values()):
        raise BadInput(f"{path}: not ab's kinds file (kinds must map names to one of: {', '.join(KINDS)})")
    return kinds


def pair_matrix(pairs: list[tuple], known: dict[str, str] | None = None):
    """(names, groups, kinds, log A figures, log B figures): benchmarks every pair ran, rows by name; a
    figure is the run median, or for interleaved calls what ab judges (ab.process_figure).

    Kind, the strata of the verdict's variance prior: as ab judged it (``known``: the kept folder's
    kinds.json, ab.measurement_kinds; interleaved calls of one a side are "one interleaved call", as ab
    tells them apart now), or, for folders kept before ab wrote it, "interleaved" where
    both sides of every pair ran at least ab.MIN_ROUNDS timing rounds, else "per process"
    (single-round cases, first calls); on every folder that has both, the two agree."""
    import numpy as np

    from ..ab import MIN_ROUNDS, call_kind, process_figure

    names = sorted(set.intersection(*(set(a.benchmarks) & set(b.benchmarks) for a, b in pairs)))
    if not names:
        raise BadInput("the kept pairs share no benchmark")
    first = pairs[0][1].benchmarks
    kinds = [(known or {}).get(n) or ("interleaved" if all(min(a.benchmarks[n].rounds, b.benchmarks[n].rounds)
                                                           >= MIN_ROUNDS for a, b in pairs) else "per process")
             for n in names]
    # folders kept before ab told one interleaved call a side (a cold compile) from several: as ab judges now
    kinds = [call_kind(max(max(a.benchmarks[n].rounds, b.benchmarks[n].rounds) for a, b in pairs))
             if k == "interleaved calls" else k for n, k in zip(names, kinds)]
    base = np.log([[process_figure(a.benchmarks[n], k) for a, _ in pairs] for n, k in zip(names, kinds)])
    cand = np.log([[process_figure(b.benchmarks[n], k) for _, b in pairs] for n, k in zip(names, kinds)])
    return names, [first[n].group for n in names], kinds, base, cand


def subjobs(folders: list[Path], sizes: list[int], thresholds, alpha: float, priors=("robust", "moments"),
            max_jobs: int = 2000, seed: int = 20261203) -> dict:
    """Every (or max_jobs random) set of P of a kept A/A job's real pairs judged as one job, per prior rule.

    A pair is a real pair of processes of the job (interleaved as the job ran them); nothing is
    resampled inside a pair. A sub-job fails when anything is flagged slower (or faster: in an A/A
    job either is a false alarm)."""
    import itertools
    import random

    import numpy as np

    from ..stats import judge

    rows, sources, where = [], [], _Provenance()
    for folder in folders:
        pairs, left_out, job_loads = judged_pairs(Path(folder))
        where.add(pairs, job_loads)
        names, groups, kinds, base, cand = pair_matrix(pairs, kept_kinds(Path(folder)))
        limits = np.array([thresholds(g) for g in groups])
        steady = np.array(["test_steady_state" in n for n in names])
        sources.append(f"{Path(folder).name} ({len(pairs)} pairs{f', {left_out} disturbed left out' if left_out else ''}, "
                       f"{len(names)} benchmarks)")
        for size in sizes:
            if size > len(pairs):
                continue
            combos = list(itertools.combinations(range(len(pairs)), size))
            if len(combos) > max_jobs:
                combos = random.Random(seed).sample(combos, max_jobs)
            for prior in priors:
                failed, gateable, mdes, steady_mdes = 0, [], [], []
                for combo in combos:
                    cols = list(combo)
                    tested, _, verdicts = judge(base[:, cols], cand[:, cols], limits, alpha, paired=True,
                                                strata=kinds if prior == "robust" else None, prior=prior)
                    failed += bool(np.any(verdicts != "unchanged"))
                    gateable.append(float(np.mean(tested.mde <= limits)))
                    mdes.append(float(np.median(tested.mde)))
                    steady_mdes.append(float(np.median(tested.mde[steady])) if steady.any() else float("nan"))
                rows.append([Path(folder).name, size, prior, len(combos), f"{100 * failed / len(combos):.1f}%",
                             f"{100 * float(np.median(gateable)):.0f}%", f"{100 * float(np.median(mdes)):.1f}%",
                             _percent_or_dash(steady_mdes)])
    return {"columns": ["kept job", "pairs per job", "variance prior", "jobs", "A/A jobs failing",
                        "gateable at threshold (median job)", "median MDE", "median MDE, steady state"],
            "rows": rows, "kept": sources, **where.fields()}


class _Provenance:
    """Where the kept jobs of one table ran, at which commits, and under what load (the docs' caption fields)."""

    def __init__(self):
        self.machines: set[str] = set()
        self.commits: set[str] = set()
        self.loads: list = []

    def add(self, pairs: list[tuple], loads: list) -> None:
        info = pairs[0][1].machine_info
        self.machines.add(f"{info.get('cpu_model')}, {info.get('cpu_count')} cores")
        self.commits.add((pairs[0][0].commit_info or {}).get("id", "")[:7])
        self.loads += loads

    def fields(self) -> dict:
        """machine, commit and load; the load is "undisturbed" only when every judged pair's record says so."""
        from .. import load as machine_load

        quiet = all(rec is not None and machine_load.status(rec)[0] == "undisturbed" for rec in self.loads)
        return {"machine": "; ".join(sorted(self.machines)), "commit": ", ".join(sorted(self.commits)),
                "load": "undisturbed" if quiet else "disturbed or unrecorded"}


def by_iterations(folders: list[Path]) -> dict:
    """How far B/A lands in pairs whose sides timed rounds of the same or of different iterations.

    Every interleaved benchmark of every judged pair of each kept job is one cell. The spread
    between pairs of one A/A job is what the gate must see through; this splits it by whether
    pytest-benchmark's calibration gave A and B the same iterations per round (ab gives both the
    same since 0fe2016, so newer jobs have only that row)."""
    import numpy as np

    rows, where = [], _Provenance()
    for folder in folders:
        pairs, _, job_loads = judged_pairs(Path(folder))
        where.add(pairs, job_loads)
        names, _, kinds, _, _ = pair_matrix(pairs, kept_kinds(Path(folder)))  # the kinds as ab-aa judges them
        interleaved = [n for n, kind in zip(names, kinds) if kind == "interleaved"]
        offs: dict[bool, list[float]] = {True: [], False: []}
        for a, b in pairs:
            for name in interleaved:
                ra, rb = a.benchmarks[name], b.benchmarks[name]
                offs[ra.iterations == rb.iterations].append(abs(math.log(rb.median / ra.median)))
        for same in (True, False):
            if offs[same]:
                x = np.expm1(np.array(offs[same]))
                rows.append([Path(folder).name, "same" if same else "different", len(x),
                             f"{100 * float(np.median(x)):.1f}%", f"{100 * float(np.mean(x > 0.10)):.1f}%",
                             f"{100 * float(np.max(x)):.0f}%"])
    return {"columns": ["kept job", "iterations per round, A and B", "pair x benchmark cells",
                        "median |B/A - 1|", "beyond 10%", "largest"],
            "rows": rows, **where.fields()}


def by_test(folders: list[Path], size: int, thresholds, alpha: float, only: list[str] | None = None,
            max_jobs: int = 2000, seed: int = 20261203) -> dict:
    """Per kept job and test function (first calls, steady-state steps, ...): how ab measured its
    benchmarks, their spread of log(B/A) between the job's real pairs, and in every (or max_jobs random)
    set of ``size`` pairs judged as one job (robust prior) their median MDE and the share gateable.
    It shows what a change to how one kind of benchmark is measured did, next to the rest of the job.
    ``only``: these test functions' rows (every benchmark is judged either way)."""
    import itertools
    import random

    import numpy as np

    from ..stats import judge

    rows, where = [], _Provenance()
    for folder in folders:
        pairs, _, job_loads = judged_pairs(Path(folder))
        if size > len(pairs):
            raise BadInput(f"{folder}: {len(pairs)} judged pairs, fewer than --pairs {size}")
        where.add(pairs, job_loads)
        names, groups, kinds, base, cand = pair_matrix(pairs, kept_kinds(Path(folder)))
        limits = np.array([thresholds(g) for g in groups])
        combos = list(itertools.combinations(range(len(pairs)), size))
        if len(combos) > max_jobs:
            combos = random.Random(seed).sample(combos, max_jobs)
        mde = np.array([judge(base[:, list(c)], cand[:, list(c)], limits, alpha, paired=True, strata=kinds,
                              prior="robust")[0].mde for c in combos])  # sub-job x benchmark
        spread = np.std(cand - base, axis=1, ddof=1)
        test_of = [n.split("::")[-1].split("[")[0] for n in names]
        missing = sorted(set(only or ()) - set(test_of))
        if missing:
            raise BadInput(f"{folder}: no benchmark of {', '.join(missing)}")
        for test in sorted(set(test_of) & set(only or test_of)):
            mine = np.array([t == test for t in test_of])
            measured = ", ".join(sorted({k for k, m in zip(kinds, mine) if m}))
            gateable = np.median(np.sum(mde[:, mine] <= limits[mine], axis=1))
            rows.append([Path(folder).name, test, measured, int(mine.sum()),
                         f"{100 * float(np.median(np.expm1(spread[mine]))):.1f}%",
                         f"{100 * float(np.median(mde[:, mine])):.1f}%", f"{gateable:g} of {int(mine.sum())}"])
    return {"columns": ["kept job", "test", "measured as", "benchmarks", "sd of log(B/A) between pairs (median)",
                        f"MDE at {size} pairs (median)", f"gateable at {size} pairs (median sub-job)"],
            "rows": rows, **where.fields()}


def main_aa(args) -> int:
    """``ab-aa FOLDER... --pairs 3,4,6``: the table of sub-jobs (false alarms, gateable share, MDEs)."""
    from ..config import load_thresholds

    thresholds = load_thresholds(args.threshold, args.config, not args.no_config)
    try:
        sizes = sorted({int(x) for x in args.pairs.split(",")})
    except ValueError:
        raise BadInput(f"bad --pairs value {args.pairs!r}: comma-separated pair counts, e.g. 3,4,6") from None
    if any(s < 3 for s in sizes):
        raise BadInput(f"bad --pairs value {args.pairs!r}: at least 3 pairs per job (fewer are never judged)")
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.force:  # before the work, not after it
        raise BadInput(f"--out {out}: exists; nothing is overwritten (pass --force to replace a docs table)")
    if getattr(args, "by_iterations", False):
        doc = by_iterations([Path(f) for f in args.folders])
    elif getattr(args, "by_test", False):
        if len(sizes) != 1:
            raise BadInput(f"bad --pairs value {args.pairs!r} with --by-test: one pair count, e.g. 6")
        doc = by_test([Path(f) for f in args.folders], sizes[0], thresholds, args.alpha, args.test)
    else:
        doc = subjobs([Path(f) for f in args.folders], sizes, thresholds, args.alpha)
    doc["source"] = args.source or "`python -m benchruns ab-aa` on kept A/A jobs"
    lines = [" | ".join(map(str, doc["columns"]))] + [" | ".join(map(str, r)) for r in doc["rows"]]
    print("\n".join(lines))
    if out is not None:
        out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return 0


def _percent_or_dash(values: list[float]) -> str:
    """The median in percent; "–" when no job had a steady-state benchmark (all NaN)."""
    finite = [v for v in values if math.isfinite(v)]
    return f"{100 * statistics.median(finite):.1f}%" if finite else "–"
