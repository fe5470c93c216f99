"""Distributed data-parallel training: torch DistributedDataParallel versus tf.distribute.

Workers are real processes started as users start them (``MASTER_ADDR``/``MASTER_PORT``/
``RANK``/``WORLD_SIZE`` for torch, ``TF_CONFIG`` for TensorFlow) on free ports of
127.0.0.1, by ``benches/distributed/launcher.py``; gloo and MultiWorkerMirroredStrategy
(gRPC ring collectives) on CPU, NCCL and MirroredStrategy on 2+ GPUs. Workers split the
cores: workers x threads <= cores, recorded as ``threads`` (per worker).

One launch per (framework, device, workers, workload[, network]) serves several cases:
- ``test_train_step``: time per synchronous training step (forward, backward, gradient
  all-reduce, SGD update) with the same per-worker batch at 1..N workers; samples/s
  over all workers; ``scaling_efficiency`` = throughput(N) / (N x throughput(1)).
  Before timing, ``PARITY_STEPS`` steps from the shared numpy weights: every worker's
  parameters must be identical and equal a single process trained on the concatenated
  batch, or the case fails.
- ``test_startup``: launch to the end of the first step on every worker (interpreter
  and framework import, process group or cluster, model build, first collective and
  trace): one figure per launch, like first-call cost.
- ``test_copy_limit`` / ``test_allreduce``: the gradient all-reduce alone, 4 KiB to
  256 MiB, as algbw and busbw (nccl-tests: busbw = algbw x 2(N-1)/N) against
  ``numpy.copyto`` of the same size measured in this run.
- ``test_slow_network``: the training step with the workers in a network namespace
  whose loopback is capped by ``tc tbf`` at 1 and 10 Gbit/s.

How a round is timed: every worker meets the others at a barrier, times its own
fenced step with ``perf_counter`` and reports it; the coordinator takes, per round,
the slowest worker's time (the round's time; see benches/distributed/worker.py). The
barrier is outside the timed region; the max adds at most the barrier's exit skew.
The rounds go into pytest-benchmark as measured by the workers (``record_rounds``).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field

import numpy as np
import pytest

from benches.distributed import bus_bandwidth, launcher, scaling_efficiency, threads_per_worker, worker_counts
from benches.workloads import WORKLOADS
from benches.workloads.parity import assert_close
from benchruns.machine import default_threads

pytestmark = pytest.mark.distributed

CORES = default_threads()


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


GPUS = _gpu_count()
FRAMEWORKS = ["torch", "tensorflow"]
MODE = {"torch": "ddp", "tensorflow": "mwms"}
BACKEND = {("torch", "cpu"): "gloo", ("torch", "cuda"): "nccl",
           ("tensorflow", "cpu"): "grpc ring", ("tensorflow", "cuda"): "nccl (MirroredStrategy)"}
BATCH = {"mlp-small": 32, "mlp-large": 32, "cnn": 32, "transformer": 8}  # per worker
KiB, MiB = 1 << 10, 1 << 20
ALL_SIZES = [4 * KiB * 4 ** i for i in range(9)]  # 4 KiB ... 256 MiB
PARITY_STEPS = 3
WARMUP_STEPS = 1
TIMEOUT_S = 300  # per worker, for its whole life; a hung collective fails the case
CPU_WORKERS = worker_counts(CORES)
GPU_WORKERS = [n for n in worker_counts(max(GPUS, 2)) if n >= 2]

SETTINGS = {  # what each profile runs besides the grids: rounds, all-reduce sizes and which launch carries them
    "smoke": dict(rounds=2, allreduce_rounds=2, sizes=[4 * KiB], allreduce_workload="mlp-small"),
    "quick": dict(rounds=5, allreduce_rounds=10, sizes=[4 * KiB, MiB, 16 * MiB], allreduce_workload="mlp-large"),
    "full": dict(rounds=15, allreduce_rounds=20, sizes=ALL_SIZES, allreduce_workload="mlp-large"),
}

GRID = {
    "smoke": [dict(framework=FRAMEWORKS, workload=["mlp-small"], workers=[2], device=["cpu"]),
              dict(framework=FRAMEWORKS, workload=["mlp-small"], workers=[2], device=["cuda"])],
    "quick": [dict(framework=FRAMEWORKS, workload=["mlp-large"], workers=CPU_WORKERS[:2], device=["cpu"]),
              dict(framework=FRAMEWORKS, workload=["mlp-large"], workers=GPU_WORKERS[:1], device=["cuda"])],
    "full": [dict(framework=FRAMEWORKS, workload=["mlp-large", "cnn", "transformer"], workers=CPU_WORKERS,
                  device=["cpu"]),
             dict(framework=FRAMEWORKS, workload=["mlp-large", "cnn", "transformer"], workers=GPU_WORKERS,
                  device=["cuda"])],
}
ALLREDUCE_GRID = {
    profile: [dict(framework=FRAMEWORKS, workers=[n for n in CPU_WORKERS if n >= 2][-1:], size=s["sizes"],
                   device=["cpu"]),
              dict(framework=FRAMEWORKS, workers=GPU_WORKERS[-1:], size=s["sizes"], device=["cuda"])]
    for profile, s in SETTINGS.items()
}
COPY_GRID = {profile: [dict(size=s["sizes"])] for profile, s in SETTINGS.items()}
NET_GRID = {
    "smoke": [dict(framework=["torch"], workload=["mlp-small"], gbit=[1])],
    "quick": [dict(framework=["torch"], workload=["mlp-small"], gbit=[1])],
    "full": [dict(framework=FRAMEWORKS, workload=["mlp-large"], gbit=[1, 10])],
}


# --------------------------------------------------------------------------- one launch


@dataclass
class Launch:
    """What one launch of N workers measured, or why it failed."""

    error: str = ""
    rounds: list[float] = field(default_factory=list)  # per round, the slowest worker's step
    sizes: dict[int, list[float]] = field(default_factory=dict)  # all-reduce rounds by message size
    startup_s: float = 0.0
    breakdown: dict[str, float] = field(default_factory=dict)
    threads: int = 0
    processes: int = 0
    parity: str = ""


_LAUNCHES: dict[tuple, Launch] = {}
_THROUGHPUT_1: dict[tuple, float] = {}  # (framework, device, workload) -> samples/s of one worker


def slowest_per_round(per_worker: list[list[float]]) -> list[float]:
    """The round time: for each round, the slowest worker's fenced step."""
    if len({len(r) for r in per_worker}) != 1:
        raise ValueError(f"workers timed different numbers of rounds: {[len(r) for r in per_worker]}")
    return [max(times) for times in zip(*per_worker)]


def check_parity(worker_params: list[dict[str, np.ndarray]], reference: dict[str, np.ndarray], what: str) -> str:
    """Raise AssertionError unless every worker holds the same parameters and they match ``reference``.

    Across workers the parameters must be bitwise equal (every worker applies the same
    all-reduced gradient); against the single-process run, the suite's float32 tolerance.
    Returns a one-line summary.
    """
    first = worker_params[0]
    for rank, params in enumerate(worker_params[1:], start=1):
        if set(params) != set(first):
            raise AssertionError(f"{what}: worker {rank} has parameters {sorted(params)}, worker 0 {sorted(first)}")
        for name in first:
            if not np.array_equal(params[name], first[name]):
                diff = float(np.max(np.abs(params[name] - first[name])))
                raise AssertionError(f"{what}: worker {rank} and worker 0 differ in {name} by up to {diff:.3g}: "
                                     "the workers did not synchronise")
    if set(first) != set(reference):
        raise AssertionError(f"{what}: parameters {sorted(first)} != reference {sorted(reference)}")
    worst = 0.0
    for name in reference:
        assert_close(first[name], reference[name], f"{what}: {name} vs a single process on the whole batch")
        worst = max(worst, float(np.max(np.abs(first[name] - reference[name]))))
    return f"{len(worker_params)} worker(s) identical; max |diff| to one process on the whole batch {worst:.3g}"


def _processes(framework: str, device: str, workers: int) -> int:
    # TensorFlow drives several GPUs from one process (MirroredStrategy); elsewhere one process per worker.
    return 1 if (framework == "tensorflow" and device == "cuda") else workers


def _run(framework, device, workers, workload, profile, gbit) -> Launch:
    settings = SETTINGS[profile]
    procs = _processes(framework, device, workers)
    threads = threads_per_worker(CORES, procs)
    spec = {"task": "run", "framework": framework, "device": device, "threads": threads,
            "parity_steps": PARITY_STEPS, "warmup": WARMUP_STEPS, "rounds": settings["rounds"]}
    if workload:
        spec.update(workload=workload, batch=BATCH[workload])
    if workload == settings["allreduce_workload"] and gbit is None and workers >= 2:
        spec.update(sizes=settings["sizes"], allreduce_rounds=settings["allreduce_rounds"])
    env = {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in range(workers))} if device == "cuda" else {}
    argv = launcher.python_worker("benches.distributed.worker", json.dumps(spec))
    if gbit is None:
        finished = launcher.launch(framework, procs, argv, TIMEOUT_S, env=env)
    else:
        with launcher.limited_loopback(gbit) as prefix:
            finished = launcher.launch(framework, procs, argv, TIMEOUT_S, prefix=prefix, env=env)
    try:
        outs = finished.outputs()
        result = Launch(threads=threads, processes=procs)
        result.rounds = slowest_per_round([o["rounds"] for o in outs])
        first_done = max(o["first_step_done"] for o in outs)
        result.startup_s = first_done - finished.launched_at
        result.breakdown = {
            "import_s": max(o["imported"] for o in outs) - finished.launched_at,
            "init_s": max(o["initialised"] - o["imported"] for o in outs),
            "first_step_s": max(first_done - o["initialised"] for o in outs),
        }
        for nbytes in spec.get("sizes", []):
            result.sizes[nbytes] = slowest_per_round([o["sizes"][str(nbytes)] for o in outs])
        params = [dict(np.load(finished.workdir / f"params-{r}.npz")) for r in range(procs)]
    finally:
        finished.cleanup()
    x, target = _global_batch(workload, workers)
    reference = _dp_module(framework).reference_params(WORKLOADS[workload], x, target, PARITY_STEPS)
    result.parity = check_parity(params, reference, f"{framework} {workers} worker(s) {workload}")
    return result


def _global_batch(workload, workers):
    from benches.workloads.specs import make_batch

    return make_batch(WORKLOADS[workload], BATCH[workload] * workers)


def _dp_module(framework):
    if framework == "torch":
        from benches.distributed import torch_dp as module
    else:
        from benches.distributed import tf_dp as module
    return module


def launched(framework, device, workers, workload, profile, gbit=None) -> Launch:
    """The (cached) launch for these settings; a failure is cached too, so it fails every case it serves."""
    key = (framework, device, workers, workload, profile, gbit)
    if key not in _LAUNCHES:
        try:
            _LAUNCHES[key] = _run(framework, device, workers, workload, profile, gbit)
        except (launcher.WorkerFailure, AssertionError, RuntimeError) as exc:
            _LAUNCHES[key] = Launch(error=f"{type(exc).__name__}: {exc}")
    launch = _LAUNCHES[key]
    if launch.error:
        pytest.fail(launch.error, pytrace=False)
    return launch


def record_rounds(benchmark, seconds: list[float], **info) -> None:
    """Hand rounds timed by the workers to pytest-benchmark, as if its own timer had taken them."""
    benchmark.extra_info.update(info)
    if benchmark.disabled:
        benchmark.pedantic(lambda: None)  # marks the fixture used; nothing is timed
        return
    benchmark._mode = "rounds timed by distributed workers"
    stats = benchmark._make_stats(1)
    for s in seconds:
        stats.update(s)


def _need_devices(framework, device, workers):
    if device == "cuda" and GPUS < workers:
        pytest.skip(f"{BACKEND[(framework, device)]} over GPUs needs {workers}+ GPUs; this machine has {GPUS}")
    if device == "cpu" and workers > CORES:
        pytest.skip(f"{workers} workers need {workers} cores; this process may use {CORES}")


def _info(framework, device, workers, launch):
    return dict(framework=framework, mode=MODE[framework], device=device, workers=workers,
                processes=launch.processes, threads=launch.threads, threads_total=launch.threads * launch.processes,
                backend=BACKEND[(framework, device)])


# --------------------------------------------------------------------------- the cases


def test_train_step(benchmark, profile, framework, workload, workers, device):
    """Time per synchronous data-parallel training step at N workers, and its scaling efficiency."""
    _need_devices(framework, device, workers)
    launch = launched(framework, device, workers, workload, profile)
    batch = BATCH[workload]
    median = statistics.median(launch.rounds)
    throughput = workers * batch / median
    info = dict(_info(framework, device, workers, launch), workload=workload, batch=batch,
                global_batch=batch * workers, samples_per_s=throughput, startup_s=launch.startup_s,
                parity=launch.parity, network="loopback", **{"pass": "train"})
    key = (framework, device, workload)
    if workers == 1:
        _THROUGHPUT_1[key] = throughput
    elif key in _THROUGHPUT_1:
        info["scaling_efficiency"] = scaling_efficiency(throughput, _THROUGHPUT_1[key], workers)
    benchmark.group = f"distributed/{workload}/train/b{batch}/{device}"
    record_rounds(benchmark, launch.rounds, **info)


def test_startup(benchmark, profile, framework, workload, workers, device):
    """Launch to the first finished step on every worker: the start-up cost of distributed training."""
    _need_devices(framework, device, workers)
    launch = launched(framework, device, workers, workload, profile)
    benchmark.group = f"distributed-startup/{workload}/b{BATCH[workload]}/{device}"
    record_rounds(benchmark, [launch.startup_s], **_info(framework, device, workers, launch), workload=workload,
                  batch=BATCH[workload], **launch.breakdown)


@pytest.mark.grid(COPY_GRID)
def test_copy_limit(measure, size):
    """numpy.copyto of the all-reduce's message size: this machine's copy limit, in this run."""
    src = np.ones(size // 4, np.float32)
    dst = np.empty_like(src)
    measure(lambda: np.copyto(dst, src), framework="numpy", device="cpu", group=f"distributed-allreduce/{size}/cpu",
            nbytes=size, sets_ideal=f"distributed-copy/{size}", mode="copyto", size=size)


@pytest.mark.grid(ALLREDUCE_GRID)
def test_allreduce(benchmark, ideals, profile, framework, workers, size, device):
    """The gradient all-reduce alone (sum of float32), as algbw and busbw against the copy limit."""
    _need_devices(framework, device, workers)
    launch = launched(framework, device, workers, SETTINGS[profile]["allreduce_workload"], profile)
    rounds = launch.sizes[size]
    algbw, busbw = bus_bandwidth(size, statistics.median(rounds), workers)
    info = dict(_info(framework, device, workers, launch), size=size, bytes=size, gbps=algbw / 1e9,
                algbw_gbps=algbw / 1e9, busbw_gbps=busbw / 1e9)
    copy_s = ideals.get(f"distributed-copy/{size}")
    if copy_s and device == "cpu":
        info.update(copy_gbps=size / copy_s / 1e9, fraction_of_copy=busbw * copy_s / size)
    benchmark.group = f"distributed-allreduce/{size}/{device}"
    record_rounds(benchmark, rounds, **info)


@pytest.mark.grid(NET_GRID)
def test_slow_network(benchmark, profile, framework, workload, gbit):
    """The 2-worker training step over a loopback capped at ``gbit`` Gbit/s (tc tbf in a network namespace)."""
    if profile == "quick":
        pytest.skip("the simulated network is left out of the quick profile to keep it under a minute "
                    "(--profile=full runs 1 and 10 Gbit/s)")
    reason = launcher.netns_unavailable()
    if reason:
        pytest.skip(f"no simulated network: {reason}")
    _need_devices(framework, "cpu", 2)
    launch = launched(framework, "cpu", 2, workload, profile, gbit=gbit)
    batch = BATCH[workload]
    info = dict(_info(framework, "cpu", 2, launch), workload=workload, batch=batch, global_batch=2 * batch,
                samples_per_s=2 * batch / statistics.median(launch.rounds), network=f"tbf {gbit} Gbit/s",
                gbit=gbit, parity=launch.parity, **{"pass": "train"})
    benchmark.group = f"distributed-net/{workload}/b{batch}/cpu"
    record_rounds(benchmark, launch.rounds, **info)
