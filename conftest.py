"""The harness: options, framework and device axes, thread pinning, fenced timing,
machine info and where a run is saved.

This is the only place that knows how to fence a device or pin threads. Benchmarks
declare their parameter grid as data (``GRID``, see ``pytest_generate_tests``) and
time a callable through the ``measure`` fixture.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import platform
import sys
import uuid
import warnings
from pathlib import Path

import pytest

# Before any framework starts: quiet TensorFlow's C++ logging (DESIGN: output).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchruns import load, probe  # noqa: E402
from benchruns.machine import current_machine_info, default_threads, machine_key  # noqa: E402
from benchruns.storage import INCOMING, store_run  # noqa: E402

PROFILES = ("smoke", "quick", "full")
DEVICES = ("cpu", "cuda")
FRAMEWORKS = ("torch", "tensorflow", "numpy")

# Filled in by pytest_configure: framework name -> imported module, or the reason it is missing.
_frameworks: dict[str, object] = {}
_missing: dict[str, str] = {}


# --------------------------------------------------------------------------- options


def pytest_addoption(parser):
    group = parser.getgroup("tfpt", "TensorFlow-versus-PyTorch suite")
    group.addoption("--device", default="cpu,cuda",
                    help="comma-separated devices to run: cpu, cuda (default: cpu,cuda; cuda skips where absent)")
    group.addoption("--profile", default="full",
                    help="parameter grid: smoke (every case once), quick (its time on this machine: docs/running.md), full (default)")
    group.addoption("--threads", default=None,
                    help="CPU threads for both frameworks (default: the cores this process may use)")
    group.addoption("--save-run", action="store_true",
                    help="save the run as results/<machine-key>/<UTC time>_<commit>.json")
    group.addoption("--results-dir", default="results", help="where --save-run keeps runs (default: results)")
    group.addoption("--no-probe", action="store_true",
                    help="do not interleave the reference probe with the timing rounds (benchruns/probe.py)")


def _usage_exit(message: str) -> None:
    pytest.exit(f"usage error: {message}", returncode=2)


def _parse_options(config) -> None:
    devices = [d.strip() for d in config.getoption("device").split(",") if d.strip()]
    unknown = [d for d in devices if d not in DEVICES]
    if unknown or not devices:
        _usage_exit(f"--device {config.getoption('device')!r}: valid values are {', '.join(DEVICES)} (comma-separated)")
    profile = config.getoption("profile")
    if profile not in PROFILES:
        _usage_exit(f"--profile {profile!r}: valid values are {', '.join(PROFILES)}")
    raw_threads = config.getoption("threads")
    if raw_threads is None:
        threads = default_threads()
    else:
        try:
            threads = int(raw_threads)
        except ValueError:
            threads = 0
        if threads < 1:
            _usage_exit(f"--threads {raw_threads!r}: give a whole number of threads >= 1 (this machine: {default_threads()})")
    config.tfpt = {"devices": devices, "profile": profile, "threads": threads}


# --------------------------------------------------------------------------- frameworks


@contextlib.contextmanager
def _quiet_stderr():
    """Hide what C++ libraries print to fd 2 while they load (absl's pre-init banner)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _start_frameworks(threads: int) -> None:
    """Import each framework once and give both the same thread pools, before first use."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        # Full float32 on GPUs too: TF32 would break parity and compare different math.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        _frameworks["torch"] = torch
        if importlib.util.find_spec("triton") is not None:
            # CUDA builds of torch ship triton, which torch.compile and torchvision import later;
            # loading triton after TensorFlow 2.21 segfaults the process (triton 3.7.1 and 3.8.0),
            # loading it first does not.
            import triton  # noqa: F401
    except ImportError as exc:
        _missing["torch"] = f"torch is not importable: {exc}"
    try:
        with _quiet_stderr():
            import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.experimental.enable_tensor_float_32_execution(False)
        for gpu in tf.config.list_physical_devices("GPU"):
            # By default TF takes nearly all GPU memory at start, starving torch in this process.
            tf.config.experimental.set_memory_growth(gpu, True)
        _frameworks["tensorflow"] = tf
    except ImportError as exc:
        _missing["tensorflow"] = f"tensorflow is not importable: {exc}"
    import numpy

    _frameworks["numpy"] = numpy


def cuda_available(framework: str) -> str | None:
    """None when ``framework`` can run on CUDA here, else the reason it cannot."""
    if framework in _missing:
        return _missing[framework]
    if framework == "torch":
        torch = _frameworks["torch"]
        return None if torch.cuda.is_available() else "torch sees no CUDA device"
    if framework == "tensorflow":
        tf = _frameworks["tensorflow"]
        return None if tf.config.list_physical_devices("GPU") else "tensorflow sees no GPU"
    return f"{framework} does not run on CUDA"


# --------------------------------------------------------------------------- fencing


def fence_for(framework: str, device: str):
    """A function ``fence(out)`` that returns only once the work producing ``out`` is done.

    torch on CPU is synchronous; torch on CUDA queues kernels, so we synchronise.
    TensorFlow eager may run asynchronously: on CPU we materialise the outputs with
    ``_numpy()``, which waits for the value and returns a view (``.numpy()`` would copy
    it, 11 ms for 64 MiB); on GPU we call ``sync_devices`` to avoid timing a download.
    """
    if framework == "torch" and device == "cuda":
        torch = _frameworks["torch"]
        return lambda out: torch.cuda.synchronize()
    if framework == "tensorflow":
        tf = _frameworks["tensorflow"]
        if device == "cuda":
            return lambda out: tf.test.experimental.sync_devices()

        def materialise(out):
            for item in tf.nest.flatten(out):
                view = getattr(item, "_numpy", None) or getattr(item, "numpy", None)
                if view is not None:
                    view()

        return materialise
    return lambda out: None


def fenced(fn, fence):
    """``fn`` followed by ``fence`` on its result: what the benchmark clock sees."""

    def run():
        out = fn()
        fence(out)
        return out

    return run


@pytest.fixture(scope="session")
def threads(pytestconfig) -> int:
    return pytestconfig.tfpt["threads"]


@pytest.fixture(scope="session")
def profile(pytestconfig) -> str:
    return pytestconfig.tfpt["profile"]


@pytest.fixture(scope="session")
def ideals() -> dict[str, float]:
    """Median seconds of the reference cases measured earlier in this run, by key.

    A reference case (the numpy ideal, the machine's copy limit) is measured with
    ``measure(..., sets_ideal=key)``; a later case doing the same work passes
    ``ideal=key`` and records ``fraction_of_ideal`` = ideal time / its own time.
    """
    return {}


@pytest.fixture
def measure(benchmark, threads, ideals):
    """Time ``fn`` fenced for its framework and device; describe the case in extra_info.

    ``samples`` (per call) adds samples_per_s, ``nbytes`` adds bytes and gbps, both
    from the median round so one slow round does not move them. ``ideal`` and
    ``sets_ideal`` relate the case to a reference measured in the same run.
    """

    def _measure(fn, *, framework, device, group, samples=None, nbytes=None, fence=None,
                 ideal=None, sets_ideal=None, **info):
        benchmark.group = group
        benchmark.extra_info.update(framework=framework, device=device, threads=threads, **info)
        result = benchmark(fenced(fn, fence or fence_for(framework, device)))
        median = median_seconds(benchmark)
        if median:
            if samples:
                benchmark.extra_info["samples_per_s"] = samples / median
            if nbytes:
                benchmark.extra_info["bytes"] = nbytes
                benchmark.extra_info["gbps"] = nbytes / median / 1e9
            if sets_ideal:
                ideals[sets_ideal] = median
            if ideal and ideal in ideals:
                benchmark.extra_info["fraction_of_ideal"] = ideals[ideal] / median
        return result

    return _measure


def median_seconds(benchmark) -> float | None:
    """The median round time of a finished benchmark, None when timing is disabled."""
    stats = getattr(benchmark, "stats", None)
    return stats.stats.median if stats is not None else None


# --------------------------------------------------------------------------- the grid


def pytest_generate_tests(metafunc):
    """Parametrise a bench from its grid for the chosen profile, and from ``--device``.

    The grid is the module's ``GRID`` or a ``@pytest.mark.grid(...)`` on the function:
    ``{profile: [spec, ...]}``, each spec a mapping name -> values whose combinations
    are taken; the union over specs is run. ``mode`` may map framework -> modes, which
    parametrises ``framework`` and ``mode`` together. ``device`` in a spec limits the
    case to those devices (still filtered by ``--device``); otherwise ``--device`` decides.
    """
    config = metafunc.config
    if not hasattr(config, "tfpt"):
        return
    marker = metafunc.definition.get_closest_marker("grid")
    grid = marker.args[0] if marker else getattr(metafunc.module, "GRID", None)
    specs = grid[config.tfpt["profile"]] if grid else []
    if "device" in metafunc.fixturenames and not any("device" in spec for spec in specs):
        metafunc.parametrize("device", config.tfpt["devices"])
    wanted = set(metafunc.fixturenames)
    names, rows = None, []
    for spec in specs:
        axes = []
        for name, values in spec.items():
            if name == "device":  # a grid may limit a case to some devices, e.g. ["cuda"]
                if name in wanted:
                    axes.append(((name,), [(v,) for v in values if v in config.tfpt["devices"]]))
            elif name == "mode" and isinstance(values, dict):
                if {"framework", "mode"} <= wanted:
                    axes.append((("framework", "mode"), [(fw, m) for fw, modes in values.items() for m in modes]))
            elif name in wanted:
                axes.append(((name,), [(v,) for v in values]))
        spec_names = tuple(n for axis_names, _ in axes for n in axis_names)
        if names is not None and spec_names != names:
            raise ValueError(f"{metafunc.function.__name__}: grid specs must name the same parameters")
        names = spec_names
        for combo in itertools.product(*(values for _, values in axes)):
            row = tuple(v for part in combo for v in part)
            if row not in rows:
                rows.append(row)
    if names:
        ids = ["-".join(_param_id(n, v) for n, v in zip(names, row)) for row in rows]
        metafunc.parametrize(names, rows, ids=ids)


def _param_id(name: str, value) -> str:
    if name == "batch":
        return f"b{value}"
    if name in ("size", "nbytes") and isinstance(value, int):
        return _human_bytes(value)
    return str(value)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g}{unit}"
        n /= 1024


def pytest_collection_modifyitems(config, items):
    """Mark CUDA cases ``cuda``; the quick and smoke profiles leave out ``slow`` cases."""
    if not hasattr(config, "tfpt"):
        return
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("device") == "cuda":
            item.add_marker(pytest.mark.cuda)
        if config.tfpt["profile"] != "full" and item.get_closest_marker("slow"):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _skip_what_this_machine_lacks(request):
    """Skip, with the reason, a case whose framework is missing or whose device is absent."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    framework = params.get("framework")
    if framework in _missing:
        pytest.skip(_missing[framework])
    if params.get("device") == "cuda":
        reason = cuda_available(framework or "torch")
        if reason:
            pytest.skip(f"CUDA requested but unavailable: {reason}")


def _is_out_of_memory(exc: BaseException) -> bool:
    kinds = (
        getattr(getattr(_frameworks.get("torch"), "cuda", None), "OutOfMemoryError", None),
        getattr(getattr(_frameworks.get("tensorflow"), "errors", None), "ResourceExhaustedError", None),
    )
    return any(isinstance(kind, type) and isinstance(exc, kind) for kind in kinds)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A case that runs out of device memory is skipped with the reason; the run goes on.

    A case that does not finish (skipped, failed, timed out, out of memory) is also
    kept out of the saved run: pytest-benchmark only drops cases that raised an
    ``Exception``, and a skip or timeout inside the timed call would otherwise leave a
    result with no rounds, which breaks writing the whole run's JSON.
    The call is also a load window (``_load_window``).
    """
    try:
        with _load_window(item), _probe_window(item):
            return (yield)
    except BaseException as exc:
        bench = getattr(item, "funcargs", {}).get("benchmark")
        if bench is not None:
            bench.has_error = True
        if isinstance(exc, Exception) and _is_out_of_memory(exc):
            if "torch" in _frameworks and _frameworks["torch"].cuda.is_available():
                _frameworks["torch"].cuda.empty_cache()
            pytest.skip(f"out of memory: {str(exc).splitlines()[0][:200]}")
        raise


# --------------------------------------------------------------------------- session


def _is_xdist_controller(config) -> bool:
    """The pytest-xdist process that hands tests to its workers and runs none itself."""
    return (not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))
            and getattr(config.option, "dist", "no") != "no")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    _parse_options(config)
    if config.getoption("save_run"):  # bad options stop the run before seconds of framework imports
        if config.getoption("benchmark_json"):
            _usage_exit("--save-run and --benchmark-json both name an output; give one")
        incoming = _writable_folder(Path(config.getoption("results_dir")) / INCOMING)
        config.option.benchmark_json = str(incoming / f"{uuid.uuid4().hex}.json")
        config.tfpt["incoming"] = Path(config.option.benchmark_json)
    if _is_xdist_controller(config):
        import numpy  # the workers import the frameworks; here it would cost seconds before they start

        _frameworks["numpy"] = numpy
    else:
        _start_frameworks(config.tfpt["threads"])
    # TorchScript is deprecated since torch 2.13; we keep it as a labelled legacy mode.
    warnings.filterwarnings("ignore", message=r".*TorchScript.*", category=DeprecationWarning)
    if not config.getoption("benchmark_disable", False):
        config.tfpt["load"] = load.LoadMeter()


def _writable_folder(folder: Path) -> Path:
    """Create ``folder`` (and parents) or stop with one line before any benchmark runs."""
    results = folder.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _usage_exit(f"--results-dir {results}: cannot create {folder} ({exc.strerror or exc}); "
                    "give a folder you can write to")
    if not os.access(folder, os.W_OK | os.X_OK):
        _usage_exit(f"--results-dir {results}: {folder} is not writable; give a folder you can write to")
    return folder


# --------------------------------------------------------------------------- machine load


@contextlib.contextmanager
def _load_window(item):
    """Bracket a benchmark's call with load readings: what else used the machine meanwhile."""
    meter = getattr(getattr(item, "config", None), "tfpt", {}).get("load")
    bench = getattr(item, "funcargs", {}).get("benchmark") if meter else None
    if bench is None:
        yield
        return
    try:
        with meter.measuring():
            yield
    finally:
        if meter.last is not None:
            bench.extra_info["load"] = meter.last.summary()


@contextlib.contextmanager
def _probe_window(item):
    """Interleave the reference probe with this benchmark's rounds (benchruns/probe.py); record its median."""
    bench = getattr(item, "funcargs", {}).get("benchmark")
    config = getattr(item, "config", None)
    if bench is None or not getattr(bench, "enabled", False) or config.getoption("no_probe"):
        yield
        return
    with probe.probing(bench, config.tfpt.setdefault("probe_calls", [])):
        yield


def pytest_benchmark_update_json(config, benchmarks, output_json):
    meter = getattr(config, "tfpt", {}).get("load")
    if meter is not None:
        output_json["load"] = meter.record()
    calls = getattr(config, "tfpt", {}).get("probe_calls")
    if calls:  # the run's speed as the probe saw it over all benchmarks
        output_json["probe"] = probe.run_record(calls)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say whether the machine was quiet while benchmarks ran; name the busiest others if not."""
    meter = getattr(config, "tfpt", {}).get("load")
    if meter is None or not meter.windows:
        return
    rec = meter.record()
    if not rec.get("available"):
        terminalreporter.write_line(f"machine load: unknown ({rec['why']})")
        return
    figures = (f"others {rec['other_cores']:.2f} core, steal {rec['steal_cores']:.2f}, "
               f"over {rec['benchmarks_s']:.0f} s of benchmarks")
    if rec["disturbed"]:
        terminalreporter.write_line(
            f"WARNING: this run was disturbed: {rec['why']}. Its timings are not comparable; gate, compare "
            "and history leave it out (pass --include-disturbed to use it). Rerun on a quiet machine.",
            yellow=True, bold=True)
    else:
        flagged = f"; {rec['disturbed_benchmarks']} benchmark(s) disturbed on their own" if rec["disturbed_benchmarks"] else ""
        terminalreporter.write_line(f"machine load: undisturbed ({figures}{flagged})")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """After pytest-benchmark has written the run, move it into its machine folder.

    An interrupted run (Ctrl-C, pytest.exit) is dropped: it would pass for a whole run
    with cases missing, and the gate would read them as removed.
    """
    yield
    config = session.config
    incoming = getattr(config, "tfpt", {}).get("incoming")
    if not incoming or not incoming.exists():
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        incoming.unlink()
        message = "run interrupted: not saved"
    else:
        message = f"run saved: {store_run(incoming, Path(config.getoption('results_dir')))}"
    if reporter is not None:
        reporter.write_line(message)


def machine_facts(threads: int) -> dict:
    """Everything the run should say about the machine; the key uses only stable fields."""
    info = current_machine_info(threads)
    info["machine_key"] = machine_key(info)
    info["ram_bytes"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    info["os"] = f"{platform.system()} {platform.release()}"
    info["numpy_version"] = _frameworks["numpy"].__version__
    torch = _frameworks.get("torch")
    if torch is not None:
        info["torch_cuda"] = torch.version.cuda
        info["torch_cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    tf = _frameworks.get("tensorflow")
    if tf is not None:
        build = tf.sysconfig.get_build_info()
        info["tensorflow_cuda"] = build.get("cuda_version")
        info["tensorflow_cudnn"] = build.get("cudnn_version")
    info["tf32"] = False
    info["inter_op_threads"] = 1
    info["frameworks_missing"] = dict(_missing)
    return info


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info.update(machine_facts(config.tfpt["threads"]))
    machine_info["profile"] = config.tfpt["profile"]

