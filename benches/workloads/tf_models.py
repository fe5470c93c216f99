"""The workloads in TensorFlow: tf.nn / tf.linalg on tf.Variables, mirroring torch_models.py.

A model is a ``tf.Module`` whose ``__call__`` is plain TensorFlow: eager when called
directly, traced when wrapped in ``tf.function`` (AutoGraph turns the RNN's loop over
``tf.range`` into a ``tf.while_loop``), compiled when ``jit_compile=True``.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from .specs import Workload


class _Functional(tf.Module):
    def __init__(self, weights: dict[str, np.ndarray]):
        super().__init__()
        # An ordered list keeps the variables in the canonical (weights dict) order.
        self.names = list(weights)
        self.params = [tf.Variable(value, name=name.replace(".", "_")) for name, value in weights.items()]
        self.w = dict(zip(self.names, self.params))

    def canonical(self, tensors) -> dict[str, np.ndarray]:
        return {name: np.asarray(t) for name, t in zip(self.names, tensors)}


class MLP(_Functional):
    def __call__(self, x):
        layers = sum(1 for n in self.names if n.endswith(".w"))
        for i in range(layers):
            x = tf.matmul(x, self.w[f"fc{i}.w"]) + self.w[f"fc{i}.b"]
            if i < layers - 1:
                x = tf.nn.relu(x)
        return x


class CNN(_Functional):
    def __call__(self, x):  # x: NHWC
        def conv(x, i):
            return tf.nn.relu(tf.nn.conv2d(x, self.w[f"conv{i}.w"], 1, "SAME") + self.w[f"conv{i}.b"])

        x = tf.nn.max_pool2d(conv(x, 0), 2, 2, "VALID")
        x = tf.nn.max_pool2d(conv(x, 1), 2, 2, "VALID")
        x = tf.reduce_mean(conv(x, 2), axis=(1, 2))
        return tf.matmul(x, self.w["head.w"]) + self.w["head.b"]


class RNNLoop(_Functional):
    def __init__(self, weights, max_steps: int):
        super().__init__(weights)
        self.max_steps = max_steps

    def __call__(self, x, steps):
        drive = tf.matmul(x, self.w["wx.w"]) + self.w["wx.b"]
        h = tf.zeros_like(drive)
        for _ in tf.range(steps):
            # XLA needs a bound to differentiate through a while loop.
            tf.autograph.experimental.set_loop_options(maximum_iterations=self.max_steps)
            h = tf.tanh(drive + tf.matmul(h, self.w["wh.w"]))
        return tf.matmul(h, self.w["head.w"]) + self.w["head.b"]


class Transformer(_Functional):
    def __init__(self, weights, heads: int):
        super().__init__(weights)
        self.heads = heads

    def _layer_norm(self, x, prefix):
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + 1e-5) * self.w[f"{prefix}.g"] + self.w[f"{prefix}.b"]

    def __call__(self, x):  # x: (batch, seq, width)
        batch, seq, width = tf.unstack(tf.shape(x))
        static_width = x.shape[-1]
        head_dim = static_width // self.heads
        h = self._layer_norm(x, "ln1")
        qkv = tf.matmul(h, self.w["qkv.w"]) + self.w["qkv.b"]
        qkv = tf.transpose(tf.reshape(qkv, [batch, seq, 3, self.heads, head_dim]), [2, 0, 3, 1, 4])
        q, k, v = tf.unstack(qkv)
        scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(head_dim))
        attn = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
        attn = tf.reshape(tf.transpose(attn, [0, 2, 1, 3]), [batch, seq, width])
        x = x + tf.matmul(attn, self.w["proj.w"]) + self.w["proj.b"]
        h = self._layer_norm(x, "ln2")
        h = tf.nn.gelu(tf.matmul(h, self.w["mlp1.w"]) + self.w["mlp1.b"], approximate=False)
        return x + tf.matmul(h, self.w["mlp2.w"]) + self.w["mlp2.b"]


def build(workload: Workload, weights: dict[str, np.ndarray]) -> _Functional:
    if workload.name.startswith("mlp"):
        return MLP(weights)
    if workload.name == "cnn":
        return CNN(weights)
    if workload.name == "rnn-loop":
        return RNNLoop(weights, workload.extra["max_steps"])
    if workload.name == "transformer":
        return Transformer(weights, workload.extra["heads"])
    raise KeyError(workload.name)


def inputs(workload: Workload, x: np.ndarray) -> tuple:
    """The model's positional inputs as tensors on the current device scope."""
    args = (tf.constant(x),)
    if workload.name == "rnn-loop":
        args += (tf.constant(workload.extra["steps"]),)
    return args
