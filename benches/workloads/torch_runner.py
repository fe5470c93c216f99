"""Steps of a workload in each PyTorch mode: eager, torch.compile, TorchScript, torch.export.

``export`` runs ``torch.export.export(...).module()``: the exported graph as an unoptimised
``GraphModule`` called from Python. ``export-aoti`` is torch's ahead-of-time path for an
exported program: AOTInductor compiles it to a shared library in a ``.pt2`` package
(``torch._inductor.aoti_compile_and_package``), loaded with ``aoti_load_package``;
inference only (the loaded package has no autograd).
``prepare`` returns a Case whose ``step`` runs one inference or training step with its
inputs bound. Nothing is compiled until the first call, so that first call is the
compile cost the first-call benchmarks time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import Case, UnsupportedMode
from . import torch_models
from .specs import LEARNING_RATE, Workload, make_batch, make_weights

MODES = ("eager", "compile", "script", "export", "export-aoti")
LEGACY_MODES = {"script": "TorchScript, deprecated since torch 2.13"}
EXPORT_RNN_REASON = ("torch.export cannot capture a Python loop whose trip count is data: it needs "
                     "rewriting with torch._higher_order_ops.while_loop")
AOTI_TRAIN_REASON = ("AOTInductor compiles an inference graph: the loaded package has no autograd, so there is "
                     "no training step to time (torch.compile is torch's compiled training path)")
# (workload, device, seed) -> the AOTInductor package's bytes. The batch dimension is exported
# dynamic (as torch's AOTInductor docs do), so one package serves every batch and the steady-state
# cases of one process compile each model once; the first-call cases compile afresh (reuse_package=False).
_AOTI_PACKAGES: dict[tuple, bytes] = {}
AOTI_MAX_BATCH = 4096
# Between processes the steady-state cases load a package compiled earlier, as AOTInductor is used
# (compile once, load where it runs): a store inside inductor's own cache folder, keyed by what the
# package is made of (package_digest). A cold first call (compile_cache(cold=True)) sees a fresh,
# empty inductor folder, so it never finds a package there.
AOTI_STORE = "tfpt-aoti-packages"


def aoti_unavailable() -> str | None:
    """None when AOTInductor can build here, else why not (it compiles C++ with the system compiler)."""
    from torch._inductor import cpp_builder, exc

    try:
        cpp_builder.get_cpp_compiler()
    except exc.InvalidCxxCompiler as error:
        return f"AOTInductor needs a C++ compiler and found none ({str(error).splitlines()[0][:120]})"
    return None


def package_digest(program, device: str) -> str:
    """What a compiled package depends on: torch's build, inductor's config, the CPU's vector ISA (or
    the GPU's name) and the threads its kernels are generated for, the device, the exported graph
    (ops, shapes, dynamic dimensions) and every weight's bytes."""
    from torch._inductor import config, cpu_vec_isa
    from torch._inductor.utils import parallel_num_threads

    # aot_inductor.metadata is filled in by the first compile of a process (device key, platform, ISA)
    settings = [(k, v) for k, v in config.save_config_portable().items() if k != "aot_inductor.metadata"]
    digest = hashlib.sha256()
    hardware = torch.cuda.get_device_name(device) if device.startswith("cuda") else str(cpu_vec_isa.pick_vec_isa())
    # CPU kernels are generated for the thread count of the compile (as inductor's own cache keys say)
    threads = f"threads={parallel_num_threads()} deterministic={torch.are_deterministic_algorithms_enabled()}"
    for part in (torch.__version__, torch.version.git_version or "", device, hardware, threads,
                 repr(sorted(settings)), graph_text(program)):
        digest.update(part.encode())
        digest.update(b"\0")
    for name, value in sorted({**program.state_dict, **program.constants}.items()):
        digest.update(f"{name}:{getattr(value, 'dtype', '')}:{tuple(getattr(value, 'shape', ()))}".encode())
        if isinstance(value, torch.Tensor):
            digest.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def graph_text(program) -> str:
    """The exported program as text (graph, shapes, signature, dynamic ranges) without export's
    ``# File: <path>:<line>`` comments: the same model read from another checkout (an ab worktree, a
    clean clone) or after an edit elsewhere in its file is the same package."""
    return "\n".join(line for line in str(program).splitlines() if not line.strip().startswith("# File:"))


def _store_folder() -> Path:
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    return Path(cache_dir()) / AOTI_STORE


def _aoti(module: nn.Module, args: tuple, key: tuple | None, device: str):
    """Export with a dynamic batch dimension, compile with AOTInductor into a .pt2 package, load it.

    ``key`` reuses a package: this process's, else the store's; returns the loaded package and where
    it came from: ``compiled``, ``this process`` or ``store``.
    """
    from torch._inductor import aoti_compile_and_package, aoti_load_package

    package = _AOTI_PACKAGES.get(key) if key else None
    if package is not None:
        return aoti_load_package(io.BytesIO(package)), "this process"
    # example batch of 2: export specialises a dimension of size 1, which a dynamic one must not be
    example = tuple(a[:1].expand(2, *a.shape[1:]).contiguous() for a in args)
    batch = torch.export.Dim("batch", min=1, max=AOTI_MAX_BATCH)
    with warnings.catch_warnings():
        # torch's own pytree deprecation inside export/packaging; nothing a user of this suite can act on
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.export.export(module, example, dynamic_shapes=tuple({0: batch} for _ in example))
        stored = _store_folder() / f"{package_digest(program, device)}.pt2" if key else None
        if stored is not None and stored.is_file():
            package = stored.read_bytes()
            try:
                loaded = aoti_load_package(io.BytesIO(package))
            except Exception:  # a truncated or foreign file: compile again and replace it
                loaded = None
            if loaded is not None:
                _AOTI_PACKAGES[key] = package
                return loaded, "store"
        buffer = io.BytesIO()
        aoti_compile_and_package(program, package_path=buffer)
    package = buffer.getvalue()
    if key:
        _AOTI_PACKAGES[key] = package
        _write_atomically(stored, package)
    return aoti_load_package(io.BytesIO(package)), "compiled"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write beside ``path`` and rename into place, so a reader never sees half a package; a store that
    cannot be written only costs the next process a compile."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


class _Loss(nn.Module):
    """Model plus MSE loss as one module, so a whole forward-and-loss is what gets compiled."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args):
        *inputs, target = args
        return F.mse_loss(self.model(*inputs), target)


def _transform(module: nn.Module, mode: str, workload: Workload, args: tuple):
    if mode == "eager":
        return module
    if mode == "compile":
        return torch.compile(module)
    if mode == "script":
        if workload.name == "rnn-loop":  # tracing would bake the step count into the graph
            if isinstance(module, _Loss):  # script the model; the MSE around it stays Python
                module.model = torch.jit.script(module.model)
                return module
            return torch.jit.script(module)
        return torch.jit.trace(module, args, check_trace=False)
    if mode == "export":
        return torch.export.export(module, args).module()
    raise ValueError(f"unknown torch mode {mode!r}")


def prepare(workload: Workload, mode: str, pass_: str, batch: int, device: str, seed: int = 0,
            reuse_package: bool = True) -> Case:
    """Build fresh parameters and inputs for one (mode, pass).

    The mode's transformation (trace, script, export, compile) happens inside the
    first ``case.step()``, which then replaces itself with the plain step: so the
    first call carries the whole compile cost, as it does for tf.function.
    ``reuse_package``: export-aoti loads the package this process already compiled for
    the same model (steady state); False compiles afresh (the first-call cost).
    """
    if mode in ("export", "export-aoti") and workload.name == "rnn-loop":
        raise UnsupportedMode(EXPORT_RNN_REASON)
    if mode == "export-aoti":
        if pass_ == "train":
            raise UnsupportedMode(AOTI_TRAIN_REASON)
        reason = aoti_unavailable()
        if reason:
            raise UnsupportedMode(reason)
    aoti_key = (workload.name, device, seed) if reuse_package else None
    model = torch_models.build(workload, make_weights(workload, seed)).to(device)
    x, target = make_batch(workload, batch)
    args = torch_models.inputs(workload, x, device)
    if pass_ == "train":
        args = args + (torch.from_numpy(target).to(device),)
    case = Case(step=None, graph_count=_graph_count if mode == "compile" else _zero, model=model)

    def first_step():
        if pass_ == "inference":
            with torch.no_grad():
                if mode == "export-aoti":
                    case.module, case.provenance["aoti_package"] = _aoti(model.eval(), args, aoti_key, device)
                else:
                    case.module = _transform(model.eval(), mode, workload, args)
            case.step = _inference_step(case.module, args)
        else:
            case.module = _transform(_Loss(model), mode, workload, args)
            case.step = _train_step(case.module, args)
        return case.step()

    case.step = first_step
    return case


def _inference_step(fn, args):
    def step():
        with torch.no_grad():
            return fn(*args)

    return step


def _train_step(fn, args):
    params = [p for _, p in fn.named_parameters()]

    def step(*batch):
        loss = fn(*(batch or args))
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-LEARNING_RATE)
        return loss

    return step


def _zero() -> int:
    return 0


def _graph_count() -> int:
    """Graphs dynamo has compiled so far in this process (a recompile adds one)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def inductor_cache_dir() -> str:
    """The folder inductor's disk caches use now (a cold block points it at a fresh one)."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    return cache_dir()


@contextlib.contextmanager
def compile_cache(cold: bool):
    """Cold: a fresh, empty inductor cache for this block; warm: dynamo reset, disk cache kept."""
    from torch._inductor.utils import clear_caches, fresh_cache

    torch._dynamo.reset()
    if cold:
        with fresh_cache():
            yield
    else:
        clear_caches()  # in-memory caches: a new process would not have them either
        yield


def forward_numpy(workload: Workload, mode: str, batch: int) -> np.ndarray:
    case = prepare(workload, mode, "inference", batch, "cpu")
    return case.step().numpy()


def loss_and_grads(workload: Workload, batch: int) -> tuple[float, dict[str, np.ndarray]]:
    """Eager loss and gradients in the canonical numpy layout, for the parity check."""
    model = torch_models.build(workload, make_weights(workload))
    x, target = make_batch(workload, batch)
    args = torch_models.inputs(workload, x, "cpu") + (torch.from_numpy(target),)
    loss = _Loss(model)(*args)
    names = [n for n, _ in model.named_parameters()]
    grads = torch.autograd.grad(loss, [p for _, p in model.named_parameters()])
    return float(loss.detach()), model.canonical(dict(zip(names, grads)))


def trainer(workload: Workload, mode: str, device: str, seed: int = 0):
    """A training step that takes its batch as arguments: ``step(x, target) -> loss``.

    For benches that feed the model from an input pipeline; x is in torch's layout.
    The mode's transformation happens on the first call, as in ``prepare``.
    """
    model = torch_models.build(workload, make_weights(workload, seed)).to(device)
    loss_module = _Loss(model)
    state = {}

    def step(x, target):
        if "step" not in state:
            state["step"] = _train_step(_transform(loss_module, mode, workload, (x, target)), ())
        return state["step"](x, target)

    return step
