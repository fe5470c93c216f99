"""Fidelity of the device-transfer benchmark, checked on any machine, GPU or not.

1. Every CUDA case is fenced: each benchmark of benches/test_device_transfer.py that
   takes a ``device`` runs with device="cuda" against recording stand-ins for torch and
   TensorFlow, through the harness's real ``measure`` and ``fence_for``, with a fake
   ``benchmark`` that keeps what the timed callable did. The callable must end with the
   framework's device synchronisation, after the copy. A deliberately unfenced case is
   caught by the same check, so the check can fail.
2. DLPack shares memory: a write through torch is read back through TensorFlow, in both
   directions, and a real copy is told apart.
3. Host ingest records zero_copy as it is: from_numpy and as_tensor share, tensor copies.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import types
from pathlib import Path

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import conftest
from benches import test_device_transfer as bench
from benches import transfer_cases as cases

SYNC = {"torch": "torch.cuda.synchronize", "tensorflow": "tf.test.experimental.sync_devices"}


class Recorder:
    """Stands in for a framework module or a tensor: every call is logged by its dotted name."""

    def __init__(self, log: list, name: str):
        self._log, self._name = log, name

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr.endswith("Error"):  # the harness's out-of-memory check does isinstance on these
            return type(attr, (Exception,), {})
        return Recorder(self._log, f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        self._log.append(self._name)
        return Recorder(self._log, "tensor")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __matmul__(self, other):
        self._log.append("tensor.__matmul__")
        return Recorder(self._log, "tensor")

    def __getitem__(self, key):
        return Recorder(self._log, "tensor")

    def __setitem__(self, key, value):
        self._log.append("tensor.__setitem__")

    def __mod__(self, other):
        return 0

    def __contains__(self, item):
        return True

    def __float__(self):
        return cases.SENTINEL  # what shares_memory expects to read back


class FakeBenchmark(BenchmarkFixture):
    """pytest-benchmark's fixture, reduced to: call the timed callable once, keep its log.

    A subclass only because pytest-benchmark checks the type of whatever is named
    ``benchmark``; none of the parent's machinery runs."""

    def __init__(self):  # noqa: the parent's __init__ is deliberately not called
        self.extra_info, self.group, self.stats = {}, None, None
        self.log: list = []
        self.timed: list[list[str]] = []

    def __call__(self, fn):
        start = len(self.log)
        out = fn()
        self.timed.append(self.log[start:])
        return out


@pytest.fixture
def benchmark():
    """Overrides pytest-benchmark's fixture, so the harness's ``measure`` hands us the callable."""
    return FakeBenchmark()


class Unchecked(cases.Prepared):
    """A Prepared whose data check is off: stand-in tensors hold no data to compare."""

    def __init__(self, fn, check=None, info=None):
        super().__init__(fn, lambda out: None, info or {})


@pytest.fixture
def fake_frameworks(benchmark, monkeypatch):
    log = benchmark.log
    fakes = {"torch": Recorder(log, "torch"), "tensorflow": Recorder(log, "tf")}
    for name, fake in fakes.items():
        monkeypatch.setitem(conftest._frameworks, name, fake)  # what fence_for synchronises
    monkeypatch.setattr(cases, "torch_module", lambda: fakes["torch"])
    monkeypatch.setattr(cases, "tf_module", lambda: fakes["tensorflow"])
    monkeypatch.setattr(cases, "Prepared", Unchecked)
    monkeypatch.setattr(cases, "_compute_reps", {})  # calibration against fakes must not leak
    return fakes


def fence_problem(events: list[str], framework: str) -> str | None:
    """None when the timed events are work followed by the device synchronisation."""
    sync = SYNC[framework]
    if not events or events[-1] != sync:
        return f"the timed callable does not end with {sync}: {events[-4:]}"
    if not [e for e in events if e != sync]:
        return "the timed callable synchronises but does no work"
    return None


def grid_rows(fn, profile="full"):
    """The (name -> value) rows a bench function runs in ``profile``, as the harness builds them."""
    marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "grid"]
    grid = marks[0].args[0] if marks else bench.GRID
    rows = []
    for spec in grid[profile]:
        axes = []
        for name, values in spec.items():
            if name == "mode" and isinstance(values, dict):
                axes.append([dict(framework=f, mode=m) for f, modes in values.items() for m in modes])
            else:
                axes.append([{name: v} for v in values])
        rows += [dict(kv for part in combo for kv in part.items()) for combo in itertools.product(*axes)]
    return rows


def device_benches():
    return {name: fn for name, fn in vars(bench).items()
            if name.startswith("test_") and "device" in inspect.signature(fn).parameters}


TIMING_OFF = types.SimpleNamespace(config=types.SimpleNamespace(getoption=lambda name: True))


def run_bench(fn, measure, row):
    smallest = min(r["size"] for r in grid_rows(fn))
    given = {**row, **dict(measure=measure, ideals={}, request=TIMING_OFF, device="cuda", size=smallest)}
    fn(**{name: given[name] for name in inspect.signature(fn).parameters})


def test_device_benches_are_found():
    assert {"test_dlpack", "test_cuda_transfer", "test_overlap"} <= set(device_benches())


@pytest.mark.parametrize("name", sorted(device_benches()))
def test_every_cuda_case_is_fenced_after_its_copy(name, measure, benchmark, fake_frameworks):
    fn = device_benches()[name]
    seen = set()
    for row in grid_rows(fn):
        key = (row.get("framework"), row.get("mode"))
        if key in seen:
            continue
        seen.add(key)
        before = len(benchmark.timed)
        run_bench(fn, measure, row)
        assert len(benchmark.timed) == before + 1, f"{name} {key}: not timed through measure exactly once"
        problem = fence_problem(benchmark.timed[-1], row["framework"])
        assert problem is None, f"{name} {key}: {problem}"
    assert seen


def test_the_fence_check_catches_an_unfenced_copy(measure, benchmark, fake_frameworks):
    torch = fake_frameworks["torch"]
    src = torch.empty(1)
    measure(lambda: src.to("cuda", non_blocking=True), framework="torch", device="cuda", group="g",
            fence=lambda out: None)
    assert fence_problem(benchmark.timed[-1], "torch") is not None
    measure(lambda: src.to("cuda", non_blocking=True), framework="torch", device="cuda", group="g")
    assert benchmark.timed[-1] == ["tensor.to", "torch.cuda.synchronize"]
    assert fence_problem(benchmark.timed[-1], "torch") is None


def test_the_bench_times_only_through_measure():
    """No bench asks for pytest-benchmark's fixture directly (that would skip the fence)."""
    tree = ast.parse(Path(bench.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            args = {a.arg for a in node.args.args}
            assert "benchmark" not in args and "measure" in args, node.name


# --------------------------------------------------------------------------- DLPack, real frameworks


@pytest.fixture
def frameworks():
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")
    return torch, tf


@pytest.mark.parametrize("mode", list(cases.DLPACK))
def test_dlpack_shares_memory_on_cpu(frameworks, mode):
    torch, tf = frameworks
    case = cases.dlpack_exchange(mode, 64 * cases.KiB, "cpu")  # raises if a write is not seen
    out = case.fn()
    producer = cases.DLPACK[mode][0]
    if producer == "tensorflow":
        torch_tensor, tf_tensor = out, None
        src_address = cases.address(out)
        again = case.fn()  # a second exchange lands on the same buffer
        assert cases.address(again) == src_address
    else:
        tf_tensor = out
        torch_tensor = torch.from_dlpack(out)
        # Write through torch, read through TensorFlow's own op.
        old = torch_tensor.view(-1)[5].item()
        torch_tensor.view(-1)[5] = -7.0
        assert float(tf.reshape(tf_tensor, [-1])[5].numpy()) == -7.0
        torch_tensor.view(-1)[5] = old
    assert case.info["zero_copy"] is True
    case.check(case.fn())


def test_shares_memory_tells_a_copy_apart(frameworks):
    torch, tf = frameworks
    t = torch.arange(1024, dtype=torch.float32)
    copied = tf.constant(t.numpy())  # TensorFlow copies a numpy array
    shared = tf.experimental.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(t))
    assert not cases.shares_memory(torch, tf, t, copied, "cpu")
    assert cases.shares_memory(torch, tf, t, shared, "cpu")
    assert t[0].item() == 0.0  # the probe restores what it wrote


@pytest.mark.parametrize("mode, zero_copy", [("from_numpy", True), ("as_tensor", True), ("tensor", False)])
def test_torch_ingest_records_zero_copy_as_it_is(mode, zero_copy):
    pytest.importorskip("torch")
    case = cases.host_ingest("torch", mode, 4 * cases.KiB)
    assert case.info["zero_copy"] is zero_copy
    case.check(case.fn())


def test_host_arrays_are_touched_and_aligned_values():
    a = cases.host_array(8 * cases.KiB)
    assert a.dtype == np.float32 and a.nbytes == 8 * cases.KiB
    assert len(np.unique(a)) == 1024  # not one repeated value: a wrong copy shows


def test_size_labels():
    assert [cases.size_label(n) for n in (4096, 65536, 4 << 20, 256 << 20)] == ["4KiB", "64KiB", "4MiB", "256MiB"]
