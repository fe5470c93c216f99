"""gate: exit 0 when nothing regressed, 1 when a benchmark is significantly slower beyond its
threshold (listed), 2 on bad input. Benchmarks found in one run only are listed, not judged."""

from __future__ import annotations

from . import compare


def report(cmp: compare.Comparison, fmt: str = "table") -> tuple[str, int]:
    """The gate's text and exit code for a finished comparison."""
    regressed = [r for r in cmp.rows if r.verdict == "slower"]
    if fmt == "json":
        doc = compare.to_json(cmp, regressed)
        doc["passed"] = not regressed
        import json

        return json.dumps(doc, indent=2), (1 if regressed else 0)
    if not regressed:
        head = f"gate passed: no significant slowdown beyond its threshold ({cmp.summary()})"
        tail = [t for t in compare._tail(cmp, md=True) if t and "verdict from summary" not in t]
        return "\n".join([head] + tail), 0
    lines = [f"gate FAILED: {len(regressed)} benchmark(s) slower beyond their threshold"]
    for r in regressed:
        lines.append(
            f"  {r.group} :: {r.name}: {compare.fmt_time(r.base_median)} -> {compare.fmt_time(r.cand_median)} "
            f"(x{r.ratio:.3f}, 95% CI [{r.ci_low:.3f}, {r.ci_high:.3f}], p={r.p_adjusted:.2g}, threshold {r.threshold:.0%})"
        )
    lines += ["", compare.render(cmp, fmt, regressed)]
    return "\n".join(lines), 1
