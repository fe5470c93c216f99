"""Synthetic histories from a real run, to measure the history site's build time and size.

``python -m benchruns.history.synth RUN OUT --runs 100`` writes OUT/<machine-key>/ with
``--runs`` copies of the real run file RUN (raw rounds included, so each file is as large
and as slow to read as a real one), one per made-up commit, every median (and its rounds)
scaled by a lognormal run-to-run factor (sigma ``--spread``), and ``--stepped`` of the
benchmarks 10% slower from run 70% of the way on. Nothing here is a measurement: it is load
for ``python -m benchruns history --results-dir OUT``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np

SCALED = ("min", "max", "mean", "median", "q1", "q3", "iqr", "stddev", "ld15iqr", "hd15iqr")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchruns.history.synth", description=__doc__)
    p.add_argument("run")
    p.add_argument("out")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--spread", type=float, default=0.05)
    p.add_argument("--stepped", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=13)
    args = p.parse_args(argv)
    doc = json.loads(Path(args.run).read_text(encoding="utf-8"))
    key = doc["machine_info"].get("machine_key", "synthetic")
    folder = Path(args.out) / key
    folder.mkdir(parents=True, exist_ok=False)
    rng = np.random.default_rng(args.seed)
    names = [b["fullname"] for b in doc["benchmarks"]]
    stepped = set(rng.choice(names, size=int(len(names) * args.stepped), replace=False))
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    originals = [(dict(b["stats"]), list(b["stats"].get("data") or [])) for b in doc["benchmarks"]]
    for i in range(args.runs):
        commit = f"{i:07x}"
        doc["commit_info"] = {"id": commit + "0" * 33, "dirty": False}
        for b, (stats, data) in zip(doc["benchmarks"], originals):
            f = float(np.exp(rng.normal(0, args.spread)))
            if b["fullname"] in stepped and i >= int(args.runs * 0.7):
                f *= 1.10
            b["stats"] = {k: (v * f if k in SCALED and isinstance(v, (int, float)) else v) for k, v in stats.items()}
            if data:
                b["stats"]["data"] = [x * f for x in data]
        stamp = (start + dt.timedelta(days=i)).strftime("%Y%m%dT%H%M%SZ")
        (folder / f"{stamp}_{commit}.json").write_text(json.dumps(doc), encoding="utf-8")
    print(f"{args.runs} runs of {len(names)} benchmarks in {folder} ({len(stepped)} stepped +10% at run "
          f"{int(args.runs * 0.7)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
