"""The workloads as numpy data: one set of weights and inputs that both frameworks load.

Canonical layouts are TensorFlow's (dense weights ``(in, out)``, conv weights HWIO,
images NHWC); the torch side converts at load time, outside any timed region.
Weights are scaled by 1/sqrt(fan_in) so activations stay O(1) at every depth and a
relative tolerance is meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LEARNING_RATE = 0.01


@dataclass(frozen=True)
class Workload:
    """What a workload computes, described by its shapes; the math lives in the model files."""

    name: str
    summary: str
    weight_shapes: dict[str, tuple[int, ...]]
    input_shape: tuple[int, ...]  # per sample, without the batch dimension
    output_dim: int
    extra: dict = field(default_factory=dict)


def _dense(prefix: str, n_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.w": (n_in, n_out), f"{prefix}.b": (n_out,)}


def _mlp(width: int, layers: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(layers):
        shapes.update(_dense(f"fc{i}", width, width))
    return shapes


def _transformer(width: int, mlp_width: int) -> dict[str, tuple[int, ...]]:
    return {
        "ln1.g": (width,), "ln1.b": (width,),
        **_dense("qkv", width, 3 * width),
        **_dense("proj", width, width),
        "ln2.g": (width,), "ln2.b": (width,),
        **_dense("mlp1", width, mlp_width),
        **_dense("mlp2", mlp_width, width),
    }


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("mlp-small", "MLP, 2 layers of width 256, ReLU", _mlp(256, 2), (256,), 256),
        Workload("mlp-large", "MLP, 4 layers of width 2048, ReLU", _mlp(2048, 4), (2048,), 2048),
        Workload(
            "cnn",
            "3 conv3x3+ReLU blocks (32, 64, 128 channels), 2x2 max pools, global average pool, linear head",
            {
                "conv0.w": (3, 3, 3, 32), "conv0.b": (32,),
                "conv1.w": (3, 3, 32, 64), "conv1.b": (64,),
                "conv2.w": (3, 3, 64, 128), "conv2.b": (128,),
                **_dense("head", 128, 10),
            },
            (32, 32, 3),
            10,
        ),
        Workload(
            "rnn-loop",
            "tanh RNN cell (width 128) applied n times, n an input: data-dependent control flow",
            {**_dense("wx", 64, 128), "wh.w": (128, 128), **_dense("head", 128, 10)},
            (64,),
            10,
            extra={"steps": 12, "max_steps": 32},
        ),
        Workload(
            "transformer",
            "one pre-norm encoder block: 4-head self-attention + GELU MLP, sequence 128, width 256",
            _transformer(256, 1024),
            (128, 256),
            256,
            extra={"heads": 4},
        ),
    )
}


def make_weights(workload: Workload, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic float32 weights: scaled normal matrices, small biases, unit LayerNorm gains."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in workload.weight_shapes.items():
        if name.endswith(".g"):
            weights[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif len(shape) == 1:
            weights[name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[:-1]))
            weights[name] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return weights


def make_batch(workload: Workload, batch: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and a regression target of the output's shape (the training loss is MSE)."""
    rng = np.random.default_rng(seed + batch)
    x = rng.standard_normal((batch, *workload.input_shape)).astype(np.float32)
    if workload.name == "cnn":
        x = rng.random((batch, *workload.input_shape), dtype=np.float32)
    target_shape = (batch, workload.input_shape[0], workload.output_dim) if workload.name == "transformer" else (
        batch, workload.output_dim)
    target = rng.standard_normal(target_shape).astype(np.float32)
    return x, target
