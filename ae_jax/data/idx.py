"""MNIST-format IDX files, read with numpy alone (no TensorFlow or tfds needed).

The tfds builder in idx_builder.py prepares datasets from such files; tools that must run
where TensorFlow is not installed (scripts/accelerator_check.py) read them directly here.
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

# The version of the tfds dataset idx_builder.py prepares from these files (read here, where
# no TensorFlow is needed, by data.Source to tell a prepared copy of another version).
# 1.1.0: the splits keep the files' order (1.0.0's were shuffled by tfds' writer).
VERSION = "1.1.0"

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find_idx_file(folder: str, stem: str) -> str | None:
  """Path of `stem` or `stem.gz` in `folder`, or None."""
  for name in (stem + ".gz", stem):
    path = os.path.join(folder, name)
    if os.path.isfile(path):
      return path
  return None


def has_idx_files(folder: str | None) -> bool:
  return bool(folder) and all(
      find_idx_file(folder, stem) for pair in FILES.values() for stem in pair)


def read_idx(path: str) -> np.ndarray:
  """Reads an IDX file (gzipped or not) into a uint8 array of the shape its header gives.

  A file that is not IDX, or damaged, raises ValueError (OSError/EOFError from the file).
  """
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      data = f.read()
  except zlib.error as e:  # damage inside the compressed stream (not an OSError)
    raise ValueError(f"{path} is damaged ({e})") from None
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
    raise ValueError(f"{path} is not an IDX file of unsigned bytes")
  ndim = data[3]
  dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
  offset = 4 + 4 * ndim
  expected = int(np.prod(dims))
  if len(data) - offset != expected:
    raise ValueError(f"{path}: header says {dims} but holds {len(data) - offset} bytes")
  return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def num_items(path: str) -> int | None:
  """The first dimension an IDX file's header gives (its number of images or labels), read
  without the rest; None where the header cannot be read (read_idx says why)."""
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      header = f.read(8)
  except (OSError, EOFError, zlib.error):
    return None
  return int.from_bytes(header[4:8], "big") if len(header) == 8 else None


def load_images(folder: str, split: str) -> np.ndarray:
  """The split's ('train' or 'test') images as uint8 [N, H, W, 1], in the file's order."""
  path = find_idx_file(folder, FILES[split][0])
  if path is None:
    raise FileNotFoundError(f"no {FILES[split][0]}[.gz] in {folder}")
  return read_idx(path)[..., None]
