"""The load record: does a run know that something else used the machine while it ran?

Real processes, real CPU time: a busy loop outside the measured tree must be seen as
"other" and named; the same loop inside the tree (a child, like a DataLoader worker)
must count as the run's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchruns import load

pytestmark = pytest.mark.skipif(not load.available(), reason="no /proc: the load record is Linux-only")

ROOT = Path(__file__).resolve().parent.parent
SPIN = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < {s}: pass\n"


def spin(seconds: float, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SPIN.format(s=seconds)], **kw)


class Orphan:
    """A busy loop that is not our descendant (its parent shell exits), like another user's job."""

    def __init__(self, seconds: float):
        out = subprocess.run(["bash", "-c", f'{sys.executable} -c "{SPIN.format(s=seconds)}" >/dev/null 2>&1 & echo $!'],
                             capture_output=True, text=True, check=True)
        self.pid = int(out.stdout.strip())

    def kill(self):
        try:
            os.kill(self.pid, 9)
        except ProcessLookupError:
            pass

    def wait(self):
        pass


def test_a_busy_process_outside_the_tree_is_other_and_named():
    hog = Orphan(3.0)
    try:
        time.sleep(0.5)  # past its interpreter start
        meter = load.LoadMeter(roots={os.getpid()})
        meter.open()
        time.sleep(1.0)
        window = meter.close()
    finally:
        hog.kill()
        hog.wait()
    # One spinning process takes close to a whole core; allow for a busy CI neighbour.
    assert window.other_cores > 0.6, window
    assert window.disturbed
    rec = meter.record()
    assert rec["disturbed"] and "other processes used" in rec["why"]
    named = {o["pid"]: o["cpu_s"] for o in rec["busiest_others"]}
    assert named.get(hog.pid, 0) > 0.6, rec["busiest_others"]
    assert load.status(rec) == ("disturbed", rec["why"])


def test_work_of_the_tree_and_its_children_is_its_own():
    meter = load.LoadMeter(roots={os.getpid()})
    meter.open()
    spin(1.0).wait()  # a child, reaped inside the window: its time moves to our cutime
    window = meter.close()
    assert window.own_cpu_s > 0.7, window
    assert all(pid != os.getpid() for pid, _ in window.others)


def test_status_of_records():
    assert load.status(None)[0] == "unrecorded"
    assert load.status({"schema": 1, "available": False, "why": "no /proc"}) == ("unrecorded", "no /proc")
    quiet = {"available": True, "other_cores": 0.01, "steal_cores": 0.0, "threshold_cores": 0.1}
    quiet["disturbed"], quiet["why"] = load.judge(quiet)
    assert load.status(quiet) == ("undisturbed", "")
    stolen = dict(quiet, steal_cores=0.3)
    stolen["disturbed"], stolen["why"] = load.judge(stolen)
    assert stolen["disturbed"] and "stole 0.30" in stolen["why"]


def test_a_saved_run_carries_its_load_record_and_per_benchmark_windows(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "benches/test_device_transfer.py", "--profile=smoke", "--device=cpu",
         "-k", "numpy", "-p", "no:cacheprovider", "-q", "--save-run", f"--results-dir={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        # a pytest started from an xdist worker inherits PYTEST_XDIST_*, and pytest-benchmark would not time
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [saved] = list(tmp_path.glob("*/*.json"))
    doc = json.loads(saved.read_text())
    rec = doc["load"]
    assert rec["available"] and rec["windows"] == len(doc["benchmarks"]) > 0
    assert rec["benchmarks_s"] > 0 and "disturbed" in rec and "busiest_others" in rec
    assert all("other_cores" in b["extra_info"]["load"] for b in doc["benchmarks"])
    # the terminal says which it was, in one line
    assert ("machine load: undisturbed" in proc.stdout) != ("WARNING: this run was disturbed" in proc.stdout)


@pytest.mark.parametrize("make_bad", ["file-in-the-way", "proc"])
def test_unwritable_results_dir_is_one_line_and_exit_2(tmp_path, make_bad):
    if make_bad == "file-in-the-way":
        (tmp_path / "f").write_text("")
        target = tmp_path / "f" / "runs"
    else:
        target = Path("/proc/nope")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "benches/test_device_transfer.py", "--profile=smoke", "-p", "no:cacheprovider",
         "-q", "--save-run", f"--results-dir={target}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    lines = [line for line in out.splitlines() if "usage error" in line]
    assert len(lines) == 1 and str(target) in lines[0], out
    assert "passed" not in out  # stopped before any benchmark ran
