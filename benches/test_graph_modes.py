"""Static versus dynamic graphs: TensorFlow eager / tf.function / XLA against PyTorch
eager / torch.compile / TorchScript / torch.export, for inference and training steps.

Two questions, two benchmarks:
- ``test_steady_state``: the per-step time once warm. Tracing and compiling happen
  before the clock starts, parity with the reference is checked on the first output,
  and a retrace or recompile during timing fails the case.
- ``test_first_call``: the cost of the first call of a graph mode (trace plus
  compile plus one step) on fresh parameters, and the break-even number of steps
  after which it beats eager.

torch has two export modes. ``export`` is ``torch.export.export(...).module()``: the exported
graph run op by op from Python, unoptimised (kept as a point of reference, not as an
ahead-of-time path). ``export-aoti`` is the ahead-of-time path for an exported program,
AOTInductor (``aoti_compile_and_package`` then ``aoti_load_package``), inference only. Its
cold compile takes seconds to tens of seconds per model, so the smoke and quick profiles
run it on one workload and batch. The batch dimension is exported dynamic (as torch's
AOTInductor docs do), so one package serves every batch. The steady-state cases load it as
AOTInductor is used, compiled once and loaded where it runs: from this process, else from a
store inside inductor's cache folder keyed by what the package is made of (torch build,
inductor config, CPU ISA and threads, graph, weights), else compiled and stored; ``aoti_package`` in the
record says which. Its first-call case compiles cold, on its own, in a fresh inductor folder.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import statistics
import time

import pytest

from benches.workloads import PASSES, WORKLOADS, UnsupportedMode
from benches.workloads.parity import assert_close
from conftest import fence_for, median_seconds

pytestmark = pytest.mark.graph

ALL_WORKLOADS = list(WORKLOADS)
MODES = {"torch": ["eager", "compile", "script", "export"], "tensorflow": ["eager", "function", "xla"]}
AOTI = {"torch": ["export-aoti"]}  # inference only: the AOTInductor package has no autograd
# First-call modes: torch.compile once with an empty inductor cache (cold) and once with
# the on-disk cache filled (warm, what a second process start pays).
FIRST_CALL_MODES = {"torch": ["compile-cold", "compile-warm", "script", "export"], "tensorflow": ["function", "xla"]}
# first-call mode -> (the mode prepared, inductor cache: cold, warm or None for no inductor)
FIRST_CALL_BASE = {"compile-cold": ("compile", "cold"), "compile-warm": ("compile", "warm"),
                   "export-aoti": ("export-aoti", "cold")}

GRID = {
    "smoke": [dict(workload=ALL_WORKLOADS, batch=[8], pass_=PASSES, mode=MODES),
              dict(workload=["mlp-small"], batch=[8], pass_=["inference"], mode=AOTI)],
    "quick": [dict(workload=["mlp-small"], batch=[32], pass_=PASSES, mode=MODES),
              dict(workload=["mlp-small"], batch=[32], pass_=["inference"], mode=AOTI)],
    "full": [
        dict(workload=ALL_WORKLOADS, batch=[1, 32, 256], pass_=PASSES, mode=MODES),
        dict(workload=["mlp-small", "mlp-large"], batch=[1024], pass_=PASSES, mode=MODES),
        dict(workload=ALL_WORKLOADS, batch=[1, 32, 256], pass_=["inference"], mode=AOTI),
        dict(workload=["mlp-small", "mlp-large"], batch=[1024], pass_=["inference"], mode=AOTI),
    ],
}
FIRST_CALL_GRID = {
    "smoke": [dict(workload=["mlp-small"], batch=[8], pass_=PASSES, mode=FIRST_CALL_MODES),
              dict(workload=["mlp-small"], batch=[8], pass_=["inference"], mode=AOTI)],
    # AOTInductor's cold compile is the quick profile's single most expensive case: full and smoke only
    "quick": [dict(workload=["mlp-small"], batch=[32], pass_=PASSES, mode=FIRST_CALL_MODES)],
    "full": [dict(workload=ALL_WORKLOADS, batch=[32], pass_=PASSES, mode=FIRST_CALL_MODES),
             dict(workload=ALL_WORKLOADS, batch=[32], pass_=["inference"], mode=AOTI)],
}
FIRST_CALL_ROUNDS = {"compile-cold": 1, "export-aoti": 1}  # a cold compile is slow and its spread small
DEFAULT_FIRST_CALL_ROUNDS = 3
WARM_STEPS = 1


def runner(framework: str):
    return importlib.import_module(f"benches.workloads.{'torch' if framework == 'torch' else 'tf'}_runner")


def prepare(framework, mode, workload, pass_, batch, device, fresh=False):
    """The runner's case, or a skip with the reason; ``fresh`` compiles an AOTInductor package anew."""
    extra = {"reuse_package": False} if fresh and mode == "export-aoti" else {}
    try:
        return runner(framework).prepare(WORKLOADS[workload], mode, pass_, batch, device, **extra)
    except UnsupportedMode as exc:
        pytest.skip(f"{framework} {mode} cannot run {workload}: {exc}")


@functools.lru_cache(maxsize=None)
def reference_output(workload: str, pass_: str, batch: int):
    """The eager output (inference) or first loss (train), computed on the CPU."""
    for framework in ("torch", "tensorflow"):
        try:
            case = runner(framework).prepare(WORKLOADS[workload], "eager", pass_, batch, "cpu")
        except ImportError:
            continue
        return to_numpy(case.step())
    pytest.skip("neither framework is importable")


def to_numpy(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    return value.numpy()


def check_parity(output, workload, pass_, batch, label):
    assert_close(to_numpy(output), reference_output(workload, pass_, batch), f"{label} vs reference")


def group_name(workload, pass_, batch, device):
    return f"graph/{workload}/{pass_}/b{batch}/{device}"


def test_steady_state(measure, framework, mode, workload, pass_, batch, device):
    """Per-step time of one mode, warm: the dynamic-versus-static cost per step."""
    case = prepare(framework, mode, workload, pass_, batch, device)
    check_parity(case.step(), workload, pass_, batch, f"{framework} {mode}")
    for _ in range(WARM_STEPS):
        case.step()
    graphs_before = case.graph_count()
    measure(
        case.step,
        framework=framework, device=device, group=group_name(workload, pass_, batch, device),
        samples=batch, mode=mode, workload=workload, batch=batch, **{"pass": pass_},
        legacy=mode == "script", **case.provenance,
    )
    retraced = case.graph_count() - graphs_before
    assert retraced == 0, f"{framework} {mode} traced or compiled {retraced} new graph(s) during the timed phase"


@pytest.mark.grid(FIRST_CALL_GRID)
def test_first_call(benchmark, threads, framework, mode, workload, pass_, batch, device):
    """Cost of the first call (trace + compile + one step) and steps to break even with eager."""
    base_mode, cache = FIRST_CALL_BASE.get(mode, (mode, None)) if framework == "torch" else (mode, None)
    fence = fence_for(framework, device)
    prepare(framework, base_mode, workload, pass_, batch, device)  # skips here, not inside the timing
    state = {"stack": contextlib.ExitStack()}  # each round's set-up replaces it; its teardown closes it

    def setup():
        stack = contextlib.ExitStack()
        if cache is not None:
            stack.enter_context(runner("torch").compile_cache(cold=(cache == "cold")))
        state["stack"] = stack
        state["case"] = prepare(framework, base_mode, workload, pass_, batch, device, fresh=True)
        return (state["case"],), {}

    def first_call(case):
        fence(case.step())

    benchmark.group = f"graph-first-call/{workload}/{pass_}/b{batch}/{device}"
    benchmark.extra_info.update(framework=framework, mode=mode, device=device, workload=workload,
                                batch=batch, threads=threads, **{"pass": pass_})
    rounds = FIRST_CALL_ROUNDS.get(mode, DEFAULT_FIRST_CALL_ROUNDS)
    if cache == "warm":
        with runner("torch").compile_cache(cold=False):  # fill the disk cache once, untimed
            fence(prepare(framework, base_mode, workload, pass_, batch, device).step())
    cache_dir = runner("torch").inductor_cache_dir() if cache else None
    try:
        benchmark.pedantic(first_call, setup=setup, teardown=lambda case: state["stack"].close(), rounds=rounds)
    finally:  # pytest-benchmark skips the teardown when disabled (make test): a cold cache folder would
        state["stack"].close()  # stay inductor's cache, and every later compile in the process go cold
    assert not cache or runner("torch").inductor_cache_dir() == cache_dir, "a cold inductor cache outlived its case"

    steady = median_step_seconds(state["case"].step, fence)
    eager = median_step_seconds(prepare(framework, "eager", workload, pass_, batch, device).step, fence)
    first_call_s = median_seconds(benchmark)
    if first_call_s is not None:
        compile_s = max(first_call_s - steady, 0.0)
        saving = eager - steady
        benchmark.extra_info.update(
            compile_s=compile_s, steady_step_s=steady, eager_step_s=eager,
            break_even_steps=compile_s / saving if saving > 0 else None,
        )


def median_step_seconds(step, fence, repeats: int = 15) -> float:
    """Median fenced step time after a short warm-up: the figure break-even divides by."""
    for _ in range(WARM_STEPS):
        fence(step())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fence(step())
        times.append(time.perf_counter() - start)
    return statistics.median(times)
