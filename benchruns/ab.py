"""ab: same-job A/B of a git ref (or another interpreter) against the working tree, in worker pairs.

Design (what a CI job can afford, and what makes its verdict hold):

* **Worker pairs that take turns.** A pair is two long-lived pytest processes, one per
  side, started together (their imports of torch and TensorFlow overlap; nothing is timed
  then). Before each benchmark (its setup, warm-up, timing and teardown) a worker asks
  the coordinator for a turn and waits; only one worker of the pair runs at a time, so
  they never compete for the cores, and A's and B's measurement of one benchmark are
  seconds apart: slow drift of the machine hits both sides of the pair alike.
* **Balanced order.** Turns go A B B A A B B A ... (or B A A B ...; the first side is
  drawn per pair from a seeded generator, so half the pairs start with each side):
  neither side always runs first, and a linear drift within a benchmark's two turns
  cancels over consecutive benchmarks.
* **The process is the unit.** Each worker's run medians are one sample of that
  process; several fresh pairs (``--repeat``, default 8) sample the process-to-process
  variation, and the verdict is a paired test on log(B/A) per pair
  (benchruns/stats.py: moderated t, Benjamini-Hochberg over benchmarks, effect floor,
  minimum detectable slowdown per benchmark).
* **Lanes.** Pairs run two at a time (``--lanes``, default 2 where there are two cores), each
  pair pinned to its own core: the process-to-process spread, not the rounds, limits the gate,
  and a pair costs about 90 s of imports, set-ups and compiles on one core. In an A/A job of 8
  pairs the second lane made each pair 10-20% slower and left the spread between pairs where
  it was (docs/gate.md): 8 pairs took 7 min 18 s, 4 pairs in one lane 6 min 30 s.
* **Identically shaped checkouts.** Side A runs in a git worktree of the base ref, side B
  in a git worktree of the working tree's current state (tracked changes via
  ``git stash create``, plus untracked files), both at ``<tmp>/A`` and ``<tmp>/B``: the
  same path length and depth, so neither side's imports or file lookups differ by where
  it lives.

Approaches this follows: interleaved, duet-style benchmarking (Bulej et al., "Duet
Benchmarking: Improving Measurement Accuracy in the Cloud", ICPE 2020 / EMSE 2020; A and B
exposed to the same interference), randomised and balanced orders against drift
(Georges, Buytaert, Eeckhout, "Statistically Rigorous Java Performance Evaluation",
OOPSLA 2007: repeat the VM invocation, not only the iteration; Kalibera & Jones,
"Rigorous Benchmarking in Reasonable Time", ISMM 2013: spend repetitions at the level
with the largest variance), and layout randomisation (Curtsinger & Berger, "Stabilizer",
ASPLOS 2013: a new process is a new memory layout, so sample many). Runs go to a temporary
folder, never into results/.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import compare, gate
from . import load as machine_load
from .durations import minutes_text
from .runs import BadInput, Run, load_run

DESIGNS = ("interleave", "alternate", "duet")
DEFAULT_DESIGN = "interleave"  # the noise study: rounds alternating on one core cut the spread ~10x
DEFAULT_TURN_TIMES = {"interleave": 0.25, "alternate": 0.1, "duet": 0.1}
# interleave: a round lasts about 1 ms, or one step. With both sides at the same iterations per round, the kept
# pairs of the AMD EPYC VM's 1 ms A/A job spread less than its 5 ms job's (docs/gate.md); the Intel noise study
# that had chosen 5 ms predates that fix.
DEFAULT_ROUND_TIME = 0.001
DEFAULT_INTERLEAVE_THREADS = 1
DEFAULT_LANES = 2  # interleave: worker pairs at once, each on its own core (docs/gate.md: 2 lanes, same spread)
# Seconds of rounds per benchmark and turn (pytest-benchmark's --benchmark-max-time); docs/gate.md has the
# measured trade-off between this, the number of pairs and the design.
# 0.1 s: the lowest spread between pairs in the noise study (alternate 0.03/0.1/0.3/1 s: median sd of
# log(B/A) 20/15/16/16%; duet 20/17/23/19%), at no more time per pair than 0.03 s.
DEFAULT_TURN_TIME = 0.1
# interleave: calls a side for a first call that the suite times more than once (a fresh set-up and one call per
# round; a cold compile, timed once, keeps its one). Within one process three calls of a first call scatter by
# 4-16% (sd of log), nearly all of the spread between pairs (docs/gate.md): 9 cut it by about sqrt(3).
DEFAULT_CALLS = 9
# ... but the calls past the test's own rounds stop once a side has spent this long on set-ups and calls: the
# small MLP's slowest first call (XLA's train step: its 9 calls took up to 3.2 s a side, set-ups aside) stays
# well inside it on a slow day; a large model's compile of several seconds keeps close to the test's own rounds
# instead of growing a job by minutes.
CALLS_BUDGET_S = 8.0
MIN_ROUNDS = 20  # interleave: rounds per side and test, at least (a 50 ms step gets 20 of them)
MAX_ROUNDS = 2000  # and at most (a 0.1 ms round would otherwise ask for thousands)
NO_PROBE = "--no-probe"  # the suite's option that keeps the reference probe out of the rounds (conftest.py)
MAX_RERUNS = 2  # extra pairs started to replace disturbed ones, per job
TURN_TIMEOUT_S = 900.0  # one benchmark (setup, warm-up, timing) in one worker, cold torch.compile included
SEED = 20261129

# Injected into every worker with ``-p`` from a folder on PYTHONPATH, so that it also works
# for a base ref whose own code predates it. It must not import anything from the suite.
PLUGIN_NAME = "_benchruns_ab_turns"
PLUGIN = """\
\"\"\"benchruns ab: run each test only when the coordinator gives this worker the turn.

With BENCHRUNS_AB_INTERLEAVE=1 it also hands pytest-benchmark's timing rounds to the
coordinator one at a time: after calibration and warm-up the worker says how long a round
takes and how many iterations it holds ("rounds <seconds> <iterations>"), takes the
iterations per round that the coordinator gives both sides ("i<9 digits>"), and then runs
one round per "r" and stops at "e", so that the rounds of A and B alternate at the
timescale of a round. A pedantic benchmark (a first call, a cold compile: a fresh set-up and one
call per round) says "pedantic <rounds>", takes the rounds both sides run ("i<9 digits>") and runs
one set-up and call per "r", or stops early at "s". Disabled timing and pedantic iterations run whole in their turn.
\"\"\"
import os

import pytest

_GO = int(os.environ["BENCHRUNS_AB_GO_FD"])
_DONE = int(os.environ["BENCHRUNS_AB_DONE_FD"])


def _say(line):
    os.write(_DONE, (line + "\\n").encode())


def _read_exactly(n):
    data = b""
    while len(data) < n:
        chunk = os.read(_GO, n - len(data))
        if not chunk:  # the coordinator went away
            os._exit(3)
        data += chunk
    return data


def _interleaved_raw(self, function_to_benchmark, *args, **kwargs):
    # pytest-benchmark's BenchmarkFixture._raw with the rounds loop run by the coordinator
    if not self.enabled or self.cprofile:
        return _ORIGINAL_RAW(self, function_to_benchmark, *args, **kwargs)
    runner = self._make_runner(function_to_benchmark, args, kwargs)
    # Calibrated twice, the larger count kept: a first call that pays one-off costs (the page faults of
    # a first allocation) can alone outlast a round and leave one iteration for a step far shorter.
    duration, iterations, _ = self._calibrate_timer(runner)
    again, more, _ = self._calibrate_timer(runner)
    if more >= iterations:
        duration, iterations = again, more
    warmup = getattr(self, "_warmup", 0)
    if warmup:  # as pytest-benchmark warms up: at least one round (now, while the other side waits)
        for _ in range(max(1, int(warmup / iterations))):
            runner(range(iterations))
    _say("rounds %r %d" % (duration, iterations))
    command = _read_exactly(11)  # "i" and 9 digits: both sides run rounds of the same iterations
    if command[:1] != b"i":
        os._exit(3)
    iterations = int(command[1:10])
    loops_range = range(iterations)
    stats = self._make_stats(iterations)
    while True:
        command = os.read(_GO, 2)
        if command == b"r\\n":
            stats.update(runner(loops_range))
            os.write(_DONE, b"d\\n")
        elif command == b"e\\n":
            break
        else:  # the coordinator went away
            os._exit(3)
    return function_to_benchmark(*args, **kwargs)


def _interleaved_pedantic(self, target, args=(), kwargs=None, setup=None, teardown=None, rounds=1,
                          warmup_rounds=0, iterations=1):
    # pytest-benchmark's own _raw_pedantic, each timed round (its set-up, call and teardown) run on the
    # coordinator's "r": set-ups stay untimed, and A's and B's calls alternate as the rounds above do
    if (not self.enabled or self.cprofile or iterations != 1 or not isinstance(rounds, int) or rounds < 1
            or not isinstance(warmup_rounds, int) or warmup_rounds < 0):
        return _ORIGINAL_PEDANTIC(self, target, args, kwargs, setup, teardown, rounds, warmup_rounds, iterations)
    _say("pedantic %d" % rounds)
    command = _read_exactly(11)  # "i" and 9 digits: the rounds both sides run
    if command[:1] != b"i":
        os._exit(3)
    rounds = int(command[1:10])
    calls = {"setup": 0, "teardown": 0}

    def turn_then_setup():
        calls["setup"] += 1
        if calls["setup"] > warmup_rounds:  # a timed round: wait for the turn
            command = os.read(_GO, 2)
            if command == b"s\\n":  # enough calls: the coordinator stops both sides here
                raise _EnoughCalls
            if command != b"r\\n":
                os._exit(3)
        return setup() if setup is not None else None

    def teardown_then_done(*a, **kw):
        calls["teardown"] += 1
        try:
            if teardown is not None:
                teardown(*a, **kw)
        finally:
            if calls["teardown"] > warmup_rounds:
                os.write(_DONE, b"d\\n")

    try:
        result = _ORIGINAL_PEDANTIC(self, target, args, kwargs, turn_then_setup, teardown_then_done, rounds,
                                    warmup_rounds, 1)
    except _EnoughCalls:  # the rounds run so far are in the stats already
        result = None
    # every call's time, for the verdict's mean of them (the run JSON keeps only summaries of them)
    data = getattr(getattr(getattr(self, "stats", None), "stats", None), "data", None)
    if data:
        self.extra_info["ab_calls_s"] = [float(x) for x in data]
    if os.read(_GO, 2) != b"e\\n":
        os._exit(3)
    return result


class _EnoughCalls(Exception):
    pass


_ORIGINAL_RAW = None
_ORIGINAL_PEDANTIC = None
_INTERLEAVE_STATE = "off"
if os.environ.get("BENCHRUNS_AB_INTERLEAVE") == "1":
    try:
        from pytest_benchmark.fixture import BenchmarkFixture
        _missing = [n for n in ("_raw", "_raw_pedantic", "_make_runner", "_calibrate_timer", "_make_stats")
                    if not hasattr(BenchmarkFixture, n)]
        if _missing:
            _INTERLEAVE_STATE = "off: this pytest-benchmark has no " + ", ".join(_missing)
        else:
            _ORIGINAL_RAW, _ORIGINAL_PEDANTIC = BenchmarkFixture._raw, BenchmarkFixture._raw_pedantic
            BenchmarkFixture._raw, BenchmarkFixture._raw_pedantic = _interleaved_raw, _interleaved_pedantic
            _INTERLEAVE_STATE = "on"
    except ImportError as exc:
        _INTERLEAVE_STATE = "off: " + str(exc).replace("\\n", " ")


def pytest_collection_finish(session):
    # one line naming every test this worker will run: pairs align their turns on it
    _say("items " + "\\t".join(item.nodeid for item in session.items))
    _say("interleave " + _INTERLEAVE_STATE)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _say("ready " + item.nodeid)
    if os.read(_GO, 3) != b"go\\n":  # the coordinator went away: stop without timing anything
        os._exit(3)
    try:
        yield
    finally:  # "done last": nothing follows but writing the JSON and exiting
        os.write(_DONE, b"done\\n" if nextitem is not None else b"done last\\n")
"""


class WorkerFailed(BadInput):
    """A worker crashed, hung or wrote no JSON: the job cannot be judged."""


def other_side(side: str) -> str:
    return "B" if side == "A" else "A"


def side_of_turn(first: str, k: int) -> str:
    """Turn k (from 0) of A B B A A B B A ... starting with ``first``."""
    return first if k % 4 in (0, 3) else other_side(first)


def turn_order(first: str, n: int) -> list[str]:
    """The first n turns: each side leads half the benchmarks."""
    return [side_of_turn(first, k) for k in range(n)]


def pytest_command(python: str, profile: str, k: str, json_path: Path, extra: list[str] | None = None,
                   turn_time: float = DEFAULT_TURN_TIME, round_time: float | None = None) -> list[str]:
    cmd = [python, "-m", "pytest", "benches", f"--profile={profile}", "-p", "no:cacheprovider", "-p", PLUGIN_NAME,
           "-q", f"--benchmark-json={json_path}", f"--benchmark-max-time={turn_time:g}"]
    if round_time is not None:  # pytest-benchmark calibrates a round to last at least this long
        cmd.append(f"--benchmark-min-time={round_time:g}")
    if k:
        cmd += ["-k", k]
    return cmd + list(extra or [])


@dataclass
class Worker:
    side: str
    proc: subprocess.Popen
    go: int  # coordinator -> worker
    done: int  # worker -> coordinator
    log: Path
    buffer: bytes = b""
    closed: bool = False
    items: list[str] | None = None  # what the worker collected ("items" line), when it said so
    interleave: str = "off"  # "on", or "off: why" (the plugin could not take over the rounds loop)

    def close(self) -> None:
        """Close the coordinator's ends of the pipes, once (fd numbers are reused)."""
        if not self.closed:
            self.closed = True
            for fd in (self.go, self.done):
                os.close(fd)

    def send(self, command: bytes) -> None:
        """Write a command to the worker; a worker that has died fails the job with its log tail."""
        try:
            os.write(self.go, command)
        except OSError as exc:  # BrokenPipeError: nobody reads the other end any more
            raise WorkerFailed(f"side {self.side} is gone ({exc.strerror or exc}); log tail: {tail(self.log)}") from None

    def read_line(self, timeout: float) -> str | None:
        """The worker's next protocol line; None at end of file (the worker exited).

        Blocks in select() until the worker writes (no polling loop): the hand-over of a
        round costs two pipe wake-ups, not a sleep."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.done], [], [], left)[0]:
                raise WorkerFailed(f"side {self.side} sent nothing for {timeout:.0f} s (hung); log tail: {tail(self.log)}")
            chunk = os.read(self.done, 4096)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode(errors="replace")


def tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def start_worker(side: str, python: str, cwd: Path, cmd: list[str], plugin_dir: Path, log: Path,
                 cpus: set[int] | None = None, interleave: bool = False) -> Worker:
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    # A worker is a pytest session of its own: started from inside a pytest-xdist worker (a test), it would
    # inherit PYTEST_XDIST_WORKER, and pytest-benchmark would switch timing off.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_") and k != "PYTEST_CURRENT_TEST"}
    env["BENCHRUNS_AB_INTERLEAVE"] = "1" if interleave else "0"
    env["PYTHONPATH"] = os.pathsep.join([str(plugin_dir)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["BENCHRUNS_AB_GO_FD"], env["BENCHRUNS_AB_DONE_FD"] = str(go_r), str(done_w)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                pass_fds=(go_r, done_w), start_new_session=True,
                                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    os.close(go_r)
    os.close(done_w)
    return Worker(side, proc, go_w, done_r, log)


def stop(workers: list[Worker]) -> None:
    """Kill what is still running (whole process groups: DataLoader workers too) and close pipes."""
    for w in workers:
        if w.proc.poll() is None:
            try:
                os.killpg(w.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        w.proc.wait()
        w.close()


def next_ready(worker: Worker, turn_timeout: float) -> str | None:
    """Read the worker's next "ready <nodeid>" (its next test), or None when it has exited."""
    line = worker.read_line(turn_timeout)
    while line is not None and not line.startswith("ready "):
        if line.startswith("items "):
            worker.items = [n for n in line[len("items "):].split("\t") if n]
        elif line.startswith("interleave "):
            worker.interleave = line[len("interleave "):]
        line = worker.read_line(turn_timeout)
    return None if line is None else line[len("ready "):]


def run_pair(workers: dict[str, Worker], first: str, turn_timeout: float = TURN_TIMEOUT_S,
             draining: list[Worker] | None = None,
             meter: machine_load.LoadMeter | None = None) -> list[tuple[str, str]]:
    """Give turns A B B A ... until both workers finish; returns [(side, nodeid), ...] in the order run.

    Nothing of one worker overlaps a turn of the other: the first turn waits until both
    have started up (imports, collection) and any worker of the previous pair (``draining``)
    has exited, and after each turn the coordinator waits until that worker is waiting
    again, or has written its JSON and exited, before it gives the other a turn. After the
    pair's very last turn the worker is left to exit while the next pair starts up (no
    turn runs then); it is appended to ``draining``.
    """
    order: list[tuple[str, str]] = []
    pending = {side: next_ready(w, turn_timeout) for side, w in workers.items()}
    for old in draining or []:
        finish(old)
    if draining:
        draining.clear()
    k = 0
    try:
        while any(nodeid is not None for nodeid in pending.values()):
            side = side_of_turn(first, k)
            k += 1
            if pending[side] is None:
                side = other_side(side)
            other = other_side(side)
            worker, nodeid = workers[side], pending[side]
            with meter.measuring({worker.proc.pid}) if meter else contextlib.nullcontext():
                worker.send(b"go\n")
                done = worker.read_line(turn_timeout)
            if done not in ("done", "done last"):
                raise WorkerFailed(f"side {side} died during {nodeid}; log tail: {tail(worker.log)}")
            order.append((side, nodeid))
            if done == "done last" and pending[other] is None and draining is not None:
                pending[side] = None
                draining.append(worker)
                continue
            pending[side] = next_ready(worker, turn_timeout)
            if pending[side] is None:  # its pipe closed: make sure the process is gone, not exiting
                finish(worker)
        for w in workers.values():
            if draining is None or w not in draining:
                finish(w)
    except BaseException:
        stop(list(workers.values()))
        raise
    return order


def run_duet(workers: dict[str, Worker], turn_timeout: float = TURN_TIMEOUT_S,
             meter: machine_load.LoadMeter | None = None) -> list[tuple[str, str]]:
    """Give both workers the same benchmark at the same time, each on its own half of the cores.

    Duet benchmarking (Bulej et al.): A and B see the same interference at the same
    moment, so it cancels in their ratio. A test that only one side has (added or
    removed) runs alone, so that the two sides stay aligned on the tests they share.
    """
    order: list[tuple[str, str]] = []
    pending = {side: next_ready(w, turn_timeout) for side, w in workers.items()}
    try:
        while any(nodeid is not None for nodeid in pending.values()):
            sides = aligned_sides(pending, workers)
            with meter.measuring({workers[s].proc.pid for s in sides}) if meter else contextlib.nullcontext():
                for side in sides:
                    workers[side].send(b"go\n")
                for side in sides:
                    done = workers[side].read_line(turn_timeout)
                    if done not in ("done", "done last"):
                        raise WorkerFailed(f"side {side} died during {pending[side]}; log tail: "
                                           f"{tail(workers[side].log)}")
                    order.append((side, pending[side]))
            for side in sides:
                pending[side] = next_ready(workers[side], turn_timeout)
        for w in workers.values():
            finish(w)
    except BaseException:
        stop(list(workers.values()))
        raise
    return order


def aligned_sides(pending: dict[str, str | None], workers: dict[str, Worker]) -> list[str]:
    """The sides that run the next test together: both when it is the same test, else the one
    whose test the other side will never reach (added or removed), so the two stay aligned."""
    a, b = pending["A"], pending["B"]
    if a is not None and a == b:
        return ["A", "B"]
    if a is None or b is None:
        return ["A" if a is not None else "B"]
    return ["A"] if a not in (workers["B"].items or []) else ["B"]


def balanced_rounds(rng: random.Random, sides: list[str], n: int) -> list[str]:
    """n rounds per side in blocks of one round each, every block in a random order (AB or BA)."""
    order: list[str] = []
    for _ in range(n):
        block = list(sides)
        rng.shuffle(block)
        order += block
    return order


@dataclass
class Interleaved:
    """How the rounds of one test were run: per side the seconds of one round, and the rounds given."""

    nodeid: str
    round_s: dict[str, float]  # at the common iterations (calls: empty, a call is timed only in its round)
    rounds: int
    iterations: int  # per round, the same on both sides: the larger of their calibrations
    failed: list[str]  # sides whose test ended during its rounds (an error): judged on what they ran
    calls: bool = False  # pedantic: each round a fresh set-up and one call (first calls, cold compiles)


def run_interleaved(workers: dict[str, Worker], rng: random.Random, turn_time: float, min_rounds: int = MIN_ROUNDS,
                    max_rounds: int = MAX_ROUNDS, turn_timeout: float = TURN_TIMEOUT_S,
                    meter: machine_load.LoadMeter | None = None, roots: set[int] | None = None,
                    timeline: dict | None = None, calls: int | None = None,
                    calls_budget: float | None = None) -> tuple[list[tuple[str, str]], list[Interleaved]]:
    """Run each test on both sides with their timing rounds alternating, one round at a time.

    Per test: A sets up, calibrates and warms up while B waits; then B does, while A waits
    after its warm-up (both blocked on their pipes, using no CPU). Both then run rounds of the
    same iterations, the larger of their two calibrations. Then the coordinator
    gives one round at a time, ``n`` per side in blocks of AB or BA drawn at random, so that
    both sides sample the same moments of the machine's speed. ``n`` fills ``turn_time``
    seconds of rounds per side at the slower side's round (between min_rounds and
    max_rounds). A pedantic test (a first call, a cold compile: each round a fresh set-up and
    one call) gets at least ``calls`` rounds a side where it asks for more than one (None: the
    rounds it asks for; a cold compile asks for one and keeps it), its set-ups and calls
    alternating the same way; the calls past its own rounds stop once a side has spent
    ``calls_budget`` seconds on set-ups and calls (a large model's compile), both sides at once.
    A test that never reaches either (timing disabled, rounds timed by other processes), or
    whose kind differs between the sides, runs whole in its turn, one side after the other,
    and is judged per process, as in ``alternate``.
    ``roots``: the processes the load windows count as the job's own (default: the two workers).
    ``timeline``: filled with where the pair's wall time went (``time_split``).
    """
    calls_budget = CALLS_BUDGET_S if calls_budget is None else calls_budget
    order: list[tuple[str, str]] = []
    interleaved: list[Interleaved] = []
    began = time.monotonic()
    pending = {side: next_ready(w, turn_timeout) for side, w in workers.items()}
    tests: dict[str, list[float]] = {}  # nodeid -> [seconds from the first "go" to both done, of which rounds]
    startup = time.monotonic() - began
    try:
        while any(nodeid is not None for nodeid in pending.values()):
            sides = aligned_sides(pending, workers)
            nodeid = pending[sides[0]]
            own = roots if roots is not None else {workers[s].proc.pid for s in sides}
            with meter.measuring(own) if meter else contextlib.nullcontext():
                setup_order = list(sides)
                rng.shuffle(setup_order)
                test_began, rounds_s = time.monotonic(), 0.0
                calibrated: dict[str, tuple[float, int]] = {}
                pedantic: dict[str, int] = {}
                for side in setup_order:
                    workers[side].send(b"go\n")
                    line = workers[side].read_line(turn_timeout)
                    if line is not None and line.startswith("rounds "):
                        seconds, iterations = line.split()[1:3]
                        calibrated[side] = float(seconds), int(iterations)
                    elif line is not None and line.startswith("pedantic "):
                        pedantic[side] = int(line.split()[1])
                    elif line not in ("done", "done last"):
                        raise WorkerFailed(f"side {side} died during {nodeid}; log tail: {tail(workers[side].log)}")
                failed: list[str] = []
                round_s: dict[str, float] = {}
                groups: list[tuple[list[str], int]] = []  # sides whose rounds alternate, and rounds per side
                if pedantic:
                    # A first call or cold compile: the rounds the test asks for (the fewer, if the sides
                    # differ), each a fresh set-up and one call, A's and B's calls alternating.
                    n = min(pedantic.values())
                    if calls is not None and n > 1:
                        n = max(n, calls)
                    for side in pedantic:
                        workers[side].send(b"i%09d\n" % n)
                    groups.append((sorted(pedantic), n))
                if calibrated:
                    # Both sides run rounds of the same iterations. A round's fixed cost (the other side's
                    # round has just evicted this one's caches) is spread over its iterations; with 2
                    # against 10 it had made one side of a pair 10-90% slower for the whole benchmark.
                    common = max(iterations for _, iterations in calibrated.values())
                    for side, (seconds, iterations) in calibrated.items():
                        workers[side].send(b"i%09d\n" % common)
                        round_s[side] = seconds / iterations * common
                    n = int(min(max(math.ceil(turn_time / max(round_s.values())), min_rounds), max_rounds))
                    groups.append((sorted(calibrated), n))
                rounds_began = time.monotonic()
                ran = []  # rounds a side each group ran
                for group, n in groups:  # two groups only when the test changed kind: each side alone, then
                    spent = dict.fromkeys(group, 0.0)  # pedantic: seconds of set-ups and calls so far
                    of_calls = set(group) <= set(pedantic)  # not the timing rounds of a side that changed kind
                    for k, side in enumerate(balanced_rounds(rng, group, n)):
                        done_blocks = k // len(group)
                        if (of_calls and k % len(group) == 0 and done_blocks >= min(pedantic.values())
                                and max(spent.values()) >= calls_budget):
                            # calls past the test's own rounds stop at the budget, both sides at once
                            for other in group:
                                if other not in failed:
                                    workers[other].send(b"s\n")
                            n = done_blocks
                            break
                        if side in failed:
                            continue
                        began_round = time.monotonic()
                        workers[side].send(b"r\n")
                        reply = workers[side].read_line(turn_timeout)
                        spent[side] += time.monotonic() - began_round
                        if reply in ("done", "done last"):  # its test raised during a round: judged without it
                            failed.append(side)
                        elif reply != "d":
                            raise WorkerFailed(f"side {side} died during a round of {nodeid}; log tail: "
                                               f"{tail(workers[side].log)}")
                    ran.append(n)
                    for side in group:  # one at a time: the rest of a test is not timed, but runs alone too
                        if side in failed:
                            continue
                        workers[side].send(b"e\n")
                        if workers[side].read_line(turn_timeout) not in ("done", "done last"):
                            raise WorkerFailed(f"side {side} died after the rounds of {nodeid}; log tail: "
                                               f"{tail(workers[side].log)}")
                if groups:
                    rounds_s = time.monotonic() - rounds_began
                if len(groups) == 1:
                    interleaved.append(Interleaved(nodeid, round_s, ran[0], 1 if pedantic else common, failed,
                                                   calls=bool(pedantic)))
                order += [(side, nodeid) for side in sides]
                tests[nodeid] = [round(time.monotonic() - test_began, 4), round(rounds_s, 4)]
            for side in sides:
                pending[side] = next_ready(workers[side], turn_timeout)
        for w in workers.values():
            finish(w)
    except BaseException:
        stop(list(workers.values()))
        raise
    if timeline is not None:
        timeline.update(startup_s=round(startup, 3), total_s=round(time.monotonic() - began, 3), tests=tests)
    return order, interleaved


def duet_cpus(pair: int, side: str) -> set[int]:
    """Half of this process's cores for each side; the halves swap sides from pair to pair."""
    cores = sorted(os.sched_getaffinity(0))
    half = max(len(cores) // 2, 1)
    first, second = set(cores[:half]), set(cores[half:2 * half] or cores[:half])
    return first if (side == "A") == (pair % 2 == 0) else second


def finish(worker: Worker, timeout: float = 120) -> None:
    """Wait for a worker that has run its last test to write its JSON and exit."""
    try:
        worker.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop([worker])
        raise WorkerFailed(f"side {worker.side} did not exit after its last test; log tail: {tail(worker.log)}") from None
    worker.close()


# --- checkouts --------------------------------------------------------------------------------


def _git(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def working_state(top: Path) -> str:
    """A commit holding the working tree's tracked state (HEAD when nothing is modified)."""
    stash = _git("stash", "create", cwd=top)
    sha = stash.stdout.strip()
    if stash.returncode == 0 and sha:
        return sha
    return _git("rev-parse", "HEAD", cwd=top).stdout.strip()


def add_worktree(top: Path, path: Path, commit: str, what: str) -> None:
    added = _git("worktree", "add", "--detach", str(path), commit, cwd=top)
    if added.returncode != 0:
        last = added.stderr.strip().splitlines()[-1] if added.stderr.strip() else "failed"
        raise BadInput(f"git worktree add for {what}: {last}")


def copy_untracked(top: Path, dest: Path) -> int:
    """Copy untracked, not ignored files (a new bench module, say) into the side-B checkout."""
    listed = _git("ls-files", "--others", "--exclude-standard", "-z", cwd=top).stdout
    names = [n for n in listed.split("\0") if n]
    for name in names:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(top / name, target)
    return len(names)


# --- the job ---------------------------------------------------------------------------------


@dataclass
class Pair:
    """One worker pair's outcome: its runs, the order of its turns and what else used the machine."""

    index: int
    runs: dict[str, Run]
    turns: list[tuple[str, str]]
    load: dict
    interleaved: list[Interleaved] = field(default_factory=list)
    interleave_state: dict[str, str] = field(default_factory=dict)  # per side: "on" or "off: why"
    pids: dict[str, int] = field(default_factory=dict)
    timeline: dict = field(default_factory=dict)  # interleave: where its wall time went (run_interleaved)

    @property
    def disturbed(self) -> bool:
        return machine_load.status(self.load)[0] == "disturbed"


@dataclass
class Plan:
    """Where and how a job's workers run: design, time per benchmark, threads and CPU pinning."""

    design: str
    turn_time: float  # alternate/duet: seconds of rounds per turn; interleave: seconds of rounds per side
    round_time: float | None  # interleave: a round lasts at least this long (pytest-benchmark's min time)
    threads: int | None  # --threads for both workers; None: the suite's own setting
    coordinator_cpus: set[int] | None  # the coordinator keeps off the workers' core when there is another
    note: str  # one line for the table: threads and pinning as they were used, and any fallback
    lane_cpus: list[set[int]] = field(default_factory=list)  # interleave, pinned: one CPU set per lane (pairs at once)
    calls: int | None = None  # interleave: calls a side, at least, for a first call timed more than once
    probe: str = ""  # whether the workers ran the reference probe (probe_args), for the table

    @property
    def lanes(self) -> int:
        return max(len(self.lane_cpus), 1)

    @property
    def worker_cpus(self) -> set[int] | None:
        """Where the first lane's pair runs (both workers pinned together); None: unpinned. Duet pins per side."""
        return self.lane_cpus[0] if self.lane_cpus else None

    def describe(self) -> str:
        tail = f"{self.note}; {self.probe}" if self.probe else self.note
        if self.design == "interleave":
            calls = f"first calls {self.calls} a side (a cold compile 1)" if self.calls else "first calls as asked"
            return (f"design interleave, rounds of {self.round_time * 1e3:g} ms, {self.turn_time:g} s of rounds "
                    f"per side and benchmark, {calls}; {tail}")
        return f"design {self.design}, {self.turn_time:g} s per turn; {tail}"


def probe_args(checkouts: dict[str, Path]) -> tuple[list[str], str]:
    """``--no-probe`` for every worker when each side's conftest.py knows the option, and the plan's words.

    ab judges A against B within each pair and never reads the reference probe (benchruns/probe.py), whose
    calls take up to a tenth of each benchmark's round time. A side that predates the option keeps the probe
    on both sides, so that A and B run the same harness."""
    lacking = []
    for side, checkout in sorted(checkouts.items()):
        try:
            known = NO_PROBE in (Path(checkout) / "conftest.py").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            known = False
        if not known:
            lacking.append(side)
    if not lacking:
        return [NO_PROBE], "reference probe off"
    return [], f"reference probe on (side {', '.join(lacking)} has no {NO_PROBE})"


def plan(design: str = DEFAULT_DESIGN, turn_time: float | None = None, round_time: float | None = None,
         threads: str | int | None = None, lanes: int | None = None, calls: int | None = None) -> Plan:
    """The job's plan; ``calls``: interleave's calls a side for a first call timed more than once (default
    DEFAULT_CALLS; a cold compile keeps its one)."""
    job = _where(design, turn_time, round_time, threads, lanes)
    if job.design == "interleave":
        job.calls = calls if calls is not None else DEFAULT_CALLS
    return job


def _where(design: str, turn_time: float | None, round_time: float | None, threads: str | int | None,
           lanes: int | None) -> Plan:
    """The plan's design, times, threads and pinning. ``threads``: a number, "suite" (the suite's own
    setting), or None for the design's default (interleave: 1 thread pinned to one core; duet: half the
    cores per side; alternate: the suite's).
    ``lanes`` (interleave, pinned): worker pairs run at once, each pair on its own core(s); a pair's two
    sides still share their core and alternate rounds. None: DEFAULT_LANES where the cores allow them, else
    fewer, quietly; more lanes asked than the cores allow fall back in one line."""
    cores = sorted(os.sched_getaffinity(0))
    turn_time = turn_time if turn_time is not None else DEFAULT_TURN_TIMES[design]
    if design == "duet":
        half = max(len(cores) // 2, 1)
        return Plan(design, turn_time, None, half, None, f"{half} thread(s) per side, each on its own half of the cores")
    if design == "alternate":
        n = None if threads in (None, "suite") else int(threads)
        return Plan(design, turn_time, None, n, None,
                    f"{n} thread(s)" if n else "the suite's threads" + ", unpinned")
    round_time = round_time if round_time is not None else DEFAULT_ROUND_TIME
    if threads == "suite":
        return Plan(design, turn_time, round_time, None, None, "the suite's threads, both workers unpinned")
    n = int(threads) if threads is not None else DEFAULT_INTERLEAVE_THREADS
    if n > len(cores):
        note = (f"{n} thread(s) asked, {len(cores)} CPU(s) available: pinning not possible, "
                f"workers unpinned with {n} thread(s)")
        print(f"ab: {note}", file=sys.stderr)
        return Plan(design, turn_time, round_time, n, None, note)
    try:  # a container may forbid it: then say so and run unpinned
        os.sched_setaffinity(0, os.sched_getaffinity(0))
    except OSError as exc:
        note = f"CPU pinning not allowed ({exc.strerror}): workers unpinned with {n} thread(s)"
        print(f"ab: {note}", file=sys.stderr)
        return Plan(design, turn_time, round_time, n, None, note)
    fits = len(cores) // n
    fallback = ""
    if lanes is None:
        lanes = min(DEFAULT_LANES, fits)
    elif lanes > fits:
        fallback = f"; {lanes} lanes asked, {len(cores)} CPU(s) fit {fits}"
        print(f"ab: {lanes} lanes of {n} thread(s) asked, {len(cores)} CPU(s) available: running {fits} lane(s)",
              file=sys.stderr)
        lanes = fits
    lane_cpus = [set(cores[len(cores) - (i + 1) * n: len(cores) - i * n]) for i in range(lanes)]
    rest = set(cores) - set().union(*lane_cpus)
    where = " and ".join("CPU " + ",".join(map(str, sorted(c))) for c in lane_cpus)
    if lanes == 1:
        note = f"{n} thread(s), both workers pinned to {where}"
    else:
        note = f"{n} thread(s); {lanes} pairs at once, each pair's workers pinned together, to {where}"
    return Plan(design, turn_time, round_time, n, rest or None, note + fallback, lane_cpus)


@contextlib.contextmanager
def coordinator_pinned(cpus: set[int] | None):
    """Keep the coordinator off the workers' core(s) while the job runs (restored after)."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, cpus)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def execute(sides: dict, repeat: int, profile: str, k: str, tmp: Path, extra: list[str] | None = None,
            seed: int = SEED, turn_timeout: float = TURN_TIMEOUT_S, log=None, design: str = DEFAULT_DESIGN,
            turn_time: float | None = None, reruns: int = MAX_RERUNS, job: Plan | None = None) -> list[Pair]:
    """Run ``repeat`` fresh worker pairs; ``sides`` maps 'A'/'B' to (python, cwd).

    A pair during whose turns other processes used more than the load threshold is
    disturbed: it is reported, kept out of the verdict by the caller, and replaced by a
    fresh pair, at most ``reruns`` times per job. Returns every pair, disturbed ones too,
    in the order they were started. With ``job.lanes`` > 1 that many pairs run at once,
    each on its own core(s); a lane takes the next pair when its pair ends.
    """
    job = job or plan(design, turn_time)
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    plugin_dir = tmp / "plugin"
    plugin_dir.mkdir(exist_ok=True)
    (plugin_dir / f"{PLUGIN_NAME}.py").write_text(PLUGIN, encoding="utf-8")
    rng = random.Random(seed)
    firsts = ["A", "B"] * ((repeat + 1) // 2)
    rng.shuffle(firsts)  # balanced: half the pairs start with each side (and half of any replacements)
    spare = ["A", "B"] * ((reruns + 1) // 2)
    rng.shuffle(spare)
    firsts = firsts[:repeat] + spare
    done: list[Pair] = []
    started_pairs: list[dict[str, Worker]] = []
    lock = threading.Lock()
    claimed = {"next": 0, "running": 0}
    failures: list[BaseException] = []
    # Pairs at once: a load window must count every worker of the job as the job's own, or each lane
    # would see the other as a disturbance. One lane: only the two workers whose turn it is.
    job_roots = {os.getpid()} if job.lanes > 1 else None

    def run_one(p: int, lane_cpus: set[int] | None) -> Pair:
        started = time.monotonic()
        workers: dict[str, Worker] = {}
        with lock:
            started_pairs.append(workers)
        for side in ("A", "B"):
            python, cwd = sides[side]
            cmd = pytest_command(python, profile, k, tmp / f"{side}{p}.json", extra, job.turn_time, job.round_time)
            if job.threads:
                cmd.append(f"--threads={job.threads}")
            # Pinned from birth, not after import: thread pools (OpenMP, OpenBLAS, TensorFlow's) size
            # themselves to the CPUs a process sees at start. Started on both cores and pinned later,
            # the torch transfer cases' spread between pairs grew ~10x (0.9% -> 9%, one A/A job).
            cpus = duet_cpus(p, side) if job.design == "duet" else lane_cpus
            workers[side] = start_worker(side, python, Path(cwd), cmd, plugin_dir, tmp / f"{side}{p}.log",
                                         cpus, interleave=job.design == "interleave")
        meter = machine_load.LoadMeter(roots=set())  # a window per turn, around the workers whose turn it is
        interleaved: list[Interleaved] = []
        timeline: dict = {}
        if job.design == "duet":
            order = run_duet(workers, turn_timeout, meter)
        elif job.design == "interleave":
            order, interleaved = run_interleaved(workers, random.Random(f"{seed}-{p}"), job.turn_time,
                                                 turn_timeout=turn_timeout, meter=meter, roots=job_roots,
                                                 timeline=timeline, calls=job.calls)
        else:
            draining: list[Worker] = []
            order = run_pair(workers, firsts[p], turn_timeout, draining, meter)
            for w in draining:  # the pair's verdict needs its JSON now; the next pair waits anyway
                finish(w)
        runs = {}
        for side in ("A", "B"):
            json_path = tmp / f"{side}{p}.json"
            if not json_path.is_file():
                w = workers[side]
                raise WorkerFailed(f"side {side} of pair {p + 1} exited {w.proc.returncode} without "
                                   f"writing its JSON; log tail: {tail(w.log)}")
            runs[side] = load_run(json_path)
        pair = Pair(p, runs, order, meter.record(), interleaved,
                    {side: w.interleave for side, w in workers.items()},
                    {side: w.proc.pid for side, w in workers.items()}, timeline)
        state, why = machine_load.status(pair.load)
        quiet = (f"others {pair.load.get('other_cores', 0):.2f} core: quiet" if state == "undisturbed"
                 else f"{state.upper()}: {why}")
        lead = {"duet": "duet", "interleave": f"{len(interleaved)} interleaved"}.get(job.design, f"{firsts[p]} first")
        where = f", CPU {','.join(map(str, sorted(lane_cpus)))}" if job.lanes > 1 and lane_cpus else ""
        log(f"ab: pair {p + 1} done in {time.monotonic() - started:.0f} s ({len(order)} turns, {lead}{where}; {quiet})")
        if pair.disturbed and p + 1 < repeat + reruns:
            log(f"ab: pair {p + 1} was disturbed: it gives no verdict; starting a fresh pair in its place")
        return pair

    def claim() -> int | None:
        """The next pair to start, or None when enough undisturbed pairs are done or running."""
        with lock:
            good = sum(not pair.disturbed for pair in done)
            if failures or good + claimed["running"] >= repeat or claimed["next"] >= repeat + reruns:
                return None
            claimed["next"] += 1
            claimed["running"] += 1
            return claimed["next"] - 1

    def lane(lane_cpus: set[int] | None) -> None:
        while (p := claim()) is not None:
            try:
                pair = run_one(p, lane_cpus)
            except BaseException as exc:  # the first failure ends the job: the other lanes' workers are stopped
                with lock:
                    first = not failures
                    failures.append(exc)
                    everyone = [w for workers in started_pairs for w in workers.values()]
                if first and job.lanes > 1:
                    stop(everyone)
                return
            with lock:
                done.append(pair)
                claimed["running"] -= 1

    try:
        with coordinator_pinned(job.coordinator_cpus):
            if job.lanes == 1:
                lane(job.worker_cpus)
            else:
                lanes = [threading.Thread(target=lane, args=(cpus,), name=f"ab-lane-{i + 1}", daemon=True)
                         for i, cpus in enumerate(job.lane_cpus)]
                for t in lanes:
                    t.start()
                for t in lanes:
                    t.join()
        if failures:
            raise failures[0]
    finally:
        stop([w for workers in started_pairs for w in workers.values()])
    return sorted(done, key=lambda pair: pair.index)


TIME_PARTS = (("startup_s", "start-up (imports, collection)"),
              ("single_round_s", "first calls and cold compiles (set-ups and calls)"),
              ("setup_s", "interleaved tests' set-up, calibration and warm-up"),
              ("rounds_s", "timing rounds"),
              ("rest_s", "between tests and exit"))


def time_split(pairs: list[Pair]) -> dict | None:
    """Where an interleaved pair's wall time goes, in seconds: the median over ``pairs`` of each part
    (TIME_PARTS; together they make up the pair), and the tests that cost most. None without timelines."""
    parts: dict[str, list[float]] = {key: [] for key, _ in TIME_PARTS}
    totals, per_test = [], {}
    rounded = {it.nodeid for pair in pairs for it in pair.interleaved if not it.calls}  # steady-state rounds
    for pair in pairs:
        line = pair.timeline
        if not line:
            continue
        tests = line["tests"]
        single = sum(t for n, (t, _) in tests.items() if n not in rounded)
        setup = sum(t - r for n, (t, r) in tests.items() if n in rounded)
        rounds = sum(r for n, (_, r) in tests.items() if n in rounded)
        for key, value in (("startup_s", line["startup_s"]), ("single_round_s", single), ("setup_s", setup),
                           ("rounds_s", rounds),
                           ("rest_s", line["total_s"] - line["startup_s"] - single - setup - rounds)):
            parts[key].append(value)
        totals.append(line["total_s"])
        for name, (seconds, _) in tests.items():
            per_test.setdefault(name, []).append(seconds)
    if not totals:
        return None
    costliest = sorted(((float(np.median(v)), n) for n, v in per_test.items()), reverse=True)[:5]
    return {"pair_s": round(float(np.median(totals)), 1),
            **{key: round(float(np.median(v)), 1) for key, v in parts.items()},
            "costliest": [[n.split("::")[-1], round(t, 1)] for t, n in costliest]}


KINDS = ("interleaved", "interleaved calls", "one interleaved call", "per process")
# A side's figure for interleaved calls: the mean of its calls. Nine calls of a first call scatter by 9-16%
# within a process and are lopsided (a fresh set-up sometimes leaves a slow call): their median jumps
# between the modes. In two A/A jobs of 8 pairs at 9 calls a side their spread between pairs was 5.3-5.8%
# for the median, 3.9% for the mean without the fastest and slowest call, 3.6% for the mean (docs/gate.md).


def process_figure(bench, kind: str) -> float:
    """One process's figure for the verdict: its median; for interleaved calls (``ab_calls_s``, written
    by the plugin), the mean of its calls. Runs without them (kept before) give their median."""
    calls = bench.extra_info.get("ab_calls_s") if kind == "interleaved calls" else None
    if isinstance(calls, list) and len(calls) >= 2 and all(isinstance(x, (int, float)) and x > 0 for x in calls):
        return float(np.mean(calls))
    return bench.median


def call_kind(calls_a_side: int) -> str:
    """A pedantic benchmark's kind: several interleaved calls a side (a first call, judged on their mean), or
    one (a cold compile: a single 2-5 s call a side spreads 10-60% between pairs; in the calls' stratum it
    had widened their prior and, at 4-6 pairs, made most of the A/A sub-jobs' false alarms: docs/gate.md)."""
    return "interleaved calls" if calls_a_side > 1 else "one interleaved call"


def measurement_kinds(pairs: list[Pair]) -> dict[str, str]:
    """Per benchmark: "interleaved" (its timing rounds alternated A/B), "interleaved calls" (a first call:
    a fresh set-up and one call per round, A's and B's calls alternating), "one interleaved call" (a cold
    compile: one such call a side) or "per process" (run whole in its turn). They are different
    measurements (about 1-2% spread between pairs, 3-10%, 10-60%, 10-100%), so the verdict's variance prior
    is fitted on each kind apart (benchruns/stats.py's strata; a kind of fewer than 8 benchmarks shares the
    job's)."""
    by_test = {it.nodeid.split("::")[-1]: call_kind(it.rounds) if it.calls else "interleaved"
               for pair in pairs for it in pair.interleaved}
    kinds = {}
    for pair in pairs:
        for run in pair.runs.values():
            for name, bench in run.benchmarks.items():
                kinds.setdefault(name, by_test.get(bench.fullname.split("::")[-1], "per process"))
    return kinds


def tag_interleaving(cmp, pairs: list[Pair], kinds: dict[str, str]) -> None:
    """Say in the table which benchmarks were not interleaved (judged per process; ``kinds`` from
    measurement_kinds) and which do their work in other processes (DataLoader or distributed workers:
    those share the pinned core with the workers)."""
    by_name = {}
    for pair in pairs:
        for side, run in pair.runs.items():
            for name, bench in run.benchmarks.items():
                by_name.setdefault(name, bench)
    calls = {it.nodeid.split("::")[-1]: it.rounds for pair in pairs for it in pair.interleaved if it.calls}
    broke = sorted({(side, it.nodeid) for pair in pairs for it in pair.interleaved for side in it.failed})
    for side, nodeid in broke:
        cmp.notes.append(f"note: side {side}: {nodeid} raised during its timing rounds (see the worker log, "
                         "--keep); it is not judged")
    off = {side: state for pair in pairs for side, state in pair.interleave_state.items() if state != "on"}
    for side, state in sorted(off.items()):
        cmp.notes.append(f"note: side {side} could not interleave ({state}): its benchmarks ran whole per turn")
    for row in cmp.rows:
        bench = by_name.get(row.fullname)
        if bench is None:
            continue
        if kinds.get(row.fullname) == "per process":
            cmp.tags[row.fullname] = "per process: not interleaved"
        elif kinds.get(row.fullname) == "one interleaved call":
            cmp.tags[row.fullname] = "one interleaved call a side, after a fresh set-up"
        elif kinds.get(row.fullname) == "interleaved calls":
            rounds = calls.get(bench.fullname.split("::")[-1], "?")
            cmp.tags[row.fullname] = (f"interleaved calls: {rounds} a side, each after a fresh set-up"
                                      + ("; judged on their mean" if "ab_calls_s" in bench.extra_info else ""))
        elif any((bench.params or {}).get(key) or bench.extra_info.get(key) for key in ("num_workers", "workers")):
            cmp.tags[row.fullname] = "interleaved; its work runs in worker processes"


def write_record(path: Path, args, cmp, code: int, wall: float, pairs: list[Pair], used: list[Pair],
                 job: Plan | None = None) -> None:
    """The job's summary (for the docs' table of real jobs): verdict, flags, MDEs, wall time, loads."""
    rows = cmp.rows
    record = {
        "base": args.base_ref or args.base_python, "cand": "working tree", "k": args.k,
        "design": job.design if job else DEFAULT_DESIGN, "turn_time": job.turn_time if job else DEFAULT_TURN_TIME,
        "round_time": job.round_time if job else None, "threads": job.threads if job else None,
        "lanes": job.lanes if job else 1, "calls": job.calls if job else None,
        "plan": job.describe() if job else "", "tags": cmp.tags,
        "pairs": len(used), "disturbed_pairs": sum(p.disturbed for p in pairs), "exit": code,
        "included_disturbed": bool(getattr(args, "include_disturbed", False)),
        "verdict": {0: "passed", 1: "FAILED"}.get(code, "not decided"),
        "benchmarks": len(rows), "flagged": [r.name for r in rows if r.verdict == "slower"],
        "gateable": sum(r.gateable for r in rows), "median_mde": float(np.median([r.mde for r in rows])) if rows else None,
        "ratios": {r.name: [round(r.ratio, 4), None if not np.isfinite(r.mde) else round(r.mde, 4), r.verdict]
                   for r in rows},
        "wall_s": round(wall, 1), "loads": [p.load for p in pairs],
        "machine": {k: used[0].runs["B"].machine_info.get(k) for k in ("cpu_model", "cpu_count", "threads",
                                                                        "torch_version", "tensorflow_version")}
        if used else {},
        "base_versions": {k: used[0].runs["A"].machine_info.get(k) for k in ("torch_version", "tensorflow_version")}
        if used else {},
        "commit": (used[0].runs["B"].commit_info or {}).get("id", "")[:7] if used else "",
        "time_split": time_split(used),
    }
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


KINDS_FILE = "kinds.json"  # in a --keep folder: each benchmark's measurement kind, as ab judged it


def keep_files(tmp: Path, keep: str | None) -> None:
    """Copy the workers' run JSON and logs to ``keep`` (never into results/: they are A/B material)."""
    if not keep:
        return
    dest = Path(keep)
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(tmp.glob("[AB]*.json")) + sorted(tmp.glob("[AB]*.log")):
        shutil.copy2(path, dest / path.name)


def main(args) -> int:
    from .config import load_thresholds

    started = time.monotonic()
    thresholds = load_thresholds(args.threshold, args.config, not args.no_config)
    if getattr(args, "keep", None) and Path(args.keep).exists() and any(Path(args.keep).iterdir()):
        raise BadInput(f"--keep {args.keep}: exists and is not empty; nothing is overwritten, pass a new folder")
    if getattr(args, "record", None) and Path(args.record).exists():
        raise BadInput(f"--record {args.record}: exists; nothing is overwritten, pass a new file")
    if args.repeat < 2:
        raise BadInput(f"bad --repeat value {args.repeat}: at least 2 worker pairs (3 or more to gate)")
    if not args.base_ref and not args.base_python:
        raise BadInput("nothing to compare against: pass --base-ref REF (e.g. BASE_REF=main) or --base-python PATH")
    # Not resolve(): a venv's python is a symlink, and resolving it would leave the venv.
    python = os.path.abspath(args.python) if os.sep in args.python else args.python
    base_python = args.base_python or args.python
    base_python = os.path.abspath(base_python) if os.sep in base_python else base_python
    for p in {python, base_python}:
        if shutil.which(p) is None:
            raise BadInput(f"{p}: no such interpreter")
    design = getattr(args, "design", DEFAULT_DESIGN)
    lanes = getattr(args, "lanes", None)
    if lanes is not None and design != "interleave" and lanes != 1:
        raise BadInput(f"--lanes {lanes}: only the interleave design runs pairs at once")
    calls = getattr(args, "calls", None)
    if calls is not None and design != "interleave":
        raise BadInput(f"--calls {calls}: only the interleave design alternates first calls")
    job = plan(design, getattr(args, "turn_time", None), getattr(args, "round_time", None),
               getattr(args, "threads", None), lanes, calls)
    here = Path.cwd()
    top_run = _git("rev-parse", "--show-toplevel", cwd=here)
    if top_run.returncode != 0 and args.base_ref:
        raise BadInput(f"{here}: not a git repository; use --base-python instead of --base-ref")
    tmp = Path(tempfile.mkdtemp(prefix="benchruns-ab-"))
    top = Path(top_run.stdout.strip()) if top_run.returncode == 0 else None
    added: list[Path] = []
    try:
        if top is not None:
            base_commit = None
            if args.base_ref:
                ref = _git("rev-parse", "--verify", "--quiet", f"{args.base_ref}^{{commit}}", cwd=top)
                if ref.returncode != 0:
                    raise BadInput(f"--base-ref {args.base_ref!r}: not a commit in {top}")
                base_commit = ref.stdout.strip()
            state = working_state(top)
            for side, commit in (("A", base_commit or state), ("B", state)):
                add_worktree(top, tmp / side, commit, f"side {side}")
                added.append(tmp / side)
                if side == "B" or base_commit is None:
                    copy_untracked(top, tmp / side)
            sides = {"A": (base_python, tmp / "A"), "B": (python, tmp / "B")}
        else:  # --base-python outside git: both sides run this folder
            sides = {"A": (base_python, here), "B": (python, here)}
        probe_off, job.probe = probe_args({side: cwd for side, (_, cwd) in sides.items()})
        extra = probe_off + list(getattr(args, "pytest_args", None) or [])
        pairs = execute(sides, args.repeat, args.profile, args.k, tmp, extra, job=job,
                        reruns=0 if getattr(args, "include_disturbed", False) else MAX_RERUNS)
    finally:
        for path in added:
            _git("worktree", "remove", "--force", str(path), cwd=top)
        keep_files(tmp, getattr(args, "keep", None))
        shutil.rmtree(tmp, ignore_errors=True)
    label_a = f"A ({args.base_ref or base_python})"
    label_b = f"B (working tree, {python})"
    include = getattr(args, "include_disturbed", False)
    used = [pair for pair in pairs if include or not pair.disturbed]
    disturbed = [pair for pair in pairs if pair.disturbed]
    if len(used) < 2:
        why = "; ".join(f"pair {pair.index + 1}: {machine_load.status(pair.load)[1]}" for pair in disturbed)
        strict = getattr(args, "strict", False)
        print(f"gate NOT DECIDED: {len(disturbed)} of {len(pairs)} worker pairs were disturbed by other processes "
              f"({why}); run again on a quiet machine" + (" (--strict: exit 2)" if strict else ""))
        return 2 if strict else 0
    kinds = measurement_kinds(used) if job.design == "interleave" else None
    if kinds is not None and getattr(args, "keep", None):  # ab-aa judges kept pairs by the same strata
        (Path(args.keep) / KINDS_FILE).write_text(json.dumps({"kinds": kinds}, indent=1) + "\n", encoding="utf-8")
    figures = {name: functools.partial(process_figure, kind=kind) for name, kind in (kinds or {}).items()
               if kind == "interleaved calls"}
    cmp = compare.build([pair.runs["A"] for pair in used], [pair.runs["B"] for pair in used], thresholds, args.alpha,
                        paired=True, base_label=label_a, cand_label=label_b, strata=kinds, figures=figures)
    if kinds is not None:
        tag_interleaving(cmp, used, kinds)
    if disturbed:
        cmp.notes.insert(0, f"note: {len(disturbed)} disturbed pair(s) "
                         + ("kept (--include-disturbed)" if include else "left out of the verdict") + ": "
                         + "; ".join(f"pair {pair.index + 1} ({machine_load.status(pair.load)[1].split(';')[0]})"
                                     for pair in disturbed))
    for note in cmp.notes:
        print(note, file=sys.stderr)
    text, code = gate.report(cmp, args.format, getattr(args, "strict", False))
    print(text)
    wall = time.monotonic() - started
    if getattr(args, "record", None):
        write_record(Path(args.record), args, cmp, code, wall, pairs, used, job)
    split = time_split(used)
    if split:
        print("ab: a pair's time (median of pairs): " + ", ".join(
            f"{label} {split[key]:.0f} s" for key, label in TIME_PARTS) + f"; {split['pair_s']:.0f} s in all")
    print(f"ab: {len(used)} worker pairs judged ({len(disturbed)} disturbed), {job.describe()}; "
          f"wall time {minutes_text(wall)}", flush=True)
    return code
