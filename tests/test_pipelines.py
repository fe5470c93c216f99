"""Correctness of the input pipelines on the smoke dataset (256 samples).

For every pipeline variant: one epoch yields every sample exactly once (checked by
the sample index each batch carries, and the label against the source), shapes and
dtypes agree between frameworks, and the transform equals the numpy reference for a
fixed seed and epoch. Also: the dataset cache is reused when complete and rebuilt
when incomplete or corrupt.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from benches.pipelines import data as pdata
from benches.pipelines.ideal import expected_epoch, transform_batch, transform_sample

N, BATCH, EPOCH = 256, 32, 3
# crop_and_resize (TensorFlow's vectorised crop) interpolates at pixel-aligned points:
# equal to the exact crop up to float rounding of the box coordinates.
ATOL = 1e-4

tf_pipelines = pytest.importorskip("benches.pipelines.tf_pipelines", reason="tensorflow is not importable")
torch_pipelines = pytest.importorskip("benches.pipelines.torch_pipelines", reason="torch is not importable")

TF_VARIANTS = [
    dict(num_parallel_calls=npc, vectorized=vec, cache=cache, deterministic=det)
    for npc in (1, "autotune") for vec in (False, True) for cache in (False, True) for det in (True, False)
    if (npc, det) != (1, False)  # determinism only matters with parallel calls
]
TORCH_VARIANTS = [
    dict(num_workers=0, persistent_workers=False, prefetch_factor=None, batched_fetch=False),
    dict(num_workers=0, persistent_workers=False, prefetch_factor=None, batched_fetch=True),
    dict(num_workers=2, persistent_workers=True, prefetch_factor=2, batched_fetch=False),
    dict(num_workers=1, persistent_workers=False, prefetch_factor=4, batched_fetch=True),
]


@pytest.fixture(scope="module")
def dataset():
    return pdata.ensure_dataset(N, 0)


def collect(pipeline, epoch):
    """One epoch as numpy arrays (x in NHWC), in the order the pipeline yields it."""
    xs, ys, ids = [], [], []
    for x, y, i in pipeline.batches(epoch):
        x = x.numpy() if hasattr(x, "numpy") and not hasattr(x, "detach") else x.detach().cpu().numpy()
        if pipeline.framework == "torch":
            x = x.transpose(0, 2, 3, 1)
        xs.append(x)
        ys.append(np.asarray(y))
        ids.append(np.asarray(i))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ids), xs[0], ys[0], ids[0]


def check_epoch(pipeline, dataset, source):
    x, y, idx, x0, y0, i0 = collect(pipeline, EPOCH)
    assert sorted(idx.tolist()) == list(range(N)), "an epoch must yield every sample exactly once"
    np.testing.assert_array_equal(y, dataset.labels[idx])
    assert x.shape == (N, 64, 64, 3) and x.dtype == np.float32
    assert y.dtype == np.int64 and idx.dtype == np.int64
    assert len(x0) == BATCH
    if source != "jpeg":  # JPEG is lossy: its decoders are compared in test_jpeg_decoders_agree
        np.testing.assert_allclose(x, expected_epoch(dataset.images, 0, EPOCH)[idx], rtol=0, atol=ATOL)
    return x0.shape, y0.shape


@pytest.mark.parametrize("source", ["memory", "tfrecord", "jpeg"])
@pytest.mark.parametrize("knobs", TF_VARIANTS, ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_tf_data_epoch(dataset, source, knobs):
    pipeline = tf_pipelines.build(source, dataset, BATCH, tf_pipelines.Knobs(**knobs))
    check_epoch(pipeline, dataset, source)


@pytest.mark.timeout(120, method="signal")
@pytest.mark.parametrize("source", ["memory", "jpeg"])
@pytest.mark.parametrize("knobs", TORCH_VARIANTS, ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_dataloader_epoch(dataset, source, knobs):
    pipeline = torch_pipelines.build(source, dataset, BATCH, torch_pipelines.Knobs(**knobs))
    try:
        check_epoch(pipeline, dataset, source)
    finally:
        pipeline.close()


def test_both_sides_give_the_same_epoch(dataset):
    """Same shapes, dtypes and values per sample on both sides (x NHWC for tf, NCHW for torch)."""
    tf_x, tf_y, tf_i, *_ = collect(tf_pipelines.build("memory", dataset, BATCH, tf_pipelines.Knobs()), EPOCH)
    pt_x, pt_y, pt_i, *_ = collect(torch_pipelines.build("memory", dataset, BATCH, torch_pipelines.Knobs()), EPOCH)
    np.testing.assert_allclose(tf_x[np.argsort(tf_i)], pt_x[np.argsort(pt_i)], rtol=0, atol=ATOL)
    np.testing.assert_array_equal(tf_y[np.argsort(tf_i)], pt_y[np.argsort(pt_i)])


def test_epochs_differ_and_repeat(dataset):
    """Augmentation depends on (seed, epoch, index) only: a new epoch changes it, the same epoch repeats it."""
    a = pdata.augment_params(0, 1, np.arange(N))
    assert not np.array_equal(a, pdata.augment_params(0, 2, np.arange(N)))
    np.testing.assert_array_equal(a, pdata.augment_params(0, 1, np.arange(N)))
    assert set(a[:, 0]) == {0, 1} and a[:, 1:].min() == 0 and a[:, 1:].max() == 2 * pdata.PAD


def test_tf_hash_matches_numpy():
    import tensorflow as tf

    index = np.arange(5000)
    for epoch in (0, 7):
        expected = pdata.augment_params(42, epoch, index)
        got = np.stack([t.numpy() for t in tf_pipelines.augment_params(42, tf.constant(epoch, tf.int64), index)], -1)
        np.testing.assert_array_equal(got, expected)


def test_per_sample_and_batched_transforms_agree(dataset):
    import torch

    params = pdata.augment_params(0, 0, np.arange(8))
    images = dataset.images[:8]
    reference = transform_batch(images, params)
    for i in range(8):
        np.testing.assert_array_equal(transform_sample(images[i], params[i]), reference[i])
        one = torch_pipelines.transform_sample(torch.from_numpy(images[i]), params[i]).numpy().transpose(1, 2, 0)
        np.testing.assert_array_equal(one, reference[i])
    batched = torch_pipelines.transform_batch(torch.from_numpy(images), torch.from_numpy(params)).numpy()
    np.testing.assert_array_equal(batched.transpose(0, 2, 3, 1), reference)
    flip, dy, dx = (params[:, k] for k in range(3))
    np.testing.assert_allclose(tf_pipelines.transform_batch(images, flip, dy, dx).numpy(), reference, atol=ATOL)


def test_jpeg_decoders_agree(dataset):
    """tf.io.decode_jpeg and Pillow decode the same files nearly alike, and close to the source."""
    indices = list(range(0, N, 17))
    tf_images = tf_pipelines.jpeg_images(dataset, indices).astype(int)
    pil_images = torch_pipelines.jpeg_images(dataset, indices).astype(int)
    # The two libjpeg builds upsample chroma differently: a few levels apart at colour edges.
    diff = np.abs(tf_images - pil_images)
    assert diff.mean() < 2.0 and diff.max() <= 16, (diff.mean(), diff.max())
    # Quality 95 with 4:2:0 chroma keeps the colour fields and drops much of the pixel noise
    # (sigma 12) the generator adds: about 12 levels off on average, never wildly off.
    assert np.abs(tf_images - dataset.images[indices].astype(int)).mean() < 16


def test_cache_is_reused_and_rebuilt(tmp_path):
    n = 24
    first = pdata.ensure_dataset(n, 5, tmp_path)
    manifest = first.root / pdata.MANIFEST
    stamp = manifest.stat().st_mtime_ns
    pdata._verified.clear()
    again = pdata.ensure_dataset(n, 5, tmp_path)
    assert manifest.stat().st_mtime_ns == stamp, "a complete cache must be reused"
    np.testing.assert_array_equal(again.images, first.images)

    # Corrupt: a truncated JPEG. Incomplete: no manifest. Garbage manifest. Each is rebuilt.
    for damage in ("corrupt", "incomplete", "garbage"):
        if damage == "corrupt":
            (first.jpeg_dir / "000003.jpg").write_bytes(b"\xff\xd8")
        elif damage == "incomplete":
            manifest.unlink()
        else:
            manifest.write_text("{not json")
        pdata._verified.clear()
        rebuilt = pdata.ensure_dataset(n, 5, tmp_path)
        assert pdata.is_complete(rebuilt.root, n, 5), damage
        assert json.loads(manifest.read_text())["n"] == n
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp or build leftovers"


def test_a_copy_another_process_completed_meanwhile_is_kept(tmp_path, monkeypatch):
    """Two processes build the same set at once (xdist workers in a fresh checkout): the second to
    finish keeps the first one's copy, which the first may be reading, and drops its own."""
    n = 24
    first = pdata.ensure_dataset(n, 5, tmp_path)
    inode = first.root.stat().st_ino
    pdata._verified.clear()
    real, looks = pdata.is_complete, []

    def looked_too_early(*args, **kwargs):  # the second process's first look came before the first one finished
        looks.append(1)
        return len(looks) > 1 and real(*args, **kwargs)

    monkeypatch.setattr(pdata, "is_complete", looked_too_early)
    second = pdata.ensure_dataset(n, 5, tmp_path)
    assert second.root == first.root and first.root.stat().st_ino == inode, "the first copy was replaced"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp or build leftovers"


# --------------------------------------------------------------------------- jpeg-resize: torchvision and tf.image

from benches.pipelines import imageops  # noqa: E402
from benches.pipelines import tfimage_pipelines  # noqa: E402


def needs_torchvision():
    problem = imageops.torchvision_problem()
    if problem:
        pytest.skip(problem)
    from benches.pipelines import tv_pipelines

    return tv_pipelines


def usable_sides() -> tuple[str, ...]:
    return (("torch",) if imageops.torchvision_problem() is None else ()) + ("tensorflow",)


def test_torchvision_requirement_names_both_versions():
    requires = ["numpy", "torch (==2.13.0)", "pillow (!=8.3.*,>=5.3.0)", "gdown (>=4.7.3) ; extra == 'gdown'"]
    assert imageops.requirement_problem("0.28.0", requires, "2.13.0") is None
    # PEP 440: a local build label does not break ==, so the CPU wheel passes this check (its import fails later).
    assert imageops.requirement_problem("0.28.0", requires, "2.13.0+cpu") is None
    problem = imageops.requirement_problem("0.28.0", requires, "2.14.1")
    assert "torchvision 0.28.0" in problem and "torch 2.14.1" in problem and "==2.13.0" in problem
    assert "\n" not in problem
    assert imageops.requirement_problem("0.28.0", ["torchaudio==2.14.1", "torch ; extra == 'x'"], "2.13.0") is None
    assert imageops.requirement_problem("0.28.0", None, "2.13.0") is None


def test_torchvision_problem_is_one_line_with_both_versions_or_none():
    """In the default .venv (CPU torch wheel) the reason names both versions and the fix; in .venv-pypi, None."""
    import importlib.metadata

    import torch

    problem = imageops.torchvision_problem()
    if problem is None:
        from torchvision.io import decode_jpeg  # noqa: F401  (it does import)
        return
    assert "\n" not in problem
    try:
        version = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        assert "not installed" in problem
        return
    assert (f"torchvision {version}" in problem and torch.__version__ in problem) or "triton" in problem


def test_bounds_are_derived_and_enforced():
    """The transform tolerance follows from the decode bound; one level past a bound fails the check."""
    accurate = imageops.transform_bound(imageops.SAME_IDCT)
    assert accurate.max == pytest.approx((1 + 1.01) / (255 * float(pdata.STD.min())) + imageops.FLOAT_SLACK)
    assert imageops.transform_bound(imageops.FAST_IDCT).max > accurate.max
    a = np.zeros((2, 4, 4, 3))
    b = a.copy()
    b[0, 0, 0, 0] = imageops.SAME_IDCT.max
    assert imageops.assert_within(a, b, imageops.SAME_IDCT, "x")[0] == imageops.SAME_IDCT.max
    b[0, 0, 0, 0] += 1
    with pytest.raises(AssertionError, match="max"):
        imageops.assert_within(a, b, imageops.SAME_IDCT, "x")
    with pytest.raises(AssertionError, match="mean"):  # small everywhere, but on average too far
        imageops.assert_within(a, a + 0.9, imageops.SAME_IDCT, "x")
    with pytest.raises(AssertionError, match="shape"):
        imageops.assert_within(a, a[:1], imageops.SAME_IDCT, "x")


@pytest.mark.parametrize("dct", ["accurate", "default"])
def test_decoders_and_transforms_agree(dataset, dct):
    """tf.io.decode_jpeg (and torchvision where it runs) against Pillow, then the transforms on the same
    explicit crops and flips against each other and the Pillow/numpy reference (bounds: imageops)."""
    seen = imageops.check_equivalence(dataset, 32, dct, "cpu", usable_sides())
    decode_max, decode_mean = seen["decode tf.image vs Pillow"]
    if dct == "accurate":  # the same ISLOW IDCT in the same libjpeg-turbo: identical here
        assert decode_max == 0
    else:  # INTEGER_FAST: measured 10 levels at most, 1.11 on average (256 files)
        assert 0 < decode_max <= imageops.FAST_IDCT.max and decode_mean > imageops.SAME_IDCT.mean
    assert "batch tf.image vs reference" in seen


def test_torchvision_agrees_with_tf_image_on_the_same_parameters(dataset):
    needs_torchvision()
    seen = imageops.check_equivalence(dataset, 64, "accurate", "cpu", ("torch", "tensorflow"))
    assert seen["decode torchvision vs Pillow"] == (0.0, 0.0)  # both libjpeg-turbo ISLOW with fancy upsampling
    assert seen["decode torchvision vs tf.image"][0] == 0.0
    # Identical decodes: what is left is torchvision's uint8 resize rounding (at most about one level).
    max_diff, mean_diff = seen["batch torchvision vs tf.image"]
    assert 0 < max_diff <= imageops.transform_bound(imageops.Bound(0, 0)).max
    assert mean_diff < max_diff


def check_random_epoch(pipeline, resized_of, n):
    """Every sample once, NHWC float32; each sample of the first batch is a crop and flip of its resized image."""
    x, y, idx, x0, _, i0 = collect(pipeline, 0)
    assert sorted(idx.tolist()) == list(range(n))
    assert x.shape == (n, 64, 64, 3) and x.dtype == np.float32 and y.dtype == np.int64
    for sample, index in zip(x0[:8], i0[:8]):
        assert imageops.matches_a_candidate(sample, resized_of(int(index))), f"sample {index}"


def test_tf_image_pipeline_epoch(dataset):
    import tensorflow as tf

    n = 96
    paths = imageops.jpeg_files(dataset, n)[0]
    pipeline = tfimage_pipelines.build(dataset, n, BATCH, tfimage_pipelines.Knobs())
    try:
        check_random_epoch(pipeline, lambda i: tfimage_pipelines.resize(
            tfimage_pipelines.decode(tf.io.read_file(paths[i]))).numpy(), n)
    finally:
        pipeline.close()


@pytest.mark.timeout(120, method="signal")
@pytest.mark.parametrize("num_workers", [0, 2])
def test_torchvision_pipeline_epoch(dataset, num_workers):
    tv = needs_torchvision()
    n = 96
    paths = imageops.jpeg_files(dataset, n)[0]
    pipeline = tv.build(dataset, n, BATCH, tv.Knobs(num_workers=num_workers))
    try:
        check_random_epoch(pipeline, lambda i: tv.resize(tv.decoded([paths[i]])[0]).permute(1, 2, 0).numpy(), n)
    finally:
        pipeline.close()


def test_pil_ideal_loop(dataset):
    n = 40
    paths = imageops.jpeg_files(dataset, n)[0]
    loop = imageops.PilResizeLoop(paths, 16, 0)
    assert loop.run_epoch() == n and loop.epoch == 1
    params = pdata.augment_params(0, 0, np.arange(3))
    out = imageops.crop_flip_normalise(np.stack([imageops.pil_resized(p) for p in paths[:3]]), params)
    for k in range(3):
        assert imageops.matches_a_candidate(out[k], imageops.pil_resized(paths[k]))
    assert not imageops.matches_a_candidate(out[0] + 0.01, imageops.pil_resized(paths[0]))


def test_cuda_decode_and_tf_gpu_path(dataset):
    """decode_jpeg(device="cuda") (nvjpeg) and TF's GPU image ops against the CPU reference and each other."""
    needs_torchvision()
    import tensorflow as tf
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: torch.cuda.is_available() is False")
    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("TensorFlow sees no GPU")
    seen = imageops.check_equivalence(dataset, 32, "accurate", "cuda", ("torch", "tensorflow"))
    assert "batch torchvision vs tf.image" in seen
