"""Precision as an axis: the parity tolerance each dtype earns, and whether this CPU has bfloat16.

Framework-free (numpy only), so the tolerance rule is testable without torch or TF.

The tolerance rule, stated once here and in README ("API levels"): a low-precision case
is compared with the float32 low-level reference at

    rtol = TOL_EPS_MULTIPLE * eps(dtype),   atol = rtol * max|reference|

where eps is the dtype's machine epsilon (bfloat16 2**-7, float16 2**-10). Mixed
precision rounds weights and activations to the dtype at each matmul input (about
eps/2 relative each) and accumulates in float32; over a few layers those roundings add
up to a few eps of the output's scale, so 8 eps leaves room for depth without accepting
a wrong function: for bfloat16 that is 6.25% of the output's largest magnitude. float32
keeps the suite's rule (parity.RTOL, parity.ATOL_SCALE).

Gradients are looser: a gradient is a reduction over the whole batch, and Keras's
mixed_bfloat16 reduces in bfloat16 (a bias gradient summed over 32 x 128 positions lost
47% norm-wise in the transformer here; torch autocast, reducing in float32, at most 6.4%
on mlp-large). So a low-precision one-step update is compared norm-wise,
||update - reference|| <= GRAD_NORM_RTOL_LOW * ||reference||: it still fails a gradient
of the wrong sign, scale or parameter, not one that rounding moved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .parity import ATOL_SCALE, RTOL

TOL_EPS_MULTIPLE = 8
EPS = {"float32": float(np.finfo(np.float32).eps), "float16": float(np.finfo(np.float16).eps), "bfloat16": 2.0 ** -7}
GRAD_NORM_RTOL_LOW = 0.5
PRECISIONS = ("float32", "bfloat16", "float16")
# CPU flags that give native bfloat16 arithmetic (AVX512-BF16 dot products, AMX tiles).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def tolerance(dtype: str) -> tuple[float, float]:
    """(rtol, atol_scale) for comparing a ``dtype`` result with the float32 reference."""
    if dtype not in EPS:
        raise ValueError(f"no tolerance rule for dtype {dtype!r}; known: {', '.join(EPS)}")
    if dtype == "float32":
        return RTOL, ATOL_SCALE
    rtol = TOL_EPS_MULTIPLE * EPS[dtype]
    return rtol, rtol


def assert_close_at(actual, expected, dtype: str, what: str, atol_floor: float = 0.0) -> None:
    """Like parity.assert_close, at the tolerance ``dtype`` earns (see the module docstring).

    ``atol_floor`` raises the absolute tolerance where the compared values carry a known
    absolute error (a difference of two stored weights carries their rounding)."""
    actual = np.asarray(actual, dtype=np.float32)
    expected = np.asarray(expected, dtype=np.float32)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape} != {expected.shape}")
    rtol, atol_scale = tolerance(dtype)
    atol = max(atol_scale * float(np.max(np.abs(expected), initial=0.0)), atol_floor)
    diff = np.abs(actual - expected)
    bad = diff > atol + rtol * np.abs(expected)
    if bad.any():
        worst = np.unravel_index(np.argmax(diff), diff.shape)
        raise AssertionError(f"{what} ({dtype}): {int(bad.sum())}/{bad.size} values differ beyond rtol={rtol:.3g}, "
                             f"atol={atol:.3g}; worst at {worst}: {actual[worst]!r} vs {expected[worst]!r}")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def bf16_native(flags: set[str] | None = None) -> bool:
    """True when the CPU computes bfloat16 natively; otherwise frameworks emulate it in float32."""
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in BF16_FLAGS)


def assert_update_close(actual, expected, dtype: str, what: str, atol_floor: float = 0.0) -> None:
    """A one-step update (gradient): element-wise in float32, norm-wise in low precision."""
    if dtype == "float32":
        return assert_close_at(actual, expected, dtype, what, atol_floor)
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape} != {expected.shape}")
    ref = float(np.linalg.norm(expected))
    err = float(np.linalg.norm(actual - expected))
    if err > GRAD_NORM_RTOL_LOW * ref + atol_floor * np.sqrt(expected.size):
        raise AssertionError(f"{what} ({dtype}): norm-wise relative error {err / max(ref, 1e-30):.3g} > "
                             f"{GRAD_NORM_RTOL_LOW}")
