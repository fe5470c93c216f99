"""The graph benchmarks' guard against retracing and recompiling during timing can fire.

test_steady_state compares ``case.graph_count()`` before and after the timed phase; these
tests show that the count does move when a new graph is built, for both frameworks.
"""

from __future__ import annotations

from pathlib import Path

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


def test_aotinductor_package_is_compiled_once_and_loaded_from_the_store(monkeypatch, tmp_path):
    """The steady-state cases reuse the process's package at every batch (dynamic batch dimension), and a
    later process loads it from the store, keyed by what it is made of; a broken stored file is compiled
    again and replaced; a first-call case (reuse_package=False) compiles anew and stores nothing. One real
    compile (seconds), matching eager."""
    torch = pytest.importorskip("torch")
    import torch._inductor

    from benches.workloads import torch_runner
    from benches.workloads.parity import assert_close

    workload = WORKLOADS["mlp-small"]
    store = tmp_path / "store"
    monkeypatch.setattr(torch_runner, "_store_folder", lambda: store)
    monkeypatch.setattr(torch_runner, "_AOTI_PACKAGES", {})
    compiled = torch_runner.prepare(workload, "export-aoti", "inference", 2, "cpu")
    out = compiled.step()
    assert isinstance(out, torch.Tensor) and len(torch_runner._AOTI_PACKAGES) == 1
    assert compiled.provenance == {"aoti_package": "compiled"}
    assert_close(out.numpy(), torch_runner.prepare(workload, "eager", "inference", 2, "cpu").step().numpy(),
                 "export-aoti vs eager")
    [stored] = store.glob("*.pt2")
    package = stored.read_bytes()
    assert package == next(iter(torch_runner._AOTI_PACKAGES.values()))

    class Compiled(Exception):
        pass

    def refuse(*args, **kwargs):
        raise Compiled

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", refuse)
    again = torch_runner.prepare(workload, "export-aoti", "inference", 2, "cpu")
    assert torch.equal(again.step(), out)  # loaded from this process: no compile
    assert again.provenance == {"aoti_package": "this process"}
    for batch in (1, 5):  # other batches: the same package
        assert_close(torch_runner.prepare(workload, "export-aoti", "inference", batch, "cpu").step().numpy(),
                     torch_runner.prepare(workload, "eager", "inference", batch, "cpu").step().numpy(),
                     f"export-aoti vs eager at b{batch}")

    monkeypatch.setattr(torch_runner, "_AOTI_PACKAGES", {})  # as a new process starts
    later = torch_runner.prepare(workload, "export-aoti", "inference", 2, "cpu")
    assert torch.equal(later.step(), out) and later.provenance == {"aoti_package": "store"}
    other_weights = torch_runner.prepare(workload, "export-aoti", "inference", 2, "cpu", seed=1)
    with pytest.raises(Compiled):  # other weights, another digest: not the stored package
        other_weights.step()

    stored.write_bytes(package[: len(package) // 3])  # a truncated file is compiled again and replaced
    monkeypatch.setattr(torch_runner, "_AOTI_PACKAGES", {})

    def recompile(program, package_path):
        package_path.write(package)

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", recompile)
    repaired = torch_runner.prepare(workload, "export-aoti", "inference", 2, "cpu")
    assert torch.equal(repaired.step(), out) and repaired.provenance == {"aoti_package": "compiled"}
    assert stored.read_bytes() == package and sorted(p.name for p in store.iterdir()) == [stored.name]

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", refuse)
    fresh = torch_runner.prepare(workload, "export-aoti", "inference", 2, "cpu", reuse_package=False)
    with pytest.raises(Compiled):
        fresh.step()


def test_a_cold_compile_cache_hides_the_aotinductor_store():
    """The cold first-call cases run in a fresh inductor folder, so the store of packages is not there."""
    pytest.importorskip("torch")
    from benches.workloads import torch_runner

    outside = torch_runner._store_folder()
    with torch_runner.compile_cache(cold=True):
        assert torch_runner._store_folder() != outside
    assert torch_runner._store_folder() == outside


def test_the_aotinductor_digest_follows_weights_graph_and_device():
    """Same model, same digest (nothing in it is an address, a time or the checkout's path); other weights,
    another graph, another thread count or another device, another digest."""
    torch = pytest.importorskip("torch")
    from benches.workloads import torch_models, torch_runner
    from benches.workloads.specs import make_weights

    def program(workload, seed=0):
        model = torch_models.build(WORKLOADS[workload], make_weights(WORKLOADS[workload], seed)).eval()
        width = WORKLOADS[workload].input_shape[0]
        batch = torch.export.Dim("batch", min=1, max=torch_runner.AOTI_MAX_BATCH)
        return torch.export.export(model, (torch.zeros(2, width),), dynamic_shapes=({0: batch},))

    exported = program("mlp-small")
    root = str(Path(__file__).resolve().parents[1])
    assert root in str(exported) and root not in torch_runner.graph_text(exported)  # any checkout, one key
    base = torch_runner.package_digest(exported, "cpu")
    assert torch_runner.package_digest(program("mlp-small"), "cpu") == base
    assert torch_runner.package_digest(program("mlp-small", seed=1), "cpu") != base
    threads = torch.get_num_threads()
    try:  # inductor generates CPU kernels for the thread count of the compile
        torch.set_num_threads(threads + 1)
        assert torch_runner.package_digest(exported, "cpu") != base
    finally:
        torch.set_num_threads(threads)
    assert torch_runner.package_digest(exported, "cpu") == base
    assert torch_runner.package_digest(program("mlp-large"), "cpu") != base
    assert torch_runner.package_digest(program("mlp-small"), "cuda:0" if torch.cuda.is_available() else "meta") != base


def test_an_unwritable_store_costs_a_compile_and_nothing_else(monkeypatch, tmp_path):
    """A store that cannot be written (a file where its folder should be) leaves no partial file and no
    error: the package is used from memory and the next process compiles again. A writable one ends
    with the package alone, no partial file beside it."""
    from benches.workloads import torch_runner

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    torch_runner._write_atomically(blocker / "abc.pt2", b"package")
    assert blocker.read_text() == "" and list(tmp_path.iterdir()) == [blocker]
    target = tmp_path / "store" / "abc.pt2"
    torch_runner._write_atomically(target, b"package")
    assert target.read_bytes() == b"package" and [p.name for p in target.parent.iterdir()] == ["abc.pt2"]
