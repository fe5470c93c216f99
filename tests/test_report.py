"""report: verdict logic on crafted cases, the command end to end on recorded runs, bad input.

Data: ``tests/data/report_quick.json`` is a real quick-profile run trimmed to ten benchmarks
(raw timings kept; its torch eager inference result is the disturbed 32 ms one).
``tests/data/report_crafted.json`` is ``crafted_run()`` below written out (regenerate with
``python -m tests.test_report``); it holds CPU and CUDA results of every kind the report reads,
with times chosen so that each claim has a known verdict:

1. torch eager beats TF's graph at b1, TF's graph beats torch eager at b256: supported;
   torch.compile crosses over torch eager at b30 (80 + b = 50 + 2b microseconds).
2. graph modes faster than eager except torch.compile below b32: supported (36 of 48; TorchScript
   is shown, not counted).
3. rnn-loop: tf.function is far faster than torch eager: contradicted; no torch.export.
4. train = 3 x inference everywhere: supported.
5. tf.data beats DataLoader per sample: supported.
6. h2d pageable equal (supports): supported; host-ingest (torch twice TF's GB/s) is host-only
   interop, shown and not counted.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from benchruns import claims as C
from benchruns.claims import Benches, judge
from benchruns.runs import Bench, Run, load_run
from tests.invoke import benchruns

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
QUICK, CRAFTED = DATA / "report_quick.json", DATA / "report_crafted.json"

# --- crafted runs -------------------------------------------------------------------------

KEY = "crafted-2c-cpu-00000000"
MACHINE = {"machine_key": KEY, "cpu_model": "Crafted CPU", "cpu_count": 2, "gpu_models": ["Crafted GPU"],
           "gpu_driver": "999.0", "torch_version": "2.13.0", "tensorflow_version": "2.21.0", "threads": 2,
           "torch_cuda": "12.8", "tensorflow_cuda": "12.5", "numpy_version": "2.4.6", "python_version": "3.11.7",
           "os": "Linux", "profile": "full"}


def bench(group, name, median, info, rounds=12, seed=0, noise=0.01):
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    data = [float(f"{t:.4g}") for t in median * rng.lognormal(0, noise, rounds)]
    q1, med, q3 = np.percentile(data, [25, 50, 75])
    return {"group": group, "name": name, "fullname": f"benches/crafted.py::{name}", "params": {},
            "extra_info": info, "stats": {"median": med, "q1": q1, "q3": q3, "rounds": rounds, "data": data}}


def graph_time(fw, mode, batch):
    base, per = {("torch", "eager"): (50, 2.0), ("torch", "compile"): (80, 1.0), ("torch", "script"): (45, 1.9),
                 ("tensorflow", "eager"): (150, 2.0), ("tensorflow", "function"): (100, 0.8),
                 ("tensorflow", "xla"): (110, 0.7)}[(fw, mode)]
    return (base + per * batch) * 1e-6


def graph_benches(device):
    out = []
    for pass_, factor in (("inference", 1.0), ("train", 3.0)):
        for batch in (1, 32, 256):
            for fw, mode in (("torch", "eager"), ("torch", "compile"), ("torch", "script"),
                             ("tensorflow", "eager"), ("tensorflow", "function"), ("tensorflow", "xla")):
                t = graph_time(fw, mode, batch) * factor
                info = {"framework": fw, "mode": mode, "device": device, "workload": "mlp-small", "pass": pass_,
                        "batch": batch, "threads": 2, "samples_per_s": batch / t, "legacy": mode == "script"}
                out.append(bench(f"graph/mlp-small/{pass_}/b{batch}/{device}",
                                 f"test_steady_state[{device}-mlp-small-b{batch}-{pass_}-{fw}-{mode}]", t, info))
        for fw, mode, t in (("torch", "eager", 1e-3), ("torch", "compile", 1.1e-3), ("torch", "script", 0.9e-3),
                            ("tensorflow", "eager", 3e-3), ("tensorflow", "function", 0.5e-3),
                            ("tensorflow", "xla", 0.45e-3)):
            info = {"framework": fw, "mode": mode, "device": device, "workload": "rnn-loop", "pass": pass_,
                    "batch": 32, "threads": 2}
            out.append(bench(f"graph/rnn-loop/{pass_}/b32/{device}",
                             f"test_steady_state[{device}-rnn-loop-b32-{pass_}-{fw}-{mode}]", t * factor, info))
    for fw, mode, compile_s, steady, eager in (("torch", "compile-cold", 2.0, 1.1e-4, 1.14e-4),
                                               ("torch", "script", 0.003, 1.1e-4, 1.14e-4),
                                               ("tensorflow", "function", 0.03, 1.26e-4, 2.14e-4),
                                               ("tensorflow", "xla", 0.05, 1.32e-4, 2.14e-4)):
        saving = eager - steady
        info = {"framework": fw, "mode": mode, "device": device, "workload": "mlp-small", "pass": "inference",
                "batch": 32, "threads": 2, "compile_s": compile_s, "steady_step_s": steady, "eager_step_s": eager,
                "break_even_steps": compile_s / saving if saving > 0 and mode != "compile-cold" else None}
        out.append(bench(f"graph-first-call/mlp-small/inference/b32/{device}",
                         f"test_first_call[{device}-mlp-small-b32-inference-{fw}-{mode}]", compile_s + steady, info,
                         rounds=3))
    return out


def pipeline_benches(device):
    out = []
    samples = 1024
    cases = [("numpy", "ideal", {}, 1e6), ("tensorflow", "tf.data", {"num_parallel_calls": 1}, 5e5),
             ("tensorflow", "tf.data", {"num_parallel_calls": 2}, 8e5),
             ("torch", "DataLoader", {"num_workers": 0}, 3e5), ("torch", "DataLoader", {"num_workers": 2}, 4e5)]
    for fw, mode, knobs, sps in cases:
        info = {"framework": fw, "mode": mode, "device": device, "samples_per_s": sps, "fraction_of_ideal": sps / 1e6,
                "time_to_first_batch_s": 0.01 if fw != "torch" else 0.2, "peak_rss_bytes": 300 * 2**20,
                "epoch": "steady", **knobs}
        knob = "-".join(f"{k}{v}" for k, v in knobs.items())
        out.append(bench(f"pipeline/memory/{device}", f"test_pipeline[{device}-memory-{fw}-{knob}]", samples / sps, info))
    return out


def transfer_benches(device):
    out = []
    sizes = (2**20, 64 * 2**20)
    if device == "cpu":
        cases = [("numpy", "copyto", "reference", "pageable", 12.0), ("torch", "from_numpy", "host-ingest", "pageable", 10.0),
                 ("tensorflow", "convert_to_tensor", "host-ingest", "pageable", 5.0)]
    else:
        cases = [("numpy", "copyto", "reference", "pageable", 12.0), ("torch", ".to(cuda)", "h2d", "pageable", 12.0),
                 ("torch", ".to(cuda)", "h2d", "pinned", 24.0), ("tensorflow", "tf.device+identity", "h2d", "pageable", 12.0)]
    for fw, mode, direction, memory, gbps in cases:
        for size in sizes:
            g = gbps * (0.5 if size < 2**21 else 1.0)
            info = {"framework": fw, "mode": mode, "device": device, "direction": direction, "memory": memory,
                    "blocking": True, "bytes": size, "gbps": g, "fraction_of_ideal": g / 12.0}
            out.append(bench(f"transfer/{direction}/{device}/{size}",
                             f"test_transfer[{device}-{direction}-{fw}-{memory}-{size}]", size / g / 1e9, info))
    return out


def crafted_run(devices=("cpu", "cuda")) -> dict:
    benches = []
    for device in devices:
        benches += graph_benches(device) + pipeline_benches(device) + transfer_benches(device)
    return {"machine_info": dict(MACHINE), "commit_info": {"id": "c0ffee0000000000", "dirty": False},
            "benchmarks": benches, "datetime": "2026-11-27T12:00:00+00:00", "version": "5.1.0"}



def as_run(doc: dict, tmp_path: Path, name="run.json") -> Run:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return load_run(path)


def item(median, noise=0.01, rounds=40, seed=0, name="x") -> C.Item:
    data = median * np.random.default_rng(seed).lognormal(0, noise, rounds)
    q1, med, q3 = np.percentile(data, [25, 50, 75])
    return C.Item(Bench(name, name, "g", float(med), float(q1), float(q3), rounds, data), None, {})


def cli(*args):
    return benchruns("report", *args)  # in this process (tests/invoke.py)


# --- the decision rule -------------------------------------------------------------------------


def test_clear_win_tie_within_noise_and_small_difference():
    fast, slow = item(1e-3, seed=1, name="fast"), item(2e-3, seed=2, name="slow")
    assert C.time_ratio(fast, slow, "a", "b").outcome == "faster"
    assert C.time_ratio(slow, fast, "b", "a").outcome == "slower"
    # same distribution: the CI overlaps 1
    tie = C.time_ratio(item(1e-3, noise=0.05, seed=3), item(1e-3, noise=0.05, seed=4), "a", "b")
    assert tie.lo < 1 < tie.hi and tie.outcome == "same"
    # 3% apart with tight noise: significant but within the ±5% band, so still "same"
    close = C.time_ratio(item(1.03e-3, noise=0.001, seed=5), item(1e-3, noise=0.001, seed=6), "a", "b")
    assert close.lo > 1 and close.outcome == "same"


def test_verdict_thresholds():
    assert C.verdict(0, 0) == C.NOT_MEASURED
    assert C.verdict(3, 1) == "supported"
    assert C.verdict(1, 3) == "contradicted"
    assert C.verdict(1, 1) == "mixed"


def test_ratio_without_raw_data_falls_back_to_summary():
    a, b = item(1e-3, seed=1), item(2e-3, seed=2)
    a.bench.data = None
    cmp = C.time_ratio(a, b, "a", "b")
    assert cmp.method == "summary" and cmp.outcome == "faster" and cmp.lo < cmp.value < cmp.hi


# --- claims on the crafted run --------------------------------------------------------------


@pytest.fixture(scope="module")
def crafted_claims(tmp_path_factory):
    return judge(Benches([load_run(CRAFTED)]))


def test_crafted_file_is_current():
    assert json.loads(CRAFTED.read_text()) == json.loads(json.dumps(crafted_run())), \
        "tests/data/report_crafted.json is stale: python -m tests.test_report"


def test_crafted_verdicts(crafted_claims):
    verdicts = {c.number: c.verdict for c in crafted_claims}
    assert verdicts == {1: "supported", 2: "supported", 3: "contradicted", 4: "supported", 5: "supported",
                        6: "supported",
                        7: "not measured here", 8: "not measured here"}
    # claim 7: tests/test_distributed.py; claim 8: tests/test_api_levels.py


def test_crossover_found_where_the_lines_meet(crafted_claims):
    rows = [r for t in crafted_claims[0].tables for r in t.rows if r[3] == "torch.compile"]
    assert rows
    for row in rows:
        at = float(re.search(r"≈ b([\d.]+)", row[-1]).group(1))
        assert 20 < at < 45  # 80 + b = 50 + 2b at b = 30


def test_export_skip_is_explained(crafted_claims):
    assert any("torch.export" in n and "Python loop" in n for n in crafted_claims[2].notes)


def test_verdicts_quote_benchmarks_and_intervals(crafted_claims):
    for c in crafted_claims[:6]:  # the crafted run has no distributed cases: claim 7 is tested in test_distributed.py
        assert c.verdict != C.NOT_MEASURED
        if c.number != 2:
            assert any("test_" in f and "[" in f for f in c.findings), c.number


def test_missing_benchmarks_are_not_measured(tmp_path):
    doc = crafted_run(devices=("cpu",))
    doc["benchmarks"] = [b for b in doc["benchmarks"] if not b["group"].startswith(("pipeline", "transfer"))]
    got = {c.number: c.verdict for c in judge(Benches([as_run(doc, tmp_path)]))}
    assert got[5] == got[6] == C.NOT_MEASURED
    assert got[1] == "supported"


def test_one_batch_size_is_not_measured_for_claim_1(tmp_path):
    doc = crafted_run(devices=("cpu",))
    doc["benchmarks"] = [b for b in doc["benchmarks"] if "/b256/" not in b["group"] and "/b1/" not in b["group"]]
    c1 = judge(Benches([as_run(doc, tmp_path)]))[0]
    assert c1.verdict == C.NOT_MEASURED and any("one batch size" in n.lower() for n in c1.notes)


def test_keys_missing_from_extra_info_do_not_crash(tmp_path):
    doc = crafted_run(devices=("cpu",))
    for i, b in enumerate(doc["benchmarks"]):
        for key in list(b["extra_info"])[i % 5:: 3]:
            b["extra_info"].pop(key)
    judge(Benches([as_run(doc, tmp_path)]))


def test_disturbed_measurement_is_flagged_and_not_counted():
    claims = judge(Benches([load_run(QUICK)]))
    c4 = claims[3]
    assert any("suspect measurement" in n and "torch-eager" in n for n in c4.notes)
    assert c4.excluded >= 1
    assert claims[0].verdict == C.NOT_MEASURED  # quick profile: one batch size


# --- the command ----------------------------------------------------------------------------


def test_report_end_to_end_both_devices(tmp_path):
    out = tmp_path / "report"
    start = time.perf_counter()
    result = cli("--run", CRAFTED, "--out", out)
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - start < 30
    page = (out / "report.html").read_text()
    images = re.findall(r"<img src='([^']+)'", page)
    assert images and all((out / src).is_file() for src in images)
    assert any("cuda" in src for src in images) and any("cpu" in src for src in images)
    assert "http" not in "".join(images)
    md = (out / "report.md").read_text()
    for ref in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (out / ref).is_file()
    for word in ("Crafted CPU", "Crafted GPU", "2.13.0", "2.21.0", "threads"):
        assert word in md


def test_default_run_is_newest_and_borrows_the_missing_device(tmp_path):
    folder = tmp_path / "results" / KEY
    folder.mkdir(parents=True)
    (folder / "20260101T000000Z_aaaaaaa.json").write_text(json.dumps(crafted_run(devices=("cuda",))))
    (folder / "20260102T000000Z_bbbbbbb.json").write_text(json.dumps(crafted_run(devices=("cpu",))))
    out = tmp_path / "report"
    result = cli("--results-dir", tmp_path / "results", "--machine", KEY, "--out", out)
    assert result.returncode == 0, result.stderr
    md = (out / "report.md").read_text()
    assert "20260102T000000Z_bbbbbbb.json" in md and "20260101T000000Z_aaaaaaa.json" in md
    assert (out / "claim1_scaling_cuda.png").is_file() and (out / "claim1_scaling_cpu.png").is_file()


def test_quick_run_report(tmp_path):
    result = cli("--run", QUICK, "--out", tmp_path / "r")
    assert result.returncode == 0, result.stderr
    assert "not measured here" in (tmp_path / "r" / "report.md").read_text()


@pytest.mark.parametrize("case", ["missing", "broken", "foreign", "empty-dir", "out-is-file", "bad-option"])
def test_bad_input_exits_2_with_one_line(tmp_path, case):
    out = tmp_path / "out"
    if case == "missing":
        args = ["--run", tmp_path / "nope.json"]
    elif case == "broken":
        (tmp_path / "b.json").write_text(QUICK.read_text()[:500])
        args = ["--run", tmp_path / "b.json"]
    elif case == "foreign":
        (tmp_path / "f.json").write_text(json.dumps({"hello": [1, 2]}))
        args = ["--run", tmp_path / "f.json"]
    elif case == "empty-dir":
        (tmp_path / "results").mkdir()
        args = ["--results-dir", tmp_path / "results"]
    elif case == "out-is-file":
        out.write_text("x")
        args = ["--run", QUICK]
    else:
        args = ["--bogus"]
    result = cli(*args, "--out", out)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not (out / "report.html").exists()


def test_help():
    result = cli("--help")
    assert result.returncode == 0 and "--results-dir" in result.stdout


if __name__ == "__main__":
    CRAFTED.write_text(json.dumps(crafted_run()))
    print(CRAFTED)


def test_worker_scaling_ignores_autotune_and_keeps_the_best_per_count():
    """Real runs mix num_parallel_calls=1 with "autotune"; the scaling line plots worker counts only."""
    from types import SimpleNamespace

    from benchruns import claims

    def item(workers, sps):
        info = {"num_parallel_calls": workers, "samples_per_s": sps}
        return SimpleNamespace(get=info.get)

    points = claims._scaling_points([item(1, 100.0), item("autotune", 900.0), item(2, 150.0), item(1, 120.0)])
    assert points == [(1, 120.0), (2, 150.0)]


# --- torchvision rows in claim 5; mixed precision in claims 1 and 2 -----------------------------

def _run_doc(benches, machine=None) -> dict:
    return {"machine_info": dict(machine or MACHINE), "commit_info": {"id": "c0ffee0000000000", "dirty": False},
            "benchmarks": benches, "datetime": "2026-12-02T12:00:00+00:00", "version": "5.1.0"}


def library_ops_benches(torchvision=True):
    out, n = [], 512
    cases = [("numpy", "ideal", "PIL+numpy", {}, 2000.0), ("tensorflow", "tf.data", "tf.image",
                                                            {"num_parallel_calls": "autotune", "dct": "accurate"}, 2600.0)]
    if torchvision:
        cases += [("torch", "DataLoader", "torchvision.v2", {"num_workers": 0}, 1500.0),
                  ("torch", "DataLoader", "torchvision.v2", {"num_workers": 2}, 2100.0)]
    for fw, mode, ops, knobs, sps in cases:
        info = {"framework": fw, "mode": mode, "transforms": ops, "device": "cpu", "workload": "images-3x64x64",
                "pass": "input", "batch": 128, "threads": 2, "source": "jpeg-resize", "epoch": "steady",
                "samples_per_s": sps, "fraction_of_ideal": sps / 2000.0, **knobs}
        if fw == "torch":
            info["equivalence"] = {"decode torchvision vs tf.image": [0.0, 0.0],
                                   "batch torchvision vs tf.image": [0.0175, 0.0055]}
        knob = "-".join(str(v) for v in knobs.values())
        out.append(bench("pipeline/jpeg-resize/cpu", f"test_library_ops[cpu-{fw}-{knob}]", n / sps, info))
    return out


def test_claim_5_compares_torchvision_with_tf_image_where_the_run_has_them(tmp_path):
    c5 = judge(Benches([as_run(_run_doc(library_ops_benches()), tmp_path)]))[4]
    assert c5.verdict == "supported" and (c5.supports, c5.contradicts) == (1, 0)
    finding = next(f for f in c5.findings if f.startswith("jpeg-resize"))
    assert "tf.data + tf.image is 1.2× faster than DataLoader + torchvision.v2" in finding
    assert "decoded pixels max |diff| 0 levels, transformed batches max |diff| 0.0175" in finding
    rows = {r[2]: r for r in c5.tables[0].rows}
    assert rows["DataLoader + torchvision.v2"][3] == "num_workers=2" and rows["DataLoader + torchvision.v2"][5] == "1.05"
    lines = c5.plots[0]["scaling"]
    assert [s["label"] for s in lines] == ["DataLoader + torchvision.v2 · jpeg-resize"]
    assert lines[0]["points"] == [(0, 1500.0), (2, 2100.0)]


def test_claim_5_says_why_torchvision_rows_are_missing(tmp_path):
    c5 = judge(Benches([as_run(_run_doc(library_ops_benches(torchvision=False)), tmp_path)]))[4]
    assert c5.verdict == C.NOT_MEASURED
    assert any("torchvision did not" in n and "make venv-pypi" in n for n in c5.notes)


RECORDED_API = DATA / "recorded_api.json"


def precision_bench(fw, precision, batch, t, workload="mlp-large", native=True, device="cpu"):
    mode = "optim-eager" if fw == "torch" else "fit"
    info = {"framework": fw, "device": device, "mode": mode, "workload": workload, "batch": batch,
            "level": "idiomatic", "precision": precision, "steps": 4, "pass": "train",
            "samples_per_s": 4 * batch / t}
    if native is not None:
        info["bf16_native"] = native
    return bench(f"precision/{workload}/train/b{batch}/{device}",
                 f"test_mixed_precision[{workload}-b{batch}-{fw}-{precision}-{device}]", t, info)


def test_recorded_bf16_rows_appear_in_claims_1_and_2_labelled_emulated(tmp_path):
    """tests/data/recorded_api.json: bf16 autocast on a CPU without native bf16 (bf16_native false)."""
    claims = judge(Benches([load_run(RECORDED_API)]))
    c1, c2 = claims[0], claims[1]
    for c in (c1, c2):
        for workload in ("mlp-large", "cnn"):
            found = [f for f in c.findings if f.startswith(f"{workload} train b32 (bf16, emulated)")]
            assert len(found) == 1 and "not counted" in found[0] and "test_mixed_precision[" in found[0], c.number
        assert any(t.title.startswith("Mixed precision") for t in c.tables)
    # mlp-large: torch eager bf16 takes 37x its float32 time, Keras fit 1.15x (README, API levels)
    mlp = next(f for f in c2.findings if f.startswith("mlp-large"))
    assert "torch eager 36.9×" in mlp and "Keras fit (graph) 1.15×" in mlp and "the graph absorbs it better" in mlp
    # emulated rows are not counted: the verdicts equal those of the run without them
    doc = json.loads(RECORDED_API.read_text())
    doc["benchmarks"] = [b for b in doc["benchmarks"] if not b["group"].startswith("precision/")]
    without = judge(Benches([as_run(doc, tmp_path)]))
    for a, b in zip((c1, c2), without[:2]):
        assert (a.supports, a.contradicts, a.verdict) == (b.supports, b.contradicts, b.verdict)


def test_native_bf16_rows_are_counted_by_each_claims_rule(tmp_path):
    """Batches 1 and 256: at the smallest the eager loop should win, at the largest the graph; claim 2 counts
    the precision change's cost to the graph against the eager loop's."""
    rows = []
    for batch, (pt32, tf32, pt16, tf16) in {1: (1e-3, 3e-3, 1.2e-3, 3.3e-3), 256: (9e-3, 6e-3, 8e-3, 4e-3)}.items():
        rows += [precision_bench("torch", "float32", batch, pt32), precision_bench("tensorflow", "float32", batch, tf32),
                 precision_bench("torch", "bfloat16", batch, pt16), precision_bench("tensorflow", "bfloat16", batch, tf16)]
    c1, c2 = judge(Benches([as_run(_run_doc(rows), tmp_path)]))[:2]
    assert (c1.supports, c1.contradicts) == (2, 0) and c1.verdict == "supported"
    small = next(f for f in c1.findings if "b1 (bf16) (smallest)" in f)
    assert "nn.Module + optim (eager) (bf16) is 2.8× faster than Keras fit (bf16)" in small and "not counted" not in small
    large = next(f for f in c1.findings if "b256 (bf16) (largest)" in f)
    assert large.split(": ", 1)[1].startswith("Keras fit (bf16) is 2× faster")
    # b1: graph cost 1.1 vs eager 1.2 (ratio 0.917, outside noise: faster); b256: graph 0.667 vs eager 0.889 (0.75)
    assert (c2.supports, c2.contradicts) == (2, 0)
    assert all("(bf16)" in f and "emulated" not in f for f in c2.findings[1:])


def test_bf16_emulation_read_from_the_runs_cpu_flags_when_extra_info_lacks_it(tmp_path):
    rows = [precision_bench(fw, p, 32, t, native=None) for fw, p, t in
            (("torch", "float32", 1e-3), ("tensorflow", "float32", 2e-3), ("torch", "bfloat16", 9e-3),
             ("tensorflow", "bfloat16", 3e-3))]
    for flags, tag in ((["avx2", "fma"], "(bf16, emulated)"), (["avx2", "avx512_bf16"], "(bf16)")):
        machine = {**MACHINE, "cpu": {"flags": flags}}
        c2 = judge(Benches([as_run(_run_doc(rows, machine), tmp_path)]))[1]
        assert c2.findings[1].startswith(f"mlp-large train b32 {tag}:"), c2.findings
        assert ("not counted" in c2.findings[1]) == (tag == "(bf16, emulated)")


# --- the run's load status ------------------------------------------------------------------


def load_record(other_cores: float) -> dict:
    """A load record as benchruns/load.py writes it (disturbed above 0.10 of a core)."""
    from benchruns.load import judge

    rec = {"schema": 1, "available": True, "threshold_cores": 0.10, "benchmarks_s": 30.0, "other_cores": other_cores,
           "steal_cores": 0.0, "busiest_others": [{"pid": 4242, "name": "stress-ng", "cpu_s": 25.5}]}
    rec["disturbed"], rec["why"] = judge(rec)
    return rec


def run_with_load(tmp_path, name: str, load: dict | None) -> Path:
    doc = crafted_run(devices=("cpu",))
    if load is not None:
        doc["load"] = load
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("other, status, why", [
    (0.85, "disturbed", "other processes used 0.85 of a core while benchmarks ran (limit 0.10); busiest: stress-ng"),
    (0.02, "undisturbed", "other processes used 0.02 of a core while the benchmarks ran (limit 0.10)"),
    (None, "unrecorded", "the run has no load record"),
])
def test_report_opens_with_the_runs_load_status_and_why(tmp_path, other, status, why):
    from benchruns.report import render_html, render_md

    run = load_run(run_with_load(tmp_path, "r.json", None if other is None else load_record(other)))
    md = render_md([], [run], {}, []).splitlines()
    assert md[0].startswith("# ") and md[2].startswith(f"Load: This run was **{status}** (") and why in md[2]
    page = render_html([], [run], {}, [])
    top = page[page.index("</h1>"):page.index("<table>")]
    assert f"<p class='load {status}'>Load: This run was <b>{status}</b>" in top and why in top


def test_report_names_each_runs_load_and_warns_about_a_disturbed_one(tmp_path, capsys):
    from benchruns.report import main

    quiet = run_with_load(tmp_path, "20260101T000000Z_aaaaaaa.json", load_record(0.02))
    busy = run_with_load(tmp_path, "20260102T000000Z_bbbbbbb.json", load_record(0.85))
    assert main(["--run", str(quiet), "--run", str(busy), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "note: Run 20260102T000000Z_bbbbbbb.json was disturbed (other processes used 0.85" in err
    assert "aaaaaaa.json was" not in err  # a quiet run needs no warning
    md = (tmp_path / "out" / "report.md").read_text().splitlines()
    assert md[2].startswith("Load: Run 20260101T000000Z_aaaaaaa.json was **undisturbed**")
    assert md[3].startswith("Load: Run 20260102T000000Z_bbbbbbb.json was **disturbed**") and "rerun `make bench`" in md[3]


# --- measuring each API as it is used (claims 2, 5, 6, 7) --------------------------------------


def export_benches(device="cpu"):
    """torch.export's .module() 4x slower than eager, AOTInductor twice as fast, inference at b1/32/256,
    and AOTInductor's first call (a 15 s compile)."""
    out = []
    for batch in (1, 32, 256):
        eager = graph_time("torch", "eager", batch)
        for mode, t in (("export", 4 * eager), ("export-aoti", 0.5 * eager)):
            info = {"framework": "torch", "mode": mode, "device": device, "workload": "mlp-small",
                    "pass": "inference", "batch": batch, "threads": 2}
            out.append(bench(f"graph/mlp-small/inference/b{batch}/{device}",
                             f"test_steady_state[{device}-mlp-small-b{batch}-inference-torch-{mode}]", t, info))
    info = {"framework": "torch", "mode": "export-aoti", "device": device, "workload": "mlp-small",
            "pass": "inference", "batch": 32, "threads": 2, "compile_s": 15.0, "steady_step_s": 0.6e-4,
            "eager_step_s": 1.14e-4, "break_even_steps": 15.0 / 0.54e-4}
    out.append(bench(f"graph-first-call/mlp-small/inference/b32/{device}",
                     f"test_first_call[{device}-mlp-small-b32-inference-torch-export-aoti]", 15.0, info, rounds=1))
    return out


def test_claim_2_counts_aotinductor_and_shows_module_and_torchscript_apart(tmp_path):
    doc = crafted_run(devices=("cpu",))
    before = C.claim_2(Benches([as_run(doc, tmp_path, "before.json")]))
    assert any("AOTInductor" in n and "not in this run" in n for n in before.notes)
    doc["benchmarks"] += export_benches()
    c2 = C.claim_2(Benches([as_run(doc, tmp_path)]))
    rows = c2.tables[0].rows
    aoti = [r for r in rows if r[4] == "torch.export + AOTInductor"]
    module = [r for r in rows if r[4] == "torch.export (.module(), unoptimised graph)"]
    script = [r for r in rows if r[4] == "TorchScript (legacy)"]
    assert len(aoti) == len(module) == 3 and script
    assert all(r[-2] == "faster" and r[-1] == "yes" for r in aoti)
    assert all(r[-2] == "slower" and r[-1] == "no" for r in module) and all(r[-1] == "no" for r in script)
    assert (c2.supports, c2.contradicts) == (before.supports + 3, before.contradicts)
    assert any(".module()" in n and "AOTInductor" in n for n in c2.notes)
    assert any("TorchScript" in n and "deprecated" in n for n in c2.notes)
    first = next(t for t in c2.tables if t.title.startswith("Compile cost"))
    assert any(r[1].startswith("torch.export + AOTInductor") and r[2] == "15 s" for r in first.rows)


def end_to_end_benches(tf_share, torch_share, device="cpu"):
    """A model fed by each pipeline: TF's model 2.5x faster, each pipeline adding ``*_share`` to its step."""
    out = []
    for fw, mode, pipeline, step in (("tensorflow", "function", "tf.data", 0.036), ("torch", "compile", "DataLoader",
                                                                                    0.090)):
        share = tf_share if fw == "tensorflow" else torch_share
        info = {"framework": fw, "mode": mode, "pipeline": pipeline, "device": device, "workload": "cnn", "batch": 32,
                "samples_per_s": 32 / (step * share), "step_only_s": step, "fed_over_step_only": share}
        out.append(bench(f"pipeline-e2e/cnn-train/{device}", f"test_end_to_end[{device}-{fw}]", step * share, info))
    return out


@pytest.mark.parametrize("tf_share, outcome", [(1.06, "same"), (1.5, "slower")])
def test_claim_5_end_to_end_compares_the_pipelines_share_not_the_models(tmp_path, tf_share, outcome):
    doc = crafted_run(devices=("cpu",))
    doc["benchmarks"] = [b for b in doc["benchmarks"] if not b["group"].startswith("pipeline")]
    doc["benchmarks"] += end_to_end_benches(tf_share, 1.02)
    c5 = C.claim_5(Benches([as_run(doc, tmp_path)]))
    (finding,) = c5.findings
    assert "tf.data's cost on its training step" in finding and "not counted" in finding
    assert (c5.supports, c5.contradicts) == ((1, 0) if outcome == "same" else (0, 1))


def test_claim_6_counts_only_device_placement(tmp_path):
    """A CPU run has host-only interop (host-ingest): shown, not counted, and the claim is not measured."""
    c6 = C.claim_6(Benches([as_run(crafted_run(devices=("cpu",)), tmp_path)]))
    assert c6.verdict == C.NOT_MEASURED and "Device placement is not in this run" in c6.summary
    assert any("host-ingest" in f and "not counted" in f for f in c6.findings)
