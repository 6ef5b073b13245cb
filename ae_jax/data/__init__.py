"""Datasets: tfds builders and the input pipelines that feed the train step.

    pipeline.py     tfds sources (offline fast-fail, cached splits), on-the-fly noise,
                    batches on the device or streamed through tf.data
    idx.py          reads MNIST-format IDX files (numpy only)
    idx_builder.py  the tfds builder for a folder of IDX files (Debian's Fashion-MNIST)
    folder.py       a folder of your own images (PNG, JPEG, WebP) as a dataset: its files,
                    checked, and their splits; numpy arrays as such a folder (from_arrays)
    folder_builder.py  the tfds builder that prepares such a folder

May import: `ae_jax.core`. The pipeline's functions are importable from here
(`from ae_jax import data; data.load_images(...)`); library code imports `pipeline`.
"""
from ae_jax.data.folder import from_arrays  # noqa: F401
from ae_jax.data.pipeline import (DEFAULT_IDX_DIR, Source, add_noise, dataset_name,  # noqa: F401
                                  device_batch, device_crops, epoch_permutation, eval_batches,
                                  flat_images, get_builder, image_shape, load_images,
                                  network_reachable, num_examples, stream_epoch)
