"""branchgrowth: the results branch's growth, from the sizes of committed runs (benchruns/studies/branchgrowth.py).

Checked in a scratch git checkout: only committed, undisturbed runs are measured, the stored
size is what publish writes, the yearly figure follows the cadence, the table reads back
through the docs' own reader, and bad input is one line with nothing written.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from benchruns.publish import compress
from benchruns.studies import branchgrowth, figures
from benchruns.studies.docs.data import read_data

RUN_A = Path(__file__).parent / "data" / "run_a.json"
QUIET = {"schema": 1, "available": True, "threshold_cores": 0.1, "windows": 1, "benchmarks_s": 9.0,
         "own_cores": 1.0, "other_cores": 0.02, "steal_cores": 0.0, "disturbed": False, "why": "",
         "busiest_others": []}
BUSY = dict(QUIET, other_cores=0.9, disturbed=True, why="other processes used 0.90 of a core (limit 0.10)")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def run_bytes(i: int, profile: str, load=QUIET) -> bytes:
    doc = json.loads(RUN_A.read_text())
    doc["machine_info"].update(profile=profile, machine_key="demo-2c-cpu-00000000", cpu_model="Demo CPU",
                               cpu_count=2)
    doc["commit_info"]["id"] = f"{i:07x}" * 6
    doc["load"] = load
    doc["benchmarks"] = doc["benchmarks"] * (1 + i % 3)  # sizes that differ
    return json.dumps(doc).encode()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    folder = root / "results" / "demo-2c-cpu-00000000"
    folder.mkdir(parents=True)
    git(root, "init", "-q")
    for i in range(5):
        (folder / f"2026010{i + 1}T000000Z_{i:07x}.json").write_bytes(run_bytes(i, "quick"))
    (folder / "20260107T000000Z_0000007.json.gz").write_bytes(compress(run_bytes(7, "full")))
    (folder / "20260108T000000Z_0000008.json").write_bytes(run_bytes(8, "quick", load=BUSY))  # left out
    git(root, "add", "results")
    git(root, "commit", "-q", "-m", "runs")
    (folder / "20260109T000000Z_0000009.json").write_bytes(run_bytes(9, "quick"))  # not committed: left out
    monkeypatch.setattr(figures, "ROOT", root)
    return root


def test_measures_committed_undisturbed_runs_as_publish_stores_them(repo, capsys):
    assert branchgrowth.main(["--out", "docs/data/growth.json"]) == 0
    path = repo / "docs" / "data" / "growth.json"
    meta, columns, rows = read_data(path, "test", repo)
    quick = [run_bytes(i, "quick") for i in range(5)]
    stored = sorted(len(compress(b)) for b in quick)[2]
    assert meta["medians"]["quick"] == {"runs": 5, "json_bytes": sorted(len(b) for b in quick)[2],
                                        "stored_bytes": stored}
    assert meta["medians"]["full"]["stored_bytes"] == len(compress(run_bytes(7, "full")))
    assert meta["load"] == "undisturbed" and meta["commit"] == git(repo, "rev-parse", "--short=7", "HEAD")
    assert "Demo CPU, 2 cores" in meta["machine"]
    year = [r for r in rows if "per year at 3 quick runs a night (1095 runs)" in r[0]]
    assert len(year) == 1 and branchgrowth._size(1095 * stored) in year[0][1]
    assert 0 < meta["pack_bytes_per_run"] < 3 * stored  # git keeps about what it was given
    assert any("one full run a week" in r[0] for r in rows)
    assert "1 full, 5 quick" in meta["title"]


def test_the_cadence_scales_the_year(repo):
    assert branchgrowth.main(["--nightly", "1", "--out", "docs/data/growth.json"]) == 0
    meta, _, rows = read_data(repo / "docs" / "data" / "growth.json", "test", repo)
    assert any("(365 runs)" in r[0] for r in rows) and meta["nightly"] == 1


@pytest.mark.parametrize("case", ["dirty", "no-quick", "nightly", "absolute"])
def test_bad_input_is_one_line_and_writes_nothing(repo, capsys, case):
    args = ["--out", "docs/data/growth.json"]
    if case == "dirty":
        next((repo / "results").rglob("*.json")).write_text("changed")
    elif case == "no-quick":
        args += ["--results-dir", "elsewhere"]
    elif case == "nightly":
        args += ["--nightly", "0"]
    else:
        args += ["--results-dir", str(repo / "results")]
    assert branchgrowth.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("benchruns branchgrowth: ")
    assert not (repo / "docs").exists()


def test_gzip_is_deterministic():
    data = run_bytes(1, "quick")
    assert compress(data) == compress(data) and gzip.decompress(compress(data)) == data
    assert compress(data)[4:8] == b"\0\0\0\0"
