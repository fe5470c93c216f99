"""The distributed benchmark's machinery, checked fast: launcher, parity, bandwidth arithmetic, claim 7.

The launcher's tests run tiny real worker processes (``python -c``): a crash or a hang
fails the launch with the worker's stderr tail and kills every sibling; Ctrl-C and a
killed coordinator leave no process behind. The data-parallel steps themselves run in
the smoke profile of benches/test_distributed.py (real torch and TensorFlow workers).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from benches import test_distributed as bench
from benches.distributed import bus_bandwidth, launcher, scaling_efficiency, threads_per_worker, worker_counts
from benchruns.claims import Benches, claim_7
from benchruns.report_plots import draw
from benchruns.runs import load_run

ROOT = Path(__file__).resolve().parent.parent
RECORDED = Path(__file__).parent / "data" / "recorded_distributed.json"

# A worker that writes its pid (so a test can look for it afterwards) and then sleeps.
SLEEPER = ("import os, pathlib, time; "
           "pathlib.Path(os.environ['TFPT_WORKDIR'], 'pid-' + os.environ['TFPT_RANK']).write_text(str(os.getpid())); "
           "time.sleep(120)")


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for_pids(folder: Path, n: int, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(folder.glob("pid-*"))
        texts = [f.read_text() for f in files]
        if len(files) == n and all(texts):
            return [int(t) for t in texts]
        time.sleep(0.05)
    raise AssertionError(f"the workers did not start within {timeout} s")


def gone(pids, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------- launcher


def test_free_ports_are_distinct_bindable_loopback_ports():
    ports = launcher.free_ports(4)
    assert len(set(ports)) == 4 and all(1024 <= p < 65536 for p in ports)
    for port in ports:  # free now: each can be bound on 127.0.0.1
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_worker_environments_name_only_loopback():
    env = launcher.torch_env(1, 2, 29500)
    assert (env["MASTER_ADDR"], env["MASTER_PORT"], env["RANK"], env["WORLD_SIZE"]) == ("127.0.0.1", "29500", "1", "2")
    config = json.loads(launcher.tf_env(1, [4001, 4002])["TF_CONFIG"])
    assert config == {"cluster": {"worker": ["127.0.0.1:4001", "127.0.0.1:4002"]}, "task": {"type": "worker", "index": 1}}


def test_launch_retries_with_new_ports_when_a_port_was_taken(monkeypatch):
    seen = []

    def fake_run(argvs, envs, timeout_s, prefix=None, private_tmp=False):
        assert not private_tmp  # torch's workers keep the shared temporary folder (inductor's cache)
        seen.append(envs[0]["MASTER_PORT"])
        if len(seen) == 1:
            raise launcher.WorkerFailure("worker 0 ... RuntimeError: Address already in use")
        return "finished"

    monkeypatch.setattr(launcher, "run_workers", fake_run)
    assert launcher.launch("torch", 2, ["true"], 5) == "finished"
    assert len(seen) == 2
    monkeypatch.setattr(launcher, "run_workers", lambda *a, **k: (_ for _ in ()).throw(launcher.WorkerFailure("boom")))
    with pytest.raises(launcher.WorkerFailure, match="boom"):  # any other failure is not retried
        launcher.launch("torch", 2, ["true"], 5)


def test_tensorflow_workers_leave_nothing_in_the_shared_temporary_folder(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(launcher, "run_workers", lambda *a, **k: asked.append(k["private_tmp"]) or "finished")
    assert launcher.launch("tensorflow", 2, ["true"], 5) == "finished" and asked == [True]
    monkeypatch.undo()
    # a worker that leaves a temporary file and exits as worker.py does (os._exit: no atexit hook runs)
    code = ("import os, tempfile; fd, path = tempfile.mkstemp(prefix='left-'); "
            "open(os.path.join(os.environ['TFPT_WORKDIR'], 'path-' + os.environ['TFPT_RANK']), 'w').write(path); "
            "os._exit(0)")
    work = tmp_path / "work"
    work.mkdir()
    done = launcher.run_workers([[sys.executable, "-c", code]] * 2, [{}] * 2, timeout_s=30, workdir=work,
                                private_tmp=True)
    left = [Path((work / f"path-{r}").read_text()) for r in range(2)]
    assert all(p.is_file() and p.parent == work / "tmp" for p in left)
    done.cleanup()
    assert not any(p.exists() for p in left)


def test_crashed_worker_fails_with_its_stderr_tail_and_kills_its_sibling(tmp_path):
    crash = "import sys, time; time.sleep(0.5); print('worker one: out of cheese', file=sys.stderr); sys.exit(3)"
    argvs = [[sys.executable, "-c", SLEEPER], [sys.executable, "-c", crash]]
    start = time.monotonic()
    with pytest.raises(launcher.WorkerFailure) as err:
        launcher.run_workers(argvs, [{}, {}], timeout_s=60, workdir=tmp_path)
    assert time.monotonic() - start < 20, "the sibling was not killed at once"
    message = str(err.value)
    assert "worker 1 of 2 exited with code 3" in message and "out of cheese" in message
    assert gone([int((tmp_path / "pid-0").read_text())])


def test_hung_worker_times_out_and_all_are_killed(tmp_path):
    argvs = [[sys.executable, "-c", SLEEPER]] * 2
    with pytest.raises(launcher.WorkerFailure, match=r"still running after 1\.5 s"):
        launcher.run_workers(argvs, [{}, {}], timeout_s=1.5, workdir=tmp_path)
    pids = [int((tmp_path / f"pid-{r}").read_text()) for r in range(2)]
    assert gone(pids)


def test_successful_workers_return_their_outputs(tmp_path):
    code = ("import json, os, pathlib; r = os.environ['TFPT_RANK']; "
            "pathlib.Path(os.environ['TFPT_WORKDIR'], f'out-{r}.json').write_text(json.dumps({'rank': int(r)}))")
    done = launcher.run_workers([[sys.executable, "-c", code]] * 3, [{}] * 3, timeout_s=30, workdir=tmp_path)
    assert done.returncodes == [0, 0, 0]
    assert [o["rank"] for o in done.outputs()] == [0, 1, 2]


COORDINATOR = textwrap.dedent("""
    import sys
    from pathlib import Path
    from benches.distributed import launcher
    sleeper = sys.argv[2]
    launcher.run_workers([[sys.executable, "-c", sleeper]] * 2, [{}, {}], timeout_s=120, workdir=Path(sys.argv[1]))
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "coordinator-killed"])
def test_no_orphans_when_the_coordinator_is_interrupted(tmp_path, sig):
    """Ctrl-C: the coordinator kills its workers; SIGKILL: the kernel does (PR_SET_PDEATHSIG)."""
    # SIGINT at its default in the coordinator, as at a terminal: started from a shell's background
    # job (``nohup make test &``) it would inherit SIGINT ignored and never see the Ctrl-C.
    coordinator = subprocess.Popen([sys.executable, "-c", COORDINATOR, str(tmp_path), SLEEPER], cwd=ROOT,
                                   stderr=subprocess.PIPE, text=True, preexec_fn=launcher.default_sigint)
    try:
        pids = wait_for_pids(tmp_path, 2)
        coordinator.send_signal(sig)
        coordinator.wait(timeout=20)
        assert gone(pids), f"orphaned workers after {sig.name}: {[p for p in pids if alive(p)]}"
        if sig == signal.SIGINT:
            assert "KeyboardInterrupt" in coordinator.stderr.read()
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
            coordinator.wait()


OWN_FOLDER_COORDINATOR = textwrap.dedent("""
    import sys
    from benches.distributed import launcher
    launcher.run_workers([[sys.executable, "-c", sys.argv[1]]] * 2, [{}, {}], timeout_s=120)
""")


def test_a_killed_coordinators_folder_is_removed_by_the_next_launch(tmp_path, monkeypatch):
    """A coordinator killed outright runs no clean-up, and its work folder (outputs, the TF workers' private
    TMPDIR) stays; the next launch removes it, and leaves the folders of live coordinators alone."""
    coordinator = subprocess.Popen([sys.executable, "-c", OWN_FOLDER_COORDINATOR, SLEEPER], cwd=ROOT,
                                   env={**os.environ, "TMPDIR": str(tmp_path)}, preexec_fn=launcher.default_sigint)
    try:
        deadline = time.monotonic() + 20
        while not list(tmp_path.glob("tfpt-dist-*/pid-*")):
            assert time.monotonic() < deadline, "the coordinator never started its workers"
            time.sleep(0.05)
        [orphan] = list(tmp_path.glob(f"tfpt-dist-{coordinator.pid}-*"))
        pids = wait_for_pids(orphan, 2)
        coordinator.kill()
        coordinator.wait(timeout=20)
        assert gone(pids) and orphan.is_dir()
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
            coordinator.wait()
    live = tmp_path / f"tfpt-dist-{os.getpid()}-other"  # a coordinator still running (this test's process)
    live.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = "import os, pathlib; pathlib.Path(os.environ['TFPT_WORKDIR'], 'out-0.json').write_text('{}')"
    done = launcher.run_workers([[sys.executable, "-c", code]], [{}], timeout_s=30)
    assert not orphan.exists() and live.is_dir()
    assert done.workdir.parent == tmp_path and done.workdir.name.startswith(f"tfpt-dist-{os.getpid()}-")
    done.cleanup()
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]


def test_workers_get_sigint_back_when_the_coordinator_ignores_it(tmp_path):
    """A coordinator in a background job ignores SIGINT; its workers must not inherit that."""
    code = ("import os, pathlib, signal; "
            "ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN; "
            "pathlib.Path(os.environ['TFPT_WORKDIR'], 'out-' + os.environ['TFPT_RANK'] + '.json').write_text("
            "'{\"ignored\": %s}' % str(ignored).lower())")
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        done = launcher.run_workers([[sys.executable, "-c", code]] * 2, [{}] * 2, timeout_s=30, workdir=tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert [o["ignored"] for o in done.outputs()] == [False, False]


def test_limited_loopback_caps_the_rate():
    """Through the namespace's lo at 1 Gbit/s, 25 MB take at least 0.15 s (0.2 s at the cap)."""
    reason = launcher.netns_unavailable()
    if reason:
        pytest.skip(reason)
    code = textwrap.dedent("""
        import socket, threading, time
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
        def sink():
            conn, _ = server.accept()
            while conn.recv(1 << 20): pass
        threading.Thread(target=sink, daemon=True).start()
        client = socket.create_connection(server.getsockname())
        data = b"x" * (25 * 10**6)
        start = time.perf_counter(); client.sendall(data); client.shutdown(socket.SHUT_WR)
        print(time.perf_counter() - start)
    """)
    with launcher.limited_loopback(1.0) as prefix:
        out = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) > 0.15


# --------------------------------------------------------------------------- arithmetic


def test_busbw_follows_nccl_tests():
    assert bus_bandwidth(2_000_000, 1.0, 2) == (2e6, 2e6)  # 2(N-1)/N = 1 at N=2
    algbw, busbw = bus_bandwidth(1_000_000, 0.5, 8)
    assert algbw == 2e6 and busbw == pytest.approx(2e6 * 14 / 8)
    assert bus_bandwidth(1024, 1e-3, 1)[1] == 0.0  # one worker moves nothing over a link
    with pytest.raises(ValueError):
        bus_bandwidth(1024, 0.0, 2)


def test_threads_split_so_workers_times_threads_fit_the_cores():
    assert [threads_per_worker(8, n) for n in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    assert worker_counts(2) == [1, 2] and worker_counts(12) == [1, 2, 4, 8, 12] and worker_counts(1) == [1]
    assert scaling_efficiency(180.0, 100.0, 2) == pytest.approx(0.9)


def test_round_time_is_the_slowest_worker():
    assert bench.slowest_per_round([[1.0, 5.0, 2.0], [3.0, 1.0, 2.5]]) == [3.0, 5.0, 2.5]
    with pytest.raises(ValueError, match="different numbers of rounds"):
        bench.slowest_per_round([[1.0], [1.0, 2.0]])


def test_recorded_rounds_become_the_benchmark_stats(benchmark):
    bench.record_rounds(benchmark, [0.3, 0.1, 0.2], workers=2)
    assert benchmark.extra_info["workers"] == 2
    if not benchmark.disabled:
        assert benchmark.stats.stats.rounds == 3 and benchmark.stats.stats.median == pytest.approx(0.2)


# --------------------------------------------------------------------------- parity


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return {"fc0.w": rng.standard_normal((4, 3)).astype(np.float32), "fc0.b": rng.standard_normal(3).astype(np.float32)}


def test_parity_accepts_synchronised_workers_matching_one_process():
    ref = _params()
    near = {k: v + np.float32(1e-7) * np.sign(v) for k, v in ref.items()}  # float32 rounding, within tolerance
    assert "2 worker(s) identical" in bench.check_parity([near, {k: v.copy() for k, v in near.items()}], ref, "t")


def test_parity_catches_workers_that_did_not_synchronise():
    ref = _params()
    drifted = {k: v.copy() for k, v in ref.items()}
    drifted["fc0.b"][1] += 1e-3
    with pytest.raises(AssertionError, match="worker 1 and worker 0 differ in fc0.b.*did not synchronise"):
        bench.check_parity([ref, drifted], ref, "t")


def test_parity_catches_workers_that_agree_but_trained_wrongly():
    ref = _params()
    local_only = {k: v * 1.01 for k, v in ref.items()}  # e.g. each stepped on its own gradient, identically
    with pytest.raises(AssertionError, match="vs a single process on the whole batch"):
        bench.check_parity([local_only, {k: v.copy() for k, v in local_only.items()}], ref, "t")


# --------------------------------------------------------------------------- claim 7


def test_claim_7_verdict_on_a_recorded_run(tmp_path):
    """tests/data/recorded_distributed.json: a real quick-profile run of benches/test_distributed.py on the
    2-core machine (exclusive lock; only the CPU flags trimmed from machine_info). TensorFlow loses the
    scaling and the 1 and 16 MiB all-reduces, so the claim is contradicted."""
    claim = claim_7(Benches([load_run(RECORDED)]))
    assert claim.verdict == "contradicted"
    assert claim.supports + claim.contradicts >= 4 and claim.supports <= 1  # start-ups are shown, not counted
    text = "\n".join(claim.findings)
    assert "scaling efficiency TensorFlow" in text and "all-reduce 16 MiB" in text and "start-up" in text
    assert any("cannot show many hosts" in n for n in claim.notes)
    assert [p["kind"] for p in claim.plots] == ["distributed"]
    assert (tmp_path / draw(claim.plots[0], tmp_path, "c7.png")).stat().st_size > 10_000


def test_claim_7_counts_scaling_in_favour_of_the_framework_that_keeps_its_throughput():
    """Crafted: TF's step grows 1.2x from 1 to 2 workers, torch's 2x, so TF scales better (supports)."""
    from tests.test_report import bench as make

    def step(fw, n, t):
        return make("distributed/mlp-large/train/b32/cpu", f"test_train_step[{fw}-mlp-large-{n}-cpu]", t,
                    {"framework": fw, "device": "cpu", "workload": "mlp-large", "workers": n, "pass": "train",
                     "batch": 32, "threads": 2 // n, "samples_per_s": 32 * n / t})

    from benchruns.runs import Run

    run = Run(Path("crafted.json"), {"machine_key": "crafted"}, {}, "",
              {b["fullname"]: _as_bench(b) for b in [step("tensorflow", 1, 0.10), step("tensorflow", 2, 0.12),
                                                     step("torch", 1, 0.10), step("torch", 2, 0.20)]})
    claim = claim_7(Benches([run]))
    assert (claim.supports, claim.contradicts, claim.verdict) == (1, 0, "supported")
    assert "TensorFlow scales better" in claim.findings[0]


def _as_bench(raw):
    from benchruns.runs import Bench

    s = raw["stats"]
    return Bench(raw["fullname"], raw["name"], raw["group"], s["median"], s["q1"], s["q3"], s["rounds"],
                 np.array(s["data"]), raw["extra_info"])


def test_claim_7_shows_start_up_and_capped_link_step_times_without_counting_them():
    """Crafted: TF starts 3x faster and its capped-link step is faster (both shown, not counted); over the
    capped link both steps grow 1.5x from loopback (counted: no difference, so it contradicts)."""
    from benchruns.runs import Run
    from tests.test_report import bench as make

    def item(group, name, t, **info):
        return make(group, name, t, {"device": "cpu", "workload": "mlp-large", "pass": "train", "batch": 32, **info})

    raws = [item("distributed-startup/mlp-large/cpu", "startup-tf", 2.0, framework="tensorflow", workers=2),
            item("distributed-startup/mlp-large/cpu", "startup-torch", 6.0, framework="torch", workers=2)]
    for fw, t in (("tensorflow", 0.05), ("torch", 0.10)):
        raws.append(item("distributed/mlp-large/train/b32/cpu", f"step-{fw}", t, framework=fw, workers=2))
        raws.append(item("distributed-net/mlp-large/cpu", f"net-{fw}", 1.5 * t, framework=fw, workers=2, gbit=1.0))
    run = Run(Path("crafted.json"), {"machine_key": "crafted"}, {}, "", {b["fullname"]: _as_bench(b) for b in raws})
    claim = claim_7(Benches([run]))
    assert (claim.supports, claim.contradicts) == (0, 1)
    assert any("start-up" in f and "not counted" in f for f in claim.findings)
    assert any("1 Gbit/s link" in f and "not counted" in f for f in claim.findings)
    assert any("slowdown from loopback" in f for f in claim.findings)
