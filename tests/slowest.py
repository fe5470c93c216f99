"""The slowest tests of a ``make test``, read from the JUnit XML files its pytest runs wrote.

``python -m tests.slowest build/test-reports/*.xml [--top 15]``: one list over every
run (parallel, serial, smoke), each test's setup + call + teardown, slowest first. Under
pytest-xdist the numbers come from busy cores, so they rank costs rather than measure them.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def durations(paths: list[Path]) -> list[tuple[float, str]]:
    """(seconds, test id) of every test case in the files; ValueError names a file that is not JUnit XML."""
    found = []
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as exc:
            raise ValueError(f"{path}: not a JUnit XML report ({exc})") from None
        if root.tag not in ("testsuites", "testsuite"):
            raise ValueError(f"{path}: not a JUnit XML report (root element <{root.tag}>)")
        for case in root.iter("testcase"):
            found.append((float(case.get("time") or 0.0), f"{case.get('classname')}::{case.get('name')}"))
    return sorted(found, reverse=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.slowest", description=__doc__)
    p.add_argument("reports", nargs="+", type=Path, help="JUnit XML files (pytest --junitxml)")
    p.add_argument("--top", type=int, default=15, help="how many to list (default 15)")
    args = p.parse_args(argv)
    try:
        rows = durations(args.reports)
    except ValueError as exc:
        print(f"slowest: {exc}", file=sys.stderr)
        return 2
    total = sum(seconds for seconds, _ in rows)
    print(f"slowest {min(args.top, len(rows))} of {len(rows)} tests (setup + call + teardown; "
          f"{total:.0f} s in tests over all runs, on shared cores):")
    for seconds, name in rows[:args.top]:
        print(f"{seconds:8.2f}s  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
