"""The workloads in PyTorch: torch.nn.functional on explicit parameters, mirroring tf_models.py.

Each model is an ``nn.Module`` (so torch.compile, TorchScript and torch.export all
accept it) whose parameters are loaded from the shared numpy weights.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .specs import Workload


class _Functional(nn.Module):
    """Holds the numpy weights as Parameters under their canonical names ('.' -> '_')."""

    def __init__(self, weights: dict[str, np.ndarray]):
        super().__init__()
        for name, value in weights.items():
            tensor = torch.from_numpy(np.ascontiguousarray(self.to_torch_layout(name, value)))
            self.register_parameter(name.replace(".", "_"), nn.Parameter(tensor.clone()))

    @staticmethod
    def to_torch_layout(name: str, value: np.ndarray) -> np.ndarray:
        return value

    @staticmethod
    def to_canonical_layout(name: str, value: np.ndarray) -> np.ndarray:
        return value

    def canonical(self, tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Parameters or gradients keyed by canonical name, in numpy's (TF's) layout."""
        canonical = {}
        for name, tensor in tensors.items():
            key = name.replace("_", ".", 1)
            canonical[key] = self.to_canonical_layout(key, tensor.detach().cpu().numpy())
        return canonical


class MLP(_Functional):
    def __init__(self, weights):
        super().__init__(weights)
        self.layers = sum(1 for n in weights if n.endswith(".w"))

    def forward(self, x):
        for i in range(self.layers):
            x = x @ getattr(self, f"fc{i}_w") + getattr(self, f"fc{i}_b")
            if i < self.layers - 1:
                x = F.relu(x)
        return x


class CNN(_Functional):
    @staticmethod
    def to_torch_layout(name, value):
        return value.transpose(3, 2, 0, 1) if value.ndim == 4 else value  # HWIO -> OIHW

    @staticmethod
    def to_canonical_layout(name, value):
        return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value  # OIHW -> HWIO

    def forward(self, x):  # x: NCHW
        x = F.max_pool2d(F.relu(F.conv2d(x, self.conv0_w, self.conv0_b, padding=1)), 2)
        x = F.max_pool2d(F.relu(F.conv2d(x, self.conv1_w, self.conv1_b, padding=1)), 2)
        x = F.relu(F.conv2d(x, self.conv2_w, self.conv2_b, padding=1))
        x = x.mean(dim=(2, 3))
        return x @ self.head_w + self.head_b


class RNNLoop(_Functional):
    """h <- tanh(x Wx + h Wh + b), repeated ``steps`` times; ``steps`` is a tensor input."""

    def forward(self, x, steps: torch.Tensor):
        drive = x @ self.wx_w + self.wx_b
        h = torch.zeros_like(drive)
        for _ in range(int(steps)):
            h = torch.tanh(drive + h @ self.wh_w)
        return h @ self.head_w + self.head_b


class Transformer(_Functional):
    def __init__(self, weights, heads: int):
        super().__init__(weights)
        self.heads = heads
        self.width = weights["ln1.g"].shape[0]
        self.head_dim = self.width // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)

    def forward(self, x):  # x: (batch, seq, width)
        batch, seq, width = x.shape[0], x.shape[1], self.width
        head_dim = self.head_dim
        h = F.layer_norm(x, (width,), self.ln1_g, self.ln1_b, eps=1e-5)
        qkv = h @ self.qkv_w + self.qkv_b
        q, k, v = qkv.reshape(batch, seq, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        scores = (q @ k.transpose(-1, -2)) * self.scale
        attn = torch.softmax(scores, dim=-1) @ v
        attn = attn.permute(0, 2, 1, 3).reshape(batch, seq, width)
        x = x + attn @ self.proj_w + self.proj_b
        h = F.layer_norm(x, (width,), self.ln2_g, self.ln2_b, eps=1e-5)
        h = F.gelu(h @ self.mlp1_w + self.mlp1_b)
        return x + h @ self.mlp2_w + self.mlp2_b


def build(workload: Workload, weights: dict[str, np.ndarray]) -> _Functional:
    if workload.name.startswith("mlp"):
        return MLP(weights)
    if workload.name == "cnn":
        return CNN(weights)
    if workload.name == "rnn-loop":
        return RNNLoop(weights)
    if workload.name == "transformer":
        return Transformer(weights, workload.extra["heads"])
    raise KeyError(workload.name)


def inputs(workload: Workload, x: np.ndarray, device: str) -> tuple:
    """The model's positional inputs on ``device``, in torch's layout (NCHW for images)."""
    if workload.name == "cnn":
        x = x.transpose(0, 3, 1, 2)
    args = (torch.from_numpy(np.ascontiguousarray(x)).to(device),)
    if workload.name == "rnn-loop":
        args += (torch.tensor(workload.extra["steps"]),)  # a host scalar: the loop bound is read on the host
    return args

