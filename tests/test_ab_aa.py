"""ab-aa: every set of P pairs of a kept A/A job judged as one job (benchruns/studies/abjobs.py).

The docs' figures come from real kept jobs (docs/gate.md); here kept folders are written from a
real run file with known medians, so that what the analysis must find is known."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from benchruns.cli import main

TEMPLATE = Path(__file__).parent / "data" / "run_a.json"


def kept_job(folder: Path, pairs: int, slower: dict[str, float] | None = None, seed: int = 1) -> Path:
    """A0.json/B0.json ...: 12 interleaved benchmarks (1% spread between pairs) and 8 single-round ones."""
    rng = np.random.default_rng(seed)
    doc = json.loads(TEMPLATE.read_text())
    template = doc["benchmarks"][0]
    folder.mkdir(parents=True)
    for i in range(pairs):
        for side in "AB":
            run = copy.deepcopy(doc)
            run["benchmarks"] = []
            for k in range(20):
                bench = copy.deepcopy(template)
                bench["name"] = f"test_case[{k}]"
                bench["fullname"] = f"benches/test_x.py::test_case[{k}]"
                bench["group"] = f"graph/case{k}/cpu"
                interleaved = k < 12
                spread = 0.01 if interleaved else 0.03
                median = 1e-3 * np.exp(rng.normal(0, spread)) * (slower or {}).get(bench["name"], 1.0) ** (side == "B")
                bench["stats"].update(median=median, rounds=50 if interleaved else 1)
                run["benchmarks"].append(bench)
            (folder / f"{side}{i}.json").write_text(json.dumps(run))
    return folder


def test_aa_subjobs_rarely_fail_and_a_real_slowdown_fails_every_one(tmp_path, capsys):
    aa = kept_job(tmp_path / "aa", 6)
    out = tmp_path / "table.json"
    assert main(["ab-aa", str(aa), "--pairs", "3,4,6", "--out", str(out), "--no-config"]) == 0
    doc = json.loads(out.read_text())
    rows = {(r[1], r[2]): r for r in doc["rows"]}
    assert set(rows) == {(p, prior) for p in (3, 4, 6) for prior in ("robust", "moments")}
    assert rows[(4, "robust")][3] == 15 and rows[(6, "robust")][3] == 1  # C(6,4) and C(6,6) jobs
    assert all(float(r[4].rstrip("%")) <= 20 for r in doc["rows"])  # an A/A sub-job fails rarely
    # a 1% spread between pairs is gateable at 10% with 4 pairs: the robust prior says so
    assert float(rows[(4, "robust")][6].rstrip("%")) < 10
    assert rows[(4, "robust")][7] == "–"  # these kept jobs hold no steady-state benchmark: a dash, not "nan%"
    slow = kept_job(tmp_path / "slow", 6, slower={"test_case[3]": 1.3}, seed=2)
    assert main(["ab-aa", str(slow), "--pairs", "4", "--no-config"]) == 0
    printed = capsys.readouterr().out
    assert "| 4 | robust | 15 | 100.0% |" in printed


@pytest.mark.parametrize("argv, message", [
    (["ab-aa", "{tmp}/nowhere"], "no such folder"),
    (["ab-aa", "{tmp}/two"], "2 worker pair(s)"),
    (["ab-aa", "{tmp}/aa", "--pairs", "2"], "at least 3 pairs"),
    (["ab-aa", "{tmp}/aa", "--pairs", "four"], "bad --pairs value"),
    (["ab-aa", "{tmp}/aa", "--out", "{tmp}/taken.json"], "exists; nothing is overwritten"),
    (["ab-aa", "{tmp}/badkinds"], "not ab's kinds file"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    kept_job(tmp_path / "aa", 3)
    kept_job(tmp_path / "two", 2)
    (kept_job(tmp_path / "badkinds", 3) / "kinds.json").write_text('{"kinds": {"x": "sometimes"}}')
    (tmp_path / "taken.json").write_text("keep me")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert (tmp_path / "taken.json").read_text() == "keep me"


def test_the_kinds_ab_kept_decide_the_strata_over_the_rounds_rule(tmp_path):
    from benchruns.studies import abjobs

    folder = kept_job(tmp_path / "aa", 3)
    pairs = abjobs.kept_pairs(folder)
    names, _, inferred, _, _ = abjobs.pair_matrix(pairs, abjobs.kept_kinds(folder))
    assert inferred == ["interleaved" if int(n.split("[")[1][:-1]) < 12 else "per process" for n in names]
    # ab's own record wins where it exists (here it says one interleaved case was judged per process)
    one = "benches/test_x.py::test_case[0]"
    (folder / "kinds.json").write_text(json.dumps({"kinds": {one: "per process"}}))
    names, _, kinds, _, _ = abjobs.pair_matrix(pairs, abjobs.kept_kinds(folder))
    assert [k for n, k in zip(names, kinds) if n == one] == ["per process"]
    assert sum(a != b for a, b in zip(kinds, inferred)) == 1


def _record(folder: Path, disturbed: list[bool], included: bool = False) -> None:
    loads = [{"available": True, "disturbed": d, "why": "the hypervisor stole 0.17 of a core" if d else ""}
             for d in disturbed]
    (folder / "record.json").write_text(json.dumps({"verdict": "passed", "loads": loads,
                                                    "included_disturbed": included}))


def test_pairs_the_job_found_disturbed_are_left_out_as_the_job_left_them_out(tmp_path, capsys):
    """A kept job that replaced a disturbed pair holds one pair more than it judged: the one its record
    marks disturbed is not a sample of the quiet machine, and a sub-job must not draw it."""
    from benchruns.studies import abjobs

    folder = kept_job(tmp_path / "aa", 5, slower={"test_case[3]": 1.3}, seed=3)
    # pair 1 is the disturbed one; give it a wild value so that drawing it would show
    for side, factor in (("A", 1.0), ("B", 3.0)):
        path = folder / f"{side}1.json"
        doc = json.loads(path.read_text())
        doc["benchmarks"][0]["stats"]["median"] *= factor
        path.write_text(json.dumps(doc))
    _record(folder, [False, True, False, False, False])
    pairs, left_out, loads = abjobs.judged_pairs(folder)
    assert left_out == 1 and len(pairs) == len(loads) == 4
    assert [json.loads((folder / f"A{i}.json").read_text())["benchmarks"][0]["stats"]["median"]
            for i in (0, 2, 3, 4)] == [a.benchmarks["benches/test_x.py::test_case[0]"].median for a, _ in pairs]
    doc = abjobs.subjobs([folder], [4], lambda g: 0.10, 0.025, priors=("robust",))
    assert doc["load"] == "undisturbed" and "(4 pairs, 1 disturbed left out, 20 benchmarks)" in doc["kept"][0]
    # a job that included its disturbed pairs is judged on all of them, and says its load was disturbed
    _record(folder, [False, True, False, False, False], included=True)
    assert abjobs.judged_pairs(folder)[1] == 0
    assert abjobs.subjobs([folder], [4], lambda g: 0.10, 0.025, priors=("robust",))["load"] == "disturbed or unrecorded"
    # a record of another job (another number of pairs) is refused in one line
    _record(folder, [False, False])
    assert main(["ab-aa", str(folder), "--pairs", "4", "--no-config"]) == 2
    assert "2 load record(s) for 5 kept pair(s)" in capsys.readouterr().err


def test_by_iterations_splits_the_pairs_by_whether_both_sides_timed_alike_rounds(tmp_path, capsys):
    folder = kept_job(tmp_path / "aa", 4, seed=4)
    for i in range(4):
        for side in "AB":
            path = folder / f"{side}{i}.json"
            doc = json.loads(path.read_text())
            for bench in doc["benchmarks"]:
                bench["stats"]["iterations"] = 10
                if i == 2 and side == "B" and bench["name"] == "test_case[5]":  # one cell: 2 against 10, 40% off
                    bench["stats"].update(iterations=2, median=bench["stats"]["median"] * 1.4)
            path.write_text(json.dumps(doc))
    out = tmp_path / "by.json"
    assert main(["ab-aa", str(folder), "--by-iterations", "--out", str(out), "--no-config"]) == 0
    rows = {r[1]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["different"][2] == 1 and rows["same"][2] == 4 * 12 - 1  # interleaved cases only
    assert 38 <= float(rows["different"][3].rstrip("%")) <= 42 and rows["different"][4] == "100.0%"
    assert float(rows["same"][5].rstrip("%")) < 10  # the 1% spread of the rest


def test_by_test_splits_the_job_by_test_function_and_how_ab_measured_it(tmp_path, capsys):
    folder = kept_job(tmp_path / "aa", 6, seed=5)
    for path in folder.glob("[AB]*.json"):  # the 8 single-round cases become another test function's
        doc = json.loads(path.read_text())
        for bench in doc["benchmarks"]:
            k = int(bench["name"].split("[")[1][:-1])
            if k >= 12:  # first calls of 3 calls a side
                bench["name"], bench["fullname"] = f"test_first[{k}]", f"benches/test_x.py::test_first[{k}]"
                bench["stats"]["rounds"] = 3
        path.write_text(json.dumps(doc))
    kinds = {f"benches/test_x.py::test_first[{k}]": "interleaved calls" for k in range(12, 20)}
    (folder / "kinds.json").write_text(json.dumps({"kinds": kinds}))
    out = tmp_path / "by_test.json"
    assert main(["ab-aa", str(folder), "--by-test", "--pairs", "4", "--out", str(out), "--no-config"]) == 0
    rows = {r[1]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["test_case"][2:4] == ["interleaved", 12] and rows["test_first"][2:4] == ["interleaved calls", 8]
    # the spread between pairs the kept job was written with: 1% and 3%
    assert 0.5 <= float(rows["test_case"][4].rstrip("%")) <= 1.8 <= float(rows["test_first"][4].rstrip("%")) <= 4.5
    assert rows["test_case"][6] == "12 of 12"
    assert float(rows["test_case"][5].rstrip("%")) < float(rows["test_first"][5].rstrip("%"))
    assert main(["ab-aa", str(folder), "--by-test", "--pairs", "4", "--test", "test_first", "--out", str(out),
                 "--force", "--no-config"]) == 0
    assert [r[1] for r in json.loads(out.read_text())["rows"]] == ["test_first"]
    capsys.readouterr()
    assert main(["ab-aa", str(folder), "--by-test", "--pairs", "4", "--test", "test_nope", "--no-config"]) == 2
    assert "no benchmark of test_nope" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["ab-aa", str(folder), "--by-test", "--pairs", "3,4", "--no-config"]) == 2
    assert main(["ab-aa", str(folder), "--by-test", "--pairs", "8", "--no-config"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "one pair count" in err[0] and "fewer than --pairs 8" in err[1]


def test_interleaved_calls_are_judged_on_the_mean_of_their_calls_as_ab_judges_them(tmp_path):
    from benchruns import ab
    from benchruns.studies import abjobs

    folder = kept_job(tmp_path / "aa", 3)
    one, cold = "benches/test_x.py::test_case[12]", "benches/test_x.py::test_case[13]"
    for path in folder.glob("[AB]*.json"):  # one first call: 9 calls a side, one of them slow
        doc = json.loads(path.read_text())
        bench = next(b for b in doc["benchmarks"] if b["fullname"] == one)
        bench["extra_info"]["ab_calls_s"] = [1e-3] * 8 + [9e-3]
        bench["stats"]["rounds"] = 9
        path.write_text(json.dumps(doc))
    pairs = abjobs.kept_pairs(folder)
    # a cold compile (one call a side) kept as "interleaved calls" before ab told them apart
    (folder / "kinds.json").write_text(json.dumps({"kinds": {one: "interleaved calls", cold: "interleaved calls"}}))
    names, _, kinds, base, _ = abjobs.pair_matrix(pairs, abjobs.kept_kinds(folder))
    row = names.index(one)
    assert kinds[row] == "interleaved calls" and np.allclose(base[row], np.log(17e-3 / 9))  # the slow call counts
    assert kinds[names.index(cold)] == "one interleaved call"  # its own stratum, as ab judges it now
    # without ab's kinds the same case is judged per process, on its run median
    _, _, kinds, base, _ = abjobs.pair_matrix(pairs, None)
    assert kinds[row] == "per process" and np.allclose(base[row], np.log([a.benchmarks[one].median for a, _ in pairs]))
    bench = pairs[0][0].benchmarks[one]
    assert ab.process_figure(bench, "interleaved calls") == pytest.approx(17e-3 / 9)
    assert ab.process_figure(bench, "interleaved") == bench.median  # timing rounds: the median, as ever
    bench.extra_info["ab_calls_s"] = ["x", 1e-3]  # not ab's list: the median
    assert ab.process_figure(bench, "interleaved calls") == bench.median
