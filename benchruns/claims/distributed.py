"""Claim 7: TensorFlow is better at large-scale distributed training."""

from __future__ import annotations

from .common import Benches, Claim, Cmp, Item, Table, _num, _prefix, fmt_num, fmt_time, ratio_of, time_ratio

LABEL = {"torch": "PyTorch DDP", "tensorflow": "TensorFlow MWMS"}
ONE_MACHINE = ("One machine cannot show many hosts or a fast interconnect (InfiniBand, NVLink, RDMA): every "
               "worker here shares the same cores and memory. The workers split the cores (workers x threads <= "
               "cores), so one worker already uses every core and N workers add communication without adding "
               "compute: for compute-bound steps the scaling efficiency throughput(N)/(N·throughput(1)) tops out "
               "near 1/N here (0.5 at 2 workers), and the frameworks are compared on the same core budget, not on "
               "how they would scale over N hosts. The simulated network (a network namespace whose loopback is "
               "capped by tc tbf) shows how each framework's step degrades when the link, not the cores, is the "
               "bottleneck; both directions share the one capped loopback (like a half-duplex link, so twice as "
               "tight as a full-duplex NIC of that rate), with no real network's latency or cross traffic.")


def _by(items, *keys) -> dict:
    out: dict = {}
    for i in items:
        out.setdefault(tuple(i.get(k) for k in keys), []).append(i)
    return out


def _best(items: list[Item]) -> Item:
    return min(items, key=lambda i: i.median)


def _size(nbytes) -> str:
    return f"{nbytes / 2**20:g} MiB" if nbytes >= 2**20 else f"{nbytes / 2**10:g} KiB"


def _better(cmp: Cmp, verb: str) -> str:
    """For ratios where below 1 favours TensorFlow: who is better, in words."""
    if cmp.outcome == "faster":
        return f"TensorFlow {verb} better" if verb == "scales" else f"TensorFlow {verb}"
    if cmp.outcome == "slower":
        return f"PyTorch {verb} better" if verb == "scales" else f"PyTorch {verb}"
    return "no difference beyond noise"


def claim_7(benches: Benches) -> Claim:
    c = Claim(
        7, "Distributed training",
        "TensorFlow, built on static graphs, is better at large-scale distributed (data-parallel) training than "
        "PyTorch.",
        "torch DistributedDataParallel (gloo on CPU, NCCL on GPUs) against tf.distribute MultiWorkerMirroredStrategy "
        "(collective ops; MirroredStrategy for GPUs in one process), workers launched as separate processes. "
        "Comparisons, each supporting the claim when TensorFlow is better beyond noise: (1) scaling at each N>1, "
        "the ratio of the frameworks' scaling efficiencies, throughput(N)/(N·throughput(1)), from the step times "
        "(distributed/<workload>/train/...) with a bootstrap CI; (2) the gradient all-reduce alone at each message "
        "size (distributed-allreduce/<size>/...), time ratio at the same N (bus bandwidth shown against the copy "
        "limit measured in the same run); (3) the training step over a loopback capped at 1 and 10 Gbit/s "
        "(distributed-net/...): how much it grows over the uncapped loopback. Shown and not counted: the start-up "
        "cost, launch to the first finished step on every worker (distributed-startup/...; one figure per launch, "
        "paid once per job), and the capped-link step times themselves (they carry each framework's compute speed).",
    )
    c.notes.append(ONE_MACHINE)
    train = [i for i in benches.select("distributed") if i.get("pass") == "train"]
    devices = sorted({i.get("device") for i in benches.items if str(i.get("kind", "")).startswith("distributed")
                      and i.get("device")}, key=lambda d: (d != "cpu", d))
    rows, ar_rows, start_rows, net_rows = [], [], [], []
    for device in devices:
        pre = _prefix(device, devices)
        plot = {"kind": "distributed", "device": device, "title": f"Claim 7: distributed data-parallel training ({device})",
                "scaling": [], "allreduce": [], "copy": [], "startup": [], "network": []}
        # (1) scaling efficiency
        dev_train = [i for i in train if i.get("device") == device]
        for (workload,), items in sorted(_by(dev_train, "workload").items(), key=lambda kv: str(kv[0])):
            runs = {fw: {n: _best(v) for (n,), v in _by([i for i in items if i.get("framework") == fw],
                                                         "workers").items() if n} for fw in ("torch", "tensorflow")}
            for fw, by_n in runs.items():
                if 1 in by_n:
                    base = by_n[1]
                    pts = [(n, (base.median / it.median)) for n, it in sorted(by_n.items())]  # efficiency at equal per-worker batch
                    plot["scaling"].append({"framework": fw, "workload": workload,
                                            "points": [(n, e) for n, e in pts]})
                for n, it in sorted(by_n.items()):
                    eff = base.median / it.median if 1 in by_n else None
                    rows.append([device, workload, LABEL[fw], str(n), str(it.get("threads")), fmt_time(it.median),
                                 fmt_num(_num(it.get("samples_per_s"))), f"{eff:.2f}" if eff else "n/a"])
            shared = sorted(set(runs["torch"]) & set(runs["tensorflow"]))
            if 1 not in shared:
                continue
            for n in [n for n in shared if n > 1]:
                t1, tn, p1, pn = runs["tensorflow"][1], runs["tensorflow"][n], runs["torch"][1], runs["torch"][n]
                # eff_torch / eff_tf = (tn/t1) / (pn/p1): below 1 means TensorFlow keeps more of its throughput.
                cmp = ratio_of([tn, p1], [t1, pn], "PyTorch's scaling efficiency", "TensorFlow's")
                c.count(cmp.outcome == "faster", cmp)
                eff_tf, eff_pt = t1.median / tn.median, p1.median / pn.median
                c.findings.append(f"{pre}{workload}, {n} workers: scaling efficiency TensorFlow {eff_tf:.2f}, "
                                  f"PyTorch {eff_pt:.2f}: {_better(cmp, 'scales')} "
                                  f"({cmp.text('ratio')})")
                step = time_ratio(tn, pn, f"TensorFlow at {n} workers", f"PyTorch at {n} workers")
                c.findings.append(f"{pre}{workload}, {n} workers, time per step: {step.plain()} ({step.text()}) "
                                  "[shown, not counted: the claim is about scaling]")
        # (2) all-reduce alone
        ar = [i for i in benches.select("distributed-allreduce") if i.get("device") == device]
        copy = {i.get("size"): i for i in ar if i.get("framework") == "numpy"}
        plot["copy"] = sorted((s, _num(i.get("gbps")) or s / i.median / 1e9) for s, i in copy.items() if s)
        for fw in ("torch", "tensorflow"):
            pts = sorted((i.get("size"), _num(i.get("busbw_gbps"))) for i in ar if i.get("framework") == fw
                         and i.get("size") and _num(i.get("busbw_gbps")) is not None)
            if pts:
                n = next(i.get("workers") for i in ar if i.get("framework") == fw)
                plot["allreduce"].append({"framework": fw, "workers": n, "points": pts})
        for (size, n), items in sorted(_by([i for i in ar if i.get("framework") != "numpy"], "size", "workers").items()):
            fws = {i.get("framework"): i for i in items}
            for i in items:
                ar_rows.append([device, _size(size), LABEL[i.get("framework")], str(n),
                                fmt_time(i.median), f"{_num(i.get('algbw_gbps')) or 0:.3g}",
                                f"{_num(i.get('busbw_gbps')) or 0:.3g}",
                                f"{_num(i.get('fraction_of_copy')):.3g}" if _num(i.get("fraction_of_copy")) is not None
                                else "n/a"])
            if {"torch", "tensorflow"} <= set(fws):
                cmp = time_ratio(fws["tensorflow"], fws["torch"], "TensorFlow all-reduce", "PyTorch all_reduce")
                c.count(cmp.outcome == "faster", cmp)
                c.findings.append(f"{pre}all-reduce {_size(size)} over {n} workers: {cmp.plain()} "
                                  f"({cmp.text()})")
        # (3) start-up
        st = [i for i in benches.select("distributed-startup") if i.get("device") == device]
        for (workload, n), items in sorted(_by(st, "workload", "workers").items(), key=lambda kv: str(kv[0])):
            fws = {i.get("framework"): i for i in items}
            for i in items:
                start_rows.append([device, workload, LABEL[i.get("framework")], str(n), fmt_time(i.median),
                                   fmt_time(_num(i.get("import_s"))), fmt_time(_num(i.get("init_s"))),
                                   fmt_time(_num(i.get("first_step_s")))])
                plot["startup"].append({"framework": i.get("framework"), "label": f"{LABEL[i.get('framework')]} "
                                        f"· {workload} · {n}w", "seconds": i.median})
            if {"torch", "tensorflow"} <= set(fws):
                t, p = fws["tensorflow"], fws["torch"]
                cmp = Cmp("TensorFlow start-up", "PyTorch start-up", t.median / p.median, None, None, "point",
                          [t.name, p.name])
                c.findings.append(f"{pre}start-up ({workload}, {n} workers, launch to first finished step): "
                                  f"{cmp.plain()}; {fmt_time(t.median)} against {fmt_time(p.median)} (one launch "
                                  "each, no CI) [shown, not counted: paid once per job, it says nothing of "
                                  "training at scale]")
        # (4) the simulated slower network
        net = [i for i in benches.select("distributed-net") if i.get("device") == device]
        for (workload,), items in sorted(_by(net, "workload").items(), key=lambda kv: str(kv[0])):
            base = {i.get("framework"): i for i in dev_train if i.get("workload") == workload and i.get("workers") == 2}
            for (gbit,), cell in sorted(_by(items, "gbit").items(), key=lambda kv: kv[0][0] or 0):
                fws = {i.get("framework"): i for i in cell}
                for fw, i in fws.items():
                    growth = i.median / base[fw].median if fw in base else None
                    net_rows.append([device, workload, LABEL[fw], f"{gbit:g} Gbit/s", fmt_time(i.median),
                                     fmt_time(base[fw].median) if fw in base else "n/a",
                                     f"{growth:.2f}×" if growth else "n/a"])
                    plot["network"].append({"framework": fw, "workload": workload, "gbit": gbit, "seconds": i.median,
                                            "loopback": base[fw].median if fw in base else None})
                if {"torch", "tensorflow"} <= set(fws):
                    cmp = time_ratio(fws["tensorflow"], fws["torch"], f"TensorFlow at {gbit:g} Gbit/s",
                                     f"PyTorch at {gbit:g} Gbit/s")
                    c.findings.append(f"{pre}{workload} over a {gbit:g} Gbit/s link: {cmp.plain()} ({cmp.text()}) "
                                      "[shown, not counted: the step time carries each framework's compute speed; "
                                      "the slowdown below is the link's effect]")
                    if {"torch", "tensorflow"} <= set(base):
                        grow = ratio_of([fws["tensorflow"], base["torch"]], [base["tensorflow"], fws["torch"]],
                                        "TensorFlow's slowdown", "PyTorch's")  # (slow/loopback) TF over torch
                        c.count(grow.outcome == "faster", grow)
                        c.findings.append(f"{pre}{workload}, slowdown from loopback to {gbit:g} Gbit/s: "
                                          f"{_better(grow, 'degrades less')} ({grow.text('ratio')})")
        if any(plot[k] for k in ("scaling", "allreduce", "startup", "network")):
            c.plots.append(plot)
    if rows:
        c.tables.append(Table(["device", "workload", "framework", "workers", "threads/worker", "step (slowest worker)",
                               "samples/s", "scaling efficiency"], rows, "Data-parallel training step"))
    if ar_rows:
        c.tables.append(Table(["device", "message", "framework", "workers", "time", "algbw GB/s", "busbw GB/s",
                               "busbw / copy limit"], ar_rows, "Gradient all-reduce alone (nccl-tests busbw)"))
    if start_rows:
        c.tables.append(Table(["device", "workload", "framework", "workers", "launch to first step", "imports",
                               "process group / cluster", "model, first step"], start_rows, "Start-up cost"))
    if net_rows:
        c.tables.append(Table(["device", "workload", "framework", "link", "step", "step on loopback", "slowdown"],
                              net_rows, "Simulated slower network (tc tbf on a namespace's loopback)"))
    c.decide("No distributed benchmarks (distributed/..., distributed-allreduce/...) are in this run.")
    return c
