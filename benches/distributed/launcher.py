"""Start N worker processes as users do, watch them, and never leave one behind.

``run_workers`` starts one process per rank (``subprocess.Popen``, each in its own
session so a terminal Ctrl-C reaches only the coordinator, which then kills them all;
each also gets ``PR_SET_PDEATHSIG`` so it dies if the coordinator is killed outright,
and SIGINT back at its default, which a shell's background job would otherwise pass on as ignored).
stdout and stderr go to files, never pipes, so a chatty worker cannot block. The
coordinator polls; the first worker that exits non-zero, or the deadline passing,
kills every sibling and raises ``WorkerFailure`` naming the rank with its stderr tail.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]  # the repository: workers import benches from here
TAIL_LINES = 20
POLL_S = 0.02
PORT_RETRIES = 2  # a port chosen free can be taken before the worker binds it
WORKDIR_PREFIX = "tfpt-dist-"  # + the coordinator's pid: a later launch removes the folders of dead ones
_PR_SET_PDEATHSIG = 1


class WorkerFailure(Exception):
    """A worker crashed or timed out; its siblings were killed. The message names it and has its stderr tail."""


@dataclass
class Finished:
    """Every worker's exit, output files and wall-clock launch time (``time.time()``)."""

    launched_at: float
    workdir: Path
    returncodes: list[int]
    stderr: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def outputs(self) -> list[dict]:
        """Each rank's result JSON (``out-<rank>.json`` in the work folder)."""
        return [json.loads((self.workdir / f"out-{rank}.json").read_text()) for rank in range(len(self.returncodes))]


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports on 127.0.0.1 that were free a moment ago (bound together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def torch_env(rank: int, world: int, port: int) -> dict[str, str]:
    """What ``torchrun`` sets for a worker (env:// rendezvous), on loopback only."""
    return {"MASTER_ADDR": HOST, "MASTER_PORT": str(port), "RANK": str(rank), "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world), "LOCAL_WORLD_SIZE": str(world), "GLOO_SOCKET_IFNAME": "lo"}


def tf_env(rank: int, ports: list[int]) -> dict[str, str]:
    """``TF_CONFIG`` for worker ``rank`` of a cluster of one worker per port on 127.0.0.1."""
    cluster = {"worker": [f"{HOST}:{p}" for p in ports]}
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": rank}})}


def default_sigint() -> None:
    """In a child before exec: SIGINT acts again (a ``preexec_fn``).

    A command started in the background by a non-interactive shell (``nohup make test &``)
    inherits SIGINT ignored, and exec keeps it ignored, so a worker, or a coordinator a test
    starts, would shrug off the SIGINT meant to stop it. The coordinator's own disposition is
    left as it came: ignoring SIGINT there is the user's choice, and PR_SET_PDEATHSIG still
    takes the workers down with it.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _prepare_worker():
    """In the child before exec: default SIGINT, and SIGKILL when the coordinator dies, whatever kills it."""
    default_sigint()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: Ctrl-C cleanup still holds
        pass


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def sweep_orphaned_workdirs(parent: Path) -> list[Path]:
    """Remove the work folders (``tfpt-dist-<coordinator pid>-*``) whose coordinator is gone: one
    killed outright ran no clean-up, and its folder held the workers' outputs and private TMPDIR."""
    removed = []
    for folder in parent.glob(f"{WORKDIR_PREFIX}*-*"):
        pid = folder.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _kill_all(procs) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)  # the worker and anything it started
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)


def run_workers(argvs: list[list[str]], envs: list[dict[str, str]], timeout_s: float,
                workdir: Path | None = None, prefix: list[str] | None = None, private_tmp: bool = False) -> Finished:
    """Run one process per rank to completion; raise ``WorkerFailure`` if any fails or hangs.

    ``argvs[rank]`` is the command, ``envs[rank]`` is added to this process's environment
    (plus ``TFPT_WORKDIR`` and ``TFPT_RANK``), ``prefix`` wraps every command (e.g.
    ``ip netns exec NAME``). ``timeout_s`` bounds each worker's whole life. Workers run
    in ``workdir`` (a fresh temporary folder when None, named after this process; the folders of
    coordinators that died without cleaning up are removed first), where they write ``out-<rank>.json``.
    ``private_tmp``: the workers' TMPDIR is ``workdir/tmp``, gone with ``cleanup()``: what they leave
    in their temporary folder on the way out (``os._exit`` runs no atexit hook) goes with it.
    """
    own_dir = workdir is None
    if own_dir:
        sweep_orphaned_workdirs(Path(tempfile.gettempdir()))
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
    procs: list[subprocess.Popen] = []
    files = []
    launched_at = time.time()
    deadline = time.monotonic() + timeout_s
    try:
        tmp_env = {}
        if private_tmp:
            (workdir / "tmp").mkdir(exist_ok=True)
            tmp_env = {"TMPDIR": str(workdir / "tmp")}
        for rank, (argv, extra) in enumerate(zip(argvs, envs)):
            path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
            env = {**os.environ, **extra, **tmp_env, "PYTHONPATH": path, "TFPT_WORKDIR": str(workdir),
                   "TFPT_RANK": str(rank)}
            out = open(workdir / f"stdout-{rank}.txt", "wb")
            err = open(workdir / f"stderr-{rank}.txt", "wb")
            files += [out, err]
            procs.append(subprocess.Popen([*(prefix or []), *argv], env=env, cwd=ROOT, stdout=out,
                                          stderr=err, stdin=subprocess.DEVNULL, start_new_session=True,
                                          preexec_fn=_prepare_worker))
        while True:
            codes = [p.poll() for p in procs]
            failed = [r for r, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                rank = failed[0]
                _kill_all(procs)
                raise WorkerFailure(f"worker {rank} of {len(procs)} exited with code {codes[rank]}; siblings killed. "
                                    f"stderr tail:\n{_tail(workdir / f'stderr-{rank}.txt')}")
            if all(c == 0 for c in codes):
                break
            if time.monotonic() > deadline:
                hung = [r for r, c in enumerate(codes) if c is None]
                _kill_all(procs)
                raise WorkerFailure(f"worker(s) {hung} of {len(procs)} still running after {timeout_s:g} s; all killed. "
                                    f"stderr tail of worker {hung[0]}:\n{_tail(workdir / f'stderr-{hung[0]}.txt')}")
            time.sleep(POLL_S)
    except BaseException:  # Ctrl-C or any error in the coordinator: no worker outlives it
        _kill_all(procs)
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        for f in files:
            f.close()
    return Finished(launched_at, workdir, [p.returncode for p in procs],
                    [_tail(workdir / f"stderr-{r}.txt") for r in range(len(procs))])


def launch(framework: str, workers: int, worker_argv: list[str], timeout_s: float, prefix=None,
           env: dict[str, str] | None = None) -> Finished:
    """Run ``worker_argv`` as ``workers`` ranks of ``framework`` (torch or tensorflow) on fresh ports.

    Retries with new ports when a worker reports that its port was taken in between.
    """
    for attempt in range(PORT_RETRIES + 1):
        if framework == "torch":
            port = free_ports(1)[0]
            envs = [torch_env(r, workers, port) for r in range(workers)]
        else:
            ports = free_ports(workers)
            envs = [tf_env(r, ports) for r in range(workers)]
        envs = [{**e, **(env or {})} for e in envs]
        try:
            # TensorFlow's autograph writes a source file per converted function into the temporary folder
            # and deletes them in an atexit hook, which the workers' os._exit skips (worker.py): ten files
            # a launch were left in /tmp. Torch keeps the shared one: inductor's cache lives there.
            return run_workers([worker_argv] * workers, envs, timeout_s, prefix=prefix,
                               private_tmp=framework == "tensorflow")
        except WorkerFailure as exc:
            if attempt < PORT_RETRIES and "ddress already in use" in str(exc):
                continue
            raise
    raise AssertionError("unreachable")


def python_worker(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


# --------------------------------------------------------------------------- slower network


def netns_unavailable() -> str | None:
    """None when this process can make a network namespace with a rate-limited loopback, else why not."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating a network namespace needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    return None


@contextlib.contextmanager
def limited_loopback(gbit: float):
    """A fresh network namespace whose ``lo`` is capped at ``gbit`` Gbit/s by ``tc tbf``.

    Yields the command prefix that runs a process inside it. The bucket holds 2 ms of
    traffic (at least 256 KiB, above loopback's 64 KiB MTU); packets wait up to 200 ms.
    Raises RuntimeError with the tool's message when the namespace cannot be set up.
    """
    name = f"tfpt-{os.getpid()}-{int(gbit * 1000)}"
    rate_bytes = gbit * 1e9 / 8
    burst = max(int(rate_bytes * 0.002), 256 * 1024)

    def ip(*args, check=True):
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
        if check and done.returncode:
            raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")

    ip("netns", "add", name)
    try:
        ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        done = subprocess.run(["ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root", "tbf",
                               "rate", f"{int(gbit * 1000)}mbit", "burst", str(burst), "latency", "200ms"],
                              capture_output=True, text=True, timeout=20)
        if done.returncode:
            raise RuntimeError(f"tc tbf on the namespace's lo failed: {done.stderr.strip()}")
        yield ["ip", "netns", "exec", name]
    finally:
        ip("netns", "del", name, check=False)
