"""history: the site built from recorded runs (tests/data/history), checked on disk and in headless Chromium.

The browser check drives Debian's chromium over the DevTools protocol on a pipe
(--remote-debugging-pipe: NUL-terminated JSON on fds 3 and 4, no port, no extra package):
load a page from disk, wait for its load event, and collect what the console would show
(console.error/warning, uncaught exceptions, resources that failed to load) and the links
as the browser resolved them. Every wait has a deadline; the browser is killed on exit.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--remote-debugging-pipe", "--hide-scrollbars", "--window-size=1280,1000"]


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, binary: str, timeout: float = 30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="history-chromium-")
        low_r, self._w = os.pipe()
        self._r, low_w = os.pipe()
        # move the child's ends above 3 and 4, so that placing them on 3 and 4 cannot close one
        to_chrome_r, from_chrome_w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (low_r, low_w))
        os.close(low_r)
        os.close(low_w)
        # bash puts the pipe ends on the fd numbers Chromium expects, then becomes Chromium
        script = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
        self.proc = subprocess.Popen(["bash", "-c", script, binary, *BROWSER_FLAGS, f"--user-data-dir={self.profile}",
                                      "about:blank"], pass_fds=(to_chrome_r, from_chrome_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(domain, session=True)

    def _send(self, msg: dict) -> None:
        os.write(self._w, json.dumps(msg).encode() + b"\0")

    def _recv(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: bool = False, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        self._send(msg)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._recv(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for i, ev in enumerate(self.events):
            if ev["method"] == method:
                return self.events.pop(i)
        while True:
            ev = self._recv(deadline)
            if ev.get("method") == method:
                return ev
            if "method" in ev:
                self.events.append(ev)

    def load(self, url: str) -> list[str]:
        """Navigate, wait for the load event; return the console errors seen meanwhile."""
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired")
        self.evaluate("1")  # drain what the page logged while loading
        return self.errors()

    def errors(self) -> list[str]:
        out = []
        for ev in self.events:
            p = ev.get("params", {})
            if ev["method"] == "Runtime.exceptionThrown":
                out.append("exception: " + p["exceptionDetails"].get("text", "") + " "
                           + str(p["exceptionDetails"].get("exception", {}).get("description", "")))
            elif ev["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                               for a in p.get("args", [])))
            elif ev["method"] == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry']['text']} {p['entry'].get('url', '')}")
        return out

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def screenshot(self, path) -> None:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(data))

    def close(self) -> None:
        try:
            self._send({"id": 0, "method": "Browser.close"})
            self.proc.wait(timeout=5)
        except Exception:
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
            for fd in (self._r, self._w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

DATA = ROOT / "tests" / "data" / "history"
FAKE_KEY = "synthetic-xeon-4c-cpu-0000test"
INJECTED = "test_steady_state[cpu-mlp-small-b32-inference-torch-eager]"


def history(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "benchruns", "history", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def history_here(capsys, *args):
    """The same command in this process (no interpreter start-up): (exit code, stdout, stderr)."""
    from benchruns.cli import main

    code = main(["history", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "history"
    result = history("--results-dir", DATA, "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("href", "src") and v]


def test_prints_the_overview_and_the_injected_regression(site):
    out, stdout = site
    assert f"overview: {(out / 'index.html').resolve()}" in stdout
    lines = stdout.splitlines()
    top = lines[lines.index("newest real regressions:") + 1:]
    # the fixture's one injected 1.5x slowdown, between the two commits of the synthetic machine
    assert len(top) == 1 and INJECTED in top[0] and "aaaaaaa -> bbbbbbb" in top[0] and FAKE_KEY in top[0]
    change = float(re.search(r"([+-][0-9.]+)%", top[0]).group(1))
    assert 30 < change < 80


def test_every_link_resolves_and_nothing_comes_from_the_network(site):
    out, _ = site
    pages = sorted(out.rglob("*.html"))
    assert {"index.html", "regressions.html", "machines.html"} <= {p.name for p in pages}
    checked = 0
    for path in pages:
        parser = Links()
        parser.feed(path.read_text(encoding="utf-8"))
        for url in parser.urls:
            assert not re.match(r"^(https?:)?//", url), f"{path.name} fetches {url}"
            page, _, anchor = unquote(url).partition("#")
            target = (path.parent / page).resolve() if page else path
            assert target.is_file(), f"{path.relative_to(out)} links to missing {url}"
            if anchor:
                assert re.search(f"id=['\"]{re.escape(anchor)}['\"]", target.read_text(encoding="utf-8")), url
            checked += 1
    assert checked > len(pages)
    # the fleet page (benchruns/fleet.py) is the reports' own output, with their PNG plots
    assert not [p for p in out.rglob("*.png") if "fleet" not in p.relative_to(out).parts], \
        "one file per page: plots are inline SVG"
    assert 'href="fleet/fleet.html"' in (out / "index.html").read_text(encoding="utf-8")
    assert (out / "fleet" / "fleet.html").is_file()


def test_regressions_page_has_size_ci_commits_and_diff(site):
    out, _ = site
    text = (out / "regressions.html").read_text(encoding="utf-8")
    row = next(r for r in text.split("<tr>") if INJECTED in r)
    assert re.search(r"\+\d+\.\d%</td><td class=num>\[\+\d+\.\d%, \+\d+\.\d%\]", row)
    assert "aaaaaaa → bbbbbbb" in row
    diff = re.search(r'href="(diff/[^"]+)"', row).group(1)
    body = (out / diff).read_text(encoding="utf-8")
    assert "20261129T003829Z_aaaaaaa.json" in body and "20261129T004044Z_bbbbbbb.json" in body
    assert "commit_info changed" in body


def test_profiles_and_machines_are_separate_series(site):
    out, _ = site
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "graph · profile full · cpu" in index and "graph · profile quick · cpu" in index
    assert "transfer · profile quick · cpu" in index and "pipeline · profile quick · cpu" in index
    page = next((out / "bench").glob("test_steady_state_cpu-mlp-small-b32-inference-torch-eager-*.html"))
    text = page.read_text(encoding="utf-8")
    assert "Machines side by side" in text and FAKE_KEY in text and "amd-epyc-2c-cpu-480e5c54" in text
    # the synthetic machine differs in torch version and CPU, and the page says so
    assert "torch_version, cpu_model" in text
    assert "profile full" in text and "profile quick" in text
    machines = (out / "machines.html").read_text(encoding="utf-8")
    assert "torch_version: 2.13.0+cpu vs 2.12.0" in machines


@pytest.fixture(scope="module")
def browser():
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium not installed (apt-get install chromium; .ci/run installs it)")
    with Browser(binary, timeout=30) as b:
        yield b


def test_site_renders_in_headless_chromium_without_console_errors(site, browser):
    out, _ = site
    assert browser.load((out / "index.html").as_uri()) == []
    sparks = browser.evaluate("document.querySelectorAll('svg.spark').length")
    rows = browser.evaluate("document.querySelectorAll('tr.bench').length")
    assert sparks >= rows > 100
    height = browser.evaluate("document.body.scrollHeight")
    assert height > 2000  # laid out, not an empty page
    links = browser.evaluate("Array.from(document.links).map(a => a.href)")
    assert len(links) > rows
    for url in links:
        assert url.startswith("file://") and Path(unquote(urlparse(url).path)).is_file(), url
    visible = browser.evaluate("var f=document.getElementById('filter'); f.value='torch-eager';"
                               "f.dispatchEvent(new Event('input'));"
                               "Array.from(document.querySelectorAll('tr.bench')).filter(r=>r.style.display!='none').length")
    assert 0 < visible < rows
    pages = [out / "regressions.html", out / "machines.html"]
    pages.append(next((out / "bench").glob("test_steady_state_cpu-mlp-small-b32-inference-torch-eager-*.html")))
    pages.append(next((out / "diff").glob("*.html")))
    for page in pages:
        assert browser.load(page.as_uri()) == [], page.name
        for url in browser.evaluate("Array.from(document.links).map(a => a.href)"):
            assert Path(unquote(urlparse(url).path)).is_file(), (page.name, url)
    assert browser.load(pages[2].as_uri()) == []
    assert browser.evaluate("document.querySelectorAll('svg.chart').length") >= 3


def test_the_browser_check_catches_errors(tmp_path, browser):
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><img src='missing.png'><script>console.error('boom'); undefinedCall()</script>")
    errors = browser.load(bad.as_uri())
    assert any("boom" in e for e in errors) and any("undefinedCall" in e for e in errors)
    assert any("missing.png" in e or "ERR_FILE_NOT_FOUND" in e for e in errors), errors


def make_run(medians: dict, seed: int, profile: str = "quick") -> dict:
    rng = np.random.default_rng(seed)
    benches = []
    for name, median in medians.items():
        data = (median * rng.lognormal(0, 0.01, 20)).tolist()
        q1, med, q3 = np.percentile(data, [25, 50, 75])
        benches.append({"group": "graph/demo/cpu", "name": name, "fullname": f"benches/t.py::{name}", "params": {},
                        "extra_info": {}, "stats": {"median": med, "q1": q1, "q3": q3, "rounds": 20}})
    return {"machine_info": {"machine_key": "demo-key", "profile": profile}, "commit_info": {"id": f"{seed:07x}"},
            "benchmarks": benches, "datetime": "", "version": "5.3.1"}


def test_a_profile_change_is_not_a_step(tmp_path, capsys):
    """Quick and full runs interleaved at different levels: two flat series, no change point."""
    folder = tmp_path / "results" / "demo-key"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(24):
        profile = "full" if i % 3 == 0 else "quick"
        level = 3e-3 if profile == "full" else 1e-3
        run = make_run({"test_a": level * np.exp(rng.normal(0, 0.01))}, i, profile)
        (folder / f"202601{i + 1:02d}T000000Z_{i:07x}.json").write_text(json.dumps(run))
    code, out, err = history_here(capsys, "--results-dir", tmp_path / "results", "--out", tmp_path / "h")
    assert code == 0, err
    assert "0 real change point(s)" in out and "newest real regressions: none" in out
    index = (tmp_path / "h" / "index.html").read_text()
    assert "profile full" in index and "profile quick" in index


@pytest.mark.parametrize("case", ["empty", "broken", "no-machine", "missing"])
def test_bad_input_one_line_exit_2_and_nothing_written(tmp_path, capsys, case):
    results = tmp_path / "results"
    folder = results / "demo-key"
    folder.mkdir(parents=True)
    extra = []
    if case == "broken":
        (folder / "20260101T000000Z_0000000.json").write_text("{ truncated")
    elif case == "no-machine":
        (folder / "20260101T000000Z_0000000.json").write_text(json.dumps(make_run({"test_a": 1e-3}, 1)))
        extra = ["--machine", "other-key"]
    elif case == "missing":
        results = tmp_path / "nowhere"
    out = tmp_path / "hist"
    code, _, err = history_here(capsys, "--results-dir", results, "--out", out, *extra)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and err.startswith("benchruns history: ")
    assert not out.exists()


def disturbed_history(tmp_path) -> Path:
    """10 quiet runs at 1 ms, one disturbed run at 3 ms (run 10), 10 quiet runs at 1.5 ms, one disturbed at 1.5 ms."""
    from tests.test_report import load_record

    folder = tmp_path / "results" / "demo-key"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(22):
        level = 1e-3 if i < 10 else 3e-3 if i == 10 else 1.5e-3
        run = make_run({"test_a": level * np.exp(rng.normal(0, 0.01))}, i)
        if i in (10, 21):
            run["load"] = load_record(0.85)
        elif i >= 2:  # the two oldest runs predate the load record
            run["load"] = load_record(0.02)
        (folder / f"202601{i + 1:02d}T000000Z_{i:07x}.json").write_text(json.dumps(run))
    return tmp_path / "results"


def test_disturbed_runs_are_drawn_hollow_listed_and_skipped_by_change_points(tmp_path, capsys):
    results = disturbed_history(tmp_path)
    code, out, err = history_here(capsys, "--results-dir", results, "--out", tmp_path / "h")
    assert code == 0, err
    assert "note: 2 disturbed run(s)" in out and "left out of change points" in out
    # the step is found between the last quiet run before it (9) and the first quiet one after (11)
    lines = out.splitlines()
    (top,) = lines[lines.index("newest real regressions:") + 1:]
    assert f"{9:07x} -> {11:07x}" in top
    assert 40 < float(re.search(r"([+-][0-9.]+)%", top).group(1)) < 60  # 1.5 ms / 1 ms, not the 3 ms outlier
    page = next((tmp_path / "h" / "bench").glob("test_a-*.html")).read_text(encoding="utf-8")
    chart = page[page.index('<svg class="chart"'):page.index("</svg>", page.index('<svg class="chart"'))]
    assert chart.count('class="disturbed"') == 2  # runs 10 and 21, hollow red rings
    assert "load: disturbed: other processes used 0.85 of a core" in chart  # the point's hover text
    assert "22 runs, <span class=disturbed>2 disturbed</span>" in page
    assert "left out of change-point detection" in page
    rows = re.findall(r"<tr( class=\"disturbed\")?><td class=num>(\d+)</td>.*?</tr>", page)
    assert sorted(int(i) for cls, i in rows if cls) == [10, 21]
    assert page.count("disturbed: other processes used 0.85 of a core while benchmarks ran (limit 0.10); "
                      "busiest: stress-ng (pid 4242) 25.5 s") == 2 + 2  # hover text and row, per run
    assert "unrecorded: the run has no load record" in page and ">undisturbed</td>" in page
    index = (tmp_path / "h" / "index.html").read_text(encoding="utf-8")
    assert index.count('class="disturbed"') == 2 and "2 disturbed" in index
    machines = (tmp_path / "h" / "machines.html").read_text(encoding="utf-8")
    assert "22, <span class=disturbed>2 disturbed</span>" in machines


def test_include_disturbed_counts_them_in_change_points(tmp_path, capsys):
    """Counted, the 3 ms outlier and the disturbed run 21 join the levels: the step now starts at run 10."""
    results = disturbed_history(tmp_path)
    code, out, err = history_here(capsys, "--results-dir", results, "--out", tmp_path / "h", "--include-disturbed")
    assert code == 0, err
    assert "counted in change points (--include-disturbed)" in out
    lines = out.splitlines()
    (top,) = lines[lines.index("newest real regressions:") + 1:]
    assert f"{9:07x} -> {10:07x}" in top
    page = next((tmp_path / "h" / "bench").glob("test_a-*.html")).read_text(encoding="utf-8")
    assert "counted in change-point detection (--include-disturbed)" in page
    assert page.count('<circle class="disturbed"') == 2  # still drawn as disturbed


def test_change_points_skip_disturbed_runs_and_keep_positions():
    """The model on its own: steps found on the counted runs, reported at their positions in the series."""
    from benchruns.history.model import build_history
    from benchruns.runs import load_run

    with tempfile.TemporaryDirectory() as tmp:
        results = disturbed_history(Path(tmp))
        runs = [load_run(p) for p in sorted((results / "demo-key").glob("*.json"))]
        h = build_history(runs, {})
        (s,) = h.series.values()
        assert s.disturbed == [i in (10, 21) for i in range(22)]
        assert s.counted.tolist() == [i not in (10, 21) for i in range(22)]
        (st,) = [st for st in s.steps if st.real]
        assert (s.before(st), st.index) == (9, 11)
        assert st.ratio == pytest.approx(1.5, rel=0.03)
        (first, second) = s.levels()
        assert first[:2] == (0, 11) and first[2] == pytest.approx(1e-3, rel=0.02)  # the 3 ms run is not in it
        assert second[:2] == (11, 22) and second[2] == pytest.approx(1.5e-3, rel=0.02)
        (change,) = h.changes()
        assert (change.before.commit, change.after.commit) == (f"{9:07x}", f"{11:07x}")
