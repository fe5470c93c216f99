"""DataLoader pipelines over the three storage forms (TFRecord has no DataLoader reader:
the ``tfrecord`` source is tf.data's own format and is timed on that side only).

Workers start with the ``forkserver`` method, never ``fork``: the benchmark process
has TensorFlow's thread pools running (the harness imports it at start-up), and a
forked child inherits locks that those threads may hold, which can hang it. So this
module is what workers import; it must not import TensorFlow, and the Dataset and
Sampler defined here must pickle.

In-memory images live in a torch tensor in shared memory, so a worker receives a
handle, not a 100 MB copy, as it would with fork's copy-on-write.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, Sampler

from .data import HEIGHT, MEAN, PAD, STD, WIDTH, Dataset, EpochRunner, augment_params, read_jpeg_index

SOURCES = ("memory", "jpeg")
WORKER_CONTEXT = "forkserver"
WORKER_TIMEOUT_S = 60  # a stuck worker raises in the main process instead of stalling the run
_MEAN = torch.from_numpy(MEAN)
_STD = torch.from_numpy(STD)


def _normalise_chw(images: torch.Tensor) -> torch.Tensor:
    # To CHW while still uint8: torch broadcasts a per-channel constant over contiguous
    # inner dimensions several times faster than over a trailing channel dimension.
    x = images.movedim(-1, -3).contiguous().to(torch.float32)
    return (x / 255.0 - _MEAN[:, None, None]) / _STD[:, None, None]


def transform_batch(images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The shared transform, batched: (B, 64, 64, 3) uint8 and (B, 3) int64 -> (B, 3, 64, 64) float32.

    Normalise and pad run on the whole batch; flip and crop are one slice per sample
    (a crop of the flipped padded image is a reversed crop at the mirrored offset):
    an index gather over the batch is several times slower on the CPU.
    """
    x = F.pad(_normalise_chw(images), (PAD, PAD, PAD, PAD))
    out = torch.empty((x.shape[0], x.shape[1], HEIGHT, WIDTH), dtype=torch.float32)
    for b, (flip, dy, dx) in enumerate(params.tolist()):
        if flip:
            out[b] = x[b, :, dy:dy + HEIGHT, 2 * PAD - dx:2 * PAD - dx + WIDTH].flip(2)
        else:
            out[b] = x[b, :, dy:dy + HEIGHT, dx:dx + WIDTH]
    return out


def transform_sample(image: torch.Tensor, params) -> torch.Tensor:
    """The shared transform on one sample: (64, 64, 3) uint8 -> (3, 64, 64) float32."""
    flip, dy, dx = (int(p) for p in params)
    x = _normalise_chw(image)
    if flip:
        x = x.flip(2)
    x = F.pad(x, (PAD, PAD, PAD, PAD))
    return x[:, dy:dy + HEIGHT, dx:dx + WIDTH].contiguous()


class EpochSampler(Sampler):
    """A seeded shuffle per epoch that yields ``(epoch, index)`` keys.

    The sampler runs in the main process, so the epoch travels with each key to the
    workers (persistent workers keep their own copy of the Dataset and would never
    see a ``set_epoch`` on it).
    """

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        return iter([(self.epoch, int(i)) for i in order])

    def __len__(self) -> int:
        return self.n


class ImageDataset(torch.utils.data.Dataset):
    """Map-style dataset of one source: a key ``(epoch, index)`` gives ``(x, label, index)``.

    A list of keys (from a BatchSampler with ``batch_size=None``) gives a whole batch,
    transformed in one vectorised call: the batched-fetch variant.
    """

    def __init__(self, source: str, data: Dataset):
        self.source, self.seed = source, data.seed
        if source == "memory":
            self.images = torch.from_numpy(data.images).share_memory_()
            self.labels = torch.from_numpy(data.labels)
        elif source == "jpeg":
            names, labels, indices = read_jpeg_index(data.jpeg_index)
            order = np.argsort(indices)
            self.paths = [str(data.jpeg_dir / names[i]) for i in order]
            self.labels = torch.from_numpy(labels[order])
        else:
            raise ValueError(f"DataLoader has no reader for source {source!r}; it reads {', '.join(SOURCES)}")

    def __len__(self) -> int:
        return len(self.labels)

    def _image(self, index: int) -> torch.Tensor:
        if self.source == "memory":
            return self.images[index]
        from PIL import Image

        with Image.open(self.paths[index]) as img:
            return torch.from_numpy(np.array(img.convert("RGB")))

    def __getitem__(self, key):
        if isinstance(key, list):
            return self._batch(key)
        epoch, index = key
        params = augment_params(self.seed, epoch, index)
        return transform_sample(self._image(index), params), self.labels[index], index

    def _batch(self, keys):
        epochs = np.array([k[0] for k in keys], np.int64)
        indices = np.array([k[1] for k in keys], np.int64)
        params = torch.from_numpy(augment_params(self.seed, epochs, indices))
        index_t = torch.from_numpy(indices)
        if self.source == "memory":
            images = self.images[index_t]
        else:
            images = torch.stack([self._image(int(i)) for i in indices])
        return transform_batch(images, params), self.labels[index_t], index_t


@dataclass(frozen=True)
class Knobs:
    num_workers: int = 0
    persistent_workers: bool = False
    prefetch_factor: int | None = None
    batched_fetch: bool = False


class TorchPipeline(EpochRunner):
    """One DataLoader over one source; ``run_epoch`` iterates a whole epoch and counts samples."""

    framework = "torch"

    def __init__(self, source: str, data: Dataset, batch: int, knobs: Knobs, device: str = "cpu"):
        self.device, self.knobs, self.batch = device, knobs, batch
        self.sampler = EpochSampler(data.n, data.seed)
        self.dataset = ImageDataset(source, data)
        workers = knobs.num_workers
        common = dict(
            num_workers=workers,
            pin_memory=device == "cuda",
            timeout=WORKER_TIMEOUT_S if workers else 0,
            multiprocessing_context=WORKER_CONTEXT if workers else None,
            persistent_workers=knobs.persistent_workers if workers else False,
            prefetch_factor=knobs.prefetch_factor if workers else None,
        )
        if knobs.batched_fetch:
            self.loader = DataLoader(self.dataset, batch_size=None,
                                     sampler=BatchSampler(self.sampler, batch, drop_last=False), **common)
        else:
            self.loader = DataLoader(self.dataset, batch_size=batch, sampler=self.sampler, **common)
        self.epoch = 0
        self.first_batch_s: list[float] = []

    def batches(self, epoch: int):
        """The batches of ``epoch`` as (x, label, index) tensors, on the pipeline's device."""
        self.sampler.set_epoch(epoch)
        for x, y, i in self.loader:
            if self.device == "cuda":
                x = x.to("cuda", non_blocking=True)
                y = y.to("cuda", non_blocking=True)
            yield x, y, i


    def close(self) -> None:
        shutdown_workers(self.loader)
        self.loader = None


def shutdown_workers(loader) -> None:
    """Stop a DataLoader's persistent workers now, not whenever the loader is collected."""
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()


def preload_workers() -> None:
    """Have the fork server import this module (and torch) once, so each worker starts from it."""
    ctx = torch.multiprocessing.get_context(WORKER_CONTEXT)
    ctx.set_forkserver_preload([__name__])


def build(source: str, data: Dataset, batch: int, knobs: Knobs, device: str = "cpu") -> TorchPipeline:
    preload_workers()
    return TorchPipeline(source, data, batch, knobs, device)


def jpeg_images(data: Dataset, indices) -> np.ndarray:
    """Decoded JPEG images as Pillow gives them, for comparing decoders across frameworks."""
    dataset = ImageDataset("jpeg", data)
    return np.stack([dataset._image(int(i)).numpy() for i in indices])

