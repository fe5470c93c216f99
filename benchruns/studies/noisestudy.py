"""Where is `make ab`'s noise, and where should a job spend its time? A/A jobs, measured.

For each pair design (``alternate``: the two workers take turns on all cores; ``duet``:
both run each benchmark at once, each pinned to half of the cores) and each time per
turn (pytest-benchmark's ``--benchmark-max-time``), this runs real A/A worker pairs of
the same code on representative benchmarks of every family, and measures per benchmark
the spread between pairs of log(B/A): the noise a paired verdict has to see through.

From that spread ``s`` it derives the minimum detectable slowdown of a job of n pairs,
as the gate computes it (benchruns/stats.py): exp(ncp * s / sqrt(n)) - 1 with ncp from
the noncentral t at the Bonferroni level alpha/m of a job of m benchmarks, at the
degrees of freedom the moderation gives (n - 1 plus the prior's d0, fitted on the study's
own variances), and s the moderated spread but never below the benchmark's own (the
gate's rule). A benchmark is gateable when that MDE is at most its threshold. The spread
is taken as it was measured with the study's pair count; a job with other n is assumed
to see the same spread per pair.

The record (``--out``) keeps every pair's medians, wall time and load record; a config
with a disturbed pair is rerun like any ab job, and the figures use undisturbed pairs only.
``--tables`` writes the docs' tables from a record without measuring again.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import ab, stats
from .. import load as machine_load
from ..config import load_thresholds
from ..machine import cpu_model
from ..runs import BadInput
from . import figures

# Representative cases of every family that the quick profile times repeatedly: graph modes
# (eager and graph, inference and training), host ingest, pipelines, the idiomatic API level.
# First-call cases (one compile per round) and distributed ones (process start-up) do not
# change with the time per turn and are left out.
STUDY_K = ("(test_steady_state and (torch-eager or tensorflow-function)) or (test_host_ingest and 4MiB) "
           "or (test_dataloader and 0-False-None-True) or (test_tf_data and jpeg) or test_idiomatic_train")
# The interleave study adds cases whose work runs in other processes (DataLoader workers,
# data-parallel workers): what does sharing the pinned core do to them?
INTERLEAVE_K = STUDY_K + " or (test_dataloader and 2-True-2) or (test_train_step and torch-mlp-large-2)"
TURN_TIMES = (0.03, 0.1, 0.3, 1.0)
ROUND_TIMES = (0.0005, 0.001, 0.005)
THREADS = (1, 2)
DESIGNS = ("interleave", "alternate", "duet")
PAIR_COUNTS = (3, 4, 6, 8, 12)


def _commit() -> tuple[str, bool]:
    """(short commit, whether tracked files are modified) of the checkout measured; "nogit" outside git."""
    try:
        sha = figures.commit(Path.cwd(), allow_dirty=True)
    except BadInput:
        return "nogit", False
    return sha.removesuffix("-dirty"), sha.endswith("-dirty")


def grid(designs, turn_times, round_times=(), threads=(), interleave_time: float | None = None) -> list[dict]:
    """The study's configs: alternate/duet x time per turn; interleave x round time x threads."""
    out = []
    for design in designs:
        if design == "interleave":
            for n in threads or (ab.DEFAULT_INTERLEAVE_THREADS,):
                for round_time in round_times or (ab.DEFAULT_ROUND_TIME,):
                    out.append({"design": design, "turn_time": interleave_time or ab.DEFAULT_TURN_TIMES[design],
                                "round_time": round_time, "threads": n})
        else:
            out += [{"design": design, "turn_time": t, "round_time": None, "threads": None} for t in turn_times]
    return out


def label(config: dict) -> str:
    """A config as the tables name it."""
    if config["design"] == "interleave":
        return (f"interleave {config['round_time'] * 1e3:g} ms rounds, {config['threads']} thread(s), "
                f"{config['turn_time']:g} s per side")
    return f"{config['design']} {config['turn_time']:g} s per turn"


def measure(configs: list[dict], pairs: int, k: str, python: str, log=None) -> dict:
    """Run the A/A jobs; return the raw record (medians per pair and side, loads, wall times)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    commit, dirty = _commit()
    record = {"k": k, "pairs": pairs, "commit": commit, "dirty": dirty, "python": python,
              "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)), "platform": platform.platform(),
              "configs": []}
    here = Path.cwd()
    for spec in configs:
        name = label(spec)
        job = ab.plan(spec["design"], spec["turn_time"], spec["round_time"], spec["threads"])
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="benchruns-noise-") as tmp:
            done = ab.execute({"A": (python, here), "B": (python, here)}, pairs, "quick", k, Path(tmp), job=job,
                              log=lambda m, n=name: log(f"[{n}] {m}"))
        config = {**spec, "plan": job.describe(), "wall_s": round(time.monotonic() - started, 1), "pairs": []}
        for pair in done:
            a, b = pair.runs["A"], pair.runs["B"]
            config["pairs"].append({
                "load": pair.load,
                "threads": a.machine_info.get("threads"),
                "medians": {name: [a.benchmarks[name].median, b.benchmarks[name].median]
                            for name in sorted(set(a.benchmarks) & set(b.benchmarks))},
                "groups": {name: a.benchmarks[name].group for name in a.benchmarks},
                "turns": len(pair.turns),
                "interleaved": [it.nodeid for it in pair.interleaved],
                "rounds": {it.nodeid: it.rounds for it in pair.interleaved},
            })
        record["configs"].append(config)
        log(f"noise study: {name}: {len(done)} pairs in {config['wall_s']:.0f} s")
    return record


def analyse(record: dict, m_job: int, thresholds, alpha: float = stats.ALPHA, power: float = stats.POWER) -> list[dict]:
    """Per config: spread of log(B/A) per benchmark over undisturbed pairs, and MDEs for n pairs."""
    out = []
    for config in record["configs"]:
        quiet = [p for p in config["pairs"] if machine_load.status(p["load"])[0] == "undisturbed"]
        names = sorted(set.intersection(*(set(p["medians"]) for p in quiet))) if quiet else []
        d = np.array([[np.log(p["medians"][n][1] / p["medians"][n][0]) for p in quiet] for n in names])
        sd = d.std(axis=1, ddof=1) if len(quiet) > 1 else np.full(len(names), np.nan)
        df = len(quiet) - 1.0
        d0, s0_2 = stats.fit_prior(sd**2, np.full(len(names), df)) if len(names) > 2 else (0.0, 0.0)
        d0 = float(min(d0, 1e3)) if np.isfinite(d0) else 1e3
        # as the gate does: the moderated spread, never below the benchmark's own
        spread = np.maximum(np.sqrt((d0 * s0_2 + df * sd**2) / (d0 + df)), sd) if d0 > 0 else sd
        groups = quiet[0]["groups"] if quiet else {}
        limits = np.array([thresholds(groups.get(n, "")) for n in names])
        mde = {}
        for n in PAIR_COUNTS:
            ncp = stats.detectable_ncp(alpha / m_job, power, n - 1 + d0)
            mde[n] = np.expm1(ncp * spread / np.sqrt(n))
        per_pair_s = config["wall_s"] / max(len(config["pairs"]), 1)
        # the config's undisturbed pairs judged as one real A/A job by the gate's own paired test
        series = [(n, n, groups.get(n, ""), [p["medians"][n][0] for p in quiet], [p["medians"][n][1] for p in quiet])
                  for n in names]
        flagged = ([r.fullname for r in stats.compare_processes(series, thresholds, alpha, paired=True)
                    if r.verdict == "slower"] if len(quiet) >= stats.MIN_RUNS else None)
        out.append({
            "label": label({"round_time": None, "threads": None, **config}), "commit": record.get("commit", ""),
            "machine": short_cpu(record.get("cpu", "")),
            "design": config["design"], "turn_time": config["turn_time"], "pairs_used": len(quiet),
            "pairs_disturbed": len(config["pairs"]) - len(quiet), "pair_s": per_pair_s,
            "benchmarks": names, "sd_log": sd.tolist(), "median_sd": float(np.nanmedian(sd)) if len(sd) else None,
            "d0": d0, "mde": {n: v.tolist() for n, v in mde.items()},
            "gateable": {n: int(np.sum(v <= limits)) for n, v in mde.items()},
            "aa_flagged": flagged,
        })
    return out


def short_cpu(model: str) -> str:
    """The CPU as a column can show it: vendor and family ("AMD EPYC", "Intel Xeon")."""
    words = [w for w in model.replace("(R)", "").replace("(TM)", "").split() if w not in ("Processor", "CPU")]
    return " ".join(words[:2]) or "unknown"


def _pct(x) -> str:
    if x is None or not np.isfinite(x):
        return "n/a" if x is None or np.isnan(x) else "inf"
    return f"{100 * x:.1f}%"


def tables(records: list[dict], analysis: list[dict], source: str) -> dict[str, dict]:
    """The docs' data tables (``table data=`` blocks): one row per config of every record given."""
    every_quiet = all(machine_load.status(p["load"])[0] == "undisturbed"
                      for r in records for c in r["configs"] for p in c["pairs"])
    commits = sorted({r["commit"] + ("-dirty" if r["dirty"] else "") for r in records})
    machines = sorted({f"{r['cpu']}, {r['cores']} cores" for r in records})
    meta = {"source": source, "machine": "; ".join(machines),
            "commit": ", ".join(commits), "load": "undisturbed" if every_quiet else "disturbed"}
    summary = {**meta, "columns": ["design", "machine", "commit", "pairs", "s per pair", "median sd of log(B/A)",
                                   *[f"median MDE, {n} pairs" for n in (4, 12)],
                                   *[f"gateable at threshold, {n} pairs" for n in (4, 12)],
                                   "the pairs as one A/A job: flagged slower"],
               "rows": [[c["label"], c["machine"], c["commit"], str(c["pairs_used"]), f"{c['pair_s']:.0f}",
                         _pct(c["median_sd"]), *[_pct(float(np.median(c["mde"][n]))) for n in (4, 12)],
                         *[f"{c['gateable'][n]} of {len(c['benchmarks'])}" for n in (4, 12)],
                         "-" if c.get("aa_flagged") is None else str(len(c["aa_flagged"]))]
                        for c in analysis]}
    names = sorted({name for c in analysis for name in c["benchmarks"]}, key=lambda n: n.split("::")[-1])
    per_bench = {**meta, "columns": ["benchmark", *[c["label"] for c in analysis]],
                 "rows": [[name.split("::")[-1], *[_pct(c["sd_log"][c["benchmarks"].index(name)])
                                                   if name in c["benchmarks"] else "-" for c in analysis]]
                          for name in names]}
    return {"summary": summary, "benchmarks": per_bench}


def _read_record(path: str) -> dict:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: not a noise-study record ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("configs"), list):
        raise BadInput(f"{path}: not a noise-study record (no 'configs')")
    return record


def _floats(text: str, option: str, low: float, high: float, example: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise BadInput(f"bad {option} value {text!r}: seconds, comma-separated, e.g. {example}") from None
    if not values or any(not low < v <= high for v in values):
        raise BadInput(f"bad {option} value {text!r}: each above {low:g} and at most {high:g}")
    return values


def main(args) -> int:
    thresholds = load_thresholds(args.threshold, args.config, not args.no_config)
    if args.tables:
        records = [_read_record(path) for path in args.tables]
    else:
        designs = [d.strip() for d in args.designs.split(",") if d.strip()]
        bad = [d for d in designs if d not in DESIGNS]
        if bad or not designs:
            raise BadInput(f"bad --designs value {args.designs!r}: choose from {', '.join(DESIGNS)}")
        turn_times = _floats(args.turn_times, "--turn-times", 0, 60, "0.03,0.3")
        round_times = _floats(args.round_times, "--round-times", 0, 1, "0.0005,0.001")
        try:
            threads = [int(t) for t in args.threads.split(",") if t.strip()]
        except ValueError:
            threads = []
        if not threads or min(threads) < 1:
            raise BadInput(f"bad --threads value {args.threads!r}: whole numbers >= 1, comma-separated, e.g. 1,2")
        if args.pairs < 3:
            raise BadInput(f"bad --pairs value {args.pairs}: at least 3")
        out = Path(args.out)
        if out.exists():
            raise BadInput(f"--out {out}: exists; nothing is overwritten, pass a new file")
        configs = grid(designs, turn_times, round_times, threads, args.interleave_time)
        records = [measure(configs, args.pairs, args.k, args.python)]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(records[0], indent=1) + "\n", encoding="utf-8")
        print(f"noise study: record written to {out}", file=sys.stderr)
    analysis = [c for record in records for c in analyse(record, args.m_job, thresholds, args.alpha)]
    for c in analysis:
        print(f"{c['label']:55s} {c['pairs_used']} pairs ({c['pairs_disturbed']} disturbed)  "
              f"{c['pair_s']:5.0f} s/pair  median sd {_pct(c['median_sd'])}  median MDE 4/12 pairs "
              f"{_pct(float(np.median(c['mde'][4])))}/{_pct(float(np.median(c['mde'][12])))}  gateable at "
              "threshold with 4/6/8 pairs: " + "/".join(str(c["gateable"][n]) for n in (4, 6, 8))
              + f" of {len(c['benchmarks'])}")
    if args.docs_prefix:
        given = " ".join(f"--tables {t}" for t in args.tables) if args.tables else f"--tables {args.out}"
        source = f"`python -m benchruns noise-study {given} --m-job {args.m_job}`"
        for name, table in tables(records, analysis, source).items():
            path = Path(f"{args.docs_prefix}_{name}.json")
            path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
            print(f"noise study: table written to {path}", file=sys.stderr)
    return 0
