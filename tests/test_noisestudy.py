"""noise-study's analysis: spread of log(B/A) between undisturbed pairs, MDE and gateable counts.

The measuring half is ab.execute (tested in test_benchruns_ab.py on real worker pairs);
here a recorded study of known spread checks the arithmetic and the bad-input paths.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchruns.studies import noisestudy
from benchruns.config import Thresholds
from tests.invoke import benchruns

ROOT = Path(__file__).resolve().parent.parent
QUIET = {"schema": 1, "available": True, "other_cores": 0.01, "steal_cores": 0.0, "disturbed": False, "why": ""}
BUSY = {"schema": 1, "available": True, "other_cores": 1.0, "steal_cores": 0.0, "disturbed": True,
        "why": "other processes used 1.00 of a core"}


def record(spreads: dict[tuple[str, float], float], pairs=6, benches=10, seed=1, busy_pair=None) -> dict:
    rng = np.random.default_rng(seed)
    configs = []
    for (design, turn), sd in spreads.items():
        config = {"design": design, "turn_time": turn, "wall_s": 60.0 * pairs, "pairs": []}
        for p in range(pairs):
            disturbed = busy_pair == (design, turn, p)
            medians = {}
            for b in range(benches):
                a = 1e-4 * (b + 1)
                factor = np.exp(rng.normal(0, sd)) * (2.0 if disturbed else 1.0)
                medians[f"benches/test_x.py::test_{b}"] = [a, a * factor]
            config["pairs"].append({"load": BUSY if disturbed else QUIET, "threads": 2, "medians": medians,
                                    "groups": {n: "graph/x" for n in medians}, "turns": 2 * benches})
        configs.append(config)
    return {"k": "x", "pairs": pairs, "commit": "abc1234", "dirty": False, "python": "python", "date": "d",
            "cpu": "Crafted CPU", "cores": 2, "platform": "p", "configs": configs}


def test_tighter_pairs_gate_more_benchmarks_and_more_pairs_help():
    rec = record({("alternate", 0.03): 0.08, ("duet", 0.3): 0.01})
    loose, tight = noisestudy.analyse(rec, m_job=100, thresholds=Thresholds(0.10))
    assert 0.05 < loose["median_sd"] < 0.12 and tight["median_sd"] < 0.02
    assert tight["gateable"][6] == 10 and loose["gateable"][6] < 10
    for c in (loose, tight):
        assert np.all(np.asarray(c["mde"][3]) >= np.asarray(c["mde"][12]))
        assert c["gateable"][3] <= c["gateable"][6] <= c["gateable"][12]


def test_disturbed_pairs_are_left_out():
    rec = record({("alternate", 0.1): 0.01}, busy_pair=("alternate", 0.1, 2))
    [c] = noisestudy.analyse(rec, m_job=100, thresholds=Thresholds(0.10))
    assert c["pairs_used"] == 5 and c["pairs_disturbed"] == 1
    assert c["median_sd"] < 0.02  # the doubled pair would have made it ~0.3
    tables = noisestudy.tables([rec], [c], "`test`")
    assert tables["summary"]["load"] == "disturbed"  # the record held a disturbed pair: the docs refuse it


def test_tables_for_the_docs(tmp_path):
    rec = record({("alternate", 0.03): 0.05, ("duet", 1.0): 0.01})
    path = tmp_path / "rec.json"
    path.write_text(json.dumps(rec))
    proc = subprocess.run([sys.executable, "-m", "benchruns", "noise-study", "--tables", str(path),
                           "--docs-prefix", str(tmp_path / "t")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "duet" in proc.stdout and "gateable at threshold with 4/6/8 pairs" in proc.stdout
    summary = json.loads((tmp_path / "t_summary.json").read_text())
    assert summary["load"] == "undisturbed" and summary["commit"] == "abc1234"
    assert len(summary["rows"]) == 2 and all(len(r) == len(summary["columns"]) for r in summary["rows"])
    per_bench = json.loads((tmp_path / "t_benchmarks.json").read_text())
    assert len(per_bench["rows"]) == 10


def test_two_records_side_by_side_and_interleave_configs_labelled(tmp_path):
    old = record({("alternate", 0.1): 0.15})
    new = record({("interleave", 0.25): 0.02}, seed=2)
    new["commit"] = "def5678"
    new["configs"][0].update(round_time=0.001, threads=1)
    paths = []
    for name, rec in (("old", old), ("new", new)):
        paths += ["--tables", str(tmp_path / f"{name}.json")]
        (tmp_path / f"{name}.json").write_text(json.dumps(rec))
    proc = subprocess.run([sys.executable, "-m", "benchruns", "noise-study", *paths, "--docs-prefix", str(tmp_path / "t")],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "t_summary.json").read_text())
    labels = [row[0] for row in summary["rows"]]
    assert labels == ["alternate 0.1 s per turn", "interleave 1 ms rounds, 1 thread(s), 0.25 s per side"]
    assert [row[2] for row in summary["rows"]] == ["abc1234", "def5678"]
    assert [row[1] for row in summary["rows"]] == ["Crafted", "Crafted"]  # vendor and family, as a column shows it
    assert summary["commit"] == "abc1234, def5678"
    sds = [float(row[5].rstrip("%")) for row in summary["rows"]]
    assert sds[0] > 5 * sds[1]


def test_grid_of_configs():
    configs = noisestudy.grid(["interleave", "alternate"], [0.1], [0.0005, 0.005], [1, 2])
    assert [(c["design"], c["round_time"], c["threads"]) for c in configs] == [
        ("interleave", 0.0005, 1), ("interleave", 0.005, 1), ("interleave", 0.0005, 2), ("interleave", 0.005, 2),
        ("alternate", None, None)]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    for args, word in ((["--designs", "sideways"], "--designs"), (["--turn-times", "fast"], "--turn-times"),
                       (["--turn-times", "0"], "--turn-times"), (["--pairs", "2"], "--pairs"),
                       (["--round-times", "2"], "--round-times"), (["--threads", "0"], "--threads"),
                       (["--tables", str(tmp_path / "x.json")], "not a noise-study record"),
                       (["--tables", str(tmp_path / "missing.json")], "not a noise-study record"),
                       (["--out", str(tmp_path / "x.json")], "exists")):
        # in this process but the first (tests/invoke.py: a fresh interpreter is 0.9 s of imports a call)
        proc = benchruns("noise-study", *args, process=args[0] == "--designs")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and word in lines[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr
