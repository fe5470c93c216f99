"""The harness (conftest.py): fencing, option errors, the grid, machine key and saving."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import conftest
from benchruns.machine import machine_key
from benchruns.storage import store_run

ROOT = Path(__file__).resolve().parents[1]
FENCE_SECONDS = 0.01


def test_fence_runs_inside_the_timed_region(measure, benchmark):
    """A fence that takes 10 ms must show in every round: it is timed, not run after the clock."""
    calls = []

    def slow_fence(out):
        calls.append(out)
        time.sleep(FENCE_SECONDS)

    measure(lambda: "result", framework="numpy", device="cpu", group="harness/fence", fence=slow_fence)
    if benchmark.stats is None:
        pytest.skip("benchmark timing is disabled in this run")
    assert calls and all(out == "result" for out in calls), "the fence must receive the step's output"
    assert benchmark.stats.stats.min >= FENCE_SECONDS


def test_torch_cuda_fence_synchronises(monkeypatch):
    synced = []
    fake_torch = SimpleNamespace(cuda=SimpleNamespace(synchronize=lambda: synced.append(True)))
    monkeypatch.setitem(conftest._frameworks, "torch", fake_torch)
    conftest.fence_for("torch", "cuda")(None)
    assert synced == [True]


def test_tensorflow_cpu_fence_materialises_outputs():
    tf = pytest.importorskip("tensorflow")
    touched = []

    class Output:
        def numpy(self):
            touched.append(self)

    outputs = (Output(), [Output(), 3])
    conftest.fence_for("tensorflow", "cpu")(outputs)
    assert len(touched) == 2
    conftest.fence_for("tensorflow", "cpu")(tf.constant([1.0]))  # a real tensor works too


def test_measure_records_throughput_and_fraction_of_ideal(measure, benchmark, ideals):
    ideals["harness/ideal"] = 1e-9
    measure(lambda: sum(range(100)), framework="numpy", device="cpu", group="harness/measure",
            samples=100, nbytes=800, ideal="harness/ideal", mode="sum", batch=100)
    if benchmark.stats is None:
        pytest.skip("benchmark timing is disabled in this run")
    info = benchmark.extra_info
    median = benchmark.stats.stats.median
    assert info["samples_per_s"] == pytest.approx(100 / median)
    assert info["gbps"] == pytest.approx(800 / median / 1e9)
    assert info["fraction_of_ideal"] == pytest.approx(1e-9 / median)
    assert info["framework"] == "numpy" and info["threads"] >= 1 and info["mode"] == "sum"


@pytest.mark.parametrize(
    "option, named",
    [
        (["--device=tpu"], "--device"),
        (["--device=cpu,gpu"], "--device"),
        (["--profile=huge"], "--profile"),
        (["--threads=0"], "--threads"),
        (["--threads=many"], "--threads"),
    ],
)
def test_bad_option_is_one_line_and_exit_2(option, named):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "benches", "-p", "no:cacheprovider", "--collect-only", "-q", *option],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    output = (proc.stdout + proc.stderr).strip()
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "usage error" in line]
    assert len(lines) == 1 and named in lines[0], output
    assert "valid values" in lines[0] or "whole number" in lines[0]


def test_grid_unions_specs_and_pairs_framework_with_mode(pytester_grid):
    ids = pytester_grid(
        {"smoke": [dict(workload=["a", "b"], batch=[1], mode={"torch": ["eager"], "tensorflow": ["xla"]}),
                   dict(workload=["a"], batch=[8], mode={"torch": ["eager"]})]}
    )
    assert ids == ["a-b1-torch-eager", "a-b1-tensorflow-xla", "b-b1-torch-eager", "b-b1-tensorflow-xla",
                   "a-b8-torch-eager"]


@pytest.fixture
def pytester_grid():
    """Run conftest.pytest_generate_tests on a fake metafunc and return the ids it produced."""

    def run(grid):
        calls = []
        metafunc = SimpleNamespace(
            config=SimpleNamespace(tfpt={"profile": "smoke", "devices": ["cpu"]}),
            fixturenames=["workload", "batch", "framework", "mode"],
            definition=SimpleNamespace(get_closest_marker=lambda name: SimpleNamespace(args=(grid,))),
            module=SimpleNamespace(),
            function=SimpleNamespace(__name__="test_fake"),
            parametrize=lambda names, rows, ids=None: calls.append((names, rows, ids)),
        )
        conftest.pytest_generate_tests(metafunc)
        (names, rows, ids), = calls
        assert names == ("workload", "batch", "framework", "mode")
        return ids

    return run


MACHINE = {
    "cpu_model": "AMD EPYC", "cpu_count": 2, "gpu_models": [], "gpu_driver": None,
    "torch_version": "2.13.0+cpu", "tensorflow_version": "2.21.0", "threads": 2,
}


def test_machine_key_is_stable_and_ignores_volatile_fields():
    noisy = dict(MACHINE, cpu={"hz_actual": [2.9e9, 0]}, ram_free=123)
    assert machine_key(MACHINE) == machine_key(noisy)
    assert machine_key(MACHINE).startswith("amd-epyc-2c-cpu-")


@pytest.mark.parametrize("field, value", [("torch_version", "2.14.1"), ("threads", 1),
                                          ("gpu_models", ["NVIDIA H100"]), ("gpu_driver", "580.1")])
def test_machine_key_changes_with_what_changes_timings(field, value):
    assert machine_key(MACHINE) != machine_key(dict(MACHINE, **{field: value}))


def test_store_run_moves_atomically_and_never_overwrites(tmp_path):
    results = tmp_path / "results"
    incoming = results / ".incoming"
    incoming.mkdir(parents=True)
    run = {"machine_info": dict(MACHINE), "commit_info": {"id": "abcdef123456", "dirty": False}, "benchmarks": []}
    saved = []
    for i in range(2):  # two runs in the same second keep both files
        path = incoming / f"{i}.json"
        path.write_text(json.dumps(run))
        saved.append(store_run(path, results))
    assert saved[0] != saved[1] and all(p.exists() for p in saved)
    assert saved[0].parent.name == machine_key(MACHINE)
    assert saved[0].name.endswith("_abcdef1.json")
    assert not list(incoming.iterdir())


@pytest.mark.parametrize("outcome", [pytest.skip.Exception("skipped mid-timing"), pytest.fail.Exception("timeout")])
def test_unfinished_case_is_kept_out_of_the_saved_run(outcome):
    """A skip or timeout inside the timed call must not leave a round-less result in the JSON."""
    bench = SimpleNamespace(has_error=False)
    call = conftest.pytest_runtest_call(SimpleNamespace(funcargs={"benchmark": bench}))
    next(call)
    with pytest.raises(type(outcome)):
        call.throw(outcome)
    assert bench.has_error


@pytest.mark.parametrize("exitstatus, kept", [(pytest.ExitCode.OK, True), (pytest.ExitCode.TESTS_FAILED, True),
                                              (pytest.ExitCode.INTERRUPTED, False)])
def test_finished_runs_are_saved_and_interrupted_ones_dropped(tmp_path, exitstatus, kept):
    results = tmp_path / "results"
    incoming = results / ".incoming" / "run.json"
    incoming.parent.mkdir(parents=True)
    incoming.write_text(json.dumps({"machine_info": dict(MACHINE), "commit_info": {}, "benchmarks": []}))
    options = {"results_dir": str(results)}
    config = SimpleNamespace(tfpt={"incoming": incoming}, getoption=options.__getitem__,
                             pluginmanager=SimpleNamespace(get_plugin=lambda name: None))
    hook = conftest.pytest_sessionfinish(SimpleNamespace(config=config), exitstatus)
    next(hook)
    with pytest.raises(StopIteration):
        next(hook)
    assert not incoming.exists()
    assert len(list(results.glob("*/*.json"))) == (1 if kept else 0)


def test_out_of_memory_on_the_gpu_skips_with_the_reason(monkeypatch):
    class OutOfMemoryError(RuntimeError):
        pass

    fake_torch = SimpleNamespace(cuda=SimpleNamespace(OutOfMemoryError=OutOfMemoryError, is_available=lambda: False))
    monkeypatch.setitem(conftest._frameworks, "torch", fake_torch)
    bench = SimpleNamespace(has_error=False)
    call = conftest.pytest_runtest_call(SimpleNamespace(funcargs={"benchmark": bench}))
    next(call)
    with pytest.raises(pytest.skip.Exception, match="out of memory: CUDA out of memory"):
        call.throw(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert bench.has_error  # and the case stays out of the saved run
