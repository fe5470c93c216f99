"""Steps of a workload in each TensorFlow mode: eager, tf.function, tf.function with XLA.

The training step is the whole of forward, GradientTape and SGD update, so in graph
modes it is traced (and for XLA compiled) as one function, as TensorFlow users write it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import Case
from . import tf_models
from .specs import LEARNING_RATE, Workload, make_batch, make_weights

MODES = ("eager", "function", "xla")


def device_scope(device: str):
    """Pin to the CPU or first GPU; on a CPU-only machine TF places on the CPU anyway."""
    return tf.device("/GPU:0" if device == "cuda" else "/CPU:0")


def prepare(workload: Workload, mode: str, pass_: str, batch: int, device: str, seed: int = 0) -> Case:
    """Build fresh variables and the step for one (mode, pass); tracing waits for the first call."""
    x, target = make_batch(workload, batch)
    with device_scope(device):
        model = tf_models.build(workload, make_weights(workload, seed))
        args = tf_models.inputs(workload, x)
        target = tf.constant(target)

    if pass_ == "inference":

        def body():
            return model(*args)

    else:

        def body():
            return _sgd_step(model, args, target)

    fn = _in_mode(body, mode)
    count = _zero if mode == "eager" else fn.experimental_get_tracing_count

    if device == "cpu" and tf.config.list_physical_devices("GPU"):

        def step():
            with device_scope(device):
                return fn()

    else:
        step = fn
    return Case(step=step, graph_count=count, module=fn, model=model)


def _loss_and_grads(model, args, target):
    """MSE loss and its gradients for every variable, as the training step and parity see them."""
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(*args) - target))
    return loss, tape.gradient(loss, model.params)


def _sgd_step(model, args, target):
    """One training step: forward, GradientTape, plain SGD update in place; returns the loss."""
    loss, grads = _loss_and_grads(model, args, target)
    for variable, grad in zip(model.params, grads):
        variable.assign_sub(LEARNING_RATE * grad)
    return loss


def _in_mode(body, mode: str):
    """``body`` as it runs in ``mode``: as is (eager), traced (function), traced and compiled (xla)."""
    if mode == "eager":
        return body
    if mode in ("function", "xla"):
        return tf.function(body, jit_compile=(mode == "xla"))
    raise ValueError(f"unknown tensorflow mode {mode!r}")


def _zero() -> int:
    return 0


def forward_numpy(workload: Workload, mode: str, batch: int) -> np.ndarray:
    return prepare(workload, mode, "inference", batch, "cpu").step().numpy()


def loss_and_grads(workload: Workload, batch: int) -> tuple[float, dict[str, np.ndarray]]:
    """Eager loss and gradients in the canonical numpy layout, for the parity check."""
    model = tf_models.build(workload, make_weights(workload))
    x, target = make_batch(workload, batch)
    loss, grads = _loss_and_grads(model, tf_models.inputs(workload, x), target)
    return float(loss), model.canonical([g.numpy() for g in grads])


def trainer(workload: Workload, mode: str, device: str, seed: int = 0):
    """A training step that takes its batch as arguments: ``step(x, target) -> loss``.

    For benches that feed the model from an input pipeline; x is NHWC for images.
    """
    with device_scope(device):
        model = tf_models.build(workload, make_weights(workload, seed))

    def body(x, target):
        return _sgd_step(model, (x,), target)

    return _in_mode(body, mode)
