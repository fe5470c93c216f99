"""tf.data pipelines over the three storage forms.

The shape of every pipeline: read (slices of arrays / TFRecord shards interleaved /
listed JPEG files) -> decode to a uint8 HWC image with its label and sample index
(map, ``num_parallel_calls``) -> optional ``cache()`` of decoded samples -> seeded
``shuffle`` -> augment per sample then ``batch``, or ``batch`` then augment the whole
batch (vectorised) -> ``prefetch(AUTOTUNE)`` (to the GPU on CUDA). ``deterministic``
is passed to every parallel stage.

The augmentation parameters come from the same counter-based hash as the numpy side
(data.mix), computed in int64 inside the graph from (seed, epoch, sample index). The
epoch is a variable the map functions read, set before each epoch's iterator is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .data import _P, _ROUNDS, HEIGHT, MEAN, PAD, SHARDS, STD, WIDTH, CHANNELS, Dataset, EpochRunner, read_jpeg_index

SOURCES = ("memory", "tfrecord", "jpeg")
SHUFFLE_BUFFER = 1024  # decoded samples; a full-epoch buffer would delay the first batch by a whole decode pass


def mix(seed, epoch, index):
    """data.mix in TensorFlow int64: bit-identical words."""
    index = tf.cast(index, tf.int64)
    h = (tf.constant(seed, tf.int64) * 1000003 + tf.cast(epoch, tf.int64) * 7919 + 12345) % _P
    words = []
    for salt in (1, 2, 3):
        w = (h * 65537 + index * 2654435 + salt * 40503) % _P
        for _ in range(_ROUNDS):
            w = (w * w + 1013904223) % _P
        words.append(w)
    return words


def augment_params(seed, epoch, index):
    a, b, c = mix(seed, epoch, index)
    return (a // 64) % 2, (b // 64) % (2 * PAD + 1), (c // 64) % (2 * PAD + 1)


def _normalise(image):
    return (tf.cast(image, tf.float32) / 255.0 - MEAN) / STD


def transform_sample(image, flip, dy, dx):
    """The shared transform on one sample: (64, 64, 3) uint8 -> (64, 64, 3) float32."""
    x = _normalise(image)
    x = tf.where(flip == 1, tf.reverse(x, [1]), x)
    x = tf.pad(x, [[PAD, PAD], [PAD, PAD], [0, 0]])
    return tf.slice(x, tf.stack([dy, dx, tf.constant(0, tf.int64)]), [HEIGHT, WIDTH, CHANNELS])


def transform_batch(images, flip, dy, dx):
    """The shared transform, batched: (B, 64, 64, 3) uint8 -> (B, 64, 64, 3) float32.

    Flip and crop are one ``crop_and_resize`` with pixel-aligned boxes (a box with
    x1 > x2 is mirrored): bilinear weights are 0 or 1 up to float rounding, so it
    equals the exact crop within 1e-5, and runs several times faster than a
    per-sample ``tf.gather`` with ``batch_dims``.
    """
    x = _normalise(images)
    x = tf.pad(x, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    size = float(HEIGHT + 2 * PAD - 1)
    top = tf.cast(dy, tf.float32)
    mirrored = flip == 1
    # A crop of the flipped padded image at dx is the padded image's crop at 2*PAD-dx, reversed.
    left = tf.cast(tf.where(mirrored, 2 * PAD - dx, dx), tf.float32)
    right = left + (WIDTH - 1)
    x1 = tf.where(mirrored, right, left) / size
    x2 = tf.where(mirrored, left, right) / size
    boxes = tf.stack([top / size, x1, (top + (HEIGHT - 1)) / size, x2], axis=1)
    box_indices = tf.range(tf.shape(images)[0])
    return tf.image.crop_and_resize(x, boxes, box_indices, [HEIGHT, WIDTH])


@dataclass(frozen=True)
class Knobs:
    num_parallel_calls: int | str = "autotune"  # 1 or "autotune"
    vectorized: bool = True
    cache: bool = False
    deterministic: bool = True


def _parallel(knobs: Knobs):
    return tf.data.AUTOTUNE if knobs.num_parallel_calls == "autotune" else int(knobs.num_parallel_calls)


def decoded_samples(source: str, data: Dataset, knobs: Knobs) -> tf.data.Dataset:
    """(image uint8 HWC, label int64, index int64) per sample, in storage order."""
    npc, det = _parallel(knobs), knobs.deterministic
    if source == "memory":
        return tf.data.Dataset.from_tensor_slices(
            (data.images, data.labels, np.arange(data.n, dtype=np.int64)))
    if source == "tfrecord":
        spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64),
                "index": tf.io.FixedLenFeature([], tf.int64)}

        def parse(record):
            example = tf.io.parse_single_example(record, spec)
            image = tf.reshape(tf.io.decode_raw(example["image"], tf.uint8), [HEIGHT, WIDTH, CHANNELS])
            return image, example["label"], example["index"]

        shards = tf.data.Dataset.from_tensor_slices(data.tfrecord_files)
        records = shards.interleave(tf.data.TFRecordDataset, cycle_length=SHARDS, num_parallel_calls=npc,
                                    deterministic=det)
        return records.map(parse, num_parallel_calls=npc, deterministic=det)
    if source == "jpeg":
        _, labels, indices = read_jpeg_index(data.jpeg_index)
        label_of = np.zeros(data.n, np.int64)
        label_of[indices] = labels
        label_table = tf.constant(label_of)

        def load(path):
            name = tf.strings.split(path, "/")[-1]
            index = tf.strings.to_number(tf.strings.substr(name, 0, 6), tf.int64)
            image = tf.io.decode_jpeg(tf.io.read_file(path), channels=CHANNELS)
            return tf.ensure_shape(image, [HEIGHT, WIDTH, CHANNELS]), tf.gather(label_table, index), index

        files = tf.data.Dataset.list_files(str(data.jpeg_dir / "*.jpg"), shuffle=False)
        return files.map(load, num_parallel_calls=npc, deterministic=det)
    raise ValueError(f"unknown source {source!r}; tf.data reads {', '.join(SOURCES)}")


class TFPipeline(EpochRunner):
    """One tf.data pipeline over one source; ``run_epoch`` iterates a whole epoch and counts samples."""

    framework = "tensorflow"

    def __init__(self, source: str, data: Dataset, batch: int, knobs: Knobs, device: str = "cpu"):
        self.knobs, self.batch, self.device = knobs, batch, device
        self.epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
        seed, npc, det = data.seed, _parallel(knobs), knobs.deterministic
        epoch_var = self.epoch_var
        with tf.device("/CPU:0"):
            ds = decoded_samples(source, data, knobs)
            if knobs.cache:
                ds = ds.cache()
            ds = ds.shuffle(min(SHUFFLE_BUFFER, data.n), seed=seed, reshuffle_each_iteration=True)
            if knobs.vectorized:

                def augment(images, labels, indices):
                    flip, dy, dx = augment_params(seed, epoch_var.read_value(), indices)
                    return transform_batch(images, flip, dy, dx), labels, indices

                ds = ds.batch(batch).map(augment, num_parallel_calls=npc, deterministic=det)
            else:

                def augment(image, label, index):
                    flip, dy, dx = augment_params(seed, epoch_var.read_value(), index)
                    return transform_sample(image, flip, dy, dx), label, index

                ds = ds.map(augment, num_parallel_calls=npc, deterministic=det).batch(batch)
            if device == "cuda":
                ds = ds.apply(tf.data.experimental.prefetch_to_device("/GPU:0"))
            else:
                ds = ds.prefetch(tf.data.AUTOTUNE)
        self.dataset = ds
        self.epoch = 0
        self.first_batch_s: list[float] = []

    def batches(self, epoch: int):
        """The batches of ``epoch`` as (x, label, index) tensors (x NHWC)."""
        self.epoch_var.assign(epoch)
        return iter(self.dataset)


    def close(self) -> None:
        self.dataset = None


def build(source: str, data: Dataset, batch: int, knobs: Knobs, device: str = "cpu") -> TFPipeline:
    return TFPipeline(source, data, batch, knobs, device)


def jpeg_images(data: Dataset, indices) -> np.ndarray:
    """Decoded JPEG images as tf.io.decode_jpeg gives them, for comparing decoders across frameworks."""
    return np.stack([tf.io.decode_jpeg(tf.io.read_file(str(data.jpeg_dir / f"{i:06d}.jpg")), channels=CHANNELS).numpy()
                     for i in indices])
