"""A tfds builder that prepares MNIST-format datasets from a local folder of IDX files.

Debian's `dataset-fashion-mnist` installs the four original IDX `.gz` files in
/usr/share/datasets/fashion-mnist, but re-gzipped, so tfds' own `fashion_mnist` builder
rejects their checksums as manual downloads. This builder reads such a folder (its
`manual_dir`) and writes an ordinary prepared tfds dataset to `data_dir`, reused afterwards.

Its splits keep the files' order: image i of the prepared `test` split is image i of
t10k-images-idx3-ubyte (tfds' writer shuffles a split's examples unless the dataset info
says `disable_shuffling`). Version 1.0.0 was shuffled: a data_dir prepared by it keeps its
`idx_images/<name>/1.0.0/` folder, which nothing reads any more (delete it to free the
space); 1.1.0 is prepared beside it on first use.
"""
from __future__ import annotations

import os
from typing import Callable

import tensorflow_datasets as tfds

from ae_jax.data.idx import FILES, VERSION, find_idx_file, read_idx

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(i) for i in range(10))


RELEASE_NOTES = {
    "1.0.0": "Splits in the order of tfds' writer (shuffled).",
    "1.1.0": "Splits in the IDX files' order.",
}


class IdxConfig(tfds.core.BuilderConfig):
  """One MNIST-format dataset: its name is the tfds dataset it stands in for."""

  def __init__(self, *, class_names: tuple[str, ...], **kwargs):
    super().__init__(version=VERSION, release_notes=RELEASE_NOTES, **kwargs)
    self.class_names = class_names


class IdxImages(tfds.core.GeneratorBasedBuilder):
  """28x28x1 uint8 images with labels, read from a folder of IDX files (manual_dir)."""

  BUILDER_CONFIGS = [
      IdxConfig(name="fashion_mnist", class_names=FASHION_MNIST_CLASSES,
                description="Fashion-MNIST from local IDX files."),
      IdxConfig(name="mnist", class_names=MNIST_CLASSES,
                description="MNIST from local IDX files."),
  ]
  # Called with 1 for each example generated (data.get_builder's progress line), or None.
  on_example: Callable[[int], object] | None = None
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
      "and t10k-labels-idx1-ubyte.gz in the manual folder (Debian: apt-get install "
      "dataset-fashion-mnist puts them in /usr/share/datasets/fashion-mnist).")

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(28, 28, 1)),
            "label": tfds.features.ClassLabel(names=list(self.builder_config.class_names)),
        }),
        supervised_keys=("image", "label"),
        disable_shuffling=True,  # image i of a split is image i of its IDX file
    )

  def _split_generators(self, dl_manager):
    folder = os.fspath(dl_manager.manual_dir)
    return {split: self._generate_examples(folder, *stems) for split, stems in FILES.items()}

  def _generate_examples(self, folder: str, images_stem: str, labels_stem: str):
    images = read_idx(find_idx_file(folder, images_stem))
    labels = read_idx(find_idx_file(folder, labels_stem))
    num_classes = len(self.builder_config.class_names)
    if (images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1
        or len(images) != len(labels)):
      raise ValueError(f"{folder}: expected N x 28 x 28 images and N labels, got "
                       f"{images.shape} and {labels.shape}")
    if labels.size and int(labels.max()) >= num_classes:
      raise ValueError(f"{folder}: labels up to {int(labels.max())}, but "
                       f"{self.builder_config.name} has {num_classes} classes")
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {"image": image[:, :, None], "label": int(label)}
      if self.on_example is not None:
        self.on_example(1)
