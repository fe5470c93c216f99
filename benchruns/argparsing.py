"""The argument parser every benchruns command uses; below cli.py and the subcommand modules so none imports cli."""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: usage text would bury the message in CI logs."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
