"""Claim 6: device placement is a matter of style."""

from __future__ import annotations

from .common import (
    Benches, Claim, Table, _num, _prefix, fmt_num,
    fmt_time, time_ratio,
)


# Directions that place a tensor on a device: what tf.device scopes and .to() do.
PLACEMENT = ("h2d", "d2h", "d2d")
HOST_ONLY = ("no device is involved: it measures building a tensor from (or a numpy array out of) host memory, "
             "where torch.from_numpy / as_tensor share the array and TensorFlow copies it; that is interop, not "
             "device placement")


def claim_6(benches: Benches) -> Claim:
    c = Claim(
        6, "Device management",
        "TensorFlow places tensors with tf.device scopes, PyTorch moves them explicitly with .to(); the style "
        "is a matter of convenience, not of speed.",
        "Copy bandwidth (transfer/<direction>/<device>/<size>) in GB/s by size, pageable and pinned host memory, "
        "and zero-copy interop (DLPack), against the machine's copy limit (numpy.copyto of the same size, "
        "measured in the same run). For each direction that places a tensor on a device (host to device, device to "
        "host, device to device) and memory kind, PyTorch and TensorFlow are compared at the largest size both "
        "measured (bandwidth, not latency, decides there); a comparison supports the claim when neither is faster "
        "beyond noise. Host-only cases (a tensor from a numpy array and back, DLPack on the CPU) are shown and not "
        "counted: no device is placed, so without a GPU the claim is not measured.",
    )
    items = [i for i in benches.select("transfer") if i.get("direction")]
    devices = sorted({i.get("device") for i in items if i.get("device")}, key=lambda d: (d != "cpu", d))
    rows = []
    for device in devices:
        dev = [i for i in items if i.get("device") == device]
        curves = {}
        for i in dev:
            size = _num(i.get("bytes"))
            gbps = _num(i.get("gbps")) or (size / i.median / 1e9 if size else None)
            if size is None or gbps is None:
                continue
            ref = i.get("direction") == "reference" or i.get("framework") == "numpy"
            key = ("reference", "numpy.copyto", "") if ref else (i.get("direction"), f"{i.get('framework')} {i.get('mode') or ''}".strip(), i.get("memory") or "")
            curves.setdefault(key, []).append((size, gbps, i))
        panels = {}
        for (direction, label, memory), pts in curves.items():
            if direction == "reference":
                continue
            panels.setdefault(direction, []).append({"label": f"{label} ({memory})" if memory else label,
                                                     "framework": label.split()[0], "memory": memory,
                                                     "points": sorted((s, g) for s, g, _ in pts)})
        ref_pts = sorted((s, g) for s, g, _ in curves.get(("reference", "numpy.copyto", ""), []))
        for direction in sorted(panels):
            for line in panels[direction]:
                for s, g in line["points"]:
                    frac = next((g / rg for rs, rg in ref_pts if rs == s), None)
                    rows.append([device, direction, line["label"], fmt_num(s / 2**20) + " MiB", f"{g:.3g}",
                                 f"{frac:.2f}" if frac is not None else "n/a"])
        # the claim: torch vs tensorflow per direction and memory kind, at the largest shared size
        by = {}
        for (direction, label, memory), pts in curves.items():
            fw = label.split()[0]
            for s, g, i in pts:
                by.setdefault((direction, memory, s), {}).setdefault(fw, []).append(i)
        for direction, memory in sorted({(k[0], k[1]) for k in by if k[0] != "reference"}):
            shared = [k[2] for k in by if k[:2] == (direction, memory) and {"torch", "tensorflow"} <= set(by[k])]
            if not shared:
                continue
            size = max(shared)
            cell = by[(direction, memory, size)]
            t = min(cell["tensorflow"], key=lambda i: i.median)
            p = min(cell["torch"], key=lambda i: i.median)
            cmp = time_ratio(t, p, f"TensorFlow {t.get('mode') or ''}".strip(), f"PyTorch {p.get('mode') or ''}".strip())
            placement = direction in PLACEMENT
            if placement:
                c.count(cmp.outcome == "same", cmp)
            c.findings.append(f"{_prefix(device, devices)}{direction}{' ' + memory if memory else ''} at "
                              f"{size / 2**20:.3g} MiB: {cmp.plain()}; {cmp.text()}"
                              + ("" if placement else f" [shown, not counted: {HOST_ONLY}]")
                              + f" ({', '.join(cmp.evidence)})")
        # pinned versus pageable, where both exist
        for direction in sorted({k[0] for k in curves}):
            pin = [x for k, v in curves.items() if k[0] == direction and k[2] == "pinned" for x in v]
            page = [x for k, v in curves.items() if k[0] == direction and k[2] == "pageable" for x in v]
            common = sorted({s for s, _, _ in pin} & {s for s, _, _ in page})
            if common:
                s = common[-1]
                a = max((x for x in pin if x[0] == s), key=lambda x: x[1])[2]
                b = max((x for x in page if x[0] == s), key=lambda x: x[1])[2]
                cmp = time_ratio(a, b, "pinned", "pageable")
                c.findings.append(f"{_prefix(device, devices)}{direction} at {s / 2**20:.3g} MiB: {cmp.plain()} "
                                  f"({cmp.text()})")
        # One line per call, over all its sizes: a zero-copy call's time should stay flat.
        by_call: dict = {}
        for i in dev:
            if i.get("zero_copy") is not None:
                key = (str(i.get("framework")), str(i.get("mode")), str(i.get("direction")), bool(i.get("zero_copy")))
                by_call.setdefault(key, []).append((_num(i.get("size")) or 0, i.median))
        for (framework, mode, direction, zero_copy), points in sorted(by_call.items()):
            sizes = sorted(size for size, _ in points if size)
            times = [t for _, t in points]
            span = f" over {len(points)} sizes, {sizes[0] / 2**10:g} KiB-{sizes[-1] / 2**20:g} MiB" if sizes else ""
            c.findings.append(f"{_prefix(device, devices)}{framework} {mode} ({direction}): zero-copy "
                              f"{'yes' if zero_copy else 'no'}, {fmt_time(min(times))}-{fmt_time(max(times))} "
                              f"per call{span}")
        if panels:
            c.plots.append({"kind": "transfer", "device": device, "panels": panels, "reference": ref_pts,
                            "title": f"Claim 6: copy bandwidth by size ({device})"})
    if rows:
        c.tables.append(Table(["device", "direction", "call", "size", "GB/s", "fraction of copy limit"], rows,
                              "Transfer bandwidth"))
    c.decide("Device placement is not in this run: no host-to-device or device-to-host case of both frameworks "
             "(a run without a GPU measures only host-side interop, shown below and not counted)."
             if items else "No transfer benchmarks (transfer/<direction>/<device>/<size>) are in this run.")
    return c
