"""Was the machine busy while the benchmarks ran? The run's load record.

Runs taken beside other work (a test suite, a build, another benchmark) were 1.4-2.4x
slower and four times noisier on the 2-core VM, and nothing flagged them. So every
measuring window (one benchmark's call in the harness, one turn in ``ab``) is bracketed
by two readings of ``/proc``:

* the machine's busy and steal CPU time (``/proc/stat``);
* the CPU time of the measured process tree: the measuring process, its threads and its
  descendants (DataLoader workers, distributed workers); a reaped child's time moves into
  its parent's ``cutime``, so it is never lost;
* every other process's CPU time, to name the busiest ones;
* pressure stall totals (PSI) for CPU and memory, where the kernel has them.

Others' CPU time is the machine's busy time less the tree's. Summed over all windows and
divided by their wall time it is the share of a core that other processes took while
benchmarks ran; above ``THRESHOLD_CORES`` (or with that much steal) the run is
**disturbed**. pyperf's ``system show`` checks a machine before a run; this measures
during it, at window boundaries only (no sampling thread competes with the benchmark).

Framework-free and Linux-only: elsewhere the record says ``unavailable`` and the run
counts as unrecorded.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = 1
# Other processes may take this share of one core, averaged over the benchmark windows,
# before a run is disturbed. Idle, the 2-core VM's kernel threads and daemons took 0.006-0.09 (mean 0.03)
# in 5 s windows.
THRESHOLD_CORES = 0.10
# A single window is flagged above this share: one clock tick (10 ms) in a 0.1 s window
# is already 0.1 core, so the per-benchmark flag is coarser than the run's.
BENCH_THRESHOLD_CORES = 0.25
BENCH_MIN_WINDOW_S = 0.2  # shorter windows are too coarse to flag on their own
TOP_OTHERS = 5

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


def available() -> bool:
    return (_PROC / "stat").is_file() and (_PROC / "self" / "stat").is_file()


@dataclass
class Snapshot:
    """One reading of the machine at a window boundary (CPU times in seconds)."""

    wall: float
    busy: float
    steal: float
    processes: dict[int, tuple[str, int, float, float, int]]  # pid -> (name, ppid, cpu, reaped children's cpu, start)
    psi: dict[str, float]

    def tree_cpu(self, roots: set[int]) -> float:
        """CPU seconds of ``roots`` and their live descendants, reaped children included."""
        return sum(self.processes[pid][2] + self.processes[pid][3] for pid in self.tree(roots))

    def tree(self, roots: set[int]) -> set[int]:
        """``roots`` (those still alive) and all their live descendants."""
        children: dict[int, list[int]] = {}
        for pid, (_, ppid, *_) in self.processes.items():
            children.setdefault(ppid, []).append(pid)
        out, stack = set(), [p for p in roots if p in self.processes]
        while stack:
            pid = stack.pop()
            if pid not in out:
                out.add(pid)
                stack.extend(children.get(pid, ()))
        return out


def _read_stat_line() -> tuple[float, float]:
    with open(_PROC / "stat", encoding="ascii") as fh:
        fields = fh.readline().split()
    # cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    values = [int(v) for v in fields[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = values[:7]
    steal = values[7] if len(values) > 7 else 0
    return (user + nice + system + irq + softirq) / _TICK, steal / _TICK


def _read_processes() -> dict[int, tuple[str, int, float, float, int]]:
    out = {}
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                raw = fh.read().decode("utf-8", "replace")
        except OSError:  # the process ended between listing and reading
            continue
        # comm may hold spaces and parentheses: split on the last ')'
        head, _, tail = raw.rpartition(")")
        name = head.partition("(")[2]
        if name.startswith("kworker/"):  # a kernel worker renames itself after its current job
            name = "kworker"
        rest = tail.split()
        try:
            ppid = int(rest[1])
            utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
            start = int(rest[19])
        except (IndexError, ValueError):
            continue
        out[int(entry.name)] = (name, ppid, (utime + stime) / _TICK, (cutime + cstime) / _TICK, start)
    return out


def _read_psi() -> dict[str, float]:
    """Stall seconds so far (PSI 'some' totals); empty where the kernel has no PSI."""
    psi = {}
    for resource_name in ("cpu", "memory"):
        try:
            text = (_PROC / "pressure" / resource_name).read_text(encoding="ascii")
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("some"):
                total = dict(part.split("=") for part in line.split()[1:]).get("total")
                if total is not None:
                    psi[resource_name] = int(total) / 1e6
    return psi


def snapshot() -> Snapshot:
    busy, steal = _read_stat_line()
    return Snapshot(time.monotonic(), busy, steal, _read_processes(), _read_psi())


@dataclass
class Window:
    """What one measuring window saw: wall seconds and CPU seconds by whom."""

    wall_s: float
    own_cpu_s: float
    other_cpu_s: float
    steal_s: float
    psi_s: dict[str, float]
    others: dict[tuple[int, str], float]

    @property
    def other_cores(self) -> float:
        return self.other_cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def steal_cores(self) -> float:
        return self.steal_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def disturbed(self) -> bool:
        return self.wall_s >= BENCH_MIN_WINDOW_S and (
            self.other_cores > BENCH_THRESHOLD_CORES or self.steal_cores > BENCH_THRESHOLD_CORES)

    def summary(self) -> dict:
        return {"window_s": round(self.wall_s, 4), "other_cores": round(self.other_cores, 4),
                "steal_cores": round(self.steal_cores, 4), "disturbed": self.disturbed}


def between(start: Snapshot, end: Snapshot, roots: set[int]) -> Window:
    """The window from ``start`` to ``end`` for the process tree under ``roots``."""
    wall = max(end.wall - start.wall, 0.0)
    # A process of the tree at either end belongs to it (workers start and end inside windows).
    tree = start.tree(roots) | end.tree(roots)
    own = max(end.tree_cpu(roots) - start.tree_cpu(roots), 0.0)
    busy = max(end.busy - start.busy, 0.0)
    others: dict[tuple[int, str], float] = {}
    for pid, (name, _, cpu, _, started) in end.processes.items():
        if pid in tree:
            continue
        before = start.processes.get(pid)
        used = cpu - before[2] if before and before[4] == started else cpu  # same pid, same process
        if used > 0:
            others[(pid, name)] = used
    return Window(
        wall_s=wall,
        own_cpu_s=own,
        other_cpu_s=max(busy - own, 0.0),
        steal_s=max(end.steal - start.steal, 0.0),
        psi_s={k: max(end.psi[k] - start.psi.get(k, end.psi[k]), 0.0) for k in end.psi},
        others=others,
    )


@dataclass
class LoadMeter:
    """Accumulates windows for a process tree (default: this process) into the run's record."""

    roots: set[int] = field(default_factory=lambda: {os.getpid()})
    windows: int = 0
    disturbed_windows: int = 0
    wall_s: float = 0.0
    own_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    steal_s: float = 0.0
    psi_s: dict[str, float] = field(default_factory=dict)
    others: dict[tuple[int, str], float] = field(default_factory=dict)
    loadavg_start: list[float] | None = None
    last: Window | None = None  # the window closed last
    _open: Snapshot | None = None

    def __post_init__(self):
        self.enabled = available()
        self.loadavg_start = _loadavg()

    def open(self) -> None:
        if self.enabled:
            self._open = snapshot()

    def close(self) -> Window | None:
        """End the open window, add it to the totals and return it (None when unavailable)."""
        if not self.enabled or self._open is None:
            return None
        window = between(self._open, snapshot(), self.roots)
        self._open = None
        self.add(window)
        self.last = window
        return window

    @contextlib.contextmanager
    def measuring(self, roots: set[int] | None = None):
        """One window around the block, for the tree under ``roots`` (default: as before); see ``last``."""
        if roots is not None:
            self.roots = set(roots)
        self.last = None
        self.open()
        try:
            yield self
        finally:
            self.close()

    def add(self, window: Window) -> None:
        self.windows += 1
        self.disturbed_windows += window.disturbed
        self.wall_s += window.wall_s
        self.own_cpu_s += window.own_cpu_s
        self.other_cpu_s += window.other_cpu_s
        self.steal_s += window.steal_s
        for key, value in window.psi_s.items():
            self.psi_s[key] = self.psi_s.get(key, 0.0) + value
        for key, value in window.others.items():
            self.others[key] = self.others.get(key, 0.0) + value

    def record(self) -> dict:
        """The run's ``load`` record (see ``judge`` for the verdict it carries)."""
        if not self.enabled:
            return {"schema": SCHEMA, "available": False, "why": "no /proc here: the machine's load is unknown"}
        wall = self.wall_s or 1e-9
        busiest = sorted(self.others.items(), key=lambda kv: -kv[1])[:TOP_OTHERS]
        rec = {
            "schema": SCHEMA,
            "available": True,
            "threshold_cores": THRESHOLD_CORES,
            "windows": self.windows,
            "benchmarks_s": round(self.wall_s, 3),
            "own_cores": round(self.own_cpu_s / wall, 4),
            "other_cores": round(self.other_cpu_s / wall, 4),
            "steal_cores": round(self.steal_s / wall, 4),
            "psi_some_s": {k: round(v, 3) for k, v in self.psi_s.items()},
            "loadavg_start": self.loadavg_start,
            "loadavg_end": _loadavg(),
            "disturbed_benchmarks": self.disturbed_windows,
            "busiest_others": [{"pid": pid, "name": name, "cpu_s": round(cpu, 2)} for (pid, name), cpu in busiest],
        }
        rec["disturbed"], rec["why"] = judge(rec)
        return rec


def judge(rec: dict) -> tuple[bool, str]:
    """(disturbed, one-line reason) for a load record; the reason is empty when undisturbed."""
    limit = rec.get("threshold_cores", THRESHOLD_CORES)
    reasons = []
    if rec.get("other_cores", 0) > limit:
        reasons.append(f"other processes used {rec['other_cores']:.2f} of a core while benchmarks ran "
                       f"(limit {limit:.2f})")
    if rec.get("steal_cores", 0) > limit:
        reasons.append(f"the hypervisor stole {rec['steal_cores']:.2f} of a core (limit {limit:.2f})")
    disturbed = bool(reasons)
    if disturbed and rec.get("busiest_others"):
        reasons.append(f"busiest: {busiest_text(rec)}")
    return disturbed, "; ".join(reasons)


def busiest_text(rec: dict, top: int = 3) -> str:
    return ", ".join(f"{o['name']} (pid {o['pid']}) {o['cpu_s']:.1f} s" for o in rec.get("busiest_others", [])[:top])


def status(rec) -> tuple[str, str]:
    """("undisturbed" | "disturbed" | "unrecorded", reason) of a run's ``load`` value."""
    if not isinstance(rec, dict) or not rec.get("available", False) or "disturbed" not in rec:
        why = rec.get("why") if isinstance(rec, dict) else None
        return "unrecorded", why or "the run has no load record (made before the suite measured the machine's load)"
    if rec["disturbed"]:
        return "disturbed", str(rec.get("why") or "disturbed")
    return "undisturbed", ""


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def own_rusage_s() -> float:
    """CPU seconds of this process and its reaped children (a cross-check for tests)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
