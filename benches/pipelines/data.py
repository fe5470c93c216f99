"""The synthetic image-classification set, generated once and cached on disk.

N samples of 64x64x3 uint8 images (HWC) with labels in 0..9, from one seed. Three
storage forms of the same samples: in-memory numpy arrays (regenerated from the
seed, which is cheap), TFRecord shards and a folder of JPEG files (quality 95) with
a label index. The cache directory is built beside its final place and renamed into
it, every file is written as temp + rename, and ``manifest.json`` (a content hash of
every file) is written last: a directory with a missing or mismatching manifest is
incomplete or corrupt and is rebuilt, never trusted and never crashed on.

Augmentation randomness is counter-based: ``augment_params(seed, epoch, index)``
gives (flip, dy, dx) from a fixed integer hash, so both frameworks, in any worker
and in any order, compute the same transform for the same sample and epoch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VERSION = 1  # bump when the generator or the file layout changes
HEIGHT = WIDTH = 64
CHANNELS = 3
CLASSES = 10
PAD = 4
JPEG_QUALITY = 95
SHARDS = 8
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
CACHE_ROOT = Path(__file__).resolve().parents[2] / ".cache" / "pipelines"
MANIFEST = "manifest.json"
INDEX_FILE = "labels.csv"

# The counter-based hash: a few rounds of a quadratic map modulo the Mersenne prime
# 2**31-1. Every intermediate stays below 2**62, so int64 arithmetic in numpy and in
# TensorFlow gives bit-identical results (no overflow, no unsigned types needed).
_P = 2147483647
_ROUNDS = 3


class EpochRunner:
    """One epoch of a pipeline, as the benchmarks time it; shared by both frameworks.

    A subclass provides ``batches(epoch)`` (yielding (x, label, index)), ``epoch`` and
    ``first_batch_s``; every batch is pulled, and the time to the first one is noted.
    """

    def run_epoch(self) -> int:
        start = time.perf_counter()
        seen = 0
        for x, _, _ in self.batches(self.epoch):
            if not seen:
                self.first_batch_s.append(time.perf_counter() - start)
            seen += int(x.shape[0])
        self.epoch += 1
        return seen


@dataclass(frozen=True)
class Dataset:
    """One cached dataset: its arrays and where its files are."""

    n: int
    seed: int
    root: Path
    images: np.ndarray  # (n, 64, 64, 3) uint8
    labels: np.ndarray  # (n,) int64

    @property
    def tfrecord_files(self) -> list[str]:
        return [str(self.root / "tfrecord" / _shard_name(i)) for i in range(SHARDS)]

    @property
    def jpeg_dir(self) -> Path:
        return self.root / "jpeg"

    @property
    def jpeg_index(self) -> Path:
        return self.root / "jpeg" / INDEX_FILE


# --------------------------------------------------------------------------- samples


def make_samples(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic images and labels: smooth colour fields plus noise, so JPEG sizes are realistic."""
    rng = np.random.default_rng([seed, n, VERSION])
    labels = rng.integers(0, CLASSES, n).astype(np.int64)
    coarse = rng.integers(0, 256, (n, 8, 8, CHANNELS)).astype(np.float32)
    smooth = coarse.repeat(HEIGHT // 8, axis=1).repeat(WIDTH // 8, axis=2)
    noise = rng.normal(0.0, 12.0, (n, HEIGHT, WIDTH, CHANNELS)).astype(np.float32)
    images = np.clip(smooth + noise, 0, 255).astype(np.uint8)
    return images, labels


def mix(seed, epoch, index):
    """The counter-based hash, in numpy int64: three independent words per (seed, epoch, index)."""
    h = (np.int64(seed) * 1000003 + np.asarray(epoch, np.int64) * 7919 + 12345) % _P
    words = []
    for salt in (1, 2, 3):
        w = (h * 65537 + np.asarray(index, np.int64) * 2654435 + salt * 40503) % _P
        for _ in range(_ROUNDS):
            w = (w * w + 1013904223) % _P
        words.append(w)
    return words


def params_from_words(words):
    """(flip, dy, dx) from hashed words, with operations numpy and TensorFlow share."""
    a, b, c = words
    return (a // 64) % 2, (b // 64) % (2 * PAD + 1), (c // 64) % (2 * PAD + 1)


def augment_params(seed: int, epoch: int, index) -> np.ndarray:
    """Augmentation parameters, shape (..., 3) int64: flip in {0,1}, dy and dx in 0..8."""
    return np.stack(params_from_words(mix(seed, epoch, index)), axis=-1).astype(np.int64)


# --------------------------------------------------------------------------- files


def _shard_name(i: int) -> str:
    return f"shard-{i:02d}-of-{SHARDS:02d}.tfrecord"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _example(image: bytes, label: int, index: int) -> bytes:
    import tensorflow as tf

    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[index])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_tfrecord(path: Path, records) -> None:
    """One shard via TensorFlow's writer (it frames and checksums), then renamed into place.

    TensorFlow is imported only here: generation runs in the main process, and
    DataLoader workers, which import this module, never write.
    """
    import tensorflow as tf

    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tf.io.TFRecordWriter(str(tmp)) as writer:
        for record in records:
            writer.write(record)
    os.replace(tmp, path)


def _jpeg(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _write_files(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    (root / "tfrecord").mkdir(parents=True)
    (root / "jpeg").mkdir()
    n = len(labels)
    for shard in range(SHARDS):
        # Samples are dealt round-robin, so every shard holds a spread of indices.
        records = (_example(images[i].tobytes(), int(labels[i]), i) for i in range(shard, n, SHARDS))
        _write_tfrecord(root / "tfrecord" / _shard_name(shard), records)
    lines = ["filename,label,index"]
    for i in range(n):
        name = f"{i:06d}.jpg"
        _atomic_write(root / "jpeg" / name, _jpeg(images[i]))
        lines.append(f"{name},{int(labels[i])},{i}")
    _atomic_write(root / "jpeg" / INDEX_FILE, ("\n".join(lines) + "\n").encode())


def _content_hash(root: Path) -> str:
    """sha256 over every file but the manifest: relative path, size and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(root).as_posix()
        if rel.endswith(".tmp"):
            continue
        data = path.read_bytes()
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _arrays_hash(images: np.ndarray, labels: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()


def is_complete(root: Path, n: int, seed: int, arrays_hash: str | None = None) -> bool:
    """True when ``root`` holds a manifest that matches its files (and, if given, the arrays)."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        return (manifest.get("version") == VERSION and manifest.get("n") == n and manifest.get("seed") == seed
                and (arrays_hash is None or manifest.get("arrays_sha256") == arrays_hash)
                and manifest.get("files_sha256") == _content_hash(root))
    except (OSError, ValueError, AttributeError):
        return False


_verified: dict[tuple[Path, int, int], Dataset] = {}


def ensure_dataset(n: int, seed: int = 0, cache_root: Path | str | None = None) -> Dataset:
    """The dataset of ``n`` samples from ``seed``: reused when its cache verifies, else (re)built.

    Verified once per process; a rebuild happens in a fresh directory that replaces
    the old one only when complete, so a crash mid-way leaves nothing that verifies.
    """
    cache_root = Path(cache_root) if cache_root is not None else CACHE_ROOT
    root = cache_root / f"images-v{VERSION}-n{n}-s{seed}"
    key = (root, n, seed)
    if key in _verified:
        return _verified[key]
    images, labels = make_samples(n, seed)
    arrays_hash = _arrays_hash(images, labels)
    if not is_complete(root, n, seed, arrays_hash):
        cache_root.mkdir(parents=True, exist_ok=True)
        build = cache_root / f".build-{root.name}-{uuid.uuid4().hex}"
        try:
            _write_files(build, images, labels)
            manifest = {"version": VERSION, "n": n, "seed": seed, "shards": SHARDS, "jpeg_quality": JPEG_QUALITY,
                        "arrays_sha256": arrays_hash, "files_sha256": _content_hash(build)}
            _atomic_write(build / MANIFEST, json.dumps(manifest, indent=1).encode())
            _replace_dir(build, root, lambda: is_complete(root, n, seed, arrays_hash))
        finally:
            shutil.rmtree(build, ignore_errors=True)
        if not is_complete(root, n, seed, arrays_hash):
            raise RuntimeError(f"dataset cache {root} did not verify right after it was written")
    dataset = Dataset(n=n, seed=seed, root=root, images=images, labels=labels)
    _verified[key] = dataset
    return dataset


def _replace_dir(build: Path, root: Path, complete) -> None:
    """Move the finished build into place; a stale or corrupt ``root`` is moved aside first.

    A ``root`` that another process completed meanwhile (``complete()``; processes of one
    pytest-xdist run build the same set at once in a fresh checkout) is kept and our build
    dropped: that process may be reading it already.
    """
    try:
        os.replace(build, root)  # atomic; fails while root holds files
        return
    except OSError:
        if complete():
            return
    trash = root.with_name(f".trash-{root.name}-{uuid.uuid4().hex}")
    try:
        os.replace(root, trash)
    except OSError:
        pass
    shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(build, root)
    except OSError:
        pass  # another process put its copy there in between; it verifies below


def read_jpeg_index(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Filenames, labels and sample indices from the JPEG folder's label index."""
    names, labels, indices = [], [], []
    with open(path) as f:
        next(f)
        for line in f:
            name, label, index = line.strip().split(",")
            names.append(name)
            labels.append(int(label))
            indices.append(int(index))
    return names, np.array(labels, np.int64), np.array(indices, np.int64)
