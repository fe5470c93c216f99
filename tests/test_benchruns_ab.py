"""ab on a tiny real pytest-benchmark project: worker pairs, turns, worktrees, failures.

The workers are real pytest processes (no torch, no TensorFlow), so the turn-taking
protocol, the checkouts and the clean-up are exercised as a CI job would exercise them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchruns import ab
from benchruns.runs import BadInput

CONFTEST = '''
def pytest_addoption(parser):
    parser.addoption("--profile", default="full")
    parser.addoption("--threads", default=None)
'''
PYTEST_INI = """[pytest]
addopts = --benchmark-min-rounds=5 --benchmark-max-time=0.02 --benchmark-warmup=off
"""
BENCH = '''
import os, time

SLEEP = {sleep}


def _log(name, what):
    path = os.environ.get("AB_TEST_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{{os.getpid()}} {{name}} {{what}} {{time.monotonic()}}\\n")


def test_one(benchmark):
    _log("one", "start")
    benchmark(time.sleep, SLEEP)
    _log("one", "end")


def test_two(benchmark):
    _log("two", "start")
    benchmark(time.sleep, 0.002)
    _log("two", "end")


def test_three(benchmark):
    _log("three", "start")
    {three}
    _log("three", "end")
'''


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", *args], cwd=cwd, check=True,
                   capture_output=True)


def project(path: Path, sleep=0.002, three="benchmark(time.sleep, 0.001)") -> Path:
    (path / "benches").mkdir(parents=True)
    (path / "conftest.py").write_text(CONFTEST)
    (path / "pytest.ini").write_text(PYTEST_INI)
    (path / "benches" / "test_t.py").write_text(BENCH.format(sleep=sleep, three=three))
    git("init", "-q", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "x", cwd=path)
    return path


def args(**kw):
    base = dict(base_ref="HEAD", k="", repeat=3, python=sys.executable, base_python=None, profile="quick",
                threshold="10%", config=None, no_config=True, alpha=0.025, format="json", strict=False,
                pytest_args=None, keep=None, include_disturbed=True, record=None, design="alternate", lanes=None)
    base.update(kw)
    return argparse.Namespace(**base)


def worktrees(repo):
    out = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.startswith("worktree ")]


def test_turn_order_is_balanced():
    assert "".join(ab.turn_order("A", 8)) == "ABBAABBA"
    assert "".join(ab.turn_order("B", 4)) == "BAAB"


def test_pairs_take_turns_and_never_overlap(tmp_path, monkeypatch, capsys):
    repo = project(tmp_path / "repo")
    log = tmp_path / "events.log"
    monkeypatch.setenv("AB_TEST_LOG", str(log))
    monkeypatch.chdir(repo)
    assert ab.main(args(keep=str(tmp_path / "kept"))) == 0
    out = capsys.readouterr()
    kept = sorted(p.name for p in (tmp_path / "kept").iterdir())
    assert kept == sorted(f"{s}{i}.{e}" for s in "AB" for i in range(3) for e in ("json", "log"))
    doc = json.loads(out.out[: out.out.rindex("}") + 1])
    assert doc["design"] == "paired" and len(doc["base"]) == 3 and len(doc["cand"]) == 3
    assert "wall time" in out.out
    assert len(worktrees(repo)) == 1  # both temporary worktrees removed
    # Every benchmark ran in both workers of every pair, one worker at a time.
    events = [line.split() for line in log.read_text().splitlines()]
    assert len(events) == 3 * 2 * 3 * 2
    running = None
    for pid, name, what, _ in events:
        if what == "start":
            assert running is None, f"{pid} started {name} while {running} was running"
            running = (pid, name)
        else:
            assert running == (pid, name)
            running = None


def test_each_side_leads_in_turn(tmp_path):
    repo = project(tmp_path / "repo")
    sides = {"A": (sys.executable, repo), "B": (sys.executable, repo)}
    (tmp_path / "t").mkdir()
    pairs = ab.execute(sides, 2, "quick", "", tmp_path / "t", log=lambda m: None, reruns=0, design="alternate")
    runs = {s: [p.runs[s] for p in pairs] for s in "AB"}
    turns = [p.turns for p in pairs]
    assert len(runs["A"]) == len(runs["B"]) == 2
    firsts = [order[0][0] for order in turns]
    assert sorted(firsts) == ["A", "B"]  # the seeded draw is balanced across pairs
    for order in turns:
        sides_run = "".join(side for side, _ in order)
        assert sides_run in ("ABBAAB", "BAABBA")
        # Both workers ran the same benchmark in turns k and k+1 for each pair of turns.
        assert [n for _, n in order[0::2]] == [n for _, n in order[1::2]]


def test_a_real_slowdown_in_the_working_tree_fails_the_gate(tmp_path, monkeypatch, capsys):
    repo = project(tmp_path / "repo")
    bench = repo / "benches" / "test_t.py"
    bench.write_text(bench.read_text().replace("SLEEP = 0.002", "SLEEP = 0.004"))  # uncommitted change
    monkeypatch.chdir(repo)
    assert ab.main(args(format="table")) == 1
    text = capsys.readouterr().out
    assert "gate FAILED" in text and "test_one" in text.split("\n\n")[0]
    assert "test_two" not in text.split("\n\n")[0]


def test_untracked_new_bench_reaches_side_b(tmp_path, monkeypatch, capsys):
    repo = project(tmp_path / "repo")
    (repo / "benches" / "test_new.py").write_text("import time\n\ndef test_new(benchmark):\n"
                                                  "    benchmark(time.sleep, 0.001)\n")
    monkeypatch.chdir(repo)
    assert ab.main(args(repeat=2)) == 0
    doc = json.loads(capsys.readouterr().out.split("\nab: ")[0])
    assert any("test_new" in name for name in doc["added"])


def test_hung_worker_fails_the_job_and_leaves_no_process(tmp_path):
    repo = project(tmp_path / "repo", three="time.sleep(60)")
    sides = {"A": (sys.executable, repo), "B": (sys.executable, repo)}
    (tmp_path / "t").mkdir()
    with pytest.raises(ab.WorkerFailed, match="hung"):
        ab.execute(sides, 2, "quick", "", tmp_path / "t", turn_timeout=3, log=lambda m: None, reruns=0,
                   design="alternate")
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "t")], capture_output=True, text=True).stdout.split()
    assert [pid for pid in left if int(pid) != os.getpid()] == []


def test_crashed_worker_is_reported_with_its_log(tmp_path):
    repo = project(tmp_path / "repo", three="os._exit(7)")
    sides = {"A": (sys.executable, repo), "B": (sys.executable, repo)}
    (tmp_path / "t").mkdir()
    with pytest.raises(ab.WorkerFailed, match="died during .*test_three"):
        ab.execute(sides, 2, "quick", "", tmp_path / "t", log=lambda m: None, reruns=0, design="alternate")


def test_a_command_to_a_worker_that_is_gone_fails_the_job_with_its_log(tmp_path):
    """A worker killed while it waits for its turn (the OOM killer, a stray kill): the coordinator's next
    command finds a broken pipe, and the job fails in one line with the log, not a traceback."""
    proc = subprocess.Popen([sys.executable, "-c", "print('worker log line')"])
    proc.wait()
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads the commands any more
    (tmp_path / "B0.log").write_text("worker log line\n")
    worker = ab.Worker(side="B", proc=proc, go=write_end, done=os.open(os.devnull, os.O_RDONLY), log=tmp_path / "B0.log")
    try:
        with pytest.raises(ab.WorkerFailed, match="side B is gone .*log tail: worker log line"):
            worker.send(b"r\n")
    finally:
        worker.close()


SELF_KILL = '''
import os, signal, threading, time

VICTIM = False
try:  # the first worker to import is killed outright a moment into its rounds
    os.close(os.open(os.environ["AB_MARK"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    VICTIM = True
except FileExistsError:
    pass


def test_rounds(benchmark):
    if VICTIM:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGKILL)).start()
    benchmark(time.sleep, 0.0002)
'''


def test_a_worker_killed_during_the_interleaved_rounds_fails_the_job_and_leaves_no_process(tmp_path, monkeypatch):
    repo = project(tmp_path / "repo")
    (repo / "benches" / "test_t.py").write_text(SELF_KILL)
    git("commit", "-qam", "self-kill", cwd=repo)
    monkeypatch.setenv("AB_MARK", str(tmp_path / "mark"))
    sides = {"A": (sys.executable, repo), "B": (sys.executable, repo)}
    (tmp_path / "t").mkdir()
    job = ab.plan("interleave", turn_time=2.0, round_time=0.001, threads=1, lanes=1)
    with pytest.raises(ab.WorkerFailed, match=r"side [AB] (died during a round|is gone)"):
        ab.execute(sides, 2, "quick", "", tmp_path / "t", log=lambda m: None, reruns=0, job=job)
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "t")], capture_output=True, text=True).stdout.split()
    assert [pid for pid in left if int(pid) != os.getpid()] == []


def test_bad_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput, match="--base-ref"):
        ab.main(args(base_ref=""))
    with pytest.raises(BadInput, match="not a git repository"):
        ab.main(args())
    with pytest.raises(BadInput, match="at least 2"):
        ab.main(args(repeat=1))
    project(tmp_path / "repo")
    monkeypatch.chdir(tmp_path / "repo")
    with pytest.raises(BadInput, match="not a commit"):
        ab.main(args(base_ref="no-such-ref"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(BadInput, match="not empty"):
        ab.main(args(keep=str(tmp_path / "full")))
    with pytest.raises(BadInput, match="no such interpreter"):
        ab.main(args(python="/no/python"))
    with pytest.raises(BadInput, match="only the interleave design runs pairs at once"):
        ab.main(args(design="alternate", lanes=2))
    with pytest.raises(BadInput, match="only the interleave design alternates first calls"):
        ab.main(args(design="alternate", calls=5))
    assert len(worktrees(tmp_path / "repo")) == 1


AFFINITY = ("benchmark(time.sleep, 0.001); "
            "open(os.environ['AB_AFF'], 'a').write(f'{os.getpid()} {sorted(os.sched_getaffinity(0))} '"
            "f'{[a for a in __import__(\"sys\").argv if a.startswith(\"--threads\")]}\\n')")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="a duet needs two cores")
def test_duet_runs_both_sides_at_once_each_on_its_own_cores(tmp_path, monkeypatch):
    repo = project(tmp_path / "repo", three=AFFINITY)
    (repo / "benches" / "test_only_b.py").write_text("import time\n\ndef test_only_b(benchmark):\n"
                                                    "    benchmark(time.sleep, 0.001)\n")
    log, aff = tmp_path / "events.log", tmp_path / "aff.log"
    monkeypatch.setenv("AB_TEST_LOG", str(log))
    monkeypatch.setenv("AB_AFF", str(aff))
    sides = {"A": (sys.executable, project(tmp_path / "base", three=AFFINITY)), "B": (sys.executable, repo)}
    (tmp_path / "t").mkdir()
    pairs = ab.execute(sides, 2, "quick", "", tmp_path / "t", log=lambda m: None, design="duet", reruns=0)
    assert len(pairs) == 2
    for pair in pairs:
        assert set(pair.runs["A"].benchmarks) < set(pair.runs["B"].benchmarks)  # test_only_b on B alone
        shared = [nodeid for side, nodeid in pair.turns if side == "A"]
        assert len(shared) == 3
    # each shared benchmark ran on both sides at once: both started before either ended
    events = [line.split() for line in log.read_text().splitlines()]
    for name in ("one", "two", "three"):
        for pair in range(2):
            mine = [e for e in events if e[1] == name][pair * 4:(pair + 1) * 4]
            kinds = [e[2] for e in sorted(mine, key=lambda e: float(e[3]))]
            assert kinds[:2] == ["start", "start"], mine
    # each worker was pinned to its own half of the cores, with threads to match
    half = len(os.sched_getaffinity(0)) // 2
    pinned = [line.split(" ", 1)[1] for line in aff.read_text().splitlines()]
    assert len(pinned) == 4, pinned
    for line in pinned:
        cpus, threads = line.split("] ")
        assert cpus.count(",") == half - 1 and threads == f"['--threads={half}']", line
    assert len({line.split("]")[0] for line in pinned}) == 2  # the two halves, not one core twice


def test_a_pair_disturbed_by_another_process_gives_no_verdict(tmp_path, monkeypatch, capsys):
    from tests.test_load import Orphan

    repo = project(tmp_path / "repo")
    monkeypatch.chdir(repo)
    hog = Orphan(120)
    try:
        code = ab.main(args(repeat=2, include_disturbed=False, format="table"))
        out = capsys.readouterr()
        reruns = ab.MAX_RERUNS
        monkeypatch.setattr(ab, "MAX_RERUNS", 0)  # the strict exit needs no replacements (2 pairs, not 4)
        strict_code = ab.main(args(repeat=2, include_disturbed=False, strict=True))
    finally:
        hog.kill()
    assert code == 0 and "gate NOT DECIDED" in out.out and "disturbed" in out.out, out.out
    assert out.err.count("DISTURBED") == 2 + reruns, out.err  # each pair, the reruns too
    assert "starting a fresh pair" in out.err
    assert strict_code == 2


def test_record_of_a_job_feeds_the_docs_table(tmp_path, monkeypatch, capsys):
    from benchruns.studies import abjobs

    repo = project(tmp_path / "repo")
    monkeypatch.chdir(repo)
    rec = tmp_path / "job.json"
    assert ab.main(args(record=str(rec))) == 0
    doc = json.loads(rec.read_text())
    assert doc["verdict"] == "passed" and doc["pairs"] == 3 and doc["benchmarks"] == 3
    assert len(doc["loads"]) == 3 and all("other_cores" in load for load in doc["loads"])
    with pytest.raises(BadInput, match="exists"):
        ab.main(args(record=str(rec)))  # never overwritten
    doc["disturbed_pairs"] = 0  # (whatever this machine is doing now)
    table = abjobs.table([("A/A", doc)], "`test`")
    assert table["rows"][0][0] == "A/A" and table["rows"][0][2] == "passed"
    assert doc["lanes"] == 1 and "at once" not in table["rows"][0][1]  # the alternate design: one pair at a time
    assert "2 pairs at once" in abjobs.design_text(dict(doc, design="interleave", round_time=0.005, lanes=2))
    assert doc["calls"] is None  # the alternate design runs a first call's calls as the test asks
    assert abjobs.design_text(dict(doc, design="interleave", round_time=0.001, calls=9)).endswith("first calls 9 a side")
    assert table["load"] == "undisturbed"  # args() judges disturbed pairs too, but there were none...
    doc["disturbed_pairs"] = 1
    assert abjobs.table([("A/A", doc)], "`test`")["load"] == "disturbed"  # ...once one is, the docs refuse it
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(BadInput, match="not an ab record"):
        abjobs.read(tmp_path / "bad.json")
    # turns of whole tests (alternate) keep no timeline: the time split says so instead of a table of zeros
    assert doc["time_split"] is None
    with pytest.raises(BadInput, match="no time split in the record of A/A"):
        abjobs.time_table([("A/A", doc)], "`test`")


def test_pytest_args_reach_the_workers_when_pairs_may_be_replaced(tmp_path, monkeypatch, capsys):
    # a job that may replace disturbed pairs (the default) still passes --pytest-arg to every worker
    repo = project(tmp_path / "repo")
    monkeypatch.chdir(repo)
    keep = tmp_path / "kept"
    assert ab.main(args(repeat=2, include_disturbed=False, keep=str(keep),
                        pytest_args=["--benchmark-min-rounds=7"])) == 0
    doc = json.loads((keep / "A0.json").read_text())
    assert all(b["stats"]["rounds"] >= 7 for b in doc["benchmarks"])


PROBE_OPTION = '''
    parser.addoption("--no-probe", action="store_true")


def pytest_configure(config):
    import os
    with open(os.environ["AB_PROBE_LOG"], "a") as f:
        f.write("off\\n" if config.getoption("no_probe") else "on\\n")
'''


def test_workers_leave_out_the_probe_only_when_both_sides_know_the_option(tmp_path, monkeypatch, capsys):
    # ab never reads the reference probe: it asks both sides' workers to leave it out, but a base ref
    # whose conftest.py predates --no-probe would refuse the option, so then both keep it and the plan says so
    repo = project(tmp_path / "repo")
    (repo / "conftest.py").write_text(CONFTEST + PROBE_OPTION)  # the working tree learns the option
    log = tmp_path / "probe.log"
    monkeypatch.setenv("AB_PROBE_LOG", str(log))
    monkeypatch.chdir(repo)
    record = tmp_path / "record.json"
    assert ab.main(args(repeat=2, record=str(record))) == 0
    assert "reference probe on (side A has no --no-probe)" in json.loads(record.read_text())["plan"]
    assert log.read_text().split() == ["on", "on"]  # side B's two workers (A's conftest.py writes nothing)
    log.unlink()
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "the option", cwd=repo)
    record = tmp_path / "record2.json"
    assert ab.main(args(repeat=2, record=str(record))) == 0
    assert "reference probe off" in json.loads(record.read_text())["plan"]
    assert log.read_text().split() == ["off"] * 4
    capsys.readouterr()


# --- interleave: rounds of A and B alternate one at a time on the same pinned core ------------------

ROUND_LOG = '''
import os, threading, time

_POOL = threading.Thread(target=threading.Event().wait, daemon=True)  # a pool made at import, as TensorFlow's
_POOL.start()
with open(os.environ["AB_ROUNDS"] + ".import", "a") as f:
    f.write(f"{{os.getpid()}} {{sorted(os.sched_getaffinity(0))}}\\n")


def _work(seconds):
    start = time.monotonic()
    time.sleep(seconds)
    with open(os.environ["AB_ROUNDS"], "a") as f:
        f.write(f"{{os.getpid()}} {{start}} {{time.monotonic()}} {{sorted(os.sched_getaffinity(0))}} "
                f"{{sorted(os.sched_getaffinity(_POOL.native_id))}}\\n")


def test_rounds(benchmark):
    benchmark(_work, {sleep})


def _fresh():  # a first call's set-up: untimed, in the same turn as its call
    with open(os.environ["AB_ROUNDS"] + ".calls", "a") as f:
        f.write(f"{{os.getpid()}} setup\\n")
    return (0.001,), {{}}


def _call(seconds):
    time.sleep(seconds)
    with open(os.environ["AB_ROUNDS"] + ".calls", "a") as f:
        f.write(f"{{os.getpid()}} call\\n")


def test_calls(benchmark):
    benchmark.pedantic(_call, setup=_fresh, rounds=3)


def test_outside_rounds(benchmark):  # rounds timed elsewhere (as distributed workers do): never interleaved
    start = time.perf_counter()
    time.sleep(0.001)
    benchmark._mode = "rounds timed elsewhere"
    benchmark._make_stats(1).update(time.perf_counter() - start)
'''


def interleave_project(path: Path, sleep=0.002) -> Path:
    repo = project(path)
    (repo / "benches" / "test_t.py").write_text(ROUND_LOG.format(sleep=sleep))
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "rounds", cwd=repo)
    return repo


def test_interleave_alternates_single_rounds_on_one_pinned_core(tmp_path, monkeypatch):
    repo = interleave_project(tmp_path / "repo")
    rounds_log = tmp_path / "rounds.log"
    monkeypatch.setenv("AB_ROUNDS", str(rounds_log))
    sides = {"A": (sys.executable, repo), "B": (sys.executable, repo)}
    (tmp_path / "t").mkdir()
    job = ab.plan("interleave", turn_time=0.05, round_time=0.001, threads=1, lanes=1)
    pairs = ab.execute(sides, 2, "quick", "", tmp_path / "t", log=lambda m: None, reruns=0, job=job)
    calls = [line.split(" ", 3) for line in rounds_log.read_text().splitlines()]
    first_calls = [line.split() for line in Path(f"{rounds_log}.calls").read_text().splitlines()]
    for pair in pairs:
        # test_rounds's timing rounds and test_calls's set-up-and-call rounds; test_outside_rounds has none
        [it, fresh] = sorted(pair.interleaved, key=lambda i: i.calls)
        assert it.nodeid.endswith("test_rounds") and it.rounds >= ab.MIN_ROUNDS and not it.failed
        # the test asks for 3 calls; the job runs DEFAULT_CALLS a side (more calls, less spread between pairs)
        n = ab.DEFAULT_CALLS
        assert fresh.nodeid.endswith("test_calls") and fresh.calls and fresh.rounds == n > 3 and not fresh.failed
        # each round a set-up and its call on one side, then the other side's, in blocks of AB or BA
        mine = [(int(pid), what) for pid, what in first_calls if int(pid) in pair.pids.values()]
        assert mine[0::2] == [(pid, "setup") for pid, _ in mine[0::2]] and [w for _, w in mine[1::2]] == ["call"] * 2 * n
        assert [pid for pid, _ in mine[0::2]] == [pid for pid, _ in mine[1::2]]
        turns = "".join("A" if pid == pair.pids["A"] else "B" for pid, _ in mine[0::2])
        assert {turns[i:i + 2] for i in range(0, 2 * n, 2)} <= {"AB", "BA"}
        pids = pair.pids
        mine = [c for c in calls if int(c[0]) in pids.values()]
        # calibration and warm-up come first, one side after the other; each side's last call returns the
        # benchmarked function's result after the rounds, as pytest-benchmark does (not timed)
        timed = mine[:-2][-2 * it.rounds:]
        sides = "".join("A" if int(c[0]) == pids["A"] else "B" for c in timed)
        assert sides.count("A") == sides.count("B") == it.rounds
        blocks = [sides[i:i + 2] for i in range(0, len(sides), 2)]
        assert set(blocks) == {"AB", "BA"}  # one round each per block, in a random order
        starts_ends = sorted((float(c[1]), float(c[2])) for c in timed)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(starts_ends, starts_ends[1:]))  # never at once
        pinned = str(sorted(job.worker_cpus))
        assert {c[3] for c in mine} == {f"{pinned} {pinned}"}  # both workers, every thread, on the same core(s)
        for side in "AB":
            bench = {b.name: b for b in pair.runs[side].benchmarks.values()}
            assert bench["test_rounds"].rounds == it.rounds and bench["test_calls"].rounds == n
            each = bench["test_calls"].extra_info["ab_calls_s"]  # every call, for the verdict's mean of them
            assert len(each) == n and all(0.001 <= c < 1 for c in each)
            assert bench["test_outside_rounds"].rounds == 1
    assert len(job.worker_cpus) == 1 and "--threads" not in job.note
    # where each pair's time went: every test's wall time, the rounds inside it, the parts adding up
    for pair in pairs:
        tests = {n.split("::")[-1]: t for n, t in pair.timeline["tests"].items()}
        assert set(tests) == {"test_rounds", "test_calls", "test_outside_rounds"}
        total, rounds = tests["test_rounds"]
        assert 0 < rounds <= total and 0 < tests["test_calls"][1] and tests["test_outside_rounds"][1] == 0
        split = ab.time_split([pair])
        parts = sum(split[key] for key, _ in ab.TIME_PARTS)
        assert abs(parts - split["pair_s"]) <= 0.3 and split["startup_s"] > 0 and split["rounds_s"] > 0
        assert [name for name, _ in split["costliest"]] == sorted(tests, key=lambda n: -tests[n][0])
    # pinned from birth: at import a worker already sees only its core (thread pools size themselves then)
    at_import = {line.split(" ", 1)[1] for line in Path(f"{rounds_log}.import").read_text().splitlines()}
    assert at_import == {str(sorted(job.worker_cpus))}


FIRST_CALLS = '''
import time


def _fresh():
    return (0.0005,), {}


def test_cold(benchmark):  # a cold compile: one costly call, timed once
    benchmark.pedantic(time.sleep, setup=_fresh, rounds=1)


def test_first(benchmark):  # a first call the suite times 3 times
    benchmark.pedantic(time.sleep, setup=_fresh, rounds=3)


def test_many(benchmark):  # one that asks for more calls than the job's minimum
    benchmark.pedantic(time.sleep, setup=_fresh, rounds=7)
'''


def test_interleave_gives_first_calls_at_least_calls_a_side_and_a_cold_compile_its_one(tmp_path):
    repo = project(tmp_path / "repo")
    (repo / "benches" / "test_t.py").write_text(FIRST_CALLS)
    git("commit", "-qam", "first calls", cwd=repo)
    sides = {"A": (sys.executable, repo), "B": (sys.executable, repo)}
    for calls, expected in ((5, {"test_cold": 1, "test_first": 5, "test_many": 7}),
                            (2, {"test_cold": 1, "test_first": 3, "test_many": 7})):
        (tmp_path / f"t{calls}").mkdir()
        job = ab.plan("interleave", turn_time=0.05, round_time=0.001, threads=1, lanes=1, calls=calls)
        assert f"first calls {calls} a side (a cold compile 1)" in job.describe()
        [pair] = ab.execute(sides, 1, "quick", "", tmp_path / f"t{calls}", log=lambda m: None, reruns=0, job=job)
        assert {it.nodeid.split("::")[-1]: it.rounds for it in pair.interleaved if it.calls} == expected
        # one call a side (a cold compile) is a stratum of its own; several are judged on their mean
        assert {n.split("::")[-1]: k for n, k in ab.measurement_kinds([pair]).items()} == {
            "test_cold": "one interleaved call", "test_first": "interleaved calls", "test_many": "interleaved calls"}
        for side in "AB":
            assert {b.name: b.rounds for b in pair.runs[side].benchmarks.values()} == expected


def test_calls_past_the_tests_own_stop_at_the_budget_on_both_sides_at_once(tmp_path, monkeypatch):
    """A large model's first call of seconds keeps close to the test's own rounds: past them, calls stop once a
    side has spent CALLS_BUDGET_S on set-ups and calls, after a whole block, so both sides ran as many."""
    repo = project(tmp_path / "repo")
    (repo / "benches" / "test_t.py").write_text(FIRST_CALLS.replace("(0.0005,)", "(0.05,)"))
    git("commit", "-qam", "slow first calls", cwd=repo)
    monkeypatch.setattr(ab, "CALLS_BUDGET_S", 0.25)  # the test's own 3 calls take 0.15 s a side; 9 would take 0.45
    sides = {"A": (sys.executable, repo), "B": (sys.executable, repo)}
    (tmp_path / "t").mkdir()
    job = ab.plan("interleave", turn_time=0.05, round_time=0.001, threads=1, lanes=1, calls=9)
    [pair] = ab.execute(sides, 1, "quick", "", tmp_path / "t", log=lambda m: None, reruns=0, job=job)
    ran = {it.nodeid.split("::")[-1]: it.rounds for it in pair.interleaved if it.calls}
    assert ran["test_cold"] == 1 and 3 < ran["test_first"] < 9 and ran["test_many"] == 7, ran  # never under its own
    for side in "AB":
        bench = {b.name: b for b in pair.runs[side].benchmarks.values()}
        assert {name: bench[name].rounds for name in ran} == ran
        assert len(bench["test_first"].extra_info["ab_calls_s"]) == ran["test_first"]


UNEVEN_CALIBRATION = '''
import os, time

# The first worker to import gets a step that outlasts a 1 ms round (pytest-benchmark calibrates one
# iteration a round), the other a step of 0.05 ms (ten or more iterations a round). The steps spin: a
# 0.05 ms sleep can take over a millisecond to wake on a busy core (make test's parallel run), which
# calibrated one iteration on both sides.
try:
    os.close(os.open(os.environ["AB_MARK"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    STEP = 0.003
except FileExistsError:
    STEP = 0.00005


def _spin(seconds):
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        pass


def test_rounds(benchmark):
    benchmark(_spin, STEP)
'''


def test_interleave_gives_both_sides_rounds_of_the_same_iterations(tmp_path, monkeypatch):
    """A round's fixed cost is spread over its iterations, so A and B must run alike rounds: the larger of their
    calibrations, on both sides (on the AMD VM 2 against 10 iterations had made one side 10-90% slower)."""
    repo = project(tmp_path / "repo")
    (repo / "benches" / "test_t.py").write_text(UNEVEN_CALIBRATION)
    git("commit", "-qam", "uneven", cwd=repo)
    sides = {"A": (sys.executable, repo), "B": (sys.executable, repo)}
    (tmp_path / "t").mkdir()
    job = ab.plan("interleave", turn_time=0.05, round_time=0.001, threads=1, lanes=1)
    for pair in range(2):
        monkeypatch.setenv("AB_MARK", str(tmp_path / f"mark{pair}"))
        [result] = ab.execute(sides, 1, "quick", "", tmp_path / "t", log=lambda m: None, reruns=0, job=job)
        ran = {side: json.loads((tmp_path / "t" / f"{side}0.json").read_text())["benchmarks"][0]["stats"]["iterations"]
               for side in "AB"}
        [it] = result.interleaved
        # one side calibrates 1 iteration, the other 2 or more (10 on a quiet machine); each on its own, as
        # pytest-benchmark would have them, they differ
        assert ran == {"A": it.iterations, "B": it.iterations} and it.iterations > 1, ran


def test_interleave_catches_a_real_slowdown_and_tags_what_is_not_rounds(tmp_path, monkeypatch, capsys):
    repo = interleave_project(tmp_path / "repo")
    monkeypatch.setenv("AB_ROUNDS", str(tmp_path / "rounds.log"))
    bench = repo / "benches" / "test_t.py"
    bench.write_text(bench.read_text().replace("benchmark(_work, 0.002)", "benchmark(_work, 0.003)"))
    monkeypatch.chdir(repo)
    keep = tmp_path / "kept"
    rec = tmp_path / "job.json"
    assert ab.main(args(format="json", design="interleave", turn_time=0.05, round_time=0.001, threads=1,
                        keep=str(keep), record=str(rec))) == 1
    text = capsys.readouterr().out
    from benchruns.studies import abjobs

    split = json.loads(rec.read_text())["time_split"]
    [row] = abjobs.time_table([("A/B", json.loads(rec.read_text()))], "`test`")["rows"]
    assert row[1] == f"{split['pair_s']:.0f} s" and split["rounds_s"] > 0 and "test_rounds" in row[-1]
    assert "ab: a pair's time (median of pairs): start-up" in text
    kinds = json.loads((keep / ab.KINDS_FILE).read_text())["kinds"]  # for ab-aa: the strata as ab judged them
    assert {n.split("::")[-1]: k for n, k in kinds.items()} == {"test_rounds": "interleaved",
                                                               "test_calls": "interleaved calls",
                                                               "test_outside_rounds": "per process"}
    doc = json.loads(text[: text.rindex("}") + 1])
    verdicts = {b["name"]: b["verdict"] for b in doc["benchmarks"]}
    assert verdicts["test_rounds"] == "slower" and not doc["passed"]
    assert doc["tags"] == {"benches/test_t.py::test_calls":
                           f"interleaved calls: {ab.DEFAULT_CALLS} a side, each after a fresh set-up; "
                           "judged on their mean",
                           "benches/test_t.py::test_outside_rounds": "per process: not interleaved"}
    assert "design interleave, rounds of 1 ms" in text and "1 thread(s)" in text
    assert f"first calls {ab.DEFAULT_CALLS} a side (a cold compile 1)" in text
    two = len(os.sched_getaffinity(0)) >= 2  # the default: two pairs at once where two cores allow
    assert ("2 pairs at once, each pair's workers pinned together, to CPU" if two else
            "both workers pinned to CPU") in text


def test_interleave_asks_for_more_cpus_than_there_are_falls_back_in_one_line(capsys):
    job = ab.plan("interleave", threads=len(os.sched_getaffinity(0)) + 1)
    assert job.worker_cpus is None and "pinning not possible" in job.note
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pinning not possible" in err[0]


def test_interleave_error_in_one_side_is_reported_and_the_rest_judged(tmp_path, monkeypatch, capsys):
    repo = interleave_project(tmp_path / "repo")
    monkeypatch.setenv("AB_ROUNDS", str(tmp_path / "rounds.log"))
    bench = repo / "benches" / "test_t.py"
    broken = bench.read_text().replace(
        "def test_rounds(benchmark):\n    benchmark(_work, 0.002)",
        "def test_rounds(benchmark):\n    n = []\n\n    def flaky():\n        n.append(1)\n"
        "        if len(n) > 10:\n            raise RuntimeError('broke mid-rounds')\n        _work(0.002)\n\n"
        "    benchmark(flaky)")
    bench.write_text(broken)
    monkeypatch.chdir(repo)
    # the point is the broken side, not a verdict: a threshold no sleep jitter reaches keeps the A/A verdicts of
    # the 1 ms sleeps (3 pairs, a disturbed pair included) from a chance flag (seen: x1.47)
    code = ab.main(args(format="table", design="interleave", turn_time=0.05, round_time=0.001, threads=1,
                        threshold="500%"))
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 0, text
    assert "2 benchmarks: 0 slower" in text  # test_calls and test_outside_rounds are still judged
    assert "run medians (a first call's interleaved calls: the mean of its calls)" in text
    assert "removed (only in base, not judged): benches/test_t.py::test_rounds" in text
    assert "side B: benches/test_t.py::test_rounds raised during its timing rounds" in text


@pytest.mark.parametrize("lanes, pairs", [
    (1, 2),
    pytest.param(2, 4, marks=pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="two lanes need two cores")),
])
def test_a_worker_hung_mid_round_fails_the_job_stops_every_lane_and_leaves_no_process(tmp_path, monkeypatch,
                                                                                      lanes, pairs):
    repo = interleave_project(tmp_path / "repo")
    monkeypatch.setenv("AB_ROUNDS", str(tmp_path / "rounds.log"))
    bench = repo / "benches" / "test_t.py"
    bench.write_text(bench.read_text().replace(
        "def test_rounds(benchmark):\n    benchmark(_work, 0.002)",
        "def test_rounds(benchmark):\n    n = []\n\n    def hangs():\n        n.append(1)\n"
        "        time.sleep(60 if len(n) > 10 else 0.002)\n\n    benchmark(hangs)"))
    sides = {"A": (sys.executable, repo), "B": (sys.executable, repo)}
    (tmp_path / "t").mkdir()
    job = ab.plan("interleave", turn_time=0.05, round_time=0.001, threads=1, lanes=lanes)
    assert job.lanes == lanes
    with pytest.raises(ab.WorkerFailed, match="hung"):
        ab.execute(sides, pairs, "quick", "", tmp_path / "t", turn_timeout=3, log=lambda m: None, reruns=0, job=job)
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "t")], capture_output=True, text=True).stdout.split()
    assert [pid for pid in left if int(pid) != os.getpid()] == []


BUSY_ROUNDS = ROUND_LOG.replace("    time.sleep(seconds)\n", "    while time.monotonic() - start < seconds:  # busy: a lane uses its core\n        pass\n")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="two lanes need two cores")
def test_two_lanes_run_pairs_at_once_each_pair_alone_on_its_core(tmp_path, monkeypatch):
    repo = project(tmp_path / "repo")
    (repo / "benches" / "test_t.py").write_text(BUSY_ROUNDS.format(sleep=0.002))
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "busy rounds", cwd=repo)
    rounds_log = tmp_path / "rounds.log"
    monkeypatch.setenv("AB_ROUNDS", str(rounds_log))
    sides = {"A": (sys.executable, repo), "B": (sys.executable, repo)}
    (tmp_path / "t").mkdir()
    # 0.8 s of rounds a side: a pair's rounds span 1.6 s or more, longer than the jitter between the lanes'
    # start-ups (two workers starting on one core; 0.2 s a side missed each other once on a clean clone)
    job = ab.plan("interleave", turn_time=0.8, round_time=0.001, threads=1, lanes=2)
    assert job.lanes == 2 and "2 pairs at once" in job.note and job.coordinator_cpus is None
    pairs = ab.execute(sides, 4, "quick", "", tmp_path / "t", log=lambda m: None, reruns=0, job=job)
    assert [pair.index for pair in pairs] == [0, 1, 2, 3]
    calls = [line.split(" ", 3) for line in rounds_log.read_text().splitlines()]
    spans, cores = {}, {}
    for pair in pairs:
        mine = [c for c in calls if int(c[0]) in pair.pids.values()]
        spans[pair.index] = (min(float(c[1]) for c in mine), max(float(c[2]) for c in mine))
        [core] = {c[3] for c in mine}  # both sides of a pair, every thread, on one core
        cores[pair.index] = core
        # a pair's sides never run at once (each side's last call, after its rounds, returns the result untimed)
        last = {pid: max(i for i, c in enumerate(mine) if c[0] == pid) for pid in {c[0] for c in mine}}
        timed = sorted((float(c[1]), float(c[2])) for i, c in enumerate(mine) if i not in last.values())
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(timed, timed[1:]))
        # the other lane burns its core through its rounds; it is the job's own, not a disturbance (counted
        # as others it would be most of a core; kernel threads in short windows make up to ~0.1)
        assert pair.load["other_cores"] < 0.3, pair.load
    assert set(cores.values()) == {f"{sorted(c)} {sorted(c)}" for c in job.lane_cpus}
    overlapping = [(i, j) for i in spans for j in spans if i < j and cores[i] != cores[j]
                   and spans[i][0] < spans[j][1] and spans[j][0] < spans[i][1]]
    assert overlapping  # pairs on different cores ran at the same time


def test_more_lanes_than_cores_fall_back_in_one_line(capsys):
    n = len(os.sched_getaffinity(0))
    job = ab.plan("interleave", threads=1, lanes=n + 1)
    assert job.lanes == n and f"{n + 1} lanes asked" in job.note
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"running {n} lane(s)" in err[0]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="two lanes need two cores")
def test_ctrl_c_during_a_two_lane_job_leaves_no_process_and_no_worktree(tmp_path):
    import signal
    import time

    repo = interleave_project(tmp_path / "repo", sleep=0.05)  # slow rounds: the job is mid-way when stopped
    rounds_log = tmp_path / "rounds.log"
    ab_tmp = tmp_path / "abtmp"  # ab's temporary folder, so that only this job's processes are looked for
    ab_tmp.mkdir()
    env = {**os.environ, "AB_ROUNDS": str(rounds_log), "TMPDIR": str(ab_tmp),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    # SIGINT at its default in the job, as at a terminal: under a shell's background job (`nohup make test &`)
    # it would inherit SIGINT ignored, finish its pairs and exit 0
    from benches.distributed.launcher import default_sigint

    job = subprocess.Popen([sys.executable, "-m", "benchruns", "ab", "--base-ref=HEAD", "--repeat=4", "--lanes=2",
                            "--turn-time=5", "--no-config"], cwd=repo, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until both lanes' workers are in their rounds
            pids = {line.split()[0] for line in rounds_log.read_text().splitlines()} if rounds_log.exists() else set()
            if len(pids) >= 4:
                break
            time.sleep(0.1)
        assert len(pids) >= 4, "the two lanes never started their rounds"
        assert all(os.path.exists(f"/proc/{pid}") for pid in pids)  # both pairs' workers are running
        job.send_signal(signal.SIGINT)
        _, err = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 130 and "benchruns ab: interrupted" in err and "Traceback" not in err, err
    left = subprocess.run(["pgrep", "-f", str(ab_tmp)], capture_output=True, text=True).stdout.split()
    assert left == []
    assert all(not os.path.exists(f"/proc/{pid}") for pid in pids)
    assert len(worktrees(repo)) == 1  # both temporary worktrees removed
