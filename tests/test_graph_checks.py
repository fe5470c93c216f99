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


def test_aotinductor_mode_skips_with_its_reason_where_it_cannot_run():
    """export-aoti: no training step (the package has no autograd), no rnn-loop, no C++ compiler: each an
    UnsupportedMode that the bench turns into a skip with the reason."""
    pytest.importorskip("torch")
    from torch._inductor import config

    from benches.workloads import UnsupportedMode, torch_runner

    with pytest.raises(UnsupportedMode, match="no autograd"):
        torch_runner.prepare(WORKLOADS["mlp-small"], "export-aoti", "train", 2, "cpu")
    with pytest.raises(UnsupportedMode, match="Python loop"):
        torch_runner.prepare(WORKLOADS["rnn-loop"], "export-aoti", "inference", 2, "cpu")
    assert torch_runner.aoti_unavailable() is None  # this machine has g++
    with config.patch({"cpp.cxx": ("no-such-c++-compiler",)}):
        assert "C++ compiler" in torch_runner.aoti_unavailable()
        with pytest.raises(UnsupportedMode, match="C\\+\\+ compiler"):
            torch_runner.prepare(WORKLOADS["mlp-small"], "export-aoti", "inference", 2, "cpu")
    assert torch_runner.aoti_unavailable() is None


def test_aotinductor_package_is_compiled_once_per_model(monkeypatch):
    """The steady-state cases reuse the process's package at every batch (dynamic batch dimension); a
    first-call case (reuse_package=False) compiles anew. One real compile (seconds), matching eager."""
    torch = pytest.importorskip("torch")
    import torch._inductor

    from benches.workloads import torch_runner
    from benches.workloads.parity import assert_close

    workload = WORKLOADS["mlp-small"]
    monkeypatch.setattr(torch_runner, "_AOTI_PACKAGES", {})
    compiled = torch_runner.prepare(workload, "export-aoti", "inference", 2, "cpu")
    out = compiled.step()
    assert isinstance(out, torch.Tensor) and len(torch_runner._AOTI_PACKAGES) == 1
    assert_close(out.numpy(), torch_runner.prepare(workload, "eager", "inference", 2, "cpu").step().numpy(),
                 "export-aoti vs eager")

    class Compiled(Exception):
        pass

    def refuse(*args, **kwargs):
        raise Compiled

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", refuse)
    again = torch_runner.prepare(workload, "export-aoti", "inference", 2, "cpu")
    assert torch.equal(again.step(), out)  # loaded from the cache: no compile
    for batch in (1, 5):  # other batches: the same package
        assert_close(torch_runner.prepare(workload, "export-aoti", "inference", batch, "cpu").step().numpy(),
                     torch_runner.prepare(workload, "eager", "inference", batch, "cpu").step().numpy(),
                     f"export-aoti vs eager at b{batch}")
    fresh = torch_runner.prepare(workload, "export-aoti", "inference", 2, "cpu", reuse_package=False)
    with pytest.raises(Compiled):
        fresh.step()
