"""Help texts tell the truth: the counts and command lists they state match the code."""

from __future__ import annotations

import re

from benchruns import cli
from benchruns.claims import CLAIMS
from benchruns.report import build_parser as report_parser


def _subcommands() -> set[str]:
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return set(sub.choices)


def test_report_help_counts_the_claims_it_judges():
    assert f"on {len(CLAIMS)} common" in report_parser().description


def test_cli_doc_names_every_command_once():
    """cli.py's docstring (the top of ``python -m benchruns --help``) lists each command exactly once."""
    listed = [word.strip() for group in re.findall(r"\(([a-z,\s-]+)\)", cli.__doc__) for word in group.split(",")]
    assert sorted(listed) == sorted(_subcommands())
