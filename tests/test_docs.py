"""docs: the generated blocks of README.md and docs/ match their run files; bad sources are refused.

The first test is the one that keeps the committed README and docs honest: it runs
``python -m benchruns docs --check`` over them and fails on any difference. The rest build
a small repository in a temporary folder around a synthetic undisturbed run (the crafted
report run plus the recorded API-level and distributed benchmarks, with a load record
added) and check each table kind, hand edits, and every way a marker or source can be wrong.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchruns.studies import docs
from benchruns.claims import Benches, judge
from benchruns.runs import load_run

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
QUIET = {"schema": 1, "available": True, "threshold_cores": 0.1, "benchmarks_s": 412.0, "own_cores": 1.9,
         "other_cores": 0.02, "steal_cores": 0.01, "disturbed": False, "why": "", "busiest_others": []}
BUSY = dict(QUIET, other_cores=0.8, disturbed=True,
            why="other processes used 0.80 of a core while benchmarks ran (limit 0.10)")
RUN = "results/crafted/20260101T000000Z_c0ffee0.json"
EVERY_KIND = f"""# A README

<!-- generated: verdicts run={RUN} -->
<!-- end generated -->

Prose between blocks stays as it is.

<!-- generated: graph-medians run={RUN} workload=mlp-small pass=train -->
<!-- end generated -->

<!-- generated: first-call run={RUN} -->
<!-- end generated -->

<!-- generated: pipelines run={RUN} -->
<!-- end generated -->

<!-- generated: transfer run={RUN} -->
<!-- end generated -->

<!-- generated: distributed run={RUN} -->
<!-- end generated -->

<!-- generated: api-levels run={RUN} -->
<!-- end generated -->

<!-- generated: claim-table claim=2 table=2 run={RUN} -->
<!-- end generated -->

<!-- generated: profile run=results/crafted/*.json -->
<!-- end generated -->

<!-- generated: plot claim=1 device=cpu run={RUN} out=docs/img/claim1.png -->
<!-- end generated -->

<!-- generated: table data=docs/data/noise.json -->
<!-- end generated -->

```markdown
<!-- generated: an example in a code fence, not a block -->
```

<!-- pending generated: verdicts run=PENDING_FULL -->
*Pending: a block whose run is not made yet.*
<!-- end pending -->
"""


def write_run(path: Path, load: dict | None) -> Path:
    doc = json.loads((DATA / "report_crafted.json").read_text())
    for extra in ("recorded_api.json", "recorded_distributed.json"):
        doc["benchmarks"] += json.loads((DATA / extra).read_text())["benchmarks"]
    if load is not None:
        doc["load"] = load
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def data_file(load="undisturbed") -> dict:
    return {"source": "`make error-rates`", "machine": "Crafted CPU, 2 cores", "commit": "c0ffee0", "load": load,
            "title": "A/A jobs that fail.", "columns": ["design", "A/A jobs that fail"],
            "rows": [["ab, 4 pairs", "3.5%"], ["saved runs, window of 8", "8.9%"]]}


@pytest.fixture
def repo(tmp_path):
    """A README with every kind, one docs page per claim page, an undisturbed run and a data file."""
    write_run(tmp_path / RUN, QUIET)
    (tmp_path / "README.md").write_text(EVERY_KIND)
    (tmp_path / "docs" / "data").mkdir(parents=True)
    (tmp_path / "docs" / "data" / "noise.json").write_text(json.dumps(data_file()))
    pages: dict = {}
    for number, page in docs.CLAIM_PAGES.items():
        pages.setdefault(page, []).append(number)
    for page, numbers in pages.items():
        (tmp_path / "docs" / page).write_text("".join(
            f"## Claim {n}\n\n<!-- generated: claim n={n} run={RUN} -->\n<!-- end generated -->\n\n" for n in numbers))
    return tmp_path


def run_docs(root: Path, *args: str, capsys) -> tuple[int, str, str]:
    code = docs.main(["--root", str(root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def block_of(text: str, start: str) -> str:
    begin = text.index(start)
    return text[begin:text.index(docs.END, begin)]


# --- the committed README and docs -----------------------------------------------------------


def test_committed_readme_and_docs_match_their_run_files(capsys):
    code, out, err = run_docs(ROOT, "--check", capsys=capsys)
    assert code == 0, f"README.md or docs/ differ from their sources (run `make docs`):\n{out}{err}"
    assert "match their sources" in out


# --- every kind, from an undisturbed run ------------------------------------------------------


def test_every_kind_is_generated_and_then_checks_clean(repo, capsys):
    code, out, err = run_docs(repo, capsys=capsys)
    assert code == 0, err
    assert "rewrote README.md" in out
    readme = (repo / "README.md").read_text()
    # each table names its run, machine, commit and load status
    caption = "From `results/crafted/20260101T000000Z_c0ffee0.json` (full profile): Crafted CPU, 2 cores, " \
              "2 threads per framework, torch 2.13.0, TensorFlow 2.21.0, Crafted GPU; commit c0ffee0; undisturbed."
    assert readme.count(caption) == 10
    assert "Prose between blocks stays as it is." in readme
    assert "<!-- generated: an example in a code fence, not a block -->\n```" in readme
    assert "run=PENDING_FULL -->\n*Pending: a block whose run is not made yet.*\n<!-- end pending -->" in readme
    assert out.endswith("; 1 pending block(s) still wait for their sources\n")
    # the verdict table says what `make report` says, claim by claim
    claims = judge(Benches([load_run(repo / RUN)]))
    verdicts = block_of(readme, "<!-- generated: verdicts")
    for c in claims:
        row = next(line for line in verdicts.splitlines() if line.startswith(f"| {c.number} | "))
        assert f"[{c.title}](docs/{docs.CLAIM_PAGES[c.number]}#claim-{c.number})" in row
        assert f"**{c.verdict}**" in row
        if c.supports + c.contradicts:
            assert f"| {c.supports} of {c.supports + c.contradicts} |" in row
    assert "| 5 | [Input pipelines](docs/input-pipelines.md#claim-5) | **supported** | 2 of 2 | for: tf.data is " \
           "2× faster than DataLoader (pipeline/memory/cpu) |" in verdicts
    # the claim sections the verdict table links to carry its anchor and the report's words
    graph = (repo / "docs" / "graph-modes.md").read_text()
    assert '<a id="claim-1"></a>' in graph and f"**Claim 1, {claims[0].title}: {claims[0].verdict}.**" in graph
    medians = block_of(readme, "<!-- generated: graph-medians")
    assert "| mlp-small | train | 1 | 157 µs | 243 µs | **140 µs** | 458 µs | 303 µs | 331 µs |" in medians
    assert "inference" not in medians.split("\n|---")[1]
    assert "| mlp-small | inference | 32 | 2 s / never | 3 ms / 750 | 30 ms / 341 | 50 ms / 610 |" in readme
    assert "| tensorflow convert_to_tensor (host-ingest) | 2.5 (0.42) | 5 (0.42) |" in readme
    assert "| mlp-large | TensorFlow MWMS | 2 | 1 | 824 ms | 77.7 | 0.16 |" in readme
    assert "| `20260101T000000Z_c0ffee0.json` | full | 186 | 6 min 52.0 s |" in readme
    assert "![Claim 1: time per step vs batch size (cpu)](docs/img/claim1.png)" in readme
    assert (repo / "docs" / "img" / "claim1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "*A/A jobs that fail. From `docs/data/noise.json`, measured by `make error-rates`: Crafted CPU, 2 cores; " \
           "commit c0ffee0; undisturbed. Written by `make docs`.*" in readme
    assert "| saved runs, window of 8 | 8.9% |" in readme
    # generating is idempotent, and the check agrees
    before = snapshot(repo)
    code, out, err = run_docs(repo, "--check", capsys=capsys)
    assert (code, err) == (0, "") and "19 generated blocks in 6 files match their sources" in out
    assert "; nothing changed; 1 pending" in run_docs(repo, capsys=capsys)[1]
    # one file alone: the claim pages its verdict table links to are read for their anchors
    assert run_docs(repo, "--check", "README.md", capsys=capsys)[0] == 0
    assert snapshot(repo) == before


def test_a_number_edited_by_hand_fails_the_check(repo, capsys):
    assert run_docs(repo, capsys=capsys)[0] == 0
    readme = repo / "README.md"
    edited = readme.read_text().replace("| 157 µs | 243 µs |", "| 150 µs | 243 µs |")
    readme.write_text(edited)
    before = snapshot(repo)
    code, out, err = run_docs(repo, "--check", capsys=capsys)
    assert code == 1
    assert "-| mlp-small | train | 1 | 150 µs |" in out and "+| mlp-small | train | 1 | 157 µs |" in out
    assert err == "benchruns docs: 1 file(s) differ from their sources; run `make docs`\n"
    assert snapshot(repo) == before  # --check writes nothing
    assert run_docs(repo, capsys=capsys)[0] == 0 and "150 µs" not in readme.read_text()


def test_a_stale_plot_fails_the_check(repo, capsys):
    assert run_docs(repo, capsys=capsys)[0] == 0
    (repo / "docs" / "img" / "claim1.png").write_bytes(b"not the plot")
    code, out, _ = run_docs(repo, "--check", capsys=capsys)
    assert code == 1 and "docs/img/claim1.png: the plot differs from what its run draws" in out


# --- refused and bad sources: one line, exit 2, nothing written --------------------------------


def refused(root: Path, capsys, *args: str) -> str:
    before = snapshot(root)
    code, out, err = run_docs(root, *args, capsys=capsys)
    assert code == 2, (out, err)
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    assert snapshot(root) == before
    return err


@pytest.mark.parametrize("load, why", [(BUSY, "disturbed (other processes used 0.80 of a core"),
                                       (None, "unrecorded (the run has no load record")])
def test_disturbed_or_unrecorded_run_is_refused(repo, capsys, load, why):
    write_run(repo / RUN, load)
    for args in ((), ("--check",)):
        err = refused(repo, capsys, *args)
        assert err.startswith(f"benchruns docs: README.md:3: refused {RUN}: {why}")
        assert err.rstrip().endswith("figures come only from undisturbed runs")


def test_data_file_must_say_undisturbed_and_carry_its_fields(repo, capsys):
    noise = repo / "docs" / "data" / "noise.json"
    noise.write_text(json.dumps(data_file(load="unrecorded")))
    assert "refused docs/data/noise.json: its load is 'unrecorded', not undisturbed" in refused(repo, capsys)
    doc = data_file()
    del doc["commit"]
    noise.write_text(json.dumps(doc))
    assert "docs/data/noise.json: no 'commit' field" in refused(repo, capsys)
    noise.with_suffix(".csv").write_text("# source: a script\n# machine: Crafted CPU\n# commit: c0ffee0\n"
                                         "# load: undisturbed\nsize,GB/s\n4 KiB,5.2\n")
    (repo / "README.md").write_text("<!-- generated: table data=docs/data/noise.csv -->\n<!-- end generated -->\n")
    code, _, err = run_docs(repo, "README.md", capsys=capsys)
    assert code == 0, err
    assert "| 4 KiB | 5.2 |" in (repo / "README.md").read_text()


@pytest.mark.parametrize("text, message", [
    ("<!-- generated: speedups run=x.json -->\n<!-- end generated -->\n",
     "README.md:1: unknown table kind 'speedups'; one of verdicts, claim, "),
    (f"<!-- generated: graph-medians run={RUN.replace('c0ffee0', 'beef')} -->\n<!-- end generated -->\n",
     "README.md:1: results/crafted/20260101T000000Z_beef.json: no such file"),
    ("<!-- generated: graph-medians run=results/nowhere/*.json -->\n<!-- end generated -->\n",
     "README.md:1: no file matches results/nowhere/*.json"),
    ("<!-- generated: graph-medians -->\n<!-- end generated -->\n", "README.md:1: graph-medians needs run="),
    ("<!-- generated: graph-medians run=/tmp/*.json -->\n<!-- end generated -->\n",
     "README.md:1: /tmp/*.json: a marker names its files relative to the repository root"),
    (f"<!-- generated: graph-medians run={RUN} colour=red -->\n<!-- end generated -->\n",
     "README.md:1: graph-medians takes batch, device, pass, run, workload, not colour="),
    (f"text\n<!-- generated: graph-medians run={RUN} -->\n| a table |\n",
     "README.md:2: generated block never closed"),
    ("text\n<!-- end generated -->\n", "README.md:2: <!-- end generated --> without a <!-- generated: ... -->"),
    (f"<!-- generated: graph-medians run={RUN} -->\n<!-- generated: first-call run={RUN} -->\n",
     "README.md:2: a generated block starts inside the block opened at line 1"),
    ("<!-- generated graph-medians -->\n", "README.md:1: malformed marker"),
    (f"<!-- generated: claim n=9 run={RUN} -->\n<!-- end generated -->\n", "README.md:1: no claim 9; claims are 1,"),
    (f"<!-- generated: verdicts run={RUN} -->\n<!-- end generated -->\n",
     "README.md:1: claim 1 links to docs/graph-modes.md, which has no 'claim n=1' block"),
    (f"<!-- generated: first-call run={RUN},{RUN} -->\n<!-- end generated -->\n",
     "README.md:1: first-call reads one run, but run= matched"),
])
def test_bad_marker_or_source_gives_one_line_and_exit_2(repo, capsys, text, message):
    if "verdicts" in text:
        (repo / "docs" / "graph-modes.md").write_text("no claim blocks here\n")
    if "matched" in message:
        write_run(repo / RUN.replace("c0ffee0", "c0ffee1"), QUIET)
        text = text.replace(f",{RUN}", "," + RUN.replace("c0ffee0", "c0ffee1"))
    (repo / "README.md").write_text(text)
    assert refused(repo, capsys).startswith(f"benchruns docs: {message}")


def test_command_line_wiring():
    """`python -m benchruns docs` reaches docs.main; a bad --root is one line and exit 2."""
    proc = subprocess.run([sys.executable, "-m", "benchruns", "docs", "--root", "/nonexistent/root"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "benchruns docs: /nonexistent/root: no such folder (--root)\n"
