"""The workloads as users write them in Keras 3 (keras.layers), from the same numpy weights.

The idiomatic twin of tf_models.py: ``build`` returns a ``keras.Model`` whose weights are
set from the canonical numpy weights (Keras shares TF's layouts: dense ``(in, out)``,
conv HWIO, NHWC images), and ``canonical`` reads them back by canonical name, so parity
with the low-level model covers the forward, the loss and one SGD step.
"""

from __future__ import annotations

import numpy as np
import keras

from . import UnsupportedMode
from .specs import Workload

RNN_REASON = ("rnn-loop's step count is a tensor input (data-dependent control flow); keras.layers.SimpleRNN "
              "runs a fixed-length sequence, which is a different function")


def _mlp(workload: Workload, weights):
    layers = sum(1 for n in weights if n.endswith(".w"))
    width = workload.input_shape[0]
    model = keras.Sequential([keras.Input((width,))] + [
        keras.layers.Dense(weights[f"fc{i}.w"].shape[1], activation="relu" if i < layers - 1 else None)
        for i in range(layers)])
    order = [f"fc{i}.{p}" for i in range(layers) for p in ("w", "b")]
    return model, order


def _cnn(workload: Workload, weights):
    conv = keras.layers.Conv2D
    model = keras.Sequential([
        keras.Input(workload.input_shape),
        conv(32, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(2),
        conv(64, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(2),
        conv(128, 3, padding="same", activation="relu"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(workload.output_dim),
    ])
    order = [f"{n}.{p}" for n in ("conv0", "conv1", "conv2", "head") for p in ("w", "b")]
    return model, order


def _transformer(workload: Workload, weights):
    seq, width = workload.input_shape
    heads = workload.extra["heads"]
    head_dim = width // heads
    x_in = keras.Input((seq, width))
    ln1 = keras.layers.LayerNormalization(epsilon=1e-5)
    mha = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=head_dim)
    ln2 = keras.layers.LayerNormalization(epsilon=1e-5)
    mlp1 = keras.layers.Dense(weights["mlp1.w"].shape[1], activation="gelu")  # exact (erf) GELU, as the twin
    mlp2 = keras.layers.Dense(width)
    h = ln1(x_in)
    x = x_in + mha(h, h)
    out = x + mlp2(mlp1(ln2(x)))
    model = keras.Model(x_in, out)
    return model, None


def _transformer_weights(weights, width, heads):
    """Canonical fused qkv / proj matrices split into MultiHeadAttention's per-head kernels."""
    head_dim = width // heads
    qkv_w, qkv_b = weights["qkv.w"], weights["qkv.b"]
    mha = []
    for j in range(3):  # the twin splits the fused projection as (3, heads, head_dim)
        mha.append(qkv_w[:, j * width:(j + 1) * width].reshape(width, heads, head_dim))
        mha.append(qkv_b[j * width:(j + 1) * width].reshape(heads, head_dim))
    mha += [weights["proj.w"].reshape(heads, head_dim, width), weights["proj.b"]]
    return mha


def build(workload: Workload, weights: dict[str, np.ndarray]) -> keras.Model:
    """A keras.Model computing the workload's function with ``weights`` loaded."""
    if workload.name.startswith("mlp"):
        model, order = _mlp(workload, weights)
    elif workload.name == "cnn":
        model, order = _cnn(workload, weights)
    elif workload.name == "transformer":
        model, order = _transformer(workload, weights)
    else:
        raise UnsupportedMode(RNN_REASON if workload.name == "rnn-loop" else f"no Keras model for {workload.name}")
    set_canonical(workload, model, weights)
    return model


def _layers(model):
    return [layer for layer in model.layers if layer.weights]


def set_canonical(workload: Workload, model, weights) -> None:
    if workload.name == "transformer":
        width, heads = workload.input_shape[1], workload.extra["heads"]
        ln1, mha, ln2, mlp1, mlp2 = _layers(model)
        ln1.set_weights([weights["ln1.g"], weights["ln1.b"]])
        mha.set_weights(_transformer_weights(weights, width, heads))
        ln2.set_weights([weights["ln2.g"], weights["ln2.b"]])
        mlp1.set_weights([weights["mlp1.w"], weights["mlp1.b"]])
        mlp2.set_weights([weights["mlp2.w"], weights["mlp2.b"]])
        return
    names = [n for n in weights]
    for layer, (w, b) in zip(_layers(model), zip(names[0::2], names[1::2])):
        layer.set_weights([weights[w], weights[b]])


def canonical(workload: Workload, model) -> dict[str, np.ndarray]:
    """The model's current weights by canonical name, in the canonical layout (float32)."""
    layers = _layers(model)
    values = [[np.asarray(v, dtype=np.float32) for v in layer.get_weights()] for layer in layers]
    if workload.name == "transformer":
        (g1, b1), mha, (g2, b2), (w1, c1), (w2, c2) = values
        width = workload.input_shape[1]
        qkv_w = np.concatenate([mha[2 * j].reshape(width, width) for j in range(3)], axis=1)
        qkv_b = np.concatenate([mha[2 * j + 1].reshape(width) for j in range(3)])
        return {"ln1.g": g1, "ln1.b": b1, "qkv.w": qkv_w, "qkv.b": qkv_b, "proj.w": mha[6].reshape(width, width),
                "proj.b": mha[7], "ln2.g": g2, "ln2.b": b2, "mlp1.w": w1, "mlp1.b": c1, "mlp2.w": w2, "mlp2.b": c2}
    names = list(workload.weight_shapes)
    flat = [v for pair in values for v in pair]
    return dict(zip(names, flat))


# --------------------------------------------------------------------------- idiomatic training


def compiled(workload: Workload, weights, jit_compile: bool, policy: str = "float32") -> keras.Model:
    """The model as users train it: ``compile(optimizer="sgd", loss="mse")``.

    Keras's SGD defaults to learning rate 0.01, the twin's LEARNING_RATE, and "mse"
    averages over every element as the twin's loss does. ``policy`` is Keras's dtype
    policy while the layers are built ("mixed_bfloat16": bfloat16 compute, float32
    variables); the global policy is restored at once, the layers keep theirs.
    """
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build(workload, weights)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model.compile(optimizer="sgd", loss="mse", jit_compile=jit_compile)
    return model


def tracing_count(model) -> int:
    """Traces of the model's train function so far (0 before the first fit).

    Keras 3 keeps ``train_function`` as a plain Python function around its tf.functions
    (the step, the multi-step loop): they are found in its closures and their traces summed.
    """
    seen, total = set(), 0

    def walk(fn, depth):
        nonlocal total
        if fn is None or id(fn) in seen or depth > 4:
            return
        seen.add(id(fn))
        if hasattr(fn, "experimental_get_tracing_count"):
            total += int(fn.experimental_get_tracing_count())
            fn = getattr(fn, "python_function", None)
        for cell in getattr(fn, "__closure__", None) or ():
            value = cell.cell_contents
            if callable(value):
                walk(value, depth + 1)

    walk(getattr(model, "train_function", None), 0)
    return total
