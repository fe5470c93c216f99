"""The JPEG image pipeline with each library's own image ops: torchvision against tf.image.

The transform ("jpeg-resize"), per file: decode the JPEG (64x64x3) -> resize to
RESIZE x RESIZE, bilinear with half-pixel centres -> crop 64x64 at (dy, dx) in
0..RESIZE-64 -> flip left-right if flip -> /255 and normalise by MEAN/STD. It is the
usual ImageNet recipe (resize, random crop, random flip, normalise) at this set's size.

- torch (tv_pipelines): ``torchvision.io.decode_jpeg`` + ``torchvision.transforms.v2``
  in a DataLoader; tf (tfimage_pipelines): ``tf.io.decode_jpeg`` + ``tf.image`` in
  tf.data. The timed pipelines draw crops and flips with their own RNG.
- the ideal (``PilResizeLoop``): Pillow decodes and resizes, numpy crops, flips and
  normalises, in one tight loop over the files in order, no framework.

Equivalence is checked on explicit parameters: ``augment_params`` (data.py) gives
(flip, dy, dx) with dy, dx in 0..8 = RESIZE-64, and each side applies them with its
functional ops. This module imports no framework; it holds the spec, the bounds, the
reference and the check that torchvision can run here.

Decode bound (measured on the 256-image smoke set, quality 95, 4:2:0 chroma):
    torchvision.io.decode_jpeg, Pillow and ``tf.io.decode_jpeg(dct_method=
    "INTEGER_ACCURATE")`` all run libjpeg-turbo's accurate integer IDCT (ISLOW) and its
    "fancy" (triangle) chroma upsampling: integer algorithms, bit-exact across the
    library's C and SIMD paths, so they agree exactly (max 0 measured). SAME_IDCT allows
    1 level in max, 0.05 in mean, for a libjpeg built elsewhere. TensorFlow's default
    (``dct_method=""``) is INTEGER_FAST (IFAST): a lower-precision IDCT whose errors
    reach 10 levels at sharp edges, 1.11 on average, against ISLOW here; FAST_IDCT
    allows 16 and 1.5.
Transform bound, given the same parameters:
    bilinear resizing is a convex combination of pixels, so a decode difference of at
    most d levels stays at most d after it. torchvision (and Pillow) resize uint8 with
    fixed-point weights and round to uint8, TensorFlow resizes in float32: that adds at
    most 1 level (measured max 1.0003, mean 0.315; Pillow against torchvision: max 2,
    they round differently). Crop and flip move pixels exactly. Normalising divides by
    255*std, so the float tolerance is (d + resize) / (255 * min(STD)) plus float slack.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass

import numpy as np

from .data import CHANNELS, HEIGHT, MEAN, STD, WIDTH, Dataset, augment_params
from .jpegspec import DCT_METHODS, RESIZE, SOURCE, jpeg_files

__all__ = ["DCT_METHODS", "RESIZE", "SOURCE", "jpeg_files"]  # the shared spec, named here too for callers


@dataclass(frozen=True)
class Bound:
    """Largest and mean absolute difference allowed, in 0..255 levels."""

    max: float
    mean: float

    def __add__(self, other: "Bound") -> "Bound":
        """Two sides each within a bound of a common reference are within the sum of each other."""
        return Bound(self.max + other.max, self.mean + other.mean)


SAME_IDCT = Bound(max=1, mean=0.05)  # ISLOW on both sides: measured max 0
FAST_IDCT = Bound(max=16, mean=1.5)  # TF's default INTEGER_FAST against ISLOW: measured max 10, mean 1.11
RESIZE_ROUNDING = Bound(max=1.01, mean=0.5)  # uint8 fixed-point resize against float32: measured 1.0003, 0.315
PIL_RESIZE_ROUNDING = Bound(max=2.01, mean=0.5)  # Pillow's uint8 resize against torchvision's: measured 2, 0.045
FLOAT_SLACK = 1e-4  # float32 rounding in normalise and TF's pixel-aligned crop boxes
# nvjpeg (decode_jpeg on CUDA) has its own IDCT and upsampling; not measured here (no GPU):
# the bound of IFAST-against-ISLOW until a GPU run measures it.
NVJPEG = FAST_IDCT


def decode_bound(dct: str) -> Bound:
    """How far tf.io.decode_jpeg with this knob may be from libjpeg-turbo's ISLOW decode."""
    return SAME_IDCT if DCT_METHODS[dct] == "INTEGER_ACCURATE" else FAST_IDCT


def transform_bound(decode: Bound, resize: Bound = RESIZE_ROUNDING) -> Bound:
    """The bound on normalised float outputs given a decode bound and a resize bound (see module doc)."""
    scale = 255.0 * float(STD.min())
    return Bound(max=(decode.max + resize.max) / scale + FLOAT_SLACK,
                 mean=(decode.mean + resize.mean) / scale + FLOAT_SLACK)


def assert_within(a: np.ndarray, b: np.ndarray, bound: Bound, what: str) -> tuple[float, float]:
    """Shapes equal and |a - b| within ``bound`` (max and mean); returns (max, mean) seen."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shape {a.shape} != {b.shape}")
    diff = np.abs(a - b)
    seen = float(diff.max()), float(diff.mean())
    if seen[0] > bound.max or seen[1] > bound.mean:
        raise AssertionError(f"{what}: max |diff| {seen[0]:.4g} (bound {bound.max:.4g}), mean {seen[1]:.4g} "
                             f"(bound {bound.mean:.4g})")
    return seen


# --------------------------------------------------------------------------- torchvision here?


def requirement_problem(tv_version: str, requires: list[str] | None, torch_version: str) -> str | None:
    """Why this torchvision does not match this torch by its declared requirement, or None.

    PEP 440: ``==2.13.0`` admits ``2.13.0+cpu`` (local labels are ignored), so a
    CPU-wheel torch passes this check; ``torchvision_problem`` then tries the import.
    """
    try:
        from packaging.requirements import InvalidRequirement, Requirement
        from packaging.version import InvalidVersion, Version
    except ImportError:  # no packaging: the import attempt still catches a mismatch
        return None
    for line in requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.name.lower() != "torch" or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        try:
            ok = req.specifier.contains(Version(torch_version), prereleases=True)
        except InvalidVersion:
            return None
        if not ok:
            return (f"torchvision {tv_version} requires torch{req.specifier} but torch {torch_version} is installed; "
                    f"install the torchvision release built for torch {torch_version}")
    return None


@functools.lru_cache(maxsize=None)
def torchvision_problem() -> str | None:
    """None when torchvision's image ops run beside this torch, else one line saying why not (cached)."""
    try:
        import torch
    except ImportError as exc:
        return f"torch is not importable: {exc}"
    try:
        tv_version = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        return "torchvision is not installed (it is pinned in requirements.txt; `make venv-pypi` builds an env with it)"
    problem = requirement_problem(tv_version, importlib.metadata.requires("torchvision"), torch.__version__)
    if problem:
        return problem
    if "tensorflow" in sys.modules and "triton" not in sys.modules and importlib.util.find_spec("triton"):
        # torchvision imports torch._dynamo, which imports triton (shipped with CUDA builds of torch);
        # loading triton after TensorFlow 2.21 segfaults the process (seen with triton 3.7.1 and 3.8.0).
        return (f"torchvision {tv_version} would load triton after TensorFlow, which crashes the process "
                f"(segfault); the harness must import torch._dynamo before tensorflow (conftest.py)")
    try:
        import torchvision  # noqa: F401
        from torchvision.io import decode_jpeg  # noqa: F401
        from torchvision.transforms import v2  # noqa: F401
    except Exception as exc:  # a torchvision built against another torch build raises RuntimeError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return (f"torchvision {tv_version} cannot load its operators beside torch {torch.__version__}: "
                f"{type(exc).__name__}: {first}; use `make venv-pypi` (torch and torchvision as PyPI serves them) "
                f"and PYTHON=.venv-pypi/bin/python")
    return None


# --------------------------------------------------------------------------- files and the reference


def pil_decode(path: str) -> np.ndarray:
    """(64, 64, 3) uint8 as Pillow decodes it (libjpeg-turbo ISLOW, like torchvision)."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def pil_resized(path: str) -> np.ndarray:
    """Decoded and resized to (RESIZE, RESIZE, 3) uint8 by Pillow (bilinear, half-pixel centres)."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((RESIZE, RESIZE), Image.BILINEAR))


def crop_flip_normalise(resized: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Reference crop, flip and normalise: resized (B, 72, 72, 3) uint8/float, params (B, 3) -> (B, 64, 64, 3) float32."""
    out = np.empty((len(resized), HEIGHT, WIDTH, CHANNELS), np.float32)
    for b, (flip, dy, dx) in enumerate(np.asarray(params).tolist()):
        crop = resized[b, dy:dy + HEIGHT, dx:dx + WIDTH]
        out[b] = crop[:, ::-1] if flip else crop
    out /= np.float32(255.0)
    out -= MEAN
    out /= STD
    return out


class PilResizeLoop:
    """The ideal for jpeg-resize: Pillow decode and resize, numpy crop/flip/normalise, files in order.

    One process, no queues, no workers, no framework: what a plain loop does on this
    machine. Parameters come from the counter hash, precomputed per epoch.
    """

    def __init__(self, paths: list[str], batch: int, seed: int):
        self.paths, self.batch, self.seed = list(paths), batch, seed
        self.n = len(self.paths)
        self.epoch = 0

    def run_epoch(self) -> int:
        params = augment_params(self.seed, self.epoch, np.arange(self.n))
        self.epoch += 1
        total = 0
        for start in range(0, self.n, self.batch):
            chunk = self.paths[start:start + self.batch]
            resized = np.stack([pil_resized(p) for p in chunk])
            total += crop_flip_normalise(resized, params[start:start + len(chunk)]).shape[0]
        return total


def all_candidates(resized: np.ndarray) -> np.ndarray:
    """Every crop and flip of one resized image, normalised: (2 * 9 * 9, 64, 64, 3) float32."""
    span = RESIZE - HEIGHT + 1
    params = np.array([(f, dy, dx) for f in (0, 1) for dy in range(span) for dx in range(span)], np.int64)
    return crop_flip_normalise(np.repeat(resized[None], len(params), axis=0), params)


def matches_a_candidate(x: np.ndarray, resized: np.ndarray, atol: float = FLOAT_SLACK) -> bool:
    """True when ``x`` (64, 64, 3) is one crop-and-flip of ``resized``, normalised: a random pipeline's output."""
    cands = all_candidates(resized)
    return bool((np.abs(cands - np.asarray(x, np.float32)).reshape(len(cands), -1).max(axis=1) <= atol).any())


# --------------------------------------------------------------------------- equivalence


def check_equivalence(data: Dataset, n: int = 8, dct: str = "accurate", device: str = "cpu",
                      sides: tuple[str, ...] = ("torch", "tensorflow")) -> dict[str, tuple[float, float]]:
    """Decoded pixels, then transformed batches on the same explicit parameters, of each side
    against the Pillow/numpy reference and against each other, on the first ``n`` files.

    Raises AssertionError naming what differs beyond its bound (module doc); returns the
    (max, mean) differences seen, in levels for decodes and normalised units for batches.
    Imports each framework only when its side is asked for.
    """
    paths, _, indices = jpeg_files(data, n)
    params = augment_params(data.seed, 0, indices)
    pil = np.stack([pil_decode(p) for p in paths])
    reference = crop_flip_normalise(np.stack([pil_resized(p) for p in paths]), params)
    seen, decoded, outs = {}, {}, {}
    if "torch" in sides:
        from . import tv_pipelines as tv

        images = tv.decoded(paths, device)
        bound = NVJPEG if device == "cuda" else SAME_IDCT
        decoded["torchvision"] = (np.stack([im.permute(1, 2, 0).cpu().numpy() for im in images]), bound)
        outs["torchvision"] = np.stack([tv.explicit_transform(im, p).permute(1, 2, 0).cpu().numpy()
                                        for im, p in zip(images, params)])
    if "tensorflow" in sides:
        from . import tfimage_pipelines as tfi

        decoded["tf.image"] = (tfi.decoded(paths, dct), decode_bound(dct))
        outs["tf.image"] = tfi.explicit_batch(paths, params, dct, device)
    for side, (pixels, bound) in decoded.items():
        seen[f"decode {side} vs Pillow"] = assert_within(pixels, pil, bound, f"{side} decode against Pillow's")
        seen[f"batch {side} vs reference"] = assert_within(
            outs[side], reference, transform_bound(bound, PIL_RESIZE_ROUNDING),
            f"{side} transform against the Pillow/numpy reference, same parameters")
    if len(decoded) == 2:
        (pa, ba), (pb, bb) = decoded["torchvision"], decoded["tf.image"]
        seen["decode torchvision vs tf.image"] = assert_within(pa, pb, ba + bb, "torchvision decode against tf's")
        seen["batch torchvision vs tf.image"] = assert_within(
            outs["torchvision"], outs["tf.image"], transform_bound(ba + bb),
            "torchvision transform against tf.image's, same parameters")
    return seen
