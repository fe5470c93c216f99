"""history: step detection on synthetic series, and the command on a synthetic results folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchruns.history import detect_steps

ROOT = Path(__file__).resolve().parent.parent


def test_detects_one_step_and_nothing_in_noise():
    rng = np.random.default_rng(3)
    flat = np.exp(rng.normal(0, 0.02, 60))
    assert detect_steps(flat) == []
    stepped = flat * np.where(np.arange(60) >= 35, 1.10, 1.0)
    assert detect_steps(stepped) == [35]


def test_one_outlier_run_is_not_a_step():
    values = np.exp(np.random.default_rng(4).normal(0, 0.02, 40))
    values[20] *= 1.5
    assert detect_steps(values) == []


def make_run(medians: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    benches = []
    for name, median in medians.items():
        data = (median * rng.lognormal(0, 0.01, 20)).tolist()
        q1, med, q3 = np.percentile(data, [25, 50, 75])
        benches.append({"group": "graph/demo/cpu", "name": name, "fullname": f"benches/t.py::{name}", "params": {},
                        "extra_info": {}, "stats": {"median": med, "q1": q1, "q3": q3, "rounds": 20, "data": data}})
    return {"machine_info": {"machine_key": "demo-key"}, "commit_info": {"id": f"{seed:07x}"},
            "benchmarks": benches, "datetime": "", "version": "5.3.1"}


def test_history_command_marks_the_step(tmp_path):
    folder = tmp_path / "results" / "demo-key"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(24):
        medians = {"test_flat": 1e-3 * np.exp(rng.normal(0, 0.01)),
                   "test_step": 2e-3 * np.exp(rng.normal(0, 0.01)) * (1.2 if i >= 16 else 1.0)}
        (folder / f"202601{i + 1:02d}T000000Z_{i:07x}.json").write_text(json.dumps(make_run(medians, i)))
    (folder / "BASELINE").write_text("20260105T000000Z_0000004.json\n")
    out = tmp_path / "hist"
    result = subprocess.run([sys.executable, "-m", "benchruns", "history", "--results-dir", tmp_path / "results",
                             "--machine", "demo-key", "--out", out], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    index = (out / "index.md").read_text()
    step_line = next(line for line in index.splitlines() if "test_step" in line)
    flat_line = next(line for line in index.splitlines() if "test_flat" in line)
    assert "20260117T000000Z_0000010.json (+" in step_line
    assert flat_line.endswith("| none |")
    assert len(list(out.glob("*.png"))) == 2 and (out / "index.html").is_file()


def test_history_bad_input_writes_nothing(tmp_path):
    folder = tmp_path / "results" / "demo-key"
    folder.mkdir(parents=True)
    (folder / "20260101T000000Z_0000000.json").write_text("{ truncated")
    out = tmp_path / "hist"
    result = subprocess.run([sys.executable, "-m", "benchruns", "history", "--results-dir", tmp_path / "results",
                             "--machine", "demo-key", "--out", out], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and not out.exists()
