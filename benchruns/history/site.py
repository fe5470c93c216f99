"""Write the history site: index.html, regressions.html, bench/<slug>.html, diff/<a>__<b>.html."""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import tempfile
from pathlib import Path

from .. import diff as diff_mod
from ..compare import fmt_time
from ..machine import KEY_FIELDS
from .model import QUESTIONS, VERSION_FIELDS, History, Series, profile_of, stamp
from .svg import PALETTE, chart, fmt_ratio, sparkline

CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:1.2em;color:#222}h1{font-size:1.4em}
h2{margin-top:1.6em;border-bottom:1px solid #ccc}h3{margin:1.1em 0 .3em;color:#444}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:middle}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}.slower{color:#c00}.faster{color:#070}
.muted{color:#888}.diffv{background:#fdd}nav a{margin-right:1em}code,pre{font-size:12px}.key{font-family:monospace}
.disturbed{color:#c00}tr.disturbed td{background:#fff4f4}"""

# A filter box for the overview: the only script, written here, nothing fetched.
FILTER_JS = """document.getElementById('filter').addEventListener('input',function(e){
var q=e.target.value.toLowerCase();document.querySelectorAll('tr.bench').forEach(function(tr){
tr.style.display=tr.textContent.toLowerCase().indexOf(q)>=0?'':'none';});});"""


def slug(fullname: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", fullname.split("::")[-1]).strip("_")[:60]
    return f"{base}-{hashlib.sha1(fullname.encode()).hexdigest()[:8]}.html"


def diff_name(a, b) -> str:
    return f"{a.key}__{a.path.stem}__{b.key}__{b.path.stem}.html"


FLEET_PAGE = "fleet/fleet.html"


def nav(depth: int = 0) -> str:
    up = "../" * depth
    return (f'<nav><a href="{up}index.html">overview</a><a href="{up}regressions.html">regressions</a>'
            f'<a href="{up}machines.html">machines</a><a href="{up}{FLEET_PAGE}">verdicts per machine</a></nav>')


def page(title: str, body: str, depth: int = 0, script: str = "") -> str:
    nav_html = nav(depth)
    tail = f"<script>{script}</script>" if script else ""
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{nav_html}<h1>{html.escape(title)}</h1>{body}{tail}</body></html>\n")


def e(text) -> str:
    return html.escape(str(text))


def versions(run) -> str:
    mi = run.machine_info
    short = {"torch_version": "torch", "tensorflow_version": "tf", "numpy_version": "numpy",
             "python_version": "py", "gpu_driver": "driver", "torch_cuda": "torch-cuda",
             "tensorflow_cuda": "tf-cuda", "threads": "threads"}
    return " · ".join(f"{short[f]} {mi[f]}" for f in VERSION_FIELDS if mi.get(f) not in (None, "", []))


def load_text(run) -> str:
    """The run's load status with its reason: what a reader needs to trust or discount its numbers."""
    why = f": {run.load_why}" if run.load_why else ""
    return f"{run.load_status}{why}"


def disturbed_note(runs) -> str:
    n = sum(r.load_status == "disturbed" for r in runs)
    return f", <span class=disturbed>{n} disturbed</span>" if n else ""


def machine_text(run) -> str:
    mi = run.machine_info
    gpus = ", ".join(mi.get("gpu_models") or []) or "no GPU"
    return f"{mi.get('cpu_model', '?')}, {mi.get('cpu_count', '?')} cores, {gpus}"


class Site:
    def __init__(self, history: History, out: Path):
        self.h = history
        self.out = out
        self.keys = sorted({k for k, _ in history.runs})
        self.color = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(self.keys)}
        self.diffs: dict[str, tuple] = {}

    def link_diff(self, a, b, depth: int) -> str:
        name = diff_name(a, b)
        self.diffs[name] = (a, b)
        return f"{'../' * depth}diff/{name}"

    # --- overview ------------------------------------------------------------------------
    def overview(self) -> str:
        h = self.h
        parts = [f"<p>{len(h.benchmarks)} benchmarks, {sum(len(v) for v in h.runs.values())} runs, "
                 f"{len(self.keys)} machine key(s). Each line: the run medians of one machine key and profile, "
                 "oldest to newest; a red bar marks the latest change point the statistics call real "
                 "(benchruns/changepoints.py). <a href=\"regressions.html\">"
                 f"{len(h.regressions())} real regressions</a>. {self.disturbed_rule()}</p>",
                 f'<p>The report\'s verdicts on the usual claims, machine by machine: <a href="{FLEET_PAGE}">'
                 "verdicts per machine</a> (<code>make fleet</code>).</p>",
                 '<p><label>filter <input id="filter" type="search" placeholder="name or group"></label></p>']
        groups: dict[tuple, dict[str, dict[str, Series]]] = {}
        for s in h.series.values():
            groups.setdefault((s.question, s.profile, s.device), {}).setdefault(s.fullname, {})[s.key] = s
        order = {q: i for i, q in enumerate(QUESTIONS)}
        current_q = None
        for (q, profile, dev) in sorted(groups, key=lambda g: (order.get(g[0], 99), g[0], g[1], g[2])):
            if q != current_q:
                parts.append(f'<h2 id="{e(q)}">{e(q)}</h2>')
                current_q = q
            benches = groups[(q, profile, dev)]
            keys = [k for k in self.keys if any(k in v for v in benches.values())]
            head = "".join(f'<th class="key">{e(k)}</th>' for k in keys)
            parts.append(f'<h3 id="{e(q)}-{e(profile)}-{e(dev)}">{e(q)} · profile {e(profile)} · {e(dev)} ({len(benches)})</h3>'
                         f"<table><tr><th>benchmark</th><th>group</th>{head}</tr>")
            for fullname, by_key in sorted(benches.items(), key=lambda kv: (next(iter(kv[1].values())).group, kv[0])):
                s0 = next(iter(by_key.values()))
                cells = []
                for k in keys:
                    s = by_key.get(k)
                    if s is None:
                        cells.append("<td class=muted>–</td>")
                        continue
                    st = s.latest_step
                    note = ""
                    if st is not None:
                        cls = "slower" if st.ratio > 1 else "faster"
                        note = (f' <span class="{cls}">{st.change:+.0%} since {e(s.runs[st.index].commit)}</span>')
                    spark = sparkline(s.median, s.steps, disturbed=s.disturbed,
                                      step_from=[s.before(st) for st in s.steps])
                    cells.append(f"<td>{spark}<br>{fmt_time(s.median[-1])} "
                                 f"<span class=muted>({len(s.runs)} runs{disturbed_note(s.runs)})</span>{note}</td>")
                parts.append(f'<tr class="bench"><td><a href="bench/{slug(fullname)}">{e(s0.name)}</a></td>'
                             f"<td>{e(s0.group)}</td>{''.join(cells)}</tr>")
            parts.append("</table>")
        return page("Benchmark history", "".join(parts), script=FILTER_JS)

    def disturbed_rule(self) -> str:
        """How disturbed runs are drawn and whether change points count them."""
        counted = ("counted in change-point detection (--include-disturbed)" if self.h.include_disturbed
                   else "left out of change-point detection (history --include-disturbed counts them)")
        return ("Hollow red rings: disturbed runs, during which other processes used the cores "
                f"(the run's load record, benchruns/load.py); {counted}.")

    # --- regressions ---------------------------------------------------------------------
    def regressions(self) -> str:
        rows = []
        for c in self.h.changes():
            st = c.step
            cls = "slower" if st.ratio > 1 else "faster"
            rows.append(f"<tr><td>{e(stamp(c.after))}</td><td class={cls}>{cls}</td>"
                        f"<td class=num>{st.change:+.1%}</td><td class=num>[{st.ci_low - 1:+.1%}, {st.ci_high - 1:+.1%}]</td>"
                        f"<td class=num>{fmt_time(st.before)} → {fmt_time(st.after)}</td>"
                        f"<td><a href=\"bench/{slug(c.series.fullname)}\">{e(c.series.name)}</a><br>"
                        f"<span class=muted>{e(c.series.group)}</span></td><td class=key>{e(c.series.key)}</td>"
                        f"<td>{e(c.series.profile)}</td><td>{e(c.before.commit)} → {e(c.after.commit)}</td>"
                        f"<td><a href=\"{self.link_diff(c.before, c.after, 0)}\">diff</a></td></tr>")
        body = ("<p>Change points in run medians (one value per run and benchmark) that the statistics call real: "
                "found by a penalised fit on the ranks of the medians, then a Mann-Whitney test between the runs "
                "on either side (p &lt; 0.01) and a change of at least 2%. The interval is a bootstrap of the ratio of "
                "the two segments' medians. Newest first; the diff compares the last run before and the first run "
                "after the change that the detection counted. How often this reports a step where nothing changed is measured on real runs: "
                "see README, \"Runs over time\".</p>")
        if rows:
            body += ("<table><tr><th>from</th><th></th><th>change</th><th>95% CI</th><th>median</th><th>benchmark</th>"
                     "<th>machine</th><th>profile</th><th>commits</th><th></th></tr>" + "".join(rows) + "</table>")
        else:
            body += "<p>No real change points.</p>"
        return page("Change points called real", body)

    # --- machines ------------------------------------------------------------------------
    def machines(self) -> str:
        rows = []
        latest_by_key = {}
        for (key, profile), runs in sorted(self.h.runs.items()):
            last = runs[-1]
            latest_by_key.setdefault(key, last)
            rows.append(f"<tr><td class=key>{e(key)}</td><td>{e(profile)}</td><td class=num>{len(runs)}{disturbed_note(runs)}</td>"
                        f"<td>{e(stamp(runs[0]))} … {e(stamp(last))}</td><td>{e(machine_text(last))}</td>"
                        f"<td>{e(versions(last))}</td></tr>")
        body = ("<table><tr><th>machine key</th><th>profile</th><th>runs</th><th>dates</th><th>machine</th>"
                "<th>versions (newest run)</th></tr>" + "".join(rows) + "</table>")
        if len(latest_by_key) > 1:
            base = latest_by_key[self.keys[0]]
            body += f"<h2>What differs from {e(self.keys[0])}</h2><ul>"
            for k in self.keys[1:]:
                other = latest_by_key[k]
                fields = [f for f in KEY_FIELDS + VERSION_FIELDS if base.machine_info.get(f) != other.machine_info.get(f)]
                text = ", ".join(f"{f}: {base.machine_info.get(f)} vs {other.machine_info.get(f)}" for f in dict.fromkeys(fields))
                body += (f"<li><span class=key>{e(k)}</span>: {e(text) or 'nothing recorded'} "
                         f"(<a href=\"{self.link_diff(base, other, 0)}\">diff of the newest runs</a>)</li>")
            body += "</ul>"
        return page("Machines", body)

    # --- one benchmark -------------------------------------------------------------------
    def bench(self, fullname: str, series: list[Series]) -> str:
        s0 = series[0]
        parts = [f"<p><code>{e(fullname)}</code><br>group <b>{e(s0.group)}</b>, question {e(s0.question)}, "
                 f"device {e(s0.device)}</p>"]
        by_profile: dict[str, list[Series]] = {}
        for s in sorted(series, key=lambda s: (s.profile, s.key)):
            by_profile.setdefault(s.profile, []).append(s)
        for profile, group in by_profile.items():
            parts.append(f"<h2>profile {e(profile)}</h2>")
            if len(group) > 1:
                parts.append(self.compare_machines(group))
            for s in group:
                parts.append(self.one_series(s))
        return page(s0.name, "".join(parts), depth=1)

    def one_series(self, s: Series) -> str:
        labels = [r.commit for r in s.runs]
        tips = [f"{r.label}\n{r.commit} {stamp(r)}\nmedian {fmt_time(m)} (IQR {fmt_time(a)}–{fmt_time(b)})\n"
                f"load: {load_text(r)}" for r, m, a, b in zip(s.runs, s.median, s.q1, s.q3)]
        marks = []
        base = self.h.baselines.get(s.key)
        for i, r in enumerate(s.runs):
            if base is not None and r.path.name == base.name:
                marks.append((i, "baseline"))
        svg = chart([{"y": s.median, "lo": s.q1, "hi": s.q3, "color": self.color[s.key], "tips": tips,
                      "steps": s.steps, "step_from": [s.before(st) for st in s.steps], "levels": s.levels(),
                      "disturbed": s.disturbed}], labels, marks=marks)
        steps = []
        for st in s.steps:
            a, b = s.runs[s.before(st)], s.runs[st.index]
            verdict = "real" if st.real else "not significant"
            steps.append(f"<li>{verdict}: {st.change:+.1%} [{st.ci_low - 1:+.1%}, {st.ci_high - 1:+.1%}] (p={st.p:.2g}) "
                         f"between {e(a.commit)} ({e(stamp(a))}) and {e(b.commit)} ({e(stamp(b))}), "
                         f"<a href=\"{self.link_diff(a, b, 1)}\">diff</a></li>")
        rows = []
        prev = None
        for i, r in enumerate(s.runs):
            v = versions(r)
            cls = ' class="diffv"' if prev is not None and v != prev else ""
            prev = v
            b = r.benchmarks[s.fullname]
            row_cls = ' class="disturbed"' if r.load_status == "disturbed" else ""
            load_cls = "disturbed" if r.load_status == "disturbed" else "muted" if r.load_status == "unrecorded" else ""
            rows.append(f"<tr{row_cls}><td class=num>{i}</td><td>{e(stamp(r))}</td><td>{e(r.commit)}</td>"
                        f"<td class=num>{fmt_time(b.median)}</td><td class=num>{fmt_time(b.q1)}–{fmt_time(b.q3)}</td>"
                        f"<td class=num>{b.rounds}</td><td class=\"{load_cls}\">{e(load_text(r))}</td>"
                        f"<td{cls}>{e(v)}</td><td class=muted>{e(r.label)}</td></tr>")
        return (f"<h3><span class=key style=\"color:{self.color[s.key]}\">{e(s.key)}</span>: {len(s.runs)} runs"
                f"{disturbed_note(s.runs)}</h3>"
                f"<p>{e(machine_text(s.runs[-1]))}. Line: run medians; band: the rounds' interquartile range in each "
                "run; shaded: change points (red: real), dashed: the levels between real ones. "
                f"{self.disturbed_rule()}</p>" + svg
                + ("<ul>" + "".join(steps) + "</ul>" if steps else "<p class=muted>no change points</p>")
                + "<details><summary>runs, machines and versions</summary><table><tr><th>#</th><th>date</th>"
                "<th>commit</th><th>median</th><th>IQR of rounds</th><th>rounds</th><th>load</th><th>versions (changed: red)</th>"
                "<th>file</th></tr>" + "".join(rows) + "</table></details>")

    def compare_machines(self, group: list[Series]) -> str:
        lines, rows = [], []
        base = group[0].runs[-1]
        for s in group:
            last = s.runs[-1]
            b = last.benchmarks[s.fullname]
            ref = self.h.reference(last, b)
            norm = [m / r if r else None for m, r in
                    zip(s.median, (self.h.reference(r, r.benchmarks[s.fullname]) for r in s.runs))]
            if all(v is not None for v in norm):
                lines.append({"y": norm, "color": self.color[s.key],
                              "tips": [f"{s.key} {r.commit}: {v:.3g}× the numpy copy" for r, v in zip(s.runs, norm)]})
            differ = [f for f in VERSION_FIELDS + ("cpu_model", "gpu_models")
                      if last.machine_info.get(f) != base.machine_info.get(f)]
            rows.append(f"<tr><td class=key style=\"color:{self.color[s.key]}\">{e(s.key)}</td>"
                        f"<td>{e(machine_text(last))}</td><td class=num>{fmt_time(b.median)}</td>"
                        f"<td class=num>{fmt_ratio(b.median / group[0].runs[-1].benchmarks[s.fullname].median)}</td>"
                        f"<td class=num>{fmt_time(ref) if ref else '–'}</td>"
                        f"<td class=num>{fmt_ratio(b.median / ref) if ref else '–'}</td>"
                        f"<td>{e(versions(last))}</td>"
                        f"<td{' class=diffv' if differ else ''}>{e(', '.join(differ))}</td></tr>")
        html_ = ("<h3>Machines side by side</h3><p>Newest run of each machine key. The reference is the numpy copy "
                 "limit measured in the same run (<code>transfer/reference</code>, numpy.copyto of the same size, or the "
                 "largest size for benchmarks that move no bytes): dividing by it takes out how fast each machine's "
                 "memory is.</p><table><tr><th>machine key</th><th>machine</th><th>median</th>"
                 f"<th>vs {e(group[0].key)}</th><th>numpy copy</th><th>median / copy</th><th>versions</th>"
                 "<th>differs from the first</th></tr>" + "".join(rows) + "</table>")
        if lines:
            html_ += ("<p>Normalised to each machine's own reference, run by run (x: run number on each machine):</p>"
                      + chart(lines, [str(i) for i in range(max(len(line["y"]) for line in lines))],
                              yfmt=lambda v: f"{v:.3g}×"))
        return html_

    def diff_page(self, a, b) -> str:
        text = diff_mod.render(diff_mod.build(a, b), "table")
        return page(f"diff {a.label} → {b.label}", f"<p>{e(a.key)} / {e(profile_of(a))} → {e(b.key)} / "
                    f"{e(profile_of(b))}; the output of <code>python -m benchruns diff A B</code>:</p>"
                    f"<pre>{e(text)}</pre>", depth=1)


def write_fleet(history: History, out: Path) -> None:
    """The fleet page (benchruns/fleet.py) of the same runs: each machine's verdicts, side by side."""
    from .. import fleet
    from ..runs import BadInput
    from ..storage import _run_order

    by_key: dict = {}
    for (key, _), runs in history.runs.items():
        by_key.setdefault(("history", key), []).extend(runs)
    for runs in by_key.values():
        runs.sort(key=lambda r: _run_order(r.path))
    try:
        fleet.make_fleet(by_key, out, nav=nav(1))
    except BadInput as exc:  # e.g. every run disturbed: the page says so, the rest of the site stands
        out.mkdir(parents=True, exist_ok=True)
        (out / "fleet.html").write_text(page("Verdicts per machine", f"<p>No fleet page: {e(exc)}</p>", depth=1),
                                        encoding="utf-8")


def write_site(history: History, out: Path) -> Path:
    """Write every page into a fresh folder, then swap it in: a failed build leaves the old site."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        site = Site(history, tmp)
        (tmp / "bench").mkdir()
        (tmp / "diff").mkdir()
        for fullname, series in history.benchmarks.items():
            (tmp / "bench" / slug(fullname)).write_text(site.bench(fullname, series), encoding="utf-8")
        (tmp / "index.html").write_text(site.overview(), encoding="utf-8")
        (tmp / "regressions.html").write_text(site.regressions(), encoding="utf-8")
        (tmp / "machines.html").write_text(site.machines(), encoding="utf-8")
        for name, (a, b) in site.diffs.items():
            (tmp / "diff" / name).write_text(site.diff_page(a, b), encoding="utf-8")
        write_fleet(history, tmp / Path(FLEET_PAGE).parent)
        if out.exists():
            old = out.with_name(f".{out.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "index.html"
