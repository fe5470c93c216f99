"""API levels (issue 11): idiomatic models match their low-level twins, the low-precision
tolerance rule, the torchvision/tf.image transform check (or why it cannot run), claim 8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benches.workloads.parity import ATOL_SCALE, RTOL
from benches.workloads.precision import (
    EPS, TOL_EPS_MULTIPLE, assert_close_at, assert_update_close, bf16_native, cpu_flags, tolerance,
)
from benchruns.claims import Benches, claim_8
from benchruns.report_plots import draw
from benchruns.runs import load_run

RECORDED = Path(__file__).parent / "data" / "recorded_api.json"
IDIOMATIC = ["mlp-small", "mlp-large", "cnn", "transformer"]


# --------------------------------------------------------------------------- tolerance rule


def test_tolerance_is_derived_from_the_dtype():
    assert tolerance("float32") == (RTOL, ATOL_SCALE)  # the suite's float32 rule stays
    assert EPS["bfloat16"] == 2.0 ** -7 and EPS["float16"] == 2.0 ** -10
    assert tolerance("bfloat16") == (TOL_EPS_MULTIPLE * 2.0 ** -7,) * 2
    assert tolerance("float16")[0] == TOL_EPS_MULTIPLE * 2.0 ** -10
    with pytest.raises(ValueError, match="no tolerance rule"):
        tolerance("int8")


def _to_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 to bfloat16 (nearest even on the 16 dropped bits), back in float32."""
    bits = x.astype(np.float32).view(np.uint32)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32)


def test_bf16_rounding_passes_at_bf16_tolerance_only():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((64, 256)).astype(np.float32)
    rounded = _to_bf16(ref)
    assert np.abs(rounded - ref).max() > 0  # it did round
    assert_close_at(rounded, ref, "bfloat16", "bf16-rounded")
    with pytest.raises(AssertionError, match="float32"):
        assert_close_at(rounded, ref, "float32", "bf16-rounded at the float32 rule")
    with pytest.raises(AssertionError, match="bfloat16"):  # an offset of 20% of the scale is not rounding
        assert_close_at(ref + 0.2 * np.abs(ref).max(), ref, "bfloat16", "offset")
    with pytest.raises(AssertionError, match="shape"):
        assert_close_at(ref[:2], ref, "bfloat16", "shape")


def test_low_precision_updates_are_compared_norm_wise():
    rng = np.random.default_rng(1)
    grad = rng.standard_normal(1000)
    noisy = grad + 0.3 * np.linalg.norm(grad) / np.sqrt(grad.size) * rng.standard_normal(grad.size)
    assert_update_close(noisy, grad, "bfloat16", "30% norm-wise noise")
    with pytest.raises(AssertionError, match="float32"):
        assert_update_close(noisy, grad, "float32", "the same at float32")
    with pytest.raises(AssertionError, match="norm-wise"):
        assert_update_close(-grad, grad, "bfloat16", "wrong sign")
    with pytest.raises(AssertionError, match="norm-wise"):
        assert_update_close(2 * grad, grad, "bfloat16", "twice the step")


def test_bf16_native_reads_the_cpu_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert cpu_flags(info) == {"fpu", "sse2", "avx2", "avx512f"} and not bf16_native(cpu_flags(info))
    info.write_text("flags\t\t: avx2 avx512_bf16\n")
    assert bf16_native(cpu_flags(info))
    assert cpu_flags(tmp_path / "missing") == set()


# --------------------------------------------------------------------------- parity with the twins


@pytest.mark.parametrize("workload", IDIOMATIC)
def test_keras_model_matches_its_low_level_twin(workload):
    """Forward, loss and the one-step update (gradient) of compile(sgd, mse) + train_on_batch."""
    pytest.importorskip("tensorflow")
    from benches.test_api_levels import check_twin, keras_one_step

    check_twin("tensorflow", workload, 4, keras_one_step(workload, "fit", 4), f"keras {workload}")


@pytest.mark.parametrize("workload", IDIOMATIC)
def test_torch_module_matches_its_low_level_twin(workload):
    """Forward, loss and the one-step update of nn layers + optim.SGD + backward + step."""
    pytest.importorskip("torch")
    from benches.test_api_levels import check_twin, torch_one_step

    check_twin("torch", workload, 4, torch_one_step(workload, 4), f"torch.nn {workload}")


def test_a_wrong_idiomatic_model_fails_parity():
    """A twin check that cannot fail proves nothing: a model with one weight changed must fail it."""
    pytest.importorskip("torch")
    from benches.test_api_levels import check_twin, torch_one_step
    from benches.workloads import torch_modules

    good = torch_one_step("mlp-small", 4)

    def wrong():
        output, loss, after = good()
        return output * 1.01, loss, after

    with pytest.raises(AssertionError, match="output"):
        check_twin("torch", "mlp-small", 4, wrong, "perturbed")
    with pytest.raises(Exception, match="rnn-loop"):
        from benches.workloads import WORKLOADS, make_weights

        torch_modules.build(WORKLOADS["rnn-loop"], make_weights(WORKLOADS["rnn-loop"]))


def test_keras_tracing_count_moves_on_a_new_shape():
    """The retrace guard of test_idiomatic_train reads this count: it must see fit's traces."""
    pytest.importorskip("tensorflow")
    from benches.workloads import WORKLOADS, keras_models, make_batch, make_weights

    w = WORKLOADS["mlp-small"]
    model = keras_models.compiled(w, make_weights(w), jit_compile=False)
    assert keras_models.tracing_count(model) == 0
    x, y = make_batch(w, 8)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    first = keras_models.tracing_count(model)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert first > 0 and keras_models.tracing_count(model) == first
    model.fit(x[:5], y[:5], batch_size=5, epochs=1, verbose=0)
    assert keras_models.tracing_count(model) > first


def test_bf16_autocast_matches_the_float32_twin_at_the_bf16_tolerance():
    """torch.autocast(cpu, bfloat16): forward, loss and one step within the bf16 rule."""
    pytest.importorskip("torch")
    from benches.test_api_levels import check_twin, torch_one_step

    check_twin("torch", "mlp-small", 4, torch_one_step("mlp-small", 4, autocast="bfloat16"), "bf16", "bfloat16")


# --------------------------------------------------------------------------- claim 8


def test_claim_8_on_a_recorded_run(tmp_path):
    """tests/data/recorded_api.json: a real run (exclusive lock) of the api, precision and layout cases with
    their low-level graph steps; see README "API levels" for the command."""
    claim = claim_8(Benches([load_run(RECORDED)]))
    assert claim.supports + claim.contradicts >= 4
    assert claim.verdict in ("supported", "mixed", "contradicted")
    text = "\n".join(claim.findings)
    assert "Keras fit" in text and "nn.Module + optim (eager)" in text
    assert "bfloat16 runs at" in text and "emulat" in text
    assert "channels-last" in text
    assert [p["kind"] for p in claim.plots] == ["api"]
    assert (tmp_path / draw(claim.plots[0], tmp_path, "c8.png")).stat().st_size > 10_000


def test_claim_8_counts_only_overheads_beyond_ten_percent():
    """Crafted: train_on_batch at 1.05x the tf.function step supports; optim eager at 2x the eager step
    contradicts."""
    from benchruns.runs import Bench, Run

    rng = np.random.default_rng(0)

    def bench(group, name, t, info):
        data = t * (1 + 0.01 * rng.standard_normal(30))
        return Bench(name, name, group, float(np.median(data)), float(np.quantile(data, 0.25)),
                     float(np.quantile(data, 0.75)), 30, data, info)

    common = dict(device="cpu", workload="mlp-small", batch=32, threads=2, **{"pass": "train"})
    benches = [
        bench("graph/mlp-small/train/b32/cpu", "low-tf", 0.010, dict(framework="tensorflow", mode="function",
                                                                      samples_per_s=3200, **common)),
        bench("graph/mlp-small/train/b32/cpu", "low-torch", 0.010, dict(framework="torch", mode="eager",
                                                                         samples_per_s=3200, **common)),
        bench("api/mlp-small/train/b32/cpu", "tob", 0.042, dict(framework="tensorflow", mode="train_on_batch",
                                                                low_level_mode="function", samples_per_s=128 / 0.042,
                                                                batches_per_call=1, **common)),
        bench("api/mlp-small/train/b32/cpu", "optim", 0.080, dict(framework="torch", mode="optim-eager",
                                                                  low_level_mode="eager", samples_per_s=128 / 0.080,
                                                                  **common)),
    ]
    run = Run(Path("crafted.json"), {"machine_key": "crafted"}, {}, "", {b.fullname: b for b in benches})
    claim = claim_8(Benches([run]))
    assert (claim.supports, claim.contradicts, claim.verdict) == (1, 1, "mixed")
    assert any("Keras train_on_batch per batch (one call per batch) takes 1.05×" in f for f in claim.findings)
    assert any("optim (eager) takes 2×" in f for f in claim.findings)


# --------------------------------------------------------------------------- fit: per call and per step


def _timed(name, group, seconds, info, rng, rounds=30, noise=0.01):
    """A synthetic benchmark of ``rounds`` raw timings around ``seconds``."""
    from benchruns.runs import Bench

    data = seconds * rng.lognormal(0, noise, rounds)
    return Bench(name, name, group, float(np.median(data)), float(np.quantile(data, 0.25)),
                 float(np.quantile(data, 0.75)), rounds, data, info)


PER_CALL_S, PER_STEP_S, LOW_STEP_S = 0.060, 0.0018, 0.001  # a crafted line: 60 ms per call, 1.8 ms per batch


def _fit_run(counts=(4, 64), xla_counts=(4,), seed=0):
    """fit at ``counts`` batches per call on the line above, fit-xla at ``xla_counts``, their low-level steps,
    and the torch eager loop at 1.05x its step."""
    from benchruns.runs import Run

    rng = np.random.default_rng(seed)
    common = dict(device="cpu", workload="mlp-small", batch=32, threads=2, precision="float32", **{"pass": "train"})
    api = "api/mlp-small/train/b32/cpu"
    low = "graph/mlp-small/train/b32/cpu"
    step = dict(samples_per_s=32 / LOW_STEP_S, **common)
    benches = [_timed("low-tf", low, LOW_STEP_S, dict(framework="tensorflow", mode="function", **step), rng),
               _timed("low-xla", low, LOW_STEP_S, dict(framework="tensorflow", mode="xla", **step), rng),
               _timed("low-torch", low, LOW_STEP_S, dict(framework="torch", mode="eager", **step), rng),
               _timed("optim", api, 4 * 1.05 * LOW_STEP_S, dict(framework="torch", mode="optim-eager", steps=4,
                                                                 low_level_mode="eager",
                                                                 samples_per_s=128 / (4 * 1.05 * LOW_STEP_S), **common),
                      rng)]
    for mode, low_mode, ns in (("fit", "function", counts), ("fit-xla", "xla", xla_counts)):
        for n in ns:
            benches.append(_timed(f"{mode}-{n}", api, PER_CALL_S + n * PER_STEP_S,
                                  dict(framework="tensorflow", mode=mode, low_level_mode=low_mode, steps=n,
                                       batches_per_call=n, samples_per_s=32 * n / (PER_CALL_S + n * PER_STEP_S),
                                       first_epoch_s=0.4, **common), rng))
    return Run(Path("crafted.json"), {"machine_key": "crafted"}, {}, "", {b.fullname: b for b in benches})


def test_fit_line_recovers_the_per_call_and_per_step_costs():
    """Three batch counts on a known line: both coefficients near the truth and inside their 95% CIs;
    without raw rounds the delta method gives intervals about as wide as the bootstrap's."""
    from benchruns.claims.percall import fit_line

    run = _fit_run(counts=(4, 16, 64))
    items = [i for i in Benches([run]).select("api", mode="fit")]
    line = fit_line(items)
    assert line.counts == [4, 16, 64] and line.method == "raw"
    assert line.per_step == pytest.approx(PER_STEP_S, rel=0.1) and line.per_call == pytest.approx(PER_CALL_S, rel=0.1)
    assert line.per_step_ci[0] < PER_STEP_S < line.per_step_ci[1]
    assert line.per_call_ci[0] < PER_CALL_S < line.per_call_ci[1]
    assert line.per_call_in_steps == pytest.approx(PER_CALL_S / PER_STEP_S, rel=0.15)
    for item in items:
        item.bench.data = None
    summary = fit_line(items)
    assert summary.method == "summary" and summary.per_step == pytest.approx(line.per_step)
    for got, boot in ((summary.per_step_ci, line.per_step_ci), (summary.per_call_ci, line.per_call_ci)):
        assert 0.5 < (got[1] - got[0]) / (boot[1] - boot[0]) < 2
    assert summary.per_call_ci[0] < summary.per_call < summary.per_call_ci[1]
    assert fit_line(items[:1]) is None  # one batch count: no line


def test_claim_8_compares_fits_per_step_cost_and_states_its_per_call_cost_apart():
    """fit on the line: 1.8x the step per step (contradicts), 60 ms per call in its own table, not counted;
    fit-xla at one batch count: shown with the per-call cost mixed in, not counted, 'not in this run'."""
    claim = claim_8(Benches([_fit_run()]))
    assert (claim.supports, claim.contradicts) == (1, 1)  # torch optim at 1.05x supports, fit per step not
    overhead, per_call = claim.tables[0], claim.tables[1]
    fit_row = next(r for r in overhead.rows if r[2] == "Keras fit")
    assert fit_row[4].startswith("per step (slope over 4/64") and float(fit_row[5]) == pytest.approx(1.8, rel=0.1)
    assert fit_row[-1] == "no"
    xla_row = next(r for r in overhead.rows if r[2] == "Keras fit (jit_compile)")
    assert xla_row[-1] == "not counted" and "per-call cost included" in xla_row[4]
    assert per_call.title.startswith("Fixed cost per call")
    fit_call = next(r for r in per_call.rows if r[2] == "Keras fit")
    assert fit_call[3] == "4/64" and fit_call[4].endswith("ms")
    assert float(fit_call[4].split()[0]) == pytest.approx(60, rel=0.1)
    assert next(r for r in per_call.rows if r[2] == "Keras fit (jit_compile)")[4] == "not in this run"
    assert any("per call" in f and "not counted" in f for f in claim.findings)
    assert any("Keras fit (jit_compile) mlp-small b32: not in this run at two batch counts" in n for n in claim.notes)


def test_claim_8_without_a_second_batch_count_leaves_fit_out_of_the_count():
    claim = claim_8(Benches([_fit_run(counts=(4,))]))
    assert all(r[-1] == "not counted" for r in claim.tables[0].rows if r[2].startswith("Keras fit"))
    per_call = claim.tables[1]
    assert per_call.title.startswith("Fixed cost per call") and len(per_call.rows) == 2
    assert all(r[3] == "4" and r[4] == "not in this run" for r in per_call.rows)
