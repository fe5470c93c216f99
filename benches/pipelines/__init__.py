"""Input pipelines for the tf.data versus DataLoader benchmarks.

- ``data``: the synthetic image set, generated once (seeded) into ``.cache/pipelines/``
  in three storage forms (numpy arrays, TFRecord shards, JPEG files), plus the
  per-sample augmentation parameters both frameworks share.
- ``ideal``: the numpy reference transform; its tight batched loop is the throughput
  every in-memory pipeline is compared with.
- ``tf_pipelines`` / ``torch_pipelines``: one builder per framework. Import each only
  where its framework is present; ``torch_pipelines`` must stay free of TensorFlow,
  because DataLoader workers import it in fresh processes.
- ``imageops``: the jpeg-resize pipeline with each library's own image ops (decode, resize,
  random crop and flip, normalise): its spec, the decode and transform bounds with why,
  the Pillow/numpy reference and ideal, the equivalence check, and whether torchvision
  can run beside this torch. ``tfimage_pipelines`` (tf.io.decode_jpeg + tf.image) and
  ``tv_pipelines`` (torchvision.io.decode_jpeg + transforms.v2; import it only once
  ``imageops.torchvision_problem()`` is None) build them; ``jpegspec`` holds what they share
  with imageops (the resize size, the decode knob, the files in order), so neither imports it.

Every pipeline yields batches ``(x, label, index)``: x float32 (NHWC for TensorFlow,
NCHW for torch), label int64, and the source sample index, so a test can check that
an epoch yields every sample exactly once and compare values across frameworks.
"""
