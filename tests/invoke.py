"""``python -m benchruns ...`` for the tests: as a real process, or its main() in the test's process.

A fresh interpreter costs about 0.5 s of imports (numpy, scipy, matplotlib) per call, and the
tests make about a hundred calls. In-process, a call gives the same exit code, stdout and stderr
(argparse's exits included), and an exception that escapes main() fails the test as a traceback
would fail a user. The entry point itself is run as a process where a test says ``process=True``.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def benchruns(*args, cwd=ROOT, process: bool = False, timeout: float | None = None) -> subprocess.CompletedProcess:
    """``python -m benchruns ARGS`` in ``cwd``: exit code, stdout and stderr."""
    argv = [str(a) for a in args]
    if process:
        return subprocess.run([sys.executable, "-m", "benchruns", *argv], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)
    from benchruns.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors, as the process would exit
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return subprocess.CompletedProcess(["benchruns", *argv], code, out.getvalue(), err.getvalue())
