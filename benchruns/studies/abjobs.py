"""ab-jobs: the docs' table of real `make ab` jobs, from the records that `ab --record` wrote.

One row per job: what it compared, its verdict, what it flagged, how many benchmarks were
gateable at their threshold (MDE at most the threshold) with the median MDE, the pairs it
judged (and how many were disturbed and replaced), and its wall time. A job with a
disturbed pair among those judged, or a record that is not an ab record, is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

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
        return (f"interleave, {1e3 * (r.get('round_time') or 0):g} ms rounds, {r['turn_time']:g} s/side, "
                f"{threads} thread(s)")
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
                     f"{r['pairs']} ({r['disturbed_pairs']} disturbed, replaced)",
                     f"{int(r['wall_s'] // 60)} min {r['wall_s'] % 60:02.0f} s"])
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
    else:
        doc = table(records, source)
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"ab-jobs: {len(records)} job(s) written to {out}")
    return 0
