"""Claim 5: tf.data is efficient; DataLoader is convenient."""

from __future__ import annotations

from .common import (
    Benches, Claim, Cmp, Item, Table, _num, _prefix,
    fmt_num, fmt_time, mode_label, per_sample_time_ratio,
)


def _knob(item: Item):
    for key in ("num_workers", "num_parallel_calls", "workers"):
        v = item.get(key)
        if v is not None:
            return key, v
    return None, None


def _scaling_points(cands) -> list:
    """(workers, best samples/s at that count): only numeric counts ("autotune" is no count),
    and the best variant per count, so other knobs do not zigzag the line."""
    best: dict = {}
    for item in cands:
        value, sps = _knob(item)[1], _sps(item)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and sps:
            best[value] = max(best.get(value, 0.0), sps)
    return sorted(best.items())


def _sps(item: Item):
    return _num(item.get("samples_per_s"))


FRAMEWORK_PIPELINE = {"tensorflow": "tf.data", "torch": "DataLoader"}
LIBRARY_OPS = "jpeg-resize"  # test_tf_image / test_torchvision: each library's JPEG decoder and image ops


def _label(item: Item) -> str:
    """'tf.data', 'DataLoader', or with the library's image ops: 'DataLoader + torchvision.v2'."""
    if item.get("pipeline"):  # an end-to-end case: its mode is the model's graph mode
        return f"{item.get('pipeline')} + {mode_label(item.get('framework'), item.get('mode'))}"
    mode = item.get("mode") or FRAMEWORK_PIPELINE.get(item.get("framework"), item.get("framework"))
    ops = item.get("transforms")
    return f"{mode} + {ops}" if ops and mode != "ideal" else str(mode)


def _equivalence_text(item: Item) -> str:
    """The equivalence check measured before timing, as the torchvision case records it."""
    seen = item.get("equivalence")
    if not isinstance(seen, dict):
        return ""
    parts = []
    for key, what, unit in (("decode torchvision vs tf.image", "decoded pixels", " levels"),
                            ("batch torchvision vs tf.image", "transformed batches", "")):
        pair = seen.get(key)
        if isinstance(pair, (list, tuple)) and pair and _num(pair[0]) is not None:
            parts.append(f"{what} max |diff| {pair[0]:.3g}{unit}")
    return f"; checked before timing on the same crops and flips: {', '.join(parts)}" if parts else ""


def _end_to_end(c: Claim, best: dict, device, devices, source) -> None:
    """A model trained from each pipeline: the pipeline's share is fed step / step alone (fed_over_step_only).

    The fed steps' times differ mostly by the models' own speed (tf.function against
    torch.compile), which says nothing of the pipelines; so the comparison is the ratio of the
    two pipelines' costs on their own step, from single figures (no CI).
    """
    tf_, pt = best["tensorflow"], best["torch"]
    tf_cost, pt_cost = _num(tf_.get("fed_over_step_only")), _num(pt.get("fed_over_step_only"))
    if not (tf_cost and pt_cost):
        c.notes.append(f"{_prefix(device, devices)}{source}: the fed and step-only times are not both recorded, so "
                       "the pipelines' share of the training step cannot be told from the models'; not counted.")
        return
    cmp = Cmp(f"tf.data's cost on its training step ({tf_cost:.3g}×)",
              f"DataLoader's on its own ({pt_cost:.3g}×)", tf_cost / pt_cost, None, None, "point", [tf_.name, pt.name])
    c.count(cmp.outcome != "slower", cmp)
    whole = per_sample_time_ratio(tf_, pt, _label(tf_), _label(pt))
    c.findings.append(f"{_prefix(device, devices)}{source}: {cmp.plain()} (fed step / step alone, one figure each, "
                      f"no CI); the whole fed steps, models included, are not counted: {whole.plain()} "
                      f"({', '.join(cmp.evidence)})")


def claim_5(benches: Benches) -> Claim:
    c = Claim(
        5, "Input pipelines",
        "tf.data is an efficient way to build large input pipelines; DataLoader is convenient.",
        "Steady-state pipeline throughput (pipeline/<source>/<device>) of the best tf.data configuration against "
        "the best DataLoader configuration on the same source; a comparison supports the claim when tf.data is "
        "not slower per sample beyond noise. Both are shown as a fraction of the numpy ideal (the same batches "
        "produced by plain numpy in the same run), with the time to the first batch and how throughput scales "
        "with workers (num_workers / num_parallel_calls). Where the run has them, pipeline/jpeg-resize/<device> "
        "sets each library's own JPEG decoding and image ops against each other (tf.io.decode_jpeg + tf.image "
        "in tf.data, torchvision.io.decode_jpeg + transforms.v2 in a DataLoader; Pillow + numpy is the ideal), "
        "after a check that both decode and transform the same files alike. A model trained from each pipeline "
        "(pipeline-e2e/...) is compared on the pipeline's cost to its step (fed step / the same step alone), not "
        "on the whole step, whose time is mostly the model's.",
    )
    items = benches.select("pipeline") + benches.select("pipeline-e2e")
    first_epoch = benches.select("pipeline-first-epoch")
    groups: dict = {}
    for item in items:
        groups.setdefault(item.bench.group, []).append(item)
    devices = sorted({i.get("device") for i in items if i.get("device")}, key=lambda d: (d != "cpu", d))
    rows, plot_rows, scaling = [], [], []
    for group in sorted(groups):
        members = groups[group]
        device = members[0].get("device")
        source = group.split("/")[1] if group.count("/") >= 2 else group
        if group.startswith("pipeline-e2e"):
            source = "e2e " + source
        ideal = next((i for i in members if i.get("mode") == "ideal" or i.get("framework") == "numpy"), None)
        best = {}
        for fw in ("tensorflow", "torch"):
            cands = [i for i in members if i.get("framework") == fw and i.get("epoch", "steady") != "first"]
            if cands:
                best[fw] = max(cands, key=lambda i: _sps(i) or 1 / i.bench.median)
            pts = _scaling_points(cands)
            if len(pts) > 1:
                scaling.append({"device": device, "label": f"{_label(cands[0])} · {source}", "framework": fw,
                                "points": pts, "ideal": _sps(ideal) if ideal else None, "knob": _knob(cands[0])[0]})
        if source == LIBRARY_OPS and "tensorflow" in best and "torch" not in best:
            c.notes.append(f"{_prefix(device, devices)}{LIBRARY_OPS}: tf.image ran but torchvision did not (its cases "
                           "skip where torchvision cannot load beside the installed torch, e.g. the CPU wheel; "
                           "`make venv-pypi` builds the environment PyPI serves, where it runs).")
        for fw, item in best.items():
            frac = _num(item.get("fraction_of_ideal"))
            if frac is None and ideal is not None and _sps(item) and _sps(ideal):
                frac = _sps(item) / _sps(ideal)
            ttfb = _num(item.get("time_to_first_batch_s"))
            if ttfb is None:
                fe = [i for i in first_epoch if i.get("framework") == fw and i.get("device") == device
                      and i.bench.group.split("/")[1:2] == group.split("/")[1:2]]
                ttfb = next((_num(i.get("time_to_first_batch_s")) for i in fe if _num(i.get("time_to_first_batch_s"))), None)
            knob = _knob(item)
            rows.append([str(device), source, _label(item), f"{knob[0]}={knob[1]}" if knob[0] else "",
                         fmt_num(_sps(item)), f"{frac:.2f}" if frac is not None else "n/a",
                         fmt_time(ttfb) if ttfb is not None else "n/a",
                         fmt_num((_num(item.get("peak_rss_bytes")) or 0) / 2**20) + " MiB" if _num(item.get("peak_rss_bytes")) else "n/a"])
            plot_rows.append({"device": device, "source": source, "framework": fw, "label": _label(item),
                              "fraction": frac})
        if "tensorflow" in best and "torch" in best and group.startswith("pipeline-e2e"):
            _end_to_end(c, best, device, devices, source)
        elif "tensorflow" in best and "torch" in best:
            cmp = per_sample_time_ratio(best["tensorflow"], best["torch"], _label(best["tensorflow"]),
                                        _label(best["torch"]))
            c.count(cmp.outcome != "slower", cmp)
            c.findings.append(f"{_prefix(device, devices)}{source}: {cmp.plain()}; time per sample {cmp.value:.3g} "
                              f"{cmp.ci_text()}{_equivalence_text(best['torch'])} ({', '.join(cmp.evidence)})")
    if rows:
        c.tables.append(Table(["device", "source", "pipeline", "best setting", "samples/s", "fraction of ideal",
                               "time to first batch", "peak RSS"], rows, "Best configuration per pipeline"))
        for device in devices:
            c.plots.append({"kind": "pipeline", "device": device,
                            "bars": [r for r in plot_rows if r["device"] == device],
                            "scaling": [s for s in scaling if s["device"] == device],
                            "title": f"Claim 5: input pipelines ({device})"})
    c.decide("No pipeline benchmarks (pipeline/<source>/<device>) are in this run.")
    return c


# --- claim 6 ---------------------------------------------------------------------------------
