"""tf.distribute data parallel: MultiWorkerMirroredStrategy on the suite's workloads, and all-reduce alone.

On CPU each worker process is one replica of a ``MultiWorkerMirroredStrategy`` whose
cluster comes from ``TF_CONFIG``; its collectives run over gRPC (ring). On GPUs in one
process, ``MirroredStrategy`` (NCCL). The training step is the low-level twin's (MSE,
plain SGD) as a ``tf.function``: each replica computes its gradients, the replica
context all-reduces them (MEAN, one batched collective), and the mirrored variables
are updated with ``strategy.extended.update``, the path Keras' optimizers take.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from benches.workloads import tf_models
from benches.workloads.specs import LEARNING_RATE, make_weights

_strategy = None


def set_threads(threads: int) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def init(device: str) -> tuple[int, int]:
    """Create the strategy (must come before any other TF op); returns (rank, replicas in sync)."""
    global _strategy
    if device == "cuda":
        tf.config.experimental.enable_tensor_float_32_execution(False)
        _strategy = tf.distribute.MirroredStrategy()  # every visible GPU, one process
        return 0, _strategy.num_replicas_in_sync
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING)
    _strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    resolver = _strategy.cluster_resolver
    return int(resolver.task_id or 0), _strategy.num_replicas_in_sync


def fence(device: str):
    if device == "cuda":
        return lambda out: tf.test.experimental.sync_devices()

    def materialise(out):
        for item in tf.nest.flatten(out):
            item._numpy()  # waits for the value; a view, not a copy

    return materialise


class Trainer:
    """This process's replicas of the data-parallel training step.

    ``x, target`` are the global batch; replica ``i`` (over all workers) takes rows
    ``i*batch:(i+1)*batch``, placed by ``experimental_distribute_values_from_function``.
    """

    def __init__(self, workload, x: np.ndarray, target: np.ndarray, batch: int, device: str):
        strategy = _strategy
        with strategy.scope():
            self.model = tf_models.build(workload, make_weights(workload))
        model = self.model

        def local(ctx, array):
            i = ctx.replica_id_in_sync_group
            return tf.constant(array[i * batch:(i + 1) * batch])

        xs = strategy.experimental_distribute_values_from_function(lambda ctx: local(ctx, x))
        ts = strategy.experimental_distribute_values_from_function(lambda ctx: local(ctx, target))
        extra = tf_models.inputs(workload, x[:1])[1:]  # e.g. the RNN's step count

        def replica_step(xr, tr):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(xr, *extra) - tr))
            grads = tape.gradient(loss, model.params)
            grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN, grads)
            return loss, grads

        @tf.function
        def step():
            loss, grads = strategy.run(replica_step, args=(xs, ts))
            for var, grad in zip(model.params, grads):
                strategy.extended.update(var, lambda v, g: v.assign_sub(LEARNING_RATE * g), args=(grad,))
            return strategy.reduce(tf.distribute.ReduceOp.MEAN, loss, axis=None)

        self.step = step

    def canonical_params(self) -> dict[str, np.ndarray]:
        return self.model.canonical([v.numpy() for v in self.model.params])


def barrier(device: str):
    """A one-float all-reduce across the workers: TF has no barrier call of its own."""
    strategy = _strategy
    one = tf.ones([1])
    fn = tf.function(lambda: strategy.run(
        lambda: tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, one)))
    materialise = fence(device)
    return lambda: materialise(fn())


class AllReduce:
    """The replica context's all-reduce (sum) of one float32 tensor of ``nbytes``, in a tf.function."""

    def __init__(self, nbytes: int, device: str):
        strategy = _strategy
        self.x = tf.ones([nbytes // 4], tf.float32)
        self.fn = tf.function(lambda x: strategy.run(
            # identity places the input on this replica's device; a bare argument has no destination
            lambda v: tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(v)),
            args=(x,)))
        self.out = None

    def step(self):
        self.out = self.fn(self.x)
        return self.out

    def reset(self) -> None:
        pass  # the input is never overwritten: each call writes a new tensor

    def first_value(self) -> float:
        return float(tf.nest.flatten(self.out)[0][0])


def shutdown() -> None:
    pass


def reference_params(workload, x: np.ndarray, target: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    """One process, no strategy, the whole (concatenated) batch: what every worker must end with."""
    model = tf_models.build(workload, make_weights(workload))
    args = tf_models.inputs(workload, x)
    t = tf.constant(target)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(*args) - t))
        for var, grad in zip(model.params, tape.gradient(loss, model.params)):
            var.assign_sub(LEARNING_RATE * grad)
    return model.canonical([v.numpy() for v in model.params])
