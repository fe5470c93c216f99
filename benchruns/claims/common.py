"""What every claim shares: benchmark lookup, comparisons with CIs, the verdict rule, the Claim record.

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

from ..stats import MedianBootstrap, summary_test

NOISE = 0.05
SUSPECT_FACTOR = 3.0
SUPPORT_SHARE = 0.75
CONTRADICT_SHARE = 0.25
NOT_MEASURED = "not measured here"

GRAPH_MODES = {"torch": ["compile", "script", "export", "export-aoti"], "tensorflow": ["function", "xla"]}
DEFAULT_GRAPH_MODE = {"torch": "compile", "tensorflow": "function"}
FW_LABEL = {"torch": "PyTorch", "tensorflow": "TensorFlow", "numpy": "numpy"}
MODE_LABEL = {
    ("torch", "eager"): "torch eager", ("torch", "compile"): "torch.compile",
    ("torch", "script"): "TorchScript (legacy)", ("torch", "export"): "torch.export (.module(), unoptimised graph)",
    ("torch", "export-aoti"): "torch.export + AOTInductor",
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
    # (comparison, supports) for every comparison counted or left out, for callers that set
    # one machine's comparisons beside another's (benchruns/fleet.py)
    counted: list = field(default_factory=list, repr=False)

    def count(self, supports: bool, cmp: Cmp | None = None) -> None:
        if cmp is not None:
            self.counted.append((cmp, supports))
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


