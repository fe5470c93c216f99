"""Claim 8: high-level APIs cost little over hand-written steps.

The idiomatic training loops (benches/test_api_levels.py: Keras ``fit`` / ``train_on_batch``,
torch ``optim.SGD`` + ``backward``, eager and ``torch.compile``) are compared per step
with the low-level training step of the same math in the same graph mode
(``graph/<workload>/train/b<batch>/<device>``, test_graph_modes.py). Keras fit's per-step
cost is the slope over its cases at several batches per call (percall.py), its per-call
cost stated apart. Mixed precision and memory layout are reported beside it; they do not
enter this verdict.
"""

from __future__ import annotations

from .common import (
    Benches, Claim, Table, _prefix, fmt_time, mode_label, per_sample_time_ratio, time_ratio,
)
from .percall import batches_per_call, fit_line, per_step_ratio

LITTLE = 0.10  # "little": at most 10% more time per sample than the hand-written step
API_LABEL = {
    ("torch", "optim-eager"): "nn.Module + optim (eager)", ("torch", "optim-compile"): "nn.Module + optim (torch.compile)",
    ("torch", "optim-max-autotune"): "nn.Module + optim (max-autotune)",
    ("tensorflow", "fit"): "Keras fit", ("tensorflow", "fit-xla"): "Keras fit (jit_compile)",
    ("tensorflow", "train_on_batch"): "Keras train_on_batch",
}
PRECISION_BASE_MODE = {"torch": "optim-eager", "tensorflow": "fit"}
PER_CALL_MODES = ("fit", "fit-xla")  # one call runs many batches and has a fixed cost per call
NOT_IN_RUN = "not in this run"


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
        f"Per-step training time of each idiomatic loop (api/<workload>/train/b<batch>/<device>) over the low-level "
        f"step of the same graph mode (tf.function for fit and train_on_batch, XLA for fit with jit_compile, torch "
        f"eager or torch.compile), both float32 and parity-checked. Each API is measured as it is used. Keras fit has "
        f"a fixed cost per call (data adapter, iterator, callbacks, epoch logic): it is timed at two or more batches "
        f"per call and the line time per call = per-call cost + batches × per-step cost splits the two (95% CIs by "
        f"bootstrap of the cases' rounds); its per-step cost is compared, its per-call cost is stated in its own "
        f"table and not counted (a fit call usually runs a whole epoch). train_on_batch is one call per batch, so its "
        f"time per batch, per-call cost included, is what it costs as used; the torch loops have no per-call API. "
        f"A comparison supports the claim unless the whole 95% CI of the overhead lies above {1 + LITTLE:.2f}× "
        f"(more than {LITTLE:.0%} extra time). A fit case timed at one batch count only is shown, not counted. "
        f"First-epoch (trace/compile) times, mixed precision and channels-last are reported beside it and not counted.",
    )
    api = [i for i in benches.select("api") if i.get("precision", "float32") == "float32"]
    devices = sorted({i.get("device") for i in api if i.get("device")}, key=lambda d: (d != "cpu", d))
    rows, bars, call_rows = [], [], []
    cases: dict = {}
    for item in api:
        key = (item.get("device"), item.get("workload"), item.get("batch"), item.get("framework"), item.get("mode"))
        cases.setdefault(key, []).append(item)
    for key in sorted(cases, key=lambda k: tuple(str(v) for v in k)):
        device, workload, batch, framework, mode = key
        group = sorted(cases[key], key=lambda i: batches_per_call(i) or 0)
        item = group[0]
        low = _low_level(benches, item)
        label = api_label(framework, mode)
        where = f"{workload} b{batch}"
        first = item.get("first_epoch_s")
        pre = _prefix(device, devices)
        if low is None:
            c.notes.append(f"{pre}{label} {where}: no low-level "
                           f"{mode_label(framework, item.get('low_level_mode'))} training step in the run "
                           "to compare with.")
            continue
        low_label = mode_label(framework, low.get("mode")) + " step"
        counted, measure = True, "per batch"
        if mode in PER_CALL_MODES:
            line = fit_line(group)
            if line is None:
                n = batches_per_call(item)
                cmp = per_sample_time_ratio(item, low, f"{label} per batch at {n} batches/call", low_label)
                counted, measure = False, f"per batch at {n}/call, per-call cost included"
                c.notes.append(f"{pre}{label} {where}: not in this run at two batch counts per call (only {n}), so "
                               "its per-step cost cannot be told from its per-call cost; shown, not counted.")
                call_rows.append([device, where, label, str(n)] + [NOT_IN_RUN] * 5)
            else:
                cmp = per_step_ratio(line, low, f"{label} per step", low_label)
                cmp.suspect = cmp.suspect or any(i.suspect for i in group)
                measure = f"per step (slope over {'/'.join(map(str, line.counts))} batches/call)"
                call_rows.append([device, where, label, "/".join(map(str, line.counts)), fmt_time(line.per_call),
                                  _time_ci(line.per_call_ci), fmt_time(line.per_step), _time_ci(line.per_step_ci),
                                  f"{line.per_call_in_steps:.3g}"])
                c.findings.append(f"{pre}{where}: {label} costs {fmt_time(line.per_call)} per call "
                                  f"{_time_ci(line.per_call_ci)} on top of {fmt_time(line.per_step)} per step "
                                  f"{_time_ci(line.per_step_ci)} (line over {'/'.join(map(str, line.counts))} "
                                  f"batches per call, {line.method}); the per-call cost equals "
                                  f"{line.per_call_in_steps:.3g} steps and is paid once per fit call (not counted)")
        else:
            what = f"{label} per batch (one call per batch)" if mode == "train_on_batch" else label
            cmp = per_sample_time_ratio(item, low, what, low_label)
        supports = cmp.hi is None and cmp.value <= 1 + LITTLE or cmp.lo is not None and cmp.lo <= 1 + LITTLE
        if counted:
            c.count(supports, cmp)
        c.findings.append(f"{pre}{where}: {cmp.a} takes {cmp.value:.3g}× the time of the hand-written {cmp.b} "
                          f"{cmp.ci_text()}" + (f"; its first epoch took {fmt_time(first)}" if first is not None else "")
                          + ("" if counted else " [not counted: per-call cost mixed in]")
                          + f" ({', '.join(cmp.evidence)})")
        rows.append([device, where, label, low_label, measure, f"{cmp.value:.3g}", cmp.ci_text(), fmt_time(first),
                     ("yes" if supports else "no") if counted else "not counted"])
        bars.append({"label": f"{label}, {where}", "framework": framework, "device": device,
                     "value": cmp.value, "lo": cmp.lo, "hi": cmp.hi, "suspect": cmp.suspect, "not_counted": not counted})
    if rows:
        c.tables.append(Table(["device", "case", "idiomatic", "low-level", "measured", "time ratio", "95% CI",
                               "first epoch", f"within {LITTLE:.0%}"], rows,
                              "Overhead of the high-level API per step"))
    if call_rows:  # always the second table where fit ran, so that docs can name it
        c.tables.append(Table(["device", "case", "API", "batches per call", "per-call cost", "95% CI",
                               "per-step cost", "95% CI", "per-call cost in steps"], call_rows,
                              "Fixed cost per call of Keras fit (the line's intercept; not counted)"))
    for device in devices:
        dev_bars = [b for b in bars if b["device"] == device]
        if dev_bars:
            c.plots.append({"kind": "api", "device": device, "bars": dev_bars, "little": 1 + LITTLE,
                            "title": f"Claim 8: idiomatic training time per step / low-level step ({device})",
                            "ylabel": "time per step, idiomatic / low-level (1 = no overhead)"})
    _mixed_precision(benches, c)
    _layout(benches, c)
    c.decide("No idiomatic training benchmarks (api/...) with their low-level steps (graph/.../train) in this run.")
    return c


def _time_ci(ci) -> str:
    return f"[{fmt_time(ci[0])}, {fmt_time(ci[1])}]" if ci[0] > 0 else f"[{ci[0] * 1e3:.3g} ms, {fmt_time(ci[1])}]"


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
