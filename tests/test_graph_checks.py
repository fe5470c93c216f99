"""The graph benchmarks' guard against retracing and recompiling during timing can fire.

test_steady_state compares ``case.graph_count()`` before and after the timed phase; these
tests show that the count does move when a new graph is built, for both frameworks.
"""

from __future__ import annotations

import pytest

from benches.workloads import WORKLOADS


def test_tf_function_retrace_moves_the_count():
    tf = pytest.importorskip("tensorflow")
    from benches.workloads import tf_runner

    case = tf_runner.prepare(WORKLOADS["mlp-small"], "function", "inference", 2, "cpu")
    case.step()
    before = case.graph_count()
    case.step()
    assert case.graph_count() == before, "a steady call must not retrace"
    # The count the bench reads is tf.function's own tracing count: a new input shape retraces.
    model = tf.function(case.model)
    model(tf.zeros([1, 256]))
    traced = model.experimental_get_tracing_count()
    model(tf.zeros([3, 256]))
    assert model.experimental_get_tracing_count() == traced + 1


def test_torch_compile_recompile_moves_the_count():
    torch = pytest.importorskip("torch")
    from benches.workloads import torch_runner

    case = torch_runner.prepare(WORKLOADS["mlp-small"], "compile", "inference", 2, "cpu")
    case.step()
    before = case.graph_count()
    case.step()
    assert case.graph_count() == before, "a steady call must not recompile"
    with torch.no_grad():
        case.module(torch.zeros(3, 256))  # another batch size: dynamo compiles a new graph
    assert case.graph_count() > before
