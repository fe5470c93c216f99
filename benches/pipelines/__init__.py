"""Input pipelines for the tf.data versus DataLoader benchmarks.

- ``data``: the synthetic image set, generated once (seeded) into ``.cache/pipelines/``
  in three storage forms (numpy arrays, TFRecord shards, JPEG files), plus the
  per-sample augmentation parameters both frameworks share.
- ``ideal``: the numpy reference transform; its tight batched loop is the throughput
  every in-memory pipeline is compared with.
- ``tf_pipelines`` / ``torch_pipelines``: one builder per framework. Import each only
  where its framework is present; ``torch_pipelines`` must stay free of TensorFlow,
  because DataLoader workers import it in fresh processes.

Every pipeline yields batches ``(x, label, index)``: x float32 (NHWC for TensorFlow,
NCHW for torch), label int64, and the source sample index, so a test can check that
an epoch yields every sample exactly once and compare values across frameworks.
"""
