"""Size and install time of the suite's environments, measured, for docs/installing.md.

``python -m benchruns.studies.installtime --out docs/data/install.json [--env default] [--env pypi]``
builds each environment afresh in a temporary folder with the same command the Makefile
uses, times it (wall clock), measures its size on disk (``du``-style, bytes of every file),
and meters the machine's load around it (benchruns/load.py): a measurement beside other
work is marked disturbed and the docs refuse it. Downloads come from wherever pip finds
them at that moment (its cache, this machine's local wheel folders, PyPI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .. import load as machine_load
from ..argparsing import Parser
from .figures import commit as checkout_commit
from .figures import this_machine

ROOT = Path(__file__).resolve().parents[2]
# name -> (what it is, pip arguments after `pip install`)
ENVS = {
    "default": ("`make` bootstrap (.venv): requirements.txt with this machine's pip configuration",
                ["-r", str(ROOT / "requirements.txt")]),
    "pypi": ("`make venv-pypi` (.venv-pypi): requirements.txt as PyPI serves it (pip --isolated)",
             ["--isolated", "-r", str(ROOT / "requirements.txt")]),
}


def folder_bytes(path: Path) -> int:
    total = 0
    for base, _, files in os.walk(path):
        for name in files:
            full = os.path.join(base, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def measure(name: str, python: str = sys.executable) -> dict:
    what, pip_args = ENVS[name]
    tmp = Path(tempfile.mkdtemp(prefix=f"benchruns-install-{name}-"))
    try:
        meter = machine_load.LoadMeter()
        meter.open()
        started = time.monotonic()
        subprocess.run([python, "-m", "venv", str(tmp / "env")], check=True)
        proc = subprocess.run([str(tmp / "env" / "bin" / "python"), "-m", "pip", "install", "--quiet", *pip_args],
                              capture_output=True, text=True)
        wall = time.monotonic() - started
        meter.close()
        if proc.returncode != 0:
            raise SystemExit(f"installtime: pip failed for {name}: {proc.stderr.strip().splitlines()[-1:]}")
        torch = subprocess.run([str(tmp / "env" / "bin" / "python"), "-c",
                                "import importlib.metadata as m; print(m.version('torch'))"],
                               capture_output=True, text=True).stdout.strip()
        return {"env": name, "what": what, "install_s": round(wall, 1), "size_bytes": folder_bytes(tmp / "env"),
                "torch": torch, "load": meter.record()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def table(results: list[dict], commit: str) -> dict:
    quiet = all(machine_load.status(r["load"])[0] == "undisturbed" for r in results)
    return {"source": "`python -m benchruns.studies.installtime --out docs/data/install.json`",
            "machine": this_machine(), "commit": commit,
            "load": "undisturbed" if quiet else "disturbed",
            "columns": ["environment", "torch build", "installed size", "install time"],
            "rows": [[r["what"], r["torch"], f"{r['size_bytes'] / 1e9:.1f} GB", f"{r['install_s']:.0f} s"]
                     for r in results]}


def main(argv=None) -> int:
    p = Parser(prog="python -m benchruns.studies.installtime", description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--env", action="append", choices=sorted(ENVS), help="environments to measure (default: all)")
    args = p.parse_args(argv)
    commit = checkout_commit(ROOT, allow_dirty=True)
    results = [measure(name) for name in (args.env or sorted(ENVS))]
    doc = table(results, commit)
    doc["raw"] = results
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    for r in results:
        print(f"{r['env']}: {r['install_s']:.0f} s, {r['size_bytes'] / 1e9:.2f} GB, torch {r['torch']}, "
              f"{machine_load.status(r['load'])[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
