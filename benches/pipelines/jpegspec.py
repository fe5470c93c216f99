"""What the jpeg-resize pipeline's sides share: its group name, the resize size, TensorFlow's
decode knob and the files in sample order.

imageops.py (the spec's bounds, reference and equivalence check) imports the torchvision and
tf.image pipelines, and both pipelines need these names: they live here so that neither
pipeline imports imageops back.
"""

from __future__ import annotations

import numpy as np

from .data import HEIGHT, PAD, Dataset, read_jpeg_index

SOURCE = "jpeg-resize"  # the group pipeline/jpeg-resize/<device>
RESIZE = HEIGHT + 2 * PAD  # 72: random crops of 64 take offsets 0..8, the range augment_params draws
DCT_METHODS = {"accurate": "INTEGER_ACCURATE", "default": ""}  # knob value -> tf.io.decode_jpeg dct_method


def jpeg_files(data: Dataset, n: int | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The first ``n`` JPEG paths in sample-index order, with their labels and indices."""
    names, labels, indices = read_jpeg_index(data.jpeg_index)
    order = np.argsort(indices)[: (n if n is not None else len(indices))]
    return [str(data.jpeg_dir / names[i]) for i in order], labels[order], indices[order]
