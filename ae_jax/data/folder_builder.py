"""A tfds builder that prepares a folder of images (PNG, JPEG, WebP) as a dataset.

    builder = FolderImages(config=FolderConfig.of(folder.listing("/data/photos")),
                           data_dir=...)

One config per folder and content: its name is the folder's name and the fingerprint of
its files (ae_jax/data/folder.py), so the prepared copy in `data_dir/folder_images/<name>/`
is read back while the folder is unchanged, and a folder that changed (a file added,
removed or rewritten) is prepared again under a new name. The splits keep the files'
order (sorted paths), as the IDX builder keeps its files'. Features: `image` (uint8, of
one shape when every image has one, else (None, None, C)), `file` (the path inside the
folder), and `label` where the images lie in class subfolders.
"""
from __future__ import annotations

import os
from typing import Callable

import tensorflow_datasets as tfds

from ae_jax.data import folder


class FolderConfig(tfds.core.BuilderConfig):
  """One folder's dataset: its files (a `folder.Listing`) and what their headers say."""

  def __init__(self, *, files: folder.Listing, about: dict, **kwargs):
    super().__init__(name=files.config_name, version=folder.VERSION,
                     description=f"The images in {files.root}.", **kwargs)
    self.files, self.about = files, about

  @classmethod
  def of(cls, files: folder.Listing) -> "FolderConfig":
    """The config of `files`, after reading every image's header (`folder.inspect`)."""
    return cls(files=files, about=folder.inspect(files))


class FolderImages(tfds.core.GeneratorBasedBuilder):
  """The images of a folder, by split, in the order of their paths."""

  VERSION = tfds.core.Version(folder.VERSION)
  RELEASE_NOTES = {folder.VERSION: "Images of a folder, splits in their paths' order."}
  # Called with 1 for each example generated (data.get_builder's progress line), or None.
  on_example: Callable[[int], object] | None = None

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    shape = tuple(config.about["shape"] or (None, None, config.about["channels"]))
    features = {"image": tfds.features.Image(shape=shape), "file": tfds.features.Text()}
    if config.files.labels is not None:
      features["label"] = tfds.features.ClassLabel(names=list(config.files.class_names))
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(features),
        disable_shuffling=True,  # image i of a split is its i-th file by path
        # What the headers said, read back with the prepared copy (data.get_builder).
        metadata=tfds.core.MetadataDict({**config.about, "folder": config.files.root}),
    )

  def _split_generators(self, dl_manager):  # pylint: disable=unused-argument
    return {split: self._generate_examples(split) for split in folder.SPLITS}

  def _generate_examples(self, split: str):
    files, channels = self.builder_config.files, self.builder_config.about["channels"]
    for i, rel in enumerate(files.files[split]):
      example = {"image": folder.read_image(os.path.join(files.root, rel), channels),
                 "file": rel}
      if files.labels is not None:
        example["label"] = files.labels[split][i]
      yield i, example
      if self.on_example is not None:
        self.on_example(1)
