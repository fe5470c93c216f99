"""Distributed data-parallel training on one machine: the worker launcher and the workers.

- ``launcher.py``: starts N real worker processes the way users do (``MASTER_ADDR`` /
  ``MASTER_PORT`` / ``RANK`` / ``WORLD_SIZE`` for torch.distributed, ``TF_CONFIG`` for
  tf.distribute) on free ports of 127.0.0.1, with a per-worker timeout, sibling kill on
  failure (with the failing worker's stderr tail), and no orphans on Ctrl-C; optionally
  inside a network namespace whose loopback is rate-limited (``tc tbf``).
- ``worker.py``: the process entry point (``python -m benches.distributed.worker spec.json``);
  ``torch_dp.py`` and ``tf_dp.py`` are the per-framework steps it runs.

This module is framework-free: the arithmetic the benches and the report share.
"""

from __future__ import annotations

BYTES_PER_FLOAT = 4


def bus_bandwidth(nbytes: int, seconds: float, workers: int) -> tuple[float, float]:
    """(algbw, busbw) in bytes/s for an all-reduce of ``nbytes`` per worker, nccl-tests style.

    algbw = size / time; busbw = algbw * 2(N-1)/N, the bytes each worker's link must move
    in a ring all-reduce, so it is comparable with a link's (or memcpy's) bandwidth at
    any N. With one worker nothing crosses a link: busbw is 0.
    """
    if seconds <= 0 or workers < 1:
        raise ValueError(f"need seconds > 0 and workers >= 1, got {seconds}, {workers}")
    algbw = nbytes / seconds
    return algbw, algbw * 2 * (workers - 1) / workers


def threads_per_worker(cores: int, workers: int) -> int:
    """Intra-op threads per worker so that workers x threads <= cores (at least 1)."""
    return max(1, cores // workers)


def worker_counts(cores: int, limit: int | None = None) -> list[int]:
    """1, 2, 4, ... up to the cores (each worker needs a core of its own), and ``limit``."""
    top = min(cores, limit) if limit else cores
    counts, n = [], 1
    while n <= max(top, 1):
        counts.append(n)
        n *= 2
    if counts[-1] != top and top > 1:
        counts.append(top)
    return counts


def scaling_efficiency(throughput_n: float, throughput_1: float, workers: int) -> float:
    """throughput(N) / (N x throughput(1)): 1.0 is perfect linear scaling."""
    return throughput_n / (workers * throughput_1)
