"""Claims 1-4: static versus dynamic graphs, compile cost, control flow, autodiff."""

from __future__ import annotations

import math

from .api_levels import api_label
from .common import (
    Benches, Claim, Cmp, EXPORT_RNN_REASON, GRAPH_MODES, Table, _num, _prefix, fmt_time, median_ci, mode_label,
    per_sample_time_ratio, ratio_of, time_ratio,
)


# --- graph-mode helpers ----------------------------------------------------------------------


def graph_index(benches: Benches) -> dict:
    """(device, workload, pass, batch) -> {(framework, mode): Item} for steady-state graph benches."""
    out: dict = {}
    for item in benches.select("graph"):
        key = (item.get("device"), item.get("workload"), item.get("pass"), item.get("batch"))
        if None in key or item.get("framework") is None or item.get("mode") is None:
            continue
        out.setdefault(key, {})[(item.get("framework"), item.get("mode"))] = item
    return out


def best_graph(cell: dict, framework: str):
    modes = [(cell[(framework, m)], m) for m in GRAPH_MODES.get(framework, []) if (framework, m) in cell]
    return min(modes, key=lambda im: im[0].median) if modes else (None, None)


def _batch_key(batch):
    return batch if isinstance(batch, (int, float)) else 0


# --- mixed precision (the precision/... cases of test_api_levels.py) --------------------------
# Their loops are the idiomatic ones: torch nn.Module + optim run eagerly (the dynamic graph) and
# Keras fit, whose train step is a tf.function (the static graph), each in float32 and in a low
# precision (bfloat16 autocast / mixed_bfloat16; float16 on CUDA).

LOW_PRECISIONS = ("bfloat16", "float16")
SHORT_PRECISION = {"bfloat16": "bf16", "float16": "fp16"}
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
EMULATED_NOT_COUNTED = ("bfloat16 is emulated on this CPU (no avx512_bf16 or amx_bf16): the difference is the "
                        "emulation kernels', not the graph's, so it is shown and not counted")


def precision_emulated(item) -> bool:
    """True when a bfloat16 CPU case ran without native bfloat16: from its extra_info, else the run's CPU flags."""
    if item.get("precision") != "bfloat16" or item.get("device") != "cpu":
        return False
    native = item.get("bf16_native")
    if isinstance(native, bool):
        return not native
    flags = ((getattr(item.run, "machine_info", None) or {}).get("cpu") or {}).get("flags")
    return flags is not None and not any(f in flags for f in BF16_FLAGS)


def precision_tag(*items) -> str:
    """'(bf16)' or '(bf16, emulated)' for the low-precision items of one comparison."""
    precision = items[0].get("precision")
    short = SHORT_PRECISION.get(precision, precision)
    return f"({short}, emulated)" if any(precision_emulated(i) for i in items) else f"({short})"


def precision_cells(benches: Benches) -> dict:
    """(device, workload, pass, batch) -> {(framework, precision): Item} for the precision cases."""
    out: dict = {}
    for item in benches.select("precision"):
        key = (item.get("device"), item.get("workload"), item.get("pass", "train"), item.get("batch"))
        if None in key or item.get("framework") is None or item.get("precision") is None:
            continue
        out.setdefault(key, {})[(item.get("framework"), item.get("precision"))] = item
    return out


def _loop_label(item, tag: str) -> str:
    return f"{api_label(item.get('framework'), item.get('mode'))} {tag}"


def _mixed_precision_claim_1(benches: Benches, c: Claim, index: dict) -> None:
    """The small/large comparison on the low-precision loops: torch eager against Keras fit (a tf.function).

    Where the batch is the smallest of its workload (graph and precision cases together) the
    dynamic loop should win, at the largest the static graph; a batch in between or alone is
    shown, not counted, and so is emulated bfloat16.
    """
    cells = precision_cells(benches)
    devices = sorted({k[0] for k in cells}, key=lambda d: (d != "cpu", d))
    rows = []
    for (device, workload, pass_, batch), cell in sorted(cells.items(), key=lambda kv: (kv[0][:3], _batch_key(kv[0][3]))):
        batches = sorted({k[3] for k in index if k[:3] == (device, workload, pass_)}
                         | {k[3] for k in cells if k[:3] == (device, workload, pass_)}, key=_batch_key)
        position = ("only size" if len(batches) < 2 else "smallest" if batch == batches[0]
                    else "largest" if batch == batches[-1] else "mid-range")
        for precision in LOW_PRECISIONS:
            pt, tf_ = cell.get(("torch", precision)), cell.get(("tensorflow", precision))
            if pt is None or tf_ is None:
                continue
            tag = precision_tag(pt, tf_)
            emulated = "emulated" in tag
            order = (tf_, pt) if position == "largest" else (pt, tf_)
            cmp = per_sample_time_ratio(*order, *(_loop_label(i, tag) for i in order))
            why = (EMULATED_NOT_COUNTED if emulated else
                   None if position in ("smallest", "largest") else f"b{batch} is the {position} of this workload here")
            if why is None:
                c.count(cmp.outcome == "faster", cmp)
            base = [cell.get((i.get("framework"), "float32")) for i in order]
            same = (per_sample_time_ratio(*base, *(_loop_label(i, "(float32)") for i in base))
                    if None not in base else None)
            c.findings.append(
                f"{_prefix(device, devices)}{workload} {pass_} b{batch} {tag} ({position}): {cmp.plain()}; "
                f"{cmp.text()}" + (f"; in float32 the same loops: {same.plain()}" if same else "")
                + (f" [not counted: {why}]" if why else "") + f" ({', '.join(cmp.evidence)})")
            rows.append([device, workload, pass_, f"b{batch}", tag.strip("()"), position,
                         f"{cmp.a} / {cmp.b}", f"{cmp.value:.3g}", cmp.ci_text(), cmp.outcome,
                         f"{same.value:.3g}" if same else "n/a", "no" if why else "yes"])
    if rows:
        c.tables.append(Table(["device", "workload", "pass", "batch", "precision", "batch is", "comparison",
                               "time ratio", "95% CI", "first is", "float32 ratio", "counted"], rows,
                              "Mixed precision: the eager loop against the static graph (Keras fit)"))


def _mixed_precision_claim_2(benches: Benches, c: Claim) -> None:
    """What the precision change costs the static graph against the per-step loop.

    cost = time(low precision) / time(float32) of the same loop; the comparison is Keras fit's
    cost over torch eager's: below 1 beyond noise means the graph, whose casts are placed once
    when it is traced, absorbs the change better than autocast deciding every op on every step.
    Emulated bfloat16 is shown, not counted.
    """
    cells = precision_cells(benches)
    devices = sorted({k[0] for k in cells}, key=lambda d: (d != "cpu", d))
    rows = []
    for (device, workload, pass_, batch), cell in sorted(cells.items(), key=lambda kv: (kv[0][:3], _batch_key(kv[0][3]))):
        for precision in LOW_PRECISIONS:
            need = [("tensorflow", precision), ("torch", "float32"), ("tensorflow", "float32"), ("torch", precision)]
            if any(k not in cell for k in need):
                continue
            tf_low, pt_32, tf_32, pt_low = (cell[k] for k in need)
            tag = precision_tag(tf_low, pt_low)
            short = SHORT_PRECISION.get(precision, precision)
            cmp = ratio_of([tf_low, pt_32], [tf_32, pt_low], f"{_loop_label(tf_low, tag)}'s cost of {short}",
                           f"{_loop_label(pt_low, tag)}'s")
            emulated = "emulated" in tag
            if not emulated:
                c.count(cmp.outcome == "faster", cmp)
            graph_cost, eager_cost = tf_low.median / tf_32.median, pt_low.median / pt_32.median
            word = {"faster": "the graph absorbs it better", "slower": "the per-step loop absorbs it better",
                    "same": "no difference beyond noise"}[cmp.outcome]
            c.findings.append(
                f"{_prefix(device, devices)}{workload} {pass_} b{batch} {tag}: {short} takes Keras fit (graph) "
                f"{graph_cost:.3g}× its float32 time and torch eager {eager_cost:.3g}×; ratio {cmp.value:.3g} "
                f"{cmp.ci_text()}: {word}" + (f" [not counted: {EMULATED_NOT_COUNTED}]" if emulated else "")
                + f" ({', '.join(cmp.evidence)})")
            rows.append([device, workload, pass_, f"b{batch}", tag.strip("()"), f"{graph_cost:.3g}",
                         f"{eager_cost:.3g}", f"{cmp.value:.3g}", cmp.ci_text(), cmp.outcome,
                         "no" if emulated else "yes"])
    if rows:
        c.tables.append(Table(["device", "workload", "pass", "batch", "precision", "graph cost (Keras fit)",
                               "per-step cost (torch eager)", "graph / per-step", "95% CI", "graph is", "counted"],
                              rows, "Mixed precision: its cost to the static graph and to the per-step loop "
                                    "(time in low precision / time in float32)"))


# --- claim 1 ---------------------------------------------------------------------------------


def claim_1(benches: Benches) -> Claim:
    c = Claim(
        1, "Static graphs for large computations, dynamic graphs for small experiments",
        "TensorFlow's static graphs make it faster for large computations; PyTorch's dynamic graphs "
        "can be faster for small experiments.",
        "Steady-state step time (graph/<workload>/<pass>/b<batch>/<device>) across batch sizes. At the smallest "
        "batch of each workload, PyTorch eager is compared with TensorFlow's fastest graph mode (tf.function or "
        "XLA): the claim's second half holds where PyTorch eager is faster. At the largest batch, TensorFlow's "
        "fastest graph mode is compared with PyTorch eager: the first half holds where TensorFlow is faster. "
        "For each graph mode, the crossover is the batch size where it starts (or stops) beating its own "
        "framework's eager mode beyond noise (interpolated where the ratio crosses 1). Needs at least two batch "
        "sizes of one workload. Mixed precision (precision/...: the idiomatic loops, torch eager with autocast "
        "against Keras fit, a tf.function, with a low-precision policy) enters by the same rule at its batch; "
        "bfloat16 on a CPU without native support is labelled (bf16, emulated) and shown, not counted.",
    )
    index = graph_index(benches)
    devices = sorted({k[0] for k in index}, key=lambda d: (d != "cpu", d))
    series = {(k[0], k[1], k[2]) for k in index}
    batches_of = {s_: sorted({k[3] for k in index if k[:3] == s_}, key=_batch_key) for s_ in series}
    scaling = any(len(b) > 1 for b in batches_of.values())
    rows = []
    for device in devices:
        pre = _prefix(device, devices)
        panels = []
        for _, workload, pass_ in sorted(s_ for s_ in series if s_[0] == device):
            batches = batches_of[(device, workload, pass_)]
            if scaling and len(batches) < 2:
                continue  # a single point says nothing about scaling when other workloads do
            cells = [index[(device, workload, pass_, b)] for b in batches]
            lines, marks = {}, {}
            for fw in ("torch", "tensorflow"):
                for mode in ["eager"] + GRAPH_MODES[fw]:
                    pts = [(b, median_ci(cell[(fw, mode)])) for b, cell in zip(batches, cells) if (fw, mode) in cell]
                    if pts:
                        lines[(fw, mode)] = pts
                    if mode == "eager":
                        continue
                    outcomes = [(b, time_ratio(cell[(fw, mode)], cell[(fw, "eager")], mode_label(fw, mode),
                                               mode_label(fw, "eager")))
                                for b, cell in zip(batches, cells) if (fw, mode) in cell and (fw, "eager") in cell]
                    if not outcomes:
                        continue
                    text, at = crossover(outcomes)
                    if at:
                        marks[(fw, mode)] = at
                    first, last = outcomes[0][1], outcomes[-1][1]
                    rows.append([device, workload, pass_, mode_label(fw, mode),
                                 f"b{outcomes[0][0]}: {first.value:.3g} {first.ci_text()} {first.outcome}",
                                 (f"b{outcomes[-1][0]}: {last.value:.3g} {last.ci_text()} {last.outcome}"
                                  if len(outcomes) > 1 else "—"), text])
            panels.append({"workload": workload, "pass": pass_, "lines": lines, "crossover": marks})
            # the claim itself: the small end and the large end of each workload
            small, large = batches[0], batches[-1]
            cell = index[(device, workload, pass_, small)]
            tg, tgm = best_graph(cell, "tensorflow")
            if tg is not None and ("torch", "eager") in cell:
                cmp = time_ratio(cell[("torch", "eager")], tg, "torch eager", mode_label("tensorflow", tgm))
                if len(batches) > 1:
                    c.count(cmp.outcome == "faster", cmp)
                c.findings.append(f"{pre}{workload} {pass_} b{small} ({'smallest' if len(batches) > 1 else 'only size'}): "
                                  f"{cmp.plain()}; {cmp.text()} ({', '.join(cmp.evidence)})")
            if len(batches) > 1:
                cell = index[(device, workload, pass_, large)]
                tg, tgm = best_graph(cell, "tensorflow")
                if tg is not None and ("torch", "eager") in cell:
                    cmp = time_ratio(tg, cell[("torch", "eager")], mode_label("tensorflow", tgm), "torch eager")
                    c.count(cmp.outcome == "faster", cmp)
                    c.findings.append(f"{pre}{workload} {pass_} b{large} (largest): {cmp.plain()}; "
                                      f"{cmp.text()} ({', '.join(cmp.evidence)})")
        if panels:
            c.plots.append({"kind": "scaling", "device": device, "panels": panels,
                            "title": f"Claim 1: time per step vs batch size ({device})"})
    if rows:
        c.tables.append(Table(["device", "workload", "pass", "graph mode", "graph / eager, smallest batch [95% CI]",
                               "graph / eager, largest batch [95% CI]", "crossover"], rows,
                              "Each graph mode against its framework's eager mode"))
    _mixed_precision_claim_1(benches, c, index)
    if not scaling and index:
        c.notes.append("Only one batch size per workload is in this run: no crossover can be located and "
                       "'large' cannot be told from 'small'. Run the full profile (batch 1 to 1024).")
    c.decide("No graph benchmark spans two or more batch sizes in this run, so small and large cannot be compared."
             if index else "")
    return c


def crossover(outcomes: list) -> tuple[str, float | None]:
    """Where a framework's graph mode starts or stops beating its eager mode, over sorted batches."""
    if not outcomes:
        return "", None
    labels = [cmp.outcome for _, cmp in outcomes]
    if len(outcomes) == 1:
        return "one batch size: none", None
    if all(l == "faster" for l in labels):
        return "none: faster than eager at every batch", None
    if all(l != "faster" for l in labels):
        return "none: never faster than eager beyond noise", None
    pairs = list(zip(outcomes, outcomes[1:]))
    change = next(i for i, ((_, c0), (_, c1)) in enumerate(pairs) if (c0.outcome == "faster") != (c1.outcome == "faster"))
    (b0, c0), (b1, c1) = pairs[change]
    way = "faster than eager from there up" if c1.outcome == "faster" else "faster than eager only below"
    # where the ratio itself crosses 1 (log-log interpolation), on the straddling pair nearest the change
    straddle = [i for i, ((_, x), (_, y)) in enumerate(pairs) if (x.value - 1) * (y.value - 1) <= 0]
    at = None
    if straddle:
        (x0, r0), (x1, r1) = [(math.log(max(b, 1e-9)), math.log(cmp.value))
                              for b, cmp in pairs[min(straddle, key=lambda i: abs(i - change))]]
        t = r0 / (r0 - r1) if r0 != r1 else 0.5
        at = math.exp(x0 + min(max(t, 0.0), 1.0) * (x1 - x0))
    where = f"ratio crosses 1 at ≈ b{at:.3g}; " if at else ""
    return f"{where}beyond noise, {way} (between b{b0} and b{b1})", at
    return "", None


# --- claim 2 ---------------------------------------------------------------------------------

# Graph modes shown in claim 2 but not counted: not what a practitioner means by ahead-of-time optimisation.
NOT_AHEAD_OF_TIME = {"torch": {
    "script": "TorchScript is deprecated since torch 2.13; torch.export with AOTInductor replaces it",
    "export": "torch.export(...).module() runs the exported graph op by op from Python with no optimisation; "
              "torch's ahead-of-time path for an exported program is AOTInductor (torch.export + AOTInductor)",
}}


def claim_2(benches: Benches) -> Claim:
    c = Claim(
        2, "Ahead-of-time optimisation versus per-step cost",
        "Static graphs can be optimised ahead of time; dynamic graphs pay their overhead on every step.",
        "For every ahead-of-time path a practitioner uses today (tf.function, XLA, torch.compile, and torch.export "
        "compiled by AOTInductor, inference only): its steady-state step time against the same framework's eager "
        "mode on the same workload, pass and batch (a comparison supports the claim when the graph mode is faster "
        "beyond noise). TorchScript (deprecated since torch 2.13) and torch.export's .module() (the exported graph "
        "run op by op from Python, with no optimisation) are shown and not counted. From the first-call "
        "benchmarks (graph-first-call/...) what the optimisation costs: compile_s (first call minus one steady "
        "step) and break_even_steps = compile_s / (eager step − graph step), the steps after which compiling "
        "has paid for itself ('never' when the graph mode is not faster). Mixed precision: the time a "
        "low-precision policy costs Keras fit (the graph, traced once) over what autocast costs torch eager "
        "(every op, every step), same loops in float32 as the base; below 1 beyond noise supports the claim. "
        "bfloat16 on a CPU without native support is labelled (bf16, emulated) and shown, not counted.",
    )
    index = graph_index(benches)
    devices_seen = set()
    rows = []
    for (device, workload, pass_, batch), cell in sorted(index.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], _batch_key(kv[0][3]))):
        for fw, modes in GRAPH_MODES.items():
            if (fw, "eager") not in cell:
                continue
            for mode in modes:
                if (fw, mode) not in cell:
                    continue
                cmp = time_ratio(cell[(fw, mode)], cell[(fw, "eager")], mode_label(fw, mode), mode_label(fw, "eager"))
                counted = mode not in NOT_AHEAD_OF_TIME.get(fw, {})
                if counted:
                    c.count(cmp.outcome == "faster", cmp)
                devices_seen.add(device)
                rows.append([device, workload, pass_, f"b{batch}", mode_label(fw, mode),
                             fmt_time(cell[(fw, mode)].median), fmt_time(cell[(fw, "eager")].median),
                             f"{cmp.value:.3g}", cmp.ci_text(), cmp.outcome, "yes" if counted else "no"])
    if rows:
        c.tables.append(Table(["device", "workload", "pass", "batch", "graph mode", "graph step", "eager step",
                               "graph / eager", "95% CI", "graph mode is", "counted"], rows,
                              "Steady-state gain over eager"))
        shown = sorted({r[4] for r in rows if r[-1] == "no"})
        for fw, why in NOT_AHEAD_OF_TIME.items():
            for mode, reason in why.items():
                if mode_label(fw, mode) in shown:
                    c.notes.append(f"{mode_label(fw, mode)}: shown, not counted: {reason}.")
        if any(("torch", "eager") in cell for cell in index.values()) and not any(
                ("torch", "export-aoti") in cell for cell in index.values()):
            c.notes.append("torch.export + AOTInductor (torch's ahead-of-time path): not in this run.")
    first = [i for i in benches.select("graph-first-call") if i.get("framework") and i.get("mode")]
    frows, bars = [], []
    for item in sorted(first, key=lambda i: (str(i.get("device")), str(i.get("workload")), str(i.get("pass")),
                                             str(i.get("framework")), str(i.get("mode")))):
        fw, mode, device = item.get("framework"), item.get("mode"), item.get("device")
        compile_s, be = _num(item.get("compile_s")), _num(item.get("break_even_steps"))
        steady, eager = _num(item.get("steady_step_s")), _num(item.get("eager_step_s"))
        label = f"{mode_label(fw, mode)} · {item.get('workload')}/{item.get('pass')}/b{item.get('batch')}"
        if len(benches.devices()) > 1:
            label = f"[{device}] {label}"
        frows.append([str(device), label, fmt_time(compile_s) if compile_s is not None else "n/a",
                      fmt_time(steady), fmt_time(eager),
                      f"{be:,.0f}" if be is not None else ("never" if "break_even_steps" in item.info else "n/a")])
        bars.append({"device": device, "label": label, "framework": fw, "compile_s": compile_s, "break_even": be,
                     "never": be is None and "break_even_steps" in item.info})
    if frows:
        c.tables.append(Table(["device", "mode · case", "compile_s", "graph step", "eager step", "break-even steps"],
                              frows, "Compile cost and break-even (first call)"))
        for device in sorted({b["device"] for b in bars}, key=lambda d: (d != "cpu", str(d))):
            c.plots.append({"kind": "compile", "device": device, "bars": [b for b in bars if b["device"] == device],
                            "title": f"Claim 2: compile cost and break-even ({device})"})
        never = [b["label"] for b in bars if b["never"]]
        if never:
            c.findings.append("never breaks even (graph step not faster than eager in the first-call case): "
                              + "; ".join(never))
        finite = [b for b in bars if b["break_even"] is not None]
        if finite:
            best = min(finite, key=lambda b: b["break_even"])
            c.findings.append(f"quickest to pay off: {best['label']} after {best['break_even']:,.0f} steps "
                              f"(compile {fmt_time(best['compile_s'])})")
    if not rows and frows:
        # steady-state graph benchmarks missing: fall back to the first-call summary figures, no CI
        for item in first:
            steady, eager = _num(item.get("steady_step_s")), _num(item.get("eager_step_s"))
            if steady and eager:
                cmp = Cmp(mode_label(item.get("framework"), item.get("mode")), "eager", steady / eager, None, None,
                          "point", [item.name])
                c.count(cmp.outcome == "faster", cmp)
        c.notes.append("No steady-state graph benchmarks in this run: the gains come from the first-call cases' "
                       "single median figures, without confidence intervals.")
    steady_counts = (c.supports, c.contradicts)
    _mixed_precision_claim_2(benches, c)
    c.findings.insert(0, f"graph mode faster than eager in {steady_counts[0]} of {sum(steady_counts)} "
                         "steady-state cases" if sum(steady_counts) else "no graph-versus-eager pair measured")
    c.decide()
    return c


# --- claim 3 ---------------------------------------------------------------------------------


def claim_3(benches: Benches) -> Claim:
    c = Claim(
        3, "Python control flow",
        "PyTorch is more flexible with Python control flow.",
        "The rnn-loop workload runs a Python loop whose trip count depends on the data. Flexibility itself is not "
        "a timing; what is measured is its price: which graph modes can capture the loop at all, and what each "
        "costs or gains there against its eager mode. A comparison supports the claim when PyTorch eager (the loop "
        "run as plain Python) is not slower beyond noise than TensorFlow's fastest mode on the same case "
        "(tf.function turns the loop into a graph loop with AutoGraph).",
    )
    index = {k: v for k, v in graph_index(benches).items() if k[1] == "rnn-loop"}
    rows, bars_by_device = [], {}
    devices = sorted({k[0] for k in index}, key=lambda d: (d != "cpu", d))
    for (device, _, pass_, batch), cell in sorted(index.items(), key=lambda kv: (kv[0][0], kv[0][2], _batch_key(kv[0][3]))):
        pre = _prefix(device, devices)
        for fw in ("torch", "tensorflow"):
            eager = cell.get((fw, "eager"))
            for mode in ["eager"] + GRAPH_MODES[fw]:
                item = cell.get((fw, mode))
                if item is None:
                    if fw == "torch" and mode in ("export", "export-aoti"):
                        rows.append([device, pass_, f"b{batch}", mode_label(fw, mode), "skipped", "", "", "cannot capture the loop"])
                    continue
                if mode == "eager" or eager is None:
                    rows.append([device, pass_, f"b{batch}", mode_label(fw, mode), fmt_time(item.median), "", "", ""])
                    continue
                cmp = time_ratio(item, eager, mode_label(fw, mode), mode_label(fw, "eager"))
                rows.append([device, pass_, f"b{batch}", mode_label(fw, mode), fmt_time(item.median),
                             f"{cmp.value:.3g}", cmp.ci_text(), cmp.outcome])
        te = cell.get(("torch", "eager"))
        options = [(cell[("tensorflow", m)], m) for m in ["eager"] + GRAPH_MODES["tensorflow"] if ("tensorflow", m) in cell]
        if te is not None and options:
            tf_item, tf_mode = min(options, key=lambda im: im[0].median)
            cmp = time_ratio(te, tf_item, "torch eager", mode_label("tensorflow", tf_mode))
            c.count(cmp.outcome != "slower", cmp)
            c.findings.append(f"{pre}rnn-loop {pass_} b{batch}: {cmp.plain()}; {cmp.text()} ({', '.join(cmp.evidence)})")
        if any(fw == "torch" for fw, _ in cell) and ("torch", "export") not in cell:
            note = f"torch.export has no rnn-loop result: {EXPORT_RNN_REASON}."
            if note not in c.notes:
                c.notes.append(note)
        bars_by_device.setdefault(device, []).extend(
            {"label": f"{mode_label(fw, m)} · {pass_}/b{batch}", "framework": fw, "ci": median_ci(cell[(fw, m)])}
            for fw, m in sorted(cell))
    for device, bars in bars_by_device.items():
        c.plots.append({"kind": "modes", "device": device, "bars": bars,
                        "title": f"Claim 3: rnn-loop, every mode ({device})"})
    if rows:
        c.tables.append(Table(["device", "pass", "batch", "mode", "step time", "mode / eager", "95% CI", "mode is"],
                              rows, "rnn-loop: each mode against its eager mode"))
    c.decide("The rnn-loop workload is not in this run (the quick profile runs mlp-small only).")
    return c


# --- claim 4 ---------------------------------------------------------------------------------


def claim_4(benches: Benches) -> Claim:
    c = Claim(
        4, "Automatic differentiation",
        "Both frameworks differentiate automatically (GradientTape, autograd); neither makes a training step "
        "relatively dearer than the other.",
        "Train/inference ratio = median training-step time / median inference-step time for the same workload, "
        "batch, device and mode (95% CI by bootstrap of both medians). A comparison sets TensorFlow's ratio "
        "against PyTorch's in matching modes (eager against eager, tf.function against torch.compile): it "
        "supports the claim when the ratio of the two ratios is within noise of 1.",
    )
    index = graph_index(benches)
    pairs = {}
    for (device, workload, pass_, batch), cell in index.items():
        if pass_ != "train" or (device, workload, "inference", batch) not in index:
            continue
        inf = index[(device, workload, "inference", batch)]
        for key, item in cell.items():
            if key in inf:
                pairs[(device, workload, batch) + key] = (item, inf[key])
    rows, bars = [], []
    ratios = {}
    for key in sorted(pairs, key=lambda k: (k[0], k[1], _batch_key(k[2]), k[3], k[4])):
        device, workload, batch, fw, mode = key
        train, inf = pairs[key]
        cmp = ratio_of([train], [inf], "train", "inference")
        ratios[key] = cmp
        rows.append([device, workload, f"b{batch}", mode_label(fw, mode), fmt_time(train.median), fmt_time(inf.median),
                     f"{cmp.value:.3g}", cmp.ci_text()])
        bars.append({"device": device, "label": f"{mode_label(fw, mode)} · {workload}/b{batch}", "framework": fw,
                     "value": cmp.value, "lo": cmp.lo, "hi": cmp.hi, "suspect": cmp.suspect})
    devices = sorted({k[0] for k in pairs}, key=lambda d: (d != "cpu", d))
    for device, workload, batch in sorted({k[:3] for k in pairs}, key=lambda k: (k[0], k[1], _batch_key(k[2]))):
        for tf_mode, torch_mode in (("eager", "eager"), ("function", "compile")):
            kt, kp = (device, workload, batch, "tensorflow", tf_mode), (device, workload, batch, "torch", torch_mode)
            if kt in pairs and kp in pairs:
                (tt, ti), (pt, pi) = pairs[kt], pairs[kp]
                rr = ratio_of([tt, pi], [ti, pt], f"{mode_label('tensorflow', tf_mode)} train/inference",
                              f"{mode_label('torch', torch_mode)} train/inference")
                c.count(rr.outcome == "same", rr)
                word = {"same": "about the same", "faster": "smaller for TensorFlow", "slower": "larger for TensorFlow"}[rr.outcome]
                c.findings.append(f"{_prefix(device, devices)}{workload} b{batch}: TF {ratios[kt].value:.3g}× vs PyTorch "
                                  f"{ratios[kp].value:.3g}× ({mode_label('tensorflow', tf_mode)} vs "
                                  f"{mode_label('torch', torch_mode)}): ratio of ratios {rr.value:.3g} {rr.ci_text()}, "
                                  f"{word} ({', '.join(rr.evidence)})")
    if rows:
        c.tables.append(Table(["device", "workload", "batch", "mode", "train step", "inference step",
                               "train / inference", "95% CI"], rows, "Training-step cost relative to inference"))
        for device in devices:
            c.plots.append({"kind": "ratios", "device": device, "bars": [b for b in bars if b["device"] == device],
                            "title": f"Claim 4: train / inference step time ({device})",
                            "ylabel": "train step / inference step (×)"})
    c.decide()
    return c


# --- claim 5 ---------------------------------------------------------------------------------
