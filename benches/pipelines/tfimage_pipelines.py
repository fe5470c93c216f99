"""The jpeg-resize pipeline with TensorFlow: ``tf.io.decode_jpeg`` and ``tf.image`` in tf.data
(see imageops for the transform and bounds; jpegspec for what both sides share).

On CPU one parallel map (AUTOTUNE) reads, decodes, resizes, crops, flips and normalises
each file, then batches and prefetches. TensorFlow has no GPU kernel for decode_jpeg, so
TF's GPU path decodes in tf.data on the CPU, batches the uint8 images, prefetches them to
the GPU and runs the image ops there (resize, then per-sample crop and flip as one
``crop_and_resize`` with pixel-aligned boxes, normalise) in a tf.function.

``dct`` picks tf.io.decode_jpeg's IDCT: "accurate" (INTEGER_ACCURATE, the same ISLOW
IDCT as torchvision and Pillow: the same math, the default here) or "default" (what TF
does when not told: INTEGER_FAST, quicker and up to about 10 levels off).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .data import CHANNELS, HEIGHT, MEAN, STD, WIDTH, Dataset, EpochRunner
from .jpegspec import DCT_METHODS, RESIZE, jpeg_files


def decode(raw, dct: str = "accurate"):
    return tf.io.decode_jpeg(raw, channels=CHANNELS, dct_method=DCT_METHODS[dct])


def resize(image):
    """float32 in 0..255 (TensorFlow resizes in float: no rounding back to uint8)."""
    return tf.image.resize(image, [RESIZE, RESIZE], method="bilinear")


def normalise(x):
    return (x / 255.0 - MEAN) / STD


def explicit_transform(image, params):
    """The random transform's steps with given (flip, dy, dx), via tf.image's functional ops: (64, 64, 3) float32."""
    flip, dy, dx = (int(p) for p in params)
    x = tf.image.crop_to_bounding_box(resize(image), dy, dx, HEIGHT, WIDTH)
    if flip:
        x = tf.image.flip_left_right(x)
    return normalise(x)


def random_transform(image, seed: int):
    """What a tf.image user writes: resize, random crop, random flip, normalise."""
    x = tf.image.random_crop(resize(image), [HEIGHT, WIDTH, CHANNELS], seed=seed)
    x = tf.image.random_flip_left_right(x, seed=seed)
    return normalise(x)


def crop_flip_batch(x, flip, dy, dx):
    """Per-sample crop and flip of a (B, 72, 72, 3) batch in one op, for the GPU path.

    Boxes are pixel-aligned (a box with x1 > x2 is mirrored), so bilinear weights are 0
    or 1 up to float rounding: the exact crop within 1e-5.
    """
    size = float(RESIZE - 1)
    top, left = tf.cast(dy, tf.float32), tf.cast(dx, tf.float32)
    right = left + (WIDTH - 1)
    mirrored = flip == 1
    x1, x2 = tf.where(mirrored, right, left) / size, tf.where(mirrored, left, right) / size
    boxes = tf.stack([top / size, x1, (top + (HEIGHT - 1)) / size, x2], axis=1)
    return tf.image.crop_and_resize(x, boxes, tf.range(tf.shape(x)[0]), [HEIGHT, WIDTH])


@dataclass(frozen=True)
class Knobs:
    num_parallel_calls: int | str = "autotune"
    dct: str = "accurate"


class TFImagePipeline(EpochRunner):
    """One tf.data pipeline over the first ``n`` JPEG files, reshuffled each epoch from a seed."""

    framework = "tensorflow"

    def __init__(self, data: Dataset, n: int, batch: int, knobs: Knobs, device: str = "cpu"):
        self.knobs, self.batch, self.device = knobs, batch, device
        paths, labels, indices = jpeg_files(data, n)
        npc = tf.data.AUTOTUNE if knobs.num_parallel_calls == "autotune" else int(knobs.num_parallel_calls)
        seed, dct = data.seed, knobs.dct

        def load(path, label, index):
            return decode(tf.io.read_file(path), dct), label, index

        def load_transform(path, label, index):
            image, label, index = load(path, label, index)
            return random_transform(tf.ensure_shape(image, [HEIGHT, WIDTH, CHANNELS]), seed), label, index

        with tf.device("/CPU:0"):
            ds = tf.data.Dataset.from_tensor_slices((paths, labels, indices))
            ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
            if device == "cuda":
                ds = ds.map(lambda p, y, i: (tf.ensure_shape(load(p, y, i)[0], [HEIGHT, WIDTH, CHANNELS]), y, i),
                            num_parallel_calls=npc).batch(batch)
                ds = ds.apply(tf.data.experimental.prefetch_to_device("/GPU:0"))
            else:
                ds = ds.map(load_transform, num_parallel_calls=npc).batch(batch).prefetch(tf.data.AUTOTUNE)
        self.dataset = ds
        self.gpu_augment = self._gpu_augment(seed) if device == "cuda" else None
        self.epoch = 0
        self.first_batch_s: list[float] = []

    @staticmethod
    def _gpu_augment(seed: int):
        rng = tf.random.Generator.from_seed(seed)

        @tf.function
        def augment(images):
            n = tf.shape(images)[0]
            flip = rng.uniform([n], 0, 2, dtype=tf.int32)
            dy = rng.uniform([n], 0, RESIZE - HEIGHT + 1, dtype=tf.int32)
            dx = rng.uniform([n], 0, RESIZE - WIDTH + 1, dtype=tf.int32)
            return normalise(crop_flip_batch(resize(images), flip, dy, dx))

        return augment

    def batches(self, epoch: int):
        """The batches of one epoch as (x NHWC float32, label, index); tf.data reshuffles each iteration."""
        for x, y, i in self.dataset:
            if self.gpu_augment is not None:
                with tf.device("/GPU:0"):
                    x = self.gpu_augment(x)
            yield x, y, i

    def close(self) -> None:
        self.dataset = None


def build(data: Dataset, n: int, batch: int, knobs: Knobs, device: str = "cpu") -> TFImagePipeline:
    return TFImagePipeline(data, n, batch, knobs, device)


def decoded(paths: list[str], dct: str = "accurate") -> np.ndarray:
    """Each file decoded by tf.io.decode_jpeg, (N, 64, 64, 3) uint8."""
    return np.stack([decode(tf.io.read_file(p), dct).numpy() for p in paths])


def explicit_batch(paths: list[str], params: np.ndarray, dct: str = "accurate", device: str = "cpu") -> np.ndarray:
    """Decode on the CPU, then the explicit transform on ``device``: (N, 64, 64, 3) float32."""
    images = [decode(tf.io.read_file(p), dct) for p in paths]
    with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
        return np.stack([explicit_transform(image, p).numpy() for image, p in zip(images, params)])
