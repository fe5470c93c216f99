"""Device transfer: how fast tensors move between host and device, and between frameworks.

- ``test_reference``: numpy.copyto into a preallocated buffer, this machine's copy limit
  per size. It runs first; every copying case records ``fraction_of_ideal`` against it.
- ``test_host_ingest`` / ``test_host_export``: numpy into a tensor and back, on the host.
  Zero-copy calls (torch.from_numpy, as_tensor, .numpy()) cost the same at every size.
- ``test_dlpack``: TensorFlow <-> PyTorch through DLPack on one device; a zero-copy hand
  over, checked before timing by a write through one side read on the other.
- ``test_cuda_transfer``: host to device, device to host and device to device in torch
  (pageable, pinned, non_blocking) and TensorFlow (placement, .numpy()).
- ``test_overlap``: the next batch copied on a side stream while a compute kernel runs,
  against copy-then-compute: what pinned memory plus non_blocking buys.

All cases are built in ``benches/transfer_cases.py`` and timed through ``measure``, which
ends each timed call with the device fence, so a non_blocking copy is timed until its
data is valid. Sources and destinations are allocated outside the timed call, except
where the framework allocates inside the call being measured (torch.tensor, .to()).
"""

from __future__ import annotations

import pytest

from benches import transfer_cases as cases

pytestmark = pytest.mark.transfer

KiB, MiB = cases.KiB, cases.MiB
SIZES = {
    "smoke": [4 * KiB, 64 * KiB],
    "quick": [64 * KiB, 4 * MiB, 64 * MiB],
    # Powers of 4 from 4 KiB to 256 MiB: about two points per decade.
    "full": [4 * KiB * 4**i for i in range(9)],
}
OVERLAP_SIZES = {"smoke": [64 * KiB], "quick": [64 * MiB], "full": [4 * MiB, 64 * MiB, 256 * MiB]}


def modes(table):
    """framework -> modes, from a table keyed by (framework, mode)."""
    out = {}
    for framework, mode in table:
        out.setdefault(framework, []).append(mode)
    return out


def by_profile(sizes, **axes):
    return {profile: [dict(size=sizes[profile], **axes)] for profile in sizes}


GRID = by_profile(SIZES)  # test_reference
INGEST_GRID = by_profile(SIZES, mode=modes(cases.INGEST))
EXPORT_GRID = by_profile(SIZES, mode=modes(cases.EXPORT))
DLPACK_GRID = by_profile(SIZES, mode={consumer: [m for m, (_, c) in cases.DLPACK.items() if c == consumer]
                                      for consumer in ("torch", "tensorflow")})
CUDA_GRID = by_profile(SIZES, mode={"torch": list(cases.TORCH_CUDA), "tensorflow": list(cases.TF_CUDA)},
                       device=["cuda"])
OVERLAP_GRID = by_profile(OVERLAP_SIZES, mode={"torch": list(cases.OVERLAP)}, device=["cuda"])


@pytest.fixture(autouse=True)
def _free_buffers():
    """A case may hold a 256 MiB source and destination. Its buffers go with its frame
    (no reference cycles: gc.collect would cost 0.6 s a case with TensorFlow loaded);
    on CUDA the caching allocator is emptied so the next case starts from the same state."""
    yield
    torch = cases.torch_module()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def timing_enabled(request) -> bool:
    return not request.config.getoption("benchmark_disable")


def test_reference(measure, size):
    """numpy.copyto into a preallocated buffer: the copy limit that copying cases divide by."""
    fn, _, _ = cases.copyto_callable(size)
    measure(fn, framework="numpy", device="cpu", group=cases.group("reference", "cpu", size),
            nbytes=size, sets_ideal=cases.reference_key(size),
            direction="reference", memory="pageable", blocking=True, size=size, mode="copyto", zero_copy=False)


def record(measure, ideals, request, case, *, framework, device, size, direction, memory, blocking, mode,
           host_ideal=True):
    """Time one prepared case. A copy records bytes and GB/s, and, where a host copy is the
    limit that applies (``host_ideal``), its fraction of the reference; a zero-copy case
    records 0 bytes moved."""
    info = dict(direction=direction, memory=memory, blocking=blocking, size=size, mode=mode, **case.info)
    moves = not info.get("zero_copy", False)
    ideal = None
    if moves and host_ideal:
        ideal = cases.ensure_reference(ideals, size, enabled=timing_enabled(request))
        if ideal in cases.FALLBACK_REFERENCES:
            info["reference"] = "timeit-fallback"
    if not moves:
        info["bytes"] = 0
    out = measure(case.fn, framework=framework, device=device, group=cases.group(direction, device, size),
                  nbytes=size if moves else None, ideal=ideal, **info)
    case.check(out)


@pytest.mark.grid(INGEST_GRID)
def test_host_ingest(measure, ideals, request, framework, mode, size):
    """numpy array into a tensor: zero-copy wrapping (from_numpy, as_tensor) versus a copy."""
    case = cases.host_ingest(framework, mode, size)
    record(measure, ideals, request, case, framework=framework, device="cpu", size=size,
           direction="host-ingest", memory="pageable", blocking=True, mode=mode)


@pytest.mark.grid(EXPORT_GRID)
def test_host_export(measure, ideals, request, framework, mode, size):
    """A host tensor back to numpy with .numpy(): torch shares the buffer, TensorFlow copies."""
    case = cases.host_export(framework, mode, size)
    record(measure, ideals, request, case, framework=framework, device="cpu", size=size,
           direction="host-export", memory="pageable", blocking=True, mode=mode)


@pytest.mark.grid(DLPACK_GRID)
def test_dlpack(measure, ideals, request, framework, mode, size, device):
    """TensorFlow <-> PyTorch via DLPack on one device: zero-copy, so flat across sizes."""
    case = cases.dlpack_exchange(mode, size, device)
    record(measure, ideals, request, case, framework=framework, device=device, size=size,
           direction="dlpack", memory="device" if device == "cuda" else "pageable", blocking=True, mode=mode)


@pytest.mark.grid(CUDA_GRID)
def test_cuda_transfer(measure, ideals, request, framework, mode, size, device):
    """One copy between host and GPU, or within the GPU; fenced, so non_blocking is timed to the end."""
    if framework == "torch":
        direction, memory, blocking = cases.TORCH_CUDA[mode]
        case = cases.torch_cuda(mode, size, device)
    else:
        direction, memory, blocking = cases.TF_CUDA[mode]
        case = cases.tf_cuda(mode, size, device)
    # A device-to-device copy runs at the GPU's memory bandwidth: a host copy is no ideal for it.
    record(measure, ideals, request, case, framework=framework, device=device, size=size,
           direction=direction, memory=memory, blocking=blocking, mode=mode, host_ideal=direction != "d2d")


@pytest.mark.grid(OVERLAP_GRID)
def test_overlap(measure, framework, mode, size, device):
    """Copy of the next batch overlapped with compute (side stream) versus copy then compute."""
    memory, side_stream = cases.OVERLAP[mode]
    case = cases.overlap_step(mode, size, device)
    out = measure(case.fn, framework=framework, device=device, group=cases.group("overlap", device, size),
                  nbytes=size, direction="h2d", memory=memory, blocking=not side_stream, size=size, mode=mode,
                  **case.info)
    case.check(out)
