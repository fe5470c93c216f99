"""Parity: both frameworks' versions of a workload must compute the same function.

float32 tolerance as in DESIGN.md: rtol 1e-4 plus an absolute term scaled to the
array's magnitude, since a purely relative test fails on values near zero.
"""

from __future__ import annotations

import numpy as np

RTOL = 1e-4
ATOL_SCALE = 1e-5


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape} != {expected.shape}")
    atol = ATOL_SCALE * float(np.max(np.abs(expected), initial=0.0))
    diff = np.abs(actual - expected)
    bad = diff > atol + RTOL * np.abs(expected)
    if bad.any():
        worst = np.unravel_index(np.argmax(diff - RTOL * np.abs(expected)), diff.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())}/{bad.size} values differ beyond rtol={RTOL}, atol={atol:.3g}; "
            f"worst at {worst}: {actual[worst]!r} vs {expected[worst]!r}")


def check_frameworks_agree(workload, batch: int) -> None:
    """Eager outputs, training loss and every gradient of torch and TensorFlow agree."""
    from . import tf_runner, torch_runner

    assert_close(torch_runner.forward_numpy(workload, "eager", batch),
                 tf_runner.forward_numpy(workload, "eager", batch), f"{workload.name} b{batch} output")
    torch_loss, torch_grads = torch_runner.loss_and_grads(workload, batch)
    tf_loss, tf_grads = tf_runner.loss_and_grads(workload, batch)
    assert_close(torch_loss, tf_loss, f"{workload.name} b{batch} loss")
    assert set(torch_grads) == set(tf_grads), f"parameter names differ: {set(torch_grads) ^ set(tf_grads)}"
    for name in tf_grads:
        assert_close(torch_grads[name], tf_grads[name], f"{workload.name} b{batch} grad {name}")
