"""Help texts tell the truth: the counts and command lists they state match the code."""

from __future__ import annotations

import re
from pathlib import Path

from benchruns import cli
from benchruns.claims import CLAIMS
from benchruns.report import build_parser as report_parser

ROOT = Path(__file__).resolve().parent.parent


def _subcommands() -> set[str]:
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return set(sub.choices)


def test_report_help_counts_the_claims_it_judges():
    assert f"on {len(CLAIMS)} common" in report_parser().description


def test_cli_doc_names_every_command_once():
    """cli.py's docstring (the top of ``python -m benchruns --help``) lists each command exactly once."""
    listed = [word.strip() for group in re.findall(r"\(([a-z,\s-]+)\)", cli.__doc__) for word in group.split(",")]
    assert sorted(listed) == sorted(_subcommands())


PATH_IN_TEXT = re.compile(r"\b((?:benchruns|benches|tests)/[\w./-]*\w(?:/|\.py|\.toml|\.json)?)")


def _help_texts() -> dict[str, str]:
    """Every command's help as a user sees it: ``python -m benchruns [COMMAND] --help``, and ``make help``."""
    import subprocess
    import sys

    commands = [[]] + [[name] for name in sorted(_subcommands())]
    texts = {}
    for cmd in commands:
        done = subprocess.run([sys.executable, "-m", "benchruns", *cmd, "--help"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        texts[" ".join(["benchruns", *cmd, "--help"])] = done.stdout + done.stderr
    texts["Makefile"] = (ROOT / "Makefile").read_text()
    return texts


def test_every_path_a_help_text_names_exists():
    """A help text that sends the reader to a moved file lies: every benchruns/, benches/, tests/ path exists."""
    stale = []
    for where, text in _help_texts().items():
        for path in PATH_IN_TEXT.findall(" ".join(text.split())):
            if not (ROOT / path.rstrip(".")).exists():
                stale.append(f"{where}: {path}")
    assert not stale, "\n".join(sorted(set(stale)))
