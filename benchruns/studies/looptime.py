"""looptime: how long a contributor waits, as a docs data table.

``python -m benchruns.studies.looptime --out docs/data/contributor_loop.json``

Runs, one after the other, in this checkout and with its .venv as it is, ``make test`` and
``make bench PROFILE=quick`` (its run saved into a temporary folder, not results/), and
times each by wall clock inside a load window (benchruns/load.py): work by other
processes while they run marks the table disturbed, and ``python -m benchruns docs``
refuses it. Before each command it times the reference probe (benchruns/probe.py) for about
0.2 s: this VM's speed drifts by tens of percent by the hour, and the probe's median call says
at which speed a row ran. The table names its command, machine, commit (a modified checkout is refused
unless --allow-dirty) and load, like the producers in figures.py. A command that fails
writes nothing. ``--command LABEL=COMMAND`` (repeatable) times other commands instead.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from .. import load as machine_load
from .. import probe
from ..durations import minutes_text
from ..argparsing import Parser
from ..runs import BadInput
from .figures import ROOT, commit, load_of, measured_child, source_text, table_doc, this_machine, write_table

PROG = "python -m benchruns.studies.looptime"
# label -> command; {tmp} is a fresh temporary folder
LOOP = {
    "make test": "make test",
    "make bench PROFILE=quick": "make bench PROFILE=quick RESULTS={tmp}",
}
# pytest's closing line, e.g. "==== 380 passed, 4 skipped, 2 deselected in 61.20s (0:01:01) ===="
PYTEST_SUMMARY = re.compile(r"^=+ (?P<counts>\d+ \w+(?:, \d+ \w+)*) in [\d.]+s")


# Calls of the reference probe timed before each command: about 0.2 s here. This VM's speed drifts by
# tens of percent from one hour to the next (the same make test took 3 min 51 s and, later the same day, a
# clean clone's whole .ci/run 3 min 30 s), so a wall time says little without the speed it ran at.
PROBE_CALLS = 2000
COLUMNS = ["command", "wall time", "pytest says", "reference probe before it (µs a call)"]


def machine_speed(calls: int = PROBE_CALLS) -> float:
    """The reference probe's median call in µs, timed now (benchruns/probe.py): lower is a faster machine."""
    return probe.median_call_s(calls) * 1e6


def pytest_counts(output: str) -> str:
    """Every pytest closing line in a command's output, its counts only, joined: what the time covered."""
    found = [m.group("counts") for m in (PYTEST_SUMMARY.match(line) for line in output.splitlines()) if m]
    return "; ".join(found) if found else "–"


def parse_commands(given: list[str] | None) -> dict[str, str]:
    if not given:
        return dict(LOOP)
    commands = {}
    for item in given:
        label, eq, command = item.partition("=")
        if not eq or not label.strip() or not command.strip():
            raise BadInput(f"bad --command {item!r}: LABEL=COMMAND, e.g. 'make test=make test'")
        try:
            program = shlex.split(command)[0]
        except ValueError as exc:
            raise BadInput(f"bad --command {item!r}: {exc}") from None
        # checked before anything is timed: a later command that cannot start would throw away the
        # minutes already spent (a label holding "=" splits early: "make bench PROFILE=quick=...")
        if shutil.which(program) is None:
            raise BadInput(f"bad --command {item!r}: {label.strip()}: cannot start {program!r} (no such program; "
                           "LABEL=COMMAND splits at the first '=')")
        commands[label.strip()] = command.strip()
    return commands


def time_commands(commands: dict[str, str], cwd: Path, meter: machine_load.LoadMeter, log=print) -> list[list[str]]:
    """One row per command: label, wall time, pytest's counts and the machine's speed just before it (the
    reference probe, untimed by the wall clock). RuntimeError when one fails."""
    rows = []
    for label, command in commands.items():
        speed = machine_speed()
        with tempfile.TemporaryDirectory(prefix="looptime-") as tmp:
            argv = shlex.split(command.replace("{tmp}", tmp))
            log(f"{PROG}: {label}: {shlex.join(argv)}")
            with meter.measuring():
                try:
                    wall, _, code, output = measured_child(argv, cwd)
                except OSError as exc:
                    raise BadInput(f"{label}: cannot start {argv[0]!r} ({exc.strerror})") from None
        if code != 0:
            tail = "\n".join(output.splitlines()[-15:])
            raise RuntimeError(f"{label} exited {code}; nothing written. Its last lines:\n{tail}")
        log(f"{PROG}: {label}: {minutes_text(wall)}")
        rows.append([f"`{label}`", minutes_text(wall), pytest_counts(output), f"{speed:.1f}"])
    return rows


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="docs/data/contributor_loop.json", help="the table to write")
    p.add_argument("--command", action="append", metavar="LABEL=COMMAND",
                   help="time COMMAND (run without a shell, from the checkout) under LABEL instead of the loop")
    p.add_argument("--allow-dirty", action="store_true",
                   help="measure a checkout with modified tracked files; the commit reads <sha>-dirty")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    prog = "benchruns looptime"
    try:
        commands = parse_commands(args.command)
        sha = commit(ROOT, args.allow_dirty)
        meter = machine_load.LoadMeter()
        rows = time_commands(commands, ROOT, meter)
    except BadInput as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing written", file=sys.stderr)
        return 130
    status, why, rec = load_of(meter)
    title = ("Wall time of each command, run one after the other in a checkout whose .venv is built (the "
             "inductor and dataset caches as earlier runs left them); the quick run saved to a temporary folder.")
    doc = table_doc(source_text(PROG, argv), this_machine(), sha, status, COLUMNS,
                    rows, title, load_record=rec, **({"load_why": why} if why else {}))
    write_table(args.out, doc, prog)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
