"""Workloads written twice (torch_models.py, tf_models.py) from one set of numpy weights
(specs.py), the steps of each graph mode (torch_runner.py, tf_runner.py) and the
parity check that proves both sides compute the same function (parity.py).

Only specs.py is framework-free; import a runner only where its framework is present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .specs import WORKLOADS, Workload, make_batch, make_weights  # noqa: F401

PASSES = ("inference", "train")


class UnsupportedMode(Exception):
    """This framework's mode cannot express this workload; the case skips with the reason."""


@dataclass
class Case:
    """One workload in one mode and pass, ready to run.

    ``step()`` runs one inference or training step on bound inputs and returns its
    output (the loss for training); ``graph_count()`` counts traces or compiles so far,
    so a retrace or recompile during timing can be caught. ``provenance`` says where a
    compiled artifact came from once the first step has run (``aoti_package``: compiled,
    this process or store), for the run's record.
    """

    step: Callable[[], Any]
    graph_count: Callable[[], int]
    module: Any = None
    model: Any = None
    provenance: dict = field(default_factory=dict)
