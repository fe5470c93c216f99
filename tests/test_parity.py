"""Both frameworks compute the same function: outputs, loss and every gradient agree.

The graph benchmarks also check each mode's first output against the eager reference
before timing; this adds the gradients, which a training-step time alone would hide.
"""

from __future__ import annotations

import numpy as np
import pytest

from benches.workloads import WORKLOADS
from benches.workloads.parity import assert_close

pytest.importorskip("torch")
pytest.importorskip("tensorflow")


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_torch_and_tensorflow_agree(workload):
    from benches.workloads.parity import check_frameworks_agree

    check_frameworks_agree(WORKLOADS[workload], batch=4)


def test_assert_close_catches_a_real_difference():
    expected = np.array([1.0, 2.0, 0.0], dtype=np.float32)
    assert_close(expected * (1 + 5e-5), expected, "within rtol")
    with pytest.raises(AssertionError, match="differ"):
        assert_close(expected * 1.01, expected, "1% off")
    with pytest.raises(AssertionError, match="shape"):
        assert_close(expected[:2], expected, "shape")
