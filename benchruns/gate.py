"""gate: exit 0 when nothing regressed, 1 when a benchmark is significantly slower beyond its
threshold (listed), 2 on bad input, and on too few runs when --strict. Benchmarks found on
one side only are listed, not judged; benchmarks too noisy to gate are listed with their MDE."""

from __future__ import annotations

import json

from . import compare


def report(cmp: compare.Comparison, fmt: str = "table", strict: bool = False) -> tuple[str, int]:
    """The gate's text and exit code for a finished comparison."""
    regressed = [r for r in cmp.rows if r.verdict == "slower"]
    too_few = cmp.too_few_runs
    code = 1 if regressed else (2 if too_few and strict else 0)
    if fmt == "json":
        doc = compare.to_json(cmp, regressed)
        doc["passed"] = code == 0
        doc["strict"] = strict
        return json.dumps(doc, indent=2), code
    md = fmt == "md"
    if regressed:
        head = f"gate FAILED: {len(regressed)} benchmark(s) slower beyond their threshold"
    elif too_few:
        head = ("gate NOT DECIDED: too few runs to gate"
                + (" (--strict: exit 2)" if strict else " (exit 0; pass --strict to make this an error)"))
    else:
        head = f"gate passed: no significant slowdown beyond its threshold ({cmp.summary()})"
    lines = [f"**{head}**" if md else head]
    for r in regressed:
        lines.append(
            f"{'- ' if md else '  '}{r.group} :: {r.name}: {compare.fmt_time(r.base_median)} -> "
            f"{compare.fmt_time(r.cand_median)} (x{r.ratio:.3f}, 95% CI [{r.ci_low:.3f}, {r.ci_high:.3f}], "
            f"p={r.p_adjusted:.2g}, MDE {compare.fmt_mde(r)}, threshold {r.threshold:.0%})")
    noisy = [r for r in cmp.not_gateable if r.verdict != "slower"]
    if noisy and not too_few:
        lines += ["", f"not gateable here ({len(noisy)}): the spread between processes in this job hides a "
                  "slowdown of their threshold; their pass says nothing"]
        lines += [f"{'- ' if md else '  '}{r.group} :: {r.name} (MDE {compare.fmt_mde(r)}, threshold "
                  f"{r.threshold:.0%})" for r in noisy]
    lines += ["", compare.render(cmp, fmt, regressed)] if regressed else [""] + compare._tail(cmp, md=md)
    return "\n".join(lines), code
