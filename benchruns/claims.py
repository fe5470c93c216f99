"""The six claims of the usual TensorFlow-versus-PyTorch comparison, judged on one run.

Each ``claim_N`` takes the run's benchmarks (a ``Benches``) and returns a ``Claim``:
what is claimed, what was compared, the numbers with 95% confidence intervals, the
data for its plots, and a verdict. Nothing here draws or formats pages
(report_plots.py and report.py do), and nothing imports a framework.

How one comparison is decided (``Cmp.outcome``). The effect is a ratio of medians,
time(A) / time(B), from the raw per-round timings (``stats.data``); its 95% CI is a
percentile bootstrap (benchruns.stats.MedianBootstrap, fixed seed):

    A faster  when the whole CI is below 1 and the ratio is below 1/(1 + NOISE)
    A slower  when the whole CI is above 1 and the ratio is above 1 + NOISE
    same      otherwise: the CI overlaps 1, or the difference is within ±NOISE (5%)

Without raw timings the CI comes from the median, IQR and rounds (stats.summary_test),
and with only a single summary figure (first-call extra_info) there is no CI: such a
comparison can only be "same" when within ±NOISE, and the report marks it.

How a claim's verdict is decided (``verdict``): each comparison either supports or
contradicts the claim (each claim says which outcome supports it). Then

    supported       at least 75% of its comparisons support it
    contradicted    at most 25% support it
    mixed           in between
    not measured    no comparison could be made (the benchmarks are not in the run)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .stats import MedianBootstrap, summary_test

NOISE = 0.05
SUSPECT_FACTOR = 3.0
SUPPORT_SHARE = 0.75
CONTRADICT_SHARE = 0.25
NOT_MEASURED = "not measured here"

GRAPH_MODES = {"torch": ["compile", "script", "export"], "tensorflow": ["function", "xla"]}
DEFAULT_GRAPH_MODE = {"torch": "compile", "tensorflow": "function"}
FW_LABEL = {"torch": "PyTorch", "tensorflow": "TensorFlow", "numpy": "numpy"}
MODE_LABEL = {
    ("torch", "eager"): "torch eager", ("torch", "compile"): "torch.compile",
    ("torch", "script"): "TorchScript (legacy)", ("torch", "export"): "torch.export",
    ("tensorflow", "eager"): "TF eager", ("tensorflow", "function"): "tf.function",
    ("tensorflow", "xla"): "tf.function+XLA",
    ("torch", "compile-cold"): "torch.compile (cold cache)", ("torch", "compile-warm"): "torch.compile (warm cache)",
}
EXPORT_RNN_REASON = ("torch.export cannot capture a Python loop whose trip count depends on the data; "
                     "the suite skips torch.export on rnn-loop (it would need torch._higher_order_ops.while_loop)")


def mode_label(framework, mode) -> str:
    return MODE_LABEL.get((framework, mode), f"{framework} {mode}")


def fmt_time(seconds) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_num(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


# --- the run's benchmarks ----------------------------------------------------------------


@dataclass
class Item:
    """One benchmark with the run it came from and its extra_info made uniform."""

    bench: object  # benchruns.runs.Bench
    run: object  # benchruns.runs.Run
    info: dict
    suspect: str = ""  # why this measurement is not trusted (then it is shown, never counted)

    def get(self, key, default=None):
        return self.info.get(key, default)

    @property
    def median(self) -> float:
        return float(np.median(self.bench.data)) if self.has_data else self.bench.median

    @property
    def has_data(self) -> bool:
        return self.bench.data is not None and self.bench.data.size >= 2

    @property
    def name(self) -> str:
        return self.bench.name


class Benches:
    """All benchmarks the report may use, from one or more runs (e.g. a CPU and a CUDA run)."""

    def __init__(self, runs):
        self.runs = list(runs)
        self.items: list[Item] = []
        for run in self.runs:
            for bench in run.benchmarks.values():
                info = dict(bench.extra_info or {})
                parts = bench.group.split("/")
                info.setdefault("kind", parts[0])
                if "device" not in info and parts[-1] in ("cpu", "cuda"):
                    info["device"] = parts[-1]
                self.items.append(Item(bench, run, info))
        self.notes: list[str] = []
        self._cross_check()

    def _cross_check(self) -> None:
        """Flag steady-state eager results that disagree >3x with the first-call case's eager figure.

        Both measure the same warm eager step of the same case (test_first_call times it
        again with 15 fenced steps); a disagreement this large means one measurement was
        disturbed, and a verdict must not rest on it.
        """
        first: dict = {}
        for item in self.select("graph-first-call"):
            eager = _num(item.get("eager_step_s"))
            key = (item.get("device"), item.get("workload"), item.get("pass"), item.get("batch"), item.get("framework"))
            if eager:
                first.setdefault(key, []).append(eager)
        for item in self.select("graph", mode="eager"):
            key = (item.get("device"), item.get("workload"), item.get("pass"), item.get("batch"), item.get("framework"))
            if key in first:
                ref = float(np.median(first[key]))
                factor = item.median / ref
                if factor > SUSPECT_FACTOR or factor < 1 / SUSPECT_FACTOR:
                    item.suspect = (f"{item.name} measures {fmt_time(item.median)} per step, but the first-call "
                                    f"benchmarks of the same case measured the same eager step at {fmt_time(ref)} "
                                    f"({factor:.3g}×); one of them was disturbed")
                    self.notes.append(f"suspect measurement, left out of every verdict: {item.suspect}.")

    def select(self, kind: str, **match) -> list[Item]:
        out = []
        for item in self.items:
            if item.info["kind"] != kind:
                continue
            if all(item.get(k) == v for k, v in match.items()):
                out.append(item)
        return out

    def devices(self) -> list[str]:
        found = {item.get("device") for item in self.items if item.get("device")}
        return sorted(found, key=lambda d: (d != "cpu", d))


# --- statistics ----------------------------------------------------------------------------

_BOOT = MedianBootstrap()


@dataclass
class Cmp:
    """time(A) / time(B) as a ratio of medians with its 95% CI; see the module docstring."""

    a: str
    b: str
    value: float
    lo: float | None
    hi: float | None
    method: str  # raw | summary | point
    evidence: list[str] = field(default_factory=list)  # benchmark names it rests on
    suspect: bool = False  # rests on a suspect measurement: shown, not counted

    @property
    def outcome(self) -> str:
        if self.lo is not None and self.hi is not None:
            if self.hi < 1 and self.value < 1 / (1 + NOISE):
                return "faster"
            if self.lo > 1 and self.value > 1 + NOISE:
                return "slower"
            return "same"
        if self.value < 1 / (1 + NOISE):
            return "faster"
        if self.value > 1 + NOISE:
            return "slower"
        return "same"

    def ci_text(self) -> str:
        if self.lo is None:
            return "no CI (single figure)"
        return f"[{self.lo:.3g}, {self.hi:.3g}]"

    def text(self, what="time") -> str:
        flag = " [suspect measurement: not counted]" if self.suspect else ""
        return f"{what} {self.a} / {self.b} = {self.value:.3g} {self.ci_text()}{flag}"

    def plain(self) -> str:
        """'A is 2.1x faster than B' / 'A and B: no difference beyond noise'."""
        o = self.outcome
        if o == "faster":
            return f"{self.a} is {1 / self.value:.2g}× faster than {self.b}"
        if o == "slower":
            return f"{self.a} is {self.value:.2g}× slower than {self.b}"
        return f"{self.a} and {self.b}: no difference beyond noise"


def _log_se(item: Item) -> float:
    b = item.bench
    iqr = max(b.q3 - b.q1, 0.0)
    return 1.2533 * (iqr / 1.349) / math.sqrt(max(b.rounds, 1)) / b.median


def ratio_of(num: list[Item], den: list[Item], a: str, b: str, scale: float = 1.0) -> Cmp:
    """scale * prod(median(num)) / prod(median(den)) with a bootstrap 95% CI.

    Each benchmark is resampled independently (its own ``side`` of the bootstrap).
    Falls back to a log-normal CI from median/IQR/rounds when any lacks raw data.
    """
    items = num + den
    value = scale * math.prod(i.median for i in num) / math.prod(i.median for i in den)
    evidence = [i.name for i in items]
    cmp = _ratio_of(num, den, a, b, scale, items, value, evidence)
    cmp.suspect = any(i.suspect for i in items)
    return cmp


def _ratio_of(num, den, a, b, scale, items, value, evidence) -> Cmp:
    if all(i.has_data for i in items):
        log = np.zeros(_BOOT.n_resamples)
        for side, item in enumerate(items):
            sign = 1.0 if side < len(num) else -1.0
            log += sign * np.log(_BOOT.medians(item.bench.data, side))
        lo, hi = np.quantile(np.exp(log) * scale, [0.025, 0.975])
        return Cmp(a, b, value, float(lo), float(hi), "raw", evidence)
    if len(num) == 1 and len(den) == 1:
        n, d = num[0].bench, den[0].bench
        _, lo, hi = summary_test(d.median, d.q3 - d.q1, d.rounds, n.median, n.q3 - n.q1, n.rounds)
        return Cmp(a, b, value, lo * scale, hi * scale, "summary", evidence)
    se = math.sqrt(sum(_log_se(i) ** 2 for i in items))
    return Cmp(a, b, value, value * math.exp(-1.96 * se), value * math.exp(1.96 * se), "summary", evidence)


def time_ratio(x: Item, y: Item, a: str, b: str) -> Cmp:
    return ratio_of([x], [y], a, b)


def per_sample_time_ratio(x: Item, y: Item, a: str, b: str) -> Cmp:
    """Time per sample of x over y: rounds may hold different numbers of samples.

    samples per round = samples_per_s * median; without samples_per_s on both,
    the rounds are taken to do the same work.
    """
    sx, sy = _num(x.get("samples_per_s")), _num(y.get("samples_per_s"))
    scale = 1.0
    if sx and sy:
        scale = (sy * y.bench.median) / (sx * x.bench.median)
    return ratio_of([x], [y], a, b, scale=scale)


def median_ci(item: Item) -> tuple[float, float, float]:
    if item.has_data:
        lo, hi = np.quantile(_BOOT.medians(item.bench.data, 0), [0.025, 0.975])
        return item.median, float(lo), float(hi)
    se = _log_se(item)
    m = item.median
    return m, m * math.exp(-1.96 * se), m * math.exp(1.96 * se)


def _num(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def verdict(supports: int, contradicts: int) -> str:
    total = supports + contradicts
    if total == 0:
        return NOT_MEASURED
    share = supports / total
    if share >= SUPPORT_SHARE:
        return "supported"
    if share <= CONTRADICT_SHARE:
        return "contradicted"
    return "mixed"


# --- the claim record --------------------------------------------------------------------


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    title: str = ""


@dataclass
class Claim:
    number: int
    title: str
    claim: str
    tested: str
    verdict: str = NOT_MEASURED
    summary: str = ""
    findings: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[dict] = field(default_factory=list)  # {"kind": ..., "device": ..., data...}; report_plots draws
    notes: list[str] = field(default_factory=list)
    supports: int = 0
    contradicts: int = 0
    excluded: int = 0

    def count(self, supports: bool, cmp: Cmp | None = None) -> None:
        if cmp is not None and cmp.suspect:
            self.excluded += 1
        elif supports:
            self.supports += 1
        else:
            self.contradicts += 1

    def decide(self, summary_if_missing: str = "") -> None:
        self.verdict = verdict(self.supports, self.contradicts)
        if self.verdict == NOT_MEASURED:
            self.summary = summary_if_missing or "The benchmarks this claim needs are not in this run."
            if self.excluded:
                self.summary = (f"Every comparison ({self.excluded}) rests on a suspect measurement, "
                                "so none is counted.")
        else:
            self.summary = (f"{self.supports} of {self.supports + self.contradicts} comparisons support the claim"
                            + (f" ({self.excluded} more left out: they rest on a suspect measurement)" if self.excluded else "")
                            + (f"; {self.summary}" if self.summary else "."))


def _prefix(device, devices) -> str:
    return f"[{device}] " if len(devices) > 1 else ""


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
        "sizes of one workload.",
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


def claim_2(benches: Benches) -> Claim:
    c = Claim(
        2, "Ahead-of-time optimisation versus per-step cost",
        "Static graphs can be optimised ahead of time; dynamic graphs pay their overhead on every step.",
        "For every graph mode (tf.function, XLA, torch.compile, TorchScript, torch.export): its steady-state "
        "step time against the same framework's eager mode on the same workload, pass and batch "
        "(a comparison supports the claim when the graph mode is faster beyond noise), and from the first-call "
        "benchmarks (graph-first-call/...) what the optimisation costs: compile_s (first call minus one steady "
        "step) and break_even_steps = compile_s / (eager step − graph step), the steps after which compiling "
        "has paid for itself ('never' when the graph mode is not faster).",
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
                c.count(cmp.outcome == "faster", cmp)
                devices_seen.add(device)
                rows.append([device, workload, pass_, f"b{batch}", mode_label(fw, mode),
                             fmt_time(cell[(fw, mode)].median), fmt_time(cell[(fw, "eager")].median),
                             f"{cmp.value:.3g}", cmp.ci_text(), cmp.outcome])
    if rows:
        c.tables.append(Table(["device", "workload", "pass", "batch", "graph mode", "graph step", "eager step",
                               "graph / eager", "95% CI", "graph mode is"], rows, "Steady-state gain over eager"))
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
    c.findings.insert(0, f"graph mode faster than eager in {c.supports} of {c.supports + c.contradicts} "
                         "steady-state cases" if c.supports + c.contradicts else "no graph-versus-eager pair measured")
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
                    if fw == "torch" and mode == "export":
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


def claim_5(benches: Benches) -> Claim:
    c = Claim(
        5, "Input pipelines",
        "tf.data is an efficient way to build large input pipelines; DataLoader is convenient.",
        "Steady-state pipeline throughput (pipeline/<source>/<device>) of the best tf.data configuration against "
        "the best DataLoader configuration on the same source; a comparison supports the claim when tf.data is "
        "not slower per sample beyond noise. Both are shown as a fraction of the numpy ideal (the same batches "
        "produced by plain numpy in the same run), with the time to the first batch and how throughput scales "
        "with workers (num_workers / num_parallel_calls).",
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
        for fw, mode in (("tensorflow", "tf.data"), ("torch", "DataLoader")):
            cands = [i for i in members if i.get("framework") == fw and i.get("epoch", "steady") != "first"]
            if cands:
                best[fw] = max(cands, key=lambda i: _sps(i) or 1 / i.bench.median)
            pts = _scaling_points(cands)
            if len(pts) > 1:
                scaling.append({"device": device, "label": f"{mode} · {source}", "framework": fw, "points": pts,
                                "ideal": _sps(ideal) if ideal else None, "knob": _knob(cands[0])[0]})
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
            rows.append([str(device), source, item.get("mode") or fw, f"{knob[0]}={knob[1]}" if knob[0] else "",
                         fmt_num(_sps(item)), f"{frac:.2f}" if frac is not None else "n/a",
                         fmt_time(ttfb) if ttfb is not None else "n/a",
                         fmt_num((_num(item.get("peak_rss_bytes")) or 0) / 2**20) + " MiB" if _num(item.get("peak_rss_bytes")) else "n/a"])
            plot_rows.append({"device": device, "source": source, "framework": fw, "label": item.get("mode") or fw,
                              "fraction": frac})
        if "tensorflow" in best and "torch" in best:
            cmp = per_sample_time_ratio(best["tensorflow"], best["torch"], "tf.data", "DataLoader")
            c.count(cmp.outcome != "slower", cmp)
            c.findings.append(f"{_prefix(device, devices)}{source}: {cmp.plain()}; time per sample {cmp.value:.3g} "
                              f"{cmp.ci_text()} ({', '.join(cmp.evidence)})")
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


def claim_6(benches: Benches) -> Claim:
    c = Claim(
        6, "Device management",
        "TensorFlow places tensors with tf.device scopes, PyTorch moves them explicitly with .to(); the style "
        "is a matter of convenience, not of speed.",
        "Copy bandwidth (transfer/<direction>/<device>/<size>) in GB/s by size, pageable and pinned host memory, "
        "and zero-copy interop (DLPack), against the machine's copy limit (numpy.copyto of the same size, "
        "measured in the same run). For each direction and memory kind, PyTorch and TensorFlow are compared at the "
        "largest size both measured (bandwidth, not latency, decides there); a comparison supports the claim when "
        "neither is faster beyond noise.",
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
            c.count(cmp.outcome == "same", cmp)
            c.findings.append(f"{_prefix(device, devices)}{direction}{' ' + memory if memory else ''} at "
                              f"{size / 2**20:.3g} MiB: {cmp.plain()}; {cmp.text()} ({', '.join(cmp.evidence)})")
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
    c.decide("No transfer benchmarks (transfer/<direction>/<device>/<size>) are in this run.")
    return c


CLAIMS = (claim_1, claim_2, claim_3, claim_4, claim_5, claim_6)


def judge(benches: Benches) -> list[Claim]:
    claims = [fn(benches) for fn in CLAIMS]
    for c in claims:
        if c.excluded or any("[suspect" in f for f in c.findings):
            c.notes.extend(n for n in benches.notes if n not in c.notes)
    return claims
