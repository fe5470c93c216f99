"""report: verdicts on the usual TensorFlow-versus-PyTorch claims, with numbers and plots.

``python -m benchruns report [--run PATH ...] [--results-dir results] [--machine KEY] [--out build/report]``

Writes a self-contained folder: report.md, report.html (inline CSS, images referenced
relatively) and one PNG per claim and device. The default run is this machine's newest
saved run; when it lacks a device (cpu or cuda) that an earlier run of the same machine
folder has, the newest such run supplies that device, so CPU and CUDA results stand side
by side. How each verdict is decided is in benchruns/claims.py and in the report itself.
"""

from __future__ import annotations

import html
import re
import sys
import time
from pathlib import Path

from .argparsing import Parser
from .claims import CLAIMS, CONTRADICT_SHARE, NOISE, NOT_MEASURED, SUPPORT_SHARE, Benches, Claim, judge
from .runs import BadInput, load_run, machine_folder, saved_runs, skip_note

DEVICES = ("cpu", "cuda")
MAX_LOOKBACK = 30  # older runs searched for a missing device


def build_parser():
    p = Parser(prog="python -m benchruns report",
               description=f"Verdicts (supported / contradicted / mixed / not measured here) on {len(CLAIMS)} common "
               "TensorFlow-versus-PyTorch claims, each with the benchmarks, medians, 95% bootstrap CIs and "
               "plots it rests on. Writes report.md, report.html and PNGs into --out.")
    p.add_argument("--run", action="append", metavar="PATH",
                   help="run file to report on (repeat to combine, e.g. a CPU and a CUDA run; "
                   "default: this machine's newest run, plus the newest run of any device it lacks)")
    p.add_argument("--results-dir", default="results", help="saved runs, results/<machine-key>/ (default: results)")
    p.add_argument("--machine", help="machine key folder to use instead of this machine's key")
    p.add_argument("--out", default="build/report", help="output folder (default: build/report)")
    return p


def _devices(run) -> set:
    found = set()
    for bench in run.benchmarks.values():
        dev = (bench.extra_info or {}).get("device") or bench.group.rsplit("/", 1)[-1]
        if dev in DEVICES:
            found.add(dev)
    return found


def pick_runs(args, notes: list[str]) -> list:
    if args.run:
        runs = [load_run(p) for p in args.run]
        keys = {r.key for r in runs}
        if len(keys) > 1:
            raise BadInput(f"{', '.join(args.run)}: runs from different machines ({', '.join(sorted(keys))}); "
                           "report on one machine at a time")
        return runs
    folder = machine_folder(args.results_dir, args.machine)
    paths = saved_runs(folder)
    while True:  # the newest run that loads; a broken or foreign file is skipped, named in a note
        try:
            newest = load_run(paths[-1])
            break
        except BadInput as exc:
            if len(paths) == 1:
                raise
            notes.append(skip_note(exc))
            paths = paths[:-1]
    runs = [newest]
    have = _devices(newest)
    for path in reversed(paths[:-1][-MAX_LOOKBACK:]):
        if have >= set(DEVICES):
            break
        try:
            run = load_run(path)
        except BadInput as exc:
            notes.append(skip_note(exc))
            continue
        extra = _devices(run) - have
        if extra:
            # keep only the devices the newer runs lack
            run.benchmarks = {k: b for k, b in run.benchmarks.items()
                              if ((b.extra_info or {}).get("device") or b.group.rsplit("/", 1)[-1]) in extra}
            runs.append(run)
            have |= extra
            notes.append(f"{'/'.join(sorted(extra))} results come from the older run {path.name}")
    return runs


# --- machine ------------------------------------------------------------------------------


def machine_rows(runs) -> list[tuple[str, str]]:
    info = runs[0].machine_info
    gpus = info.get("gpu_models") or []
    rows = [
        ("machine key", runs[0].key),
        ("CPU", f"{info.get('cpu_model', 'n/a')} ({info.get('cpu_count', '?')} logical cores)"),
        ("GPU", ", ".join(gpus) if gpus else "none"),
    ]
    if gpus:
        rows.append(("GPU driver / CUDA", f"{info.get('gpu_driver') or 'n/a'} / torch CUDA {info.get('torch_cuda') or 'n/a'}, "
                     f"TF CUDA {info.get('tensorflow_cuda') or 'n/a'}"))
    rows += [
        ("threads (both frameworks)", str(info.get("threads", "n/a"))),
        ("PyTorch", str(info.get("torch_version") or "not installed")),
        ("TensorFlow", str(info.get("tensorflow_version") or "not installed")),
        ("numpy / Python", f"{info.get('numpy_version', 'n/a')} / {info.get('python_version', 'n/a')}"),
        ("OS", str(info.get("os") or info.get("system") or "n/a")),
        ("profile", str(info.get("profile", "n/a"))),
    ]
    if info.get("frameworks_missing"):
        rows.append(("frameworks missing", str(info["frameworks_missing"])))
    for run in runs:
        devices = ", ".join(sorted(_devices(run))) or "?"
        rows.append((f"run ({devices})", f"{run.path.name} · commit {run.commit} · {run.datetime or 'n/a'} · "
                     f"{len(run.benchmarks)} benchmarks"))
    return rows


RULES = [
    f"Each comparison is a ratio of medians, time(A) / time(B), from the raw per-round timings, with a 95% "
    f"percentile-bootstrap confidence interval (2000 resamples, fixed seed; a ratio of ratios resamples all four "
    f"benchmarks). A is **faster** when the whole CI is below 1 and the ratio is below 1/{1 + NOISE:g}; "
    f"**slower** when the whole CI is above 1 and the ratio above {1 + NOISE:g}; otherwise **no difference**: "
    f"the CI overlaps 1 or the difference is within ±{NOISE:.0%}.",
    "Without raw timings the CI comes from the median, IQR and rounds (weaker); a figure with no CI at all "
    "(first-call summaries) is marked 'no CI'.",
    f"Each claim says which outcome of its comparisons supports it. Verdict: **supported** when at least "
    f"{SUPPORT_SHARE:.0%} of its comparisons support it, **contradicted** when at most {CONTRADICT_SHARE:.0%} do, "
    f"**mixed** in between, **{NOT_MEASURED}** when the run has none of the benchmarks it needs.",
    "The CIs describe round-to-round noise within this run; run-to-run differences (another process, another "
    "day) are usually larger, so a verdict resting on differences of a few percent is fragile.",
]


# --- load ---------------------------------------------------------------------------------

LOAD_MEANING = {
    "undisturbed": "the figures are this machine's own",
    "disturbed": "its figures may be slower and noisier than this machine's; rerun `make bench` on a quiet machine",
    "unrecorded": "nobody checked that the machine was quiet",
}


def _quiet_why(load: dict) -> str:
    """Why an undisturbed run counts as quiet, from its record (runs.py gives no reason for those)."""
    try:
        return (f"other processes used {float(load['other_cores']):.2f} of a core while the benchmarks ran "
                f"(limit {float(load['threshold_cores']):.2f})")
    except (KeyError, TypeError, ValueError):
        return ""


def load_lines(runs, mark=lambda status: f"**{status}**") -> list[tuple[str, str]]:
    """(status, sentence) per run: was the machine shared while it ran, and why the record says so."""
    out = []
    for run in runs:
        which = "This run" if len(runs) == 1 else f"Run {run.path.name}"
        why = run.load_why or (_quiet_why(run.load) if run.load_status == "undisturbed" else "")
        why = f" ({why})" if why else ""
        out.append((run.load_status, f"{which} was {mark(run.load_status)}{why}: {LOAD_MEANING[run.load_status]}."))
    return out


# --- rendering ----------------------------------------------------------------------------


def _md_table(table) -> list[str]:
    out = []
    if table.title:
        out += [f"**{table.title}**", ""]
    out.append("| " + " | ".join(table.headers) + " |")
    out.append("|" + "---|" * len(table.headers))
    for row in table.rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return out + [""]


def render_md(claims: list[Claim], runs, images: dict, notes: list[str]) -> str:
    lines = ["# TensorFlow versus PyTorch: what this run says about the usual claims", ""]
    lines += [f"Load: {text}" for _, text in load_lines(runs)] + [""]
    lines += ["| # | claim | verdict |", "|---|---|---|"]
    for c in claims:
        lines.append(f"| {c.number} | [{c.title}](#claim-{c.number}) | **{c.verdict}** |")
    lines += ["", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in machine_rows(runs)]
    lines += ["", "## How verdicts are decided", ""] + [f"- {r}" for r in RULES]
    if notes:
        lines += [""] + [f"- note: {n}" for n in notes]
    for c in claims:
        lines += ["", f'<a id="claim-{c.number}"></a>', f"## {c.number}. {c.title}: {c.verdict}", "",
                  f"> {c.claim}", "", f"**What was compared.** {c.tested}", "", f"**Verdict: {c.verdict}.** {c.summary}", ""]
        lines += [f"- {f}" for f in c.findings]
        if c.findings:
            lines.append("")
        lines += [f"- *{n}*" for n in c.notes]
        if c.notes:
            lines.append("")
        for png, alt in images.get(c.number, []):
            lines += [f"![{alt}]({png})", ""]
        for table in c.tables:
            lines += _md_table(table)
    return "\n".join(lines).rstrip() + "\n"


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1180px;margin:1.5em auto;padding:0 1em;color:#212529;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #dee2e6;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0 1.2em}td,th{border:1px solid #dee2e6;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f1f3f5}blockquote{margin:.6em 0;padding:.4em 1em;background:#f8f9fa;border-left:4px solid #adb5bd;font-style:italic}
.v{display:inline-block;padding:1px 9px;border-radius:10px;font-weight:600;font-size:.9em;color:#fff}
.supported{background:#2b8a3e}.contradicted{background:#c92a2a}.mixed{background:#e67700}.not-measured-here{background:#868e96}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0;flex:1 1 480px}.plots img{max-width:100%;height:auto;border:1px solid #e9ecef}
figcaption{font-size:.8em;color:#495057}ul{padding-left:1.3em}li{margin:.15em 0}.note{color:#862e9c}
.load{padding:.3em .7em;border-left:4px solid #2b8a3e;background:#f4fbf5}.load.disturbed{border-color:#c92a2a;background:#fff5f5}
.load.unrecorded{border-color:#868e96;background:#f8f9fa}
.caption{font-weight:600;font-size:.9em;margin-top:.8em}
"""


def _badge(verdict: str) -> str:
    return f'<span class="v {re.sub(r"[^a-z]+", "-", verdict)}">{html.escape(verdict)}</span>'


def _inline(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def render_html(claims: list[Claim], runs, images: dict, notes: list[str]) -> str:
    e = html.escape
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
             "<meta name=viewport content='width=device-width,initial-scale=1'>",
             "<title>TensorFlow vs PyTorch: claims and verdicts</title>", f"<style>{CSS}</style></head><body>",
             "<h1>TensorFlow versus PyTorch: what this run says about the usual claims</h1>",
             *[f"<p class='load {status}'>Load: {_inline(text)}</p>" for status, text in load_lines(runs)],
             "<table><tr><th>#</th><th>claim</th><th>verdict</th></tr>"]
    for c in claims:
        parts.append(f"<tr><td>{c.number}</td><td><a href='#claim-{c.number}'>{e(c.title)}</a></td><td>{_badge(c.verdict)}</td></tr>")
    parts.append("</table><h2>Machine</h2><table>")
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in machine_rows(runs)]
    parts.append("</table><h2>How verdicts are decided</h2><ul>")
    parts += [f"<li>{_inline(r)}</li>" for r in RULES]
    parts += [f"<li class=note>note: {e(n)}</li>" for n in notes]
    parts.append("</ul>")
    for c in claims:
        parts += [f"<h2 id='claim-{c.number}'>{c.number}. {e(c.title)} {_badge(c.verdict)}</h2>",
                  f"<blockquote>{e(c.claim)}</blockquote>", f"<p><b>What was compared.</b> {e(c.tested)}</p>",
                  f"<p><b>Verdict: {e(c.verdict)}.</b> {e(c.summary)}</p>"]
        if c.findings or c.notes:
            parts.append("<ul>" + "".join(f"<li>{e(f)}</li>" for f in c.findings)
                         + "".join(f"<li class=note>{e(n)}</li>" for n in c.notes) + "</ul>")
        if images.get(c.number):
            parts.append("<div class=plots>" + "".join(
                f"<figure><img src='{e(png)}' alt='{e(alt)}'><figcaption>{e(alt)}</figcaption></figure>"
                for png, alt in images[c.number]) + "</div>")
        for t in c.tables:
            if t.title:
                parts.append(f"<div class=caption>{e(t.title)}</div>")
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.headers) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{e(str(x))}</td>" for x in row) + "</tr>" for row in t.rows)
                         + "</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --- the command ------------------------------------------------------------------------


def prepare_out(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out}: exists and is not a folder; pass another --out")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("claim*_*.png"):  # plots of an earlier report, e.g. of a device no longer present
        stale.unlink()
    return out


def write_report(runs, out: Path, notes: list[str] | None = None) -> list[Claim]:
    from .report_plots import draw

    notes = notes or []
    claims = judge(Benches(runs))
    out = prepare_out(Path(out))
    images: dict = {}
    for c in claims:
        for spec in c.plots:
            name = f"claim{c.number}_{spec['kind']}_{re.sub(r'[^a-z0-9]+', '-', str(spec.get('device')).lower())}"
            n = sum(1 for png, _ in images.get(c.number, []) if png.startswith(name))
            png = draw(spec, out, f"{name}{'_' + str(n) if n else ''}.png")
            images.setdefault(c.number, []).append((png, spec.get("title", png)))
    (out / "report.md").write_text(render_md(claims, runs, images, notes), encoding="utf-8")
    (out / "report.html").write_text(render_html(claims, runs, images, notes), encoding="utf-8")
    return claims


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    start = time.perf_counter()
    try:
        notes: list[str] = []
        runs = pick_runs(args, notes)
        claims = write_report(runs, Path(args.out), notes)
    except BadInput as exc:
        # runs.py words its hints for compare/gate; this command takes --run instead
        message = str(exc).replace("pass --base/--cand or --machine KEY", "pass --run PATH or --machine KEY")
        print(f"benchruns report: {message.replace('pass --base/--cand', 'pass --run PATH')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("benchruns report: interrupted", file=sys.stderr)
        return 130
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for status, text in load_lines(runs, mark=str):
        if status == "disturbed":
            print(f"note: {text}", file=sys.stderr)
    verdicts = "; ".join(f"{c.number} {c.verdict}" for c in claims)
    print(f"report: {verdicts}; see {Path(args.out) / 'report.html'} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
