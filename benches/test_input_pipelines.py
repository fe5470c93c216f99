"""Input pipelines: tf.data versus torch.utils.data.DataLoader, in memory and from files.

One synthetic image set (3x64x64 uint8, 10 classes, seeded, cached under
``.cache/pipelines/``) in three storage forms: numpy arrays, TFRecord shards, JPEG
files. Every pipeline applies the same seeded per-sample augmentation (normalise,
random flip, random 64x64 crop with padding 4) and yields batches of
(x, label, sample index). The questions:

- ``test_ideal``: a tight numpy loop doing the same transform on pre-batched arrays;
  what the machine can do. Runs first; in-memory cases record their fraction of it.
- ``test_tf_data`` / ``test_dataloader``: samples/s over a steady epoch for each knob
  (parallel calls, vectorised map, cache, determinism; workers, persistence,
  prefetch factor, batched fetch), with time to first batch and peak memory.
- ``test_first_epoch_*``: a cold epoch (building the pipeline, starting workers,
  filling a cache) as its own result; time to first batch is the headline.
- ``test_end_to_end``: each framework's best pipeline feeding the ``cnn`` training
  step in graph mode, beside the same step fed one resident batch: whether input or
  compute bounds training here.
- ``test_imageops_ideal`` / ``test_tf_image`` / ``test_torchvision`` (pipeline/jpeg-resize/...):
  each library's own JPEG decoder and image ops, tf.io.decode_jpeg + tf.image in tf.data
  against torchvision.io.decode_jpeg + transforms.v2 in a DataLoader (0 and 2 workers), with
  Pillow + numpy as the ideal; decodes and transforms are checked equivalent first. The
  torchvision cases skip with the reason where torchvision cannot load beside this torch.

On 2 cores, worker processes compete with the main process for the same cores:
more workers can be slower than none, and the results say so.
"""

from __future__ import annotations

import itertools
import os
import statistics
import threading
import time

import pytest

# A torch-only GPU box may lack these: the module skips with the reason instead of erroring.
psutil = pytest.importorskip("psutil", reason="psutil (peak memory of workers) is not installed")
pytest.importorskip("PIL", reason="Pillow (JPEG encoding and decoding) is not installed")

from benches.pipelines import data as pdata
from benches.pipelines.ideal import IdealLoop
from benches.workloads import WORKLOADS
from conftest import fence_for

pytestmark = [
    pytest.mark.pipeline,
    # One round is a whole epoch (about a second in full): a few rounds give a median
    # without running the module for many minutes.
    pytest.mark.benchmark(min_rounds=3, max_time=0.0, warmup=True, warmup_iterations=1),
    # Fails a stuck case (a hung worker) with a message instead of stalling the run;
    # the signal method fails only this case, DataLoader's own timeout= backs it up.
    pytest.mark.timeout(180, method="signal"),
]

# Dataset size and batch per profile: a steady epoch takes about 1-3 s in full here.
DATA = {"smoke": dict(n=256, batch=32), "quick": dict(n=2048, batch=128), "full": dict(n=4096, batch=128)}
SEED = 0
WORKLOAD = "images-3x64x64"
FIRST_EPOCH_ROUNDS = {"smoke": 1, "quick": 2, "full": 3}
# End to end: training steps per timed round (the cnn step is compute heavy on CPU).
E2E = {"smoke": dict(batch=16, steps=2), "quick": dict(batch=32, steps=4), "full": dict(batch=32, steps=12)}

# `framework` in a grid lets the harness skip a case whose framework (or its GPU) is missing.
TF_BASE = dict(framework=["tensorflow"], num_parallel_calls=["autotune"], vectorized=[True], cache=[False],
               deterministic=[True])
TORCH_BASE = dict(framework=["torch"], num_workers=[0], persistent_workers=[False], prefetch_factor=[None],
                  batched_fetch=[False])
TORCH_WORKERS = dict(framework=["torch"], num_workers=[1, 2], persistent_workers=[True], prefetch_factor=[2],
                     batched_fetch=[False, True])


def _vary(base: dict, **axes) -> list[dict]:
    """The base spec and, for each named axis, the base with that axis over all its values."""
    return [base] + [{**base, name: values} for name, values in axes.items()]


TF_AXES = dict(num_parallel_calls=[1, "autotune"], vectorized=[False, True], cache=[False, True],
               deterministic=[True, False])
TF_GRID = {
    # smoke: every knob value on every source, one knob at a time from the base.
    "smoke": [{**s, "source": ["memory", "tfrecord", "jpeg"]} for s in _vary(TF_BASE, **TF_AXES)],
    "quick": [
        {**TF_BASE, "source": ["memory"], "vectorized": [False, True]},
        {**TF_BASE, "source": ["jpeg"], "cache": [True]},
    ],
    "full": [{**s, "source": ["memory", "tfrecord", "jpeg"]} for s in _vary(TF_BASE, **TF_AXES)],
}
TORCH_GRID = {
    "smoke": [
        {**TORCH_BASE, "source": ["memory", "jpeg"], "batched_fetch": [False, True]},
        {**TORCH_WORKERS, "source": ["memory", "jpeg"]},
        {**TORCH_WORKERS, "source": ["memory"], "num_workers": [2], "persistent_workers": [False],
         "prefetch_factor": [4], "batched_fetch": [True]},
    ],
    "quick": [
        {**TORCH_BASE, "source": ["memory"], "batched_fetch": [False, True]},
        {**TORCH_WORKERS, "source": ["memory"], "num_workers": [2], "batched_fetch": [False]},
    ],
    "full": [
        {**TORCH_BASE, "source": ["memory", "jpeg"], "batched_fetch": [False, True]},
        {**TORCH_WORKERS, "source": ["memory", "jpeg"], "batched_fetch": [False]},
        {**TORCH_WORKERS, "source": ["memory"], "num_workers": [2], "batched_fetch": [True]},
        {**TORCH_WORKERS, "source": ["memory"], "num_workers": [2], "persistent_workers": [False]},
        {**TORCH_WORKERS, "source": ["memory"], "num_workers": [2], "prefetch_factor": [4]},
    ],
}
# Cold epochs: the in-memory base and the most start-up-heavy variants (cache fill, workers).
TF_FIRST_GRID = {
    "smoke": [{**TF_BASE, "source": ["memory", "jpeg"], "cache": [True]}],
    "quick": [{**TF_BASE, "source": ["memory"]}, {**TF_BASE, "source": ["jpeg"], "cache": [True]}],
    "full": [{**TF_BASE, "source": ["memory", "tfrecord"]}, {**TF_BASE, "source": ["jpeg"], "cache": [False, True]}],
}
TORCH_FIRST_GRID = {
    "smoke": [{**TORCH_WORKERS, "source": ["memory"], "num_workers": [2], "batched_fetch": [False]}],
    "quick": [{**TORCH_WORKERS, "source": ["memory"], "num_workers": [2], "batched_fetch": [False]}],
    "full": [{**TORCH_BASE, "source": ["memory", "jpeg"]},
             {**TORCH_WORKERS, "source": ["memory", "jpeg"], "num_workers": [2], "batched_fetch": [False]}],
}
# Each framework's best in-memory pipeline as measured here (quick profile, 2 cores), fed
# to the cnn training step in its graph mode.
E2E_CASES = {
    "tensorflow": dict(mode="function", source="memory", knobs={k: v for k, v in TF_BASE.items() if k != "framework"}),
    "torch": dict(mode="compile", source="memory", knobs={k: v for k, v in TORCH_BASE.items() if k != "framework"}),
}
E2E_GRID = {p: [dict(framework=["tensorflow", "torch"])] for p in ("smoke", "quick", "full")}
IDEAL_GRID = {p: [dict(source=["memory"])] for p in ("smoke", "quick", "full")}


# --------------------------------------------------------------------------- helpers


class PeakRss:
    """Peak resident memory of this process plus its children (workers), sampled every 100 ms.

    RSS counts shared pages once per process, so with workers this over-counts what
    they share (the torch libraries, shared-memory images): an upper bound. The sampler
    runs during timing, so it samples rarely: on 2 cores a 10 ms sampler would take
    GIL time and CPU from the pipeline it watches.
    """

    def __init__(self, interval: float = 0.1):
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()
        self._proc = psutil.Process(os.getpid())

    def _sample(self) -> int:
        total = self._proc.memory_info().rss
        for child in self._proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.peak = self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def dataset_for(profile: str) -> pdata.Dataset:
    try:
        return pdata.ensure_dataset(DATA[profile]["n"], SEED)
    except ImportError as exc:  # the TFRecord form is written with TensorFlow
        pytest.skip(f"the image set cannot be generated here: {exc}")


@pytest.fixture(scope="module")
def dataset(profile) -> pdata.Dataset:
    return dataset_for(profile)


@pytest.fixture(scope="module")
def batch(profile) -> int:
    return DATA[profile]["batch"]


def ideal_key(dataset: pdata.Dataset) -> str:
    return f"pipeline/{dataset.n}"


def build(framework: str, source: str, dataset, batch: int, device: str, knobs: dict):
    if framework == "tensorflow":
        from benches.pipelines import tf_pipelines as impl
    else:
        from benches.pipelines import torch_pipelines as impl
    if source not in impl.SOURCES:
        pytest.skip(f"{framework} has no reader for {source}")
    return impl.build(source, dataset, batch, impl.Knobs(**knobs), device)


def case_info(framework, source, device, batch, knobs, epoch) -> dict:
    mode = "tf.data" if framework == "tensorflow" else "DataLoader"
    info = dict(mode=mode, workload=WORKLOAD, batch=batch, source=source, epoch=epoch, **{"pass": "input"}, **knobs)
    if framework == "torch":
        info["pin_memory"] = device == "cuda"
    return info


def run_steady(measure, benchmark, framework, source, device, dataset, batch, knobs):
    """Time whole epochs of a warm pipeline (workers started, caches filled in warm-up)."""
    pipeline = build(framework, source, dataset, batch, device, knobs)
    try:
        with PeakRss() as rss:
            measure(
                pipeline.run_epoch, framework=framework, device=device, group=f"pipeline/{source}/{device}",
                samples=dataset.n, ideal=ideal_key(dataset) if source == "memory" and device == "cpu" else None,
                **case_info(framework, source, device, batch, knobs, "steady"),
            )
    finally:
        pipeline.close()
    # The warm-up epoch's first batch is a cold start (workers, caches): steady means the rest.
    record_epoch_facts(benchmark, pipeline.first_batch_s[1:] or pipeline.first_batch_s, rss.peak)


def record_epoch_facts(benchmark, first_batch_s, peak_rss):
    benchmark.extra_info["time_to_first_batch_s"] = statistics.median(first_batch_s) if first_batch_s else None
    benchmark.extra_info["peak_rss_bytes"] = peak_rss


def run_first_epoch(benchmark, threads, framework, source, device, dataset, batch, knobs, profile):
    """Time building a pipeline and running its first epoch, fresh each round."""
    state = {"first": [], "peak": 0}

    def cold_epoch():
        with PeakRss() as rss:
            pipeline = build(framework, source, dataset, batch, device, knobs)
            try:
                seen = pipeline.run_epoch()
            finally:
                pipeline.close()
        state["first"] += pipeline.first_batch_s
        state["peak"] = max(state["peak"], rss.peak)
        assert seen == dataset.n

    benchmark.group = f"pipeline-first-epoch/{source}/{device}"
    benchmark.extra_info.update(framework=framework, device=device, threads=threads,
                                **case_info(framework, source, device, batch, knobs, "first"))
    benchmark.pedantic(cold_epoch, rounds=FIRST_EPOCH_ROUNDS[profile], iterations=1, warmup_rounds=0)
    median = benchmark.stats.stats.median if benchmark.stats is not None else None
    if median:
        benchmark.extra_info["samples_per_s"] = dataset.n / median
    record_epoch_facts(benchmark, state["first"], state["peak"])
    benchmark.extra_info["time_to_first_batch_rounds_s"] = state["first"]


# --------------------------------------------------------------------------- cases


@pytest.mark.grid(IDEAL_GRID)
def test_ideal(measure, benchmark, dataset, batch, source):
    """The reference: the same transform as a tight numpy loop over pre-batched arrays in memory."""
    loop = IdealLoop(dataset.images, dataset.labels, batch, SEED)
    with PeakRss() as rss:
        measure(loop.run_epoch, framework="numpy", device="cpu", group="pipeline/memory/cpu", samples=loop.n,
                sets_ideal=ideal_key(dataset), mode="ideal", workload=WORKLOAD, batch=batch, source=source,
                epoch="steady", **{"pass": "input"})
    record_epoch_facts(benchmark, [], rss.peak)


@pytest.mark.grid(TF_GRID)
def test_tf_data(measure, benchmark, dataset, batch, framework, device, source, num_parallel_calls, vectorized, cache, deterministic):
    """A steady tf.data epoch (samples/s) for one combination of knobs."""
    knobs = dict(num_parallel_calls=num_parallel_calls, vectorized=vectorized, cache=cache,
                 deterministic=deterministic)
    run_steady(measure, benchmark, framework, source, device, dataset, batch, knobs)


@pytest.mark.grid(TORCH_GRID)
def test_dataloader(measure, benchmark, dataset, batch, framework, device, source, num_workers, persistent_workers, prefetch_factor,
                    batched_fetch):
    """A steady DataLoader epoch (samples/s) for one combination of knobs; pin_memory on CUDA."""
    knobs = dict(num_workers=num_workers, persistent_workers=persistent_workers, prefetch_factor=prefetch_factor,
                 batched_fetch=batched_fetch)
    run_steady(measure, benchmark, framework, source, device, dataset, batch, knobs)


@pytest.mark.grid(TF_FIRST_GRID)
def test_first_epoch_tf_data(benchmark, threads, profile, dataset, batch, framework, device, source, num_parallel_calls,
                             vectorized, cache, deterministic):
    """A cold tf.data epoch: building the pipeline (tracing its map functions), filling the cache."""
    knobs = dict(num_parallel_calls=num_parallel_calls, vectorized=vectorized, cache=cache,
                 deterministic=deterministic)
    run_first_epoch(benchmark, threads, framework, source, device, dataset, batch, knobs, profile)


@pytest.mark.grid(TORCH_FIRST_GRID)
def test_first_epoch_dataloader(benchmark, threads, profile, dataset, batch, framework, device, source, num_workers,
                                persistent_workers, prefetch_factor, batched_fetch):
    """A cold DataLoader epoch: starting the workers (forkserver, importing torch) is in it."""
    knobs = dict(num_workers=num_workers, persistent_workers=persistent_workers, prefetch_factor=prefetch_factor,
                 batched_fetch=batched_fetch)
    run_first_epoch(benchmark, threads, framework, source, device, dataset, batch, knobs, profile)


def _one_hot(framework, labels, device):
    if framework == "tensorflow":
        import tensorflow as tf

        return tf.one_hot(labels, 10)
    import torch

    return torch.nn.functional.one_hot(labels, 10).to(device=device, dtype=torch.float32)


def _trainer(framework, mode, device):
    from benches.workloads import tf_runner, torch_runner

    runner = tf_runner if framework == "tensorflow" else torch_runner
    return runner.trainer(WORKLOADS["cnn"], mode, device)


@pytest.mark.grid(E2E_GRID)
@pytest.mark.timeout(420, method="signal")  # torch.compile of the training step takes a while on 2 cores
def test_end_to_end(measure, benchmark, profile, device, framework):
    """The best pipeline feeding the cnn training step (graph mode) versus the step fed a resident batch.

    ``fed_over_step_only`` near 1 means compute bounds training; well above 1, input does.
    """
    case, cfg = E2E_CASES[framework], E2E[profile]
    batch, steps = cfg["batch"], cfg["steps"]
    data = dataset_for(profile)
    knobs = {k: v[0] for k, v in case["knobs"].items()}
    pipeline = build(framework, case["source"], data, batch, device, knobs)
    step = _trainer(framework, case["mode"], device)
    fence = fence_for(framework, device)
    stream = itertools.chain.from_iterable(pipeline.batches(e) for e in itertools.count())
    x0, y0, _ = next(stream)
    t0 = _one_hot(framework, y0, device)
    fence(step(x0, t0))  # trace or compile, untimed

    def fed():
        loss = None
        for _ in range(steps):
            x, y, _ = next(stream)
            loss = step(x, _one_hot(framework, y, device))
        return loss

    def resident():
        loss = None
        for _ in range(steps):
            loss = step(x0, t0)
        return loss

    try:
        with PeakRss() as rss:
            measure(fed, framework=framework, device=device, group=f"pipeline-e2e/cnn-train/{device}",
                    samples=batch * steps, mode=case["mode"], workload="cnn", batch=batch, source=case["source"],
                    pipeline="tf.data" if framework == "tensorflow" else "DataLoader", epoch="steady",
                    **{"pass": "train"}, **knobs)
    finally:
        pipeline.close()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fence(resident())
        times.append(time.perf_counter() - start)
    step_only = statistics.median(times)
    benchmark.extra_info.update(peak_rss_bytes=rss.peak, step_only_s=step_only / steps,
                                step_only_samples_per_s=batch * steps / step_only)
    if benchmark.stats is not None:
        benchmark.extra_info["fed_over_step_only"] = benchmark.stats.stats.median / step_only


# --------------------------------------------------------------------------- library image ops
# jpeg-resize: each library's own JPEG decoder and image ops, as their users write them:
# torchvision.io.decode_jpeg + transforms.v2 in a DataLoader against tf.io.decode_jpeg +
# tf.image in tf.data, with Pillow + numpy in a plain loop as the ideal. Decode, resize to
# 72x72, random 64x64 crop, random flip, normalise (benches/pipelines/imageops.py). Before
# timing, both sides' decodes and transforms on the same explicit parameters are checked
# against each other and the reference within the bounds imageops states. On CUDA,
# torchvision decodes on the GPU (nvjpeg) and TensorFlow runs the image ops there.

# Files per epoch (the first n of the profile's image set) and batch: an epoch takes
# about 0.1 s in quick, about 1 s in full.
IMAGEOPS = {"smoke": dict(n=256, batch=32), "quick": dict(n=512, batch=128), "full": dict(n=4096, batch=128)}
IMAGEOPS_CHECK_N = 8  # files in the equivalence check before timing
IMAGEOPS_IDEAL_GRID = {p: [dict(device=["cpu"])] for p in ("smoke", "quick", "full")}
TF_IMAGE_GRID = {
    # dct: "accurate" is the same IDCT as torchvision and Pillow; "default" is TF's own (INTEGER_FAST).
    "smoke": [dict(framework=["tensorflow"], num_parallel_calls=["autotune"], dct=["accurate", "default"])],
    "quick": [dict(framework=["tensorflow"], num_parallel_calls=["autotune"], dct=["accurate"])],
    "full": [dict(framework=["tensorflow"], num_parallel_calls=["autotune"], dct=["accurate", "default"])],
}
TORCHVISION_GRID = {
    # quick leaves out the workers: each worker imports torch and torchvision afresh (5-10 s with the CUDA build).
    "smoke": [dict(framework=["torch"], num_workers=[0, 2])],
    "quick": [dict(framework=["torch"], num_workers=[0])],
    "full": [dict(framework=["torch"], num_workers=[0, 2])],
}
IMAGEOPS_MODE = {"tensorflow": ("tf.data", "tf.image"), "torch": ("DataLoader", "torchvision.v2")}


def imageops_files(profile: str, dataset: pdata.Dataset) -> tuple[int, int]:
    cfg = IMAGEOPS[profile]
    return min(cfg["n"], dataset.n), cfg["batch"]


def imageops_ideal_key(n: int) -> str:
    from benches.pipelines.imageops import SOURCE

    return f"pipeline/{SOURCE}/{n}"


def torchvision_or_skip() -> None:
    """Skip with the reason (the same line for every case, so -ra reports it once)."""
    from benches.pipelines.imageops import torchvision_problem

    problem = torchvision_problem()
    if problem:
        pytest.skip(problem)


_equivalence: dict = {}


def imageops_equivalence(dataset, dct: str, device: str) -> dict:
    """The equivalence check before timing, once per (dct, device, sides) in a process."""
    from benches.pipelines.imageops import check_equivalence, torchvision_problem

    sides = ("torch",) if torchvision_problem() is None else ()
    try:
        import tensorflow  # noqa: F401

        sides += ("tensorflow",)
    except ImportError:
        pass
    key = (dataset.root, dct, device, sides)
    if key not in _equivalence:
        _equivalence[key] = check_equivalence(dataset, IMAGEOPS_CHECK_N, dct, device, sides)
    return _equivalence[key]


def run_imageops(measure, benchmark, profile, dataset, framework, device, knobs, dct="accurate"):
    from benches.pipelines.imageops import SOURCE

    if framework == "tensorflow":
        from benches.pipelines import tfimage_pipelines as impl
    else:
        from benches.pipelines import tv_pipelines as impl
    seen = imageops_equivalence(dataset, dct, device)
    n, batch = imageops_files(profile, dataset)
    pipeline = impl.build(dataset, n, batch, impl.Knobs(**knobs), device)
    mode, transforms = IMAGEOPS_MODE[framework]
    try:
        with PeakRss() as rss:
            measure(pipeline.run_epoch, framework=framework, device=device, group=f"pipeline/{SOURCE}/{device}",
                    samples=n, ideal=imageops_ideal_key(n) if device == "cpu" else None, mode=mode,
                    transforms=transforms, workload=WORKLOAD, batch=batch, source=SOURCE, epoch="steady",
                    **{"pass": "input"}, **knobs)
    finally:
        pipeline.close()
    record_epoch_facts(benchmark, pipeline.first_batch_s[1:] or pipeline.first_batch_s, rss.peak)
    benchmark.extra_info["equivalence"] = {k: [round(v, 6) for v in pair] for k, pair in seen.items()}


@pytest.mark.grid(IMAGEOPS_IDEAL_GRID)
def test_imageops_ideal(measure, benchmark, profile, dataset, device):
    """The jpeg-resize reference: Pillow decodes and resizes, numpy crops, flips, normalises; files in order."""
    from benches.pipelines.imageops import SOURCE, PilResizeLoop, jpeg_files

    n, batch = imageops_files(profile, dataset)
    loop = PilResizeLoop(jpeg_files(dataset, n)[0], batch, SEED)
    with PeakRss() as rss:
        measure(loop.run_epoch, framework="numpy", device=device, group=f"pipeline/{SOURCE}/{device}", samples=n,
                sets_ideal=imageops_ideal_key(n), mode="ideal", transforms="PIL+numpy", workload=WORKLOAD,
                batch=batch, source=SOURCE, epoch="steady", **{"pass": "input"})
    record_epoch_facts(benchmark, [], rss.peak)


@pytest.mark.grid(TF_IMAGE_GRID)
def test_tf_image(measure, benchmark, profile, dataset, framework, device, num_parallel_calls, dct):
    """tf.io.decode_jpeg + tf.image (resize, random crop, random flip, normalise) in tf.data, AUTOTUNE."""
    run_imageops(measure, benchmark, profile, dataset, framework, device,
                 dict(num_parallel_calls=num_parallel_calls, dct=dct), dct=dct)


@pytest.mark.grid(TORCHVISION_GRID)
def test_torchvision(measure, benchmark, profile, dataset, framework, device, num_workers):
    """torchvision.io.decode_jpeg + transforms.v2 in a DataLoader; on CUDA decode_jpeg(device="cuda")."""
    torchvision_or_skip()
    run_imageops(measure, benchmark, profile, dataset, framework, device, dict(num_workers=num_workers))
