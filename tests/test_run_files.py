"""Run files as the results branch stores them (.json.gz) and broken files among many.

Every command reads ``.json`` and ``.json.gz`` alike; a broken or foreign file found by
listing a results folder is skipped with its name and reason (one line on stderr) and the
rest is used (history, compare/gate windows, report); a file a command was asked to judge
by name must be good (one line, exit 2).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from benchruns import storage
from benchruns.runs import load_run
from tests.invoke import benchruns

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
RUN_A, RUN_B = DATA / "run_a.json", DATA / "run_b.json"
KEY = "demo-cpu-0000aaaa"


def cli(*args):
    return benchruns(*args)  # in this process (tests/invoke.py)


def gz(path: Path, target: Path) -> Path:
    target.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    return target


def jittered(i: int) -> dict:
    doc = json.loads(RUN_A.read_text())
    rng = np.random.default_rng(i)
    doc["commit_info"]["id"] = f"{i:07x}" * 6
    for bench in doc["benchmarks"]:
        factor = float(rng.lognormal(0, 0.01))
        st = bench["stats"]
        st["data"] = [t * factor for t in st["data"]]
        for k in ("min", "max", "mean", "median", "q1", "q3"):
            st[k] *= factor
    return doc


def folder_of_runs(tmp_path: Path, n: int, gzipped=()) -> Path:
    """results/<KEY>/ with ``n`` runs of different commits, those in ``gzipped`` stored as .json.gz."""
    folder = tmp_path / "results" / KEY
    folder.mkdir(parents=True)
    for i in range(n):
        data = json.dumps(jittered(i)).encode()
        name = f"202601{i + 1:02d}T000000Z_{i:07x}.json"
        if i in gzipped:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / name).write_bytes(data)
    return folder


def one_line_exit_2(result, *words):
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


# --- .json.gz reads as .json ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_gzipped_run_gives_the_same_diff_as_its_json(tmp_path, fmt):
    a, b = gz(RUN_A, tmp_path / "a.json.gz"), gz(RUN_B, tmp_path / "b.json.gz")
    plain = cli("diff", RUN_A, RUN_B, f"--format={fmt}")
    packed = cli("diff", a, b, f"--format={fmt}")
    assert plain.returncode == packed.returncode == 0, packed.stderr
    assert packed.stdout.replace(str(a), str(RUN_A)).replace(str(b), str(RUN_B)) == plain.stdout
    assert "median changes" in plain.stdout or '"medians"' in plain.stdout


def test_listing_takes_both_forms_once_in_order_and_the_baseline_follows(tmp_path):
    folder = folder_of_runs(tmp_path, 4, gzipped=(0, 2))
    (folder / "20260102T000000Z_0000001.json.gz").write_bytes(  # the same run stored both ways
        gzip.compress((folder / "20260102T000000Z_0000001.json").read_bytes(), mtime=0))
    (folder / "notes.txt").write_text("not a run")
    listed = [p.name for p in storage.list_runs(folder)]
    assert listed == ["20260101T000000Z_0000000.json.gz", "20260102T000000Z_0000001.json",
                      "20260103T000000Z_0000002.json.gz", "20260104T000000Z_0000003.json"]
    (folder / storage.BASELINE).write_text("20260101T000000Z_0000000.json\n")  # named before it was gzipped
    assert storage.read_baseline(folder).name == "20260101T000000Z_0000000.json.gz"
    assert load_run(folder / listed[0]).benchmarks.keys() == load_run(folder / listed[1]).benchmarks.keys()


def test_the_gate_window_mixes_gzipped_and_plain_runs(tmp_path):
    folder_of_runs(tmp_path, 5, gzipped=(0, 1, 2))
    result = cli("compare", "--results-dir", tmp_path / "results", "--machine", KEY, "--format=json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [Path(p).name for p in doc["base"]] == [f"202601{i + 1:02d}T000000Z_{i:07x}.json" + (".gz" if i < 3 else "")
                                                   for i in range(4)]


# --- a broken file among many -----------------------------------------------------------------


@pytest.mark.parametrize("broken", ["truncated-json", "truncated-gz", "foreign", "not-gzip"])
def test_compare_and_gate_skip_a_broken_listed_file_and_use_the_rest(tmp_path, broken):
    folder = folder_of_runs(tmp_path, 5)
    name, data = {
        "truncated-json": ("20260102T120000Z_ffffff1.json", RUN_A.read_bytes()[:3000]),
        "truncated-gz": ("20260102T120000Z_ffffff1.json.gz", gzip.compress(RUN_A.read_bytes())[:400]),
        "foreign": ("20260102T120000Z_ffffff1.json", json.dumps({"hello": "world"}).encode()),
        "not-gzip": ("20260102T120000Z_ffffff1.json.gz", b"plain text, not gzip"),
    }[broken]
    (folder / name).write_bytes(data)
    why = {"truncated-json": "truncated JSON", "truncated-gz": "truncated gzip", "foreign": "not a pytest-benchmark run",
           "not-gzip": "not a gzip file"}[broken]
    for command in ("compare", "gate"):
        result = cli(command, "--results-dir", tmp_path / "results", "--machine", KEY, "--format=json")
        assert result.returncode == 0, result.stderr
        skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
        assert len(skipped) == 1 and name in skipped[0] and why in skipped[0], result.stderr
        assert len(json.loads(result.stdout)["base"]) == 4
    # the broken file named as a side to judge is refused, in one line
    one_line_exit_2(cli("gate", "--base", folder / "20260101T000000Z_0000000.json", "--cand", folder / name), name, why)


def test_a_broken_newest_file_is_skipped_and_the_newest_good_run_is_the_candidate(tmp_path):
    folder = folder_of_runs(tmp_path, 5)
    (folder / "20260201T000000Z_fffffff.json.gz").write_bytes(gzip.compress(RUN_A.read_bytes())[:500])
    result = cli("compare", "--results-dir", tmp_path / "results", "--machine", KEY, "--format=json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cand"][0].endswith("20260105T000000Z_0000004.json")
    assert "skipped" in result.stderr and "20260201T000000Z_fffffff.json.gz" in result.stderr


def test_a_folder_of_only_broken_files_is_one_line(tmp_path):
    folder = tmp_path / "results" / KEY
    folder.mkdir(parents=True)
    (folder / "20260101T000000Z_0000000.json").write_bytes(RUN_A.read_bytes()[:1000])
    one_line_exit_2(cli("gate", "--results-dir", tmp_path / "results", "--machine", KEY), "no readable run", "truncated")


def test_history_skips_a_broken_file_and_draws_the_rest(tmp_path):
    folder = folder_of_runs(tmp_path, 4, gzipped=(1,))
    (folder / "20260103T120000Z_ffffff1.json").write_bytes(RUN_A.read_bytes()[:2000])
    result = cli("history", "--results-dir", tmp_path / "results", "--out", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 1 and "20260103T120000Z_ffffff1.json: truncated JSON" in skipped[0], result.stderr
    assert "4 runs of 1 machine(s)" in result.stdout and (tmp_path / "site" / "index.html").is_file()


def test_diff_refuses_a_broken_gzipped_file_in_one_line(tmp_path):
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(gzip.compress(RUN_B.read_bytes())[:300])
    one_line_exit_2(cli("diff", RUN_A, cut), "cut.json.gz", "truncated gzip")


def test_report_skips_a_broken_newest_file(tmp_path):
    folder = tmp_path / "results" / "amd-epyc-2c-cpu-480e5c54"
    folder.mkdir(parents=True)
    gz(DATA / "report_quick.json", folder / "20260101T000000Z_0000000.json.gz")
    (folder / "20260102T000000Z_1111111.json").write_text('{"machine_info": {}, "benchmarks": [')
    result = cli("report", "--results-dir", tmp_path / "results", "--machine", folder.name, "--out", tmp_path / "r")
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stderr and "20260102T000000Z_1111111.json: truncated JSON" in result.stderr
    assert "20260101T000000Z_0000000.json.gz" in (tmp_path / "r" / "report.md").read_text()
