"""The numpy reference transform and the ideal loop.

The transform, per sample (image HWC uint8, params (flip, dy, dx)):
uint8 -> float32 in [0, 1]; normalise by MEAN/STD; flip left-right if flip; pad 4
pixels of zeros on each side; crop 64x64 at (dy, dx). Both frameworks implement the
same steps in the same order, so results agree to float rounding.

The ideal is a tight loop over pre-batched in-memory arrays applying that transform
vectorised: no framework, no queues, no workers. Its throughput is what the machine
can do for this transform, and each pipeline records the fraction of it that it
reaches.
"""

from __future__ import annotations

import numpy as np

from .data import HEIGHT, MEAN, PAD, STD, WIDTH, augment_params


def transform_batch(images: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The transform on a batch: images (B, 64, 64, 3) uint8, params (B, 3) -> (B, 64, 64, 3) float32.

    Normalise and pad are vectorised; flip and crop are one strided slice per sample
    (a crop of the flipped padded image is a reversed crop of the padded image at the
    mirrored offset), which is cheaper than any gather over the whole batch.
    """
    # In place, in the same order of operations as the frameworks: no temporaries.
    x = np.zeros((len(images), HEIGHT + 2 * PAD, WIDTH + 2 * PAD, images.shape[-1]), np.float32)
    inner = x[:, PAD:PAD + HEIGHT, PAD:PAD + WIDTH]
    inner[...] = images
    inner /= np.float32(255.0)
    inner -= MEAN
    inner /= STD
    out = np.empty((len(images), HEIGHT, WIDTH, x.shape[-1]), np.float32)
    for b, (flip, dy, dx) in enumerate(params.tolist()):
        if flip:
            out[b] = x[b, dy:dy + HEIGHT, 2 * PAD - dx:2 * PAD - dx + WIDTH][:, ::-1]
        else:
            out[b] = x[b, dy:dy + HEIGHT, dx:dx + WIDTH]
    return out


def transform_sample(image: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The transform on one sample (64, 64, 3) uint8 -> (64, 64, 3) float32."""
    return transform_batch(image[None], np.asarray(params)[None])[0]


def expected_epoch(images: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """Every sample transformed as in ``epoch``, in index order: what a pipeline must yield."""
    params = augment_params(seed, epoch, np.arange(len(images)))
    return transform_batch(images, params)


class IdealLoop:
    """One epoch of the transform over pre-batched arrays; params come precomputed per epoch."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch: int, seed: int):
        n = len(images) // batch * batch
        self.images = images[:n].reshape(-1, batch, *images.shape[1:])
        self.labels = labels[:n].reshape(-1, batch)
        self.seed = seed
        self.n = n
        self.epoch = 0

    def run_epoch(self) -> int:
        params = augment_params(self.seed, self.epoch, np.arange(self.n)).reshape(*self.labels.shape, 3)
        self.epoch += 1
        total = 0
        for images, p in zip(self.images, params):
            total += transform_batch(images, p).shape[0]
        return total
