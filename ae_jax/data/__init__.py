"""Datasets: tfds builders and the input pipelines that feed the train step.

    pipeline.py     tfds sources (offline fast-fail, cached splits), on-the-fly noise,
                    batches on the device or streamed through tf.data
    idx.py          reads MNIST-format IDX files (numpy only)
    idx_builder.py  the tfds builder for a folder of IDX files (Debian's Fashion-MNIST)

May import: `ae_jax.core`. The pipeline's functions are importable from here
(`from ae_jax import data; data.load_images(...)`); library code imports `pipeline`.
"""
from ae_jax.data.pipeline import (DEFAULT_IDX_DIR, Source, add_noise, dataset_name,  # noqa: F401
                                  device_batch, epoch_permutation, eval_batches,
                                  get_builder, image_shape, load_images, network_reachable,
                                  num_examples, stream_epoch)
