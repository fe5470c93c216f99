"""Blocks read from the report's judged claims: the verdict table, a claim's section, its
tables (pipelines, distributed, api-levels are claims 5, 7, 8's first) and its plots."""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path

from ...runs import BadInput
from .blocks import Block, Output, relative
from .sources import Sources, caption, md_table

# Which docs page holds each claim's `claim n=N` block (the verdict table links there).
CLAIM_PAGES = {1: "graph-modes.md", 2: "graph-modes.md", 3: "graph-modes.md", 4: "graph-modes.md",
               5: "input-pipelines.md", 6: "device-transfer.md", 7: "distributed.md", 8: "api-levels.md"}


def _times(ratio: float) -> str:
    return f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.2g}×"


def _plain(cmp) -> str:
    """Cmp.plain() in words, with ratios of 10 and more written out (103×, not 1e+02×)."""
    if cmp.outcome == "faster":
        return f"{cmp.a} is {_times(1 / cmp.value)} faster than {cmp.b}"
    if cmp.outcome == "slower":
        return f"{cmp.a} is {_times(cmp.value)} slower than {cmp.b}"
    return cmp.plain()


def _strongest(entries: list, groups: dict) -> str:
    """The comparison furthest from a ratio of 1, in words, with the benchmark groups it rests on."""
    cmp = max(entries, key=lambda c: abs(math.log(c.value)) if c.value > 0 else 0.0)
    where = list(dict.fromkeys(groups.get(name, name) for name in cmp.evidence))
    return f"{_plain(cmp)} ({', '.join(where[:2])})"


def k_verdicts(block: Block, src: Sources, target: Path) -> Output:
    (run,) = src.for_block(block, one=True)
    claims, counted, groups = src.claims(run)
    rows = []
    for c in claims:
        page = src.root / "docs" / CLAIM_PAGES.get(c.number, "")
        link = os.path.relpath(page, target.parent).replace(os.sep, "/") + f"#claim-{c.number}"
        entries = counted.get(c.number, [])
        pro = [cmp for ok, cmp in entries if ok and cmp is not None and not cmp.suspect]
        con = [cmp for ok, cmp in entries if not ok and cmp is not None and not cmp.suspect]
        if c.supports + c.contradicts:
            parts = [f"for: {_strongest(pro, groups)}" if pro else "",
                     f"against: {_strongest(con, groups)}" if con else ""]
            short = "; ".join(p for p in parts if p)
            support = f"{c.supports} of {c.supports + c.contradicts}"
        else:
            short, support = c.summary, "–"
        rows.append([str(c.number), f"[{c.title}]({link})", f"**{c.verdict}**", support, short])
    src.links.append((block, [(c.number, src.root / "docs" / CLAIM_PAGES.get(c.number, "")) for c in claims]))
    return Output([caption([run], src.root, "The report's verdicts (`make report`)."), ""]
                  + md_table(["#", "claim", "verdict", "comparisons for it", "strongest comparison each way"], rows))


EVIDENCE = re.compile(r"\s*\((?:test_[^()]*)\)$")


def k_claim(block: Block, src: Sources, target: Path) -> Output:
    (run,) = src.for_block(block, one=True)
    claims, _, _ = src.claims(run)
    c = _claim(claims, block.args["n"], block.where(src.root))
    lines = [f'<a id="claim-{c.number}"></a>', "",
             f"**Claim {c.number}, {c.title}: {c.verdict}.** {c.summary}", "", f"> {c.claim}", "",
             caption([run], src.root, "The report's section (`make report`)."), "", f"*What was compared.* {c.tested}"]
    if c.findings or c.notes:
        lines.append("")
    lines += [f"- {EVIDENCE.sub('', f)}" for f in c.findings]
    lines += [f"- *{n}*" for n in c.notes]
    return Output(lines)


def _claim(claims, number: str, where: str):
    found = [c for c in claims if str(c.number) == str(number)]
    if not found:
        raise BadInput(f"{where}: no claim {number}; claims are {', '.join(str(c.number) for c in claims)}")
    return found[0]


def _claim_table(block: Block, src: Sources, number, index) -> Output:
    where = block.where(src.root)
    (run,) = src.for_block(block, one=True)
    claims, _, _ = src.claims(run)
    c = _claim(claims, number, where)
    try:
        k = int(index)
    except ValueError:
        raise BadInput(f"{where}: table={index!r} is not a number") from None
    if not 1 <= k <= len(c.tables):
        raise BadInput(f"{where}: claim {c.number} has {len(c.tables)} table(s) in {relative(run.path, src.root)}, "
                       f"not a table {index}")
    table = c.tables[k - 1]
    headers, rows = list(table.headers), [list(r) for r in table.rows]
    if headers and headers[0] == "device" and len({r[0] for r in rows}) == 1:
        headers, rows = headers[1:], [r[1:] for r in rows]  # one device: the column says nothing
    title = f"{table.title} (claim {c.number})." if table.title else ""
    return Output([caption([run], src.root, title), ""] + md_table(headers, rows))


def k_claim_table(block, src, target):
    return _claim_table(block, src, block.args["claim"], block.args["table"])


def k_pipelines(block, src, target):
    return _claim_table(block, src, 5, 1)


def k_distributed(block, src, target):
    return _claim_table(block, src, 7, 1)


def k_api_levels(block, src, target):
    return _claim_table(block, src, 8, 1)


def k_plot(block: Block, src: Sources, target: Path) -> Output:
    from ...report_plots import draw

    where = block.where(src.root)
    (run,) = src.for_block(block, one=True)
    claims, _, _ = src.claims(run)
    c = _claim(claims, block.args["claim"], where)
    specs = [s for s in c.plots if ("kind" not in block.args or s.get("kind") == block.args["kind"])
             and ("device" not in block.args or str(s.get("device")) == block.args["device"])]
    try:
        index = int(block.args.get("index", "1"))
    except ValueError:
        raise BadInput(f"{where}: index={block.args['index']!r} is not a number") from None
    if not 1 <= index <= len(specs):
        raise BadInput(f"{where}: claim {c.number} has {len(specs)} matching plot(s) in "
                       f"{relative(run.path, src.root)}, not a plot {index}")
    out = src.root / block.args["out"]
    if out.suffix != ".png":
        raise BadInput(f"{where}: out={block.args['out']} must name a .png file")
    spec = specs[index - 1]
    with tempfile.TemporaryDirectory() as tmp:
        draw(spec, Path(tmp), "plot.png")
        data = (Path(tmp) / "plot.png").read_bytes()
    link = os.path.relpath(out, target.parent).replace(os.sep, "/")
    title = spec.get("title", f"claim {c.number}")
    return Output([f"![{title}]({link})", "", caption([run], src.root, f"{title}.")], {out: data})
