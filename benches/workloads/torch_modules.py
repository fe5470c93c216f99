"""The workloads as users write them in PyTorch (torch.nn layers), from the same numpy weights.

The idiomatic twin of torch_models.py: ``nn.Linear``, ``nn.Conv2d``, ``nn.MaxPool2d``,
``nn.LayerNorm``, ``nn.MultiheadAttention`` (batch_first; it computes the twin's fused
qkv attention exactly: ``in_proj_weight`` is qkv.w transposed, split q, k, v then by head).
``canonical`` reads weights back by canonical name in numpy's (TF's) layout, so parity
covers the forward, the loss and one optimiser step.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import UnsupportedMode
from .specs import Workload

_RNN_REASON = ("rnn-loop's step count is a tensor input (data-dependent control flow); nn.RNN runs a "
               "fixed-length sequence, which is a different function")


def _t(value: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(value)).clone()


def _linear(w: np.ndarray, b: np.ndarray) -> nn.Linear:
    layer = nn.Linear(*w.shape)
    with torch.no_grad():
        layer.weight.copy_(_t(w.T))
        layer.bias.copy_(_t(b))
    return layer


def _conv(w: np.ndarray, b: np.ndarray) -> nn.Conv2d:
    kh, kw, cin, cout = w.shape
    layer = nn.Conv2d(cin, cout, (kh, kw), padding=kh // 2)
    with torch.no_grad():
        layer.weight.copy_(_t(w.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
        layer.bias.copy_(_t(b))
    return layer


class CNN(nn.Module):
    def __init__(self, weights):
        super().__init__()
        self.features = nn.Sequential(
            _conv(weights["conv0.w"], weights["conv0.b"]), nn.ReLU(), nn.MaxPool2d(2),
            _conv(weights["conv1.w"], weights["conv1.b"]), nn.ReLU(), nn.MaxPool2d(2),
            _conv(weights["conv2.w"], weights["conv2.b"]), nn.ReLU(),
        )
        self.head = _linear(weights["head.w"], weights["head.b"])

    def forward(self, x):  # NCHW (or channels-last NCHW)
        return self.head(self.features(x).mean(dim=(2, 3)))


class Block(nn.Module):
    """Pre-norm encoder block: x + MHA(LN(x)); x + MLP(LN(x))."""

    def __init__(self, weights, heads: int):
        super().__init__()
        width = weights["ln1.g"].shape[0]
        self.ln1 = nn.LayerNorm(width, eps=1e-5)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = nn.Sequential(_linear(weights["mlp1.w"], weights["mlp1.b"]), nn.GELU(),
                                 _linear(weights["mlp2.w"], weights["mlp2.b"]))
        with torch.no_grad():
            for ln, p in ((self.ln1, "ln1"), (self.ln2, "ln2")):
                ln.weight.copy_(_t(weights[f"{p}.g"]))
                ln.bias.copy_(_t(weights[f"{p}.b"]))
            self.attn.in_proj_weight.copy_(_t(weights["qkv.w"].T))
            self.attn.in_proj_bias.copy_(_t(weights["qkv.b"]))
            self.attn.out_proj.weight.copy_(_t(weights["proj.w"].T))
            self.attn.out_proj.bias.copy_(_t(weights["proj.b"]))

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


def build(workload: Workload, weights: dict[str, np.ndarray]) -> nn.Module:
    if workload.name.startswith("mlp"):
        layers = sum(1 for n in weights if n.endswith(".w"))
        mods = []
        for i in range(layers):
            mods.append(_linear(weights[f"fc{i}.w"], weights[f"fc{i}.b"]))
            if i < layers - 1:
                mods.append(nn.ReLU())
        return nn.Sequential(*mods)
    if workload.name == "cnn":
        return CNN(weights)
    if workload.name == "transformer":
        return Block(weights, workload.extra["heads"])
    raise UnsupportedMode(_RNN_REASON if workload.name == "rnn-loop" else f"no nn.Module for {workload.name}")


def canonical(workload: Workload, model: nn.Module) -> dict[str, np.ndarray]:
    """Current weights by canonical name, in numpy's (TF's) layout, float32."""
    def n(t):
        return t.detach().float().cpu().numpy()

    if workload.name.startswith("mlp"):
        linears = [m for m in model if isinstance(m, nn.Linear)]
        return {k: v for i, m in enumerate(linears) for k, v in ((f"fc{i}.w", n(m.weight).T), (f"fc{i}.b", n(m.bias)))}
    if workload.name == "cnn":
        convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
        out = {}
        for i, m in enumerate(convs):
            out[f"conv{i}.w"] = n(m.weight).transpose(2, 3, 1, 0)
            out[f"conv{i}.b"] = n(m.bias)
        out["head.w"], out["head.b"] = n(model.head.weight).T, n(model.head.bias)
        return out
    m = model
    return {"ln1.g": n(m.ln1.weight), "ln1.b": n(m.ln1.bias), "qkv.w": n(m.attn.in_proj_weight).T,
            "qkv.b": n(m.attn.in_proj_bias), "proj.w": n(m.attn.out_proj.weight).T, "proj.b": n(m.attn.out_proj.bias),
            "ln2.g": n(m.ln2.weight), "ln2.b": n(m.ln2.bias), "mlp1.w": n(m.mlp[0].weight).T,
            "mlp1.b": n(m.mlp[0].bias), "mlp2.w": n(m.mlp[2].weight).T, "mlp2.b": n(m.mlp[2].bias)}


def inputs(workload: Workload, x: np.ndarray, channels_last: bool = False) -> torch.Tensor:
    """The batch in torch's layout: NCHW for images, optionally stored channels-last."""
    if workload.name == "cnn":
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return t.to(memory_format=torch.channels_last) if channels_last else t
    return torch.from_numpy(np.ascontiguousarray(x))


# --------------------------------------------------------------------------- idiomatic training


def train_loop(model: nn.Module, batches, lr: float, autocast: str | None = None, device: str = "cpu",
               scaler=None):
    """``run()`` trains one pass over ``batches`` as users write it; returns the last loss.

    optim.SGD, ``loss.backward()``, ``optimizer.step()``, ``zero_grad(set_to_none=True)``.
    ``autocast`` names a low-precision dtype for forward and loss (``torch.autocast``);
    a GradScaler (float16) scales the loss so small gradients survive.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    dtype = getattr(torch, autocast) if autocast else None

    def run():
        loss = None
        for x, y in batches:
            optimizer.zero_grad(set_to_none=True)
            if dtype is not None:
                with torch.autocast(device, dtype=dtype):
                    loss = nn.functional.mse_loss(model(x).float(), y)
            else:
                loss = nn.functional.mse_loss(model(x), y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
        return loss.detach()

    return run
