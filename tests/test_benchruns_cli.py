"""The benchruns command line on recorded run files.

Bad input must exit 2 with one line naming the file and the problem, no traceback, and
nothing written; good input must answer quickly. Most cases call the command's ``main`` in
this process (its exit code, stdout and stderr, as a process would give them; an escaping
exception fails the test as a traceback would): a fresh interpreter per call cost about
0.5 s of imports each, 50 times. The entry point as users run it, ``python -m benchruns``,
is a real process in the tests marked so (``process=True``), and in the timed one
(tests/invoke.py).
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchruns.machine import current_machine_info, machine_key
from tests.invoke import benchruns

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
RUN_A, RUN_B = DATA / "run_a.json", DATA / "run_b.json"


def cli(*args, cwd=ROOT, process=False):
    return benchruns(*args, cwd=cwd, process=process)


def load(path=RUN_A):
    return json.loads(Path(path).read_text())


def write(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc))
    return path


def scaled(doc, factor, only=None):
    out = copy.deepcopy(doc)
    for bench in out["benchmarks"]:
        if only is None or bench["name"] == only:
            st = bench["stats"]
            st["data"] = [t * factor for t in st["data"]]
            for k in ("min", "max", "mean", "median", "q1", "q3", "iqr", "stddev"):
                st[k] *= factor
    return out


def assert_bad(result, *words):
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0], lines[0]


# --- bad input -----------------------------------------------------------------------


def test_missing_path(tmp_path):
    assert_bad(cli("compare", "--base", tmp_path / "nope.json", "--cand", RUN_A, process=True), "nope.json", "no such file")


def test_empty_results_folder(tmp_path):
    assert_bad(cli("compare", "--results-dir", tmp_path), str(tmp_path), "empty")


def test_missing_results_folder(tmp_path):
    assert_bad(cli("gate", "--results-dir", tmp_path / "none"), "no such results folder")


def test_not_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("this is { not json")
    assert_bad(cli("compare", "--base", bad, "--cand", RUN_A), "bad.json", "not JSON")


def test_truncated_json(tmp_path):
    bad = tmp_path / "cut.json"
    bad.write_text(RUN_A.read_text()[:5000])
    assert_bad(cli("gate", "--base", RUN_A, "--cand", bad), "cut.json", "truncated")


@pytest.mark.parametrize("doc", [{"hello": 1}, [1, 2], {"machine_info": {}, "benchmarks": [{"name": "x"}]}])
def test_not_a_benchmark_run(tmp_path, doc):
    bad = write(tmp_path / "other.json", doc)
    assert_bad(cli("diff", RUN_A, bad), "other.json", "not a pytest-benchmark run")


@pytest.mark.parametrize("value", [float("nan"), 0.0, -1e-6])
def test_bad_timings(tmp_path, value):
    doc = load()
    doc["benchmarks"][1]["stats"]["data"][3] = value
    bad = write(tmp_path / "nan.json", doc)
    assert_bad(cli("compare", "--base", RUN_A, "--cand", bad), "nan.json", "non-positive")


def test_different_machines_refused_then_allowed(tmp_path):
    doc = load(RUN_B)
    doc["machine_info"].update(torch_version="9.9.9", threads=7)
    other = write(tmp_path / "other.json", doc)
    result = cli("compare", "--base", RUN_A, "--cand", other)
    assert_bad(result, "different machines", "torch_version", "threads", "--allow-different-machines")
    allowed = cli("compare", "--base", RUN_A, "--cand", other, "--allow-different-machines")
    assert allowed.returncode == 0, allowed.stderr
    assert "different machines" in allowed.stderr


@pytest.mark.parametrize("value", ["ten", "0.1", "-5%", "0%"])
def test_bad_threshold(value):
    assert_bad(cli("gate", "--base", RUN_A, "--cand", RUN_B, f"--threshold={value}"), "threshold")


def test_unknown_format():
    assert_bad(cli("compare", "--base", RUN_A, "--cand", RUN_B, "--format=xml"), "--format")


def test_bad_config(tmp_path):
    conf = tmp_path / "t.toml"
    conf.write_text('[thresholds]\n"graph/*" = 12\n')
    assert_bad(cli("gate", "--base", RUN_A, "--cand", RUN_B, "--config", conf), "t.toml")


def test_strict_machine_folder(tmp_path):
    (tmp_path / "some-other-machine-1234").mkdir()
    result = cli("compare", "--results-dir", tmp_path)
    assert_bad(result, "looked for key", "some-other-machine-1234", "--base/--cand")


# --- compare and gate -------------------------------------------------------------------


def jittered(doc, seed, spread=0.02, profile="quick"):
    """Another process of the same code: every benchmark shifted by its own few-percent factor."""
    out = copy.deepcopy(doc)
    rng = np.random.default_rng(seed)
    out["machine_info"]["profile"] = profile
    for bench in out["benchmarks"]:
        f = float(rng.lognormal(0, spread))
        st = bench["stats"]
        st["data"] = [t * f for t in st["data"]]
        for k in ("min", "max", "mean", "median", "q1", "q3", "iqr", "stddev"):
            st[k] *= f
    return out


def processes(tmp_path, n, factor=1.0, only=None, seed0=0, prefix="p", scaled_last=1):
    """n run files of one 'commit' (seeded jitter), the last ``scaled_last`` scaled by factor on one benchmark."""
    paths = []
    for i in range(n):
        doc = jittered(load(), seed0 + i)
        if i >= n - scaled_last and factor != 1.0:
            doc = scaled(doc, factor, only=only)
        paths.append(write(tmp_path / f"{prefix}{i}.json", doc))
    return paths


def base_args(paths):
    return [a for p in paths for a in ("--base", p)]


def test_compare_same_run_unchanged_and_gate_passes(tmp_path):
    runs = processes(tmp_path, 5)
    result = cli("compare", *base_args(runs[:4]), "--cand", runs[4], "--format=json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {b["verdict"] for b in doc["benchmarks"]} == {"unchanged"}
    assert {"ratio", "ci_low", "ci_high", "p_value", "base_median", "cand_median", "mde", "gateable"} <= set(
        doc["benchmarks"][0])
    assert doc["design"] == "unpaired" and len(doc["base"]) == 4
    assert cli("gate", *base_args(runs[:4]), "--cand", runs[4]).returncode == 0


def cand_args(paths):
    return [a for p in paths for a in ("--cand", p)]


def test_gate_catches_a_slowdown_and_lists_it(tmp_path):
    runs = processes(tmp_path, 8, factor=1.3, only="test_sort", scaled_last=3)
    result = cli("gate", *base_args(runs[:5]), *cand_args(runs[5:]), "--threshold=10%")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "test_sort" in result.stdout.split("\n\n")[0]
    assert "test_copy" not in result.stdout.split("\n\n")[0]
    md = cli("compare", *base_args(runs[:5]), *cand_args(runs[5:]), "--format=md")
    assert md.returncode == 0 and "| `test_sort` |" in md.stdout and "**slower**" in md.stdout


def test_noisy_benchmark_is_listed_as_not_gateable(tmp_path):
    paths = []
    for i in range(6):  # test_copy's processes scatter by 30%: a 10% gate cannot see through that
        doc = jittered(load(), i, spread=0.005)
        doc = scaled(doc, float(np.random.default_rng(100 + i).lognormal(0, 0.3)), only="test_copy")
        paths.append(write(tmp_path / f"n{i}.json", doc))
    result = cli("gate", *base_args(paths[:3]), *cand_args(paths[3:]), "--format=json")
    doc = json.loads(result.stdout)
    rows = {b["name"]: b for b in json.loads(cli("compare", *base_args(paths[:3]), *cand_args(paths[3:]),
                                                 "--format=json").stdout)["benchmarks"]}
    assert rows["test_copy"]["gateable"] is False and rows["test_copy"]["mde"] > 0.10
    assert rows["test_sort"]["gateable"] is True
    assert any("test_copy" in name for name in doc["not_gateable"])
    text = cli("gate", *base_args(paths[:3]), *cand_args(paths[3:])).stdout
    assert "not gateable here" in text and "test_copy" in text


def test_per_group_threshold_from_config(tmp_path):
    runs = processes(tmp_path, 6, factor=1.3, only="test_sort")
    conf = tmp_path / "t.toml"
    conf.write_text('[thresholds]\n"pipeline/*" = "80%"\n')
    assert cli("gate", *base_args(runs[:5]), "--cand", runs[5], "--config", conf).returncode == 0


def test_added_and_removed_are_not_judged(tmp_path):
    runs = processes(tmp_path, 4)
    doc = scaled(load(runs[3]), 3.0, only="test_sort")
    doc["benchmarks"] = [b for b in doc["benchmarks"] if b["name"] != "test_copy"]
    doc["benchmarks"][-1]["fullname"] += "_renamed"
    cand = write(tmp_path / "cand.json", doc)
    result = cli("gate", *base_args(runs[:3]), "--cand", cand)
    assert result.returncode == 0, result.stdout
    assert "added" in result.stdout and "removed" in result.stdout and "_renamed" in result.stdout


def test_too_few_runs_says_so_and_exits_0_or_2_when_strict(tmp_path):
    slow = write(tmp_path / "slow.json", scaled(load(), 3.0))
    result = cli("gate", "--base", RUN_A, "--cand", slow)
    assert result.returncode == 0, result.stdout
    assert "too few runs" in result.stderr and "NOT DECIDED" in result.stdout
    strict = cli("gate", "--base", RUN_A, "--cand", slow, "--strict")
    assert strict.returncode == 2 and "NOT DECIDED" in strict.stdout
    shown = cli("compare", "--base", RUN_A, "--cand", slow, "--format=json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["too_few_runs"] is True


def test_runs_without_raw_rounds_are_judged_on_their_medians(tmp_path):
    runs = processes(tmp_path, 8, factor=1.3, only="test_sort", scaled_last=3)
    for path in runs:
        doc = load(path)
        for bench in doc["benchmarks"]:
            bench["stats"].pop("data")
        write(path, doc)
    assert cli("gate", *base_args(runs[:5]), *cand_args(runs[5:])).returncode == 1


def test_profiles_are_never_mixed(tmp_path):
    quick = write(tmp_path / "q.json", jittered(load(), 1))
    full = write(tmp_path / "f.json", jittered(load(), 2, profile="full"))
    assert_bad(cli("compare", "--base", quick, "--cand", full), "different profiles", "quick", "full")


def test_defaults_window_of_same_profile_runs_and_baseline(tmp_path):
    key = machine_key(current_machine_info())
    folder = tmp_path / key
    folder.mkdir()
    names = ["20260101T000000Z_aaaaaaa", "20260102T000000Z_bbbbbbb", "20260103T000000Z_ccccccc",
             "20260104T000000Z_ddddddd", "20260105T000000Z_eeeeeee"]
    def commit(doc, name):
        doc["commit_info"]["id"] = name.split("_")[1] * 5
        return doc

    for i, name in enumerate(names[:4]):
        write(folder / f"{name}.json", commit(jittered(load(), i), name))
    write(folder / "20260104T120000Z_fffffff.json", commit(jittered(load(), 9, profile="full"), "x_fffffff"))
    for j, stamp in enumerate(("20260105T000000Z", "20260105T010000Z")):  # the new commit is run three times
        write(folder / f"{stamp}_eeeeeee.json", commit(scaled(jittered(load(), 10 + j), 1.5), names[4]))
    newest = write(folder / "20260105T020000Z_eeeeeee.json", commit(scaled(jittered(load(), 4), 1.5), names[4]))
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    result = cli("compare", "--results-dir", tmp_path, "--format=json")
    doc = json.loads(result.stdout)
    assert [Path(p).stem for p in doc["base"]] == names[:4] and doc["cand"][-1].endswith(newest.name)
    assert len(doc["cand"]) == 3
    assert "other profiles" in result.stderr
    assert cli("gate", "--results-dir", tmp_path).returncode == 1
    assert [Path(p).stem for p in json.loads(cli("compare", "--results-dir", tmp_path, "--lookback", "2",
                                                 "--format=json").stdout)["base"]] == names[2:4]
    # a marked baseline ends the window: with only two runs up to it, the gate cannot decide
    assert cli("baseline", "--run", folder / f"{names[1]}.json", "--results-dir", tmp_path).returncode == 0
    assert (folder / "BASELINE").read_text().strip() == f"{names[1]}.json"
    result = cli("gate", "--results-dir", tmp_path)
    assert result.returncode == 0 and "too few runs" in result.stderr and "marked baseline" in result.stderr
    assert cli("gate", "--results-dir", tmp_path, "--strict").returncode == 2
    assert cli("baseline", "--results-dir", tmp_path).returncode == 0
    assert (folder / "BASELINE").read_text().strip() == newest.name
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.json")}
    assert after == before  # run files are never modified


def test_newest_runs_of_one_commit_are_the_candidate_together(tmp_path):
    key = machine_key(current_machine_info())
    folder = tmp_path / key
    folder.mkdir()
    for i in range(7):  # four runs of commit a, then three of commit b
        doc = jittered(load(), i)
        doc["commit_info"]["id"] = ("a" if i < 4 else "b") * 40
        write(folder / f"2026010{i + 1}T000000Z_{doc['commit_info']['id'][:7]}.json", doc)
    doc = json.loads(cli("compare", "--results-dir", tmp_path, "--format=json").stdout)
    assert len(doc["cand"]) == 3 and all("bbbbbbb" in p for p in doc["cand"])
    assert len(doc["base"]) == 4 and all("aaaaaaa" in p for p in doc["base"])


def test_only_one_run_says_so(tmp_path):
    key = machine_key(current_machine_info())
    (tmp_path / key).mkdir()
    write(tmp_path / key / "20260101T000000Z_aaaaaaa.json", jittered(load(), 1))
    result = cli("gate", "--results-dir", tmp_path)
    assert result.returncode == 0 and "no earlier quick run" in result.stderr
    assert cli("gate", "--results-dir", tmp_path, "--strict").returncode == 2


def test_diff_reports_fields_and_sorted_changes(tmp_path):
    doc = scaled(load(RUN_A), 1.5, only="test_copy")
    doc["machine_info"]["torch_version"] = "2.99"
    doc["commit_info"]["id"] = "f00"
    doc["benchmarks"] = doc["benchmarks"][1:]
    b = write(tmp_path / "b.json", doc)
    result = cli("diff", RUN_A, b, "--format=json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["removed"] == [load(RUN_A)["benchmarks"][0]["fullname"]]
    assert any(c["field"] == "torch_version" for c in out["machine_info"])
    assert any(c["field"] == "id" for c in out["commit_info"])
    assert out["medians"][0]["name"] == "test_copy"
    assert cli("diff", RUN_A, b).returncode == 0


def test_every_command_has_help():
    for command in ("compare", "gate", "diff", "ab", "history", "baseline"):
        result = cli(command, "--help", process=True)
        assert result.returncode == 0 and "usage" in result.stdout, command


def test_pytest_benchmark_can_read_recorded_runs():
    tool = Path(sys.executable).with_name("pytest-benchmark")
    result = subprocess.run([str(tool), "compare", str(RUN_A), str(RUN_B)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def synthetic_run(n_bench, rounds, factor, seed):
    rng = np.random.default_rng(seed)
    benches = []
    for i in range(n_bench):
        data = (rng.lognormal(np.log(1e-3 * (1 + i % 7)), 0.05, rounds) * factor).tolist()
        q1, med, q3 = np.percentile(data, [25, 50, 75])
        benches.append({
            "group": f"graph/w{i % 30}/cpu", "name": f"test_case[{i}]", "fullname": f"benches/t.py::test_case[{i}]",
            "params": {}, "extra_info": {},
            "stats": {"median": med, "q1": q1, "q3": q3, "iqr": q3 - q1, "rounds": rounds, "min": min(data),
                      "max": max(data), "mean": float(np.mean(data)), "data": data},
        })
    return {"machine_info": {"cpu_model": "x"}, "commit_info": {"id": "abc"}, "benchmarks": benches,
            "datetime": "2026-01-01T00:00:00", "version": "5.3.1"}


def test_speed_300_benchmarks(tmp_path):
    a = write(tmp_path / "a.json", synthetic_run(300, 100, 1.0, 1))
    b = write(tmp_path / "b.json", synthetic_run(300, 100, 1.02, 2))
    timings = {}
    c = write(tmp_path / "c.json", synthetic_run(300, 100, 0.99, 3))
    d = write(tmp_path / "d.json", synthetic_run(300, 100, 1.01, 4))
    three = ["--base", a, "--base", c, "--base", d, "--cand", b]
    for command in (["compare", *three], ["gate", *three], ["diff", a, b]):
        start = time.perf_counter()
        result = cli(*command, process=True)  # what a user waits for: the interpreter's start-up included
        timings[command[0]] = time.perf_counter() - start
        assert result.returncode in (0, 1), result.stderr
    print("wall seconds for 300 benchmarks x 100 rounds:", {k: round(v, 2) for k, v in timings.items()})
    # 2 s is the target on an idle 2-core machine; the bound leaves room for a busy one
    assert max(timings.values()) < 4.0, timings


def with_load(doc, disturbed: bool):
    doc["load"] = {"schema": 1, "available": True, "threshold_cores": 0.1, "benchmarks_s": 10.0,
                   "other_cores": 0.9 if disturbed else 0.01, "steal_cores": 0.0, "disturbed": disturbed,
                   "why": "other processes used 0.90 of a core while benchmarks ran (limit 0.10)" if disturbed else "",
                   "busiest_others": []}
    return doc


def test_disturbed_runs_are_left_out_unless_asked(tmp_path):
    key = machine_key(current_machine_info())
    folder = tmp_path / key
    folder.mkdir()
    paths = []
    for i in range(6):  # five base runs of commit a (the 2nd one disturbed and 3x slower), then b
        doc = with_load(scaled(jittered(load(), i), 3.0) if i == 1 else jittered(load(), i), disturbed=i == 1)
        doc["commit_info"]["id"] = ("a" if i < 5 else "b") * 40
        paths.append(write(folder / f"2026010{i + 1}T000000Z_{doc['commit_info']['id'][:7]}.json", doc))
    result = cli("compare", "--results-dir", tmp_path, "--format=json")
    doc = json.loads(result.stdout)
    assert len(doc["base"]) == 4 and not any(paths[1].name in p for p in doc["base"])
    assert "1 disturbed run(s) left out of the window" in result.stderr
    doc = json.loads(cli("compare", "--results-dir", tmp_path, "--format=json", "--include-disturbed").stdout)
    assert len(doc["base"]) == 5
    # a disturbed run named on the command line is refused, in one line, unless asked
    assert_bad(cli("gate", "--base", paths[0], "--base", paths[1], "--cand", paths[5]), "disturbed run", paths[1].name)
    assert cli("compare", "--base", paths[0], "--base", paths[1], "--cand", paths[5],
               "--include-disturbed").returncode == 0
    # a newest commit whose runs were all disturbed cannot be gated
    with_newest = json.loads(paths[5].read_text())
    write(paths[5], with_load(with_newest, disturbed=True))
    assert_bad(cli("gate", "--results-dir", tmp_path), "all disturbed", "quiet machine")
    assert cli("gate", "--results-dir", tmp_path, "--include-disturbed").returncode in (0, 1)


@pytest.mark.parametrize("args,word", [
    (["ab", "--base-ref=HEAD", "--turn-time=x"], "--turn-time"),
    (["ab", "--base-ref=HEAD", "--turn-time=0"], "--turn-time"),
    (["ab", "--base-ref=HEAD", "--round-time=2"], "--round-time"),
    (["ab", "--base-ref=HEAD", "--round-time=fast"], "--round-time"),
    (["ab", "--base-ref=HEAD", "--threads=0"], "--threads"),
    (["ab", "--base-ref=HEAD", "--threads=many"], "--threads"),
    (["ab", "--base-ref=HEAD", "--lanes=0"], "--lanes"),
    (["ab", "--base-ref=HEAD", "--lanes=two"], "--lanes"),
    (["ab", "--base-ref=HEAD", "--calls=0"], "--calls"),
    (["ab", "--base-ref=HEAD", "--calls=nine"], "--calls"),
    (["ab", "--base-ref=HEAD", "--design=sideways"], "--design"),
    (["compare", "--normalise=sometimes"], "--normalise"),
    (["gate", "--normalise=sometimes"], "--normalise"),
    (["history", "--normalise=auto"], "--normalise"),
])
def test_bad_interleave_and_probe_options_are_one_line_and_exit_2(args, word):
    assert_bad(cli(*args), word)
