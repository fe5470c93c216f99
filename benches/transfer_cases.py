"""The cases of the device-transfer benchmark, built as plain callables.

Every case is built here and timed by ``benches/test_device_transfer.py`` through the
harness's ``measure``, which appends the device fence to the callable. Keeping the
builders apart from the timing lets ``tests/test_transfer.py`` run each CUDA case with
recording stand-ins for torch and TensorFlow on a CPU-only machine and check that the
callable the clock sees ends with the device synchronisation, after the copy.

Frameworks are reached through ``torch_module()`` and ``tf_module()`` (imported on
first use, never at import time: the GPU box runs torch without TensorFlow).

Run ``python -m benches.transfer_cases`` to compare the suite's reference copy figure
(numpy.copyto timed by pytest-benchmark) with a plain ``timeit`` of the same call.
"""

from __future__ import annotations

import statistics
import time
import timeit
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

KiB, MiB = 1 << 10, 1 << 20
ITEMSIZE = 4  # float32
SENTINEL = 42.0
TF_ALIGNMENT = 64  # bytes; what TensorFlow's kernels require of a tensor's buffer
# Side length of the square matmul that stands for "a compute kernel" in the overlap
# case; its repeat count is calibrated so compute takes about as long as the copy.
OVERLAP_MATMUL = 2048
MAX_COMPUTE_REPS = 256


def torch_module():
    import torch

    return torch


def tf_module():
    return pytest.importorskip("tensorflow", reason="tensorflow is not importable")


def size_label(nbytes: int) -> str:
    for unit, scale in (("MiB", MiB), ("KiB", KiB)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale}{unit}"
    return f"{nbytes}B"


def group(direction: str, device: str, nbytes: int) -> str:
    return f"transfer/{direction}/{device}/{size_label(nbytes)}"


def host_array(nbytes: int) -> np.ndarray:
    """A float32 array whose pages are all touched (no lazy zero pages to flatter a copy)."""
    a = np.empty(nbytes // ITEMSIZE, dtype=np.float32)
    row = min(a.size, 1024)  # every size here is a multiple of 4 KiB
    a.reshape(-1, row)[:] = np.arange(row, dtype=np.float32)  # values to compare, not all equal
    return a


@dataclass
class Prepared:
    """A case ready to time: ``fn`` is the timed call, ``check(out)`` runs after timing."""

    fn: Callable[[], object]
    check: Callable[[object], None] = lambda out: None
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- the reference


def copyto_callable(nbytes: int) -> tuple[Callable[[], None], np.ndarray, np.ndarray]:
    """numpy.copyto into a preallocated, touched buffer: the machine's copy limit."""
    src = host_array(nbytes)
    dst = np.ones_like(src)
    return (lambda: np.copyto(dst, src)), src, dst


def plain_copy_seconds(nbytes: int, budget_s: float = 0.3) -> float:
    """Median seconds of one numpy.copyto timed by ``timeit`` alone, outside pytest."""
    fn, _, _ = copyto_callable(nbytes)
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()  # loops per repeat so one repeat takes >= 0.2 s
    number = max(1, number // 10)  # ... then about 20 ms, like a benchmark round
    timer.repeat(repeat=3, number=number)  # warm-up
    repeats = max(10, int(budget_s / max(timer.timeit(number), 1e-9)))
    return statistics.median(t / number for t in timer.repeat(repeat=min(repeats, 200), number=number))


# Reference figures taken with plain_copy_seconds because the reference case itself was
# not part of this run (e.g. ``-m cuda``); cases record that their fraction came from it.
FALLBACK_REFERENCES: set[str] = set()


def reference_key(nbytes: int) -> str:
    return f"copy/{nbytes}"


def ensure_reference(ideals: dict, nbytes: int, enabled: bool = True) -> str:
    """The ideal key for ``nbytes``; if no reference was measured in this run, time one here."""
    key = reference_key(nbytes)
    if enabled and key not in ideals:
        ideals[key] = plain_copy_seconds(nbytes)
        FALLBACK_REFERENCES.add(key)
    return key


# --------------------------------------------------------------------------- host side

# (framework, mode) -> function of the numpy array, the call a user writes.
INGEST = {
    ("torch", "from_numpy"): lambda torch, tf, a: torch.from_numpy(a),
    ("torch", "as_tensor"): lambda torch, tf, a: torch.as_tensor(a),
    ("torch", "tensor"): lambda torch, tf, a: torch.tensor(a),
    ("tensorflow", "convert_to_tensor"): lambda torch, tf, a: tf.convert_to_tensor(a),
    ("tensorflow", "constant"): lambda torch, tf, a: tf.constant(a),
}
EXPORT = {
    ("torch", "numpy"): lambda torch, tf, t: t.numpy(),
    ("tensorflow", "numpy"): lambda torch, tf, t: t.numpy(),
}


def address(x) -> int | None:
    """Where ``x``'s data starts in memory: numpy, torch, or TensorFlow (via DLPack)."""
    if isinstance(x, np.ndarray):
        return x.__array_interface__["data"][0]
    if hasattr(x, "data_ptr"):
        return x.data_ptr()
    try:
        return torch_module().from_dlpack(x).data_ptr()
    except ImportError:
        return None


def host_ingest(framework: str, mode: str, nbytes: int) -> Prepared:
    torch = torch_module() if framework == "torch" else None
    tf = tf_module() if framework == "tensorflow" else None
    call = INGEST[(framework, mode)]
    a = host_array(nbytes)
    out = call(torch, tf, a)
    zero_copy = address(out) == address(a)

    def check(out):
        assert np.array_equal(np.asarray(out), a), f"{framework} {mode}: the tensor differs from its array"

    return Prepared(lambda: call(torch, tf, a), check, dict(zero_copy=zero_copy))


def host_export(framework: str, mode: str, nbytes: int) -> Prepared:
    torch = torch_module() if framework == "torch" else None
    tf = tf_module() if framework == "tensorflow" else None
    a = host_array(nbytes)
    t = torch.from_numpy(a.copy()) if framework == "torch" else tf.constant(a)
    call = EXPORT[(framework, mode)]
    zero_copy = address(call(torch, tf, t)) == address(t)

    def check(out):
        assert np.array_equal(out, a), f"{framework} {mode}: the array differs from its tensor"

    return Prepared(lambda: call(torch, tf, t), check, dict(zero_copy=zero_copy))


# --------------------------------------------------------------------------- DLPack

# mode -> (producer framework, consumer framework); ``framework`` of a case is the consumer.
DLPACK = {
    "tf->torch(capsule)": ("tensorflow", "torch"),
    "tf->torch(protocol)": ("tensorflow", "torch"),
    "torch->tf(capsule)": ("torch", "tensorflow"),
}


def tf_device(device: str) -> str:
    return "/GPU:0" if device == "cuda" else "/CPU:0"


def dlpack_exchange(mode: str, nbytes: int, device: str) -> Prepared:
    """Hand a tensor from one framework to the other through DLPack, on one device."""
    torch, tf = torch_module(), tf_module()
    a = host_array(nbytes)
    if DLPACK[mode][0] == "tensorflow":
        with tf.device(tf_device(device)):
            src = tf.identity(tf.constant(a))
        if mode == "tf->torch(capsule)":
            fn = lambda: torch.utils.dlpack.from_dlpack(tf.experimental.dlpack.to_dlpack(src))  # noqa: E731
        else:
            fn = lambda: torch.from_dlpack(src)  # noqa: E731
        torch_side = lambda out: out  # noqa: E731
        tf_side = lambda out: src  # noqa: E731
    else:
        # A torch allocation (64-byte aligned), not from_numpy: TensorFlow accepts an
        # unaligned DLPack buffer and then aborts the process (CHECK IsAligned, TF 2.21)
        # in the first op that reads it; numpy only aligns to 16 bytes.
        src = torch.from_numpy(a).to(device, copy=True)
        if src.data_ptr() % TF_ALIGNMENT:
            raise AssertionError(f"torch gave a buffer at {src.data_ptr():#x}, not {TF_ALIGNMENT}-byte aligned")
        fn = lambda: tf.experimental.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(src))  # noqa: E731
        torch_side = lambda out: src  # noqa: E731
        tf_side = lambda out: out  # noqa: E731
    if device == "cuda":
        torch.cuda.synchronize()
        tf.test.experimental.sync_devices()
    out = fn()
    if not shares_memory(torch, tf, torch_side(out), tf_side(out), device):
        raise AssertionError(f"DLPack {mode} on {device} copied the data: a write through torch is not seen by TensorFlow")

    def check(out):
        assert np.array_equal(torch_side(out).cpu().numpy(), a), f"DLPack {mode}: the data differs"

    return Prepared(fn, check, dict(zero_copy=True))


def shares_memory(torch, tf, torch_tensor, tf_tensor, device: str) -> bool:
    """Write through torch, read through TensorFlow: True when both see one buffer."""
    flat = torch_tensor.view(-1)
    old = flat[0].item()
    flat[0] = SENTINEL
    if device == "cuda":
        torch.cuda.synchronize()
    seen = float(tf.reshape(tf_tensor, [-1])[0].numpy())
    flat[0] = old
    if device == "cuda":
        torch.cuda.synchronize()
    return seen == SENTINEL


# --------------------------------------------------------------------------- CUDA: torch

# mode -> (direction, memory kind, blocking); the builder is TORCH_CUDA_BUILD[mode].
TORCH_CUDA = {
    "to(pageable)": ("h2d", "pageable", True),
    "to(pinned)": ("h2d", "pinned", True),
    "to(pinned,non_blocking)": ("h2d", "pinned", False),
    "to(cpu)": ("d2h", "pageable", True),
    "to(cpu,non_blocking)": ("d2h", "pinned", False),
    "copy_(pageable)": ("d2h", "pageable", True),
    "copy_(pinned)": ("d2h", "pinned", True),
    "copy_(pinned,non_blocking)": ("d2h", "pinned", False),
    "copy_(device)": ("d2d", "device", True),
    "clone": ("d2d", "device", True),
}


def torch_cuda(mode: str, nbytes: int, device: str = "cuda") -> Prepared:
    """One torch copy between host and device; ``fn`` only queues it, the fence waits."""
    torch = torch_module()
    direction, memory, blocking = TORCH_CUDA[mode]
    non_blocking = not blocking
    n = nbytes // ITEMSIZE
    host = torch.from_numpy(host_array(nbytes))
    if direction == "h2d":
        src = host.pin_memory() if memory == "pinned" else host
        fn = lambda: src.to(device, non_blocking=non_blocking)  # noqa: E731
    else:
        src = host.to(device)
        if mode.startswith("to("):
            # torch allocates the destination (pinned when non_blocking): part of the cost.
            fn = lambda: src.to("cpu", non_blocking=non_blocking)  # noqa: E731
        elif mode == "clone":
            fn = lambda: src.clone()  # noqa: E731
        else:
            where = dict(device=device) if direction == "d2d" else dict(pin_memory=memory == "pinned")
            dst = torch.zeros(n, dtype=torch.float32, **where)
            fn = lambda: dst.copy_(src, non_blocking=non_blocking)  # noqa: E731
    torch.cuda.synchronize()

    def check(out):
        assert torch.equal(out.cpu(), host), f"torch {mode}: the copy differs from its source"

    return Prepared(fn, check)


# --------------------------------------------------------------------------- CUDA: TensorFlow

TF_CUDA = {
    "identity(/GPU:0)": ("h2d", "pageable", True),
    "numpy": ("d2h", "pageable", True),
    "DeepCopy": ("d2d", "device", True),
}


def tf_cuda(mode: str, nbytes: int, device: str = "cuda") -> Prepared:
    """TensorFlow moves tensors by placement: identity under a GPU scope, .numpy() back."""
    tf = tf_module()
    a = host_array(nbytes)
    with tf.device("/CPU:0"):
        host = tf.constant(a)
    with tf.device("/GPU:0"):
        on_gpu = tf.identity(host)
    if mode == "identity(/GPU:0)":
        def fn():
            with tf.device("/GPU:0"):
                return tf.identity(host)
    elif mode == "numpy":
        fn = lambda: on_gpu.numpy()  # noqa: E731
    else:
        def fn():
            with tf.device("/GPU:0"):
                return tf.raw_ops.DeepCopy(x=on_gpu)
    tf.test.experimental.sync_devices()

    def check(out):
        if mode != "numpy":
            assert "GPU" in out.device, f"tensorflow {mode} ran on {out.device}, not the GPU"
            out = out.numpy()
        assert np.array_equal(out, a), f"tensorflow {mode}: the copy differs from its source"

    return Prepared(fn, check)


# --------------------------------------------------------------------------- CUDA: overlap

# mode -> (memory kind of the host batch, copy on a side stream while computing)
OVERLAP = {
    "serial(pageable)": ("pageable", False),
    "serial(pinned)": ("pinned", False),
    "overlap(pageable)": ("pageable", True),
    "overlap(pinned)": ("pinned", True),
}
_compute_reps: dict[int, dict] = {}


def _fenced_seconds(fn, sync, repeats: int = 5) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def overlap_calibration(torch, nbytes: int, device: str) -> dict:
    """Compute repeats so compute takes about as long as a pinned copy; same for every mode."""
    if nbytes not in _compute_reps:
        pinned = torch.zeros(nbytes // ITEMSIZE, dtype=torch.float32).pin_memory()
        dst = torch.empty(nbytes // ITEMSIZE, dtype=torch.float32, device=device)
        m = torch.rand(OVERLAP_MATMUL, OVERLAP_MATMUL, device=device)
        sync = torch.cuda.synchronize
        copy_s = _fenced_seconds(lambda: dst.copy_(pinned, non_blocking=True), sync)
        matmul_s = _fenced_seconds(lambda: m @ m, sync)
        reps = int(min(MAX_COMPUTE_REPS, max(1, round(copy_s / max(matmul_s, 1e-9)))))
        _compute_reps[nbytes] = dict(compute_reps=reps, copy_s=copy_s, compute_s=reps * matmul_s,
                                     overlap_bound_s=max(copy_s, reps * matmul_s),
                                     serial_estimate_s=copy_s + reps * matmul_s)
    return _compute_reps[nbytes]


def overlap_step(mode: str, nbytes: int, device: str = "cuda") -> Prepared:
    """One training-loop step: bring the next batch to the device and run a compute kernel.

    Serial copies, then computes. Overlap queues the copy on a side stream and the
    compute on the current one, so the copy engine and the SMs work at once; that needs
    pinned memory (a copy from pageable memory is staged by the CPU and returns late).
    """
    torch = torch_module()
    memory, side_stream = OVERLAP[mode]
    calibration = overlap_calibration(torch, nbytes, device)
    reps = calibration["compute_reps"]
    host = torch.from_numpy(host_array(nbytes))
    if memory == "pinned":
        host = host.pin_memory()
    next_batch = torch.empty(nbytes // ITEMSIZE, dtype=torch.float32, device=device)
    m = torch.rand(OVERLAP_MATMUL, OVERLAP_MATMUL, device=device)
    side = torch.cuda.Stream(device=device) if side_stream else None

    def compute():
        y = m
        for _ in range(reps):
            y = m @ m
        return y

    if side is None:
        def fn():
            next_batch.copy_(host)
            return compute(), next_batch
    else:
        def fn():
            current = torch.cuda.current_stream(device)
            side.wait_stream(current)  # nobody still reads next_batch
            with torch.cuda.stream(side):
                next_batch.copy_(host, non_blocking=True)
            y = compute()
            current.wait_stream(side)  # the batch is there before the next step uses it
            return y, next_batch
    torch.cuda.synchronize()

    def check(out):
        assert torch.equal(out[1].cpu(), host.cpu()), f"overlap {mode}: the batch differs from its source"

    return Prepared(fn, check, dict(calibration))


# --------------------------------------------------------------------------- agreement script


def reference_agreement(sizes=(64 * KiB, 4 * MiB, 64 * MiB)) -> list[tuple[int, float, float]]:
    """(nbytes, pytest-benchmark median, timeit median) for each size, in seconds."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ref.json"
        subprocess.run(
            [sys.executable, "-m", "pytest", "benches/test_device_transfer.py::test_reference", "-q",
             "--profile=full", "--device=cpu", "-p", "no:cacheprovider", f"--benchmark-json={out}"],
            cwd=root, check=True, stdout=subprocess.DEVNULL)
        bench = {b["extra_info"]["bytes"]: b["stats"]["median"] for b in json.loads(out.read_text())["benchmarks"]}
    return [(n, bench[n], plain_copy_seconds(n)) for n in sizes]


def peer_rows(figures) -> list[list[str]]:
    """The peer-harness table's rows from ``reference_agreement()``'s (nbytes, bench s, timeit s)."""
    from benchruns.compare import fmt_time

    return [[size_label(n), fmt_time(bench_s), fmt_time(plain_s), f"{n / bench_s / 1e9:.2f}",
             f"{plain_s / bench_s:.3f}"] for n, bench_s, plain_s in figures]


def main(argv=None) -> int:
    """Print the agreement table; ``--out FILE`` also writes it as a docs data table (benchruns/studies/docs/)."""
    import subprocess
    import sys
    from pathlib import Path

    from benchruns.studies import figures as fig
    from benchruns import load as machine_load
    from benchruns.argparsing import Parser
    from benchruns.runs import BadInput

    argv = list(sys.argv[1:] if argv is None else argv)
    p = Parser(prog="python -m benches.transfer_cases",
               description="numpy.copyto at 64 KiB, 4 MiB and 64 MiB timed through the suite (pytest-benchmark, "
               "full profile) and by a plain timeit outside pytest, with their ratio.")
    p.add_argument("--out", help="also write the table as a docs data file (table data=FILE), with its source, "
                   "machine, commit and the load measured around the timings")
    p.add_argument("--allow-dirty", action="store_true",
                   help="with --out: measure a checkout with modified tracked files; the commit reads <sha>-dirty")
    args = p.parse_args(argv)
    prog = "python -m benches.transfer_cases"
    try:
        sha = fig.commit(fig.ROOT, args.allow_dirty) if args.out else None
    except BadInput as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    meter = machine_load.LoadMeter()
    meter.open()
    try:
        figures = reference_agreement()
    except subprocess.CalledProcessError as exc:
        print(f"{prog}: the pytest-benchmark run failed ({exc})", file=sys.stderr)
        return 1
    finally:
        meter.close()
    print(f"{'size':>8} {'pytest-benchmark':>17} {'timeit':>10} {'GB/s (bench)':>13} {'timeit/bench':>13}")
    for n, bench_s, plain_s in figures:
        print(f"{size_label(n):>8} {bench_s * 1e6:>15.1f}us {plain_s * 1e6:>8.1f}us {n / bench_s / 1e9:>13.2f} "
              f"{plain_s / bench_s:>13.3f}")
    status, why, rec = fig.load_of(meter)
    print(f"machine load: {status}" + (f" ({why})" if why else ""))
    if args.out:
        title = ("numpy.copyto into a preallocated buffer (the suite's copy reference), timed through the suite "
                 "(pytest-benchmark, full profile, its median) and by a plain `timeit` outside pytest (median of "
                 "repeats of about 20 ms); a ratio near 1 means the harness adds nothing to the figure.")
        doc = fig.table_doc(fig.source_text("python -m benches.transfer_cases", argv), fig.this_machine(), sha,
                            status, ["size", "pytest-benchmark median", "timeit median", "GB/s (pytest-benchmark)",
                                     "timeit / pytest-benchmark"], peer_rows(figures), title,
                            load_record=rec, **({"load_why": why} if why else {}))
        fig.write_table(Path(args.out), doc, prog)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
