"""torch.distributed data parallel: DistributedDataParallel on the suite's workloads, and all_reduce alone.

Gloo on CPU, NCCL on CUDA (one GPU per rank). The process group comes from the
environment (``init_method="env://"``: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE), as
``torchrun`` sets it. The training step is the low-level twin's (MSE, plain SGD) with
the model wrapped in DDP, so its gradients are averaged across ranks during backward.
"""

from __future__ import annotations

import datetime
import os

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from benches.workloads import torch_models
from benches.workloads.specs import LEARNING_RATE, make_weights

COLLECTIVE_TIMEOUT = datetime.timedelta(seconds=120)


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def init(device: str) -> tuple[int, int]:
    """Join the process group named by the environment; returns (rank, world size)."""
    backend = "nccl" if device == "cuda" else "gloo"
    if device == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    dist.init_process_group(backend, init_method="env://", timeout=COLLECTIVE_TIMEOUT)
    return dist.get_rank(), dist.get_world_size()


def _device(device: str) -> str:
    return f"cuda:{torch.cuda.current_device()}" if device == "cuda" else "cpu"


def fence(device: str):
    if device == "cuda":
        return lambda out: torch.cuda.synchronize()
    return lambda out: None  # CPU ops and gloo collectives return when done


class Trainer:
    """One rank's DDP training step on its rows of the global batch ``x, target``."""

    def __init__(self, workload, x: np.ndarray, target: np.ndarray, batch: int, device: str):
        rank = dist.get_rank()
        x, target = x[rank * batch:(rank + 1) * batch], target[rank * batch:(rank + 1) * batch]
        dev = _device(device)
        self.model = torch_models.build(workload, make_weights(workload)).to(dev)
        self.ddp = DDP(self.model, device_ids=[dev] if device == "cuda" else None)
        self.args = torch_models.inputs(workload, x, dev)
        self.target = torch.from_numpy(target).to(dev)
        self.params = [p for p in self.model.parameters()]

    def step(self):
        loss = F.mse_loss(self.ddp(*self.args), self.target)
        loss.backward()  # DDP all-reduces (averages) the gradients in buckets during backward
        with torch.no_grad():
            torch._foreach_add_(self.params, [p.grad for p in self.params], alpha=-LEARNING_RATE)
        for p in self.params:
            p.grad = None
        return loss

    def canonical_params(self) -> dict[str, np.ndarray]:
        return self.model.canonical(dict(self.model.named_parameters()))


def barrier(device: str):
    return dist.barrier


class AllReduce:
    """``dist.all_reduce`` (sum, in place) of one float32 tensor of ``nbytes``."""

    def __init__(self, nbytes: int, device: str):
        self.tensor = torch.ones(nbytes // 4, dtype=torch.float32, device=_device(device))

    def step(self):
        dist.all_reduce(self.tensor)
        return self.tensor

    def reset(self) -> None:
        self.tensor.fill_(1.0)

    def first_value(self) -> float:
        return float(self.tensor[0])


def shutdown() -> None:
    dist.destroy_process_group()


def reference_params(workload, x: np.ndarray, target: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    """One process, no DDP, the whole (concatenated) batch: what every rank must end with."""
    model = torch_models.build(workload, make_weights(workload))
    args = torch_models.inputs(workload, x, "cpu")
    t = torch.from_numpy(target)
    params = list(model.parameters())
    for _ in range(steps):
        loss = F.mse_loss(model(*args), t)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-LEARNING_RATE)
    return model.canonical(dict(model.named_parameters()))
