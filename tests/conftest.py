"""Which tests of tests/ run on their own, not beside others (the ``serial`` marker).

``make test`` runs ``tests -m "not serial"`` across the cores (pytest-xdist, in one session with the
smoke cases of benches/), then ``tests -m serial`` in one process. A test is serial when another test running beside it
would change what it checks: it meters the machine's load (a neighbour counts as another
user), times something against a bound or with pytest-benchmark, pins cores, or races worker
processes and ports.
A test that merely fails beside others for any other reason is a bug in the test, not a
candidate for this list.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# module -> why all of its tests run on their own
SERIAL_MODULES: dict[str, str] = {}
# "module::test" -> why that test runs on its own
SERIAL_TESTS = {
    # ab's jobs that judge a verdict or the load their pairs saw; its protocol, clean-up and bad-input
    # tests (turn order, pinning, hung and crashed workers) hold beside other tests and run in parallel
    "test_benchruns_ab.py::test_a_real_slowdown_in_the_working_tree_fails_the_gate": "an A/B verdict on timings",
    "test_benchruns_ab.py::test_interleave_catches_a_real_slowdown_and_tags_what_is_not_rounds": "an A/B verdict on timings",
    "test_benchruns_ab.py::test_interleave_error_in_one_side_is_reported_and_the_rest_judged": "an A/A verdict",
    "test_benchruns_ab.py::test_a_pair_disturbed_by_another_process_gives_no_verdict": "a busy loop, and a load meter",
    "test_benchruns_ab.py::test_pytest_args_reach_the_workers_when_pairs_may_be_replaced": "replaces disturbed pairs",
    "test_benchruns_ab.py::test_two_lanes_run_pairs_at_once_each_pair_alone_on_its_core": "busy lanes, a load meter",
    "test_benchruns_ab.py::test_ctrl_c_during_a_two_lane_job_leaves_no_process_and_no_worktree":
        "signals and process deadlines",
    "test_benchruns_cli.py::test_speed_300_benchmarks": "a wall-time bound",
    "test_load.py::test_a_busy_process_outside_the_tree_is_other_and_named": "a busy loop, and a load meter",
    "test_load.py::test_work_of_the_tree_and_its_children_is_its_own": "a busy loop, and a load meter",
    "test_load.py::test_a_saved_run_carries_its_load_record_and_per_benchmark_windows": "a load meter",
    "test_distributed.py::test_free_ports_are_distinct_bindable_loopback_ports": "binds ports",
    "test_distributed.py::test_crashed_worker_fails_with_its_stderr_tail_and_kills_its_sibling": "a wall-time bound",
    "test_distributed.py::test_hung_worker_times_out_and_all_are_killed": "a worker timeout",
    "test_distributed.py::test_no_orphans_when_the_coordinator_is_interrupted": "signals and process deadlines",
    "test_distributed.py::test_limited_loopback_caps_the_rate": "times a capped link",
    "test_contributor_loop.py::test_ctrl_c_during_a_parallel_run_leaves_no_process": "signals and process deadlines",
    "test_probe.py::test_normalising_never_hides_a_change_to_the_benchmark_alone": "times real processes",
}


# pytest-benchmark turns timing off inside xdist workers, so a test of tests/ that uses its
# fixture would skip (or check nothing) there.
BENCHMARK_FIXTURE = "uses the benchmark fixture, which times only outside pytest-xdist workers"


def serial_reason(item) -> str | None:
    """Why ``item`` must run on its own, or None."""
    module = item.path.name
    return (SERIAL_MODULES.get(module) or SERIAL_TESTS.get(f"{module}::{item.originalname}")
            or (BENCHMARK_FIXTURE if "benchmark" in getattr(item, "fixturenames", ()) else None))


TESTS = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    # the hook sees the whole session's items: make test runs tests/ and the smoke cases of benches/ together
    for item in items:
        if TESTS not in item.path.parents:
            continue
        reason = serial_reason(item)
        if reason:
            item.add_marker(pytest.mark.serial(reason))


# --- figures a test reports: printed at the end of the run, also from pytest-xdist workers ----------

FIGURES = "figures"  # the user_properties key (xdist sends a test's user_properties to the controller)


@pytest.fixture
def figures(request):
    """``figures(text)``: show measured figures at the end of ``make test`` (docs/gate.md and docs/history.md
    quote them). A print would be lost inside an xdist worker; a report's user_properties reach the controller."""

    def report(text: str) -> None:
        request.node.user_properties.append((FIGURES, text))

    return report


def pytest_terminal_summary(terminalreporter):
    shown = [(report.nodeid, value) for kind in ("passed", "failed") for report in terminalreporter.stats.get(kind, [])
             if getattr(report, "when", None) == "call"
             for key, value in getattr(report, "user_properties", ()) if key == FIGURES]
    for nodeid, text in shown:
        terminalreporter.write_sep("-", f"figures: {nodeid.split('::')[-1]}")
        terminalreporter.write_line(text)
