"""Blocks read from run medians directly: steady-state graph modes, first-call cost,
transfer bandwidth, and each run's profile and size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...durations import minutes_text
from ...runs import BadInput
from .blocks import Block, Output, relative
from .sources import Sources, _batch_order, _choices, _device, _item_median, _size, caption, md_table

GRAPH_COLUMNS = [("torch", "eager"), ("torch", "compile"), ("torch", "script"), ("torch", "export"),
                 ("torch", "export-aoti"), ("tensorflow", "eager"), ("tensorflow", "function"), ("tensorflow", "xla")]
FIRST_CALL_COLUMNS = [("torch", "compile-cold"), ("torch", "compile-warm"), ("torch", "script"), ("torch", "export"),
                      ("torch", "export-aoti"), ("tensorflow", "function"), ("tensorflow", "xla")]


def k_graph_medians(block: Block, src: Sources, target: Path) -> Output:
    from ...claims import fmt_time, mode_label

    runs = src.for_block(block, one=False)
    device = _device(runs, block, ("graph",))
    want = {k: _choices(block, k) for k in ("workload", "pass", "batch")}
    cells: dict = {}
    order: list = []
    for run in runs:
        for bench in run.benchmarks.values():
            info = bench.extra_info or {}
            if bench.group.split("/")[0] != "graph" or info.get("device", bench.group.rsplit("/", 1)[-1]) != device:
                continue
            row = (info.get("workload"), info.get("pass"), info.get("batch"))
            col = (info.get("framework"), info.get("mode"))
            if None in row or col not in GRAPH_COLUMNS:
                continue
            if any(want[k] is not None and str(v) not in want[k] for k, v in zip(("workload", "pass", "batch"), row)):
                continue
            if row[0] not in order:
                order.append(row[0])
            cells.setdefault(row, {}).setdefault(col, []).append(_item_median(bench))
    if not cells:
        raise BadInput(f"{block.where(src.root)}: no steady-state graph benchmarks on {device} in the run(s) "
                       "(or none match the workload=/pass=/batch= given)")
    columns = [c for c in GRAPH_COLUMNS if any(c in v for v in cells.values())]
    rows = []
    for row in sorted(cells, key=lambda r: (order.index(r[0]), r[1] != "inference", str(r[1]), _batch_order(r[2]))):
        medians = {c: float(np.median(v)) for c, v in cells[row].items()}
        fastest = min(medians, key=medians.get)
        rows.append([row[0], row[1], str(row[2])] + [
            ("**" + fmt_time(medians[c]) + "**" if c == fastest and len(medians) > 1 else fmt_time(medians[c]))
            if c in medians else "–" for c in columns])
    what = ("Median time per step, steady state; fastest in bold"
            + (f"; each figure the median of the {len(runs)} runs' medians." if len(runs) > 1 else "."))
    headers = ["workload", "pass", "batch"] + [mode_label(fw, m) for fw, m in columns]
    return Output([caption(runs, src.root, what), ""] + md_table(headers, rows))


def k_first_call(block: Block, src: Sources, target: Path) -> Output:
    from ...claims import fmt_time, mode_label

    (run,) = src.for_block(block, one=True)
    device = _device([run], block, ("graph-first-call",))
    cells: dict = {}
    order: list = []
    for bench in run.benchmarks.values():
        info = bench.extra_info or {}
        if bench.group.split("/")[0] != "graph-first-call" or info.get("device") != device:
            continue
        row, col = (info.get("workload"), info.get("pass"), info.get("batch")), (info.get("framework"), info.get("mode"))
        if None in row or col not in FIRST_CALL_COLUMNS:
            continue
        if row[0] not in order:
            order.append(row[0])
        compile_s = info.get("compile_s")
        if "break_even_steps" not in info:
            even = "n/a"
        elif info["break_even_steps"] is None:
            even = "never"
        else:
            even = f"{info['break_even_steps']:,.0f}"
        cells.setdefault(row, {})[col] = f"{fmt_time(compile_s) if compile_s is not None else 'n/a'} / {even}"
    if not cells:
        raise BadInput(f"{block.where(src.root)}: no first-call benchmarks (graph-first-call/...) on {device} in "
                       f"{relative(run.path, src.root)}")
    columns = [c for c in FIRST_CALL_COLUMNS if any(c in v for v in cells.values())]
    rows = [[r[0], r[1], str(r[2])] + [cells[r].get(c, "–") for c in columns]
            for r in sorted(cells, key=lambda r: (order.index(r[0]), r[1] != "inference", str(r[1]), _batch_order(r[2])))]
    what = ("First call: compile time (first call minus one steady step) / steps until it pays back against eager "
            "('never': the graph mode's step is not faster).")
    return Output([caption([run], src.root, what), ""]
                  + md_table(["workload", "pass", "batch"] + [mode_label(fw, m) for fw, m in columns], rows))


def k_transfer(block: Block, src: Sources, target: Path) -> Output:
    from ...claims import fmt_time

    (run,) = src.for_block(block, one=True)
    device = _device([run], block, ("transfer",))
    directions = _choices(block, "direction")
    lines: dict = {}
    sizes: set = set()
    reference: dict = {}
    for bench in run.benchmarks.values():
        info = bench.extra_info or {}
        size = info.get("size") or info.get("bytes")
        if bench.group.split("/")[0] != "transfer" or info.get("device") != device or not isinstance(size, (int, float)):
            continue
        median = _item_median(bench)
        gbps = info.get("gbps") or (info["bytes"] / median / 1e9 if info.get("bytes") else None)
        if info.get("direction") == "reference":
            reference[size] = gbps
        elif directions is not None and info.get("direction") not in directions:
            continue
        memory = info.get("memory") or ""
        label = (f"{info.get('framework')} {info.get('mode')} ({info.get('direction')}"
                 + (f", {memory}" if memory and (memory != "pageable" or device != "cpu") else "")
                 + (", non_blocking" if info.get("blocking") is False else "") + ")")
        if info.get("direction") == "reference":
            label = "numpy copyto (the copy limit)"
        lines.setdefault(label, {})[size] = (median, gbps, bool(info.get("zero_copy")))
        sizes.add(size)
    if not lines:
        raise BadInput(f"{block.where(src.root)}: no transfer benchmarks on {device} in {relative(run.path, src.root)}")
    columns = sorted(sizes)
    rows = []
    for label in sorted(lines, key=lambda l: (not l.startswith("numpy copyto"), l)):
        row = [label]
        for size in columns:
            if size not in lines[label]:
                row.append("–")
                continue
            median, gbps, zero = lines[label][size]
            if zero or not gbps:
                row.append(f"{fmt_time(median)}{' (0-copy)' if zero else ''}")
            elif label.startswith("numpy copyto") or not reference.get(size):
                row.append(f"{gbps:.3g}")
            else:
                row.append(f"{gbps:.3g} ({gbps / reference[size]:.2f})")
        rows.append(row)
    what = ("GB/s from the median time (fraction of numpy.copyto of the same size, measured in the same run); "
            "zero-copy calls: time per call.")
    return Output([caption([run], src.root, what), ""] + md_table(["call"] + [_size(s) for s in columns], rows))


def k_profile(block: Block, src: Sources, target: Path) -> Output:
    runs = src.for_block(block, one=False, one_profile=False)
    seconds = {r.path: (r.load or {}).get("benchmarks_s") for r in runs}
    timed = any(isinstance(s, (int, float)) for s in seconds.values())
    headers = ["run", "profile", "cases"] + (["time in benchmarks"] if timed else []) + ["run JSON"]
    rows = []
    for r in runs:
        row = [f"`{r.path.name}`", r.profile, str(len(r.benchmarks))]
        if timed:
            s = seconds[r.path]
            row.append(minutes_text(s) if isinstance(s, (int, float)) else "n/a")
        row.append(f"{r.path.stat().st_size / 1e6:.1f} MB")
        rows.append(row)
    what = "Profiles: cases run" + (" and the seconds spent inside benchmark calls (the run's load record)." if timed
                                    else ".")
    return Output([caption(runs, src.root, what), ""] + md_table(headers, rows))
