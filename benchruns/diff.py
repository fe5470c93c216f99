"""diff A B: what differs between two result files.

Benchmarks added and removed, the machine_info and commit_info fields that changed
(versions, GPU, driver, threads...) and every common benchmark's median change,
largest first. Unlike compare, runs from different machines are welcome here: seeing
how they differ is the point.
"""

from __future__ import annotations

import json
import math

from .compare import fmt_time
from .runs import Run

# Change on every run and say nothing about the setup.
VOLATILE = {"cpu.hz_actual", "cpu.hz_actual_friendly"}


def flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _show(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def changed_fields(a: dict, b: dict) -> list[tuple[str, str]]:
    fa, fb = flatten(a or {}), flatten(b or {})
    out = []
    for key in sorted(set(fa) | set(fb)):
        if key in VOLATILE or fa.get(key) == fb.get(key):
            continue
        va, vb = fa.get(key), fb.get(key)
        if isinstance(va, list) and isinstance(vb, list) and max(len(va), len(vb)) > 8:
            sa, sb = {_show(v) for v in va}, {_show(v) for v in vb}
            out.append((key, f"-{sorted(sa - sb)} +{sorted(sb - sa)}"))
        else:
            out.append((key, f"{_show(va) if key in fa else '(absent)'} -> {_show(vb) if key in fb else '(absent)'}"))
    return out


def build(a: Run, b: Run) -> dict:
    common = [n for n in b.benchmarks if n in a.benchmarks]
    changes = []
    for name in common:
        ma, mb = a.benchmarks[name].median, b.benchmarks[name].median
        changes.append({"fullname": name, "name": b.benchmarks[name].name, "group": b.benchmarks[name].group,
                        "a_median": ma, "b_median": mb, "change": mb / ma - 1})
    changes.sort(key=lambda c: -abs(math.log1p(c["change"])))
    return {
        "a": str(a.path),
        "b": str(b.path),
        "added": sorted(n for n in b.benchmarks if n not in a.benchmarks),
        "removed": sorted(n for n in a.benchmarks if n not in b.benchmarks),
        "machine_info": [{"field": k, "change": v} for k, v in changed_fields(a.machine_info, b.machine_info)],
        "commit_info": [{"field": k, "change": v} for k, v in changed_fields(a.commit_info, b.commit_info)],
        "same_machine_key": a.key == b.key,
        "medians": changes,
    }


def render(doc: dict, fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2)
    md = fmt == "md"
    h = (lambda t: f"\n### {t}\n") if md else (lambda t: f"\n{t}")
    item = (lambda t: f"- {t}") if md else (lambda t: f"  {t}")
    lines = [f"A: {doc['a']}", f"B: {doc['b']}"]
    if not doc["same_machine_key"]:
        lines.append("(different machine keys)")
    for title, key in (("added", "added"), ("removed", "removed")):
        lines.append(h(f"benchmarks {title} ({len(doc[key])})"))
        lines += [item(n) for n in doc[key]] or [item("none")]
    for key in ("machine_info", "commit_info"):
        lines.append(h(f"{key} changed ({len(doc[key])})"))
        lines += [item(f"{c['field']}: {c['change']}") for c in doc[key]] or [item("none")]
    lines.append(h(f"median changes, largest first ({len(doc['medians'])})"))
    width = max([len(c["name"]) for c in doc["medians"]] + [4])
    for c in doc["medians"]:
        text = f"{c['name']:<{width}}  {fmt_time(c['a_median']):>10} -> {fmt_time(c['b_median']):>10}  {c['change']:+.1%}"
        lines.append(item(f"`{text}`" if md else text))
    return "\n".join(lines)
