"""fleet: verdicts per machine from synthetic runs of several machines, in files and in headless Chromium.

The runs are the report tests' crafted run (tests/test_report.py: every claim has a known
verdict) under several machine keys: two agree; a third has PyTorch's eager rnn-loop four times
faster, which turns claim 3 from contradicted to supported; one has only a quick run; one has a
newer disturbed full run beside an older quiet one; one carries hostile names.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from benchruns import fleet as F
from tests.test_report import crafted_run, load_record
from tests.invoke import benchruns

ROOT = Path(__file__).resolve().parent.parent
HOSTILE_KEY = "evil<img src=x onerror=alert(1)>&key"
HOSTILE_CPU = "<script>alert('cpu')</script> & Co"
QUIET, BUSY = load_record(0.02), load_record(0.85)


def write_run(folder: Path, name: str, *, cpu="Crafted CPU", profile="full", load=QUIET, rnn_torch_eager=1.0,
              torch="2.13.0+cpu") -> Path:
    doc = crafted_run(devices=("cpu",))
    doc["machine_info"].update(machine_key=folder.name, cpu_model=cpu, profile=profile, torch_version=torch,
                               gpu_models=[], gpu_driver=None, torch_cuda=None)
    if load is not None:
        doc["load"] = load
    for bench in doc["benchmarks"]:
        if "rnn-loop" in bench["name"] and bench["name"].endswith("-torch-eager]"):
            stats = bench["stats"]
            for k in ("median", "q1", "q3"):
                stats[k] *= rnn_torch_eager
            stats["data"] = [t * rnn_torch_eager for t in stats["data"]]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(doc))
    return path


def fleet_cli(*args):
    return benchruns("fleet", *args)  # in this process (tests/invoke.py)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One fleet over six machine folders, built by the command."""
    results = tmp_path_factory.mktemp("fleet") / "results"
    write_run(results / "alpha-2c-cpu-00000001", "20261201T000000Z_aaaaaaa.json")
    write_run(results / "bravo-2c-cpu-00000002", "20261201T000000Z_aaaaaaa.json", cpu="Bravo CPU")
    write_run(results / "charlie-2c-cpu-00000003", "20261201T000000Z_aaaaaaa.json", cpu="Charlie CPU",
              rnn_torch_eager=0.25, torch="2.13.0+cu128")
    write_run(results / "delta-2c-cpu-00000004", "20261201T000000Z_aaaaaaa.json", cpu="Delta CPU", profile="quick")
    fallback = results / "echo-2c-cpu-00000005"
    write_run(fallback, "20261201T000000Z_aaaaaaa.json", cpu="Echo CPU")
    write_run(fallback, "20261202T000000Z_bbbbbbb.json", cpu="Echo CPU", load=BUSY)
    write_run(results / HOSTILE_KEY, "20261201T000000Z_aaaaaaa.json", cpu=HOSTILE_CPU)
    (fallback / "20261203T000000Z_ccccccc.json").write_text('{"benchmarks": [{"fullname": "x", "st')  # cut off
    (fallback / "20261204T000000Z_ddddddd.json").write_text('{"some": "other tool"}')  # foreign
    out = results.parent / "out"
    result = fleet_cli("--results-dir", results, "--out", out)
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "fleet.json").read_text())
    return out, result, doc


def column(doc, name):
    return next(m for m in doc["machines"] if m["column"] == name)


def test_a_flipped_claim_lists_its_comparisons_with_each_machines_ratio_and_ci(built):
    out, _, doc = built
    claims = {c["number"]: c for c in doc["claims"]}
    three = claims[3]
    assert three["verdicts"]["alpha-2c-cpu-00000001"] == "contradicted"
    assert three["verdicts"]["charlie-2c-cpu-00000003"] == "supported"
    assert three["differ"] and len(three["flips"]) == 2  # rnn-loop b32, inference and train
    for flip in three["flips"]:
        assert "graph/rnn-loop/" in flip["benchmarks"] and flip["comparison"].startswith("torch eager / ")
        alpha, charlie = flip["machines"]["alpha-2c-cpu-00000001"], flip["machines"]["charlie-2c-cpu-00000003"]
        assert not alpha["supports"] and alpha["outcome"] == "slower" and alpha["lo"] > 1
        assert charlie["supports"] and charlie["outcome"] == "faster" and charlie["hi"] < 1
        assert alpha["lo"] < alpha["ratio"] < alpha["hi"]
    assert (out / three["plot"]).stat().st_size > 5000
    # machines that agree with each other on a claim never list it
    for c in doc["claims"]:
        if not c["differ"]:
            assert c["flips"] == [] and c["plot"] is None
    md = (out / "fleet.md").read_text()
    assert "## Claim 3: Python control flow, verdicts differ" in md
    assert md.count("torch eager / tf.function+XLA") >= 2


def test_each_cell_links_to_its_machines_claim_section(built):
    out, _, doc = built
    for c in doc["claims"]:
        for m in doc["machines"]:
            link = c["links"][m["column"]]
            page, anchor = link.split("#")
            assert anchor == f"claim-{c['number']}"
            report = out / unquote(page)
            assert report.is_file() and f"id='{anchor}'" in report.read_text()
    assert column(doc, "charlie-2c-cpu-00000003")["machine"]["build"] == "CUDA build (cu128)"
    assert column(doc, "alpha-2c-cpu-00000001")["machine"]["build"] == "CPU wheel"


def test_a_machine_with_only_a_quick_run_is_labelled(built):
    out, result, doc = built
    delta = column(doc, "delta-2c-cpu-00000004")
    assert delta["quick"] and delta["profile"] == "quick"
    assert not column(doc, "alpha-2c-cpu-00000001")["quick"]
    assert "delta-2c-cpu-00000004: " in result.stdout and "[QUICK RUN]" in result.stdout
    assert "delta-2c-cpu-00000004 **(quick run)**" in (out / "fleet.md").read_text()
    assert "<span class=quick>quick run</span>" in (out / "fleet.html").read_text()


def test_a_disturbed_newest_run_falls_back_to_the_newest_undisturbed(built):
    _, _, doc = built
    echo = column(doc, "echo-2c-cpu-00000005")
    assert echo["run"].endswith("20261201T000000Z_aaaaaaa.json") and echo["load"] == "undisturbed"
    assert any("disturbed run(s) left out, newest 20261202T000000Z_bbbbbbb.json" in n for n in echo["notes"])


def test_broken_and_foreign_files_are_skipped_with_name_and_reason(built):
    _, result, doc = built
    reasons = {Path(s["path"]).name: s["reason"] for s in doc["skipped"]}
    assert reasons["20261203T000000Z_ccccccc.json"].startswith(("truncated JSON", "not JSON"))
    assert "not a pytest-benchmark run" in reasons["20261204T000000Z_ddddddd.json"]
    assert "note: skipped " in result.stderr and "20261204T000000Z_ddddddd.json" in result.stderr
    assert len(doc["machines"]) == 6  # the rest still drawn


def test_hostile_names_are_escaped(built):
    out, _, doc = built
    page = (out / "fleet.html").read_text()
    md = (out / "fleet.md").read_text()
    for raw in (HOSTILE_KEY, HOSTILE_CPU, "<script>", "<img src=x"):
        assert raw not in page and raw not in md
    assert "evil&lt;img src=x onerror=alert(1)&gt;&amp;key" in page
    assert "&lt;script&gt;alert(&#x27;cpu&#x27;)&lt;/script&gt; &amp; Co" in page
    assert "&lt;script&gt;alert('cpu')&lt;/script&gt; &amp; Co" in md
    hostile = column(doc, HOSTILE_KEY)
    assert hostile["machine"]["CPU"] == HOSTILE_CPU  # JSON keeps the value; json.dumps escapes nothing it needs to
    assert "<" not in hostile["report"] and (out / hostile["report"]).is_file()


def test_fleet_renders_in_headless_chromium(built):
    from tests.test_benchruns_history import Browser, find_chromium

    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium not installed (apt-get install chromium; .ci/run installs it)")
    out, _, doc = built
    with Browser(binary, timeout=30) as browser:
        assert browser.load((out / "fleet.html").as_uri()) == []
        assert browser.evaluate("document.querySelectorAll('script').length") == 0  # the hostile names stayed text
        assert browser.evaluate("document.querySelectorAll('table.matrix tr').length") == 1 + len(doc["claims"])
        heads = browser.evaluate("Array.from(document.querySelectorAll('table.matrix th b')).map(b => b.textContent)")
        assert HOSTILE_KEY in heads and len(heads) == len(doc["machines"])
        assert browser.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 100)")
        links = browser.evaluate("Array.from(document.links).map(a => a.href)")
        assert len(links) >= len(doc["claims"]) * len(doc["machines"])
        for url in links:
            assert url.startswith("file://") and Path(unquote(urlparse(url).path)).is_file(), url
        target = next(u for u in links if "charlie" in u and u.endswith("#claim-3"))
        assert browser.load(target) == []
        assert browser.evaluate("document.getElementById('claim-3') !== null")


@pytest.fixture
def no_plots(monkeypatch):
    """Per-machine report plots drawn as names only: the built fleet (and Chromium) checks the plots; the
    tests that use this check what fleet prints or tables, and each plotted fleet costs about 5 s."""
    monkeypatch.setattr("benchruns.report_plots.draw", lambda spec, out, name: name)


def test_markdown_and_json_on_stdout(built, tmp_path, no_plots):
    out, _, _ = built
    results = out.parent / "results"
    md = fleet_cli("--results-dir", results, "--out", tmp_path / "o", "--format", "md")
    assert md.returncode == 0 and md.stdout.startswith("# Verdicts per machine\n")
    assert md.stdout == (tmp_path / "o" / "fleet.md").read_text()
    js = fleet_cli("--results-dir", results, "--out", tmp_path / "o", "--format", "json")
    assert js.returncode == 0 and json.loads(js.stdout)["claims"][2]["differ"] is True


def test_the_matrix_as_a_docs_table(built, tmp_path, no_plots):
    out, _, _ = built
    results = out.parent / "results"
    table = tmp_path / "fleet_matrix.json"
    done = fleet_cli("--results-dir", results, "--out", tmp_path / "o", "--table", table)
    assert done.returncode == 0, done.stderr
    doc = json.loads(table.read_text())
    md = json.loads((out / "fleet.json").read_text())  # the same fleet, as the built fixture wrote it
    assert len(doc["rows"]) == 8 and len(doc["columns"]) == 2 + len(md["machines"])
    assert doc["rows"][2][1].endswith("⚑")  # claim 3 differs between the crafted machines
    assert [row[2:] for row in doc["rows"]] == [[c["verdicts"][m["column"]] for m in md["machines"]]
                                                for c in md["claims"]]
    assert doc["load"] == ("undisturbed" if all(m["load"] == "undisturbed" for m in md["machines"]) else "disturbed")
    assert all("CPU" in head and "torch" in head for head in doc["columns"][2:])


def test_two_folders_of_one_key_with_other_cpus_are_kept_apart_and_named(tmp_path):
    one, two, three = tmp_path / "ci-xeon", tmp_path / "ci-epyc", tmp_path / "ci-xeon-again"
    write_run(one / "shared-key", "20261201T000000Z_aaaaaaa.json", cpu="Intel Xeon")
    write_run(two / "shared-key", "20261201T000000Z_aaaaaaa.json", cpu="AMD EPYC")
    write_run(three / "shared-key", "20261202T000000Z_bbbbbbb.json", cpu="Intel Xeon")
    skipped: list = []
    columns, left_out = F.choose_columns(F.gather([one, two, three]), skipped)
    names = sorted(c.name for c in columns)
    assert names == ["shared-key@ci-epyc", "shared-key@ci-xeon+ci-xeon-again"] and not left_out
    xeon = next(c for c in columns if "xeon" in c.name)
    assert xeon.run.path.name == "20261202T000000Z_bbbbbbb.json"  # same CPU: the newest of both folders
    assert len({c.slug for c in columns}) == 2


def test_a_full_run_beats_a_newer_quick_run_and_unrecorded_load_is_named(tmp_path):
    folder = tmp_path / "r" / "m"
    write_run(folder, "20261201T000000Z_aaaaaaa.json", load=None)
    write_run(folder, "20261202T000000Z_bbbbbbb.json", profile="quick")
    columns, _ = F.choose_columns(F.gather([tmp_path / "r"]), [])
    assert columns[0].run.path.name == "20261201T000000Z_aaaaaaa.json" and not columns[0].quick
    assert any("no load record" in n for n in columns[0].notes)


def test_a_gzipped_run_is_read_like_a_plain_one(tmp_path):
    import gzip

    folder = tmp_path / "r" / "m"
    plain = write_run(folder, "20261201T000000Z_aaaaaaa.json", profile="quick")
    packed = folder / "20261202T000000Z_bbbbbbb.json.gz"
    packed.write_bytes(gzip.compress(write_run(tmp_path, "full.json").read_bytes()))
    columns, _ = F.choose_columns(F.gather([tmp_path / "r"]), [])
    assert columns[0].run.path == packed and not columns[0].quick and plain.exists()


@pytest.mark.parametrize("info, build", [
    ({"torch_version": "2.13.0+cpu"}, "CPU wheel"),
    ({"torch_version": "2.13.0+cu130"}, "CUDA build (cu130)"),
    ({"torch_version": "2.13.0", "torch_cuda": "13.0"}, "CUDA build (no local tag, CUDA 13.0)"),
    ({"torch_version": "2.13.0+rocm6.4"}, "ROCm build (rocm6.4)"),
    ({"torch_version": None}, "no torch"),
])
def test_build_from_the_torch_version(info, build):
    assert F.torch_build(info) == build


@pytest.mark.parametrize("case", ["missing", "empty", "all-broken", "file-as-out", "bad-option"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, case):
    results = tmp_path / "results"
    args = [results]
    if case == "empty":
        (results / "some-key").mkdir(parents=True)
    elif case == "all-broken":
        (results / "k").mkdir(parents=True)
        (results / "k" / "20261201T000000Z_aaaaaaa.json").write_text("{not json")
    elif case == "file-as-out":
        write_run(results / "k", "20261201T000000Z_aaaaaaa.json")
        (tmp_path / "out").write_text("a file")
    elif case == "bad-option":
        args.append("--colour")
    result = fleet_cli(*args, "--out", tmp_path / "out")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    expected = {"missing": "no such results folder", "empty": "holds no saved runs",
                "all-broken": "no machine has an undisturbed run", "file-as-out": "exists and is not a folder",
                "bad-option": "unrecognized arguments: --colour"}[case]
    assert expected in lines[0] and result.stdout == ""
    if case != "file-as-out":
        assert not (tmp_path / "out").exists()
