"""Claim 8: high-level APIs cost little over hand-written steps.

The idiomatic training loops (benches/test_api_levels.py: Keras ``fit`` / ``train_on_batch``,
torch ``optim.SGD`` + ``backward``, eager and ``torch.compile``) are compared per sample
with the low-level training step of the same math in the same graph mode
(``graph/<workload>/train/b<batch>/<device>``, test_graph_modes.py). Mixed precision
and memory layout are reported beside it; they do not enter this verdict.
"""

from __future__ import annotations

from .common import (
    Benches, Claim, Table, _prefix, fmt_time, mode_label, per_sample_time_ratio, time_ratio,
)

LITTLE = 0.10  # "little": at most 10% more time per sample than the hand-written step
API_LABEL = {
    ("torch", "optim-eager"): "nn.Module + optim (eager)", ("torch", "optim-compile"): "nn.Module + optim (torch.compile)",
    ("torch", "optim-max-autotune"): "nn.Module + optim (max-autotune)",
    ("tensorflow", "fit"): "Keras fit", ("tensorflow", "fit-xla"): "Keras fit (jit_compile)",
    ("tensorflow", "train_on_batch"): "Keras train_on_batch",
}
PRECISION_BASE_MODE = {"torch": "optim-eager", "tensorflow": "fit"}


def api_label(framework, mode) -> str:
    return API_LABEL.get((framework, mode), f"{framework} {mode}")


def _low_level(benches: Benches, item):
    found = benches.select("graph", framework=item.get("framework"), mode=item.get("low_level_mode"),
                           workload=item.get("workload"), batch=item.get("batch"), device=item.get("device"),
                           **{"pass": "train"})
    return min(found, key=lambda i: i.median) if found else None


def claim_8(benches: Benches) -> Claim:
    c = Claim(
        8, "API levels",
        "High-level APIs (Keras compile/fit, nn.Module with torch.optim) cost little over hand-written training "
        "steps of the same math.",
        f"Per-sample training time of each idiomatic loop (api/<workload>/train/b<batch>/<device>, one round = "
        f"a fixed set of batches) over the low-level step of the same graph mode (tf.function for fit and "
        f"train_on_batch, XLA for fit with jit_compile, torch eager or torch.compile), both float32 and "
        f"parity-checked. A comparison supports the claim unless the whole 95% CI of the overhead lies above "
        f"{1 + LITTLE:.2f}× (more than {LITTLE:.0%} extra time). First-epoch (trace/compile) times, mixed precision "
        f"and channels-last are reported beside it and not counted.",
    )
    api = [i for i in benches.select("api") if i.get("precision", "float32") == "float32"]
    devices = sorted({i.get("device") for i in api if i.get("device")}, key=lambda d: (d != "cpu", d))
    rows, bars = [], []
    for item in sorted(api, key=lambda i: (i.get("device"), i.get("workload"), i.get("framework"), i.get("mode"))):
        device = item.get("device")
        low = _low_level(benches, item)
        label = api_label(item.get("framework"), item.get("mode"))
        where = f"{item.get('workload')} b{item.get('batch')}"
        first = item.get("first_epoch_s")
        if low is None:
            c.notes.append(f"{_prefix(device, devices)}{label} {where}: no low-level "
                           f"{mode_label(item.get('framework'), item.get('low_level_mode'))} training step in the run "
                           "to compare with.")
            continue
        cmp = per_sample_time_ratio(item, low, label, mode_label(item.get("framework"), low.get("mode")) + " step")
        supports = cmp.hi is None and cmp.value <= 1 + LITTLE or cmp.lo is not None and cmp.lo <= 1 + LITTLE
        c.count(supports, cmp)
        c.findings.append(f"{_prefix(device, devices)}{where}: {label} takes {cmp.value:.3g}× the time per sample of "
                          f"the hand-written {cmp.b} {cmp.ci_text()}"
                          + (f"; its first epoch took {fmt_time(first)}" if first is not None else "")
                          + f" ({', '.join(cmp.evidence)})")
        rows.append([device, where, label, cmp.b, f"{cmp.value:.3g}", cmp.ci_text(), fmt_time(first),
                     "yes" if supports else "no"])
        bars.append({"label": f"{label}, {where}", "framework": item.get("framework"), "device": device,
                     "value": cmp.value, "lo": cmp.lo, "hi": cmp.hi, "suspect": cmp.suspect})
    if rows:
        c.tables.append(Table(["device", "case", "idiomatic", "low-level", "time ratio", "95% CI", "first epoch",
                               f"within {LITTLE:.0%}"], rows, "Overhead of the high-level API per sample"))
    for device in devices:
        dev_bars = [b for b in bars if b["device"] == device]
        if dev_bars:
            c.plots.append({"kind": "api", "device": device, "bars": dev_bars, "little": 1 + LITTLE,
                            "title": f"Claim 8: idiomatic training time / low-level step ({device})",
                            "ylabel": "time per sample, idiomatic / low-level (1 = no overhead)"})
    _mixed_precision(benches, c)
    _layout(benches, c)
    c.decide("No idiomatic training benchmarks (api/...) with their low-level steps (graph/.../train) in this run.")
    return c


def _mixed_precision(benches: Benches, c: Claim) -> None:
    """bfloat16 / float16 against float32 in the same loop; says when bfloat16 is emulated."""
    rows = []
    for item in benches.select("precision"):
        precision = item.get("precision")
        if precision in (None, "float32"):
            continue
        key = dict(framework=item.get("framework"), workload=item.get("workload"), batch=item.get("batch"),
                   device=item.get("device"))
        base = benches.select("precision", precision="float32", **key) or [
            i for i in benches.select("api", mode=PRECISION_BASE_MODE.get(item.get("framework")), **key)
            if i.get("precision", "float32") == "float32"]
        if not base:
            c.notes.append(f"{precision} {item.get('framework')} {item.get('workload')}: no float32 run of the same "
                           "loop to compare with.")
            continue
        cmp = per_sample_time_ratio(base[0], item, "float32", precision)
        speed = cmp.value  # time(float32) / time(low precision): above 1 is a speed-up
        emulated = item.get("device") == "cpu" and item.get("bf16_native") is False and precision == "bfloat16"
        note = " (this CPU has no native bfloat16: the frameworks emulate it, so this is emulation's effect)" \
            if emulated else ""
        c.findings.append(f"mixed precision, {item.get('framework')} {item.get('mode')} {item.get('workload')} "
                          f"b{item.get('batch')} on {item.get('device')}: {precision} runs at {speed:.3g}× the speed "
                          f"of float32 [CI of time ratio float32/{precision} {cmp.ci_text()}]{note}")
        rows.append([item.get("device"), item.get("framework"), item.get("workload"), precision, f"{speed:.3g}",
                     "emulated" if emulated else ("native" if item.get("bf16_native") else "n/a")])
    if rows:
        c.tables.append(Table(["device", "framework", "workload", "precision", "speed-up over float32",
                               "bfloat16 on this CPU"], rows, "Mixed precision (not counted in the verdict)"))


def _layout(benches: Benches, c: Claim) -> None:
    """torch channels-last against NCHW, and against Keras NHWC, per pass and batch."""
    for item in benches.select("layout", framework="torch", mode="channels-last"):
        key = dict(batch=item.get("batch"), device=item.get("device"), **{"pass": item.get("pass")})
        nchw = benches.select("layout", framework="torch", mode="nchw", **key)
        nhwc = benches.select("layout", framework="tensorflow", mode="nhwc", **key)
        parts = []
        if nchw:
            parts.append(time_ratio(item, nchw[0], "channels-last", "NCHW").plain())
        if nhwc:
            parts.append(time_ratio(item, nhwc[0], "torch channels-last", "Keras NHWC").plain())
        if parts:
            c.findings.append(f"layout, cnn {item.get('pass')} b{item.get('batch')} on {item.get('device')}: "
                              + "; ".join(parts))
