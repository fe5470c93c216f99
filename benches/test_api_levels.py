"""API levels: the code users write (Keras compile/fit, nn.Module + torch.optim) against the
low-level twins of the graph benchmarks (tf.nn / F.* on explicit parameters, hand-written SGD).

- ``test_idiomatic_train``: one pass of training over a fixed set of ``N_BATCHES`` batches
  per round. TensorFlow: ``model.fit`` with ``jit_compile`` False (a tf.function) or True
  (XLA), and a loop of ``train_on_batch``; PyTorch: optim.SGD + backward + step +
  ``zero_grad(set_to_none=True)``, eager and under ``torch.compile``. The first epoch
  (tracing, compiling) is timed on its own and recorded as ``first_epoch_s`` /
  ``compile_s``; steady state never includes it. The report divides the per-sample time
  by the low-level step's (graph/<workload>/train/...) for the overhead of the API.
- ``test_fit_batches_per_call``: Keras ``fit`` has a fixed cost per call (data adapter,
  iterator, callbacks, epoch logic) on top of its cost per batch, so it is timed at more
  batches per call than ``test_idiomatic_train``'s ``N_BATCHES``. The tooling fits time per
  call = per-call cost + batches x per-step cost over the cases (``batches_per_call`` in
  extra_info) and reports the two apart (benchruns/claims/percall.py). ``train_on_batch``
  is one batch per call by design: its time per batch is what it costs as used. There is no
  ``predict`` or ``evaluate`` case.
- ``test_max_autotune``: ``torch.compile(mode="max-autotune")`` (full profile only: its
  autotuning takes minutes), with its compile time.
- ``test_mixed_precision``: the same idiomatic loops in float32 and bfloat16 autocast on
  the CPU (float16 with a GradScaler and bfloat16 on CUDA). Whether the CPU computes
  bfloat16 natively is recorded (``bf16_native``): without it the frameworks emulate it,
  and a speed-up or slow-down is the emulation's.
- ``test_channels_last``: the torch CNN in NCHW and channels-last memory against Keras's
  native NHWC.

Every idiomatic model is built from the workload's numpy weights and, before timing,
must match its low-level twin on the forward, the loss and the weights after one step.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

from benches.workloads import UnsupportedMode, WORKLOADS
from benches.workloads.parity import assert_close
from benches.workloads.precision import assert_close_at, assert_update_close, bf16_native
from benches.workloads.specs import LEARNING_RATE, make_batch, make_weights
from conftest import fence_for, median_seconds

pytestmark = pytest.mark.graph

EPS32 = float(np.finfo(np.float32).eps)
N_BATCHES = 4  # batches per timed round: one fit epoch, or one pass of the torch loop
FIT_MODES = {"tensorflow": ["fit", "fit-xla"]}
# batches per fit call beyond N_BATCHES, for the line per-call cost + batches x per-step cost
FIT_GRID = {
    "smoke": [dict(workload=["mlp-small"], batch=[8], batches_per_call=[8], mode=FIT_MODES)],
    "quick": [dict(workload=["mlp-small"], batch=[32], batches_per_call=[64], mode={"tensorflow": ["fit"]})],
    "full": [dict(workload=["mlp-small", "cnn", "transformer"], batch=[32], batches_per_call=[16, 64],
                  mode=FIT_MODES)],
}
API_MODES = {"torch": ["optim-eager", "optim-compile"], "tensorflow": ["fit", "fit-xla", "train_on_batch"]}
# The low-level mode (test_graph_modes) each idiomatic mode runs the same math as.
LOW_LEVEL_MODE = {"optim-eager": "eager", "optim-compile": "compile", "optim-max-autotune": "compile",
                  "fit": "function", "fit-xla": "xla", "train_on_batch": "function"}
IDIOMATIC = ["mlp-small", "mlp-large", "cnn", "transformer"]  # rnn-loop: see keras_models.RNN_REASON

GRID = {
    "smoke": [dict(workload=["mlp-small"], batch=[8], mode=API_MODES)],
    "quick": [dict(workload=["mlp-small"], batch=[32], mode={"torch": ["optim-eager"], "tensorflow": ["fit"]})],
    "full": [dict(workload=["mlp-small", "cnn", "transformer"], batch=[32], mode=API_MODES)],
}
AUTOTUNE_GRID = {p: [dict(workload=["mlp-small"], batch=[32], framework=["torch"])] for p in ("smoke", "quick", "full")}
PRECISION_MODE = {"torch": "optim-eager", "tensorflow": "fit"}
PRECISION_GRID = {
    "smoke": [dict(workload=["mlp-small"], batch=[8], framework=["torch", "tensorflow"], precision=["bfloat16"],
                   device=["cpu"]),
              dict(workload=["mlp-small"], batch=[8], framework=["torch"], precision=["float16", "bfloat16"],
                   device=["cuda"])],
    "quick": [dict(workload=["mlp-small"], batch=[32], framework=["torch"], precision=["bfloat16"], device=["cpu"])],
    "full": [dict(workload=["mlp-large", "cnn"], batch=[32], framework=["torch", "tensorflow"],
                  precision=["float32", "bfloat16"], device=["cpu"]),
             dict(workload=["mlp-large", "cnn"], batch=[32], framework=["torch"],
                  precision=["float32", "float16", "bfloat16"], device=["cuda"])],
}
LAYOUT_GRID = {
    "smoke": [dict(batch=[8], pass_=["inference", "train"], mode={"torch": ["nchw", "channels-last"],
                                                                   "tensorflow": ["nhwc"]})],
    "quick": [dict(batch=[32], pass_=["inference"], mode={"torch": ["nchw", "channels-last"], "tensorflow": ["nhwc"]})],
    "full": [dict(batch=[32, 128], pass_=["inference", "train"], mode={"torch": ["nchw", "channels-last"],
                                                                         "tensorflow": ["nhwc"]})],
}


# --------------------------------------------------------------------------- building cases


def batches(workload: str, batch: int, n: int = N_BATCHES) -> list[tuple[np.ndarray, np.ndarray]]:
    """The fixed batches of one round; the first is the batch the low-level step trains on."""
    w = WORKLOADS[workload]
    return [make_batch(w, batch)] + [make_batch(w, batch, seed=1000 * k) for k in range(1, n)]


def _keras():
    from benches.workloads import keras_models

    return keras_models


def _torch():
    from benches.workloads import torch_modules

    return torch_modules


def build_keras(workload, mode, weights, policy="float32"):
    try:
        return _keras().compiled(WORKLOADS[workload], weights, jit_compile=(mode == "fit-xla"), policy=policy)
    except UnsupportedMode as exc:
        pytest.skip(f"keras cannot build {workload}: {exc}")


def build_torch(workload, weights, device="cpu"):
    try:
        return _torch().build(WORKLOADS[workload], weights).to(device)
    except UnsupportedMode as exc:
        pytest.skip(f"torch.nn cannot build {workload}: {exc}")


@functools.lru_cache(maxsize=None)
def low_level_reference(framework: str, workload: str, batch: int):
    """The low-level twin's forward output, first loss and weights after one SGD step (float32, CPU)."""
    w = WORKLOADS[workload]
    if framework == "torch":
        from benches.workloads import torch_runner as runner

        output = runner.forward_numpy(w, "eager", batch)
        case = runner.prepare(w, "eager", "train", batch, "cpu")
        loss = float(case.step().detach())
        after = case.model.canonical(dict(case.model.named_parameters()))
    else:
        from benches.workloads import tf_runner as runner

        output = runner.forward_numpy(w, "eager", batch)
        case = runner.prepare(w, "eager", "train", batch, "cpu")
        loss = float(case.step())
        after = case.model.canonical(case.model.params)
    return output, loss, after


def check_twin(framework, workload, batch, one_step, what, dtype="float32"):
    """Forward, loss and one step of ``one_step`` (a fresh model's ``() -> (output, loss, weights)``)
    against the low-level twin: the step's update (weights after minus before), not the
    weights, so a wrong gradient cannot hide behind the unchanged bulk of a weight."""
    output, loss, after = one_step()
    ref_output, ref_loss, ref_after = low_level_reference(framework, workload, batch)
    before = make_weights(WORKLOADS[workload])
    assert_close_at(output, ref_output, dtype, f"{what} output")
    assert_close_at(np.float32(loss), np.float32(ref_loss), dtype, f"{what} loss")
    assert set(after) == set(ref_after), f"{what}: parameter names differ: {set(after) ^ set(ref_after)}"
    for name in ref_after:
        # A stored weight is rounded to float32 (half an ulp), so the update read back as
        # (after - before) / lr carries up to about eps * |w| / lr of absolute error.
        floor = 2 * EPS32 * float(np.max(np.abs(before[name]))) / LEARNING_RATE
        assert_update_close((after[name] - before[name]) / LEARNING_RATE,
                            (ref_after[name] - before[name]) / LEARNING_RATE,
                            dtype, f"{what} one-step update (gradient) of {name}", atol_floor=floor)


def keras_one_step(workload, mode, batch, policy="float32"):
    def run():
        w = WORKLOADS[workload]
        model = build_keras(workload, mode, make_weights(w), policy)
        x, y = make_batch(w, batch)
        output = np.asarray(model(x, training=False), dtype=np.float32)
        loss = model.train_on_batch(x, y)
        return output, loss, _keras().canonical(w, model)

    return run


def torch_one_step(workload, batch, autocast=None, compile_mode=None):
    def run():
        import torch

        w = WORKLOADS[workload]
        model = build_torch(workload, make_weights(w))
        x, y = make_batch(w, batch)
        xt = _torch().inputs(w, x)
        target = torch.from_numpy(y)
        fn = torch.compile(model, mode=compile_mode) if compile_mode else model
        with torch.no_grad(), torch.autocast("cpu", dtype=getattr(torch, autocast or "bfloat16"), enabled=autocast is not None):
            output = fn(xt).float().numpy()
        loss = _torch().train_loop(fn, [(xt, target)], LEARNING_RATE, autocast=autocast)()
        return output, float(loss), _torch().canonical(w, model)

    return run


def keras_fence(model):
    """Wait for fit's updates: read one variable (TF runs the steps in order, the read waits)."""
    last = model.trainable_variables[-1]
    return lambda out: np.asarray(last)


def first_and_steady(run, fence):
    """Seconds of the first call (tracing/compiling plus the work), then one warm call."""
    start = time.perf_counter()
    fence(run())
    first = time.perf_counter() - start
    fence(run())
    return first


def record_first_call(benchmark, first_s):
    median = median_seconds(benchmark)
    benchmark.extra_info["first_epoch_s"] = first_s
    if median is not None:
        benchmark.extra_info["compile_s"] = max(first_s - median, 0.0)


def keras_run(model, mode, data, batch):
    if mode == "train_on_batch":
        def run():
            loss = None
            for x, y in data:
                loss = model.train_on_batch(x, y)
            return loss
        return run
    x_all = np.concatenate([x for x, _ in data])
    y_all = np.concatenate([y for _, y in data])
    return lambda: model.fit(x_all, y_all, batch_size=batch, epochs=1, shuffle=False, verbose=0)


def torch_run(workload, model, data, device, autocast=None, scaler=None):
    import torch

    w = WORKLOADS[workload]
    tensors = [(_torch().inputs(w, x).to(device), torch.from_numpy(y).to(device)) for x, y in data]
    return _torch().train_loop(model, tensors, LEARNING_RATE, autocast=autocast, device=device, scaler=scaler)


def api_group(workload, batch, device):
    return f"api/{workload}/train/b{batch}/{device}"


# --------------------------------------------------------------------------- benchmarks


def test_idiomatic_train(benchmark, measure, framework, mode, workload, batch, device):
    """Steady per-sample training time of the idiomatic API; its first epoch on its own."""
    label = f"{framework} {mode} {workload}"
    data = batches(workload, batch)
    weights = make_weights(WORKLOADS[workload])
    info = dict(mode=mode, workload=workload, batch=batch, level="idiomatic", low_level_mode=LOW_LEVEL_MODE[mode],
                steps=N_BATCHES, precision="float32", **{"pass": "train"})
    if framework == "tensorflow":
        info["batches_per_call"] = 1 if mode == "train_on_batch" else N_BATCHES
        time_keras(benchmark, measure, mode, workload, batch, device, data, weights, info, label)
    else:
        import torch
        from benches.workloads.torch_runner import _graph_count

        compiled = mode == "optim-compile"
        torch._dynamo.reset()
        check_twin(framework, workload, batch, torch_one_step(workload, batch, compile_mode="default" if compiled
                                                              else None), label)
        torch._dynamo.reset()  # the parity check compiled this code: the first epoch must compile afresh
        model = build_torch(workload, weights, device)
        fn = torch.compile(model) if compiled else model
        run, fence = torch_run(workload, fn, data, device), fence_for("torch", device)
        first_s = first_and_steady(run, fence)
        graphs = _graph_count()
        measure(run, framework=framework, device=device, group=api_group(workload, batch, device),
                samples=batch * N_BATCHES, **info)
        assert _graph_count() == graphs, f"{label} recompiled during the timed phase"
        record_first_call(benchmark, first_s)


def time_keras(benchmark, measure, mode, workload, batch, device, data, weights, info, label):
    """Parity with the twin, the first call on its own, then the warm calls timed; no retrace allowed."""
    check_twin("tensorflow", workload, batch, keras_one_step(workload, mode, batch), label)
    model = build_keras(workload, mode, weights)
    run, fence = keras_run(model, mode, data, batch), keras_fence(model)
    first_s = first_and_steady(run, fence)
    traces = _keras().tracing_count(model)
    measure(run, framework="tensorflow", device=device, group=api_group(workload, batch, device),
            samples=batch * len(data), fence=fence, **info)
    assert _keras().tracing_count(model) == traces, f"{label} retraced during the timed phase"
    record_first_call(benchmark, first_s)


@pytest.mark.grid(FIT_GRID)
def test_fit_batches_per_call(benchmark, measure, framework, mode, workload, batch, batches_per_call, device):
    """One Keras fit call over ``batches_per_call`` batches: with test_idiomatic_train's N_BATCHES
    case, the points of the line that splits fit's per-call cost from its per-step cost."""
    label = f"{framework} {mode} {workload} ({batches_per_call} batches per call)"
    info = dict(mode=mode, workload=workload, batch=batch, level="idiomatic", low_level_mode=LOW_LEVEL_MODE[mode],
                steps=batches_per_call, batches_per_call=batches_per_call, precision="float32", **{"pass": "train"})
    time_keras(benchmark, measure, mode, workload, batch, device, batches(workload, batch, batches_per_call),
               make_weights(WORKLOADS[workload]), info, label)


@pytest.mark.slow
@pytest.mark.timeout(420, method="signal")
@pytest.mark.grid(AUTOTUNE_GRID)
def test_max_autotune(benchmark, measure, framework, workload, batch, device):
    """torch.compile(mode="max-autotune") on the idiomatic loop: steady time and its (long) compile."""
    import torch
    from benches.workloads.torch_runner import _graph_count

    torch._dynamo.reset()
    model = build_torch(workload, make_weights(WORKLOADS[workload]), device)
    fn = torch.compile(model, mode="max-autotune")
    run, fence = torch_run(workload, fn, batches(workload, batch), device), fence_for("torch", device)
    first_s = first_and_steady(run, fence)  # autotuning happens here, before the parity check reuses its kernels
    check_twin(framework, workload, batch, torch_one_step(workload, batch, compile_mode="max-autotune"),
               f"torch optim-max-autotune {workload}")
    graphs = _graph_count()
    measure(run, framework=framework, device=device, group=api_group(workload, batch, device),
            samples=batch * N_BATCHES, mode="optim-max-autotune", workload=workload, batch=batch, level="idiomatic",
            low_level_mode="compile", steps=N_BATCHES, precision="float32", **{"pass": "train"})
    assert _graph_count() == graphs, "max-autotune recompiled during the timed phase"
    record_first_call(benchmark, first_s)


@pytest.mark.grid(PRECISION_GRID)
def test_mixed_precision(benchmark, measure, framework, precision, workload, batch, device):
    """The idiomatic loop (torch optim eager, Keras fit) in one precision; float32 is its baseline."""
    mode = PRECISION_MODE[framework]
    label = f"{framework} {mode} {precision} {workload}"
    data = batches(workload, batch)
    weights = make_weights(WORKLOADS[workload])
    low = None if precision == "float32" else precision
    info = dict(mode=mode, workload=workload, batch=batch, level="idiomatic", precision=precision, steps=N_BATCHES,
                bf16_native=bf16_native() if device == "cpu" else None, **{"pass": "train"})
    if framework == "tensorflow":
        policy = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}[precision]
        if device == "cpu":
            check_twin(framework, workload, batch, keras_one_step(workload, mode, batch, policy), label, precision)
        model = build_keras(workload, mode, weights, policy)
        run, fence = keras_run(model, mode, data, batch), keras_fence(model)
    else:
        import torch

        if device == "cpu":
            if precision == "float16":
                pytest.skip("float16 autocast is a CUDA case here; the CPU case is bfloat16")
            check_twin(framework, workload, batch, torch_one_step(workload, batch, autocast=low), label, precision)
        model = build_torch(workload, weights, device)
        scaler = torch.amp.GradScaler("cuda") if precision == "float16" else None
        run, fence = torch_run(workload, model, data, device, autocast=low, scaler=scaler), fence_for("torch", device)
    first_s = first_and_steady(run, fence)
    measure(run, framework=framework, device=device, group=f"precision/{workload}/train/b{batch}/{device}",
            samples=batch * N_BATCHES, fence=fence, **info)
    record_first_call(benchmark, first_s)


@pytest.mark.grid(LAYOUT_GRID)
def test_channels_last(measure, framework, mode, pass_, batch, device):
    """The idiomatic CNN in torch NCHW and channels-last memory, and Keras NHWC; eager, one step."""
    workload = "cnn"
    w = WORKLOADS[workload]
    weights = make_weights(w)
    x, y = make_batch(w, batch)
    ref_output = low_level_reference(framework, workload, batch)[0] if batch <= 32 else None
    if framework == "tensorflow":
        model = build_keras(workload, "fit", weights)
        if pass_ == "inference":
            def step():
                return model(x, training=False)
        else:
            def step():
                return model.train_on_batch(x, y)
        out = model(x, training=False)
        fence = keras_fence(model)
    else:
        import torch

        model = build_torch(workload, weights, device)
        channels_last = mode == "channels-last"
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        xt = _torch().inputs(w, x, channels_last=channels_last).to(device)
        with torch.no_grad():
            out = model(xt).cpu()
        if pass_ == "inference":
            def step():
                with torch.no_grad():
                    return model(xt)
        else:
            step = _torch().train_loop(model, [(xt, torch.from_numpy(y).to(device))], LEARNING_RATE, device=device)
        fence = fence_for("torch", device)
    if ref_output is not None:  # the low-level reference exists at the batches the graph benches cached
        assert_close(np.asarray(out), ref_output, f"{framework} {mode} cnn output")
    measure(step, framework=framework, device=device, group=f"layout/cnn/{pass_}/b{batch}/{device}", samples=batch,
            fence=fence, mode=mode, workload=workload, batch=batch, layout=mode, **{"pass": pass_})
