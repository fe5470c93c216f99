"""The jpeg-resize pipeline with torchvision: ``torchvision.io.decode_jpeg`` and
``torchvision.transforms.v2`` in a DataLoader (see imageops for the transform
and bounds; jpegspec for what both sides share).

This module imports torchvision at the top: import it only once
``imageops.torchvision_problem()`` is None. DataLoader workers import it too (forkserver,
like torch_pipelines), so it must not import TensorFlow and what it hands them must pickle.

On CPU each sample is read, decoded and transformed in the Dataset (in the workers when
there are any). On CUDA the workers only read the files' bytes; the main process decodes
a whole batch on the GPU with ``decode_jpeg(device="cuda")`` (nvjpeg) and transforms the
decoded images there: the usual way to take decoding off a small CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as VF

from .data import HEIGHT, MEAN, STD, WIDTH, Dataset, EpochRunner
from .jpegspec import RESIZE, jpeg_files
from .torch_pipelines import shutdown_workers

WORKER_CONTEXT = "forkserver"
WORKER_TIMEOUT_S = 60
_MEAN, _STD = MEAN.tolist(), STD.tolist()


def random_transform() -> v2.Compose:
    """What a torchvision user writes: resize, random crop, random flip, to float, normalise."""
    return v2.Compose([
        v2.Resize((RESIZE, RESIZE), antialias=True),
        v2.RandomCrop((HEIGHT, WIDTH)),
        v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=_MEAN, std=_STD),
    ])


def decode(raw, device: str = "cpu"):
    """(3, 64, 64) uint8 from the file's bytes (a list of bytes tensors gives a list of images)."""
    return decode_jpeg(raw, mode=ImageReadMode.RGB, device=device)


def resize(image: torch.Tensor) -> torch.Tensor:
    """uint8 in, uint8 out: torchvision's fixed-point bilinear resize (half-pixel centres)."""
    return VF.resize(image, [RESIZE, RESIZE], antialias=True)


def explicit_transform(image: torch.Tensor, params) -> torch.Tensor:
    """The random transform's steps with given (flip, dy, dx), via the functional ops: (3, 64, 64) float32."""
    flip, dy, dx = (int(p) for p in params)
    x = VF.crop(resize(image), dy, dx, HEIGHT, WIDTH)
    if flip:
        x = VF.horizontal_flip(x)
    return VF.normalize(VF.to_dtype(x, torch.float32, scale=True), mean=_MEAN, std=_STD)


class JpegFiles(torch.utils.data.Dataset):
    """Map-style: index -> (x, label, sample index); with ``raw`` the file's bytes instead of x."""

    def __init__(self, paths: list[str], labels: np.ndarray, indices: np.ndarray, raw: bool = False):
        self.paths, self.raw = list(paths), raw
        self.labels = torch.from_numpy(np.asarray(labels, np.int64))
        self.indices = torch.from_numpy(np.asarray(indices, np.int64))
        self.transform = random_transform()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        data = read_file(self.paths[i])
        x = data if self.raw else self.transform(decode(data))
        return x, self.labels[i], self.indices[i]


def collate_raw(samples):
    """Bytes of different lengths cannot be stacked: a batch is the list of them, labels and indices stacked."""
    datas, labels, indices = zip(*samples)
    return list(datas), torch.stack(labels), torch.stack(indices)


@dataclass(frozen=True)
class Knobs:
    num_workers: int = 0


class TorchvisionPipeline(EpochRunner):
    """One DataLoader over the first ``n`` JPEG files, shuffled by a seeded generator."""

    framework = "torch"

    def __init__(self, data: Dataset, n: int, batch: int, knobs: Knobs, device: str = "cpu"):
        self.device, self.knobs, self.batch = device, knobs, batch
        paths, labels, indices = jpeg_files(data, n)
        self.dataset = JpegFiles(paths, labels, indices, raw=device == "cuda")
        self.gpu_transform = random_transform() if device == "cuda" else None
        workers = knobs.num_workers
        self.loader = DataLoader(
            self.dataset, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(data.seed),
            collate_fn=collate_raw if device == "cuda" else None, num_workers=workers,
            timeout=WORKER_TIMEOUT_S if workers else 0, multiprocessing_context=WORKER_CONTEXT if workers else None,
            persistent_workers=bool(workers), prefetch_factor=2 if workers else None,
        )
        self.epoch = 0
        self.first_batch_s: list[float] = []

    def batches(self, epoch: int):
        """The batches of one epoch as (x NCHW float32, label, index); the shuffle comes from the generator."""
        for x, y, i in self.loader:
            if self.device == "cuda":
                images = decode(x, device="cuda")
                x = torch.stack([self.gpu_transform(image) for image in images])
                y = y.to("cuda", non_blocking=True)
            yield x, y, i

    def close(self) -> None:
        shutdown_workers(self.loader)
        self.loader = None


def build(data: Dataset, n: int, batch: int, knobs: Knobs, device: str = "cpu") -> TorchvisionPipeline:
    # Have the fork server import this module (torch, torchvision) once, if it is not running yet.
    torch.multiprocessing.get_context(WORKER_CONTEXT).set_forkserver_preload([__name__])
    return TorchvisionPipeline(data, n, batch, knobs, device)


def decoded(paths: list[str], device: str = "cpu") -> list[torch.Tensor]:
    """Each file decoded by torchvision on ``device``, (3, 64, 64) uint8."""
    raws = [read_file(p) for p in paths]
    return list(decode(raws, device=device)) if device != "cpu" else [decode(r) for r in raws]
