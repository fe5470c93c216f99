"""What machine a run came from, and the stable key that files its results.

Framework-free on purpose: versions come from installed package metadata and GPUs
from NVML, so the tooling can name "this machine" without importing torch or
TensorFlow. The harness (conftest.py) adds the same fields to every run's
machine_info, so a saved run and the live machine compute the same key.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
from importlib import metadata

# Fields that identify a machine for comparison purposes. Anything volatile (clock
# frequency, free memory, temperatures) stays out, or every run would get a new key.
KEY_FIELDS = (
    "cpu_model",
    "cpu_count",
    "gpu_models",
    "gpu_driver",
    "torch_version",
    "tensorflow_version",
    "threads",
)


def default_threads() -> int:
    """The cores this process may run on (respects taskset and cgroup affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name: str) -> str | None:
    for dist in (name, f"{name}-cpu", f"{name}-gpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def gpu_info() -> dict:
    """Per-GPU static facts from NVML; empty when there is no NVIDIA driver."""
    try:
        import pynvml
    except ImportError:
        return {"gpus": [], "gpu_driver": None, "nvml": "nvidia-ml-py not installed"}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"gpus": [], "gpu_driver": None, "nvml": f"unavailable: {exc}"}
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            gpus.append(
                {
                    "index": index,
                    "name": _text(pynvml.nvmlDeviceGetName(handle)),
                    "memory_bytes": pynvml.nvmlDeviceGetMemoryInfo(handle).total,
                    "sm_clock_max_mhz": _nvml(pynvml.nvmlDeviceGetMaxClockInfo, handle, pynvml.NVML_CLOCK_SM),
                    "mem_clock_max_mhz": _nvml(pynvml.nvmlDeviceGetMaxClockInfo, handle, pynvml.NVML_CLOCK_MEM),
                    "pcie_gen_max": _nvml(pynvml.nvmlDeviceGetMaxPcieLinkGeneration, handle),
                    "pcie_width_max": _nvml(pynvml.nvmlDeviceGetMaxPcieLinkWidth, handle),
                    "pcie_gen_current": _nvml(pynvml.nvmlDeviceGetCurrPcieLinkGeneration, handle),
                    "pcie_width_current": _nvml(pynvml.nvmlDeviceGetCurrPcieLinkWidth, handle),
                    "power_limit_w": _nvml(lambda h: pynvml.nvmlDeviceGetPowerManagementLimit(h) / 1000, handle),
                }
            )
        return {"gpus": gpus, "gpu_driver": driver, "nvml": "ok"}
    finally:
        pynvml.nvmlShutdown()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvml(fn, *args):
    try:
        return fn(*args)
    except Exception:  # a field this GPU or driver does not report
        return None


def current_machine_info(threads: int | None = None) -> dict:
    """The key fields (and a few readable extras) of the machine running this code."""
    gpus = gpu_info()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu_models": [g["name"] for g in gpus["gpus"]],
        "gpu_driver": gpus["gpu_driver"],
        "gpus": gpus["gpus"],
        "torch_version": package_version("torch"),
        "tensorflow_version": package_version("tensorflow"),
        "threads": threads if threads is not None else default_threads(),
    }


def machine_key(info: dict) -> str:
    """Readable prefix plus a short hash of KEY_FIELDS, e.g. ``amd-epyc-2c-cpu-3f9a1c2e``."""
    stable = {field: info.get(field) for field in KEY_FIELDS}
    digest = hashlib.sha256(repr(sorted(stable.items())).encode()).hexdigest()[:8]
    cpu = re.sub(r"[^a-z0-9]+", "-", str(stable["cpu_model"]).lower()).strip("-")[:24] or "cpu"
    gpus = stable["gpu_models"] or []
    accel = re.sub(r"[^a-z0-9]+", "-", gpus[0].lower()).strip("-")[:16] if gpus else "cpu"
    return f"{cpu}-{stable['cpu_count']}c-{accel}-{digest}"
